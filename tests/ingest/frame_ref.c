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
        int eof = i == n;
        if (eof && raw == 0) {
            break;
        }
        if (raw >= POOL_BLOCK_SIZE && raw > max + 1) {
            emit(ctx, ING_REJECT_TOO_LARGE, NULL, 0);
        } else if (eof) {
            if (raw >= POOL_BLOCK_SIZE || !blank(in + start, raw)) {
                emit(ctx, ING_REJECT_TRUNCATED, NULL, 0);
            }
        } else {
            size_t len = raw > 0 && in[i - 1] == '\r' ? raw - 1 : raw;
            if (!blank(in + start, len)) {
                if (len > max) {
                    emit(ctx, ING_REJECT_TOO_LARGE, NULL, 0);
                } else {
                    emit(ctx, ING_ACCEPTED, in + start, len);
                }
            }
        }
        start = i + 1;
    }
}
