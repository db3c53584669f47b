#!/usr/bin/env bash
# qsplice loadgen vs wrk as the HTTP client of the same nginx backend (b1),
# in one run on the scripts/netns.sh topology:
#
#   wrk            from backend namespace b2 (the kernel's TCP, one thread)
#   qsplice loadgen from the appliance's backend port (af_packet, its own TCP,
#                  one worker lcore)
#
# two figures each, medians of ROUNDS interleaved rounds:
#   conn/s  one request per connection (wrk: `Connection: close`)
#   req/s   keep-alive requests on C connections
# and the ratio loadgen / wrk. nginx b1 is the same server for both; on this
# 2-vCPU VM the client, nginx and (for qsplice) the busy-polling lcore share
# two cores, so the ratio says which client is the cheaper one here, not
# either's ceiling.
#
#   benches/e2e/loadgen-vs-wrk.sh [--seconds S] [--conns C] [--rounds R]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=5
CONNS=32
ROUNDS=3
while (($#)); do
    case "$1" in
        --seconds) SECS=$2; shift ;;
        --conns) CONNS=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
. benches/e2e/lib.sh
bench_init qlw loadgen-bench wrk jq
B1=10.10.2.11
B2_NS=$P-b2
ip netns exec "$B2_NS" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65000"

cfg() { # role-specific [loadgen] keys
    sed -e "s/qs-dut-c/$DUT_C/; s/qs-dut-b/$DUT_B/" -e '/^\[loadgen\]/,$d' conf/loadgen.toml >"$WORK/lg.toml"
    sed -i 's/^memory_mb = .*/memory_mb = 512/' "$WORK/lg.toml"
    cat >>"$WORK/lg.toml" <<EOT
[loadgen]
role = "client"
port = "backend"
target = "$B1:80"
concurrency = $CONNS
timeout_s = $((SECS * 6 + 30))
$1
EOT
}

# loadgen: run N connections × R requests; prints conn/s or req/s.
lg_run() {
    local what=$1 out
    if [[ $what == conn ]]; then
        cfg "connections = $2
requests = 1"
    else
        cfg "connections = $CONNS
requests = $2"
    fi
    "$QS" loadgen --config "$WORK/lg.toml" --json "$WORK/lg.json" >"$WORK/lg.out" 2>&1 || {
        cat "$WORK/lg.out" >&2; echo 0; return; }
    if [[ $what == conn ]]; then jq -r '.connections_per_s' "$WORK/lg.json"; else jq -r '.requests_per_s' "$WORK/lg.json"; fi
}

wrk_run() {
    local out
    if [[ $1 == conn ]]; then
        out=$(ip netns exec "$B2_NS" wrk -t1 -c"$CONNS" -d"${SECS}s" -H 'Connection: close' "http://$B1/")
    else
        out=$(ip netns exec "$B2_NS" wrk -t1 -c"$CONNS" -d"${SECS}s" "http://$B1/")
    fi
    awk '/Requests\/sec/ {print $2}' <<<"$out"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# Sizes so that loadgen runs about as long as wrk: from a first probe.
probe=$(lg_run conn 2000)
NCONN=$(awk -v r="$probe" -v s="$SECS" 'BEGIN {n = int(r * s); if (n < 2000) n = 2000; print n}')
probe=$(lg_run req 200)
NREQ=$(awk -v r="$probe" -v s="$SECS" -v c="$CONNS" 'BEGIN {n = int(r * s / c); if (n < 200) n = 200; print n}')
log "loadgen sized to $NCONN connections (conn/s) and $CONNS × $NREQ requests (req/s)"

declare -a WC WR LC LR
for ((i = 0; i < ROUNDS; i++)); do
    WC+=("$(wrk_run conn)"); LC+=("$(lg_run conn "$NCONN")")
    WR+=("$(wrk_run req)"); LR+=("$(lg_run req "$NREQ")")
    log "round $((i + 1)): wrk ${WC[-1]} conn/s ${WR[-1]} req/s | loadgen ${LC[-1]} conn/s ${LR[-1]} req/s"
done
wc=$(printf '%s\n' "${WC[@]}" | median); wr=$(printf '%s\n' "${WR[@]}" | median)
lc=$(printf '%s\n' "${LC[@]}" | median); lr=$(printf '%s\n' "${LR[@]}" | median)
echo "== HTTP/1.1 clients of nginx b1, $CONNS connections, medians of $ROUNDS rounds =="
printf '%-24s %12s %12s\n' client "conn/s" "req/s"
printf '%-24s %12.0f %12.0f\n' "wrk (kernel TCP)" "$wc" "$wr"
printf '%-24s %12.0f %12.0f\n' "qsplice loadgen" "$lc" "$lr"
awk -v a="$lc" -v b="$wc" -v c="$lr" -v d="$wr" 'BEGIN {printf "%-24s %11.2fx %11.2fx\n", "loadgen / wrk", a / b, c / d}'
echo "(reproduce: benches/e2e/loadgen-vs-wrk.sh --seconds $SECS --conns $CONNS --rounds $ROUNDS)"
