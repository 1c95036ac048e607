/* process.c - the standard Prometheus process collector, read from /proc/self and /proc/stat. */
#include "metrics/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Reads a small /proc file whole into buf (NUL-terminated). Returns its length or -errno. */
static ssize_t read_small(const char *path, char *buf, size_t bufsz)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    size_t len = 0;
    while (len < bufsz - 1) {
        ssize_t n = read(fd, buf + len, bufsz - 1 - len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            int e = errno;
            close(fd);
            return -e;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    return (ssize_t)len;
}

/* Boot time in seconds since the epoch: the "btime" line of /proc/stat. Lines there can be far
 * longer than any buffer (intr), so it is scanned in chunks, watching for line starts. */
static int read_btime(uint64_t *out)
{
    FILE *f = fopen("/proc/stat", "re");
    if (f == NULL) {
        return -errno;
    }
    char line[256];
    int at_line_start = 1;
    int rc = -ENOENT;
    while (fgets(line, sizeof line, f) != NULL) {
        if (at_line_start && strncmp(line, "btime ", 6) == 0) {
            *out = strtoull(line + 6, NULL, 10);
            rc = 0;
            break;
        }
        at_line_start = strchr(line, '\n') != NULL;
    }
    fclose(f);
    return rc;
}

static int count_fds(uint64_t *out)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) {
        return -errno;
    }
    int own = dirfd(d);
    uint64_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        if (atoi(e->d_name) == own) {
            continue; /* the descriptor this count itself holds open */
        }
        n++;
    }
    closedir(d);
    *out = n;
    return 0;
}

int metrics_process_read(metrics_process_t *out)
{
    char buf[1024];
    ssize_t n = read_small("/proc/self/stat", buf, sizeof buf);
    if (n < 0) {
        return (int)n;
    }
    /* Field 2 (comm) is in parentheses and may hold spaces or ')': parse after the last ')'. */
    char *p = strrchr(buf, ')');
    if (p == NULL) {
        return -EPROTO;
    }
    p++;
    /* Fields from 3 (state) on; we want 14 utime, 15 stime, 22 starttime, 23 vsize, 24 rss. */
    unsigned long long f[25] = {0};
    int field = 3;
    char *save = NULL;
    for (char *tok = strtok_r(p, " \n", &save); tok != NULL && field <= 24;
         tok = strtok_r(NULL, " \n", &save), field++) {
        if (field >= 14) {
            f[field] = strtoull(tok, NULL, 10);
        }
    }
    if (field <= 24) {
        return -EPROTO;
    }
    long tck = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    if (tck <= 0 || page <= 0) {
        return -EINVAL;
    }
    uint64_t btime = 0;
    int rc = read_btime(&btime);
    if (rc != 0) {
        return rc;
    }
    uint64_t fds = 0;
    rc = count_fds(&fds);
    if (rc != 0) {
        return rc;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return -errno;
    }
    out->cpu_seconds_total = (double)(f[14] + f[15]) / (double)tck;
    out->start_time_seconds = (double)btime + (double)f[22] / (double)tck;
    out->virtual_memory_bytes = f[23];
    out->resident_memory_bytes = f[24] * (uint64_t)page;
    out->open_fds = fds;
    out->max_fds = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
    return 0;
}

void metrics_process_write(metrics_writer_t *w, const metrics_process_t *p)
{
    metrics_family(w, "process_cpu_seconds_total", "counter",
                   "Total user and system CPU time spent in seconds.");
    metrics_sample_f64(w, "process_cpu_seconds_total", NULL, p->cpu_seconds_total);
    metrics_family(w, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    metrics_sample_u64(w, "process_resident_memory_bytes", NULL, p->resident_memory_bytes);
    metrics_family(w, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    metrics_sample_u64(w, "process_virtual_memory_bytes", NULL, p->virtual_memory_bytes);
    metrics_family(w, "process_open_fds", "gauge", "Number of open file descriptors.");
    metrics_sample_u64(w, "process_open_fds", NULL, p->open_fds);
    metrics_family(w, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
    metrics_sample_u64(w, "process_max_fds", NULL, p->max_fds);
    metrics_family(w, "process_start_time_seconds", "gauge",
                   "Start time of the process since unix epoch in seconds.");
    metrics_sample_f64(w, "process_start_time_seconds", NULL, p->start_time_seconds);
}
