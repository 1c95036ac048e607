/* server/worker.c - one ingest loop: SO_REUSEPORT listeners, TCP NDJSON and HTTP connections,
 * the per-event path (frame -> judge -> count -> sink), pausing (policy.h), idle sweeps, and
 * the worker's side of pool trims and live mode switches. */
#include "server/worker.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "ingest/judge.h"
#include "mem/mem.h"
#include "server/auth.h"
#include "server/conn.h"
#include "server/expo.h"
#include "server/log.h"
#include "server/peers.h"
#include "server/policy.h"

struct srv_worker {
    srv_shared_t *sh;
    const srv_config_t *cfg;
    unsigned id;
    srv_worker_stats_t *st; /* &sh->stats[id] */
    ing_types_t *types;     /* &sh->types[id] */
    ing_judge_t judge;      /* judges each line; its strategy follows the live mode */
    uv_loop_t loop;
    uv_thread_t thread;
    int loop_ready;
    int tcp_fd; /* bound socket handed to uv_tcp_open, -1 when off */
    int http_fd;
    uv_tcp_t tcp_listener;
    uv_tcp_t http_listener;
    int listeners_open;
    uv_async_t wake;      /* control -> worker: look at draining / mem_over / pooled / trim */
    uv_mutex_t wake_lock; /* orders uv_async_send(wake) against the worker closing it */
    int wake_closed;      /* under wake_lock */
    _Atomic int trim_req; /* any thread -> worker: 0 none, else srv_trim_reason_t + 1 */
    uv_timer_t sweep_timer;
    pool_cache_t *cache;
    ing_frame_stock_t stock; /* assembly buffers lent to this loop's TCP connections */
    sink_writer_t *sink_w;
    uint64_t durable; /* the writer's durable sequence once it settled at drain (else unused) */
    int settled;
    int flush_due; /* replies wait for events still in the current chunk (--ack durable) */
    base_list_t conns;
    srv_pause_t pause;
    int nobufs;               /* a connection paused because no block could be had */
    int pooled;               /* this loop's memory mode now (follows sh->pooled) */
    size_t held;              /* bytes its TCP connections hold in unfinished lines */
    srv_auth_reader_t auth;   /* its view of sh->auth (auth.h) */
    metrics_writer_t scratch; /* GET /metrics bodies, freed when large after each feed */
};

static srv_ratelimit_t rl_io;
static srv_ratelimit_t rl_sink;
static srv_ratelimit_t rl_auth;

const int srv_http_codes[SRV_HTTP_CODES] = {200, 400, 401, 403, 404, 405, 408,
                                            413, 415, 431, 501, 503, 0};

static srv_conn_t *conn_of(base_link_t *l)
{
    return BASE_CONTAINER(l, srv_conn_t, link);
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

static int tcp_may_grow(void *ctx, size_t held, size_t cap);

static const ing_frame_ops_t frame_ops = {tcp_on_line, on_reject, tcp_may_grow};

/* ---- the partial-line budget and the line deadline ----
 *
 * Each TCP connection's held bytes (ing_frame_held) are summed per worker (w->held, plain) and
 * process-wide (sh->partial_held, a relaxed fetch_add when a connection's holding changes: when
 * it starts or stops holding a line or its assembly buffer grows, never per event). The budget
 * is split evenly: a worker may always hold its share (budget / workers), and more while the
 * process-wide sum stays within the budget. A worker over its share while the sum is over the
 * budget drops the lines of its oldest holders first, so a fresh client keeps its line. */

/* Brings c's account up to date after its frame changed. ends_before: c->frame.ends before the
 * change (a line ended when it moved: the deadline restarts for the line held now). */
static void account(srv_worker_t *w, srv_conn_t *c, uint64_t ends_before)
{
    size_t held = ing_frame_held(&c->frame);

    if (!ing_frame_pending(&c->frame)) {
        c->line_start = 0;
    } else if (c->line_start == 0 || c->frame.ends != ends_before) {
        c->line_start = uv_now(&w->loop);
    }
    if (held != c->held) {
        atomic_fetch_add_explicit(&w->sh->partial_held, (uint64_t)held - (uint64_t)c->held,
                                  memory_order_relaxed);
        w->held = w->held + held - c->held;
        c->held = held;
    }
}

/* The same for an HTTP connection: the carry buffer of its request bodies (no deadline here:
 * --body-timeout bounds a body's time). */
static void account_http(srv_worker_t *w, srv_conn_t *c, size_t held)
{
    if (held != c->held) {
        atomic_fetch_add_explicit(&w->sh->partial_held, (uint64_t)held - (uint64_t)c->held,
                                  memory_order_relaxed);
        w->held = w->held + held - c->held;
        c->held = held;
    }
}

/* Drops the line c holds (counted under why); the rest of it is skipped to its newline, and the
 * deadline runs again for that. */
static void drop_line(srv_worker_t *w, srv_conn_t *c, ing_verdict_t why)
{
    if (ing_frame_drop(&c->frame)) {
        metrics_counter_add(&w->st->rejected[why], 1);
        account(w, c, c->frame.ends);
        c->line_start = uv_now(&w->loop);
    }
}

/* 1 when this worker may hold extra more bytes (policy above). */
static int budget_fits(const srv_worker_t *w, size_t extra)
{
    uint64_t all = atomic_load_explicit(&w->sh->partial_held, memory_order_relaxed);
    return srv_policy_budget_fits(w->held, all, extra, w->sh->partial_budget, w->sh->nworkers);
}

/* Makes room for extra bytes (0: just get within the budget): the oldest holders other than
 * keep lose their lines (over_budget) while this worker does not fit. Loop thread. */
static void budget_enforce(srv_worker_t *w, const srv_conn_t *keep, size_t extra)
{
    while (!budget_fits(w, extra)) {
        srv_conn_t *oldest = NULL;
        for (base_link_t *l = w->conns.head; l != NULL; l = l->next) {
            srv_conn_t *c = conn_of(l);
            if (c != keep && c->kind == SRV_CONN_TCP && c->held > 0 &&
                (oldest == NULL || c->line_start < oldest->line_start)) {
                oldest = c;
            }
        }
        if (oldest == NULL) {
            return;
        }
        drop_line(w, oldest, ING_REJECT_OVER_BUDGET);
    }
}

/* The framer asks before an unfinished line's assembly buffer grows: over the memory limit a
 * line may only be completed in what it holds (policy.h); within the budget it may grow, older
 * holders losing their lines first to make room. */
static int tcp_may_grow(void *ctx, size_t held, size_t cap)
{
    srv_conn_t *c = ctx;
    srv_worker_t *w = c->owner;

    if (!srv_policy_line_may_grow(&w->pause)) {
        return 0;
    }
    if (cap <= held || cap <= c->held) {
        return 1;
    }
    size_t extra = cap - (c->held > held ? c->held : held);
    budget_enforce(w, c, extra);
    return budget_fits(w, extra);
}

/* The same question from an HTTP body's carry buffer (a line or element crossing reads). Its
 * event is rejected over_budget when the answer is no; TCP holders make room first. */
static int http_may_grow(void *ctx, size_t held, size_t cap)
{
    srv_conn_t *c = ctx;
    srv_worker_t *w = c->owner;

    if (!srv_policy_line_may_grow(&w->pause)) {
        return 0;
    }
    if (cap <= held) {
        return 1;
    }
    size_t extra = cap - held;
    budget_enforce(w, c, extra);
    if (!budget_fits(w, extra)) {
        return 0;
    }
    account_http(w, c, cap); /* counted before it is allocated, so the sum stays honest */
    return 1;
}

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

/* The sink made more of this worker's events durable: write the replies that waited for them. */
static void on_sink_durable(void *ctx)
{
    srv_worker_t *w = ctx;
    for (base_link_t *l = w->conns.head; l != NULL; l = l->next) {
        srv_conn_t *c = conn_of(l);
        if (srv_conn_held(c) > 0) {
            srv_conn_flush(c);
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
        account(w, c, c->frame.ends);
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
        account(w, c, c->frame.ends);
    } else {
        account_http(w, c, 0); /* its body buffers go with srv_conn_cleanup */
    }
}

static void conn_closed(srv_conn_t *c)
{
    srv_worker_t *w = c->owner;
    base_list_unlink(&w->conns, &c->link);
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
        account(w, c, ends);
        if (c->held > 0) {
            budget_enforce(w, NULL, 0);
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
        account_http(w, c, ing_body_held(&c->http.body));
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
    srv_conn_reply_done(c, c->ack_seq);
    if (c->ack_seq != 0) {
        w->flush_due = 1; /* a client waits on these events: hand them over after this read */
    }
    c->ack_seq = 0;
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

/* Bearer tokens (--ingest-tokens-file): the set in force now, checked in constant time. */
static int http_authorize(void *ctx, const char *value, size_t len, unsigned lines, char *hdr,
                          size_t hdrsz)
{
    srv_conn_t *c = ctx;
    srv_worker_t *w = c->owner;
    const srv_auth_set_t *set = srv_auth_reader_current(&w->auth, w->sh->auth);
    srv_auth_result_t r = lines > 1 ? SRV_AUTH_MALFORMED : srv_auth_check(set, value, len);
    char chal[256];

    if (r == SRV_AUTH_OK) {
        return 0;
    }
    metrics_counter_add(&w->st->auth_denied, 1);
    srv_log_error_limited(&rl_auth, "ingest request refused: no valid bearer token", "result",
                          srv_auth_result_name(r), NULL);
    srv_auth_challenge(r, "ingestd", chal, sizeof(chal));
    snprintf(hdr, hdrsz, "WWW-Authenticate: %s\r\n", chal);
    return 401;
}

/* The open connection of this worker silent longest, other than c; NULL when none. */
static srv_conn_t *idlest(srv_worker_t *w, const srv_conn_t *c)
{
    srv_conn_t *best = NULL;
    for (base_link_t *l = w->conns.head; l != NULL; l = l->next) {
        srv_conn_t *o = conn_of(l);
        if (o != c && o->state == SRV_CONN_OPEN &&
            (best == NULL || o->last_active < best->last_active)) {
            best = o;
        }
    }
    return best;
}

/* Turns a new connection away: HTTP gets status (403 or 503) before the close. */
static void refuse(srv_conn_t *c, int status)
{
    static const char r403[] = "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
                               "Content-Length: 10\r\nConnection: close\r\n\r\nforbidden\n";
    static const char r503[] =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
        "Content-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n";

    if (c->kind == SRV_CONN_HTTP) {
        const char *r = status == 403 ? r403 : r503;
        size_t len = status == 403 ? sizeof(r403) - 1 : sizeof(r503) - 1;
        if (srv_conn_send(c, r, len) == 0) {
            srv_conn_finish(c);
            return;
        }
    }
    srv_conn_close(c);
}

/* The admission rules, in order: --ingest-allow (403), the per-peer cap (503), the global cap
 * (room made by closing this worker's connection idle longest; 503 when there is none). Returns
 * 0 when c may stay, else it was refused and counted. */
static int admit(srv_worker_t *w, srv_conn_t *c)
{
    const srv_config_t *cfg = w->cfg;
    const struct sockaddr *peer = (const struct sockaddr *)&c->peer;
    int plen = (int)sizeof(c->peer);

    if (uv_tcp_getpeername(&c->handle, (struct sockaddr *)&c->peer, &plen) != 0) {
        c->peer.ss_family = AF_UNSPEC;
    }
    if (!srv_allow_match(&cfg->ingest_allow, peer)) {
        metrics_counter_add(&w->st->conns_refused_allow, 1);
        refuse(c, 403);
        return -1;
    }
    if (w->sh->peers != NULL && c->peer.ss_family != AF_UNSPEC) {
        int r = srv_peers_acquire(w->sh->peers, peer);
        if (r == -EUSERS) {
            metrics_counter_add(&w->st->conns_refused_peer, 1);
            refuse(c, 503);
            return -1;
        }
        c->peer_counted = r == 0; /* -ENOSPC/-ENOMEM: the global cap still bounds it */
    }
    if ((uint64_t)srv_expo_active_conns(w->sh) > cfg->max_connections) {
        srv_conn_t *victim = idlest(w, c);
        if (victim == NULL) {
            metrics_counter_add(&w->st->conns_refused, 1);
            refuse(c, 503);
            return -1;
        }
        metrics_counter_add(&w->st->conns_evicted, 1);
        srv_conn_close(victim);
    }
    return 0;
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
            .authorize = w->sh->auth != NULL ? http_authorize : NULL,
            .may_grow = http_may_grow,
            .on_event = http_on_event,
            .on_reject = http_on_reject,
            .on_get = http_on_get,
            .shedding = http_shedding,
            .on_request_done = http_on_request_done,
            .value_end = http_value_end,
        };
        srv_conn_http_init(c, &lim, &cbs);
    }
    if (admit(w, c) != 0) {
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
    budget_enforce(w, NULL, 0);
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
            drop_line(w, c, ING_REJECT_SLOW_LINE);
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
