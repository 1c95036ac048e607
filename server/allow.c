/* allow.c - CIDR allowlist for the admin listener: parsing, matching, formatting. */
#include "server/allow.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* Longest entry text we look at (an IPv6 address with a prefix is at most 49 bytes). */
#define ENTRY_MAX 64

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void errf(char *errbuf, const char *entry, size_t len, const char *what)
{
    if (errbuf == NULL) {
        return;
    }
    snprintf(errbuf, SRV_ALLOW_ERRLEN, "\"%.*s\": %s", (int)(len > ENTRY_MAX ? ENTRY_MAX : len),
             entry, what);
}

/* 1 when bits [prefix, 8*nbytes) of a are all zero. */
static int host_bits_zero(const uint8_t *a, size_t nbytes, unsigned prefix)
{
    for (size_t i = 0; i < nbytes; i++) {
        unsigned first = (unsigned)i * 8;
        uint8_t keep;
        if (first + 8 <= prefix) {
            keep = 0xff;
        } else if (first >= prefix) {
            keep = 0;
        } else {
            keep = (uint8_t)(0xff << (8 - (prefix - first)));
        }
        if ((a[i] & (uint8_t)~keep) != 0) {
            return 0;
        }
    }
    return 1;
}

static void mask_bits(uint8_t *a, size_t nbytes, unsigned prefix)
{
    for (size_t i = 0; i < nbytes; i++) {
        unsigned first = (unsigned)i * 8;
        if (first >= prefix) {
            a[i] = 0;
        } else if (first + 8 > prefix) {
            a[i] &= (uint8_t)(0xff << (8 - (prefix - first)));
        }
    }
}

/* 1 when the first prefix bits of a and b agree. */
static int prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
    unsigned full = prefix / 8;
    unsigned rest = prefix % 8;
    if (memcmp(a, b, full) != 0) {
        return 0;
    }
    if (rest == 0) {
        return 1;
    }
    uint8_t m = (uint8_t)(0xff << (8 - rest));
    return (a[full] & m) == (b[full] & m);
}

static int format_cidr(const srv_cidr_t *c, char *buf, size_t size)
{
    char a[INET6_ADDRSTRLEN];
    if (inet_ntop(c->family, c->addr, a, sizeof a) == NULL) {
        snprintf(a, sizeof a, "?");
    }
    return snprintf(buf, size, "%s/%u", a, c->prefix);
}

/* Parses one trimmed entry of len bytes. Returns 0 or -EINVAL with errbuf filled. */
static int parse_entry(const char *s, size_t len, srv_cidr_t *out, char *errbuf)
{
    char tmp[ENTRY_MAX + 1];
    if (len == 0) {
        errf(errbuf, s, len, "empty entry (expected CIDR such as 10.0.0.0/8 or fd00::/8)");
        return -EINVAL;
    }
    if (len > ENTRY_MAX) {
        errf(errbuf, s, len, "too long to be an IPv4 or IPv6 CIDR");
        return -EINVAL;
    }
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    char *slash = strchr(tmp, '/');
    if (slash != NULL) {
        *slash = '\0';
    }
    srv_cidr_t c;
    memset(&c, 0, sizeof c);
    unsigned max;
    if (inet_pton(AF_INET, tmp, c.addr) == 1) {
        c.family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, tmp, c.addr) == 1) {
        c.family = AF_INET6;
        max = 128;
    } else {
        errf(errbuf, s, len, "not an IPv4 or IPv6 address");
        return -EINVAL;
    }
    c.prefix = max;
    if (slash != NULL) {
        const char *p = slash + 1;
        unsigned v = 0;
        size_t digits = 0;
        for (; isdigit((unsigned char)*p) && digits < 4; p++, digits++) {
            v = v * 10 + (unsigned)(*p - '0');
        }
        if (digits == 0 || *p != '\0' || v > max) {
            char what[64];
            snprintf(what, sizeof what, "prefix length must be a number from 0 to %u", max);
            errf(errbuf, s, len, what);
            return -EINVAL;
        }
        c.prefix = v;
    }
    size_t nbytes = c.family == AF_INET ? 4 : 16;
    if (!host_bits_zero(c.addr, nbytes, c.prefix)) {
        srv_cidr_t net = c;
        char suggest[INET6_ADDRSTRLEN + 8];
        char what[128];
        mask_bits(net.addr, nbytes, net.prefix);
        format_cidr(&net, suggest, sizeof suggest);
        snprintf(what, sizeof what, "host bits set beyond /%u (did you mean %s?)", c.prefix,
                 suggest);
        errf(errbuf, s, len, what);
        return -EINVAL;
    }
    *out = c;
    return 0;
}

int srv_allow_parse(const char *text, srv_allow_t *out, char *errbuf)
{
    srv_allow_t list;
    if (errbuf != NULL) {
        errbuf[0] = '\0';
    }
    if (text == NULL) {
        text = "";
    }
    memset(&list, 0, sizeof list); /* unused rules are zero, so lists compare with memcmp */
    const char *p = text;
    for (;;) {
        const char *end = strchr(p, ',');
        if (end == NULL) {
            end = p + strlen(p);
        }
        const char *b = p;
        const char *e = end;
        while (b < e && isspace((unsigned char)*b)) {
            b++;
        }
        while (e > b && isspace((unsigned char)e[-1])) {
            e--;
        }
        if (b == e && *end == '\0' && list.n == 0) {
            if (errbuf != NULL) {
                snprintf(errbuf, SRV_ALLOW_ERRLEN,
                         "empty allowlist (expected CIDR[,CIDR], such as %s)", SRV_ALLOW_DEFAULT);
            }
            return -EINVAL;
        }
        if (list.n == SRV_ALLOW_MAX) {
            if (errbuf != NULL) {
                snprintf(errbuf, SRV_ALLOW_ERRLEN, "more than %d entries", SRV_ALLOW_MAX);
            }
            return -EINVAL;
        }
        if (parse_entry(b, (size_t)(e - b), &list.rules[list.n], errbuf) != 0) {
            return -EINVAL;
        }
        list.n++;
        if (*end == '\0') {
            break;
        }
        p = end + 1;
    }
    *out = list;
    return 0;
}

void srv_allow_default(srv_allow_t *out)
{
    char err[SRV_ALLOW_ERRLEN];
    int rc = srv_allow_parse(SRV_ALLOW_DEFAULT, out, err);
    (void)rc; /* a constant that parses: checked by the unit test */
}

/* Extracts the peer's bytes: v4 (4 bytes, valid when *has4) and v6 (16 bytes, the mapped form
 * for an IPv4 peer). Returns 0, or -1 for a family we do not know. */
static int peer_bytes(const struct sockaddr *sa, uint8_t v4[4], int *has4, uint8_t v6[16])
{
    if (sa == NULL) {
        return -1;
    }
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        memcpy(v4, &in->sin_addr, 4);
        memcpy(v6, v4mapped_prefix, 12);
        memcpy(v6 + 12, v4, 4);
        *has4 = 1;
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        memcpy(v6, &in6->sin6_addr, 16);
        *has4 = memcmp(v6, v4mapped_prefix, 12) == 0;
        if (*has4) {
            memcpy(v4, v6 + 12, 4);
        }
        return 0;
    }
    return -1;
}

int srv_allow_match(const srv_allow_t *list, const struct sockaddr *sa)
{
    uint8_t v4[4];
    uint8_t v6[16];
    int has4 = 0;
    if (list == NULL || peer_bytes(sa, v4, &has4, v6) != 0) {
        return 0;
    }
    for (size_t i = 0; i < list->n; i++) {
        const srv_cidr_t *r = &list->rules[i];
        if (r->family == AF_INET && has4 && prefix_equal(r->addr, v4, r->prefix)) {
            return 1;
        }
        if (r->family == AF_INET6 && prefix_equal(r->addr, v6, r->prefix)) {
            return 1;
        }
    }
    return 0;
}

int srv_addr_is_loopback(const struct sockaddr *sa)
{
    uint8_t v4[4];
    uint8_t v6[16];
    int has4 = 0;
    static const uint8_t v6_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (peer_bytes(sa, v4, &has4, v6) != 0) {
        return 0;
    }
    if (has4) {
        return v4[0] == 127;
    }
    return memcmp(v6, v6_loopback, 16) == 0;
}

size_t srv_allow_format(const srv_allow_t *list, char *buf, size_t size)
{
    size_t need = 0;
    if (size > 0) {
        buf[0] = '\0';
    }
    for (size_t i = 0; list != NULL && i < list->n; i++) {
        char one[INET6_ADDRSTRLEN + 8];
        int n = format_cidr(&list->rules[i], one, sizeof one);
        if (n < 0) {
            continue;
        }
        int w = snprintf(size > need ? buf + need : NULL, size > need ? size - need : 0, "%s%s",
                         i == 0 ? "" : ",", one);
        need += (size_t)w;
    }
    return need;
}

int srv_allow_bind_warning(const struct sockaddr *bind_addr, const srv_allow_t *list, char *buf,
                           size_t size)
{
    if (size > 0) {
        buf[0] = '\0';
    }
    if (srv_addr_is_loopback(bind_addr)) {
        return 0;
    }
    char text[SRV_ALLOW_TEXTLEN];
    srv_allow_format(list, text, sizeof text);
    snprintf(buf, size,
             "admin listener bound to a non-loopback address: only peers in the allowlist "
             "%s are served (--admin-allow)",
             text);
    return 1;
}
