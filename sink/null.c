/* null.c - the null backend: sink_append counts each event and discards it (no copy, no thread). */
#include "sink/backend.h"

/* Nothing to open, write or close: the engine sees discard and keeps the whole sink on the
 * appending thread, so the null sink costs two counter stores per event (the benchmarks' sink). */
const sink_backend_t sink_backend_null = {
    .name = "null",
    .discard = true,
};
