/* ingest/body.c - HTTP body framing: NDJSON, JSON array walker, one object (see body.h). */
#include "ingest/body.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/frame.h"

enum { K_NDJSON = 0, K_DETECT, K_ARRAY, K_OBJECT, K_RAW };
/* Array walker states. */
enum { A_VALUE_WAIT = 0, A_IN_ELEM, A_IN_STR, A_IN_ESC, A_AFTER, A_JUNK };

#define F_SKIP 0x01u        /* skipping the rest of a too-large event */
#define F_AFTER_COMMA 0x02u /* array: a ',' was the last delimiter */
#define F_RAW_OVER 0x04u    /* raw: the body passed the limit */

void ing_body_init(ing_body_t *b, size_t max_event, const ing_body_ops_t *ops, void *ctx,
                   void *(*realloc_fn)(void *, size_t), void (*free_fn)(void *))
{
    memset(b, 0, sizeof(*b));
    b->ops = ops;
    b->ctx = ctx;
    b->max_event = max_event;
    b->realloc_fn = realloc_fn != NULL ? realloc_fn : realloc;
    b->free_fn = free_fn != NULL ? free_fn : free;
}

void ing_body_begin(ing_body_t *b, ing_body_kind_t kind)
{
    b->refused = 0;
    b->kind = kind == ING_BODY_JSON ? K_DETECT : kind == ING_BODY_RAW ? K_RAW : K_NDJSON;
    b->state = A_VALUE_WAIT;
    b->depth = 0;
    b->flags = 0;
    b->index = 0;
    b->carry_len = 0;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void reject(ing_body_t *b, uint64_t index, ing_verdict_t v, const char *detail)
{
    b->ops->on_reject(b->ctx, index, v, detail);
}

static void reject_too_large(ing_body_t *b, uint64_t index)
{
    char d[64];
    if (b->refused) {
        /* The carry could not grow: the owner's budget, not the event's size. */
        b->refused = 0;
        reject(b, index, ING_REJECT_OVER_BUDGET, "over the partial-line budget");
        return;
    }
    snprintf(d, sizeof(d), "event over %zu bytes", b->max_event);
    reject(b, index, ING_REJECT_TOO_LARGE, d);
}

/* Appends to the carry buffer. Returns 0, or -1 when the event would pass max_event + slack
 * (NDJSON: 1, room for a CR) or memory ran out: the caller rejects the event and skips it. The
 * limits match the checks on events passed without copying, so any split gives the same verdict. */
static int carry_append(ing_body_t *b, const char *p, size_t n, size_t slack)
{
    size_t limit = b->max_event + slack;
    if (n > limit - b->carry_len) {
        return -1;
    }
    size_t need = b->carry_len + n;
    if (need > b->carry_cap) {
        size_t cap = b->carry_cap * 2;
        if (cap < 1024) {
            cap = 1024;
        }
        if (cap < need) {
            cap = need;
        }
        if (cap > limit) {
            cap = limit;
        }
        if (b->ops->may_grow != NULL && !b->ops->may_grow(b->ctx, b->carry_cap, cap)) {
            b->refused = 1;
            return -1;
        }
        char *c = b->realloc_fn(b->carry, cap);
        if (c == NULL) {
            return -1;
        }
        b->carry = c;
        b->carry_cap = cap;
    }
    memcpy(b->carry + b->carry_len, p, n);
    b->carry_len += n;
    return 0;
}

/* Starts skipping the event being read (index is its number). */
static void skip_event(ing_body_t *b, uint64_t index)
{
    reject_too_large(b, index);
    b->flags |= F_SKIP;
    b->carry_len = 0;
}

/* ---- NDJSON ---- */

/* One complete line (without its LF), by the line rule. */
static void ndjson_line(ing_body_t *b, const char *p, size_t n)
{
    switch (ing_line_complete(p, &n, b->max_event)) {
    case ING_LINE_TOO_LARGE:
        reject_too_large(b, b->index);
        break;
    case ING_LINE_EVENT:
        b->ops->on_event(b->ctx, b->index, p, n);
        break;
    default: /* blank */
        break;
    }
}

static void ndjson_feed(ing_body_t *b, const char *p, size_t n)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t seg = nl != NULL ? (size_t)(nl - p) : n;
        if (b->flags & F_SKIP) {
            if (nl == NULL) {
                return;
            }
            b->flags &= ~F_SKIP;
            b->index++;
        } else if (nl == NULL) {
            if (carry_append(b, p, seg, 1) != 0) {
                skip_event(b, b->index + 1);
            }
            return;
        } else {
            b->index++;
            if (b->carry_len == 0) {
                ndjson_line(b, p, seg);
            } else if (carry_append(b, p, seg, 1) != 0) {
                b->carry_len = 0;
                reject_too_large(b, b->index);
            } else {
                ndjson_line(b, b->carry, b->carry_len);
                b->carry_len = 0;
            }
        }
        p += seg + 1;
        n -= seg + 1;
    }
}

/* ---- JSON array ---- */

/* The end of an array element; p/n is its part in the current chunk. Its size runs from its first
 * byte to the delimiter, blanks before the delimiter included. */
static void array_elem_end(ing_body_t *b, const char *p, size_t n)
{
    if (b->flags & F_SKIP) {
        b->flags &= ~F_SKIP;
        return;
    }
    if (b->carry_len > 0) {
        if (carry_append(b, p, n, 0) != 0) {
            b->carry_len = 0;
            reject_too_large(b, b->index);
            return;
        }
        p = b->carry;
        n = b->carry_len;
    } else if (n > b->max_event) {
        reject_too_large(b, b->index);
        return;
    }
    while (n > 0 && is_ws(p[n - 1])) {
        n--;
    }
    b->ops->on_event(b->ctx, b->index, p, n);
    b->carry_len = 0;
}

static void array_feed(ing_body_t *b, const char *p, size_t n)
{
    const size_t none = (size_t)-1;
    size_t start = none;
    int st = b->state;
    if (st >= A_IN_ELEM && st <= A_IN_ESC && !(b->flags & F_SKIP)) {
        start = 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        switch (st) {
        case A_VALUE_WAIT:
            if (is_ws(c)) {
                continue;
            }
            if (c == ']' || c == ',') {
                if (c == ',' || (b->flags & F_AFTER_COMMA)) {
                    b->index++;
                    reject(b, b->index, ING_REJECT_PARSE, "empty array element");
                }
                if (c == ']') {
                    st = A_AFTER;
                } else {
                    b->flags |= F_AFTER_COMMA;
                }
                continue;
            }
            st = A_IN_ELEM;
            b->depth = 0;
            b->index++;
            b->carry_len = 0;
            b->flags &= ~F_SKIP;
            start = i;
            if (b->ops->value_end != NULL) {
                /* The judge's seam: a strategy that validates while it finds the value's end
                 * reads the element once; the walker then only looks for the delimiter. */
                size_t k = b->ops->value_end(b->ctx, p + i, n - i);
                if (k > 0 && k <= n - i) {
                    i += k - 1;
                    break;
                }
            }
            /* c is the element's first byte */
            /* fall through */
        case A_IN_ELEM:
            if (c == '"') {
                st = A_IN_STR;
            } else if (c == '{' || c == '[') {
                b->depth++;
            } else if ((c == '}' || c == ']') && b->depth > 0) {
                b->depth--;
            } else if ((c == ']' || c == ',') && b->depth == 0) {
                array_elem_end(b, start != none ? p + start : p, start != none ? i - start : 0);
                start = none;
                if (c == ']') {
                    st = A_AFTER;
                } else {
                    st = A_VALUE_WAIT;
                    b->flags |= F_AFTER_COMMA;
                }
            }
            break;
        case A_IN_STR: {
            /* Jump to the next quote or backslash: most of an event is inside strings, and two
             * memchr calls cost ~30% fewer instructions per event than a byte loop. */
            const char *q = memchr(p + i, '"', n - i);
            size_t span = q != NULL ? (size_t)(q - (p + i)) : n - i;
            const char *bs = memchr(p + i, '\\', span);
            if (bs != NULL) {
                i = (size_t)(bs - p);
                st = A_IN_ESC;
            } else if (q != NULL) {
                i = (size_t)(q - p);
                st = A_IN_ELEM;
            } else {
                i = n - 1;
            }
            break;
        }
        case A_IN_ESC:
            st = A_IN_STR;
            break;
        case A_AFTER:
            if (is_ws(c)) {
                continue;
            }
            b->index++;
            reject(b, b->index, ING_REJECT_PARSE, "data after the array");
            st = A_JUNK;
            break;
        default: /* A_JUNK */
            b->state = st;
            return;
        }
    }
    b->state = st;
    if (start != none && carry_append(b, p + start, n - start, 0) != 0) {
        skip_event(b, b->index);
    }
}

/* ---- entry points ---- */

int ing_body_feed(ing_body_t *b, const char *p, size_t n)
{
    if (b->kind == K_DETECT) {
        while (n > 0 && is_ws(*p)) {
            p++;
            n--;
        }
        if (n == 0) {
            return 0;
        }
        if (*p == '[') {
            b->kind = K_ARRAY;
            b->state = A_VALUE_WAIT;
            p++;
            n--;
        } else {
            b->kind = K_OBJECT;
            b->index = 1;
        }
    }
    switch (b->kind) {
    case K_NDJSON:
        ndjson_feed(b, p, n);
        break;
    case K_ARRAY:
        array_feed(b, p, n);
        break;
    case K_OBJECT:
        if (!(b->flags & F_SKIP) && carry_append(b, p, n, 0) != 0) {
            skip_event(b, 1);
        }
        break;
    default: /* K_RAW */
        if (b->flags & F_RAW_OVER) {
            return -EMSGSIZE;
        }
        if (carry_append(b, p, n, 0) != 0) {
            b->flags |= F_RAW_OVER;
            b->carry_len = 0;
            return -EMSGSIZE;
        }
        break;
    }
    return 0;
}

void ing_body_end(ing_body_t *b, int complete)
{
    int skipping = (b->flags & F_SKIP) != 0;
    switch (b->kind) {
    case K_NDJSON:
        if (!skipping && b->carry_len > 0) {
            if (complete) {
                b->index++;
                ndjson_line(b, b->carry, b->carry_len);
            } else {
                switch (ing_line_unfinished(b->carry, b->carry_len, b->max_event)) {
                case ING_LINE_EVENT:
                    reject(b, b->index + 1, ING_REJECT_TRUNCATED, "body ended inside a line");
                    break;
                case ING_LINE_TOO_LARGE: /* not carried: reported when it passed the limit */
                default:                 /* blank */
                    break;
                }
            }
        }
        break;
    case K_ARRAY:
        if (b->state >= A_IN_ELEM && b->state <= A_IN_ESC) {
            if (!skipping) {
                reject(b, b->index, ING_REJECT_TRUNCATED, "body ended inside an element");
            }
        } else if (b->state == A_VALUE_WAIT) {
            /* "[" or "[...," with nothing after: the closing ']' never came. */
            reject(b, b->index + 1, ING_REJECT_TRUNCATED, "body ended before the array's ']'");
        }
        break;
    case K_OBJECT:
        if (!skipping && b->carry_len > 0) {
            if (complete) {
                b->ops->on_event(b->ctx, 1, b->carry, b->carry_len);
            } else {
                reject(b, 1, ING_REJECT_TRUNCATED, "body ended inside the object");
            }
        }
        break;
    default:
        break;
    }
    b->carry_len = 0;
    b->flags &= ~F_SKIP;
}

const char *ing_body_raw(const ing_body_t *b, size_t *len)
{
    *len = b->carry_len;
    return b->carry_len > 0 ? b->carry : NULL;
}

void ing_body_reset(ing_body_t *b)
{
    b->carry_len = 0;
    b->flags = 0;
    if (b->carry_cap > ING_BODY_KEEP_MAX) {
        b->free_fn(b->carry);
        b->carry = NULL;
        b->carry_cap = 0;
    }
}

size_t ing_body_held(const ing_body_t *b)
{
    return b->carry_cap;
}

void ing_body_free(ing_body_t *b)
{
    if (b->free_fn != NULL) {
        b->free_fn(b->carry);
    }
    b->carry = NULL;
    b->carry_len = 0;
    b->carry_cap = 0;
}
