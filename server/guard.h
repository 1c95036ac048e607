/* server/guard.h - an ingest worker's defences against hostile clients: the partial-line
 * budget and the line deadline (what a client can make us hold, and for how long), admission
 * (who may connect, how many per peer, room at the global cap) and bearer tokens. Called by
 * worker.c on the worker's loop thread only. */
#ifndef INGESTD_SERVER_GUARD_H
#define INGESTD_SERVER_GUARD_H

#include "server/worker_internal.h"

/* Brings c's held-bytes account up to date after its frame changed (ends_before: c->frame.ends
 * before the change; a line that ended restarts the deadline). */
void srv_guard_account(srv_worker_t *w, srv_conn_t *c, uint64_t ends_before);
/* The same for an HTTP connection's body carry buffer (held bytes now). */
void srv_guard_account_http(srv_worker_t *w, srv_conn_t *c, size_t held);
/* Drops the line c holds, counted under why (slow_line, over_budget); the rest of it is skipped
 * to its newline and the deadline runs again for that. */
void srv_guard_drop_line(srv_worker_t *w, srv_conn_t *c, ing_verdict_t why);
/* Makes room for extra bytes (0: just get within the budget): the oldest holders other than keep
 * (may be NULL) lose their lines while this worker does not fit. */
void srv_guard_budget_enforce(srv_worker_t *w, const srv_conn_t *keep, size_t extra);
/* ing_frame_ops_t.may_grow and srv_http_cbs_t.may_grow: may an unfinished line or body carry of
 * held bytes grow to cap? (over the memory limit: no; within the budget: yes, older holders
 * losing their lines first). ctx: the connection. */
int srv_guard_tcp_may_grow(void *ctx, size_t held, size_t cap);
int srv_guard_http_may_grow(void *ctx, size_t held, size_t cap);
/* srv_http_cbs_t.authorize: 0 when the Authorization value holds a valid token, else 401 with
 * the WWW-Authenticate header line in hdr (counted, logged rate-limited). ctx: the connection. */
int srv_guard_authorize(void *ctx, const char *value, size_t len, unsigned lines, char *hdr,
                        size_t hdrsz);
/* The admission rules for a just-accepted connection, in order: --ingest-allow (403), the
 * per-peer cap (503), the global cap (room made by closing this worker's connection idle
 * longest; 503 when there is none). Returns 0 when c may stay, else -1: it was refused (HTTP
 * gets the status before the close) and counted. */
int srv_guard_admit(srv_worker_t *w, srv_conn_t *c);

#endif
