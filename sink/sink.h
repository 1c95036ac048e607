/* sink.h - where accepted events go: `null` (counted, discarded) or `file:PATH` (appended as
 * NDJSON in batches by one writer thread per sink, reopened on SIGHUP), with bounded memory and
 * backpressure instead of an unbounded queue. One engine (engine.c) does the batching, the
 * backpressure, the retries and the accounting for every backend (null.c, file.c; their seam is
 * sink/backend.h, internal to sink/). */
#ifndef INGESTD_SINK_H
#define INGESTD_SINK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Model (one sink, one writer handle per worker):
 *
 *   worker loop thread                       sink writer thread
 *   sink_append -> current chunk --full/flush--> shared FIFO --> backend write --> chunk back
 *                      (no lock per event)         (lock per chunk)  (file: writev)  to its writer
 *
 * A writer handle owns at most max_pending_chunks chunks of chunk_bytes, allocated on first need
 * and recycled between the two threads: no allocation per event in steady state. A chunk holds
 * whole lines only, so lines from different workers never interleave inside a line; each
 * writer's events reach the file in the order they were appended.
 *
 * Backpressure: the writer is "full" when the bytes handed to the writer thread and not yet
 * written reach bound - chunk_bytes (bound = chunk_bytes * max_pending_chunks). From then on
 * sink_append returns 1 and sink_writer_full() 1: TCP stops reading, HTTP answers 503.
 * When the writer thread has brought that figure down to half, on_writable runs on the writer's
 * loop. An event appended while full is still kept (it was accepted): if no recycled chunk is
 * free it goes into an extra chunk freed after its write. Memory per writer is therefore at most
 * bound + what the caller appends after being told to stop (for TCP the rest of one read block
 * and one assembled event; for HTTP the body of the request in progress) + events larger than a
 * chunk (each in its own allocation of its size, freed after its write).
 *
 * Write errors (disk full, EIO, EBADF, EPIPE): counted in write_errors and logged at most once
 * per second. The writer thread retries the same bytes (backoff 10 ms doubling to 1 s; EBADF
 * first reopens the path), never skipping them, so while the disk is full the sink stays full
 * and the server sheds load: nothing accepted is dropped while the service runs. Only during
 * sink_writer_destroy/sink_close, where waiting forever would block shutdown, a chunk
 * that fails 3 attempts is given up (and every later failing chunk after one attempt): its
 * events are counted in events_lost, logged, and sink_close returns that error. A chunk
 * given up part-way leaves its last written line incomplete in the file.
 *
 * A file deleted or replaced without SIGHUP: at most once a second, before a write, the writer
 * thread compares the open file with what the path names (fstat vs stat); when they differ it
 * reopens the path (creating it), counts reopens and reopens_unlinked, and logs it. Events
 * written between the unlink and that check went to the unlinked file (at most about a second's
 * worth); none written after the check is lost there.
 *
 * Slow sink for tests and benchmarks: point file:PATH at a FIFO. The path is opened with
 * O_NONBLOCK (a FIFO without a reader fails at once with -ENXIO instead of hanging) and then
 * switched to blocking writes, so a reader that reads slowly, or not at all, makes a sink that
 * cannot keep up. From the command line: mkfifo f; open f for reading; ingestd --sink file:f. */

typedef enum {
    SINK_NULL = 0, /* "null": count and discard */
    SINK_FILE = 1, /* "file:PATH" */
} sink_kind_t;

/* What a bad --sink value is told it may be (for the start-up error line). */
#define SINK_SPEC_ALLOWED "null or file:PATH"

#define SINK_DEFAULT_CHUNK_BYTES (64u * 1024u)
#define SINK_DEFAULT_MAX_PENDING_CHUNKS 16u
#define SINK_DEFAULT_FLUSH_INTERVAL_MS 100u

typedef struct {
    const char *spec;          /* "null" | "file:PATH"; borrowed (copied by sink_create) */
    size_t chunk_bytes;        /* batch size; 0: SINK_DEFAULT_CHUNK_BYTES */
    size_t max_pending_chunks; /* per writer handle, >= 2; 0: default 16 (1 MiB per worker) */
    /* A partial chunk is handed to the writer thread at most this long after its first event
     * (a timer on the writer's loop, started only when a chunk becomes non-empty). 0: no timer,
     * the caller flushes with sink_writer_flush(). */
    uint64_t flush_interval_ms;
    /* Memory for the sink, writers and chunks; NULL: malloc/free. Must be callable from any
     * thread (the writer thread frees extra and oversize chunks). The server passes
     * mem_malloc/mem_free. */
    void *(*alloc_fn)(size_t size);
    void (*free_fn)(void *ptr);
    /* Error lines from the writer thread (at most one per second), without a trailing newline;
     * NULL: "ingestd: sink: ...\n" on stderr. Runs on the writer thread. */
    void (*log_fn)(void *log_ctx, const char *line);
    void *log_ctx;
} sink_config_t;

/* Cumulative figures summed over the sink and all its writers (live and destroyed), read with
 * relaxed atomics (a lock is taken briefly to walk the writer list; never on the hot path).
 * Any thread. */
typedef struct {
    uint64_t events_appended; /* events given to sink_append (accepted into the sink) */
    uint64_t bytes_appended;  /* their bytes, newlines included */
    uint64_t events_written;  /* file: events whose bytes write(2) took; null: always 0 */
    uint64_t bytes_written;
    uint64_t bytes_durable;    /* the prefix of bytes_written the backend reports durable (file:
                                  written; synced at close) */
    uint64_t write_errors;     /* failed write/writev/fsync calls and failed reopens */
    uint64_t events_lost;      /* given up after write errors during destroy/close (see above) */
    uint64_t reopens;          /* successful reopens of the path (any reason) */
    uint64_t reopens_unlinked; /* of which: the path was unlinked or replaced without SIGHUP */
    uint64_t stalls;           /* times a writer went from not full to full */
    uint64_t oversize;         /* events larger than a chunk (each written from its own buffer) */
    uint64_t extra_chunks;     /* chunks allocated beyond max_pending_chunks while full */
    uint64_t pending_bytes;    /* gauge: appended, not yet written or lost (file sink) */
} sink_stats_t;

typedef struct srv_sink sink_t;
typedef struct sink_writer sink_writer_t;

/* Called on the writer's loop thread when a full writer has room again. ctx is borrowed. */
typedef void (*sink_writable_cb)(void *ctx);

/* Fills cfg with the defaults: spec "null", 64 KiB chunks, 16 chunks per writer, flush every
 * 100 ms, malloc/free, stderr logging. */
void sink_config_init(sink_config_t *cfg);

/* Validates a --sink value. Returns 0 with the kind in *kind and, for file:PATH, *path pointing
 * into spec (borrowed; NULL for null); -EINVAL for anything else (NULL, "", "file:", other
 * words; outputs untouched). Either output may be NULL. Start-up error line suggestion:
 * "--sink: 'VALUE' is not " SINK_SPEC_ALLOWED. Any thread. */
int sink_parse_spec(const char *spec, sink_kind_t *kind, const char **path);

/* Creates a sink. For file:PATH opens PATH with O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC, mode 0640
 * (FIFOs: see above) and starts the writer thread with every signal blocked. Returns 0 and a new
 * sink in *out; -EINVAL for a bad spec or config (max_pending_chunks < 2, overflowing bound);
 * -errno from open(2) (-ENOENT, -EACCES, -ENXIO for a FIFO without reader, ...); -ENOMEM; or
 * -errno from pthread_create. Any thread, typically main at start-up. */
int sink_create(const sink_config_t *cfg, sink_t **out);

/* Kind of a sink (SINK_NULL for one from sink_create_backend, in tests), and the bound of one
 * writer in bytes (chunk_bytes * max_pending_chunks). */
sink_kind_t sink_kind(const sink_t *s);
size_t sink_writer_bound(const sink_t *s);

/* Creates a writer handle for the calling thread's loop (call on that loop's thread). For a file
 * sink it adds a uv_async_t (on_writable) and, with flush_interval_ms, a uv_timer_t to loop;
 * both are unreferenced, so they never keep the loop alive on their own. on_writable may be NULL
 * (then full writers just stop being full); for the null sink loop and on_writable are unused
 * and may be NULL. Returns 0 and a new handle in *out, -EINVAL (file sink without loop),
 * -ENOMEM, or a negative libuv error; on failure on_writable never runs. */
int sink_writer_create(sink_t *s, uv_loop_t *loop, sink_writable_cb on_writable, void *ctx,
                       sink_writer_t **out);

/* Appends one event: copies event[0..len) and a '\n' (the caller passes the line without its
 * newline). Never blocks; takes a lock only when a chunk is handed over; allocates only for an
 * event larger than a chunk, while filling the first max_pending_chunks chunks, or while full.
 * The event is always kept. Returns 0; 1 when the writer is full: the caller must stop reading
 * until on_writable (appending the events it already holds is fine); -ENOMEM only when an
 * allocation fails, in which case this event was not kept. Owner loop thread. */
int sink_append(sink_writer_t *w, const char *event, size_t len);

/* 1 while the writer is full (HTTP: answer 503 with Retry-After), else 0. Owner loop thread. */
int sink_writer_full(const sink_writer_t *w);

/* Hands the partial chunk to the writer thread now (the flush timer does this; call at drain or
 * after a burst if no timer). Never blocks. Owner loop thread. */
void sink_writer_flush(sink_writer_t *w);

/* Flushes, then blocks until every chunk of this writer is written (or lost, see above), then
 * closes its libuv handles. As with uv_close, the loop must run once more (e.g. until
 * uv_loop_close() succeeds) to free the last memory; on_writable never runs after this call.
 * sink_writer_destroy(NULL) does nothing. Owner loop thread. */
void sink_writer_destroy(sink_writer_t *w);

/* Asks the writer thread to reopen the path (log rotation): events appended after this call
 * returns are written to the newly opened file; events already handed over may land in either,
 * none is lost or duplicated. If the reopen fails the old file is kept and the error counted and
 * logged. Async-signal-safe (an atomic store and sem_post), so it may be called from a SIGHUP
 * handler or from a uv_signal_t callback. No-op for the null sink. Any thread. */
void sink_reopen(sink_t *s);

/* Fills *out (see sink_stats_t). Any thread. */
void sink_stats(sink_t *s, sink_stats_t *out);

/* Writes everything still queued, fsyncs on the writer thread (EINVAL/EROFS from a FIFO or
 * special file ignored), stops and joins the writer thread, closes the file and frees the sink.
 * Every writer must have been destroyed first. Returns 0 when every appended event was written and
 * synced, else the -errno of the first write error that lost events, or of fsync. sink_close(NULL)
 * returns 0. Any thread but the writers' loops, after the workers are done. */
int sink_close(sink_t *s);

#endif
