/* fuzz_frame.c - libFuzzer target for the NDJSON line rule: any bytes, split into pieces chosen by
 * the input, must give exactly what a whole-input reference says (lines, too_large, truncated),
 * through the TCP framer and through the HTTP body framer (NDJSON, body cut short) alike. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame_ref.h"
#include "ingest/body.h"
#include "ingest/frame.h"
#include "pool/pool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_OUT 65536

typedef struct {
    size_t n;
    int v[MAX_OUT];
    size_t len[MAX_OUT];
    uint64_t hash[MAX_OUT];
} out_t;

static uint64_t fnv(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
    }
    return h;
}

static void add(out_t *o, int v, size_t len, uint64_t hash)
{
    if (o->n < MAX_OUT) {
        o->v[o->n] = v;
        o->len[o->n] = len;
        o->hash[o->n] = hash;
    }
    o->n++;
}

static void record(void *ctx, ing_verdict_t v, const char *line, size_t len)
{
    add(ctx, v, len, line != NULL ? fnv(line, len) : 0);
}

static void on_line(void *ctx, const char *line, size_t len)
{
    if (memchr(line, '\n', len) != NULL) {
        abort();
    }
    record(ctx, ING_ACCEPTED, line, len);
}

static void on_reject(void *ctx, ing_verdict_t reason)
{
    record(ctx, reason, NULL, 0);
}

static void body_event(void *ctx, uint64_t index, const char *data, size_t len)
{
    (void)index;
    on_line(ctx, data, len);
}

static void body_reject(void *ctx, uint64_t index, ing_verdict_t v, const char *detail)
{
    (void)index;
    (void)detail;
    on_reject(ctx, v);
}

static void compare(const out_t *got, const out_t *want)
{
    if (got->n != want->n) {
        abort();
    }
    for (size_t i = 0; i < want->n && i < MAX_OUT; i++) {
        if (got->v[i] != want->v[i] || got->len[i] != want->len[i] ||
            got->hash[i] != want->hash[i]) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t maxes[] = {1, 7, 100, 4094, 4095, 4096, 4097, 9000};
    static pool_t *pool;
    static pool_cache_t *cache;
    static out_t want, got;
    static const ing_frame_ops_t ops = {on_line, on_reject, NULL};

    if (size < 2) {
        return 0;
    }
    if (pool == NULL) {
        pool_config_t cfg;
        pool_config_init(&cfg);
        if (pool_create(&cfg, &pool) != 0 || pool_cache_create(pool, &cache) != 0) {
            abort();
        }
    }
    size_t max = maxes[data[0] % (sizeof(maxes) / sizeof(maxes[0]))];
    uint32_t seed = data[1] | 1u;
    const char *in = (const char *)data + 2;
    size_t n = size - 2;

    want.n = 0;
    got.n = 0;
    frame_ref(in, n, max, record, &want);

    ing_frame_stock_t stock;
    ing_frame_t f;
    ing_frame_stock_init(&stock, NULL);
    ing_frame_init(&f, cache, max, (data[1] & 0x80) ? &stock : NULL, NULL, NULL);
    for (size_t off = 0; off < n;) {
        seed = seed * 1103515245u + 12345u;
        size_t piece = 1 + (seed >> 16) % (data[1] & 0x40 ? 7 : 6000);
        char *base;
        size_t room;
        if (ing_frame_buf(&f, &base, &room) != 0) {
            abort();
        }
        piece = piece > n - off ? n - off : piece;
        piece = piece > room ? room : piece;
        memcpy(base, in + off, piece);
        ing_frame_commit(&f, piece, &ops, &got);
        off += piece;
    }
    ing_frame_finish(&f, &ops, &got);
    ing_frame_stock_destroy(&stock);
    compare(&got, &want);

    /* The HTTP body framer, cut short where the stream ended: the same reports. */
    static const ing_body_ops_t body_ops = {body_event, body_reject, NULL, NULL};
    ing_body_t b;
    got.n = 0;
    seed = data[1] | 1u;
    ing_body_init(&b, max, &body_ops, &got, NULL, NULL);
    ing_body_begin(&b, ING_BODY_NDJSON);
    for (size_t off = 0; off < n;) {
        seed = seed * 1103515245u + 12345u;
        size_t piece = 1 + (seed >> 16) % (data[1] & 0x40 ? 7 : 6000);
        piece = piece > n - off ? n - off : piece;
        ing_body_feed(&b, in + off, piece);
        off += piece;
    }
    ing_body_end(&b, 0);
    ing_body_free(&b);
    compare(&got, &want);
    return 0;
}
