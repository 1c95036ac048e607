#!/usr/bin/env python3
"""deploy_checks.py - static checks of deploy/ (no ingestd needed). One subcommand per ctest:

  promconfig PROMTOOL   promtool check config on both scrape configs
  rules PROMTOOL        promtool check rules, contract names only, every alert tested both ways
  ruletest PROMTOOL     promtool test rules (fires and does not fire each alert)
  dashboard [PROMTOOL]  Grafana JSON valid, a panel for every contract family, only contract
                        names queried, every query parses as PromQL (through promtool)
  k8s                   every manifest parses (yaml.safe_load_all) with its required fields
  env                   INGESTD_* names in the env file, unit, k8s and Dockerfile are flags
  dockerfile [INGESTD]  structure of the Dockerfile and its context allowlist; with a built
                        ingestd, every shared library it needs is in a package the runtime stage
                        installs (scripts/container builds and runs it: deploy.container)
  systemd UNIT_EXEC     systemd-analyze verify and security on a copy of the unit

Exit 0 pass, 1 fail, 77 skip (with a line saying why)."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploylib import (CONTRACT, DEPLOY, KNOWN, KNOWN_ENV, SYNTHETIC, Failures,  # noqa: E402
                       dashboard_exprs, family_of, grafana_to_promql, names_in_expr, need_yaml,
                       read_env_file, rule_exprs, skip)


def need_tool(name, package):
    """The tool's path (a name is looked up on PATH); skips the test when it is missing."""
    path = shutil.which(name) if name else None
    if not path:
        skip("%s not found: apt-get install %s" % (name, package))
    return path


def run(cmd, cwd=None):
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=120)
    return p.returncode, p.stdout


def cmd_promconfig(promtool="promtool"):
    promtool = need_tool(promtool, "prometheus")
    yaml = need_yaml()
    fails = Failures()
    pdir = os.path.join(DEPLOY, "prometheus")
    rc, out = run([promtool, "check", "config", "prometheus.yml"], cwd=pdir)
    fails.check(rc == 0, "promtool check config prometheus.yml:\n" + out)
    # Debian's Prometheus is built without Kubernetes service discovery, so its promtool rejects
    # kubernetes_sd_configs. Check everything else of prometheus-k8s.yml (relabel rules, rule
    # files) with static targets in place of the Kubernetes discovery, and say so.
    rc, out = run([promtool, "check", "config", "prometheus-k8s.yml"], cwd=pdir)
    if rc != 0 and "kubernetes_sd_configs not found" in out:
        print("NOTE: this promtool has no Kubernetes service discovery (Debian build); "
              "checking prometheus-k8s.yml with static_configs in its place")
        with open(os.path.join(pdir, "prometheus-k8s.yml")) as f:
            cfg = yaml.safe_load(f)
        for sc in cfg.get("scrape_configs", []):
            if sc.pop("kubernetes_sd_configs", None) is not None:
                sc["static_configs"] = [{"targets": ["127.0.0.1:8080"]}]
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(os.path.join(pdir, "ingestd.rules.yml"), tmp)
            with open(os.path.join(tmp, "prometheus-k8s.yml"), "w") as f:
                yaml.safe_dump(cfg, f)
            rc, out = run([promtool, "check", "config", "prometheus-k8s.yml"], cwd=tmp)
    fails.check(rc == 0, "promtool check config prometheus-k8s.yml:\n" + out)
    # The rules select job="ingestd": every scrape config must name its job so.
    for name in ("prometheus.yml", "prometheus-k8s.yml"):
        with open(os.path.join(pdir, name)) as f:
            cfg = yaml.safe_load(f)
        jobs = [sc.get("job_name") for sc in cfg.get("scrape_configs", [])]
        fails.check("ingestd" in jobs, "%s has no job_name: ingestd (rules select on it)" % name)
        fails.check(cfg.get("rule_files") == ["ingestd.rules.yml"],
                    "%s does not load ingestd.rules.yml" % name)
    fails.done("scrape configs")


def cmd_rules(promtool="promtool"):
    promtool = need_tool(promtool, "prometheus")
    yaml = need_yaml()
    fails = Failures()
    pdir = os.path.join(DEPLOY, "prometheus")
    rc, out = run([promtool, "check", "rules", "ingestd.rules.yml"], cwd=pdir)
    fails.check(rc == 0, "promtool check rules:\n" + out)
    with open(os.path.join(pdir, "ingestd.rules.yml")) as f:
        rules = yaml.safe_load(f)
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    for where, expr in rule_exprs(rules):
        for n in names_in_expr(expr):
            fails.check(family_of(n, KNOWN) or n in SYNTHETIC,
                        "%s queries %s, neither in the metrics contract nor a known extra"
                        % (where, n))
    for r in alerts:
        a = r.get("annotations", {})
        fails.check(a.get("summary") and a.get("description"),
                    "alert %s lacks a summary or description" % r["alert"])
        fails.check(r.get("labels", {}).get("severity") in ("warning", "critical"),
                    "alert %s has no severity" % r["alert"])
    # Every runbook annotation names a heading of docs/OPERATIONS.md.
    doc = os.path.join(DEPLOY, "..", "docs", "OPERATIONS.md")
    headings = set()
    if fails.check(os.path.exists(doc), "docs/OPERATIONS.md is missing (runbook target)"):
        with open(doc) as f:
            headings = {m.group(1).strip().lower()
                        for m in re.finditer(r"^#+ (.*)$", f.read(), re.M)}
    for r in alerts:
        rb = r.get("annotations", {}).get("runbook", "")
        fails.check(rb == "docs/OPERATIONS.md#" + r["alert"].lower()
                    and r["alert"].lower() in headings,
                    "alert %s: runbook %r has no heading in docs/OPERATIONS.md" % (r["alert"], rb))
    # Every alert has a firing case in the promtool unit tests.
    with open(os.path.join(pdir, "ingestd.rules.test.yml")) as f:
        tests = yaml.safe_load(f)
    fired = {t["alertname"] for g in tests["tests"] for t in g.get("alert_rule_test", [])
             if t.get("exp_alerts")}
    quiet = {t["alertname"] for g in tests["tests"] for t in g.get("alert_rule_test", [])
             if not t.get("exp_alerts")}
    for r in alerts:
        fails.check(r["alert"] in fired, "no promtool test fires %s" % r["alert"])
        fails.check(r["alert"] in quiet, "no promtool test expects %s quiet" % r["alert"])
    fails.done("rules: %d alerts" % len(alerts))


def cmd_ruletest(promtool="promtool"):
    promtool = need_tool(promtool, "prometheus")
    fails = Failures()
    rc, out = run([promtool, "test", "rules", "ingestd.rules.test.yml"],
                  cwd=os.path.join(DEPLOY, "prometheus"))
    print(out)
    fails.check(rc == 0, "promtool test rules failed")
    fails.done("promtool test rules")


def cmd_dashboard(promtool=None):
    yaml = need_yaml()
    fails = Failures()
    path = os.path.join(DEPLOY, "grafana", "ingestd.json")
    try:
        with open(path) as f:
            dash = json.load(f)
    except ValueError as e:
        print("FAIL: %s is not valid JSON: %s" % (path, e))
        sys.exit(1)
    fails.check(dash.get("uid") and dash.get("title"), "dashboard has no uid or title")
    ids, covered = set(), set()
    exprs = dashboard_exprs(dash)

    def walk(panels):
        for p in panels:
            fails.check(p.get("id") not in ids, "panel id %r repeats" % p.get("id"))
            ids.add(p.get("id"))
            fails.check("gridPos" in p, "panel %r has no gridPos" % p.get("title"))
            if p.get("type") != "row":
                fails.check(p.get("targets"), "panel %r has no query" % p.get("title"))
                ds = p.get("datasource", {})
                fails.check(ds.get("uid") == "${datasource}",
                            "panel %r does not use the $datasource variable" % p.get("title"))
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    for where, expr in exprs:
        names = names_in_expr(expr)
        fails.check(names, "%s queries no metric: %s" % (where, expr))
        for n in names:
            fam = family_of(n, KNOWN)
            if fam:
                covered.add(fam)
            else:
                fails.check(n in SYNTHETIC, "%s queries %s, neither in the metrics contract nor "
                            "a known extra" % (where, n))
        if "ingestd_" in expr:
            fails.check('job="ingestd"' in expr, "%s does not select job=\"ingestd\"" % where)
    for fam in sorted(set(CONTRACT) - covered):
        fails.check(False, "no panel queries contract family %s" % fam)
    # Every query must parse: run them through promtool as recording rules.
    if promtool:
        promtool = need_tool(promtool, "prometheus")
        rules = {"groups": [{"name": "dashboard", "rules": [
            {"record": "dashboard:q%d" % i, "expr": grafana_to_promql(e)}
            for i, (_, e) in enumerate(exprs)]}]}
        with tempfile.TemporaryDirectory() as tmp:
            rp = os.path.join(tmp, "dashboard.rules.yml")
            with open(rp, "w") as f:
                yaml.safe_dump(rules, f)
            rc, out = run([promtool, "check", "rules", rp])
            fails.check(rc == 0, "dashboard queries do not parse as PromQL:\n" + out)
    # The JSON is generated: it must be what gen_dashboard.py writes.
    gen = os.path.join(DEPLOY, "grafana", "gen_dashboard.py")
    p = subprocess.run([sys.executable, gen], stdout=subprocess.PIPE, text=True, timeout=60)
    fails.check(p.returncode == 0 and json.loads(p.stdout) == dash,
                "deploy/grafana/ingestd.json differs from gen_dashboard.py's output: edit the "
                "generator and run `python3 deploy/grafana/gen_dashboard.py > "
                "deploy/grafana/ingestd.json`")
    fails.done("dashboard: %d queries, %d contract families covered"
               % (len(exprs), len(covered & set(CONTRACT))))


def port_names(container):
    return {p.get("name"): p.get("containerPort") for p in container.get("ports", [])}


def cmd_k8s():
    yaml = need_yaml()
    fails = Failures()
    kdir = os.path.join(DEPLOY, "k8s")
    docs = []
    for name in sorted(os.listdir(kdir)):
        if not name.endswith((".yaml", ".yml")):
            continue
        with open(os.path.join(kdir, name)) as f:
            try:
                loaded = [d for d in yaml.safe_load_all(f) if d is not None]
            except yaml.YAMLError as e:
                fails.check(False, "%s: %s" % (name, e))
                continue
        fails.check(loaded, "%s holds no document" % name)
        for d in loaded:
            where = "%s (%s)" % (name, d.get("kind"))
            fails.check(isinstance(d.get("apiVersion"), str), where + ": no apiVersion")
            fails.check(isinstance(d.get("kind"), str), where + ": no kind")
            if d.get("kind") != "Kustomization":
                fails.check(d.get("metadata", {}).get("name"), where + ": no metadata.name")
            docs.append((name, d))
    by_kind = {}
    for name, d in docs:
        by_kind.setdefault(d.get("kind"), []).append(d)
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
                 "ServiceMonitor"):
        fails.check(len(by_kind.get(kind, [])) == 1, "expected one %s, found %d" %
                    (kind, len(by_kind.get(kind, []))))
    if fails.items:
        fails.done("k8s")
    dep, svc = by_kind["Deployment"][0], by_kind["Service"][0]
    hpa, pdb = by_kind["HorizontalPodAutoscaler"][0], by_kind["PodDisruptionBudget"][0]
    smon = by_kind["ServiceMonitor"][0]
    spec = dep["spec"]
    tmpl = spec["template"]
    pod_labels = tmpl["metadata"].get("labels", {})

    def selects(selector, labels):
        return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

    fails.check(dep["apiVersion"] == "apps/v1", "Deployment apiVersion is not apps/v1")
    fails.check(selects(spec["selector"]["matchLabels"], pod_labels),
                "Deployment selector does not match its pod labels")
    containers = tmpl["spec"]["containers"]
    c = [x for x in containers if x["name"] == "ingestd"]
    fails.check(len(c) == 1, "no container named ingestd")
    if fails.items:
        fails.done("k8s")
    c = c[0]
    ports = port_names(c)
    fails.check(ports.get("tcp-ingest") == 7070, "container port tcp-ingest is not 7070")
    fails.check(ports.get("http") == 8080, "container port http is not 8080")
    res = c.get("resources", {})
    for kind in ("requests", "limits"):
        for r in ("cpu", "memory"):
            fails.check(res.get(kind, {}).get(r), "container has no resources.%s.%s" % (kind, r))
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        g = c.get(probe, {}).get("httpGet", {})
        fails.check(g.get("path") == path, "%s path is %r, not %s" % (probe, g.get("path"), path))
        fails.check(g.get("port") in ports or g.get("port") in ports.values(),
                    "%s port %r is not a container port" % (probe, g.get("port")))
    env = {e["name"]: e for e in c.get("env", [])}
    for name in env:
        fails.check(name in KNOWN_ENV, "env %s is not an ingestd flag variable" % name)
    for name in ("INGESTD_POOL", "INGESTD_POOL_RETAIN", "INGESTD_ALLOCATOR",
                 "INGESTD_MEMORY_LIMIT", "INGESTD_HTTP", "INGESTD_TCP"):
        fails.check(name in env, "Deployment does not set %s" % name)
    http_env = env.get("INGESTD_HTTP", {}).get("value", "")
    fails.check(http_env.endswith(":8080"), "INGESTD_HTTP %r is not on port 8080" % http_env)
    sc = c.get("securityContext", {})
    fails.check(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation not false")
    fails.check(tmpl["spec"].get("securityContext", {}).get("runAsNonRoot") is True,
                "pod does not set runAsNonRoot")
    ann = tmpl["metadata"].get("annotations", {})
    fails.check(ann.get("prometheus.io/scrape") == "true", "no prometheus.io/scrape annotation")
    fails.check(str(ann.get("prometheus.io/port")) == str(ports.get("http")),
                "prometheus.io/port is not the http container port")
    fails.check(ann.get("prometheus.io/path") == "/metrics", "prometheus.io/path is not /metrics")
    # Service: selects the pods; every target port is a container port.
    fails.check(selects(svc["spec"].get("selector"), pod_labels),
                "Service selector does not match the pod labels")
    svc_ports = {p.get("name"): p for p in svc["spec"].get("ports", [])}
    for p in svc_ports.values():
        t = p.get("targetPort")
        fails.check(t in ports or t in ports.values(),
                    "Service targetPort %r is not a container port" % t)
    # HPA scales this Deployment; PDB and ServiceMonitor select the right objects.
    ref = hpa["spec"]["scaleTargetRef"]
    fails.check(ref.get("kind") == "Deployment" and ref.get("name") == dep["metadata"]["name"],
                "HPA does not target the Deployment")
    fails.check(hpa["spec"].get("minReplicas", 1) <= hpa["spec"].get("maxReplicas", 0),
                "HPA minReplicas above maxReplicas")
    fails.check(selects(pdb["spec"]["selector"]["matchLabels"], pod_labels),
                "PDB selector does not match the pod labels")
    fails.check(selects(smon["spec"]["selector"]["matchLabels"], svc["metadata"].get("labels", {})),
                "ServiceMonitor selector does not match the Service labels")
    for ep in smon["spec"].get("endpoints", []):
        fails.check(ep.get("port") in svc_ports, "ServiceMonitor port %r is not a Service port"
                    % ep.get("port"))
        fails.check(ep.get("path") == "/metrics", "ServiceMonitor path is not /metrics")
    fails.check(svc["metadata"]["name"] == "ingestd",
                "Service name is not ingestd (the ServiceMonitor's job label, used by the rules)")
    # Grace period covers the drain.
    grace = tmpl["spec"].get("terminationGracePeriodSeconds", 30)
    st = env.get("INGESTD_SHUTDOWN_TIMEOUT", {}).get("value", "30s")
    m = re.match(r"^(\d+)s$", st)
    pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pause = int(pre[1]) if len(pre) == 2 and pre[0].endswith("sleep") else 0
    fails.check(m and pause + int(m.group(1)) < grace,
                "terminationGracePeriodSeconds %s does not exceed preStop %ss + "
                "INGESTD_SHUTDOWN_TIMEOUT %s" % (grace, pause, st))
    # Kustomization lists every manifest.
    kust = by_kind.get("Kustomization", [])
    if kust:
        listed = set(kust[0].get("resources", []))
        files = {n for n, d in docs if d.get("kind") != "Kustomization"}
        fails.check(listed == files, "kustomization resources %s differ from the manifests %s"
                    % (sorted(listed), sorted(files)))
    check_jetstream_overlay(yaml, fails)
    fails.done("k8s: %d documents" % len(docs))


def check_jetstream_overlay(yaml, fails):
    """deploy/k8s/jetstream: every file parses with its required fields; the kustomization names
    files that exist; the ingestd patch sets only flag variables, a nats:// sink, and mounts the
    Secret the NATS StatefulSet reads its token from at the path INGESTD_NATS_TOKEN_FILE names."""
    jdir = os.path.join(DEPLOY, "k8s", "jetstream")
    docs = {}
    for name in sorted(os.listdir(jdir)):
        if name.endswith((".yaml", ".yml")):
            with open(os.path.join(jdir, name)) as f:
                try:
                    docs[name] = [d for d in yaml.safe_load_all(f) if d is not None]
                except yaml.YAMLError as e:
                    fails.check(False, "jetstream/%s: %s" % (name, e))
    for name, ds in docs.items():
        for d in ds:
            fails.check(isinstance(d.get("apiVersion"), str) and isinstance(d.get("kind"), str),
                        "jetstream/%s: a document without apiVersion/kind" % name)
            if d.get("kind") != "Kustomization":
                fails.check(d.get("metadata", {}).get("name"), "jetstream/%s: no metadata.name" % name)
    kust = docs.get("kustomization.yaml", [{}])[0]
    for r in kust.get("resources", []):
        fails.check(r == "../" or r in docs, "jetstream kustomization: no file %s" % r)
    for p in kust.get("patches", []):
        fails.check(p.get("path") in docs, "jetstream kustomization: no patch %s" % p.get("path"))
    sts = [d for ds in docs.values() for d in ds if d.get("kind") == "StatefulSet"]
    fails.check(len(sts) == 1 and sts[0]["spec"].get("replicas") == 3,
                "jetstream: expected one StatefulSet of 3 replicas")
    patch = docs.get("ingestd-nats.yaml", [{}])[0]
    pspec = patch.get("spec", {}).get("template", {}).get("spec", {})
    cont = [c for c in pspec.get("containers", []) if c.get("name") == "ingestd"]
    fails.check(len(cont) == 1, "jetstream patch: no ingestd container")
    if not cont or not sts:
        return
    env = {e["name"]: e.get("value", "") for e in cont[0].get("env", [])}
    for name in env:
        fails.check(name in KNOWN_ENV, "jetstream patch: env %s is not an ingestd flag variable" % name)
    fails.check(re.match(r"^nats://[^/\s]+(,[^/\s]+)*/[^/\s]+$", env.get("INGESTD_SINK", "")),
                "jetstream patch: INGESTD_SINK %r is not nats://HOSTS/SUBJECT" % env.get("INGESTD_SINK"))
    nats_env = {e["name"]: e for e in sts[0]["spec"]["template"]["spec"]["containers"][0].get("env", [])}
    secret = nats_env.get("NATS_TOKEN", {}).get("valueFrom", {}).get("secretKeyRef", {})
    vols = {v["name"]: v for v in pspec.get("volumes", [])}
    mounts = {m["name"]: m for m in cont[0].get("volumeMounts", [])}
    ok = False
    for vname, v in vols.items():
        if v.get("secret", {}).get("secretName") == secret.get("name") and vname in mounts:
            path = mounts[vname]["mountPath"].rstrip("/") + "/" + secret.get("key", "")
            ok = env.get("INGESTD_NATS_TOKEN_FILE") == path
    fails.check(ok, "jetstream: INGESTD_NATS_TOKEN_FILE is not the mounted key of the Secret "
                "the NATS servers read their token from")


def dockerfile_env(text):
    names = set()
    for m in re.finditer(r"^ENV\s+((?:.*\\\n)*.*)$", text, re.M):
        names |= set(re.findall(r"\b(INGESTD_[A-Z_]+)=", m.group(1)))
    return names


def cmd_env():
    yaml = need_yaml()
    fails = Failures()
    env_path = os.path.join(DEPLOY, "systemd", "ingestd.env")
    seen = set()
    for n, line in read_env_file(env_path):
        m = re.match(r"^([A-Z_][A-Z0-9_]*)=(.*)$", line)
        if not fails.check(m, "ingestd.env:%d is not KEY=VALUE: %r" % (n, line)):
            continue
        k, v = m.group(1), m.group(2)
        fails.check(k in KNOWN_ENV, "ingestd.env:%d %s is not an ingestd flag variable" % (n, k))
        fails.check(k not in seen, "ingestd.env:%d %s set twice" % (n, k))
        fails.check(v != "", "ingestd.env:%d %s is empty" % (n, k))
        seen.add(k)
    with open(os.path.join(DEPLOY, "systemd", "ingestd.service")) as f:
        unit = f.read()
    fails.check(re.search(r"^EnvironmentFile=-?/etc/ingestd/ingestd\.env$", unit, re.M),
                "the unit does not read /etc/ingestd/ingestd.env")
    for k in set(re.findall(r"\bINGESTD_[A-Z_]+\b", unit)):
        fails.check(k in KNOWN_ENV, "ingestd.service mentions %s, not a flag variable" % k)
    with open(os.path.join(DEPLOY, "Dockerfile")) as f:
        for k in dockerfile_env(f.read()):
            fails.check(k in KNOWN_ENV, "Dockerfile ENV %s is not a flag variable" % k)
    with open(os.path.join(DEPLOY, "k8s", "deployment.yaml")) as f:
        for d in yaml.safe_load_all(f):
            for c in d["spec"]["template"]["spec"]["containers"]:
                for e in c.get("env", []):
                    fails.check(e["name"] in KNOWN_ENV,
                                "deployment.yaml env %s is not a flag variable" % e["name"])
    fails.done("environment files: %d variables in ingestd.env" % len(seen))


def runtime_packages(instr):
    """Packages the last stage's `apt-get install` names."""
    last = max(i for i, l in enumerate(instr) if l.upper().startswith("FROM "))
    pkgs = set()
    for l in instr[last:]:
        m = re.search(r"apt-get install\s+(.*?)(&&|$)", l)
        if m:
            pkgs |= {w for w in m.group(1).split() if not w.startswith("-")}
    return pkgs


def deb_package_of(path):
    """The Debian package that ships a file (merged /usr: tries both spellings), or None."""
    real = os.path.realpath(path)
    for cand in {real, path, "/usr" + real if not real.startswith("/usr/") else real[4:]}:
        p = subprocess.run(["dpkg", "-S", cand], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        if p.returncode == 0:
            return p.stdout.split(":", 1)[0].strip()
    return None


def cmd_dockerfile(binary=None):
    fails = Failures()
    with open(os.path.join(DEPLOY, "Dockerfile")) as f:
        text = f.read()
    joined = re.sub(r"\\\n", " ", text)
    instr = [l.strip() for l in joined.splitlines() if l.strip() and not l.lstrip().startswith("#")]
    froms = [l for l in instr if l.upper().startswith("FROM ")]
    fails.check(len(froms) >= 2, "not a multi-stage build (%d FROM)" % len(froms))
    for l in froms:
        fails.check(re.match(r"FROM\s+debian:12(-slim)?(\s|$)", l), "stage not on Debian 12: " + l)
    user = [l for l in instr if l.upper().startswith("USER ")]
    fails.check(user and not re.match(r"USER\s+(root|0)(:|\s|$)", user[-1]),
                "the final stage does not run as a non-root USER")
    fails.check(any(l.upper().startswith("HEALTHCHECK ") and "/healthz" in l for l in instr),
                "no HEALTHCHECK on /healthz")
    exposed = set()
    for l in instr:
        if l.upper().startswith("EXPOSE "):
            exposed |= {p.split("/")[0] for p in l.split()[1:]}
    fails.check({"7070", "8080"} <= exposed, "EXPOSE lacks 7070 or 8080: %s" % sorted(exposed))
    fails.check(any(l.startswith("COPY --from=") for l in instr), "no COPY --from the build stage")
    fails.check("UNVERIFIED" not in text and "scripts/container" in text,
                "the Dockerfile should name scripts/container, which builds and runs it")
    check_allowlist(fails)
    pkgs = runtime_packages(instr)
    # --allocator mimalloc dlopens libmimalloc.so.2 at run time: ldd cannot see it.
    fails.check("libmimalloc2.0" in pkgs, "the runtime stage lacks libmimalloc2.0")
    checked = 0
    if binary and shutil.which("ldd") and shutil.which("dpkg"):
        # Every shared library the built ingestd needs comes from a package the runtime stage
        # installs (libc6 is in the base image; sanitizer runtimes only exist in test builds).
        p = subprocess.run(["ldd", binary], stdout=subprocess.PIPE, text=True, timeout=30)
        libs = re.findall(r"^\s*(\S+) => (/\S+)", p.stdout, re.M)
        if any(re.match(r"lib(a|ub|t|l)san\.so", lib) for lib, _ in libs):
            print("NOTE: %s is a sanitizer build (its runtime pulls in more libraries); the "
                  "runtime packages are checked against the dev and release builds" % binary)
            libs = []
        for lib, path in libs:
            pkg = deb_package_of(path)
            if pkg is None or pkg == "libc6":
                continue
            checked += 1
            fails.check(pkg in pkgs, "ingestd needs %s from %s, which the runtime stage does "
                        "not install" % (lib, pkg))
    fails.done("Dockerfile structure and context allowlist; %d shared libraries of the built "
               "ingestd come from runtime packages (scripts/container builds and runs it: "
               "deploy.container)" % checked)


def check_allowlist(fails):
    """Dockerfile.dockerignore is an allowlist ("*", then "!" entries) that lets in every folder
    the top-level CMakeLists.txt adds outside BUILD_TESTING, and the CMake files."""
    with open(os.path.join(DEPLOY, "Dockerfile.dockerignore")) as f:
        lines = [l.strip() for l in f if l.strip() and not l.lstrip().startswith("#")]
    fails.check(lines and lines[0] == "*", "Dockerfile.dockerignore does not start with \"*\" "
                "(an allowlist leaves everything out first)")
    allowed = {l[1:].strip("/") for l in lines if l.startswith("!")}
    with open(os.path.join(DEPLOY, "..", "CMakeLists.txt")) as f:
        top = f.read()
    # Folders added under if(BUILD_TESTING) are not built in the image (-DBUILD_TESTING=OFF).
    top = re.sub(r"^if\(BUILD_TESTING\).*?^endif\(\)", "", top, flags=re.M | re.S)
    subdirs = re.findall(r"^\s*add_subdirectory\(\s*([^\s)]+)", top, re.M)
    fails.check(subdirs, "no add_subdirectory found in CMakeLists.txt")
    for d in subdirs + ["CMakeLists.txt", "CMakePresets.json"]:
        fails.check(d in allowed, "Dockerfile.dockerignore does not let in %s (add \"!%s\")"
                    % (d, d))


def cmd_systemd(exec_path="/bin/true", analyze="systemd-analyze"):
    analyze = need_tool(analyze, "systemd")
    fails = Failures()
    with open(os.path.join(DEPLOY, "systemd", "ingestd.service")) as f:
        unit = f.read()
    fails.check(re.search(r"^ExecStart=/usr/local/bin/ingestd\b", unit, re.M),
                "ExecStart is not /usr/local/bin/ingestd")
    # systemd-analyze verify checks that ExecStart exists and is executable: point it at the
    # built binary (or /bin/true before the server exists) in a copy of the unit.
    test_unit = re.sub(r"^ExecStart=/usr/local/bin/ingestd", "ExecStart=" + exec_path, unit,
                       flags=re.M)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ingestd.service")
        with open(path, "w") as f:
            f.write(test_unit)
        rc, out = run([analyze, "verify", path], cwd=tmp)
        # verify exits 0 on unknown keys and bad values, only warning: any output fails.
        fails.check(rc == 0 and out.strip() == "",
                    "systemd-analyze verify (exit %d):\n%s" % (rc, out))
        rc, out = run([analyze, "security", "--offline=yes", "--threshold=20", path], cwd=tmp)
        level = re.search(r"Overall exposure level for \S+: ([\d.]+)", out)
        fails.check(rc == 0, "systemd-analyze security: exposure above 2.0 (exit %d):\n%s"
                    % (rc, out[-3000:]))
    # Readiness: ingestd sends READY=1, STOPPING=1 and WATCHDOG=1 itself (server/notify.c).
    for key in ("Type=notify", "NotifyAccess=main", "WatchdogSec="):
        fails.check(re.search(r"^" + re.escape(key), unit, re.M), "unit lacks " + key)
    for key in ("ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes", "LimitNOFILE=",
                "MemoryMax=", "Restart=on-failure", "EnvironmentFile=", "DynamicUser=yes"):
        fails.check(re.search(r"^" + re.escape(key), unit, re.M), "unit lacks " + key)
    fails.done("systemd unit verified (ExecStart=%s), exposure %s"
               % (exec_path, level.group(1) if level else "?"))


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    cmd, args = argv[1], argv[2:]
    handlers = {"promconfig": cmd_promconfig, "rules": cmd_rules, "ruletest": cmd_ruletest, "dashboard": cmd_dashboard, "k8s": cmd_k8s,
                "env": cmd_env, "dockerfile": cmd_dockerfile, "systemd": cmd_systemd}
    if cmd not in handlers:
        print(__doc__)
        return 2
    handlers[cmd](*args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
