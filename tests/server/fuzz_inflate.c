/* fuzz_inflate.c - libFuzzer target for streaming gzip bodies (server/inflate.h): a body fed
 * whole and fed in pieces (points and output windows chosen by the input) must give the same
 * bytes and the same verdict; with the ratio cap on, the pieces may only stop earlier, with
 * ERATIO. Input: 4 header bytes, then the payload. Header byte 0 bit 0: the payload is plain
 * data that the target gzips (level from bits 1-4), so valid streams are common; bit 7 of byte 1
 * set: byte ((byte1 & 0x7f) << 8 | byte2) of the gzip output is damaged; else the payload is the
 * body as is. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "server/inflate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_OUT ((size_t)1 << 20)

typedef struct {
    char *buf; /* MAX_OUT bytes */
    size_t n;
} out_t;

static int on_out(void *ctx, const char *p, size_t len)
{
    out_t *o = ctx;
    if (o->n + len > MAX_OUT) {
        abort(); /* max_out is at most MAX_OUT: the stream must not pass it */
    }
    memcpy(o->buf + o->n, p, len);
    o->n += len;
    return 0;
}

static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static int decode(const srv_inflate_limits_t *lim, const uint8_t *body, size_t len, uint64_t seed,
                  out_t *o, char *win)
{
    srv_inflate_t *z = NULL;
    if (srv_inflate_create(lim, &z) != 0) {
        abort();
    }
    o->n = 0;
    int rc = 0;
    if (seed == 0) {
        rc = srv_inflate_feed(z, body, len, win, 65536, on_out, o);
    } else {
        uint64_t x = seed;
        size_t off = 0;
        while (off < len && rc == 0) {
            size_t n = 1 + next_rand(&x) % (next_rand(&x) % 4 == 0 ? 2 : 600);
            if (n > len - off) {
                n = len - off;
            }
            size_t w = 1 + next_rand(&x) % 4096;
            rc = srv_inflate_feed(z, body + off, n, win, w, on_out, o);
            off += n;
        }
    }
    if (rc == 0) {
        rc = srv_inflate_finish(z);
    }
    srv_inflate_destroy(z);
    return rc;
}

static uint8_t *gzip_of(const uint8_t *p, size_t n, int level, size_t *outlen)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        abort();
    }
    size_t cap = deflateBound(&zs, (uLong)n) + 32;
    uint8_t *out = malloc(cap);
    zs.next_in = (Bytef *)(uintptr_t)p;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
        abort();
    }
    *outlen = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char *whole_buf, *split_buf, *win;
    if (whole_buf == NULL) {
        whole_buf = malloc(MAX_OUT);
        split_buf = malloc(MAX_OUT);
        win = malloc(65536);
    }
    if (size < 4) {
        return 0;
    }
    uint8_t mode = data[0];
    const uint8_t *payload = data + 4;
    size_t plen = size - 4;
    uint8_t *owned = NULL;
    const uint8_t *body = payload;
    size_t blen = plen;
    if (mode & 1) {
        owned = gzip_of(payload, plen, (mode >> 1) % 10, &blen);
        size_t at = ((size_t)(data[1] & 0x7f) << 8 | data[2]);
        if ((data[1] & 0x80) != 0 && blen > 0) {
            owned[at % blen] ^= (uint8_t)(data[3] | 1);
        }
        body = owned;
    }
    srv_inflate_limits_t lim;
    memset(&lim, 0, sizeof(lim));
    /* max_out: small, medium, or the buffer's size. */
    static const uint64_t outs[] = {MAX_OUT, 1, 100, 4096, 65537, MAX_OUT, MAX_OUT, 12345};
    lim.max_out = outs[(mode >> 5) & 7];
    uint64_t seed = 0x9e3779b97f4a7c15ull ^ ((uint64_t)data[1] << 16 | data[2] << 8 | data[3]);

    out_t whole = {whole_buf, 0}, split = {split_buf, 0};
    int rw = decode(&lim, body, blen, 0, &whole, win);
    int rs = decode(&lim, body, blen, seed, &split, win);
    if (rw != rs || whole.n != split.n || memcmp(whole.buf, split.buf, whole.n) != 0) {
        abort();
    }
    if ((mode & 1) && (data[1] & 0x80) == 0 && lim.max_out >= plen) {
        /* An undamaged round trip gives the payload back. */
        if (rw != 0 || whole.n != plen || (plen > 0 && memcmp(whole.buf, payload, plen) != 0)) {
            abort();
        }
    }
    /* With a ratio cap, the pieces stop no later than without one, and only with ERATIO. */
    lim.max_ratio = 1 + data[3] % 50;
    lim.ratio_grace = data[2];
    int rr = decode(&lim, body, blen, seed, &split, win);
    if (split.n > whole.n || memcmp(whole.buf, split.buf, split.n) != 0) {
        abort();
    }
    if (rr != rw && rr != SRV_INFLATE_ERATIO) {
        abort();
    }
    free(owned);
    return 0;
}
