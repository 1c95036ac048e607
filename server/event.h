/* event.h - what ingest decides about one event: accepted, or rejected for a named reason. */
#ifndef INGESTD_EVENT_H
#define INGESTD_EVENT_H

/* Rejection reasons are the `reason` label values of ingestd_events_rejected_total. */
typedef enum {
    SRV_ACCEPTED = 0,
    SRV_REJECT_PARSE,      /* not valid JSON */
    SRV_REJECT_NOT_OBJECT, /* valid JSON, but not an object */
    SRV_REJECT_NO_TYPE,    /* no string "type" of 1 to SRV_TYPE_MAX bytes */
    SRV_REJECT_TOO_LARGE,  /* over --max-event-bytes */
    SRV_REJECT_TRUNCATED,  /* a partial line at end of stream or body */
    SRV_VERDICT_COUNT,
} srv_verdict_t;

#define SRV_TYPE_MAX 128

/* "accepted", "parse", "not_object", "no_type", "too_large", "truncated". */
static inline const char *srv_verdict_name(srv_verdict_t v)
{
    static const char *const names[SRV_VERDICT_COUNT] = {
        "accepted", "parse", "not_object", "no_type", "too_large", "truncated",
    };
    return (unsigned)v < SRV_VERDICT_COUNT ? names[v] : "unknown";
}

#endif
