/* arena_fixture.h - the test fixture of an arena over a pool, with counting allocators under
 * the pool's blocks and the arena's oversize path, so a test can tell where memory came from
 * and that nothing was left behind. Used by unit.arena (tests/pool) and unit.arena_json
 * (tests/ingest). */
#ifndef INGESTD_TESTS_ARENA_FIXTURE_H
#define INGESTD_TESTS_ARENA_FIXTURE_H

#include <stddef.h>

#include "pool/arena.h"
#include "pool/pool.h"

typedef struct {
    size_t allocs, frees;
    long fail_after; /* -1: never fail; otherwise allocations still allowed */
} counter_t;

/* The counters of the pool's blocks and the arena's oversize requests. */
extern counter_t blocks_ctr, big_ctr;

/* malloc/free counted in k (count fails once k->fail_after allocations were allowed). */
void *count(counter_t *k, size_t n);
void uncount(counter_t *k, void *p);

void *blocks_alloc(size_t n);
void blocks_free(void *p);
void *big_alloc(size_t n);
void big_free(void *p);

typedef struct {
    pool_t *pool;
    pool_cache_t *cache;
    arena_t arena;
} fixture_t;

/* cmocka setup: resets both counters, a pool on blocks_alloc (free_on_put follows
 * INGESTD_POOL_FREE_ON_PUT: the asan preset), a cache and an arena with big_alloc. */
int arena_fixture_setup(void **state);
/* Destroys them; returns 0 only when both counters are balanced (nothing left behind). */
int arena_fixture_teardown(void **state);

#endif
