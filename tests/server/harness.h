/* harness.h - integration test helpers: start the real ingestd on loopback with port 0, read its
 * ports from the start log line, talk over real sockets, scrape /metrics, stop it. */
#ifndef INGESTD_TEST_HARNESS_H
#define INGESTD_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;
    char log_path[64]; /* ingestd's stderr, a temporary file */
    uint16_t tcp_port;
    uint16_t http_port;
    uint16_t admin_port;
} ih_server_t;

/* Starts ingestd with --tcp/--http/--admin on 127.0.0.1:0, --workers 2 (unless given) and the
 * extra flags (NULL-terminated, may be NULL), then waits (at most 30 s) for its "listening"
 * line. Returns 0 or -1 (the log is copied to the test's stderr). */
int ih_start(ih_server_t *s, const char *const *extra);

/* Sends sig and waits (at most 60 s) for the exit. Returns the exit status (0..255), 128+signal
 * when killed, or -1 on timeout (then SIGKILLed). A non-zero status copies the log to stderr. */
int ih_stop(ih_server_t *s, int sig);

/* Removes the log file. */
void ih_cleanup(ih_server_t *s);

/* Counters of one scrape: accepted and each rejection reason (index: ing_verdict_t). */
#define IH_REASONS 8 /* accepted and each reason of ingest/verdict.h, in its order */
typedef struct {
    double v[IH_REASONS];
} ih_counts_t;
int ih_counts(uint16_t port, ih_counts_t *out);
/* Scrapes until accepted + rejected reaches base's sum + n (at most timeout_ms); fills out with
 * the deltas from base. Returns 0, or -1 on timeout. */
int ih_wait_counts(uint16_t port, const ih_counts_t *base, double n, int timeout_ms,
                   ih_counts_t *delta);

/* The whole stderr log so far, NUL-terminated (caller frees). */
char *ih_log(const ih_server_t *s);

/* The value of "key=NUMBER" in the log's last line containing msg; -1 when absent. */
int64_t ih_log_value(const ih_server_t *s, const char *msg, const char *key);

/* A blocking TCP connection to 127.0.0.1:port, or -1. */
int ih_connect(uint16_t port);
/* The same from source address src (a loopback address; NULL: any), with a receive timeout of
 * rcv_timeout_s seconds (0: none). */
int ih_connect_from(const char *src, uint16_t port, int rcv_timeout_s);
/* Writes all of data; returns 0 or -1 (peer gone). */
int ih_send_all(int fd, const void *data, size_t n);

/* One HTTP exchange on a new connection: writes req, reads until the peer closes (requests
 * should say Connection: close) or max bytes. Returns the response (caller frees) or NULL. */
char *ih_http(uint16_t port, const char *req, size_t req_len, size_t *resp_len);
/* The same over a connected socket fd (closed here; fd < 0 returns NULL). */
char *ih_http_fd(int fd, const char *req, size_t req_len, size_t *resp_len);
/* The status code of a response, or -1. */
int ih_http_status(const char *resp);

/* GET /metrics from port and returns the value of the sample whose name and labels are exactly
 * `sample` (e.g. `ingestd_events_rejected_total{reason="parse"}`); NAN when absent or on error. */
double ih_metric(uint16_t port, const char *sample);

/* Polls ih_metric until it is >= want, at most timeout_ms. Returns the last value read. */
double ih_wait_metric(uint16_t port, const char *sample, double want, int timeout_ms);

/* accepted + every rejection reason, from one scrape. */
double ih_events_seen(uint16_t port);

#endif
