/* fuzz_admin.c - libFuzzer target for admin requests: bytes through the HTTP layer (http.c,
 * with on_request as the admin listener sets it) into the transport-free handlers of admin.c
 * (routing, PUT /debug/config validation, the /debug/allocs query, the JSON writers), the way
 * control.c answers them. Invariants: no sanitizer report; every JSON the handlers write parses;
 * a PUT that is accepted gives levers that GET writes and PUT reads back to the same levers. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/admin.h"
#include "server/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    srv_http_t h;
    srv_levers_t levers;
    char *out; /* the last handler output (open_memstream) */
    size_t out_len;
} run_t;

static void must_parse_json(const char *s, size_t n)
{
    json_error_t err;
    json_t *j = json_loadb(s, n, 0, &err);
    if (j == NULL) {
        abort();
    }
    json_decref(j);
}

/* Writes through an open_memstream into r->out (freed at the next call). */
static FILE *out_open(run_t *r)
{
    free(r->out);
    r->out = NULL;
    r->out_len = 0;
    FILE *f = open_memstream(&r->out, &r->out_len);
    if (f == NULL) {
        abort();
    }
    return f;
}

static void on_request(void *ctx, const char *method, const char *path, const char *query,
                       const char *body, size_t body_len, srv_http_reply_t *reply)
{
    run_t *r = ctx;
    srv_admin_endpoint_t ep;
    const char *allow = NULL;
    char err[256];
    int st = srv_admin_route(method, path, &ep, &allow);

    reply->status = st;
    if (st != 200) {
        reply->extra_headers = NULL;
        return;
    }
    FILE *f = out_open(r);
    int json = 1;
    switch (ep) {
    case SRV_ADMIN_CONFIG_PUT: {
        srv_levers_t next;
        unsigned changed = 0;
        st = srv_admin_config_put(body != NULL ? body : "", body_len, &r->levers, &next, &changed,
                                  err, sizeof(err));
        if (st == 200) {
            r->levers = next;
            (void)srv_admin_write_config(f, &r->levers);
        } else {
            (void)srv_admin_write_error(f, err);
        }
        break;
    }
    case SRV_ADMIN_CONFIG_GET:
        (void)srv_admin_write_config(f, &r->levers);
        break;
    case SRV_ADMIN_VARS: {
        srv_vars_type_t types[2] = {{.type = "a\"b", .count = 1}, {.type = "_other", .count = 2}};
        srv_vars_t v = {.version = "fuzz", .allocator = "libc", .workers = 1};
        v.types = types;
        v.ntypes = 2;
        v.levers = r->levers;
        (void)srv_admin_write_vars(f, &v);
        break;
    }
    case SRV_ADMIN_POOL: {
        pool_stats_t total = {0};
        (void)srv_admin_write_pool(f, &r->levers, &total, &total, 1);
        break;
    }
    case SRV_ADMIN_TRIM: {
        srv_trim_report_t t = {.blocks_released = 1, .bytes_released = 4096};
        (void)srv_admin_write_trim(f, &t);
        break;
    }
    case SRV_ADMIN_ALLOCS:
        json = 0;
        st = srv_admin_allocs(f, query, err, sizeof(err));
        if (st != 200) {
            fputs(err, f);
        }
        break;
    default:
        json = 0;
        break;
    }
    fclose(f);
    if (json && r->out_len > 0) {
        must_parse_json(r->out, r->out_len);
    }
    reply->status = st;
    reply->body = r->out;
    reply->body_len = r->out_len;
}

static void on_send(void *ctx, const char *d, size_t n)
{
    (void)ctx;
    (void)d;
    (void)n;
}

static const srv_http_cbs_t cbs = {
    .on_request = on_request,
    .send = on_send,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run_t r;
    memset(&r, 0, sizeof(r));
    r.levers.pool = 1;
    r.levers.pool_retain = 100;
    r.levers.trim_interval_ms = 10000;
    srv_http_limits_t lim = {.max_header_bytes = 2048, .max_event_bytes = 4096};
    if (srv_http_init(&r.h, &lim, &cbs, &r) != 0) {
        abort();
    }
    (void)srv_http_feed(&r.h, (const char *)data, size);
    (void)srv_http_eof(&r.h);
    srv_http_free(&r.h);

    /* Round trip: what GET /debug/config writes, PUT reads back to the same levers. */
    FILE *f = out_open(&r);
    (void)srv_admin_write_config(f, &r.levers);
    fclose(f);
    srv_levers_t back;
    unsigned changed = 1;
    char err[256];
    if (srv_admin_config_put(r.out, r.out_len, &r.levers, &back, &changed, err, sizeof(err)) !=
            200 ||
        changed != 0) {
        abort();
    }
    free(r.out);
    return 0;
}
