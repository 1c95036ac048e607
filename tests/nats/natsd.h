/* natsd.h - test helpers for the JetStream sink: start real nats-server processes (JetStream on,
 * loopback, a temporary store) alone or as a 3-node cluster, kill and restart them on the same
 * store, and read a stream back with cnats to count its events and message ids. */
#ifndef INGESTD_TEST_NATSD_H
#define INGESTD_TEST_NATSD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* nats-server cannot listen on port 0 and tell us the port in a way that survives a restart, and
 * a restart on the same store must reuse the client port the sink knows: ports are picked by
 * binding 127.0.0.1:0 and closing (a small race with other processes, retried by the start). */
typedef struct {
    pid_t pid;
    char dir[64];     /* temporary dir: store and log */
    char name[16];    /* server name (clusters need one each) */
    uint16_t port;    /* client port */
    uint16_t cport;   /* cluster port (0: standalone) */
    char routes[256]; /* cluster: routes to every node */
    char token[64];   /* required auth token ("": none) */
    bool tls;         /* TLS required, with dir/ca.pem, dir/server.pem, dir/server.key */
    bool conf;        /* started with -c dir/nats.conf */
} natsd_t;

/* What a standalone server requires of its clients besides the defaults (all zero: nothing). */
typedef struct {
    const char *token; /* an auth token (--auth) */
    /* TLS (--tls): a throwaway CA (dir/ca.pem) and a certificate for IP 127.0.0.1 signed by it
     * (dir/server.pem, dir/server.key) are made with the openssl CLI before the start. */
    bool tls;
    const char *conf; /* config file text, written to dir/nats.conf and given with -c */
} natsd_opts_t;

/* Starts a standalone JetStream server on a free loopback port in a new temporary dir, waiting
 * (at most 15 s) until it accepts connections. Returns 0 or -1. */
int natsd_start(natsd_t *d);

/* natsd_start requiring what o says (NULL: the same as natsd_start). Returns 0 or -1. */
int natsd_start_with(natsd_t *d, const natsd_opts_t *o);

/* Starts 3 clustered servers (names n0..n2) and waits until a JetStream request succeeds on each
 * (a meta leader is elected). Returns 0 or -1. */
int natsd_start_cluster(natsd_t d[3]);

/* Starts d again with the same ports and store (after natsd_kill). Returns 0 or -1. */
int natsd_restart(natsd_t *d);

/* SIGKILLs the server and reaps it. */
void natsd_kill(natsd_t *d);

/* SIGTERMs (if running) and removes the temporary dir. */
void natsd_stop(natsd_t *d);

/* "nats://127.0.0.1:PORT" for d, into out; "nats://TOKEN@127.0.0.1:PORT" when d requires a
 * token and "tls://127.0.0.1:PORT" when it requires TLS, which the functions below taking urls
 * understand (TLS without verifying the server: these are test clients). */
void natsd_url(const natsd_t *d, char *out, size_t cap);

/* Creates stream name with subject subj and replicas at url. Returns 0 or -1. */
int natsd_create_stream(const char *urls, const char *name, const char *subj, int replicas);

/* The server name of the stream's leader (cluster), into out. Returns 0 or -1. */
int natsd_stream_leader(const char *urls, const char *name, char *out, size_t cap);

/* What a stream holds, read back message by message. */
typedef struct {
    uint64_t msgs;
    uint64_t events;         /* lines in all bodies */
    uint64_t count_mismatch; /* messages whose Ingestd-Count differs from their lines */
    uint64_t dup_msg_ids;    /* Nats-Msg-Id seen twice */
    uint64_t dup_events;     /* event ids ("i":N) seen twice */
    uint64_t max_id;         /* highest event id seen */
    size_t max_body;         /* bytes of the largest message body */
    uint8_t *seen;           /* seen[i] for event ids 0..max_ids-1 (NULL when not asked) */
    size_t max_ids;
} natsd_content_t;

/* Reads every message of stream at urls. max_ids > 0: records event ids below it (lines that
 * contain "i":N). Returns 0 or -1. Free with natsd_content_free. */
int natsd_read_stream(const char *urls, const char *name, size_t max_ids, natsd_content_t *out);
void natsd_content_free(natsd_content_t *c);

/* Whether stream name at urls holds events 0..n-1 ("i":N) exactly once each and nothing else,
 * with every Ingestd-Count and Nats-Msg-Id right; what is wrong is said on stderr. *max_body
 * (may be NULL) gets the largest message body. Returns 0 or -1. */
int natsd_stream_holds_exactly(const char *urls, const char *name, uint64_t n, size_t *max_body);

#endif
