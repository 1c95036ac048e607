#!/usr/bin/env python3
"""memlimit_bench.py - connections holding partial lines against --memory-limit: does reading
pause, and does ingest resume once clients complete their lines and close?
usage: memlimit_bench.py INGESTD LIMIT|off CONNECTIONS"""
import os, socket, subprocess, sys, time, urllib.request, signal
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploylib import parse_listening
BIN = sys.argv[1]; LIMIT = sys.argv[2]; C = int(sys.argv[3])
p = subprocess.Popen([BIN, '--workers', '1', '--tcp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--memory-limit', LIMIT, '--trim-interval', '1s'], stderr=subprocess.PIPE)
buf = b''
while True:
    buf += os.read(p.stderr.fileno(), 4096)
    m = parse_listening(buf[: buf.rfind(b'\n') + 1].decode())
    if m: break
tcp, admin = m[0], m[2][1]
def met():
    t = urllib.request.urlopen('http://127.0.0.1:%d/metrics' % admin).read().decode()
    return {l.rsplit(' ',1)[0]: float(l.rsplit(' ',1)[1]) for l in t.splitlines() if l and not l.startswith('#')}
socks = []
for i in range(C):
    s = socket.create_connection(tcp); s.sendall(b'{"type":"x","pad":"' + b'y'*200); socks.append(s)
time.sleep(1.5)
x = met()
print('limit', LIMIT, 'conns', C, 'live MiB %.1f sys %.1f rss %.1f in_use %d accepted %d' % (x['ingestd_memstats_alloc_bytes']/2**20, x['ingestd_memstats_sys_bytes']/2**20, x['process_resident_memory_bytes']/2**20, x['ingestd_pool_blocks{state="in_use"}'], x['ingestd_events_accepted_total']))
for s in socks: s.sendall(b'"}\n'); s.close()
t0=time.monotonic()
while time.monotonic()-t0 < 20:
    x = met()
    if x['ingestd_events_accepted_total'] >= C: break
    time.sleep(0.1)
print('after close: accepted %d rejected %d live %.1f rss %.1f' % (x['ingestd_events_accepted_total'], sum(v for k,v in x.items() if k.startswith('ingestd_events_rejected_total')), x['ingestd_memstats_alloc_bytes']/2**20, x['process_resident_memory_bytes']/2**20))
print([k for k in x if 'pause' in k or 'limit' in k])
p.send_signal(signal.SIGTERM); p.wait()
