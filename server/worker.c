/* worker.c - one ingest loop: SO_REUSEPORT listeners, TCP NDJSON and HTTP connections, the
 * per-event path (frame -> process -> sink), pausing, idle sweeps and pool trims. The control
 * loop reuses the HTTP connection code for its admin listener. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mem/mem.h"
#include "server/log.h"
#include "server/server_internal.h"

static srv_ratelimit_t rl_accept;
static srv_ratelimit_t rl_read;
static srv_ratelimit_t rl_sink;
static srv_ratelimit_t rl_write;

/* Largest admin request body (PUT /debug/config). */
#define ADMIN_BODY_MAX (64 * 1024)
/* Lingering close (conn_linger): how long, and how many bytes, a closing HTTP connection's
 * input is read and discarded after its last reply before it is closed anyway. */
#define SRV_LINGER_MS 2000
#define SRV_LINGER_BYTES ((uint64_t)16 * 1024 * 1024)
/* Sweep period while a connection lingers and no read timeout runs the sweep. */
#define SRV_LINGER_SWEEP_MS 500

/* Responses pending beyond this make an HTTP connection stop reading until they are written. */
#define OUT_PAUSE_BYTES (1024 * 1024)

static void conn_close(srv_conn_t *c);
static void conn_finish(srv_conn_t *c);
static void conn_maybe_resume(srv_conn_t *c);
static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_sweep(uv_timer_t *t);

int64_t srv_server_active_conns(srv_server_t *s)
{
    int64_t n = 0;
    for (unsigned i = 0; i < s->nworkers; i++) {
        n += metrics_gauge_get(&s->workers[i]->st.conns_active);
    }
    return n;
}

/* ---- the per-event path ---- */

static ing_verdict_t ingest(srv_worker_t *w, const char *line, size_t len, const char **detail)
{
    ing_judgement_t jm;
    ing_verdict_t v = ing_judge_line(&w->judge, line, len, detail != NULL, &jm);

    if (v != ING_ACCEPTED) {
        metrics_counter_add(&w->st.rejected[v], 1);
        if (detail != NULL) {
            *detail = jm.detail;
        }
        return v;
    }
    int r = sink_append(w->sink_w, line, len);
    if (r < 0) {
        /* The sink could not keep the event (no memory): it is not accepted. */
        metrics_counter_add(&w->st.sink_failures, 1);
        metrics_counter_add(&w->st.rejected[ING_REJECT_TOO_LARGE], 1);
        srv_log_error_limited(&rl_sink, "sink append failed", "error", strerror(-r), NULL);
        if (detail != NULL) {
            *detail = "no memory to keep the event";
        }
        return ING_REJECT_TOO_LARGE;
    }
    if (r == 1) {
        w->sink_full = 1;
    }
    ing_types_count(&w->types, jm.type, jm.type_len);
    metrics_counter_add(&w->st.accepted, 1);
    return ING_ACCEPTED;
}

static void tcp_on_line(void *ctx, const char *line, size_t len)
{
    srv_conn_t *c = ctx;
    ingest(c->w, line, len, NULL);
}

static void on_reject(void *ctx, ing_verdict_t reason)
{
    srv_conn_t *c = ctx;
    metrics_counter_add(&c->w->st.rejected[reason], 1);
}

static const ing_frame_ops_t frame_ops = {tcp_on_line, on_reject};

/* ---- pausing ----
 *
 * The sink falling behind or draining pauses every TCP connection: nothing more may be read.
 *
 * The memory limit pauses only what reading would grow. Over the limit (w->mem_paused), a TCP
 * connection that holds a partial line (a pooled block, an assembly buffer, or a too-large line
 * being skipped) keeps reading: its next read lands in memory it already holds, and completing
 * the line is what gives that memory back. Pausing it instead could never free anything - with
 * every connection holding a block and paused, the limit stalled ingest for good. A connection
 * holding nothing would need a new block, so it is paused (and new ones start paused); HTTP
 * answers 503. While the limit is exceeded the control loop asks for a whole trim every check
 * (MEM_CHECK_MS) that finds idle blocks, so returned blocks are released at once.
 * When no connection on a worker holds a partial line and memory is still over the limit, the
 * pause has nothing left to wait for (what is over is not blocks: connection state, the sink,
 * a limit below the idle footprint): then at most LIMIT_PROBES paused connections, taken in
 * turn from the front of the list and moved to its back, may read until the next check. So the
 * limit never deadlocks, and what reading adds above it is bounded by the partial lines already
 * held (each at most --max-event-bytes) plus LIMIT_PROBES blocks per worker. */

/* Connections a worker lets read per memory check while over the limit with no line held. */
#define LIMIT_PROBES 32

static int should_pause(const srv_worker_t *w)
{
    return w->sink_full || w->mem_paused || w->draining;
}

/* A TCP connection holding bytes of an unfinished line (memory only reading releases). */
static int holds_line(const srv_conn_t *c)
{
    return c->kind == SRV_CONN_TCP && !c->closing && ing_frame_pending(&c->frame);
}

/* Whether a TCP connection may read now (see the pausing comment above). */
static int tcp_may_read(const srv_worker_t *w, const srv_conn_t *c)
{
    if (w->sink_full || w->draining) {
        return 0;
    }
    return !w->mem_paused || c->probe || holds_line(c);
}

static void pause_tcp_reads(srv_worker_t *w)
{
    int paused = 0;
    for (srv_conn_t *c = w->conns; c != NULL; c = c->next) {
        if (c->kind == SRV_CONN_TCP && c->reading && !c->closing) {
            uv_read_stop((uv_stream_t *)&c->handle);
            c->reading = 0;
            paused = 1;
        }
    }
    if (paused) {
        metrics_counter_add(&w->st.read_pauses, 1);
    }
}

static void resume_reads(srv_worker_t *w)
{
    for (srv_conn_t *c = w->conns; c != NULL; c = c->next) {
        conn_maybe_resume(c);
    }
}

static void on_sink_writable(void *ctx)
{
    srv_worker_t *w = ctx;
    w->sink_full = sink_writer_full(w->sink_w);
    if (!w->sink_full && !w->draining) {
        resume_reads(w); /* over the memory limit: only those tcp_may_read allows */
    }
}

static void stop_reading(srv_conn_t *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->handle);
        c->reading = 0;
    }
}

/* Takes c out of w's connection list (its prev/next are left as they were). */
static void conn_unlink(srv_worker_t *w, srv_conn_t *c)
{
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        w->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
}

/* Over the memory limit (each wake while it lasts): connections holding a line read, the others
 * are paused; with no line held on this worker, the next LIMIT_PROBES paused connections read
 * until the next check. Loop thread. */
static void limit_rebalance(srv_worker_t *w)
{
    srv_conn_t *probes[LIMIT_PROBES];
    size_t np = 0;
    size_t holders = 0;
    int paused = 0;
    srv_conn_t *tail = NULL;

    for (srv_conn_t *c = w->conns; c != NULL; c = c->next) {
        tail = c;
        if (c->kind != SRV_CONN_TCP || c->closing) {
            continue;
        }
        c->probe = 0;
        if (holds_line(c)) {
            holders++;
        } else if (c->reading) {
            stop_reading(c);
            paused = 1;
        }
    }
    if (paused) {
        metrics_counter_add(&w->st.read_pauses, 1);
    }
    if (holders == 0 && !w->sink_full && !w->draining) {
        for (srv_conn_t *c = w->conns; c != NULL && np < LIMIT_PROBES; c = c->next) {
            if (c->kind == SRV_CONN_TCP && !c->closing && !c->close_after_write) {
                probes[np++] = c;
            }
        }
        /* Next time the ones after them get their turn: move these to the back. */
        for (size_t i = 0; i < np; i++) {
            srv_conn_t *c = probes[i];
            if (c == tail) {
                break; /* already last; so is everything after it in probes */
            }
            conn_unlink(w, c);
            c->prev = tail;
            c->next = NULL;
            tail->next = c;
            tail = c;
        }
        for (size_t i = 0; i < np; i++) {
            probes[i]->probe = 1;
        }
    }
    resume_reads(w);
}

/* ---- connections ---- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    srv_conn_t *c = h->data;
    char *base = NULL;
    size_t len = 0;
    (void)hint;

    if (c->kind == SRV_CONN_TCP) {
        (void)ing_frame_buf(&c->frame, &base, &len);
    } else {
        base = pool_get(c->w->cache);
        len = base != NULL ? POOL_BLOCK_SIZE : 0;
    }
    *buf = uv_buf_init(base, (unsigned)len);
}

static void on_conn_closed(uv_handle_t *h)
{
    srv_conn_t *c = h->data;
    srv_worker_t *w = c->w;

    conn_unlink(w, c);
    if (c->kind == SRV_CONN_HTTP) {
        srv_http_free(&c->http);
    }
    mem_free(c->out);
    mem_free(c->wbuf);
    if (!w->control) {
        metrics_gauge_add(&w->st.conns_active, -1);
    }
    mem_free(c);
}

/* Closes now; a TCP partial line is reported as truncated first. */
static void conn_close(srv_conn_t *c)
{
    if (c->closing) {
        return;
    }
    c->closing = 1;
    if (c->kind == SRV_CONN_TCP) {
        uint64_t before = c->frame.oversize;
        ing_frame_finish(&c->frame, &frame_ops, c);
        metrics_counter_add(&c->w->st.oversize, c->frame.oversize - before);
    }
    c->reading = 0;
    uv_close((uv_handle_t *)&c->handle, on_conn_closed);
}

static void on_linger_shutdown(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status;
}

/* Lingering close, for every HTTP connection we close before the peer has closed its side (an
 * early 413 by Content-Length, 431, 400, 408, Connection: close, the admin 403): closing with
 * unread input makes the kernel send a reset, which can destroy the reply before the client
 * reads it. So the write side is shut (FIN after the reply, once written) and input is read
 * and discarded until the peer closes, SRV_LINGER_BYTES were discarded or SRV_LINGER_MS passed
 * (the sweep), then the connection is closed. Reads go through pooled blocks given straight
 * back: lingering costs no memory beyond the connection. */
static void conn_linger(srv_conn_t *c)
{
    srv_worker_t *w = c->w;

    if (c->closing) {
        return;
    }
    if (c->lingering) {
        return;
    }
    c->lingering = 1;
    c->close_after_write = 1;
    c->linger_start = uv_now(w->loop);
    c->linger_bytes = 0;
    if (w->draining || uv_shutdown(&c->sreq, (uv_stream_t *)&c->handle, on_linger_shutdown) != 0) {
        conn_close(c);
        return;
    }
    if (!c->reading) {
        if (uv_read_start((uv_stream_t *)&c->handle, on_alloc, on_read) != 0) {
            conn_close(c);
            return;
        }
        c->reading = 1;
    }
    if (!uv_is_active((uv_handle_t *)&w->sweep_timer)) {
        uv_timer_start(&w->sweep_timer, on_sweep, SRV_LINGER_SWEEP_MS, SRV_LINGER_SWEEP_MS);
    }
}

/* The last reply is written (or there is none): close, lingering when the peer may still send. */
static void conn_finish(srv_conn_t *c)
{
    if (c->kind == SRV_CONN_HTTP && !c->eof) {
        conn_linger(c);
    } else {
        conn_close(c);
    }
}

static void start_write(srv_conn_t *c);

static void on_write(uv_write_t *req, int status)
{
    srv_conn_t *c = req->data;
    c->writing = 0;
    if (status < 0) {
        if (status != UV_ECANCELED) {
            srv_log_error_limited(&rl_write, "write failed", "error", uv_strerror(status), NULL);
        }
        conn_close(c);
        return;
    }
    if (c->closing) {
        return;
    }
    if (c->out_len > 0) {
        start_write(c);
    } else if (c->close_after_write) {
        conn_finish(c);
    } else {
        conn_maybe_resume(c);
    }
}

/* Swaps the gathered bytes into the write buffer and writes them. */
static void start_write(srv_conn_t *c)
{
    char *t = c->wbuf;
    size_t tcap = c->wbuf_cap;
    c->wbuf = c->out;
    c->wbuf_cap = c->out_cap;
    c->out = t;
    c->out_cap = tcap;
    uv_buf_t b = uv_buf_init(c->wbuf, (unsigned)c->out_len);
    c->out_len = 0;
    c->wreq.data = c;
    int r = uv_write(&c->wreq, (uv_stream_t *)&c->handle, &b, 1, on_write);
    if (r < 0) {
        conn_close(c);
        return;
    }
    c->writing = 1;
}

static void http_send(void *ctx, const char *data, size_t len)
{
    srv_conn_t *c = ctx;
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap != 0 ? c->out_cap : 4096;
        while (cap < c->out_len + len) {
            cap *= 2;
        }
        char *n = mem_realloc(c->out, cap);
        if (n == NULL) {
            c->close_after_write = 1;
            return;
        }
        c->out = n;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
}

static ing_verdict_t http_on_event(void *ctx, const char *data, size_t len, const char **detail)
{
    srv_conn_t *c = ctx;
    if (len > POOL_BLOCK_SIZE) {
        /* Over one block: it was stitched in the connection's carry buffer, as TCP assembles. */
        metrics_counter_add(&c->w->st.oversize, 1);
    }
    return ingest(c->w, data, len, detail);
}

static void http_on_reject(void *ctx, ing_verdict_t reason)
{
    srv_conn_t *c = ctx;
    on_reject(ctx, reason);
    /* Too large means over --max-event-bytes: over one block too when that limit is. */
    if (reason == ING_REJECT_TOO_LARGE && !c->w->control &&
        c->w->srv->cfg.max_event_bytes >= POOL_BLOCK_SIZE) {
        metrics_counter_add(&c->w->st.oversize, 1);
    }
}

const int srv_http_codes[SRV_HTTP_CODES] = {200, 400, 404, 405, 408, 413, 415, 431, 503, 0};

static void http_on_request_done(void *ctx, int status)
{
    srv_conn_t *c = ctx;
    size_t i = 0;
    while (i + 1 < SRV_HTTP_CODES && srv_http_codes[i] != status) {
        i++;
    }
    metrics_counter_add(&c->w->st.http_responses[i], 1);
}

static int http_shedding(void *ctx)
{
    srv_conn_t *c = ctx;
    return should_pause(c->w);
}

int srv_conn_get(srv_conn_t *c, const char *path, srv_http_reply_t *reply)
{
    srv_worker_t *w = c->w;
    srv_server_t *s = w->srv;

    if (strcmp(path, "/metrics") == 0) {
        if (reply == NULL) {
            return 0;
        }
        w->scratch.len = 0;
        w->scratch.oom = 0;
        srv_server_write_metrics(s, &w->scratch);
        if (w->scratch.oom) {
            reply->status = 500;
            reply->body = "out of memory\n";
            reply->body_len = strlen(reply->body);
            return 0;
        }
        reply->content_type = "text/plain; version=0.0.4; charset=utf-8";
        reply->body = w->scratch.buf;
        reply->body_len = w->scratch.len;
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
            int ready = atomic_load(&s->ready) == s->nworkers && !atomic_load(&s->draining);
            reply->status = ready ? 200 : 503;
            reply->body = ready ? "ready\n" : "not ready\n";
            reply->body_len = strlen(reply->body);
        }
        return 0;
    }
    return 404;
}

static int http_on_get(void *ctx, const char *path, srv_http_reply_t *reply)
{
    return srv_conn_get(ctx, path, reply);
}

static void note_phase(srv_conn_t *c)
{
    srv_http_phase_t p = srv_http_phase(&c->http);
    if (p != c->phase) {
        c->phase = p;
        c->phase_start = uv_now(c->w->loop);
    }
}

static void http_finish_feed(srv_conn_t *c, int close)
{
    srv_worker_t *w = c->w;
    if (w->control) {
        free(w->srv->admin_body); /* the admin reply was copied by http_send */
        w->srv->admin_body = NULL;
    }
    if (w->scratch.cap > 64 * 1024) {
        metrics_writer_free(&w->scratch);
        metrics_writer_init(&w->scratch);
    }
    note_phase(c);
    if (close) {
        c->close_after_write = 1;
        if (c->reading) {
            uv_read_stop((uv_stream_t *)&c->handle);
            c->reading = 0;
        }
    }
    if (c->out_len > 0 && !c->writing) {
        start_write(c);
    }
    if (c->closing) {
        return;
    }
    if (c->close_after_write && !c->writing) {
        conn_finish(c);
        return;
    }
    if (c->out_len > OUT_PAUSE_BYTES && c->reading) {
        uv_read_stop((uv_stream_t *)&c->handle);
        c->reading = 0;
    }
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    srv_conn_t *c = stream->data;
    srv_worker_t *w = c->w;

    if (n > 0) {
        c->last_active = uv_now(w->loop);
    }
    if (c->kind == SRV_CONN_TCP) {
        if (n >= 0) {
            uint64_t before = c->frame.oversize;
            metrics_counter_add(&w->st.bytes_tcp, (uint64_t)n);
            ing_frame_commit(&c->frame, (size_t)n, &frame_ops, c);
            if (c->frame.oversize != before) {
                metrics_counter_add(&w->st.oversize, c->frame.oversize - before);
            }
            if (w->sink_full || w->draining) {
                pause_tcp_reads(w);
            } else if (!tcp_may_read(w, c)) {
                stop_reading(c); /* over the memory limit: the next read needs a new block */
            }
            return;
        }
        if (n != UV_EOF) {
            srv_log_error_limited(&rl_read, "read failed", "error", uv_strerror((int)n), NULL);
        }
        conn_close(c); /* a partial line is reported as truncated */
        return;
    }

    if (c->lingering) {
        /* Discard input so that closing sends FIN after the reply, not a reset. */
        pool_put(w->cache, buf->base);
        if (n > 0) {
            c->linger_bytes += (uint64_t)n;
        }
        if (n < 0 || c->linger_bytes > SRV_LINGER_BYTES) {
            conn_close(c);
        }
        return;
    }

    /* HTTP (ingest or control) */
    if (n > 0) {
        if (!w->control) {
            metrics_counter_add(&w->st.bytes_http, (uint64_t)n);
        }
        int close = srv_http_feed(&c->http, buf->base, (size_t)n);
        pool_put(w->cache, buf->base);
        http_finish_feed(c, close);
        if (w->sink_full && !w->control) {
            pause_tcp_reads(w);
        }
        return;
    }
    pool_put(w->cache, buf->base);
    if (n == 0) {
        return;
    }
    if (n != UV_EOF) {
        srv_log_error_limited(&rl_read, "read failed", "error", uv_strerror((int)n), NULL);
    }
    c->eof = 1;
    srv_http_eof(&c->http);
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->handle);
        c->reading = 0;
    }
    c->close_after_write = 1;
    if (!c->writing) {
        conn_close(c);
    }
}

static void conn_maybe_resume(srv_conn_t *c)
{
    srv_worker_t *w = c->w;
    if (c->reading || c->closing || c->close_after_write || w->draining) {
        return;
    }
    if (c->kind == SRV_CONN_TCP && !tcp_may_read(w, c)) {
        return;
    }
    if (c->kind == SRV_CONN_HTTP && c->out_len > OUT_PAUSE_BYTES) {
        return;
    }
    if (uv_read_start((uv_stream_t *)&c->handle, on_alloc, on_read) == 0) {
        c->reading = 1;
    }
}

static void on_connection(uv_stream_t *server, int status, srv_conn_kind_t kind)
{
    srv_worker_t *w = server->data;
    srv_server_t *s = w->srv;

    if (status < 0) {
        srv_log_error_limited(&rl_accept, "accept failed", "error", uv_strerror(status), NULL);
        return;
    }
    srv_conn_t *c = mem_calloc(1, sizeof(*c));
    if (c == NULL) {
        srv_log_error_limited(&rl_accept, "accept failed", "error", "out of memory", NULL);
        return;
    }
    c->w = w;
    c->kind = kind;
    uv_tcp_init(w->loop, &c->handle);
    c->handle.data = c;
    c->next = w->conns;
    if (w->conns != NULL) {
        w->conns->prev = c;
    }
    w->conns = c;
    if (!w->control) {
        metrics_gauge_add(&w->st.conns_active, 1);
    }
    if (uv_accept(server, (uv_stream_t *)&c->handle) != 0) {
        c->closing = 1;
        uv_close((uv_handle_t *)&c->handle, on_conn_closed);
        return;
    }
    if (!w->control) {
        if ((uint64_t)srv_server_active_conns(s) > s->cfg.max_connections) {
            metrics_counter_add(&w->st.conns_refused, 1);
            c->closing = 1;
            uv_close((uv_handle_t *)&c->handle, on_conn_closed);
            return;
        }
        metrics_counter_add(&w->st.conns_total, 1);
    }
    c->last_active = uv_now(w->loop);
    c->phase_start = c->last_active;
    if (w->control && srv_control_deny(s, &c->handle)) {
        /* Outside --admin-allow: a fixed 403, nothing parsed, then a lingering close. */
        static const char forbidden[] = "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; "
                                        "charset=utf-8\r\nContent-Length: 10\r\nConnection: "
                                        "close\r\n\r\nforbidden\n";
        uv_buf_t b = uv_buf_init((char *)forbidden, sizeof(forbidden) - 1);
        if (uv_try_write((uv_stream_t *)&c->handle, &b, 1) != (int)b.len) {
            conn_close(c);
            return;
        }
        conn_linger(c);
        return;
    }
    if (kind == SRV_CONN_TCP) {
        /* Naive mode allocates every assembly buffer afresh: no stock. */
        ing_frame_stock_t *stock = w->pooled ? &w->stock : NULL;
        ing_frame_init(&c->frame, w->cache, s->cfg.max_event_bytes, stock, mem_realloc, mem_free);
    } else {
        srv_http_limits_t lim = {
            .max_header_bytes = s->cfg.max_header_bytes,
            .max_body_bytes = w->control ? ADMIN_BODY_MAX : s->cfg.max_body_bytes,
            .max_event_bytes = w->control ? ADMIN_BODY_MAX : s->cfg.max_event_bytes,
            .max_errors = SRV_HTTP_DEFAULT_MAX_ERRORS,
            .realloc_fn = mem_realloc,
            .free_fn = mem_free,
        };
        srv_http_cbs_t cbs = {
            .on_event = w->control ? NULL : http_on_event,
            .on_reject = http_on_reject,
            .on_get = http_on_get,
            .on_request = w->control ? srv_control_request : NULL,
            .shedding = w->control ? NULL : http_shedding,
            .send = http_send,
            .on_request_done = w->control ? NULL : http_on_request_done,
        };
        uv_tcp_nodelay(&c->handle, 1);
        srv_http_init(&c->http, &lim, &cbs, c);
    }
    conn_maybe_resume(c);
}

static void on_tcp_connection(uv_stream_t *server, int status)
{
    on_connection(server, status, SRV_CONN_TCP);
}

static void on_http_connection(uv_stream_t *server, int status)
{
    on_connection(server, status, SRV_CONN_HTTP);
}

/* ---- timers ---- */

/* Switches this loop between pooled and naive at a safe point (the wake callback, between
 * reads): the parse path, and the assembly stock of every TCP connection. Blocks and buffers
 * taken in either mode come from the same allocator, so they go back correctly after it. */
static void apply_mode(srv_worker_t *w, int pooled)
{
    if (w->pooled == pooled) {
        return;
    }
    w->pooled = pooled;
    ing_judge_set(&w->judge, pooled ? ING_PARSE_TREE_POOLED : ING_PARSE_TREE_NAIVE);
    for (srv_conn_t *c = w->conns; c != NULL; c = c->next) {
        if (c->kind == SRV_CONN_TCP) {
            c->frame.stock = pooled ? &w->stock : NULL;
        }
    }
    if (!pooled) {
        ing_frame_stock_destroy(&w->stock);
        ing_frame_stock_init(&w->stock, mem_free);
    }
}

void srv_worker_answer_trim(srv_worker_t *w)
{
    srv_server_t *s = w->srv;
    int req = atomic_exchange(&w->trim_req, 0);
    size_t released = 0;
    uint64_t t0;
    uint64_t dt;

    if (req == 0) {
        return;
    }
    t0 = uv_hrtime();
    if (w->cache != NULL) {
        released = pool_cache_trim(w->cache);
        if (req - 1 != SRV_TRIM_TIMER) {
            /* Limit and admin trims go the whole way: the victim-cache trim releases in two
             * steps. */
            released += pool_cache_trim(w->cache);
        }
    }
    dt = uv_hrtime() - t0;
    metrics_hist_observe_ns(&w->st.trim, dt);
    uv_mutex_lock(&s->trim_lock);
    s->trim_answers++;
    s->trim_released += released;
    s->trim_ns += dt;
    uv_cond_signal(&s->trim_cond);
    uv_mutex_unlock(&s->trim_lock);
    uv_async_send(&s->ctl_async);
}

static uint64_t conn_timeout(const srv_conn_t *c, const srv_config_t *cfg, uint64_t *since)
{
    if (c->kind == SRV_CONN_TCP) {
        *since = c->last_active;
        return cfg->idle_timeout_ms;
    }
    *since = c->phase_start;
    switch (c->phase) {
    case SRV_HTTP_HEAD:
        return cfg->header_timeout_ms;
    case SRV_HTTP_BODY:
        return cfg->body_timeout_ms;
    default:
        *since = c->last_active > c->phase_start ? c->last_active : c->phase_start;
        return cfg->idle_timeout_ms;
    }
}

static void on_sweep(uv_timer_t *t)
{
    srv_worker_t *w = t->data;
    uint64_t now = uv_now(w->loop);
    srv_conn_t *next;

    for (srv_conn_t *c = w->conns; c != NULL; c = next) {
        next = c->next;
        uint64_t since;
        uint64_t limit = conn_timeout(c, &w->srv->cfg, &since);
        if (c->closing) {
            continue;
        }
        if (c->lingering) {
            if (now - c->linger_start >= SRV_LINGER_MS) {
                conn_close(c); /* the peer kept sending or stayed open: enough */
            }
            continue;
        }
        if (limit == 0 || now - since < limit) {
            continue;
        }
        if (!c->reading && c->kind == SRV_CONN_TCP) {
            continue; /* paused by us (backpressure): not the client's silence */
        }
        if (!w->control) {
            metrics_counter_add(&w->st.idle_closed, 1);
        }
        if (c->kind == SRV_CONN_HTTP && c->phase != SRV_HTTP_IDLE) {
            srv_http_timeout(&c->http);
            http_finish_feed(c, 1);
        } else {
            conn_close(c);
        }
    }
}

static uint64_t sweep_interval(const srv_config_t *cfg)
{
    uint64_t m = UINT64_MAX;
    const uint64_t t[] = {cfg->idle_timeout_ms, cfg->header_timeout_ms, cfg->body_timeout_ms};
    for (size_t i = 0; i < 3; i++) {
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

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void close_if_open(uv_handle_t *h)
{
    if (h->loop != NULL && !uv_is_closing(h)) {
        uv_close(h, on_handle_closed);
    }
}

static void start_drain(srv_worker_t *w)
{
    srv_conn_t *next;

    w->draining = 1;
    if (w->listeners_open) {
        w->listeners_open = 0;
        if (w->tcp_fd >= 0) {
            close_if_open((uv_handle_t *)&w->tcp_listener);
        }
        if (w->http_fd >= 0) {
            close_if_open((uv_handle_t *)&w->http_listener);
        }
    }
    /* Every byte already read has been processed in its read callback; what is left is the
     * partial line of each TCP connection (truncated) and HTTP bodies cut short. */
    for (srv_conn_t *c = w->conns; c != NULL; c = next) {
        next = c->next;
        if (c->kind == SRV_CONN_HTTP && !c->closing) {
            srv_http_eof(&c->http);
        }
        conn_close(c);
    }
    sink_writer_destroy(w->sink_w);
    w->sink_w = NULL;
    close_if_open((uv_handle_t *)&w->trim_timer);
    close_if_open((uv_handle_t *)&w->sweep_timer);
    uv_mutex_lock(&w->srv->wake_lock);
    srv_worker_answer_trim(w); /* a request sent before the close is answered */
    close_if_open((uv_handle_t *)&w->wake);
    w->wake_closed = 1;
    uv_mutex_unlock(&w->srv->wake_lock);
}

void srv_worker_poll_flags(srv_worker_t *w)
{
    srv_server_t *s = w->srv;

    if (w->draining) {
        return;
    }
    if (atomic_load(&s->draining)) {
        start_drain(w);
        return;
    }
    if (!w->control) {
        apply_mode(w, atomic_load(&s->pooled));
        srv_worker_answer_trim(w);
    }
    int over = atomic_load(&s->mem_over);
    if (w->control) {
        w->mem_paused = over;
    } else if (over) {
        /* The control wakes every worker each memory check while over: probes rotate. */
        w->mem_paused = 1;
        limit_rebalance(w);
    } else if (w->mem_paused) {
        w->mem_paused = 0;
        if (!w->sink_full && !w->draining) {
            resume_reads(w);
        }
    }
}

static void on_wake(uv_async_t *a)
{
    srv_worker_poll_flags(a->data);
}

/* ---- set-up ---- */

static int open_listener(srv_worker_t *w, uv_tcp_t *h, int fd, uv_connection_cb cb)
{
    int r = uv_tcp_init(w->loop, h);
    if (r != 0) {
        return r;
    }
    h->data = w;
    r = uv_tcp_open(h, fd);
    if (r == 0) {
        r = uv_listen((uv_stream_t *)h, 1024, cb);
    }
    return r;
}

int srv_worker_setup(srv_worker_t *w)
{
    srv_server_t *s = w->srv;
    int r;

    metrics_writer_init(&w->scratch);
    ing_frame_stock_init(&w->stock, mem_free);
    r = pool_cache_create(s->pool, &w->cache);
    if (r != 0) {
        srv_log("error", "pool cache", "error", strerror(-r), NULL);
        return r;
    }
    w->pooled = atomic_load(&s->pooled);
    ing_judge_init(&w->judge, w->pooled ? ING_PARSE_TREE_POOLED : ING_PARSE_TREE_NAIVE, w->cache,
                   mem_malloc, mem_free);
    if (!w->control) {
        r = sink_writer_create(s->sink, w->loop, on_sink_writable, w, &w->sink_w);
        if (r != 0) {
            srv_log("error", "sink writer", "error", strerror(r < 0 ? -r : r), NULL);
            return r;
        }
    }
    if (w->tcp_fd >= 0) {
        r = open_listener(w, &w->tcp_listener, w->tcp_fd, on_tcp_connection);
        if (r != 0) {
            srv_log("error", "tcp listen", "error", uv_strerror(r), NULL);
            return r;
        }
    }
    if (w->http_fd >= 0) {
        r = open_listener(w, &w->http_listener, w->http_fd, on_http_connection);
        if (r != 0) {
            srv_log("error", "http listen", "error", uv_strerror(r), NULL);
            return r;
        }
    }
    w->listeners_open = 1;
    if (!w->control) {
        /* Trims are started by the control loop's --trim-interval timer (control.c). */
        uv_timer_init(w->loop, &w->trim_timer);
        w->trim_timer.data = w;
    }
    uv_timer_init(w->loop, &w->sweep_timer);
    w->sweep_timer.data = w;
    uint64_t iv = sweep_interval(&s->cfg);
    if (iv != 0) {
        uv_timer_start(&w->sweep_timer, on_sweep, iv, iv);
    }
    return 0;
}

void srv_worker_run(srv_worker_t *w)
{
    uv_run(w->loop, UV_RUN_DEFAULT);
}

void srv_worker_teardown(srv_worker_t *w)
{
    if (!w->draining) {
        start_drain(w);
    }
    uv_run(w->loop, UV_RUN_DEFAULT);
    ing_judge_destroy(&w->judge);
    ing_frame_stock_destroy(&w->stock);
    pool_cache_destroy(w->cache);
    w->cache = NULL;
    metrics_writer_free(&w->scratch);
}

int srv_worker_init_handles(srv_worker_t *w)
{
    int r = uv_async_init(w->loop, &w->wake, on_wake);
    w->wake.data = w;
    return r;
}
