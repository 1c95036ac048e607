/* hist.c - the log-linear latency histogram. */
#include "lg_hist.h"

#include <string.h>

void lg_hist_reset(lg_hist_t *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

unsigned lg_hist_index(uint64_t v)
{
    if (v < 2 * LG_HIST_SUB) {
        return (unsigned)v;
    }
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= 8 */
    unsigned shift = e - 7;
    return 2 * LG_HIST_SUB + (e - 8) * LG_HIST_SUB + (unsigned)((v >> shift) - LG_HIST_SUB);
}

uint64_t lg_hist_bucket_high(unsigned index)
{
    if (index < 2 * LG_HIST_SUB) {
        return index;
    }
    unsigned e = (index - 2 * LG_HIST_SUB) / LG_HIST_SUB + 8;
    unsigned sub = (index - 2 * LG_HIST_SUB) % LG_HIST_SUB;
    unsigned shift = e - 7;
    uint64_t lo = ((uint64_t)LG_HIST_SUB + sub) << shift;
    return lo + ((uint64_t)1 << shift) - 1;
}

void lg_hist_record(lg_hist_t *h, uint64_t v)
{
    h->counts[lg_hist_index(v)]++;
    h->total++;
    h->sum += (double)v;
    if (v < h->min) {
        h->min = v;
    }
    if (v > h->max) {
        h->max = v;
    }
}

void lg_hist_merge(lg_hist_t *dst, const lg_hist_t *src)
{
    if (src->total == 0) {
        return;
    }
    for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
        dst->counts[i] += src->counts[i];
    }
    dst->total += src->total;
    dst->sum += src->sum;
    if (src->min < dst->min) {
        dst->min = src->min;
    }
    if (src->max > dst->max) {
        dst->max = src->max;
    }
}

uint64_t lg_hist_percentile(const lg_hist_t *h, double p)
{
    if (h->total == 0) {
        return 0;
    }
    if (p >= 100.0) {
        return h->max;
    }
    if (p <= 0.0) {
        return h->min;
    }
    uint64_t rank = (uint64_t)(p / 100.0 * (double)h->total + 0.999999999);
    if (rank < 1) {
        rank = 1;
    }
    uint64_t seen = 0;
    for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = lg_hist_bucket_high(i);
            if (v > h->max) {
                v = h->max;
            }
            if (v < h->min) {
                v = h->min;
            }
            return v;
        }
    }
    return h->max;
}

double lg_hist_mean(const lg_hist_t *h)
{
    return h->total ? h->sum / (double)h->total : 0.0;
}
