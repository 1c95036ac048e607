#!/usr/bin/env python3
"""memratio_bench.py - RSS and allocator bytes against live bytes under sustained load, the ratio
--memory-limit sizing needs. ingestd (1 worker) on CPU 0, loadgen on CPU 1; /metrics polled
every 50 ms during the run; peaks reported. usage: memratio_bench.py INGESTD LOADGEN [reps]"""
import os, signal, statistics, subprocess, sys, threading, time, urllib.request
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploylib import parse_listening
BIN, LG = sys.argv[1], sys.argv[2]
REPS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
MODES = [('pool', 'on', 'libc'), ('naive', 'off', 'libc'), ('pool', 'on', 'mimalloc'), ('naive', 'off', 'mimalloc')]

def metrics(port):
    with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % port, timeout=10) as r:
        text = r.read().decode()
    return {l.rsplit(' ', 1)[0]: float(l.rsplit(' ', 1)[1]) for l in text.splitlines() if l and not l.startswith('#')}

def run(pool, alloc):
    p = subprocess.Popen(['taskset', '-c', '0', BIN, '--workers', '1', '--tcp', '127.0.0.1:0', '--http', '127.0.0.1:0',
                          '--admin', '127.0.0.1:0', '--pool', pool, '--allocator', alloc],
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    buf = b''
    while True:
        buf += os.read(p.stderr.fileno(), 4096)
        m = parse_listening(buf[: buf.rfind(b'\n') + 1].decode())
        if m:
            break
    tcp, admin = m[0], m[2][1]
    peak = {'live': 0, 'sys': 0, 'rss': 0}
    stop = [False]
    def poll():
        while not stop[0]:
            x = metrics(admin)
            peak['live'] = max(peak['live'], x['ingestd_memstats_alloc_bytes'])
            peak['sys'] = max(peak['sys'], x['ingestd_memstats_sys_bytes'])
            peak['rss'] = max(peak['rss'], x['process_resident_memory_bytes'])
            time.sleep(0.05)
    t = threading.Thread(target=poll); t.start()
    lg = subprocess.run(['taskset', '-c', '1', LG, 'run', '--target', 'tcp://%s:%d' % tcp, '--connections', '8',
                         '--events', '400000', '--no-progress'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(0.2)
    stop[0] = True; t.join()
    p.send_signal(signal.SIGTERM); p.wait(timeout=30)
    if lg.returncode != 0:
        print(lg.stdout); raise SystemExit('loadgen failed')
    return peak

res = {m: [] for m in MODES}
for r in range(REPS):
    for m in MODES:
        res[m].append(run(m[1], m[2]))
print('8 TCP connections, 400000 events (loadgen default mix), 1 worker; peaks of 50 ms samples; medians of %d alternating runs' % REPS)
print('| mode | peak live bytes (MiB) | peak sys bytes (MiB) | peak RSS (MiB) | RSS / live |')
print('|---|---|---|---|---|')
for m in MODES:
    med = lambda k: statistics.median(x[k] for x in res[m])
    ratio = statistics.median(x['rss'] / x['live'] for x in res[m])
    print('| %s+%s | %.1f | %.1f | %.1f | %.1f |' % (m[0], m[2], med('live') / 2**20, med('sys') / 2**20, med('rss') / 2**20, ratio))
