/* notify_sock.c - see notify_sock.h. */
#include "notify_sock.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int ns_open(ns_socket_t *ns, int abstract)
{
    struct sockaddr_un sa;
    socklen_t len;
    int one = 1;

    memset(ns, 0, sizeof(*ns));
    ns->fd = -1;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (abstract) {
        snprintf(ns->env, sizeof(ns->env), "@ingestd-test-notify-%ld", (long)getpid());
        memcpy(sa.sun_path, ns->env, strlen(ns->env));
        sa.sun_path[0] = '\0';
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(ns->env));
    } else {
        snprintf(ns->dir, sizeof(ns->dir), "/tmp/ingestd-notify-XXXXXX");
        if (mkdtemp(ns->dir) == NULL) {
            return -errno;
        }
        snprintf(ns->env, sizeof(ns->env), "%s/notify", ns->dir);
        memcpy(sa.sun_path, ns->env, strlen(ns->env) + 1);
        len = (socklen_t)sizeof(sa);
    }
    ns->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (ns->fd < 0) {
        return -errno;
    }
    if (setsockopt(ns->fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) != 0 ||
        bind(ns->fd, (struct sockaddr *)&sa, len) != 0) {
        int e = -errno;
        ns_close(ns);
        return e;
    }
    return 0;
}

int ns_recv(ns_socket_t *ns, int timeout_ms, char *buf, size_t cap, pid_t *pid)
{
    struct pollfd p = {.fd = ns->fd, .events = POLLIN};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(struct ucred))];
    } ctl;
    struct iovec iov = {.iov_base = buf, .iov_len = cap - 1};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl)};

    if (poll(&p, 1, timeout_ms) != 1) {
        return -1;
    }
    ssize_t n = recvmsg(ns->fd, &msg, MSG_DONTWAIT);
    if (n < 0) {
        return -1;
    }
    buf[n] = '\0';
    if (pid != NULL) {
        *pid = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                struct ucred cred;
                memcpy(&cred, CMSG_DATA(c), sizeof(cred));
                *pid = cred.pid;
            }
        }
    }
    return (int)n;
}

int ns_has_line(const char *text, const char *line)
{
    size_t len = strlen(line);
    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
        if (n == len && memcmp(p, line, len) == 0) {
            return 1;
        }
        p = nl != NULL ? nl + 1 : NULL;
    }
    return 0;
}

int ns_wait_line(ns_socket_t *ns, const char *line, int timeout_ms, char *buf, size_t cap,
                 pid_t *pid)
{
    while (ns_recv(ns, timeout_ms, buf, cap, pid) >= 0) {
        if (ns_has_line(buf, line)) {
            return 0;
        }
    }
    return -1;
}

void ns_close(ns_socket_t *ns)
{
    if (ns->fd >= 0) {
        close(ns->fd);
        ns->fd = -1;
    }
    if (ns->dir[0] != '\0') {
        unlink(ns->env);
        rmdir(ns->dir);
        ns->dir[0] = '\0';
    }
}
