/* test_nats_ingestd.c - the real ingestd binary with --sink nats://... against a real nats-server:
 * a million events over TCP end up in the stream exactly (counted back by event id), and a NATS
 * that is gone at shutdown makes ingestd exit non-zero, saying how many events were not stored;
 * --nats-token-file, --nats-tls/--nats-ca and --nats-creds against servers requiring a token, TLS
 * and operator (JWT) mode: the right settings store events, wrong ones stop ingestd at start
 * with the reason, before it accepts anything. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ackload.h"
#include "harness.h"
#include "natsd.h"

#define SUBJECT "itest.events"
#define STREAM "INGESTD" /* ingestd's default --nats-stream */
#define WAIT_MS 240000

/* Sends events [from, to) as NDJSON over one TCP connection, in 64 KiB writes. */
static void send_events(uint16_t port, uint64_t from, uint64_t to)
{
    int fd = ih_connect(port);
    assert_true(fd >= 0);
    static char buf[65536];
    size_t len = 0;
    for (uint64_t i = from; i < to; i++) {
        if (len + 64 > sizeof(buf)) {
            assert_int_equal(ih_send_all(fd, buf, len), 0);
            len = 0;
        }
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "{\"type\":\"t\",\"i\":%llu}\n",
                                (unsigned long long)i);
    }
    assert_int_equal(ih_send_all(fd, buf, len), 0);
    close(fd);
}

/* A standalone JetStream server with the stream ingestd writes to: its URL, and the --sink spec
 * that publishes to the stream's subject. */
static void start_stream_with(natsd_t *d, const natsd_opts_t *o, char url[64], char spec[96])
{
    assert_int_equal(natsd_start_with(d, o), 0);
    natsd_url(d, url, 64);
    snprintf(spec, 96, "nats://127.0.0.1:%u/%s", d->port, SUBJECT);
    assert_int_equal(natsd_create_stream(url, STREAM, SUBJECT, 1), 0);
}

static void start_stream(natsd_t *d, char url[64], char spec[96])
{
    start_stream_with(d, NULL, url, spec);
}

/* ingestd with the extra flags takes events 0..n-1 over TCP, accepts them all and drains (its
 * drain waits until the stream has them). */
static void ingest_over_tcp(const char *const *extra, uint64_t n)
{
    ih_server_t srv;
    assert_int_equal(ih_start(&srv, extra), 0);
    ih_counts_t base, delta;
    assert_int_equal(ih_counts(srv.admin_port, &base), 0);
    send_events(srv.tcp_port, 0, n);
    assert_int_equal(ih_wait_counts(srv.admin_port, &base, (double)n, WAIT_MS, &delta), 0);
    assert_true(delta.v[0] == (double)n); /* every event accepted */
    assert_int_equal(ih_stop(&srv, SIGTERM), 0);
    ih_cleanup(&srv);
}

static void test_a_million_tcp_events_are_in_the_stream_exactly(void **state)
{
    (void)state;
    const uint64_t n = 1000000;
    natsd_t d;
    char url[64], spec[96];
    start_stream(&d, url, spec);
    const char *extra[] = {"--sink", spec, NULL};
    ingest_over_tcp(extra, n);
    size_t max_body = 0;
    assert_int_equal(natsd_stream_holds_exactly(url, STREAM, n, &max_body), 0);
    /* Messages are --nats-batch-bytes (256 KiB by default) at most, and under this load they
     * fill past the file sink's 64 KiB chunk. */
    assert_true(max_body <= 256 * 1024);
    assert_true(max_body > 64 * 1024);
    natsd_stop(&d);
}

/* --nats-batch-bytes bounds every message body, and messages fill up to it. */
static void test_batch_bytes_bounds_each_message(void **state)
{
    (void)state;
    const uint64_t n = 200000;
    natsd_t d;
    char url[64], spec[96];
    start_stream(&d, url, spec);
    const char *extra[] = {"--sink", spec, "--nats-batch-bytes", "16KiB", NULL};
    ingest_over_tcp(extra, n);
    size_t max_body = 0;
    assert_int_equal(natsd_stream_holds_exactly(url, STREAM, n, &max_body), 0);
    assert_true(max_body <= 16 * 1024);
    assert_true(max_body > 8 * 1024);
    natsd_stop(&d);
}

static void test_nats_gone_at_shutdown_exits_non_zero_and_says_what_was_not_stored(void **state)
{
    (void)state;
    natsd_t d;
    char url[64], spec[96];
    start_stream(&d, url, spec);
    ih_server_t srv;
    const char *extra[] = {"--sink", spec, NULL};
    assert_int_equal(ih_start(&srv, extra), 0);
    natsd_kill(&d);
    ih_counts_t base, delta;
    assert_int_equal(ih_counts(srv.admin_port, &base), 0);
    send_events(srv.tcp_port, 0, 1000);
    assert_int_equal(ih_wait_counts(srv.admin_port, &base, 1000, WAIT_MS, &delta), 0);
    assert_int_equal(ih_stop(&srv, SIGTERM), 1);
    char *log = ih_log(&srv);
    assert_non_null(log);
    assert_non_null(strstr(log, "1000 events not stored"));
    assert_true(ih_log_value(&srv, "shutdown", "events_not_stored") == 1000);
    free(log);
    ih_cleanup(&srv);
    natsd_stop(&d);
}

/* Runs loadgen (LOADGEN_BIN) with args; returns its exit status or -1. */
static int run_loadgen(const char *const *args)
{
    pid_t pid = fork();
    if (pid == 0) {
        execv(LOADGEN_BIN, (char *const *)args);
        _exit(127);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
        return -1;
    }
    return WEXITSTATUS(status);
}

static void
test_loadgen_verify_nats_passes_when_the_stream_gained_every_event_and_fails_if_not(void **state)
{
    (void)state;
    natsd_t d;
    char url[64], spec[96], verify[96];
    start_stream(&d, url, spec);
    snprintf(verify, sizeof(verify), "nats://127.0.0.1:%u/%s", d.port, STREAM);
    const char *sinks[2] = {spec, "null"}; /* into the stream, then nowhere */
    for (int i = 0; i < 2; i++) {
        ih_server_t srv;
        const char *extra[] = {"--sink", sinks[i], NULL};
        assert_int_equal(ih_start(&srv, extra), 0);
        char target[64], metrics[64];
        snprintf(target, sizeof(target), "tcp://127.0.0.1:%u", srv.tcp_port);
        snprintf(metrics, sizeof(metrics), "http://127.0.0.1:%u/metrics", srv.admin_port);
        const char *args[] = {LOADGEN_BIN,     "run",   "--target",      target,
                              "--events",      "20000", "--metrics",     metrics,
                              "--verify-nats", verify,  "--no-progress", NULL};
        assert_int_equal(run_loadgen(args), i == 0 ? 0 : 1);
        assert_int_equal(ih_stop(&srv, SIGTERM), 0);
        ih_cleanup(&srv);
    }
    natsd_stop(&d);
}

/* A stream, ingestd publishing to it with --ack durable and the more flags, and the HTTP load
 * (ackload) running against it. */
static ackload_t *durable_load(natsd_t *d, char url[64], ih_server_t *srv, const char *const *more)
{
    char spec[96];
    start_stream(d, url, spec);
    const char *extra[16] = {"--sink", spec, "--ack", "durable"};
    for (int i = 0; more[i] != NULL; i++) {
        extra[4 + i] = more[i];
    }
    assert_int_equal(ih_start(srv, extra), 0);
    ackload_t *L = ackload_new();
    assert_non_null(L);
    assert_int_equal(ackload_start(L, srv->http_port), 0);
    return L;
}

/* Every event a 200 acknowledged is in the stream at url, once. Frees L. */
static void expect_acked_stored_once(const char *what, const char *url, ackload_t *L)
{
    natsd_content_t c;
    assert_int_equal(natsd_read_stream(url, STREAM, ACKLOAD_MAX_IDS, &c), 0);
    uint64_t missing = ackload_missing(L, c.seen);
    uint64_t dups = c.dup_events;
    natsd_content_free(&c);
    print_message("%s: %llu events acknowledged, %llu of them missing, %llu duplicated\n", what,
                  (unsigned long long)atomic_load(&L->acked_n), (unsigned long long)missing,
                  (unsigned long long)dups);
    assert_int_equal(missing, 0);
    assert_int_equal(dups, 0);
    ackload_free(L);
}

/* --ack durable over HTTP: ingestd SIGKILLed mid-load; every acknowledged event is in the
 * stream. */
static void test_durable_acks_survive_sigkill_of_ingestd(void **state)
{
    (void)state;
    natsd_t d;
    char url[64];
    ih_server_t srv;
    const char *more[] = {NULL};
    ackload_t *L = durable_load(&d, url, &srv, more);
    usleep(1500 * 1000);
    assert_int_equal(ih_stop(&srv, SIGKILL), 128 + SIGKILL);
    ackload_stop(L);
    ih_cleanup(&srv);
    assert_true(atomic_load(&L->acked_n) > 0);
    expect_acked_stored_once("nats, ingestd killed", url, L);
    natsd_stop(&d);
}

/* --ack durable over HTTP: nats-server SIGKILLed mid-load and restarted on its store. Replies wait
 * meanwhile (memory stays bounded), ingestd goes on without a restart, every acknowledged event
 * is in the stream once, resends deduplicated by Nats-Msg-Id. */
static void test_durable_acks_survive_sigkill_and_restart_of_nats(void **state)
{
    (void)state;
    natsd_t d;
    char url[64];
    ih_server_t srv;
    const char *more[] = {"--ack-timeout", "60s", NULL};
    ackload_t *L = durable_load(&d, url, &srv, more);
    usleep(700 * 1000);
    natsd_kill(&d);
    uint64_t at_kill = atomic_load(&L->acked_n);
    usleep(1500 * 1000);
    /* While NATS is gone: what is held is bounded (the sink's chunks, backpressure, 503s). */
    double live = ih_metric(srv.admin_port, "ingestd_memstats_alloc_bytes");
    assert_true(live < 64.0 * 1024 * 1024);
    assert_int_equal(natsd_restart(&d), 0);
    usleep(3000 * 1000);
    ackload_stop(L);
    uint64_t after = atomic_load(&L->acked_n);
    assert_int_equal(ih_stop(&srv, SIGTERM), 0);
    ih_cleanup(&srv);
    print_message("nats killed and restarted: %llu acknowledged before the kill, %llu in all, "
                  "%.1f MiB live during the outage\n",
                  (unsigned long long)at_kill, (unsigned long long)after, live / 1048576.0);
    assert_true(after > at_kill); /* progress resumed without restarting ingestd */
    expect_acked_stored_once("nats killed and restarted", url, L);
    natsd_stop(&d);
}

/* --ack durable over HTTP, NATS gone, then SIGTERM: the drain gives up what the stream never
 * acknowledged, and the replies held for those events are answered 503, never 200 (a given-up
 * event settles the sink's sequence without being stored). */
static void test_replies_for_events_given_up_at_shutdown_are_503(void **state)
{
    (void)state;
    natsd_t d;
    char url[64];
    ih_server_t srv;
    const char *more[] = {"--ack-timeout", "60s", "--shutdown-timeout", "4s", NULL};
    ackload_t *L = durable_load(&d, url, &srv, more);
    usleep(700 * 1000);
    natsd_kill(&d);
    usleep(500 * 1000); /* the clients' next requests are held, waiting for the stream */
    uint64_t before = atomic_load(&L->acked_n);
    assert_int_equal(ih_stop(&srv, SIGTERM), 1); /* some accepted events were never stored */
    ackload_stop(L);
    uint64_t given_up = (uint64_t)ih_log_value(&srv, "shutdown", "events_not_stored");
    ih_cleanup(&srv);
    assert_int_equal(natsd_restart(&d), 0);
    print_message("nats gone at SIGTERM: %llu acknowledged before, %llu given up\n",
                  (unsigned long long)before, (unsigned long long)given_up);
    assert_true(given_up > 0);
    expect_acked_stored_once("nats gone at SIGTERM", url, L);
    natsd_stop(&d);
}

/* ---- authentication and TLS (--nats-token-file, --nats-tls, --nats-ca) ---- */

/* ingestd with --sink spec and flags is ready, and stores events sent over TCP: counted as stored,
 * and (url not NULL) in the stream at url exactly. */
static void stores_events_with(const char *url, const char *spec, const char *const *flags)
{
    const char *extra[16] = {"--sink", spec};
    for (int i = 0; flags[i] != NULL; i++) {
        extra[2 + i] = flags[i];
    }
    ih_server_t srv;
    assert_int_equal(ih_start(&srv, extra), 0);
    assert_true(ih_metric(srv.admin_port, "ingestd_nats_connection_state") == 2.0);
    static const char req[] = "GET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    char *resp = ih_http(srv.admin_port, req, sizeof(req) - 1, NULL);
    assert_int_equal(ih_http_status(resp), 200);
    free(resp);
    ih_counts_t base, delta;
    assert_int_equal(ih_counts(srv.admin_port, &base), 0);
    send_events(srv.tcp_port, 0, 10000);
    assert_int_equal(ih_wait_counts(srv.admin_port, &base, 10000, WAIT_MS, &delta), 0);
    assert_true(ih_wait_metric(srv.admin_port, "ingestd_nats_events_stored_total", 10000,
                               WAIT_MS) == 10000);
    assert_int_equal(ih_stop(&srv, SIGTERM), 0);
    ih_cleanup(&srv);
    if (url != NULL) {
        assert_int_equal(natsd_stream_holds_exactly(url, STREAM, 10000, NULL), 0);
    }
}

/* ingestd with --sink spec and flags is refused by the server at url (credentials, TLS, an
 * unreadable credentials file): it exits 1 at start, before accepting anything, with a log line
 * saying "cannot use NATS at" and want, so a supervisor restarts it once the settings are fixed;
 * the stream (url not NULL) gains nothing. */
static void start_is_refused_with(const char *url, const char *spec, const char *const *flags,
                                  const char *want)
{
    char log_path[] = "/tmp/ingestd-refused.XXXXXX";
    int fd = mkstemp(log_path);
    assert_true(fd >= 0);
    const char *argv[24] = {INGESTD_BIN,   "--tcp",   "127.0.0.1:0", "--http",
                            "127.0.0.1:0", "--admin", "127.0.0.1:0", "--sink",
                            spec,          "--ack",   "durable"};
    int argc = 11;
    for (int i = 0; flags[i] != NULL; i++) {
        argv[argc++] = flags[i];
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, 2);
        execv(INGESTD_BIN, (char *const *)argv);
        _exit(127);
    }
    close(fd);
    int status = 0;
    pid_t got = 0;
    for (int i = 0; i < 3000 && (got = waitpid(pid, &status, WNOHANG)) == 0; i++) {
        usleep(10000);
    }
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("ingestd did not exit at start when refused");
    }
    FILE *f = fopen(log_path, "r");
    assert_non_null(f);
    static char log[65536];
    size_t n = fread(log, 1, sizeof(log) - 1, f);
    log[n] = '\0';
    fclose(f);
    unlink(log_path);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    const char *line = strstr(log, "cannot use NATS at");
    const char *eol = line != NULL ? strchr(line, '\n') : NULL;
    const char *w = line != NULL ? strstr(line, want) : NULL;
    if (w == NULL || (eol != NULL && w > eol)) {
        fail_msg("no \"cannot use NATS at ... %s\" in ingestd's log:\n%s", want, log);
    }
    assert_null(strstr(log, " listening ")); /* it never served */
    if (url != NULL) {
        natsd_content_t c;
        assert_int_equal(natsd_read_stream(url, STREAM, 0, &c), 0);
        assert_int_equal(c.msgs, 0);
        natsd_content_free(&c);
    }
}

/* A file holding the token (and a newline, cut), under its own temporary dir. */
static void write_token_file(const natsd_t *d, const char *name, const char *token, char *path,
                             size_t cap)
{
    snprintf(path, cap, "%s/%s", d->dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", token);
    assert_int_equal(fclose(f), 0);
}

static void test_a_token_file_with_the_servers_token_stores_events(void **state)
{
    (void)state;
    natsd_t d;
    char url[64], spec[96], path[128];
    natsd_opts_t o = {.token = "s3cret-token"};
    start_stream_with(&d, &o, url, spec);
    write_token_file(&d, "token", "s3cret-token", path, sizeof(path));
    const char *flags[] = {"--nats-token-file", path, NULL};
    stores_events_with(url, spec, flags);
    natsd_stop(&d);
}

static void test_a_wrong_token_or_none_is_refused_clearly_at_start(void **state)
{
    (void)state;
    natsd_t d;
    char url[64], spec[96], path[128];
    natsd_opts_t o = {.token = "s3cret-token"};
    start_stream_with(&d, &o, url, spec);
    write_token_file(&d, "wrong", "not-the-token", path, sizeof(path));
    const char *wrong[] = {"--nats-token-file", path, NULL};
    start_is_refused_with(url, spec, wrong, "Authorization Violation");
    const char *none[] = {NULL};
    start_is_refused_with(url, spec, none, "Authorization Violation");
    natsd_stop(&d);
}

static void test_tls_with_the_servers_ca_stores_events(void **state)
{
    (void)state;
    natsd_t d;
    char url[64], spec[96], ca[96];
    natsd_opts_t o = {.tls = true};
    start_stream_with(&d, &o, url, spec);
    snprintf(ca, sizeof(ca), "%s/ca.pem", d.dir);
    const char *flags[] = {"--nats-tls", "on", "--nats-ca", ca, NULL};
    stores_events_with(url, spec, flags);
    natsd_stop(&d);
    /* --nats-tls off follows a server that requires TLS, verifying it with --nats-ca. */
    start_stream_with(&d, &o, url, spec);
    snprintf(ca, sizeof(ca), "%s/ca.pem", d.dir);
    const char *follow[] = {"--nats-tls", "off", "--nats-ca", ca, NULL};
    stores_events_with(url, spec, follow);
    natsd_stop(&d);
}

static void test_tls_without_the_ca_or_with_tls_off_is_refused_clearly_at_start(void **state)
{
    (void)state;
    natsd_t d;
    char url[64], spec[96];
    natsd_opts_t o = {.tls = true};
    start_stream_with(&d, &o, url, spec);
    /* The system's trust store does not know our throwaway CA. */
    const char *system_ca[] = {"--nats-tls", "on", NULL};
    start_is_refused_with(url, spec, system_ca, "unable to get local issuer certificate");
    /* cnats does not refuse a server that requires TLS when TLS is off: it follows the server
     * into TLS, where the certificate fails the same way. */
    const char *off[] = {"--nats-tls", "off", NULL};
    start_is_refused_with(url, spec, off, "unable to get local issuer certificate");
    natsd_stop(&d);
}

static void test_tls_on_against_a_server_without_tls_is_refused_clearly_at_start(void **state)
{
    (void)state;
    natsd_t d;
    char url[64], spec[96];
    start_stream(&d, url, spec);
    const char *flags[] = {"--nats-tls", "on", NULL};
    start_is_refused_with(url, spec, flags, "Secure Connection");
    natsd_stop(&d);
}

/* ---- credentials (--nats-creds) against a server in operator mode ---- */

/* A server in operator (JWT) mode: natsjwt.py makes an operator, a system account, an account with
 * JetStream and credentials files in a new dir (jwtdir) and prints the server's config. */
static void start_operator_mode(natsd_t *d, char jwtdir[64], char spec[96])
{
    snprintf(jwtdir, 64, "/tmp/ingestd-jwt.XXXXXX");
    assert_non_null(mkdtemp(jwtdir));
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "python3 '%s' '%s'", NATSJWT_PY, jwtdir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    static char conf[32768];
    size_t n = fread(conf, 1, sizeof(conf) - 1, p);
    conf[n] = '\0';
    assert_int_equal(pclose(p), 0);
    natsd_opts_t o = {.conf = conf};
    assert_int_equal(natsd_start_with(d, &o), 0);
    snprintf(spec, 96, "nats://127.0.0.1:%u/%s", d->port, SUBJECT);
}

static void remove_dir(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_a_creds_file_of_a_user_the_operator_trusts_stores_events(void **state)
{
    (void)state;
    natsd_t d;
    char jwtdir[64], spec[96], creds[96];
    start_operator_mode(&d, jwtdir, spec);
    snprintf(creds, sizeof(creds), "%s/user.creds", jwtdir);
    /* The stream helpers have no credentials: ingestd creates the stream, its counters and exit
     * status say what was stored. */
    const char *flags[] = {"--nats-creds", creds, "--nats-create-stream", "on", NULL};
    stores_events_with(NULL, spec, flags);
    natsd_stop(&d);
    remove_dir(jwtdir);
}

static void
test_creds_of_an_unknown_account_a_wrong_seed_or_no_file_are_refused_at_start(void **state)
{
    (void)state;
    natsd_t d;
    char jwtdir[64], spec[96], creds[96];
    start_operator_mode(&d, jwtdir, spec);
    static const char *const bad[] = {"wrong-account.creds", "wrong-seed.creds"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(creds, sizeof(creds), "%s/%s", jwtdir, bad[i]);
        const char *flags[] = {"--nats-creds", creds, "--nats-create-stream", "on", NULL};
        start_is_refused_with(NULL, spec, flags, "Authorization Violation");
    }
    snprintf(creds, sizeof(creds), "%s/absent.creds", jwtdir);
    const char *absent[] = {"--nats-creds", creds, "--nats-create-stream", "on", NULL};
    start_is_refused_with(NULL, spec, absent, "absent.creds");
    natsd_stop(&d);
    remove_dir(jwtdir);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_million_tcp_events_are_in_the_stream_exactly),
        cmocka_unit_test(test_batch_bytes_bounds_each_message),
        cmocka_unit_test(test_nats_gone_at_shutdown_exits_non_zero_and_says_what_was_not_stored),
        cmocka_unit_test(
            test_loadgen_verify_nats_passes_when_the_stream_gained_every_event_and_fails_if_not),
        cmocka_unit_test(test_durable_acks_survive_sigkill_of_ingestd),
        cmocka_unit_test(test_durable_acks_survive_sigkill_and_restart_of_nats),
        cmocka_unit_test(test_replies_for_events_given_up_at_shutdown_are_503),
        cmocka_unit_test(test_a_token_file_with_the_servers_token_stores_events),
        cmocka_unit_test(test_a_wrong_token_or_none_is_refused_clearly_at_start),
        cmocka_unit_test(test_tls_with_the_servers_ca_stores_events),
        cmocka_unit_test(test_tls_without_the_ca_or_with_tls_off_is_refused_clearly_at_start),
        cmocka_unit_test(test_tls_on_against_a_server_without_tls_is_refused_clearly_at_start),
        cmocka_unit_test(test_a_creds_file_of_a_user_the_operator_trusts_stores_events),
        cmocka_unit_test(
            test_creds_of_an_unknown_account_a_wrong_seed_or_no_file_are_refused_at_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
