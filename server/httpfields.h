/* httpfields.h - what a few HTTP request fields mean for ingest, decided on their combined value
 * (every field line of the request, RFC 9110 5.3) and fed in the pieces http-parser hands out:
 * Content-Encoding (identity or gzip; else 415), Transfer-Encoding (only chunked, once, last;
 * else 501 or 400) and Host (exactly one valid line; else 400). Small state values, no
 * allocation, no I/O; one request's state is used by one thread. */
#ifndef INGESTD_HTTPFIELDS_H
#define INGESTD_HTTPFIELDS_H

#include <stddef.h>
#include <stdint.h>

/* Longest list element kept for comparing: a longer one is some other coding. */
#define SRV_HF_TOKEN_MAX 16

/* The list-element scanner under the Content-Encoding and Transfer-Encoding states (RFC 9110
 * 5.6.1: elements split by ',', optional spaces/tabs around them, empty elements ignored). An
 * element is a token (RFC 9110 5.6.2), compared case-insensitively; an element with anything
 * else (parameters, quotes, spaces inside, control bytes) is "bad". Embedded; treat as opaque. */
typedef struct {
    uint8_t state;
    uint8_t len;
    uint8_t overflow;
    char tok[SRV_HF_TOKEN_MAX];
} srv_hf_lex_t;

/* ---- Content-Encoding ---- */

typedef enum {
    SRV_HF_CODING_IDENTITY = 0,    /* no field, or only "identity" and empty elements */
    SRV_HF_CODING_GZIP = 1,        /* exactly one "gzip" or "x-gzip", any number of "identity" */
    SRV_HF_CODING_UNSUPPORTED = 2, /* anything else (another coding, gzip twice, a bad element)
                                    * -> 415 */
} srv_hf_coding_t;

typedef struct {
    srv_hf_lex_t lex;
    unsigned lines; /* field lines seen */
    unsigned gzip;  /* gzip and x-gzip elements */
    unsigned other; /* elements that are neither those nor identity */
} srv_hf_ce_t;

/* Starts a request with no Content-Encoding seen. */
void srv_hf_ce_init(srv_hf_ce_t *ce);

/* The next n bytes of one Content-Encoding field line's value (any split, n 0 allowed). */
void srv_hf_ce_feed(srv_hf_ce_t *ce, const char *p, size_t n);

/* That field line's value has ended; another line of the same field continues the list as
 * if joined with a comma, so a later "identity" never undoes an earlier "gzip". */
void srv_hf_ce_end_line(srv_hf_ce_t *ce);

/* The body's coding by everything fed; call after the headers are complete (an unfinished line
 * counts as ended). */
srv_hf_coding_t srv_hf_ce_result(const srv_hf_ce_t *ce);

/* All of the above on one whole combined value (NULL: no field). */
srv_hf_coding_t srv_hf_content_coding(const char *value, size_t n);

/* ---- Transfer-Encoding ---- */

typedef enum {
    SRV_HF_TE_NONE = 0,        /* no Transfer-Encoding field: Content-Length or no body */
    SRV_HF_TE_CHUNKED = 1,     /* exactly "chunked" */
    SRV_HF_TE_BAD = 2,         /* 400 and close (RFC 9112 6.3): chunked is not the last coding,
                                * is applied twice, the field is empty, or an HTTP/1.0 request
                                * carries it (RFC 9112 6.1: framing faulty) */
    SRV_HF_TE_UNSUPPORTED = 3, /* 501 (RFC 9112 6.1): a coding before the final chunked that we
                                * do not implement (gzip, deflate, identity, unknown) */
} srv_hf_te_t;

typedef struct {
    srv_hf_lex_t lex;
    unsigned lines;    /* field lines seen */
    unsigned elements; /* non-empty elements */
    unsigned chunked;  /* "chunked" elements */
    unsigned other;    /* elements other than "chunked" */
    int last_chunked;  /* the last element so far is "chunked" */
} srv_hf_te_state_t;

void srv_hf_te_init(srv_hf_te_state_t *te);
void srv_hf_te_feed(srv_hf_te_state_t *te, const char *p, size_t n);
void srv_hf_te_end_line(srv_hf_te_state_t *te);

/* The verdict for a request of version http_major.http_minor, after the headers. */
srv_hf_te_t srv_hf_te_result(const srv_hf_te_state_t *te, unsigned http_major, unsigned http_minor);

/* All of the above on one whole combined value (NULL: no field). */
srv_hf_te_t srv_hf_transfer_coding(const char *value, size_t n, unsigned http_major,
                                   unsigned http_minor);

/* ---- Host ---- */

typedef enum {
    SRV_HF_HOST_OK = 0,
    SRV_HF_HOST_MISSING = 1, /* an HTTP/1.1 (or later) request without Host -> 400 */
    SRV_HF_HOST_MANY = 2,    /* more than one Host field line (any version) -> 400 */
    SRV_HF_HOST_INVALID = 3, /* a value that is not uri-host [ ":" port ] -> 400 */
} srv_hf_host_verdict_t;

typedef struct {
    unsigned lines;
    uint8_t state;
    uint8_t pct; /* hex digits still due after a '%' */
    uint8_t bad;
} srv_hf_host_t;

void srv_hf_host_init(srv_hf_host_t *h);

/* The next n bytes of one Host field line's value. Syntax (RFC 9110 7.2, RFC 3986 3.2.2):
 * empty (allowed), or reg-name / IPv4 (unreserved, sub-delims, %XX), or "[" IPv6 or IPvFuture
 * "]", then optionally ":" and digits; spaces/tabs around the value are allowed. */
void srv_hf_host_feed(srv_hf_host_t *h, const char *p, size_t n);
void srv_hf_host_end_line(srv_hf_host_t *h);

/* RFC 9112 3.2: the verdict after the headers, for a request of version major.minor. */
srv_hf_host_verdict_t srv_hf_host_result(const srv_hf_host_t *h, unsigned http_major,
                                         unsigned http_minor);

/* "ok", "missing Host", "more than one Host", "invalid Host": an error reply's detail. */
const char *srv_hf_host_verdict_name(srv_hf_host_verdict_t v);

#endif
