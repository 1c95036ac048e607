/* fuzz_http.c - libFuzzer target for the HTTP request layer: random bytes fed whole and split at
 * random points must give the same callbacks and responses, and every JSON reply must parse. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    srv_http_t h;
    uint64_t hash; /* FNV-1a over every callback and its arguments */
    int shedding;
    char detail[64];
} run_t;

static void mix(run_t *r, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        r->hash = (r->hash ^ s[i]) * 0x100000001b3ull;
    }
}

static void mix_tag(run_t *r, char tag, size_t n)
{
    mix(r, &tag, 1);
    mix(r, &n, sizeof(n));
}

/* A verdict from the bytes themselves; the detail echoes them so escaping meets every byte. */
static ing_verdict_t on_event(void *ctx, const char *d, size_t n, const char **detail)
{
    run_t *r = ctx;
    mix_tag(r, 'E', n);
    mix(r, d, n);
    if (n == 0) {
        abort(); /* empty events are never passed */
    }
    ing_verdict_t v = (ing_verdict_t)((unsigned char)d[0] % 4);
    if (v != ING_ACCEPTED) {
        size_t k = n < sizeof(r->detail) - 1 ? n : sizeof(r->detail) - 1;
        memcpy(r->detail, d, k);
        r->detail[k] = '\0';
        *detail = r->detail;
    }
    return v;
}

static void on_reject(void *ctx, ing_verdict_t v)
{
    mix_tag(ctx, 'R', (size_t)v);
}

static int on_get(void *ctx, const char *path, srv_http_reply_t *reply)
{
    run_t *r = ctx;
    mix_tag(r, 'G', strlen(path));
    mix(r, path, strlen(path));
    if (strcmp(path, "/metrics") != 0) {
        return 404;
    }
    if (reply != NULL) {
        reply->body = "m 1\n";
        reply->body_len = 4;
        reply->extra_headers = "Cache-Control: no-store\r\n";
    }
    return 0;
}

static int shedding(void *ctx)
{
    return ((run_t *)ctx)->shedding;
}

/* Every JSON body this layer sends is one send call starting with '{' or follows the head in
 * the same call (200 replies): it must parse. */
static void check_json(const char *d, size_t n)
{
    const char *body = NULL;
    if (n > 0 && d[0] == '{') {
        body = d;
    } else if (n >= 47 && memcmp(d, "HTTP/1.1 200 OK\r\nContent-Type: application/json", 47) == 0) {
        const char *e = memmem(d, n, "\r\n\r\n", 4);
        if (e == NULL) {
            abort();
        }
        body = e + 4;
    }
    if (body != NULL) {
        json_error_t err;
        json_t *j = json_loadb(body, n - (size_t)(body - d), 0, &err);
        if (j == NULL) {
            abort();
        }
        json_decref(j);
    }
}

static void on_send(void *ctx, const char *d, size_t n)
{
    run_t *r = ctx;
    mix_tag(r, 'S', n);
    mix(r, d, n);
    check_json(d, n);
}

static void on_request_done(void *ctx, int status)
{
    mix_tag(ctx, 'D', (size_t)status);
}

static const srv_http_cbs_t cbs = {
    .on_event = on_event,
    .on_reject = on_reject,
    .on_get = on_get,
    .shedding = shedding,
    .send = on_send,
    .on_request_done = on_request_done,
};

/* Feeds in pieces from a small PRNG (seed 0: all at once). Returns the transcript hash. */
static uint64_t run(const srv_http_limits_t *lim, int shed, const uint8_t *d, size_t n,
                    uint32_t seed)
{
    run_t r = {.hash = 0xcbf29ce484222325ull, .shedding = shed};
    if (srv_http_init(&r.h, lim, &cbs, &r) != 0) {
        abort();
    }
    size_t off = 0;
    int rc = 0;
    while (off < n && rc == 0) {
        size_t k = n - off;
        if (seed != 0) {
            seed = seed * 1103515245u + 12345u;
            k = 1 + (seed >> 16) % 17;
            if (k > n - off) {
                k = n - off;
            }
        }
        rc = srv_http_feed(&r.h, (const char *)d + off, k);
        off += k;
    }
    if (rc == 0) {
        rc = srv_http_eof(&r.h);
    }
    mix_tag(&r, 'C', (size_t)rc);
    srv_http_free(&r.h);
    return r.hash;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) {
        return 0;
    }
    srv_http_limits_t lim = {
        .max_event_bytes = 1 + data[0] % 64,
        .max_header_bytes = 64 + (size_t)data[1] * 16, /* below http-parser's own 80 KiB */
        .max_body_bytes = data[2] < 128 ? 1 + (size_t)data[2] * 4 : 0,
        .max_errors = 1 + data[3] % 4,
    };
    int shed = data[3] >= 240;
    uint32_t seed = (uint32_t)data[0] << 8 | data[1] | 1u;
    data += 4;
    size -= 4;
    uint64_t whole = run(&lim, shed, data, size, 0);
    uint64_t split = run(&lim, shed, data, size, seed);
    if (whole != split) {
        abort();
    }
    return 0;
}
