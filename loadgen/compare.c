/* compare.c - `loadgen compare`: one ingestd per run and mode; report.c shows the results. */
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

#include "lg_report.h"

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
    /* ALLOCATOR[+PARSE]: without a parse part the server's default strategy runs and no
     * --parse is passed, so a mode list also works against a server older than --parse. */
    const char *alloc = plus + 1;
    const char *plus2 = strchr(alloc, '+');
    size_t an = plus2 != NULL ? (size_t)(plus2 - alloc) : strlen(alloc);
    if (!((an == 4 && strncmp(alloc, "libc", 4) == 0) ||
          (an == 8 && strncmp(alloc, "mimalloc", 8) == 0))) {
        return -EINVAL;
    }
    snprintf(out->allocator, sizeof(out->allocator), "%.*s", (int)an, alloc);
    if (plus2 != NULL) {
        if (strcmp(plus2 + 1, "scan") != 0 && strcmp(plus2 + 1, "tree") != 0) {
            return -EINVAL;
        }
        snprintf(out->parse, sizeof(out->parse), "%s", plus2 + 1);
    }
    snprintf(out->name, sizeof(out->name), "%s+%s%s%s", out->pool ? "pool" : "naive",
             out->allocator, out->parse[0] != '\0' ? "+" : "", out->parse);
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
    lg_modes_parse(LG_DEFAULT_MODES, cfg);
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
                   const char *dir, double tick_s, lg_report_run_t *fig)
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
    if (m->parse[0] != '\0') {
        argv[ac++] = "--parse";
        argv[ac++] = m->parse;
    }
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
    fig->fig[LG_FIG_EPS] = res.events_per_s;
    fig->fig[LG_FIG_CPU] = res.cpu_us_per_event;
    fig->fig[LG_FIG_ALLOCS] = res.allocs_per_event;
    fig->fig[LG_FIG_RSS] = res.peak_rss_bytes;
    fig->fig[LG_FIG_HIT] = res.pool_hit_rate;
    /* process_cpu_seconds_total moves in whole ticks: that over the events is the resolution. */
    fig->cpu_res_us = res.sent_events > 0 ? tick_s * 1e6 / (double)res.sent_events : NAN;
    fig->lost = res.lost;
    fig->samples = res.samples;
    fig->nsamples = res.nsamples;
    res.samples = NULL;
    res.nsamples = 0;
    fig->json = lg_run_json(&rc, &res);
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
    fig->ok = err == 0 && res.lost == 0 && fig->exit_status == 0;
    if (!fig->ok) {
        print_log_tail(log);
    }
    unlink(log);
    return fig->ok ? 0 : -1;
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
    const unsigned nm = cfg->nmodes, nr = cfg->repeat;
    lg_compare_result_t res;
    int err = lg_result_init(&res, nm, nr);
    if (err == 0 && cfg->argv) {
        err = lg_result_set_argv(&res, cfg->argc, cfg->argv);
    }
    if (err != 0) {
        lg_result_free(&res);
        return err;
    }
    lg_env_collect(&res.env, cfg->server); /* before pinning: it counts the usable CPUs */
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
    res.env.pin_server = cfg->pin_server;
    res.env.pin_loadgen = cfg->pin_loadgen;
    for (unsigned i = 0; i < nm; i++) {
        lg_result_set_mode(&res, i, cfg->modes[i].name);
        res.modes[i].attrs = json_pack(
            "{s:b,s:s,s:s}", "pool", cfg->modes[i].pool, "allocator", cfg->modes[i].allocator,
            "parse", cfg->modes[i].parse[0] != '\0' ? cfg->modes[i].parse : "default");
    }
    /* The baseline: naive+libc, else the first naive+libc+... mode, else the first mode. */
    int base = lg_result_find_mode(&res, "naive+libc");
    for (unsigned i = 0; base < 0 && i < nm; i++) {
        if (strncmp(cfg->modes[i].name, "naive+libc+", 11) == 0) {
            base = (int)i;
        }
    }
    res.baseline = base >= 0 ? (unsigned)base : 0;
    snprintf(res.server, sizeof(res.server), "%s", cfg->server);
    snprintf(res.transport, sizeof(res.transport), "%s", cfg->http ? "http" : "tcp");
    res.events_per_run = cfg->run.events;
    res.connections = cfg->run.connections;
    res.workers = cfg->workers;
    res.warmup_s = cfg->run.warmup_s;

    char dir[] = "/tmp/loadgen-compare.XXXXXX";
    if (!mkdtemp(dir)) {
        err = -errno;
        lg_result_free(&res);
        return err;
    }
    int failures = 0;
    for (unsigned r = 0; r < nr; r++) {
        for (unsigned i = 0; i < nm; i++) {
            lg_report_run_t *f = &res.runs[r * nm + i];
            if (isatty(2)) {
                fprintf(stderr, "\rrun %u/%u: %-24s", r * nm + i + 1, nm * nr, cfg->modes[i].name);
            }
            if (one_run(cfg, &cfg->modes[i], r, dir, res.env.tick_s, f) != 0) {
                failures++;
            }
        }
    }
    if (isatty(2)) {
        fprintf(stderr, "\r%50s\r", "");
    }
    rmdir(dir);
    res.ok = failures == 0;

    lg_report_print(stdout, &res);
    printf("%s\n", failures ? "FAILED: see the messages above (lost events or a bad server exit)"
                            : "every run: accepted + rejected == sent, server exited 0 on SIGTERM");
    int rc = failures ? 1 : 0;
    if (cfg->json_path) {
        json_t *root = lg_report_json(&res);
        if (!root || json_dump_file(root, cfg->json_path, JSON_INDENT(2)) != 0) {
            fprintf(stderr, "loadgen: cannot write %s\n", cfg->json_path);
            rc = 1;
        }
        json_decref(root);
    }
    if (cfg->html_path) {
        FILE *f = fopen(cfg->html_path, "we");
        int werr = f ? lg_report_write_html(f, &res) : -errno;
        if (f && fclose(f) != 0 && werr == 0) {
            werr = -EIO;
        }
        if (werr != 0) {
            fprintf(stderr, "loadgen: cannot write %s: %s\n", cfg->html_path, strerror(-werr));
            rc = 1;
        } else {
            printf("HTML report: %s\n", cfg->html_path);
        }
    }
    lg_result_free(&res);
    return rc;
}
