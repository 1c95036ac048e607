/* lg_nats.h - `loadgen run --verify-nats nats://HOST:PORT[,HOST:PORT...]/STREAM`: counts the
 * events a JetStream stream gained during the run (messages' bodies split on newlines, as the
 * JetStream sink writes them) and compares them with the events the server accepted. */
#ifndef INGESTD_LG_NATS_H
#define INGESTD_LG_NATS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char servers[8][128]; /* "nats://HOST:PORT" */
    int nservers;
    char stream[128];
} lg_nats_target_t;

/* Parses "nats://HOST:PORT[,HOST:PORT...]/STREAM". Returns 0 or -EINVAL. */
int lg_nats_parse(const char *spec, lg_nats_target_t *out);

/* The stream's last sequence number now (0 when empty). Returns 0 or -1 with err set. */
int lg_nats_last_seq(const lg_nats_target_t *t, uint64_t *last, char *err, size_t errlen);

/* Counts messages and events (lines) in the stream after sequence after_seq, waiting until the
 * count reaches want or stops changing for settle_ms (at most timeout_ms). Duplicate
 * Nats-Msg-Ids are counted in *dup_ids. Returns 0 or -1 with err set. */
int lg_nats_count(const lg_nats_target_t *t, uint64_t after_seq, uint64_t want, int settle_ms,
                  int timeout_ms, uint64_t *msgs, uint64_t *events, uint64_t *dup_ids, char *err,
                  size_t errlen);

#endif
