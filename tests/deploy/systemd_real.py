#!/usr/bin/env python3
"""systemd_real.py - deploy/systemd/ingestd.service under a real systemd (ctest
deploy.systemd_real). The machines that build ingestd do not run systemd as PID 1, so the test
boots one: systemd as PID 1 of a privileged podman container on the debian:12-slim base that
scripts/container makes, with the built ingestd, the unit and the env file mounted where the
unit's install notes put them. Then, with the unit exactly as shipped (hardening included):

  - `systemctl start` returns (Type=notify: after READY=1) and /readyz answers 200 at once;
    StatusText is ingestd's "listening ..." line and WatchdogUSec is the unit's WatchdogSec
  - an event over TCP is counted in /metrics
  - with a drop-in WatchdogSec=4s, systemd records pings (WatchdogTimestamp moves), and once
    ingestd is frozen (SIGSTOP) it kills it for the watchdog and Restart= starts it again
  - `systemctl stop` drains: the result is success and ingestd's shutdown line is in the journal

  systemd_real.py INGESTD [PODMAN]

Exit 0 pass, 1 fail, 77 skip (not root, no podman)."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # run from the source tree: leave no __pycache__ there

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploylib import DEPLOY, ROOT, Failures, skip  # noqa: E402
from deploy_checks import runtime_packages  # noqa: E402

IMAGE = "localhost/ingestd-systemd-test:latest"
BASE = "docker.io/library/debian:12-slim"
# The same flags as scripts/container, for the same reasons (runc: crun refuses this host's mixed
# cgroups; ulimits: podman asks for more than a sandbox may grant).
PODMAN_FLAGS = ["--runtime", "runc"]
ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]


def run(cmd, timeout=300, check=False):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        print("FAIL: %s (exit %d):\n%s" % (" ".join(cmd), p.returncode, p.stdout[-4000:]))
        sys.exit(1)
    return p.returncode, p.stdout


def image_packages():
    """The runtime stage's packages (so the libraries match the image we ship) plus systemd."""
    with open(os.path.join(DEPLOY, "Dockerfile")) as f:
        joined = re.sub(r"\\\n", " ", f.read())
    instr = [l.strip() for l in joined.splitlines() if l.strip() and not l.startswith("#")]
    return sorted(runtime_packages(instr) | {"systemd"})


def wait_for(what, probe, timeout_s=60):
    """Calls probe() every 0.2 s until it returns a true value (returned) or timeout_s passes
    (returns None). A bound on waiting, not a timing assertion."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        v = probe()
        if v:
            return v
        time.sleep(0.2)
    print("waited %d s for %s" % (timeout_s, what))
    return None


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    binary = os.path.abspath(argv[1])
    podman = shutil.which(argv[2] if len(argv) > 2 else "podman")
    if os.geteuid() != 0:
        skip("needs root (a privileged podman container runs systemd as PID 1)")
    if podman is None:
        skip("podman not found: apt-get install podman runc (scripts/test installs it)")
    fails = Failures()
    # The base image: made by scripts/container (mmdebstrap) when podman does not have it yet.
    run([os.path.join(ROOT, "scripts", "container"), "--base-only"], timeout=900, check=True)
    with tempfile.TemporaryDirectory() as ctx:
        with open(os.path.join(ctx, "Containerfile"), "w") as f:
            f.write("FROM %s\n"
                    "RUN apt-get update && apt-get install -y --no-install-recommends %s"
                    " && rm -rf /var/lib/apt/lists/*\n"
                    "STOPSIGNAL SIGRTMIN+3\n"
                    'CMD ["/lib/systemd/systemd"]\n' % (BASE, " ".join(image_packages())))
        run([podman] + PODMAN_FLAGS + ["build", "--pull=never", "--format", "docker"] + ULIMITS
            + ["-t", IMAGE, ctx], timeout=900, check=True)

    name = "ingestd-systemd-%d" % os.getpid()
    sysd = os.path.join(DEPLOY, "systemd")
    # --network none: loopback only, inside the container; every probe runs there.
    run([podman] + PODMAN_FLAGS + ["run", "-d", "--name", name, "--privileged",
                                   "--systemd=always", "--network", "none"] + ULIMITS +
        ["-v", binary + ":/usr/local/bin/ingestd:ro",
         "-v", os.path.join(sysd, "ingestd.service") + ":/etc/systemd/system/ingestd.service:ro",
         "-v", os.path.join(sysd, "ingestd.env") + ":/etc/ingestd/ingestd.env:ro", IMAGE],
        check=True)

    def sh(script, timeout=120):
        return run([podman, "exec", name, "bash", "-c", script], timeout=timeout)

    def prop(p):
        return sh("systemctl show ingestd -p %s --value" % p)[1].strip()

    try:
        state = wait_for("systemd to boot", lambda: sh("systemctl is-system-running")[1].strip()
                         in ("running", "degraded"))
        if not state:
            fails.check(False, "systemd did not boot: " + sh("systemctl is-system-running")[1])
            fails.done("")
        # The unit ships closed: its bearer tokens come from a systemd credential
        # (LoadCredential=/etc/ingestd/ingest-tokens). systemd hands a DynamicUser service its
        # credentials through an ACL on /run/credentials, and this sandbox's /run has no ACL
        # support, so the service gets EACCES there (checked by hand: the directory is not even
        # listable for the dynamic user). The one change to the unit as shipped is therefore a
        # drop-in that passes the same tokens from a readable file with --ingest-tokens-file;
        # the hardening, Type=notify and the watchdog are untouched.
        rc, out = sh("(umask 077; head -c 32 /dev/urandom | base64 | tr -d '=' "
                     "> /etc/ingestd/ingest-tokens) && install -m 0644 /etc/ingestd/ingest-tokens "
                     "/etc/ingestd/ingest-tokens-test && mkdir -p "
                     "/etc/systemd/system/ingestd.service.d && printf '[Service]\\nLoadCredential="
                     "\\nExecStart=\\nExecStart=/usr/local/bin/ingestd --ingest-tokens-file "
                     "/etc/ingestd/ingest-tokens-test\\n' > "
                     "/etc/systemd/system/ingestd.service.d/tokens.conf && systemctl daemon-reload")
        fails.check(rc == 0, "tokens and the drop-in: " + out)
        # Type=notify: start returns once READY=1 came; the listeners answer right then.
        rc, out = sh("systemctl start ingestd && curl -s -o /dev/null -w '%{http_code}' "
                     "http://127.0.0.1:8080/readyz")
        if not fails.check(rc == 0 and out.strip() == "200",
                           "systemctl start, then /readyz at once: exit %d, %r\n%s"
                           % (rc, out, sh("journalctl -u ingestd --no-pager | tail -20")[1])):
            fails.done("")  # the rest needs a started service (the finally clause cleans up)
        fails.check(prop("Type") == "notify", "Type is %r" % prop("Type"))
        status = prop("StatusText")
        fails.check(status.startswith("listening tcp=0.0.0.0:7070 http=0.0.0.0:8080"),
                    "StatusText (from READY's STATUS=) is %r" % status)
        fails.check(prop("WatchdogUSec") == "30s", "WatchdogUSec is %r" % prop("WatchdogUSec"))
        rc, out = sh("printf '{\"type\":\"a\"}\\n' >/dev/tcp/127.0.0.1/7070")
        fails.check(rc == 0, "TCP event: " + out)
        got = wait_for("the event in /metrics", lambda: re.search(
            r"^ingestd_events_accepted_total 1$",
            sh("curl -s http://127.0.0.1:8080/metrics")[1], re.M))
        fails.check(got, "ingestd_events_accepted_total did not reach 1")

        # The watchdog, shortened by a drop-in: pings arrive, and a frozen ingestd is restarted.
        sh("mkdir -p /run/systemd/system/ingestd.service.d && printf '[Service]\\n"
           "WatchdogSec=4s\\n' >/run/systemd/system/ingestd.service.d/watchdog.conf && "
           "systemctl daemon-reload && systemctl restart ingestd")
        first = prop("WatchdogTimestampMonotonic")
        moved = wait_for("a WATCHDOG=1", lambda: prop("WatchdogTimestampMonotonic") != first)
        fails.check(moved, "systemd recorded no watchdog ping (WatchdogTimestamp stayed %s)"
                    % first)
        pid = prop("MainPID")
        sh("kill -STOP %s" % pid)
        restarted = wait_for("the watchdog restart", lambda: prop("NRestarts") not in ("", "0")
                             and prop("ActiveState") == "active")
        journal = sh("journalctl -u ingestd --no-pager")[1]
        fails.check(restarted and "Watchdog timeout" in journal,
                    "no watchdog kill and restart of a frozen ingestd (NRestarts %s):\n%s"
                    % (prop("NRestarts"), journal[-3000:]))
        sh("rm -r /run/systemd/system/ingestd.service.d && systemctl daemon-reload")

        # Stop: SIGTERM, drain, exit 0.
        rc, out = sh("systemctl stop ingestd")
        fails.check(rc == 0, "systemctl stop: " + out)
        fails.check(prop("Result") == "success" and prop("ActiveState") == "inactive",
                    "after stop: Result %s, ActiveState %s" % (prop("Result"),
                                                              prop("ActiveState")))
        journal = sh("journalctl -u ingestd --no-pager")[1]
        fails.check(re.search(r"info shutdown events_accepted=\d+ .*sink_error=none", journal),
                    "no shutdown line of the drain in the journal:\n" + journal[-3000:])
        version = sh("dpkg-query -W -f '${Version}' systemd")[1].strip()
    finally:
        run([podman, "rm", "-f", "-t", "0", name])
    fails.done("ingestd.service under systemd %s: ready, status, watchdog ping and restart, "
               "clean stop" % version)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
