/* ingest/arena_json.h - jansson's allocator hooks into a per-thread arena (the tree strategy's
 * memory); the only caller of the process-global json_set_alloc_funcs. */
#ifndef INGESTD_INGEST_ARENA_JSON_H
#define INGESTD_INGEST_ARENA_JSON_H

#include <stddef.h>

#include "pool/arena.h"

/* jansson's allocator is process-global (json_set_alloc_funcs), so these hooks live in
 * arena_json.c and nowhere else. Installs hooks that allocate from the calling thread's active
 * arena when there is one and from fallback_malloc/fallback_free otherwise. Call once at
 * start-up before any thread parses. */
void arena_json_install(void *(*fallback_malloc)(size_t), void (*fallback_free)(void *));

/* Makes a the calling thread's active arena (NULL: none). While active, jansson's frees of
 * arena memory are no-ops: parse, use the tree, then arena_reset without json_decref.
 * Returns the previous active arena. */
arena_t *arena_json_activate(arena_t *a);

#endif
