/* notify.c - sd_notify(3)'s datagram protocol to $NOTIFY_SOCKET; see notify.h. */
#include "server/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Fills *sa from $NOTIFY_SOCKET. Returns the address length, 0 when the variable is unset or
 * empty, or a negative errno. */
static int notify_address(struct sockaddr_un *sa)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || path[0] == '\0') {
        return 0;
    }
    if (path[0] != '/' && path[0] != '@') {
        return -EAFNOSUPPORT; /* e.g. "vsock:" of newer managers: not spoken here */
    }
    size_t len = strlen(path);
    if (len > sizeof(sa->sun_path) || (path[0] == '/' && len == sizeof(sa->sun_path))) {
        return -ENAMETOOLONG;
    }
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, path, len);
    if (path[0] == '@') {
        sa->sun_path[0] = '\0'; /* abstract: the name is exactly len bytes, no terminator */
        return (int)(offsetof(struct sockaddr_un, sun_path) + len);
    }
    return (int)(offsetof(struct sockaddr_un, sun_path) + len + 1);
}

int srv_notify_send(const char *state)
{
    struct sockaddr_un sa;
    size_t len = state != NULL ? strlen(state) : 0;

    int salen = notify_address(&sa);
    if (salen <= 0) {
        return salen;
    }
    if (len == 0 || len > SRV_NOTIFY_MAX_BYTES) {
        return -EINVAL;
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return -errno;
    }
    ssize_t n = sendto(fd, state, len, MSG_NOSIGNAL, (struct sockaddr *)&sa, (socklen_t)salen);
    int r = n < 0 ? -errno : ((size_t)n == len ? 0 : -EMSGSIZE);
    close(fd);
    return r;
}

int srv_notify_ready(const char *status)
{
    char msg[SRV_NOTIFY_MAX_BYTES + 1];

    if (status == NULL) {
        return srv_notify_send("READY=1");
    }
    if (strchr(status, '\n') != NULL) {
        return -EINVAL;
    }
    int n = snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);
    if (n < 0 || (size_t)n >= sizeof(msg)) {
        return -EINVAL;
    }
    return srv_notify_send(msg);
}

int srv_notify_stopping(void)
{
    return srv_notify_send("STOPPING=1\nSTATUS=draining");
}

int srv_notify_watchdog(void)
{
    return srv_notify_send("WATCHDOG=1");
}

/* A whole decimal number (no sign, no spaces) into *out: 0, or -EINVAL. */
static int parse_u64(const char *text, uint64_t *out)
{
    uint64_t v = 0;

    if (text[0] == '\0') {
        return -EINVAL;
    }
    for (const char *p = text; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return -EINVAL;
        }
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return -EINVAL;
        }
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int srv_notify_watchdog_usec(uint64_t *usec)
{
    const char *sock = getenv("NOTIFY_SOCKET");
    const char *text = getenv("WATCHDOG_USEC");
    const char *pid_text = getenv("WATCHDOG_PID");
    uint64_t v = 0;
    uint64_t pid = 0;

    *usec = 0;
    if (sock == NULL || sock[0] == '\0' || text == NULL) {
        return 0;
    }
    if (parse_u64(text, &v) != 0) {
        return -EINVAL;
    }
    if (pid_text != NULL) {
        if (parse_u64(pid_text, &pid) != 0) {
            return -EINVAL;
        }
        if (pid != (uint64_t)getpid()) {
            return 0; /* meant for another process (the manager's variable leaked to a child) */
        }
    }
    *usec = v;
    return 0;
}

static void on_watchdog_timer(uv_timer_t *t)
{
    (void)t;
    /* A failed ping is not retried sooner: the next tick comes within half the interval, and
     * a manager that stopped listening will act on its own. */
    (void)srv_notify_watchdog();
}

int srv_notify_watchdog_start(srv_notify_watchdog_t *wd, uv_loop_t *loop)
{
    uint64_t usec;

    wd->interval_ms = 0;
    int r = srv_notify_watchdog_usec(&usec);
    if (r != 0 || usec == 0) {
        return r;
    }
    r = uv_timer_init(loop, &wd->timer);
    if (r != 0) {
        return r;
    }
    /* Half the interval, as sd_watchdog_enabled(3) advises; at least 1 ms. */
    wd->interval_ms = usec / 2000 > 0 ? usec / 2000 : 1;
    wd->closed = 0;
    (void)srv_notify_watchdog();
    return uv_timer_start(&wd->timer, on_watchdog_timer, wd->interval_ms, wd->interval_ms);
}

void srv_notify_watchdog_close(srv_notify_watchdog_t *wd)
{
    if (wd->interval_ms == 0 || wd->closed) {
        return;
    }
    wd->closed = 1;
    uv_timer_stop(&wd->timer);
    uv_close((uv_handle_t *)&wd->timer, NULL);
}
