/* server/policy.c - the pausing rules (policy.h). */
#include "server/policy.h"

int srv_policy_shedding(const srv_pause_t *p)
{
    return p->sink_full || p->mem_paused || p->draining;
}

int srv_policy_tcp_may_read(const srv_pause_t *p, int holds_line, int probe)
{
    if (p->sink_full || p->draining) {
        return 0;
    }
    return !p->mem_paused || probe || holds_line;
}

int srv_policy_line_may_grow(const srv_pause_t *p)
{
    return !p->mem_paused;
}

size_t srv_policy_pick_probes(const srv_pause_t *p, const srv_limit_view_t *v, size_t n,
                              size_t probes[SRV_LIMIT_PROBES])
{
    size_t np = 0;

    if (p->sink_full || p->draining) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i].holds_line) {
            return 0;
        }
    }
    for (size_t i = 0; i < n && np < SRV_LIMIT_PROBES; i++) {
        if (v[i].eligible) {
            probes[np++] = i;
        }
    }
    return np;
}

int srv_policy_budget_fits(uint64_t worker_held, uint64_t all_held, uint64_t extra, uint64_t budget,
                           unsigned nworkers)
{
    if (budget == 0) {
        return 1;
    }
    uint64_t share = budget / (nworkers != 0 ? nworkers : 1);
    return worker_held + extra <= share || all_held + extra <= budget;
}
