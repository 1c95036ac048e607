/* lg_corpus.h - the precomputed event corpus loadgen sends: generated from a seed (deterministic)
 * or read from an NDJSON file, held as one contiguous buffer of newline-terminated lines so a
 * sender copies (or writes) bytes and does no per-event work. */
#ifndef INGESTD_LG_CORPUS_H
#define INGESTD_LG_CORPUS_H

#include <stddef.h>
#include <stdint.h>

/* Events larger than this are "over one block" (ingestd's pooled read block is 4096 bytes). */
#define LG_BLOCK_SIZE 4096

typedef struct {
    size_t events;        /* distinct events in the corpus; 0 means 4096 */
    uint64_t seed;        /* same seed and settings, same bytes */
    unsigned small_pct;   /* ~320 B events with 11 fields, a nested object and an array */
    unsigned medium_pct;  /* ~1.5 KB events (a longer array of objects) */
    unsigned large_pct;   /* 5-8 KB events, over LG_BLOCK_SIZE */
    unsigned invalid_pct; /* share of invalid events: parse errors, non-objects, no "type" */
} lg_corpus_config_t;

typedef struct {
    char *data;             /* count lines, each ending in '\n'; new, owned by the corpus */
    size_t size;            /* bytes in data */
    size_t *offsets;        /* count + 1 offsets: line i is data[offsets[i] .. offsets[i+1]) */
    size_t *invalid_before; /* count + 1 prefix sums: invalid events among lines [0, i) */
    size_t count;
    size_t invalid;    /* invalid events (0 and unknown for a file corpus) */
    size_t over_block; /* lines longer than LG_BLOCK_SIZE bytes (newline included) */
    size_t max_line;   /* longest line, newline included */
} lg_corpus_t;

/* Sets the default config: 4096 events, seed 1, mix 90/9/1, no invalid events. */
void lg_corpus_config_default(lg_corpus_config_t *cfg);

/* Generates a corpus into *out. Returns 0, -EINVAL if the mix does not sum to 100 or
 * invalid_pct > 100, or -ENOMEM. On error *out is left empty (safe to lg_corpus_free). */
int lg_corpus_generate(const lg_corpus_config_t *cfg, lg_corpus_t *out);

/* Reads an NDJSON file (one event per line; blank lines and CRs skipped). Returns 0, a negative
 * errno from open/read, -EINVAL for a file with no events, or -ENOMEM. */
int lg_corpus_load(const char *path, lg_corpus_t *out);

/* Invalid events among the n lines sent starting at line `start` (wrapping around). */
uint64_t lg_corpus_invalid_in(const lg_corpus_t *c, size_t start, uint64_t n);

/* Frees what the corpus owns and empties it. NULL does nothing. */
void lg_corpus_free(lg_corpus_t *c);

#endif
