#!/usr/bin/env python3
"""report_browser.py - the compare report in a real browser (headless Chromium, driven over the
DevTools protocol on a pipe, no network port):

    report_browser.py CHROMIUM REPORT_SAMPLE LOADGEN FAKE_SERVER

renders (1) the report of a synthetic 8-mode, 5-run result from report_sample and (2) the report
of a tiny real `loadgen compare` run against fake_ingestd.py, and asserts for each: no console
message, exception or failed load; no script and no resource fetched (self-contained); the
verdict, the argv and the environment on the page; four charts, each with every mode in the JSON
order, in the mode's colour, with one dot per run; one RSS panel per mode; nothing wider than an
1100 px window. First it renders a deliberately broken page and asserts that the checks see its
errors, so a silent browser cannot pass. Exit 77 (skipped) when Chromium is not installed."""
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

WIDTH, HEIGHT = 1100, 2400

CHECK_JS = r"""(() => {
  const q = (s, root) => Array.from((root || document).querySelectorAll(s));
  const text = id => { const e = document.getElementById(id); return e ? e.textContent : null; };
  return {
    title: document.title,
    verdict: text('verdict'),
    argv: text('argv'),
    charts: q('svg.chart').map(c => ({
      figure: c.dataset.figure,
      width: c.getBoundingClientRect().width,
      height: c.getBoundingClientRect().height,
      modes: q('g.mode', c).map(g => {
        const bar = g.querySelector('rect.bar');
        return {name: g.dataset.mode, fill: bar ? bar.getAttribute('fill') : null,
                barWidth: bar ? bar.getBoundingClientRect().width : 0,
                dots: q('circle.run', g).length};
      }),
      ticks: q('text.tick', c).length,
      axisLabel: (c.querySelector('text.axis-label') || {}).textContent || null})),
    panels: q('svg.panel').map(p => ({name: p.dataset.mode, lines: q('polyline', p).length,
                                       height: p.getBoundingClientRect().height})),
    env: q('table.env th').map(th => th.textContent),
    scripts: document.scripts.length,
    resources: performance.getEntriesByType('resource').length,
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    bodyText: document.body.innerText.length,
  };
})()"""


class Browser:
    """Headless Chromium with --remote-debugging-pipe: we write to its fd 3, read its fd 4."""

    def __init__(self, exe, workdir):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def child_fds():
            # Move both ends above 4 first so neither dup2 clobbers the other.
            a = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.log = open(os.path.join(workdir, "chromium.log"), "w+")
        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--user-data-dir=" + os.path.join(workdir, "profile"),
             "--window-size=%d,%d" % (WIDTH, HEIGHT), "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log,
            close_fds=False, preexec_fn=child_fds)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.next_id = 0
        self.buf = b""
        self.events = []

    def send(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        while True:
            m = self.read(timeout)
            if m.get("id") == self.next_id:
                assert "error" not in m, (method, m["error"])
                return m.get("result", {})
            self.events.append(m)

    def read(self, timeout):
        deadline = time.time() + timeout
        while b"\0" not in self.buf:
            left = deadline - time.time()
            assert left > 0, "Chromium did not answer within %s s" % timeout
            r, _, _ = select.select([self.from_chrome], [], [], left)
            if r:
                chunk = os.read(self.from_chrome, 1 << 20)
                assert chunk, "Chromium closed the pipe:\n" + self.log_text()
                self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def wait_event(self, method, session, timeout=30):
        for i, e in enumerate(self.events):
            if e.get("method") == method and e.get("sessionId") == session:
                return self.events.pop(i)
        deadline = time.time() + timeout
        while True:
            m = self.read(max(0.1, deadline - time.time()))
            if m.get("method") == method and m.get("sessionId") == session:
                return m
            self.events.append(m)

    def log_text(self):
        self.log.seek(0)
        return self.log.read()[-3000:]

    def open(self, url):
        """Loads url in a new tab; returns (problems, facts, screenshot PNG bytes)."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.send(domain + ".enable", session=session)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
                  session=session)
        self.events = [e for e in self.events if e.get("sessionId") != session]
        self.send("Page.navigate", {"url": url}, session=session)
        self.wait_event("Page.loadEventFired", session)
        facts = self.send("Runtime.evaluate", {"expression": CHECK_JS, "returnByValue": True},
                          session=session)["result"]["value"]
        png = self.send("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
        # Anything the page said: console calls, exceptions, log entries (failed loads).
        problems = []
        for e in self.events:
            if e.get("sessionId") != session:
                continue
            p = e.get("params", {})
            if e["method"] == "Runtime.consoleAPICalled":
                problems.append("console.%s: %s" % (p.get("type"), [a.get("value") for a in
                                                                     p.get("args", [])]))
            elif e["method"] == "Runtime.exceptionThrown":
                problems.append("exception: %s" % p.get("exceptionDetails", {}).get("text"))
            elif e["method"] == "Log.entryAdded":
                entry = p.get("entry", {})
                if entry.get("level") in ("error", "warning"):
                    problems.append("log %s: %s %s" % (entry.get("level"), entry.get("text"),
                                                       entry.get("url", "")))
        self.send("Target.closeTarget", {"targetId": target})
        return problems, facts, png

    def close(self):
        try:
            self.send("Browser.close", timeout=10)
        except (AssertionError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.to_chrome)
        os.close(self.from_chrome)
        self.log.close()


def check_report(browser, html_path, json_path):
    with open(json_path) as f:
        j = json.load(f)
    problems, facts, png = browser.open("file://" + html_path)
    where = os.path.basename(html_path)
    assert not problems, (where, problems)
    assert facts["scripts"] == 0 and facts["resources"] == 0, (where, facts)
    assert facts["title"].startswith("loadgen compare"), facts["title"]
    assert facts["verdict"] == j["verdict"] and len(j["verdict"]) > 20, (facts["verdict"], j)
    assert facts["argv"] == j["command"], (facts["argv"], j["command"])
    for key in ("date (UTC)", "CPU", "kernel", "glibc", "mimalloc", "ingestd", "source",
                "pinning", "load"):
        assert key in facts["env"], (key, facts["env"])
    names = [m["name"] for m in j["modes"]]
    colors = {m["name"]: m["color"] for m in j["modes"]}
    figures = [c["figure"] for c in facts["charts"]]
    assert figures == ["cpu_us_per_event", "events_per_s", "allocs_per_event", "peak_rss_bytes"], \
        figures
    for c in facts["charts"]:
        assert c["width"] > 500 and c["height"] > 30 * len(names), c
        assert c["ticks"] >= 3 and c["axisLabel"], c
        assert [m["name"] for m in c["modes"]] == names, (c["figure"], c["modes"])
        for m, jm in zip(c["modes"], j["modes"]):
            assert m["fill"] == colors[m["name"]], (c["figure"], m)
            runs = [r for r in jm["runs"] if r["figures"][c["figure"]] is not None]
            assert m["dots"] == len(runs), (c["figure"], m, len(runs))
            top = max(x["median"][c["figure"]] or 0 for x in j["modes"])
            if (jm["median"][c["figure"]] or 0) > 0.01 * top:
                assert m["barWidth"] > 0, (c["figure"], m)
    assert [p["name"] for p in facts["panels"]] == names, facts["panels"]
    assert facts["overflow"] <= 0, "the page is %d px wider than the window" % facts["overflow"]
    assert png.startswith("iVBORw0KGgo"), "no PNG screenshot"  # base64 of the PNG signature
    return facts


def main():
    chromium, sample, loadgen, fake = sys.argv[1:5]
    exe = shutil.which(chromium) or (chromium if os.access(chromium, os.X_OK) else None)
    if not exe:
        print("chromium not installed (apt-get install chromium): skipped")
        sys.exit(77)
    tmp = tempfile.mkdtemp(prefix="report_browser_")
    browser = None
    try:
        # 1. A broken page: the checks must see what is wrong with it.
        broken = os.path.join(tmp, "broken.html")
        with open(broken, "w") as f:
            f.write('<!DOCTYPE html><html><body><img src="missing.png"/>'
                    '<script>console.error("boom"); undefined_function();</script></body></html>')
        browser = Browser(exe, tmp)
        problems, facts, _ = browser.open("file://" + broken)
        assert any("boom" in p for p in problems), problems
        assert any(p.startswith("exception") for p in problems), problems
        assert any("missing.png" in p for p in problems), problems
        assert facts["scripts"] == 1, facts

        # 2. Eight modes of three-part names, five runs each (synthetic).
        html, js = os.path.join(tmp, "sample.html"), os.path.join(tmp, "sample.json")
        subprocess.run([sample, "8", "5", html, js], check=True, timeout=30)
        facts = check_report(browser, html, js)
        assert "<script>" in facts["argv"], "argv must show as text, not run"
        assert len(facts["panels"]) == 8

        # 3. A tiny real compare against the stand-in server.
        html, js = os.path.join(tmp, "real.html"), os.path.join(tmp, "real.json")
        p = subprocess.run([loadgen, "compare", "--server", fake, "--quick", "--repeat", "2",
                            "--events", "3000", "--modes", "naive+libc,pool+libc,pool+mimalloc",
                            "--html", html, "--json", js, "--no-progress"],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
        facts = check_report(browser, html, js)
        assert "--modes naive+libc,pool+libc,pool+mimalloc" in facts["argv"], facts["argv"]
    finally:
        if browser:
            browser.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
