/* test_notify_live.c - integration: the real ingestd under a notify socket the test binds, as
 * systemd does for Type=notify: READY=1 comes from ingestd's own pid once its listeners answer
 * (the test learns the ports only from READY's STATUS line, never from the log), WATCHDOG=1
 * keeps coming when WATCHDOG_USEC asks for it, and SIGTERM gives STOPPING=1 and exit 0. */
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
#include <unistd.h>

#include "harness.h"
#include "notify_sock.h"

#define WAIT_MS 30000

/* Starts ingestd on loopback port 0 with stderr in a temporary log, without waiting for it.
 * Returns 0 or -1. */
static int spawn(ih_server_t *s)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->log_path, sizeof(s->log_path), "/tmp/ingestd-test-XXXXXX");
    int fd = mkstemp(s->log_path);
    if (fd < 0) {
        return -1;
    }
    s->pid = fork();
    if (s->pid == 0) {
        dup2(fd, STDERR_FILENO);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, STDIN_FILENO);
        dup2(devnull, STDOUT_FILENO);
        execl(INGESTD_BIN, INGESTD_BIN, "--tcp=127.0.0.1:0", "--http=127.0.0.1:0",
              "--admin=127.0.0.1:0", "--workers=2", (char *)NULL);
        _exit(127);
    }
    close(fd);
    return s->pid > 0 ? 0 : -1;
}

/* The port in " key=HOST:PORT" of a STATUS line, or 0. */
static uint16_t status_port(const char *text, const char *key)
{
    char pat[16];
    snprintf(pat, sizeof(pat), " %s=", key);
    const char *p = strstr(text, pat);
    if (p == NULL) {
        return 0;
    }
    p += strlen(pat);
    const char *colon = NULL;
    for (; *p != '\0' && *p != ' ' && *p != '\n'; p++) {
        if (*p == ':') {
            colon = p;
        }
    }
    return colon != NULL ? (uint16_t)atoi(colon + 1) : 0;
}

/* Waits for READY=1 from the server's pid and fills its ports from the STATUS line. */
static void expect_ready(ns_socket_t *ns, ih_server_t *srv)
{
    char buf[1024];
    pid_t from = 0;

    if (ns_wait_line(ns, "READY=1", WAIT_MS, buf, sizeof(buf), &from) != 0) {
        char *log = ih_log(srv);
        fprintf(stderr, "no READY=1 within %d ms; ingestd's log:\n%s\n", WAIT_MS, log);
        free(log);
        ih_stop(srv, SIGKILL);
        fail();
    }
    assert_int_equal(from, srv->pid);
    assert_non_null(strstr(buf, "\nSTATUS=listening "));
    srv->tcp_port = status_port(buf, "tcp");
    srv->http_port = status_port(buf, "http");
    srv->admin_port = status_port(buf, "admin");
    assert_true(srv->tcp_port != 0 && srv->http_port != 0 && srv->admin_port != 0);
}

static void test_ready_once_listening_then_stopping_on_sigterm(void **state)
{
    ns_socket_t ns;
    ih_server_t srv;
    ih_counts_t base, d;
    char buf[1024];
    pid_t from = 0;
    size_t n;
    (void)state;

    assert_int_equal(ns_open(&ns, 0), 0);
    setenv("NOTIFY_SOCKET", ns.env, 1);
    assert_int_equal(spawn(&srv), 0);
    unsetenv("NOTIFY_SOCKET");
    expect_ready(&ns, &srv);

    /* Ready means every listener answers now: /readyz 200 on HTTP, events over TCP counted. */
    static const char req[] = "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char *resp = ih_http(srv.http_port, req, sizeof(req) - 1, &n);
    assert_non_null(resp);
    assert_int_equal(ih_http_status(resp), 200);
    free(resp);
    assert_int_equal(ih_counts(srv.admin_port, &base), 0);
    int fd = ih_connect(srv.tcp_port);
    assert_true(fd >= 0);
    static const char events[] = "{\"type\":\"a\"}\n{\"type\":\"b\"}\n";
    assert_int_equal(ih_send_all(fd, events, sizeof(events) - 1), 0);
    close(fd);
    assert_int_equal(ih_wait_counts(srv.admin_port, &base, 2, WAIT_MS, &d), 0);
    assert_true(d.v[0] == 2);

    /* Nothing else was announced while running (no watchdog was asked for). */
    assert_int_equal(ns_recv(&ns, 0, buf, sizeof(buf), NULL), -1);
    assert_int_equal(ih_stop(&srv, SIGTERM), 0);
    assert_int_equal(ns_wait_line(&ns, "STOPPING=1", WAIT_MS, buf, sizeof(buf), &from), 0);
    assert_int_equal(from, srv.pid);
    assert_false(ns_has_line(buf, "READY=1"));
    ih_cleanup(&srv);
    ns_close(&ns);
}

static void test_watchdog_pings_while_running(void **state)
{
    ns_socket_t ns;
    ih_server_t srv;
    char buf[1024];
    pid_t from = 0;
    (void)state;

    assert_int_equal(ns_open(&ns, 1), 0);
    setenv("NOTIFY_SOCKET", ns.env, 1);
    setenv("WATCHDOG_USEC", "200000", 1); /* a ping every 100 ms */
    assert_int_equal(spawn(&srv), 0);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    expect_ready(&ns, &srv);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ns_wait_line(&ns, "WATCHDOG=1", WAIT_MS, buf, sizeof(buf), &from), 0);
        assert_int_equal(from, srv.pid);
    }
    assert_int_equal(ih_stop(&srv, SIGTERM), 0);
    assert_int_equal(ns_wait_line(&ns, "STOPPING=1", WAIT_MS, buf, sizeof(buf), &from), 0);
    ih_cleanup(&srv);
    ns_close(&ns);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ready_once_listening_then_stopping_on_sigterm),
        cmocka_unit_test(test_watchdog_pings_while_running),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
