/* server/worker.c - one ingest loop: SO_REUSEPORT listeners, TCP NDJSON and HTTP connections,
 * the per-event path (frame -> judge -> count -> sink), pausing (policy.h), held replies for
 * --ack durable, idle sweeps, and the worker's side of pool trims and live mode switches. Its
 * defences against hostile clients (budget, deadline, admission, tokens) are in guard.c. */
#include "server/worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ingest/judge.h"
#include "mem/mem.h"
#include "server/auth.h"
#include "server/conn.h"
#include "server/expo.h"
#include "server/guard.h"
#include "server/log.h"
#include "server/peers.h"
#include "server/policy.h"

static srv_ratelimit_t rl_io;
static srv_ratelimit_t rl_sink;

const int srv_http_codes[SRV_HTTP_CODES] = {200, 400, 401, 403, 404, 405, 408,
                                            413, 415, 431, 501, 503, 0};

static srv_conn_t *conn_of(base_link_t *l)
{
    return srv_worker_conn(l);
}

/* ---- the per-event path ---- */

static ing_verdict_t ingest(srv_worker_t *w, const char *line, size_t len, const char **detail)
{
    ing_judgement_t jm;
    ing_verdict_t v = ing_judge_line(&w->judge, line, len, detail != NULL, &jm);

    if (v != ING_ACCEPTED) {
        metrics_counter_add(&w->st->rejected[v], 1);
        if (detail != NULL) {
            *detail = jm.detail;
        }
        return v;
    }
    int r = sink_append(w->sink_w, line, len);
    if (r < 0) {
        /* The sink could not keep the event (no memory): it is not accepted. */
        metrics_counter_add(&w->st->sink_failures, 1);
        metrics_counter_add(&w->st->rejected[ING_REJECT_TOO_LARGE], 1);
        srv_log_error_limited(&rl_sink, "sink append failed", "error", strerror(-r), NULL);
        if (detail != NULL) {
            *detail = "no memory to keep the event";
        }
        return ING_REJECT_TOO_LARGE;
    }
    if (r == 1) {
        w->pause.sink_full = 1;
    }
    metrics_counter_add(&w->st->accepted, 1);
    ing_types_count(w->types, jm.type, jm.type_len);
    return ING_ACCEPTED;
}

static void tcp_on_line(void *ctx, const char *line, size_t len)
{
    srv_conn_t *c = ctx;
    ingest(c->owner, line, len, NULL);
}

static void on_reject(void *ctx, ing_verdict_t reason)
{
    srv_conn_t *c = ctx;
    srv_worker_t *w = c->owner;
    metrics_counter_add(&w->st->rejected[reason], 1);
}

static const ing_frame_ops_t frame_ops = {tcp_on_line, on_reject, srv_guard_tcp_may_grow};

/* ---- pausing (policy.h) ---- */

/* A TCP connection holding bytes of an unfinished line (memory only reading releases). */
static int holds_line(const srv_conn_t *c)
{
    return c->kind == SRV_CONN_TCP && c->state != SRV_CONN_CLOSING && ing_frame_pending(&c->frame);
}

static int may_read(const srv_worker_t *w, const srv_conn_t *c)
{
    if (w->pause.draining || c->state != SRV_CONN_OPEN) {
        return 0;
    }
    if (c->kind == SRV_CONN_HTTP) {
        return c->out_len <= SRV_CONN_OUT_PAUSE_BYTES;
    }
    return srv_policy_tcp_may_read(&w->pause, holds_line(c), c->probe);
}

static void resume(srv_worker_t *w, srv_conn_t *c)
{
    if (!c->reading && may_read(w, c)) {
        (void)srv_conn_read_start(c); /* a failure is counted and closes c (on_error) */
    }
}

static void resume_reads(srv_worker_t *w)
{
    base_link_t *next;
    w->nobufs = 0;
    for (base_link_t *l = w->conns.head; l != NULL; l = next) {
        next = l->next;
        resume(w, conn_of(l));
    }
}

/* Pauses every TCP connection that may not read now. */
static void pause_tcp_reads(srv_worker_t *w)
{
    int paused = 0;
    for (base_link_t *l = w->conns.head; l != NULL; l = l->next) {
        srv_conn_t *c = conn_of(l);
        if (c->kind == SRV_CONN_TCP && c->reading && !may_read(w, c)) {
            paused |= srv_conn_read_stop(c);
        }
    }
    if (paused) {
        metrics_counter_add(&w->st->read_pauses, 1);
    }
}

/* conn.c asks how far this worker's events are durable (held replies, --ack durable). */
static uint64_t conn_durable(srv_conn_t *c)
{
    srv_worker_t *w = c->owner;
    return w->settled ? w->durable : sink_writer_durable(w->sink_w);
}

/* ... and whether some of a reply's events were given up (its 200 must never be written). */
static int conn_lost(srv_conn_t *c, uint64_t first, uint64_t last)
{
    srv_worker_t *w = c->owner;
    return w->sink_w != NULL && sink_writer_lost_any(w->sink_w, first, last);
}

/* The sink made more of this worker's events durable: write the replies that waited for them. */
static void on_sink_durable(void *ctx)
{
    srv_worker_t *w = ctx;
    base_link_t *next;
    /* Only the connections that hold replies: a durable advance comes per batch written, and
     * walking every connection each time would cost O(connections) on that path. */
    for (base_link_t *l = w->holding.head; l != NULL; l = next) {
        srv_conn_t *c = BASE_CONTAINER(l, srv_conn_t, held_link);
        next = l->next;
        srv_conn_flush(c);
        if (srv_conn_hold_expired(c, uv_now(&w->loop), w->cfg->ack_timeout_ms, 0)) {
            metrics_counter_add(&w->st->ack_timeouts, 1);
            srv_log_error_limited(&rl_io, "--ack durable: the sink gave up events, answered 503",
                                  NULL);
        }
        if (srv_conn_held(c) == 0) {
            base_list_unlink(&w->holding, &c->held_link);
            c->held_listed = 0;
        }
    }
}

static void on_sink_writable(void *ctx)
{
    srv_worker_t *w = ctx;
    w->pause.sink_full = sink_writer_full(w->sink_w);
    if (!w->pause.sink_full && !w->pause.draining) {
        resume_reads(w); /* over the memory limit: only those the policy allows */
    }
}

/* Over the memory limit (each wake while it lasts): connections holding a line read, the others
 * are paused; with no line held on this worker, the next probes read until the next check and
 * move to the back of the list. Loop thread. */
static void limit_rebalance(srv_worker_t *w)
{
    srv_limit_view_t view[256];
    srv_conn_t *who[256];
    size_t probes[SRV_LIMIT_PROBES];
    size_t n = 0;

    for (base_link_t *l = w->conns.head; l != NULL; l = l->next) {
        srv_conn_t *c = conn_of(l);
        if (c->kind != SRV_CONN_TCP || c->state == SRV_CONN_CLOSING) {
            continue;
        }
        c->probe = 0;
        if (n < sizeof(view) / sizeof(view[0])) {
            view[n].holds_line = holds_line(c);
            view[n].eligible = c->state == SRV_CONN_OPEN;
            who[n++] = c;
        } else if (holds_line(c)) {
            view[0].holds_line = 1; /* beyond the window: still a holder, so no probes */
        }
    }
    pause_tcp_reads(w);
    size_t np = srv_policy_pick_probes(&w->pause, view, n, probes);
    for (size_t i = 0; i < np; i++) {
        srv_conn_t *c = who[probes[i]];
        c->probe = 1;
        /* Next time the ones after them get their turn. */
        base_list_unlink(&w->conns, &c->link);
        base_list_push_back(&w->conns, &c->link);
    }
    resume_reads(w);
}

/* ---- connections ---- */

static void conn_alloc(srv_conn_t *c, uv_buf_t *buf)
{
    srv_worker_t *w = c->owner;
    char *base = NULL;
    size_t len = 0;

    if (c->kind == SRV_CONN_TCP && c->state != SRV_CONN_LINGERING) {
        (void)ing_frame_buf(&c->frame, &base, &len);
    } else {
        base = pool_get(w->cache);
        len = base != NULL ? POOL_BLOCK_SIZE : 0;
    }
    *buf = uv_buf_init(base, (unsigned)len);
}

static void conn_release(srv_conn_t *c, char *base)
{
    srv_worker_t *w = c->owner;
    if (c->kind == SRV_CONN_TCP) {
        ing_frame_commit(&c->frame, 0, &frame_ops, c); /* the block goes back when empty */
        srv_guard_account(w, c, c->frame.ends);
    } else {
        pool_put(w->cache, base);
    }
}

static void conn_closing(srv_conn_t *c)
{
    srv_worker_t *w = c->owner;
    if (c->kind == SRV_CONN_TCP) {
        uint64_t before = c->frame.oversize;
        ing_frame_finish(&c->frame, &frame_ops, c); /* a partial line counts as truncated */
        metrics_counter_add(&w->st->oversize, c->frame.oversize - before);
        srv_guard_account(w, c, c->frame.ends);
    } else {
        srv_guard_account_http(w, c, 0); /* its body buffers go with srv_conn_cleanup */
    }
}

static void conn_closed(srv_conn_t *c)
{
    srv_worker_t *w = c->owner;
    base_list_unlink(&w->conns, &c->link);
    if (c->held_listed) {
        base_list_unlink(&w->holding, &c->held_link);
    }
    if (c->peer_counted) {
        (void)srv_peers_release(w->sh->peers, (const struct sockaddr *)&c->peer);
    }
    srv_conn_cleanup(c);
    metrics_gauge_add(&w->st->conns_active, -1);
    mem_free(c);
}

static void conn_error(srv_conn_t *c, srv_conn_error_t e, int status)
{
    srv_worker_t *w = c->owner;
    const char *err = status != 0 ? uv_strerror(status) : "out of memory";
    switch (e) {
    case SRV_CONN_ERR_READ:
        srv_log_error_limited(&rl_io, "read failed", "error", err, NULL);
        break;
    case SRV_CONN_ERR_WRITE:
        srv_log_error_limited(&rl_io, "write failed", "error", err, NULL);
        break;
    case SRV_CONN_ERR_RESUME:
        metrics_counter_add(&w->st->resume_failures, 1);
        srv_log_error_limited(&rl_io, "cannot resume reading: connection closed", "error", err,
                              NULL);
        break;
    case SRV_CONN_ERR_NOBUFS:
        metrics_counter_add(&w->st->read_nobufs, 1);
        w->nobufs = 1; /* the sweep resumes it */
        break;
    case SRV_CONN_ERR_REPLY_DROPPED:
        metrics_counter_add(&w->st->reply_drops, 1);
        srv_log_error_limited(&rl_io, "reply dropped: out of memory; closing", NULL);
        break;
    }
}

static void on_sweep(uv_timer_t *t);

static void conn_linger_started(srv_conn_t *c)
{
    srv_worker_t *w = c->owner;
    if (!uv_is_active((uv_handle_t *)&w->sweep_timer)) {
        uv_timer_start(&w->sweep_timer, on_sweep, SRV_LINGER_MS / 4, SRV_LINGER_MS / 4);
    }
}

static void conn_drained(srv_conn_t *c)
{
    resume(c->owner, c);
}

static void conn_read(srv_conn_t *c, ssize_t n, const uv_buf_t *buf)
{
    srv_worker_t *w = c->owner;

    if (c->kind == SRV_CONN_TCP) {
        if (n < 0) {
            srv_conn_close(c); /* EOF or error: a partial line is reported as truncated */
            return;
        }
        uint64_t before = c->frame.oversize;
        uint64_t ends = c->frame.ends;
        metrics_counter_add(&w->st->bytes_tcp, (uint64_t)n);
        ing_frame_commit(&c->frame, (size_t)n, &frame_ops, c);
        if (c->frame.oversize != before) {
            metrics_counter_add(&w->st->oversize, c->frame.oversize - before);
        }
        srv_guard_account(w, c, ends);
        if (c->held > 0) {
            srv_guard_budget_enforce(w, NULL, 0);
        }
        if (w->pause.sink_full || w->pause.draining) {
            pause_tcp_reads(w);
        } else if (!may_read(w, c)) {
            srv_conn_read_stop(c); /* over the memory limit: the next read needs a new block */
        }
        return;
    }
    if (n < 0) {
        if (buf->base != NULL) {
            pool_put(w->cache, buf->base);
        }
        srv_conn_http_eof(c);
        return;
    }
    metrics_counter_add(&w->st->bytes_http, (uint64_t)n);
    srv_conn_http_feed(c, buf->base, (size_t)n);
    pool_put(w->cache, buf->base);
    if (w->flush_due) {
        /* Group commit: what this read's requests accepted goes to the writer thread now, not
         * at the next flush-interval tick, so their held replies wait for one write (and one
         * sync with --file-sync), not for a timer. */
        w->flush_due = 0;
        sink_writer_flush(w->sink_w);
    }
    if (c->state != SRV_CONN_CLOSING) {
        srv_guard_account_http(w, c, srv_http_held(&c->http));
    }
    if (w->scratch.cap > 64 * 1024) {
        metrics_writer_free(&w->scratch);
        metrics_writer_init(&w->scratch);
    }
    if (w->pause.sink_full) {
        pause_tcp_reads(w);
    }
}

static const srv_conn_ops_t conn_ops = {
    .alloc = conn_alloc,
    .release = conn_release,
    .on_read = conn_read,
    .on_drained = conn_drained,
    .on_closing = conn_closing,
    .on_closed = conn_closed,
    .on_error = conn_error,
    .on_linger = conn_linger_started,
    .durable = conn_durable,
    .lost = conn_lost,
};

/* ---- HTTP callbacks ---- */

static ing_verdict_t http_on_event(void *ctx, const char *data, size_t len, const char **detail)
{
    srv_conn_t *c = ctx;
    srv_worker_t *w = c->owner;
    if (len > POOL_BLOCK_SIZE) {
        /* Over one block: it was stitched in the connection's carry buffer, as TCP assembles. */
        metrics_counter_add(&w->st->oversize, 1);
    }
    ing_verdict_t v = ingest(w, data, len, detail);
    if (v == ING_ACCEPTED && w->cfg->ack_durable) {
        c->ack_seq = sink_writer_seq(w->sink_w); /* the reply waits until this is durable */
        if (c->ack_first == 0) {
            c->ack_first = c->ack_seq;
        }
    }
    return v;
}

static void http_on_reject(void *ctx, ing_verdict_t reason)
{
    srv_conn_t *c = ctx;
    srv_worker_t *w = c->owner;
    on_reject(ctx, reason);
    /* Too large means over --max-event-bytes: over one block too when that limit is. */
    if (reason == ING_REJECT_TOO_LARGE && w->cfg->max_event_bytes >= POOL_BLOCK_SIZE) {
        metrics_counter_add(&w->st->oversize, 1);
    }
}

static void http_on_request_done(void *ctx, int status)
{
    srv_conn_t *c = ctx;
    srv_worker_t *w = c->owner;
    size_t i = 0;
    while (i + 1 < SRV_HTTP_CODES && srv_http_codes[i] != status) {
        i++;
    }
    metrics_counter_add(&w->st->http_responses[i], 1);
    /* --ack durable: a reply acknowledging events is held until they are durable (ack_seq 0:
     * nothing accepted, or --ack accepted: written at once). */
    srv_conn_reply_done(c, c->ack_first, c->ack_seq);
    if (c->ack_seq != 0) {
        w->flush_due = 1; /* a client waits on these events: hand them over after this read */
    }
    if (srv_conn_held(c) > 0 && !c->held_listed) {
        base_list_push_back(&w->holding, &c->held_link);
        c->held_listed = 1;
    }
    c->ack_seq = 0;
    c->ack_first = 0;
}

static int http_shedding(void *ctx)
{
    srv_conn_t *c = ctx;
    srv_worker_t *w = c->owner;
    return srv_policy_shedding(&w->pause);
}

/* The judge's array seam: a JSON array body is read once under the scanner. */
static size_t http_value_end(void *ctx, const char *p, size_t n)
{
    srv_conn_t *c = ctx;
    srv_worker_t *w = c->owner;
    return ing_judge_value_end(&w->judge, p, n);
}

static int http_on_get(void *ctx, const char *path, srv_http_reply_t *reply)
{
    srv_conn_t *c = ctx;
    srv_worker_t *w = c->owner;
    /* Probes stay open; /metrics tells event types and memory: the admin allowlist decides. */
    if (reply != NULL && strcmp(path, "/healthz") != 0 && strcmp(path, "/readyz") != 0 &&
        !srv_allow_match(&w->cfg->admin_allow, (const struct sockaddr *)&c->peer)) {
        if (srv_expo_get(w->sh, path, NULL, &w->scratch) != 0) {
            return 404;
        }
        reply->status = 403;
        reply->body = "forbidden: not in --admin-allow\n";
        reply->body_len = strlen(reply->body);
        return 0;
    }
    return srv_expo_get(w->sh, path, reply, &w->scratch);
}

static void on_connection(uv_stream_t *server, int status, srv_conn_kind_t kind)
{
    srv_worker_t *w = server->data;
    const srv_config_t *cfg = w->cfg;

    srv_conn_t *c = srv_conn_new(status, &w->conns, kind == SRV_CONN_TCP ? "tcp" : "http");
    if (c == NULL) {
        return;
    }
    metrics_gauge_add(&w->st->conns_active, 1);
    if (srv_conn_accept(c, &w->loop, server, kind, &conn_ops, w) != 0) {
        return; /* conn_closed frees it */
    }
    if (kind == SRV_CONN_TCP) {
        /* Naive mode allocates every assembly buffer afresh: no stock. */
        ing_frame_stock_t *stock = w->pooled ? &w->stock : NULL;
        ing_frame_init(&c->frame, w->cache, cfg->max_event_bytes, stock, mem_realloc, mem_free);
    } else {
        srv_http_limits_t lim = {
            .max_header_bytes = cfg->max_header_bytes,
            .max_body_bytes = cfg->max_body_bytes,
            .max_event_bytes = cfg->max_event_bytes,
            .max_errors = SRV_HTTP_DEFAULT_MAX_ERRORS,
            .realloc_fn = mem_realloc,
            .free_fn = mem_free,
            .gzip = 1,
            .max_gzip_ratio = (uint32_t)cfg->max_gzip_ratio,
            .gzip_ratio_grace = 64 * 1024,
            .require_host = 1,
        };
        srv_http_cbs_t cbs = {
            .authorize = w->sh->auth != NULL ? srv_guard_authorize : NULL,
            .may_grow = srv_guard_http_may_grow,
            .on_event = http_on_event,
            .on_reject = http_on_reject,
            .on_get = http_on_get,
            .shedding = http_shedding,
            .on_request_done = http_on_request_done,
            .value_end = http_value_end,
        };
        srv_conn_http_init(c, &lim, &cbs);
    }
    if (srv_guard_admit(w, c) != 0) {
        return;
    }
    metrics_counter_add(&w->st->conns_total, 1);
    resume(w, c);
}

static void on_tcp_connection(uv_stream_t *server, int status)
{
    on_connection(server, status, SRV_CONN_TCP);
}

static void on_http_connection(uv_stream_t *server, int status)
{
    on_connection(server, status, SRV_CONN_HTTP);
}

/* ---- live levers and trims ---- */

/* The judge's strategy for --parse and the memory mode: the scanner builds nothing, so only the
 * tree has a pooled and a naive form. */
static ing_parse_t strategy(int pooled, int parse)
{
    if (parse == SRV_PARSE_SCAN) {
        return ING_PARSE_SCAN;
    }
    return pooled ? ING_PARSE_TREE_POOLED : ING_PARSE_TREE_NAIVE;
}

/* Switches this loop's memory mode and parse strategy at a safe point (the wake callback,
 * between reads): the judge's one pointer, and the assembly stock of every TCP connection.
 * Blocks and buffers taken in either mode come from the same allocator, so they go back
 * correctly after it. */
static void apply_mode(srv_worker_t *w, int pooled, int parse)
{
    ing_judge_set(&w->judge, strategy(pooled, parse));
    if (w->pooled == pooled) {
        return;
    }
    w->pooled = pooled;
    for (base_link_t *l = w->conns.head; l != NULL; l = l->next) {
        srv_conn_t *c = conn_of(l);
        if (c->kind == SRV_CONN_TCP) {
            c->frame.stock = pooled ? &w->stock : NULL;
        }
    }
    if (!pooled) {
        ing_frame_stock_destroy(&w->stock);
        ing_frame_stock_init(&w->stock, mem_free);
    }
}

/* When asked, trims this loop's cache and answers (sh->trim). Loop thread (also from drain,
 * under wake_lock, so no request goes unanswered). */
static void answer_trim(srv_worker_t *w)
{
    int req = atomic_exchange(&w->trim_req, 0);
    size_t released = 0;

    if (req == 0) {
        return;
    }
    uint64_t t0 = uv_hrtime();
    if (w->cache != NULL) {
        released = pool_cache_trim(w->cache);
        if (req - 1 != SRV_TRIM_TIMER) {
            /* Limit and admin trims go the whole way: the victim-cache trim releases in two
             * steps. */
            released += pool_cache_trim(w->cache);
        }
    }
    uint64_t dt = uv_hrtime() - t0;
    metrics_hist_observe_ns(&w->st->trim, dt);
    srv_trim_answer(&w->sh->trim, released, dt);
}

int srv_worker_request_trim(srv_worker_t *w, srv_trim_reason_t reason)
{
    int asked = 0;
    uv_mutex_lock(&w->wake_lock);
    if (!w->wake_closed) {
        atomic_store(&w->trim_req, (int)reason + 1);
        uv_async_send(&w->wake);
        asked = 1;
    }
    uv_mutex_unlock(&w->wake_lock);
    return asked;
}

void srv_worker_wake(srv_worker_t *w)
{
    uv_mutex_lock(&w->wake_lock);
    if (!w->wake_closed) {
        uv_async_send(&w->wake);
    }
    uv_mutex_unlock(&w->wake_lock);
}

/* ---- timers ---- */

static void on_sweep(uv_timer_t *t)
{
    srv_worker_t *w = t->data;
    const srv_config_t *cfg = w->cfg;
    uint64_t now = uv_now(&w->loop);
    base_link_t *next;

    if (w->nobufs && !w->pause.draining) {
        resume_reads(w); /* connections paused by UV_ENOBUFS try again */
    }
    srv_guard_budget_enforce(w, NULL, 0);
    for (base_link_t *l = w->conns.head; l != NULL; l = next) {
        srv_conn_t *c = conn_of(l);
        next = l->next;
        uint64_t since;
        uint64_t limit = srv_conn_timeout(c, cfg->idle_timeout_ms, cfg->header_timeout_ms,
                                          cfg->body_timeout_ms, &since);
        if (c->state == SRV_CONN_CLOSING || srv_conn_linger_expired(c, now)) {
            continue;
        }
        if (srv_conn_hold_expired(c, now, cfg->ack_timeout_ms, 0)) {
            metrics_counter_add(&w->st->ack_timeouts, 1);
            srv_log_error_limited(&rl_io, "--ack durable: events not durable in time, answered 503",
                                  NULL);
            continue;
        }
        if (cfg->line_timeout_ms != 0 && c->kind == SRV_CONN_TCP && c->reading &&
            c->state == SRV_CONN_OPEN && c->line_start != 0 &&
            now - c->line_start >= cfg->line_timeout_ms) {
            if (c->frame.skipping) {
                /* Its last line was dropped and has not ended since: it keeps doing it. */
                metrics_counter_add(&w->st->slow_closed, 1);
                srv_conn_close(c);
                continue;
            }
            srv_guard_drop_line(w, c, ING_REJECT_SLOW_LINE);
        }
        if (limit == 0 || now - since < limit) {
            continue;
        }
        if (!c->reading && c->kind == SRV_CONN_TCP) {
            continue; /* paused by us (backpressure): not the client's silence */
        }
        metrics_counter_add(&w->st->idle_closed, 1);
        if (c->kind == SRV_CONN_HTTP && c->phase != SRV_HTTP_IDLE) {
            srv_conn_http_timeout(c);
        } else {
            srv_conn_close(c);
        }
    }
}

static uint64_t sweep_interval(const srv_config_t *cfg)
{
    uint64_t m = UINT64_MAX;
    const uint64_t t[] = {cfg->idle_timeout_ms, cfg->header_timeout_ms, cfg->body_timeout_ms,
                          cfg->ack_durable ? cfg->ack_timeout_ms : 0, cfg->line_timeout_ms};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (t[i] != 0 && t[i] < m) {
            m = t[i];
        }
    }
    if (m == UINT64_MAX) {
        return 0;
    }
    m /= 4;
    return m < 50 ? 50 : (m > 1000 ? 1000 : m);
}

/* ---- draining ---- */

static void close_if_open(uv_handle_t *h)
{
    if (h->loop != NULL && !uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

static void start_drain(srv_worker_t *w)
{
    base_link_t *next;

    w->pause.draining = 1;
    if (w->listeners_open) {
        w->listeners_open = 0;
        close_if_open((uv_handle_t *)&w->tcp_listener); /* no-op for one never initialised */
        close_if_open((uv_handle_t *)&w->http_listener);
    }
    /* Every byte already read has been processed in its read callback; what is left is the
     * partial line of each TCP connection (truncated) and HTTP bodies cut short. Then the sink
     * settles (everything appended durable, or given up after its timeout), so the replies
     * held for --ack durable can be written, or answered 503 when their events never were. */
    for (base_link_t *l = w->conns.head; l != NULL; l = l->next) {
        srv_conn_t *c = conn_of(l);
        if (c->kind == SRV_CONN_HTTP && c->state != SRV_CONN_CLOSING) {
            srv_http_eof(&c->http);
        }
    }
    if (w->sink_w != NULL) {
        w->durable = sink_writer_settle(w->sink_w);
        w->settled = 1;
    }
    for (base_link_t *l = w->conns.head; l != NULL; l = next) {
        srv_conn_t *c = conn_of(l);
        next = l->next;
        if (c->kind == SRV_CONN_HTTP && c->state != SRV_CONN_CLOSING && c->out_len > 0) {
            srv_conn_flush(c); /* releases what became durable */
            if (srv_conn_hold_expired(c, 0, 0, 1)) {
                metrics_counter_add(&w->st->ack_timeouts, 1);
            }
            c->eof = 1; /* close once the replies are written: no lingering at shutdown */
            srv_conn_finish(c);
        } else {
            srv_conn_close(c);
        }
    }
    sink_writer_destroy(w->sink_w);
    w->sink_w = NULL;
    close_if_open((uv_handle_t *)&w->sweep_timer);
    uv_mutex_lock(&w->wake_lock);
    answer_trim(w); /* a request sent before the close is answered */
    close_if_open((uv_handle_t *)&w->wake);
    w->wake_closed = 1;
    uv_mutex_unlock(&w->wake_lock);
}

/* The wake's work: start draining, or apply the memory state and the live mode. */
static void poll_flags(srv_worker_t *w)
{
    srv_shared_t *sh = w->sh;

    if (w->pause.draining) {
        return;
    }
    if (atomic_load(&sh->draining)) {
        start_drain(w);
        return;
    }
    apply_mode(w, atomic_load(&sh->pooled), atomic_load(&sh->parse));
    answer_trim(w);
    if (atomic_load(&sh->mem_over)) {
        /* The control wakes every worker each memory check while over: probes rotate. */
        w->pause.mem_paused = 1;
        limit_rebalance(w);
    } else if (w->pause.mem_paused) {
        w->pause.mem_paused = 0;
        if (!w->pause.sink_full) {
            resume_reads(w);
        }
    }
}

static void on_wake(uv_async_t *a)
{
    poll_flags(a->data);
}

/* ---- set-up and the thread ---- */

static int open_listener(srv_worker_t *w, uv_tcp_t *h, int *fd, uv_connection_cb cb)
{
    int r = uv_tcp_init(&w->loop, h);
    if (r != 0) {
        return r;
    }
    h->data = w;
    r = uv_tcp_open(h, *fd);
    if (r == 0) {
        *fd = -*fd - 2; /* the handle owns it now (closed with it); remember it was on */
        r = uv_listen((uv_stream_t *)h, 1024, cb);
    }
    return r;
}

static int setup(srv_worker_t *w)
{
    srv_shared_t *sh = w->sh;
    int r;

    metrics_writer_init(&w->scratch);
    srv_auth_reader_init(&w->auth);
    ing_frame_stock_init(&w->stock, mem_free);
    r = pool_cache_create(sh->pool, &w->cache);
    if (r != 0) {
        srv_log("error", "pool cache", "error", strerror(-r), NULL);
        return r;
    }
    sh->caches[w->id] = w->cache;
    w->pooled = atomic_load(&sh->pooled);
    ing_judge_init(&w->judge, strategy(w->pooled, atomic_load(&sh->parse)), w->cache, mem_malloc,
                   mem_free);
    r = sink_writer_create(sh->sink, &w->loop, on_sink_writable, w, &w->sink_w);
    if (r != 0) {
        srv_log("error", "sink writer", "error", strerror(r < 0 ? -r : r), NULL);
        return r;
    }
    if (w->cfg->ack_durable) {
        sink_writer_set_durable_cb(w->sink_w, on_sink_durable, w);
    }
    r = uv_timer_init(&w->loop, &w->sweep_timer);
    if (r != 0) {
        srv_log("error", "worker timer", "error", uv_strerror(r), NULL);
        return r;
    }
    w->sweep_timer.data = w;
    w->listeners_open = 1;
    if (w->tcp_fd >= 0) {
        r = open_listener(w, &w->tcp_listener, &w->tcp_fd, on_tcp_connection);
        if (r != 0) {
            srv_log("error", "tcp listen", "error", uv_strerror(r), NULL);
            return r;
        }
    }
    if (w->http_fd >= 0) {
        r = open_listener(w, &w->http_listener, &w->http_fd, on_http_connection);
        if (r != 0) {
            srv_log("error", "http listen", "error", uv_strerror(r), NULL);
            return r;
        }
    }
    uint64_t iv = sweep_interval(w->cfg);
    if (iv != 0) {
        r = uv_timer_start(&w->sweep_timer, on_sweep, iv, iv);
    }
    return r;
}

static void teardown(srv_worker_t *w)
{
    if (!w->pause.draining) {
        start_drain(w);
    }
    uv_run(&w->loop, UV_RUN_DEFAULT);
    srv_auth_reader_close(&w->auth);
    ing_judge_destroy(&w->judge);
    ing_frame_stock_destroy(&w->stock);
    pool_cache_destroy(w->cache);
    w->cache = NULL;
    metrics_writer_free(&w->scratch);
    if (uv_loop_close(&w->loop) != 0) {
        srv_log("error", "worker loop: handles left open", NULL);
    }
}

static void worker_main(void *arg)
{
    srv_worker_t *w = arg;
    srv_shared_t *sh = w->sh;
    char name[16]; /* what top -H and perf show: ingestd-w0, ingestd-w1, ... */
    snprintf(name, sizeof(name), "ingestd-w%u", w->id);
    pthread_setname_np(pthread_self(), name);

    if (setup(w) != 0) {
        atomic_fetch_add(&sh->failed, 1);
    } else {
        atomic_fetch_add(&sh->ready, 1);
    }
    uv_async_send(&sh->ctl_async);
    /* Even after a failed set-up the loop runs until the control loop says drain, so that the
     * wake handle stays valid for it. */
    poll_flags(w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    teardown(w);
    atomic_fetch_add(&sh->done, 1);
    uv_async_send(&sh->ctl_async);
}

int srv_worker_create(srv_shared_t *sh, unsigned id, int tcp_fd, int http_fd, srv_worker_t **out)
{
    srv_worker_t *w = mem_calloc(1, sizeof(*w));
    if (w == NULL) {
        return -ENOMEM;
    }
    if (uv_mutex_init(&w->wake_lock) != 0) {
        mem_free(w);
        return -ENOMEM;
    }
    w->sh = sh;
    w->cfg = sh->cfg;
    w->id = id;
    w->st = &sh->stats[id];
    w->types = &sh->types[id];
    w->tcp_fd = tcp_fd;
    w->http_fd = http_fd;
    w->wake_closed = 1; /* until started */
    *out = w;
    return 0;
}

int srv_worker_start(srv_worker_t *w)
{
    int r = uv_loop_init(&w->loop);
    if (r != 0) {
        return r;
    }
    r = uv_async_init(&w->loop, &w->wake, on_wake);
    if (r != 0) {
        uv_loop_close(&w->loop);
        return r;
    }
    w->wake.data = w;
    w->wake_closed = 0;
    r = uv_thread_create(&w->thread, worker_main, w);
    if (r != 0) {
        w->wake_closed = 1;
        uv_close((uv_handle_t *)&w->wake, NULL);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        uv_loop_close(&w->loop);
        return r;
    }
    w->loop_ready = 1;
    return 0;
}

void srv_worker_join(srv_worker_t *w)
{
    if (w->loop_ready) {
        uv_thread_join(&w->thread);
    }
}

void srv_worker_destroy(srv_worker_t *w)
{
    if (w == NULL) {
        return;
    }
    if (w->tcp_fd >= 0) {
        close(w->tcp_fd); /* never handed to a listener */
    }
    if (w->http_fd >= 0) {
        close(w->http_fd);
    }
    uv_mutex_destroy(&w->wake_lock);
    mem_free(w);
}
