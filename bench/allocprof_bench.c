/* bench_allocprof.c - not a test: the allocation-site profile's cost per malloc/free pair on a
 * malloc-heavy loop, through a stand-in for the counting layer, with the hooks absent, off, and
 * on at a rate. Usage: admin_bench_allocprof plain|off|RATE [ITERATIONS]. Prints one line:
 * mode, iterations, CPU ns per pair (thread CPU clock), samples taken (with one block
 * sampled and kept alive through the run when on, as in a real process). Run it under callgrind
 * with --toggle-collect=loop_* for instruction counts (see BENCHMARKS.md). */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mem/allocprof.h"

#define RING 64

void *mem_bench_malloc(size_t n);
void mem_bench_free(void *p);
void loop_plain(long iters);
void loop_hooked(long iters);

__attribute__((noinline)) void *mem_bench_malloc(size_t n)
{
    void *p = malloc(n);
    if (p != NULL) {
        allocprof_on_alloc(p, malloc_usable_size(p));
    }
    return p;
}

__attribute__((noinline)) void mem_bench_free(void *p)
{
    if (p == NULL) {
        return;
    }
    allocprof_on_free(p, malloc_usable_size(p));
    free(p);
}

static __attribute__((noinline)) void *plain_malloc(size_t n)
{
    void *p = malloc(n);
    if (p != NULL) {
        __asm__ volatile("" : : "r"(malloc_usable_size(p)) : "memory");
    }
    return p;
}

static __attribute__((noinline)) void plain_free(void *p)
{
    if (p == NULL) {
        return;
    }
    __asm__ volatile("" : : "r"(malloc_usable_size(p)) : "memory");
    free(p);
}

/* Sizes like a JSON parse with a read buffer now and then: 16..527 bytes, 1 in 16 is 4096. */
static size_t next_size(unsigned *x)
{
    *x = *x * 1103515245u + 12345u;
    unsigned r = *x >> 16;
    return (r & 15) == 0 ? 4096 : 16 + (r >> 4) % 512;
}

static void *ring[RING];

__attribute__((noinline)) void loop_plain(long iters)
{
    unsigned x = 1;
    for (long i = 0; i < iters; i++) {
        plain_free(ring[i % RING]);
        ring[i % RING] = plain_malloc(next_size(&x));
    }
}

__attribute__((noinline)) void loop_hooked(long iters)
{
    unsigned x = 1;
    for (long i = 0; i < iters; i++) {
        mem_bench_free(ring[i % RING]);
        ring[i % RING] = mem_bench_malloc(next_size(&x));
    }
}

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s plain|off|RATE [ITERATIONS]\n", argv[0]);
        return 2;
    }
    long iters = argc > 2 ? atol(argv[2]) : 2000000;
    int plain = strcmp(argv[1], "plain") == 0;
    uint64_t rate = plain || strcmp(argv[1], "off") == 0 ? 0 : strtoull(argv[1], NULL, 10);
    /* A real process always has some sampled block alive, so every free does the lookup:
     * pin one (sampled at rate 1) for the whole run. */
    void *pinned = NULL;
    if (rate != 0) {
        if (allocprof_set_rate(1) != 0) {
            return 1;
        }
        pinned = mem_bench_malloc(64);
    }
    if (allocprof_set_rate(rate) != 0) {
        return 1;
    }
    /* warm the allocator and the ring the same way in every mode */
    if (plain) {
        loop_plain(RING * 4);
    } else {
        loop_hooked(RING * 4);
    }
    double t0 = cpu_ns();
    if (plain) {
        loop_plain(iters);
    } else {
        loop_hooked(iters);
    }
    double t1 = cpu_ns();
    allocprof_stats_t st;
    allocprof_stats(&st);
    printf("mode=%s iters=%ld ns_per_pair=%.2f samples=%llu live=%llu\n", argv[1], iters,
           (t1 - t0) / (double)iters, (unsigned long long)st.samples, (unsigned long long)st.live);
    for (int i = 0; i < RING; i++) {
        if (plain) {
            plain_free(ring[i]);
        } else {
            mem_bench_free(ring[i]);
        }
    }
    mem_bench_free(pinned);
    return 0;
}
