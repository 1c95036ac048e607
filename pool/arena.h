/* arena.h - a per-event bump arena over pool blocks, and jansson's allocator hooks into it. */
#ifndef INGESTD_ARENA_H
#define INGESTD_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include "pool/pool.h"

#define ARENA_ALIGN 16

/* Embedded by its owner (one per worker); lives as long as the owner's pool cache.
 * Fields are private to arena.c. */
typedef struct arena_big arena_big_t;
typedef struct {
    pool_cache_t *cache; /* borrowed */
    void *head;          /* chain of blocks taken since the last reset (link in each block) */
    char *cur;
    char *end;
    arena_big_t *big; /* allocations larger than a block, from the heap */
    void *(*big_alloc)(size_t);
    void (*big_free)(void *);
    uint64_t blocks;     /* blocks taken since the last reset */
    uint64_t big_allocs; /* cumulative heap allocations for oversize requests */
    uint64_t bytes;      /* bytes handed out since the last reset */
    int failed;          /* an allocation failed since the last reset: all later ones fail */
} arena_t;

/* Binds the arena to a cache. big_alloc/big_free serve requests larger than a block
 * (NULL: malloc/free). Cannot fail; takes no block until the first allocation. */
void arena_init(arena_t *a, pool_cache_t *cache, void *(*big_alloc)(size_t),
                void (*big_free)(void *));

/* Returns ARENA_ALIGN-aligned memory valid until arena_reset, or NULL when no block can be
 * had. A request of n bytes never spans blocks: a new block is chained when the current one
 * is full. A request larger than a block's payload (POOL_BLOCK_SIZE - ARENA_ALIGN) goes to
 * big_alloc, counted in big_allocs. Once a request has failed, every later one fails until
 * arena_reset: a parser then sees one consistent out-of-memory state (jansson 2.14's lexer
 * ignores a failed growth of its token buffer and would go on with a truncated token if a
 * smaller request after it succeeded). Owner thread. */
void *arena_alloc(arena_t *a, size_t n);

/* Returns every block to the pool and frees big allocations. O(blocks held). */
void arena_reset(arena_t *a);

/* Resets, then drops the cache binding. arena_destroy(NULL) does nothing. */
void arena_destroy(arena_t *a);

#endif
