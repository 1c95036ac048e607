/* mem.c - the counting allocator layer: glibc or a dlopen'd mimalloc underneath, every block
 * charged at its usable size into per-thread cache-line-padded slots (Redis zmalloc style). */
#include "mem/mem.h"

#include "base/counter.h"
#include "mem/allocprof.h"

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MEM_SLOTS 256
#define MEM_CACHE_LINE 64

/* One thread's counters. The owner updates with a relaxed load and a relaxed store (no lock
 * prefix); readers sum with relaxed loads. The shared overflow slot uses atomic adds instead. */
typedef struct {
    alignas(MEM_CACHE_LINE) _Atomic uint64_t mallocs;
    _Atomic uint64_t frees;
    _Atomic uint64_t bytes_alloc;
    _Atomic uint64_t bytes_freed;
} slot_t;

_Static_assert(sizeof(slot_t) == MEM_CACHE_LINE, "one slot per cache line");

static slot_t slots[MEM_SLOTS];
static slot_t shared_slot;
static _Atomic unsigned slots_claimed;
static _Thread_local slot_t *my_slot;

/* -1: off; n >= 0: the (n+1)-th next allocation fails. */
static _Atomic int64_t fail_countdown = -1;

typedef void *(*malloc_fn)(size_t);
typedef void *(*calloc_fn)(size_t, size_t);
typedef void *(*realloc_fn)(void *, size_t);
typedef void (*free_fn)(void *);
typedef size_t (*usable_fn)(const void *);

static size_t libc_usable(const void *p)
{
    return malloc_usable_size((void *)p);
}

/* The allocator under the layer. Written once by mem_init before other threads start (its
 * contract), read-only afterwards. */
static malloc_fn a_malloc = malloc;
static calloc_fn a_calloc = calloc;
static realloc_fn a_realloc = realloc;
static free_fn a_free = free;
static usable_fn a_usable = libc_usable;
static mem_allocator_t a_which = MEM_ALLOCATOR_LIBC;
static bool a_inited;

/* mimalloc, reached only through dlsym on a RTLD_LOCAL handle so its exported malloc/free never
 * interpose glibc's (STYLE.md, "Allocator pitfall"). Loaded once (pthread_once). */
static struct {
    bool ok;
    malloc_fn malloc;
    calloc_fn calloc;
    realloc_fn realloc;
    free_fn free;
    usable_fn usable_size;
    void (*process_info)(size_t *, size_t *, size_t *, size_t *, size_t *, size_t *, size_t *,
                         size_t *);
    void (*stats_print_out)(void (*)(const char *, void *), void *);
    void (*collect)(bool);
    bool (*is_in_heap_region)(const void *);
    bool (*check_owned)(const void *);
} mi;
static pthread_once_t mi_once = PTHREAD_ONCE_INIT;
static char last_error[256];

static int resolve(void *handle, const char *name, void *fnptr, size_t fnsize)
{
    void *sym = dlsym(handle, name);
    if (sym == NULL) {
        const char *e = dlerror();
        snprintf(last_error, sizeof last_error, "%s", e ? e : name);
        return -1;
    }
    /* ISO C has no void * to function pointer conversion; POSIX guarantees the representation. */
    memcpy(fnptr, &sym, fnsize);
    return 0;
}

#define RESOLVE(h, field, name) resolve(h, name, &mi.field, sizeof mi.field)

static void mi_load(void)
{
    void *h = dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *e = dlerror();
        snprintf(last_error, sizeof last_error, "%s", e ? e : "dlopen libmimalloc.so.2 failed");
        return;
    }
    if (RESOLVE(h, malloc, "mi_malloc") || RESOLVE(h, calloc, "mi_calloc") ||
        RESOLVE(h, realloc, "mi_realloc") || RESOLVE(h, free, "mi_free") ||
        RESOLVE(h, usable_size, "mi_usable_size") || RESOLVE(h, process_info, "mi_process_info") ||
        RESOLVE(h, stats_print_out, "mi_stats_print_out") || RESOLVE(h, collect, "mi_collect") ||
        RESOLVE(h, is_in_heap_region, "mi_is_in_heap_region") ||
        RESOLVE(h, check_owned, "mi_check_owned")) {
        return; /* the handle stays open: dlclose of an allocator is never safe */
    }
    mi.ok = true;
}

static slot_t *slot_claim(void)
{
    slot_t *s = &shared_slot;
    if (atomic_load_explicit(&slots_claimed, memory_order_relaxed) < MEM_SLOTS) {
        unsigned i = atomic_fetch_add_explicit(&slots_claimed, 1, memory_order_relaxed);
        if (i < MEM_SLOTS) {
            s = &slots[i];
        }
    }
    my_slot = s;
    return s;
}

static inline slot_t *slot_get(void)
{
    slot_t *s = my_slot;
    if (__builtin_expect(s == NULL, 0)) {
        s = slot_claim();
    }
    return s;
}

static inline void bump(slot_t *s, _Atomic uint64_t *c, uint64_t n)
{
    if (__builtin_expect(s == &shared_slot, 0)) {
        atomic_fetch_add_explicit(c, n, memory_order_relaxed);
    } else {
        base_counter_add(c, n);
    }
}

static inline void charge_alloc(void *p)
{
    slot_t *s = slot_get();
    size_t usable = a_usable(p);
    bump(s, &s->mallocs, 1);
    bump(s, &s->bytes_alloc, usable);
    allocprof_on_alloc(p, usable);
}

static int fail_slow(void)
{
    int64_t v = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    while (v >= 0) {
        if (atomic_compare_exchange_weak_explicit(&fail_countdown, &v, v - 1, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            return v == 0;
        }
    }
    return 0;
}

/* True when this allocation must fail (test hook). One relaxed load when the hook is off. */
static inline int fail_now(void)
{
    if (__builtin_expect(atomic_load_explicit(&fail_countdown, memory_order_relaxed) < 0, 1)) {
        return 0;
    }
    return fail_slow();
}

int mem_init(mem_allocator_t which)
{
    if (which != MEM_ALLOCATOR_LIBC && which != MEM_ALLOCATOR_MIMALLOC) {
        return -EINVAL;
    }
    if (a_inited) {
        return which == a_which ? 0 : -EBUSY;
    }
    if (which == MEM_ALLOCATOR_MIMALLOC) {
        mem_stats_t st;
        mem_stats(&st);
        if (st.mallocs != 0) {
            snprintf(last_error, sizeof last_error,
                     "mem_init: %llu blocks already allocated from glibc",
                     (unsigned long long)st.mallocs);
            return -EBUSY;
        }
        pthread_once(&mi_once, mi_load);
        if (!mi.ok) {
            return -ENOENT;
        }
        a_malloc = mi.malloc;
        a_calloc = mi.calloc;
        a_realloc = mi.realloc;
        a_free = mi.free;
        a_usable = mi.usable_size;
    }
    a_which = which;
    a_inited = true;
    return 0;
}

const char *mem_last_error(void)
{
    return last_error;
}

mem_allocator_t mem_allocator(void)
{
    return a_which;
}

const char *mem_allocator_name(mem_allocator_t which)
{
    return which == MEM_ALLOCATOR_MIMALLOC ? "mimalloc" : "libc";
}

int mem_allocator_parse(const char *name, mem_allocator_t *out)
{
    if (name != NULL && strcmp(name, "libc") == 0) {
        *out = MEM_ALLOCATOR_LIBC;
        return 0;
    }
    if (name != NULL && strcmp(name, "mimalloc") == 0) {
        *out = MEM_ALLOCATOR_MIMALLOC;
        return 0;
    }
    return -EINVAL;
}

void *mem_malloc(size_t size)
{
    if (fail_now()) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = a_malloc(size);
    if (p != NULL) {
        charge_alloc(p);
    }
    return p;
}

void *mem_calloc(size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    if (fail_now()) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = a_calloc(n, size);
    if (p != NULL) {
        charge_alloc(p);
    }
    return p;
}

void *mem_realloc(void *ptr, size_t size)
{
    if (ptr == NULL) {
        return mem_malloc(size);
    }
    if (size == 0) {
        mem_free(ptr);
        return NULL;
    }
    if (fail_now()) {
        errno = ENOMEM;
        return NULL;
    }
    size_t old_usable = a_usable(ptr);
    uintptr_t old_addr = (uintptr_t)ptr;
    allocprof_on_free(ptr, old_usable); /* before the allocator may hand the address out again */
    void *q = a_realloc(ptr, size);
    if (q == NULL) {
        return NULL; /* ptr untouched (no longer in the allocation profile) */
    }
    size_t new_usable = a_usable(q);
    allocprof_on_alloc(q, new_usable);
    slot_t *s = slot_get();
    if ((uintptr_t)q != old_addr) {
        bump(s, &s->mallocs, 1);
        bump(s, &s->frees, 1);
        bump(s, &s->bytes_alloc, new_usable);
        bump(s, &s->bytes_freed, old_usable);
    } else if (new_usable >= old_usable) {
        bump(s, &s->bytes_alloc, new_usable - old_usable);
    } else {
        bump(s, &s->bytes_freed, old_usable - new_usable);
    }
    return q;
}

void mem_free(void *ptr)
{
    if (ptr == NULL) {
        return;
    }
    slot_t *s = slot_get();
    size_t usable = a_usable(ptr);
    bump(s, &s->frees, 1);
    bump(s, &s->bytes_freed, usable);
    allocprof_on_free(ptr, usable); /* before the allocator may hand the address out again */
    a_free(ptr);
}

char *mem_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = mem_malloc(n);
    if (d != NULL) {
        memcpy(d, s, n);
    }
    return d;
}

static void slot_add(const slot_t *s, uint64_t sum[4])
{
    sum[0] += atomic_load_explicit(&s->mallocs, memory_order_relaxed);
    sum[1] += atomic_load_explicit(&s->frees, memory_order_relaxed);
    sum[3] += atomic_load_explicit(&s->bytes_freed, memory_order_relaxed);
    sum[2] += atomic_load_explicit(&s->bytes_alloc, memory_order_relaxed);
}

void mem_stats(mem_stats_t *out)
{
    uint64_t sum[4] = {0, 0, 0, 0};
    unsigned n = atomic_load_explicit(&slots_claimed, memory_order_relaxed);
    if (n > MEM_SLOTS) {
        n = MEM_SLOTS;
    }
    for (unsigned i = 0; i < n; i++) {
        slot_add(&slots[i], sum);
    }
    slot_add(&shared_slot, sum);
    out->mallocs = sum[0];
    out->frees = sum[1];
    out->alloc_bytes_total = sum[2];
    out->alloc_bytes = (int64_t)(sum[2] - sum[3]);
}

uint64_t mem_sys_bytes(void)
{
    if (a_which == MEM_ALLOCATOR_MIMALLOC) {
        size_t elapsed, user, sys, rss, peak_rss, commit = 0, peak_commit, faults;
        mi.process_info(&elapsed, &user, &sys, &rss, &peak_rss, &commit, &peak_commit, &faults);
        return commit;
    }
    struct mallinfo2 m = mallinfo2();
    return (uint64_t)m.arena + (uint64_t)m.hblkhd;
}

void mem_release_to_os(void)
{
    if (a_which == MEM_ALLOCATOR_MIMALLOC) {
        mi.collect(true);
    } else {
        malloc_trim(0);
    }
}

static void report_out_cb(const char *msg, void *arg)
{
    fputs(msg, (FILE *)arg);
}

int mem_write_report(FILE *out)
{
    if (a_which == MEM_ALLOCATOR_MIMALLOC) {
        mi.stats_print_out(report_out_cb, out);
    } else if (malloc_info(0, out) != 0) {
        return -errno;
    }
    if (fflush(out) != 0 || ferror(out)) {
        return -EIO;
    }
    return 0;
}

void mem_fail_after(int64_t fail_after)
{
    atomic_store_explicit(&fail_countdown, fail_after < 0 ? -1 : fail_after, memory_order_relaxed);
}

int mem_owned_by_mimalloc(const void *p)
{
    pthread_once(&mi_once, mi_load);
    if (!mi.ok) {
        return -ENOENT;
    }
    /* mimalloc 2.0's segment map covers addresses below 20 TiB only; where the OS places
     * segments higher (under ASan, whose shadow takes mimalloc's hinted range), fall back to a
     * walk of the calling thread's heap. */
    return mi.is_in_heap_region(p) || mi.check_owned(p) ? 1 : 0;
}
