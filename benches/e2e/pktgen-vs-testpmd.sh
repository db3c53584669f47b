#!/usr/bin/env bash
# Packet generator benchmark: `qsplice pktgen` at max rate vs
# `dpdk-testpmd --forward-mode=txonly`, both sending 64-byte frames (data
# length, i.e. 68 B with FCS for qsplice's sizes) on a net_null port from one
# lcore, measured in the same run.
#
#   benches/e2e/pktgen-vs-testpmd.sh [--seconds S] [--rounds R] [--proto udp|tcp-syn]
#
# Prints Mpps (median over rounds) and the qsplice/testpmd ratio, and writes
# it as JSON to target/bench/pktgen-vs-testpmd.json. Both sides: 2 lcores
# (main + 1 sending), burst 32, hugepages when available (else --no-huge for
# both). qsplice runs TX only (`receive = false`: net_null's rx would invent
# frames); its per-packet work is the template copy, stepped addresses and
# ports, both checksums, sequence number and TSC stamp (testpmd's txonly
# sends one fixed header without a UDP checksum).
set -euo pipefail
cd "$(dirname "$0")/../.."

SECONDS_PER_RUN=5
ROUNDS=3
PROTO=udp
while (($#)); do
    case "$1" in
        --seconds) SECONDS_PER_RUN=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        --proto) PROTO=$2; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
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
echo "hugepages: $HUGE; $ROUNDS rounds of ${SECONDS_PER_RUN}s; proto $PROTO"

cfg=$(mktemp /tmp/qsplice-pktgen-XXXX.toml)
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
device = "net_null0"
addresses = ["198.18.255.254/16"]
[pktgen]
tx_port = "p0"
receive = false
drain_ms = 0
size = 68
[[pktgen.streams]]
proto = "$PROTO"
dst_mac = "02:00:00:00:00:02"
src_ip = "198.18.0.1-198.18.0.254"
dst_ip = "198.19.0.1"
src_port = "1024-65535"
dst_port = "9"
TOML

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# testpmd prints "Tx-pps" every --stats-period; median of the periods after
# the first two (warm-up).
testpmd_mpps() {
    local log
    log=$(mktemp)
    timeout -s INT $((SECONDS_PER_RUN + 3)) dpdk-testpmd -l 0,1 "${MEM_ARGS[@]}" --no-pci --file-prefix "tp$$" \
        --vdev net_null0 --log-level=warning -- \
        --forward-mode=txonly --txpkts=64 --stats-period 1 --nb-cores=1 --burst=32 --total-num-mbufs=16384 \
        </dev/null >"$log" 2>&1 || true
    awk '/Tx-pps:/ {print $2/1e6}' "$log" | tail -n +3 | median
    rm -f "$log"
}

qsplice_mpps() {
    local j
    j=$(mktemp)
    "$QS" pktgen --config "$cfg" --duration "$SECONDS_PER_RUN" --json "$j" >/dev/null
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tx"]["pps"]/1e6)' "$j"
    rm -f "$j"
}

tp=(); qs=()
for ((r = 0; r < ROUNDS; r++)); do   # interleave the two to share the machine's noise
    tp+=("$(testpmd_mpps)")
    qs+=("$(qsplice_mpps)")
done
tpm=$(printf '%s\n' "${tp[@]}" | median)
qsm=$(printf '%s\n' "${qs[@]}" | median)
ratio=$(python3 -c "print(f'{$qsm/$tpm:.3f}' if $tpm > 0 else 'nan')")
printf '%-22s %14s %14s %8s\n' "" "testpmd Mpps" "qsplice Mpps" ratio
printf '%-22s %14.2f %14.2f %8s\n' "txonly 64B $PROTO" "$tpm" "$qsm" "$ratio"
echo "{\"hugepages\":\"$HUGE\",\"proto\":\"$PROTO\",\"rounds\":$ROUNDS,\"seconds\":$SECONDS_PER_RUN,\"testpmd_mpps\":$tpm,\"qsplice_mpps\":$qsm,\"ratio\":$ratio,\"testpmd_runs\":[$(IFS=,; echo "${tp[*]}")],\"qsplice_runs\":[$(IFS=,; echo "${qs[*]}")]}" >"$OUT/pktgen-vs-testpmd.json"
echo "written $OUT/pktgen-vs-testpmd.json"
echo "reproduce: benches/e2e/pktgen-vs-testpmd.sh --seconds $SECONDS_PER_RUN --rounds $ROUNDS --proto $PROTO"
