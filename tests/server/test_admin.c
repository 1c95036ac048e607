/* test_admin.c - unit tests for the admin endpoints' transport-free parts (server/admin.h):
 * routing, /debug/vars, GET and PUT /debug/config, the /debug/allocs query. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/admin.h"
#include "server/config.h"

/* What a writer produced, as a string (new, free() it). */
typedef int (*writer_fn)(FILE *out, const void *arg);

static char *capture(writer_fn fn, const void *arg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(fn(f, arg), 0);
    assert_int_equal(fclose(f), 0);
    return buf;
}

static int write_vars(FILE *out, const void *arg)
{
    return srv_admin_write_vars(out, arg);
}

static int write_config(FILE *out, const void *arg)
{
    return srv_admin_write_config(out, arg);
}

static int write_error(FILE *out, const void *arg)
{
    return srv_admin_write_error(out, arg);
}

static srv_levers_t defaults(void)
{
    srv_levers_t l = {.pool = 1, .pool_retain = 100, .trim_interval_ms = 10000, .memory_limit = 0};
    return l;
}

/* ---- routing ---- */

static void test_route_finds_each_endpoint_and_answers_404_and_405(void **state)
{
    srv_admin_endpoint_t ep = SRV_ADMIN_VARS;
    const char *allow = NULL;
    (void)state;
    struct {
        const char *method;
        const char *path;
        srv_admin_endpoint_t ep;
    } ok[] = {
        {"GET", "/debug/vars", SRV_ADMIN_VARS},
        {"HEAD", "/debug/vars", SRV_ADMIN_VARS},
        {"GET", "/debug/pool", SRV_ADMIN_POOL},
        {"GET", "/debug/heap", SRV_ADMIN_HEAP},
        {"GET", "/debug/allocs", SRV_ADMIN_ALLOCS},
        {"POST", "/debug/trim", SRV_ADMIN_TRIM},
        {"GET", "/debug/config", SRV_ADMIN_CONFIG_GET},
        {"PUT", "/debug/config", SRV_ADMIN_CONFIG_PUT},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(srv_admin_route(ok[i].method, ok[i].path, &ep, &allow), 200);
        assert_int_equal(ep, ok[i].ep);
    }
    assert_int_equal(srv_admin_route("GET", "/debug/trim", &ep, &allow), 405);
    assert_string_equal(allow, "POST");
    assert_int_equal(srv_admin_route("POST", "/debug/config", &ep, &allow), 405);
    assert_string_equal(allow, "GET, HEAD, PUT");
    assert_int_equal(srv_admin_route("DELETE", "/debug/vars", &ep, &allow), 405);
    assert_string_equal(allow, "GET, HEAD");
    assert_int_equal(srv_admin_route("GET", "/debug/nope", &ep, &allow), 404);
    assert_int_equal(srv_admin_route("GET", "/debug/vars/", &ep, &allow), 404);
    assert_int_equal(srv_admin_route("GET", "/", &ep, &allow), 404);
    assert_int_equal(srv_admin_route(NULL, NULL, &ep, &allow), 404);
}

/* ---- /debug/vars ---- */

static uint64_t num_at(json_t *root, const char *obj, const char *key)
{
    json_t *o = obj != NULL ? json_object_get(root, obj) : root;
    assert_true(json_is_object(o));
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v)) {
        fail_msg("%s.%s is not an integer", obj != NULL ? obj : "", key);
    }
    return (uint64_t)json_integer_value(v);
}

static void test_vars_is_one_json_object_with_every_stable_key(void **state)
{
    (void)state;
    srv_vars_type_t types[] = {{"click", 7}, {"we\"ird\\\n", 2}, {"_other", 1}, {"bad\xff", 4}};
    srv_vars_t v;
    memset(&v, 0, sizeof v);
    v.version = "0.1.0";
    v.allocator = "mimalloc";
    v.workers = 4;
    v.uptime_seconds = 12.5;
    v.events_accepted = 10;
    for (int r = 1; r < ING_VERDICT_COUNT; r++) {
        v.events_rejected[r] = 100 + (uint64_t)r;
    }
    v.types = types;
    v.ntypes = 4;
    v.bytes_received_tcp = 1ull << 40;
    v.bytes_received_http = 5;
    v.connections_active = 2;
    v.connections_total = 9;
    v.connections_refused = 1;
    v.mem_alloc_bytes = 1000;
    v.mem_alloc_bytes_total = 2000;
    v.mem_mallocs = 30;
    v.mem_frees = 20;
    v.mem_sys_bytes = 4096;
    v.rss_bytes = 8192;
    v.pool_gets = 11;
    v.pool_misses = 3;
    v.pool_released = 4;
    v.pool_trims = 5;
    v.pool_oversize = 6;
    v.pool_blocks_in_use = 7;
    v.pool_blocks_idle = 8;
    v.admin_requests = 12;
    v.admin_denied = 3;
    v.levers = defaults();
    v.allocprof.rate = 524288;
    v.allocprof.samples = 77;

    char *text = capture(write_vars, &v);
    assert_int_equal(text[strlen(text) - 1], '\n');
    assert_ptr_equal(strchr(text, '\n'), text + strlen(text) - 1); /* one line */
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    if (root == NULL) {
        fail_msg("not JSON: %s: %s", jerr.text, text);
    }
    const char *top[] = {"version", "allocator",      "workers",     "uptime_seconds",
                         "events",  "bytes_received", "connections", "memstats",
                         "pool",    "admin",          "config",      "allocprof"};
    assert_int_equal(json_object_size(root), sizeof top / sizeof top[0]);
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++) {
        assert_non_null(json_object_get(root, top[i]));
    }
    assert_string_equal(json_string_value(json_object_get(root, "version")), "0.1.0");
    assert_string_equal(json_string_value(json_object_get(root, "allocator")), "mimalloc");
    assert_int_equal(num_at(root, NULL, "workers"), 4);
    assert_true(json_real_value(json_object_get(root, "uptime_seconds")) == 12.5);
    json_t *events = json_object_get(root, "events");
    assert_int_equal(num_at(events, NULL, "accepted"), 10);
    for (int r = 1; r < ING_VERDICT_COUNT; r++) {
        assert_int_equal(num_at(events, "rejected", ing_verdict_name((ing_verdict_t)r)), 100 + r);
    }
    /* The contract's names, spelled out once here. */
    assert_int_equal(num_at(events, "rejected", "not_object"), 100 + ING_REJECT_NOT_OBJECT);
    assert_int_equal(num_at(events, "rejected", "truncated"), 100 + ING_REJECT_TRUNCATED);
    assert_int_equal(num_at(events, "by_type", "click"), 7);
    assert_int_equal(num_at(events, "by_type", "we\"ird\\\n"), 2);
    /* Invalid UTF-8 in a name still gives valid JSON: U+FFFD (base/text.h's rule). */
    assert_int_equal(num_at(events, "by_type", "bad\xEF\xBF\xBD"), 4);
    assert_int_equal(num_at(events, "by_type", "_other"), 1);
    assert_int_equal(num_at(root, "bytes_received", "tcp"), 1ull << 40);
    assert_int_equal(num_at(root, "connections", "refused"), 1);
    assert_int_equal(num_at(root, "memstats", "alloc_bytes"), 1000);
    assert_int_equal(num_at(root, "memstats", "rss_bytes"), 8192);
    assert_int_equal(num_at(root, "pool", "blocks_idle"), 8);
    assert_int_equal(num_at(root, "admin", "denied"), 3);
    assert_int_equal(num_at(root, "allocprof", "samples"), 77);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(root, "config"), "pool-retain")), "100");
    json_decref(root);
    free(text);
}

/* ---- GET and PUT /debug/config ---- */

static void test_get_config_writes_each_lever_in_its_flag_syntax(void **state)
{
    (void)state;
    srv_levers_t l = defaults();
    char *text = capture(write_config, &l);
    assert_string_equal(text, "{\"pool\":\"on\",\"parse\":\"scan\",\"pool-retain\":\"100\","
                              "\"trim-interval\":\"10s\",\"memory-limit\":\"off\"}\n");
    free(text);
    l = (srv_levers_t){.pool = 0,
                       .parse = SRV_PARSE_TREE,
                       .pool_retain = -1,
                       .trim_interval_ms = 1500,
                       .memory_limit = 512ull << 20};
    text = capture(write_config, &l);
    assert_string_equal(text, "{\"pool\":\"off\",\"parse\":\"tree\",\"pool-retain\":\"off\","
                              "\"trim-interval\":\"1500ms\",\"memory-limit\":\"512MiB\"}\n");
    free(text);
    l = (srv_levers_t){
        .pool = 1, .pool_retain = 0, .trim_interval_ms = 2 * 3600000, .memory_limit = 1000};
    text = capture(write_config, &l);
    assert_non_null(strstr(text, "\"trim-interval\":\"2h\",\"memory-limit\":\"1000\""));
    free(text);
}

static int put(const char *body, const srv_levers_t *cur, srv_levers_t *next, unsigned *changed,
               char *err)
{
    return srv_admin_config_put(body, strlen(body), cur, next, changed, err, 200);
}

static void test_get_config_body_puts_back_unchanged(void **state)
{
    (void)state;
    srv_levers_t all[] = {
        defaults(),
        {.pool = 0, .pool_retain = -1, .trim_interval_ms = 1500, .memory_limit = 512ull << 20},
        {.pool = 1, .pool_retain = 10000, .trim_interval_ms = 0, .memory_limit = 12345},
        {.pool = 1, .pool_retain = 0, .trim_interval_ms = 90000, .memory_limit = 3ull << 40},
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        char *text = capture(write_config, &all[i]);
        srv_levers_t next;
        memset(&next, 0, sizeof next);
        unsigned changed = 99;
        char err[200];
        assert_int_equal(put(text, &all[i], &next, &changed, err), 200);
        assert_int_equal(changed, 0);
        assert_memory_equal(&next, &all[i], sizeof next);
        free(text);
    }
}

static void test_put_config_sets_levers_and_reports_what_changed(void **state)
{
    (void)state;
    srv_levers_t cur = defaults();
    srv_levers_t next;
    unsigned changed = 0;
    char err[200] = "";
    assert_int_equal(put("{\"pool\":\"off\"}", &cur, &next, &changed, err), 200);
    assert_int_equal(next.pool, 0);
    assert_int_equal(changed, SRV_LEVER_POOL);
    assert_int_equal(next.pool_retain, 100);

    assert_int_equal(put("{\"pool\":false,\"pool-retain\":25,\"trim-interval\":\"250ms\","
                         "\"memory-limit\":\"1GiB\"}",
                         &cur, &next, &changed, err),
                     200);
    assert_int_equal(next.pool, 0);
    assert_int_equal(next.pool_retain, 25);
    assert_int_equal(next.trim_interval_ms, 250);
    assert_int_equal(next.memory_limit, 1ull << 30);
    assert_int_equal(changed, SRV_LEVER_POOL | SRV_LEVER_RETAIN | SRV_LEVER_TRIM | SRV_LEVER_LIMIT);

    assert_int_equal(
        put("{\"pool-retain\":\"off\",\"memory-limit\":1048576}", &cur, &next, &changed, err), 200);
    assert_int_equal(next.pool_retain, -1);
    assert_int_equal(next.memory_limit, 1048576);
    assert_int_equal(changed, SRV_LEVER_RETAIN | SRV_LEVER_LIMIT);

    assert_int_equal(put("{\"parse\":\"tree\"}", &cur, &next, &changed, err), 200);
    assert_int_equal(next.parse, SRV_PARSE_TREE);
    assert_int_equal(changed, SRV_LEVER_PARSE);
    assert_int_equal(put("{\"parse\":\"scan\"}", &cur, &next, &changed, err), 200);
    assert_int_equal(changed, 0); /* scan is the current strategy */

    assert_int_equal(put("{\"pool\":true,\"pool-retain\":\"100\",\"trim-interval\":\"10s\"}", &cur,
                         &next, &changed, err),
                     200);
    assert_int_equal(changed, 0); /* same values: nothing changed */

    cur.memory_limit = 1000;
    cur.trim_interval_ms = 5;
    assert_int_equal(
        put("{\"memory-limit\":\"off\",\"trim-interval\":\"off\"}", &cur, &next, &changed, err),
        200);
    assert_int_equal(next.memory_limit, 0);
    assert_int_equal(next.trim_interval_ms, 0);
    assert_int_equal(changed, SRV_LEVER_LIMIT | SRV_LEVER_TRIM);

    assert_int_equal(put("{}", &cur, &next, &changed, err), 200);
    assert_int_equal(changed, 0);
}

static void expect_400(const char *body, const char *needle)
{
    srv_levers_t cur = defaults();
    srv_levers_t next = {
        .pool = 7, .parse = 7, .pool_retain = 7, .trim_interval_ms = 7, .memory_limit = 7};
    srv_levers_t before = next;
    unsigned changed = 77;
    char err[200] = "";
    assert_int_equal(srv_admin_config_put(body, body != NULL ? strlen(body) : 0, &cur, &next,
                                          &changed, err, sizeof err),
                     400);
    if (strstr(err, needle) == NULL) {
        fail_msg("PUT %s: error \"%s\" lacks \"%s\"", body != NULL ? body : "(null)", err, needle);
    }
    assert_memory_equal(&next, &before, sizeof next); /* all or nothing */
    assert_int_equal(changed, 77);
}

static void test_put_config_answers_400_with_a_clear_error(void **state)
{
    (void)state;
    expect_400("", "body is not valid JSON");
    expect_400(NULL, "body is not valid JSON");
    expect_400("{\"pool\":", "body is not valid JSON");
    expect_400("[1,2]", "body must be a JSON object with any of: pool, parse, pool-retain");
    expect_400("{\"parse\":\"fast\"}", "parse: \"fast\" is not \"scan\" or \"tree\"");
    expect_400("{\"parse\":1}", "parse: 1 is not");
    expect_400("\"pool\"", "body must be a JSON object");
    expect_400("{\"gogc\":100}",
               "unknown setting \"gogc\" (live settings: pool, parse, pool-retain, trim-interval, "
               "memory-limit)");
    expect_400("{\"pool\":\"off\",\"pool\":\"on\"}", "duplicate");
    expect_400("{\"pool\":1}", "pool: 1 is not true, false, \"on\" or \"off\"");
    expect_400("{\"pool\":\"maybe\"}", "pool: \"maybe\" is not");
    expect_400("{\"pool-retain\":10001}", "pool-retain: 10001 is not a percent from 0 to 10000");
    expect_400("{\"pool-retain\":-1}", "pool-retain: -1 is not");
    expect_400("{\"pool-retain\":\"50%\"}", "pool-retain: \"50%\" is not");
    expect_400("{\"pool-retain\":2.5}", "pool-retain: 2.5 is not");
    expect_400("{\"trim-interval\":\"25h\"}", "trim-interval: \"25h\" is not a duration string");
    expect_400("{\"trim-interval\":\"0\"}", "trim-interval: \"0\" is not");
    expect_400("{\"trim-interval\":5000}", "trim-interval: 5000 is not");
    expect_400("{\"trim-interval\":\"10 s\"}", "trim-interval");
    expect_400("{\"memory-limit\":0}", "memory-limit: 0 is not a size of at least 1 byte");
    expect_400("{\"memory-limit\":-5}", "memory-limit: -5 is not");
    expect_400("{\"memory-limit\":\"1XB\"}", "memory-limit: \"1XB\" is not");
    expect_400("{\"memory-limit\":null}", "memory-limit: null is not");
    /* one bad lever spoils the whole request */
    expect_400("{\"pool\":\"off\",\"pool-retain\":\"abc\"}", "pool-retain: \"abc\"");
}

static void test_error_body_is_json_with_the_message_escaped(void **state)
{
    (void)state;
    char *text = capture(write_error, "pool: \"x\" is not\tallowed\\");
    assert_string_equal(text, "{\"error\":\"pool: \\\"x\\\" is not\\tallowed\\\\\"}\n");
    json_t *root = json_loads(text, 0, NULL);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "error")),
                        "pool: \"x\" is not\tallowed\\");
    json_decref(root);
    free(text);
}

/* ---- /debug/allocs ---- */

static void test_allocs_query_defaults_and_every_parameter(void **state)
{
    allocprof_sort_t sort = ALLOCPROF_ALLOC_OBJECTS;
    allocprof_format_t fmt = ALLOCPROF_FOLDED;
    size_t top = 1;
    char err[160];
    (void)state;
    assert_int_equal(srv_admin_allocs_query(NULL, &sort, &fmt, &top, err, sizeof err), 0);
    assert_int_equal(sort, ALLOCPROF_INUSE_SPACE);
    assert_int_equal(fmt, ALLOCPROF_TEXT);
    assert_int_equal(top, 50);
    assert_int_equal(srv_admin_allocs_query("", &sort, &fmt, &top, err, sizeof err), 0);
    assert_int_equal(srv_admin_allocs_query("sort=alloc_objects&format=folded&top=0", &sort, &fmt,
                                            &top, err, sizeof err),
                     0);
    assert_int_equal(sort, ALLOCPROF_ALLOC_OBJECTS);
    assert_int_equal(fmt, ALLOCPROF_FOLDED);
    assert_int_equal(top, 0);
    assert_int_equal(
        srv_admin_allocs_query("top=7&&sort=inuse_objects", &sort, &fmt, &top, err, sizeof err), 0);
    assert_int_equal(sort, ALLOCPROF_INUSE_OBJECTS);
    assert_int_equal(fmt, ALLOCPROF_TEXT);
    assert_int_equal(top, 7);
}

static void expect_bad_query(const char *q, const char *needle)
{
    allocprof_sort_t sort = ALLOCPROF_ALLOC_OBJECTS;
    allocprof_format_t fmt = ALLOCPROF_FOLDED;
    size_t top = 3;
    char err[160] = "";
    assert_int_equal(srv_admin_allocs_query(q, &sort, &fmt, &top, err, sizeof err), -22);
    if (strstr(err, needle) == NULL) {
        fail_msg("query %s: error \"%s\" lacks \"%s\"", q, err, needle);
    }
    assert_int_equal(sort, ALLOCPROF_ALLOC_OBJECTS);
    assert_int_equal(fmt, ALLOCPROF_FOLDED);
    assert_int_equal(top, 3);
}

static void test_allocs_query_rejects_unknown_keys_and_bad_values(void **state)
{
    (void)state;
    expect_bad_query("sort=inuse", "sort=inuse: expected inuse_space, inuse_objects");
    expect_bad_query("sort=", "sort=: expected");
    expect_bad_query("format=svg", "format=svg: expected text or folded");
    expect_bad_query("top=-1", "top=-1: expected a number from 0 (all) to 100000");
    expect_bad_query("top=100001", "top=100001");
    expect_bad_query("debug=1", "unknown query parameter \"debug\" (allowed: sort, format, top)");
    expect_bad_query("sort=alloc_space&seconds=30", "unknown query parameter \"seconds\"");
    expect_bad_query("format=texttexttexttexttexttexttexttexttexttexttexttexttexttexttext",
                     "too long");
}

/* ---- /debug/pool, /debug/trim, /debug/allocs ---- */

typedef struct {
    const srv_levers_t *l;
    const pool_stats_t *total;
    const pool_stats_t *workers;
    size_t n;
} pool_args_t;

static int write_pool(FILE *out, const void *arg)
{
    const pool_args_t *a = arg;
    return srv_admin_write_pool(out, a->l, a->total, a->workers, a->n);
}

static int write_trim(FILE *out, const void *arg)
{
    return srv_admin_write_trim(out, arg);
}

static void test_pool_json_has_the_total_and_each_worker(void **state)
{
    (void)state;
    srv_levers_t l = defaults();
    l.pool_retain = -1;
    pool_stats_t w[2];
    memset(w, 0, sizeof w);
    w[0] = (pool_stats_t){
        .gets = 10, .hits = 7, .misses = 3, .in_use = -2, .idle = 5, .trim_ns_last = 1500};
    w[1] = (pool_stats_t){.gets = 4, .hits = 4, .in_use = 6, .trims = 2};
    pool_stats_t total = {.gets = 14, .hits = 11, .misses = 3, .in_use = 4, .idle = 5, .trims = 2};
    pool_args_t a = {&l, &total, w, 2};
    char *text = capture(write_pool, &a);
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    if (root == NULL) {
        fail_msg("not JSON: %s: %s", jerr.text, text);
    }
    assert_string_equal(json_string_value(json_object_get(root, "pool")), "on");
    assert_string_equal(json_string_value(json_object_get(root, "retain")), "off");
    assert_int_equal(num_at(root, "total", "workers"), 2);
    assert_int_equal(num_at(root, "total", "gets"), 14);
    json_t *workers = json_object_get(root, "workers");
    assert_int_equal(json_array_size(workers), 2);
    json_t *w0 = json_array_get(workers, 0);
    assert_int_equal(num_at(w0, NULL, "worker"), 0);
    assert_int_equal(json_integer_value(json_object_get(w0, "in_use")), -2);
    assert_true(json_real_value(json_object_get(w0, "trim_seconds_last")) == 1.5e-6);
    assert_int_equal(num_at(json_array_get(workers, 1), NULL, "trims"), 2);
    json_decref(root);
    free(text);
}

static void test_trim_json_reports_release_and_memory_before_and_after(void **state)
{
    (void)state;
    srv_trim_report_t r = {.blocks_released = 3,
                           .bytes_released = 12288,
                           .duration_ns = 250000,
                           .live_before = 100,
                           .live_after = 90,
                           .sys_before = 5000,
                           .sys_after = 4000,
                           .rss_before = 7000,
                           .rss_after = 6000};
    char *text = capture(write_trim, &r);
    json_t *root = json_loads(text, 0, NULL);
    assert_non_null(root);
    assert_int_equal(num_at(root, NULL, "blocks_released"), 3);
    assert_int_equal(num_at(root, NULL, "bytes_released"), 12288);
    assert_true(json_real_value(json_object_get(root, "duration_seconds")) == 0.00025);
    assert_int_equal(num_at(root, "live_bytes", "before"), 100);
    assert_int_equal(num_at(root, "sys_bytes", "after"), 4000);
    assert_int_equal(num_at(root, "rss_bytes", "before"), 7000);
    json_decref(root);
    free(text);
}

/* A stand-in for the counting layer (the hook's caller, left out of stacks) and a site. */
void *mem_admin_test_malloc(size_t n);
void *admin_test_site(size_t n);

__attribute__((noinline)) void *mem_admin_test_malloc(size_t n)
{
    void *p = malloc(n);
    if (p != NULL) {
        allocprof_on_alloc(p, malloc_usable_size(p));
    }
    return p;
}

__attribute__((noinline)) void *admin_test_site(size_t n)
{
    void *p = mem_admin_test_malloc(n);
    if (p != NULL) {
        *(char *)p = 'a';
    }
    return p;
}

typedef struct {
    const char *query;
    int status;
    char err[160];
} allocs_args_t;

static int write_allocs(FILE *out, const void *arg)
{
    allocs_args_t *a = (allocs_args_t *)arg;
    a->status = srv_admin_allocs(out, a->query, a->err, sizeof a->err);
    return 0;
}

static void test_allocs_endpoint_answers_profile_or_400(void **state)
{
    (void)state;
    allocs_args_t a = {.query = "sort=bogus"};
    char *text = capture(write_allocs, &a);
    assert_int_equal(a.status, 400);
    assert_string_equal(text, ""); /* nothing written */
    assert_non_null(strstr(a.err, "sort=bogus"));
    free(text);

    a.query = NULL;
    text = capture(write_allocs, &a);
    assert_int_equal(a.status, 200);
    assert_non_null(strstr(text, "the allocation profile is off: start ingestd with "
                                 "--alloc-profile-rate"));
    free(text);

    assert_int_equal(allocprof_set_rate(1), 0);
    void *p = admin_test_site(321);
    a.query = "format=folded&sort=inuse_objects";
    text = capture(write_allocs, &a);
    assert_int_equal(a.status, 200);
    assert_non_null(strstr(text, ";admin_test_site 1\n"));
    free(text);
    allocprof_on_free(p, malloc_usable_size(p));
    free(p);
    assert_int_equal(allocprof_set_rate(0), 0);
    allocprof_reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_finds_each_endpoint_and_answers_404_and_405),
        cmocka_unit_test(test_vars_is_one_json_object_with_every_stable_key),
        cmocka_unit_test(test_get_config_writes_each_lever_in_its_flag_syntax),
        cmocka_unit_test(test_get_config_body_puts_back_unchanged),
        cmocka_unit_test(test_put_config_sets_levers_and_reports_what_changed),
        cmocka_unit_test(test_put_config_answers_400_with_a_clear_error),
        cmocka_unit_test(test_error_body_is_json_with_the_message_escaped),
        cmocka_unit_test(test_allocs_query_defaults_and_every_parameter),
        cmocka_unit_test(test_allocs_query_rejects_unknown_keys_and_bad_values),
        cmocka_unit_test(test_pool_json_has_the_total_and_each_worker),
        cmocka_unit_test(test_trim_json_reports_release_and_memory_before_and_after),
        cmocka_unit_test(test_allocs_endpoint_answers_profile_or_400),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
