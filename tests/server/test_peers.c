/* test_peers.c - unit tests for the per-peer connection table (server/peers.h). Built from
 * peers.c itself, so the hash can be checked against SipHash's published vector. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/un.h>

#include "server/peers.c"

typedef union {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
    struct sockaddr_un un;
} addr_t;

static addr_t ip(const char *text, uint16_t port)
{
    addr_t a;
    memset(&a, 0, sizeof(a));
    if (strchr(text, ':') != NULL) {
        a.in6.sin6_family = AF_INET6;
        a.in6.sin6_port = htons(port);
        assert_int_equal(inet_pton(AF_INET6, text, &a.in6.sin6_addr), 1);
    } else {
        a.in.sin_family = AF_INET;
        a.in.sin_port = htons(port);
        assert_int_equal(inet_pton(AF_INET, text, &a.in.sin_addr), 1);
    }
    return a;
}

static srv_peers_t *make(size_t max_peers, unsigned per_peer, unsigned v4, unsigned v6)
{
    srv_peers_config_t cfg = {max_peers, per_peer, v4, v6};
    srv_peers_t *t = NULL;
    assert_int_equal(srv_peers_create(&cfg, &t), 0);
    return t;
}

static void test_peers_siphash_matches_the_published_vector(void **state)
{
    (void)state;
    uint8_t k[16], m[16];
    for (int i = 0; i < 16; i++) {
        k[i] = (uint8_t)i;
        m[i] = (uint8_t)i;
    }
    /* vectors_sip64[16] of the reference implementation: key 00..0f, message 00..0f. */
    assert_true(siphash16(le64(k), le64(k + 8), m) == 0x3f2acc7f57c29bdbull);
}

static void test_peers_cap_refuses_the_one_over_and_release_makes_room(void **state)
{
    (void)state;
    srv_peers_t *t = make(100, 3, 0, 0);
    addr_t a = ip("192.0.2.7", 1000);
    addr_t b = ip("192.0.2.8", 1000);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(srv_peers_acquire(t, &a.sa), 0);
    }
    assert_int_equal(srv_peers_acquire(t, &a.sa), -EUSERS);
    assert_int_equal(srv_peers_acquire(t, &b.sa), 0); /* another peer is not affected */
    assert_int_equal(srv_peers_count(t, &a.sa), 3);
    assert_int_equal(srv_peers_release(t, &a.sa), 0);
    assert_int_equal(srv_peers_acquire(t, &a.sa), 0);
    srv_peers_stats_t st;
    srv_peers_stats(t, &st);
    assert_int_equal(st.peers, 2);
    assert_int_equal(st.connections, 4);
    assert_int_equal(st.refused_per_peer, 1);
    srv_peers_destroy(t);
}

static void test_peers_ipv4_and_its_mapped_ipv6_form_are_one_peer_and_ports_ignored(void **state)
{
    (void)state;
    srv_peers_t *t = make(100, 2, 0, 0);
    addr_t v4 = ip("198.51.100.20", 40000);
    addr_t mapped = ip("::ffff:198.51.100.20", 40001);
    assert_int_equal(srv_peers_acquire(t, &v4.sa), 0);
    assert_int_equal(srv_peers_acquire(t, &mapped.sa), 0);
    assert_int_equal(srv_peers_acquire(t, &v4.sa), -EUSERS);
    assert_int_equal(srv_peers_count(t, &mapped.sa), 2);
    assert_int_equal(srv_peers_release(t, &mapped.sa), 0);
    assert_int_equal(srv_peers_release(t, &v4.sa), 0);
    assert_int_equal(srv_peers_release(t, &v4.sa), -ENOENT);
    srv_peers_stats_t st;
    srv_peers_stats(t, &st);
    assert_int_equal(st.peers, 0);
    assert_int_equal(st.bad_releases, 1);
    srv_peers_destroy(t);
}

static void test_peers_ipv6_counts_per_prefix(void **state)
{
    (void)state;
    srv_peers_t *t = make(100, 2, 0, 64);
    addr_t a1 = ip("2001:db8:1:2::1", 1);
    addr_t a2 = ip("2001:db8:1:2:ffff:ffff:ffff:ffff", 1);
    addr_t a3 = ip("2001:db8:1:2:1234::9", 1);
    addr_t other = ip("2001:db8:1:3::1", 1);
    assert_int_equal(srv_peers_acquire(t, &a1.sa), 0);
    assert_int_equal(srv_peers_acquire(t, &a2.sa), 0);
    assert_int_equal(srv_peers_acquire(t, &a3.sa), -EUSERS); /* same /64 */
    assert_int_equal(srv_peers_acquire(t, &other.sa), 0);
    srv_peers_destroy(t);

    t = make(100, 1, 0, 128); /* per address */
    assert_int_equal(srv_peers_acquire(t, &a1.sa), 0);
    assert_int_equal(srv_peers_acquire(t, &a2.sa), 0);
    assert_int_equal(srv_peers_acquire(t, &a1.sa), -EUSERS);
    srv_peers_destroy(t);

    t = make(100, 1, 0, 0); /* 0 means 128 */
    assert_int_equal(srv_peers_acquire(t, &a1.sa), 0);
    assert_int_equal(srv_peers_acquire(t, &a2.sa), 0);
    srv_peers_destroy(t);
}

static void test_peers_ipv4_prefix_groups_a_network_mapped_too(void **state)
{
    (void)state;
    srv_peers_t *t = make(100, 2, 24, 0);
    addr_t a = ip("203.0.113.1", 1);
    addr_t b = ip("::ffff:203.0.113.250", 1);
    addr_t c = ip("203.0.113.77", 1);
    addr_t d = ip("203.0.114.1", 1);
    assert_int_equal(srv_peers_acquire(t, &a.sa), 0);
    assert_int_equal(srv_peers_acquire(t, &b.sa), 0);
    assert_int_equal(srv_peers_acquire(t, &c.sa), -EUSERS);
    assert_int_equal(srv_peers_acquire(t, &d.sa), 0);
    srv_peers_destroy(t);
}

static void test_peers_table_full_refuses_new_peers_only(void **state)
{
    (void)state;
    srv_peers_t *t = make(3, 0, 0, 0);
    addr_t a[4] = {ip("10.0.0.1", 1), ip("10.0.0.2", 1), ip("::1", 1), ip("10.0.0.4", 1)};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(srv_peers_acquire(t, &a[i].sa), 0);
    }
    assert_int_equal(srv_peers_acquire(t, &a[3].sa), -ENOSPC);
    for (int i = 0; i < 1000; i++) { /* per_peer 0: no cap for known peers */
        assert_int_equal(srv_peers_acquire(t, &a[0].sa), 0);
    }
    assert_int_equal(srv_peers_release(t, &a[2].sa), 0);
    assert_int_equal(srv_peers_acquire(t, &a[3].sa), 0);
    srv_peers_stats_t st;
    srv_peers_stats(t, &st);
    assert_int_equal(st.refused_full, 1);
    assert_int_equal(st.connections, 1003);
    srv_peers_destroy(t);
}

static void test_peers_bad_family_and_config_are_refused(void **state)
{
    (void)state;
    srv_peers_t *t = make(10, 1, 0, 0);
    addr_t u;
    memset(&u, 0, sizeof(u));
    u.un.sun_family = AF_UNIX;
    assert_int_equal(srv_peers_acquire(t, &u.sa), -EAFNOSUPPORT);
    assert_int_equal(srv_peers_acquire(t, NULL), -EAFNOSUPPORT);
    assert_int_equal(srv_peers_release(t, &u.sa), -EAFNOSUPPORT);
    assert_int_equal(srv_peers_count(t, &u.sa), 0);
    srv_peers_destroy(t);
    srv_peers_destroy(NULL);
    srv_peers_config_t cfg = {0, 1, 0, 0};
    assert_int_equal(srv_peers_create(&cfg, &t), -EINVAL);
    cfg = (srv_peers_config_t){10, 1, 33, 0};
    assert_int_equal(srv_peers_create(&cfg, &t), -EINVAL);
    cfg = (srv_peers_config_t){10, 1, 0, 129};
    assert_int_equal(srv_peers_create(&cfg, &t), -EINVAL);
}

static void test_peers_memory_grows_with_peers_is_bounded_and_shrinks_back(void **state)
{
    (void)state;
    mem_stats_t before, after;
    mem_stats(&before);
    enum { N = 5000 };
    srv_peers_t *t = make(N, 2, 0, 128);
    addr_t a;
    for (int i = 0; i < N; i++) {
        a = ip(i % 2 ? "2001:db8::" : "10.0.0.0", 1);
        if (a.sa.sa_family == AF_INET) {
            a.in.sin_addr.s_addr = htonl(0x0a000000u + (uint32_t)i);
        } else {
            a.in6.sin6_addr.s6_addr[14] = (uint8_t)(i >> 8);
            a.in6.sin6_addr.s6_addr[15] = (uint8_t)i;
        }
        assert_int_equal(srv_peers_acquire(t, &a.sa), 0);
    }
    a = ip("192.0.2.1", 1);
    assert_int_equal(srv_peers_acquire(t, &a.sa), -ENOSPC);
    srv_peers_stats_t st;
    srv_peers_stats(t, &st);
    assert_int_equal(st.peers, N);
    assert_int_equal(st.slots, 16384); /* the power of two >= 2 * 5000; at most half full */
    assert_int_equal(st.bytes, 16384 * 20);
    for (int i = 0; i < N; i++) {
        a = ip(i % 2 ? "2001:db8::" : "10.0.0.0", 1);
        if (a.sa.sa_family == AF_INET) {
            a.in.sin_addr.s_addr = htonl(0x0a000000u + (uint32_t)i);
        } else {
            a.in6.sin6_addr.s6_addr[14] = (uint8_t)(i >> 8);
            a.in6.sin6_addr.s6_addr[15] = (uint8_t)i;
        }
        assert_int_equal(srv_peers_count(t, &a.sa), 1);
        assert_int_equal(srv_peers_release(t, &a.sa), 0);
    }
    srv_peers_stats(t, &st);
    assert_int_equal(st.peers, 0);
    assert_int_equal(st.connections, 0);
    assert_int_equal(st.slots, MIN_SLOTS);
    srv_peers_destroy(t);
    mem_stats(&after);
    assert_int_equal(after.alloc_bytes, before.alloc_bytes);
}

/* Random acquires and releases over a small address pool against a plain array model: probe
 * runs, wrap-around and backward-shift deletion get exercised in a 64-slot table. */
static void test_peers_random_operations_match_a_model(void **state)
{
    (void)state;
    enum { POOL = 40, CAP = 3 };
    srv_peers_t *t = make(32, CAP, 0, 0);
    unsigned model[POOL] = {0};
    unsigned peers = 0;
    uint64_t x = 88172645463325252ull;
    for (int step = 0; step < 200000; step++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        unsigned i = (unsigned)(x % POOL);
        addr_t a = ip("10.1.0.0", 1);
        a.in.sin_addr.s_addr = htonl(0x0a010000u + i * 7919u);
        if ((x >> 32) % 2 == 0) {
            int want = model[i] == CAP ? -EUSERS : (model[i] == 0 && peers == 32) ? -ENOSPC : 0;
            assert_int_equal(srv_peers_acquire(t, &a.sa), want);
            if (want == 0) {
                peers += model[i] == 0;
                model[i]++;
            }
        } else {
            assert_int_equal(srv_peers_release(t, &a.sa), model[i] == 0 ? -ENOENT : 0);
            if (model[i] > 0) {
                model[i]--;
                peers -= model[i] == 0;
            }
        }
        if (step % 997 == 0) {
            for (unsigned k = 0; k < POOL; k++) {
                a.in.sin_addr.s_addr = htonl(0x0a010000u + k * 7919u);
                assert_int_equal(srv_peers_count(t, &a.sa), model[k]);
            }
        }
    }
    srv_peers_destroy(t);
}

typedef struct {
    srv_peers_t *t;
    atomic_int over;
} race_t;

static void *racer(void *arg)
{
    race_t *rc = arg;
    addr_t a = ip("127.0.0.1", 1);
    addr_t b = ip("::ffff:127.0.0.1", 2);
    int held = 0;
    for (int i = 0; i < 20000; i++) {
        const struct sockaddr *sa = i % 2 ? &a.sa : &b.sa;
        if (held < 3 && srv_peers_acquire(rc->t, sa) == 0) {
            held++;
            if (srv_peers_count(rc->t, sa) > 4) {
                atomic_fetch_add(&rc->over, 1);
            }
        } else if (held > 0) {
            assert_int_equal(srv_peers_release(rc->t, sa), 0);
            held--;
        }
    }
    while (held-- > 0) {
        assert_int_equal(srv_peers_release(rc->t, &a.sa), 0);
    }
    return NULL;
}

static void test_peers_threads_never_pass_the_cap(void **state)
{
    (void)state;
    race_t rc = {make(16, 4, 0, 0), 0};
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, racer, &rc), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
    }
    assert_int_equal(atomic_load(&rc.over), 0);
    srv_peers_stats_t st;
    srv_peers_stats(rc.t, &st);
    assert_int_equal(st.connections, 0);
    assert_int_equal(st.peers, 0);
    assert_int_equal(st.bad_releases, 0);
    srv_peers_destroy(rc.t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peers_siphash_matches_the_published_vector),
        cmocka_unit_test(test_peers_cap_refuses_the_one_over_and_release_makes_room),
        cmocka_unit_test(test_peers_ipv4_and_its_mapped_ipv6_form_are_one_peer_and_ports_ignored),
        cmocka_unit_test(test_peers_ipv6_counts_per_prefix),
        cmocka_unit_test(test_peers_ipv4_prefix_groups_a_network_mapped_too),
        cmocka_unit_test(test_peers_table_full_refuses_new_peers_only),
        cmocka_unit_test(test_peers_bad_family_and_config_are_refused),
        cmocka_unit_test(test_peers_memory_grows_with_peers_is_bounded_and_shrinks_back),
        cmocka_unit_test(test_peers_random_operations_match_a_model),
        cmocka_unit_test(test_peers_threads_never_pass_the_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
