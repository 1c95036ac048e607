/* process.c - validation of one event and the bounded per-type table (see process.h). */
#include "ingest/process.h"

#include "ingest/arena_json.h"
#include <jansson.h>
#include <stdio.h>
#include <string.h>

void ing_process_init(ing_process_t *p, int pooled, pool_cache_t *cache, void *(*big_alloc)(size_t),
                      void (*big_free)(void *))
{
    /* No memset: the type table may already be read by a scraper on another thread. */
    p->pooled = pooled;
    arena_init(&p->arena, cache, big_alloc, big_free);
}

void ing_process_destroy(ing_process_t *p)
{
    arena_destroy(&p->arena);
}

static uint32_t hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    }
    return h;
}

/* Counts one accepted event of type s (1..ING_TYPE_MAX bytes). */
static void count_type(ing_process_t *p, const char *s, size_t n)
{
    const size_t mask = sizeof(p->index) - 1;
    size_t i = hash(s, n) & mask;
    uint32_t used = atomic_load_explicit(&p->ntypes, memory_order_relaxed);

    for (;; i = (i + 1) & mask) {
        uint8_t slot = p->index[i];
        if (slot == 0) {
            break;
        }
        ing_type_slot_t *t = &p->types[slot - 1];
        if (strncmp(t->name, s, n) == 0 && t->name[n] == '\0') {
            metrics_counter_add(&t->count, 1);
            return;
        }
    }
    if (used >= ING_TYPES_MAX) {
        metrics_counter_add(&p->other, 1);
        return;
    }
    ing_type_slot_t *t = &p->types[used];
    memcpy(t->name, s, n);
    t->name[n] = '\0';
    metrics_counter_add(&t->count, 1);
    p->index[i] = (uint8_t)(used + 1);
    atomic_store_explicit(&p->ntypes, used + 1, memory_order_release);
}

static ing_verdict_t judge(ing_process_t *p, const json_t *root)
{
    if (root == NULL) {
        return ING_REJECT_PARSE;
    }
    if (!json_is_object(root)) {
        return ING_REJECT_NOT_OBJECT;
    }
    const json_t *type = json_object_get(root, "type");
    if (!json_is_string(type)) {
        return ING_REJECT_NO_TYPE;
    }
    size_t n = json_string_length(type);
    if (n == 0 || n > ING_TYPE_MAX) {
        return ING_REJECT_NO_TYPE;
    }
    count_type(p, json_string_value(type), n);
    return ING_ACCEPTED;
}

ing_verdict_t ing_process_line(ing_process_t *p, const char *line, size_t len, const char **detail)
{
    ing_verdict_t v;
    json_error_t err;
    json_error_t *errp = detail != NULL ? &err : NULL;

    if (p->pooled) {
        /* The tree lives in the arena: no json_decref, one O(1) reset afterwards. */
        arena_t *prev = arena_json_activate(&p->arena);
        json_t *root = json_loadb(line, len, JSON_DECODE_ANY, errp);
        v = judge(p, root);
        arena_json_activate(prev);
        arena_reset(&p->arena);
    } else {
        json_t *root = json_loadb(line, len, JSON_DECODE_ANY, errp);
        v = judge(p, root);
        json_decref(root);
    }
    if (detail != NULL) {
        switch (v) {
        case ING_REJECT_PARSE:
            snprintf(p->detail, sizeof(p->detail), "%.150s at byte %d", err.text, err.position);
            *detail = p->detail;
            break;
        case ING_REJECT_NOT_OBJECT:
            *detail = "the event is not a JSON object";
            break;
        case ING_REJECT_NO_TYPE:
            *detail = "no string \"type\" of 1 to 128 bytes";
            break;
        default:
            break;
        }
    }
    return v;
}

uint32_t ing_process_type_count(const ing_process_t *p)
{
    return atomic_load_explicit(&p->ntypes, memory_order_acquire);
}

const char *ing_process_type_name(const ing_process_t *p, uint32_t i)
{
    return p->types[i].name;
}

uint64_t ing_process_type_total(const ing_process_t *p, uint32_t i)
{
    return metrics_counter_get(&p->types[i].count);
}

uint64_t ing_process_other_total(const ing_process_t *p)
{
    return metrics_counter_get(&p->other);
}
