/* frame_ref.c - the whole-input reference for the NDJSON framer (see frame_ref.h). */
#include "frame_ref.h"

#include "pool/pool.h"

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') {
            return 0;
        }
    }
    return 1;
}

void frame_ref(const char *in, size_t n, size_t max, frame_ref_emit_fn emit, void *ctx)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && in[i] != '\n') {
            continue;
        }
        size_t raw = i - start;
        if (i == n) {
            /* Unfinished at end of stream: over max + 1 too large, blank nothing, else cut. */
            if (raw > max + 1) {
                emit(ctx, ING_REJECT_TOO_LARGE, NULL, 0);
            } else if (!blank(in + start, raw)) {
                emit(ctx, ING_REJECT_TRUNCATED, NULL, 0);
            }
            break;
        }
        size_t len = raw > 0 && in[i - 1] == '\r' ? raw - 1 : raw;
        if (len > max) {
            emit(ctx, ING_REJECT_TOO_LARGE, NULL, 0); /* blank or not */
        } else if (!blank(in + start, len)) {
            emit(ctx, ING_ACCEPTED, in + start, len);
        }
        start = i + 1;
    }
}
