/* server_internal.h - the structures shared by server.c (control loop, metrics) and worker.c
 * (ingest loops). Not part of the server's interface. */
#ifndef INGESTD_SERVER_INTERNAL_H
#define INGESTD_SERVER_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "ingest/frame.h"
#include "ingest/judge.h"
#include "ingest/types.h"
#include "ingest/verdict.h"
#include "metrics/metrics.h"
#include "pool/pool.h"
#include "server/admin.h"
#include "server/config.h"
#include "server/http.h"
#include "server/memtrace.h"
#include "server/server.h"
#include "sink/sink.h"

#define SRV_CACHE_LINE 64

/* HTTP response codes counted one by one on ingest ports; others count as "other". */
#define SRV_HTTP_CODES 10
extern const int srv_http_codes[SRV_HTTP_CODES]; /* 0 = other */

/* One worker's counters: written by its loop thread only (metrics.h single-writer shards), read
 * by the scraper. Padded on both sides so no other thread's data shares its cache lines. */
typedef struct {
    char pad0[SRV_CACHE_LINE];
    metrics_counter_t accepted;
    metrics_counter_t rejected[ING_VERDICT_COUNT];
    metrics_counter_t bytes_tcp;
    metrics_counter_t bytes_http;
    metrics_counter_t conns_total;
    metrics_counter_t conns_refused;
    metrics_counter_t idle_closed;
    metrics_counter_t sink_failures; /* sink_append could not keep an event (no memory) */
    metrics_counter_t read_pauses;   /* times reading was paused (sink full or memory limit) */
    metrics_counter_t oversize;      /* framed lines that outgrew one block */
    metrics_counter_t http_responses[SRV_HTTP_CODES]; /* index into srv_http_codes */
    metrics_gauge_t conns_active;
    metrics_hist_t trim;
    char pad1[SRV_CACHE_LINE];
} srv_worker_stats_t;

typedef enum {
    SRV_CONN_TCP = 0,
    SRV_CONN_HTTP = 1,
} srv_conn_kind_t;

typedef struct srv_worker srv_worker_t;

/* One client connection; one allocation, freed in its close callback. */
typedef struct srv_conn {
    uv_tcp_t handle; /* first: the handle's address is the connection's */
    srv_worker_t *w;
    struct srv_conn *prev;
    struct srv_conn *next;
    srv_conn_kind_t kind;
    int reading; /* uv_read_start is in effect */
    int closing; /* uv_close has been called */
    int close_after_write;
    int lingering; /* HTTP: reply written, write side shut, input discarded until peer EOF,
                    * SRV_LINGER_BYTES or SRV_LINGER_MS (worker.c conn_linger) */
    int eof;       /* HTTP: the peer closed its side (nothing left to discard) */
    uint64_t linger_start;
    uint64_t linger_bytes;
    int probe; /* TCP: may read over the memory limit until the next check (worker.c) */
    uv_shutdown_t sreq;
    uint64_t last_active; /* uv_now of the last read */
    uint64_t phase_start; /* HTTP: when the current phase began */
    srv_http_phase_t phase;
    ing_frame_t frame; /* TCP */
    srv_http_t http;   /* HTTP */
    /* HTTP responses: bytes gathered during one feed, and the buffer being written. */
    char *out;
    size_t out_len;
    size_t out_cap;
    char *wbuf;
    size_t wbuf_cap;
    int writing;
    uv_write_t wreq;
} srv_conn_t;

/* A loop with its listeners and connections: an ingest worker, or the control loop (control:
 * no TCP listener, the HTTP listener is --admin's address and takes no events). */
struct srv_worker {
    srv_server_t *srv;
    unsigned id;
    int control;
    uv_loop_t *loop;
    uv_loop_t own_loop;
    uv_thread_t thread;
    int tcp_fd; /* bound socket handed to uv_tcp_open, -1 when off */
    int http_fd;
    uv_tcp_t tcp_listener;
    uv_tcp_t http_listener;
    int listeners_open;
    uv_async_t wake; /* control -> worker: look at draining / mem_over */
    int wake_closed; /* under srv->wake_lock: wake may no longer be sent to */
    uv_timer_t trim_timer;
    uv_timer_t sweep_timer;
    pool_cache_t *cache;
    ing_judge_t judge;       /* the parse strategy; apply_mode swaps it */
    ing_types_t types;       /* accepted events by type; read by scrapes on the control thread */
    ing_frame_stock_t stock; /* assembly buffers lent to this loop's TCP connections */
    sink_writer_t *sink_w;
    srv_conn_t *conns;
    int sink_full;
    int mem_paused;
    int draining;
    int start_error;
    metrics_writer_t scratch; /* GET reply bodies, freed after each feed */
    int pooled;               /* this loop's memory mode now (loop thread; follows s->pooled) */
    _Atomic int trim_req;     /* control -> worker: 0 none, else srv_trim_reason_t + 1 */
    srv_worker_stats_t st;
};

struct srv_server {
    srv_config_t cfg;
    pool_t *pool;
    sink_t *sink;
    unsigned nworkers;
    srv_worker_t **workers;
    srv_worker_t *control;
    uv_loop_t ctl_loop;
    uv_async_t ctl_async; /* worker -> control: ready or done */
    uv_signal_t sig_term;
    uv_signal_t sig_int;
    uv_signal_t sig_hup;
    uv_timer_t mem_timer;
    uv_timer_t shutdown_timer;
    uv_timer_t trim_timer; /* --trim-interval: starts a trim cycle on every worker */
    uv_mutex_t wake_lock;  /* orders uv_async_send(wake) against the worker closing it */
    int started;           /* srv_server_run took over the listening fds */
    int sink_closed;       /* control thread only */
    _Atomic unsigned ready;
    _Atomic unsigned done;
    _Atomic unsigned failed;
    _Atomic int draining;
    _Atomic int mem_over;
    int allocator_verified; /* a probe allocation came from the allocator --allocator names */
    int announced;
    int finished;
    int exit_code;
    uint64_t drain_start_ms;
    /* The live levers (/debug/config); read by any thread. */
    _Atomic int pooled;
    _Atomic uint64_t trim_interval_ms;
    _Atomic uint64_t memory_limit;
    /* Trim cycles: the control thread asks every worker (w->trim_req + wake), each answers
     * under trim_lock; the control finishes the cycle (memtrace line) when all answered. */
    uv_mutex_t trim_lock;
    uv_cond_t trim_cond;
    unsigned trim_answers;  /* under trim_lock */
    uint64_t trim_released; /* blocks, under trim_lock */
    uint64_t trim_ns;       /* summed worker trim time, under trim_lock */
    unsigned trim_expected; /* control thread */
    int trim_active;        /* control thread */
    int trim_pending;       /* a limit trim asked for while a cycle ran (control thread) */
    uint64_t trim_cycle;    /* control thread */
    srv_memtrace_t trim_m;  /* the cycle being run (control thread) */
    uint64_t start_ns;      /* uv_hrtime at start-up */
    _Atomic uint64_t admin_requests;
    _Atomic uint64_t admin_denied;
    char *admin_body; /* the last admin reply body (control thread; open_memstream) */
    char tcp_text[80];
    char http_text[80];
    char admin_text[80];
};

/* Every worker's counters summed (one consistent-enough read: relaxed loads, no lock), for
 * /metrics, the shutdown summary and later /debug/vars. Any thread. */
typedef struct {
    uint64_t accepted;
    uint64_t rejected[ING_VERDICT_COUNT]; /* index: ing_verdict_t; [0] unused */
    uint64_t bytes_tcp;
    uint64_t bytes_http;
    uint64_t conns_total;
    uint64_t conns_refused;
    uint64_t conns_timed_out;
    uint64_t read_pauses;
    uint64_t sink_failures;
    uint64_t oversize;
    int64_t conns_active;
    uint64_t http_responses[SRV_HTTP_CODES];
    metrics_hist_t trim; /* merged trim-duration histogram */
} srv_totals_t;
void srv_server_totals(srv_server_t *s, srv_totals_t *out);
/* One accepted-events count per type over all workers' tables, the overflow of every table
 * folded into one ING_TYPE_OTHER entry. Returns a new array (mem_free) of *n entries, whose
 * names are borrowed from the workers' tables (valid while the workers are), or NULL. */
srv_vars_type_t *srv_server_types(srv_server_t *s, size_t *n);

/* worker.c */
/* Initialises w->wake on w->loop (before the loop's thread starts). Returns 0 or a libuv error. */
int srv_worker_init_handles(srv_worker_t *w);
/* Sets up w (loop, listeners, timers, cache) on the calling thread; w->loop must be initialised
 * with w->wake. Returns 0 or a negative error (logged). */
int srv_worker_setup(srv_worker_t *w);
/* Runs the loop until drained, then frees the loop's resources. */
void srv_worker_run(srv_worker_t *w);
/* Drains whatever is still open (after a failed set-up or at the end), runs the loop until its
 * handles are closed and frees the worker's cache and arena. Loop thread. */
void srv_worker_teardown(srv_worker_t *w);
/* The wake callback's work: start draining or apply the memory state. Loop thread. */
void srv_worker_poll_flags(srv_worker_t *w);
/* GET/HEAD of /metrics, /healthz, /readyz on any listener (http.h on_get contract). */
int srv_conn_get(srv_conn_t *c, const char *path, srv_http_reply_t *reply);
/* Worker side of a trim cycle: when the control asked, trims this loop's cache and answers.
 * Loop thread (also from start_drain, under wake_lock, so no request goes unanswered). */
void srv_worker_answer_trim(srv_worker_t *w);

/* server.c: wakes every worker not yet closed (any thread); re-reads s->memory_limit after a
 * change (control thread). */
void srv_server_wake_all(srv_server_t *s);
void srv_server_limit_changed(srv_server_t *s);

/* control.c (control thread unless said otherwise) */
/* Before workers start: allocation profile rate, trim timer, bind warning. Returns 0 or -errno. */
int srv_control_init(srv_server_t *s);
/* Starts a trim cycle unless one is running (a limit trim then runs right after it). Returns 1
 * when started. */
int srv_control_trim_begin(srv_server_t *s, srv_trim_reason_t reason);
/* From the control async: finishes a trim cycle every worker has answered. */
void srv_control_poll(srv_server_t *s);
/* Stops and closes the control's own handles (drain). */
void srv_control_close(srv_server_t *s);
/* The admin listener's http.h on_request callback (ctx: the srv_conn_t). */
void srv_control_request(void *ctx, const char *method, const char *path, const char *query,
                         const char *body, size_t body_len, srv_http_reply_t *reply);
/* 1 when the peer of a just-accepted admin connection is outside --admin-allow (counted and
 * logged, rate-limited). */
int srv_control_deny(srv_server_t *s, const uv_tcp_t *conn);

/* Sums of the conns_active shards (any thread). */
int64_t srv_server_active_conns(srv_server_t *s);

#endif
