#!/usr/bin/env python3
"""live_checks.py - deploy/ against a real ingestd on loopback (port 0 listeners). Subcommands:

  metrics INGESTD          every metric name the dashboard and the alert rules query is in the
                           live /metrics (after a few events), with the contract's TYPE; the
                           endpoints the probes and scrapes use answer on the HTTP port
  env INGESTD              ingestd starts with the variables of deploy/systemd/ingestd.env, the
                           Deployment's env and the Dockerfile's ENV, and --help knows them all
  docs INGESTD             docs/OPERATIONS.md's flags table matches ingestd --help
  e2e INGESTD PROMETHEUS   a real Prometheus (its own port and storage) scrapes ingestd under a
                           short load with deploy/'s rules loaded; its HTTP API must show
                           ingestd_events_accepted_total > 0, up == 1, every rule healthy and
                           every dashboard query valid

Exit 0 pass, 1 fail, 77 skip (with a line saying why). Bounded: each step has a deadline."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploylib import (DEPLOY, KNOWN, SYNTHETIC, Failures, Ingestd,  # noqa: E402
                       dashboard_exprs, free_port, grafana_to_promql, names_in_expr, need_yaml,
                       parse_exposition, read_env_file, rule_exprs, sample_events, skip)

BAD_LINES = ["not json", "[1,2,3]", '{"no":"type"}']


def load_queries():
    yaml = need_yaml()
    with open(os.path.join(DEPLOY, "grafana", "ingestd.json")) as f:
        dash = json.load(f)
    with open(os.path.join(DEPLOY, "prometheus", "ingestd.rules.yml")) as f:
        rules = yaml.safe_load(f)
    return dashboard_exprs(dash), rule_exprs(rules)


def metric_value(text, name):
    """Sum of the samples of one unlabelled-or-labelled series name in an exposition."""
    total, seen = 0.0, False
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
            seen = True
    return total if seen else None


def wait_accepted(d, want, timeout=30):
    """Polls /metrics until ingestd_events_accepted_total >= want; returns the last text."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        status, text = d.get("/metrics")
        if status == 200 and (metric_value(text, "ingestd_events_accepted_total") or 0) >= want:
            return text
        time.sleep(0.1)
    return text


def cmd_metrics(binary):
    dash_q, rule_q = load_queries()
    fails = Failures()
    d = Ingestd(binary)
    try:
        events = sample_events(20)
        d.send_tcp(events + BAD_LINES)
        text = wait_accepted(d, len(events))
        for path in ("/healthz", "/readyz", "/metrics"):
            status, _ = d.get(path)
            fails.check(status == 200, "GET %s on the HTTP port (used by the k8s probes, the "
                        "ServiceMonitor and the Dockerfile HEALTHCHECK) answered %s" % (path, status))
            status, _ = d.get(path, port=d.admin[1])
            fails.check(status == 200, "GET %s on the admin port answered %s" % (path, status))
        if "ingestd_events_accepted_total" not in text:
            status, text = d.get("/metrics", port=d.admin[1])
        families, samples = parse_exposition(text)
        fails.check(metric_value(text, "ingestd_events_accepted_total") == len(events),
                    "ingestd_events_accepted_total is %s after %d valid events"
                    % (metric_value(text, "ingestd_events_accepted_total"), len(events)))
        for fam, typ in sorted(KNOWN.items()):
            fails.check(families.get(fam) == typ, "family %s: TYPE %s in /metrics, expected %s "
                        "(DESIGN.md's contract or deploylib.EXTRA)" % (fam, families.get(fam), typ))
        checked = set()
        for where, expr in dash_q + rule_q:
            for n in names_in_expr(expr):
                checked.add(n)
                fails.check(n in samples or n in SYNTHETIC,
                            "%s queries %s, which the live /metrics does not expose" % (where, n))
    finally:
        rc = d.stop()
    fails.check(rc == 0, "ingestd exited %s on SIGTERM; stderr:\n%s" % (rc, d.stderr_text[-3000:]))
    fails.done("%d names queried by the dashboard and rules are all in the live /metrics"
               % len(checked))


def deployment_env():
    yaml = need_yaml()
    with open(os.path.join(DEPLOY, "k8s", "deployment.yaml")) as f:
        dep = yaml.safe_load(f)
    c = dep["spec"]["template"]["spec"]["containers"][0]
    env = {}
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = str(e["value"])
        else:
            ref = e["valueFrom"]["resourceFieldRef"]
            # limits.cpu with divisor 1, as the kubelet would: rounded up.
            assert ref["resource"] == "limits.cpu", ref
            cpu = str(c["resources"]["limits"]["cpu"])
            cores = int(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
            env[e["name"]] = str(max(1, int(-(-cores // 1))))
    return env


def dockerfile_env():
    with open(os.path.join(DEPLOY, "Dockerfile")) as f:
        text = re.sub(r"\\\n", " ", f.read())
    env = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for k, v in re.findall(r"\b(INGESTD_[A-Z_]+)=(\S+)", line):
                env[k] = v
    return env


def cmd_env(binary):
    fails = Failures()
    p = subprocess.run([binary, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=30)
    fails.check(p.returncode == 0, "ingestd --help exited %d" % p.returncode)
    helptext = p.stdout
    sources = {
        "deploy/systemd/ingestd.env":
            dict(line.split("=", 1) for _, line in
                 read_env_file(os.path.join(DEPLOY, "systemd", "ingestd.env"))),
        "deploy/k8s/deployment.yaml": deployment_env(),
        "deploy/Dockerfile": dockerfile_env(),
    }
    loopback = {"INGESTD_TCP": "127.0.0.1:0", "INGESTD_HTTP": "127.0.0.1:0",
                "INGESTD_ADMIN": "127.0.0.1:0"}
    with tempfile.TemporaryDirectory() as tmp:
        for src, env in sources.items():
            for k in env:
                flag = "--" + k[len("INGESTD_"):].lower().replace("_", "-")
                fails.check(re.search(re.escape(flag) + r"\b", helptext) and k in helptext,
                            "%s sets %s, but ingestd --help has no %s / %s" % (src, k, flag, k))
            run_env = dict(env)
            run_env.update(loopback)
            # A file sink would write where the deployment says: keep it in a temp dir.
            if run_env.get("INGESTD_SINK", "null").startswith("file:"):
                run_env["INGESTD_SINK"] = "file:" + os.path.join(tmp, "events.ndjson")
            # A tokens file would be read where the deployment mounts it: write one in the temp
            # dir (HTTP ingest is not exercised here; TCP and the probes are).
            if run_env.get("INGESTD_INGEST_TOKENS_FILE", "off") != "off":
                tokens = os.path.join(tmp, "ingest-tokens")
                with open(tokens, "w") as f:
                    f.write("live-check-token-0123456789\n")
                os.chmod(tokens, 0o600)
                run_env["INGESTD_INGEST_TOKENS_FILE"] = tokens
            try:
                d = Ingestd(binary, env=run_env, extra_args=[])
            except RuntimeError as e:
                fails.check(False, "ingestd does not start with the variables of %s: %s" % (src, e))
                continue
            try:
                events = sample_events(10)
                d.send_tcp(events)
                text = wait_accepted(d, len(events))
                fails.check(metric_value(text, "ingestd_events_accepted_total") == len(events),
                            "with %s's variables ingestd did not accept %d events" % (src, len(events)))
                for path in ("/healthz", "/readyz"):
                    status, _ = d.get(path)
                    fails.check(status == 200, "with %s's variables GET %s answered %s"
                                % (src, path, status))
            finally:
                rc = d.stop()
            fails.check(rc == 0, "with %s's variables ingestd exited %s on SIGTERM; stderr:\n%s"
                        % (src, rc, d.stderr_text[-2000:]))
            print("started and drained with %s (%d variables)" % (src, len(env)), flush=True)
    fails.done("ingestd accepts the variables of the env file, the Deployment and the Dockerfile")


def cmd_docs(binary):
    """The flags table of docs/OPERATIONS.md lists every flag of ingestd --help, with its
    variable and default (workers excepted: its default is the machine's CPU count)."""
    fails = Failures()
    p = subprocess.run([binary, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=30)
    fails.check(p.returncode == 0, "ingestd --help exited %d" % p.returncode)
    flags = re.findall(r"^  --([a-z-]+) .*\n\s+.*\(default (.*); env (INGESTD_[A-Z_]+)\)$",
                       p.stdout, re.M)
    fails.check(flags, "no flags found in ingestd --help")
    with open(os.path.join(DEPLOY, "..", "docs", "OPERATIONS.md")) as f:
        doc = f.read()
    rows = {}
    for m in re.finditer(r"^\| `--([a-z-]+)` \| `(INGESTD_[A-Z_]+)` \| ([^|]*) \|", doc, re.M):
        rows[m.group(1)] = (m.group(2), m.group(3).strip().strip("`"))
    for name, default, env in flags:
        row = rows.get(name)
        if not fails.check(row, "docs/OPERATIONS.md has no flags-table row for --%s" % name):
            continue
        fails.check(row[0] == env, "--%s: docs say %s, --help says %s" % (name, row[0], env))
        if name != "workers":
            fails.check(row[1] == default, "--%s: docs give default %r, --help says %r"
                        % (name, row[1], default))
    for name in rows:
        fails.check(name in {f[0] for f in flags}, "docs/OPERATIONS.md lists --%s, which "
                    "ingestd --help does not know" % name)
    fails.done("the flags table matches ingestd --help (%d flags)" % len(flags))


# ---- end to end with a real Prometheus ----------------------------------------------------------

def api(port, path, params=None, timeout=5):
    url = "http://127.0.0.1:%d%s" % (port, path)
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read().decode())


def instant(port, query):
    """Values of an instant query ([] when empty)."""
    res = api(port, "/api/v1/query", {"query": query})
    if res.get("status") != "success":
        raise RuntimeError("query %r: %s" % (query, res))
    return [float(s["value"][1]) for s in res["data"]["result"]]


def start_prometheus(prom, tmp, config_path):
    """Starts Prometheus on a free loopback port; retries on a port clash. Returns (proc, port)."""
    last = ""
    for attempt in range(3):
        port = free_port()
        data = os.path.join(tmp, "data%d" % attempt)
        log = open(os.path.join(tmp, "prometheus%d.log" % attempt), "w+")
        proc = subprocess.Popen(
            [prom, "--config.file=" + config_path, "--storage.tsdb.path=" + data,
             "--web.listen-address=127.0.0.1:%d" % port, "--storage.tsdb.retention.time=1h",
             "--log.level=warn"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % port, timeout=2) as r:
                    if r.status == 200:
                        return proc, port
            except OSError:
                pass
            time.sleep(0.2)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        log.seek(0)
        last = log.read()[-3000:]
        if "address already in use" not in last:
            break
    raise RuntimeError("Prometheus did not become ready:\n" + last)


def cmd_e2e(binary, prometheus="prometheus"):
    yaml = need_yaml()
    prom = shutil.which(prometheus)
    if not prom:
        skip("%s not found: the Prometheus server comes from Debian's package; "
             "apt-get install prometheus" % prometheus)
    dash_q, rule_q = load_queries()
    fails = Failures()
    d = Ingestd(binary)
    proc = None
    tmp = tempfile.mkdtemp(prefix="ingestd-e2e-")
    try:
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                       "evaluation_interval": "1s"},
            "rule_files": [os.path.join(DEPLOY, "prometheus", "ingestd.rules.yml")],
            "scrape_configs": [{"job_name": "ingestd", "metrics_path": "/metrics",
                                "static_configs": [{"targets": ["%s:%d" % d.http]}]}],
        }
        config_path = os.path.join(tmp, "prometheus.yml")
        with open(config_path, "w") as f:
            yaml.safe_dump(config, f)
        proc, port = start_prometheus(prom, tmp, config_path)
        # A short bounded load: 5000 valid events over 5 connections, and a few bad lines.
        valid = 0
        for i in range(5):
            events = sample_events(1000)
            d.send_tcp(events + (BAD_LINES if i == 0 else []))
            valid += len(events)
        deadline = time.monotonic() + 60
        accepted, up = [], []
        while time.monotonic() < deadline:
            accepted = instant(port, 'sum(ingestd_events_accepted_total{job="ingestd"})')
            up = instant(port, 'up{job="ingestd"}')
            if accepted and accepted[0] >= valid and up == [1.0]:
                break
            time.sleep(0.5)
        fails.check(up == [1.0], "Prometheus reports up{job=\"ingestd\"} = %s, not 1" % up)
        fails.check(accepted and accepted[0] > 0,
                    "Prometheus finds no ingestd_events_accepted_total > 0: %s" % accepted)
        fails.check(accepted and accepted[0] == valid,
                    "Prometheus has ingestd_events_accepted_total = %s after %d valid events"
                    % (accepted, valid))
        # The alert rules were loaded and evaluated against real series without error.
        groups = []
        while time.monotonic() < deadline:
            groups = api(port, "/api/v1/rules")["data"]["groups"]
            rules = [r for g in groups for r in g["rules"]]
            if rules and all(r.get("health") != "unknown" for r in rules):
                break
            time.sleep(0.5)
        rules = [r for g in groups for r in g["rules"]]
        fails.check(len(rules) == len(rule_q), "Prometheus loaded %d rules, the file has %d"
                    % (len(rules), len(rule_q)))
        for r in rules:
            fails.check(r.get("health") == "ok", "rule %s: health %s %s"
                        % (r.get("name"), r.get("health"), r.get("lastError", "")))
        # Every dashboard query runs; the ones on ingest counters return data.
        for where, expr in dash_q:
            q = grafana_to_promql(expr)
            try:
                res = api(port, "/api/v1/query", {"query": q})
                fails.check(res.get("status") == "success", "%s: %s" % (where, res))
            except urllib.error.HTTPError as e:
                fails.check(False, "%s: HTTP %d %s" % (where, e.code, e.read()[:300]))
        # Nothing fires on a healthy target (pending is allowed: before the first scrape,
        # absent(up) is briefly true).
        firing = [a for a in api(port, "/api/v1/alerts")["data"]["alerts"]
                  if a.get("state") == "firing"]
        fails.check(not firing, "alerts firing on a healthy target after a short load: %s"
                    % firing)
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        rc = d.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    fails.check(rc == 0, "ingestd exited %s on SIGTERM; stderr:\n%s" % (rc, d.stderr_text[-3000:]))
    fails.done("Prometheus scraped %s valid events, up == 1, %d rules healthy, %d dashboard "
               "queries valid" % (accepted[0] if accepted else 0, len(rule_q), len(dash_q)))


def main(argv):
    handlers = {"metrics": cmd_metrics, "env": cmd_env, "docs": cmd_docs, "e2e": cmd_e2e}
    if len(argv) < 3 or argv[1] not in handlers:
        print(__doc__)
        return 2
    if not os.access(argv[2], os.X_OK):
        print("FAIL: %s is not an executable ingestd" % argv[2])
        return 1
    handlers[argv[1]](*argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
