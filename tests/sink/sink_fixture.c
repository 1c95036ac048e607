/* sink_fixture.c - see sink_fixture.h. */
#include "sink_fixture.h"

#include <stdlib.h>
#include <string.h>

counting_t counting;

void counting_reset(void)
{
    atomic_store(&counting.live, 0);
    atomic_store(&counting.peak, 0);
    atomic_store(&counting.allocs, 0);
}

void *counting_alloc(size_t size)
{
    size_t *p = malloc(sizeof(max_align_t) + size);
    if (p == NULL) {
        return NULL;
    }
    *p = size;
    size_t live = atomic_fetch_add(&counting.live, size) + size;
    size_t peak = atomic_load(&counting.peak);
    while (live > peak && !atomic_compare_exchange_weak(&counting.peak, &peak, live)) {
    }
    atomic_fetch_add(&counting.allocs, 1);
    return (char *)p + sizeof(max_align_t);
}

void counting_free(void *ptr)
{
    if (ptr == NULL) {
        return;
    }
    size_t *p = (size_t *)(void *)((char *)ptr - sizeof(max_align_t));
    atomic_fetch_sub(&counting.live, *p);
    free(p);
}

void on_writable(void *ctx)
{
    ((waiter_t *)ctx)->writable++;
}

void on_durable(void *ctx)
{
    ((waiter_t *)ctx)->durable_calls++;
}

static void on_guard(uv_timer_t *t)
{
    ((waiter_t *)t->data)->timed_out = 1;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

int waiter_init(waiter_t *wt, uint64_t guard_ms)
{
    memset(wt, 0, sizeof(*wt));
    wt->guard.data = wt;
    wt->guard_ms = guard_ms;
    if (uv_loop_init(&wt->loop) != 0) {
        return -1;
    }
    /* On an initialised loop, timer init cannot fail. */
    uv_timer_init(&wt->loop, &wt->guard);
    uv_timer_init(&wt->loop, &wt->tick);
    return 0;
}

int waiter_close(waiter_t *wt)
{
    uv_close((uv_handle_t *)&wt->guard, NULL);
    uv_close((uv_handle_t *)&wt->tick, NULL);
    uv_run(&wt->loop, UV_RUN_DEFAULT);
    return uv_loop_close(&wt->loop);
}

int wait_writable(waiter_t *wt)
{
    int before = wt->writable;
    wt->timed_out = 0;
    uv_timer_start(&wt->guard, on_guard, wt->guard_ms, 0);
    while (wt->writable == before && !wt->timed_out) {
        uv_run(&wt->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&wt->guard);
    return wt->timed_out ? -1 : 0;
}

int wait_durable(waiter_t *wt, sink_writer_t *w, uint64_t seq)
{
    wt->timed_out = 0;
    uv_timer_start(&wt->guard, on_guard, wt->guard_ms, 0);
    uv_timer_start(&wt->tick, on_tick, 50, 50);
    while (sink_writer_durable(w) < seq && !wt->timed_out) {
        uv_run(&wt->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&wt->tick);
    uv_timer_stop(&wt->guard);
    return wt->timed_out ? -1 : 0;
}
