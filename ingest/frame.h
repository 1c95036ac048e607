/* frame.h - the NDJSON line framer: bytes land in one pooled block per connection, complete
 * lines come out, a partial line is carried to the front of the block, and a line longer than a
 * block is assembled on a counted heap path up to the event limit or skipped as too_large. Also
 * the NDJSON line rule, which HTTP bodies (body.h) share. */
#ifndef INGESTD_FRAME_H
#define INGESTD_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/verdict.h"
#include "pool/pool.h"

/* The NDJSON line rule: one for TCP streams (this framer) and HTTP bodies (body.h), so that the
 * same bytes give the same verdicts over both, however they are split.
 * - A line is the bytes before a "\n", without one "\r" right before it. Its size is the count
 *   of those bytes.
 * - A line over max_event bytes is too_large, whatever it holds (a blank one too): the limit
 *   bounds what a peer may send without a newline, and a line skipped unbuffered once it passed
 *   the limit cannot be looked at. While a line is still unfinished it may hold max_event + 1
 *   bytes (room for its "\r"); one more and it is reported too_large at once, then skipped to
 *   its "\n".
 * - Otherwise a line of only SP, HT and CR bytes (or none) is blank: skipped, not an event, not
 *   counted.
 * - Otherwise it is an event.
 * - At the end of a stream (TCP close, an HTTP body cut short) an unfinished line is too_large
 *   when over max_event + 1 bytes, nothing when blank, else truncated. An HTTP body that ends
 *   normally ends its last line too: that line is judged as a complete line. */
typedef enum {
    ING_LINE_EVENT = 0, /* an event (for an unfinished line: truncated) */
    ING_LINE_BLANK,     /* skipped */
    ING_LINE_TOO_LARGE, /* over the limit */
} ing_line_kind_t;

/* Classifies a complete line (the bytes before its "\n") by the rule; drops one trailing "\r"
 * from *len. Pure. */
ing_line_kind_t ing_line_complete(const char *line, size_t *len, size_t max_event);

/* Classifies an unfinished line at the end of a stream by the rule (ING_LINE_EVENT: report it
 * truncated). Pure. */
ing_line_kind_t ing_line_unfinished(const char *line, size_t len, size_t max_event);

/* What the framer reports. Both are called synchronously from ing_frame_commit/finish/feed. */
typedef struct {
    /* A complete event: the line without its "\n" and one trailing "\r"; never blank; len <=
     * the event limit (the line rule above). line is borrowed until the callback returns. */
    void (*on_line)(void *ctx, const char *line, size_t len);
    /* A line rejected by the framer: ING_REJECT_TOO_LARGE (reported once: when a line of one
     * block completes over the limit, when an assembled line crosses it (the rest up to the
     * next newline is then skipped unbuffered), or at end of stream) or ING_REJECT_TRUNCATED
     * (an unfinished line at end of stream, see the line rule). */
    void (*on_reject)(void *ctx, ing_verdict_t reason);
    /* May be NULL (always yes). Asked before the assembly buffer of an unfinished line is
     * taken or grown from held bytes to cap bytes: return 1 to allow, 0 to refuse - then the
     * line is dropped (its memory released, ING_REJECT_OVER_BUDGET reported once) and the rest
     * of it is skipped to its newline. The owner's budget and memory limit hook in here. */
    int (*may_grow)(void *ctx, size_t held, size_t cap);
} ing_frame_ops_t;

/* A worker's small stock of assembly buffers, shared by its connections, so that lines over one
 * block make no heap allocation in steady state while memory stays bounded (at most
 * ING_FRAME_STOCK buffers of at most ING_FRAME_STOCK_MAX_BYTES are kept). Owner thread only. */
#define ING_FRAME_STOCK 4
#define ING_FRAME_STOCK_MAX_BYTES ((size_t)64 * 1024)
typedef struct {
    char *buf[ING_FRAME_STOCK];
    size_t cap[ING_FRAME_STOCK];
    unsigned n;
    void (*free_fn)(void *);
} ing_frame_stock_t;

/* free_fn (NULL: free) frees buffers at destroy. Cannot fail. */
void ing_frame_stock_init(ing_frame_stock_t *st, void (*free_fn)(void *));
/* Frees every stocked buffer. */
void ing_frame_stock_destroy(ing_frame_stock_t *st);

/* One connection's framing state; embed it. Fields are private to frame.c. */
typedef struct {
    pool_cache_t *cache; /* borrowed; blocks come from and go back here */
    char *block;         /* current block (POOL_BLOCK_SIZE) or NULL */
    size_t len;          /* bytes of a partial line at the block's front */
    char *big;           /* assembly buffer of a line over one block */
    size_t big_len;
    size_t big_cap;
    int skipping; /* discarding a too-large line up to the next newline */
    size_t max_event;
    ing_frame_stock_t *stock; /* borrowed, may be NULL */
    void *(*realloc_fn)(void *, size_t);
    void (*free_fn)(void *);
    uint64_t oversize;   /* lines that outgrew one block (assembled or too large) */
    uint64_t big_allocs; /* heap (re)allocations made by the assembly path */
    uint64_t ends;       /* newlines seen: a change tells the owner a line ended */
} ing_frame_t;

/* Binds f to a pool cache. max_event: the longest event in bytes (without line ending).
 * realloc_fn/free_fn serve the assembly path (NULL: realloc/free; the stock's buffers must come
 * from the same allocator); stock (may be NULL) lends and takes back assembly buffers. Takes no
 * block yet. */
void ing_frame_init(ing_frame_t *f, pool_cache_t *cache, size_t max_event, ing_frame_stock_t *stock,
                    void *(*realloc_fn)(void *, size_t), void (*free_fn)(void *));

/* The writable rest of the current block, taking a block from the pool when f holds none:
 * the libuv alloc_cb. Returns 0, or -ENOMEM when the pool cannot give a block. */
int ing_frame_buf(ing_frame_t *f, char **base, size_t *len);

/* Frames n bytes just written at the region ing_frame_buf returned (n may be 0) and reports
 * every complete line. Afterwards the block holds only a partial line, or is back in the pool
 * when nothing is carried. */
void ing_frame_commit(ing_frame_t *f, size_t n, const ing_frame_ops_t *ops, void *ctx);

/* Copies data through ing_frame_buf/commit (for bodies and tests). Returns 0 or -ENOMEM (what
 * was framed before the failure was reported). */
int ing_frame_feed(ing_frame_t *f, const char *data, size_t n, const ing_frame_ops_t *ops,
                   void *ctx);

/* End of stream: an unfinished line is reported by the line rule (truncated, too_large or
 * nothing when blank); then ing_frame_release. */
void ing_frame_finish(ing_frame_t *f, const ing_frame_ops_t *ops, void *ctx);

/* Returns the block and the assembly buffer without reporting anything. Idempotent. */
void ing_frame_release(ing_frame_t *f);

/* 1 when f holds bytes of an unfinished line (block partial, assembly or skip in progress). */
int ing_frame_pending(const ing_frame_t *f);

/* Bytes of memory f holds for an unfinished line now: its block when a partial line is carried
 * in it (POOL_BLOCK_SIZE) plus the assembly buffer's capacity. 0 while skipping. Pure. */
size_t ing_frame_held(const ing_frame_t *f);

/* Drops the unfinished line f holds (its block and assembly buffer go back) and skips the rest
 * of it up to its newline. Reports nothing: the caller counts its reason. Returns 1 when a line
 * was held (so dropped), 0 when f held none (then nothing changes). */
int ing_frame_drop(ing_frame_t *f);

#endif
