/* test_process.c - unit tests for event validation and the per-type table (server/process.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/arena_json.h"
#include "ingest/process.h"
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
    ing_process_t proc;
    int free_on_put; /* asan preset: the pool frees on put, so blocks are allocated again */
} fixture_t;

static int setup_mode(void **state, int pooled)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    pool_config_t cfg;
    pool_config_init(&cfg);
    cfg.mode = pooled ? POOL_MODE_POOLED : POOL_MODE_NAIVE;
    cfg.alloc_fn = count_block;
    cfg.free_fn = free;
    fx->free_on_put = cfg.free_on_put;
    assert_int_equal(pool_create(&cfg, &fx->pool), 0);
    assert_int_equal(pool_cache_create(fx->pool, &fx->cache), 0);
    ing_process_init(&fx->proc, pooled, fx->cache, NULL, NULL);
    fallback_mallocs = 0;
    block_mallocs = 0;
    *state = fx;
    return 0;
}

static int setup_pooled(void **state)
{
    return setup_mode(state, 1);
}

static int setup_naive(void **state)
{
    return setup_mode(state, 0);
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    ing_process_destroy(&fx->proc);
    pool_cache_destroy(fx->cache);
    pool_destroy(fx->pool);
    free(fx);
    return 0;
}

static ing_verdict_t judge(fixture_t *fx, const char *s)
{
    return ing_process_line(&fx->proc, s, strlen(s), NULL);
}

static void test_process_object_with_string_type_is_accepted_and_counted(void **state)
{
    fixture_t *fx = *state;
    assert_int_equal(judge(fx, "{\"type\":\"click\",\"x\":1}"), ING_ACCEPTED);
    assert_int_equal(judge(fx, "{\"a\":[1,2,{\"b\":null}],\"type\":\"click\"}"), ING_ACCEPTED);
    assert_int_equal(judge(fx, "{\"type\":\"view\"}"), ING_ACCEPTED);
    assert_int_equal(ing_process_type_count(&fx->proc), 2);
    assert_string_equal(ing_process_type_name(&fx->proc, 0), "click");
    assert_int_equal(ing_process_type_total(&fx->proc, 0), 2);
    assert_string_equal(ing_process_type_name(&fx->proc, 1), "view");
    assert_int_equal(ing_process_type_total(&fx->proc, 1), 1);
    assert_int_equal(ing_process_other_total(&fx->proc), 0);
}

static void test_process_names_each_rejection_reason(void **state)
{
    fixture_t *fx = *state;
    char type128[160];
    char type129[160];
    snprintf(type128, sizeof(type128), "{\"type\":\"%0128d\"}", 0);
    snprintf(type129, sizeof(type129), "{\"type\":\"%0129d\"}", 0);
    assert_int_equal(judge(fx, "{\"type\":"), ING_REJECT_PARSE);
    assert_int_equal(judge(fx, "not json"), ING_REJECT_PARSE);
    assert_int_equal(judge(fx, "{\"type\":\"a\"} trailing"), ING_REJECT_PARSE);
    assert_int_equal(judge(fx, "{\"type\":\"a\\u0000b\"}"), ING_REJECT_PARSE);
    assert_int_equal(judge(fx, "[{\"type\":\"a\"}]"), ING_REJECT_NOT_OBJECT);
    assert_int_equal(judge(fx, "42"), ING_REJECT_NOT_OBJECT);
    assert_int_equal(judge(fx, "\"type\""), ING_REJECT_NOT_OBJECT);
    assert_int_equal(judge(fx, "{}"), ING_REJECT_NO_TYPE);
    assert_int_equal(judge(fx, "{\"type\":1}"), ING_REJECT_NO_TYPE);
    assert_int_equal(judge(fx, "{\"type\":\"\"}"), ING_REJECT_NO_TYPE);
    assert_int_equal(judge(fx, "{\"Type\":\"a\"}"), ING_REJECT_NO_TYPE);
    assert_int_equal(judge(fx, type129), ING_REJECT_NO_TYPE);
    assert_int_equal(judge(fx, type128), ING_ACCEPTED);
    assert_int_equal(ing_process_type_count(&fx->proc), 1);
}

static void test_process_explains_each_rejection_when_asked(void **state)
{
    fixture_t *fx = *state;
    const char *d = NULL;
    assert_int_equal(ing_process_line(&fx->proc, "{\"type\":", 8, &d), ING_REJECT_PARSE);
    assert_non_null(d);
    assert_non_null(strstr(d, "at byte"));
    d = NULL;
    assert_int_equal(ing_process_line(&fx->proc, "[1]", 3, &d), ING_REJECT_NOT_OBJECT);
    assert_non_null(strstr(d, "not a JSON object"));
    assert_int_equal(ing_process_line(&fx->proc, "{}", 2, &d), ING_REJECT_NO_TYPE);
    assert_non_null(strstr(d, "type"));
    d = NULL;
    assert_int_equal(ing_process_line(&fx->proc, "{\"type\":\"a\"}", 12, &d), ING_ACCEPTED);
    assert_null(d);
}

static void test_process_type_table_is_bounded_and_overflows_into_other(void **state)
{
    fixture_t *fx = *state;
    char ev[64];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < ING_TYPES_MAX + 10; i++) {
            snprintf(ev, sizeof(ev), "{\"type\":\"t%d\"}", i);
            assert_int_equal(judge(fx, ev), ING_ACCEPTED);
        }
    }
    assert_int_equal(ing_process_type_count(&fx->proc), ING_TYPES_MAX);
    for (uint32_t i = 0; i < ING_TYPES_MAX; i++) {
        snprintf(ev, sizeof(ev), "t%u", i);
        assert_string_equal(ing_process_type_name(&fx->proc, i), ev);
        assert_int_equal(ing_process_type_total(&fx->proc, i), 2);
    }
    assert_int_equal(ing_process_other_total(&fx->proc), 20);
}

static void test_process_pooled_mode_allocates_nothing_once_warm(void **state)
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

static void test_process_naive_mode_allocates_from_the_heap(void **state)
{
    fixture_t *fx = *state;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(judge(fx, "{\"type\":\"a\",\"b\":[1,2]}"), ING_ACCEPTED);
    }
    assert_true(fallback_mallocs >= 10);
    assert_int_equal(block_mallocs, 0);
}

int main(void)
{
    arena_json_install(count_malloc, free);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_process_object_with_string_type_is_accepted_and_counted, setup_pooled, teardown),
        cmocka_unit_test_setup_teardown(
            test_process_object_with_string_type_is_accepted_and_counted, setup_naive, teardown),
        cmocka_unit_test_setup_teardown(test_process_names_each_rejection_reason, setup_pooled,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_process_names_each_rejection_reason, setup_naive,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_process_explains_each_rejection_when_asked,
                                        setup_pooled, teardown),
        cmocka_unit_test_setup_teardown(test_process_explains_each_rejection_when_asked,
                                        setup_naive, teardown),
        cmocka_unit_test_setup_teardown(test_process_type_table_is_bounded_and_overflows_into_other,
                                        setup_pooled, teardown),
        cmocka_unit_test_setup_teardown(test_process_pooled_mode_allocates_nothing_once_warm,
                                        setup_pooled, teardown),
        cmocka_unit_test_setup_teardown(test_process_naive_mode_allocates_from_the_heap,
                                        setup_naive, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
