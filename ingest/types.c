/* ingest/types.c - the bounded per-worker type table and its merge (see types.h). */
#include "ingest/types.h"

#include <string.h>

static uint32_t hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    }
    return h;
}

void ing_types_count(ing_types_t *t, const char *s, size_t n)
{
    const size_t mask = sizeof(t->index) - 1;
    size_t i = hash(s, n) & mask;
    uint32_t used = atomic_load_explicit(&t->ntypes, memory_order_relaxed);

    for (;; i = (i + 1) & mask) {
        uint8_t slot = t->index[i];
        if (slot == 0) {
            break;
        }
        ing_type_slot_t *e = &t->types[slot - 1];
        if (t->len[slot - 1] == n && memcmp(e->name, s, n) == 0) {
            metrics_counter_add(&e->count, 1);
            return;
        }
    }
    if (used >= ING_TYPES_MAX) {
        metrics_counter_add(&t->other, 1);
        return;
    }
    ing_type_slot_t *e = &t->types[used];
    memcpy(e->name, s, n);
    e->name[n] = '\0';
    t->len[used] = (uint8_t)n;
    metrics_counter_add(&e->count, 1);
    t->index[i] = (uint8_t)(used + 1);
    atomic_store_explicit(&t->ntypes, used + 1, memory_order_release);
}

uint32_t ing_types_len(const ing_types_t *t)
{
    return atomic_load_explicit(&t->ntypes, memory_order_acquire);
}

const char *ing_types_name(const ing_types_t *t, uint32_t i)
{
    return t->types[i].name;
}

uint64_t ing_types_total(const ing_types_t *t, uint32_t i)
{
    return metrics_counter_get(&t->types[i].count);
}

uint64_t ing_types_other(const ing_types_t *t)
{
    return metrics_counter_get(&t->other);
}

/* Adds count to name's entry of out[0..*n), appending the entry when it is new. A scrape merges
 * at most a few hundred names, so a linear search is cheaper than building an index. */
static void add(ing_type_count_t *out, size_t *n, const char *name, uint64_t count)
{
    size_t x = 0;
    while (x < *n && strcmp(out[x].type, name) != 0) {
        x++;
    }
    if (x == *n) {
        out[x].type = name;
        out[x].count = 0;
        (*n)++;
    }
    out[x].count += count;
}

size_t ing_types_merge(const ing_types_t *const *tables, size_t n, ing_type_count_t *out)
{
    size_t len = 0;
    uint64_t other = 0;

    for (size_t i = 0; i < n; i++) {
        const ing_types_t *t = tables[i];
        uint32_t k = ing_types_len(t);
        for (uint32_t j = 0; j < k; j++) {
            add(out, &len, ing_types_name(t, j), ing_types_total(t, j));
        }
        other += ing_types_other(t);
    }
    if (other > 0) {
        add(out, &len, ING_TYPE_OTHER, other);
    }
    return len;
}
