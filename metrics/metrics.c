/* metrics.c - the Prometheus text exposition format 0.0.4: a growable writer, family headers,
 * samples, label escaping, and per-thread histogram shards merged at scrape. */
#include "metrics/metrics.h"

#include "base/text.h"
#include "mem/mem.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WRITER_MIN_CAP 1024

void metrics_writer_init(metrics_writer_t *w)
{
    w->buf = NULL;
    w->len = 0;
    w->cap = 0;
    w->oom = 0;
}

void metrics_writer_free(metrics_writer_t *w)
{
    mem_free(w->buf);
    metrics_writer_init(w);
}

/* Makes room for need more bytes plus the NUL. Returns 0, or -ENOMEM with w->oom set. */
static int reserve(metrics_writer_t *w, size_t need)
{
    if (w->oom) {
        return -ENOMEM;
    }
    if (w->cap - w->len > need) {
        return 0;
    }
    size_t cap = w->cap ? w->cap : WRITER_MIN_CAP;
    while (cap - w->len <= need) {
        if (cap > SIZE_MAX / 2) {
            w->oom = 1;
            return -ENOMEM;
        }
        cap *= 2;
    }
    char *b = mem_realloc(w->buf, cap);
    if (b == NULL) {
        w->oom = 1;
        return -ENOMEM;
    }
    w->buf = b;
    w->cap = cap;
    return 0;
}

static void put(metrics_writer_t *w, const char *s, size_t n)
{
    if (reserve(w, n) != 0) {
        return;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

static void puts_(metrics_writer_t *w, const char *s)
{
    put(w, s, strlen(s));
}

void metrics_writer_printf(metrics_writer_t *w, const char *fmt, ...)
{
    va_list ap;
    char small[256];

    if (w->oom) {
        return;
    }
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        w->oom = 1; /* an encoding error: the text would be wrong, so refuse to serve it */
        return;
    }
    if ((size_t)n < sizeof small) {
        put(w, small, (size_t)n);
        return;
    }
    if (reserve(w, (size_t)n) != 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(w->buf + w->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    w->len += (size_t)n;
}

/* The shortest text that reads back as the same double, laid out like Go's
 * strconv.FormatFloat(v, 'g', -1, 64), which Prometheus clients use for values and le labels:
 * exponent form when the decimal exponent is below -4 or at least 6 ("1e+06", "1e-05"), plain
 * decimals otherwise ("0.0001", "100000", "2.5"). */
static void format_double(char *out, size_t outsz, double v)
{
    if (isnan(v)) {
        snprintf(out, outsz, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, outsz, "%s", v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == 0) {
        snprintf(out, outsz, "0");
        return;
    }
    char e[40];
    int prec;
    for (prec = 1; prec < 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v) {
            break;
        }
    }
    snprintf(e, sizeof e, "%.*e", prec - 1, v);
    const char *x = strchr(e, 'e');
    int exp = x ? atoi(x + 1) : 0;
    if (exp < -4 || exp >= 6) {
        snprintf(out, outsz, "%s", e);
    } else {
        int decimals = prec - 1 - exp;
        snprintf(out, outsz, "%.*f", decimals > 0 ? decimals : 0, v);
    }
}

/* The escaped form of the next unit of a label value (\\, \", \n; invalid UTF-8 becomes
 * U+FFFD). Writes at most 4 bytes to out, returns their count, and sets *used to the input
 * bytes consumed. */
static size_t escape_unit(const unsigned char *s, size_t n, size_t *used, char out[4])
{
    switch (s[0]) {
    case '\\':
        *used = 1;
        memcpy(out, "\\\\", 2);
        return 2;
    case '"':
        *used = 1;
        memcpy(out, "\\\"", 2);
        return 2;
    case '\n':
        *used = 1;
        memcpy(out, "\\n", 2);
        return 2;
    default:
        break;
    }
    size_t len = base_utf8_len(s, n);
    if (len == 0) {
        *used = 1;
        memcpy(out, "\xEF\xBF\xBD", 3);
        return 3;
    }
    *used = len;
    memcpy(out, s, len);
    return len;
}

size_t metrics_label_escape(char *out, size_t outsz, const char *value)
{
    if (outsz == 0) {
        return 0;
    }
    size_t len = 0;
    if (value != NULL) {
        const unsigned char *s = (const unsigned char *)value;
        size_t n = strlen(value);
        while (n > 0) {
            char unit[4];
            size_t used;
            size_t k = escape_unit(s, n, &used, unit);
            if (len + k > outsz - 1) {
                break; /* truncate between units, never inside one */
            }
            memcpy(out + len, unit, k);
            len += k;
            s += used;
            n -= used;
        }
    }
    out[len] = '\0';
    return len;
}

static void put_label_value(metrics_writer_t *w, const char *value)
{
    const unsigned char *s = (const unsigned char *)value;
    size_t n = strlen(value);
    while (n > 0) {
        char unit[4];
        size_t used;
        size_t k = escape_unit(s, n, &used, unit);
        put(w, unit, k);
        s += used;
        n -= used;
    }
}

void metrics_family(metrics_writer_t *w, const char *name, const char *type, const char *help)
{
    puts_(w, "# HELP ");
    puts_(w, name);
    put(w, " ", 1);
    for (const char *p = help ? help : ""; *p; p++) {
        if (*p == '\\') {
            put(w, "\\\\", 2);
        } else if (*p == '\n') {
            put(w, "\\n", 2);
        } else {
            put(w, p, 1);
        }
    }
    puts_(w, "\n# TYPE ");
    puts_(w, name);
    put(w, " ", 1);
    puts_(w, type);
    put(w, "\n", 1);
}

static void sample_head(metrics_writer_t *w, const char *name, const char *labels)
{
    puts_(w, name);
    if (labels != NULL && labels[0] != '\0') {
        put(w, "{", 1);
        puts_(w, labels);
        put(w, "}", 1);
    }
    put(w, " ", 1);
}

void metrics_sample_u64(metrics_writer_t *w, const char *name, const char *labels, uint64_t v)
{
    sample_head(w, name, labels);
    metrics_writer_printf(w, "%" PRIu64 "\n", v);
}

void metrics_sample_i64(metrics_writer_t *w, const char *name, const char *labels, int64_t v)
{
    sample_head(w, name, labels);
    metrics_writer_printf(w, "%" PRId64 "\n", v);
}

void metrics_sample_f64(metrics_writer_t *w, const char *name, const char *labels, double v)
{
    char num[40];
    format_double(num, sizeof num, v);
    sample_head(w, name, labels);
    puts_(w, num);
    put(w, "\n", 1);
}

void metrics_sample_u64_label(metrics_writer_t *w, const char *name, const char *key,
                              const char *value, uint64_t v)
{
    puts_(w, name);
    put(w, "{", 1);
    puts_(w, key);
    put(w, "=\"", 2);
    put_label_value(w, value ? value : "");
    put(w, "\"} ", 3);
    metrics_writer_printf(w, "%" PRIu64 "\n", v);
}

int metrics_hist_init(metrics_hist_t *h, const double *bounds, size_t nbounds)
{
    if (nbounds > METRICS_HIST_MAX_BOUNDS || (nbounds > 0 && bounds == NULL)) {
        return -EINVAL;
    }
    for (size_t i = 0; i < nbounds; i++) {
        if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
            return -EINVAL;
        }
    }
    h->bounds = bounds;
    h->nbounds = nbounds;
    for (size_t i = 0; i <= METRICS_HIST_MAX_BOUNDS; i++) {
        atomic_init(&h->buckets[i], 0);
    }
    atomic_init(&h->count, 0);
    atomic_init(&h->sum_ns, 0);
    return 0;
}

void metrics_hist_observe_ns(metrics_hist_t *h, uint64_t ns)
{
    /* ns / 1e9 is correctly rounded, so an observation equal to a bound's decimal literal lands
     * in that bound's bucket (le is "less than or equal"). */
    double s = (double)ns / 1e9;
    size_t i = 0;
    while (i < h->nbounds && s > h->bounds[i]) {
        i++;
    }
    base_counter_add(&h->buckets[i], 1);
    base_counter_add(&h->count, 1);
    base_counter_add(&h->sum_ns, ns);
}

void metrics_hist_merge(metrics_hist_t *dst, const metrics_hist_t *src)
{
    if (dst->nbounds != src->nbounds) {
        return; /* programmer error: shards of one family share their bounds */
    }
    for (size_t i = 0; i <= src->nbounds; i++) {
        base_counter_add(&dst->buckets[i],
                         atomic_load_explicit(&src->buckets[i], memory_order_relaxed));
    }
    base_counter_add(&dst->count, atomic_load_explicit(&src->count, memory_order_relaxed));
    base_counter_add(&dst->sum_ns, atomic_load_explicit(&src->sum_ns, memory_order_relaxed));
}

void metrics_hist_samples(metrics_writer_t *w, const char *name, const char *labels,
                          const metrics_hist_t *h)
{
    const char *sep = (labels != NULL && labels[0] != '\0') ? "," : "";
    const char *lab = labels ? labels : "";
    uint64_t cum = 0;
    char le[40];
    for (size_t i = 0; i <= h->nbounds; i++) {
        cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < h->nbounds) {
            format_double(le, sizeof le, h->bounds[i]);
        } else {
            snprintf(le, sizeof le, "+Inf");
        }
        metrics_writer_printf(w, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", name, lab, sep, le, cum);
    }
    /* _count is the +Inf bucket, not the count field, so a shard read while its owner writes
     * still gives a self-consistent histogram. */
    char sum[40];
    format_double(sum, sizeof sum,
                  (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9);
    if (lab[0] != '\0') {
        metrics_writer_printf(w, "%s_sum{%s} %s\n%s_count{%s} %" PRIu64 "\n", name, lab, sum, name,
                              lab, cum);
    } else {
        metrics_writer_printf(w, "%s_sum %s\n%s_count %" PRIu64 "\n", name, sum, name, cum);
    }
}

void metrics_hist_write(metrics_writer_t *w, const char *name, const char *help,
                        const metrics_hist_t *h)
{
    metrics_family(w, name, "histogram", help);
    metrics_hist_samples(w, name, NULL, h);
}

size_t metrics_format_double(char *out, size_t outsz, double v)
{
    if (outsz == 0) {
        return 0;
    }
    format_double(out, outsz, v);
    return strlen(out);
}
