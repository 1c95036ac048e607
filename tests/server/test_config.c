/* test_config.c - unit tests for ingestd's flag parsing (server/config.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "mem/mem.h"
#include "pool/pool.h"
#include "server/config.h"
#include "sink/sink.h"

static void test_bytes_accepts_plain_and_binary_suffixes(void **state)
{
    uint64_t v = 0;
    (void)state;
    assert_int_equal(srv_parse_bytes("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(srv_parse_bytes("4096", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(srv_parse_bytes("1MiB", &v), 0);
    assert_int_equal(v, 1048576);
    assert_int_equal(srv_parse_bytes("8m", &v), 0);
    assert_int_equal(v, 8u << 20);
    assert_int_equal(srv_parse_bytes("2GiB", &v), 0);
    assert_int_equal(v, 2ull << 30);
    assert_int_equal(srv_parse_bytes("512K", &v), 0);
    assert_int_equal(v, 512u << 10);
    assert_int_equal(srv_parse_bytes("10B", &v), 0);
    assert_int_equal(v, 10);
}

static void test_bytes_rejects_garbage_and_overflow(void **state)
{
    uint64_t v = 7;
    (void)state;
    assert_int_equal(srv_parse_bytes("", &v), -EINVAL);
    assert_int_equal(srv_parse_bytes("abc", &v), -EINVAL);
    assert_int_equal(srv_parse_bytes("-1", &v), -EINVAL);
    assert_int_equal(srv_parse_bytes("1.5M", &v), -EINVAL);
    assert_int_equal(srv_parse_bytes("10 MiB", &v), -EINVAL);
    assert_int_equal(srv_parse_bytes("1XB", &v), -EINVAL);
    assert_int_equal(srv_parse_bytes("99999999999999999999", &v), -EINVAL);
    assert_int_equal(srv_parse_bytes("17179869184GiB", &v), -EINVAL);
    assert_int_equal(v, 7);
}

static void test_duration_needs_a_unit_except_zero(void **state)
{
    uint64_t v = 0;
    (void)state;
    assert_int_equal(srv_parse_duration_ms("10s", &v), 0);
    assert_int_equal(v, 10000);
    assert_int_equal(srv_parse_duration_ms("500ms", &v), 0);
    assert_int_equal(v, 500);
    assert_int_equal(srv_parse_duration_ms("2m", &v), 0);
    assert_int_equal(v, 120000);
    assert_int_equal(srv_parse_duration_ms("1h", &v), 0);
    assert_int_equal(v, 3600000);
    assert_int_equal(srv_parse_duration_ms("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(srv_parse_duration_ms("10", &v), -EINVAL);
    assert_int_equal(srv_parse_duration_ms("s", &v), -EINVAL);
    assert_int_equal(srv_parse_duration_ms("1d", &v), -EINVAL);
    assert_int_equal(srv_parse_duration_ms("-1s", &v), -EINVAL);
}

static void test_uint_enforces_its_range(void **state)
{
    uint64_t v = 0;
    (void)state;
    assert_int_equal(srv_parse_uint("1", 1, 4, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(srv_parse_uint("4", 1, 4, &v), 0);
    assert_int_equal(srv_parse_uint("0", 1, 4, &v), -EINVAL);
    assert_int_equal(srv_parse_uint("5", 1, 4, &v), -EINVAL);
    assert_int_equal(srv_parse_uint("2x", 1, 4, &v), -EINVAL);
    assert_int_equal(srv_parse_uint("", 1, 4, &v), -EINVAL);
}

static void test_bool_takes_on_and_off_spellings(void **state)
{
    int b = -1;
    (void)state;
    assert_int_equal(srv_parse_bool("on", &b), 0);
    assert_int_equal(b, 1);
    assert_int_equal(srv_parse_bool("OFF", &b), 0);
    assert_int_equal(b, 0);
    assert_int_equal(srv_parse_bool("maybe", &b), -EINVAL);
}

static void test_addr_parses_ipv4_ipv6_and_bare_port(void **state)
{
    srv_addr_t a;
    (void)state;
    assert_int_equal(srv_parse_addr("127.0.0.1:7070", 0, &a), 0);
    assert_true(a.enabled);
    assert_int_equal(a.addr.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&a.addr)->sin_port), 7070);
    assert_string_equal(a.text, "127.0.0.1:7070");
    assert_int_equal(srv_parse_addr("[::1]:0", 0, &a), 0);
    assert_int_equal(a.addr.ss_family, AF_INET6);
    assert_string_equal(a.text, "[::1]:0");
    assert_int_equal(srv_parse_addr(":8080", 0, &a), 0);
    assert_string_equal(a.text, "0.0.0.0:8080");
    assert_int_equal(srv_parse_addr("off", 1, &a), 0);
    assert_false(a.enabled);
}

static void test_addr_rejects_bad_hosts_ports_and_off_when_not_allowed(void **state)
{
    srv_addr_t a;
    (void)state;
    assert_int_equal(srv_parse_addr("off", 0, &a), -EINVAL);
    assert_int_equal(srv_parse_addr("localhost:80", 0, &a), -EINVAL);
    assert_int_equal(srv_parse_addr("1.2.3.4", 0, &a), -EINVAL);
    assert_int_equal(srv_parse_addr("1.2.3.4:65536", 0, &a), -EINVAL);
    assert_int_equal(srv_parse_addr("::1:80", 0, &a), -EINVAL);
    assert_int_equal(srv_parse_addr("[::1]80", 0, &a), -EINVAL);
    assert_int_equal(srv_parse_addr("1.2.3.4:", 0, &a), -EINVAL);
}

/* Runs srv_config_parse over argv/envp with output captured into memory. */
static srv_config_result_t parse(srv_config_t *cfg, char **argv, char **envp, char *err,
                                 size_t errsz)
{
    int argc = 0;
    while (argv[argc] != NULL) {
        argc++;
    }
    FILE *out = fopen("/dev/null", "w");
    FILE *e = fmemopen(err, errsz, "w");
    srv_config_defaults(cfg);
    srv_config_result_t r = srv_config_parse(cfg, argc, argv, envp, out, e);
    fclose(e);
    fclose(out);
    return r;
}

static void test_defaults_match_the_design(void **state)
{
    srv_config_t c;
    (void)state;
    srv_config_defaults(&c);
    assert_string_equal(c.tcp.text, "0.0.0.0:7070");
    assert_string_equal(c.http.text, "0.0.0.0:8080");
    assert_string_equal(c.admin.text, "127.0.0.1:6060");
    assert_true(c.workers >= 1);
    assert_int_equal(c.pool, 1);
    assert_int_equal(c.pool_retain, 100);
    assert_int_equal(c.max_event_bytes, 1048576);
    assert_int_equal(c.max_body_bytes, 8 * 1048576);
    assert_int_equal(c.memory_limit, 0);
    assert_string_equal(c.sink, "null");
}

static void test_flags_set_every_kind_of_value(void **state)
{
    srv_config_t c;
    char err[256] = "";
    char *argv[] = {"ingestd",
                    "--tcp=127.0.0.1:0",
                    "--http",
                    "off",
                    "--workers=3",
                    "--pool=off",
                    "--allocator=mimalloc",
                    "--pool-retain=50%",
                    "--trim-interval=500ms",
                    "--max-event-bytes=64KiB",
                    "--memory-limit=256MiB",
                    "--sink=file:/tmp/x.ndjson",
                    "--log-format=json",
                    "--idle-timeout=off",
                    NULL};
    (void)state;
    assert_int_equal(parse(&c, argv, NULL, err, sizeof(err)), SRV_CONFIG_RUN);
    assert_string_equal(c.tcp.text, "127.0.0.1:0");
    assert_false(c.http.enabled);
    assert_int_equal(c.workers, 3);
    assert_int_equal(c.pool, 0);
    assert_int_equal(c.allocator, MEM_ALLOCATOR_MIMALLOC);
    assert_int_equal(c.pool_retain, 50);
    assert_int_equal(c.trim_interval_ms, 500);
    assert_int_equal(c.max_event_bytes, 65536);
    assert_int_equal(c.memory_limit, 256u << 20);
    assert_string_equal(c.sink, "file:/tmp/x.ndjson");
    assert_int_equal(c.log_format, SRV_LOG_JSON);
    assert_int_equal(c.idle_timeout_ms, 0);
}

static void test_environment_applies_and_flags_win(void **state)
{
    srv_config_t c;
    char err[256] = "";
    char *argv[] = {"ingestd", "--workers", "2", NULL};
    char *envp[] = {"PATH=/bin", "INGESTD_WORKERS=5", "INGESTD_POOL_RETAIN=off",
                    "INGESTD_MAX_CONNECTIONS=7", NULL};
    (void)state;
    assert_int_equal(parse(&c, argv, envp, err, sizeof(err)), SRV_CONFIG_RUN);
    assert_int_equal(c.workers, 2);
    assert_int_equal(c.pool_retain, POOL_RETAIN_OFF);
    assert_int_equal(c.max_connections, 7);
}

static void test_bad_value_names_flag_value_and_what_is_allowed(void **state)
{
    srv_config_t c;
    char err[256] = "";
    char *argv[] = {"ingestd", "--workers=zero", NULL};
    (void)state;
    assert_int_equal(parse(&c, argv, NULL, err, sizeof(err)), SRV_CONFIG_ERROR);
    assert_non_null(strstr(err, "--workers"));
    assert_non_null(strstr(err, "\"zero\""));
    assert_non_null(strstr(err, "allowed: an integer from 1 to"));
    int lines = 0;
    for (const char *p = err; *p != '\0'; p++) {
        lines += *p == '\n';
    }
    assert_int_equal(lines, 1);
}

static void test_bad_environment_value_names_the_variable(void **state)
{
    srv_config_t c;
    char err[256] = "";
    char *argv[] = {"ingestd", NULL};
    char *envp[] = {"INGESTD_SINK=kafka:x", NULL};
    (void)state;
    assert_int_equal(parse(&c, argv, envp, err, sizeof(err)), SRV_CONFIG_ERROR);
    assert_non_null(strstr(err, "--sink"));
    assert_non_null(strstr(err, "INGESTD_SINK"));
}

static void test_unknown_flag_and_missing_value_are_errors(void **state)
{
    srv_config_t c;
    char err[256] = "";
    char *a1[] = {"ingestd", "--bogus=1", NULL};
    char *a2[] = {"ingestd", "--tcp", NULL};
    char *a3[] = {"ingestd", "stray", NULL};
    (void)state;
    assert_int_equal(parse(&c, a1, NULL, err, sizeof(err)), SRV_CONFIG_ERROR);
    assert_non_null(strstr(err, "--bogus"));
    assert_int_equal(parse(&c, a2, NULL, err, sizeof(err)), SRV_CONFIG_ERROR);
    assert_non_null(strstr(err, "--tcp needs a value"));
    assert_int_equal(parse(&c, a3, NULL, err, sizeof(err)), SRV_CONFIG_ERROR);
}

static void test_limits_outside_their_range_are_errors(void **state)
{
    srv_config_t c;
    char err[256] = "";
    char *a1[] = {"ingestd", "--max-event-bytes=0", NULL};
    char *a2[] = {"ingestd", "--pool-retain=10001", NULL};
    char *a3[] = {"ingestd", "--shutdown-timeout=off", NULL};
    (void)state;
    assert_int_equal(parse(&c, a1, NULL, err, sizeof(err)), SRV_CONFIG_ERROR);
    assert_int_equal(parse(&c, a2, NULL, err, sizeof(err)), SRV_CONFIG_ERROR);
    assert_int_equal(parse(&c, a3, NULL, err, sizeof(err)), SRV_CONFIG_ERROR);
}

static void test_help_and_version_exit_ok(void **state)
{
    srv_config_t c;
    char err[256] = "";
    char *a1[] = {"ingestd", "--help", NULL};
    char *a2[] = {"ingestd", "--version", NULL};
    (void)state;
    assert_int_equal(parse(&c, a1, NULL, err, sizeof(err)), SRV_CONFIG_EXIT_OK);
    assert_int_equal(parse(&c, a2, NULL, err, sizeof(err)), SRV_CONFIG_EXIT_OK);
}

static void test_items_round_trip_through_the_parser(void **state)
{
    srv_config_t c;
    srv_config_t d;
    char err[256] = "";
    char args[64][200];
    char *argv[66];
    const char *name;
    char val[160];
    int argc = 0;
    (void)state;
    srv_config_defaults(&c);
    c.memory_limit = 3u << 20;
    c.trim_interval_ms = 1500;
    argv[argc++] = "ingestd";
    for (size_t i = 0; srv_config_item(&c, i, &name, val, sizeof(val)) == 0; i++) {
        snprintf(args[i], sizeof(args[i]), "--%s=%s", name, val);
        argv[argc++] = args[i];
    }
    argv[argc] = NULL;
    assert_int_equal(parse(&d, argv, NULL, err, sizeof(err)), SRV_CONFIG_RUN);
    assert_int_equal(d.memory_limit, c.memory_limit);
    assert_int_equal(d.trim_interval_ms, 1500);
    assert_string_equal(d.tcp.text, c.tcp.text);
    assert_int_equal(d.workers, c.workers);
}

static void test_admin_flags_allowlist_profile_rate_and_memtrace(void **state)
{
    srv_config_t c;
    char err[512] = "";
    char text[SRV_ALLOW_TEXTLEN];
    (void)state;

    char *def[] = {"ingestd", NULL};
    assert_int_equal(parse(&c, def, NULL, err, sizeof(err)), SRV_CONFIG_RUN);
    srv_allow_format(&c.admin_allow, text, sizeof(text));
    assert_string_equal(text, SRV_ALLOW_DEFAULT);
    assert_int_equal(c.alloc_profile_rate, 0);
    assert_int_equal(c.memtrace, 0);

    /* A bare --memtrace is on and takes no value: the next flag is still a flag. */
    char *argv[] = {
        "ingestd", "--memtrace", "--admin-allow", "10.0.0.0/8, ::1", "--alloc-profile-rate=512KiB",
        NULL};
    assert_int_equal(parse(&c, argv, NULL, err, sizeof(err)), SRV_CONFIG_RUN);
    assert_int_equal(c.memtrace, 1);
    assert_int_equal(c.alloc_profile_rate, 512 * 1024);
    srv_allow_format(&c.admin_allow, text, sizeof(text));
    assert_string_equal(text, "10.0.0.0/8,::1/128");

    char *envp[] = {"INGESTD_ALLOC_PROFILE_RATE=off", "INGESTD_ADMIN_ALLOW=127.0.0.2",
                    "INGESTD_DEBUG=x=1,memtrace=1", NULL};
    assert_int_equal(parse(&c, def, envp, err, sizeof(err)), SRV_CONFIG_RUN);
    assert_int_equal(c.memtrace, 1);
    assert_int_equal(c.alloc_profile_rate, 0);
    char *off[] = {"ingestd", "--memtrace=off", NULL};
    assert_int_equal(parse(&c, off, NULL, err, sizeof(err)), SRV_CONFIG_RUN);
    assert_int_equal(c.memtrace, 0);

    char *bad[] = {"ingestd", "--admin-allow=10.0.0.1/8", NULL};
    assert_int_equal(parse(&c, bad, NULL, err, sizeof(err)), SRV_CONFIG_ERROR);
    assert_non_null(strstr(err, "--admin-allow"));
    assert_non_null(strstr(err, "\"10.0.0.1/8\""));
    assert_int_equal(strchr(err, '\n') - err + 1, (long)strlen(err)); /* one line */
    char *badrate[] = {"ingestd", "--alloc-profile-rate=fast", NULL};
    assert_int_equal(parse(&c, badrate, NULL, err, sizeof(err)), SRV_CONFIG_ERROR);
    assert_non_null(strstr(err, "--alloc-profile-rate"));
}

static void test_hostile_client_flags_defaults_values_env_and_bad_values(void **state)
{
    srv_config_t c;
    char err[512];
    (void)state;

    /* Defaults: bounded (budget, line deadline, per-peer cap, gzip ratio), open (allow, tokens). */
    srv_config_defaults(&c);
    assert_int_equal(c.partial_budget, 64 * 1048576);
    assert_int_equal(c.line_timeout_ms, 30000);
    assert_int_equal(c.max_conns_per_peer, 256);
    assert_true(c.max_conns_per_peer < c.max_connections);
    assert_int_equal(c.max_gzip_ratio, 200);
    assert_string_equal(c.ingest_tokens_file, "");
    struct sockaddr_in any = {.sin_family = AF_INET};
    inet_pton(AF_INET, "203.0.113.9", &any.sin_addr);
    assert_true(srv_allow_match(&c.ingest_allow, (struct sockaddr *)&any));
    /* The budget in force: at most half the memory limit; off stays off. */
    assert_int_equal(srv_config_partial_budget(&c), 64 * 1048576);
    c.memory_limit = 32 * 1048576;
    assert_int_equal(srv_config_partial_budget(&c), 16 * 1048576);
    c.partial_budget = 0;
    assert_int_equal(srv_config_partial_budget(&c), 0);

    char *ok[] = {"ingestd",
                  "--partial-budget=8MiB",
                  "--line-timeout=5s",
                  "--max-connections-per-peer=0",
                  "--ingest-allow=10.0.0.0/8",
                  "--ingest-tokens-file=/run/credentials/ingestd.service/tokens",
                  "--max-gzip-ratio=0",
                  NULL};
    assert_int_equal(parse(&c, ok, NULL, err, sizeof(err)), SRV_CONFIG_RUN);
    assert_int_equal(c.partial_budget, 8 * 1048576);
    assert_int_equal(c.line_timeout_ms, 5000);
    assert_int_equal(c.max_conns_per_peer, 0);
    assert_false(srv_allow_match(&c.ingest_allow, (struct sockaddr *)&any));
    assert_string_equal(c.ingest_tokens_file, "/run/credentials/ingestd.service/tokens");
    assert_int_equal(c.max_gzip_ratio, 0);
    char *offs[] = {"ingestd", "--partial-budget=off", "--line-timeout=off",
                    "--ingest-tokens-file=off", NULL};
    assert_int_equal(parse(&c, offs, NULL, err, sizeof(err)), SRV_CONFIG_RUN);
    assert_int_equal(c.partial_budget, 0);
    assert_int_equal(c.line_timeout_ms, 0);
    assert_string_equal(c.ingest_tokens_file, "");
    char *envp[] = {"INGESTD_PARTIAL_BUDGET=1MiB",
                    "INGESTD_LINE_TIMEOUT=2s",
                    "INGESTD_MAX_CONNECTIONS_PER_PEER=4",
                    "INGESTD_INGEST_ALLOW=127.0.0.1",
                    "INGESTD_INGEST_TOKENS_FILE=/etc/t",
                    "INGESTD_MAX_GZIP_RATIO=10",
                    NULL};
    char *none[] = {"ingestd", NULL};
    assert_int_equal(parse(&c, none, envp, err, sizeof(err)), SRV_CONFIG_RUN);
    assert_int_equal(c.partial_budget, 1048576);
    assert_int_equal(c.line_timeout_ms, 2000);
    assert_int_equal(c.max_conns_per_peer, 4);
    assert_string_equal(c.ingest_tokens_file, "/etc/t");
    assert_int_equal(c.max_gzip_ratio, 10);

    /* Bad values: one line naming the flag and the value. */
    static const char *const bad[][2] = {
        {"--partial-budget", "lots"},
        {"--partial-budget", "1KiB"},
        {"--line-timeout", "30"},
        {"--line-timeout", "soon"},
        {"--max-connections-per-peer", "-1"},
        {"--max-connections-per-peer", "many"},
        {"--ingest-allow", "10.0.0.1/8"},
        {"--ingest-allow", ""},
        {"--ingest-tokens-file", ""},
        {"--max-gzip-ratio", "2000000"},
        {"--max-gzip-ratio", "x"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char arg[128];
        snprintf(arg, sizeof(arg), "%s=%s", bad[i][0], bad[i][1]);
        char *argv[] = {"ingestd", arg, NULL};
        assert_int_equal(parse(&c, argv, NULL, err, sizeof(err)), SRV_CONFIG_ERROR);
        assert_non_null(strstr(err, bad[i][0]));
        assert_int_equal(strchr(err, '\n') - err + 1, (long)strlen(err));
    }
}

static void test_nats_batch_bytes_default_range_and_env(void **state)
{
    srv_config_t c;
    char err[512];
    (void)state;
    srv_config_defaults(&c);
    assert_int_equal(c.nats_batch_bytes, SINK_NATS_DEFAULT_BATCH_BYTES);
    assert_int_equal(c.nats_batch_bytes, 256 * 1024);
    char *ok[] = {"ingestd", "--nats-batch-bytes=1MiB", NULL};
    assert_int_equal(parse(&c, ok, NULL, err, sizeof(err)), SRV_CONFIG_RUN);
    assert_int_equal(c.nats_batch_bytes, 1048576);
    char *envp[] = {"INGESTD_NATS_BATCH_BYTES=4KiB", NULL};
    char *none[] = {"ingestd", NULL};
    assert_int_equal(parse(&c, none, envp, err, sizeof(err)), SRV_CONFIG_RUN);
    assert_int_equal(c.nats_batch_bytes, 4096);
    static const char *const bad[] = {"4095", "65MiB", "0", "big"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char arg[64];
        snprintf(arg, sizeof(arg), "--nats-batch-bytes=%s", bad[i]);
        char *argv[] = {"ingestd", arg, NULL};
        assert_int_equal(parse(&c, argv, NULL, err, sizeof(err)), SRV_CONFIG_ERROR);
        assert_non_null(strstr(err, "--nats-batch-bytes"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_accepts_plain_and_binary_suffixes),
        cmocka_unit_test(test_bytes_rejects_garbage_and_overflow),
        cmocka_unit_test(test_duration_needs_a_unit_except_zero),
        cmocka_unit_test(test_uint_enforces_its_range),
        cmocka_unit_test(test_bool_takes_on_and_off_spellings),
        cmocka_unit_test(test_addr_parses_ipv4_ipv6_and_bare_port),
        cmocka_unit_test(test_addr_rejects_bad_hosts_ports_and_off_when_not_allowed),
        cmocka_unit_test(test_defaults_match_the_design),
        cmocka_unit_test(test_flags_set_every_kind_of_value),
        cmocka_unit_test(test_environment_applies_and_flags_win),
        cmocka_unit_test(test_bad_value_names_flag_value_and_what_is_allowed),
        cmocka_unit_test(test_bad_environment_value_names_the_variable),
        cmocka_unit_test(test_unknown_flag_and_missing_value_are_errors),
        cmocka_unit_test(test_limits_outside_their_range_are_errors),
        cmocka_unit_test(test_help_and_version_exit_ok),
        cmocka_unit_test(test_items_round_trip_through_the_parser),
        cmocka_unit_test(test_admin_flags_allowlist_profile_rate_and_memtrace),
        cmocka_unit_test(test_hostile_client_flags_defaults_values_env_and_bad_values),
        cmocka_unit_test(test_nats_batch_bytes_default_range_and_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
