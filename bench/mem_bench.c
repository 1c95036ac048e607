/* bench_mem.c - cost of one malloc+free pair through the counting layer vs the raw allocator
 * under it. Not a test. Usage: metrics_bench_mem libc|mimalloc raw|mem [N [SIZE [RUNS]]].
 * Prints the median ns per pair over RUNS; under callgrind, use --toggle-collect=run_pairs and
 * divide Ir by N. */
#include "mem/mem.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void *(*alloc_fn)(size_t);
typedef void (*release_fn)(void *);

/* Keeps the compiler from eliding the pair. */
static void *volatile sink;

__attribute__((noinline)) static void run_pairs(alloc_fn a, release_fn r, size_t n, size_t size)
{
    for (size_t i = 0; i < n; i++) {
        void *p = a(size);
        sink = p;
        r(p);
    }
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s libc|mimalloc raw|mem [N [SIZE [RUNS]]]\n", argv[0]);
        return 2;
    }
    mem_allocator_t which;
    if (mem_allocator_parse(argv[1], &which) != 0) {
        fprintf(stderr, "bad allocator %s\n", argv[1]);
        return 2;
    }
    int raw = strcmp(argv[2], "raw") == 0;
    size_t n = argc > 3 ? strtoull(argv[3], NULL, 10) : 1000000;
    size_t size = argc > 4 ? strtoull(argv[4], NULL, 10) : 64;
    int runs = argc > 5 ? atoi(argv[5]) : 11;
    if (runs < 1 || runs > 101) {
        runs = 11;
    }
    if (mem_init(which) != 0) {
        fprintf(stderr, "mem_init: %s\n", mem_last_error());
        return 1;
    }
    alloc_fn a = mem_malloc;
    release_fn r = mem_free;
    if (raw && which == MEM_ALLOCATOR_LIBC) {
        a = malloc;
        r = free;
    } else if (raw) {
        void *h = dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL);
        void *sa = h ? dlsym(h, "mi_malloc") : NULL;
        void *sr = h ? dlsym(h, "mi_free") : NULL;
        if (sa == NULL || sr == NULL) {
            fprintf(stderr, "mimalloc: %s\n", dlerror());
            return 1;
        }
        memcpy(&a, &sa, sizeof a);
        memcpy(&r, &sr, sizeof r);
    }
    double ns[101];
    run_pairs(a, r, n / 10 + 1, size); /* warm up */
    for (int k = 0; k < runs; k++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        run_pairs(a, r, n, size);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ns[k] =
            ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / (double)n;
    }
    qsort(ns, (size_t)runs, sizeof ns[0], cmp_double);
    printf("%s %s size=%zu n=%zu runs=%d median_ns_per_pair=%.2f\n", argv[1], argv[2], size, n,
           runs, ns[runs / 2]);
    return 0;
}
