#!/usr/bin/env python3
"""gen_dashboard.py - writes deploy/grafana/ingestd.json (stdout): one panel per metric family of
DESIGN.md's contract plus the server's extras. Edit this, then regenerate:
    python3 deploy/grafana/gen_dashboard.py > deploy/grafana/ingestd.json
ctest deploy.dashboard fails when the JSON and this script disagree."""
import json
SEL = '{job="ingestd", instance=~"$instance"}'
def s(name, extra=''):
    if extra:
        return name + '{job="ingestd", instance=~"$instance", ' + extra + '}'
    return name + SEL
RI = '[$__rate_interval]'
panels = []
pid = [0]
y = [0]
x = [0]
def row(title):
    if x[0] != 0:
        y[0] += 8; x[0] = 0
    pid[0] += 1
    panels.append({"type": "row", "id": pid[0], "title": title, "collapsed": False,
                   "gridPos": {"h": 1, "w": 24, "x": 0, "y": y[0]}, "panels": []})
    y[0] += 1
def panel(title, desc, targets, unit='short', ptype='timeseries', w=8, h=8, extra=None):
    pid[0] += 1
    if x[0] + w > 24:
        x[0] = 0; y[0] += h
    p = {"type": ptype, "id": pid[0], "title": title, "description": desc,
         "datasource": {"type": "prometheus", "uid": "${datasource}"},
         "gridPos": {"h": h, "w": w, "x": x[0], "y": y[0]},
         "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
         "options": {},
         "targets": []}
    for i, (expr, legend) in enumerate(targets):
        t = {"refId": chr(ord('A') + i), "expr": expr, "legendFormat": legend,
             "datasource": {"type": "prometheus", "uid": "${datasource}"}}
        if ptype == 'table':
            t["format"] = "table"; t["instant"] = True
        if ptype == 'heatmap':
            t["format"] = "heatmap"
        p["targets"].append(t)
    if ptype == 'timeseries':
        p["options"] = {"legend": {"displayMode": "list", "placement": "bottom"},
                        "tooltip": {"mode": "multi", "sort": "desc"}}
    if extra:
        p.update(extra)
    panels.append(p)
    x[0] += w
    if x[0] >= 24:
        x[0] = 0; y[0] += h

row("Throughput")
panel("Events accepted / s", "ingestd_events_accepted_total: events that passed validation and reached the sink.",
      [(f'sum by (instance) (rate({s("ingestd_events_accepted_total")}{RI}))', '{{instance}}')], 'ops')
panel("Events rejected / s by reason", "ingestd_events_rejected_total by reason: parse, not_object, no_type, too_large, truncated, slow_line, over_budget. A producer sending bad events shows as one reason rising.",
      [(f'sum by (reason) (rate({s("ingestd_events_rejected_total")}{RI}))', '{{reason}}')], 'ops')
panel("Events / s by type (top 10)", "ingestd_events_by_type_total: per event type, bounded table; overflow counted as _other.",
      [(f'topk(10, sum by (type) (rate({s("ingestd_events_by_type_total")}{RI})))', '{{type}}')], 'ops')
panel("Bytes received / s by transport", "ingestd_bytes_received_total by transport (tcp, http).",
      [(f'sum by (transport) (rate({s("ingestd_bytes_received_total")}{RI}))', '{{transport}}')], 'Bps')
panel("Connections active", "ingestd_connections_active: open ingest connections (TCP and HTTP). Compare with --max-connections.",
      [(f'sum by (instance) ({s("ingestd_connections_active")})', '{{instance}}')], 'short')
panel("Connections opened and refused / s", "ingestd_connections_total (accepted connections) and ingestd_connections_refused_total by reason (global: --max-connections with nothing idle to close; peer: --max-connections-per-peer; allow: --ingest-allow). Any refusal deserves a look.",
      [(f'sum by (instance) (rate({s("ingestd_connections_total")}{RI}))', 'opened {{instance}}'),
       (f'sum by (instance, reason) (rate({s("ingestd_connections_refused_total")}{RI}))', 'refused {{reason}} {{instance}}')], 'ops')

panel("HTTP responses / s by code", "ingestd_http_responses_total{code} on the HTTP ingest port. 503: shedding (sink behind or memory limit), with Retry-After; 413/431: limits; 400/415: malformed requests.",
      [(f'sum by (code) (rate({s("ingestd_http_responses_total")}{RI}))', '{{code}}')], 'reqps')
panel("Connections timed out / s", "ingestd_connections_timed_out_total: closed by --idle-timeout, --header-timeout or --body-timeout.",
      [(f'sum by (instance) (rate({s("ingestd_connections_timed_out_total")}{RI}))', '{{instance}}')], 'ops')

row("Sink durability and JetStream")
panel("Events made durable / s", "ingestd_sink_events_durable_total: events the sink made durable (file: written, or synced with --file-sync; JetStream: stored and acknowledged). ingestd_sink_events_lost_total: given up at shutdown.",
      [(f'sum by (instance) (rate({s("ingestd_sink_events_durable_total")}{RI}))', 'durable {{instance}}'),
       (f'sum by (instance) (rate({s("ingestd_sink_events_lost_total")}{RI}))', 'lost {{instance}}')], 'ops')
panel("Written, not yet durable", "ingestd_sink_undurable_bytes: written to the file or published to JetStream, waiting for the sync or the stream's ack. Counted against each worker's sink bound, so it pauses reads when it grows.",
      [(f'sum by (instance) ({s("ingestd_sink_undurable_bytes")})', '{{instance}}')], 'bytes')
panel("JetStream connection state", "ingestd_nats_connection_state: 1 connecting, 2 connected, 3 reconnecting, 4 closed (0: not a nats sink). Reconnects: ingestd_nats_reconnects_total.",
      [(f'max by (instance) ({s("ingestd_nats_connection_state")})', '{{instance}}')], 'short')
panel("JetStream messages / s", "ingestd_nats_messages_stored_total (acked), _resent_total (error acks and ack timeouts, sent again with the same Nats-Msg-Id) and ingestd_nats_publish_errors_total (not connected, reconnect buffer full).",
      [(f'sum by (instance) (rate({s("ingestd_nats_messages_stored_total")}{RI}))', 'stored {{instance}}'),
       (f'sum by (instance) (rate({s("ingestd_nats_messages_resent_total")}{RI}))', 'resent {{instance}}'),
       (f'sum by (instance) (rate({s("ingestd_nats_publish_errors_total")}{RI}))', 'publish errors {{instance}}')], 'ops')
panel("JetStream in flight", "ingestd_nats_inflight_messages: published, not yet acknowledged (bounded by --nats-max-inflight).",
      [(f'sum by (instance) ({s("ingestd_nats_inflight_messages")})', '{{instance}}')], 'short')
panel("JetStream ack latency p50 / p99", "ingestd_nats_ack_latency_seconds: from a message's first publish to the stream's ack (resends included).",
      [(f'histogram_quantile(0.5, sum by (le) (rate({s("ingestd_nats_ack_latency_seconds_bucket")}{RI})))', 'p50'),
       (f'histogram_quantile(0.99, sum by (le) (rate({s("ingestd_nats_ack_latency_seconds_bucket")}{RI})))', 'p99')], 's')

row("Memory (the Go article's memstats)")
panel("Live, allocator and resident memory", "ingestd_memstats_alloc_bytes (live bytes through the counting layer), ingestd_memstats_sys_bytes (what the allocator holds from the OS), process_resident_memory_bytes, and --memory-limit (ingestd_memory_limit_bytes, when set), which live bytes are compared with. Sys bytes that rise and stay high after the load stops and trims run mean memory is being held; a wide gap between sys and live bytes means the allocator keeps freed memory.",
      [(f'sum by (instance) ({s("ingestd_memstats_alloc_bytes")})', 'live {{instance}}'),
       (f'sum by (instance) ({s("ingestd_memstats_sys_bytes")})', 'sys {{instance}}'),
       (f'sum by (instance) ({s("process_resident_memory_bytes")})', 'rss {{instance}}'),
       (f'sum by (instance) ({s("ingestd_memory_limit_bytes")}) > 0', 'memory limit {{instance}}')], 'bytes', w=12)
panel("Allocation rate", "rate of ingestd_memstats_alloc_bytes_total: bytes allocated per second. High allocation rate with flat live bytes is churn (CPU spent in the allocator); in pooled steady state it should be near zero.",
      [(f'sum by (instance) (rate({s("ingestd_memstats_alloc_bytes_total")}{RI}))', '{{instance}}')], 'Bps', w=12)
panel("mallocs and frees / s", "ingestd_memstats_mallocs_total and ingestd_memstats_frees_total: calls through the counting layer. mallocs above frees for long means live memory grows.",
      [(f'sum by (instance) (rate({s("ingestd_memstats_mallocs_total")}{RI}))', 'mallocs {{instance}}'),
       (f'sum by (instance) (rate({s("ingestd_memstats_frees_total")}{RI}))', 'frees {{instance}}')], 'ops', w=12)
panel("Heap allocations per event", "mallocs per accepted or rejected event. Pooled mode in steady state: under 0.001. Naive mode: dozens.",
      [(f'sum by (instance) (rate({s("ingestd_memstats_mallocs_total")}{RI})) / (sum by (instance) (rate({s("ingestd_events_accepted_total")}{RI})) + sum by (instance) (rate({s("ingestd_events_rejected_total")}{RI})))', '{{instance}}')], 'short', w=12)

panel("Reading paused", "ingestd_read_pauses_total (times a worker paused reading: sink behind or memory limit) and ingestd_memory_limit_exceeded (1 while live bytes are above --memory-limit and reading is paused). Paused for long with flat throughput means the limit is too low for the connections holding blocks.",
      [(f'sum by (instance) (rate({s("ingestd_read_pauses_total")}{RI}))', 'pauses/s {{instance}}'),
       (f'max by (instance) ({s("ingestd_memory_limit_exceeded")})', 'above limit {{instance}}')], 'short', w=12)
panel("Sink", "ingestd_sink_events_written_total (file sink writes), ingestd_sink_pending_bytes (appended, not yet written), ingestd_sink_write_errors_total and ingestd_sink_stalls_total (backpressure). Pending bytes that keep growing, or stalls, mean the sink is behind and reading pauses.",
      [(f'sum by (instance) (rate({s("ingestd_sink_events_written_total")}{RI}))', 'written/s {{instance}}'),
       (f'sum by (instance) ({s("ingestd_sink_pending_bytes")})', 'pending bytes {{instance}}'),
       (f'sum by (instance) (rate({s("ingestd_sink_write_errors_total")}{RI}))', 'errors/s {{instance}}'),
       (f'sum by (instance) (rate({s("ingestd_sink_stalls_total")}{RI}))', 'stalls/s {{instance}}')], 'short', w=12)

row("Pool")
panel("Pool gets and misses / s", "ingestd_pool_gets_total and ingestd_pool_misses_total (a miss had to allocate). A warm pool misses almost never; steady misses mean --pool-retain or --trim-interval is too low for the load.",
      [(f'sum by (instance) (rate({s("ingestd_pool_gets_total")}{RI}))', 'gets {{instance}}'),
       (f'sum by (instance) (rate({s("ingestd_pool_misses_total")}{RI}))', 'misses {{instance}}')], 'ops')
panel("Pool miss ratio", "misses / gets. Alert IngestdPoolMissRateHigh fires above 5 % for 30 minutes.",
      [(f'sum by (instance) (rate({s("ingestd_pool_misses_total")}{RI})) / sum by (instance) (rate({s("ingestd_pool_gets_total")}{RI}))', '{{instance}}')], 'percentunit')
panel("Pool blocks by state", "ingestd_pool_blocks{state}: in_use blocks hold data now; idle blocks wait in the pool for reuse. Idle falls after trims as --pool-retain allows; in_use that stays up while idle means something holds blocks.",
      [(f'sum by (state) ({s("ingestd_pool_blocks")})', '{{state}}')], 'short')
panel("Pool trims and released blocks / s", "ingestd_pool_trims_total (trim cycles) and ingestd_pool_released_total (blocks given back to the allocator at a trim).",
      [(f'sum by (instance) (rate({s("ingestd_pool_trims_total")}{RI}))', 'trims {{instance}}'),
       (f'sum by (instance) (rate({s("ingestd_pool_released_total")}{RI}))', 'released {{instance}}')], 'ops')
panel("Oversize events / s", "ingestd_pool_oversize_total: events over one 4096-byte block, assembled on the counted path.",
      [(f'sum by (instance) (rate({s("ingestd_pool_oversize_total")}{RI}))', '{{instance}}')], 'ops')
panel("Trim duration p50 / p99", "ingestd_pool_trim_duration_seconds, the 'GC pause' of this program. Alert IngestdPoolTrimSlow fires when p99 exceeds 10 ms for 15 minutes.",
      [(f'histogram_quantile(0.5, sum by (le) (rate({s("ingestd_pool_trim_duration_seconds_bucket")}{RI})))', 'p50'),
       (f'histogram_quantile(0.99, sum by (le) (rate({s("ingestd_pool_trim_duration_seconds_bucket")}{RI})))', 'p99'),
       (f'sum(rate({s("ingestd_pool_trim_duration_seconds_sum")}{RI})) / sum(rate({s("ingestd_pool_trim_duration_seconds_count")}{RI}))', 'mean')], 's')
panel("Trim duration distribution", "Trims per bucket of ingestd_pool_trim_duration_seconds.",
      [(f'sum by (le) (increase({s("ingestd_pool_trim_duration_seconds_bucket")}{RI}))', '{{le}}')], 's', ptype='heatmap', w=24,
      extra={"options": {"calculate": False, "yAxis": {"unit": "s"}, "cellGap": 1}})

row("Process")
panel("CPU", "process_cpu_seconds_total: cores used.",
      [(f'sum by (instance) (rate({s("process_cpu_seconds_total")}{RI}))', '{{instance}}')], 'percentunit')
panel("CPU per event", "CPU seconds per event (accepted + rejected).",
      [(f'sum by (instance) (rate({s("process_cpu_seconds_total")}{RI})) / (sum by (instance) (rate({s("ingestd_events_accepted_total")}{RI})) + sum by (instance) (rate({s("ingestd_events_rejected_total")}{RI})))', '{{instance}}')], 's')
panel("Virtual memory", "process_virtual_memory_bytes: address space; large and mostly irrelevant, useful when mmap use changes.",
      [(f'sum by (instance) ({s("process_virtual_memory_bytes")})', '{{instance}}')], 'bytes')
panel("Open file descriptors", "process_open_fds against process_max_fds (LimitNOFILE). Connections, listeners and the sink each use one.",
      [(f'sum by (instance) ({s("process_open_fds")})', 'open {{instance}}'),
       (f'sum by (instance) ({s("process_max_fds")})', 'max {{instance}}')], 'short')
panel("Uptime", "time since process_start_time_seconds. A reset means a restart.",
      [(f'time() - {s("process_start_time_seconds")}', '{{instance}}')], 's', ptype='stat')
panel("Scrape health", "up: 1 when Prometheus scraped the target. IngestdScrapeDown fires after 2 minutes at 0.",
      [(f'up{SEL}', '{{instance}}')], 'short', ptype='stat')
panel("Build", "ingestd_build_info{version, allocator, pool}: what each instance runs; ingestd_allocator_verified: 1 when a probe allocation at start came from the allocator --allocator names; ingestd_pool_enabled: the pooling lever now (PUT /debug/config can change it after start, build_info's pool label cannot follow).",
      [(f'ingestd_build_info{SEL}', ''),
       (f'ingestd_allocator_verified{SEL}', ''),
       (f'ingestd_pool_enabled{SEL}', '')], 'short', ptype='table', w=24, h=6)

dash = {
  "title": "ingestd",
  "uid": "ingestd",
  "description": "ingestd: throughput, rejects, memory (the Go article's memstats mapped to ingestd), pool and process. One panel per metric family of DESIGN.md's contract.",
  "tags": ["ingestd"],
  "timezone": "browser",
  "schemaVersion": 37,
  "version": 1,
  "editable": True,
  "graphTooltip": 1,
  "refresh": "30s",
  "time": {"from": "now-3h", "to": "now"},
  "links": [],
  "annotations": {"list": []},
  "templating": {"list": [
     {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
      "current": {}, "hide": 0, "refresh": 1},
     {"name": "instance", "label": "instance", "type": "query",
      "datasource": {"type": "prometheus", "uid": "${datasource}"},
      "query": {"query": 'label_values(ingestd_build_info{job="ingestd"}, instance)', "refId": "instance"},
      "definition": 'label_values(ingestd_build_info{job="ingestd"}, instance)',
      "refresh": 2, "multi": True, "includeAll": True, "current": {}, "sort": 1, "hide": 0}
  ]},
  "panels": panels,
}
print(json.dumps(dash, indent=2))
