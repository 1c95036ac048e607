/* nats.c - counting what a JetStream stream gained (see lg_nats.h). Reads messages one by one
 * with js_GetMsg: simple and exact, about 10k messages/s; with the sink's default batch that is
 * hundreds of events per message. */
#include "lg_nats.h"

#include <nats/nats.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int lg_nats_parse(const char *spec, lg_nats_target_t *out)
{
    memset(out, 0, sizeof(*out));
    if (strncmp(spec, "nats://", 7) != 0) {
        return -EINVAL;
    }
    const char *hosts = spec + 7;
    const char *slash = strchr(hosts, '/');
    if (slash == NULL || slash == hosts || slash[1] == '\0' ||
        strlen(slash + 1) >= sizeof(out->stream) || strchr(slash + 1, '/') != NULL) {
        return -EINVAL;
    }
    snprintf(out->stream, sizeof(out->stream), "%s", slash + 1);
    const char *p = hosts;
    while (p < slash) {
        const char *comma = memchr(p, ',', (size_t)(slash - p));
        const char *end = comma != NULL ? comma : slash;
        if (end == p || out->nservers == 8 || (size_t)(end - p) > 100) {
            return -EINVAL;
        }
        snprintf(out->servers[out->nservers++], sizeof(out->servers[0]), "nats://%.*s",
                 (int)(end - p), p);
        p = end + 1;
    }
    return 0;
}

static int connect_js(const lg_nats_target_t *t, natsConnection **nc, jsCtx **js, char *err,
                      size_t errlen)
{
    const char *servers[8];
    for (int i = 0; i < t->nservers; i++) {
        servers[i] = t->servers[i];
    }
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK) {
        s = natsOptions_SetServers(o, servers, t->nservers);
    }
    if (s == NATS_OK) {
        s = natsConnection_Connect(nc, o);
    }
    natsOptions_Destroy(o);
    if (s == NATS_OK) {
        s = natsConnection_JetStream(js, *nc, NULL);
    }
    if (s != NATS_OK) {
        snprintf(err, errlen, "connect %s: %s", t->servers[0], natsStatus_GetText(s));
        natsConnection_Destroy(*nc);
        *nc = NULL;
        return -1;
    }
    return 0;
}

static int last_seq(jsCtx *js, const char *stream, uint64_t *last, char *err, size_t errlen)
{
    jsStreamInfo *si = NULL;
    natsStatus s = js_GetStreamInfo(&si, js, stream, NULL, NULL);
    if (s != NATS_OK) {
        snprintf(err, errlen, "stream %s: %s", stream, natsStatus_GetText(s));
        return -1;
    }
    *last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    return 0;
}

int lg_nats_last_seq(const lg_nats_target_t *t, uint64_t *last, char *err, size_t errlen)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    if (connect_js(t, &nc, &js, err, errlen) != 0) {
        return -1;
    }
    int rc = last_seq(js, t->stream, last, err, errlen);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return rc;
}

/* A set of message ids (open addressing), for duplicates. */
typedef struct {
    char **slot;
    size_t cap, n;
} ids_t;

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    }
    return h;
}

/* 1: seen before; 0: added; -1: no memory. */
static int ids_add(ids_t *ids, const char *id)
{
    if ((ids->n + 1) * 2 > ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 4096;
        char **slot = calloc(cap, sizeof(*slot));
        if (slot == NULL) {
            return -1;
        }
        for (size_t i = 0; i < ids->cap; i++) {
            if (ids->slot[i] != NULL) {
                size_t j = hash(ids->slot[i]) & (cap - 1);
                while (slot[j] != NULL) {
                    j = (j + 1) & (cap - 1);
                }
                slot[j] = ids->slot[i];
            }
        }
        free(ids->slot);
        ids->slot = slot;
        ids->cap = cap;
    }
    size_t j = hash(id) & (ids->cap - 1);
    while (ids->slot[j] != NULL) {
        if (strcmp(ids->slot[j], id) == 0) {
            return 1;
        }
        j = (j + 1) & (ids->cap - 1);
    }
    ids->slot[j] = strdup(id);
    ids->n++;
    return ids->slot[j] != NULL ? 0 : -1;
}

static void ids_free(ids_t *ids)
{
    for (size_t i = 0; i < ids->cap; i++) {
        free(ids->slot[i]);
    }
    free(ids->slot);
}

static uint64_t lines_of(const char *p, int len)
{
    uint64_t n = 0;
    const char *end = p + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        n++;
        p = nl != NULL ? nl + 1 : end;
    }
    return n;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int lg_nats_count(const lg_nats_target_t *t, uint64_t after_seq, uint64_t want, int settle_ms,
                  int timeout_ms, uint64_t *msgs, uint64_t *events, uint64_t *dup_ids, char *err,
                  size_t errlen)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    *msgs = *events = *dup_ids = 0;
    if (connect_js(t, &nc, &js, err, errlen) != 0) {
        return -1;
    }
    ids_t ids = {0};
    uint64_t next = after_seq + 1;
    int waited = 0, still = 0, rc = 0;
    for (;;) {
        uint64_t last;
        if (last_seq(js, t->stream, &last, err, errlen) != 0) {
            rc = -1;
            break;
        }
        bool grew = next <= last;
        for (; next <= last; next++) {
            natsMsg *m = NULL;
            natsStatus s = js_GetMsg(&m, js, t->stream, next, NULL, NULL);
            if (s == NATS_NOT_FOUND) {
                continue; /* deleted (limits): not ours to count */
            }
            if (s != NATS_OK) {
                snprintf(err, errlen, "get message %llu: %s", (unsigned long long)next,
                         natsStatus_GetText(s));
                rc = -1;
                break;
            }
            (*msgs)++;
            *events += lines_of(natsMsg_GetData(m), natsMsg_GetDataLength(m));
            const char *id = NULL;
            if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) == NATS_OK && id != NULL &&
                ids_add(&ids, id) == 1) {
                (*dup_ids)++;
            }
            natsMsg_Destroy(m);
        }
        if (rc != 0 || *events >= want || waited >= timeout_ms) {
            break;
        }
        still = grew ? 0 : still + 200;
        if (still >= settle_ms) {
            break;
        }
        sleep_ms(200);
        waited += 200;
    }
    ids_free(&ids);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return rc;
}
