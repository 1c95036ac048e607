/* test_frame.c - unit tests for the NDJSON framer (server/frame.h), fed byte at a time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "frame_ref.h"
#include "ingest/frame.h"
#include "pool/pool.h"

#define MAX_SEEN 64

/* What the framer reported, in order: lines (copied) and rejects. */
typedef struct {
    size_t n;
    char *line[MAX_SEEN]; /* NULL for a reject */
    size_t len[MAX_SEEN];
    ing_verdict_t verdict[MAX_SEEN];
} seen_t;

static void on_line(void *ctx, const char *line, size_t len)
{
    seen_t *s = ctx;
    assert_true(s->n < MAX_SEEN);
    s->line[s->n] = malloc(len + 1);
    memcpy(s->line[s->n], line, len);
    s->line[s->n][len] = '\0';
    s->len[s->n] = len;
    s->verdict[s->n] = ING_ACCEPTED;
    s->n++;
}

static void on_reject(void *ctx, ing_verdict_t reason)
{
    seen_t *s = ctx;
    assert_true(s->n < MAX_SEEN);
    s->line[s->n] = NULL;
    s->len[s->n] = 0;
    s->verdict[s->n] = reason;
    s->n++;
}

static const ing_frame_ops_t ops = {on_line, on_reject, NULL};

static void seen_clear(seen_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->line[i]);
    }
    memset(s, 0, sizeof(*s));
}

typedef struct {
    pool_t *pool;
    pool_cache_t *cache;
    seen_t seen;
} fixture_t;

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    pool_config_t cfg;
    pool_config_init(&cfg);
    assert_int_equal(pool_create(&cfg, &fx->pool), 0);
    assert_int_equal(pool_cache_create(fx->pool, &fx->cache), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    pool_stats_t st;
    seen_clear(&fx->seen);
    pool_cache_stats(fx->cache, &st);
    assert_int_equal(st.in_use, 0); /* every block went back */
    pool_cache_destroy(fx->cache);
    pool_destroy(fx->pool);
    free(fx);
    return 0;
}

/* Feeds data in pieces of `step` bytes (0: all at once), then ends the stream. */
static void feed_steps(fixture_t *fx, size_t max, const char *data, size_t n, size_t step)
{
    ing_frame_t f;
    ing_frame_init(&f, fx->cache, max, NULL, NULL, NULL);
    if (step == 0) {
        step = n;
    }
    for (size_t off = 0; off < n; off += step) {
        size_t k = n - off < step ? n - off : step;
        assert_int_equal(ing_frame_feed(&f, data + off, k, &ops, &fx->seen), 0);
    }
    ing_frame_finish(&f, &ops, &fx->seen);
}

static char *make_event(size_t len, char fill)
{
    /* {"type":"t","p":"xxxx"} padded to exactly len bytes (len >= 20). */
    char *e = malloc(len + 1);
    const char *head = "{\"type\":\"t\",\"p\":\"";
    size_t hl = strlen(head);
    assert_true(len >= hl + 2);
    memcpy(e, head, hl);
    memset(e + hl, fill, len - hl - 2);
    memcpy(e + len - 2, "\"}", 2);
    e[len] = '\0';
    return e;
}

static void test_frame_complete_lines_come_out_whole_byte_at_a_time(void **state)
{
    fixture_t *fx = *state;
    const char *in = "{\"a\":1}\n{\"b\":22}\nx\n";
    feed_steps(fx, 1 << 20, in, strlen(in), 1);
    assert_int_equal(fx->seen.n, 3);
    assert_string_equal(fx->seen.line[0], "{\"a\":1}");
    assert_string_equal(fx->seen.line[1], "{\"b\":22}");
    assert_string_equal(fx->seen.line[2], "x");
}

static void test_frame_partial_line_needs_more(void **state)
{
    fixture_t *fx = *state;
    ing_frame_t f;
    ing_frame_init(&f, fx->cache, 1 << 20, NULL, NULL, NULL);
    assert_int_equal(ing_frame_feed(&f, "{\"a\"", 4, &ops, &fx->seen), 0);
    assert_int_equal(fx->seen.n, 0);
    assert_true(ing_frame_pending(&f));
    assert_int_equal(ing_frame_feed(&f, ":1}\n", 4, &ops, &fx->seen), 0);
    assert_int_equal(fx->seen.n, 1);
    assert_string_equal(fx->seen.line[0], "{\"a\":1}");
    assert_false(ing_frame_pending(&f));
    ing_frame_finish(&f, &ops, &fx->seen);
    assert_int_equal(fx->seen.n, 1);
}

static void test_frame_gives_the_block_back_when_nothing_is_carried(void **state)
{
    fixture_t *fx = *state;
    ing_frame_t f;
    pool_stats_t st;
    ing_frame_init(&f, fx->cache, 1 << 20, NULL, NULL, NULL);
    assert_int_equal(ing_frame_feed(&f, "{}\n", 3, &ops, &fx->seen), 0);
    assert_null(f.block);
    pool_cache_stats(fx->cache, &st);
    assert_int_equal(st.in_use, 0);
    assert_int_equal(ing_frame_feed(&f, "{", 1, &ops, &fx->seen), 0);
    assert_non_null(f.block);
    ing_frame_release(&f);
    assert_null(f.block);
}

static void test_frame_strips_crlf_and_ignores_blank_lines(void **state)
{
    fixture_t *fx = *state;
    const char *in = "\n\r\n   \n{\"a\":1}\r\n\t\r\n{\"b\":2}\n";
    for (size_t step = 0; step <= 2; step++) {
        seen_clear(&fx->seen);
        feed_steps(fx, 1 << 20, in, strlen(in), step);
        assert_int_equal(fx->seen.n, 2);
        assert_string_equal(fx->seen.line[0], "{\"a\":1}");
        assert_string_equal(fx->seen.line[1], "{\"b\":2}");
    }
}

static void test_frame_partial_line_at_end_is_truncated(void **state)
{
    fixture_t *fx = *state;
    const char *in = "{\"a\":1}\n{\"b\":";
    feed_steps(fx, 1 << 20, in, strlen(in), 1);
    assert_int_equal(fx->seen.n, 2);
    assert_int_equal(fx->seen.verdict[1], ING_REJECT_TRUNCATED);
}

static void test_frame_blank_tail_at_end_is_not_truncated(void **state)
{
    fixture_t *fx = *state;
    const char *in = "{\"a\":1}\n  \r";
    feed_steps(fx, 1 << 20, in, strlen(in), 1);
    assert_int_equal(fx->seen.n, 1);
    assert_int_equal(fx->seen.verdict[0], ING_ACCEPTED);
}

static void test_frame_every_split_point_gives_the_same_lines(void **state)
{
    fixture_t *fx = *state;
    const char *in = "{\"type\":\"a\"}\r\n\n{\"type\":\"bb\",\"x\":[1,2,3]}\n{\"t\":1}\n{\"z";
    size_t n = strlen(in);
    for (size_t cut = 0; cut <= n; cut++) {
        ing_frame_t f;
        seen_clear(&fx->seen);
        ing_frame_init(&f, fx->cache, 1 << 20, NULL, NULL, NULL);
        assert_int_equal(ing_frame_feed(&f, in, cut, &ops, &fx->seen), 0);
        assert_int_equal(ing_frame_feed(&f, in + cut, n - cut, &ops, &fx->seen), 0);
        ing_frame_finish(&f, &ops, &fx->seen);
        assert_int_equal(fx->seen.n, 4);
        assert_string_equal(fx->seen.line[0], "{\"type\":\"a\"}");
        assert_string_equal(fx->seen.line[1], "{\"type\":\"bb\",\"x\":[1,2,3]}");
        assert_string_equal(fx->seen.line[2], "{\"t\":1}");
        assert_int_equal(fx->seen.verdict[3], ING_REJECT_TRUNCATED);
    }
}

/* Events around the block size arrive intact, whole and byte at a time. */
static void test_frame_events_of_4095_4096_4097_bytes_arrive_intact(void **state)
{
    fixture_t *fx = *state;
    const size_t sizes[] = {4094, 4095, 4096, 4097, 8192, 9000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (size_t step = 0; step <= 1; step++) {
            char *ev = make_event(sizes[i], 'q');
            size_t n = sizes[i] + 1 + 8;
            char *in = malloc(n + 1);
            memcpy(in, ev, sizes[i]);
            memcpy(in + sizes[i], "\n{\"k\":2}\n", 9);
            seen_clear(&fx->seen);
            feed_steps(fx, 1 << 20, in, n, step);
            assert_int_equal(fx->seen.n, 2);
            assert_int_equal(fx->seen.len[0], sizes[i]);
            assert_memory_equal(fx->seen.line[0], ev, sizes[i]);
            assert_string_equal(fx->seen.line[1], "{\"k\":2}");
            free(in);
            free(ev);
        }
    }
}

static void test_frame_event_of_max_is_taken_and_max_plus_one_is_too_large(void **state)
{
    fixture_t *fx = *state;
    const size_t max = 10000;
    char *ok = make_event(max, 'a');
    char *big = make_event(max + 1, 'b');
    size_t n = 2 * max + 1 + 3 + 10;
    char *in = malloc(n + 1);
    size_t k = 0;
    memcpy(in + k, ok, max);
    k += max;
    in[k++] = '\n';
    memcpy(in + k, big, max + 1);
    k += max + 1;
    in[k++] = '\n';
    memcpy(in + k, "{\"c\":3}\r\n", 9);
    k += 9;
    for (size_t step = 0; step <= 1; step++) {
        seen_clear(&fx->seen);
        feed_steps(fx, max, in, k, step);
        assert_int_equal(fx->seen.n, 3);
        assert_int_equal(fx->seen.len[0], max);
        assert_int_equal(fx->seen.verdict[1], ING_REJECT_TOO_LARGE);
        assert_string_equal(fx->seen.line[2], "{\"c\":3}");
    }
    free(in);
    free(ok);
    free(big);
}

static void test_frame_crlf_after_an_event_of_max_bytes_still_fits(void **state)
{
    fixture_t *fx = *state;
    const size_t max = 5000;
    char *ev = make_event(max, 'c');
    char *in = malloc(max + 2);
    memcpy(in, ev, max);
    memcpy(in + max, "\r\n", 2);
    feed_steps(fx, max, in, max + 2, 0);
    assert_int_equal(fx->seen.n, 1);
    assert_int_equal(fx->seen.len[0], max);
    free(in);
    free(ev);
}

static void test_frame_small_limit_rejects_inside_one_block(void **state)
{
    fixture_t *fx = *state;
    const char *in = "0123456789\n01234567890\n\"x\"\n";
    feed_steps(fx, 10, in, strlen(in), 1);
    assert_int_equal(fx->seen.n, 3);
    assert_string_equal(fx->seen.line[0], "0123456789");
    assert_int_equal(fx->seen.verdict[1], ING_REJECT_TOO_LARGE);
    assert_string_equal(fx->seen.line[2], "\"x\"");
}

/* A huge line without a newline is reported once and never buffered beyond the limit. */
static void test_frame_too_large_line_is_skipped_without_buffering(void **state)
{
    fixture_t *fx = *state;
    ing_frame_t f;
    char chunk[4096];
    memset(chunk, 'x', sizeof(chunk));
    ing_frame_init(&f, fx->cache, 8192, NULL, NULL, NULL);
    for (int i = 0; i < 2560; i++) { /* 10 MiB */
        assert_int_equal(ing_frame_feed(&f, chunk, sizeof(chunk), &ops, &fx->seen), 0);
        assert_true(f.big_cap <= 8193);
    }
    assert_int_equal(fx->seen.n, 1);
    assert_int_equal(fx->seen.verdict[0], ING_REJECT_TOO_LARGE);
    assert_true(f.big_allocs <= 2);
    assert_int_equal(ing_frame_feed(&f, "tail\n{\"ok\":1}\n", 14, &ops, &fx->seen), 0);
    assert_int_equal(fx->seen.n, 2);
    assert_string_equal(fx->seen.line[1], "{\"ok\":1}");
    ing_frame_finish(&f, &ops, &fx->seen);
    assert_int_equal(fx->seen.n, 2);
    assert_int_equal(f.oversize, 1);
}

static void test_frame_too_large_line_cut_by_end_of_stream_is_reported_once(void **state)
{
    fixture_t *fx = *state;
    char *ev = make_event(6000, 'z');
    feed_steps(fx, 5000, ev, 6000, 7);
    assert_int_equal(fx->seen.n, 1);
    assert_int_equal(fx->seen.verdict[0], ING_REJECT_TOO_LARGE);
    free(ev);
}

static void test_frame_assembled_line_cut_by_end_of_stream_is_truncated(void **state)
{
    fixture_t *fx = *state;
    char *ev = make_event(6000, 'z');
    feed_steps(fx, 1 << 20, ev, 6000, 0);
    assert_int_equal(fx->seen.n, 1);
    assert_int_equal(fx->seen.verdict[0], ING_REJECT_TRUNCATED);
    free(ev);
}

static void test_frame_stock_lends_assembly_buffers_so_big_lines_stop_allocating(void **state)
{
    fixture_t *fx = *state;
    ing_frame_stock_t stock;
    ing_frame_t f;
    char *ev = make_event(9000, 's');
    ing_frame_stock_init(&stock, NULL);
    ing_frame_init(&f, fx->cache, 1 << 20, &stock, NULL, NULL);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(ing_frame_feed(&f, ev, 9000, &ops, &fx->seen), 0);
        assert_int_equal(ing_frame_feed(&f, "\n", 1, &ops, &fx->seen), 0);
        if (i == 0) {
            assert_int_equal(stock.n, 1);
        }
    }
    assert_int_equal(fx->seen.n, 5);
    assert_int_equal(fx->seen.len[4], 9000);
    assert_int_equal(f.big_allocs, 2); /* 8 KiB, then 9001 bytes, once */
    assert_int_equal(f.oversize, 5);
    ing_frame_finish(&f, &ops, &fx->seen);
    ing_frame_stock_destroy(&stock);
    assert_int_equal(stock.n, 0);
    free(ev);
}

/* ---- differential test against a whole-input reference ---- */

#define REF_MAX 8192

typedef struct {
    size_t n;
    ing_verdict_t v[REF_MAX];
    size_t off[REF_MAX]; /* accepted: the line's hash */
    size_t len[REF_MAX];
} ref_t;

static void ref_add(ref_t *r, ing_verdict_t v, size_t off, size_t len)
{
    assert_true(r->n < REF_MAX);
    r->v[r->n] = v;
    r->off[r->n] = off;
    r->len[r->n] = len;
    r->n++;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static size_t fnv(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
    }
    return (size_t)h;
}

/* An accepted line is recorded by its hash (in off), so that reference and framer compare. */
static void record(void *ctx, ing_verdict_t v, const char *line, size_t len)
{
    ref_add(ctx, v, line != NULL ? fnv(line, len) : 0, len);
}

static void diff_line(void *ctx, const char *line, size_t len)
{
    record(ctx, ING_ACCEPTED, line, len);
}

static void diff_reject(void *ctx, ing_verdict_t reason)
{
    record(ctx, reason, NULL, 0);
}

static void test_frame_matches_a_whole_input_reference_for_random_input_and_splits(void **state)
{
    fixture_t *fx = *state;
    static const size_t maxes[] = {1, 10, 100, 4094, 4095, 4096, 4097, 6000, 100000};
    static const char alphabet[] = "aaaaaaaab{ \r\n";
    static const ing_frame_ops_t o = {diff_line, diff_reject, NULL};
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    char *in = malloc(20000);
    ref_t *want = malloc(sizeof(*want));
    ref_t *got = malloc(sizeof(*got));
    for (int iter = 0; iter < 400; iter++) {
        size_t n = rng_next(&seed) % (iter % 4 == 0 ? 14000 : 300);
        size_t max = maxes[rng_next(&seed) % (sizeof(maxes) / sizeof(maxes[0]))];
        int longlines = rng_next(&seed) % 2;
        for (size_t i = 0; i < n; i++) {
            char c = alphabet[rng_next(&seed) % (sizeof(alphabet) - 1)];
            if (longlines && c == '\n' && rng_next(&seed) % 64 != 0) {
                c = 'a';
            }
            in[i] = c;
        }
        memset(want, 0, sizeof(*want));
        frame_ref(in, n, max, record, want);
        memset(got, 0, sizeof(*got));
        ing_frame_t f;
        ing_frame_init(&f, fx->cache, max, NULL, NULL, NULL);
        /* Random pieces: sometimes a few bytes at a time, sometimes large. */
        for (size_t off = 0; off < n;) {
            size_t piece = 1 + rng_next(&seed) % (iter % 3 == 0 ? 3 : 5000);
            char *base;
            size_t room;
            assert_int_equal(ing_frame_buf(&f, &base, &room), 0);
            piece = piece > n - off ? n - off : piece;
            piece = piece > room ? room : piece;
            memcpy(base, in + off, piece);
            ing_frame_commit(&f, piece, &o, got);
            off += piece;
        }
        ing_frame_finish(&f, &o, got);
        assert_int_equal(got->n, want->n);
        for (size_t i = 0; i < want->n; i++) {
            assert_int_equal(got->v[i], want->v[i]);
            assert_int_equal(got->len[i], want->len[i]);
            assert_int_equal(got->off[i], want->off[i]);
        }
    }
    free(got);
    free(want);
    free(in);
}

static int fail_allocs;

static void *failing_alloc(size_t n)
{
    return fail_allocs ? NULL : malloc(n);
}

static void test_frame_reports_enomem_when_the_pool_has_no_block(void **state)
{
    pool_config_t cfg;
    pool_t *p;
    pool_cache_t *c;
    ing_frame_t f;
    char *base;
    size_t len;
    (void)state;
    pool_config_init(&cfg);
    cfg.alloc_fn = failing_alloc;
    cfg.free_fn = free;
    assert_int_equal(pool_create(&cfg, &p), 0);
    assert_int_equal(pool_cache_create(p, &c), 0);
    fail_allocs = 1;
    ing_frame_init(&f, c, 100, NULL, NULL, NULL);
    assert_int_equal(ing_frame_buf(&f, &base, &len), -ENOMEM);
    assert_null(base);
    assert_int_equal(len, 0);
    ing_frame_release(&f);
    fail_allocs = 0;
    pool_cache_destroy(c);
    pool_destroy(p);
}

/* may_grow: counts asks and refuses growth past a cap. */
typedef struct {
    seen_t seen;
    size_t cap_allowed;
    unsigned asks;
} grow_ctx_t;

static void grow_line(void *ctx, const char *line, size_t len)
{
    on_line(&((grow_ctx_t *)ctx)->seen, line, len);
}

static void grow_reject(void *ctx, ing_verdict_t reason)
{
    on_reject(&((grow_ctx_t *)ctx)->seen, reason);
}

static int grow_ask(void *ctx, size_t held, size_t cap)
{
    grow_ctx_t *g = ctx;
    assert_true(cap > held);
    g->asks++;
    return cap <= g->cap_allowed;
}

static const ing_frame_ops_t grow_ops = {grow_line, grow_reject, grow_ask};

static void
test_frame_refused_growth_drops_the_line_as_over_budget_and_skips_to_its_end(void **state)
{
    fixture_t *fx = *state;
    grow_ctx_t g = {.cap_allowed = 2 * POOL_BLOCK_SIZE};
    ing_frame_t f;
    size_t n = 5 * POOL_BLOCK_SIZE;
    char *data = malloc(n + 20);

    memset(data, 'a', n);
    memcpy(data + n, "\n{\"type\":\"b\"}\n", 14);
    ing_frame_init(&f, fx->cache, 1 << 20, NULL, NULL, NULL);
    assert_int_equal(ing_frame_feed(&f, data, n, &grow_ops, &g), 0);
    /* The first assembly buffer (two blocks) was allowed, the next growth refused. */
    assert_true(g.asks >= 2);
    assert_int_equal(g.seen.n, 1);
    assert_int_equal(g.seen.verdict[0], ING_REJECT_OVER_BUDGET);
    assert_int_equal(ing_frame_held(&f), 0); /* skipping holds nothing */
    assert_true(ing_frame_pending(&f));
    assert_int_equal(ing_frame_feed(&f, data + n, 14, &grow_ops, &g), 0);
    assert_int_equal(g.seen.n, 2);
    assert_string_equal(g.seen.line[1], "{\"type\":\"b\"}");
    ing_frame_finish(&f, &grow_ops, &g);
    seen_clear(&g.seen);
    free(data);
}

static void
test_frame_held_counts_the_block_and_the_assembly_buffer_and_drop_frees_them(void **state)
{
    fixture_t *fx = *state;
    ing_frame_t f;
    char data[POOL_BLOCK_SIZE + 100];

    memset(data, 'x', sizeof(data));
    ing_frame_init(&f, fx->cache, 1 << 20, NULL, NULL, NULL);
    assert_int_equal(ing_frame_held(&f), 0);
    assert_int_equal(ing_frame_drop(&f), 0); /* nothing held: nothing changes */
    assert_false(ing_frame_pending(&f));
    assert_int_equal(ing_frame_feed(&f, data, 10, &ops, &fx->seen), 0);
    assert_int_equal(ing_frame_held(&f), POOL_BLOCK_SIZE);
    assert_int_equal(ing_frame_feed(&f, data, sizeof(data) - 10, &ops, &fx->seen), 0);
    assert_true(ing_frame_held(&f) >= 2 * POOL_BLOCK_SIZE);
    assert_int_equal(ing_frame_drop(&f), 1);
    assert_int_equal(ing_frame_held(&f), 0);
    /* The rest of the dropped line is skipped; the next line is whole. */
    assert_int_equal(ing_frame_feed(&f, "yyy\n{\"type\":\"c\"}\n", 17, &ops, &fx->seen), 0);
    assert_int_equal(fx->seen.n, 1);
    assert_string_equal(fx->seen.line[0], "{\"type\":\"c\"}");
    ing_frame_finish(&f, &ops, &fx->seen);
    assert_int_equal(fx->seen.n, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_frame_complete_lines_come_out_whole_byte_at_a_time,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_frame_partial_line_needs_more, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frame_gives_the_block_back_when_nothing_is_carried,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_frame_strips_crlf_and_ignores_blank_lines, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_frame_partial_line_at_end_is_truncated, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_frame_blank_tail_at_end_is_not_truncated, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_frame_every_split_point_gives_the_same_lines, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_frame_events_of_4095_4096_4097_bytes_arrive_intact,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_frame_event_of_max_is_taken_and_max_plus_one_is_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frame_crlf_after_an_event_of_max_bytes_still_fits,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_frame_small_limit_rejects_inside_one_block, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_frame_too_large_line_is_skipped_without_buffering,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_frame_too_large_line_cut_by_end_of_stream_is_reported_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frame_assembled_line_cut_by_end_of_stream_is_truncated,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_frame_stock_lends_assembly_buffers_so_big_lines_stop_allocating, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_frame_matches_a_whole_input_reference_for_random_input_and_splits, setup,
            teardown),
        cmocka_unit_test(test_frame_reports_enomem_when_the_pool_has_no_block),
        cmocka_unit_test_setup_teardown(
            test_frame_refused_growth_drops_the_line_as_over_budget_and_skips_to_its_end, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_frame_held_counts_the_block_and_the_assembly_buffer_and_drop_frees_them, setup,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
