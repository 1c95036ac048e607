/* server/server.h - the ingestd service: worker loops with SO_REUSEPORT listeners for TCP and
 * HTTP ingest, and the control loop (admin listener, signals, memory limit, drain). */
#ifndef INGESTD_SERVER_SERVER_H
#define INGESTD_SERVER_SERVER_H

#include "server/config.h"

typedef struct srv_server srv_server_t;

/* Creates the service from cfg (copied): the pool, the sink and every listening socket (bound
 * here, so port 0 is resolved once and shared by all workers), the workers and the control
 * loop. The counting allocator layer, libuv's and jansson's hooks must already be installed
 * (main does it). Logs what failed. Returns 0 and a new server in *out, or a negative errno.
 * Main thread. */
int srv_server_create(const srv_config_t *cfg, srv_server_t **out);

/* Starts the worker threads and runs the control loop on the calling thread until a drain
 * (SIGTERM/SIGINT) completes. Logs the start line (with the bound ports) once every worker
 * listens, and one summary line at the end. Returns the process exit code: 0 after a clean
 * drain, 1 when a worker failed to start or the sink lost events. Main thread, once. */
int srv_server_run(srv_server_t *s);

/* Frees everything. srv_server_destroy(NULL) does nothing. Main thread, after srv_server_run. */
void srv_server_destroy(srv_server_t *s);

#endif
