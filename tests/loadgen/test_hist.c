/* test_hist.c - the log-linear histogram: bucket precision and percentiles of known data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>

#include "lg_hist.h"

static void test_hist_values_below_256_are_exact(void **state)
{
    (void)state;
    for (uint64_t v = 0; v < 256; v++) {
        assert_int_equal(lg_hist_bucket_high(lg_hist_index(v)), v);
    }
}

static void test_hist_every_bucket_is_within_one_percent(void **state)
{
    (void)state;
    uint64_t v = 256;
    unsigned prev = lg_hist_index(255);
    while (v < UINT64_MAX / 2) {
        unsigned i = lg_hist_index(v);
        assert_true(i < LG_HIST_BUCKETS);
        assert_true(i >= prev);
        uint64_t hi = lg_hist_bucket_high(i);
        assert_true(hi >= v);
        assert_true((double)(hi - v) <= (double)v * 0.01);
        prev = i;
        v += v / 97 + 1;
    }
    assert_true(lg_hist_index(UINT64_MAX) < LG_HIST_BUCKETS);
    assert_int_equal(lg_hist_bucket_high(lg_hist_index(UINT64_MAX)), UINT64_MAX);
}

static void assert_near(uint64_t got, uint64_t want)
{
    double d = (double)got - (double)want;
    assert_true(d >= 0 ? d <= want * 0.01 : -d <= want * 0.01);
}

static void test_hist_percentiles_of_uniform_data_are_within_one_percent(void **state)
{
    (void)state;
    lg_hist_t *h = malloc(sizeof(*h));
    assert_non_null(h);
    lg_hist_reset(h);
    for (uint64_t v = 1000000; v >= 1; v--) { /* 1 us .. 1 ms in ns, any order */
        lg_hist_record(h, v * 1000);
    }
    assert_int_equal(h->total, 1000000);
    assert_int_equal(h->min, 1000);
    assert_int_equal(h->max, 1000000000);
    assert_near(lg_hist_percentile(h, 50), 500000000);
    assert_near(lg_hist_percentile(h, 90), 900000000);
    assert_near(lg_hist_percentile(h, 99), 990000000);
    assert_near(lg_hist_percentile(h, 99.9), 999000000);
    assert_int_equal(lg_hist_percentile(h, 100), 1000000000);
    assert_int_equal(lg_hist_percentile(h, 0), 1000);
    assert_near((uint64_t)lg_hist_mean(h), 500000500);
    free(h);
}

static void test_hist_percentiles_see_a_rare_outlier(void **state)
{
    (void)state;
    lg_hist_t *h = malloc(sizeof(*h));
    assert_non_null(h);
    lg_hist_reset(h);
    for (int i = 0; i < 9990; i++) {
        lg_hist_record(h, 2000000); /* 2 ms */
    }
    for (int i = 0; i < 10; i++) {
        lg_hist_record(h, 300000000); /* 300 ms: 0.1% */
    }
    assert_near(lg_hist_percentile(h, 50), 2000000);
    assert_near(lg_hist_percentile(h, 99.9), 2000000);
    assert_near(lg_hist_percentile(h, 99.91), 300000000);
    assert_int_equal(lg_hist_percentile(h, 100), 300000000);
    free(h);
}

static void test_hist_merge_equals_recording_everything_in_one(void **state)
{
    (void)state;
    lg_hist_t *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b)), *all = malloc(sizeof(*all));
    assert_true(a && b && all);
    lg_hist_reset(a);
    lg_hist_reset(b);
    lg_hist_reset(all);
    uint64_t x = 12345;
    for (int i = 0; i < 20000; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        uint64_t v = (x >> 33) % 50000000;
        lg_hist_record(i % 3 ? a : b, v);
        lg_hist_record(all, v);
    }
    lg_hist_merge(a, b);
    assert_int_equal(a->total, all->total);
    assert_int_equal(a->min, all->min);
    assert_int_equal(a->max, all->max);
    for (double p = 1; p < 100; p += 7.5) {
        assert_int_equal(lg_hist_percentile(a, p), lg_hist_percentile(all, p));
    }
    free(a);
    free(b);
    free(all);
}

static void test_hist_empty_reports_zero(void **state)
{
    (void)state;
    lg_hist_t *h = malloc(sizeof(*h));
    assert_non_null(h);
    lg_hist_reset(h);
    assert_int_equal(lg_hist_percentile(h, 50), 0);
    assert_true(lg_hist_mean(h) == 0.0);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_values_below_256_are_exact),
        cmocka_unit_test(test_hist_every_bucket_is_within_one_percent),
        cmocka_unit_test(test_hist_percentiles_of_uniform_data_are_within_one_percent),
        cmocka_unit_test(test_hist_percentiles_see_a_rare_outlier),
        cmocka_unit_test(test_hist_merge_equals_recording_everything_in_one),
        cmocka_unit_test(test_hist_empty_reports_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
