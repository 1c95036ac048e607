/* server.c - the service's life: listening sockets, worker threads, the control loop (admin
 * listener, signals, memory limit, drain, summary) and the /metrics exposition. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "allocprof.h"
#include "log.h"
#include "mem.h"
#include "notify.h"
#include "server_internal.h"

#ifndef INGESTD_VERSION
#define INGESTD_VERSION "0.0.0"
#endif

/* How often the control loop compares live bytes with --memory-limit. */
#define MEM_CHECK_MS 50

static const double trim_bounds[] = {1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4,
                                     1e-3, 5e-3, 1e-2, 5e-2, 0.1};
#define NTRIM_BOUNDS (sizeof(trim_bounds) / sizeof(trim_bounds[0]))

/* ---- sockets ---- */

static socklen_t addr_len(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
    if (ss->ss_family == AF_INET6) {
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
    } else {
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    }
}

static void format_addr(const struct sockaddr_storage *ss, char *buf, size_t sz)
{
    char host[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        snprintf(buf, sz, "[%s]:%u", host, (unsigned)ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        snprintf(buf, sz, "%s:%u", host, (unsigned)ntohs(a->sin_port));
    }
}

/* A bound (not yet listening) socket. Returns the fd or -errno. */
static int bind_socket(const struct sockaddr_storage *ss, int reuseport)
{
    int one = 1;
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
        bind(fd, (const struct sockaddr *)ss, addr_len(ss)) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

/* Binds n sockets to one address with SO_REUSEPORT. Port 0 is resolved by the first bind and
 * reused by the rest. Writes the bound address to text. Returns 0 or -errno (all closed). */
static int bind_group(const srv_addr_t *a, unsigned n, int *fds, int reuseport, char *text,
                      size_t textsz)
{
    struct sockaddr_storage ss = a->addr;
    socklen_t len = sizeof(ss);

    for (unsigned i = 0; i < n; i++) {
        fds[i] = bind_socket(&ss, reuseport);
        if (fds[i] < 0) {
            int e = fds[i];
            for (unsigned j = 0; j < i; j++) {
                close(fds[j]);
            }
            return e;
        }
        if (i == 0) {
            struct sockaddr_storage bound;
            if (getsockname(fds[0], (struct sockaddr *)&bound, &len) != 0) {
                int e = -errno;
                close(fds[0]);
                return e;
            }
            set_port(&ss,
                     ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                       : ((struct sockaddr_in *)&bound)->sin_port));
            format_addr(&ss, text, textsz);
        }
    }
    return 0;
}

/* ---- create / destroy ---- */

static void sink_log(void *ctx, const char *line)
{
    (void)ctx;
    srv_log("error", "sink", "detail", line, NULL);
}

static srv_worker_t *worker_new(srv_server_t *s, unsigned id)
{
    srv_worker_t *w = mem_calloc(1, sizeof(*w));
    if (w == NULL) {
        return NULL;
    }
    w->srv = s;
    w->id = id;
    w->tcp_fd = -1;
    w->http_fd = -1;
    metrics_hist_init(&w->st.trim, trim_bounds, NTRIM_BOUNDS);
    return w;
}

/* Proves the allocator under the counting layer is the one asked for: a probe allocation must
 * lie in mimalloc's heap exactly when --allocator=mimalloc (STYLE.md, "Allocator pitfall"). */
static int verify_allocator(void)
{
    void *probe = mem_malloc(64);
    int owned = mem_owned_by_mimalloc(probe);
    mem_free(probe);
    if (mem_allocator() == MEM_ALLOCATOR_MIMALLOC) {
        return owned == 1;
    }
    return owned != 1; /* libc: not mimalloc's (or libmimalloc is not even installed) */
}

int srv_server_create(const srv_config_t *cfg, srv_server_t **out)
{
    srv_server_t *s = mem_calloc(1, sizeof(*s));
    pool_config_t pc;
    srv_sink_config_t sc;
    int r;

    if (s == NULL) {
        return -ENOMEM;
    }
    s->cfg = *cfg;
    s->nworkers = cfg->workers;
    snprintf(s->tcp_text, sizeof(s->tcp_text), "off");
    snprintf(s->http_text, sizeof(s->http_text), "off");
    snprintf(s->admin_text, sizeof(s->admin_text), "off");
    uv_mutex_init(&s->wake_lock);
    uv_mutex_init(&s->trim_lock);
    uv_cond_init(&s->trim_cond);
    atomic_init(&s->pooled, cfg->pool);
    atomic_init(&s->trim_interval_ms, cfg->trim_interval_ms);
    atomic_init(&s->memory_limit, cfg->memory_limit);
    if (cfg->alloc_profile_rate != 0) {
        /* Before any worker starts, so every thread takes the rate from its first allocation. */
        r = allocprof_set_rate(cfg->alloc_profile_rate);
        if (r != 0) {
            srv_log("error", "cannot start the allocation profile", "error", strerror(-r), NULL);
            uv_mutex_destroy(&s->wake_lock);
            uv_mutex_destroy(&s->trim_lock);
            uv_cond_destroy(&s->trim_cond);
            mem_free(s);
            return r;
        }
    }
    s->allocator_verified = verify_allocator();
    if (!s->allocator_verified) {
        srv_log("error", "the allocator serving memory is not the one --allocator names",
                "allocator", mem_allocator_name(mem_allocator()), NULL);
    }

    pool_config_init(&pc);
    pc.mode = cfg->pool ? POOL_MODE_POOLED : POOL_MODE_NAIVE;
    pc.retain_percent = cfg->pool_retain;
    pc.alloc_fn = mem_malloc;
    pc.free_fn = mem_free;
    r = pool_create(&pc, &s->pool);
    if (r != 0) {
        srv_log("error", "pool", "error", strerror(-r), NULL);
        goto fail;
    }

    srv_sink_config_init(&sc);
    sc.spec = cfg->sink;
    sc.alloc_fn = mem_malloc;
    sc.free_fn = mem_free;
    sc.log_fn = sink_log;
    r = srv_sink_create(&sc, &s->sink);
    if (r != 0) {
        srv_log("error", "cannot open sink", "sink", cfg->sink, "error", strerror(-r), NULL);
        goto fail;
    }

    s->workers = mem_calloc(s->nworkers, sizeof(*s->workers));
    s->control = worker_new(s, s->nworkers);
    if (s->workers == NULL || s->control == NULL) {
        r = -ENOMEM;
        goto fail;
    }
    s->control->control = 1;
    s->control->loop = &s->ctl_loop;
    for (unsigned i = 0; i < s->nworkers; i++) {
        s->workers[i] = worker_new(s, i);
        if (s->workers[i] == NULL) {
            r = -ENOMEM;
            goto fail;
        }
        s->workers[i]->loop = &s->workers[i]->own_loop;
    }

    int fds[1024];
    const struct {
        const srv_addr_t *addr;
        char *text;
        const char *what;
        size_t field;
    } groups[] = {
        {&cfg->tcp, s->tcp_text, "tcp", offsetof(srv_worker_t, tcp_fd)},
        {&cfg->http, s->http_text, "http", offsetof(srv_worker_t, http_fd)},
    };
    for (size_t g = 0; g < 2; g++) {
        if (!groups[g].addr->enabled) {
            continue;
        }
        r = bind_group(groups[g].addr, s->nworkers, fds, 1, groups[g].text, sizeof(s->tcp_text));
        if (r != 0) {
            srv_log("error", "cannot listen", groups[g].what, groups[g].addr->text, "error",
                    strerror(-r), NULL);
            goto fail;
        }
        for (unsigned i = 0; i < s->nworkers; i++) {
            *(int *)((char *)s->workers[i] + groups[g].field) = fds[i];
        }
    }
    if (cfg->admin.enabled) {
        r = bind_group(&cfg->admin, 1, fds, 0, s->admin_text, sizeof(s->admin_text));
        if (r != 0) {
            srv_log("error", "cannot listen", "admin", cfg->admin.text, "error", strerror(-r),
                    NULL);
            goto fail;
        }
        s->control->http_fd = fds[0];
    }
    *out = s;
    return 0;
fail:
    srv_server_destroy(s);
    return r;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

void srv_server_destroy(srv_server_t *s)
{
    if (s == NULL) {
        return;
    }
    for (unsigned i = 0; s->workers != NULL && i < s->nworkers; i++) {
        srv_worker_t *w = s->workers[i];
        if (w != NULL && !s->started) {
            close_fd(&w->tcp_fd);
            close_fd(&w->http_fd);
        }
        mem_free(w);
    }
    if (s->control != NULL && !s->started) {
        close_fd(&s->control->http_fd);
    }
    mem_free(s->control);
    mem_free(s->workers);
    if (s->sink != NULL) {
        srv_sink_close(s->sink);
    }
    pool_destroy(s->pool);
    uv_mutex_destroy(&s->wake_lock);
    uv_mutex_destroy(&s->trim_lock);
    uv_cond_destroy(&s->trim_cond);
    free(s->admin_body);
    mem_free(s);
}

/* ---- control loop ---- */

void srv_server_wake_all(srv_server_t *s)
{
    uv_mutex_lock(&s->wake_lock);
    for (unsigned i = 0; i < s->nworkers; i++) {
        if (!s->workers[i]->wake_closed) {
            uv_async_send(&s->workers[i]->wake);
        }
    }
    uv_mutex_unlock(&s->wake_lock);
}

static void on_shutdown_timeout(uv_timer_t *t)
{
    srv_server_t *s = t->data;
    char ms[32];
    snprintf(ms, sizeof(ms), "%llu", (unsigned long long)s->cfg.shutdown_timeout_ms);
    srv_log("error", "shutdown timed out", "shutdown_timeout_ms", ms, NULL);
    _exit(1);
}

static void begin_drain(srv_server_t *s, const char *why)
{
    if (atomic_load(&s->draining)) {
        return;
    }
    srv_log("info", "draining", "reason", why, NULL);
    (void)srv_notify_stopping();
    s->drain_start_ms = uv_now(&s->ctl_loop);
    atomic_store(&s->draining, 1);
    uv_timer_stop(&s->mem_timer);
    uv_timer_stop(&s->trim_timer);
    uv_timer_start(&s->shutdown_timer, on_shutdown_timeout, s->cfg.shutdown_timeout_ms, 0);
    srv_server_wake_all(s);
}

static void announce(srv_server_t *s)
{
    const char *kv[2 * 32];
    char vals[32][160];
    size_t n = 0;
    const char *name;

    kv[0] = "tcp";
    kv[1] = s->tcp_text;
    kv[2] = "http";
    kv[3] = s->http_text;
    kv[4] = "admin";
    kv[5] = s->admin_text;
    n = 3;
    kv[2 * n] = "version";
    kv[2 * n + 1] = INGESTD_VERSION;
    n++;
    kv[2 * n] = "allocator_verified";
    kv[2 * n + 1] = s->allocator_verified ? "yes" : "no";
    n++;
    for (size_t i = 0; n < 32 && srv_config_item(&s->cfg, i, &name, vals[i], sizeof(vals[i])) == 0;
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

static void summary(srv_server_t *s, int sink_rc)
{
    srv_totals_t t;
    struct rusage ru;
    char v[16][32];
    const char *kv[32];
    size_t n = 0;

    srv_server_totals(s, &t);
    getrusage(RUSAGE_SELF, &ru);
#define KV(key, fmt, val)                                                                          \
    do {                                                                                           \
        snprintf(v[n], sizeof(v[n]), fmt, val);                                                    \
        kv[2 * n] = key;                                                                           \
        kv[2 * n + 1] = v[n];                                                                      \
        n++;                                                                                       \
    } while (0)
    KV("events_accepted", "%llu", (unsigned long long)t.accepted);
    static const char *const rk[SRV_VERDICT_COUNT] = {NULL,
                                                      "rejected_parse",
                                                      "rejected_not_object",
                                                      "rejected_no_type",
                                                      "rejected_too_large",
                                                      "rejected_truncated"};
    for (int r = 1; r < SRV_VERDICT_COUNT; r++) {
        KV(rk[r], "%llu", (unsigned long long)t.rejected[r]);
    }
    KV("bytes_tcp", "%llu", (unsigned long long)t.bytes_tcp);
    KV("bytes_http", "%llu", (unsigned long long)t.bytes_http);
    KV("peak_rss_bytes", "%llu", (unsigned long long)ru.ru_maxrss * 1024ull);
    KV("drain_ms", "%llu", (unsigned long long)(uv_now(&s->ctl_loop) - s->drain_start_ms));
    KV("sink_error", "%s", sink_rc == 0 ? "none" : strerror(-sink_rc));
#undef KV
    srv_log_kv("info", "shutdown", kv, n);
}

/* TEMPORARY (deploy branch): belongs in srv_server_t; a static only to keep this wiring to
 * server.c while server/ is restructured. */
static srv_notify_watchdog_t watchdog;

static void close_ctl(uv_handle_t *h)
{
    if (h->loop != NULL && !uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

static void finish(srv_server_t *s)
{
    s->finished = 1;
    uv_timer_stop(&s->shutdown_timer);
    int rc = srv_sink_close(s->sink);
    s->sink = NULL;
    s->sink_closed = 1;
    summary(s, rc);
    if (rc != 0) {
        s->exit_code = 1;
    }
    srv_worker_poll_flags(s->control); /* drains the admin listener and its connections */
    close_ctl((uv_handle_t *)&s->ctl_async);
    close_ctl((uv_handle_t *)&s->sig_term);
    close_ctl((uv_handle_t *)&s->sig_int);
    close_ctl((uv_handle_t *)&s->sig_hup);
    close_ctl((uv_handle_t *)&s->mem_timer);
    close_ctl((uv_handle_t *)&s->shutdown_timer);
    srv_notify_watchdog_close(&watchdog);
    srv_control_close(s);
}

static void on_ctl_async(uv_async_t *a)
{
    srv_server_t *s = a->data;
    unsigned ready = atomic_load(&s->ready);
    unsigned failed = atomic_load(&s->failed);

    if (failed > 0 && !atomic_load(&s->draining)) {
        s->exit_code = 1;
        begin_drain(s, "start-up failed");
    }
    srv_control_poll(s);
    if (!s->announced && ready == s->nworkers) {
        s->announced = 1;
        announce(s);
        char st[320];
        snprintf(st, sizeof(st), "listening tcp=%s http=%s admin=%s", s->tcp_text, s->http_text,
                 s->admin_text);
        (void)srv_notify_ready(st);
    }
    if (atomic_load(&s->draining) && atomic_load(&s->done) == s->nworkers && !s->finished) {
        finish(s);
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    srv_server_t *s = h->data;
    if (signum == SIGHUP) {
        srv_log("info", "reopening sink", "sink", s->cfg.sink, NULL);
        srv_sink_reopen(s->sink);
        return;
    }
    if (atomic_load(&s->draining)) {
        srv_log("error", "second signal during drain: exiting now", NULL);
        _exit(1);
    }
    begin_drain(s, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_mem_check(uv_timer_t *t)
{
    static srv_ratelimit_t rl;
    srv_server_t *s = t->data;
    mem_stats_t st;

    mem_stats(&st);
    uint64_t limit = atomic_load(&s->memory_limit);
    int over = limit != 0 && st.alloc_bytes > 0 && (uint64_t)st.alloc_bytes > limit;
    if (over != atomic_load(&s->mem_over)) {
        char live[32];
        snprintf(live, sizeof(live), "%lld", (long long)st.alloc_bytes);
        if (over) {
            srv_log_error_limited(&rl, "memory limit exceeded: trimming, reading paused",
                                  "alloc_bytes", live, NULL);
        }
        atomic_store(&s->mem_over, over);
        srv_server_wake_all(s);
        if (over) {
            (void)srv_control_trim_begin(s, SRV_TRIM_LIMIT);
        }
    } else if (over) {
        /* Still over: blocks given back since the last trim are released at once, and every
         * worker re-decides who may read (worker.c, "pausing": lines held keep reading, and
         * with none held a few paused connections take their turn). */
        pool_stats_t ps;
        pool_stats(s->pool, &ps);
        if (ps.idle > 0) {
            (void)srv_control_trim_begin(s, SRV_TRIM_LIMIT);
        }
        srv_server_wake_all(s);
    }
}

void srv_server_limit_changed(srv_server_t *s)
{
    if (atomic_load(&s->draining)) {
        return;
    }
    if (!uv_is_active((uv_handle_t *)&s->mem_timer)) {
        uv_timer_start(&s->mem_timer, on_mem_check, MEM_CHECK_MS, MEM_CHECK_MS);
    }
    on_mem_check(&s->mem_timer); /* lifts a pause at once when the limit went up or off */
}

static void worker_main(void *arg)
{
    srv_worker_t *w = arg;
    srv_server_t *s = w->srv;

    if (srv_worker_setup(w) != 0) {
        atomic_fetch_add(&s->failed, 1);
    } else {
        atomic_fetch_add(&s->ready, 1);
    }
    uv_async_send(&s->ctl_async);
    /* Even after a failed set-up the loop runs until the control loop says drain, so that the
     * wake handle stays valid for it. */
    srv_worker_poll_flags(w);
    srv_worker_run(w);
    srv_worker_teardown(w);
    uv_loop_close(w->loop);
    atomic_fetch_add(&s->done, 1);
    uv_async_send(&s->ctl_async);
}

int srv_server_run(srv_server_t *s)
{
    int r;
    unsigned started = 0;

    uv_loop_init(&s->ctl_loop);
    uv_async_init(&s->ctl_loop, &s->ctl_async, on_ctl_async);
    s->ctl_async.data = s;
    uv_signal_init(&s->ctl_loop, &s->sig_term);
    uv_signal_init(&s->ctl_loop, &s->sig_int);
    uv_signal_init(&s->ctl_loop, &s->sig_hup);
    s->sig_term.data = s->sig_int.data = s->sig_hup.data = s;
    uv_signal_start(&s->sig_term, on_signal, SIGTERM);
    uv_signal_start(&s->sig_int, on_signal, SIGINT);
    uv_signal_start(&s->sig_hup, on_signal, SIGHUP);
    uv_timer_init(&s->ctl_loop, &s->mem_timer);
    uv_timer_init(&s->ctl_loop, &s->shutdown_timer);
    s->mem_timer.data = s->shutdown_timer.data = s;
    if (srv_notify_watchdog_start(&watchdog, &s->ctl_loop) != 0) {
        srv_log("error", "bad WATCHDOG_USEC or WATCHDOG_PID: no systemd watchdog pings", NULL);
    }
    if (s->cfg.memory_limit != 0) {
        uv_timer_start(&s->mem_timer, on_mem_check, MEM_CHECK_MS, MEM_CHECK_MS);
    }
    s->started = 1;
    (void)srv_control_init(s);
    if (srv_worker_setup(s->control) != 0) {
        s->exit_code = 1;
        atomic_fetch_add(&s->failed, 1);
    }
    for (unsigned i = 0; i < s->nworkers; i++) {
        srv_worker_t *w = s->workers[i];
        r = uv_loop_init(w->loop);
        if (r == 0) {
            r = srv_worker_init_handles(w);
        }
        if (r == 0) {
            r = uv_thread_create(&w->thread, worker_main, w);
        }
        if (r != 0) {
            srv_log("error", "cannot start worker", "error", uv_strerror(r), NULL);
            s->exit_code = 1;
            break;
        }
        started++;
    }
    if (started < s->nworkers) {
        /* Workers never started count as done; the ones running are drained. */
        atomic_fetch_add(&s->done, s->nworkers - started);
        for (unsigned i = started; i < s->nworkers; i++) {
            s->workers[i]->wake_closed = 1;
            close_fd(&s->workers[i]->tcp_fd);
            close_fd(&s->workers[i]->http_fd);
        }
        atomic_fetch_add(&s->failed, 1);
    }
    if (atomic_load(&s->failed) > 0) {
        uv_async_send(&s->ctl_async);
    }
    uv_run(&s->ctl_loop, UV_RUN_DEFAULT);
    for (unsigned i = 0; i < started; i++) {
        uv_thread_join(&s->workers[i]->thread);
    }
    srv_worker_teardown(s->control);
    uv_run(&s->ctl_loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&s->ctl_loop) != 0) {
        srv_log("error", "control loop: handles left open", NULL);
    }
    return s->exit_code;
}

/* ---- /metrics ---- */

/* Adds count to name's entry of t[0..*n), appending the entry when it is new. */
static void type_add(srv_vars_type_t *t, size_t *n, const char *name, uint64_t count)
{
    size_t x = 0;
    while (x < *n && strcmp(t[x].type, name) != 0) {
        x++;
    }
    if (x == *n) {
        t[(*n)++].type = name;
    }
    t[x].count += count;
}

srv_vars_type_t *srv_server_types(srv_server_t *s, size_t *n)
{
    srv_vars_type_t *t = mem_calloc((size_t)s->nworkers * SRV_TYPES_MAX + 1, sizeof(*t));
    uint64_t other = 0;

    *n = 0;
    if (t == NULL) {
        return NULL;
    }
    for (unsigned i = 0; i < s->nworkers; i++) {
        const srv_process_t *p = &s->workers[i]->proc;
        uint32_t k = srv_process_type_count(p);
        for (uint32_t j = 0; j < k; j++) {
            type_add(t, n, srv_process_type_name(p, j), srv_process_type_total(p, j));
        }
        other += srv_process_other_total(p);
    }
    if (other > 0) {
        type_add(t, n, SRV_TYPE_OTHER, other);
    }
    return t;
}

static void write_types(srv_server_t *s, metrics_writer_t *w)
{
    size_t n;
    srv_vars_type_t *t = srv_server_types(s, &n);
    char label[2 * SRV_TYPE_MAX + 16];
    char esc[2 * SRV_TYPE_MAX + 8];

    metrics_family(w, "ingestd_events_by_type_total", "counter",
                   "Accepted events by their \"type\" (bounded per worker; overflow as _other).");
    if (t == NULL) {
        w->oom = 1;
        return;
    }
    for (size_t x = 0; x < n; x++) {
        metrics_label_escape(esc, sizeof(esc), t[x].type);
        snprintf(label, sizeof(label), "type=\"%s\"", esc);
        metrics_sample_u64(w, "ingestd_events_by_type_total", label, t[x].count);
    }
    mem_free(t);
}

void srv_server_totals(srv_server_t *s, srv_totals_t *t)
{
    memset(t, 0, sizeof(*t));
    metrics_hist_init(&t->trim, trim_bounds, NTRIM_BOUNDS);
    for (unsigned i = 0; i < s->nworkers; i++) {
        const srv_worker_stats_t *st = &s->workers[i]->st;
        t->accepted += metrics_counter_get(&st->accepted);
        for (int r = 1; r < SRV_VERDICT_COUNT; r++) {
            t->rejected[r] += metrics_counter_get(&st->rejected[r]);
        }
        t->bytes_tcp += metrics_counter_get(&st->bytes_tcp);
        t->bytes_http += metrics_counter_get(&st->bytes_http);
        t->conns_total += metrics_counter_get(&st->conns_total);
        t->conns_refused += metrics_counter_get(&st->conns_refused);
        t->conns_timed_out += metrics_counter_get(&st->idle_closed);
        t->read_pauses += metrics_counter_get(&st->read_pauses);
        t->sink_failures += metrics_counter_get(&st->sink_failures);
        t->oversize += metrics_counter_get(&st->oversize);
        t->conns_active += metrics_gauge_get(&st->conns_active);
        for (int k = 0; k < SRV_HTTP_CODES; k++) {
            t->http_responses[k] += metrics_counter_get(&st->http_responses[k]);
        }
        metrics_hist_merge(&t->trim, &st->trim);
    }
}

void srv_server_write_metrics(srv_server_t *s, metrics_writer_t *w)
{
    srv_totals_t t;
    char label[128];

    srv_server_totals(s, &t);
    metrics_family(w, "ingestd_events_accepted_total", "counter",
                   "Events that passed validation and reached the sink.");
    metrics_sample_u64(w, "ingestd_events_accepted_total", NULL, t.accepted);
    metrics_family(w, "ingestd_events_rejected_total", "counter", "Events rejected, by reason.");
    for (int r = 1; r < SRV_VERDICT_COUNT; r++) {
        snprintf(label, sizeof(label), "reason=\"%s\"", srv_verdict_name((srv_verdict_t)r));
        metrics_sample_u64(w, "ingestd_events_rejected_total", label, t.rejected[r]);
    }
    write_types(s, w);
    metrics_family(w, "ingestd_bytes_received_total", "counter",
                   "Bytes read from ingest clients, by transport.");
    metrics_sample_u64(w, "ingestd_bytes_received_total", "transport=\"tcp\"", t.bytes_tcp);
    metrics_sample_u64(w, "ingestd_bytes_received_total", "transport=\"http\"", t.bytes_http);
    metrics_family(w, "ingestd_connections_active", "gauge", "Open ingest connections.");
    metrics_sample_i64(w, "ingestd_connections_active", NULL, t.conns_active);
    metrics_family(w, "ingestd_connections_total", "counter", "Ingest connections accepted.");
    metrics_sample_u64(w, "ingestd_connections_total", NULL, t.conns_total);
    metrics_family(w, "ingestd_connections_refused_total", "counter",
                   "Connections closed at once because --max-connections were open.");
    metrics_sample_u64(w, "ingestd_connections_refused_total", NULL, t.conns_refused);
    metrics_family(w, "ingestd_connections_timed_out_total", "counter",
                   "Connections closed by the idle, header or body timeout.");
    metrics_sample_u64(w, "ingestd_connections_timed_out_total", NULL, t.conns_timed_out);
    metrics_family(w, "ingestd_http_responses_total", "counter",
                   "Responses on the HTTP ingest port, by status code (other: the rest).");
    for (int k = 0; k < SRV_HTTP_CODES; k++) {
        if (srv_http_codes[k] != 0) {
            snprintf(label, sizeof(label), "code=\"%d\"", srv_http_codes[k]);
        } else {
            snprintf(label, sizeof(label), "code=\"other\"");
        }
        metrics_sample_u64(w, "ingestd_http_responses_total", label, t.http_responses[k]);
    }
    metrics_family(w, "ingestd_read_pauses_total", "counter",
                   "Times a worker paused reading (sink behind or memory limit).");
    metrics_sample_u64(w, "ingestd_read_pauses_total", NULL, t.read_pauses);

    mem_stats_t ms;
    mem_stats(&ms);
    metrics_family(w, "ingestd_memstats_alloc_bytes", "gauge",
                   "Live bytes allocated through the counting layer.");
    metrics_sample_i64(w, "ingestd_memstats_alloc_bytes", NULL, ms.alloc_bytes);
    metrics_family(w, "ingestd_memstats_alloc_bytes_total", "counter",
                   "Bytes ever allocated through the counting layer.");
    metrics_sample_u64(w, "ingestd_memstats_alloc_bytes_total", NULL, ms.alloc_bytes_total);
    metrics_family(w, "ingestd_memstats_mallocs_total", "counter",
                   "Allocations through the counting layer.");
    metrics_sample_u64(w, "ingestd_memstats_mallocs_total", NULL, ms.mallocs);
    metrics_family(w, "ingestd_memstats_frees_total", "counter",
                   "Frees through the counting layer.");
    metrics_sample_u64(w, "ingestd_memstats_frees_total", NULL, ms.frees);
    metrics_family(w, "ingestd_memstats_sys_bytes", "gauge",
                   "Bytes the allocator holds from the OS.");
    metrics_sample_u64(w, "ingestd_memstats_sys_bytes", NULL, mem_sys_bytes());

    pool_stats_t ps;
    pool_stats(s->pool, &ps);
    metrics_family(w, "ingestd_pool_gets_total", "counter", "Blocks taken from the pool.");
    metrics_sample_u64(w, "ingestd_pool_gets_total", NULL, ps.gets);
    metrics_family(w, "ingestd_pool_misses_total", "counter",
                   "Pool gets that had to allocate a block.");
    metrics_sample_u64(w, "ingestd_pool_misses_total", NULL, ps.misses);
    metrics_family(w, "ingestd_pool_released_total", "counter",
                   "Blocks given back to the allocator.");
    metrics_sample_u64(w, "ingestd_pool_released_total", NULL, ps.released);
    metrics_family(w, "ingestd_pool_trims_total", "counter", "Pool trim cycles.");
    metrics_sample_u64(w, "ingestd_pool_trims_total", NULL, ps.trims);
    metrics_family(
        w, "ingestd_pool_oversize_total", "counter",
        "Events larger than one block (TCP: assembled on the heap; HTTP: carried; or too large).");
    metrics_sample_u64(w, "ingestd_pool_oversize_total", NULL, t.oversize);
    metrics_family(w, "ingestd_pool_blocks", "gauge", "Pool blocks by state.");
    metrics_sample_i64(w, "ingestd_pool_blocks", "state=\"in_use\"", ps.in_use);
    metrics_sample_i64(w, "ingestd_pool_blocks", "state=\"idle\"", ps.idle);
    metrics_hist_write(w, "ingestd_pool_trim_duration_seconds",
                       "Time each pool trim cycle took (per worker).", &t.trim);

    srv_sink_stats_t ss = {0};
    if (!s->sink_closed) {
        srv_sink_stats(s->sink, &ss);
    }
    metrics_family(w, "ingestd_sink_events_written_total", "counter",
                   "Events the file sink has written.");
    metrics_sample_u64(w, "ingestd_sink_events_written_total", NULL, ss.events_written);
    metrics_family(w, "ingestd_sink_bytes_written_total", "counter",
                   "Bytes the file sink has written.");
    metrics_sample_u64(w, "ingestd_sink_bytes_written_total", NULL, ss.bytes_written);
    metrics_family(w, "ingestd_sink_pending_bytes", "gauge",
                   "Bytes appended to the sink and not yet written.");
    metrics_sample_u64(w, "ingestd_sink_pending_bytes", NULL, ss.pending_bytes);
    metrics_family(w, "ingestd_sink_write_errors_total", "counter", "Failed sink writes.");
    metrics_sample_u64(w, "ingestd_sink_write_errors_total", NULL, ss.write_errors);
    metrics_family(w, "ingestd_sink_reopens_total", "counter", "Sink reopens (SIGHUP).");
    metrics_sample_u64(w, "ingestd_sink_reopens_total", NULL, ss.reopens);
    metrics_family(w, "ingestd_sink_stalls_total", "counter",
                   "Times a worker's sink writer became full (backpressure).");
    metrics_sample_u64(w, "ingestd_sink_stalls_total", NULL, ss.stalls);
    metrics_family(w, "ingestd_sink_append_failures_total", "counter",
                   "Valid events the sink could not keep (no memory), counted as too_large.");
    metrics_sample_u64(w, "ingestd_sink_append_failures_total", NULL, t.sink_failures);

    metrics_family(w, "ingestd_memory_limit_exceeded", "gauge",
                   "1 while live bytes are above --memory-limit and reading is paused.");
    metrics_sample_u64(w, "ingestd_memory_limit_exceeded", NULL,
                       (uint64_t)atomic_load(&s->mem_over));
    metrics_family(w, "ingestd_memory_limit_bytes", "gauge", "--memory-limit (0: off).");
    metrics_sample_u64(w, "ingestd_memory_limit_bytes", NULL, atomic_load(&s->memory_limit));
    metrics_family(w, "ingestd_pool_enabled", "gauge",
                   "1 while workers pool blocks, 0 in naive mode (live; PUT /debug/config).");
    metrics_sample_u64(w, "ingestd_pool_enabled", NULL, (uint64_t)atomic_load(&s->pooled));
    metrics_family(w, "ingestd_workers", "gauge", "Worker threads.");
    metrics_sample_u64(w, "ingestd_workers", NULL, s->nworkers);

    snprintf(label, sizeof(label), "version=\"%s\",allocator=\"%s\",pool=\"%s\"", INGESTD_VERSION,
             mem_allocator_name(mem_allocator()), s->cfg.pool ? "on" : "off");
    metrics_family(w, "ingestd_allocator_verified", "gauge",
                   "1 when a probe allocation came from the allocator --allocator names.");
    metrics_sample_u64(w, "ingestd_allocator_verified", NULL, (uint64_t)s->allocator_verified);
    metrics_family(w, "ingestd_build_info", "gauge",
                   "Build and start-up memory mode (pool: --pool; live mode: "
                   "ingestd_pool_enabled); always 1.");
    metrics_sample_u64(w, "ingestd_build_info", label, 1);

    metrics_process_t pr;
    if (metrics_process_read(&pr) == 0) {
        metrics_process_write(w, &pr);
    }
}
