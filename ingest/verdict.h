/* ingest/verdict.h - what ingest decides about one event: the one list every name derives from. */
#ifndef INGESTD_INGEST_VERDICT_H
#define INGESTD_INGEST_VERDICT_H
/* X(ENUM, label): label is the `reason` value of ingestd_events_rejected_total (and "accepted"). */
#define ING_VERDICTS(X)                                                                            \
    X(ING_ACCEPTED, "accepted")                                                                    \
    X(ING_REJECT_PARSE, "parse")                                                                   \
    X(ING_REJECT_NOT_OBJECT, "not_object")                                                         \
    X(ING_REJECT_NO_TYPE, "no_type")                                                               \
    X(ING_REJECT_TOO_LARGE, "too_large")                                                           \
    X(ING_REJECT_TRUNCATED, "truncated")
typedef enum {
#define ING_VERDICT_ENUM(e, label) e,
    ING_VERDICTS(ING_VERDICT_ENUM)
#undef ING_VERDICT_ENUM
        ING_VERDICT_COUNT
} ing_verdict_t;
#define ING_TYPE_MAX 128 /* bytes of a "type" string, after escapes are decoded */
/* "accepted", "parse", ...; "unknown" out of range. */
const char *ing_verdict_name(ing_verdict_t v);
#endif
