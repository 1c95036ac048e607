/* test_judge.c - unit tests for the parse seam (ingest/judge.h): the rule, each strategy of the
 * jansson tree, the details, the live switch, and where memory comes from. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/arena_json.h"
#include "ingest/judge.h"
#include "pool/pool.h"

/* Counts jansson's fallback allocations (outside an arena) and pool block allocations. */
static size_t fallback_mallocs;
static size_t block_mallocs;

static void *count_malloc(size_t n)
{
    fallback_mallocs++;
    return malloc(n);
}

static void *count_block(size_t n)
{
    block_mallocs++;
    return malloc(n);
}

typedef struct {
    pool_t *pool;
    pool_cache_t *cache;
    ing_judge_t judge;
    int free_on_put; /* asan preset: the pool frees on put, so blocks are allocated again */
} fixture_t;

static int setup_mode(void **state, ing_parse_t parse)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    pool_config_t cfg;
    pool_config_init(&cfg);
    cfg.mode = parse == ING_PARSE_TREE_POOLED ? POOL_MODE_POOLED : POOL_MODE_NAIVE;
    cfg.alloc_fn = count_block;
    cfg.free_fn = free;
    fx->free_on_put = cfg.free_on_put;
    assert_int_equal(pool_create(&cfg, &fx->pool), 0);
    assert_int_equal(pool_cache_create(fx->pool, &fx->cache), 0);
    ing_judge_init(&fx->judge, parse, fx->cache, NULL, NULL);
    fallback_mallocs = 0;
    block_mallocs = 0;
    *state = fx;
    return 0;
}

static int setup_pooled(void **state)
{
    return setup_mode(state, ING_PARSE_TREE_POOLED);
}

static int setup_naive(void **state)
{
    return setup_mode(state, ING_PARSE_TREE_NAIVE);
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    ing_judge_destroy(&fx->judge);
    pool_cache_destroy(fx->cache);
    pool_destroy(fx->pool);
    free(fx);
    return 0;
}

static ing_verdict_t judge_n(fixture_t *fx, const char *s, size_t n)
{
    ing_judgement_t out;
    ing_verdict_t v = ing_judge_line(&fx->judge, s, n, 0, &out);
    if (v == ING_ACCEPTED) {
        assert_non_null(out.type);
        assert_true(out.type_len >= 1 && out.type_len <= ING_TYPE_MAX);
        assert_null(memchr(out.type, '\0', out.type_len));
    } else {
        assert_null(out.type);
        assert_int_equal(out.type_len, 0);
    }
    assert_null(out.detail); /* not asked for */
    return v;
}

static ing_verdict_t judge(fixture_t *fx, const char *s)
{
    return judge_n(fx, s, strlen(s));
}

/* The accepted type of s, copied (NUL-terminated) into buf. */
static const char *type_of(fixture_t *fx, const char *s, char *buf)
{
    ing_judgement_t out;
    assert_int_equal(ing_judge_line(&fx->judge, s, strlen(s), 0, &out), ING_ACCEPTED);
    memcpy(buf, out.type, out.type_len);
    buf[out.type_len] = '\0';
    return buf;
}

static void test_judge_object_with_string_type_is_accepted_with_its_type(void **state)
{
    fixture_t *fx = *state;
    char t[ING_TYPE_MAX + 1];
    assert_string_equal(type_of(fx, "{\"type\":\"click\",\"x\":1}", t), "click");
    assert_string_equal(type_of(fx, "{\"a\":[1,2,{\"b\":null}],\"type\":\"view\"}", t), "view");
    /* Escapes are decoded; the last "type" wins, as json_object_get sees it. */
    assert_string_equal(type_of(fx, "{\"type\":\"caf\\u00e9\"}", t), "caf\xC3\xA9");
    assert_string_equal(type_of(fx, "{\"type\":\"a\",\"type\":\"b\"}", t), "b");
    assert_string_equal(type_of(fx, "{\"t\\u0079pe\":\"esc\"}", t), "esc");
}

static void test_judge_names_each_rejection_reason(void **state)
{
    fixture_t *fx = *state;
    char type128[160];
    char type129[160];
    snprintf(type128, sizeof(type128), "{\"type\":\"%0128d\"}", 0);
    snprintf(type129, sizeof(type129), "{\"type\":\"%0129d\"}", 0);
    assert_int_equal(judge(fx, "{\"type\":"), ING_REJECT_PARSE);
    assert_int_equal(judge(fx, "not json"), ING_REJECT_PARSE);
    assert_int_equal(judge(fx, "{\"type\":\"a\"} trailing"), ING_REJECT_PARSE);
    assert_int_equal(judge(fx, "[{\"type\":\"a\"}]"), ING_REJECT_NOT_OBJECT);
    assert_int_equal(judge(fx, "42"), ING_REJECT_NOT_OBJECT);
    assert_int_equal(judge(fx, "\"type\""), ING_REJECT_NOT_OBJECT);
    assert_int_equal(judge(fx, "{}"), ING_REJECT_NO_TYPE);
    assert_int_equal(judge(fx, "{\"type\":1}"), ING_REJECT_NO_TYPE);
    assert_int_equal(judge(fx, "{\"type\":\"\"}"), ING_REJECT_NO_TYPE);
    assert_int_equal(judge(fx, "{\"Type\":\"a\"}"), ING_REJECT_NO_TYPE);
    assert_int_equal(judge(fx, type129), ING_REJECT_NO_TYPE);
    assert_int_equal(judge(fx, type128), ING_ACCEPTED);
}

/* The two user-visible changes of the JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL flags. */
static void test_judge_accepts_integers_beyond_int64(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(judge(fx, "{\"type\":\"a\",\"id\":18446744073709551615}"), ING_ACCEPTED);
    assert_int_equal(judge(fx, "{\"type\":\"a\",\"id\":-9223372036854775809}"), ING_ACCEPTED);
    assert_int_equal(judge(fx, "{\"type\":\"a\",\"id\":100000000000000000000000000000}"),
                     ING_ACCEPTED);
    /* What is left of jansson's limits: a real that overflows a double. */
    assert_int_equal(judge(fx, "{\"type\":\"a\",\"x\":1e400}"), ING_REJECT_PARSE);
}

static void test_judge_accepts_nul_in_a_value_but_not_in_the_type(void **state)
{
    fixture_t *fx = *state;
    char t[ING_TYPE_MAX + 1];
    assert_string_equal(type_of(fx, "{\"type\":\"a\",\"note\":\"x\\u0000y\"}", t), "a");
    assert_int_equal(judge(fx, "{\"type\":\"a\\u0000b\"}"), ING_REJECT_NO_TYPE);
    assert_int_equal(judge(fx, "{\"type\":\"\\u0000\"}"), ING_REJECT_NO_TYPE);
    /* A NUL in a key is still refused by jansson, and a raw NUL byte is no JSON text. */
    assert_int_equal(judge(fx, "{\"type\":\"a\",\"k\\u0000\":1}"), ING_REJECT_PARSE);
    assert_int_equal(judge_n(fx, "{\"type\":\"a\"}\0", 13), ING_REJECT_PARSE);
}

static void test_judge_explains_each_rejection_when_asked(void **state)
{
    fixture_t *fx = *state;
    ing_judgement_t out;
    assert_int_equal(ing_judge_line(&fx->judge, "{\"type\":", 8, 1, &out), ING_REJECT_PARSE);
    assert_non_null(out.detail);
    assert_non_null(strstr(out.detail, "at byte 8"));
    assert_int_equal(out.offset, 8);
    assert_int_equal(ing_judge_line(&fx->judge, "[1]", 3, 1, &out), ING_REJECT_NOT_OBJECT);
    assert_non_null(strstr(out.detail, "not a JSON object"));
    assert_int_equal(ing_judge_line(&fx->judge, "{}", 2, 1, &out), ING_REJECT_NO_TYPE);
    assert_non_null(strstr(out.detail, "type"));
    assert_int_equal(ing_judge_line(&fx->judge, "{\"type\":\"a\"}", 12, 1, &out), ING_ACCEPTED);
    assert_null(out.detail);
}

static void test_judge_switches_strategy_between_events(void **state)
{
    fixture_t *fx = *state;
    ing_parse_t other = ing_judge_parse(&fx->judge) == ING_PARSE_TREE_POOLED
                            ? ING_PARSE_TREE_NAIVE
                            : ING_PARSE_TREE_POOLED;
    pool_stats_t st;
    assert_int_equal(judge(fx, "{\"type\":\"a\",\"b\":[1,2]}"), ING_ACCEPTED);
    ing_judge_set(&fx->judge, other);
    assert_int_equal(ing_judge_parse(&fx->judge), other);
    assert_int_equal(judge(fx, "{\"type\":\"a\",\"b\":[1,2]}"), ING_ACCEPTED);
    assert_int_equal(judge(fx, "{bad"), ING_REJECT_PARSE);
    pool_cache_stats(fx->cache, &st);
    assert_int_equal(st.in_use, 0); /* nothing held between events in either strategy */
    assert_string_equal(ing_parse_name(ING_PARSE_TREE_POOLED), "tree-pooled");
    assert_string_equal(ing_parse_name(ING_PARSE_TREE_NAIVE), "tree-naive");
}

static void test_judge_array_seam_is_declined_by_the_tree(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(ing_judge_value_end(&fx->judge, "{\"type\":\"a\"},", 13), 0);
}

static void test_judge_pooled_tree_allocates_nothing_once_warm(void **state)
{
    fixture_t *fx = *state;
    const char *ev = "{\"type\":\"order\",\"id\":12345,\"items\":[{\"sku\":\"a\",\"n\":2},"
                     "{\"sku\":\"b\",\"n\":1}],\"user\":{\"name\":\"x\",\"tags\":[\"p\",\"q\"]}}";
    pool_stats_t st;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(judge(fx, ev), ING_ACCEPTED);
    }
    assert_int_equal(judge(fx, "{bad"), ING_REJECT_PARSE);
    size_t warm_blocks = block_mallocs;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(judge(fx, ev), ING_ACCEPTED);
        assert_int_equal(judge(fx, "{bad"), ING_REJECT_PARSE);
    }
    assert_int_equal(fallback_mallocs, 0);
    if (!fx->free_on_put) {
        assert_int_equal(block_mallocs, warm_blocks);
    }
    pool_cache_stats(fx->cache, &st);
    assert_int_equal(st.in_use, 0);
}

static void test_judge_naive_tree_allocates_from_the_heap(void **state)
{
    fixture_t *fx = *state;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(judge(fx, "{\"type\":\"a\",\"b\":[1,2]}"), ING_ACCEPTED);
    }
    assert_true(fallback_mallocs >= 10);
    assert_int_equal(block_mallocs, 0);
}

#define BOTH(fn)                                                                                   \
    cmocka_unit_test_setup_teardown(fn, setup_pooled, teardown),                                   \
        cmocka_unit_test_setup_teardown(fn, setup_naive, teardown)

int main(void)
{
    arena_json_install(count_malloc, free);
    const struct CMUnitTest tests[] = {
        BOTH(test_judge_object_with_string_type_is_accepted_with_its_type),
        BOTH(test_judge_names_each_rejection_reason),
        BOTH(test_judge_accepts_integers_beyond_int64),
        BOTH(test_judge_accepts_nul_in_a_value_but_not_in_the_type),
        BOTH(test_judge_explains_each_rejection_when_asked),
        BOTH(test_judge_switches_strategy_between_events),
        BOTH(test_judge_array_seam_is_declined_by_the_tree),
        cmocka_unit_test_setup_teardown(test_judge_pooled_tree_allocates_nothing_once_warm,
                                        setup_pooled, teardown),
        cmocka_unit_test_setup_teardown(test_judge_naive_tree_allocates_from_the_heap, setup_naive,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
