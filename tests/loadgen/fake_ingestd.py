#!/usr/bin/env python3
"""fake_ingestd.py - a stand-in for ingestd in loadgen's tests: NDJSON over TCP, POST /v1/events,
/metrics and /readyz, the same start line and SIGTERM exit 0. It counts every line it reads as
accepted (or rejected when it is not a JSON object with a "type"). With FAKE_INGESTD_DROP_EVERY=N it
reports one accepted event in N as missing, so loadgen's loss check must fire."""
import json
import os
import resource
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
COUNTS = {"accepted": 0, "rejected": 0}
DROP_EVERY = int(os.environ.get("FAKE_INGESTD_DROP_EVERY", "0"))


def verdict(line):
    try:
        obj = json.loads(line)
    except ValueError:
        return "rejected"
    if isinstance(obj, dict) and isinstance(obj.get("type"), str):
        return "accepted"
    return "rejected"


def count_lines(data):
    acc = rej = 0
    for line in data.split(b"\n"):
        line = line.strip()
        if not line:
            continue
        if verdict(line) == "accepted":
            acc += 1
        else:
            rej += 1
    with LOCK:
        COUNTS["accepted"] += acc
        COUNTS["rejected"] += rej
    return acc, rej


def tcp_conn(conn):
    buf = b""
    while True:
        data = conn.recv(65536)
        if not data:
            break
        buf += data
        cut = buf.rfind(b"\n")
        if cut >= 0:
            count_lines(buf[:cut])
            buf = buf[cut + 1:]
    if buf.strip():
        with LOCK:
            COUNTS["rejected"] += 1
    conn.close()


def tcp_serve(sock):
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=tcp_conn, args=(conn,), daemon=True).start()


def metrics_text():
    with LOCK:
        acc = COUNTS["accepted"]
        if DROP_EVERY:
            acc -= acc // DROP_EVERY
        rej = COUNTS["rejected"]
    ru = resource.getrusage(resource.RUSAGE_SELF)
    rss = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return (
        "# TYPE ingestd_events_accepted_total counter\n"
        f"ingestd_events_accepted_total {acc}\n"
        "# TYPE ingestd_events_rejected_total counter\n"
        f'ingestd_events_rejected_total{{reason="parse"}} {rej}\n'
        'ingestd_events_rejected_total{reason="no_type"} 0\n'
        f"process_cpu_seconds_total {ru.ru_utime + ru.ru_stime}\n"
        f"ingestd_memstats_mallocs_total {(acc + rej) * 3}\n"
        f"ingestd_pool_gets_total {acc + rej}\n"
        "ingestd_pool_misses_total 2\n"
        f"process_resident_memory_bytes {rss}\n"
    )


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, code, body, ctype="text/plain"):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/metrics":
            self.reply(200, metrics_text())
        elif self.path in ("/readyz", "/healthz"):
            self.reply(200, "ok\n")
        else:
            self.reply(404, "not found\n")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        if self.path != "/v1/events":
            self.reply(404, "not found\n")
            return
        acc, rej = count_lines(body)
        self.reply(200, json.dumps({"accepted": acc, "rejected": rej, "errors": []}),
                   "application/json")

    def log_message(self, *args):
        pass


def main():
    args = sys.argv[1:]
    if "--version" in args:
        print("fake_ingestd 0.0.0")
        return
    opts = {}
    for i in range(0, len(args) - 1):
        if args[i].startswith("--"):
            opts[args[i]] = args[i + 1]
    if os.environ.get("FAKE_INGESTD_EXIT"):
        sys.exit(int(os.environ["FAKE_INGESTD_EXIT"]))
    tcp = socket.socket()
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(64)
    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    admin = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    for srv in (http, admin):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    threading.Thread(target=tcp_serve, args=(tcp,), daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sys.stderr.write(
        "fake_ingestd: listening tcp=127.0.0.1:%d http=127.0.0.1:%d admin=127.0.0.1:%d pool=%s "
        "allocator=%s\n" % (tcp.getsockname()[1], http.server_address[1], admin.server_address[1],
                            opts.get("--pool", "on"), opts.get("--allocator", "libc")))
    sys.stderr.flush()
    while not stop.wait(0.05):
        pass
    sys.stderr.write("fake_ingestd: stopped accepted=%d rejected=%d\n"
                     % (COUNTS["accepted"], COUNTS["rejected"]))
    sys.exit(0)


if __name__ == "__main__":
    main()
