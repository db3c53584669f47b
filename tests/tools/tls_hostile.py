#!/usr/bin/env python3
"""Hostile TLS clients for tests/e2e_tls.rs.

Usage: tls_hostile.py HOST PORT NAME CA_PEM

Runs three cases against a TLS VIP and prints one line per case:
  plain_http  <first byte of the reply in hex or 'none'> <eof|reset|timeout>
  stall       <seconds until the server ended it> <eof|reset|timeout>
  garbage     <handshake ok|fail> <bytes of reply> <eof|reset|timeout>
"""
import os
import socket
import ssl
import sys
import time

host, port, name, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


def connect():
    return socket.create_connection((host, port), timeout=5)


def read_until_end(s, limit=15.0):
    """Reads until EOF/RST/timeout; returns (bytes, how)."""
    s.settimeout(limit)
    got = b""
    try:
        while True:
            d = s.recv(4096)
            if not d:
                return got, "eof"
            got += d
    except ConnectionResetError:
        return got, "reset"
    except socket.timeout:
        return got, "timeout"


def client_hello():
    ctx = ssl.create_default_context(cafile=ca)
    inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inb, outb, server_hostname=name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outb.read()


def plain_http():
    s = connect()
    s.sendall(b"GET / HTTP/1.1\r\nHost: vip.test\r\n\r\n")
    got, how = read_until_end(s)
    print("plain_http", got[:1].hex() or "none", how, flush=True)


def stall():
    s = connect()
    hello = client_hello()
    s.sendall(hello[: len(hello) // 2])
    t = time.time()
    _, how = read_until_end(s, 20.0)
    print("stall", "%.1f" % (time.time() - t), how, flush=True)


def garbage():
    ctx = ssl.create_default_context(cafile=ca)
    inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inb, outb, server_hostname=name)
    s = connect()
    ok = "fail"
    for _ in range(20):
        try:
            obj.do_handshake()
            ok = "ok"
        except ssl.SSLWantReadError:
            pass
        out = outb.read()
        if out:
            s.sendall(out)
        if ok == "ok":
            break
        d = s.recv(65536)
        if not d:
            break
        inb.write(d)
    # An application-data record of random bytes: cannot decrypt.
    s.sendall(b"\x17\x03\x03\x00\x40" + os.urandom(0x40))
    got, how = read_until_end(s)
    print("garbage", ok, len(got), how, flush=True)


plain_http()
stall()
garbage()
