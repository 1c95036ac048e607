/* sink_fixture.h - what the sink's tests share: a counting allocator for the sink (called from
 * the loop and the writer thread), and a loop that waits for on_writable or durability with a
 * guard timer. Used by unit.sink (tests/sink) and unit.nats (tests/nats). */
#ifndef INGESTD_TESTS_SINK_FIXTURE_H
#define INGESTD_TESTS_SINK_FIXTURE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "sink/sink.h"

typedef struct {
    atomic_size_t live;
    atomic_size_t peak;
    atomic_size_t allocs;
} counting_t;

/* A hidden global forced by the alloc_fn signature (no context pointer); tests reset it. */
extern counting_t counting;

void counting_reset(void);
void *counting_alloc(size_t size);
void counting_free(void *ptr);

typedef struct {
    uv_loop_t loop;
    uv_timer_t guard; /* a wait that never ends fails the test instead of hanging it */
    uv_timer_t tick;  /* wait_durable re-checks even without a callback */
    uint64_t guard_ms;
    int writable;      /* on_writable calls */
    int durable_calls; /* on_durable calls */
    int timed_out;
} waiter_t;

/* sink_writable_cb for ctx = a waiter_t: counts the calls. */
void on_writable(void *ctx);
void on_durable(void *ctx);

/* Returns 0 or -1 (no cmocka assert inside: loop threads of a test call it too). */
int waiter_init(waiter_t *wt, uint64_t guard_ms);
/* Closes the timers, runs the loop so destroyed writers free themselves; returns
 * uv_loop_close. */
int waiter_close(waiter_t *wt);
/* Runs the loop until on_writable (0) or the guard (-1). */
int wait_writable(waiter_t *wt);
/* Runs the loop until the writer's durable sequence reaches seq (0) or the guard (-1). */
int wait_durable(waiter_t *wt, sink_writer_t *w, uint64_t seq);

#endif
