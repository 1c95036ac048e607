/* harness.c - see harness.h. */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef INGESTD_BIN
#error "INGESTD_BIN must name the ingestd binary"
#endif

/* The server started last, whose log a timed-out wait copies to stderr for diagnosis. */
static const ih_server_t *last_started;

static void dump_last_log(const char *why)
{
    if (last_started == NULL) {
        return;
    }
    char *log = ih_log(last_started);
    fprintf(stderr, "%s; ingestd's log:\n%s\n", why, log);
    free(log);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

char *ih_log(const ih_server_t *s)
{
    FILE *f = fopen(s->log_path, "r");
    if (f == NULL) {
        return calloc(1, 1);
    }
    size_t cap = 4096;
    size_t len = 0;
    char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

/* The port of " key=HOST:PORT" (text) or "key":"HOST:PORT" (JSON) in a log line, or 0. */
static uint16_t port_of(const char *line, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof(pat), " %s=", key);
    const char *p = strstr(line, pat);
    if (p == NULL) {
        snprintf(pat, sizeof(pat), "\"%s\":\"", key);
        p = strstr(line, pat);
    }
    if (p == NULL) {
        return 0;
    }
    p += strlen(pat);
    const char *colon = NULL;
    for (; *p != '\0' && *p != ' ' && *p != '"'; p++) {
        if (*p == ':') {
            colon = p;
        }
    }
    return colon != NULL ? (uint16_t)atoi(colon + 1) : 0;
}

int ih_start(ih_server_t *s, const char *const *extra)
{
    const char *argv[64];
    int argc = 0;
    int has_workers = 0;

    memset(s, 0, sizeof(*s));
    snprintf(s->log_path, sizeof(s->log_path), "/tmp/ingestd-test-XXXXXX");
    int fd = mkstemp(s->log_path);
    if (fd < 0) {
        return -1;
    }
    argv[argc++] = INGESTD_BIN;
    argv[argc++] = "--tcp=127.0.0.1:0";
    argv[argc++] = "--http=127.0.0.1:0";
    argv[argc++] = "--admin=127.0.0.1:0";
    for (int i = 0; extra != NULL && extra[i] != NULL && argc < 60; i++) {
        if (strncmp(extra[i], "--workers", 9) == 0) {
            has_workers = 1;
        }
        argv[argc++] = extra[i];
    }
    if (!has_workers) {
        argv[argc++] = "--workers=2";
    }
    argv[argc] = NULL;
    s->pid = fork();
    if (s->pid < 0) {
        close(fd);
        return -1;
    }
    if (s->pid == 0) {
#ifdef INGESTD_TSAN_SUPP
        /* Under the tsan preset: see tests/server/tsan.supp for why libuv's fds are ignored. */
        const char *tsan = getenv("TSAN_OPTIONS");
        if (tsan != NULL) {
            char opts[1024];
            snprintf(opts, sizeof(opts), "%s suppressions=%s", tsan, INGESTD_TSAN_SUPP);
            setenv("TSAN_OPTIONS", opts, 1);
        }
#endif
        dup2(fd, STDERR_FILENO);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, STDIN_FILENO);
        dup2(devnull, STDOUT_FILENO);
        execv(INGESTD_BIN, (char *const *)argv);
        _exit(127);
    }
    close(fd);
    for (int i = 0; i < 3000; i++) {
        char *log = ih_log(s);
        char *line = strstr(log, " listening ");
        if (line == NULL) {
            line = strstr(log, "\"msg\":\"listening\"");
        }
        if (line != NULL) {
            char *eol = strchr(line, '\n');
            if (eol != NULL) {
                *eol = '\0';
                s->tcp_port = port_of(line, "tcp");
                s->http_port = port_of(line, "http");
                s->admin_port = port_of(line, "admin");
                free(log);
                last_started = s;
                return 0;
            }
        }
        free(log);
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            break;
        }
        sleep_ms(10);
    }
    char *log = ih_log(s);
    fprintf(stderr, "ingestd did not start; its log:\n%s\n", log);
    free(log);
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    unlink(s->log_path);
    return -1;
}

int ih_stop(ih_server_t *s, int sig)
{
    int st;
    kill(s->pid, sig);
    for (int i = 0; i < 6000; i++) {
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            if (rc != 0) {
                char *log = ih_log(s);
                fprintf(stderr, "ingestd exited with %d; its log:\n%s\n", rc, log);
                free(log);
            }
            return rc;
        }
        sleep_ms(10);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    return -1;
}

int64_t ih_log_value(const ih_server_t *s, const char *msg, const char *key)
{
    char *log = ih_log(s);
    char *last = NULL;
    char pat[128];
    int64_t v = -1;

    snprintf(pat, sizeof(pat), " %s ", msg);
    for (char *p = strstr(log, pat); p != NULL; p = strstr(p + 1, pat)) {
        last = p;
    }
    if (last != NULL) {
        char *eol = strchr(last, '\n');
        if (eol != NULL) {
            *eol = '\0';
        }
        snprintf(pat, sizeof(pat), " %s=", key);
        char *k = strstr(last, pat);
        if (k != NULL) {
            v = strtoll(k + strlen(pat), NULL, 10);
        }
    }
    free(log);
    return v;
}

int ih_connect_from(const char *src, uint16_t port, int rcv_timeout_s)
{
    struct sockaddr_in a;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    if (src != NULL) {
        inet_pton(AF_INET, src, &a.sin_addr);
        if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
            close(fd);
            return -1;
        }
    }
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (rcv_timeout_s > 0) {
        struct timeval tv = {rcv_timeout_s, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }
    return fd;
}

int ih_connect(uint16_t port)
{
    return ih_connect_from(NULL, port, 0);
}

int ih_send_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

char *ih_http(uint16_t port, const char *req, size_t req_len, size_t *resp_len)
{
    return ih_http_fd(ih_connect(port), req, req_len, resp_len);
}

char *ih_http_fd(int fd, const char *req, size_t req_len, size_t *resp_len)
{
    if (fd < 0) {
        return NULL;
    }
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (ih_send_all(fd, req, req_len) != 0) {
        /* The server may answer and close before reading everything (413): read anyway. */
    }
    size_t cap = 65536;
    size_t len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (cap - len < 4096) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r <= 0) {
            break;
        }
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    if (resp_len != NULL) {
        *resp_len = len;
    }
    return buf;
}

int ih_http_status(const char *resp)
{
    if (resp == NULL || strncmp(resp, "HTTP/1.", 7) != 0 || strlen(resp) < 12) {
        return -1;
    }
    return atoi(resp + 9);
}

static double find_sample(const char *body, const char *sample)
{
    size_t n = strlen(sample);
    for (const char *p = body; p != NULL && *p != '\0';) {
        if (strncmp(p, sample, n) == 0 && p[n] == ' ') {
            return strtod(p + n + 1, NULL);
        }
        p = strchr(p, '\n');
        if (p != NULL) {
            p++;
        }
    }
    return NAN;
}

static char *scrape(uint16_t port)
{
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    char *resp = ih_http(port, req, sizeof(req) - 1, NULL);
    if (resp != NULL && ih_http_status(resp) != 200) {
        free(resp);
        return NULL;
    }
    return resp;
}

double ih_metric(uint16_t port, const char *sample)
{
    char *resp = scrape(port);
    if (resp == NULL) {
        return NAN;
    }
    double v = find_sample(resp, sample);
    free(resp);
    return v;
}

double ih_wait_metric(uint16_t port, const char *sample, double want, int timeout_ms)
{
    double v = NAN;
    int waited = 0;
    int step = 20;
    while (waited <= timeout_ms) {
        v = ih_metric(port, sample);
        if (!isnan(v) && v >= want) {
            return v;
        }
        sleep_ms(step);
        waited += step;
        if (step < 250) {
            step *= 2;
        }
    }
    fprintf(stderr, "timed out waiting for %s >= %g (last value %g)\n", sample, want, v);
    dump_last_log("timed out");
    return v;
}

void ih_cleanup(ih_server_t *s)
{
    unlink(s->log_path);
}

int ih_counts(uint16_t port, ih_counts_t *out)
{
    static const char *const names[IH_REASONS] = {
        "ingestd_events_accepted_total",
        "ingestd_events_rejected_total{reason=\"parse\"}",
        "ingestd_events_rejected_total{reason=\"not_object\"}",
        "ingestd_events_rejected_total{reason=\"no_type\"}",
        "ingestd_events_rejected_total{reason=\"too_large\"}",
        "ingestd_events_rejected_total{reason=\"truncated\"}",
        "ingestd_events_rejected_total{reason=\"slow_line\"}",
        "ingestd_events_rejected_total{reason=\"over_budget\"}",
    };
    char *resp = scrape(port);
    if (resp == NULL) {
        return -1;
    }
    for (size_t i = 0; i < IH_REASONS; i++) {
        out->v[i] = find_sample(resp, names[i]);
    }
    free(resp);
    return isnan(out->v[0]) ? -1 : 0;
}

int ih_wait_counts(uint16_t port, const ih_counts_t *base, double n, int timeout_ms,
                   ih_counts_t *delta)
{
    double want = n;
    int waited = 0;
    int step = 10;
    for (size_t i = 0; i < IH_REASONS; i++) {
        want += base->v[i];
    }
    for (;;) {
        ih_counts_t now;
        if (ih_counts(port, &now) == 0) {
            double sum = 0;
            for (size_t i = 0; i < IH_REASONS; i++) {
                sum += now.v[i];
                delta->v[i] = now.v[i] - base->v[i];
            }
            if (sum >= want) {
                return 0;
            }
        }
        if (waited > timeout_ms) {
            dump_last_log("timed out waiting for the event counters");
            return -1;
        }
        sleep_ms(step);
        waited += step;
        if (step < 200) {
            step *= 2;
        }
    }
}

double ih_events_seen(uint16_t port)
{
    static const char *const reasons[] = {"parse",     "not_object", "no_type",    "too_large",
                                          "truncated", "slow_line",  "over_budget"};
    char *resp = scrape(port);
    char name[128];
    if (resp == NULL) {
        return NAN;
    }
    double sum = find_sample(resp, "ingestd_events_accepted_total");
    for (size_t i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "ingestd_events_rejected_total{reason=\"%s\"}", reasons[i]);
        sum += find_sample(resp, name);
    }
    free(resp);
    return sum;
}
