/* report_fixture.c - synthetic `loadgen compare` results for the report's tests. */
#include "report_fixture.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const lgt_mode_names[] = {"naive+libc+tree",       "naive+mimalloc+tree",
                                      "pool+libc+tree",        "pool+mimalloc+tree",
                                      "naive+libc+scan",       "naive+mimalloc+scan",
                                      "pool+libc+scan",        "pool+mimalloc+scan",
                                      "a-mode-no-table-knows", "x"};
const unsigned lgt_mode_names_count = sizeof(lgt_mode_names) / sizeof(lgt_mode_names[0]);

void lgt_set_runs(lg_compare_result_t *r, unsigned mode, lg_fig_t fig, const double *values)
{
    for (unsigned k = 0; k < r->repeat; k++) {
        r->runs[(size_t)k * r->nmodes + mode].fig[fig] = values[k];
    }
}

int lgt_synthetic(lg_compare_result_t *r, unsigned nmodes, unsigned repeat)
{
    if (nmodes > lgt_mode_names_count) {
        return -22;
    }
    int err = lg_result_init(r, nmodes, repeat);
    if (err) {
        return err;
    }
    char *argv[] = {"loadgen",  "compare", "--server",     "build/release/server/ingestd",
                    "--events", "100000",  "--repeat",     "3",
                    "--pin",    "0,1",     "--server-arg", "--sink=null",
                    NULL};
    err = lg_result_set_argv(r, 12, argv);
    if (err) {
        return err;
    }
    snprintf(r->server, sizeof(r->server), "build/release/server/ingestd");
    snprintf(r->transport, sizeof(r->transport), "tcp");
    r->events_per_run = 100000;
    r->connections = 1;
    r->workers = 1;
    r->warmup_s = 0.3;
    r->ok = true;
    lg_env_t *e = &r->env;
    snprintf(e->date, sizeof(e->date), "2026-01-02T03:04:05Z");
    snprintf(e->cpu_model, sizeof(e->cpu_model), "Synthetic CPU @ 3.0GHz");
    e->cpus_online = e->cpus_allowed = 2;
    snprintf(e->kernel, sizeof(e->kernel), "Linux 6.1.0 #1 SMP x86_64");
    snprintf(e->glibc, sizeof(e->glibc), "2.36");
    snprintf(e->mimalloc, sizeof(e->mimalloc), "libmimalloc2.0 2.0.9+ds-2 (dpkg)");
    snprintf(e->ingestd, sizeof(e->ingestd), "ingestd 0.1.0");
    snprintf(e->source_commit, sizeof(e->source_commit), "abc1234");
    snprintf(e->build_type, sizeof(e->build_type), "RelWithDebInfo");
    e->tick_s = 0.01;
    e->pin_server = 0;
    e->pin_loadgen = 1;
    for (unsigned i = 0; i < nmodes; i++) {
        lg_result_set_mode(r, i, lgt_mode_names[i]);
        bool pool = strncmp(lgt_mode_names[i], "pool", 4) == 0;
        bool scan = strstr(lgt_mode_names[i], "scan") != NULL;
        double cpu = (pool ? 5.0 : 7.0) * (scan ? 0.25 : 1.0) + 0.1 * (i % 2);
        for (unsigned k = 0; k < repeat; k++) {
            lg_report_run_t *run = &r->runs[(size_t)k * nmodes + i];
            double jitter = 1.0 + 0.03 * (double)((k * 7 + i * 3) % 5) / 4.0 - 0.015;
            run->fig[LG_FIG_CPU] = cpu * jitter;
            run->fig[LG_FIG_EPS] = 1e6 / (cpu * jitter) * 0.8;
            run->fig[LG_FIG_ALLOCS] = pool ? 0.0001 : 106.0;
            run->fig[LG_FIG_RSS] = (pool ? 3.0 : 2.9) * 1048576.0 * jitter;
            run->fig[LG_FIG_HIT] = pool ? 0.9999 : NAN;
            run->cpu_res_us = 0.01 * 1e6 / 100000;
            run->ok = true;
            run->exit_status = 0;
            run->lost = 0;
            run->nsamples = 20;
            run->samples = calloc(run->nsamples, sizeof(*run->samples));
            if (!run->samples) {
                return -12;
            }
            for (size_t s = 0; s < run->nsamples; s++) {
                run->samples[s].t = 0.1 * (double)s;
                run->samples[s].rss_bytes =
                    (2.5 + (s > 3 ? 0.4 : 0.1 * (double)s) + 0.05 * i) * 1048576.0;
            }
            run->json =
                json_pack("{s:i,s:f}", "sent_events", 100000, "events_per_s", run->fig[LG_FIG_EPS]);
        }
    }
    r->baseline = 0;
    return 0;
}
