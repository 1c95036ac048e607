/* test_pool_threads.c - several threads get blocks from their own caches and pass them on to
 * the next thread, which puts them into its cache; a reader sums stats meanwhile. Meant for
 * ThreadSanitizer: every block crosses threads, every counter is read while written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "pool/pool.h"

#define N_THREADS 3
#define ROUNDS 3000
#define BURST 8
#define RING 64

static atomic_size_t n_alloc, n_free;

static void *count_alloc(size_t n)
{
    atomic_fetch_add(&n_alloc, 1);
    return malloc(n);
}

static void count_free(void *p)
{
    atomic_fetch_add(&n_free, 1);
    free(p);
}

/* A bounded mailbox per thread: others push blocks into it, its owner drains and puts them. */
typedef struct {
    pthread_mutex_t lock;
    void *slot[RING];
    size_t head, n;
} mailbox_t;

typedef struct {
    pool_t *pool;
    mailbox_t *boxes;
    int id;
    atomic_int *running;
} worker_t;

static int mailbox_try_push(mailbox_t *m, void *b)
{
    int ok = 0;

    pthread_mutex_lock(&m->lock);
    if (m->n < RING) {
        m->slot[(m->head + m->n) % RING] = b;
        m->n++;
        ok = 1;
    }
    pthread_mutex_unlock(&m->lock);
    return ok;
}

/* Pops everything in the owner's mailbox and puts it into the owner's cache. */
static void mailbox_drain_into(mailbox_t *m, pool_cache_t *c)
{
    void *got[RING];
    size_t n;

    pthread_mutex_lock(&m->lock);
    n = m->n;
    for (size_t i = 0; i < n; i++) {
        got[i] = m->slot[(m->head + i) % RING];
    }
    m->head = (m->head + n) % RING;
    m->n = 0;
    pthread_mutex_unlock(&m->lock);
    for (size_t i = 0; i < n; i++) {
        pool_put(c, got[i]);
    }
}

static void *worker(void *arg)
{
    worker_t *w = arg;
    pool_cache_t *c;
    mailbox_t *next = &w->boxes[(w->id + 1) % N_THREADS];
    mailbox_t *mine = &w->boxes[w->id];

    if (pool_cache_create(w->pool, &c) != 0) {
        atomic_fetch_sub(w->running, 1);
        return NULL;
    }
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < BURST; i++) {
            unsigned char *b = pool_get(c);
            if (b == NULL) {
                continue;
            }
            memset(b, w->id, 64);
            b[POOL_BLOCK_SIZE - 1] = (unsigned char)r;
            /* Thread 0 hands every block on, the others half of them: thread 1 gains blocks
             * and spills batches to the depot, thread 0 runs dry and pulls them back. */
            if (w->id == 0 || i % 2 == 0) {
                /* Handed to the next thread, which puts it into its own cache. */
                while (!mailbox_try_push(next, b)) {
                    mailbox_drain_into(mine, c);
                    sched_yield();
                }
            } else {
                pool_put(c, b);
            }
        }
        mailbox_drain_into(mine, c);
        if (r % 500 == 0) {
            pool_cache_trim(c);
        }
    }
    /* Keep draining until every thread has stopped producing. */
    atomic_fetch_sub(w->running, 1);
    while (atomic_load(w->running) > 0) {
        mailbox_drain_into(mine, c);
        sched_yield();
    }
    mailbox_drain_into(mine, c);
    pool_cache_trim(c);
    pool_cache_destroy(c);
    return NULL;
}

typedef struct {
    pool_t *pool;
    atomic_int *running;
    uint64_t reads, max_gets;
} reader_t;

/* Sums the stats while the workers run: the lock-free counters are read on another thread. */
static void *reader(void *arg)
{
    reader_t *r = arg;
    pool_stats_t s;

    while (atomic_load(r->running) > 0) {
        pool_stats(r->pool, &s);
        if (s.gets > r->max_gets) {
            r->max_gets = s.gets;
        }
        r->reads++;
        sched_yield();
    }
    return NULL;
}

static void test_threads_get_and_put_blocks_across_threads(void **state)
{
    pool_config_t cfg;
    pool_t *p = NULL;
    mailbox_t boxes[N_THREADS];
    worker_t w[N_THREADS];
    pthread_t tid[N_THREADS], rtid;
    atomic_int running = N_THREADS;
    reader_t rd;
    pool_stats_t s;
    (void)state;

    pool_config_init(&cfg); /* free_on_put follows the environment */
    cfg.alloc_fn = count_alloc;
    cfg.free_fn = count_free;
    assert_int_equal(pool_create(&cfg, &p), 0);
    memset(boxes, 0, sizeof(boxes));
    for (int i = 0; i < N_THREADS; i++) {
        pthread_mutex_init(&boxes[i].lock, NULL);
    }
    rd = (reader_t){.pool = p, .running = &running};
    assert_int_equal(pthread_create(&rtid, NULL, reader, &rd), 0);
    for (int i = 0; i < N_THREADS; i++) {
        w[i] = (worker_t){.pool = p, .boxes = boxes, .id = i, .running = &running};
        assert_int_equal(pthread_create(&tid[i], NULL, worker, &w[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(tid[i], NULL);
    }
    pthread_join(rtid, NULL);

    pool_stats(p, &s);
    assert_int_equal(s.gets, (uint64_t)N_THREADS * ROUNDS * BURST);
    assert_int_equal(s.gets, s.hits + s.misses);
    assert_int_equal(s.puts, s.gets);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.alloc_failures, 0);
    assert_int_equal((int64_t)(s.misses - s.released), s.idle);
    assert_true(rd.max_gets <= s.gets);
    if (!cfg.free_on_put) {
        /* Caching worked: far fewer allocations than gets. */
        assert_true(s.misses < s.gets / 4);
    }
    for (int i = 0; i < N_THREADS; i++) {
        pthread_mutex_destroy(&boxes[i].lock);
    }
    pool_destroy(p);
    assert_int_equal(atomic_load(&n_alloc), atomic_load(&n_free));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_get_and_put_blocks_across_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
