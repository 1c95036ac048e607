/* test_mem_threads.c - the counting layer under threads (TSan preset): writers allocate and free
 * while a reader sums the slots, blocks are freed on other threads than their owners, and more
 * threads than slots fall back to the shared slot; totals are exact after join. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mem/mem.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#ifndef TEST_ALLOCATOR
#error "TEST_ALLOCATOR must be MEM_ALLOCATOR_LIBC or MEM_ALLOCATOR_MIMALLOC"
#endif

enum { WRITERS = 4, ITERS = 20000, KEEP = 64 };

typedef struct {
    size_t id;
    void *kept[KEEP]; /* left allocated for the main thread to free (cross-thread frees) */
    int failed;
} writer_t;

static atomic_int writers_done;

static void *writer_main(void *arg)
{
    writer_t *w = arg;
    void *live[8] = {0};
    for (size_t i = 0; i < ITERS; i++) {
        size_t slot = i % 8;
        mem_free(live[slot]);
        live[slot] = mem_malloc(16 + (i * 13 + w->id * 7) % 2000);
        if (live[slot] == NULL) {
            w->failed = 1;
            break;
        }
        if (i % 101 == 0) {
            live[slot] = mem_realloc(live[slot], 4000);
            if (live[slot] == NULL) {
                w->failed = 1;
                break;
            }
        }
    }
    for (size_t i = 0; i < 8; i++) {
        mem_free(live[i]);
    }
    for (size_t i = 0; i < KEEP; i++) {
        w->kept[i] = mem_malloc(100 + i);
        if (w->kept[i] == NULL) {
            w->failed = 1;
        }
    }
    atomic_fetch_add(&writers_done, 1);
    return NULL;
}

typedef struct {
    int backwards; /* a cumulative total went down between two reads */
    uint64_t reads;
} reader_t;

static void *reader_main(void *arg)
{
    reader_t *r = arg;
    mem_stats_t prev = {0}, st;
    while (atomic_load(&writers_done) < WRITERS) {
        mem_stats(&st);
        if (st.mallocs < prev.mallocs || st.frees < prev.frees ||
            st.alloc_bytes_total < prev.alloc_bytes_total) {
            r->backwards = 1;
        }
        prev = st;
        r->reads++;
    }
    return NULL;
}

static void test_concurrent_writers_and_a_reader_give_exact_totals_after_join(void **state)
{
    (void)state;
    static writer_t w[WRITERS];
    reader_t r = {0, 0};
    pthread_t wt[WRITERS], rt;
    mem_stats_t before, after;

    mem_stats(&before);
    atomic_store(&writers_done, 0);
    assert_int_equal(pthread_create(&rt, NULL, reader_main, &r), 0);
    for (size_t i = 0; i < WRITERS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].id = i;
        assert_int_equal(pthread_create(&wt[i], NULL, writer_main, &w[i]), 0);
    }
    for (size_t i = 0; i < WRITERS; i++) {
        assert_int_equal(pthread_join(wt[i], NULL), 0);
        assert_false(w[i].failed);
    }
    assert_int_equal(pthread_join(rt, NULL), 0);
    assert_false(r.backwards);

    /* Each iteration: one malloc; every 101st also a realloc to 4000 bytes, which counts one
     * malloc and one free only when the block moved, so check mallocs - frees (live blocks). */
    mem_stats(&after);
    uint64_t live = after.mallocs - after.frees - (before.mallocs - before.frees);
    assert_int_equal(live, WRITERS * KEEP);
    assert_true(after.mallocs - before.mallocs >= (uint64_t)WRITERS * (ITERS + KEEP));

    int64_t kept_bytes = 0;
    for (size_t i = 0; i < WRITERS; i++) {
        for (size_t k = 0; k < KEEP; k++) {
            kept_bytes += (int64_t)(100 + k);
        }
    }
    assert_true(after.alloc_bytes - before.alloc_bytes >= kept_bytes);

    /* Free on the main thread what the writers allocated: its slot goes negative, the sum
     * returns exactly to the baseline. */
    for (size_t i = 0; i < WRITERS; i++) {
        for (size_t k = 0; k < KEEP; k++) {
            mem_free(w[i].kept[k]);
        }
    }
    mem_stats(&after);
    assert_int_equal(after.mallocs - after.frees, before.mallocs - before.frees);
    assert_int_equal(after.alloc_bytes, before.alloc_bytes);
}

enum { WAVES = 10, WAVE_THREADS = 32, SMALL_ITERS = 50 };

static void *short_lived_main(void *arg)
{
    int *failed = arg;
    for (size_t i = 0; i < SMALL_ITERS; i++) {
        void *p = mem_malloc(48);
        if (p == NULL) {
            *failed = 1;
            return NULL;
        }
        mem_free(p);
    }
    return NULL;
}

static void test_threads_beyond_the_slots_share_one_slot_and_still_count_exactly(void **state)
{
    (void)state;
    mem_stats_t before, after;
    mem_stats(&before);
    /* 320 threads, 32 at a time: more than the 256 slots, so the last ones use the shared slot
     * concurrently (atomic adds). */
    for (size_t wave = 0; wave < WAVES; wave++) {
        pthread_t t[WAVE_THREADS];
        int failed[WAVE_THREADS] = {0};
        for (size_t i = 0; i < WAVE_THREADS; i++) {
            assert_int_equal(pthread_create(&t[i], NULL, short_lived_main, &failed[i]), 0);
        }
        for (size_t i = 0; i < WAVE_THREADS; i++) {
            assert_int_equal(pthread_join(t[i], NULL), 0);
            assert_false(failed[i]);
        }
    }
    mem_stats(&after);
    assert_int_equal(after.mallocs - before.mallocs, WAVES * WAVE_THREADS * SMALL_ITERS);
    assert_int_equal(after.frees - before.frees, WAVES * WAVE_THREADS * SMALL_ITERS);
    assert_int_equal(after.alloc_bytes, before.alloc_bytes);
}

int main(void)
{
#if defined(__SANITIZE_THREAD__)
    if (TEST_ALLOCATOR == MEM_ALLOCATOR_MIMALLOC) {
        /* libmimalloc is not instrumented: TSan cannot see its synchronisation and reports its
         * block reuse across threads as races. The libc variant covers the layer under TSan. */
        fprintf(stderr, "skipped: mimalloc is not instrumented for ThreadSanitizer\n");
        return 77;
    }
#endif
    if (mem_init(TEST_ALLOCATOR) != 0) {
        fprintf(stderr, "mem_init(%s): %s\n", mem_allocator_name(TEST_ALLOCATOR), mem_last_error());
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_writers_and_a_reader_give_exact_totals_after_join),
        cmocka_unit_test(test_threads_beyond_the_slots_share_one_slot_and_still_count_exactly),
    };
    return cmocka_run_group_tests_name(mem_allocator_name(TEST_ALLOCATOR), tests, NULL, NULL);
}
