/* server/expo.c - one snapshot, rendered as /metrics from one table, as /debug/vars, and the
 * probes (expo.h). */
#include "server/expo.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "mem/allocprof.h"

#ifndef INGESTD_VERSION
#define INGESTD_VERSION "0.0.0"
#endif

static const double trim_bounds[] = {1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4,
                                     1e-3, 5e-3, 1e-2, 5e-2, 0.1};
#define NTRIM_BOUNDS (sizeof(trim_bounds) / sizeof(trim_bounds[0]))

void srv_expo_trim_hist_init(metrics_hist_t *h)
{
    (void)metrics_hist_init(h, trim_bounds, NTRIM_BOUNDS);
}

int64_t srv_expo_active_conns(srv_shared_t *sh)
{
    int64_t n = 0;
    for (unsigned i = 0; i < sh->nworkers; i++) {
        n += metrics_gauge_get(&sh->stats[i].conns_active);
    }
    return n;
}

/* One count per type over all workers' tables (types.h), every table's overflow in one
 * ING_TYPE_OTHER entry. Returns a new array (mem_free) of *n entries, or NULL. */
static srv_vars_type_t *gather_types(srv_shared_t *sh, size_t *n)
{
    srv_vars_type_t *t = mem_calloc(ING_TYPES_MERGE_MAX(sh->nworkers), sizeof(*t));
    const ing_types_t **tables = mem_calloc(sh->nworkers, sizeof(*tables));

    *n = 0;
    if (t == NULL || tables == NULL) {
        mem_free(t);
        mem_free(tables);
        return NULL;
    }
    for (unsigned i = 0; i < sh->nworkers; i++) {
        tables[i] = &sh->types[i];
    }
    *n = ing_types_merge(tables, sh->nworkers, t);
    mem_free(tables);
    return t;
}

int srv_expo_snapshot(srv_shared_t *sh, srv_snapshot_t *s)
{
    memset(s, 0, sizeof(*s));
    srv_expo_trim_hist_init(&s->trim);
    for (unsigned i = 0; i < sh->nworkers; i++) {
        const srv_worker_stats_t *st = &sh->stats[i];
        s->accepted += metrics_counter_get(&st->accepted);
        for (int r = 1; r < ING_VERDICT_COUNT; r++) {
            s->rejected[r] += metrics_counter_get(&st->rejected[r]);
        }
        s->bytes_tcp += metrics_counter_get(&st->bytes_tcp);
        s->bytes_http += metrics_counter_get(&st->bytes_http);
        s->conns_total += metrics_counter_get(&st->conns_total);
        s->conns_refused_global += metrics_counter_get(&st->conns_refused);
        s->conns_refused_peer += metrics_counter_get(&st->conns_refused_peer);
        s->conns_refused_allow += metrics_counter_get(&st->conns_refused_allow);
        s->conns_evicted += metrics_counter_get(&st->conns_evicted);
        s->auth_denied += metrics_counter_get(&st->auth_denied);
        s->conns_timed_out += metrics_counter_get(&st->idle_closed);
        s->conns_timed_out += metrics_counter_get(&st->slow_closed);
        s->read_pauses += metrics_counter_get(&st->read_pauses);
        s->read_nobufs += metrics_counter_get(&st->read_nobufs);
        s->resume_failures += metrics_counter_get(&st->resume_failures);
        s->reply_drops += metrics_counter_get(&st->reply_drops);
        s->ack_timeouts += metrics_counter_get(&st->ack_timeouts);
        s->sink_failures += metrics_counter_get(&st->sink_failures);
        s->oversize += metrics_counter_get(&st->oversize);
        s->conns_active += metrics_gauge_get(&st->conns_active);
        for (int k = 0; k < SRV_HTTP_CODES; k++) {
            s->http_responses[k] += metrics_counter_get(&st->http_responses[k]);
        }
        metrics_hist_merge(&s->trim, &st->trim);
    }
    s->conns_refused = s->conns_refused_global + s->conns_refused_peer + s->conns_refused_allow;
    s->partial_bytes = atomic_load_explicit(&sh->partial_held, memory_order_relaxed);
    s->partial_budget = sh->partial_budget;
    mem_stats(&s->mem);
    s->mem_sys_bytes = mem_sys_bytes();
    pool_stats(sh->pool, &s->pool);
    if (sh->sink != NULL) {
        sink_stats(sh->sink, &s->sink);
    }
    s->mem_over = (uint64_t)atomic_load(&sh->mem_over);
    s->memory_limit = atomic_load(&sh->memory_limit);
    s->pooled = (uint64_t)atomic_load(&sh->pooled);
    s->parse_scan = atomic_load(&sh->parse) == SRV_PARSE_SCAN;
    s->parse_tree = !s->parse_scan;
    s->workers = sh->nworkers;
    s->allocator_verified = (uint64_t)sh->allocator_verified;
    s->types = gather_types(sh, &s->ntypes);
    return s->types != NULL ? 0 : -ENOMEM;
}

void srv_expo_release(srv_snapshot_t *s)
{
    mem_free(s->types);
    s->types = NULL;
}

/* ---- /metrics: one row per sample, in exposition order ---- */

typedef enum {
    ROW_U64,      /* a uint64_t field */
    ROW_I64,      /* an int64_t field */
    ROW_REJECTED, /* ingestd_events_rejected_total, one sample per verdict */
    ROW_TYPES,    /* ingestd_events_by_type_total */
    ROW_HTTP,     /* ingestd_http_responses_total, one sample per code */
    ROW_TRIM,     /* the trim-duration histogram */
    ROW_BUILD,    /* ingestd_build_info */
    ROW_NATS_ACK, /* the JetStream ack-latency histogram (sink_nats_stats_t) */
} row_kind_t;

typedef struct {
    const char *name;
    const char *type; /* NULL: another sample of the previous row's family */
    const char *help;
    const char *label;
    row_kind_t kind;
    size_t off;
} row_t;

#define U(n, t, h, l, f)                                                                           \
    {                                                                                              \
        n, t, h, l, ROW_U64, offsetof(srv_snapshot_t, f)                                           \
    }
#define I(n, t, h, l, f)                                                                           \
    {                                                                                              \
        n, t, h, l, ROW_I64, offsetof(srv_snapshot_t, f)                                           \
    }
#define MORE_U(n, l, f)                                                                            \
    {                                                                                              \
        n, NULL, NULL, l, ROW_U64, offsetof(srv_snapshot_t, f)                                     \
    }
#define MORE_I(n, l, f)                                                                            \
    {                                                                                              \
        n, NULL, NULL, l, ROW_I64, offsetof(srv_snapshot_t, f)                                     \
    }
#define SPECIAL(n, t, h, k)                                                                        \
    {                                                                                              \
        n, t, h, NULL, k, 0                                                                        \
    }

static const row_t rows[] = {
    U("ingestd_events_accepted_total", "counter",
      "Events that passed validation and reached the sink.", NULL, accepted),
    SPECIAL("ingestd_events_rejected_total", "counter", "Events rejected, by reason.",
            ROW_REJECTED),
    SPECIAL("ingestd_events_by_type_total", "counter",
            "Accepted events by their \"type\" (bounded per worker; overflow as _other).",
            ROW_TYPES),
    U("ingestd_bytes_received_total", "counter", "Bytes read from ingest clients, by transport.",
      "transport=\"tcp\"", bytes_tcp),
    MORE_U("ingestd_bytes_received_total", "transport=\"http\"", bytes_http),
    I("ingestd_connections_active", "gauge", "Open ingest connections.", NULL, conns_active),
    U("ingestd_connections_total", "counter", "Ingest connections accepted.", NULL, conns_total),
    U("ingestd_connections_refused_total", "counter",
      "Connections closed at once (HTTP: after a 503 or 403), by reason: global (--max-connections"
      " open, none idle to close), peer (--max-connections-per-peer), allow (--ingest-allow).",
      "reason=\"global\"", conns_refused_global),
    MORE_U("ingestd_connections_refused_total", "reason=\"peer\"", conns_refused_peer),
    MORE_U("ingestd_connections_refused_total", "reason=\"allow\"", conns_refused_allow),
    U("ingestd_connections_evicted_total", "counter",
      "Idle connections closed to make room for a new one at --max-connections.", NULL,
      conns_evicted),
    U("ingestd_http_auth_denied_total", "counter",
      "HTTP ingest requests refused with 401 (--ingest-tokens-file).", NULL, auth_denied),
    U("ingestd_partial_line_bytes", "gauge",
      "Bytes held in unfinished lines (TCP lines, HTTP body carry buffers) over all workers.", NULL,
      partial_bytes),
    U("ingestd_partial_budget_bytes", "gauge",
      "The partial-line budget in force (--partial-budget; 0: off).", NULL, partial_budget),
    U("ingestd_connections_timed_out_total", "counter",
      "Connections closed by the idle, header or body timeout, or for a dropped slow line.", NULL,
      conns_timed_out),
    SPECIAL("ingestd_http_responses_total", "counter",
            "Responses on the HTTP ingest port, by status code (other: the rest).", ROW_HTTP),
    U("ingestd_read_pauses_total", "counter",
      "Times a worker paused reading (sink behind or memory limit).", NULL, read_pauses),
    U("ingestd_read_nobufs_total", "counter",
      "Reads not taken because no pool block could be had (the connection paused).", NULL,
      read_nobufs),
    U("ingestd_read_resume_failures_total", "counter",
      "Connections closed because reading could not be resumed.", NULL, resume_failures),
    U("ingestd_http_reply_drops_total", "counter",
      "HTTP replies that could not be queued for want of memory (the connection closed).", NULL,
      reply_drops),
    U("ingestd_http_ack_timeouts_total", "counter",
      "--ack durable: requests answered 503 because their events were not durable in time or "
      "were given up.",
      NULL, ack_timeouts),
    I("ingestd_memstats_alloc_bytes", "gauge", "Live bytes allocated through the counting layer.",
      NULL, mem.alloc_bytes),
    U("ingestd_memstats_alloc_bytes_total", "counter",
      "Bytes ever allocated through the counting layer.", NULL, mem.alloc_bytes_total),
    U("ingestd_memstats_mallocs_total", "counter", "Allocations through the counting layer.", NULL,
      mem.mallocs),
    U("ingestd_memstats_frees_total", "counter", "Frees through the counting layer.", NULL,
      mem.frees),
    U("ingestd_memstats_sys_bytes", "gauge", "Bytes the allocator holds from the OS.", NULL,
      mem_sys_bytes),
    U("ingestd_pool_gets_total", "counter", "Blocks taken from the pool.", NULL, pool.gets),
    U("ingestd_pool_misses_total", "counter", "Pool gets that had to allocate a block.", NULL,
      pool.misses),
    U("ingestd_pool_released_total", "counter", "Blocks given back to the allocator.", NULL,
      pool.released),
    U("ingestd_pool_trims_total", "counter", "Pool trim cycles.", NULL, pool.trims),
    U("ingestd_pool_oversize_total", "counter",
      "Events larger than one block (TCP: assembled on the heap; HTTP: carried; or too large).",
      NULL, oversize),
    I("ingestd_pool_blocks", "gauge", "Pool blocks by state.", "state=\"in_use\"", pool.in_use),
    MORE_I("ingestd_pool_blocks", "state=\"idle\"", pool.idle),
    SPECIAL("ingestd_pool_trim_duration_seconds", "histogram",
            "Time each pool trim cycle took (per worker).", ROW_TRIM),
    U("ingestd_sink_events_written_total", "counter", "Events the file sink has written.", NULL,
      sink.events_written),
    U("ingestd_sink_bytes_written_total", "counter", "Bytes the file sink has written.", NULL,
      sink.bytes_written),
    U("ingestd_sink_pending_bytes", "gauge", "Bytes appended to the sink and not yet written.",
      NULL, sink.pending_bytes),
    U("ingestd_sink_write_errors_total", "counter", "Failed sink writes.", NULL, sink.write_errors),
    U("ingestd_sink_reopens_total", "counter",
      "Sink reopens (SIGHUP, a bad descriptor, or the file unlinked or replaced).", NULL,
      sink.reopens),
    U("ingestd_sink_reopens_unlinked_total", "counter",
      "Sink reopens because the file was unlinked or replaced without SIGHUP.", NULL,
      sink.reopens_unlinked),
    U("ingestd_sink_stalls_total", "counter",
      "Times a worker's sink writer became full (backpressure).", NULL, sink.stalls),
    U("ingestd_sink_events_durable_total", "counter",
      "Events the sink made durable (file: written, or synced with --file-sync; nats: stored).",
      NULL, sink.events_durable),
    U("ingestd_sink_events_lost_total", "counter",
      "Accepted events given up without becoming durable (shutdown timeouts, write errors).", NULL,
      sink.events_lost),
    U("ingestd_sink_undurable_bytes", "gauge", "Bytes written and not yet durable.", NULL,
      sink.undurable_bytes),
    U("ingestd_nats_messages_published_total", "counter",
      "JetStream messages published (first sends).", NULL, sink.nats.msgs_published),
    U("ingestd_nats_events_published_total", "counter", "Events in published messages.", NULL,
      sink.nats.events_published),
    U("ingestd_nats_messages_stored_total", "counter",
      "JetStream messages the stream acknowledged (stored).", NULL, sink.nats.msgs_stored),
    U("ingestd_nats_events_stored_total", "counter", "Events in acknowledged messages.", NULL,
      sink.nats.events_stored),
    U("ingestd_nats_messages_duplicate_total", "counter",
      "Acks saying duplicate: a resend of a message already stored.", NULL,
      sink.nats.msgs_duplicate),
    U("ingestd_nats_messages_resent_total", "counter",
      "Messages sent again after an error ack or an ack timeout.", NULL, sink.nats.msgs_resent),
    U("ingestd_nats_messages_failed_total", "counter",
      "Error acks and ack timeouts (each followed by a resend).", NULL, sink.nats.msgs_failed),
    U("ingestd_nats_publish_errors_total", "counter",
      "Publish calls that failed (not connected, reconnect buffer full).", NULL,
      sink.nats.publish_errors),
    U("ingestd_nats_inflight_messages", "gauge", "Messages published, not yet acknowledged.", NULL,
      sink.nats.inflight_msgs),
    U("ingestd_nats_inflight_bytes", "gauge", "Bytes of messages not yet acknowledged.", NULL,
      sink.nats.inflight_bytes),
    U("ingestd_nats_disconnects_total", "counter", "Connections to NATS lost.", NULL,
      sink.nats.disconnects),
    U("ingestd_nats_reconnects_total", "counter", "Reconnections to NATS.", NULL,
      sink.nats.reconnects),
    U("ingestd_nats_connection_state", "gauge",
      "0 none (not a nats sink), 1 connecting, 2 connected, 3 reconnecting, 4 closed.", NULL,
      sink.nats.state),
    SPECIAL("ingestd_nats_ack_latency_seconds", "histogram",
            "From a message's first publish to the stream's ack.", ROW_NATS_ACK),
    U("ingestd_sink_append_failures_total", "counter",
      "Valid events the sink could not keep (no memory), counted as too_large.", NULL,
      sink_failures),
    U("ingestd_memory_limit_exceeded", "gauge",
      "1 while live bytes are above --memory-limit and reading is paused.", NULL, mem_over),
    U("ingestd_memory_limit_bytes", "gauge", "--memory-limit (0: off).", NULL, memory_limit),
    U("ingestd_pool_enabled", "gauge",
      "1 while workers pool blocks, 0 in naive mode (live; PUT /debug/config).", NULL, pooled),
    U("ingestd_parse_strategy", "gauge",
      "1 for the strategy judging events (--parse, live: PUT /debug/config), 0 for the other.",
      "strategy=\"scan\"", parse_scan),
    MORE_U("ingestd_parse_strategy", "strategy=\"tree\"", parse_tree),
    U("ingestd_workers", "gauge", "Worker threads.", NULL, workers),
    U("ingestd_allocator_verified", "gauge",
      "1 when a probe allocation came from the allocator --allocator names.", NULL,
      allocator_verified),
    SPECIAL("ingestd_build_info", "gauge",
            "Build and start-up memory mode (pool: --pool; live mode: ingestd_pool_enabled); "
            "always 1.",
            ROW_BUILD),
};

static void write_special(srv_shared_t *sh, const srv_snapshot_t *s, const row_t *r,
                          metrics_writer_t *w)
{
    char label[2 * ING_TYPE_MAX + 128];
    char esc[2 * ING_TYPE_MAX + 8];

    switch (r->kind) {
    case ROW_REJECTED:
        for (int v = 1; v < ING_VERDICT_COUNT; v++) {
            snprintf(label, sizeof(label), "reason=\"%s\"", ing_verdict_name((ing_verdict_t)v));
            metrics_sample_u64(w, r->name, label, s->rejected[v]);
        }
        break;
    case ROW_TYPES:
        if (s->types == NULL) {
            w->oom = 1;
            break;
        }
        for (size_t x = 0; x < s->ntypes; x++) {
            metrics_label_escape(esc, sizeof(esc), s->types[x].type);
            snprintf(label, sizeof(label), "type=\"%s\"", esc);
            metrics_sample_u64(w, r->name, label, s->types[x].count);
        }
        break;
    case ROW_HTTP:
        for (int k = 0; k < SRV_HTTP_CODES; k++) {
            if (srv_http_codes[k] != 0) {
                snprintf(label, sizeof(label), "code=\"%d\"", srv_http_codes[k]);
            } else {
                snprintf(label, sizeof(label), "code=\"other\"");
            }
            metrics_sample_u64(w, r->name, label, s->http_responses[k]);
        }
        break;
    case ROW_BUILD:
        snprintf(label, sizeof(label), "version=\"%s\",allocator=\"%s\",pool=\"%s\"",
                 INGESTD_VERSION, mem_allocator_name(mem_allocator()),
                 sh->cfg->pool ? "on" : "off");
        metrics_sample_u64(w, r->name, label, 1);
        break;
    default:
        break;
    }
}

/* The sink's ack-latency buckets are cumulative already, with microsecond bounds. */
static void write_nats_ack(metrics_writer_t *w, const row_t *r, const sink_nats_stats_t *n)
{
    char name[96];
    char label[64];
    char le[48];
    metrics_family(w, r->name, r->type, r->help);
    snprintf(name, sizeof(name), "%s_bucket", r->name);
    for (int i = 0; i < SINK_ACK_BUCKETS; i++) {
        double b = sink_ack_latency_bounds_us[i];
        if (isinf(b)) {
            snprintf(label, sizeof(label), "le=\"+Inf\"");
        } else {
            metrics_format_double(le, sizeof(le), b / 1e6);
            snprintf(label, sizeof(label), "le=\"%s\"", le);
        }
        metrics_sample_u64(w, name, label, n->ack_latency_buckets[i]);
    }
    snprintf(name, sizeof(name), "%s_sum", r->name);
    metrics_sample_f64(w, name, NULL, n->ack_latency_sum_seconds);
    snprintf(name, sizeof(name), "%s_count", r->name);
    metrics_sample_u64(w, name, NULL, n->ack_latency_count);
}

void srv_expo_metrics(srv_shared_t *sh, metrics_writer_t *w)
{
    srv_snapshot_t s;

    (void)srv_expo_snapshot(sh, &s); /* without types, ROW_TYPES marks the writer oom */
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const row_t *r = &rows[i];
        const char *p = (const char *)&s + r->off;
        if (r->kind == ROW_TRIM) {
            metrics_hist_write(w, r->name, r->help, &s.trim);
            continue;
        }
        if (r->kind == ROW_NATS_ACK) {
            write_nats_ack(w, r, &s.sink.nats);
            continue;
        }
        if (r->type != NULL) {
            metrics_family(w, r->name, r->type, r->help);
        }
        if (r->kind == ROW_U64) {
            uint64_t v;
            memcpy(&v, p, sizeof(v));
            metrics_sample_u64(w, r->name, r->label, v);
        } else if (r->kind == ROW_I64) {
            int64_t v;
            memcpy(&v, p, sizeof(v));
            metrics_sample_i64(w, r->name, r->label, v);
        } else {
            write_special(sh, &s, r, w);
        }
    }
    srv_expo_release(&s);
    metrics_process_t pr;
    if (metrics_process_read(&pr) == 0) {
        metrics_process_write(w, &pr);
    }
}

static uint64_t nonneg(int64_t v)
{
    return v > 0 ? (uint64_t)v : 0;
}

void srv_expo_vars(srv_shared_t *sh, const srv_snapshot_t *s, srv_vars_t *v)
{
    metrics_process_t pr;

    memset(v, 0, sizeof(*v));
    v->version = INGESTD_VERSION;
    v->allocator = mem_allocator_name(mem_allocator());
    v->workers = sh->nworkers;
    v->uptime_seconds = (double)(uv_hrtime() - sh->start_ns) / 1e9;
    v->events_accepted = s->accepted;
    memcpy(v->events_rejected, s->rejected, sizeof(v->events_rejected));
    v->types = s->types;
    v->ntypes = s->types != NULL ? s->ntypes : 0;
    v->bytes_received_tcp = s->bytes_tcp;
    v->bytes_received_http = s->bytes_http;
    v->connections_active = nonneg(s->conns_active);
    v->connections_total = s->conns_total;
    v->connections_refused = s->conns_refused;
    v->mem_alloc_bytes = nonneg(s->mem.alloc_bytes);
    v->mem_alloc_bytes_total = s->mem.alloc_bytes_total;
    v->mem_mallocs = s->mem.mallocs;
    v->mem_frees = s->mem.frees;
    v->mem_sys_bytes = s->mem_sys_bytes;
    v->rss_bytes = metrics_process_read(&pr) == 0 ? pr.resident_memory_bytes : 0;
    v->pool_gets = s->pool.gets;
    v->pool_misses = s->pool.misses;
    v->pool_released = s->pool.released;
    v->pool_trims = s->pool.trims;
    v->pool_oversize = s->oversize;
    v->pool_blocks_in_use = nonneg(s->pool.in_use);
    v->pool_blocks_idle = nonneg(s->pool.idle);
    v->admin_requests = atomic_load(&sh->admin_requests);
    v->admin_denied = atomic_load(&sh->admin_denied);
    allocprof_stats(&v->allocprof);
}

int srv_expo_get(srv_shared_t *sh, const char *path, srv_http_reply_t *reply,
                 metrics_writer_t *scratch)
{
    if (strcmp(path, "/metrics") == 0) {
        if (reply == NULL) {
            return 0;
        }
        scratch->len = 0;
        scratch->oom = 0;
        srv_expo_metrics(sh, scratch);
        if (scratch->oom) {
            reply->status = 500;
            reply->body = "out of memory\n";
            reply->body_len = strlen(reply->body);
            return 0;
        }
        reply->content_type = "text/plain; version=0.0.4; charset=utf-8";
        reply->body = scratch->buf;
        reply->body_len = scratch->len;
        return 0;
    }
    if (strcmp(path, "/healthz") == 0) {
        if (reply != NULL) {
            reply->body = "ok\n";
            reply->body_len = 3;
        }
        return 0;
    }
    if (strcmp(path, "/readyz") == 0) {
        if (reply != NULL) {
            /* Ready: every worker serves and the sink can make events durable (nats: connected
             * and the stream checked), as sink_ready promises /readyz. */
            int ready = srv_shared_workers_live(sh) && (sh->sink == NULL || sink_ready(sh->sink));
            reply->status = ready ? 200 : 503;
            reply->body = ready ? "ready\n" : "not ready\n";
            reply->body_len = strlen(reply->body);
        }
        return 0;
    }
    return 404;
}
