/* Part cli (src/cli/): the commands, one cmd_*.c each (run, check, read, scan, decode,
 * simulate, export, top, health), their shared helpers (cli_util.c) and the dispatch (main.c,
 * this file). The top of the graph: it may use every part and no part uses it.
 *
 * main: command-line dispatch only. Every command lives in its own cmd_*.c. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "log.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"run", cmd_run, "the daemon: poll every pack of the configuration"},
    {"check", cmd_check, "validate a configuration and print a summary"},
    {"read", cmd_read, "poll packs once (or --watch) and print their values"},
    {"scan", cmd_scan, "find the packs on a bus and print a packs: snippet"},
    {"export", cmd_export, "print a time range of the history as CSV or JSON lines"},
    {"top", cmd_top, "a live view of the bank from the history database"},
    {"health", cmd_health, "whether the daemon is writing and packs are online (healthcheck)"},
    {"decode", cmd_decode, "validate and decode a response frame pasted from a log"},
    {"simulate", cmd_simulate, "run a simulated bank of packs on a pseudo-terminal"},
};

static void usage(FILE *f)
{
    fputs("usage: bmsfleet [-v|--verbose] COMMAND [OPTIONS]\n\ncommands:\n", f);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fputs("\n'bmsfleet COMMAND --help' describes each command.\n", f);
}

int main(int argc, char **argv)
{
    int first = 1;
    while (first < argc && (strcmp(argv[first], "-v") == 0 ||
                            strcmp(argv[first], "--verbose") == 0)) {
        log_set_level(LOG_DEBUG);
        first++;
    }
    if (first >= argc) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[first];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        puts("bmsfleet " BMSFLEET_VERSION);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].run(argc - first, argv + first);
    }
    fprintf(stderr, "bmsfleet: unknown command '%s'\n", cmd);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
