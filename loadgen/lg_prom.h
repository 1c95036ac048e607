/* lg_prom.h - the little HTTP client loadgen needs (URLs, a blocking GET) and a reader of the
 * Prometheus text format that sums a metric family, plus the scrape of ingestd's figures. */
#ifndef INGESTD_LG_PROM_H
#define INGESTD_LG_PROM_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char scheme[8]; /* "tcp" or "http" */
    char host[256];
    unsigned port;
    char path[512]; /* "/" when the URL has none */
} lg_url_t;

/* Parses "tcp://HOST:PORT" or "http://HOST:PORT[/path]" (HOST may be [v6]). A bare "HOST:PORT"
 * is taken as tcp. Returns 0 or -EINVAL. */
int lg_url_parse(const char *url, lg_url_t *out);

/* Connects a blocking TCP socket (TCP_NODELAY) to host:port. Returns the fd or a negative errno. */
int lg_connect(const char *host, unsigned port);

/* GET url->path with a timeout for the whole exchange. On 0, *status holds the HTTP status and
 * *body a new NUL-terminated buffer (free() it) of *len bytes. Returns 0 or a negative errno
 * (-ETIMEDOUT, -EPROTO for a response that is not HTTP). */
int lg_http_get(const lg_url_t *url, const char *path, int timeout_ms, int *status, char **body,
                size_t *len);

/* Sums every sample of family `name` (exact name, any labels) whose label set contains
 * `label` (e.g. "reason=\"parse\"") when label is not NULL. Returns 0 with *out set, or -ENOENT
 * when no sample matched. */
int lg_prom_sum(const char *text, const char *name, const char *label, double *out);

/* The server figures loadgen reads from /metrics. Missing families are NAN. */
typedef struct {
    double accepted;    /* ingestd_events_accepted_total */
    double rejected;    /* sum of ingestd_events_rejected_total{reason} */
    double cpu_seconds; /* process_cpu_seconds_total */
    double mallocs;     /* ingestd_memstats_mallocs_total */
    double pool_gets;   /* ingestd_pool_gets_total */
    double pool_misses; /* ingestd_pool_misses_total */
    double rss_bytes;   /* process_resident_memory_bytes */
} lg_scrape_t;

/* Scrapes url (its path, e.g. /metrics). Returns 0, a negative errno, or -EPROTO for a non-200
 * answer or one without ingestd_events_accepted_total. */
int lg_scrape(const lg_url_t *url, int timeout_ms, lg_scrape_t *out);

/* True when GET path on url's host answers 200 within timeout_ms. */
bool lg_http_ok(const lg_url_t *url, const char *path, int timeout_ms);

#endif
