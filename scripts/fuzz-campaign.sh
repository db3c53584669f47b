#!/usr/bin/env bash
# Fuzz campaign: every target in dataplane/fuzz (or the ones named), one at
# a time, single process, for a bounded number of executions or time, then
# the corpus minimised back into the committed corpus and one markdown row
# per target appended to a report.
#
#   scripts/fuzz-campaign.sh [--runs N] [--seconds S] [--timeout T] [--report FILE] [--no-merge] [TARGET...]
#
#   --runs N       executions per target (default 10000000)
#   --seconds S    time per target, whichever comes first (default 3600)
#   --timeout T    libFuzzer's per-input limit, wall-clock seconds (default
#                  10); raise it when the campaign runs at idle priority
#                  beside other work, where a starved process can exceed
#                  it on an input that replays in milliseconds
#   --report FILE  markdown table to append to (default
#                  dataplane/fuzz/target/campaign.md; a header is written
#                  when the file is new)
#   --no-merge     leave the committed corpus alone
#
# Per target: the committed corpus dataplane/fuzz/corpus/<t>/ (hand-written
# seeds `seed-*` and the previous campaign's minimised set `seed-c-*`) is
# copied to a scratch corpus (dataplane/fuzz/target/campaign/<t>/, git-
# ignored), libFuzzer runs on it with -runs / -max_total_time, and the
# result is minimised with -merge=1: the old `seed-c-*` files are replaced
# by the merged set, each named seed-c-<sha1 prefix> (files over 64 KiB and
# copies of hand-written seeds are skipped). Crash reproducers stay in
# dataplane/fuzz/artifacts/<t>/ and the run stops at the first one (the row
# says so and the script exits non-zero at the end).
#
# Build flags are those of scripts/fuzz-smoke.sh: stable toolchain with
# RUSTC_BOOTSTRAP=1, AddressSanitizer (FUZZ_SANITIZER=none to skip it; it
# falls back to none when ASan does not build). The full campaign on one
# core is ~16 h (16 targets x 1 h cap); a smaller budget for a smoke-sized
# table: scripts/fuzz-campaign.sh --seconds 60.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

FUZZ_DIR=dataplane/fuzz
RUNS=10000000
SECS=3600
TIMEOUT=10
REPORT=$FUZZ_DIR/target/campaign.md
MERGE=1
TARGETS=()
while (($#)); do
    case $1 in
        --runs) RUNS=${2:?}; shift ;;
        --seconds) SECS=${2:?}; shift ;;
        --timeout) TIMEOUT=${2:?}; shift ;;
        --report) REPORT=${2:?}; shift ;;
        --no-merge) MERGE=0 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "fuzz-campaign: unknown option $1" >&2; exit 2 ;;
        *) TARGETS+=("$1") ;;
    esac
    shift
done
for v in "$RUNS" "$SECS" "$TIMEOUT"; do
    [[ $v =~ ^[0-9]+$ ]] && ((v > 0)) || { echo "fuzz-campaign: --runs/--seconds/--timeout must be positive integers" >&2; exit 2; }
done

log() { echo "[fuzz-campaign] $*" >&2; }

if ! cargo fuzz --version >/dev/null 2>&1; then
    log "cargo-fuzz not found; installing (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

mapfile -t ALL < <(cargo fuzz list --fuzz-dir "$FUZZ_DIR")
((${#TARGETS[@]})) || TARGETS=("${ALL[@]}")
for t in "${TARGETS[@]}"; do
    printf '%s\n' "${ALL[@]}" | grep -qx -- "$t" || { echo "fuzz-campaign: unknown target '$t'" >&2; exit 2; }
done

# What each target drives (the report's second column).
drives() {
    case $1 in
        ethernet) echo "Ethernet header, VLAN/QinQ tags, ethernet_l3" ;;
        arp) echo "ARP view, emit/parse round trip" ;;
        ipv4) echo "IPv4 header, checksum, RFC 1624 updates" ;;
        icmp) echo "ICMP view, echo reply in place" ;;
        udp) echo "UDP view + checksum (addresses from the input)" ;;
        tcp) echo "TCP view, options iterator, MSS clamp, checksum" ;;
        packet_parser) echo "whole-frame classification (Ethernet to L4)" ;;
        splice_translate) echo "splice per-segment rewrite (seq/ack, SACK, TS, NAT)" ;;
        dhcp) echo "DHCPv4 wire parse/emit incl. Option 82, client/server state machines" ;;
        lb_segments) echo "LbCore on one spliced VIP: raw segments, handshakes, timers" ;;
        lb_stateful) echo "LbCore with spliced + TLS-terminated + session-aware VIPs: frame sequences, real TLS clients, timers; tables empty after timeouts" ;;
        tls_hello) echo "TLS ClientHello/ServerHello readers, record reassembly" ;;
        tls_session) echo "server TlsSession (rustls) fed arbitrary client bytes" ;;
        pktgen_rx) echo "pktgen receive path (timestamps, sequence, VLAN)" ;;
        http_xff) echo "HTTP/1.1 X-Forwarded-For inserter, any segmentation" ;;
        http_rules) echo "content-aware rule matching (Host, path, cookie)" ;;
        *) echo "-" ;;
    esac
}

# --- build (the sanitizer logic of fuzz-smoke.sh) ---------------------------
build() {
    local san=$1 t
    for t in "${TARGETS[@]}"; do
        cargo fuzz build --fuzz-dir "$FUZZ_DIR" --sanitizer "$san" "$t" || return 1
    done
}
if [[ -n ${FUZZ_SANITIZER:-} ]]; then
    SAN=$FUZZ_SANITIZER
    build "$SAN"
else
    SAN=address
    if ! build "$SAN"; then
        SAN=none
        log "AddressSanitizer build failed; using --sanitizer none"
        build "$SAN"
    fi
fi

# --- report header ----------------------------------------------------------
mkdir -p "$(dirname "$REPORT")"
if [[ ! -s $REPORT ]]; then
    {
        echo "| target | drives | executions | exec/s | cov | ft | corpus (files, KiB) | crashes | budget |"
        echo "|---|---|---:|---:|---:|---:|---:|---|---|"
    } >"$REPORT"
fi

FAILED=0
WORKROOT=$FUZZ_DIR/target/campaign
for t in "${TARGETS[@]}"; do
    corpus=$FUZZ_DIR/corpus/$t
    work=$WORKROOT/$t
    logf=$WORKROOT/$t.log
    rm -rf "$work"
    mkdir -p "$work" "$corpus"
    # The committed corpus only (not what earlier local runs left there).
    if git ls-files --error-unmatch "$corpus" >/dev/null 2>&1; then
        git ls-files -z -- "$corpus" | xargs -0 -r cp -t "$work" --
    else
        find "$corpus" -maxdepth 1 -type f -name 'seed-*' -exec cp -t "$work" -- {} +
    fi
    mkdir -p "$FUZZ_DIR/artifacts/$t"
    find "$FUZZ_DIR/artifacts/$t" -type f | sort >"$WORKROOT/$t.artifacts-before"
    log "$t: -runs=$RUNS -max_total_time=$SECS ($(find "$work" -type f | wc -l) corpus files)"
    rc=0
    cargo fuzz run --fuzz-dir "$FUZZ_DIR" --sanitizer "$SAN" "$t" "$work" -- \
        -runs="$RUNS" -max_total_time="$SECS" -timeout="$TIMEOUT" -print_final_stats=1 \
        >"$logf" 2>&1 || rc=$?
    new_arts=$(find "$FUZZ_DIR/artifacts/$t" -type f | sort |
        comm -13 "$WORKROOT/$t.artifacts-before" - | tr '\n' ' ')
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logf" | tail -n 1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logf" | tail -n 1)
    # The last status line: "#N DONE cov: C ft: F corp: ..." (or the last
    # NEW/REDUCE/pulse line when it stopped on a crash).
    last=$(grep -E '^#[0-9]+' "$logf" | tail -n 1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    crashes=$(wc -w <<<"$new_arts")
    if ((rc != 0)) || ((crashes > 0)); then
        FAILED=1
        crash_cell="**$((crashes > 0 ? crashes : 1))** (rc $rc: ${new_arts:-see $logf})"
        log "$t: FAILED (rc $rc); log $logf"
        tail -n 30 "$logf" >&2
    else
        crash_cell=0
    fi
    if ((MERGE)); then
        merged=$WORKROOT/$t.merged
        rm -rf "$merged"
        mkdir -p "$merged"
        cargo fuzz run --fuzz-dir "$FUZZ_DIR" --sanitizer "$SAN" "$t" "$merged" "$work" -- \
            -merge=1 -timeout="$TIMEOUT" >"$WORKROOT/$t.merge.log" 2>&1 || log "$t: merge failed (see $WORKROOT/$t.merge.log)"
        find "$corpus" -maxdepth 1 -type f -name 'seed-c-*' -delete
        declare -A hand=()
        for f in "$corpus"/seed-*; do
            [[ -f $f ]] && hand[$(sha1sum <"$f" | cut -c1-40)]=1
        done
        for f in "$merged"/*; do
            [[ -f $f ]] || continue
            (($(stat -c %s "$f") <= 65536)) || continue
            h=$(sha1sum <"$f" | cut -c1-40)
            [[ -n ${hand[$h]:-} ]] && continue
            cp -- "$f" "$corpus/seed-c-${h:0:16}"
        done
        unset hand
    fi
    files=$(find "$corpus" -maxdepth 1 -type f -name 'seed-*' | wc -l)
    kib=$(($(find "$corpus" -maxdepth 1 -type f -name 'seed-*' -printf '%s\n' | awk '{s+=$1} END {print s+0}') / 1024))
    printf '| `%s` | %s | %s | %s | %s | %s | %s, %s | %s | -runs=%s -max_total_time=%s, %s, 1 job |\n' \
        "$t" "$(drives "$t")" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "$files" "$kib" \
        "$crash_cell" "$RUNS" "$SECS" "sanitizer=$SAN" >>"$REPORT"
    log "$t: ${execs:-?} executions, cov ${cov:-?} ft ${ft:-?}, corpus $files files"
done

log "report: $REPORT"
exit "$FAILED"
