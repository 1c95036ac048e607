/* test_admin_live.c - integration: the admin listener of the real ingestd (issue 6): the
 * allowlist for IPv4 and IPv6, every /debug endpoint's status and shape, the live pooling toggle
 * under load, retain over trims, memtrace lines and the allocation-site profile. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "harness.h"
#include "server/memtrace.h"

/* ---- helpers ---- */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One HTTP exchange from src (bound before connect; NULL: any) to dst:port; the request says
 * Connection: close. Returns the response (caller frees) or NULL when no connection. */
static char *xfer(const char *src, const char *dst, uint16_t port, const char *req)
{
    struct sockaddr_storage sa, la;
    socklen_t len;
    int family = strchr(dst, ':') != NULL ? AF_INET6 : AF_INET;

    memset(&sa, 0, sizeof(sa));
    memset(&la, 0, sizeof(la));
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&sa;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        inet_pton(AF_INET6, dst, &a->sin6_addr);
        ((struct sockaddr_in6 *)&la)->sin6_family = AF_INET6;
        if (src != NULL) {
            inet_pton(AF_INET6, src, &((struct sockaddr_in6 *)&la)->sin6_addr);
        }
        len = sizeof(struct sockaddr_in6);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&sa;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        inet_pton(AF_INET, dst, &a->sin_addr);
        ((struct sockaddr_in *)&la)->sin_family = AF_INET;
        if (src != NULL) {
            inet_pton(AF_INET, src, &((struct sockaddr_in *)&la)->sin_addr);
        }
        len = sizeof(struct sockaddr_in);
    }
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return NULL;
    }
    if ((src != NULL && bind(fd, (struct sockaddr *)&la, len) != 0) ||
        connect(fd, (struct sockaddr *)&sa, len) != 0) {
        close(fd);
        return NULL;
    }
    return ih_http_fd(fd, req, strlen(req), NULL);
}

static char *request(uint16_t port, const char *method, const char *path, const char *body)
{
    char req[4096];
    snprintf(req, sizeof(req),
             "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
             method, path, body != NULL ? strlen(body) : 0, body != NULL ? body : "");
    return xfer(NULL, "127.0.0.1", port, req);
}

static const char *body_of(const char *resp)
{
    const char *b = resp != NULL ? strstr(resp, "\r\n\r\n") : NULL;
    return b != NULL ? b + 4 : "";
}

/* method path -> status and, when json_out is not NULL, the parsed JSON body. */
static int call(uint16_t port, const char *method, const char *path, const char *body,
                json_t **json_out)
{
    char *resp = request(port, method, path, body);
    int st = ih_http_status(resp);
    if (json_out != NULL) {
        json_error_t e;
        *json_out = json_loads(body_of(resp), 0, &e);
    }
    free(resp);
    return st;
}

static json_int_t jint(json_t *root, const char *a, const char *b)
{
    json_t *o = json_object_get(root, a);
    if (b != NULL) {
        o = json_object_get(o, b);
    }
    assert_true(json_is_integer(o));
    return json_integer_value(o);
}

static const char *jstr(json_t *root, const char *a, const char *b)
{
    json_t *o = json_object_get(root, a);
    if (b != NULL) {
        o = json_object_get(o, b);
    }
    assert_true(json_is_string(o));
    return json_string_value(o);
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

/* n lines of a small valid event on a new TCP connection, closed after. */
static void send_events(uint16_t port, int n)
{
    int fd = ih_connect(port);
    assert_true(fd >= 0);
    char *buf = malloc((size_t)n * 32);
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        len += (size_t)sprintf(buf + len, "{\"type\":\"t%d\",\"v\":[%d]}\n", i % 4, i);
    }
    assert_int_equal(ih_send_all(fd, buf, len), 0);
    free(buf);
    close(fd);
}

static int have_ipv6_loopback(void)
{
    struct sockaddr_in6 a = {0};
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0) {
        return 0;
    }
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static const char vars_req[] = "GET /debug/vars HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

/* ---- allowlist ---- */

static void test_allowlist_excluding_127_0_0_1_admits_127_0_0_2_and_denies_127_0_0_1(void **state)
{
    ih_server_t s;
    const char *const extra[] = {"--admin-allow=127.0.0.2/32,::1", NULL};
    (void)state;

    assert_int_equal(ih_start(&s, extra), 0);
    char *ok = xfer("127.0.0.2", "127.0.0.1", s.admin_port, vars_req);
    assert_int_equal(ih_http_status(ok), 200);
    free(ok);
    char *no = xfer("127.0.0.1", "127.0.0.1", s.admin_port, vars_req);
    assert_int_equal(ih_http_status(no), 403);
    free(no);
    /* /metrics on the admin listener is behind the allowlist too. */
    no = xfer(NULL, "127.0.0.1", s.admin_port,
              "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_int_equal(ih_http_status(no), 403);
    free(no);
    ok = xfer("127.0.0.2", "127.0.0.1", s.admin_port, vars_req);
    json_t *v = json_loads(body_of(ok), 0, NULL);
    assert_non_null(v);
    assert_int_equal(jint(v, "admin", "denied"), 2);
    json_decref(v);
    free(ok);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
}

static void test_default_allowlist_admits_loopback_and_a_wildcard_bind_warns_naming_it(void **state)
{
    ih_server_t s;
    const char *const extra[] = {"--admin=0.0.0.0:0", NULL};
    (void)state;

    assert_int_equal(ih_start(&s, extra), 0);
    char *log = ih_log(&s);
    char *warn = strstr(log, " warn ");
    assert_non_null(warn);
    assert_non_null(strstr(warn, "127.0.0.0/8,::1/128"));
    free(log);
    char *ok = xfer("127.0.0.3", "127.0.0.1", s.admin_port, vars_req);
    assert_int_equal(ih_http_status(ok), 200);
    free(ok);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
}

static void test_ipv6_loopback_peer_is_admitted_by_its_rule_and_denied_without_it(void **state)
{
    ih_server_t s;
    (void)state;

    if (!have_ipv6_loopback()) {
        print_message("skipped: this machine has no IPv6 loopback (::1 cannot be bound)\n");
        skip();
    }
    const char *const allow6[] = {"--admin=[::1]:0", "--admin-allow=::1/128", NULL};
    assert_int_equal(ih_start(&s, allow6), 0);
    char *ok = xfer("::1", "::1", s.admin_port, vars_req);
    assert_int_equal(ih_http_status(ok), 200);
    free(ok);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);

    const char *const deny6[] = {"--admin=[::1]:0", "--admin-allow=127.0.0.0/8", NULL};
    assert_int_equal(ih_start(&s, deny6), 0);
    char *no = xfer("::1", "::1", s.admin_port, vars_req);
    assert_int_equal(ih_http_status(no), 403);
    free(no);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    char *log = ih_log(&s);
    assert_non_null(strstr(log, "peer=::1"));
    free(log);
    ih_cleanup(&s);
}

static void test_denied_peer_leaves_only_the_counter_and_rate_limited_log_lines(void **state)
{
    ih_server_t s;
    const char *const extra[] = {"--admin-allow=127.0.0.2/32", NULL};
    const char put[] = "PUT /debug/config HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                       "Content-Length: 14\r\n\r\n{\"pool\":false}";
    const char trim[] = "POST /debug/trim HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    (void)state;

    assert_int_equal(ih_start(&s, extra), 0);
    for (int i = 0; i < 20; i++) {
        char *r = xfer("127.0.0.1", "127.0.0.1", s.admin_port, i % 2 ? put : trim);
        assert_int_equal(ih_http_status(r), 403);
        assert_string_equal(body_of(r), "forbidden\n");
        free(r);
    }
    char *ok = xfer("127.0.0.2", "127.0.0.1", s.admin_port, vars_req);
    json_t *v = json_loads(body_of(ok), 0, NULL);
    free(ok);
    assert_non_null(v);
    assert_int_equal(jint(v, "admin", "denied"), 20);
    assert_int_equal(jint(v, "admin", "requests"), 1); /* only this one */
    assert_string_equal(jstr(v, "config", "pool"), "on");
    assert_int_equal(jint(v, "pool", "trims"), 0);
    json_decref(v);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    char *log = ih_log(&s);
    int lines = count_of(log, "admin request denied");
    assert_true(lines >= 1 && lines <= 20);
    assert_true(lines < 20 || strstr(log, "suppressed=") != NULL);
    assert_null(strstr(log, "levers changed"));
    assert_null(strstr(log, "memtrace cycle"));
    free(log);
    ih_cleanup(&s);
}

/* ---- endpoints ---- */

static void test_every_admin_endpoint_answers_with_its_status_and_shape(void **state)
{
    ih_server_t s;
    const char *const extra[] = {"--alloc-profile-rate=64KiB", NULL};
    json_t *j;
    (void)state;

    assert_int_equal(ih_start(&s, extra), 0);
    send_events(s.tcp_port, 100);
    ih_counts_t base = {{0}}, d;
    assert_int_equal(ih_wait_counts(s.admin_port, &base, 100, 30000, &d), 0);

    assert_int_equal(call(s.admin_port, "GET", "/debug/vars", NULL, &j), 200);
    assert_non_null(j);
    assert_int_equal(jint(j, "events", "accepted"), 100);
    assert_int_equal(jint(j, "workers", NULL), 2);
    assert_true(json_is_object(json_object_get(json_object_get(j, "events"), "by_type")));
    assert_true(jint(j, "memstats", "alloc_bytes") > 0);
    assert_true(jint(j, "memstats", "rss_bytes") > 0);
    assert_true(jint(j, "pool", "gets") > 0);
    assert_int_equal(jint(j, "allocprof", "rate"), 65536);
    assert_string_equal(jstr(j, "config", "pool"), "on");
    json_decref(j);

    assert_int_equal(call(s.admin_port, "GET", "/debug/pool", NULL, &j), 200);
    assert_non_null(j);
    assert_string_equal(jstr(j, "pool", NULL), "on");
    assert_true(jint(j, "total", "gets") > 0);
    json_t *ws = json_object_get(j, "workers");
    assert_int_equal(json_array_size(ws), 2);
    assert_int_equal(jint(json_array_get(ws, 1), "worker", NULL), 1);
    json_decref(j);

    char *r = request(s.admin_port, "GET", "/debug/heap", NULL);
    assert_int_equal(ih_http_status(r), 200);
    assert_true(strlen(body_of(r)) > 0);
    free(r);

    r = request(s.admin_port, "GET", "/debug/allocs?sort=alloc_space&top=5", NULL);
    assert_int_equal(ih_http_status(r), 200);
    assert_non_null(strstr(body_of(r), "# ingestd allocation profile"));
    free(r);
    r = request(s.admin_port, "GET", "/debug/allocs?format=folded&sort=alloc_objects", NULL);
    assert_int_equal(ih_http_status(r), 200);
    assert_non_null(strstr(r, "text/plain"));
    free(r);
    assert_int_equal(call(s.admin_port, "GET", "/debug/allocs?sort=bogus", NULL, &j), 400);
    assert_true(json_is_string(json_object_get(j, "error")));
    json_decref(j);

    assert_int_equal(call(s.admin_port, "POST", "/debug/trim", NULL, &j), 200);
    assert_non_null(j);
    assert_true(json_is_integer(json_object_get(j, "blocks_released")));
    assert_true(json_is_integer(json_object_get(j, "bytes_released")));
    assert_true(json_is_number(json_object_get(j, "duration_seconds")));
    assert_true(jint(j, "rss_bytes", "before") > 0);
    assert_true(jint(j, "rss_bytes", "after") > 0);
    assert_true(json_is_integer(json_object_get(json_object_get(j, "live_bytes"), "after")));
    json_decref(j);

    assert_int_equal(call(s.admin_port, "GET", "/debug/config", NULL, &j), 200);
    assert_int_equal(json_object_size(j), 5);
    assert_string_equal(jstr(j, "parse", NULL), "scan");
    assert_string_equal(jstr(j, "pool-retain", NULL), "100");
    json_decref(j);
    assert_int_equal(call(s.admin_port, "PUT", "/debug/config", "{\"pool-retain\":-5}", &j), 400);
    assert_true(json_is_string(json_object_get(j, "error")));
    json_decref(j);
    assert_int_equal(call(s.admin_port, "PUT", "/debug/config",
                          "{\"pool-retain\":\"50\",\"trim-interval\":\"2s\","
                          "\"memory-limit\":\"1GiB\"}",
                          &j),
                     200);
    assert_string_equal(jstr(j, "pool-retain", NULL), "50");
    assert_string_equal(jstr(j, "trim-interval", NULL), "2s");
    assert_string_equal(jstr(j, "memory-limit", NULL), "1GiB");
    json_decref(j);
    assert_true(ih_metric(s.admin_port, "ingestd_memory_limit_bytes") == 1073741824.0);

    r = request(s.admin_port, "GET", "/debug/nothing", NULL);
    assert_int_equal(ih_http_status(r), 404);
    free(r);
    r = request(s.admin_port, "POST", "/debug/vars", NULL);
    assert_int_equal(ih_http_status(r), 405);
    assert_non_null(strstr(r, "\r\nAllow: GET"));
    free(r);
    r = request(s.admin_port, "HEAD", "/debug/vars", NULL);
    assert_int_equal(ih_http_status(r), 200);
    assert_string_equal(body_of(r), "");
    free(r);
    r = request(s.admin_port, "GET", "/healthz", NULL);
    assert_int_equal(ih_http_status(r), 200);
    free(r);
    assert_true(ih_metric(s.admin_port, "ingestd_pool_enabled") == 1.0);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
}

/* ---- live levers ---- */

typedef struct {
    uint16_t port;
    int conns;
    int batches;
    int per_batch;
    long sent;
} load_t;

static void *load_sender(void *arg)
{
    load_t *l = arg;
    int fds[8];
    char line[64];
    char *buf = malloc((size_t)l->per_batch * sizeof(line));
    for (int c = 0; c < l->conns; c++) {
        fds[c] = ih_connect(l->port);
    }
    for (int b = 0; b < l->batches; b++) {
        size_t len = 0;
        for (int i = 0; i < l->per_batch; i++) {
            len += (size_t)snprintf(buf + len, sizeof(line), "{\"type\":\"load\",\"i\":%d}\n", i);
        }
        if (ih_send_all(fds[b % l->conns], buf, len) == 0) {
            l->sent += l->per_batch;
        }
        if (b % 10 == 0) {
            sleep_ms(2);
        }
    }
    for (int c = 0; c < l->conns; c++) {
        close(fds[c]);
    }
    free(buf);
    return NULL;
}

static double metric_now(uint16_t port, const char *name)
{
    return ih_metric(port, name);
}

/* Pool gets and misses from one scrape (two scrapes would let a get fall between them). */
static void gets_and_misses(uint16_t port, double *gets, double *misses)
{
    char *r = request(port, "GET", "/metrics", NULL);
    const char *g = strstr(r, "\ningestd_pool_gets_total ");
    const char *m = strstr(r, "\ningestd_pool_misses_total ");
    assert_non_null(g);
    assert_non_null(m);
    *gets = strtod(g + strlen("\ningestd_pool_gets_total "), NULL);
    *misses = strtod(m + strlen("\ningestd_pool_misses_total "), NULL);
    free(r);
}

static void test_live_pool_toggle_under_load_loses_no_event_and_shows_in_metrics(void **state)
{
    ih_server_t s;
    ih_counts_t base = {{0}}, d;
    (void)state;
    /* The asan preset frees pool blocks on put (INGESTD_POOL_FREE_ON_PUT): this test is about
     * caching, so the child caches. */
    unsetenv("INGESTD_POOL_FREE_ON_PUT");

    assert_int_equal(ih_start(&s, NULL), 0);
    /* Under load: toggle six times while a thread sends. */
    load_t l = {s.tcp_port, 4, 300, 50, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, load_sender, &l), 0);
    for (int i = 0; i < 6; i++) {
        sleep_ms(40);
        assert_int_equal(call(s.admin_port, "PUT", "/debug/config",
                              i % 2 == 0 ? "{\"pool\":false}" : "{\"pool\":true}", NULL),
                         200);
    }
    pthread_join(th, NULL);
    assert_int_equal(l.sent, 300 * 50);
    assert_int_equal(ih_wait_counts(s.admin_port, &base, (double)l.sent, 60000, &d), 0);
    assert_true(d.v[0] == (double)l.sent); /* all valid: accepted, none lost */

    /* Naive now: every get misses; the gauge says 0. */
    assert_int_equal(call(s.admin_port, "PUT", "/debug/config", "{\"pool\":\"off\"}", NULL), 200);
    assert_true(metric_now(s.admin_port, "ingestd_pool_enabled") == 0.0);
    double g0, m0, g1, m1;
    gets_and_misses(s.admin_port, &g0, &m0);
    ih_counts_t b2;
    assert_int_equal(ih_counts(s.admin_port, &b2), 0);
    send_events(s.tcp_port, 500);
    assert_int_equal(ih_wait_counts(s.admin_port, &b2, 500, 30000, &d), 0);
    gets_and_misses(s.admin_port, &g1, &m1);
    assert_true(g1 > g0);
    assert_true(m1 - m0 == g1 - g0); /* no hits in naive mode */

    /* Pooled again: hits come back. */
    assert_int_equal(call(s.admin_port, "PUT", "/debug/config", "{\"pool\":\"on\"}", NULL), 200);
    assert_true(metric_now(s.admin_port, "ingestd_pool_enabled") == 1.0);
    send_events(s.tcp_port, 50); /* warm the caches again */
    assert_int_equal(ih_counts(s.admin_port, &b2), 0);
    gets_and_misses(s.admin_port, &g0, &m0);
    for (int i = 0; i < 10; i++) {
        send_events(s.tcp_port, 50);
    }
    assert_int_equal(ih_wait_counts(s.admin_port, &b2, 500, 30000, &d), 0);
    gets_and_misses(s.admin_port, &g1, &m1);
    assert_true(m1 - m0 < g1 - g0);
    char *log = NULL;
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    log = ih_log(&s);
    assert_true(count_of(log, "levers changed") == 8);
    free(log);
    ih_cleanup(&s);
}

static void test_retain_change_shows_in_pool_metrics_over_trims(void **state)
{
    ih_server_t s;
    const char *const extra[] = {"--pool-retain=off", "--trim-interval=50ms", NULL};
    int fds[40];
    (void)state;
    /* The asan preset frees pool blocks on put (INGESTD_POOL_FREE_ON_PUT): this test is about
     * caching, so the child caches. */
    unsetenv("INGESTD_POOL_FREE_ON_PUT");

    assert_int_equal(ih_start(&s, extra), 0);
    ih_counts_t base = {{0}}, d;
    /* 40 connections at once each hold a block for a partial line; completed, the blocks go
     * back to the caches idle. */
    for (int i = 0; i < 40; i++) {
        fds[i] = ih_connect(s.tcp_port);
        assert_true(fds[i] >= 0);
        assert_int_equal(ih_send_all(fds[i], "{\"type\":", 8), 0);
    }
    assert_true(ih_wait_metric(s.admin_port, "ingestd_pool_blocks{state=\"in_use\"}", 40, 10000) >=
                40);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(ih_send_all(fds[i], "\"r\"}\n", 5), 0);
    }
    assert_int_equal(ih_wait_counts(s.admin_port, &base, 40, 30000, &d), 0);
    for (int i = 0; i < 40; i++) {
        close(fds[i]);
    }
    assert_true(ih_wait_metric(s.admin_port, "ingestd_pool_blocks{state=\"idle\"}", 30, 10000) >=
                30);
    double trims0 = metric_now(s.admin_port, "ingestd_pool_trims_total");
    ih_wait_metric(s.admin_port, "ingestd_pool_trims_total", trims0 + 6, 10000);
    /* retain off: trims release nothing */
    assert_true(metric_now(s.admin_port, "ingestd_pool_blocks{state=\"idle\"}") >= 30);
    double rel0 = metric_now(s.admin_port, "ingestd_pool_released_total");

    assert_int_equal(call(s.admin_port, "PUT", "/debug/config", "{\"pool-retain\":0}", NULL), 200);
    double idle = 1e9;
    for (int i = 0; i < 200 && idle > 2; i++) { /* the control connection's own block or so */
        sleep_ms(25);
        idle = metric_now(s.admin_port, "ingestd_pool_blocks{state=\"idle\"}");
    }
    assert_true(idle <= 2);
    assert_true(metric_now(s.admin_port, "ingestd_pool_released_total") >= rel0 + 28);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
}

/* ---- memtrace ---- */

static void check_memtrace_log(const char *log, int want_admin, int want_limit)
{
    srv_memtrace_t m;
    int lines = 0, timer = 0, admin = 0, limit = 0;
    uint64_t last = 0;

    for (const char *p = strstr(log, "memtrace cycle="); p != NULL;
         p = strstr(p + 1, "memtrace cycle=")) {
        assert_true(p == log || p[-1] == '\n');
        const char *eol = strchr(p, '\n');
        assert_non_null(eol);
        char line[SRV_MEMTRACE_LINE_MAX];
        size_t n = (size_t)(eol - p);
        assert_true(n < sizeof(line));
        memcpy(line, p, n);
        line[n] = '\0';
        assert_int_equal(srv_memtrace_parse(line, &m), 0);
        assert_int_equal(m.cycle, last + 1);
        last = m.cycle;
        assert_true(m.rss_bytes > 0);
        assert_true(m.live_bytes > 0);
        timer += m.reason == SRV_TRIM_TIMER;
        admin += m.reason == SRV_TRIM_ADMIN;
        limit += m.reason == SRV_TRIM_LIMIT;
        lines++;
    }
    assert_true(lines >= 2);
    assert_true(timer >= 1);
    assert_true(admin == want_admin);
    assert_true(want_limit ? limit >= 1 : limit == 0);
}

static void test_memtrace_lines_parse_one_per_cycle_with_their_reason(void **state)
{
    ih_server_t s;
    const char *const extra[] = {"--memtrace", "--trim-interval=50ms", NULL};
    (void)state;

    assert_int_equal(ih_start(&s, extra), 0);
    send_events(s.tcp_port, 200);
    sleep_ms(150);
    assert_int_equal(call(s.admin_port, "POST", "/debug/trim", NULL, NULL), 200);
    sleep_ms(150);
    /* A live memory limit below the live bytes: a limit trim, reading paused; lifted again. */
    assert_int_equal(call(s.admin_port, "PUT", "/debug/config", "{\"memory-limit\":1}", NULL), 200);
    assert_true(ih_wait_metric(s.admin_port, "ingestd_memory_limit_exceeded", 1, 10000) == 1);
    assert_int_equal(call(s.admin_port, "PUT", "/debug/config", "{\"memory-limit\":\"off\"}", NULL),
                     200);
    assert_true(ih_metric(s.admin_port, "ingestd_memory_limit_exceeded") == 0);
    ih_counts_t base, d;
    assert_int_equal(ih_counts(s.admin_port, &base), 0);
    send_events(s.tcp_port, 100); /* reading resumed */
    assert_int_equal(ih_wait_counts(s.admin_port, &base, 100, 30000, &d), 0);
    sleep_ms(100);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    char *log = ih_log(&s);
    check_memtrace_log(log, 1, 1);
    free(log);
    ih_cleanup(&s);

    /* INGESTD_DEBUG=memtrace=1 does the same without the flag. */
    setenv("INGESTD_DEBUG", "memtrace=1", 1);
    const char *const env[] = {"--trim-interval=50ms", NULL};
    int r = ih_start(&s, env);
    unsetenv("INGESTD_DEBUG");
    assert_int_equal(r, 0);
    sleep_ms(200);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    log = ih_log(&s);
    check_memtrace_log(log, 0, 0);
    free(log);
    ih_cleanup(&s);
}

/* ---- allocation profile ---- */

/* Sum of folded values of the stacks naming fn. */
static double folded_sum(const char *folded, const char *fn)
{
    double sum = 0;
    const char *line = folded;
    size_t fl = strlen(fn);
    while (*line != '\0') {
        const char *eol = strchr(line, '\n');
        size_t n = eol != NULL ? (size_t)(eol - line) : strlen(line);
        const char *sp = NULL;
        for (size_t i = n; i > 0 && sp == NULL; i--) {
            if (line[i - 1] == ' ') {
                sp = line + i - 1;
            }
        }
        int named = 0;
        for (const char *p = line; sp != NULL && p + fl <= sp; p++) {
            if ((p == line || p[-1] == ';') && memcmp(p, fn, fl) == 0 &&
                (p + fl == sp || p[fl] == ';')) {
                named = 1;
                break;
            }
        }
        if (named) {
            sum += strtod(sp + 1, NULL);
        }
        line += n + (eol != NULL);
    }
    return sum;
}

static char *profile_after_load(const char *pool, double *events)
{
    ih_server_t s;
    char pool_flag[32];
    snprintf(pool_flag, sizeof(pool_flag), "--pool=%s", pool);
    /* The tree strategy: jansson allocates per event there (the scanner allocates nothing). */
    const char *const extra[] = {pool_flag, "--parse=tree", "--alloc-profile-rate=1", NULL};
    ih_counts_t base = {{0}}, d;

    assert_int_equal(ih_start(&s, extra), 0);
    send_events(s.tcp_port, 100); /* warm-up */
    assert_int_equal(ih_wait_counts(s.admin_port, &base, 100, 30000, &d), 0);
    assert_int_equal(ih_counts(s.admin_port, &base), 0);
    for (int i = 0; i < 4; i++) {
        send_events(s.tcp_port, 500);
    }
    assert_int_equal(ih_wait_counts(s.admin_port, &base, 2000, 60000, &d), 0);
    *events = 2100;
    char *r = request(s.admin_port, "GET", "/debug/allocs?format=folded&sort=alloc_objects", NULL);
    assert_int_equal(ih_http_status(r), 200);
    char *out = strdup(body_of(r));
    free(r);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
    return out;
}

static void test_allocation_profile_names_the_hot_path_in_naive_mode_only(void **state)
{
    double events;
    (void)state;

    /* The asan preset frees pool blocks on put, which would make pooled mode allocate too. */
    unsetenv("INGESTD_POOL_FREE_ON_PUT");
    char *naive = profile_after_load("off", &events);
    /* At rate 1 every allocation is sampled: jansson's parse allocates for each event and the
     * read path a block per read. */
    assert_true(folded_sum(naive, "ing_judge_line") >= events);
    assert_true(folded_sum(naive, "json_loadb") >= events);
    assert_true(folded_sum(naive, "on_alloc") >= 1);
    free(naive);

    char *pooled = profile_after_load("on", &events);
    /* Pooled: only the warm-up's blocks, far fewer than one per event. */
    assert_true(folded_sum(pooled, "json_loadb") < events / 20);
    assert_true(folded_sum(pooled, "ing_judge_line") < events / 20);
    free(pooled);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allowlist_excluding_127_0_0_1_admits_127_0_0_2_and_denies_127_0_0_1),
        cmocka_unit_test(
            test_default_allowlist_admits_loopback_and_a_wildcard_bind_warns_naming_it),
        cmocka_unit_test(test_ipv6_loopback_peer_is_admitted_by_its_rule_and_denied_without_it),
        cmocka_unit_test(test_denied_peer_leaves_only_the_counter_and_rate_limited_log_lines),
        cmocka_unit_test(test_every_admin_endpoint_answers_with_its_status_and_shape),
        cmocka_unit_test(test_live_pool_toggle_under_load_loses_no_event_and_shows_in_metrics),
        cmocka_unit_test(test_retain_change_shows_in_pool_metrics_over_trims),
        cmocka_unit_test(test_memtrace_lines_parse_one_per_cycle_with_their_reason),
        cmocka_unit_test(test_allocation_profile_names_the_hot_path_in_naive_mode_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
