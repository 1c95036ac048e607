/* test_types.c - unit tests for the per-worker type table and its merge (ingest/types.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/types.h"

static void count(ing_types_t *t, const char *name)
{
    ing_types_count(t, name, strlen(name));
}

static void test_types_counts_each_name_in_its_own_slot(void **state)
{
    (void)state;
    ing_types_t *t = calloc(1, sizeof(*t));
    count(t, "click");
    count(t, "view");
    count(t, "click");
    ing_types_count(t, "clicks", 5); /* a slice: "click" */
    assert_int_equal(ing_types_len(t), 2);
    assert_string_equal(ing_types_name(t, 0), "click");
    assert_int_equal(ing_types_total(t, 0), 3);
    assert_string_equal(ing_types_name(t, 1), "view");
    assert_int_equal(ing_types_total(t, 1), 1);
    assert_int_equal(ing_types_other(t), 0);
    free(t);
}

static void test_types_table_is_bounded_and_overflows_into_other(void **state)
{
    (void)state;
    ing_types_t *t = calloc(1, sizeof(*t));
    char name[32];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < ING_TYPES_MAX + 10; i++) {
            snprintf(name, sizeof(name), "t%d", i);
            count(t, name);
        }
    }
    assert_int_equal(ing_types_len(t), ING_TYPES_MAX);
    for (uint32_t i = 0; i < ING_TYPES_MAX; i++) {
        snprintf(name, sizeof(name), "t%u", i);
        assert_string_equal(ing_types_name(t, i), name);
        assert_int_equal(ing_types_total(t, i), 2);
    }
    assert_int_equal(ing_types_other(t), 20);
    free(t);
}

static void test_types_keeps_names_of_the_longest_length(void **state)
{
    (void)state;
    ing_types_t *t = calloc(1, sizeof(*t));
    char name[ING_TYPE_MAX + 1];
    memset(name, 'x', ING_TYPE_MAX);
    name[ING_TYPE_MAX] = '\0';
    count(t, name);
    count(t, name);
    assert_int_equal(ing_types_len(t), 1);
    assert_string_equal(ing_types_name(t, 0), name);
    assert_int_equal(ing_types_total(t, 0), 2);
    free(t);
}

static void test_types_merge_sums_names_over_tables_and_folds_overflow(void **state)
{
    (void)state;
    ing_types_t *a = calloc(1, sizeof(*a));
    ing_types_t *b = calloc(1, sizeof(*b));
    char name[32];
    count(a, "click");
    count(a, "view");
    count(b, "view");
    count(b, "buy");
    count(b, "view");
    for (int i = 0; i < ING_TYPES_MAX + 3; i++) { /* b: 3 more names overflow */
        snprintf(name, sizeof(name), "n%d", i);
        count(b, name);
    }
    const ing_types_t *tables[] = {a, b};
    ing_type_count_t *out = calloc(ING_TYPES_MERGE_MAX(2), sizeof(*out));
    size_t n = ing_types_merge(tables, 2, out);
    /* click, view, buy, then the 62 n* names of b that got slots, then _other. */
    assert_int_equal(n, 3 + (ING_TYPES_MAX - 2) + 1);
    assert_string_equal(out[0].type, "click");
    assert_int_equal(out[0].count, 1);
    assert_string_equal(out[1].type, "view");
    assert_int_equal(out[1].count, 3);
    assert_string_equal(out[2].type, "buy");
    assert_int_equal(out[2].count, 1);
    assert_string_equal(out[n - 1].type, ING_TYPE_OTHER);
    assert_int_equal(out[n - 1].count, 5); /* n62..n66 */
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum += out[i].count;
    }
    assert_int_equal(sum, 5 + ING_TYPES_MAX + 3);
    free(out);
    free(a);
    free(b);
}

static void test_types_merge_of_empty_tables_is_empty(void **state)
{
    (void)state;
    ing_types_t *a = calloc(1, sizeof(*a));
    const ing_types_t *tables[] = {a};
    ing_type_count_t out[ING_TYPES_MERGE_MAX(1)];
    assert_int_equal(ing_types_merge(tables, 1, out), 0);
    assert_int_equal(ing_types_merge(tables, 0, out), 0);
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types_counts_each_name_in_its_own_slot),
        cmocka_unit_test(test_types_table_is_bounded_and_overflows_into_other),
        cmocka_unit_test(test_types_keeps_names_of_the_longest_length),
        cmocka_unit_test(test_types_merge_sums_names_over_tables_and_folds_overflow),
        cmocka_unit_test(test_types_merge_of_empty_tables_is_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
