/* test_prom.c - URL parsing and summing Prometheus text-format families. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "lg_prom.h"

static void test_url_parse_reads_tcp_http_and_bracketed_v6(void **state)
{
    (void)state;
    lg_url_t u;
    assert_int_equal(lg_url_parse("tcp://127.0.0.1:7070", &u), 0);
    assert_string_equal(u.scheme, "tcp");
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 7070);
    assert_int_equal(lg_url_parse("http://localhost:8080/v1/events", &u), 0);
    assert_string_equal(u.scheme, "http");
    assert_string_equal(u.host, "localhost");
    assert_string_equal(u.path, "/v1/events");
    assert_int_equal(lg_url_parse("http://[::1]:6060", &u), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6060);
    assert_string_equal(u.path, "/");
    assert_int_equal(lg_url_parse("127.0.0.1:9", &u), 0);
    assert_string_equal(u.scheme, "tcp");
}

static void test_url_parse_rejects_bad_urls(void **state)
{
    (void)state;
    lg_url_t u;
    assert_int_equal(lg_url_parse("ftp://h:1", &u), -EINVAL);
    assert_int_equal(lg_url_parse("tcp://h", &u), -EINVAL);
    assert_int_equal(lg_url_parse("tcp://h:0", &u), -EINVAL);
    assert_int_equal(lg_url_parse("tcp://h:70000", &u), -EINVAL);
    assert_int_equal(lg_url_parse("tcp://:80", &u), -EINVAL);
    assert_int_equal(lg_url_parse("http://h:80x", &u), -EINVAL);
}

static const char text[] = "# HELP ingestd_events_accepted_total events that passed validation\n"
                           "# TYPE ingestd_events_accepted_total counter\n"
                           "ingestd_events_accepted_total 1234\n"
                           "ingestd_events_accepted_total_extra 99\n"
                           "ingestd_events_rejected_total{reason=\"parse\"} 3\n"
                           "ingestd_events_rejected_total{reason=\"no_type\"} 4\n"
                           "ingestd_events_rejected_total{reason=\"too_large\"} 5e0\n"
                           "process_cpu_seconds_total 1.25\n"
                           "process_resident_memory_bytes 1.2e+07";

static void test_prom_sum_adds_every_labelled_sample_of_a_family(void **state)
{
    (void)state;
    double v = 0;
    assert_int_equal(lg_prom_sum(text, "ingestd_events_accepted_total", NULL, &v), 0);
    assert_true(v == 1234);
    assert_int_equal(lg_prom_sum(text, "ingestd_events_rejected_total", NULL, &v), 0);
    assert_true(v == 12);
    assert_int_equal(lg_prom_sum(text, "process_cpu_seconds_total", NULL, &v), 0);
    assert_true(v == 1.25);
    assert_int_equal(lg_prom_sum(text, "process_resident_memory_bytes", NULL, &v), 0);
    assert_true(v == 12000000);
}

static void test_prom_sum_filters_by_label_and_misses_unknown_families(void **state)
{
    (void)state;
    double v = 0;
    assert_int_equal(lg_prom_sum(text, "ingestd_events_rejected_total", "reason=\"no_type\"", &v),
                     0);
    assert_true(v == 4);
    assert_int_equal(lg_prom_sum(text, "ingestd_events_rejected_total", "reason=\"x\"", &v),
                     -ENOENT);
    assert_int_equal(lg_prom_sum(text, "ingestd_events", NULL, &v), -ENOENT);
    assert_int_equal(lg_prom_sum("", "a", NULL, &v), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_parse_reads_tcp_http_and_bracketed_v6),
        cmocka_unit_test(test_url_parse_rejects_bad_urls),
        cmocka_unit_test(test_prom_sum_adds_every_labelled_sample_of_a_family),
        cmocka_unit_test(test_prom_sum_filters_by_label_and_misses_unknown_families),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
