/* http.h - the HTTP/1.1 request layer of ingest: bytes in, callbacks out (no sockets, no libuv),
 * built on Debian's http-parser 2.9 with keep-alive, pipelining and chunked bodies. */
#ifndef INGESTD_HTTP_H
#define INGESTD_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

#include "ingest/body.h"
#include "ingest/verdict.h"
#include "server/httpfields.h"
#include "server/inflate.h"

/* Requests and answers:
 * - POST /v1/events: Content-Type application/json (parameters ignored) -> a top-level array (the
 *   first non-blank byte is '[': each element is an event) or one object (the whole body is one
 *   event); any other or no Content-Type -> NDJSON (the line rule of ingest/frame.h, shared with
 *   TCP; the last line needs no LF: the body has a known end). The framing and its verdicts are
 *   ingest/body.h's. Events are passed as their bytes arrive; only an event crossing a feed
 *   boundary is copied. Answer
 *   200 {"accepted":N,"rejected":M,"errors":[{"line":L,"reason":"parse","detail":"..."}]}: the
 *   first max_errors rejections, line = 1-based line (NDJSON, blank lines counted) or element.
 *   Content-Encoding other than identity (and gzip when lim.gzip) -> 415; a Transfer-Encoding
 *   other than one final chunked -> 501 (a coding we lack) or 400 (faulty framing), and close.
 *   Shedding -> 503 + Retry-After: 1.
 * - GET/HEAD of other paths -> on_get. Unknown path 404; wrong method 405 with Allow.
 * - Expect: 100-continue -> "100 Continue" when the body will be read, else the final answer at
 *   once and close. Errors have a JSON body {"error":"code","detail":"..."}; 413 and 400/408 in
 *   a body also carry "accepted" and "rejected" for the events already passed (they were).
 * - 400 (malformed: detail is http-parser's error name, e.g. "HPE_INVALID_METHOD"), 413, 431,
 *   408 close the connection; so do Connection: close, HTTP/1.0 without keep-alive, Upgrade.
 * - Responses are HTTP/1.1 with Content-Type and Content-Length, in request order. */

/* Limits of one connection. Zero fields take the defaults in brackets. */
typedef struct {
    size_t max_header_bytes; /* [16 KiB] bytes of a request before its body (blank lines before it,
                              * request line, headers, the blank line ending them) -> 431 and
                              * close; the parser never sees bytes past the limit. http-parser's own
                              * ceiling (HTTP_MAX_HEADER_SIZE, 80 KiB, also answered with 431) can
                              * only be raised process-wide with http_parser_set_max_header_size()
                              * at start-up. */
    size_t max_body_bytes;   /* [8 MiB] Content-Length above it -> 413 before reading the body; a
                              * chunked body passing it -> 413 at that byte; both close. */
    size_t max_event_bytes;  /* [1 MiB] one NDJSON line (without CR/LF; a blank line too), an
                              * array element (first byte to the ',' or ']', blanks before it
                              * included) or the one object (first non-blank byte to the end);
                              * longer -> rejected too_large, skipped without being buffered
                              * (ingest/body.h); also the most of an admin request body */
    size_t max_errors;       /* entries in the 200 reply's "errors" list [10] */
    /* Memory for the per-connection carry buffer (a partial line/element, grown rarely, freed
     * when over 16 KiB at the end of a request) and the errors list. NULL: libc realloc/free.
     * The server passes mem_realloc/mem_free. When realloc_fn fails, the event being carried is
     * rejected too_large, or the errors-list entry is left out (the counts stay right). */
    void *(*realloc_fn)(void *ptr, size_t size);
    void (*free_fn)(void *ptr);
    /* Issue 11 (ingest listeners set these; zero keeps the old behaviour):
     * gzip: POST /v1/events takes Content-Encoding: gzip, decoded as it arrives (inflate.h)
     * into the same framing; the decoded size counts against max_body_bytes (413), a corrupt
     * or cut stream is 400, any coding but identity and gzip 415. The stream (~40 KiB) and its
     * 4 KiB output window live for one request. max_gzip_ratio: decoded / compressed above it
     * -> 413 (0: none), checked once the output passes gzip_ratio_grace bytes.
     * require_host: an HTTP/1.1 request without exactly one valid Host line -> 400 and close. */
    int gzip;
    uint32_t max_gzip_ratio;
    uint64_t gzip_ratio_grace;
    int require_host;
} srv_http_limits_t;

/* Bytes of an Authorization value kept for the authorize callback: the longest bearer token
 * (auth.h's default 256) plus room for the scheme; a longer value is passed cut (then denied). */
#define SRV_HTTP_AUTHZ_MAX 320

#define SRV_HTTP_DEFAULT_MAX_HEADER_BYTES ((size_t)16 * 1024)
#define SRV_HTTP_DEFAULT_MAX_BODY_BYTES ((size_t)8 * 1024 * 1024)
#define SRV_HTTP_DEFAULT_MAX_EVENT_BYTES ((size_t)1024 * 1024)
#define SRV_HTTP_DEFAULT_MAX_ERRORS 10

/* The answer to a GET or HEAD of a path other than /v1/events. */
typedef struct {
    int status;                /* 200 unless set */
    const char *content_type;  /* "text/plain; charset=utf-8" unless set */
    const char *body;          /* borrowed: must stay valid until srv_http_feed returns */
    size_t body_len;           /* sent as Content-Length; the body is omitted for HEAD */
    const char *extra_headers; /* NULL or complete lines, each ending in "\r\n" (borrowed) */
} srv_http_reply_t;

/* Callbacks, all called on the thread that calls srv_http_feed/srv_http_eof, from inside those
 * calls. None may call srv_http_free or srv_http_feed on the same connection. */
typedef struct {
    /* One event of a POST /v1/events body: an NDJSON line (CR stripped; blank lines are never
     * passed), an element of a top-level JSON array, or the whole body for one JSON object. data
     * is borrowed (points into the fed bytes or the carry buffer), not NUL-terminated, and valid
     * only during the call. Returns the verdict; *detail may be set to a short text (e.g.
     * jansson's error) for the reply's errors list, valid until the callback returns. NULL:
     * POST /v1/events is 404 (for an admin-only listener). */
    ing_verdict_t (*on_event)(void *ctx, const char *data, size_t len, const char **detail);
    /* A rejection found by this layer itself, so the caller counts every rejection (on_event is
     * not called for these): ING_REJECT_TOO_LARGE, ING_REJECT_TRUNCATED (a body cut short, or a
     * JSON array without its closing ']'), and ING_REJECT_PARSE for an empty array element
     * ("[1,,2]", "[1,]") or bytes after the closing ']'. May be NULL. */
    void (*on_reject)(void *ctx, ing_verdict_t reason);
    /* The judge's array seam for JSON array bodies (ing_judge_value_end: the length of the
     * value starting at data[0..len) when the parse strategy validated it while finding its
     * end, else 0; see ingest/body.h). May be NULL: the framer walks each element itself. */
    size_t (*value_end)(void *ctx, const char *data, size_t len);
    /* GET or HEAD of another path (query string and fragment stripped; longer than 127 bytes
     * counts as unknown). Fill *reply and return 0, or return 404 for an unknown path. With reply
     * == NULL it is a probe (another method was used): return 0 if the path exists (the answer is
     * 405 with "Allow: GET, HEAD"), 404 if not; no side effects. NULL: every such path is 404. */
    int (*on_get)(void *ctx, const char *path, srv_http_reply_t *reply);
    /* Any request (any method) to a path other than /v1/events, for the admin listener; when
     * set, on_get is not used. method: http-parser's name ("GET", "HEAD", "PUT", ...); path
     * without query and fragment; query: the text after '?' without the fragment ("" when
     * none; path and query together longer than 127 bytes make the path unknown: 404); body:
     * the whole request body, buffered in the carry buffer (more than max_event_bytes -> 413
     * and close), NULL when empty. Fill *reply as for on_get (HEAD: its body is not sent).
     * NULL: on_get decides as above. */
    void (*on_request)(void *ctx, const char *method, const char *path, const char *query,
                       const char *body, size_t body_len, srv_http_reply_t *reply);
    /* POST /v1/events only, at headers-complete, before any body byte is parsed: value is the
     * Authorization field's value (NULL when absent; cut at SRV_HTTP_AUTHZ_MAX), lines how many
     * Authorization lines there were (more than one is malformed). Return 0 to go on, or 401
     * after writing complete header lines (e.g. "WWW-Authenticate: Bearer ...\r\n") into hdr
     * (hdrsz bytes): the request is answered 401 at once and the connection closed, its body
     * unread. May be NULL (no authentication). */
    int (*authorize)(void *ctx, const char *value, size_t len, unsigned lines, char *hdr,
                     size_t hdrsz);
    /* Asked before a body's carry buffer (a partial line or element) grows from held to cap
     * bytes (ingest/body.h): 0 rejects that event as over_budget and skips it. May be NULL. */
    int (*may_grow)(void *ctx, size_t held, size_t cap);
    /* Nonzero: POST /v1/events is answered 503 with "Retry-After: 1" and its body is discarded
     * unread by on_event (sink behind, memory limit). Asked once per request, when its headers
     * are complete. May be NULL (never shedding). */
    int (*shedding)(void *ctx);
    /* Response bytes for the peer, in order; the callee copies them. One response may take
     * more than one call (a GET reply: head, then body). Required. */
    void (*send)(void *ctx, const char *data, size_t len);
    /* Called once per response sent (status: 200, 400, 404, ...), after its last send, for
     * counting. May be NULL. */
    void (*on_request_done)(void *ctx, int status);
} srv_http_cbs_t;

/* Where a connection is, for the caller's timers (idle timeout vs header/body read timeout). */
typedef enum {
    SRV_HTTP_IDLE = 0, /* between requests (nothing of the next request read yet) */
    SRV_HTTP_HEAD,     /* inside a request line or headers */
    SRV_HTTP_BODY,     /* inside a body */
    SRV_HTTP_CLOSING,  /* closing (after a response, eof or timeout); feed nothing more */
} srv_http_phase_t;

/* One connection's request state, embedded in the caller's connection struct (plain value
 * struct: read no field directly). About 500 bytes plus the carry buffer and errors list, which
 * are allocated only when a line crosses a feed boundary or an event is rejected, and then kept
 * for the next requests: steady state makes no allocation per event or per request. */
typedef struct {
    http_parser parser;
    srv_http_limits_t lim;
    srv_http_cbs_t cbs;
    void *ctx;
    /* request */
    unsigned method;     /* enum http_method */
    int action;          /* what the request gets (http.c) */
    int status;          /* the status decided at headers-complete */
    unsigned flags;      /* per-request bits (http.c) */
    unsigned conn_flags; /* per-connection bits (http.c) */
    uint8_t hdr_id;      /* header whose value is being read */
    uint8_t hname_len;
    uint8_t path_len;
    uint8_t ctype_len;
    uint8_t query_off; /* index of the query in path[] after '?', 0: none */
    char hname[20];
    char path[128];
    char ctype[48];
    srv_hf_ce_t ce;       /* Content-Encoding, every line (httpfields.h) */
    srv_hf_te_state_t te; /* Transfer-Encoding */
    srv_hf_host_t host;   /* Host */
    unsigned authz_lines; /* Authorization lines */
    uint16_t authz_len;
    char authz[SRV_HTTP_AUTHZ_MAX];
    srv_inflate_t *gz; /* a gzip body's decoder, this request only */
    char *gzwin;       /* its output window */
    size_t head_bytes;
    uint64_t body_bytes;
    ing_body_t body; /* body framing and its carry buffer (a partial line/element) */
    uint64_t accepted;
    uint64_t rejected;
    char *errs; /* reply errors list, JSON, after some bytes of room for the reply head */
    size_t errs_len;
    size_t errs_cap;
    size_t nerrs;
} srv_http_t;

/* Initialises h for a new connection: copies *lim (NULL: all defaults) and *cbs, keeps ctx
 * (passed to every callback). Allocates nothing. Returns 0, or -EINVAL when cbs or cbs->send is
 * NULL. */
int srv_http_init(srv_http_t *h, const srv_http_limits_t *lim, const srv_http_cbs_t *cbs,
                  void *ctx);

/* Feeds bytes read from the peer (any split: a request may arrive a byte at a time, several
 * pipelined requests may arrive at once). Runs callbacks, sends responses in request order.
 * Returns 0: keep reading; 1: close the connection once pending sends are written (the response
 * said Connection: close: asked by the client or HTTP/1.0 without keep-alive, a malformed request
 * (400), 413, 431, or an early reply to "Expect: 100-continue"); bytes after that point are
 * ignored, and later calls return 1 without doing anything. */
int srv_http_feed(srv_http_t *h, const char *data, size_t len);

/* The peer closed its side. A body cut short: a partial line/element/object is rejected as
 * truncated (on_reject); events already passed stay counted; no response is sent. Returns 1
 * (close). */
int srv_http_eof(srv_http_t *h);

/* A read timeout fired. Mid-request (HEAD or BODY): like srv_http_eof for the body, then a 408
 * response with Connection: close. Returns 1 (close). */
int srv_http_timeout(srv_http_t *h);

srv_http_phase_t srv_http_phase(const srv_http_t *h);

/* Bytes this connection holds for the request in progress: its body's carry buffer, and a gzip
 * body's decoder and window (counted at their bound, SRV_INFLATE_HELD_MAX + 4 KiB). For the
 * partial budget. */
size_t srv_http_held(const srv_http_t *h);

/* Frees what h allocated. h must be initialised (or zeroed); safe to call twice. */
void srv_http_free(srv_http_t *h);

#endif
