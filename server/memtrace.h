/* memtrace.h - the --memtrace line (INGESTD_DEBUG=memtrace=1): one line per pool trim cycle on
 * stderr, like Go's GODEBUG=gctrace=1, formatted from a plain struct; plus the parser tests and
 * tools use to read it back. */
#ifndef INGESTD_MEMTRACE_H
#define INGESTD_MEMTRACE_H

#include <stddef.h>
#include <stdint.h>

/* What started the trim. */
typedef enum {
    SRV_TRIM_TIMER = 0, /* the --trim-interval timer */
    SRV_TRIM_LIMIT = 1, /* memory above --memory-limit */
    SRV_TRIM_ADMIN = 2, /* POST /debug/trim */
} srv_trim_reason_t;

/* One trim cycle, gathered by the control thread. Blocks are pool blocks summed over workers. */
typedef struct {
    uint64_t cycle;          /* 1 for the first trim since start, then +1 */
    uint64_t since_start_us; /* when the trim began, microseconds since start-up */
    uint64_t duration_ns;    /* how long the trim took, over every worker */
    uint64_t in_use_before;  /* blocks handed out, before the trim */
    uint64_t in_use_after;
    uint64_t idle_before; /* blocks cached idle, before the trim */
    uint64_t idle_after;
    uint64_t released_bytes; /* bytes of blocks given back to the allocator by this trim */
    uint64_t live_bytes;     /* ingestd_memstats_alloc_bytes after the trim */
    uint64_t sys_bytes;      /* ingestd_memstats_sys_bytes after the trim */
    uint64_t rss_bytes;      /* process_resident_memory_bytes after the trim */
    srv_trim_reason_t reason;
} srv_memtrace_t;

/* Longest line srv_memtrace_format writes, newline and NUL included. */
#define SRV_MEMTRACE_LINE_MAX 320

/* Writes one line, ending in '\n', into buf (NUL-terminated, truncated to size):
 *
 *   memtrace cycle=12 t=35.012s trim=0.084ms reason=timer in_use=120->118 idle=300->150
 *   released=614400 live=12582912 sys=20971520 rss=25165824
 *
 * (one line; wrapped here). The field order and names are stable; new fields, if any, are added
 * at the end. t has millisecond precision, trim microsecond precision (both truncated); every
 * size is a plain decimal count of bytes, every count a plain decimal. Returns the length of the
 * whole line (like snprintf). Pure; any thread. */
size_t srv_memtrace_format(const srv_memtrace_t *m, char *buf, size_t size);

/* Parses a line written by srv_memtrace_format (a trailing '\n' is optional). t and trim come
 * back at their printed precision. Returns 0, or -EINVAL for anything else (out untouched). */
int srv_memtrace_parse(const char *line, srv_memtrace_t *out);

/* "timer", "limit", "admin". */
const char *srv_trim_reason_name(srv_trim_reason_t r);

/* Formats m and writes the line to fd with one write(2), so lines from threads never
 * interleave. Returns 0 or -errno. */
int srv_memtrace_emit(int fd, const srv_memtrace_t *m);

/* Reads INGESTD_DEBUG's value, a GODEBUG-style comma-separated list of name=value settings:
 * returns 1 when it sets memtrace to a non-zero integer ("memtrace=1"), else 0 (also for NULL,
 * "memtrace=0" and unknown names; a later setting wins). */
int srv_debug_memtrace(const char *ingestd_debug);

#endif
