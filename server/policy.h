/* server/policy.h - when a worker lets a connection read: the pausing rules as pure functions,
 * so the property that matters (the memory limit never deadlocks ingest) is unit-tested.
 *
 * The sink falling behind or draining pauses every TCP connection: nothing more may be read.
 * The memory limit pauses only what reading would grow. Over the limit, a TCP connection that
 * holds a partial line (a pooled block, an assembly buffer, or a too-large line being skipped)
 * keeps reading: its next read lands in memory it already holds, and completing the line is
 * what gives that memory back. Pausing it instead could never free anything - with every
 * connection holding a block and paused, the limit stalled ingest for good. A connection holding
 * nothing would need a new block, so it is paused (and new ones start paused); HTTP answers 503.
 * When no connection on a worker holds a partial line and memory is still over the limit, the
 * pause has nothing left to wait for (what is over is not blocks: connection state, the sink, a
 * limit below the idle footprint): then at most SRV_LIMIT_PROBES paused connections, taken in
 * turn, may read until the next check. So the limit never deadlocks, and what reading adds above
 * it is bounded by the partial lines already held plus SRV_LIMIT_PROBES blocks per worker. */
#ifndef INGESTD_SERVER_POLICY_H
#define INGESTD_SERVER_POLICY_H

#include <stddef.h>
#include <stdint.h>

/* Connections a worker lets read per memory check while over the limit with no line held. */
#define SRV_LIMIT_PROBES 32

/* A worker's reasons to hold back reads. */
typedef struct {
    int sink_full;  /* the sink writer is full (backpressure) */
    int mem_paused; /* live bytes are over --memory-limit */
    int draining;   /* shutting down */
} srv_pause_t;

/* 1 when HTTP ingest must answer 503 (shed) rather than read a body. */
int srv_policy_shedding(const srv_pause_t *p);

/* 1 when a TCP connection may read now: never while the sink is full or draining; over the
 * memory limit only when it holds a partial line or is a probe. */
int srv_policy_tcp_may_read(const srv_pause_t *p, int holds_line, int probe);

/* 1 when an unfinished TCP line may take more memory (its assembly buffer grow): never over the
 * memory limit, where a line holder may read only into what it holds - what completes the line;
 * a line that needs more is dropped (over_budget), which gives its memory back. So partial
 * lines add nothing above the limit, and no holder waits on memory it cannot get. */
int srv_policy_line_may_grow(const srv_pause_t *p);

/* The partial-line budget (--partial-budget, split evenly among workers): 1 when a worker that
 * holds worker_held bytes in unfinished lines, while all workers hold all_held, may hold extra
 * more. A worker may always hold its share (budget / nworkers), so a fresh client's line is never
 * refused for what other workers hold; beyond its share only while the sum stays within the
 * budget. budget 0: no budget (always 1). When it says 0 the worker drops its oldest holders'
 * lines first (over_budget) and asks again, so what all workers hold stays within the budget
 * plus, transiently, one growth step per worker. Pure. */
int srv_policy_budget_fits(uint64_t worker_held, uint64_t all_held, uint64_t extra, uint64_t budget,
                           unsigned nworkers);

/* What one TCP connection looks like to the rebalance (in the worker's list order). */
typedef struct {
    int holds_line; /* bytes of an unfinished line are held */
    int eligible;   /* open and not finishing: could be a probe */
} srv_limit_view_t;

/* Over the memory limit, at each check: which connections become probes. Fills probes[] with
 * indexes into v (at most SRV_LIMIT_PROBES, in list order) and returns how many: none when any
 * connection holds a line (those read and will free memory) or when the sink is full or the
 * worker drains; else the first eligible ones. The caller moves the chosen ones to the back of
 * its list so the next check picks others. */
size_t srv_policy_pick_probes(const srv_pause_t *p, const srv_limit_view_t *v, size_t n,
                              size_t probes[SRV_LIMIT_PROBES]);

#endif
