/* frame.c - NDJSON framing over pooled blocks (see frame.h for the contract). */
#include "ingest/frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void ing_frame_stock_init(ing_frame_stock_t *st, void (*free_fn)(void *))
{
    memset(st, 0, sizeof(*st));
    st->free_fn = free_fn != NULL ? free_fn : free;
}

void ing_frame_stock_destroy(ing_frame_stock_t *st)
{
    while (st->n > 0) {
        st->n--;
        st->free_fn(st->buf[st->n]);
    }
}

void ing_frame_init(ing_frame_t *f, pool_cache_t *cache, size_t max_event, ing_frame_stock_t *stock,
                    void *(*realloc_fn)(void *, size_t), void (*free_fn)(void *))
{
    memset(f, 0, sizeof(*f));
    f->cache = cache;
    f->max_event = max_event;
    f->stock = stock;
    f->realloc_fn = realloc_fn != NULL ? realloc_fn : realloc;
    f->free_fn = free_fn != NULL ? free_fn : free;
}

int ing_frame_buf(ing_frame_t *f, char **base, size_t *len)
{
    if (f->block == NULL) {
        f->block = pool_get(f->cache);
        if (f->block == NULL) {
            *base = NULL;
            *len = 0;
            return -ENOMEM;
        }
        f->len = 0;
    }
    *base = f->block + f->len;
    *len = POOL_BLOCK_SIZE - f->len;
    return 0;
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') {
            return 0;
        }
    }
    return 1;
}

ing_line_kind_t ing_line_complete(const char *line, size_t *len, size_t max_event)
{
    size_t n = *len;

    if (n > 0 && line[n - 1] == '\r') {
        n--;
    }
    *len = n;
    if (n > max_event) {
        return ING_LINE_TOO_LARGE; /* before blankness: see the rule in frame.h */
    }
    return is_blank(line, n) ? ING_LINE_BLANK : ING_LINE_EVENT;
}

ing_line_kind_t ing_line_unfinished(const char *line, size_t len, size_t max_event)
{
    if (len > max_event + 1) {
        return ING_LINE_TOO_LARGE;
    }
    return is_blank(line, len) ? ING_LINE_BLANK : ING_LINE_EVENT;
}

/* A complete line (without "\n"), by the line rule. */
static void emit(ing_frame_t *f, const char *line, size_t n, const ing_frame_ops_t *ops, void *ctx)
{
    switch (ing_line_complete(line, &n, f->max_event)) {
    case ING_LINE_TOO_LARGE:
        ops->on_reject(ctx, ING_REJECT_TOO_LARGE);
        break;
    case ING_LINE_EVENT:
        ops->on_line(ctx, line, n);
        break;
    default: /* blank */
        break;
    }
}

/* Gives the assembly buffer back to the stock when it fits there, else to the allocator. */
static void drop_big(ing_frame_t *f)
{
    ing_frame_stock_t *st = f->stock;
    if (f->big != NULL && st != NULL && st->n < ING_FRAME_STOCK &&
        f->big_cap <= ING_FRAME_STOCK_MAX_BYTES) {
        st->buf[st->n] = f->big;
        st->cap[st->n] = f->big_cap;
        st->n++;
    } else {
        f->free_fn(f->big);
    }
    f->big = NULL;
    f->big_len = 0;
    f->big_cap = 0;
}

/* Appends to the assembly buffer. The limit is max_event + 1 so that a "\r" before the newline
 * still fits. Over it: too_large is reported, the buffer dropped and the rest skipped. */
static void big_append(ing_frame_t *f, const char *p, size_t n, const ing_frame_ops_t *ops,
                       void *ctx)
{
    size_t limit = f->max_event + 1;

    if (f->big_len + n > limit) {
        drop_big(f);
        f->skipping = 1;
        ops->on_reject(ctx, ING_REJECT_TOO_LARGE);
        return;
    }
    if (f->big == NULL && f->stock != NULL && f->stock->n > 0) {
        f->stock->n--;
        f->big = f->stock->buf[f->stock->n];
        f->big_cap = f->stock->cap[f->stock->n];
    }
    if (f->big_len + n > f->big_cap) {
        size_t held = f->big_cap + (f->big_cap == 0 ? POOL_BLOCK_SIZE : 0);
        size_t cap = f->big_cap != 0 ? f->big_cap * 2 : 2 * POOL_BLOCK_SIZE;
        if (cap < f->big_len + n) {
            cap = f->big_len + n;
        }
        if (cap > limit) {
            cap = limit;
        }
        if (ops->may_grow != NULL && !ops->may_grow(ctx, held, cap)) {
            drop_big(f);
            f->skipping = 1;
            ops->on_reject(ctx, ING_REJECT_OVER_BUDGET);
            return;
        }
        char *nb = f->realloc_fn(f->big, cap);
        f->big_allocs++;
        if (nb == NULL) {
            /* No memory for this line: it cannot be judged, so it is dropped as too large. */
            drop_big(f);
            f->skipping = 1;
            ops->on_reject(ctx, ING_REJECT_TOO_LARGE);
            return;
        }
        f->big = nb;
        f->big_cap = cap;
    }
    memcpy(f->big + f->big_len, p, n);
    f->big_len += n;
}

/* Carries a partial line of rest bytes to the front of a fresh block, so that every read lands
 * in a block of its own: from the cache when pooled, from malloc(4096) when naive (the pool's
 * mode is the only difference between the two). Without a fresh block it moves in place. */
static void carry(ing_frame_t *f, const char *line, size_t rest)
{
    f->len = rest;
    if (rest == 0) {
        return;
    }
    char *nb = pool_get(f->cache);
    if (nb == NULL) {
        memmove(f->block, line, rest);
        return;
    }
    memcpy(nb, line, rest);
    pool_put(f->cache, f->block);
    f->block = nb;
}

static void put_block_if_empty(ing_frame_t *f)
{
    if (f->block != NULL && f->len == 0) {
        pool_put(f->cache, f->block);
        f->block = NULL;
    }
}

void ing_frame_commit(ing_frame_t *f, size_t n, const ing_frame_ops_t *ops, void *ctx)
{
    if (f->block == NULL) {
        return;
    }
    char *line = f->block;       /* start of the current line (a carried partial is at front) */
    char *p = f->block + f->len; /* the partial holds no newline: scan only the new bytes */
    char *end = p + n;
    char *nl;

    while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        f->ends++;
        if (f->skipping) {
            f->skipping = 0;
        } else if (f->big != NULL) {
            big_append(f, line, (size_t)(nl - line), ops, ctx);
            if (f->big != NULL) {
                emit(f, f->big, f->big_len, ops, ctx);
                drop_big(f);
            }
            f->skipping = 0;
        } else {
            emit(f, line, (size_t)(nl - line), ops, ctx);
        }
        p = line = nl + 1;
    }

    size_t rest = (size_t)(end - line);
    if (f->skipping) {
        f->len = 0;
    } else if (f->big != NULL) {
        big_append(f, line, rest, ops, ctx);
        f->len = 0;
    } else if (rest == POOL_BLOCK_SIZE) {
        /* A line that fills the whole block: assemble it on the heap, or skip it at once. */
        f->oversize++;
        f->len = 0;
        big_append(f, line, rest, ops, ctx);
    } else {
        carry(f, line, rest);
    }
    put_block_if_empty(f);
}

int ing_frame_feed(ing_frame_t *f, const char *data, size_t n, const ing_frame_ops_t *ops,
                   void *ctx)
{
    while (n > 0) {
        char *base;
        size_t room;
        if (ing_frame_buf(f, &base, &room) != 0) {
            return -ENOMEM;
        }
        size_t take = n < room ? n : room;
        memcpy(base, data, take);
        ing_frame_commit(f, take, ops, ctx);
        data += take;
        n -= take;
    }
    return 0;
}

int ing_frame_pending(const ing_frame_t *f)
{
    return f->skipping || f->big != NULL || (f->block != NULL && f->len > 0);
}

size_t ing_frame_held(const ing_frame_t *f)
{
    size_t held = f->big_cap;
    if (f->block != NULL && f->len > 0) {
        held += POOL_BLOCK_SIZE;
    }
    return held;
}

int ing_frame_drop(ing_frame_t *f)
{
    if (f->skipping || !ing_frame_pending(f)) {
        return 0;
    }
    ing_frame_release(f);
    f->skipping = 1;
    return 1;
}

void ing_frame_finish(ing_frame_t *f, const ing_frame_ops_t *ops, void *ctx)
{
    if (!f->skipping) {
        const char *line = f->big != NULL ? f->big : f->block;
        size_t len = f->big != NULL ? f->big_len : f->len;
        if (line != NULL && len > 0) {
            switch (ing_line_unfinished(line, len, f->max_event)) {
            case ING_LINE_TOO_LARGE:
                ops->on_reject(ctx, ING_REJECT_TOO_LARGE);
                break;
            case ING_LINE_EVENT:
                ops->on_reject(ctx, ING_REJECT_TRUNCATED);
                break;
            default: /* blank */
                break;
            }
        }
    }
    ing_frame_release(f);
}

void ing_frame_release(ing_frame_t *f)
{
    if (f->big != NULL) {
        drop_big(f);
    }
    if (f->block != NULL) {
        pool_put(f->cache, f->block);
        f->block = NULL;
    }
    f->len = 0;
    f->skipping = 0;
}
