/* cmd_health: `bmsfleet health`, the daemon's liveness as a container or monitoring check,
 * read from the history: healthy when the newest daemon run is writing (v_daemon) and enough
 * packs are online with fresh data (v_latest.health). One line, exit 0 or 1; no shell needed.
 * Read-only, one short read transaction: the daemon's writer never waits for it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "cli.h"
#include "parse.h"
#include "config.h"
#include "store.h"
#include "store_read.h"

static void usage(FILE *f)
{
    fputs("usage: bmsfleet health [--db FILE | -c FILE] [--min-online N]\n"
          "Says whether the daemon is alive, from its history: healthy when the newest daemon\n"
          "run is writing (a commit or heartbeat within two heartbeats) and at least N packs\n"
          "are online with fresh data (newer than 3 poll intervals). Prints one line; meant\n"
          "for a container HEALTHCHECK or a monitoring probe. The database is opened\n"
          "read-only: safe while the daemon runs.\n"
          "  --db FILE         the history database, e.g. /var/lib/bmsfleet/history.db\n"
          "  -c, --config FILE take the database from this configuration's storage.path (as\n"
          "                    `run` loads it: FILE, else the replaced program's variables,\n"
          "                    else " CONFIG_DEFAULT_PATH ")\n"
          "  --min-online N    packs that must be online (0..10000, default 1; 0: the daemon\n"
          "                    writing is enough)\n"
          "exit: 0 healthy, 1 unhealthy (no daemon writing, too few packs online, database\n"
          "      missing or unreadable), 2 usage or configuration error\n",
          f);
}

struct health_args {
    const char *db;
    const char *config;
    long min_online;
};

static int parse_args(int argc, char **argv, struct health_args *a)
{
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"min-online", required_argument, NULL, 'm'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            a->db = optarg;
            break;
        case 'c':
            a->config = optarg;
            break;
        case 'm':
            if (parse_long(optarg, 0, 10000, &a->min_online)) {
                fprintf(stderr, "health: --min-online takes a number of packs (0..10000)\n");
                return CLI_EXIT_USAGE;
            }
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "health: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (a->db && a->config) {
        fprintf(stderr, "health: --db and -c exclude each other\n");
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

/* The history path from the configuration, as `run` would load it. An exit code. */
static int db_from_config(const char *path, char *out, size_t cap)
{
    struct config_errors *errs = malloc(sizeof *errs);
    if (errs == NULL) {
        fprintf(stderr, "health: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    struct config *c = NULL;
    int env;
    int rc = config_load_auto(path, &c, errs, &env);
    if (rc != 0) {
        fputs("health: ", stderr);
        config_print_errors(stderr, rc, errs);
    } else {
        snprintf(out, cap, "%s", c->storage.path);
    }
    config_free(c);
    free(errs);
    return rc == 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

int cmd_health(int argc, char **argv)
{
    struct health_args a = {NULL, NULL, 1};
    int rc = parse_args(argc, argv, &a);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    char path[CONFIG_PATH_LEN];
    if (a.db) {
        snprintf(path, sizeof path, "%s", a.db);
    } else if ((rc = db_from_config(a.config, path, sizeof path)) != CLI_EXIT_OK) {
        return rc;
    }
    sqlite3 *db;
    char why[512];
    if (store_open_readonly(path, 2000, &db, why, sizeof why) != 0) {
        printf("unhealthy: %s\n", why);
        return CLI_EXIT_FAIL;
    }
    sqlite3_stmt *st;
    int version = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    char msg[512];
    int verdict;
    if (version < store_schema_version()) {
        /* the views come with the migrations, which only the daemon applies */
        snprintf(msg, sizeof msg,
                 "unhealthy: %s has schema version %d (this bmsfleet writes %d): no daemon has "
                 "migrated it yet",
                 path, version, store_schema_version());
        verdict = 1;
    } else {
        verdict = store_read_health(db, a.min_online, msg, sizeof msg);
    }
    sqlite3_close(db);
    printf("%s\n", msg);
    return verdict == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
