/* ackload.h - an HTTP load for --ack tests: clients POST batches of events with unique ids
 * ({"type":"t","i":N}) on keep-alive connections and record which ids a 200 acknowledged, so a
 * test can look for every acknowledged event in what the sink kept. */
#ifndef INGESTD_TEST_ACKLOAD_H
#define INGESTD_TEST_ACKLOAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define ACKLOAD_BATCH 50           /* events per request */
#define ACKLOAD_MAX_IDS (1u << 22) /* ids one load may send */
#define ACKLOAD_CLIENTS 3

typedef struct {
    uint16_t port;
    _Atomic int stop;
    _Atomic uint32_t next_id;
    uint8_t *acked; /* acked[id] = 1 when a 200 said the request's events were all accepted */
    _Atomic uint64_t acked_n;
    _Atomic uint64_t requests;
    pthread_t threads[ACKLOAD_CLIENTS];
} ackload_t;

/* A new load (ids from 0), or NULL. */
ackload_t *ackload_new(void);
void ackload_free(ackload_t *L);
/* Starts ACKLOAD_CLIENTS clients against the HTTP port. Returns 0 or -1. */
int ackload_start(ackload_t *L, uint16_t port);
/* Stops the clients (a request in flight stays unacknowledged) and joins them. */
void ackload_stop(ackload_t *L);
/* Marks in seen[] (ACKLOAD_MAX_IDS bytes) every id ("i":N) found in the NDJSON text. */
void ackload_mark_ids(const char *text, size_t len, uint8_t *seen);
/* Acknowledged ids missing from seen. */
uint64_t ackload_missing(const ackload_t *L, const uint8_t *seen);

#endif
