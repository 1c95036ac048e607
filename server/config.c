/* config.c - ingestd's flags: one table drives parsing, environment variables and --help. */
#include "server/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mem/mem.h"
#include "pool/pool.h"
#include "server/memtrace.h"
#include "sink/sink.h"

#ifndef INGESTD_VERSION
#define INGESTD_VERSION "0.0.0"
#endif

#define MS_PER_S 1000ull

typedef enum {
    K_ADDR,         /* srv_addr_t, never off */
    K_ADDR_OFF,     /* srv_addr_t, "off" allowed */
    K_UINT,         /* unsigned, [min, max] */
    K_UINT64,       /* uint64_t, [min, max] */
    K_BYTES,        /* uint64_t bytes, [min, max] */
    K_BYTES_OFF,    /* uint64_t bytes, "off" = 0 */
    K_DURATION,     /* uint64_t ms, [min, max] */
    K_DURATION_OFF, /* uint64_t ms, "off" = 0 */
    K_BOOL,         /* int, on|off */
    K_ALLOCATOR,    /* int, libc|mimalloc */
    K_RETAIN,       /* int, PERCENT|off */
    K_SINK,         /* char sink[] */
    K_TEXT,         /* char[SRV_TEXT_MAX], any text up to its size ("" allowed) */
    K_LOGFMT,       /* srv_log_format_t */
    K_PARSE,        /* srv_parse_t, scan|tree */
    K_ACK,          /* int, accepted|durable */
    K_ALLOW,        /* srv_allow_t */
    K_SWITCH,       /* int; "--name" alone means on, "--name=off" off */
    K_PATH,         /* char[max] path, "off" = "" */
} kind_t;

typedef struct {
    const char *name;
    const char *metavar;
    kind_t kind;
    size_t off;
    uint64_t min;
    uint64_t max;
    const char *help;
} flag_t;

#define F(field) offsetof(srv_config_t, field)
#define KIB 1024ull
#define MIB (1024ull * 1024)
#define GIB (1024ull * 1024 * 1024)

static const flag_t flags[] = {
    {"tcp", "HOST:PORT|off", K_ADDR_OFF, F(tcp), 0, 0, "NDJSON over TCP listen address"},
    {"http", "HOST:PORT|off", K_ADDR_OFF, F(http), 0, 0, "HTTP ingest listen address"},
    {"admin", "HOST:PORT|off", K_ADDR_OFF, F(admin), 0, 0,
     "control listener: /metrics, /healthz, /readyz, /debug/*"},
    {"admin-allow", "CIDR[,CIDR]", K_ALLOW, F(admin_allow), 0, 0,
     "peers the admin listener answers, IPv4 and IPv6; others get 403"},
    {"workers", "N", K_UINT, F(workers), 1, 1024,
     "worker threads; the default is the number of usable CPUs"},
    {"pool", "on|off", K_BOOL, F(pool), 0, 0, "pooled blocks and per-event arena (off: naive)"},
    {"parse", "scan|tree", K_PARSE, F(parse), 0, 0,
     "judge events with the validating scanner, or with jansson's tree (pooled per --pool)"},
    {"allocator", "libc|mimalloc", K_ALLOCATOR, F(allocator), 0, 0,
     "allocator under the counting layer"},
    {"pool-retain", "PERCENT|off", K_RETAIN, F(pool_retain), 0, 10000,
     "idle blocks kept at a trim, percent of peak in-use (off: never release)"},
    {"trim-interval", "DURATION|off", K_DURATION_OFF, F(trim_interval_ms), 1, 24 * 3600 * MS_PER_S,
     "how often each worker trims its pool cache"},
    {"max-event-bytes", "BYTES", K_BYTES, F(max_event_bytes), 1, GIB,
     "longest event; longer lines are rejected as too_large"},
    {"max-body-bytes", "BYTES", K_BYTES, F(max_body_bytes), 1, 64 * GIB,
     "largest HTTP request body (413 above)"},
    {"max-header-bytes", "BYTES", K_BYTES, F(max_header_bytes), 256, 64 * MIB,
     "largest HTTP request head (431 above)"},
    {"max-connections", "N", K_UINT64, F(max_connections), 1, 10000000,
     "open client connections over all workers; more are accepted and closed (counted)"},
    {"idle-timeout", "DURATION|off", K_DURATION_OFF, F(idle_timeout_ms), 1, 24 * 3600 * MS_PER_S,
     "close connections silent this long"},
    {"header-timeout", "DURATION|off", K_DURATION_OFF, F(header_timeout_ms), 1,
     24 * 3600 * MS_PER_S, "time to receive an HTTP request head"},
    {"body-timeout", "DURATION|off", K_DURATION_OFF, F(body_timeout_ms), 1, 24 * 3600 * MS_PER_S,
     "time to receive an HTTP request body"},
    {"sink", "null|file:PATH|nats://HOST:PORT[,HOST:PORT...]/SUBJECT", K_SINK, F(sink), 0, 0,
     "where accepted events go (nats: a JetStream stream, see --nats-*)"},
    {"ack", "accepted|durable", K_ACK, F(ack_durable), 0, 0,
     "what an HTTP 200 promises: the events are in the sink's memory, or as safe as the sink makes "
     "them (file: written, synced with --file-sync; nats: stored by the stream)"},
    {"ack-timeout", "DURATION", K_DURATION, F(ack_timeout_ms), 1, 3600 * MS_PER_S,
     "with --ack durable: a request still not durable after this is answered 503 (Retry-After)"},
    {"file-sync", "on|off", K_BOOL, F(file_sync), 0, 0,
     "file sink: fdatasync each batch before it counts as durable (group commit)"},
    {"nats-stream", "NAME", K_TEXT, F(nats_stream), 0, 0,
     "JetStream stream the subject belongs to (checked at start, Nats-Expected-Stream)"},
    {"nats-create-stream", "on|off", K_BOOL, F(nats_create_stream), 0, 0,
     "create --nats-stream (file storage, the sink's subject) when it does not exist"},
    {"nats-replicas", "N", K_UINT, F(nats_replicas), 1, 5, "replicas of a stream ingestd creates"},
    {"nats-creds", "FILE", K_TEXT, F(nats_creds), 0, 0, "NATS credentials file (JWT and nkey)"},
    {"nats-token-file", "FILE", K_TEXT, F(nats_token_file), 0, 0,
     "file holding a NATS auth token (read at start)"},
    {"nats-tls", "on|off", K_BOOL, F(nats_tls), 0, 0, "require TLS to the NATS servers"},
    {"nats-ca", "FILE", K_TEXT, F(nats_ca), 0, 0,
     "CA bundle to verify TLS NATS servers with (default: system)"},
    {"nats-batch-events", "N", K_UINT, F(nats_batch_events), 0, 1000000,
     "events per JetStream message at most; 0: as many as --nats-batch-bytes holds"},
    {"nats-batch-bytes", "BYTES", K_BYTES, F(nats_batch_bytes), 4 * KIB, 64 * MIB,
     "bytes of whole events per JetStream message at most (keep under the server's max_payload)"},
    {"nats-ack-timeout", "DURATION", K_DURATION, F(nats_ack_timeout_ms), 100, 600 * MS_PER_S,
     "a message not acknowledged this long is sent again (same Nats-Msg-Id)"},
    {"nats-max-inflight", "N", K_UINT, F(nats_max_inflight), 1, 1000000,
     "JetStream messages published and not yet acknowledged, at most"},
    {"nats-reconnect-buffer", "BYTES", K_BYTES, F(nats_reconnect_buffer), 64 * KIB, GIB,
     "publishes buffered while reconnecting to NATS"},
    {"instance-id", "TEXT", K_TEXT, F(instance_id), 0, 0,
     "prefix of this process's JetStream message ids; must be unique per run (default: "
     "HOST-RANDOM)"},
    {"memory-limit", "BYTES|off", K_BYTES_OFF, F(memory_limit), 1, UINT64_MAX,
     "above this many live bytes (counting layer): trim at once, pause reading until below"},
    {"shutdown-timeout", "DURATION", K_DURATION, F(shutdown_timeout_ms), 1, 3600 * MS_PER_S,
     "longest drain on SIGTERM/SIGINT"},
    {"log-format", "text|json", K_LOGFMT, F(log_format), 0, 0, "stderr log format"},
    {"alloc-profile-rate", "BYTES|off", K_BYTES_OFF, F(alloc_profile_rate), 1, GIB,
     "sample about one allocation per BYTES for /debug/allocs (suggested 512KiB)"},
    {"memtrace", "[on|off]", K_SWITCH, F(memtrace), 0, 0,
     "one line per trim cycle on stderr (also INGESTD_DEBUG=memtrace=1)"},
    /* Hostile clients (issue 11): docs/OPERATIONS.md, "Threat model". */
    {"partial-budget", "BYTES|off", K_BYTES_OFF, F(partial_budget), 4 * KIB, UINT64_MAX,
     "bytes held in unfinished lines (TCP, HTTP bodies) over all workers, at most half of "
     "--memory-limit (off: none); the oldest holders lose their lines (over_budget)"},
    {"line-timeout", "DURATION|off", K_DURATION_OFF, F(line_timeout_ms), 1, 24 * 3600 * MS_PER_S,
     "a started TCP line must end this soon, else it is dropped (slow_line)"},
    {"max-connections-per-peer", "N|0", K_UINT64, F(max_conns_per_peer), 0, 10000000,
     "ingest connections per peer address (0: no cap); more are refused"},
    {"ingest-allow", "CIDR[,CIDR]", K_ALLOW, F(ingest_allow), 0, 0,
     "peers both ingest ports serve; others are closed (HTTP: 403)"},
    {"ingest-tokens-file", "PATH|off", K_PATH, F(ingest_tokens_file), 0,
     sizeof(((srv_config_t *)0)->ingest_tokens_file),
     "bearer tokens HTTP ingest requires, one a line; reloaded on SIGHUP"},
    {"max-gzip-ratio", "N|0", K_UINT64, F(max_gzip_ratio), 0, 1000000,
     "gzip bodies decoding to more than N times their size get 413 (0: no cap)"},
};
#define NFLAGS (sizeof(flags) / sizeof(flags[0]))

static unsigned usable_cpus(void)
{
    cpu_set_t set;

    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) {
        return (unsigned)CPU_COUNT(&set);
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

void srv_config_defaults(srv_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    (void)srv_parse_addr("0.0.0.0:7070", 0, &cfg->tcp);
    (void)srv_parse_addr("0.0.0.0:8080", 0, &cfg->http);
    (void)srv_parse_addr("127.0.0.1:6060", 0, &cfg->admin);
    cfg->workers = usable_cpus();
    if (cfg->workers > 1024) {
        cfg->workers = 1024;
    }
    cfg->pool = 1;
    cfg->parse = SRV_PARSE_SCAN;
    cfg->allocator = MEM_ALLOCATOR_LIBC;
    cfg->pool_retain = 100;
    cfg->trim_interval_ms = 10 * MS_PER_S;
    cfg->max_event_bytes = MIB;
    cfg->max_body_bytes = 8 * MIB;
    cfg->max_header_bytes = 16 * KIB;
    cfg->max_connections = 10000;
    cfg->idle_timeout_ms = 60 * MS_PER_S;
    cfg->header_timeout_ms = 10 * MS_PER_S;
    cfg->body_timeout_ms = 30 * MS_PER_S;
    snprintf(cfg->sink, sizeof(cfg->sink), "null");
    snprintf(cfg->nats_stream, sizeof(cfg->nats_stream), "%s", SINK_NATS_DEFAULT_STREAM);
    cfg->nats_replicas = 1;
    cfg->nats_ack_timeout_ms = 2 * MS_PER_S;
    cfg->nats_max_inflight = 1024;
    cfg->nats_batch_bytes = SINK_NATS_DEFAULT_BATCH_BYTES;
    cfg->nats_reconnect_buffer = 8 * MIB;
    cfg->memory_limit = 0;
    cfg->shutdown_timeout_ms = 10 * MS_PER_S;
    cfg->ack_durable = 1;
    cfg->ack_timeout_ms = 10 * MS_PER_S;
    cfg->log_format = SRV_LOG_TEXT;
    srv_allow_default(&cfg->admin_allow);
    cfg->alloc_profile_rate = 0;
    cfg->memtrace = 0;
    /* Hostile clients (issue 11): open by default, bounded by default. */
    cfg->partial_budget = 64 * MIB;
    cfg->line_timeout_ms = 30 * MS_PER_S;
    cfg->max_conns_per_peer = 256;
    char errbuf[SRV_ALLOW_ERRLEN];
    (void)srv_allow_parse("0.0.0.0/0,::/0", &cfg->ingest_allow, errbuf);
    cfg->ingest_tokens_file[0] = '\0';
    cfg->max_gzip_ratio = 200;
}

uint64_t srv_config_partial_budget(const srv_config_t *cfg)
{
    uint64_t b = cfg->partial_budget;
    if (cfg->memory_limit != 0 && b > cfg->memory_limit / 2) {
        b = cfg->memory_limit / 2;
    }
    return b;
}

/* The last --admin-allow error (config parsing is single-threaded). */
static char allow_err[SRV_ALLOW_ERRLEN];

/* ---- pure parsers ---- */

int srv_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (s == NULL || *s == '\0') {
        return -EINVAL;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (!isdigit((unsigned char)*p)) {
            return -EINVAL;
        }
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return -EINVAL;
        }
        v = v * 10 + d;
    }
    if (v < min || v > max) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

/* Splits s into a decimal number and a unit suffix. Returns 0 or -EINVAL. */
static int split_number(const char *s, uint64_t *num, const char **unit)
{
    const char *p = s;
    uint64_t v = 0;

    if (s == NULL || !isdigit((unsigned char)*s)) {
        return -EINVAL;
    }
    while (isdigit((unsigned char)*p)) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return -EINVAL;
        }
        v = v * 10 + d;
        p++;
    }
    *num = v;
    *unit = p;
    return 0;
}

int srv_parse_bytes(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {
        {"", 1},      {"b", 1},   {"k", KIB},   {"kib", KIB},     {"m", MIB},
        {"mib", MIB}, {"g", GIB}, {"gib", GIB}, {"t", GIB * KIB}, {"tib", GIB * KIB},
    };
    uint64_t v;
    const char *unit;

    if (split_number(s, &v, &unit) != 0) {
        return -EINVAL;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(unit, units[i].unit) == 0) {
            if (v > UINT64_MAX / units[i].mult) {
                return -EINVAL;
            }
            *out = v * units[i].mult;
            return 0;
        }
    }
    return -EINVAL;
}

int srv_parse_duration_ms(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {{"ms", 1}, {"s", MS_PER_S}, {"m", 60 * MS_PER_S}, {"h", 3600 * MS_PER_S}};
    uint64_t v;
    const char *unit;

    if (split_number(s, &v, &unit) != 0) {
        return -EINVAL;
    }
    if (*unit == '\0') {
        if (v != 0) {
            return -EINVAL;
        }
        *out = 0;
        return 0;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(unit, units[i].unit) == 0) {
            if (v > UINT64_MAX / units[i].mult) {
                return -EINVAL;
            }
            *out = v * units[i].mult;
            return 0;
        }
    }
    return -EINVAL;
}

int srv_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"on", "true", "1", "yes"};
    static const char *const no[] = {"off", "false", "0", "no"};

    if (s == NULL) {
        return -EINVAL;
    }
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -EINVAL;
}

int srv_parse_addr(const char *s, int allow_off, srv_addr_t *out)
{
    srv_addr_t a;
    char host[48];
    const char *colon;
    const char *hs;
    size_t hl;
    uint64_t port;

    memset(&a, 0, sizeof(a));
    if (s == NULL) {
        return -EINVAL;
    }
    if (strcmp(s, "off") == 0) {
        if (!allow_off) {
            return -EINVAL;
        }
        snprintf(a.text, sizeof(a.text), "off");
        *out = a;
        return 0;
    }
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':') {
            return -EINVAL;
        }
        hs = s + 1;
        hl = (size_t)(close - hs);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            return -EINVAL;
        }
        hs = s;
        hl = (size_t)(colon - s);
        if (memchr(hs, ':', hl) != NULL) {
            return -EINVAL; /* IPv6 needs brackets */
        }
    }
    if (hl >= sizeof(host) || srv_parse_uint(colon + 1, 0, 65535, &port) != 0) {
        return -EINVAL;
    }
    memcpy(host, hs, hl);
    host[hl] = '\0';
    if (hl == 0) {
        snprintf(host, sizeof(host), "0.0.0.0");
    }
    if (s[0] == '[') {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a.addr;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1) {
            return -EINVAL;
        }
        snprintf(a.text, sizeof(a.text), "[%s]:%u", host, (unsigned)port);
    } else {
        struct sockaddr_in *in4 = (struct sockaddr_in *)&a.addr;
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &in4->sin_addr) != 1) {
            return -EINVAL;
        }
        snprintf(a.text, sizeof(a.text), "%s:%u", host, (unsigned)port);
    }
    a.enabled = 1;
    *out = a;
    return 0;
}

/* ---- table-driven flag handling ---- */

static void format_bytes(uint64_t v, char *buf, size_t sz)
{
    if (v != 0 && v % GIB == 0) {
        snprintf(buf, sz, "%lluGiB", (unsigned long long)(v / GIB));
    } else if (v != 0 && v % MIB == 0) {
        snprintf(buf, sz, "%lluMiB", (unsigned long long)(v / MIB));
    } else if (v != 0 && v % KIB == 0) {
        snprintf(buf, sz, "%lluKiB", (unsigned long long)(v / KIB));
    } else {
        snprintf(buf, sz, "%llu", (unsigned long long)v);
    }
}

static void format_duration(uint64_t ms, char *buf, size_t sz)
{
    if (ms != 0 && ms % (3600 * MS_PER_S) == 0) {
        snprintf(buf, sz, "%lluh", (unsigned long long)(ms / (3600 * MS_PER_S)));
    } else if (ms != 0 && ms % (60 * MS_PER_S) == 0) {
        snprintf(buf, sz, "%llum", (unsigned long long)(ms / (60 * MS_PER_S)));
    } else if (ms % MS_PER_S == 0) {
        snprintf(buf, sz, "%llus", (unsigned long long)(ms / MS_PER_S));
    } else {
        snprintf(buf, sz, "%llums", (unsigned long long)ms);
    }
}

static void format_value(const srv_config_t *cfg, const flag_t *f, char *buf, size_t sz)
{
    const char *base = (const char *)cfg;

    switch (f->kind) {
    case K_ADDR:
    case K_ADDR_OFF:
        snprintf(buf, sz, "%s", ((const srv_addr_t *)(base + f->off))->text);
        break;
    case K_UINT:
        snprintf(buf, sz, "%u", *(const unsigned *)(base + f->off));
        break;
    case K_UINT64:
        snprintf(buf, sz, "%llu", (unsigned long long)*(const uint64_t *)(base + f->off));
        break;
    case K_BYTES:
    case K_BYTES_OFF: {
        uint64_t v = *(const uint64_t *)(base + f->off);
        if (f->kind == K_BYTES_OFF && v == 0) {
            snprintf(buf, sz, "off");
        } else {
            format_bytes(v, buf, sz);
        }
        break;
    }
    case K_DURATION:
    case K_DURATION_OFF: {
        uint64_t v = *(const uint64_t *)(base + f->off);
        if (f->kind == K_DURATION_OFF && v == 0) {
            snprintf(buf, sz, "off");
        } else {
            format_duration(v, buf, sz);
        }
        break;
    }
    case K_BOOL:
    case K_SWITCH:
        snprintf(buf, sz, "%s", *(const int *)(base + f->off) ? "on" : "off");
        break;
    case K_ALLOW:
        srv_allow_format((const srv_allow_t *)(base + f->off), buf, sz);
        break;
    case K_PATH:
        snprintf(buf, sz, "%s", *(base + f->off) != '\0' ? base + f->off : "off");
        break;
    case K_ALLOCATOR:
        snprintf(buf, sz, "%s", cfg->allocator == MEM_ALLOCATOR_MIMALLOC ? "mimalloc" : "libc");
        break;
    case K_RETAIN:
        if (cfg->pool_retain == POOL_RETAIN_OFF) {
            snprintf(buf, sz, "off");
        } else {
            snprintf(buf, sz, "%d", cfg->pool_retain);
        }
        break;
    case K_SINK:
        snprintf(buf, sz, "%s", cfg->sink);
        break;
    case K_TEXT:
        snprintf(buf, sz, "%s", (const char *)(base + f->off));
        break;
    case K_LOGFMT:
        snprintf(buf, sz, "%s", cfg->log_format == SRV_LOG_JSON ? "json" : "text");
        break;
    case K_PARSE:
        snprintf(buf, sz, "%s", srv_parse_name((srv_parse_t)cfg->parse));
        break;
    case K_ACK:
        snprintf(buf, sz, "%s", cfg->ack_durable ? "durable" : "accepted");
        break;
    }
}

/* Describes what a flag allows, for the error line. */
static void allowed_text(const flag_t *f, char *buf, size_t sz)
{
    char lo[32];
    char hi[32];

    switch (f->kind) {
    case K_UINT:
    case K_UINT64:
        snprintf(buf, sz, "an integer from %llu to %llu", (unsigned long long)f->min,
                 (unsigned long long)f->max);
        break;
    case K_BYTES:
    case K_BYTES_OFF:
        format_bytes(f->min, lo, sizeof(lo));
        format_bytes(f->max, hi, sizeof(hi));
        snprintf(buf, sz, "bytes from %s to %s (suffixes K/KiB, M/MiB, G/GiB, T/TiB)%s", lo, hi,
                 f->kind == K_BYTES_OFF ? " or off" : "");
        break;
    case K_DURATION:
    case K_DURATION_OFF:
        format_duration(f->min, lo, sizeof(lo));
        format_duration(f->max, hi, sizeof(hi));
        snprintf(buf, sz, "a duration from %s to %s with a unit ms, s, m or h%s", lo, hi,
                 f->kind == K_DURATION_OFF ? ", or off" : "");
        break;
    case K_RETAIN:
        snprintf(buf, sz, "a percent from 0 to %llu, or off", (unsigned long long)f->max);
        break;
    case K_ADDR:
    case K_ADDR_OFF:
        snprintf(buf, sz, "IPV4:PORT, [IPV6]:PORT or :PORT (port 0 to 65535)%s",
                 f->kind == K_ADDR_OFF ? ", or off" : "");
        break;
    case K_SINK:
        snprintf(buf, sz, "%s", SINK_SPEC_ALLOWED);
        break;
    case K_TEXT:
        snprintf(buf, sz, "text of at most %d bytes", SRV_TEXT_MAX - 1);
        break;
    case K_ALLOW:
        snprintf(buf, sz, "%s", allow_err);
        break;
    default:
        snprintf(buf, sz, "%s", f->metavar);
        break;
    }
}

const char *srv_parse_name(srv_parse_t p)
{
    return p == SRV_PARSE_TREE ? "tree" : "scan";
}

int srv_parse_parse(const char *s, srv_parse_t *out)
{
    if (strcmp(s, "scan") == 0) {
        *out = SRV_PARSE_SCAN;
    } else if (strcmp(s, "tree") == 0) {
        *out = SRV_PARSE_TREE;
    } else {
        return -EINVAL;
    }
    return 0;
}

static int apply(srv_config_t *cfg, const flag_t *f, const char *v)
{
    char *base = (char *)cfg;
    uint64_t u;

    switch (f->kind) {
    case K_ADDR:
    case K_ADDR_OFF:
        return srv_parse_addr(v, f->kind == K_ADDR_OFF, (srv_addr_t *)(base + f->off));
    case K_UINT:
        if (srv_parse_uint(v, f->min, f->max, &u) != 0) {
            return -EINVAL;
        }
        *(unsigned *)(base + f->off) = (unsigned)u;
        return 0;
    case K_UINT64:
        return srv_parse_uint(v, f->min, f->max, (uint64_t *)(base + f->off));
    case K_BYTES:
    case K_BYTES_OFF:
        if (f->kind == K_BYTES_OFF && strcmp(v, "off") == 0) {
            *(uint64_t *)(base + f->off) = 0;
            return 0;
        }
        if (srv_parse_bytes(v, &u) != 0 || u < f->min || u > f->max) {
            return -EINVAL;
        }
        *(uint64_t *)(base + f->off) = u;
        return 0;
    case K_DURATION:
    case K_DURATION_OFF:
        if (f->kind == K_DURATION_OFF && strcmp(v, "off") == 0) {
            *(uint64_t *)(base + f->off) = 0;
            return 0;
        }
        if (srv_parse_duration_ms(v, &u) != 0 || u < f->min || u > f->max) {
            return -EINVAL;
        }
        *(uint64_t *)(base + f->off) = u;
        return 0;
    case K_BOOL:
    case K_SWITCH:
        return srv_parse_bool(v, (int *)(base + f->off));
    case K_ALLOW:
        return srv_allow_parse(v, (srv_allow_t *)(base + f->off), allow_err);
    case K_PATH:
        if (strcmp(v, "off") == 0) {
            *(base + f->off) = '\0';
            return 0;
        }
        if (*v == '\0' || strlen(v) >= f->max) {
            return -EINVAL;
        }
        memcpy(base + f->off, v, strlen(v) + 1);
        return 0;
    case K_ALLOCATOR:
        if (strcmp(v, "libc") == 0) {
            cfg->allocator = MEM_ALLOCATOR_LIBC;
        } else if (strcmp(v, "mimalloc") == 0) {
            cfg->allocator = MEM_ALLOCATOR_MIMALLOC;
        } else {
            return -EINVAL;
        }
        return 0;
    case K_RETAIN: {
        char num[32];
        size_t n = strlen(v);
        if (strcmp(v, "off") == 0) {
            cfg->pool_retain = POOL_RETAIN_OFF;
            return 0;
        }
        if (n == 0 || n >= sizeof(num)) {
            return -EINVAL;
        }
        memcpy(num, v, n + 1);
        if (num[n - 1] == '%') {
            num[n - 1] = '\0';
        }
        if (srv_parse_uint(num, f->min, f->max, &u) != 0) {
            return -EINVAL;
        }
        cfg->pool_retain = (int)u;
        return 0;
    }
    case K_SINK:
        if (sink_parse_spec(v, NULL, NULL) != 0 || strlen(v) >= sizeof(cfg->sink)) {
            return -EINVAL;
        }
        snprintf(cfg->sink, sizeof(cfg->sink), "%s", v);
        return 0;
    case K_TEXT:
        if (strlen(v) >= SRV_TEXT_MAX) {
            return -EINVAL;
        }
        snprintf((char *)base + f->off, SRV_TEXT_MAX, "%s", v);
        return 0;
    case K_LOGFMT:
        if (strcmp(v, "text") == 0) {
            cfg->log_format = SRV_LOG_TEXT;
        } else if (strcmp(v, "json") == 0) {
            cfg->log_format = SRV_LOG_JSON;
        } else {
            return -EINVAL;
        }
        return 0;
    case K_ACK:
        if (strcmp(v, "durable") == 0) {
            cfg->ack_durable = 1;
        } else if (strcmp(v, "accepted") == 0) {
            cfg->ack_durable = 0;
        } else {
            return -EINVAL;
        }
        return 0;
    case K_PARSE: {
        srv_parse_t p;
        if (srv_parse_parse(v, &p) != 0) {
            return -EINVAL;
        }
        cfg->parse = (int)p;
        return 0;
    }
    }
    return -EINVAL;
}

static void env_name(const flag_t *f, char *buf, size_t sz)
{
    size_t n = (size_t)snprintf(buf, sz, "INGESTD_");
    for (const char *p = f->name; *p != '\0' && n + 1 < sz; p++) {
        buf[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    }
    buf[n] = '\0';
}

static const flag_t *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < NFLAGS; i++) {
        if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0) {
            return &flags[i];
        }
    }
    return NULL;
}

static void bad_value(FILE *err, const flag_t *f, const char *v, const char *from)
{
    char allowed[SRV_ALLOW_ERRLEN + 40];

    allowed_text(f, allowed, sizeof(allowed));
    if (f->kind == K_ALLOW) {
        fprintf(err, "ingestd: invalid value \"%s\" for --%s%s: %s\n", v, f->name, from, allowed);
        return;
    }
    fprintf(err, "ingestd: invalid value \"%s\" for --%s%s: allowed: %s\n", v, f->name, from,
            allowed);
}

static void print_help(FILE *out)
{
    srv_config_t def;
    char val[160];
    char env[64];

    srv_config_defaults(&def);
    fprintf(out, "usage: ingestd [FLAGS]\n"
                 "Ingests newline-delimited JSON events over TCP and HTTP.\n"
                 "Every flag may also be set as an INGESTD_<NAME> environment variable; flags "
                 "win.\n\n");
    for (size_t i = 0; i < NFLAGS; i++) {
        const flag_t *f = &flags[i];
        format_value(&def, f, val, sizeof(val));
        if (val[0] == '\0') {
            snprintf(val, sizeof(val), "none"); /* an unset text flag */
        }
        env_name(f, env, sizeof(env));
        fprintf(out, "  --%s %s\n      %s (default %s; env %s)\n", f->name, f->metavar, f->help,
                val, env);
    }
    fprintf(out, "  --help      this text\n  --version   print the version\n"
                 "Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reopens the file sink and "
                 "reloads --ingest-tokens-file.\n");
}

srv_config_result_t srv_config_parse(srv_config_t *cfg, int argc, char **argv, char **envp,
                                     FILE *out, FILE *err)
{
    char env[64];

    for (size_t i = 0; envp != NULL && i < NFLAGS; i++) {
        env_name(&flags[i], env, sizeof(env));
        size_t n = strlen(env);
        for (char **e = envp; *e != NULL; e++) {
            if (strncmp(*e, env, n) == 0 && (*e)[n] == '=') {
                if (apply(cfg, &flags[i], *e + n + 1) != 0) {
                    char from[80];
                    snprintf(from, sizeof(from), " (from %s)", env);
                    bad_value(err, &flags[i], *e + n + 1, from);
                    return SRV_CONFIG_ERROR;
                }
            }
        }
    }
    for (char **e = envp; e != NULL && *e != NULL; e++) {
        if (strncmp(*e, "INGESTD_DEBUG=", 14) == 0 && srv_debug_memtrace(*e + 14)) {
            cfg->memtrace = 1;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_help(out);
            return SRV_CONFIG_EXIT_OK;
        }
        if (strcmp(a, "--version") == 0) {
            fprintf(out, "ingestd %s\n", INGESTD_VERSION);
            return SRV_CONFIG_EXIT_OK;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(err, "ingestd: unexpected argument \"%s\" (flags start with --; see --help)\n",
                    a);
            return SRV_CONFIG_ERROR;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq != NULL ? (size_t)(eq - name) : strlen(name);
        const flag_t *f = find_flag(name, nlen);
        if (f == NULL) {
            fprintf(err, "ingestd: unknown flag \"%.*s\" (see --help)\n", (int)(nlen + 2), a);
            return SRV_CONFIG_ERROR;
        }
        const char *v;
        if (eq != NULL) {
            v = eq + 1;
        } else if (f->kind == K_SWITCH) {
            v = "on";
        } else if (i + 1 < argc) {
            v = argv[++i];
        } else {
            fprintf(err, "ingestd: --%s needs a value: %s\n", f->name, f->metavar);
            return SRV_CONFIG_ERROR;
        }
        if (apply(cfg, f, v) != 0) {
            bad_value(err, f, v, "");
            return SRV_CONFIG_ERROR;
        }
    }
    return SRV_CONFIG_RUN;
}

int srv_config_item(const srv_config_t *cfg, size_t i, const char **name, char *val, size_t valsz)
{
    if (i >= NFLAGS) {
        return -ENOENT;
    }
    *name = flags[i].name;
    format_value(cfg, &flags[i], val, valsz);
    return 0;
}
