/* server/worker_internal.h - one ingest worker's state, shared by worker.c (the loop, the
 * connections, the event path) and guard.c (its defences against hostile clients). Not part of
 * the worker's interface: everything outside the worker goes through worker.h. Loop thread only
 * unless a field says otherwise. */
#ifndef INGESTD_SERVER_WORKER_INTERNAL_H
#define INGESTD_SERVER_WORKER_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/list.h"
#include "ingest/frame.h"
#include "ingest/judge.h"
#include "ingest/types.h"
#include "server/auth.h"
#include "server/conn.h"
#include "server/policy.h"
#include "server/shared.h"
#include "server/worker.h"
#include "sink/sink.h"

struct srv_worker {
    srv_shared_t *sh;
    const srv_config_t *cfg;
    unsigned id;
    srv_worker_stats_t *st; /* &sh->stats[id] */
    ing_types_t *types;     /* &sh->types[id] */
    ing_judge_t judge;      /* judges each line; its strategy follows the live mode */
    uv_loop_t loop;
    uv_thread_t thread;
    int loop_ready;
    int tcp_fd; /* bound socket handed to uv_tcp_open, -1 when off */
    int http_fd;
    uv_tcp_t tcp_listener;
    uv_tcp_t http_listener;
    int listeners_open;
    uv_async_t wake;      /* control -> worker: look at draining / mem_over / pooled / trim */
    uv_mutex_t wake_lock; /* orders uv_async_send(wake) against the worker closing it */
    int wake_closed;      /* under wake_lock */
    _Atomic int trim_req; /* any thread -> worker: 0 none, else srv_trim_reason_t + 1 */
    uv_timer_t sweep_timer;
    pool_cache_t *cache;
    ing_frame_stock_t stock; /* assembly buffers lent to this loop's TCP connections */
    sink_writer_t *sink_w;
    uint64_t durable; /* the writer's durable sequence once it settled at drain (else unused) */
    int settled;
    int flush_due; /* replies wait for events still in the current chunk (--ack durable) */
    base_list_t conns;
    base_list_t holding; /* connections with replies held for --ack durable (by held_link) */
    srv_pause_t pause;
    int nobufs;               /* a connection paused because no block could be had */
    int pooled;               /* this loop's memory mode now (follows sh->pooled) */
    size_t held;              /* bytes its TCP connections hold in unfinished lines */
    srv_auth_reader_t auth;   /* its view of sh->auth (auth.h) */
    metrics_writer_t scratch; /* GET /metrics bodies, freed when large after each feed */
};

/* The connection linked at l in w->conns. */
static inline srv_conn_t *srv_worker_conn(base_link_t *l)
{
    return BASE_CONTAINER(l, srv_conn_t, link);
}

#endif
