/* test_parse.c - integration: the two parse strategies in the real ingestd. The same events give
 * the same counts, types and HTTP replies under --parse scan and tree, the strategy switches
 * live through PUT /debug/config, and /metrics says which one runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* One of each verdict the judge gives, a type written with escapes, a uint64 id and \u0000 in a
 * value (accepted under the issue-10 flags), and a NUL byte after a number (jansson's quirk). */
static const char events[] = "{\"type\":\"click\",\"id\":18446744073709551615}\n"
                             "{\"t\\u0079pe\":\"a\\u0062c\",\"v\":\"x\\u0000y\"}\n"
                             "{\"type\":\"click\",\"type\":\"view\"}\n"
                             "[1,2]\n"
                             "{\"type\":7}\n"
                             "{\"type\":\"\"}\n"
                             "{\"type\":\"a\\u0000b\"}\n"
                             "{\"type\":\"x\",}\n"
                             "{\"type\":\"x\"} trailing\n"
                             "{\"n\":1e400,\"type\":\"x\"}\n";
#define ACCEPTED 3 /* click, abc, view */
#define PARSE 3
#define NOT_OBJECT 1
#define NO_TYPE 3

static const char array_body[] = "[ {\"type\":\"arr\"} , {\"type\":1}, 5, {\"type\":\"arr\"}\n ]";

static char *post(uint16_t port, const char *body)
{
    char req[1024];
    size_t len;
    int n = snprintf(req, sizeof(req),
                     "POST /v1/events HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    return ih_http(port, req, (size_t)n, &len);
}

static char *put_parse(uint16_t port, const char *parse)
{
    char req[512];
    char body[64];
    size_t len;
    snprintf(body, sizeof(body), "{\"parse\":\"%s\"}", parse);
    int n = snprintf(req, sizeof(req),
                     "PUT /debug/config HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    return ih_http(port, req, (size_t)n, &len);
}

static double type_count(uint16_t port, const char *type)
{
    char sample[128];
    snprintf(sample, sizeof(sample), "ingestd_events_by_type_total{type=\"%s\"}", type);
    double v = ih_metric(port, sample);
    return v == v ? v : 0; /* NAN (absent) counts as 0 */
}

/* Sends the events over TCP and checks what they added, by verdict and by type. */
static void send_and_check(const ih_server_t *s)
{
    ih_counts_t base, d;
    double click = type_count(s->admin_port, "click");
    double abc = type_count(s->admin_port, "abc");
    double view = type_count(s->admin_port, "view");

    assert_int_equal(ih_counts(s->admin_port, &base), 0);
    int fd = ih_connect(s->tcp_port);
    assert_true(fd >= 0);
    assert_int_equal(ih_send_all(fd, events, sizeof(events) - 1), 0);
    close(fd);
    assert_int_equal(ih_wait_counts(s->admin_port, &base, 10, 30000, &d), 0);
    assert_true(d.v[0] == ACCEPTED);
    assert_true(d.v[1] == PARSE);
    assert_true(d.v[2] == NOT_OBJECT);
    assert_true(d.v[3] == NO_TYPE);
    assert_true(type_count(s->admin_port, "click") - click == 1);
    assert_true(type_count(s->admin_port, "abc") - abc == 1);
    assert_true(type_count(s->admin_port, "view") - view == 1);
}

/* The array body's reply: the same under both strategies. */
static char *array_reply(const ih_server_t *s)
{
    char *r = post(s->http_port, array_body);
    assert_non_null(r);
    assert_int_equal(ih_http_status(r), 200);
    char *body = strstr(r, "\r\n\r\n");
    assert_non_null(body);
    char *out = strdup(body + 4);
    free(r);
    assert_non_null(strstr(out, "\"accepted\":2,\"rejected\":2"));
    assert_non_null(strstr(out, "\"line\":2,\"reason\":\"no_type\""));
    assert_non_null(strstr(out, "\"line\":3,\"reason\":\"not_object\""));
    return out;
}

static void test_scan_and_tree_agree_and_switch_live(void **state)
{
    ih_server_t s;
    const char *extra[] = {"--workers=1", NULL};
    (void)state;

    assert_int_equal(ih_start(&s, extra), 0);
    assert_true(ih_metric(s.admin_port, "ingestd_parse_strategy{strategy=\"scan\"}") == 1);
    assert_true(ih_metric(s.admin_port, "ingestd_parse_strategy{strategy=\"tree\"}") == 0);
    send_and_check(&s);
    char *scan_reply = array_reply(&s);

    /* A parse error's detail says what and where under the scanner. */
    char *r = post(s.http_port, "{\"type\":\"x\" \"y\":1}");
    assert_non_null(r);
    assert_non_null(strstr(r, "\"reason\":\"parse\""));
    assert_non_null(strstr(r, "at byte 12"));
    free(r);

    r = put_parse(s.admin_port, "tree");
    assert_int_equal(ih_http_status(r), 200);
    assert_non_null(strstr(r, "\"parse\":\"tree\""));
    free(r);
    assert_true(
        ih_wait_metric(s.admin_port, "ingestd_parse_strategy{strategy=\"tree\"}", 1, 10000) == 1);
    send_and_check(&s);
    char *tree_reply = array_reply(&s);
    assert_string_equal(scan_reply, tree_reply);
    free(scan_reply);
    free(tree_reply);

    r = put_parse(s.admin_port, "sideways");
    assert_int_equal(ih_http_status(r), 400);
    free(r);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
}

static void test_tree_from_the_start_with_the_pool_off(void **state)
{
    ih_server_t s;
    const char *extra[] = {"--parse=tree", "--pool=off", "--workers=1", NULL};
    (void)state;

    assert_int_equal(ih_start(&s, extra), 0);
    assert_true(ih_metric(s.admin_port, "ingestd_parse_strategy{strategy=\"tree\"}") == 1);
    send_and_check(&s);
    free(array_reply(&s));
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    ih_cleanup(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_and_tree_agree_and_switch_live),
        cmocka_unit_test(test_tree_from_the_start_with_the_pool_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
