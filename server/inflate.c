/* inflate.c - streaming gzip body decoding with zlib, bounded by size and ratio. */
#include "server/inflate.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>

#include "mem/mem.h"

/* Each allocation carries its size in front, so frees can be counted in held. */
#define HDR 16

struct srv_inflate {
    z_stream zs;
    srv_inflate_limits_t lim;
    size_t held;        /* requested bytes held from the allocator, the struct included */
    uint64_t in_total;  /* compressed bytes consumed in this body */
    uint64_t out_total; /* decompressed bytes handed out in this body */
    uint64_t members;   /* members completed in this body */
    int err;            /* sticky error of this body, 0 while fine */
    int in_member;      /* bytes of a member went in and its end has not been seen */
    int member_done;    /* the last member ended: the next byte starts a new one */
};

static void *default_alloc(void *opaque, size_t size)
{
    (void)opaque;
    return mem_malloc(size);
}

static void default_free(void *opaque, void *ptr)
{
    (void)opaque;
    mem_free(ptr);
}

static void *raw_alloc(srv_inflate_limits_t *lim, size_t *held, size_t size)
{
    if (size > SIZE_MAX - HDR) {
        return NULL;
    }
    unsigned char *p = lim->alloc_fn(lim->opaque, size + HDR);
    if (p == NULL) {
        return NULL;
    }
    memcpy(p, &size, sizeof(size));
    *held += size;
    return p + HDR;
}

static void raw_free(srv_inflate_limits_t *lim, size_t *held, void *ptr)
{
    if (ptr == NULL) {
        return;
    }
    unsigned char *p = (unsigned char *)ptr - HDR;
    size_t size;
    memcpy(&size, p, sizeof(size));
    *held -= size;
    lim->free_fn(lim->opaque, p);
}

static voidpf on_zalloc(voidpf opaque, uInt items, uInt size)
{
    srv_inflate_t *z = opaque;
    if (size != 0 && items > SIZE_MAX / size) {
        return Z_NULL;
    }
    return raw_alloc(&z->lim, &z->held, (size_t)items * size);
}

static void on_zfree(voidpf opaque, voidpf address)
{
    srv_inflate_t *z = opaque;
    raw_free(&z->lim, &z->held, address);
}

int srv_inflate_create(const srv_inflate_limits_t *lim, srv_inflate_t **out)
{
    if (lim == NULL || out == NULL || (lim->alloc_fn == NULL) != (lim->free_fn == NULL)) {
        return -EINVAL;
    }
    srv_inflate_limits_t l = *lim;
    if (l.alloc_fn == NULL) {
        l.alloc_fn = default_alloc;
        l.free_fn = default_free;
        l.opaque = NULL;
    }
    size_t held = 0;
    srv_inflate_t *z = raw_alloc(&l, &held, sizeof(*z));
    if (z == NULL) {
        return -ENOMEM;
    }
    memset(z, 0, sizeof(*z));
    z->lim = l;
    z->held = held;
    z->zs.zalloc = on_zalloc;
    z->zs.zfree = on_zfree;
    z->zs.opaque = z;
    /* 15 + 16: a 32 KiB window (what any gzip writer may use) and the gzip wrapper only. */
    int ret = inflateInit2(&z->zs, 15 + 16);
    if (ret != Z_OK) {
        raw_free(&l, &held, z);
        return ret == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
    }
    *out = z;
    return 0;
}

void srv_inflate_destroy(srv_inflate_t *z)
{
    if (z == NULL) {
        return;
    }
    inflateEnd(&z->zs);
    srv_inflate_limits_t l = z->lim;
    size_t held = z->held;
    raw_free(&l, &held, z);
}

void srv_inflate_reset(srv_inflate_t *z)
{
    inflateReset(&z->zs);
    z->in_total = 0;
    z->out_total = 0;
    z->members = 0;
    z->err = 0;
    z->in_member = 0;
    z->member_done = 0;
}

static int fail(srv_inflate_t *z, int err)
{
    z->err = err;
    return err;
}

/* Hands n decoded bytes to the callback after the limits allow them. */
static int deliver(srv_inflate_t *z, const char *p, size_t n, srv_inflate_out_cb cb, void *ctx)
{
    const srv_inflate_limits_t *l = &z->lim;
    if (l->max_out != 0 && n > l->max_out - z->out_total) {
        size_t room = (size_t)(l->max_out - z->out_total);
        if (room > 0) {
            z->out_total += room;
            int rc = cb(ctx, p, room);
            if (rc != 0) {
                return rc;
            }
        }
        return SRV_INFLATE_ETOOBIG;
    }
    uint64_t total = z->out_total + n;
    /* total > max_ratio * in_total, without overflow (total >= 1 here). */
    if (l->max_ratio != 0 && total > l->ratio_grace && (total - 1) / l->max_ratio >= z->in_total) {
        return SRV_INFLATE_ERATIO;
    }
    z->out_total = total;
    return cb(ctx, p, n);
}

int srv_inflate_feed(srv_inflate_t *z, const void *in, size_t len, char *win, size_t winlen,
                     srv_inflate_out_cb out_cb, void *ctx)
{
    if (z->err != 0) {
        return z->err;
    }
    if (winlen == 0 || win == NULL || out_cb == NULL || (in == NULL && len > 0)) {
        return -EINVAL;
    }
    const unsigned char *next = in;
    size_t left = len;
    int more_out = 0; /* the last call filled the window: zlib may hold more output */
    for (;;) {
        if (left == 0 && !more_out) {
            return 0;
        }
        if (z->member_done) {
            if (left == 0) {
                return 0;
            }
            inflateReset(&z->zs);
            z->member_done = 0;
        }
        if (left > 0 && !z->in_member) {
            /* A member starts. zlib needs two bytes to refuse a bad magic; refuse on the first,
             * so a stray byte after a member is corrupt however the body is split. */
            if (next[0] != 0x1f) {
                return fail(z, SRV_INFLATE_ECORRUPT);
            }
            z->in_member = 1;
        }
        /* zlib counts in uInt: feed at most 1 GiB per call. */
        uInt chunk = left > (1u << 30) ? (1u << 30) : (uInt)left;
        uInt wl = winlen > (1u << 30) ? (1u << 30) : (uInt)winlen;
        z->zs.next_in = (Bytef *)(uintptr_t)next;
        z->zs.avail_in = chunk;
        z->zs.next_out = (Bytef *)win;
        z->zs.avail_out = wl;
        int ret = inflate(&z->zs, Z_NO_FLUSH);
        size_t used = chunk - z->zs.avail_in;
        size_t produced = wl - z->zs.avail_out;
        next += used;
        left -= used;
        z->in_total += used;
        more_out = z->zs.avail_out == 0;
        if (produced > 0) {
            int rc = deliver(z, win, produced, out_cb, ctx);
            if (rc != 0) {
                return fail(z, rc);
            }
        }
        switch (ret) {
        case Z_OK:
            break;
        case Z_STREAM_END:
            z->members++;
            z->in_member = 0;
            z->member_done = 1;
            more_out = 0;
            break;
        case Z_BUF_ERROR:
            /* No progress possible: all input used and nothing more to write. */
            if (left > 0 && chunk == z->zs.avail_in) {
                return fail(z, SRV_INFLATE_ECORRUPT);
            }
            more_out = 0;
            break;
        case Z_MEM_ERROR:
            return fail(z, -ENOMEM);
        default: /* Z_DATA_ERROR, Z_NEED_DICT (never in gzip), Z_STREAM_ERROR */
            return fail(z, SRV_INFLATE_ECORRUPT);
        }
    }
}

int srv_inflate_finish(srv_inflate_t *z)
{
    if (z->err != 0) {
        return z->err;
    }
    if (z->in_member || z->members == 0) {
        return fail(z, SRV_INFLATE_ETRUNCATED);
    }
    return 0;
}

void srv_inflate_totals(const srv_inflate_t *z, uint64_t *in, uint64_t *out, uint64_t *members)
{
    if (in != NULL) {
        *in = z->in_total;
    }
    if (out != NULL) {
        *out = z->out_total;
    }
    if (members != NULL) {
        *members = z->members;
    }
}

size_t srv_inflate_held_bytes(const srv_inflate_t *z)
{
    return z->held;
}

const char *srv_inflate_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case SRV_INFLATE_ETOOBIG:
        return "gzip body decompresses past the body size limit";
    case SRV_INFLATE_ERATIO:
        return "gzip body decompresses past the ratio limit";
    case SRV_INFLATE_ECORRUPT:
        return "gzip body is corrupt";
    case SRV_INFLATE_ETRUNCATED:
        return "gzip body ends inside a member";
    case -ENOMEM:
        return "out of memory";
    case -EINVAL:
        return "invalid argument";
    }
    return "stopped by the consumer";
}

int srv_inflate_http_status(int err)
{
    switch (err) {
    case 0:
        return 200;
    case SRV_INFLATE_ETOOBIG:
    case SRV_INFLATE_ERATIO:
        return 413;
    case SRV_INFLATE_ECORRUPT:
    case SRV_INFLATE_ETRUNCATED:
        return 400;
    case -ENOMEM:
        return 503;
    }
    return 500;
}
