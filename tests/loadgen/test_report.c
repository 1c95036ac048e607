/* test_report.c - the compare report on synthetic results: statistics, "within noise", ratios,
 * the verdict sentence, precision from the CPU tick, colours by name, escaping, >= 6 modes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg_report.h"
#include "report_fixture.h"

/* A result with the given mode names, repeat runs, CPU per event per mode (repeat values each),
 * events/s 1e5 for every run and a CPU resolution of res. */
static void make(lg_compare_result_t *r, unsigned nmodes, unsigned repeat, const char *const *names,
                 const double *cpu, double res)
{
    assert_int_equal(lg_result_init(r, nmodes, repeat), 0);
    r->events_per_run = 150000;
    r->env.tick_s = 0.01;
    snprintf(r->transport, sizeof(r->transport), "tcp");
    for (unsigned i = 0; i < nmodes; i++) {
        lg_result_set_mode(r, i, names[i]);
        lgt_set_runs(r, i, LG_FIG_CPU, cpu + (size_t)i * repeat);
        for (unsigned k = 0; k < repeat; k++) {
            r->runs[(size_t)k * nmodes + i].fig[LG_FIG_EPS] = 1e5;
            r->runs[(size_t)k * nmodes + i].cpu_res_us = res;
        }
    }
}

/* Everything f writes, as a new string. */
static char *capture_html(const lg_compare_result_t *r)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(lg_report_write_html(f, r), 0);
    fclose(f);
    return buf;
}

static char *capture_table(const lg_compare_result_t *r)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    lg_report_print(f, r);
    fclose(f);
    return buf;
}

/* noinline: inlined into a caller, gcc 12 -O2 takes hay for the address of a memstream's
 * local buffer pointer and warns of a dangling pointer (-Wdangling-pointer false positive). */
__attribute__((noinline)) static size_t count(const char *hay, const char *needle)
{
    size_t n = 0, at = 0, len = strlen(needle);
    for (const char *p; (p = strstr(hay + at, needle)) != NULL; at = (size_t)(p - hay) + len) {
        n++;
    }
    return n;
}

static const char *const two[] = {"naive+libc", "pool+libc"};
static const char *const three[] = {"naive+libc", "pool+libc", "pool+mimalloc"};

static void test_stat_gives_median_min_max_and_skips_nan(void **state)
{
    (void)state;
    lg_compare_result_t r;
    const double cpu[] = {3.0, NAN, 2.0, 9.0, 1.0, 5.0, 4.0, 3.0};
    make(&r, 2, 4, two, cpu, 0.04);
    lg_stat_t s;
    lg_report_stat(&r, 0, LG_FIG_CPU, &s);
    assert_int_equal(s.n, 3);
    assert_true(s.median == 3.0 && s.min == 2.0 && s.max == 9.0);
    assert_true(fabs(s.spread - 7.0 / 3.0) < 1e-12);
    assert_true(s.res == 0.04);
    lg_report_stat(&r, 1, LG_FIG_CPU, &s);
    assert_int_equal(s.n, 4);
    assert_true(s.median == 3.5); /* even count: mean of the middle two */
    lg_report_stat(&r, 1, LG_FIG_HIT, &s);
    assert_int_equal(s.n, 0);
    assert_true(isnan(s.median));
    lg_result_free(&r);
}

static void test_within_noise_when_run_ranges_overlap(void **state)
{
    (void)state;
    lg_stat_t a = {.n = 3, .median = 2.9, .min = 2.8, .max = 3.0};
    lg_stat_t b = {.n = 3, .median = 2.1, .min = 2.0, .max = 2.2};
    assert_false(lg_report_within_noise(&a, &b));
    assert_false(lg_report_within_noise(&b, &a));
    b.max = 2.8; /* touching ends overlap */
    assert_true(lg_report_within_noise(&a, &b));
    b.max = 2.7;
    assert_false(lg_report_within_noise(&a, &b));
    a.res = b.res = 0.05; /* each widened by its resolution: 2.75 <= 2.75 */
    assert_true(lg_report_within_noise(&a, &b));
    /* One run each: only a difference inside the resolutions is noise. */
    lg_stat_t c = {.n = 1, .median = 1.00, .min = 1.00, .max = 1.00, .res = 0.04};
    lg_stat_t d = {.n = 1, .median = 1.07, .min = 1.07, .max = 1.07, .res = 0.04};
    assert_true(lg_report_within_noise(&c, &d));
    d.min = d.max = d.median = 1.09;
    assert_false(lg_report_within_noise(&c, &d));
    /* Nothing measured cannot be told apart. */
    lg_stat_t none = {.n = 0, .median = NAN, .min = NAN, .max = NAN};
    assert_true(lg_report_within_noise(&none, &c));
}

static void test_one_allocation_per_run_is_within_noise(void **state)
{
    (void)state;
    lg_compare_result_t r;
    const double cpu[] = {3, 3, 2, 2};
    make(&r, 2, 2, two, cpu, 0.1);
    r.events_per_run = 100000;
    const double a0[] = {106.11254, 106.11254}, a1[] = {106.11255, 106.11255};
    lgt_set_runs(&r, 0, LG_FIG_ALLOCS, a0);
    lgt_set_runs(&r, 1, LG_FIG_ALLOCS, a1);
    lg_stat_t s0, s1;
    lg_report_stat(&r, 0, LG_FIG_ALLOCS, &s0);
    lg_report_stat(&r, 1, LG_FIG_ALLOCS, &s1);
    assert_true(s0.res == 1e-5);
    assert_true(lg_report_within_noise(&s0, &s1));
    const double a2[] = {106.1130, 106.1131};
    lgt_set_runs(&r, 1, LG_FIG_ALLOCS, a2);
    lg_report_stat(&r, 1, LG_FIG_ALLOCS, &s1);
    assert_false(lg_report_within_noise(&s0, &s1));
    lg_result_free(&r);
}

static void test_ratio_is_median_over_median(void **state)
{
    (void)state;
    lg_stat_t a = {.n = 3, .median = 2.1}, b = {.n = 3, .median = 2.9}, z = {.n = 1, .median = 0};
    assert_true(fabs(lg_report_ratio(&a, &b) - 2.1 / 2.9) < 1e-12);
    assert_true(isnan(lg_report_ratio(&a, &z)));
    lg_stat_t none = {.n = 0, .median = NAN};
    assert_true(isnan(lg_report_ratio(&none, &b)));
}

static void test_verdict_names_the_best_mode_its_ratio_and_the_noise(void **state)
{
    (void)state;
    lg_compare_result_t r;
    const double cpu[] = {2.8, 2.9, 3.0, 2.0, 2.1, 2.2, 2.15, 2.3, 2.1};
    make(&r, 3, 3, three, cpu, 0.0067);
    char buf[512];
    lg_report_verdict(&r, buf, sizeof(buf));
    assert_string_equal(buf, "pool+libc uses 0.72x the CPU per event of naive+libc, outside the "
                             "run-to-run spread; pool+mimalloc is within noise of pool+libc.");
    lg_result_free(&r);
}

static void test_verdict_lists_every_mode_within_noise_of_the_best(void **state)
{
    (void)state;
    lg_compare_result_t r;
    const char *const four[] = {"naive+libc", "pool+libc", "pool+mimalloc", "x"};
    const double cpu[] = {3, 3, 3, 2.0, 2.1, 2.2, 2.1, 2.2, 2.3, 2.15, 2.2, 2.25};
    make(&r, 4, 3, four, cpu, 0.0067);
    char buf[512];
    lg_report_verdict(&r, buf, sizeof(buf));
    assert_string_equal(buf, "pool+libc uses 0.70x the CPU per event of naive+libc, outside the "
                             "run-to-run spread; pool+mimalloc and x are within noise of "
                             "pool+libc.");
    lg_result_free(&r);
}

static void test_verdict_says_within_spread_when_the_runs_overlap(void **state)
{
    (void)state;
    lg_compare_result_t r;
    const double cpu[] = {2.8, 2.9, 3.4, 2.6, 2.85, 2.9};
    make(&r, 2, 3, two, cpu, 0.0067);
    char buf[512];
    lg_report_verdict(&r, buf, sizeof(buf));
    assert_string_equal(buf, "pool+libc uses 0.98x the CPU per event of naive+libc, within the "
                             "run-to-run spread (their runs overlap).");
    lg_result_free(&r);
}

static void test_verdict_when_the_baseline_is_best(void **state)
{
    (void)state;
    lg_compare_result_t r;
    const double cpu[] = {2.0, 2.1, 2.2, 3.0, 3.1, 3.2};
    make(&r, 2, 3, two, cpu, 0.0067);
    char buf[512];
    lg_report_verdict(&r, buf, sizeof(buf));
    assert_string_equal(buf, "naive+libc has the best CPU per event of these modes; the closest, "
                             "pool+libc, has 1.48x as much, outside the run-to-run spread.");
    lg_result_free(&r);
}

static void test_verdict_from_one_run_each_says_the_spread_is_unknown(void **state)
{
    (void)state;
    lg_compare_result_t r;
    const double cpu[] = {3.0, 2.0};
    make(&r, 2, 1, two, cpu, 0.04);
    char buf[512];
    lg_report_verdict(&r, buf, sizeof(buf));
    assert_string_equal(buf, "pool+libc uses 0.67x the CPU per event of naive+libc, from one run "
                             "each, so the run-to-run spread is unknown.");
    lg_result_free(&r);
}

static void test_verdict_uses_throughput_without_cpu(void **state)
{
    (void)state;
    lg_compare_result_t r;
    const double cpu[] = {NAN, NAN, NAN, NAN};
    make(&r, 2, 2, two, cpu, NAN);
    const double eps0[] = {100, 110}, eps1[] = {150, 160};
    lgt_set_runs(&r, 0, LG_FIG_EPS, eps0);
    lgt_set_runs(&r, 1, LG_FIG_EPS, eps1);
    char buf[512];
    lg_report_verdict(&r, buf, sizeof(buf));
    assert_string_equal(buf, "pool+libc handles 1.48x the throughput (events/s) of naive+libc, "
                             "outside the run-to-run spread.");
    lg_result_free(&r);
}

static void test_decimals_follow_the_resolution(void **state)
{
    (void)state;
    assert_int_equal(lg_report_decimals(0.01 * 1e6 / 150000), 2); /* 0.0667 */
    assert_int_equal(lg_report_decimals(0.04), 2);
    assert_int_equal(lg_report_decimals(0.2), 1);
    assert_int_equal(lg_report_decimals(0.1), 1);
    assert_int_equal(lg_report_decimals(0.5), 1);
    assert_int_equal(lg_report_decimals(1.0), 0);
    assert_int_equal(lg_report_decimals(2.5), 0);
    assert_int_equal(lg_report_decimals(0.001), 3);
    assert_int_equal(lg_report_decimals(0.00067), 4);
    assert_int_equal(lg_report_decimals(NAN), 3);
    assert_int_equal(lg_report_decimals(0), 3);
}

static void test_cpu_is_printed_to_its_precision_and_json_keeps_it_all(void **state)
{
    (void)state;
    lg_compare_result_t r;
    const double res = 0.01 * 1e6 / 150000;
    const double cpu[] = {2.81234, 2.81234, 2.81234, 2.0, 2.0, 2.0};
    make(&r, 2, 3, two, cpu, res);
    char *t = capture_table(&r);
    assert_non_null(strstr(t, " 2.81 "));
    assert_null(strstr(t, "2.812"));
    assert_non_null(strstr(t, "resolution: 0.0667 us"));
    assert_non_null(strstr(t, "shown to 2 decimals"));
    free(t);
    char *h = capture_html(&r);
    assert_non_null(strstr(h, ">2.81<"));
    assert_null(strstr(h, "2.812"));
    assert_non_null(strstr(h, "id=\"precision\""));
    free(h);
    json_t *j = lg_report_json(&r);
    json_t *m = json_array_get(json_object_get(j, "modes"), 0);
    assert_true(json_real_value(
                    json_object_get(json_object_get(m, "median"), "cpu_us_per_event")) == 2.81234);
    assert_true(fabs(json_real_value(json_object_get(m, "cpu_us_per_event_resolution")) - res) <
                1e-12);
    json_t *run0 = json_array_get(json_object_get(m, "runs"), 0);
    assert_true(fabs(json_real_value(json_object_get(run0, "cpu_us_per_event_resolution")) - res) <
                1e-12);
    json_decref(j);
    lg_result_free(&r);
}

static void test_nice_steps_are_one_two_five(void **state)
{
    (void)state;
    assert_true(lg_report_nice_step(10, 5) == 2);
    assert_true(lg_report_nice_step(21.6, 5) == 5);
    assert_true(fabs(lg_report_nice_step(1.6, 4) - 0.5) < 1e-12);
    assert_true(lg_report_nice_step(128000, 5) == 50000);
    assert_true(fabs(lg_report_nice_step(0.3, 4) - 0.1) < 1e-12);
    assert_true(lg_report_nice_step(0, 4) == 1);
}

/* The fill of the first bar after data-mode="name" in html. */
static void bar_color_after(const char *html, const char *name, char *out, size_t n)
{
    char key[128];
    snprintf(key, sizeof(key), "data-mode=\"%s\"", name);
    const char *p = strstr(html, key);
    assert_non_null(p);
    p = strstr(p, "fill=\"");
    assert_non_null(p);
    snprintf(out, n, "%.7s", p + 6);
}

static void test_colour_is_fixed_by_name_not_position(void **state)
{
    (void)state;
    assert_string_equal(lg_report_color("naive+libc"), "#d62728");
    assert_string_equal(lg_report_color("pool+libc"), "#1f77b4");
    assert_string_equal(lg_report_color("pool+libc+tree"), lg_report_color("pool+libc"));
    assert_string_not_equal(lg_report_color("pool+libc+scan"), lg_report_color("pool+libc"));
    const char *odd = lg_report_color("some-new-mode");
    assert_int_equal(strlen(odd), 7);
    assert_string_equal(odd, lg_report_color("some-new-mode"));
    /* The known modes all differ. */
    for (unsigned i = 0; i < 8; i++) {
        for (unsigned j = i + 1; j < 8; j++) {
            assert_string_not_equal(lg_report_color(lgt_mode_names[i]),
                                    lg_report_color(lgt_mode_names[j]));
        }
    }
    /* The same mode in another position of another report keeps its colour. */
    const char *const ab[] = {"naive+libc", "pool+mimalloc"}, *const ba[] = {"pool+mimalloc",
                                                                             "naive+libc"};
    const double cpu[] = {3, 3, 2, 2};
    lg_compare_result_t r1, r2;
    make(&r1, 2, 2, ab, cpu, 0.04);
    make(&r2, 2, 2, ba, cpu, 0.04);
    char *h1 = capture_html(&r1), *h2 = capture_html(&r2);
    char c1[8], c2[8];
    bar_color_after(h1, "pool+mimalloc", c1, sizeof(c1));
    bar_color_after(h2, "pool+mimalloc", c2, sizeof(c2));
    assert_string_equal(c1, c2);
    assert_string_equal(c1, lg_report_color("pool+mimalloc"));
    free(h1);
    free(h2);
    lg_result_free(&r1);
    lg_result_free(&r2);
}

static void test_html_escapes_argv_and_mode_names(void **state)
{
    (void)state;
    lg_compare_result_t r;
    const char *const names[] = {"naive+libc", "odd<b>&\"mode'"};
    const double cpu[] = {3, 2};
    make(&r, 2, 1, names, cpu, 0.04);
    char *argv[] = {"loadgen", "compare", "--server-arg", "<script>alert(1)</script>", "a&b"};
    assert_int_equal(lg_result_set_argv(&r, 5, argv), 0);
    char *h = capture_html(&r);
    assert_null(strstr(h, "<script"));
    assert_null(strstr(h, "<b>&"));
    /* shell-quoted, then escaped */
    assert_non_null(strstr(h, "&#39;&lt;script&gt;alert(1)&lt;/script&gt;&#39; &#39;a&amp;b&#39;"));
    assert_non_null(strstr(h, "odd&lt;b&gt;&amp;&quot;mode&#39;"));
    free(h);
    lg_result_free(&r);
}

static void test_argv_is_kept_verbatim_and_shell_quoted(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    char *argv[] = {"loadgen", "--pin", "0,1", "--server-arg", "--sink=file:/tmp/a b", "it's", ""};
    lg_report_shell_line(f, 7, argv);
    fclose(f);
    assert_string_equal(buf, "loadgen --pin 0,1 --server-arg '--sink=file:/tmp/a b' 'it'\\''s' ''");
    free(buf);
    lg_compare_result_t r;
    const double cpu[] = {3, 2};
    make(&r, 2, 1, two, cpu, 0.04);
    assert_int_equal(lg_result_set_argv(&r, 3, argv), 0);
    json_t *j = lg_report_json(&r);
    json_t *ja = json_object_get(j, "argv");
    assert_int_equal(json_array_size(ja), 3);
    assert_string_equal(json_string_value(json_array_get(ja, 2)), "0,1");
    assert_string_equal(json_string_value(json_object_get(j, "command")), "loadgen --pin 0,1");
    json_decref(j);
    lg_result_free(&r);
}

static void test_report_is_whole_with_eight_modes_of_three_parts(void **state)
{
    (void)state;
    lg_compare_result_t r;
    assert_int_equal(lgt_synthetic(&r, 8, 5), 0);
    char *h = capture_html(&r);
    for (unsigned i = 0; i < 8; i++) {
        char key[96];
        snprintf(key, sizeof(key), "data-mode=\"%s\"", lgt_mode_names[i]);
        /* four figure charts and one RSS panel each */
        assert_int_equal(count(h, key), 5);
    }
    assert_int_equal(count(h, "class=\"run\""), 4 * 8 * 5);
    assert_int_equal(count(h, "<svg "), 4 + 8);
    /* ratios are text too: the pooled allocations ratio is "<0.01x" */
    assert_non_null(strstr(h, ">&lt;0.01x<"));
    assert_null(strstr(h, "<0.01x"));
    assert_non_null(strstr(h, "Environment"));
    assert_non_null(strstr(h, "Synthetic CPU"));
    assert_non_null(strstr(h, "server on CPU 0, loadgen on CPU 1"));
    free(h);
    char *t = capture_table(&r);
    for (unsigned i = 0; i < 8; i++) {
        char line[96];
        snprintf(line, sizeof(line), "\n%s ", lgt_mode_names[i]);
        assert_true(count(t, line) >= 2); /* medians and ranges */
    }
    /* 1.25 vs 1.35 us: apart by less than the two 0.1 us resolutions */
    assert_non_null(strstr(t, "verdict: pool+libc+scan uses 0.18x the CPU per event of "
                              "naive+libc+tree, outside the run-to-run spread; pool+mimalloc+scan "
                              "is within noise of pool+libc+scan.\n"));
    free(t);
    json_t *j = lg_report_json(&r);
    assert_int_equal(json_array_size(json_object_get(j, "modes")), 8);
    json_t *m3 = json_array_get(json_object_get(j, "modes"), 3); /* pool+mimalloc+tree */
    json_t *noise = json_object_get(m3, "within_noise_of_baseline");
    assert_true(json_is_false(json_object_get(noise, "cpu_us_per_event")));
    assert_true(json_is_false(json_object_get(noise, "allocs_per_event")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "environment"), "source_commit")),
        "abc1234");
    json_decref(j);
    lg_result_free(&r);
}

static void test_pool_modes_within_noise_of_each_other_are_named(void **state)
{
    (void)state;
    lg_compare_result_t r;
    assert_int_equal(lgt_synthetic(&r, 4, 3), 0);
    char buf[512];
    lg_report_verdict(&r, buf, sizeof(buf));
    /* pool+libc+tree (5.0) and pool+mimalloc+tree (5.1) overlap with 3 % jitter */
    assert_non_null(strstr(buf, "pool+libc+tree uses 0.71x"));
    assert_non_null(strstr(buf, "pool+mimalloc+tree is within noise of pool+libc+tree."));
    lg_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stat_gives_median_min_max_and_skips_nan),
        cmocka_unit_test(test_within_noise_when_run_ranges_overlap),
        cmocka_unit_test(test_one_allocation_per_run_is_within_noise),
        cmocka_unit_test(test_ratio_is_median_over_median),
        cmocka_unit_test(test_verdict_names_the_best_mode_its_ratio_and_the_noise),
        cmocka_unit_test(test_verdict_lists_every_mode_within_noise_of_the_best),
        cmocka_unit_test(test_verdict_says_within_spread_when_the_runs_overlap),
        cmocka_unit_test(test_verdict_when_the_baseline_is_best),
        cmocka_unit_test(test_verdict_from_one_run_each_says_the_spread_is_unknown),
        cmocka_unit_test(test_verdict_uses_throughput_without_cpu),
        cmocka_unit_test(test_decimals_follow_the_resolution),
        cmocka_unit_test(test_cpu_is_printed_to_its_precision_and_json_keeps_it_all),
        cmocka_unit_test(test_nice_steps_are_one_two_five),
        cmocka_unit_test(test_colour_is_fixed_by_name_not_position),
        cmocka_unit_test(test_html_escapes_argv_and_mode_names),
        cmocka_unit_test(test_argv_is_kept_verbatim_and_shell_quoted),
        cmocka_unit_test(test_report_is_whole_with_eight_modes_of_three_parts),
        cmocka_unit_test(test_pool_modes_within_noise_of_each_other_are_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
