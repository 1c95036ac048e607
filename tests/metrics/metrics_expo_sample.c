/* metrics_expo_sample.c - prints a sample exposition with every kind of family this module
 * writes (counters with escaped labels, gauges, special values, a histogram, the memstats and
 * process families), for `promtool check metrics` (ctest unit.metrics_promtool). */
#include "mem/mem.h"
#include "metrics/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const double trim_bounds[] = {0.00001, 0.0001, 0.001, 0.01, 0.1, 1};

int main(void)
{
    if (mem_init(MEM_ALLOCATOR_LIBC) != 0) {
        fprintf(stderr, "mem_init: %s\n", mem_last_error());
        return 1;
    }
    metrics_writer_t w;
    metrics_writer_init(&w);

    metrics_family(&w, "ingestd_events_rejected_total", "counter",
                   "Events rejected, by reason.\nSecond line with a \\ backslash.");
    const char *reasons[] = {"parse",     "not_object", "no_type",    "too_large",
                             "truncated", "slow_line",  "over_budget"};
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        metrics_sample_u64_label(&w, "ingestd_events_rejected_total", "reason", reasons[i], i);
    }
    metrics_family(&w, "ingestd_events_by_type_total", "counter", "Accepted events by type.");
    metrics_sample_u64_label(&w, "ingestd_events_by_type_total", "type", "click", UINT64_MAX);
    metrics_sample_u64_label(&w, "ingestd_events_by_type_total", "type", "we\"ird\\type\nname \xff",
                             3);
    metrics_sample_u64_label(&w, "ingestd_events_by_type_total", "type", "_other", 0);

    metrics_family(&w, "ingestd_sample_special_values", "gauge", "Special float values.");
    metrics_sample_f64(&w, "ingestd_sample_special_values", "kind=\"nan\"", NAN);
    metrics_sample_f64(&w, "ingestd_sample_special_values", "kind=\"pos_inf\"", INFINITY);
    metrics_sample_f64(&w, "ingestd_sample_special_values", "kind=\"neg_inf\"", -INFINITY);
    metrics_sample_f64(&w, "ingestd_sample_special_values", "kind=\"tiny\"", 5e-324);
    metrics_sample_i64(&w, "ingestd_sample_special_values", "kind=\"int_min\"", INT64_MIN);

    metrics_hist_t h;
    if (metrics_hist_init(&h, trim_bounds, sizeof trim_bounds / sizeof trim_bounds[0]) != 0) {
        return 1;
    }
    for (uint64_t ns = 1000; ns < 3000000000u; ns *= 3) {
        metrics_hist_observe_ns(&h, ns);
    }
    metrics_hist_write(&w, "ingestd_pool_trim_duration_seconds", "Time each pool trim cycle takes.",
                       &h);

    void *p = mem_malloc(1000);
    mem_stats_t st;
    mem_stats(&st);
    metrics_family(&w, "ingestd_memstats_alloc_bytes", "gauge",
                   "Live bytes through the counting allocator layer.");
    metrics_sample_i64(&w, "ingestd_memstats_alloc_bytes", NULL, st.alloc_bytes);
    metrics_family(&w, "ingestd_memstats_alloc_bytes_total", "counter",
                   "Usable bytes ever allocated through the layer.");
    metrics_sample_u64(&w, "ingestd_memstats_alloc_bytes_total", NULL, st.alloc_bytes_total);
    metrics_family(&w, "ingestd_memstats_mallocs_total", "counter", "Allocations.");
    metrics_sample_u64(&w, "ingestd_memstats_mallocs_total", NULL, st.mallocs);
    metrics_family(&w, "ingestd_memstats_frees_total", "counter", "Frees.");
    metrics_sample_u64(&w, "ingestd_memstats_frees_total", NULL, st.frees);
    metrics_family(&w, "ingestd_memstats_sys_bytes", "gauge",
                   "Bytes the allocator holds from the OS.");
    metrics_sample_u64(&w, "ingestd_memstats_sys_bytes", NULL, mem_sys_bytes());
    mem_free(p);

    metrics_process_t proc;
    if (metrics_process_read(&proc) != 0) {
        fprintf(stderr, "metrics_process_read failed\n");
        return 1;
    }
    metrics_process_write(&w, &proc);

    if (w.oom) {
        fprintf(stderr, "out of memory while writing\n");
        return 1;
    }
    int rc = fwrite(w.buf, 1, w.len, stdout) == w.len ? 0 : 1;
    metrics_writer_free(&w);
    return rc;
}
