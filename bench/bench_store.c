/* bench_store: the history's cost on a synthetic fleet (issue 5, item 8). Generates N days of
 * P packs × 16 cells every I seconds from the sim model, writes them through store_write_now in
 * batches (only the writes are timed), then reports bytes on disk per sample and the time of the
 * queries a person runs with the sqlite3 shell, on a fresh read-only connection. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "config.h"
#include "log.h"
#include "queue.h"
#include "sim.h"
#include "store.h"

#define T0_S         1735689600LL /* 2025-01-01T00:00:00Z */
#define NCELLS       16
#define POLL_GAP_MS  150 /* packs on one bus answer one after the other */
#define MAX_RUNS     15
#define RUN_BUDGET_S 3.0 /* per query: stop repeating after this much time (at least 3 runs) */

struct opts {
    long days, packs, interval, batch, prune_days;
    char path[CONFIG_PATH_LEN];
    int keep, path_given, explain;
};

struct result { /* one query's timings */
    const char *label;
    double median_ms, max_ms;
    int runs;
    long rows;
};

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void) /* user + system of this process */
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_store [--days N (365)] [--packs N (8, max %d)] [--interval S (30)]\n"
            "                   [--db PATH] [--keep] [--batch N (2000, max 8192)] [--explain]\n"
            "                   [--prune-days N (0: none; retention of the first N days, bytes\n"
            "                   written per pruned sample)]\n",
            CONFIG_MAX_PACKS_PER_PORT);
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct {
        const char *name;
        long lo, hi;
        size_t off;
    } nums[] = {
        {"--days", 1, 36500, offsetof(struct opts, days)},
        {"--packs", 1, CONFIG_MAX_PACKS_PER_PORT, offsetof(struct opts, packs)},
        {"--interval", 1, 86400, offsetof(struct opts, interval)},
        {"--batch", 1, 8192, offsetof(struct opts, batch)}, /* the store keeps ≤ 8192 pending */
        {"--prune-days", 0, 36500, offsetof(struct opts, prune_days)},
    };
    *o = (struct opts){.days = 365, .packs = 8, .interval = 30, .batch = 2000};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        size_t k;
        for (k = 0; k < sizeof nums / sizeof nums[0]; k++)
            if (strcmp(a, nums[k].name) == 0)
                break;
        if (k < sizeof nums / sizeof nums[0]) {
            if (i + 1 >= argc ||
                parse_long(argv[++i], nums[k].lo, nums[k].hi, (long *)((char *)o + nums[k].off))) {
                fprintf(stderr, "bench_store: %s takes an integer in %ld..%ld\n", a, nums[k].lo,
                        nums[k].hi);
                return -EINVAL;
            }
        } else if (strcmp(a, "--db") == 0 && i + 1 < argc) {
            snprintf(o->path, sizeof o->path, "%s", argv[++i]);
            o->path_given = 1;
        } else if (strcmp(a, "--keep") == 0) {
            o->keep = 1;
        } else if (strcmp(a, "--explain") == 0) {
            o->explain = 1;
        } else {
            usage(strcmp(a, "--help") == 0 ? stdout : stderr);
            return strcmp(a, "--help") == 0 ? 1 : -EINVAL;
        }
    }
    return 0;
}

static void pack_id(long i, char *out, size_t cap)
{
    snprintf(out, cap, "pack%ld", i + 1);
}

static const char *pack_bank(long i, long npacks)
{
    return npacks > 1 && i >= npacks / 2 ? "shed" : "house";
}

/* One port holding every pack, two banks (first half "house", second half "shed"), and a
 * retention that keeps the whole run: the queries must run "on the year". */
static int make_config(const struct opts *o, struct config **out)
{
    size_t cap = 4096 + (size_t)o->packs * 96;
    char *y = malloc(cap);
    if (y == NULL)
        return -ENOMEM;
    size_t n = (size_t)snprintf(y, cap,
                                "storage:\n  path: \"%s\"\n  retention:\n    raw_days: 36500\n"
                                "    minute_days: 36500\n  commit_interval_s: 5\n"
                                "banks:\n  - id: house\n  - id: shed\n"
                                "ports:\n  - name: bench\n    device: /dev/null\n"
                                "    interval_s: %ld\n    packs:\n",
                                o->path, o->interval);
    for (long i = 0; i < o->packs && n < cap; i++) {
        char id[32];
        pack_id(i, id, sizeof id);
        n += (size_t)snprintf(y + n, cap - n, "      - { address: %ld, id: %s, bank: %s }\n", i + 1,
                              id, pack_bank(i, o->packs));
    }
    struct config_errors *errs = calloc(1, sizeof *errs);
    int rc = errs ? config_load_string("bench.yaml", y, out, errs) : -ENOMEM;
    if (rc && errs)
        config_print_errors(stderr, rc, errs);
    free(errs);
    free(y);
    return rc;
}

/* ---- ingest ---- */

struct ingest {
    uint64_t samples;
    double gen_s, write_wall_s, write_cpu_s, batch_max_s;
    double first_rate, last_rate; /* samples/s of the first and last tenth of the batches */
};

static int ingest(struct store *st, const struct opts *o, struct ingest *res)
{
    uint64_t steps = (uint64_t)o->days * 86400u / (uint64_t)o->interval;
    uint64_t total = steps * (uint64_t)o->packs;
    size_t batch = (size_t)o->batch;
    struct sim_pack *packs = calloc((size_t)o->packs, sizeof *packs);
    struct reading *rd = calloc(batch, sizeof *rd);
    int rc = 0;
    if (packs == NULL || rd == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    for (long i = 0; i < o->packs; i++)
        sim_pack_init(&packs[i], 1, (uint8_t)(i + 1), NCELLS);
    *res = (struct ingest){0};
    uint64_t done = 0, seq = 0, tenth = total / 10 ? total / 10 : 1, next_report = tenth;
    double tenth_wall = 0, first_tenth_wall = 0;
    uint64_t tenth_n = 0;
    while (done < total) {
        size_t n = 0;
        double g0 = mono_s();
        for (; n < batch && done + n < total; n++) {
            uint64_t k = (done + n) / (uint64_t)o->packs;
            size_t p = (size_t)((done + n) % (uint64_t)o->packs);
            double t = (double)(k * (uint64_t)o->interval) + (double)p * POLL_GAP_MS / 1000.0;
            struct reading *r = &rd[n];
            r->kind = READING_SAMPLE;
            r->seq = ++seq;
            r->ts_ms = T0_S * 1000 + (int64_t)(t * 1000.0 + 0.5);
            r->port_idx = 0;
            r->pack_idx = (uint16_t)p;
            pack_id((long)p, r->pack_id, sizeof r->pack_id);
            sim_pack_step(&packs[p], t);
            sim_pack_sample(&packs[p], &r->s);
        }
        double w0 = mono_s(), c0 = cpu_s();
        res->gen_s += w0 - g0;
        rc = store_write_now(st, rd, n);
        double dw = mono_s() - w0;
        res->write_cpu_s += cpu_s() - c0;
        if (rc) {
            fprintf(stderr, "bench_store: store_write_now failed: %s\n", strerror(-rc));
            goto out;
        }
        res->write_wall_s += dw;
        if (dw > res->batch_max_s)
            res->batch_max_s = dw;
        done += n;
        tenth_wall += dw;
        tenth_n += n;
        if (done >= next_report || done == total) {
            double rate = (double)tenth_n / tenth_wall;
            if (first_tenth_wall == 0) {
                first_tenth_wall = tenth_wall;
                res->first_rate = rate;
            }
            res->last_rate = rate;
            fprintf(stderr, "  %3.0f%%  %10llu samples  %8.0f samples/s in this part\n",
                    100.0 * (double)done / (double)total, (unsigned long long)done, rate);
            next_report += tenth;
            tenth_wall = 0;
            tenth_n = 0;
        }
    }
    res->samples = done;
out:
    free(packs);
    free(rd);
    return rc;
}

/* ---- size ---- */

static int64_t query_i64(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int64_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

struct sizes {
    int64_t file, samples_tbl, samples_idx, rollup_1m, rollup_1h, other;
    int have_dbstat;
};

static void report_sizes(sqlite3 *db, const char *path, uint64_t n, struct sizes *z)
{
    char *msg = NULL;
    if (sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "bench_store: checkpoint: %s\n", msg ? msg : "?");
        sqlite3_free(msg);
    }
    *z = (struct sizes){.file = file_size(path)};
    printf("\n## Size (after PRAGMA wal_checkpoint(TRUNCATE))\n");
    printf("file %.1f MB, page_size %lld, pages %lld, freelist %lld: %.1f bytes/sample\n",
           (double)z->file / 1e6, (long long)query_i64(db, "PRAGMA page_size"),
           (long long)query_i64(db, "PRAGMA page_count"),
           (long long)query_i64(db, "PRAGMA freelist_count"), (double)z->file / (double)n);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT name, count(*), sum(pgsize), sum(payload), sum(unused),"
                           " sum(ncell) FROM dbstat GROUP BY name ORDER BY 3 DESC",
                           -1, &st, NULL) != SQLITE_OK) {
        printf("dbstat not available in this sqlite3 library: no per-table split\n");
        return;
    }
    z->have_dbstat = 1;
    printf("%-28s %9s %12s %8s %9s %8s\n", "object (dbstat)", "pages", "bytes", "fill %",
           "B/sample", "B/cell");
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        int64_t pages = sqlite3_column_int64(st, 1), bytes = sqlite3_column_int64(st, 2);
        int64_t payload = sqlite3_column_int64(st, 3), unused = sqlite3_column_int64(st, 4);
        int64_t cells = sqlite3_column_int64(st, 5);
        printf("%-28s %9lld %12lld %7.1f%% %9.2f %8.1f\n", name ? name : "?", (long long)pages,
               (long long)bytes, bytes ? 100.0 * (double)(bytes - unused) / (double)bytes : 0.0,
               (double)bytes / (double)n, cells ? (double)payload / (double)cells : 0.0);
        if (name == NULL)
            continue;
        if (strcmp(name, "samples") == 0)
            z->samples_tbl = bytes;
        else if (strcmp(name, "samples_ts_pack") == 0)
            z->samples_idx = bytes;
        else if (strcmp(name, "rollup_1m") == 0)
            z->rollup_1m = bytes;
        else if (strcmp(name, "rollup_1h") == 0)
            z->rollup_1h = bytes;
        else
            z->other += bytes;
    }
    sqlite3_finalize(st);
    printf("(fill = 1 - unused/bytes, counting only the free space dbstat reports inside pages; "
           "B/cell = average payload of a row or index entry)\n");
}

/* ---- queries ---- */

struct bind { /* up to three text or integer parameters */
    int nparams;
    const char *text[3];
    int64_t num[3];
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void explain(sqlite3 *db, const char *sql)
{
    char *q = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *st;
    if (q && sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW)
            printf("      plan: %*s%s\n", 2 * (sqlite3_column_int(st, 1) ? 1 : 0), "",
                   (const char *)sqlite3_column_text(st, 3));
        sqlite3_finalize(st);
    }
    sqlite3_free(q);
}

static int time_query(sqlite3 *db, const char *sql, const struct bind *b, int show_plan,
                      struct result *res)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_store: %s: %s\n", res->label, sqlite3_errmsg(db));
        return -EINVAL;
    }
    double ms[MAX_RUNS], spent = 0;
    int runs = 0;
    long rows = 0;
    while (runs < MAX_RUNS && (runs < 3 || spent < RUN_BUDGET_S)) {
        sqlite3_reset(st);
        for (int i = 0; i < b->nparams; i++) {
            if (b->text[i])
                sqlite3_bind_text(st, i + 1, b->text[i], -1, SQLITE_STATIC);
            else
                sqlite3_bind_int64(st, i + 1, b->num[i]);
        }
        rows = 0;
        double t0 = mono_s();
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            rows++;
        double dt = mono_s() - t0;
        if (rc != SQLITE_DONE) {
            fprintf(stderr, "bench_store: %s: %s\n", res->label, sqlite3_errmsg(db));
            sqlite3_finalize(st);
            return -EIO;
        }
        ms[runs++] = dt * 1000.0;
        spent += dt;
    }
    sqlite3_finalize(st);
    qsort(ms, (size_t)runs, sizeof ms[0], cmp_double);
    res->runs = runs;
    res->rows = rows;
    res->median_ms = runs % 2 ? ms[runs / 2] : (ms[runs / 2 - 1] + ms[runs / 2]) / 2;
    res->max_ms = ms[runs - 1];
    printf("  %-44s %6ld rows  median %9.2f ms  max %9.2f ms  (%d runs)\n", res->label, rows,
           res->median_ms, res->max_ms, runs);
    if (show_plan)
        explain(db, sql);
    return 0;
}

/* Local midnight of the given local calendar day (mday may overflow: mktime normalises). */
static time_t local_midnight(int year, int mon, int mday)
{
    struct tm tm = {.tm_year = year, .tm_mon = mon, .tm_mday = mday, .tm_isdst = -1};
    return mktime(&tm);
}

static void ymd(time_t t, char *out, size_t cap)
{
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%d", &tm);
}

enum { Q_HOUR_BUCKET, Q_HOUR_TIME, Q_MONTH, Q_LATEST, Q_BANK_LATEST, Q_RAW_TS, Q_RAW_TIME, Q_MINUTE, Q_N };

static int run_queries(const char *path, const struct opts *o, struct result *res)
{
    sqlite3 *db = NULL;
    int rc = 0;
    /* a fresh connection with default cache, as a person's sqlite3 shell would have */
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_store: cannot open %s: %s\n", path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return -EIO;
    }
    /* the day in the middle of the run, in local time like the views */
    time_t mid = (time_t)(T0_S + (o->days / 2) * 86400 + 43200);
    struct tm tm;
    localtime_r(&mid, &tm);
    time_t day0 = local_midnight(tm.tm_year, tm.tm_mon, tm.tm_mday);
    time_t day1 = local_midnight(tm.tm_year, tm.tm_mon, tm.tm_mday + 1);
    time_t mon0 = local_midnight(tm.tm_year, tm.tm_mon, 1);
    time_t mon_last = local_midnight(tm.tm_year, tm.tm_mon + 1, 0);
    char day[16], d_from[32], d_to[32], m_from[16], m_to[16], pack[32];
    ymd(day0, day, sizeof day);
    snprintf(d_from, sizeof d_from, "%s 00:00:00", day);
    snprintf(d_to, sizeof d_to, "%s 23:59:59", day);
    ymd(mon0, m_from, sizeof m_from);
    ymd(mon_last, m_to, sizeof m_to);
    pack_id(o->packs > 2 ? 2 : 0, pack, sizeof pack);
    const char *tz = getenv("TZ");
    printf("\n## Queries (fresh read-only connection, default cache; pack %s, day %.10s, "
           "month %.7s, TZ=%s)\n",
           pack, d_from, m_from, tz ? tz : "(unset: /etc/localtime)");

    static const char *const sql[Q_N] = {
        [Q_HOUR_BUCKET] = "SELECT time, voltage_avg_v, current_avg_a, soc_avg_pct FROM v_hourly"
                          " WHERE pack = ?1 AND bucket >= ?2 AND bucket < ?3",
        [Q_HOUR_TIME] = "SELECT time, voltage_avg_v, current_avg_a, soc_avg_pct FROM v_hourly"
                        " WHERE pack = ?1 AND time BETWEEN ?2 AND ?3",
        [Q_MONTH] = "SELECT day, charged_kwh, discharged_kwh FROM v_bank_daily_energy"
                    " WHERE bank = ?1 AND day BETWEEN ?2 AND ?3",
        [Q_LATEST] = "SELECT * FROM v_latest",
        [Q_BANK_LATEST] = "SELECT * FROM v_bank_latest",
        [Q_RAW_TS] = "SELECT * FROM v_samples WHERE pack = ?1 AND ts >= ?2 AND ts < ?3",
        [Q_RAW_TIME] = "SELECT * FROM v_samples WHERE pack = ?1 AND time BETWEEN ?2 AND ?3",
        [Q_MINUTE] = "SELECT * FROM v_minutely WHERE pack = ?1 AND bucket >= ?2 AND bucket < ?3",
    };
    static const char *const label[Q_N] = {
        [Q_HOUR_BUCKET] = "(a) day hourly, one pack: bucket bounds",
        [Q_HOUR_TIME] = "(a') day hourly, one pack: time BETWEEN",
        [Q_MONTH] = "(b) month daily energy, one bank",
        [Q_LATEST] = "(c) v_latest",
        [Q_BANK_LATEST] = "(c') v_bank_latest",
        [Q_RAW_TS] = "(d) raw day, one pack (v_samples, ts)",
        [Q_RAW_TIME] = "(d') raw day, one pack (v_samples, time)",
        [Q_MINUTE] = "(e) day by minute, one pack (v_minutely)",
    };
    const struct bind binds[Q_N] = {
        [Q_HOUR_BUCKET] = {3, {pack, NULL, NULL}, {0, (int64_t)day0, (int64_t)day1}},
        [Q_HOUR_TIME] = {3, {pack, d_from, d_to}, {0}},
        [Q_MONTH] = {3, {"house", m_from, m_to}, {0}},
        [Q_LATEST] = {0, {NULL}, {0}},
        [Q_BANK_LATEST] = {0, {NULL}, {0}},
        [Q_RAW_TS] = {3, {pack, NULL, NULL}, {0, (int64_t)day0 * 1000, (int64_t)day1 * 1000}},
        [Q_RAW_TIME] = {3, {pack, d_from, d_to}, {0}},
        [Q_MINUTE] = {3, {pack, NULL, NULL}, {0, (int64_t)day0, (int64_t)day1}},
    };
    for (int q = 0; q < Q_N && rc == 0; q++) {
        res[q].label = label[q];
        rc = time_query(db, sql[q], &binds[q], o->explain, &res[q]);
    }
    sqlite3_close(db);
    return rc;
}

/* ---- main ---- */

static void remove_db(const char *path)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        char p[CONFIG_PATH_LEN + 16];
        snprintf(p, sizeof p, "%s%s", path, suffix[i]);
        unlink(p);
    }
}

static long long write_bytes(void) /* this process's /proc/self/io write_bytes */
{
    FILE *f = fopen("/proc/self/io", "r");
    char line[128];
    long long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "write_bytes: %lld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

/* Retention of the first prune_days days (the writer's steps, then the vacuum that gives the
 * space back, and the checkpoint at close): what it writes per sample it deletes. The clock is
 * set so that raw_days (36500 here) ends there; minute_days ends there too, so no 1-minute row
 * is written: the cost is the deletes'. */
static int prune_cost(const struct config *cfg, const struct opts *o)
{
    struct store *st = NULL;
    char err[512];
    if (store_open(cfg, &st, err, sizeof err) != 0) {
        fprintf(stderr, "bench_store: prune: %s\n", err);
        return -1;
    }
    long long wb0 = write_bytes();
    double t0 = mono_s();
    uint64_t deleted = 0;
    int64_t now_ms = (T0_S + (36500LL + o->prune_days) * 86400LL) * 1000LL;
    int rc = store_prune_now(st, now_ms, &deleted);
    double took = mono_s() - t0;
    store_close(st);
    long long wb = write_bytes() - wb0;
    printf("\n## Retention of %ld day(s)\n%llu samples deleted in %.1f s: %lld B written (%.0f B "
           "per sample deleted), checkpoint at close included\n",
           o->prune_days, (unsigned long long)deleted, took, wb,
           deleted ? (double)wb / (double)deleted : 0.0);
    return rc;
}

/* status: "ok" or "MISS" against a goal, or a free remark ("" when none) */
static void verdict_line(const char *what, double value, const char *unit, const char *goal,
                         const char *status)
{
    printf("| %-50s | %14.2f %-9s | %-8s | %-4s |\n", what, value, unit, goal, status);
}

static const char *meets(int ok)
{
    return ok ? "ok" : "MISS";
}

int main(int argc, char **argv)
{
    struct opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc > 0 ? 0 : 2;
    char dir[] = "/tmp/bench_store.XXXXXX";
    if (!o.path_given) {
        if (mkdtemp(dir) == NULL) {
            perror("bench_store: mkdtemp");
            return 1;
        }
        snprintf(o.path, sizeof o.path, "%s/history.db", dir);
    } else if (access(o.path, F_OK) == 0) {
        /* the benchmark needs an empty database, and must never delete someone's history */
        fprintf(stderr, "bench_store: %s exists: remove it or choose another --db\n", o.path);
        return 2;
    }
    log_set_level(LOG_WARN);

    struct config *cfg = NULL;
    struct store *st = NULL;
    struct ingest in = {0};
    struct sizes z = {0};
    struct result q[Q_N] = {{0}};
    char err[512];
    int status = 1;
    if (make_config(&o, &cfg) != 0)
        goto out;
    if (store_open(cfg, &st, err, sizeof err) != 0) {
        fprintf(stderr, "bench_store: %s\n", err);
        goto out;
    }
    printf("# bench_store: %ld day(s) × %ld pack(s) × %d cells every %ld s, batches of %ld "
           "readings (one transaction each)\n",
           o.days, o.packs, NCELLS, o.interval, o.batch);
    printf("sqlite %s, db %s; retention raw_days 36500 / minute_days 36500 for this run (default "
           "raw_days is 30: the issue asks for sizes and queries on the whole year)\n",
           sqlite3_libversion(), o.path);
    fprintf(stderr, "ingesting...\n");
    if (ingest(st, &o, &in) != 0)
        goto out;
    printf("\n## Ingest\n%llu samples: writes %.1f s wall, %.1f s CPU (user+sys) -> %.0f samples/s "
           "(wall), %.0f samples/s (CPU); %.1f µs/sample\n",
           (unsigned long long)in.samples, in.write_wall_s, in.write_cpu_s,
           (double)in.samples / in.write_wall_s, (double)in.samples / in.write_cpu_s,
           in.write_wall_s / (double)in.samples * 1e6);
    printf("first tenth %.0f samples/s, last tenth %.0f samples/s; slowest batch %.1f ms; "
           "generation (sim model, not timed above) %.1f s\n",
           in.first_rate, in.last_rate, in.batch_max_s * 1000.0, in.gen_s);
    report_sizes(store_db(st), o.path, in.samples, &z);
    store_close(st);
    st = NULL;
    /* a daemon restart on the full history: store_open reads each pack's last state */
    double open0 = mono_s();
    if (store_open(cfg, &st, err, sizeof err) != 0) {
        fprintf(stderr, "bench_store: reopen: %s\n", err);
        goto out;
    }
    double reopen_ms = (mono_s() - open0) * 1000.0;
    store_close(st);
    st = NULL;
    printf("\n## Restart\nstore_open on the loaded database: %.1f ms\n", reopen_ms);
    if (run_queries(o.path, &o, q) != 0)
        goto out;
    if (o.prune_days > 0 && prune_cost(cfg, &o) != 0)
        goto out;

    double n = (double)in.samples;
    double rate = n / in.write_wall_s, bps = (double)z.file / n;
    printf("\n## Results (2-core machine shared with other engineers' test runs: wall times are "
           "indicative)\n\n");
    printf("| %-50s | %24s | %-8s | %-4s |\n", "measure", "value", "goal", "");
    printf("|%.52s|%.26s|%.10s|%.6s|\n", "----------------------------------------------------",
           "--------------------------", "----------------", "------");
    verdict_line("ingest, 16 cells (write wall time)", rate, "samples/s", "> 50000",
                 meets(rate > 50000));
    verdict_line("ingest, 16 cells (write CPU time)", n / in.write_cpu_s, "samples/s", "", "");
    verdict_line("bytes on disk per sample, whole file", bps, "B", "< 128", meets(bps < 128));
    if (z.have_dbstat) {
        double raw = (double)(z.samples_tbl + z.samples_idx) / n;
        verdict_line("  samples table + samples_ts_pack index", raw, "B", "< 128",
                     meets(raw < 128));
        verdict_line("  rollup_1m + rollup_1h", (double)(z.rollup_1m + z.rollup_1h) / n, "B", "",
                     "");
    }
    verdict_line("store_open on the loaded database (restart)", reopen_ms, "ms", "",
                 reopen_ms >= 1000 ? "slow" : "");
    static const int goal_q[Q_N] = {[Q_HOUR_BUCKET] = 1, [Q_MONTH] = 1};
    for (int i = 0; i < Q_N; i++) {
        char what[64];
        snprintf(what, sizeof what, "%s, median", q[i].label);
        /* the others have no goal: flag what a person at the shell would find slow */
        verdict_line(what, q[i].median_ms, "ms", goal_q[i] ? "< 100" : "",
                     goal_q[i]               ? meets(q[i].median_ms < 100)
                     : q[i].median_ms >= 100 ? "slow"
                                             : "");
    }
    status = 0;
out:
    store_close(st);
    config_free(cfg);
    if (!o.keep) {
        remove_db(o.path);
        if (!o.path_given)
            rmdir(dir);
    } else {
        printf("\nkept %s\n", o.path);
    }
    return status;
}
