/* test_drain.c - integration: SIGTERM while clients send loses nothing read, and SIGHUP
 * rotation of the file sink under load loses nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define NCLIENTS 3
#define MAX_SEQ 2000000

typedef struct {
    uint16_t port;
    int client;
    long limit; /* events to send; <0: until the server goes away */
    long sent;
} sender_t;

static void *sender(void *arg)
{
    sender_t *s = arg;
    char buf[16384];
    int fd = ih_connect(s->port);
    if (fd < 0) {
        return NULL;
    }
    while (s->limit < 0 || s->sent < s->limit) {
        size_t len = 0;
        while (len < sizeof(buf) - 100 && (s->limit < 0 || s->sent < s->limit)) {
            len += (size_t)snprintf(buf + len, sizeof(buf) - len,
                                    "{\"type\":\"t\",\"c\":%d,\"i\":%ld}\n", s->client, s->sent);
            s->sent++;
        }
        if (ih_send_all(fd, buf, len) != 0) {
            break;
        }
    }
    close(fd);
    return NULL;
}

/* Reads every line of the files, checking each is one of ours and that, per client, the
 * sequence numbers seen are exactly 0..k-1 (in-order, nothing lost, nothing twice). Returns
 * the number of lines. */
static long check_files(char **paths, int npaths)
{
    static unsigned char seen[NCLIENTS][MAX_SEQ];
    long count[NCLIENTS] = {0};
    long total = 0;
    char line[256];

    memset(seen, 0, sizeof(seen));
    for (int p = 0; p < npaths; p++) {
        FILE *f = fopen(paths[p], "r");
        if (f == NULL) {
            continue;
        }
        while (fgets(line, sizeof(line), f) != NULL) {
            int c;
            long i;
            assert_int_equal(sscanf(line, "{\"type\":\"t\",\"c\":%d,\"i\":%ld}\n", &c, &i), 2);
            assert_true(c >= 0 && c < NCLIENTS && i >= 0 && i < MAX_SEQ);
            assert_int_equal(seen[c][i], 0);
            seen[c][i] = 1;
            count[c]++;
            total++;
        }
        fclose(f);
    }
    for (int c = 0; c < NCLIENTS; c++) {
        for (long i = 0; i < count[c]; i++) {
            assert_int_equal(seen[c][i], 1);
        }
    }
    return total;
}

static void test_sigterm_while_clients_send_keeps_every_event_read(void **state)
{
    char dir[] = "/tmp/ingestd-drain-XXXXXX";
    char path[128], flag[160];
    ih_server_t s;
    pthread_t th[NCLIENTS];
    sender_t snd[NCLIENTS];
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/events.ndjson", dir);
    snprintf(flag, sizeof(flag), "--sink=file:%s", path);
    const char *extra[] = {flag, NULL};
    assert_int_equal(ih_start(&s, extra), 0);
    for (int c = 0; c < NCLIENTS; c++) {
        snd[c] = (sender_t){.port = s.tcp_port, .client = c, .limit = -1, .sent = 0};
        assert_int_equal(pthread_create(&th[c], NULL, sender, &snd[c]), 0);
    }
    assert_true(ih_wait_metric(s.admin_port, "ingestd_events_accepted_total", 30000, 60000) >=
                30000);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    for (int c = 0; c < NCLIENTS; c++) {
        pthread_join(th[c], NULL);
    }
    int64_t accepted = ih_log_value(&s, "shutdown", "events_accepted");
    assert_true(accepted >= 30000);
    assert_int_equal(ih_log_value(&s, "shutdown", "rejected_parse"), 0);
    assert_true(ih_log_value(&s, "shutdown", "rejected_truncated") <= NCLIENTS);
    char *paths[] = {path};
    assert_int_equal(check_files(paths, 1), accepted);
    unlink(path);
    rmdir(dir);
    ih_cleanup(&s);
}

static void test_sighup_rotation_under_load_loses_nothing(void **state)
{
    char dir[] = "/tmp/ingestd-hup-XXXXXX";
    char path[128], flag[160];
    char rotated[8][160];
    char *paths[9];
    int nrot = 0;
    ih_server_t s;
    pthread_t th[NCLIENTS];
    sender_t snd[NCLIENTS];
    const long per_client = 100000;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/events.ndjson", dir);
    snprintf(flag, sizeof(flag), "--sink=file:%s", path);
    const char *extra[] = {flag, NULL};
    assert_int_equal(ih_start(&s, extra), 0);
    for (int c = 0; c < NCLIENTS; c++) {
        snd[c] = (sender_t){.port = s.tcp_port, .client = c, .limit = per_client, .sent = 0};
        assert_int_equal(pthread_create(&th[c], NULL, sender, &snd[c]), 0);
    }
    for (double want = 20000; nrot < 5; want += 30000) {
        if (ih_wait_metric(s.admin_port, "ingestd_events_accepted_total", want, 60000) >=
            NCLIENTS * per_client) {
            break;
        }
        snprintf(rotated[nrot], sizeof(rotated[nrot]), "%s.%d", path, nrot);
        assert_int_equal(rename(path, rotated[nrot]), 0);
        kill(s.pid, SIGHUP);
        nrot++;
        /* The writer thread reopens asynchronously: rotate again only after it did. */
        assert_true(ih_wait_metric(s.admin_port, "ingestd_sink_reopens_total", nrot, 60000) >=
                    nrot);
    }
    for (int c = 0; c < NCLIENTS; c++) {
        pthread_join(th[c], NULL);
        assert_int_equal(snd[c].sent, per_client);
    }
    assert_true(ih_wait_metric(s.admin_port, "ingestd_events_accepted_total",
                               (double)NCLIENTS * per_client, 60000) >= NCLIENTS * per_client);
    assert_int_equal(ih_stop(&s, SIGTERM), 0);
    assert_int_equal(ih_log_value(&s, "shutdown", "events_accepted"), NCLIENTS * per_client);
    assert_true(nrot >= 1);
    for (int i = 0; i < nrot; i++) {
        paths[i] = rotated[i];
    }
    paths[nrot] = path;
    assert_int_equal(check_files(paths, nrot + 1), NCLIENTS * per_client);
    for (int i = 0; i <= nrot; i++) {
        unlink(paths[i]);
    }
    rmdir(dir);
    ih_cleanup(&s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigterm_while_clients_send_keeps_every_event_read),
        cmocka_unit_test(test_sighup_rotation_under_load_loses_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
