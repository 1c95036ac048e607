/* ingest/tree.h - the jansson tree strategy of the judge (internal to ingest/: judge.c picks it;
 * the scanner's agreement fuzzer will call the judge, not these). */
#ifndef INGESTD_INGEST_TREE_H
#define INGESTD_INGEST_TREE_H

#include "ingest/judge.h"

/* The flags of every tree parse: the contract in judge.h. */
#define ING_TREE_FLAGS (JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL)

/* ing_judge_fn for ING_PARSE_TREE_POOLED: parses into j->arena through arena_json.c's hooks and
 * resets it (no json_decref). */
ing_verdict_t ing_tree_judge_pooled(ing_judge_t *j, const char *line, size_t len, int want_detail,
                                    ing_judgement_t *out);

/* ing_judge_fn for ING_PARSE_TREE_NAIVE: parses on jansson's fallback allocator, json_decref. */
ing_verdict_t ing_tree_judge_naive(ing_judge_t *j, const char *line, size_t len, int want_detail,
                                   ing_judgement_t *out);

#endif
