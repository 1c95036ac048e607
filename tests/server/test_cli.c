/* test_cli.c - integration: ingestd's command line: help, version, bad values, environment,
 * JSON logs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* Runs ingestd with argv (NULL-terminated, without argv[0]) and one extra environment entry
 * (may be NULL); captures stdout and stderr. Returns the exit status. */
static int run(const char *const *args, const char *env, char *out, size_t outsz, char *err,
               size_t errsz)
{
    char opath[] = "/tmp/ingestd-cli-out-XXXXXX";
    char epath[] = "/tmp/ingestd-cli-err-XXXXXX";
    int ofd = mkstemp(opath);
    int efd = mkstemp(epath);
    const char *argv[32];
    int argc = 0;
    int st;

    argv[argc++] = INGESTD_BIN;
    for (int i = 0; args[i] != NULL && argc < 31; i++) {
        argv[argc++] = args[i];
    }
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(ofd, STDOUT_FILENO);
        dup2(efd, STDERR_FILENO);
        if (env != NULL) {
            putenv((char *)env);
        }
        execv(INGESTD_BIN, (char *const *)argv);
        _exit(127);
    }
    waitpid(pid, &st, 0);
    ssize_t n = pread(ofd, out, outsz - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    n = pread(efd, err, errsz - 1, 0);
    err[n > 0 ? n : 0] = '\0';
    close(ofd);
    close(efd);
    unlink(opath);
    unlink(epath);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int lines(const char *s)
{
    int n = 0;
    for (; *s != '\0'; s++) {
        n += *s == '\n';
    }
    return n;
}

static void test_help_lists_every_flag_with_its_default(void **state)
{
    static char out[16384], err[1024];
    const char *args[] = {"--help", NULL};
    static const char *const flags[] = {
        "--tcp",
        "--http",
        "--admin",
        "--workers",
        "--pool",
        "--allocator",
        "--pool-retain",
        "--trim-interval",
        "--max-event-bytes",
        "--max-body-bytes",
        "--max-header-bytes",
        "--max-connections",
        "--idle-timeout",
        "--header-timeout",
        "--body-timeout",
        "--sink",
        "--memory-limit",
        "--shutdown-timeout",
        "--log-format",
        "--version",
        "--partial-budget",
        "--line-timeout",
        "--max-connections-per-peer",
        "--ingest-allow",
        "--ingest-tokens-file",
        "--max-gzip-ratio",
    };
    (void)state;
    assert_int_equal(run(args, NULL, out, sizeof(out), err, sizeof(err)), 0);
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        assert_non_null(strstr(out, flags[i]));
    }
    assert_non_null(strstr(out, "default 0.0.0.0:7070"));
    assert_non_null(strstr(out, "INGESTD_MAX_EVENT_BYTES"));
}

static void test_version_prints_one_line(void **state)
{
    static char out[1024], err[1024];
    const char *args[] = {"--version", NULL};
    (void)state;
    assert_int_equal(run(args, NULL, out, sizeof(out), err, sizeof(err)), 0);
    assert_non_null(strstr(out, "ingestd " INGESTD_VERSION));
    assert_int_equal(lines(out), 1);
}

static void test_bad_flag_value_exits_2_with_one_line(void **state)
{
    static char out[1024], err[1024];
    const char *args[] = {"--pool-retain=lots", NULL};
    (void)state;
    assert_int_equal(run(args, NULL, out, sizeof(out), err, sizeof(err)), 2);
    assert_int_equal(lines(err), 1);
    assert_non_null(strstr(err, "--pool-retain"));
    assert_non_null(strstr(err, "lots"));
    assert_non_null(strstr(err, "allowed"));
}

static void test_bad_hostile_client_flag_values_exit_2(void **state)
{
    static char out[1024], err[1024];
    static const char *const bad[] = {"--partial-budget=huge", "--line-timeout=5",
                                      "--max-connections-per-peer=x", "--ingest-allow=nowhere",
                                      "--max-gzip-ratio=-3"};
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *args[] = {bad[i], NULL};
        assert_int_equal(run(args, NULL, out, sizeof(out), err, sizeof(err)), 2);
        assert_int_equal(lines(err), 1);
    }
    /* A tokens file that cannot be read stops start-up (exit 1 or 2, never a run). */
    const char *args[] = {"--ingest-tokens-file=/nonexistent/tokens", "--tcp=127.0.0.1:0",
                          "--http=127.0.0.1:0", "--admin=127.0.0.1:0", NULL};
    assert_true(run(args, NULL, out, sizeof(out), err, sizeof(err)) != 0);
    assert_non_null(strstr(err, "ingest-tokens-file"));
}

static void test_bad_environment_value_exits_2_naming_the_variable(void **state)
{
    static char out[1024], err[1024];
    const char *args[] = {NULL};
    (void)state;
    assert_int_equal(run(args, "INGESTD_TRIM_INTERVAL=soon", out, sizeof(out), err, sizeof(err)),
                     2);
    assert_int_equal(lines(err), 1);
    assert_non_null(strstr(err, "INGESTD_TRIM_INTERVAL"));
}

static void test_json_logs_start_and_stop_as_json_lines(void **state)
{
    ih_server_t s;
    const char *extra[] = {"--log-format=json", NULL};
    (void)state;
    assert_int_equal(ih_start(&s, extra), 0);
    assert_true(s.tcp_port != 0 && s.admin_port != 0);
    assert_int_equal(ih_stop(&s, SIGINT), 0);
    char *log = ih_log(&s);
    assert_non_null(strstr(log, "{\"ts\":\""));
    assert_non_null(strstr(log, "\"msg\":\"listening\""));
    assert_non_null(strstr(log, "\"msg\":\"shutdown\""));
    for (char *line = log; *line != '\0';) {
        char *eol = strchr(line, '\n');
        assert_non_null(eol);
        assert_int_equal(line[0], '{');
        assert_int_equal(eol[-1], '}');
        line = eol + 1;
    }
    free(log);
    ih_cleanup(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_lists_every_flag_with_its_default),
        cmocka_unit_test(test_version_prints_one_line),
        cmocka_unit_test(test_bad_flag_value_exits_2_with_one_line),
        cmocka_unit_test(test_bad_hostile_client_flag_values_exit_2),
        cmocka_unit_test(test_bad_environment_value_exits_2_naming_the_variable),
        cmocka_unit_test(test_json_logs_start_and_stop_as_json_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
