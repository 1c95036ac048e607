/* arena.c - per-event bump allocation over pool blocks; oversize requests go to the heap. */
#include "pool/arena.h"

#include <stdlib.h>
#include <string.h>

/* Each block taken by the arena starts with this header: the chain back to the previous block.
 * Padded to ARENA_ALIGN so the first allocation in a block is aligned. */
typedef struct arena_block {
    struct arena_block *prev;
    char pad[ARENA_ALIGN - sizeof(struct arena_block *)];
} arena_block_t;

/* Oversize allocations carry the same kind of header, chained from a->big. */
struct arena_big {
    arena_big_t *prev;
    char pad[ARENA_ALIGN - sizeof(arena_big_t *)];
};

_Static_assert(sizeof(arena_block_t) == ARENA_ALIGN, "block header keeps alignment");
_Static_assert(sizeof(arena_big_t) == ARENA_ALIGN, "big header keeps alignment");

#define BLOCK_PAYLOAD (POOL_BLOCK_SIZE - sizeof(arena_block_t))

static void *default_alloc(size_t n)
{
    return malloc(n);
}

static void default_free(void *ptr)
{
    free(ptr);
}

void arena_init(arena_t *a, pool_cache_t *cache, void *(*big_alloc)(size_t),
                void (*big_free)(void *))
{
    memset(a, 0, sizeof(*a));
    a->cache = cache;
    a->big_alloc = big_alloc != NULL ? big_alloc : default_alloc;
    a->big_free = big_free != NULL ? big_free : default_free;
}

static void *alloc_big(arena_t *a, size_t n)
{
    arena_big_t *b = a->big_alloc(sizeof(arena_big_t) + n);

    if (b == NULL) {
        return NULL;
    }
    b->prev = a->big;
    a->big = b;
    a->big_allocs++;
    a->bytes += n;
    return b + 1;
}

void *arena_alloc(arena_t *a, size_t n)
{
    char *p;

    if (a->failed) {
        return NULL;
    }
    /* Zero-byte requests still get a distinct, valid pointer. */
    if (n == 0) {
        n = 1;
    }
    if (n > BLOCK_PAYLOAD) {
        p = alloc_big(a, n);
        a->failed = p == NULL;
        return p;
    }
    n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (a->head == NULL || (size_t)(a->end - a->cur) < n) {
        arena_block_t *blk = pool_get(a->cache);
        if (blk == NULL) {
            a->failed = 1;
            return NULL;
        }
        blk->prev = a->head;
        a->head = blk;
        a->blocks++;
        a->cur = (char *)(blk + 1);
        a->end = (char *)blk + POOL_BLOCK_SIZE;
    }
    p = a->cur;
    a->cur += n;
    a->bytes += n;
    return p;
}

void arena_reset(arena_t *a)
{
    arena_block_t *blk = a->head;
    arena_big_t *big = a->big;

    while (blk != NULL) {
        arena_block_t *prev = blk->prev;
        pool_put(a->cache, blk);
        blk = prev;
    }
    while (big != NULL) {
        arena_big_t *prev = big->prev;
        a->big_free(big);
        big = prev;
    }
    a->head = NULL;
    a->big = NULL;
    a->cur = NULL;
    a->end = NULL;
    a->blocks = 0;
    a->bytes = 0;
    a->failed = 0;
}

void arena_destroy(arena_t *a)
{
    if (a == NULL) {
        return;
    }
    arena_reset(a);
    a->cache = NULL;
}
