/* server/control.h - the control loop, on the main thread: the admin listener and its own
 * connections, signals (drain, sink reopen), the memory-limit check, trim cycles, the shutdown
 * timer, the start line and the summary. Never on the hot path; it asks workers through
 * worker.h and reads their figures through shared.h. */
#ifndef INGESTD_SERVER_CONTROL_H
#define INGESTD_SERVER_CONTROL_H

#include "server/shared.h"
#include "server/worker.h"

typedef struct srv_control srv_control_t;

/* The listening addresses as bound, for the start line (copied). */
typedef struct {
    const char *tcp;
    const char *http;
    const char *admin;
} srv_listen_text_t;

/* Creates the control loop over sh and the workers (borrowed, not yet started; the control
 * starts them). admin_fd: the bound admin socket (-1: off), owned by the control from here on.
 * Initialises sh->ctl_async on the control loop. Returns 0 and a new control in *out, or a
 * negative errno / libuv error (logged; admin_fd then still the caller's). Main thread. */
int srv_control_create(srv_shared_t *sh, srv_worker_t **workers, int admin_fd,
                       const srv_listen_text_t *text, srv_control_t **out);

/* Starts the workers and runs the control loop until every worker has drained (SIGTERM or
 * SIGINT, or a failed start-up), then closes the sink and logs the summary. Returns the exit
 * code: 0 after a clean drain, 1 when a worker failed to start or the sink lost events. Main
 * thread, once. */
int srv_control_run(srv_control_t *c);

/* Frees the control (after srv_control_run; joins nothing). NULL does nothing. */
void srv_control_destroy(srv_control_t *c);

#endif
