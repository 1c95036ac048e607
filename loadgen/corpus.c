/* corpus.c - generates the deterministic event corpus and reads NDJSON event files. */
#include "lg_corpus.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char *buf;
    size_t len;
    size_t cap;
    int oom;
} sbuf_t;

static void sb_reserve(sbuf_t *b, size_t more)
{
    if (b->oom || b->len + more + 1 <= b->cap) {
        return;
    }
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + more + 1) {
        cap *= 2;
    }
    char *p = realloc(b->buf, cap);
    if (!p) {
        b->oom = 1;
        return;
    }
    b->buf = p;
    b->cap = cap;
}

static void sb_printf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    sb_reserve(b, (size_t)n);
    if (b->oom) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* splitmix64: small, fast, and the same sequence on every platform for a seed. */
static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static unsigned below(uint64_t *s, unsigned n)
{
    return (unsigned)(next_u64(s) % n);
}

static const char *const types[] = {"page_view", "click",  "purchase",    "signup",
                                    "search",    "logout", "add_to_cart", "error"};
static const char *const plans[] = {"free", "pro", "team", "enterprise"};
static const char *const sections[] = {"products", "blog", "docs", "account", "checkout"};
static const char *const hosts[] = {"www.example.com", "news.example.org", "search.example.net"};
static const char *const agents[] = {"Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
                                     "Mozilla/5.0 (Macintosh) Safari/605.1.15",
                                     "Mozilla/5.0 (Windows NT 10.0) Chrome/119.0"};
static const char *const tags[] = {"web", "mobile",  "beta",      "eu",
                                   "us",  "ab-test", "returning", "promo"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Writes the common ~320-byte body (no closing brace): 11 fields with a nested object and an
 * array. When with_type is false the "type" field is left out. */
static void event_head(sbuf_t *b, uint64_t *s, int with_type)
{
    if (with_type) {
        sb_printf(b, "{\"type\":\"%s\",", types[below(s, COUNT(types))]);
    } else {
        sb_printf(b, "{\"kind\":\"%s\",", types[below(s, COUNT(types))]);
    }
    unsigned long long ts = 1700000000000ULL + next_u64(s) % 100000000ULL;
    sb_printf(
        b,
        "\"ts\":%llu,\"id\":\"%016llx\",\"user\":{\"id\":%u,\"name\":\"user_%06u\","
        "\"plan\":\"%s\"},\"session\":\"%016llx\",\"path\":\"/%s/%u\",\"ref\":\"https://%s/\","
        "\"ua\":\"%s\",\"tags\":[\"%s\",\"%s\",\"%s\"],\"duration_ms\":%u,\"ok\":%s",
        ts, (unsigned long long)next_u64(s), below(s, 1000000), below(s, 1000000),
        plans[below(s, COUNT(plans))], (unsigned long long)next_u64(s),
        sections[below(s, COUNT(sections))], below(s, 100000), hosts[below(s, COUNT(hosts))],
        agents[below(s, COUNT(agents))], tags[below(s, COUNT(tags))], tags[below(s, COUNT(tags))],
        tags[below(s, COUNT(tags))], below(s, 60000), below(s, 10) ? "true" : "false");
}

/* Appends an "items" array of n objects (~48 bytes each). */
static void event_items(sbuf_t *b, uint64_t *s, unsigned n)
{
    sb_printf(b, ",\"items\":[");
    for (unsigned i = 0; i < n; i++) {
        sb_printf(b, "%s{\"sku\":\"SKU-%06u\",\"qty\":%u,\"price\":%u.%02u}", i ? "," : "",
                  below(s, 1000000), 1 + below(s, 9), below(s, 500), below(s, 100));
    }
    sb_printf(b, "]");
}

static void event_one(sbuf_t *b, uint64_t *s, const lg_corpus_config_t *cfg, int *invalid)
{
    unsigned size_roll = below(s, 100);
    unsigned items = 0;
    if (size_roll >= cfg->small_pct + cfg->medium_pct) {
        items = 110 + below(s, 60); /* 5.5-8.5 KB */
    } else if (size_roll >= cfg->small_pct) {
        items = 20 + below(s, 8); /* ~1.3-1.7 KB */
    }
    *invalid = below(s, 100) < cfg->invalid_pct;
    unsigned kind = *invalid ? below(s, 3) : 0;
    if (*invalid && kind == 1) { /* valid JSON, not an object */
        sb_printf(b, "[\"%s\",%u,%u]\n", types[below(s, COUNT(types))], below(s, 1000),
                  below(s, 1000));
        return;
    }
    event_head(b, s, !(*invalid && kind == 2));
    if (items) {
        event_items(b, s, items);
    }
    if (*invalid && kind == 0) { /* parse error: cut short, no closing brace */
        sb_printf(b, ",\"broken\":\n");
        return;
    }
    sb_printf(b, "}\n");
}

void lg_corpus_config_default(lg_corpus_config_t *cfg)
{
    *cfg = (lg_corpus_config_t){.events = 4096,
                                .seed = 1,
                                .small_pct = 90,
                                .medium_pct = 9,
                                .large_pct = 1,
                                .invalid_pct = 0};
}

static void corpus_stats(lg_corpus_t *c)
{
    c->over_block = 0;
    c->max_line = 0;
    for (size_t i = 0; i < c->count; i++) {
        size_t n = c->offsets[i + 1] - c->offsets[i];
        c->over_block += n > LG_BLOCK_SIZE;
        if (n > c->max_line) {
            c->max_line = n;
        }
    }
}

int lg_corpus_generate(const lg_corpus_config_t *cfg, lg_corpus_t *out)
{
    memset(out, 0, sizeof(*out));
    if (cfg->small_pct + cfg->medium_pct + cfg->large_pct != 100 || cfg->invalid_pct > 100) {
        return -EINVAL;
    }
    size_t n = cfg->events ? cfg->events : 4096;
    sbuf_t b = {0};
    uint64_t s = cfg->seed;
    out->offsets = malloc((n + 1) * sizeof(size_t));
    out->invalid_before = malloc((n + 1) * sizeof(size_t));
    if (!out->offsets || !out->invalid_before) {
        goto fail;
    }
    out->invalid_before[0] = 0;
    for (size_t i = 0; i < n; i++) {
        int invalid = 0;
        out->offsets[i] = b.len;
        event_one(&b, &s, cfg, &invalid);
        out->invalid_before[i + 1] = out->invalid_before[i] + (size_t)invalid;
    }
    if (b.oom) {
        goto fail;
    }
    out->offsets[n] = b.len;
    out->data = b.buf;
    out->size = b.len;
    out->count = n;
    out->invalid = out->invalid_before[n];
    corpus_stats(out);
    return 0;
fail:
    free(b.buf);
    lg_corpus_free(out);
    return -ENOMEM;
}

int lg_corpus_load(const char *path, lg_corpus_t *out)
{
    memset(out, 0, sizeof(*out));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    sbuf_t raw = {0};
    for (;;) {
        sb_reserve(&raw, 65536);
        if (raw.oom) {
            close(fd);
            free(raw.buf);
            return -ENOMEM;
        }
        ssize_t r = read(fd, raw.buf + raw.len, raw.cap - raw.len - 1);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            int err = -errno;
            close(fd);
            free(raw.buf);
            return err;
        }
        if (r == 0) {
            break;
        }
        raw.len += (size_t)r;
    }
    close(fd);
    /* Copy non-blank lines (CR stripped), each with a newline, counting them. */
    sbuf_t b = {0};
    size_t lines = 0, cap = 0;
    size_t *offs = NULL;
    size_t pos = 0;
    while (pos < raw.len) {
        char *nl = memchr(raw.buf + pos, '\n', raw.len - pos);
        size_t end = nl ? (size_t)(nl - raw.buf) : raw.len;
        size_t len = end - pos;
        if (len && raw.buf[pos + len - 1] == '\r') {
            len--;
        }
        if (len) {
            if (lines + 2 > cap) {
                cap = cap ? cap * 2 : 1024;
                size_t *p = realloc(offs, cap * sizeof(size_t));
                if (!p) {
                    b.oom = 1;
                    break;
                }
                offs = p;
            }
            offs[lines++] = b.len;
            sb_reserve(&b, len + 1);
            if (b.oom) {
                break;
            }
            memcpy(b.buf + b.len, raw.buf + pos, len);
            b.buf[b.len + len] = '\n';
            b.len += len + 1;
        }
        pos = end + 1;
    }
    free(raw.buf);
    if (b.oom || lines == 0) {
        free(b.buf);
        free(offs);
        return b.oom ? -ENOMEM : -EINVAL;
    }
    offs[lines] = b.len;
    out->invalid_before = calloc(lines + 1, sizeof(size_t));
    if (!out->invalid_before) {
        free(b.buf);
        free(offs);
        return -ENOMEM;
    }
    out->data = b.buf;
    out->size = b.len;
    out->offsets = offs;
    out->count = lines;
    corpus_stats(out);
    return 0;
}

uint64_t lg_corpus_invalid_in(const lg_corpus_t *c, size_t start, uint64_t n)
{
    if (c->count == 0) {
        return 0;
    }
    start %= c->count;
    uint64_t full = n / c->count, rest = n % c->count;
    uint64_t r = full * c->invalid;
    if (start + rest <= c->count) {
        r += c->invalid_before[start + rest] - c->invalid_before[start];
    } else {
        r += c->invalid - c->invalid_before[start];
        r += c->invalid_before[start + rest - c->count];
    }
    return r;
}

void lg_corpus_free(lg_corpus_t *c)
{
    if (!c) {
        return;
    }
    free(c->data);
    free(c->offsets);
    free(c->invalid_before);
    memset(c, 0, sizeof(*c));
}
