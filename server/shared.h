/* server/shared.h - the only state ingestd's threads share; every field names the thread that
 * writes it and how the others read it. */
#ifndef INGESTD_SERVER_SHARED_H
#define INGESTD_SERVER_SHARED_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "ingest/types.h"
#include "ingest/verdict.h"
#include "metrics/metrics.h"
#include "pool/pool.h"
#include "server/config.h"
#include "server/trim.h"
#include "sink/sink.h"

#define SRV_CACHE_LINE 64

/* HTTP response codes counted one by one on ingest ports; others count as "other" (0). */
#define SRV_HTTP_CODES 13
extern const int srv_http_codes[SRV_HTTP_CODES];

/* One worker's counters. Writer: that worker's loop thread only (metrics.h single-writer
 * shards). Readers: any thread (relaxed loads, summed at scrape). Padded on both sides so no
 * other thread's data shares its cache lines. */
typedef struct {
    char pad0[SRV_CACHE_LINE];
    metrics_counter_t accepted;
    metrics_counter_t rejected[ING_VERDICT_COUNT];
    metrics_counter_t bytes_tcp;
    metrics_counter_t bytes_http;
    metrics_counter_t conns_total;
    metrics_counter_t conns_refused;       /* the global cap, nothing idle to close for it */
    metrics_counter_t conns_refused_peer;  /* --max-connections-per-peer */
    metrics_counter_t conns_refused_allow; /* --ingest-allow */
    metrics_counter_t conns_evicted;       /* idle longest, closed to make room at the cap */
    metrics_counter_t auth_denied;         /* HTTP ingest requests without a valid token (401) */
    metrics_counter_t slow_closed; /* TCP connections closed: a dropped line still unended */
    metrics_counter_t idle_closed;
    metrics_counter_t sink_failures;   /* sink_append could not keep an event (no memory) */
    metrics_counter_t read_pauses;     /* times reading was paused (sink full or memory limit) */
    metrics_counter_t read_nobufs;     /* reads the pool could not give a block for (UV_ENOBUFS) */
    metrics_counter_t resume_failures; /* uv_read_start failed on resume: connection closed */
    metrics_counter_t reply_drops;     /* HTTP replies not queued for want of memory */
    metrics_counter_t ack_timeouts;    /* --ack durable: requests answered 503, not durable */
    metrics_counter_t oversize;        /* framed lines that outgrew one block */
    metrics_counter_t http_responses[SRV_HTTP_CODES]; /* index into srv_http_codes */
    metrics_gauge_t conns_active;
    metrics_hist_t trim;
    char pad1[SRV_CACHE_LINE];
} srv_worker_stats_t;

typedef struct {
    /* Set by the main thread before any other thread starts; read-only afterwards. */
    const srv_config_t *cfg;
    pool_t *pool; /* thread-safe as pool.h says */
    sink_t *sink; /* thread-safe as sink.h says; NULL once closed (control thread, at the end) */
    unsigned nworkers;
    uint64_t start_ns;          /* uv_hrtime at start-up */
    uint64_t partial_budget;    /* srv_config_partial_budget(cfg), 0: none */
    struct srv_peers *peers;    /* connections per peer (thread-safe as peers.h says), or NULL */
    struct srv_auth_slot *auth; /* HTTP ingest tokens (auth.h says who calls what), or NULL */
    int allocator_verified;
    srv_trim_t trim; /* the trim rendezvous (trim.h says who calls what) */

    /* Per worker i, written by worker i's loop thread only: its counters and its table of
     * accepted types (types.h says how any thread reads it). Arrays made by the main thread. */
    srv_worker_stats_t *stats;
    ing_types_t *types;
    /* Worker i's pool cache, set by worker i before it raises ready (release) and cleared only
     * after draining began. The control thread reads it for /debug/pool while ready ==
     * nworkers and draining == 0. */
    pool_cache_t **caches;

    /* Written by the control thread, read by workers (after a wake). */
    _Atomic int draining;
    _Atomic int mem_over;
    _Atomic int pooled;
    _Atomic int parse; /* srv_parse_t */
    _Atomic uint64_t trim_interval_ms;
    _Atomic uint64_t memory_limit;

    /* Written by workers (one increment each), read by the control thread after ctl_async. */
    _Atomic unsigned ready;
    _Atomic unsigned failed;
    _Atomic unsigned done;
    uv_async_t ctl_async; /* worker -> control: ready, done, a trim answered */

    /* Bytes held in unfinished lines (TCP lines, HTTP body carry buffers), all workers: each
     * worker adds a connection's change when it starts or stops holding or its holding grows
     * (relaxed fetch_add; no per-event traffic). Read by workers (budget) and scrapes. */
    _Atomic uint64_t partial_held;

    /* Written by the control thread, read by any (the admin listener's counters). */
    _Atomic uint64_t admin_requests;
    _Atomic uint64_t admin_denied;
} srv_shared_t;

/* 1 while every worker is set up and none has begun to tear down (so their caches are live).
 * Any thread. */
static inline int srv_shared_workers_live(srv_shared_t *sh)
{
    return atomic_load(&sh->ready) == sh->nworkers && !atomic_load(&sh->draining);
}

/* Loads --ingest-tokens-file and publishes it (creating sh->auth the first time). On failure
 * logs why and keeps the set in force. Returns 0 or -errno. Control thread (start-up, SIGHUP). */
int srv_server_load_tokens(srv_shared_t *sh);

#endif
