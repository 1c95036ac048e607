/* test_scan.c - unit.scan: the scanner against jansson, rule by rule (scan.h lists the rules),
 * on both code paths, as a line and as an array element, then on generated events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/scan.h"
#include "ingest/scan_internal.h"
#include "json_gen.h"
#include "lg_corpus.h"
#include "tree_ref.h"

typedef struct {
    const char *in;
    size_t len;
    ing_verdict_t want;
    const char *type; /* accepted: the type's bytes (NUL-free in these cases) */
} scan_case_t;

#define OK(s, t)                                                                                   \
    {                                                                                              \
        s, sizeof(s) - 1, ING_ACCEPTED, t                                                          \
    }
#define BAD(s, v)                                                                                  \
    {                                                                                              \
        s, sizeof(s) - 1, v, NULL                                                                  \
    }
#define PARSE(s) BAD(s, ING_REJECT_PARSE)
#define NOTOBJ(s) BAD(s, ING_REJECT_NOT_OBJECT)
#define NOTYPE(s) BAD(s, ING_REJECT_NO_TYPE)

static void fail_case(const char *what, const char *in, size_t len, ing_verdict_t got,
                      ing_verdict_t want)
{
    char shown[200];
    size_t k = 0;
    for (size_t i = 0; i < len && k + 5 < sizeof(shown); i++) {
        unsigned char c = (unsigned char)in[i];
        k += (size_t)snprintf(shown + k, sizeof(shown) - k,
                              c >= 0x20 && c < 0x7f ? "%c" : "\\x%02x", c);
    }
    fail_msg("%s: \"%s\" (%zu bytes): got %s, want %s", what, shown, len, ing_verdict_name(got),
             ing_verdict_name(want));
}

/* Everything one input must satisfy: the scanner on both paths agrees with jansson (verdict and
 * type bytes) and, when want_known, with want; the element scanner agrees with both. */
static ing_verdict_t check_input(const char *in, size_t len)
{
    char ref_type[ING_TYPE_MAX];
    size_t ref_len;
    ing_verdict_t ref = tree_ref_judge(in, len, ref_type, &ref_len);

    /* A copy in its own allocation, so ASan sees any read past the end. */
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, in, len);
    for (int path = ING_SCAN_PATH_BEST; path <= ING_SCAN_PATH_PORTABLE; path++) {
        ing_scan_result_t r;
        ing_verdict_t v = ing_scan_line_path(copy, len, &r, (ing_scan_path_t)path);
        if (v != ref) {
            fail_case(path ? "portable" : "best", in, len, v, ref);
        }
        if (v == ING_ACCEPTED) {
            assert_int_equal(r.type_len, ref_len);
            assert_memory_equal(r.type, ref_type, ref_len);
            assert_true((r.type >= copy && r.type + r.type_len <= copy + len) || (r.type == r.buf));
        } else {
            assert_non_null(r.reason);
            assert_true(r.offset <= len);
        }

        size_t used = 999999;
        int e = ing_scan_element_path(copy, len, &used, &r, (ing_scan_path_t)path);
        if (e == ING_SCAN_NEED_MORE) {
            /* a cut input, or one ending in a number or literal: check_as_element */
        } else if (e == ING_REJECT_PARSE) {
            if (ref != ING_REJECT_PARSE) {
                fail_case("element", in, len, (ing_verdict_t)e, ref);
            }
        } else {
            assert_true(used <= len);
            size_t i = used;
            while (i < len && strchr(" \t\r\n", in[i]) != NULL && in[i] != '\0') {
                i++;
            }
            ing_verdict_t want = i == len ? ref : ING_REJECT_PARSE;
            if ((ing_verdict_t)e != want && i == len) {
                fail_case("element", in, len, (ing_verdict_t)e, want);
            }
            if (i == len && e == ING_ACCEPTED) {
                assert_int_equal(r.type_len, ref_len);
                assert_memory_equal(r.type, ref_type, ref_len);
            }
        }
    }
    free(copy);
    return ref;
}

/* As an element of an array body: followed by a separator the element scanner must give the
 * line's verdict whenever the line is not parse, and stop right before the separator (after
 * trailing whitespace is skipped). Every shorter prefix is NEED_MORE or the same answer. */
static void check_as_element(const char *in, size_t len, int prefixes)
{
    char type[ING_TYPE_MAX];
    size_t tlen;
    ing_verdict_t ref = tree_ref_judge(in, len, type, &tlen);
    if (ref == ING_REJECT_PARSE) {
        return;
    }
    char *buf = malloc(len + 2);
    assert_non_null(buf);
    memcpy(buf, in, len);
    buf[len] = ',';
    buf[len + 1] = ']';
    for (int path = ING_SCAN_PATH_BEST; path <= ING_SCAN_PATH_PORTABLE; path++) {
        ing_scan_result_t r;
        size_t used = 0;
        int e = ing_scan_element_path(buf, len + 2, &used, &r, (ing_scan_path_t)path);
        if (e != (int)ref) {
            fail_case("element+sep", in, len, (ing_verdict_t)e, ref);
        }
        for (size_t i = used; i < len; i++) {
            assert_non_null(strchr(" \t\r\n", buf[i]));
            assert_true(buf[i] != '\0');
        }
        if (e == ING_ACCEPTED) {
            assert_int_equal(r.type_len, tlen);
            assert_memory_equal(r.type, type, tlen);
        }
        for (size_t k = 0; prefixes && k < len; k++) {
            char *pre = malloc(k ? k : 1);
            assert_non_null(pre);
            memcpy(pre, in, k);
            size_t u2 = 0;
            int e2 = ing_scan_element_path(pre, k, &u2, &r, (ing_scan_path_t)path);
            free(pre);
            if (e2 != ING_SCAN_NEED_MORE && !(e2 == e && u2 == used)) {
                fail_msg("prefix %zu of %zu bytes: got %d (used %zu), want need-more or %d", k, len,
                         e2, u2, e);
            }
        }
    }
    free(buf);
}

static void run_cases(const scan_case_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const scan_case_t *c = &cases[i];
        ing_verdict_t ref = check_input(c->in, c->len);
        if (ref != c->want) {
            fail_case("jansson (the case table is wrong)", c->in, c->len, ref, c->want);
        }
        if (c->type != NULL) {
            ing_scan_result_t r;
            assert_int_equal(ing_scan_line(c->in, c->len, &r), ING_ACCEPTED);
            assert_int_equal(r.type_len, strlen(c->type));
            assert_memory_equal(r.type, c->type, r.type_len);
        }
        check_as_element(c->in, c->len, 1);
    }
}

#define RUN(table) run_cases(table, sizeof(table) / sizeof(table[0]))

static void test_scan_whitespace_is_exactly_four_bytes(void **state)
{
    (void)state;
    static const scan_case_t cases[] = {
        OK(" \t\r\n{ \t\r\n\"type\" \t\r\n: \t\r\n\"a\" \t\r\n} \t\r\n", "a"),
        PARSE("\f{\"type\":\"a\"}"),
        PARSE("{\"type\":\"a\"}\v"),
        PARSE("{\"type\"\x0b:\"a\"}"),
        PARSE("\xc2\xa0{\"type\":\"a\"}"),
        PARSE(""),
        PARSE(" \n\t\r "),
        OK("{\"type\":\"a\"}                                                  ", "a"),
        OK("                                       {\"type\"         :\"a\"}", "a"),
    };
    RUN(cases);
}

static void test_scan_rejects_anything_after_the_value(void **state)
{
    (void)state;
    static const scan_case_t cases[] = {
        PARSE("{\"type\":\"a\"}x"),
        PARSE("{\"type\":\"a\"}{}"),
        PARSE("{\"type\":\"a\"},"),
        PARSE("{\"type\":\"a\"}}"),
        PARSE("1 2"),
        PARSE("\"a\" \"b\""),
        PARSE("{\"type\":\"a\"} \x80"),
        NOTOBJ("[1,2]"),
        NOTOBJ("\"x\""),
        NOTOBJ("  1.5  "),
        NOTOBJ("null"),
        NOTOBJ("[]"),
        NOTOBJ("true"),
        NOTOBJ("false"),
        NOTYPE("{}"),
    };
    RUN(cases);
}

static void test_scan_literals_are_whole_letter_runs(void **state)
{
    (void)state;
    static const scan_case_t cases[] = {
        NOTOBJ("[true,false,null]"),
        PARSE("truex"),
        PARSE("nul"),
        PARSE("True"),
        PARSE("NULL"),
        PARSE("[true1]"),
        PARSE("true1"),
        PARSE("[null\"a\"]"),
        PARSE("nan"),
        PARSE("Infinity"),
        PARSE("-Infinity"),
        PARSE("[tru]"),
        PARSE("{\"type\":\"a\",\"b\":fals}"),
        NOTYPE("{\"type\":true}"),
        NOTOBJ("[null ,true\t,false\n]"),
    };
    RUN(cases);
}

static void test_scan_number_grammar(void **state)
{
    (void)state;
    static const scan_case_t cases[] = {
        NOTOBJ("0"),
        NOTOBJ("-0"),
        NOTOBJ("-0.0e-0"),
        NOTOBJ("1.5"),
        NOTOBJ("1E5"),
        NOTOBJ("1e+05"),
        NOTOBJ("10"),
        NOTOBJ("123.456e-7"),
        PARSE("01"),
        PARSE("-01"),
        PARSE("00"),
        PARSE("-"),
        PARSE("+1"),
        PARSE(".5"),
        PARSE("1."),
        PARSE("1.e5"),
        PARSE("1e"),
        PARSE("1e+"),
        PARSE("1e-"),
        PARSE("0x10"),
        PARSE("1.5.3"),
        PARSE("1e5e3"),
        PARSE("1true"),
        PARSE("--1"),
        PARSE("-a"),
        PARSE("[1.]"),
        PARSE("[-]"),
        PARSE("[01]"),
        NOTOBJ("[0,-0,1,-1,0.5,-0.5e3]"),
        OK("{\"n\":18446744073709551615,\"type\":\"big\"}", "big"),
        OK("{\"n\":-9223372036854775809,\"type\":\"neg\"}", "neg"),
        OK("{\"n\":123456789012345678901234567890,\"type\":\"x\"}", "x"),
    };
    RUN(cases);
}

static void test_scan_number_range_matches_strtod_overflow(void **state)
{
    (void)state;
    static const scan_case_t cases[] = {
        NOTOBJ("1e308"),
        NOTOBJ("1.7976931348623157e308"),
        NOTOBJ("-1.7976931348623157e308"),
        PARSE("1e309"),
        PARSE("-1e309"),
        PARSE("1.8e308"),
        PARSE("10e308"),
        NOTOBJ("0.1e309"),
        NOTOBJ("1e-400"),
        NOTOBJ("-1e-400"),
        NOTOBJ("1e-99999999999999999999"),
        NOTOBJ("0e99999999999999999999"),
        NOTOBJ("0.0e99999999999999999999"),
        NOTOBJ("0.000e+400"),
        PARSE("1e99999999999999999999"),
        PARSE("1e000000000000000000000000000309"),
        NOTOBJ("1e000000000000000000000000000308"),
        NOTOBJ("0.00001e313"),
        PARSE("0.00001e314"),
        PARSE("[1,2,1e400]"),
        /* 2^1024 - 2^970 (overflows: the halfway point rounds up) and just below it */
        PARSE("17976931348623158079372897140530341507993413271003782693617377898044496829276475094"
              "66490179775872070963302864166928879109465555478519404026306574886715058206819089020"
              "00708383676273854845817711531764475730270069855571366959622842914819860834936475292"
              "719074168444365510704342711559699508093042880177904174497792"),
        NOTOBJ("17976931348623158079372897140530341507993413271003782693617377898044496829276475094"
               "66490179775872070963302864166928879109465555478519404026306574886715058206819089020"
               "00708383676273854845817711531764475730270069855571366959622842914819860834936475292"
               "719074168444365510704342711559699508093042880177904174497791.999999999999999999"),
        NOTOBJ("1.79769313486231580793728971405303415079934132710037826936173778980444968292764750"
               "946649017977587207096330286416692887910946555547851940402630657488671505820681908"
               "902000708383676273854845817711531764475730270069855571366959622842914819860834936"
               "4752927190741684443655107043427115596995080930428801779041744977919999e308"),
        PARSE("1.79769313486231580793728971405303415079934132710037826936173778980444968292764750"
              "946649017977587207096330286416692887910946555547851940402630657488671505820681908"
              "902000708383676273854845817711531764475730270069855571366959622842914819860834936"
              "475292719074168444365510704342711559699508093042880177904174497792e308"),
        PARSE("0.000179769313486231580793728971405303415079934132710037826936173778980444968292764"
              "750946649017977587207096330286416692887910946555547851940402630657488671505820681"
              "908902000708383676273854845817711531764475730270069855571366959622842914819860834"
              "936475292719074168444365510704342711559699508093042880177904174497792e312"),
        NOTOBJ("-0.00017976931348623158079372897140530341507993413271003782693617377898044496829"
               "2764750946649017977587207096330286416692887910946555547851940402630657488671505820"
               "6819089020007083836762738548458177115317644757302700698555713669596228429148198608"
               "349364752927190741684443655107043427115596995080930428801779041744977915e312"),
    };
    RUN(cases);
    /* 309-digit integers either side of DBL_MAX's rounding boundary, and a long tail */
    static char big[4096];
    const char *heads[] = {"17976931348623157", "17976931348623159", "1797693134862315807",
                           "1797693134862315808"};
    for (size_t i = 0; i < 4; i++) {
        size_t h = strlen(heads[i]);
        memcpy(big, heads[i], h);
        memset(big + h, '0', 309 - h);
        assert_int_equal(check_input(big, 309), i % 2 ? ING_REJECT_PARSE : ING_REJECT_NOT_OBJECT);
        big[309] = '.';
        memset(big + 310, '9', 3000);
        assert_int_equal(check_input(big, 3310), i % 2 ? ING_REJECT_PARSE : ING_REJECT_NOT_OBJECT);
        check_as_element(big, 3310, 0);
    }
}

static void test_scan_strings_control_characters_and_escapes(void **state)
{
    (void)state;
    static const scan_case_t cases[] = {
        OK("{\"type\":\"a\x7f\"}", "a\x7f"),
        PARSE("{\"type\":\"a\tb\"}"),
        PARSE("{\"type\":\"a\nb\"}"),
        PARSE("{\"type\":\"a\x1f\"}"),
        PARSE("{\"x\":\"\x01\",\"type\":\"a\"}"),
        OK("{\"type\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}", "\"\\/\b\f\n\r\t"),
        PARSE("{\"type\":\"\\x41\"}"),
        PARSE("{\"type\":\"\\U0041\"}"),
        PARSE("{\"type\":\"\\'\"}"),
        PARSE("{\"type\":\"\\0\"}"),
        PARSE("{\"type\":\"\\u00G1\"}"),
        PARSE("{\"type\":\"\\u00\"}"),
        PARSE("{\"type\":\"\\"),
        PARSE("{\"type\":\"abc"),
        PARSE("\"abc"),
        OK("{\"type\":\"\\u0041\\u00e9\\u00E9\\u20ac\"}", "A\xc3\xa9\xc3\xa9\xe2\x82\xac"),
        OK("{\"type\":\"\\u007F\\u0080\\u07ff\\u0800\\uffff\"}",
           "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf"),
    };
    RUN(cases);
}

static void test_scan_surrogate_escapes_must_pair(void **state)
{
    (void)state;
    static const scan_case_t cases[] = {
        OK("{\"type\":\"\\uD83D\\uDE00\"}", "\xf0\x9f\x98\x80"),
        OK("{\"type\":\"\\ud800\\udc00\\udbff\\udfff\"}", "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"),
        PARSE("{\"type\":\"\\uD800\"}"),
        PARSE("{\"type\":\"\\uDC00\"}"),
        PARSE("{\"type\":\"\\uDE00\\uD83D\"}"),
        PARSE("{\"type\":\"\\uD800\\uD800\"}"),
        PARSE("{\"type\":\"\\uD800\\u0041\"}"),
        PARSE("{\"type\":\"\\uD800x\"}"),
        PARSE("{\"type\":\"\\uD800\\\\u0041\"}"),
        PARSE("{\"type\":\"\\uD800\\n\"}"),
        PARSE("{\"type\":\"\\uD800\\uZZZZ\"}"),
        PARSE("[\"\\uDFFF\"]"),
        NOTOBJ("[\"\\uD7FF\\uE000\"]"),
    };
    RUN(cases);
}

static void test_scan_utf8_is_checked_like_jansson(void **state)
{
    (void)state;
    static const scan_case_t cases[] = {
        OK("{\"type\":\"caf\xc3\xa9\"}", "caf\xc3\xa9"),
        OK("{\"type\":\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\"}",
           "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"),
        OK("{\"type\":\"\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"}", "\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf"),
        OK("{\"type\":\"\xed\x9f\xbf\xee\x80\x80\xe0\xa0\x80\xf0\x90\x80\x80\"}",
           "\xed\x9f\xbf\xee\x80\x80\xe0\xa0\x80\xf0\x90\x80\x80"),
        PARSE("{\"type\":\"\x80\"}"),
        PARSE("{\"type\":\"\xbf\"}"),
        PARSE("{\"type\":\"\xc0\x80\"}"),
        PARSE("{\"type\":\"\xc1\xbf\"}"),
        PARSE("{\"type\":\"\xe0\x9f\xbf\"}"),
        PARSE("{\"type\":\"\xf0\x8f\xbf\xbf\"}"),
        PARSE("{\"type\":\"\xed\xa0\x80\"}"),
        PARSE("{\"type\":\"\xed\xbf\xbf\"}"),
        PARSE("{\"type\":\"\xf4\x90\x80\x80\"}"),
        PARSE("{\"type\":\"\xf5\x80\x80\x80\"}"),
        PARSE("{\"type\":\"\xff\"}"),
        PARSE("{\"type\":\"\xc3\"}"),
        PARSE("{\"type\":\"\xe2\x82\"}"),
        PARSE("{\"type\":\"\xc3"),
        PARSE("{\"type\":\"\xc3\xa9\xa9\"}"),
        PARSE("{\"type\":\"a\"}\xc3\xa9"),
        PARSE("\xef\xbb\xbf{\"type\":\"a\"}"),
        PARSE("[\xc3\xa9]"),
    };
    RUN(cases);
}

static void test_scan_nul_bytes_follow_jansson(void **state)
{
    (void)state;
    static const scan_case_t cases[] = {
        NOTOBJ("1\0"),
        NOTOBJ("1\0 "),
        NOTOBJ("-0\0"),
        NOTOBJ("1.5e3\0"),
        NOTOBJ("[1\0]"),
        NOTOBJ("[1\0,2]"),
        NOTOBJ("[true\0]"),
        NOTOBJ("[null\0 ,1]"),
        NOTOBJ("false\0"),
        OK("{\"a\":null\0,\"type\":\"n\"}", "n"),
        PARSE("{\"n\":1\0}x"),
        PARSE("1\0\0"),
        PARSE("[1\0\0]"),
        PARSE("1 \0"),
        PARSE("{}\0"),
        PARSE("\"a\"\0"),
        PARSE("[]\0"),
        PARSE("\0"),
        PARSE("\0{}"),
        PARSE("[\0]"),
        PARSE("[1,\0 2]"),
        PARSE("{\"type\":\"a\0\"}"),
        PARSE("{\"type\"\0:\"a\"}"),
        PARSE("tr\0ue"),
        OK("{\"type\":\"a\",\"n\":1\0}", "a"),
        OK("{\"type\":\"a\",\"v\":\"x\\u0000y\"}", "a"),
        NOTYPE("{\"type\":\"a\\u0000b\"}"),
        NOTYPE("{\"type\":\"\\u0000\"}"),
        PARSE("{\"\\u0000\":1,\"type\":\"a\"}"),
        PARSE("{\"type\":\"a\",\"k\\u0000\":1}"),
        PARSE("{\"type\":\"a\",\"o\":[{\"\\u0000\":1}]}"),
        PARSE("[{\"a\\u0000\":true}]"),
        NOTOBJ("[\"\\u0000\"]"),
    };
    RUN(cases);
}

static char deep_buf[8 * ING_SCAN_MAX_DEPTH + 64];

/* opens x n, then middle, then closes: arrays or alternating {"k": objects */
static size_t nest(unsigned n, int objects, const char *middle)
{
    size_t k = 0;
    for (unsigned i = 0; i < n; i++) {
        const char *o = objects && i % 2 ? "{\"k\":" : "[";
        memcpy(deep_buf + k, o, strlen(o));
        k += strlen(o);
    }
    memcpy(deep_buf + k, middle, strlen(middle));
    k += strlen(middle);
    for (unsigned i = n; i-- > 0;) {
        deep_buf[k++] = objects && i % 2 ? '}' : ']';
    }
    return k;
}

static void test_scan_nesting_depth_counts_values_like_jansson(void **state)
{
    (void)state;
    static const struct {
        unsigned n;
        int objects;
        const char *middle;
        ing_verdict_t want;
    } cases[] = {
        {2048, 0, "", ING_REJECT_NOT_OBJECT},      {2047, 0, "[]", ING_REJECT_NOT_OBJECT},
        {2048, 0, "1", ING_REJECT_PARSE},          {2047, 0, "1", ING_REJECT_NOT_OBJECT},
        {2049, 0, "", ING_REJECT_PARSE},           {2047, 0, "{}", ING_REJECT_NOT_OBJECT},
        {2047, 0, "{\"a\":1}", ING_REJECT_PARSE},  {2046, 0, "{\"a\":1}", ING_REJECT_NOT_OBJECT},
        {2047, 1, "\"s\"", ING_REJECT_NOT_OBJECT}, {2048, 1, "\"s\"", ING_REJECT_PARSE},
        {2047, 1, "", ING_REJECT_NOT_OBJECT},      {3000, 1, "", ING_REJECT_PARSE},
        {2048, 0, " ", ING_REJECT_NOT_OBJECT},     {2048, 0, "[]", ING_REJECT_PARSE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = nest(cases[i].n, cases[i].objects, cases[i].middle);
        ing_verdict_t ref = check_input(deep_buf, len);
        if (ref != cases[i].want) {
            fail_msg("depth %u objects %d middle %s: jansson says %s", cases[i].n, cases[i].objects,
                     cases[i].middle, ing_verdict_name(ref));
        }
        check_as_element(deep_buf, len, 0);
    }
    /* an object root holding deep arrays: 2047 more levels are fine, 2048 are not */
    for (unsigned n = 2046; n <= 2048; n++) {
        size_t k = (size_t)snprintf(deep_buf, sizeof(deep_buf), "{\"type\":\"deep\",\"a\":");
        memset(deep_buf + k, '[', n);
        memset(deep_buf + k + n, ']', n);
        k += 2 * n;
        deep_buf[k++] = '}';
        assert_int_equal(check_input(deep_buf, k), n < 2048 ? ING_ACCEPTED : ING_REJECT_PARSE);
    }
}

static void test_scan_object_and_array_grammar(void **state)
{
    (void)state;
    static const scan_case_t cases[] = {
        PARSE("{\"type\":\"a\",}"),
        PARSE("{,\"type\":\"a\"}"),
        PARSE("{\"type\" \"a\"}"),
        PARSE("{\"type\":}"),
        PARSE("{\"type\"}"),
        PARSE("{type:\"a\"}"),
        PARSE("{1:\"a\"}"),
        PARSE("{\"type\":\"a\" \"b\":1}"),
        PARSE("{\"type\":\"a\"]"),
        PARSE("[1,]"),
        PARSE("[,1]"),
        PARSE("[1 2]"),
        PARSE("[1,,2]"),
        PARSE("[1}"),
        PARSE("{"),
        PARSE("["),
        PARSE("{\"type\":\"a\""),
        PARSE("{\"type\":\"a\","),
        PARSE("[[[]]"),
        PARSE("]"),
        PARSE("}"),
        PARSE(":"),
        PARSE(","),
        PARSE("{\"a\"::1}"),
        NOTOBJ("[[],{},[{}],{\"a\":[]}]"),
        OK("{\"a\":{\"b\":[1,{\"c\":null}]},\"type\":\"t\",\"d\":[]}", "t"),
    };
    RUN(cases);
}

static void test_scan_type_rules(void **state)
{
    (void)state;
    char t128[256], t129[256];
    snprintf(t128, sizeof(t128), "{\"type\":\"%0128d\"}", 0);
    snprintf(t129, sizeof(t129), "{\"type\":\"%0129d\"}", 0);
    /* 64 x \u00e9 = 128 decoded bytes, then 65 x = 130 */
    char esc128[1024], esc130[1024];
    size_t k = (size_t)snprintf(esc128, sizeof(esc128), "{\"type\":\"");
    size_t j = (size_t)snprintf(esc130, sizeof(esc130), "{\"type\":\"");
    for (int i = 0; i < 64; i++) {
        k += (size_t)snprintf(esc128 + k, sizeof(esc128) - k, "\\u00e9");
        j += (size_t)snprintf(esc130 + j, sizeof(esc130) - j, "\\u00e9");
    }
    j += (size_t)snprintf(esc130 + j, sizeof(esc130) - j, "\\u00e9");
    k += (size_t)snprintf(esc128 + k, sizeof(esc128) - k, "\"}");
    j += (size_t)snprintf(esc130 + j, sizeof(esc130) - j, "\"}");
    assert_int_equal(strlen(t128), 9 + 128 + 2);
    assert_int_equal(check_input(t128, strlen(t128)), ING_ACCEPTED);
    assert_int_equal(check_input(t129, strlen(t129)), ING_REJECT_NO_TYPE);
    assert_int_equal(check_input(esc128, k), ING_ACCEPTED);
    assert_int_equal(check_input(esc130, j), ING_REJECT_NO_TYPE);
    /* 128 raw bytes but more than 128 escaped source bytes: counted after decoding */
    ing_scan_result_t r;
    assert_int_equal(ing_scan_line(esc128, k, &r), ING_ACCEPTED);
    assert_int_equal(r.type_len, 128);
    assert_ptr_equal(r.type, r.buf);

    static const scan_case_t cases[] = {
        OK("{\"type\":\"a\"}", "a"),
        NOTYPE("{\"type\":\"\"}"),
        NOTYPE("{\"type\":1}"),
        NOTYPE("{\"type\":null}"),
        NOTYPE("{\"type\":[\"a\"]}"),
        NOTYPE("{\"type\":{\"type\":\"a\"}}"),
        NOTYPE("{\"Type\":\"a\"}"),
        NOTYPE("{\"type \":\"a\"}"),
        NOTYPE("{\"typ\":\"a\"}"),
        NOTYPE("{\"types\":\"a\"}"),
        NOTYPE("{\"a\":{\"type\":\"a\"}}"),
        OK("{\"t\\u0079pe\":\"esc\"}", "esc"),
        OK("{\"\\u0074\\u0079\\u0070\\u0065\":\"esc\"}", "esc"),
        NOTYPE("{\"t\\u0079pe\\u0020\":\"esc\"}"),
        OK("{\"type\":\"a\",\"type\":\"b\"}", "b"),
        NOTYPE("{\"type\":\"a\",\"type\":1}"),
        NOTYPE("{\"type\":\"a\",\"type\":\"\"}"),
        OK("{\"type\":1,\"type\":\"c\"}", "c"),
        OK("{\"type\":\"a\",\"t\\u0079pe\":\"d\"}", "d"),
        OK("{\"t\\u0079pe\":\"\\u0041\",\"type\":\"plain\"}", "plain"),
        OK("{\"type\":\"plain\",\"t\\u0079pe\":\"\\u0041\"}", "A"),
        OK("{\"type\":\"\\u0041\",\"x\":{\"type\":\"inner\"}}", "A"),
        OK("{\"type\" : \"sp aced\" }", "sp aced"),
        NOTYPE("{\"type\":\"a\\u0000\"}"),
        OK("{\"type\":\"a\\u0000\",\"type\":\"ok\"}", "ok"),
    };
    RUN(cases);
}

/* Every generated event: loadgen-like shapes, random structure, and one-corruption near-misses.
 */
static void test_scan_agrees_with_jansson_on_generated_events(void **state)
{
    (void)state;
    static char buf[64 * 1024];
    jg_t g = {buf, sizeof(buf), 0, 12345};
    unsigned counts[ING_VERDICT_COUNT] = {0};
    for (unsigned i = 0; i < 20000; i++) {
        unsigned shape = i % 5;
        jg_event(&g, shape, (i / 5) % 3 == 2);
        ing_verdict_t v = check_input(buf, g.len);
        counts[v]++;
        if (g.len < 2048 && i % 50 == 0) {
            check_as_element(buf, g.len, 1);
        } else {
            check_as_element(buf, g.len, 0);
        }
    }
    /* the generator reaches every verdict often */
    for (int v = ING_ACCEPTED; v <= ING_REJECT_NO_TYPE; v++) {
        assert_true(counts[v] > 500);
    }
}

static void test_scan_agrees_with_jansson_on_the_loadgen_corpus(void **state)
{
    (void)state;
    static const unsigned mixes[][4] = {
        {100, 0, 0, 0}, {90, 9, 1, 0}, {0, 100, 0, 0}, {0, 0, 100, 0}, {90, 9, 1, 30}};
    for (size_t m = 0; m < sizeof(mixes) / sizeof(mixes[0]); m++) {
        lg_corpus_config_t cfg;
        lg_corpus_t c;
        lg_corpus_config_default(&cfg);
        cfg.events = 1000;
        cfg.seed = 7 + m;
        cfg.small_pct = mixes[m][0];
        cfg.medium_pct = mixes[m][1];
        cfg.large_pct = mixes[m][2];
        cfg.invalid_pct = mixes[m][3];
        assert_int_equal(lg_corpus_generate(&cfg, &c), 0);
        size_t invalid = 0;
        for (size_t i = 0; i < c.count; i++) {
            const char *line = c.data + c.offsets[i];
            size_t len = c.offsets[i + 1] - c.offsets[i] - 1; /* without '\n' */
            invalid += check_input(line, len) != ING_ACCEPTED;
            check_as_element(line, len, 0);
        }
        assert_int_equal(invalid, c.invalid);
        lg_corpus_free(&c);
    }
}

/* The SSE2 path reads 16 bytes at a time, and the last 16 bytes of the input near its end:
 * every length and alignment of a string ending near the end, in an exact-size allocation. */
static void test_scan_reads_nothing_outside_the_input(void **state)
{
    (void)state;
    for (size_t pad = 0; pad < 40; pad++) {
        for (size_t slen = 0; slen < 40; slen++) {
            char tmp[128];
            size_t k = 0;
            tmp[k++] = '{';
            memset(tmp + k, ' ', pad);
            k += pad;
            memcpy(tmp + k, "\"type\":\"", 8);
            k += 8;
            memset(tmp + k, 'q', slen);
            k += slen;
            tmp[k++] = '"';
            tmp[k++] = '}';
            for (size_t cut = 0; cut <= k; cut++) {
                check_input(tmp, cut);
            }
        }
    }
}

/* How the HTTP layer walks an array body with ing_scan_element, one pass: each element's
 * verdict and type equal jansson's on the element's bytes (first byte to the ',' or ']',
 * blanks included), the NUL after a number belongs to the element, and a cut body asks for
 * more at every cut point inside an element. */
static void test_scan_element_walks_an_array_body(void **state)
{
    (void)state;
    static const char body[] = "[ {\"type\":\"a\"} ,{\"t\\u0079pe\":\"\\u00e9\"},\n 17\0 , \"s\","
                               "{\"x\":[1,{\"type\":\"nested\"}]} , [ ] ,{\"type\":\"\"},"
                               "{\"type\":\"last\",\"n\":-1.5e300}\t]";
    static const ing_verdict_t want[] = {
        ING_ACCEPTED,       ING_ACCEPTED,          ING_REJECT_NOT_OBJECT, ING_REJECT_NOT_OBJECT,
        ING_REJECT_NO_TYPE, ING_REJECT_NOT_OBJECT, ING_REJECT_NO_TYPE,    ING_ACCEPTED};
    size_t len = sizeof(body) - 1;
    for (int path = ING_SCAN_PATH_BEST; path <= ING_SCAN_PATH_PORTABLE; path++) {
        const char *p = body + 1, *end = body + len;
        size_t n = 0;
        for (;;) {
            ing_scan_result_t r;
            size_t used = 0;
            int e = ing_scan_element_path(p, (size_t)(end - p), &used, &r, (ing_scan_path_t)path);
            assert_true(n < sizeof(want) / sizeof(want[0]));
            assert_int_equal(e, want[n]);
            const char *q = p + used;
            while (*q == ' ' || *q == '\n' || *q == '\t') {
                q++;
            }
            assert_true(*q == ',' || *q == ']');
            char type[ING_TYPE_MAX];
            size_t tlen;
            assert_int_equal(tree_ref_judge(p, (size_t)(q - p), type, &tlen), e);
            if (e == ING_ACCEPTED) {
                assert_int_equal(r.type_len, tlen);
                assert_memory_equal(r.type, type, tlen);
            }
            for (const char *cut = p; cut < p + used; cut++) {
                size_t u2;
                assert_int_equal(
                    ing_scan_element_path(p, (size_t)(cut - p), &u2, &r, (ing_scan_path_t)path),
                    ING_SCAN_NEED_MORE);
            }
            n++;
            if (*q == ']') {
                break;
            }
            p = q + 1;
        }
        assert_int_equal(n, sizeof(want) / sizeof(want[0]));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_whitespace_is_exactly_four_bytes),
        cmocka_unit_test(test_scan_rejects_anything_after_the_value),
        cmocka_unit_test(test_scan_literals_are_whole_letter_runs),
        cmocka_unit_test(test_scan_number_grammar),
        cmocka_unit_test(test_scan_number_range_matches_strtod_overflow),
        cmocka_unit_test(test_scan_strings_control_characters_and_escapes),
        cmocka_unit_test(test_scan_surrogate_escapes_must_pair),
        cmocka_unit_test(test_scan_utf8_is_checked_like_jansson),
        cmocka_unit_test(test_scan_nul_bytes_follow_jansson),
        cmocka_unit_test(test_scan_nesting_depth_counts_values_like_jansson),
        cmocka_unit_test(test_scan_object_and_array_grammar),
        cmocka_unit_test(test_scan_type_rules),
        cmocka_unit_test(test_scan_agrees_with_jansson_on_generated_events),
        cmocka_unit_test(test_scan_agrees_with_jansson_on_the_loadgen_corpus),
        cmocka_unit_test(test_scan_reads_nothing_outside_the_input),
        cmocka_unit_test(test_scan_element_walks_an_array_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
