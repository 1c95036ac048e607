/* base/text.h - the one UTF-8 check and the one JSON string escape of the project. */
#ifndef INGESTD_BASE_TEXT_H
#define INGESTD_BASE_TEXT_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence at s (n >= 1 bytes left): 1 to 4, or 0 when the bytes there
 * are not one (RFC 3629: a bad lead byte, a truncated sequence, an overlong form, an encoded
 * surrogate U+D800..U+DFFF, or above U+10FFFF), as Go's utf8.ValidString sees it. Pure. */
size_t base_utf8_len(const unsigned char *s, size_t n);

/* 1 when the n bytes at s are valid UTF-8 throughout (n == 0 included), else 0. Pure. */
int base_utf8_valid(const char *s, size_t n);

/* Bytes one escaped unit can take (a \u00XX escape); the longest output of
 * base_json_escape_unit. */
#define BASE_JSON_UNIT_MAX 6

/* Escapes the next unit of s (n >= 1 bytes left) as the inside of a JSON string: '"' and '\\'
 * with a backslash, \n \r \t short, other control bytes and DEL as \u00XX, a valid UTF-8
 * sequence as itself, and a byte that starts no valid sequence as \ufffd (so the output is
 * always valid UTF-8 JSON). Writes at most BASE_JSON_UNIT_MAX bytes to out (not
 * NUL-terminated), returns their count and sets *used to the input bytes consumed (>= 1). */
size_t base_json_escape_unit(const char *s, size_t n, size_t *used, char out[BASE_JSON_UNIT_MAX]);

/* Escapes src[0..len) as base_json_escape_unit does, unit after unit, into dst while whole units
 * fit in cap bytes (a unit is never cut; the rest of src is dropped). Returns the bytes written
 * (no quotes added, not NUL-terminated). cap >= BASE_JSON_UNIT_MAX * len always holds it all. */
size_t base_json_escape(char *dst, size_t cap, const char *src, size_t len);

#endif
