/* log.c - stderr records in text or JSON, one write(2) each; rate-limited error lines. */
#include "server/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/text.h"

/* The process-wide format: written once at start-up, read by every thread afterwards. */
static srv_log_format_t log_format = SRV_LOG_TEXT;

void srv_log_init(srv_log_format_t format)
{
    log_format = format;
}

typedef struct {
    char buf[2048];
    size_t len;
} line_t;

static void put(line_t *l, const char *s, size_t n)
{
    if (l->len + n > sizeof(l->buf) - 2) {
        n = sizeof(l->buf) - 2 - l->len;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(line_t *l, const char *s)
{
    put(l, s, strlen(s));
}

/* A JSON string, escaped by the project's one rule (base/text.h). */
static void put_json(line_t *l, const char *s)
{
    size_t n = strlen(s);

    put(l, "\"", 1);
    while (n > 0) {
        char unit[BASE_JSON_UNIT_MAX];
        size_t used;
        size_t k = base_json_escape_unit(s, n, &used, unit);
        put(l, unit, k);
        s += used;
        n -= used;
    }
    put(l, "\"", 1);
}

/* A text value: bare when it has no space, quote or control character, else quoted. */
static void put_text_value(line_t *l, const char *s)
{
    int bare = *s != '\0';
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p <= ' ' || *p == '"' || *p == '=') {
            bare = 0;
            break;
        }
    }
    if (bare) {
        puts_(l, s);
    } else {
        put_json(l, s);
    }
}

#define MAX_PAIRS 48

static void kvlog(const char *level, const char *msg, const char *const *kv, size_t npairs,
                  const char *extra_key, const char *extra_val)
{
    line_t l = {.len = 0};
    struct timespec ts;
    struct tm tm;
    char tsbuf[40];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(tsbuf, sizeof(tsbuf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(tsbuf + n, sizeof(tsbuf) - n, ".%03ldZ", ts.tv_nsec / 1000000);

    if (log_format == SRV_LOG_JSON) {
        puts_(&l, "{\"ts\":\"");
        puts_(&l, tsbuf);
        puts_(&l, "\",\"level\":");
        put_json(&l, level);
        puts_(&l, ",\"msg\":");
        put_json(&l, msg);
    } else {
        puts_(&l, tsbuf);
        puts_(&l, " ");
        puts_(&l, level);
        puts_(&l, " ");
        puts_(&l, msg);
    }
    for (size_t i = 0; i < npairs; i++) {
        const char *k = kv[2 * i];
        const char *v = kv[2 * i + 1];
        if (log_format == SRV_LOG_JSON) {
            puts_(&l, ",");
            put_json(&l, k);
            puts_(&l, ":");
            put_json(&l, v != NULL ? v : "");
        } else {
            puts_(&l, " ");
            puts_(&l, k);
            puts_(&l, "=");
            put_text_value(&l, v != NULL ? v : "");
        }
    }
    if (extra_key != NULL) {
        if (log_format == SRV_LOG_JSON) {
            puts_(&l, ",");
            put_json(&l, extra_key);
            puts_(&l, ":");
            put_json(&l, extra_val);
        } else {
            puts_(&l, " ");
            puts_(&l, extra_key);
            puts_(&l, "=");
            puts_(&l, extra_val);
        }
    }
    if (log_format == SRV_LOG_JSON) {
        l.buf[l.len++] = '}';
    }
    l.buf[l.len++] = '\n';
    ssize_t w = write(STDERR_FILENO, l.buf, l.len);
    (void)w;
}

static void vlog(const char *level, const char *msg, const char *extra_key, const char *extra_val,
                 va_list ap)
{
    const char *kv[2 * MAX_PAIRS];
    size_t n = 0;

    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (k == NULL) {
            break;
        }
        const char *v = va_arg(ap, const char *);
        if (n < MAX_PAIRS) {
            kv[2 * n] = k;
            kv[2 * n + 1] = v;
            n++;
        }
    }
    kvlog(level, msg, kv, n, extra_key, extra_val);
}

void srv_log_kv(const char *level, const char *msg, const char *const *kv, size_t npairs)
{
    kvlog(level, msg, kv, npairs, NULL, NULL);
}

void srv_log(const char *level, const char *msg, ...)
{
    va_list ap;
    va_start(ap, msg);
    vlog(level, msg, NULL, NULL, ap);
    va_end(ap);
}

void srv_log_error_limited(srv_ratelimit_t *rl, const char *msg, ...)
{
    struct timespec ts;
    va_list ap;
    char sup[24];

    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec;
    if (atomic_exchange(&rl->second, now) != now) {
        atomic_store(&rl->count, 0);
    }
    if (atomic_fetch_add(&rl->count, 1) >= SRV_LOG_BURST) {
        atomic_fetch_add(&rl->suppressed, 1);
        return;
    }
    uint64_t s = atomic_exchange(&rl->suppressed, 0);
    snprintf(sup, sizeof(sup), "%llu", (unsigned long long)s);
    va_start(ap, msg);
    vlog("error", msg, s != 0 ? "suppressed" : NULL, sup, ap);
    va_end(ap);
}
