#!/usr/bin/env bash
# DHCP benchmark, one run, same machine, same veth topology:
#   A. ISC perfdhcp (the reference load generator) against dnsmasq, ISC Kea
#      and `qsplice dhcp-server` at increasing rates: highest rate each
#      sustains with < 0.1% drops (4-way exchanges/s);
#   B. `qsplice dhcp-tester` (max rate) against dnsmasq, Kea and `qsplice
#      dhcp-server` (the same load generator for all three, one that is not
#      the bottleneck): clients bound per second;
#   C. in memory, no I/O (the `scale` test of qsplice-dhcp, release build):
#      the tester engine against the server engine, 1M clients, frames
#      handed over in memory on one core: DORA exchanges/s of tester CPU,
#      requests/s of server CPU, bytes of state per client.
#
# With --v6 the same run speaks DHCPv6 (RFC 8415): A. `perfdhcp -6`
# (SOLICIT/ADVERTISE/REQUEST/REPLY) against `kea-dhcp6` and the DHCPv6 side
# of `qsplice dhcp-server`; B. the DHCPv6 tester (IA_NA) against both
# (dnsmasq has no DHCPv6 server mode here, C has no DHCPv6 variant).
#
# Usage (root): benches/e2e/dhcp-vs-perfdhcp.sh [--v6] [--rates "1000 2000 4000"] [--secs 5] [--clients 20000]
# Needs: perfdhcp (kea-admin), dnsmasq, kea-dhcp4, kea-dhcp6 (scripts/setup.sh), a release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
RATES="1000 2000 4000 8000 16000"
SECS=5
CLIENTS=20000
V6=0
while (($#)); do
    case "$1" in
        --v6) V6=1 ;;
        --rates) RATES=$2; shift ;;
        --secs) SECS=$2; shift ;;
        --clients) CLIENTS=$2; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
((EUID == 0)) || { echo "must run as root" >&2; exit 1; }
# Address pools. Leases are never released during a sweep (1 h lease time,
# perfdhcp -R 1000000 draws up to 1M distinct client MACs), so every rate of
# A adds up to rate x secs bound leases to the same server process and a
# 64,000-address pool ran out in the middle of the sweep (drops from
# exhaustion, not from load). The pools are therefore /12s, sized from the
# sweep: kernel servers 10.16.1.0 - 10.29.255.255 in 10.16.0.0/12 (917,248
# addresses; 10.30.0.x stays for the interfaces), qsplice 10.32.1.0 -
# 10.39.255.255 in 10.32.0.0/12 (524,032; 10.40.0.x for the interfaces),
# and the run refuses a sweep (or a --clients) that could exhaust the
# smaller one. (Each server of A and B is a fresh process: leases carry over
# between the rates of one server only.)
POOL=524032
NEED=0
for r in $RATES; do NEED=$((NEED + r * (SECS + 1))); done # + 1 s of slack per rate
if ((NEED > POOL || CLIENTS > POOL)); then
    echo "the sweep may bind $NEED addresses (--clients $CLIENTS) on one server; the pools hold $POOL" >&2
    exit 2
fi
QS=${QS:-target/release/qsplice}
[[ -x $QS ]] || cargo build --release
W=$(mktemp -d /tmp/qs-dhcpbench.XXXX)
PIDS=()
GC3=$(sysctl -n net.ipv6.neigh.default.gc_thresh3)
GC2=$(sysctl -n net.ipv6.neigh.default.gc_thresh2)
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    # Kea answers every DHCPv6 client at its link-local address: the run
    # raised the (host-wide) neighbor table limits; put them back.
    sysctl -qw net.ipv6.neigh.default.gc_thresh3="$GC3" net.ipv6.neigh.default.gc_thresh2="$GC2" || true
    sleep 1
    ip netns del qdb-srv 2>/dev/null || true
    ip netns del qdb-cli 2>/dev/null || true
    ip link del qdb-s 2>/dev/null || true
    ip link del qdb-t 2>/dev/null || true
    ip link del qdb-u 2>/dev/null || true
}
trap cleanup EXIT
cleanup

veth() { # a b ns-of-b
    ip link add "$1" type veth peer name "$2"
    ip link set "$2" netns "$3"
    ip link set "$1" up; ethtool -K "$1" tx off rx off >/dev/null 2>&1 || true
    sysctl -qw "net.ipv6.conf.$1.disable_ipv6=1" || true
    ip netns exec "$3" ip link set "$2" up
    ip netns exec "$3" ethtool -K "$2" tx off rx off >/dev/null 2>&1 || true
}
ip netns add qdb-srv; ip netns add qdb-cli
for n in qdb-srv qdb-cli; do ip netns exec $n ip link set lo up; ip netns exec $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1; done
# kernel servers: perfdhcp / tester side qdb-c1 (ns qdb-cli) <-> qdb-p0 (ns qdb-srv)
ip link add qdb-c1 type veth peer name qdb-p0
ip link set qdb-c1 netns qdb-cli; ip link set qdb-p0 netns qdb-srv
ip netns exec qdb-cli ip link set qdb-c1 up; ip netns exec qdb-srv ip link set qdb-p0 up
ip netns exec qdb-cli ethtool -K qdb-c1 tx off rx off >/dev/null 2>&1 || true
ip netns exec qdb-srv ethtool -K qdb-p0 tx off rx off >/dev/null 2>&1 || true
ip netns exec qdb-srv ip addr add 10.30.0.1/12 dev qdb-p0
ip netns exec qdb-cli ip addr add 10.30.0.2/12 dev qdb-c1
if ((V6)); then
    # IPv6 on the namespace sides, usable at once (no DAD); the DPDK sides
    # keep no kernel IPv6. Kea resolves each tester client by ND.
    # accept_dad off first, on every level, then IPv6 on: a tentative
    # link-local address is one Kea cannot bind (DHCPSRV_OPEN_SOCKET_FAIL).
    for n in qdb-srv qdb-cli; do
        ip netns exec $n sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    done
    ip netns exec qdb-srv sysctl -qw net.ipv6.conf.qdb-p0.accept_dad=0
    ip netns exec qdb-cli sysctl -qw net.ipv6.conf.qdb-c1.accept_dad=0
    for n in qdb-srv qdb-cli; do
        ip netns exec $n sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0
    done
    ip netns exec qdb-srv ip -6 addr add 2001:db8:10::1/64 dev qdb-p0 nodad
    sysctl -qw net.ipv6.neigh.default.gc_thresh3=$((CLIENTS * 2 + 4096)) net.ipv6.neigh.default.gc_thresh2=$((CLIENTS + 2048))
fi
# qsplice dhcp-server: qdb-s (root, DPDK) <-> qdb-c2 (ns qdb-cli, perfdhcp)
veth qdb-s qdb-c2 qdb-cli
ip netns exec qdb-cli ip addr add 10.40.0.2/12 dev qdb-c2
# qsplice dhcp-tester: qdb-t (root, DPDK) <-> qdb-p1 (ns qdb-srv)
veth qdb-t qdb-p1 qdb-srv
if ((V6)); then
    # (created after the namespaces' defaults were set: no DAD, IPv6 on)
    for i in 1 2 3 4 5 6 7 8 9 10; do # link-local addresses, none tentative
        t=$(for n in qdb-srv qdb-cli; do ip netns exec $n ip -6 addr show tentative; done)
        l=$(for n in qdb-srv qdb-cli; do ip netns exec $n ip -6 addr show scope link; done | grep -c fe80 || true)
        [[ -z $t && $l -ge 4 ]] && break
        sleep 0.5
    done
fi
# qsplice dhcp-tester vs qsplice dhcp-server: qdb-u <-> qdb-v, both DPDK in root
ip link add qdb-u type veth peer name qdb-v
for i in qdb-u qdb-v; do
    ip link set "$i" up; ethtool -K "$i" tx off rx off >/dev/null 2>&1 || true
    sysctl -qw "net.ipv6.conf.$i.disable_ipv6=1" || true
done

cat >"$W/server.toml" <<EOT
[eal]
worker_lcores = [1]
memory_mb = 256
file_prefix = "qs-bench-dhcpd"
log_level = "warning"
[engine]
stats_interval_ms = 1000
[[ports]]
name = "dhcp"
device = "net_af_packet0,iface=qdb-s"
addresses = ["10.40.0.1/12"]
[dhcp_server]
port = "dhcp"
offer_timeout_ms = 5000
[[dhcp_server.pools]]
subnet = "10.32.0.0/12"
range_start = "10.32.1.0"
range_end = "10.39.255.255"
lease_time_s = 3600
EOT
if ((V6)); then
    cat >>"$W/server.toml" <<EOT
[dhcp_server.v6]
range_start = "2001:db8:10::1:0"
range_end = "2001:db8:10::8:ffff"
preferred_lifetime_s = 1800
valid_lifetime_s = 3600
rapid_commit = false
EOT
fi
tester_toml() { # iface prefix
cat <<EOT
[eal]
worker_lcores = [1]
memory_mb = 256
file_prefix = "$2"
log_level = "warning"
[engine]
stats_interval_ms = 1000
[[ports]]
name = "dhcp"
device = "net_af_packet0,iface=$1"
promiscuous = true
addresses = ["10.30.0.250/12"]
[dhcp_tester]
port = "dhcp"
clients = $CLIENTS
concurrency = 256
timeout_s = 120
[dhcp_tester.retransmit]
initial_ms = 1000
max_ms = 4000
EOT
if ((V6)); then
cat <<EOT
[dhcp_tester.v6]
ia_na = true
[dhcp_tester.v6.retransmit]
solicit_irt_ms = 1000
solicit_mrt_ms = 4000
request_irt_ms = 1000
request_mrt_ms = 4000
EOT
fi
}

start_dnsmasq() { # iface leasefile
    ip netns exec qdb-srv dnsmasq --keep-in-foreground --no-resolv --no-hosts --port=0 \
        --interface="$1" --bind-interfaces --dhcp-range=10.16.1.0,10.29.255.255,255.240.0.0,1h \
        --dhcp-lease-max=1000000 --dhcp-authoritative --no-ping --quiet-dhcp \
        --dhcp-leasefile="$2" --pid-file="$W/dnsmasq.pid" --log-facility="$W/dnsmasq.log" &
    PIDS+=($!); sleep 1
}
start_kea() { # iface
    cat >"$W/kea.json" <<EOT
{ "Dhcp4": { "interfaces-config": { "interfaces": [ "$1" ], "dhcp-socket-type": "raw" },
  "lease-database": { "type": "memfile", "persist": false },
  "valid-lifetime": 3600,
  "subnet4": [ { "id": 1, "subnet": "10.16.0.0/12", "pools": [ { "pool": "10.16.1.0 - 10.29.255.255" } ] } ],
  "loggers": [ { "name": "kea-dhcp4", "severity": "ERROR", "output_options": [ { "output": "$W/kea.log" } ] } ] } }
EOT
    if ((V6)); then
        cat >"$W/kea.json" <<EOT
{ "Dhcp6": { "interfaces-config": { "interfaces": [ "$1" ] },
  "lease-database": { "type": "memfile", "persist": false },
  "server-id": { "type": "EN", "enterprise-id": 2495, "identifier": "0102", "persist": false },
  "preferred-lifetime": 1800, "valid-lifetime": 3600,
  "subnet6": [ { "id": 1, "subnet": "2001:db8:10::/64", "interface": "$1",
    "pools": [ { "pool": "2001:db8:10::1:0 - 2001:db8:10::f:ffff" } ] } ],
  "loggers": [ { "name": "kea-dhcp6", "severity": "ERROR", "output_options": [ { "output": "$W/kea.log" } ] } ] } }
EOT
    fi
    mkdir -p /run/kea
    ip netns exec qdb-srv "kea-dhcp$FAM" -c "$W/kea.json" >"$W/kea.out" 2>&1 &
    PIDS+=($!); sleep 2
}
stop_last() { local p=${PIDS[-1]}; kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; unset 'PIDS[-1]'; sleep 1; }

# UdpRcvbufErrors of the client namespace, absolute (-a), without touching
# nstat's history file (-s), printed even when zero (-z).
rcvbuf_errors() {
    ip netns exec qdb-cli nstat -saz UdpRcvbufErrors 2>/dev/null |
        awk '$1 == "UdpRcvbufErrors" { v = $2 } END { print v + 0 }'
}
perf() { # name iface -> prints "rate drops%" lines, best rate
    local name=$1 ifc=$2 best=0 rcv0 rcv1
    for r in $RATES; do
        # The counter is cumulative over the namespace's life (earlier rates
        # and servers): report this rate's increase.
        rcv0=$(rcvbuf_errors)
        out=$(ip netns exec qdb-cli timeout $((SECS + 10)) perfdhcp "-$FAM" -l "$ifc" -r "$r" -p "$SECS" -R 1000000 -W 1000000 2>&1 || true)
        sent=$(awk -v x="$FIRST" '$0 ~ "Statistics for: " x {f=1} f&&/sent packets:/{print $3; exit}' <<<"$out")
        dro=$(awk '/drops:/{s+=$2} END{print s+0}' <<<"$out")
        rate=$(awk '/^Rate:/{print $2; exit}' <<<"$out")
        pct=$(awk -v d="$dro" -v s="${sent:-0}" 'BEGIN{ if (s>0) printf "%.3f", 100*d/(2*s); else print "n/a" }')
        # perfdhcp's own socket overflowing (the kernel delivered the reply)
        rcv1=$(rcvbuf_errors)
        rcvbuf=$((rcv1 - rcv0))
        printf '  %-22s rate %6s/s: %s 4-way/s, drops %s%% (%s drops, perfdhcp socket overflows %s)\n' "$name" "$r" "${rate:-?}" "$pct" "$dro" "${rcvbuf:-0}"
        if [[ $pct != n/a ]] && awk -v p="$pct" 'BEGIN{exit !(p < 0.1)}'; then best=$r; fi
    done
    printf '  %-22s highest rate with < 0.1%% drops: %s/s\n' "$name" "$best"
}
tester() { # name iface prefix
    tester_toml "$2" "$3" >"$W/$3.toml"
    "$QS" dhcp-tester --config "$W/$3.toml" --json "$W/$3.json" --plain >"$W/$3.out" 2>&1 || true
    python3 - "$W/$3.json" "$1 (DHCPv$FAM)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
c = r["counters"]
print(f"  {sys.argv[2]:<22} {c['bound']}/{r['clients_total']} bound in {r['elapsed_s']:.2f}s: "
      f"{r['clients_per_s']:.0f} clients/s, retries {c['retries']}, total p50 {r['total']['p50_us']:.0f} us p99 {r['total']['p99_us']:.0f} us")
PY
}

FAM=4 FIRST=DISCOVER-OFFER
((V6)) && FAM=6 FIRST=SOLICIT-ADVERTISE
if [[ ${SKIP_PERFDHCP:-0} != 1 ]]; then
echo "== A. perfdhcp -$FAM (${SECS}s per rate) =="
((V6)) || { start_dnsmasq qdb-p0 "$W/dnsmasq.leases"; perf dnsmasq qdb-c1; stop_last; }
start_kea qdb-p0; perf "kea-dhcp$FAM" qdb-c1; stop_last
"$QS" dhcp-server --config "$W/server.toml" >"$W/server.out" 2>&1 &
PIDS+=($!); sleep 3
perf "qsplice dhcp-server" qdb-c2; stop_last
fi
# the servers move to the tester's veth
ip netns exec qdb-srv ip addr flush dev qdb-p0 scope global
ip netns exec qdb-srv ip addr add 10.30.0.1/12 dev qdb-p1
((V6)) && ip netns exec qdb-srv ip -6 addr add 2001:db8:10::1/64 dev qdb-p1 nodad
echo "== B. qsplice dhcp-tester (DHCPv$FAM), $CLIENTS clients, concurrency 256 =="
if [[ ${SKIP_B_PEERS:-0} != 1 ]]; then
((V6)) || { start_dnsmasq qdb-p1 "$W/dnsmasq2.leases"; tester "vs dnsmasq" qdb-t qs-bench-t1; stop_last; }
start_kea qdb-p1; tester "vs kea-dhcp$FAM" qdb-t qs-bench-t2; stop_last
fi
sed -e 's/iface=qdb-s/iface=qdb-v/' -e 's/qs-bench-dhcpd/qs-bench-dhcpd2/' -e 's#10\.40\.0\.1/12#10.30.0.1/12#' \
    -e 's#10\.32\.0\.0/12#10.16.0.0/12#' -e 's/10\.32\.1\.0/10.16.1.0/' -e 's/10\.39\.255\.255/10.29.255.255/' \
    -e 's/worker_lcores = \[1\]/main_lcore = 1\nworker_lcores = [0]/' "$W/server.toml" >"$W/server2.toml"
"$QS" dhcp-server --config "$W/server2.toml" >"$W/server2.out" 2>&1 &
PIDS+=($!); sleep 3
kill -0 "${PIDS[-1]}" 2>/dev/null || { echo "dhcp-server did not start:" >&2; cat "$W/server2.out" >&2; exit 1; }
tester "vs qsplice dhcp-server" qdb-u qs-bench-t3; stop_last
echo "== C. in memory: dhcp-tester engine vs dhcp-server engine, 1M clients, one core (DHCPv4 DORA and DHCPv6 SARR, same run) =="
cargo test -q --release -p qsplice-dhcp --test scale -- --ignored --nocapture --test-threads 1 2>&1 | grep -E '^1M (DORA|SARR)' | sed 's/^/  /'
echo "(work dir $W)"
