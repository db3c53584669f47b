#!/usr/bin/env python3
"""Send hand-made (mostly malformed) Ethernet frames out of an interface.

Usage: send_frames.py IFACE DST_MAC SRC_IP DST_IP [COUNT]
Prints one line per kind: "<kind> <count>", where <kind> is the appliance's
drop reason for it. (Frames shorter than an Ethernet header cannot be sent
through a veth, and DPDK's af_packet PMD joins a PACKET_FANOUT group with
PACKET_FANOUT_FLAG_DEFRAG, so the kernel reassembles IPv4 fragments before
DPDK sees them: both cases are covered by the engine's unit tests.) Used by the end-to-end tests to
check that the appliance counts and drops bad input instead of failing.
"""
import socket
import struct
import sys


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src, dst, proto, payload, ver=4, ihl=5, tot=None, frag=0, bad_csum=False):
    tot = 20 + len(payload) if tot is None else tot
    hdr = struct.pack("!BBHHHBBH4s4s", (ver << 4) | ihl, 0, tot, 0x1234, frag, 64, proto, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    c = csum(hdr)
    if bad_csum:
        c ^= 0x5555
    return hdr[:10] + struct.pack("!H", c) + hdr[12:] + payload


def icmp_echo(bad=False):
    body = struct.pack("!BBHHH", 8, 0, 0, 0x4242, 1) + b"qsplice-e2e" * 3
    c = csum(body)
    if bad:
        c ^= 0x00FF
    return body[:2] + struct.pack("!H", c) + body[4:]


def main():
    iface, dmac, src, dst = sys.argv[1:5]
    count = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    smac = s.getsockname()[4]
    dmac = bytes.fromhex(dmac.replace(":", ""))

    def eth(etype, payload):
        f = dmac + smac + struct.pack("!H", etype) + payload
        return f + b"\0" * max(0, 60 - len(f))

    kinds = {
        "ipv4_bad_checksum": eth(0x0800, ipv4(src, dst, 1, icmp_echo(), bad_csum=True)),
        "ipv4_bad_version": eth(0x0800, ipv4(src, dst, 1, icmp_echo(), ver=6)),
        "ipv4_bad_header_len": eth(0x0800, ipv4(src, dst, 1, icmp_echo(), ihl=3)),
        "ipv4_bad_total_len": eth(0x0800, ipv4(src, dst, 1, icmp_echo(), tot=1400)),
        "icmp_bad_checksum": eth(0x0800, ipv4(src, dst, 1, icmp_echo(bad=True))),
        "arp_unsupported": eth(0x0806, struct.pack("!HHBBH", 6, 0x0800, 6, 4, 1) + b"\0" * 20),
        "unknown_ethertype": eth(0x88B5, b"hello"),
        "ipv4_not_for_us": eth(0x0800, ipv4(src, "10.10.1.77", 1, icmp_echo())),
        "tcp_no_service": eth(0x0800, ipv4(src, dst, 6, struct.pack("!HHIIBBHHH", 40000, 80, 1, 0, 0x50, 0x02, 65535, 0, 0))),
    }
    for kind, frame in kinds.items():
        for _ in range(count):
            s.send(frame)
        print(kind, count)


if __name__ == "__main__":
    main()
