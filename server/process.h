/* process.h - turning one event line into a verdict and a counted type: the one place that
 * parses (jansson into the worker's arena in pooled mode, plain malloc/free in naive mode). */
#ifndef INGESTD_PROCESS_H
#define INGESTD_PROCESS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "event.h"
#include "metrics.h"

/* Distinct event types one worker counts by name; further types count as "_other". */
#define SRV_TYPES_MAX 64
#define SRV_TYPE_OTHER "_other"

typedef struct {
    char name[SRV_TYPE_MAX + 1]; /* NUL-terminated (jansson rejects \u0000 in strings) */
    metrics_counter_t count;
} srv_type_slot_t;

/* One worker's processing state; embed it. Written by its owner thread only. The type table
 * is readable from any thread: a slot's name is written before ntypes is raised (release
 * store), readers load ntypes (acquire) and then read names and counters of slots below it. */
typedef struct {
    arena_t arena;
    int pooled;
    _Atomic uint32_t ntypes;
    srv_type_slot_t types[SRV_TYPES_MAX];
    metrics_counter_t other;
    uint8_t index[2 * SRV_TYPES_MAX]; /* open-addressing hash: slot + 1, 0 = empty; owner only */
    char detail[192];                 /* the last parse error's text (owner only) */
} srv_process_t;

/* p must be zero-filled (e.g. calloc'd) beforehand; init leaves the type table alone, so a
 * scraper may read it from another thread at any time. pooled: parse into an arena over cache's
 * blocks (big_alloc/big_free serve arena requests larger than a block; NULL = malloc/free);
 * otherwise parse with jansson's fallback allocator and json_decref. Cannot fail. Owner thread. */
void srv_process_init(srv_process_t *p, int pooled, pool_cache_t *cache, void *(*big_alloc)(size_t),
                      void (*big_free)(void *));
/* Releases the arena's blocks. Owner thread. */
void srv_process_destroy(srv_process_t *p);

/* Judges one event (the line without its line ending). Valid: a JSON object with a string
 * "type" of 1 to SRV_TYPE_MAX bytes; its type is counted. Returns SRV_ACCEPTED,
 * SRV_REJECT_PARSE, SRV_REJECT_NOT_OBJECT or SRV_REJECT_NO_TYPE. When detail is not NULL and
 * the event is rejected, *detail is set to a short explanation (jansson's error text for parse
 * errors), borrowed until the next call; NULL detail skips building it. Allocates nothing from
 * the heap in pooled mode once the pool is warm. Owner thread. */
srv_verdict_t srv_process_line(srv_process_t *p, const char *line, size_t len, const char **detail);

/* Readers, any thread. */
uint32_t srv_process_type_count(const srv_process_t *p);
/* Name (borrowed, stable for p's life) and count of slot i < srv_process_type_count(p). */
const char *srv_process_type_name(const srv_process_t *p, uint32_t i);
uint64_t srv_process_type_total(const srv_process_t *p, uint32_t i);
uint64_t srv_process_other_total(const srv_process_t *p);

#endif
