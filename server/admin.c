/* admin.c - admin endpoints without the transport: routing, /debug/vars JSON, /debug/config
 * parsing and validation, /debug/allocs query. */
#include "server/admin.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/text.h"
#include "server/config.h"

#define LEVER_KEYS "pool, parse, pool-retain, trim-interval, memory-limit"
#define ALLOCS_TOP_DEFAULT 50
#define ALLOCS_TOP_MAX 100000

/* ---- routing ---- */

static const struct {
    const char *path;
    const char *method;
    srv_admin_endpoint_t ep;
    const char *allow;
} routes[] = {
    {"/debug/vars", "GET", SRV_ADMIN_VARS, "GET, HEAD"},
    {"/debug/pool", "GET", SRV_ADMIN_POOL, "GET, HEAD"},
    {"/debug/heap", "GET", SRV_ADMIN_HEAP, "GET, HEAD"},
    {"/debug/allocs", "GET", SRV_ADMIN_ALLOCS, "GET, HEAD"},
    {"/debug/trim", "POST", SRV_ADMIN_TRIM, "POST"},
    {"/debug/config", "GET", SRV_ADMIN_CONFIG_GET, "GET, HEAD, PUT"},
    {"/debug/config", "PUT", SRV_ADMIN_CONFIG_PUT, "GET, HEAD, PUT"},
};

int srv_admin_route(const char *method, const char *path, srv_admin_endpoint_t *out,
                    const char **allow)
{
    const char *m = method != NULL && strcmp(method, "HEAD") == 0 ? "GET" : method;
    int known = 0;
    for (size_t i = 0; path != NULL && i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(path, routes[i].path) != 0) {
            continue;
        }
        if (m != NULL && strcmp(m, routes[i].method) == 0) {
            *out = routes[i].ep;
            return 200;
        }
        known = 1;
        *allow = routes[i].allow;
    }
    return known ? 405 : 404;
}

/* ---- JSON output ---- */

static void json_str(FILE *out, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    fputc('"', out);
    while (n > 0) {
        char unit[BASE_JSON_UNIT_MAX];
        size_t used;
        size_t k = base_json_escape_unit(s, n, &used, unit);
        fwrite(unit, 1, k, out);
        s += used;
        n -= used;
    }
    fputc('"', out);
}

static void json_u64(FILE *out, const char *key, uint64_t v, int comma)
{
    fprintf(out, "%s\"%s\":%" PRIu64, comma ? "," : "", key, v);
}

static int finish(FILE *out)
{
    fputc('\n', out);
    return ferror(out) || fflush(out) != 0 ? -EIO : 0;
}

static void format_duration(uint64_t ms, char *buf, size_t size)
{
    if (ms == 0) {
        snprintf(buf, size, "off");
    } else if (ms % 3600000 == 0) {
        snprintf(buf, size, "%" PRIu64 "h", ms / 3600000);
    } else if (ms % 60000 == 0) {
        snprintf(buf, size, "%" PRIu64 "m", ms / 60000);
    } else if (ms % 1000 == 0) {
        snprintf(buf, size, "%" PRIu64 "s", ms / 1000);
    } else {
        snprintf(buf, size, "%" PRIu64 "ms", ms);
    }
}

static void format_bytes(uint64_t b, char *buf, size_t size)
{
    static const char *const units[] = {"TiB", "GiB", "MiB", "KiB"};
    if (b == 0) {
        snprintf(buf, size, "off");
        return;
    }
    for (int i = 0; i < 4; i++) {
        unsigned shift = (unsigned)(40 - 10 * i);
        if (b % (1ull << shift) == 0) {
            snprintf(buf, size, "%" PRIu64 "%s", b >> shift, units[i]);
            return;
        }
    }
    snprintf(buf, size, "%" PRIu64, b);
}

static void write_config_object(FILE *out, const srv_levers_t *l)
{
    char retain[24];
    char trim[32];
    char limit[32];
    if (l->pool_retain < 0) {
        snprintf(retain, sizeof retain, "off");
    } else {
        snprintf(retain, sizeof retain, "%d", l->pool_retain);
    }
    format_duration(l->trim_interval_ms, trim, sizeof trim);
    format_bytes(l->memory_limit, limit, sizeof limit);
    fprintf(out,
            "{\"pool\":\"%s\",\"parse\":\"%s\",\"pool-retain\":\"%s\","
            "\"trim-interval\":\"%s\",\"memory-limit\":\"%s\"}",
            l->pool ? "on" : "off", srv_parse_name((srv_parse_t)l->parse), retain, trim, limit);
}

int srv_admin_write_config(FILE *out, const srv_levers_t *l)
{
    write_config_object(out, l);
    return finish(out);
}

int srv_admin_write_error(FILE *out, const char *msg)
{
    fputs("{\"error\":", out);
    json_str(out, msg);
    fputc('}', out);
    return finish(out);
}

int srv_admin_write_vars(FILE *out, const srv_vars_t *v)
{
    fputs("{\"version\":", out);
    json_str(out, v->version);
    fputs(",\"allocator\":", out);
    json_str(out, v->allocator);
    fprintf(out, ",\"workers\":%u,\"uptime_seconds\":%.3f", v->workers,
            v->uptime_seconds >= 0 ? v->uptime_seconds : 0.0);

    fputs(",\"events\":{", out);
    json_u64(out, "accepted", v->events_accepted, 0);
    fputs(",\"rejected\":{", out);
    for (int r = ING_ACCEPTED + 1; r < ING_VERDICT_COUNT; r++) {
        json_u64(out, ing_verdict_name((ing_verdict_t)r), v->events_rejected[r], r > 1);
    }
    fputs("},\"by_type\":{", out);
    for (size_t i = 0; i < v->ntypes; i++) {
        if (i > 0) {
            fputc(',', out);
        }
        json_str(out, v->types[i].type);
        fprintf(out, ":%" PRIu64, v->types[i].count);
    }
    fputs("}}", out);

    fputs(",\"bytes_received\":{", out);
    json_u64(out, "tcp", v->bytes_received_tcp, 0);
    json_u64(out, "http", v->bytes_received_http, 1);
    fputs("},\"connections\":{", out);
    json_u64(out, "active", v->connections_active, 0);
    json_u64(out, "total", v->connections_total, 1);
    json_u64(out, "refused", v->connections_refused, 1);
    fputs("},\"memstats\":{", out);
    json_u64(out, "alloc_bytes", v->mem_alloc_bytes, 0);
    json_u64(out, "alloc_bytes_total", v->mem_alloc_bytes_total, 1);
    json_u64(out, "mallocs", v->mem_mallocs, 1);
    json_u64(out, "frees", v->mem_frees, 1);
    json_u64(out, "sys_bytes", v->mem_sys_bytes, 1);
    json_u64(out, "rss_bytes", v->rss_bytes, 1);
    fputs("},\"pool\":{", out);
    json_u64(out, "gets", v->pool_gets, 0);
    json_u64(out, "misses", v->pool_misses, 1);
    json_u64(out, "released", v->pool_released, 1);
    json_u64(out, "trims", v->pool_trims, 1);
    json_u64(out, "oversize", v->pool_oversize, 1);
    json_u64(out, "blocks_in_use", v->pool_blocks_in_use, 1);
    json_u64(out, "blocks_idle", v->pool_blocks_idle, 1);
    fputs("},\"admin\":{", out);
    json_u64(out, "requests", v->admin_requests, 0);
    json_u64(out, "denied", v->admin_denied, 1);
    fputs("},\"config\":", out);
    write_config_object(out, &v->levers);
    fputs(",\"allocprof\":{", out);
    json_u64(out, "rate", v->allocprof.rate, 0);
    json_u64(out, "samples", v->allocprof.samples, 1);
    json_u64(out, "live", v->allocprof.live, 1);
    json_u64(out, "sites", v->allocprof.sites, 1);
    json_u64(out, "dropped", v->allocprof.dropped, 1);
    fputs("}}", out);
    return finish(out);
}

/* ---- PUT /debug/config ---- */

/* Writes "KEY: VALUE is not ALLOWED" into err, VALUE as the JSON text of the value. */
static int bad_value(const char *key, const json_t *val, const char *allowed, char *err,
                     size_t errsz)
{
    char *text = json_dumps(val, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(err, errsz, "%s: %.60s is not %s", key, text != NULL ? text : "?", allowed);
    free(text);
    return 400;
}

static int put_pool(const json_t *val, srv_levers_t *l, char *err, size_t errsz)
{
    static const char *allowed = "true, false, \"on\" or \"off\"";
    int on;
    if (json_is_boolean(val)) {
        l->pool = json_is_true(val);
        return 0;
    }
    if (json_is_string(val) && srv_parse_bool(json_string_value(val), &on) == 0) {
        l->pool = on;
        return 0;
    }
    return bad_value("pool", val, allowed, err, errsz);
}

static int put_parse(const json_t *val, srv_levers_t *l, char *err, size_t errsz)
{
    srv_parse_t p;
    if (json_is_string(val) && srv_parse_parse(json_string_value(val), &p) == 0) {
        l->parse = (int)p;
        return 0;
    }
    return bad_value("parse", val, "\"scan\" or \"tree\"", err, errsz);
}

static int put_retain(const json_t *val, srv_levers_t *l, char *err, size_t errsz)
{
    static const char *allowed = "a percent from 0 to 10000 (number or string), or \"off\"";
    uint64_t v;
    if (json_is_integer(val)) {
        json_int_t i = json_integer_value(val);
        if (i >= 0 && i <= SRV_LEVER_RETAIN_MAX) {
            l->pool_retain = (int)i;
            return 0;
        }
    } else if (json_is_string(val)) {
        const char *s = json_string_value(val);
        if (strcmp(s, "off") == 0) {
            l->pool_retain = -1;
            return 0;
        }
        if (srv_parse_uint(s, 0, SRV_LEVER_RETAIN_MAX, &v) == 0) {
            l->pool_retain = (int)v;
            return 0;
        }
    }
    return bad_value("pool-retain", val, allowed, err, errsz);
}

static int put_trim(const json_t *val, srv_levers_t *l, char *err, size_t errsz)
{
    static const char *allowed = "a duration string from \"1ms\" to \"24h\" (ms, s, m, h), or "
                                 "\"off\"";
    uint64_t ms;
    if (json_is_string(val)) {
        const char *s = json_string_value(val);
        if (strcmp(s, "off") == 0) {
            l->trim_interval_ms = 0;
            return 0;
        }
        if (srv_parse_duration_ms(s, &ms) == 0 && ms >= 1 && ms <= SRV_LEVER_TRIM_MAX_MS) {
            l->trim_interval_ms = ms;
            return 0;
        }
    }
    return bad_value("trim-interval", val, allowed, err, errsz);
}

static int put_limit(const json_t *val, srv_levers_t *l, char *err, size_t errsz)
{
    static const char *allowed = "a size of at least 1 byte (a number, or a string with K, KiB, "
                                 "M, MiB, G, GiB, T, TiB), or \"off\"";
    uint64_t b;
    if (json_is_integer(val)) {
        json_int_t i = json_integer_value(val);
        if (i >= 1) {
            l->memory_limit = (uint64_t)i;
            return 0;
        }
    } else if (json_is_string(val)) {
        const char *s = json_string_value(val);
        if (strcmp(s, "off") == 0) {
            l->memory_limit = 0;
            return 0;
        }
        if (srv_parse_bytes(s, &b) == 0 && b >= 1) {
            l->memory_limit = b;
            return 0;
        }
    }
    return bad_value("memory-limit", val, allowed, err, errsz);
}

int srv_admin_config_put(const char *body, size_t len, const srv_levers_t *cur, srv_levers_t *next,
                         unsigned *changed, char *err, size_t errsz)
{
    json_error_t jerr;
    if (body == NULL) {
        body = "";
        len = 0;
    }
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (root == NULL) {
        snprintf(err, errsz, "body is not valid JSON: %s (line %d, column %d)", jerr.text,
                 jerr.line, jerr.column);
        return 400;
    }
    int status = 200;
    srv_levers_t l = *cur;
    if (!json_is_object(root)) {
        snprintf(err, errsz, "body must be a JSON object with any of: " LEVER_KEYS);
        status = 400;
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        int rc;
        if (strcmp(key, "pool") == 0) {
            rc = put_pool(val, &l, err, errsz);
        } else if (strcmp(key, "parse") == 0) {
            rc = put_parse(val, &l, err, errsz);
        } else if (strcmp(key, "pool-retain") == 0) {
            rc = put_retain(val, &l, err, errsz);
        } else if (strcmp(key, "trim-interval") == 0) {
            rc = put_trim(val, &l, err, errsz);
        } else if (strcmp(key, "memory-limit") == 0) {
            rc = put_limit(val, &l, err, errsz);
        } else {
            snprintf(err, errsz, "unknown setting \"%.40s\" (live settings: " LEVER_KEYS ")", key);
            rc = 400;
        }
        if (rc != 0) {
            status = 400;
            goto done;
        }
    }
    *changed = (l.pool != cur->pool ? SRV_LEVER_POOL : 0u) |
               (l.parse != cur->parse ? SRV_LEVER_PARSE : 0u) |
               (l.pool_retain != cur->pool_retain ? SRV_LEVER_RETAIN : 0u) |
               (l.trim_interval_ms != cur->trim_interval_ms ? SRV_LEVER_TRIM : 0u) |
               (l.memory_limit != cur->memory_limit ? SRV_LEVER_LIMIT : 0u);
    *next = l;
done:
    json_decref(root);
    return status;
}

/* ---- GET /debug/allocs ---- */

int srv_admin_allocs_query(const char *query, allocprof_sort_t *sort, allocprof_format_t *fmt,
                           size_t *top, char *err, size_t errsz)
{
    allocprof_sort_t s = ALLOCPROF_INUSE_SPACE;
    allocprof_format_t f = ALLOCPROF_TEXT;
    uint64_t t = ALLOCS_TOP_DEFAULT;
    const char *p = query != NULL ? query : "";
    while (*p != '\0') {
        const char *end = strchr(p, '&');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        char item[64];
        if (len >= sizeof item) {
            snprintf(err, errsz, "query parameter \"%.40s...\" is too long", p);
            return -EINVAL;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        p = end != NULL ? end + 1 : p + len;
        if (len == 0) {
            continue; /* "a=1&&b=2" */
        }
        char *eq = strchr(item, '=');
        const char *v = eq != NULL ? eq + 1 : "";
        if (eq != NULL) {
            *eq = '\0';
        }
        if (strcmp(item, "sort") == 0) {
            if (allocprof_sort_parse(v, &s) != 0) {
                snprintf(err, errsz,
                         "sort=%.40s: expected inuse_space, inuse_objects, alloc_space or "
                         "alloc_objects",
                         v);
                return -EINVAL;
            }
        } else if (strcmp(item, "format") == 0) {
            if (allocprof_format_parse(v, &f) != 0) {
                snprintf(err, errsz, "format=%.40s: expected text or folded", v);
                return -EINVAL;
            }
        } else if (strcmp(item, "top") == 0) {
            if (srv_parse_uint(v, 0, ALLOCS_TOP_MAX, &t) != 0) {
                snprintf(err, errsz, "top=%.40s: expected a number from 0 (all) to %d", v,
                         ALLOCS_TOP_MAX);
                return -EINVAL;
            }
        } else {
            snprintf(err, errsz, "unknown query parameter \"%.40s\" (allowed: sort, format, top)",
                     item);
            return -EINVAL;
        }
    }
    *sort = s;
    *fmt = f;
    *top = (size_t)t;
    return 0;
}

/* ---- GET /debug/pool, POST /debug/trim, GET /debug/allocs ---- */

static void write_pool_stats(FILE *out, const pool_stats_t *st)
{
    json_u64(out, "gets", st->gets, 1);
    json_u64(out, "hits", st->hits, 1);
    json_u64(out, "misses", st->misses, 1);
    json_u64(out, "puts", st->puts, 1);
    json_u64(out, "released", st->released, 1);
    json_u64(out, "trims", st->trims, 1);
    json_u64(out, "alloc_failures", st->alloc_failures, 1);
    fprintf(out, ",\"in_use\":%" PRId64 ",\"idle\":%" PRId64 ",\"peak_in_use\":%" PRId64,
            st->in_use, st->idle, st->peak_in_use);
    fprintf(out, ",\"trim_seconds_total\":%.9f,\"trim_seconds_last\":%.9f",
            (double)st->trim_ns_total / 1e9, (double)st->trim_ns_last / 1e9);
}

int srv_admin_write_pool(FILE *out, const srv_levers_t *l, const pool_stats_t *total,
                         const pool_stats_t *workers, size_t n)
{
    char retain[24];
    if (l->pool_retain < 0) {
        snprintf(retain, sizeof retain, "off");
    } else {
        snprintf(retain, sizeof retain, "%d", l->pool_retain);
    }
    fprintf(out, "{\"pool\":\"%s\",\"retain\":\"%s\",\"total\":{\"workers\":%zu",
            l->pool ? "on" : "off", retain, n);
    write_pool_stats(out, total);
    fputs("},\"workers\":[", out);
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "%s{\"worker\":%zu", i == 0 ? "" : ",", i);
        write_pool_stats(out, &workers[i]);
        fputc('}', out);
    }
    fputs("]}", out);
    return finish(out);
}

static void before_after(FILE *out, const char *key, uint64_t before, uint64_t after)
{
    fprintf(out, ",\"%s\":{\"before\":%" PRIu64 ",\"after\":%" PRIu64 "}", key, before, after);
}

int srv_admin_write_trim(FILE *out, const srv_trim_report_t *r)
{
    fputc('{', out);
    json_u64(out, "blocks_released", r->blocks_released, 0);
    json_u64(out, "bytes_released", r->bytes_released, 1);
    fprintf(out, ",\"duration_seconds\":%.9f", (double)r->duration_ns / 1e9);
    before_after(out, "live_bytes", r->live_before, r->live_after);
    before_after(out, "sys_bytes", r->sys_before, r->sys_after);
    before_after(out, "rss_bytes", r->rss_before, r->rss_after);
    fputc('}', out);
    return finish(out);
}

int srv_admin_allocs(FILE *out, const char *query, char *err, size_t errsz)
{
    allocprof_sort_t sort;
    allocprof_format_t fmt;
    size_t top;
    if (srv_admin_allocs_query(query, &sort, &fmt, &top, err, errsz) != 0) {
        return 400;
    }
    allocprof_stats_t st;
    allocprof_stats(&st);
    if (st.rate == 0 && st.samples == 0 && fmt == ALLOCPROF_TEXT) {
        fputs("# the allocation profile is off: start ingestd with --alloc-profile-rate BYTES "
              "(512KiB is a good start)\n",
              out);
    }
    int rc = allocprof_write(out, sort, top, fmt);
    if (rc != 0) {
        snprintf(err, errsz, "writing the profile failed: %s", strerror(-rc));
        return 500;
    }
    return 200;
}
