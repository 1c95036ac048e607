/* test_ack.c - integration: what an HTTP 200 promises (--ack). ingestd is killed with SIGKILL
 * under HTTP load, and every event acknowledged to a client is looked for in the file sink. With
 * --ack durable none may be missing; with --ack accepted and a stalled sink some are, so the
 * difference is shown, not assumed. Events carry unique ids; the sets are compared. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "harness.h"

#define BATCH 50           /* events per request */
#define MAX_IDS (1u << 22) /* ids a test may send */
#define CLIENTS 3

typedef struct {
    uint16_t port;
    _Atomic int stop;
    _Atomic uint32_t next_id;
    uint8_t *acked; /* acked[id] = 1 when a 200 said the request's events were accepted */
    _Atomic uint64_t acked_n;
    _Atomic uint64_t requests;
} load_t;

/* Reads one HTTP response on fd (Content-Length framed). Returns its status, or -1 (timeout,
 * closed, malformed). */
static int read_reply(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0) {
            return -1;
        }
        len += (size_t)n;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        const char *cl = strstr(buf, "Content-Length: ");
        if (end != NULL && cl != NULL) {
            size_t body = strtoul(cl + 16, NULL, 10);
            if (len >= (size_t)(end + 4 - buf) + body) {
                return ih_http_status(buf);
            }
        }
        if (len + 1 >= cap) {
            return -1;
        }
    }
}

/* One client: keep-alive POSTs of BATCH events with fresh ids, until stopped or the server is
 * gone; marks the ids of every request answered 200 with all of them accepted. */
static void *client(void *arg)
{
    load_t *L = arg;
    char body[BATCH * 48];
    char req[BATCH * 48 + 256];
    char reply[4096];
    struct timeval tv = {.tv_sec = 0, .tv_usec = 300 * 1000};
    int fd = -1;

    while (!atomic_load(&L->stop)) {
        if (fd < 0) {
            fd = ih_connect(L->port);
            if (fd < 0) {
                break;
            }
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        }
        uint32_t first = atomic_fetch_add(&L->next_id, BATCH);
        if (first + BATCH >= MAX_IDS) {
            break;
        }
        size_t bl = 0;
        for (uint32_t i = 0; i < BATCH; i++) {
            bl += (size_t)snprintf(body + bl, sizeof(body) - bl, "{\"type\":\"t\",\"id\":%u}\n",
                                   first + i);
        }
        int n = snprintf(req, sizeof(req),
                         "POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n%s", bl,
                         body);
        if (ih_send_all(fd, req, (size_t)n) != 0) {
            close(fd);
            fd = -1;
            continue;
        }
        atomic_fetch_add(&L->requests, 1);
        /* Wait for this reply (held replies take as long as the sink does); a timeout leaves the
         * request unacknowledged and the connection is dropped. */
        int status = -1;
        while (!atomic_load(&L->stop)) {
            status = read_reply(fd, reply, sizeof(reply));
            if (status != -1 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                break;
            }
        }
        char want[64];
        snprintf(want, sizeof(want), "\"accepted\":%d,", BATCH);
        if (status == 200 && strstr(reply, want) != NULL) {
            for (uint32_t i = 0; i < BATCH; i++) {
                L->acked[first + i] = 1;
            }
            atomic_fetch_add(&L->acked_n, BATCH);
        } else {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    return NULL;
}

/* Marks every id found in the NDJSON text. */
static void mark_ids(const char *text, size_t len, uint8_t *seen)
{
    const char *p = text;
    const char *end = text + len;
    while (p < end && (p = memmem(p, (size_t)(end - p), "\"id\":", 5)) != NULL) {
        unsigned long id = strtoul(p + 5, NULL, 10);
        if (id < MAX_IDS) {
            seen[id] = 1;
        }
        p += 5;
    }
}

/* Acknowledged ids missing from seen. */
static uint64_t missing(const load_t *L, const uint8_t *seen)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < MAX_IDS; i++) {
        n += L->acked[i] && !seen[i];
    }
    return n;
}

typedef struct {
    int fd;
    _Atomic int paused;
    _Atomic int done;
    char *buf;
    size_t len;
    size_t cap;
} reader_t;

/* Reads the FIFO into buf until EOF, not while paused. */
static void *fifo_reader(void *arg)
{
    reader_t *r = arg;
    for (;;) {
        if (atomic_load(&r->paused)) {
            usleep(20000);
            continue;
        }
        if (r->len + 65536 > r->cap) {
            r->cap = r->cap * 2 + 65536;
            r->buf = realloc(r->buf, r->cap);
        }
        struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0) {
            if (atomic_load(&r->done)) {
                break;
            }
            continue;
        }
        ssize_t n = read(r->fd, r->buf + r->len, r->cap - r->len);
        if (n > 0) {
            r->len += (size_t)n;
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            break; /* every writer is gone */
        }
    }
    return NULL;
}

/* Runs CLIENTS clients against ingestd for run_ms, then SIGKILLs it (clients still sending). */
static void load_then_kill(load_t *L, ih_server_t *s, int run_ms)
{
    pthread_t t[CLIENTS];
    L->port = s->http_port;
    for (int i = 0; i < CLIENTS; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, client, L), 0);
    }
    usleep((useconds_t)run_ms * 1000);
    assert_int_equal(ih_stop(s, SIGKILL), 128 + SIGKILL);
    atomic_store(&L->stop, 1);
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(t[i], NULL);
    }
}

static load_t *load_new(void)
{
    load_t *L = calloc(1, sizeof(*L));
    assert_non_null(L);
    L->acked = calloc(MAX_IDS, 1);
    assert_non_null(L->acked);
    return L;
}

static void load_free(load_t *L)
{
    free(L->acked);
    free(L);
}

/* --ack durable into a regular file: SIGKILL mid-load loses no acknowledged event. */
static void test_durable_file_sink_keeps_every_acknowledged_event_through_sigkill(void **state)
{
    char dir[] = "/tmp/ingestd_ack_XXXXXX";
    char path[64];
    char sink[80];
    ih_server_t s;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/events.ndjson", dir);
    snprintf(sink, sizeof(sink), "--sink=file:%s", path);
    const char *extra[] = {sink, "--ack=durable", "--workers=2", NULL};
    assert_int_equal(ih_start(&s, extra), 0);
    load_t *L = load_new();
    load_then_kill(L, &s, 1500);
    ih_cleanup(&s);

    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *text = NULL;
    size_t cap = 0;
    ssize_t n = getdelim(&text, &cap, '\0', f);
    fclose(f);
    uint8_t *seen = calloc(MAX_IDS, 1);
    mark_ids(text, n > 0 ? (size_t)n : 0, seen);
    print_message("durable/file: %llu requests, %llu events acknowledged\n",
                  (unsigned long long)atomic_load(&L->requests),
                  (unsigned long long)atomic_load(&L->acked_n));
    assert_true(atomic_load(&L->acked_n) > 0);
    assert_int_equal(missing(L, seen), 0);
    free(seen);
    free(text);
    load_free(L);
    unlink(path);
    rmdir(dir);
}

/* A FIFO sink whose reader stops reading: the sink fills. SIGKILL, then the reader takes what
 * reached the pipe. Returns the acknowledged events missing from it. */
static uint64_t stalled_fifo_run(const char *ack, uint64_t *acked)
{
    char dir[] = "/tmp/ingestd_ack_XXXXXX";
    char path[64];
    char sink[80];
    char ackflag[32];
    ih_server_t s;
    reader_t r = {0};
    pthread_t rt;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/fifo", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    r.fd = open(path, O_RDONLY | O_NONBLOCK); /* a reader first, so the sink can open it */
    assert_true(r.fd >= 0);
    atomic_store(&r.paused, 1);
    assert_int_equal(pthread_create(&rt, NULL, fifo_reader, &r), 0);
    snprintf(sink, sizeof(sink), "--sink=file:%s", path);
    snprintf(ackflag, sizeof(ackflag), "--ack=%s", ack);
    const char *extra[] = {sink, ackflag, "--ack-timeout=60s", "--workers=1", NULL};
    assert_int_equal(ih_start(&s, extra), 0);
    load_t *L = load_new();
    load_then_kill(L, &s, 1500);
    ih_cleanup(&s);
    atomic_store(&r.paused, 0); /* the pipe still holds what was written before the kill */
    atomic_store(&r.done, 1);
    pthread_join(rt, NULL);
    close(r.fd);

    uint8_t *seen = calloc(MAX_IDS, 1);
    mark_ids(r.buf, r.len, seen);
    uint64_t lost = missing(L, seen);
    *acked = atomic_load(&L->acked_n);
    print_message("%s/stalled fifo: %llu requests, %llu events acknowledged, %llu of them lost\n",
                  ack, (unsigned long long)atomic_load(&L->requests), (unsigned long long)*acked,
                  (unsigned long long)lost);
    free(seen);
    free(r.buf);
    load_free(L);
    unlink(path);
    rmdir(dir);
    return lost;
}

static void test_accepted_loses_acknowledged_events_when_the_sink_stalls(void **state)
{
    uint64_t acked;
    (void)state;
    assert_true(stalled_fifo_run("accepted", &acked) > 0);
}

static void test_durable_loses_none_when_the_sink_stalls(void **state)
{
    uint64_t acked;
    (void)state;
    assert_int_equal(stalled_fifo_run("durable", &acked), 0);
    assert_true(acked > 0); /* what fit in the pipe was acknowledged; the rest was held */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durable_file_sink_keeps_every_acknowledged_event_through_sigkill),
        cmocka_unit_test(test_accepted_loses_acknowledged_events_when_the_sink_stalls),
        cmocka_unit_test(test_durable_loses_none_when_the_sink_stalls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
