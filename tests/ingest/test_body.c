/* test_body.c - the HTTP body framer (ingest/body.h), and the one NDJSON line rule (frame.h) run
 * as ONE table against both framers: the TCP framer and the HTTP body framer, whole and byte at
 * a time, cut short and (for bodies) complete. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/body.h"
#include "ingest/frame.h"
#include "pool/pool.h"

/* What a framer reported, as text: "E:<line>" (or "E#<len>" over 32 bytes) for an event,
 * the verdict's name for a rejection, "|" between reports; body rejections also carry their
 * index when with_index is set ("truncated@2"). */
typedef struct {
    char text[4096];
    size_t len;
    int with_index;
    size_t value_end_calls;
} rec_t;

static void rec_put(rec_t *r, const char *s)
{
    size_t n = strlen(s);
    assert_true(r->len + n + 2 < sizeof(r->text));
    if (r->len > 0) {
        r->text[r->len++] = '|';
    }
    memcpy(r->text + r->len, s, n);
    r->len += n;
    r->text[r->len] = '\0';
}

static void rec_event(rec_t *r, const char *data, size_t len)
{
    char s[64];
    if (len <= 32) {
        snprintf(s, sizeof(s), "E:%.*s", (int)len, data);
    } else {
        snprintf(s, sizeof(s), "E#%zu", len);
    }
    rec_put(r, s);
}

static void tcp_line(void *ctx, const char *line, size_t len)
{
    rec_event(ctx, line, len);
}

static void tcp_reject(void *ctx, ing_verdict_t v)
{
    rec_put(ctx, ing_verdict_name(v));
}

static const ing_frame_ops_t tcp_ops = {tcp_line, tcp_reject, NULL};

static void body_event(void *ctx, uint64_t index, const char *data, size_t len)
{
    (void)index;
    rec_event(ctx, data, len);
}

static void body_reject(void *ctx, uint64_t index, ing_verdict_t v, const char *detail)
{
    rec_t *r = ctx;
    char s[64];
    assert_non_null(detail);
    if (r->with_index) {
        snprintf(s, sizeof(s), "%s@%llu", ing_verdict_name(v), (unsigned long long)index);
    } else {
        snprintf(s, sizeof(s), "%s", ing_verdict_name(v));
    }
    rec_put(r, s);
}

static const ing_body_ops_t body_ops = {body_event, body_reject, NULL, NULL};

static pool_t *pool;
static pool_cache_t *cache;

static int setup(void **state)
{
    pool_config_t cfg;
    (void)state;
    pool_config_init(&cfg);
    if (pool_create(&cfg, &pool) != 0 || pool_cache_create(pool, &cache) != 0) {
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pool_cache_destroy(cache);
    pool_destroy(pool);
    return 0;
}

/* Runs in[0..n) through the TCP framer in pieces of step bytes (0: whole), then end of stream. */
static void run_tcp(const char *in, size_t n, size_t max, size_t step, rec_t *r)
{
    ing_frame_t f;
    memset(r, 0, sizeof(*r));
    ing_frame_init(&f, cache, max, NULL, NULL, NULL);
    for (size_t off = 0; off < n;) {
        size_t k = step == 0 || step > n - off ? n - off : step;
        assert_int_equal(ing_frame_feed(&f, in + off, k, &tcp_ops, r), 0);
        off += k;
    }
    ing_frame_finish(&f, &tcp_ops, r);
}

/* The same through the body framer of the given kind, ended complete or cut short. */
static void run_body(ing_body_kind_t kind, const ing_body_ops_t *ops, const char *in, size_t n,
                     size_t max, size_t step, int complete, rec_t *r)
{
    ing_body_t b;
    int with_index = r->with_index;
    memset(r, 0, sizeof(*r));
    r->with_index = with_index;
    ing_body_init(&b, max, ops, r, NULL, NULL);
    ing_body_begin(&b, kind);
    for (size_t off = 0; off < n;) {
        size_t k = step == 0 || step > n - off ? n - off : step;
        assert_int_equal(ing_body_feed(&b, in + off, k), 0);
        off += k;
    }
    ing_body_end(&b, complete);
    ing_body_free(&b);
}

/* One row: the input is prefix, fill_n copies of fill, suffix. want: what both framers report
 * when the stream ends there (TCP close, HTTP body cut short); want_complete: what an HTTP body
 * that ends there normally gives (NULL: the same). */
typedef struct {
    const char *prefix;
    char fill;
    size_t fill_n;
    const char *suffix;
    size_t max;
    const char *want;
    const char *want_complete;
} line_row_t;

static const line_row_t line_rule[] = {
    /* The disagreement this table settles: a blank line over the limit is too_large on both. */
    {"", ' ', 20, "\n{\"t\":1}\n", 10, "too_large|E:{\"t\":1}", NULL},
    {"", ' ', 20, "\n{\"type\":\"a\"}\n", 10, "too_large|too_large", NULL},
    {"", ' ', 20, "{\"t\":1}\n", 10, "too_large", NULL},
    /* Blank lines of SP, HT and CR are skipped; one CR before LF is dropped. */
    {"\n\r\n   \n{\"a\":1}\r\n\t\r\n{\"b\":2}\n", 0, 0, "", 1 << 20, "E:{\"a\":1}|E:{\"b\":2}",
     NULL},
    {"a\r\r\n", 0, 0, "", 10, "E:a\r", NULL},
    /* At the limit, and one byte over it (the CR is not counted, a second one is). */
    {"0123456789\n", 0, 0, "", 10, "E:0123456789", NULL},
    {"0123456789\r\n", 0, 0, "", 10, "E:0123456789", NULL},
    {"01234567890\n", 0, 0, "", 10, "too_large", NULL},
    {"0123456789\r\r\n", 0, 0, "", 10, "too_large", NULL},
    {"", ' ', 10, "\n", 10, "", NULL},
    {"", ' ', 11, "\n", 10, "too_large", NULL},
    /* The last line without LF: cut short it is truncated; a body that ends there ends it. */
    {"{\"a\":1}\n{\"b\":", 0, 0, "", 1 << 20, "E:{\"a\":1}|truncated", "E:{\"a\":1}|E:{\"b\":"},
    {"a\nb\n\nc", 0, 0, "", 10, "E:a|E:b|truncated", "E:a|E:b|E:c"},
    {"{\"a\":1}\n  \r", 0, 0, "", 1 << 20, "E:{\"a\":1}", NULL},
    {"0123456789\r", 0, 0, "", 10, "truncated", "E:0123456789"},
    {"0123456789x", 0, 0, "", 10, "truncated", "too_large"},
    {"0123456789xy", 0, 0, "", 10, "too_large", NULL},
    {"", ' ', 11, "", 10, "", "too_large"},
    {"", ' ', 12, "", 10, "too_large", NULL},
    /* Lines longer than a pool block (assembled by the TCP framer, carried by the body's). */
    {"{\"a\":\"", 'x', 5000, "\"}\n{}\n", 1 << 20, "E#5008|E:{}", NULL},
    {"{\"a\":\"", 'x', 5000, "\"}\n{}\n", 4500, "too_large|E:{}", NULL},
    {"", ' ', 5000, "\n{}\n", 1 << 20, "E:{}", NULL},
    {"", ' ', 5000, "\n{}\n", 4500, "too_large|E:{}", NULL},
    {"", 'z', 6000, "", 5000, "too_large", NULL},
    {"", 'z', 6000, "", 1 << 20, "truncated", "E#6000"},
    {"", ' ', 6000, "", 1 << 20, "", NULL},
    {"x\n", 'y', 9000, "\nz\n", 1 << 20, "E:x|E#9000|E:z", NULL},
};

static char *build(const line_row_t *row, size_t *n)
{
    size_t pl = strlen(row->prefix), sl = strlen(row->suffix);
    char *s = malloc(pl + row->fill_n + sl + 1);
    memcpy(s, row->prefix, pl);
    memset(s + pl, row->fill, row->fill_n);
    memcpy(s + pl + row->fill_n, row->suffix, sl + 1);
    *n = pl + row->fill_n + sl;
    return s;
}

static void test_body_line_rule_is_one_for_tcp_and_http(void **state)
{
    (void)state;
    static const size_t steps[] = {0, 1, 7, 4096};
    rec_t r;
    for (size_t i = 0; i < sizeof(line_rule) / sizeof(line_rule[0]); i++) {
        const line_row_t *row = &line_rule[i];
        size_t n;
        char *in = build(row, &n);
        const char *complete = row->want_complete != NULL ? row->want_complete : row->want;
        for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
            run_tcp(in, n, row->max, steps[s], &r);
            if (strcmp(r.text, row->want) != 0) {
                fail_msg("row %zu step %zu tcp: got \"%s\" want \"%s\"", i, steps[s], r.text,
                         row->want);
            }
            r.with_index = 0;
            run_body(ING_BODY_NDJSON, &body_ops, in, n, row->max, steps[s], 0, &r);
            if (strcmp(r.text, row->want) != 0) {
                fail_msg("row %zu step %zu http cut: got \"%s\" want \"%s\"", i, steps[s], r.text,
                         row->want);
            }
            run_body(ING_BODY_NDJSON, &body_ops, in, n, row->max, steps[s], 1, &r);
            if (strcmp(r.text, complete) != 0) {
                fail_msg("row %zu step %zu http complete: got \"%s\" want \"%s\"", i, steps[s],
                         r.text, complete);
            }
        }
        free(in);
    }
}

static void test_body_ndjson_numbers_lines_with_blank_ones_counted(void **state)
{
    (void)state;
    const char *in = "{}\n\n   \nbad\n0123456789ab\n{}";
    rec_t r = {.with_index = 1};
    run_body(ING_BODY_NDJSON, &body_ops, in, strlen(in), 10, 1, 0, &r);
    assert_string_equal(r.text, "E:{}|E:bad|too_large@5|truncated@6");
}

/* JSON bodies: each row is checked whole, byte at a time and in pieces of 3. */
typedef struct {
    const char *in;
    size_t max;
    int complete;
    const char *want;
} json_row_t;

static const json_row_t json_rows[] = {
    {"[{\"type\":\"a\"},{\"type\":\"b\"}]", 100, 1, "E:{\"type\":\"a\"}|E:{\"type\":\"b\"}"},
    {" \r\n[ 1 , [2,{\"x\":[3]}] ,\"s\" ]\n ", 100, 1, "E:1|E:[2,{\"x\":[3]}]|E:\"s\""},
    {"[]", 100, 1, ""},
    {"  ", 100, 1, ""},
    /* Strings may hold brackets, commas and escaped quotes. */
    {"[\"a,]\\\"[{\",2]", 100, 1, "E:\"a,]\\\"[{\"|E:2"},
    /* Structure errors. */
    {"[1,,2]", 100, 1, "E:1|parse@2|E:2"},
    {"[1,]", 100, 1, "E:1|parse@2"},
    {"[,]", 100, 1, "parse@1|parse@2"},
    {"[1] x", 100, 1, "E:1|parse@2"},
    /* An unclosed array is truncated, where it stops. */
    {"[{\"type\":\"a\"},", 100, 1, "E:{\"type\":\"a\"}|truncated@2"},
    {"[", 100, 1, "truncated@1"},
    {"[ \n", 100, 1, "truncated@1"},
    {"[{\"type\":\"a\"}", 100, 1, "truncated@1"},
    {"[\"abc", 100, 1, "truncated@1"},
    {"[{\"type\":\"a\"},", 100, 0, "E:{\"type\":\"a\"}|truncated@2"},
    /* Element size: first byte to the delimiter, blanks before it counted. */
    {"[123456,1]", 5, 1, "too_large@1|E:1"},
    {"[1     ,2]", 5, 1, "too_large@1|E:2"},
    {"[12345,1]", 5, 1, "E:12345|E:1"},
    {"[1234567890123", 5, 1, "too_large@1"},
    /* One object: the whole body from its first non-blank byte. */
    {"  {\"type\":\"a\"}", 100, 1, "E:{\"type\":\"a\"}"},
    {"{\"type\":\"a\"}", 100, 0, "truncated@1"},
    {"{\"type\":\"a\"}", 5, 1, "too_large@1"},
};

static void test_body_json_bodies_by_rows_any_split(void **state)
{
    (void)state;
    static const size_t steps[] = {0, 1, 3};
    rec_t r;
    for (size_t i = 0; i < sizeof(json_rows) / sizeof(json_rows[0]); i++) {
        const json_row_t *row = &json_rows[i];
        for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
            r.with_index = 1;
            run_body(ING_BODY_JSON, &body_ops, row->in, strlen(row->in), row->max, steps[s],
                     row->complete, &r);
            if (strcmp(r.text, row->want) != 0) {
                fail_msg("row %zu step %zu: got \"%s\" want \"%s\"", i, steps[s], r.text,
                         row->want);
            }
        }
    }
}

/* A stand-in for a strategy that finds a value's end while validating it: knows objects
 * without nested braces or strings holding them, and declines the rest. */
static size_t fake_value_end(void *ctx, const char *p, size_t n)
{
    rec_t *r = ctx;
    r->value_end_calls++;
    if (n == 0 || p[0] != '{') {
        return 0;
    }
    const char *e = memchr(p, '}', n);
    return e != NULL ? (size_t)(e - p) + 1 : 0;
}

static void test_body_array_asks_the_judge_for_the_value_end_when_it_can(void **state)
{
    (void)state;
    static const ing_body_ops_t seam_ops = {body_event, body_reject, fake_value_end, NULL};
    const char *in = "[{\"type\":\"a\"}, {\"type\":\"b\"} ,7,{\"a\":1} x,{\"type\":\"c\"}]";
    const char *want = "E:{\"type\":\"a\"}|E:{\"type\":\"b\"}|E:7|E:{\"a\":1} x|E:{\"type\":\"c\"}";
    rec_t r = {.with_index = 1};
    run_body(ING_BODY_JSON, &seam_ops, in, strlen(in), 100, 0, 1, &r);
    assert_string_equal(r.text, want);
    assert_int_equal(r.value_end_calls, 5); /* asked once per element */
    /* Byte at a time the value never ends within the bytes offered: the walker does it all. */
    r.with_index = 1;
    run_body(ING_BODY_JSON, &seam_ops, in, strlen(in), 100, 1, 1, &r);
    assert_string_equal(r.text, want);
    /* Without the seam: the same events. */
    r.with_index = 1;
    run_body(ING_BODY_JSON, &body_ops, in, strlen(in), 100, 0, 1, &r);
    assert_string_equal(r.text, want);
}

static void test_body_raw_keeps_the_whole_body_up_to_the_limit(void **state)
{
    (void)state;
    rec_t r = {0};
    ing_body_t b;
    size_t len;
    ing_body_init(&b, 8, &body_ops, &r, NULL, NULL);
    ing_body_begin(&b, ING_BODY_RAW);
    assert_null(ing_body_raw(&b, &len));
    assert_int_equal(len, 0);
    assert_int_equal(ing_body_feed(&b, "{\"a\"", 4), 0);
    assert_int_equal(ing_body_feed(&b, ":1}", 3), 0);
    const char *p = ing_body_raw(&b, &len);
    assert_int_equal(len, 7);
    assert_memory_equal(p, "{\"a\":1}", 7);
    assert_int_equal(ing_body_feed(&b, "xy", 2), -EMSGSIZE);
    assert_int_equal(ing_body_feed(&b, "z", 1), -EMSGSIZE);
    ing_body_reset(&b);
    ing_body_begin(&b, ING_BODY_RAW);
    assert_int_equal(ing_body_feed(&b, "ok", 2), 0);
    p = ing_body_raw(&b, &len);
    assert_memory_equal(p, "ok", 2);
    ing_body_free(&b);
    ing_body_free(&b);
    assert_int_equal(r.len, 0); /* no events, no rejections */
}

static void test_body_reset_frees_a_carry_buffer_that_grew_large(void **state)
{
    (void)state;
    rec_t r = {0};
    ing_body_t b;
    char *big = malloc(40000);
    memset(big, 'x', 40000);
    ing_body_init(&b, 1 << 20, &body_ops, &r, NULL, NULL);
    ing_body_begin(&b, ING_BODY_NDJSON);
    assert_int_equal(ing_body_feed(&b, big, 40000), 0);
    assert_true(b.carry_cap >= 40000);
    ing_body_reset(&b);
    assert_null(b.carry);
    ing_body_begin(&b, ING_BODY_NDJSON);
    assert_int_equal(ing_body_feed(&b, "{\"a\":", 5), 0);
    ing_body_reset(&b);
    assert_non_null(b.carry); /* a small one is kept for the next body */
    ing_body_free(&b);
    free(big);
}

static int refuse_over_2k(void *ctx, size_t held, size_t cap)
{
    (void)ctx;
    assert_true(cap > held);
    return cap <= 2048;
}

static void test_body_refused_carry_growth_rejects_the_event_as_over_budget(void **state)
{
    static const ing_body_ops_t ops = {body_event, body_reject, NULL, refuse_over_2k};
    rec_t r = {.with_index = 1};
    ing_body_t b;
    char big[3000];
    (void)state;

    memset(big, 'a', sizeof(big));
    ing_body_init(&b, 1 << 20, &ops, &r, NULL, NULL);
    ing_body_begin(&b, ING_BODY_NDJSON);
    /* A line crossing feeds is carried: 1 KiB is allowed, 3 KiB is not. */
    ing_body_feed(&b, "{\"type\":\"a\"}\n{\"type\":\"b\",\"p\":\"", 30);
    ing_body_feed(&b, big, sizeof(big));
    ing_body_feed(&b, "\"}\n{\"type\":", strlen("\"}\n{\"type\":"));
    ing_body_feed(&b, "\"c\"}", strlen("\"c\"}"));
    ing_body_end(&b, 1);
    assert_string_equal(r.text, "E:{\"type\":\"a\"}|over_budget@2|E:{\"type\":\"c\"}");
    assert_true(ing_body_held(&b) <= 2048);
    ing_body_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_line_rule_is_one_for_tcp_and_http),
        cmocka_unit_test(test_body_ndjson_numbers_lines_with_blank_ones_counted),
        cmocka_unit_test(test_body_json_bodies_by_rows_any_split),
        cmocka_unit_test(test_body_array_asks_the_judge_for_the_value_end_when_it_can),
        cmocka_unit_test(test_body_raw_keeps_the_whole_body_up_to_the_limit),
        cmocka_unit_test(test_body_reset_frees_a_carry_buffer_that_grew_large),
        cmocka_unit_test(test_body_refused_carry_growth_rejects_the_event_as_over_budget),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
