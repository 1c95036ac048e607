/* lg_compare.h - `loadgen compare`: starts ingestd in each memory mode on free loopback ports,
 * runs the same load against each (modes alternating A B C D A B C D over the repeats), scrapes
 * it, stops it with SIGTERM, and hands every run to the report (lg_report.h: table, JSON, HTML). */
#ifndef INGESTD_LG_COMPARE_H
#define INGESTD_LG_COMPARE_H

#include <jansson.h>
#include <stdbool.h>

#include "lg_run.h"

#define LG_MAX_MODES 8
/* The default comparison: the memory axis under jansson's tree (naive, pooled, pooled on
 * mimalloc) and the parse axis (pooled tree vs pooled scan). */
#define LG_DEFAULT_MODES "naive+libc+tree,pool+libc+tree,pool+mimalloc+tree,pool+libc+scan"
#define LG_MAX_SERVER_ARGS 16

typedef struct {
    char name[48]; /* "naive+libc", "pool+mimalloc+scan", ... */
    bool pool;
    char allocator[16]; /* "libc" or "mimalloc" */
    char parse[8];      /* "scan", "tree", or "" (not passed: the server's default) */
} lg_mode_t;

typedef struct {
    const char *server; /* path to ingestd (borrowed) */
    lg_mode_t modes[LG_MAX_MODES];
    unsigned nmodes;
    unsigned repeat;
    int pin_server; /* CPU for the server, -1: none */
    int pin_loadgen;
    unsigned workers;    /* ingestd --workers */
    bool http;           /* load over HTTP instead of TCP */
    lg_run_config_t run; /* the load; target, metrics and server_pid are set per run */
    const char *server_args[LG_MAX_SERVER_ARGS];
    unsigned nserver_args;
    const char *json_path; /* NULL: none */
    const char *html_path;
    double start_timeout_s;
    double stop_timeout_s;
    int argc; /* the loadgen invocation, shown verbatim in the report; borrowed, may be NULL */
    char *const *argv;
} lg_compare_config_t;

/* Parses POOL+ALLOCATOR[+PARSE]: "naive+libc", "pool+mimalloc+scan" etc. ("pooled" and
 * "off"/"on" spellings too); PARSE is scan or tree, and without it no --parse is passed (the
 * server's default). Returns 0 or -EINVAL. */
int lg_mode_parse(const char *name, lg_mode_t *out);

/* Parses a comma-separated list of modes into cfg. Returns 0 or -EINVAL. */
int lg_modes_parse(const char *list, lg_compare_config_t *cfg);

/* Defaults: the four modes, 3 repeats, no pinning, 1 worker, TCP, 150000 events per run,
 * 0.3 s warm-up, 10 s start and 20 s stop timeouts. */
void lg_compare_config_default(lg_compare_config_t *cfg);

/* Runs the comparison, prints the table on stdout, and writes the JSON and HTML files asked for.
 * Returns 0 when every run succeeded (server exited 0, nothing lost), 1 otherwise, or a negative
 * errno when it could not run at all. */
int lg_compare(const lg_compare_config_t *cfg);

#endif
