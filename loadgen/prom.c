/* prom.c - URLs, a blocking HTTP GET, and a Prometheus text-format reader. */
#include "lg_prom.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int lg_url_parse(const char *url, lg_url_t *out)
{
    memset(out, 0, sizeof(*out));
    const char *p = strstr(url, "://");
    if (p) {
        size_t n = (size_t)(p - url);
        if (n >= sizeof(out->scheme)) {
            return -EINVAL;
        }
        memcpy(out->scheme, url, n);
        p += 3;
    } else {
        strcpy(out->scheme, "tcp");
        p = url;
    }
    if (strcmp(out->scheme, "tcp") != 0 && strcmp(out->scheme, "http") != 0) {
        return -EINVAL;
    }
    const char *host = p, *host_end, *colon;
    if (*p == '[') {
        host = p + 1;
        host_end = strchr(host, ']');
        if (!host_end) {
            return -EINVAL;
        }
        colon = host_end + 1;
        if (*colon != ':') {
            return -EINVAL;
        }
    } else {
        colon = strchr(p, ':');
        if (!colon) {
            return -EINVAL;
        }
        host_end = colon;
    }
    size_t hn = (size_t)(host_end - host);
    if (hn == 0 || hn >= sizeof(out->host)) {
        return -EINVAL;
    }
    memcpy(out->host, host, hn);
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (errno || end == colon + 1 || port == 0 || port > 65535 || (*end && *end != '/')) {
        return -EINVAL;
    }
    out->port = (unsigned)port;
    if (*end == '/') {
        if (strlen(end) >= sizeof(out->path)) {
            return -EINVAL;
        }
        strcpy(out->path, end);
    } else {
        strcpy(out->path, "/");
    }
    return 0;
}

int lg_connect(const char *host, unsigned port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    char ports[16];
    snprintf(ports, sizeof(ports), "%u", port);
    int rc = getaddrinfo(host, ports, &hints, &res);
    if (rc != 0) {
        return -EHOSTUNREACH;
    }
    int err = -ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = -errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            freeaddrinfo(res);
            return fd;
        }
        err = -errno;
        close(fd);
    }
    freeaddrinfo(res);
    return err;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int lg_http_get(const lg_url_t *url, const char *path, int timeout_ms, int *status, char **body,
                size_t *len)
{
    long long deadline = now_ms() + timeout_ms;
    int fd = lg_connect(url->host, url->port);
    if (fd < 0) {
        return fd;
    }
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s:%u\r\nUser-Agent: loadgen\r\n"
                     "Connection: close\r\n\r\n",
                     path ? path : url->path, url->host, url->port);
    if (n < 0 || (size_t)n >= sizeof(req) || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return -EIO;
    }
    size_t cap = 65536, got = 0;
    char *buf = malloc(cap);
    int err = 0;
    while (buf) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            err = -ETIMEDOUT;
            break;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR) {
            continue;
        }
        if (pr <= 0) {
            err = pr == 0 ? -ETIMEDOUT : -errno;
            break;
        }
        if (got + 1 >= cap) {
            char *p = realloc(buf, cap * 2);
            if (!p) {
                err = -ENOMEM;
                break;
            }
            buf = p;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + got, cap - got - 1, 0);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            err = -errno;
            break;
        }
        if (r == 0) {
            break;
        }
        got += (size_t)r;
        /* Stop early once a Content-Length body is complete (the server may keep the socket). */
        buf[got] = '\0';
        char *hend = strstr(buf, "\r\n\r\n");
        if (hend) {
            char *cl = strcasestr(buf, "\r\ncontent-length:");
            if (cl && cl < hend) {
                size_t want = strtoul(cl + 17, NULL, 10);
                if (got >= (size_t)(hend + 4 - buf) + want) {
                    break;
                }
            }
        }
    }
    close(fd);
    if (!buf) {
        return -ENOMEM;
    }
    if (err) {
        free(buf);
        return err;
    }
    buf[got] = '\0';
    int code = 0;
    char *hend = strstr(buf, "\r\n\r\n");
    if (!hend || sscanf(buf, "HTTP/1.%*d %d", &code) != 1) {
        free(buf);
        return -EPROTO;
    }
    size_t off = (size_t)(hend + 4 - buf);
    memmove(buf, buf + off, got - off + 1);
    *status = code;
    *body = buf;
    *len = got - off;
    return 0;
}

bool lg_http_ok(const lg_url_t *url, const char *path, int timeout_ms)
{
    int status = 0;
    char *body = NULL;
    size_t len = 0;
    if (lg_http_get(url, path, timeout_ms, &status, &body, &len) != 0) {
        return false;
    }
    free(body);
    return status == 200;
}

int lg_prom_sum(const char *text, const char *name, const char *label, double *out)
{
    size_t nlen = strlen(name);
    double sum = 0;
    int found = 0;
    const char *line = text;
    while (line && *line) {
        const char *eol = strchr(line, '\n');
        size_t llen = eol ? (size_t)(eol - line) : strlen(line);
        if (llen > nlen && line[0] != '#' && strncmp(line, name, nlen) == 0 &&
            (line[nlen] == '{' || line[nlen] == ' ')) {
            const char *v = line + nlen;
            int match = label == NULL;
            if (*v == '{') {
                const char *close = memchr(v, '}', llen - nlen);
                if (!close) {
                    goto next;
                }
                if (label) {
                    size_t lab = strlen(label);
                    for (const char *q = v; q + lab <= close; q++) {
                        if (strncmp(q, label, lab) == 0) {
                            match = 1;
                            break;
                        }
                    }
                }
                v = close + 1;
            }
            if (match) {
                char *end;
                double d = strtod(v, &end);
                if (end != v) {
                    sum += d;
                    found = 1;
                }
            }
        }
    next:
        line = eol ? eol + 1 : NULL;
    }
    if (!found) {
        return -ENOENT;
    }
    *out = sum;
    return 0;
}

static double family(const char *text, const char *name)
{
    double v;
    return lg_prom_sum(text, name, NULL, &v) == 0 ? v : NAN;
}

int lg_scrape(const lg_url_t *url, int timeout_ms, lg_scrape_t *out)
{
    int status = 0;
    char *body = NULL;
    size_t len = 0;
    int rc = lg_http_get(url, NULL, timeout_ms, &status, &body, &len);
    if (rc != 0) {
        return rc;
    }
    out->accepted = family(body, "ingestd_events_accepted_total");
    out->rejected = family(body, "ingestd_events_rejected_total");
    if (isnan(out->rejected) && !isnan(out->accepted)) {
        out->rejected = 0; /* a server that has rejected nothing may print no labelled sample */
    }
    out->cpu_seconds = family(body, "process_cpu_seconds_total");
    out->mallocs = family(body, "ingestd_memstats_mallocs_total");
    out->pool_gets = family(body, "ingestd_pool_gets_total");
    out->pool_misses = family(body, "ingestd_pool_misses_total");
    out->rss_bytes = family(body, "process_resident_memory_bytes");
    free(body);
    if (status != 200 || isnan(out->accepted)) {
        return -EPROTO;
    }
    return 0;
}
