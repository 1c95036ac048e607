/* inflate.h - streaming gzip decoding of request bodies (Content-Encoding: gzip) with zlib:
 * compressed bytes in as they arrive, decompressed bytes out through a callback, bounded by a
 * maximum size and a maximum ratio. No sockets, no libuv. */
#ifndef INGESTD_INFLATE_H
#define INGESTD_INFLATE_H

#include <stddef.h>
#include <stdint.h>

/* Errors of our own (besides -ENOMEM, -EINVAL and a callback's own negative value). */
enum {
    SRV_INFLATE_ETOOBIG = -3001,    /* decompressed size over max_out -> 413 */
    SRV_INFLATE_ERATIO = -3002,     /* decompressed/compressed over max_ratio -> 413 */
    SRV_INFLATE_ECORRUPT = -3003,   /* not gzip, bad deflate data, CRC or length mismatch, or
                                     * bytes after a member that do not start another -> 400 */
    SRV_INFLATE_ETRUNCATED = -3004, /* the body ended inside a member, or held none -> 400 */
};

/* Limits of one stream; every one is the caller's. */
typedef struct {
    uint64_t max_out;     /* decompressed bytes of one body (pass --max-body-bytes); 0: none */
    uint32_t max_ratio;   /* decompressed / compressed; 0: none. Deflate reaches ~1032:1; NDJSON
                           * usually compresses 5-20:1, repetitive logs to ~100:1. */
    uint64_t ratio_grace; /* the ratio is not checked while the output is at most this many
                           * bytes (a small body may compress very well) */
    /* Memory for the stream: its struct and zlib's state and window. NULL alloc_fn: the
     * counting layer (mem_malloc/mem_free). Called on the thread that calls create/feed. */
    void *(*alloc_fn)(void *opaque, size_t size);
    void (*free_fn)(void *opaque, void *ptr);
    void *opaque;
} srv_inflate_limits_t;

/* Memory one stream holds (requested bytes, measured by unit.inflate on x86-64): 7,368 at
 * create (itself and zlib's inflate state), 40,136 once zlib has allocated its 32 KiB window,
 * which it does when a member's output spans two inflate calls (any body over one output
 * window). Both are kept across srv_inflate_reset; destroy the stream between gzip requests of
 * a keep-alive connection to not hold ~40 KiB per idle connection. */
#define SRV_INFLATE_HELD_MAX ((size_t)48 * 1024) /* a bound on srv_inflate_held_bytes */

/* One gzip body decoder; used by one thread at a time. */
typedef struct srv_inflate srv_inflate_t;

/* Receives decompressed bytes (borrowed: valid during the call only; len > 0). Returns 0 to go
 * on, or a negative value that stops the stream: srv_inflate_feed returns it, and the stream
 * stays failed with it until srv_inflate_reset. */
typedef int (*srv_inflate_out_cb)(void *ctx, const char *data, size_t len);

/* Creates a stream ready for one body. lim is copied. Returns 0, -EINVAL (NULL lim/out, a
 * free_fn without alloc_fn or the reverse) or -ENOMEM; *out untouched on error. */
int srv_inflate_create(const srv_inflate_limits_t *lim, srv_inflate_t **out);

/* Decodes the next len compressed bytes of the body (len 0 is allowed), writing decompressed
 * bytes into the caller's window (win, winlen > 0, e.g. a pooled 4096-byte block) and handing
 * each filled part to out_cb before the window is reused. Nothing is buffered beyond zlib's own
 * state: when feed returns, every byte decodable from the input so far has been handed out.
 * Concatenated gzip members (RFC 1952 2.2) are one body; anything after a member that is not
 * another member is corrupt. Returns 0, or the first error: SRV_INFLATE_ETOOBIG (the callback
 * got exactly the first max_out bytes), SRV_INFLATE_ERATIO, SRV_INFLATE_ECORRUPT (the callback
 * got the bytes decoded before the damage), -ENOMEM, or the callback's value. After an error
 * the stream is failed: every later feed and finish return the same error without work.
 * Which byte a bomb is stopped at can depend on how the input is split (the ratio is checked
 * against the compressed bytes zlib has consumed when output appears); whether a body passes
 * max_out, and which bytes come out, do not. */
int srv_inflate_feed(srv_inflate_t *z, const void *in, size_t len, char *win, size_t winlen,
                     srv_inflate_out_cb out_cb, void *ctx);

/* The body has ended: 0 when it held one or more complete members and nothing else,
 * SRV_INFLATE_ETRUNCATED when it ended inside a member or held no byte, or the stream's earlier
 * error. The stream must be reset before it decodes another body. */
int srv_inflate_finish(srv_inflate_t *z);

/* Makes the stream ready for a new body (keeps zlib's state and window: no allocation). */
void srv_inflate_reset(srv_inflate_t *z);

/* Frees the stream and everything it holds. NULL does nothing. */
void srv_inflate_destroy(srv_inflate_t *z);

/* Figures of the current body: compressed bytes consumed, decompressed bytes handed out,
 * members completed. Any of the pointers may be NULL. */
void srv_inflate_totals(const srv_inflate_t *z, uint64_t *in, uint64_t *out, uint64_t *members);

/* Bytes the stream holds from its allocator now (requested sizes), for a memory budget. */
size_t srv_inflate_held_bytes(const srv_inflate_t *z);

/* A short text for any value srv_inflate_feed or srv_inflate_finish returns ("ok", "gzip body
 * over the size limit", ...). */
const char *srv_inflate_strerror(int err);

/* The HTTP status for an error: 413 for ETOOBIG and ERATIO, 400 for ECORRUPT and ETRUNCATED,
 * 503 for -ENOMEM, 500 for anything else (200 for 0). */
int srv_inflate_http_status(int err);

#endif
