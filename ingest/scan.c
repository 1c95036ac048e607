/* ingest/scan.c - the validating JSON scanner: jansson 2.14's verdict in one pass (see scan.h
 * for every rule it reproduces). One core, inlined twice: with SSE2 and with 64-bit words. */
#include "ingest/scan.h"

#include <stdint.h>
#include <string.h>

#include "ingest/scan_internal.h"

#if ING_SCAN_HAVE_SSE2
#include <emmintrin.h>
#endif

#define ALWAYS_INLINE inline __attribute__((always_inline))

/* 2^1024 - 2^970, the least magnitude strtod rounds to infinity (rule 5): 309 digits. */
static const char overflow_digits[] =
    "17976931348623158079372897140530341507993413271003782693617377898044496829276475094664901797"
    "75872070963302864166928879109465555478519404026306574886715058206819089020007083836762738548"
    "45817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711"
    "559699508093042880177904174497792";

#define OVERFLOW_EXP10 309 /* 10^308 <= 2^1024 - 2^970 < 10^309 */

typedef struct {
    const char *start; /* the first byte of the input */
    const char *end;   /* one past its last byte */
    const char *err;   /* where an error was found */
    const char *reason;
    int element; /* ing_scan_element: the end of input means "need more" */
    int more;    /* the input ended inside the value */
} scan_t;

static const char *fail_at(scan_t *s, const char *p, const char *reason)
{
    s->err = p;
    s->reason = reason;
    return NULL;
}

static const char *need_more(scan_t *s)
{
    s->more = 1;
    return NULL;
}

static int is_digit(char c)
{
    return (unsigned char)(c - '0') < 10;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static int is_alpha(char c)
{
    return (unsigned char)((c | 0x20) - 'a') < 26;
}

/* A string byte that needs no attention: printable ASCII other than '"' and '\\'. */
static int is_plain(char c)
{
    unsigned char u = (unsigned char)c;
    return u >= 0x20 && u < 0x80 && u != '"' && u != '\\';
}

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Nonzero iff one of the 8 bytes of x is not plain (exact as a truth value: the borrow tricks
 * only over-report above a byte that really matches). */
static uint64_t swar_special(uint64_t x)
{
    uint64_t q = x ^ (ONES * '"');
    uint64_t b = x ^ (ONES * '\\');
    return (((q - ONES) & ~q) | ((b - ONES) & ~b) | ((x - ONES * 0x20) & ~x) | x) & HIGHS;
}

/* Nonzero iff all 8 bytes of x are ASCII digits. */
static int swar_all_digits(uint64_t x)
{
    return (x & (ONES * 0xF0)) == ONES * 0x30 && ((x + ONES * 0x06) & (ONES * 0xF0)) == ONES * 0x30;
}

static uint64_t load64(const char *p)
{
    uint64_t x;
    memcpy(&x, p, sizeof(x));
    return x;
}

#if ING_SCAN_HAVE_SSE2
static __m128i load128(const char *p)
{
    return _mm_loadu_si128((const __m128i *)(const void *)p);
}

/* Bit i set iff byte i of v is '"', '\\', below 0x20 or 0x80 and above (signed compare). */
static unsigned sse_special(__m128i v)
{
    __m128i q = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
    __m128i b = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
    __m128i c = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(q, b), c));
}
#endif

/* The first byte in [p, end) that is not plain, or end. lo: the input's first byte (SSE2 may
 * load the last 16 bytes of the input when fewer than 16 are left). */
static ALWAYS_INLINE const char *find_special(const char *lo, const char *p, const char *end,
                                              int simd)
{
#if ING_SCAN_HAVE_SSE2
    if (simd) {
        while (end - p >= 16) {
            unsigned bits = sse_special(load128(p));
            if (bits != 0) {
                return p + __builtin_ctz(bits);
            }
            p += 16;
        }
        if (end - lo >= 16) {
            unsigned bits = sse_special(load128(end - 16)) >> (16 - (end - p));
            return bits != 0 ? p + __builtin_ctz(bits) : end;
        }
    }
#endif
    if (!simd) {
        while (end - p >= 8 && swar_special(load64(p)) == 0) {
            p += 8;
        }
    }
    while (p < end && is_plain(*p)) {
        p++;
    }
    return p;
}

static ALWAYS_INLINE const char *skip_ws(const char *p, const char *end, int simd)
{
    if (p == end || (unsigned char)*p > ' ') {
        return p;
    }
#if ING_SCAN_HAVE_SSE2
    if (simd) {
        while (end - p >= 16) {
            __m128i v = load128(p);
            __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')),
                                                  _mm_cmpeq_epi8(v, _mm_set1_epi8('\n'))),
                                     _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\r')),
                                                  _mm_cmpeq_epi8(v, _mm_set1_epi8('\t'))));
            unsigned bits = (unsigned)_mm_movemask_epi8(m) ^ 0xFFFFu;
            if (bits != 0) {
                return p + __builtin_ctz(bits);
            }
            p += 16;
        }
    }
#endif
    while (p < end && is_ws(*p)) {
        p++;
    }
    return p;
}

static ALWAYS_INLINE const char *skip_digits(const char *p, const char *end, int simd)
{
#if ING_SCAN_HAVE_SSE2
    if (simd) {
        while (end - p >= 16) {
            __m128i v = load128(p);
            __m128i m = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                      _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
            unsigned bits = (unsigned)_mm_movemask_epi8(m) ^ 0xFFFFu;
            if (bits != 0) {
                return p + __builtin_ctz(bits);
            }
            p += 16;
        }
    }
#endif
    if (!simd) {
        while (end - p >= 8 && swar_all_digits(load64(p))) {
            p += 8;
        }
    }
    while (p < end && is_digit(*p)) {
        p++;
    }
    return p;
}

static int hex_value(char c)
{
    if (is_digit(c)) {
        return c - '0';
    }
    if ((unsigned char)((c | 0x20) - 'a') < 6) {
        return (c | 0x20) - 'a' + 10;
    }
    return -1;
}

/* The 4 hex digits at p as a code unit; -1 (error set) or -2 (need more) otherwise. */
static int32_t hex4(scan_t *s, const char *p)
{
    int32_t v = 0;

    for (int i = 0; i < 4; i++) {
        if (p + i == s->end) {
            need_more(s);
            return -2;
        }
        int h = hex_value(p[i]);
        if (h < 0) {
            fail_at(s, p + i, "invalid \\u escape");
            return -1;
        }
        v = v * 16 + h;
    }
    return v;
}

/* p at '\\' inside a string: validates one escape (a surrogate pair is one) and returns the
 * byte after it, or NULL (error or need more). Rules 10 and 11. */
static const char *scan_escape(scan_t *s, const char *p, int is_key)
{
    if (s->end - p < 2) {
        return need_more(s);
    }
    switch (p[1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        return p + 2;
    case 'u':
        break;
    default:
        return fail_at(s, p, "invalid escape");
    }
    int32_t u = hex4(s, p + 2);
    if (u < 0) {
        return NULL;
    }
    if (u >= 0xD800 && u <= 0xDBFF) {
        const char *q = p + 6;
        if (q == s->end || (q[0] == '\\' && q + 1 == s->end)) {
            return need_more(s);
        }
        if (q[0] != '\\' || q[1] != 'u') {
            return fail_at(s, p, "lone surrogate escape");
        }
        int32_t lo = hex4(s, q + 2);
        if (lo < 0) {
            return NULL;
        }
        if (lo < 0xDC00 || lo > 0xDFFF) {
            return fail_at(s, p, "invalid surrogate pair");
        }
        return p + 12;
    }
    if (u >= 0xDC00 && u <= 0xDFFF) {
        return fail_at(s, p, "lone surrogate escape");
    }
    if (u == 0 && is_key) {
        return fail_at(s, p, "NUL byte in object key");
    }
    return p + 6;
}

/* p at a byte >= 0x80 inside a string: validates one UTF-8 sequence as jansson's
 * utf8_check_first/utf8_check_full do (rule 12) and returns the byte after it. */
static const char *scan_utf8(scan_t *s, const char *p)
{
    unsigned c = (unsigned char)p[0];
    unsigned lo = 0x80, hi = 0xBF;
    ptrdiff_t n;

    if (c < 0xC2) {
        return fail_at(s, p, "invalid UTF-8");
    } else if (c < 0xE0) {
        n = 2;
    } else if (c < 0xF0) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : lo; /* overlong */
        hi = c == 0xED ? 0x9F : hi; /* encoded surrogate */
    } else if (c < 0xF5) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : lo; /* overlong */
        hi = c == 0xF4 ? 0x8F : hi; /* above U+10FFFF */
    } else {
        return fail_at(s, p, "invalid UTF-8");
    }
    for (ptrdiff_t i = 1; i < n; i++) {
        if (p + i == s->end) {
            return need_more(s);
        }
        unsigned b = (unsigned char)p[i];
        if (b < lo || b > hi) {
            return fail_at(s, p, "invalid UTF-8");
        }
        lo = 0x80;
        hi = 0xBF;
    }
    return p + n;
}

/* p just after the opening '"': returns the closing '"', or NULL. *escaped is set when the
 * string has an escape. */
static ALWAYS_INLINE const char *scan_string(scan_t *s, const char *p, int is_key, int *escaped,
                                             int simd)
{
    for (;;) {
        p = find_special(s->start, p, s->end, simd);
        if (p == s->end) {
            return need_more(s);
        }
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            return p;
        }
        if (c == '\\') {
            *escaped = 1;
            p = scan_escape(s, p, is_key);
        } else if (c < 0x20) {
            return fail_at(s, p, "control character in string");
        } else {
            p = scan_utf8(s, p);
        }
        if (p == NULL) {
            return NULL;
        }
    }
}

static size_t put_utf8(char *buf, size_t cap, size_t n, uint32_t cp)
{
    char tmp[4];
    size_t k;

    if (cp < 0x80) {
        tmp[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        tmp[0] = (char)(0xC0 | (cp >> 6));
        tmp[1] = (char)(0x80 | (cp & 0x3F));
        k = 2;
    } else if (cp < 0x10000) {
        tmp[0] = (char)(0xE0 | (cp >> 12));
        tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        tmp[2] = (char)(0x80 | (cp & 0x3F));
        k = 3;
    } else {
        tmp[0] = (char)(0xF0 | (cp >> 18));
        tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        tmp[3] = (char)(0x80 | (cp & 0x3F));
        k = 4;
    }
    for (size_t i = 0; i < k; i++) {
        if (n + i < cap) {
            buf[n + i] = tmp[i];
        }
    }
    return n + k;
}

static uint32_t hex4_valid(const char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        v = v * 16 + (uint32_t)hex_value(p[i]);
    }
    return v;
}

/* Decodes the already validated string content [p, e) into buf (at most cap bytes written) and
 * returns its whole decoded length; *nul is set when it holds a NUL byte. */
static size_t decode_string(const char *p, const char *e, char *buf, size_t cap, int *nul)
{
    size_t n = 0;

    *nul = 0;
    while (p < e) {
        if (*p != '\\') {
            if (n < cap) {
                buf[n] = *p;
            }
            n++;
            p++;
            continue;
        }
        char c = p[1];
        if (c != 'u') {
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            c = to[strchr(from, c) - from];
            if (n < cap) {
                buf[n] = c;
            }
            n++;
            p += 2;
            continue;
        }
        uint32_t cp = hex4_valid(p + 2);
        p += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4_valid(p + 2) - 0xDC00);
            p += 6;
        }
        *nul |= cp == 0;
        n = put_utf8(buf, cap, n, cp);
    }
    return n;
}

/* Rule 5: does the validated number with these parts round to infinity? int_start..int_end
 * are the integer digits, frac_start..frac_end the fraction digits (empty when none),
 * exp..exp_end the exponent with its sign (exp NULL when none). Exact, without strtod. */
static int real_overflows(const char *int_start, const char *int_end, const char *frac_start,
                          const char *frac_end, const char *exp, const char *exp_end)
{
    const char *d, *d_end;
    int64_t e10;
    int in_int;

    if (*int_start != '0') {
        d = int_start;
        d_end = int_end;
        e10 = int_end - int_start;
        in_int = 1;
    } else {
        d = frac_start;
        while (d < frac_end && *d == '0') {
            d++;
        }
        if (d == frac_end) {
            return 0; /* zero, whatever the exponent */
        }
        e10 = -(int64_t)(d - frac_start);
        d_end = frac_end;
        in_int = 0;
    }
    if (exp != NULL) {
        int neg = *exp == '-';
        int64_t x = 0;
        exp += *exp == '-' || *exp == '+';
        for (; exp < exp_end && x < 1000000000000000; exp++) {
            x = x * 10 + (*exp - '0');
        }
        e10 += neg ? -x : x;
    }
    /* |x| = 0.d1d2... * 10^e10 */
    if (e10 != OVERFLOW_EXP10) {
        return e10 > OVERFLOW_EXP10;
    }
    for (int i = 0; i < OVERFLOW_EXP10; i++) {
        if (d == d_end && in_int) {
            d = frac_start;
            d_end = frac_end;
            in_int = 0;
        }
        char c = d < d_end ? *d++ : '0';
        if (c != overflow_digits[i]) {
            return c > overflow_digits[i];
        }
    }
    return 1; /* the exact halfway point rounds up */
}

/* p at '-' or a digit: returns the byte after the number (rules 4, 5). */
static ALWAYS_INLINE const char *scan_number(scan_t *s, const char *p, int simd)
{
    const char *end = s->end;
    const char *num = p;

    if (*p == '-') {
        p++;
        if (p == end) {
            return need_more(s);
        }
    }
    const char *int_start = p;
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p)) {
            return fail_at(s, num, "leading zero in number");
        }
    } else if (is_digit(*p)) {
        p = skip_digits(p + 1, end, simd);
    } else {
        return fail_at(s, num, "invalid number");
    }
    const char *int_end = p, *frac_start = p, *frac_end = p, *exp = NULL;
    if (p < end && *p == '.') {
        p++;
        if (p == end) {
            return need_more(s);
        }
        if (!is_digit(*p)) {
            return fail_at(s, num, "invalid number");
        }
        frac_start = p;
        p = skip_digits(p + 1, end, simd);
        frac_end = p;
    }
    if (p < end && (*p | 0x20) == 'e') {
        p++;
        exp = p;
        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }
        if (p == end) {
            return need_more(s);
        }
        if (!is_digit(*p)) {
            return fail_at(s, num, "invalid number");
        }
        p = skip_digits(p + 1, end, simd);
    }
    if (p == end && s->element) {
        return need_more(s);
    }
    if ((exp != NULL || int_end - int_start > OVERFLOW_EXP10 - 1) &&
        real_overflows(int_start, int_end, frac_start, frac_end, exp, p)) {
        return fail_at(s, num, "number overflows a double");
    }
    return p;
}

/* p at the first letter of an expected literal word[0..n): rule 3. */
static ALWAYS_INLINE const char *scan_literal(scan_t *s, const char *p, const char *word, size_t n)
{
    size_t avail = (size_t)(s->end - p);

    if (avail >= n && memcmp(p, word, n) == 0) {
        p += n;
        if (p == s->end) {
            return s->element ? need_more(s) : p;
        }
        if (is_alpha(*p)) {
            return fail_at(s, p - n, "invalid literal");
        }
        return p;
    }
    if (s->element && avail < n && memcmp(p, word, avail) == 0) {
        return need_more(s);
    }
    return fail_at(s, p, "invalid literal");
}

enum { TYPE_NONE, TYPE_OK, TYPE_BAD };

/* Skips whitespace; jumps to eoi when the input ends. */
#define SKIP_WS_OR_EOI()                                                                           \
    do {                                                                                           \
        p = skip_ws(p, end, simd);                                                                 \
        if (p == end) {                                                                            \
            goto eoi;                                                                              \
        }                                                                                          \
    } while (0)

/* Pushes a level; a word of the stack is written whole when its first level is pushed. */
#define PUSH(is_obj)                                                                               \
    do {                                                                                           \
        uint64_t bit_ = (uint64_t)1 << (depth & 63);                                               \
        uint64_t word_ = (depth & 63) != 0 ? stack[depth >> 6] & ~bit_ : 0;                        \
        stack[depth >> 6] = (is_obj) ? word_ | bit_ : word_;                                       \
        depth++;                                                                                   \
        in_object = is_obj;                                                                        \
    } while (0)

/* The state machine. Labels: open_object/open_array just after '{'/'[', value at the first
 * byte of a value inside a container, after just after one, close just after '}'/']', key at
 * the '"' of a member name. Nesting (rule 6) is checked once per container: a container at
 * depth ING_SCAN_MAX_DEPTH must be empty. */
static ALWAYS_INLINE int scan_core(const char *line, size_t len, int element, size_t *consumed,
                                   ing_scan_result_t *out, int simd)
{
    scan_t s = {line, line + len, NULL, NULL, element, 0};
    const char *p = line, *end = line + len, *q;
    uint64_t stack[ING_SCAN_MAX_DEPTH / 64]; /* bit set: an object at that level */
    unsigned depth = 0;                      /* open containers */
    int in_object = 0, root_object = 0, type_state = TYPE_NONE, esc;
    const char *type = NULL, *type_at = NULL, *reason;
    const char *type_reason = "no \"type\" member";
    size_t type_len = 0;
    char c;

    SKIP_WS_OR_EOI();
    switch (*p) {
    case '{':
        root_object = 1;
        PUSH(1);
        p++;
        goto open_object;
    case '[':
        PUSH(0);
        p++;
        goto open_array;
    case '"':
        esc = 0;
        q = scan_string(&s, p + 1, 0, &esc, simd);
        if (q == NULL) {
            goto failed;
        }
        p = q + 1;
        goto done;
    default:
        goto value;
    }

open_object:
    SKIP_WS_OR_EOI();
    if (*p == '}') {
        p++;
        goto close;
    }
    if (depth == ING_SCAN_MAX_DEPTH) {
        reason = "maximum nesting depth reached";
        goto fail;
    }
    goto key;

open_array:
    SKIP_WS_OR_EOI();
    if (*p == ']') {
        p++;
        goto close;
    }
    if (depth == ING_SCAN_MAX_DEPTH) {
        reason = "maximum nesting depth reached";
        goto fail;
    }
    /* fall through to value */

value:
    switch (*p) {
    case '"':
        esc = 0;
        q = scan_string(&s, p + 1, 0, &esc, simd);
        if (q == NULL) {
            goto failed;
        }
        p = q + 1;
        goto after;
    case '{':
        PUSH(1);
        p++;
        goto open_object;
    case '[':
        PUSH(0);
        p++;
        goto open_array;
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        p = scan_number(&s, p, simd);
        break;
    case 't':
        p = scan_literal(&s, p, "true", 4);
        break;
    case 'f':
        p = scan_literal(&s, p, "false", 5);
        break;
    case 'n':
        p = scan_literal(&s, p, "null", 4);
        break;
    default:
        reason = "invalid token";
        goto fail;
    }
    /* a number or literal: rule 14 */
    if (p == NULL) {
        goto failed;
    }
    if (p < end && *p == '\0') {
        p++;
    }
    if (depth == 0) {
        goto done;
    }
    goto after;

close:
    depth--;
    if (depth == 0) {
        goto done;
    }
    in_object = (int)(stack[(depth - 1) >> 6] >> ((depth - 1) & 63)) & 1;

after:
    if (p == end) {
        goto eoi;
    }
    c = *p;
    if ((unsigned char)c <= ' ') {
        SKIP_WS_OR_EOI();
        c = *p;
    }
    if (c == ',') {
        p++;
        SKIP_WS_OR_EOI();
        if (in_object) {
            goto key;
        }
        goto value;
    }
    if (c == (in_object ? '}' : ']')) {
        p++;
        goto close;
    }
    reason = in_object ? "',' or '}' expected" : "',' or ']' expected";
    goto fail;

key:
    if (*p != '"') {
        reason = "string or '}' expected";
        goto fail;
    }
    esc = 0;
    q = scan_string(&s, p + 1, 1, &esc, simd);
    if (q == NULL) {
        goto failed;
    }
    int is_type = 0;
    if (depth == 1) {
        const char *k = p + 1;
        if (!esc) {
            is_type = q - k == 4 && memcmp(k, "type", 4) == 0;
        } else {
            char kb[5];
            int nul;
            is_type = decode_string(k, q, kb, sizeof(kb), &nul) == 4 && memcmp(kb, "type", 4) == 0;
        }
    }
    p = q + 1;
    if (p == end || *p != ':') {
        SKIP_WS_OR_EOI();
        if (*p != ':') {
            reason = "':' expected";
            goto fail;
        }
    }
    p++;
    SKIP_WS_OR_EOI();
    if (!is_type) {
        goto value;
    }
    /* the value of a top-level "type" member: the last one decides (rules 8, 13) */
    type_at = p;
    if (*p != '"') {
        type_state = TYPE_BAD;
        type_reason = "\"type\" is not a string";
        goto value;
    }
    esc = 0;
    q = scan_string(&s, p + 1, 0, &esc, simd);
    if (q == NULL) {
        goto failed;
    }
    {
        const char *t = p + 1;
        size_t n = (size_t)(q - t);
        int nul = 0;
        if (esc) {
            n = decode_string(t, q, out->buf, ING_TYPE_MAX, &nul);
            t = out->buf;
        }
        type_state = TYPE_BAD;
        if (nul) {
            type_reason = "\"type\" contains a NUL byte";
        } else if (n == 0) {
            type_reason = "\"type\" is empty";
        } else if (n > ING_TYPE_MAX) {
            type_reason = "\"type\" is longer than 128 bytes";
        } else {
            type_state = TYPE_OK;
            type = t;
            type_len = n;
        }
    }
    p = q + 1;
    goto after;

done:
    if (element) {
        *consumed = (size_t)(p - line);
    } else {
        p = skip_ws(p, end, simd);
        if (p != end) {
            reason = "end of input expected";
            goto fail;
        }
    }
    if (!root_object) {
        out->offset = 0;
        out->reason = "not an object";
        return ING_REJECT_NOT_OBJECT;
    }
    if (type_state != TYPE_OK) {
        out->offset = type_at != NULL ? (size_t)(type_at - line) : (size_t)(p - line);
        out->reason = type_reason;
        return ING_REJECT_NO_TYPE;
    }
    out->type = type;
    out->type_len = type_len;
    out->offset = 0;
    out->reason = NULL;
    return ING_ACCEPTED;

failed:
    if (s.more) {
        goto eoi;
    }
    p = s.err;
    reason = s.reason;
    goto fail;
eoi:
    if (element) {
        *consumed = 0;
        return ING_SCAN_NEED_MORE;
    }
    p = end;
    reason = "premature end of input";
fail:
    out->offset = (size_t)(p - line);
    out->reason = reason;
    if (element) {
        *consumed = out->offset;
    }
    return ING_REJECT_PARSE;
}

__attribute__((noinline)) static int scan_portable(const char *p, size_t len, int element,
                                                   size_t *consumed, ing_scan_result_t *out)
{
    return scan_core(p, len, element, consumed, out, 0);
}

#if ING_SCAN_HAVE_SSE2
__attribute__((noinline)) static int scan_sse2(const char *p, size_t len, int element,
                                               size_t *consumed, ing_scan_result_t *out)
{
    return scan_core(p, len, element, consumed, out, 1);
}
#define scan_best scan_sse2
#else
#define scan_best scan_portable
#endif

ing_verdict_t ing_scan_line(const char *line, size_t len, ing_scan_result_t *out)
{
    return (ing_verdict_t)scan_best(line, len, 0, NULL, out);
}

int ing_scan_element(const char *p, size_t len, size_t *consumed, ing_scan_result_t *out)
{
    return scan_best(p, len, 1, consumed, out);
}

ing_verdict_t ing_scan_line_path(const char *line, size_t len, ing_scan_result_t *out,
                                 ing_scan_path_t path)
{
    if (path == ING_SCAN_PATH_PORTABLE) {
        return (ing_verdict_t)scan_portable(line, len, 0, NULL, out);
    }
    return ing_scan_line(line, len, out);
}

int ing_scan_element_path(const char *p, size_t len, size_t *consumed, ing_scan_result_t *out,
                          ing_scan_path_t path)
{
    if (path == ING_SCAN_PATH_PORTABLE) {
        return scan_portable(p, len, 1, consumed, out);
    }
    return ing_scan_element(p, len, consumed, out);
}
