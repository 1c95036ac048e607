/* fuzz_conn.c - libFuzzer target for one ingest connection's whole path, without sockets: the
 * first bytes pick TCP or HTTP and small limits, the rest arrive in pieces of PRNG-chosen sizes
 * (as reads would). TCP: the NDJSON framer reading into its own blocks, with a partial-line
 * budget refusing growth and lines dropped between reads (the line deadline); HTTP: the request
 * layer with Host, Transfer-Encoding and Content-Encoding rules, gzip bodies, bearer tokens and
 * the body framer under the same budget. Every event goes through the real judge (pooled jansson
 * tree). Invariants: no sanitizer report, every pool block back, a TCP line never holds more than
 * the budget lets it, and every event is judged or rejected once. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/arena_json.h"
#include "ingest/frame.h"
#include "ingest/judge.h"
#include "pool/pool.h"
#include "server/auth.h"
#include "server/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pool_t *pool;
static pool_cache_t *cache;
static srv_auth_set_t *tokens;

typedef struct {
    ing_judge_t judge;
    size_t budget; /* TCP: the most an assembly buffer may grow to */
    uint64_t events;
    uint64_t rejects;
    int authorize;
} run_t;

static void once(void)
{
    static const char file[] = "# fuzz\nfuzz-token-0123456789abcdef\nsecond-token-0123456789\n";
    pool_config_t pc;
    srv_auth_limits_t lim;

    if (pool != NULL) {
        return;
    }
    arena_json_install(malloc, free);
    pool_config_init(&pc);
    if (pool_create(&pc, &pool) != 0 || pool_cache_create(pool, &cache) != 0) {
        abort();
    }
    srv_auth_limits_default(&lim);
    if (srv_auth_set_parse(file, sizeof(file) - 1, "fuzz", &lim, &tokens, NULL, 0) != 0) {
        abort();
    }
}

static uint32_t next(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 16;
}

/* ---- TCP ---- */

static void tcp_line(void *ctx, const char *line, size_t len)
{
    run_t *r = ctx;
    ing_judgement_t jm;
    (void)ing_judge_line(&r->judge, line, len, (len & 1) != 0, &jm);
    r->events++;
}

static void tcp_reject(void *ctx, ing_verdict_t v)
{
    run_t *r = ctx;
    if (v <= ING_ACCEPTED || v >= ING_VERDICT_COUNT) {
        abort();
    }
    r->rejects++;
}

static int tcp_may_grow(void *ctx, size_t held, size_t cap)
{
    run_t *r = ctx;
    if (cap <= held) {
        abort(); /* asked only to grow */
    }
    return cap <= r->budget;
}

static const ing_frame_ops_t tcp_ops = {tcp_line, tcp_reject, tcp_may_grow};

static void run_tcp(run_t *r, size_t max_event, const uint8_t *d, size_t n, uint32_t seed)
{
    ing_frame_t f;
    ing_frame_init(&f, cache, max_event, NULL, NULL, NULL);
    while (n > 0) {
        char *base;
        size_t room;
        if (ing_frame_buf(&f, &base, &room) != 0) {
            abort();
        }
        size_t k = 1 + next(&seed) % 700;
        if (k > room) {
            k = room;
        }
        if (k > n) {
            k = n;
        }
        memcpy(base, d, k);
        ing_frame_commit(&f, k, &tcp_ops, r);
        d += k;
        n -= k;
        /* What a line may hold: its block, and an assembly buffer the budget allowed. */
        if (ing_frame_held(&f) > POOL_BLOCK_SIZE + r->budget) {
            abort();
        }
        if (next(&seed) % 64 == 0) {
            (void)ing_frame_drop(&f); /* the line deadline passed */
            if (ing_frame_held(&f) != 0) {
                abort();
            }
        }
    }
    ing_frame_finish(&f, &tcp_ops, r);
}

/* ---- HTTP ---- */

static ing_verdict_t http_event(void *ctx, const char *data, size_t len, const char **detail)
{
    run_t *r = ctx;
    ing_judgement_t jm;
    if (len == 0) {
        abort();
    }
    ing_verdict_t v = ing_judge_line(&r->judge, data, len, 1, &jm);
    if (v != ING_ACCEPTED) {
        *detail = jm.detail;
    }
    r->events++;
    return v;
}

static void http_reject(void *ctx, ing_verdict_t v)
{
    tcp_reject(ctx, v);
}

static int http_get(void *ctx, const char *path, srv_http_reply_t *reply)
{
    (void)ctx;
    if (strcmp(path, "/healthz") != 0) {
        return 404;
    }
    if (reply != NULL) {
        reply->body = "ok\n";
        reply->body_len = 3;
    }
    return 0;
}

static int http_authorize(void *ctx, const char *value, size_t len, unsigned lines, char *hdr,
                          size_t hdrsz)
{
    run_t *r = ctx;
    if (!r->authorize) {
        return 0;
    }
    if (value != NULL && len > SRV_HTTP_AUTHZ_MAX) {
        abort();
    }
    srv_auth_result_t a = lines > 1 ? SRV_AUTH_MALFORMED : srv_auth_check(tokens, value, len);
    if (a == SRV_AUTH_OK) {
        return 0;
    }
    char chal[200];
    srv_auth_challenge(a, "ingestd", chal, sizeof(chal));
    size_t w = (size_t)snprintf(hdr, hdrsz, "WWW-Authenticate: %s\r\n", chal);
    if (w >= hdrsz) {
        abort();
    }
    return 401;
}

static int http_may_grow(void *ctx, size_t held, size_t cap)
{
    return tcp_may_grow(ctx, held, cap);
}

static void http_send(void *ctx, const char *d, size_t n)
{
    (void)ctx;
    (void)d;
    if (n == 0) {
        abort();
    }
}

static const srv_http_cbs_t http_cbs = {
    .on_event = http_event,
    .on_reject = http_reject,
    .on_get = http_get,
    .authorize = http_authorize,
    .may_grow = http_may_grow,
    .send = http_send,
};

static void run_http(run_t *r, size_t max_event, const uint8_t *d, size_t n, uint32_t seed,
                     uint8_t knobs)
{
    srv_http_t h;
    srv_http_limits_t lim = {
        .max_header_bytes = 512 + (size_t)(knobs & 3) * 512,
        .max_body_bytes = 4096 + (size_t)((knobs >> 2) & 3) * 16384,
        .max_event_bytes = max_event,
        .max_errors = 4,
        .gzip = 1,
        .max_gzip_ratio = (knobs & 0x10) ? 8 : 0,
        .gzip_ratio_grace = 256,
        .require_host = (knobs & 0x20) != 0,
    };
    r->authorize = (knobs & 0x40) != 0;
    if (srv_http_init(&h, &lim, &http_cbs, r) != 0) {
        abort();
    }
    int rc = 0;
    while (n > 0 && rc == 0) {
        size_t k = 1 + next(&seed) % 900;
        if (k > n) {
            k = n;
        }
        rc = srv_http_feed(&h, (const char *)d, k);
        d += k;
        n -= k;
    }
    if (rc == 0) {
        (void)((knobs & 0x80) ? srv_http_timeout(&h) : srv_http_eof(&h));
    }
    srv_http_free(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pool_stats_t st;
    run_t r;

    if (size < 4) {
        return 0;
    }
    once();
    memset(&r, 0, sizeof(r));
    ing_judge_init(&r.judge, ING_PARSE_TREE_POOLED, cache, NULL, NULL);
    size_t max_event = 1 + ((size_t)data[1] << 6); /* 1 .. 16321 bytes */
    r.budget = (size_t)(data[2] & 7) * POOL_BLOCK_SIZE;
    uint32_t seed = (uint32_t)data[0] << 8 | data[3];
    if (data[0] & 1) {
        run_http(&r, max_event, data + 4, size - 4, seed, data[2]);
    } else {
        run_tcp(&r, max_event, data + 4, size - 4, seed);
    }
    ing_judge_destroy(&r.judge);
    pool_cache_stats(cache, &st);
    if (st.in_use != 0) {
        abort(); /* every block went back */
    }
    return 0;
}
