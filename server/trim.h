/* server/trim.h - the trim rendezvous: the control thread asks every worker to trim its own pool
 * cache (a cache is owner-thread-only), each answers here, and the control finishes the cycle. */
#ifndef INGESTD_SERVER_TRIM_H
#define INGESTD_SERVER_TRIM_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "server/memtrace.h"

/* Control thread: srv_trim_open (before workers start), srv_trim_begin (after asking the
 * workers), srv_trim_done / srv_trim_wait, srv_trim_collect. Workers: srv_trim_answer, once
 * per request they took. The counters below lock are guarded by it; the rest is control-only. */
typedef struct {
    uv_mutex_t lock;
    uv_cond_t cond;
    unsigned answers;   /* under lock */
    uint64_t released;  /* blocks, under lock */
    uint64_t ns;        /* summed worker trim time, under lock */
    uv_async_t *notify; /* sent after each answer (the control's async) */
    /* control thread only */
    unsigned expected;
    int active;
    int pending;      /* a limit trim asked for while a cycle ran */
    uint64_t cycle;   /* cycles finished */
    srv_memtrace_t m; /* the cycle being run */
} srv_trim_t;

/* Initialises t; notify is sent after every answer. Returns 0 or a libuv error. */
int srv_trim_open(srv_trim_t *t, uv_async_t *notify);
void srv_trim_close(srv_trim_t *t);

/* Control: a cycle began and `expected` workers were asked. Resets the answers. */
void srv_trim_begin(srv_trim_t *t, unsigned expected);
/* Control: 1 when every asked worker has answered. */
int srv_trim_done(srv_trim_t *t);
/* Control: waits up to timeout_ns for every answer. Returns 1 when all answered. */
int srv_trim_wait(srv_trim_t *t, uint64_t timeout_ns);
/* Control: what the answers so far add up to (blocks released, nanoseconds). */
void srv_trim_collect(srv_trim_t *t, uint64_t *released, uint64_t *ns);

/* Worker: this worker trimmed (released blocks, taking ns). Any worker thread. */
void srv_trim_answer(srv_trim_t *t, size_t released, uint64_t ns);

#endif
