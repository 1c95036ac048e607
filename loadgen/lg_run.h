/* lg_run.h - `loadgen run`: sends a precomputed corpus over NDJSON/TCP or HTTP POST from one
 * thread per connection, open-loop paced, measures HTTP latency from each request's intended send
 * time (no coordinated omission), and reads the server's /metrics before and after to report CPU
 * and allocations per event and to check that nothing was lost. */
#ifndef INGESTD_LG_RUN_H
#define INGESTD_LG_RUN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "lg_corpus.h"
#include "lg_hist.h"
#include "lg_prom.h"

typedef struct {
    lg_url_t target;           /* tcp://H:P or http://H:P/path */
    unsigned connections;      /* >= 1, one sender thread each */
    uint64_t events;           /* events to send after warm-up; 0: send for duration_s */
    double duration_s;         /* used when events == 0 */
    double rate;               /* events per second over all connections; 0: as fast as possible */
    unsigned batch;            /* events per HTTP request */
    bool gzip;                 /* HTTP: gzip each request body (level 1), Content-Encoding: gzip */
    double warmup_s;           /* load sent first and excluded from every figure; 0: none */
    size_t write_bytes;        /* TCP: bytes per write at most (whole events; at least one) */
    const lg_corpus_t *corpus; /* borrowed for the run */
    bool has_metrics;          /* scrape `metrics` before and after */
    lg_url_t metrics;
    pid_t server_pid;       /* > 0: sample this process's RSS from /proc during the run */
    double sample_interval; /* seconds between RSS samples / progress lines */
    bool progress;          /* progress line on stderr */
    double drain_timeout_s; /* TCP: wait this long for the server to close after our EOF */
} lg_run_config_t;

/* Defaults: 1 connection, 100000 events, max rate, batch 100, 64 KiB writes, 0.1 s samples,
 * 30 s drain timeout. target, corpus and metrics are left for the caller. */
void lg_run_config_default(lg_run_config_t *cfg);

typedef struct {
    double t;         /* seconds since the run (warm-up included) started */
    double rss_bytes; /* server RSS */
} lg_sample_t;

typedef struct {
    uint64_t sent_events; /* measured phase only */
    uint64_t sent_bytes;
    uint64_t warmup_events;
    uint64_t requests; /* HTTP requests (measured phase) */
    uint64_t errors;   /* I/O errors and bad responses, all phases */
    uint64_t reconnects;
    uint64_t http_non200; /* responses other than 200, all phases */
    uint64_t http_non200_events;
    uint64_t resp_accepted; /* sums of the HTTP answers' "accepted"/"rejected" (measured) */
    uint64_t resp_rejected;
    uint64_t expected_invalid; /* invalid events among those sent (measured phase) */
    double elapsed_s;          /* first intended send to last answer / server close */
    double send_s;             /* first intended send to last write */
    double events_per_s;       /* sent_events / elapsed_s */
    lg_hist_t *latency;        /* HTTP request latency in ns; new, NULL for TCP */
    bool has_server;           /* scrapes succeeded; the server_* figures below are set */
    lg_scrape_t start, before, after;
    double server_accepted; /* deltas over the measured phase */
    double server_rejected;
    double server_cpu_s;
    double cpu_us_per_event;
    double allocs_per_event;
    double pool_hit_rate; /* NAN when the pool was not used */
    double peak_rss_bytes;
    bool loss_checked;
    int64_t lost; /* sent (both phases, minus non-200) - server's accepted+rejected */
    lg_sample_t *samples;
    size_t nsamples;
    char error[512]; /* why lg_run failed */
} lg_run_result_t;

/* Runs the load. Returns 0 (figures in *res; check res->lost) or a negative errno with
 * res->error saying what failed (e.g. cannot connect). Always lg_run_result_free *res after. */
int lg_run(const lg_run_config_t *cfg, lg_run_result_t *res);
void lg_run_result_free(lg_run_result_t *res);

/* The human table. */
void lg_run_print(FILE *out, const lg_run_config_t *cfg, const lg_run_result_t *res);
/* Every figure as a new JSON object (NAN as null). */
json_t *lg_run_json(const lg_run_config_t *cfg, const lg_run_result_t *res);

/* Monotonic clock in nanoseconds. */
uint64_t lg_now_ns(void);
/* Reads VmHWM (peak RSS) or VmRSS of pid from /proc, in bytes; NAN if unreadable. */
double lg_proc_rss(pid_t pid, bool peak);

#endif
