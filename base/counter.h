/* base/counter.h - the single-writer counter: the one increment every per-thread shard uses. */
#ifndef INGESTD_BASE_COUNTER_H
#define INGESTD_BASE_COUNTER_H

#include <stdatomic.h>
#include <stdint.h>

/* Adds n to a counter written by one thread only and read by any: a relaxed load and a relaxed
 * store, no read-modify-write (no lock prefix on the hot path). Readers use relaxed loads and
 * may see a slightly old value, never a torn one. Only the owner thread may call these. */
static inline void base_counter_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* The same for a signed gauge (d may be negative). */
static inline void base_gauge_add(_Atomic int64_t *g, int64_t d)
{
    atomic_store_explicit(g, atomic_load_explicit(g, memory_order_relaxed) + d,
                          memory_order_relaxed);
}

#endif
