/* report.c - the report of `loadgen compare`: statistics, verdict, table, JSON and HTML. */
#include "lg_report.h"

#include <errno.h>
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef LG_SOURCE_COMMIT
#define LG_SOURCE_COMMIT ""
#endif
#ifndef LG_BUILD_TYPE
#define LG_BUILD_TYPE ""
#endif
#ifndef LG_BUILD_DIR
#define LG_BUILD_DIR ""
#endif

static const char *const fig_keys[LG_FIG_COUNT] = {
    "events_per_s", "cpu_us_per_event", "allocs_per_event", "peak_rss_bytes", "pool_hit_rate"};

const char *lg_fig_key(lg_fig_t fig)
{
    return fig < LG_FIG_COUNT ? fig_keys[fig] : "";
}

/* ---- the result ---- */

int lg_result_init(lg_compare_result_t *r, unsigned nmodes, unsigned repeat)
{
    memset(r, 0, sizeof(*r));
    r->env.pin_server = r->env.pin_loadgen = -1;
    if (nmodes == 0 || repeat == 0) {
        return -EINVAL;
    }
    r->modes = calloc(nmodes, sizeof(*r->modes));
    r->runs = calloc((size_t)nmodes * repeat, sizeof(*r->runs));
    if (!r->modes || !r->runs) {
        lg_result_free(r);
        return -ENOMEM;
    }
    r->nmodes = nmodes;
    r->repeat = repeat;
    for (size_t k = 0; k < (size_t)nmodes * repeat; k++) {
        for (int f = 0; f < LG_FIG_COUNT; f++) {
            r->runs[k].fig[f] = NAN;
        }
        r->runs[k].cpu_res_us = NAN;
        r->runs[k].exit_status = -1;
    }
    return 0;
}

void lg_result_free(lg_compare_result_t *r)
{
    if (!r) {
        return;
    }
    for (size_t k = 0; r->runs && k < (size_t)r->nmodes * r->repeat; k++) {
        free(r->runs[k].samples);
        json_decref(r->runs[k].json);
    }
    for (unsigned i = 0; r->modes && i < r->nmodes; i++) {
        json_decref(r->modes[i].attrs);
    }
    for (int i = 0; r->argv && i < r->argc; i++) {
        free(r->argv[i]);
    }
    free(r->argv);
    free(r->runs);
    free(r->modes);
    r->argv = NULL;
    r->runs = NULL;
    r->modes = NULL;
    r->nmodes = r->repeat = 0;
    r->argc = 0;
}

int lg_result_set_argv(lg_compare_result_t *r, int argc, char *const *argv)
{
    char **v = calloc((size_t)argc + 1, sizeof(*v));
    if (!v) {
        return -ENOMEM;
    }
    for (int i = 0; i < argc; i++) {
        v[i] = strdup(argv[i]);
        if (!v[i]) {
            for (int k = 0; k < i; k++) {
                free(v[k]);
            }
            free(v);
            return -ENOMEM;
        }
    }
    for (int i = 0; r->argv && i < r->argc; i++) {
        free(r->argv[i]);
    }
    free(r->argv);
    r->argv = v;
    r->argc = argc;
    return 0;
}

void lg_result_set_mode(lg_compare_result_t *r, unsigned i, const char *name)
{
    snprintf(r->modes[i].name, sizeof(r->modes[i].name), "%s", name);
}

int lg_result_find_mode(const lg_compare_result_t *r, const char *name)
{
    for (unsigned i = 0; i < r->nmodes; i++) {
        if (strcmp(r->modes[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static const lg_report_run_t *run_of(const lg_compare_result_t *r, unsigned mode, unsigned rep)
{
    return &r->runs[(size_t)rep * r->nmodes + mode];
}

/* ---- statistics ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void lg_report_stat(const lg_compare_result_t *r, unsigned mode, lg_fig_t fig, lg_stat_t *out)
{
    double *v = malloc((r->repeat ? r->repeat : 1) * sizeof(double));
    unsigned n = 0;
    double res = 0;
    for (unsigned k = 0; k < r->repeat; k++) {
        const lg_report_run_t *run = run_of(r, mode, k);
        if (v && !isnan(run->fig[fig])) {
            v[n++] = run->fig[fig];
        }
        if (fig == LG_FIG_CPU && run->cpu_res_us > res) {
            res = run->cpu_res_us;
        }
    }
    if (fig == LG_FIG_ALLOCS && r->events_per_run > 0) {
        res = 1.0 / (double)r->events_per_run; /* one allocation more or less in a run */
    }
    out->n = n;
    out->res = res;
    if (n == 0) {
        out->median = out->min = out->max = out->spread = NAN;
        free(v);
        return;
    }
    qsort(v, n, sizeof(double), cmp_double);
    out->min = v[0];
    out->max = v[n - 1];
    out->median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    out->spread = (n < 2 || out->median == 0) ? NAN : (out->max - out->min) / out->median;
    free(v);
}

bool lg_report_within_noise(const lg_stat_t *a, const lg_stat_t *b)
{
    if (a->n == 0 || b->n == 0) {
        return true; /* nothing measured: nothing can be told apart */
    }
    return a->min - a->res <= b->max + b->res && b->min - b->res <= a->max + a->res;
}

double lg_report_ratio(const lg_stat_t *a, const lg_stat_t *b)
{
    if (a->n == 0 || b->n == 0 || isnan(a->median) || isnan(b->median) || b->median == 0) {
        return NAN;
    }
    return a->median / b->median;
}

int lg_report_decimals(double res)
{
    if (!(res > 0) || isinf(res)) {
        return 3;
    }
    int d = (int)ceil(-log10(res) - 1e-9);
    return d < 0 ? 0 : d > 9 ? 9 : d;
}

double lg_report_nice_step(double span, unsigned ticks)
{
    if (!(span > 0) || isinf(span) || ticks == 0) {
        return 1;
    }
    double raw = span / ticks;
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    double m = f <= 1.0 + 1e-9 ? 1 : f <= 2.0 + 1e-9 ? 2 : f <= 5.0 + 1e-9 ? 5 : 10;
    return m * mag;
}

/* ---- colours, escaping, quoting ---- */

/* The known modes keep these colours in every report. The parse axis (issue 10) names the same
 * memory modes with "+tree" (today's behaviour: the same colour) or "+scan" (a colour of its own).
 */
static const struct {
    const char *name, *color;
} known_colors[] = {
    {"naive+libc", "#d62728"},      {"naive+libc+tree", "#d62728"},
    {"naive+mimalloc", "#ff7f0e"},  {"naive+mimalloc+tree", "#ff7f0e"},
    {"pool+libc", "#1f77b4"},       {"pool+libc+tree", "#1f77b4"},
    {"pool+mimalloc", "#2ca02c"},   {"pool+mimalloc+tree", "#2ca02c"},
    {"naive+libc+scan", "#e377c2"}, {"naive+mimalloc+scan", "#8c6d31"},
    {"pool+libc+scan", "#17becf"},  {"pool+mimalloc+scan", "#9467bd"},
};

/* Other names: FNV-1a of the name into these, none of them a known mode's colour. */
static const char *const hashed_colors[] = {"#8c564b", "#7f7f7f", "#393b79", "#637939",
                                            "#843c39", "#7b4173", "#5254a3", "#bcbd22",
                                            "#e7969c", "#3182bd", "#636363", "#a55194"};

const char *lg_report_color(const char *name)
{
    for (size_t i = 0; i < sizeof(known_colors) / sizeof(known_colors[0]); i++) {
        if (strcmp(known_colors[i].name, name) == 0) {
            return known_colors[i].color;
        }
    }
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h = (h ^ *p) * 16777619u;
    }
    return hashed_colors[h % (sizeof(hashed_colors) / sizeof(hashed_colors[0]))];
}

void lg_report_html_escape(FILE *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        case '\'':
            fputs("&#39;", out);
            break;
        default:
            fputc(*s, out);
        }
    }
}

static bool shell_safe(const char *s)
{
    if (!*s) {
        return false;
    }
    for (; *s; s++) {
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=,+@%-",
                    *s)) {
            return false;
        }
    }
    return true;
}

void lg_report_shell_line(FILE *out, int argc, char *const *argv)
{
    for (int i = 0; i < argc; i++) {
        if (i) {
            fputc(' ', out);
        }
        if (shell_safe(argv[i])) {
            fputs(argv[i], out);
            continue;
        }
        fputc('\'', out);
        for (const char *p = argv[i]; *p; p++) {
            if (*p == '\'') {
                fputs("'\\''", out);
            } else {
                fputc(*p, out);
            }
        }
        fputc('\'', out);
    }
}

/* The command line as a new string ("" on failure). */
static char *shell_string(const lg_compare_result_t *r)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        return strdup("");
    }
    lg_report_shell_line(f, r->argc, r->argv);
    fclose(f);
    return buf;
}

/* ---- formatting ---- */

/* Divisor from a figure's unit to the unit shown. */
static double fig_scale(lg_fig_t fig)
{
    return fig == LG_FIG_RSS ? 1048576.0 : fig == LG_FIG_HIT ? 0.01 : 1.0;
}

static int fig_decimals(lg_fig_t fig, double res)
{
    switch (fig) {
    case LG_FIG_EPS:
        return 0;
    case LG_FIG_CPU:
        return lg_report_decimals(res);
    case LG_FIG_ALLOCS:
        return 4;
    case LG_FIG_RSS:
        return 1;
    default:
        return 2;
    }
}

/* v (in the figure's base unit) in the unit shown, to the precision it has. */
static void fmt_fig(char *buf, size_t n, lg_fig_t fig, double v, double res)
{
    if (isnan(v)) {
        snprintf(buf, n, "n/a");
        return;
    }
    if (fig == LG_FIG_ALLOCS && v > 0 && v < 0.001) {
        snprintf(buf, n, "%.1e", v); /* the pooled path: "0.0000" would hide it */
        return;
    }
    snprintf(buf, n, "%.*f%s", fig_decimals(fig, res), v / fig_scale(fig),
             fig == LG_FIG_HIT ? "%" : "");
}

static void fmt_ratio(char *buf, size_t n, double v)
{
    if (isnan(v)) {
        snprintf(buf, n, "n/a");
    } else if (v > 0 && v < 0.005) {
        snprintf(buf, n, "<0.01x");
    } else {
        snprintf(buf, n, "%.2fx", v);
    }
}

/* "a-b" or the single value when every run gave the same. */
static void fmt_range(char *buf, size_t n, lg_fig_t fig, const lg_stat_t *s)
{
    char lo[32], hi[32];
    fmt_fig(lo, sizeof(lo), fig, s->min, s->res);
    fmt_fig(hi, sizeof(hi), fig, s->max, s->res);
    if (strcmp(lo, hi) == 0) {
        snprintf(buf, n, "%s", lo);
    } else {
        snprintf(buf, n, "%s-%s", lo, hi);
    }
}

/* ---- the verdict ---- */

/* The figure the verdict is about: CPU per event when the baseline has it, else events/s. */
static lg_fig_t verdict_fig(const lg_compare_result_t *r)
{
    lg_stat_t b;
    lg_report_stat(r, r->baseline, LG_FIG_CPU, &b);
    return (b.n > 0 && b.median > 0) ? LG_FIG_CPU : LG_FIG_EPS;
}

/* Is a better than b on fig? */
static bool better(lg_fig_t fig, double a, double b)
{
    return fig == LG_FIG_EPS ? a > b : a < b;
}

static const char *noise_phrase(const lg_stat_t *a, const lg_stat_t *b)
{
    bool same = lg_report_within_noise(a, b);
    if (a->n >= 2 && b->n >= 2) {
        return same ? "within the run-to-run spread (their runs overlap)"
                    : "outside the run-to-run spread";
    }
    return same ? "within the measurement resolution, from one run each"
                : "from one run each, so the run-to-run spread is unknown";
}

int lg_report_verdict(const lg_compare_result_t *r, char *buf, size_t n)
{
    if (r->nmodes == 0) {
        return snprintf(buf, n, "No modes were run.");
    }
    lg_fig_t fig = verdict_fig(r);
    const char *what = fig == LG_FIG_CPU ? "the CPU per event" : "the throughput (events/s)";
    lg_stat_t base;
    lg_report_stat(r, r->baseline, fig, &base);
    const char *bname = r->modes[r->baseline].name;
    if (r->nmodes == 1) {
        char v[32];
        fmt_fig(v, sizeof(v), fig, base.median, base.res);
        return snprintf(buf, n, "Only %s was run, so there is nothing to compare (%s: %s%s).",
                        bname, fig == LG_FIG_CPU ? "CPU per event" : "events/s", v,
                        fig == LG_FIG_CPU ? " us" : "");
    }
    /* The best mode other than the baseline. */
    int best = -1;
    lg_stat_t bs = {0};
    for (unsigned i = 0; i < r->nmodes; i++) {
        lg_stat_t s;
        lg_report_stat(r, i, fig, &s);
        if (i == r->baseline || s.n == 0) {
            continue;
        }
        if (best < 0 || better(fig, s.median, bs.median)) {
            best = (int)i;
            bs = s;
        }
    }
    if (best < 0 || base.n == 0) {
        return snprintf(buf, n, "No figures were measured, so there is no verdict.");
    }
    const char *name = r->modes[best].name;
    double q = lg_report_ratio(&bs, &base);
    char others[512] = "";
    if (!better(fig, bs.median, base.median)) {
        /* The baseline is the best: say by how much the closest other mode trails. */
        return snprintf(
            buf, n, "%s has the best %s of these modes; the closest, %s, has %.2fx %s, %s.", bname,
            fig == LG_FIG_CPU ? "CPU per event" : "throughput", name, q,
            fig == LG_FIG_CPU ? "as much" : "as many events/s", noise_phrase(&bs, &base));
    }
    /* Modes other than the baseline that cannot be told apart from the best: "a, b and c". */
    unsigned nothers = 0, total = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned i = 0; i < r->nmodes; i++) {
            lg_stat_t s;
            lg_report_stat(r, i, fig, &s);
            if ((int)i == best || i == r->baseline || s.n == 0 ||
                !lg_report_within_noise(&s, &bs)) {
                continue;
            }
            if (pass == 0) {
                total++;
                continue;
            }
            size_t len = strlen(others);
            snprintf(others + len, sizeof(others) - len, "%s%s",
                     nothers == 0           ? ""
                     : nothers + 1 == total ? " and "
                                            : ", ",
                     r->modes[i].name);
            nothers++;
        }
    }
    const char *verb = fig == LG_FIG_CPU ? "uses" : "handles";
    if (nothers == 0) {
        return snprintf(buf, n, "%s %s %.2fx %s of %s, %s.", name, verb, q, what, bname,
                        noise_phrase(&bs, &base));
    }
    return snprintf(buf, n, "%s %s %.2fx %s of %s, %s; %s %s within noise of %s.", name, verb, q,
                    what, bname, noise_phrase(&bs, &base), others, nothers == 1 ? "is" : "are",
                    name);
}

/* ---- terminal ---- */

static unsigned name_width(const lg_compare_result_t *r)
{
    size_t w = 4;
    for (unsigned i = 0; i < r->nmodes; i++) {
        size_t l = strlen(r->modes[i].name);
        w = l > w ? l : w;
    }
    return (unsigned)w;
}

void lg_report_print(FILE *out, const lg_compare_result_t *r)
{
    int w = (int)name_width(r);
    const char *bname = r->modes[r->baseline].name;
    fprintf(out,
            "loadgen compare: %u modes x %u run%s (alternating), %llu events per run over %s, "
            "medians; ratios to %s\n",
            r->nmodes, r->repeat, r->repeat == 1 ? "" : "s", (unsigned long long)r->events_per_run,
            strcmp(r->transport, "http") == 0 ? "HTTP" : "TCP", bname);
    fprintf(out, "%-*s %11s %6s %10s %6s %12s %7s %9s %6s %9s\n", w, "mode", "events/s", "ratio",
            "CPU us/ev", "ratio", "allocs/ev", "ratio", "peak MiB", "ratio", "pool hit");
    static const lg_fig_t cols[] = {LG_FIG_EPS, LG_FIG_CPU, LG_FIG_ALLOCS, LG_FIG_RSS};
    for (unsigned i = 0; i < r->nmodes; i++) {
        char c[9][32];
        for (int k = 0; k < 4; k++) {
            lg_stat_t s, b;
            lg_report_stat(r, i, cols[k], &s);
            lg_report_stat(r, r->baseline, cols[k], &b);
            fmt_fig(c[2 * k], 32, cols[k], s.median, s.res);
            fmt_ratio(c[2 * k + 1], 32, lg_report_ratio(&s, &b));
        }
        lg_stat_t h;
        lg_report_stat(r, i, LG_FIG_HIT, &h);
        fmt_fig(c[8], 32, LG_FIG_HIT, h.median, 0);
        fprintf(out, "%-*s %11s %6s %10s %6s %12s %7s %9s %6s %9s\n", w, r->modes[i].name, c[0],
                c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]);
    }
    if (r->repeat > 1) {
        fprintf(out, "range over %u runs (min-max); \"~\": within noise of %s (runs overlap)\n",
                r->repeat, bname);
        fprintf(out, "%-*s %21s %15s %19s %13s\n", w, "mode", "events/s", "CPU us/ev", "allocs/ev",
                "peak MiB");
        for (unsigned i = 0; i < r->nmodes; i++) {
            char c[4][64];
            for (int k = 0; k < 4; k++) {
                lg_stat_t s, b;
                lg_report_stat(r, i, cols[k], &s);
                lg_report_stat(r, r->baseline, cols[k], &b);
                char range[48];
                fmt_range(range, sizeof(range), cols[k], &s);
                snprintf(c[k], sizeof(c[k]), "%s%s", range,
                         i != r->baseline && lg_report_within_noise(&s, &b) ? " ~" : "  ");
            }
            fprintf(out, "%-*s %21s %15s %19s %13s\n", w, r->modes[i].name, c[0], c[1], c[2], c[3]);
        }
    }
    lg_stat_t cpu;
    lg_report_stat(r, r->baseline, LG_FIG_CPU, &cpu);
    if (cpu.res > 0) {
        fprintf(out,
                "CPU us/event resolution: %.3g us (one %.0f ms CPU tick over %llu events), "
                "shown to %d decimal%s\n",
                cpu.res, r->env.tick_s * 1000, (unsigned long long)r->events_per_run,
                lg_report_decimals(cpu.res), lg_report_decimals(cpu.res) == 1 ? "" : "s");
    }
    char verdict[1024];
    lg_report_verdict(r, verdict, sizeof(verdict));
    fprintf(out, "verdict: %s\n", verdict);
}

/* ---- JSON ---- */

static json_t *jnum(double v)
{
    return isnan(v) || isinf(v) ? json_null() : json_real(v);
}

static json_t *env_json(const lg_env_t *e)
{
    json_t *o = json_object();
    json_object_set_new(o, "date", json_string(e->date));
    json_object_set_new(o, "cpu_model", json_string(e->cpu_model));
    json_object_set_new(o, "cpus_online", json_integer(e->cpus_online));
    json_object_set_new(o, "cpus_allowed", json_integer(e->cpus_allowed));
    json_object_set_new(o, "kernel", json_string(e->kernel));
    json_object_set_new(o, "glibc", json_string(e->glibc));
    json_object_set_new(o, "mimalloc", json_string(e->mimalloc));
    json_object_set_new(o, "ingestd_version", json_string(e->ingestd));
    json_object_set_new(o, "source_commit", json_string(e->source_commit));
    json_object_set_new(o, "build_type", json_string(e->build_type));
    json_object_set_new(o, "server_in_build", json_boolean(e->server_in_build));
    json_object_set_new(o, "cpu_tick_s", jnum(e->tick_s));
    json_object_set_new(o, "pin_server", json_integer(e->pin_server));
    json_object_set_new(o, "pin_loadgen", json_integer(e->pin_loadgen));
    return o;
}

static json_t *mode_json(const lg_compare_result_t *r, unsigned i)
{
    json_t *m = json_object();
    json_object_set_new(m, "name", json_string(r->modes[i].name));
    if (r->modes[i].attrs) {
        json_object_update(m, r->modes[i].attrs);
    }
    json_object_set_new(m, "color", json_string(lg_report_color(r->modes[i].name)));
    json_t *med = json_object(), *lo = json_object(), *hi = json_object(), *rat = json_object(),
           *spr = json_object(), *noise = json_object();
    for (int k = 0; k < LG_FIG_COUNT; k++) {
        lg_stat_t s, b;
        lg_report_stat(r, i, (lg_fig_t)k, &s);
        lg_report_stat(r, r->baseline, (lg_fig_t)k, &b);
        json_object_set_new(med, fig_keys[k], jnum(s.median));
        json_object_set_new(lo, fig_keys[k], jnum(s.min));
        json_object_set_new(hi, fig_keys[k], jnum(s.max));
        json_object_set_new(rat, fig_keys[k], jnum(lg_report_ratio(&s, &b)));
        json_object_set_new(spr, fig_keys[k], jnum(s.spread));
        json_object_set_new(noise, fig_keys[k],
                            s.n && b.n ? json_boolean(lg_report_within_noise(&s, &b))
                                       : json_null());
        if (k == LG_FIG_CPU) {
            json_object_set_new(m, "cpu_us_per_event_resolution", jnum(s.res > 0 ? s.res : NAN));
        }
    }
    json_object_set_new(m, "median", med);
    json_object_set_new(m, "min", lo);
    json_object_set_new(m, "max", hi);
    json_object_set_new(m, "ratio_to_baseline", rat);
    json_object_set_new(m, "spread", spr);
    json_object_set_new(m, "within_noise_of_baseline", noise);
    json_t *runs = json_array();
    for (unsigned k = 0; k < r->repeat; k++) {
        const lg_report_run_t *run = run_of(r, i, k);
        json_t *j = run->json ? json_copy(run->json) : json_object();
        json_object_set_new(j, "mode", json_string(r->modes[i].name));
        json_object_set_new(j, "repeat", json_integer(k));
        json_t *figs = json_object(); /* what the report shows of this run */
        for (int f = 0; f < LG_FIG_COUNT; f++) {
            json_object_set_new(figs, fig_keys[f], jnum(run->fig[f]));
        }
        json_object_set_new(j, "figures", figs);
        json_object_set_new(j, "cpu_us_per_event_resolution", jnum(run->cpu_res_us));
        json_object_set_new(j, "server_exit_status", json_integer(run->exit_status));
        json_object_set_new(j, "run_ok", json_boolean(run->ok));
        json_array_append_new(runs, j);
    }
    json_object_set_new(m, "runs", runs);
    return m;
}

json_t *lg_report_json(const lg_compare_result_t *r)
{
    json_t *root = json_object();
    if (!root) {
        return NULL;
    }
    char *cmd = shell_string(r);
    json_object_set_new(root, "command", json_string(cmd ? cmd : ""));
    free(cmd);
    json_t *argv = json_array();
    for (int i = 0; i < r->argc; i++) {
        json_array_append_new(argv, json_string(r->argv[i]));
    }
    json_object_set_new(root, "argv", argv);
    json_object_set_new(root, "server", json_string(r->server));
    json_object_set_new(root, "repeat", json_integer(r->repeat));
    json_object_set_new(root, "workers", json_integer(r->workers));
    json_object_set_new(root, "connections", json_integer(r->connections));
    json_object_set_new(root, "transport", json_string(r->transport));
    json_object_set_new(root, "events_per_run", json_integer((json_int_t)r->events_per_run));
    json_object_set_new(root, "warmup_s", json_real(r->warmup_s));
    json_object_set_new(root, "pin_server", json_integer(r->env.pin_server));
    json_object_set_new(root, "pin_loadgen", json_integer(r->env.pin_loadgen));
    json_object_set_new(root, "baseline", json_string(r->modes[r->baseline].name));
    char verdict[1024];
    lg_report_verdict(r, verdict, sizeof(verdict));
    json_object_set_new(root, "verdict", json_string(verdict));
    json_object_set_new(root, "environment", env_json(&r->env));
    json_t *modes = json_array();
    for (unsigned i = 0; i < r->nmodes; i++) {
        json_array_append_new(modes, mode_json(r, i));
    }
    json_object_set_new(root, "modes", modes);
    json_object_set_new(root, "ok", json_boolean(r->ok));
    return root;
}

/* ---- HTML ---- */

/* Chart geometry: every chart is this wide; mode labels get what the longest name needs. */
#define CHART_W 960.0
#define ROW_H 30.0

static double label_width(const lg_compare_result_t *r)
{
    return 16 + 7.4 * name_width(r);
}

/* Decimals for axis labels at this step. */
static int step_decimals(double step)
{
    int d = (int)ceil(-log10(step) - 1e-9);
    return d < 0 ? 0 : d;
}

static void svg_text(FILE *f, double x, double y, const char *anchor, const char *cls,
                     const char *text)
{
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" class=\"%s\">", x, y, anchor, cls);
    lg_report_html_escape(f, text);
    fputs("</text>\n", f);
}

/* One horizontal chart of a figure: per mode a bar to the median, a min-max whisker and a dot
 * per run, an x axis with ticks and a unit, the median, the ratio and the noise tag at the right.
 */
static void svg_fig_chart(FILE *f, const lg_compare_result_t *r, lg_fig_t fig, const char *title,
                          const char *axis, double scale)
{
    double max = 0;
    for (unsigned i = 0; i < r->nmodes; i++) {
        lg_stat_t s;
        lg_report_stat(r, i, fig, &s);
        if (s.n && s.max / scale > max) {
            max = s.max / scale;
        }
    }
    double step = lg_report_nice_step(max > 0 ? max : 1, 5);
    double top = ceil(max / step - 1e-9) * step;
    if (top <= 0) {
        top = step;
    }
    const double lx = label_width(r), rw = 250, px = lx, pw = CHART_W - lx - rw, y0 = 22;
    double ph = ROW_H * r->nmodes;
    fprintf(f, "<figure>\n<figcaption>");
    lg_report_html_escape(f, title);
    fprintf(f,
            "</figcaption>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
            "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" class=\"chart\" "
            "data-figure=\"%s\">\n",
            CHART_W, y0 + ph + 48, CHART_W, y0 + ph + 48, fig_keys[fig]);
    for (unsigned i = 0; i < r->nmodes; i++) {
        if (i % 2) {
            fprintf(f,
                    "<rect x=\"0\" y=\"%.1f\" width=\"%.0f\" height=\"%.0f\" class=\"stripe\"/>\n",
                    y0 + ROW_H * i, CHART_W, ROW_H);
        }
    }
    char lab[64];
    svg_text(f, px + pw + 84, 14, "end", "colhead", "median");
    svg_text(f, px + pw + 94, 14, "start", "colhead", "ratio");
    svg_text(f, px + pw + 152, 14, "start", "colhead", "vs baseline");
    for (double t = 0; t <= top + step / 2; t += step) {
        double x = px + pw * t / top;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>\n", x,
                y0, x, y0 + ph + 4);
        snprintf(lab, sizeof(lab), "%.*f", step_decimals(step), t);
        svg_text(f, x, y0 + ph + 18, "middle", "tick", lab);
    }
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"axis\"/>\n", px,
            y0 + ph, px + pw, y0 + ph);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"axis\"/>\n", px, y0,
            px, y0 + ph);
    svg_text(f, px + pw / 2, y0 + ph + 38, "middle", "axis-label", axis);
    lg_stat_t base;
    lg_report_stat(r, r->baseline, fig, &base);
    for (unsigned i = 0; i < r->nmodes; i++) {
        lg_stat_t s;
        lg_report_stat(r, i, fig, &s);
        const char *color = lg_report_color(r->modes[i].name);
        double cy = y0 + ROW_H * i + ROW_H / 2;
        fprintf(f, "<g class=\"mode\" data-mode=\"");
        lg_report_html_escape(f, r->modes[i].name);
        fprintf(f, "\">\n");
        svg_text(f, lx - 8, cy + 4, "end", "name", r->modes[i].name);
        if (s.n) {
            double w = pw * (s.median / scale) / top;
            fprintf(f,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"16\" fill=\"%s\" "
                    "class=\"bar\"/>\n",
                    px, cy - 8, w, color);
            double x1 = px + pw * (s.min / scale) / top, x2 = px + pw * (s.max / scale) / top;
            fprintf(f,
                    "<path d=\"M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fV%.1f\" "
                    "class=\"whisker\"/>\n",
                    x1, cy - 6, cy + 6, x1, cy, x2, x2, cy - 6, cy + 6);
            for (unsigned k = 0; k < r->repeat; k++) {
                const lg_report_run_t *run = run_of(r, i, k);
                if (isnan(run->fig[fig])) {
                    continue;
                }
                double dy = r->repeat > 1 ? (k - (r->repeat - 1) / 2.0) * (10.0 / r->repeat) : 0;
                char v[32];
                fmt_fig(v, sizeof(v), fig, run->fig[fig], run->cpu_res_us);
                fprintf(f,
                        "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.2\" class=\"run\"><title>run %u: %s"
                        "</title></circle>\n",
                        px + pw * (run->fig[fig] / scale) / top, cy + dy, k + 1, v);
            }
        }
        char v[32], q[32];
        fmt_fig(v, sizeof(v), fig, s.median, s.res);
        fmt_ratio(q, sizeof(q), i == r->baseline ? 1.0 : lg_report_ratio(&s, &base));
        bool noise = i != r->baseline && s.n && lg_report_within_noise(&s, &base);
        const char *tag = i == r->baseline ? "baseline"
                          : !s.n           ? ""
                          : noise          ? "≈ within noise"
                                           : "outside spread";
        const char *cls = noise ? "value noise" : "value";
        svg_text(f, px + pw + 84, cy + 4, "end", cls, v);
        svg_text(f, px + pw + 94, cy + 4, "start", cls, q);
        svg_text(f, px + pw + 152, cy + 4, "start", cls, tag);
        fputs("</g>\n", f);
    }
    fputs("</svg>\n</figure>\n", f);
}

/* RSS over time: one small panel per mode (shared axes), every run drawn, the last one solid. */
static void svg_rss(FILE *f, const lg_compare_result_t *r)
{
    double tmax = 0, rmax = 0, rmin = INFINITY;
    for (size_t k = 0; k < (size_t)r->nmodes * r->repeat; k++) {
        for (size_t s = 0; s < r->runs[k].nsamples; s++) {
            const lg_sample_t *p = &r->runs[k].samples[s];
            if (isnan(p->rss_bytes)) {
                continue;
            }
            tmax = fmax(tmax, p->t);
            rmax = fmax(rmax, p->rss_bytes / 1048576.0);
            rmin = fmin(rmin, p->rss_bytes / 1048576.0);
        }
    }
    fputs("<h2 id=\"rss\">Server RSS over time</h2>\n", f);
    if (rmax <= 0) {
        fputs("<p>No RSS samples were taken.</p>\n", f);
        return;
    }
    double xstep = lg_report_nice_step(tmax > 0 ? tmax : 1, 4);
    double xtop = ceil(tmax / xstep - 1e-9) * xstep;
    xtop = xtop > 0 ? xtop : xstep;
    /* Start at zero unless that would squash the lines into the top fifth. */
    bool zoom = rmin > 0.8 * rmax;
    double ystep = lg_report_nice_step(zoom ? rmax - rmin : rmax, 4);
    if (zoom && ystep < 0.1) {
        ystep = 0.1;
    }
    double ybot = zoom ? floor(rmin / ystep) * ystep : 0;
    double ytop = ceil(rmax / ystep - 1e-9) * ystep;
    if (ytop <= ybot) {
        ytop = ybot + ystep;
    }
    fprintf(f,
            "<p class=\"note\">Resident memory of the server, sampled every 0.1 s from "
            "/proc/PID/status, one panel per mode on the same axes; every run drawn, the last one "
            "solid. The dashed line is the end of the warm-up (%.1f s), excluded from every "
            "figure.%s</p>\n<div class=\"panels\">\n",
            r->warmup_s, zoom ? " The MiB axis does not start at zero." : "");
    const double W = 300, H = 170, px = 48, py = 22, pw = W - px - 12, ph = H - py - 34;
    for (unsigned i = 0; i < r->nmodes; i++) {
        const char *color = lg_report_color(r->modes[i].name);
        fprintf(f,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                "viewBox=\"0 0 %.0f %.0f\" role=\"img\" class=\"panel\" data-mode=\"",
                W, H, W, H);
        lg_report_html_escape(f, r->modes[i].name);
        fputs("\">\n", f);
        fprintf(f, "<rect x=\"%.0f\" y=\"4\" width=\"10\" height=\"10\" fill=\"%s\"/>\n", px,
                color);
        svg_text(f, px + 14, 13, "start", "name", r->modes[i].name);
        char lab[32];
        for (double v = ybot; v <= ytop + ystep / 2; v += ystep) {
            double y = py + ph - ph * (v - ybot) / (ytop - ybot);
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>\n",
                    px, y, px + pw, y);
            snprintf(lab, sizeof(lab), "%.*f", step_decimals(ystep), v);
            svg_text(f, px - 4, y + 4, "end", "tick", lab);
        }
        for (double t = 0; t <= xtop + xstep / 2; t += xstep) {
            double x = px + pw * t / xtop;
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>\n",
                    x, py, x, py + ph);
            snprintf(lab, sizeof(lab), "%.*f", step_decimals(xstep), t);
            svg_text(f, x, py + ph + 14, "middle", "tick", lab);
        }
        svg_text(f, px + pw / 2, py + ph + 30, "middle", "axis-label", "time (s)");
        svg_text(f, 10, py + ph / 2, "middle", "axis-label vertical", "MiB");
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"frame\"/>\n",
                px, py, pw, ph);
        if (r->warmup_s > 0 && r->warmup_s < xtop) {
            double x = px + pw * r->warmup_s / xtop;
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"warmup\"/>\n",
                    x, py, x, py + ph);
        }
        for (unsigned k = 0; k < r->repeat; k++) {
            const lg_report_run_t *run = run_of(r, i, k);
            if (run->nsamples == 0) {
                continue;
            }
            fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" class=\"%s\" points=\"", color,
                    k + 1 == r->repeat ? "line last" : "line");
            bool first = true;
            for (size_t s = 0; s < run->nsamples; s++) {
                const lg_sample_t *p = &run->samples[s];
                if (isnan(p->rss_bytes)) {
                    continue;
                }
                double mib = p->rss_bytes / 1048576.0;
                fprintf(f, "%s%.1f,%.1f", first ? "" : " ", px + pw * p->t / xtop,
                        py + ph - ph * (mib - ybot) / (ytop - ybot));
                first = false;
            }
            fputs("\"/>\n", f);
        }
        fputs("</svg>\n", f);
    }
    fputs("</div>\n", f);
}

static void td_text(FILE *f, const char *s)
{
    fputs("<td>", f);
    lg_report_html_escape(f, s);
    fputs("</td>", f);
}

/* <td class="cls">text suffix</td>, text escaped (a ratio may be "<0.01x"). */
static void html_cell(FILE *f, const char *cls, const char *text, const char *suffix)
{
    fprintf(f, "<td class=\"%s\">", cls);
    lg_report_html_escape(f, text);
    fprintf(f, "%s</td>", suffix);
}

static void mode_cell(FILE *f, const char *name)
{
    fprintf(f, "<td class=\"mode\"><span class=\"swatch\" style=\"background:%s\"></span>",
            lg_report_color(name));
    lg_report_html_escape(f, name);
    fputs("</td>", f);
}

/* The summary table: per figure the median, the range and the ratio with its noise tag. */
static void html_summary(FILE *f, const lg_compare_result_t *r)
{
    static const lg_fig_t cols[] = {LG_FIG_CPU, LG_FIG_EPS, LG_FIG_ALLOCS, LG_FIG_RSS};
    static const char *const heads[] = {"CPU µs/event", "events/s", "allocations/event",
                                        "peak RSS MiB"};
    fputs("<table class=\"summary\">\n<thead><tr><th rowspan=\"2\" class=\"mode\">mode</th>", f);
    for (int k = 0; k < 4; k++) {
        fprintf(f, "<th colspan=\"2\" class=\"group\">%s</th>", heads[k]);
    }
    fputs("<th rowspan=\"2\">pool hit rate<br/><span class=\"range\">min–max</span></th></tr>\n"
          "<tr>",
          f);
    for (int k = 0; k < 4; k++) {
        fputs("<th>median<br/><span class=\"range\">min–max</span></th><th>ratio</th>", f);
    }
    fputs("</tr></thead>\n<tbody>\n", f);
    for (unsigned i = 0; i < r->nmodes; i++) {
        fprintf(f, "<tr%s>", i == r->baseline ? " class=\"baseline\"" : "");
        mode_cell(f, r->modes[i].name);
        for (int k = 0; k < 4; k++) {
            lg_stat_t s, b;
            lg_report_stat(r, i, cols[k], &s);
            lg_report_stat(r, r->baseline, cols[k], &b);
            char v[32], range[64], q[32];
            fmt_fig(v, sizeof(v), cols[k], s.median, s.res);
            fmt_range(range, sizeof(range), cols[k], &s);
            fmt_ratio(q, sizeof(q), lg_report_ratio(&s, &b));
            fprintf(f, "<td>%s<br/><span class=\"range\">%s</span></td>", v, s.n ? range : "");
            if (i == r->baseline) {
                fputs("<td class=\"ratio\">baseline</td>", f);
            } else if (s.n && b.n && lg_report_within_noise(&s, &b)) {
                html_cell(f, "ratio noise\" title=\"run ranges overlap", q, " ≈");
            } else {
                html_cell(f, "ratio", q, "");
            }
        }
        lg_stat_t h;
        lg_report_stat(r, i, LG_FIG_HIT, &h);
        char v[32], range[64];
        fmt_fig(v, sizeof(v), LG_FIG_HIT, h.median, 0);
        fmt_range(range, sizeof(range), LG_FIG_HIT, &h);
        fprintf(f, "<td>%s<br/><span class=\"range\">%s</span></td>", v, h.n ? range : "");
        fputs("</tr>\n", f);
    }
    fputs("</tbody>\n</table>\n", f);
}

/* Every pair of modes on one figure: the ratio row/column, greyed with ≈ when within noise. */
static void html_matrix(FILE *f, const lg_compare_result_t *r, lg_fig_t fig, const char *title)
{
    fprintf(f,
            "<h3>%s</h3>\n<table class=\"matrix\" data-figure=\"%s\">\n<tr><th>row ÷ column</th>",
            title, fig_keys[fig]);
    for (unsigned j = 0; j < r->nmodes; j++) {
        fprintf(f, "<th title=\"");
        lg_report_html_escape(f, r->modes[j].name);
        fprintf(f, "\"><span class=\"swatch\" style=\"background:%s\"></span>%u</th>",
                lg_report_color(r->modes[j].name), j + 1);
    }
    fputs("</tr>\n", f);
    for (unsigned i = 0; i < r->nmodes; i++) {
        lg_stat_t a;
        lg_report_stat(r, i, fig, &a);
        fprintf(f,
                "<tr><th class=\"mode\"><span class=\"swatch\" style=\"background:%s\"></span>"
                "%u ",
                lg_report_color(r->modes[i].name), i + 1);
        lg_report_html_escape(f, r->modes[i].name);
        fputs("</th>", f);
        for (unsigned j = 0; j < r->nmodes; j++) {
            lg_stat_t b;
            lg_report_stat(r, j, fig, &b);
            char q[32];
            fmt_ratio(q, sizeof(q), lg_report_ratio(&a, &b));
            if (i == j) {
                fputs("<td class=\"self\">–</td>", f);
            } else if (lg_report_within_noise(&a, &b)) {
                html_cell(f, "noise", q, " ≈");
            } else {
                html_cell(f, "", q, "");
            }
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

static void env_row(FILE *f, const char *key, const char *value)
{
    fprintf(f, "<tr><th>%s</th><td>", key);
    lg_report_html_escape(f, value && *value ? value : "unknown");
    fputs("</td></tr>\n", f);
}

static void html_env(FILE *f, const lg_compare_result_t *r)
{
    const lg_env_t *e = &r->env;
    char buf[512];
    fputs("<h2 id=\"environment\">Environment</h2>\n<table class=\"env\">\n", f);
    env_row(f, "date (UTC)", e->date);
    snprintf(buf, sizeof(buf), "%s; %u online, %u usable by loadgen",
             e->cpu_model[0] ? e->cpu_model : "unknown model", e->cpus_online, e->cpus_allowed);
    env_row(f, "CPU", buf);
    env_row(f, "kernel", e->kernel);
    env_row(f, "glibc", e->glibc);
    env_row(f, "mimalloc", e->mimalloc[0] ? e->mimalloc : "");
    env_row(f, "ingestd", e->ingestd);
    if (e->source_commit[0] || e->build_type[0]) {
        snprintf(buf, sizeof(buf),
                 "commit %s, build type %s (loadgen's build tree, at configure "
                 "time)%s",
                 e->source_commit[0] ? e->source_commit : "unknown",
                 e->build_type[0] ? e->build_type : "unknown",
                 e->server_in_build ? "; the ingestd binary is from the same build"
                                    : "; the ingestd binary is from elsewhere");
    } else {
        buf[0] = '\0';
    }
    env_row(f, "source", buf);
    if (e->pin_server >= 0) {
        snprintf(buf, sizeof(buf), "server on CPU %d, loadgen on CPU %d", e->pin_server,
                 e->pin_loadgen);
    } else {
        snprintf(buf, sizeof(buf), "none (the scheduler placed server and loadgen)");
    }
    env_row(f, "pinning", buf);
    snprintf(buf, sizeof(buf),
             "%llu events per run over %s, %u connection%s, %u server worker%s, "
             "%.1f s warm-up excluded",
             (unsigned long long)r->events_per_run,
             strcmp(r->transport, "http") == 0 ? "HTTP" : "TCP", r->connections,
             r->connections == 1 ? "" : "s", r->workers, r->workers == 1 ? "" : "s", r->warmup_s);
    env_row(f, "load", buf);
    env_row(f, "server binary", r->server);
    fputs("</table>\n", f);
}

static void html_runs(FILE *f, const lg_compare_result_t *r)
{
    fputs("<h2 id=\"runs\">Every run, in the order run</h2>\n<table class=\"runs\">\n"
          "<thead><tr><th>#</th><th class=\"mode\">mode</th><th>events/s</th><th>CPU µs/event</th>"
          "<th>allocations/event</th><th>peak RSS MiB</th><th>lost</th><th>server exit</th>"
          "</tr></thead>\n<tbody>\n",
          f);
    for (unsigned k = 0; k < r->repeat; k++) {
        for (unsigned i = 0; i < r->nmodes; i++) {
            const lg_report_run_t *run = run_of(r, i, k);
            fprintf(f, "<tr%s><td>%u</td>", run->ok ? "" : " class=\"failed\"",
                    k * r->nmodes + i + 1);
            mode_cell(f, r->modes[i].name);
            static const lg_fig_t cols[] = {LG_FIG_EPS, LG_FIG_CPU, LG_FIG_ALLOCS, LG_FIG_RSS};
            for (int c = 0; c < 4; c++) {
                char v[32];
                fmt_fig(v, sizeof(v), cols[c], run->fig[cols[c]], run->cpu_res_us);
                td_text(f, v);
            }
            fprintf(f, "<td>%lld</td><td>%d</td></tr>\n", (long long)run->lost, run->exit_status);
        }
    }
    fputs("</tbody>\n</table>\n", f);
}

static const char css[] =
    "body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1000px;color:#222;"
    "padding:0 1em}"
    "h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}"
    "h3{font-size:1em}"
    ".verdict{font-size:1.1em;background:#eef4fb;border-left:4px solid #1f77b4;padding:.6em 1em}"
    ".note{color:#555;font-size:.9em}"
    "table{border-collapse:collapse;font-size:.9em;margin:.5em 0}"
    "td,th{padding:3px 8px;border-bottom:1px solid #e4e4e4;text-align:right;white-space:nowrap}"
    "td.mode,th.mode,.env th,.env td{text-align:left}"
    ".env td{white-space:normal}"
    "th.group{text-align:center;border-bottom:1px solid #bbb}"
    ".range{color:#777;font-size:.85em;font-weight:400}td.noise{background:#f0f0f0;color:#777}"
    "tr.baseline td{font-weight:600}tr.failed td{background:#fde8e8}"
    ".swatch{display:inline-block;width:.8em;height:.8em;margin-right:.4em;"
    "vertical-align:baseline;border-radius:2px}"
    "pre.cmd{background:#f4f4f4;padding:.6em;white-space:pre-wrap;word-break:break-all}"
    "figure{margin:1em 0}figcaption{font-weight:600;margin-bottom:.2em}"
    "svg text{font-family:system-ui,sans-serif;fill:#222}"
    "svg .tick{font-size:11px;fill:#555}svg .axis-label{font-size:12px;fill:#444}"
    "svg .colhead{font-size:11px;fill:#666}svg .name{font-size:12.5px}svg "
    ".value{font-size:12.5px}svg .value.noise{fill:#888}"
    "svg .grid{stroke:#e6e6e6}svg .axis{stroke:#888}svg .stripe{fill:#fafafa}"
    "svg.chart{max-width:100%;height:auto}svg .bar{opacity:.85}svg "
    ".whisker{stroke:#222;stroke-width:1.3;fill:none}"
    "svg .run{fill:#fff;stroke:#222;stroke-width:1.2}"
    "svg .frame{fill:none;stroke:#bbb}svg .warmup{stroke:#999;stroke-dasharray:4 3}"
    "svg .line{stroke-width:1.2;opacity:.45}svg .line.last{stroke-width:2;opacity:1}"
    ".panels{display:flex;flex-wrap:wrap;gap:4px 12px}"
    ".vertical{writing-mode:vertical-rl}";

int lg_report_write_html(FILE *f, const lg_compare_result_t *r)
{
    char verdict[1024];
    lg_report_verdict(r, verdict, sizeof(verdict));
    const char *bname = r->modes[r->baseline].name;
    fprintf(f,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
            "<meta name=\"viewport\" content=\"width=device-width\"/>\n"
            "<title>loadgen compare: ingestd memory modes</title>\n<style>%s</style>\n</head>\n"
            "<body>\n<h1>ingestd memory modes, side by side</h1>\n",
            css);
    fputs("<p class=\"verdict\" id=\"verdict\">", f);
    lg_report_html_escape(f, verdict);
    fputs("</p>\n", f);

    lg_stat_t cpu;
    lg_report_stat(r, r->baseline, LG_FIG_CPU, &cpu);
    fprintf(f,
            "<p class=\"note\">%u mode%s × %u run%s each, modes alternating (A B C … A B C …). "
            "Bars are medians; the black whisker spans the fastest to the slowest run and each "
            "circle is one run. Ratios are to <b>",
            r->nmodes, r->nmodes == 1 ? "" : "s", r->repeat, r->repeat == 1 ? "" : "s");
    lg_report_html_escape(f, bname);
    fputs("</b>. Two modes are <i>within noise</i> (≈) when the ranges of their runs overlap: "
          "those runs cannot tell them apart.",
          f);
    if (r->repeat < 2) {
        fputs(" With one run per mode there is no run-to-run spread: only differences smaller "
              "than the measurement resolution count as noise, and real noise may be larger.",
              f);
    }
    fputs("</p>\n", f);
    if (cpu.res > 0) {
        fprintf(f,
                "<p class=\"note\" id=\"precision\">Precision: the server's CPU time comes from "
                "/proc in ticks of %.0f ms, so over %llu events one tick is %.3g µs per event. CPU "
                "per event is shown to %d decimal%s; the JSON keeps the full value and the "
                "resolution.</p>\n",
                r->env.tick_s * 1000, (unsigned long long)r->events_per_run, cpu.res,
                lg_report_decimals(cpu.res), lg_report_decimals(cpu.res) == 1 ? "" : "s");
    }
    if (!r->ok) {
        fputs("<p class=\"verdict\" style=\"border-color:#d62728;background:#fde8e8\">Some runs "
              "failed (lost events or a bad server exit): see the table of every run.</p>\n",
              f);
    }

    fputs("<h2 id=\"summary\">Summary</h2>\n", f);
    html_summary(f, r);

    fputs("<h2 id=\"charts\">Charts</h2>\n", f);
    char axis[128];
    snprintf(axis, sizeof(axis), "server CPU µs per event (lower is better)");
    svg_fig_chart(f, r, LG_FIG_CPU, "Server CPU per event", axis, 1);
    svg_fig_chart(f, r, LG_FIG_EPS, "Throughput", "thousand events per second (higher is better)",
                  1000);
    svg_fig_chart(f, r, LG_FIG_ALLOCS, "Heap allocations per event",
                  "allocations per event (lower is better)", 1);
    svg_fig_chart(f, r, LG_FIG_RSS, "Peak server RSS", "MiB (lower is better)", 1048576.0);
    svg_rss(f, r);

    fputs("<h2 id=\"pairs\">Every pair of modes</h2>\n<p class=\"note\">Each cell is the row "
          "mode's median over the column mode's; grey with ≈ when their runs overlap.</p>\n",
          f);
    html_matrix(f, r, LG_FIG_CPU, "CPU per event");
    html_matrix(f, r, LG_FIG_EPS, "Throughput");

    html_env(f, r);
    fputs("<h2 id=\"command\">Command</h2>\n<pre class=\"cmd\" id=\"argv\">", f);
    char *cmd = shell_string(r);
    lg_report_html_escape(f, cmd ? cmd : "");
    free(cmd);
    fputs("</pre>\n", f);
    html_runs(f, r);
    fputs("</body>\n</html>\n", f);
    return ferror(f) ? -EIO : 0;
}

/* ---- the environment ---- */

/* Runs argv (PATH searched) with stdout captured into buf (first line, trimmed) and stderr to
 * /dev/null, for at most timeout_ms. Returns 0 or -1. */
static int capture(char *const *argv, char *buf, size_t n, int timeout_ms)
{
    buf[0] = '\0';
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (nul >= 0) {
            dup2(nul, 0);
            dup2(nul, 2);
        }
        dup2(fds[1], 1);
        signal(SIGPIPE, SIG_DFL);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    int waited = 0;
    while (len + 1 < n && waited < timeout_ms) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int rc = poll(&p, 1, 50);
        if (rc < 0 && errno != EINTR) {
            break;
        }
        if (rc <= 0) {
            waited += 50;
            continue;
        }
        ssize_t got = read(fds[0], buf + len, n - 1 - len);
        if (got <= 0) {
            break;
        }
        len += (size_t)got;
    }
    buf[len] = '\0';
    close(fds[0]);
    /* Give it a moment to exit after its output; a program that does not is killed. */
    int st = 0;
    pid_t done = 0;
    for (int i = 0; i < 100 && (done = waitpid(pid, &st, WNOHANG)) == 0; i++) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (done == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        buf[0] = '\0';
        return -1;
    }
    buf[strcspn(buf, "\n")] = '\0';
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 && buf[0] ? 0 : -1;
}

static void cpu_model(char *buf, size_t n)
{
    buf[0] = '\0';
    FILE *f = fopen("/proc/cpuinfo", "re");
    if (!f) {
        return;
    }
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "model name", 10) == 0 || strncmp(line, "Hardware", 8) == 0) {
            const char *v = strchr(line, ':');
            if (v) {
                v++;
                v += strspn(v, " \t");
                snprintf(buf, n, "%.*s", (int)strcspn(v, "\n"), v);
                break;
            }
        }
    }
    fclose(f);
}

static bool under_dir(const char *path, const char *dir)
{
    char a[PATH_MAX], b[PATH_MAX];
    if (!dir[0] || !realpath(path, a) || !realpath(dir, b)) {
        return false;
    }
    size_t l = strlen(b);
    return strncmp(a, b, l) == 0 && a[l] == '/';
}

void lg_env_collect(lg_env_t *env, const char *server)
{
    int pin_s = env->pin_server, pin_l = env->pin_loadgen;
    memset(env, 0, sizeof(*env));
    env->pin_server = pin_s;
    env->pin_loadgen = pin_l;
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm)) {
        strftime(env->date, sizeof(env->date), "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    cpu_model(env->cpu_model, sizeof(env->cpu_model));
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    env->cpus_online = online > 0 ? (unsigned)online : 0;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        env->cpus_allowed = (unsigned)CPU_COUNT(&set);
    }
    struct utsname u;
    if (uname(&u) == 0) {
        snprintf(env->kernel, sizeof(env->kernel), "%.20s %.64s %.120s %.20s", u.sysname, u.release,
                 u.version, u.machine);
    }
    snprintf(env->glibc, sizeof(env->glibc), "%s", gnu_get_libc_version());
    /* The server dlopens libmimalloc.so.2 and does not report its version; Debian's package
     * version is the next best thing. */
    char *dpkg[] = {"dpkg-query", "-W", "-f", "${Version}\\n", "libmimalloc2.0", NULL};
    if (capture(dpkg, env->mimalloc, sizeof(env->mimalloc), 3000) != 0) {
        env->mimalloc[0] = '\0';
    } else {
        char tmp[sizeof(env->mimalloc)];
        snprintf(tmp, sizeof(tmp), "%s", env->mimalloc);
        snprintf(env->mimalloc, sizeof(env->mimalloc), "libmimalloc2.0 %.40s (dpkg)", tmp);
    }
    if (server) {
        char *ver[] = {(char *)server, "--version", NULL};
        if (capture(ver, env->ingestd, sizeof(env->ingestd), 3000) != 0) {
            env->ingestd[0] = '\0';
        }
        env->server_in_build = under_dir(server, LG_BUILD_DIR);
    }
    snprintf(env->source_commit, sizeof(env->source_commit), "%s", LG_SOURCE_COMMIT);
    snprintf(env->build_type, sizeof(env->build_type), "%s", LG_BUILD_TYPE);
    long tck = sysconf(_SC_CLK_TCK);
    env->tick_s = tck > 0 ? 1.0 / (double)tck : NAN;
}
