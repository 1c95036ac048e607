/* test_auth.c - unit tests for bearer tokens (server/auth.h): the tokens file, the check, the
 * publish slot across reloads (with reader threads, for tsan), and memory given back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem/mem.h"
#include "server/auth.h"

#define TOK_A "aaaaaaaaaaaaaaaaaaaaaaaa"
#define TOK_B "Bbbbbbbbbbbbbbbb-._~+/=="
#define TOK_C "cccccccccccccccccccccccccccccccccccccccc"

static srv_auth_limits_t lim_default(void)
{
    srv_auth_limits_t lim;
    srv_auth_limits_default(&lim);
    return lim;
}

static srv_auth_set_t *parse_ok(const char *text, char *msg)
{
    srv_auth_limits_t lim = lim_default();
    srv_auth_set_t *set = NULL;
    assert_int_equal(srv_auth_set_parse(text, strlen(text), "t", &lim, &set, msg, SRV_AUTH_MSGLEN),
                     0);
    assert_non_null(set);
    return set;
}

static int parse_err(const char *text, const srv_auth_limits_t *lim, char *msg)
{
    srv_auth_set_t *set = (srv_auth_set_t *)(uintptr_t)1;
    int rc = srv_auth_set_parse(text, strlen(text), "t", lim, &set, msg, SRV_AUTH_MSGLEN);
    assert_true(set == (srv_auth_set_t *)(uintptr_t)1); /* untouched on error */
    return rc;
}

static srv_auth_result_t check(const srv_auth_set_t *set, const char *v)
{
    return srv_auth_check(set, v, strlen(v));
}

static void test_auth_file_comments_blanks_crlf_and_whitespace_are_ignored(void **state)
{
    (void)state;
    char msg[SRV_AUTH_MSGLEN];
    srv_auth_set_t *set = parse_ok("# ingest tokens\n\n  " TOK_A "  \r\n\t" TOK_B "\t\n"
                                   "   # indented comment\r\n" TOK_C,
                                   msg);
    assert_string_equal(msg, "");
    assert_int_equal(srv_auth_set_count(set), 3);
    assert_int_equal(check(set, "Bearer " TOK_A), SRV_AUTH_OK);
    assert_int_equal(check(set, "Bearer " TOK_B), SRV_AUTH_OK);
    assert_int_equal(check(set, "Bearer " TOK_C), SRV_AUTH_OK);
    srv_auth_set_unref(set);
}

static void test_auth_file_bad_lines_name_their_line_number(void **state)
{
    (void)state;
    char msg[SRV_AUTH_MSGLEN];
    srv_auth_limits_t lim = lim_default();
    assert_int_equal(parse_err(TOK_A "\n\n" TOK_B " # comment\n", &lim, msg), -EINVAL);
    assert_non_null(strstr(msg, "t:3: whitespace inside a token"));
    assert_int_equal(parse_err("#\n" TOK_A "\n" TOK_A "\"x\n", &lim, msg), -EINVAL);
    assert_non_null(strstr(msg, "t:3: a token may hold only"));
    assert_null(strstr(msg, TOK_A)); /* the token is never quoted */
    assert_int_equal(parse_err(TOK_A "\nshort\n", &lim, msg), -EINVAL);
    assert_non_null(strstr(msg, "t:2: token of 5 bytes is shorter than the minimum of 16"));
    assert_int_equal(parse_err("==" TOK_A "\n", &lim, msg), -EINVAL); /* '=' only at the end */
    assert_non_null(strstr(msg, "t:1:"));
    char nul[] = TOK_A "\n" TOK_B;
    nul[30] = '\0';
    srv_auth_set_t *set = NULL;
    assert_int_equal(srv_auth_set_parse(nul, sizeof(nul) - 1, "t", &lim, &set, msg, sizeof(msg)),
                     -EINVAL);
    assert_non_null(strstr(msg, "t:2: a token may hold only"));
}

static void test_auth_file_limits_are_enforced(void **state)
{
    (void)state;
    char msg[SRV_AUTH_MSGLEN];
    srv_auth_limits_t lim = lim_default();
    lim.max_token_len = 24;
    assert_int_equal(parse_err(TOK_A "\n" TOK_C "\n", &lim, msg), -EINVAL);
    assert_non_null(strstr(msg, "t:2: token longer than the maximum of 24 bytes"));
    lim = lim_default();
    lim.max_tokens = 2;
    assert_int_equal(parse_err(TOK_A "\n" TOK_B "\n#\n" TOK_C "\n", &lim, msg), -EINVAL);
    assert_non_null(strstr(msg, "t:4: more than the maximum of 2 tokens"));
    lim = lim_default();
    lim.max_file_bytes = 30;
    assert_int_equal(parse_err(TOK_A "\n" TOK_B "\n", &lim, msg), -EINVAL);
    assert_non_null(strstr(msg, "larger than the maximum of 30 bytes"));
    lim = lim_default();
    assert_int_equal(parse_err("# only comments\n\n  \n", &lim, msg), -EINVAL);
    assert_non_null(strstr(msg, "no tokens"));
    assert_int_equal(parse_err("", &lim, msg), -EINVAL);
    lim.max_token_len = SRV_AUTH_TOKEN_LEN_CAP + 1;
    assert_int_equal(parse_err(TOK_A, &lim, msg), -EINVAL);
    lim = lim_default();
    lim.min_token_len = lim.max_token_len + 1;
    assert_int_equal(parse_err(TOK_A, &lim, msg), -EINVAL);
}

static void test_auth_file_duplicate_token_warns_and_counts_once(void **state)
{
    (void)state;
    char msg[SRV_AUTH_MSGLEN];
    srv_auth_set_t *set = parse_ok(TOK_A "\n" TOK_B "\n" TOK_A "\n", msg);
    assert_int_equal(srv_auth_set_count(set), 2);
    assert_non_null(strstr(msg, "t:3: duplicate token (ignored)"));
    srv_auth_set_unref(set);
}

static void test_auth_check_good_bad_and_missing(void **state)
{
    (void)state;
    char msg[SRV_AUTH_MSGLEN];
    srv_auth_set_t *set = parse_ok(TOK_A "\n" TOK_B "\n", msg);
    assert_int_equal(check(set, "Bearer " TOK_A), SRV_AUTH_OK);
    assert_int_equal(check(set, "Bearer " TOK_C), SRV_AUTH_DENIED);
    /* One byte off at the start, at the end; a prefix; one byte more. */
    assert_int_equal(check(set, "Bearer baaaaaaaaaaaaaaaaaaaaaaa"), SRV_AUTH_DENIED);
    assert_int_equal(check(set, "Bearer aaaaaaaaaaaaaaaaaaaaaaab"), SRV_AUTH_DENIED);
    assert_int_equal(check(set, "Bearer aaaaaaaaaaaaaaaaaaaaaaa"), SRV_AUTH_DENIED);
    assert_int_equal(check(set, "Bearer " TOK_A "a"), SRV_AUTH_DENIED);
    assert_int_equal(check(set, "Bearer " TOK_B "="), SRV_AUTH_DENIED);
    assert_int_equal(srv_auth_check(set, NULL, 0), SRV_AUTH_MISSING);
    /* A token longer than the set's width (max_token_len) is denied, not overread. */
    char longv[7 + SRV_AUTH_DEFAULT_MAX_TOKEN_LEN + 10 + 1];
    memcpy(longv, "Bearer ", 7);
    memset(longv + 7, 'a', sizeof(longv) - 8);
    longv[sizeof(longv) - 1] = '\0';
    assert_int_equal(check(set, longv), SRV_AUTH_DENIED);
    /* The value's length is what counts, not a NUL. */
    const char *v = "Bearer " TOK_A "zzz";
    assert_int_equal(srv_auth_check(set, v, strlen(v) - 3), SRV_AUTH_OK);
    srv_auth_set_unref(set);
    /* No set: fail closed. */
    assert_int_equal(check(NULL, "Bearer " TOK_A), SRV_AUTH_DENIED);
}

static void test_auth_check_scheme_is_case_insensitive_and_whitespace_tolerated(void **state)
{
    (void)state;
    char msg[SRV_AUTH_MSGLEN];
    srv_auth_set_t *set = parse_ok(TOK_A "\n", msg);
    assert_int_equal(check(set, "bearer " TOK_A), SRV_AUTH_OK);
    assert_int_equal(check(set, "BEARER " TOK_A), SRV_AUTH_OK);
    assert_int_equal(check(set, "BeArEr " TOK_A), SRV_AUTH_OK);
    assert_int_equal(check(set, "  Bearer \t  " TOK_A " \t"), SRV_AUTH_OK);
    assert_int_equal(check(set, "Bearer\t" TOK_A), SRV_AUTH_OK);
    srv_auth_set_unref(set);
}

static void test_auth_check_wrong_scheme_or_syntax_is_malformed(void **state)
{
    (void)state;
    char msg[SRV_AUTH_MSGLEN];
    srv_auth_set_t *set = parse_ok(TOK_A "\n", msg);
    static const char *bad[] = {
        "",
        "   ",
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "Bearer" TOK_A,
        "Basic " TOK_A,
        "Bearerx " TOK_A,
        "Beare " TOK_A,
        "Token " TOK_A,
        "Bearer " TOK_A " " TOK_A,
        "Bearer " TOK_A ",",
        "Bearer \"" TOK_A "\"",
        "Bearer =" TOK_A,
        "Bearer " TOK_A "=a",
        "Bearer realm=\"x\"",
        "Bearer " TOK_A "\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (check(set, bad[i]) != SRV_AUTH_MALFORMED) {
            fail_msg("\"%s\" should be malformed", bad[i]);
        }
    }
    srv_auth_set_unref(set);
}

static void test_auth_check_many_tokens_each_matches(void **state)
{
    (void)state;
    enum { N = SRV_AUTH_DEFAULT_MAX_TOKENS };
    char *text = malloc(N * 64);
    size_t len = 0;
    for (int i = 0; i < N; i++) {
        len += (size_t)sprintf(text + len, "token-%04d-%0*d\n", i, 10 + i % 20, i);
    }
    srv_auth_limits_t lim = lim_default();
    srv_auth_set_t *set = NULL;
    char msg[SRV_AUTH_MSGLEN];
    assert_int_equal(srv_auth_set_parse(text, len, "t", &lim, &set, msg, sizeof(msg)), 0);
    assert_int_equal(srv_auth_set_count(set), N);
    char v[80];
    for (int i = 0; i < N; i++) {
        snprintf(v, sizeof(v), "Bearer token-%04d-%0*d", i, 10 + i % 20, i);
        assert_int_equal(check(set, v), SRV_AUTH_OK);
        /* The same token with the other length is not in the set. */
        snprintf(v, sizeof(v), "Bearer token-%04d-%0*d", i, 11 + i % 20, i);
        assert_int_equal(check(set, v), SRV_AUTH_DENIED);
    }
    srv_auth_set_unref(set);
    free(text);
}

static void test_auth_challenge_names_the_error(void **state)
{
    (void)state;
    char buf[128];
    assert_int_equal(srv_auth_challenge(SRV_AUTH_MISSING, "ingestd", buf, sizeof(buf)),
                     strlen("Bearer realm=\"ingestd\""));
    assert_string_equal(buf, "Bearer realm=\"ingestd\"");
    srv_auth_challenge(SRV_AUTH_DENIED, "ingestd", buf, sizeof(buf));
    assert_string_equal(buf, "Bearer realm=\"ingestd\", error=\"invalid_token\"");
    srv_auth_challenge(SRV_AUTH_MALFORMED, "ingestd", buf, sizeof(buf));
    assert_string_equal(buf, "Bearer realm=\"ingestd\", error=\"invalid_request\"");
    assert_string_equal(srv_auth_result_name(SRV_AUTH_DENIED), "denied");
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_auth_load_reads_file_and_warns_when_world_readable(void **state)
{
    (void)state;
    char dir[] = "/tmp/ingestd-auth-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/tokens", dir);
    srv_auth_limits_t lim = lim_default();
    char msg[SRV_AUTH_MSGLEN];
    srv_auth_set_t *set = NULL;

    write_file(path, "# a\n" TOK_A "\n", 0600);
    assert_int_equal(srv_auth_set_load(path, &lim, &set, msg, sizeof(msg)), 0);
    assert_string_equal(msg, "");
    assert_int_equal(check(set, "Bearer " TOK_A), SRV_AUTH_OK);
    srv_auth_set_unref(set);

    write_file(path, TOK_A "\n" TOK_A "\n", 0644);
    assert_int_equal(srv_auth_set_load(path, &lim, &set, msg, sizeof(msg)), 0);
    assert_non_null(strstr(msg, "duplicate token"));
    assert_non_null(strstr(msg, "readable or writable by every user (mode 0644); chmod 600"));
    srv_auth_set_unref(set);

    write_file(path, TOK_A "\nbad token\n", 0600);
    assert_int_equal(srv_auth_set_load(path, &lim, &set, msg, sizeof(msg)), -EINVAL);
    char want[160];
    snprintf(want, sizeof(want), "%s:2: whitespace inside a token", path);
    assert_non_null(strstr(msg, want));

    lim.max_file_bytes = 10;
    assert_int_equal(srv_auth_set_load(path, &lim, &set, msg, sizeof(msg)), -EINVAL);
    assert_non_null(strstr(msg, "larger than the maximum of 10 bytes"));
    lim = lim_default();

    assert_int_equal(srv_auth_set_load(dir, &lim, &set, msg, sizeof(msg)), -EINVAL);
    assert_non_null(strstr(msg, "not a regular file"));
    unlink(path);
    assert_int_equal(srv_auth_set_load(path, &lim, &set, msg, sizeof(msg)), -ENOENT);
    assert_non_null(strstr(msg, "No such file"));
    rmdir(dir);
}

static void test_auth_reload_swaps_set_and_old_one_lives_while_read(void **state)
{
    (void)state;
    mem_stats_t before, after;
    mem_stats(&before);
    char msg[SRV_AUTH_MSGLEN];
    srv_auth_slot_t *slot = NULL;
    assert_int_equal(srv_auth_slot_create(parse_ok(TOK_A "\n", msg), &slot), 0);
    srv_auth_reader_t r1, r2;
    srv_auth_reader_init(&r1);
    srv_auth_reader_init(&r2);
    const srv_auth_set_t *s1 = srv_auth_reader_current(&r1, slot);
    assert_int_equal(check(s1, "Bearer " TOK_A), SRV_AUTH_OK);
    assert_int_equal(check(srv_auth_reader_current(&r2, slot), "Bearer " TOK_A), SRV_AUTH_OK);

    /* Reload: B replaces A. r1 has not looked again: its borrowed set is still A and valid. */
    srv_auth_slot_publish(slot, parse_ok(TOK_B "\n", msg));
    assert_int_equal(srv_auth_slot_generation(slot), 1);
    assert_int_equal(check(s1, "Bearer " TOK_A), SRV_AUTH_OK);
    const srv_auth_set_t *s2 = srv_auth_reader_current(&r2, slot);
    assert_int_equal(check(s2, "Bearer " TOK_A), SRV_AUTH_DENIED);
    assert_int_equal(check(s2, "Bearer " TOK_B), SRV_AUTH_OK);
    /* r1 moves on at its next call; set A is freed then (ASan would see a use after). */
    s1 = srv_auth_reader_current(&r1, slot);
    assert_ptr_equal(s1, s2);
    assert_int_equal(check(s1, "Bearer " TOK_B), SRV_AUTH_OK);

    srv_auth_set_t *held = srv_auth_slot_get(slot);
    srv_auth_slot_publish(slot, NULL);
    assert_null(srv_auth_reader_current(&r1, slot));
    assert_int_equal(check(held, "Bearer " TOK_B), SRV_AUTH_OK);
    srv_auth_set_unref(held);

    srv_auth_reader_close(&r1);
    srv_auth_reader_close(&r2);
    srv_auth_slot_destroy(slot);
    mem_stats(&after);
    assert_int_equal(after.alloc_bytes, before.alloc_bytes);
    assert_int_equal(after.mallocs - before.mallocs, after.frees - before.frees);
}

/* Readers on threads check while the main thread reloads: A is in every set, B in every other
 * one, C in none. ASan/TSan builds catch a freed set being read. */
typedef struct {
    srv_auth_slot_t *slot;
    atomic_int stop;
    atomic_long checks;
    atomic_int wrong;
} race_t;

static void *reader_main(void *arg)
{
    race_t *rc = arg;
    srv_auth_reader_t r;
    srv_auth_reader_init(&r);
    while (!atomic_load(&rc->stop)) {
        const srv_auth_set_t *set = srv_auth_reader_current(&r, rc->slot);
        if (check(set, "Bearer " TOK_A) != SRV_AUTH_OK ||
            check(set, "Bearer " TOK_C) != SRV_AUTH_DENIED) {
            atomic_fetch_add(&rc->wrong, 1);
        }
        (void)check(set, "Bearer " TOK_B);
        atomic_fetch_add(&rc->checks, 1);
    }
    srv_auth_reader_close(&r);
    return NULL;
}

static void test_auth_reload_under_reader_threads_never_shows_a_freed_set(void **state)
{
    (void)state;
    char msg[SRV_AUTH_MSGLEN];
    race_t rc = {0};
    assert_int_equal(srv_auth_slot_create(parse_ok(TOK_A "\n", msg), &rc.slot), 0);
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, reader_main, &rc), 0);
    }
    for (int i = 0; i < 2000; i++) {
        srv_auth_slot_publish(rc.slot,
                              parse_ok(i % 2 != 0 ? TOK_A "\n" : TOK_B "\n" TOK_A "\n", msg));
        if (i % 64 == 0) {
            sched_yield();
        }
    }
    while (atomic_load(&rc.checks) < 1000) {
        sched_yield();
    }
    atomic_store(&rc.stop, 1);
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
    }
    assert_int_equal(atomic_load(&rc.wrong), 0);
    assert_int_equal(srv_auth_slot_generation(rc.slot), 2000);
    srv_auth_slot_destroy(rc.slot);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth_file_comments_blanks_crlf_and_whitespace_are_ignored),
        cmocka_unit_test(test_auth_file_bad_lines_name_their_line_number),
        cmocka_unit_test(test_auth_file_limits_are_enforced),
        cmocka_unit_test(test_auth_file_duplicate_token_warns_and_counts_once),
        cmocka_unit_test(test_auth_check_good_bad_and_missing),
        cmocka_unit_test(test_auth_check_scheme_is_case_insensitive_and_whitespace_tolerated),
        cmocka_unit_test(test_auth_check_wrong_scheme_or_syntax_is_malformed),
        cmocka_unit_test(test_auth_check_many_tokens_each_matches),
        cmocka_unit_test(test_auth_challenge_names_the_error),
        cmocka_unit_test(test_auth_load_reads_file_and_warns_when_world_readable),
        cmocka_unit_test(test_auth_reload_swaps_set_and_old_one_lives_while_read),
        cmocka_unit_test(test_auth_reload_under_reader_threads_never_shows_a_freed_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
