#!/usr/bin/env bash
# tests/nats/bench_nats.sh - what the JetStream sink costs: one ingestd worker over TCP into a
# fresh single-node JetStream (nats-server -js, store in a temp dir), against the null sink, for
# several --nats-batch-events; then the ack latency at a fixed open-loop rate. Prints a table for
# BENCHMARKS.md. Not a test (no ctest entry): figures depend on the machine.
#
#   cmake --preset release && cmake --build --preset release --target ingestd loadgen
#   tests/nats/bench_nats.sh [EVENTS] [RATE] [REPEAT]   (defaults 2000000, 50000, 3)
#
# Each sink runs REPEAT times, interleaved (null file nats... null file nats...); the table shows
# medians, so a busy machine's noise shows up as spread, not as a wrong ratio.
# ingestd is pinned to CPU 0, loadgen and nats-server to CPU 1 (taskset), when there are 2+ CPUs.
# CPU is utime+stime from /proc (ingestd per thread, nats-server per process), from just before
# the load (warm-up included) to when the stream has acknowledged everything
# (ingestd_sink_undurable_bytes and pending back to 0), per event sent. ingestd's is split into
# the worker thread (ingestd-w0: reads, framing, judging, copying into the sink's chunks) and
# the rest (the sink writer thread ingestd-sink, cnats's threads, the control thread).
# The sink's cost shows twice: as the rest's CPU, and as the difference of the totals against
# the null sink, which also moves with the load's rate (nats-server shares loadgen's CPU here,
# so the worker reads fewer events per read than under the null sink).
#
# BEFORE=PATH/TO/ingestd adds a row "before" (that binary, default flags, nats sink) to every
# round, for a before/after comparison in one interleaved run.
set -euo pipefail
cd "$(dirname "$0")/../.."
EVENTS=${1:-2000000}
RATE=${2:-50000}
REPEAT=${3:-3}
ING=${ING:-build/release/server/ingestd}
BEFORE=${BEFORE:-}
LG=build/release/loadgen/loadgen
TICK=$(getconf CLK_TCK)
PIN0="" PIN1=""
if [ "$(nproc)" -ge 2 ]; then PIN0="taskset -c 0" PIN1="taskset -c 1"; fi
WORK=$(mktemp -d /tmp/ingestd-bench-nats.XXXXXX)
NPID="" IPID=""
cleanup() {
    [ -n "$IPID" ] && kill "$IPID" 2>/dev/null || true
    [ -n "$NPID" ] && kill "$NPID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
# "TID COMM TICKS" for every thread of ingestd (comm has no spaces: ingestd, ingestd-w0, ...).
thread_ticks() {
    local t
    for t in /proc/"$IPID"/task/*; do
        echo "${t##*/} $(cat "$t/comm") $(awk '{print $14+$15}' "$t/stat" 2>/dev/null || echo 0)"
    done
}
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1==n {print $2}'; }

start_nats() {
    rm -rf "$WORK/js"
    NPORT=$(free_port)
    $PIN1 nats-server -a 127.0.0.1 -p "$NPORT" -js -sd "$WORK/js" -l "$WORK/nats.log" &
    NPID=$!
    for _ in $(seq 200); do (echo >/dev/tcp/127.0.0.1/"$NPORT") 2>/dev/null && return; sleep 0.05; done
    echo "nats-server did not start" >&2; exit 1
}

start_ingestd() { # $@: sink flags; $BIN: the binary (default $ING)
    : >"$WORK/ing.log"
    $PIN0 "${BIN:-$ING}" --workers 1 --tcp 127.0.0.1:0 --http off --admin 127.0.0.1:0 "$@" 2>"$WORK/ing.log" &
    IPID=$!
    for _ in $(seq 200); do grep -q ' listening ' "$WORK/ing.log" && break; sleep 0.05; done
    TPORT=$(grep -o 'tcp=127.0.0.1:[0-9]*' "$WORK/ing.log" | head -1 | cut -d: -f2)
    APORT=$(grep -o 'admin=127.0.0.1:[0-9]*' "$WORK/ing.log" | head -1 | cut -d: -f2)
}

stop_all() {
    kill -TERM "$IPID"; wait "$IPID" || echo "ingestd exited $?" >&2; IPID=""
    if [ -n "$NPID" ]; then kill "$NPID"; wait "$NPID" 2>/dev/null || true; NPID=""; fi
}

wait_durable() {
    for _ in $(seq 600); do
        local u p
        u=$(metric "$APORT" ingestd_sink_undurable_bytes); p=$(metric "$APORT" ingestd_sink_pending_bytes)
        [ "${u:-0}" = 0 ] && [ "${p:-0}" = 0 ] && return
        sleep 0.05
    done
}

run() { # $1: label, rest: sink flags; $NATS=1 when a nats-server is used
    local label=$1; shift
    [ "${NATS:-0}" = 1 ] && start_nats
    local sinkflags=("$@")
    [ "${NATS:-0}" = 1 ] && sinkflags=(--sink "nats://127.0.0.1:$NPORT/bench.events" --nats-create-stream on "$@")
    start_ingestd "${sinkflags[@]}"
    local n0=0
    [ -n "$NPID" ] && n0=$(cpu_ticks "$NPID")
    thread_ticks >"$WORK/t0"
    $PIN1 "$LG" run --target "tcp://127.0.0.1:$TPORT" --events "$EVENTS" --mix 100,0,0 --warmup 1s \
        --metrics "http://127.0.0.1:$APORT/metrics" --json "$WORK/o.json" --no-progress >/dev/null
    wait_durable
    local ncpu=0 msgs=0 resent=0
    thread_ticks >"$WORK/t1"
    if [ -n "$NPID" ]; then ncpu=$(( $(cpu_ticks "$NPID") - n0 )); fi
    msgs=$(metric "$APORT" ingestd_nats_messages_published_total); resent=$(metric "$APORT" ingestd_nats_messages_resent_total)
    python3 - "$WORK/o.json" "$label" "$ncpu" "$TICK" "${msgs:-0}" "${resent:-0}" "$WORK/t0" \
        "$WORK/t1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); label = sys.argv[2]
tick = int(sys.argv[4])
ncpu = int(sys.argv[3]) / tick
n = d["sent_events"] + d["warmup_events"]
def threads(path):  # tid -> (comm, ticks)
    return {f[0]: (f[1], int(f[2])) for f in (l.split() for l in open(path))}
t0, t1 = threads(sys.argv[7]), threads(sys.argv[8])
worker = rest = 0
for tid, (comm, ticks) in t1.items():
    used = ticks - t0.get(tid, (comm, 0))[1]
    if comm.startswith("ingestd-w"):
        worker += used
    else:
        rest += used
us = lambda ticks: ticks / tick * 1e6 / n
print("%s\t%.0f\t%.3f\t%.3f\t%.3f\t%s\t%s" % (label, d["events_per_s"], us(worker + rest),
      us(worker), ncpu * 1e6 / n if ncpu else 0.0, sys.argv[5], sys.argv[6]))
PY
    stop_all
}

ONLY=${ONLY:-}   # e.g. ONLY="null nats100 natsdefault" runs those only
want() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }
for _ in $(seq "$REPEAT"); do
    want null && NATS=0 run null --sink null
    want file && NATS=0 run file --sink "file:$WORK/events.ndjson"
    rm -f "$WORK/events.ndjson"
    want natsdefault && NATS=1 run "nats default" --nats-batch-events 0
    want nats64k && NATS=1 run "nats 64KiB" --nats-batch-bytes 64KiB
    want nats100 && NATS=1 run "nats batch 100" --nats-batch-events 100
    want nats10 && NATS=1 run "nats batch 10" --nats-batch-events 10
    want nats1 && NATS=1 run "nats batch 1" --nats-batch-events 1
    if [ -n "$BEFORE" ]; then NATS=1 BIN=$BEFORE run "before" --nats-batch-events 0; fi
done >"$WORK/results"
python3 - "$WORK/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    rows.setdefault(f[0], []).append([float(x) for x in f[1:]])
print("%-14s %9s %21s %7s %7s %7s %9s %9s %6s" % ("sink", "events/s", "ingestd us/ev (range)",
      "added", "worker", "rest", "nats-srv", "messages", "resent"))
base = None
for label, runs in rows.items():
    med = lambda i: statistics.median(r[i] for r in runs)
    cpu = [r[1] for r in runs]
    base = med(1) if base is None else base
    print("%-14s %9.0f %7.3f (%.3f-%.3f) %+7.3f %7.3f %7.3f %9.3f %9.0f %6.0f" % (
        label, med(0), med(1), min(cpu), max(cpu), med(1) - base, med(2), med(1) - med(2),
        med(3), med(4), med(5)))
PY
# Ack latency at a fixed open-loop rate (default batch): the histogram ingestd exports, read as
# percentiles (bucket upper bounds; coarse by design).
start_nats
start_ingestd --sink "nats://127.0.0.1:$NPORT/bench.events" --nats-create-stream on --nats-batch-events 0
$PIN1 "$LG" run --target "tcp://127.0.0.1:$TPORT" --rate "$RATE" --duration 10s --mix 100,0,0 \
    --metrics "http://127.0.0.1:$APORT/metrics" --json "$WORK/o.json" --no-progress >/dev/null
wait_durable
curl -s "http://127.0.0.1:$APORT/metrics" | python3 -c '
import sys, re
b = []
for line in sys.stdin:
    m = re.match(r"ingestd_nats_ack_latency_seconds_bucket\{le=\"([^\"]+)\"\} (\d+)", line)
    if m: b.append((float(m.group(1)), int(m.group(2))))
total = b[-1][1]
out = []
for q in (0.5, 0.9, 0.99, 0.999):
    le = next(le for le, c in b if c >= q * total)
    out.append("p%g <= %gms" % (q * 100, le * 1000))
print("ack latency at '"$RATE"' events/s, default batch, %d messages: %s" % (total, ", ".join(out)))'
stop_all
