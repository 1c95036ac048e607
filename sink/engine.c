/* engine.c - the sink engine: per-worker chunk batching, one writer thread per sink, backpressure
 * through a bounded set of recycled chunks, retries, durability bookkeeping and accounting, over a
 * backend (backend.h; contract in sink.h). */
#include "sink/backend.h"
#include "sink/sink.h"

#include "base/counter.h"
#include "base/list.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#define IOV_BATCH SINK_BACKEND_IOV_MAX
#define BACKOFF_MIN_NS (10ull * 1000 * 1000)
#define BACKOFF_MAX_NS (1000ull * 1000 * 1000)
#define GIVE_UP_ATTEMPTS 3
#define LOG_INTERVAL_NS (1000ull * 1000 * 1000)
#define ROOM_WAIT_MS 50   /* longest wait after -EAGAIN before handing the bytes again */
#define ENDING_WAIT_MS 20 /* wake-up period while a destroy/close waits for durability */

typedef enum {
    CHUNK_REGULAR, /* one of the writer's max_pending_chunks, recycled */
    CHUNK_EXTRA,   /* taken while full, freed by the writer thread after its write */
    CHUNK_OVERSIZE /* one event larger than a chunk, freed after its write */
} chunk_kind_t;

typedef struct chunk {
    struct chunk *next;
    sink_writer_t *owner;
    size_t cap;         /* bytes of data[] */
    size_t len;         /* bytes filled (whole lines) */
    size_t off;         /* bytes already written (writer thread) */
    uint64_t nevents;   /* lines in data[0..len) */
    uint64_t first_seq; /* owner's sequence number of the first line */
    uint64_t end_pos;   /* stream position after its last byte (set once written) */
    chunk_kind_t kind;  /* decides who frees it */
    char data[];
} chunk_t;

struct srv_sink {
    sink_kind_t kind;
    const sink_backend_t *backend;
    void *backend_state; /* from backend->open; writer thread only once it runs */
    bool discard;        /* backend->discard: no chunks, no thread (the null sink) */
    size_t chunk_bytes;
    size_t max_chunks;
    size_t full_at;   /* a writer is full when its in-flight bytes reach this */
    size_t resume_at; /* ... and writable again at or below this */
    uint64_t flush_interval_ms;
    void *(*alloc_fn)(size_t size);
    void (*free_fn)(void *ptr);
    void (*log_fn)(void *log_ctx, const char *line);
    void *log_ctx;

    /* Shared between the workers, the writer thread and stats readers; guarded by lock. */
    pthread_mutex_t lock;
    pthread_cond_t drained; /* a destroying writer's in-flight bytes reached 0 */
    chunk_t *queue_head;    /* chunks handed over, in order, not yet taken */
    chunk_t *queue_tail;    /* by the writer thread */
    chunk_t *held_head;     /* written, waiting to be durable, in stream order */
    chunk_t *held_tail;
    uint64_t held_bytes; /* their len */
    base_list_t writers; /* live writer handles */
    uint32_t next_writer_id;
    int destroying;             /* writers in sink_writer_destroy */
    bool closing;               /* sink_close has begun */
    uint64_t close_deadline_ns; /* closing: held chunks are given up after this */
    uint64_t retired_events;    /* counters of destroyed writers */
    uint64_t retired_bytes;
    uint64_t retired_stalls;
    uint64_t retired_oversize;
    uint64_t retired_extra;

    /* Writer thread. wake is a semaphore because sem_post is async-signal-safe. */
    pthread_t thread;
    bool thread_started;
    sem_t wake;
    atomic_int reopen_requested; /* set by sink_reopen, any thread or signal handler */
    int first_loss_error;        /* writer thread; read by close after the join */
    int sync_error;              /* writer thread: the final sync's; read after the join */
    bool gave_up;                /* writer thread: a chunk was given up during close */
    uint64_t last_log_ns;        /* writer thread: rate limit of log lines */
    bool logged;
    uint64_t suppressed_logs;
    uint64_t stream_pos; /* writer thread: bytes the backend has taken */
    uint64_t durable_timeout_ns;

    /* Written by the writer thread, read by anyone (release/acquire so pending_bytes never goes
     * below what was appended before). */
    _Atomic uint64_t events_written;
    _Atomic uint64_t bytes_written;
    _Atomic uint64_t write_errors;
    _Atomic uint64_t events_lost;
    _Atomic uint64_t bytes_lost;
    _Atomic uint64_t reopens;
    _Atomic uint64_t reopens_unlinked;
    _Atomic uint64_t bytes_durable;  /* any thread (sink_backend_durable): only grows, by CAS */
    _Atomic uint64_t events_durable; /* under lock */

    char target[]; /* the backend's arg ("PATH" of file:PATH), for open and log lines */
};

struct sink_writer {
    sink_t *sink;
    base_link_t link; /* in sink->writers, guarded by sink->lock */
    uv_async_t async; /* writer thread -> owner: on_writable wake-up (not for discard) */
    uv_timer_t timer; /* with flush_interval_ms (not for discard) */
    bool has_timer;
    int open_handles;           /* closed by destroy; the struct is freed when this reaches 0 */
    void (*free_fn)(void *ptr); /* the sink's, kept here: the sink may be closed before */
    sink_writable_cb on_writable;
    void *ctx;
    uint32_t id;
    uint64_t durable_notified; /* owner: durable_seq at the last on_durable call */

    /* Owner loop thread only. */
    chunk_t *cur;       /* chunk being filled, or NULL */
    chunk_t *free_list; /* regular chunks ready for reuse */
    size_t nregular;    /* regular chunks allocated, <= max_chunks */

    /* Written by the owner only (load + store, no read-modify-write), read by anyone. */
    _Atomic uint64_t events;
    _Atomic uint64_t bytes;
    _Atomic uint64_t stalls;
    _Atomic uint64_t oversize;
    _Atomic uint64_t extra;

    /* Guarded by sink->lock. full is written by the owner only, so the owner reads it bare. */
    chunk_t *returned; /* regular chunks written and given back by the writer thread */
    size_t inflight;   /* bytes (chunk capacities) handed over and not yet returned */
    int full;
    bool async_pending;
    bool destroying;
    uint64_t deadline_ns; /* destroying: held chunks are given up after this */
    sink_writable_cb on_durable;
    void *durable_ctx;
    /* Written under sink->lock (by whoever settles chunks), read by anyone. */
    _Atomic uint64_t durable_seq;
    _Atomic uint64_t lost;
    _Atomic uint64_t lost_first; /* lowest and highest sequence given up (0: none) */
    _Atomic uint64_t lost_last;
};

static void bump(_Atomic uint64_t *counter, uint64_t n)
{
    base_counter_add(counter, n);
}

static uint64_t get(_Atomic uint64_t *counter)
{
    return atomic_load_explicit(counter, memory_order_relaxed);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void sink_config_init(sink_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->spec = "null";
    cfg->chunk_bytes = SINK_DEFAULT_CHUNK_BYTES;
    cfg->max_pending_chunks = SINK_DEFAULT_MAX_PENDING_CHUNKS;
    cfg->flush_interval_ms = SINK_DEFAULT_FLUSH_INTERVAL_MS;
    cfg->durable_timeout_ms = SINK_DEFAULT_DURABLE_TIMEOUT_MS;
}

/* "//HOST:PORT[,HOST:PORT...]/SUBJECT": at least one host, a non-empty subject without spaces. */
static bool nats_arg_ok(const char *arg)
{
    if (arg == NULL || strncmp(arg, "//", 2) != 0) {
        return false;
    }
    const char *hosts = arg + 2;
    const char *slash = strchr(hosts, '/');
    if (slash == NULL || slash == hosts || slash[1] == '\0') {
        return false;
    }
    for (const char *p = slash + 1; *p != '\0'; p++) {
        if (*p == ' ' || *p == '\t' || *p == '/') {
            return false;
        }
    }
    return true;
}

int sink_parse_spec(const char *spec, sink_kind_t *kind, const char **path)
{
    if (spec == NULL) {
        return -EINVAL;
    }
    /* The scheme is the text before the first ':', or the whole spec when it has none. */
    const char *colon = strchr(spec, ':');
    size_t slen = colon != NULL ? (size_t)(colon - spec) : strlen(spec);
    const char *arg = colon != NULL ? colon + 1 : NULL;
    sink_kind_t k;
    if (slen == 4 && strncmp(spec, "null", 4) == 0 && arg == NULL) {
        k = SINK_NULL;
    } else if (slen == 4 && strncmp(spec, "file", 4) == 0 && arg != NULL && *arg != '\0') {
        k = SINK_FILE;
    } else if (slen == 4 && strncmp(spec, "nats", 4) == 0 && nats_arg_ok(arg)) {
        k = SINK_NATS;
    } else {
        return -EINVAL;
    }
    if (kind != NULL) {
        *kind = k;
    }
    if (path != NULL) {
        *path = arg;
    }
    return 0;
}

/* The backend of a kind: a switch, not a registry (issue 9). */
static const sink_backend_t *backend_of(sink_kind_t kind)
{
    switch (kind) {
    case SINK_NULL:
        return &sink_backend_null;
    case SINK_FILE:
        return &sink_backend_file;
    case SINK_NATS:
        return &sink_backend_nats;
    }
    return NULL;
}

/* ---- logging and the backend's calls into the engine ---- */

void sink_backend_log(sink_t *s, bool always, const char *fmt, ...)
{
    uint64_t now = now_ns();
    if (!always && s->logged && now - s->last_log_ns < LOG_INTERVAL_NS) {
        s->suppressed_logs++;
        return;
    }
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof(line) && s->suppressed_logs > 0) {
        snprintf(line + n, sizeof(line) - (size_t)n, " (%llu similar suppressed)",
                 (unsigned long long)s->suppressed_logs);
    }
    s->suppressed_logs = 0;
    s->logged = true;
    s->last_log_ns = now;
    if (s->log_fn != NULL) {
        s->log_fn(s->log_ctx, line);
    } else {
        fprintf(stderr, "ingestd: sink: %s\n", line);
    }
}

void sink_backend_count(sink_t *s, sink_count_t what)
{
    switch (what) {
    case SINK_COUNT_ERROR:
        atomic_fetch_add_explicit(&s->write_errors, 1, memory_order_relaxed);
        break;
    case SINK_COUNT_REOPEN_UNLINKED:
        atomic_fetch_add_explicit(&s->reopens_unlinked, 1, memory_order_relaxed);
        /* fall through: also a reopen */
    case SINK_COUNT_REOPEN:
        atomic_fetch_add_explicit(&s->reopens, 1, memory_order_relaxed);
        break;
    }
}

void sink_backend_wake(sink_t *s)
{
    sem_post(&s->wake);
}

static void free_chunks(sink_t *s, chunk_t *c);

/* Settles one chunk that is done with (durable, or given up when lost): advances its writer's
 * durable sequence, gives a regular chunk back to its writer and puts the others on *to_free,
 * wakes a full writer that has room again, a durable callback, and a destroy waiting for its
 * chunks. Lock held. */
static void settle_locked(sink_t *s, chunk_t *c, bool lost, chunk_t **to_free)
{
    sink_writer_t *w = c->owner;
    w->inflight -= c->cap;
    if (c->nevents > 0) {
        uint64_t last = c->first_seq + c->nevents - 1;
        if (lost) {
            atomic_store_explicit(&w->lost, atomic_load(&w->lost) + c->nevents,
                                  memory_order_relaxed);
            uint64_t lf = atomic_load_explicit(&w->lost_first, memory_order_relaxed);
            if (lf == 0 || c->first_seq < lf) {
                atomic_store_explicit(&w->lost_first, c->first_seq, memory_order_relaxed);
            }
            if (last > atomic_load_explicit(&w->lost_last, memory_order_relaxed)) {
                atomic_store_explicit(&w->lost_last, last, memory_order_relaxed);
            }
        } else {
            atomic_store_explicit(&s->events_durable, atomic_load(&s->events_durable) + c->nevents,
                                  memory_order_relaxed);
        }
        /* After the lost range: whoever acquires the new durable_seq sees the loss too. */
        if (last > atomic_load_explicit(&w->durable_seq, memory_order_relaxed)) {
            atomic_store_explicit(&w->durable_seq, last, memory_order_release);
        }
    }
    if (c->kind == CHUNK_REGULAR) {
        c->next = w->returned;
        w->returned = c;
    } else {
        c->next = *to_free;
        *to_free = c;
    }
    bool wake = (w->full && w->inflight <= s->resume_at) || w->on_durable != NULL;
    if (wake && !w->async_pending && !w->destroying) {
        w->async_pending = true;
        uv_async_send(&w->async);
    }
    if (w->destroying && w->inflight == 0) {
        pthread_cond_broadcast(&s->drained);
    }
}

/* Settles the held chunks that pos covers. Lock held. */
static void release_held_locked(sink_t *s, uint64_t pos, chunk_t **to_free)
{
    while (s->held_head != NULL && s->held_head->end_pos <= pos) {
        chunk_t *c = s->held_head;
        s->held_head = c->next;
        if (s->held_head == NULL) {
            s->held_tail = NULL;
        }
        s->held_bytes -= c->len;
        settle_locked(s, c, false, to_free);
    }
}

void sink_backend_durable(sink_t *s, uint64_t pos)
{
    uint64_t cur = atomic_load_explicit(&s->bytes_durable, memory_order_relaxed);
    bool advanced = false;
    while (pos > cur) {
        if (atomic_compare_exchange_weak_explicit(&s->bytes_durable, &cur, pos,
                                                  memory_order_release, memory_order_relaxed)) {
            advanced = true;
            break;
        }
    }
    if (!advanced) {
        return;
    }
    chunk_t *to_free = NULL;
    pthread_mutex_lock(&s->lock);
    release_held_locked(s, atomic_load_explicit(&s->bytes_durable, memory_order_acquire), &to_free);
    pthread_mutex_unlock(&s->lock);
    free_chunks(s, to_free);
}

/* ---- writer thread ---- */

static void reopen_backend(sink_t *s)
{
    if (s->backend->reopen == NULL) {
        return;
    }
    int rc = s->backend->reopen(s->backend_state);
    if (rc != 0) {
        atomic_fetch_add_explicit(&s->write_errors, 1, memory_order_relaxed);
        sink_backend_log(s, false, "reopen %s: %s (still writing to the previous file)", s->target,
                         strerror(-rc));
        return;
    }
    atomic_fetch_add_explicit(&s->reopens, 1, memory_order_relaxed);
}

/* Written chunks (end_pos set): settled at once when the backend already reported them durable,
 * else held until it does. */
static void hold_chunks(sink_t *s, chunk_t **cs, size_t n)
{
    chunk_t *to_free = NULL;
    pthread_mutex_lock(&s->lock);
    uint64_t durable = atomic_load_explicit(&s->bytes_durable, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        chunk_t *c = cs[i];
        if (c->end_pos <= durable && s->held_head == NULL) {
            settle_locked(s, c, false, &to_free);
            continue;
        }
        c->next = NULL;
        if (s->held_tail != NULL) {
            s->held_tail->next = c;
        } else {
            s->held_head = c;
        }
        s->held_tail = c;
        s->held_bytes += c->len;
    }
    release_held_locked(s, durable, &to_free);
    pthread_mutex_unlock(&s->lock);
    free_chunks(s, to_free);
}

/* Gives up one chunk (never written, or written and never durable): counted lost. */
static void give_up_chunks(sink_t *s, chunk_t **cs, size_t n)
{
    chunk_t *to_free = NULL;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < n; i++) {
        settle_locked(s, cs[i], true, &to_free);
    }
    pthread_mutex_unlock(&s->lock);
    free_chunks(s, to_free);
}

/* Gives up the held chunks whose wait is over: all once close's deadline has passed, else those
 * of writers being destroyed past theirs. Returns true when some are still held. */
static bool expire_held(sink_t *s)
{
    uint64_t now = now_ns();
    chunk_t *to_free = NULL;
    uint64_t events = 0;
    pthread_mutex_lock(&s->lock);
    bool all = s->closing && now >= s->close_deadline_ns;
    chunk_t **pp = &s->held_head;
    chunk_t *prev = NULL;
    while (*pp != NULL) {
        chunk_t *c = *pp;
        sink_writer_t *w = c->owner;
        if (all || (w->destroying && now >= w->deadline_ns)) {
            *pp = c->next;
            s->held_bytes -= c->len;
            events += c->nevents;
            settle_locked(s, c, true, &to_free);
            continue;
        }
        prev = c;
        pp = &c->next;
    }
    s->held_tail = prev;
    bool left = s->held_head != NULL;
    if (events > 0) {
        /* Counted before the lock is released: settle_locked may have woken a destroying
         * writer, which reads the figures as soon as it returns. */
        atomic_fetch_add_explicit(&s->events_lost, events, memory_order_relaxed);
        if (s->first_loss_error == 0) {
            s->first_loss_error = -ETIMEDOUT;
        }
        s->gave_up = true;
    }
    pthread_mutex_unlock(&s->lock);
    free_chunks(s, to_free);
    if (events > 0) {
        sink_backend_log(s, true,
                         "gave up on %llu written events that %s did not make durable in time",
                         (unsigned long long)events, s->target);
    }
    return left;
}

/* Whether the head chunk's wait for room is over (its writer or the sink is ending and the
 * deadline has passed). */
static bool room_wait_over(sink_t *s, chunk_t *head)
{
    uint64_t now = now_ns();
    pthread_mutex_lock(&s->lock);
    bool over = (s->closing && now >= s->close_deadline_ns) ||
                (head->owner->destroying && now >= head->owner->deadline_ns);
    pthread_mutex_unlock(&s->lock);
    return over;
}

static void poll_backend(sink_t *s, int *next_ms)
{
    *next_ms = -1;
    if (s->backend->poll != NULL) {
        *next_ms = s->backend->poll(s->backend_state);
    }
}

/* Sleeps for the backoff, waking early when posted (close, destroy, reopen, new chunks). */
static void backoff_wait(sink_t *s, uint64_t ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t t = (uint64_t)ts.tv_nsec + ns;
    ts.tv_sec += (time_t)(t / 1000000000ull);
    ts.tv_nsec = (long)(t % 1000000000ull);
    while (sem_timedwait(&s->wake, &ts) != 0 && errno == EINTR) {
    }
}

/* Waits for a wake-up or at most ms milliseconds (ms < 0: no limit). */
static void wait_ms(sink_t *s, int ms)
{
    if (ms < 0) {
        while (sem_wait(&s->wake) != 0 && errno == EINTR) {
        }
        return;
    }
    backoff_wait(s, (uint64_t)ms * 1000000ull);
}

/* Handles a failed write of the chunk at the head of the batch. Returns true when that chunk
 * is given up (only while its writer is being destroyed or the sink closed). */
static bool on_write_error(sink_t *s, chunk_t *head, int err, int *attempts, uint64_t *backoff)
{
    atomic_fetch_add_explicit(&s->write_errors, 1, memory_order_relaxed);
    sink_backend_log(s, false, "write %s: %s (retrying)", s->target, strerror(err));
    pthread_mutex_lock(&s->lock);
    bool ending = s->closing || head->owner->destroying;
    pthread_mutex_unlock(&s->lock);
    (*attempts)++;
    if (ending && (s->gave_up || *attempts >= GIVE_UP_ATTEMPTS)) {
        s->gave_up = true;
        if (s->first_loss_error == 0) {
            s->first_loss_error = -err;
        }
        atomic_fetch_add_explicit(&s->events_lost, head->nevents, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->bytes_lost, head->len - head->off, memory_order_release);
        sink_backend_log(s, false, "gave up on %llu events (%zu bytes) after write errors: %s",
                         (unsigned long long)head->nevents, head->len - head->off, strerror(err));
        return true;
    }
    if (err == EMSGSIZE) {
        if (s->first_loss_error == 0) {
            s->first_loss_error = -err;
        }
        atomic_fetch_add_explicit(&s->events_lost, head->nevents, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->bytes_lost, head->len - head->off, memory_order_release);
        sink_backend_log(s, true, "gave up on %llu events (%zu bytes) %s can never take: %s",
                         (unsigned long long)head->nevents, head->len - head->off, s->target,
                         strerror(err));
        return true;
    }
    if (err == EBADF || atomic_exchange(&s->reopen_requested, 0)) {
        reopen_backend(s);
    }
    backoff_wait(s, *backoff);
    *backoff = *backoff * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : *backoff * 2;
    return false;
}

/* Marks r bytes of cs[0..n) written, in order, from stream position *pos on. Returns how many
 * chunks are now complete, each with its end_pos (a partial one keeps its offset and is handed
 * to write again). */
static size_t consume(chunk_t **cs, size_t n, size_t r, uint64_t *events, uint64_t *pos)
{
    size_t done = 0;
    *events = 0;
    while (done < n) {
        size_t rem = cs[done]->len - cs[done]->off;
        if (r < rem) {
            cs[done]->off += r;
            *pos += r;
            break;
        }
        r -= rem;
        *pos += rem;
        cs[done]->off = cs[done]->len;
        cs[done]->end_pos = *pos;
        *events += cs[done]->nevents;
        done++;
    }
    return done;
}

/* Writes a list of chunks in order through the backend, retrying on errors (see sink.h). */
static void write_batch(sink_t *s, chunk_t *c)
{
    struct iovec iov[IOV_BATCH];
    sink_backend_span_t span[IOV_BATCH];
    chunk_t *cs[IOV_BATCH];
    int attempts = 0;
    uint64_t backoff = BACKOFF_MIN_NS;
    while (c != NULL) {
        size_t n = 0;
        for (chunk_t *p = c; p != NULL && n < IOV_BATCH; p = p->next) {
            iov[n].iov_base = p->data + p->off;
            iov[n].iov_len = p->len - p->off;
            span[n].writer = p->owner->id;
            span[n].first_seq = p->first_seq;
            span[n].nevents = p->nevents;
            span[n].off = p->off;
            cs[n++] = p;
        }
        chunk_t *after = cs[n - 1]->next;
        ssize_t r = s->backend->write(s->backend_state, iov, span, (int)n);
        if (r == -EAGAIN) {
            /* No room in the backend (in-flight bound): not an error; wait for acks. */
            if (room_wait_over(s, c)) {
                chunk_t *next = c->next;
                atomic_fetch_add_explicit(&s->events_lost, c->nevents, memory_order_relaxed);
                atomic_fetch_add_explicit(&s->bytes_lost, c->len - c->off, memory_order_release);
                if (s->first_loss_error == 0) {
                    s->first_loss_error = -ETIMEDOUT;
                }
                s->gave_up = true;
                sink_backend_log(s, false, "gave up on %llu events %s had no room for in time",
                                 (unsigned long long)c->nevents, s->target);
                give_up_chunks(s, &c, 1);
                c = next;
                continue;
            }
            int next_ms;
            poll_backend(s, &next_ms);
            expire_held(s);
            wait_ms(s, next_ms >= 0 && next_ms < ROOM_WAIT_MS ? next_ms : ROOM_WAIT_MS);
            continue;
        }
        if (r <= 0) {
            int err = r < 0 ? (int)-r : EIO; /* no progress on non-empty chunks: an error too */
            if (err == EINTR) {
                continue;
            }
            if (on_write_error(s, c, err, &attempts, &backoff)) {
                chunk_t *next = c->next;
                give_up_chunks(s, &c, 1);
                c = next;
                attempts = 0;
            }
            poll_backend(s, &(int){0});
            continue;
        }
        attempts = 0;
        backoff = BACKOFF_MIN_NS;
        uint64_t events;
        size_t done = consume(cs, n, (size_t)r, &events, &s->stream_pos);
        c = done < n ? cs[done] : after;
        atomic_fetch_add_explicit(&s->events_written, events, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->bytes_written, (uint64_t)r, memory_order_release);
        hold_chunks(s, cs, done);
    }
    if (s->backend->commit != NULL) {
        int rc = s->backend->commit(s->backend_state);
        if (rc != 0) {
            atomic_fetch_add_explicit(&s->write_errors, 1, memory_order_relaxed);
            sink_backend_log(s, false, "sync %s: %s (retrying after the next batch)", s->target,
                             strerror(-rc));
        }
    }
}

/* The last thing the writer thread does: sync what was written, so close can report it. */
static void final_sync(sink_t *s)
{
    if (s->backend->sync == NULL) {
        return;
    }
    int rc = s->backend->sync(s->backend_state);
    if (rc != 0) {
        atomic_fetch_add_explicit(&s->write_errors, 1, memory_order_relaxed);
        sink_backend_log(s, true, "sync %s: %s", s->target, strerror(-rc));
        s->sync_error = rc;
    }
}

static void *writer_main(void *arg)
{
    sink_t *s = arg;
    pthread_setname_np(pthread_self(), "ingestd-sink"); /* for top -H and perf */
    for (;;) {
        int next_ms;
        poll_backend(s, &next_ms);
        pthread_mutex_lock(&s->lock);
        chunk_t *batch = s->queue_head;
        s->queue_head = s->queue_tail = NULL;
        bool closing = s->closing;
        bool ending = closing || s->destroying > 0;
        pthread_mutex_unlock(&s->lock);
        /* After taking the batch: a chunk appended after sink_reopen returned is in this
         * batch or a later one, so it goes to the new file. */
        if (atomic_exchange(&s->reopen_requested, 0)) {
            reopen_backend(s);
        }
        if (batch != NULL) {
            write_batch(s, batch);
            continue;
        }
        bool held = ending && expire_held(s);
        if (closing && !held) {
            break;
        }
        if (held && (next_ms < 0 || next_ms > ENDING_WAIT_MS)) {
            next_ms = ENDING_WAIT_MS; /* re-check the deadlines */
        }
        wait_ms(s, next_ms);
    }
    final_sync(s);
    return NULL;
}

/* ---- sink ---- */

sink_kind_t sink_kind(const sink_t *s)
{
    return s->kind;
}

size_t sink_writer_bound(const sink_t *s)
{
    return s->chunk_bytes * s->max_chunks;
}

static void sink_free(sink_t *s)
{
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->drained);
    sem_destroy(&s->wake);
    s->free_fn(s);
}

int sink_create(const sink_config_t *cfg, sink_t **out)
{
    sink_kind_t kind;
    const char *arg;
    if (cfg == NULL || out == NULL || sink_parse_spec(cfg->spec, &kind, &arg) != 0) {
        return -EINVAL;
    }
    const sink_backend_t *b = backend_of(kind);
    sink_config_t c = *cfg;
    if (kind == SINK_NATS && cfg->nats.batch_bytes != 0) {
        /* One message is at most one chunk; the writer's in-flight bound stays as configured. */
        size_t bound =
            (cfg->chunk_bytes ? cfg->chunk_bytes : SINK_DEFAULT_CHUNK_BYTES) *
            (cfg->max_pending_chunks ? cfg->max_pending_chunks : SINK_DEFAULT_MAX_PENDING_CHUNKS);
        c.chunk_bytes = cfg->nats.batch_bytes;
        c.max_pending_chunks = bound / c.chunk_bytes > 4 ? bound / c.chunk_bytes : 4;
    }
    int rc = sink_create_backend(&c, b, arg != NULL ? arg : b->name, out);
    if (rc == 0) {
        (*out)->kind = kind;
    }
    return rc;
}

/* The writer thread starts with every signal blocked: SIGHUP/SIGTERM go to the threads that
 * handle them, and a write to a closed FIFO returns EPIPE instead of killing the process. */
static int start_writer(sink_t *s)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = -pthread_create(&s->thread, NULL, writer_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    s->thread_started = rc == 0;
    return rc;
}

/* A new sink from a checked config, with its lock, condition and semaphore; no backend state
 * and no thread yet. NULL when the allocation fails. */
static sink_t *sink_new(const sink_config_t *cfg, const sink_backend_t *b, const char *arg,
                        size_t chunk, size_t max)
{
    void *(*alloc_fn)(size_t) = cfg->alloc_fn ? cfg->alloc_fn : malloc;
    size_t alen = strlen(arg) + 1;
    sink_t *s = alloc_fn(sizeof(*s) + alen);
    if (s == NULL) {
        return NULL;
    }
    memset(s, 0, sizeof(*s));
    memcpy(s->target, arg, alen);
    s->kind = SINK_NULL;
    s->backend = b;
    s->discard = b->discard;
    s->chunk_bytes = chunk;
    s->max_chunks = max;
    s->full_at = chunk * (max - 1);
    s->resume_at = s->full_at / 2;
    s->flush_interval_ms = cfg->flush_interval_ms;
    s->durable_timeout_ns =
        (cfg->durable_timeout_ms ? cfg->durable_timeout_ms : SINK_DEFAULT_DURABLE_TIMEOUT_MS) *
        1000000ull;
    s->alloc_fn = alloc_fn;
    s->free_fn = cfg->free_fn ? cfg->free_fn : free;
    s->log_fn = cfg->log_fn;
    s->log_ctx = cfg->log_ctx;
    atomic_init(&s->reopen_requested, 0);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->drained, NULL);
    sem_init(&s->wake, 0, 0);
    return s;
}

int sink_create_backend(const sink_config_t *cfg, const sink_backend_t *b, const char *arg,
                        sink_t **out)
{
    if (cfg == NULL || b == NULL || arg == NULL || out == NULL) {
        return -EINVAL;
    }
    size_t chunk = cfg->chunk_bytes ? cfg->chunk_bytes : SINK_DEFAULT_CHUNK_BYTES;
    size_t max =
        cfg->max_pending_chunks ? cfg->max_pending_chunks : SINK_DEFAULT_MAX_PENDING_CHUNKS;
    if (max < 2 || chunk > (SIZE_MAX - sizeof(chunk_t)) / max) {
        return -EINVAL;
    }
    sink_t *s = sink_new(cfg, b, arg, chunk, max);
    if (s == NULL) {
        return -ENOMEM;
    }
    int rc = 0;
    if (!s->discard) {
        sink_backend_opts_t o = {
            .sink = s, .alloc_fn = s->alloc_fn, .free_fn = s->free_fn, .cfg = cfg};
        rc = b->open(s->target, &o, &s->backend_state);
        if (rc == 0 && (rc = start_writer(s)) != 0) {
            b->close(s->backend_state);
        }
    }
    if (rc != 0) {
        sink_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void sink_reopen(sink_t *s)
{
    if (s == NULL || s->discard) {
        return;
    }
    atomic_store(&s->reopen_requested, 1);
    sem_post(&s->wake);
}

void sink_stats(sink_t *s, sink_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    /* Written figures first (acquire): everything they cover was appended before, so the
     * appended sums read next are at least as large. */
    out->bytes_written = atomic_load_explicit(&s->bytes_written, memory_order_acquire);
    uint64_t bytes_lost = atomic_load_explicit(&s->bytes_lost, memory_order_acquire);
    out->bytes_durable = atomic_load_explicit(&s->bytes_durable, memory_order_acquire);
    out->events_written = get(&s->events_written);
    out->events_lost = get(&s->events_lost);
    out->write_errors = get(&s->write_errors);
    out->reopens = get(&s->reopens);
    out->reopens_unlinked = get(&s->reopens_unlinked);
    pthread_mutex_lock(&s->lock);
    out->events_durable = get(&s->events_durable);
    out->undurable_bytes = s->held_bytes;
    out->events_appended = s->retired_events;
    out->bytes_appended = s->retired_bytes;
    out->stalls = s->retired_stalls;
    out->oversize = s->retired_oversize;
    out->extra_chunks = s->retired_extra;
    for (base_link_t *l = s->writers.head; l != NULL; l = l->next) {
        sink_writer_t *w = BASE_CONTAINER(l, sink_writer_t, link);
        out->events_appended += get(&w->events);
        out->bytes_appended += get(&w->bytes);
        out->stalls += get(&w->stalls);
        out->oversize += get(&w->oversize);
        out->extra_chunks += get(&w->extra);
    }
    pthread_mutex_unlock(&s->lock);
    if (!s->discard && out->bytes_appended > out->bytes_written + bytes_lost) {
        out->pending_bytes = out->bytes_appended - out->bytes_written - bytes_lost;
    }
    if (s->discard) {
        out->events_durable = out->events_appended;
    }
    if (!s->discard && s->backend->stats != NULL) {
        s->backend->stats(s->backend_state, out);
    }
}

int sink_ready(sink_t *s)
{
    if (s->discard || s->backend->ready == NULL) {
        return 1;
    }
    return s->backend->ready(s->backend_state);
}

int sink_close(sink_t *s)
{
    if (s == NULL) {
        return 0;
    }
    assert(s->writers.head == NULL && "destroy every writer before sink_close");
    int rc = 0;
    if (!s->discard) {
        pthread_mutex_lock(&s->lock);
        s->closing = true;
        s->close_deadline_ns = now_ns() + s->durable_timeout_ns;
        pthread_mutex_unlock(&s->lock);
        sem_post(&s->wake);
        pthread_join(s->thread, NULL);
        rc = s->first_loss_error != 0 ? s->first_loss_error : s->sync_error;
        s->backend->close(s->backend_state);
        uint64_t lost = get(&s->events_lost);
        if (lost > 0) {
            sink_backend_log(s, true, "closed with %llu events not stored (lost)",
                             (unsigned long long)lost);
        }
    }
    sink_free(s);
    return rc;
}

/* ---- writer handles (owner loop thread) ---- */

static chunk_t *chunk_new(sink_writer_t *w, size_t cap, chunk_kind_t kind)
{
    chunk_t *c = w->sink->alloc_fn(sizeof(chunk_t) + cap);
    if (c == NULL) {
        return NULL;
    }
    c->next = NULL;
    c->owner = w;
    c->cap = cap;
    c->len = 0;
    c->off = 0;
    c->nevents = 0;
    c->kind = kind;
    return c;
}

static void free_chunks(sink_t *s, chunk_t *c)
{
    /* Also called with a list linked through next by settle_locked. */
    while (c != NULL) {
        chunk_t *next = c->next;
        s->free_fn(c);
        c = next;
    }
}

/* Moves the chunks the writer thread gave back onto the owner's free list. Lock held. */
static void take_returned(sink_writer_t *w)
{
    while (w->returned != NULL) {
        chunk_t *c = w->returned;
        w->returned = c->next;
        c->next = w->free_list;
        w->free_list = c;
    }
}

/* Queues a non-empty chunk for the writer thread; updates in-flight bytes and fullness. */
static void hand_off(sink_writer_t *w, chunk_t *c)
{
    sink_t *s = w->sink;
    c->next = NULL;
    c->off = 0;
    pthread_mutex_lock(&s->lock);
    bool wake = s->queue_head == NULL;
    if (wake) {
        s->queue_head = c;
    } else {
        s->queue_tail->next = c;
    }
    s->queue_tail = c;
    w->inflight += c->cap;
    if (!w->full && w->inflight >= s->full_at) {
        w->full = 1;
        bump(&w->stalls, 1);
    }
    take_returned(w);
    pthread_mutex_unlock(&s->lock);
    if (wake) {
        sem_post(&s->wake);
    }
}

/* An empty chunk to fill: recycled, else a new regular one up to the bound, else an extra one. */
static chunk_t *acquire(sink_writer_t *w)
{
    sink_t *s = w->sink;
    if (w->free_list == NULL) {
        pthread_mutex_lock(&s->lock);
        take_returned(w);
        pthread_mutex_unlock(&s->lock);
    }
    chunk_t *c = w->free_list;
    if (c != NULL) {
        w->free_list = c->next;
        c->next = NULL;
        c->len = 0;
        c->nevents = 0;
        return c;
    }
    if (w->nregular < s->max_chunks) {
        c = chunk_new(w, s->chunk_bytes, CHUNK_REGULAR);
        if (c != NULL) {
            w->nregular++;
        }
        return c;
    }
    c = chunk_new(w, s->chunk_bytes, CHUNK_EXTRA);
    if (c != NULL) {
        bump(&w->extra, 1);
    }
    return c;
}

static void on_timer(uv_timer_t *t)
{
    sink_writer_flush(t->data);
}

static void on_async(uv_async_t *a)
{
    sink_writer_t *w = a->data;
    sink_t *s = w->sink;
    pthread_mutex_lock(&s->lock);
    w->async_pending = false;
    bool resume = w->full && w->inflight <= s->resume_at;
    if (resume) {
        w->full = 0;
    }
    sink_writable_cb on_durable = w->on_durable;
    void *durable_ctx = w->durable_ctx;
    pthread_mutex_unlock(&s->lock);
    if (resume && w->on_writable != NULL) {
        w->on_writable(w->ctx);
    }
    uint64_t d = atomic_load_explicit(&w->durable_seq, memory_order_acquire);
    if (on_durable != NULL && d != w->durable_notified) {
        w->durable_notified = d;
        on_durable(durable_ctx);
    }
}

static void on_handle_close(uv_handle_t *h)
{
    sink_writer_t *w = h->data;
    if (--w->open_handles == 0) {
        w->free_fn(w);
    }
}

/* The writer thread's wake-up and the flush timer, both unreferenced. 0 or a libuv error. */
static int init_handles(sink_writer_t *w, uv_loop_t *loop)
{
    int rc = uv_async_init(loop, &w->async, on_async);
    if (rc != 0) {
        return rc;
    }
    w->async.data = w;
    uv_unref((uv_handle_t *)&w->async);
    w->open_handles = 1;
    if (w->sink->flush_interval_ms > 0) {
        uv_timer_init(loop, &w->timer); /* cannot fail: it only links the handle */
        w->timer.data = w;
        uv_unref((uv_handle_t *)&w->timer);
        w->has_timer = true;
        w->open_handles++;
    }
    return 0;
}

int sink_writer_create(sink_t *s, uv_loop_t *loop, sink_writable_cb on_writable, void *ctx,
                       sink_writer_t **out)
{
    if (s == NULL || out == NULL || (!s->discard && loop == NULL)) {
        return -EINVAL;
    }
    sink_writer_t *w = s->alloc_fn(sizeof(*w));
    if (w == NULL) {
        return -ENOMEM;
    }
    memset(w, 0, sizeof(*w));
    w->sink = s;
    w->free_fn = s->free_fn;
    w->on_writable = on_writable;
    w->ctx = ctx;
    if (!s->discard) {
        int rc = init_handles(w, loop);
        if (rc != 0) {
            s->free_fn(w);
            return rc;
        }
    }
    pthread_mutex_lock(&s->lock);
    w->id = s->next_writer_id++;
    base_list_push_front(&s->writers, &w->link);
    pthread_mutex_unlock(&s->lock);
    *out = w;
    return 0;
}

uint64_t sink_writer_seq(const sink_writer_t *w)
{
    return atomic_load_explicit(&w->events, memory_order_relaxed);
}

uint64_t sink_writer_durable(const sink_writer_t *w)
{
    if (w->sink->discard) {
        return sink_writer_seq(w);
    }
    return atomic_load_explicit(&w->durable_seq, memory_order_acquire);
}

uint64_t sink_writer_lost(const sink_writer_t *w)
{
    return atomic_load_explicit(&w->lost, memory_order_relaxed);
}

int sink_writer_lost_any(const sink_writer_t *w, uint64_t first, uint64_t last)
{
    uint64_t lf = atomic_load_explicit(&w->lost_first, memory_order_relaxed);
    return lf != 0 && lf <= last &&
           first <= atomic_load_explicit(&w->lost_last, memory_order_relaxed);
}

void sink_writer_set_durable_cb(sink_writer_t *w, sink_writable_cb on_durable, void *ctx)
{
    sink_t *s = w->sink;
    if (s->discard) {
        return;
    }
    pthread_mutex_lock(&s->lock);
    w->on_durable = on_durable;
    w->durable_ctx = ctx;
    pthread_mutex_unlock(&s->lock);
}

static int append_oversize(sink_writer_t *w, const char *event, size_t len)
{
    chunk_t *big = chunk_new(w, len + 1, CHUNK_OVERSIZE);
    if (big == NULL) {
        return -ENOMEM;
    }
    memcpy(big->data, event, len);
    big->data[len] = '\n';
    big->len = len + 1;
    big->nevents = 1;
    big->first_seq = get(&w->events) + 1;
    if (w->cur != NULL && w->cur->len > 0) {
        hand_off(w, w->cur);
        w->cur = NULL;
    }
    hand_off(w, big);
    bump(&w->oversize, 1);
    return 0;
}

/* Copies one event and its newline into the current chunk, handing a full one over first.
 * Returns 0, or -ENOMEM (the event was not kept). */
static int copy_event(sink_writer_t *w, const char *event, size_t len)
{
    sink_t *s = w->sink;
    size_t need = len + 1;
    chunk_t *c = w->cur;
    if (c == NULL || c->cap - c->len < need) {
        if (need > s->chunk_bytes) {
            return append_oversize(w, event, len);
        }
        if (c != NULL) {
            hand_off(w, c);
            w->cur = NULL;
        }
        c = acquire(w);
        if (c == NULL) {
            return -ENOMEM;
        }
        w->cur = c;
    }
    if (c->len == 0) {
        c->first_seq = get(&w->events) + 1;
        if (w->has_timer && !uv_is_active((uv_handle_t *)&w->timer)) {
            uv_timer_start(&w->timer, on_timer, s->flush_interval_ms, 0);
        }
    }
    memcpy(c->data + c->len, event, len);
    c->data[c->len + len] = '\n';
    c->len += need;
    c->nevents++;
    return 0;
}

int sink_append(sink_writer_t *w, const char *event, size_t len)
{
    if (!w->sink->discard) {
        int rc = copy_event(w, event, len);
        if (rc != 0) {
            return rc;
        }
    }
    bump(&w->events, 1);
    bump(&w->bytes, len + 1);
    return w->full;
}

int sink_writer_full(const sink_writer_t *w)
{
    return w->full;
}

void sink_writer_flush(sink_writer_t *w)
{
    if (w->cur != NULL && w->cur->len > 0) {
        hand_off(w, w->cur);
        w->cur = NULL;
    }
}

/* Unlinks a writer from the sink's list and keeps its counters in the sink's. Lock held. */
static void retire(sink_t *s, sink_writer_t *w)
{
    base_list_unlink(&s->writers, &w->link);
    s->retired_events += get(&w->events);
    s->retired_bytes += get(&w->bytes);
    s->retired_stalls += get(&w->stalls);
    s->retired_oversize += get(&w->oversize);
    s->retired_extra += get(&w->extra);
}

/* Flushes and waits (s->lock held on return) until nothing of w is in flight: durable, or given
 * up after durable_timeout_ms. */
static void drain_locked(sink_writer_t *w)
{
    sink_t *s = w->sink;
    sink_writer_flush(w);
    pthread_mutex_lock(&s->lock);
    if (!s->discard && !w->destroying) {
        w->destroying = true;
        w->deadline_ns = now_ns() + s->durable_timeout_ns;
        s->destroying++;
        sem_post(&s->wake); /* a writer thread in a retry backoff re-checks give-up now */
        while (w->inflight > 0) {
            pthread_cond_wait(&s->drained, &s->lock);
        }
        s->destroying--;
        take_returned(w);
    }
}

uint64_t sink_writer_settle(sink_writer_t *w)
{
    drain_locked(w);
    pthread_mutex_unlock(&w->sink->lock);
    return sink_writer_durable(w);
}

void sink_writer_destroy(sink_writer_t *w)
{
    if (w == NULL) {
        return;
    }
    sink_t *s = w->sink;
    drain_locked(w);
    retire(s, w);
    pthread_mutex_unlock(&s->lock);

    free_chunks(s, w->cur);
    w->cur = NULL;
    free_chunks(s, w->free_list);
    w->free_list = NULL;
    if (w->open_handles == 0) {
        s->free_fn(w);
        return;
    }
    uv_close((uv_handle_t *)&w->async, on_handle_close);
    if (w->has_timer) {
        uv_close((uv_handle_t *)&w->timer, on_handle_close);
    }
}
