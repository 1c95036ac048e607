/* test_arena.c - the per-event arena: alignment, spill into further blocks, oversize requests,
 * reset and failure paths (jansson parsing into it is tested in tests/ingest/test_arena_json.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena_fixture.h"

/* The fixture (arena_fixture.h): an arena over a pool, counting where memory comes from; its
 * teardown fails when anything is left behind. */
static int setup(void **state)
{
    return arena_fixture_setup(state);
}

static int teardown(void **state)
{
    return arena_fixture_teardown(state);
}

static void test_arena_allocations_are_16_byte_aligned_and_disjoint(void **state)
{
    fixture_t *f = *state;
    unsigned char *ptrs[200];
    size_t sizes[200];

    for (size_t i = 0; i < 200; i++) {
        sizes[i] = i % 37;
        ptrs[i] = arena_alloc(&f->arena, sizes[i]);
        assert_non_null(ptrs[i]);
        assert_int_equal((uintptr_t)ptrs[i] % ARENA_ALIGN, 0);
        memset(ptrs[i], (int)i, sizes[i]);
    }
    for (size_t i = 0; i < 200; i++) {
        for (size_t j = 0; j < sizes[i]; j++) {
            assert_int_equal(ptrs[i][j], (unsigned char)i);
        }
        if (i > 0) {
            assert_ptr_not_equal(ptrs[i], ptrs[i - 1]);
        }
    }
    arena_reset(&f->arena);
}

static void test_arena_spills_into_further_blocks_without_spanning(void **state)
{
    fixture_t *f = *state;
    pool_stats_t s;

    for (int i = 0; i < 100; i++) {
        char *p = arena_alloc(&f->arena, 1000);
        assert_non_null(p);
        memset(p, 'x', 1000);
        /* A request never crosses a block: it sits inside the newest block's payload. */
        char *blk = f->arena.head;
        assert_true(p >= blk + ARENA_ALIGN && p + 1000 <= blk + POOL_BLOCK_SIZE);
    }
    assert_int_equal(f->arena.blocks, 25); /* 4 x 1008 bytes per 4080-byte payload */
    assert_int_equal(f->arena.bytes, 100 * 1008);
    assert_int_equal(f->arena.big_allocs, 0);
    pool_cache_stats(f->cache, &s);
    assert_int_equal(s.in_use, 25);
    arena_reset(&f->arena);
    pool_cache_stats(f->cache, &s);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(f->arena.blocks, 0);
    assert_int_equal(f->arena.bytes, 0);
}

static void test_arena_sends_oversize_requests_to_the_heap_and_frees_them_at_reset(void **state)
{
    fixture_t *f = *state;

    char *small = arena_alloc(&f->arena, 4096 - 16); /* exactly one block's payload */
    assert_non_null(small);
    assert_int_equal(f->arena.big_allocs, 0);
    char *big = arena_alloc(&f->arena, 4096 - 15);
    assert_non_null(big);
    assert_int_equal((uintptr_t)big % ARENA_ALIGN, 0);
    memset(big, 'y', 4096 - 15);
    char *huge = arena_alloc(&f->arena, 100000);
    assert_non_null(huge);
    memset(huge, 'z', 100000);
    assert_int_equal(f->arena.big_allocs, 2);
    assert_int_equal(big_ctr.allocs, 2);
    arena_reset(&f->arena);
    assert_int_equal(big_ctr.frees, 2);
    assert_int_equal(f->arena.big_allocs, 2); /* cumulative */
}

static void test_arena_reset_returns_blocks_for_reuse(void **state)
{
    fixture_t *f = *state;
    pool_stats_t s;

    for (int i = 0; i < 10; i++) { /* warm-up round of the same shape */
        assert_non_null(arena_alloc(&f->arena, 500));
    }
    arena_reset(&f->arena);
    size_t allocs = blocks_ctr.allocs;
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 10; i++) {
            assert_non_null(arena_alloc(&f->arena, 500));
        }
        arena_reset(&f->arena);
    }
    pool_cache_stats(f->cache, &s);
    assert_int_equal(s.in_use, 0);
    if (s.released == 0) { /* pooled (not free-on-put): steady state allocates nothing */
        assert_int_equal(blocks_ctr.allocs, allocs);
    }
}

static void test_arena_returns_null_when_no_block_can_be_had(void **state)
{
    fixture_t *f = *state;

    blocks_ctr.fail_after = 0;
    assert_null(arena_alloc(&f->arena, 16));
    blocks_ctr.fail_after = -1;
    /* Failure is sticky until reset, even for a request that would fit. */
    assert_null(arena_alloc(&f->arena, 16));
    arena_reset(&f->arena);
    assert_non_null(arena_alloc(&f->arena, 16));
    big_ctr.fail_after = 0;
    assert_null(arena_alloc(&f->arena, 10000));
    big_ctr.fail_after = -1;
    assert_null(arena_alloc(&f->arena, 16));
    arena_reset(&f->arena);
    assert_non_null(arena_alloc(&f->arena, 10000));
    arena_reset(&f->arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_arena_allocations_are_16_byte_aligned_and_disjoint,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_arena_spills_into_further_blocks_without_spanning,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_arena_sends_oversize_requests_to_the_heap_and_frees_them_at_reset, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_arena_reset_returns_blocks_for_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arena_returns_null_when_no_block_can_be_had, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
