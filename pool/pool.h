/* pool.h - a pool of fixed 4096-byte blocks with per-thread caches, a shared depot and
 * victim-cache trimming (Go's sync.Pool since 1.13), or plain malloc/free behind the same API. */
#ifndef INGESTD_POOL_H
#define INGESTD_POOL_H

#include <stddef.h>
#include <stdint.h>

#define POOL_BLOCK_SIZE 4096

/* Retain percent meaning "never release idle blocks at a trim" (the GOGC=off analog). */
#define POOL_RETAIN_OFF (-1)

typedef enum {
    POOL_MODE_POOLED = 0, /* per-thread caches + depot, trimmed */
    POOL_MODE_NAIVE = 1,  /* get = alloc_fn(POOL_BLOCK_SIZE), put = free_fn */
} pool_mode_t;

typedef struct {
    pool_mode_t mode;
    /* Idle blocks a cache keeps at a trim, as a percent of its peak in-use blocks since the
     * previous trim; POOL_RETAIN_OFF never releases. Default 100. */
    int retain_percent;
    /* Free on put instead of caching (h2o under ASan), so use-after-free in callers is caught.
     * Counters move as in naive mode: every get misses, every put counts as released. */
    int free_on_put;
    /* Where blocks come from and go back to; NULL means malloc/free. The server passes the
     * counting allocator layer here. */
    void *(*alloc_fn)(size_t size);
    void (*free_fn)(void *ptr);
} pool_config_t;

/* Cumulative and current figures. Summed over caches by pool_stats(); for one cache by
 * pool_cache_stats(). Invariant: gets == hits + misses. in_use and idle are signed because a
 * block may be got on one thread and put on another: per cache they can go negative, the sum
 * over all caches cannot. */
typedef struct {
    uint64_t gets;           /* pool_get calls that returned a block */
    uint64_t hits;           /* served from a cache or the depot */
    uint64_t misses;         /* had to call alloc_fn (every get in naive mode) */
    uint64_t puts;           /* pool_put calls with a block */
    uint64_t released;       /* blocks given back to free_fn by trims (and by puts in naive mode) */
    uint64_t trims;          /* trim cycles run */
    uint64_t alloc_failures; /* alloc_fn returned NULL */
    int64_t in_use;          /* gets - puts */
    int64_t idle;            /* blocks cached (caches + depot share, see pool_stats) */
    int64_t peak_in_use;     /* highest in_use since the previous trim (per cache) */
    uint64_t trim_ns_total;
    uint64_t trim_ns_last;
} pool_stats_t;

typedef struct pool pool_t;
typedef struct pool_cache pool_cache_t;

/* Fills cfg with the defaults: pooled, retain 100, malloc/free, and free_on_put set only when
 * the environment has INGESTD_POOL_FREE_ON_PUT=1 (the asan test preset sets it). */
void pool_config_init(pool_config_t *cfg);

/* Creates a pool. Returns 0 and a new pool in *out, -EINVAL for a bad config, -ENOMEM.
 * Any thread. */
int pool_create(const pool_config_t *cfg, pool_t **out);

/* Frees every cached block and the pool. Every cache must have been destroyed first.
 * pool_destroy(NULL) does nothing. */
void pool_destroy(pool_t *p);

/* Creates the calling thread's cache. A cache is used by one thread at a time (its owner):
 * get, put and trim on it take no lock and do no atomic read-modify-write. Returns 0, -ENOMEM. */
int pool_cache_create(pool_t *p, pool_cache_t **out);

/* Moves the cache's idle blocks to the depot (they are released by later trims or by
 * pool_destroy) and frees the cache; its counters are kept in the pool's totals.
 * pool_cache_destroy(NULL) does nothing. Owner thread. */
void pool_cache_destroy(pool_cache_t *c);

/* Returns a new block of POOL_BLOCK_SIZE bytes owned by the caller, or NULL when the allocator
 * fails (counted in alloc_failures). Owner thread. */
void *pool_get(pool_cache_t *c);

/* Steals block back. A block got through any cache of the same pool may be put on any cache.
 * A cache holding more than 128 idle blocks hands its 64 coldest to the depot in one batch; an
 * empty cache takes one batch from the depot before it allocates. Under ASan an idle block's
 * bytes past its first 24 (the free-list link) are poisoned. pool_put(c, NULL) does nothing.
 * Owner thread. */
void pool_put(pool_cache_t *c, void *block);

/* One trim cycle on this cache: releases the blocks that stayed idle through the whole previous
 * interval, keeps at most retain_percent of the interval's peak in-use blocks idle, resets the
 * peak to the current in-use count, and measures its own duration (CLOCK_MONOTONIC). Also ages
 * the depot, once per trim epoch (the highest trim count any cache has reached), so batches
 * left there are released two epochs later. Returns blocks released (the depot's included,
 * counted in this cache's released). Under POOL_RETAIN_OFF, and in naive mode, a trim releases
 * nothing and ages nothing: it resets the peak and counts and times itself (naive mode with
 * idle blocks left from pooled mode: see pool_set_mode). Owner thread. */
size_t pool_cache_trim(pool_cache_t *c);

/* Changes the retain percent for later trims. Any thread (relaxed atomic). */
void pool_set_retain(pool_t *p, int retain_percent);
int pool_retain(const pool_t *p);

/* The mode gets and puts follow now. Any thread (relaxed atomic). */
pool_mode_t pool_mode(const pool_t *p);

/* Switches every cache's gets and puts to mode, from their next call on (relaxed atomic: a
 * thread sees the change soon, not at once). Blocks come from alloc_fn in both modes, so a
 * block got in either mode may be put in either: naive puts free it, pooled puts cache it.
 * After a switch to naive, the next trim of each cache frees the blocks it still holds idle
 * (and ages the depot as usual). Any thread. Returns 0, or -EINVAL for an unknown mode. */
int pool_set_mode(pool_t *p, pool_mode_t mode);

/* Reads one cache's counters without locks. Any thread (relaxed atomic loads). */
void pool_cache_stats(const pool_cache_t *c, pool_stats_t *out);

/* Sums every cache, live and destroyed, plus the depot's idle blocks. peak_in_use is the sum of
 * the live caches' peaks, trim_ns_last the largest of their last trims. Any thread; takes the
 * pool's registry and depot locks (never on the hot path). */
void pool_stats(pool_t *p, pool_stats_t *out);

#endif
