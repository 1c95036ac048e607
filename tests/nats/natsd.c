/* natsd.c - real nats-server processes for tests, and reading a JetStream stream back (see
 * natsd.h). */
#include "natsd.h"

#include <nats/nats.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Every server process and directory still there, copied (not pointed to: a failed assertion
 * longjmps out of the test whose stack held the natsd_t), so an atexit handler can kill and
 * remove what a failed test left behind. */
#define MAX_LIVE 16
static struct {
    pid_t pid;
    char dir[64];
} live[MAX_LIVE];
static bool atexit_set;

static void cleanup_all(void)
{
    for (int i = 0; i < MAX_LIVE; i++) {
        natsd_t d = {.pid = live[i].pid};
        memcpy(d.dir, live[i].dir, sizeof(d.dir));
        natsd_stop(&d);
    }
}

/* Records (pid, dir) of d in a free slot, or forgets the slot holding pid / dir. */
static void track(const natsd_t *d, bool on)
{
    if (!atexit_set) {
        atexit(cleanup_all);
        atexit_set = true;
    }
    for (int i = 0; i < MAX_LIVE; i++) {
        bool same = live[i].pid != 0 && live[i].pid == d->pid;
        if (on ? same || live[i].pid == 0 : same) {
            live[i].pid = on ? d->pid : 0;
            memcpy(live[i].dir, on ? d->dir : "", on ? sizeof(live[i].dir) : 1);
            return;
        }
    }
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return 0;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int accepts(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

static int spawn(natsd_t *d)
{
    char port[8], cport[8], log[96];
    snprintf(port, sizeof(port), "%u", d->port);
    snprintf(cport, sizeof(cport), "%u", d->cport);
    snprintf(log, sizeof(log), "%s/nats.log", d->dir);
    char store[80];
    snprintf(store, sizeof(store), "%s/store", d->dir);
    char clusterurl[64];
    snprintf(clusterurl, sizeof(clusterurl), "nats://127.0.0.1:%u", d->cport);
    char cert[96], key[96], conf[96];
    snprintf(cert, sizeof(cert), "%s/server.pem", d->dir);
    snprintf(key, sizeof(key), "%s/server.key", d->dir);
    snprintf(conf, sizeof(conf), "%s/nats.conf", d->dir);
    const char *argv[32];
    int n = 0;
    argv[n++] = "nats-server";
    argv[n++] = "-a";
    argv[n++] = "127.0.0.1";
    argv[n++] = "-p";
    argv[n++] = port;
    argv[n++] = "-js";
    argv[n++] = "-sd";
    argv[n++] = store;
    argv[n++] = "-l";
    argv[n++] = log;
    argv[n++] = "-n";
    argv[n++] = d->name;
    if (d->cport != 0) {
        argv[n++] = "--cluster_name";
        argv[n++] = "itest";
        argv[n++] = "--cluster";
        argv[n++] = clusterurl;
        argv[n++] = "--routes";
        argv[n++] = d->routes;
    }
    if (d->token[0] != '\0') {
        argv[n++] = "--auth";
        argv[n++] = d->token;
    }
    if (d->tls) {
        argv[n++] = "--tls";
        argv[n++] = "--tlscert";
        argv[n++] = cert;
        argv[n++] = "--tlskey";
        argv[n++] = key;
    }
    if (d->conf) {
        argv[n++] = "-c";
        argv[n++] = conf;
    }
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        execvp("nats-server", (char *const *)argv);
        _exit(127);
    }
    d->pid = pid;
    track(d, true);
    return 0;
}

static int wait_accepting(natsd_t *d)
{
    for (int i = 0; i < 1500; i++) {
        if (accepts(d->port)) {
            return 0;
        }
        int status;
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            d->pid = 0;
            return -1;
        }
        sleep_ms(10);
    }
    return -1;
}

static int make_dir(natsd_t *d, const char *name)
{
    snprintf(d->dir, sizeof(d->dir), "/tmp/ingestd-nats.XXXXXX");
    if (mkdtemp(d->dir) == NULL) {
        return -1;
    }
    snprintf(d->name, sizeof(d->name), "%s", name);
    return 0;
}

/* A throwaway CA and a server certificate for IP 127.0.0.1 in d->dir, with the openssl CLI (EC
 * P-256 keys: quick to make). Returns 0 or -1. */
static int make_certs(const natsd_t *d)
{
    static const char script[] =
        "cd '%s' && "
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout ca.key -out ca.pem -days 1 -subj /CN=ingestd-test-ca && "
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout server.key -out server.csr -subj /CN=127.0.0.1 && "
        "printf 'subjectAltName=IP:127.0.0.1\\n' > san.cnf && "
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out server.pem -days 1 -extfile san.cnf";
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), script, d->dir);
    char quiet[1100];
    snprintf(quiet, sizeof(quiet), "(%s) >/dev/null 2>&1", cmd);
    if (system(quiet) != 0) {
        fprintf(stderr, "natsd: openssl could not make certificates in %s\n", d->dir);
        return -1;
    }
    return 0;
}

static int write_file(const char *dir, const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        return -1;
    }
    int ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

int natsd_start(natsd_t *d)
{
    return natsd_start_with(d, NULL);
}

int natsd_start_with(natsd_t *d, const natsd_opts_t *o)
{
    memset(d, 0, sizeof(*d));
    if (make_dir(d, "n0") != 0) {
        return -1;
    }
    if (o != NULL && o->token != NULL) {
        snprintf(d->token, sizeof(d->token), "%s", o->token);
    }
    if (o != NULL && o->tls) {
        d->tls = true;
        if (make_certs(d) != 0) {
            return -1;
        }
    }
    if (o != NULL && o->conf != NULL) {
        d->conf = true;
        if (write_file(d->dir, "nats.conf", o->conf) != 0) {
            return -1;
        }
    }
    for (int attempt = 0; attempt < 3; attempt++) {
        d->port = free_port();
        if (d->port != 0 && spawn(d) == 0 && wait_accepting(d) == 0) {
            return 0;
        }
        natsd_kill(d);
    }
    return -1;
}

void natsd_url(const natsd_t *d, char *out, size_t cap)
{
    snprintf(out, cap, "%s://%s%s127.0.0.1:%u", d->tls ? "tls" : "nats", d->token,
             d->token[0] != '\0' ? "@" : "", d->port);
}

/* A JetStream request (account info) answered through url. */
static int js_answers(const char *url)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsAccountInfo *ai = NULL;
    int ok = natsConnection_ConnectTo(&nc, url) == NATS_OK &&
             natsConnection_JetStream(&js, nc, NULL) == NATS_OK &&
             js_GetAccountInfo(&ai, js, NULL, NULL) == NATS_OK;
    jsAccountInfo_Destroy(ai);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return ok;
}

int natsd_start_cluster(natsd_t d[3])
{
    uint16_t cports[3];
    for (int i = 0; i < 3; i++) {
        memset(&d[i], 0, sizeof(d[i]));
        char name[8];
        snprintf(name, sizeof(name), "n%d", i);
        if (make_dir(&d[i], name) != 0) {
            return -1;
        }
        d[i].port = free_port();
        cports[i] = free_port();
        d[i].cport = cports[i];
    }
    for (int i = 0; i < 3; i++) {
        snprintf(d[i].routes, sizeof(d[i].routes),
                 "nats://127.0.0.1:%u,nats://127.0.0.1:%u,nats://127.0.0.1:%u", cports[0],
                 cports[1], cports[2]);
        if (spawn(&d[i]) != 0) {
            return -1;
        }
    }
    for (int i = 0; i < 3; i++) {
        if (wait_accepting(&d[i]) != 0) {
            fprintf(stderr, "natsd: %s does not accept on %u (log: %s/nats.log)\n", d[i].name,
                    d[i].port, d[i].dir);
            return -1;
        }
    }
    char url[64];
    for (int i = 0; i < 3; i++) {
        natsd_url(&d[i], url, sizeof(url));
        int t = 0;
        while (!js_answers(url)) {
            if (++t > 60) {
                fprintf(stderr, "natsd: no JetStream answer from %s\n", url);
                return -1;
            }
            sleep_ms(250);
        }
    }
    return 0;
}

int natsd_restart(natsd_t *d)
{
    if (spawn(d) != 0) {
        return -1;
    }
    return wait_accepting(d);
}

void natsd_kill(natsd_t *d)
{
    if (d->pid > 0) {
        track(d, false);
        kill(d->pid, SIGKILL);
        waitpid(d->pid, NULL, 0);
        d->pid = 0;
    }
}

void natsd_stop(natsd_t *d)
{
    if (d->pid > 0) {
        kill(d->pid, SIGTERM);
        for (int i = 0; i < 500; i++) {
            if (waitpid(d->pid, NULL, WNOHANG) == d->pid) {
                d->pid = 0;
                break;
            }
            sleep_ms(10);
        }
        natsd_kill(d);
    }
    if (d->dir[0] != '\0') {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "natsd: could not remove %s\n", d->dir);
        }
        d->dir[0] = '\0';
    }
}

/* Connects to urls (comma-separated; "tls://" ones by TLS, the server not verified). */
static int connect_js(const char *urls, natsConnection **nc, jsCtx **js)
{
    char copy[512], url[8][128];
    const char *servers[8];
    int n = 0;
    bool tls = false;
    snprintf(copy, sizeof(copy), "%s", urls);
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t != NULL && n < 8;
         t = strtok_r(NULL, ",", &save)) {
        bool t_tls = strncmp(t, "tls://", 6) == 0; /* cnats 3.4 knows no tls:// scheme */
        snprintf(url[n], sizeof(url[n]), "%s%s", t_tls ? "nats://" : "", t_tls ? t + 6 : t);
        tls = tls || t_tls;
        servers[n] = url[n];
        n++;
    }
    natsOptions *o = NULL;
    int ok = natsOptions_Create(&o) == NATS_OK &&
             natsOptions_SetServers(o, servers, n) == NATS_OK &&
             (!tls || (natsOptions_SetSecure(o, true) == NATS_OK &&
                       natsOptions_SkipServerVerification(o, true) == NATS_OK)) &&
             natsOptions_SetTimeout(o, 5000) == NATS_OK && natsConnection_Connect(nc, o) == NATS_OK;
    natsOptions_Destroy(o);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 10000;
    if (!ok || natsConnection_JetStream(js, *nc, &jo) != NATS_OK) {
        natsConnection_Destroy(*nc);
        *nc = NULL;
        return -1;
    }
    return 0;
}

int natsd_create_stream(const char *urls, const char *name, const char *subj, int replicas)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    if (connect_js(urls, &nc, &js) != 0) {
        return -1;
    }
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[1] = {subj};
    sc.Name = name;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Replicas = replicas;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = NATS_ERR;
    for (int i = 0; i < 20 && s != NATS_OK; i++) {
        s = js_AddStream(&si, js, &sc, NULL, &jerr);
        if (s != NATS_OK) {
            sleep_ms(250); /* a cluster may still be electing */
        }
    }
    if (s != NATS_OK) {
        fprintf(stderr, "natsd: add stream %s: %s (%d)\n", name, natsStatus_GetText(s), (int)jerr);
    }
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return s == NATS_OK ? 0 : -1;
}

int natsd_stream_leader(const char *urls, const char *name, char *out, size_t cap)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    if (connect_js(urls, &nc, &js) != 0) {
        return -1;
    }
    jsStreamInfo *si = NULL;
    int rc = -1;
    if (js_GetStreamInfo(&si, js, name, NULL, NULL) == NATS_OK && si->Cluster != NULL &&
        si->Cluster->Leader != NULL) {
        snprintf(out, cap, "%s", si->Cluster->Leader);
        rc = 0;
    }
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return rc;
}

/* A small open-addressing set of message ids (strings), for duplicate detection. */
typedef struct {
    char **slots;
    size_t cap;
    size_t n;
} idset_t;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s != '\0'; s++) {
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    }
    return h;
}

/* Returns 1 when id was already there, 0 when added, -1 on no memory. */
static int idset_add(idset_t *set, const char *id)
{
    if ((set->n + 1) * 2 > set->cap) {
        size_t ncap = set->cap ? set->cap * 2 : 1024;
        char **ns = calloc(ncap, sizeof(char *));
        if (ns == NULL) {
            return -1;
        }
        for (size_t i = 0; i < set->cap; i++) {
            if (set->slots[i] != NULL) {
                size_t j = hash_str(set->slots[i]) & (ncap - 1);
                while (ns[j] != NULL) {
                    j = (j + 1) & (ncap - 1);
                }
                ns[j] = set->slots[i];
            }
        }
        free(set->slots);
        set->slots = ns;
        set->cap = ncap;
    }
    size_t j = hash_str(id) & (set->cap - 1);
    while (set->slots[j] != NULL) {
        if (strcmp(set->slots[j], id) == 0) {
            return 1;
        }
        j = (j + 1) & (set->cap - 1);
    }
    set->slots[j] = strdup(id);
    set->n++;
    return set->slots[j] != NULL ? 0 : -1;
}

static void idset_free(idset_t *set)
{
    for (size_t i = 0; i < set->cap; i++) {
        free(set->slots[i]);
    }
    free(set->slots);
}

static void scan_body(const char *p, size_t len, natsd_content_t *c, uint64_t *lines)
{
    const char *end = p + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl != NULL ? nl : end;
        (*lines)++;
        const char *k = memmem(p, (size_t)(le - p), "\"i\":", 4);
        if (k != NULL) {
            uint64_t id = strtoull(k + 4, NULL, 10);
            if (id > c->max_id) {
                c->max_id = id;
            }
            if (c->seen != NULL && id < c->max_ids) {
                if (c->seen[id]) {
                    c->dup_events++;
                }
                c->seen[id] = 1;
            }
        }
        p = nl != NULL ? nl + 1 : end;
    }
}

int natsd_read_stream(const char *urls, const char *name, size_t max_ids, natsd_content_t *out)
{
    memset(out, 0, sizeof(*out));
    if (max_ids > 0) {
        out->seen = calloc(max_ids, 1);
        out->max_ids = max_ids;
        if (out->seen == NULL) {
            return -1;
        }
    }
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    if (connect_js(urls, &nc, &js) != 0) {
        return -1;
    }
    jsStreamInfo *si = NULL;
    int rc = -1;
    idset_t ids = {0};
    if (js_GetStreamInfo(&si, js, name, NULL, NULL) != NATS_OK) {
        goto done;
    }
    rc = 0;
    for (uint64_t seq = si->State.FirstSeq; seq <= si->State.LastSeq && seq > 0; seq++) {
        natsMsg *m = NULL;
        natsStatus s = js_GetMsg(&m, js, name, seq, NULL, NULL);
        if (s == NATS_NOT_FOUND) {
            continue;
        }
        if (s != NATS_OK) {
            rc = -1;
            break;
        }
        out->msgs++;
        size_t blen = (size_t)natsMsg_GetDataLength(m);
        out->max_body = blen > out->max_body ? blen : out->max_body;
        uint64_t lines = 0;
        scan_body(natsMsg_GetData(m), blen, out, &lines);
        out->events += lines;
        const char *v = NULL;
        if (natsMsgHeader_Get(m, "Ingestd-Count", &v) != NATS_OK || v == NULL ||
            strtoull(v, NULL, 10) != lines) {
            out->count_mismatch++;
        }
        if (natsMsgHeader_Get(m, "Nats-Msg-Id", &v) == NATS_OK && v != NULL &&
            idset_add(&ids, v) == 1) {
            out->dup_msg_ids++;
        }
        natsMsg_Destroy(m);
    }
done:
    idset_free(&ids);
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return rc;
}

int natsd_stream_holds_exactly(const char *urls, const char *name, uint64_t n, size_t *max_body)
{
    natsd_content_t c;
    if (natsd_read_stream(urls, name, n, &c) != 0) {
        fprintf(stderr, "natsd: cannot read stream %s at %s\n", name, urls);
        return -1;
    }
    uint64_t missing = 0;
    for (uint64_t i = 0; i < n; i++) {
        missing += c.seen[i] ? 0 : 1;
    }
    int ok = c.events == n && c.dup_events == 0 && c.dup_msg_ids == 0 && c.count_mismatch == 0 &&
             missing == 0;
    if (!ok) {
        fprintf(stderr,
                "natsd: stream %s holds %llu events for %llu: %llu missing, %llu duplicated, "
                "%llu message ids twice, %llu messages with a wrong Ingestd-Count\n",
                name, (unsigned long long)c.events, (unsigned long long)n,
                (unsigned long long)missing, (unsigned long long)c.dup_events,
                (unsigned long long)c.dup_msg_ids, (unsigned long long)c.count_mismatch);
    }
    if (max_body != NULL) {
        *max_body = c.max_body;
    }
    natsd_content_free(&c);
    return ok ? 0 : -1;
}

void natsd_content_free(natsd_content_t *c)
{
    free(c->seen);
    c->seen = NULL;
}
