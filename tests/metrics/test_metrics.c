/* test_metrics.c - the Prometheus text exposition: writer, headers, exact numbers and special
 * values, label escaping, histograms (cumulative buckets, le spelling, merge), and the process
 * collector against what /proc and getrlimit say. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mem/mem.h"
#include "metrics/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static void test_writer_grows_and_keeps_every_byte(void **state)
{
    (void)state;
    metrics_writer_t w;
    metrics_writer_init(&w);
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < 100; i++) {
        metrics_writer_printf(&w, "%d:%s\n", i, i == 50 ? big : "");
    }
    assert_false(w.oom);
    size_t want = 0;
    for (int i = 0; i < 100; i++) {
        char num[16];
        want += (size_t)snprintf(num, sizeof num, "%d:\n", i);
    }
    want += sizeof big - 1;
    assert_int_equal(w.len, want);
    assert_int_equal(strlen(w.buf), want);
    assert_memory_equal(w.buf, "0:\n1:\n", 6);
    assert_non_null(strstr(w.buf, "50:xxx"));
    metrics_writer_free(&w);
    assert_null(w.buf);
    metrics_writer_free(&w); /* twice is harmless */
}

static void test_writer_marks_oom_when_growth_fails(void **state)
{
    (void)state;
    metrics_writer_t w;
    metrics_writer_init(&w);
    mem_fail_after(0);
    metrics_writer_printf(&w, "a %d\n", 1);
    assert_true(w.oom);
    metrics_writer_printf(&w, "b %d\n", 2); /* ignored once oom */
    assert_int_equal(w.len, 0);
    metrics_writer_free(&w);
}

static void test_family_header_escapes_backslash_and_newline_in_help(void **state)
{
    (void)state;
    metrics_writer_t w;
    metrics_writer_init(&w);
    metrics_family(&w, "ingestd_x_total", "counter", "a\\b\nc \"q\"");
    assert_string_equal(w.buf, "# HELP ingestd_x_total a\\\\b\\nc \"q\"\n"
                               "# TYPE ingestd_x_total counter\n");
    metrics_writer_free(&w);
}

static void test_integers_print_exactly_at_their_extremes(void **state)
{
    (void)state;
    metrics_writer_t w;
    metrics_writer_init(&w);
    metrics_sample_u64(&w, "u", NULL, UINT64_MAX);
    metrics_sample_u64(&w, "u", "", 0);
    metrics_sample_i64(&w, "i", "k=\"v\"", INT64_MIN);
    metrics_sample_i64(&w, "i", NULL, INT64_MAX);
    metrics_sample_u64(&w, "big", NULL, (UINT64_C(1) << 53) + 1); /* not exact as a double */
    assert_string_equal(w.buf, "u 18446744073709551615\n"
                               "u 0\n"
                               "i{k=\"v\"} -9223372036854775808\n"
                               "i 9223372036854775807\n"
                               "big 9007199254740993\n");
    metrics_writer_free(&w);
}

static void test_special_floats_are_spelled_as_prometheus_does(void **state)
{
    (void)state;
    metrics_writer_t w;
    metrics_writer_init(&w);
    metrics_sample_f64(&w, "f", NULL, NAN);
    metrics_sample_f64(&w, "f", NULL, INFINITY);
    metrics_sample_f64(&w, "f", NULL, -INFINITY);
    metrics_sample_f64(&w, "f", NULL, 0.0);
    metrics_sample_f64(&w, "f", NULL, -0.0);
    metrics_sample_f64(&w, "f", NULL, 0.1);
    metrics_sample_f64(&w, "f", NULL, 2.5);
    metrics_sample_f64(&w, "f", NULL, 1e6);
    metrics_sample_f64(&w, "f", NULL, 100000);
    metrics_sample_f64(&w, "f", NULL, 1e-5);
    metrics_sample_f64(&w, "f", NULL, -1.5e300);
    assert_string_equal(w.buf, "f NaN\nf +Inf\nf -Inf\nf 0\nf 0\nf 0.1\nf 2.5\nf 1e+06\n"
                               "f 100000\nf 1e-05\nf -1.5e+300\n");
    metrics_writer_free(&w);
}

static void test_doubles_read_back_exactly(void **state)
{
    (void)state;
    const double v[] = {1.0 / 3,
                        M_PI,
                        5e-324,
                        1.7976931348623157e308,
                        0.30000000000000004,
                        123456.789,
                        1e21,
                        4503599627370497.0};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char buf[40];
        size_t n = metrics_format_double(buf, sizeof buf, v[i]);
        assert_int_equal(n, strlen(buf));
        assert_true(strtod(buf, NULL) == v[i]);
    }
}

static void test_label_values_escape_quote_backslash_and_newline(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(metrics_label_escape(out, sizeof out, "a\\b\"c\nd"), 10);
    assert_string_equal(out, "a\\\\b\\\"c\\nd");
    assert_int_equal(metrics_label_escape(out, sizeof out, NULL), 0);
    assert_string_equal(out, "");
    /* Valid UTF-8 passes through; invalid bytes become U+FFFD. */
    metrics_label_escape(out, sizeof out, "caf\xc3\xa9 \xff\xc0\xaf");
    assert_string_equal(out, "caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    metrics_label_escape(out, sizeof out, "\xed\xa0\x80"); /* a UTF-16 surrogate */
    assert_string_equal(out, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}

static void test_label_escape_truncates_between_escapes_never_inside(void **state)
{
    (void)state;
    char out[4];
    assert_int_equal(metrics_label_escape(out, sizeof out, "ab\"c"), 2);
    assert_string_equal(out, "ab");
    assert_int_equal(metrics_label_escape(out, sizeof out, "a\xc3\xa9\xc3\xa9"), 3);
    assert_string_equal(out, "a\xc3\xa9");
    assert_int_equal(metrics_label_escape(out, 1, "abc"), 0);
    assert_string_equal(out, "");
}

static void test_labelled_sample_escapes_its_value(void **state)
{
    (void)state;
    metrics_writer_t w;
    metrics_writer_init(&w);
    metrics_sample_u64_label(&w, "ingestd_events_by_type_total", "type", "a\"b\\c\nd", 7);
    assert_string_equal(w.buf, "ingestd_events_by_type_total{type=\"a\\\"b\\\\c\\nd\"} 7\n");
    metrics_writer_free(&w);
}

static const double bounds[] = {0.0001, 0.001, 0.01, 0.1, 1};

static void test_histogram_init_rejects_bad_bounds(void **state)
{
    (void)state;
    metrics_hist_t h;
    const double unsorted[] = {0.1, 0.01};
    const double repeated[] = {0.1, 0.1};
    const double nan[] = {NAN};
    double many[METRICS_HIST_MAX_BOUNDS + 1];
    for (size_t i = 0; i < sizeof many / sizeof many[0]; i++) {
        many[i] = (double)(i + 1);
    }
    assert_int_equal(metrics_hist_init(&h, unsorted, 2), -EINVAL);
    assert_int_equal(metrics_hist_init(&h, repeated, 2), -EINVAL);
    assert_int_equal(metrics_hist_init(&h, nan, 1), -EINVAL);
    assert_int_equal(metrics_hist_init(&h, many, METRICS_HIST_MAX_BOUNDS + 1), -EINVAL);
    assert_int_equal(metrics_hist_init(&h, many, METRICS_HIST_MAX_BOUNDS), 0);
    assert_int_equal(metrics_hist_init(&h, NULL, 0), 0);
}

static void test_histogram_writes_cumulative_buckets_sum_and_count(void **state)
{
    (void)state;
    metrics_hist_t h;
    assert_int_equal(metrics_hist_init(&h, bounds, 5), 0);
    metrics_hist_observe_ns(&h, 100000);     /* exactly 0.0001 s: le is inclusive */
    metrics_hist_observe_ns(&h, 100001);     /* just above: next bucket */
    metrics_hist_observe_ns(&h, 5000000);    /* 5 ms */
    metrics_hist_observe_ns(&h, 2000000000); /* 2 s: only +Inf */
    metrics_writer_t w;
    metrics_writer_init(&w);
    metrics_hist_write(&w, "ingestd_pool_trim_duration_seconds", "Trim time.", &h);
    assert_string_equal(w.buf, "# HELP ingestd_pool_trim_duration_seconds Trim time.\n"
                               "# TYPE ingestd_pool_trim_duration_seconds histogram\n"
                               "ingestd_pool_trim_duration_seconds_bucket{le=\"0.0001\"} 1\n"
                               "ingestd_pool_trim_duration_seconds_bucket{le=\"0.001\"} 2\n"
                               "ingestd_pool_trim_duration_seconds_bucket{le=\"0.01\"} 3\n"
                               "ingestd_pool_trim_duration_seconds_bucket{le=\"0.1\"} 3\n"
                               "ingestd_pool_trim_duration_seconds_bucket{le=\"1\"} 3\n"
                               "ingestd_pool_trim_duration_seconds_bucket{le=\"+Inf\"} 4\n"
                               "ingestd_pool_trim_duration_seconds_sum 2.005200001\n"
                               "ingestd_pool_trim_duration_seconds_count 4\n");
    metrics_writer_free(&w);
}

static void test_histogram_shards_merge_into_one(void **state)
{
    (void)state;
    metrics_hist_t a, b, sum;
    assert_int_equal(metrics_hist_init(&a, bounds, 5), 0);
    assert_int_equal(metrics_hist_init(&b, bounds, 5), 0);
    assert_int_equal(metrics_hist_init(&sum, bounds, 5), 0);
    metrics_hist_observe_ns(&a, 50000);
    metrics_hist_observe_ns(&a, 50000000);
    metrics_hist_observe_ns(&b, 500000);
    metrics_hist_merge(&sum, &a);
    metrics_hist_merge(&sum, &b);
    metrics_writer_t w;
    metrics_writer_init(&w);
    metrics_hist_samples(&w, "h", "worker=\"0\"", &sum);
    assert_string_equal(w.buf, "h_bucket{worker=\"0\",le=\"0.0001\"} 1\n"
                               "h_bucket{worker=\"0\",le=\"0.001\"} 2\n"
                               "h_bucket{worker=\"0\",le=\"0.01\"} 2\n"
                               "h_bucket{worker=\"0\",le=\"0.1\"} 3\n"
                               "h_bucket{worker=\"0\",le=\"1\"} 3\n"
                               "h_bucket{worker=\"0\",le=\"+Inf\"} 3\n"
                               "h_sum{worker=\"0\"} 0.05055\n"
                               "h_count{worker=\"0\"} 3\n");
    metrics_writer_free(&w);
}

static void test_histogram_without_bounds_has_only_the_inf_bucket(void **state)
{
    (void)state;
    metrics_hist_t h;
    assert_int_equal(metrics_hist_init(&h, NULL, 0), 0);
    metrics_hist_observe_ns(&h, 1);
    metrics_writer_t w;
    metrics_writer_init(&w);
    metrics_hist_samples(&w, "h", NULL, &h);
    assert_string_equal(w.buf, "h_bucket{le=\"+Inf\"} 1\nh_sum 1e-09\nh_count 1\n");
    metrics_writer_free(&w);
}

static void test_process_collector_reads_what_the_kernel_says(void **state)
{
    (void)state;
    metrics_process_t p, q;
    assert_int_equal(metrics_process_read(&p), 0);
    assert_true(p.cpu_seconds_total >= 0);
    assert_true(p.resident_memory_bytes > 0);
    assert_true(p.virtual_memory_bytes >= p.resident_memory_bytes);
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    assert_int_equal(p.max_fds, rl.rlim_cur);
    assert_true(p.start_time_seconds > 1e9);
    assert_true(p.start_time_seconds <= (double)time(NULL) + 2);

    /* Exactly one more descriptor is seen while one more is open. */
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(metrics_process_read(&q), 0);
    assert_int_equal(q.open_fds, p.open_fds + 1);
    close(fd);
    assert_int_equal(metrics_process_read(&q), 0);
    assert_int_equal(q.open_fds, p.open_fds);
    assert_true(q.start_time_seconds == p.start_time_seconds);
}

static void test_process_collector_writes_six_families(void **state)
{
    (void)state;
    metrics_process_t p = {
        .cpu_seconds_total = 1.25,
        .resident_memory_bytes = 4096,
        .virtual_memory_bytes = 8192,
        .open_fds = 5,
        .max_fds = 1024,
        .start_time_seconds = 1700000000.5,
    };
    metrics_writer_t w;
    metrics_writer_init(&w);
    metrics_process_write(&w, &p);
    assert_non_null(strstr(w.buf, "# TYPE process_cpu_seconds_total counter\n"
                                  "process_cpu_seconds_total 1.25\n"));
    assert_non_null(strstr(w.buf, "\nprocess_resident_memory_bytes 4096\n"));
    assert_non_null(strstr(w.buf, "\nprocess_virtual_memory_bytes 8192\n"));
    assert_non_null(strstr(w.buf, "\nprocess_open_fds 5\n"));
    assert_non_null(strstr(w.buf, "\nprocess_max_fds 1024\n"));
    assert_non_null(strstr(w.buf, "\nprocess_start_time_seconds 1.7000000005e+09\n"));
    size_t types = 0;
    for (const char *s = w.buf; (s = strstr(s, "# TYPE ")) != NULL; s++) {
        types++;
    }
    assert_int_equal(types, 6);
    metrics_writer_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writer_grows_and_keeps_every_byte),
        cmocka_unit_test(test_writer_marks_oom_when_growth_fails),
        cmocka_unit_test(test_family_header_escapes_backslash_and_newline_in_help),
        cmocka_unit_test(test_integers_print_exactly_at_their_extremes),
        cmocka_unit_test(test_special_floats_are_spelled_as_prometheus_does),
        cmocka_unit_test(test_doubles_read_back_exactly),
        cmocka_unit_test(test_label_values_escape_quote_backslash_and_newline),
        cmocka_unit_test(test_label_escape_truncates_between_escapes_never_inside),
        cmocka_unit_test(test_labelled_sample_escapes_its_value),
        cmocka_unit_test(test_histogram_init_rejects_bad_bounds),
        cmocka_unit_test(test_histogram_writes_cumulative_buckets_sum_and_count),
        cmocka_unit_test(test_histogram_shards_merge_into_one),
        cmocka_unit_test(test_histogram_without_bounds_has_only_the_inf_bucket),
        cmocka_unit_test(test_process_collector_reads_what_the_kernel_says),
        cmocka_unit_test(test_process_collector_writes_six_families),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
