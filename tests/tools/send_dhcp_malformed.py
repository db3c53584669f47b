#!/usr/bin/env python3
"""Send hand-made malformed DHCP requests (broadcast, UDP 68 -> 67) out of
an interface with a raw AF_PACKET socket.

Usage: send_dhcp_malformed.py IFACE [COUNT]
Prints one line per kind: "<reason> <count>", where <reason> is the name
`qsplice dhcp-server` counts it under (`server.rejects` in its JSON).
Used by tests/e2e_dhcp.rs.
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


SRC_MAC = bytes([0x02, 0x66, 0, 0, 0, 0x01])
SRC, DST = "0.0.0.0", "255.255.255.255"


def frame(dhcp: bytes, bad_ip=False, bad_udp=False) -> bytes:
    ulen = 8 + len(dhcp)
    pseudo = socket.inet_aton(SRC) + socket.inet_aton(DST) + struct.pack("!BBH", 0, 17, ulen)
    udp = struct.pack("!HHHH", 68, 67, ulen, 0) + dhcp
    uc = csum(pseudo + udp) or 0xFFFF
    if bad_udp:
        uc = (uc ^ 0x00F0) or 1
    udp = udp[:6] + struct.pack("!H", uc) + udp[8:]
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, 0x4242, 0, 64, 17, 0,
                      socket.inet_aton(SRC), socket.inet_aton(DST))
    c = csum(hdr)
    if bad_ip:
        c ^= 0x5555
    ip = hdr[:10] + struct.pack("!H", c) + hdr[12:]
    return b"\xff" * 6 + SRC_MAC + b"\x08\x00" + ip + udp


def bootp(xid: int, cookie=b"\x63\x82\x53\x63") -> bytes:
    chaddr = SRC_MAC + b"\0" * 10
    fixed = struct.pack("!BBBBIHH4s4s4s4s16s", 1, 1, 6, 0, xid, 0, 0x8000,
                        b"\0" * 4, b"\0" * 4, b"\0" * 4, b"\0" * 4, chaddr)
    return fixed + b"\0" * 192 + cookie


DISCOVER = b"\x35\x01\x01"


def kinds(xid: int):
    yield "truncated", frame(bootp(xid)[:120])
    yield "bad_cookie", frame(bootp(xid, b"\x63\x82\x53\x64") + DISCOVER + b"\xff")
    # option 12 claims 200 bytes, 3 follow
    yield "option_overrun", frame(bootp(xid) + DISCOVER + b"\x0c\xc8abc")
    # options end without option 255
    yield "missing_end", frame(bootp(xid) + DISCOVER + b"\x0c\x03abc")
    yield "bad_ip_checksum", frame(bootp(xid) + DISCOVER + b"\xff", bad_ip=True)
    yield "bad_udp_checksum", frame(bootp(xid) + DISCOVER + b"\xff", bad_udp=True)


def main():
    iface = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    sent = {}
    for i in range(count):
        for name, f in kinds(0x51000000 + i):
            s.send(f)
            sent[name] = sent.get(name, 0) + 1
    for k, v in sent.items():
        print(k, v)


if __name__ == "__main__":
    main()
