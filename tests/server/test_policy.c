/* test_policy.c - unit tests for the pausing rules (server/policy.h), above all the property
 * that the memory limit never leaves a worker with nobody allowed to read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "server/policy.h"

static const srv_pause_t running = {0, 0, 0};
static const srv_pause_t over_limit = {.mem_paused = 1};
static const srv_pause_t sink_full = {.sink_full = 1};
static const srv_pause_t draining = {.draining = 1};

static void test_tcp_reads_freely_when_nothing_holds_it_back(void **state)
{
    (void)state;
    assert_true(srv_policy_tcp_may_read(&running, 0, 0));
    assert_true(srv_policy_tcp_may_read(&running, 1, 0));
    assert_false(srv_policy_shedding(&running));
}

static void test_sink_full_or_draining_stops_every_tcp_read(void **state)
{
    (void)state;
    for (int holds = 0; holds < 2; holds++) {
        for (int probe = 0; probe < 2; probe++) {
            assert_false(srv_policy_tcp_may_read(&sink_full, holds, probe));
            assert_false(srv_policy_tcp_may_read(&draining, holds, probe));
        }
    }
    assert_true(srv_policy_shedding(&sink_full));
    assert_true(srv_policy_shedding(&draining));
}

static void test_over_the_limit_only_line_holders_and_probes_read(void **state)
{
    (void)state;
    assert_false(srv_policy_tcp_may_read(&over_limit, 0, 0));
    assert_true(srv_policy_tcp_may_read(&over_limit, 1, 0));
    assert_true(srv_policy_tcp_may_read(&over_limit, 0, 1));
    assert_true(srv_policy_shedding(&over_limit));
}

static void test_no_probes_while_a_line_is_held(void **state)
{
    srv_limit_view_t v[3] = {{0, 1}, {1, 1}, {0, 1}};
    size_t probes[SRV_LIMIT_PROBES];
    (void)state;
    assert_int_equal(srv_policy_pick_probes(&over_limit, v, 3, probes), 0);
}

static void test_no_probes_when_the_sink_is_full_or_draining(void **state)
{
    srv_limit_view_t v[2] = {{0, 1}, {0, 1}};
    size_t probes[SRV_LIMIT_PROBES];
    srv_pause_t both = {.mem_paused = 1, .sink_full = 1};
    (void)state;
    assert_int_equal(srv_policy_pick_probes(&both, v, 2, probes), 0);
    both.sink_full = 0;
    both.draining = 1;
    assert_int_equal(srv_policy_pick_probes(&both, v, 2, probes), 0);
}

static void test_probes_are_the_first_eligible_in_list_order_and_bounded(void **state)
{
    srv_limit_view_t v[100];
    size_t probes[SRV_LIMIT_PROBES];
    (void)state;
    for (size_t i = 0; i < 100; i++) {
        v[i].holds_line = 0;
        v[i].eligible = i % 3 != 0; /* every third one is finishing */
    }
    size_t n = srv_policy_pick_probes(&over_limit, v, 100, probes);
    assert_int_equal(n, SRV_LIMIT_PROBES);
    size_t prev = 0;
    for (size_t k = 0; k < n; k++) {
        assert_true(v[probes[k]].eligible);
        assert_true(k == 0 || probes[k] > prev);
        prev = probes[k];
    }
    assert_int_equal(probes[0], 1);
}

/* The property: over the limit, with the sink running, a worker always lets someone read when
 * it has any open connection - either a line holder (whose read frees memory) or a probe. Checked
 * over every combination of up to 8 connections. */
static void test_the_limit_never_leaves_nobody_reading(void **state)
{
    (void)state;
    for (size_t n = 1; n <= 8; n++) {
        for (unsigned mask = 0; mask < (1u << (2 * n)); mask++) {
            srv_limit_view_t v[8];
            size_t probes[SRV_LIMIT_PROBES];
            int any_eligible = 0;
            for (size_t i = 0; i < n; i++) {
                v[i].holds_line = (int)((mask >> (2 * i)) & 1u);
                v[i].eligible = (int)((mask >> (2 * i + 1)) & 1u);
                any_eligible |= v[i].eligible || v[i].holds_line;
            }
            size_t np = srv_policy_pick_probes(&over_limit, v, n, probes);
            int readers = 0;
            for (size_t i = 0; i < n; i++) {
                int probe = 0;
                for (size_t k = 0; k < np; k++) {
                    probe |= probes[k] == i;
                }
                readers += (v[i].eligible || v[i].holds_line) &&
                           srv_policy_tcp_may_read(&over_limit, v[i].holds_line, probe);
            }
            if (any_eligible) {
                assert_true(readers > 0);
            }
        }
    }
}

static void test_over_the_limit_a_line_holder_reads_but_its_line_may_not_grow(void **state)
{
    (void)state;
    /* Hole 2 of issue 11: holders kept reading and growing, 4x over the limit. Now they read
     * only into what they hold: a line that needs more is dropped, which frees memory. */
    assert_true(srv_policy_tcp_may_read(&over_limit, 1, 0));
    assert_false(srv_policy_line_may_grow(&over_limit));
    assert_true(srv_policy_line_may_grow(&running));
    assert_true(srv_policy_line_may_grow(&sink_full));
}

static void test_budget_keeps_each_workers_share_and_bounds_the_sum(void **state)
{
    (void)state;
    /* No budget: always. */
    assert_true(srv_policy_budget_fits(1 << 30, 1ull << 40, 1 << 20, 0, 4));
    /* A worker within its share (1000 / 4 = 250) may grow whatever the others hold. */
    assert_true(srv_policy_budget_fits(0, 5000, 250, 1000, 4));
    assert_true(srv_policy_budget_fits(200, 5000, 50, 1000, 4));
    assert_false(srv_policy_budget_fits(200, 5000, 51, 1000, 4));
    /* Over its share only while the sum stays within the budget. */
    assert_true(srv_policy_budget_fits(600, 900, 100, 1000, 4));
    assert_false(srv_policy_budget_fits(600, 900, 101, 1000, 4));
    /* Zero workers is treated as one. */
    assert_true(srv_policy_budget_fits(0, 0, 1000, 1000, 0));
    assert_false(srv_policy_budget_fits(0, 0, 1001, 1000, 0));
    /* The sum never passes budget + what shares guarantee: with every worker at its share, the
     * sum is the budget. */
    for (unsigned n = 1; n <= 8; n++) {
        uint64_t share = 1000 / n;
        assert_true(srv_policy_budget_fits(0, 1000 - share, share, 1000, n));
        assert_false(srv_policy_budget_fits(share, 1000, 1, 1000, n));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_reads_freely_when_nothing_holds_it_back),
        cmocka_unit_test(test_sink_full_or_draining_stops_every_tcp_read),
        cmocka_unit_test(test_over_the_limit_only_line_holders_and_probes_read),
        cmocka_unit_test(test_no_probes_while_a_line_is_held),
        cmocka_unit_test(test_no_probes_when_the_sink_is_full_or_draining),
        cmocka_unit_test(test_probes_are_the_first_eligible_in_list_order_and_bounded),
        cmocka_unit_test(test_the_limit_never_leaves_nobody_reading),
        cmocka_unit_test(test_over_the_limit_a_line_holder_reads_but_its_line_may_not_grow),
        cmocka_unit_test(test_budget_keeps_each_workers_share_and_bounds_the_sum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
