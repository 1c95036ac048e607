/* server/expo.h - exposition: one snapshot of every figure, rendered as /metrics (one table of
 * families), as /debug/vars, as the shutdown summary, and the probes /healthz and /readyz. */
#ifndef INGESTD_SERVER_EXPO_H
#define INGESTD_SERVER_EXPO_H

#include <stdint.h>

#include "mem/mem.h"
#include "metrics/metrics.h"
#include "server/admin.h"
#include "server/http.h"
#include "server/shared.h"

/* Every figure at one moment (relaxed reads, summed over workers). */
typedef struct {
    uint64_t accepted;
    uint64_t rejected[ING_VERDICT_COUNT]; /* index: ing_verdict_t; [ING_ACCEPTED] unused */
    uint64_t bytes_tcp;
    uint64_t bytes_http;
    uint64_t conns_total;
    uint64_t conns_refused; /* every reason: the three below */
    uint64_t conns_refused_global;
    uint64_t conns_refused_peer;
    uint64_t conns_refused_allow;
    uint64_t conns_evicted;
    uint64_t auth_denied;
    uint64_t partial_bytes;
    uint64_t partial_budget;
    uint64_t conns_timed_out;
    uint64_t read_pauses;
    uint64_t read_nobufs;
    uint64_t resume_failures;
    uint64_t reply_drops;
    uint64_t ack_timeouts;
    uint64_t sink_failures;
    uint64_t oversize;
    int64_t conns_active;
    uint64_t http_responses[SRV_HTTP_CODES];
    metrics_hist_t trim; /* merged trim-duration histogram */
    mem_stats_t mem;
    uint64_t mem_sys_bytes;
    pool_stats_t pool;
    sink_stats_t sink;
    uint64_t mem_over;
    uint64_t memory_limit;
    uint64_t pooled;
    uint64_t parse_scan; /* 1 while events are judged by the scanner */
    uint64_t parse_tree; /* 1 while by jansson's tree */
    uint64_t workers;
    uint64_t allocator_verified;
    srv_vars_type_t *types; /* new (mem_free via srv_expo_release); NULL when out of memory */
    size_t ntypes;
} srv_snapshot_t;

/* Takes a snapshot. Returns 0, or -ENOMEM when the type list could not be gathered (the rest is
 * filled). Release with srv_expo_release. Any thread. */
int srv_expo_snapshot(srv_shared_t *sh, srv_snapshot_t *out);
void srv_expo_release(srv_snapshot_t *s);

/* Writes the whole /metrics exposition (Prometheus text 0.0.4) from a fresh snapshot, with the
 * process collector's families. Any thread. */
void srv_expo_metrics(srv_shared_t *sh, metrics_writer_t *w);

/* Fills the /debug/vars figures from a snapshot (types borrowed from it). */
void srv_expo_vars(srv_shared_t *sh, const srv_snapshot_t *s, srv_vars_t *v);

/* GET/HEAD of /metrics, /healthz, /readyz (http.h on_get contract); scratch holds the /metrics
 * body until the caller's feed returns. Returns 0 or 404. Any loop thread. */
int srv_expo_get(srv_shared_t *sh, const char *path, srv_http_reply_t *reply,
                 metrics_writer_t *scratch);

/* Open ingest connections over all workers. Any thread. */
int64_t srv_expo_active_conns(srv_shared_t *sh);

/* The trim-duration histogram's bucket bounds (seconds), for workers' shards. */
void srv_expo_trim_hist_init(metrics_hist_t *h);

#endif
