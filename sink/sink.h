/* sink.h - where accepted events go: `null` (counted, discarded), `file:PATH` (appended as
 * NDJSON in batches by one writer thread per sink, reopened on SIGHUP) or
 * `nats://HOST:PORT[,HOST:PORT...]/SUBJECT` (published in batches to a NATS JetStream stream),
 * with bounded memory and backpressure instead of an unbounded queue, and a per-writer durable
 * sequence for acknowledgements. One engine (engine.c) does the batching, the backpressure, the
 * retries, the durability bookkeeping and the accounting for every backend (null.c, file.c,
 * nats.c; their seam is sink/backend.h, internal to sink/). */
#ifndef INGESTD_SINK_H
#define INGESTD_SINK_H

#include <stdbool.h>
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
 * durable (unwritten, or written and waiting for the backend's durability report: see
 * "Durability") reach bound - chunk_bytes (bound = chunk_bytes * max_pending_chunks). From then
 * on sink_append returns 1 and sink_writer_full() 1: TCP stops reading, HTTP answers 503.
 * When that figure is down to half, on_writable runs on the writer's loop. An event appended while
 * full is still kept (it was accepted): if no recycled chunk is free it goes into an extra chunk
 * freed after its write. Memory per writer is therefore at most bound + what the caller appends
 * after being told to stop (for TCP the rest of one read block and one assembled event; for HTTP
 * the body of the request in progress) + events larger than a chunk (each in its own allocation of
 * its size, freed after its write).
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
 * Durability (what an acknowledgement may promise). Every event a writer appends gets the next
 * number of that writer's sequence (1, 2, 3, ...; sink_writer_seq() is the last one). A chunk
 * stays counted in its writer's in-flight bytes, and held by the engine, until the backend
 * reports it durable: file: written (page cache), or fdatasync'd when file_sync is set (group
 * commit: one sync on the writer thread after each batch covers every writer's chunks in it);
 * nats: stored and acknowledged by the stream. So a sink that does not make data durable fills
 * its writers and the server sheds load, exactly as a sink that does not take bytes.
 * sink_writer_durable() is the highest sequence S such that every event <= S of this writer is
 * settled: durable, or given up (counted by sink_writer_lost(): at destroy/close, see below,
 * or an event the backend can never take, such as one over NATS's max payload). An HTTP
 * request whose events are F..N may be answered "stored" once durable >= N and
 * sink_writer_lost_any(F, N) is 0; when it is 1, some of them may have been given up: the
 * answer is an error. The optional durable callback (sink_writer_set_durable_cb) runs on the
 * writer's loop when the figure advances. The null sink is durable at once (durable == seq, no
 * callback). TCP has no reply channel: what it loses on a crash is what was appended and not yet
 * durable.
 *
 * Giving up at shutdown. sink_writer_destroy and sink_close wait at most durable_timeout_ms
 * for what was written to become durable (a NATS server that is gone); then the rest is given
 * up: counted in events_lost and the writer's lost count, logged, and sink_close returns
 * -ETIMEDOUT (unless an earlier loss already set its error).
 *
 * Slow sink for tests and benchmarks: point file:PATH at a FIFO. The path is opened with
 * O_NONBLOCK (a FIFO without a reader fails at once with -ENXIO instead of hanging) and then
 * switched to blocking writes, so a reader that reads slowly, or not at all, makes a sink that
 * cannot keep up. From the command line: mkfifo f; open f for reading; ingestd --sink file:f. */

typedef enum {
    SINK_NULL = 0, /* "null": count and discard */
    SINK_FILE = 1, /* "file:PATH" */
    SINK_NATS = 2, /* "nats://HOST:PORT[,HOST:PORT...]/SUBJECT" (JetStream) */
} sink_kind_t;

/* What a bad --sink value is told it may be (for the start-up error line). */
#define SINK_SPEC_ALLOWED "null, file:PATH or nats://HOST:PORT[,HOST:PORT...]/SUBJECT"

#define SINK_DEFAULT_CHUNK_BYTES (64u * 1024u)
#define SINK_DEFAULT_MAX_PENDING_CHUNKS 16u
#define SINK_DEFAULT_FLUSH_INTERVAL_MS 100u
#define SINK_DEFAULT_DURABLE_TIMEOUT_MS 5000u

/* JetStream options (used by nats:// sinks only; see sink/nats.c for the message format). */
typedef struct {
    const char *stream;  /* stream the subject must belong to (Nats-Expected-Stream);
                            NULL: SINK_NATS_DEFAULT_STREAM */
    bool create_stream;  /* create the stream (file storage, subject SUBJECT) if it is absent */
    int replicas;        /* replicas when creating it; 0: 1 */
    const char *creds;   /* credentials file (JWT + nkey seed); NULL: none */
    const char *token;   /* auth token; NULL: none (prefer a file read by the caller) */
    bool tls;            /* require TLS (libnats is built with OpenSSL in Debian) */
    const char *ca_file; /* CA bundle for TLS; NULL: the system's */
    /* Events per message at most; 0: a whole chunk per message (bytes bounded by the chunk and
     * by the server's max payload). */
    size_t batch_events;
    /* Bytes per message at most: sink_create makes this the chunk, with as many chunks per
     * writer as keep chunk_bytes * max_pending_chunks in flight, at least 4 (so filling one
     * overlaps the acks of the others). 0: chunk_bytes as configured. The server passes
     * --nats-batch-bytes (SINK_NATS_DEFAULT_BATCH_BYTES). */
    size_t batch_bytes;
    uint64_t ack_timeout_ms; /* per message: resent when no ack within; 0: 2000 */
    size_t max_inflight;     /* messages published and not yet acked; 0: 1024 */
    int reconnect_buf_bytes; /* cnats's buffer while reconnecting; 0: 8 MiB */
    const char *instance;    /* unique per process run (message ids); NULL: HOST-RANDOM */
} sink_nats_config_t;

#define SINK_NATS_DEFAULT_STREAM "INGESTD"
/* Bytes per JetStream message at most (the engine's chunk for a nats sink): 4x the file sink's
 * chunk, because each message has a fixed cost in cnats's threads and the server (BENCHMARKS.md
 * section 9c), and under the server's default max_payload of 1 MiB. */
#define SINK_NATS_DEFAULT_BATCH_BYTES (256u * 1024u)

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
    /* file: fdatasync after each batch before reporting it durable (group commit). */
    bool file_sync;
    /* How long destroy/close wait for written data to become durable before giving it up;
     * 0: SINK_DEFAULT_DURABLE_TIMEOUT_MS. */
    uint64_t durable_timeout_ms;
    sink_nats_config_t nats; /* strings borrowed until sink_create returns */
} sink_config_t;

/* Ack latency histogram of the nats backend: bucket i counts acks within
 * sink_ack_latency_bounds_us[i] microseconds (cumulative, Prometheus style); the last bound is
 * +Inf. */
#define SINK_ACK_BUCKETS 12
extern const double sink_ack_latency_bounds_us[SINK_ACK_BUCKETS];

typedef enum {
    SINK_CONN_NONE = 0,         /* no connection (null, file) */
    SINK_CONN_CONNECTING = 1,   /* nats: not yet connected at start */
    SINK_CONN_CONNECTED = 2,    /* nats: connected and the stream checked */
    SINK_CONN_RECONNECTING = 3, /* nats: connection lost, reconnecting */
    SINK_CONN_CLOSED = 4,       /* nats: closed for good (gave up reconnecting) */
} sink_conn_state_t;

/* The nats backend's figures (all 0 for other sinks). */
typedef struct {
    uint64_t msgs_published; /* first publishes (resends not included) */
    uint64_t events_published;
    uint64_t msgs_stored; /* acked by the stream (duplicates included: stored before) */
    uint64_t events_stored;
    uint64_t msgs_duplicate; /* acks saying "duplicate": a resend of something already stored */
    uint64_t msgs_resent;    /* resends after an error ack or an ack timeout */
    uint64_t msgs_failed;    /* error acks and ack timeouts (each followed by a resend) */
    uint64_t publish_errors; /* publish calls that failed (not connected, buffer full, ...) */
    uint64_t inflight_msgs;  /* gauge: published, not yet acked */
    uint64_t inflight_bytes; /* gauge */
    uint64_t disconnects;
    uint64_t reconnects;
    uint64_t state; /* a sink_conn_state_t (a plain integer, for the metrics table) */
    uint64_t ack_latency_count;
    double ack_latency_sum_seconds;
    uint64_t ack_latency_buckets[SINK_ACK_BUCKETS]; /* cumulative */
} sink_nats_stats_t;

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
    uint64_t events_durable;   /* events the backend made durable (see "Durability") */
    uint64_t undurable_bytes;  /* gauge: written, not yet durable (held chunks' bytes) */
    sink_nats_stats_t nats;
} sink_stats_t;

typedef struct srv_sink sink_t;
typedef struct sink_writer sink_writer_t;

/* Called on the writer's loop thread when a full writer has room again. ctx is borrowed. */
typedef void (*sink_writable_cb)(void *ctx);

/* Fills cfg with the defaults: spec "null", 64 KiB chunks, 16 chunks per writer, flush every
 * 100 ms, malloc/free, stderr logging, no file sync, 5 s durable timeout, nats defaults. */
void sink_config_init(sink_config_t *cfg);

/* Validates a --sink value. Returns 0 with the kind in *kind and, for file:PATH, *path pointing
 * into spec (borrowed; NULL for null; for nats:// the text after "nats:", "//HOSTS/SUBJECT");
 * -EINVAL for anything else (NULL, "", "file:", "nats://h:1" without a subject, other
 * words; outputs untouched). Either output may be NULL. Start-up error line suggestion:
 * "--sink: 'VALUE' is not " SINK_SPEC_ALLOWED. Any thread. */
int sink_parse_spec(const char *spec, sink_kind_t *kind, const char **path);

/* Creates a sink. For nats:// connects (when no server answers it keeps retrying in the
 * background and returns 0: sink_ready() tells when the stream is reachable) and checks or
 * creates the stream; -EINVAL for a bad URL or option, -EACCES for rejected credentials, -ENOENT
 * for a stream that does not exist (and create_stream unset), -EIO for other NATS errors (the
 * reason is logged). For file:PATH opens PATH with O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC, mode 0640
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

/* Flushes, then blocks until every chunk of this writer is durable (or given up after
 * durable_timeout_ms or write errors, see above), then
 * closes its libuv handles. As with uv_close, the loop must run once more (e.g. until
 * uv_loop_close() succeeds) to free the last memory; on_writable never runs after this call.
 * sink_writer_destroy(NULL) does nothing. Owner loop thread. */
void sink_writer_destroy(sink_writer_t *w);

/* Drain: flushes, then blocks until every chunk of this writer is durable or given up (as
 * sink_writer_destroy waits), and returns sink_writer_durable(). Nothing may be appended after
 * it; destroy the writer next. Owner loop thread. */
uint64_t sink_writer_settle(sink_writer_t *w);

/* Asks the writer thread to reopen the path (log rotation): events appended after this call
 * returns are written to the newly opened file; events already handed over may land in either,
 * none is lost or duplicated. If the reopen fails the old file is kept and the error counted and
 * logged. Async-signal-safe (an atomic store and sem_post), so it may be called from a SIGHUP
 * handler or from a uv_signal_t callback. No-op for the null sink. Any thread. */
void sink_reopen(sink_t *s);

/* 1 when the sink can make events durable now (null, file: always; nats: connected and the
 * stream checked), else 0. For /readyz. Any thread. */
int sink_ready(sink_t *s);

/* Sequence number of the last event this writer appended (0 before the first). Owner loop
 * thread. */
uint64_t sink_writer_seq(const sink_writer_t *w);

/* Highest sequence S such that every event <= S of this writer is durable or given up (see
 * "Durability"). Owner loop thread (any thread may read it; it only grows). */
uint64_t sink_writer_durable(const sink_writer_t *w);

/* Events of this writer given up without becoming durable (destroy/close timeouts, events a
 * backend can never take). Owner loop thread. */
uint64_t sink_writer_lost(const sink_writer_t *w);

/* 1 when events first..last may include one given up: they meet the range from the lowest to
 * the highest sequence given up (exact when the losses are one run, as at shutdown; otherwise
 * it may say 1 for events in a gap, never 0 for a loss). A chunk's loss is recorded before
 * sink_writer_durable() passes it, so a reader that sees durable >= last and 0 here knows
 * first..last are durable. Owner loop thread (any thread may read it). */
int sink_writer_lost_any(const sink_writer_t *w, uint64_t first, uint64_t last);

/* Sets a callback run on the writer's loop thread when sink_writer_durable() has advanced
 * (coalesced: one call may cover many chunks; re-read the figure in it). NULL stops the calls.
 * Not used for the null sink (durable at once). Owner loop thread, before or between appends. */
void sink_writer_set_durable_cb(sink_writer_t *w, sink_writable_cb on_durable, void *ctx);

/* Fills *out (see sink_stats_t). Any thread. */
void sink_stats(sink_t *s, sink_stats_t *out);

/* Writes everything still queued, fsyncs on the writer thread (EINVAL/EROFS from a FIFO or
 * special file ignored), stops and joins the writer thread, closes the file and frees the sink.
 * Every writer must have been destroyed first. Returns 0 when every appended event was written and
 * synced (and durable), else the -errno of the first write error that lost events (-ETIMEDOUT
 * when the backend did not make them durable in time), or of fsync. sink_close(NULL)
 * returns 0. Any thread but the writers' loops, after the workers are done. */
int sink_close(sink_t *s);

#endif
