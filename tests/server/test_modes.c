/* test_modes.c - integration: every memory mode counts exactly what was sent, and pooled mode
 * makes (almost) no heap allocation per event. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define WAIT_MS 120000

static const char *const kinds[] = {
    "{\"type\":\"click\",\"user\":12345,\"page\":\"/home\",\"tags\":[\"a\",\"b\"],\"ok\":true}\n",
    "{\"type\":\"view\",\"n\":1.5}\r\n",
    "{\"type\":\"order\",\"items\":[{\"sku\":\"x\",\"q\":2},{\"sku\":\"y\",\"q\":1}]}\n",
    "{\"type\":\n",       /* parse */
    "[1,2,3]\n",          /* not_object */
    "{\"kind\":\"x\"}\n", /* no_type */
    "\n",                 /* blank: not an event */
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

/* Sends `rounds` rounds of kinds[] over nconn connections in turn. */
static void send_mix(uint16_t port, int nconn, int rounds)
{
    int fds[8];
    char *buf = malloc(64 * 1024);
    size_t len = 0;
    for (int i = 0; i < nconn; i++) {
        fds[i] = ih_connect(port);
        assert_true(fds[i] >= 0);
    }
    for (int r = 0; r < rounds; r++) {
        for (size_t k = 0; k < NKINDS; k++) {
            size_t n = strlen(kinds[k]);
            if (len + n > 64 * 1024) {
                assert_int_equal(ih_send_all(fds[r % nconn], buf, len), 0);
                len = 0;
            }
            memcpy(buf + len, kinds[k], n);
            len += n;
        }
    }
    assert_int_equal(ih_send_all(fds[0], buf, len), 0);
    for (int i = 0; i < nconn; i++) {
        close(fds[i]);
    }
    free(buf);
}

static void run_mode(const char *pool, const char *allocator)
{
    ih_server_t s;
    ih_counts_t base, d;
    char a1[32], a2[40], sample[160];
    const char *extra[] = {a1, a2, NULL};
    const int rounds = 5000;

    snprintf(a1, sizeof(a1), "--pool=%s", pool);
    snprintf(a2, sizeof(a2), "--allocator=%s", allocator);
    assert_int_equal(ih_start(&s, extra), 0);
    snprintf(sample, sizeof(sample),
             "ingestd_build_info{version=\"%s\",allocator=\"%s\",pool=\"%s\"}", INGESTD_VERSION,
             allocator, pool);
    assert_true(ih_metric(s.admin_port, sample) == 1.0);
    /* The allocator really serving is the one asked for (a probe checked by ingestd). */
    assert_true(ih_metric(s.admin_port, "ingestd_allocator_verified") == 1.0);
    assert_int_equal(ih_counts(s.admin_port, &base), 0);
    send_mix(s.tcp_port, 3, rounds);
    assert_int_equal(ih_wait_counts(s.admin_port, &base, 6.0 * rounds, WAIT_MS, &d), 0);
    assert_int_equal((long)d.v[0], 3L * rounds);
    assert_int_equal((long)d.v[1], rounds);
    assert_int_equal((long)d.v[2], rounds);
    assert_int_equal((long)d.v[3], rounds);
    assert_int_equal((long)d.v[4], 0);
    assert_int_equal((long)d.v[5], 0);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    assert_int_equal(ih_log_value(&s, "shutdown", "events_accepted"), 3L * rounds);
    ih_cleanup(&s);
}

static void test_pooled_libc_counts_everything_sent(void **state)
{
    (void)state;
    run_mode("on", "libc");
}

static void test_pooled_mimalloc_counts_everything_sent(void **state)
{
    (void)state;
    run_mode("on", "mimalloc");
}

static void test_naive_libc_counts_everything_sent(void **state)
{
    (void)state;
    run_mode("off", "libc");
}

static void test_naive_mimalloc_counts_everything_sent(void **state)
{
    (void)state;
    run_mode("off", "mimalloc");
}

/* Sends n copies of one event on one connection; returns mallocs per event after warm-up,
 * corrected for what the scrapes themselves allocate. */
static double mallocs_per_event(const char *pool, const char *parse, long n)
{
    ih_server_t s;
    ih_counts_t base, d;
    char a1[32];
    char a2[32];
    const char *extra[] = {a1, a2, "--workers=1", "--trim-interval=off", NULL};
    const char *ev = kinds[0];
    size_t evlen = strlen(ev);
    size_t per_chunk = 65536 / evlen;
    char *chunk = malloc(per_chunk * evlen);

    for (size_t i = 0; i < per_chunk; i++) {
        memcpy(chunk + i * evlen, ev, evlen);
    }
    snprintf(a1, sizeof(a1), "--pool=%s", pool);
    snprintf(a2, sizeof(a2), "--parse=%s", parse);
    assert_int_equal(ih_start(&s, extra), 0);
    int fd = ih_connect(s.tcp_port);
    assert_true(fd >= 0);
    /* Warm-up: the pool, the sink and the connection reach their steady state. */
    assert_int_equal(ih_counts(s.admin_port, &base), 0);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(ih_send_all(fd, chunk, per_chunk * evlen), 0);
    }
    assert_int_equal(ih_wait_counts(s.admin_port, &base, 10.0 * per_chunk, WAIT_MS, &d), 0);
    /* What one scrape costs, measured on an idle server. */
    double m0 = ih_metric(s.admin_port, "ingestd_memstats_mallocs_total");
    double m1 = ih_metric(s.admin_port, "ingestd_memstats_mallocs_total");
    double per_scrape = m1 - m0;
    assert_int_equal(ih_counts(s.admin_port, &base), 0);
    double start = ih_metric(s.admin_port, "ingestd_memstats_mallocs_total");
    long chunks = (n + (long)per_chunk - 1) / (long)per_chunk;
    for (long i = 0; i < chunks; i++) {
        assert_int_equal(ih_send_all(fd, chunk, per_chunk * evlen), 0);
    }
    double sent = (double)chunks * (double)per_chunk;
    int scrapes = 0;
    for (;;) {
        ih_counts_t now;
        assert_int_equal(ih_counts(s.admin_port, &now), 0);
        scrapes++;
        if (now.v[0] - base.v[0] >= sent) {
            break;
        }
        assert_true(scrapes < 2000);
        usleep(200000);
    }
    double end = ih_metric(s.admin_port, "ingestd_memstats_mallocs_total");
    scrapes++;
    close(fd);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
    free(chunk);
    double allocs = end - start - per_scrape * scrapes;
    return (allocs < 0 ? 0 : allocs) / sent;
}

static void test_pooled_tree_and_scan_make_under_a_thousandth_allocation_per_event(void **state)
{
    (void)state;
    /* The asan preset frees every block on put (INGESTD_POOL_FREE_ON_PUT=1) so that ASan sees
     * use after put; this test is about caching, so its children run without it - the check
     * runs under ASan too. The setting is restored for the tests after this one. */
    const char *fop = getenv("INGESTD_POOL_FREE_ON_PUT");
    char *saved = fop != NULL ? strdup(fop) : NULL;
    unsetenv("INGESTD_POOL_FREE_ON_PUT");
    double pooled = mallocs_per_event("on", "tree", 1000000);
    double scan = mallocs_per_event("on", "scan", 1000000);
    double naive = mallocs_per_event("off", "tree", 100000);
    if (saved != NULL) {
        setenv("INGESTD_POOL_FREE_ON_PUT", saved, 1);
        free(saved);
    }
    print_message("mallocs per event: pooled tree %.6f, pooled scan %.6f, naive tree %.3f\n",
                  pooled, scan, naive);
    assert_true(pooled < 0.001);
    assert_true(scan < 0.001);
    assert_true(naive > 1.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pooled_libc_counts_everything_sent),
        cmocka_unit_test(test_pooled_mimalloc_counts_everything_sent),
        cmocka_unit_test(test_naive_libc_counts_everything_sent),
        cmocka_unit_test(test_naive_mimalloc_counts_everything_sent),
        cmocka_unit_test(test_pooled_tree_and_scan_make_under_a_thousandth_allocation_per_event),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
