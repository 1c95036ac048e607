/* test_http.c - unit tests of the HTTP request layer (server/http.c): body kinds, splits at every
 * byte, pipelining, limits, status codes, the errors list, keep-alive. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/http.h"

/* ---- a recording connection ---- */

typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

static void buf_add(buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

__attribute__((format(printf, 2, 3))) static void buf_fmt(buf_t *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    buf_add(b, tmp, (size_t)n);
}

typedef struct {
    srv_http_t h;
    buf_t out; /* response bytes */
    buf_t log; /* every callback, in order */
    int verdicts[ING_VERDICT_COUNT];
    int requests; /* on_request_done calls */
    int last_status;
    int shedding;
    int rc; /* last feed/eof result */
    char err_text[JSON_ERROR_TEXT_LENGTH];
} conn_t;

static ing_verdict_t on_event(void *ctx, const char *data, size_t len, const char **detail)
{
    conn_t *c = ctx;
    json_error_t err;
    ing_verdict_t v = ING_ACCEPTED;
    buf_fmt(&c->log, "event %zu:", len);
    buf_add(&c->log, data, len);
    json_t *j = json_loadb(data, len, JSON_DECODE_ANY, &err);
    if (j == NULL) {
        memcpy(c->err_text, err.text, sizeof(c->err_text));
        *detail = c->err_text;
        v = ING_REJECT_PARSE;
    } else if (!json_is_object(j)) {
        v = ING_REJECT_NOT_OBJECT;
    } else {
        json_t *t = json_object_get(j, "type");
        if (!json_is_string(t) || json_string_length(t) < 1 ||
            json_string_length(t) > ING_TYPE_MAX) {
            v = ING_REJECT_NO_TYPE;
        }
    }
    json_decref(j);
    buf_fmt(&c->log, " -> %s\n", ing_verdict_name(v));
    c->verdicts[v]++;
    return v;
}

static void on_reject(void *ctx, ing_verdict_t reason)
{
    conn_t *c = ctx;
    buf_fmt(&c->log, "reject %s\n", ing_verdict_name(reason));
    c->verdicts[reason]++;
}

static const char metrics_body[] = "ingestd_up 1\n";

static int on_get(void *ctx, const char *path, srv_http_reply_t *reply)
{
    conn_t *c = ctx;
    buf_fmt(&c->log, "get %s%s\n", path, reply == NULL ? " (probe)" : "");
    if (strcmp(path, "/metrics") != 0) {
        return 404;
    }
    if (reply != NULL) {
        reply->content_type = "text/plain; version=0.0.4";
        reply->body = metrics_body;
        reply->body_len = sizeof(metrics_body) - 1;
    }
    return 0;
}

static int shedding(void *ctx)
{
    return ((conn_t *)ctx)->shedding;
}

static void on_send(void *ctx, const char *data, size_t len)
{
    buf_add(&((conn_t *)ctx)->out, data, len);
}

static void on_request_done(void *ctx, int status)
{
    conn_t *c = ctx;
    c->requests++;
    c->last_status = status;
    buf_fmt(&c->log, "done %d\n", status);
}

static const srv_http_cbs_t cbs = {
    .on_event = on_event,
    .on_reject = on_reject,
    .on_get = on_get,
    .shedding = shedding,
    .send = on_send,
    .on_request_done = on_request_done,
};

static conn_t *conn_new(const srv_http_limits_t *lim)
{
    conn_t *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    assert_int_equal(srv_http_init(&c->h, lim, &cbs, c), 0);
    return c;
}

static void conn_free(conn_t *c)
{
    srv_http_free(&c->h);
    free(c->out.p);
    free(c->log.p);
    free(c);
}

/* Feeds s in pieces of at most step bytes (0: all at once); stops once a feed says close. */
static int feed_steps(conn_t *c, const char *s, size_t len, size_t step)
{
    size_t off = 0;
    c->rc = 0;
    while (off < len && c->rc == 0) {
        size_t n = step == 0 || step > len - off ? len - off : step;
        c->rc = srv_http_feed(&c->h, s + off, n);
        off += n;
    }
    return c->rc;
}

static int feed(conn_t *c, const char *s)
{
    return feed_steps(c, s, strlen(s), 0);
}

/* ---- reading responses back ---- */

typedef struct {
    int status;
    char head[1024]; /* status line and headers */
    const char *body;
    size_t body_len;
} resp_t;

/* Parses the n-th response (0-based) in out; fails the test if it is not there. */
static resp_t get_resp(const conn_t *c, int nth)
{
    resp_t r;
    const char *p = c->out.p;
    const char *end = p + c->out.len;
    memset(&r, 0, sizeof(r));
    assert_non_null(p);
    for (int i = 0;; i++) {
        while (end - p >= 25 && memcmp(p, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0) {
            p += 25;
        }
        const char *eoh = strstr(p, "\r\n\r\n");
        assert_non_null(eoh);
        assert_true(eoh - p < (ptrdiff_t)sizeof(r.head));
        memcpy(r.head, p, (size_t)(eoh - p + 2));
        r.head[eoh - p + 2] = '\0';
        assert_int_equal(sscanf(r.head, "HTTP/1.1 %d ", &r.status), 1);
        const char *cl = strstr(r.head, "Content-Length: ");
        assert_non_null(cl);
        r.body_len = strtoul(cl + 16, NULL, 10);
        r.body = eoh + 4;
        if (i < nth) {
            p = r.body + r.body_len;
            assert_true(p <= end);
            continue;
        }
        assert_true(r.body + r.body_len <= end);
        return r;
    }
}

static int count_resps(const conn_t *c)
{
    int n = 0;
    const char *p = c->out.p;
    while (p != NULL && (p = strstr(p, "HTTP/1.1 ")) != NULL) {
        if (strncmp(p, "HTTP/1.1 100 ", 13) != 0) {
            n++;
        }
        p += 9;
    }
    return n;
}

static json_t *resp_json(const resp_t *r)
{
    json_error_t err;
    json_t *j = json_loadb(r->body, r->body_len, 0, &err);
    assert_non_null(j);
    return j;
}

static long jint(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    assert_true(json_is_integer(v));
    return (long)json_integer_value(v);
}

/* The 200 reply of the n-th response: its accepted and rejected counts. */
static void expect_counts(const conn_t *c, int nth, long accepted, long rejected)
{
    resp_t r = get_resp(c, nth);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Content-Type: application/json\r\n"));
    json_t *j = resp_json(&r);
    assert_int_equal(jint(j, "accepted"), accepted);
    assert_int_equal(jint(j, "rejected"), rejected);
    assert_true(json_is_array(json_object_get(j, "errors")));
    json_decref(j);
}

static char *post(const char *ctype, const char *body)
{
    static char req[65536];
    snprintf(req, sizeof(req),
             "POST /v1/events HTTP/1.1\r\nHost: x\r\n%s%s%sContent-Length: %zu\r\n\r\n%s",
             ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "", strlen(body),
             body);
    return req;
}

/* ---- body kinds ---- */

static void test_ndjson_body_passes_each_line_and_counts_verdicts(void **state)
{
    (void)state;
    conn_t *c = conn_new(NULL);
    assert_int_equal(
        feed(c, post(NULL, "{\"type\":\"a\"}\n{\"type\":\"b\",\"x\":1}\n[1]\n{\"x\":1}\n{bad\n")),
        0);
    expect_counts(c, 0, 2, 3);
    assert_int_equal(c->verdicts[ING_ACCEPTED], 2);
    assert_int_equal(c->verdicts[ING_REJECT_NOT_OBJECT], 1);
    assert_int_equal(c->verdicts[ING_REJECT_NO_TYPE], 1);
    assert_int_equal(c->verdicts[ING_REJECT_PARSE], 1);
    assert_int_equal(c->requests, 1);
    assert_int_equal(c->last_status, 200);
    assert_int_equal(srv_http_phase(&c->h), SRV_HTTP_IDLE);
    conn_free(c);
}

static void test_ndjson_crlf_and_blank_lines_are_ignored(void **state)
{
    (void)state;
    conn_t *c = conn_new(NULL);
    feed(c, post("application/x-ndjson",
                 "\r\n\n{\"type\":\"a\"}\r\n\r\n   \n\t\r\n{\"type\":\"b\"}\r\n\n"));
    expect_counts(c, 0, 2, 0);
    /* CR is stripped before the event is passed on */
    assert_non_null(strstr(c->log.p, "event 12:{\"type\":\"a\"} -> accepted\n"));
    conn_free(c);
}

static void test_ndjson_last_line_without_newline_is_an_event(void **state)
{
    (void)state;
    conn_t *c = conn_new(NULL);
    feed(c, post(NULL, "{\"type\":\"a\"}\n{\"type\":\"b\"}"));
    expect_counts(c, 0, 2, 0);
    conn_free(c);
}

static void test_json_array_elements_are_events(void **state)
{
    (void)state;
    conn_t *c = conn_new(NULL);
    feed(
        c,
        post(
            "application/json; charset=utf-8",
            " [ {\"type\":\"a\",\"s\":\"x,]}\\\"[{\"} ,\n{\"type\":\"b\",\"n\":[1,[2],{\"c\":[]}]},"
            "{\"type\":\"c\"} ] \n"));
    expect_counts(c, 0, 3, 0);
    assert_non_null(strstr(c->log.p, "event 27:{\"type\":\"a\",\"s\":\"x,]}\\\"[{\"} -> accepted"));
    conn_free(c);
}

static void test_json_array_bad_elements_are_rejected_by_index(void **state)
{
    (void)state;
    conn_t *c = conn_new(NULL);
    feed(c, post("application/json", "[1,{\"type\":\"a\"},,{\"type\":\"b\"},] x"));
    resp_t r = get_resp(c, 0);
    json_t *j = resp_json(&r);
    assert_int_equal(jint(j, "accepted"), 2);
    assert_int_equal(jint(j, "rejected"), 4);
    json_t *errs = json_object_get(j, "errors");
    assert_int_equal(json_array_size(errs), 4);
    static const long lines[] = {1, 3, 5, 6};
    static const char *const reasons[] = {"not_object", "parse", "parse", "parse"};
    for (size_t i = 0; i < 4; i++) {
        json_t *e = json_array_get(errs, i);
        assert_int_equal(jint(e, "line"), lines[i]);
        assert_string_equal(json_string_value(json_object_get(e, "reason")), reasons[i]);
    }
    json_decref(j);
    assert_int_equal(c->verdicts[ING_REJECT_PARSE], 3);
    conn_free(c);
}

static void test_json_empty_array_has_no_events(void **state)
{
    (void)state;
    conn_t *c = conn_new(NULL);
    feed(c, post("application/json", " [ ] "));
    expect_counts(c, 0, 0, 0);
    conn_free(c);
}

static void test_json_single_object_is_one_event(void **state)
{
    (void)state;
    conn_t *c = conn_new(NULL);
    feed(c, post("application/json", "\n {\"type\":\"a\",\n \"v\":[1,2]}\n"));
    expect_counts(c, 0, 1, 0);
    feed(c, post("application/json", "{\"type\":\"a\"} {\"type\":\"b\"}"));
    expect_counts(c, 1, 0, 1);
    conn_free(c);
}

static void test_json_array_cut_by_end_of_body_is_truncated(void **state)
{
    (void)state;
    conn_t *c = conn_new(NULL);
    feed(c, post("application/json", "[{\"type\":\"a\"},{\"type\":"));
    expect_counts(c, 0, 1, 1);
    assert_int_equal(c->verdicts[ING_REJECT_TRUNCATED], 1);
    conn_free(c);
}

static void test_json_array_without_its_closing_bracket_is_truncated(void **state)
{
    (void)state;
    conn_t *c = conn_new(NULL);
    feed(c, post("application/json", "[{\"type\":\"a\"},"));
    expect_counts(c, 0, 1, 1);
    feed(c, post("application/json", " [ "));
    expect_counts(c, 1, 0, 1);
    assert_int_equal(c->verdicts[ING_REJECT_TRUNCATED], 2);
    resp_t r = get_resp(c, 1);
    json_t *j = resp_json(&r);
    json_t *e = json_array_get(json_object_get(j, "errors"), 0);
    assert_int_equal(jint(e, "line"), 1);
    assert_string_equal(json_string_value(json_object_get(e, "reason")), "truncated");
    json_decref(j);
    conn_free(c);
}

/* The line rule of ingest/frame.h, as over TCP: a blank line over the limit is too_large. */
static void test_ndjson_blank_line_over_the_limit_is_too_large_as_over_tcp(void **state)
{
    (void)state;
    srv_http_limits_t lim = {.max_event_bytes = 12};
    conn_t *c = conn_new(&lim);
    feed(c, post(NULL, "                    \n{\"type\":\"a\"}\n            \n"));
    expect_counts(c, 0, 1, 1);
    assert_int_equal(c->verdicts[ING_REJECT_TOO_LARGE], 1);
    conn_free(c);
}

/* ---- splits ---- */

/* Runs req through a new connection fed in pieces cut at the given offsets (sorted), returns the
 * transcript: every callback, the response bytes and the final result. */
static char *transcript(const char *req, size_t len, const size_t *cuts, size_t ncuts,
                        const srv_http_limits_t *lim, int shed)
{
    conn_t *c = conn_new(lim);
    c->shedding = shed;
    size_t off = 0;
    int rc = 0;
    for (size_t i = 0; i <= ncuts && rc == 0; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        if (to > off) {
            rc = srv_http_feed(&c->h, req + off, to - off);
        }
        off = to;
    }
    if (rc == 0) {
        rc = srv_http_eof(&c->h);
    }
    buf_t t = {0};
    buf_add(&t, c->log.p ? c->log.p : "", c->log.len);
    buf_add(&t, "----\n", 5);
    buf_add(&t, c->out.p ? c->out.p : "", c->out.len);
    buf_fmt(&t, "\n---- rc %d\n", rc);
    conn_free(c);
    return t.p;
}

static const char *const split_reqs[] = {
    /* NDJSON with CRLF, a blank line, a bad line and a last line without LF, then a pipelined GET
     * and a HEAD */
    "POST /v1/events HTTP/1.1\r\nHost: a\r\nContent-Length: 47\r\n\r\n"
    "{\"type\":\"a\"}\r\n\r\n{\"type\":\"b\"}\n{oops\n{\"type\":\"c\"}"
    "GET /metrics?x=1 HTTP/1.1\r\n\r\nHEAD /metrics HTTP/1.1\r\n\r\n",
    /* a chunked JSON array */
    "POST /v1/events HTTP/1.1\r\nContent-Type: application/json\r\n"
    "Transfer-Encoding: chunked\r\n\r\n"
    "7\r\n [{\"typ\r\n17\r\ne\":\"a\"}, {\"s\":\"]\\\"\"}, 7\r\n"
    "12\r\n,{\"type\":\"b\"} ]   \r\n0\r\n\r\n",
    /* one object, then Connection: close (bytes after it are ignored) */
    "POST /v1/events HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 16\r\n"
    "Connection: close\r\n\r\n {\"type\":\"one\"} GET /metrics HTTP/1.1\r\n\r\n",
    /* too-large events (limit 16 below) among good ones, a 404, a 405 */
    "POST /v1/events HTTP/1.1\r\nContent-Length: 85\r\n\r\n"
    "{\"type\":\"aaaaaaaaaaaaaaaaaaaaa\"}\n{\"type\":\"b\"}\n{\"type\":\"toolongtoolong\"}\n"
    "{\"type\":\"c\"}\n"
    "GET /nope HTTP/1.1\r\n\r\nPUT /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nxy",
    /* a malformed request after a good one */
    "GET /metrics HTTP/1.1\r\n\r\nGET /metrics HTTP/9.Q\r\n\r\n",
    /* Expect: 100-continue, then a body cut short by EOF */
    "POST /v1/events HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 6\r\n\r\n{}\n{}\n"
    "POST /v1/events HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"type\":\"a\"}\n{\"ty",
};

static void test_every_split_gives_the_same_callbacks_and_responses(void **state)
{
    (void)state;
    srv_http_limits_t lim = {.max_event_bytes = 16};
    for (size_t k = 0; k < sizeof(split_reqs) / sizeof(split_reqs[0]); k++) {
        const srv_http_limits_t *l = k == 3 ? &lim : NULL;
        const char *req = split_reqs[k];
        size_t len = strlen(req);
        char *whole = transcript(req, len, NULL, 0, l, 0);
        if (k != 4) {
            assert_null(strstr(whole, "done 400"));
        }
        for (size_t i = 1; i < len; i++) {
            char *t = transcript(req, len, &i, 1, l, 0);
            assert_string_equal(t, whole);
            free(t);
        }
        size_t *cuts = malloc(len * sizeof(*cuts));
        assert_non_null(cuts);
        for (size_t i = 0; i < len; i++) {
            cuts[i] = i + 1;
        }
        char *t = transcript(req, len, cuts, len, l, 0);
        assert_string_equal(t, whole);
        free(t);
        free(cuts);
        free(whole);
    }
}

static void test_split_requests_answer_as_expected(void **state)
{
    (void)state;
    conn_t *c = conn_new(NULL);
    feed_steps(c, split_reqs[0], strlen(split_reqs[0]), 1);
    assert_int_equal(c->rc, 0);
    expect_counts(c, 0, 3, 1);
    resp_t r = get_resp(c, 1);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, strlen(metrics_body));
    assert_memory_equal(r.body, metrics_body, r.body_len);
    assert_non_null(strstr(r.head, "Content-Type: text/plain; version=0.0.4\r\n"));
    assert_non_null(strstr(c->log.p, "get /metrics\n"));
    /* HEAD: same head, no body: it is the last response and nothing follows it */
    const char *last = strstr(c->out.p + (r.body + r.body_len - c->out.p), "HTTP/1.1 200");
    assert_non_null(last);
    assert_non_null(strstr(last, "Content-Length: 13\r\n"));
    assert_int_equal(strlen(last), (size_t)(strstr(last, "\r\n\r\n") + 4 - last));
    conn_free(c);

    c = conn_new(NULL);
    feed_steps(c, split_reqs[1], strlen(split_reqs[1]), 3);
    expect_counts(c, 0, 2, 2);
    conn_free(c);

    c = conn_new(NULL);
    assert_int_equal(feed(c, split_reqs[2]), 1);
    expect_counts(c, 0, 1, 0);
    assert_non_null(strstr(c->out.p, "Connection: close\r\n"));
    assert_int_equal(count_resps(c), 1);
    assert_int_equal(srv_http_phase(&c->h), SRV_HTTP_CLOSING);
    assert_int_equal(srv_http_feed(&c->h, "GET / HTTP/1.1\r\n\r\n", 18), 1);
    assert_int_equal(count_resps(c), 1);
    conn_free(c);
}

/* ---- pipelining, keep-alive ---- */

static void test_pipelined_requests_in_one_feed_are_answered_in_order(void **state)
{
    (void)state;
    conn_t *c = conn_new(NULL);
    char req[4096];
    size_t n = 0;
    for (int i = 0; i < 5; i++) {
        const char *p =
            post(NULL, i % 2 ? "{\"type\":\"x\"}\n{\"type\":\"y\"}\n" : "{\"type\":1}\n");
        n += (size_t)snprintf(req + n, sizeof(req) - n, "%s", p);
    }
    n += (size_t)snprintf(req + n, sizeof(req) - n, "GET /metrics HTTP/1.1\r\n\r\n");
    assert_int_equal(srv_http_feed(&c->h, req, n), 0);
    assert_int_equal(c->requests, 6);
    assert_int_equal(count_resps(c), 6);
    for (int i = 0; i < 5; i++) {
        expect_counts(c, i, i % 2 ? 2 : 0, i % 2 ? 0 : 1);
    }
    assert_int_equal(get_resp(c, 5).status, 200);
    assert_null(strstr(c->out.p, "Connection:"));
    conn_free(c);
}

static void test_connection_close_and_http10_close_after_the_reply(void **state)
{
    (void)state;
    conn_t *c = conn_new(NULL);
    assert_int_equal(feed(c, "GET /metrics HTTP/1.0\r\n\r\n"), 1);
    assert_non_null(strstr(c->out.p, "Connection: close\r\n"));
    conn_free(c);

    c = conn_new(NULL);
    assert_int_equal(feed(c, "GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), 0);
    assert_non_null(strstr(c->out.p, "Connection: keep-alive\r\n"));
    assert_int_equal(feed(c, "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n"), 1);
    assert_int_equal(count_resps(c), 2);
    assert_int_equal(get_resp(c, 1).status, 200);
    assert_non_null(strstr(get_resp(c, 1).head, "Connection: close\r\n"));
    conn_free(c);

    c = conn_new(NULL);
    assert_int_equal(feed(c, "POST /v1/events HTTP/1.0\r\nContent-Length: 13\r\n\r\n"
                             "{\"type\":\"a\"}\n"),
                     1);
    expect_counts(c, 0, 1, 0);
    conn_free(c);
}

/* ---- limits ---- */

static void test_content_length_over_max_body_is_413_before_the_body(void **state)
{
    (void)state;
    srv_http_limits_t lim = {.max_body_bytes = 100};
    conn_t *c = conn_new(&lim);
    assert_int_equal(feed(c, "POST /v1/events HTTP/1.1\r\nContent-Length: 101\r\n\r\n"), 1);
    resp_t r = get_resp(c, 0);
    assert_int_equal(r.status, 413);
    assert_non_null(strstr(r.head, "Connection: close\r\n"));
    assert_int_equal(c->verdicts[ING_ACCEPTED], 0);
    conn_free(c);

    c = conn_new(&lim);
    char body[101];
    memset(body, ' ', 100);
    memcpy(body, "{\"type\":\"a\"}\n", 13);
    body[100] = '\0';
    assert_int_equal(feed(c, post(NULL, body)), 0);
    expect_counts(c, 0, 1, 0);
    conn_free(c);
}

static void test_chunked_body_over_max_body_is_413(void **state)
{
    (void)state;
    srv_http_limits_t lim = {.max_body_bytes = 30};
    conn_t *c = conn_new(&lim);
    int rc =
        feed(c, "POST /v1/events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                "d\r\n{\"type\":\"a\"}\n\r\nd\r\n{\"type\":\"b\"}\n\r\nd\r\n{\"type\":\"c\"}\n\r\n"
                "0\r\n\r\n");
    assert_int_equal(rc, 1);
    resp_t r = get_resp(c, 0);
    assert_int_equal(r.status, 413);
    json_t *j = resp_json(&r);
    /* exactly the first 30 body bytes were read: two events, and 4 bytes of a third cut short */
    assert_int_equal(jint(j, "accepted"), 2);
    assert_int_equal(jint(j, "rejected"), 1);
    json_decref(j);
    assert_int_equal(c->verdicts[ING_REJECT_TRUNCATED], 1);
    conn_free(c);
}

static void test_headers_over_max_are_431(void **state)
{
    (void)state;
    srv_http_limits_t lim = {.max_header_bytes = 1024};
    conn_t *c = conn_new(&lim);
    char req[4096];
    int n = snprintf(req, sizeof(req), "GET /metrics HTTP/1.1\r\nX-Big: ");
    memset(req + n, 'a', 1100);
    memcpy(req + n + 1100, "\r\n\r\n", 5);
    assert_int_equal(feed_steps(c, req, strlen(req), 7), 1);
    resp_t r = get_resp(c, 0);
    assert_int_equal(r.status, 431);
    assert_int_equal(count_resps(c), 1);
    conn_free(c);

    /* under the limit: fine */
    c = conn_new(&lim);
    req[n + 900] = '\0';
    strcat(req, "\r\n\r\n");
    assert_int_equal(feed(c, req), 0);
    assert_int_equal(get_resp(c, 0).status, 200);
    conn_free(c);

    /* a long URL counts too */
    c = conn_new(&lim);
    n = snprintf(req, sizeof(req), "GET /");
    memset(req + n, 'u', 2000);
    memcpy(req + n + 2000, " HTTP/1.1\r\n\r\n", 14);
    assert_int_equal(feed(c, req), 1);
    assert_int_equal(get_resp(c, 0).status, 431);
    conn_free(c);
}

static void test_malformed_request_is_400_with_the_parser_error_name(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "FOO /v1/events HTTP/1.1\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost\r\n\r\n",
        "POST /v1/events HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST /v1/events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "\x01\x02\x03",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        conn_t *c = conn_new(NULL);
        assert_int_equal(feed(c, bad[i]), 1);
        resp_t r = get_resp(c, 0);
        assert_int_equal(r.status, 400);
        assert_non_null(strstr(r.head, "Connection: close\r\n"));
        json_t *j = resp_json(&r);
        assert_string_equal(json_string_value(json_object_get(j, "error")), "bad_request");
        assert_non_null(strstr(json_string_value(json_object_get(j, "detail")), "HPE_"));
        json_decref(j);
        assert_int_equal(c->last_status, 400);
        conn_free(c);
    }
}

static void test_unknown_path_is_404_and_wrong_method_is_405_with_allow(void **state)
{
    (void)state;
    conn_t *c = conn_new(NULL);
    assert_int_equal(feed(c, "GET /nope HTTP/1.1\r\n\r\n"
                             "GET /v1/events HTTP/1.1\r\n\r\n"
                             "DELETE /metrics HTTP/1.1\r\n\r\n"
                             "POST /nope HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                             "GET http://host:1/metrics HTTP/1.1\r\n\r\n"),
                     0);
    assert_int_equal(get_resp(c, 0).status, 404);
    resp_t r = get_resp(c, 1);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.head, "Allow: POST\r\n"));
    r = get_resp(c, 2);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.head, "Allow: GET, HEAD\r\n"));
    assert_int_equal(get_resp(c, 3).status, 404);
    assert_int_equal(get_resp(c, 4).status, 200);
    assert_int_equal(c->verdicts[ING_ACCEPTED] + c->verdicts[ING_REJECT_PARSE], 0);
    conn_free(c);
}

static void test_shedding_answers_503_with_retry_after_and_skips_the_body(void **state)
{
    (void)state;
    conn_t *c = conn_new(NULL);
    c->shedding = 1;
    assert_int_equal(feed(c, post(NULL, "{\"type\":\"a\"}\n")), 0);
    resp_t r = get_resp(c, 0);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.head, "Retry-After: 1\r\n"));
    assert_int_equal(c->verdicts[ING_ACCEPTED], 0);
    assert_null(strstr(c->log.p, "event"));
    /* keep-alive: the next request is served once shedding stops */
    c->shedding = 0;
    assert_int_equal(feed(c, post(NULL, "{\"type\":\"a\"}\n")), 0);
    expect_counts(c, 1, 1, 0);
    /* with Expect: 100-continue the 503 comes at once and the connection closes */
    c->shedding = 1;
    assert_int_equal(feed(c, "POST /v1/events HTTP/1.1\r\nExpect: 100-continue\r\n"
                             "Content-Length: 13\r\n\r\n"),
                     1);
    assert_int_equal(get_resp(c, 2).status, 503);
    assert_null(strstr(c->out.p, "100 Continue"));
    conn_free(c);
}

static void test_too_large_event_is_skipped_and_the_next_accepted(void **state)
{
    (void)state;
    srv_http_limits_t lim = {.max_event_bytes = 64};
    char body[8192];
    size_t n = 0;
    n += (size_t)snprintf(body, sizeof(body), "{\"type\":\"a\",\"pad\":\"");
    memset(body + n, 'p', 5000);
    n += 5000;
    n += (size_t)snprintf(body + n, sizeof(body) - n, "\"}\n{\"type\":\"next\"}\n");
    for (size_t step = 0; step <= 64; step += 1 + step * 3) {
        conn_t *c = conn_new(&lim);
        const char *req = post(NULL, body);
        feed_steps(c, req, strlen(req), step);
        expect_counts(c, 0, 1, 1);
        assert_int_equal(c->verdicts[ING_REJECT_TOO_LARGE], 1);
        assert_non_null(strstr(c->log.p, "event 15:{\"type\":\"next\"} -> accepted"));
        /* the skipped line was never buffered */
        assert_true(c->h.body.carry_cap <= lim.max_event_bytes + 1);
        conn_free(c);
    }
    /* and the same in an array */
    conn_t *c = conn_new(&lim);
    body[0] = '[';
    n = 1 + (size_t)snprintf(body + 1, sizeof(body) - 1, "{\"type\":\"a\",\"pad\":\"");
    memset(body + n, 'p', 5000);
    n += 5000;
    snprintf(body + n, sizeof(body) - n, "\"},{\"type\":\"next\"}]");
    const char *req = post("application/json", body);
    feed_steps(c, req, strlen(req), 100);
    expect_counts(c, 0, 1, 1);
    conn_free(c);
}

static void test_event_of_exactly_max_bytes_is_passed_and_one_more_is_too_large(void **state)
{
    (void)state;
    srv_http_limits_t lim = {.max_event_bytes = 20};
    /* 20 bytes: {"type":"aaaaaaaaa"}, then 21 bytes, each with CRLF */
    const char *body =
        "{\"type\":\"aaaaaaaaa\"}\r\n{\"type\":\"aaaaaaaaaa\"}\r\n{\"type\":\"aaaaaaaaa\"}";
    for (size_t step = 0; step < 24; step++) {
        conn_t *c = conn_new(&lim);
        const char *req = post(NULL, body);
        feed_steps(c, req, strlen(req), step);
        expect_counts(c, 0, 2, 1);
        assert_int_equal(c->verdicts[ING_REJECT_TOO_LARGE], 1);
        conn_free(c);
    }
}

static void test_errors_list_is_capped_and_properly_escaped(void **state)
{
    (void)state;
    conn_t *c = conn_new(NULL);
    char body[4096];
    size_t n = 0;
    for (int i = 0; i < 15; i++) {
        n += (size_t)snprintf(body + n, sizeof(body) - n, "{\"q\\\"\x01\xff\xc3\xa9%d\n", i);
    }
    feed(c, post(NULL, body));
    resp_t r = get_resp(c, 0);
    json_t *j = resp_json(&r);
    assert_int_equal(jint(j, "accepted"), 0);
    assert_int_equal(jint(j, "rejected"), 15);
    json_t *errs = json_object_get(j, "errors");
    assert_int_equal(json_array_size(errs), 10);
    for (size_t i = 0; i < 10; i++) {
        json_t *e = json_array_get(errs, i);
        assert_int_equal(jint(e, "line"), (long)i + 1);
        assert_string_equal(json_string_value(json_object_get(e, "reason")), "parse");
        assert_non_null(json_string_value(json_object_get(e, "detail")));
    }
    json_decref(j);
    conn_free(c);

    /* a custom cap, and a detail with every kind of byte survives a JSON round trip */
    srv_http_limits_t lim = {.max_errors = 2};
    c = conn_new(&lim);
    feed(c, post(NULL, "x\"\\\x1f\xe2\x82\n[\n\"\xf0\x9f\x98\x80\"\n{}\n"));
    r = get_resp(c, 0);
    j = resp_json(&r);
    assert_int_equal(jint(j, "rejected"), 4);
    assert_int_equal(json_array_size(json_object_get(j, "errors")), 2);
    json_decref(j);
    conn_free(c);
}

/* ---- other behaviour ---- */

static void test_get_uses_on_get_and_head_omits_the_body(void **state)
{
    (void)state;
    conn_t *c = conn_new(NULL);
    assert_int_equal(feed(c, "HEAD /metrics HTTP/1.1\r\n\r\n"), 0);
    assert_non_null(strstr(c->out.p, "Content-Length: 13\r\n"));
    assert_null(strstr(c->out.p, "ingestd_up"));
    assert_int_equal(feed(c, "GET /metrics#frag HTTP/1.1\r\n\r\n"), 0);
    assert_non_null(strstr(c->out.p, "ingestd_up 1\n"));
    assert_int_equal(c->requests, 2);
    conn_free(c);
}

static void test_expect_continue_sends_100_before_the_body(void **state)
{
    (void)state;
    conn_t *c = conn_new(NULL);
    assert_int_equal(feed(c, "POST /v1/events HTTP/1.1\r\nExpect: 100-Continue\r\n"
                             "Content-Length: 13\r\n\r\n"),
                     0);
    assert_string_equal(c->out.p, "HTTP/1.1 100 Continue\r\n\r\n");
    assert_int_equal(feed(c, "{\"type\":\"a\"}\n"), 0);
    expect_counts(c, 0, 1, 0);
    /* a body we would not read gets its final answer at once */
    assert_int_equal(feed(c, "POST /nope HTTP/1.1\r\nExpect: 100-continue\r\n"
                             "Content-Length: 13\r\n\r\n"),
                     1);
    assert_int_equal(get_resp(c, 1).status, 404);
    conn_free(c);
}

static void test_eof_inside_a_body_rejects_the_partial_line_as_truncated(void **state)
{
    (void)state;
    conn_t *c = conn_new(NULL);
    assert_int_equal(feed(c, "POST /v1/events HTTP/1.1\r\nContent-Length: 100\r\n\r\n"
                             "{\"type\":\"a\"}\n{\"type\""),
                     0);
    assert_int_equal(srv_http_phase(&c->h), SRV_HTTP_BODY);
    assert_int_equal(srv_http_eof(&c->h), 1);
    assert_int_equal(c->verdicts[ING_ACCEPTED], 1);
    assert_int_equal(c->verdicts[ING_REJECT_TRUNCATED], 1);
    assert_null(c->out.p);
    conn_free(c);

    /* a timeout instead: 408 with the counts so far */
    c = conn_new(NULL);
    feed(c, "POST /v1/events HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"type\":\"a\"}\n");
    assert_int_equal(srv_http_timeout(&c->h), 1);
    resp_t r = get_resp(c, 0);
    assert_int_equal(r.status, 408);
    json_t *j = resp_json(&r);
    assert_int_equal(jint(j, "accepted"), 1);
    json_decref(j);
    conn_free(c);

    /* idle: a timeout closes silently */
    c = conn_new(NULL);
    assert_int_equal(srv_http_phase(&c->h), SRV_HTTP_IDLE);
    assert_int_equal(srv_http_timeout(&c->h), 1);
    assert_null(c->out.p);
    conn_free(c);
}

static void test_empty_header_value_does_not_merge_header_names(void **state)
{
    (void)state;
    conn_t *c = conn_new(NULL);
    feed_steps(c,
               "POST /v1/events HTTP/1.1\r\nX-Empty:\r\nContent-Type: application/json\r\n"
               "Content-Length: 16\r\n\r\n[{\"type\":\"a\"}  ]",
               120, 5);
    expect_counts(c, 0, 1, 0);
    assert_non_null(strstr(c->log.p, "event 12:{\"type\":\"a\"} -> accepted"));
    conn_free(c);
}

static void test_content_encoding_is_415(void **state)
{
    (void)state;
    conn_t *c = conn_new(NULL);
    assert_int_equal(feed(c, "POST /v1/events HTTP/1.1\r\nContent-Encoding: gzip\r\n"
                             "Content-Length: 3\r\n\r\nabc"),
                     0);
    assert_int_equal(get_resp(c, 0).status, 415);
    assert_int_equal(c->verdicts[ING_REJECT_PARSE], 0);
    conn_free(c);
}

static void test_no_allocation_per_event_when_lines_do_not_cross_feeds(void **state)
{
    (void)state;
    conn_t *c = conn_new(NULL);
    char body[8192];
    size_t n = 0;
    for (int i = 0; i < 200; i++) {
        n += (size_t)snprintf(body + n, sizeof(body) - n, "{\"type\":\"t%d\"}\n", i % 7);
    }
    const char *req = post(NULL, body);
    for (int i = 0; i < 3; i++) {
        feed(c, req);
    }
    assert_int_equal(c->verdicts[ING_ACCEPTED], 600);
    assert_null(c->h.body.carry);
    assert_null(c->h.errs);
    conn_free(c);
}

static void test_header_limit_falls_on_the_same_byte_for_every_split(void **state)
{
    (void)state;
    const char *req = "\r\nGET /metrics HTTP/1.1\r\nX-A: aaaa\r\nX-B:\r\n\r\n";
    size_t len = strlen(req);
    /* the head counts through the blank line that ends it: len bytes fit, len - 1 do not */
    for (size_t max = len - 2; max <= len + 1; max++) {
        srv_http_limits_t lim = {.max_header_bytes = max};
        char *whole = transcript(req, len, NULL, 0, &lim, 0);
        assert_non_null(strstr(whole, max >= len ? "done 200" : "done 431"));
        for (size_t i = 1; i < len; i++) {
            char *t = transcript(req, len, &i, 1, &lim, 0);
            assert_string_equal(t, whole);
            free(t);
        }
        free(whole);
    }
}

static void test_array_element_size_counts_blanks_before_the_delimiter(void **state)
{
    (void)state;
    /* {"type":"a"} is 12 bytes: with 3 blanks before the ',' it is 15 */
    const char *req = "POST /v1/events HTTP/1.1\r\nContent-Type: application/json\r\n"
                      "Content-Length: 33\r\n\r\n[{\"type\":\"a\"}   ,{\"type\":\"b\"}  ] ";
    size_t len = strlen(req);
    srv_http_limits_t lim = {.max_event_bytes = 14};
    char *whole = transcript(req, len, NULL, 0, &lim, 0);
    assert_non_null(strstr(whole, "reject too_large\nevent 12:{\"type\":\"b\"} -> accepted\n"));
    assert_non_null(strstr(whole, "done 200"));
    for (size_t i = 1; i < len; i++) {
        char *t = transcript(req, len, &i, 1, &lim, 0);
        assert_string_equal(t, whole);
        free(t);
    }
    free(whole);
}

static int fail_realloc;

static void *failing_realloc(void *p, size_t n)
{
    return fail_realloc ? NULL : realloc(p, n);
}

static void test_allocation_failure_rejects_the_carried_event_and_keeps_counts(void **state)
{
    (void)state;
    srv_http_limits_t lim = {.realloc_fn = failing_realloc, .free_fn = free};
    conn_t *c = conn_new(&lim);
    fail_realloc = 1;
    const char *req = post(NULL, "{\"type\":\"a\"}\n{\"type\":\"b\"}\n{\"type\":\"c\"}\n");
    size_t len = strlen(req);
    size_t cut = len - 20; /* inside the second line: it must be carried */
    assert_int_equal(srv_http_feed(&c->h, req, cut), 0);
    assert_int_equal(srv_http_feed(&c->h, req + cut, len - cut), 0);
    fail_realloc = 0;
    resp_t r = get_resp(c, 0);
    json_t *j = resp_json(&r);
    assert_int_equal(jint(j, "accepted"), 2);
    assert_int_equal(jint(j, "rejected"), 1);
    assert_int_equal(json_array_size(json_object_get(j, "errors")), 0);
    json_decref(j);
    assert_int_equal(c->verdicts[ING_REJECT_TOO_LARGE], 1);
    conn_free(c);
}

static void test_init_rejects_missing_send(void **state)
{
    (void)state;
    srv_http_t h;
    srv_http_cbs_t none = {0};
    assert_int_equal(srv_http_init(&h, NULL, &none, NULL), -22);
    assert_int_equal(srv_http_init(&h, NULL, NULL, NULL), -22);
}

/* ---- on_request (the admin listener) ---- */

static void on_request(void *ctx, const char *method, const char *path, const char *query,
                       const char *body, size_t body_len, srv_http_reply_t *reply)
{
    conn_t *c = ctx;
    buf_fmt(&c->log, "req %s %s ?%s %zu:", method, path, query, body_len);
    if (body != NULL) {
        buf_add(&c->log, body, body_len);
    }
    buf_add(&c->log, "\n", 1);
    reply->status = strcmp(path, "/x") == 0 ? 200 : 404;
    reply->content_type = "application/json";
    reply->body = "{}\n";
    reply->body_len = 3;
}

static void test_on_request_gets_every_method_with_query_and_whole_body_split_anyhow(void **state)
{
    static const char in[] =
        "PUT /x?a=1&b=2#frag HTTP/1.1\r\nContent-Length: 10\r\n\r\n{\"pool\":1}"
        "POST /y HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        "HEAD /x HTTP/1.1\r\nConnection: close\r\n\r\n";
    srv_http_cbs_t rc = cbs;
    (void)state;
    rc.on_request = on_request;

    for (size_t step = 0; step <= 7; step += 7) {
        conn_t *c = calloc(1, sizeof(*c));
        assert_non_null(c);
        assert_int_equal(srv_http_init(&c->h, NULL, &rc, c), 0);
        assert_int_equal(feed_steps(c, in, sizeof(in) - 1, step), 1);
        assert_string_equal(c->log.p, "req PUT /x ?a=1&b=2 10:{\"pool\":1}\ndone 200\n"
                                      "req POST /y ? 5:abcde\ndone 404\n"
                                      "req HEAD /x ? 0:\ndone 200\n");
        resp_t r = get_resp(c, 0);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.head, "application/json"));
        assert_int_equal(r.body_len, 3);
        assert_int_equal(get_resp(c, 1).status, 404);
        /* HEAD: the head only (Content-Length says what GET would send). */
        const char *last = strstr(c->out.p, "}\nHTTP/1.1 404");
        assert_non_null(last);
        last = strstr(last + 2, "\r\n\r\n{}\nHTTP/1.1 200 ");
        assert_non_null(last);
        assert_non_null(strstr(last, "Content-Length: 3\r\n"));
        assert_int_equal(c->out.p[c->out.len - 1], '\n');
        assert_int_equal(c->out.p[c->out.len - 3], '\n');
        conn_free(c);
    }
}

static void test_on_request_body_over_the_event_limit_is_413_and_close(void **state)
{
    srv_http_limits_t lim = {.max_event_bytes = 8};
    srv_http_cbs_t rc = cbs;
    (void)state;
    rc.on_request = on_request;
    conn_t *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    assert_int_equal(srv_http_init(&c->h, &lim, &rc, c), 0);
    assert_int_equal(feed(c, "PUT /x HTTP/1.1\r\nContent-Length: 9\r\n\r\n123456789"), 1);
    assert_int_equal(get_resp(c, 0).status, 413);
    assert_null(strstr(c->log.p, "req "));
    conn_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ndjson_body_passes_each_line_and_counts_verdicts),
        cmocka_unit_test(test_ndjson_crlf_and_blank_lines_are_ignored),
        cmocka_unit_test(test_ndjson_last_line_without_newline_is_an_event),
        cmocka_unit_test(test_json_array_elements_are_events),
        cmocka_unit_test(test_json_array_bad_elements_are_rejected_by_index),
        cmocka_unit_test(test_json_empty_array_has_no_events),
        cmocka_unit_test(test_json_single_object_is_one_event),
        cmocka_unit_test(test_json_array_cut_by_end_of_body_is_truncated),
        cmocka_unit_test(test_json_array_without_its_closing_bracket_is_truncated),
        cmocka_unit_test(test_ndjson_blank_line_over_the_limit_is_too_large_as_over_tcp),
        cmocka_unit_test(test_every_split_gives_the_same_callbacks_and_responses),
        cmocka_unit_test(test_split_requests_answer_as_expected),
        cmocka_unit_test(test_pipelined_requests_in_one_feed_are_answered_in_order),
        cmocka_unit_test(test_connection_close_and_http10_close_after_the_reply),
        cmocka_unit_test(test_content_length_over_max_body_is_413_before_the_body),
        cmocka_unit_test(test_chunked_body_over_max_body_is_413),
        cmocka_unit_test(test_headers_over_max_are_431),
        cmocka_unit_test(test_malformed_request_is_400_with_the_parser_error_name),
        cmocka_unit_test(test_unknown_path_is_404_and_wrong_method_is_405_with_allow),
        cmocka_unit_test(test_shedding_answers_503_with_retry_after_and_skips_the_body),
        cmocka_unit_test(test_too_large_event_is_skipped_and_the_next_accepted),
        cmocka_unit_test(test_event_of_exactly_max_bytes_is_passed_and_one_more_is_too_large),
        cmocka_unit_test(test_errors_list_is_capped_and_properly_escaped),
        cmocka_unit_test(test_get_uses_on_get_and_head_omits_the_body),
        cmocka_unit_test(test_expect_continue_sends_100_before_the_body),
        cmocka_unit_test(test_eof_inside_a_body_rejects_the_partial_line_as_truncated),
        cmocka_unit_test(test_empty_header_value_does_not_merge_header_names),
        cmocka_unit_test(test_content_encoding_is_415),
        cmocka_unit_test(test_no_allocation_per_event_when_lines_do_not_cross_feeds),
        cmocka_unit_test(test_header_limit_falls_on_the_same_byte_for_every_split),
        cmocka_unit_test(test_array_element_size_counts_blanks_before_the_delimiter),
        cmocka_unit_test(test_allocation_failure_rejects_the_carried_event_and_keeps_counts),
        cmocka_unit_test(test_init_rejects_missing_send),
        cmocka_unit_test(test_on_request_gets_every_method_with_query_and_whole_body_split_anyhow),
        cmocka_unit_test(test_on_request_body_over_the_event_limit_is_413_and_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
