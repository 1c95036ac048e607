/* test_allocprof_mem.c - the allocation-site profile fed by the real counting layer
 * (metrics/mem.c with its allocprof hooks), in one allocator mode per executable
 * (TEST_ALLOCATOR): sites are named, the layer's frames are left out, frees and reallocs keep
 * the in-use figures right. Built only once mem.c calls the hooks (see CMakeLists.txt). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem/allocprof.h"
#include "mem/mem.h"
#include "profile_text.h"

#ifndef TEST_ALLOCATOR
#error "TEST_ALLOCATOR must be MEM_ALLOCATOR_LIBC or MEM_ALLOCATOR_MIMALLOC"
#endif

/* Allocation sites; static, so named from the executable's .symtab. The empty asm after each
 * call keeps the site a frame of its own. */
static __attribute__((noinline)) void *via_malloc(size_t n)
{
    void *p = mem_malloc(n);
    __asm__ volatile("" ::: "memory");
    return p;
}

static __attribute__((noinline)) void *via_calloc(size_t n)
{
    void *p = mem_calloc(n, 8);
    __asm__ volatile("" ::: "memory");
    return p;
}

static __attribute__((noinline)) void *via_realloc(void *p, size_t n)
{
    void *q = mem_realloc(p, n);
    __asm__ volatile("" ::: "memory");
    return q;
}

static __attribute__((noinline)) char *via_strdup(const char *s)
{
    char *d = mem_strdup(s);
    __asm__ volatile("" ::: "memory");
    return d;
}

static char *profile(allocprof_sort_t key)
{
    char *buf = profile_text(key, 0, ALLOCPROF_TEXT);
    assert_non_null(buf);
    return buf;
}

/* The inuse_objects of the site whose top frame is fn, or -1 when no such site is shown. */
static long inuse_objects_of(const char *text, const char *fn)
{
    site_vals_t r = site_in(text, fn);
    return r.found ? (long)r.v[ALLOCPROF_INUSE_OBJECTS] : -1;
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(mem_init(TEST_ALLOCATOR), 0);
    assert_int_equal(allocprof_set_rate(1), 0);
    allocprof_reset();
    return 0;
}

static void test_each_layer_entry_point_is_attributed_to_its_caller(void **state)
{
    (void)state;
    void *a = via_malloc(100);
    void *b = via_calloc(30);
    void *c = via_realloc(NULL, 200);
    char *d = via_strdup("event");
    char *text = profile(ALLOCPROF_INUSE_SPACE);
    assert_int_equal(inuse_objects_of(text, "via_malloc"), 1);
    assert_int_equal(inuse_objects_of(text, "via_calloc"), 1);
    assert_int_equal(inuse_objects_of(text, "via_realloc"), 1);
    assert_int_equal(inuse_objects_of(text, "via_strdup"), 1);
    /* no site starts inside the layer or the profiler */
    assert_null(strstr(text, "    #0 mem_"));
    assert_null(strstr(text, "    #0 charge_alloc"));
    assert_null(strstr(text, "    #0 allocprof_"));
    free(text);
    mem_free(a);
    mem_free(b);
    mem_free(c);
    mem_free(d);
    allocprof_stats_t st;
    allocprof_stats(&st);
    assert_int_equal(st.live, 0);
    assert_int_equal(st.samples, 4);
}

static void test_realloc_moves_the_block_to_the_realloc_site(void **state)
{
    (void)state;
    void *p = via_malloc(16);
    void *q = via_realloc(p, 1 << 20); /* moves: a free of p, an allocation of q */
    assert_non_null(q);
    char *text = profile(ALLOCPROF_INUSE_OBJECTS);
    assert_int_equal(inuse_objects_of(text, "via_realloc"), 1);
    assert_int_equal(inuse_objects_of(text, "via_malloc"), -1); /* nothing in use left there */
    free(text);
    void *r = via_realloc(q, 100); /* shrinks, in place or not: still one block */
    allocprof_stats_t st;
    allocprof_stats(&st);
    assert_int_equal(st.live, 1);
    mem_free(r);
    allocprof_stats(&st);
    assert_int_equal(st.live, 0);
}

static void test_blocks_freed_then_reused_are_not_confused(void **state)
{
    (void)state;
    for (int i = 0; i < 1000; i++) {
        void *p = via_malloc(64);
        mem_free(p);
    }
    void *keep = via_calloc(8);
    allocprof_stats_t st;
    allocprof_stats(&st);
    assert_int_equal(st.live, 1);
    char *text = profile(ALLOCPROF_ALLOC_OBJECTS);
    site_vals_t r = site_in(text, "via_malloc");
    assert_true(r.found);
    assert_int_equal(r.v[ALLOCPROF_INUSE_OBJECTS], 0);
    assert_int_equal(r.v[ALLOCPROF_ALLOC_OBJECTS], 1000);
    free(text);
    mem_free(keep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_each_layer_entry_point_is_attributed_to_its_caller, setup),
        cmocka_unit_test_setup(test_realloc_moves_the_block_to_the_realloc_site, setup),
        cmocka_unit_test_setup(test_blocks_freed_then_reused_are_not_confused, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
