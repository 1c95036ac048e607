/* server/server.c - the service's life: bind every listening socket, create the pool, the sink,
 * the shared state, the workers and the control loop, run, and free it all (server.h). */
#include "server/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mem/allocprof.h"
#include "mem/mem.h"
#include "server/auth.h"
#include "server/control.h"
#include "server/expo.h"
#include "server/log.h"
#include "server/peers.h"
#include "server/shared.h"
#include "server/worker.h"

struct srv_server {
    srv_config_t cfg;
    srv_shared_t sh;
    int trim_open;
    srv_worker_t **workers;
    srv_control_t *control;
};

/* ---- sockets ---- */

static socklen_t addr_len(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
    if (ss->ss_family == AF_INET6) {
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
    } else {
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    }
}

static void format_addr(const struct sockaddr_storage *ss, char *buf, size_t sz)
{
    char host[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        snprintf(buf, sz, "[%s]:%u", host, (unsigned)ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        snprintf(buf, sz, "%s:%u", host, (unsigned)ntohs(a->sin_port));
    }
}

/* A bound (not yet listening) socket. Returns the fd or -errno. */
static int bind_socket(const struct sockaddr_storage *ss, int reuseport)
{
    int one = 1;
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
        bind(fd, (const struct sockaddr *)ss, addr_len(ss)) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

/* Binds n sockets to one address with SO_REUSEPORT. Port 0 is resolved by the first bind and
 * reused by the rest. Writes the bound address to text. Returns 0 or -errno (all closed). */
static int bind_group(const srv_addr_t *a, unsigned n, int *fds, int reuseport, char *text,
                      size_t textsz)
{
    struct sockaddr_storage ss = a->addr;
    socklen_t len = sizeof(ss);

    for (unsigned i = 0; i < n; i++) {
        fds[i] = bind_socket(&ss, reuseport);
        if (fds[i] < 0) {
            int e = fds[i];
            for (unsigned j = 0; j < i; j++) {
                close(fds[j]);
            }
            return e;
        }
        if (i == 0) {
            struct sockaddr_storage bound;
            if (getsockname(fds[0], (struct sockaddr *)&bound, &len) != 0) {
                int e = -errno;
                close(fds[0]);
                return e;
            }
            set_port(&ss,
                     ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                       : ((struct sockaddr_in *)&bound)->sin_port));
            format_addr(&ss, text, textsz);
        }
    }
    return 0;
}

/* ---- create / destroy ---- */

static void sink_log(void *ctx, const char *line)
{
    (void)ctx;
    srv_log("error", "sink", "detail", line, NULL);
}

/* Proves the allocator under the counting layer is the one asked for: a probe allocation must
 * lie in mimalloc's heap exactly when --allocator=mimalloc (STYLE.md, "Allocator pitfall"). */
static int verify_allocator(void)
{
    void *probe = mem_malloc(64);
    int owned = mem_owned_by_mimalloc(probe);
    mem_free(probe);
    if (mem_allocator() == MEM_ALLOCATOR_MIMALLOC) {
        return owned == 1;
    }
    return owned != 1; /* libc: not mimalloc's (or libmimalloc is not even installed) */
}

static void close_fds(int *fds, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
    }
}

/* The sink's durability and JetStream options from the flags; the token file is read into token
 * (trailing whitespace cut). Returns 0 or -errno from reading the file. */
static int sink_nats_options(const srv_config_t *cfg, sink_config_t *sc, char *token, size_t cap)
{
    sc->file_sync = cfg->file_sync != 0;
    /* Half the drain: the workers' writers give up what never became durable in time, and
     * the summary (with the count) is still logged before the shutdown timer ends the process. */
    sc->durable_timeout_ms = cfg->shutdown_timeout_ms / 2 > 0 ? cfg->shutdown_timeout_ms / 2 : 1;
    sc->nats.stream = cfg->nats_stream;
    sc->nats.create_stream = cfg->nats_create_stream != 0;
    sc->nats.replicas = (int)cfg->nats_replicas;
    sc->nats.creds = cfg->nats_creds[0] != '\0' ? cfg->nats_creds : NULL;
    sc->nats.tls = cfg->nats_tls != 0;
    sc->nats.ca_file = cfg->nats_ca[0] != '\0' ? cfg->nats_ca : NULL;
    sc->nats.batch_events = cfg->nats_batch_events;
    sc->nats.batch_bytes = (size_t)cfg->nats_batch_bytes;
    sc->nats.ack_timeout_ms = cfg->nats_ack_timeout_ms;
    sc->nats.max_inflight = cfg->nats_max_inflight;
    sc->nats.reconnect_buf_bytes = (int)cfg->nats_reconnect_buffer;
    sc->nats.instance = cfg->instance_id[0] != '\0' ? cfg->instance_id : NULL;
    if (cfg->nats_token_file[0] == '\0') {
        return 0;
    }
    FILE *f = fopen(cfg->nats_token_file, "re");
    if (f == NULL) {
        return -errno;
    }
    size_t n = fread(token, 1, cap - 1, f);
    fclose(f);
    while (n > 0 && (token[n - 1] == '\n' || token[n - 1] == '\r' || token[n - 1] == ' ')) {
        n--;
    }
    token[n] = '\0';
    sc->nats.token = token;
    return 0;
}

/* The pool and the sink (memory and where events go), and the allocator check. Returns 0 or a
 * negative errno (logged). */
static int open_memory(srv_server_t *s)
{
    const srv_config_t *cfg = &s->cfg;
    srv_shared_t *sh = &s->sh;
    pool_config_t pc;
    sink_config_t sc;
    int r;

    if (cfg->alloc_profile_rate != 0) {
        /* Before any worker starts, so every thread takes the rate from its first allocation. */
        r = allocprof_set_rate(cfg->alloc_profile_rate);
        if (r != 0) {
            srv_log("error", "cannot start the allocation profile", "error", strerror(-r), NULL);
            return r;
        }
    }
    sh->allocator_verified = verify_allocator();
    if (!sh->allocator_verified) {
        srv_log("error", "the allocator serving memory is not the one --allocator names",
                "allocator", mem_allocator_name(mem_allocator()), NULL);
    }
    pool_config_init(&pc);
    pc.mode = cfg->pool ? POOL_MODE_POOLED : POOL_MODE_NAIVE;
    pc.retain_percent = cfg->pool_retain;
    pc.alloc_fn = mem_malloc;
    pc.free_fn = mem_free;
    r = pool_create(&pc, &sh->pool);
    if (r != 0) {
        srv_log("error", "pool", "error", strerror(-r), NULL);
        return r;
    }
    sink_config_init(&sc);
    sc.spec = cfg->sink;
    sc.alloc_fn = mem_malloc;
    sc.free_fn = mem_free;
    sc.log_fn = sink_log;
    char token[SRV_TEXT_MAX] = "";
    r = sink_nats_options(cfg, &sc, token, sizeof(token));
    if (r != 0) {
        srv_log("error", "cannot read --nats-token-file", "file", cfg->nats_token_file, "error",
                strerror(-r), NULL);
        return r;
    }
    r = sink_create(&sc, &sh->sink);
    explicit_bzero(token, sizeof(token));
    if (r != 0) {
        srv_log("error", "cannot open sink", "sink", cfg->sink, "error", strerror(-r), NULL);
    }
    return r;
}

/* Every listening socket: N per ingest transport (SO_REUSEPORT), one admin. fds[0..n) of each
 * group are -1 when off. Returns 0 or a negative errno (logged; what was bound stays in the
 * arrays for the caller to close). */
static int bind_all(const srv_config_t *cfg, unsigned n, int *tcp_fds, int *http_fds, int *admin_fd,
                    char text[3][80])
{
    const struct {
        const srv_addr_t *addr;
        int *fds;
        unsigned count;
        int reuseport;
        const char *what;
    } groups[] = {
        {&cfg->tcp, tcp_fds, n, 1, "tcp"},
        {&cfg->http, http_fds, n, 1, "http"},
        {&cfg->admin, admin_fd, 1, 0, "admin"},
    };
    for (size_t g = 0; g < 3; g++) {
        if (!groups[g].addr->enabled) {
            continue;
        }
        int r = bind_group(groups[g].addr, groups[g].count, groups[g].fds, groups[g].reuseport,
                           text[g], sizeof(text[g]));
        if (r != 0) {
            srv_log("error", "cannot listen", groups[g].what, groups[g].addr->text, "error",
                    strerror(-r), NULL);
            return r;
        }
    }
    return 0;
}

int srv_server_load_tokens(srv_shared_t *sh)
{
    srv_auth_limits_t lim;
    srv_auth_set_t *set = NULL;
    char msg[SRV_AUTH_MSGLEN];
    const char *path = sh->cfg->ingest_tokens_file;

    srv_auth_limits_default(&lim);
    msg[0] = '\0';
    int r = srv_auth_set_load(path, &lim, &set, msg, sizeof(msg));
    if (r != 0) {
        srv_log("error", "cannot load --ingest-tokens-file; the tokens in force stay", "path", path,
                "error", msg, NULL);
        return r;
    }
    if (msg[0] != '\0') {
        srv_log("warn", "ingest tokens", "path", path, "warning", msg, NULL);
    }
    char count[24];
    snprintf(count, sizeof(count), "%zu", srv_auth_set_count(set));
    if (sh->auth == NULL) {
        r = srv_auth_slot_create(set, &sh->auth);
        if (r != 0) {
            return r;
        }
    } else {
        srv_auth_slot_publish(sh->auth, set);
    }
    srv_log("info", "ingest tokens loaded", "path", path, "tokens", count, NULL);
    return 0;
}

/* The per-worker arrays of shared.h. Returns 0 or -ENOMEM. */
static int alloc_shared(srv_server_t *s)
{
    srv_shared_t *sh = &s->sh;
    sh->stats = mem_calloc(sh->nworkers, sizeof(*sh->stats));
    sh->types = mem_calloc(sh->nworkers, sizeof(*sh->types));
    sh->caches = mem_calloc(sh->nworkers, sizeof(*sh->caches));
    s->workers = mem_calloc(sh->nworkers, sizeof(*s->workers));
    if (sh->stats == NULL || sh->types == NULL || sh->caches == NULL || s->workers == NULL) {
        return -ENOMEM;
    }
    for (unsigned i = 0; i < sh->nworkers; i++) {
        srv_expo_trim_hist_init(&sh->stats[i].trim);
    }
    sh->partial_budget = srv_config_partial_budget(sh->cfg);
    if (sh->cfg->ingest_tokens_file[0] != '\0') {
        int r = srv_server_load_tokens(sh);
        if (r != 0) {
            return r;
        }
    }
    if (sh->cfg->max_conns_per_peer != 0) {
        /* Each worker closes at most one connection at a time to make room: cap + workers. */
        srv_peers_config_t pc = {
            .max_peers = (size_t)sh->cfg->max_connections + sh->nworkers,
            .per_peer = (unsigned)sh->cfg->max_conns_per_peer,
        };
        int r = srv_peers_create(&pc, &sh->peers);
        if (r != 0) {
            srv_log("error", "cannot create the per-peer table", "error", strerror(-r), NULL);
            return r;
        }
    }
    return 0;
}

int srv_server_create(const srv_config_t *cfg, srv_server_t **out)
{
    srv_server_t *s = mem_calloc(1, sizeof(*s));
    srv_shared_t *sh;
    int tcp_fds[1024];
    int http_fds[1024];
    int admin_fd = -1;
    char text[3][80] = {"off", "off", "off"};
    int r;

    if (s == NULL) {
        return -ENOMEM;
    }
    s->cfg = *cfg;
    sh = &s->sh;
    sh->cfg = &s->cfg;
    sh->nworkers = cfg->workers;
    sh->start_ns = uv_hrtime();
    atomic_init(&sh->pooled, cfg->pool);
    atomic_init(&sh->parse, cfg->parse);
    atomic_init(&sh->trim_interval_ms, cfg->trim_interval_ms);
    atomic_init(&sh->memory_limit, cfg->memory_limit);
    for (unsigned i = 0; i < sh->nworkers; i++) {
        tcp_fds[i] = http_fds[i] = -1;
    }
    r = srv_trim_open(&sh->trim, &sh->ctl_async);
    if (r != 0) {
        mem_free(s);
        return -ENOMEM;
    }
    s->trim_open = 1;
    if ((r = open_memory(s)) != 0 || (r = alloc_shared(s)) != 0 ||
        (r = bind_all(cfg, sh->nworkers, tcp_fds, http_fds, &admin_fd, text)) != 0) {
        goto fail;
    }
    for (unsigned i = 0; i < sh->nworkers; i++) {
        r = srv_worker_create(sh, i, tcp_fds[i], http_fds[i], &s->workers[i]);
        if (r != 0) {
            goto fail;
        }
        tcp_fds[i] = http_fds[i] = -1; /* the worker's now */
    }
    srv_listen_text_t lt = {text[0], text[1], text[2]};
    r = srv_control_create(sh, s->workers, admin_fd, &lt, &s->control);
    if (r != 0) {
        srv_log("error", "cannot create the control loop", "error", uv_strerror(r), NULL);
        goto fail;
    }
    *out = s;
    return 0;
fail:
    close_fds(tcp_fds, sh->nworkers);
    close_fds(http_fds, sh->nworkers);
    close_fds(&admin_fd, 1);
    srv_server_destroy(s);
    return r;
}

int srv_server_run(srv_server_t *s)
{
    return srv_control_run(s->control);
}

void srv_server_destroy(srv_server_t *s)
{
    if (s == NULL) {
        return;
    }
    srv_shared_t *sh = &s->sh;
    srv_control_destroy(s->control);
    for (unsigned i = 0; s->workers != NULL && i < sh->nworkers; i++) {
        srv_worker_destroy(s->workers[i]);
    }
    mem_free(s->workers);
    if (sh->sink != NULL) {
        sink_close(sh->sink);
    }
    pool_destroy(sh->pool);
    mem_free(sh->stats);
    mem_free(sh->types);
    mem_free(sh->caches);
    srv_peers_destroy(sh->peers);
    srv_auth_slot_destroy(sh->auth); /* the workers closed their readers at exit */
    if (s->trim_open) {
        srv_trim_close(&sh->trim);
    }
    mem_free(s);
}
