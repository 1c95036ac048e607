/* backend.h - the seam between the sink engine (engine.c) and where its bytes go (null.c, file.c):
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
 * Durability (the hook for acknowledgements, issue 12). Taking bytes in write and making them
 * durable are separate events: a backend calls sink_backend_durable(sink, pos) when every byte
 * of the stream before pos is as safe as it can make it. The file backend does so after each
 * write (page cache: today's promise) and again after sync; a file backend with a sync policy
 * would report only after sync (group commit: one sync covers every writer's batch); a network
 * backend reports when the server acknowledges, from whichever thread its client library calls
 * back on. The engine keeps the highest position (bytes_durable in sink_stats). To answer "your
 * events up to sequence N are durable" the engine will record, for each chunk it hands to write,
 * its owner, the owner's event sequence at the chunk's end and the stream position at its end,
 * and advance each owner's durable sequence as pos passes those positions (a given-up chunk
 * advances its owner's lost count instead). That bookkeeping belongs in the engine, so no backend
 * changes when it arrives. A backend that copies bytes in write (a network client's publish
 * buffer) owns those copies and resends them itself until they are acknowledged; the engine's
 * retry covers only write calls that fail. */

/* What the engine lends a backend at open. */
typedef struct {
    sink_t *sink; /* for the sink_backend_* calls below; borrowed, valid until close returns */
    void *(*alloc_fn)(size_t size); /* the sink's allocator (never NULL) */
    void (*free_fn)(void *ptr);
} sink_backend_opts_t;

typedef struct {
    const char *name; /* the spec's scheme: "null", "file" */
    /* true: the null sink. sink_append counts and discards; there are no chunks, no writer thread
     * and no libuv handles, and no operation below is called (all may be NULL). */
    bool discard;
    /* Opens the destination named by arg (the spec after "SCHEME:"; borrowed, valid until close
     * returns). Returns 0 and new state in *st, or -errno (sink_create returns it). */
    int (*open)(const char *arg, const sink_backend_opts_t *o, void **st);
    /* Takes bytes from iov[0..n) (1 <= n <= SINK_BACKEND_IOV_MAX, each entry non-empty), in
     * order. Returns how many it took (1 to the total: a short count is fine, the engine hands
     * the rest again), 0 for no progress, or -errno; 0 and errors other than -EINTR are counted
     * in write_errors, logged and retried with backoff by the engine, -EINTR is retried at once.
     * -EBADF makes the engine call reopen before the retry. */
    ssize_t (*write)(void *st, const struct iovec *iov, int n);
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
 * a smaller one than already reported is ignored. Any thread. */
void sink_backend_durable(sink_t *s, uint64_t pos);

#endif
