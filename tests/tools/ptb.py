#!/usr/bin/env python3
"""Play the router that reports a response segment too big.

Usage: ptb.py [--tls] IFACE DUT_MAC VIP PORT MTU

Opens a keep-alive HTTP connection to VIP:PORT (IPv4 or IPv6) from this
namespace, reads one response whole (so the sender's window is empty:
its next sequence number is the one this side expects), and captures the
response's segments on IFACE meanwhile. Then sends, as a router on the
path would, an ICMP Fragmentation Needed (IPv4) or ICMPv6 Packet Too Big
(IPv6) with next-hop MTU MTU to VIP, quoting the last response segment
with its sequence number moved to the end of the data (what an error
about the next full-sized segment would quote). The connection stays open
until stdin closes, so that the host that sent the data still has it.

Prints one JSON line: {"backend": <X-Backend of the response>,
"seq": <quoted sequence number>, "sent": true}.

With --tls, VIP:PORT terminates TLS (the appliance's own TCP sends the
response): the connection is TLS (no verification), /1m.bin is fetched
before the error and again after it on the same connection, and the line
adds "before_max" / "after_max", the largest TCP payload the VIP sent
before and after the error; it exits when done.
"""
import json
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def capture(cap, fam, vip_b, port, lport, v6):
    """Segments VIP:port → us:lport with data seen so far: [(seq, len)]."""
    got = []
    deadline = time.time() + 1
    while time.time() < deadline:
        r, _, _ = select.select([cap], [], [], 0.1)
        if not r:
            continue
        while True:
            try:
                frame, addr = cap.recvfrom(65535)
            except BlockingIOError:
                break
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            et = struct.unpack("!H", frame[12:14])[0]
            if v6 and et == 0x86DD:
                ip = frame[14:]
                if ip[6] != 6 or ip[8:24] != vip_b:
                    continue
                hl, plen = 40, struct.unpack("!H", ip[4:6])[0] + 40
            elif not v6 and et == 0x0800:
                ip = frame[14:]
                if ip[9] != 6 or ip[12:16] != vip_b:
                    continue
                hl, plen = (ip[0] & 15) * 4, struct.unpack("!H", ip[2:4])[0]
            else:
                continue
            tcp = ip[hl:]
            sport, dport, seq = struct.unpack("!HHI", tcp[:8])
            doff = (tcp[12] >> 4) * 4
            data_len = plen - hl - doff
            if sport == port and dport == lport and data_len > 0:
                got.append((bytes(ip[:plen]), hl, seq, data_len))
    return got


def get(s, path):
    s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: ptb.test\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, body = buf.split(b"\r\n\r\n", 1)
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode()
    want = int(headers.get("content-length", "0"))
    while len(body) < want:
        body += s.recv(65536)
    return headers


def main():
    tls = "--tls" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--tls"]
    iface, dut_mac, vip, port, mtu = args[:5]
    port, mtu = int(port), int(mtu)
    v6 = ":" in vip
    fam = socket.AF_INET6 if v6 else socket.AF_INET
    cap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    # Room for a whole response's frames (read after the fact).
    cap.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
    cap.bind((iface, 0))
    cap.setblocking(False)
    my_mac = cap.getsockname()[4]

    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect((vip, port))
    lport = s.getsockname()[1]
    me_ip = s.getsockname()[0]
    vip_b = socket.inet_pton(fam, vip)
    if tls:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(s, server_hostname="vip.test")
    headers = get(s, b"/1m.bin" if tls else b"/")
    time.sleep(0.2)
    segs = capture(cap, fam, vip_b, port, lport, v6)
    if not segs:
        print(json.dumps({"sent": False, "error": "no response segment captured"}))
        return 1
    before_max = max(x[3] for x in segs)
    last = segs[-1]
    last = (last[0], last[1], last[2] + last[3])
    local = (me_ip, lport)
    ip, hl, next_seq = last
    # Quote: the segment as sent (its header, the sequence number of the
    # next one), padded as a full-sized segment's length.
    quoted = bytearray(ip[: hl + 8])
    quoted[hl + 4 : hl + 8] = struct.pack("!I", next_seq & 0xFFFFFFFF)
    mac = bytes.fromhex(dut_mac.replace(":", ""))
    me = socket.inet_pton(fam, local[0])
    if v6:
        body = struct.pack("!BBHI", 2, 0, 0, mtu) + bytes(quoted)
        pseudo = me + vip_b + struct.pack("!I3xB", len(body), 58)
        c = csum(pseudo + body)
        body = body[:2] + struct.pack("!H", c) + body[4:]
        hdr = struct.pack("!IHBB", 6 << 28, len(body), 58, 64) + me + vip_b
        frame = mac + my_mac + b"\x86\xdd" + hdr + body
    else:
        body = struct.pack("!BBHHH", 3, 4, 0, 0, mtu) + bytes(quoted)
        c = csum(body)
        body = body[:2] + struct.pack("!H", c) + body[4:]
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 0, 0, 64, 1, 0, me, vip_b)
        hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
        frame = mac + my_mac + b"\x08\x00" + hdr + body
    cap.send(frame)
    out = {"backend": headers.get("x-backend"), "seq": next_seq, "sent": True}
    if tls:
        time.sleep(0.1)
        capture(cap, fam, vip_b, port, lport, v6)
        get(s, b"/1m.bin")
        time.sleep(0.2)
        after = capture(cap, fam, vip_b, port, lport, v6)
        out["before_max"] = before_max
        out["after_max"] = max((x[3] for x in after), default=0)
        print(json.dumps(out), flush=True)
        s.close()
        return 0
    print(json.dumps(out), flush=True)
    # Keep the connection until told (the backend keeps its socket).
    sys.stdin.read()
    s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
