#!/usr/bin/env bash
# The balancer's whole lcore path for one spliced segment (criterion
# `--bench lb_path`), two builds in one run: OLD (a git revision) and the
# working tree, built side by side and run alternately, so both see the
# same host (this VM's host changes the vCPUs' speed by up to 2x within
# minutes: figures from separate runs do not compare).
#
#   benches/e2e/lb-path-ab.sh OLD_REV [--rounds R] [--seconds S]
#
# Per round and build: `spliced_client_segment` (frame in -> frame out, one
# segment per poll) and `harness` (the same injection and poll with a frame
# the engine drops at once); the lcore's share is their difference. The
# working tree also runs the full-burst pair (`spliced_client_burst`,
# `harness_burst`, 32 segments per poll, per segment) and, as the floor,
# `splice/translate/data_1448B_ts` (two translations per iteration). Prints
# the medians and the new/old ratio of the share.
set -euo pipefail
cd "$(dirname "$0")/../.."

OLD=""
ROUNDS=3
SECS=2
while (($#)); do
    case "$1" in
        --rounds) ROUNDS=$2; shift ;;
        --seconds) SECS=$2; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        -*) echo "unknown argument $1" >&2; exit 2 ;;
        *) OLD=$1 ;;
    esac
    shift
done
[[ -n $OLD ]] || { echo "usage: $0 OLD_REV [--rounds R] [--seconds S]" >&2; exit 2; }
git rev-parse --verify -q "$OLD^{commit}" >/dev/null || { echo "not a revision: $OLD" >&2; exit 2; }

WORK=$(mktemp -d /tmp/lb-path-ab.XXXXXX)
cleanup() {
    git worktree remove --force "$WORK/old" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

bench_bin() { # dir target-dir -> path of the lb_path bench binary it builds
    (cd "$1" && CARGO_TARGET_DIR=$2 cargo bench -p qsplice-benches --bench "$3" --no-run 2>&1) |
        sed -n "s/.*Executable .*(\(.*\)).*/\1/p" | tail -1
}

echo "building $OLD (worktree) and the working tree ..."
git worktree add -q --detach "$WORK/old" "$OLD"
# The old build keeps its own target directory between runs (under target/).
OLD_BIN=$(bench_bin "$WORK/old" "$PWD/target/lb-path-ab-old" lb_path)
[[ $OLD_BIN = /* ]] || OLD_BIN=$WORK/old/$OLD_BIN
NEW_BIN=$(bench_bin . "${CARGO_TARGET_DIR:-$PWD/target}" lb_path)
SPLICE_BIN=$(bench_bin . "${CARGO_TARGET_DIR:-$PWD/target}" splice)
[[ -x $OLD_BIN && -x $NEW_BIN && -x $SPLICE_BIN ]] || { echo "build failed" >&2; exit 1; }

# ns of criterion's estimate for BENCH (a regex) in the output of BIN.
run() {
    "$1" --bench --measurement-time "$SECS" --warm-up-time 1 "$2" 2>&1 |
        awk '/time:/ && !/%/ { sub(/.*\[/, ""); v = $3; if ($4 == "µs") v *= 1000; print v }'
}
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

declare -a OP OH NP NH BP BH TR
for r in $(seq "$ROUNDS"); do
    mapfile -t o < <(run "$OLD_BIN" 'lb_path/(spliced_client_segment|harness)$')
    mapfile -t n < <(run "$NEW_BIN" 'lb_path/')
    t=$(run "$SPLICE_BIN" 'translate/data_1448B_ts$')
    OP+=("${o[0]}") OH+=("${o[1]}") NP+=("${n[0]}") NH+=("${n[1]}")
    BP+=("$(awk -v v="${n[2]}" 'BEGIN { print v / 32 }')") BH+=("$(awk -v v="${n[3]}" 'BEGIN { print v / 32 }')")
    TR+=("$t")
    printf 'round %d: old path %.1f harness %.1f | new path %.1f harness %.1f | burst %.1f harness %.1f per segment | translate x2 %.1f ns\n' \
        "$r" "${o[0]}" "${o[1]}" "${n[0]}" "${n[1]}" "${BP[-1]}" "${BH[-1]}" "$t"
done

m() { printf '%s\n' "$@" | median; }
# The share's median is taken over the rounds' own differences (a slow
# spell hits a path and its harness of the same round alike).
d() { local -n a=$1 b=$2; local i; for i in "${!a[@]}"; do awk -v x="${a[$i]}" -v y="${b[$i]}" 'BEGIN { print x - y }'; done | median; }
op=$(m "${OP[@]}") oh=$(m "${OH[@]}") np=$(m "${NP[@]}") nh=$(m "${NH[@]}")
bp=$(m "${BP[@]}") bh=$(m "${BH[@]}") tr=$(m "${TR[@]}")
os=$(d OP OH) ns=$(d NP NH) bs=$(d BP BH)
awk -v op="$op" -v oh="$oh" -v np="$np" -v nh="$nh" -v bp="$bp" -v bh="$bh" -v tr="$tr" \
    -v os="$os" -v ns="$ns" -v bs="$bs" -v old="$OLD" -v rounds="$ROUNDS" 'BEGIN {
    printf "\nmedians of %s rounds (ns per segment; the share: median over rounds of path - harness)\n", rounds
    printf "  %-28s path %6.1f  harness %5.1f  lcore share %5.1f\n", old, op, oh, os
    printf "  %-28s path %6.1f  harness %5.1f  lcore share %5.1f\n", "working tree", np, nh, ns
    printf "  %-28s path %6.1f  harness %5.1f  lcore share %5.1f\n", "working tree, full burst", bp, bh, bs
    printf "  translate alone (one): %.1f ns\n", tr / 2
    printf "new/old: path %.2fx, lcore share %.2fx\n", np / op, ns / os
}'
