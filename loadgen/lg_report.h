/* lg_report.h - the report of `loadgen compare`: statistics over the runs of each mode (median,
 * min-max, ratio to the baseline, "within noise"), the one-sentence verdict, the environment, and
 * the three outputs (terminal table, JSON, one self-contained HTML page with inline SVG). It knows
 * nothing about how runs are made: a mode name is an opaque label ("pool+libc",
 * "pool+libc+scan", anything), so any number of modes and any naming scheme work. */
#ifndef INGESTD_LG_REPORT_H
#define INGESTD_LG_REPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lg_run.h"

#define LG_REPORT_NAME_MAX 48

/* The figures of a run, in table order. */
typedef enum {
    LG_FIG_EPS,    /* events per second (loadgen's clock) */
    LG_FIG_CPU,    /* server CPU microseconds per event (/proc ticks) */
    LG_FIG_ALLOCS, /* heap allocations per event */
    LG_FIG_RSS,    /* server peak RSS, bytes */
    LG_FIG_HIT,    /* pool hit rate, 0..1; NAN without a pool */
    LG_FIG_COUNT
} lg_fig_t;

/* JSON key of a figure ("events_per_s", "cpu_us_per_event", ...). */
const char *lg_fig_key(lg_fig_t fig);

/* One run of one mode. */
typedef struct {
    double fig[LG_FIG_COUNT]; /* NAN when not measured */
    double cpu_res_us; /* resolution of fig[LG_FIG_CPU]: one CPU tick / events; NAN unknown */
    int64_t lost;
    int exit_status; /* server exit code, 128 + signal, -1 unknown */
    bool ok;
    lg_sample_t *samples; /* server RSS over time; owned by the result (free()) */
    size_t nsamples;
    json_t *json; /* every figure of the run as lg_run_json made it; owned, may be NULL */
} lg_report_run_t;

typedef struct {
    char name[LG_REPORT_NAME_MAX]; /* opaque label */
    json_t *attrs; /* owned, may be NULL: its keys are added to the mode's JSON object */
} lg_report_mode_t;

/* Where and with what the comparison ran. Empty strings where unknown. */
typedef struct {
    char date[40];          /* UTC, ISO 8601, when the comparison started */
    char cpu_model[128];    /* /proc/cpuinfo "model name" */
    unsigned cpus_online;   /* sysconf(_SC_NPROCESSORS_ONLN) */
    unsigned cpus_allowed;  /* sched_getaffinity of loadgen before pinning */
    char kernel[256];       /* uname: sysname release version machine */
    char glibc[32];         /* gnu_get_libc_version() */
    char mimalloc[64];      /* Debian package version of libmimalloc (dpkg-query), run time */
    char ingestd[128];      /* first line of `ingestd --version` */
    char source_commit[64]; /* `git rev-parse --short HEAD` (+"-dirty") at loadgen's configure */
    char build_type[32];    /* CMAKE_BUILD_TYPE of loadgen's build */
    bool server_in_build;   /* the ingestd binary lies under loadgen's build directory */
    double tick_s;          /* CPU tick: 1 / sysconf(_SC_CLK_TCK) */
    int pin_server;         /* CPU the server was pinned to, -1: not pinned */
    int pin_loadgen;
} lg_env_t;

/* Everything a report shows. Fill it with lg_result_init, lg_result_set_* and the fields. */
typedef struct {
    unsigned nmodes;
    unsigned repeat;
    lg_report_mode_t *modes; /* [nmodes] */
    lg_report_run_t *runs;   /* [repeat * nmodes]; run r of mode i at runs[r * nmodes + i] */
    unsigned baseline;       /* index of the mode ratios are taken to */
    int argc;
    char **argv; /* the exact loadgen invocation, NULL-terminated; new copies */
    lg_env_t env;
    char server[512];  /* path of the ingestd binary */
    char transport[8]; /* "tcp" or "http" */
    uint64_t events_per_run;
    unsigned connections;
    unsigned workers;
    double warmup_s;
    bool ok; /* every run ok */
} lg_compare_result_t;

/* Allocates modes and runs (figures NAN, exit status -1, env pins -1). Returns 0, -EINVAL
 * (nmodes or repeat 0) or -ENOMEM. Always lg_result_free after. */
int lg_result_init(lg_compare_result_t *r, unsigned nmodes, unsigned repeat);
/* Frees everything the result owns (samples, JSON, argv); r may be all zero. */
void lg_result_free(lg_compare_result_t *r);
/* Copies argv[0..argc). Returns 0 or -ENOMEM. */
int lg_result_set_argv(lg_compare_result_t *r, int argc, char *const *argv);
/* Names mode i (truncated to LG_REPORT_NAME_MAX - 1 bytes). */
void lg_result_set_mode(lg_compare_result_t *r, unsigned i, const char *name);
/* Index of the mode named name, or -1. */
int lg_result_find_mode(const lg_compare_result_t *r, const char *name);

/* Statistics of one figure of one mode over its runs (NAN values skipped). */
typedef struct {
    unsigned n; /* runs with a value */
    double median, min, max;
    double spread; /* (max - min) / median; NAN with fewer than two values */
    double res;    /* measurement resolution, 0 when exact: CPU, one tick over the events (the
                    * largest of the runs'); allocations, one over the events per run */
} lg_stat_t;

void lg_report_stat(const lg_compare_result_t *r, unsigned mode, lg_fig_t fig, lg_stat_t *out);

/* True when the two modes cannot be told apart on this figure: their run ranges, each widened
 * by its resolution, overlap. With one run each, only values within the resolution overlap. */
bool lg_report_within_noise(const lg_stat_t *a, const lg_stat_t *b);

/* a.median / b.median, NAN when either is unknown or b is 0. */
double lg_report_ratio(const lg_stat_t *a, const lg_stat_t *b);

/* Decimals worth printing for a value of this resolution: enough for its first significant
 * digit (0.067 -> 2, 0.04 -> 2, 0.5 -> 1, 2 -> 0); 3 when the resolution is unknown. */
int lg_report_decimals(double res);

/* A "nice" axis step (1, 2 or 5 times a power of ten) giving about `ticks` steps over span. */
double lg_report_nice_step(double span, unsigned ticks);

/* The colour of a mode, "#rrggbb", fixed by its name: a table for the known modes, else a hash
 * of the name into a palette, so a mode has the same colour in every chart and every report.
 * Returns a static string. */
const char *lg_report_color(const char *name);

/* Writes s with & < > " ' escaped for HTML text and attribute values. */
void lg_report_html_escape(FILE *out, const char *s);

/* Writes argv as one shell command line, each argument quoted when it needs to be. */
void lg_report_shell_line(FILE *out, int argc, char *const *argv);

/* The one-sentence verdict into buf (always terminated). It compares the mode with the lowest
 * median CPU per event (events/s when CPU is unknown) with the baseline and says whether the
 * difference is outside the run-to-run spread. Returns the length it needed, as snprintf. */
int lg_report_verdict(const lg_compare_result_t *r, char *buf, size_t n);

/* The terminal table, the ranges, the resolution note and the verdict. */
void lg_report_print(FILE *out, const lg_compare_result_t *r);
/* Every figure as a new JSON object: argv, environment, per mode median/min/max/ratios/noise,
 * every run. NULL on allocation failure. */
json_t *lg_report_json(const lg_compare_result_t *r);
/* The self-contained HTML page. Returns 0 or -EIO when a write failed. */
int lg_report_write_html(FILE *out, const lg_compare_result_t *r);

/* Fills env with what this host says (CPU, kernel, allocator versions, `server --version`, the
 * build loadgen came from, the date). server may be NULL. Never fails: unknowns stay empty. */
void lg_env_collect(lg_env_t *env, const char *server);

#endif
