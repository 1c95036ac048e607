/* test_service.c - integration: HTTP end to end, /metrics with promtool, connection limits and
 * timeouts, backpressure from a slow sink, the memory limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "harness.h"

#define PROMTOOL "/usr/bin/promtool"

static char *post(uint16_t port, const char *ctype, const char *body)
{
    char req[8192];
    int n = snprintf(req, sizeof(req),
                     "POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     ctype, strlen(body), body);
    return ih_http(port, req, (size_t)n, NULL);
}

static char *get(uint16_t port, const char *path)
{
    char req[512];
    int n =
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path);
    return ih_http(port, req, (size_t)n, NULL);
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

static void test_promtool_accepts_a_live_metrics_page(void **state)
{
    ih_server_t s;
    char path[] = "/tmp/ingestd-metrics-XXXXXX";
    char cmd[256];
    (void)state;
    if (access(PROMTOOL, X_OK) != 0) {
        fail_msg("%s not found: apt-get install prometheus (scripts/test does)", PROMTOOL);
    }
    assert_int_equal(ih_start(&s, NULL), 0);
    int fd = ih_connect(s.tcp_port);
    const char *ev = "{\"type\":\"a\\\"b\\\\c\"}\n{\"type\":\"plain\"}\nbad\n{\"type\":\"x\"";
    assert_int_equal(ih_send_all(fd, ev, strlen(ev)), 0);
    close(fd);
    assert_true(ih_wait_metric(s.admin_port, "ingestd_events_rejected_total{reason=\"truncated\"}",
                               1, 30000) == 1);
    char *resp = get(s.admin_port, "/metrics");
    assert_int_equal(ih_http_status(resp), 200);
    char *body = strstr(resp, "\r\n\r\n");
    assert_non_null(body);
    assert_non_null(strstr(body, "ingestd_events_by_type_total{type=\"a\\\"b\\\\c\"} 1\n"));
    int out = mkstemp(path);
    assert_true(out >= 0);
    assert_int_equal(write(out, body + 4, strlen(body + 4)), (ssize_t)strlen(body + 4));
    close(out);
    snprintf(cmd, sizeof(cmd), "%s check metrics < %s >&2", PROMTOOL, path);
    assert_int_equal(system(cmd), 0);
    unlink(path);
    free(resp);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
}

/* 70 distinct types on one worker: the first ING_TYPES_MAX (64) by name, the rest as _other, the
 * same in /metrics and /debug/vars. */
static void test_types_beyond_the_table_count_as_other(void **state)
{
    ih_server_t s;
    const char *const args[] = {"--workers", "1", NULL};
    char ev[64];
    (void)state;
    assert_int_equal(ih_start(&s, args), 0);
    int fd = ih_connect(s.tcp_port);
    for (int i = 0; i < 70; i++) {
        int n = snprintf(ev, sizeof(ev), "{\"type\":\"t%d\"}\n{\"type\":\"t%d\"}\n", i, i);
        assert_int_equal(ih_send_all(fd, ev, (size_t)n), 0);
    }
    close(fd);
    assert_true(ih_wait_metric(s.admin_port, "ingestd_events_accepted_total", 140, 30000) == 140);
    assert_true(ih_metric(s.admin_port, "ingestd_events_by_type_total{type=\"t0\"}") == 2);
    assert_true(ih_metric(s.admin_port, "ingestd_events_by_type_total{type=\"t63\"}") == 2);
    assert_true(ih_metric(s.admin_port, "ingestd_events_by_type_total{type=\"_other\"}") == 12);
    char *metrics = get(s.admin_port, "/metrics");
    assert_int_equal(count_of(metrics, "ingestd_events_by_type_total{"), 65);
    free(metrics);
    char *vars = get(s.admin_port, "/debug/vars");
    assert_int_equal(ih_http_status(vars), 200);
    assert_non_null(strstr(vars, "\"t63\":2"));
    assert_non_null(strstr(vars, "\"_other\":12"));
    assert_null(strstr(vars, "\"t64\""));
    free(vars);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
}

static void test_http_takes_ndjson_an_array_and_one_object(void **state)
{
    ih_server_t s;
    (void)state;
    assert_int_equal(ih_start(&s, NULL), 0);
    char *r = post(s.http_port, "application/x-ndjson", "{\"type\":\"a\"}\n{\"type\":\"b\"}\n[]\n");
    assert_int_equal(ih_http_status(r), 200);
    assert_non_null(strstr(r, "\"accepted\":2,\"rejected\":1"));
    assert_non_null(strstr(r, "not_object"));
    free(r);
    r = post(s.http_port, "application/json", "[{\"type\":\"a\"},{\"x\":1},{\"type\":\"c\"}]");
    assert_int_equal(ih_http_status(r), 200);
    assert_non_null(strstr(r, "\"accepted\":2,\"rejected\":1"));
    free(r);
    r = post(s.http_port, "application/json", "{\"type\":\"one\",\"n\":[1,2]}");
    assert_int_equal(ih_http_status(r), 200);
    assert_non_null(strstr(r, "\"accepted\":1,\"rejected\":0"));
    free(r);
    assert_true(ih_metric(s.admin_port, "ingestd_events_accepted_total") == 5);
    assert_true(ih_metric(s.admin_port, "ingestd_bytes_received_total{transport=\"http\"}") > 0);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
}

static void test_http_answers_413_431_400_404_and_405(void **state)
{
    ih_server_t s;
    const char *extra[] = {"--max-body-bytes=1KiB", "--max-header-bytes=1KiB", NULL};
    char req[4096];
    (void)state;
    assert_int_equal(ih_start(&s, extra), 0);

    int n = snprintf(req, sizeof(req),
                     "POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n");
    char *r = ih_http(s.http_port, req, (size_t)n, NULL);
    assert_int_equal(ih_http_status(r), 413);
    free(r);

    n = snprintf(req, sizeof(req), "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset(req + n, 'a', 2000);
    n += 2000;
    n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n\r\n");
    r = ih_http(s.http_port, req, (size_t)n, NULL);
    assert_int_equal(ih_http_status(r), 431);
    free(r);

    r = ih_http(s.http_port, "GARBAGE\r\n\r\n", 11, NULL);
    assert_int_equal(ih_http_status(r), 400);
    free(r);

    r = get(s.http_port, "/nope");
    assert_int_equal(ih_http_status(r), 404);
    free(r);

    n = snprintf(req, sizeof(req),
                 "DELETE /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    r = ih_http(s.http_port, req, (size_t)n, NULL);
    assert_int_equal(ih_http_status(r), 405);
    free(r);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
}

/* Reads until EOF, an error or cap bytes; returns what arrived, NUL-terminated (caller frees). */
static char *read_reply(int fd, size_t cap)
{
    char *b = calloc(1, cap + 1);
    size_t n = 0;
    assert_non_null(b);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (n < cap) {
        ssize_t r = recv(fd, b + n, cap - n, 0);
        if (r <= 0) {
            break;
        }
        n += (size_t)r;
    }
    return b;
}

#define LINGER_BODY (64 * 1024)

static void test_http_early_413_and_431_reach_a_client_still_sending(void **state)
{
    /* The reply comes before the client is done sending; the client sends everything, then
     * reads. Closing with its bytes unread would reset the connection and lose the reply. */
    ih_server_t s;
    const char *extra[] = {"--max-body-bytes=1KiB", "--max-header-bytes=1KiB", NULL};
    char head[256];
    char *filler = malloc(LINGER_BODY);
    (void)state;
    assert_non_null(filler);
    memset(filler, 'x', LINGER_BODY);
    assert_int_equal(ih_start(&s, extra), 0);

    for (int k = 0; k < 2; k++) {
        int fd = ih_connect(s.http_port);
        assert_true(fd >= 0);
        int n =
            k == 0 ? snprintf(head, sizeof(head),
                              "POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: "
                              "application/x-ndjson\r\nContent-Length: %d\r\n\r\n",
                              LINGER_BODY)
                   : snprintf(head, sizeof(head), "POST /v1/events HTTP/1.1\r\nHost: t\r\nX-Big: ");
        assert_int_equal(ih_send_all(fd, head, (size_t)n), 0);
        if (k == 0) {
            usleep(100 * 1000); /* the 413 is decided on the headers alone */
        }
        /* The body (413) or the rest of a huge header (431), sent in full as a slow client
         * does: every write must succeed (a reset fails them, and clients give up there). */
        for (size_t off = 0; off < LINGER_BODY; off += 4096) {
            assert_int_equal(ih_send_all(fd, filler + off, 4096), 0);
            usleep(5 * 1000);
        }
        assert_int_equal(ih_send_all(fd, "\r\n\r\n", k == 1 ? 4 : 0), 0);
        char *r = read_reply(fd, 4096);
        assert_int_equal(ih_http_status(r), k == 0 ? 413 : 431);
        free(r);
        close(fd);
    }
    assert_true(ih_metric(s.admin_port, "ingestd_http_responses_total{code=\"413\"}") == 1);
    assert_true(ih_metric(s.admin_port, "ingestd_http_responses_total{code=\"431\"}") == 1);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
    free(filler);
}

static void test_http_pipelined_requests_are_answered_in_order(void **state)
{
    ih_server_t s;
    char req[2048];
    size_t len = 0;
    (void)state;
    assert_int_equal(ih_start(&s, NULL), 0);
    for (int i = 0; i < 3; i++) {
        const char *body = "{\"type\":\"p\"}\n{\"type\":\"q\"}\n";
        len +=
            (size_t)snprintf(req + len, sizeof(req) - len,
                             "POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n%s",
                             strlen(body), body);
    }
    len += (size_t)snprintf(req + len, sizeof(req) - len,
                            "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    char *r = ih_http(s.http_port, req, len, NULL);
    assert_non_null(r);
    assert_int_equal(count_of(r, "HTTP/1.1 200"), 4);
    assert_int_equal(count_of(r, "\"accepted\":2"), 3);
    assert_true(strstr(r, "ok\n") > strstr(r, "\"accepted\":2"));
    free(r);
    assert_true(ih_metric(s.admin_port, "ingestd_events_accepted_total") == 6);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
}

/* An event of exactly n bytes (n >= 32): {"type":"big","pad":"xx..."}. Caller frees. */
static char *big_event(size_t n)
{
    static const char head[] = "{\"type\":\"big\",\"pad\":\"";
    char *e = malloc(n + 1);
    assert_non_null(e);
    memcpy(e, head, sizeof(head) - 1);
    memset(e + sizeof(head) - 1, 'x', n - (sizeof(head) - 1) - 2);
    memcpy(e + n - 2, "\"}", 3);
    return e;
}

/* POSTs body (Connection: close); returns the response (caller frees). */
static char *post_big(uint16_t port, const char *ctype, const char *body)
{
    size_t cap = strlen(body) + 256;
    char *req = malloc(cap);
    assert_non_null(req);
    int n = snprintf(req, cap,
                     "POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     ctype, strlen(body), body);
    char *r = ih_http(port, req, (size_t)n, NULL);
    free(req);
    return r;
}

static void test_http_events_over_one_block_are_counted_as_oversize(void **state)
{
    ih_server_t s;
    const char *extra[] = {"--max-event-bytes=8KiB", NULL};
    char *e5000 = big_event(5000);
    char *e4096 = big_event(4096);
    char *e6000 = big_event(6000);
    char *e9000 = big_event(9000);
    char *body = malloc(32 * 1024);
    (void)state;
    assert_non_null(body);
    assert_int_equal(ih_start(&s, extra), 0);
    assert_true(ih_metric(s.admin_port, "ingestd_pool_oversize_total") == 0);

    /* NDJSON: 5000 (over a block), 4096 (one block: not over), a small one, 9000 (too large). */
    snprintf(body, 32 * 1024, "%s\n%s\n{\"type\":\"s\"}\n%s\n", e5000, e4096, e9000);
    char *r = post_big(s.http_port, "application/x-ndjson", body);
    assert_int_equal(ih_http_status(r), 200);
    assert_non_null(strstr(r, "\"accepted\":3,\"rejected\":1"));
    free(r);
    assert_true(ih_metric(s.admin_port, "ingestd_pool_oversize_total") == 2);

    /* A JSON array with a 6000-byte element, and one 6000-byte object. */
    snprintf(body, 32 * 1024, "[%s,{\"type\":\"s\"}]", e6000);
    r = post_big(s.http_port, "application/json", body);
    assert_int_equal(ih_http_status(r), 200);
    assert_non_null(strstr(r, "\"accepted\":2,\"rejected\":0"));
    free(r);
    r = post_big(s.http_port, "application/json", e6000);
    assert_int_equal(ih_http_status(r), 200);
    free(r);
    assert_true(ih_metric(s.admin_port, "ingestd_pool_oversize_total") == 4);
    assert_true(ih_metric(s.admin_port, "ingestd_events_accepted_total") == 6);

    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
    free(body);
    free(e5000);
    free(e4096);
    free(e6000);
    free(e9000);
}

static void test_ingest_port_serves_metrics_healthz_and_readyz(void **state)
{
    ih_server_t s;
    (void)state;
    assert_int_equal(ih_start(&s, NULL), 0);
    char *r = get(s.http_port, "/metrics");
    assert_int_equal(ih_http_status(r), 200);
    assert_non_null(strstr(r, "# TYPE ingestd_events_accepted_total counter"));
    free(r);
    r = get(s.http_port, "/healthz");
    assert_int_equal(ih_http_status(r), 200);
    free(r);
    r = get(s.admin_port, "/readyz");
    assert_int_equal(ih_http_status(r), 200);
    free(r);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
}

static void test_connections_over_the_limit_close_the_one_idle_longest(void **state)
{
    /* Issue 11: refusing the newcomer let idle connections lock everyone out; now the one idle
     * longest makes room (counted), and the newcomer stays. */
    ih_server_t s;
    const char *extra[] = {"--max-connections=2", "--workers=1", NULL};
    char c;
    (void)state;
    assert_int_equal(ih_start(&s, extra), 0);
    int a = ih_connect(s.tcp_port);
    assert_true(ih_wait_metric(s.admin_port, "ingestd_connections_active", 1, 30000) == 1);
    int b = ih_connect(s.tcp_port);
    assert_true(ih_wait_metric(s.admin_port, "ingestd_connections_active", 2, 30000) == 2);
    int x = ih_connect(s.tcp_port);
    assert_true(x >= 0);
    struct timeval tv = {30, 0};
    setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(recv(a, &c, 1, 0), 0); /* a, idle longest, closed by the server */
    assert_true(ih_metric(s.admin_port, "ingestd_connections_evicted_total") == 1);
    assert_true(ih_metric(s.admin_port, "ingestd_connections_refused_total{reason=\"global\"}") ==
                0);
    assert_int_equal(ih_send_all(x, "{\"type\":\"x\"}\n", 13), 0);
    assert_true(ih_wait_metric(s.admin_port, "ingestd_events_accepted_total", 1, 30000) == 1);
    close(a);
    close(b);
    close(x);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
}

static void test_silent_connection_is_closed_after_the_idle_timeout(void **state)
{
    ih_server_t s;
    const char *extra[] = {"--idle-timeout=200ms", NULL};
    char c;
    (void)state;
    assert_int_equal(ih_start(&s, extra), 0);
    int fd = ih_connect(s.tcp_port);
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(ih_send_all(fd, "{\"type\":\"x\"}\n{\"type\"", 20), 0);
    assert_int_equal(recv(fd, &c, 1, 0), 0);
    close(fd);
    assert_true(ih_metric(s.admin_port, "ingestd_connections_timed_out_total") >= 1);
    assert_true(ih_metric(s.admin_port, "ingestd_events_rejected_total{reason=\"truncated\"}") ==
                1);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
}

typedef struct {
    uint16_t port;
    long n;
    long sent;
} bulk_t;

static void *bulk_sender(void *arg)
{
    bulk_t *b = arg;
    char buf[16384];
    int fd = ih_connect(b->port);
    if (fd < 0) {
        return NULL;
    }
    while (b->sent < b->n) {
        size_t len = 0;
        while (len < sizeof(buf) - 100 && b->sent < b->n) {
            len += (size_t)snprintf(buf + len, sizeof(buf) - len,
                                    "{\"type\":\"bp\",\"i\":%ld,\"pad\":\"xxxxxxxxxxxxxxxx\"}\n",
                                    b->sent);
            b->sent++;
        }
        if (ih_send_all(fd, buf, len) != 0) {
            break;
        }
    }
    close(fd);
    return NULL;
}

typedef struct {
    int fd;
    long lines;
} reader_t;

static void *fifo_reader(void *arg)
{
    reader_t *r = arg;
    char buf[65536];
    int fl = fcntl(r->fd, F_GETFL);
    fcntl(r->fd, F_SETFL, fl & ~O_NONBLOCK);
    for (;;) {
        ssize_t n = read(r->fd, buf, sizeof(buf));
        if (n <= 0) {
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            r->lines += buf[i] == '\n';
        }
    }
    return NULL;
}

static void test_slow_sink_pauses_reading_bounds_memory_and_sheds_http(void **state)
{
    char dir[] = "/tmp/ingestd-bp-XXXXXX";
    char fifo[128], flag[160];
    ih_server_t s;
    pthread_t snd, rd;
    bulk_t b = {0};
    reader_t r = {0};
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(fifo, sizeof(fifo), "%s/sink.fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    r.fd = open(fifo, O_RDONLY | O_NONBLOCK); /* a reader that does not read yet */
    assert_true(r.fd >= 0);
    snprintf(flag, sizeof(flag), "--sink=file:%s", fifo);
    const char *extra[] = {flag, "--workers=1", NULL};
    assert_int_equal(ih_start(&s, extra), 0);
    double live0 = ih_metric(s.admin_port, "ingestd_memstats_alloc_bytes");

    b.port = s.tcp_port;
    b.n = 300000;
    assert_int_equal(pthread_create(&snd, NULL, bulk_sender, &b), 0);
    assert_true(ih_wait_metric(s.admin_port, "ingestd_read_pauses_total", 1, 60000) >= 1);
    assert_true(ih_metric(s.admin_port, "ingestd_sink_stalls_total") >= 1);
    char *resp = post(s.http_port, "application/x-ndjson", "{\"type\":\"h\"}\n");
    assert_int_equal(ih_http_status(resp), 503);
    assert_non_null(strstr(resp, "Retry-After:"));
    free(resp);
    assert_true(ih_metric(s.admin_port, "ingestd_http_responses_total{code=\"503\"}") == 1);
    double live1 = ih_metric(s.admin_port, "ingestd_memstats_alloc_bytes");
    assert_true(live1 - live0 < 8.0 * 1024 * 1024);
    assert_true(ih_metric(s.admin_port, "ingestd_events_accepted_total") < (double)b.n);

    assert_int_equal(pthread_create(&rd, NULL, fifo_reader, &r), 0);
    pthread_join(snd, NULL);
    assert_int_equal(b.sent, b.n);
    assert_true(ih_wait_metric(s.admin_port, "ingestd_events_accepted_total", (double)b.n,
                               120000) == (double)b.n);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    pthread_join(rd, NULL);
    close(r.fd);
    assert_int_equal(r.lines, b.n);
    unlink(fifo);
    rmdir(dir);
    ih_cleanup(&s);
}

static void test_over_the_memory_limit_reading_pauses_and_http_sheds(void **state)
{
    ih_server_t s;
    const char *extra[] = {"--memory-limit=1", NULL};
    (void)state;
    assert_int_equal(ih_start(&s, extra), 0);
    assert_true(ih_wait_metric(s.admin_port, "ingestd_memory_limit_exceeded", 1, 30000) == 1);
    char *r = post(s.http_port, "application/x-ndjson", "{\"type\":\"h\"}\n");
    assert_int_equal(ih_http_status(r), 503);
    free(r);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
}

/* Polls a sample until it equals want (at most timeout_ms); returns the last value read. */
static double wait_metric_eq(uint16_t port, const char *sample, double want, int timeout_ms)
{
    double v = ih_metric(port, sample);
    for (int t = 0; v != want && t < timeout_ms; t += 20) {
        usleep(20 * 1000);
        v = ih_metric(port, sample);
    }
    return v;
}

#define LIMIT_HOLDERS 100 /* connections that hold a partial line before the limit is reached */
#define LIMIT_LATE 200    /* connections that arrive, with a partial line, once it is exceeded */

static void test_over_the_memory_limit_partial_lines_complete_and_nothing_is_lost(void **state)
{
    /* Each connection's partial line holds one pooled block. Over the limit, reading went on
     * only where it needs no new block: the late connections wait, and once every client
     * completes its line and closes, every event is accepted and the memory is given back. */
    static const char part[] =
        "{\"type\":\"m\",\"pad\":\"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"
        "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy";
    static const char rest[] = "\"}\n";
    int fds[LIMIT_HOLDERS + LIMIT_LATE];
    ih_server_t s;
    ih_counts_t base;
    ih_counts_t d;
    /* One peer, partial lines held on purpose: no per-peer cap, no partial-line budget. */
    const char *extra[] = {"--memory-limit=256KiB", "--workers=2", "--partial-budget=off",
                           "--max-connections-per-peer=0", NULL};
    (void)state;

    assert_int_equal(ih_start(&s, extra), 0);
    assert_int_equal(ih_counts(s.admin_port, &base), 0);
    for (int i = 0; i < LIMIT_HOLDERS; i++) {
        fds[i] = ih_connect(s.tcp_port);
        assert_true(fds[i] >= 0);
        assert_int_equal(ih_send_all(fds[i], part, sizeof(part) - 1), 0);
    }
    /* 100 blocks alone are over 256 KiB. */
    assert_true(ih_wait_metric(s.admin_port, "ingestd_memory_limit_exceeded", 1, 10000) == 1);
    for (int i = LIMIT_HOLDERS; i < LIMIT_HOLDERS + LIMIT_LATE; i++) {
        fds[i] = ih_connect(s.tcp_port);
        assert_true(fds[i] >= 0);
        assert_int_equal(ih_send_all(fds[i], part, sizeof(part) - 1), 0);
    }
    assert_true(ih_wait_metric(s.admin_port, "ingestd_connections_active",
                               LIMIT_HOLDERS + LIMIT_LATE, 10000) == LIMIT_HOLDERS + LIMIT_LATE);
    usleep(200 * 1000); /* time to read, had reading not paused */
    /* Bounded: the late connections took no block (at most the holders, the arenas and a
     * worker's probes, 32 each, should any worker hold no line). */
    assert_true(ih_metric(s.admin_port, "ingestd_pool_blocks{state=\"in_use\"}") <
                LIMIT_HOLDERS + 2 * 32 + 8);
    assert_true(ih_metric(s.admin_port, "ingestd_memory_limit_exceeded") == 1);
    assert_true(ih_metric(s.admin_port, "ingestd_events_accepted_total") == base.v[0]);

    for (int i = 0; i < LIMIT_HOLDERS + LIMIT_LATE; i++) {
        assert_int_equal(ih_send_all(fds[i], rest, sizeof(rest) - 1), 0);
        close(fds[i]);
    }
    assert_int_equal(ih_wait_counts(s.admin_port, &base, LIMIT_HOLDERS + LIMIT_LATE, 10000, &d), 0);
    assert_true(d.v[0] == LIMIT_HOLDERS + LIMIT_LATE);
    for (int r = 1; r < IH_REASONS; r++) {
        assert_true(d.v[r] == 0);
    }
    /* The blocks went back and were released: below the limit again. */
    assert_true(wait_metric_eq(s.admin_port, "ingestd_memory_limit_exceeded", 0, 10000) == 0);
    assert_true(wait_metric_eq(s.admin_port, "ingestd_connections_active", 0, 10000) == 0);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_promtool_accepts_a_live_metrics_page),
        cmocka_unit_test(test_types_beyond_the_table_count_as_other),
        cmocka_unit_test(test_http_takes_ndjson_an_array_and_one_object),
        cmocka_unit_test(test_http_answers_413_431_400_404_and_405),
        cmocka_unit_test(test_http_early_413_and_431_reach_a_client_still_sending),
        cmocka_unit_test(test_http_pipelined_requests_are_answered_in_order),
        cmocka_unit_test(test_http_events_over_one_block_are_counted_as_oversize),
        cmocka_unit_test(test_ingest_port_serves_metrics_healthz_and_readyz),
        cmocka_unit_test(test_connections_over_the_limit_close_the_one_idle_longest),
        cmocka_unit_test(test_silent_connection_is_closed_after_the_idle_timeout),
        cmocka_unit_test(test_slow_sink_pauses_reading_bounds_memory_and_sheds_http),
        cmocka_unit_test(test_over_the_memory_limit_reading_pauses_and_http_sheds),
        cmocka_unit_test(test_over_the_memory_limit_partial_lines_complete_and_nothing_is_lost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
