/* test_corpus.c - the generated corpus: deterministic per seed, realistic shapes, invalid share,
 * and NDJSON file loading. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lg_corpus.h"

static lg_corpus_config_t config(uint64_t seed, unsigned s, unsigned m, unsigned l, unsigned inv)
{
    lg_corpus_config_t c;
    lg_corpus_config_default(&c);
    c.seed = seed;
    c.small_pct = s;
    c.medium_pct = m;
    c.large_pct = l;
    c.invalid_pct = inv;
    return c;
}

/* 1 when line i is a JSON object with a string "type" (what ingestd accepts). */
static int line_valid(const lg_corpus_t *c, size_t i, json_t **out)
{
    const char *p = c->data + c->offsets[i];
    size_t n = c->offsets[i + 1] - c->offsets[i] - 1;
    json_t *j = json_loadb(p, n, 0, NULL);
    int ok = j && json_is_object(j) && json_is_string(json_object_get(j, "type"));
    if (out) {
        *out = j;
    } else {
        json_decref(j);
    }
    return ok;
}

static void test_corpus_same_seed_gives_same_bytes(void **state)
{
    (void)state;
    lg_corpus_config_t cfg = config(42, 90, 9, 1, 5);
    lg_corpus_t a, b;
    assert_int_equal(lg_corpus_generate(&cfg, &a), 0);
    assert_int_equal(lg_corpus_generate(&cfg, &b), 0);
    assert_int_equal(a.size, b.size);
    assert_int_equal(a.count, b.count);
    assert_memory_equal(a.data, b.data, a.size);
    assert_memory_equal(a.offsets, b.offsets, (a.count + 1) * sizeof(size_t));
    lg_corpus_free(&a);
    lg_corpus_free(&b);
}

static void test_corpus_different_seed_gives_different_bytes(void **state)
{
    (void)state;
    lg_corpus_config_t c1 = config(1, 90, 9, 1, 0), c2 = config(2, 90, 9, 1, 0);
    lg_corpus_t a, b;
    assert_int_equal(lg_corpus_generate(&c1, &a), 0);
    assert_int_equal(lg_corpus_generate(&c2, &b), 0);
    assert_true(a.size != b.size || memcmp(a.data, b.data, a.size) != 0);
    lg_corpus_free(&a);
    lg_corpus_free(&b);
}

static void test_corpus_small_events_are_about_320_bytes_with_eleven_fields(void **state)
{
    (void)state;
    lg_corpus_config_t cfg = config(7, 100, 0, 0, 0);
    cfg.events = 1000;
    lg_corpus_t c;
    assert_int_equal(lg_corpus_generate(&cfg, &c), 0);
    assert_int_equal(c.count, 1000);
    double mean = (double)c.size / (double)c.count;
    assert_true(mean > 280 && mean < 360);
    assert_int_equal(c.over_block, 0);
    for (size_t i = 0; i < c.count; i++) {
        json_t *j = NULL;
        assert_true(line_valid(&c, i, &j));
        assert_int_equal(json_object_size(j), 11);
        assert_true(json_is_object(json_object_get(j, "user")));
        assert_true(json_is_array(json_object_get(j, "tags")));
        json_decref(j);
    }
    lg_corpus_free(&c);
}

static void test_corpus_mix_has_events_over_one_block_and_one_line_each(void **state)
{
    (void)state;
    lg_corpus_config_t cfg = config(3, 90, 9, 1, 0);
    lg_corpus_t c;
    assert_int_equal(lg_corpus_generate(&cfg, &c), 0);
    assert_int_equal(c.count, 4096);
    assert_true(c.over_block > 10);
    assert_true(c.max_line > LG_BLOCK_SIZE);
    assert_int_equal(c.offsets[0], 0);
    assert_int_equal(c.offsets[c.count], c.size);
    for (size_t i = 0; i < c.count; i++) {
        size_t b = c.offsets[i], e = c.offsets[i + 1];
        assert_true(e > b + 1);
        assert_int_equal(c.data[e - 1], '\n');
        assert_null(memchr(c.data + b, '\n', e - b - 1));
        assert_true(line_valid(&c, i, NULL));
    }
    assert_int_equal(c.invalid, 0);
    lg_corpus_free(&c);
}

static void test_corpus_invalid_share_is_what_was_asked_and_really_invalid(void **state)
{
    (void)state;
    lg_corpus_config_t cfg = config(9, 90, 9, 1, 10);
    lg_corpus_t c;
    assert_int_equal(lg_corpus_generate(&cfg, &c), 0);
    assert_true(c.invalid > 4096 * 7 / 100 && c.invalid < 4096 * 13 / 100);
    size_t invalid = 0;
    for (size_t i = 0; i < c.count; i++) {
        int bad = !line_valid(&c, i, NULL);
        invalid += (size_t)bad;
        assert_int_equal(c.invalid_before[i + 1] - c.invalid_before[i], (size_t)bad);
    }
    assert_int_equal(invalid, c.invalid);
    lg_corpus_free(&c);
}

static void test_corpus_invalid_in_counts_across_the_wrap(void **state)
{
    (void)state;
    lg_corpus_config_t cfg = config(5, 100, 0, 0, 30);
    cfg.events = 97;
    lg_corpus_t c;
    assert_int_equal(lg_corpus_generate(&cfg, &c), 0);
    size_t starts[] = {0, 1, 50, 96};
    uint64_t lens[] = {0, 1, 47, 96, 97, 98, 500};
    for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
        for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
            uint64_t brute = 0;
            for (uint64_t k = 0; k < lens[l]; k++) {
                size_t i = (starts[s] + k) % c.count;
                brute += c.invalid_before[i + 1] - c.invalid_before[i];
            }
            assert_int_equal(lg_corpus_invalid_in(&c, starts[s], lens[l]), brute);
        }
    }
    lg_corpus_free(&c);
}

static void test_corpus_rejects_a_mix_that_is_not_100_percent(void **state)
{
    (void)state;
    lg_corpus_config_t cfg = config(1, 90, 9, 2, 0);
    lg_corpus_t c;
    assert_int_equal(lg_corpus_generate(&cfg, &c), -EINVAL);
    lg_corpus_free(&c);
}

static void test_corpus_load_skips_blank_lines_and_carriage_returns(void **state)
{
    (void)state;
    char path[] = "/tmp/lg_corpus_test.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = "{\"type\":\"a\"}\r\n\n{\"type\":\"b\",\"x\":1}\n\r\n{\"type\":\"c\"}";
    assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
    close(fd);
    lg_corpus_t c;
    assert_int_equal(lg_corpus_load(path, &c), 0);
    unlink(path);
    assert_int_equal(c.count, 3);
    const char want[] = "{\"type\":\"a\"}\n{\"type\":\"b\",\"x\":1}\n{\"type\":\"c\"}\n";
    assert_int_equal(c.size, sizeof(want) - 1);
    assert_memory_equal(c.data, want, c.size);
    assert_int_equal(c.offsets[1], 13);
    lg_corpus_free(&c);
    assert_int_equal(lg_corpus_load("/nonexistent/lg", &c), -ENOENT);
    lg_corpus_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_same_seed_gives_same_bytes),
        cmocka_unit_test(test_corpus_different_seed_gives_different_bytes),
        cmocka_unit_test(test_corpus_small_events_are_about_320_bytes_with_eleven_fields),
        cmocka_unit_test(test_corpus_mix_has_events_over_one_block_and_one_line_each),
        cmocka_unit_test(test_corpus_invalid_share_is_what_was_asked_and_really_invalid),
        cmocka_unit_test(test_corpus_invalid_in_counts_across_the_wrap),
        cmocka_unit_test(test_corpus_rejects_a_mix_that_is_not_100_percent),
        cmocka_unit_test(test_corpus_load_skips_blank_lines_and_carriage_returns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
