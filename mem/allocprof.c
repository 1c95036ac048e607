/* allocprof.c - the allocation-site profile: per-thread exponential sampling, a lock-free
 * lookup table of live sampled blocks, a table of call stacks with scaled counts, and text and
 * folded output symbolized with dladdr. */
#include "mem/allocprof.h"

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <link.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LIVE_WAYS 8 /* one 64-byte bucket of keys */
#define LIVE_BUCKETS (1u << ALLOCPROF_LIVE_BITS)
#define SITE_SLOTS (ALLOCPROF_MAX_SITES * 2) /* open-addressing index, at most half full */
#define STRIP_SCAN 6                         /* frames searched for mem_* and allocprof_* */
#define MAX_DRAW ((int64_t)1 << 50)

_Static_assert(LIVE_BUCKETS *LIVE_WAYS == ALLOCPROF_MAX_LIVE, "live table size");

typedef struct {
    uint32_t site;
    uint64_t size;
    double weight;
} live_meta_t;

typedef struct {
    uint64_t hash;
    uint32_t depth;
    void *pc[ALLOCPROF_MAX_DEPTH];
    double v[4]; /* indexed by allocprof_sort_t */
} site_t;

/* Mapped once by the first non-zero allocprof_set_rate and never unmapped. keys is read without
 * the lock by frees (an address is only ever looked up by the thread freeing it, which owns the
 * block); everything else is read and written under `lock`. */
typedef struct {
    _Atomic uintptr_t keys[ALLOCPROF_MAX_LIVE]; /* 0: empty */
    live_meta_t meta[ALLOCPROF_MAX_LIVE];
    uint32_t site_index[SITE_SLOTS];   /* site number + 1; 0: empty */
    site_t sites[ALLOCPROF_MAX_SITES]; /* sites[0] is "(other)": stacks beyond the table */
} tables_t;

/* The profiler is process-wide by nature (it sits under every allocation), so its state is a
 * set of file-level globals, all here: the hot pair the inline hooks read, the tables, and the
 * counters guarded by `lock`. */
allocprof_hot_t allocprof_hot;
_Thread_local int64_t allocprof_tl_countdown; /* bytes left until this thread's next sample */
_Atomic uint8_t allocprof_bucket_fill[1u << ALLOCPROF_LIVE_BITS]; /* written under lock */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(tables_t *) tables_ptr;
static _Atomic uint32_t rate_gen; /* bumped by each set_rate, so threads redraw their countdown */
static uint32_t n_sites;          /* under lock */
static uint64_t n_samples;        /* under lock */
static uint64_t n_dropped;        /* under lock */

static _Thread_local uint64_t tl_rng;
static _Thread_local uint32_t tl_gen;
static _Thread_local int tl_busy; /* recording: allocations made meanwhile are not sampled */

static const char *const sort_names[4] = {"inuse_space", "inuse_objects", "alloc_space",
                                          "alloc_objects"};

static uint64_t rng_next(void)
{
    uint64_t x = tl_rng;
    if (x == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        x = (uint64_t)(uintptr_t)&tl_rng ^ ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec;
        x = (x ^ (x >> 31)) * 0x9E3779B97F4A7C15ull;
        if (x == 0) {
            x = 0x2545F4914F6CDD1Dull;
        }
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    tl_rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Bytes until the next sample: exponential with mean rate (every allocation at rate 1). */
static int64_t draw(uint64_t rate)
{
    if (rate <= 1) {
        return 0;
    }
    double u = (double)((rng_next() >> 11) + 1) * 0x1p-53; /* (0, 1] */
    double x = -log(u) * (double)rate;
    if (x >= (double)MAX_DRAW) {
        return MAX_DRAW;
    }
    return (int64_t)x;
}

/* Objects one sample of `size` bytes stands for: 1 / P(sampled) = 1 / (1 - exp(-size/rate)). */
static double weight(size_t size, uint64_t rate)
{
    if (rate <= 1 || size == 0) {
        return 1.0;
    }
    return 1.0 / -expm1(-(double)size / (double)rate);
}

static uint64_t stack_hash(void *const *pcs, int depth)
{
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)depth;
    for (int i = 0; i < depth; i++) {
        h = (h ^ (uint64_t)(uintptr_t)pcs[i]) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h;
}

/* Under lock. Returns the site for this stack, creating it; sites[0] when the table is full. */
static uint32_t site_find(tables_t *t, void *const *pcs, int depth)
{
    uint64_t h = stack_hash(pcs, depth);
    size_t mask = SITE_SLOTS - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint32_t idx = t->site_index[i];
        if (idx == 0) {
            if (n_sites >= ALLOCPROF_MAX_SITES) {
                return 0;
            }
            uint32_t si = n_sites++;
            site_t *s = &t->sites[si];
            memset(s, 0, sizeof *s);
            s->hash = h;
            s->depth = (uint32_t)depth;
            memcpy(s->pc, pcs, (size_t)depth * sizeof pcs[0]);
            t->site_index[i] = si + 1;
            return si;
        }
        site_t *s = &t->sites[idx - 1];
        if (s->hash == h && s->depth == (uint32_t)depth &&
            memcmp(s->pc, pcs, (size_t)depth * sizeof pcs[0]) == 0) {
            return idx - 1;
        }
    }
}

/* Under lock: forgets live entry i and takes it out of its site's in-use figures. */
static void live_remove(tables_t *t, size_t i)
{
    const live_meta_t *m = &t->meta[i];
    site_t *s = &t->sites[m->site];
    s->v[ALLOCPROF_INUSE_OBJECTS] -= m->weight;
    s->v[ALLOCPROF_INUSE_SPACE] -= m->weight * (double)m->size;
    atomic_store_explicit(&t->keys[i], 0, memory_order_relaxed);
    size_t b = i / LIVE_WAYS;
    atomic_store_explicit(
        &allocprof_bucket_fill[b],
        (uint8_t)(atomic_load_explicit(&allocprof_bucket_fill[b], memory_order_relaxed) - 1),
        memory_order_relaxed);
    atomic_fetch_sub_explicit(&allocprof_hot.live, 1, memory_order_relaxed);
}

static void record(void *ptr, size_t usable, uint64_t rate, void *const *pcs, int depth)
{
    double w = weight(usable, rate);
    uintptr_t key = (uintptr_t)ptr;
    pthread_mutex_lock(&lock);
    tables_t *t = atomic_load_explicit(&tables_ptr, memory_order_relaxed);
    if (t == NULL) {
        pthread_mutex_unlock(&lock);
        return;
    }
    uint32_t si = site_find(t, pcs, depth);
    site_t *s = &t->sites[si];
    s->v[ALLOCPROF_ALLOC_OBJECTS] += w;
    s->v[ALLOCPROF_ALLOC_SPACE] += w * (double)usable;
    n_samples++;
    size_t bucket = allocprof_bucket(ptr);
    size_t b = bucket * LIVE_WAYS;
    size_t slot = SIZE_MAX;
    for (size_t j = b; j < b + LIVE_WAYS; j++) {
        if (atomic_load_explicit(&t->keys[j], memory_order_relaxed) == key) {
            live_remove(t, j); /* its free was never reported: the address is ours again */
        }
    }
    for (size_t j = b; j < b + LIVE_WAYS && slot == SIZE_MAX; j++) {
        if (atomic_load_explicit(&t->keys[j], memory_order_relaxed) == 0) {
            slot = j;
        }
    }
    if (slot == SIZE_MAX) {
        n_dropped++;
    } else {
        t->meta[slot] = (live_meta_t){.site = si, .size = usable, .weight = w};
        s->v[ALLOCPROF_INUSE_OBJECTS] += w;
        s->v[ALLOCPROF_INUSE_SPACE] += w * (double)usable;
        atomic_store_explicit(
            &allocprof_bucket_fill[bucket],
            (uint8_t)(atomic_load_explicit(&allocprof_bucket_fill[bucket], memory_order_relaxed) +
                      1),
            memory_order_relaxed);
        atomic_fetch_add_explicit(&allocprof_hot.live, 1, memory_order_relaxed);
        atomic_store_explicit(&t->keys[slot], key, memory_order_release);
    }
    pthread_mutex_unlock(&lock);
}

void allocprof_sample_slow(void *ptr, size_t usable)
{
    uint64_t rate = atomic_load_explicit(&allocprof_hot.rate, memory_order_relaxed);
    if (rate == 0 || ptr == NULL || tl_busy) {
        return;
    }
    tl_busy = 1;
    uint32_t gen = atomic_load_explicit(&rate_gen, memory_order_relaxed);
    if (tl_gen != gen) {
        /* First sample on this thread, or the rate changed: start a countdown at this rate. */
        tl_gen = gen;
        int64_t left = draw(rate) - (int64_t)usable;
        allocprof_tl_countdown = left;
        if (left > 0) {
            tl_busy = 0;
            return;
        }
    }
    allocprof_tl_countdown = draw(rate);
    void *pcs[ALLOCPROF_MAX_DEPTH + 1];
    int n = backtrace(pcs, ALLOCPROF_MAX_DEPTH + 1);
    /* pcs[0] is this function; pcs[1] the hook's caller in the counting layer. */
    record(ptr, usable, rate, pcs + 1, n > 1 ? n - 1 : 0);
    tl_busy = 0;
}

void allocprof_free_slow(void *ptr, size_t bucket)
{
    tables_t *t = atomic_load_explicit(&tables_ptr, memory_order_acquire);
    uintptr_t key = (uintptr_t)ptr;
    if (t == NULL || key == 0) {
        return;
    }
    size_t b = bucket * LIVE_WAYS;
    for (size_t j = b; j < b + LIVE_WAYS; j++) {
        if (atomic_load_explicit(&t->keys[j], memory_order_relaxed) == key) {
            pthread_mutex_lock(&lock);
            if (atomic_load_explicit(&t->keys[j], memory_order_relaxed) == key) {
                live_remove(t, j);
            }
            pthread_mutex_unlock(&lock);
            return;
        }
    }
}

int allocprof_set_rate(uint64_t bytes)
{
    if (bytes != 0 && atomic_load_explicit(&tables_ptr, memory_order_acquire) == NULL) {
        pthread_mutex_lock(&lock);
        if (atomic_load_explicit(&tables_ptr, memory_order_relaxed) == NULL) {
            void *m = mmap(NULL, sizeof(tables_t), PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED) {
                pthread_mutex_unlock(&lock);
                return -ENOMEM;
            }
            n_sites = 1;
            atomic_store_explicit(&tables_ptr, (tables_t *)m, memory_order_release);
        }
        pthread_mutex_unlock(&lock);
        /* glibc loads libgcc_s on the first backtrace: do it now, not inside a sample. */
        void *warm[4];
        (void)backtrace(warm, 4);
    }
    atomic_fetch_add_explicit(&rate_gen, 1, memory_order_relaxed);
    atomic_store_explicit(&allocprof_hot.rate, bytes, memory_order_relaxed);
    return 0;
}

uint64_t allocprof_rate(void)
{
    return atomic_load_explicit(&allocprof_hot.rate, memory_order_relaxed);
}

void allocprof_reset(void)
{
    pthread_mutex_lock(&lock);
    tables_t *t = atomic_load_explicit(&tables_ptr, memory_order_relaxed);
    if (t != NULL) {
        for (size_t i = 0; i < ALLOCPROF_MAX_LIVE; i++) {
            if (atomic_load_explicit(&t->keys[i], memory_order_relaxed) != 0) {
                atomic_store_explicit(&t->keys[i], 0, memory_order_relaxed);
            }
        }
        for (size_t i = 0; i < LIVE_BUCKETS; i++) {
            atomic_store_explicit(&allocprof_bucket_fill[i], 0, memory_order_relaxed);
        }
        memset(t->site_index, 0, sizeof t->site_index);
        memset(&t->sites[0], 0, sizeof t->sites[0]);
        n_sites = 1;
    }
    atomic_store_explicit(&allocprof_hot.live, 0, memory_order_relaxed);
    n_samples = 0;
    n_dropped = 0;
    pthread_mutex_unlock(&lock);
}

void allocprof_stats(allocprof_stats_t *out)
{
    pthread_mutex_lock(&lock);
    out->rate = allocprof_rate();
    out->samples = n_samples;
    out->live = atomic_load_explicit(&allocprof_hot.live, memory_order_relaxed);
    out->sites = n_sites > 0 ? n_sites - 1 : 0;
    out->dropped = n_dropped;
    pthread_mutex_unlock(&lock);
}

int allocprof_sort_parse(const char *s, allocprof_sort_t *out)
{
    for (int i = 0; s != NULL && i < 4; i++) {
        if (strcmp(s, sort_names[i]) == 0) {
            *out = (allocprof_sort_t)i;
            return 0;
        }
    }
    return -EINVAL;
}

int allocprof_format_parse(const char *s, allocprof_format_t *out)
{
    if (s != NULL && strcmp(s, "text") == 0) {
        *out = ALLOCPROF_TEXT;
        return 0;
    }
    if (s != NULL && strcmp(s, "folded") == 0) {
        *out = ALLOCPROF_FOLDED;
        return 0;
    }
    return -EINVAL;
}

const char *allocprof_sort_name(allocprof_sort_t key)
{
    return (unsigned)key < 4 ? sort_names[key] : "?";
}

/* ---- output ---- */

static uint64_t rounded(double v)
{
    return v <= 0.0 ? 0 : (uint64_t)(v + 0.5);
}

static int cmp_sites(const void *a, const void *b, void *arg)
{
    const site_t *sites = ((const site_t *const *)arg)[0];
    int key = *((const int *const *)arg)[1];
    const site_t *x = &sites[*(const uint32_t *)a];
    const site_t *y = &sites[*(const uint32_t *)b];
    uint64_t vx = rounded(x->v[key]);
    uint64_t vy = rounded(y->v[key]);
    if (vx != vy) {
        return vx > vy ? -1 : 1;
    }
    uint64_t ax = rounded(x->v[ALLOCPROF_ALLOC_SPACE]);
    uint64_t ay = rounded(y->v[ALLOCPROF_ALLOC_SPACE]);
    if (ax != ay) {
        return ax > ay ? -1 : 1;
    }
    uint32_t ia = *(const uint32_t *)a;
    uint32_t ib = *(const uint32_t *)b;
    return ia < ib ? -1 : ia > ib;
}

/* ---- symbols: dladdr for exported names, the module's own .symtab for static functions ---- */

/* One function symbol from a module's .symtab, address relative to the module's load bias. */
typedef struct {
    uintptr_t start;
    uintptr_t size;
    uint32_t name; /* offset into the string table */
} fsym_t;

typedef struct {
    const struct link_map *lm; /* the module (key) */
    void *file;                /* the ELF file, mapped read-only */
    size_t file_len;
    const char *strtab;
    size_t strtab_len;
    fsym_t *syms; /* mapped, sorted by start */
    size_t nsyms;
    size_t syms_len;
} modsyms_t;

#define SYMCACHE_MODS 16

/* The .symtab of every module met during one allocprof_write, read once and unmapped at the
 * end. The tables are mmap'd: nothing goes through the counting layer. */
typedef struct {
    uintptr_t pc; /* 0: empty */
    uint64_t name_hash;
    int layer;
} pcent_t;

typedef struct {
    modsyms_t mods[SYMCACHE_MODS];
    size_t n;
    pcent_t *pcs; /* open addressing by pc: each frame is named once per write */
    size_t pcs_cap;
} symcache_t;

static int cmp_fsym(const void *a, const void *b)
{
    uintptr_t x = ((const fsym_t *)a)->start;
    uintptr_t y = ((const fsym_t *)b)->start;
    return x < y ? -1 : x > y;
}

/* Reads the function symbols of the module's .symtab (the main program through /proc/self/exe).
 * Leaves m->nsyms 0 when the file is stripped or unreadable. */
static void modsyms_load(modsyms_t *m, const struct link_map *lm)
{
    memset(m, 0, sizeof *m);
    m->lm = lm;
    const char *path = lm->l_name != NULL && lm->l_name[0] != '\0' ? lm->l_name : "/proc/self/exe";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < (off_t)sizeof(ElfW(Ehdr))) {
        close(fd);
        return;
    }
    size_t len = (size_t)st.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        return;
    }
    m->file = map;
    m->file_len = len;
    const unsigned char *base = map;
    const ElfW(Ehdr) *eh = map;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_shentsize != sizeof(ElfW(Shdr)) ||
        eh->e_shoff == 0 || eh->e_shoff > len ||
        (len - eh->e_shoff) / sizeof(ElfW(Shdr)) < eh->e_shnum) {
        return;
    }
    const ElfW(Shdr) *sh = (const ElfW(Shdr) *)(base + eh->e_shoff);
    const ElfW(Shdr) *symtab = NULL;
    for (size_t i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type == SHT_SYMTAB) {
            symtab = &sh[i];
            break;
        }
    }
    if (symtab == NULL || symtab->sh_link >= eh->e_shnum || symtab->sh_offset > len ||
        symtab->sh_size > len - symtab->sh_offset) {
        return;
    }
    const ElfW(Shdr) *strs = &sh[symtab->sh_link];
    if (strs->sh_offset > len || strs->sh_size == 0 || strs->sh_size > len - strs->sh_offset ||
        base[strs->sh_offset + strs->sh_size - 1] != '\0') {
        return;
    }
    const ElfW(Sym) *syms = (const ElfW(Sym) *)(base + symtab->sh_offset);
    size_t n = symtab->sh_size / sizeof(ElfW(Sym));
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        count += ELF64_ST_TYPE(syms[i].st_info) == STT_FUNC && syms[i].st_value != 0 &&
                 syms[i].st_size != 0 && syms[i].st_name < strs->sh_size;
    }
    if (count == 0) {
        return;
    }
    size_t bytes = count * sizeof(fsym_t);
    void *arr = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (arr == MAP_FAILED) {
        return;
    }
    fsym_t *out = arr;
    size_t k = 0;
    for (size_t i = 0; i < n && k < count; i++) {
        if (ELF64_ST_TYPE(syms[i].st_info) == STT_FUNC && syms[i].st_value != 0 &&
            syms[i].st_size != 0 && syms[i].st_name < strs->sh_size) {
            out[k++] = (fsym_t){
                .start = syms[i].st_value, .size = syms[i].st_size, .name = syms[i].st_name};
        }
    }
    qsort(out, k, sizeof out[0], cmp_fsym);
    m->strtab = (const char *)base + strs->sh_offset;
    m->strtab_len = strs->sh_size;
    m->syms = out;
    m->nsyms = k;
    m->syms_len = bytes;
}

static void symcache_release(symcache_t *c)
{
    if (c->pcs != NULL) {
        munmap(c->pcs, c->pcs_cap * sizeof(pcent_t));
        c->pcs = NULL;
    }
    for (size_t i = 0; i < c->n; i++) {
        if (c->mods[i].syms != NULL) {
            munmap(c->mods[i].syms, c->mods[i].syms_len);
        }
        if (c->mods[i].file != NULL) {
            munmap(c->mods[i].file, c->mods[i].file_len);
        }
    }
    c->n = 0;
}

/* The .symtab function covering look (an absolute address), or NULL; *start is its address. */
static const char *symtab_lookup(symcache_t *c, uintptr_t look, uintptr_t *start)
{
    Dl_info info;
    struct link_map *lm = NULL;
    if (dladdr1((void *)look, &info, (void **)&lm, RTLD_DL_LINKMAP) == 0 || lm == NULL) {
        return NULL;
    }
    modsyms_t *m = NULL;
    for (size_t i = 0; i < c->n; i++) {
        if (c->mods[i].lm == lm) {
            m = &c->mods[i];
        }
    }
    if (m == NULL) {
        if (c->n == SYMCACHE_MODS) {
            return NULL;
        }
        m = &c->mods[c->n++];
        modsyms_load(m, lm);
    }
    uintptr_t rel = look - (uintptr_t)lm->l_addr;
    size_t lo = 0;
    size_t hi = m->nsyms;
    while (lo < hi) { /* first symbol starting after rel */
        size_t mid = lo + (hi - lo) / 2;
        if (m->syms[mid].start <= rel) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == 0) {
        return NULL;
    }
    const fsym_t *f = &m->syms[lo - 1];
    if (rel - f->start >= f->size) {
        return NULL;
    }
    *start = f->start + (uintptr_t)lm->l_addr;
    return m->strtab + f->name;
}

/* Names one frame. Text: "func+0xOFF (module)"; folded: "func". The name comes from the dynamic
 * symbols (dladdr) or else the module's .symtab (static functions; a stripped module has none),
 * and a frame with neither shows as "module+0xOFF", for addr2line. Sets *layer when the function
 * is the counting layer's or the profiler's (mem_* or allocprof_*). */
static void frame_name(symcache_t *c, void *pc, int text, char *buf, size_t size, int *layer)
{
    uintptr_t a = (uintptr_t)pc;
    uintptr_t look = a - 1; /* a return address may be one past its function's end */
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    *layer = 0;
    memset(&info, 0, sizeof info);
    if (dladdr1((void *)look, &info, (void **)&sym, RTLD_DL_SYMENT) == 0) {
        snprintf(buf, size, "0x%llx", (unsigned long long)a);
        return;
    }
    const char *mod = info.dli_fname != NULL ? info.dli_fname : "?";
    const char *slash = strrchr(mod, '/');
    if (slash != NULL) {
        mod = slash + 1;
    }
    const char *name = NULL;
    uintptr_t saddr = (uintptr_t)info.dli_saddr;
    if (info.dli_sname != NULL && saddr != 0 && saddr <= look &&
        (sym == NULL || sym->st_size == 0 || look - saddr < sym->st_size)) {
        name = info.dli_sname;
    } else {
        name = symtab_lookup(c, look, &saddr);
    }
    if (name == NULL) {
        snprintf(buf, size, "%s+0x%llx", mod, (unsigned long long)(a - (uintptr_t)info.dli_fbase));
        return;
    }
    *layer = strncmp(name, "mem_", 4) == 0 || strncmp(name, "allocprof_", 10) == 0;
    if (text) {
        snprintf(buf, size, "%s+0x%llx (%s)", name, (unsigned long long)(a - saddr), mod);
    } else {
        /* C names have no '.': what follows is a compiler clone suffix (.constprop.0, .isra.0,
         * .part.0, .cold), dropped so a function's clones merge into one flame-graph frame. */
        snprintf(buf, size, "%.*s", (int)strcspn(name, "."), name);
    }
}

static uint64_t hash_str(const char *p)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *p != '\0'; p++) {
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    }
    return h;
}

/* The hash of a frame's folded name (function without offset), and whether it is the layer's;
 * cached by pc for the rest of the write. */
static uint64_t frame_key(symcache_t *c, void *pc, int *layer)
{
    uintptr_t a = (uintptr_t)pc;
    size_t mask = c->pcs_cap - 1;
    size_t i = (size_t)((a >> 2) * 0x9E3779B97F4A7C15ull) & mask;
    for (; c->pcs != NULL; i = (i + 1) & mask) {
        if (c->pcs[i].pc == a) {
            *layer = c->pcs[i].layer;
            return c->pcs[i].name_hash;
        }
        if (c->pcs[i].pc == 0) {
            break;
        }
    }
    char buf[256];
    frame_name(c, pc, 0, buf, sizeof buf, layer);
    uint64_t h = hash_str(buf);
    if (c->pcs != NULL) {
        c->pcs[i] = (pcent_t){.pc = a, .name_hash = h, .layer = *layer};
    }
    return h;
}

/* Index of the first frame to show: past the hook's caller and the counting layer's frames. */
static uint32_t first_shown(symcache_t *c, const site_t *s)
{
    uint32_t start = 1;
    for (uint32_t i = 1; i < s->depth && i < STRIP_SCAN; i++) {
        int layer;
        frame_key(c, s->pc[i], &layer);
        if (layer) {
            start = i + 1;
        }
    }
    return start < s->depth ? start : s->depth;
}

/* What makes two sites the same call site: the names of their shown frames. */
static uint64_t site_key(symcache_t *c, const site_t *s)
{
    uint32_t first = first_shown(c, s);
    uint64_t h = 0x84222325cbf29ce4ull ^ (s->depth - first);
    for (uint32_t i = first; i < s->depth; i++) {
        int layer;
        h = (h ^ frame_key(c, s->pc[i], &layer)) * 0x100000001b3ull;
        h ^= h >> 31;
    }
    return h | 1; /* never 0, the "(other)" site's key */
}

static int cmp_keys(const void *a, const void *b, void *arg)
{
    const uint64_t *keys = arg;
    uint32_t ia = *(const uint32_t *)a;
    uint32_t ib = *(const uint32_t *)b;
    if (keys[ia] != keys[ib]) {
        return keys[ia] < keys[ib] ? -1 : 1;
    }
    return ia < ib ? -1 : ia > ib;
}

static void put_folded_name(FILE *out, const char *name)
{
    for (const char *p = name; *p != '\0'; p++) {
        fputc(*p == ';' || *p == ' ' || *p == '\n' ? '_' : *p, out);
    }
}

static void write_site_text(symcache_t *c, FILE *out, const site_t *s, uint32_t si, uint32_t stacks)
{
    fprintf(out, "inuse_space=%llu inuse_objects=%llu alloc_space=%llu alloc_objects=%llu",
            (unsigned long long)rounded(s->v[ALLOCPROF_INUSE_SPACE]),
            (unsigned long long)rounded(s->v[ALLOCPROF_INUSE_OBJECTS]),
            (unsigned long long)rounded(s->v[ALLOCPROF_ALLOC_SPACE]),
            (unsigned long long)rounded(s->v[ALLOCPROF_ALLOC_OBJECTS]));
    if (stacks > 1) {
        fprintf(out, " stacks=%u", stacks); /* merged: the frames below are the first's */
    }
    fputc('\n', out);
    if (si == 0) {
        fprintf(out, "    #0 (other: call stacks beyond the %d-site table)\n", ALLOCPROF_MAX_SITES);
    }
    char buf[256];
    uint32_t first = si == 0 ? s->depth : first_shown(c, s);
    for (uint32_t i = first; i < s->depth; i++) {
        int layer;
        frame_name(c, s->pc[i], 1, buf, sizeof buf, &layer);
        fprintf(out, "    #%u %s\n", i - first, buf);
    }
    fputc('\n', out);
}

static void write_site_folded(symcache_t *c, FILE *out, const site_t *s, uint32_t si,
                              uint64_t value)
{
    char buf[256];
    if (si == 0) {
        fputs("(other)", out);
    } else {
        uint32_t first = first_shown(c, s);
        for (uint32_t i = s->depth; i > first; i--) {
            int layer;
            frame_name(c, s->pc[i - 1], 0, buf, sizeof buf, &layer);
            put_folded_name(out, buf);
            if (i - 1 > first) {
                fputc(';', out);
            }
        }
    }
    fprintf(out, " %llu\n", (unsigned long long)value);
}

int allocprof_write(FILE *out, allocprof_sort_t key, size_t top_n, allocprof_format_t fmt)
{
    if ((unsigned)key >= 4 || (fmt != ALLOCPROF_TEXT && fmt != ALLOCPROF_FOLDED)) {
        return -EINVAL;
    }
    /* Copy the sites under the lock into private memory (mapped, so nothing here goes through
     * the counting layer), then sort and symbolize without it. */
    uint32_t n = 0;
    uint64_t samples = 0;
    uint64_t dropped = 0;
    uint64_t live = 0;
    size_t cap = 0;
    void *m = NULL;
    site_t *snap = NULL;
    uint32_t *order = NULL;
    uint64_t *keys = NULL;
    uint32_t *stacks = NULL;
    pthread_mutex_lock(&lock);
    tables_t *t = atomic_load_explicit(&tables_ptr, memory_order_relaxed);
    if (t != NULL && n_sites > 0) {
        cap = (size_t)n_sites * (sizeof(site_t) + sizeof(uint64_t) + 2 * sizeof(uint32_t));
        m = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            pthread_mutex_unlock(&lock);
            return -ENOMEM;
        }
        n = n_sites;
        snap = m;
        keys = (uint64_t *)(snap + n);
        order = (uint32_t *)(keys + n);
        stacks = order + n;
        memcpy(snap, t->sites, (size_t)n * sizeof(site_t));
    }
    samples = n_samples;
    dropped = n_dropped;
    live = atomic_load_explicit(&allocprof_hot.live, memory_order_relaxed);
    pthread_mutex_unlock(&lock);

    symcache_t syms;
    memset(&syms, 0, sizeof syms);
    size_t frames = 0;
    for (uint32_t i = 0; i < n; i++) {
        frames += snap[i].depth;
    }
    for (syms.pcs_cap = 64; syms.pcs_cap < 2 * frames; syms.pcs_cap *= 2) {
    }
    void *pm = mmap(NULL, syms.pcs_cap * sizeof(pcent_t), PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    syms.pcs = pm != MAP_FAILED ? pm : NULL;

    /* Merge stacks that differ only in return addresses (an unrolled loop, two calls in one
     * function, the layer entry point used): one call site per sequence of function names. */
    uint32_t nsites = n > 0 ? 1 : 0;
    if (n > 1) {
        for (uint32_t i = 1; i < n; i++) {
            keys[i] = site_key(&syms, &snap[i]);
            order[i - 1] = i;
            stacks[i] = 0;
        }
        qsort_r(order, n - 1, sizeof order[0], cmp_keys, keys);
        uint32_t rep = 0;
        for (uint32_t r = 0; r < n - 1; r++) {
            uint32_t i = order[r];
            if (r == 0 || keys[i] != keys[rep]) {
                rep = i; /* the lowest-numbered stack of each run: sorted by key, then index */
                nsites++;
            } else {
                for (int k = 0; k < 4; k++) {
                    snap[rep].v[k] += snap[i].v[k];
                    snap[i].v[k] = 0;
                }
            }
            stacks[rep]++;
        }
    }
    if (n > 0) {
        stacks[0] = 1;
    }

    double total[4] = {0, 0, 0, 0};
    uint32_t nz = 0; /* sites with a non-zero value for key */
    for (uint32_t i = 0; i < n; i++) {
        for (int k = 0; k < 4; k++) {
            total[k] += snap[i].v[k] > 0 ? snap[i].v[k] : 0;
        }
        if (stacks[i] > 0 && rounded(snap[i].v[key]) > 0) {
            order[nz++] = i;
        }
    }
    int ikey = (int)key;
    const void *arg[2] = {snap, &ikey};
    if (nz > 1) {
        qsort_r(order, nz, sizeof order[0], cmp_sites, (void *)arg);
    }
    uint32_t shown = top_n != 0 && top_n < nz ? (uint32_t)top_n : nz;
    if (fmt == ALLOCPROF_TEXT) {
        fprintf(out,
                "# ingestd allocation profile: rate=%llu sort=%s sites=%u stacks=%u shown=%u\n",
                (unsigned long long)allocprof_rate(), sort_names[key], nsites > 0 ? nsites - 1 : 0,
                n > 0 ? n - 1 : 0, shown);
        fprintf(out, "# samples=%llu live=%llu dropped=%llu\n", (unsigned long long)samples,
                (unsigned long long)live, (unsigned long long)dropped);
        fprintf(out,
                "# total inuse_space=%llu inuse_objects=%llu alloc_space=%llu "
                "alloc_objects=%llu\n",
                (unsigned long long)rounded(total[0]), (unsigned long long)rounded(total[1]),
                (unsigned long long)rounded(total[2]), (unsigned long long)rounded(total[3]));
        fputs("# values estimate all allocations (samples scaled by 1/(1-exp(-size/rate))); "
              "frames leaf first\n\n",
              out);
    }
    for (uint32_t r = 0; order != NULL && r < shown; r++) {
        uint32_t si = order[r];
        if (fmt == ALLOCPROF_TEXT) {
            write_site_text(&syms, out, &snap[si], si, stacks[si]);
        } else {
            write_site_folded(&syms, out, &snap[si], si, rounded(snap[si].v[key]));
        }
    }
    symcache_release(&syms);
    if (m != NULL) {
        munmap(m, cap);
    }
    return ferror(out) || fflush(out) != 0 ? -EIO : 0;
}
