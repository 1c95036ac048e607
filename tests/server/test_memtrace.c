/* test_memtrace.c - unit tests for the memtrace line (server/memtrace.h): the documented shape,
 * round trips through the parser, and what the parser refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "server/memtrace.h"

static srv_memtrace_t example(void)
{
    srv_memtrace_t m = {
        .cycle = 12,
        .since_start_us = 35012345,
        .duration_ns = 84321,
        .in_use_before = 120,
        .in_use_after = 118,
        .idle_before = 300,
        .idle_after = 150,
        .released_bytes = 614400,
        .live_bytes = 12582912,
        .sys_bytes = 20971520,
        .rss_bytes = 25165824,
        .reason = SRV_TRIM_TIMER,
    };
    return m;
}

/* Field by field: the struct has padding after reason. */
static void assert_same(const srv_memtrace_t *a, const srv_memtrace_t *b)
{
    assert_int_equal(a->cycle, b->cycle);
    assert_int_equal(a->since_start_us, b->since_start_us);
    assert_int_equal(a->duration_ns, b->duration_ns);
    assert_int_equal(a->in_use_before, b->in_use_before);
    assert_int_equal(a->in_use_after, b->in_use_after);
    assert_int_equal(a->idle_before, b->idle_before);
    assert_int_equal(a->idle_after, b->idle_after);
    assert_int_equal(a->released_bytes, b->released_bytes);
    assert_int_equal(a->live_bytes, b->live_bytes);
    assert_int_equal(a->sys_bytes, b->sys_bytes);
    assert_int_equal(a->rss_bytes, b->rss_bytes);
    assert_int_equal(a->reason, b->reason);
}

static void test_format_writes_the_documented_line(void **state)
{
    char line[SRV_MEMTRACE_LINE_MAX];
    (void)state;
    srv_memtrace_t m = example();
    size_t n = srv_memtrace_format(&m, line, sizeof line);
    assert_string_equal(line, "memtrace cycle=12 t=35.012s trim=0.084ms reason=timer "
                              "in_use=120->118 idle=300->150 released=614400 live=12582912 "
                              "sys=20971520 rss=25165824\n");
    assert_int_equal(n, strlen(line));
}

static void test_line_parses_back_at_its_printed_precision(void **state)
{
    char line[SRV_MEMTRACE_LINE_MAX];
    srv_memtrace_t back;
    (void)state;
    srv_memtrace_t m = example();
    srv_memtrace_format(&m, line, sizeof line);
    assert_int_equal(srv_memtrace_parse(line, &back), 0);
    m.since_start_us = 35012000; /* milliseconds, truncated */
    m.duration_ns = 84000;       /* microseconds, truncated */
    assert_same(&m, &back);
    line[strlen(line) - 1] = '\0'; /* without its newline too */
    assert_int_equal(srv_memtrace_parse(line, &back), 0);
    assert_same(&m, &back);
}

static void test_every_reason_and_extreme_values_round_trip(void **state)
{
    char line[SRV_MEMTRACE_LINE_MAX];
    srv_memtrace_t back;
    (void)state;
    const srv_trim_reason_t reasons[] = {SRV_TRIM_TIMER, SRV_TRIM_LIMIT, SRV_TRIM_ADMIN};
    for (size_t r = 0; r < 3; r++) {
        srv_memtrace_t m = {
            .cycle = UINT64_MAX,
            .since_start_us = UINT64_MAX / 1000 * 1000,
            .duration_ns = UINT64_MAX / 1000 * 1000,
            .in_use_before = UINT64_MAX,
            .in_use_after = 0,
            .idle_before = 0,
            .idle_after = UINT64_MAX,
            .released_bytes = UINT64_MAX,
            .live_bytes = UINT64_MAX,
            .sys_bytes = UINT64_MAX,
            .rss_bytes = UINT64_MAX,
            .reason = reasons[r],
        };
        m.since_start_us -= m.since_start_us % 1000;
        size_t n = srv_memtrace_format(&m, line, sizeof line);
        assert_true(n < SRV_MEMTRACE_LINE_MAX);
        assert_int_equal(srv_memtrace_parse(line, &back), 0);
        assert_same(&m, &back);
        assert_non_null(strstr(line, srv_trim_reason_name(reasons[r])));
    }
    srv_memtrace_t zero;
    memset(&zero, 0, sizeof zero);
    srv_memtrace_format(&zero, line, sizeof line);
    assert_string_equal(line, "memtrace cycle=0 t=0.000s trim=0.000ms reason=timer in_use=0->0 "
                              "idle=0->0 released=0 live=0 sys=0 rss=0\n");
    assert_int_equal(srv_memtrace_parse(line, &back), 0);
    assert_same(&zero, &back);
}

static void test_many_lines_round_trip(void **state)
{
    char line[SRV_MEMTRACE_LINE_MAX];
    uint64_t x = 0x9E3779B97F4A7C15ull;
    (void)state;
    for (int i = 0; i < 2000; i++) {
        uint64_t v[11];
        for (int k = 0; k < 11; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v[k] = x >> (unsigned)(k * 5 % 60); /* spread magnitudes */
        }
        srv_memtrace_t m = {v[0],
                            v[1] / 1000 * 1000,
                            v[2] / 1000 * 1000,
                            v[3],
                            v[4],
                            v[5],
                            v[6],
                            v[7],
                            v[8],
                            v[9],
                            v[10],
                            (srv_trim_reason_t)(i % 3)};
        srv_memtrace_t back;
        srv_memtrace_format(&m, line, sizeof line);
        assert_int_equal(srv_memtrace_parse(line, &back), 0);
        assert_same(&m, &back);
    }
}

static void test_format_truncates_and_returns_the_length_needed(void **state)
{
    char small[16];
    char full[SRV_MEMTRACE_LINE_MAX];
    (void)state;
    srv_memtrace_t m = example();
    size_t n = srv_memtrace_format(&m, small, sizeof small);
    assert_int_equal(n, srv_memtrace_format(&m, full, sizeof full));
    assert_string_equal(small, "memtrace cycle=");
}

static void test_parser_refuses_anything_else(void **state)
{
    srv_memtrace_t m = example();
    srv_memtrace_t before = m;
    (void)state;
    const char *bad[] = {
        "",
        "memtrace",
        "gc 1 @0.013s 2%: 0.015+0.45+0.003 ms clock",
        "memtrace cycle=12 t=35.012s trim=0.084ms reason=timer in_use=120->118 idle=300->150 "
        "released=614400 live=12582912 sys=20971520", /* rss missing */
        "memtrace cycle=12 t=35.012s trim=0.084ms reason=timer in_use=120->118 idle=300->150 "
        "released=614400 live=12582912 sys=20971520 rss=25165824 extra=1",
        "memtrace cycle=12 t=35.01s trim=0.084ms reason=timer in_use=120->118 idle=300->150 "
        "released=614400 live=12582912 sys=20971520 rss=25165824", /* two decimals */
        "memtrace cycle=12 t=35.012s trim=0.084ms reason=gc in_use=120->118 idle=300->150 "
        "released=614400 live=12582912 sys=20971520 rss=25165824",
        "memtrace cycle=-1 t=35.012s trim=0.084ms reason=timer in_use=120->118 idle=300->150 "
        "released=614400 live=12582912 sys=20971520 rss=25165824",
        "memtrace cycle=18446744073709551616 t=35.012s trim=0.084ms reason=timer in_use=1->1 "
        "idle=3->1 released=6 live=1 sys=2 rss=2", /* overflow */
        "memtrace cycle=12 t=35.012s trim=0.084ms reason=timer idle=300->150 in_use=120->118 "
        "released=614400 live=12582912 sys=20971520 rss=25165824", /* reordered */
        "memtrace cycle=12 t=35.012s trim=0.084ms reason=timer in_use=120-118 idle=300->150 "
        "released=614400 live=12582912 sys=20971520 rss=25165824",
        "memtrace cycle=12 t=35.012s trim=0.084ms reason=timer in_use=120->118 idle=300->150 "
        "released=614400 live=12582912 sys=20971520 rss=25165824\n\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (srv_memtrace_parse(bad[i], &m) != -EINVAL) {
            fail_msg("accepted: %s", bad[i]);
        }
    }
    assert_int_equal(srv_memtrace_parse(NULL, &m), -EINVAL);
    assert_same(&m, &before);
}

static void test_emit_writes_one_whole_line(void **state)
{
    int fds[2];
    char buf[SRV_MEMTRACE_LINE_MAX * 2];
    srv_memtrace_t back;
    (void)state;
    assert_int_equal(pipe(fds), 0);
    srv_memtrace_t m = example();
    m.reason = SRV_TRIM_ADMIN;
    assert_int_equal(srv_memtrace_emit(fds[1], &m), 0);
    close(fds[1]);
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strchr(buf, '\n'));
    assert_int_equal(strchr(buf, '\n') - buf, n - 1); /* exactly one line */
    assert_int_equal(srv_memtrace_parse(buf, &back), 0);
    assert_int_equal(back.reason, SRV_TRIM_ADMIN);
    assert_int_equal(srv_memtrace_emit(-1, &m), -EBADF);
}

static void test_ingestd_debug_turns_memtrace_on_like_godebug(void **state)
{
    (void)state;
    assert_int_equal(srv_debug_memtrace(NULL), 0);
    assert_int_equal(srv_debug_memtrace(""), 0);
    assert_int_equal(srv_debug_memtrace("memtrace=1"), 1);
    assert_int_equal(srv_debug_memtrace("foo=2,memtrace=1"), 1);
    assert_int_equal(srv_debug_memtrace("memtrace=1,foo=2"), 1);
    assert_int_equal(srv_debug_memtrace("memtrace=0"), 0);
    assert_int_equal(srv_debug_memtrace("memtrace=1,memtrace=0"), 0); /* last wins */
    assert_int_equal(srv_debug_memtrace("memtrace=yes"), 0);
    assert_int_equal(srv_debug_memtrace("memtrace"), 0);
    assert_int_equal(srv_debug_memtrace("xmemtrace=1"), 0);
    assert_int_equal(srv_debug_memtrace("memtrace=2"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_writes_the_documented_line),
        cmocka_unit_test(test_line_parses_back_at_its_printed_precision),
        cmocka_unit_test(test_every_reason_and_extreme_values_round_trip),
        cmocka_unit_test(test_many_lines_round_trip),
        cmocka_unit_test(test_format_truncates_and_returns_the_length_needed),
        cmocka_unit_test(test_parser_refuses_anything_else),
        cmocka_unit_test(test_emit_writes_one_whole_line),
        cmocka_unit_test(test_ingestd_debug_turns_memtrace_on_like_godebug),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
