/* test_notify.c - unit: server/notify.c against a notify socket the test binds, as systemd
 * would: what each call sends, the address forms, the errors, the watchdog interval and timer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "notify_sock.h"
#include "server/notify.h"

#define WAIT_MS 10000

static void clear_env(void)
{
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
}

static int setup(void **state)
{
    static ns_socket_t ns;
    clear_env();
    if (ns_open(&ns, 0) != 0) {
        return -1;
    }
    setenv("NOTIFY_SOCKET", ns.env, 1);
    *state = &ns;
    return 0;
}

static int teardown(void **state)
{
    ns_close(*state);
    clear_env();
    return 0;
}

static void test_notify_without_socket_sends_nothing_and_succeeds(void **state)
{
    ns_socket_t *ns = *state;
    char buf[256];
    uint64_t usec = 1;

    unsetenv("NOTIFY_SOCKET");
    setenv("WATCHDOG_USEC", "1000000", 1);
    assert_int_equal(srv_notify_ready("up"), 0);
    assert_int_equal(srv_notify_stopping(), 0);
    assert_int_equal(srv_notify_watchdog(), 0);
    assert_int_equal(srv_notify_watchdog_usec(&usec), 0);
    assert_true(usec == 0);
    setenv("NOTIFY_SOCKET", "", 1);
    assert_int_equal(srv_notify_ready(NULL), 0);
    assert_int_equal(ns_recv(ns, 0, buf, sizeof(buf), NULL), -1);
}

static void test_notify_ready_sends_ready_and_status_from_this_process(void **state)
{
    ns_socket_t *ns = *state;
    char buf[256];
    pid_t pid = 0;

    const char *want = "READY=1\nSTATUS=listening tcp=127.0.0.1:7070";

    assert_int_equal(srv_notify_ready("listening tcp=127.0.0.1:7070"), 0);
    assert_int_equal(ns_recv(ns, WAIT_MS, buf, sizeof(buf), &pid), (int)strlen(want));
    assert_string_equal(buf, want);
    assert_int_equal(pid, getpid());
    assert_int_equal(srv_notify_ready(NULL), 0);
    assert_int_equal(ns_recv(ns, WAIT_MS, buf, sizeof(buf), NULL), 7);
    assert_string_equal(buf, "READY=1");
}

static void test_notify_stopping_and_watchdog_send_their_lines(void **state)
{
    ns_socket_t *ns = *state;
    char buf[256];

    assert_int_equal(srv_notify_stopping(), 0);
    assert_true(ns_recv(ns, WAIT_MS, buf, sizeof(buf), NULL) > 0);
    assert_true(ns_has_line(buf, "STOPPING=1"));
    assert_false(ns_has_line(buf, "READY=1"));
    assert_int_equal(srv_notify_watchdog(), 0);
    assert_true(ns_recv(ns, WAIT_MS, buf, sizeof(buf), NULL) > 0);
    assert_string_equal(buf, "WATCHDOG=1");
}

static void test_notify_reaches_an_abstract_socket(void **state)
{
    ns_socket_t abs;
    char buf[256];
    (void)state;

    assert_int_equal(ns_open(&abs, 1), 0);
    assert_int_equal(abs.env[0], '@');
    setenv("NOTIFY_SOCKET", abs.env, 1);
    assert_int_equal(srv_notify_ready("abstract"), 0);
    assert_true(ns_recv(&abs, WAIT_MS, buf, sizeof(buf), NULL) > 0);
    assert_string_equal(buf, "READY=1\nSTATUS=abstract");
    ns_close(&abs);
}

static void test_notify_ready_refuses_a_status_of_two_lines(void **state)
{
    ns_socket_t *ns = *state;
    char buf[256];
    char big[SRV_NOTIFY_MAX_BYTES + 2];

    assert_int_equal(srv_notify_ready("one\nREADY=0"), -EINVAL);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(srv_notify_ready(big), -EINVAL);
    assert_int_equal(srv_notify_send(""), -EINVAL);
    assert_int_equal(srv_notify_send(NULL), -EINVAL);
    assert_int_equal(ns_recv(ns, 0, buf, sizeof(buf), NULL), -1);
}

static void test_notify_bad_addresses_give_errors(void **state)
{
    ns_socket_t *ns = *state;
    char path[200];

    setenv("NOTIFY_SOCKET", "run/notify", 1);
    assert_int_equal(srv_notify_ready(NULL), -EAFNOSUPPORT);
    setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
    assert_int_equal(srv_notify_watchdog(), -EAFNOSUPPORT);
    memset(path, 'a', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = '\0';
    setenv("NOTIFY_SOCKET", path, 1);
    assert_int_equal(srv_notify_ready(NULL), -ENAMETOOLONG);
    snprintf(path, sizeof(path), "%s/absent", ns->dir);
    setenv("NOTIFY_SOCKET", path, 1);
    assert_int_equal(srv_notify_ready(NULL), -ENOENT);
    /* A socket file nobody reads any more: the manager went away. */
    setenv("NOTIFY_SOCKET", ns->env, 1);
    close(ns->fd);
    ns->fd = -1;
    assert_int_equal(srv_notify_stopping(), -ECONNREFUSED);
}

static void test_notify_watchdog_usec_follows_the_managers_variables(void **state)
{
    uint64_t usec = 7;
    char pid[32];
    (void)state;

    assert_int_equal(srv_notify_watchdog_usec(&usec), 0);
    assert_true(usec == 0);
    setenv("WATCHDOG_USEC", "30000000", 1);
    assert_int_equal(srv_notify_watchdog_usec(&usec), 0);
    assert_true(usec == 30000000u);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(srv_notify_watchdog_usec(&usec), 0);
    assert_true(usec == 30000000u);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid() + 1);
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(srv_notify_watchdog_usec(&usec), 0);
    assert_true(usec == 0);
    unsetenv("WATCHDOG_PID");
    setenv("WATCHDOG_USEC", "0", 1);
    assert_int_equal(srv_notify_watchdog_usec(&usec), 0);
    assert_true(usec == 0);
    static const char *const bad[] = {"", "-5", "5s", " 5", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        usec = 7;
        setenv("WATCHDOG_USEC", bad[i], 1);
        assert_int_equal(srv_notify_watchdog_usec(&usec), -EINVAL);
        assert_true(usec == 0);
    }
    setenv("WATCHDOG_USEC", "1000", 1);
    setenv("WATCHDOG_PID", "self", 1);
    assert_int_equal(srv_notify_watchdog_usec(&usec), -EINVAL);
}

/* The watchdog timer test: a poll handle reads the pings on the same loop; after three it
 * closes everything, so the loop ends with no handle left open. */
typedef struct {
    ns_socket_t *ns;
    srv_notify_watchdog_t wd;
    uv_poll_t poll;
    uv_timer_t guard;
    int pings;
    int other;
} wd_test_t;

static void close_all(wd_test_t *t)
{
    srv_notify_watchdog_close(&t->wd);
    uv_close((uv_handle_t *)&t->poll, NULL);
    uv_close((uv_handle_t *)&t->guard, NULL);
}

static void on_ping(uv_poll_t *p, int status, int events)
{
    wd_test_t *t = p->data;
    char buf[256];
    (void)events;

    if (status < 0 || ns_recv(t->ns, 0, buf, sizeof(buf), NULL) < 0) {
        return;
    }
    if (strcmp(buf, "WATCHDOG=1") == 0) {
        t->pings++;
    } else {
        t->other++;
    }
    if (t->pings == 3) {
        close_all(t);
    }
}

static void on_guard(uv_timer_t *g)
{
    close_all(g->data); /* no pings in time: the assertion on t.pings fails */
}

static void test_notify_watchdog_timer_pings_until_closed(void **state)
{
    wd_test_t t;
    uv_loop_t loop;

    memset(&t, 0, sizeof(t));
    t.ns = *state;
    setenv("WATCHDOG_USEC", "20000", 1);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(srv_notify_watchdog_start(&t.wd, &loop), 0);
    assert_true(t.wd.interval_ms == 10);
    assert_int_equal(uv_poll_init(&loop, &t.poll, t.ns->fd), 0);
    t.poll.data = &t;
    assert_int_equal(uv_poll_start(&t.poll, UV_READABLE, on_ping), 0);
    assert_int_equal(uv_timer_init(&loop, &t.guard), 0);
    t.guard.data = &t;
    assert_int_equal(uv_timer_start(&t.guard, on_guard, WAIT_MS, 0), 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    srv_notify_watchdog_close(&t.wd); /* a second close does nothing */
    assert_int_equal(t.pings, 3);
    assert_int_equal(t.other, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_notify_watchdog_start_without_watchdog_starts_nothing(void **state)
{
    srv_notify_watchdog_t wd;
    uv_loop_t loop;
    (void)state;

    memset(&wd, 0, sizeof(wd));
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(srv_notify_watchdog_start(&wd, &loop), 0);
    assert_true(wd.interval_ms == 0);
    setenv("WATCHDOG_USEC", "bogus", 1);
    assert_int_equal(srv_notify_watchdog_start(&wd, &loop), -EINVAL);
    assert_true(wd.interval_ms == 0);
    srv_notify_watchdog_close(&wd);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_notify_without_socket_sends_nothing_and_succeeds,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_ready_sends_ready_and_status_from_this_process,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_stopping_and_watchdog_send_their_lines, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_notify_reaches_an_abstract_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_ready_refuses_a_status_of_two_lines, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_notify_bad_addresses_give_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_watchdog_usec_follows_the_managers_variables,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_watchdog_timer_pings_until_closed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_notify_watchdog_start_without_watchdog_starts_nothing,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
