/* lg_hist.h - a log-linear latency histogram (HdrHistogram-like): values below 256 are exact,
 * above that each power of two is split into 128 buckets, so any recorded value is reported within
 * 1/128 (< 0.8%) of itself. Not thread-safe: one per thread, merged after. */
#ifndef INGESTD_LG_HIST_H
#define INGESTD_LG_HIST_H

#include <stdint.h>

#define LG_HIST_SUB 128
#define LG_HIST_BUCKETS (2 * LG_HIST_SUB + 56 * LG_HIST_SUB)

typedef struct {
    uint64_t counts[LG_HIST_BUCKETS];
    uint64_t total;
    uint64_t min;
    uint64_t max;
    double sum;
} lg_hist_t;

/* Empties the histogram. */
void lg_hist_reset(lg_hist_t *h);
/* Records one value (any uint64_t). */
void lg_hist_record(lg_hist_t *h, uint64_t v);
/* Adds src's counts into dst. */
void lg_hist_merge(lg_hist_t *dst, const lg_hist_t *src);
/* The value at percentile p (0..100): the highest value equivalent to the bucket holding the
 * ceil(p/100 * total)-th smallest value, clamped to [min, max]. 0 for an empty histogram. */
uint64_t lg_hist_percentile(const lg_hist_t *h, double p);
/* Mean of recorded values; 0 when empty. */
double lg_hist_mean(const lg_hist_t *h);

/* Bucket index of v and the highest value sharing that bucket (exposed for tests). */
unsigned lg_hist_index(uint64_t v);
uint64_t lg_hist_bucket_high(unsigned index);

#endif
