# Shared scaffolding of the end-to-end benchmarks that put qsplice and kernel
# peers (HAProxy, nginx, nftables) in the same device position on the
# scripts/netns.sh topology. Sourced, not run:
#
#   . "$(dirname "$0")/lib.sh"
#   bench_init PREFIX TAG TOOL...   # after argument parsing
#   KERNEL_ADDRS=(10.10.2.2 ...)    # backend-side addresses the kernel peers use
#   kernel_on / kernel_off          # the kernel as the device, and back
#
# bench_init checks the tools, builds the release binary, brings the topology
# up under PREFIX (client namespace tuned as a load generator) and arranges
# for everything in PIDS, the kernel addresses and the topology to be removed
# on exit. A script may define kernel_off_hook (run first by kernel_off).

bench_init() {
    [[ -v NETNS_EXTRA ]] || NETNS_EXTRA=()
    P=$1
    TAG=$2
    shift 2
    CLI_NS=$P-client
    DUT_C=$P-dut-c
    DUT_B=$P-dut-b
    VIP=10.10.1.1
    BACKENDS=(10.10.2.11 10.10.2.12 10.10.2.13)
    QS=target/release/qsplice
    PIDS=()
    KERNEL_ADDRS=()
    FWD_SAVED=$(sysctl -n net.ipv4.ip_forward)
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null || { echo "missing $t: run scripts/setup.sh" >&2; exit 1; }
    done
    WORK=$(mktemp -d "/tmp/qsplice-$TAG-XXXX")
    trap bench_cleanup EXIT
    cargo build --release --bin qsplice >&2
    scripts/netns.sh up --prefix "$P" --backends 3 "${NETNS_EXTRA[@]}" >"$WORK/netns.env"
    # The client namespace is a load generator: let it reuse its TIME-WAIT
    # ports and give it the whole port range, or the client itself runs out
    # of ports (~28k ephemeral ports / 60 s TIME-WAIT ≈ 470 conn/s once a
    # peer leaves the client closing first) and every device after that
    # looks slow.
    ip netns exec "$CLI_NS" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65000"
}

log() { printf '[%s] %s\n' "$TAG" "$*" >&2; }

bench_cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    kernel_off 2>/dev/null || true
    scripts/netns.sh down --prefix "$P" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}

# The kernel as the device: the VIP on the client-side veth, KERNEL_ADDRS on
# the backend-side one, ARP answered (the topology keeps it off for qsplice).
kernel_on() {
    local a i
    ip addr add "$VIP/24" dev "$DUT_C"
    for a in "${KERNEL_ADDRS[@]}"; do ip addr add "$a/24" dev "$DUT_B"; done
    for i in "$DUT_C" "$DUT_B"; do
        ip link set dev "$i" arp on
        sysctl -qw "net.ipv4.conf.$i.arp_ignore=0"
    done
}

kernel_off() {
    local i
    if declare -F kernel_off_hook >/dev/null; then kernel_off_hook; fi
    for i in "$DUT_C" "$DUT_B"; do
        ip addr flush dev "$i" 2>/dev/null || true
        ip link set dev "$i" arp off 2>/dev/null || true
        sysctl -qw "net.ipv4.conf.$i.arp_ignore=8" 2>/dev/null || true
        sysctl -qw "net.ipv4.conf.$i.forwarding=0" 2>/dev/null || true
    done
    sysctl -qw "net.ipv4.ip_forward=$FWD_SAVED"
    ip netns exec "$CLI_NS" ip neigh flush all 2>/dev/null || true
}

# Wait until the VIP answers plain HTTP (then one more second for health
# checks and ARP to settle on every backend). Scripts whose VIP is not plain
# HTTP define their own wait_vip after sourcing this file.
wait_vip() {
    for _ in $(seq 1 100); do
        if ip netns exec "$CLI_NS" curl -sf -m 1 -o /dev/null "http://$VIP/"; then
            sleep 1
            return 0
        fi
        sleep 0.2
    done
    echo "VIP not answering" >&2
    return 1
}
