/* tree_ref.h - the reference the scanner is proven against: the tree strategy (ingest/tree.c:
 * jansson 2.14 with ingestd's flags, then ingestd's rule), one function for the tests. */
#ifndef INGESTD_TESTS_TREE_REF_H
#define INGESTD_TESTS_TREE_REF_H

#include <stddef.h>

#include "ingest/verdict.h"

/* ing_judge_line under ING_PARSE_TREE_NAIVE (json_loadb with JSON_DECODE_ANY |
 * JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, then ingestd's rule): accepted -> the type's bytes
 * copied to type_out (ING_TYPE_MAX bytes) and *type_len set. One judge per thread. */
ing_verdict_t tree_ref_judge(const char *p, size_t n, char *type_out, size_t *type_len);

#endif
