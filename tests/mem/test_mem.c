/* test_mem.c - the counting allocator layer in one mode (TEST_ALLOCATOR, set per executable,
 * since mem_init is once per process): counts, C semantics, the failure hook, libuv through the
 * layer, and proof that the mode's blocks really come from the allocator it names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mem/mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#ifndef TEST_ALLOCATOR
#error "TEST_ALLOCATOR must be MEM_ALLOCATOR_LIBC or MEM_ALLOCATOR_MIMALLOC"
#endif

/* Under ASan or TSan the sanitizer serves malloc, so glibc's own arenas stay empty. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZER_SERVES_MALLOC 1
#endif

static void test_init_selects_the_requested_allocator_and_refuses_a_switch(void **state)
{
    (void)state;
    mem_allocator_t other =
        TEST_ALLOCATOR == MEM_ALLOCATOR_LIBC ? MEM_ALLOCATOR_MIMALLOC : MEM_ALLOCATOR_LIBC;
    assert_int_equal(mem_allocator(), TEST_ALLOCATOR);
    assert_int_equal(mem_init(TEST_ALLOCATOR), 0);
    assert_int_equal(mem_init(other), -EBUSY);
    assert_int_equal(mem_init((mem_allocator_t)42), -EINVAL);
    assert_int_equal(mem_allocator(), TEST_ALLOCATOR);
}

static void test_allocator_names_parse_and_print_both_ways(void **state)
{
    (void)state;
    mem_allocator_t a = MEM_ALLOCATOR_LIBC;
    assert_int_equal(mem_allocator_parse("mimalloc", &a), 0);
    assert_int_equal(a, MEM_ALLOCATOR_MIMALLOC);
    assert_string_equal(mem_allocator_name(a), "mimalloc");
    assert_int_equal(mem_allocator_parse("libc", &a), 0);
    assert_int_equal(a, MEM_ALLOCATOR_LIBC);
    assert_string_equal(mem_allocator_name(a), "libc");
    assert_int_equal(mem_allocator_parse("jemalloc", &a), -EINVAL);
    assert_int_equal(mem_allocator_parse(NULL, &a), -EINVAL);
    assert_int_equal(a, MEM_ALLOCATOR_LIBC);
}

static void test_blocks_come_from_the_allocator_the_mode_names(void **state)
{
    (void)state;
    void *ours = mem_malloc(100);
    void *big = mem_malloc(1 << 20);
    void *plain = malloc(100); /* not through the layer: glibc's (or ASan's) in both modes */
    assert_non_null(ours);
    assert_non_null(big);
    assert_non_null(plain);
    int want = TEST_ALLOCATOR == MEM_ALLOCATOR_MIMALLOC ? 1 : 0;
    assert_int_equal(mem_owned_by_mimalloc(ours), want);
    assert_int_equal(mem_owned_by_mimalloc(big), want);
    /* Loading libmimalloc with RTLD_LOCAL must not have replaced malloc for the process. */
    assert_int_equal(mem_owned_by_mimalloc(plain), 0);
    free(plain);
    mem_free(big);
    mem_free(ours);
}

static void test_malloc_and_free_count_blocks_and_usable_bytes_back_to_baseline(void **state)
{
    (void)state;
    enum { N = 200 };
    void *p[N];
    mem_stats_t before, during, after;
    mem_stats(&before);
    for (size_t i = 0; i < N; i++) {
        p[i] = mem_malloc(1 + i * 37);
        assert_non_null(p[i]);
        memset(p[i], 0xab, 1 + i * 37);
    }
    mem_stats(&during);
    assert_int_equal(during.mallocs - before.mallocs, N);
    assert_int_equal(during.frees, before.frees);
    uint64_t requested = 0;
    for (size_t i = 0; i < N; i++) {
        requested += 1 + i * 37;
    }
    /* Charged at usable size: at least what was asked for, and all of it live. */
    assert_true(during.alloc_bytes_total - before.alloc_bytes_total >= requested);
    assert_int_equal(during.alloc_bytes - before.alloc_bytes,
                     (int64_t)(during.alloc_bytes_total - before.alloc_bytes_total));
    for (size_t i = 0; i < N; i++) {
        mem_free(p[i]);
    }
    mem_free(NULL);
    mem_stats(&after);
    assert_int_equal(after.mallocs, during.mallocs);
    assert_int_equal(after.frees - before.frees, N);
    assert_int_equal(after.alloc_bytes, before.alloc_bytes);
    assert_int_equal(after.alloc_bytes_total, during.alloc_bytes_total);
}

static void test_realloc_keeps_contents_and_live_counts_match(void **state)
{
    (void)state;
    mem_stats_t before, st;
    mem_stats(&before);
    char *p = mem_realloc(NULL, 16); /* realloc of NULL is a malloc */
    assert_non_null(p);
    memcpy(p, "fifteen bytes..", 16);
    mem_stats(&st);
    assert_int_equal(st.mallocs - before.mallocs, 1);
    for (size_t size = 32; size <= (1u << 20); size *= 4) {
        p = mem_realloc(p, size);
        assert_non_null(p);
        assert_memory_equal(p, "fifteen bytes..", 16);
        mem_stats(&st);
        /* One live block whatever moved: a moving realloc counts one malloc and one free. */
        assert_int_equal((st.mallocs - before.mallocs) - (st.frees - before.frees), 1);
        assert_true(st.alloc_bytes - before.alloc_bytes >= (int64_t)size);
    }
    p = mem_realloc(p, 8); /* shrink */
    assert_non_null(p);
    assert_memory_equal(p, "fifteen", 7);
    assert_null(mem_realloc(p, 0)); /* frees p */
    mem_stats(&st);
    assert_int_equal(st.mallocs - before.mallocs, st.frees - before.frees);
    assert_int_equal(st.alloc_bytes, before.alloc_bytes);
}

static void test_calloc_zeroes_and_overflow_returns_null_without_counting(void **state)
{
    (void)state;
    mem_stats_t before, st;
    mem_stats(&before);
    unsigned char *p = mem_calloc(64, 33);
    assert_non_null(p);
    for (size_t i = 0; i < 64 * 33; i++) {
        assert_int_equal(p[i], 0);
    }
    errno = 0;
    assert_null(mem_calloc(SIZE_MAX / 2, 3));
    assert_int_equal(errno, ENOMEM);
    assert_null(mem_calloc(3, SIZE_MAX / 2));
    mem_stats(&st);
    assert_int_equal(st.mallocs - before.mallocs, 1);
    mem_free(p);
    mem_stats(&st);
    assert_int_equal(st.alloc_bytes, before.alloc_bytes);
}

static void test_strdup_copies_and_is_counted(void **state)
{
    (void)state;
    mem_stats_t before, st;
    mem_stats(&before);
    char *s = mem_strdup("event");
    assert_non_null(s);
    assert_string_equal(s, "event");
    mem_stats(&st);
    assert_int_equal(st.mallocs - before.mallocs, 1);
    mem_free(s);
}

static void test_fail_after_fails_exactly_one_allocation(void **state)
{
    (void)state;
    void *p[6];
    mem_stats_t before, st;
    mem_stats(&before);
    mem_fail_after(2);
    for (size_t i = 0; i < 6; i++) {
        errno = 0;
        p[i] = mem_malloc(24);
        if (i == 2) {
            assert_null(p[i]);
            assert_int_equal(errno, ENOMEM);
        } else {
            assert_non_null(p[i]);
        }
    }
    mem_stats(&st);
    assert_int_equal(st.mallocs - before.mallocs, 5);

    /* A failing realloc leaves the block as it was; calloc fails through the hook too. */
    memcpy(p[0], "keep", 5);
    mem_fail_after(0);
    assert_null(mem_realloc(p[0], 4096));
    assert_string_equal(p[0], "keep");
    mem_fail_after(0);
    assert_null(mem_calloc(2, 2));
    void *q = mem_calloc(2, 2);
    assert_non_null(q);
    mem_free(q);

    /* -1 turns the hook off before it fires. */
    mem_fail_after(0);
    mem_fail_after(-1);
    q = mem_malloc(1);
    assert_non_null(q);
    mem_free(q);
    for (size_t i = 0; i < 6; i++) {
        mem_free(p[i]);
    }
    mem_stats(&st);
    assert_int_equal(st.alloc_bytes, before.alloc_bytes);
}

static int fs_cb_calls;

static void on_stat(uv_fs_t *req)
{
    fs_cb_calls += req->result == 0;
    uv_fs_req_cleanup(req);
}

static void test_libuv_allocations_go_through_the_layer(void **state)
{
    (void)state;
    mem_stats_t before, st;
    uv_loop_t loop;
    uv_fs_t req;
    mem_stats(&before);
    assert_int_equal(uv_loop_init(&loop), 0);
    /* An asynchronous fs request copies its path with libuv's allocator. */
    assert_int_equal(uv_fs_stat(&loop, &req, "/", on_stat), 0);
    mem_stats(&st);
    assert_true(st.mallocs > before.mallocs);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(fs_cb_calls, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
    mem_stats(&st);
    assert_true(st.frees > before.frees);
    assert_int_equal(st.mallocs - before.mallocs, st.frees - before.frees);
    assert_int_equal(st.alloc_bytes, before.alloc_bytes);
}

static void test_sys_bytes_report_and_release_answer(void **state)
{
    (void)state;
    void *p = mem_malloc(256 * 1024);
    assert_non_null(p);
    memset(p, 1, 256 * 1024);
#ifndef SANITIZER_SERVES_MALLOC
    assert_true(mem_sys_bytes() > 0);
#else
    if (TEST_ALLOCATOR == MEM_ALLOCATOR_MIMALLOC) {
        assert_true(mem_sys_bytes() > 0); /* mimalloc maps its own memory even then */
    }
#endif
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(mem_write_report(f), 0);
    assert_true(ftell(f) > 0);
    char head[64] = {0};
    rewind(f);
    assert_true(fread(head, 1, sizeof head - 1, f) > 0);
    if (TEST_ALLOCATOR == MEM_ALLOCATOR_LIBC) {
        assert_non_null(strstr(head, "<malloc"));
    }
    fclose(f);
    mem_free(p);
    mem_release_to_os();
}

int main(void)
{
    /* Once per process, before any allocation through the layer and any other libuv call. */
    if (mem_init(TEST_ALLOCATOR) != 0) {
        fprintf(stderr, "mem_init(%s): %s\n", mem_allocator_name(TEST_ALLOCATOR), mem_last_error());
        return 1;
    }
    if (uv_replace_allocator(mem_malloc, mem_realloc, mem_calloc, mem_free) != 0) {
        fprintf(stderr, "uv_replace_allocator failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_selects_the_requested_allocator_and_refuses_a_switch),
        cmocka_unit_test(test_allocator_names_parse_and_print_both_ways),
        cmocka_unit_test(test_blocks_come_from_the_allocator_the_mode_names),
        cmocka_unit_test(test_malloc_and_free_count_blocks_and_usable_bytes_back_to_baseline),
        cmocka_unit_test(test_realloc_keeps_contents_and_live_counts_match),
        cmocka_unit_test(test_calloc_zeroes_and_overflow_returns_null_without_counting),
        cmocka_unit_test(test_strdup_copies_and_is_counted),
        cmocka_unit_test(test_fail_after_fails_exactly_one_allocation),
        cmocka_unit_test(test_libuv_allocations_go_through_the_layer),
        cmocka_unit_test(test_sys_bytes_report_and_release_answer),
    };
    return cmocka_run_group_tests_name(mem_allocator_name(TEST_ALLOCATOR), tests, NULL, NULL);
}
