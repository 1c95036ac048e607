/* test_modes.c - `loadgen compare --modes`: the POOL+ALLOCATOR[+PARSE] names (loadgen/compare.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "lg_compare.h"

static void test_two_part_names_pass_no_parse_flag(void **state)
{
    lg_mode_t m;
    (void)state;
    assert_int_equal(lg_mode_parse("pooled+mimalloc", &m), 0);
    assert_true(m.pool);
    assert_string_equal(m.allocator, "mimalloc");
    assert_string_equal(m.parse, "");
    assert_string_equal(m.name, "pool+mimalloc");
    assert_int_equal(lg_mode_parse("off+libc", &m), 0);
    assert_false(m.pool);
    assert_string_equal(m.name, "naive+libc");
}

static void test_three_part_names_carry_the_parse_strategy(void **state)
{
    lg_mode_t m;
    (void)state;
    assert_int_equal(lg_mode_parse("pool+libc+scan", &m), 0);
    assert_true(m.pool);
    assert_string_equal(m.allocator, "libc");
    assert_string_equal(m.parse, "scan");
    assert_string_equal(m.name, "pool+libc+scan");
    assert_int_equal(lg_mode_parse("naive+mimalloc+tree", &m), 0);
    assert_string_equal(m.parse, "tree");
    assert_string_equal(m.name, "naive+mimalloc+tree");
}

static void test_bad_names_are_refused(void **state)
{
    lg_mode_t m;
    (void)state;
    const char *bad[] = {"pool",           "pool+",           "pool+glibc",    "pool+libc+",
                         "pool+libc+fast", "pool+libcx+tree", "big+libc+scan", "pool+libc+scan+x",
                         "+libc"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (lg_mode_parse(bad[i], &m) != -EINVAL) {
            fail_msg("%s was accepted", bad[i]);
        }
    }
}

static void test_the_default_list_has_both_axes(void **state)
{
    lg_compare_config_t cfg;
    (void)state;
    lg_compare_config_default(&cfg);
    assert_int_equal(cfg.nmodes, 4);
    assert_string_equal(cfg.modes[0].name, "naive+libc+tree");
    assert_string_equal(cfg.modes[1].name, "pool+libc+tree");
    assert_string_equal(cfg.modes[3].name, "pool+libc+scan");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_part_names_pass_no_parse_flag),
        cmocka_unit_test(test_three_part_names_carry_the_parse_strategy),
        cmocka_unit_test(test_bad_names_are_refused),
        cmocka_unit_test(test_the_default_list_has_both_axes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
