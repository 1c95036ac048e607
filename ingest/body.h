/* ingest/body.h - framing an HTTP request body into events, transport-free: NDJSON lines (the
 * line rule of frame.h, shared with TCP), the elements of a top-level JSON array (a string-aware
 * walker, or the judge's array seam), or the body as one JSON object. Fed any split. */
#ifndef INGESTD_INGEST_BODY_H
#define INGESTD_INGEST_BODY_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/verdict.h"

/* What a body holds. */
typedef enum {
    ING_BODY_NDJSON = 0, /* lines, by the NDJSON line rule in frame.h */
    ING_BODY_JSON,       /* first non-blank byte '[': an array of events; else one object */
    ING_BODY_RAW,        /* no events: the whole body kept for the caller (an admin request) */
} ing_body_kind_t;

/* Sizes and verdicts:
 * - NDJSON: the line rule of frame.h, except that a body ending normally ends its last line.
 *   index: the 1-based line number, blank lines counted.
 * - Array: an element runs from its first non-blank byte to the ',' or ']' after it (blanks
 *   before the delimiter included in its size, removed from what on_event gets); over
 *   max_event -> too_large, skipped unbuffered. An empty element ("[1,,2]", "[1,]") or bytes
 *   after the closing ']' -> parse. A body that ends before the closing ']' -> truncated: inside
 *   an element (that element), or between elements ("[", "[{...},": the element expected next).
 *   index: the 1-based element number.
 * - Object: the body from its first non-blank byte to its end; over max_event -> too_large;
 *   index 1. An empty or blank JSON body holds no event.
 * - A body cut short (ing_body_end(b, 0)): the event in progress is truncated (or nothing for a
 *   blank NDJSON line), events already passed stay passed. */

/* Callbacks, called from inside ing_body_feed/ing_body_end on the caller's thread. */
typedef struct {
    /* One event: data (not NUL-terminated) is borrowed during the call, len <= max_event. */
    void (*on_event)(void *ctx, uint64_t index, const char *data, size_t len);
    /* A rejection found by the framer: ING_REJECT_TOO_LARGE, ING_REJECT_TRUNCATED or
     * ING_REJECT_PARSE (array structure); detail: a short text borrowed during the call. */
    void (*on_reject)(void *ctx, uint64_t index, ing_verdict_t v, const char *detail);
    /* The judge's array seam (ing_judge_value_end, see judge.h), or NULL. At an element's first
     * byte the framer offers p[0..n), the bytes of this feed from there: a nonzero answer is the
     * length of a value that was validated while its end was found (the framer jumps past it
     * and only looks for the delimiter); 0 makes the framer walk the element itself. The
     * element is passed to on_event either way. */
    size_t (*value_end)(void *ctx, const char *p, size_t n);
    /* May be NULL (always yes). Asked before the carry buffer grows from held to cap bytes:
     * 0 refuses, and the event being carried is rejected ING_REJECT_OVER_BUDGET (instead of
     * too_large) and skipped. The owner's partial-line budget and memory limit hook in here. */
    int (*may_grow)(void *ctx, size_t held, size_t cap);
} ing_body_ops_t;

/* One connection's body state; embed it. Fields are private to body.c. The carry buffer (a
 * partial line or element, or a raw body) grows rarely and is kept across bodies up to
 * ING_BODY_KEEP_MAX bytes of capacity (ing_body_reset), so the steady state allocates nothing. */
#define ING_BODY_KEEP_MAX ((size_t)16 * 1024)
typedef struct {
    const ing_body_ops_t *ops; /* borrowed */
    void *ctx;
    size_t max_event;
    void *(*realloc_fn)(void *, size_t);
    void (*free_fn)(void *);
    int kind;       /* ing_body_kind_t, or the array/object decided from ING_BODY_JSON */
    int state;      /* array walker state */
    uint32_t depth; /* array walker nesting depth */
    unsigned flags;
    uint64_t index;
    int refused; /* the last carry growth was refused by may_grow */
    char *carry; /* capacity max_event + 1 at most */
    size_t carry_len;
    size_t carry_cap;
} ing_body_t;

/* Binds b to ops/ctx and the event limit; realloc_fn/free_fn serve the carry buffer (NULL:
 * realloc/free). Allocates nothing; cannot fail. Then ing_body_begin for each body. */
void ing_body_init(ing_body_t *b, size_t max_event, const ing_body_ops_t *ops, void *ctx,
                   void *(*realloc_fn)(void *, size_t), void (*free_fn)(void *));

/* Starts a body of the given kind (forgets any previous one). */
void ing_body_begin(ing_body_t *b, ing_body_kind_t kind);

/* Frames the next n bytes of the body. Returns 0; for ING_BODY_RAW -EMSGSIZE once the body
 * passed max_event bytes or no memory could hold it (what was kept is dropped). */
int ing_body_feed(ing_body_t *b, const char *p, size_t n);

/* The body ended: complete (1) or cut short (0, the peer left, a limit, a timeout). Reports
 * the event in progress as the rules above say. Not for ING_BODY_RAW (nothing to report). */
void ing_body_end(ing_body_t *b, int complete);

/* ING_BODY_RAW: the body's bytes (borrowed until the next feed, begin or reset), or NULL with
 * *len 0 when it was empty. */
const char *ing_body_raw(const ing_body_t *b, size_t *len);

/* Forgets the body and frees the carry buffer when it grew over ING_BODY_KEEP_MAX. */
void ing_body_reset(ing_body_t *b);

/* Frees the carry buffer. Safe on a zeroed or freed b. */
void ing_body_free(ing_body_t *b);

/* Bytes b holds for carried events now (the carry buffer's capacity). Pure. */
size_t ing_body_held(const ing_body_t *b);

#endif
