/* auth.c - bearer tokens: tokens file parsing, reference-counted sets, the publish slot and the
 * constant-time check. */
#include "server/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem/mem.h"

struct srv_auth_set {
    atomic_size_t refs;
    size_t n;        /* tokens */
    size_t width;    /* bytes per token slot: the limits' max_token_len */
    size_t *lens;    /* n lengths, after the struct */
    uint8_t *tokens; /* n * width bytes, each token zero-padded, after lens; width is
                      * max_token_len rounded up to 8 */
    size_t bytes;    /* size of this one allocation, for the wipe */
};

struct srv_auth_slot {
    pthread_mutex_t mu;
    srv_auth_set_t *set;  /* the slot's reference; guarded by mu */
    _Atomic uint64_t gen; /* written under mu, read anywhere */
};

void srv_auth_limits_default(srv_auth_limits_t *out)
{
    out->max_tokens = SRV_AUTH_DEFAULT_MAX_TOKENS;
    out->max_token_len = SRV_AUTH_DEFAULT_MAX_TOKEN_LEN;
    out->min_token_len = SRV_AUTH_DEFAULT_MIN_TOKEN_LEN;
    out->max_file_bytes = SRV_AUTH_DEFAULT_MAX_FILE_BYTES;
}

/* Appends printf text to msg (keeps what is there; "; " between entries). */
__attribute__((format(printf, 3, 4))) static void msgf(char *msg, size_t size, const char *fmt, ...)
{
    if (msg == NULL || size == 0) {
        return;
    }
    size_t used = strnlen(msg, size - 1);
    if (used > 0 && used + 2 < size) {
        memcpy(msg + used, "; ", 3);
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + used, size - used, fmt, ap);
    va_end(ap);
}

static int is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* 1 for the b64token characters before any '=' padding (RFC 6750 2.1). */
static int is_b64char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

/* 1 when p[0..n) is a b64token: 1*b64char *"=". */
static int is_b64token(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && is_b64char((unsigned char)p[i])) {
        i++;
    }
    if (i == 0) {
        return 0;
    }
    while (i < n && p[i] == '=') {
        i++;
    }
    return i == n;
}

static int limits_ok(const srv_auth_limits_t *lim)
{
    return lim != NULL && lim->max_tokens > 0 && lim->max_token_len > 0 &&
           lim->max_token_len <= SRV_AUTH_TOKEN_LEN_CAP &&
           lim->min_token_len <= lim->max_token_len && lim->max_file_bytes > 0;
}

/* One pass over the text: with set NULL it only validates and counts, else it fills set. */
static int scan_tokens(const char *text, size_t len, const char *source,
                       const srv_auth_limits_t *lim, srv_auth_set_t *set, size_t *count, char *msg,
                       size_t msgsize)
{
    size_t n = 0;
    size_t lineno = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t ll = nl != NULL ? (size_t)(nl - line) : len - pos;
        pos += ll + (nl != NULL ? 1 : 0);
        lineno++;
        if (ll > 0 && line[ll - 1] == '\r') {
            ll--;
        }
        size_t a = 0;
        while (a < ll && is_ows((unsigned char)line[a])) {
            a++;
        }
        size_t b = ll;
        while (b > a && is_ows((unsigned char)line[b - 1])) {
            b--;
        }
        if (a == b || line[a] == '#') {
            continue;
        }
        const char *tok = line + a;
        size_t tl = b - a;
        if (!is_b64token(tok, tl)) {
            int ws = 0;
            for (size_t i = 0; i < tl; i++) {
                ws |= is_ows((unsigned char)tok[i]);
            }
            msgf(msg, msgsize, "%s:%zu: %s", source, lineno,
                 ws ? "whitespace inside a token (one token per line; comments on lines of their "
                      "own starting with #)"
                    : "a token may hold only A-Z a-z 0-9 - . _ ~ + / and trailing = (RFC 6750 "
                      "b64token)");
            return -EINVAL;
        }
        if (tl < lim->min_token_len) {
            msgf(msg, msgsize, "%s:%zu: token of %zu bytes is shorter than the minimum of %zu",
                 source, lineno, tl, lim->min_token_len);
            return -EINVAL;
        }
        if (tl > lim->max_token_len) {
            msgf(msg, msgsize, "%s:%zu: token longer than the maximum of %zu bytes", source, lineno,
                 lim->max_token_len);
            return -EINVAL;
        }
        if (n == lim->max_tokens) {
            msgf(msg, msgsize, "%s:%zu: more than the maximum of %zu tokens", source, lineno,
                 lim->max_tokens);
            return -EINVAL;
        }
        if (set != NULL) {
            uint8_t *slot = set->tokens + n * set->width;
            for (size_t j = 0; j < n; j++) {
                if (set->lens[j] == tl && memcmp(set->tokens + j * set->width, tok, tl) == 0) {
                    msgf(msg, msgsize, "%s:%zu: duplicate token (ignored)", source, lineno);
                    goto next;
                }
            }
            memcpy(slot, tok, tl);
            set->lens[n] = tl;
        }
        n++;
    next:;
    }
    if (n == 0) {
        msgf(msg, msgsize, "%s: no tokens (one per line; # starts a comment line)", source);
        return -EINVAL;
    }
    *count = n;
    return 0;
}

int srv_auth_set_parse(const char *text, size_t len, const char *source,
                       const srv_auth_limits_t *lim, srv_auth_set_t **out, char *msg,
                       size_t msgsize)
{
    if (msg != NULL && msgsize > 0) {
        msg[0] = '\0';
    }
    if (source == NULL) {
        source = "tokens";
    }
    if (!limits_ok(lim) || out == NULL || (text == NULL && len > 0)) {
        msgf(msg, msgsize, "%s: bad token limits", source);
        return -EINVAL;
    }
    if (len > lim->max_file_bytes) {
        msgf(msg, msgsize, "%s: larger than the maximum of %zu bytes", source, lim->max_file_bytes);
        return -EINVAL;
    }
    size_t n = 0;
    int rc = scan_tokens(text, len, source, lim, NULL, &n, msg, msgsize);
    if (rc != 0) {
        return rc;
    }
    size_t width = (lim->max_token_len + 7) & ~(size_t)7; /* compared 8 bytes at a time */
    size_t bytes = sizeof(srv_auth_set_t) + n * sizeof(size_t) + n * width;
    srv_auth_set_t *set = mem_calloc(1, bytes);
    if (set == NULL) {
        msgf(msg, msgsize, "%s: out of memory", source);
        return -ENOMEM;
    }
    atomic_init(&set->refs, 1);
    set->width = width;
    set->bytes = bytes;
    set->lens = (size_t *)(set + 1);
    set->tokens = (uint8_t *)(set->lens + n);
    rc = scan_tokens(text, len, source, lim, set, &set->n, msg, msgsize);
    if (rc != 0) {
        srv_auth_set_unref(set); /* not reached: the first pass accepted the same text */
        return rc;
    }
    *out = set;
    return 0;
}

int srv_auth_set_load(const char *path, const srv_auth_limits_t *lim, srv_auth_set_t **out,
                      char *msg, size_t msgsize)
{
    if (msg != NULL && msgsize > 0) {
        msg[0] = '\0';
    }
    if (!limits_ok(lim) || path == NULL || out == NULL) {
        msgf(msg, msgsize, "%s: bad token limits", path != NULL ? path : "tokens");
        return -EINVAL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        msgf(msg, msgsize, "%s: %s", path, strerror(e));
        return -e;
    }
    char *buf = NULL;
    size_t cap = 0;
    size_t len = 0;
    int rc;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        msgf(msg, msgsize, "%s: %s", path, strerror(-rc));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        msgf(msg, msgsize, "%s: not a regular file", path);
        goto done;
    }
    if ((uint64_t)st.st_size > lim->max_file_bytes) {
        rc = -EINVAL;
        msgf(msg, msgsize, "%s: larger than the maximum of %zu bytes", path, lim->max_file_bytes);
        goto done;
    }
    /* Read up to one byte past the limit, so a file that grew since fstat is still caught. */
    cap = (size_t)st.st_size + 1;
    buf = mem_malloc(cap);
    if (buf == NULL) {
        rc = -ENOMEM;
        msgf(msg, msgsize, "%s: out of memory", path);
        goto done;
    }
    for (;;) {
        if (len == cap) {
            if (len > lim->max_file_bytes) {
                break;
            }
            size_t ncap = cap * 2 > lim->max_file_bytes + 1 ? lim->max_file_bytes + 1 : cap * 2;
            char *nb = mem_malloc(ncap);
            if (nb == NULL) {
                rc = -ENOMEM;
                msgf(msg, msgsize, "%s: out of memory", path);
                goto done;
            }
            memcpy(nb, buf, len);
            explicit_bzero(buf, cap);
            mem_free(buf);
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            rc = -errno;
            msgf(msg, msgsize, "%s: %s", path, strerror(-rc));
            goto done;
        }
        if (r == 0) {
            break;
        }
        len += (size_t)r;
    }
    rc = srv_auth_set_parse(buf, len, path, lim, out, msg, msgsize);
    if (rc == 0 && (st.st_mode & (S_IROTH | S_IWOTH)) != 0) {
        msgf(msg, msgsize, "%s: readable or writable by every user (mode %04o); chmod 600 it", path,
             (unsigned)(st.st_mode & 07777));
    }
done:
    if (buf != NULL) {
        explicit_bzero(buf, cap);
        mem_free(buf);
    }
    close(fd);
    return rc;
}

size_t srv_auth_set_count(const srv_auth_set_t *set)
{
    return set != NULL ? set->n : 0;
}

srv_auth_set_t *srv_auth_set_ref(srv_auth_set_t *set)
{
    if (set != NULL) {
        atomic_fetch_add_explicit(&set->refs, 1, memory_order_relaxed);
    }
    return set;
}

void srv_auth_set_unref(srv_auth_set_t *set)
{
    if (set == NULL) {
        return;
    }
    if (atomic_fetch_sub_explicit(&set->refs, 1, memory_order_acq_rel) == 1) {
        explicit_bzero(set, set->bytes);
        mem_free(set);
    }
}

/* Keeps the compiler from turning the accumulated difference into an early exit. */
static uint32_t opaque32(uint32_t v)
{
    __asm__ volatile("" : "+r"(v));
    return v;
}

srv_auth_result_t srv_auth_check(const srv_auth_set_t *set, const char *value, size_t len)
{
    if (value == NULL) {
        return SRV_AUTH_MISSING;
    }
    size_t a = 0;
    while (a < len && is_ows((unsigned char)value[a])) {
        a++;
    }
    size_t b = len;
    while (b > a && is_ows((unsigned char)value[b - 1])) {
        b--;
    }
    static const char scheme[] = "bearer";
    const size_t sl = sizeof(scheme) - 1;
    if (b - a < sl + 2) {
        return SRV_AUTH_MALFORMED;
    }
    for (size_t i = 0; i < sl; i++) {
        unsigned char c = (unsigned char)value[a + i];
        if (c >= 'A' && c <= 'Z') {
            c = (unsigned char)(c - 'A' + 'a');
        }
        if (c != (unsigned char)scheme[i]) {
            return SRV_AUTH_MALFORMED;
        }
    }
    size_t t = a + sl;
    if (!is_ows((unsigned char)value[t])) {
        return SRV_AUTH_MALFORMED;
    }
    while (t < b && is_ows((unsigned char)value[t])) {
        t++;
    }
    const char *tok = value + t;
    size_t tl = b - t;
    if (!is_b64token(tok, tl)) {
        return SRV_AUTH_MALFORMED;
    }
    if (set == NULL) {
        return SRV_AUTH_DENIED;
    }
    /* The presented token, zero-padded to the set's width (a longer one is cut here and can
     * match nothing: its length differs from every stored one). */
    uint8_t cand[SRV_AUTH_TOKEN_LEN_CAP]; /* a multiple of 8, like every width */
    size_t w = set->width;
    size_t copy = tl < w ? tl : w;
    memcpy(cand, tok, copy);
    memset(cand + copy, 0, w - copy);
    uint32_t any = 0;
    for (size_t k = 0; k < set->n; k++) {
        const uint8_t *s = set->tokens + k * w;
        uint64_t d = 0;
        for (size_t i = 0; i < w; i += 8) {
            uint64_t x, y;
            memcpy(&x, cand + i, 8);
            memcpy(&y, s + i, 8);
            d |= x ^ y;
        }
        d |= (uint64_t)(set->lens[k] ^ tl);
        uint32_t diff = opaque32((uint32_t)(d | (d >> 32)));
        /* 1 when diff == 0, without a branch: diff < 2^32, so diff - 1 borrows only from 0. */
        any |= (uint32_t)(((uint64_t)diff - 1) >> 63);
    }
    explicit_bzero(cand, w);
    /* Arithmetic, not a branch, on the secret-dependent bit (SRV_AUTH_OK is 0). */
    return (srv_auth_result_t)((uint32_t)SRV_AUTH_DENIED * (opaque32(any) ^ 1u));
}

const char *srv_auth_result_name(srv_auth_result_t r)
{
    switch (r) {
    case SRV_AUTH_OK:
        return "ok";
    case SRV_AUTH_MISSING:
        return "missing";
    case SRV_AUTH_MALFORMED:
        return "malformed";
    case SRV_AUTH_DENIED:
        return "denied";
    }
    return "unknown";
}

size_t srv_auth_challenge(srv_auth_result_t r, const char *realm, char *buf, size_t size)
{
    const char *err = NULL;
    if (r == SRV_AUTH_MALFORMED) {
        err = "invalid_request";
    } else if (r == SRV_AUTH_DENIED) {
        err = "invalid_token";
    }
    int n;
    if (err != NULL) {
        n = snprintf(buf, size, "Bearer realm=\"%s\", error=\"%s\"", realm, err);
    } else {
        n = snprintf(buf, size, "Bearer realm=\"%s\"", realm);
    }
    return n < 0 ? 0 : (size_t)n;
}

int srv_auth_slot_create(srv_auth_set_t *initial, srv_auth_slot_t **out)
{
    srv_auth_slot_t *slot = mem_calloc(1, sizeof(*slot));
    if (slot == NULL) {
        srv_auth_set_unref(initial);
        return -ENOMEM;
    }
    pthread_mutex_init(&slot->mu, NULL);
    slot->set = initial;
    atomic_init(&slot->gen, 0);
    *out = slot;
    return 0;
}

void srv_auth_slot_destroy(srv_auth_slot_t *slot)
{
    if (slot == NULL) {
        return;
    }
    srv_auth_set_unref(slot->set);
    pthread_mutex_destroy(&slot->mu);
    mem_free(slot);
}

void srv_auth_slot_publish(srv_auth_slot_t *slot, srv_auth_set_t *set)
{
    pthread_mutex_lock(&slot->mu);
    srv_auth_set_t *old = slot->set;
    slot->set = set;
    atomic_store_explicit(&slot->gen, atomic_load_explicit(&slot->gen, memory_order_relaxed) + 1,
                          memory_order_release);
    pthread_mutex_unlock(&slot->mu);
    srv_auth_set_unref(old);
}

srv_auth_set_t *srv_auth_slot_get(srv_auth_slot_t *slot)
{
    pthread_mutex_lock(&slot->mu);
    srv_auth_set_t *set = srv_auth_set_ref(slot->set);
    pthread_mutex_unlock(&slot->mu);
    return set;
}

uint64_t srv_auth_slot_generation(const srv_auth_slot_t *slot)
{
    return atomic_load_explicit(&slot->gen, memory_order_acquire);
}

void srv_auth_reader_init(srv_auth_reader_t *r)
{
    r->set = NULL;
    r->gen = UINT64_MAX;
}

const srv_auth_set_t *srv_auth_reader_current(srv_auth_reader_t *r, srv_auth_slot_t *slot)
{
    if (atomic_load_explicit(&slot->gen, memory_order_acquire) != r->gen) {
        pthread_mutex_lock(&slot->mu);
        srv_auth_set_t *set = srv_auth_set_ref(slot->set);
        uint64_t gen = atomic_load_explicit(&slot->gen, memory_order_relaxed);
        pthread_mutex_unlock(&slot->mu);
        srv_auth_set_unref(r->set);
        r->set = set;
        r->gen = gen;
    }
    return r->set;
}

void srv_auth_reader_close(srv_auth_reader_t *r)
{
    srv_auth_set_unref(r->set);
    r->set = NULL;
    r->gen = UINT64_MAX;
}
