/* tree_ref.h - the reference the scanner is proven against: jansson 2.14's tree parse with
 * ingestd's flags, then ingestd's rule (test-only; to be replaced by the tree strategy). */
#ifndef INGESTD_TESTS_TREE_REF_H
#define INGESTD_TESTS_TREE_REF_H

#include <stddef.h>

#include "ingest/verdict.h"

/* json_loadb(p, n, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL): NULL -> parse;
 * not an object -> not_object; "type" a string of 1..ING_TYPE_MAX bytes without NUL ->
 * accepted, its bytes copied to type_out (ING_TYPE_MAX bytes) and *type_len set; else no_type.
 * Allocates through jansson (malloc) and frees before returning. Any thread. */
ing_verdict_t tree_ref_judge(const char *p, size_t n, char *type_out, size_t *type_len);

#endif
