/* ingest/tree.c - the jansson tree strategy: parse the event into a tree (in the judge's arena
 * when pooled, on malloc when naive), then apply ingestd's rule to it (see judge.h). jansson's
 * allocator hooks, the process-global part, stay in arena_json.c. */
#include "ingest/tree.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "ingest/arena_json.h"

/* The rule on a parsed root; copies an accepted type into j->type (the tree is gone after). */
static ing_verdict_t rule(ing_judge_t *j, const json_t *root, ing_judgement_t *out)
{
    if (root == NULL) {
        return ING_REJECT_PARSE;
    }
    if (!json_is_object(root)) {
        return ING_REJECT_NOT_OBJECT;
    }
    const json_t *type = json_object_get(root, "type");
    if (!json_is_string(type)) {
        return ING_REJECT_NO_TYPE;
    }
    /* With JSON_ALLOW_NUL a string may hold NUL bytes: its length is json_string_length, not
     * strlen, and a type with a NUL in it is refused. */
    size_t n = json_string_length(type);
    const char *s = json_string_value(type);
    if (n == 0 || n > ING_TYPE_MAX || memchr(s, '\0', n) != NULL) {
        return ING_REJECT_NO_TYPE;
    }
    memcpy(j->type, s, n);
    j->type[n] = '\0';
    out->type = j->type;
    out->type_len = n;
    return ING_ACCEPTED;
}

static void parse_detail(ing_judge_t *j, const json_error_t *err, ing_judgement_t *out)
{
    snprintf(j->detail, sizeof(j->detail), "%.150s at byte %d", err->text, err->position);
    out->detail = j->detail;
    out->offset = err->position > 0 ? (size_t)err->position : 0;
}

ing_verdict_t ing_tree_judge_pooled(ing_judge_t *j, const char *line, size_t len, int want_detail,
                                    ing_judgement_t *out)
{
    json_error_t err;

    /* The tree lives in the arena: no json_decref, one O(1) reset afterwards. */
    arena_t *prev = arena_json_activate(&j->arena);
    json_t *root = json_loadb(line, len, ING_TREE_FLAGS, want_detail ? &err : NULL);
    ing_verdict_t v = rule(j, root, out);
    arena_json_activate(prev);
    arena_reset(&j->arena);
    if (v == ING_REJECT_PARSE && want_detail) {
        parse_detail(j, &err, out);
    }
    return v;
}

ing_verdict_t ing_tree_judge_naive(ing_judge_t *j, const char *line, size_t len, int want_detail,
                                   ing_judgement_t *out)
{
    json_error_t err;

    json_t *root = json_loadb(line, len, ING_TREE_FLAGS, want_detail ? &err : NULL);
    ing_verdict_t v = rule(j, root, out);
    json_decref(root);
    if (v == ING_REJECT_PARSE && want_detail) {
        parse_detail(j, &err, out);
    }
    return v;
}
