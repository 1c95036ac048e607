/* allocprof.h - the allocation-site profile (the C counterpart of pprof's heap profile): the
 * counting layer reports each allocation and free; about one allocation per `rate` bytes is
 * sampled, its call stack recorded and its block remembered until freed, so the profile shows
 * which call sites allocate, by objects and bytes, in use and cumulative. */
#ifndef INGESTD_ALLOCPROF_H
#define INGESTD_ALLOCPROF_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Go's runtime.MemProfileRate default, the rate --alloc-profile-rate suggests. */
#define ALLOCPROF_DEFAULT_RATE (512u * 1024u)
/* Frames kept per sampled stack (after the profiler's own frame). */
#define ALLOCPROF_MAX_DEPTH 32
/* Distinct call stacks kept; further stacks are counted in one "(other)" site. */
#define ALLOCPROF_MAX_SITES 4096
/* Sampled blocks remembered at once (in buckets of 8 by address; a sample that finds its bucket
 * full counts in alloc_* but not in inuse_*, and in allocprof_stats_t.dropped). */
#define ALLOCPROF_MAX_LIVE (16384 * 8) /* 8 << ALLOCPROF_LIVE_BITS */

/* Sets the sampling rate: on average one allocation per `bytes` bytes is sampled, unbiased by
 * size (each thread counts down a distance drawn from an exponential distribution with mean
 * `bytes`, like Go's runtime.MemProfileRate); 1 samples every allocation; 0 turns sampling off
 * (blocks already sampled are still tracked until freed). The first non-zero rate maps the
 * fixed-size tables (about 5.3 MiB of address space, committed as touched). A new rate applies to
 * a thread when its current countdown runs out; new threads take it at once. Any thread.
 * Returns 0, or -ENOMEM when the tables cannot be mapped (the rate stays 0). */
int allocprof_set_rate(uint64_t bytes);
uint64_t allocprof_rate(void);

/* Forgets every site and sampled block (for tests, and for an operator starting afresh). Frees
 * of blocks sampled before the reset are then ignored. Any thread. */
void allocprof_reset(void);

typedef struct {
    uint64_t rate;
    uint64_t samples; /* sampled allocations since the last reset */
    uint64_t live;    /* sampled blocks not yet freed */
    uint64_t sites;   /* distinct call stacks (the profile merges those with the same names) */
    uint64_t dropped; /* samples with no room in the live table (not counted in inuse_*) */
} allocprof_stats_t;
void allocprof_stats(allocprof_stats_t *out);

typedef enum {
    ALLOCPROF_INUSE_SPACE = 0,
    ALLOCPROF_INUSE_OBJECTS = 1,
    ALLOCPROF_ALLOC_SPACE = 2,
    ALLOCPROF_ALLOC_OBJECTS = 3,
} allocprof_sort_t;

typedef enum {
    ALLOCPROF_TEXT = 0,   /* top sites, each with its symbolized stack, leaf first */
    ALLOCPROF_FOLDED = 1, /* "root;...;leaf VALUE" lines for flamegraph.pl and speedscope */
} allocprof_format_t;

/* "inuse_space", "inuse_objects", "alloc_space", "alloc_objects" / "text", "folded".
 * Return 0, or -EINVAL leaving *out untouched. */
int allocprof_sort_parse(const char *s, allocprof_sort_t *out);
int allocprof_format_parse(const char *s, allocprof_format_t *out);
const char *allocprof_sort_name(allocprof_sort_t key);

/* Writes the profile to out: the top_n sites (0: all) by `key`, largest first. Values are
 * scaled to estimate all allocations: a sample of s bytes at rate r stands for
 * 1/(1-exp(-s/r)) objects (exactly 1 at rate 1). The frames of the counting layer are left out:
 * the first recorded frame (the hook's caller) and, among the next few, every frame up to the
 * last one named mem_* or allocprof_*. Frames are named from the dynamic symbols (dladdr) or
 * else the module's own .symtab (so static functions and executables linked without -rdynamic
 * get names too, unless stripped): function+0xOFFSET (module) in text, function alone in folded
 * (without a compiler clone suffix such as .constprop.0);
 * a frame with no symbol at all shows as module+0xOFFSET, for addr2line.
 *
 * A site is a sequence of shown function names: stacks that differ only in return addresses
 * (an unrolled loop, two calls from one function) are merged into one.
 *
 * Text:   a "# ..." header (rate, sort key, sites, stacks, totals, samples, dropped), then per
 *         site one line "inuse_space=N inuse_objects=N alloc_space=N alloc_objects=N", ending in
 *         " stacks=N" when stacks were merged, followed by the (first) stack's frames, one per
 *         line as "    #I NAME (MODULE)", leaf first, and a blank line.
 * Folded: one line per site whose value for `key` is not zero: frames root first joined by ';',
 *         a space, and the value for `key` (';' and spaces in names become '_').
 * Holds the profile's lock only to copy the tables; writes no allocation through the counting
 * layer. Any thread. Returns 0, -EIO when a write to out failed, -ENOMEM. */
int allocprof_write(FILE *out, allocprof_sort_t key, size_t top_n, allocprof_format_t fmt);

/* The hooks, called by the counting layer (metrics/mem.c) with the allocator's usable size:
 * allocprof_on_alloc after each successful allocation (for a realloc: with the new block),
 * allocprof_on_free BEFORE the block goes back to the allocator (for a realloc: before calling
 * realloc), so an address the allocator hands out again is never mistaken for the old block.
 * Off (rate 0, nothing sampled live): one relaxed load and a branch each. On: on_alloc
 * decrements a thread-local countdown and returns unless it ran out; on_free loads its bucket's
 * fill count and, when not zero, looks the address up in that one 64-byte bucket. The sampled path
 * takes a mutex, calls backtrace(3) and allocates nothing through the counting layer (tables are
 * mapped by allocprof_set_rate; a thread-local guard ignores allocations made while recording). Any
 * thread. */

/* Internal state the inline hooks read (defined in allocprof.c; not for other callers). The
 * live table is 2^ALLOCPROF_LIVE_BITS buckets of 8 addresses; allocprof_bucket_fill counts the
 * addresses in each, so a free whose bucket is empty returns after one byte load. */
#define ALLOCPROF_LIVE_BITS 14
typedef struct {
    _Atomic uint64_t rate; /* 0: off */
    _Atomic uint64_t live; /* sampled blocks in the live table */
} allocprof_hot_t;
extern allocprof_hot_t allocprof_hot;
extern _Atomic uint8_t allocprof_bucket_fill[1u << ALLOCPROF_LIVE_BITS];
extern _Thread_local int64_t allocprof_tl_countdown;
void allocprof_sample_slow(void *ptr, size_t usable);
void allocprof_free_slow(void *ptr, size_t bucket);

static inline size_t allocprof_bucket(const void *ptr)
{
    return (size_t)((((uintptr_t)ptr >> 4) * 0x9E3779B97F4A7C15ull) >> (64 - ALLOCPROF_LIVE_BITS));
}

static inline void allocprof_on_alloc(void *ptr, size_t usable)
{
    if (__builtin_expect(atomic_load_explicit(&allocprof_hot.rate, memory_order_relaxed) == 0, 1)) {
        return;
    }
    int64_t left = allocprof_tl_countdown - (int64_t)usable;
    allocprof_tl_countdown = left;
    if (__builtin_expect(left > 0, 1)) {
        return;
    }
    allocprof_sample_slow(ptr, usable);
}

static inline void allocprof_on_free(void *ptr, size_t usable)
{
    (void)usable;
    if (__builtin_expect(atomic_load_explicit(&allocprof_hot.live, memory_order_relaxed) == 0, 1)) {
        return;
    }
    size_t b = allocprof_bucket(ptr);
    if (__builtin_expect(atomic_load_explicit(&allocprof_bucket_fill[b], memory_order_relaxed) == 0,
                         1)) {
        return;
    }
    allocprof_free_slow(ptr, b);
}

#endif
