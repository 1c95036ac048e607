/* json_gen.h - a deterministic generator of JSON events for the scanner's tests: valid events
 * like the loadgen corpus and beyond it (escapes, unicode, every number form, deep nesting,
 * duplicate and escaped "type" keys), and near-misses made by one small corruption. Shared by
 * unit.scan and fuzz.scan (its structure-aware mutator). */
#ifndef INGESTD_TESTS_JSON_GEN_H
#define INGESTD_TESTS_JSON_GEN_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *buf;    /* borrowed: the caller's buffer */
    size_t cap;   /* its size; output is cut (not terminated) at cap */
    size_t len;   /* bytes written */
    uint64_t rng; /* splitmix64 state */
} jg_t;

/* Writes one event into g->buf (g->len set): shape 0 small (~120 B), 1 medium (~320 B), 2
 * ~1.5 KB, 3 ~6 KB, 4 random structure (any value may be the root, nesting up to ~2060 deep
 * now and then, whitespace anywhere). corrupt: 0 none, else one random corruption (a byte
 * replaced, inserted or deleted, the input cut, a quirk fragment inserted). */
void jg_event(jg_t *g, unsigned shape, int corrupt);

/* A short fragment exercising one jansson rule or quirk ("\\uD800", "1e309", "\0", ...). */
const char *jg_fragment(uint64_t pick, size_t *len);

uint64_t jg_next(uint64_t *s);

#endif
