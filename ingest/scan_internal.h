/* ingest/scan_internal.h - the scanner's two code paths, for tests and benchmarks: the SSE2
 * path (x86-64) and the portable one (64-bit words), which ing_scan_line uses elsewhere. */
#ifndef INGESTD_INGEST_SCAN_INTERNAL_H
#define INGESTD_INGEST_SCAN_INTERNAL_H

#include <stddef.h>

#include "ingest/scan.h"

#if defined(__SSE2__)
#define ING_SCAN_HAVE_SSE2 1
#else
#define ING_SCAN_HAVE_SSE2 0
#endif

typedef enum {
    ING_SCAN_PATH_BEST = 0, /* what ing_scan_line uses: SSE2 when built with it */
    ING_SCAN_PATH_PORTABLE, /* 64-bit words only, on every platform */
} ing_scan_path_t;

/* ing_scan_line / ing_scan_element through a chosen path; same contracts. */
ing_verdict_t ing_scan_line_path(const char *line, size_t len, ing_scan_result_t *out,
                                 ing_scan_path_t path);
int ing_scan_element_path(const char *p, size_t len, size_t *consumed, ing_scan_result_t *out,
                          ing_scan_path_t path);

#endif
