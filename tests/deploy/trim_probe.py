#!/usr/bin/env python3
"""trim_probe.py - how long a trim that releases ~1000 blocks takes: two bursts of 1000 connections
holding a block each, then idle; prints the --memtrace lines of trims that released something.
usage: trim_probe.py INGESTD libc|mimalloc"""
import os, socket, subprocess, sys, time, signal
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploylib import parse_listening
BIN=sys.argv[1]; alloc=sys.argv[2]
p = subprocess.Popen([BIN, '--workers', '1', '--tcp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--trim-interval', '1s', '--memtrace', '--allocator', alloc], stderr=subprocess.PIPE)
buf=b''
while True:
    buf += os.read(p.stderr.fileno(), 65536)
    m = parse_listening(buf[: buf.rfind(b'\n') + 1].decode())
    if m: break
tcp=m[0]
for burst in range(2):
    socks=[]
    for i in range(1000):
        s=socket.create_connection(tcp); s.sendall(b'{"type":"a","p":"' + b'x'*200); socks.append(s)
    time.sleep(0.5)
    for s in socks: s.sendall(b'"}\n'); s.close()
    time.sleep(3.5)
p.send_signal(signal.SIGTERM); out=p.communicate()[1]
for l in (buf+out).decode().splitlines():
    if l.startswith('memtrace') and 'released=0 ' not in l: print(l)
