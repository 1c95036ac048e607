/* server/control.c - the control loop (control.h): admin listener and requests, signals, memory
 * limit, trim cycles, drain, start line and summary, all on the main thread.
 *
 * Admin requests never run on an ingest worker's loop. The one exception is the pool trim
 * itself: a pool cache is owner-thread-only, so a trim cycle (timer, memory limit or POST
 * /debug/trim) asks each worker (srv_worker_request_trim); the worker trims its own cache at a
 * safe point between reads and answers through the rendezvous (trim.h). */
#include "server/control.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mem/allocprof.h"
#include "mem/mem.h"
#include "server/admin.h"
#include "server/allow.h"
#include "server/conn.h"
#include "server/expo.h"
#include "server/log.h"
#include "server/notify.h"

#ifndef INGESTD_VERSION
#define INGESTD_VERSION "0.0.0"
#endif

/* How often the control loop compares live bytes with --memory-limit. */
#define MEM_CHECK_MS 50
/* How long POST /debug/trim waits for the workers' answers. */
#define TRIM_WAIT_NS (2ull * 1000 * 1000 * 1000)
/* Largest admin request body (PUT /debug/config). */
#define ADMIN_BODY_MAX (64 * 1024)

struct srv_control {
    srv_shared_t *sh;
    const srv_config_t *cfg;
    srv_worker_t **workers;
    uv_loop_t loop;
    uv_signal_t sig_term;
    uv_signal_t sig_int;
    uv_signal_t sig_hup;
    uv_timer_t mem_timer;
    uv_timer_t shutdown_timer;
    uv_timer_t trim_timer;          /* --trim-interval: starts a trim cycle on every worker */
    uv_timer_t sweep_timer;         /* admin connections: timeouts and lingering closes */
    srv_notify_watchdog_t watchdog; /* systemd WATCHDOG=1 pings, when WATCHDOG_USEC asks */
    int admin_fd;
    uv_tcp_t admin_listener;
    base_list_t conns;        /* admin connections */
    char rbuf[4096];          /* every admin read lands here (one read at a time on this loop) */
    char *admin_body;         /* the last admin reply body (open_memstream; libc's) */
    metrics_writer_t scratch; /* GET /metrics on the admin listener */
    unsigned started;         /* workers started */
    int announced;
    int finished;
    int draining;
    int exit_code;
    uint64_t drain_start_ms;
    char text[3][80]; /* tcp, http, admin as bound */
};

static srv_ratelimit_t rl_denied;
static srv_ratelimit_t rl_mem;
static srv_ratelimit_t rl_io;

static uint64_t rss_bytes(void)
{
    metrics_process_t pr;
    return metrics_process_read(&pr) == 0 ? pr.resident_memory_bytes : 0;
}

static void wake_all(srv_control_t *c)
{
    for (unsigned i = 0; i < c->started; i++) {
        srv_worker_wake(c->workers[i]);
    }
}

/* ---- trim cycles ---- */

/* Starts a trim cycle unless one is running (a limit trim then runs right after it). */
static void trim_begin(srv_control_t *c, srv_trim_reason_t reason)
{
    srv_trim_t *t = &c->sh->trim;
    pool_stats_t ps;
    unsigned n = 0;

    if (t->active) {
        if (reason == SRV_TRIM_LIMIT) {
            t->pending = 1; /* runs when the current cycle ends: it must not be lost */
        }
        return;
    }
    pool_stats(c->sh->pool, &ps);
    memset(&t->m, 0, sizeof(t->m));
    t->m.reason = reason;
    t->m.in_use_before = ps.in_use > 0 ? (uint64_t)ps.in_use : 0;
    t->m.idle_before = ps.idle > 0 ? (uint64_t)ps.idle : 0;
    t->m.since_start_us = (uv_hrtime() - c->sh->start_ns) / 1000;
    srv_trim_begin(t, c->started); /* before asking: an answer may come at once */
    for (unsigned i = 0; i < c->started; i++) {
        n += (unsigned)srv_worker_request_trim(c->workers[i], reason);
    }
    t->expected = n;
}

/* Fills the figures after the trim and writes the memtrace line. */
static void trim_finish(srv_control_t *c)
{
    srv_trim_t *t = &c->sh->trim;
    pool_stats_t ps;
    mem_stats_t ms;
    uint64_t released;
    uint64_t ns;

    pool_stats(c->sh->pool, &ps);
    mem_stats(&ms);
    srv_trim_collect(t, &released, &ns);
    t->m.released_bytes = released * POOL_BLOCK_SIZE;
    t->m.duration_ns = ns;
    t->m.cycle = ++t->cycle;
    t->m.in_use_after = ps.in_use > 0 ? (uint64_t)ps.in_use : 0;
    t->m.idle_after = ps.idle > 0 ? (uint64_t)ps.idle : 0;
    t->m.live_bytes = ms.alloc_bytes > 0 ? (uint64_t)ms.alloc_bytes : 0;
    t->m.sys_bytes = mem_sys_bytes();
    t->m.rss_bytes = rss_bytes();
    t->active = 0;
    if (c->cfg->memtrace) {
        (void)srv_memtrace_emit(2, &t->m);
    }
}

static void trim_poll(srv_control_t *c)
{
    srv_trim_t *t = &c->sh->trim;
    if (t->active && srv_trim_done(t)) {
        trim_finish(c);
    }
    if (!t->active && t->pending) {
        t->pending = 0;
        if (atomic_load(&c->sh->mem_over) && !c->draining) {
            trim_begin(c, SRV_TRIM_LIMIT);
        }
    }
}

static void on_trim_timer(uv_timer_t *h)
{
    srv_control_t *c = h->data;
    if (!c->draining) {
        trim_begin(c, SRV_TRIM_TIMER);
    }
}

static void restart_trim_timer(srv_control_t *c)
{
    uint64_t iv = atomic_load(&c->sh->trim_interval_ms);
    uv_timer_stop(&c->trim_timer);
    if (iv != 0 && !c->draining) {
        (void)uv_timer_start(&c->trim_timer, on_trim_timer, iv, iv);
    }
}

/* ---- the memory limit ---- */

static void on_mem_check(uv_timer_t *h)
{
    srv_control_t *c = h->data;
    srv_shared_t *sh = c->sh;
    mem_stats_t st;

    mem_stats(&st);
    uint64_t limit = atomic_load(&sh->memory_limit);
    int over = limit != 0 && st.alloc_bytes > 0 && (uint64_t)st.alloc_bytes > limit;
    if (over != atomic_load(&sh->mem_over)) {
        char live[32];
        snprintf(live, sizeof(live), "%lld", (long long)st.alloc_bytes);
        if (over) {
            srv_log_error_limited(&rl_mem, "memory limit exceeded: trimming, reading paused",
                                  "alloc_bytes", live, NULL);
        }
        atomic_store(&sh->mem_over, over);
        wake_all(c);
        if (over) {
            trim_begin(c, SRV_TRIM_LIMIT);
        }
    } else if (over) {
        /* Still over: blocks given back since the last trim are released at once, and every
         * worker re-decides who may read (policy.h: lines held keep reading, and with none
         * held a few paused connections take their turn). */
        pool_stats_t ps;
        pool_stats(sh->pool, &ps);
        if (ps.idle > 0) {
            trim_begin(c, SRV_TRIM_LIMIT);
        }
        wake_all(c);
    }
}

static void limit_changed(srv_control_t *c)
{
    if (c->draining) {
        return;
    }
    if (!uv_is_active((uv_handle_t *)&c->mem_timer)) {
        (void)uv_timer_start(&c->mem_timer, on_mem_check, MEM_CHECK_MS, MEM_CHECK_MS);
    }
    on_mem_check(&c->mem_timer); /* lifts a pause at once when the limit went up or off */
}

/* ---- admin requests ---- */

static void current_levers(srv_control_t *c, srv_levers_t *l)
{
    l->pool = atomic_load(&c->sh->pooled);
    l->parse = atomic_load(&c->sh->parse);
    l->pool_retain = pool_retain(c->sh->pool);
    l->trim_interval_ms = atomic_load(&c->sh->trim_interval_ms);
    l->memory_limit = atomic_load(&c->sh->memory_limit);
}

static int write_vars(srv_control_t *c, FILE *out)
{
    srv_snapshot_t s;
    srv_vars_t v;

    if (srv_expo_snapshot(c->sh, &s) != 0) {
        srv_expo_release(&s);
        return -ENOMEM;
    }
    srv_expo_vars(c->sh, &s, &v);
    current_levers(c, &v.levers);
    int r = srv_admin_write_vars(out, &v);
    srv_expo_release(&s);
    return r;
}

static int write_pool(srv_control_t *c, FILE *out)
{
    srv_shared_t *sh = c->sh;
    srv_levers_t l;
    pool_stats_t total;
    pool_stats_t *per = mem_calloc(sh->nworkers, sizeof(*per));
    size_t n = 0;

    if (per == NULL) {
        return -ENOMEM;
    }
    current_levers(c, &l);
    pool_stats(sh->pool, &total);
    if (srv_shared_workers_live(sh)) {
        for (unsigned i = 0; i < sh->nworkers; i++) {
            pool_cache_stats(sh->caches[i], &per[n++]);
        }
    }
    int r = srv_admin_write_pool(out, &l, &total, per, n);
    mem_free(per);
    return r;
}

static int do_trim(srv_control_t *c, FILE *out)
{
    srv_trim_t *t = &c->sh->trim;
    srv_trim_report_t rep;
    mem_stats_t ms;

    memset(&rep, 0, sizeof(rep));
    if (t->active) {
        /* A timer or limit cycle is running: let it finish first. */
        (void)srv_trim_wait(t, TRIM_WAIT_NS);
        trim_finish(c);
    }
    uint64_t t0 = uv_hrtime();
    mem_stats(&ms);
    rep.live_before = ms.alloc_bytes > 0 ? (uint64_t)ms.alloc_bytes : 0;
    rep.sys_before = mem_sys_bytes();
    rep.rss_before = rss_bytes();
    trim_begin(c, SRV_TRIM_ADMIN);
    int all = srv_trim_wait(t, TRIM_WAIT_NS);
    mem_release_to_os();
    trim_finish(c);
    rep.duration_ns = uv_hrtime() - t0;
    rep.blocks_released = t->m.released_bytes / POOL_BLOCK_SIZE;
    rep.bytes_released = t->m.released_bytes;
    mem_stats(&ms);
    rep.live_after = ms.alloc_bytes > 0 ? (uint64_t)ms.alloc_bytes : 0;
    rep.sys_after = mem_sys_bytes();
    rep.rss_after = rss_bytes();
    if (!all) {
        srv_log("warn", "admin trim: not every worker answered in time", NULL);
    }
    return srv_admin_write_trim(out, &rep);
}

/* Applies the levers a PUT changed. */
static void apply_levers(srv_control_t *c, const srv_levers_t *next, unsigned changed)
{
    srv_shared_t *sh = c->sh;
    if (changed & SRV_LEVER_RETAIN) {
        pool_set_retain(sh->pool, next->pool_retain);
    }
    if (changed & SRV_LEVER_TRIM) {
        atomic_store(&sh->trim_interval_ms, next->trim_interval_ms);
        restart_trim_timer(c);
    }
    if (changed & SRV_LEVER_LIMIT) {
        atomic_store(&sh->memory_limit, next->memory_limit);
        limit_changed(c);
    }
    if (changed & SRV_LEVER_PARSE) {
        atomic_store(&sh->parse, next->parse);
        wake_all(c); /* each worker swaps its judge's strategy between reads */
    }
    if (changed & SRV_LEVER_POOL) {
        atomic_store(&sh->pooled, next->pool);
        (void)pool_set_mode(sh->pool, next->pool ? POOL_MODE_POOLED : POOL_MODE_NAIVE);
        wake_all(c); /* each worker switches in its wake callback, between reads */
    }
    char v[160];
    FILE *f = fmemopen(v, sizeof(v), "w");
    if (f != NULL) {
        (void)srv_admin_write_config(f, next);
        fclose(f);
        v[sizeof(v) - 1] = '\0';
        v[strcspn(v, "\n")] = '\0';
        srv_log("info", "admin: levers changed", "config", v, NULL);
    }
}

static void reply_text(srv_http_reply_t *reply, int status, const char *text)
{
    reply->status = status;
    reply->body = text;
    reply->body_len = strlen(text);
}

/* Writes endpoint ep's reply body to out; sets *ctype and *status. Returns 0 or a negative
 * errno when writing failed. */
static int serve(srv_control_t *c, srv_admin_endpoint_t ep, const char *query, const char *body,
                 size_t body_len, FILE *out, const char **ctype, int *status)
{
    char err[256];
    int r = 0;

    *ctype = "application/json";
    *status = 200;
    switch (ep) {
    case SRV_ADMIN_VARS:
        r = write_vars(c, out);
        break;
    case SRV_ADMIN_POOL:
        r = write_pool(c, out);
        break;
    case SRV_ADMIN_HEAP:
        *ctype = "text/plain; charset=utf-8";
        r = mem_write_report(out);
        break;
    case SRV_ADMIN_ALLOCS:
        *ctype = "text/plain; charset=utf-8";
        *status = srv_admin_allocs(out, query, err, sizeof(err));
        if (*status != 200) {
            rewind(out);
            *ctype = "application/json";
            r = srv_admin_write_error(out, err);
        }
        break;
    case SRV_ADMIN_TRIM:
        r = do_trim(c, out);
        break;
    case SRV_ADMIN_CONFIG_GET: {
        srv_levers_t l;
        current_levers(c, &l);
        r = srv_admin_write_config(out, &l);
        break;
    }
    case SRV_ADMIN_CONFIG_PUT: {
        srv_levers_t cur, next;
        unsigned changed = 0;
        current_levers(c, &cur);
        *status = srv_admin_config_put(body != NULL ? body : "", body_len, &cur, &next, &changed,
                                       err, sizeof(err));
        if (*status != 200) {
            r = srv_admin_write_error(out, err);
        } else {
            if (changed != 0) {
                apply_levers(c, &next, changed);
            }
            r = srv_admin_write_config(out, &next);
        }
        break;
    }
    }
    return r;
}

static void admin_request(void *ctx, const char *method, const char *path, const char *query,
                          const char *body, size_t body_len, srv_http_reply_t *reply)
{
    srv_conn_t *conn = ctx;
    srv_control_t *c = conn->owner;
    srv_admin_endpoint_t ep;
    const char *allow = NULL;
    size_t len = 0;
    int status = 200;

    free(c->admin_body); /* open_memstream's buffer: libc's, not the counting layer's */
    c->admin_body = NULL;
    atomic_fetch_add(&c->sh->admin_requests, 1);

    int route = srv_admin_route(method, path, &ep, &allow);
    if (route == 404) {
        int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
        if (srv_expo_get(c->sh, path, get ? reply : NULL, &c->scratch) == 0) {
            if (!get) {
                reply_text(reply, 405, "method not allowed\n");
                reply->extra_headers = "Allow: GET, HEAD\r\n";
            }
            return;
        }
        reply_text(reply, 404, "not found\n");
        return;
    }
    if (route == 405) {
        static char hdr[96];
        snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", allow);
        reply_text(reply, 405, "method not allowed\n");
        reply->extra_headers = hdr;
        return;
    }

    FILE *out = open_memstream(&c->admin_body, &len);
    if (out == NULL) {
        reply_text(reply, 500, "out of memory\n");
        return;
    }
    const char *ctype;
    int r = serve(c, ep, query, body, body_len, out, &ctype, &status);
    if (fclose(out) != 0 || r < 0) {
        reply_text(reply, 500, "cannot write the reply\n");
        return;
    }
    reply->status = status;
    reply->content_type = ctype;
    reply->body = c->admin_body;
    reply->body_len = len;
}

/* ---- admin connections ---- */

static void admin_alloc(srv_conn_t *conn, uv_buf_t *buf)
{
    srv_control_t *c = conn->owner;
    *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void admin_read(srv_conn_t *conn, ssize_t n, const uv_buf_t *buf)
{
    srv_control_t *c = conn->owner;
    if (n < 0) {
        srv_conn_http_eof(conn);
        return;
    }
    srv_conn_http_feed(conn, buf->base, (size_t)n);
    free(c->admin_body); /* the reply was copied into the connection's output */
    c->admin_body = NULL;
    if (c->scratch.cap > 64 * 1024) {
        metrics_writer_free(&c->scratch);
        metrics_writer_init(&c->scratch);
    }
}

static void admin_closed(srv_conn_t *conn)
{
    srv_control_t *c = conn->owner;
    base_list_unlink(&c->conns, &conn->link);
    srv_conn_cleanup(conn);
    mem_free(conn);
}

static void admin_drained(srv_conn_t *conn)
{
    srv_control_t *c = conn->owner;
    if (!c->draining) {
        (void)srv_conn_read_start(conn);
    }
}

static void admin_error(srv_conn_t *conn, srv_conn_error_t e, int status)
{
    (void)conn;
    (void)e;
    srv_log_error_limited(&rl_io, "admin connection error", "error",
                          status != 0 ? uv_strerror(status) : "out of memory", NULL);
}

static void on_admin_sweep(uv_timer_t *h);

static void admin_linger(srv_conn_t *conn)
{
    srv_control_t *c = conn->owner;
    if (!uv_is_active((uv_handle_t *)&c->sweep_timer)) {
        (void)uv_timer_start(&c->sweep_timer, on_admin_sweep, 250, 250);
    }
}

static const srv_conn_ops_t admin_ops = {
    .alloc = admin_alloc,
    .on_read = admin_read,
    .on_drained = admin_drained,
    .on_closed = admin_closed,
    .on_error = admin_error,
    .on_linger = admin_linger,
};

/* Closes admin connections past their header/body/idle timeout or their lingering time. */
static void on_admin_sweep(uv_timer_t *h)
{
    srv_control_t *c = h->data;
    const srv_config_t *cfg = c->cfg;
    uint64_t now = uv_now(&c->loop);
    base_link_t *next;

    for (base_link_t *l = c->conns.head; l != NULL; l = next) {
        srv_conn_t *conn = BASE_CONTAINER(l, srv_conn_t, link);
        next = l->next;
        uint64_t since;
        uint64_t limit = srv_conn_timeout(conn, cfg->idle_timeout_ms, cfg->header_timeout_ms,
                                          cfg->body_timeout_ms, &since);
        if (conn->state == SRV_CONN_CLOSING || srv_conn_linger_expired(conn, now)) {
            continue;
        }
        if (limit != 0 && now - since >= limit) {
            if (conn->phase != SRV_HTTP_IDLE) {
                srv_conn_http_timeout(conn);
            } else {
                srv_conn_close(conn);
            }
        }
    }
}

/* 1 when the peer of a just-accepted admin connection is outside --admin-allow (counted and
 * logged, rate-limited). */
static int admin_denied(srv_control_t *c, const uv_tcp_t *h)
{
    struct sockaddr_storage peer;
    int len = sizeof(peer);
    char host[64] = "?";

    if (uv_tcp_getpeername(h, (struct sockaddr *)&peer, &len) == 0 &&
        srv_allow_match(&c->cfg->admin_allow, (const struct sockaddr *)&peer)) {
        return 0;
    }
    atomic_fetch_add(&c->sh->admin_denied, 1);
    if (peer.ss_family == AF_INET6) {
        uv_ip6_name((const struct sockaddr_in6 *)&peer, host, sizeof(host));
    } else if (peer.ss_family == AF_INET) {
        uv_ip4_name((const struct sockaddr_in *)&peer, host, sizeof(host));
    }
    srv_log_error_limited(&rl_denied, "admin request denied: peer outside --admin-allow", "peer",
                          host, NULL);
    return 1;
}

static void on_admin_connection(uv_stream_t *server, int status)
{
    srv_control_t *c = server->data;

    srv_conn_t *conn = srv_conn_new(status, &c->conns, "admin");
    if (conn == NULL) {
        return;
    }
    if (srv_conn_accept(conn, &c->loop, server, SRV_CONN_HTTP, &admin_ops, c) != 0) {
        return; /* admin_closed frees it */
    }
    srv_http_limits_t lim = {
        .max_header_bytes = c->cfg->max_header_bytes,
        .max_body_bytes = ADMIN_BODY_MAX,
        .max_event_bytes = ADMIN_BODY_MAX,
        .max_errors = SRV_HTTP_DEFAULT_MAX_ERRORS,
        .realloc_fn = mem_realloc,
        .free_fn = mem_free,
    };
    srv_http_cbs_t cbs = {.on_request = admin_request};
    srv_conn_http_init(conn, &lim, &cbs);
    if (admin_denied(c, &conn->handle)) {
        /* Outside --admin-allow: a fixed 403, nothing parsed, then a lingering close. */
        static const char forbidden[] = "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; "
                                        "charset=utf-8\r\nContent-Length: 10\r\nConnection: "
                                        "close\r\n\r\nforbidden\n";
        uv_buf_t b = uv_buf_init((char *)forbidden, sizeof(forbidden) - 1);
        if (uv_try_write((uv_stream_t *)&conn->handle, &b, 1) != (int)b.len) {
            srv_conn_close(conn);
            return;
        }
        srv_conn_linger(conn);
        return;
    }
    (void)srv_conn_read_start(conn);
}

/* ---- drain, start line, summary ---- */

static void on_shutdown_timeout(uv_timer_t *h)
{
    srv_control_t *c = h->data;
    char ms[32];
    snprintf(ms, sizeof(ms), "%llu", (unsigned long long)c->cfg->shutdown_timeout_ms);
    srv_log("error", "shutdown timed out", "shutdown_timeout_ms", ms, NULL);
    _exit(1);
}

static void begin_drain(srv_control_t *c, const char *why)
{
    if (c->draining) {
        return;
    }
    srv_log("info", "draining", "reason", why, NULL);
    (void)srv_notify_stopping();
    c->draining = 1;
    c->drain_start_ms = uv_now(&c->loop);
    atomic_store(&c->sh->draining, 1);
    uv_timer_stop(&c->mem_timer);
    uv_timer_stop(&c->trim_timer);
    (void)uv_timer_start(&c->shutdown_timer, on_shutdown_timeout, c->cfg->shutdown_timeout_ms, 0);
    wake_all(c);
}

static void announce(srv_control_t *c)
{
    const char *kv[2 * 32];
    char vals[32][160];
    size_t n = 0;
    const char *name;

    kv[0] = "tcp";
    kv[1] = c->text[0];
    kv[2] = "http";
    kv[3] = c->text[1];
    kv[4] = "admin";
    kv[5] = c->text[2];
    n = 3;
    kv[2 * n] = "version";
    kv[2 * n + 1] = INGESTD_VERSION;
    n++;
    kv[2 * n] = "allocator_verified";
    kv[2 * n + 1] = c->sh->allocator_verified ? "yes" : "no";
    n++;
    for (size_t i = 0; n < 32 && srv_config_item(c->cfg, i, &name, vals[i], sizeof(vals[i])) == 0;
         i++) {
        if (strcmp(name, "tcp") == 0 || strcmp(name, "http") == 0 || strcmp(name, "admin") == 0) {
            continue;
        }
        kv[2 * n] = name;
        kv[2 * n + 1] = vals[i];
        n++;
    }
    srv_log_kv("info", "listening", kv, n);
}

/* The process's peak resident set (VmHWM), in bytes; 0 when unknown. getrusage's ru_maxrss
 * counts the peak of the process image before exec too, so it misreported. */
static uint64_t peak_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[128];
    unsigned long long kb = 0;

    if (f == NULL) {
        return 0;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmHWM: %llu kB", &kb) == 1) {
            break;
        }
    }
    fclose(f);
    return (uint64_t)kb * 1024u;
}

static void summary(srv_control_t *c, int sink_rc, uint64_t not_stored)
{
    srv_snapshot_t s;
    char v[16][48];
    const char *kv[32];
    size_t n = 0;

    (void)srv_expo_snapshot(c->sh, &s);
#define KV(key, fmt, val)                                                                          \
    do {                                                                                           \
        snprintf(v[n], sizeof(v[n]), fmt, val);                                                    \
        kv[2 * n] = key;                                                                           \
        kv[2 * n + 1] = v[n];                                                                      \
        n++;                                                                                       \
    } while (0)
    KV("events_accepted", "%llu", (unsigned long long)s.accepted);
    char keys[ING_VERDICT_COUNT][32];
    for (int r = 1; r < ING_VERDICT_COUNT; r++) {
        snprintf(keys[r], sizeof(keys[r]), "rejected_%s", ing_verdict_name((ing_verdict_t)r));
        KV(keys[r], "%llu", (unsigned long long)s.rejected[r]);
    }
    KV("bytes_tcp", "%llu", (unsigned long long)s.bytes_tcp);
    KV("bytes_http", "%llu", (unsigned long long)s.bytes_http);
    KV("peak_rss_bytes", "%llu", (unsigned long long)peak_rss_bytes());
    KV("drain_ms", "%llu", (unsigned long long)(uv_now(&c->loop) - c->drain_start_ms));
    KV("events_not_stored", "%llu", (unsigned long long)not_stored);
    KV("sink_error", "%s", sink_rc == 0 ? "none" : strerror(-sink_rc));
#undef KV
    srv_expo_release(&s);
    srv_log_kv("info", "shutdown", kv, n);
}

static void close_handle(uv_handle_t *h)
{
    if (h->loop != NULL && !uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

/* Every worker is done: close the sink, log the summary, close the admin side. */
static void finish(srv_control_t *c)
{
    base_link_t *next;

    c->finished = 1;
    uv_timer_stop(&c->shutdown_timer);
    /* Every writer was destroyed by its worker's drain, which settled it: what was given up is
     * counted by now; sink_close only flushes what is left. */
    sink_stats_t ss;
    sink_stats(c->sh->sink, &ss);
    int rc = sink_close(c->sh->sink);
    c->sh->sink = NULL;
    summary(c, rc, ss.events_lost);
    if (rc != 0) {
        c->exit_code = 1;
    }
    for (base_link_t *l = c->conns.head; l != NULL; l = next) {
        next = l->next;
        srv_conn_close(BASE_CONTAINER(l, srv_conn_t, link));
    }
    close_handle((uv_handle_t *)&c->admin_listener);
    close_handle((uv_handle_t *)&c->sh->ctl_async);
    close_handle((uv_handle_t *)&c->sig_term);
    close_handle((uv_handle_t *)&c->sig_int);
    close_handle((uv_handle_t *)&c->sig_hup);
    close_handle((uv_handle_t *)&c->mem_timer);
    close_handle((uv_handle_t *)&c->shutdown_timer);
    close_handle((uv_handle_t *)&c->trim_timer);
    close_handle((uv_handle_t *)&c->sweep_timer);
    srv_notify_watchdog_close(&c->watchdog);
}

static void on_ctl_async(uv_async_t *a)
{
    srv_control_t *c = a->data;
    srv_shared_t *sh = c->sh;

    if (atomic_load(&sh->failed) > 0 && !c->draining) {
        c->exit_code = 1;
        begin_drain(c, "start-up failed");
    }
    trim_poll(c);
    if (!c->announced && atomic_load(&sh->ready) == sh->nworkers) {
        c->announced = 1;
        announce(c);
        /* systemd Type=notify: every listener is bound and the sink is open. The status line
         * carries the bound addresses (integration.systemd_notify reads the ports from it). */
        char st[320];
        snprintf(st, sizeof(st), "listening tcp=%s http=%s admin=%s", c->text[0], c->text[1],
                 c->text[2]);
        (void)srv_notify_ready(st);
    }
    if (c->draining && atomic_load(&sh->done) == sh->nworkers && !c->finished) {
        finish(c);
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    srv_control_t *c = h->data;
    if (signum == SIGHUP) {
        srv_log("info", "reopening sink", "sink", c->cfg->sink, NULL);
        sink_reopen(c->sh->sink);
        if (c->sh->auth != NULL) {
            (void)srv_server_load_tokens(c->sh); /* a failure is logged; the old set stays */
        }
        return;
    }
    if (c->draining) {
        srv_log("error", "second signal during drain: exiting now", NULL);
        _exit(1);
    }
    begin_drain(c, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ---- life ---- */

/* Every handle of the control loop, initialised and started; each failure is logged. */
static int setup(srv_control_t *c)
{
    struct {
        int r;
        const char *what;
    } steps[16];
    size_t n = 0;
#define STEP(call, label)                                                                          \
    do {                                                                                           \
        steps[n].r = (call);                                                                       \
        steps[n++].what = (label);                                                                 \
    } while (0)
    STEP(uv_async_init(&c->loop, &c->sh->ctl_async, on_ctl_async), "control async");
    STEP(uv_signal_init(&c->loop, &c->sig_term), "signal handle");
    STEP(uv_signal_init(&c->loop, &c->sig_int), "signal handle");
    STEP(uv_signal_init(&c->loop, &c->sig_hup), "signal handle");
    STEP(uv_timer_init(&c->loop, &c->mem_timer), "timer");
    STEP(uv_timer_init(&c->loop, &c->shutdown_timer), "timer");
    STEP(uv_timer_init(&c->loop, &c->trim_timer), "timer");
    STEP(uv_timer_init(&c->loop, &c->sweep_timer), "timer");
    c->sh->ctl_async.data = c;
    c->sig_term.data = c->sig_int.data = c->sig_hup.data = c;
    c->mem_timer.data = c->shutdown_timer.data = c->trim_timer.data = c->sweep_timer.data = c;
    STEP(uv_signal_start(&c->sig_term, on_signal, SIGTERM), "SIGTERM handler");
    STEP(uv_signal_start(&c->sig_int, on_signal, SIGINT), "SIGINT handler");
    STEP(uv_signal_start(&c->sig_hup, on_signal, SIGHUP), "SIGHUP handler");
    if (c->cfg->memory_limit != 0) {
        STEP(uv_timer_start(&c->mem_timer, on_mem_check, MEM_CHECK_MS, MEM_CHECK_MS),
             "memory-limit timer");
    }
    if (c->admin_fd >= 0) {
        int r = uv_tcp_init(&c->loop, &c->admin_listener);
        if (r == 0) {
            c->admin_listener.data = c;
            r = uv_tcp_open(&c->admin_listener, c->admin_fd);
            if (r == 0) {
                c->admin_fd = -1; /* closed with the handle */
                r = uv_listen((uv_stream_t *)&c->admin_listener, 128, on_admin_connection);
            }
        }
        STEP(r, "admin listen");
    }
#undef STEP
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (steps[i].r != 0) {
            srv_log("error", "control loop set-up failed", "what", steps[i].what, "error",
                    uv_strerror(steps[i].r), NULL);
            failed = 1;
        }
    }
    if (srv_notify_watchdog_start(&c->watchdog, &c->loop) != 0) {
        srv_log("error", "bad WATCHDOG_USEC or WATCHDOG_PID: no systemd watchdog pings", NULL);
    }
    restart_trim_timer(c);
    return failed ? -EIO : 0;
}

int srv_control_create(srv_shared_t *sh, srv_worker_t **workers, int admin_fd,
                       const srv_listen_text_t *text, srv_control_t **out)
{
    srv_control_t *c = mem_calloc(1, sizeof(*c));
    if (c == NULL) {
        return -ENOMEM;
    }
    int r = uv_loop_init(&c->loop);
    if (r != 0) {
        mem_free(c);
        return r;
    }
    c->sh = sh;
    c->cfg = sh->cfg;
    c->workers = workers;
    c->admin_fd = admin_fd;
    metrics_writer_init(&c->scratch);
    snprintf(c->text[0], sizeof(c->text[0]), "%s", text->tcp);
    snprintf(c->text[1], sizeof(c->text[1]), "%s", text->http);
    snprintf(c->text[2], sizeof(c->text[2]), "%s", text->admin);
    *out = c;
    return 0;
}

int srv_control_run(srv_control_t *c)
{
    srv_shared_t *sh = c->sh;
    char buf[SRV_ALLOW_TEXTLEN + 160];

    if (c->cfg->admin.enabled &&
        srv_allow_bind_warning((const struct sockaddr *)&c->cfg->admin.addr, &c->cfg->admin_allow,
                               buf, sizeof(buf))) {
        srv_log("warn", buf, NULL);
    }
    if (setup(c) != 0) {
        c->exit_code = 1;
        atomic_fetch_add(&sh->failed, 1);
    }
    for (unsigned i = 0; i < sh->nworkers; i++) {
        int r = srv_worker_start(c->workers[i]);
        if (r != 0) {
            srv_log("error", "cannot start worker", "error", uv_strerror(r), NULL);
            c->exit_code = 1;
            break;
        }
        c->started++;
    }
    if (c->started < sh->nworkers) {
        /* Workers never started count as done; the ones running are drained. */
        atomic_fetch_add(&sh->done, sh->nworkers - c->started);
        atomic_fetch_add(&sh->failed, 1);
    }
    if (atomic_load(&sh->failed) > 0) {
        uv_async_send(&sh->ctl_async);
    }
    uv_run(&c->loop, UV_RUN_DEFAULT);
    for (unsigned i = 0; i < c->started; i++) {
        srv_worker_join(c->workers[i]);
    }
    return c->exit_code;
}

void srv_control_destroy(srv_control_t *c)
{
    if (c == NULL) {
        return;
    }
    uv_run(&c->loop, UV_RUN_DEFAULT); /* close callbacks of what finish() closed */
    if (uv_loop_close(&c->loop) != 0) {
        srv_log("error", "control loop: handles left open", NULL);
    }
    if (c->admin_fd >= 0) {
        close(c->admin_fd);
    }
    free(c->admin_body);
    metrics_writer_free(&c->scratch);
    mem_free(c);
}
