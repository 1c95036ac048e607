/* test_text.c - unit tests for the UTF-8 check and the JSON string escape (base/text.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "base/text.h"

static size_t ulen(const char *s)
{
    return base_utf8_len((const unsigned char *)s, strlen(s));
}

static void test_utf8_len_accepts_each_sequence_length(void **state)
{
    (void)state;
    assert_int_equal(ulen("a"), 1);
    assert_int_equal(ulen("\xC2\x80"), 2);         /* U+0080 */
    assert_int_equal(ulen("\xDF\xBF"), 2);         /* U+07FF */
    assert_int_equal(ulen("\xE0\xA0\x80"), 3);     /* U+0800 */
    assert_int_equal(ulen("\xED\x9F\xBF"), 3);     /* U+D7FF */
    assert_int_equal(ulen("\xEE\x80\x80"), 3);     /* U+E000 */
    assert_int_equal(ulen("\xEF\xBF\xBF"), 3);     /* U+FFFF */
    assert_int_equal(ulen("\xF0\x90\x80\x80"), 4); /* U+10000 */
    assert_int_equal(ulen("\xF4\x8F\xBF\xBF"), 4); /* U+10FFFF */
    assert_int_equal(ulen("\xC3\xA9tail"), 2);     /* counts one sequence only */
}

static void test_utf8_len_rejects_overlong_surrogate_truncated_and_out_of_range(void **state)
{
    (void)state;
    assert_int_equal(ulen("\x80"), 0);             /* lone continuation */
    assert_int_equal(ulen("\xC0\xAF"), 0);         /* overlong '/' */
    assert_int_equal(ulen("\xC1\xBF"), 0);         /* overlong */
    assert_int_equal(ulen("\xE0\x9F\xBF"), 0);     /* overlong 3-byte */
    assert_int_equal(ulen("\xF0\x8F\xBF\xBF"), 0); /* overlong 4-byte */
    assert_int_equal(ulen("\xED\xA0\x80"), 0);     /* U+D800, an encoded surrogate */
    assert_int_equal(ulen("\xED\xBF\xBF"), 0);     /* U+DFFF */
    assert_int_equal(ulen("\xF4\x90\x80\x80"), 0); /* U+110000 */
    assert_int_equal(ulen("\xF5\x80\x80\x80"), 0);
    assert_int_equal(ulen("\xFF"), 0);
    assert_int_equal(ulen("\xC3"), 0);      /* truncated at the end */
    assert_int_equal(ulen("\xE2\x82"), 0);  /* truncated */
    assert_int_equal(ulen("\xE2\x82z"), 0); /* bad continuation */
    assert_int_equal(base_utf8_len((const unsigned char *)"\xC3\xA9", 1), 0); /* n counts */
}

static void test_utf8_valid_checks_every_byte(void **state)
{
    (void)state;
    assert_true(base_utf8_valid("", 0));
    assert_true(base_utf8_valid("caf\xC3\xA9 \xF0\x9F\x98\x80", 10));
    assert_false(base_utf8_valid("caf\xC3", 4));
    assert_false(base_utf8_valid("ok\xED\xA0\x80ok", 7));
    assert_true(base_utf8_valid("a\0b", 3)); /* NUL is a valid code point */
}

static void check_escape(const char *in, size_t len, const char *want)
{
    char out[256];
    size_t n = base_json_escape(out, sizeof(out), in, len);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);
}

static void test_json_escape_quotes_backslashes_and_control_bytes(void **state)
{
    (void)state;
    check_escape("plain", 5, "plain");
    check_escape("a\"b\\c", 5, "a\\\"b\\\\c");
    check_escape("\n\r\t", 3, "\\n\\r\\t");
    check_escape("\x01\x1f\x7f", 3, "\\u0001\\u001f\\u007f");
    check_escape("a\0b", 3, "a\\u0000b");
}

static void test_json_escape_keeps_utf8_and_replaces_invalid_bytes(void **state)
{
    (void)state;
    check_escape("caf\xC3\xA9", 5, "caf\xC3\xA9");
    check_escape("\xF0\x9F\x98\x80", 4, "\xF0\x9F\x98\x80");
    check_escape("a\xFF"
                 "b",
                 3, "a\\ufffdb");
    check_escape("\xED\xA0\x80", 3, "\\ufffd\\ufffd\\ufffd"); /* each byte of a surrogate */
    check_escape("x\xC3", 2, "x\\ufffd");                     /* cut at the end */
}

static void test_json_escape_never_cuts_a_unit(void **state)
{
    (void)state;
    char out[16];
    memset(out, '#', sizeof(out));
    /* "ab" fits, the 6-byte \u0001 would not fit in 7 bytes after it. */
    assert_int_equal(base_json_escape(out, 7, "ab\x01", 3), 2);
    assert_int_equal(out[2], '#');
    /* A 2-byte sequence in 3 bytes of room after 'a' and... only whole. */
    assert_int_equal(base_json_escape(out, 2, "a\xC3\xA9", 3), 1);
    assert_int_equal(base_json_escape(out, 3, "a\xC3\xA9", 3), 3);
    assert_int_equal(base_json_escape(out, 0, "a", 1), 0);
}

static void test_json_escape_unit_reports_bytes_used(void **state)
{
    (void)state;
    char out[BASE_JSON_UNIT_MAX];
    size_t used = 0;
    assert_int_equal(base_json_escape_unit("\xE2\x82\xAC!", 4, &used, out), 3);
    assert_int_equal(used, 3);
    assert_int_equal(base_json_escape_unit("\x80", 1, &used, out), 6);
    assert_int_equal(used, 1);
    assert_int_equal(base_json_escape_unit("\"", 1, &used, out), 2);
    assert_int_equal(used, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_len_accepts_each_sequence_length),
        cmocka_unit_test(test_utf8_len_rejects_overlong_surrogate_truncated_and_out_of_range),
        cmocka_unit_test(test_utf8_valid_checks_every_byte),
        cmocka_unit_test(test_json_escape_quotes_backslashes_and_control_bytes),
        cmocka_unit_test(test_json_escape_keeps_utf8_and_replaces_invalid_bytes),
        cmocka_unit_test(test_json_escape_never_cuts_a_unit),
        cmocka_unit_test(test_json_escape_unit_reports_bytes_used),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
