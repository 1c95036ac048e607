/* tree_ref.c - jansson's verdict on one event, the reference for unit.scan and fuzz.scan. */
#include "tree_ref.h"

#include <jansson.h>
#include <string.h>

ing_verdict_t tree_ref_judge(const char *p, size_t n, char *type_out, size_t *type_len)
{
    json_t *root =
        json_loadb(p, n, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
    ing_verdict_t v = ING_REJECT_NO_TYPE;

    *type_len = 0;
    if (root == NULL) {
        return ING_REJECT_PARSE;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return ING_REJECT_NOT_OBJECT;
    }
    json_t *type = json_object_get(root, "type");
    if (json_is_string(type)) {
        size_t len = json_string_length(type);
        const char *s = json_string_value(type);
        if (len >= 1 && len <= ING_TYPE_MAX && memchr(s, '\0', len) == NULL) {
            memcpy(type_out, s, len);
            *type_len = len;
            v = ING_ACCEPTED;
        }
    }
    json_decref(root);
    return v;
}
