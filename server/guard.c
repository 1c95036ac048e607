/* server/guard.c - an ingest worker's defences against hostile clients (guard.h): the
 * partial-line budget and the line deadline, admission (--ingest-allow, the per-peer cap, room
 * at the global cap by closing the connection idle longest) and bearer tokens. */
#include "server/guard.h"

#include <errno.h>
#include <stdio.h>

#include "server/allow.h"
#include "server/expo.h"
#include "server/log.h"
#include "server/peers.h"

static srv_ratelimit_t rl_auth;

/* ---- the partial-line budget and the line deadline ----
 *
 * Each TCP connection's held bytes (ing_frame_held) are summed per worker (w->held, plain) and
 * process-wide (sh->partial_held, a relaxed fetch_add when a connection's holding changes: when
 * it starts or stops holding a line or its assembly buffer grows, never per event). The budget
 * is split evenly: a worker may always hold its share (budget / workers), and more while the
 * process-wide sum stays within the budget. A worker over its share while the sum is over the
 * budget drops the lines of its oldest holders first, so a fresh client keeps its line. */

/* Brings c's account up to date after its frame changed. ends_before: c->frame.ends before the
 * change (a line ended when it moved: the deadline restarts for the line held now). */
void srv_guard_account(srv_worker_t *w, srv_conn_t *c, uint64_t ends_before)
{
    size_t held = ing_frame_held(&c->frame);

    if (!ing_frame_pending(&c->frame)) {
        c->line_start = 0;
    } else if (c->line_start == 0 || c->frame.ends != ends_before) {
        c->line_start = uv_now(&w->loop);
    }
    if (held != c->held) {
        atomic_fetch_add_explicit(&w->sh->partial_held, (uint64_t)held - (uint64_t)c->held,
                                  memory_order_relaxed);
        w->held = w->held + held - c->held;
        c->held = held;
    }
}

/* The same for an HTTP connection: the carry buffer of its request bodies (no deadline here:
 * --body-timeout bounds a body's time). */
void srv_guard_account_http(srv_worker_t *w, srv_conn_t *c, size_t held)
{
    if (held != c->held) {
        atomic_fetch_add_explicit(&w->sh->partial_held, (uint64_t)held - (uint64_t)c->held,
                                  memory_order_relaxed);
        w->held = w->held + held - c->held;
        c->held = held;
    }
}

/* Drops the line c holds (counted under why); the rest of it is skipped to its newline, and the
 * deadline runs again for that. */
void srv_guard_drop_line(srv_worker_t *w, srv_conn_t *c, ing_verdict_t why)
{
    if (ing_frame_drop(&c->frame)) {
        metrics_counter_add(&w->st->rejected[why], 1);
        srv_guard_account(w, c, c->frame.ends);
        c->line_start = uv_now(&w->loop);
    }
}

/* 1 when this worker may hold extra more bytes (policy above). */
static int budget_fits(const srv_worker_t *w, size_t extra)
{
    uint64_t all = atomic_load_explicit(&w->sh->partial_held, memory_order_relaxed);
    return srv_policy_budget_fits(w->held, all, extra, w->sh->partial_budget, w->sh->nworkers);
}

/* Makes room for extra bytes (0: just get within the budget): the oldest holders other than
 * keep lose their lines (over_budget) while this worker does not fit. Loop thread. */
void srv_guard_budget_enforce(srv_worker_t *w, const srv_conn_t *keep, size_t extra)
{
    while (!budget_fits(w, extra)) {
        srv_conn_t *oldest = NULL;
        for (base_link_t *l = w->conns.head; l != NULL; l = l->next) {
            srv_conn_t *c = srv_worker_conn(l);
            if (c != keep && c->kind == SRV_CONN_TCP && c->held > 0 &&
                (oldest == NULL || c->line_start < oldest->line_start)) {
                oldest = c;
            }
        }
        if (oldest == NULL) {
            return;
        }
        srv_guard_drop_line(w, oldest, ING_REJECT_OVER_BUDGET);
    }
}

/* The framer asks before an unfinished line's assembly buffer grows: over the memory limit a
 * line may only be completed in what it holds (policy.h); within the budget it may grow, older
 * holders losing their lines first to make room. */
int srv_guard_tcp_may_grow(void *ctx, size_t held, size_t cap)
{
    srv_conn_t *c = ctx;
    srv_worker_t *w = c->owner;

    if (!srv_policy_line_may_grow(&w->pause)) {
        return 0;
    }
    if (cap <= held || cap <= c->held) {
        return 1;
    }
    size_t extra = cap - (c->held > held ? c->held : held);
    srv_guard_budget_enforce(w, c, extra);
    return budget_fits(w, extra);
}

/* The same question from an HTTP body's carry buffer (a line or element crossing reads). Its
 * event is rejected over_budget when the answer is no; TCP holders make room first. */
int srv_guard_http_may_grow(void *ctx, size_t held, size_t cap)
{
    srv_conn_t *c = ctx;
    srv_worker_t *w = c->owner;

    if (!srv_policy_line_may_grow(&w->pause)) {
        return 0;
    }
    if (cap <= held) {
        return 1;
    }
    size_t extra = cap - held;
    srv_guard_budget_enforce(w, c, extra);
    if (!budget_fits(w, extra)) {
        return 0;
    }
    srv_guard_account_http(w, c, cap); /* counted before it is allocated, so the sum stays honest */
    return 1;
}

/* Bearer tokens (--ingest-tokens-file): the set in force now, checked in constant time. */
int srv_guard_authorize(void *ctx, const char *value, size_t len, unsigned lines, char *hdr,
                        size_t hdrsz)
{
    srv_conn_t *c = ctx;
    srv_worker_t *w = c->owner;
    const srv_auth_set_t *set = srv_auth_reader_current(&w->auth, w->sh->auth);
    srv_auth_result_t r = lines > 1 ? SRV_AUTH_MALFORMED : srv_auth_check(set, value, len);
    char chal[256];

    if (r == SRV_AUTH_OK) {
        return 0;
    }
    metrics_counter_add(&w->st->auth_denied, 1);
    srv_log_error_limited(&rl_auth, "ingest request refused: no valid bearer token", "result",
                          srv_auth_result_name(r), NULL);
    srv_auth_challenge(r, "ingestd", chal, sizeof(chal));
    snprintf(hdr, hdrsz, "WWW-Authenticate: %s\r\n", chal);
    return 401;
}

/* The open connection of this worker silent longest, other than c; NULL when none. */
static srv_conn_t *idlest(srv_worker_t *w, const srv_conn_t *c)
{
    srv_conn_t *best = NULL;
    for (base_link_t *l = w->conns.head; l != NULL; l = l->next) {
        srv_conn_t *o = srv_worker_conn(l);
        /* <=: the list is newest first, so at a tie (uv_now has ms resolution) the older wins. */
        if (o != c && o->state == SRV_CONN_OPEN &&
            (best == NULL || o->last_active <= best->last_active)) {
            best = o;
        }
    }
    return best;
}

/* Turns a new connection away: HTTP gets status (403 or 503) before the close. */
static void refuse(srv_conn_t *c, int status)
{
    if (c->kind == SRV_CONN_HTTP &&
        (status == 403
             ? srv_conn_send_response(c, "403 Forbidden", "text/plain", NULL, "forbidden\n")
             : srv_conn_send_response(c, "503 Service Unavailable", "text/plain", NULL,
                                      "too many connections\n")) == 0) {
        srv_conn_finish(c);
        return;
    }
    srv_conn_close(c);
}

/* The admission rules, in order: --ingest-allow (403), the per-peer cap (503), the global cap
 * (room made by closing this worker's connection idle longest; 503 when there is none). Returns
 * 0 when c may stay, else it was refused and counted. */
int srv_guard_admit(srv_worker_t *w, srv_conn_t *c)
{
    const srv_config_t *cfg = w->cfg;
    const struct sockaddr *peer = (const struct sockaddr *)&c->peer;
    int plen = (int)sizeof(c->peer);

    if (uv_tcp_getpeername(&c->handle, (struct sockaddr *)&c->peer, &plen) != 0) {
        c->peer.ss_family = AF_UNSPEC;
    }
    if (!srv_allow_match(&cfg->ingest_allow, peer)) {
        metrics_counter_add(&w->st->conns_refused_allow, 1);
        refuse(c, 403);
        return -1;
    }
    if (w->sh->peers != NULL && c->peer.ss_family != AF_UNSPEC) {
        int r = srv_peers_acquire(w->sh->peers, peer);
        if (r == -EUSERS) {
            metrics_counter_add(&w->st->conns_refused_peer, 1);
            refuse(c, 503);
            return -1;
        }
        c->peer_counted = r == 0; /* -ENOSPC/-ENOMEM: the global cap still bounds it */
    }
    if ((uint64_t)srv_expo_active_conns(w->sh) > cfg->max_connections) {
        srv_conn_t *victim = idlest(w, c);
        if (victim == NULL) {
            metrics_counter_add(&w->st->conns_refused, 1);
            refuse(c, 503);
            return -1;
        }
        metrics_counter_add(&w->st->conns_evicted, 1);
        srv_conn_close(victim);
    }
    return 0;
}
