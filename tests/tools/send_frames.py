#!/usr/bin/env python3
"""Send hand-made (mostly malformed) Ethernet frames out of an interface.

Usage: send_frames.py [--lb [--port=P] [--no-cookie]] IFACE DST_MAC SRC_IP DST_IP [COUNT]
       send_frames.py --v6 IFACE DST_MAC SRC_IP6 DST_IP6 [COUNT]
       send_frames.py --syn-flood6 [--port=P] [--seconds=S] IFACE DST_MAC SRC_PREFIX6 DST_IP6 COUNT
Prints one line per kind: "<kind> <count>", where <kind> is the appliance's
drop reason for it. With --lb, hostile TCP segments to DST_IP port 80 (a
load-balancer VIP; --port=P: another port, e.g. a TLS VIP's 443) instead,
named by the `lb` counter that counts them; bad checksums come as a SYN, a
RST, a FIN and a data segment (none may be answered or end anything);
--no-cookie leaves out the forged-cookie ACK. With --v6, hostile IPv6
frames to DST_IP6 (an address of the port): bad headers, extension-header
chains, fragments, bad ICMPv6 checksums, neighbor messages that break RFC
4861, named by the engine's drop reason. (Frames shorter than an Ethernet header cannot be sent
through a veth, and DPDK's af_packet PMD joins a PACKET_FANOUT group with
PACKET_FANOUT_FLAG_DEFRAG, so the kernel reassembles IPv4 fragments before
DPDK sees them: both cases are covered by the engine's unit tests.) Used by the end-to-end tests to
check that the appliance counts and drops bad input instead of failing.
With --syn-flood6, COUNT SYNs to DST_IP6 port P (default 80), each from a
random address in SRC_PREFIX6 (a /64, e.g. 2001:db8:1::) and a random
port, for at most S seconds (default 10); prints "sent N".
"""
import os
import time
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


DPORT = 80


def tcp(src, dst, flags, seq=1, ack=0, doff=5, opts=b"", payload=b"", bad_csum=False, sport=40999):
    hdr = struct.pack("!HHIIBBHHH", sport, DPORT, seq, ack, doff << 4, flags, 65535, 0, 0) + opts
    seg = hdr + payload
    ph = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(seg))
    c = csum(ph + seg)
    if bad_csum:
        c ^= 0x0F0F
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def ipv6(src, dst, nh, payload, ver=6, plen=None, hop=255):
    plen = len(payload) if plen is None else plen
    return (struct.pack("!IHBB", (ver << 28), plen, nh, hop)
            + socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) + payload)


def icmp6(src, dst, body, bad=False):
    ph = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
          + struct.pack("!IxxxB", len(body), 58))
    c = csum(ph + body[:2] + b"\0\0" + body[4:])
    if bad:
        c ^= 0x0F0F
    return body[:2] + struct.pack("!H", c) + body[4:]


def v6_kinds(eth, src, dst):
    def ns(target):
        return struct.pack("!BBHI", 135, 0, 0, 0) + socket.inet_pton(socket.AF_INET6, target)
    echo = struct.pack("!BBHHH", 128, 0, 0, 0x4242, 1) + b"qsplice-e2e"
    opts = lambda n, last: b"".join(bytes([60 if i < n - 1 else last, 0, 1, 4, 0, 0, 0, 0]) for i in range(n))
    return {
        "ipv6_bad_version": eth(0x86DD, ipv6(src, dst, 58, icmp6(src, dst, echo), ver=4)),
        "ipv6_bad_payload_len": eth(0x86DD, ipv6(src, dst, 58, icmp6(src, dst, echo), plen=1400)),
        "ipv6_ext_too_many": eth(0x86DD, ipv6(src, dst, 60, opts(9, 58) + icmp6(src, dst, echo))),
        "ipv6_ext_invalid": eth(0x86DD, ipv6(src, dst, 60, bytes([0, 0, 1, 4, 0, 0, 0, 0]) + bytes([58, 0, 1, 4, 0, 0, 0, 0]) + icmp6(src, dst, echo))),
        "ipv6_ext_truncated": eth(0x86DD, ipv6(src, dst, 60, bytes([58, 9, 1, 4, 0, 0, 0, 0]))),
        "ipv6_fragment": eth(0x86DD, ipv6(src, dst, 44, struct.pack("!BBHI", 58, 0, 1, 7) + icmp6(src, dst, echo))),
        "ipv6_no_service": eth(0x86DD, ipv6(src, dst, 6, b"\0" * 20)),
        "ipv6_not_for_us": eth(0x86DD, ipv6(src, "2001:db8:1::77", 58, icmp6(src, "2001:db8:1::77", echo))),
        "icmpv6_bad_checksum": eth(0x86DD, ipv6(src, dst, 58, icmp6(src, dst, echo, bad=True))),
        "ndp_invalid": eth(0x86DD, ipv6(src, dst, 58, icmp6(src, dst, ns(dst)), hop=64)),
        "ndp_not_for_us": eth(0x86DD, ipv6(src, dst, 58, icmp6(src, dst, ns("2001:db8:1::77")))),
    }


def syn_flood6(s, eth, prefix, dst, count, seconds):
    """COUNT SYNs from random sources in PREFIX/64 to DST:DPORT (bounded in time)."""
    net = socket.inet_pton(socket.AF_INET6, prefix)[:8]
    d = socket.inet_pton(socket.AF_INET6, dst)
    end = time.monotonic() + seconds
    sent = 0
    while sent < count and time.monotonic() < end:
        rnd = os.urandom(1024)
        for k in range(0, 1024 - 12, 12):
            if sent >= count:
                break
            src = net + rnd[k:k + 8]
            sport = 1024 + int.from_bytes(rnd[k + 8:k + 10], "big") % 60000
            seq = int.from_bytes(rnd[k + 8:k + 12], "big")
            hdr = struct.pack("!HHIIBBHHH", sport, DPORT, seq, 0, 6 << 4, 0x02, 65535, 0, 0)
            hdr += bytes([2, 4, 0x05, 0xA0])  # MSS 1440
            ph = src + d + struct.pack("!IxxxB", len(hdr), 6)
            seg = hdr[:16] + struct.pack("!H", csum(ph + hdr)) + hdr[18:]
            ip = struct.pack("!IHBB", 6 << 28, len(seg), 6, 64) + src + d
            s.send(eth(0x86DD, ip + seg))
            sent += 1
    print("sent", sent)


def main():
    global DPORT
    args = sys.argv[1:]
    lb = "--lb" in args
    cookie = "--no-cookie" not in args
    for a in args:
        if a.startswith("--port="):
            DPORT = int(a.split("=", 1)[1])
    args = [a for a in args if not a.startswith("--")]
    iface, dmac, src, dst = args[0:4]
    count = int(args[4]) if len(args) > 4 else 3
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    smac = s.getsockname()[4]
    dmac = bytes.fromhex(dmac.replace(":", ""))

    def eth(etype, payload):
        f = dmac + smac + struct.pack("!H", etype) + payload
        return f + b"\0" * max(0, 60 - len(f))

    if "--syn-flood6" in sys.argv[1:]:
        secs = 10.0
        for a in sys.argv[1:]:
            if a.startswith("--seconds="):
                secs = float(a.split("=", 1)[1])
        return syn_flood6(s, eth, src, dst, count, secs)
    v6 = "--v6" in sys.argv[1:]
    kinds = v6_kinds(eth, src, dst) if v6 else {
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
    if lb:
        FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
        kinds = {
            # data offset 60 bytes in a 20-byte segment
            "drop_tcp_malformed": eth(0x0800, ipv4(src, dst, 6, tcp(src, dst, SYN, doff=15))),
            # MSS option whose length runs past the header
            "drop_tcp_malformed ": eth(0x0800, ipv4(src, dst, 6, tcp(src, dst, SYN, doff=6, opts=bytes([1, 2, 8, 5])))),
            "drop_tcp_bad_checksum": eth(0x0800, ipv4(src, dst, 6, tcp(src, dst, SYN, bad_csum=True))),
            "drop_tcp_bad_checksum  ": eth(0x0800, ipv4(src, dst, 6, tcp(src, dst, RST | ACK, seq=5, ack=9, bad_csum=True))),
            "drop_tcp_bad_checksum   ": eth(0x0800, ipv4(src, dst, 6, tcp(src, dst, FIN | ACK, seq=5, ack=9, bad_csum=True))),
            "drop_tcp_bad_checksum    ": eth(0x0800, ipv4(src, dst, 6, tcp(src, dst, PSH | ACK, seq=5, ack=9, payload=b"GET / HTTP/1.0\r\n\r\n", bad_csum=True))),
        }
        if cookie:
            # an ACK for no connection with a made-up cookie
            kinds["cookie_bad"] = eth(0x0800, ipv4(src, dst, 6, tcp(src, dst, ACK, seq=77, ack=0x12345678)))
    for kind, frame in kinds.items():
        for _ in range(count):
            s.send(frame)
        print(kind.strip(), count)


if __name__ == "__main__":
    main()
