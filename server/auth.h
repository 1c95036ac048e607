/* auth.h - bearer tokens for HTTP ingest: a tokens file loaded into an immutable,
 * reference-counted set, a slot that publishes the current set to worker threads across SIGHUP
 * reloads, and a check of an Authorization field value against every token in constant time. */
#ifndef INGESTD_AUTH_H
#define INGESTD_AUTH_H

#include <stddef.h>
#include <stdint.h>

/* Limits of one tokens file; every one is the caller's (a flag, or the defaults below). */
typedef struct {
    size_t max_tokens;     /* tokens in one file; one more is an error */
    size_t max_token_len;  /* bytes of one token, at most SRV_AUTH_TOKEN_LEN_CAP; a longer line
                            * is an error. Every compare runs over this many bytes (rounded up to
                            * 8), whatever the tokens' real lengths, so their lengths do not show
                            * in its time. */
    size_t min_token_len;  /* a shorter token is an error (guessable) */
    size_t max_file_bytes; /* a larger file is an error, before anything is parsed */
} srv_auth_limits_t;

#define SRV_AUTH_TOKEN_LEN_CAP 1024 /* hard ceiling for max_token_len (a stack buffer) */
#define SRV_AUTH_DEFAULT_MAX_TOKENS 64
#define SRV_AUTH_DEFAULT_MAX_TOKEN_LEN 256
#define SRV_AUTH_DEFAULT_MIN_TOKEN_LEN 16
#define SRV_AUTH_DEFAULT_MAX_FILE_BYTES ((size_t)1024 * 1024)
/* Size of a message buffer that holds any error or warning text in full. */
#define SRV_AUTH_MSGLEN 512

/* Fills *out with the SRV_AUTH_DEFAULT_* values. */
void srv_auth_limits_default(srv_auth_limits_t *out);

/* An immutable set of tokens. Nothing changes it after it is built, so any number of threads
 * may check against it at once; it lives while it has references. Memory: one allocation of
 * tokens-in-file * (max_token_len rounded up to 8, + 8) bytes plus 48, through the
 * counting layer (mem_malloc), wiped (explicit_bzero) before it is freed. */
typedef struct srv_auth_set srv_auth_set_t;

/* Parses a tokens file's text (len bytes, NUL bytes are bad characters) into a new set with one
 * reference (*out). Format: one token per line; LF or CRLF line ends; spaces and tabs around a
 * token trimmed; blank lines and lines whose first non-blank byte is '#' ignored. A token is an
 * RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" of
 * min_token_len..max_token_len bytes. Errors, each as one line in msg naming source and the line
 * number ("tokens.txt:3: ..."), the token never quoted: a bad character (whitespace inside a
 * token, e.g. a trailing comment, says so), too short, too long, more than max_tokens tokens, no
 * token at all, text over max_file_bytes. Returns 0 (msg then holds warnings, such as a duplicate
 * token, or is empty), -EINVAL for bad text or limits, -ENOMEM. On error *out is untouched.
 * msg (msgsize bytes, SRV_AUTH_MSGLEN holds all) may be NULL. Any thread. */
int srv_auth_set_parse(const char *text, size_t len, const char *source,
                       const srv_auth_limits_t *lim, srv_auth_set_t **out, char *msg,
                       size_t msgsize);

/* Reads the file at path (symlinks followed: Kubernetes Secret volumes are symlinks) and parses
 * it as srv_auth_set_parse does, with path as the source. Besides its errors: not a regular file
 * -> -EINVAL; open/read errors -> -errno with the system's text in msg. Warns (msg, return 0)
 * when the file is readable or writable by every user ("chmod 600"). The file's bytes are wiped
 * from memory after parsing. Control thread (blocking I/O), at start-up and on SIGHUP; a failed
 * reload should keep the set in force and log msg. */
int srv_auth_set_load(const char *path, const srv_auth_limits_t *lim, srv_auth_set_t **out,
                      char *msg, size_t msgsize);

/* Number of tokens in set (0 for NULL). Any thread holding a reference. */
size_t srv_auth_set_count(const srv_auth_set_t *set);

/* Adds a reference; returns set (NULL gives NULL). Any thread holding a reference. */
srv_auth_set_t *srv_auth_set_ref(srv_auth_set_t *set);

/* Drops a reference; the last one wipes and frees the set. NULL does nothing. Any thread. */
void srv_auth_set_unref(srv_auth_set_t *set);

/* What a request's Authorization field says. */
typedef enum {
    SRV_AUTH_OK = 0,        /* "Bearer <token>" with a token of the set */
    SRV_AUTH_MISSING = 1,   /* no Authorization field (value NULL) -> 401, challenge without
                             * an error code (RFC 6750 3.1) */
    SRV_AUTH_MALFORMED = 2, /* another scheme, no token, bad token syntax -> 401 (or 400),
                             * error="invalid_request" */
    SRV_AUTH_DENIED = 3,    /* a well-formed bearer token not in the set (or no set) -> 401,
                             * error="invalid_token" */
} srv_auth_result_t;

/* Checks the value of a request's Authorization field (len bytes; value NULL means the field
 * is absent; a request with two Authorization fields is the caller's to refuse as MALFORMED).
 * Syntax (RFC 9110 11.4, RFC 6750 2.1): optional spaces/tabs, the scheme "Bearer" in any case,
 * one or more spaces/tabs, a b64token, optional spaces/tabs. Then the token is compared with
 * every token of set, each over max_token_len bytes, with no branch or early exit on the bytes
 * or lengths compared: the time depends only on the number of tokens and max_token_len (and on
 * len, which the client knows). A caller that collects the value into a bounded buffer may cut
 * it at max_token_len + 64 bytes and pass the cut value: it is then too long and DENIED. set
 * NULL -> DENIED (fail closed: a server without tokens skips the check instead). Any thread,
 * without locks. */
srv_auth_result_t srv_auth_check(const srv_auth_set_t *set, const char *value, size_t len);

/* "ok", "missing", "malformed", "denied": for logs and metric labels. */
const char *srv_auth_result_name(srv_auth_result_t r);

/* Writes the WWW-Authenticate field value for a 401 with result r into buf (NUL-terminated,
 * truncated to size), e.g. `Bearer realm="ingestd", error="invalid_token"`; realm is quoted
 * as given (it must not hold '"' or '\'). Returns the length the whole text needs. */
size_t srv_auth_challenge(srv_auth_result_t r, const char *realm, char *buf, size_t size);

/* The slot: where the control thread publishes the set in force and workers pick it up.
 *
 * Reclamation (why a worker never sees a freed set): the slot holds one reference to the
 * current set, guarded by a mutex, and a generation number that grows with every publish. Each
 * worker keeps a srv_auth_reader_t, which holds its own reference to the set it last saw and
 * that set's generation. On each request the reader compares the generation (one acquire load,
 * no lock, no read-modify-write); only after a publish does it take the mutex, add a reference
 * to the new set, and drop its old one. A set is freed when its last holder lets go: the slot
 * (at the next publish) or the last worker to move on (at its next request after the publish,
 * or srv_auth_reader_close). So at most one set per reader plus the slot's is alive: memory is
 * bounded by (workers + 1) sets, and a worker idle since a reload keeps the old set until it
 * next authenticates a request. */
typedef struct srv_auth_slot srv_auth_slot_t;

/* Creates a slot holding initial (steals the caller's reference; NULL: no set yet). Returns 0
 * or -ENOMEM (initial is then unreferenced). */
int srv_auth_slot_create(srv_auth_set_t *initial, srv_auth_slot_t **out);

/* Drops the slot's reference and frees the slot. Every reader must be closed first (the readers
 * still hold their sets safely, but must not call srv_auth_reader_current with it again). NULL
 * does nothing. */
void srv_auth_slot_destroy(srv_auth_slot_t *slot);

/* Makes set the current one (steals the caller's reference; NULL is allowed) and drops the
 * slot's reference to the old one. Readers switch at their next srv_auth_reader_current. Any
 * thread (the control thread, on SIGHUP after a successful load). */
void srv_auth_slot_publish(srv_auth_slot_t *slot, srv_auth_set_t *set);

/* A new reference to the current set (NULL when none). Takes the mutex. Any thread. */
srv_auth_set_t *srv_auth_slot_get(srv_auth_slot_t *slot);

/* Generation of the slot's current set (0 before any publish). Any thread. */
uint64_t srv_auth_slot_generation(const srv_auth_slot_t *slot);

/* One worker's view of the slot: a plain value to embed in the worker; used by one thread. */
typedef struct {
    srv_auth_set_t *set; /* the reader's reference (NULL before the first call) */
    uint64_t gen;        /* set's generation; UINT64_MAX before the first call */
} srv_auth_reader_t;

/* Initialises a reader that has seen nothing yet. */
void srv_auth_reader_init(srv_auth_reader_t *r);

/* The slot's current set for this reader, borrowed: valid until the next
 * srv_auth_reader_current or srv_auth_reader_close on r. NULL when the slot holds no set.
 * Lock-free unless a publish happened since the last call. The reader's thread only. */
const srv_auth_set_t *srv_auth_reader_current(srv_auth_reader_t *r, srv_auth_slot_t *slot);

/* Drops the reader's reference (may free an old set). The reader may be used again after
 * srv_auth_reader_init. */
void srv_auth_reader_close(srv_auth_reader_t *r);

#endif
