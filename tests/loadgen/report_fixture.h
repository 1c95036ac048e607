/* report_fixture.h - synthetic `loadgen compare` results for the report's tests: any number of
 * modes and runs, deterministic figures, no server. */
#ifndef INGESTD_REPORT_FIXTURE_H
#define INGESTD_REPORT_FIXTURE_H

#include "lg_report.h"

/* Mode names the fixture uses, in order: the eight memory x parse modes of issue 10, then
 * names no table knows. */
extern const char *const lgt_mode_names[];
extern const unsigned lgt_mode_names_count;

/* Fills r (lg_result_init'ed by it) with nmodes modes named from lgt_mode_names and repeat runs
 * each: figures that differ by mode with a small run-to-run jitter, RSS samples, run JSON, an
 * environment and an argv. Returns 0 or a negative errno. */
int lgt_synthetic(lg_compare_result_t *r, unsigned nmodes, unsigned repeat);

/* Sets figure fig of mode's runs to values[0..r->repeat). */
void lgt_set_runs(lg_compare_result_t *r, unsigned mode, lg_fig_t fig, const double *values);

#endif
