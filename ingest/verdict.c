/* verdict.c - the labels of ing_verdict_t, from the one list in verdict.h. */
#include "ingest/verdict.h"

#include <stddef.h>

const char *ing_verdict_name(ing_verdict_t v)
{
    static const char *const names[] = {
#define ING_VERDICT_NAME(e, label) label,
        ING_VERDICTS(ING_VERDICT_NAME)
#undef ING_VERDICT_NAME
    };

    if ((unsigned)v >= sizeof(names) / sizeof(names[0])) {
        return "unknown";
    }
    return names[v];
}
