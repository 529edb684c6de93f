/* cmd_export: `bmsfleet export` prints a time range of the history (raw samples, 1-minute or
 * 1-hour rollups) as CSV or JSON lines. The database is opened read-only and only ever read,
 * so it is safe while the daemon writes (WAL: readers and the writer never block each other). */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "cli.h"
#include "parse.h"
#include "store.h"
#include "store_read.h"

static void usage(FILE *f)
{
    fputs("usage: bmsfleet export --db FILE --from T --to T [--pack ID] [--bank ID]\n"
          "                       [--resolution raw|1m|1h] [--csv|--json]\n"
          "Prints the history from --from (included) to --to (excluded), ordered by time, then\n"
          "pack. The database is opened read-only: safe while the daemon runs.\n"
          "  --db FILE          the history database, e.g. /var/lib/bmsfleet/history.db\n"
          "  --from T, --to T   ISO 8601 date (2026-11-20 = local midnight) or date-time\n"
          "                     (2026-11-20T14:30, 2026-11-20 14:30:00): local time unless it\n"
          "                     carries a zone (Z, +01:00, -0500)\n"
          "  --pack ID          only this pack (its id in the configuration)\n"
          "  --bank ID          only the packs of this bank\n"
          "  --resolution R     raw samples (default; view v_samples), 1m or 1h rollups\n"
          "                     (v_minutely, v_hourly: the buckets that start in the range)\n"
          "  --csv              CSV with a header line (default); absent values are empty\n"
          "  --json             one JSON object per line; absent values are null\n"
          "Columns: those of the view, with utc (ISO 8601 in UTC) after the local time.\n"
          "exit: 0 rows written (even none), 1 database missing, unreadable or from a newer\n"
          "      bmsfleet, 2 usage (bad time, unknown pack or bank)\n",
          f);
}

struct export_args {
    const char *db;
    struct store_read_range range;
    int json;
    const char *from, *to; /* --from and --to as given, until parsed into range */
    int csv;
};

/* Opens path read-only (never creating it) and checks that it is a history this binary can
 * read. Returns an exit code. */
static int open_db(const char *path, sqlite3 **out)
{
    char why[512];
    if (store_open_readonly(path, 5000, out, why, sizeof why) != 0) {
        fprintf(stderr, "export: %s\n", why);
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

/* The rows of the range (store_read.h). Returns an exit code. */
static int export_rows(sqlite3 *db, const struct export_args *a)
{
    char why[512];
    int err = store_read_check_range(db, &a->range, why, sizeof why);
    if (err == -ENOENT) {
        fprintf(stderr, "export: %s\n", why);
        return CLI_EXIT_USAGE;
    }
    if (err == 0)
        err = store_read_range(db, &a->range, a->json ? STORE_READ_JSON_LINES : STORE_READ_CSV,
                               stdout, why, sizeof why);
    int rc = CLI_EXIT_OK;
    if (err == -ENOMEM) {
        fprintf(stderr, "export: out of memory\n");
        rc = CLI_EXIT_FAIL;
    } else if (err) {
        fprintf(stderr, "export: cannot read %s: %s\n", a->db, why);
        rc = CLI_EXIT_FAIL;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "export: cannot write the output: %s\n", strerror(errno));
        rc = CLI_EXIT_FAIL;
    }
    return rc;
}

enum { OPT_DB = 256, OPT_PACK, OPT_BANK, OPT_FROM, OPT_TO, OPT_RES, OPT_CSV, OPT_JSON };

/* Option c with its argument into a. -1 when taken, else the exit code. */
static int take_option(struct export_args *a, int c, const char *arg)
{
    switch (c) {
    case OPT_DB:
        a->db = arg;
        return -1;
    case OPT_PACK:
        a->range.pack = arg;
        return -1;
    case OPT_BANK:
        a->range.bank = arg;
        return -1;
    case OPT_FROM:
        a->from = arg;
        return -1;
    case OPT_TO:
        a->to = arg;
        return -1;
    case OPT_RES:
        a->range.res = store_read_resolution(arg);
        if (a->range.res == NULL) {
            fprintf(stderr, "export: unknown resolution '%s' (" STORE_READ_RESOLUTIONS ")\n",
                    arg);
            return CLI_EXIT_USAGE;
        }
        return -1;
    case OPT_CSV:
        a->csv = 1;
        return -1;
    case OPT_JSON:
        a->json = 1;
        return -1;
    default:
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
}

/* The checks once every option is read: nothing left over, what is required, one format, a
 * range of two times in order (parsed into a->range). -1 when they pass, else the exit code. */
static int check_args(int argc, char **argv, struct export_args *a)
{
    if (optind < argc) {
        fprintf(stderr, "export: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (a->db == NULL || a->from == NULL || a->to == NULL) {
        fprintf(stderr, "export: --db, --from and --to are required\n");
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (a->csv && a->json) {
        fprintf(stderr, "export: --csv and --json exclude each other\n");
        return CLI_EXIT_USAGE;
    }
    const char *names[] = {"--from", "--to"};
    const char *texts[] = {a->from, a->to};
    int64_t *dst[] = {&a->range.from, &a->range.to};
    for (size_t i = 0; i < 2; i++) {
        if (parse_time(texts[i], dst[i])) {
            fprintf(stderr, "export: %s: '%s' is not an ISO 8601 date or date-time\n", names[i],
                    texts[i]);
            return CLI_EXIT_USAGE;
        }
    }
    if (a->range.from >= a->range.to) {
        fprintf(stderr, "export: --from must be before --to\n");
        return CLI_EXIT_USAGE;
    }
    return -1;
}

/* The command line into *a. -1 when it holds an export, else the exit code (--help: 0). */
static int parse_args(int argc, char **argv, struct export_args *a)
{
    static const struct option opts[] = {{"db", required_argument, NULL, OPT_DB},
                                         {"pack", required_argument, NULL, OPT_PACK},
                                         {"bank", required_argument, NULL, OPT_BANK},
                                         {"from", required_argument, NULL, OPT_FROM},
                                         {"to", required_argument, NULL, OPT_TO},
                                         {"resolution", required_argument, NULL, OPT_RES},
                                         {"csv", no_argument, NULL, OPT_CSV},
                                         {"json", no_argument, NULL, OPT_JSON},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof *a);
    a->range.res = store_read_resolution("raw");
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return CLI_EXIT_OK;
        }
        int rc = take_option(a, c, optarg);
        if (rc != -1)
            return rc;
    }
    return check_args(argc, argv, a);
}

int cmd_export(int argc, char **argv)
{
    struct export_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != -1)
        return rc;
    sqlite3 *db;
    rc = open_db(a.db, &db);
    if (rc != CLI_EXIT_OK)
        return rc;
    rc = export_rows(db, &a);
    sqlite3_close(db);
    return rc;
}
