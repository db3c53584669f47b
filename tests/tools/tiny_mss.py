#!/usr/bin/env python3
"""Connects to HOST:PORT announcing a tiny MSS (TCP_MAXSEG before connect;
Linux sends no less than 88), fetches PATH (over TLS with --tls CA NAME),
and sniffs the interface IFACE meanwhile: prints
  mss_announced <n>
  max_payload <largest TCP payload received from PORT>
  segments <number of data segments received from PORT>
  ok <1 if a complete HTTP response arrived>
Usage: tiny_mss.py IFACE HOST PORT PATH MSS [--tls CA NAME]
"""
import socket
import ssl
import struct
import sys
import threading
import time

iface, host, port, path, mss = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
tls = None
if "--tls" in sys.argv:
    i = sys.argv.index("--tls")
    tls = (sys.argv[i + 1], sys.argv[i + 2])

sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
sniff.bind((iface, 0))
sniff.settimeout(0.2)
sizes = []
stop = threading.Event()


def sniffer():
    while not stop.is_set():
        try:
            f = sniff.recv(65535)
        except socket.timeout:
            continue
        if len(f) < 34 or f[23] != 6:
            continue
        ihl = (f[14] & 15) * 4
        tot = struct.unpack("!H", f[16:18])[0]
        t = 14 + ihl
        sport = struct.unpack("!H", f[t:t + 2])[0]
        if sport != port:
            continue
        doff = (f[t + 12] >> 4) * 4
        n = tot - ihl - doff
        if n > 0:
            sizes.append(n)


th = threading.Thread(target=sniffer)
th.start()
ok = 0
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
    s.settimeout(10)
    s.connect((host, port))
    if tls:
        ctx = ssl.create_default_context(cafile=tls[0])
        s = ctx.wrap_socket(s, server_hostname=tls[1])
    s.sendall(("GET %s HTTP/1.0\r\nHost: x\r\n\r\n" % path).encode())
    got = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
    ok = int(got.startswith(b"HTTP/1.") and b"\r\n\r\n" in got)
except Exception as e:  # reported as ok 0
    print("error", repr(e))
time.sleep(0.3)
stop.set()
th.join()
print("mss_announced", mss)
print("max_payload", max(sizes) if sizes else 0)
print("segments", len(sizes))
print("ok", ok)
