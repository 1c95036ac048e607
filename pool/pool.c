/* pool.c - fixed 4096-byte blocks: per-thread caches (no lock, no atomic RMW), a mutex-guarded
 * depot that moves whole batches between caches, and victim-cache trimming. */
#include "pool/pool.h"

#include "base/counter.h"
#include "base/list.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__SANITIZE_ADDRESS__)
#define POOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_ASAN 1
#endif
#endif
#ifdef POOL_ASAN
#include <sanitizer/asan_interface.h>
#endif

/* A cache pushes a batch of its coldest blocks to the depot when it holds more than
 * CACHE_HIGH blocks in its primary list; an empty cache pulls one batch before allocating. */
#define CACHE_HIGH 128
#define CACHE_BATCH 64

/* While a block is idle its first bytes hold the links below; the rest is poisoned under ASan
 * so a caller touching a block after putting it is caught even in pooled mode. */
typedef struct idle_block {
    struct idle_block *next;       /* next block in the same list or batch */
    struct idle_block *next_batch; /* depot only: next batch (valid in a batch's first block) */
    size_t batch_n;                /* depot only: blocks in this batch */
} idle_block_t;

#define IDLE_HDR sizeof(idle_block_t)

/* Counters written only by the owner thread with relaxed load + store (no RMW) and read by
 * any thread with relaxed loads: race-free for TSan, no lock prefix on the hot path. */
typedef struct {
    _Atomic uint64_t gets, hits, misses, puts, released, trims, alloc_failures;
    _Atomic int64_t in_use, idle, peak_in_use;
    _Atomic uint64_t trim_ns_total, trim_ns_last;
} cache_counters_t;

struct pool_cache {
    pool_t *pool;
    /* Owner thread only. primary: blocks put since the last trim (LIFO); victim: blocks that
     * were idle at the last trim and not taken since. */
    idle_block_t *primary;
    size_t primary_n;
    idle_block_t *victim;
    size_t victim_n;
    /* Registry links, guarded by pool->reg_lock. */
    base_link_t link;
    cache_counters_t ctr;
};

struct pool {
    _Atomic int mode; /* pool_mode_t; pool_set_mode changes it at any time (relaxed) */
    bool free_on_put;
    _Atomic int retain_percent;
    void *(*alloc_fn)(size_t);
    void (*free_fn)(void *);

    /* Shared depot, guarded by depot_lock: lists of batches. cur holds batches pushed since the
     * depot last aged, old those that were already there then; old is released at the next
     * aging, so an idle depot drains in two trim epochs. */
    pthread_mutex_t depot_lock;
    idle_block_t *depot_cur, *depot_old;
    size_t depot_cur_n, depot_old_n;
    uint64_t depot_epoch; /* highest cache trim count that aged the depot */

    /* Registry of live caches and the summed counters of destroyed ones, guarded by
     * reg_lock (never taken on the hot path). */
    pthread_mutex_t reg_lock;
    base_list_t caches;
    pool_stats_t dead;
};

static inline uint64_t ld(_Atomic uint64_t *x)
{
    return atomic_load_explicit(x, memory_order_relaxed);
}

static inline int64_t ld_s(_Atomic int64_t *x)
{
    return atomic_load_explicit(x, memory_order_relaxed);
}

static inline void set_s(_Atomic int64_t *x, int64_t v)
{
    atomic_store_explicit(x, v, memory_order_relaxed);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *default_alloc(size_t n)
{
    return malloc(n);
}

static void default_free(void *ptr)
{
    free(ptr);
}

/* Under ASan an idle block keeps only its link header addressable. */
static inline void block_make_idle(void *b)
{
#ifdef POOL_ASAN
    ASAN_POISON_MEMORY_REGION((char *)b + IDLE_HDR, POOL_BLOCK_SIZE - IDLE_HDR);
#else
    (void)b;
#endif
}

static inline void block_make_live(void *b)
{
#ifdef POOL_ASAN
    ASAN_UNPOISON_MEMORY_REGION(b, POOL_BLOCK_SIZE);
#else
    (void)b;
#endif
}

static void block_free(pool_t *p, void *b)
{
    block_make_live(b);
    p->free_fn(b);
}

/* Frees a plain list of blocks; returns how many. */
static size_t free_list(pool_t *p, idle_block_t *b)
{
    size_t n = 0;
    while (b != NULL) {
        idle_block_t *next = b->next;
        block_free(p, b);
        b = next;
        n++;
    }
    return n;
}

/* Frees a list of batches; returns how many blocks. */
static size_t free_batches(pool_t *p, idle_block_t *batch)
{
    size_t n = 0;
    while (batch != NULL) {
        idle_block_t *next_batch = batch->next_batch;
        n += free_list(p, batch);
        batch = next_batch;
    }
    return n;
}

void pool_config_init(pool_config_t *cfg)
{
    const char *env = getenv("INGESTD_POOL_FREE_ON_PUT");

    memset(cfg, 0, sizeof(*cfg));
    cfg->mode = POOL_MODE_POOLED;
    cfg->retain_percent = 100;
    /* The asan test preset sets this so every pool in the run frees on put (h2o's trick). */
    cfg->free_on_put = env != NULL && strcmp(env, "1") == 0;
    cfg->alloc_fn = NULL;
    cfg->free_fn = NULL;
}

int pool_create(const pool_config_t *cfg, pool_t **out)
{
    pool_t *p;
    void *(*alloc_fn)(size_t);

    if (cfg == NULL || out == NULL) {
        return -EINVAL;
    }
    if (cfg->mode != POOL_MODE_POOLED && cfg->mode != POOL_MODE_NAIVE) {
        return -EINVAL;
    }
    if (cfg->retain_percent < 0 && cfg->retain_percent != POOL_RETAIN_OFF) {
        return -EINVAL;
    }
    if ((cfg->alloc_fn == NULL) != (cfg->free_fn == NULL)) {
        return -EINVAL;
    }
    alloc_fn = cfg->alloc_fn != NULL ? cfg->alloc_fn : default_alloc;
    p = alloc_fn(sizeof(*p));
    if (p == NULL) {
        return -ENOMEM;
    }
    memset(p, 0, sizeof(*p));
    atomic_init(&p->mode, (int)cfg->mode);
    p->free_on_put = cfg->free_on_put != 0;
    atomic_init(&p->retain_percent, cfg->retain_percent);
    p->alloc_fn = alloc_fn;
    p->free_fn = cfg->free_fn != NULL ? cfg->free_fn : default_free;
    if (pthread_mutex_init(&p->depot_lock, NULL) != 0) {
        goto fail;
    }
    if (pthread_mutex_init(&p->reg_lock, NULL) != 0) {
        pthread_mutex_destroy(&p->depot_lock);
        goto fail;
    }
    *out = p;
    return 0;
fail:
    p->free_fn(p);
    return -ENOMEM;
}

void pool_destroy(pool_t *p)
{
    if (p == NULL) {
        return;
    }
    assert(p->caches.head == NULL && "every cache must be destroyed before its pool");
    free_batches(p, p->depot_cur);
    free_batches(p, p->depot_old);
    pthread_mutex_destroy(&p->depot_lock);
    pthread_mutex_destroy(&p->reg_lock);
    p->free_fn(p);
}

int pool_cache_create(pool_t *p, pool_cache_t **out)
{
    pool_cache_t *c = p->alloc_fn(sizeof(*c));

    if (c == NULL) {
        return -ENOMEM;
    }
    memset(c, 0, sizeof(*c));
    c->pool = p;
    pthread_mutex_lock(&p->reg_lock);
    base_list_push_front(&p->caches, &c->link);
    pthread_mutex_unlock(&p->reg_lock);
    *out = c;
    return 0;
}

/* Pushes a plain list of n blocks to the depot as one batch. */
static void depot_push(pool_t *p, idle_block_t *first, size_t n)
{
    first->batch_n = n;
    pthread_mutex_lock(&p->depot_lock);
    first->next_batch = p->depot_cur;
    p->depot_cur = first;
    p->depot_cur_n += n;
    pthread_mutex_unlock(&p->depot_lock);
}

/* Pops one batch (newest first, then the aged ones); returns its first block or NULL. */
static idle_block_t *depot_pull(pool_t *p, size_t *n)
{
    idle_block_t *b = NULL;

    pthread_mutex_lock(&p->depot_lock);
    if (p->depot_cur != NULL) {
        b = p->depot_cur;
        p->depot_cur = b->next_batch;
        p->depot_cur_n -= b->batch_n;
    } else if (p->depot_old != NULL) {
        b = p->depot_old;
        p->depot_old = b->next_batch;
        p->depot_old_n -= b->batch_n;
    }
    pthread_mutex_unlock(&p->depot_lock);
    if (b != NULL) {
        *n = b->batch_n;
    }
    return b;
}

void pool_cache_destroy(pool_cache_t *c)
{
    pool_t *p;
    pool_stats_t s;

    if (c == NULL) {
        return;
    }
    p = c->pool;
    if (c->primary != NULL) {
        depot_push(p, c->primary, c->primary_n);
    }
    if (c->victim != NULL) {
        depot_push(p, c->victim, c->victim_n);
    }
    set_s(&c->ctr.idle, 0);
    pool_cache_stats(c, &s);
    pthread_mutex_lock(&p->reg_lock);
    base_list_unlink(&p->caches, &c->link);
    p->dead.gets += s.gets;
    p->dead.hits += s.hits;
    p->dead.misses += s.misses;
    p->dead.puts += s.puts;
    p->dead.released += s.released;
    p->dead.trims += s.trims;
    p->dead.alloc_failures += s.alloc_failures;
    p->dead.in_use += s.in_use;
    p->dead.trim_ns_total += s.trim_ns_total;
    pthread_mutex_unlock(&p->reg_lock);
    p->free_fn(c);
}

static void *get_fresh(pool_cache_t *c)
{
    void *b = c->pool->alloc_fn(POOL_BLOCK_SIZE);

    if (b == NULL) {
        base_counter_add(&c->ctr.alloc_failures, 1);
        return NULL;
    }
    base_counter_add(&c->ctr.misses, 1);
    return b;
}

void *pool_get(pool_cache_t *c)
{
    idle_block_t *b;
    int64_t in_use;

    if (pool_mode(c->pool) == POOL_MODE_NAIVE) {
        b = get_fresh(c);
        if (b == NULL) {
            return NULL;
        }
    } else if (c->primary != NULL) {
        b = c->primary;
        c->primary = b->next;
        c->primary_n--;
        base_counter_add(&c->ctr.hits, 1);
        base_gauge_add(&c->ctr.idle, -1);
    } else if (c->victim != NULL) {
        b = c->victim;
        c->victim = b->next;
        c->victim_n--;
        base_counter_add(&c->ctr.hits, 1);
        base_gauge_add(&c->ctr.idle, -1);
    } else {
        size_t n = 0;
        b = depot_pull(c->pool, &n);
        if (b != NULL) {
            c->primary = b->next;
            c->primary_n = n - 1;
            base_counter_add(&c->ctr.hits, 1);
            base_gauge_add(&c->ctr.idle, (int64_t)n - 1);
        } else {
            b = get_fresh(c);
            if (b == NULL) {
                return NULL;
            }
        }
    }
    block_make_live(b);
    base_counter_add(&c->ctr.gets, 1);
    in_use = ld_s(&c->ctr.in_use) + 1;
    set_s(&c->ctr.in_use, in_use);
    if (in_use > ld_s(&c->ctr.peak_in_use)) {
        set_s(&c->ctr.peak_in_use, in_use);
    }
    return b;
}

/* Gives the coldest CACHE_BATCH blocks of the primary list (its tail) to the depot. */
static void spill_to_depot(pool_cache_t *c)
{
    idle_block_t *keep_tail = c->primary;
    idle_block_t *batch;

    for (size_t i = 1; i < c->primary_n - CACHE_BATCH; i++) {
        keep_tail = keep_tail->next;
    }
    batch = keep_tail->next;
    keep_tail->next = NULL;
    c->primary_n -= CACHE_BATCH;
    base_gauge_add(&c->ctr.idle, -CACHE_BATCH);
    depot_push(c->pool, batch, CACHE_BATCH);
}

void pool_put(pool_cache_t *c, void *block)
{
    idle_block_t *b = block;

    if (b == NULL) {
        return;
    }
    base_counter_add(&c->ctr.puts, 1);
    base_gauge_add(&c->ctr.in_use, -1);
    if (pool_mode(c->pool) == POOL_MODE_NAIVE || c->pool->free_on_put) {
        c->pool->free_fn(b);
        base_counter_add(&c->ctr.released, 1);
        return;
    }
    b->next = c->primary;
    block_make_idle(b);
    c->primary = b;
    c->primary_n++;
    base_gauge_add(&c->ctr.idle, 1);
    if (c->primary_n > CACHE_HIGH) {
        spill_to_depot(c);
    }
}

/* Releases the blocks of the list *head beyond its first keep; returns how many. */
static size_t release_beyond(pool_t *p, idle_block_t **head, size_t *n, size_t keep)
{
    idle_block_t **link = head;
    size_t released;

    if (*n <= keep) {
        return 0;
    }
    for (size_t i = 0; i < keep; i++) {
        link = &(*link)->next;
    }
    released = free_list(p, *link);
    *link = NULL;
    *n = keep;
    return released;
}

/* Ages the depot once per trim epoch (the highest trim count any cache has reached), so
 * several caches trimming in the same interval age it once. Returns blocks released. */
static size_t depot_age(pool_t *p, uint64_t epoch)
{
    idle_block_t *old = NULL;

    pthread_mutex_lock(&p->depot_lock);
    if (epoch > p->depot_epoch) {
        p->depot_epoch = epoch;
        old = p->depot_old;
        p->depot_old = p->depot_cur;
        p->depot_old_n = p->depot_cur_n;
        p->depot_cur = NULL;
        p->depot_cur_n = 0;
    }
    pthread_mutex_unlock(&p->depot_lock);
    return free_batches(p, old);
}

size_t pool_cache_trim(pool_cache_t *c)
{
    pool_t *p = c->pool;
    uint64_t t0 = now_ns();
    uint64_t trims = ld(&c->ctr.trims) + 1;
    int retain = pool_retain(p);
    size_t released = 0;

    pool_mode_t mode = pool_mode(p);
    /* Any negative retain (POOL_RETAIN_OFF or a bad pool_set_retain value) releases nothing. */
    if (mode == POOL_MODE_NAIVE && (c->primary != NULL || c->victim != NULL)) {
        /* Switched to naive with blocks still cached: naive mode keeps none idle. */
        released += free_list(p, c->victim);
        released += free_list(p, c->primary);
        c->victim = c->primary = NULL;
        c->victim_n = c->primary_n = 0;
        set_s(&c->ctr.idle, 0);
        released += depot_age(p, trims);
    } else if (mode == POOL_MODE_POOLED && retain >= 0) {
        int64_t peak = ld_s(&c->ctr.peak_in_use);
        size_t cap = peak > 0 ? (size_t)peak * (size_t)retain / 100 : 0;

        /* Victim-cache step: what was idle at the last trim and is still here was idle for
         * the whole interval; what was put since becomes the next victim. */
        released += free_list(p, c->victim);
        c->victim = c->primary;
        c->victim_n = c->primary_n;
        c->primary = NULL;
        c->primary_n = 0;
        released += release_beyond(p, &c->victim, &c->victim_n, cap);
        set_s(&c->ctr.idle, (int64_t)c->victim_n);
        released += depot_age(p, trims);
    }
    set_s(&c->ctr.peak_in_use, ld_s(&c->ctr.in_use));
    base_counter_add(&c->ctr.released, released);
    base_counter_add(&c->ctr.trims, 1);
    uint64_t dt = now_ns() - t0;
    base_counter_add(&c->ctr.trim_ns_total, dt);
    atomic_store_explicit(&c->ctr.trim_ns_last, dt, memory_order_relaxed);
    return released;
}

void pool_set_retain(pool_t *p, int retain_percent)
{
    atomic_store_explicit(&p->retain_percent, retain_percent, memory_order_relaxed);
}

int pool_retain(const pool_t *p)
{
    return atomic_load_explicit(&((pool_t *)p)->retain_percent, memory_order_relaxed);
}

pool_mode_t pool_mode(const pool_t *p)
{
    return (pool_mode_t)atomic_load_explicit(&((pool_t *)p)->mode, memory_order_relaxed);
}

int pool_set_mode(pool_t *p, pool_mode_t mode)
{
    if (mode != POOL_MODE_POOLED && mode != POOL_MODE_NAIVE) {
        return -EINVAL;
    }
    atomic_store_explicit(&p->mode, (int)mode, memory_order_relaxed);
    return 0;
}

void pool_cache_stats(const pool_cache_t *c, pool_stats_t *out)
{
    cache_counters_t *k = &((pool_cache_t *)c)->ctr;

    out->gets = ld(&k->gets);
    out->hits = ld(&k->hits);
    out->misses = ld(&k->misses);
    out->puts = ld(&k->puts);
    out->released = ld(&k->released);
    out->trims = ld(&k->trims);
    out->alloc_failures = ld(&k->alloc_failures);
    out->in_use = ld_s(&k->in_use);
    out->idle = ld_s(&k->idle);
    out->peak_in_use = ld_s(&k->peak_in_use);
    out->trim_ns_total = ld(&k->trim_ns_total);
    out->trim_ns_last = ld(&k->trim_ns_last);
}

void pool_stats(pool_t *p, pool_stats_t *out)
{
    pool_stats_t s;

    pthread_mutex_lock(&p->reg_lock);
    *out = p->dead;
    for (base_link_t *l = p->caches.head; l != NULL; l = l->next) {
        pool_cache_t *c = BASE_CONTAINER(l, pool_cache_t, link);
        pool_cache_stats(c, &s);
        out->gets += s.gets;
        out->hits += s.hits;
        out->misses += s.misses;
        out->puts += s.puts;
        out->released += s.released;
        out->trims += s.trims;
        out->alloc_failures += s.alloc_failures;
        out->in_use += s.in_use;
        out->idle += s.idle;
        out->peak_in_use += s.peak_in_use;
        out->trim_ns_total += s.trim_ns_total;
        if (s.trim_ns_last > out->trim_ns_last) {
            out->trim_ns_last = s.trim_ns_last;
        }
    }
    pthread_mutex_unlock(&p->reg_lock);
    pthread_mutex_lock(&p->depot_lock);
    out->idle += (int64_t)(p->depot_cur_n + p->depot_old_n);
    pthread_mutex_unlock(&p->depot_lock);
}
