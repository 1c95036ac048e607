/* bench.c - pool_bench: pooled blocks vs malloc(4096)/free, jansson parse with malloc/free vs
 * into the per-event arena, and memchr framing as the floor; for glibc and for mimalloc, each
 * in its own child process (mem_init runs once per process). A program, not a test.
 *
 * Usage: pool_bench [--runs R] [--iterations N] [--allocator libc|mimalloc] [--case NAME]
 *   --runs R        measured runs per case, interleaved; medians are printed (default 7)
 *   --iterations N  events per run for the parse cases; get+put, malloc and frame cases run
 *                   50 N operations (default 20000)
 *   --allocator A   run one allocator in this process (no child; for valgrind)
 *   --case NAME     run only getput-pool, getput-malloc, frame, parse-malloc, parse-arena,
 *                   read-naive or read-pooled (a 4096-byte read of 12 events: buffer, framing,
 *                   parse per event; ns and allocations are per event)
 * Under callgrind, --toggle-collect=run_CASE (e.g. run_parse_malloc) counts only the measured
 * loop: divide its instructions by runs x iterations. */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ingest/arena_json.h"
#include "mem/mem.h"
#include "pool/pool.h"

#define N_DISTINCT 400
#define SMALL_OPS_FACTOR 50

typedef struct {
    char *buf; /* NDJSON: N_DISTINCT events, each ending in '\n' */
    size_t len;
    size_t off[N_DISTINCT];
    size_t evlen[N_DISTINCT];
} corpus_t;

typedef enum {
    CASE_GETPUT_POOL,
    CASE_GETPUT_MALLOC,
    CASE_FRAME,
    CASE_PARSE_MALLOC,
    CASE_PARSE_ARENA,
    CASE_READ_NAIVE,
    CASE_READ_POOLED,
    N_CASES
} case_t;

static const char *const case_names[N_CASES] = {
    "getput-pool", "getput-malloc", "frame",       "parse-malloc",
    "parse-arena", "read-naive",    "read-pooled",
};

static const char *const case_funcs[N_CASES] = {
    "run_getput_pool", "run_getput_malloc", "run_frame",       "run_parse_malloc",
    "run_parse_arena", "run_read_naive",    "run_read_pooled",
};

static const char *const case_titles[N_CASES] = {
    "pool_get+pool_put (pooled)",
    "malloc(4096)+free",
    "frame only (memchr)",
    "jansson parse, malloc/free + decref",
    "jansson parse, arena + reset",
    "read+frame+parse, naive (malloc)",
    "read+frame+parse, pooled (arena)",
};

typedef struct {
    corpus_t corpus;
    pool_t *pool;
    pool_cache_t *cache;
    arena_t arena;
    volatile uint64_t sink; /* keeps results observable */
} bench_t;

/* Thread CPU time: on a shared machine, time spent preempted does not count. */
static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t rnd(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* ~320-byte events: 11 fields, a nested object and an array, varied deterministically. */
static void make_corpus(corpus_t *c)
{
    static const char *const types[] = {"click", "view", "purchase", "signup", "logout"};
    static const char *const cities[] = {"Berlin", "Lisbon", "Osaka", "Toronto", "Nairobi"};
    static const char *const countries[] = {"DE", "PT", "JP", "CA", "KE"};
    static const char *const uas[] = {
        "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 Safari/605.1.15",
        "curl/7.88.1",
    };
    uint32_t s = 42;
    size_t cap = N_DISTINCT * 600;

    c->buf = malloc(cap);
    if (c->buf == NULL) {
        fprintf(stderr, "pool_bench: out of memory\n");
        exit(1);
    }
    c->len = 0;
    for (int i = 0; i < N_DISTINCT; i++) {
        char tags[128];
        int ntags = 1 + (int)(rnd(&s) % 4);
        size_t t = 0;
        int k = (int)(rnd(&s) % 5);

        for (int j = 0; j < ntags; j++) {
            t += (size_t)snprintf(tags + t, sizeof(tags) - t, "%s\"tag-%u\"", j ? "," : "",
                                  rnd(&s) % 1000);
        }
        c->off[i] = c->len;
        c->len += (size_t)snprintf(
            c->buf + c->len, cap - c->len,
            "{\"type\":\"%s\",\"ts\":%llu,\"user\":\"user-%06u\",\"session\":\"%08x%08x\","
            "\"page\":\"/products/%u?ref=home\",\"ref\":%s,\"ok\":%s,\"score\":%u.%03u,"
            "\"tags\":[%s],\"geo\":{\"country\":\"%s\",\"city\":\"%s\",\"lat\":%d.%04u,"
            "\"lon\":%d.%04u},\"ua\":\"%s\"}",
            types[rnd(&s) % 5], 1700000000000ull + rnd(&s), rnd(&s) % 1000000, rnd(&s), rnd(&s),
            rnd(&s) % 10000, rnd(&s) % 3 ? "null" : "\"https://example.org/\"",
            rnd(&s) % 2 ? "true" : "false", rnd(&s) % 100, rnd(&s) % 1000, tags, countries[k],
            cities[k], (int)(rnd(&s) % 180) - 90, rnd(&s) % 10000, (int)(rnd(&s) % 360) - 180,
            rnd(&s) % 10000, uas[rnd(&s) % 3]);
        c->evlen[i] = c->len - c->off[i];
        c->buf[c->len++] = '\n';
    }
}

/* The measured loops: noinline and named so callgrind's --toggle-collect can select them. */
__attribute__((noinline)) void run_getput_pool(bench_t *b, size_t n);
__attribute__((noinline)) void run_getput_malloc(bench_t *b, size_t n);
__attribute__((noinline)) void run_frame(bench_t *b, size_t n);
__attribute__((noinline)) void run_parse_malloc(bench_t *b, size_t n);
__attribute__((noinline)) void run_parse_arena(bench_t *b, size_t n);
__attribute__((noinline)) void run_read_naive(bench_t *b, size_t n);
__attribute__((noinline)) void run_read_pooled(bench_t *b, size_t n);

void run_getput_pool(bench_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *blk = pool_get(b->cache);
        blk[0] = (char)i;
        pool_put(b->cache, blk);
    }
}

void run_getput_malloc(bench_t *b, size_t n)
{
    (void)b;
    for (size_t i = 0; i < n; i++) {
        char *blk = mem_malloc(POOL_BLOCK_SIZE);
        blk[0] = (char)i;
        mem_free(blk);
    }
}

/* Counts events by finding each '\n' with memchr, as the server's framer does. */
void run_frame(bench_t *b, size_t n)
{
    const char *buf = b->corpus.buf;
    const char *end = buf + b->corpus.len;
    const char *p = buf;
    uint64_t bytes = 0;

    for (size_t i = 0; i < n; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        bytes += (uint64_t)(nl - p);
        p = nl + 1 < end ? nl + 1 : buf;
    }
    b->sink += bytes;
}

void run_parse_malloc(bench_t *b, size_t n)
{
    json_error_t err;

    for (size_t i = 0; i < n; i++) {
        size_t e = i % N_DISTINCT;
        json_t *doc = json_loadb(b->corpus.buf + b->corpus.off[e], b->corpus.evlen[e], 0, &err);
        b->sink += json_object_size(doc);
        json_decref(doc);
    }
}

void run_parse_arena(bench_t *b, size_t n)
{
    json_error_t err;
    arena_t *prev = arena_json_activate(&b->arena);

    for (size_t i = 0; i < n; i++) {
        size_t e = i % N_DISTINCT;
        json_t *doc = json_loadb(b->corpus.buf + b->corpus.off[e], b->corpus.evlen[e], 0, &err);
        b->sink += json_object_size(doc);
        arena_reset(&b->arena); /* no json_decref: the tree dies with the arena */
    }
    arena_json_activate(prev);
}

#define EVENTS_PER_READ 12

/* Copies the events from first on into a 4096-byte block, as one read would, up to
 * EVENTS_PER_READ of them or as many as fit. Returns the bytes; *count gets the events. */
static size_t fill_read(const bench_t *b, char *blk, size_t first, size_t *count)
{
    size_t len = 0, k = 0;

    for (; k < EVENTS_PER_READ; k++) {
        size_t e = (first + k) % N_DISTINCT;
        if (len + b->corpus.evlen[e] + 1 > POOL_BLOCK_SIZE) {
            break;
        }
        memcpy(blk + len, b->corpus.buf + b->corpus.off[e], b->corpus.evlen[e] + 1);
        len += b->corpus.evlen[e] + 1;
    }
    *count = k;
    return len;
}

/* Frames the block with memchr and parses each line; arena NULL means malloc/free. */
static void parse_read(bench_t *b, const char *blk, size_t len, arena_t *arena)
{
    const char *p = blk, *end = blk + len;
    json_error_t err;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        json_t *doc = json_loadb(p, (size_t)(nl - p), 0, &err);
        b->sink += json_object_size(doc);
        if (arena != NULL) {
            arena_reset(arena);
        } else {
            json_decref(doc);
        }
        p = nl + 1;
    }
}

/* The naive service: a malloc'd 4096-byte buffer per read, jansson on malloc/free. Processes
 * at least n events. */
void run_read_naive(bench_t *b, size_t n)
{
    size_t done = 0, k;

    while (done < n) {
        char *blk = mem_malloc(POOL_BLOCK_SIZE);
        parse_read(b, blk, fill_read(b, blk, done, &k), NULL);
        mem_free(blk);
        done += k;
    }
}

/* The pooled service: a pooled block per read, jansson into the per-event arena. */
void run_read_pooled(bench_t *b, size_t n)
{
    arena_t *prev = arena_json_activate(&b->arena);
    size_t done = 0, k;

    while (done < n) {
        char *blk = pool_get(b->cache);
        parse_read(b, blk, fill_read(b, blk, done, &k), &b->arena);
        pool_put(b->cache, blk);
        done += k;
    }
    arena_json_activate(prev);
}

static size_t case_ops(case_t c, size_t iterations)
{
    return c <= CASE_FRAME ? iterations * SMALL_OPS_FACTOR : iterations;
}

static size_t warmup_ops(case_t c, size_t iterations)
{
    return case_ops(c, iterations / 10 + 1);
}

typedef struct {
    double ns;
    double allocs;
} sample_t;

static sample_t run_case(bench_t *b, case_t c, size_t ops)
{
    mem_stats_t m0, m1;
    uint64_t t0, t1;

    mem_stats(&m0);
    t0 = now_ns();
    switch (c) {
    case CASE_GETPUT_POOL:
        run_getput_pool(b, ops);
        break;
    case CASE_GETPUT_MALLOC:
        run_getput_malloc(b, ops);
        break;
    case CASE_FRAME:
        run_frame(b, ops);
        break;
    case CASE_PARSE_MALLOC:
        run_parse_malloc(b, ops);
        break;
    case CASE_PARSE_ARENA:
        run_parse_arena(b, ops);
        break;
    case CASE_READ_NAIVE:
        run_read_naive(b, ops);
        break;
    case CASE_READ_POOLED:
        run_read_pooled(b, ops);
        break;
    default:
        break;
    }
    t1 = now_ns();
    mem_stats(&m1);
    return (sample_t){(double)(t1 - t0) / (double)ops,
                      (double)(m1.mallocs - m0.mallocs) / (double)ops};
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Runs the cases of one allocator in this process and prints its rows. */
static int bench_allocator(mem_allocator_t which, int runs, size_t iterations, int only)
{
    bench_t b;
    pool_config_t cfg;
    double ns[N_CASES][64], allocs[N_CASES][64];
    double arena_bytes = 0, arena_blocks = 0;
    json_error_t err;

    if (mem_init(which) != 0) {
        printf("%-9s (unavailable: %s)\n", mem_allocator_name(which), mem_last_error());
        return 0;
    }
    arena_json_install(mem_malloc, mem_free);
    memset(&b, 0, sizeof(b));
    make_corpus(&b.corpus);
    pool_config_init(&cfg);
    cfg.free_on_put = 0;
    cfg.alloc_fn = mem_malloc;
    cfg.free_fn = mem_free;
    if (pool_create(&cfg, &b.pool) != 0 || pool_cache_create(b.pool, &b.cache) != 0) {
        fprintf(stderr, "pool_bench: cannot create the pool\n");
        return 1;
    }
    arena_init(&b.arena, b.cache, mem_malloc, mem_free);

    /* Arena footprint per event (not timed). */
    arena_json_activate(&b.arena);
    for (int e = 0; e < N_DISTINCT; e++) {
        if (json_loadb(b.corpus.buf + b.corpus.off[e], b.corpus.evlen[e], 0, &err) == NULL) {
            fprintf(stderr, "pool_bench: event %d: %s\n", e, err.text);
            return 1;
        }
        arena_bytes += (double)b.arena.bytes;
        arena_blocks += (double)b.arena.blocks;
        arena_reset(&b.arena);
    }
    arena_json_activate(NULL);

    /* One warm-up run per case, then interleaved measured runs. */
    for (int c = 0; c < N_CASES; c++) {
        if (only < 0 || only == c) {
            run_case(&b, (case_t)c, warmup_ops((case_t)c, iterations));
        }
    }
    for (int r = 0; r < runs; r++) {
        for (int c = 0; c < N_CASES; c++) {
            if (only < 0 || only == c) {
                sample_t s = run_case(&b, (case_t)c, case_ops((case_t)c, iterations));
                ns[c][r] = s.ns;
                allocs[c][r] = s.allocs;
            }
        }
    }
    double med_ns[N_CASES] = {0}, med_allocs[N_CASES] = {0};
    for (int c = 0; c < N_CASES; c++) {
        if (only >= 0 && only != c) {
            continue;
        }
        med_ns[c] = median(ns[c], runs);
        med_allocs[c] = median(allocs[c], runs);
        printf("%-9s %-38s %10.1f %12.3f\n", mem_allocator_name(which), case_titles[c], med_ns[c],
               med_allocs[c]);
    }
    if (only >= 0) {
        /* For callgrind: every op through the case's run_ function, warm-up included. */
        printf("# %s ops: %zu\n", case_funcs[only],
               warmup_ops((case_t)only, iterations) +
                   (size_t)runs * case_ops((case_t)only, iterations));
    }
    if (only < 0) {
        printf("%-9s %-38s %10.2fx\n", mem_allocator_name(which), "get+put speed-up, pooled",
               med_ns[CASE_GETPUT_MALLOC] / med_ns[CASE_GETPUT_POOL]);
        printf("%-9s %-38s %10.2fx  (arena %.0f B, %.2f blocks per event)\n",
               mem_allocator_name(which), "parse speed-up, arena",
               med_ns[CASE_PARSE_MALLOC] / med_ns[CASE_PARSE_ARENA], arena_bytes / N_DISTINCT,
               arena_blocks / N_DISTINCT);
        printf("%-9s %-38s %10.2fx\n", mem_allocator_name(which),
               "read+frame+parse speed-up, pooled",
               med_ns[CASE_READ_NAIVE] / med_ns[CASE_READ_POOLED]);
    }
    fflush(stdout);
    arena_destroy(&b.arena);
    pool_cache_destroy(b.cache);
    pool_destroy(b.pool);
    free(b.corpus.buf);
    return 0;
}

static int parse_allocator(const char *s, mem_allocator_t *out)
{
    if (strcmp(s, "libc") == 0) {
        *out = MEM_ALLOCATOR_LIBC;
        return 0;
    }
    if (strcmp(s, "mimalloc") == 0) {
        *out = MEM_ALLOCATOR_MIMALLOC;
        return 0;
    }
    return -EINVAL;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: pool_bench [--runs R (1-64)] [--iterations N] "
            "[--allocator libc|mimalloc] [--case "
            "getput-pool|getput-malloc|frame|parse-malloc|parse-arena|read-naive|read-pooled]\n");
}

int main(int argc, char **argv)
{
    int runs = 7, only = -1, one = 0;
    long long iterations = 20000;
    mem_allocator_t which = MEM_ALLOCATOR_LIBC;
    corpus_t probe;
    double mean = 0;

    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--runs") == 0 && v != NULL) {
            runs = atoi(v);
        } else if (strcmp(argv[i], "--iterations") == 0 && v != NULL) {
            iterations = atoll(v);
        } else if (strcmp(argv[i], "--allocator") == 0 && v != NULL) {
            if (parse_allocator(v, &which) != 0) {
                usage();
                return 2;
            }
            one = 1;
        } else if (strcmp(argv[i], "--case") == 0 && v != NULL) {
            for (int c = 0; c < N_CASES; c++) {
                if (strcmp(v, case_names[c]) == 0) {
                    only = c;
                }
            }
            if (only < 0) {
                usage();
                return 2;
            }
        } else {
            usage();
            return 2;
        }
    }
    if (runs < 1 || runs > 64 || iterations < 1) {
        usage();
        return 2;
    }

    make_corpus(&probe);
    for (int e = 0; e < N_DISTINCT; e++) {
        mean += (double)probe.evlen[e];
    }
    free(probe.buf);
    printf("pool_bench: %d distinct events of %.0f bytes on average (11 fields, a nested object, "
           "an array); medians of %d interleaved runs of %lld events (x%d for the first three "
           "rows), thread CPU time\n",
           N_DISTINCT, mean / N_DISTINCT, runs, iterations, SMALL_OPS_FACTOR);
    printf("%-9s %-38s %10s %12s\n", "allocator", "case", "ns/op", "allocs/op");
    fflush(stdout);
    if (one) {
        return bench_allocator(which, runs, (size_t)iterations, only);
    }
    /* mem_init may run once per process: each allocator gets a fresh child. */
    const mem_allocator_t all[] = {MEM_ALLOCATOR_LIBC, MEM_ALLOCATOR_MIMALLOC};
    for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++) {
        int status;
        pid_t pid = fork();
        if (pid < 0) {
            perror("pool_bench: fork");
            return 1;
        }
        if (pid == 0) {
            _exit(bench_allocator(all[k], runs, (size_t)iterations, only));
        }
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "pool_bench: %s run failed\n", mem_allocator_name(all[k]));
            return 1;
        }
    }
    return 0;
}
