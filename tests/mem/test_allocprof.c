/* test_allocprof.c - unit tests for the allocation-site profile (metrics/allocprof.h), driven
 * through a stand-in for the counting layer that calls the hooks where mem.c will. Linked with
 * -rdynamic (ENABLE_EXPORTS), so the global site_* functions are named through dladdr and the
 * static ones through the executable's .symtab: both paths are covered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem/allocprof.h"
#include "profile_text.h"

/* ---- the counting layer's stand-in and the allocation sites (exported, never inlined) ---- */

void *mem_test_malloc(size_t n);
void mem_test_free(void *p);
void *site_big(size_t n);
void *site_small(size_t n);
void *site_churn(size_t n);

__attribute__((noinline)) void *mem_test_malloc(size_t n)
{
    void *p = malloc(n);
    if (p != NULL) {
        allocprof_on_alloc(p, malloc_usable_size(p));
    }
    return p;
}

__attribute__((noinline)) void mem_test_free(void *p)
{
    if (p == NULL) {
        return;
    }
    allocprof_on_free(p, malloc_usable_size(p));
    free(p);
}

/* The store after the call keeps each site a frame of its own (no tail call) and its body
 * distinct from the others (no identical-code folding at -O2). */
__attribute__((noinline)) void *site_big(size_t n)
{
    void *p = mem_test_malloc(n);
    if (p != NULL) {
        *(char *)p = 'b'; /* a body of its own: no identical-code folding */
    }
    return p;
}

__attribute__((noinline)) void *site_small(size_t n)
{
    void *p = mem_test_malloc(n);
    if (p != NULL) {
        *(char *)p = 's'; /* a body of its own: no identical-code folding */
    }
    return p;
}

__attribute__((noinline)) void *site_churn(size_t n)
{
    void *p = mem_test_malloc(n);
    if (p != NULL) {
        *(char *)p = 'c'; /* a body of its own: no identical-code folding */
    }
    return p;
}

/* A static function: named from the executable's .symtab, not its dynamic symbols. */
static __attribute__((noinline)) void *site_static(size_t n)
{
    void *p = mem_test_malloc(n);
    if (p != NULL) {
        *(char *)p = 't'; /* a body of its own: no identical-code folding */
    }
    return p;
}

/* ---- helpers ---- */

/* The profile as a string (new, free() it). */
static char *profile(allocprof_sort_t key, size_t top_n, allocprof_format_t fmt)
{
    char *buf = profile_text(key, top_n, fmt);
    assert_non_null(buf);
    return buf;
}

/* The top frame of the n-th (0-based) site shown in a text profile, or "" (static buffer). */
static const char *nth_top_frame(const char *text, int n)
{
    static char name[128];
    name[0] = '\0';
    const char *p = text;
    for (int i = 0; i <= n; i++) {
        p = strstr(p, "\n    #0 ");
        if (p == NULL) {
            return name;
        }
        p += 8;
    }
    size_t k = strcspn(p, ".+ \n"); /* without a clone suffix such as .constprop.0 */
    snprintf(name, sizeof name, "%.*s", (int)k, p);
    return name;
}

static int count_sites(const char *text)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, "\ninuse_space=")) != NULL; p++) {
        n++;
    }
    return n;
}

/* Usable bytes of blocks p[from..to): what the layer charges (glibc may hand out a chunk a
 * little larger than usual when the remainder is too small to split). */
static size_t usable_sum(void *const *p, int from, int to)
{
    size_t sum = 0;
    for (int i = from; i < to; i++) {
        sum += malloc_usable_size(p[i]);
    }
    return sum;
}

static size_t usable_of(size_t n)
{
    void *p = malloc(n);
    size_t u = malloc_usable_size(p);
    free(p);
    return u;
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(allocprof_set_rate(1), 0);
    allocprof_reset();
    return 0;
}

/* ---- tests ---- */

static void test_rate_1_records_every_allocation_and_names_its_site(void **state)
{
    void *big[10];
    void *small[3];
    (void)state;
    for (int i = 0; i < 10; i++) {
        big[i] = site_big(1000);
    }
    for (int i = 0; i < 3; i++) {
        small[i] = site_small(24);
    }
    allocprof_stats_t st;
    allocprof_stats(&st);
    assert_int_equal(st.rate, 1);
    assert_int_equal(st.samples, 13);
    assert_int_equal(st.live, 13);
    assert_true(st.sites >= 2); /* stacks: an unrolled loop gives several per site */
    assert_int_equal(st.dropped, 0);

    char *text = profile(ALLOCPROF_INUSE_SPACE, 0, ALLOCPROF_TEXT);
    assert_string_equal(nth_top_frame(text, 0), "site_big");
    assert_string_equal(nth_top_frame(text, 1), "site_small");
    assert_null(strstr(text, "mem_test_malloc")); /* the layer's frames are left out */
    assert_null(strstr(text, "allocprof_"));
    site_vals_t b = site_in(text, "site_big");
    assert_true(b.found);
    assert_int_equal(b.v[ALLOCPROF_INUSE_OBJECTS], 10);
    assert_int_equal(b.v[ALLOCPROF_ALLOC_OBJECTS], 10);
    assert_int_equal(b.v[ALLOCPROF_INUSE_SPACE], usable_sum(big, 0, 10));
    assert_int_equal(b.v[ALLOCPROF_ALLOC_SPACE], usable_sum(big, 0, 10));
    site_vals_t s = site_in(text, "site_small");
    assert_int_equal(s.v[ALLOCPROF_INUSE_OBJECTS], 3);
    assert_non_null(strstr(text, "# ingestd allocation profile: rate=1 sort=inuse_space sites=2 "));
    free(text);
    for (int i = 0; i < 10; i++) {
        mem_test_free(big[i]);
    }
    for (int i = 0; i < 3; i++) {
        mem_test_free(small[i]);
    }
    allocprof_stats(&st);
    assert_int_equal(st.live, 0);
}

static void test_static_functions_are_named_from_the_symbol_table(void **state)
{
    (void)state;
    void *p = site_static(3000);
    void *q = site_big(10);
    char *text = profile(ALLOCPROF_INUSE_SPACE, 0, ALLOCPROF_TEXT);
    assert_string_equal(nth_top_frame(text, 0), "site_static");
    assert_non_null(
        strstr(text, "\n    #1 test_static_functions_are_named_from_the_symbol_table+0x"));
    free(text);
    mem_test_free(p);
    mem_test_free(q);
}

static void test_stacks_differing_only_in_addresses_merge_into_one_site(void **state)
{
    (void)state;
    void *a = site_big(700); /* two calls from this function: two return addresses */
    void *b = site_big(700);
    allocprof_stats_t st;
    allocprof_stats(&st);
    assert_int_equal(st.sites, 2);
    char *text = profile(ALLOCPROF_INUSE_OBJECTS, 0, ALLOCPROF_TEXT);
    assert_int_equal(count_sites(text), 1);
    assert_non_null(strstr(text, " sites=1 stacks=2 shown=1\n"));
    assert_non_null(strstr(text, "inuse_objects=2 alloc_space="));
    assert_non_null(strstr(text, " stacks=2\n    #0 site_big"));
    free(text);
    text = profile(ALLOCPROF_INUSE_OBJECTS, 0, ALLOCPROF_FOLDED);
    assert_int_equal(strchr(text, '\n') - text + 1, (long)strlen(text)); /* one line */
    assert_non_null(strstr(text, ";site_big 2\n"));
    free(text);
    mem_test_free(a);
    mem_test_free(b);
}

static void test_frees_lower_inuse_but_not_alloc(void **state)
{
    void *p[8];
    (void)state;
    for (int i = 0; i < 8; i++) {
        p[i] = site_big(500);
    }
    size_t all = usable_sum(p, 0, 8);
    size_t kept = usable_sum(p, 5, 8);
    for (int i = 0; i < 5; i++) {
        mem_test_free(p[i]);
    }
    char *text = profile(ALLOCPROF_ALLOC_SPACE, 0, ALLOCPROF_TEXT);
    site_vals_t b = site_in(text, "site_big");
    assert_int_equal(b.v[ALLOCPROF_INUSE_OBJECTS], 3);
    assert_int_equal(b.v[ALLOCPROF_INUSE_SPACE], kept);
    assert_int_equal(b.v[ALLOCPROF_ALLOC_OBJECTS], 8);
    assert_int_equal(b.v[ALLOCPROF_ALLOC_SPACE], all);
    free(text);
    for (int i = 5; i < 8; i++) {
        mem_test_free(p[i]);
    }
    /* all freed: gone from the in-use view, still in the cumulative one */
    text = profile(ALLOCPROF_INUSE_SPACE, 0, ALLOCPROF_TEXT);
    assert_false(site_in(text, "site_big").found);
    assert_int_equal(count_sites(text), 0);
    free(text);
    text = profile(ALLOCPROF_ALLOC_OBJECTS, 0, ALLOCPROF_TEXT);
    assert_int_equal(site_in(text, "site_big").v[ALLOCPROF_ALLOC_OBJECTS], 8);
    free(text);
}

static void test_folded_output_is_root_first_frames_and_a_value(void **state)
{
    void *p[4];
    (void)state;
    for (int i = 0; i < 4; i++) {
        p[i] = site_big(2000);
    }
    void *q = site_small(10);
    char *text = profile(ALLOCPROF_INUSE_SPACE, 0, ALLOCPROF_FOLDED);
    int lines = 0;
    int big_lines = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        lines++;
        char *sp = strrchr(line, ' ');
        assert_non_null(sp);
        assert_null(memchr(line, ' ', (size_t)(sp - line))); /* one space: before the value */
        char *end = NULL;
        unsigned long long v = strtoull(sp + 1, &end, 10);
        assert_true(end != sp + 1 && *end == '\0');
        assert_true(v > 0);
        *sp = '\0';
        const char *leaf = strrchr(line, ';');
        assert_non_null(leaf); /* more than one frame */
        leaf++;
        assert_null(strstr(line, "mem_test_malloc"));
        assert_null(strchr(leaf, '+')); /* a named frame carries no offset in folded */
        if (strcmp(leaf, "site_big") == 0) {
            big_lines++;
            assert_int_equal(v, usable_sum(p, 0, 4));
            assert_true(strncmp(line, "site_big", 8) != 0); /* root first, not leaf first */
        }
    }
    assert_int_equal(lines, 2);
    assert_int_equal(big_lines, 1);
    free(text);
    for (int i = 0; i < 4; i++) {
        mem_test_free(p[i]);
    }
    mem_test_free(q);
}

static void test_off_records_nothing_and_leaves_the_countdown_alone(void **state)
{
    (void)state;
    void *kept = site_big(100); /* sampled while on */
    assert_int_equal(allocprof_set_rate(0), 0);
    assert_int_equal(allocprof_rate(), 0);
    int64_t countdown = allocprof_tl_countdown;
    allocprof_stats_t before;
    allocprof_stats(&before);
    for (int i = 0; i < 100; i++) {
        mem_test_free(site_churn(64 + (size_t)i));
    }
    allocprof_stats_t after;
    allocprof_stats(&after);
    assert_int_equal(after.samples, before.samples);
    assert_int_equal(after.sites, before.sites);
    assert_int_equal(allocprof_tl_countdown, countdown);
    /* a block sampled before sampling stopped is still tracked until freed */
    assert_int_equal(after.live, 1);
    mem_test_free(kept);
    allocprof_stats(&after);
    assert_int_equal(after.live, 0);
    assert_int_equal(allocprof_set_rate(1), 0);
}

static void test_sort_keys_order_sites_by_their_own_figure(void **state)
{
    void *big[2];
    void *small[50];
    (void)state;
    for (int i = 0; i < 2; i++) {
        big[i] = site_big(4000);
    }
    for (int i = 0; i < 50; i++) {
        small[i] = site_small(16);
    }
    for (int i = 0; i < 100; i++) {
        mem_test_free(site_churn(1000));
    }
    struct {
        allocprof_sort_t key;
        const char *first;
    } cases[] = {
        {ALLOCPROF_INUSE_SPACE, "site_big"},
        {ALLOCPROF_INUSE_OBJECTS, "site_small"},
        {ALLOCPROF_ALLOC_SPACE, "site_churn"},
        {ALLOCPROF_ALLOC_OBJECTS, "site_churn"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char *text = profile(cases[c].key, 0, ALLOCPROF_TEXT);
        assert_string_equal(nth_top_frame(text, 0), cases[c].first);
        int in_use_view = cases[c].key <= ALLOCPROF_INUSE_OBJECTS;
        assert_int_equal(count_sites(text), in_use_view ? 2 : 3); /* zero rows left out */
        free(text);
        text = profile(cases[c].key, 1, ALLOCPROF_TEXT);
        assert_int_equal(count_sites(text), 1);
        assert_string_equal(nth_top_frame(text, 0), cases[c].first);
        free(text);
    }
    char *text = profile(ALLOCPROF_INUSE_OBJECTS, 0, ALLOCPROF_TEXT);
    assert_string_equal(nth_top_frame(text, 1), "site_big");
    free(text);
    for (int i = 0; i < 2; i++) {
        mem_test_free(big[i]);
    }
    for (int i = 0; i < 50; i++) {
        mem_test_free(small[i]);
    }
}

enum { SAMPLED_SMALL = 20000, SAMPLED_BIG = 64 };

typedef struct {
    site_vals_t small, big;
    allocprof_stats_t during, after;
    double true_small, true_big;
} sampled_result_t;

/* Allocates and frees on its own thread; the main thread asserts (cmocka's failures must not
 * longjmp across threads). */
static void *sampled_run(void *arg)
{
    sampled_result_t *r = arg;
    static void *small[SAMPLED_SMALL];
    static void *big[SAMPLED_BIG];
    for (int i = 0; i < SAMPLED_SMALL; i++) {
        small[i] = site_small(64);
    }
    for (int i = 0; i < SAMPLED_BIG; i++) {
        big[i] = site_big(64 * 1024);
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f != NULL) {
        allocprof_write(f, ALLOCPROF_INUSE_SPACE, 0, ALLOCPROF_TEXT);
        fclose(f);
        r->small = site_in(buf, "site_small");
        r->big = site_in(buf, "site_big");
        free(buf);
    }
    r->true_small = (double)SAMPLED_SMALL * (double)usable_of(64);
    r->true_big = (double)SAMPLED_BIG * (double)usable_of(64 * 1024);
    allocprof_stats(&r->during);
    for (int i = 0; i < SAMPLED_SMALL; i++) {
        mem_test_free(small[i]);
    }
    for (int i = 0; i < SAMPLED_BIG; i++) {
        mem_test_free(big[i]);
    }
    allocprof_stats(&r->after);
    return NULL;
}

/* Runs on a fresh thread so its countdown starts at the new rate. */
static void test_byte_rate_samples_and_scales_without_size_bias(void **state)
{
    pthread_t t;
    sampled_result_t r;
    (void)state;
    memset(&r, 0, sizeof r);
    assert_int_equal(allocprof_set_rate(4096), 0);
    assert_int_equal(pthread_create(&t, NULL, sampled_run, &r), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(allocprof_set_rate(1), 0);
    /* ~350 samples of the small site: the estimate is within a few percent; 25% is > 5 sigma */
    assert_true(r.small.found);
    assert_true((double)r.small.v[ALLOCPROF_INUSE_SPACE] > 0.75 * r.true_small);
    assert_true((double)r.small.v[ALLOCPROF_INUSE_SPACE] < 1.25 * r.true_small);
    /* blocks 16x the rate are sampled with probability 1 - e^-16: all counted, weight ~1 */
    assert_true((double)r.big.v[ALLOCPROF_INUSE_SPACE] > 0.95 * r.true_big);
    assert_true((double)r.big.v[ALLOCPROF_INUSE_SPACE] < 1.05 * r.true_big);
    assert_true(r.during.samples < SAMPLED_SMALL / 10); /* sampled, not recorded one by one */
    assert_int_equal(r.after.live, 0);
}

enum { THREADS = 4, PER_THREAD = 1500 };

static void *churn_thread(void *arg)
{
    (void)arg;
    void *keep[16];
    for (int i = 0; i < PER_THREAD; i++) {
        void *p = site_churn(32 + (size_t)(i % 200));
        keep[i % 16] = p;
        if (i % 16 == 15) {
            for (int k = 0; k < 16; k++) {
                mem_test_free(keep[k]);
            }
        }
    }
    for (int k = 0; k < PER_THREAD % 16; k++) {
        mem_test_free(keep[k]);
    }
    return NULL;
}

static void *writer_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 5; i++) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (f == NULL) {
            return (void *)1;
        }
        int rc = allocprof_write(f, (allocprof_sort_t)(i % 4), 10, (allocprof_format_t)(i % 2));
        fclose(f);
        free(buf);
        if (rc != 0) {
            return (void *)1;
        }
    }
    return NULL;
}

static void test_threads_sample_and_free_concurrently(void **state)
{
    pthread_t t[THREADS];
    pthread_t w;
    void *wrc = NULL;
    (void)state;
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, churn_thread, NULL), 0);
    }
    assert_int_equal(pthread_create(&w, NULL, writer_thread, NULL), 0);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
    }
    assert_int_equal(pthread_join(w, &wrc), 0);
    assert_null(wrc);
    allocprof_stats_t st;
    allocprof_stats(&st);
    assert_int_equal(st.samples, THREADS * PER_THREAD);
    assert_int_equal(st.live, 0);
    char *text = profile(ALLOCPROF_ALLOC_OBJECTS, 0, ALLOCPROF_TEXT);
    assert_string_equal(nth_top_frame(text, 0), "site_churn");
    assert_non_null(strstr(text, "total inuse_space=0 inuse_objects=0"));
    char want[64];
    snprintf(want, sizeof want, "alloc_objects=%d\n", THREADS * PER_THREAD);
    assert_non_null(strstr(text, want));
    free(text);
}

static void test_reset_forgets_sites_and_ignores_earlier_blocks(void **state)
{
    (void)state;
    void *p = site_big(100);
    allocprof_reset();
    allocprof_stats_t st;
    allocprof_stats(&st);
    assert_int_equal(st.samples, 0);
    assert_int_equal(st.sites, 0);
    assert_int_equal(st.live, 0);
    mem_test_free(p); /* not known any more: ignored */
    allocprof_stats(&st);
    assert_int_equal(st.live, 0);
    char *text = profile(ALLOCPROF_ALLOC_SPACE, 0, ALLOCPROF_TEXT);
    assert_int_equal(count_sites(text), 0);
    free(text);
}

static void test_names_parse_and_bad_arguments_are_rejected(void **state)
{
    allocprof_sort_t k = ALLOCPROF_ALLOC_OBJECTS;
    allocprof_format_t f = ALLOCPROF_FOLDED;
    (void)state;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(allocprof_sort_parse(allocprof_sort_name((allocprof_sort_t)i), &k), 0);
        assert_int_equal(k, i);
    }
    assert_int_equal(allocprof_sort_parse("inuse", &k), -EINVAL);
    assert_int_equal(allocprof_sort_parse(NULL, &k), -EINVAL);
    assert_int_equal(k, ALLOCPROF_ALLOC_OBJECTS);
    assert_int_equal(allocprof_format_parse("text", &f), 0);
    assert_int_equal(f, ALLOCPROF_TEXT);
    assert_int_equal(allocprof_format_parse("folded", &f), 0);
    assert_int_equal(f, ALLOCPROF_FOLDED);
    assert_int_equal(allocprof_format_parse("svg", &f), -EINVAL);
    assert_int_equal(allocprof_write(stderr, (allocprof_sort_t)7, 0, ALLOCPROF_TEXT), -EINVAL);
    assert_int_equal(allocprof_write(stderr, ALLOCPROF_ALLOC_SPACE, 0, (allocprof_format_t)9),
                     -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_rate_1_records_every_allocation_and_names_its_site, setup),
        cmocka_unit_test_setup(test_static_functions_are_named_from_the_symbol_table, setup),
        cmocka_unit_test_setup(test_stacks_differing_only_in_addresses_merge_into_one_site, setup),
        cmocka_unit_test_setup(test_frees_lower_inuse_but_not_alloc, setup),
        cmocka_unit_test_setup(test_folded_output_is_root_first_frames_and_a_value, setup),
        cmocka_unit_test_setup(test_off_records_nothing_and_leaves_the_countdown_alone, setup),
        cmocka_unit_test_setup(test_sort_keys_order_sites_by_their_own_figure, setup),
        cmocka_unit_test_setup(test_byte_rate_samples_and_scales_without_size_bias, setup),
        cmocka_unit_test_setup(test_threads_sample_and_free_concurrently, setup),
        cmocka_unit_test_setup(test_reset_forgets_sites_and_ignores_earlier_blocks, setup),
        cmocka_unit_test_setup(test_names_parse_and_bad_arguments_are_rejected, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
