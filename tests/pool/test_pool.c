/* test_pool.c - the block pool: reuse, cross-cache put, victim-cache trim, retain, naive mode,
 * free-on-put, stats invariants and allocation failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#include "pool/pool.h"

/* A counting allocator that can be told to fail, and remembers the last blocks it freed. */
#define FREED_MAX 64
static size_t n_alloc, n_free;
static long fail_after = -1; /* -1: never; otherwise the allocations still allowed */
static void *freed[FREED_MAX];
static size_t n_freed_rec;

static void *count_alloc(size_t n)
{
    if (fail_after == 0) {
        return NULL;
    }
    if (fail_after > 0) {
        fail_after--;
    }
    n_alloc++;
    return malloc(n);
}

static void count_free(void *ptr)
{
    if (ptr == NULL) {
        return;
    }
    n_free++;
    if (n_freed_rec < FREED_MAX) {
        freed[n_freed_rec++] = ptr;
    }
    free(ptr);
}

static int reset_counts(void **state)
{
    (void)state;
    n_alloc = 0;
    n_free = 0;
    fail_after = -1;
    n_freed_rec = 0;
    return 0;
}

static int was_freed(const void *ptr)
{
    for (size_t i = 0; i < n_freed_rec; i++) {
        if (freed[i] == ptr) {
            return 1;
        }
    }
    return 0;
}

/* A pooled pool that caches whatever the environment says (tests of caching set free_on_put
 * to 0 explicitly, since the asan test preset turns it on). */
static pool_t *make_pool(pool_mode_t mode, int retain)
{
    pool_config_t cfg;
    pool_t *p = NULL;

    pool_config_init(&cfg);
    cfg.mode = mode;
    cfg.retain_percent = retain;
    cfg.free_on_put = 0;
    cfg.alloc_fn = count_alloc;
    cfg.free_fn = count_free;
    assert_int_equal(pool_create(&cfg, &p), 0);
    return p;
}

static void check_invariants(pool_t *p)
{
    pool_stats_t s;

    pool_stats(p, &s);
    assert_int_equal(s.gets, s.hits + s.misses);
    assert_int_equal((int64_t)s.gets - (int64_t)s.puts, s.in_use);
}

static void test_config_init_gives_pooled_retain_100_defaults(void **state)
{
    pool_config_t cfg;
    const char *env = getenv("INGESTD_POOL_FREE_ON_PUT");
    char saved[8] = "";
    (void)state;

    if (env != NULL) {
        strncpy(saved, env, sizeof(saved) - 1);
    }
    unsetenv("INGESTD_POOL_FREE_ON_PUT");
    pool_config_init(&cfg);
    assert_int_equal(cfg.mode, POOL_MODE_POOLED);
    assert_int_equal(cfg.retain_percent, 100);
    assert_int_equal(cfg.free_on_put, 0);
    assert_null(cfg.alloc_fn);
    assert_null(cfg.free_fn);
    setenv("INGESTD_POOL_FREE_ON_PUT", "1", 1);
    pool_config_init(&cfg);
    assert_int_equal(cfg.free_on_put, 1);
    if (env != NULL) {
        setenv("INGESTD_POOL_FREE_ON_PUT", saved, 1);
    } else {
        unsetenv("INGESTD_POOL_FREE_ON_PUT");
    }
}

static void test_create_rejects_bad_config(void **state)
{
    pool_config_t cfg;
    pool_t *p = NULL;
    (void)state;

    pool_config_init(&cfg);
    cfg.retain_percent = -5;
    assert_int_equal(pool_create(&cfg, &p), -EINVAL);
    pool_config_init(&cfg);
    cfg.mode = (pool_mode_t)7;
    assert_int_equal(pool_create(&cfg, &p), -EINVAL);
    pool_config_init(&cfg);
    cfg.alloc_fn = count_alloc;
    assert_int_equal(pool_create(&cfg, &p), -EINVAL);
    assert_null(p);
    pool_destroy(NULL);
    pool_cache_destroy(NULL);
}

static void test_put_then_get_reuses_block(void **state)
{
    pool_t *p = make_pool(POOL_MODE_POOLED, 100);
    pool_cache_t *c;
    pool_stats_t s;
    (void)state;

    assert_int_equal(pool_cache_create(p, &c), 0);
    char *b = pool_get(c);
    assert_non_null(b);
    memset(b, 0xab, POOL_BLOCK_SIZE);
    pool_put(c, b);
    pool_put(c, NULL);
    assert_ptr_equal(pool_get(c), b);
    pool_cache_stats(c, &s);
    assert_int_equal(s.gets, 2);
    assert_int_equal(s.hits, 1);
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.puts, 1);
    assert_int_equal(s.in_use, 1);
    assert_int_equal(s.idle, 0);
    assert_int_equal(n_alloc - 2, 1); /* pool, cache, one block */
    pool_put(c, b);
    pool_cache_destroy(c);
    pool_destroy(p);
    assert_int_equal(n_alloc, n_free);
}

static void test_block_put_on_another_cache_is_reused_there(void **state)
{
    pool_t *p = make_pool(POOL_MODE_POOLED, 100);
    pool_cache_t *a, *b;
    pool_stats_t sa, sb, s;
    (void)state;

    assert_int_equal(pool_cache_create(p, &a), 0);
    assert_int_equal(pool_cache_create(p, &b), 0);
    void *blk = pool_get(a);
    pool_put(b, blk);
    pool_cache_stats(a, &sa);
    pool_cache_stats(b, &sb);
    assert_int_equal(sa.in_use, 1);
    assert_int_equal(sb.in_use, -1);
    assert_int_equal(sb.idle, 1);
    pool_stats(p, &s);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.idle, 1);
    assert_ptr_equal(pool_get(b), blk);
    pool_put(a, blk);
    check_invariants(p);
    pool_cache_destroy(a);
    pool_cache_destroy(b);
    pool_destroy(p);
    assert_int_equal(n_alloc, n_free);
}

static void test_trim_releases_only_blocks_idle_for_a_full_interval(void **state)
{
    pool_t *p = make_pool(POOL_MODE_POOLED, 100);
    pool_cache_t *c;
    void *blk[4];
    pool_stats_t s;
    (void)state;

    assert_int_equal(pool_cache_create(p, &c), 0);
    for (int i = 0; i < 4; i++) {
        blk[i] = pool_get(c);
    }
    for (int i = 0; i < 4; i++) {
        pool_put(c, blk[i]);
    }
    /* Put during this interval: nothing has been idle for a whole one yet. */
    assert_int_equal(pool_cache_trim(c), 0);
    /* Two of them are used again during the next interval (LIFO: blk[3], blk[2]). */
    void *x = pool_get(c);
    void *y = pool_get(c);
    pool_put(c, x);
    pool_put(c, y);
    n_freed_rec = 0;
    assert_int_equal(pool_cache_trim(c), 2);
    assert_true(was_freed(blk[0]));
    assert_true(was_freed(blk[1]));
    assert_false(was_freed(x));
    assert_false(was_freed(y));
    pool_cache_stats(c, &s);
    assert_int_equal(s.idle, 2);
    assert_int_equal(s.released, 2);
    assert_int_equal(s.trims, 2);
    assert_true(s.trim_ns_total >= s.trim_ns_last);
    /* Idle through the whole third interval: released. */
    assert_int_equal(pool_cache_trim(c), 2);
    pool_cache_stats(c, &s);
    assert_int_equal(s.idle, 0);
    check_invariants(p);
    pool_cache_destroy(c);
    pool_destroy(p);
    assert_int_equal(n_alloc, n_free);
}

static void test_idle_pool_drains_in_two_trims(void **state)
{
    pool_t *p = make_pool(POOL_MODE_POOLED, 100);
    pool_cache_t *c;
    void *blk[10];
    pool_stats_t s;
    (void)state;

    assert_int_equal(pool_cache_create(p, &c), 0);
    for (int i = 0; i < 10; i++) {
        blk[i] = pool_get(c);
    }
    for (int i = 0; i < 10; i++) {
        pool_put(c, blk[i]);
    }
    assert_int_equal(pool_cache_trim(c), 0);
    assert_int_equal(pool_cache_trim(c), 10);
    pool_stats(p, &s);
    assert_int_equal(s.idle, 0);
    assert_int_equal(s.released, 10);
    assert_int_equal(n_alloc - n_free, 2); /* pool and cache */
    pool_cache_destroy(c);
    pool_destroy(p);
}

static void test_retain_percent_bounds_idle_blocks_to_share_of_peak(void **state)
{
    pool_t *p = make_pool(POOL_MODE_POOLED, 50);
    pool_cache_t *c;
    void *blk[10];
    pool_stats_t s;
    (void)state;

    assert_int_equal(pool_retain(p), 50);
    assert_int_equal(pool_cache_create(p, &c), 0);
    for (int i = 0; i < 10; i++) {
        blk[i] = pool_get(c);
    }
    for (int i = 0; i < 10; i++) {
        pool_put(c, blk[i]);
    }
    /* Peak 10 in this interval: keep at most 50% of it. */
    assert_int_equal(pool_cache_trim(c), 5);
    pool_cache_stats(c, &s);
    assert_int_equal(s.idle, 5);
    assert_int_equal(s.peak_in_use, 0);
    /* A busy interval with a peak of 4 keeps at most 2 of the blocks put in it. */
    pool_set_retain(p, 50);
    for (int i = 0; i < 4; i++) {
        blk[i] = pool_get(c);
    }
    for (int i = 0; i < 4; i++) {
        pool_put(c, blk[i]);
    }
    assert_int_equal(pool_cache_trim(c), 1 + 2); /* one idle victim, two over the bound */
    pool_cache_stats(c, &s);
    assert_int_equal(s.idle, 2);
    check_invariants(p);
    pool_cache_destroy(c);
    pool_destroy(p);
    assert_int_equal(n_alloc, n_free);
}

static void test_retain_off_never_releases(void **state)
{
    pool_t *p = make_pool(POOL_MODE_POOLED, POOL_RETAIN_OFF);
    pool_cache_t *c;
    void *blk[10];
    pool_stats_t s;
    (void)state;

    assert_int_equal(pool_cache_create(p, &c), 0);
    for (int i = 0; i < 10; i++) {
        blk[i] = pool_get(c);
    }
    for (int i = 0; i < 10; i++) {
        pool_put(c, blk[i]);
    }
    for (int i = 0; i < 5; i++) {
        assert_int_equal(pool_cache_trim(c), 0);
    }
    pool_stats(p, &s);
    assert_int_equal(s.idle, 10);
    assert_int_equal(s.released, 0);
    assert_int_equal(s.trims, 5);
    /* Turning release back on drains the idle pool in two trims. */
    pool_set_retain(p, 100);
    pool_cache_trim(c);
    pool_cache_trim(c);
    pool_stats(p, &s);
    assert_int_equal(s.idle, 0);
    assert_int_equal(s.released, 10);
    pool_cache_destroy(c);
    pool_destroy(p);
    assert_int_equal(n_alloc, n_free);
}

static void test_naive_mode_allocates_on_get_and_frees_on_put(void **state)
{
    pool_t *p = make_pool(POOL_MODE_NAIVE, 100);
    pool_cache_t *c;
    pool_stats_t s;
    (void)state;

    assert_int_equal(pool_mode(p), POOL_MODE_NAIVE);
    assert_int_equal(pool_cache_create(p, &c), 0);
    size_t base = n_alloc;
    for (int i = 0; i < 5; i++) {
        void *b = pool_get(c);
        assert_non_null(b);
        memset(b, i, POOL_BLOCK_SIZE);
        pool_put(c, b);
    }
    assert_int_equal(n_alloc - base, 5);
    assert_int_equal(n_free, 5);
    assert_int_equal(pool_cache_trim(c), 0);
    pool_stats(p, &s);
    assert_int_equal(s.gets, 5);
    assert_int_equal(s.misses, 5);
    assert_int_equal(s.hits, 0);
    assert_int_equal(s.puts, 5);
    assert_int_equal(s.released, 5);
    assert_int_equal(s.idle, 0);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.trims, 1);
    pool_cache_destroy(c);
    pool_destroy(p);
    assert_int_equal(n_alloc, n_free);
}

static void test_set_mode_switches_both_ways_and_blocks_return_in_either_mode(void **state)
{
    pool_t *p = make_pool(POOL_MODE_POOLED, 100);
    pool_cache_t *c;
    pool_stats_t s;
    void *held[4];
    (void)state;

    assert_int_equal(pool_set_mode(p, (pool_mode_t)7), -EINVAL);
    assert_int_equal(pool_mode(p), POOL_MODE_POOLED);
    assert_int_equal(pool_cache_create(p, &c), 0);
    /* Pooled: two blocks cached, two held across the switch. */
    for (int i = 0; i < 4; i++) {
        held[i] = pool_get(c);
        assert_non_null(held[i]);
    }
    pool_put(c, held[2]);
    pool_put(c, held[3]);
    size_t frees_before = n_free;

    assert_int_equal(pool_set_mode(p, POOL_MODE_NAIVE), 0);
    assert_int_equal(pool_mode(p), POOL_MODE_NAIVE);
    size_t allocs_before = n_alloc;
    void *b = pool_get(c); /* naive: a fresh block even though two are cached */
    assert_non_null(b);
    assert_int_equal(n_alloc - allocs_before, 1);
    pool_put(c, b);       /* naive put frees */
    pool_put(c, held[0]); /* a block got in pooled mode, put in naive mode: freed */
    assert_int_equal(n_free - frees_before, 2);
    /* The trim frees what pooled mode left cached. */
    assert_int_equal(pool_cache_trim(c), 2);
    pool_stats(p, &s);
    assert_int_equal(s.idle, 0);
    check_invariants(p);

    assert_int_equal(pool_set_mode(p, POOL_MODE_POOLED), 0);
    pool_put(c, held[1]); /* got pooled, put pooled after a naive stretch: cached */
    allocs_before = n_alloc;
    b = pool_get(c);
    assert_ptr_equal(b, held[1]);
    assert_int_equal(n_alloc, allocs_before);
    pool_put(c, b);
    check_invariants(p);
    pool_cache_destroy(c);
    pool_destroy(p);
    assert_int_equal(n_alloc, n_free);
}

static void test_free_on_put_frees_instead_of_caching(void **state)
{
    pool_config_t cfg;
    pool_t *p = NULL;
    pool_cache_t *c;
    pool_stats_t s;
    (void)state;

    pool_config_init(&cfg);
    cfg.free_on_put = 1;
    cfg.alloc_fn = count_alloc;
    cfg.free_fn = count_free;
    assert_int_equal(pool_create(&cfg, &p), 0);
    assert_int_equal(pool_cache_create(p, &c), 0);
    for (int i = 0; i < 3; i++) {
        pool_put(c, pool_get(c));
    }
    assert_int_equal(n_free, 3);
    pool_stats(p, &s);
    assert_int_equal(s.gets, 3);
    assert_int_equal(s.misses, 3);
    assert_int_equal(s.released, 3);
    assert_int_equal(s.idle, 0);
    check_invariants(p);
    pool_cache_destroy(c);
    pool_destroy(p);
    assert_int_equal(n_alloc, n_free);
}

static void test_full_cache_spills_batches_another_cache_takes(void **state)
{
    pool_t *p = make_pool(POOL_MODE_POOLED, 100);
    pool_cache_t *a, *b;
    void *blk[300];
    pool_stats_t sa, sb, s;
    (void)state;

    assert_int_equal(pool_cache_create(p, &a), 0);
    assert_int_equal(pool_cache_create(p, &b), 0);
    for (int i = 0; i < 300; i++) {
        blk[i] = pool_get(a);
    }
    for (int i = 0; i < 300; i++) {
        pool_put(a, blk[i]);
    }
    pool_cache_stats(a, &sa);
    assert_true(sa.idle <= 129);
    pool_stats(p, &s);
    assert_int_equal(s.idle, 300);
    /* b finds batches in the depot instead of allocating. */
    size_t allocs = n_alloc;
    for (int i = 0; i < 150; i++) {
        blk[i] = pool_get(b);
    }
    assert_int_equal(n_alloc, allocs);
    pool_cache_stats(b, &sb);
    assert_int_equal(sb.misses, 0);
    assert_int_equal(sb.hits, 150);
    for (int i = 0; i < 150; i++) {
        pool_put(b, blk[i]);
    }
    check_invariants(p);
    pool_stats(p, &s);
    assert_int_equal(s.idle, 300);
    pool_cache_destroy(a);
    pool_cache_destroy(b);
    pool_destroy(p);
    assert_int_equal(n_alloc, n_free);
}

static void test_destroyed_cache_hands_blocks_to_depot_which_drains(void **state)
{
    pool_t *p = make_pool(POOL_MODE_POOLED, 100);
    pool_cache_t *a, *b;
    void *blk[8];
    pool_stats_t s;
    (void)state;

    assert_int_equal(pool_cache_create(p, &a), 0);
    assert_int_equal(pool_cache_create(p, &b), 0);
    for (int i = 0; i < 8; i++) {
        blk[i] = pool_get(a);
    }
    for (int i = 0; i < 8; i++) {
        pool_put(a, blk[i]);
    }
    pool_cache_destroy(a);
    pool_stats(p, &s);
    assert_int_equal(s.gets, 8); /* a's counters survive it */
    assert_int_equal(s.puts, 8);
    assert_int_equal(s.idle, 8);
    size_t allocs = n_alloc;
    for (int i = 0; i < 8; i++) {
        blk[i] = pool_get(b); /* the first get pulls the whole batch from the depot */
    }
    assert_int_equal(n_alloc, allocs);
    for (int i = 0; i < 8; i++) {
        pool_put(b, blk[i]);
    }
    assert_int_equal(pool_cache_trim(b), 0);
    assert_int_equal(pool_cache_trim(b), 8);
    /* Batches left in the depot age with the trims too. */
    assert_int_equal(pool_cache_create(p, &a), 0);
    for (int i = 0; i < 8; i++) {
        blk[i] = pool_get(a);
    }
    for (int i = 0; i < 8; i++) {
        pool_put(a, blk[i]);
    }
    pool_cache_destroy(a);
    assert_int_equal(pool_cache_trim(b), 0);
    assert_int_equal(pool_cache_trim(b), 8);
    pool_stats(p, &s);
    assert_int_equal(s.idle, 0);
    assert_int_equal(s.released, 16);
    check_invariants(p);
    pool_cache_destroy(b);
    pool_destroy(p);
    assert_int_equal(n_alloc, n_free);
}

static void test_stats_invariants_hold_over_mixed_traffic(void **state)
{
    pool_t *p = make_pool(POOL_MODE_POOLED, 100);
    pool_cache_t *c[3];
    void *held[400];
    size_t n_held = 0;
    unsigned seed = 12345;
    pool_stats_t s;
    (void)state;

    for (int i = 0; i < 3; i++) {
        assert_int_equal(pool_cache_create(p, &c[i]), 0);
    }
    for (int step = 0; step < 5000; step++) {
        seed = seed * 1103515245u + 12345u;
        pool_cache_t *cc = c[(seed >> 8) % 3];
        if (((seed >> 16) & 1) && n_held < 400) {
            held[n_held++] = pool_get(cc);
        } else if (n_held > 0) {
            pool_put(cc, held[--n_held]);
        }
        if (step % 997 == 0) {
            pool_cache_trim(cc);
        }
        if (step % 101 == 0) {
            pool_stats(p, &s);
            assert_int_equal(s.gets, s.hits + s.misses);
            assert_int_equal(s.in_use, (int64_t)n_held);
            assert_int_equal(s.idle, (int64_t)(n_alloc - n_free) - 4 - (int64_t)n_held);
        }
    }
    while (n_held > 0) {
        pool_put(c[0], held[--n_held]);
    }
    check_invariants(p);
    for (int i = 0; i < 3; i++) {
        pool_cache_destroy(c[i]);
    }
    pool_stats(p, &s);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.gets, s.puts);
    assert_int_equal(s.misses - s.released, (uint64_t)s.idle);
    pool_destroy(p);
    assert_int_equal(n_alloc, n_free);
}

static void test_failing_allocator_makes_get_return_null_and_count(void **state)
{
    pool_t *p = make_pool(POOL_MODE_POOLED, 100);
    pool_cache_t *c;
    pool_stats_t s;
    pool_config_t cfg;
    pool_t *q = NULL;
    (void)state;

    assert_int_equal(pool_cache_create(p, &c), 0);
    fail_after = 0;
    assert_null(pool_get(c));
    assert_null(pool_get(c));
    pool_stats(p, &s);
    assert_int_equal(s.alloc_failures, 2);
    assert_int_equal(s.gets, 0);
    assert_int_equal(s.in_use, 0);
    pool_cache_t *c2 = NULL;
    assert_int_equal(pool_cache_create(p, &c2), -ENOMEM);
    pool_config_init(&cfg);
    cfg.alloc_fn = count_alloc;
    cfg.free_fn = count_free;
    assert_int_equal(pool_create(&cfg, &q), -ENOMEM);
    fail_after = -1;
    void *b = pool_get(c);
    assert_non_null(b);
    pool_put(c, b);
    check_invariants(p);
    pool_cache_destroy(c);
    pool_destroy(p);
    assert_int_equal(n_alloc, n_free);
}

#ifdef UNDER_ASAN
/* In a child: gets a block, puts it back, then writes to it. Returns how the child ended. */
static int child_writes_after_put(int free_on_put)
{
    pid_t pid = fork();
    int status = 0;

    if (pid == 0) {
        pool_config_t cfg;
        pool_t *p;
        pool_cache_t *c;
        int devnull = open("/dev/null", O_WRONLY);

        dup2(devnull, STDERR_FILENO); /* the child's ASan report is expected */
        pool_config_init(&cfg);
        cfg.free_on_put = free_on_put;
        if (pool_create(&cfg, &p) != 0 || pool_cache_create(p, &c) != 0) {
            _exit(3);
        }
        volatile char *b = pool_get(c);
        pool_put(c, (void *)b);
        b[100] = 1; /* use after put */
        _exit(0);
    }
    waitpid(pid, &status, 0);
    return status;
}
#endif

static void test_asan_catches_a_write_to_a_block_after_put(void **state)
{
    (void)state;
#ifdef UNDER_ASAN
    /* Both ways: poisoned while cached, and freed under free-on-put. */
    int cached = child_writes_after_put(0);
    int after_free = child_writes_after_put(1);
    assert_false(WIFEXITED(cached) && WEXITSTATUS(cached) == 0);
    assert_false(WIFEXITED(cached) && WEXITSTATUS(cached) == 3);
    assert_false(WIFEXITED(after_free) && WEXITSTATUS(after_free) == 0);
    assert_false(WIFEXITED(after_free) && WEXITSTATUS(after_free) == 3);
#else
    skip();
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_config_init_gives_pooled_retain_100_defaults, reset_counts),
        cmocka_unit_test_setup(test_create_rejects_bad_config, reset_counts),
        cmocka_unit_test_setup(test_put_then_get_reuses_block, reset_counts),
        cmocka_unit_test_setup(test_block_put_on_another_cache_is_reused_there, reset_counts),
        cmocka_unit_test_setup(test_trim_releases_only_blocks_idle_for_a_full_interval,
                               reset_counts),
        cmocka_unit_test_setup(test_idle_pool_drains_in_two_trims, reset_counts),
        cmocka_unit_test_setup(test_retain_percent_bounds_idle_blocks_to_share_of_peak,
                               reset_counts),
        cmocka_unit_test_setup(test_retain_off_never_releases, reset_counts),
        cmocka_unit_test_setup(test_naive_mode_allocates_on_get_and_frees_on_put, reset_counts),
        cmocka_unit_test_setup(test_set_mode_switches_both_ways_and_blocks_return_in_either_mode,
                               reset_counts),
        cmocka_unit_test_setup(test_free_on_put_frees_instead_of_caching, reset_counts),
        cmocka_unit_test_setup(test_full_cache_spills_batches_another_cache_takes, reset_counts),
        cmocka_unit_test_setup(test_destroyed_cache_hands_blocks_to_depot_which_drains,
                               reset_counts),
        cmocka_unit_test_setup(test_stats_invariants_hold_over_mixed_traffic, reset_counts),
        cmocka_unit_test_setup(test_failing_allocator_makes_get_return_null_and_count,
                               reset_counts),
        cmocka_unit_test(test_asan_catches_a_write_to_a_block_after_put),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
