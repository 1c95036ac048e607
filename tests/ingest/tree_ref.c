/* tree_ref.c - the tree strategy's verdict on one event (ingest/judge.h, jansson naive), the
 * reference for unit.scan and fuzz.scan: the scanner is proven against the real strategy. */
#include "tree_ref.h"

#include <pthread.h>
#include <string.h>

#include "ingest/arena_json.h"
#include "ingest/judge.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void install(void)
{
    arena_json_install(NULL, NULL); /* jansson on malloc/free when no arena is active */
}

ing_verdict_t tree_ref_judge(const char *p, size_t n, char *type_out, size_t *type_len)
{
    static _Thread_local ing_judge_t judge; /* naive tree: no cache, no arena in use */
    static _Thread_local int ready;
    ing_judgement_t out;

    pthread_once(&once, install);
    if (!ready) {
        ing_judge_init(&judge, ING_PARSE_TREE_NAIVE, NULL, NULL, NULL);
        ready = 1;
    }
    ing_verdict_t v = ing_judge_line(&judge, p, n, 0, &out);
    *type_len = 0;
    if (v == ING_ACCEPTED) {
        memcpy(type_out, out.type, out.type_len);
        *type_len = out.type_len;
    }
    return v;
}
