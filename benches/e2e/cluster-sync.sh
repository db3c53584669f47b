#!/usr/bin/env bash
# The cost of the cluster's flow sync (`[cluster] flow_sync`): new
# connections/s of one qsplice node without a cluster and with every
# spliced flow's record published to Redis, in one run; Redis operations
# per connection and Redis memory per flow record.
#
#   benches/e2e/cluster-sync.sh [--seconds N] [--rounds R] [--conns C] [--idle-sleep-us U]
#
# Rounds alternate "off" (no [cluster] section) and "on" ([cluster] with
# flow_sync = true, Redis on 127.0.0.1), each a fresh qsplice process on the
# scripts/netns.sh topology (one worker lcore, conf/lb.toml) and wrk with
# `Connection: close` from the client namespace. After each "on" round the
# node's status gives the flow sync's Redis commands and the spliced
# connections, and Redis' INFO the memory its flow hashes hold. Prints each
# round, the medians and on / off. Bounded: every load runs N seconds.
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
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

. benches/e2e/lib.sh
bench_init qy cluster-sync wrk curl redis-server redis-cli
MGMT=127.0.0.1:19181
RPORT=16379

redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$WORK" >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 50); do
    redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break
    sleep 0.1
done

start_qsplice() { # off|on
    local mode=$1
    sed -e "s/qs-dut-c\"/$DUT_C\"/" -e "s/qs-dut-b\"/$DUT_B\"/" \
        -e "s/^mbufs = .*/mbufs = 32767/" \
        -e "s/^memory_mb = .*/memory_mb = 1024/" \
        -e "s/^stats_interval_ms = .*/stats_interval_ms = 1000\nidle_sleep_us = $IDLE_SLEEP_US/" \
        conf/lb.toml >"$WORK/lb.toml"
    printf '\n[management]\nlisten = "%s"\n' "$MGMT" >>"$WORK/lb.toml"
    if [[ $mode == on ]]; then
        printf '\n[cluster]\nredis = "redis://127.0.0.1:%s"\nname = "bench"\nnode = "n1"\nflow_sync = true\n' \
            "$RPORT" >>"$WORK/lb.toml"
    fi
    "$QS" lb --config "$WORK/lb.toml" >"$WORK/qsplice-$mode.out" 2>&1 &
    PIDS+=($!)
    QS_PID=$!
}

conn_rate() {
    local out
    out=$(ip netns exec "$CLI_NS" wrk -t2 -c"$CONNS" -d"${SECS}s" -H 'Connection: close' "http://$VIP/")
    echo "$out" >>"$WORK/wrk.log"
    if grep -q 'Socket errors' <<<"$out"; then log "$(grep 'Socket errors' <<<"$out")"; fi
    sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out"
}

flow_records() {
    local n=0 k
    for k in $(redis-cli -p "$RPORT" --scan --pattern 'bench:flows:*'); do
        n=$((n + $(redis-cli -p "$RPORT" hlen "$k")))
    done
    echo "$n"
}

used_memory() {
    redis-cli -p "$RPORT" info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p' | tr -d '\r'
}

OFF=()
ON=()
OPS=()
BYTES=()
for r in $(seq 1 "$ROUNDS"); do
    for mode in off on; do
        redis-cli -p "$RPORT" flushall >/dev/null
        mem0=$(used_memory)
        start_qsplice "$mode"
        wait_vip
        v=$(conn_rate)
        extra=""
        if [[ $mode == on ]]; then
            sleep 1 # the last batch
            st=$(curl -s -m 2 "http://$MGMT/api/v1/status")
            read -r ops spliced published < <(python3 -c '
import json, sys
s = json.load(sys.stdin)
print(s["cluster"]["flows"]["redis_ops"], s["lb"]["total"]["conn_spliced"], s["cluster"]["flows"]["published"])' <<<"$st")
            recs=$(flow_records)
            mem1=$(used_memory)
            OPS+=("$(python3 -c "print($ops / max($spliced, 1))")")
            BYTES+=("$(python3 -c "print(($mem1 - $mem0) / max($recs, 1))")")
            extra=" (spliced $spliced, records published $published, distinct in Redis $recs, redis commands $ops)"
        fi
        kill -TERM "$QS_PID"; wait "$QS_PID" 2>/dev/null || true
        if [[ $mode == off ]]; then OFF+=("$v"); else ON+=("$v"); fi
        log "round $r flow sync $mode: $v conn/s$extra"
        ip netns exec "$CLI_NS" ip neigh flush all
        sleep 2
    done
done

python3 - "$SECS" "$CONNS" "$IDLE_SLEEP_US" "${OFF[*]}" "${ON[*]}" "${OPS[*]}" "${BYTES[*]}" <<'PY'
import statistics, sys
secs, conns, idle, off, on, ops, byts = sys.argv[1:]
f = lambda s: [float(x) for x in s.split()]
o, n, p, b = f(off), f(on), f(ops), f(byts)
mo, mn = statistics.median(o), statistics.median(n)
print(f"flow sync cost: wrk Connection: close, {conns} connections, {secs} s per round, one worker lcore, idle_sleep_us={idle}")
print(f"  off (no [cluster])             conn/s per round {o}  median {mo:.0f}")
print(f"  on  (every flow's record to Redis) conn/s per round {n}  median {mn:.0f}")
print(f"  on / off = {mn / mo:.3f}")
print(f"  Redis commands per connection (flow sync): median {statistics.median(p):.4f}  {p}")
print(f"  Redis memory per flow record (bytes): median {statistics.median(b):.0f}  {b}")
print("  record: 45 bytes (value) + 12 bytes (field, the client-side pair)")
PY
