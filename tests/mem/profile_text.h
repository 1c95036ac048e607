/* profile_text.h - reading allocprof's text profile back in tests: the profile as a string, and
 * the figures of the site whose top frame is a given function. Used by unit.allocprof and
 * unit.allocprof_mem[_mimalloc]. No cmocka inside: test threads call it too. */
#ifndef INGESTD_TESTS_PROFILE_TEXT_H
#define INGESTD_TESTS_PROFILE_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "mem/allocprof.h"

typedef struct {
    uint64_t v[4]; /* indexed by allocprof_sort_t */
    int found;
} site_vals_t;

/* The profile as a string (new, free() it), or NULL on failure. */
char *profile_text(allocprof_sort_t key, size_t top_n, allocprof_format_t fmt);

/* Figures of the first site in a text profile whose top frame is fn ("#0 fn+0x..." or, for a
 * compiler clone, "#0 fn.constprop.0+0x..."); found 0 when there is none. */
site_vals_t site_in(const char *text, const char *fn);

#endif
