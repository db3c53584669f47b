#!/usr/bin/env python3
"""Sniffs IFACE for SECONDS and prints the TCP options of the first SYN to
PORT and of the first SYN-ACK from PORT, one line each:
  syn mss=1460 ws=7 sack=1 ts=1
  synack mss=1460 ws=7 sack=1 ts=0
Usage: syn_options.py IFACE PORT SECONDS   (run in the client namespace,
start it before the connection; it exits after both or SECONDS).
"""
import socket
import struct
import sys
import time

iface, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
# ETH_P_ALL: packet sockets see outgoing frames only with it.
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind((iface, 0))
s.settimeout(0.2)
print("ready", flush=True)
seen = {}
end = time.time() + secs


def opts(area):
    o = {"mss": 0, "ws": -1, "sack": 0, "ts": 0}
    i = 0
    while i < len(area):
        k = area[i]
        if k == 0:
            break
        if k == 1:
            i += 1
            continue
        if i + 1 >= len(area) or area[i + 1] < 2:
            break
        ln = area[i + 1]
        v = area[i + 2:i + ln]
        if k == 2 and ln == 4:
            o["mss"] = struct.unpack("!H", v)[0]
        elif k == 3 and ln == 3:
            o["ws"] = v[0]
        elif k == 4:
            o["sack"] = 1
        elif k == 8:
            o["ts"] = 1
        i += ln
    return o


while time.time() < end and len(seen) < 2:
    try:
        f = s.recv(65535)
    except socket.timeout:
        continue
    if len(f) < 54 or f[12:14] != b"\x08\x00" or f[23] != 6:
        continue
    ihl = (f[14] & 15) * 4
    t = 14 + ihl
    sport, dport = struct.unpack("!HH", f[t:t + 4])
    flags = f[t + 13]
    doff = (f[t + 12] >> 4) * 4
    o = opts(f[t + 20:t + doff])
    if flags & 0x12 == 0x02 and dport == port and "syn" not in seen:
        seen["syn"] = o
    elif flags & 0x12 == 0x12 and sport == port and "synack" not in seen:
        seen["synack"] = o
for k in ("syn", "synack"):
    o = seen.get(k)
    if o:
        print(k, " ".join("%s=%s" % (a, o[a]) for a in ("mss", "ws", "sack", "ts")), flush=True)
