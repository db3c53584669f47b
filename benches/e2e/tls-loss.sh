#!/usr/bin/env bash
# Bulk transfer under packet loss: the TLS-terminated VIP (qsplice's own TCP
# endpoints: SACK, RFC 6675 recovery, 200 ms minimum RTO, tail-loss probe,
# CUBIC) vs the spliced VIP (the client's and the backend's Linux TCP end to
# end) of the same qsplice process, and HAProxy 2.6 terminating TLS in the
# same position (kernel TCP), same run.
#
#   benches/e2e/tls-loss.sh [--rounds R] [--loss PCT] [--mb N] [--cc cubic|newreno|bbr]
#
# For each impairment — none, PCT % random loss both ways on the client
# link (nftables `numgen` in the client namespace), PCT % on the backends'
# links (in every backend namespace) — each device downloads N MiB of
# big.bin R times (interleaved), sha256 checked; medians; ratios TLS /
# spliced and qsplice TLS / HAProxy TLS. Bounded: every download has a
# 300 s limit.
#
# Like for like: the spliced VIP's sender is the backends' kernel TCP and
# HAProxy's is the kernel's, so qsplice's terminated legs use the same
# congestion control as the backend namespaces (`lb.tcp_congestion` =
# their net.ipv4.tcp_congestion_control, printed), unless --cc says
# otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=3
LOSS=1
MB=100
CC=
while (($#)); do
    case "$1" in
        --rounds) ROUNDS=$2; shift ;;
        --loss) LOSS=$2; shift ;;
        --mb) MB=$2; shift ;;
        --cc) CC=$2; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

. benches/e2e/lib.sh
NETNS_EXTRA=(--bigfile "$MB")
bench_init ql tls-loss haproxy nft curl
LOCAL_HAPROXY=10.10.2.2
KERNEL_ADDRS=("$LOCAL_HAPROXY")
"$QS" tls-cert --out "$WORK/certs" --name vip.test --alg ecdsa-p256 >/dev/null
cat "$WORK/certs/ecdsa-p256.pem" "$WORK/certs/ecdsa-p256.key" >"$WORK/certs/combined.pem"
STATE_DIR=$(sed -n 's/^STATE_DIR=//p' "$WORK/netns.env")
read -r -a BNS <<<"$(sed -n 's/^BACKEND_NS=//p' "$WORK/netns.env")"
WANT=$(sha256sum "$STATE_DIR/shared/big.bin" | cut -d' ' -f1)
KERNEL_CC=$(ip netns exec "${BNS[0]}" sysctl -n net.ipv4.tcp_congestion_control)
case ${CC:-$KERNEL_CC} in
    cubic | newreno | bbr) CC=${CC:-$KERNEL_CC} ;;
    reno) CC=newreno ;;
    *) log "backends use ${KERNEL_CC}, which qsplice-tcp does not have: cubic"; CC=cubic ;;
esac
log "congestion control: backends and HAProxy (kernel) ${KERNEL_CC}, qsplice's TLS legs ${CC}"

start_qsplice() {
    sed -e "s/qs-dut-c\"/$DUT_C\"/" -e "s/qs-dut-b\"/$DUT_B\"/" \
        -e "s/^mbufs = .*/mbufs = 32767/" -e "s/^memory_mb = .*/memory_mb = 1024/" \
        -e "s/^stats_interval_ms = .*/stats_interval_ms = 1000\nidle_sleep_us = 50/" \
        -e "s/^\[lb\]$/[lb]\ntcp_congestion = \"$CC\"/" \
        conf/lb.toml >"$WORK/lb.toml"
    cat >>"$WORK/lb.toml" <<EOT

[[lb.vips]]
name = "tls"
address = "$VIP:443"
tls = "terminate"
backends = [
$(for b in "${BACKENDS[@]}"; do echo "    { address = \"$b:80\" },"; done)
]
[lb.vips.tls_options]
certificates = [{ cert = "$WORK/certs/ecdsa-p256.pem", key = "$WORK/certs/ecdsa-p256.key" }]
EOT
    "$QS" lb --config "$WORK/lb.toml" --stats-json "$WORK/qs.json" >"$WORK/qsplice.out" 2>&1 &
    PIDS+=($!)
    PEER_PID=$!
}

start_haproxy() {
    cat >"$WORK/haproxy.cfg" <<EOT
global
    maxconn 2000
    nbthread 1
defaults
    mode tcp
    timeout connect 5s
    timeout client 300s
    timeout server 300s
frontend vip
    bind $VIP:443 ssl crt $WORK/certs/combined.pem curves X25519:P-256
    default_backend web
backend web
    balance roundrobin
    source $LOCAL_HAPROXY
$(for i in "${!BACKENDS[@]}"; do echo "    server b$((i + 1)) ${BACKENDS[$i]}:80"; done)
EOT
    haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
    PIDS+=($!)
    PEER_PID=$!
}
stop_peer() { kill -TERM "$PEER_PID" 2>/dev/null || true; wait "$PEER_PID" 2>/dev/null || true; }

wait_tls() {
    for _ in $(seq 1 100); do
        if ip netns exec "$CLI_NS" curl -skf -m 1 -o /dev/null --resolve "vip.test:443:$VIP" "https://vip.test/"; then
            return 0
        fi
        sleep 0.2
    done
    echo "VIP not answering" >&2
    return 1
}

# loss NS... on|off: PCT % random loss both ways for TCP in each namespace.
loss() {
    local op=$1 ns
    shift
    for ns in "$@"; do
        if [[ $op == on ]]; then
            printf 'add table inet qsloss\nadd chain inet qsloss in { type filter hook input priority 0 ; }\nadd chain inet qsloss out { type filter hook output priority 0 ; }\nadd rule inet qsloss in meta l4proto tcp numgen random mod 100 < %s drop\nadd rule inet qsloss out meta l4proto tcp numgen random mod 100 < %s drop\n' "$LOSS" "$LOSS" |
                ip netns exec "$ns" nft -f -
        else
            ip netns exec "$ns" nft delete table inet qsloss 2>/dev/null || true
        fi
    done
}

fetch() { # url -> seconds (or "fail")
    local t0 t1 sum
    t0=$(date +%s.%N)
    sum=$(ip netns exec "$CLI_NS" curl -sf -m 300 --cacert "$WORK/certs/ca.pem" --resolve "vip.test:443:$VIP" "$1" | sha256sum | cut -d' ' -f1)
    t1=$(date +%s.%N)
    if [[ $sum != "$WANT" ]]; then echo fail; return; fi
    python3 -c "print('%.3f' % ($t1 - $t0))"
}

median() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.argv[1:] if x!="fail"]; print("%.3f" % statistics.median(v) if v else "nan")' "$@"; }

declare -A T
for imp in ${IMPS:-none client backends}; do
    case $imp in
        none) ;;
        client) loss on "$CLI_NS" ;;
        backends) loss on "${BNS[@]}" ;;
    esac
    for r in $(seq 1 "$ROUNDS"); do
        start_qsplice; wait_tls
        T[$imp.spliced]+="$(fetch "http://$VIP/big.bin") "
        T[$imp.tls]+="$(fetch "https://vip.test/big.bin") "
        stop_peer
        python3 - "$WORK/qs.json" <<'PY' >&2 || true
import json, sys
t = json.load(open(sys.argv[1]))["lb"]["total"]
print("[tls-loss] qsplice TLS legs:", {k: t[k] for k in sorted(t) if k.startswith("tcp_")})
PY
        ip netns exec "$CLI_NS" ip neigh flush all
        kernel_on; start_haproxy; wait_tls
        T[$imp.haproxy]+="$(fetch "https://vip.test/big.bin") "
        stop_peer; kernel_off
        log "$imp round $r: spliced ${T[$imp.spliced]}| tls ${T[$imp.tls]}| haproxy ${T[$imp.haproxy]}"
    done
    loss off "$CLI_NS" "${BNS[@]}"
done

echo
echo "=== $MB MiB download, ${LOSS}% random loss both ways, median of $ROUNDS (MB/s); congestion control: kernel ${KERNEL_CC}, qsplice TLS ${CC} ==="
printf '%-10s %12s %12s %14s %12s %14s\n' loss spliced "qsplice TLS" "HAProxy TLS" "TLS/spliced" "TLS/HAProxy"
for imp in ${IMPS:-none client backends}; do
    # shellcheck disable=SC2086
    s=$(median ${T[$imp.spliced]}); t=$(median ${T[$imp.tls]}); h=$(median ${T[$imp.haproxy]})
    python3 -c '
import sys
mb = float(sys.argv[1]); s, t, h = (float(x) for x in sys.argv[3:6])
r = lambda x: mb * 1.048576 / x
print("%-10s %12.1f %12.1f %14.1f %11.2fx %13.2fx" % (sys.argv[2], r(s), r(t), r(h), s / t, h / t))
' "$MB" "$imp" "$s" "$t" "$h"
done
echo "(command: benches/e2e/tls-loss.sh --rounds $ROUNDS --loss $LOSS --mb $MB --cc $CC)"
