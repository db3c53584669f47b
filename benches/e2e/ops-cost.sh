#!/usr/bin/env bash
# The cost of operating qsplice lb: new connections/s with the access log
# (every connection, to a file) and a Prometheus-style scrape of /metrics
# every second, against the same appliance with neither, in one run.
#
#   benches/e2e/ops-cost.sh [--seconds N] [--rounds R] [--conns C] [--idle-sleep-us U]
#
# Rounds alternate "plain" ([management] listen = "off", no access log) and
# "observed" (access log on, /metrics and /api/v1/status fetched every
# second while wrk runs), each a fresh qsplice process on the
# scripts/netns.sh topology (one worker lcore, conf/lb.toml) and wrk with
# `Connection: close` from the client namespace. Prints each round and the
# medians, and observed / plain. Bounded: every load runs N seconds.
set -euo pipefail
cd "$(dirname "$0")/../.."

SECS=8
ROUNDS=3
CONNS=64
IDLE_SLEEP_US=50
while (($#)); do
    case "$1" in
        --seconds) SECS=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        --conns) CONNS=$2; shift ;;
        --idle-sleep-us) IDLE_SLEEP_US=$2; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

. benches/e2e/lib.sh
bench_init qo ops-cost wrk curl
MGMT=127.0.0.1:19180

start_qsplice() { # plain|observed
    local mode=$1
    sed -e "s/qs-dut-c\"/$DUT_C\"/" -e "s/qs-dut-b\"/$DUT_B\"/" \
        -e "s/^mbufs = .*/mbufs = 32767/" \
        -e "s/^memory_mb = .*/memory_mb = 1024/" \
        -e "s/^stats_interval_ms = .*/stats_interval_ms = 1000\nidle_sleep_us = $IDLE_SLEEP_US/" \
        conf/lb.toml >"$WORK/lb.toml"
    if [[ $mode == plain ]]; then
        printf '\n[management]\nlisten = "off"\n' >>"$WORK/lb.toml"
    else
        printf '\n[management]\nlisten = "%s"\n' "$MGMT" >>"$WORK/lb.toml"
        # [lb.access_log] must follow the [lb] keys: insert it before the
        # first [lb.*] sub-table.
        python3 - "$WORK/lb.toml" "$WORK/access.log" <<'PY'
import sys
p, log = sys.argv[1:]
s = open(p).read()
i = s.index("\n[lb.")
s = s[:i] + f'\n[lb.access_log]\npath = "{log}"\n' + s[i:]
open(p, "w").write(s)
PY
    fi
    "$QS" lb --config "$WORK/lb.toml" >"$WORK/qsplice-$mode.out" 2>&1 &
    PIDS+=($!)
    QS_PID=$!
}


scrape_loop() { # every second until killed
    while :; do
        curl -s -m 1 -o /dev/null "http://$MGMT/metrics" || true
        curl -s -m 1 -o /dev/null "http://$MGMT/api/v1/status" || true
        sleep 1
    done
}

conn_rate() {
    local out
    out=$(ip netns exec "$CLI_NS" wrk -t2 -c"$CONNS" -d"${SECS}s" -H 'Connection: close' "http://$VIP/")
    echo "$out" >>"$WORK/wrk.log"
    if grep -q 'Socket errors' <<<"$out"; then log "$(grep 'Socket errors' <<<"$out")"; fi
    sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out"
}

PLAIN=()
OBSERVED=()
for r in $(seq 1 "$ROUNDS"); do
    for mode in plain observed; do
        start_qsplice "$mode"
        wait_vip
        SCRAPER=
        if [[ $mode == observed ]]; then
            scrape_loop &
            SCRAPER=$!
            PIDS+=("$SCRAPER")
        fi
        v=$(conn_rate)
        [[ -n $SCRAPER ]] && { kill "$SCRAPER" 2>/dev/null || true; wait "$SCRAPER" 2>/dev/null || true; }
        kill -TERM "$QS_PID"; wait "$QS_PID" 2>/dev/null || true
        if [[ $mode == plain ]]; then PLAIN+=("$v"); else OBSERVED+=("$v"); fi
        lines=0
        [[ -f $WORK/access.log ]] && lines=$(wc -l <"$WORK/access.log")
        log "round $r $mode: $v conn/s (access log lines so far: $lines)"
        ip netns exec "$CLI_NS" ip neigh flush all
        sleep 2
    done
done

python3 - "$SECS" "$CONNS" "$IDLE_SLEEP_US" "${PLAIN[*]}" "${OBSERVED[*]}" <<'PY'
import statistics, sys
secs, conns, idle, plain, observed = sys.argv[1:]
p = [float(x) for x in plain.split()]
o = [float(x) for x in observed.split()]
mp, mo = statistics.median(p), statistics.median(o)
print(f"ops cost: wrk Connection: close, {conns} connections, {secs} s per round, one worker lcore, idle_sleep_us={idle}")
print(f"  plain    (no listener, no access log)          conn/s per round {p}  median {mp:.0f}")
print(f"  observed (access log + /metrics & /api/v1/status every 1 s) conn/s per round {o}  median {mo:.0f}")
print(f"  observed / plain = {mo / mp:.3f}")
PY
