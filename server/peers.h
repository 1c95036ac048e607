/* peers.h - connections per peer address for one process: a table all workers share, asked at
 * accept (acquire: under or over the per-peer cap) and told at close (release). */
#ifndef INGESTD_PEERS_H
#define INGESTD_PEERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Every limit is the caller's (flags). */
typedef struct {
    size_t max_peers;     /* distinct peers tracked at once. Pass the global connection cap plus
                           * the connections that may still be closing while new ones are
                           * accepted (e.g. cap + workers when each worker evicts one at a time):
                           * each tracked peer has at least one live connection, so the table
                           * never needs more. An acquire for a new peer beyond it -> -ENOSPC. */
    unsigned per_peer;    /* connections per peer; the one over it -> -EUSERS. 0: no cap (only
                           * counted). */
    unsigned ipv4_prefix; /* IPv4 peers (and IPv4-mapped IPv6 ones) count as one peer per
                           * /ipv4_prefix network: 32 (one address) .. 1. 0 means 32. */
    unsigned ipv6_prefix; /* other IPv6 peers count as one per /ipv6_prefix network: 128 .. 1.
                           * 0 means 128. 64 is the usual choice: one host or site holds a /64. */
} srv_peers_config_t;

#define SRV_PEERS_DEFAULT_IPV4_PREFIX 32
#define SRV_PEERS_DEFAULT_IPV6_PREFIX 64

/* The shared table. One mutex guards it: acquire and release run once per connection (accept
 * and close), not per event, and hold it for one hash probe (and, rarely, a resize). */
typedef struct srv_peers srv_peers_t;

/* Creates an empty table. Memory: open addressing with linear probing, 20 bytes per slot, kept
 * at most half full; it starts at 64 slots, doubles as distinct peers grow and halves when they
 * fall below an eighth, never above the power of two >= 2 * max_peers slots (e.g. 640 KiB for
 * max_peers 10,000). Peers are hashed with SipHash-2-4 under a key drawn from getrandom, so a
 * client cannot choose addresses that collide. Returns 0, -EINVAL (max_peers 0 or above 2^28,
 * a prefix out of range), -ENOMEM, or the -errno of getrandom. */
int srv_peers_create(const srv_peers_config_t *cfg, srv_peers_t **out);

/* Frees the table. NULL does nothing. No other thread may use it any more. */
void srv_peers_destroy(srv_peers_t *t);

/* Counts one more connection of addr's peer (AF_INET or AF_INET6; the port is ignored; an
 * IPv4 address and its IPv4-mapped IPv6 form ::ffff:a.b.c.d are the same peer). Returns 0;
 * -EUSERS when the peer already has per_peer connections (nothing counted: close the new
 * connection, after a 503 on HTTP); -ENOSPC when addr is a new peer and max_peers are tracked;
 * -EAFNOSUPPORT for another family or NULL; -ENOMEM when growing failed. Only a 0 return must be
 * matched by one srv_peers_release. Any thread. */
int srv_peers_acquire(srv_peers_t *t, const struct sockaddr *addr);

/* Counts one connection of addr's peer less; the last one forgets the peer. Returns 0, or
 * -ENOENT when the peer holds nothing (a release without an acquire: a bug, counted in
 * stats.bad_releases). Any thread. */
int srv_peers_release(srv_peers_t *t, const struct sockaddr *addr);

/* Connections counted for addr's peer now (0 for an unknown peer or family). Any thread. */
unsigned srv_peers_count(srv_peers_t *t, const struct sockaddr *addr);

typedef struct {
    size_t peers;              /* distinct peers tracked */
    size_t connections;        /* sum of their counts */
    size_t slots;              /* table size now */
    size_t bytes;              /* memory held by the slot array */
    uint64_t refused_per_peer; /* acquires answered -EUSERS */
    uint64_t refused_full;     /* acquires answered -ENOSPC */
    uint64_t bad_releases;     /* releases answered -ENOENT */
} srv_peers_stats_t;

/* A consistent snapshot of the table's figures. Any thread. */
void srv_peers_stats(srv_peers_t *t, srv_peers_stats_t *out);

#endif
