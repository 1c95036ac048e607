/* ingest/verdict.c - the verdicts' names, from the one list in verdict.h. */
#include "ingest/verdict.h"

const char *ing_verdict_name(ing_verdict_t v)
{
    static const char *const names[ING_VERDICT_COUNT] = {
#define ING_VERDICT_LABEL(e, label) label,
        ING_VERDICTS(ING_VERDICT_LABEL)
#undef ING_VERDICT_LABEL
    };
    return (unsigned)v < ING_VERDICT_COUNT ? names[v] : "unknown";
}
