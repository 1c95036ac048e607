/* server/trim.c - the trim rendezvous between the control thread and the workers (trim.h). */
#include "server/trim.h"

int srv_trim_open(srv_trim_t *t, uv_async_t *notify)
{
    int r = uv_mutex_init(&t->lock);
    if (r != 0) {
        return r;
    }
    r = uv_cond_init(&t->cond);
    if (r != 0) {
        uv_mutex_destroy(&t->lock);
        return r;
    }
    t->notify = notify;
    return 0;
}

void srv_trim_close(srv_trim_t *t)
{
    uv_cond_destroy(&t->cond);
    uv_mutex_destroy(&t->lock);
}

void srv_trim_begin(srv_trim_t *t, unsigned expected)
{
    uv_mutex_lock(&t->lock);
    t->answers = 0;
    t->released = 0;
    t->ns = 0;
    uv_mutex_unlock(&t->lock);
    t->expected = expected;
    t->active = 1;
}

int srv_trim_done(srv_trim_t *t)
{
    uv_mutex_lock(&t->lock);
    int done = t->answers >= t->expected;
    uv_mutex_unlock(&t->lock);
    return done;
}

int srv_trim_wait(srv_trim_t *t, uint64_t timeout_ns)
{
    uint64_t deadline = uv_hrtime() + timeout_ns;
    int done;

    uv_mutex_lock(&t->lock);
    while (!(done = t->answers >= t->expected)) {
        uint64_t now = uv_hrtime();
        if (now >= deadline || uv_cond_timedwait(&t->cond, &t->lock, deadline - now) != 0) {
            done = t->answers >= t->expected;
            break;
        }
    }
    uv_mutex_unlock(&t->lock);
    return done;
}

void srv_trim_collect(srv_trim_t *t, uint64_t *released, uint64_t *ns)
{
    uv_mutex_lock(&t->lock);
    *released = t->released;
    *ns = t->ns;
    uv_mutex_unlock(&t->lock);
}

void srv_trim_answer(srv_trim_t *t, size_t released, uint64_t ns)
{
    uv_mutex_lock(&t->lock);
    t->answers++;
    t->released += released;
    t->ns += ns;
    uv_cond_signal(&t->cond);
    uv_mutex_unlock(&t->lock);
    uv_async_send(t->notify);
}
