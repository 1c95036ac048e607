/* metrics.h - single-writer counters and histograms (one shard per thread, summed at scrape),
 * the Prometheus text exposition format 0.0.4, and the standard process collector. */
#ifndef INGESTD_METRICS_H
#define INGESTD_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/counter.h"

/* A counter shard written by one thread only and read by any: the writer does a relaxed load and
 * a relaxed store (no read-modify-write, no lock prefix); readers do relaxed loads. Put shards of
 * different threads in different cache lines (embed them in per-thread structs). */
typedef struct {
    _Atomic uint64_t v;
} metrics_counter_t;

static inline void metrics_counter_add(metrics_counter_t *c, uint64_t n)
{
    base_counter_add(&c->v, n);
}

static inline uint64_t metrics_counter_get(const metrics_counter_t *c)
{
    return atomic_load_explicit(&c->v, memory_order_relaxed);
}

/* A gauge shard with the same single-writer rule. */
typedef struct {
    _Atomic int64_t v;
} metrics_gauge_t;

static inline void metrics_gauge_set(metrics_gauge_t *g, int64_t v)
{
    atomic_store_explicit(&g->v, v, memory_order_relaxed);
}

static inline void metrics_gauge_add(metrics_gauge_t *g, int64_t d)
{
    base_gauge_add(&g->v, d);
}

static inline int64_t metrics_gauge_get(const metrics_gauge_t *g)
{
    return atomic_load_explicit(&g->v, memory_order_relaxed);
}

#define METRICS_HIST_MAX_BOUNDS 24

/* A histogram shard, single writer. bounds are upper bounds in base units (seconds), ascending,
 * borrowed (valid for the shard's life; usually a static array); +Inf is implicit. */
typedef struct {
    const double *bounds;
    size_t nbounds;
    _Atomic uint64_t buckets[METRICS_HIST_MAX_BOUNDS + 1]; /* non-cumulative; last is +Inf */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_ns; /* sum of observations in nanoseconds (seconds * 1e9) */
} metrics_hist_t;

/* Returns 0, or -EINVAL for more than METRICS_HIST_MAX_BOUNDS bounds or unsorted bounds. */
int metrics_hist_init(metrics_hist_t *h, const double *bounds, size_t nbounds);
/* Owner thread. */
void metrics_hist_observe_ns(metrics_hist_t *h, uint64_t ns);
/* Adds src's figures into dst (same bounds). Any thread; dst is the reader's own copy. */
void metrics_hist_merge(metrics_hist_t *dst, const metrics_hist_t *src);

/* A growable text buffer for one exposition. Allocates with mem_malloc (not on the hot path). */
typedef struct {
    char *buf;
    size_t len;
    size_t cap;
    int oom; /* set when growth failed; the text is then truncated and must not be served */
} metrics_writer_t;

void metrics_writer_init(metrics_writer_t *w);
void metrics_writer_free(metrics_writer_t *w);
void metrics_writer_printf(metrics_writer_t *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "# HELP name help\n# TYPE name type\n"; type is counter, gauge, histogram, untyped. HELP text
 * is escaped (backslash, newline). */
void metrics_family(metrics_writer_t *w, const char *name, const char *type, const char *help);

/* "name{labels} value\n"; labels is NULL or already-formatted `k="v",k2="v2"` (use
 * metrics_label_escape for values). Integers printed exactly; doubles exactly too, as the
 * shortest text that reads back as the same double (Go's strconv 'g' -1, as Prometheus clients
 * print: "0.1", "2.5", "1e+06"), and NaN, +Inf, -Inf as Prometheus spells them. */
void metrics_sample_u64(metrics_writer_t *w, const char *name, const char *labels, uint64_t v);
void metrics_sample_i64(metrics_writer_t *w, const char *name, const char *labels, int64_t v);
void metrics_sample_f64(metrics_writer_t *w, const char *name, const char *labels, double v);

/* "name{key="value"} v\n" with value escaped as metrics_label_escape does, never truncated. */
void metrics_sample_u64_label(metrics_writer_t *w, const char *name, const char *key,
                              const char *value, uint64_t v);

/* Writes a label value escaped for the text format (\\, \", \n) into out (NUL-terminated,
 * truncated to outsz between escape sequences, never inside one). Bytes that are not valid
 * UTF-8 become U+FFFD, since Prometheus rejects such label values. Returns the length written. */
size_t metrics_label_escape(char *out, size_t outsz, const char *value);

/* Formats v as samples and le labels are printed (see above) into out (NUL-terminated).
 * Returns the length written; 40 bytes always suffice. */
size_t metrics_format_double(char *out, size_t outsz, double v);

/* Writes the family header, then _bucket{le=...} (cumulative; le printed like Prometheus
 * clients: "0.0001", "2.5", "+Inf"), _sum (seconds) and _count (equal to the +Inf bucket). */
void metrics_hist_write(metrics_writer_t *w, const char *name, const char *help,
                        const metrics_hist_t *h);
/* The same sample lines without the header, with extra labels (NULL or `k="v"`, formatted as for
 * metrics_sample_u64) before le: for a histogram family with several label sets. */
void metrics_hist_samples(metrics_writer_t *w, const char *name, const char *labels,
                          const metrics_hist_t *h);

/* The standard process collector, read from /proc/self. Returns 0 or -errno. */
typedef struct {
    double cpu_seconds_total;
    uint64_t resident_memory_bytes;
    uint64_t virtual_memory_bytes;
    uint64_t open_fds;
    uint64_t max_fds;
    double start_time_seconds;
} metrics_process_t;

int metrics_process_read(metrics_process_t *out);
/* Writes the six process_* families with HELP and TYPE. */
void metrics_process_write(metrics_writer_t *w, const metrics_process_t *p);

#endif
