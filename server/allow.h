/* allow.h - the admin listener's CIDR allowlist (--admin-allow CIDR[,CIDR]) for IPv4 and IPv6:
 * parse, match a peer address, format back to text, and tell loopback addresses apart. */
#ifndef INGESTD_ALLOW_H
#define INGESTD_ALLOW_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Most rules in one list; more is an error at parse time. */
#define SRV_ALLOW_MAX 32
/* Size an error buffer for srv_allow_parse must have. */
#define SRV_ALLOW_ERRLEN 160
/* Longest text srv_allow_format writes for a full list, NUL included. */
#define SRV_ALLOW_TEXTLEN (SRV_ALLOW_MAX * 44)
/* The default list: loopback only. */
#define SRV_ALLOW_DEFAULT "127.0.0.0/8,::1/128"

/* One rule: the network's bytes (host bits zero) in network order, AF_INET uses addr[0..4). */
typedef struct {
    int family; /* AF_INET or AF_INET6 */
    unsigned prefix;
    uint8_t addr[16];
} srv_cidr_t;

/* A plain value: embed it, copy it, no clean-up. Read-only after parsing, so any number of
 * threads may match against one list at once. */
typedef struct {
    size_t n;
    srv_cidr_t rules[SRV_ALLOW_MAX];
} srv_allow_t;

/* Parses "CIDR[,CIDR...]" into *out. A CIDR is an IPv4 or IPv6 address with an optional
 * "/PREFIX" (without one it is a single host: /32 or /128); spaces around entries are ignored.
 * Errors, each with one line in errbuf (at least SRV_ALLOW_ERRLEN bytes) quoting the bad entry:
 * an empty list or entry, an address that is neither IPv4 nor IPv6, a prefix that is not a
 * decimal number in range, host bits set beyond the prefix (the message suggests the network),
 * more than SRV_ALLOW_MAX entries. Returns 0, or -EINVAL leaving *out untouched. */
int srv_allow_parse(const char *text, srv_allow_t *out, char *errbuf);

/* Fills *out with the default list (SRV_ALLOW_DEFAULT: 127.0.0.0/8 and ::1/128). */
void srv_allow_default(srv_allow_t *out);

/* 1 when the peer sa (AF_INET or AF_INET6, port ignored) is inside a rule, else 0 (also for
 * any other family or NULL). An IPv4-mapped IPv6 peer (::ffff:a.b.c.d, as a dual-stack socket
 * reports IPv4 clients) matches IPv4 rules as a.b.c.d; an IPv4 peer matches IPv6 rules as its
 * mapped form. Any thread. */
int srv_allow_match(const srv_allow_t *list, const struct sockaddr *sa);

/* 1 when sa is a loopback address (127.0.0.0/8, ::1, or ::ffff:127.x.y.z), else 0. The
 * unspecified addresses (0.0.0.0, ::) are not loopback: they listen on every interface. */
int srv_addr_is_loopback(const struct sockaddr *sa);

/* Writes the list as "CIDR,CIDR" (the form srv_allow_parse reads) into buf, NUL-terminated and
 * truncated to size. Returns the length the whole text needs (like snprintf). */
size_t srv_allow_format(const srv_allow_t *list, char *buf, size_t size);

/* For the start-up rule "binding a non-loopback admin address logs a warning naming the
 * allowlist in force": when bind_addr is not loopback, writes a one-line message naming the
 * allowlist into buf (truncated to size) and returns 1; for a loopback bind address returns 0
 * and leaves buf empty. */
int srv_allow_bind_warning(const struct sockaddr *bind_addr, const srv_allow_t *list, char *buf,
                           size_t size);

#endif
