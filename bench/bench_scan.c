/* bench_scan.c - scan_bench: the scanner against jansson's tree on the loadgen corpus shapes,
 * per event and per byte, medians of interleaved runs. A program, not a test.
 *
 * Usage: scan_bench [--runs R] [--passes P] [--events N] [--case NAME]
 *   --runs R    measured runs per case, interleaved across cases; medians printed (default 7)
 *   --passes P  passes over the corpus per run (default 20)
 *   --events N  distinct events per corpus (default 4096, loadgen's default)
 *   --case NAME only this case: scan, scan-portable, tree-malloc, tree-arena
 *   --corpus C  only this corpus: small or mixed
 * Corpora: loadgen's generator (loadgen/corpus.c), seed 1: "small" (mix 100/0/0, ~320 B) and
 * "mixed" (loadgen's default 90/9/1: ~320 B, ~1.5 KB, 5-8 KB). The tree cases parse with
 * JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL and look up "type", as the tree
 * strategy does; tree-arena allocates from a per-event arena over pooled blocks
 * (arena_json_activate) and resets it after each event, tree-malloc uses plain malloc/free.
 * Time is the thread's CPU time (CLOCK_THREAD_CPUTIME_ID). Under callgrind,
 * --toggle-collect=run_CASE (run_scan, run_scan_portable, run_tree_malloc, run_tree_arena)
 * counts only the measured loops, the warm-up pass included: divide by events x (passes + 1). */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingest/arena_json.h"
#include "ingest/scan.h"
#include "ingest/scan_internal.h"
#include "lg_corpus.h"
#include "pool/pool.h"

#define MAX_RUNS 64
#define FLAGS (JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL)

typedef struct {
    lg_corpus_t corpus;
    arena_t arena;
    uint64_t sink; /* folds every result in, so no call can be optimised away */
} bench_t;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The measured loops: noinline and named so callgrind's --toggle-collect can select them. */
__attribute__((noinline)) void run_scan(bench_t *b, unsigned passes);
__attribute__((noinline)) void run_scan_portable(bench_t *b, unsigned passes);
__attribute__((noinline)) void run_tree_malloc(bench_t *b, unsigned passes);
__attribute__((noinline)) void run_tree_arena(bench_t *b, unsigned passes);

void run_scan(bench_t *b, unsigned passes)
{
    const lg_corpus_t *c = &b->corpus;
    ing_scan_result_t r;
    for (unsigned k = 0; k < passes; k++) {
        for (size_t i = 0; i < c->count; i++) {
            const char *line = c->data + c->offsets[i];
            size_t len = c->offsets[i + 1] - c->offsets[i] - 1;
            ing_verdict_t v = ing_scan_line(line, len, &r);
            b->sink += v == ING_ACCEPTED ? r.type_len : v;
        }
    }
}

void run_scan_portable(bench_t *b, unsigned passes)
{
    const lg_corpus_t *c = &b->corpus;
    ing_scan_result_t r;
    for (unsigned k = 0; k < passes; k++) {
        for (size_t i = 0; i < c->count; i++) {
            const char *line = c->data + c->offsets[i];
            size_t len = c->offsets[i + 1] - c->offsets[i] - 1;
            ing_verdict_t v = ing_scan_line_path(line, len, &r, ING_SCAN_PATH_PORTABLE);
            b->sink += v == ING_ACCEPTED ? r.type_len : v;
        }
    }
}

static uint64_t tree_one(const char *line, size_t len)
{
    json_t *root = json_loadb(line, len, FLAGS, NULL);
    json_t *type = json_object_get(root, "type");
    uint64_t n = json_is_string(type) ? json_string_length(type) : 1000;
    return root == NULL ? 2000 : n;
}

void run_tree_malloc(bench_t *b, unsigned passes)
{
    const lg_corpus_t *c = &b->corpus;
    for (unsigned k = 0; k < passes; k++) {
        for (size_t i = 0; i < c->count; i++) {
            const char *line = c->data + c->offsets[i];
            size_t len = c->offsets[i + 1] - c->offsets[i] - 1;
            json_t *root = json_loadb(line, len, FLAGS, NULL);
            json_t *type = json_object_get(root, "type");
            b->sink += json_is_string(type) ? json_string_length(type) : 1000;
            json_decref(root);
        }
    }
}

void run_tree_arena(bench_t *b, unsigned passes)
{
    const lg_corpus_t *c = &b->corpus;
    arena_json_activate(&b->arena);
    for (unsigned k = 0; k < passes; k++) {
        for (size_t i = 0; i < c->count; i++) {
            const char *line = c->data + c->offsets[i];
            size_t len = c->offsets[i + 1] - c->offsets[i] - 1;
            b->sink += tree_one(line, len);
            arena_reset(&b->arena);
        }
    }
    arena_json_activate(NULL);
}

typedef void (*run_fn)(bench_t *b, unsigned passes);

static const struct {
    const char *name;
    run_fn fn;
} cases[] = {
    {"scan", run_scan},
    {"scan-portable", run_scan_portable},
    {"tree-malloc", run_tree_malloc},
    {"tree-arena", run_tree_arena},
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int corpus_make(lg_corpus_t *c, size_t events, unsigned small, unsigned medium,
                       unsigned large)
{
    lg_corpus_config_t cfg;
    lg_corpus_config_default(&cfg);
    cfg.events = events;
    cfg.small_pct = small;
    cfg.medium_pct = medium;
    cfg.large_pct = large;
    return lg_corpus_generate(&cfg, c);
}

int main(int argc, char **argv)
{
    unsigned runs = 7, passes = 20;
    size_t events = 4096;
    const char *only = NULL, *corpus = NULL;

    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--runs") == 0) {
            runs = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (i + 1 < argc && strcmp(argv[i], "--passes") == 0) {
            passes = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (i + 1 < argc && strcmp(argv[i], "--events") == 0) {
            events = strtoul(argv[++i], NULL, 10);
        } else if (i + 1 < argc && strcmp(argv[i], "--corpus") == 0) {
            corpus = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--case") == 0) {
            only = argv[++i];
        } else {
            fprintf(stderr, "usage: scan_bench [--runs R] [--passes P] [--events N] [--case "
                            "scan|scan-portable|tree-malloc|tree-arena] [--corpus small|mixed]\n");
            return 2;
        }
    }
    if (runs == 0 || runs > MAX_RUNS || passes == 0 || events == 0) {
        fprintf(stderr, "scan_bench: runs must be 1..%d, passes and events at least 1\n", MAX_RUNS);
        return 2;
    }

    pool_config_t pcfg;
    pool_t *pool;
    pool_cache_t *cache;
    pool_config_init(&pcfg);
    if (pool_create(&pcfg, &pool) != 0 || pool_cache_create(pool, &cache) != 0) {
        fprintf(stderr, "scan_bench: pool_create failed\n");
        return 1;
    }
    arena_json_install(NULL, NULL);

    static const struct {
        const char *name;
        unsigned small, medium, large;
    } shapes[] = {{"small", 100, 0, 0}, {"mixed", 90, 9, 1}};

    printf("%-6s %-14s %10s %10s   (%zu events x %u passes, %u runs, medians)\n", "corpus", "case",
           "ns/event", "bytes/ns", events, passes, runs);
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        if (corpus != NULL && strcmp(corpus, shapes[s].name) != 0) {
            continue;
        }
        bench_t b = {0};
        if (corpus_make(&b.corpus, events, shapes[s].small, shapes[s].medium, shapes[s].large)) {
            fprintf(stderr, "scan_bench: corpus: %s\n", strerror(ENOMEM));
            return 1;
        }
        arena_init(&b.arena, cache, NULL, NULL);
        size_t bytes = b.corpus.size - b.corpus.count; /* without the newlines */
        uint64_t ns[N_CASES][MAX_RUNS];
        for (size_t k = 0; k < N_CASES; k++) { /* warm-up */
            if (only == NULL || strcmp(only, cases[k].name) == 0) {
                cases[k].fn(&b, 1);
            }
        }
        for (unsigned r = 0; r < runs; r++) {
            for (size_t k = 0; k < N_CASES; k++) {
                if (only != NULL && strcmp(only, cases[k].name) != 0) {
                    continue;
                }
                uint64_t t0 = now_ns();
                cases[k].fn(&b, passes);
                ns[k][r] = now_ns() - t0;
            }
        }
        double per_event[N_CASES] = {0};
        for (size_t k = 0; k < N_CASES; k++) {
            if (only != NULL && strcmp(only, cases[k].name) != 0) {
                continue;
            }
            qsort(ns[k], runs, sizeof(uint64_t), cmp_u64);
            double med = (double)ns[k][runs / 2];
            per_event[k] = med / ((double)b.corpus.count * passes);
            printf("%-6s %-14s %10.1f %10.3f\n", shapes[s].name, cases[k].name, per_event[k],
                   (double)bytes * passes / med);
        }
        if (only == NULL) {
            printf("%-6s scan/tree-arena %.3f, scan-portable/tree-arena %.3f, "
                   "tree-arena/tree-malloc %.3f (%zu events, %.0f bytes/event)\n",
                   shapes[s].name, per_event[0] / per_event[3], per_event[1] / per_event[3],
                   per_event[3] / per_event[2], b.corpus.count,
                   (double)bytes / (double)b.corpus.count);
        }
        arena_destroy(&b.arena);
        lg_corpus_free(&b.corpus);
        fprintf(stderr, "(checksum %llu)\n", (unsigned long long)b.sink);
    }
    pool_cache_destroy(cache);
    pool_destroy(pool);
    return 0;
}
