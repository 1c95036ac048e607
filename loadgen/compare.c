/* compare.c - `loadgen compare`: one ingestd per run and mode, medians, table, JSON, HTML. */
#include "lg_compare.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int lg_mode_parse(const char *name, lg_mode_t *out)
{
    memset(out, 0, sizeof(*out));
    const char *plus = strchr(name, '+');
    if (!plus) {
        return -EINVAL;
    }
    size_t n = (size_t)(plus - name);
    if ((n == 5 && strncmp(name, "naive", 5) == 0) || (n == 3 && strncmp(name, "off", 3) == 0)) {
        out->pool = false;
    } else if ((n == 4 && strncmp(name, "pool", 4) == 0) ||
               (n == 6 && strncmp(name, "pooled", 6) == 0) ||
               (n == 2 && strncmp(name, "on", 2) == 0)) {
        out->pool = true;
    } else {
        return -EINVAL;
    }
    if (strcmp(plus + 1, "libc") != 0 && strcmp(plus + 1, "mimalloc") != 0) {
        return -EINVAL;
    }
    snprintf(out->allocator, sizeof(out->allocator), "%s", plus + 1);
    snprintf(out->name, sizeof(out->name), "%s+%s", out->pool ? "pool" : "naive", out->allocator);
    return 0;
}

int lg_modes_parse(const char *list, lg_compare_config_t *cfg)
{
    char buf[512];
    if (strlen(list) >= sizeof(buf)) {
        return -EINVAL;
    }
    strcpy(buf, list);
    cfg->nmodes = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (cfg->nmodes == LG_MAX_MODES || lg_mode_parse(tok, &cfg->modes[cfg->nmodes]) != 0) {
            return -EINVAL;
        }
        cfg->nmodes++;
    }
    return cfg->nmodes ? 0 : -EINVAL;
}

void lg_compare_config_default(lg_compare_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    lg_modes_parse("naive+libc,naive+mimalloc,pool+libc,pool+mimalloc", cfg);
    cfg->repeat = 3;
    cfg->pin_server = -1;
    cfg->pin_loadgen = -1;
    cfg->workers = 1;
    lg_run_config_default(&cfg->run);
    cfg->run.events = 150000;
    cfg->run.warmup_s = 0.3;
    cfg->start_timeout_s = 10;
    cfg->stop_timeout_s = 20;
}

/* The figures of one run. */
typedef struct {
    double events_per_s, cpu_us, allocs, rss, hit;
    int64_t lost;
    int exit_status; /* waitpid status decoded: exit code, or 128 + signal, -1 unknown */
    bool ok;
    lg_sample_t *samples;
    size_t nsamples;
    json_t *json;
} run_fig_t;

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int pin_to(pid_t pid, int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(pid, sizeof(set), &set) == 0 ? 0 : -errno;
}

/* Finds "key=HOST:PORT" in text and parses it as a URL of scheme. */
static int find_addr(const char *text, const char *key, const char *scheme, const char *path,
                     lg_url_t *out)
{
    const char *p = text;
    size_t kl = strlen(key);
    while ((p = strstr(p, key)) != NULL) {
        if (p == text || p[-1] == ' ' || p[-1] == '\t' || p[-1] == ',' || p[-1] == '"') {
            break;
        }
        p += kl;
    }
    if (!p) {
        return -ENOENT;
    }
    p += kl;
    size_t n = strcspn(p, " \t\r\n,\"");
    char url[400];
    if (n == 0 || n > 300) {
        return -EINVAL;
    }
    snprintf(url, sizeof(url), "%s://%.*s%s", scheme, (int)n, p, path);
    return lg_url_parse(url, out);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (len + 1024 >= cap) {
            char *p = realloc(buf, cap * 2);
            if (!p) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = p;
            cap *= 2;
        }
        size_t r = fread(buf + len, 1, cap - len - 1, f);
        len += r;
        if (r == 0) {
            buf[len] = '\0';
            break;
        }
    }
    fclose(f);
    return buf;
}

static int decode_status(int st)
{
    if (WIFEXITED(st)) {
        return WEXITSTATUS(st);
    }
    if (WIFSIGNALED(st)) {
        return 128 + WTERMSIG(st);
    }
    return -1;
}

/* Waits up to timeout_s for pid; returns the decoded status or -1 on timeout. */
static int wait_exit(pid_t pid, double timeout_s)
{
    for (long waited = 0; waited <= (long)(timeout_s * 1000); waited += 10) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            return decode_status(st);
        }
        if (r < 0) {
            return -1;
        }
        sleep_ms(10);
    }
    return -1;
}

static void print_log_tail(const char *log)
{
    char *text = read_file(log);
    if (!text) {
        return;
    }
    size_t len = strlen(text);
    const char *from = len > 2000 ? text + len - 2000 : text;
    fprintf(stderr, "--- server log %s (tail) ---\n%s\n---\n", log, from);
    free(text);
}

/* Starts, loads, scrapes and stops one server. Returns 0 or -1 (message on stderr). */
static int one_run(const lg_compare_config_t *cfg, const lg_mode_t *m, unsigned rep,
                   const char *dir, run_fig_t *fig)
{
    char log[512], workers[16];
    snprintf(log, sizeof(log), "%s/%s-%u.log", dir, m->name, rep);
    snprintf(workers, sizeof(workers), "%u", cfg->workers);
    const char *argv[32 + LG_MAX_SERVER_ARGS];
    unsigned ac = 0;
    argv[ac++] = cfg->server;
    argv[ac++] = "--tcp";
    argv[ac++] = "127.0.0.1:0";
    argv[ac++] = "--http";
    argv[ac++] = "127.0.0.1:0";
    argv[ac++] = "--admin";
    argv[ac++] = "127.0.0.1:0";
    argv[ac++] = "--workers";
    argv[ac++] = workers;
    argv[ac++] = "--pool";
    argv[ac++] = m->pool ? "on" : "off";
    argv[ac++] = "--allocator";
    argv[ac++] = m->allocator;
    for (unsigned i = 0; i < cfg->nserver_args; i++) {
        argv[ac++] = cfg->server_args[i];
    }
    argv[ac] = NULL;

    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        perror("loadgen: fork");
        return -1;
    }
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (fd < 0 || nul < 0) {
            _exit(126);
        }
        dup2(nul, 0);
        dup2(nul, 1);
        dup2(fd, 2);
        if (cfg->pin_server >= 0) {
            pin_to(0, cfg->pin_server);
        }
        signal(SIGPIPE, SIG_DFL);
        /* If loadgen dies, the server drains and exits rather than running on. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) {
            _exit(125);
        }
        execv(cfg->server, (char *const *)argv);
        _exit(127);
    }
    lg_url_t tcp, http, admin;
    int found = -1;
    for (long waited = 0; waited <= (long)(cfg->start_timeout_s * 1000); waited += 20) {
        char *text = read_file(log);
        if (text) {
            found = find_addr(text, "tcp=", "tcp", "", &tcp) == 0 &&
                            find_addr(text, "http=", "http", "/v1/events", &http) == 0 &&
                            find_addr(text, "admin=", "http", "/metrics", &admin) == 0
                        ? 0
                        : -1;
            free(text);
        }
        if (found == 0 || waitpid(pid, NULL, WNOHANG) != 0) {
            break;
        }
        sleep_ms(20);
    }
    bool ready = false;
    if (found == 0) {
        for (long waited = 0; waited <= (long)(cfg->start_timeout_s * 1000); waited += 20) {
            if (lg_http_ok(&admin, "/readyz", 1000)) {
                ready = true;
                break;
            }
            sleep_ms(20);
        }
    }
    if (!ready) {
        fprintf(stderr, "loadgen: %s did not become ready (%s)\n", cfg->server, m->name);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        print_log_tail(log);
        unlink(log);
        return -1;
    }

    lg_run_config_t rc = cfg->run;
    rc.target = cfg->http ? http : tcp;
    rc.has_metrics = true;
    rc.metrics = admin;
    rc.server_pid = pid;
    lg_run_result_t res;
    int err = lg_run(&rc, &res);
    fig->events_per_s = res.events_per_s;
    fig->cpu_us = res.cpu_us_per_event;
    fig->allocs = res.allocs_per_event;
    fig->rss = res.peak_rss_bytes;
    fig->hit = res.pool_hit_rate;
    fig->lost = res.lost;
    fig->samples = res.samples;
    fig->nsamples = res.nsamples;
    res.samples = NULL;
    res.nsamples = 0;
    fig->json = lg_run_json(&rc, &res);
    json_object_set_new(fig->json, "mode", json_string(m->name));
    json_object_set_new(fig->json, "repeat", json_integer(rep));
    json_object_set_new(fig->json, "server_pid", json_integer(pid));
    if (err != 0) {
        fprintf(stderr, "loadgen: run %s #%u failed: %s\n", m->name, rep + 1, res.error);
    } else if (res.lost != 0) {
        fprintf(stderr, "loadgen: run %s #%u LOST %lld events\n", m->name, rep + 1,
                (long long)res.lost);
    }
    lg_run_result_free(&res);

    kill(pid, SIGTERM);
    fig->exit_status = wait_exit(pid, cfg->stop_timeout_s);
    if (fig->exit_status == -1) {
        fprintf(stderr, "loadgen: %s did not exit within %.0f s of SIGTERM; killed\n", m->name,
                cfg->stop_timeout_s);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    } else if (fig->exit_status != 0) {
        fprintf(stderr, "loadgen: %s exited with status %d after SIGTERM\n", m->name,
                fig->exit_status);
    }
    json_object_set_new(fig->json, "server_exit_status", json_integer(fig->exit_status));
    fig->ok = err == 0 && res.lost == 0 && fig->exit_status == 0;
    if (!fig->ok) {
        print_log_tail(log);
    }
    unlink(log);
    return fig->ok ? 0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median over the non-NaN values; NAN if none. */
static double median(const double *v, unsigned n)
{
    double tmp[64];
    unsigned k = 0;
    for (unsigned i = 0; i < n && k < 64; i++) {
        if (!isnan(v[i])) {
            tmp[k++] = v[i];
        }
    }
    if (k == 0) {
        return NAN;
    }
    qsort(tmp, k, sizeof(double), cmp_double);
    return k % 2 ? tmp[k / 2] : (tmp[k / 2 - 1] + tmp[k / 2]) / 2;
}

/* (max - min) / median over the non-NaN values, as a share; NAN with fewer than two. */
static double spread(const double *v, unsigned n)
{
    double lo = INFINITY, hi = -INFINITY;
    unsigned k = 0;
    for (unsigned i = 0; i < n; i++) {
        if (!isnan(v[i])) {
            lo = fmin(lo, v[i]);
            hi = fmax(hi, v[i]);
            k++;
        }
    }
    double m = median(v, n);
    return (k < 2 || isnan(m) || m == 0) ? NAN : (hi - lo) / m;
}

enum { F_EPS, F_CPU, F_ALLOCS, F_RSS, F_HIT, F_COUNT };
static const char *const field_names[F_COUNT] = {
    "events_per_s", "cpu_us_per_event", "allocs_per_event", "peak_rss_bytes", "pool_hit_rate"};

static double fig_field(const run_fig_t *f, int k)
{
    switch (k) {
    case F_EPS:
        return f->events_per_s;
    case F_CPU:
        return f->cpu_us;
    case F_ALLOCS:
        return f->allocs;
    case F_RSS:
        return f->rss;
    default:
        return f->hit;
    }
}

static json_t *jnum(double v)
{
    return isnan(v) || isinf(v) ? json_null() : json_real(v);
}

static double ratio(double v, double base)
{
    return (isnan(v) || isnan(base) || base == 0) ? NAN : v / base;
}

/* ---- HTML ---- */

static const char *const colors[LG_MAX_MODES] = {"#d62728", "#ff7f0e", "#1f77b4", "#2ca02c",
                                                 "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};

static void svg_bars(FILE *f, const char *title, const char *unit, const lg_compare_config_t *cfg,
                     const double *vals, int prec)
{
    double max = 0;
    for (unsigned i = 0; i < cfg->nmodes; i++) {
        if (!isnan(vals[i]) && vals[i] > max) {
            max = vals[i];
        }
    }
    unsigned h = 30 * cfg->nmodes + 40;
    fprintf(f,
            "<h2>%s</h2>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"%u\" "
            "role=\"img\">\n",
            title, h);
    for (unsigned i = 0; i < cfg->nmodes; i++) {
        double v = vals[i];
        double w = (max > 0 && !isnan(v)) ? 440.0 * v / max : 0;
        unsigned y = 10 + 30 * i;
        fprintf(f, "<text x=\"150\" y=\"%u\" text-anchor=\"end\" font-size=\"13\">%s</text>\n",
                y + 16, cfg->modes[i].name);
        fprintf(f, "<rect x=\"160\" y=\"%u\" width=\"%.1f\" height=\"22\" fill=\"%s\"/>\n", y, w,
                colors[i]);
        char num[64];
        if (isnan(v)) {
            snprintf(num, sizeof(num), "n/a");
        } else {
            snprintf(num, sizeof(num), "%.*f", prec, v);
        }
        fprintf(f, "<text x=\"%.1f\" y=\"%u\" font-size=\"13\">%s %s</text>\n", 166 + w, y + 16,
                num, unit);
    }
    fprintf(f, "</svg>\n");
}

static void svg_rss(FILE *f, const lg_compare_config_t *cfg, run_fig_t *const *last)
{
    double tmax = 0, rmax = 0;
    for (unsigned i = 0; i < cfg->nmodes; i++) {
        for (size_t k = 0; last[i] && k < last[i]->nsamples; k++) {
            tmax = fmax(tmax, last[i]->samples[k].t);
            rmax = fmax(rmax, last[i]->samples[k].rss_bytes / 1048576.0);
        }
    }
    if (tmax <= 0) {
        tmax = 1;
    }
    if (rmax <= 0) {
        rmax = 1;
    }
    rmax *= 1.1;
    const double x0 = 60, y0 = 20, w = 600, h = 260;
    fprintf(f,
            "<h2>Server RSS over time (last run of each mode)</h2>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"%.0f\" "
            "role=\"img\">\n",
            h + 60 + 20.0 * cfg->nmodes);
    fprintf(f,
            "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
            "stroke=\"#999\"/>\n",
            x0, y0, w, h);
    for (int g = 0; g <= 4; g++) {
        double y = y0 + h - h * g / 4.0;
        fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%.1f</text>\n",
                x0 - 4, y + 4, rmax * g / 4.0);
        double x = x0 + w * g / 4.0;
        fprintf(f,
                "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\" font-size=\"11\">%.2f s"
                "</text>\n",
                x, y0 + h + 16, tmax * g / 4.0);
    }
    fprintf(f, "<text x=\"10\" y=\"14\" font-size=\"11\">MiB</text>\n");
    for (unsigned i = 0; i < cfg->nmodes; i++) {
        if (!last[i] || last[i]->nsamples == 0) {
            continue;
        }
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", colors[i]);
        for (size_t k = 0; k < last[i]->nsamples; k++) {
            const lg_sample_t *s = &last[i]->samples[k];
            fprintf(f, "%s%.1f,%.1f", k ? " " : "", x0 + w * s->t / tmax,
                    y0 + h - h * (s->rss_bytes / 1048576.0) / rmax);
        }
        fprintf(f, "\"/>\n");
    }
    for (unsigned i = 0; i < cfg->nmodes; i++) {
        double y = y0 + h + 36 + 20.0 * i;
        fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"14\" height=\"4\" fill=\"%s\"/>\n", x0,
                y - 4, colors[i]);
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\">%s</text>\n", x0 + 20, y,
                cfg->modes[i].name);
    }
    fprintf(f, "</svg>\n");
}

static int write_html(const char *path, const lg_compare_config_t *cfg, double med[][F_COUNT],
                      run_fig_t *const *last, const run_fig_t *figs, const char *cmdline)
{
    FILE *f = fopen(path, "we");
    if (!f) {
        return -errno;
    }
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
               "<title>loadgen compare</title>\n<style>body{font-family:sans-serif;margin:2em;"
               "max-width:60em}table{border-collapse:collapse}td,th{padding:4px 10px;"
               "border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child{"
               "text-align:left}code{background:#f4f4f4}</style>\n</head>\n<body>\n"
               "<h1>ingestd memory modes, side by side</h1>\n");
    fprintf(f,
            "<p>%u run%s per mode, modes alternating; medians. Load: %llu events per run "
            "over %s, %u connection%s, %u server worker%s.</p>\n",
            cfg->repeat, cfg->repeat == 1 ? "" : "s", (unsigned long long)cfg->run.events,
            cfg->http ? "HTTP" : "TCP", cfg->run.connections, cfg->run.connections == 1 ? "" : "s",
            cfg->workers, cfg->workers == 1 ? "" : "s");
    fprintf(f, "<p><code>");
    for (const char *c = cmdline; *c; c++) {
        if (*c == '<') {
            fputs("&lt;", f);
        } else if (*c == '>') {
            fputs("&gt;", f);
        } else if (*c == '&') {
            fputs("&amp;", f);
        } else {
            fputc(*c, f);
        }
    }
    fprintf(f, "</code></p>\n<table>\n<tr><th>mode</th><th>events/s</th><th>CPU &#181;s/event"
               "</th><th>allocations/event</th><th>peak RSS MiB</th><th>pool hit rate</th>"
               "</tr>\n");
    for (unsigned i = 0; i < cfg->nmodes; i++) {
        fprintf(f, "<tr><td>%s</td><td>%.0f</td><td>%.3f</td><td>%.4f</td><td>%.1f</td>",
                cfg->modes[i].name, med[i][F_EPS], med[i][F_CPU], med[i][F_ALLOCS],
                med[i][F_RSS] / 1048576.0);
        if (isnan(med[i][F_HIT])) {
            fprintf(f, "<td>n/a</td></tr>\n");
        } else {
            fprintf(f, "<td>%.3f%%</td></tr>\n", 100 * med[i][F_HIT]);
        }
    }
    fprintf(f, "</table>\n");
    double v[LG_MAX_MODES];
    for (unsigned i = 0; i < cfg->nmodes; i++) {
        v[i] = med[i][F_CPU];
    }
    svg_bars(f, "Server CPU per event (lower is better)", "&#181;s", cfg, v, 3);
    for (unsigned i = 0; i < cfg->nmodes; i++) {
        v[i] = med[i][F_EPS];
    }
    svg_bars(f, "Throughput (higher is better)", "events/s", cfg, v, 0);
    for (unsigned i = 0; i < cfg->nmodes; i++) {
        v[i] = med[i][F_ALLOCS];
    }
    svg_bars(f, "Heap allocations per event", "", cfg, v, 4);
    svg_rss(f, cfg, last);
    fprintf(f, "<h2>Every run, in the order run</h2>\n<table>\n<tr><th>run</th><th>mode</th>"
               "<th>events/s</th><th>CPU &#181;s/event</th><th>allocations/event</th>"
               "<th>peak RSS MiB</th><th>lost</th><th>server exit</th></tr>\n");
    for (unsigned r = 0; r < cfg->repeat; r++) {
        for (unsigned i = 0; i < cfg->nmodes; i++) {
            const run_fig_t *g = &figs[r * cfg->nmodes + i];
            fprintf(f,
                    "<tr><td>%u</td><td>%s</td><td>%.0f</td><td>%.3f</td><td>%.4f</td>"
                    "<td>%.1f</td><td>%lld</td><td>%d</td></tr>\n",
                    r * cfg->nmodes + i + 1, cfg->modes[i].name, g->events_per_s, g->cpu_us,
                    g->allocs, g->rss / 1048576.0, (long long)g->lost, g->exit_status);
        }
    }
    fprintf(f, "</table>\n</body>\n</html>\n");
    return fclose(f) == 0 ? 0 : -EIO;
}

/* ---- table ---- */

static void cell(char *buf, size_t n, double v, int prec, const char *suffix)
{
    if (isnan(v)) {
        snprintf(buf, n, "n/a");
    } else {
        snprintf(buf, n, "%.*f%s", prec, v, suffix);
    }
}

static void print_table(const lg_compare_config_t *cfg, double med[][F_COUNT], unsigned base)
{
    printf("%-15s %11s %6s %12s %6s %12s %6s %10s %6s %9s\n", "mode", "events/s", "ratio",
           "CPU us/ev", "ratio", "allocs/ev", "ratio", "peak MiB", "ratio", "pool hit");
    for (unsigned i = 0; i < cfg->nmodes; i++) {
        char c[10][32];
        cell(c[0], 32, med[i][F_EPS], 0, "");
        cell(c[1], 32, ratio(med[i][F_EPS], med[base][F_EPS]), 2, "x");
        cell(c[2], 32, med[i][F_CPU], 3, "");
        cell(c[3], 32, ratio(med[i][F_CPU], med[base][F_CPU]), 2, "x");
        cell(c[4], 32, med[i][F_ALLOCS], 4, "");
        cell(c[5], 32, ratio(med[i][F_ALLOCS], med[base][F_ALLOCS]), 3, "x");
        cell(c[6], 32, med[i][F_RSS] / 1048576.0, 1, "");
        cell(c[7], 32, ratio(med[i][F_RSS], med[base][F_RSS]), 2, "x");
        cell(c[8], 32, 100 * med[i][F_HIT], 2, "%");
        printf("%-15s %11s %6s %12s %6s %12s %6s %10s %6s %9s\n", cfg->modes[i].name, c[0], c[1],
               c[2], c[3], c[4], c[5], c[6], c[7], c[8]);
    }
}

int lg_compare(const lg_compare_config_t *cfg)
{
    if (cfg->nmodes == 0 || cfg->repeat == 0 || cfg->repeat > 64 || !cfg->server) {
        return -EINVAL;
    }
    if (access(cfg->server, X_OK) != 0) {
        fprintf(stderr, "loadgen: %s: not an executable\n", cfg->server);
        return -ENOENT;
    }
    lg_compare_config_t pinned = *cfg;
    if (cfg->pin_server >= 0) {
        cpu_set_t allowed;
        CPU_ZERO(&allowed);
        if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0 ||
            !CPU_ISSET(cfg->pin_server, &allowed) || !CPU_ISSET(cfg->pin_loadgen, &allowed) ||
            pin_to(0, cfg->pin_loadgen) != 0) {
            fprintf(stderr, "loadgen: CPUs %d,%d are not both available here; running unpinned\n",
                    cfg->pin_server, cfg->pin_loadgen);
            pinned.pin_server = pinned.pin_loadgen = -1;
        }
    }
    cfg = &pinned;
    char dir[] = "/tmp/loadgen-compare.XXXXXX";
    if (!mkdtemp(dir)) {
        return -errno;
    }
    unsigned nm = cfg->nmodes, nr = cfg->repeat;
    run_fig_t *figs = calloc((size_t)nm * nr, sizeof(*figs));
    if (!figs) {
        rmdir(dir);
        return -ENOMEM;
    }
    int failures = 0;
    for (unsigned r = 0; r < nr; r++) {
        for (unsigned i = 0; i < nm; i++) {
            run_fig_t *f = &figs[r * nm + i];
            f->events_per_s = f->cpu_us = f->allocs = f->rss = f->hit = NAN;
            if (isatty(2)) {
                fprintf(stderr, "\rrun %u/%u: %-15s", r * nm + i + 1, nm * nr, cfg->modes[i].name);
            }
            if (one_run(cfg, &cfg->modes[i], r, dir, f) != 0) {
                failures++;
            }
        }
    }
    if (isatty(2)) {
        fprintf(stderr, "\r%40s\r", "");
    }
    rmdir(dir);

    double med[LG_MAX_MODES][F_COUNT], spr[LG_MAX_MODES][F_COUNT];
    run_fig_t *last[LG_MAX_MODES];
    unsigned base = 0;
    for (unsigned i = 0; i < nm; i++) {
        if (strcmp(cfg->modes[i].name, "naive+libc") == 0) {
            base = i;
        }
        double v[64];
        for (int k = 0; k < F_COUNT; k++) {
            for (unsigned r = 0; r < nr; r++) {
                v[r] = fig_field(&figs[r * nm + i], k);
            }
            med[i][k] = median(v, nr);
            spr[i][k] = spread(v, nr);
        }
        last[i] = &figs[(nr - 1) * nm + i];
    }

    char cmdline[256];
    snprintf(cmdline, sizeof(cmdline),
             "loadgen compare --server %s --events %llu --repeat %u --workers %u%s", cfg->server,
             (unsigned long long)cfg->run.events, nr, cfg->workers, cfg->http ? " --http" : "");
    printf("loadgen compare: %u modes x %u runs (alternating), %llu events per run over %s, "
           "medians; ratios to %s\n",
           nm, nr, (unsigned long long)cfg->run.events, cfg->http ? "HTTP" : "TCP",
           cfg->modes[base].name);
    print_table(cfg, med, base);
    if (nr > 1) {
        printf("spread over runs, (max-min)/median of CPU us/event:");
        for (unsigned i = 0; i < nm; i++) {
            printf(" %s %.1f%%%s", cfg->modes[i].name, 100 * spr[i][F_CPU], i + 1 < nm ? "," : "");
        }
        printf("\n");
    }
    printf("%s\n", failures ? "FAILED: see the messages above (lost events or a bad server exit)"
                            : "every run: accepted + rejected == sent, server exited 0 on SIGTERM");

    int rc = failures ? 1 : 0;
    if (cfg->json_path) {
        json_t *root = json_object();
        json_t *modes = json_array();
        for (unsigned i = 0; i < nm; i++) {
            json_t *m = json_object(), *jm = json_object(), *jr = json_object(),
                   *js = json_object(), *runs = json_array();
            json_object_set_new(m, "name", json_string(cfg->modes[i].name));
            json_object_set_new(m, "pool", json_boolean(cfg->modes[i].pool));
            json_object_set_new(m, "allocator", json_string(cfg->modes[i].allocator));
            for (int k = 0; k < F_COUNT; k++) {
                json_object_set_new(jm, field_names[k], jnum(med[i][k]));
                json_object_set_new(jr, field_names[k], jnum(ratio(med[i][k], med[base][k])));
                json_object_set_new(js, field_names[k], jnum(spr[i][k]));
            }
            for (unsigned r = 0; r < nr; r++) {
                run_fig_t *f = &figs[r * nm + i];
                json_array_append(runs, f->json ? f->json : json_null());
            }
            json_object_set_new(m, "median", jm);
            json_object_set_new(m, "ratio_to_baseline", jr);
            json_object_set_new(m, "spread", js);
            json_object_set_new(m, "runs", runs);
            json_array_append_new(modes, m);
        }
        json_object_set_new(root, "command", json_string(cmdline));
        json_object_set_new(root, "server", json_string(cfg->server));
        json_object_set_new(root, "repeat", json_integer(nr));
        json_object_set_new(root, "workers", json_integer(cfg->workers));
        json_object_set_new(root, "transport", json_string(cfg->http ? "http" : "tcp"));
        json_object_set_new(root, "events_per_run", json_integer((json_int_t)cfg->run.events));
        json_object_set_new(root, "pin_server", json_integer(cfg->pin_server));
        json_object_set_new(root, "pin_loadgen", json_integer(cfg->pin_loadgen));
        json_object_set_new(root, "baseline", json_string(cfg->modes[base].name));
        json_object_set_new(root, "modes", modes);
        json_object_set_new(root, "ok", json_boolean(failures == 0));
        if (json_dump_file(root, cfg->json_path, JSON_INDENT(2)) != 0) {
            fprintf(stderr, "loadgen: cannot write %s\n", cfg->json_path);
            rc = 1;
        }
        json_decref(root);
    }
    if (cfg->html_path) {
        if (write_html(cfg->html_path, cfg, med, last, figs, cmdline) != 0) {
            fprintf(stderr, "loadgen: cannot write %s\n", cfg->html_path);
            rc = 1;
        } else {
            printf("HTML report: %s\n", cfg->html_path);
        }
    }
    for (unsigned k = 0; k < nm * nr; k++) {
        free(figs[k].samples);
        json_decref(figs[k].json);
    }
    free(figs);
    return rc;
}
