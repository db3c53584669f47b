#!/usr/bin/env bash
# Fuzz smoke test for the wire parsers (dataplane/fuzz, cargo-fuzz layout).
#
#   scripts/fuzz-smoke.sh [TARGET...]
#
# Builds every fuzz target (or the ones named; `lb_stateful` included) with
# libFuzzer + sanitizer coverage and runs each for FUZZ_SECONDS seconds,
# starting from the committed corpus dataplane/fuzz/corpus/<target>/seed-*:
# hand-written seeds plus the minimised set `seed-c-*` that
# scripts/fuzz-campaign.sh merges back. The run works on a scratch copy
# (dataplane/fuzz/target/smoke-corpus/<target>/), so what earlier local runs
# left in the corpus directory (git-ignored) does not change the result and
# the committed corpus is not touched. Exits non-zero if any target
# crashes, hits an assertion, times out on an input, or fails to build; the
# reproducer is left in dataplane/fuzz/artifacts/<target>/.
#
# Only a stable toolchain is assumed: cargo-fuzz needs nightly-only flags
# (-Zsanitizer=address, ...), which RUSTC_BOOTSTRAP=1 unlocks on stable.
# AddressSanitizer is used when it builds, otherwise `--sanitizer none`
# (the crate is #![forbid(unsafe_code)], so ASan adds little; the fuzzing
# itself and its assertions are what matter).
#
# Environment:
#   FUZZ_SECONDS=N     seconds per target (default 10)
#   FUZZ_SANITIZER=S   force a sanitizer (address, none, ...); default:
#                      address, falling back to none if it fails to build
#   FUZZ_JOBS=N        cargo build jobs (default: cargo's choice)
#
# cargo-fuzz is installed with `cargo install cargo-fuzz --locked` if missing.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

FUZZ_DIR=dataplane/fuzz
SECS=${FUZZ_SECONDS:-10}
if ! [[ $SECS =~ ^[0-9]+$ ]] || ((SECS < 1)); then
    echo "fuzz-smoke: FUZZ_SECONDS must be a positive integer (got '$SECS')" >&2
    exit 2
fi

log() { echo "[fuzz-smoke] $*"; }

# --- cargo-fuzz ------------------------------------------------------------
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "cargo-fuzz not found; installing (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked
fi
log "$(cargo fuzz --version)"

# Stable toolchain: allow the -Z flags cargo-fuzz passes.
export RUSTC_BOOTSTRAP=1

# --- targets ---------------------------------------------------------------
mapfile -t ALL < <(cargo fuzz list --fuzz-dir "$FUZZ_DIR")
if ((${#ALL[@]} == 0)); then
    echo "fuzz-smoke: no fuzz targets found in $FUZZ_DIR" >&2
    exit 1
fi
if (($#)); then
    TARGETS=("$@")
    for t in "${TARGETS[@]}"; do
        if ! printf '%s\n' "${ALL[@]}" | grep -qx -- "$t"; then
            echo "fuzz-smoke: unknown target '$t' (have: ${ALL[*]})" >&2
            exit 2
        fi
    done
else
    TARGETS=("${ALL[@]}")
fi

BUILD_ARGS=(--fuzz-dir "$FUZZ_DIR")
# cargo-fuzz has no --jobs flag; cargo reads the job count from the environment.
[[ -n ${FUZZ_JOBS:-} ]] && export CARGO_BUILD_JOBS=$FUZZ_JOBS

# --- build (pick the sanitizer) --------------------------------------------
# `cargo fuzz build` takes zero (= all) or one target.
build() {
    local san=$1 t
    if ((${#TARGETS[@]} == ${#ALL[@]})); then
        cargo fuzz build "${BUILD_ARGS[@]}" --sanitizer "$san"
    else
        for t in "${TARGETS[@]}"; do
            cargo fuzz build "${BUILD_ARGS[@]}" --sanitizer "$san" "$t" || return 1
        done
    fi
}
if [[ -n ${FUZZ_SANITIZER:-} ]]; then
    SAN=$FUZZ_SANITIZER
    log "building ${#TARGETS[@]} target(s) with --sanitizer $SAN"
    build "$SAN"
else
    SAN=address
    log "building ${#TARGETS[@]} target(s) with --sanitizer $SAN"
    if ! build "$SAN"; then
        SAN=none
        log "AddressSanitizer build failed; retrying with --sanitizer none"
        build "$SAN"
    fi
fi

# --- run -------------------------------------------------------------------
LOGDIR=$FUZZ_DIR/target/smoke-logs
mkdir -p "$LOGDIR"
declare -A RESULT=() RUNS=()
FAILED=0
CORPUS_COPY=$FUZZ_DIR/target/smoke-corpus
for t in "${TARGETS[@]}"; do
    mkdir -p "$FUZZ_DIR/corpus/$t"
    # The committed corpus only (tracked files; outside a git checkout,
    # the seed-* files).
    work=$CORPUS_COPY/$t
    rm -rf "$work"
    mkdir -p "$work"
    if git ls-files --error-unmatch "$FUZZ_DIR/corpus/$t" >/dev/null 2>&1; then
        git ls-files -z -- "$FUZZ_DIR/corpus/$t" | xargs -0 -r cp -t "$work" --
    else
        find "$FUZZ_DIR/corpus/$t" -maxdepth 1 -type f -name 'seed-*' -exec cp -t "$work" -- {} +
    fi
    logf=$LOGDIR/$t.log
    log "running $t for ${SECS}s from $(find "$work" -type f | wc -l) committed inputs (log: $logf)"
    # -timeout: any single input taking > 10 s is a hang (a bug here).
    if cargo fuzz run "${BUILD_ARGS[@]}" --sanitizer "$SAN" "$t" "$work" -- \
        -max_total_time="$SECS" -timeout=10 -print_final_stats=1 >"$logf" 2>&1; then
        RESULT[$t]=ok
    else
        RESULT[$t]=FAIL
        FAILED=1
        echo "----- $t: last lines of $logf -----" >&2
        tail -n 40 "$logf" >&2
        echo "----- reproducer(s): $(find "$FUZZ_DIR/artifacts/$t" -type f 2>/dev/null | tr '\n' ' ')" >&2
    fi
    RUNS[$t]=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logf" | tail -n 1)
done

echo
printf '%-16s %-6s %s\n' target result executions
for t in "${TARGETS[@]}"; do
    printf '%-16s %-6s %s\n' "$t" "${RESULT[$t]}" "${RUNS[$t]:-?}"
done
if ((FAILED)); then
    log "FAILED (sanitizer=$SAN, ${SECS}s per target)"
    exit 1
fi
log "all ${#TARGETS[@]} target(s) passed (sanitizer=$SAN, ${SECS}s per target)"
