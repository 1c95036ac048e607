/* ackload.c - an HTTP load that records what was acknowledged (ackload.h). */
#include "ackload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "harness.h"

/* Reads one HTTP response on fd (Content-Length framed). Returns its status, or -1 (timeout:
 * errno EAGAIN; closed; malformed). */
static int read_reply(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0) {
            if (n == 0) {
                errno = ECONNRESET;
            }
            return -1;
        }
        len += (size_t)n;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        const char *cl = strstr(buf, "Content-Length: ");
        if (end != NULL && cl != NULL) {
            size_t body = strtoul(cl + 16, NULL, 10);
            if (len >= (size_t)(end + 4 - buf) + body) {
                return ih_http_status(buf);
            }
        }
        if (len + 1 >= cap) {
            errno = EMSGSIZE;
            return -1;
        }
    }
}

/* One client: keep-alive POSTs of ACKLOAD_BATCH events with fresh ids until stopped; marks the
 * ids of every request answered 200 with all of them accepted. A held reply is waited for as
 * long as the load runs. */
static void *client(void *arg)
{
    ackload_t *L = arg;
    char body[ACKLOAD_BATCH * 48];
    char req[ACKLOAD_BATCH * 48 + 256];
    char reply[4096];
    struct timeval tv = {.tv_sec = 0, .tv_usec = 300 * 1000};
    int fd = -1;

    while (!atomic_load(&L->stop)) {
        if (fd < 0) {
            fd = ih_connect(L->port);
            if (fd < 0) {
                usleep(50000); /* the server may be restarting or gone */
                continue;
            }
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        }
        uint32_t first = atomic_fetch_add(&L->next_id, ACKLOAD_BATCH);
        if (first + ACKLOAD_BATCH >= ACKLOAD_MAX_IDS) {
            break;
        }
        size_t bl = 0;
        for (uint32_t i = 0; i < ACKLOAD_BATCH; i++) {
            bl += (size_t)snprintf(body + bl, sizeof(body) - bl, "{\"type\":\"t\",\"i\":%u}\n",
                                   first + i);
        }
        int n = snprintf(req, sizeof(req),
                         "POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n%s", bl,
                         body);
        if (ih_send_all(fd, req, (size_t)n) != 0) {
            close(fd);
            fd = -1;
            continue;
        }
        atomic_fetch_add(&L->requests, 1);
        int status = -1;
        while (!atomic_load(&L->stop)) {
            status = read_reply(fd, reply, sizeof(reply));
            if (status != -1 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                break;
            }
        }
        char want[64];
        snprintf(want, sizeof(want), "\"accepted\":%d,", ACKLOAD_BATCH);
        if (status == 200 && strstr(reply, want) != NULL) {
            for (uint32_t i = 0; i < ACKLOAD_BATCH; i++) {
                L->acked[first + i] = 1;
            }
            atomic_fetch_add(&L->acked_n, ACKLOAD_BATCH);
        } else {
            close(fd); /* a 503, a timeout or a reset: a fresh connection */
            fd = -1;
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    return NULL;
}

ackload_t *ackload_new(void)
{
    ackload_t *L = calloc(1, sizeof(*L));
    if (L == NULL) {
        return NULL;
    }
    L->acked = calloc(ACKLOAD_MAX_IDS, 1);
    if (L->acked == NULL) {
        free(L);
        return NULL;
    }
    return L;
}

void ackload_free(ackload_t *L)
{
    if (L != NULL) {
        free(L->acked);
        free(L);
    }
}

int ackload_start(ackload_t *L, uint16_t port)
{
    L->port = port;
    for (int i = 0; i < ACKLOAD_CLIENTS; i++) {
        if (pthread_create(&L->threads[i], NULL, client, L) != 0) {
            return -1;
        }
    }
    return 0;
}

void ackload_stop(ackload_t *L)
{
    atomic_store(&L->stop, 1);
    for (int i = 0; i < ACKLOAD_CLIENTS; i++) {
        pthread_join(L->threads[i], NULL);
    }
}

void ackload_mark_ids(const char *text, size_t len, uint8_t *seen)
{
    const char *p = text;
    const char *end = text + len;
    while (p < end && (p = memmem(p, (size_t)(end - p), "\"i\":", 4)) != NULL) {
        unsigned long id = strtoul(p + 4, NULL, 10);
        if (id < ACKLOAD_MAX_IDS) {
            seen[id] = 1;
        }
        p += 4;
    }
}

uint64_t ackload_missing(const ackload_t *L, const uint8_t *seen)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < ACKLOAD_MAX_IDS; i++) {
        n += L->acked[i] && !seen[i];
    }
    return n;
}
