/* ingest/judge.c - the parse seam: picks a strategy and completes its judgement (see judge.h). */
#include "ingest/judge.h"

#include <string.h>

#include "ingest/tree.h"

static ing_judge_fn strategy(ing_parse_t parse)
{
    switch (parse) {
    case ING_PARSE_TREE_POOLED:
        return ing_tree_judge_pooled;
    case ING_PARSE_TREE_NAIVE:
    default:
        return ing_tree_judge_naive;
    }
}

void ing_judge_init(ing_judge_t *j, ing_parse_t parse, pool_cache_t *cache,
                    void *(*big_alloc)(size_t), void (*big_free)(void *))
{
    memset(j, 0, sizeof(*j));
    arena_init(&j->arena, cache, big_alloc, big_free);
    ing_judge_set(j, parse);
}

void ing_judge_set(ing_judge_t *j, ing_parse_t parse)
{
    j->parse = parse;
    j->fn = strategy(parse);
}

ing_parse_t ing_judge_parse(const ing_judge_t *j)
{
    return j->parse;
}

const char *ing_parse_name(ing_parse_t parse)
{
    switch (parse) {
    case ING_PARSE_TREE_NAIVE:
        return "tree-naive";
    case ING_PARSE_TREE_POOLED:
        return "tree-pooled";
    default:
        return "unknown";
    }
}

void ing_judge_destroy(ing_judge_t *j)
{
    arena_destroy(&j->arena);
}

ing_verdict_t ing_judge_line(ing_judge_t *j, const char *line, size_t len, int want_detail,
                             ing_judgement_t *out)
{
    out->type = NULL;
    out->type_len = 0;
    out->detail = NULL;
    out->offset = 0;
    ing_verdict_t v = j->fn(j, line, len, want_detail, out);
    if (want_detail && out->detail == NULL) {
        /* The texts a strategy may leave to the seam, so that both say the same. */
        switch (v) {
        case ING_REJECT_PARSE:
            out->detail = "not valid JSON";
            break;
        case ING_REJECT_NOT_OBJECT:
            out->detail = "the event is not a JSON object";
            break;
        case ING_REJECT_NO_TYPE:
            out->detail = "no string \"type\" of 1 to 128 bytes without NUL";
            break;
        default:
            break;
        }
    }
    return v;
}

size_t ing_judge_value_end(ing_judge_t *j, const char *p, size_t n)
{
    (void)p;
    (void)n;
    switch (j->parse) {
    case ING_PARSE_TREE_NAIVE:
    case ING_PARSE_TREE_POOLED:
    default:
        return 0; /* a tree parse needs the whole value first: the framer walks it */
    }
}
