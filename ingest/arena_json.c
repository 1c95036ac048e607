/* arena_json.c - jansson's allocator hooks: the calling thread's active arena, or the fallback.
 *
 * json_set_alloc_funcs() is process-global: one pair of functions serves every thread and every
 * jansson call in the process. That is why it is called here and nowhere else, and why the
 * per-thread choice (arena or fallback) is made inside the hooks through a thread-local active
 * arena rather than by swapping the hooks around each parse. */
#include "ingest/arena_json.h"

#include <jansson.h>
#include <stdlib.h>

static void *(*fallback_malloc_fn)(size_t) = malloc;
static void (*fallback_free_fn)(void *) = free;

/* The arena jansson allocates from on this thread; NULL means the fallback. */
static _Thread_local arena_t *active;

static void *hook_malloc(size_t n)
{
    arena_t *a = active;

    if (a != NULL) {
        return arena_alloc(a, n);
    }
    return fallback_malloc_fn(n);
}

/* While an arena is active, frees are no-ops: its memory goes back at arena_reset. A tree
 * built from the fallback must not be freed while an arena is active on the same thread. */
static void hook_free(void *ptr)
{
    if (active != NULL) {
        return;
    }
    fallback_free_fn(ptr);
}

void arena_json_install(void *(*fallback_malloc)(size_t), void (*fallback_free)(void *))
{
    fallback_malloc_fn = fallback_malloc != NULL ? fallback_malloc : malloc;
    fallback_free_fn = fallback_free != NULL ? fallback_free : free;
    json_set_alloc_funcs(hook_malloc, hook_free);
}

arena_t *arena_json_activate(arena_t *a)
{
    arena_t *prev = active;

    active = a;
    return prev;
}
