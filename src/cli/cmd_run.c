/* cmd_run: `bmsfleet run`, the daemon's command line. It loads the configuration, starts the
 * daemon (daemon.h: the threads and their order), owns the signals (SIGINT/SIGTERM stop,
 * SIGHUP reloads), and is the --stdout sink: every reading as one JSON object per line. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "report.h"

static void usage(FILE *f)
{
    fputs("usage: bmsfleet run [-c FILE] [--stdout] [--log-level error|warn|info|debug]\n"
          "Polls every pack of the configuration until SIGINT/SIGTERM.\n"
          "  -c, --config FILE   the YAML configuration (default " CONFIG_DEFAULT_PATH ";\n"
          "                      without it and with BMS_PORT etc. set, the environment of\n"
          "                      the replaced program: one Daren pack)\n"
          "  --stdout            print every reading as one JSON object per line\n"
          "  --log-level L       overrides log.level of the configuration\n"
          "exit: 0 stopped by a signal, 1 cannot start, 2 usage or configuration error\n",
          f);
}

static int load(const char *path, struct config **cfg)
{
    struct config_errors *errs = calloc(1, sizeof *errs);
    if (errs == NULL)
        return CLI_EXIT_FAIL;
    int from_env;
    int rc = config_load_auto(path, cfg, errs, &from_env);
    config_print_errors(stderr, rc, errs);
    free(errs);
    return rc ? CLI_EXIT_USAGE : CLI_EXIT_OK;
}

/* The --stdout sink (also daemon_stop's drain). */
static void print_reading(const struct reading *r, void *arg)
{
    const struct config *cfg = arg;
    const struct config_port *port = &cfg->ports[r->port_idx];
    const struct config_pack *pack = &port->packs[r->pack_idx];
    cJSON *o;
    if (r->kind == READING_SAMPLE) {
        o = report_sample_json_opts(&r->s, config_protocol_name(port->protocol), r->ts_ms,
                                    REPORT_JSON_UNKNOWN_NULL);
    } else if (r->kind == READING_IDENTITY) {
        o = report_identity_json(&r->id);
        cJSON_AddNumberToObject(o, "ts", (double)r->ts_ms / 1000.0);
        cJSON_AddStringToObject(o, "event", "identity");
    } else {
        o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "ts", (double)r->ts_ms / 1000.0);
        cJSON_AddStringToObject(o, "event", "health");
        cJSON_AddStringToObject(o, "health", pack_health_name(r->health));
        cJSON_AddStringToObject(o, "detail", r->detail);
    }
    cJSON_AddStringToObject(o, "pack", pack->id);
    cJSON_AddStringToObject(o, "bank", pack->bank);
    cJSON_AddStringToObject(o, "port", port->name);
    cJSON_AddNumberToObject(o, "seq", (double)r->seq);
    report_print_json(stdout, o);
    fflush(stdout);
}

int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"stdout", no_argument, NULL, 's'},
                                         {"log-level", required_argument, NULL, 'l'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = NULL, *level = NULL;
    int to_stdout = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:sl:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 's': to_stdout = 1; break;
        case 'l': level = optarg; break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        default: usage(stderr); return CLI_EXIT_USAGE;
        }
    }
    enum log_level lvl;
    if (optind < argc || (level && log_parse_level(level, &lvl))) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    struct config *cfg = NULL;
    int rc = load(path, &cfg);
    if (rc)
        return rc;
    int level_fixed = level != NULL || log_get_level() == LOG_DEBUG;
    if (log_get_level() != LOG_DEBUG) /* -v on the command line wins */
        log_set_level(level ? lvl : cfg->log_level);
    for (size_t i = 0; i < cfg->nwarnings && i < CONFIG_MAX_WARNINGS; i++)
        log_warn("%s", cfg->warnings[i]);

    struct daemon *d = NULL;
    char why[600];
    struct daemon_opts o = {.readings = to_stdout};
    if (daemon_start(cfg, &o, &d, why, sizeof why) != 0) {
        fprintf(stderr, "bmsfleet run: %s\n", why);
        config_free(cfg);
        return CLI_EXIT_FAIL;
    }
    cli_set_wakeup_fd(daemon_wakeup_fd(d));
    cli_install_signals();
    cli_install_reload_signal();
    struct reading r;
    while (!cli_stop) {
        if (daemon_step(d, &r))
            print_reading(&r, cfg);
        if (cli_reload && !cli_stop) {
            cli_reload = 0;
            daemon_reload(d, path, level_fixed);
        }
    }
    daemon_stop(d, print_reading, cfg);
    cli_set_wakeup_fd(-1);
    config_free(cfg);
    log_info("stopped");
    return CLI_EXIT_OK;
}
