/* ingest/types.h - the bounded per-worker table of accepted events by "type", and the merge of
 * all workers' tables for exposition. Knows nothing of how a type was found. */
#ifndef INGESTD_INGEST_TYPES_H
#define INGESTD_INGEST_TYPES_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ingest/verdict.h"
#include "metrics/metrics.h"

/* Distinct event types one worker counts by name; further types count as "_other". */
#define ING_TYPES_MAX 64
#define ING_TYPE_OTHER "_other"

typedef struct {
    char name[ING_TYPE_MAX + 1]; /* NUL-terminated (a type holds no NUL byte: ingestd's rule) */
    metrics_counter_t count;
} ing_type_slot_t;

/* One worker's table; embed it, zero-filled (e.g. in a calloc'd struct) before first use.
 * Written by its owner thread only (ing_types_count). Readable from any thread at any time:
 * a slot's name is written before ntypes is raised (release store); readers load ntypes
 * (acquire, ing_types_len) and then read names and counters of slots below it. */
typedef struct {
    _Atomic uint32_t ntypes;
    ing_type_slot_t types[ING_TYPES_MAX];
    metrics_counter_t other;
    uint8_t index[2 * ING_TYPES_MAX]; /* open-addressing hash: slot + 1, 0 = empty; owner only */
    uint8_t len[ING_TYPES_MAX];       /* each slot's name length (1..ING_TYPE_MAX); owner only */
} ing_types_t;

/* Counts one accepted event of type name[0..len): 1 <= len <= ING_TYPE_MAX, no NUL byte (the
 * judge guarantees both). The first ING_TYPES_MAX distinct names get a slot each; later new
 * names count in "other". Allocates nothing, cannot fail. Owner thread only. */
void ing_types_count(ing_types_t *t, const char *name, size_t len);

/* Readers, any thread. */
uint32_t ing_types_len(const ing_types_t *t);
/* Name (borrowed, stable for t's life) and count of slot i < ing_types_len(t). */
const char *ing_types_name(const ing_types_t *t, uint32_t i);
uint64_t ing_types_total(const ing_types_t *t, uint32_t i);
uint64_t ing_types_other(const ing_types_t *t);

/* One type's count over all workers. */
typedef struct {
    const char *type; /* borrowed from a table (valid while the tables are) */
    uint64_t count;
} ing_type_count_t;

/* Room ing_types_merge needs in out for n tables. */
#define ING_TYPES_MERGE_MAX(n) ((size_t)(n)*ING_TYPES_MAX + 1)

/* Merges n tables into out: one entry per distinct name with the sum of its counts, in order of
 * first appearance (table 0's slots first), then one ING_TYPE_OTHER entry holding every table's
 * overflow when that is not zero (a type literally named "_other" is summed into it). out has
 * room for ING_TYPES_MERGE_MAX(n) entries. Returns the entries written. Reads the tables by the
 * contract above, so any thread may call it while the owners count. Allocates nothing. */
size_t ing_types_merge(const ing_types_t *const *tables, size_t n, ing_type_count_t *out);

#endif
