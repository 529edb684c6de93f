/* cmd_top: `bmsfleet top`, a live view of the bank read from the history database: whether a
 * daemon is writing (v_daemon), per bank the aggregate of v_bank_latest, per pack its newest
 * sample and health (v_latest: offline once the sample is older than the offline threshold,
 * whatever the last event said), then the last events. The connection is read-only and each
 * refresh is one short read transaction, so the daemon's writer and checkpoints never wait. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cli.h"
#include "parse.h"
#include "store.h"

static void usage(FILE *f)
{
    fputs("usage: bmsfleet top --db FILE [--interval SECONDS] [--once]\n"
          "Shows the bank live from the history database: whether a daemon is writing (or\n"
          "since when none has); per bank its state of charge (weighted by capacity), packs\n"
          "online, current, power, capacity, lowest and highest cell and hottest sensor; per\n"
          "pack its newest sample and health (OFFLINE stands out, also when its newest sample\n"
          "is older than 3 poll intervals); the last 5 events. The database is opened\n"
          "read-only: safe while the daemon runs.\n"
          "  --db FILE           the history database, e.g. /var/lib/bmsfleet/history.db\n"
          "  --interval SECONDS  redraw every SECONDS (0.1..86400, default 2) until Ctrl-C\n"
          "  --once              print once and exit\n"
          "exit: 0 shown (Ctrl-C included), 1 database missing, unreadable or from a newer\n"
          "      bmsfleet, 2 usage\n",
          f);
}

/* ---------------------------------------------------------------- the database */

/* Opens path read-only (never creating it) and checks that it is a history this binary can
 * read. Returns an exit code. */
static int open_db(const char *path, sqlite3 **out)
{
    char why[512];
    if (store_open_readonly(path, 2000, out, why, sizeof why) != 0) {
        fprintf(stderr, "top: %s\n", why);
        return CLI_EXIT_FAIL;
    }
    /* the views top reads (health by age, daemon runs) come with the last migration, which
     * only a writer can apply */
    sqlite3_stmt *st;
    int version = -1;
    if (sqlite3_prepare_v2(*out, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version < store_schema_version()) {
        fprintf(stderr,
                "top: %s has schema version %d, older than this bmsfleet reads (%d): start the "
                "daemon (bmsfleet run) once on it to migrate it\n",
                path, version, store_schema_version());
        sqlite3_close(*out);
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

/* ---------------------------------------------------------------- tables */

#define TOP_MAX_COLS 14
#define TOP_CELL     160

enum row_mark { MARK_NONE = 0, MARK_WARN, MARK_ALERT };

typedef char top_row[TOP_MAX_COLS][TOP_CELL];

/* Rows of text cells, printed with each column as wide as its widest cell. Cells past ncols
 * carry extra values of the row that are not printed as columns. */
struct table {
    const char *const *heads;
    size_t ncols;
    unsigned left; /* bit i: column i is text (left-aligned); numbers align right */
    void (*fill)(sqlite3_stmt *st, top_row row, unsigned char *mark);
    top_row *rows;
    unsigned char *marks;
    size_t nrows, cap;
};

static int table_add(struct table *t, size_t *out)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        top_row *rows = realloc(t->rows, cap * sizeof *rows);
        if (rows == NULL)
            return -ENOMEM;
        t->rows = rows;
        unsigned char *marks = realloc(t->marks, cap);
        if (marks == NULL)
            return -ENOMEM;
        t->marks = marks;
        t->cap = cap;
    }
    memset(t->rows[t->nrows], 0, sizeof t->rows[t->nrows]);
    t->marks[t->nrows] = MARK_NONE;
    *out = t->nrows++;
    return 0;
}

static void table_free(struct table *t)
{
    free(t->rows);
    free(t->marks);
}

/* The colour of a marked row on a terminal; elsewhere the text says it alone (OFFLINE). */
static const char *mark_colour(int mark, int tty)
{
    if (!tty)
        return "";
    return mark == MARK_ALERT ? "\033[1;31m" : mark == MARK_WARN ? "\033[33m" : "";
}

static void table_print(FILE *f, const struct table *t, int tty)
{
    int width[TOP_MAX_COLS];
    for (size_t c = 0; c < t->ncols; c++) {
        width[c] = (int)strlen(t->heads[c]);
        for (size_t r = 0; r < t->nrows; r++) {
            int w = (int)strlen(t->rows[r][c]);
            if (w > width[c])
                width[c] = w;
        }
    }
    for (size_t r = 0; r <= t->nrows; r++) {
        const char *colour = mark_colour(r ? t->marks[r - 1] : MARK_NONE, tty);
        fputs(colour, f);
        size_t ncols = t->ncols; /* empty text cells at the end: no trailing blanks */
        while (r && ncols > 1 && ((t->left >> (ncols - 1)) & 1u) && !t->rows[r - 1][ncols - 1][0])
            ncols--;
        for (size_t c = 0; c < ncols; c++) {
            const char *s = r ? t->rows[r - 1][c] : t->heads[c];
            int left = ((t->left >> c) & 1u) != 0, last = c + 1 == ncols;
            if (left && last)
                fputs(s, f); /* no trailing blanks */
            else
                fprintf(f, left ? "%-*s" : "%*s", width[c], s);
            if (!last)
                fputs("  ", f);
        }
        fputs(*colour ? "\033[0m\n" : "\n", f);
    }
}

/* A number with dec decimals, "-" when NULL; never "-0.0". */
static void cell_num(char *out, sqlite3_stmt *st, int i, int dec)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL) {
        snprintf(out, TOP_CELL, "-");
        return;
    }
    snprintf(out, TOP_CELL, "%.*f", dec, sqlite3_column_double(st, i));
    if (out[0] == '-' && strspn(out + 1, "0.") == strlen(out + 1))
        memmove(out, out + 1, strlen(out));
}

static void cell_text(char *out, sqlite3_stmt *st, int i, const char *null)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    snprintf(out, TOP_CELL, "%s", s ? s : null);
}

/* Two numbers as "a<sep>b", "-" when either is NULL. */
static void cell_pair(char *out, sqlite3_stmt *st, int a, int b, const char *sep, int dec)
{
    if (sqlite3_column_type(st, a) == SQLITE_NULL || sqlite3_column_type(st, b) == SQLITE_NULL)
        snprintf(out, TOP_CELL, "-");
    else
        snprintf(out, TOP_CELL, "%.*f%s%.*f", dec, sqlite3_column_double(st, a), sep, dec,
                 sqlite3_column_double(st, b));
}

/* The age of a sample: seconds up to 2 minutes, then minutes, hours, days. */
static void cell_age(char *out, sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL) {
        snprintf(out, TOP_CELL, "-");
        return;
    }
    static const struct {
        double below, unit;
        const char *suffix;
    } units[] = {{120, 1, "s"}, {7200, 60, "m"}, {172800, 3600, "h"}, {0, 86400, "d"}};
    double s = sqlite3_column_double(st, i);
    if (s < 0)
        s = 0; /* the views clamp already; a clock set back must not show "-3s" either */
    size_t k = 0;
    while (units[k].below > 0 && s >= units[k].below)
        k++;
    snprintf(out, TOP_CELL, "%.0f%s", s / units[k].unit, units[k].suffix);
}

/* ---------------------------------------------------------------- one frame */

/* The newest health event of each pack. */
#define HEALTH_SQL                                                                                 \
    "SELECT pack, kind, time, detail FROM v_events WHERE id IN (SELECT max(id) FROM events"        \
    " WHERE kind IN ('online', 'stale', 'offline') GROUP BY pack)"

/* Online: fresh data and an online event (v_latest's health), out of every known pack. */
static const char bank_sql[] =
    "SELECT b.bank, (SELECT count(*) FROM packs p WHERE p.bank = b.bank), b.packs_online,"
    " b.soc_pct, b.current_a, b.power_w, b.remaining_ah, b.full_ah, b.cell_min_v, b.cell_max_v,"
    " b.cell_spread_mv, b.temp_max_c"
    " FROM v_bank_latest b ORDER BY b.bank";

static void fill_bank(sqlite3_stmt *st, top_row row, unsigned char *mark)
{
    int packs = sqlite3_column_int(st, 1), online = sqlite3_column_int(st, 2);
    cell_text(row[0], st, 0, "-");
    snprintf(row[1], TOP_CELL, "%d/%d", online, packs);
    if (online < packs)
        *mark = MARK_WARN;
    cell_num(row[2], st, 3, 1);
    cell_num(row[3], st, 4, 2);
    cell_num(row[4], st, 5, 0);
    cell_pair(row[5], st, 6, 7, "/", 1);
    cell_pair(row[6], st, 8, 9, "-", 3);
    cell_num(row[7], st, 10, 0);
    cell_num(row[8], st, 11, 1);
}

/* Packs without a sample have a row too (a pack that never answered: its health is its last
 * event). A pack offline by the age of its sample alone is offline since that sample. The views
 * go through MATERIALIZED: in a LEFT JOIN, SQLite would build v_samples over every sample of
 * the history (12 s for 1.4 million samples, against 30 ms this way). */
#define AGED "(l.health = 'offline' AND h.kind IS NOT 'offline')"
static const char pack_sql[] =
    "WITH l AS MATERIALIZED (SELECT * FROM v_latest), h AS MATERIALIZED (" HEALTH_SQL ")"
    " SELECT p.pack_id, p.bank, coalesce(l.health, h.kind), l.age_s, l.soc_pct, l.voltage_v,"
    " l.current_a, l.power_w, l.cell_min_v, l.cell_max_v, l.cell_diff_mv, l.temp_max_c, l.cycles,"
    " CASE WHEN " AGED " THEN l.time ELSE h.time END,"
    " CASE WHEN " AGED " THEN 'no sample for more than ' || l.offline_after_s || ' s'"
    " ELSE h.detail END"
    " FROM packs p LEFT JOIN l ON l.pack = p.pack_id LEFT JOIN h ON h.pack = p.pack_id"
    " ORDER BY p.bank, p.id";
#undef AGED

/* Columns 12 and 13 (not printed): since when, and why, for a pack that is not online. */
static void fill_pack(sqlite3_stmt *st, top_row row, unsigned char *mark)
{
    const char *kind = (const char *)sqlite3_column_text(st, 2);
    cell_text(row[0], st, 0, "-");
    cell_text(row[1], st, 1, "-");
    cell_text(row[2], st, 2, "-");
    if (kind && strcmp(kind, "offline") == 0) {
        snprintf(row[2], TOP_CELL, "OFFLINE");
        *mark = MARK_ALERT;
    } else if (kind && strcmp(kind, "stale") == 0) {
        *mark = MARK_WARN;
    }
    cell_age(row[3], st, 3);
    cell_num(row[4], st, 4, 1);
    cell_num(row[5], st, 5, 2);
    cell_num(row[6], st, 6, 2);
    cell_num(row[7], st, 7, 0);
    cell_pair(row[8], st, 8, 9, "-", 3);
    cell_num(row[9], st, 10, 0);
    cell_num(row[10], st, 11, 1);
    cell_num(row[11], st, 12, 0);
    cell_text(row[12], st, 13, "");
    cell_text(row[13], st, 14, "");
}

static const char events_sql[] =
    "SELECT time, pack, kind, detail FROM (SELECT id, ts, time, pack, kind, detail FROM v_events"
    " ORDER BY ts DESC, id DESC LIMIT 5) ORDER BY ts, id";

static void fill_event(sqlite3_stmt *st, top_row row, unsigned char *mark)
{
    const char *kind = (const char *)sqlite3_column_text(st, 2);
    cell_text(row[0], st, 0, "-");
    cell_text(row[1], st, 1, "-");
    cell_text(row[2], st, 2, "-");
    cell_text(row[3], st, 3, "");
    if (kind && strcmp(kind, "offline") == 0)
        *mark = MARK_ALERT;
}

static int table_query(sqlite3 *db, const char *sql, struct table *t)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    size_t r;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (table_add(t, &r)) {
            rc = SQLITE_NOMEM;
            break;
        }
        t->fill(st, t->rows[r], &t->marks[r]);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* The newest daemon run: writing, stopped, or gone without a stop (kill -9, crash, power cut). */
static const char daemon_sql[] =
    "SELECT state, started, last_write, stopped, age_s FROM v_daemon ORDER BY id DESC LIMIT 1";

/* One line on whether the data is live; *mark says how loudly. */
static int daemon_line(sqlite3 *db, char *out, size_t cap, unsigned char *mark)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, daemon_sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    *mark = MARK_ALERT;
    if (rc == SQLITE_DONE) {
        snprintf(out, cap, "no daemon has written to this history");
    } else if (rc == SQLITE_ROW) {
        const char *state = (const char *)sqlite3_column_text(st, 0);
        char age[TOP_CELL], when[TOP_CELL];
        cell_age(age, st, 4);
        if (state && strcmp(state, "writing") == 0) {
            cell_text(when, st, 1, "-");
            snprintf(out, cap, "daemon writing: last write %s ago (running since %s)", age, when);
            *mark = MARK_NONE;
        } else if (state && strcmp(state, "stopped") == 0) {
            cell_text(when, st, 3, "-");
            snprintf(out, cap, "daemon stopped at %s (%s ago): no daemon has written since", when,
                     age);
        } else {
            cell_text(when, st, 2, "-");
            snprintf(out, cap,
                     "no daemon has written since %s (%s ago); it recorded no stop (killed, "
                     "crashed, or its writes fail)",
                     when, age);
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

struct top_args {
    const char *db;
    double interval_s;
    int once;
};

/* Writes one frame to f. 0, or -EIO with the reason in the frame and in err. */
static int render(sqlite3 *db, const struct top_args *a, FILE *f, int tty, char *err, size_t errcap)
{
    static const char *const bank_heads[] = {
        "bank", "online", "SOC %", "A", "W", "Ah left/full", "cell min-max", "spread mV", "T max"};
    static const char *const pack_heads[] = {"pack",         "bank",    "health", "age",
                                             "SOC %",        "V",       "A",      "W",
                                             "cell min-max", "diff mV", "T max",  "cycles"};
    static const char *const event_heads[] = {"time", "pack", "event", "detail"};
    struct table banks = {bank_heads, 9, 1u << 0, fill_bank, NULL, NULL, 0, 0};
    struct table packs = {pack_heads, 12, 1u << 0 | 1u << 1 | 1u << 2, fill_pack, NULL, NULL, 0, 0};
    struct table events = {event_heads, 4, 0xfu, fill_event, NULL, NULL, 0, 0};

    time_t now = time(NULL);
    char when[32];
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime_r(&now, &tm));
    fprintf(f, "bmsfleet top  %s  %s", when, a->db);
    if (!a->once)
        fprintf(f, "  every %g s, Ctrl-C to stop", a->interval_s);
    fputs("\n\n", f);

    /* One read transaction: the four parts show the same moment of the history. */
    char daemon[3 * TOP_CELL]; /* two cells and the words around them */
    unsigned char daemon_mark = MARK_NONE;
    int rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = daemon_line(db, daemon, sizeof daemon, &daemon_mark);
    struct table *parts[] = {&banks, &packs, &events};
    const char *sql[] = {bank_sql, pack_sql, events_sql};
    for (size_t i = 0; i < 3 && rc == SQLITE_OK; i++)
        rc = table_query(db, sql[i], parts[i]);
    if (rc != SQLITE_OK)
        snprintf(err, errcap, "cannot read %s: %s", a->db,
                 rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(db));
    sqlite3_exec(db, rc == SQLITE_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);

    if (rc != SQLITE_OK) {
        fprintf(f, "%s\n", err);
    } else {
        const char *colour = mark_colour(daemon_mark, tty);
        fprintf(f, "%s%s%s\n\n", colour, daemon, *colour ? "\033[0m" : "");
        if (banks.nrows)
            table_print(f, &banks, tty);
        else
            fputs("no samples yet\n", f);
        if (packs.nrows) {
            fputc('\n', f);
            table_print(f, &packs, tty);
        }
        for (size_t r = 0; r < packs.nrows; r++) {
            if (packs.marks[r] == MARK_NONE)
                continue;
            fprintf(f, "%s%s is %s since %s%s%s%s\n", mark_colour(packs.marks[r], tty),
                    packs.rows[r][0], packs.rows[r][2], packs.rows[r][12],
                    packs.rows[r][13][0] ? ": " : "", packs.rows[r][13], tty ? "\033[0m" : "");
        }
        fputs("\nlast events\n", f);
        if (events.nrows)
            table_print(f, &events, tty);
        else
            fputs("none yet\n", f);
    }
    table_free(&banks);
    table_free(&packs);
    table_free(&events);
    return rc == SQLITE_OK ? 0 : -EIO;
}

/* ---------------------------------------------------------------- the screen */

/* Writes a frame. On a terminal: from the top left, each line cut to the width and cleared to
 * its end, at most rows - 1 lines, the rest of the screen cleared (no flicker, no scrolling).
 * Before the first frame, what was on the screen is scrolled up into the scrollback rather than
 * erased (the commands the demo prints before it stay there). */
static int show(const char *buf, size_t len, int tty, int first)
{
    if (!tty)
        return fwrite(buf, 1, len, stdout) == len ? 0 : -EIO;
    struct winsize ws;
    int cols = 0, rows = 0;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) {
        cols = ws.ws_col;
        rows = ws.ws_row;
    }
    for (int i = 0; first && i < rows; i++)
        putchar('\n');
    fputs(first && rows <= 0 ? "\033[H\033[2J" : "\033[H", stdout);
    const char *p = buf, *end = buf + len;
    for (int line = 0; p < end && (rows <= 1 || line < rows - 1); line++) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        int shown = 0;
        for (const char *q = p; q < eol; q++) {
            if (*q == '\033' && q + 1 < eol && q[1] == '[') { /* colours pass, take no room */
                const char *e = q + 2;
                while (e < eol && (*e < 0x40 || *e > 0x7e))
                    e++;
                if (e < eol)
                    e++;
                fwrite(q, 1, (size_t)(e - q), stdout);
                q = e - 1;
                continue;
            }
            int visible = ((unsigned char)*q & 0xc0) != 0x80; /* UTF-8 continuation: none */
            if (cols > 0 && shown + visible > cols - 1)
                continue; /* one column spare: no pending wrap on the last one */
            shown += visible;
            putchar(*q);
        }
        fputs("\033[K\n", stdout);
        p = eol + 1;
    }
    fputs("\033[J", stdout);
    return ferror(stdout) ? -EIO : 0;
}

static int parse_args(int argc, char **argv, struct top_args *a)
{
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"interval", required_argument, NULL, 'i'},
                                         {"once", no_argument, NULL, '1'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            a->db = optarg;
            break;
        case 'i':
            if (parse_double(optarg, 0.1, 86400, &a->interval_s)) {
                fprintf(stderr, "top: --interval takes seconds (0.1..86400)\n");
                return CLI_EXIT_USAGE;
            }
            break;
        case '1':
            a->once = 1;
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
        fprintf(stderr, "top: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (a->db == NULL) {
        fprintf(stderr, "top: --db is required\n");
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

int cmd_top(int argc, char **argv)
{
    struct top_args a = {NULL, 2.0, 0};
    int rc = parse_args(argc, argv, &a);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    sqlite3 *db;
    if ((rc = open_db(a.db, &db)) != CLI_EXIT_OK)
        return rc;
    cli_install_signals();
    int tty = isatty(STDOUT_FILENO);
    for (int frame = 0; !cli_stop; frame++) {
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        char *buf = NULL, err[512] = "";
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (f == NULL) {
            fprintf(stderr, "top: out of memory\n");
            rc = CLI_EXIT_FAIL;
            break;
        }
        if (frame && !tty)
            fputc('\n', f); /* frames one after another in a pipe or a file */
        int bad = render(db, &a, f, tty, err, sizeof err);
        if (fclose(f) != 0) {
            free(buf);
            fprintf(stderr, "top: out of memory\n");
            rc = CLI_EXIT_FAIL;
            break;
        }
        int shown = show(buf, len, tty, frame == 0);
        free(buf);
        if (shown != 0 || fflush(stdout) != 0) {
            fprintf(stderr, "top: cannot write the output: %s\n", strerror(errno));
            rc = CLI_EXIT_FAIL;
            break;
        }
        if (a.once) {
            if (bad)
                fprintf(stderr, "top: %s\n", err);
            rc = bad ? CLI_EXIT_FAIL : CLI_EXIT_OK;
            break;
        }
        for (;;) { /* a busy database is shown in the frame and tried again next time */
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            double el =
                (double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9;
            if (cli_stop || el >= a.interval_s)
                break;
            struct timespec nap = {0, 50L * 1000000L};
            nanosleep(&nap, NULL);
        }
    }
    sqlite3_close(db);
    return rc;
}
