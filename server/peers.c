/* peers.c - connections per peer address: a keyed-hash open-addressing table under one mutex. */
#include "server/peers.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#include "mem/mem.h"

#define MIN_SLOTS 64
#define MAX_PEERS_LIMIT ((size_t)1 << 28)

/* One slot: the peer key (IPv6 form, host bits beyond the prefix cleared) and its count; count
 * 0 marks an empty slot. 20 bytes, 4-byte aligned. */
typedef struct {
    uint8_t key[16];
    uint32_t count;
} slot_t;

struct srv_peers {
    pthread_mutex_t mu;
    slot_t *slots; /* guarded by mu, like everything below */
    size_t nslots; /* a power of two */
    size_t max_slots;
    size_t peers;
    size_t connections;
    srv_peers_config_t cfg;
    uint64_t k0, k1; /* SipHash key */
    uint64_t refused_per_peer, refused_full, bad_releases;
};

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static void sipround(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = rotl(v[1], 13);
    v[1] ^= v[0];
    v[0] = rotl(v[0], 32);
    v[2] += v[3];
    v[3] = rotl(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = rotl(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = rotl(v[1], 17);
    v[1] ^= v[2];
    v[2] = rotl(v[2], 32);
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--) {
        x = (x << 8) | p[i];
    }
    return x;
}

/* SipHash-2-4 (Aumasson and Bernstein) of a 16-byte message. */
static uint64_t siphash16(uint64_t k0, uint64_t k1, const uint8_t m[16])
{
    uint64_t v[4] = {k0 ^ 0x736f6d6570736575ull, k1 ^ 0x646f72616e646f6dull,
                     k0 ^ 0x6c7967656e657261ull, k1 ^ 0x7465646279746573ull};
    for (int w = 0; w < 2; w++) {
        uint64_t mi = le64(m + 8 * w);
        v[3] ^= mi;
        sipround(v);
        sipround(v);
        v[0] ^= mi;
    }
    uint64_t last = (uint64_t)16 << 56; /* length byte, no tail */
    v[3] ^= last;
    sipround(v);
    sipround(v);
    v[0] ^= last;
    v[2] ^= 0xff;
    for (int i = 0; i < 4; i++) {
        sipround(v);
    }
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static void clear_host_bits(uint8_t *a, unsigned from_bit)
{
    for (unsigned i = from_bit / 8; i < 16; i++) {
        unsigned first = i * 8;
        uint8_t keep = first >= from_bit ? 0 : (uint8_t)(0xff << (8 - (from_bit - first)));
        a[i] &= keep;
    }
}

/* The peer key of addr, or -EAFNOSUPPORT. */
static int peer_key(const srv_peers_t *t, const struct sockaddr *sa, uint8_t key[16])
{
    if (sa == NULL) {
        return -EAFNOSUPPORT;
    }
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        memcpy(key, v4mapped, 12);
        memcpy(key + 12, &in->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        memcpy(key, &in6->sin6_addr, 16);
    } else {
        return -EAFNOSUPPORT;
    }
    if (memcmp(key, v4mapped, 12) == 0) {
        clear_host_bits(key, 96 + t->cfg.ipv4_prefix);
    } else {
        clear_host_bits(key, t->cfg.ipv6_prefix);
    }
    return 0;
}

static size_t home(const srv_peers_t *t, const uint8_t key[16], size_t nslots)
{
    return (size_t)siphash16(t->k0, t->k1, key) & (nslots - 1);
}

/* Index of key's slot, or of the empty slot where it would go. */
static size_t find(const srv_peers_t *t, const uint8_t key[16])
{
    size_t mask = t->nslots - 1;
    size_t i = home(t, key, t->nslots);
    while (t->slots[i].count != 0 && memcmp(t->slots[i].key, key, 16) != 0) {
        i = (i + 1) & mask;
    }
    return i;
}

/* Moves every entry into a new array of n slots. -ENOMEM leaves the table as it was. */
static int resize(srv_peers_t *t, size_t n)
{
    slot_t *ns = mem_calloc(n, sizeof(slot_t));
    if (ns == NULL) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < t->nslots; i++) {
        if (t->slots[i].count == 0) {
            continue;
        }
        size_t j = home(t, t->slots[i].key, n);
        while (ns[j].count != 0) {
            j = (j + 1) & (n - 1);
        }
        ns[j] = t->slots[i];
    }
    mem_free(t->slots);
    t->slots = ns;
    t->nslots = n;
    return 0;
}

/* Empties slot i and shifts later entries of its probe run back (no tombstones). */
static void remove_at(srv_peers_t *t, size_t i)
{
    size_t mask = t->nslots - 1;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (t->slots[j].count == 0) {
            break;
        }
        size_t k = home(t, t->slots[j].key, t->nslots);
        /* Entry j may fill the hole at i unless its home lies cyclically in (i, j]. */
        int home_between = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!home_between) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    memset(&t->slots[i], 0, sizeof(slot_t));
}

int srv_peers_create(const srv_peers_config_t *cfg, srv_peers_t **out)
{
    if (cfg == NULL || out == NULL || cfg->max_peers == 0 || cfg->max_peers > MAX_PEERS_LIMIT ||
        cfg->ipv4_prefix > 32 || cfg->ipv6_prefix > 128) {
        return -EINVAL;
    }
    srv_peers_t *t = mem_calloc(1, sizeof(*t));
    if (t == NULL) {
        return -ENOMEM;
    }
    t->cfg = *cfg;
    if (t->cfg.ipv4_prefix == 0) {
        t->cfg.ipv4_prefix = 32;
    }
    if (t->cfg.ipv6_prefix == 0) {
        t->cfg.ipv6_prefix = 128;
    }
    t->max_slots = MIN_SLOTS;
    while (t->max_slots < 2 * cfg->max_peers) {
        t->max_slots *= 2;
    }
    t->nslots = MIN_SLOTS;
    uint64_t key[2];
    size_t got = 0;
    while (got < sizeof(key)) {
        ssize_t r = getrandom((char *)key + got, sizeof(key) - got, 0);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            int e = errno;
            mem_free(t);
            return -e;
        }
        got += (size_t)r;
    }
    t->k0 = key[0];
    t->k1 = key[1];
    t->slots = mem_calloc(t->nslots, sizeof(slot_t));
    if (t->slots == NULL) {
        mem_free(t);
        return -ENOMEM;
    }
    pthread_mutex_init(&t->mu, NULL);
    *out = t;
    return 0;
}

void srv_peers_destroy(srv_peers_t *t)
{
    if (t == NULL) {
        return;
    }
    pthread_mutex_destroy(&t->mu);
    mem_free(t->slots);
    mem_free(t);
}

int srv_peers_acquire(srv_peers_t *t, const struct sockaddr *addr)
{
    uint8_t key[16];
    int rc = peer_key(t, addr, key);
    if (rc != 0) {
        return rc;
    }
    pthread_mutex_lock(&t->mu);
    size_t i = find(t, key);
    if (t->slots[i].count != 0) {
        if (t->cfg.per_peer != 0 && t->slots[i].count >= t->cfg.per_peer) {
            t->refused_per_peer++;
            rc = -EUSERS;
        } else if (t->slots[i].count == UINT32_MAX) {
            rc = -EUSERS;
        } else {
            t->slots[i].count++;
            t->connections++;
        }
        goto out;
    }
    if (t->peers >= t->cfg.max_peers) {
        t->refused_full++;
        rc = -ENOSPC;
        goto out;
    }
    if (2 * (t->peers + 1) > t->nslots && t->nslots < t->max_slots) {
        rc = resize(t, t->nslots * 2);
        if (rc != 0) {
            goto out;
        }
        i = find(t, key);
    }
    memcpy(t->slots[i].key, key, 16);
    t->slots[i].count = 1;
    t->peers++;
    t->connections++;
out:
    pthread_mutex_unlock(&t->mu);
    return rc;
}

int srv_peers_release(srv_peers_t *t, const struct sockaddr *addr)
{
    uint8_t key[16];
    int rc = peer_key(t, addr, key);
    if (rc != 0) {
        return rc;
    }
    pthread_mutex_lock(&t->mu);
    size_t i = find(t, key);
    if (t->slots[i].count == 0) {
        t->bad_releases++;
        rc = -ENOENT;
        goto out;
    }
    t->connections--;
    if (--t->slots[i].count == 0) {
        remove_at(t, i);
        t->peers--;
        if (t->nslots > MIN_SLOTS && 8 * t->peers < t->nslots) {
            (void)resize(t, t->nslots / 2); /* on -ENOMEM the bigger table simply stays */
        }
    }
out:
    pthread_mutex_unlock(&t->mu);
    return rc;
}

unsigned srv_peers_count(srv_peers_t *t, const struct sockaddr *addr)
{
    uint8_t key[16];
    if (peer_key(t, addr, key) != 0) {
        return 0;
    }
    pthread_mutex_lock(&t->mu);
    unsigned n = t->slots[find(t, key)].count;
    pthread_mutex_unlock(&t->mu);
    return n;
}

void srv_peers_stats(srv_peers_t *t, srv_peers_stats_t *out)
{
    pthread_mutex_lock(&t->mu);
    out->peers = t->peers;
    out->connections = t->connections;
    out->slots = t->nslots;
    out->bytes = t->nslots * sizeof(slot_t);
    out->refused_per_peer = t->refused_per_peer;
    out->refused_full = t->refused_full;
    out->bad_releases = t->bad_releases;
    pthread_mutex_unlock(&t->mu);
}
