/* profile_text.c - see profile_text.h. */
#include "profile_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *profile_text(allocprof_sort_t key, size_t top_n, allocprof_format_t fmt)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL) {
        return NULL;
    }
    int rc = allocprof_write(f, key, top_n, fmt);
    if (fclose(f) != 0 || rc != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

site_vals_t site_in(const char *text, const char *fn)
{
    site_vals_t r;
    memset(&r, 0, sizeof r);
    char want[64];
    const char *hit = text;
    snprintf(want, sizeof want, "\n    #0 %s", fn);
    size_t wl = strlen(want);
    while ((hit = strstr(hit, want)) != NULL && hit[wl] != '+' && hit[wl] != '.') {
        hit += wl;
    }
    if (hit == NULL) {
        return r;
    }
    /* the values line is the line just before */
    const char *line = hit;
    while (line > text && line[-1] != '\n') {
        line--;
    }
    unsigned long long a, b, c, d;
    if (sscanf(line, "inuse_space=%llu inuse_objects=%llu alloc_space=%llu alloc_objects=%llu", &a,
               &b, &c, &d) == 4) {
        r.v[ALLOCPROF_INUSE_SPACE] = a;
        r.v[ALLOCPROF_INUSE_OBJECTS] = b;
        r.v[ALLOCPROF_ALLOC_SPACE] = c;
        r.v[ALLOCPROF_ALLOC_OBJECTS] = d;
        r.found = 1;
    }
    return r;
}
