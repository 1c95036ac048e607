/* config.h - ingestd's flags: defaults, parsing from argv and INGESTD_* variables, help text. */
#ifndef INGESTD_CONFIG_H
#define INGESTD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "server/allow.h"

/* A listen address: "HOST:PORT", "[V6]:PORT", ":PORT" (all IPv4 interfaces) or "off". */
typedef struct {
    int enabled;
    struct sockaddr_storage addr;
    char text[72]; /* as given (normalised), for logs */
} srv_addr_t;

/* How events are judged (--parse): the validating scanner, or jansson's tree. */
typedef enum {
    SRV_PARSE_SCAN = 0,
    SRV_PARSE_TREE = 1,
} srv_parse_t;

#define SRV_TEXT_MAX 1024 /* bytes of a text flag's value, NUL included */

typedef enum {
    SRV_LOG_TEXT = 0,
    SRV_LOG_JSON = 1,
} srv_log_format_t;

/* The effective configuration. Durations in milliseconds, 0 meaning "off" where the flag
 * allows it; sizes in bytes, 0 meaning "off" for memory_limit. */
typedef struct {
    srv_addr_t tcp;
    srv_addr_t http;
    srv_addr_t admin;
    unsigned workers;
    int pool;        /* 1 pooled, 0 naive */
    int parse;       /* srv_parse_t */
    int allocator;   /* mem_allocator_t */
    int pool_retain; /* percent, or POOL_RETAIN_OFF */
    uint64_t trim_interval_ms;
    uint64_t max_event_bytes;
    uint64_t max_body_bytes;
    uint64_t max_header_bytes;
    uint64_t max_connections;
    uint64_t idle_timeout_ms;
    uint64_t header_timeout_ms;
    uint64_t body_timeout_ms;
    char sink[4102]; /* "null", "file:PATH" or "nats://...", checked with sink_parse_spec */
    int file_sync;   /* 1: fdatasync before a batch counts as durable */
    int ack_durable; /* --ack: 1 durable (answer once the sink made the events durable), 0 accepted
                      */
    uint64_t ack_timeout_ms; /* --ack durable: 503 for a request not durable after this long */
    /* JetStream sink (sink.h's sink_nats_config_t); "" means unset. */
    char nats_stream[SRV_TEXT_MAX];
    int nats_create_stream;
    unsigned nats_replicas;
    char nats_creds[SRV_TEXT_MAX];
    char nats_token_file[SRV_TEXT_MAX];
    int nats_tls;
    char nats_ca[SRV_TEXT_MAX];
    unsigned nats_batch_events;
    uint64_t nats_batch_bytes;
    uint64_t nats_ack_timeout_ms;
    unsigned nats_max_inflight;
    uint64_t nats_reconnect_buffer;
    char instance_id[SRV_TEXT_MAX];
    uint64_t memory_limit;
    uint64_t shutdown_timeout_ms;
    srv_log_format_t log_format;
    srv_allow_t admin_allow;     /* peers the admin listener answers (others: 403) */
    uint64_t alloc_profile_rate; /* bytes per sampled allocation, 0: off */
    int memtrace;                /* 1: a memtrace line per trim cycle on stderr */
    /* Hostile clients (issue 11; docs/OPERATIONS.md "Threat model"). */
    uint64_t partial_budget;       /* bytes in unfinished lines (TCP, HTTP bodies); 0: off */
    uint64_t line_timeout_ms;      /* a started TCP line must end within this; 0: off */
    uint64_t max_conns_per_peer;   /* connections per peer address; 0: no cap */
    srv_allow_t ingest_allow;      /* peers both ingest ports serve (others are closed) */
    char ingest_tokens_file[4096]; /* bearer tokens for HTTP ingest; "": none asked */
    uint64_t max_gzip_ratio;       /* gzip bodies: decoded / compressed cap; 0: none */
} srv_config_t;

/* The partial-line budget in force: --partial-budget (0, "off": none), and at most half of
 * --memory-limit when both are set. Pure. */
uint64_t srv_config_partial_budget(const srv_config_t *cfg);

/* Fills cfg with every default (workers = usable CPUs). */
void srv_config_defaults(srv_config_t *cfg);

/* What srv_config_parse decided. */
typedef enum {
    SRV_CONFIG_RUN = 0,     /* start the service */
    SRV_CONFIG_EXIT_OK = 1, /* --help or --version was printed: exit 0 */
    SRV_CONFIG_ERROR = 2,   /* one line was written to err: exit 2 */
} srv_config_result_t;

/* Applies INGESTD_* variables (and INGESTD_DEBUG=memtrace=1, like --memtrace) from envp
 * (NULL-terminated "NAME=value" list, may be NULL), then argv (flags win), over the defaults
 * already in cfg. Flags take "--name value" or
 * "--name=value". Help and version go to out; a bad flag or value writes one line naming the
 * flag, the value and what is allowed to err. */
srv_config_result_t srv_config_parse(srv_config_t *cfg, int argc, char **argv, char **envp,
                                     FILE *out, FILE *err);

/* Pure value parsers. Each returns 0, or -EINVAL leaving *out untouched. */

/* "HOST:PORT", "[V6]:PORT", ":PORT", or "off" when allow_off. */
int srv_parse_addr(const char *s, int allow_off, srv_addr_t *out);
/* A decimal count of bytes with an optional binary suffix: K, KiB, M, MiB, G, GiB, T, TiB
 * (case-insensitive; "B" allowed). Overflow is an error. */
int srv_parse_bytes(const char *s, uint64_t *out);
/* A decimal number with a unit: ms, s, m, h ("0" alone is allowed). Result in milliseconds. */
int srv_parse_duration_ms(const char *s, uint64_t *out);
/* A decimal integer in [min, max]. */
int srv_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* "scan" or "tree"; and the name of a srv_parse_t. */
int srv_parse_parse(const char *s, srv_parse_t *out);
const char *srv_parse_name(srv_parse_t p);
/* "on"/"off" (also true/false, 1/0, yes/no). */
int srv_parse_bool(const char *s, int *out);

/* The i-th setting of the effective configuration, for the start log line: its flag name
 * (static) and its value formatted as a flag would take it. Returns 0, or -ENOENT past the end. */
int srv_config_item(const srv_config_t *cfg, size_t i, const char **name, char *val, size_t valsz);

#endif
