/* ingest/scan.h - the scanner: judges one JSON event in a single pass without building a tree,
 * allocating nothing and recursing nowhere, with exactly jansson 2.14's verdict.
 *
 * Contract. For every input, ing_scan_line(p, n) gives the same verdict and the same type bytes
 * as: root = json_loadb(p, n, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &err);
 * root NULL -> parse; root not an object -> not_object; json_object_get(root, "type") a string
 * of 1..ING_TYPE_MAX bytes (after escape decoding) without a NUL byte -> accepted with those
 * bytes; otherwise -> no_type. tests/ingest/ proves it per rule and fuzzes it (fuzz.scan).
 *
 * jansson 2.14's grammar and quirks, each reproduced here (src/load.c, src/utf.c, strconv.c;
 * the unclear ones settled by experiment against Debian's libjansson4 2.14-2):
 *  1. Whitespace is exactly ' ', '\t', '\n', '\r'. '\f', '\v' and the rest are invalid tokens.
 *  2. One value, then only whitespace to the end: anything else after it is parse (quirk 14
 *     aside). Empty or all-whitespace input is parse. Any value may be the root
 *     (JSON_DECODE_ANY): a scalar or an array root is not_object.
 *  3. Literals: a run of ASCII letters that is exactly true, false or null; "truex" and "nul"
 *     are parse. A literal followed by a digit or '"' is two tokens, which no grammar position
 *     allows: parse.
 *  4. Numbers: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?. "01", "-", "-01", "+1", ".5",
 *     "1.", "1e", "1e+", "0x1", "Infinity", "NaN" are parse.
 *  5. Number range (JSON_DECODE_INT_AS_REAL: every number, integers too, goes through strtod):
 *     a number whose magnitude rounds to infinity is parse ("real number overflow"), i.e.
 *     |x| >= 2^1024 - 2^970 (the exact halfway point above DBL_MAX rounds up: DBL_MAX's
 *     significand is odd). So uint64 ids and any integer below ~1.8e308 are accepted; 1e309,
 *     -1e309 and a 310-digit integer are parse. Underflow is not an error: 1e-400 and
 *     1e-99999999999999999999 are accepted (strtod's ERANGE with a zero or subnormal result is
 *     ignored), and so is 0e99999999999999999999. Checked here without strtod: the decimal
 *     exponent of the leading significant digit decides, and only at exactly 10^308 <= |x| <
 *     10^309 are the first 309 significant digits compared with those of 2^1024 - 2^970.
 *  6. Nesting: JSON_PARSER_MAX_DEPTH is 2048 and jansson counts every value, scalars too: a
 *     value inside k containers has depth k + 1, which must be <= 2048. So 2048 nested empty
 *     arrays are accepted, but a value (scalar or container) inside 2048 containers is parse.
 *     Tracked here in a 2048-bit stack (object or array per level) on the C stack.
 *  7. Objects: '{' '}' or '{' string ':' value (',' string ':' value)* '}'. Arrays likewise.
 *     Trailing commas, missing separators and non-string keys are parse.
 *  8. Duplicate keys are accepted; the last value of a key wins (json_object_get sees the
 *     last). So the last top-level "type" member decides: an earlier good one does not help a
 *     later bad one, and a later good one mends an earlier bad one.
 *  9. Keys are compared after escape decoding: "t\u0079pe" is "type". Only top-level keys
 *     count; "type" in a nested object is just data.
 * 10. Strings: raw bytes 0x00-0x1F are parse (0x7F is fine). Escapes are \" \\ \/ \b \f \n \r
 *     \t and \uXXXX (hex digits in either case); any other (\x, \U, \', \0) is parse.
 * 11. \u escapes: D800-DBFF must be followed at once by a \u escape in DC00-DFFF (a pair); a
 *     lone high surrogate, a high one followed by anything else (another high one, a reversed
 *     pair), and a lone low surrogate are parse. \u0000 decodes to a NUL byte: accepted in a
 *     string value (JSON_ALLOW_NUL), parse in any object key at any depth ("NUL byte in object
 *     key not supported").
 * 12. UTF-8 is checked at jansson's stream level, so everywhere: in strings a byte >= 0x80 must
 *     start a well-formed sequence: no continuation byte first, no C0/C1 or F5-FF, no overlong
 *     form (E0 80-9F, F0 80-8F), no encoded surrogate (ED A0-BF), nothing above U+10FFFF (F4
 *     90-BF), no truncated sequence. Outside strings any byte >= 0x80 is parse.
 * 13. The type: the last top-level "type" must be a string; its decoded length must be 1..128
 *     bytes and contain no NUL byte (a \u0000 in it); otherwise no_type. Its bytes are the
 *     decoded ones ("\u00e9" gives two bytes C3 A9; a surrogate pair four).
 * 14. A raw NUL byte right after a number or a literal (true, false, null) is skipped, once:
 *     jansson ungets the byte that ended the token, and a NUL in its one-token push-back buffer
 *     reads as "empty", so the byte is lost. "1\0", "[1\0]", "[true\0,2]", "{"a":null\0}" and
 *     "1\0 " are accepted as if the NUL were absent; "1\0\0", "1 \0", "{}\0", "\"a\"\0" are
 *     parse. A NUL anywhere else is parse.
 * Only the verdict, the type bytes and (for rejections) the offset and reason here are
 * promised; when jansson would stop at one of several errors, the offset is where this scanner
 * stopped, which may be elsewhere.
 *
 * Speed: runs of plain string bytes, digits and whitespace are consumed 16 bytes at a time with
 * SSE2 on x86-64 (8 at a time with 64-bit words elsewhere); everything else is a single
 * byte-driven state machine. No heap, no recursion, no locale, reentrant. */
#ifndef INGESTD_INGEST_SCAN_H
#define INGESTD_INGEST_SCAN_H

#include <stddef.h>

#include "ingest/verdict.h"

/* jansson 2.14's JSON_PARSER_MAX_DEPTH: values nest at most this deep (rule 6). */
#define ING_SCAN_MAX_DEPTH 2048

/* ing_scan_element's answer when the input ends inside the value: feed more bytes and call it
 * again from the same start. Never an ing_verdict_t value. */
#define ING_SCAN_NEED_MORE (-1)

typedef struct {
    const char *type;   /* accepted: the type's bytes: into the line, or into buf when escaped */
    size_t type_len;    /* 1..ING_TYPE_MAX */
    size_t offset;      /* rejected: byte offset where the verdict was decided */
    const char *reason; /* rejected: short static text for the HTTP reply ("invalid escape", ...) */
    char buf[ING_TYPE_MAX]; /* the decoded type when it had escapes */
} ing_scan_result_t;

/* Judges one event (a line without its line ending). Returns ING_ACCEPTED, ING_REJECT_PARSE,
 * ING_REJECT_NOT_OBJECT or ING_REJECT_NO_TYPE. On ING_ACCEPTED out->type/type_len are set
 * (type borrowed: points into line or into out->buf); on a rejection out->offset and
 * out->reason are. No heap, no recursion. Any thread. */
ing_verdict_t ing_scan_line(const char *line, size_t len, ing_scan_result_t *out);

/* Judges ONE value starting at p (leading whitespace allowed), for walking a JSON array body
 * element by element in one pass. Returns the verdict (as ing_scan_line would give for the
 * element's bytes alone) and sets *consumed to the bytes up to just after the value, or
 * ING_SCAN_NEED_MORE (*consumed = 0) when len ends inside the value: a number or literal that
 * reaches the end counts as unfinished (more digits or letters could follow). A NUL byte right
 * after a number or literal belongs to the element (rule 14). On ING_REJECT_PARSE, *consumed is
 * the offset of the error and the caller must resynchronise itself. After an accepted element
 * the caller expects whitespace, then ',' or ']'; any other byte there means the element, taken
 * as its bytes up to the separator, is parse (trailing garbage). Nesting is counted from the
 * element (depth 1), as for a line. Any thread. */
int ing_scan_element(const char *p, size_t len, size_t *consumed, ing_scan_result_t *out);

#endif
