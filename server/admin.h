/* admin.h - the admin endpoints' transport-free parts: routing, GET /debug/vars from gathered
 * counters, GET and PUT /debug/config for the live levers (parsing and validation), and the
 * /debug/allocs query. The control thread gathers data, calls these, and sends what they write. */
#ifndef INGESTD_ADMIN_H
#define INGESTD_ADMIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ingest/types.h"
#include "ingest/verdict.h"
#include "mem/allocprof.h"
#include "pool/pool.h"

/* ---- routing ---- */

typedef enum {
    SRV_ADMIN_VARS = 0,       /* GET /debug/vars */
    SRV_ADMIN_POOL = 1,       /* GET /debug/pool */
    SRV_ADMIN_HEAP = 2,       /* GET /debug/heap */
    SRV_ADMIN_ALLOCS = 3,     /* GET /debug/allocs?sort=..&format=..&top=.. */
    SRV_ADMIN_TRIM = 4,       /* POST /debug/trim */
    SRV_ADMIN_CONFIG_GET = 5, /* GET /debug/config */
    SRV_ADMIN_CONFIG_PUT = 6, /* PUT /debug/config */
} srv_admin_endpoint_t;

/* Finds the endpoint for method and path (the path without its "?query"; HEAD counts as GET).
 * Returns 200 with *out set; 404 for an unknown path; 405 for a known path with another method,
 * with *allow set to the Allow header value (static). */
int srv_admin_route(const char *method, const char *path, srv_admin_endpoint_t *out,
                    const char **allow);

/* ---- GET /debug/vars ---- */

typedef ing_type_count_t srv_vars_type_t; /* type (borrowed), count */

/* The live levers: what /debug/config reads and changes without a restart. */
typedef struct {
    int pool;                  /* 1 pooled, 0 naive */
    int parse;                 /* srv_parse_t: scan or tree */
    int pool_retain;           /* percent 0..SRV_LEVER_RETAIN_MAX, or -1 (POOL_RETAIN_OFF) */
    uint64_t trim_interval_ms; /* 0: off */
    uint64_t memory_limit;     /* bytes, 0: off */
} srv_levers_t;

#define SRV_LEVER_RETAIN_MAX 10000
#define SRV_LEVER_TRIM_MAX_MS (24ull * 3600 * 1000)

/* Every counter and gauge, gathered (summed over workers) by the control thread. */
typedef struct {
    const char *version;   /* borrowed */
    const char *allocator; /* "libc" or "mimalloc", borrowed */
    unsigned workers;
    double uptime_seconds;
    uint64_t events_accepted;
    uint64_t events_rejected[ING_VERDICT_COUNT]; /* index: ing_verdict_t ([0] unused) */
    const srv_vars_type_t *types; /* borrowed; ntypes entries, "_other" included by the caller */
    size_t ntypes;
    uint64_t bytes_received_tcp;
    uint64_t bytes_received_http;
    uint64_t connections_active;
    uint64_t connections_total;
    uint64_t connections_refused;
    uint64_t mem_alloc_bytes; /* live */
    uint64_t mem_alloc_bytes_total;
    uint64_t mem_mallocs;
    uint64_t mem_frees;
    uint64_t mem_sys_bytes;
    uint64_t rss_bytes;
    uint64_t pool_gets;
    uint64_t pool_misses;
    uint64_t pool_released;
    uint64_t pool_trims;
    uint64_t pool_oversize;
    uint64_t pool_blocks_in_use;
    uint64_t pool_blocks_idle;
    uint64_t admin_requests;
    uint64_t admin_denied;
    srv_levers_t levers;
    allocprof_stats_t allocprof;
} srv_vars_t;

/* Writes one JSON object (expvar-like; keys below are stable, new keys may be added):
 *   {"version","allocator","workers","uptime_seconds",
 *    "events":{"accepted","rejected":{"parse",..},"by_type":{TYPE:N,..}},
 *    "bytes_received":{"tcp","http"}, "connections":{"active","total","refused"},
 *    "memstats":{"alloc_bytes","alloc_bytes_total","mallocs","frees","sys_bytes","rss_bytes"},
 *    "pool":{"gets","misses","released","trims","oversize","blocks_in_use","blocks_idle"},
 *    "admin":{"requests","denied"}, "config":{as GET /debug/config},
 *    "allocprof":{"rate","samples","live","sites","dropped"}}
 * followed by a newline. Strings are JSON-escaped. Returns 0, or -EIO when a write failed. */
int srv_admin_write_vars(FILE *out, const srv_vars_t *v);

/* ---- GET and PUT /debug/config ---- */

/* Writes {"pool":"on","parse":"scan","pool-retain":"100","trim-interval":"30s",
 * "memory-limit":"off"} and a
 * newline: each value a string in its flag's syntax, so the body can be PUT back unchanged.
 * Returns 0 or -EIO. */
int srv_admin_write_config(FILE *out, const srv_levers_t *l);

/* Bits of *changed: which levers a PUT set to a new value. */
#define SRV_LEVER_POOL 1u
#define SRV_LEVER_RETAIN 2u
#define SRV_LEVER_TRIM 4u
#define SRV_LEVER_LIMIT 8u
#define SRV_LEVER_PARSE 16u

/* Parses a PUT /debug/config body: a JSON object with any of the keys
 *   "pool"           true|false|"on"|"off"
 *   "parse"          "scan"|"tree"
 *   "pool-retain"    0..10000 or "PERCENT" or "off"
 *   "trim-interval"  "DURATION" (ms, s, m, h; 1ms..24h) or "off"
 *   "memory-limit"   BYTES as a number or "BYTES" (K, KiB, M, MiB, G, GiB, T, TiB) or "off"
 * and applies them over *cur into *next, all or nothing. Returns 200, with *next the new levers
 * and *changed the bits of levers whose value differs; or 400 with one line in err (at least 160
 * bytes: the key, the value and what is allowed), *next and *changed untouched. Invalid JSON,
 * a non-object, duplicate or unknown keys, wrong types and out-of-range values are all 400. */
int srv_admin_config_put(const char *body, size_t len, const srv_levers_t *cur, srv_levers_t *next,
                         unsigned *changed, char *err, size_t errsz);

/* Writes {"error":"MSG"} and a newline (MSG JSON-escaped). Returns 0 or -EIO. */
int srv_admin_write_error(FILE *out, const char *msg);

/* ---- GET /debug/pool ---- */

/* Writes {"pool":"on","retain":"100","total":{STATS},"workers":[{"worker":0,STATS},...]} and a
 * newline, STATS being "gets","hits","misses","puts","released","trims","alloc_failures",
 * "in_use","idle","peak_in_use" (integers; in_use and idle may be negative for one worker, see
 * pool.h) and "trim_seconds_total","trim_seconds_last". workers: n per-worker figures (borrowed).
 * Returns 0 or -EIO. */
int srv_admin_write_pool(FILE *out, const srv_levers_t *l, const pool_stats_t *total,
                         const pool_stats_t *workers, size_t n);

/* ---- POST /debug/trim ---- */

/* What one admin trim did: a pool trim on every worker, then returning free memory to the OS
 * (mem_release_to_os), with the figures before and after (the debug.FreeOSMemory report). */
typedef struct {
    uint64_t blocks_released; /* by the pool trims */
    uint64_t bytes_released;  /* those blocks' bytes */
    uint64_t duration_ns;     /* trims and release together */
    uint64_t live_before;     /* ingestd_memstats_alloc_bytes */
    uint64_t live_after;
    uint64_t sys_before; /* ingestd_memstats_sys_bytes */
    uint64_t sys_after;
    uint64_t rss_before; /* process_resident_memory_bytes */
    uint64_t rss_after;
} srv_trim_report_t;

/* Writes {"blocks_released":N,"bytes_released":N,"duration_seconds":S,
 * "live_bytes":{"before":N,"after":N},"sys_bytes":{..},"rss_bytes":{..}} and a newline.
 * Returns 0 or -EIO. */
int srv_admin_write_trim(FILE *out, const srv_trim_report_t *r);

/* ---- GET /debug/allocs ---- */

/* Parses the query string (without '?', may be NULL or empty): sort=inuse_space|inuse_objects|
 * alloc_space|alloc_objects (default inuse_space), format=text|folded (default text),
 * top=N (0..100000, default 50; 0 is all). Returns 0, or -EINVAL with one line in err (160
 * bytes) for an unknown key or a bad value; outputs untouched on error. */
int srv_admin_allocs_query(const char *query, allocprof_sort_t *sort, allocprof_format_t *fmt,
                           size_t *top, char *err, size_t errsz);

/* The whole endpoint: parses query and writes the profile (text/plain) to out. Returns 200; 400
 * with one line in err for a bad query (nothing written); 500 with err set when writing failed.
 * When the profile is off (rate 0) and nothing was ever sampled, the text says so and how to
 * turn it on. */
int srv_admin_allocs(FILE *out, const char *query, char *err, size_t errsz);

#endif
