/* server/worker.h - one ingest worker: a thread with its own libuv loop, its SO_REUSEPORT
 * listeners, its connections, pool cache and sink writer. Opaque to everything else: the control
 * thread asks it through these functions and reads its counters through shared.h. */
#ifndef INGESTD_SERVER_WORKER_H
#define INGESTD_SERVER_WORKER_H

#include "server/memtrace.h"
#include "server/shared.h"

typedef struct srv_worker srv_worker_t;

/* Creates worker id (< sh->nworkers) over bound, not yet listening sockets (-1: that transport is
 * off); the worker owns the fds from here on. Its counters and type table are sh->stats[id] and
 * sh->procs[id]. Returns 0 and a new worker in *out, or -ENOMEM (fds then still the caller's).
 * Main thread. */
int srv_worker_create(srv_shared_t *sh, unsigned id, int tcp_fd, int http_fd, srv_worker_t **out);

/* Starts the worker's thread: it sets up (listeners, cache, sink writer), raises sh->ready or
 * sh->failed, sends sh->ctl_async, and runs until sh->draining is seen after a wake; then it
 * drains (everything already read is processed), raises sh->done and sends sh->ctl_async.
 * Returns 0, or a libuv error (nothing started; its fds are closed by srv_worker_destroy).
 * Main thread, once. */
int srv_worker_start(srv_worker_t *w);

/* Makes the worker re-read sh's flags (draining, mem_over, pooled) at its next safe point.
 * Any thread; a no-op once the worker has closed its wake handle. */
void srv_worker_wake(srv_worker_t *w);

/* Asks the worker to trim its pool cache; it answers through sh->trim. Returns 1 when asked, 0
 * when the worker no longer takes requests (it will not answer). Any thread. */
int srv_worker_request_trim(srv_worker_t *w, srv_trim_reason_t reason);

/* Waits for a started worker's thread to end. Main thread. */
void srv_worker_join(srv_worker_t *w);

/* Frees w (closing its fds when it never started). srv_worker_destroy(NULL) does nothing.
 * Main thread, after srv_worker_join. */
void srv_worker_destroy(srv_worker_t *w);

#endif
