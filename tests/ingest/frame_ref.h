/* frame_ref.h - a whole-input reference for the NDJSON framer, shared by unit.frame and
 * fuzz.frame: what ing_frame_* must report for in[0..n) with event limit max, however the input
 * is split. */
#ifndef INGESTD_FRAME_REF_H
#define INGESTD_FRAME_REF_H

#include <stddef.h>

#include "ingest/verdict.h"

/* One report: an accepted line (line, len: without "\n" and one trailing "\r") or a rejection
 * (line NULL, len 0). */
typedef void (*frame_ref_emit_fn)(void *ctx, ing_verdict_t v, const char *line, size_t len);

/* Calls emit for every report in order, by the line rule of ingest/frame.h written out plainly
 * (no blocks: the verdicts do not depend on where lines fall in them). */
void frame_ref(const char *in, size_t n, size_t max, frame_ref_emit_fn emit, void *ctx);

#endif
