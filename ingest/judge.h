/* ingest/judge.h - the parse seam: one event line in; out come a verdict, the event's "type"
 * and, on request, what was wrong and where. One judge per worker; the strategy behind it (the
 * jansson tree, pooled or naive, today; the scanner next) is one pointer a mode switch swaps. */
#ifndef INGESTD_INGEST_JUDGE_H
#define INGESTD_INGEST_JUDGE_H

#include <stddef.h>

#include "ingest/scan.h"
#include "ingest/verdict.h"
#include "pool/arena.h"
#include "pool/pool.h"

/* The rule every strategy applies, and the contract a new one must meet: the event is what
 * jansson 2.14's json_loadb(JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL) accepts
 * (ING_REJECT_PARSE otherwise), it is an object (ING_REJECT_NOT_OBJECT otherwise), and its
 * top-level "type" (the last one when the key repeats, keys compared after their escapes are
 * decoded) is a string of 1 to ING_TYPE_MAX bytes after decoding, with no NUL byte
 * (ING_REJECT_NO_TYPE otherwise). So integers beyond int64 (uint64 ids) and "\u0000" inside
 * string values are accepted. Limits left from jansson: reals that overflow a double, nesting
 * deeper than JSON_PARSER_MAX_DEPTH (2048) and "\u0000" inside an object key are parse errors. */

/* The strategies. Not a registry: a switch in judge.c picks the function; the ingest layer and
 * the server hold a judge, not a strategy. */
typedef enum {
    ING_PARSE_TREE_NAIVE = 0, /* jansson tree on its fallback allocator (malloc), json_decref */
    ING_PARSE_TREE_POOLED,    /* jansson tree in the judge's arena over pool blocks, one reset */
    ING_PARSE_SCAN,           /* the validating scanner (scan.h): one pass, builds nothing */
} ing_parse_t;

/* What a judgement says besides the verdict. */
typedef struct {
    /* ING_ACCEPTED: the type's bytes (1..ING_TYPE_MAX, no NUL, not NUL-terminated), borrowed
     * until the next ing_judge_line or ing_judge_destroy on the same judge. Else NULL, 0. */
    const char *type;
    size_t type_len;
    /* Rejected and asked for (want_detail): a short text saying what and, for parse errors,
     * where ("...at byte N"), borrowed like type; NULL otherwise. */
    const char *detail;
    /* ING_REJECT_PARSE and asked for: byte offset in the line where the error was found (as the
     * strategy knows it; jansson's: the bytes it had read); 0 otherwise. */
    size_t offset;
} ing_judgement_t;

typedef struct ing_judge ing_judge_t;

/* One strategy's line function (tree.c; scan.c next). Fills out completely. */
typedef ing_verdict_t (*ing_judge_fn)(ing_judge_t *j, const char *line, size_t len, int want_detail,
                                      ing_judgement_t *out);

/* One worker's judge; embed it. Fields are private to the ingest layer; owner thread only. */
struct ing_judge {
    ing_judge_fn fn;   /* the strategy in use: the one pointer ing_judge_set swaps */
    ing_parse_t parse; /* its name */
    arena_t arena;     /* ING_PARSE_TREE_POOLED: the tree's memory, empty between events */
    char type[ING_TYPE_MAX + 1]; /* the accepted type, copied out of the tree */
    char detail[192];            /* the last rejection's text */
    /* ING_PARSE_SCAN: the scanner's last answer, and the value ing_judge_value_end found (the
     * next ing_judge_line on exactly p[0..n) takes its judgement instead of scanning again). */
    ing_scan_result_t scan;
    const char *known_p;
    size_t known_n;
    ing_verdict_t known_v;
};

/* Initialises j with strategy parse. cache serves the arena's blocks (pooled tree); big_alloc /
 * big_free serve arena requests larger than a block (NULL: malloc/free). The jansson hooks must
 * be installed first (arena_json_install, once per process). Cannot fail; allocates nothing. */
void ing_judge_init(ing_judge_t *j, ing_parse_t parse, pool_cache_t *cache,
                    void *(*big_alloc)(size_t), void (*big_free)(void *));

/* Switches the strategy between two events (a live mode switch): swaps the pointer. Holds
 * nothing from the previous strategy (the arena is empty between events). Owner thread. */
void ing_judge_set(ing_judge_t *j, ing_parse_t parse);

/* The strategy in use. Owner thread. */
ing_parse_t ing_judge_parse(const ing_judge_t *j);

/* "tree-naive", "tree-pooled"; "unknown" out of range. Any thread. */
const char *ing_parse_name(ing_parse_t parse);

/* Releases what j holds (the arena's blocks go back to the cache). Owner thread. */
void ing_judge_destroy(ing_judge_t *j);

/* Judges one event: line[0..len) without its line ending, not NUL-terminated. Returns
 * ING_ACCEPTED, ING_REJECT_PARSE, ING_REJECT_NOT_OBJECT or ING_REJECT_NO_TYPE by the rule above
 * and fills *out (want_detail == 0 skips building the detail text: the hot path). Counts
 * nothing: the caller counts out->type. Pooled tree: no heap allocation once the pool is warm,
 * except through big_alloc for a single jansson allocation over a block's payload (a string or
 * an object table of several KiB). Owner thread. */
ing_verdict_t ing_judge_line(ing_judge_t *j, const char *line, size_t len, int want_detail,
                             ing_judgement_t *out);

/* The array seam (issue 10: "an array body is read once"): given the bytes p[0..n) where a JSON
 * value starts (an array element), returns the length of that value when the strategy can find
 * its end while validating it and it ends within n bytes, keeping its judgement for the
 * ing_judge_line on exactly those bytes that follows; 0 when it cannot (the tree strategies
 * always answer 0: the body framer then walks the element itself, see ingest/body.h). A value
 * of which the end is known may still be followed by junk before the delimiter: the framer
 * then passes the longer element, and the judge judges it afresh. Owner thread. */
size_t ing_judge_value_end(ing_judge_t *j, const char *p, size_t n);

#endif
