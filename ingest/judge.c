/* ingest/judge.c - the parse seam: picks a strategy and completes its judgement (see judge.h). */
#include "ingest/judge.h"

#include <stdio.h>
#include <string.h>

#include "ingest/tree.h"

/* 1 when line[0..len) is the value ing_judge_value_end found, followed only by JSON whitespace
 * (what the array walker keeps before the delimiter). */
static int known_then_blank(const ing_judge_t *j, const char *line, size_t len)
{
    if (len < j->known_n) {
        return 0;
    }
    for (size_t i = j->known_n; i < len; i++) {
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\n' && line[i] != '\r') {
            return 0;
        }
    }
    return 1;
}

/* The scanner as a judge strategy: its type slice as is (into the line, or into j->scan.buf when
 * the type had escapes), and on request "REASON at byte N". */
static ing_verdict_t scan_judge(ing_judge_t *j, const char *line, size_t len, int want_detail,
                                ing_judgement_t *out)
{
    ing_verdict_t v;

    if (j->known_p == line && line != NULL && known_then_blank(j, line, len)) {
        v = j->known_v; /* found while walking an array: not scanned twice */
    } else {
        v = ing_scan_line(line, len, &j->scan);
    }
    j->known_p = NULL;
    if (v == ING_ACCEPTED) {
        out->type = j->scan.type;
        out->type_len = j->scan.type_len;
        return v;
    }
    out->offset = j->scan.offset;
    if (want_detail && v == ING_REJECT_PARSE) {
        snprintf(j->detail, sizeof(j->detail), "%s at byte %zu",
                 j->scan.reason != NULL ? j->scan.reason : "not valid JSON", j->scan.offset);
        out->detail = j->detail;
    }
    return v;
}

static ing_judge_fn strategy(ing_parse_t parse)
{
    switch (parse) {
    case ING_PARSE_SCAN:
        return scan_judge;
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
    case ING_PARSE_SCAN:
        return "scan";
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
    size_t consumed = 0;

    j->known_p = NULL;
    switch (j->parse) {
    case ING_PARSE_SCAN: {
        int v = ing_scan_element(p, n, &consumed, &j->scan);
        if (v == ING_SCAN_NEED_MORE || v == ING_REJECT_PARSE || consumed == 0) {
            return 0; /* unfinished, or invalid (consumed is then the error's offset): the
                       * framer walks it and the line is judged afresh */
        }
        j->known_p = p;
        j->known_n = consumed;
        j->known_v = (ing_verdict_t)v;
        return consumed;
    }
    case ING_PARSE_TREE_NAIVE:
    case ING_PARSE_TREE_POOLED:
    default:
        return 0; /* a tree parse needs the whole value first: the framer walks it */
    }
}
