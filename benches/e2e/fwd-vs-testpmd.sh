#!/usr/bin/env bash
# Engine forwarding benchmark: qsplice's lcore loop vs dpdk-testpmd, same
# vdevs, same lcore count, same memory mode, measured in one run.
#
#   benches/e2e/fwd-vs-testpmd.sh [--seconds S] [--rounds R] [--modes "io macswap"] [--vdev net_null]
#
# Prints a table of Mpps (median over rounds) and the qsplice/testpmd ratio
# per mode, and writes it as JSON to target/bench/fwd-vs-testpmd.json.
# Both sides use 2 lcores (main + 1 forwarding), burst 32, 2 ports paired
# 0<->1, and hugepages when available (else --no-huge for both).
set -euo pipefail
cd "$(dirname "$0")/../.."

SECONDS_PER_RUN=5
ROUNDS=3
MODES="io macswap"
VDEV=net_null
while (($#)); do
    case "$1" in
        --seconds) SECONDS_PER_RUN=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        --modes) MODES=$2; shift ;;
        --vdev) VDEV=$2; shift ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

command -v dpdk-testpmd >/dev/null || { echo "dpdk-testpmd missing: run scripts/setup.sh" >&2; exit 1; }
cargo build --release --quiet --bin qsplice
QS=target/release/qsplice
OUT=target/bench
mkdir -p "$OUT"

free_huge=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
if [[ ${free_huge:-0} -ge 512 ]] && grep -q hugetlbfs /proc/mounts; then
    MEM_ARGS=(-m 1024 --in-memory); HUGE=on
else
    MEM_ARGS=(--no-huge -m 1024); HUGE=off
fi
echo "hugepages: $HUGE; $ROUNDS rounds of ${SECONDS_PER_RUN}s per mode; vdev $VDEV"

cfg=$(mktemp /tmp/qsplice-fwd-XXXX.toml)
trap 'rm -f "$cfg"' EXIT
cat >"$cfg" <<TOML
[eal]
main_lcore = 0
worker_lcores = [1]
memory_mb = 1024
hugepages = "$HUGE"
log_level = "warning"
[mempool]
mbufs = 16383
cache = 250
[engine]
burst = 32
stats_interval_ms = 0
[[ports]]
name = "p0"
device = "${VDEV}0"
addresses = ["192.0.2.1/24"]
[[ports]]
name = "p1"
device = "${VDEV}1"
addresses = ["198.51.100.1/24"]
TOML

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# testpmd prints per-port "Tx-pps" every --stats-period; sum the two ports of
# each period and take the median of the periods after the first two (warm-up).
testpmd_mpps() {
    local mode=$1 log
    log=$(mktemp)
    timeout -s INT $((SECONDS_PER_RUN + 3)) dpdk-testpmd -l 0,1 "${MEM_ARGS[@]}" --no-pci --file-prefix "tp$$" \
        --vdev "${VDEV}0" --vdev "${VDEV}1" --log-level=warning -- \
        --forward-mode="$mode" --stats-period 1 --nb-cores=1 --burst=32 --total-num-mbufs=16384 \
        </dev/null >"$log" 2>&1 || true
    awk '/Tx-pps:/ {s+=$2; n++; if (n==2) {print s/1e6; s=0; n=0}}' "$log" | tail -n +3 | median
    rm -f "$log"
}

qsplice_mpps() {
    local mode=$1
    "$QS" fwd-bench --config "$cfg" --mode "$mode" --seconds "$SECONDS_PER_RUN" --warmup 1 --json \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["pps"]/1e6)'
}

json="{\"hugepages\":\"$HUGE\",\"vdev\":\"$VDEV\",\"rounds\":$ROUNDS,\"seconds\":$SECONDS_PER_RUN,\"results\":["
printf '%-10s %14s %14s %8s\n' mode "testpmd Mpps" "qsplice Mpps" ratio
first=1
for mode in $MODES; do
    tp=(); qs=()
    for ((r = 0; r < ROUNDS; r++)); do   # interleave the two to share the machine's noise
        tp+=("$(testpmd_mpps "$mode")")
        qs+=("$(qsplice_mpps "$mode")")
    done
    tpm=$(printf '%s\n' "${tp[@]}" | median)
    qsm=$(printf '%s\n' "${qs[@]}" | median)
    ratio=$(python3 -c "print(f'{$qsm/$tpm:.3f}' if $tpm > 0 else 'nan')")
    printf '%-10s %14.2f %14.2f %8s\n' "$mode" "$tpm" "$qsm" "$ratio"
    [[ $first == 1 ]] || json+=","
    first=0
    json+="{\"mode\":\"$mode\",\"testpmd_mpps\":$tpm,\"qsplice_mpps\":$qsm,\"ratio\":$ratio}"
done
json+="]}"
echo "$json" >"$OUT/fwd-vs-testpmd.json"
echo "written $OUT/fwd-vs-testpmd.json"
echo "reproduce: benches/e2e/fwd-vs-testpmd.sh --seconds $SECONDS_PER_RUN --rounds $ROUNDS"
