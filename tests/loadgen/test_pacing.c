/* test_pacing.c - lg_run against an in-process sink on loopback: every event arrives once, the
 * open-loop pacing holds the asked rate within a generous tolerance (not a benchmark), and HTTP
 * requests get latencies and answers counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lg_corpus.h"
#include "lg_run.h"

#define MAX_CONNS 8

/* A single-threaded sink: counts newlines on TCP, or answers HTTP POSTs with the line count. */
typedef struct {
    int listen_fd;
    unsigned port;
    bool http;
    unsigned expect_conns; /* stop after this many connections have closed */
    uint64_t lines;        /* result, read after join */
    uint64_t requests;
    pthread_t thread;
} sink_t;

typedef struct {
    int fd;
    char *buf;
    size_t len, cap;
} conn_t;

/* Answers every complete request in c->buf; returns false on a malformed one. */
static bool serve_http(sink_t *s, conn_t *c)
{
    for (;;) {
        char *h = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
        if (!h) {
            return true;
        }
        size_t hlen = (size_t)(h - c->buf) + 4;
        char *cl = memmem(c->buf, hlen, "Content-Length: ", 16);
        if (!cl) {
            return false;
        }
        size_t blen = strtoul(cl + 16, NULL, 10);
        if (c->len < hlen + blen) {
            return true;
        }
        uint64_t n = 0;
        for (size_t i = 0; i < blen; i++) {
            n += c->buf[hlen + i] == '\n';
        }
        s->lines += n;
        s->requests++;
        char body[64], resp[256];
        int bl = snprintf(body, sizeof(body), "{\"accepted\":%llu,\"rejected\":0,\"errors\":[]}",
                          (unsigned long long)n);
        int rl = snprintf(resp, sizeof(resp),
                          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          "Content-Length: %d\r\n\r\n%s",
                          bl, body);
        if (send(c->fd, resp, (size_t)rl, MSG_NOSIGNAL) != rl) {
            return false;
        }
        memmove(c->buf, c->buf + hlen + blen, c->len - hlen - blen);
        c->len -= hlen + blen;
    }
}

static void *sink_main(void *arg)
{
    sink_t *s = arg;
    conn_t conns[MAX_CONNS];
    unsigned n = 0, closed = 0;
    while (closed < s->expect_conns) {
        struct pollfd p[MAX_CONNS + 1];
        p[0] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
        for (unsigned i = 0; i < n; i++) {
            p[i + 1] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
        }
        if (poll(p, n + 1, 10000) <= 0) {
            break; /* the test fails on the counts */
        }
        if ((p[0].revents & POLLIN) && n < MAX_CONNS) {
            conns[n] = (conn_t){.fd = accept(s->listen_fd, NULL, NULL)};
            conns[n].cap = 1 << 20;
            conns[n].buf = malloc(conns[n].cap);
            n++;
        }
        for (unsigned i = 0; i < n; i++) {
            conn_t *c = &conns[i];
            if (c->fd < 0 || !(p[i + 1].revents & (POLLIN | POLLHUP | POLLERR))) {
                continue;
            }
            if (c->len == c->cap) {
                c->cap *= 2;
                c->buf = realloc(c->buf, c->cap);
            }
            ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
            if (r > 0) {
                if (s->http) {
                    c->len += (size_t)r;
                    if (serve_http(s, c)) {
                        continue;
                    }
                } else {
                    for (ssize_t k = 0; k < r; k++) {
                        s->lines += c->buf[k] == '\n';
                    }
                    continue;
                }
            }
            close(c->fd);
            c->fd = -1;
            closed++;
        }
    }
    for (unsigned i = 0; i < n; i++) {
        if (conns[i].fd >= 0) {
            close(conns[i].fd);
        }
        free(conns[i].buf);
    }
    return NULL;
}

static void sink_start(sink_t *s, bool http, unsigned conns)
{
    memset(s, 0, sizeof(*s));
    s->http = http;
    s->expect_conns = conns;
    s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->listen_fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->listen_fd, 16), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(s->listen_fd, (struct sockaddr *)&a, &len), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, sink_main, s), 0);
}

static void sink_join(sink_t *s)
{
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
}

static void setup_run(lg_run_config_t *cfg, lg_corpus_t *c, const sink_t *s)
{
    lg_corpus_config_t cc;
    lg_corpus_config_default(&cc);
    cc.events = 512;
    assert_int_equal(lg_corpus_generate(&cc, c), 0);
    lg_run_config_default(cfg);
    char url[64];
    snprintf(url, sizeof(url), "%s://127.0.0.1:%u%s", s->http ? "http" : "tcp", s->port,
             s->http ? "/v1/events" : "");
    assert_int_equal(lg_url_parse(url, &cfg->target), 0);
    cfg->corpus = c;
    cfg->drain_timeout_s = 10;
}

static void test_run_tcp_delivers_every_event_exactly_once(void **state)
{
    (void)state;
    sink_t s;
    sink_start(&s, false, 3);
    lg_run_config_t cfg;
    lg_corpus_t c;
    setup_run(&cfg, &c, &s);
    cfg.connections = 3;
    cfg.events = 5000; /* wraps the 512-event corpus */
    cfg.write_bytes = 10000;
    lg_run_result_t res;
    assert_int_equal(lg_run(&cfg, &res), 0);
    sink_join(&s);
    assert_int_equal(res.sent_events, 5000);
    assert_int_equal(s.lines, 5000);
    assert_int_equal(res.errors, 0);
    assert_false(res.loss_checked);
    lg_run_result_free(&res);
    lg_corpus_free(&c);
}

static void test_run_tcp_paced_rate_is_close_to_the_target(void **state)
{
    (void)state;
    sink_t s;
    sink_start(&s, false, 2);
    lg_run_config_t cfg;
    lg_corpus_t c;
    setup_run(&cfg, &c, &s);
    cfg.connections = 2;
    cfg.events = 600;
    cfg.rate = 2000; /* ~0.3 s */
    lg_run_result_t res;
    assert_int_equal(lg_run(&cfg, &res), 0);
    sink_join(&s);
    assert_int_equal(s.lines, 600);
    double achieved = (double)res.sent_events / res.send_s;
    assert_true(achieved > 2000 * 0.7 && achieved < 2000 * 1.3);
    lg_run_result_free(&res);
    lg_corpus_free(&c);
}

static void test_run_duration_sends_about_rate_times_duration(void **state)
{
    (void)state;
    sink_t s;
    sink_start(&s, false, 1);
    lg_run_config_t cfg;
    lg_corpus_t c;
    setup_run(&cfg, &c, &s);
    cfg.events = 0;
    cfg.duration_s = 0.3;
    cfg.rate = 1000;
    lg_run_result_t res;
    assert_int_equal(lg_run(&cfg, &res), 0);
    sink_join(&s);
    assert_int_equal(s.lines, res.sent_events);
    assert_true(res.sent_events >= 300 * 7 / 10 && res.sent_events <= 300 * 13 / 10);
    lg_run_result_free(&res);
    lg_corpus_free(&c);
}

static void test_run_http_counts_answers_and_records_every_latency(void **state)
{
    (void)state;
    sink_t s;
    sink_start(&s, true, 2);
    lg_run_config_t cfg;
    lg_corpus_t c;
    setup_run(&cfg, &c, &s);
    cfg.connections = 2;
    cfg.events = 1000;
    cfg.batch = 30; /* requests cross the corpus wrap */
    cfg.rate = 5000;
    lg_run_result_t res;
    assert_int_equal(lg_run(&cfg, &res), 0);
    sink_join(&s);
    assert_int_equal(s.lines, 1000);
    assert_int_equal(res.resp_accepted, 1000);
    assert_int_equal(res.requests, s.requests);
    assert_int_equal(res.http_non200, 0);
    assert_non_null(res.latency);
    assert_int_equal(res.latency->total, res.requests);
    assert_true(res.latency->max >= res.latency->min);
    json_t *j = lg_run_json(&cfg, &res);
    assert_non_null(json_object_get(json_object_get(j, "latency_ms"), "p99_9"));
    json_decref(j);
    lg_run_result_free(&res);
    lg_corpus_free(&c);
}

static void test_run_reports_a_target_that_refuses_connections(void **state)
{
    (void)state;
    sink_t s;
    sink_start(&s, false, 0); /* returns at once; the port is closed after join */
    sink_join(&s);
    lg_run_config_t cfg;
    lg_corpus_t c;
    setup_run(&cfg, &c, &s);
    lg_run_result_t res;
    assert_true(lg_run(&cfg, &res) < 0);
    assert_true(strlen(res.error) > 0);
    lg_run_result_free(&res);
    lg_corpus_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_tcp_delivers_every_event_exactly_once),
        cmocka_unit_test(test_run_tcp_paced_rate_is_close_to_the_target),
        cmocka_unit_test(test_run_duration_sends_about_rate_times_duration),
        cmocka_unit_test(test_run_http_counts_answers_and_records_every_latency),
        cmocka_unit_test(test_run_reports_a_target_that_refuses_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
