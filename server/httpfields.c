/* httpfields.c - Content-Encoding, Transfer-Encoding and Host, streamed and combined. */
#include "server/httpfields.h"

#include <string.h>

/* Scanner states of srv_hf_lex_t. */
enum { L_BEFORE = 0, L_TOKEN, L_AFTER, L_BAD };

/* What a finished element was. */
typedef enum { EL_NONE, EL_TOKEN, EL_BAD } element_t;

static int is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 9110 5.6.2 tchar. */
static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return 1;
    }
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Ends the current element; returns what it was (the token in lx->tok, lx->len bytes). */
static element_t lex_finish(srv_hf_lex_t *lx)
{
    element_t e = EL_NONE;
    if (lx->state == L_TOKEN || lx->state == L_AFTER) {
        e = EL_TOKEN;
    } else if (lx->state == L_BAD) {
        e = EL_BAD;
    }
    lx->state = L_BEFORE;
    return e;
}

/* 1 when the finished token is word (lower case), exactly. */
static int lex_is(const srv_hf_lex_t *lx, const char *word)
{
    size_t n = strlen(word);
    return !lx->overflow && lx->len == n && memcmp(lx->tok, word, n) == 0;
}

/* Feeds one byte; returns the element a ',' ended, or EL_NONE. */
static element_t lex_byte(srv_hf_lex_t *lx, unsigned char c)
{
    if (c == ',') {
        return lex_finish(lx);
    }
    switch (lx->state) {
    case L_BEFORE:
        if (is_ows(c)) {
            break;
        }
        if (is_tchar(c)) {
            lx->state = L_TOKEN;
            lx->len = 0;
            lx->overflow = 0;
            lx->tok[lx->len++] = lower((char)c);
        } else {
            lx->state = L_BAD;
        }
        break;
    case L_TOKEN:
        if (is_tchar(c)) {
            if (lx->len < SRV_HF_TOKEN_MAX) {
                lx->tok[lx->len++] = lower((char)c);
            } else {
                lx->overflow = 1;
            }
        } else if (is_ows(c)) {
            lx->state = L_AFTER;
        } else {
            lx->state = L_BAD;
        }
        break;
    case L_AFTER:
        if (!is_ows(c)) {
            lx->state = L_BAD;
        }
        break;
    default: /* L_BAD: skip to the next ',' */
        break;
    }
    return EL_NONE;
}

/* ---- Content-Encoding ---- */

static void ce_element(srv_hf_ce_t *ce, element_t e)
{
    if (e == EL_NONE) {
        return;
    }
    if (e == EL_BAD) {
        ce->other++;
    } else if (lex_is(&ce->lex, "gzip") || lex_is(&ce->lex, "x-gzip")) {
        ce->gzip++;
    } else if (!lex_is(&ce->lex, "identity")) {
        ce->other++;
    }
}

void srv_hf_ce_init(srv_hf_ce_t *ce)
{
    memset(ce, 0, sizeof(*ce));
}

void srv_hf_ce_feed(srv_hf_ce_t *ce, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ce_element(ce, lex_byte(&ce->lex, (unsigned char)p[i]));
    }
}

void srv_hf_ce_end_line(srv_hf_ce_t *ce)
{
    ce_element(ce, lex_finish(&ce->lex));
    ce->lines++;
}

srv_hf_coding_t srv_hf_ce_result(const srv_hf_ce_t *ce)
{
    srv_hf_ce_t c = *ce;
    ce_element(&c, lex_finish(&c.lex));
    if (c.other > 0 || c.gzip > 1) {
        return SRV_HF_CODING_UNSUPPORTED;
    }
    return c.gzip == 1 ? SRV_HF_CODING_GZIP : SRV_HF_CODING_IDENTITY;
}

srv_hf_coding_t srv_hf_content_coding(const char *value, size_t n)
{
    if (value == NULL) {
        return SRV_HF_CODING_IDENTITY;
    }
    srv_hf_ce_t ce;
    srv_hf_ce_init(&ce);
    srv_hf_ce_feed(&ce, value, n);
    srv_hf_ce_end_line(&ce);
    return srv_hf_ce_result(&ce);
}

/* ---- Transfer-Encoding ---- */

static void te_element(srv_hf_te_state_t *te, element_t e)
{
    if (e == EL_NONE) {
        return;
    }
    te->elements++;
    if (e == EL_TOKEN && lex_is(&te->lex, "chunked")) {
        te->chunked++;
        te->last_chunked = 1;
    } else {
        te->other++;
        te->last_chunked = 0;
    }
}

void srv_hf_te_init(srv_hf_te_state_t *te)
{
    memset(te, 0, sizeof(*te));
}

void srv_hf_te_feed(srv_hf_te_state_t *te, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        te_element(te, lex_byte(&te->lex, (unsigned char)p[i]));
    }
}

void srv_hf_te_end_line(srv_hf_te_state_t *te)
{
    te_element(te, lex_finish(&te->lex));
    te->lines++;
}

srv_hf_te_t srv_hf_te_result(const srv_hf_te_state_t *te, unsigned http_major, unsigned http_minor)
{
    srv_hf_te_state_t t = *te;
    int open_line = t.lex.state != L_BEFORE;
    te_element(&t, lex_finish(&t.lex));
    if (t.lines == 0 && !open_line) {
        return SRV_HF_TE_NONE;
    }
    if (http_major == 1 && http_minor == 0) {
        return SRV_HF_TE_BAD;
    }
    if (t.elements == 0 || !t.last_chunked || t.chunked > 1) {
        return SRV_HF_TE_BAD;
    }
    return t.other > 0 ? SRV_HF_TE_UNSUPPORTED : SRV_HF_TE_CHUNKED;
}

srv_hf_te_t srv_hf_transfer_coding(const char *value, size_t n, unsigned http_major,
                                   unsigned http_minor)
{
    if (value == NULL) {
        return SRV_HF_TE_NONE;
    }
    srv_hf_te_state_t te;
    srv_hf_te_init(&te);
    srv_hf_te_feed(&te, value, n);
    srv_hf_te_end_line(&te);
    return srv_hf_te_result(&te, http_major, http_minor);
}

/* ---- Host ---- */

/* Host scanner states. */
enum { H_START = 0, H_REG, H_LIT, H_AFTERLIT, H_PORT, H_TRAIL };

static int is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static int is_subdelim(unsigned char c)
{
    return c != '\0' && strchr("!$&'()*+,;=", c) != NULL;
}

static int is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

void srv_hf_host_init(srv_hf_host_t *h)
{
    memset(h, 0, sizeof(*h));
}

static void host_byte(srv_hf_host_t *h, unsigned char c)
{
    if (h->pct > 0) {
        if (!is_hex(c)) {
            h->bad = 1;
        }
        h->pct--;
        return;
    }
    switch (h->state) {
    case H_START:
    case H_REG:
        if (h->state == H_START && is_ows(c)) {
            break;
        }
        if (h->state == H_START && c == '[') {
            h->state = H_LIT;
        } else if (is_unreserved(c) || is_subdelim(c)) {
            h->state = H_REG;
        } else if (c == '%') {
            h->state = H_REG;
            h->pct = 2;
        } else if (c == ':') {
            h->state = H_PORT;
        } else if (is_ows(c)) {
            h->state = H_TRAIL;
        } else {
            h->bad = 1;
        }
        break;
    case H_LIT:
        if (c == ']') {
            h->state = H_AFTERLIT;
        } else if (!(is_unreserved(c) || is_subdelim(c) || c == ':')) {
            h->bad = 1;
        }
        break;
    case H_AFTERLIT:
        if (c == ':') {
            h->state = H_PORT;
        } else if (is_ows(c)) {
            h->state = H_TRAIL;
        } else {
            h->bad = 1;
        }
        break;
    case H_PORT:
        if (is_ows(c)) {
            h->state = H_TRAIL;
        } else if (c < '0' || c > '9') {
            h->bad = 1;
        }
        break;
    default: /* H_TRAIL */
        if (!is_ows(c)) {
            h->bad = 1;
        }
        break;
    }
}

void srv_hf_host_feed(srv_hf_host_t *h, const char *p, size_t n)
{
    for (size_t i = 0; i < n && !h->bad; i++) {
        host_byte(h, (unsigned char)p[i]);
    }
}

void srv_hf_host_end_line(srv_hf_host_t *h)
{
    if (h->pct > 0 || h->state == H_LIT) {
        h->bad = 1;
    }
    h->state = H_START;
    h->pct = 0;
    h->lines++;
}

srv_hf_host_verdict_t srv_hf_host_result(const srv_hf_host_t *h, unsigned http_major,
                                         unsigned http_minor)
{
    srv_hf_host_t t = *h;
    if (t.state != H_START || t.pct > 0) {
        srv_hf_host_end_line(&t);
    }
    if (t.lines > 1) {
        return SRV_HF_HOST_MANY;
    }
    if (t.bad) {
        return SRV_HF_HOST_INVALID;
    }
    if (t.lines == 0 && (http_major > 1 || (http_major == 1 && http_minor >= 1))) {
        return SRV_HF_HOST_MISSING;
    }
    return SRV_HF_HOST_OK;
}

const char *srv_hf_host_verdict_name(srv_hf_host_verdict_t v)
{
    switch (v) {
    case SRV_HF_HOST_OK:
        return "ok";
    case SRV_HF_HOST_MISSING:
        return "missing Host";
    case SRV_HF_HOST_MANY:
        return "more than one Host";
    case SRV_HF_HOST_INVALID:
        return "invalid Host";
    }
    return "unknown";
}
