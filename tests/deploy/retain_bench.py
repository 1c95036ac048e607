#!/usr/bin/env python3
"""retain_bench.py - what --pool-retain trades: memory kept between bursts vs pool misses when
the next burst comes. One worker; each burst opens C connections that each send a partial line
(so each holds one pooled block), then complete them and close; then an idle gap.
usage: retain_bench.py INGESTD [reps] [conns] [gap_s] [trim_interval]"""
import os, re, signal, socket, statistics, subprocess, sys, time, urllib.request
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploylib import parse_listening

BIN = sys.argv[1]
REPS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
C = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
GAP = float(sys.argv[4]) if len(sys.argv) > 4 else 1.5
TRIM = sys.argv[5] if len(sys.argv) > 5 else '1s'
BURSTS = 4
RETAINS = ['0', '50', '100', '200', 'off']

def metrics(port):
    with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % port, timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith('#') or not line:
            continue
        name, val = line.rsplit(' ', 1)
        out[name] = float(val)
    return out

def start(retain):
    p = subprocess.Popen(['taskset', '-c', '0', BIN, '--workers', '1', '--tcp', '127.0.0.1:0',
                          '--http', '127.0.0.1:0', '--admin', '127.0.0.1:0',
                          '--trim-interval', TRIM, '--pool-retain', retain],
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    buf = b''
    while True:
        buf += os.read(p.stderr.fileno(), 4096)
        m = parse_listening(buf[: buf.rfind(b'\n') + 1].decode())
        if m:
            return p, m[0], m[2][1]

def wait_for(port, cond, timeout=20):
    t = time.monotonic() + timeout
    while time.monotonic() < t:
        m = metrics(port)
        if cond(m):
            return m
        time.sleep(0.02)
    raise RuntimeError('timeout')

def one_run(retain):
    p, tcp, admin = start(retain)
    rows = []
    try:
        time.sleep(0.3)
        for b in range(BURSTS):
            before = metrics(admin)
            socks = []
            for i in range(C):
                s = socket.create_connection(tcp)
                s.sendall(b'{"type":"burst","seq":%d,"pad":"' % i + b'x' * 200)
                socks.append(s)
            peak = wait_for(admin, lambda m: m.get('ingestd_pool_blocks{state="in_use"}', 0) >= C * 0.95)
            for s in socks:
                s.sendall(b'"}\n' + b'{"type":"burst","more":true}\n' * 9)
                s.close()
            after = wait_for(admin, lambda m: m.get('ingestd_connections_active', 1) == 0 and
                             m['ingestd_events_accepted_total'] - before['ingestd_events_accepted_total'] >= 10 * C)
            time.sleep(GAP)
            idle = metrics(admin)
            rows.append({
                'burst': b,
                'misses': after['ingestd_pool_misses_total'] - before['ingestd_pool_misses_total'],
                'gets': after['ingestd_pool_gets_total'] - before['ingestd_pool_gets_total'],
                'mallocs': after['ingestd_memstats_mallocs_total'] - before['ingestd_memstats_mallocs_total'],
                'idle_blocks_after_gap': idle['ingestd_pool_blocks{state="idle"}'],
                'sys_after_gap': idle['ingestd_memstats_sys_bytes'],
                'live_after_gap': idle['ingestd_memstats_alloc_bytes'],
                'rss_after_gap': idle['process_resident_memory_bytes'],
                'peak_rss': idle['process_resident_memory_bytes'],
                'released': idle['ingestd_pool_released_total'],
                'trims': idle['ingestd_pool_trims_total'],
                'trim_sum': idle['ingestd_pool_trim_duration_seconds_sum'],
                'trim_count': idle['ingestd_pool_trim_duration_seconds_count'],
            })
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    return rows

res = {r: [] for r in RETAINS}
for rep in range(REPS):
    for r in RETAINS:
        res[r].append(one_run(r))
print('conns/burst=%d gap=%.1fs trim-interval=%s bursts=%d reps=%d (medians over reps; misses = bursts 2..%d mean)'
      % (C, GAP, TRIM, BURSTS, REPS, BURSTS))
print('| --pool-retain | pool misses per burst (after the first) | mallocs per burst | idle blocks after gap | sys bytes after gap (MiB) | live bytes after gap (MiB) | RSS after gap (MiB) | mean trim (µs) |')
print('|---|---|---|---|---|---|---|---|')
for r in RETAINS:
    runs = res[r]
    med = lambda f: statistics.median(f(run) for run in runs)
    steady = lambda k: (lambda run: statistics.mean(x[k] for x in run[1:]))
    last = lambda k: (lambda run: run[-1][k])
    mt = med(lambda run: run[-1]['trim_sum'] / max(1, run[-1]['trim_count']) * 1e6)
    print('| %s | %.0f | %.0f | %.0f | %.1f | %.1f | %.1f | %.1f |' % (
        r, med(steady('misses')), med(steady('mallocs')), med(last('idle_blocks_after_gap')),
        med(last('sys_after_gap')) / 2**20, med(last('live_after_gap')) / 2**20,
        med(last('rss_after_gap')) / 2**20, mt))
