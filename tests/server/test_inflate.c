/* test_inflate.c - unit tests for streaming gzip bodies (server/inflate.h): round trips through
 * zlib's deflate, byte-at-a-time feeding, concatenated members, bombs, corrupt and truncated
 * bodies, errors that stick, and the memory one stream holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "server/inflate.h"

/* Collected output. */
typedef struct {
    char *p;
    size_t n, cap;
    int calls;
    int fail_at_call; /* 0: never; else return -EPIPE on that call */
} sink_t;

static int on_out(void *ctx, const char *data, size_t len)
{
    sink_t *s = ctx;
    assert_true(len > 0);
    s->calls++;
    if (s->fail_at_call != 0 && s->calls == s->fail_at_call) {
        return -EPIPE;
    }
    if (s->n + len > s->cap) {
        s->cap = (s->n + len) * 2;
        s->p = realloc(s->p, s->cap);
    }
    memcpy(s->p + s->n, data, len);
    s->n += len;
    return 0;
}

static void sink_free(sink_t *s)
{
    free(s->p);
    memset(s, 0, sizeof(*s));
}

/* A gzip member of data (new, malloc'd) through zlib's deflate. */
static unsigned char *gz(const void *data, size_t len, int level, size_t *outlen)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, (uLong)len) + 32;
    unsigned char *out = malloc(cap);
    zs.next_in = (Bytef *)(uintptr_t)data;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *outlen = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

static void fill_random(unsigned char *p, size_t n, uint64_t seed, int text_like)
{
    uint64_t x = seed | 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] =
            text_like ? (unsigned char)("{\"type\":\"abc\",\"n\":12}\n"[x % 22]) : (unsigned char)x;
    }
}

static srv_inflate_limits_t nolimits(void)
{
    srv_inflate_limits_t l;
    memset(&l, 0, sizeof(l));
    return l;
}

/* Feeds body in pieces of `step` bytes (0: whole) through a window of winlen; returns the first
 * error of feed or finish. */
static int run(srv_inflate_t *z, const unsigned char *body, size_t len, size_t step, size_t winlen,
               sink_t *s)
{
    char *win = malloc(winlen);
    int rc = 0;
    if (step == 0) {
        step = len > 0 ? len : 1;
    }
    for (size_t off = 0; off < len && rc == 0; off += step) {
        size_t n = len - off < step ? len - off : step;
        rc = srv_inflate_feed(z, body + off, n, win, winlen, on_out, s);
    }
    if (rc == 0) {
        rc = srv_inflate_finish(z);
    }
    free(win);
    return rc;
}

static srv_inflate_t *make(const srv_inflate_limits_t *l)
{
    srv_inflate_t *z = NULL;
    assert_int_equal(srv_inflate_create(l, &z), 0);
    return z;
}

static void test_inflate_round_trips_random_and_text_data(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 100, 4095, 4096, 4097, 100000, 1 << 20};
    static const int levels[] = {0, 1, 6, 9};
    srv_inflate_limits_t l = nolimits();
    srv_inflate_t *z = make(&l);
    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        for (size_t li = 0; li < sizeof(levels) / sizeof(levels[0]); li++) {
            for (int text = 0; text < 2; text++) {
                size_t n = sizes[si];
                unsigned char *data = malloc(n + 1);
                fill_random(data, n, n * 31 + li, text);
                size_t gl;
                unsigned char *body = gz(data, n, levels[li], &gl);
                sink_t s = {0};
                srv_inflate_reset(z);
                assert_int_equal(run(z, body, gl, 0, 4096, &s), 0);
                assert_int_equal(s.n, n);
                assert_true(n == 0 || memcmp(s.p, data, n) == 0);
                uint64_t in, out, members;
                srv_inflate_totals(z, &in, &out, &members);
                assert_int_equal(in, gl);
                assert_int_equal(out, n);
                assert_int_equal(members, 1);
                sink_free(&s);
                free(body);
                free(data);
            }
        }
    }
    srv_inflate_destroy(z);
}

static void test_inflate_byte_at_a_time_gives_the_same_bytes(void **state)
{
    (void)state;
    enum { N = 50000 };
    unsigned char *data = malloc(N);
    fill_random(data, N, 7, 1);
    size_t gl;
    unsigned char *body = gz(data, N, 6, &gl);
    static const size_t steps[] = {1, 2, 3, 7, 4096};
    static const size_t wins[] = {1, 7, 4096, 65536};
    srv_inflate_limits_t l = nolimits();
    srv_inflate_t *z = make(&l);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        for (size_t w = 0; w < sizeof(wins) / sizeof(wins[0]); w++) {
            sink_t s = {0};
            srv_inflate_reset(z);
            assert_int_equal(run(z, body, gl, steps[i], wins[w], &s), 0);
            assert_int_equal(s.n, N);
            assert_memory_equal(s.p, data, N);
            sink_free(&s);
        }
    }
    /* Empty feeds change nothing. */
    srv_inflate_reset(z);
    char win[64];
    sink_t s = {0};
    assert_int_equal(srv_inflate_feed(z, NULL, 0, win, sizeof(win), on_out, &s), 0);
    assert_int_equal(s.calls, 0);
    srv_inflate_destroy(z);
    free(body);
    free(data);
}

static void test_inflate_concatenated_members_are_one_body_at_every_split(void **state)
{
    (void)state;
    const char *parts[] = {"{\"type\":\"a\"}\n", "", "{\"type\":\"b\"}\n{\"type\":\"c\"}"};
    unsigned char body[512];
    size_t len = 0;
    for (int i = 0; i < 3; i++) {
        size_t gl;
        unsigned char *m = gz(parts[i], strlen(parts[i]), 6, &gl);
        memcpy(body + len, m, gl);
        len += gl;
        free(m);
    }
    const char *want = "{\"type\":\"a\"}\n{\"type\":\"b\"}\n{\"type\":\"c\"}";
    srv_inflate_limits_t l = nolimits();
    srv_inflate_t *z = make(&l);
    char win[5];
    for (size_t cut = 0; cut <= len; cut++) {
        sink_t s = {0};
        srv_inflate_reset(z);
        assert_int_equal(srv_inflate_feed(z, body, cut, win, sizeof(win), on_out, &s), 0);
        assert_int_equal(srv_inflate_feed(z, body + cut, len - cut, win, sizeof(win), on_out, &s),
                         0);
        assert_int_equal(srv_inflate_finish(z), 0);
        assert_int_equal(s.n, strlen(want));
        assert_memory_equal(s.p, want, s.n);
        uint64_t members;
        srv_inflate_totals(z, NULL, NULL, &members);
        assert_int_equal(members, 3);
        sink_free(&s);
    }
    srv_inflate_destroy(z);
}

static void test_inflate_trailing_garbage_is_corrupt_after_the_good_bytes(void **state)
{
    (void)state;
    const char *text = "{\"type\":\"a\"}\n";
    size_t gl;
    unsigned char *m = gz(text, strlen(text), 6, &gl);
    unsigned char body[256];
    srv_inflate_limits_t l = nolimits();
    srv_inflate_t *z = make(&l);
    static const char *tails[] = {"x", "\0\0\0\0", "\x1f\x8c", "GET / HTTP/1.1\r\n"};
    static const size_t tlen[] = {1, 4, 2, 16};
    for (int i = 0; i < 4; i++) {
        memcpy(body, m, gl);
        memcpy(body + gl, tails[i], tlen[i]);
        sink_t s = {0};
        srv_inflate_reset(z);
        assert_int_equal(run(z, body, gl + tlen[i], 0, 4096, &s), SRV_INFLATE_ECORRUPT);
        assert_int_equal(s.n, strlen(text)); /* the member's bytes came out first */
        sink_free(&s);
    }
    /* The start of another member's magic is not garbage yet: the body is truncated. */
    memcpy(body, m, gl);
    body[gl] = 0x1f;
    sink_t s = {0};
    srv_inflate_reset(z);
    assert_int_equal(run(z, body, gl + 1, 0, 4096, &s), SRV_INFLATE_ETRUNCATED);
    sink_free(&s);
    srv_inflate_destroy(z);
    free(m);
}

static void test_inflate_corrupt_bodies_are_refused(void **state)
{
    (void)state;
    enum { N = 20000 };
    unsigned char *data = malloc(N);
    fill_random(data, N, 3, 1);
    size_t gl;
    unsigned char *good = gz(data, N, 6, &gl);
    unsigned char *body = malloc(gl);
    srv_inflate_limits_t l = nolimits();
    srv_inflate_t *z = make(&l);

    /* Not gzip at all: zlib's own wrapper, plain text, a bad method byte. */
    static const char *notgz[] = {"\x78\x9c\x03\x00\x00\x00\x00\x01", "{\"type\":\"a\"}\n",
                                  "\x1f\x8b\x07\x00\x00\x00\x00\x00\x00\x03"};
    static const size_t notlen[] = {8, 13, 10};
    for (int i = 0; i < 3; i++) {
        sink_t s = {0};
        srv_inflate_reset(z);
        assert_int_equal(run(z, (const unsigned char *)notgz[i], notlen[i], 1, 4096, &s),
                         SRV_INFLATE_ECORRUPT);
        assert_int_equal(s.n, 0);
        sink_free(&s);
    }
    /* The trailer: CRC-32 and then ISIZE, each off by one bit. */
    static const size_t trailer[] = {8, 4};
    for (int i = 0; i < 2; i++) {
        memcpy(body, good, gl);
        body[gl - trailer[i]] ^= 1;
        sink_t s = {0};
        srv_inflate_reset(z);
        assert_int_equal(run(z, body, gl, 0, 4096, &s), SRV_INFLATE_ECORRUPT);
        assert_int_equal(s.n, N); /* everything decoded before the check came out */
        sink_free(&s);
    }
    /* Damage in the deflate data: caught by the decoder or, at the latest, by the CRC. */
    for (size_t pos = 10; pos < gl - 8; pos += 997) {
        memcpy(body, good, gl);
        body[pos] ^= 0x5a;
        sink_t s = {0};
        srv_inflate_reset(z);
        int rc = run(z, body, gl, 3, 4096, &s);
        /* A damaged block header may also announce more data than the body holds. */
        assert_true(rc == SRV_INFLATE_ECORRUPT || rc == SRV_INFLATE_ETRUNCATED);
        sink_free(&s);
    }
    srv_inflate_destroy(z);
    free(body);
    free(good);
    free(data);
}

static void test_inflate_truncated_bodies_are_refused_at_finish(void **state)
{
    (void)state;
    const char *text = "{\"type\":\"a\",\"v\":[1,2,3]}\n{\"type\":\"b\"}\n";
    size_t gl;
    unsigned char *m = gz(text, strlen(text), 9, &gl);
    srv_inflate_limits_t l = nolimits();
    srv_inflate_t *z = make(&l);
    for (size_t cut = 0; cut < gl; cut++) {
        sink_t s = {0};
        srv_inflate_reset(z);
        assert_int_equal(run(z, m, cut, 0, 4096, &s), SRV_INFLATE_ETRUNCATED);
        assert_true(s.n <= strlen(text));
        sink_free(&s);
    }
    /* An empty body holds no member. */
    srv_inflate_reset(z);
    assert_int_equal(srv_inflate_finish(z), SRV_INFLATE_ETRUNCATED);
    srv_inflate_destroy(z);
    free(m);
}

static void test_inflate_bomb_is_stopped_by_ratio_or_size(void **state)
{
    (void)state;
    enum { N = 10 << 20 };
    unsigned char *zeros = calloc(1, N);
    size_t gl;
    unsigned char *bomb = gz(zeros, N, 9, &gl);
    assert_true(gl < N / 500); /* ~1000:1 */

    srv_inflate_limits_t l = nolimits();
    l.max_ratio = 100;
    l.ratio_grace = 64 * 1024;
    srv_inflate_t *z = make(&l);
    sink_t s = {0};
    assert_int_equal(run(z, bomb, gl, 512, 4096, &s), SRV_INFLATE_ERATIO);
    uint64_t in, out;
    srv_inflate_totals(z, &in, &out, NULL);
    assert_int_equal(out, s.n);
    assert_true(out <= 100 * in || out <= 64 * 1024); /* nothing past the ratio came out */
    assert_true(s.n < 1 << 20);
    /* The error sticks. */
    char win[16];
    assert_int_equal(srv_inflate_feed(z, bomb, 1, win, sizeof(win), on_out, &s),
                     SRV_INFLATE_ERATIO);
    assert_int_equal(srv_inflate_finish(z), SRV_INFLATE_ERATIO);
    sink_free(&s);
    srv_inflate_destroy(z);

    /* Size: exactly max_out bytes come out, then the error, at any split. */
    l = nolimits();
    l.max_out = 1 << 20;
    z = make(&l);
    static const size_t steps[] = {0, 1, 100, 4096};
    for (size_t i = 0; i < 4; i++) {
        srv_inflate_reset(z);
        s = (sink_t){0};
        assert_int_equal(run(z, bomb, gl, steps[i], 3000, &s), SRV_INFLATE_ETOOBIG);
        assert_int_equal(s.n, 1 << 20);
        sink_free(&s);
    }
    /* A body of exactly max_out bytes passes. */
    srv_inflate_reset(z);
    size_t gl2;
    unsigned char *exact = gz(zeros, 1 << 20, 6, &gl2);
    assert_int_equal(run(z, exact, gl2, 0, 4096, &s), 0);
    assert_int_equal(s.n, 1 << 20);
    sink_free(&s);
    /* A normal text body passes a 100:1 ratio. */
    srv_inflate_destroy(z);
    l = nolimits();
    l.max_ratio = 100;
    l.ratio_grace = 4096;
    z = make(&l);
    unsigned char *text = malloc(1 << 20);
    fill_random(text, 1 << 20, 9, 1);
    size_t gl3;
    unsigned char *tb = gz(text, 1 << 20, 6, &gl3);
    assert_int_equal(run(z, tb, gl3, 1000, 4096, &s), 0);
    assert_int_equal(s.n, 1 << 20);
    sink_free(&s);
    srv_inflate_destroy(z);
    free(tb);
    free(text);
    free(exact);
    free(bomb);
    free(zeros);
}

static void test_inflate_callback_error_stops_and_sticks_until_reset(void **state)
{
    (void)state;
    enum { N = 30000 };
    unsigned char *data = malloc(N);
    fill_random(data, N, 5, 0);
    size_t gl;
    unsigned char *body = gz(data, N, 1, &gl);
    srv_inflate_limits_t l = nolimits();
    srv_inflate_t *z = make(&l);
    sink_t s = {0};
    s.fail_at_call = 3;
    assert_int_equal(run(z, body, gl, 0, 1024, &s), -EPIPE);
    assert_int_equal(s.calls, 3);
    assert_int_equal(s.n, 2048);
    char win[16];
    assert_int_equal(srv_inflate_feed(z, body, gl, win, sizeof(win), on_out, &s), -EPIPE);
    assert_int_equal(s.calls, 3);
    sink_free(&s);
    srv_inflate_reset(z);
    assert_int_equal(run(z, body, gl, 0, 1024, &s), 0);
    assert_int_equal(s.n, N);
    assert_memory_equal(s.p, data, N);
    sink_free(&s);
    srv_inflate_destroy(z);
    free(body);
    free(data);
}

/* A counting allocator that can fail its n-th call. */
typedef struct {
    size_t live_blocks;
    size_t calls;
    size_t fail_call; /* 0: never */
} alloc_t;

static void *t_alloc(void *opaque, size_t size)
{
    alloc_t *a = opaque;
    a->calls++;
    if (a->fail_call != 0 && a->calls == a->fail_call) {
        return NULL;
    }
    a->live_blocks++;
    return malloc(size);
}

static void t_free(void *opaque, void *p)
{
    alloc_t *a = opaque;
    a->live_blocks--;
    free(p);
}

static void test_inflate_memory_is_the_state_and_the_window_from_the_given_allocator(void **state)
{
    (void)state;
    alloc_t a = {0};
    srv_inflate_limits_t l = nolimits();
    l.alloc_fn = t_alloc;
    l.free_fn = t_free;
    l.opaque = &a;
    srv_inflate_t *z = make(&l);
    size_t at_create = srv_inflate_held_bytes(z);
    assert_int_equal(a.live_blocks, 2); /* the stream and zlib's state */
    assert_true(at_create > 4096 && at_create < 12 * 1024);
    /* zlib allocates the window when a member's output spans two inflate calls. */
    unsigned char text[10000];
    fill_random(text, sizeof(text), 11, 1);
    size_t gl;
    unsigned char *m = gz(text, sizeof(text), 6, &gl);
    sink_t s = {0};
    assert_int_equal(run(z, m, gl, 0, 4096, &s), 0);
    size_t with_window = srv_inflate_held_bytes(z);
    assert_int_equal(a.live_blocks, 3); /* + the 32 KiB window */
    assert_true(with_window >= at_create + 32 * 1024);
    assert_true(with_window <= SRV_INFLATE_HELD_MAX);
    print_message("inflate stream holds %zu bytes at create, %zu with its window\n", at_create,
                  with_window);
    sink_free(&s);
    srv_inflate_reset(z); /* keeps state and window: no new allocation */
    size_t calls = a.calls;
    assert_int_equal(run(z, m, gl, 0, 4096, &s), 0);
    assert_int_equal(a.calls, calls);
    sink_free(&s);
    srv_inflate_destroy(z);
    assert_int_equal(a.live_blocks, 0);

    /* Out of memory at each allocation: create fails cleanly, or the first feed does. */
    for (size_t fail = 1; fail <= 3; fail++) {
        a = (alloc_t){0, 0, fail};
        srv_inflate_t *y = NULL;
        int rc = srv_inflate_create(&l, &y);
        if (fail <= 2) {
            assert_int_equal(rc, -ENOMEM);
            assert_null(y);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(run(y, m, gl, 0, 4096, &s), -ENOMEM);
            sink_free(&s);
            srv_inflate_destroy(y);
        }
        assert_int_equal(a.live_blocks, 0);
    }
    free(m);
    l.free_fn = NULL;
    assert_int_equal(srv_inflate_create(&l, &z), -EINVAL);
}

static void test_inflate_errors_map_to_http_statuses(void **state)
{
    (void)state;
    assert_int_equal(srv_inflate_http_status(0), 200);
    assert_int_equal(srv_inflate_http_status(SRV_INFLATE_ETOOBIG), 413);
    assert_int_equal(srv_inflate_http_status(SRV_INFLATE_ERATIO), 413);
    assert_int_equal(srv_inflate_http_status(SRV_INFLATE_ECORRUPT), 400);
    assert_int_equal(srv_inflate_http_status(SRV_INFLATE_ETRUNCATED), 400);
    assert_int_equal(srv_inflate_http_status(-ENOMEM), 503);
    assert_int_equal(srv_inflate_http_status(-EPIPE), 500);
    assert_string_equal(srv_inflate_strerror(SRV_INFLATE_ECORRUPT), "gzip body is corrupt");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inflate_round_trips_random_and_text_data),
        cmocka_unit_test(test_inflate_byte_at_a_time_gives_the_same_bytes),
        cmocka_unit_test(test_inflate_concatenated_members_are_one_body_at_every_split),
        cmocka_unit_test(test_inflate_trailing_garbage_is_corrupt_after_the_good_bytes),
        cmocka_unit_test(test_inflate_corrupt_bodies_are_refused),
        cmocka_unit_test(test_inflate_truncated_bodies_are_refused_at_finish),
        cmocka_unit_test(test_inflate_bomb_is_stopped_by_ratio_or_size),
        cmocka_unit_test(test_inflate_callback_error_stops_and_sticks_until_reset),
        cmocka_unit_test(test_inflate_memory_is_the_state_and_the_window_from_the_given_allocator),
        cmocka_unit_test(test_inflate_errors_map_to_http_statuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
