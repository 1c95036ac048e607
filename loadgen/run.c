/* run.c - `loadgen run`: sender threads (one blocking socket each), pacing, latency, scrapes. */
#include "lg_run.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define NS 1000000000ULL

uint64_t lg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t)
{
    struct timespec ts = {.tv_sec = (time_t)(t / NS), .tv_nsec = (long)(t % NS)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

double lg_proc_rss(pid_t pid, bool peak)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f) {
        return NAN;
    }
    const char *key = peak ? "VmHWM:" : "VmRSS:";
    double v = NAN;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, strlen(key)) == 0) {
            v = strtod(line + strlen(key), NULL) * 1024.0;
            break;
        }
    }
    fclose(f);
    return v;
}

void lg_run_config_default(lg_run_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->connections = 1;
    cfg->events = 100000;
    cfg->batch = 100;
    cfg->write_bytes = 65536;
    cfg->sample_interval = 0.1;
    cfg->drain_timeout_s = 30;
}

typedef struct {
    const lg_run_config_t *cfg;
    uint64_t quota;    /* events to send; UINT64_MAX: until deadline */
    double rate;       /* this connection's events per second; 0: max */
    uint64_t t_start;  /* shared start (ns) */
    uint64_t deadline; /* UINT64_MAX: none */
    bool measured;
    size_t start_pos;
    _Atomic uint64_t progress; /* events sent so far; written by the worker, read by main */
    _Atomic int done;
    uint64_t sent, bytes, requests, errors, reconnects, non200, non200_events, acc, rej;
    uint64_t t_last_write, t_end;
    lg_hist_t *hist;
    int err;
    char errmsg[400];
    pthread_t thread;
} worker_t;

/* Sends all of iov (advancing it). Returns 0 or a negative errno. */
static int send_all(int fd, struct iovec *iov, int cnt)
{
    while (cnt > 0) {
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
        ssize_t w = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        size_t left = (size_t)w;
        while (cnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

/* Due events at `now` for a paced sender that has sent `sent`; 0 means sleep until *wake. */
static uint64_t paced_due(const worker_t *w, uint64_t now, uint64_t *wake)
{
    if (w->rate <= 0) {
        return UINT64_MAX;
    }
    double elapsed = (double)(now - w->t_start) / (double)NS;
    uint64_t allowed = (uint64_t)(elapsed * w->rate) + 1;
    if (allowed > w->sent) {
        return allowed - w->sent;
    }
    *wake = w->t_start + (uint64_t)((double)w->sent / w->rate * (double)NS);
    return 0;
}

static void tcp_worker(worker_t *w, int fd)
{
    const lg_corpus_t *c = w->cfg->corpus;
    size_t pos = w->start_pos;
    while (w->sent < w->quota) {
        uint64_t now = lg_now_ns(), wake = 0;
        if (now >= w->deadline) {
            break;
        }
        uint64_t due = paced_due(w, now, &wake);
        if (due == 0) {
            sleep_until(wake < w->deadline ? wake : w->deadline);
            continue;
        }
        uint64_t left = w->quota - w->sent;
        uint64_t n_max = due < left ? due : left;
        size_t first = pos, n = 0;
        size_t limit = c->offsets[first] + w->cfg->write_bytes;
        while (n < n_max && pos + n < c->count && (n == 0 || c->offsets[pos + n + 1] <= limit)) {
            n++;
        }
        struct iovec iov = {.iov_base = c->data + c->offsets[first],
                            .iov_len = c->offsets[first + n] - c->offsets[first]};
        size_t len = iov.iov_len;
        int rc = send_all(fd, &iov, 1);
        if (rc < 0) {
            w->err = rc;
            snprintf(w->errmsg, sizeof(w->errmsg), "write: %s", strerror(-rc));
            w->errors++;
            break;
        }
        w->t_last_write = lg_now_ns();
        w->sent += n;
        w->bytes += len;
        pos = (pos + n) % c->count;
        atomic_store_explicit(&w->progress, w->sent, memory_order_relaxed);
    }
    /* Our EOF; the server closes once it has read (and so counted) everything. */
    shutdown(fd, SHUT_WR);
    uint64_t until = lg_now_ns() + (uint64_t)(w->cfg->drain_timeout_s * (double)NS);
    char sink[4096];
    for (;;) {
        uint64_t now = lg_now_ns();
        if (now >= until) {
            break;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)((until - now) / 1000000 + 1));
        if (pr < 0 && errno == EINTR) {
            continue;
        }
        if (pr <= 0) {
            break;
        }
        ssize_t r = recv(fd, sink, sizeof(sink), 0);
        if (r <= 0 && !(r < 0 && errno == EINTR)) {
            break;
        }
    }
}

typedef struct {
    char *buf;
    size_t cap;
} rbuf_t;

/* Reads one HTTP response. Returns the status (>0) with *close set when the server will close,
 * and accepted/rejected from the JSON body; or a negative errno. */
static int read_response(int fd, rbuf_t *rb, bool *close_after, uint64_t *acc, uint64_t *rej)
{
    size_t got = 0, need = 0, hlen = 0;
    int status = 0;
    *close_after = false;
    for (;;) {
        if (got + 1 >= rb->cap) {
            size_t cap = rb->cap ? rb->cap * 2 : 16384;
            char *p = realloc(rb->buf, cap);
            if (!p) {
                return -ENOMEM;
            }
            rb->buf = p;
            rb->cap = cap;
        }
        ssize_t r = recv(fd, rb->buf + got, rb->cap - got - 1, 0);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            return -errno;
        }
        if (r == 0) {
            return -ECONNRESET;
        }
        got += (size_t)r;
        rb->buf[got] = '\0';
        if (!hlen) {
            char *h = strstr(rb->buf, "\r\n\r\n");
            if (!h) {
                continue;
            }
            hlen = (size_t)(h - rb->buf) + 4;
            if (sscanf(rb->buf, "HTTP/1.%*d %d", &status) != 1) {
                return -EPROTO;
            }
            char *cl = strcasestr(rb->buf, "\r\ncontent-length:");
            need = (cl && cl < h) ? strtoul(cl + 17, NULL, 10) : 0;
            char *conn = strcasestr(rb->buf, "\r\nconnection:");
            if (conn && conn < h &&
                strncasecmp(conn + 13 + strspn(conn + 13, " "), "close", 5) == 0) {
                *close_after = true;
            }
        }
        if (hlen && got >= hlen + need) {
            break;
        }
    }
    *acc = *rej = 0;
    if (status == 200 && need) {
        json_t *j = json_loadb(rb->buf + hlen, need, 0, NULL);
        if (j) {
            *acc = (uint64_t)json_integer_value(json_object_get(j, "accepted"));
            *rej = (uint64_t)json_integer_value(json_object_get(j, "rejected"));
            json_decref(j);
        }
    }
    return status;
}

/* --gzip: the request body's parts deflated into one gzip member in *out (grown as needed).
 * Returns its length, or 0 when zlib failed. */
static size_t gzip_parts(z_stream *z, const struct iovec *iov, int cnt, unsigned char **out,
                         size_t *cap)
{
    size_t in = 0;
    for (int i = 0; i < cnt; i++) {
        in += iov[i].iov_len;
    }
    size_t need = deflateBound(z, (uLong)in) + 64;
    if (need > *cap) {
        unsigned char *n = realloc(*out, need);
        if (n == NULL) {
            return 0;
        }
        *out = n;
        *cap = need;
    }
    deflateReset(z);
    z->next_out = *out;
    z->avail_out = (uInt)*cap;
    for (int i = 0; i < cnt; i++) {
        z->next_in = iov[i].iov_base;
        z->avail_in = (uInt)iov[i].iov_len;
        if (deflate(z, i + 1 == cnt ? Z_FINISH : Z_NO_FLUSH) == Z_STREAM_ERROR) {
            return 0;
        }
    }
    return z->total_out;
}

static void http_worker(worker_t *w, int fd)
{
    const lg_run_config_t *cfg = w->cfg;
    const lg_corpus_t *c = cfg->corpus;
    size_t pos = w->start_pos;
    rbuf_t rb = {0};
    char head[1024];
    z_stream z;
    unsigned char *gz = NULL;
    size_t gz_cap = 0;
    memset(&z, 0, sizeof(z));
    if (cfg->gzip && deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        w->err = -ENOMEM;
        snprintf(w->errmsg, sizeof(w->errmsg), "zlib: cannot start deflate");
        return;
    }
    while (w->sent < w->quota) {
        uint64_t now = lg_now_ns();
        if (now >= w->deadline) {
            break;
        }
        uint64_t intended = now;
        if (w->rate > 0) {
            intended = w->t_start + (uint64_t)((double)w->sent / w->rate * (double)NS);
            if (intended > now) {
                if (intended >= w->deadline) {
                    break;
                }
                sleep_until(intended);
            }
        }
        uint64_t n = w->quota - w->sent;
        if (n > cfg->batch) {
            n = cfg->batch;
        }
        struct iovec iov[3];
        int cnt = 1;
        size_t body;
        if (pos + n <= c->count) {
            body = c->offsets[pos + n] - c->offsets[pos];
            iov[1] = (struct iovec){c->data + c->offsets[pos], body};
            cnt = 2;
        } else {
            size_t tail = c->size - c->offsets[pos];
            size_t headn = c->offsets[pos + n - c->count];
            body = tail + headn;
            iov[1] = (struct iovec){c->data + c->offsets[pos], tail};
            iov[2] = (struct iovec){c->data, headn};
            cnt = 3;
        }
        size_t wire = body;
        if (cfg->gzip) {
            wire = gzip_parts(&z, &iov[1], cnt - 1, &gz, &gz_cap);
            if (wire == 0) {
                w->err = -ENOMEM;
                snprintf(w->errmsg, sizeof(w->errmsg), "zlib: deflate failed");
                break;
            }
            iov[1] = (struct iovec){gz, wire};
            cnt = 2;
        }
        int hn =
            snprintf(head, sizeof(head),
                     "POST %s HTTP/1.1\r\nHost: %s:%u\r\nContent-Type: application/x-ndjson\r\n"
                     "%sContent-Length: %zu\r\n\r\n",
                     cfg->target.path, cfg->target.host, cfg->target.port,
                     cfg->gzip ? "Content-Encoding: gzip\r\n" : "", wire);
        iov[0] = (struct iovec){head, (size_t)hn};
        bool close_after = false;
        uint64_t acc = 0, rej = 0;
        int rc = send_all(fd, iov, cnt);
        if (rc == 0) {
            rc = read_response(fd, &rb, &close_after, &acc, &rej);
        }
        w->t_last_write = lg_now_ns();
        w->sent += n;
        w->bytes += body;
        w->requests++;
        pos = (pos + n) % c->count;
        atomic_store_explicit(&w->progress, w->sent, memory_order_relaxed);
        if (rc == 200) {
            w->acc += acc;
            w->rej += rej;
            if (w->hist) {
                lg_hist_record(w->hist, w->t_last_write - intended);
            }
        } else {
            w->non200++;
            w->non200_events += n;
            if (rc < 0) {
                w->errors++;
                close_after = true;
            }
        }
        if (close_after) {
            close(fd);
            fd = lg_connect(cfg->target.host, cfg->target.port);
            w->reconnects++;
            if (fd < 0) {
                w->err = fd;
                snprintf(w->errmsg, sizeof(w->errmsg), "reconnect: %s", strerror(-fd));
                break;
            }
        }
    }
    free(rb.buf);
    if (cfg->gzip) {
        deflateEnd(&z);
        free(gz);
    }
    if (fd >= 0) {
        close(fd);
    }
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    int fd = lg_connect(w->cfg->target.host, w->cfg->target.port);
    if (fd < 0) {
        w->err = fd;
        snprintf(w->errmsg, sizeof(w->errmsg), "connect %s:%u: %s", w->cfg->target.host,
                 w->cfg->target.port, strerror(-fd));
    } else {
        sleep_until(w->t_start);
        if (strcmp(w->cfg->target.scheme, "http") == 0) {
            http_worker(w, fd); /* closes fd */
        } else {
            tcp_worker(w, fd);
            close(fd);
        }
    }
    w->t_end = lg_now_ns();
    atomic_store_explicit(&w->done, 1, memory_order_release);
    return NULL;
}

static void add_sample(lg_run_result_t *res, double t, double rss)
{
    if (isnan(rss)) {
        return;
    }
    if ((res->nsamples & (res->nsamples - 1)) == 0) { /* grow at powers of two */
        size_t cap = res->nsamples ? res->nsamples * 2 : 64;
        lg_sample_t *p = realloc(res->samples, cap * sizeof(*p));
        if (!p) {
            return;
        }
        res->samples = p;
    }
    res->samples[res->nsamples++] = (lg_sample_t){t, rss};
    if (isnan(res->peak_rss_bytes) || rss > res->peak_rss_bytes) {
        res->peak_rss_bytes = rss;
    }
}

/* One phase: connections threads, `total` events (or `duration` seconds). */
static int run_phase(const lg_run_config_t *cfg, uint64_t total, double duration, bool measured,
                     uint64_t run_t0, lg_run_result_t *res)
{
    unsigned nc = cfg->connections;
    worker_t *ws = calloc(nc, sizeof(*ws));
    if (!ws) {
        return -ENOMEM;
    }
    uint64_t t_start = lg_now_ns() + 20 * 1000000ULL; /* time to connect */
    uint64_t deadline = duration > 0 ? t_start + (uint64_t)(duration * (double)NS) : UINT64_MAX;
    int rc = 0;
    unsigned started = 0;
    for (unsigned i = 0; i < nc; i++) {
        worker_t *w = &ws[i];
        w->cfg = cfg;
        w->quota = duration > 0 ? UINT64_MAX : total / nc + (i < total % nc);
        w->rate = cfg->rate / nc;
        w->t_start = t_start;
        w->deadline = deadline;
        w->measured = measured;
        w->start_pos = (size_t)((uint64_t)i * cfg->corpus->count / nc);
        if (measured && strcmp(cfg->target.scheme, "http") == 0) {
            w->hist = malloc(sizeof(lg_hist_t));
            if (!w->hist) {
                rc = -ENOMEM;
                break;
            }
            lg_hist_reset(w->hist);
        }
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            rc = -EAGAIN;
            free(w->hist);
            w->hist = NULL;
            break;
        }
        started++;
    }
    uint64_t tick = (uint64_t)(cfg->sample_interval * (double)NS);
    uint64_t next = lg_now_ns() + tick, last_scrape = 0;
    for (;;) {
        unsigned done = 0;
        uint64_t sent = 0;
        for (unsigned i = 0; i < started; i++) {
            done += (unsigned)atomic_load_explicit(&ws[i].done, memory_order_acquire);
            sent += atomic_load_explicit(&ws[i].progress, memory_order_relaxed);
        }
        if (done == started) {
            break;
        }
        sleep_until(next);
        uint64_t now = lg_now_ns();
        next = now + tick;
        double t = (double)(now - run_t0) / (double)NS;
        if (cfg->server_pid > 0) {
            add_sample(res, t, lg_proc_rss(cfg->server_pid, false));
        } else if (cfg->has_metrics && now - last_scrape >= 5 * tick) {
            lg_scrape_t s;
            if (lg_scrape(&cfg->metrics, 1000, &s) == 0) {
                add_sample(res, t, s.rss_bytes);
            }
            last_scrape = now;
        }
        if (cfg->progress && now > t_start) {
            double el = (double)(now - t_start) / (double)NS;
            double r = (double)sent / el;
            double eta = duration > 0 ? duration - el : (r > 0 ? (double)(total - sent) / r : 0);
            fprintf(stderr, "\r%s sent %llu  rate %.0f/s  elapsed %.1fs  ETA %.1fs   ",
                    measured ? "run   " : "warmup", (unsigned long long)sent, r, el,
                    eta > 0 ? eta : 0);
        }
    }
    if (cfg->progress) {
        fprintf(stderr, "\r%*s\r", 70, "");
    }
    uint64_t t_end = t_start, t_write = t_start;
    for (unsigned i = 0; i < started; i++) {
        worker_t *w = &ws[i];
        pthread_join(w->thread, NULL);
        if (w->err && rc == 0) {
            rc = w->err;
            snprintf(res->error, sizeof(res->error), "%s", w->errmsg);
        }
        res->errors += w->errors;
        res->http_non200 += w->non200;
        res->http_non200_events += w->non200_events;
        if (w->t_end > t_end) {
            t_end = w->t_end;
        }
        if (w->t_last_write > t_write) {
            t_write = w->t_last_write;
        }
        if (measured) {
            res->sent_events += w->sent;
            res->sent_bytes += w->bytes;
            res->requests += w->requests;
            res->reconnects += w->reconnects;
            res->resp_accepted += w->acc;
            res->resp_rejected += w->rej;
            res->expected_invalid += lg_corpus_invalid_in(cfg->corpus, w->start_pos, w->sent);
            if (w->hist) {
                if (!res->latency) {
                    res->latency = w->hist;
                    w->hist = NULL;
                } else {
                    lg_hist_merge(res->latency, w->hist);
                }
            }
        } else {
            res->warmup_events += w->sent;
        }
        free(w->hist);
    }
    if (measured) {
        res->elapsed_s = (double)(t_end - t_start) / (double)NS;
        res->send_s = (double)(t_write - t_start) / (double)NS;
    }
    free(ws);
    return rc;
}

int lg_run(const lg_run_config_t *cfg, lg_run_result_t *res)
{
    memset(res, 0, sizeof(*res));
    res->peak_rss_bytes = NAN;
    res->pool_hit_rate = NAN;
    res->cpu_us_per_event = NAN;
    res->allocs_per_event = NAN;
    res->server_cpu_s = NAN;
    if (!cfg->corpus || cfg->corpus->count == 0 || cfg->connections == 0 || cfg->batch == 0 ||
        (cfg->events == 0 && cfg->duration_s <= 0)) {
        snprintf(res->error, sizeof(res->error), "nothing to send");
        return -EINVAL;
    }
    uint64_t t0 = lg_now_ns();
    bool scrape = cfg->has_metrics;
    if (scrape && lg_scrape(&cfg->metrics, 5000, &res->start) != 0) {
        snprintf(res->error, sizeof(res->error), "cannot scrape %.100s:%u%.100s", cfg->metrics.host,
                 cfg->metrics.port, cfg->metrics.path);
        return -EPROTO;
    }
    res->before = res->start;
    int rc = 0;
    if (cfg->warmup_s > 0) {
        rc = run_phase(cfg, 0, cfg->warmup_s, false, t0, res);
        if (rc == 0 && scrape && lg_scrape(&cfg->metrics, 5000, &res->before) != 0) {
            scrape = false;
        }
    }
    if (rc == 0) {
        rc = run_phase(cfg, cfg->events, cfg->events ? 0 : cfg->duration_s, true, t0, res);
    }
    res->events_per_s = res->elapsed_s > 0 ? (double)res->sent_events / res->elapsed_s : 0;
    if (rc != 0 || !scrape) {
        return rc;
    }
    /* Expected: every event sent, minus those in requests the server refused (non-200). */
    uint64_t expect = res->warmup_events + res->sent_events - res->http_non200_events;
    for (int tries = 0;; tries++) {
        if (lg_scrape(&cfg->metrics, 5000, &res->after) != 0) {
            snprintf(res->error, sizeof(res->error), "scrape after the run failed");
            return -EPROTO;
        }
        double got = (res->after.accepted - res->start.accepted) +
                     (res->after.rejected - res->start.rejected);
        res->lost = (int64_t)expect - (int64_t)llround(got);
        if (res->lost <= 0 || tries >= 20) {
            break;
        }
        sleep_until(lg_now_ns() + 100 * 1000000ULL); /* let counters settle, up to 2 s */
    }
    res->has_server = true;
    res->loss_checked = true;
    const lg_scrape_t *a = &res->after, *b = &res->before;
    double n = (double)res->sent_events;
    res->server_accepted = a->accepted - b->accepted;
    res->server_rejected = a->rejected - b->rejected;
    res->server_cpu_s = a->cpu_seconds - b->cpu_seconds;
    res->cpu_us_per_event = n > 0 ? res->server_cpu_s * 1e6 / n : NAN;
    res->allocs_per_event = n > 0 ? (a->mallocs - b->mallocs) / n : NAN;
    double gets = a->pool_gets - b->pool_gets;
    res->pool_hit_rate = gets > 0 ? 1.0 - (a->pool_misses - b->pool_misses) / gets : NAN;
    if (cfg->server_pid <= 0) { /* with a pid, every sample comes from /proc alone */
        add_sample(res, (double)(lg_now_ns() - t0) / (double)NS, a->rss_bytes);
    } else {
        add_sample(res, (double)(lg_now_ns() - t0) / (double)NS,
                   lg_proc_rss(cfg->server_pid, false));
        double hwm = lg_proc_rss(cfg->server_pid, true);
        if (!isnan(hwm)) {
            res->peak_rss_bytes = hwm;
        }
    }
    return 0;
}

void lg_run_result_free(lg_run_result_t *res)
{
    if (!res) {
        return;
    }
    free(res->latency);
    free(res->samples);
    res->latency = NULL;
    res->samples = NULL;
    res->nsamples = 0;
}

static json_t *num(double v)
{
    return isnan(v) || isinf(v) ? json_null() : json_real(v);
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

json_t *lg_run_json(const lg_run_config_t *cfg, const lg_run_result_t *res)
{
    json_t *o = json_object();
    char target[1024];
    snprintf(target, sizeof(target), "%s://%s:%u%s", cfg->target.scheme, cfg->target.host,
             cfg->target.port, strcmp(cfg->target.scheme, "http") == 0 ? cfg->target.path : "");
    json_object_set_new(o, "target", json_string(target));
    json_object_set_new(o, "transport", json_string(cfg->target.scheme));
    json_object_set_new(o, "connections", json_integer(cfg->connections));
    json_object_set_new(o, "events_requested", json_integer((json_int_t)cfg->events));
    json_object_set_new(o, "duration_requested_s", json_real(cfg->events ? 0 : cfg->duration_s));
    json_object_set_new(o, "rate_target", json_real(cfg->rate));
    json_object_set_new(o, "batch", json_integer(cfg->batch));
    json_object_set_new(o, "warmup_s", json_real(cfg->warmup_s));
    json_object_set_new(o, "sent_events", json_integer((json_int_t)res->sent_events));
    json_object_set_new(o, "sent_bytes", json_integer((json_int_t)res->sent_bytes));
    json_object_set_new(o, "warmup_events", json_integer((json_int_t)res->warmup_events));
    json_object_set_new(o, "requests", json_integer((json_int_t)res->requests));
    json_object_set_new(o, "errors", json_integer((json_int_t)res->errors));
    json_object_set_new(o, "reconnects", json_integer((json_int_t)res->reconnects));
    json_object_set_new(o, "http_non200", json_integer((json_int_t)res->http_non200));
    json_object_set_new(o, "http_non200_events", json_integer((json_int_t)res->http_non200_events));
    json_object_set_new(o, "response_accepted", json_integer((json_int_t)res->resp_accepted));
    json_object_set_new(o, "response_rejected", json_integer((json_int_t)res->resp_rejected));
    json_object_set_new(o, "expected_invalid", json_integer((json_int_t)res->expected_invalid));
    json_object_set_new(o, "elapsed_s", json_real(res->elapsed_s));
    json_object_set_new(o, "send_s", json_real(res->send_s));
    json_object_set_new(o, "events_per_s", json_real(res->events_per_s));
    json_object_set_new(o, "rate_achieved",
                        json_real(res->send_s > 0 ? (double)res->sent_events / res->send_s : 0));
    json_object_set_new(
        o, "mib_per_s",
        json_real(res->elapsed_s > 0 ? (double)res->sent_bytes / 1048576.0 / res->elapsed_s : 0));
    if (res->latency && res->latency->total) {
        const lg_hist_t *h = res->latency;
        json_t *l = json_object();
        json_object_set_new(l, "count", json_integer((json_int_t)h->total));
        json_object_set_new(l, "min", json_real(ms(h->min)));
        json_object_set_new(l, "mean", json_real(lg_hist_mean(h) / 1e6));
        json_object_set_new(l, "p50", json_real(ms(lg_hist_percentile(h, 50))));
        json_object_set_new(l, "p90", json_real(ms(lg_hist_percentile(h, 90))));
        json_object_set_new(l, "p99", json_real(ms(lg_hist_percentile(h, 99))));
        json_object_set_new(l, "p99_9", json_real(ms(lg_hist_percentile(h, 99.9))));
        json_object_set_new(l, "max", json_real(ms(h->max)));
        json_object_set_new(o, "latency_ms", l);
    } else {
        json_object_set_new(o, "latency_ms", json_null());
    }
    if (res->has_server) {
        json_t *s = json_object();
        json_object_set_new(s, "accepted", num(res->server_accepted));
        json_object_set_new(s, "rejected", num(res->server_rejected));
        json_object_set_new(s, "cpu_seconds", num(res->server_cpu_s));
        json_object_set_new(s, "cpu_us_per_event", num(res->cpu_us_per_event));
        json_object_set_new(s, "allocs_per_event", num(res->allocs_per_event));
        json_object_set_new(s, "pool_hit_rate", num(res->pool_hit_rate));
        json_object_set_new(s, "peak_rss_bytes", num(res->peak_rss_bytes));
        json_object_set_new(o, "server", s);
        json_object_set_new(o, "lost", json_integer(res->lost));
    } else {
        json_object_set_new(o, "server", json_null());
        json_object_set_new(o, "lost", json_null());
    }
    json_object_set_new(o, "ok",
                        json_boolean(res->errors == 0 && (!res->loss_checked || res->lost == 0)));
    return o;
}

static const char *human(double v, char *buf, size_t n)
{
    if (isnan(v)) {
        snprintf(buf, n, "n/a");
    } else if (v >= 1e6) {
        snprintf(buf, n, "%.2fM", v / 1e6);
    } else if (v >= 1e4) {
        snprintf(buf, n, "%.1fk", v / 1e3);
    } else {
        snprintf(buf, n, "%.0f", v);
    }
    return buf;
}

void lg_run_print(FILE *out, const lg_run_config_t *cfg, const lg_run_result_t *res)
{
    char a[32], b[32];
    bool http = strcmp(cfg->target.scheme, "http") == 0;
    fprintf(out, "%-18s %s://%s:%u%s, %u connection%s%s\n", "target", cfg->target.scheme,
            cfg->target.host, cfg->target.port, http ? cfg->target.path : "", cfg->connections,
            cfg->connections == 1 ? "" : "s", res->warmup_events ? "" : ", no warm-up");
    fprintf(out, "%-18s %llu events, %.1f MiB in %.3f s (%llu in warm-up, excluded)\n", "sent",
            (unsigned long long)res->sent_events, (double)res->sent_bytes / 1048576.0,
            res->elapsed_s, (unsigned long long)res->warmup_events);
    double achieved = res->send_s > 0 ? (double)res->sent_events / res->send_s : 0;
    if (cfg->rate > 0) {
        fprintf(out, "%-18s %s events/s achieved, target %s (%.1f%%)\n", "rate",
                human(achieved, a, sizeof(a)), human(cfg->rate, b, sizeof(b)),
                100.0 * achieved / cfg->rate);
    } else {
        fprintf(out, "%-18s %s events/s (unpaced)\n", "rate",
                human(res->events_per_s, a, sizeof(a)));
    }
    if (http) {
        fprintf(out, "%-18s %llu (%u events each), %llu not 200, %llu errors\n", "requests",
                (unsigned long long)res->requests, cfg->batch, (unsigned long long)res->http_non200,
                (unsigned long long)res->errors);
        fprintf(out, "%-18s %llu accepted, %llu rejected\n", "answers said",
                (unsigned long long)res->resp_accepted, (unsigned long long)res->resp_rejected);
        if (res->latency && res->latency->total) {
            const lg_hist_t *h = res->latency;
            fprintf(out, "%-18s p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", "latency ms",
                    ms(lg_hist_percentile(h, 50)), ms(lg_hist_percentile(h, 90)),
                    ms(lg_hist_percentile(h, 99)), ms(lg_hist_percentile(h, 99.9)), ms(h->max));
        }
    } else if (res->errors) {
        fprintf(out, "%-18s %llu\n", "errors", (unsigned long long)res->errors);
    }
    if (!res->has_server) {
        return;
    }
    fprintf(out, "%-18s %.0f accepted, %.0f rejected (%llu invalid sent)\n", "server counted",
            res->server_accepted, res->server_rejected, (unsigned long long)res->expected_invalid);
    fprintf(out, "%-18s %.3f s, %.3f us/event\n", "server CPU", res->server_cpu_s,
            res->cpu_us_per_event);
    fprintf(out, "%-18s %.4f per event\n", "heap allocations", res->allocs_per_event);
    if (isnan(res->pool_hit_rate)) {
        fprintf(out, "%-18s n/a (pool not used)\n", "pool hit rate");
    } else {
        fprintf(out, "%-18s %.3f%%\n", "pool hit rate", 100.0 * res->pool_hit_rate);
    }
    fprintf(out, "%-18s %.1f MiB%s\n", "peak RSS", res->peak_rss_bytes / 1048576.0,
            cfg->server_pid > 0 ? " (VmHWM)" : " (highest /metrics sample, every 0.5 s)");
    if (res->lost == 0) {
        fprintf(out, "%-18s none: accepted + rejected == sent\n", "lost");
    } else {
        fprintf(
            out, "%-18s %lld events: sent %llu, server counted %.0f\n", "LOST",
            (long long)res->lost,
            (unsigned long long)(res->warmup_events + res->sent_events - res->http_non200_events),
            (res->after.accepted - res->start.accepted) +
                (res->after.rejected - res->start.rejected));
    }
}
