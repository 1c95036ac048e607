/* main.c - ingestd: flags, the allocator layer and hooks, then the service. Wiring only. */
#include <http_parser.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "ingest/arena_json.h"
#include "mem/mem.h"
#include "server/config.h"
#include "server/log.h"
#include "server/server.h"

extern char **environ;

int main(int argc, char **argv)
{
    srv_config_t cfg;
    srv_server_t *srv;

    srv_config_defaults(&cfg);
    switch (srv_config_parse(&cfg, argc, argv, environ, stdout, stderr)) {
    case SRV_CONFIG_EXIT_OK:
        return 0;
    case SRV_CONFIG_ERROR:
        return 2;
    case SRV_CONFIG_RUN:
        break;
    }
    srv_log_init(cfg.log_format);

    /* The counting layer first, under everything: libuv, jansson (through the arena hooks'
     * fallback) and our own code. */
    int r = mem_init((mem_allocator_t)cfg.allocator);
    if (r != 0) {
        fprintf(stderr, "ingestd: invalid value \"%s\" for --allocator: %s\n",
                mem_allocator_name((mem_allocator_t)cfg.allocator), mem_last_error());
        return 2;
    }
    /* libuv is routed through the layer here, the one libuv call outside server/'s loops; the
     * layer itself knows no libuv. Must come before any other libuv call. */
    r = uv_replace_allocator(mem_malloc, mem_realloc, mem_calloc, mem_free);
    if (r != 0) {
        srv_log("error", "cannot hook libuv's allocator", NULL);
        return 1;
    }
    arena_json_install(mem_malloc, mem_free);
    json_object_seed(0);
    /* http-parser's own head ceiling is process-wide; raise it when the flag asks for more. */
    if (cfg.max_header_bytes > HTTP_MAX_HEADER_SIZE) {
        http_parser_set_max_header_size((uint32_t)cfg.max_header_bytes);
    }
    signal(SIGPIPE, SIG_IGN);

    if (srv_server_create(&cfg, &srv) != 0) {
        return 1;
    }
    r = srv_server_run(srv);
    srv_server_destroy(srv);
    return r;
}
