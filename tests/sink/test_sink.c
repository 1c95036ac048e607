/* test_sink.c - unit tests of the sink engine and its null and file backends: order, chunking,
 * threads, backpressure, rotation, unlink detection, close and write errors, and the backend seam
 * driven by fake backends (retries, short writes, iovec batches, durability). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sink/backend.h"
#include "sink/sink.h"
#include "sink_fixture.h"

#define GUARD_MS 30000 /* a wait that never ends fails the test instead of hanging it */

/* ---- helpers ---- */

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} buf_t;

static void buf_add(buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->data = realloc(b->data, b->cap);
        assert_non_null(b->data);
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* {"i":I,"p":"xxx..."} with pad x's; returns its length. */
static size_t make_event(char *out, size_t cap, unsigned i, size_t pad)
{
    int n = snprintf(out, cap, "{\"i\":%u,\"p\":\"", i);
    assert_true(n > 0 && (size_t)n + pad + 3 <= cap);
    memset(out + n, 'x', pad);
    memcpy(out + (size_t)n + pad, "\"}", 3);
    return (size_t)n + pad + 2;
}

static buf_t read_file(const char *path)
{
    buf_t b = {0};
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
        buf_add(&b, tmp, n);
    }
    fclose(f);
    if (b.data == NULL) {
        buf_add(&b, "", 0);
    }
    return b;
}

typedef struct {
    char dir[64];
    char path[128];
    char spec[140];
} tmp_t;

static void tmp_make(tmp_t *t, const char *name)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/ingestd-sink.XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof(t->path), "%s/%s", t->dir, name);
    snprintf(t->spec, sizeof(t->spec), "file:%s", t->path);
}

static void tmp_remove(tmp_t *t, const char *extra)
{
    unlink(t->path);
    if (extra != NULL) {
        char p[160];
        snprintf(p, sizeof(p), "%s/%s", t->dir, extra);
        unlink(p);
    }
    rmdir(t->dir);
}

/* Appends like a well-behaved caller: on 1, waits for on_writable before going on. */
static int append_obeying(sink_writer_t *w, waiter_t *wt, const char *ev, size_t len)
{
    int rc = sink_append(w, ev, len);
    if (rc == 1) {
        return wait_writable(wt);
    }
    return rc;
}

static sink_config_t file_config(const char *spec, size_t chunk, size_t max)
{
    sink_config_t cfg;
    sink_config_init(&cfg);
    cfg.spec = spec;
    cfg.chunk_bytes = chunk;
    cfg.max_pending_chunks = max;
    cfg.flush_interval_ms = 0;
    return cfg;
}

/* ---- tests ---- */

static void test_parse_spec_accepts_null_and_file_path_and_rejects_the_rest(void **state)
{
    (void)state;
    sink_kind_t kind = SINK_FILE;
    const char *path = "unset";
    assert_int_equal(sink_parse_spec("null", &kind, &path), 0);
    assert_int_equal(kind, SINK_NULL);
    assert_null(path);
    assert_int_equal(sink_parse_spec("file:/var/log/ev.ndjson", &kind, &path), 0);
    assert_int_equal(kind, SINK_FILE);
    assert_string_equal(path, "/var/log/ev.ndjson");
    assert_int_equal(sink_parse_spec("file:rel", NULL, NULL), 0);
    assert_int_equal(sink_parse_spec("file:/a:b", &kind, &path), 0); /* scheme: up to the 1st ':' */
    assert_string_equal(path, "/a:b");

    const char *bad[] = {"", "foo", "file:", "file", "Null", "null ", "null:", "kafka:x", ":x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        path = "unset";
        assert_int_equal(sink_parse_spec(bad[i], &kind, &path), -EINVAL);
        assert_string_equal(path, "unset");
    }
    assert_int_equal(sink_parse_spec(NULL, NULL, NULL), -EINVAL);
}

static void test_create_fails_clearly_on_bad_config_or_path(void **state)
{
    (void)state;
    sink_t *s = NULL;
    sink_config_t cfg = file_config("foo", 0, 0);
    assert_int_equal(sink_create(&cfg, &s), -EINVAL);
    cfg = file_config("null", 1024, 1);
    assert_int_equal(sink_create(&cfg, &s), -EINVAL);
    cfg = file_config("file:/nonexistent-ingestd-dir/ev.ndjson", 0, 0);
    assert_int_equal(sink_create(&cfg, &s), -ENOENT);

    tmp_t t;
    tmp_make(&t, "fifo");
    assert_int_equal(mkfifo(t.path, 0600), 0);
    cfg = file_config(t.spec, 0, 0);
    assert_int_equal(sink_create(&cfg, &s), -ENXIO); /* no reader: fails, never hangs */
    assert_null(s);
    tmp_remove(&t, NULL);
}

static void test_null_sink_counts_events_and_never_fills(void **state)
{
    (void)state;
    sink_config_t cfg = file_config("null", 64, 2);
    sink_t *s;
    assert_int_equal(sink_create(&cfg, &s), 0);
    assert_int_equal(sink_kind(s), SINK_NULL);
    sink_writer_t *w;
    assert_int_equal(sink_writer_create(s, NULL, NULL, NULL, &w), 0);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(sink_append(w, "{\"type\":\"a\"}", 12), 0);
    }
    assert_int_equal(sink_writer_full(w), 0);
    sink_writer_flush(w);
    sink_reopen(s);
    sink_stats_t st;
    sink_stats(s, &st);
    assert_int_equal(st.events_appended, 1000);
    assert_int_equal(st.bytes_appended, 13000);
    assert_int_equal(st.events_written, 0);
    assert_int_equal(st.pending_bytes, 0);
    sink_writer_destroy(w);
    sink_stats(s, &st);
    assert_int_equal(st.events_appended, 1000); /* kept after the writer is gone */
    assert_int_equal(sink_close(s), 0);
}

static void test_file_sink_writes_every_event_in_order_across_chunk_boundaries(void **state)
{
    (void)state;
    tmp_t t;
    tmp_make(&t, "ev.ndjson");
    waiter_t wt;
    assert_int_equal(waiter_init(&wt, GUARD_MS), 0);
    sink_config_t cfg = file_config(t.spec, 64, 4);
    sink_t *s;
    assert_int_equal(sink_create(&cfg, &s), 0);
    sink_writer_t *w;
    assert_int_equal(sink_writer_create(s, &wt.loop, on_writable, &wt, &w), 0);

    buf_t want = {0};
    char ev[512];
    unsigned oversize = 0;
    const unsigned n = 600;
    for (unsigned i = 0; i < n; i++) {
        size_t len = make_event(ev, sizeof(ev), i, (i * 7) % 120); /* 14 to 137 bytes */
        oversize += len + 1 > 64;
        assert_int_equal(append_obeying(w, &wt, ev, len), 0);
        buf_add(&want, ev, len);
        buf_add(&want, "\n", 1);
    }
    sink_writer_destroy(w);
    sink_stats_t st;
    sink_stats(s, &st);
    assert_int_equal(st.events_appended, n);
    assert_int_equal(st.events_written, n);
    assert_int_equal(st.bytes_written, want.len);
    assert_int_equal(st.pending_bytes, 0);
    assert_int_equal(st.oversize, oversize);
    assert_int_equal(st.events_lost, 0);
    assert_int_equal(sink_close(s), 0);
    assert_int_equal(waiter_close(&wt), 0);

    buf_t got = read_file(t.path);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    free(got.data);
    free(want.data);
    tmp_remove(&t, NULL);
}

static void test_event_larger_than_a_chunk_lands_whole_between_its_neighbours(void **state)
{
    (void)state;
    tmp_t t;
    tmp_make(&t, "ev.ndjson");
    waiter_t wt;
    assert_int_equal(waiter_init(&wt, GUARD_MS), 0);
    sink_config_t cfg = file_config(t.spec, 32, 2);
    sink_t *s;
    assert_int_equal(sink_create(&cfg, &s), 0);
    sink_writer_t *w;
    assert_int_equal(sink_writer_create(s, &wt.loop, on_writable, &wt, &w), 0);

    char big[5000];
    size_t big_len = make_event(big, sizeof(big), 1, 4000);
    assert_true(sink_append(w, "{\"a\":0}", 7) >= 0);
    assert_true(sink_append(w, big, big_len) >= 0);
    assert_true(sink_append(w, "{\"b\":2}", 7) >= 0);
    sink_writer_destroy(w);
    assert_int_equal(sink_close(s), 0);
    assert_int_equal(waiter_close(&wt), 0);

    buf_t want = {0};
    buf_add(&want, "{\"a\":0}\n", 8);
    buf_add(&want, big, big_len);
    buf_add(&want, "\n{\"b\":2}\n", 9);
    buf_t got = read_file(t.path);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    free(got.data);
    free(want.data);
    tmp_remove(&t, NULL);
}

typedef struct {
    sink_t *sink;
    pthread_barrier_t *ready;
    unsigned id;
    unsigned n;
    int failed; /* set instead of asserting: cmocka asserts only on the main thread */
} worker_arg_t;

static void *worker_main(void *arg)
{
    worker_arg_t *a = arg;
    waiter_t wt;
    if (waiter_init(&wt, GUARD_MS) != 0) {
        a->failed = 1;
        pthread_barrier_wait(a->ready);
        return NULL;
    }
    sink_writer_t *w;
    int rc = sink_writer_create(a->sink, &wt.loop, on_writable, &wt, &w);
    /* Both threads create their fds before either closes any: Debian's libuv closes through
     * syscall(SYS_close), which ThreadSanitizer does not see, so a number reused by the other
     * thread would be reported as a race. */
    pthread_barrier_wait(a->ready);
    if (rc != 0) {
        a->failed = 1;
        return NULL;
    }
    char ev[64];
    for (unsigned i = 0; i < a->n && !a->failed; i++) {
        int len = snprintf(ev, sizeof(ev), "{\"w\":%u,\"i\":%u}", a->id, i);
        if (append_obeying(w, &wt, ev, (size_t)len) != 0) {
            a->failed = 1;
        }
    }
    sink_writer_destroy(w);
    if (waiter_close(&wt) != 0) {
        a->failed = 1;
    }
    return NULL;
}

static void test_two_writers_on_two_loop_threads_lose_nothing_and_keep_their_order(void **state)
{
    (void)state;
    tmp_t t;
    tmp_make(&t, "ev.ndjson");
    sink_config_t cfg = file_config(t.spec, 256, 4);
    cfg.flush_interval_ms = 1;
    sink_t *s;
    assert_int_equal(sink_create(&cfg, &s), 0);
    enum { N = 20000 };
    pthread_barrier_t ready;
    assert_int_equal(pthread_barrier_init(&ready, NULL, 2), 0);
    worker_arg_t args[2] = {{s, &ready, 0, N, 0}, {s, &ready, 1, N, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &args[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].failed, 0);
    }
    pthread_barrier_destroy(&ready);
    sink_stats_t st;
    sink_stats(s, &st);
    assert_int_equal(st.events_appended, 2 * N);
    assert_int_equal(st.events_written, 2 * N);
    assert_int_equal(sink_close(s), 0);

    buf_t got = read_file(t.path);
    unsigned next[2] = {0, 0};
    char *line = got.data;
    char *nl;
    while ((nl = strchr(line, '\n')) != NULL) {
        unsigned wid, i;
        assert_int_equal(sscanf(line, "{\"w\":%u,\"i\":%u}", &wid, &i), 2);
        assert_true(wid < 2);
        assert_int_equal(i, next[wid]);
        next[wid]++;
        line = nl + 1;
    }
    assert_int_equal(*line, '\0'); /* no partial last line */
    assert_int_equal(next[0], N);
    assert_int_equal(next[1], N);
    free(got.data);
    tmp_remove(&t, NULL);
}

typedef struct {
    int fd;
    buf_t got;
} reader_t;

static void *reader_main(void *arg)
{
    reader_t *r = arg;
    char tmp[4096];
    ssize_t n;
    while ((n = read(r->fd, tmp, sizeof(tmp))) > 0 || (n < 0 && errno == EINTR)) {
        if (n > 0) {
            buf_add(&r->got, tmp, (size_t)n);
        }
    }
    return NULL;
}

static void test_sink_that_cannot_keep_up_pauses_the_writer_and_memory_stays_bounded(void **state)
{
    (void)state;
    /* A FIFO nobody reads yet is a sink that cannot keep up: the writer thread blocks. */
    tmp_t t;
    tmp_make(&t, "fifo");
    assert_int_equal(mkfifo(t.path, 0600), 0);
    reader_t rd = {0};
    rd.fd = open(t.path, O_RDONLY | O_NONBLOCK);
    assert_true(rd.fd >= 0);
    fcntl(rd.fd, F_SETPIPE_SZ, 4096); /* as small as the kernel allows */
    assert_int_equal(fcntl(rd.fd, F_SETFL, fcntl(rd.fd, F_GETFL) & ~O_NONBLOCK), 0);

    counting_reset();
    waiter_t wt;
    assert_int_equal(waiter_init(&wt, GUARD_MS), 0);
    sink_config_t cfg = file_config(t.spec, 1024, 4);
    cfg.alloc_fn = counting_alloc;
    cfg.free_fn = counting_free;
    sink_t *s;
    assert_int_equal(sink_create(&cfg, &s), 0);
    size_t bound = sink_writer_bound(s);
    assert_int_equal(bound, 4096);
    sink_writer_t *w;
    assert_int_equal(sink_writer_create(s, &wt.loop, on_writable, &wt, &w), 0);

    buf_t want = {0};
    char ev[256];
    unsigned i = 0;
    int rc = 0;
    /* The pipe holds at most a few pages, so the bound is reached well before this limit. */
    for (; i < 100000 && rc == 0; i++) {
        size_t len = make_event(ev, sizeof(ev), i, 80);
        rc = sink_append(w, ev, len);
        buf_add(&want, ev, len);
        buf_add(&want, "\n", 1);
    }
    assert_int_equal(rc, 1);
    assert_int_equal(sink_writer_full(w), 1);
    /* The rest of a read block still gets appended: kept, and still reported full. */
    size_t after_full = 0;
    for (unsigned k = 0; k < 20; k++, i++) {
        size_t len = make_event(ev, sizeof(ev), i, 80);
        assert_int_equal(sink_append(w, ev, len), 1);
        buf_add(&want, ev, len);
        buf_add(&want, "\n", 1);
        after_full += len + 1;
    }
    sink_stats_t st;
    sink_stats(s, &st);
    assert_int_equal(st.stalls, 1);
    assert_true(st.pending_bytes <= bound + after_full);
    /* Memory never exceeds the bound plus what came after "full" rounded up to chunks, plus
     * chunk headers and the sink's own structs (sink, writer, path: under 4 KiB). */
    size_t slack = ((after_full + 1023) / 1024 + 1) * (1024 + 64) + 4 * 64 + 4096;
    assert_true(atomic_load(&counting.peak) <= bound + slack);
    assert_int_equal(wt.writable, 0);

    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reader_main, &rd), 0);
    assert_int_equal(wait_writable(&wt), 0);
    assert_int_equal(wt.writable, 1);
    assert_int_equal(sink_writer_full(w), 0);
    for (unsigned k = 0; k < 200; k++, i++) {
        size_t len = make_event(ev, sizeof(ev), i, 80);
        assert_int_equal(append_obeying(w, &wt, ev, len), 0);
        buf_add(&want, ev, len);
        buf_add(&want, "\n", 1);
    }
    sink_writer_destroy(w);
    assert_int_equal(sink_close(s), 0); /* closes the FIFO: the reader sees EOF */
    assert_int_equal(pthread_join(th, NULL), 0);
    close(rd.fd);
    assert_int_equal(waiter_close(&wt), 0);
    assert_int_equal(atomic_load(&counting.live), 0);

    assert_int_equal(rd.got.len, want.len);
    assert_memory_equal(rd.got.data, want.data, want.len);
    free(rd.got.data);
    free(want.data);
    tmp_remove(&t, NULL);
}

static void test_steady_appends_allocate_nothing_once_chunks_are_warm(void **state)
{
    (void)state;
    tmp_t t;
    tmp_make(&t, "ev.ndjson");
    counting_reset();
    waiter_t wt;
    assert_int_equal(waiter_init(&wt, GUARD_MS), 0);
    sink_config_t cfg = file_config(t.spec, 4096, 4);
    cfg.alloc_fn = counting_alloc;
    cfg.free_fn = counting_free;
    sink_t *s;
    assert_int_equal(sink_create(&cfg, &s), 0);
    sink_writer_t *w;
    assert_int_equal(sink_writer_create(s, &wt.loop, on_writable, &wt, &w), 0);
    char ev[256];
    for (unsigned i = 0; i < 50000; i++) {
        size_t len = make_event(ev, sizeof(ev), i, 90);
        assert_int_equal(append_obeying(w, &wt, ev, len), 0);
    }
    /* sink, path, writer and at most max_pending_chunks chunks, however many events */
    assert_true(atomic_load(&counting.allocs) <= 3 + 4);
    sink_stats_t st;
    sink_stats(s, &st);
    assert_int_equal(st.extra_chunks, 0);
    sink_writer_destroy(w);
    assert_int_equal(sink_close(s), 0);
    assert_int_equal(waiter_close(&wt), 0);
    assert_int_equal(atomic_load(&counting.live), 0);
    tmp_remove(&t, NULL);
}

static void test_reopen_after_rename_sends_later_events_to_the_new_file_losing_none(void **state)
{
    (void)state;
    tmp_t t;
    tmp_make(&t, "ev.ndjson");
    char rotated[160];
    snprintf(rotated, sizeof(rotated), "%s/ev.ndjson.1", t.dir);
    waiter_t wt;
    assert_int_equal(waiter_init(&wt, GUARD_MS), 0);
    sink_config_t cfg = file_config(t.spec, 512, 4);
    sink_t *s;
    assert_int_equal(sink_create(&cfg, &s), 0);
    sink_writer_t *w;
    assert_int_equal(sink_writer_create(s, &wt.loop, on_writable, &wt, &w), 0);

    buf_t before = {0}, after = {0};
    char ev[128];
    for (unsigned i = 0; i < 300; i++) {
        size_t len = make_event(ev, sizeof(ev), i, 30);
        assert_int_equal(append_obeying(w, &wt, ev, len), 0);
        buf_add(&before, ev, len);
        buf_add(&before, "\n", 1);
    }
    sink_writer_flush(w);
    assert_int_equal(rename(t.path, rotated), 0);
    sink_reopen(s);
    for (unsigned i = 300; i < 600; i++) {
        size_t len = make_event(ev, sizeof(ev), i, 30);
        assert_int_equal(append_obeying(w, &wt, ev, len), 0);
        buf_add(&after, ev, len);
        buf_add(&after, "\n", 1);
    }
    sink_writer_destroy(w);
    sink_stats_t st;
    sink_stats(s, &st);
    assert_int_equal(st.reopens, 1);
    assert_int_equal(sink_close(s), 0);
    assert_int_equal(waiter_close(&wt), 0);

    buf_t old = read_file(rotated);
    buf_t cur = read_file(t.path);
    /* old holds a prefix of the events before the reopen, cur the rest and everything after */
    assert_true(old.len <= before.len);
    assert_memory_equal(old.data, before.data, old.len);
    assert_int_equal(cur.len, before.len - old.len + after.len);
    assert_memory_equal(cur.data, before.data + old.len, before.len - old.len);
    assert_memory_equal(cur.data + before.len - old.len, after.data, after.len);
    free(old.data);
    free(cur.data);
    free(before.data);
    free(after.data);
    tmp_remove(&t, "ev.ndjson.1");
}

static void test_close_writes_what_was_pending_and_reports_success(void **state)
{
    (void)state;
    tmp_t t;
    tmp_make(&t, "ev.ndjson");
    waiter_t wt;
    assert_int_equal(waiter_init(&wt, GUARD_MS), 0);
    sink_config_t cfg = file_config(t.spec, 0, 0); /* 64 KiB chunks: nothing fills one */
    sink_t *s;
    assert_int_equal(sink_create(&cfg, &s), 0);
    sink_writer_t *w;
    assert_int_equal(sink_writer_create(s, &wt.loop, on_writable, &wt, &w), 0);
    assert_int_equal(sink_append(w, "{\"n\":1}", 7), 0);
    assert_int_equal(sink_append(w, "{\"n\":2}", 7), 0);
    assert_int_equal(sink_append(w, "{\"n\":3}", 7), 0);
    sink_stats_t st;
    sink_stats(s, &st);
    assert_int_equal(st.events_written, 0); /* still in the partial chunk */
    assert_int_equal(st.pending_bytes, 24);
    sink_writer_destroy(w);
    assert_int_equal(sink_close(s), 0);
    assert_int_equal(waiter_close(&wt), 0);
    buf_t got = read_file(t.path);
    assert_string_equal(got.data, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
    free(got.data);
    tmp_remove(&t, NULL);
}

typedef struct {
    sink_t *sink;
    uv_timer_t poll;
    unsigned ticks;
    uint64_t written;
    uint64_t want;
    uint64_t errors;
} poller_t;

static void on_poll(uv_timer_t *t)
{
    poller_t *p = t->data;
    sink_stats_t st;
    sink_stats(p->sink, &st);
    p->written = st.events_written;
    if (p->written > 0 || ++p->ticks >= GUARD_MS) {
        uv_timer_stop(t);
    }
}

static void test_flush_timer_hands_a_partial_chunk_to_the_writer(void **state)
{
    (void)state;
    tmp_t t;
    tmp_make(&t, "ev.ndjson");
    waiter_t wt;
    assert_int_equal(waiter_init(&wt, GUARD_MS), 0);
    sink_config_t cfg = file_config(t.spec, 0, 0);
    cfg.flush_interval_ms = 1;
    sink_t *s;
    assert_int_equal(sink_create(&cfg, &s), 0);
    sink_writer_t *w;
    assert_int_equal(sink_writer_create(s, &wt.loop, on_writable, &wt, &w), 0);
    assert_int_equal(sink_append(w, "{\"n\":1}", 7), 0);
    poller_t p = {.sink = s};
    uv_timer_init(&wt.loop, &p.poll);
    p.poll.data = &p;
    uv_timer_start(&p.poll, on_poll, 1, 1);
    uv_run(&wt.loop, UV_RUN_DEFAULT);
    assert_int_equal(p.written, 1);
    uv_close((uv_handle_t *)&p.poll, NULL);
    sink_writer_destroy(w);
    assert_int_equal(sink_close(s), 0);
    assert_int_equal(waiter_close(&wt), 0);
    tmp_remove(&t, NULL);
}

static void count_log(void *ctx, const char *line)
{
    (void)line;
    (*(int *)ctx)++;
}

static void test_write_errors_are_counted_logged_and_returned_by_close(void **state)
{
    (void)state;
    waiter_t wt;
    assert_int_equal(waiter_init(&wt, GUARD_MS), 0);
    int logs = 0;
    sink_config_t cfg = file_config("file:/dev/full", 256, 4);
    cfg.log_fn = count_log;
    cfg.log_ctx = &logs;
    sink_t *s;
    assert_int_equal(sink_create(&cfg, &s), 0);
    sink_writer_t *w;
    assert_int_equal(sink_writer_create(s, &wt.loop, on_writable, &wt, &w), 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(sink_append(w, "{\"n\":1}", 7), 0);
    }
    sink_writer_destroy(w); /* gives up after a few attempts instead of hanging */
    sink_stats_t st;
    sink_stats(s, &st);
    assert_int_equal(st.events_appended, 5);
    assert_int_equal(st.events_written, 0);
    assert_int_equal(st.events_lost, 5);
    assert_true(st.write_errors >= 1);
    assert_int_equal(st.pending_bytes, 0);
    assert_int_equal(sink_close(s), -ENOSPC);
    assert_true(logs >= 1);
    assert_int_equal(waiter_close(&wt), 0);
}

static void on_poll_until_written(uv_timer_t *t)
{
    poller_t *p = t->data;
    sink_stats_t st;
    sink_stats(p->sink, &st);
    p->written = st.events_written;
    if (p->written >= p->want || ++p->ticks >= GUARD_MS) {
        uv_timer_stop(t);
    }
}

static void on_poll_until_error(uv_timer_t *t)
{
    poller_t *p = t->data;
    sink_stats_t st;
    sink_stats(p->sink, &st);
    if (st.write_errors > 0 || ++p->ticks >= GUARD_MS) {
        p->errors = st.write_errors;
        uv_timer_stop(t);
    }
}

static void test_failed_writes_are_retried_not_dropped_once_the_sink_recovers(void **state)
{
    (void)state;
    tmp_t t;
    tmp_make(&t, "fifo");
    assert_int_equal(mkfifo(t.path, 0600), 0);
    int first = open(t.path, O_RDONLY | O_NONBLOCK);
    assert_true(first >= 0);
    waiter_t wt;
    assert_int_equal(waiter_init(&wt, GUARD_MS), 0);
    int logs = 0;
    sink_config_t cfg = file_config(t.spec, 256, 4);
    cfg.log_fn = count_log;
    cfg.log_ctx = &logs;
    sink_t *s;
    assert_int_equal(sink_create(&cfg, &s), 0);
    close(first); /* the reader goes away: writes fail with EPIPE */
    sink_writer_t *w;
    assert_int_equal(sink_writer_create(s, &wt.loop, on_writable, &wt, &w), 0);
    buf_t want = {0};
    char ev[64];
    for (unsigned i = 0; i < 10; i++) {
        size_t len = make_event(ev, sizeof(ev), i, 5);
        assert_int_equal(sink_append(w, ev, len), 0);
        buf_add(&want, ev, len);
        buf_add(&want, "\n", 1);
    }
    sink_writer_flush(w);
    poller_t p = {.sink = s};
    uv_timer_init(&wt.loop, &p.poll);
    p.poll.data = &p;
    uv_timer_start(&p.poll, on_poll_until_error, 1, 1);
    uv_run(&wt.loop, UV_RUN_DEFAULT);
    assert_true(p.errors >= 1);

    /* A reader comes back: the same bytes are written on a later attempt. */
    reader_t rd = {0};
    rd.fd = open(t.path, O_RDONLY | O_NONBLOCK);
    assert_true(rd.fd >= 0);
    assert_int_equal(fcntl(rd.fd, F_SETFL, fcntl(rd.fd, F_GETFL) & ~O_NONBLOCK), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reader_main, &rd), 0);
    p.ticks = 0;
    p.want = 10;
    uv_timer_start(&p.poll, on_poll_until_written, 1, 1);
    uv_run(&wt.loop, UV_RUN_DEFAULT);
    assert_int_equal(p.written, 10);
    uv_close((uv_handle_t *)&p.poll, NULL);

    sink_writer_destroy(w);
    sink_stats_t st;
    sink_stats(s, &st);
    assert_int_equal(st.events_lost, 0);
    assert_true(st.write_errors >= 1);
    assert_true(logs >= 1);
    assert_int_equal(sink_close(s), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    close(rd.fd);
    assert_int_equal(waiter_close(&wt), 0);
    assert_int_equal(rd.got.len, want.len);
    assert_memory_equal(rd.got.data, want.data, want.len);
    free(rd.got.data);
    free(want.data);
    tmp_remove(&t, NULL);
}

/* ---- unlink detection (file backend) ---- */

/* Keeps every log line (the writer thread writes; the test reads after sink_close joined it). */
typedef struct {
    buf_t lines;
    int count;
} log_capture_t;

static void capture_log(void *ctx, const char *line)
{
    log_capture_t *lc = ctx;
    buf_add(&lc->lines, line, strlen(line));
    buf_add(&lc->lines, "\n", 1);
    lc->count++;
}

/* Appends n events numbered from first, flushes, and runs the loop until the sink has written
 * want events in all. Adds the events to expect. */
static void append_and_wait_written(sink_t *s, sink_writer_t *w, waiter_t *wt, buf_t *expect,
                                    unsigned first, unsigned n, uint64_t want)
{
    char ev[64];
    for (unsigned i = first; i < first + n; i++) {
        size_t len = make_event(ev, sizeof(ev), i, 10);
        assert_int_equal(append_obeying(w, wt, ev, len), 0);
        buf_add(expect, ev, len);
        buf_add(expect, "\n", 1);
    }
    sink_writer_flush(w);
    poller_t p = {.sink = s, .want = want};
    uv_timer_init(&wt->loop, &p.poll);
    p.poll.data = &p;
    uv_timer_start(&p.poll, on_poll_until_written, 1, 1);
    uv_run(&wt->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&p.poll, NULL);
    uv_run(&wt->loop, UV_RUN_NOWAIT);
    assert_int_equal(p.written, want);
}

/* Longer than the file backend's check interval (one second): the next write checks the path.
 * Sleeping makes the check due; nothing here asserts on how long anything took. */
static void let_check_interval_pass(void)
{
    usleep(1100 * 1000);
}

static void test_file_deleted_without_sighup_is_noticed_reopened_counted_and_logged(void **state)
{
    (void)state;
    tmp_t t;
    tmp_make(&t, "ev.ndjson");
    waiter_t wt;
    assert_int_equal(waiter_init(&wt, GUARD_MS), 0);
    log_capture_t lc = {0};
    sink_config_t cfg = file_config(t.spec, 256, 4);
    cfg.log_fn = capture_log;
    cfg.log_ctx = &lc;
    sink_t *s;
    assert_int_equal(sink_create(&cfg, &s), 0);
    sink_writer_t *w;
    assert_int_equal(sink_writer_create(s, &wt.loop, on_writable, &wt, &w), 0);

    buf_t lost = {0}, kept = {0};
    append_and_wait_written(s, w, &wt, &lost, 0, 10, 10);
    assert_int_equal(unlink(t.path), 0); /* the operator deletes the file, sends no SIGHUP */
    let_check_interval_pass();
    append_and_wait_written(s, w, &wt, &kept, 10, 10, 20);
    sink_stats_t st;
    sink_stats(s, &st);
    assert_int_equal(st.reopens_unlinked, 1);
    assert_int_equal(st.reopens, 1);
    assert_int_equal(st.write_errors, 0);
    assert_int_equal(st.bytes_durable, st.bytes_written);

    /* The check does not reopen a file the path still names. */
    let_check_interval_pass();
    append_and_wait_written(s, w, &wt, &kept, 20, 10, 30);
    sink_stats(s, &st);
    assert_int_equal(st.reopens_unlinked, 1);
    assert_int_equal(st.reopens, 1);

    sink_writer_destroy(w);
    assert_int_equal(sink_close(s), 0);
    assert_int_equal(waiter_close(&wt), 0);
    buf_t got = read_file(t.path); /* recreated: exactly the events after the unlink */
    assert_int_equal(got.len, kept.len);
    assert_memory_equal(got.data, kept.data, kept.len);
    assert_int_equal(lc.count, 1);
    assert_non_null(strstr(lc.lines.data, "ev.ndjson was unlinked"));
    free(got.data);
    free(lost.data);
    free(kept.data);
    free(lc.lines.data);
    tmp_remove(&t, NULL);
}

static void
test_file_replaced_by_rename_is_reopened_and_later_events_go_to_the_new_file(void **state)
{
    (void)state;
    tmp_t t;
    tmp_make(&t, "ev.ndjson");
    char other[160];
    snprintf(other, sizeof(other), "%s/other", t.dir);
    waiter_t wt;
    assert_int_equal(waiter_init(&wt, GUARD_MS), 0);
    log_capture_t lc = {0};
    sink_config_t cfg = file_config(t.spec, 256, 4);
    cfg.log_fn = capture_log;
    cfg.log_ctx = &lc;
    sink_t *s;
    assert_int_equal(sink_create(&cfg, &s), 0);
    sink_writer_t *w;
    assert_int_equal(sink_writer_create(s, &wt.loop, on_writable, &wt, &w), 0);

    buf_t before = {0}, after = {0};
    buf_add(&after, "{\"already\":1}\n", 14);
    append_and_wait_written(s, w, &wt, &before, 0, 10, 10);
    FILE *f = fopen(other, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(after.data, 1, after.len, f), after.len);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(other, t.path), 0);
    let_check_interval_pass();
    append_and_wait_written(s, w, &wt, &after, 10, 10, 20);
    sink_stats_t st;
    sink_stats(s, &st);
    assert_int_equal(st.reopens_unlinked, 1);

    sink_writer_destroy(w);
    assert_int_equal(sink_close(s), 0);
    assert_int_equal(waiter_close(&wt), 0);
    buf_t got = read_file(t.path); /* appended after what the new file already held */
    assert_int_equal(got.len, after.len);
    assert_memory_equal(got.data, after.data, after.len);
    assert_non_null(strstr(lc.lines.data, "ev.ndjson was replaced"));
    free(got.data);
    free(before.data);
    free(after.data);
    free(lc.lines.data);
    tmp_remove(&t, NULL);
}

/* ---- the backend seam, driven by a fake backend ---- */

/* A backend that records what it is given. Its fields are set by the test before sink_create,
 * then touched by the writer thread only, and read again by the test after sink_close (which
 * joins that thread); the counters the test reads while the sink runs are atomics. A hidden
 * global forced by the open signature (no context pointer); tests reset it. */
typedef struct {
    int fail_writes;      /* the first this many writes return -EIO */
    int eagain_writes;    /* then this many return -EAGAIN (no room, not an error) */
    size_t max_take;      /* 0: take everything; else at most this many bytes per write */
    bool durable_by_hand; /* true: writes do not report durability (the test does) */
    int sync_rc;          /* what sync returns */
    sem_t *gate;          /* non-NULL: the first write waits for it */
    sink_t *sink;
    char arg[64];
    uint64_t pos;
    buf_t got;
    int max_iov;
    int writes;
    int syncs;
    atomic_int opens;
    atomic_int closes;
} fake_t;

static fake_t fake;

static void fake_reset(void)
{
    free(fake.got.data);
    memset(&fake, 0, sizeof(fake));
}

static int fake_open(const char *arg, const sink_backend_opts_t *o, void **st)
{
    fake.sink = o->sink;
    snprintf(fake.arg, sizeof(fake.arg), "%s", arg);
    atomic_fetch_add(&fake.opens, 1);
    *st = &fake;
    return 0;
}

static ssize_t fake_write(void *st, const struct iovec *iov, const sink_backend_span_t *span, int n)
{
    (void)span;
    fake_t *f = st;
    if (f->gate != NULL && f->writes == 0) {
        while (sem_wait(f->gate) != 0) {
        }
    }
    f->writes++;
    f->max_iov = n > f->max_iov ? n : f->max_iov;
    if (f->fail_writes > 0) {
        f->fail_writes--;
        return -EIO;
    }
    if (f->eagain_writes > 0) {
        f->eagain_writes--;
        sink_backend_wake(f->sink); /* room "arrives" at once, as an ack would bring it */
        return -EAGAIN;
    }
    size_t took = 0;
    for (int i = 0; i < n; i++) {
        size_t k = iov[i].iov_len;
        if (f->max_take > 0 && k > f->max_take - took) {
            k = f->max_take - took;
        }
        buf_add(&f->got, iov[i].iov_base, k);
        took += k;
        if (k < iov[i].iov_len) {
            break;
        }
    }
    f->pos += took;
    if (!f->durable_by_hand) {
        sink_backend_durable(f->sink, f->pos);
    }
    return (ssize_t)took;
}

static int fake_sync(void *st)
{
    fake_t *f = st;
    f->syncs++;
    return f->sync_rc;
}

static void fake_close(void *st)
{
    (void)st;
    atomic_fetch_add(&fake.closes, 1);
}

static const sink_backend_t fake_backend = {
    .name = "fake",
    .open = fake_open,
    .write = fake_write,
    .sync = fake_sync,
    .close = fake_close,
};

static void test_a_backend_that_fails_is_retried_with_the_same_bytes_until_it_succeeds(void **state)
{
    (void)state;
    fake_reset();
    fake.fail_writes = 3;
    waiter_t wt;
    assert_int_equal(waiter_init(&wt, GUARD_MS), 0);
    log_capture_t lc = {0};
    sink_config_t cfg = file_config("ignored", 256, 4);
    cfg.log_fn = capture_log;
    cfg.log_ctx = &lc;
    sink_t *s;
    assert_int_equal(sink_create_backend(&cfg, &fake_backend, "target-1", &s), 0);
    assert_int_equal(atomic_load(&fake.opens), 1);
    sink_writer_t *w;
    assert_int_equal(sink_writer_create(s, &wt.loop, on_writable, &wt, &w), 0);
    buf_t want = {0};
    append_and_wait_written(s, w, &wt, &want, 0, 10, 10);
    sink_stats_t st;
    sink_stats(s, &st);
    assert_int_equal(st.write_errors, 3);
    assert_int_equal(st.events_lost, 0);
    assert_int_equal(st.bytes_written, want.len);
    assert_int_equal(st.bytes_durable, want.len);
    assert_int_equal(st.pending_bytes, 0);
    sink_reopen(s); /* a backend without reopen: nothing happens, nothing is counted */
    sink_writer_destroy(w);
    assert_int_equal(sink_close(s), 0);
    assert_int_equal(waiter_close(&wt), 0);

    assert_string_equal(fake.arg, "target-1");
    assert_int_equal(fake.writes, 3 + 1); /* one chunk: three failures, then all of it */
    assert_int_equal(fake.syncs, 1);
    assert_int_equal(atomic_load(&fake.closes), 1);
    assert_int_equal(fake.got.len, want.len);
    assert_memory_equal(fake.got.data, want.data, want.len);
    assert_true(lc.count >= 1); /* rate-limited: the later failures fold into one line */
    assert_non_null(strstr(lc.lines.data, "write target-1: "));
    free(want.data);
    free(lc.lines.data);
    fake_reset();
}

static void test_short_writes_resume_mid_chunk_and_a_batch_hands_at_most_64_iovecs(void **state)
{
    (void)state;
    fake_reset();
    sem_t gate;
    assert_int_equal(sem_init(&gate, 0, 0), 0);
    fake.gate = &gate; /* the writer thread holds its first write until every chunk is queued */
    fake.max_take = 50;
    waiter_t wt;
    assert_int_equal(waiter_init(&wt, GUARD_MS), 0);
    sink_config_t cfg = file_config("ignored", 64, 512);
    sink_t *s;
    assert_int_equal(sink_create_backend(&cfg, &fake_backend, "t", &s), 0);
    sink_writer_t *w;
    assert_int_equal(sink_writer_create(s, &wt.loop, on_writable, &wt, &w), 0);
    buf_t want = {0};
    char ev[64];
    const unsigned n = 300; /* 30 to 33 bytes each: two per 64-byte chunk, 150 chunks */
    for (unsigned i = 0; i < n; i++) {
        size_t len = make_event(ev, sizeof(ev), i, 20);
        assert_int_equal(sink_append(w, ev, len), 0);
        buf_add(&want, ev, len);
        buf_add(&want, "\n", 1);
    }
    sink_writer_flush(w);
    assert_int_equal(sem_post(&gate), 0);
    sink_writer_destroy(w); /* waits until everything is written */
    sink_stats_t st;
    sink_stats(s, &st);
    assert_int_equal(st.events_written, n);
    assert_int_equal(st.bytes_written, want.len);
    assert_int_equal(st.write_errors, 0);
    assert_int_equal(sink_close(s), 0);
    assert_int_equal(waiter_close(&wt), 0);
    sem_destroy(&gate);

    assert_int_equal(fake.max_iov, SINK_BACKEND_IOV_MAX);
    assert_true(fake.writes >= (int)((want.len + 49) / 50));
    assert_int_equal(fake.got.len, want.len);
    assert_memory_equal(fake.got.data, want.data, want.len);
    free(want.data);
    fake_reset();
}

static void test_durable_position_only_grows_and_a_failed_sync_is_returned_by_close(void **state)
{
    (void)state;
    fake_reset();
    fake.durable_by_hand = true; /* like a network backend acknowledged later, elsewhere */
    fake.sync_rc = -EIO;
    waiter_t wt;
    assert_int_equal(waiter_init(&wt, GUARD_MS), 0);
    int logs = 0;
    sink_config_t cfg = file_config("ignored", 256, 4);
    cfg.log_fn = count_log;
    cfg.log_ctx = &logs;
    sink_t *s;
    assert_int_equal(sink_create_backend(&cfg, &fake_backend, "t", &s), 0);
    sink_writer_t *w;
    assert_int_equal(sink_writer_create(s, &wt.loop, on_writable, &wt, &w), 0);
    buf_t want = {0};
    append_and_wait_written(s, w, &wt, &want, 0, 5, 5);
    sink_stats_t st;
    sink_stats(s, &st);
    assert_int_equal(st.bytes_written, want.len);
    assert_int_equal(st.bytes_durable, 0); /* written is not durable until the backend says so */

    sink_backend_durable(s, 40); /* from this (non-writer) thread, as an ack callback would */
    sink_stats(s, &st);
    assert_int_equal(st.bytes_durable, 40);
    sink_backend_durable(s, 20); /* late, out of order: ignored */
    sink_stats(s, &st);
    assert_int_equal(st.bytes_durable, 40);
    sink_backend_durable(s, want.len);
    sink_stats(s, &st);
    assert_int_equal(st.bytes_durable, want.len);

    sink_writer_destroy(w);
    assert_int_equal(sink_close(s), -EIO); /* nothing lost, but the sync failed */
    assert_int_equal(fake.syncs, 1);
    assert_true(logs >= 1);
    assert_int_equal(waiter_close(&wt), 0);
    free(want.data);
    fake_reset();
}

static void on_durable_count(void *ctx)
{
    waiter_t *wt = ctx;
    wt->writable += 1000; /* distinguishable from on_writable's +1 */
}

static void test_durable_sequence_advances_only_as_the_backend_reports_it(void **state)
{
    (void)state;
    fake_reset();
    fake.durable_by_hand = true;
    waiter_t wt;
    assert_int_equal(waiter_init(&wt, GUARD_MS), 0);
    sink_config_t cfg = file_config("ignored", 256, 4);
    sink_t *s;
    assert_int_equal(sink_create_backend(&cfg, &fake_backend, "t", &s), 0);
    sink_writer_t *w;
    assert_int_equal(sink_writer_create(s, &wt.loop, on_writable, &wt, &w), 0);
    sink_writer_set_durable_cb(w, on_durable_count, &wt);
    buf_t want = {0};
    append_and_wait_written(s, w, &wt, &want, 0, 5, 5);
    assert_int_equal(sink_writer_seq(w), 5);
    assert_int_equal(sink_writer_durable(w), 0); /* written is not durable */
    sink_stats_t st;
    sink_stats(s, &st);
    assert_int_equal(st.undurable_bytes, want.len);
    assert_int_equal(st.events_durable, 0);

    sink_backend_durable(s, want.len); /* from this thread, as an ack callback would */
    assert_int_equal(wait_writable(&wt), 0);
    assert_true(wt.writable >= 1000); /* the durable callback ran on the loop */
    assert_int_equal(sink_writer_durable(w), 5);
    assert_int_equal(sink_writer_lost(w), 0);
    sink_stats(s, &st);
    assert_int_equal(st.undurable_bytes, 0);
    assert_int_equal(st.events_durable, 5);
    sink_writer_destroy(w);
    assert_int_equal(sink_close(s), 0);
    assert_int_equal(waiter_close(&wt), 0);
    free(want.data);
    fake_reset();
}

static void test_undurable_chunks_fill_the_writer_until_the_backend_makes_them_durable(void **state)
{
    (void)state;
    fake_reset();
    fake.durable_by_hand = true;
    waiter_t wt;
    assert_int_equal(waiter_init(&wt, GUARD_MS), 0);
    sink_config_t cfg = file_config("ignored", 256, 4); /* full at 768 bytes in flight */
    sink_t *s;
    assert_int_equal(sink_create_backend(&cfg, &fake_backend, "t", &s), 0);
    sink_writer_t *w;
    assert_int_equal(sink_writer_create(s, &wt.loop, on_writable, &wt, &w), 0);
    char ev[64];
    unsigned i = 0;
    int rc = 0;
    while (rc == 0 && i < 1000) {
        size_t len = make_event(ev, sizeof(ev), i++, 40);
        rc = sink_append(w, ev, len);
    }
    assert_int_equal(rc, 1); /* full although the backend took every byte it was given */
    assert_int_equal(sink_writer_full(w), 1);
    sink_stats_t st;
    for (int k = 0; k < 3000; k++) { /* wait until the handed-over chunks are written */
        sink_stats(s, &st);
        if (st.pending_bytes <= 256) {
            break;
        }
        usleep(1000);
    }
    assert_int_equal(sink_writer_full(w), 1);
    sink_backend_durable(s, st.bytes_written);
    assert_int_equal(wait_writable(&wt), 0); /* durability, not writing, made room */
    assert_int_equal(sink_writer_full(w), 0);
    sink_writer_flush(w);
    for (int k = 0; k < 3000 && (sink_stats(s, &st), st.pending_bytes > 0); k++) {
        usleep(1000);
    }
    sink_backend_durable(s, st.bytes_written);
    sink_writer_destroy(w);
    assert_int_equal(sink_close(s), 0);
    assert_int_equal(waiter_close(&wt), 0);
    fake_reset();
}

static void test_no_room_is_waited_out_without_counting_an_error(void **state)
{
    (void)state;
    fake_reset();
    fake.eagain_writes = 5;
    waiter_t wt;
    assert_int_equal(waiter_init(&wt, GUARD_MS), 0);
    sink_config_t cfg = file_config("ignored", 256, 4);
    sink_t *s;
    assert_int_equal(sink_create_backend(&cfg, &fake_backend, "t", &s), 0);
    sink_writer_t *w;
    assert_int_equal(sink_writer_create(s, &wt.loop, on_writable, &wt, &w), 0);
    buf_t want = {0};
    append_and_wait_written(s, w, &wt, &want, 0, 8, 8);
    sink_stats_t st;
    sink_stats(s, &st);
    assert_int_equal(st.write_errors, 0);
    assert_int_equal(fake.eagain_writes, 0);
    assert_int_equal(fake.got.len, want.len);
    assert_memory_equal(fake.got.data, want.data, want.len);
    assert_int_equal(sink_writer_durable(w), 8);
    sink_writer_destroy(w);
    assert_int_equal(sink_close(s), 0);
    assert_int_equal(waiter_close(&wt), 0);
    free(want.data);
    fake_reset();
}

static void test_destroy_gives_up_what_never_became_durable_after_the_timeout(void **state)
{
    (void)state;
    fake_reset();
    fake.durable_by_hand = true; /* and never reported: a NATS that never acks */
    waiter_t wt;
    assert_int_equal(waiter_init(&wt, GUARD_MS), 0);
    int logs = 0;
    sink_config_t cfg = file_config("ignored", 256, 4);
    cfg.durable_timeout_ms = 100;
    cfg.log_fn = count_log;
    cfg.log_ctx = &logs;
    sink_t *s;
    assert_int_equal(sink_create_backend(&cfg, &fake_backend, "t", &s), 0);
    sink_writer_t *w;
    assert_int_equal(sink_writer_create(s, &wt.loop, on_writable, &wt, &w), 0);
    buf_t want = {0};
    append_and_wait_written(s, w, &wt, &want, 0, 7, 7);
    sink_writer_destroy(w); /* returns after the timeout instead of waiting forever */
    sink_stats_t st;
    sink_stats(s, &st);
    assert_int_equal(st.events_lost, 7);
    assert_int_equal(st.events_durable, 0);
    assert_int_equal(st.undurable_bytes, 0);
    assert_int_equal(sink_close(s), -ETIMEDOUT);
    assert_true(logs >= 1);
    assert_int_equal(waiter_close(&wt), 0);
    free(want.data);
    fake_reset();
}

/* A reply for events F..N may say "stored" only when durable >= N and none of F..N was given
 * up (durable counts settled events, given up or not). */
static void test_events_given_up_are_told_apart_from_durable_ones(void **state)
{
    (void)state;
    fake_reset();
    fake.durable_by_hand = true;
    waiter_t wt;
    assert_int_equal(waiter_init(&wt, GUARD_MS), 0);
    sink_config_t cfg = file_config("ignored", 256, 4);
    cfg.durable_timeout_ms = 100;
    cfg.log_fn = count_log;
    int logs = 0;
    cfg.log_ctx = &logs;
    sink_t *s;
    assert_int_equal(sink_create_backend(&cfg, &fake_backend, "t", &s), 0);
    sink_writer_t *w;
    assert_int_equal(sink_writer_create(s, &wt.loop, on_writable, &wt, &w), 0);
    buf_t want = {0};
    append_and_wait_written(s, w, &wt, &want, 0, 4, 4);
    sink_backend_durable(s, want.len); /* the first 4 are stored */
    for (int i = 0; i < 1000 && sink_writer_durable(w) < 4; i++) {
        usleep(1000);
    }
    assert_int_equal(sink_writer_durable(w), 4);
    assert_int_equal(sink_writer_lost_any(w, 1, 4), 0);
    append_and_wait_written(s, w, &wt, &want, 4, 3, 7); /* these 3 never are */
    assert_int_equal(sink_writer_settle(w), 7);         /* given up after the timeout */
    assert_int_equal(sink_writer_lost(w), 3);
    assert_int_equal(sink_writer_lost_any(w, 1, 4), 0); /* a reply for 1..4 may say stored */
    assert_int_equal(sink_writer_lost_any(w, 3, 5), 1); /* one for 3..5 or 5..7 may not */
    assert_int_equal(sink_writer_lost_any(w, 5, 7), 1);
    assert_int_equal(sink_writer_lost_any(w, 6, 6), 1);
    assert_int_equal(sink_writer_lost_any(w, 8, 9), 0);
    sink_writer_destroy(w);
    assert_int_equal(sink_close(s), -ETIMEDOUT);
    assert_int_equal(waiter_close(&wt), 0);
    free(want.data);
    fake_reset();
}

static void test_file_sync_makes_events_durable_after_the_group_commit(void **state)
{
    (void)state;
    tmp_t t;
    tmp_make(&t, "synced.ndjson");
    waiter_t wt;
    assert_int_equal(waiter_init(&wt, GUARD_MS), 0);
    sink_config_t cfg = file_config(t.spec, 4096, 4);
    cfg.file_sync = true;
    sink_t *s;
    assert_int_equal(sink_create(&cfg, &s), 0);
    sink_writer_t *w;
    assert_int_equal(sink_writer_create(s, &wt.loop, on_writable, &wt, &w), 0);
    sink_writer_set_durable_cb(w, on_durable_count, &wt);
    char ev[64];
    for (unsigned i = 0; i < 300; i++) {
        size_t len = make_event(ev, sizeof(ev), i, 20);
        assert_int_equal(append_obeying(w, &wt, ev, len), 0);
    }
    sink_writer_flush(w);
    while (sink_writer_durable(w) < 300) {
        assert_int_equal(wait_writable(&wt), 0);
    }
    sink_stats_t st;
    sink_stats(s, &st);
    assert_int_equal(st.events_durable, 300);
    assert_int_equal(st.bytes_durable, st.bytes_written);
    sink_writer_destroy(w);
    assert_int_equal(sink_close(s), 0);
    assert_int_equal(waiter_close(&wt), 0);
    buf_t got = read_file(t.path);
    assert_int_equal(got.len, st.bytes_written);
    free(got.data);
    tmp_remove(&t, NULL);
}

static void test_destroy_and_close_of_null_do_nothing(void **state)
{
    (void)state;
    sink_writer_destroy(NULL);
    assert_int_equal(sink_close(NULL), 0);
    sink_reopen(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_spec_accepts_null_and_file_path_and_rejects_the_rest),
        cmocka_unit_test(test_create_fails_clearly_on_bad_config_or_path),
        cmocka_unit_test(test_null_sink_counts_events_and_never_fills),
        cmocka_unit_test(test_file_sink_writes_every_event_in_order_across_chunk_boundaries),
        cmocka_unit_test(test_event_larger_than_a_chunk_lands_whole_between_its_neighbours),
        cmocka_unit_test(test_two_writers_on_two_loop_threads_lose_nothing_and_keep_their_order),
        cmocka_unit_test(test_sink_that_cannot_keep_up_pauses_the_writer_and_memory_stays_bounded),
        cmocka_unit_test(test_steady_appends_allocate_nothing_once_chunks_are_warm),
        cmocka_unit_test(test_reopen_after_rename_sends_later_events_to_the_new_file_losing_none),
        cmocka_unit_test(test_close_writes_what_was_pending_and_reports_success),
        cmocka_unit_test(test_flush_timer_hands_a_partial_chunk_to_the_writer),
        cmocka_unit_test(test_write_errors_are_counted_logged_and_returned_by_close),
        cmocka_unit_test(test_failed_writes_are_retried_not_dropped_once_the_sink_recovers),
        cmocka_unit_test(test_file_deleted_without_sighup_is_noticed_reopened_counted_and_logged),
        cmocka_unit_test(
            test_file_replaced_by_rename_is_reopened_and_later_events_go_to_the_new_file),
        cmocka_unit_test(
            test_a_backend_that_fails_is_retried_with_the_same_bytes_until_it_succeeds),
        cmocka_unit_test(test_short_writes_resume_mid_chunk_and_a_batch_hands_at_most_64_iovecs),
        cmocka_unit_test(test_durable_position_only_grows_and_a_failed_sync_is_returned_by_close),
        cmocka_unit_test(test_durable_sequence_advances_only_as_the_backend_reports_it),
        cmocka_unit_test(
            test_undurable_chunks_fill_the_writer_until_the_backend_makes_them_durable),
        cmocka_unit_test(test_no_room_is_waited_out_without_counting_an_error),
        cmocka_unit_test(test_destroy_gives_up_what_never_became_durable_after_the_timeout),
        cmocka_unit_test(test_events_given_up_are_told_apart_from_durable_ones),
        cmocka_unit_test(test_file_sync_makes_events_durable_after_the_group_commit),
        cmocka_unit_test(test_destroy_and_close_of_null_do_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
