/* control.c - the admin listener's requests and the trim cycles, all on the control thread.
 *
 * Admin requests never run on an ingest worker's loop. The one exception is the pool trim
 * itself: a pool cache is owner-thread-only, so a trim cycle (timer, memory limit or POST
 * /debug/trim) sets each worker's trim_req and wakes it; the worker trims its own cache at a
 * safe point between reads (its wake callback) and answers under trim_lock. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "mem/allocprof.h"
#include "mem/mem.h"
#include "server/admin.h"
#include "server/allow.h"
#include "server/log.h"
#include "server/server_internal.h"

#ifndef INGESTD_VERSION
#define INGESTD_VERSION "0.0.0"
#endif

/* How long POST /debug/trim waits for the workers' answers. */
#define TRIM_WAIT_NS (2ull * 1000 * 1000 * 1000)

static srv_ratelimit_t rl_denied;

static uint64_t rss_bytes(void)
{
    metrics_process_t pr;
    return metrics_process_read(&pr) == 0 ? pr.resident_memory_bytes : 0;
}

static void on_trim_timer(uv_timer_t *t)
{
    srv_server_t *s = t->data;
    if (!atomic_load(&s->draining)) {
        (void)srv_control_trim_begin(s, SRV_TRIM_TIMER);
    }
}

static void restart_trim_timer(srv_server_t *s)
{
    uint64_t iv = atomic_load(&s->trim_interval_ms);
    uv_timer_stop(&s->trim_timer);
    if (iv != 0 && !atomic_load(&s->draining)) {
        uv_timer_start(&s->trim_timer, on_trim_timer, iv, iv);
    }
}

int srv_control_init(srv_server_t *s)
{
    char buf[SRV_ALLOW_TEXTLEN + 160];

    s->start_ns = uv_hrtime();
    uv_timer_init(&s->ctl_loop, &s->trim_timer);
    s->trim_timer.data = s;
    restart_trim_timer(s);
    if (s->cfg.admin.enabled && srv_allow_bind_warning((const struct sockaddr *)&s->cfg.admin.addr,
                                                       &s->cfg.admin_allow, buf, sizeof(buf))) {
        srv_log("warn", buf, NULL);
    }
    return 0;
}

void srv_control_close(srv_server_t *s)
{
    if (s->trim_timer.loop != NULL && !uv_is_closing((uv_handle_t *)&s->trim_timer)) {
        uv_close((uv_handle_t *)&s->trim_timer, NULL);
    }
}

/* ---- trim cycles ---- */

int srv_control_trim_begin(srv_server_t *s, srv_trim_reason_t reason)
{
    pool_stats_t ps;
    unsigned n = 0;

    if (s->trim_active) {
        if (reason == SRV_TRIM_LIMIT) {
            s->trim_pending = 1; /* runs when the current cycle ends: it must not be lost */
        }
        return 0;
    }
    pool_stats(s->pool, &ps);
    memset(&s->trim_m, 0, sizeof(s->trim_m));
    s->trim_m.reason = reason;
    s->trim_m.in_use_before = ps.in_use > 0 ? (uint64_t)ps.in_use : 0;
    s->trim_m.idle_before = ps.idle > 0 ? (uint64_t)ps.idle : 0;
    s->trim_m.since_start_us = (uv_hrtime() - s->start_ns) / 1000;
    uv_mutex_lock(&s->trim_lock);
    s->trim_answers = 0;
    s->trim_released = 0;
    s->trim_ns = 0;
    uv_mutex_unlock(&s->trim_lock);
    /* Lock order: wake_lock may be held while a worker takes trim_lock, never the reverse. */
    uv_mutex_lock(&s->wake_lock);
    for (unsigned i = 0; i < s->nworkers; i++) {
        srv_worker_t *w = s->workers[i];
        if (!w->wake_closed) {
            atomic_store(&w->trim_req, (int)reason + 1);
            uv_async_send(&w->wake);
            n++;
        }
    }
    uv_mutex_unlock(&s->wake_lock);
    s->trim_expected = n;
    s->trim_active = 1;
    return 1;
}

static int trim_all_answered(srv_server_t *s)
{
    uv_mutex_lock(&s->trim_lock);
    int done = s->trim_answers >= s->trim_expected;
    uv_mutex_unlock(&s->trim_lock);
    return done;
}

/* Waits (bounded) for every worker's answer. Returns 1 when all answered. */
static int trim_wait(srv_server_t *s)
{
    uint64_t deadline = uv_hrtime() + TRIM_WAIT_NS;
    int done;

    uv_mutex_lock(&s->trim_lock);
    while (!(done = s->trim_answers >= s->trim_expected)) {
        uint64_t now = uv_hrtime();
        if (now >= deadline ||
            uv_cond_timedwait(&s->trim_cond, &s->trim_lock, deadline - now) != 0) {
            done = s->trim_answers >= s->trim_expected;
            break;
        }
    }
    uv_mutex_unlock(&s->trim_lock);
    return done;
}

/* Fills the figures after the trim and writes the memtrace line. */
static void trim_finish(srv_server_t *s)
{
    pool_stats_t ps;
    mem_stats_t ms;

    pool_stats(s->pool, &ps);
    mem_stats(&ms);
    uv_mutex_lock(&s->trim_lock);
    s->trim_m.released_bytes = s->trim_released * POOL_BLOCK_SIZE;
    s->trim_m.duration_ns = s->trim_ns;
    uv_mutex_unlock(&s->trim_lock);
    s->trim_m.cycle = ++s->trim_cycle;
    s->trim_m.in_use_after = ps.in_use > 0 ? (uint64_t)ps.in_use : 0;
    s->trim_m.idle_after = ps.idle > 0 ? (uint64_t)ps.idle : 0;
    s->trim_m.live_bytes = ms.alloc_bytes > 0 ? (uint64_t)ms.alloc_bytes : 0;
    s->trim_m.sys_bytes = mem_sys_bytes();
    s->trim_m.rss_bytes = rss_bytes();
    s->trim_active = 0;
    if (s->cfg.memtrace) {
        (void)srv_memtrace_emit(2, &s->trim_m);
    }
}

void srv_control_poll(srv_server_t *s)
{
    if (s->trim_active && trim_all_answered(s)) {
        trim_finish(s);
    }
    if (!s->trim_active && s->trim_pending) {
        s->trim_pending = 0;
        if (atomic_load(&s->mem_over) && !atomic_load(&s->draining)) {
            (void)srv_control_trim_begin(s, SRV_TRIM_LIMIT);
        }
    }
}

/* ---- the admin listener ---- */

int srv_control_deny(srv_server_t *s, const uv_tcp_t *conn)
{
    struct sockaddr_storage peer;
    int len = sizeof(peer);
    char host[64] = "?";

    if (uv_tcp_getpeername(conn, (struct sockaddr *)&peer, &len) == 0 &&
        srv_allow_match(&s->cfg.admin_allow, (const struct sockaddr *)&peer)) {
        return 0;
    }
    atomic_fetch_add(&s->admin_denied, 1);
    if (peer.ss_family == AF_INET6) {
        uv_ip6_name((const struct sockaddr_in6 *)&peer, host, sizeof(host));
    } else if (peer.ss_family == AF_INET) {
        uv_ip4_name((const struct sockaddr_in *)&peer, host, sizeof(host));
    }
    srv_log_error_limited(&rl_denied, "admin request denied: peer outside --admin-allow", "peer",
                          host, NULL);
    return 1;
}

static void current_levers(srv_server_t *s, srv_levers_t *l)
{
    l->pool = atomic_load(&s->pooled);
    l->pool_retain = pool_retain(s->pool);
    l->trim_interval_ms = atomic_load(&s->trim_interval_ms);
    l->memory_limit = atomic_load(&s->memory_limit);
}

static int workers_readable(srv_server_t *s)
{
    /* ready (acquire) orders the workers' set-up before our reads of their caches; draining is
     * set by this thread only, so while it is 0 no worker has begun to tear down. */
    return atomic_load(&s->ready) == s->nworkers && !atomic_load(&s->draining);
}

static int write_vars(srv_server_t *s, FILE *out)
{
    srv_vars_t v;
    srv_totals_t t;
    mem_stats_t ms;
    pool_stats_t ps;
    size_t n;
    srv_vars_type_t *types = srv_server_types(s, &n);

    if (types == NULL) {
        return -ENOMEM;
    }
    memset(&v, 0, sizeof(v));
    srv_server_totals(s, &t);
    v.version = INGESTD_VERSION;
    v.allocator = mem_allocator_name(mem_allocator());
    v.workers = s->nworkers;
    v.uptime_seconds = (double)(uv_hrtime() - s->start_ns) / 1e9;
    v.events_accepted = t.accepted;
    for (int r = 1; r < ING_VERDICT_COUNT && r - 1 < SRV_VARS_REASONS; r++) {
        v.events_rejected[r - 1] = t.rejected[r];
    }
    v.types = types;
    v.ntypes = n;
    v.bytes_received_tcp = t.bytes_tcp;
    v.bytes_received_http = t.bytes_http;
    v.connections_active = t.conns_active > 0 ? (uint64_t)t.conns_active : 0;
    v.connections_total = t.conns_total;
    v.connections_refused = t.conns_refused;
    mem_stats(&ms);
    v.mem_alloc_bytes = ms.alloc_bytes > 0 ? (uint64_t)ms.alloc_bytes : 0;
    v.mem_alloc_bytes_total = ms.alloc_bytes_total;
    v.mem_mallocs = ms.mallocs;
    v.mem_frees = ms.frees;
    v.mem_sys_bytes = mem_sys_bytes();
    v.rss_bytes = rss_bytes();
    pool_stats(s->pool, &ps);
    v.pool_gets = ps.gets;
    v.pool_misses = ps.misses;
    v.pool_released = ps.released;
    v.pool_trims = ps.trims;
    v.pool_oversize = t.oversize;
    v.pool_blocks_in_use = ps.in_use > 0 ? (uint64_t)ps.in_use : 0;
    v.pool_blocks_idle = ps.idle > 0 ? (uint64_t)ps.idle : 0;
    v.admin_requests = atomic_load(&s->admin_requests);
    v.admin_denied = atomic_load(&s->admin_denied);
    current_levers(s, &v.levers);
    allocprof_stats(&v.allocprof);
    int r = srv_admin_write_vars(out, &v);
    mem_free(types);
    return r;
}

static int write_pool(srv_server_t *s, FILE *out)
{
    srv_levers_t l;
    pool_stats_t total;
    pool_stats_t *per = mem_calloc(s->nworkers, sizeof(*per));
    size_t n = 0;

    if (per == NULL) {
        return -ENOMEM;
    }
    current_levers(s, &l);
    pool_stats(s->pool, &total);
    if (workers_readable(s)) {
        for (unsigned i = 0; i < s->nworkers; i++) {
            pool_cache_stats(s->workers[i]->cache, &per[n++]);
        }
    }
    int r = srv_admin_write_pool(out, &l, &total, per, n);
    mem_free(per);
    return r;
}

static int do_trim(srv_server_t *s, FILE *out)
{
    srv_trim_report_t rep;
    mem_stats_t ms;

    memset(&rep, 0, sizeof(rep));
    if (s->trim_active) {
        /* A timer or limit cycle is running: let it finish first. */
        (void)trim_wait(s);
        trim_finish(s);
    }
    uint64_t t0 = uv_hrtime();
    mem_stats(&ms);
    rep.live_before = ms.alloc_bytes > 0 ? (uint64_t)ms.alloc_bytes : 0;
    rep.sys_before = mem_sys_bytes();
    rep.rss_before = rss_bytes();
    (void)srv_control_trim_begin(s, SRV_TRIM_ADMIN);
    int all = trim_wait(s);
    mem_release_to_os();
    trim_finish(s);
    rep.duration_ns = uv_hrtime() - t0;
    rep.blocks_released = s->trim_m.released_bytes / POOL_BLOCK_SIZE;
    rep.bytes_released = s->trim_m.released_bytes;
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
static void apply_levers(srv_server_t *s, const srv_levers_t *next, unsigned changed)
{
    if (changed & SRV_LEVER_RETAIN) {
        pool_set_retain(s->pool, next->pool_retain);
    }
    if (changed & SRV_LEVER_TRIM) {
        atomic_store(&s->trim_interval_ms, next->trim_interval_ms);
        restart_trim_timer(s);
    }
    if (changed & SRV_LEVER_LIMIT) {
        atomic_store(&s->memory_limit, next->memory_limit);
        srv_server_limit_changed(s);
    }
    if (changed & SRV_LEVER_POOL) {
        atomic_store(&s->pooled, next->pool);
        (void)pool_set_mode(s->pool, next->pool ? POOL_MODE_POOLED : POOL_MODE_NAIVE);
        srv_server_wake_all(s); /* each worker switches in its wake callback, between reads */
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

void srv_control_request(void *ctx, const char *method, const char *path, const char *query,
                         const char *body, size_t body_len, srv_http_reply_t *reply)
{
    srv_conn_t *c = ctx;
    srv_server_t *s = c->w->srv;
    srv_admin_endpoint_t ep;
    const char *allow = NULL;
    char err[256];
    size_t len = 0;
    int status = 200;

    free(s->admin_body); /* open_memstream's buffer: libc's, not the counting layer's */
    s->admin_body = NULL;
    atomic_fetch_add(&s->admin_requests, 1);

    int route = srv_admin_route(method, path, &ep, &allow);
    if (route == 404) {
        int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
        if (srv_conn_get(c, path, get ? reply : NULL) == 0) {
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

    FILE *out = open_memstream(&s->admin_body, &len);
    if (out == NULL) {
        reply_text(reply, 500, "out of memory\n");
        return;
    }
    const char *ctype = "application/json";
    int r = 0;
    switch (ep) {
    case SRV_ADMIN_VARS:
        r = write_vars(s, out);
        break;
    case SRV_ADMIN_POOL:
        r = write_pool(s, out);
        break;
    case SRV_ADMIN_HEAP:
        ctype = "text/plain; charset=utf-8";
        r = mem_write_report(out);
        break;
    case SRV_ADMIN_ALLOCS:
        ctype = "text/plain; charset=utf-8";
        status = srv_admin_allocs(out, query, err, sizeof(err));
        if (status != 200) {
            rewind(out);
            ctype = "application/json";
            r = srv_admin_write_error(out, err);
        }
        break;
    case SRV_ADMIN_TRIM:
        r = do_trim(s, out);
        break;
    case SRV_ADMIN_CONFIG_GET: {
        srv_levers_t l;
        current_levers(s, &l);
        r = srv_admin_write_config(out, &l);
        break;
    }
    case SRV_ADMIN_CONFIG_PUT: {
        srv_levers_t cur, next;
        unsigned changed = 0;
        current_levers(s, &cur);
        status = srv_admin_config_put(body != NULL ? body : "", body_len, &cur, &next, &changed,
                                      err, sizeof(err));
        if (status != 200) {
            r = srv_admin_write_error(out, err);
        } else {
            if (changed != 0) {
                apply_levers(s, &next, changed);
            }
            r = srv_admin_write_config(out, &next);
        }
        break;
    }
    }
    if (fclose(out) != 0 || r < 0) {
        reply_text(reply, 500, "cannot write the reply\n");
        return;
    }
    reply->status = status;
    reply->content_type = ctype;
    reply->body = s->admin_body;
    reply->body_len = len;
}
