/* process.h - turning one event line into a verdict and a counted type: the one place that
 * parses (jansson into the worker's arena in pooled mode, plain malloc/free in naive mode). */
#ifndef INGESTD_PROCESS_H
#define INGESTD_PROCESS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ingest/verdict.h"
#include "metrics/metrics.h"
#include "pool/arena.h"

/* Distinct event types one worker counts by name; further types count as "_other". */
#define ING_TYPES_MAX 64
#define ING_TYPE_OTHER "_other"

typedef struct {
    char name[ING_TYPE_MAX + 1]; /* NUL-terminated (jansson rejects \u0000 in strings) */
    metrics_counter_t count;
} ing_type_slot_t;

/* One worker's processing state; embed it. Written by its owner thread only. The type table
 * is readable from any thread: a slot's name is written before ntypes is raised (release
 * store), readers load ntypes (acquire) and then read names and counters of slots below it. */
typedef struct {
    arena_t arena;
    int pooled;
    _Atomic uint32_t ntypes;
    ing_type_slot_t types[ING_TYPES_MAX];
    metrics_counter_t other;
    uint8_t index[2 * ING_TYPES_MAX]; /* open-addressing hash: slot + 1, 0 = empty; owner only */
    char detail[192];                 /* the last parse error's text (owner only) */
} ing_process_t;

/* p must be zero-filled (e.g. calloc'd) beforehand; init leaves the type table alone, so a
 * scraper may read it from another thread at any time. pooled: parse into an arena over cache's
 * blocks (big_alloc/big_free serve arena requests larger than a block; NULL = malloc/free);
 * otherwise parse with jansson's fallback allocator and json_decref. Cannot fail. Owner thread. */
void ing_process_init(ing_process_t *p, int pooled, pool_cache_t *cache, void *(*big_alloc)(size_t),
                      void (*big_free)(void *));
/* Releases the arena's blocks. Owner thread. */
void ing_process_destroy(ing_process_t *p);

/* Judges one event (the line without its line ending). Valid: a JSON object with a string
 * "type" of 1 to ING_TYPE_MAX bytes; its type is counted. Returns ING_ACCEPTED,
 * ING_REJECT_PARSE, ING_REJECT_NOT_OBJECT or ING_REJECT_NO_TYPE. When detail is not NULL and
 * the event is rejected, *detail is set to a short explanation (jansson's error text for parse
 * errors), borrowed until the next call; NULL detail skips building it. Allocates nothing from
 * the heap in pooled mode once the pool is warm. Owner thread. */
ing_verdict_t ing_process_line(ing_process_t *p, const char *line, size_t len, const char **detail);

/* Readers, any thread. */
uint32_t ing_process_type_count(const ing_process_t *p);
/* Name (borrowed, stable for p's life) and count of slot i < ing_process_type_count(p). */
const char *ing_process_type_name(const ing_process_t *p, uint32_t i);
uint64_t ing_process_type_total(const ing_process_t *p, uint32_t i);
uint64_t ing_process_other_total(const ing_process_t *p);

#endif
