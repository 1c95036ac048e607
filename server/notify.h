/* notify.h - tells a service manager (systemd, Type=notify) how ingestd is doing: the
 * sd_notify(3) datagram protocol spoken directly, without libsystemd.
 *
 * The protocol (documented as stable in sd_notify(3)): the manager puts an AF_UNIX socket path in
 * $NOTIFY_SOCKET ("/path", or "@name" for the abstract namespace); the service sends one
 * SOCK_DGRAM datagram per update holding newline-separated VAR=VALUE assignments ("READY=1",
 * "STOPPING=1", "WATCHDOG=1", "STATUS=text"). The manager learns the sender from the kernel's
 * SCM_CREDENTIALS, so the unit needs NotifyAccess=main (the default for Type=notify) and every
 * call here works from any thread of the main process. With WatchdogSec= the manager also sets
 * $WATCHDOG_USEC (and $WATCHDOG_PID) and expects WATCHDOG=1 more often than that.
 *
 * Without $NOTIFY_SOCKET (not started by a manager, or Type=exec) every call does nothing and
 * returns 0, so call sites need no condition. Nothing here changes the environment: a child
 * ingestd would inherit it, which no code path does. */
#ifndef INGESTD_NOTIFY_H
#define INGESTD_NOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Longest datagram srv_notify_send accepts; a STATUS= text must fit in it with its prefix. */
#define SRV_NOTIFY_MAX_BYTES 1024u

/* Sends state (one or more "VAR=VALUE" lines, not empty) as one datagram to $NOTIFY_SOCKET.
 * Returns 0 when sent or when $NOTIFY_SOCKET is unset or empty; -EINVAL for an empty state or
 * a state longer than SRV_NOTIFY_MAX_BYTES; -EAFNOSUPPORT when $NOTIFY_SOCKET is neither a path
 * nor "@name"; -ENAMETOOLONG when it does not fit a sockaddr_un; otherwise the -errno of
 * socket/sendto (-ECONNREFUSED, -ENOENT: no manager listens there). Never blocks for long: a
 * full receive queue fails with -EAGAIN. Any thread. */
int srv_notify_send(const char *state);

/* "READY=1", with "STATUS=<status>" when status is not NULL: call once every listener is bound
 * and the sink is open, so the manager starts what is ordered After= ingestd only then. status
 * is one line (a newline in it gives -EINVAL and nothing is sent); what `systemctl status`
 * shows. Returns as srv_notify_send. */
int srv_notify_ready(const char *status);

/* "STOPPING=1" and "STATUS=draining": call when the drain begins (the manager shows the unit
 * as deactivating and stops sending it work). Returns as srv_notify_send. */
int srv_notify_stopping(void);

/* "WATCHDOG=1": the keep-alive ping. Returns as srv_notify_send. */
int srv_notify_watchdog(void);

/* The watchdog interval the manager asked for, in microseconds, into *usec: 0 when there is
 * none ($WATCHDOG_USEC unset or 0, $NOTIFY_SOCKET unset, or $WATCHDOG_PID names another
 * process). Returns 0, or -EINVAL when $WATCHDOG_USEC or $WATCHDOG_PID is not a decimal number
 * (then *usec is 0). Send WATCHDOG=1 at least twice per interval. */
int srv_notify_watchdog_usec(uint64_t *usec);

/* A libuv timer that sends WATCHDOG=1 every half interval, for the control loop. Embed it in
 * the owner's struct (zeroed); the timer is only initialised when a watchdog is asked for. */
typedef struct {
    uv_timer_t timer;
    uint64_t interval_ms; /* 0: no watchdog, timer never initialised */
    int closed;
} srv_notify_watchdog_t;

/* Reads the interval (srv_notify_watchdog_usec) and, if there is one, starts the timer on loop
 * (loop thread only) after sending a first WATCHDOG=1. Returns 0 (also when there is no
 * watchdog: nothing is started) or the -errno of a bad $WATCHDOG_USEC or of uv_timer_init. */
int srv_notify_watchdog_start(srv_notify_watchdog_t *wd, uv_loop_t *loop);

/* Stops and closes the timer, if started (loop thread; the loop must run once more to finish
 * the close). Safe to call twice and on a watchdog never started. */
void srv_notify_watchdog_close(srv_notify_watchdog_t *wd);

#endif
