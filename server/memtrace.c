/* memtrace.c - one line per pool trim cycle (like GODEBUG=gctrace=1), and its parser. */
#include "server/memtrace.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const reason_names[] = {"timer", "limit", "admin"};

const char *srv_trim_reason_name(srv_trim_reason_t r)
{
    return (unsigned)r < 3 ? reason_names[r] : "unknown";
}

size_t srv_memtrace_format(const srv_memtrace_t *m, char *buf, size_t size)
{
    unsigned long long t_ms = (unsigned long long)(m->since_start_us / 1000);
    unsigned long long d_us = (unsigned long long)(m->duration_ns / 1000);
    int n = snprintf(buf, size,
                     "memtrace cycle=%llu t=%llu.%03llus trim=%llu.%03llums reason=%s "
                     "in_use=%llu->%llu idle=%llu->%llu released=%llu live=%llu sys=%llu "
                     "rss=%llu\n",
                     (unsigned long long)m->cycle, t_ms / 1000, t_ms % 1000, d_us / 1000,
                     d_us % 1000, srv_trim_reason_name(m->reason),
                     (unsigned long long)m->in_use_before, (unsigned long long)m->in_use_after,
                     (unsigned long long)m->idle_before, (unsigned long long)m->idle_after,
                     (unsigned long long)m->released_bytes, (unsigned long long)m->live_bytes,
                     (unsigned long long)m->sys_bytes, (unsigned long long)m->rss_bytes);
    return n < 0 ? 0 : (size_t)n;
}

/* Reads a decimal uint64 at *p (digits only, no sign, no overflow); advances *p. */
static int read_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (*s < '0' || *s > '9') {
        return -1;
    }
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return 0;
}

/* Expects the literal text lit at *p; advances past it. */
static int expect(const char **p, const char *lit)
{
    size_t n = strlen(lit);
    if (strncmp(*p, lit, n) != 0) {
        return -1;
    }
    *p += n;
    return 0;
}

/* "INT.FFF" with exactly three decimals, as INT * 1000 + FFF, then the unit. */
static int read_milli(const char **p, const char *unit, uint64_t *out)
{
    uint64_t whole;
    uint64_t frac;
    const char *s = *p;
    if (read_u64(&s, &whole) != 0 || expect(&s, ".") != 0) {
        return -1;
    }
    const char *f = s;
    if (read_u64(&s, &frac) != 0 || s - f != 3 || expect(&s, unit) != 0) {
        return -1;
    }
    if (whole > (UINT64_MAX - frac) / 1000) {
        return -1;
    }
    *out = whole * 1000 + frac;
    *p = s;
    return 0;
}

static int read_pair(const char **p, const char *key, uint64_t *a, uint64_t *b)
{
    if (expect(p, key) != 0 || read_u64(p, a) != 0 || expect(p, "->") != 0 || read_u64(p, b) != 0) {
        return -1;
    }
    return 0;
}

static int read_field(const char **p, const char *key, uint64_t *v)
{
    return expect(p, key) != 0 || read_u64(p, v) != 0 ? -1 : 0;
}

int srv_memtrace_parse(const char *line, srv_memtrace_t *out)
{
    srv_memtrace_t m;
    uint64_t t_ms;
    uint64_t d_us;
    const char *p = line;
    memset(&m, 0, sizeof m);
    if (line == NULL || expect(&p, "memtrace ") != 0 || read_field(&p, "cycle=", &m.cycle) != 0 ||
        expect(&p, " t=") != 0 || read_milli(&p, "s", &t_ms) != 0 || expect(&p, " trim=") != 0 ||
        read_milli(&p, "ms", &d_us) != 0 || expect(&p, " reason=") != 0) {
        return -EINVAL;
    }
    int reason = -1;
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(reason_names[i]);
        if (strncmp(p, reason_names[i], n) == 0 && p[n] == ' ') {
            reason = i;
            p += n;
            break;
        }
    }
    if (reason < 0 || read_pair(&p, " in_use=", &m.in_use_before, &m.in_use_after) != 0 ||
        read_pair(&p, " idle=", &m.idle_before, &m.idle_after) != 0 ||
        read_field(&p, " released=", &m.released_bytes) != 0 ||
        read_field(&p, " live=", &m.live_bytes) != 0 ||
        read_field(&p, " sys=", &m.sys_bytes) != 0 || read_field(&p, " rss=", &m.rss_bytes) != 0) {
        return -EINVAL;
    }
    if (*p == '\n') {
        p++;
    }
    if (*p != '\0' || t_ms > UINT64_MAX / 1000 || d_us > UINT64_MAX / 1000) {
        return -EINVAL;
    }
    m.reason = (srv_trim_reason_t)reason;
    m.since_start_us = t_ms * 1000;
    m.duration_ns = d_us * 1000;
    *out = m;
    return 0;
}

int srv_memtrace_emit(int fd, const srv_memtrace_t *m)
{
    char line[SRV_MEMTRACE_LINE_MAX];
    size_t n = srv_memtrace_format(m, line, sizeof line);
    if (n >= sizeof line) {
        n = sizeof line - 1;
    }
    ssize_t w = write(fd, line, n);
    if (w < 0) {
        return -errno;
    }
    return (size_t)w == n ? 0 : -EIO;
}

int srv_debug_memtrace(const char *ingestd_debug)
{
    int on = 0;
    const char *p = ingestd_debug;
    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len > 9 && strncmp(p, "memtrace=", 9) == 0) {
            char val[24];
            size_t vl = len - 9;
            if (vl < sizeof val) {
                memcpy(val, p + 9, vl);
                val[vl] = '\0';
                char *e = NULL;
                long v = strtol(val, &e, 10);
                if (e != val && *e == '\0') {
                    on = v != 0;
                }
            }
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return on;
}
