/* test_auth_ct.c - the constant-time property of srv_auth_check, checked the ctgrind way: the
 * stored tokens and their lengths are marked undefined for valgrind's memcheck, so any branch or
 * memory index that depends on them is reported (ctest runs this under valgrind with
 * --error-exitcode). Built from auth.c itself to reach the set's insides. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>
#include <valgrind/memcheck.h>

#include "server/auth.c"

static srv_auth_result_t check_secret(srv_auth_set_t *set, const char *v)
{
    VALGRIND_MAKE_MEM_UNDEFINED(set->tokens, set->n * set->width);
    VALGRIND_MAKE_MEM_UNDEFINED(set->lens, set->n * sizeof(size_t));
    srv_auth_result_t r = srv_auth_check(set, v, strlen(v));
    VALGRIND_MAKE_MEM_DEFINED(&r, sizeof(r));
    VALGRIND_MAKE_MEM_DEFINED(set->tokens, set->n * set->width);
    VALGRIND_MAKE_MEM_DEFINED(set->lens, set->n * sizeof(size_t));
    return r;
}

static void test_auth_check_does_not_branch_on_token_bytes_or_lengths(void **state)
{
    (void)state;
    static const char text[] = "0123456789abcdef0123\n"
                               "zyxwvutsrqponmlkjihgfedcba\n"
                               "0123456789abcdef0123456789abcdef\n";
    srv_auth_limits_t lim;
    srv_auth_limits_default(&lim);
    srv_auth_set_t *set = NULL;
    assert_int_equal(srv_auth_set_parse(text, sizeof(text) - 1, "t", &lim, &set, NULL, 0), 0);
    /* Match on the first, the last; differ at the first byte, the last, by length only. */
    assert_int_equal(check_secret(set, "Bearer 0123456789abcdef0123"), SRV_AUTH_OK);
    assert_int_equal(check_secret(set, "Bearer 0123456789abcdef0123456789abcdef"), SRV_AUTH_OK);
    assert_int_equal(check_secret(set, "Bearer X123456789abcdef0123"), SRV_AUTH_DENIED);
    assert_int_equal(check_secret(set, "Bearer 0123456789abcdef012X"), SRV_AUTH_DENIED);
    assert_int_equal(check_secret(set, "Bearer 0123456789abcdef012"), SRV_AUTH_DENIED);
    assert_int_equal(check_secret(set, "bearer zyxwvutsrqponmlkjihgfedcba"), SRV_AUTH_OK);
    srv_auth_set_unref(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth_check_does_not_branch_on_token_bytes_or_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
