/* nats.c - the JetStream backend: publishes the sink's stream as batched JetStream messages with
 * cnats from the sink's writer thread, resends each one until the stream has stored it, and
 * reports the acknowledged prefix of the stream as durable.
 *
 * Message format (what consumers see). Subject: the spec's SUBJECT. Body: one or more whole
 * NDJSON events, each ending in '\n' (split on newlines). Headers:
 *   Nats-Msg-Id          INSTANCE-N: N counts this process's messages from 1; the same id on
 *                        every resend, so the stream's duplicate window drops a second copy
 *   Nats-Expected-Stream the configured stream (the server refuses a subject bound elsewhere)
 *   Ingestd-Instance     INSTANCE (unique per process run: HOST-RANDOM unless configured)
 *   Ingestd-Worker       the writer (worker) number whose events these are (one per message)
 *   Ingestd-First-Seq    that worker's sequence number of the first event (1-based; 0: unknown)
 *   Ingestd-Count        events in the body
 * Events of one worker are in order within and across its messages; messages of different
 * workers interleave. A message holds at most one chunk of the engine (sink_create makes the
 * chunk batch_bytes: --nats-batch-bytes, 256 KiB by default), at most batch_events events (0: no
 * limit) and at most the server's max payload less 1 KiB for headers.
 *
 * Why the writer thread (issue 12 asks to choose): the engine already gathers whole lines from
 * every worker into chunks off the loops, so one publish per chunk costs the workers nothing and
 * a slow NATS can never stall a loop; the libuv adapter would put cnats's parser and a publish
 * per batch on every worker loop and need a connection per worker. Measured in BENCHMARKS.md.
 *
 * Threads. write, poll, open and close run on the engine's writer thread (or the caller of
 * sink_create/sink_close); the ack and connection callbacks run on cnats's threads. Shared state
 * (the ring of messages in flight, the figures) is guarded by mu; no cnats call is made with mu
 * held, and sink_backend_durable is called without it.
 *
 * In flight. A ring of max_inflight slots, one per message published and not yet acked, in
 * publish order (N mod max_inflight). When it is full, write returns -EAGAIN (the engine waits,
 * counting nothing) and the ack that frees the first slot wakes it; cnats's own MaxPending is set
 * above the ring, so js_PublishMsgAsync never stalls. Bytes in flight are bounded by the engine:
 * a chunk is held, and counted against its worker, until its bytes are acked. */
#include "sink/backend.h"

#include <nats/nats.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_ACK_TIMEOUT_MS 2000u
#define DEFAULT_MAX_INFLIGHT 1024u
#define HEADER_ROOM 1024u /* payload bytes kept free for our headers */
#define MIB (1024u * 1024u)
#define RETRY_AFTER_ERROR_MS 100u /* resend delay after an error ack or a failed resend */
#define MAX_SERVERS 16
#define CONNECT_TIMEOUT_MS 2000
#define RECONNECT_WAIT_MS 250
#define PING_INTERVAL_MS 5000

const double sink_ack_latency_bounds_us[SINK_ACK_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000, 500000, 2500000, INFINITY};

typedef struct {
    natsMsg *msg;     /* ours while waiting for a resend; NULL while cnats owns it */
    uint64_t n;       /* message number */
    uint64_t end_pos; /* stream position after its body */
    uint64_t sent_ns; /* first publish */
    uint64_t retry_at_ns;
    uint32_t nevents;
    uint32_t bytes;
    bool used;
    bool acked;
    bool resend; /* msg is set and due for a resend at retry_at_ns */
} slot_t;

typedef struct {
    sink_t *sink;
    void *(*alloc_fn)(size_t size);
    void (*free_fn)(void *ptr);
    natsOptions *opts;
    natsConnection *nc;
    jsCtx *js;
    char *subject;
    char *stream;
    char instance[96];
    bool create_stream;
    int replicas;
    size_t batch_events;
    int64_t ack_timeout_ms;
    char *servers[MAX_SERVERS];
    int nservers;

    /* Writer thread only. */
    uint64_t pos;         /* stream bytes taken */
    size_t max_body;      /* bytes per message body */
    uint32_t part_writer; /* a chunk taken part-way: whose, its first_seq, bytes taken of it, */
    uint64_t part_first;  /* and the sequence number of its next event */
    size_t part_off;
    uint64_t part_seq;
    uint64_t logged_disconnects;
    uint64_t logged_reconnects;
    bool logged_closed;
    uint64_t stream_checked_ns;

    /* Set by cnats's threads. */
    atomic_int state;      /* sink_conn_state_t */
    atomic_bool stream_ok; /* the stream was found or created (writer thread writes it) */
    pthread_mutex_t close_mu;
    pthread_cond_t closed_cv;
    bool closed;
    atomic_bool closing;     /* nats_close has begun: acks are dropped */
    atomic_int acks_running; /* on_ack calls in progress; close waits for 0 */

    /* Guarded by mu. */
    pthread_mutex_t mu;
    slot_t *ring;
    size_t cap;
    uint64_t head; /* oldest message not yet acked (or next when none) */
    uint64_t next; /* number of the next message */
    size_t resend_pending;
    bool want_room; /* write returned -EAGAIN: the ack that frees a slot wakes the writer */
    sink_nats_stats_t st;
} nats_t;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int errno_of(natsStatus s)
{
    switch (s) {
    case NATS_OK:
        return 0;
    case NATS_NO_MEMORY:
        return -ENOMEM;
    case NATS_INSUFFICIENT_BUFFER:
        return -ENOBUFS;
    case NATS_CONNECTION_CLOSED:
    case NATS_NO_SERVER:
    case NATS_NOT_YET_CONNECTED:
        return -ENOTCONN;
    case NATS_CONNECTION_AUTH_FAILED:
    case NATS_NOT_PERMITTED:
        return -EACCES;
    case NATS_TIMEOUT:
        return -ETIMEDOUT;
    case NATS_INVALID_ARG:
        return -EINVAL;
    case NATS_NOT_FOUND:
        return -ENOENT;
    default:
        return -EIO;
    }
}

static char *dup_str(nats_t *b, const char *s, size_t len)
{
    char *d = b->alloc_fn(len + 1);
    if (d != NULL) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

/* "//HOST:PORT[,HOST:PORT...]/SUBJECT" -> servers "nats://HOST:PORT" and subject. */
static int parse_arg(nats_t *b, const char *arg)
{
    const char *hosts = arg + 2;
    const char *slash = strchr(hosts, '/');
    if (strncmp(arg, "//", 2) != 0 || slash == NULL || slash == hosts || slash[1] == '\0') {
        return -EINVAL;
    }
    b->subject = dup_str(b, slash + 1, strlen(slash + 1));
    if (b->subject == NULL) {
        return -ENOMEM;
    }
    const char *p = hosts;
    while (p < slash) {
        const char *comma = memchr(p, ',', (size_t)(slash - p));
        const char *end = comma != NULL ? comma : slash;
        if (end == p || b->nservers == MAX_SERVERS) {
            return -EINVAL;
        }
        size_t len = (size_t)(end - p) + sizeof("nats://");
        char *u = b->alloc_fn(len);
        if (u == NULL) {
            return -ENOMEM;
        }
        snprintf(u, len, "nats://%.*s", (int)(end - p), p);
        b->servers[b->nservers++] = u;
        p = end + 1;
    }
    return 0;
}

/* HOST-RANDOM: a new id per process run, so message numbers restarting at 1 after a restart are
 * never taken for duplicates of the previous run's. */
static void make_instance(nats_t *b, const char *given)
{
    if (given != NULL && given[0] != '\0') {
        snprintf(b->instance, sizeof(b->instance), "%s", given);
        return;
    }
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        r = now_ns() ^ ((uint64_t)getpid() << 32);
    }
    snprintf(b->instance, sizeof(b->instance), "%s-%016" PRIx64, host, r);
}

/* ---- cnats callbacks (cnats's threads) ---- */

static void on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    nats_t *b = closure;
    atomic_store(&b->state, SINK_CONN_RECONNECTING);
    pthread_mutex_lock(&b->mu);
    b->st.disconnects++;
    pthread_mutex_unlock(&b->mu);
    sink_backend_wake(b->sink); /* poll logs it */
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    nats_t *b = closure;
    atomic_store(&b->state, SINK_CONN_CONNECTED);
    pthread_mutex_lock(&b->mu);
    b->st.reconnects++;
    pthread_mutex_unlock(&b->mu);
    sink_backend_wake(b->sink);
}

static void on_connected(natsConnection *nc, void *closure)
{
    (void)nc;
    nats_t *b = closure;
    atomic_store(&b->state, SINK_CONN_CONNECTED);
    sink_backend_wake(b->sink); /* poll checks the stream */
}

/* The last thing it does is the signal: nats_close may free b as soon as it sees closed. */
static void on_closed(natsConnection *nc, void *closure)
{
    (void)nc;
    nats_t *b = closure;
    atomic_store(&b->state, SINK_CONN_CLOSED);
    sink_backend_wake(b->sink);
    pthread_mutex_lock(&b->close_mu);
    b->closed = true;
    pthread_cond_broadcast(&b->closed_cv);
    pthread_mutex_unlock(&b->close_mu);
}

/* The message number from "INSTANCE-N", or 0. */
static uint64_t number_of(natsMsg *msg)
{
    const char *id = NULL;
    if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) != NATS_OK || id == NULL) {
        return 0;
    }
    const char *dash = strrchr(id, '-');
    return dash != NULL ? strtoull(dash + 1, NULL, 10) : 0;
}

static void observe_latency(nats_t *b, uint64_t ns)
{
    double us = (double)ns / 1000.0;
    b->st.ack_latency_count++;
    b->st.ack_latency_sum_seconds += (double)ns / 1e9;
    for (int i = 0; i < SINK_ACK_BUCKETS; i++) {
        if (us <= sink_ack_latency_bounds_us[i]) {
            b->st.ack_latency_buckets[i]++;
        }
    }
}

/* Every publish ends here once: stored (pa), or an error ack / ack timeout (pae): then the
 * message is kept for a resend by the writer thread. */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    nats_t *b = closure;
    atomic_fetch_add(&b->acks_running, 1);
    if (atomic_load(&b->closing)) {
        natsMsg_Destroy(msg);
        atomic_fetch_sub(&b->acks_running, 1);
        return;
    }
    uint64_t n = number_of(msg);
    uint64_t durable = 0;
    bool wake = false;
    pthread_mutex_lock(&b->mu);
    slot_t *sl = b->cap > 0 && n > 0 ? &b->ring[n % b->cap] : NULL;
    if (sl == NULL || !sl->used || sl->n != n || sl->acked || sl->msg != NULL) {
        pthread_mutex_unlock(&b->mu); /* not ours any more (given up at close) */
        natsMsg_Destroy(msg);
        atomic_fetch_sub(&b->acks_running, 1);
        return;
    }
    if (pa != NULL && pae == NULL) {
        sl->acked = true;
        b->st.msgs_stored++;
        b->st.events_stored += sl->nevents;
        b->st.msgs_duplicate += pa->Duplicate ? 1 : 0;
        b->st.inflight_msgs--;
        b->st.inflight_bytes -= sl->bytes;
        observe_latency(b, now_ns() - sl->sent_ns);
        while (b->head < b->next && b->ring[b->head % b->cap].acked) {
            slot_t *h = &b->ring[b->head % b->cap];
            durable = h->end_pos;
            h->used = false;
            b->head++;
        }
        if (durable > 0 && b->want_room) {
            b->want_room = false;
            wake = true;
        }
        pthread_mutex_unlock(&b->mu);
        natsMsg_Destroy(msg);
    } else {
        b->st.msgs_failed++;
        sl->msg = msg; /* kept: not destroyed here */
        sl->resend = true;
        sl->retry_at_ns =
            now_ns() +
            (pae != NULL && pae->Err == NATS_TIMEOUT ? 0 : RETRY_AFTER_ERROR_MS * 1000000ull);
        b->resend_pending++;
        wake = true;
        pthread_mutex_unlock(&b->mu);
    }
    if (durable > 0) {
        sink_backend_durable(b->sink, durable);
    }
    if (wake) {
        sink_backend_wake(b->sink);
    }
    atomic_fetch_sub(&b->acks_running, 1); /* last touch of b */
}

/* ---- open / close ---- */

static void nats_close(void *st);

static int set_options(nats_t *b, const sink_nats_config_t *c, size_t io_buf)
{
    natsOptions *o = b->opts;
    natsStatus s = natsOptions_SetServers(o, (const char **)b->servers, b->nservers);
    if (s == NATS_OK) {
        s = natsOptions_SetNoRandomize(o, true);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetName(o, b->instance);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetTimeout(o, CONNECT_TIMEOUT_MS);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetMaxReconnect(o, -1); /* forever: progress resumes without a restart */
    }
    if (s == NATS_OK) {
        s = natsOptions_SetReconnectWait(o, RECONNECT_WAIT_MS);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetPingInterval(o, PING_INTERVAL_MS);
    }
    if (s == NATS_OK) {
        /* cnats's write buffer (32 KiB by default) holds two whole chunk messages, so a
         * publish is copied once and written out by cnats's flusher in large pieces. Past
         * 1 MiB chunks it stays at 2 MiB: a larger message is written from its own bytes. */
        s = natsOptions_SetIOBufSize(o, (int)(io_buf > 32768 ? io_buf : 32768));
    }
    if (s == NATS_OK && c->reconnect_buf_bytes > 0) {
        s = natsOptions_SetReconnectBufSize(o, c->reconnect_buf_bytes);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetDisconnectedCB(o, on_disconnected, b);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetReconnectedCB(o, on_reconnected, b);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetClosedCB(o, on_closed, b);
    }
    if (s == NATS_OK && c->creds != NULL && c->creds[0] != '\0') {
        s = natsOptions_SetUserCredentialsFromFiles(o, c->creds, NULL);
    }
    if (s == NATS_OK && c->token != NULL && c->token[0] != '\0') {
        s = natsOptions_SetToken(o, c->token);
    }
    if (s == NATS_OK && c->tls) {
        s = natsOptions_SetSecure(o, true);
    }
    /* Also without --nats-tls on: cnats follows a server that requires TLS, and then verifies
     * it with these CAs. */
    if (s == NATS_OK && c->ca_file != NULL && c->ca_file[0] != '\0') {
        s = natsOptions_LoadCATrustedCertificates(o, c->ca_file);
    }
    return errno_of(s);
}

/* Finds the stream, or creates it when asked. Returns 0, -ENOENT (absent, not asked to create)
 * or another -errno; logs why. Writer thread or open. */
static int check_stream(nats_t *b)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, b->js, b->stream, NULL, &jerr);
    if (s == NATS_OK) {
        jsStreamInfo_Destroy(si);
        atomic_store(&b->stream_ok, true);
        return 0;
    }
    bool absent = s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr;
    if (absent && b->create_stream) {
        jsStreamConfig sc;
        jsStreamConfig_Init(&sc);
        const char *subjects[1] = {b->subject};
        sc.Name = b->stream;
        sc.Subjects = subjects;
        sc.SubjectsLen = 1;
        sc.Storage = js_FileStorage;
        sc.Replicas = b->replicas > 0 ? b->replicas : 1;
        s = js_AddStream(&si, b->js, &sc, NULL, &jerr);
        if (s == NATS_OK) {
            jsStreamInfo_Destroy(si);
            sink_backend_log(b->sink, true, "created JetStream stream %s (subject %s, %d replicas)",
                             b->stream, b->subject, sc.Replicas > 0 ? (int)sc.Replicas : 1);
            atomic_store(&b->stream_ok, true);
            return 0;
        }
    }
    if (absent && !b->create_stream) {
        sink_backend_log(b->sink, true,
                         "JetStream stream %s not found (create it, or ask ingestd to)", b->stream);
        return -ENOENT;
    }
    sink_backend_log(b->sink, true, "JetStream stream %s: %s (error %d)", b->stream,
                     natsStatus_GetText(s), (int)jerr);
    return errno_of(s) != 0 ? errno_of(s) : -EIO;
}

/* A first connect that failed because nobody answered (yet): worth retrying. Anything else
 * (a refused login, a TLS handshake, an unreadable credentials file) no retry cures: cnats
 * 3.4.1 drops the server from its pool after such a failure and closes for good. */
static bool retryable(natsStatus s)
{
    return s == NATS_NO_SERVER || s == NATS_TIMEOUT || s == NATS_IO_ERROR;
}

static int nats_open(const char *arg, const sink_backend_opts_t *o, void **st)
{
    const sink_config_t *cfg = o->cfg;
    sink_nats_config_t none = {0};
    const sink_nats_config_t *c = cfg != NULL ? &cfg->nats : &none;
    nats_t *b = o->alloc_fn(sizeof(*b));
    if (b == NULL) {
        return -ENOMEM;
    }
    memset(b, 0, sizeof(*b));
    b->sink = o->sink;
    b->alloc_fn = o->alloc_fn;
    b->free_fn = o->free_fn;
    pthread_mutex_init(&b->mu, NULL);
    pthread_mutex_init(&b->close_mu, NULL);
    pthread_cond_init(&b->closed_cv, NULL);
    atomic_init(&b->state, SINK_CONN_CONNECTING);
    atomic_init(&b->stream_ok, false);
    atomic_init(&b->closing, false);
    atomic_init(&b->acks_running, 0);
    b->create_stream = c->create_stream;
    b->replicas = c->replicas;
    b->batch_events = c->batch_events;
    b->ack_timeout_ms = (int64_t)(c->ack_timeout_ms ? c->ack_timeout_ms : DEFAULT_ACK_TIMEOUT_MS);
    b->cap = c->max_inflight ? c->max_inflight : DEFAULT_MAX_INFLIGHT;
    b->head = b->next = 1;
    make_instance(b, c->instance);
    const char *stream =
        c->stream != NULL && c->stream[0] != '\0' ? c->stream : SINK_NATS_DEFAULT_STREAM;
    b->stream = dup_str(b, stream, strlen(stream));
    b->ring = o->alloc_fn(b->cap * sizeof(slot_t));
    int rc = b->stream == NULL || b->ring == NULL ? -ENOMEM : parse_arg(b, arg);
    if (rc == 0) {
        memset(b->ring, 0, b->cap * sizeof(slot_t));
        rc = errno_of(natsOptions_Create(&b->opts));
    }
    if (rc == 0) {
        size_t chunk =
            cfg != NULL && cfg->chunk_bytes ? cfg->chunk_bytes : SINK_DEFAULT_CHUNK_BYTES;
        rc = set_options(b, c, (chunk < MIB ? chunk : MIB) * 2 + 2 * HEADER_ROOM);
    }
    if (rc != 0) {
        sink_backend_log(b->sink, true, "nats options: %s", strerror(-rc));
        nats_close(b);
        return rc;
    }
    /* One attempt without retries first: retrying, cnats (3.4.1) reports a refused login or TLS
     * handshake only as "not yet connected" and then closes for good without saying why. Such a
     * failure fails the open (ingestd exits at start, nothing accepted yet: a supervisor's
     * restart recovers once the settings are fixed, where a process left running would never
     * connect); no answer (no server yet) is retried in the background. */
    natsStatus s = natsConnection_Connect(&b->nc, b->opts); /* retries are off by default */
    natsStatus first = s;
    char why[256];
    snprintf(why, sizeof(why), "%s",
             s != NATS_OK && nats_GetLastError(NULL) != NULL ? nats_GetLastError(NULL) : "");
    if (s != NATS_OK && !retryable(s)) {
        sink_backend_log(b->sink, true,
                         "cannot use NATS at %s: %s (%s); check --nats-token-file, --nats-creds, "
                         "--nats-tls and --nats-ca",
                         arg + 2, natsStatus_GetText(s), why);
        nats_close(b);
        return errno_of(s) != -EIO ? errno_of(s) : -EPROTO;
    }
    if (s != NATS_OK) {
        s = natsOptions_SetRetryOnFailedConnect(b->opts, true, on_connected, b);
        if (s == NATS_OK) {
            s = natsConnection_Connect(&b->nc, b->opts);
        }
    }
    if (s == NATS_NOT_YET_CONNECTED && first == NATS_NO_SERVER) {
        sink_backend_log(b->sink, true, "no NATS server answers at %s; retrying in the background",
                         arg + 2);
    } else if (s == NATS_NOT_YET_CONNECTED) {
        sink_backend_log(b->sink, true,
                         "cannot connect to NATS at %s: %s (%s); retrying in the "
                         "background",
                         arg + 2, natsStatus_GetText(first), why);
    } else if (s != NATS_OK) {
        sink_backend_log(b->sink, true, "connect %s: %s", arg + 2, natsStatus_GetText(s));
        nats_close(b);
        return errno_of(s);
    } else {
        atomic_store(&b->state, SINK_CONN_CONNECTED);
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 2000;
    jo.PublishAsync.MaxPending = (int64_t)b->cap * 2 + 16; /* our ring is the bound */
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = b;
    s = natsConnection_JetStream(&b->js, b->nc, &jo);
    if (s != NATS_OK) {
        sink_backend_log(b->sink, true, "jetstream: %s", natsStatus_GetText(s));
        nats_close(b);
        return errno_of(s);
    }
    if (atomic_load(&b->state) == SINK_CONN_CONNECTED) {
        rc = check_stream(b);
        if (rc != 0) {
            nats_close(b);
            return rc;
        }
        b->stream_checked_ns = now_ns();
    }
    *st = b;
    return 0;
}

static void nats_close(void *st)
{
    nats_t *b = st;
    atomic_store(&b->closing, true);
    if (b->nc != NULL) {
        /* Close, then wait for the closed callback and for any ack callback still running:
         * after that no callback touches the state below. */
        natsConnection_Close(b->nc);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 5;
        pthread_mutex_lock(&b->close_mu);
        while (!b->closed && pthread_cond_timedwait(&b->closed_cv, &b->close_mu, &ts) == 0) {
        }
        pthread_mutex_unlock(&b->close_mu);
    }
    while (atomic_load(&b->acks_running) > 0) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    jsCtx_Destroy(b->js);
    natsConnection_Destroy(b->nc);
    natsOptions_Destroy(b->opts);
    uint64_t unacked = 0;
    if (b->ring != NULL) {
        for (size_t i = 0; i < b->cap; i++) {
            if (b->ring[i].used && !b->ring[i].acked) {
                unacked++;
            }
            natsMsg_Destroy(b->ring[i].msg);
        }
    }
    if (unacked > 0) {
        sink_backend_log(b->sink, true, "closed with %" PRIu64 " messages not acknowledged",
                         unacked);
    }
    for (int i = 0; i < b->nservers; i++) {
        b->free_fn(b->servers[i]);
    }
    b->free_fn(b->ring);
    b->free_fn(b->subject);
    b->free_fn(b->stream);
    pthread_mutex_destroy(&b->mu);
    pthread_mutex_destroy(&b->close_mu);
    pthread_cond_destroy(&b->closed_cv);
    b->free_fn(b);
}

/* ---- writer thread ---- */

static int set_headers(nats_t *b, natsMsg *msg, uint64_t n, uint32_t writer, uint64_t first,
                       uint32_t count)
{
    char id[128], w[16], f[24], k[16];
    snprintf(id, sizeof(id), "%s-%" PRIu64, b->instance, n);
    snprintf(w, sizeof(w), "%" PRIu32, writer);
    snprintf(f, sizeof(f), "%" PRIu64, first);
    snprintf(k, sizeof(k), "%" PRIu32, count);
    natsStatus s = natsMsgHeader_Set(msg, "Nats-Msg-Id", id);
    if (s == NATS_OK) {
        s = natsMsgHeader_Set(msg, "Nats-Expected-Stream", b->stream);
    }
    if (s == NATS_OK) {
        s = natsMsgHeader_Set(msg, "Ingestd-Instance", b->instance);
    }
    if (s == NATS_OK) {
        s = natsMsgHeader_Set(msg, "Ingestd-Worker", w);
    }
    if (s == NATS_OK) {
        s = natsMsgHeader_Set(msg, "Ingestd-First-Seq", f);
    }
    if (s == NATS_OK) {
        s = natsMsgHeader_Set(msg, "Ingestd-Count", k);
    }
    return errno_of(s);
}

static int publish(nats_t *b, natsMsg **msg)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = b->ack_timeout_ms; /* per-message ack deadline: an ack timeout means a resend */
    return errno_of(js_PublishMsgAsync(b->js, msg, &po));
}

/* Publishes one new message. Returns 0, -EAGAIN when the ring is full, or -errno (nothing
 * taken). */
static int publish_new(nats_t *b, const char *data, size_t len, uint32_t nevents, uint32_t writer,
                       uint64_t first)
{
    pthread_mutex_lock(&b->mu);
    if (b->next - b->head >= b->cap) {
        b->want_room = true;
        pthread_mutex_unlock(&b->mu);
        return -EAGAIN;
    }
    uint64_t n = b->next;
    pthread_mutex_unlock(&b->mu);
    natsMsg *msg = NULL;
    int rc = errno_of(natsMsg_Create(&msg, b->subject, NULL, data, (int)len));
    if (rc == 0) {
        rc = set_headers(b, msg, n, writer, first, nevents);
    }
    if (rc != 0) {
        natsMsg_Destroy(msg);
        return rc;
    }
    pthread_mutex_lock(&b->mu);
    slot_t *sl = &b->ring[n % b->cap];
    *sl = (slot_t){.n = n,
                   .end_pos = b->pos + len,
                   .sent_ns = now_ns(),
                   .nevents = nevents,
                   .bytes = (uint32_t)len,
                   .used = true};
    b->next = n + 1;
    b->st.inflight_msgs++;
    b->st.inflight_bytes += len;
    pthread_mutex_unlock(&b->mu);
    natsMsg *m = msg;
    rc = publish(b, &m);
    pthread_mutex_lock(&b->mu);
    if (rc != 0) {
        /* Not taken: the slot is the last one and no ack can name it. */
        sl->used = false;
        b->next = n;
        b->st.inflight_msgs--;
        b->st.inflight_bytes -= len;
        b->st.publish_errors++;
    } else {
        b->st.msgs_published++;
        b->st.events_published += nevents;
    }
    pthread_mutex_unlock(&b->mu);
    if (rc != 0) {
        natsMsg_Destroy(msg);
        return rc;
    }
    b->pos += len;
    return 0;
}

/* The sequence number of the first event of iov entry i (see part_* in nats_t). */
static uint64_t first_seq_of(const nats_t *b, const sink_backend_span_t *sp)
{
    if (sp->off == 0) {
        return sp->first_seq;
    }
    if (sp->writer == b->part_writer && sp->first_seq == b->part_first && sp->off == b->part_off) {
        return b->part_seq;
    }
    return 0;
}

static ssize_t nats_write(void *st, const struct iovec *iov, const sink_backend_span_t *span, int n)
{
    nats_t *b = st;
    int state = atomic_load(&b->state);
    if (!atomic_load(&b->stream_ok) || state == SINK_CONN_CLOSED) {
        return -ENOTCONN; /* counted and logged by the engine, retried with backoff */
    }
    if (b->max_body == 0 || state == SINK_CONN_CONNECTED) {
        int64_t mp = natsConnection_GetMaxPayload(b->nc);
        b->max_body = mp > (int64_t)HEADER_ROOM * 2 ? (size_t)mp - HEADER_ROOM : 64 * 1024;
    }
    size_t took = 0;
    for (int i = 0; i < n; i++) {
        const char *p = iov[i].iov_base;
        size_t left = iov[i].iov_len;
        uint64_t seq = first_seq_of(b, &span[i]);
        size_t done = 0;
        while (left > 0) {
            size_t mlen;
            uint64_t mev;
            if (span[i].off == 0 && done == 0 && left <= b->max_body &&
                (b->batch_events == 0 || span[i].nevents <= b->batch_events)) {
                mlen = left; /* the common case: the whole chunk is one message, no scan */
                mev = span[i].nevents;
            } else {
                mlen = 0;
                mev = 0;
                while (mlen < left && (b->batch_events == 0 || mev < b->batch_events)) {
                    const char *nl = memchr(p + mlen, '\n', left - mlen);
                    size_t end = nl != NULL ? (size_t)(nl - p) + 1 : left;
                    if (end > b->max_body) {
                        break;
                    }
                    mlen = end;
                    mev++;
                }
                if (mev == 0) {
                    return took > 0 ? (ssize_t)took : -EMSGSIZE;
                }
            }
            int rc = publish_new(b, p, mlen, (uint32_t)mev, span[i].writer, seq);
            if (rc != 0) {
                if (done > 0) {
                    b->part_writer = span[i].writer;
                    b->part_first = span[i].first_seq;
                    b->part_off = span[i].off + done;
                    b->part_seq = seq;
                }
                return took > 0 ? (ssize_t)took : rc;
            }
            p += mlen;
            left -= mlen;
            done += mlen;
            took += mlen;
            seq = seq != 0 ? seq + mev : 0;
        }
    }
    return (ssize_t)took;
}

/* Resends what is due; returns ms until the next resend is due, or -1. Writer thread. */
static int resend_due(nats_t *b)
{
    uint64_t now = now_ns();
    uint64_t soonest = UINT64_MAX;
    pthread_mutex_lock(&b->mu);
    for (uint64_t n = b->head; b->resend_pending > 0 && n < b->next; n++) {
        slot_t *sl = &b->ring[n % b->cap];
        if (!sl->resend) {
            continue;
        }
        if (sl->retry_at_ns > now) {
            soonest = sl->retry_at_ns < soonest ? sl->retry_at_ns : soonest;
            continue;
        }
        natsMsg *msg = sl->msg;
        sl->msg = NULL;
        sl->resend = false;
        b->resend_pending--;
        pthread_mutex_unlock(&b->mu);
        natsMsg *m = msg;
        int rc = publish(b, &m);
        pthread_mutex_lock(&b->mu);
        if (rc != 0) {
            sl->msg = msg;
            sl->resend = true;
            sl->retry_at_ns = now + RETRY_AFTER_ERROR_MS * 1000000ull;
            b->resend_pending++;
            b->st.publish_errors++;
            soonest = sl->retry_at_ns < soonest ? sl->retry_at_ns : soonest;
            break; /* not connected or no buffer: the rest would fail too */
        }
        b->st.msgs_resent++;
    }
    pthread_mutex_unlock(&b->mu);
    if (soonest == UINT64_MAX) {
        return -1;
    }
    return soonest <= now ? 0 : (int)((soonest - now) / 1000000ull) + 1;
}

/* Connection news for the log (the callbacks cannot log: the engine's log is the writer
 * thread's), the stream check after a late first connect, and resends. */
static int nats_poll(void *st)
{
    nats_t *b = st;
    pthread_mutex_lock(&b->mu);
    uint64_t disc = b->st.disconnects, reco = b->st.reconnects;
    pthread_mutex_unlock(&b->mu);
    if (disc != b->logged_disconnects) {
        b->logged_disconnects = disc;
        sink_backend_log(b->sink, true,
                         "disconnected from NATS (%" PRIu64 " times); reconnecting, publishes "
                         "buffered up to the reconnect buffer",
                         disc);
    }
    if (reco != b->logged_reconnects) {
        b->logged_reconnects = reco;
        char url[256] = "";
        natsConnection_GetConnectedUrl(b->nc, url, sizeof(url));
        sink_backend_log(b->sink, true, "reconnected to NATS at %s (%" PRIu64 " times)", url, reco);
    }
    int state = atomic_load(&b->state);
    if (state == SINK_CONN_CLOSED && !b->logged_closed) {
        b->logged_closed = true;
        const char *why = NULL;
        if (b->nc != NULL) {
            natsConnection_GetLastError(b->nc, &why);
        }
        sink_backend_log(b->sink, true, "NATS connection closed for good%s%s",
                         why != NULL && why[0] != '\0' ? ": " : "", why != NULL ? why : "");
    }
    int next = -1;
    if (state == SINK_CONN_CONNECTED && !atomic_load(&b->stream_ok)) {
        uint64_t now = now_ns();
        if (now - b->stream_checked_ns >= 1000000000ull || b->stream_checked_ns == 0) {
            b->stream_checked_ns = now;
            check_stream(b);
        }
        next = atomic_load(&b->stream_ok) ? -1 : 1000;
    }
    int r = resend_due(b);
    if (r >= 0 && (next < 0 || r < next)) {
        next = r;
    }
    return next;
}

static int nats_ready(void *st)
{
    nats_t *b = st;
    return atomic_load(&b->state) == SINK_CONN_CONNECTED && atomic_load(&b->stream_ok);
}

static void nats_stats(void *st, sink_stats_t *out)
{
    nats_t *b = st;
    pthread_mutex_lock(&b->mu);
    out->nats = b->st;
    pthread_mutex_unlock(&b->mu);
    out->nats.state = (uint64_t)atomic_load(&b->state);
}

const sink_backend_t sink_backend_nats = {
    .name = "nats",
    .open = nats_open,
    .write = nats_write,
    .poll = nats_poll,
    .ready = nats_ready,
    .stats = nats_stats,
    .close = nats_close,
};
