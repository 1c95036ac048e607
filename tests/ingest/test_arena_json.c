/* test_arena_json.c - jansson parsing into the per-event arena through the hooks of
 * arena_json.c: same trees as with malloc, nothing left behind, failure paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena_fixture.h"
#include "ingest/arena_json.h"

/* The arena fixture (tests/pool/arena_fixture.h) counts the pool's blocks and the arena's
 * oversize path; jansson's fallback has a counter of its own, so a test can tell where memory
 * came from. */
static counter_t fallback_ctr;

static void *fallback_alloc(size_t n)
{
    return count(&fallback_ctr, n);
}

static void fallback_free(void *p)
{
    uncount(&fallback_ctr, p);
}

static int setup(void **state)
{
    fallback_ctr = (counter_t){0, 0, -1};
    return arena_fixture_setup(state);
}

/* Nothing is left behind anywhere. */
static int teardown(void **state)
{
    int r = arena_fixture_teardown(state);
    return r == 0 && fallback_ctr.allocs == fallback_ctr.frees ? 0 : -1;
}

/* Test events: small realistic ones, one over 4096 bytes with many fields, one with a string
 * longer than a block, and one nested 200 deep. */
#define N_EVENTS 8
static char *events[N_EVENTS];

static char *make_nested(int depth)
{
    size_t n = (size_t)depth * 8 + 64;
    char *s = malloc(n);
    size_t off = 0;

    if (s == NULL) {
        return NULL;
    }

    for (int i = 0; i < depth; i++) {
        off += (size_t)sprintf(s + off, i % 2 ? "[" : "{\"k\":");
    }
    off += (size_t)sprintf(s + off, "1");
    for (int i = depth - 1; i >= 0; i--) {
        off += (size_t)sprintf(s + off, i % 2 ? "]" : "}");
    }
    s[off] = '\0';
    return s;
}

static char *make_wide(int fields)
{
    char *s = malloc((size_t)fields * 64 + 16);
    size_t off = 0;

    if (s == NULL) {
        return NULL;
    }

    off += (size_t)sprintf(s, "{\"type\":\"wide\"");
    for (int i = 0; i < fields; i++) {
        off += (size_t)sprintf(s + off, ",\"field_%d\":{\"v\":%d,\"s\":\"value-%d\"}", i, i * 7, i);
    }
    strcpy(s + off, "}");
    return s;
}

static char *make_long_string(size_t len)
{
    char *s = malloc(len + 64);
    size_t off;

    if (s == NULL) {
        return NULL;
    }
    off = (size_t)sprintf(s, "{\"type\":\"blob\",\"data\":\"");

    for (size_t i = 0; i < len; i++) {
        s[off++] = (char)('a' + i % 26);
    }
    strcpy(s + off, "\\u00e9\\n\"}");
    return s;
}

static int setup_events(void **state)
{
    (void)state;
    arena_json_install(fallback_alloc, fallback_free);
    events[0] = strdup("{\"type\":\"click\",\"ts\":1700000000123,\"user\":\"u-1842\","
                       "\"session\":\"s-9f3a2c\",\"page\":\"/products/42\",\"ref\":null,"
                       "\"ok\":true,\"score\":0.875,\"tags\":[\"a\",\"b\",\"c\"],"
                       "\"geo\":{\"country\":\"DE\",\"city\":\"Berlin\",\"lat\":52.52},"
                       "\"ua\":\"Mozilla/5.0 (X11; Linux x86_64)\"}");
    events[1] = strdup("{\"type\":\"view\",\"n\":-3,\"big\":18446744073709,\"e\":1.5e-7,"
                       "\"uni\":\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\"\",\"empty\":{},\"arr\":[]}");
    events[2] = strdup("[1,2,3,{\"a\":[true,false,null]}]");
    events[3] = strdup("\"just a string\"");
    events[4] = make_wide(120);
    events[5] = make_long_string(6000);
    events[6] = make_nested(200);
    events[7] = make_wide(8);
    for (int i = 0; i < N_EVENTS; i++) {
        if (events[i] == NULL) {
            return -1;
        }
    }
    /* Two of them are larger than a block. */
    return events[4] != NULL && strlen(events[4]) > 4096 && events[5] != NULL &&
                   strlen(events[5]) > 4096
               ? 0
               : -1;
}

static int teardown_events(void **state)
{
    (void)state;
    for (int i = 0; i < N_EVENTS; i++) {
        free(events[i]);
    }
    return 0;
}

static void test_jansson_parse_into_arena_equals_parse_with_malloc(void **state)
{
    fixture_t *f = *state;

    for (int i = 0; i < N_EVENTS; i++) {
        json_error_t err;
        json_t *ref = json_loads(events[i], JSON_DECODE_ANY, &err);
        assert_non_null(ref);
        size_t fallback_before = fallback_ctr.allocs;
        assert_null(arena_json_activate(&f->arena));
        json_t *doc = json_loads(events[i], JSON_DECODE_ANY, &err);
        assert_ptr_equal(arena_json_activate(NULL), &f->arena);
        /* Not one allocation reached the fallback while the arena was active. */
        assert_int_equal(fallback_ctr.allocs, fallback_before);
        assert_non_null(doc);
        assert_true(json_equal(ref, doc));
        assert_true(f->arena.blocks > 0);
        json_decref(ref);
        arena_reset(&f->arena); /* no json_decref on the arena tree */
    }
    assert_true(fallback_ctr.allocs > 0);
    assert_int_equal(fallback_ctr.allocs, fallback_ctr.frees);
}

static void test_jansson_arena_parse_leaves_nothing_behind_after_reset(void **state)
{
    fixture_t *f = *state;
    pool_stats_t s;

    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < N_EVENTS; i++) {
            arena_json_activate(&f->arena);
            json_t *doc = json_loads(events[i], JSON_DECODE_ANY, NULL);
            assert_non_null(doc);
            json_decref(doc); /* a stray decref is a no-op while the arena is active */
            arena_json_activate(NULL);
            arena_reset(&f->arena);
        }
    }
    pool_cache_stats(f->cache, &s);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(big_ctr.allocs, big_ctr.frees);
    assert_int_equal(fallback_ctr.allocs, 0);
}

static void test_jansson_parse_into_failing_arena_returns_error_and_leaks_nothing(void **state)
{
    fixture_t *f = *state;
    int failed = 0, succeeded = 0;

    /* Fail the pool's k-th block for every k until a parse of the wide event succeeds, then
     * the oversize path for the long string. */
    for (long k = 0; k < 64 && succeeded == 0; k++) {
        json_error_t err;
        pool_cache_trim(f->cache); /* drain cached blocks so gets reach the allocator */
        pool_cache_trim(f->cache);
        blocks_ctr.fail_after = k;
        arena_json_activate(&f->arena);
        json_t *doc = json_loads(events[4], 0, &err);
        arena_json_activate(NULL);
        blocks_ctr.fail_after = -1;
        if (doc == NULL) {
            failed++;
        } else {
            succeeded++;
        }
        arena_reset(&f->arena);
    }
    assert_true(failed > 0);
    assert_int_equal(succeeded, 1);
    big_ctr.fail_after = 0;
    arena_json_activate(&f->arena);
    assert_null(json_loads(events[5], 0, NULL));
    arena_json_activate(NULL);
    big_ctr.fail_after = -1;
    arena_reset(&f->arena);
    assert_int_equal(fallback_ctr.allocs, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_jansson_parse_into_arena_equals_parse_with_malloc,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_jansson_arena_parse_leaves_nothing_behind_after_reset,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_jansson_parse_into_failing_arena_returns_error_and_leaks_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, setup_events, teardown_events);
}
