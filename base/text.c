/* base/text.c - UTF-8 validation and JSON string escaping (see text.h). */
#include "base/text.h"

#include <string.h>

size_t base_utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t need;

    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80; /* E0 80..9F would be overlong */
        hi = c == 0xED ? 0x9F : 0xBF; /* ED A0..BF would be a surrogate */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        lo = c == 0xF0 ? 0x90 : 0x80; /* F0 80..8F would be overlong */
        hi = c == 0xF4 ? 0x8F : 0xBF; /* F4 90.. would pass U+10FFFF */
    } else {
        return 0; /* continuation byte, C0/C1 (overlong) or F5..FF */
    }
    if (n < need || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
    }
    return need;
}

int base_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = base_utf8_len(p + i, n - i);
        if (k == 0) {
            return 0;
        }
        i += k;
    }
    return 1;
}

size_t base_json_escape_unit(const char *s, size_t n, size_t *used, char out[BASE_JSON_UNIT_MAX])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c = (unsigned char)s[0];

    *used = 1;
    switch (c) {
    case '"':
    case '\\':
        out[0] = '\\';
        out[1] = (char)c;
        return 2;
    case '\n':
        memcpy(out, "\\n", 2);
        return 2;
    case '\r':
        memcpy(out, "\\r", 2);
        return 2;
    case '\t':
        memcpy(out, "\\t", 2);
        return 2;
    default:
        break;
    }
    if (c < 0x20 || c == 0x7f) {
        memcpy(out, "\\u00", 4);
        out[4] = hex[c >> 4];
        out[5] = hex[c & 15];
        return 6;
    }
    size_t k = base_utf8_len((const unsigned char *)s, n);
    if (k == 0) {
        memcpy(out, "\\ufffd", 6);
        return 6;
    }
    memcpy(out, s, k);
    *used = k;
    return k;
}

size_t base_json_escape(char *dst, size_t cap, const char *src, size_t len)
{
    size_t o = 0;

    while (len > 0) {
        char unit[BASE_JSON_UNIT_MAX];
        size_t used;
        size_t k = base_json_escape_unit(src, len, &used, unit);
        if (k > cap - o) {
            break;
        }
        memcpy(dst + o, unit, k);
        o += k;
        src += used;
        len -= used;
    }
    return o;
}
