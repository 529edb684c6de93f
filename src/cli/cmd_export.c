/* cmd_export: `bmsfleet export` prints a time range of the history (raw samples, 1-minute or
 * 1-hour rollups) as CSV or JSON lines. The database is opened read-only and only ever read,
 * so it is safe while the daemon writes (WAL: readers and the writer never block each other). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "cli.h"
#include "store.h"

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

/* One row per --resolution: the view it reads and its time column. */
static const struct resolution {
    const char *name;
    const char *view;
    const char *time_col; /* indexed, compared with the range */
    int per_second;       /* time_col units per second: ms or s */
} resolutions[] = {
    {"raw", "v_samples", "ts", 1000},
    {"1m", "v_minutely", "bucket", 1},
    {"1h", "v_hourly", "bucket", 1},
};

struct export_args {
    const char *db, *pack, *bank;
    int64_t from, to; /* UTC epoch seconds */
    const struct resolution *res;
    int json;
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

/* --pack and --bank must name what the database holds; the message lists what it does hold.
 * Returns an exit code. */
static int check_filters(sqlite3 *db, const struct export_args *a)
{
    static const char *const sql[] = {"SELECT pack_id, bank FROM packs ORDER BY pack_id",
                                      "SELECT DISTINCT bank, bank FROM packs ORDER BY bank"};
    const char *want[] = {a->pack, a->bank};
    const char *what[] = {"pack", "bank"};
    char pack_bank[256] = "";
    for (size_t k = 0; k < 2; k++) {
        if (want[k] == NULL)
            continue;
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, sql[k], -1, &st, NULL) != SQLITE_OK) {
            fprintf(stderr, "export: cannot read %s: %s\n", a->db, sqlite3_errmsg(db));
            return CLI_EXIT_FAIL;
        }
        char *list = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&list, &len);
        int found = 0, n = 0, src;
        while ((src = sqlite3_step(st)) == SQLITE_ROW) {
            const char *id = (const char *)sqlite3_column_text(st, 0);
            const char *bank = (const char *)sqlite3_column_text(st, 1);
            if (id == NULL)
                continue;
            if (strcmp(id, want[k]) == 0) {
                found = 1;
                snprintf(pack_bank, sizeof pack_bank, "%s", bank ? bank : "");
            }
            if (f)
                fprintf(f, "%s%s", n++ ? ", " : "", id);
        }
        sqlite3_finalize(st);
        if (f)
            fclose(f);
        int rc = CLI_EXIT_OK;
        if (src != SQLITE_DONE) {
            fprintf(stderr, "export: cannot read %s: %s\n", a->db, sqlite3_errmsg(db));
            rc = CLI_EXIT_FAIL;
        } else if (!found) {
            fprintf(stderr, "export: no %s '%s' in the database (%ss: %s)\n", what[k], want[k],
                    what[k], list && n ? list : "none");
            rc = CLI_EXIT_USAGE;
        } else if (k == 0 && a->bank && strcmp(pack_bank, a->bank) != 0) {
            fprintf(stderr, "export: pack '%s' is in bank '%s', not '%s'\n", a->pack, pack_bank,
                    a->bank);
            rc = CLI_EXIT_USAGE;
        }
        free(list);
        if (rc != CLI_EXIT_OK)
            return rc;
    }
    return CLI_EXIT_OK;
}

/* One CSV field, RFC 4180: quoted when it holds a comma, a quote or a line break. An empty
 * string is "" so that it differs from an absent value (an empty field). */
static void csv_text(FILE *f, const char *s)
{
    if (*s != '\0' && strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void csv_value(FILE *f, sqlite3_stmt *st, int i)
{
    const char *text;
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_NULL:
        break;
    case SQLITE_INTEGER:
        fprintf(f, "%lld", (long long)sqlite3_column_int64(st, i));
        break;
    case SQLITE_FLOAT: /* SQLite's own rendering, the one the sqlite3 shell shows */
    default:
        text = (const char *)sqlite3_column_text(st, i);
        csv_text(f, text ? text : "");
        break;
    }
}

static cJSON *json_value(sqlite3_stmt *st, int i)
{
    char num[32];
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_NULL:
        return cJSON_CreateNull();
    case SQLITE_INTEGER: /* exact: ms timestamps do not go through a double */
        snprintf(num, sizeof num, "%lld", (long long)sqlite3_column_int64(st, i));
        return cJSON_CreateRaw(num);
    case SQLITE_FLOAT:
        if (!isfinite(sqlite3_column_double(st, i)))
            return cJSON_CreateNull();
        return cJSON_CreateRaw((const char *)sqlite3_column_text(st, i));
    default:
        return cJSON_CreateString((const char *)sqlite3_column_text(st, i));
    }
}

/* The rows of the range. Returns an exit code. */
static int export_rows(sqlite3 *db, const struct export_args *a)
{
    const struct resolution *r = a->res;
    char sql[512];
    /* utc is the last column of the statement; it is printed after the local time. Without
     * --pack, "pack IN (every pack)" changes no result but lets SQLite search each pack's
     * range in the (pack, time) index instead of scanning the whole table. */
    snprintf(sql, sizeof sql,
             "SELECT *, strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ', %s / %d, 'unixepoch') AS utc"
             " FROM %s WHERE %s >= ?1 AND %s < ?2%s%s ORDER BY %s, pack",
             r->time_col, r->per_second, r->view, r->time_col, r->time_col,
             a->pack ? " AND pack = ?3" : " AND pack IN (SELECT pack_id FROM packs)",
             a->bank ? " AND bank = ?4" : "", r->time_col);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "export: cannot read %s: %s\n", a->db, sqlite3_errmsg(db));
        return CLI_EXIT_FAIL;
    }
    sqlite3_bind_int64(st, 1, a->from * r->per_second);
    sqlite3_bind_int64(st, 2, a->to * r->per_second);
    if (a->pack)
        sqlite3_bind_text(st, 3, a->pack, -1, SQLITE_STATIC);
    if (a->bank)
        sqlite3_bind_text(st, 4, a->bank, -1, SQLITE_STATIC);

    int ncols = sqlite3_column_count(st), utc = ncols - 1, n = 0, time_col = -1;
    int *order = calloc((size_t)ncols, sizeof *order);
    if (order == NULL) {
        sqlite3_finalize(st);
        fprintf(stderr, "export: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    for (int i = 0; i < utc && time_col < 0; i++)
        if (strcmp(sqlite3_column_name(st, i), "time") == 0)
            time_col = i;
    if (time_col < 0) /* a view without a local time: utc goes first */
        order[n++] = utc;
    for (int i = 0; i < utc; i++) {
        order[n++] = i;
        if (i == time_col)
            order[n++] = utc;
    }

    if (!a->json) {
        for (int i = 0; i < ncols; i++) {
            if (i)
                putchar(',');
            csv_text(stdout, sqlite3_column_name(st, order[i]));
        }
        putchar('\n');
    }
    int src, rc = CLI_EXIT_OK;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (!a->json) {
            for (int i = 0; i < ncols; i++) {
                if (i)
                    putchar(',');
                csv_value(stdout, st, order[i]);
            }
            putchar('\n');
            continue;
        }
        cJSON *o = cJSON_CreateObject();
        for (int i = 0; o && i < ncols; i++) {
            cJSON *v = json_value(st, order[i]);
            if (v == NULL || !cJSON_AddItemToObject(o, sqlite3_column_name(st, order[i]), v)) {
                cJSON_Delete(v);
                cJSON_Delete(o);
                o = NULL;
            }
        }
        char *line = o ? cJSON_PrintUnformatted(o) : NULL;
        cJSON_Delete(o);
        if (line == NULL) {
            fprintf(stderr, "export: out of memory\n");
            rc = CLI_EXIT_FAIL;
            break;
        }
        puts(line);
        cJSON_free(line);
    }
    if (rc == CLI_EXIT_OK && src != SQLITE_DONE) {
        fprintf(stderr, "export: cannot read %s: %s\n", a->db, sqlite3_errmsg(db));
        rc = CLI_EXIT_FAIL;
    }
    sqlite3_finalize(st);
    free(order);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "export: cannot write the output: %s\n", strerror(errno));
        rc = CLI_EXIT_FAIL;
    }
    return rc;
}

enum { OPT_DB = 256, OPT_PACK, OPT_BANK, OPT_FROM, OPT_TO, OPT_RES, OPT_CSV, OPT_JSON };

int cmd_export(int argc, char **argv)
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
    struct export_args a;
    memset(&a, 0, sizeof a);
    a.res = &resolutions[0];
    const char *from = NULL, *to = NULL;
    int csv = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_DB:
            a.db = optarg;
            break;
        case OPT_PACK:
            a.pack = optarg;
            break;
        case OPT_BANK:
            a.bank = optarg;
            break;
        case OPT_FROM:
            from = optarg;
            break;
        case OPT_TO:
            to = optarg;
            break;
        case OPT_RES:
            a.res = NULL;
            for (size_t i = 0; i < sizeof resolutions / sizeof resolutions[0]; i++)
                if (strcmp(optarg, resolutions[i].name) == 0)
                    a.res = &resolutions[i];
            if (a.res == NULL) {
                fprintf(stderr, "export: unknown resolution '%s' (raw, 1m, 1h)\n", optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case OPT_CSV:
            csv = 1;
            break;
        case OPT_JSON:
            a.json = 1;
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
        fprintf(stderr, "export: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (a.db == NULL || from == NULL || to == NULL) {
        fprintf(stderr, "export: --db, --from and --to are required\n");
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (csv && a.json) {
        fprintf(stderr, "export: --csv and --json exclude each other\n");
        return CLI_EXIT_USAGE;
    }
    const char *names[] = {"--from", "--to"};
    const char *texts[] = {from, to};
    int64_t *dst[] = {&a.from, &a.to};
    for (size_t i = 0; i < 2; i++) {
        if (cli_parse_time(texts[i], dst[i])) {
            fprintf(stderr, "export: %s: '%s' is not an ISO 8601 date or date-time\n", names[i],
                    texts[i]);
            return CLI_EXIT_USAGE;
        }
    }
    if (a.from >= a.to) {
        fprintf(stderr, "export: --from must be before --to\n");
        return CLI_EXIT_USAGE;
    }
    sqlite3 *db;
    int rc = open_db(a.db, &db);
    if (rc != CLI_EXIT_OK)
        return rc;
    rc = check_filters(db, &a);
    if (rc == CLI_EXIT_OK)
        rc = export_rows(db, &a);
    sqlite3_close(db);
    return rc;
}
