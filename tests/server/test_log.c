/* test_log.c - unit tests for ingestd's stderr log (server/log.h): text and JSON records,
 * escaping, the per-site rate limiter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/log.h"

static char captured[65536];

/* Runs fn with stderr redirected into `captured`. */
static void capture(void (*fn)(void))
{
    char path[] = "/tmp/ingestd-log-XXXXXX";
    int fd = mkstemp(path);
    int saved = dup(STDERR_FILENO);
    assert_true(fd >= 0 && saved >= 0);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    ssize_t n = pread(fd, captured, sizeof(captured) - 1, 0);
    captured[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s != '\0'; s++) {
        n += *s == '\n';
    }
    return n;
}

static void log_kv(void)
{
    srv_log("info", "listening", "tcp", "127.0.0.1:7070", "sink", "file:/a b", "q", "x\"y", NULL);
}

static void test_log_text_record_is_key_value_with_quoted_values(void **state)
{
    (void)state;
    srv_log_init(SRV_LOG_TEXT);
    capture(log_kv);
    assert_int_equal(count_lines(captured), 1);
    assert_non_null(strstr(captured, "Z info listening tcp=127.0.0.1:7070 sink=\"file:/a b\" "
                                     "q=\"x\\\"y\"\n"));
}

static void test_log_json_record_is_one_escaped_object(void **state)
{
    (void)state;
    srv_log_init(SRV_LOG_JSON);
    capture(log_kv);
    srv_log_init(SRV_LOG_TEXT);
    assert_int_equal(count_lines(captured), 1);
    assert_int_equal(captured[0], '{');
    assert_non_null(strstr(captured,
                           "\"level\":\"info\",\"msg\":\"listening\",\"tcp\":"
                           "\"127.0.0.1:7070\",\"sink\":\"file:/a b\",\"q\":\"x\\\"y\"}\n"));
}

static void log_odd_bytes(void)
{
    srv_log("info", "odd", "v", "tab\tnl\nbad\xff", NULL);
}

static void test_log_json_record_escapes_controls_and_invalid_utf8(void **state)
{
    (void)state;
    srv_log_init(SRV_LOG_JSON);
    capture(log_odd_bytes);
    srv_log_init(SRV_LOG_TEXT);
    assert_int_equal(count_lines(captured), 1);
    assert_non_null(strstr(captured, "\"v\":\"tab\\tnl\\nbad\\ufffd\"}\n"));
}

static void log_kv_array(void)
{
    const char *kv[] = {"a", "1", "b", "two words"};
    srv_log_kv("warn", "m", kv, 2);
}

static void test_log_kv_takes_pairs_from_an_array(void **state)
{
    (void)state;
    srv_log_init(SRV_LOG_TEXT);
    capture(log_kv_array);
    assert_non_null(strstr(captured, " warn m a=1 b=\"two words\"\n"));
}

static void log_burst(void)
{
    static srv_ratelimit_t rl;
    for (int i = 0; i < 50; i++) {
        srv_log_error_limited(&rl, "read failed", "error", "ECONNRESET", NULL);
    }
}

static void test_log_limiter_lets_a_burst_through_then_holds(void **state)
{
    (void)state;
    srv_log_init(SRV_LOG_TEXT);
    capture(log_burst);
    /* At most one burst per second: a second boundary inside the loop allows one more. */
    int n = count_lines(captured);
    assert_true(n >= SRV_LOG_BURST && n <= 2 * SRV_LOG_BURST);
    assert_non_null(strstr(captured, " error read failed error=ECONNRESET"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_text_record_is_key_value_with_quoted_values),
        cmocka_unit_test(test_log_json_record_is_one_escaped_object),
        cmocka_unit_test(test_log_json_record_escapes_controls_and_invalid_utf8),
        cmocka_unit_test(test_log_kv_takes_pairs_from_an_array),
        cmocka_unit_test(test_log_limiter_lets_a_burst_through_then_holds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
