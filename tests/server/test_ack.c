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

#include "ackload.h"
#include "harness.h"

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

/* Runs the load against ingestd for run_ms, then SIGKILLs it (the clients still sending). */
static ackload_t *load_then_kill(ih_server_t *s, int run_ms)
{
    ackload_t *L = ackload_new();
    assert_non_null(L);
    assert_int_equal(ackload_start(L, s->http_port), 0);
    usleep((useconds_t)run_ms * 1000);
    assert_int_equal(ih_stop(s, SIGKILL), 128 + SIGKILL);
    ackload_stop(L);
    return L;
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
    ackload_t *L = load_then_kill(&s, 1500);
    ih_cleanup(&s);

    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *text = NULL;
    size_t cap = 0;
    ssize_t n = getdelim(&text, &cap, '\0', f);
    fclose(f);
    uint8_t *seen = calloc(ACKLOAD_MAX_IDS, 1);
    ackload_mark_ids(text, n > 0 ? (size_t)n : 0, seen);
    print_message("durable/file: %llu requests, %llu events acknowledged\n",
                  (unsigned long long)atomic_load(&L->requests),
                  (unsigned long long)atomic_load(&L->acked_n));
    assert_true(atomic_load(&L->acked_n) > 0);
    assert_int_equal(ackload_missing(L, seen), 0);
    free(seen);
    free(text);
    ackload_free(L);
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
    ackload_t *L = load_then_kill(&s, 1500);
    ih_cleanup(&s);
    atomic_store(&r.paused, 0); /* the pipe still holds what was written before the kill */
    atomic_store(&r.done, 1);
    pthread_join(rt, NULL);
    close(r.fd);

    uint8_t *seen = calloc(ACKLOAD_MAX_IDS, 1);
    ackload_mark_ids(r.buf, r.len, seen);
    uint64_t lost = ackload_missing(L, seen);
    *acked = atomic_load(&L->acked_n);
    print_message("%s/stalled fifo: %llu requests, %llu events acknowledged, %llu of them lost\n",
                  ack, (unsigned long long)atomic_load(&L->requests), (unsigned long long)*acked,
                  (unsigned long long)lost);
    free(seen);
    free(r.buf);
    ackload_free(L);
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
