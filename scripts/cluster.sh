#!/usr/bin/env bash
# A two-node qsplice cluster behind an ECMP router, in network namespaces.
#
# Usage:
#   scripts/cluster.sh up   [--prefix P] [--backends N] [--bigfile MB]
#   scripts/cluster.sh down [--prefix P]
#
# Built on scripts/netns.sh (client, backend bridge, nginx backends), then:
#
#   [ns P-client] 10.10.1.2 ── P-dut-c 10.10.1.1 [ns P-rt: router, BIRD,
#                                                  L4 ECMP (fib_multipath_hash_policy=1)]
#        P-ra 10.20.0.1 ── P-na-up   [ns P-na: node A; qsplice binds P-na-up and
#                                      P-dut-b (backend side, 10.10.2.1) with
#                                      af_packet; its kernel interface P-ka has
#                                      10.20.0.2 and runs BIRD]
#        P-rb 10.21.0.1 ── P-nb-up   [ns P-nb: node B; P-nb-up and P-nb-dn
#                                      (backend side, 10.10.2.2, into the
#                                      bridge); kernel interface P-kb 10.21.0.2]
#
# Both nodes serve the VIP 10.99.0.1:80 and announce it by BGP (AS 65001) to
# the router (AS 65000), with BFD (100 ms × 3) and a 3 s hold time.
# STATE_DIR/bird-rt.conf is the router's BIRD config; bird-na.conf /
# bird-nb.conf the nodes' (each includes STATE_DIR/vips-na.conf /
# vips-nb.conf, the routes file its qsplice writes). `up` starts the
# router's BIRD (the nodes' BIRDs run after their qsplice: they need its
# kernel interface) and prints KEY=VALUE lines.
set -euo pipefail

die() { printf '[cluster] ERROR: %s\n' "$*" >&2; exit 1; }
log() { printf '[cluster] %s\n' "$*" >&2; }

CMD=${1:-}; shift || true
PREFIX=qs
PASS=()
while (($#)); do
    case "$1" in
        --prefix) PREFIX=$2; shift ;;
        --backends|--bigfile) PASS+=("$1" "$2"); shift ;;
        *) die "unknown argument: $1" ;;
    esac
    shift
done
[[ $PREFIX =~ ^[A-Za-z0-9]{1,8}$ ]] || die "--prefix must be 1-8 of [A-Za-z0-9]"
HERE=$(cd "$(dirname "$0")" && pwd)
STATE_DIR=/tmp/qsplice-netns-$PREFIX
RT=$PREFIX-rt NA=$PREFIX-na NB=$PREFIX-nb
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
no_offload() {
    local ns=$1 ifname=$2 feat
    for feat in tx rx tso gso gro lro ufo sg; do
        nsx "$ns" ethtool -K "$ifname" "$feat" off >/dev/null 2>&1 || true
    done
}

kill_pidfile() {
    local f=$1 pid
    [[ -r $f ]] || return 0
    pid=$(tr -dc '0-9' <"$f")
    [[ -n $pid && -d /proc/$pid ]] || return 0
    [[ "$(cat /proc/$pid/comm 2>/dev/null)" == bird ]] || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
}

down() {
    for n in rt na nb; do kill_pidfile "$STATE_DIR/bird-$n.pid"; done
    for ns in "$RT" "$NA" "$NB"; do
        [[ -e /run/netns/$ns ]] && ip netns del "$ns"
    done
    "$HERE/netns.sh" down --prefix "$PREFIX" >/dev/null
}

bird_node() { # name local-ip router-ip
    cat <<CONF
router id $2;
log "$STATE_DIR/bird-$1.log" all;
protocol device { scan time 1; }
protocol bfd {
    interface "*" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; };
}
include "$STATE_DIR/vips-$1.conf";
protocol bgp uplink {
    local $2 as 65001;
    neighbor $3 as 65000;
    hold time 3; keepalive time 1; connect retry time 1; error wait time 1, 2;
    bfd on;
    ipv4 { import none; export where proto = "qsplice_vips"; next hop self; };
}
CONF
}

up() {
    down 2>/dev/null || true
    "$HERE/netns.sh" up --prefix "$PREFIX" "${PASS[@]}" >"$STATE_DIR.env.tmp" 2>/dev/null ||
        { cat "$STATE_DIR.env.tmp" >&2; die "netns.sh up failed"; }
    for ns in "$RT" "$NA" "$NB"; do
        ip netns add "$ns"
        nsx "$ns" ip link set lo up
        for k in all default; do
            echo 1 | nsx "$ns" tee /proc/sys/net/ipv6/conf/$k/disable_ipv6 >/dev/null
            echo 0 | nsx "$ns" tee /proc/sys/net/ipv4/conf/$k/rp_filter >/dev/null
        done
    done
    # Router: the client's gateway, forwarding, ECMP on the 5-tuple.
    ip link set "$PREFIX-dut-c" netns "$RT"
    nsx "$RT" ip addr add 10.10.1.1/24 dev "$PREFIX-dut-c"
    nsx "$RT" ip link set "$PREFIX-dut-c" arp on up
    echo 1 | nsx "$RT" tee /proc/sys/net/ipv4/ip_forward >/dev/null
    echo 1 | nsx "$RT" tee /proc/sys/net/ipv4/fib_multipath_hash_policy >/dev/null
    local n ip rip
    for n in a b; do
        [[ $n == a ]] && { ip=10.20.0.2; rip=10.20.0.1; } || { ip=10.21.0.2; rip=10.21.0.1; }
        ip link add "$PREFIX-r$n" type veth peer name "$PREFIX-n$n-up"
        ip link set "$PREFIX-r$n" netns "$RT"
        ip link set "$PREFIX-n$n-up" netns "$PREFIX-n$n"
        nsx "$RT" ip addr add "$rip/24" dev "$PREFIX-r$n"
        nsx "$RT" ip link set "$PREFIX-r$n" up
        nsx "$PREFIX-n$n" ip link set "$PREFIX-n$n-up" up
        no_offload "$RT" "$PREFIX-r$n"
        no_offload "$PREFIX-n$n" "$PREFIX-n$n-up"
        echo "$(bird_node "n$n" "$ip" "$rip")" >"$STATE_DIR/bird-n$n.conf"
        printf 'protocol static qsplice_vips { ipv4; }\n' >"$STATE_DIR/vips-n$n.conf"
    done
    # Backend side: node A takes netns.sh's DUT backend veth, node B a new
    # port on the backend bridge.
    ip link set "$PREFIX-dut-b" netns "$NA"
    nsx "$NA" ip link set "$PREFIX-dut-b" up
    ip link add "$PREFIX-nb-dn" type veth peer name "$PREFIX-sw-nb"
    ip link set "$PREFIX-sw-nb" netns "$PREFIX-sw"
    ip link set "$PREFIX-nb-dn" netns "$NB"
    nsx "$PREFIX-sw" ip link set "$PREFIX-sw-nb" master "$PREFIX-br0" up
    nsx "$NB" ip link set "$PREFIX-nb-dn" up
    no_offload "$PREFIX-sw" "$PREFIX-sw-nb"
    no_offload "$NB" "$PREFIX-nb-dn"
    cat >"$STATE_DIR/bird-rt.conf" <<CONF
router id 10.10.1.1;
log "$STATE_DIR/bird-rt.log" all;
protocol device { scan time 1; }
protocol bfd {
    interface "*" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; };
}
protocol kernel {
    ipv4 { export where source = RTS_BGP; };
    merge paths on;
}
template bgp node {
    local as 65000;
    hold time 3; keepalive time 1; connect retry time 1; error wait time 1, 2;
    bfd on;
    ipv4 { import all; export none; };
}
protocol bgp na from node { neighbor 10.20.0.2 as 65001; }
protocol bgp nb from node { neighbor 10.21.0.2 as 65001; }
CONF
    nsx "$RT" bird -c "$STATE_DIR/bird-rt.conf" -s "$STATE_DIR/bird-rt.ctl" -P "$STATE_DIR/bird-rt.pid" ||
        die "router bird did not start"
    grep -v '^DUT_\|^VIP=' "$STATE_DIR.env.tmp"
    rm -f "$STATE_DIR.env.tmp"
    cat <<VARS
ROUTER_NS=$RT
NODE_A_NS=$NA
NODE_B_NS=$NB
NODE_A_UP_IF=$PREFIX-na-up
NODE_A_DOWN_IF=$PREFIX-dut-b
NODE_B_UP_IF=$PREFIX-nb-up
NODE_B_DOWN_IF=$PREFIX-nb-dn
NODE_A_KERNEL_IF=$PREFIX-ka
NODE_B_KERNEL_IF=$PREFIX-kb
VIP=10.99.0.1
ROUTER_CTL=$STATE_DIR/bird-rt.ctl
VARS
}

case "$CMD" in
    up) up ;;
    down) down ;;
    *) die "usage: cluster.sh up|down [--prefix P] [--backends N] [--bigfile MB]" ;;
esac
