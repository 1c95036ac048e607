/* http.c - the HTTP/1.1 request layer: http-parser callbacks, limits and the responses; the body
 * is framed into events by ingest/body.c. Transport-free; see http.h for the contract. */
#include "server/http.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/text.h"

/* Room kept in front of the errors list so the 200 reply's head and JSON prefix can be written
 * just before it and the whole reply sent with one call, without another buffer. */
#define ERRS_RESERVE 256
/* Bytes of an event's detail text kept in the errors list (before escaping, at most 6x). */
#define DETAIL_MAX 200
/* One errors-list entry at most: {"line":N,"reason":"...","detail":"..."} and a comma. */
#define ERR_ENTRY_MAX (96 + 6 * DETAIL_MAX)

enum { ACT_NONE = 0, ACT_EVENTS, ACT_GET, ACT_STATUS, ACT_REQUEST };
enum { H_OTHER = 0, H_CTYPE, H_CENC, H_EXPECT, H_TE, H_HOST, H_AUTHZ };

/* Per-request flags. */
#define RF_IN_VALUE 0x01u   /* the last header callback was a value */
#define RF_PATH_LONG 0x02u  /* the URL did not fit in path[] */
#define RF_EXPECT 0x04u     /* Expect: 100-continue */
#define RF_ALLOW_POST 0x08u /* a 405 says Allow: POST (else GET, HEAD) */
#define RF_HEAD_REQ 0x10u   /* a HEAD request: responses carry no body */
#define RF_GZIP 0x20u       /* the body is gzip: decoded through h->gz */

/* Per-connection flags. */
#define CF_IN_MESSAGE 0x01u
#define CF_IN_BODY 0x02u
#define CF_CLOSING 0x04u

static int on_message_begin(http_parser *p);
static int on_url(http_parser *p, const char *at, size_t len);
static int on_header_field(http_parser *p, const char *at, size_t len);
static int on_header_value(http_parser *p, const char *at, size_t len);
static int on_headers_complete(http_parser *p);
static int on_body(http_parser *p, const char *at, size_t len);
static int on_message_complete(http_parser *p);
static void body_event(void *ctx, uint64_t index, const char *data, size_t len);
static void body_reject(void *ctx, uint64_t index, ing_verdict_t v, const char *detail);
static size_t body_value_end(void *ctx, const char *p, size_t n);
static int body_may_grow(void *ctx, size_t held, size_t cap);

static const ing_body_ops_t body_ops = {
    .on_event = body_event,
    .on_reject = body_reject,
    .may_grow = body_may_grow,
};
/* With the judge's array seam (cbs.value_end set): one more indirect call per element. */
static const ing_body_ops_t body_ops_seam = {
    .on_event = body_event,
    .on_reject = body_reject,
    .value_end = body_value_end,
    .may_grow = body_may_grow,
};

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

int srv_http_init(srv_http_t *h, const srv_http_limits_t *lim, const srv_http_cbs_t *cbs, void *ctx)
{
    if (h == NULL || cbs == NULL || cbs->send == NULL) {
        return -EINVAL;
    }
    memset(h, 0, sizeof(*h));
    if (lim != NULL) {
        h->lim = *lim;
    }
    if (h->lim.max_header_bytes == 0) {
        h->lim.max_header_bytes = SRV_HTTP_DEFAULT_MAX_HEADER_BYTES;
    }
    if (h->lim.max_body_bytes == 0) {
        h->lim.max_body_bytes = SRV_HTTP_DEFAULT_MAX_BODY_BYTES;
    }
    if (h->lim.max_event_bytes == 0) {
        h->lim.max_event_bytes = SRV_HTTP_DEFAULT_MAX_EVENT_BYTES;
    }
    if (h->lim.max_errors == 0) {
        h->lim.max_errors = SRV_HTTP_DEFAULT_MAX_ERRORS;
    }
    if (h->lim.realloc_fn == NULL || h->lim.free_fn == NULL) {
        h->lim.realloc_fn = realloc;
        h->lim.free_fn = free;
    }
    h->cbs = *cbs;
    h->ctx = ctx;
    ing_body_init(&h->body, h->lim.max_event_bytes,
                  cbs->value_end != NULL ? &body_ops_seam : &body_ops, h, h->lim.realloc_fn,
                  h->lim.free_fn);
    http_parser_init(&h->parser, HTTP_REQUEST);
    h->parser.data = h;
    return 0;
}

/* Frees a gzip body's decoder and window (after each gzip request). */
static void gzip_end(srv_http_t *h)
{
    srv_inflate_destroy(h->gz);
    h->gz = NULL;
    if (h->gzwin != NULL) {
        h->lim.free_fn(h->gzwin);
        h->gzwin = NULL;
    }
    h->flags &= ~RF_GZIP;
}

void srv_http_free(srv_http_t *h)
{
    if (h == NULL) {
        return;
    }
    if (h->lim.free_fn != NULL) {
        gzip_end(h);
    }
    ing_body_free(&h->body);
    if (h->lim.free_fn != NULL) {
        h->lim.free_fn(h->errs);
    }
    h->errs = NULL;
    h->errs_len = h->errs_cap = 0;
}

srv_http_phase_t srv_http_phase(const srv_http_t *h)
{
    if (h->conn_flags & CF_CLOSING) {
        return SRV_HTTP_CLOSING;
    }
    if (h->conn_flags & CF_IN_BODY) {
        return SRV_HTTP_BODY;
    }
    if (h->conn_flags & CF_IN_MESSAGE) {
        return SRV_HTTP_HEAD;
    }
    return SRV_HTTP_IDLE;
}

/* ---- responses ---- */

static const char *conn_header(const srv_http_t *h, int keep)
{
    if (!keep) {
        return "Connection: close\r\n";
    }
    if (h->parser.http_major == 1 && h->parser.http_minor == 0) {
        return "Connection: keep-alive\r\n";
    }
    return "";
}

static void request_done(srv_http_t *h, int status)
{
    if (h->cbs.on_request_done != NULL) {
        h->cbs.on_request_done(h->ctx, status);
    }
}

/* Sends a JSON error response {"error":code[,"detail":...][,"accepted":N,"rejected":M]}.
 * keep == 0 adds Connection: close and marks the connection closing. */
static void send_status(srv_http_t *h, int status, const char *code, const char *detail,
                        const char *extra, int with_counts, int keep)
{
    char body[1024];
    char head[512];
    size_t b = (size_t)snprintf(body, sizeof(body), "{\"error\":\"%s\"", code);
    if (detail != NULL) {
        memcpy(body + b, ",\"detail\":\"", 11);
        b += 11;
        b += base_json_escape(body + b, BASE_JSON_UNIT_MAX * 120, detail, strnlen(detail, 120));
        body[b++] = '"';
    }
    if (with_counts) {
        b += (size_t)snprintf(body + b, sizeof(body) - b,
                              ",\"accepted\":%" PRIu64 ",\"rejected\":%" PRIu64, h->accepted,
                              h->rejected);
    }
    body[b++] = '}';
    body[b++] = '\n';
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: "
                      "%zu\r\n%s%s\r\n",
                      status, http_status_str((enum http_status)status), b,
                      extra != NULL ? extra : "", conn_header(h, keep));
    if (!keep) {
        h->conn_flags |= CF_CLOSING;
    }
    h->cbs.send(h->ctx, head, (size_t)hl);
    if (!(h->flags & RF_HEAD_REQ)) {
        h->cbs.send(h->ctx, body, b);
    }
    request_done(h, status);
}

static void send_events_reply(srv_http_t *h, int keep)
{
    char head[ERRS_RESERVE];
    char pre[96];
    int pl = snprintf(pre, sizeof(pre),
                      "{\"accepted\":%" PRIu64 ",\"rejected\":%" PRIu64 ",\"errors\":[",
                      h->accepted, h->rejected);
    size_t body_len = (size_t)pl + h->errs_len + 3;
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                      "%zu\r\n%s\r\n%s",
                      body_len, conn_header(h, keep), pre);
    assert(hl > 0 && (size_t)hl + 3 <= sizeof(head)); /* at most ~190 bytes */
    if (!keep) {
        h->conn_flags |= CF_CLOSING;
    }
    if (h->errs_len == 0) {
        memcpy(head + hl, "]}\n", 3);
        h->cbs.send(h->ctx, head, (size_t)hl + 3);
    } else {
        /* errs has ERRS_RESERVE bytes before the list and 3 spare after it (add_error). */
        char *start = h->errs + ERRS_RESERVE - hl;
        memcpy(start, head, (size_t)hl);
        memcpy(h->errs + ERRS_RESERVE + h->errs_len, "]}\n", 3);
        h->cbs.send(h->ctx, start, (size_t)hl + h->errs_len + 3);
    }
    request_done(h, 200);
}

static void send_get_reply(srv_http_t *h, const srv_http_reply_t *r, int keep)
{
    char head[512];
    int status = r->status != 0 ? r->status : 200;
    int hl = snprintf(
        head, sizeof(head), "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
        status, http_status_str((enum http_status)status),
        r->content_type != NULL ? r->content_type : "text/plain; charset=utf-8", r->body_len,
        r->extra_headers != NULL ? r->extra_headers : "", conn_header(h, keep));
    if (hl < 0 || (size_t)hl >= sizeof(head)) {
        send_status(h, 500, "internal", "reply headers too long", NULL, 0, 0);
        return;
    }
    if (!keep) {
        h->conn_flags |= CF_CLOSING;
    }
    h->cbs.send(h->ctx, head, (size_t)hl);
    if (!(h->flags & RF_HEAD_REQ) && r->body_len > 0) {
        h->cbs.send(h->ctx, r->body, r->body_len);
    }
    request_done(h, status);
}

/* ---- events ---- */

static void add_error(srv_http_t *h, uint64_t line, ing_verdict_t v, const char *detail)
{
    if (h->nerrs >= h->lim.max_errors) {
        return;
    }
    size_t need = ERRS_RESERVE + h->errs_len + ERR_ENTRY_MAX + 3;
    if (need > h->errs_cap) {
        size_t cap = h->errs_cap * 2;
        if (cap < need) {
            cap = need + ERR_ENTRY_MAX;
        }
        char *n = h->lim.realloc_fn(h->errs, cap);
        if (n == NULL) {
            return; /* the entry is left out; the counts stay right */
        }
        h->errs = n;
        h->errs_cap = cap;
    }
    char *o = h->errs + ERRS_RESERVE + h->errs_len;
    size_t w = 0;
    if (h->nerrs > 0) {
        o[w++] = ',';
    }
    w += (size_t)snprintf(o + w, 64, "{\"line\":%" PRIu64 ",\"reason\":\"%s\"", line,
                          ing_verdict_name(v));
    if (detail != NULL) {
        memcpy(o + w, ",\"detail\":\"", 11);
        w += 11;
        w += base_json_escape(o + w, BASE_JSON_UNIT_MAX * DETAIL_MAX, detail,
                              strnlen(detail, DETAIL_MAX));
        o[w++] = '"';
    }
    o[w++] = '}';
    h->errs_len += w;
    h->nerrs++;
}

static void reject_local(srv_http_t *h, uint64_t line, ing_verdict_t v, const char *detail)
{
    if (h->cbs.on_reject != NULL) {
        h->cbs.on_reject(h->ctx, v);
    }
    h->rejected++;
    add_error(h, line, v, detail);
}

/* ingest/body.c's callbacks: each event goes to on_event and is counted with its verdict. */
static void body_event(void *ctx, uint64_t index, const char *data, size_t len)
{
    srv_http_t *h = ctx;
    const char *detail = NULL;
    ing_verdict_t v = h->cbs.on_event(h->ctx, data, len, &detail);
    if (v == ING_ACCEPTED) {
        h->accepted++;
    } else {
        h->rejected++;
        add_error(h, index, v, detail);
    }
}

static void body_reject(void *ctx, uint64_t index, ing_verdict_t v, const char *detail)
{
    reject_local(ctx, index, v, detail);
}

/* What a gzip body's decoder and window hold, at most (counted while the request runs). */
#define GZIP_HELD (SRV_INFLATE_HELD_MAX + 4096)

static int body_may_grow(void *ctx, size_t held, size_t cap)
{
    srv_http_t *h = ctx;
    size_t gz = h->gz != NULL ? GZIP_HELD : 0; /* the caller counts the decoder with the carry */
    return h->cbs.may_grow == NULL || h->cbs.may_grow(h->ctx, held + gz, cap + gz);
}

size_t srv_http_held(const srv_http_t *h)
{
    return ing_body_held(&h->body) + (h->gz != NULL ? GZIP_HELD : 0);
}

static size_t body_value_end(void *ctx, const char *p, size_t n)
{
    srv_http_t *h = ctx;
    return h->cbs.value_end(h->ctx, p, n);
}

/* ---- http-parser callbacks ---- */

static int on_message_begin(http_parser *p)
{
    srv_http_t *h = p->data;
    h->method = 0;
    h->action = ACT_NONE;
    h->status = 0;
    h->flags = 0;
    h->hdr_id = H_OTHER;
    h->hname_len = h->path_len = h->ctype_len = h->query_off = 0;
    srv_hf_ce_init(&h->ce);
    srv_hf_te_init(&h->te);
    srv_hf_host_init(&h->host);
    h->authz_lines = 0;
    h->authz_len = 0;
    h->body_bytes = 0;
    h->accepted = h->rejected = 0;
    ing_body_begin(&h->body, ING_BODY_NDJSON);
    h->errs_len = 0;
    h->nerrs = 0;
    h->conn_flags |= CF_IN_MESSAGE;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    srv_http_t *h = p->data;
    if (len > sizeof(h->path) - 1 - h->path_len) {
        h->flags |= RF_PATH_LONG;
    } else {
        memcpy(h->path + h->path_len, at, len);
        h->path_len += (uint8_t)len;
    }
    return 0;
}

static void append_lower(char *buf, uint8_t *blen, size_t cap, const char *at, size_t len)
{
    for (size_t i = 0; i < len && *blen < cap - 1; i++) {
        char c = at[i];
        buf[(*blen)++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
}

static void header_end(srv_http_t *h)
{
    switch (h->hdr_id) {
    case H_CENC:
        srv_hf_ce_end_line(&h->ce);
        break;
    case H_TE:
        srv_hf_te_end_line(&h->te);
        break;
    case H_HOST:
        srv_hf_host_end_line(&h->host);
        break;
    default:
        break;
    }
    if (h->hdr_id == H_EXPECT && h->hname_len == 12 && memcmp(h->hname, "100-continue", 12) == 0) {
        h->flags |= RF_EXPECT;
    }
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    srv_http_t *h = p->data;
    if (h->flags & RF_IN_VALUE) {
        header_end(h);
        h->flags &= ~RF_IN_VALUE;
        h->hname_len = 0;
        h->hdr_id = H_OTHER;
    }
    if (h->hname_len + len >= sizeof(h->hname)) {
        h->hname_len = sizeof(h->hname) - 1; /* too long to be one we read */
    } else {
        append_lower(h->hname, &h->hname_len, sizeof(h->hname), at, len);
    }
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    srv_http_t *h = p->data;
    if (!(h->flags & RF_IN_VALUE)) {
        h->flags |= RF_IN_VALUE;
        h->hdr_id = H_OTHER;
        if (h->hname_len == 12 && memcmp(h->hname, "content-type", 12) == 0) {
            h->hdr_id = H_CTYPE;
            h->ctype_len = 0;
        } else if (h->hname_len == 16 && memcmp(h->hname, "content-encoding", 16) == 0) {
            h->hdr_id = H_CENC;
        } else if (h->hname_len == 17 && memcmp(h->hname, "transfer-encoding", 17) == 0) {
            h->hdr_id = H_TE;
        } else if (h->hname_len == 4 && memcmp(h->hname, "host", 4) == 0) {
            h->hdr_id = H_HOST;
        } else if (h->hname_len == 13 && memcmp(h->hname, "authorization", 13) == 0) {
            h->hdr_id = H_AUTHZ;
            h->authz_lines++;
            h->authz_len = 0;
        } else if (h->hname_len == 6 && memcmp(h->hname, "expect", 6) == 0) {
            h->hdr_id = H_EXPECT;
        }
        h->hname_len = 0; /* hname now holds an Expect value */
    }
    switch (h->hdr_id) {
    case H_CTYPE:
        append_lower(h->ctype, &h->ctype_len, sizeof(h->ctype), at, len);
        break;
    case H_CENC:
        srv_hf_ce_feed(&h->ce, at, len);
        break;
    case H_TE:
        srv_hf_te_feed(&h->te, at, len);
        break;
    case H_HOST:
        srv_hf_host_feed(&h->host, at, len);
        break;
    case H_AUTHZ: {
        size_t room = sizeof(h->authz) - h->authz_len;
        size_t take = len < room ? len : room;
        memcpy(h->authz + h->authz_len, at, take);
        h->authz_len = (uint16_t)(h->authz_len + take);
        break;
    }
    case H_EXPECT:
        append_lower(h->hname, &h->hname_len, sizeof(h->hname), at, len);
        break;
    default:
        break;
    }
    return 0;
}

/* The path part of the URL in h->path, NUL-terminated in place; NULL if unusable. */
static const char *request_path(srv_http_t *h)
{
    if (h->flags & RF_PATH_LONG) {
        return NULL;
    }
    h->path[h->path_len] = '\0';
    if (h->path[0] != '/') {
        const char *scheme = strstr(h->path, "://");
        if (scheme == NULL) {
            return NULL;
        }
        const char *s = strchr(scheme + 3, '/');
        if (s == NULL) {
            s = "/";
        }
        memmove(h->path, s, strlen(s) + 1); /* on_get is given h->path again later */
    }
    size_t cut = strcspn(h->path, "?#");
    h->query_off = 0;
    if (h->path[cut] == '?') {
        h->query_off = (uint8_t)(cut + 1);
        h->path[cut + 1 + strcspn(h->path + cut + 1, "#")] = '\0';
    }
    h->path[cut] = '\0';
    return h->path;
}

/* Media type without parameters or surrounding blanks equals want. */
static int media_is(const char *v, size_t n, const char *want)
{
    size_t i = 0, wl = strlen(want);
    while (i < n && (v[i] == ' ' || v[i] == '\t')) {
        i++;
    }
    if (n - i < wl || memcmp(v + i, want, wl) != 0) {
        return 0;
    }
    i += wl;
    while (i < n && (v[i] == ' ' || v[i] == '\t')) {
        i++;
    }
    return i == n || v[i] == ';';
}

static int has_body(const http_parser *p)
{
    return (p->flags & F_CHUNKED) || (p->content_length > 0 && p->content_length != UINT64_MAX);
}

/* Asks the authorize callback; on refusal sends its 401 and closes. Returns 0 to go on. */
static int authorize(srv_http_t *h, const http_parser *p)
{
    char hdr[512];
    hdr[0] = '\0';
    (void)p;
    int st = h->cbs.authorize(h->ctx, h->authz_lines > 0 ? h->authz : NULL, h->authz_len,
                              h->authz_lines, hdr, sizeof(hdr));
    if (st == 0) {
        return 0;
    }
    send_status(h, 401, "unauthorized", NULL, hdr, 0, 0);
    return -1;
}

/* A decoder and an output window for this request's gzip body, if the caller lets this
 * connection hold that much more (may_grow: the partial budget). Returns 0, -ENOBUFS (over the
 * budget) or -ENOMEM. */
static int gzip_begin(srv_http_t *h)
{
    size_t held = ing_body_held(&h->body);
    if (h->cbs.may_grow != NULL && !h->cbs.may_grow(h->ctx, held, held + GZIP_HELD)) {
        return -ENOBUFS;
    }
    srv_inflate_limits_t il = {
        .max_out = h->lim.max_body_bytes,
        .max_ratio = h->lim.max_gzip_ratio,
        .ratio_grace = h->lim.gzip_ratio_grace,
    };
    h->gzwin = h->lim.realloc_fn(NULL, 4096);
    if (h->gzwin == NULL || srv_inflate_create(&il, &h->gz) != 0) {
        gzip_end(h);
        return -ENOMEM;
    }
    h->flags |= RF_GZIP;
    return 0;
}

static int gzip_out(void *ctx, const char *data, size_t len)
{
    srv_http_t *h = ctx;
    ing_body_feed(&h->body, data, len);
    return 0;
}

/* A gzip body failed (err from inflate.h): the events decoded so far stay counted, the body
 * ends cut, the answer is err's status, and the connection closes. */
static void gzip_fail(srv_http_t *h, int err)
{
    int status = srv_inflate_http_status(err);
    ing_body_end(&h->body, 0);
    gzip_end(h);
    send_status(h, status,
                status == 413   ? "body_too_large"
                : status == 400 ? "bad_request"
                                : "unavailable",
                srv_inflate_strerror(err), NULL, 1, 0);
}

static int on_headers_complete(http_parser *p)
{
    srv_http_t *h = p->data;
    if (h->flags & RF_IN_VALUE) {
        header_end(h);
    }
    h->method = p->method;
    if (p->method == HTTP_HEAD) {
        h->flags |= RF_HEAD_REQ;
    }
    h->conn_flags |= CF_IN_BODY;
    /* Framing first: http-parser would read a chunked body under a coding we do not apply. */
    switch (srv_hf_te_result(&h->te, p->http_major, p->http_minor)) {
    case SRV_HF_TE_UNSUPPORTED:
        send_status(h, 501, "not_implemented", "Transfer-Encoding other than chunked", NULL, 0, 0);
        return -1;
    case SRV_HF_TE_BAD:
        send_status(h, 400, "bad_request", "faulty Transfer-Encoding", NULL, 0, 0);
        return -1;
    default:
        break;
    }
    if (h->lim.require_host) {
        srv_hf_host_verdict_t hv = srv_hf_host_result(&h->host, p->http_major, p->http_minor);
        if (hv != SRV_HF_HOST_OK) {
            send_status(h, 400, "bad_request", srv_hf_host_verdict_name(hv), NULL, 0, 0);
            return -1;
        }
    }
    if (!(p->flags & F_CHUNKED) && p->content_length != UINT64_MAX &&
        p->content_length > h->lim.max_body_bytes) {
        send_status(h, 413, "body_too_large", NULL, NULL, 0, 0);
        return -1;
    }
    const char *path = request_path(h);
    const char *allow = NULL;
    if (path != NULL && strcmp(path, "/v1/events") == 0 && h->cbs.on_event != NULL) {
        if (p->method != HTTP_POST) {
            h->status = 405;
            allow = "Allow: POST\r\n";
            h->flags |= RF_ALLOW_POST;
        } else if (h->cbs.authorize != NULL && authorize(h, p) != 0) {
            return -1; /* 401 sent; the body is never read */
        } else if (srv_hf_ce_result(&h->ce) == SRV_HF_CODING_UNSUPPORTED ||
                   (srv_hf_ce_result(&h->ce) == SRV_HF_CODING_GZIP && !h->lim.gzip)) {
            h->status = 415;
        } else if (h->cbs.shedding != NULL && h->cbs.shedding(h->ctx)) {
            h->status = 503;
        } else if (srv_hf_ce_result(&h->ce) == SRV_HF_CODING_GZIP && gzip_begin(h) != 0) {
            h->status = 503; /* no memory for a decoder, or over --partial-budget */
        } else {
            h->action = ACT_EVENTS;
            ing_body_begin(&h->body, media_is(h->ctype, h->ctype_len, "application/json")
                                         ? ING_BODY_JSON
                                         : ING_BODY_NDJSON);
        }
    } else if (path != NULL && h->cbs.on_request != NULL) {
        h->action = ACT_REQUEST;
        ing_body_begin(&h->body, ING_BODY_RAW);
    } else if (path == NULL || h->cbs.on_get == NULL) {
        h->status = 404;
    } else if (p->method == HTTP_GET || p->method == HTTP_HEAD) {
        h->action = ACT_GET;
    } else if (h->cbs.on_get(h->ctx, path, NULL) == 0) {
        h->status = 405;
        allow = "Allow: GET, HEAD\r\n";
    } else {
        h->status = 404;
    }
    if (h->action == ACT_NONE) {
        h->action = ACT_STATUS;
    }
    if ((h->flags & RF_EXPECT) && p->http_major == 1 && p->http_minor >= 1 && has_body(p)) {
        if (h->action == ACT_STATUS) {
            /* Answer now instead of asking for a body we would discard. */
            h->action = ACT_NONE;
            send_status(h, h->status,
                        h->status == 503   ? "shedding"
                        : h->status == 415 ? "unsupported_media_type"
                        : h->status == 405 ? "method_not_allowed"
                                           : "not_found",
                        NULL, h->status == 503 ? "Retry-After: 1\r\n" : allow, 0, 0);
            return -1;
        }
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        h->cbs.send(h->ctx, cont, sizeof(cont) - 1);
    }
    http_parser_pause(p, 1); /* srv_http_feed counts head bytes up to here */
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    srv_http_t *h = p->data;
    if (len > h->lim.max_body_bytes - h->body_bytes) {
        if (h->action == ACT_EVENTS && !(h->flags & RF_GZIP)) {
            ing_body_feed(&h->body, at, (size_t)(h->lim.max_body_bytes - h->body_bytes));
        }
        if (h->action == ACT_EVENTS) {
            ing_body_end(&h->body, 0);
        }
        send_status(h, 413, "body_too_large", NULL, NULL, h->action == ACT_EVENTS, 0);
        return -1;
    }
    h->body_bytes += len;
    if (h->action == ACT_EVENTS && (h->flags & RF_GZIP)) {
        int r = srv_inflate_feed(h->gz, at, len, h->gzwin, 4096, gzip_out, h);
        if (r != 0) {
            gzip_fail(h, r);
            return -1;
        }
    } else if (h->action == ACT_EVENTS) {
        ing_body_feed(&h->body, at, len);
    } else if (h->action == ACT_REQUEST && ing_body_feed(&h->body, at, len) != 0) {
        send_status(h, 413, "body_too_large", NULL, NULL, 0, 0);
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    srv_http_t *h = p->data;
    int keep = http_should_keep_alive(p) && !p->upgrade;
    switch (h->action) {
    case ACT_EVENTS:
        if (h->flags & RF_GZIP) {
            int r = srv_inflate_finish(h->gz);
            if (r != 0) {
                gzip_fail(h, r);
                break;
            }
            gzip_end(h);
        }
        ing_body_end(&h->body, 1);
        send_events_reply(h, keep);
        break;
    case ACT_GET: {
        srv_http_reply_t r = {0};
        if (h->cbs.on_get(h->ctx, h->path, &r) == 0) {
            send_get_reply(h, &r, keep);
        } else {
            send_status(h, 404, "not_found", NULL, NULL, 0, keep);
        }
        break;
    }
    case ACT_REQUEST: {
        srv_http_reply_t r = {0};
        size_t blen;
        const char *body = ing_body_raw(&h->body, &blen);
        h->cbs.on_request(h->ctx, http_method_str((enum http_method)h->method), h->path,
                          h->query_off != 0 ? h->path + h->query_off : "", body, blen, &r);
        send_get_reply(h, &r, keep);
        break;
    }
    default:
        if (h->status == 405) {
            send_status(h, 405, "method_not_allowed", NULL,
                        (h->flags & RF_ALLOW_POST) ? "Allow: POST\r\n" : "Allow: GET, HEAD\r\n", 0,
                        keep);
        } else if (h->status == 503) {
            send_status(h, 503, "shedding", NULL, "Retry-After: 1\r\n", 0, keep);
        } else if (h->status == 415) {
            send_status(h, 415, "unsupported_media_type", "Content-Encoding is not supported", NULL,
                        0, keep);
        } else {
            send_status(h, 404, "not_found", NULL, NULL, 0, keep);
        }
        break;
    }
    h->conn_flags &= ~(CF_IN_MESSAGE | CF_IN_BODY);
    h->action = ACT_NONE;
    h->head_bytes = 0;
    ing_body_reset(&h->body);
    if (h->conn_flags & CF_CLOSING) {
        return -1; /* a gzip body failed at its end */
    }
    if (!keep) {
        return -1;
    }
    http_parser_pause(p, 1); /* the next request starts a new head in srv_http_feed */
    return 0;
}

/* ---- entry points ---- */

/* The parser is paused after each head and each message, so every execute call covers one phase:
 * in a head it is given at most the bytes left under max_header_bytes, which makes the 431 fall on
 * the same byte however the input is split, and never after the parser has seen bytes past it. */
int srv_http_feed(srv_http_t *h, const char *data, size_t len)
{
    while (len > 0 && !(h->conn_flags & CF_CLOSING)) {
        int head = !(h->conn_flags & CF_IN_BODY);
        size_t give = len;
        if (head) {
            size_t room = h->lim.max_header_bytes - h->head_bytes;
            if (room == 0) {
                h->flags &= ~RF_HEAD_REQ;
                send_status(h, 431, "headers_too_large", NULL, NULL, 0, 0);
                break;
            }
            if (give > room) {
                give = room;
            }
        }
        size_t n = http_parser_execute(&h->parser, &settings, data, give);
        if (h->conn_flags & CF_CLOSING) {
            break;
        }
        enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&h->parser, 0);
        } else if (e == HPE_HEADER_OVERFLOW) {
            h->flags &= ~RF_HEAD_REQ;
            send_status(h, 431, "headers_too_large", NULL, NULL, 0, 0);
            break;
        } else if (e != HPE_OK || (n == 0 && give > 0)) {
            int counts = (h->conn_flags & CF_IN_BODY) && h->action == ACT_EVENTS;
            if (counts) {
                ing_body_end(&h->body, 0);
            }
            h->flags &= ~RF_HEAD_REQ; /* the 400 always has its body */
            send_status(h, 400, "bad_request", http_errno_name(e), NULL, counts, 0);
            break;
        }
        if (head) {
            h->head_bytes += n;
        }
        data += n;
        len -= n;
    }
    return (h->conn_flags & CF_CLOSING) ? 1 : 0;
}

int srv_http_eof(srv_http_t *h)
{
    if (!(h->conn_flags & CF_CLOSING) && (h->conn_flags & CF_IN_BODY) && h->action == ACT_EVENTS) {
        ing_body_end(&h->body, 0);
    }
    h->conn_flags |= CF_CLOSING;
    return 1;
}

int srv_http_timeout(srv_http_t *h)
{
    if (!(h->conn_flags & CF_CLOSING) && (h->conn_flags & CF_IN_MESSAGE)) {
        int counts = (h->conn_flags & CF_IN_BODY) && h->action == ACT_EVENTS;
        if (counts) {
            ing_body_end(&h->body, 0);
        }
        h->flags &= ~RF_HEAD_REQ;
        send_status(h, 408, "timeout", NULL, NULL, counts, 0);
    }
    h->conn_flags |= CF_CLOSING;
    return 1;
}
