/* fuzz_scan.c - libFuzzer target: every input through the scanner (both code paths, as a line
 * and as an array element) and through jansson's tree (tree_ref.c); abort() on any difference in
 * verdict or type bytes. Its custom mutator generates whole events (json_gen.c), inserts
 * fragments that exercise one jansson quirk each, and deepens nesting, so the fuzzer reaches
 * long and deep valid events and their near-misses, not only shallow garbage. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/scan.h"
#include "ingest/scan_internal.h"
#include "json_gen.h"
#include "tree_ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

static void differ(const char *what, ing_verdict_t got, ing_verdict_t want)
{
    fprintf(stderr, "fuzz.scan: %s: scanner %s, jansson %s\n", what, ing_verdict_name(got),
            ing_verdict_name(want));
    abort();
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    char ref_type[ING_TYPE_MAX];
    size_t ref_len;
    ing_verdict_t ref = tree_ref_judge(in, size, ref_type, &ref_len);
    char *sep = malloc(size + 2); /* the input as an array element: followed by ",]" */

    if (sep == NULL) {
        abort();
    }
    memcpy(sep, in, size);
    sep[size] = ',';
    sep[size + 1] = ']';
    for (int path = ING_SCAN_PATH_BEST; path <= ING_SCAN_PATH_PORTABLE; path++) {
        ing_scan_result_t r;
        ing_verdict_t v = ing_scan_line_path(in, size, &r, (ing_scan_path_t)path);
        if (v != ref) {
            differ(path ? "line (portable)" : "line", v, ref);
        }
        if (v == ING_ACCEPTED &&
            (r.type_len != ref_len || memcmp(r.type, ref_type, ref_len) != 0)) {
            differ("type bytes", v, ref);
        }
        if (v != ING_ACCEPTED && (r.reason == NULL || r.offset > size)) {
            differ("reason/offset", v, ref);
        }
        /* as an element: alone (may need more), then followed by a separator */
        size_t used = 0;
        int e = ing_scan_element_path(in, size, &used, &r, (ing_scan_path_t)path);
        if (e != ING_SCAN_NEED_MORE) {
            size_t i = used;
            while (i < size && is_ws(in[i])) {
                i++;
            }
            if (e == ING_REJECT_PARSE ? ref != ING_REJECT_PARSE : (i == size && (int)ref != e)) {
                differ("element", (ing_verdict_t)e, ref);
            }
        }
        e = ing_scan_element_path(sep, size + 2, &used, &r, (ing_scan_path_t)path);
        if (ref != ING_REJECT_PARSE) {
            if (e != (int)ref) {
                differ("element before ','", (ing_verdict_t)e, ref);
            }
            for (size_t i = used; i < size; i++) {
                if (!is_ws(sep[i])) {
                    differ("element end", (ing_verdict_t)e, ref);
                }
            }
            if (e == ING_ACCEPTED &&
                (r.type_len != ref_len || memcmp(r.type, ref_type, ref_len) != 0)) {
                differ("element type bytes", (ing_verdict_t)e, ref);
            }
        } else if (e != ING_REJECT_PARSE && e != ING_SCAN_NEED_MORE) {
            /* a value ended before the separator: the bytes after it must not be blank */
            size_t i = used;
            while (i < size && is_ws(sep[i])) {
                i++;
            }
            if (i == size) {
                differ("element before ',' (jansson: parse)", (ing_verdict_t)e, ref);
            }
        }
    }
    free(sep);
    return 0;
}

static size_t insert(uint8_t *data, size_t size, size_t max, size_t at, const char *s, size_t n)
{
    if (size + n > max || at > size) {
        return size;
    }
    memmove(data + at + n, data + at, size - at);
    memcpy(data + at, s, n);
    return size + n;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    uint64_t rng = seed;
    uint64_t r = jg_next(&rng);
    size_t at = size ? (size_t)(jg_next(&rng) % (size + 1)) : 0;

    switch (r % 10) {
    case 0:
    case 1: { /* a fresh event, loadgen-like or random structure, maybe one corruption */
        jg_t g = {(char *)data, max_size, 0, jg_next(&rng)};
        jg_event(&g, (unsigned)(r >> 8) % 5, (r >> 16) % 3 == 0);
        return g.len;
    }
    case 2:
    case 3: { /* a quirk fragment somewhere */
        size_t n;
        const char *f = jg_fragment(jg_next(&rng), &n);
        return insert(data, size, max_size, at, f, n);
    }
    case 4: { /* a generated value spliced in (random structure, no root object needed) */
        char tmp[4096];
        jg_t g = {tmp, sizeof(tmp), 0, jg_next(&rng)};
        jg_event(&g, 4, 0);
        return insert(data, size, max_size, at, tmp, g.len);
    }
    case 5: { /* deepen: wrap everything in n arrays (towards jansson's depth limit) */
        size_t n = (r >> 8) % 2 ? 1 + (r >> 16) % 64 : 2040 + (r >> 16) % 16;
        if (size + 2 * n > max_size) {
            break;
        }
        memmove(data + n, data, size);
        memset(data, '[', n);
        memset(data + n + size, ']', n);
        return size + 2 * n;
    }
    default:
        break;
    }
    return LLVMFuzzerMutate(data, size, max_size);
}
