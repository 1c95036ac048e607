#!/usr/bin/env python3
"""lg_check.py - loadgen's integration tests, run by ctest:

    lg_check.py loss_check    LOADGEN FAKE_SERVER   the loss check fires (exit 1) when the server
                                                    counts fewer events than were sent
    lg_check.py json_output   LOADGEN FAKE_SERVER   --json parses and has every figure (TCP, HTTP)
    lg_check.py compare_stub  LOADGEN FAKE_SERVER   compare --quick end to end: table, JSON, HTML
    lg_check.py ingestd_run   LOADGEN INGESTD       counts against the real service, TCP and HTTP
    lg_check.py compare_quick LOADGEN INGESTD       compare --quick against the real service

Each asserts and prints nothing unless it fails. Loopback only, ports chosen by the kernel."""
import html.parser
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

RUN_KEYS = ["target", "transport", "connections", "events_requested", "duration_requested_s",
            "rate_target", "batch", "warmup_s", "sent_events", "sent_bytes", "warmup_events",
            "requests", "errors", "reconnects", "http_non200", "http_non200_events",
            "response_accepted", "response_rejected", "expected_invalid", "elapsed_s", "send_s",
            "events_per_s", "rate_achieved", "mib_per_s", "latency_ms", "server", "lost", "ok"]
SERVER_KEYS = ["accepted", "rejected", "cpu_seconds", "cpu_us_per_event", "allocs_per_event",
               "pool_hit_rate", "peak_rss_bytes"]
LATENCY_KEYS = ["count", "min", "mean", "p50", "p90", "p99", "p99_9", "max"]
CORPUS_KEYS = ["source", "seed", "events", "bytes", "mean_event_bytes", "invalid",
               "over_4096_bytes", "max_event_bytes"]
MEDIAN_KEYS = ["events_per_s", "cpu_us_per_event", "allocs_per_event", "peak_rss_bytes",
               "pool_hit_rate"]


class Server:
    """Starts a server (fake or real) on kernel-chosen loopback ports and reads its start line."""

    def __init__(self, path, extra=(), env=None):
        self.log = tempfile.NamedTemporaryFile(prefix="lg_check_server_", suffix=".log",
                                               delete=False)
        self.proc = None
        try:
            self.start(path, extra, env)
        except BaseException:
            self.stop()
            raise

    def start(self, path, extra, env):
        self.proc = subprocess.Popen(
            [path, "--tcp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0",
             "--workers", "1", *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log,
            env=dict(os.environ, **(env or {})))
        deadline = time.time() + 15
        text = ""
        while time.time() < deadline:
            with open(self.log.name) as f:
                text = f.read()
            found = {k: re.search(r"(?:^|[\s,\"])%s=(\S+?)(?=[\s,\"]|$)" % k, text, re.M)
                     for k in ("tcp", "http", "admin")}
            if all(found.values()):
                self.addr = {k: m.group(1) for k, m in found.items()}
                break
            assert self.proc.poll() is None, "server exited at start:\n" + text
            time.sleep(0.02)
        else:
            raise AssertionError("no start line with tcp= http= admin=:\n" + text)
        import urllib.request
        for _ in range(500):
            try:
                with urllib.request.urlopen("http://%s/readyz" % self.addr["admin"], timeout=1):
                    return
            except OSError:
                time.sleep(0.02)
        raise AssertionError("server never ready")

    def stop(self):
        if self.proc is None:
            os.unlink(self.log.name)
            return None, ""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with open(self.log.name) as f:
            text = f.read()
        os.unlink(self.log.name)
        return self.proc.returncode, text


def loadgen(lg, *args):
    p = subprocess.run([lg, *args, "--no-progress"], capture_output=True, text=True, timeout=240)
    return p.returncode, p.stdout, p.stderr


def check_run_json(path, http, metrics=True):
    with open(path) as f:
        j = json.load(f)
    for k in RUN_KEYS:
        assert k in j, "missing %s in %s" % (k, path)
    assert isinstance(j["corpus"], dict), j
    for k in CORPUS_KEYS:
        assert k in j["corpus"], "missing corpus.%s" % k
    if http:
        for k in LATENCY_KEYS:
            assert isinstance(j["latency_ms"][k], (int, float)), "latency_ms.%s" % k
        lat = j["latency_ms"]
        assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99_9"] <= lat["max"]
    else:
        assert j["latency_ms"] is None
    if metrics:
        for k in SERVER_KEYS:
            assert k in j["server"], "missing server.%s" % k
        assert j["lost"] == 0 and j["ok"] is True, j
    return j


def t_loss_check(lg, fake):
    srv = Server(fake, env={"FAKE_INGESTD_DROP_EVERY": "10"})
    try:
        rc, out, err = loadgen(lg, "run", "--target", "tcp://" + srv.addr["tcp"], "--events",
                               "3000", "--metrics", "http://%s/metrics" % srv.addr["admin"])
        assert rc == 1, (rc, out, err)
        assert "LOST" in out and "300 events" in out, out
        assert "lost" in err, err
        rc, out, err = loadgen(lg, "run", "--target", "http://%s/v1/events" % srv.addr["http"],
                               "--events", "300", "--batch", "50", "--metrics",
                               "http://%s/metrics" % srv.addr["admin"])
        assert rc == 1 and "LOST" in out and "30 events" in out, (rc, out, err)
    finally:
        rc_srv, _ = srv.stop()
    assert rc_srv == 0


def t_json_output(lg, fake):
    srv = Server(fake)
    tmp = tempfile.mkdtemp(prefix="lg_check_")
    try:
        metrics = "http://%s/metrics" % srv.addr["admin"]
        out_tcp = os.path.join(tmp, "tcp.json")
        rc, out, err = loadgen(lg, "run", "--target", "tcp://" + srv.addr["tcp"], "--events",
                               "4000", "--invalid", "10", "--warmup", "100ms", "--metrics",
                               metrics, "--json", out_tcp, "--connections", "2")
        assert rc == 0, (rc, out, err)
        j = check_run_json(out_tcp, http=False)
        assert j["sent_events"] == 4000 and j["warmup_events"] > 0
        assert j["server"]["rejected"] == j["expected_invalid"] > 0, j
        assert j["server"]["accepted"] == 4000 - j["expected_invalid"], j
        out_http = os.path.join(tmp, "http.json")
        rc, out, err = loadgen(lg, "run", "--target", "http://%s/v1/events" % srv.addr["http"],
                               "--events", "400", "--batch", "20", "--rate", "2000", "--metrics",
                               metrics, "--json", out_http, "--seed", "9")
        assert rc == 0, (rc, out, err)
        j = check_run_json(out_http, http=True)
        assert j["requests"] == 20 and j["response_accepted"] == 400, j
        assert j["latency_ms"]["count"] == 20
        assert "latency ms" in out and "p99.9" in out
        # --event-file sends the file's lines, over and over.
        events = os.path.join(tmp, "events.ndjson")
        with open(events, "w") as f:
            f.write('{"type":"a","n":1}\r\n\n{"type":"b"}\n[1]\n')
        out_file = os.path.join(tmp, "file.json")
        rc, out, err = loadgen(lg, "run", "--target", "tcp://" + srv.addr["tcp"], "--events",
                               "30", "--event-file", events, "--metrics", metrics, "--json",
                               out_file)
        assert rc == 0, (rc, out, err)
        j = check_run_json(out_file, http=False)
        assert j["corpus"]["source"] == events and j["corpus"]["events"] == 3, j["corpus"]
        assert j["server"]["accepted"] == 20 and j["server"]["rejected"] == 10, j["server"]
        # Without --metrics there is no server section and no loss check.
        out_plain = os.path.join(tmp, "plain.json")
        rc, out, err = loadgen(lg, "run", "--target", "tcp://" + srv.addr["tcp"], "--events",
                               "100", "--json", out_plain)
        assert rc == 0, (rc, out, err)
        j = check_run_json(out_plain, http=False, metrics=False)
        assert j["server"] is None and j["lost"] is None
        # Bad usage is exit 2 with one line naming the flag.
        rc, out, err = loadgen(lg, "run", "--target", "tcp://x", "--events", "5")
        assert rc == 2 and "--target" in err, (rc, err)
    finally:
        rc_srv, _ = srv.stop()
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)
    assert rc_srv == 0


class TagChecker(html.parser.HTMLParser):
    VOID = {"meta", "br", "img", "input", "link", "hr"}

    def __init__(self):
        super().__init__()
        self.stack, self.seen, self.errors = [], set(), []

    def handle_starttag(self, tag, attrs):
        self.seen.add(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.seen.add(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append("unexpected </%s> with open %s" % (tag, self.stack))
        else:
            self.stack.pop()


def check_html(path, modes):
    with open(path) as f:
        text = f.read()
    assert text.startswith("<!DOCTYPE html>")
    p = TagChecker()
    p.feed(text)
    p.close()
    assert not p.errors and not p.stack, (p.errors, p.stack)
    for tag in ("html", "head", "title", "body", "table", "svg", "rect", "polyline"):
        assert tag in p.seen, "no <%s>" % tag
    ET.fromstring(text[len("<!DOCTYPE html>"):])  # also well-formed XML
    # Self-contained: nothing fetched (the argv and environment on the page may say "http").
    for ref in ("src=", "href=", "url(", "@import", "<script", "<link"):
        assert ref not in text, "the page must be self-contained, found %r" % ref
    for part in ('id="verdict"', 'id="argv"', 'id="environment"', 'class="run"',
                 'class="whisker"', 'class="axis-label"'):
        assert part in text, "no %s in the report" % part
    for m in modes:
        assert m in text


def check_compare(lg, server, extra=()):
    tmp = tempfile.mkdtemp(prefix="lg_check_")
    js, page = os.path.join(tmp, "cmp.json"), os.path.join(tmp, "cmp.html")
    try:
        rc, out, err = loadgen(lg, "compare", "--server", server, "--quick", "--json", js,
                               "--html", page, *extra)
        assert rc == 0, (rc, out, err)
        # The default list: the memory axis under the tree, and pooled scan beside it.
        modes = ["naive+libc+tree", "pool+libc+tree", "pool+mimalloc+tree", "pool+libc+scan"]
        for m in modes:
            assert re.search(r"^%s\s" % re.escape(m), out, re.M), out
        with open(js) as f:
            j = json.load(f)
        assert j["ok"] is True and j["baseline"] == "naive+libc+tree"
        assert [m["name"] for m in j["modes"]] == modes
        for m in j["modes"]:
            for k in MEDIAN_KEYS:
                assert k in m["median"] and k in m["ratio_to_baseline"], (m["name"], k)
                assert k in m["spread"], (m["name"], k)
            assert m["ratio_to_baseline"]["events_per_s"] is not None
            assert len(m["runs"]) == 1
            run = m["runs"][0]
            for k in RUN_KEYS + ["mode", "repeat", "server_exit_status"]:
                assert k in run, k
            assert run["lost"] == 0 and run["server_exit_status"] == 0
        base = j["modes"][0]["ratio_to_baseline"]
        assert abs(base["events_per_s"] - 1.0) < 1e-9
        check_html(page, modes)
        return j
    finally:
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)


def t_compare_stub(lg, fake):
    check_compare(lg, fake)
    # A server that fails at start makes compare fail, not hang.
    p = subprocess.run([lg, "compare", "--server", fake, "--quick", "--modes", "naive+libc"],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, FAKE_INGESTD_EXIT="3"))
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)


def t_ingestd_run(lg, ingestd):
    for mode in (["--pool", "on", "--allocator", "libc"], ["--pool", "off"]):
        srv = Server(ingestd, mode)
        tmp = tempfile.mkdtemp(prefix="lg_check_")
        try:
            metrics = "http://%s/metrics" % srv.addr["admin"]
            for target, extra in (("tcp://" + srv.addr["tcp"], []),
                                  ("http://%s/v1/events" % srv.addr["http"], ["--batch", "50"])):
                js = os.path.join(tmp, "run.json")
                rc, out, err = loadgen(lg, "run", "--target", target, "--events", "10000",
                                       "--invalid", "5", "--connections", "2", "--warmup",
                                       "100ms", "--metrics", metrics, "--json", js, *extra)
                assert rc == 0, (target, rc, out, err)
                j = check_run_json(js, http=target.startswith("http"))
                os.unlink(js)
                assert j["sent_events"] == 10000
                assert j["server"]["rejected"] == j["expected_invalid"] > 0, j
                assert j["server"]["accepted"] == 10000 - j["expected_invalid"], j
                if target.startswith("http"):
                    assert j["response_accepted"] == j["server"]["accepted"], j
        finally:
            rc_srv, log = srv.stop()
            os.rmdir(tmp)
        assert rc_srv == 0, log


def t_compare_quick(lg, ingestd):
    j = check_compare(lg, ingestd)
    pooled = [m for m in j["modes"] if m["name"].startswith("pool+")]
    for m in pooled:
        assert m["median"]["pool_hit_rate"] is not None, m


def main():
    name, lg, server = sys.argv[1], sys.argv[2], sys.argv[3]
    globals()["t_" + name](lg, server)


if __name__ == "__main__":
    main()
