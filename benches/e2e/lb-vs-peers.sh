#!/usr/bin/env bash
# qsplice lb vs HAProxy 2.6 (TCP mode) vs the kernel (nftables DNAT+SNAT) as
# the device between the client namespace and three nginx backends, on the
# same topology (scripts/netns.sh) in one run.
#
#   benches/e2e/lb-vs-peers.sh [--seconds N] [--rounds R] [--conns C] [--workers W] [--idle-sleep-us U]
#                              [--idle-spin-us S] [--pmd af_packet|af_xdp|both] [--ipv6]
#                              [--client wrk|loadgen] [--server nginx|loadgen] [--lg-idle-sleep-us U]
#
# For each device, R rounds of (medians are printed):
#   conn/s     wrk, `Connection: close`, C connections: new TCP connections per second
#   req/s      wrk, keep-alive, C connections: requests per second
#   MB/s       wrk, keep-alive, 4 connections, GET /1m.bin: bulk throughput
# with wrk's p50/p99 latency for the first two, and each figure's ratio to
# qsplice. Bulk also gets a ceiling: `dpdk-testpmd --forward-mode=io` as a
# wire between the two DUT veths on the same PMD (rows testpmd-io /
# testpmd-io-xdp), the client fetching GET /1m.bin from the first backend
# directly (an address in the backend subnet is added to the client for
# that round): what any DPDK program can move on that path. The devices take turns on the same veths: the kernel ones get the
# VIP and backend-side addresses on the DUT interfaces (qb-dut-c / qb-dut-b);
# qsplice binds them with net_af_packet (default), net_af_xdp (`--pmd
# af_xdp`, one worker: a veth is one AF_XDP queue for DPDK 22.11), or both
# in turn (`--pmd both`: rows qsplice and qsplice-xdp). Each device connects to the
# backends from its own address (qsplice 10.10.2.1, HAProxy 10.10.2.2,
# nftables SNAT 10.10.2.3): the backends keep closed connections in
# TIME-WAIT, and one device's leftovers must not refuse the next device's
# SYNs. Bounded: every load runs N seconds.
# --ipv6: the topology is dual-stack (scripts/netns.sh up --ipv6) and every
# device is also measured over IPv6 in the same run, on the same process
# (rows qsplice-v6, haproxy-v6, nftables-v6: the VIP [2001:db8:1::1]:80,
# the backends over IPv6, sources 2001:db8:2::1/::2/::3), with each
# device's IPv6/IPv4 ratio printed.
# --client loadgen: the client is `qsplice loadgen` (its own TCP on an
# af_packet port on the client namespace's veth, from 10.10.1.100, an
# address the namespace's kernel does not hold, one worker lcore on the
# CPU the device's worker does not use, idle_sleep_us as the device's
# unless --lg-idle-sleep-us U says otherwise: e.g. a busy-polling device,
# --idle-sleep-us 0, beside a load generator that sleeps when idle)
# instead of wrk: the same three loads (conn: one request per connection;
# req: keep-alive; bulk: GET /1m.bin on 4 connections), each for N
# seconds; latency columns are loadgen's percentiles: conn, a new
# connection's SYN → whole response (wrk's include the connect time too);
# req, request → whole response. IPv4 only.
# --server loadgen: the backends are one `qsplice loadgen` server (its own
# TCP on an af_packet port on b1's veth, one worker lcore) answering on
# 10.10.2.111, .112 and .113 (`listen_all`; addresses no namespace's
# kernel holds, so nginx stays out of it) with an 11-byte body like
# nginx's index and 1 MiB for /1m.bin (`[[loadgen.paths]]`). With
# `--client loadgen` too, no kernel TCP endpoint is left: only the device
# is measured by a kernel stack (HAProxy, nftables) or not (qsplice).
# IPv4 only.
set -euo pipefail
cd "$(dirname "$0")/../.."

SECS=10
ROUNDS=3
CONNS=64
WORKERS=1
IDLE_SLEEP_US=0   # qsplice engine.idle_sleep_us: >0 lends idle CPU to the load generator on small machines
IDLE_SPIN_US=0    # qsplice engine.idle_spin_us: poll on through gaps this short before sleeping
LG_IDLE_SLEEP_US= # the load generator's idle_sleep_us (--client/--server loadgen); default: the device's
PMD=af_packet
IPV6=0
CLIENT=wrk
SERVER=nginx
while (($#)); do
    case "$1" in
        --seconds) SECS=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        --conns) CONNS=$2; shift ;;
        --workers) WORKERS=$2; shift ;;
        --idle-sleep-us) IDLE_SLEEP_US=$2; shift ;;
        --idle-spin-us) IDLE_SPIN_US=$2; shift ;;
        --lg-idle-sleep-us) LG_IDLE_SLEEP_US=$2; shift ;;
        --pmd) PMD=$2; shift ;;
        --ipv6) IPV6=1 ;;
        --client) CLIENT=$2; shift ;;
        --server) SERVER=$2; shift ;;
        -h|--help) sed -n '2,55p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
LG_IDLE_SLEEP_US=${LG_IDLE_SLEEP_US:-$IDLE_SLEEP_US}

case $PMD in
    af_packet) QS_DEVS=(qsplice); TP_DEVS=(testpmd-io) ;;
    af_xdp) QS_DEVS=(qsplice-xdp); TP_DEVS=(testpmd-io-xdp) ;;
    both) QS_DEVS=(qsplice qsplice-xdp); TP_DEVS=(testpmd-io testpmd-io-xdp) ;;
    *) echo "--pmd must be af_packet, af_xdp or both" >&2; exit 2 ;;
esac
if [[ $PMD != af_packet ]] && ((WORKERS > 1)); then
    echo "--pmd $PMD: one worker only (DPDK 22.11's net_af_xdp sees a veth as one combined channel)" >&2
    exit 2
fi

case $CLIENT in
    wrk) ;;
    loadgen) if ((IPV6)); then echo "--client loadgen: IPv4 only" >&2; exit 2; fi ;;
    *) echo "--client must be wrk or loadgen" >&2; exit 2 ;;
esac
case $SERVER in
    nginx) ;;
    loadgen) if ((IPV6)); then echo "--server loadgen: IPv4 only" >&2; exit 2; fi ;;
    *) echo "--server must be nginx or loadgen" >&2; exit 2 ;;
esac

NETNS_EXTRA=()
((IPV6)) && NETNS_EXTRA=(--ipv6)
. benches/e2e/lib.sh
bench_init qb lb-bench wrk haproxy nft dpdk-testpmd
VIP6=2001:db8:1::1
BACKENDS6=(2001:db8:2::11 2001:db8:2::12 2001:db8:2::13)
LOCAL6_HAPROXY=2001:db8:2::2
LOCAL6_NFT=2001:db8:2::3
HOST=$VIP          # what wrk connects to (the device's VIP, IPv4 or [IPv6])
FWD6_SAVED=$(sysctl -n net.ipv6.conf.all.forwarding)
if [[ $SERVER == loadgen ]]; then BACKENDS=(10.10.2.111 10.10.2.112 10.10.2.113); fi
LOCAL=10.10.2.1        # qsplice (conf/lb.toml)
LOCAL_HAPROXY=10.10.2.2
LOCAL_NFT=10.10.2.3
KERNEL_ADDRS=("$LOCAL_HAPROXY" "$LOCAL_NFT")
kernel_off_hook() {
    nft delete table ip qsbench 2>/dev/null || true
    nft delete table ip6 qsbench6 2>/dev/null || true
    if ((IPV6)); then
        local i
        for i in "$DUT_C" "$DUT_B"; do
            ip -6 addr flush dev "$i" 2>/dev/null || true
            sysctl -qw "net.ipv6.conf.$i.disable_ipv6=1" 2>/dev/null || true
        done
        sysctl -qw "net.ipv6.conf.all.forwarding=$FWD6_SAVED" 2>/dev/null || true
    fi
}
# The kernel's IPv6 side (after kernel_on): the VIP and sources on the DUT veths.
kernel_on6() {
    ((IPV6)) || return 0
    local i a
    for i in "$DUT_C" "$DUT_B"; do
        sysctl -qw "net.ipv6.conf.$i.disable_ipv6=0" "net.ipv6.conf.$i.accept_dad=0" "net.ipv6.conf.$i.accept_ra=0"
    done
    ip -6 addr add "$VIP6/64" dev "$DUT_C" nodad
    for a in "$LOCAL6_HAPROXY" "$LOCAL6_NFT"; do ip -6 addr add "$a/64" dev "$DUT_B" nodad; done
}

start_haproxy() {
    cat >"$WORK/haproxy.cfg" <<EOF
global
    maxconn 8000
    nbthread $WORKERS
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend vip
    bind $VIP:80
    default_backend web
backend web
    balance roundrobin
    source $LOCAL_HAPROXY
$(for i in "${!BACKENDS[@]}"; do echo "    server b$((i + 1)) ${BACKENDS[$i]}:80"; done)
$(if ((IPV6)); then
    echo "frontend vip6"
    echo "    bind [$VIP6]:80"
    echo "    default_backend web6"
    echo "backend web6"
    echo "    balance roundrobin"
    echo "    source [$LOCAL6_HAPROXY]"
    for i in "${!BACKENDS6[@]}"; do echo "    server b$((i + 1)) [${BACKENDS6[$i]}]:80"; done
fi)
EOF
    haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
    PIDS+=($!)
    HAPROXY_PID=$!
}

start_nft() {
    sysctl -qw net.ipv4.ip_forward=1
    for i in "$DUT_C" "$DUT_B"; do sysctl -qw "net.ipv4.conf.$i.forwarding=1"; done
    nft -f - <<EOF
table ip qsbench {
    chain pre {
        type nat hook prerouting priority dstnat;
        ip daddr $VIP tcp dport 80 dnat to numgen inc mod 3 map { 0 : ${BACKENDS[0]}, 1 : ${BACKENDS[1]}, 2 : ${BACKENDS[2]} }:80
    }
    chain post {
        type nat hook postrouting priority srcnat;
        oifname "$DUT_B" snat to $LOCAL_NFT fully-random
    }
}
EOF
    if ((IPV6)); then
        sysctl -qw net.ipv6.conf.all.forwarding=1
        nft -f - <<EOF
table ip6 qsbench6 {
    chain pre {
        type nat hook prerouting priority dstnat;
        ip6 daddr $VIP6 tcp dport 80 dnat to numgen inc mod 3 map { 0 : ${BACKENDS6[0]}, 1 : ${BACKENDS6[1]}, 2 : ${BACKENDS6[2]} }
    }
    chain post {
        type nat hook postrouting priority srcnat;
        oifname "$DUT_B" snat to $LOCAL6_NFT fully-random
    }
}
EOF
    fi
}

start_qsplice() { # qsplice|qsplice-xdp
    local lcores="[1]" map="" q="" xdp=() lgs=()
    # The loadgen server's addresses instead of nginx's.
    [[ $SERVER == loadgen ]] && lgs=(-e 's/10\.10\.2\.1\([123]\)\b/10.10.2.11\1/g')
    [[ $1 == qsplice-xdp ]] && xdp=(-e 's/net_af_packet\([01]\),iface=/net_af_xdp\1,iface=/')
    if ((WORKERS > 1)); then
        lcores="[$(seq -s, 1 "$WORKERS")]"
        q=",qpairs=$WORKERS"
        # lcore i on CPU i mod nproc (more workers than CPUs share them)
        local n; n=$(nproc)
        map="lcore_map = \"$(for i in $(seq 0 "$WORKERS"); do printf '%s%d@%d' "${i:+,}" "$i" $((i % n)); done | sed 's/^,//')\""
    fi
    sed -e "s/qs-dut-c\"/$DUT_C$q\"/" -e "s/qs-dut-b\"/$DUT_B$q\"/" "${xdp[@]}" \
        -e "s/^worker_lcores = .*/worker_lcores = $lcores\n$map/" \
        -e "s/^mbufs = .*/mbufs = 32767/" \
        -e "s/^memory_mb = .*/memory_mb = 1024/" \
        -e "s/^stats_interval_ms = .*/stats_interval_ms = 1000\nidle_sleep_us = $IDLE_SLEEP_US\nidle_spin_us = $IDLE_SPIN_US/" \
        "${lgs[@]}" conf/lb.toml >"$WORK/lb.toml"
    if ((IPV6)); then
        # The same service on an IPv6 VIP, the backends over IPv6.
        python3 - "$WORK/lb.toml" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s = s.replace('addresses = ["10.10.1.1/24"]', 'addresses = ["10.10.1.1/24", "2001:db8:1::1/64"]')
s = s.replace('addresses = ["10.10.2.1/24"]', 'addresses = ["10.10.2.1/24", "2001:db8:2::1/64"]')
s = s.replace('neighbors = ["10.10.2.11", "10.10.2.12", "10.10.2.13"]',
              'neighbors = ["10.10.2.11", "10.10.2.12", "10.10.2.13", "2001:db8:2::11", "2001:db8:2::12", "2001:db8:2::13"]')
m = re.search(r"\[\[lb\.vips\]\].*?(?=\n\[\[|\Z)", s, re.S)
v6 = m.group(0).replace('name = "web"', 'name = "web6"').replace('"10.10.1.1:80"', '"[2001:db8:1::1]:80"')
v6 = re.sub(r'"10\.10\.2\.(\d+):80"', lambda x: '"[2001:db8:2::%s]:80"' % x.group(1), v6)
open(p, "w").write(s.rstrip() + "\n\n" + v6.strip() + "\n")
PY
    fi
    "$QS" lb --config "$WORK/lb.toml" --stats-json "$WORK/qs.json" --live-json \
        >"$WORK/qsplice.out" 2>&1 &
    PIDS+=($!)
    QS_PID=$!
}

# testpmd io forwarding as a wire between the DUT veths (testpmd-io |
# testpmd-io-xdp); the client gets WIRE_IP in the backend subnet.
WIRE_IP=10.10.2.200
start_testpmd() {
    local drv=net_af_packet extra=""
    if [[ $1 == testpmd-io-xdp ]]; then drv=net_af_xdp; extra=",start_queue=0,queue_count=1"; fi
    CLI_IF=$(ip -n "$CLI_NS" -o -4 addr show to 10.10.1.0/24 | awk '{print $2; exit}')
    ip -n "$CLI_NS" addr add "$WIRE_IP/24" dev "$CLI_IF"
    dpdk-testpmd -l 0,1 --no-huge -m 1024 --no-pci --file-prefix "tpw$$" --log-level=warning \
        --vdev "${drv}0,iface=$DUT_C$extra" --vdev "${drv}1,iface=$DUT_B$extra" -- \
        --forward-mode=io --nb-cores=1 --burst=32 --total-num-mbufs=32768 --stats-period 1 \
        </dev/null >"$WORK/testpmd.log" 2>&1 &
    # (--stats-period: without it testpmd waits for a key on stdin and
    # leaves at once on /dev/null.)
    PIDS+=($!)
    TP_PID=$!
    for _ in $(seq 1 100); do
        ip netns exec "$CLI_NS" curl -sf -m 1 -o /dev/null "http://${BACKENDS[0]}/" && return 0
        sleep 0.2
    done
    echo "testpmd wire not passing traffic" >&2
    return 1
}
stop_testpmd() {
    kill -INT "$TP_PID" 2>/dev/null || true
    wait "$TP_PID" 2>/dev/null || true
    ip -n "$CLI_NS" addr del "$WIRE_IP/24" dev "$CLI_IF" 2>/dev/null || true
    ip netns exec "$CLI_NS" ip neigh flush all
}

# wrk → "value p50_ms p99_ms"
wrk_run() {
    local mode=$1 out
    case $mode in
        conn) out=$(ip netns exec "$CLI_NS" wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -H 'Connection: close' "http://$HOST/") ;;
        req) out=$(ip netns exec "$CLI_NS" wrk -t2 -c"$CONNS" -d"${SECS}s" --latency "http://$HOST/") ;;
        bulk) out=$(ip netns exec "$CLI_NS" wrk -t2 -c4 -d"${SECS}s" "http://${2:-$HOST}/1m.bin") ;;
    esac
    echo "$out" >>"$WORK/wrk.log"
    if grep -q 'Socket errors' <<<"$out"; then log "$mode: $(grep 'Socket errors' <<<"$out")"; fi
    python3 - "$mode" <<PY
import re, sys
out = """$out"""
mode = sys.argv[1]
def ms(s):
    m = re.match(r"([\d.]+)(us|ms|s)", s)
    if not m: return float("nan")
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == "us" else v * 1000 if u == "s" else v
def lat(p):
    m = re.search(r"^\s+%s%%\s+(\S+)" % p, out, re.M)
    return ms(m.group(1)) if m else float("nan")
if mode == "bulk":
    m = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    v = float(m.group(1)) * {"B": 1e-6, "KB": 1e-3, "MB": 1, "GB": 1e3}.get(m.group(2), 1) if m else 0
    print(f"{v:.1f} nan nan")
else:
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    print(f"{float(m.group(1)) if m else 0:.0f} {lat(50):.2f} {lat(99):.2f}")
PY
}

# qsplice loadgen as the client → "value p50_ms p99_ms" like wrk_run.
LG_IP=10.10.1.100
LG_WIRE_IP=10.10.2.201
CLI_IF=$(ip -n "$CLI_NS" -o -4 addr show to 10.10.1.0/24 | awk '{print $2; exit}')
lg_run() {
    local mode=$1 src=$LG_IP target=$HOST:80 path=/ conns=$CONNS reqs=1000000 nconn=1000000000 buf=65536 n
    case $mode in
        conn) reqs=1 ;;
        req) nconn=$CONNS ;;
        # A receive window like Linux's autotuned one, not 64 KiB.
        bulk) path=/1m.bin; conns=4; nconn=4; buf=4194304 ;;
    esac
    # On the testpmd wire: from an address in the backend subnet that the
    # client namespace's kernel does not hold (it holds WIRE_IP).
    if [[ -n ${2:-} ]]; then src=$LG_WIRE_IP; target=$2:80; fi
    n=$(nproc)
    sed -e '/^\[\[ports\]\]/,$d' -e "s/^worker_lcores = .*/worker_lcores = [1]\nlcore_map = \"0@$((1 % n)),1@$((2 % n))\"/" \
        -e "s/^stats_interval_ms = .*/stats_interval_ms = 0\nidle_sleep_us = $LG_IDLE_SLEEP_US\nidle_spin_us = $IDLE_SPIN_US/" \
        -e "s/^memory_mb = .*/memory_mb = 512/" conf/loadgen.toml >"$WORK/lg.toml"
    cat >>"$WORK/lg.toml" <<EOT
[[ports]]
name = "client"
device = "net_af_packet0,iface=$CLI_IF"
addresses = ["$src/24"]

[loadgen]
role = "client"
port = "client"
target = "$target"
connections = $nconn
concurrency = $conns
requests = $reqs
path = "$path"
tcp_buf = $buf
timeout_s = $((SECS + 30))
EOT
    # A count it cannot finish in SECS seconds: stopped by --duration, it
    # exits non-zero (unfinished connections); the rates stand.
    ip netns exec "$CLI_NS" "$QS" loadgen --config "$WORK/lg.toml" --duration "$SECS" \
        --json "$WORK/lg.json" >>"$WORK/loadgen.log" 2>&1 || true
    python3 - "$mode" "$WORK/lg.json" <<'PY'
import json, sys
mode = sys.argv[1]
try:
    r = json.load(open(sys.argv[2]))
except Exception:
    print("0 nan nan"); sys.exit()
# conn: a new connection's whole time (SYN → response), as a user of
# the device waits it (wrk's conn latency includes the connect too);
# req: request → response on open connections.
lat = r["latency_us"]["connection" if mode == "conn" else "response"]
if mode == "bulk":
    print(f"{r['body_bytes'] / max(r['elapsed_s'], 1e-9) / 1e6:.1f} nan nan")
else:
    v = r["connections_per_s"] if mode == "conn" else r["requests_per_s"]
    print(f"{v:.0f} {lat['p50'] / 1000:.2f} {lat['p99'] / 1000:.2f}")
PY
    rm -f "$WORK/lg.json"
}

# The loadgen server standing in for the three backends (--server
# loadgen), in b1's namespace on its veth, its worker on CPU 0 (the
# devices' workers are on CPU 1).
LGS_PID=""
start_lg_server() {
    stop_lg_server
    sed -e '/^\[\[ports\]\]/,$d' -e "s/^worker_lcores = .*/worker_lcores = [1]\nlcore_map = \"0@0,1@0\"/" \
        -e "s/^stats_interval_ms = .*/stats_interval_ms = 0\nidle_sleep_us = $LG_IDLE_SLEEP_US\nidle_spin_us = $IDLE_SPIN_US/" \
        -e "s/^memory_mb = .*/memory_mb = 512/" conf/loadgen.toml >"$WORK/lgs.toml"
    cat >>"$WORK/lgs.toml" <<EOT
[[ports]]
name = "srv"
device = "net_af_packet1,iface=$P-bk0"
addresses = ["${BACKENDS[0]}/24", "${BACKENDS[1]}/24", "${BACKENDS[2]}/24"]

[loadgen]
role = "server"
port = "srv"
listen = "${BACKENDS[0]}:80"
listen_all = true
response_bytes = 11
tcp_buf = 4194304
timeout_s = 86400

[[loadgen.paths]]
path = "/1m.bin"
response_bytes = 1048576
EOT
    ip netns exec "$P-b1" "$QS" loadgen --config "$WORK/lgs.toml" >"$WORK/lg-server.log" 2>&1 &
    LGS_PID=$!
    PIDS+=("$LGS_PID")
    for _ in $(seq 1 100); do
        grep -q "loadgen server starting" "$WORK/lg-server.log" && { sleep 0.5; return 0; }
        sleep 0.1
    done
    echo "loadgen server did not start (see $WORK/lg-server.log)" >&2
    return 1
}
stop_lg_server() {
    [[ -n $LGS_PID ]] || return 0
    kill -TERM "$LGS_PID" 2>/dev/null || true
    wait "$LGS_PID" 2>/dev/null || true
    LGS_PID=""
}

client_run() {
    if [[ $CLIENT == loadgen ]]; then lg_run "$@"; else wrk_run "$@"; fi
}
if [[ $SERVER == loadgen ]]; then start_lg_server; fi

wait_vip6() {
    for _ in $(seq 1 100); do
        if ip netns exec "$CLI_NS" curl -sf -m 1 -o /dev/null "http://[$VIP6]/"; then
            sleep 1
            return 0
        fi
        sleep 0.2
    done
    echo "IPv6 VIP not answering" >&2
    return 1
}

declare -A RES
measure() { # device
    local dev=$1 m
    for m in conn req bulk; do
        RES[$dev.$m]+="$(client_run "$m");"
        log "$dev $m: $(tail -c 40 <<<"${RES[$dev.$m]}")"
    done
}

for r in $(seq 1 "$ROUNDS"); do
    for qd in "${QS_DEVS[@]}"; do
    log "round $r/$ROUNDS: $qd"
    start_qsplice "$qd"; wait_vip; measure "$qd"
    if ((IPV6)); then HOST="[$VIP6]"; wait_vip6; measure "$qd-v6"; HOST=$VIP; fi
    kill -TERM "$QS_PID"; wait "$QS_PID" 2>/dev/null || true
    python3 - "$WORK/qs.json" "$qd" <<'PY' >&2 || true
import json, sys
t = json.load(open(sys.argv[1]))["lb"]["total"]
keys = ["conn_spliced", "conn_timeout", "conn_refused", "backend_syn_retx", "drop_unexpected",
        "cookie_bad", "no_flow", "held_dropped", "drop_unresolved", "flow_table_full", "no_source_port"]
print(f"[lb-bench] {sys.argv[2]} counters:", {k: t.get(k, 0) for k in keys if t.get(k, 0)})
PY
    ip netns exec "$CLI_NS" ip neigh flush all
    done

    for td in "${TP_DEVS[@]}"; do
    log "round $r/$ROUNDS: $td (bulk only)"
    start_testpmd "$td"
    RES[$td.bulk]+="$(client_run bulk "${BACKENDS[0]}");"
    log "$td bulk: $(tail -c 40 <<<"${RES[$td.bulk]}")"
    stop_testpmd
    done

    log "round $r/$ROUNDS: haproxy"
    kernel_on; kernel_on6; start_haproxy; wait_vip; measure haproxy
    if ((IPV6)); then HOST="[$VIP6]"; wait_vip6; measure haproxy-v6; HOST=$VIP; fi
    kill -TERM "$HAPROXY_PID"; wait "$HAPROXY_PID" 2>/dev/null || true
    kernel_off

    log "round $r/$ROUNDS: nftables"
    kernel_on; kernel_on6; start_nft; wait_vip; measure nftables
    if ((IPV6)); then HOST="[$VIP6]"; wait_vip6; measure nftables-v6; HOST=$VIP; fi
    kernel_off
done

stop_lg_server
python3 - "$ROUNDS" "$SECS" "$CONNS" "$WORKERS" "$IDLE_SLEEP_US" "$PMD" "${QS_DEVS[*]}" "${TP_DEVS[*]}" "$IDLE_SPIN_US" "$IPV6" "$CLIENT" "$SERVER" "$LG_IDLE_SLEEP_US" <<PY
import statistics, sys
rounds, secs, conns, workers, idle, pmd, qs_devs, tp_devs, spin, ipv6, client, server, lg_idle = sys.argv[1:]
ipv6 = ipv6 == "1"
qs_devs = qs_devs.split()
tp_devs = tp_devs.split()
res = {}
$(for k in "${!RES[@]}"; do echo "res['$k'] = '${RES[$k]}'"; done)
def med(dev, m, i):
    vals = [float(x.split()[i]) for x in res.get(f"{dev}.{m}", "").split(";") if x.strip()]
    vals = [v for v in vals if v == v]
    return statistics.median(vals) if vals else float("nan")
print(f"qsplice lb vs peers, client {client}, server {server}: {rounds} round(s) of {secs} s, {conns} connections, {workers} qsplice worker(s) / haproxy thread(s), qsplice idle_sleep_us={idle}; medians")
print(f"{'device':<14} {'conn/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'MB/s':>8}   ratio qsplice/device (conn/s, req/s, MB/s)")
q0 = qs_devs[0]
q = [med(q0, "conn", 0), med(q0, "req", 0), med(q0, "bulk", 0)]
print(f"(ratios against {q0})")
six = lambda ds: [x for d in ds for x in ([d, d + "-v6"] if ipv6 else [d])]
for dev in six(qs_devs) + tp_devs + six(["haproxy", "nftables"]):
    c, cl50, cl99 = (med(dev, "conn", i) for i in range(3))
    r, rl50, rl99 = (med(dev, "req", i) for i in range(3))
    b = med(dev, "bulk", 0)
    ratio = "  ".join(f"{qv / v:.2f}x" if v == v and v else "-" for qv, v in zip(q, [c, r, b]))
    print(f"{dev:<14} {c:>9.0f} {cl50:>7.2f} {cl99:>7.2f} {r:>9.0f} {rl50:>7.2f} {rl99:>7.2f} {b:>8.1f}   {ratio}")
# Each qsplice row against the testpmd wire on its own PMD.
for qd, td in zip(qs_devs, tp_devs):
    qb, tb = med(qd, "bulk", 0), med(td, "bulk", 0)
    if tb == tb and tb:
        print(f"bulk {qd} / {td}: {qb / tb:.2f}x")
if ipv6:
    for dev in qs_devs + ["haproxy", "nftables"]:
        v4 = [med(dev, m, 0) for m in ("conn", "req", "bulk")]
        v6 = [med(dev + "-v6", m, 0) for m in ("conn", "req", "bulk")]
        r = "  ".join(f"{b / a:.2f}x" if a == a and a else "-" for a, b in zip(v4, v6))
        print(f"IPv6/IPv4 {dev}: {r} (conn/s, req/s, MB/s)")
print("reproduce: benches/e2e/lb-vs-peers.sh --seconds", secs, "--rounds", rounds, "--conns", conns, "--workers", workers, "--idle-sleep-us", idle, "--idle-spin-us", spin, "--pmd", pmd, "--client", client, "--server", server, *(["--lg-idle-sleep-us", lg_idle] if lg_idle != idle else []), "--ipv6" if ipv6 else "")
PY
