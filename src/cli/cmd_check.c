/* cmd_check: `bmsfleet check [-c FILE]` loads a configuration the way `run` would (a file, the
 * replaced program's environment, or the default file), then prints either every error with
 * its position and exits 2, or "configuration OK" and a summary. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"

static void usage(FILE *f)
{
    fputs("usage: bmsfleet check [-c FILE]\n"
          "Reads a configuration, reports every error in it, or prints a summary.\n"
          "  -c, --config FILE   the YAML configuration to check\n"
          "Without -c: the environment of the replaced program (BMS_PORT, BMS_SLAVE_ID,\n"
          "READ_INTERVAL, MQTT_HOST, ...) when set, and then also the equivalent YAML file;\n"
          "else " CONFIG_DEFAULT_PATH ".\n"
          "exit: 0 the configuration is valid, 2 usage or configuration errors\n",
          f);
}

static int report(int rc, const struct config *c, const struct config_errors *errs, int env)
{
    if (rc) {
        config_print_errors(stderr, rc, errs);
        return CLI_EXIT_USAGE;
    }
    for (size_t i = 0; i < c->nwarnings && i < CONFIG_MAX_WARNINGS; i++)
        fprintf(stderr, "%s\n", c->warnings[i]);
    printf("configuration OK%s%s\n", env ? " (from the environment of the replaced program)" : "",
           c->nwarnings ? ", with warnings" : "");
    config_write_summary(stdout, c);
    if (env) {
        printf("\nEquivalent configuration file:\n");
        config_write_yaml(stdout, c);
    }
    return CLI_EXIT_OK;
}

int cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 'h':
            usage(stdout);
            return CLI_EXIT_OK;
        default:
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "check: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (path == NULL && !config_env_present(NULL)) {
        if (access(CONFIG_DEFAULT_PATH, F_OK) != 0) {
            fprintf(stderr,
                    "check: no configuration: use -c FILE or set BMS_PORT (and the other "
                    "variables of the replaced program); " CONFIG_DEFAULT_PATH " does not exist\n");
            return CLI_EXIT_USAGE;
        }
    }
    struct config_errors *errs = malloc(sizeof *errs);
    if (errs == NULL) {
        fprintf(stderr, "check: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    struct config *c = NULL;
    int env;
    int rc = config_load_auto(path, &c, errs, &env);
    int exit_code = report(rc, c, errs, env);
    config_free(c);
    free(errs);
    return exit_code;
}
