/* arena_fixture.c - an arena over a pool on counting allocators (arena_fixture.h). */
#include "arena_fixture.h"

#include <stdlib.h>

counter_t blocks_ctr, big_ctr;

void *count(counter_t *k, size_t n)
{
    if (k->fail_after == 0) {
        return NULL;
    }
    if (k->fail_after > 0) {
        k->fail_after--;
    }
    void *p = malloc(n);
    if (p != NULL) {
        k->allocs++;
    }
    return p;
}

void uncount(counter_t *k, void *p)
{
    if (p != NULL) {
        k->frees++;
        free(p);
    }
}

void *blocks_alloc(size_t n)
{
    return count(&blocks_ctr, n);
}

void blocks_free(void *p)
{
    uncount(&blocks_ctr, p);
}

void *big_alloc(size_t n)
{
    return count(&big_ctr, n);
}

void big_free(void *p)
{
    uncount(&big_ctr, p);
}

int arena_fixture_setup(void **state)
{
    static fixture_t f;
    pool_config_t cfg;

    blocks_ctr = (counter_t){0, 0, -1};
    big_ctr = (counter_t){0, 0, -1};
    pool_config_init(&cfg);
    cfg.alloc_fn = blocks_alloc;
    cfg.free_fn = blocks_free;
    if (pool_create(&cfg, &f.pool) != 0 || pool_cache_create(f.pool, &f.cache) != 0) {
        return -1;
    }
    arena_init(&f.arena, f.cache, big_alloc, big_free);
    *state = &f;
    return 0;
}

int arena_fixture_teardown(void **state)
{
    fixture_t *f = *state;

    arena_destroy(&f->arena);
    pool_cache_destroy(f->cache);
    pool_destroy(f->pool);
    return blocks_ctr.allocs == blocks_ctr.frees && big_ctr.allocs == big_ctr.frees ? 0 : -1;
}
