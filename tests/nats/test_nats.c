/* test_nats.c - the JetStream sink against real nats-server processes on loopback: every event
 * appended reaches the stream exactly once (counted back from the stream, ids compared as sets),
 * through a SIGKILL and restart of the server, the loss of a cluster's stream leader and of the
 * node the client is connected to (a reconnect to another node); clear errors when NATS is absent
 * or the stream missing; close reports what was never stored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "natsd.h"
#include "sink/sink.h"
#include "sink_fixture.h"

#define GUARD_MS 60000 /* a wait that never ends fails the test instead of hanging it */
#define SUBJECT "itest.events"
#define STREAM "ITEST"

static size_t make_event(char *out, size_t cap, uint64_t i)
{
    int n =
        snprintf(out, cap, "{\"type\":\"click\",\"i\":%llu,\"p\":\"abcdefghijklmnopqrstuvwxyz\"}",
                 (unsigned long long)i);
    assert_true(n > 0 && (size_t)n < cap);
    return (size_t)n;
}

/* Appends events [from, to) obeying backpressure. */
static void append_range(sink_writer_t *w, waiter_t *wt, uint64_t from, uint64_t to)
{
    char ev[128];
    for (uint64_t i = from; i < to; i++) {
        size_t len = make_event(ev, sizeof(ev), i);
        int rc = sink_append(w, ev, len);
        assert_true(rc == 0 || rc == 1);
        if (rc == 1) {
            assert_int_equal(wait_writable(wt), 0);
        }
    }
}

/* Log lines of the sink, kept for assertions. */
typedef struct {
    pthread_mutex_t mu;
    char text[16384];
} logbuf_t;

static void keep_log(void *ctx, const char *line)
{
    logbuf_t *l = ctx;
    pthread_mutex_lock(&l->mu);
    size_t n = strlen(l->text);
    snprintf(l->text + n, sizeof(l->text) - n, "%s\n", line);
    pthread_mutex_unlock(&l->mu);
    fprintf(stderr, "sink: %s\n", line);
}

static sink_config_t nats_config(const char *spec, logbuf_t *log)
{
    sink_config_t cfg;
    sink_config_init(&cfg);
    cfg.spec = spec;
    cfg.chunk_bytes = 16 * 1024;
    cfg.max_pending_chunks = 8;
    cfg.flush_interval_ms = 5;
    cfg.alloc_fn = counting_alloc;
    cfg.free_fn = counting_free;
    cfg.nats.stream = STREAM;
    cfg.nats.ack_timeout_ms = 1000;
    cfg.durable_timeout_ms = 3000;
    if (log != NULL) {
        memset(log, 0, sizeof(*log));
        pthread_mutex_init(&log->mu, NULL);
        cfg.log_fn = keep_log;
        cfg.log_ctx = log;
    }
    return cfg;
}

/* ---- tests ---- */

static void test_parse_spec_accepts_nats_urls_and_rejects_incomplete_ones(void **state)
{
    (void)state;
    sink_kind_t k;
    const char *arg;
    assert_int_equal(sink_parse_spec("nats://127.0.0.1:4222/events", &k, &arg), 0);
    assert_int_equal(k, SINK_NATS);
    assert_string_equal(arg, "//127.0.0.1:4222/events");
    assert_int_equal(sink_parse_spec("nats://a:1,b:2,c:3/ev.in", &k, NULL), 0);
    const char *bad[] = {"nats://127.0.0.1:4222",
                         "nats://127.0.0.1:4222/",
                         "nats:///events",
                         "nats:127.0.0.1/events",
                         "nats://h:1/a b",
                         "nats://h:1/a/b",
                         "nats"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(sink_parse_spec(bad[i], NULL, NULL), -EINVAL);
    }
}

/* Publishes n events through the engine with the given batch and checks the stream. */
static void publish_and_count(size_t batch_events, uint64_t n)
{
    natsd_t d;
    assert_int_equal(natsd_start(&d), 0);
    char url[64], spec[96];
    natsd_url(&d, url, sizeof(url));
    snprintf(spec, sizeof(spec), "nats://127.0.0.1:%u/%s", d.port, SUBJECT);
    assert_int_equal(natsd_create_stream(url, STREAM, SUBJECT, 1), 0);

    waiter_t wt;
    assert_int_equal(waiter_init(&wt, GUARD_MS), 0);
    sink_config_t cfg = nats_config(spec, NULL);
    cfg.nats.batch_events = batch_events;
    sink_t *s;
    assert_int_equal(sink_create(&cfg, &s), 0);
    assert_int_equal(sink_kind(s), SINK_NATS);
    assert_int_equal(sink_ready(s), 1);
    sink_writer_t *w;
    assert_int_equal(sink_writer_create(s, &wt.loop, on_writable, &wt, &w), 0);
    sink_writer_set_durable_cb(w, on_durable, &wt);
    append_range(w, &wt, 0, n);
    assert_int_equal(sink_writer_seq(w), n);
    sink_writer_flush(w);
    assert_int_equal(wait_durable(&wt, w, n), 0);
    assert_true(wt.durable_calls > 0);
    assert_int_equal(sink_writer_lost(w), 0);

    sink_stats_t st;
    sink_stats(s, &st);
    assert_int_equal(st.events_durable, n);
    assert_int_equal(st.nats.events_stored, n);
    assert_int_equal(st.nats.inflight_msgs, 0);
    assert_int_equal(st.nats.state, SINK_CONN_CONNECTED);
    assert_int_equal(st.nats.ack_latency_count, st.nats.msgs_stored);
    if (batch_events > 0) {
        assert_true(st.nats.msgs_published >= n / batch_events);
    }
    sink_writer_destroy(w);
    assert_int_equal(sink_close(s), 0);
    assert_int_equal(waiter_close(&wt), 0);
    assert_int_equal(natsd_stream_holds_exactly(url, STREAM, n, NULL), 0);
    natsd_stop(&d);
}

static void test_every_event_reaches_the_stream_exactly_once_in_whole_chunks(void **state)
{
    (void)state;
    publish_and_count(0, 50000);
}

static void test_every_event_reaches_the_stream_exactly_once_in_batches_of_10(void **state)
{
    (void)state;
    publish_and_count(10, 20000);
}

static void test_a_missing_stream_fails_create_unless_asked_to_create_it(void **state)
{
    (void)state;
    natsd_t d;
    assert_int_equal(natsd_start(&d), 0);
    char spec[96];
    snprintf(spec, sizeof(spec), "nats://127.0.0.1:%u/%s", d.port, SUBJECT);
    logbuf_t log;
    sink_config_t cfg = nats_config(spec, &log);
    sink_t *s = NULL;
    assert_int_equal(sink_create(&cfg, &s), -ENOENT);
    assert_non_null(strstr(log.text, "stream ITEST not found"));
    cfg.nats.create_stream = true;
    assert_int_equal(sink_create(&cfg, &s), 0);
    assert_non_null(strstr(log.text, "created JetStream stream ITEST"));
    assert_int_equal(sink_ready(s), 1);
    assert_int_equal(sink_close(s), 0);
    natsd_stop(&d);
}

static void
test_absent_nats_means_not_ready_errors_and_close_reports_what_was_not_stored(void **state)
{
    (void)state;
    natsd_t d; /* started and stopped only to get a port nobody listens on */
    assert_int_equal(natsd_start(&d), 0);
    uint16_t port = d.port;
    natsd_stop(&d);
    char spec[96];
    snprintf(spec, sizeof(spec), "nats://127.0.0.1:%u/%s", port, SUBJECT);
    logbuf_t log;
    sink_config_t cfg = nats_config(spec, &log);
    cfg.durable_timeout_ms = 500;
    sink_t *s;
    assert_int_equal(sink_create(&cfg, &s), 0); /* keeps trying in the background */
    assert_non_null(strstr(log.text, "no NATS server answers"));
    assert_int_equal(sink_ready(s), 0);
    waiter_t wt;
    assert_int_equal(waiter_init(&wt, GUARD_MS), 0);
    sink_writer_t *w;
    assert_int_equal(sink_writer_create(s, &wt.loop, on_writable, &wt, &w), 0);
    append_range(w, &wt, 0, 100);
    sink_writer_flush(w);
    sink_stats_t st;
    for (int i = 0; i < 200; i++) {
        sink_stats(s, &st);
        if (st.write_errors > 0) {
            break;
        }
        usleep(10000);
    }
    assert_true(st.write_errors > 0);
    assert_int_equal(sink_writer_durable(w), 0);
    assert_int_equal(st.nats.state, SINK_CONN_CONNECTING);
    sink_writer_destroy(w); /* gives up after the write errors */
    sink_stats(s, &st);
    assert_int_equal(st.events_lost, 100);
    assert_int_equal(st.events_durable, 0);
    assert_true(sink_close(s) < 0);
    assert_non_null(strstr(log.text, "100 events not stored"));
    assert_int_equal(waiter_close(&wt), 0);
}

/* Kills a server (or the stream's leader) once the writer has made some events durable, and
 * restarts it after a pause, from its own thread while the test thread keeps appending. */
typedef struct {
    natsd_t *nodes;
    int nnodes;
    bool leader; /* kill the stream's leader (cluster) instead of nodes[0] */
    bool restart;
    const char *urls;
    sink_writer_t *w;
    uint64_t kill_after; /* durable events before the kill */
    _Atomic uint64_t durable_at_kill;
    atomic_int done;
    int killed;
} killer_t;

static void *killer_main(void *arg)
{
    killer_t *k = arg;
    for (int i = 0; i < 6000 && sink_writer_durable(k->w) < k->kill_after; i++) {
        usleep(5000);
    }
    int victim = 0;
    if (k->leader) {
        char name[32] = "";
        if (natsd_stream_leader(k->urls, STREAM, name, sizeof(name)) == 0) {
            for (int i = 0; i < k->nnodes; i++) {
                if (strcmp(k->nodes[i].name, name) == 0) {
                    victim = i;
                }
            }
        }
    }
    atomic_store(&k->durable_at_kill, sink_writer_durable(k->w));
    natsd_kill(&k->nodes[victim]);
    k->killed = victim;
    if (k->restart) {
        usleep(1500 * 1000);
        natsd_restart(&k->nodes[victim]);
    }
    atomic_store(&k->done, 1);
    return NULL;
}

static void load_through_a_kill(natsd_t *nodes, int nnodes, bool leader, const char *spec,
                                const char *urls, uint64_t n)
{
    counting_reset();
    waiter_t wt;
    assert_int_equal(waiter_init(&wt, GUARD_MS), 0);
    logbuf_t log;
    sink_config_t cfg = nats_config(spec, &log);
    cfg.nats.batch_events = 50; /* many messages in flight when the kill lands */
    sink_t *s;
    assert_int_equal(sink_create(&cfg, &s), 0);
    sink_writer_t *w;
    assert_int_equal(sink_writer_create(s, &wt.loop, on_writable, &wt, &w), 0);
    killer_t k = {.nodes = nodes,
                  .nnodes = nnodes,
                  .leader = leader,
                  .restart = true,
                  .urls = urls,
                  .w = w,
                  .kill_after = n / 4};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, killer_main, &k), 0);
    append_range(w, &wt, 0, n);
    sink_writer_flush(w);
    assert_int_equal(wait_durable(&wt, w, n), 0);
    pthread_join(th, NULL);
    assert_true(atomic_load(&k.durable_at_kill) >= n / 4);
    assert_true(atomic_load(&k.durable_at_kill) < n); /* the kill landed mid-load */
    assert_int_equal(sink_writer_lost(w), 0);

    sink_stats_t st;
    sink_stats(s, &st);
    assert_int_equal(st.events_durable, n);
    assert_int_equal(st.events_lost, 0);
    if (!leader) {
        assert_true(st.nats.disconnects >= 1);
        assert_true(st.nats.reconnects >= 1);
        assert_non_null(strstr(log.text, "reconnected to NATS at nats://"));
    }
    if (!leader && nnodes > 1) {
        /* Another node took the client while the killed one was down. */
        char killed[72], url[64];
        natsd_url(&nodes[k.killed], url, sizeof(url));
        snprintf(killed, sizeof(killed), "%s ", url); /* the whole URL: no port's prefix */
        char *at = strstr(log.text, "reconnected to NATS at ");
        assert_true(strncmp(at + strlen("reconnected to NATS at "), killed, strlen(killed)) != 0);
    }
    /* Memory bounded while it waited: the sink's own allocations never went past one writer's
     * bound (plus its ring and small state), whatever the outage's length. */
    assert_true(atomic_load(&counting.peak) <= sink_writer_bound(s) + 256 * 1024);
    sink_writer_destroy(w);
    assert_int_equal(sink_close(s), 0);
    assert_int_equal(waiter_close(&wt), 0);
    assert_int_equal(natsd_stream_holds_exactly(urls, STREAM, n, NULL), 0);
}

static void test_sigkill_and_restart_of_nats_on_its_store_loses_and_duplicates_nothing(void **state)
{
    (void)state;
    natsd_t d;
    assert_int_equal(natsd_start(&d), 0);
    char url[64], spec[96];
    natsd_url(&d, url, sizeof(url));
    snprintf(spec, sizeof(spec), "nats://127.0.0.1:%u/%s", d.port, SUBJECT);
    assert_int_equal(natsd_create_stream(url, STREAM, SUBJECT, 1), 0);
    load_through_a_kill(&d, 1, false, spec, url, 200000);
    natsd_stop(&d);
}

/* A 3-node cluster with an R3 stream; load_through_a_kill kills the stream's leader (leader) or
 * the node the sink is connected to. */
static void load_through_an_r3_kill(bool leader)
{
    natsd_t d[3];
    assert_int_equal(natsd_start_cluster(d), 0);
    char urls[256], spec[256];
    snprintf(urls, sizeof(urls), "nats://127.0.0.1:%u,nats://127.0.0.1:%u,nats://127.0.0.1:%u",
             d[0].port, d[1].port, d[2].port);
    snprintf(spec, sizeof(spec), "nats://127.0.0.1:%u,127.0.0.1:%u,127.0.0.1:%u/%s", d[0].port,
             d[1].port, d[2].port, SUBJECT);
    assert_int_equal(natsd_create_stream(urls, STREAM, SUBJECT, 3), 0);
    load_through_a_kill(d, 3, leader, spec, urls, 100000);
    for (int i = 0; i < 3; i++) {
        natsd_stop(&d[i]);
    }
}

static void test_killing_the_r3_stream_leader_loses_and_duplicates_nothing(void **state)
{
    (void)state;
    load_through_an_r3_kill(true);
}

/* The node the sink is connected to (the first URL: the sink does not randomize the server list)
 * is SIGKILLed: the client reconnects to another node (disconnects and reconnects counted by
 * load_through_a_kill) and resends what was not acknowledged. */
static void
test_killing_the_r3_node_the_sink_is_connected_to_reconnects_and_loses_nothing(void **state)
{
    (void)state;
    load_through_an_r3_kill(false);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* e.g. "*leader*" */
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_spec_accepts_nats_urls_and_rejects_incomplete_ones),
        cmocka_unit_test(test_every_event_reaches_the_stream_exactly_once_in_whole_chunks),
        cmocka_unit_test(test_every_event_reaches_the_stream_exactly_once_in_batches_of_10),
        cmocka_unit_test(test_a_missing_stream_fails_create_unless_asked_to_create_it),
        cmocka_unit_test(
            test_absent_nats_means_not_ready_errors_and_close_reports_what_was_not_stored),
        cmocka_unit_test(
            test_sigkill_and_restart_of_nats_on_its_store_loses_and_duplicates_nothing),
        cmocka_unit_test(test_killing_the_r3_stream_leader_loses_and_duplicates_nothing),
        cmocka_unit_test(
            test_killing_the_r3_node_the_sink_is_connected_to_reconnects_and_loses_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
