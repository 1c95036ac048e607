"""deploylib.py - shared by the deploy.* tests: the metrics contract, the flag list, readers for
the files in deploy/, and a runner that starts a real ingestd on loopback."""

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request

SKIP = 77  # ctest SKIP_RETURN_CODE for every deploy.* test

# DESIGN.md, "Metrics contract": family -> type. Fixed names; dashboards and rules use these.
CONTRACT = {
    "ingestd_events_accepted_total": "counter",
    "ingestd_events_rejected_total": "counter",
    "ingestd_events_by_type_total": "counter",
    "ingestd_bytes_received_total": "counter",
    "ingestd_connections_active": "gauge",
    "ingestd_connections_total": "counter",
    "ingestd_connections_refused_total": "counter",
    "ingestd_memstats_alloc_bytes": "gauge",
    "ingestd_memstats_alloc_bytes_total": "counter",
    "ingestd_memstats_mallocs_total": "counter",
    "ingestd_memstats_frees_total": "counter",
    "ingestd_memstats_sys_bytes": "gauge",
    "ingestd_pool_gets_total": "counter",
    "ingestd_pool_misses_total": "counter",
    "ingestd_pool_released_total": "counter",
    "ingestd_pool_trims_total": "counter",
    "ingestd_pool_oversize_total": "counter",
    "ingestd_pool_blocks": "gauge",
    "ingestd_pool_trim_duration_seconds": "histogram",
    "ingestd_build_info": "gauge",
    "process_cpu_seconds_total": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_virtual_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "process_max_fds": "gauge",
    "process_start_time_seconds": "gauge",
}
# Families ingestd exports beyond the contract that deploy/ uses (server/, not DESIGN.md): the
# live tests check that they exist, so a rename in the server shows up here.
EXTRA = {
    "ingestd_connections_timed_out_total": "counter",
    "ingestd_read_pauses_total": "counter",
    "ingestd_memory_limit_exceeded": "gauge",
    "ingestd_memory_limit_bytes": "gauge",
    "ingestd_sink_events_written_total": "counter",
    "ingestd_sink_pending_bytes": "gauge",
    "ingestd_sink_write_errors_total": "counter",
    "ingestd_sink_stalls_total": "counter",
    "ingestd_http_responses_total": "counter",
    "ingestd_allocator_verified": "gauge",
    "ingestd_pool_enabled": "gauge",
    "ingestd_sink_events_durable_total": "counter",
    "ingestd_sink_events_lost_total": "counter",
    "ingestd_sink_undurable_bytes": "gauge",
    "ingestd_nats_connection_state": "gauge",
    "ingestd_nats_messages_resent_total": "counter",
    "ingestd_nats_inflight_messages": "gauge",
    "ingestd_nats_ack_latency_seconds": "histogram",
    "ingestd_nats_messages_stored_total": "counter",
    "ingestd_nats_publish_errors_total": "counter",
}
KNOWN = dict(CONTRACT, **EXTRA)
# Series Prometheus itself adds, which queries may use besides the contract.
SYNTHETIC = {"up"}

# Flags of DESIGN.md, issue 3 and server/config.c; each is also INGESTD_<FLAG upper-cased,
# '-' -> '_'>. The live test deploy.env_files_live checks the ones deploy/ uses against --help.
FLAGS = [
    "tcp", "http", "admin", "admin-allow", "workers", "pool", "allocator", "pool-retain",
    "trim-interval", "max-event-bytes", "max-body-bytes", "max-header-bytes", "max-connections",
    "idle-timeout", "header-timeout", "body-timeout", "sink", "memory-limit", "shutdown-timeout",
    "log-format", "memtrace", "alloc-profile-rate",
    "file-sync", "nats-stream", "nats-create-stream", "nats-replicas", "nats-creds",
    "nats-token-file", "nats-tls", "nats-ca", "nats-batch-events", "nats-batch-bytes", "nats-ack-timeout",
    "nats-max-inflight", "nats-reconnect-buffer", "instance-id",
    # issue 11: hostile clients
    "partial-budget", "line-timeout", "max-connections-per-peer", "ingest-allow",
    "ingest-tokens-file", "max-gzip-ratio",
]


def env_name(flag):
    return "INGESTD_" + flag.upper().replace("-", "_")


KNOWN_ENV = {env_name(f) for f in FLAGS}

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(ROOT, "deploy")


def skip(msg):
    print("SKIP: " + msg, flush=True)
    sys.exit(SKIP)


def need_yaml():
    try:
        import yaml  # noqa: F401
    except ImportError:
        skip("python3 has no yaml module: apt-get install python3-yaml")
    import yaml
    return yaml


class Failures:
    """Collects every problem so one run names them all; exit(1) if any."""

    def __init__(self):
        self.items = []

    def check(self, cond, msg):
        if not cond:
            self.items.append(msg)
        return cond

    def done(self, what):
        if self.items:
            for m in self.items:
                print("FAIL: " + m, flush=True)
            sys.exit(1)
        print("ok: " + what, flush=True)
        sys.exit(0)


# ---- metric names in PromQL -------------------------------------------------------------------

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_NAME = re.compile(r"\b((?:ingestd|process)_[a-z0-9_]+|up)\b(?=\s*[{\[)\s,]|\s*$)")


def names_in_expr(expr):
    """Metric names an expression queries: ingestd_*, process_* and up (label values and
    label names inside braces are not names)."""
    bare = _STRINGS.sub('""', expr)
    # drop label matcher bodies: {job="", instance=~""}
    bare = re.sub(r"\{[^}]*\}", "{}", bare)
    # `by (...)`, `on (...)`, `without (...)`, `group_left (...)` list label names, not metrics
    bare = re.sub(r"\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    return set(_NAME.findall(bare))


def family_of(name, families):
    """Maps a queried series name to its family (histogram _bucket/_sum/_count to the base)."""
    if name in families:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and families.get(name[: -len(suffix)]) == "histogram":
            return name[: -len(suffix)]
    return None


def dashboard_exprs(dash):
    """(where, expr) for every query of a Grafana dashboard: panel targets, rows' nested panels,
    and templating variables."""
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if "expr" in t:
                    out.append(("panel %r %s" % (p.get("title"), t.get("refId")), t["expr"]))
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if v.get("type") == "query" and isinstance(q, str):
            out.append(("variable %r" % v.get("name"), q))
    return out


def grafana_to_promql(expr):
    """Substitutes Grafana's variables so the expression parses as plain PromQL."""
    expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "1m")
    expr = re.sub(r"\$\{?instance\}?", ".*", expr)
    m = re.match(r"^label_values\((.*),\s*\w+\)$", expr.strip())
    if m:
        expr = m.group(1)
    return expr


def rule_exprs(rules):
    return [("rule %r" % (r.get("alert") or r.get("record")), r["expr"])
            for g in rules["groups"] for r in g["rules"]]


# ---- environment files ------------------------------------------------------------------------

def read_env_file(path):
    """KEY=VALUE lines of a systemd EnvironmentFile (comments and blanks skipped)."""
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            out.append((n, s))
    return out


# ---- a live ingestd ---------------------------------------------------------------------------

LISTENING = re.compile(r"listening tcp=(\S+):(\d+) http=(\S+):(\d+) admin=(\S+):(\d+)")


def parse_listening(text):
    """((host, port) tcp, http, admin) from the start line, in text or JSON log format."""
    for line in text.splitlines():
        m = LISTENING.search(line)
        if m:
            return tuple((m.group(i), int(m.group(i + 1))) for i in (1, 3, 5))
        if line.startswith("{"):
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("msg") == "listening":
                out = []
                for k in ("tcp", "http", "admin"):
                    host, _, port = str(rec.get(k, "")).rpartition(":")
                    if not port.isdigit():
                        break
                    out.append((host.strip("[]"), int(port)))
                if len(out) == 3:
                    return tuple(out)
    return None


class Ingestd:
    """Starts ingestd with loopback port-0 listeners, learns its ports from the `listening`
    line on stderr (text or JSON log format), and stops it with SIGTERM."""

    def __init__(self, binary, extra_args=(), env=None, start_timeout=60):
        self.binary = binary
        args = [binary, "--tcp", "127.0.0.1:0", "--http", "127.0.0.1:0",
                "--admin", "127.0.0.1:0", "--workers", "1"]
        args += list(extra_args)
        # Only the flag variables of the caller's environment are dropped: others, such as
        # INGESTD_POOL_FREE_ON_PUT from the asan test preset, pass through.
        e = {k: v for k, v in os.environ.items() if k not in KNOWN_ENV}
        e.update(env or {})
        self.stderr_text = ""
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=e)
        deadline = time.monotonic() + start_timeout
        buf = b""
        m = None
        while time.monotonic() < deadline and m is None:
            r, _, _ = select.select([self.proc.stderr], [], [], 0.2)
            if r:
                chunk = os.read(self.proc.stderr.fileno(), 65536)
                if not chunk:
                    break
                buf += chunk
                # only complete lines: a JSON line cut mid-way must not count
                done = buf[: buf.rfind(b"\n") + 1]
                m = parse_listening(done.decode("utf-8", "replace"))
            elif self.proc.poll() is not None:
                break
        self.stderr_text = buf.decode("utf-8", "replace")
        if m is None:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("ingestd printed no `listening tcp=.. http=.. admin=..` line; "
                               "exit=%s stderr:\n%s" % (self.proc.returncode, self.stderr_text))
        self.tcp, self.http, self.admin = m

    def _drain(self):
        while True:
            r, _, _ = select.select([self.proc.stderr], [], [], 0)
            if not r:
                return
            chunk = os.read(self.proc.stderr.fileno(), 65536)
            if not chunk:
                return
            self.stderr_text += chunk.decode("utf-8", "replace")

    def get(self, path, port=None, timeout=10):
        """(status, body) of GET path on the HTTP port (or another port)."""
        self._drain()
        host, p = self.http if port is None else ("127.0.0.1", port)
        url = "http://%s:%d%s" % (host, p, path)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return r.status, r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")

    def send_tcp(self, lines):
        """Writes NDJSON lines over one TCP connection and closes it."""
        data = "".join(line + "\n" for line in lines).encode()
        with socket.create_connection(self.tcp, timeout=10) as s:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(10)
            try:
                while s.recv(4096):
                    pass
            except OSError:
                pass
        self._drain()

    def stop(self, timeout=60):
        """SIGTERM; returns the exit code (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._drain()
            time.sleep(0.05)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self._drain()
            return None
        rest = self.proc.stderr.read()
        self.stderr_text += rest.decode("utf-8", "replace")
        return self.proc.returncode


def parse_exposition(text):
    """(families {name: type}, sample names set) of a Prometheus text exposition."""
    families, samples = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) >= 4:
                families[parts[2]] = parts[3]
        elif line and not line.startswith("#"):
            samples.add(re.split(r"[{\s]", line, 1)[0])
    return families, samples


def free_port():
    """A loopback port that was free a moment ago (for servers that cannot report the port
    they bound; the caller retries on a clash)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sample_events(n):
    """n small valid NDJSON events of a few types."""
    types = ["click", "view", "purchase", "signup"]
    return ['{"type":"%s","seq":%d,"user":"u%d","ok":true}' % (types[i % 4], i, i % 97)
            for i in range(n)]
