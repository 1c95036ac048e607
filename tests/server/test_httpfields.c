/* test_httpfields.c - unit tests for Content-Encoding, Transfer-Encoding and Host
 * (server/httpfields.h): each value whole, split at every point, and as several field lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "server/httpfields.h"

/* Field lines of one request, NULL-terminated; each line is fed split at `cut` (when inside). */
static srv_hf_coding_t ce_lines(const char *const *lines, size_t cut)
{
    srv_hf_ce_t ce;
    srv_hf_ce_init(&ce);
    for (size_t i = 0; lines[i] != NULL; i++) {
        size_t n = strlen(lines[i]);
        size_t c = cut < n ? cut : n;
        srv_hf_ce_feed(&ce, lines[i], c);
        srv_hf_ce_feed(&ce, lines[i] + c, n - c);
        srv_hf_ce_end_line(&ce);
    }
    return srv_hf_ce_result(&ce);
}

/* One value: whole, then split at every point and byte at a time, must agree. */
static srv_hf_coding_t ce(const char *v)
{
    srv_hf_coding_t whole = srv_hf_content_coding(v, strlen(v));
    const char *lines[] = {v, NULL};
    for (size_t cut = 0; cut <= strlen(v); cut++) {
        assert_int_equal(ce_lines(lines, cut), whole);
    }
    srv_hf_ce_t st;
    srv_hf_ce_init(&st);
    for (size_t i = 0; v[i] != '\0'; i++) {
        srv_hf_ce_feed(&st, v + i, 1);
    }
    srv_hf_ce_end_line(&st);
    assert_int_equal(srv_hf_ce_result(&st), whole);
    return whole;
}

static void test_hf_content_encoding_identity_and_gzip(void **state)
{
    (void)state;
    assert_int_equal(srv_hf_content_coding(NULL, 0), SRV_HF_CODING_IDENTITY);
    assert_int_equal(ce(""), SRV_HF_CODING_IDENTITY);
    assert_int_equal(ce("identity"), SRV_HF_CODING_IDENTITY);
    assert_int_equal(ce(" IDENTITY ,, identity\t"), SRV_HF_CODING_IDENTITY);
    assert_int_equal(ce("gzip"), SRV_HF_CODING_GZIP);
    assert_int_equal(ce("GZip"), SRV_HF_CODING_GZIP);
    assert_int_equal(ce("x-gzip"), SRV_HF_CODING_GZIP);
    assert_int_equal(ce(" \t x-GZIP \t"), SRV_HF_CODING_GZIP);
    assert_int_equal(ce(",, gzip ,,"), SRV_HF_CODING_GZIP);
    assert_int_equal(ce("identity, gzip, identity"), SRV_HF_CODING_GZIP);
}

static void test_hf_content_encoding_issue_examples_are_not_identity(void **state)
{
    (void)state;
    /* Issue 11: the value was cut at 15 bytes and this passed as identity. */
    assert_int_equal(ce("identity        , gzip"), SRV_HF_CODING_GZIP);
    assert_int_equal(ce("identity                                        , br"),
                     SRV_HF_CODING_UNSUPPORTED);
    /* Issue 11: a second Content-Encoding: identity line overrode gzip. */
    const char *two[] = {"gzip", "identity", NULL};
    const char *two_rev[] = {"identity", "gzip", NULL};
    const char *two_gzip[] = {"gzip", "gzip", NULL};
    const char *empty_then[] = {"", "x-gzip", NULL};
    for (size_t cut = 0; cut < 10; cut++) {
        assert_int_equal(ce_lines(two, cut), SRV_HF_CODING_GZIP);
        assert_int_equal(ce_lines(two_rev, cut), SRV_HF_CODING_GZIP);
        assert_int_equal(ce_lines(two_gzip, cut), SRV_HF_CODING_UNSUPPORTED);
        assert_int_equal(ce_lines(empty_then, cut), SRV_HF_CODING_GZIP);
    }
}

static void test_hf_content_encoding_anything_else_is_unsupported(void **state)
{
    (void)state;
    static const char *bad[] = {
        "deflate",       "br",        "compress",        "zstd",
        "gzip, gzip",    "gzip, br",  "gzip;q=1",        "gz ip",
        "\"gzip\"",      "identityx", "xidentity",       "gzipgzipgzipgzipgzip",
        "gzip/1",        "gzip\x01",  "identity\r\n",    "x-gzip-x",
        "identity gzip", "=",         "gzip, identity;", "identityidentityidentity",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (ce(bad[i]) != SRV_HF_CODING_UNSUPPORTED) {
            fail_msg("Content-Encoding \"%s\" should be unsupported", bad[i]);
        }
    }
    /* An unfinished line counts as ended. */
    srv_hf_ce_t st;
    srv_hf_ce_init(&st);
    srv_hf_ce_feed(&st, "br", 2);
    assert_int_equal(srv_hf_ce_result(&st), SRV_HF_CODING_UNSUPPORTED);
}

static srv_hf_te_t te_lines(const char *const *lines, size_t cut, unsigned major, unsigned minor)
{
    srv_hf_te_state_t te;
    srv_hf_te_init(&te);
    for (size_t i = 0; lines[i] != NULL; i++) {
        size_t n = strlen(lines[i]);
        size_t c = cut < n ? cut : n;
        srv_hf_te_feed(&te, lines[i], c);
        srv_hf_te_feed(&te, lines[i] + c, n - c);
        srv_hf_te_end_line(&te);
    }
    return srv_hf_te_result(&te, major, minor);
}

static srv_hf_te_t te(const char *v)
{
    srv_hf_te_t whole = srv_hf_transfer_coding(v, strlen(v), 1, 1);
    const char *lines[] = {v, NULL};
    for (size_t cut = 0; cut <= strlen(v); cut++) {
        assert_int_equal(te_lines(lines, cut, 1, 1), whole);
    }
    return whole;
}

static void test_hf_transfer_encoding_only_chunked_last_and_once(void **state)
{
    (void)state;
    assert_int_equal(srv_hf_transfer_coding(NULL, 0, 1, 1), SRV_HF_TE_NONE);
    const char *none[] = {NULL};
    assert_int_equal(te_lines(none, 0, 1, 1), SRV_HF_TE_NONE);
    assert_int_equal(te("chunked"), SRV_HF_TE_CHUNKED);
    assert_int_equal(te("Chunked"), SRV_HF_TE_CHUNKED);
    assert_int_equal(te(" chunked ,"), SRV_HF_TE_CHUNKED);
    /* Issue 11: gzip was ignored and the body read as chunked. RFC 9112 6.1: 501. */
    assert_int_equal(te("gzip, chunked"), SRV_HF_TE_UNSUPPORTED);
    assert_int_equal(te("identity, chunked"), SRV_HF_TE_UNSUPPORTED);
    assert_int_equal(te("x-custom ,chunked"), SRV_HF_TE_UNSUPPORTED);
    assert_int_equal(te("gzip;level=1, chunked"), SRV_HF_TE_UNSUPPORTED);
    /* Chunked not last, twice, or no coding at all: the length is unknown, 400. */
    assert_int_equal(te("chunked, gzip"), SRV_HF_TE_BAD);
    assert_int_equal(te("gzip"), SRV_HF_TE_BAD);
    assert_int_equal(te("identity"), SRV_HF_TE_BAD);
    assert_int_equal(te("chunked, chunked"), SRV_HF_TE_BAD);
    assert_int_equal(te(""), SRV_HF_TE_BAD);
    assert_int_equal(te(" , "), SRV_HF_TE_BAD);
    assert_int_equal(te("chunkedx"), SRV_HF_TE_BAD);
    assert_int_equal(te("chunked;x=1"), SRV_HF_TE_BAD);
    assert_int_equal(te("chun ked"), SRV_HF_TE_BAD);
}

static void test_hf_transfer_encoding_lines_combine_and_http10_is_refused(void **state)
{
    (void)state;
    const char *gz_ch[] = {"gzip", "chunked", NULL};
    const char *ch_ch[] = {"chunked", "chunked", NULL};
    const char *ch_gz[] = {"chunked", "gzip", NULL};
    const char *ch_empty[] = {"chunked", "", NULL};
    for (size_t cut = 0; cut < 8; cut++) {
        assert_int_equal(te_lines(gz_ch, cut, 1, 1), SRV_HF_TE_UNSUPPORTED);
        assert_int_equal(te_lines(ch_ch, cut, 1, 1), SRV_HF_TE_BAD);
        assert_int_equal(te_lines(ch_gz, cut, 1, 1), SRV_HF_TE_BAD);
        assert_int_equal(te_lines(ch_empty, cut, 1, 1), SRV_HF_TE_CHUNKED);
    }
    assert_int_equal(srv_hf_transfer_coding("chunked", 7, 1, 0), SRV_HF_TE_BAD);
    assert_int_equal(srv_hf_transfer_coding(NULL, 0, 1, 0), SRV_HF_TE_NONE);
}

static srv_hf_host_verdict_t host_lines(const char *const *lines, size_t cut, unsigned major,
                                        unsigned minor)
{
    srv_hf_host_t h;
    srv_hf_host_init(&h);
    for (size_t i = 0; lines[i] != NULL; i++) {
        size_t n = strlen(lines[i]);
        size_t c = cut < n ? cut : n;
        srv_hf_host_feed(&h, lines[i], c);
        srv_hf_host_feed(&h, lines[i] + c, n - c);
        srv_hf_host_end_line(&h);
    }
    return srv_hf_host_result(&h, major, minor);
}

static srv_hf_host_verdict_t host(const char *v)
{
    const char *lines[] = {v, NULL};
    srv_hf_host_verdict_t whole = host_lines(lines, (size_t)-1, 1, 1);
    for (size_t cut = 0; cut <= strlen(v); cut++) {
        assert_int_equal(host_lines(lines, cut, 1, 1), whole);
    }
    return whole;
}

static void test_hf_host_exactly_one_valid_line(void **state)
{
    (void)state;
    const char *none[] = {NULL};
    assert_int_equal(host_lines(none, 0, 1, 1), SRV_HF_HOST_MISSING);
    assert_int_equal(host_lines(none, 0, 2, 0), SRV_HF_HOST_MISSING);
    assert_int_equal(host_lines(none, 0, 1, 0), SRV_HF_HOST_OK); /* HTTP/1.0 needs none */
    const char *two[] = {"a.example", "a.example", NULL};
    assert_int_equal(host_lines(two, 3, 1, 1), SRV_HF_HOST_MANY);
    assert_int_equal(host_lines(two, 3, 1, 0), SRV_HF_HOST_MANY);
    const char *empty_twice[] = {"", "", NULL};
    assert_int_equal(host_lines(empty_twice, 0, 1, 1), SRV_HF_HOST_MANY);

    static const char *good[] = {"example.com",
                                 "example.com:8080",
                                 "127.0.0.1:9000",
                                 "[::1]",
                                 "[::1]:80",
                                 "[2001:db8::7]",
                                 "",
                                 " h:1 ",
                                 "exa%41mple",
                                 "a-b_c~d.e!$&'()*+,;=",
                                 "[v1.fe80::a+en1]",
                                 "h:"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (host(good[i]) != SRV_HF_HOST_OK) {
            fail_msg("Host \"%s\" should be valid", good[i]);
        }
    }
    static const char *bad[] = {"a b",    "h:port", "[::1",   "[::1]x",    "exa%4",
                                "exa%zz", "h/",     "user@h", "h:80:80",   "h\x01",
                                "[::1]]", "h\"",    "h:8 0",  "[::1]:80a", "h#x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (host(bad[i]) != SRV_HF_HOST_INVALID) {
            fail_msg("Host \"%s\" should be invalid", bad[i]);
        }
    }
    assert_string_equal(srv_hf_host_verdict_name(SRV_HF_HOST_MISSING), "missing Host");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hf_content_encoding_identity_and_gzip),
        cmocka_unit_test(test_hf_content_encoding_issue_examples_are_not_identity),
        cmocka_unit_test(test_hf_content_encoding_anything_else_is_unsupported),
        cmocka_unit_test(test_hf_transfer_encoding_only_chunked_last_and_once),
        cmocka_unit_test(test_hf_transfer_encoding_lines_combine_and_http10_is_refused),
        cmocka_unit_test(test_hf_host_exactly_one_valid_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
