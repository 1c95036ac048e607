/* file.c - the file backend: appends the sink's stream to a path with writev, reopens it on
 * request (SIGHUP, EBADF) and by itself when the path was unlinked or replaced, fsyncs at close;
 * with file_sync, fdatasyncs after each batch (group commit) and only then reports it durable. */
#include "sink/backend.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How often a write checks that the path still names the open file: one fstat and one stat,
 * at most once a second, so the check costs nothing measurable at any event rate. */
#define CHECK_INTERVAL_NS (1000ull * 1000 * 1000)

typedef struct {
    sink_t *sink;
    void (*free_fn)(void *ptr);
    const char *path; /* borrowed from the engine (valid until close) */
    int fd;
    bool sync_each;      /* file_sync: durable only after fdatasync (commit) */
    uint64_t pos;        /* stream bytes written so far */
    uint64_t synced;     /* pos at the last successful sync */
    uint64_t checked_ns; /* last check that path still names fd */
} file_t;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Opens the path for appending. O_NONBLOCK only for the open itself, so a FIFO without a reader
 * fails with ENXIO instead of blocking; writes then block. Returns an fd or -errno. */
static int open_path(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0640);
    if (fd < 0) {
        return -errno;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

static int file_open(const char *arg, const sink_backend_opts_t *o, void **st)
{
    file_t *f = o->alloc_fn(sizeof(*f));
    if (f == NULL) {
        return -ENOMEM;
    }
    memset(f, 0, sizeof(*f));
    f->sink = o->sink;
    f->free_fn = o->free_fn;
    f->path = arg;
    f->sync_each = o->cfg != NULL && o->cfg->file_sync;
    f->fd = open_path(arg);
    if (f->fd < 0) {
        int err = f->fd;
        o->free_fn(f);
        return err;
    }
    f->checked_ns = now_ns();
    *st = f;
    return 0;
}

static int file_reopen(void *st)
{
    file_t *f = st;
    int fd = open_path(f->path);
    if (fd < 0) {
        return fd;
    }
    close(f->fd);
    f->fd = fd;
    return 0;
}

/* Deleting or replacing the file without a SIGHUP would otherwise send every later write into an
 * inode no path names, lost for good once the fd closes. So, at most once per CHECK_INTERVAL_NS,
 * compare the open fd with what the path names now and reopen when they differ. Only regular
 * files: a FIFO or a device has nothing to lose. What was written between the unlink and the
 * check is in the old inode (at most a second's worth). */
static void check_path(file_t *f)
{
    uint64_t now = now_ns();
    if (now - f->checked_ns < CHECK_INTERVAL_NS) {
        return;
    }
    f->checked_ns = now;
    struct stat open_st, path_st;
    if (fstat(f->fd, &open_st) != 0 || !S_ISREG(open_st.st_mode)) {
        return;
    }
    const char *what;
    if (stat(f->path, &path_st) != 0) {
        if (errno != ENOENT) {
            return; /* cannot tell (EACCES on a directory, ...): keep writing where we are */
        }
        what = "unlinked";
    } else if (path_st.st_dev != open_st.st_dev || path_st.st_ino != open_st.st_ino) {
        what = "replaced";
    } else {
        return;
    }
    int rc = file_reopen(f);
    if (rc != 0) {
        sink_backend_count(f->sink, SINK_COUNT_ERROR);
        sink_backend_log(f->sink, false,
                         "%s was %s; reopen failed: %s (still writing to the old file)", f->path,
                         what, strerror(-rc));
        return;
    }
    sink_backend_count(f->sink, SINK_COUNT_REOPEN_UNLINKED);
    sink_backend_log(f->sink, true, "%s was %s without SIGHUP; reopened it", f->path, what);
}

static ssize_t file_write(void *st, const struct iovec *iov, const sink_backend_span_t *span, int n)
{
    (void)span;
    file_t *f = st;
    check_path(f);
    ssize_t r = writev(f->fd, iov, n);
    if (r < 0) {
        return -errno;
    }
    /* In the page cache: as durable as this sink promises without a sync policy. */
    f->pos += (uint64_t)r;
    if (!f->sync_each) {
        sink_backend_durable(f->sink, f->pos);
    }
    return r;
}

/* Group commit: one fdatasync covers every chunk written since the last one, whichever writer
 * it came from. FIFOs and special files cannot be synced: what was written is all there is. */
static int file_commit(void *st)
{
    file_t *f = st;
    if (!f->sync_each || f->synced == f->pos) {
        return 0;
    }
    uint64_t pos = f->pos;
    if (fdatasync(f->fd) != 0 && errno != EINVAL && errno != EROFS) {
        return -errno;
    }
    f->synced = pos;
    sink_backend_durable(f->sink, pos);
    return 0;
}

static int file_sync(void *st)
{
    file_t *f = st;
    /* EINVAL/EROFS: a FIFO or special file (/dev/full) that cannot be synced, not an error. */
    if (fsync(f->fd) != 0 && errno != EINVAL && errno != EROFS) {
        return -errno;
    }
    sink_backend_durable(f->sink, f->pos);
    return 0;
}

static void file_close(void *st)
{
    file_t *f = st;
    close(f->fd);
    f->free_fn(f);
}

const sink_backend_t sink_backend_file = {
    .name = "file",
    .open = file_open,
    .write = file_write,
    .reopen = file_reopen,
    .commit = file_commit,
    .sync = file_sync,
    .close = file_close,
};
