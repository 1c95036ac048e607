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
    struct sockaddr_in a;
    struct timeval tv = {10, 0};
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    if (src != NULL) {
        inet_pton(AF_INET, src, &a.sin_addr);
        if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
            close(fd);
            return -1;
        }
    }
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
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
    assert_true(ih_metric(s.admin_port, "ingestd_events_rejected_total{reason=\"over_budget\"}") >
                0);

    /* A fresh client, the holders still open: all its events get in (bounded wait). */
    assert_int_equal(send_events(s.tcp_port, FRESH), 0);
    assert_int_equal(ih_wait_counts(s.admin_port, &base, FRESH, 60000, &d), 0);
    assert_true(d.v[0] == FRESH);
    live = ih_metric(s.admin_port, "ingestd_memstats_alloc_bytes");
    assert_true(live - idle <= bound);

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partial_lines_stay_within_the_budget_and_a_fresh_client_gets_in),
        cmocka_unit_test(test_memory_limit_holds_against_partial_lines_and_a_fresh_client_gets_in),
        cmocka_unit_test(
            test_a_line_that_misses_the_line_timeout_is_dropped_then_the_connection_goes_on),
        cmocka_unit_test(test_one_peer_cannot_take_every_connection),
        cmocka_unit_test(test_at_the_global_cap_the_connection_idle_longest_makes_room),
        cmocka_unit_test(test_ingest_allow_closes_both_ingest_ports_to_other_peers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
