/* server/conn.c - one libuv connection's life: reads, queued replies, lingering close (conn.h). */
#include "server/conn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mem/mem.h"
#include "server/log.h"

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf);

static srv_ratelimit_t rl_accept;

srv_conn_t *srv_conn_new(int status, base_list_t *list, const char *who)
{
    if (status < 0) {
        srv_log_error_limited(&rl_accept, "accept failed", "listener", who, "error",
                              uv_strerror(status), NULL);
        return NULL;
    }
    srv_conn_t *c = mem_calloc(1, sizeof(*c));
    if (c == NULL) {
        srv_log_error_limited(&rl_accept, "accept failed", "listener", who, "error",
                              "out of memory", NULL);
        return NULL;
    }
    base_list_push_front(list, &c->link);
    return c;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    srv_conn_t *c = h->data;
    (void)hint;
    c->ops->alloc(c, buf);
}

static void report(srv_conn_t *c, srv_conn_error_t e, int status)
{
    if (c->ops->on_error != NULL) {
        c->ops->on_error(c, e, status);
    }
}

static void give_back(srv_conn_t *c, const uv_buf_t *buf)
{
    if (buf->base != NULL && c->ops->release != NULL) {
        c->ops->release(c, buf->base);
    }
}

static void on_closed(uv_handle_t *h)
{
    srv_conn_t *c = h->data;
    c->ops->on_closed(c);
}

int srv_conn_accept(srv_conn_t *c, uv_loop_t *loop, uv_stream_t *server, srv_conn_kind_t kind,
                    const srv_conn_ops_t *ops, void *owner)
{
    int r = uv_tcp_init(loop, &c->handle);

    c->ops = ops;
    c->owner = owner;
    c->kind = kind;
    c->handle.data = c;
    if (r != 0) {
        /* Never initialised: nothing to close; on_closed still runs, as promised. */
        c->state = SRV_CONN_CLOSING;
        ops->on_closed(c);
        return r;
    }
    r = uv_accept(server, (uv_stream_t *)&c->handle);
    if (r != 0) {
        c->state = SRV_CONN_CLOSING;
        uv_close((uv_handle_t *)&c->handle, on_closed);
        return r;
    }
    c->last_active = uv_now(loop);
    c->phase_start = c->last_active;
    return 0;
}

void srv_conn_cleanup(srv_conn_t *c)
{
    if (c->kind == SRV_CONN_HTTP) {
        srv_http_free(&c->http);
    }
    mem_free(c->out);
    mem_free(c->wbuf);
    c->out = c->wbuf = NULL;
}

void srv_conn_close(srv_conn_t *c)
{
    if (c->state == SRV_CONN_CLOSING) {
        return;
    }
    if (c->ops->on_closing != NULL) {
        c->ops->on_closing(c);
    }
    c->state = SRV_CONN_CLOSING;
    c->reading = 0;
    uv_close((uv_handle_t *)&c->handle, on_closed);
}

int srv_conn_read_start(srv_conn_t *c)
{
    if (c->reading || c->state != SRV_CONN_OPEN) {
        return 0;
    }
    int r = uv_read_start((uv_stream_t *)&c->handle, on_alloc, on_read);
    if (r != 0) {
        report(c, SRV_CONN_ERR_RESUME, r);
        srv_conn_close(c);
        return r;
    }
    c->reading = 1;
    return 0;
}

int srv_conn_read_stop(srv_conn_t *c)
{
    if (!c->reading) {
        return 0;
    }
    uv_read_stop((uv_stream_t *)&c->handle);
    c->reading = 0;
    return 1;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status;
}

/* Lingering close, for every HTTP connection we close before the peer has closed its side (an
 * early 413 by Content-Length, 431, 400, 408, Connection: close, the admin 403): closing with
 * unread input makes the kernel send a reset, which can destroy the reply before the client
 * reads it. So the write side is shut (FIN after the reply, once written) and input is read
 * and discarded until the peer closes, SRV_LINGER_BYTES were discarded or SRV_LINGER_MS passed
 * (the owner's sweep), then the connection is closed. Reads go through the owner's buffers,
 * given straight back: lingering costs no memory beyond the connection. */
void srv_conn_linger(srv_conn_t *c)
{
    if (c->state == SRV_CONN_CLOSING || c->state == SRV_CONN_LINGERING) {
        return;
    }
    c->state = SRV_CONN_LINGERING;
    c->linger_start = uv_now(c->handle.loop);
    c->linger_bytes = 0;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->handle, on_shutdown) != 0) {
        srv_conn_close(c);
        return;
    }
    if (!c->reading) {
        int r = uv_read_start((uv_stream_t *)&c->handle, on_alloc, on_read);
        if (r != 0) {
            srv_conn_close(c);
            return;
        }
        c->reading = 1;
    }
    if (c->ops->on_linger != NULL) {
        c->ops->on_linger(c);
    }
}

int srv_conn_linger_expired(srv_conn_t *c, uint64_t now)
{
    if (c->state != SRV_CONN_LINGERING) {
        return 0;
    }
    if (now - c->linger_start >= SRV_LINGER_MS) {
        srv_conn_close(c); /* the peer kept sending or stayed open: enough */
    }
    return 1;
}

void srv_conn_finish(srv_conn_t *c)
{
    if (c->state == SRV_CONN_CLOSING || c->state == SRV_CONN_LINGERING) {
        return;
    }
    c->state = SRV_CONN_FINISHING;
    if (c->writing || c->out_len > 0) {
        srv_conn_flush(c); /* on_write finishes it */
        return;
    }
    if (c->kind == SRV_CONN_HTTP && !c->eof) {
        srv_conn_linger(c);
    } else {
        srv_conn_close(c);
    }
}

static void on_write(uv_write_t *req, int status)
{
    srv_conn_t *c = req->data;
    c->writing = 0;
    if (status < 0) {
        if (status != UV_ECANCELED) {
            report(c, SRV_CONN_ERR_WRITE, status);
        }
        srv_conn_close(c);
        return;
    }
    if (c->state == SRV_CONN_CLOSING) {
        return;
    }
    if (c->out_len > 0) {
        srv_conn_flush(c);
    } else if (c->state == SRV_CONN_FINISHING) {
        srv_conn_finish(c);
    } else if (c->state == SRV_CONN_OPEN && c->ops->on_drained != NULL) {
        c->ops->on_drained(c);
    }
}

/* Some events of hold h were given up: its reply must never be written. */
static int hold_lost(srv_conn_t *c, const srv_conn_hold_t *h)
{
    return c->ops->lost != NULL && c->ops->lost(c, h->first, h->seq);
}

/* How many bytes of out may be written now: all, or up to the first reply still held (or lost:
 * srv_conn_hold_expired answers it). */
static size_t writable(srv_conn_t *c)
{
    while (c->nholds > 0) {
        srv_conn_hold_t *h = &c->holds[0];
        if (c->ops->durable(c) < h->seq || hold_lost(c, h)) {
            return h->start > c->out_base ? (size_t)(h->start - c->out_base) : 0;
        }
        memmove(&c->holds[0], &c->holds[1], --c->nholds * sizeof(c->holds[0]));
    }
    return c->out_len;
}

void srv_conn_flush(srv_conn_t *c)
{
    if (c->writing || c->out_len == 0 || c->state == SRV_CONN_CLOSING) {
        return;
    }
    size_t n = writable(c);
    if (n == 0) {
        return; /* held: the owner flushes again when its data is durable */
    }
    if (n == c->out_len) {
        /* Swap the gathered bytes into the write buffer; replies gathered meanwhile go to out. */
        char *t = c->wbuf;
        size_t tcap = c->wbuf_cap;
        c->wbuf = c->out;
        c->wbuf_cap = c->out_cap;
        c->out = t;
        c->out_cap = tcap;
    } else {
        /* Write the part before the first held reply; keep the rest at the front of out. */
        if (c->wbuf_cap < n) {
            char *b = mem_realloc(c->wbuf, n);
            if (b == NULL) {
                report(c, SRV_CONN_ERR_WRITE, UV_ENOMEM);
                srv_conn_close(c);
                return;
            }
            c->wbuf = b;
            c->wbuf_cap = n;
        }
        memcpy(c->wbuf, c->out, n);
        memmove(c->out, c->out + n, c->out_len - n);
    }
    uv_buf_t b = uv_buf_init(c->wbuf, (unsigned)n);
    c->out_len -= n;
    c->out_base += n;
    c->wreq.data = c;
    int r = uv_write(&c->wreq, (uv_stream_t *)&c->handle, &b, 1, on_write);
    if (r < 0) {
        report(c, SRV_CONN_ERR_WRITE, r);
        srv_conn_close(c);
        return;
    }
    c->writing = 1;
}

int srv_conn_send(srv_conn_t *c, const char *data, size_t len)
{
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap != 0 ? c->out_cap : 4096;
        while (cap < c->out_len + len) {
            cap *= 2;
        }
        char *n = mem_realloc(c->out, cap);
        if (n == NULL) {
            report(c, SRV_CONN_ERR_REPLY_DROPPED, 0);
            if (c->state == SRV_CONN_OPEN) {
                c->state = SRV_CONN_FINISHING;
            }
            return -ENOMEM;
        }
        c->out = n;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    return 0;
}

void srv_conn_reply_done(srv_conn_t *c, uint64_t first, uint64_t seq)
{
    uint64_t end = c->out_base + c->out_len;

    if (seq != 0 && c->ops->durable != NULL && c->ops->durable(c) < seq) {
        uint64_t start = c->reply_mark > c->out_base ? c->reply_mark : c->out_base;
        if (c->nholds == SRV_CONN_HOLDS) {
            c->holds[c->nholds - 1].seq = seq; /* one hold for both: first..seq */
        } else {
            c->holds[c->nholds].start = start;
            c->holds[c->nholds].first = first != 0 ? first : seq;
            c->holds[c->nholds].seq = seq;
            c->holds[c->nholds].since = uv_now(c->handle.loop);
            c->nholds++;
        }
    }
    c->reply_mark = end;
}

unsigned srv_conn_held(const srv_conn_t *c)
{
    return c->nholds;
}

int srv_conn_send_response(srv_conn_t *c, const char *status, const char *content_type,
                           const char *extra, const char *body)
{
    char head[256];
    size_t len = strlen(body);
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\n%sContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, content_type, extra != NULL ? extra : "", len);
    int r = srv_conn_send(c, head, (size_t)n);
    return r == 0 ? srv_conn_send(c, body, len) : r;
}

int srv_conn_hold_expired(srv_conn_t *c, uint64_t now, uint64_t timeout_ms, int force)
{

    if (c->nholds == 0 || c->state == SRV_CONN_CLOSING ||
        (!force && now - c->holds[0].since < timeout_ms && !hold_lost(c, &c->holds[0]))) {
        return 0;
    }
    uint64_t start = c->holds[0].start;
    c->nholds = 0;
    c->out_len = start > c->out_base ? (size_t)(start - c->out_base) : 0;
    c->reply_mark = c->out_base + c->out_len;
    srv_conn_read_stop(c);
    (void)srv_conn_send_response(
        c, "503 Service Unavailable", "application/json", "Retry-After: 1\r\n",
        "{\"error\":\"not_durable\",\"detail\":\"the sink did not make the events durable in "
        "time; they may or may not be stored: send them again\"}\n");
    c->eof = 1; /* close once written: the client was told to go away, no lingering read */
    if (c->state == SRV_CONN_OPEN || c->state == SRV_CONN_FINISHING) {
        c->state = SRV_CONN_OPEN;
        srv_conn_finish(c);
    }
    return 1;
}

/* ---- HTTP ---- */

static void http_send(void *ctx, const char *data, size_t len)
{
    (void)srv_conn_send(ctx, data, len);
}

void srv_conn_http_init(srv_conn_t *c, const srv_http_limits_t *lim, const srv_http_cbs_t *cbs)
{
    srv_http_cbs_t own = *cbs;
    own.send = http_send;
    uv_tcp_nodelay(&c->handle, 1);
    (void)srv_http_init(&c->http, lim, &own, c);
}

static void note_phase(srv_conn_t *c)
{
    srv_http_phase_t p = srv_http_phase(&c->http);
    if (p != c->phase) {
        c->phase = p;
        c->phase_start = uv_now(c->handle.loop);
    }
}

/* After the request layer ran: write replies, and close or pause as it decided. */
static void after_feed(srv_conn_t *c, int close)
{
    note_phase(c);
    if (c->state == SRV_CONN_CLOSING) {
        return;
    }
    if (close && c->state == SRV_CONN_OPEN) {
        c->state = SRV_CONN_FINISHING;
    }
    if (c->state == SRV_CONN_FINISHING) {
        srv_conn_read_stop(c);
        srv_conn_finish(c);
        return;
    }
    srv_conn_flush(c);
    if (c->out_len > SRV_CONN_OUT_PAUSE_BYTES) {
        srv_conn_read_stop(c); /* on_drained resumes */
    }
}

void srv_conn_http_feed(srv_conn_t *c, const char *data, size_t n)
{
    after_feed(c, srv_http_feed(&c->http, data, n));
}

void srv_conn_http_eof(srv_conn_t *c)
{
    c->eof = 1;
    srv_http_eof(&c->http);
    srv_conn_read_stop(c);
    if (c->state == SRV_CONN_OPEN) {
        c->state = SRV_CONN_FINISHING;
    }
    if (!c->writing) {
        srv_conn_close(c);
    }
}

void srv_conn_http_timeout(srv_conn_t *c)
{
    after_feed(c, srv_http_timeout(&c->http));
}

uint64_t srv_conn_timeout(const srv_conn_t *c, uint64_t idle_ms, uint64_t header_ms,
                          uint64_t body_ms, uint64_t *since)
{
    if (c->kind == SRV_CONN_TCP) {
        *since = c->last_active;
        return idle_ms;
    }
    *since = c->phase_start;
    switch (c->phase) {
    case SRV_HTTP_HEAD:
        return header_ms;
    case SRV_HTTP_BODY:
        return body_ms;
    default:
        *since = c->last_active > c->phase_start ? c->last_active : c->phase_start;
        return idle_ms;
    }
}

/* ---- reading ---- */

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    srv_conn_t *c = stream->data;

    if (c->state == SRV_CONN_LINGERING) {
        /* Discard input so that closing sends FIN after the reply, not a reset. */
        give_back(c, buf);
        if (n > 0) {
            c->linger_bytes += (uint64_t)n;
        }
        if ((n < 0 && n != UV_ENOBUFS) || c->linger_bytes > SRV_LINGER_BYTES) {
            srv_conn_close(c);
        }
        return;
    }
    if (n == UV_ENOBUFS) {
        /* The owner could not lend a buffer: this read was not taken. Pause; the owner counts
         * it and resumes when memory is back (libuv's contract: not a read error). */
        srv_conn_read_stop(c);
        report(c, SRV_CONN_ERR_NOBUFS, (int)n);
        return;
    }
    if (n == 0) {
        give_back(c, buf); /* EAGAIN: nothing read */
        return;
    }
    if (n > 0) {
        c->last_active = uv_now(c->handle.loop);
    } else if (n != UV_EOF) {
        report(c, SRV_CONN_ERR_READ, (int)n);
    }
    c->ops->on_read(c, n, buf);
}
