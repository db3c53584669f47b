#!/usr/bin/env bash
# Topology for the DHCP modes (conf/dhcp-tester.toml, conf/dhcp-server.toml):
#
#   qd-tst (root ns, DPDK dhcp-tester)  <->  qd-srv0 (ns qd-srv, 10.30.0.1/16: dnsmasq / Kea here)
#   qd-srv (root ns, DPDK dhcp-server)  <->  qd-cli0 (ns qd-cli: dhclient / udhcpc / perfdhcp here)
#
# Usage (root): scripts/dhcp-netns.sh up|down|status. Idempotent: `up` tears
# down what a previous `up` left first.
set -euo pipefail

down() {
    ip netns del qd-srv 2>/dev/null || true
    ip netns del qd-cli 2>/dev/null || true
    ip link del qd-tst 2>/dev/null || true
    ip link del qd-srv 2>/dev/null || true
}

pair() { # root-side peer-side namespace
    ip link add "$1" type veth peer name "$2"
    ip link set "$2" netns "$3"
    ip link set "$1" up
    ethtool -K "$1" tx off rx off >/dev/null 2>&1 || true
    sysctl -qw "net.ipv6.conf.$1.disable_ipv6=1" || true
    ip netns exec "$3" ip link set "$2" up
    ip netns exec "$3" ethtool -K "$2" tx off rx off >/dev/null 2>&1 || true
}

up() {
    down
    for n in qd-srv qd-cli; do
        ip netns add "$n"
        ip netns exec "$n" ip link set lo up
        ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 || true
    done
    pair qd-tst qd-srv0 qd-srv
    ip netns exec qd-srv ip addr add 10.30.0.1/16 dev qd-srv0
    pair qd-srv qd-cli0 qd-cli
    # IPv6 on the client side (dhclient -6, perfdhcp -6), usable at once
    # (no duplicate address detection); the DPDK side has no kernel IPv6.
    ip netns exec qd-cli sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.qd-cli0.accept_dad=0
    ip netns exec qd-cli sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.qd-cli0.disable_ipv6=0
    echo "[dhcp-netns] up: qd-tst <-> qd-srv0 (ns qd-srv, 10.30.0.1/16); qd-srv <-> qd-cli0 (ns qd-cli)"
}

((EUID == 0)) || { echo "must run as root" >&2; exit 1; }
case "${1:-}" in
    up) up ;;
    down) down; echo "[dhcp-netns] down" ;;
    status) ip -br link show | grep -E '^qd-' || true; ip netns list | grep -E '^qd-' || true ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
