/* test_allow.c - unit tests for the admin CIDR allowlist (server/allow.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "server/allow.h"

static struct sockaddr_storage ss;

/* Builds a sockaddr for a textual IPv4 or IPv6 address (borrowed, valid until the next call). */
static const struct sockaddr *sa_of(const char *text)
{
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(1234);
    } else {
        assert_int_equal(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(1234);
    }
    return (const struct sockaddr *)&ss;
}

static int allowed(const srv_allow_t *l, const char *peer)
{
    return srv_allow_match(l, sa_of(peer));
}

static void parse_ok(const char *text, srv_allow_t *l)
{
    char err[SRV_ALLOW_ERRLEN];
    int rc = srv_allow_parse(text, l, err);
    if (rc != 0) {
        fail_msg("parse(%s): %s", text, err);
    }
}

static void test_default_list_allows_loopback_only(void **state)
{
    srv_allow_t l;
    (void)state;
    srv_allow_default(&l);
    assert_int_equal(l.n, 2);
    assert_true(allowed(&l, "127.0.0.1"));
    assert_true(allowed(&l, "127.0.0.2"));
    assert_true(allowed(&l, "127.255.255.254"));
    assert_true(allowed(&l, "::1"));
    assert_true(allowed(&l, "::ffff:127.0.0.1"));
    assert_false(allowed(&l, "128.0.0.1"));
    assert_false(allowed(&l, "10.0.0.1"));
    assert_false(allowed(&l, "0.0.0.0"));
    assert_false(allowed(&l, "::"));
    assert_false(allowed(&l, "::2"));
    assert_false(allowed(&l, "::ffff:10.0.0.1"));
    assert_false(allowed(&l, "fe80::1"));
}

static void test_ipv4_rules_match_inside_and_deny_outside_the_prefix(void **state)
{
    srv_allow_t l;
    (void)state;
    parse_ok("10.1.0.0/16, 192.168.4.0/23,172.16.0.5", &l);
    assert_int_equal(l.n, 3);
    assert_true(allowed(&l, "10.1.0.0"));
    assert_true(allowed(&l, "10.1.255.255"));
    assert_false(allowed(&l, "10.2.0.0"));
    assert_false(allowed(&l, "10.0.255.255"));
    assert_true(allowed(&l, "192.168.4.1"));
    assert_true(allowed(&l, "192.168.5.254"));
    assert_false(allowed(&l, "192.168.6.1"));
    assert_false(allowed(&l, "192.168.3.255"));
    assert_true(allowed(&l, "172.16.0.5"));
    assert_false(allowed(&l, "172.16.0.4"));
    assert_false(allowed(&l, "::1"));
}

static void test_ipv6_rules_match_inside_and_deny_outside_the_prefix(void **state)
{
    srv_allow_t l;
    (void)state;
    parse_ok("fd00::/8,2001:db8:0:10::/60,::1", &l);
    assert_true(allowed(&l, "fd12:3456::1"));
    assert_false(allowed(&l, "fe00::1"));
    assert_true(allowed(&l, "2001:db8:0:1f:ffff::1"));
    assert_false(allowed(&l, "2001:db8:0:20::1"));
    assert_false(allowed(&l, "2001:db8:0:f::1"));
    assert_true(allowed(&l, "::1"));
    assert_false(allowed(&l, "127.0.0.1"));
}

static void test_zero_prefix_matches_its_whole_family(void **state)
{
    srv_allow_t l;
    (void)state;
    parse_ok("0.0.0.0/0", &l);
    assert_true(allowed(&l, "1.2.3.4"));
    assert_true(allowed(&l, "255.255.255.255"));
    assert_true(allowed(&l, "::ffff:8.8.8.8"));
    assert_false(allowed(&l, "2001:db8::1"));
    parse_ok("::/0", &l);
    assert_true(allowed(&l, "2001:db8::1"));
    assert_true(allowed(&l, "1.2.3.4")); /* as ::ffff:1.2.3.4 */
}

static void test_mapped_ipv6_peer_matches_ipv4_rules(void **state)
{
    srv_allow_t l;
    (void)state;
    parse_ok("10.0.0.0/8", &l);
    assert_true(allowed(&l, "::ffff:10.9.8.7"));
    assert_false(allowed(&l, "::ffff:11.0.0.1"));
    assert_false(allowed(&l, "::10.9.8.7")); /* IPv4-compatible, not mapped */
    parse_ok("::ffff:0:0/96", &l);
    assert_true(allowed(&l, "192.0.2.1"));
    assert_false(allowed(&l, "2001:db8::1"));
}

static void test_list_without_127_0_0_1_denies_it_but_allows_127_0_0_2(void **state)
{
    srv_allow_t l;
    (void)state;
    parse_ok("127.0.0.2/32", &l);
    assert_true(allowed(&l, "127.0.0.2"));
    assert_false(allowed(&l, "127.0.0.1"));
    assert_false(allowed(&l, "::ffff:127.0.0.1"));
    assert_true(allowed(&l, "::ffff:127.0.0.2"));
}

/* Connects from 127.0.0.2 to a listener on 127.0.0.1 (port 0) and matches the peer address
 * accept() reports: any 127/8 address works on Linux loopback. */
static void test_real_peer_from_127_0_0_2_is_matched_by_its_address(void **state)
{
    (void)state;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lfd >= 0 && cfd >= 0);
    struct sockaddr_in la = {.sin_family = AF_INET, .sin_port = 0};
    la.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&la, sizeof la), 0);
    assert_int_equal(listen(lfd, 4), 0);
    socklen_t len = sizeof la;
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&la, &len), 0);
    struct sockaddr_in ca = {.sin_family = AF_INET, .sin_port = 0};
    assert_int_equal(inet_pton(AF_INET, "127.0.0.2", &ca.sin_addr), 1);
    assert_int_equal(bind(cfd, (struct sockaddr *)&ca, sizeof ca), 0);
    assert_int_equal(connect(cfd, (struct sockaddr *)&la, sizeof la), 0);
    struct sockaddr_storage peer;
    len = sizeof peer;
    int afd = accept(lfd, (struct sockaddr *)&peer, &len);
    assert_true(afd >= 0);

    srv_allow_t only1;
    srv_allow_t only2;
    srv_allow_t def;
    parse_ok("127.0.0.1/32,::1/128", &only1);
    parse_ok("127.0.0.2/32", &only2);
    srv_allow_default(&def);
    assert_false(srv_allow_match(&only1, (struct sockaddr *)&peer));
    assert_true(srv_allow_match(&only2, (struct sockaddr *)&peer));
    assert_true(srv_allow_match(&def, (struct sockaddr *)&peer));
    close(afd);
    close(cfd);
    close(lfd);
}

static void expect_error(const char *text, const char *needle)
{
    srv_allow_t l;
    char err[SRV_ALLOW_ERRLEN];
    memset(&l, 0xab, sizeof l);
    srv_allow_t before = l;
    assert_int_equal(srv_allow_parse(text, &l, err), -EINVAL);
    if (strstr(err, needle) == NULL) {
        fail_msg("parse(%s): error \"%s\" lacks \"%s\"", text, err, needle);
    }
    assert_memory_equal(&l, &before, sizeof l); /* untouched on error */
}

static void test_bad_input_gets_a_clear_error_and_leaves_output_untouched(void **state)
{
    (void)state;
    expect_error("", "empty allowlist");
    expect_error("  ", "empty allowlist");
    expect_error("10.0.0.0/8,,::1", "\"\": empty entry");
    expect_error("10.0.0.0/8,", "empty entry");
    expect_error(",10.0.0.0/8", "empty entry");
    expect_error("localhost", "\"localhost\": not an IPv4 or IPv6 address");
    expect_error("10.0.0/8", "not an IPv4 or IPv6 address");
    expect_error("10.0.0.0/33", "\"10.0.0.0/33\": prefix length must be a number from 0 to 32");
    expect_error("::/129", "from 0 to 128");
    expect_error("10.0.0.0/", "prefix length");
    expect_error("10.0.0.0/x", "prefix length");
    expect_error("10.0.0.0/-1", "prefix length");
    expect_error("10.0.0.0/8/8", "prefix length");
    expect_error("10.0.0.0/08000", "prefix length");
    expect_error("10.1.2.3/8", "host bits set beyond /8 (did you mean 10.0.0.0/8?)");
    expect_error("fd00::1/8", "did you mean fd00::/8?");
    expect_error("2001:db8::/16", "did you mean 2001::/16?");
    expect_error("0123456789012345678901234567890123456789012345678901234567890123456789",
                 "too long");
    char many[SRV_ALLOW_MAX * 16 + 16] = "";
    for (int i = 0; i <= SRV_ALLOW_MAX; i++) {
        char one[16];
        snprintf(one, sizeof one, "%s10.0.%d.0/24", i == 0 ? "" : ",", i);
        strcat(many, one);
    }
    expect_error(many, "more than 32 entries");
}

static void test_format_writes_text_that_parses_back_to_the_same_list(void **state)
{
    srv_allow_t l;
    srv_allow_t again;
    char text[SRV_ALLOW_TEXTLEN];
    (void)state;
    parse_ok(" 10.0.0.0/8 ,fd00::/8, 192.0.2.7,::ffff:0:0/96,2001:DB8::/32 ", &l);
    size_t n = srv_allow_format(&l, text, sizeof text);
    assert_string_equal(text, "10.0.0.0/8,fd00::/8,192.0.2.7/32,::ffff:0.0.0.0/96,2001:db8::/32");
    assert_int_equal(n, strlen(text));
    parse_ok(text, &again);
    assert_memory_equal(&l, &again, sizeof l);

    srv_allow_default(&l);
    srv_allow_format(&l, text, sizeof text);
    assert_string_equal(text, SRV_ALLOW_DEFAULT);
}

static void test_format_truncates_and_returns_the_length_needed(void **state)
{
    srv_allow_t l;
    char small[8];
    (void)state;
    srv_allow_default(&l);
    size_t n = srv_allow_format(&l, small, sizeof small);
    assert_int_equal(n, strlen(SRV_ALLOW_DEFAULT));
    assert_string_equal(small, "127.0.0");
    assert_int_equal(srv_allow_format(&l, NULL, 0), n);
}

static void test_loopback_is_127_slash_8_and_colon_colon_1_only(void **state)
{
    (void)state;
    assert_true(srv_addr_is_loopback(sa_of("127.0.0.1")));
    assert_true(srv_addr_is_loopback(sa_of("127.3.2.1")));
    assert_true(srv_addr_is_loopback(sa_of("::1")));
    assert_true(srv_addr_is_loopback(sa_of("::ffff:127.0.0.1")));
    assert_false(srv_addr_is_loopback(sa_of("0.0.0.0")));
    assert_false(srv_addr_is_loopback(sa_of("::")));
    assert_false(srv_addr_is_loopback(sa_of("10.0.0.1")));
    assert_false(srv_addr_is_loopback(sa_of("::2")));
    assert_false(srv_addr_is_loopback(NULL));
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    assert_false(srv_addr_is_loopback((struct sockaddr *)&un));
    srv_allow_t l;
    srv_allow_default(&l);
    assert_false(srv_allow_match(&l, (struct sockaddr *)&un));
    assert_false(srv_allow_match(&l, NULL));
}

static void test_non_loopback_bind_warning_names_the_allowlist(void **state)
{
    srv_allow_t l;
    char msg[256];
    (void)state;
    parse_ok("10.0.0.0/8,::1", &l);
    assert_int_equal(srv_allow_bind_warning(sa_of("0.0.0.0"), &l, msg, sizeof msg), 1);
    assert_non_null(strstr(msg, "non-loopback"));
    assert_non_null(strstr(msg, "10.0.0.0/8,::1/128"));
    assert_int_equal(srv_allow_bind_warning(sa_of("::"), &l, msg, sizeof msg), 1);
    assert_int_equal(srv_allow_bind_warning(sa_of("127.0.0.1"), &l, msg, sizeof msg), 0);
    assert_string_equal(msg, "");
    assert_int_equal(srv_allow_bind_warning(sa_of("::1"), &l, msg, sizeof msg), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_list_allows_loopback_only),
        cmocka_unit_test(test_ipv4_rules_match_inside_and_deny_outside_the_prefix),
        cmocka_unit_test(test_ipv6_rules_match_inside_and_deny_outside_the_prefix),
        cmocka_unit_test(test_zero_prefix_matches_its_whole_family),
        cmocka_unit_test(test_mapped_ipv6_peer_matches_ipv4_rules),
        cmocka_unit_test(test_list_without_127_0_0_1_denies_it_but_allows_127_0_0_2),
        cmocka_unit_test(test_real_peer_from_127_0_0_2_is_matched_by_its_address),
        cmocka_unit_test(test_bad_input_gets_a_clear_error_and_leaves_output_untouched),
        cmocka_unit_test(test_format_writes_text_that_parses_back_to_the_same_list),
        cmocka_unit_test(test_format_truncates_and_returns_the_length_needed),
        cmocka_unit_test(test_loopback_is_127_slash_8_and_colon_colon_1_only),
        cmocka_unit_test(test_non_loopback_bind_warning_names_the_allowlist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
