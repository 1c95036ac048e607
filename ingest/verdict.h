/* ingest/verdict.h - what ingest decides about one event: the one list every name derives from. */
#ifndef INGESTD_INGEST_VERDICT_H
#define INGESTD_INGEST_VERDICT_H

/* X(ENUM, label): label is the `reason` value of ingestd_events_rejected_total (and "accepted").
 * The shutdown summary's keys are "rejected_" label; the HTTP reply's "reason" is the label. */
#define ING_VERDICTS(X)                                                                            \
    X(ING_ACCEPTED, "accepted")              /* passed, handed to the sink */                      \
    X(ING_REJECT_PARSE, "parse")             /* not valid JSON */                                  \
    X(ING_REJECT_NOT_OBJECT, "not_object")   /* valid JSON, but not an object */                   \
    X(ING_REJECT_NO_TYPE, "no_type")         /* no string "type" of 1 to ING_TYPE_MAX bytes */     \
    X(ING_REJECT_TOO_LARGE, "too_large")     /* over --max-event-bytes */                          \
    X(ING_REJECT_TRUNCATED, "truncated")     /* a partial line at end of stream or body */         \
    X(ING_REJECT_SLOW_LINE, "slow_line")     /* a TCP line not ended within --line-timeout */      \
    X(ING_REJECT_OVER_BUDGET, "over_budget") /* dropped: --partial-budget or the memory limit */

typedef enum {
#define ING_VERDICT_ENUM(e, label) e,
    ING_VERDICTS(ING_VERDICT_ENUM)
#undef ING_VERDICT_ENUM
        ING_VERDICT_COUNT
} ing_verdict_t;

#define ING_TYPE_MAX 128 /* bytes of a "type" string, after escapes are decoded */

/* "accepted", "parse", ...; "unknown" out of range. Any thread. */
const char *ing_verdict_name(ing_verdict_t v);

#endif
