/* notify_sock.h - the manager's side of sd_notify(3) for tests: an AF_UNIX datagram socket in a
 * temporary directory (or the abstract namespace) that records what ingestd announces and which
 * process sent it, as systemd does with SO_PASSCRED. */
#ifndef INGESTD_TEST_NOTIFY_SOCK_H
#define INGESTD_TEST_NOTIFY_SOCK_H

#include <stddef.h>
#include <sys/types.h>

typedef struct {
    int fd;
    char dir[64];  /* temporary directory holding the socket ("" when abstract) */
    char env[128]; /* the value for $NOTIFY_SOCKET: "/dir/notify" or "@name" */
} ns_socket_t;

/* Binds a new receiving socket: a path in a new temporary directory, or (abstract != 0) an
 * abstract name unique to this process. Returns 0, or -errno. */
int ns_open(ns_socket_t *ns, int abstract);

/* Waits at most timeout_ms for one datagram; copies it NUL-terminated into buf (cap bytes,
 * longer ones cut) and the sender's pid into *pid (may be NULL). Returns its length, or -1 on
 * timeout or error. */
int ns_recv(ns_socket_t *ns, int timeout_ms, char *buf, size_t cap, pid_t *pid);

/* Reads datagrams (each at most timeout_ms apart) until one has a line equal to line; copies
 * that datagram into buf/pid as ns_recv. Returns 0, or -1 on timeout. */
int ns_wait_line(ns_socket_t *ns, const char *line, int timeout_ms, char *buf, size_t cap,
                 pid_t *pid);

/* 1 if text (newline-separated assignments) has a line equal to line, else 0. */
int ns_has_line(const char *text, const char *line);

/* Closes the socket and removes its directory. */
void ns_close(ns_socket_t *ns);

#endif
