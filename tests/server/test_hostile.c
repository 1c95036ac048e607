/* test_hostile.c - integration: issue 11's holes, each reproduced scaled down against the real
 * ingestd on loopback: partial lines over the budget and the memory limit, slow lines, one peer
 * taking every connection, the global cap, and the ingest allowlist. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "harness.h"

#define KIB 1024.0
#define MIB (1024.0 * 1024.0)

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A blocking TCP connection from source address src (loopback) to 127.0.0.1:port, with a 10 s
 * receive timeout; -1 on failure. */
static int connect_from(const char *src, uint16_t port)
{
    return ih_connect_from(src, port, 10);
}

/* 1 when the server closed fd (EOF or reset within the receive timeout), 0 when it is open. */
static int closed_by_server(int fd)
{
    char b[512];
    for (;;) {
        ssize_t n = recv(fd, b, sizeof(b), 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            return 1;
        }
        if (n < 0) {
            return 0; /* timed out: still open */
        }
    }
}

/* Sends a line opener and `len` bytes of 'a' without a newline. */
static int send_partial(int fd, size_t len)
{
    static const char head[] = "{\"type\":\"p\",\"x\":\"";
    char *buf = malloc(len);
    if (buf == NULL) {
        return -1;
    }
    memset(buf, 'a', len);
    int r = ih_send_all(fd, head, sizeof(head) - 1);
    if (r == 0) {
        r = ih_send_all(fd, buf, len);
    }
    free(buf);
    return r;
}

/* Sends n events in one go on a new connection and closes it. */
static int send_events(uint16_t port, int n)
{
    static const char ev[] = "{\"type\":\"fresh\",\"v\":1}\n";
    size_t len = (sizeof(ev) - 1) * (size_t)n;
    char *buf = malloc(len);
    int fd = connect_from(NULL, port);
    if (buf == NULL || fd < 0) {
        free(buf);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        memcpy(buf + (size_t)i * (sizeof(ev) - 1), ev, sizeof(ev) - 1);
    }
    int r = ih_send_all(fd, buf, len);
    close(fd);
    free(buf);
    return r;
}

/* One HTTP exchange from source address src; returns the response (caller frees) or NULL. */
static char *http_from(const char *src, uint16_t port, const char *req, size_t len)
{
    int fd = connect_from(src, port);
    if (fd < 0) {
        return NULL;
    }
    return ih_http_fd(fd, req, len, NULL);
}

/* POST /v1/events with extra header lines and a body (len bytes). */
static char *post_events(uint16_t port, const char *headers, const void *body, size_t len)
{
    size_t cap = len + 1024;
    char *req = malloc(cap);
    if (req == NULL) {
        return NULL;
    }
    int n = snprintf(req, cap,
                     "POST /v1/events HTTP/1.1\r\nHost: t\r\n%sContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     headers, len);
    memcpy(req + n, body, len);
    char *resp = http_from(NULL, port, req, (size_t)n + len);
    free(req);
    return resp;
}

/* gzip of data into a new buffer (*out_len). */
static unsigned char *gzip_of(const void *data, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return NULL;
    }
    size_t cap = deflateBound(&z, (uLong)len) + 64;
    unsigned char *out = malloc(cap);
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int r = deflate(&z, Z_FINISH);
    *out_len = z.total_out;
    deflateEnd(&z);
    if (r != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

static int status_of(char *resp)
{
    int st = ih_http_status(resp);
    free(resp);
    return st;
}

#define HOLDERS 64
#define FRESH 5000

/* Holes 1 and 2: HOLDERS connections each send part_len bytes of one line and hold it; then
 * live bytes must stay within bound, and a fresh client's FRESH events must all get in. */
static void partial_lines_attack(const char *const *flags, size_t part_len, double bound)
{
    ih_server_t s;
    int fds[HOLDERS];
    ih_counts_t base;
    ih_counts_t d;

    assert_int_equal(ih_start(&s, flags), 0);
    double idle = ih_metric(s.admin_port, "ingestd_memstats_alloc_bytes");
    assert_false(isnan(idle));
    assert_int_equal(ih_counts(s.admin_port, &base), 0);
    for (int i = 0; i < HOLDERS; i++) {
        fds[i] = connect_from(NULL, s.tcp_port);
        assert_true(fds[i] >= 0);
        assert_int_equal(send_partial(fds[i], part_len), 0);
    }
    /* Every byte sent was read (nothing is paused for good), so all of it was framed. */
    double sent = (double)HOLDERS * (double)(part_len + 17);
    assert_true(ih_wait_metric(s.admin_port, "ingestd_bytes_received_total{transport=\"tcp\"}",
                               sent, 60000) >= sent);
    double live = ih_metric(s.admin_port, "ingestd_memstats_alloc_bytes");
    double held = ih_metric(s.admin_port, "ingestd_partial_line_bytes");
    print_message("idle %.1f MiB, under attack %.1f MiB live, %.1f MiB in partial lines\n",
                  idle / MIB, live / MIB, held / MIB);
    assert_true(live - idle <= bound);

    /* A fresh client, the holders still open: all its events get in (bounded wait). */
    assert_int_equal(send_events(s.tcp_port, FRESH), 0);
    assert_true(ih_wait_metric(s.admin_port, "ingestd_events_accepted_total", FRESH, 30000) ==
                FRESH);
    live = ih_metric(s.admin_port, "ingestd_memstats_alloc_bytes");
    assert_true(live - idle <= bound);
    /* What made room: lines dropped under their own reason, counted. */
    assert_int_equal(ih_wait_counts(s.admin_port, &base, FRESH, 1000, &d), 0);
    assert_true(d.v[0] == FRESH);
    assert_true(ih_metric(s.admin_port, "ingestd_events_rejected_total{reason=\"over_budget\"}") >
                0);

    for (int i = 0; i < HOLDERS; i++) {
        close(fds[i]);
    }
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
}

static void test_partial_lines_stay_within_the_budget_and_a_fresh_client_gets_in(void **state)
{
    /* 64 x 256 KiB lines (16 MiB, 32 MiB of assembly buffers before) against a 4 MiB budget. */
    static const char *const flags[] = {"--partial-budget",
                                        "4MiB",
                                        "--max-connections-per-peer",
                                        "0",
                                        "--line-timeout",
                                        "off",
                                        NULL};
    (void)state;
    partial_lines_attack(flags, 256 * 1024, 4 * MIB + 4 * MIB);
}

static void test_memory_limit_holds_against_partial_lines_and_a_fresh_client_gets_in(void **state)
{
    /* 64 x 1 MiB lines (64 MiB, 128 MiB of buffers before) against a 24 MiB limit: the budget
     * is at most half the limit, and over it no line grows. Before: 4x the limit, and the fresh
     * client stayed paused. */
    static const char *const flags[] = {"--memory-limit",
                                        "24MiB",
                                        "--max-connections-per-peer",
                                        "0",
                                        "--line-timeout",
                                        "off",
                                        NULL};
    (void)state;
    partial_lines_attack(flags, 1000 * 1000, 24 * MIB + 4 * MIB);
}

static void
test_a_line_that_misses_the_line_timeout_is_dropped_then_the_connection_goes_on(void **state)
{
    static const char *const flags[] = {"--line-timeout", "300ms", NULL};
    ih_server_t s;
    ih_counts_t base;
    ih_counts_t d;
    (void)state;

    assert_int_equal(ih_start(&s, flags), 0);
    assert_int_equal(ih_counts(s.admin_port, &base), 0);
    int fd = connect_from(NULL, s.tcp_port);
    assert_true(fd >= 0);
    /* A trickler: a byte every 50 ms keeps the idle timer happy, not the line deadline. */
    assert_int_equal(send_partial(fd, 10), 0);
    for (int i = 0; i < 20 && ih_metric(s.admin_port, "ingestd_events_rejected_total{reason="
                                                      "\"slow_line\"}") < 1;
         i++) {
        assert_int_equal(ih_send_all(fd, "a", 1), 0);
        sleep_ms(50);
    }
    assert_true(ih_wait_metric(s.admin_port, "ingestd_events_rejected_total{reason=\"slow_line\"}",
                               1, 10000) == 1);
    assert_true(ih_metric(s.admin_port, "ingestd_partial_line_bytes") == 0);
    /* The rest of the dropped line is skipped; the connection goes on. */
    const char *rest = "aaa\"}\n{\"type\":\"after\"}\n";
    assert_int_equal(ih_send_all(fd, rest, strlen(rest)), 0);
    assert_int_equal(ih_wait_counts(s.admin_port, &base, 2, 10000, &d), 0);
    assert_true(d.v[0] == 1);
    /* A client that keeps doing it (its dropped line still unended a deadline later) is
     * closed. */
    assert_int_equal(send_partial(fd, 10), 0);
    assert_true(closed_by_server(fd));
    close(fd);
    assert_true(ih_metric(s.admin_port, "ingestd_events_rejected_total{reason=\"slow_line\"}") ==
                2);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
}

static void test_one_peer_cannot_take_every_connection(void **state)
{
    static const char *const flags[] = {"--max-connections-per-peer", "8", NULL};
    ih_server_t s;
    int fds[8];
    (void)state;

    assert_int_equal(ih_start(&s, flags), 0);
    for (int i = 0; i < 8; i++) {
        fds[i] = connect_from("127.0.0.1", s.tcp_port);
        assert_true(fds[i] >= 0);
    }
    assert_true(ih_wait_metric(s.admin_port, "ingestd_connections_active", 8, 10000) == 8);
    /* The ninth from the same address is refused; TCP closes, HTTP answers 503 first. */
    int extra = connect_from("127.0.0.1", s.tcp_port);
    assert_true(extra >= 0);
    assert_true(closed_by_server(extra));
    close(extra);
    int h = connect_from("127.0.0.1", s.http_port);
    assert_true(h >= 0);
    const char *req = "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    char *resp = ih_http_fd(h, req, strlen(req), NULL);
    assert_non_null(resp);
    assert_int_equal(ih_http_status(resp), 503);
    free(resp);
    assert_true(ih_metric(s.admin_port, "ingestd_connections_refused_total{reason=\"peer\"}") == 2);
    /* Another address still gets in and its events are taken. */
    int other = connect_from("127.0.0.2", s.tcp_port);
    assert_true(other >= 0);
    assert_int_equal(ih_send_all(other, "{\"type\":\"b\"}\n", 13), 0);
    assert_true(ih_wait_metric(s.admin_port, "ingestd_events_accepted_total", 1, 10000) == 1);
    close(other);
    for (int i = 0; i < 8; i++) {
        close(fds[i]);
    }
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
}

static void test_at_the_global_cap_the_connection_idle_longest_makes_room(void **state)
{
    static const char *const flags[] = {
        "--max-connections", "4", "--max-connections-per-peer", "0", "--workers", "1", NULL};
    ih_server_t s;
    int fds[4];
    (void)state;

    assert_int_equal(ih_start(&s, flags), 0);
    for (int i = 0; i < 4; i++) {
        fds[i] = connect_from(NULL, s.tcp_port);
        assert_true(fds[i] >= 0);
        assert_true(ih_wait_metric(s.admin_port, "ingestd_connections_active", i + 1, 10000) ==
                    i + 1);
        sleep_ms(20);
    }
    /* fds[1..3] show life; fds[0] stays silent longest. */
    for (int i = 1; i < 4; i++) {
        assert_int_equal(ih_send_all(fds[i], "\n", 1), 0);
    }
    sleep_ms(50);
    int fresh = connect_from(NULL, s.tcp_port);
    assert_true(fresh >= 0);
    assert_int_equal(ih_send_all(fresh, "{\"type\":\"new\"}\n", 15), 0);
    assert_true(ih_wait_metric(s.admin_port, "ingestd_events_accepted_total", 1, 10000) == 1);
    assert_true(closed_by_server(fds[0]));
    assert_true(ih_metric(s.admin_port, "ingestd_connections_evicted_total") == 1);
    assert_true(ih_metric(s.admin_port, "ingestd_connections_refused_total{reason=\"global\"}") ==
                0);
    close(fresh);
    for (int i = 0; i < 4; i++) {
        close(fds[i]);
    }
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
}

static void test_ingest_allow_closes_both_ingest_ports_to_other_peers(void **state)
{
    static const char *const flags[] = {"--ingest-allow", "127.0.0.2/32", NULL};
    ih_server_t s;
    (void)state;

    assert_int_equal(ih_start(&s, flags), 0);
    int fd = connect_from("127.0.0.1", s.tcp_port);
    assert_true(fd >= 0);
    (void)ih_send_all(fd, "{\"type\":\"a\"}\n", 13);
    assert_true(closed_by_server(fd));
    close(fd);
    int h = connect_from("127.0.0.1", s.http_port);
    assert_true(h >= 0);
    const char *req = "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    char *resp = ih_http_fd(h, req, strlen(req), NULL);
    assert_non_null(resp);
    assert_int_equal(ih_http_status(resp), 403);
    free(resp);
    int ok = connect_from("127.0.0.2", s.tcp_port);
    assert_true(ok >= 0);
    assert_int_equal(ih_send_all(ok, "{\"type\":\"a\"}\n", 13), 0);
    assert_true(ih_wait_metric(s.admin_port, "ingestd_events_accepted_total", 1, 10000) == 1);
    close(ok);
    assert_true(ih_metric(s.admin_port, "ingestd_connections_refused_total{reason=\"allow\"}") ==
                2);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
}

static void
test_http_ingest_needs_a_bearer_token_from_the_file_and_a_reload_takes_new_ones(void **state)
{
    char path[] = "/tmp/ingestd-tokens-XXXXXX";
    int tf = mkstemp(path);
    assert_true(tf >= 0);
    const char *first = "# ingest tokens\nfirst-token-0123456789\n";
    assert_int_equal(write(tf, first, strlen(first)), (ssize_t)strlen(first));
    close(tf);
    const char *const flags[] = {"--ingest-tokens-file", path, NULL};
    ih_server_t s;
    const char *ev = "{\"type\":\"a\"}\n";
    (void)state;

    assert_int_equal(ih_start(&s, flags), 0);
    /* No token, a wrong one, two Authorization lines: 401 with a challenge, nothing parsed. */
    char *r = post_events(s.http_port, "", ev, strlen(ev));
    assert_non_null(r);
    assert_int_equal(ih_http_status(r), 401);
    assert_non_null(strstr(r, "WWW-Authenticate: Bearer realm=\"ingestd\""));
    free(r);
    r = post_events(s.http_port, "Authorization: Bearer wrong-token-0123456789\r\n", ev,
                    strlen(ev));
    assert_non_null(strstr(r, "error=\"invalid_token\""));
    assert_int_equal(status_of(r), 401);
    assert_int_equal(status_of(post_events(s.http_port,
                                           "Authorization: Bearer first-token-0123456789\r\n"
                                           "Authorization: Bearer first-token-0123456789\r\n",
                                           ev, strlen(ev))),
                     401);
    assert_true(ih_metric(s.admin_port, "ingestd_http_auth_denied_total") == 3);
    assert_true(ih_metric(s.admin_port, "ingestd_events_accepted_total") == 0);
    assert_true(ih_metric(s.admin_port, "ingestd_http_responses_total{code=\"401\"}") == 3);
    /* The right token. */
    assert_int_equal(
        status_of(post_events(s.http_port, "Authorization: bearer first-token-0123456789\r\n", ev,
                              strlen(ev))),
        200);
    /* A new file on SIGHUP: the old token is gone, the new one works. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("second-token-0123456789\n", f);
    fclose(f);
    kill(s.pid, SIGHUP);
    int st = 0;
    for (int i = 0; i < 100; i++) {
        st = status_of(post_events(s.http_port, "Authorization: Bearer second-token-0123456789\r\n",
                                   ev, strlen(ev)));
        if (st == 200) {
            break;
        }
        sleep_ms(50);
    }
    assert_int_equal(st, 200);
    assert_int_equal(
        status_of(post_events(s.http_port, "Authorization: Bearer first-token-0123456789\r\n", ev,
                              strlen(ev))),
        401);
    /* A broken file on SIGHUP keeps the set in force. */
    f = fopen(path, "w");
    fputs("short\n", f);
    fclose(f);
    kill(s.pid, SIGHUP);
    sleep_ms(300);
    assert_int_equal(
        status_of(post_events(s.http_port, "Authorization: Bearer second-token-0123456789\r\n", ev,
                              strlen(ev))),
        200);
    /* TCP ingest is not asked for tokens (--ingest-allow closes it). */
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
    unlink(path);
}

static void test_metrics_on_the_ingest_port_obey_the_admin_allowlist_probes_stay_open(void **state)
{
    static const char *const flags[] = {"--admin-allow", "127.0.0.1/32", NULL};
    static const char get_metrics[] =
        "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    static const char get_health[] =
        "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    static const char get_ready[] = "GET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    ih_server_t s;
    (void)state;

    assert_int_equal(ih_start(&s, flags), 0);
    assert_int_equal(
        status_of(http_from("127.0.0.2", s.http_port, get_metrics, sizeof(get_metrics) - 1)), 403);
    assert_int_equal(
        status_of(http_from("127.0.0.2", s.http_port, get_health, sizeof(get_health) - 1)), 200);
    assert_int_equal(
        status_of(http_from("127.0.0.2", s.http_port, get_ready, sizeof(get_ready) - 1)), 200);
    assert_int_equal(
        status_of(http_from("127.0.0.1", s.http_port, get_metrics, sizeof(get_metrics) - 1)), 200);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
}

static void test_gzip_bodies_are_decoded_in_the_same_path_and_bad_codings_are_refused(void **state)
{
    static const char *const flags[] = {"--max-body-bytes", "256KiB", "--max-gzip-ratio", "50",
                                        NULL};
    ih_server_t s;
    size_t n = 0;
    (void)state;

    assert_int_equal(ih_start(&s, flags), 0);
    /* 2000 events, gzip: all accepted, the reply counts them. */
    char *plain = malloc(2000 * 40);
    size_t plen = 0;
    for (int i = 0; i < 2000; i++) {
        plen += (size_t)sprintf(plain + plen, "{\"type\":\"gz\",\"i\":%d}\n", i);
    }
    unsigned char *gz = gzip_of(plain, plen, &n);
    assert_non_null(gz);
    char *r = post_events(s.http_port, "Content-Encoding: gzip\r\n", gz, n);
    assert_int_equal(ih_http_status(r), 200);
    assert_non_null(strstr(r, "\"accepted\":2000,"));
    free(r);
    /* A later "identity" line does not undo gzip (the combined value counts). */
    r = post_events(s.http_port, "Content-Encoding: gzip\r\nContent-Encoding: identity\r\n", gz, n);
    assert_non_null(strstr(r, "\"accepted\":2000,"));
    assert_int_equal(status_of(r), 200);
    free(gz);
    /* A bomb: 4 MiB of zeros in a few KiB -> 413 (ratio, then size). */
    char *zeros = calloc(1, 4 << 20);
    gz = gzip_of(zeros, 4 << 20, &n);
    assert_int_equal(status_of(post_events(s.http_port, "Content-Encoding: gzip\r\n", gz, n)), 413);
    free(gz);
    /* Decoded size over --max-body-bytes, ratio fine: 413. */
    for (size_t i = 0; i < 1 << 20; i++) {
        zeros[i] = (char)('a' + (i * 7919 % 26));
    }
    gz = gzip_of(zeros, 1 << 20, &n);
    assert_true(n < 256 * 1024);
    assert_int_equal(status_of(post_events(s.http_port, "Content-Encoding: gzip\r\n", gz, n)), 413);
    /* Corrupt: 400. Another coding: 415. */
    gz[20] ^= 0x55;
    gz[21] ^= 0x55;
    assert_int_equal(status_of(post_events(s.http_port, "Content-Encoding: gzip\r\n", gz, n)), 400);
    free(gz);
    free(zeros);
    assert_int_equal(status_of(post_events(s.http_port, "Content-Encoding: br\r\n", "{}", 2)), 415);
    assert_int_equal(status_of(post_events(
                         s.http_port, "Content-Encoding: identity        , gzip\r\n", "{}", 2)),
                     400); /* gzip now: "{}" is no gzip stream */
    /* Transfer codings other than chunked: 501. No Host on HTTP/1.1: 400. Two Hosts: 400. */
    const char *te = "POST /v1/events HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n"
                     "Connection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
    assert_int_equal(status_of(http_from(NULL, s.http_port, te, strlen(te))), 501);
    const char *nohost = "POST /v1/events HTTP/1.1\r\nContent-Length: 2\r\n"
                         "Connection: close\r\n\r\n{}";
    assert_int_equal(status_of(http_from(NULL, s.http_port, nohost, strlen(nohost))), 400);
    const char *twohosts = "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n"
                           "Connection: close\r\n\r\n";
    assert_int_equal(status_of(http_from(NULL, s.http_port, twohosts, strlen(twohosts))), 400);
    free(plain);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
}

/* A gzip body's decoder and window (about 52 KiB) count in the partial budget: with a budget
 * smaller than that a gzip request is answered 503 and nothing is decoded; with the default it
 * goes through. */
static void test_a_gzip_decoder_counts_in_the_partial_budget(void **state)
{
    static const char *const small[] = {"--workers", "1", "--partial-budget", "16KiB", NULL};
    static const char *const deflt[] = {"--workers", "1", NULL};
    const char *const *flags[] = {small, deflt};
    const char ev[] = "{\"type\":\"gz\"}\n";
    size_t n = 0;
    (void)state;

    unsigned char *gz = gzip_of(ev, sizeof(ev) - 1, &n);
    assert_non_null(gz);
    for (int k = 0; k < 2; k++) {
        ih_server_t s;
        assert_int_equal(ih_start(&s, flags[k]), 0);
        char *r = post_events(s.http_port, "Content-Encoding: gzip\r\n", gz, n);
        assert_non_null(r);
        if (k == 0) {
            assert_int_equal(ih_http_status(r), 503);
        } else {
            assert_int_equal(ih_http_status(r), 200);
            assert_non_null(strstr(r, "\"accepted\":1,"));
        }
        free(r);
        assert_int_equal(ih_stop(&s, SIGTERM), 0);
        ih_cleanup(&s);
    }
    free(gz);
}

static void test_http_bodies_share_the_budget_a_line_over_it_is_rejected_over_budget(void **state)
{
    static const char *const flags[] = {"--partial-budget", "64KiB", "--workers", "1", NULL};
    ih_server_t s;
    size_t n = 200 * 1024;
    (void)state;

    assert_int_equal(ih_start(&s, flags), 0);
    char *body = malloc(n + 64);
    size_t len = (size_t)sprintf(body, "{\"type\":\"h\",\"x\":\"");
    memset(body + len, 'a', n);
    len += n;
    len += (size_t)sprintf(body + len, "\"}\n{\"type\":\"ok\"}\n");
    char *r = post_events(s.http_port, "", body, len);
    assert_non_null(r);
    assert_int_equal(ih_http_status(r), 200);
    assert_non_null(strstr(r, "\"accepted\":1,\"rejected\":1"));
    assert_non_null(strstr(r, "\"reason\":\"over_budget\""));
    free(r);
    free(body);
    assert_true(ih_metric(s.admin_port, "ingestd_partial_line_bytes") <= 64 * 1024);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partial_lines_stay_within_the_budget_and_a_fresh_client_gets_in),
        cmocka_unit_test(test_memory_limit_holds_against_partial_lines_and_a_fresh_client_gets_in),
        cmocka_unit_test(test_http_bodies_share_the_budget_a_line_over_it_is_rejected_over_budget),
        cmocka_unit_test(test_a_gzip_decoder_counts_in_the_partial_budget),
        cmocka_unit_test(
            test_a_line_that_misses_the_line_timeout_is_dropped_then_the_connection_goes_on),
        cmocka_unit_test(test_one_peer_cannot_take_every_connection),
        cmocka_unit_test(test_at_the_global_cap_the_connection_idle_longest_makes_room),
        cmocka_unit_test(test_ingest_allow_closes_both_ingest_ports_to_other_peers),
        cmocka_unit_test(
            test_http_ingest_needs_a_bearer_token_from_the_file_and_a_reload_takes_new_ones),
        cmocka_unit_test(test_metrics_on_the_ingest_port_obey_the_admin_allowlist_probes_stay_open),
        cmocka_unit_test(test_gzip_bodies_are_decoded_in_the_same_path_and_bad_codings_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
