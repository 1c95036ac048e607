/* json_gen.c - deterministic JSON event generator for unit.scan and fuzz.scan. */
#include "json_gen.h"

#include <stdio.h>
#include <string.h>

uint64_t jg_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static unsigned below(jg_t *g, unsigned n)
{
    return (unsigned)(jg_next(&g->rng) % n);
}

static void put(jg_t *g, const char *s, size_t n)
{
    for (size_t i = 0; i < n && g->len < g->cap; i++) {
        g->buf[g->len++] = s[i];
    }
}

static void puts_(jg_t *g, const char *s)
{
    put(g, s, strlen(s));
}

static void ws(jg_t *g, int loose)
{
    static const char *const runs[] = {
        " ", "\n", "\t", "\r\n", "  ", "\n        ", "                                     \t"};
    if (loose && below(g, 4) == 0) {
        puts_(g, runs[below(g, sizeof(runs) / sizeof(runs[0]))]);
    }
}

static const char *const fragments[] = {
    "\\u0000",
    "\\uD800",
    "\\uDC00",
    "\\uD83D\\uDE00",
    "\\uDE00\\uD83D",
    "\\uD800\\u0041",
    "\\u00e9",
    "\\u00E9",
    "\\ud7ff",
    "\\uFFFF",
    "\\x",
    "\\",
    "\xc3\xa9",
    "\xe2\x82\xac",
    "\xf0\x9f\x98\x80",
    "\xed\xa0\x80",
    "\xc0\x80",
    "\xe0\x80\x80",
    "\xf0\x80\x80\x80",
    "\xf4\x90\x80\x80",
    "\xf5",
    "\x80",
    "\xff",
    "\x1f",
    "\x7f",
    "1e309",
    "-1e309",
    "1e308",
    "1.7976931348623157e308",
    "1.7976931348623158e308",
    "1.79769313486231580793728971405303415079934132710037826936173778980444968e308",
    "1.79769313486231580793728971405303415079934132710037826936173778980444967e308",
    "0.0000179769313486231580793728971405e313",
    "1e-400",
    "0e99999999999999999999",
    "18446744073709551615",
    "-9223372036854775809",
    "01",
    "-",
    "1.",
    ".5",
    "1e",
    "1e+",
    "-0",
    "1E+2",
    "true",
    "false",
    "null",
    "tru",
    "nul",
    "truex",
    "\f",
    "\v",
    " ",
    ",",
    ":",
    "[",
    "]",
    "{",
    "}",
    "\"",
    "\"type\"",
    "\"t\\u0079pe\"",
    "\"type\":\"x\"",
    "\"type\":1",
    "\"type\":\"\"",
    "\"type\":\"\\u0000\"",
};

const char *jg_fragment(uint64_t pick, size_t *len)
{
    size_t n = sizeof(fragments) / sizeof(fragments[0]);
    if (pick % (n + 1) == n) {
        *len = 1;
        return "\0"; /* a raw NUL byte */
    }
    *len = strlen(fragments[pick % (n + 1)]);
    return fragments[pick % (n + 1)];
}

static void string_body(jg_t *g, unsigned maxlen, int fancy)
{
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyz_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "
                                "/.:;-+()!?#$%&'*<=>@[]^`{|}~";
    static const char *const esc[] = {"\\n",
                                      "\\t",
                                      "\\\"",
                                      "\\\\",
                                      "\\/",
                                      "\\b",
                                      "\\f",
                                      "\\r",
                                      "\\u00e9",
                                      "\\u20AC",
                                      "\\uD83D\\uDE00",
                                      "\\u0041",
                                      "\xc3\xa9",
                                      "\xe2\x82\xac",
                                      "\xf0\x9f\x98\x80",
                                      "\xe6\x97\xa5\xe6\x9c\xac",
                                      "\x7f",
                                      "\\u0000"};
    unsigned n = below(g, maxlen + 1);
    for (unsigned i = 0; i < n; i++) {
        if (fancy && below(g, 8) == 0) {
            unsigned k = below(g, sizeof(esc) / sizeof(esc[0]));
            if (k == sizeof(esc) / sizeof(esc[0]) - 1 && below(g, 4) != 0) {
                k = 0; /* keep \u0000 rare: it makes keys parse errors */
            }
            puts_(g, esc[k]);
        } else {
            char c = alpha[below(g, sizeof(alpha) - 1)];
            put(g, &c, 1);
        }
    }
}

static void number(jg_t *g)
{
    char tmp[64];
    switch (below(g, 8)) {
    case 0:
        snprintf(tmp, sizeof(tmp), "%u", below(g, 100000));
        break;
    case 1:
        snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)jg_next(&g->rng));
        break;
    case 2:
        snprintf(tmp, sizeof(tmp), "-%u.%02u", below(g, 1000), below(g, 100));
        break;
    case 3:
        snprintf(tmp, sizeof(tmp), "%u.%ue%s%u", below(g, 10), below(g, 1000),
                 below(g, 2) ? "-" : "+", below(g, 400));
        break;
    case 4:
        snprintf(tmp, sizeof(tmp), "%uE%u", 1 + below(g, 9), 300 + below(g, 12));
        break;
    case 5:
        snprintf(tmp, sizeof(tmp), "0.%03u%uE3%02u", below(g, 1000), below(g, 1000000),
                 below(g, 15));
        break;
    case 6:
        snprintf(tmp, sizeof(tmp), "-0");
        break;
    default:
        snprintf(tmp, sizeof(tmp), "1700000000%03u", below(g, 1000));
        break;
    }
    puts_(g, tmp);
}

static void value(jg_t *g, unsigned depth, int loose, unsigned budget);

static void member(jg_t *g, unsigned depth, int loose, unsigned budget)
{
    ws(g, loose);
    put(g, "\"", 1);
    string_body(g, 10, loose);
    put(g, "\"", 1);
    ws(g, loose);
    put(g, ":", 1);
    ws(g, loose);
    value(g, depth + 1, loose, budget);
    ws(g, loose);
}

static void value(jg_t *g, unsigned depth, int loose, unsigned budget)
{
    unsigned kind = below(g, depth < 6 && budget > 0 ? 9 : 6);
    switch (kind) {
    case 0:
    case 1:
        put(g, "\"", 1);
        string_body(g, 40, 1);
        put(g, "\"", 1);
        break;
    case 2:
    case 3:
        number(g);
        break;
    case 4:
        puts_(g, below(g, 2) ? "true" : "false");
        break;
    case 5:
        puts_(g, "null");
        break;
    case 6:
    case 7: {
        put(g, "[", 1);
        unsigned n = below(g, 5);
        for (unsigned i = 0; i < n; i++) {
            ws(g, loose);
            value(g, depth + 1, loose, budget / 2);
            ws(g, loose);
            if (i + 1 < n) {
                put(g, ",", 1);
            }
        }
        put(g, "]", 1);
        break;
    }
    default: {
        put(g, "{", 1);
        unsigned n = below(g, 5);
        for (unsigned i = 0; i < n; i++) {
            member(g, depth, loose, budget / 2);
            if (i + 1 < n) {
                put(g, ",", 1);
            }
        }
        put(g, "}", 1);
        break;
    }
    }
}

static void type_member(jg_t *g)
{
    static const char *const keys[] = {
        "\"type\"", "\"type\"", "\"type\"", "\"t\\u0079pe\"", "\"\\u0074\\u0079\\u0070\\u0065\"",
        "\"Type\"", "\"type \""};
    static const char *const vals[] = {
        "\"page_view\"",
        "\"click\"",
        "\"purchase\"",
        "\"sign\\u0075p\"",
        "\"caf\\u00e9\"",
        "\"\\uD83D\\uDE00\"",
        "\"\xe6\x97\xa5\xe6\x9c\xac\"",
        "\"\"",
        "\"a\\u0000b\"",
        "1",
        "null",
        "[\"click\"]",
        "{\"type\":\"inner\"}",
        "\"\\\"quoted\\\"\"",
    };
    unsigned k = below(g, 10);
    puts_(g, keys[k < 7 ? k : 0]);
    put(g, ":", 1);
    unsigned v = below(g, 24);
    if (v < (unsigned)(sizeof(vals) / sizeof(vals[0]))) {
        puts_(g, vals[v]);
    } else if (v < 20) {
        puts_(g, vals[v % 3]);
    } else {
        /* around the 128-byte limit, sometimes with escapes counted after decoding */
        unsigned n = 120 + below(g, 16);
        put(g, "\"", 1);
        for (unsigned i = 0; i < n; i++) {
            if (v == 23 && i % 10 == 0) {
                puts_(g, "\\u0041");
            } else {
                put(g, "x", 1);
            }
        }
        put(g, "\"", 1);
    }
}

/* The loadgen-like body: 11 fields with a nested object and an array. */
static void head(jg_t *g)
{
    char tmp[512];
    snprintf(tmp, sizeof(tmp),
             ",\"ts\":%llu,\"id\":\"%016llx\",\"user\":{\"id\":%u,\"name\":\"user_%06u\","
             "\"plan\":\"pro\"},\"session\":\"%016llx\",\"path\":\"/docs/%u\",\"ref\":"
             "\"https://www.example.com/\",\"ua\":\"Mozilla/5.0 (X11; Linux x86_64) "
             "Firefox/120.0\",\"tags\":[\"web\",\"beta\",\"eu\"],\"duration_ms\":%u,\"ok\":%s",
             1700000000000ULL + jg_next(&g->rng) % 100000000ULL,
             (unsigned long long)jg_next(&g->rng), below(g, 1000000), below(g, 1000000),
             (unsigned long long)jg_next(&g->rng), below(g, 100000), below(g, 60000),
             below(g, 10) ? "true" : "false");
    puts_(g, tmp);
}

static void items(jg_t *g, unsigned n)
{
    char tmp[128];
    puts_(g, ",\"items\":[");
    for (unsigned i = 0; i < n; i++) {
        snprintf(tmp, sizeof(tmp), "%s{\"sku\":\"SKU-%06u\",\"qty\":%u,\"price\":%u.%02u}",
                 i ? "," : "", below(g, 1000000), 1 + below(g, 9), below(g, 500), below(g, 100));
        puts_(g, tmp);
    }
    puts_(g, "]");
}

static void deep(jg_t *g)
{
    unsigned n = 2040 + below(g, 16);
    int obj = below(g, 2);
    for (unsigned i = 0; i < n; i++) {
        puts_(g, obj && i % 2 ? "{\"k\":" : "[");
    }
    if (below(g, 2)) {
        number(g);
    }
    for (unsigned i = n; i-- > 0;) {
        puts_(g, obj && i % 2 ? "}" : "]");
    }
}

static void corrupt_one(jg_t *g)
{
    static const char bytes[] = {'\0',   '"',    '\\',   ',',    ']',    '}', '[', '{', ':', ' ',
                                 '\x1f', '\x80', '\xc3', '\xed', '\xff', 'e', '.', '-', '0', 'u'};
    if (g->len == 0) {
        return;
    }
    size_t at = jg_next(&g->rng) % g->len;
    switch (below(g, 5)) {
    case 0:
        g->buf[at] = bytes[below(g, sizeof(bytes))];
        break;
    case 1:
        memmove(g->buf + at, g->buf + at + 1, g->len - at - 1);
        g->len--;
        break;
    case 2:
        g->len = at;
        break;
    default: {
        size_t n;
        const char *f = jg_fragment(jg_next(&g->rng), &n);
        if (g->len + n <= g->cap) {
            memmove(g->buf + at + n, g->buf + at, g->len - at);
            memcpy(g->buf + at, f, n);
            g->len += n;
        }
        break;
    }
    }
}

void jg_event(jg_t *g, unsigned shape, int corrupt)
{
    g->len = 0;
    if (shape >= 4) {
        int loose = below(g, 2);
        ws(g, loose);
        unsigned r = below(g, 16);
        if (r == 0) {
            deep(g);
        } else if (r < 4) {
            value(g, 0, loose, 64);
        } else {
            put(g, "{", 1);
            unsigned n = 1 + below(g, 6);
            for (unsigned i = 0; i < n; i++) {
                if (i) {
                    put(g, ",", 1);
                }
                if (below(g, 3) == 0) {
                    ws(g, loose);
                    type_member(g);
                    ws(g, loose);
                } else {
                    member(g, 0, loose, 64);
                }
            }
            put(g, "}", 1);
        }
        ws(g, loose);
    } else {
        put(g, "{", 1);
        type_member(g);
        if (shape >= 1) {
            head(g);
        } else {
            puts_(g, ",\"ts\":1700000000123,\"user\":{\"id\":42},\"ok\":true");
        }
        if (shape == 2) {
            items(g, 20 + below(g, 8));
        } else if (shape == 3) {
            items(g, 110 + below(g, 20));
        }
        if (below(g, 4) == 0) {
            put(g, ",", 1);
            type_member(g);
        }
        put(g, "}", 1);
    }
    if (corrupt) {
        corrupt_one(g);
    }
}
