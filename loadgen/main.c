/* main.c - loadgen's command line: `loadgen run` and `loadgen compare`. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lg_compare.h"
#include "lg_corpus.h"
#include "lg_nats.h"
#include "lg_run.h"

static const char usage_text[] =
    "usage: loadgen run --target tcp://HOST:PORT|http://HOST:PORT/v1/events [options]\n"
    "       loadgen compare --server PATH/TO/ingestd [options]\n"
    "\n"
    "load (run and compare):\n"
    "  --connections N      sender connections, one thread each (default 1)\n"
    "  --events N           events to send after warm-up (run: 100000; compare: 150000)\n"
    "  --duration D         send for D (10s, 500ms, 1m) instead of a count\n"
    "  --rate R             events/s over all connections, open loop; 0 = max (default 0)\n"
    "  --batch N            events per HTTP request (default 100)\n"
    "  --gzip               HTTP: send gzip bodies (Content-Encoding: gzip, zlib level 1)\n"
    "  --warmup D           load first, excluded from figures (run: 0; compare: 300ms)\n"
    "  --seed N             corpus seed (default 1)\n"
    "  --corpus-events N    distinct events generated (default 4096)\n"
    "  --mix S,M,L          percent small (~320 B), medium (~1.5 KB), large (>4 KB) (90,9,1)\n"
    "  --invalid PCT        percent invalid events (default 0)\n"
    "  --event-file PATH    send the NDJSON lines of PATH instead of a generated corpus\n"
    "  --write-bytes N      TCP: largest write (default 65536)\n"
    "  --drain-timeout D    TCP: wait this long for the server to close after our EOF (30s)\n"
    "  --json FILE          every figure as JSON\n"
    "  --no-progress        no progress line even on a terminal\n"
    "run only:\n"
    "  --metrics URL        scrape http://HOST:PORT/metrics before and after: CPU, allocations,\n"
    "                       pool hit rate, peak RSS, and the loss check (exit 1 on loss)\n"
    "  --server-pid PID     a server on this host: RSS and peak RSS from /proc/PID/status\n"
    "  --verify-nats nats://HOST:PORT[,...]/STREAM\n"
    "                       after the run, count the events the JetStream stream gained and\n"
    "                       compare with the accepted ones (exit 1 on a difference or duplicates)\n"
    "compare only:\n"
    "  --server PATH        the ingestd binary to start in each mode\n"
    "  --modes LIST         POOL+ALLOC[+PARSE],...: naive|pool, libc|mimalloc, scan|tree\n"
    "                       (default " LG_DEFAULT_MODES ")\n"
    "  --repeat N           runs per mode, alternating A B C D A B C D (default 3)\n"
    "  --workers N          ingestd --workers (default 1)\n"
    "  --pin S,L            pin the server to CPU S and loadgen to CPU L\n"
    "  --http               load over HTTP POST /v1/events instead of TCP\n"
    "  --server-arg ARG     pass ARG to ingestd (repeatable)\n"
    "  --html FILE          self-contained report with SVG charts\n"
    "  --quick              small, fast settings for CI (20000 events, 1 run, 100ms warm-up)\n"
    "exit status: 0 ok; 1 events lost, errors, or a server that failed; 2 bad usage\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(loadgen --help for usage)\n");
    va_end(ap);
    return 2;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < 0 || isnan(v)) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

/* "10s", "500ms", "2m", "1.5" (seconds). */
static int parse_duration(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0 || isnan(v)) {
        return -EINVAL;
    }
    if (*end == '\0' || strcmp(end, "s") == 0) {
        *out = v;
    } else if (strcmp(end, "ms") == 0) {
        *out = v / 1000;
    } else if (strcmp(end, "m") == 0) {
        *out = v * 60;
    } else {
        return -EINVAL;
    }
    return 0;
}

enum {
    OPT_TARGET = 256,
    OPT_CONNECTIONS,
    OPT_EVENTS,
    OPT_DURATION,
    OPT_RATE,
    OPT_BATCH,
    OPT_WARMUP,
    OPT_SEED,
    OPT_CORPUS_EVENTS,
    OPT_MIX,
    OPT_INVALID,
    OPT_EVENT_FILE,
    OPT_WRITE_BYTES,
    OPT_DRAIN_TIMEOUT,
    OPT_JSON,
    OPT_NO_PROGRESS,
    OPT_METRICS,
    OPT_SERVER_PID,
    OPT_VERIFY_NATS,
    OPT_SERVER,
    OPT_MODES,
    OPT_REPEAT,
    OPT_WORKERS,
    OPT_PIN,
    OPT_HTTP,
    OPT_GZIP,
    OPT_SERVER_ARG,
    OPT_HTML,
    OPT_QUICK,
    OPT_HELP,
};

static const struct option options[] = {
    {"target", required_argument, NULL, OPT_TARGET},
    {"connections", required_argument, NULL, OPT_CONNECTIONS},
    {"events", required_argument, NULL, OPT_EVENTS},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"rate", required_argument, NULL, OPT_RATE},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"seed", required_argument, NULL, OPT_SEED},
    {"corpus-events", required_argument, NULL, OPT_CORPUS_EVENTS},
    {"mix", required_argument, NULL, OPT_MIX},
    {"invalid", required_argument, NULL, OPT_INVALID},
    {"event-file", required_argument, NULL, OPT_EVENT_FILE},
    {"write-bytes", required_argument, NULL, OPT_WRITE_BYTES},
    {"drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT},
    {"json", required_argument, NULL, OPT_JSON},
    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
    {"metrics", required_argument, NULL, OPT_METRICS},
    {"server-pid", required_argument, NULL, OPT_SERVER_PID},
    {"verify-nats", required_argument, NULL, OPT_VERIFY_NATS},
    {"server", required_argument, NULL, OPT_SERVER},
    {"modes", required_argument, NULL, OPT_MODES},
    {"repeat", required_argument, NULL, OPT_REPEAT},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"pin", required_argument, NULL, OPT_PIN},
    {"http", no_argument, NULL, OPT_HTTP},
    {"gzip", no_argument, NULL, OPT_GZIP},
    {"server-arg", required_argument, NULL, OPT_SERVER_ARG},
    {"html", required_argument, NULL, OPT_HTML},
    {"quick", no_argument, NULL, OPT_QUICK},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

typedef struct {
    bool compare;
    lg_run_config_t *run;
    lg_compare_config_t *cmp;
    lg_corpus_config_t corpus;
    const char *event_file;
    const char *json_path;
    const char *target;
    bool no_progress;
    const char *verify_nats; /* run: nats://HOSTS/STREAM */
    bool events_set, warmup_set, repeat_set;
    bool quick;
} args_t;

static int parse_args(int argc, char **argv, args_t *a)
{
    uint64_t u;
    double d;
    int opt;
    optind = 2;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        const char *v = optarg;
        switch (opt) {
        case OPT_TARGET:
            a->target = v;
            break;
        case OPT_CONNECTIONS:
            if (parse_u64(v, &u) || u == 0 || u > 1024) {
                return usage_error("--connections %s: want 1 to 1024", v);
            }
            a->run->connections = (unsigned)u;
            break;
        case OPT_EVENTS:
            if (parse_u64(v, &u) || u == 0) {
                return usage_error("--events %s: want a positive count", v);
            }
            a->run->events = u;
            a->events_set = true;
            break;
        case OPT_DURATION:
            if (parse_duration(v, &d) || d <= 0) {
                return usage_error("--duration %s: want a duration like 10s or 500ms", v);
            }
            a->run->duration_s = d;
            a->run->events = 0;
            a->events_set = true;
            break;
        case OPT_RATE:
            if (parse_double(v, &d)) {
                return usage_error("--rate %s: want events per second, 0 for max", v);
            }
            a->run->rate = d;
            break;
        case OPT_BATCH:
            if (parse_u64(v, &u) || u == 0 || u > 1000000) {
                return usage_error("--batch %s: want 1 to 1000000", v);
            }
            a->run->batch = (unsigned)u;
            break;
        case OPT_WARMUP:
            if (parse_duration(v, &d)) {
                return usage_error("--warmup %s: want a duration like 1s or 0", v);
            }
            a->run->warmup_s = d;
            a->warmup_set = true;
            break;
        case OPT_SEED:
            if (parse_u64(v, &u)) {
                return usage_error("--seed %s: want an unsigned integer", v);
            }
            a->corpus.seed = u;
            break;
        case OPT_CORPUS_EVENTS:
            if (parse_u64(v, &u) || u == 0 || u > 10000000) {
                return usage_error("--corpus-events %s: want 1 to 10000000", v);
            }
            a->corpus.events = u;
            break;
        case OPT_MIX: {
            unsigned s, m, l;
            char extra;
            if (sscanf(v, "%u,%u,%u%c", &s, &m, &l, &extra) != 3 || s + m + l != 100) {
                return usage_error("--mix %s: want SMALL,MEDIUM,LARGE percentages summing to "
                                   "100",
                                   v);
            }
            a->corpus.small_pct = s;
            a->corpus.medium_pct = m;
            a->corpus.large_pct = l;
            break;
        }
        case OPT_INVALID:
            if (parse_u64(v, &u) || u > 100) {
                return usage_error("--invalid %s: want a percentage 0 to 100", v);
            }
            a->corpus.invalid_pct = (unsigned)u;
            break;
        case OPT_EVENT_FILE:
            a->event_file = v;
            break;
        case OPT_WRITE_BYTES:
            if (parse_u64(v, &u) || u < 1 || u > (64u << 20)) {
                return usage_error("--write-bytes %s: want 1 to 67108864", v);
            }
            a->run->write_bytes = (size_t)u;
            break;
        case OPT_DRAIN_TIMEOUT:
            if (parse_duration(v, &d)) {
                return usage_error("--drain-timeout %s: want a duration like 30s", v);
            }
            a->run->drain_timeout_s = d;
            break;
        case OPT_JSON:
            a->json_path = v;
            break;
        case OPT_NO_PROGRESS:
            a->no_progress = true;
            break;
        case OPT_METRICS:
            if (a->compare) {
                return usage_error("--metrics: compare scrapes the servers it starts");
            }
            if (lg_url_parse(v, &a->run->metrics) || strcmp(a->run->metrics.scheme, "http")) {
                return usage_error("--metrics %s: want http://HOST:PORT/metrics", v);
            }
            a->run->has_metrics = true;
            break;
        case OPT_VERIFY_NATS: {
            lg_nats_target_t t;
            if (a->compare || lg_nats_parse(v, &t) != 0) {
                return usage_error("--verify-nats %s: want nats://HOST:PORT[,HOST:PORT...]/STREAM"
                                   " (run only)",
                                   v);
            }
            a->verify_nats = v;
            break;
        }
        case OPT_SERVER_PID:
            if (a->compare || parse_u64(v, &u) || u == 0 || u > INT32_MAX) {
                return usage_error("--server-pid %s: want the pid of a running server (run only)",
                                   v);
            }
            a->run->server_pid = (pid_t)u;
            break;
        case OPT_GZIP:
            a->run->gzip = true;
            break;
        case OPT_SERVER:
        case OPT_MODES:
        case OPT_REPEAT:
        case OPT_WORKERS:
        case OPT_PIN:
        case OPT_HTTP:
        case OPT_SERVER_ARG:
        case OPT_HTML:
        case OPT_QUICK:
            if (!a->compare) {
                return usage_error("%s is a compare option", argv[optind - 1 - (v != NULL)]);
            }
            if (opt == OPT_SERVER) {
                a->cmp->server = v;
            } else if (opt == OPT_MODES) {
                if (lg_modes_parse(v, a->cmp)) {
                    return usage_error("--modes %s: want a list of naive|pool + libc|mimalloc, "
                                       "e.g. naive+libc,pool+libc",
                                       v);
                }
            } else if (opt == OPT_REPEAT) {
                if (parse_u64(v, &u) || u == 0 || u > 64) {
                    return usage_error("--repeat %s: want 1 to 64", v);
                }
                a->cmp->repeat = (unsigned)u;
                a->repeat_set = true;
            } else if (opt == OPT_WORKERS) {
                if (parse_u64(v, &u) || u == 0 || u > 256) {
                    return usage_error("--workers %s: want 1 to 256", v);
                }
                a->cmp->workers = (unsigned)u;
            } else if (opt == OPT_PIN) {
                int s, l;
                char extra;
                if (sscanf(v, "%d,%d%c", &s, &l, &extra) != 2 || s < 0 || l < 0) {
                    return usage_error("--pin %s: want SERVER_CPU,LOADGEN_CPU, e.g. 0,1", v);
                }
                a->cmp->pin_server = s;
                a->cmp->pin_loadgen = l;
            } else if (opt == OPT_HTTP) {
                a->cmp->http = true;
            } else if (opt == OPT_SERVER_ARG) {
                if (a->cmp->nserver_args == LG_MAX_SERVER_ARGS) {
                    return usage_error("--server-arg: at most 16");
                }
                a->cmp->server_args[a->cmp->nserver_args++] = v;
            } else if (opt == OPT_HTML) {
                a->cmp->html_path = v;
            } else {
                a->quick = true;
            }
            break;
        case OPT_HELP:
            fputs(usage_text, stdout);
            exit(0);
        default:
            return 2;
        }
    }
    if (optind < argc) {
        return usage_error("unexpected argument %s", argv[optind]);
    }
    return 0;
}

static int load_corpus(const args_t *a, lg_corpus_t *c)
{
    int rc = a->event_file ? lg_corpus_load(a->event_file, c) : lg_corpus_generate(&a->corpus, c);
    if (rc != 0) {
        fprintf(stderr, "loadgen: %s: %s\n", a->event_file ? a->event_file : "corpus",
                rc == -EINVAL ? "no events" : strerror(-rc));
    }
    return rc;
}

static int write_json(const char *path, json_t *j)
{
    int rc = json_dump_file(j, path, JSON_INDENT(2));
    if (rc != 0) {
        fprintf(stderr, "loadgen: cannot write %s\n", path);
    }
    return rc;
}

static json_t *corpus_json(const args_t *a, const lg_corpus_t *c)
{
    json_t *o = json_object();
    json_object_set_new(o, "source", json_string(a->event_file ? a->event_file : "generated"));
    json_object_set_new(o, "seed", json_integer((json_int_t)a->corpus.seed));
    json_object_set_new(o, "events", json_integer((json_int_t)c->count));
    json_object_set_new(o, "bytes", json_integer((json_int_t)c->size));
    json_object_set_new(o, "mean_event_bytes",
                        json_real(c->count ? (double)c->size / (double)c->count : 0));
    json_object_set_new(o, "invalid", json_integer((json_int_t)c->invalid));
    json_object_set_new(o, "over_4096_bytes", json_integer((json_int_t)c->over_block));
    json_object_set_new(o, "max_event_bytes", json_integer((json_int_t)c->max_line));
    return o;
}

/* The events the stream must have gained: the server's accepted delta over the whole run when
 * /metrics was scraped, else every valid event sent and answered 200. */
static bool verify_nats(const lg_nats_target_t *t, uint64_t base, const lg_run_result_t *res)
{
    uint64_t want;
    if (res->has_server) {
        want = (uint64_t)(res->after.accepted - res->start.accepted);
    } else {
        want =
            res->warmup_events + res->sent_events - res->http_non200_events - res->expected_invalid;
    }
    uint64_t msgs, events, dups;
    char err[256];
    if (lg_nats_count(t, base, want, 3000, 120000, &msgs, &events, &dups, err, sizeof(err)) != 0) {
        fprintf(stderr, "loadgen: --verify-nats: %s\n", err);
        return false;
    }
    bool ok = events == want && dups == 0;
    printf(
        "nats stream %-8s +%llu events in %llu messages, %llu duplicate ids; accepted %llu: %s\n",
        t->stream, (unsigned long long)events, (unsigned long long)msgs, (unsigned long long)dups,
        (unsigned long long)want, ok ? "ok" : "MISMATCH");
    return ok;
}

static int cmd_run(int argc, char **argv)
{
    lg_run_config_t run;
    lg_run_config_default(&run);
    args_t a = {.run = &run};
    lg_corpus_config_default(&a.corpus);
    int rc = parse_args(argc, argv, &a);
    if (rc) {
        return rc;
    }
    if (!a.target) {
        return usage_error("run needs --target tcp://HOST:PORT or http://HOST:PORT/v1/events");
    }
    if (lg_url_parse(a.target, &run.target)) {
        return usage_error("--target %s: want tcp://HOST:PORT or http://HOST:PORT/PATH", a.target);
    }
    if (strcmp(run.target.scheme, "http") == 0 && strcmp(run.target.path, "/") == 0) {
        strcpy(run.target.path, "/v1/events");
    }
    run.progress = !a.no_progress && isatty(2);
    lg_corpus_t corpus;
    if (load_corpus(&a, &corpus) != 0) {
        return 1;
    }
    run.corpus = &corpus;
    lg_nats_target_t nt;
    uint64_t nats_base = 0;
    if (a.verify_nats != NULL) {
        char err[256];
        lg_nats_parse(a.verify_nats, &nt);
        if (lg_nats_last_seq(&nt, &nats_base, err, sizeof(err)) != 0) {
            fprintf(stderr, "loadgen: --verify-nats: %s\n", err);
            lg_corpus_free(&corpus);
            return 1;
        }
    }
    lg_run_result_t res;
    rc = lg_run(&run, &res);
    if (rc != 0) {
        fprintf(stderr, "loadgen: %s\n", res.error[0] ? res.error : strerror(-rc));
    }
    lg_run_print(stdout, &run, &res);
    bool ok = rc == 0 && res.errors == 0 && (!res.loss_checked || res.lost == 0);
    if (res.loss_checked && res.lost != 0) {
        fprintf(stderr, "loadgen: events lost: sent %llu, server counted %lld fewer\n",
                (unsigned long long)(res.warmup_events + res.sent_events - res.http_non200_events),
                (long long)res.lost);
    }
    if (rc == 0 && a.verify_nats != NULL && !verify_nats(&nt, nats_base, &res)) {
        ok = false;
    }
    if (a.json_path) {
        json_t *j = lg_run_json(&run, &res);
        json_object_set_new(j, "corpus", corpus_json(&a, &corpus));
        if (write_json(a.json_path, j) != 0) {
            ok = false;
        }
        json_decref(j);
    }
    lg_run_result_free(&res);
    lg_corpus_free(&corpus);
    return ok ? 0 : 1;
}

static int compare_typed(int argc, char **argv, char *const *typed)
{
    lg_compare_config_t cmp;
    lg_compare_config_default(&cmp);
    cmp.argc = argc;
    cmp.argv = typed;
    args_t a = {.compare = true, .run = &cmp.run, .cmp = &cmp};
    lg_corpus_config_default(&a.corpus);
    int rc = parse_args(argc, argv, &a);
    if (rc) {
        return rc;
    }
    if (!cmp.server) {
        return usage_error("compare needs --server PATH/TO/ingestd");
    }
    if (a.quick) {
        if (!a.events_set) {
            cmp.run.events = 20000;
        }
        if (!a.repeat_set) {
            cmp.repeat = 1;
        }
        if (!a.warmup_set) {
            cmp.run.warmup_s = 0.1;
        }
    }
    if (cmp.run.events == 0) {
        return usage_error("compare needs --events (not --duration): every mode gets the same "
                           "load");
    }
    cmp.json_path = a.json_path;
    cmp.run.progress = false;
    lg_corpus_t corpus;
    if (load_corpus(&a, &corpus) != 0) {
        return 1;
    }
    cmp.run.corpus = &corpus;
    rc = lg_compare(&cmp);
    lg_corpus_free(&corpus);
    if (rc < 0) {
        fprintf(stderr, "loadgen: compare: %s\n", strerror(-rc));
        return 1;
    }
    return rc;
}

static int cmd_compare(int argc, char **argv)
{
    /* getopt_long permutes argv: the report shows the order the user typed. */
    char **typed = calloc((size_t)argc + 1, sizeof(*typed));
    if (!typed) {
        fprintf(stderr, "loadgen: out of memory\n");
        return 1;
    }
    memcpy(typed, argv, (size_t)argc * sizeof(*typed));
    int rc = compare_typed(argc, argv, typed);
    free(typed);
    return rc;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "run") == 0) {
        return cmd_run(argc, argv);
    }
    if (strcmp(argv[1], "compare") == 0) {
        return cmd_compare(argc, argv);
    }
    return usage_error("unknown command %s: want run or compare", argv[1]);
}
