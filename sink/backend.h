/* backend.h - the seam between the sink engine (engine.c) and where its bytes go (null.c, file.c,
 * nats.c):
 * a small table of operations, and the few engine calls a backend may make. Internal to sink/
 * and its tests; callers outside use sink.h. */
#ifndef INGESTD_SINK_BACKEND_H
#define INGESTD_SINK_BACKEND_H

#include "sink/sink.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Division of labour. The engine owns everything that is the same for every destination: the
 * per-writer chunks, the shared FIFO, the writer thread, backpressure, retries with backoff,
 * give-up during close, and the accounting (appended per writer handle; written, lost, pending
 * and durable per sink). A backend only moves bytes: it never sees events, chunks or writers,
 * never retries, never frees a chunk, and counts nothing but its own reopens and errors (through
 * sink_backend_count).
 *
 * Threads. open runs in sink_create and close in sink_close, on the caller's thread, while the
 * writer thread is not running. Every other operation runs on the sink's one writer thread, so a
 * backend needs no lock for its own state. The writer thread has every signal blocked.
 *
 * The stream. The engine sees the bytes it hands to write as one stream per sink; a backend's
 * position in it is the sum of what its write calls returned (the engine keeps the same sum as
 * bytes_written). Bytes the engine gave up on were never taken, so they are not in it.
 *
 * Durability. Taking bytes in write and making them durable are separate events: a backend calls
 * sink_backend_durable(sink, pos) when every byte of the stream before pos is as safe as it can
 * make it, from any thread (a network client's ack callback). The file backend does so after
 * each write, or, with file_sync, in commit after fdatasync; the nats backend when the stream
 * has acknowledged every message up to pos. The engine holds each written chunk (still counted
 * in its writer's in-flight bytes, so backpressure covers it) until pos passes the chunk's end,
 * then advances its writer's durable sequence and recycles it. A backend that copies bytes in
 * write (a network client's publish buffer) owns those copies and resends them itself until they
 * are acknowledged; the engine's retry covers only write calls that fail. */

/* What the engine lends a backend at open. */
typedef struct {
    sink_t *sink; /* for the sink_backend_* calls below; borrowed, valid until close returns */
    void *(*alloc_fn)(size_t size); /* the sink's allocator (never NULL) */
    void (*free_fn)(void *ptr);
    const sink_config_t *cfg; /* the sink's config (file_sync, nats, chunk_bytes...); borrowed,
                                 valid during open only */
} sink_backend_opts_t;

/* What the engine knows about each iov entry handed to write: the remainder of one chunk, all
 * of whose lines come from one writer. first_seq and nevents describe the whole chunk, so they
 * are exact only when off == 0 (the backend has taken none of it yet). */
typedef struct {
    uint32_t writer;    /* the writer handle's number (0, 1, ... in creation order) */
    uint64_t first_seq; /* that writer's sequence number of the chunk's first event */
    uint64_t nevents;   /* lines in the chunk */
    size_t off;         /* bytes of the chunk taken before (iov starts after them) */
} sink_backend_span_t;

typedef struct {
    const char *name; /* the spec's scheme: "null", "file" */
    /* true: the null sink. sink_append counts and discards; there are no chunks, no writer thread
     * and no libuv handles, and no operation below is called (all may be NULL). */
    bool discard;
    /* Opens the destination named by arg (the spec after "SCHEME:"; borrowed, valid until close
     * returns). Returns 0 and new state in *st, or -errno (sink_create returns it). */
    int (*open)(const char *arg, const sink_backend_opts_t *o, void **st);
    /* Takes bytes from iov[0..n) (1 <= n <= SINK_BACKEND_IOV_MAX, each entry non-empty), in
     * order; span[i] describes iov[i]. Returns how many it took (1 to the total: a short count
     * is fine, the engine hands the rest again), 0 for no progress, or -errno; 0 and errors
     * other than those below are counted in write_errors, logged and retried with backoff by the
     * engine. -EINTR is retried at once. -EBADF makes the engine call reopen before the retry.
     * -EAGAIN means "no room now, not an error" (in-flight bound reached): the engine counts
     * nothing, calls poll and waits until sink_backend_wake or a short timeout, then hands the
     * same bytes again; during destroy/close it gives them up after durable_timeout_ms.
     * -EMSGSIZE means the first entry can never be taken (an event larger than the server
     * allows): the engine gives that chunk up at once (events_lost, logged). */
    ssize_t (*write)(void *st, const struct iovec *iov, const sink_backend_span_t *span, int n);
    /* Called on the writer thread on every turn of its loop and while it waits (resends,
     * stream checks). Returns the milliseconds after which it wants to be called again at the
     * latest, or -1 for "only when woken". NULL: nothing to do. */
    int (*poll)(void *st);
    /* Called after each batch of successful writes: a backend that makes data durable in
     * groups (file with file_sync: fdatasync) does it here and reports sink_backend_durable.
     * Returns 0 or -errno (counted as a write error and logged; the engine calls it again after
     * the next batch, or at close through sync). NULL: nothing to do. */
    int (*commit)(void *st);
    /* 1 when the destination can take and keep data now (nats: connected, stream checked). Any
     * thread. NULL: always ready. */
    int (*ready)(void *st);
    /* Adds the backend's own figures to *out (nats: out->nats). Any thread. NULL: none. */
    void (*stats)(void *st, sink_stats_t *out);
    /* Reopens the destination (SIGHUP, or after -EBADF): later writes go to the new one. Returns
     * 0 (counted in reopens), or -errno with the old destination kept (counted as a write
     * error and logged by the engine). NULL: nothing to reopen. */
    int (*reopen)(void *st);
    /* Makes what write took durable (file: fsync). The engine calls it once, when the sink is
     * closing and everything has been written or given up. Returns 0 or -errno (sink_close
     * returns it unless events were lost). NULL: nothing to sync. */
    int (*sync)(void *st);
    /* Releases the state (file: closes the fd). Cannot fail. */
    void (*close)(void *st);
} sink_backend_t;

#define SINK_BACKEND_IOV_MAX 64

extern const sink_backend_t sink_backend_null;
extern const sink_backend_t sink_backend_file;
extern const sink_backend_t sink_backend_nats;

/* Creates a sink over backend b with arg as its destination (copied), ignoring cfg->spec. This
 * is what sink_create calls after choosing the backend from the spec's scheme; tests use it to
 * put a fake backend under the real engine. Returns as sink_create. Any thread. */
int sink_create_backend(const sink_config_t *cfg, const sink_backend_t *b, const char *arg,
                        sink_t **out);

/* Logs one line through the sink's log_fn (printf-like, no newline), rate-limited together with
 * the engine's lines (at most one per second; "always" skips the limit for lines that must be
 * said once). Writer thread, or open/close. */
__attribute__((format(printf, 3, 4))) void sink_backend_log(sink_t *s, bool always, const char *fmt,
                                                            ...);

typedef enum {
    SINK_COUNT_ERROR,           /* a failed call of the backend's own (stat, a reopen it chose) */
    SINK_COUNT_REOPEN,          /* a reopen the backend chose (counted in reopens) */
    SINK_COUNT_REOPEN_UNLINKED, /* one because the destination was unlinked or replaced (in both
                                   reopens and reopens_unlinked) */
} sink_count_t;

/* Counts one of the backend's own happenings in the sink's stats. Writer thread. */
void sink_backend_count(sink_t *s, sink_count_t what);

/* Reports that every byte of the stream before pos is durable (see above). Positions only grow;
 * a smaller one than already reported is ignored. Any thread; takes the engine's lock, so call it
 * without holding a lock the engine could wait for. */
void sink_backend_durable(sink_t *s, uint64_t pos);

/* Wakes the writer thread (room after -EAGAIN, work for poll). Any thread, async-signal-safe. */
void sink_backend_wake(sink_t *s);

#endif
