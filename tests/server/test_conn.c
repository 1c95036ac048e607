/* test_conn.c - one connection's life in process, libuv style (server/conn.h): a listener and a
 * client on one loop over loopback, callbacks counted after uv_run, and every test ends with
 * uv_loop_close() == 0 (nothing left open). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mem/mem.h"
#include "server/conn.h"

typedef struct {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_tcp_t client;
    uv_connect_t creq;
    uv_write_t wreq;
    srv_conn_t *conn;
    srv_conn_kind_t kind;
    const char *send;    /* what the client sends once connected */
    int client_shutdown; /* half-close the client after sending */
    uv_shutdown_t sreq;
    int nobufs_mode; /* alloc gives no buffer */
    char rbuf[4096];
    char got[8192]; /* what the server side read (TCP) */
    size_t got_len;
    char reply[8192]; /* what the client read */
    size_t reply_len;
    int reads, eofs, closed, drained, errors[5], requests, lingers, client_eof;
    /* Held replies (--ack durable): the owner's durable sequence, and what the timer does. */
    uint64_t durable;
    int hold;              /* hold every reply until durable reaches 7 */
    int hold_expire;       /* the timer expires the hold (503) instead of making it durable */
    int hold_lost;         /* the timer settles the events, event 6 given up */
    uint64_t lost_seq;     /* the one event given up (0: none) */
    size_t reply_at_timer; /* what the client had read when the timer fired */
    uv_timer_t timer;
} fixture_t;

static void on_client_closed(uv_handle_t *h)
{
    (void)h;
}

static void client_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    fixture_t *f = h->data;
    (void)hint;
    *buf = uv_buf_init(f->reply + f->reply_len, (unsigned)(sizeof(f->reply) - f->reply_len));
}

static void client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    fixture_t *f = s->data;
    (void)buf;
    if (n > 0) {
        f->reply_len += (size_t)n;
        return;
    }
    if (n < 0) {
        f->client_eof = 1;
        uv_close((uv_handle_t *)&f->client, on_client_closed);
    }
}

static void on_client_shutdown(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status;
}

static void on_client_write(uv_write_t *req, int status)
{
    fixture_t *f = req->data;
    assert_int_equal(status, 0);
    if (f->client_shutdown) {
        assert_int_equal(uv_shutdown(&f->sreq, (uv_stream_t *)&f->client, on_client_shutdown), 0);
    }
}

static void on_connect(uv_connect_t *req, int status)
{
    fixture_t *f = req->data;
    assert_int_equal(status, 0);
    f->client.data = f;
    assert_int_equal(uv_read_start((uv_stream_t *)&f->client, client_alloc, client_read), 0);
    if (f->send != NULL) {
        uv_buf_t b = uv_buf_init((char *)f->send, (unsigned)strlen(f->send));
        f->wreq.data = f;
        assert_int_equal(uv_write(&f->wreq, (uv_stream_t *)&f->client, &b, 1, on_client_write), 0);
    }
}

/* ---- the owner's callbacks ---- */

static void t_alloc(srv_conn_t *c, uv_buf_t *buf)
{
    fixture_t *f = c->owner;
    *buf = f->nobufs_mode ? uv_buf_init(NULL, 0) : uv_buf_init(f->rbuf, sizeof(f->rbuf));
}

static void t_read(srv_conn_t *c, ssize_t n, const uv_buf_t *buf)
{
    fixture_t *f = c->owner;
    if (n < 0) {
        f->eofs++;
        if (c->kind == SRV_CONN_HTTP) {
            srv_conn_http_eof(c);
        } else {
            srv_conn_close(c);
        }
        return;
    }
    f->reads++;
    if (c->kind == SRV_CONN_HTTP) {
        srv_conn_http_feed(c, buf->base, (size_t)n);
        return;
    }
    memcpy(f->got + f->got_len, buf->base, (size_t)n);
    f->got_len += (size_t)n;
    if (memchr(f->got, '!', f->got_len) != NULL) {
        assert_int_equal(srv_conn_send(c, "bye\n", 4), 0);
        srv_conn_finish(c); /* TCP: close once written */
    }
}

static void t_closed(srv_conn_t *c)
{
    fixture_t *f = c->owner;
    f->closed++;
    srv_conn_cleanup(c);
    free(c);
    uv_close((uv_handle_t *)&f->listener, NULL);
}

static void t_drained(srv_conn_t *c)
{
    fixture_t *f = c->owner;
    f->drained++;
}

static void t_error(srv_conn_t *c, srv_conn_error_t e, int status)
{
    fixture_t *f = c->owner;
    (void)status;
    f->errors[e]++;
    if (e == SRV_CONN_ERR_NOBUFS) {
        /* Paused, not closed: the owner decides. This one gives up. */
        assert_false(c->reading);
        srv_conn_close(c);
    }
}

static void t_linger(srv_conn_t *c)
{
    fixture_t *f = c->owner;
    f->lingers++;
}

static uint64_t t_durable(srv_conn_t *c)
{
    fixture_t *f = c->owner;
    return f->durable;
}

static int t_lost(srv_conn_t *c, uint64_t first, uint64_t last)
{
    fixture_t *f = c->owner;
    return f->lost_seq != 0 && first <= f->lost_seq && f->lost_seq <= last;
}

static const srv_conn_ops_t ops = {
    .durable = t_durable,
    .lost = t_lost,
    .alloc = t_alloc,
    .on_read = t_read,
    .on_drained = t_drained,
    .on_closed = t_closed,
    .on_error = t_error,
    .on_linger = t_linger,
};

static void t_request(void *ctx, const char *method, const char *path, const char *query,
                      const char *body, size_t body_len, srv_http_reply_t *reply)
{
    srv_conn_t *c = ctx;
    fixture_t *f = c->owner;
    (void)method;
    (void)query;
    (void)body;
    (void)body_len;
    f->requests++;
    if (strcmp(path, "/hello") == 0) {
        reply->body = "hello\n";
        reply->body_len = 6;
    } else {
        reply->status = 404;
        reply->body = "no\n";
        reply->body_len = 3;
    }
}

static void on_hold_timer(uv_timer_t *t)
{
    fixture_t *f = t->data;
    srv_conn_t *c = f->conn;
    f->reply_at_timer = f->reply_len;
    if (f->hold_expire) {
        assert_int_equal(srv_conn_hold_expired(c, uv_now(&f->loop), 10, 0), 1);
    } else if (f->hold_lost) {
        f->durable = 7; /* settled, but event 6 was given up: the 200 must never go */
        f->lost_seq = 6;
        srv_conn_flush(c);
        assert_int_equal(srv_conn_held(c), 1);
        assert_int_equal(srv_conn_hold_expired(c, uv_now(&f->loop), 60000, 0), 1);
    } else {
        f->durable = 7; /* the events are durable now: the held reply may go */
        srv_conn_flush(c);
    }
    uv_close((uv_handle_t *)t, NULL);
}

static void t_done(void *ctx, int status)
{
    srv_conn_t *c = ctx;
    fixture_t *f = c->owner;
    (void)status;
    srv_conn_reply_done(c, f->hold ? 5 : 0, f->hold ? 7 : 0); /* it acknowledges events 5..7 */
    if (f->hold && !uv_is_active((uv_handle_t *)&f->timer)) {
        assert_int_equal(uv_timer_init(&f->loop, &f->timer), 0);
        f->timer.data = f;
        assert_int_equal(uv_timer_start(&f->timer, on_hold_timer, 100, 0), 0);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    fixture_t *f = server->data;
    assert_int_equal(status, 0);
    srv_conn_t *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    f->conn = c;
    assert_int_equal(srv_conn_accept(c, &f->loop, server, f->kind, &ops, f), 0);
    if (f->kind == SRV_CONN_HTTP) {
        srv_http_cbs_t cbs = {.on_request = t_request, .on_request_done = t_done};
        srv_conn_http_init(c, NULL, &cbs);
    }
    assert_int_equal(srv_conn_read_start(c), 0);
    assert_true(c->reading);
}

static void run(fixture_t *f)
{
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int len = sizeof(bound);

    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(uv_tcp_init(&f->loop, &f->listener), 0);
    f->listener.data = f;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &addr), 0);
    assert_int_equal(uv_tcp_bind(&f->listener, (const struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&f->listener, 8, on_connection), 0);
    assert_int_equal(uv_tcp_getsockname(&f->listener, (struct sockaddr *)&bound, &len), 0);
    assert_int_equal(uv_tcp_init(&f->loop, &f->client), 0);
    f->creq.data = f;
    assert_int_equal(
        uv_tcp_connect(&f->creq, &f->client, (const struct sockaddr *)&bound, on_connect), 0);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void test_tcp_reads_reply_and_close_after_write(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    (void)state;
    f->kind = SRV_CONN_TCP;
    f->send = "one\ntwo\n!";
    run(f);
    assert_int_equal(f->closed, 1);
    assert_true(f->reads >= 1);
    assert_int_equal(f->got_len, 9);
    assert_memory_equal(f->got, "one\ntwo\n!", 9);
    assert_int_equal(f->reply_len, 4);
    assert_memory_equal(f->reply, "bye\n", 4);
    assert_true(f->client_eof);
    assert_int_equal(f->errors[SRV_CONN_ERR_READ] + f->errors[SRV_CONN_ERR_WRITE], 0);
    free(f);
}

static void test_http_request_reply_then_peer_close(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    (void)state;
    f->kind = SRV_CONN_HTTP;
    f->send = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n";
    f->client_shutdown = 1;
    run(f);
    assert_int_equal(f->requests, 2);
    assert_int_equal(f->closed, 1);
    assert_int_equal(f->eofs, 1);
    assert_int_equal(f->lingers, 0); /* the peer had closed: nothing to linger for */
    f->reply[f->reply_len] = '\0';
    assert_non_null(strstr(f->reply, "HTTP/1.1 200"));
    assert_non_null(strstr(f->reply, "hello\n"));
    assert_non_null(strstr(f->reply, "HTTP/1.1 404"));
    free(f);
}

static void test_http_connection_close_lingers_until_the_peer_closes(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    (void)state;
    f->kind = SRV_CONN_HTTP;
    f->send = "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    run(f); /* the client closes when it sees our FIN; lingering reads its EOF and closes */
    assert_int_equal(f->requests, 1);
    assert_int_equal(f->lingers, 1);
    assert_int_equal(f->closed, 1);
    assert_true(f->client_eof);
    f->reply[f->reply_len] = '\0';
    assert_non_null(strstr(f->reply, "Connection: close"));
    free(f);
}

static void test_no_buffer_pauses_and_reports_nobufs(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    (void)state;
    f->kind = SRV_CONN_TCP;
    f->send = "x\n";
    f->nobufs_mode = 1;
    run(f);
    assert_int_equal(f->errors[SRV_CONN_ERR_NOBUFS], 1);
    assert_int_equal(f->errors[SRV_CONN_ERR_READ], 0); /* not a read error */
    assert_int_equal(f->reads, 0);
    assert_int_equal(f->closed, 1);
    free(f);
}

static void test_a_held_reply_waits_until_the_owner_is_durable(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    (void)state;
    f->kind = SRV_CONN_HTTP;
    f->hold = 1;
    f->send = "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    run(f);
    assert_int_equal(f->reply_at_timer, 0); /* nothing reached the client while held */
    f->reply[f->reply_len] = '\0';
    assert_non_null(strstr(f->reply, "HTTP/1.1 200"));
    assert_non_null(strstr(f->reply, "hello\n"));
    assert_int_equal(f->closed, 1);
    free(f);
}

static void test_an_expired_hold_becomes_one_503_and_a_close(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    (void)state;
    f->kind = SRV_CONN_HTTP;
    f->hold = 1;
    f->hold_expire = 1;
    f->send = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    run(f);
    assert_int_equal(f->reply_at_timer, 0);
    f->reply[f->reply_len] = '\0';
    assert_null(strstr(f->reply, "HTTP/1.1 200")); /* the held reply was never written */
    assert_non_null(strstr(f->reply, "HTTP/1.1 503 Service Unavailable\r\n"));
    assert_non_null(strstr(f->reply, "Retry-After: 1\r\n"));
    assert_non_null(strstr(f->reply, "Connection: close\r\n"));
    assert_non_null(strstr(f->reply, "\"error\":\"not_durable\""));
    assert_true(f->client_eof);
    assert_int_equal(f->closed, 1);
    free(f);
}

static void test_a_hold_whose_events_were_given_up_becomes_a_503_at_once(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    (void)state;
    f->kind = SRV_CONN_HTTP;
    f->hold = 1;
    f->hold_lost = 1;
    f->send = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    run(f);
    assert_int_equal(f->reply_at_timer, 0);
    f->reply[f->reply_len] = '\0';
    assert_null(strstr(f->reply, "HTTP/1.1 200")); /* never "stored" for a lost event */
    assert_non_null(strstr(f->reply, "HTTP/1.1 503 Service Unavailable\r\n"));
    assert_non_null(strstr(f->reply, "\"error\":\"not_durable\""));
    assert_int_equal(f->closed, 1);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_reads_reply_and_close_after_write),
        cmocka_unit_test(test_http_request_reply_then_peer_close),
        cmocka_unit_test(test_http_connection_close_lingers_until_the_peer_closes),
        cmocka_unit_test(test_no_buffer_pauses_and_reports_nobufs),
        cmocka_unit_test(test_a_held_reply_waits_until_the_owner_is_durable),
        cmocka_unit_test(test_an_expired_hold_becomes_one_503_and_a_close),
        cmocka_unit_test(test_a_hold_whose_events_were_given_up_becomes_a_503_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
