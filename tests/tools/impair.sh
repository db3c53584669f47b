#!/usr/bin/env bash
# Impair a link (loss, duplication, reordering) without sch_netem, which
# this kernel lacks: a tc BPF program on the clsact egress hook drops and
# duplicates ~1% each; an HTB root with a BPF classifier sends ~1% of the
# packets through a slow class, so they arrive after later ones.
#
#   tests/tools/impair.sh add NS DEV    # NS "-" = the root namespace
#   tests/tools/impair.sh del NS DEV
#
# Uses netem when the kernel has it (the same percentages).
set -euo pipefail
op=${1:?add|del} ns=${2:?namespace} dev=${3:?device}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ $ns == - ]]; then nsx=(); else nsx=(ip netns exec "$ns"); fi
case $op in
add)
    if "${nsx[@]}" tc qdisc add dev "$dev" root netem loss 1% delay 1ms reorder 1% 50% duplicate 1% 2>/dev/null; then
        exit 0
    fi
    obj=$(mktemp --suffix=.o)
    trap 'rm -f "$obj"' EXIT
    inc=/usr/include/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
    clang -O2 -target bpf -I"$inc" -c "$here/impair.c" -o "$obj"
    "${nsx[@]}" tc qdisc add dev "$dev" clsact
    "${nsx[@]}" tc filter add dev "$dev" egress bpf da obj "$obj" sec egress
    "${nsx[@]}" tc qdisc add dev "$dev" root handle 1: htb default 10
    "${nsx[@]}" tc class add dev "$dev" parent 1: classid 1:10 htb rate 10gbit quantum 60000
    "${nsx[@]}" tc class add dev "$dev" parent 1: classid 1:20 htb rate 20mbit ceil 20mbit
    "${nsx[@]}" tc filter add dev "$dev" parent 1: bpf obj "$obj" sec reorder
    ;;
del)
    "${nsx[@]}" tc qdisc del dev "$dev" root 2>/dev/null || true
    "${nsx[@]}" tc qdisc del dev "$dev" clsact 2>/dev/null || true
    ;;
*) echo "usage: $0 add|del NS DEV" >&2; exit 2 ;;
esac
