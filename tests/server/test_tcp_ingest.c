/* test_tcp_ingest.c - integration: NDJSON over TCP against the real ingestd on loopback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define ACC 0
#define PARSE 1
#define NOT_OBJECT 2
#define NO_TYPE 3
#define TOO_LARGE 4
#define TRUNCATED 5
#define MAX_EVENT (1024 * 1024)
#define WAIT_MS 60000

static ih_server_t srv;

static int group_setup(void **state)
{
    static const char *const extra[] = {"--max-event-bytes=1MiB", NULL};
    (void)state;
    return ih_start(&srv, extra);
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = ih_stop(&srv, SIGTERM);
    ih_cleanup(&srv);
    return rc == 0 ? 0 : -1;
}

static void pause_ms(int ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* Sends data on a new connection (optionally as two writes cut at `cut`) and closes. */
static void send_conn(const char *data, size_t n, size_t cut)
{
    int fd = ih_connect(srv.tcp_port);
    assert_true(fd >= 0);
    if (cut > 0 && cut < n) {
        assert_int_equal(ih_send_all(fd, data, cut), 0);
        pause_ms(1);
        assert_int_equal(ih_send_all(fd, data + cut, n - cut), 0);
    } else {
        assert_int_equal(ih_send_all(fd, data, n), 0);
    }
    close(fd);
}

static void expect(const ih_counts_t *d, double acc, double parse, double not_object,
                   double no_type, double too_large, double truncated)
{
    assert_int_equal((long)d->v[ACC], (long)acc);
    assert_int_equal((long)d->v[PARSE], (long)parse);
    assert_int_equal((long)d->v[NOT_OBJECT], (long)not_object);
    assert_int_equal((long)d->v[NO_TYPE], (long)no_type);
    assert_int_equal((long)d->v[TOO_LARGE], (long)too_large);
    assert_int_equal((long)d->v[TRUNCATED], (long)truncated);
}

/* An event of exactly len bytes: {"type":"big","p":"xxx..."}. */
static char *event_of(size_t len)
{
    const char *head = "{\"type\":\"big\",\"p\":\"";
    size_t hl = strlen(head);
    char *e = malloc(len + 1);
    memcpy(e, head, hl);
    memset(e + hl, 'x', len - hl - 2);
    memcpy(e + len - 2, "\"}", 2);
    e[len] = '\0';
    return e;
}

static void test_tcp_every_split_point_gives_the_same_events(void **state)
{
    const char *in = "{\"type\":\"a\",\"n\":1}\r\n\n{\"type\":\"bb\"}\n{\"x\":1}\n";
    size_t n = strlen(in);
    ih_counts_t base, d;
    (void)state;
    assert_int_equal(ih_counts(srv.admin_port, &base), 0);
    for (size_t cut = 0; cut <= n; cut++) {
        send_conn(in, n, cut);
    }
    assert_int_equal(ih_wait_counts(srv.admin_port, &base, 3.0 * (n + 1), WAIT_MS, &d), 0);
    expect(&d, 2.0 * (n + 1), 0, 0, n + 1, 0, 0);
}

static void test_tcp_events_around_the_block_size_and_the_limit(void **state)
{
    const size_t sizes[] = {4095, 4096, 4097, MAX_EVENT, MAX_EVENT + 1};
    ih_counts_t base, d;
    (void)state;
    assert_int_equal(ih_counts(srv.admin_port, &base), 0);
    int fd = ih_connect(srv.tcp_port);
    assert_true(fd >= 0);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char *e = event_of(sizes[i]);
        assert_int_equal(ih_send_all(fd, e, sizes[i]), 0);
        assert_int_equal(ih_send_all(fd, i % 2 ? "\r\n" : "\n", i % 2 ? 2 : 1), 0);
        free(e);
    }
    assert_int_equal(ih_send_all(fd, "{\"type\":\"after\"}\n", 17), 0);
    close(fd);
    assert_int_equal(ih_wait_counts(srv.admin_port, &base, 6, WAIT_MS, &d), 0);
    expect(&d, 5, 0, 0, 0, 1, 0);
}

static void test_tcp_each_rejection_reason_is_counted_and_the_connection_survives(void **state)
{
    ih_counts_t base, d;
    const char *lines = "nope\n[1]\n{}\n{\"type\":7}\n\n   \r\n{\"type\":\"ok\"}\r\n";
    char *big = event_of(MAX_EVENT + 1);
    (void)state;
    assert_int_equal(ih_counts(srv.admin_port, &base), 0);
    int fd = ih_connect(srv.tcp_port);
    assert_true(fd >= 0);
    assert_int_equal(ih_send_all(fd, lines, strlen(lines)), 0);
    assert_int_equal(ih_send_all(fd, big, MAX_EVENT + 1), 0);
    const char *more = "\n{\"type\":\"still\"}\n{\"type\":\"cut";
    assert_int_equal(ih_send_all(fd, more, strlen(more)), 0);
    assert_int_equal(ih_wait_counts(srv.admin_port, &base, 7, WAIT_MS, &d), 0);
    expect(&d, 2, 1, 1, 2, 1, 0);
    /* Still open after every kind of bad line: the next event on it is accepted. */
    assert_int_equal(ih_send_all(fd, "\"}\n", 3), 0);
    assert_int_equal(ih_wait_counts(srv.admin_port, &base, 8, WAIT_MS, &d), 0);
    expect(&d, 3, 1, 1, 2, 1, 0);
    assert_int_equal(ih_send_all(fd, "{\"type\":", 8), 0);
    close(fd);
    assert_int_equal(ih_wait_counts(srv.admin_port, &base, 9, WAIT_MS, &d), 0);
    expect(&d, 3, 1, 1, 2, 1, 1);
    free(big);
}

static void test_tcp_ten_mib_line_is_rejected_unbuffered_then_next_event_accepted(void **state)
{
    ih_counts_t base, d;
    char chunk[65536];
    (void)state;
    memset(chunk, 'x', sizeof(chunk));
    double live0 = ih_metric(srv.admin_port, "ingestd_memstats_alloc_bytes");
    double rss0 = ih_metric(srv.admin_port, "process_resident_memory_bytes");
    assert_int_equal(ih_counts(srv.admin_port, &base), 0);
    int fd = ih_connect(srv.tcp_port);
    assert_true(fd >= 0);
    double live_max = 0;
    for (int i = 0; i < 160; i++) { /* 10 MiB, no newline */
        assert_int_equal(ih_send_all(fd, chunk, sizeof(chunk)), 0);
        if (i % 40 == 39) {
            double live = ih_metric(srv.admin_port, "ingestd_memstats_alloc_bytes");
            live_max = live > live_max ? live : live_max;
        }
    }
    assert_int_equal(ih_send_all(fd, "\n{\"type\":\"ok\"}\n", 15), 0);
    close(fd);
    assert_int_equal(ih_wait_counts(srv.admin_port, &base, 2, WAIT_MS, &d), 0);
    expect(&d, 1, 0, 0, 0, 1, 0);
    /* Memory stays bounded: at most the event limit plus slack, never the 10 MiB line. */
    assert_true(live_max - live0 < 4.0 * 1024 * 1024);
#if !defined(__SANITIZE_ADDRESS__)
    double rss1 = ih_metric(srv.admin_port, "process_resident_memory_bytes");
    assert_true(rss1 - rss0 < 8.0 * 1024 * 1024);
#else
    (void)rss0;
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_every_split_point_gives_the_same_events),
        cmocka_unit_test(test_tcp_events_around_the_block_size_and_the_limit),
        cmocka_unit_test(test_tcp_each_rejection_reason_is_counted_and_the_connection_survives),
        cmocka_unit_test(test_tcp_ten_mib_line_is_rejected_unbuffered_then_next_event_accepted),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
