/* frame.h - the NDJSON line framer: bytes land in one pooled block per connection, complete
 * lines come out, a partial line is carried to the front of the block, and a line longer than a
 * block is assembled on a counted heap path up to the event limit or skipped as too_large. */
#ifndef INGESTD_FRAME_H
#define INGESTD_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "pool.h"

/* What the framer reports. Both are called synchronously from srv_frame_commit/finish/feed. */
typedef struct {
    /* A complete event: the line without its "\n" and one trailing "\r"; never blank (blank or
     * whitespace-only lines are skipped); len <= the event limit. line is borrowed until the
     * callback returns. */
    void (*on_line)(void *ctx, const char *line, size_t len);
    /* A line rejected by the framer: SRV_REJECT_TOO_LARGE (reported once, when the line
     * crosses the limit; the rest up to the next newline is then skipped unbuffered) or
     * SRV_REJECT_TRUNCATED (a partial line at end of stream). */
    void (*on_reject)(void *ctx, srv_verdict_t reason);
} srv_frame_ops_t;

/* A worker's small stock of assembly buffers, shared by its connections, so that lines over one
 * block make no heap allocation in steady state while memory stays bounded (at most
 * SRV_FRAME_STOCK buffers of at most SRV_FRAME_STOCK_MAX_BYTES are kept). Owner thread only. */
#define SRV_FRAME_STOCK 4
#define SRV_FRAME_STOCK_MAX_BYTES ((size_t)64 * 1024)
typedef struct {
    char *buf[SRV_FRAME_STOCK];
    size_t cap[SRV_FRAME_STOCK];
    unsigned n;
    void (*free_fn)(void *);
} srv_frame_stock_t;

/* free_fn (NULL: free) frees buffers at destroy. Cannot fail. */
void srv_frame_stock_init(srv_frame_stock_t *st, void (*free_fn)(void *));
/* Frees every stocked buffer. */
void srv_frame_stock_destroy(srv_frame_stock_t *st);

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
    srv_frame_stock_t *stock; /* borrowed, may be NULL */
    void *(*realloc_fn)(void *, size_t);
    void (*free_fn)(void *);
    uint64_t oversize;   /* lines that outgrew one block (assembled or too large) */
    uint64_t big_allocs; /* heap (re)allocations made by the assembly path */
} srv_frame_t;

/* Binds f to a pool cache. max_event: the longest event in bytes (without line ending).
 * realloc_fn/free_fn serve the assembly path (NULL: realloc/free; the stock's buffers must come
 * from the same allocator); stock (may be NULL) lends and takes back assembly buffers. Takes no
 * block yet. */
void srv_frame_init(srv_frame_t *f, pool_cache_t *cache, size_t max_event, srv_frame_stock_t *stock,
                    void *(*realloc_fn)(void *, size_t), void (*free_fn)(void *));

/* The writable rest of the current block, taking a block from the pool when f holds none:
 * the libuv alloc_cb. Returns 0, or -ENOMEM when the pool cannot give a block. */
int srv_frame_buf(srv_frame_t *f, char **base, size_t *len);

/* Frames n bytes just written at the region srv_frame_buf returned (n may be 0) and reports
 * every complete line. Afterwards the block holds only a partial line, or is back in the pool
 * when nothing is carried. */
void srv_frame_commit(srv_frame_t *f, size_t n, const srv_frame_ops_t *ops, void *ctx);

/* Copies data through srv_frame_buf/commit (for bodies and tests). Returns 0 or -ENOMEM (what
 * was framed before the failure was reported). */
int srv_frame_feed(srv_frame_t *f, const char *data, size_t n, const srv_frame_ops_t *ops,
                   void *ctx);

/* End of stream: a partial non-blank line is reported as truncated; then srv_frame_release. */
void srv_frame_finish(srv_frame_t *f, const srv_frame_ops_t *ops, void *ctx);

/* Returns the block and the assembly buffer without reporting anything. Idempotent. */
void srv_frame_release(srv_frame_t *f);

/* 1 when f holds bytes of an unfinished line (block partial, assembly or skip in progress). */
int srv_frame_pending(const srv_frame_t *f);

#endif
