/* mem.h - the counting allocator layer: every allocation of the process that we route (our code,
 * libuv, jansson) goes through mem_malloc & co, charged at its usable size into per-thread
 * counters, served by the allocator chosen at start-up (glibc or mimalloc). */
#ifndef INGESTD_MEM_H
#define INGESTD_MEM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    MEM_ALLOCATOR_LIBC = 0,
    MEM_ALLOCATOR_MIMALLOC = 1,
} mem_allocator_t;

/* Selects the allocator under the layer. mimalloc is reached through
 * dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL) and dlsym, never linked: Debian's
 * libmimalloc.so exports malloc/free itself and linking it would silently replace glibc's for
 * the whole process (STYLE.md, "Allocator pitfall"). Call once, at start-up, before any
 * allocation through the layer and before other threads start. Without a call the layer serves
 * from glibc. Returns 0; -ENOENT when libmimalloc cannot be loaded (dlerror text via
 * mem_last_error()); -EINVAL for an unknown value; -EBUSY when called again with another
 * allocator, or asked for mimalloc after blocks were already allocated from glibc. */
int mem_init(mem_allocator_t which);
const char *mem_last_error(void);
mem_allocator_t mem_allocator(void);
const char *mem_allocator_name(mem_allocator_t which); /* "libc" or "mimalloc" */
/* Parses "libc" or "mimalloc" into *out. Returns 0 or -EINVAL (out untouched). */
int mem_allocator_parse(const char *name, mem_allocator_t *out);

/* Drop-in malloc family (C semantics: NULL and errno ENOMEM on failure, free(NULL) does
 * nothing). calloc whose n * size overflows returns NULL. realloc(NULL, n) is malloc(n);
 * realloc(p, 0) frees p and returns NULL in both modes. Any thread. */
void *mem_malloc(size_t size);
void *mem_calloc(size_t n, size_t size);
void *mem_realloc(void *ptr, size_t size);
void mem_free(void *ptr);
char *mem_strdup(const char *s);

/* Process-wide totals, summed over per-thread cache-line-padded slots (relaxed atomic loads).
 * Any thread. */
/* A realloc that moves the block counts one malloc and one free (so mallocs - frees is the
 * number of live blocks); one that stays in place moves only the byte figures. Each thread
 * charges its own slot (Redis zmalloc style); a thread keeps its slot until the process ends, and
 * threads beyond the 256 slots share one slot updated with atomic adds. */
typedef struct {
    uint64_t mallocs;           /* successful allocations (malloc, calloc, realloc of NULL) */
    uint64_t frees;             /* frees of non-NULL pointers (and realloc to a new block) */
    uint64_t alloc_bytes_total; /* usable bytes ever allocated */
    int64_t alloc_bytes;        /* live usable bytes */
} mem_stats_t;
void mem_stats(mem_stats_t *out);

/* Bytes the allocator holds from the OS: mimalloc's committed bytes (mi_process_info), or
 * glibc's mallinfo2() arena + hblkhd. Any thread. */
uint64_t mem_sys_bytes(void);

/* Returns free memory to the OS: mi_collect(true) or malloc_trim(0). Any thread. */
void mem_release_to_os(void);

/* Writes the allocator's own report: mimalloc's statistics, or glibc's malloc_info XML. */
int mem_write_report(FILE *out);

/* Test hook: while fail_after >= 0, the (fail_after+1)-th next allocation through the layer on
 * any thread fails with NULL and the counter returns to -1. -1 disables. */
void mem_fail_after(int64_t fail_after);

/* Test hook proving which allocator really serves: 1 when p lies in mimalloc's heap, 0 when not,
 * -ENOENT when libmimalloc cannot be loaded. Asks mi_is_in_heap_region (mimalloc's segment map,
 * which covers addresses below 20 TiB), then mi_check_owned (a walk of the calling thread's
 * mimalloc heap): so for blocks above 20 TiB (as under ASan) it is exact only on the thread that
 * allocated p. In libc mode it loads libmimalloc (RTLD_LOCAL) on first call just to ask. */
int mem_owned_by_mimalloc(const void *p);

#endif
