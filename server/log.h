/* log.h - ingestd's stderr log: one line per record, text (key=value) or JSON, with a rate
 * limiter for error lines that could otherwise flood. */
#ifndef INGESTD_LOG_H
#define INGESTD_LOG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "server/config.h"

/* Sets the format for the whole process. Call once at start-up before other threads log. */
void srv_log_init(srv_log_format_t format);

/* Writes one record: level ("info", "warn", "error"), a message, then key/value string pairs
 * ending with NULL. Text: `2026-01-02T03:04:05.678Z info msg key=value key2="v w"`; JSON:
 * {"ts":...,"level":...,"msg":...,"key":"value"}. One write(2) per record, so lines from threads
 * never interleave. Any thread. */
void srv_log(const char *level, const char *msg, ...) __attribute__((sentinel));

/* Like srv_log with npairs key/value pairs taken from kv[0..2*npairs). Any thread. */
void srv_log_kv(const char *level, const char *msg, const char *const *kv, size_t npairs);

/* A per-call-site limiter: at most `burst` records per second; the first record after a
 * suppressed stretch carries suppressed=N. Static storage, zero-initialised. */
typedef struct {
    _Atomic int64_t second;
    _Atomic uint32_t count;
    _Atomic uint64_t suppressed;
} srv_ratelimit_t;

#define SRV_LOG_BURST 5

/* Like srv_log at level "error", unless rl already let SRV_LOG_BURST records through this
 * second. Any thread. */
void srv_log_error_limited(srv_ratelimit_t *rl, const char *msg, ...) __attribute__((sentinel));

#endif
