/* server/conn.h - one libuv TCP connection: reads into its owner's buffers, queued replies, the
 * lingering close, and the HTTP request layer when it speaks HTTP. Owned by one loop (an ingest
 * worker or the control loop), which it tells what happened through a table of callbacks. */
#ifndef INGESTD_SERVER_CONN_H
#define INGESTD_SERVER_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/list.h"
#include "ingest/frame.h"
#include "server/http.h"

/* Lingering close: how long, and how many bytes, a closing HTTP connection's input is read and
 * discarded after its last reply before it is closed anyway. */
#define SRV_LINGER_MS 2000
#define SRV_LINGER_BYTES ((uint64_t)16 * 1024 * 1024)
/* Replies pending beyond this make an HTTP connection stop reading until they are written. */
#define SRV_CONN_OUT_PAUSE_BYTES (1024 * 1024)
/* Held replies tracked one by one (--ack durable); a further one merges into the last (their
 * sequences only grow, so waiting for the later one covers both). */
#define SRV_CONN_HOLDS 8

typedef enum {
    SRV_CONN_TCP = 0,  /* NDJSON lines, framed by ingest/frame.h */
    SRV_CONN_HTTP = 1, /* HTTP/1.1 requests (server/http.h) */
} srv_conn_kind_t;

/* Where a connection is in its life. Reading is a separate matter (c->reading mirrors whether
 * uv_read_start is in effect): an open connection may be paused by its owner. */
typedef enum {
    SRV_CONN_OPEN = 0,  /* requests and replies flow */
    SRV_CONN_FINISHING, /* the last reply is queued: close (or linger) once it is written */
    SRV_CONN_LINGERING, /* replies written, write side shut, input read and discarded */
    SRV_CONN_CLOSING,   /* uv_close was called; the owner frees it in on_closed */
} srv_conn_state_t;

/* What went wrong, for the owner to count and log. */
typedef enum {
    SRV_CONN_ERR_READ,          /* a read failed (status: the libuv error); the conn closes */
    SRV_CONN_ERR_WRITE,         /* a write failed; the conn closes */
    SRV_CONN_ERR_RESUME,        /* uv_read_start failed when reading resumed; the conn closes */
    SRV_CONN_ERR_NOBUFS,        /* the owner's alloc gave no buffer (UV_ENOBUFS): paused */
    SRV_CONN_ERR_REPLY_DROPPED, /* no memory to queue a reply: what was queued is sent, then
                                 * the connection is finished */
} srv_conn_error_t;

typedef struct srv_conn srv_conn_t;

/* The owner's callbacks, all on the owner's loop thread. */
typedef struct {
    /* A buffer for the next read (libuv's alloc_cb contract): len 0 makes the read report
     * UV_ENOBUFS, which pauses the connection (on_error NOBUFS). */
    void (*alloc)(srv_conn_t *c, uv_buf_t *buf);
    /* Gives back a buffer alloc lent that carried nothing for the owner (lingering input,
     * n <= 0). May be NULL when alloc's buffers need no release. */
    void (*release)(srv_conn_t *c, char *base);
    /* A read: n > 0 bytes, or n < 0 (UV_EOF or an error, logged by conn via on_error first).
     * The owner owns buf->base on every path (release it or keep it). */
    void (*on_read)(srv_conn_t *c, ssize_t n, const uv_buf_t *buf);
    /* Every queued reply has been written and the connection is open: the owner may resume
     * reading. May be NULL. */
    void (*on_drained)(srv_conn_t *c);
    /* Just before uv_close (a TCP partial line is reported truncated here). May be NULL. */
    void (*on_closing)(srv_conn_t *c);
    /* After uv_close completed: unlink and free the connection (srv_conn_cleanup first). */
    void (*on_closed)(srv_conn_t *c);
    /* A failure to count (status: the libuv error, or 0). May be NULL. */
    void (*on_error)(srv_conn_t *c, srv_conn_error_t e, int status);
    /* A connection started lingering: make sure a sweep calls srv_conn_linger_expired. */
    void (*on_linger)(srv_conn_t *c);
    /* How far the owner's data is settled (a sequence, see srv_conn_reply_done): a held reply
     * is written once this reaches its last sequence. NULL when the owner holds no replies. */
    uint64_t (*durable)(srv_conn_t *c);
    /* 1 when any of the owner's data first..last was given up, never to be durable (asked
     * after durable). Such a held reply is never written: it becomes the 503 of
     * srv_conn_hold_expired. NULL: nothing is ever given up. */
    int (*lost)(srv_conn_t *c, uint64_t first, uint64_t last);
} srv_conn_ops_t;

/* A reply that may not be written before the owner's data first..seq is durable. */
typedef struct {
    uint64_t start; /* stream offset of the reply's first byte */
    uint64_t first;
    uint64_t seq;
    uint64_t since; /* uv_now when it was held */
} srv_conn_hold_t;

/* One connection; the owner allocates it (one allocation, handle embedded) and frees it in
 * on_closed. Plain value struct: the owner may read the fields marked (owner), the rest is
 * conn.c's. */
struct srv_conn {
    uv_tcp_t handle; /* first: the handle's address is the connection's */
    const srv_conn_ops_t *ops;
    void *owner;          /* (owner) */
    base_link_t link;     /* (owner) its list of connections */
    srv_conn_kind_t kind; /* (owner) */
    srv_conn_state_t state;
    int reading;           /* uv_read_start is in effect */
    int writing;           /* a uv_write is in flight */
    int eof;               /* HTTP: the peer closed its side (nothing left to discard) */
    int probe;             /* (owner) TCP: may read over the memory limit until the next check */
    uint64_t ack_first;    /* (owner) HTTP: the first sink sequence of the request being read */
    uint64_t ack_seq;      /* (owner) HTTP: the sink sequence the request being read must reach */
    base_link_t held_link; /* (owner) in its list of connections holding replies, if listed */
    int held_listed;       /* (owner) held_link is in that list */
    uint64_t last_active;  /* (owner may read) uv_now of the last read */
    uint64_t phase_start;  /* HTTP: when the current phase began */
    srv_http_phase_t phase;
    uint64_t linger_start;
    uint64_t linger_bytes;
    ing_frame_t frame;            /* (owner) TCP */
    uint64_t line_start;          /* (owner) TCP: uv_now when the line held now began, 0 for none */
    size_t held;                  /* (owner) TCP: bytes of it counted in the partial budget */
    int peer_counted;             /* (owner) its peer's count was taken (release it when closed) */
    struct sockaddr_storage peer; /* (owner) the peer's address (family 0: unknown) */
    srv_http_t http;              /* HTTP */
    char *out;                    /* reply bytes gathered and not yet written */
    size_t out_len;
    size_t out_cap;
    char *wbuf; /* the buffer being written */
    size_t wbuf_cap;
    uint64_t out_base;   /* stream offset of out[0]: bytes before it were handed to writes */
    uint64_t reply_mark; /* stream offset where the next reply starts */
    srv_conn_hold_t holds[SRV_CONN_HOLDS]; /* oldest first */
    unsigned nholds;
    uv_shutdown_t sreq;
    uv_write_t wreq;
};

/* A zeroed connection for a connection callback: status is the callback's (a libuv error is
 * logged, rate-limited, under who). Links it at the front of list. Returns NULL when status < 0
 * or out of memory (logged); then nothing was accepted. Loop thread. */
srv_conn_t *srv_conn_new(int status, base_list_t *list, const char *who);

/* Accepts a pending connection of server into c (zeroed by the caller) on loop. Returns 0, or a
 * libuv error: then c is closing and on_closed will run (the owner frees it there), as for any
 * connection. Loop thread. */
int srv_conn_accept(srv_conn_t *c, uv_loop_t *loop, uv_stream_t *server, srv_conn_kind_t kind,
                    const srv_conn_ops_t *ops, void *owner);

/* Makes c speak HTTP with these limits and callbacks (http.h; ctx is c, send is conn's). */
void srv_conn_http_init(srv_conn_t *c, const srv_http_limits_t *lim, const srv_http_cbs_t *cbs);

/* Feeds HTTP bytes read on c, queues and writes the replies, and follows what the request layer
 * decided (close after the reply, pause while replies pile up). Loop thread. */
void srv_conn_http_feed(srv_conn_t *c, const char *data, size_t n);
/* The peer closed (or reading failed): a body cut short counts as truncated; finishes c. */
void srv_conn_http_eof(srv_conn_t *c);
/* A read timeout mid-request: 408, then finish. */
void srv_conn_http_timeout(srv_conn_t *c);

/* Starts reading unless c reads already or is not open. Returns 0, or a libuv error: then c is
 * closed, and on_error(RESUME) said so. */
int srv_conn_read_start(srv_conn_t *c);
/* Stops reading (a no-op when not reading). Returns 1 when it was reading. */
int srv_conn_read_stop(srv_conn_t *c);

/* Queues one whole response the HTTP layer did not write (a refusal at accept, a held reply's
 * replacement): "HTTP/1.1 STATUS", Content-Type, the extra header lines (NULL or lines ending in
 * "\r\n"), Content-Length of body, Connection: close, then body. Returns 0, or -ENOMEM (as
 * srv_conn_send). The caller finishes or closes c. */
int srv_conn_send_response(srv_conn_t *c, const char *status, const char *content_type,
                           const char *extra, const char *body);

/* Queues bytes for the peer (copied). Returns 0, or -ENOMEM: nothing of them is queued,
 * on_error(REPLY_DROPPED) ran and c will finish after what is queued. */
int srv_conn_send(srv_conn_t *c, const char *data, size_t len);
/* Writes what is queued when no write is in flight. */
void srv_conn_flush(srv_conn_t *c);

/* The reply just queued is complete (the HTTP layer's on_request_done). seq 0: it may be
 * written at once; otherwise it is held, with every reply after it, until ops->durable(c) >= seq
 * (--ack durable: the events first..seq it acknowledges are as safe as the sink makes them), or
 * answered 503 by srv_conn_hold_expired if ops->lost says some of them were given up. */
void srv_conn_reply_done(srv_conn_t *c, uint64_t first, uint64_t seq);
/* Replies held now (0: none). */
unsigned srv_conn_held(const srv_conn_t *c);
/* The oldest held reply has waited timeout_ms, or its events were given up (ops->lost), or
 * force: it and every reply after it are
 * dropped unwritten and replaced by one 503 with Retry-After and Connection: close (the events
 * may or may not be stored: the client resends); c finishes after it. Returns 1 when it did. */
int srv_conn_hold_expired(srv_conn_t *c, uint64_t now, uint64_t timeout_ms, int force);

/* Closes now (no-op when closing). */
void srv_conn_close(srv_conn_t *c);
/* The last reply is queued: close once written, lingering when an HTTP peer may still send. */
void srv_conn_finish(srv_conn_t *c);
/* Lingering close now (HTTP): write side shut after what is queued, input discarded until the
 * peer closes, SRV_LINGER_BYTES were read or SRV_LINGER_MS passed. */
void srv_conn_linger(srv_conn_t *c);
/* Called by the owner's sweep: closes c when it has lingered SRV_LINGER_MS. Returns 1 when c
 * lingers (whether or not it was closed now). */
int srv_conn_linger_expired(srv_conn_t *c, uint64_t now);

/* The read timeout that applies to c now and since when it runs (HTTP: header, body or idle by
 * phase; TCP: idle). Returns the timeout in ms, 0 for none. */
uint64_t srv_conn_timeout(const srv_conn_t *c, uint64_t idle_ms, uint64_t header_ms,
                          uint64_t body_ms, uint64_t *since);

/* Frees what c holds besides itself (reply buffers, the HTTP state). From on_closed. */
void srv_conn_cleanup(srv_conn_t *c);

#endif
