/* test_store_schema: the SQLite history's schema on real files in a temporary directory: file
 * modes, a fresh database and its pragmas, views and flag names, reopening, a newer schema
 * refused, and every older schema (an empty file, 001 to 004 with data) migrated with its data
 * kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "sample.h"
#include "store.h"
#include "store_helpers.h"
#include "store_schema.h"

/* For old databases: the packs p1 and p2, and each pack's newest sample. */
#define TWO_PACKS                                                                                  \
    "INSERT INTO packs (pack_id, port, address, name, bank, protocol) VALUES"                      \
    " ('p1', 'rack', 1, 'p1', 'house', 'daren'), ('p2', 'rack', 2, 'p2', 'house', 'daren');"
#define LAST_SAMPLES                                                                               \
    "UPDATE packs SET last_sample = (SELECT max(id) FROM samples WHERE samples.pack = packs.id);"

/* Opens the store on the file there (migrating it) and checks it is at the current schema. */
static sqlite3 *open_migrated(struct fx *f)
{
    f->st = open_store(f->cfg);
    sqlite3 *db = store_db(f->st);
    assert_int_equal(q_int(db, "PRAGMA user_version"), store_schema_version());
    return db;
}

/* ======================= 1. a new database, pragmas, modes ======================= */

/* The history is private to the daemon's user and group: a new database and its -wal and -shm
 * files are 0640 under the usual umask 022, 0600 under 077; the directory made for it 0750. */
static void test_file_modes(void **state)
{
    struct fx *f = *state;
    const mode_t masks[] = {022, 077};
    const mode_t want[] = {0640, 0600};
    for (size_t i = 0; i < 2; i++) {
        char path[200];
        snprintf(path, sizeof path, "%s/sub%zu/h.db", f->dir, i);
        struct config *c = load_config(path);
        mode_t old = umask(masks[i]);
        struct store *s = open_store(c);
        umask(old);
        assert_int_equal(sqlite3_exec(store_db(s),
                                      "INSERT INTO meta (key, value) "
                                      "VALUES ('mode-test', 1)",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        const char *suffix[] = {"", "-wal", "-shm"};
        for (size_t k = 0; k < 3; k++) {
            char p[220];
            snprintf(p, sizeof p, "%s%s", path, suffix[k]);
            struct stat st;
            assert_int_equal(stat(p, &st), 0);
            if ((st.st_mode & 07777) != want[i])
                fail_msg("%s has mode %04o, want %04o", p, (unsigned)(st.st_mode & 07777),
                         (unsigned)want[i]);
        }
        char d[200];
        snprintf(d, sizeof d, "%s/sub%zu", f->dir, i);
        struct stat st;
        assert_int_equal(stat(d, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0750 & ~masks[i]);
        store_close(s);
        config_free(c);
        const char *files[] = {"h.db", "h.db-wal", "h.db-shm"};
        for (size_t k = 0; k < 3; k++) {
            char p[220];
            snprintf(p, sizeof p, "%s/%s", d, files[k]);
            unlink(p);
        }
        rmdir(d);
    }
}

static void test_schema_fresh_and_reopen(void **state)
{
    struct fx *f = *state;
    f->st = open_store(f->cfg);
    sqlite3 *db = store_db(f->st);
    assert_true(store_schema_version() >= 1);
    assert_int_equal(q_int(db, "PRAGMA user_version"), store_schema_version());
    /* Regression test, fixed: src/store.c store_open() runs "PRAGMA journal_mode = WAL" before
     * store_migrate() sets "PRAGMA auto_vacuum = INCREMENTAL". Switching to WAL writes the database
     * header, which fixes the page layout, so the auto_vacuum pragma is silently ignored: a fresh
     * database has auto_vacuum = 0 (NONE), "PRAGMA incremental_vacuum" does nothing, freed
     * pages stay on the freelist and the file never shrinks. Expected 2, actual 0. (The same
     * with the sqlite3 shell: "PRAGMA journal_mode=WAL; PRAGMA auto_vacuum=INCREMENTAL;
     * CREATE TABLE t(x); PRAGMA auto_vacuum;" prints 0.) */
    assert_int_equal(q_int(db, "PRAGMA auto_vacuum"), 2);
    /* 1 KiB pages for a new database: a commit writes whole pages (issue 15, SD-card wear) */
    assert_int_equal(q_int(db, "PRAGMA page_size"), 1024);
    char mode[32];
    q_text(db, mode, sizeof mode, "PRAGMA journal_mode");
    assert_string_equal(mode, "wal");
    assert_int_equal(q_int(db, "SELECT count(*) FROM packs"), 3);
    static const char *const views[] = {"v_samples",
                                        "v_latest",
                                        "v_bank_latest",
                                        "v_minutely",
                                        "v_hourly",
                                        "v_daily_energy",
                                        "v_bank_daily_energy",
                                        "v_energy",
                                        "v_events",
                                        "v_cells",
                                        "v_temps",
                                        "v_alarms"};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++)
        assert_int_equal(
            q_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'view' AND name = '%s'",
                  views[i]),
            1);
    /* flag names written from the daemon's own tables */
    assert_int_equal(q_int(db, "SELECT count(*) FROM flag_names WHERE kind = 'alarm'"),
                     SAMPLE_ALARM_COUNT);
    assert_int_equal(q_int(db, "SELECT count(*) FROM flag_names WHERE kind = 'protection'"),
                     SAMPLE_PROT_COUNT);
    assert_int_equal(q_int(db, "SELECT count(*) FROM flag_names WHERE kind = 'state'"),
                     SAMPLE_STATE_COUNT);
    char name[64];
    q_text(db, name, sizeof name,
           "SELECT name FROM flag_names WHERE kind = 'protection' AND bit = 6");
    assert_string_equal(name, sample_prot_name(6));
    char bank[32];
    q_text(db, bank, sizeof bank,
           "SELECT bank || ',' || port || ',' || address || ',' || protocol"
           " FROM packs WHERE pack_id = 'p3'");
    assert_string_equal(bank, "shed,rack,3,daren");

    /* reopening an existing database: nothing migrated twice, packs not duplicated */
    int64_t p1 = pack_db_id(db, "p1");
    reopen(f);
    db = store_db(f->st);
    assert_int_equal(q_int(db, "PRAGMA user_version"), store_schema_version());
    assert_int_equal(q_int(db, "PRAGMA auto_vacuum"), 2);
    q_text(db, mode, sizeof mode, "PRAGMA journal_mode");
    assert_string_equal(mode, "wal");
    assert_int_equal(q_int(db, "SELECT count(*) FROM packs"), 3);
    assert_int_equal(pack_db_id(db, "p1"), p1);
    assert_int_equal(q_int(db, "SELECT count(*) FROM flag_names"),
                     SAMPLE_ALARM_COUNT + SAMPLE_PROT_COUNT + SAMPLE_STATE_COUNT);
    q_text(db, mode, sizeof mode, "PRAGMA integrity_check");
    assert_string_equal(mode, "ok");
}

/* ======================= 2. older and newer schemas ======================= */

static void test_schema_newer_refused(void **state)
{
    struct fx *f = *state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", store_schema_version() + 1);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    struct store *s = (struct store *)&s; /* must stay untouched */
    char err[512] = "";
    assert_int_not_equal(store_open(f->cfg, &s, err, sizeof err), 0);
    assert_ptr_equal(s, (struct store *)&s);
    assert_non_null(strstr(err, "newer than this bmsfleet"));
    assert_non_null(strstr(err, f->path));

    /* store_migrate says the same on a connection of its own; the file is left alone */
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    err[0] = '\0';
    assert_int_not_equal(store_migrate(db, err, sizeof err), 0);
    assert_non_null(strstr(err, "newer than this bmsfleet"));
    assert_int_equal(q_int(db, "PRAGMA user_version"), store_schema_version() + 1);
    assert_int_equal(q_int(db, "SELECT count(*) FROM sqlite_master"), 0);
    sqlite3_close(db);
}

static void test_schema_older_migrated(void **state)
{
    struct fx *f = *state;
    /* an empty file (0 bytes): user_version 0, no tables */
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    fclose(fp);
    sqlite3 *db = open_migrated(f);
    /* Regression test, fixed: journal_mode = WAL before auto_vacuum (test_schema_fresh_and_reopen)
     */
    assert_int_equal(q_int(db, "PRAGMA auto_vacuum"), 2);
    assert_int_equal(q_int(db, "SELECT count(*) FROM packs"), 3);
    store_close(f->st);
    f->st = NULL;
    unlink(f->path);

    /* a database that has been written (page size fixed) but holds no table, version 0 */
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (x); DROP TABLE t; PRAGMA user_version = 0",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(q_int(db, "SELECT count(*) FROM sqlite_master"), 0);
    sqlite3_close(db);
    db = open_migrated(f);
    assert_int_equal(q_int(db, "SELECT count(*) FROM packs"), 3);
    assert_int_equal(q_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'v_samples'"), 1);
    struct reading r;
    reading_sample(&r, 0, T0);
    fill_full(&r.s, 52000, 1000, 5000, 100000, 3300);
    write_ok(f->st, &r, 1);
    assert_int_equal(q_int(db, "SELECT count(*) FROM samples"), 1);
}

/* A database of schema version 1 with samples in it: 002 adds packs.last_sample, fills it
 * from the samples already there, and v_latest reads through it. */
static void test_schema_v1_with_data_migrated(void **state)
{
    struct fx *f = *state;
    sqlite3 *db = old_database(f->path, 1,
                               "INSERT INTO packs (pack_id, port, address, name, bank, protocol)"
                               " VALUES ('old', 'a', 9, 'old', 'house', 'daren');"
                               "INSERT INTO samples (pack, ts, voltage_mv) VALUES"
                               " (1, 1000, 52000), (1, 2000, 52100), (1, 1500, 52200);");
    sqlite3_close(db);
    db = open_migrated(f);
    assert_true(store_schema_version() >= 2);
    /* the newest stored sample (id 3), whatever its timestamp */
    assert_int_equal(q_int(db, "SELECT last_sample FROM packs WHERE pack_id = 'old'"), 3);
    assert_int_equal(q_int(db, "SELECT voltage_v * 1000 FROM v_latest WHERE pack = 'old'"), 52200);
    assert_int_equal(q_int(db, "SELECT count(*) FROM v_bank_latest"), 1);
}

/* A database of version 2 (1-minute rollups written with every batch, an old retention that
 * cut in the middle of a minute): 003 keeps the rollup row of the oldest, partial minute and
 * folds that minute's samples; later minutes come from the samples, each counted once. */
static void test_schema_v2_minutes_migrated(void **state)
{
    struct fx *f = *state;
    /* samples at 90, 120, 150, 180 s (the one at 60 s was pruned); minute 60 has 2 samples */
    sqlite3 *db =
        old_database(f->path, 2,
                     "INSERT INTO packs (pack_id, port, address, name, bank, protocol)"
                     " VALUES ('p1', 'rack', 1, 'p1', 'house', 'daren');"
                     "INSERT INTO samples (pack, ts, voltage_mv, current_ma) VALUES"
                     " (1, 90000, 52000, 1000), (1, 120000, 52000, 1000),"
                     " (1, 150000, 52000, -1000), (1, 180000, 52000, 1000);"
                     "UPDATE packs SET last_sample = 4;"
                     "INSERT INTO rollup_1m (pack, bucket, n, v_sum, i_sum, charge_mwh) VALUES"
                     " (1, 60, 2, 104000, 2000, 433.0), (1, 120, 2, 104000, 0, 541.0),"
                     " (1, 180, 1, 52000, 1000, 108.0);"
                     "INSERT INTO energy (pack, charged_mwh, last_ts, last_power_mw)"
                     " VALUES (1, 1082.0, 180000, 52000.0);");
    sqlite3_close(db);
    db = open_migrated(f);
    assert_int_equal(q_int(db, "SELECT count(*) FROM samples"), 3);
    assert_int_equal(q_int(db, "SELECT count(*) FROM rollup_1m"), 1);
    assert_int_equal(q_int(db, "SELECT n FROM rollup_1m WHERE bucket = 60"), 2);
    assert_int_equal(q_int(db, "SELECT prune_ts FROM energy"), 90000);
    assert_near(q_dbl(db, "SELECT prune_power_mw FROM energy"), 52000.0, 0);
    assert_int_equal(q_int(db, "SELECT value FROM meta WHERE key = 'energy_max_gap_s'"), 300);
    /* one row per minute, each sample once; the step 90 → 120 s counted in minute 120 */
    expect_rows(db,
                "SELECT bucket, samples, charged_wh, discharged_wh FROM v_minutely"
                " ORDER BY bucket",
                "60|2|0.433|0.0\n120|2|0.542|0.108\n180|1|0.108|0.108\n");
}

/* A version-3 database with kept samples: 004 backfills each row's increment as 003's
 * v_minutely integrated it (from the pruner's last point, split at the zero crossing, nothing
 * after a gap or without current), and the new v_minutely shows the same rows. */
static void test_schema_v3_sample_energy_migrated(void **state)
{
    struct fx *f = *state;
    sqlite3 *db = old_database(
        f->path, 3,
        TWO_PACKS "INSERT INTO samples (pack, ts, voltage_mv, current_ma, soc_cpct) VALUES"
                  " (1, 120000, 52000, 1000, 5000), (1, 150000, 52000, -1000, 5000),"
                  " (1, 180000, 52000, NULL, 5000), (1, 210000, 52000, 1000, 5000),"
                  " (1, 600000, 52000, 1000, 5000), (1, 630000, 52000, 2000, 5000),"
                  " (2, 120000, 51000, -3000, 4000);" LAST_SAMPLES
                  "INSERT INTO rollup_1m (pack, bucket, n, v_sum, i_sum, charge_mwh) VALUES"
                  " (1, 60, 2, 104000, 2000, 433.0);"
                  "INSERT INTO energy (pack, charged_mwh, last_ts, last_power_mw, prune_ts,"
                  " prune_power_mw) VALUES (1, 2000.0, 630000, 104000.0, 90000, 52000.0),"
                  " (2, 0, 120000, -153000.0, NULL, NULL);");
    char *before = rows_text(db, ALL_MINUTES);
    sqlite3_close(db);
    db = open_migrated(f);
    expect_rows(db,
                "SELECT pack, ts, charge_uwh, discharge_uwh FROM samples"
                " ORDER BY pack, ts",
                "1|120000|433333|0\n"      /* from the pruner's point, 90 s */
                "1|150000|108333|108333\n" /* +52 W → −52 W */
                "1|180000|NULL|NULL\n"     /* no current */
                "1|210000|216667|216667\n" /* −52 W → +52 W over 60 s */
                "1|600000|NULL|NULL\n"     /* after a gap of 390 s */
                "1|630000|650000|0\n"      /* 52 W → 104 W */
                "2|120000|NULL|NULL\n");   /* the pack's first point */
    char *after = rows_text(db, ALL_MINUTES);
    assert_string_equal(after, before);
    free(after);
    free(before);
    expect_rows(db,
                "SELECT bucket, samples, charged_wh, discharged_wh FROM v_minutely"
                " WHERE pack = 'p1' ORDER BY bucket",
                "60|2|0.433|0.0\n120|2|0.542|0.108\n180|1|0.217|0.217\n600|2|0.65|0.0\n");
}

/* A database at schema 004 with data: migrated to 005 and on, every sample and event kept, packs
 * get their interval from the configuration, and v_latest judges their (old) samples offline. */
static void test_schema_v4_staleness_migrated(void **state)
{
    struct fx *f = *state;
    sqlite3 *db = old_database(
        f->path, 4,
        TWO_PACKS "INSERT INTO samples (pack, ts, voltage_mv, current_ma, soc_cpct) VALUES"
                  " (1, 1767225600000, 52000, 1000, 5000),"
                  " (1, 1767225630000, 52100, 1000, 5100),"
                  " (2, 1767225600000, 51000, -3000, 4000);" LAST_SAMPLES
                  "INSERT INTO events (pack, ts, kind, detail) VALUES"
                  " (1, 1767225500000, 'online', NULL), (2, 1767225500000, 'online', NULL);");
    char *samples_before = rows_text(db, "SELECT * FROM v_samples ORDER BY id");
    char *events_before = rows_text(db, "SELECT * FROM v_events ORDER BY id");
    sqlite3_close(db);

    db = open_migrated(f);
    assert_int_equal(store_schema_version(), 7);
    char *samples_after = rows_text(db, "SELECT * FROM v_samples ORDER BY id");
    char *events_after = rows_text(db, "SELECT * FROM v_events ORDER BY id");
    assert_string_equal(samples_after, samples_before);
    assert_string_equal(events_after, events_before);
    free(samples_before);
    free(samples_after);
    free(events_before);
    free(events_after);
    expect_rows(db, "SELECT pack_id, interval_s FROM packs ORDER BY id", "p1|30\np2|30\np3|30\n");
    expect_rows(db, "SELECT pack, voltage_v, event, health FROM v_latest ORDER BY pack",
                "p1|52.1|online|offline\np2|51.0|online|offline\n");
    expect_rows(db, "SELECT bank, packs, packs_online FROM v_bank_latest", "house|2|0\n");
    assert_int_equal(q_int(db, "SELECT value FROM meta WHERE key = 'commit_interval_s'"), 1);
    assert_int_equal(q_int(db, "SELECT count(*) FROM daemon_runs"), 0);
}

/* The query plan of sql (every row's detail, joined by ';'); the caller frees it. */
static char *plan_of(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    char eqp[1024];
    snprintf(eqp, sizeof eqp, "EXPLAIN QUERY PLAN %s", sql);
    assert_int_equal(sqlite3_prepare_v2(db, eqp, -1, &st, NULL), SQLITE_OK);
    size_t cap = 4096, n = 0;
    char *out = calloc(1, cap);
    assert_non_null(out);
    while (sqlite3_step(st) == SQLITE_ROW)
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s;",
                              (const char *)sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    return out;
}

/* A version-6 database with samples and hourly rollups (4 KiB pages, as databases made before
 * 007 have): 007 puts the samples' index time first and orders rollup_1h by hour, then pack,
 * every view shows the same rows, the queries by time and by pack use the new indexes, and the
 * writer's UPSERT still merges into an hour that is already there. */
static void test_schema_v6_write_locality_migrated(void **state)
{
    struct fx *f = *state;
    sqlite3 *db = old_database(
        f->path, 6,
        TWO_PACKS "INSERT INTO samples (pack, ts, voltage_mv, current_ma, soc_cpct) VALUES"
                  " (1, 1767225600000, 52000, 1000, 5000),"
                  " (2, 1767225600000, 51000, -3000, 4000),"
                  " (1, 1767229200000, 52100, 1000, 5100);" LAST_SAMPLES
                  "INSERT INTO rollup_1h (pack, bucket, n, v_sum, v_min, v_max, i_sum, soc_sum,"
                  " soc_n, charge_mwh, discharge_mwh) VALUES"
                  " (1, 1767225600, 720, 37440000, 51000, 53000, 720000, 3600000, 720, 52000, 0),"
                  " (1, 1767229200, 1, 52100, 52100, 52100, 1000, 5100, 1, 14.5, 0),"
                  " (2, 1767225600, 720, 36720000, 50000, 52000, -2160000, 2880000, 720, 0,"
                  " 153000);");
    assert_int_equal(q_int(db, "PRAGMA page_size"), 4096);
    static const char *const views[] = {
        "SELECT * FROM v_hourly ORDER BY pack, bucket",
        "SELECT * FROM v_daily_energy ORDER BY pack, day",
        "SELECT * FROM v_bank_daily_energy ORDER BY bank, day",
        "SELECT * FROM v_samples ORDER BY id",
        "SELECT * FROM rollup_1h ORDER BY pack, bucket",
    };
    char *before[sizeof views / sizeof views[0]];
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++)
        before[i] = rows_text(db, views[i]);
    sqlite3_close(db);

    db = open_migrated(f);
    assert_int_equal(q_int(db, "PRAGMA page_size"), 4096); /* an existing file keeps its pages */
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) {
        char *after = rows_text(db, views[i]);
        assert_string_equal(after, before[i]);
        free(after);
        free(before[i]);
    }
    /* the index, time first; rollup_1h's key, hour first; the old index is gone */
    expect_rows(db, "SELECT name FROM pragma_index_info('samples_ts_pack') ORDER BY seqno",
                "ts\npack\n");
    assert_int_equal(q_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'samples_pack_ts'"),
                     0);
    expect_rows(db,
                "SELECT i.name FROM pragma_index_list('rollup_1h') l,"
                " pragma_index_info(l.name) i WHERE l.origin = 'pk' ORDER BY i.seqno",
                "bucket\npack\n");
    expect_rows(db, "SELECT name FROM pragma_index_info('rollup_1h_pack') ORDER BY seqno",
                "pack\nbucket\n");
    /* one pack over a time range, a time range alone, and one pack's hours use the indexes */
    char *plan = plan_of(db, "SELECT * FROM v_samples WHERE pack = 'p1'"
                             " AND ts >= 1767225600000 AND ts < 1767229200000");
    assert_non_null(strstr(plan, "samples_ts_pack (ts>? AND ts<?)"));
    free(plan);
    plan = plan_of(db, "SELECT count(*) FROM samples WHERE ts >= 1767225600000");
    assert_non_null(strstr(plan, "samples_ts_pack (ts>?)"));
    free(plan);
    plan = plan_of(db, "SELECT * FROM v_hourly WHERE pack = 'p1'");
    assert_non_null(strstr(plan, "rollup_1h_pack (pack=?)"));
    free(plan);
    /* the writer's hourly UPSERT merges into the hour already there */
    struct reading r;
    reading_sample(&r, 0, 1767229205000);
    fill_full(&r.s, 52000, 1000, 5000, 100000, 3300);
    assert_int_equal(store_write_now(f->st, &r, 1), 0);
    expect_rows(db, "SELECT n, v_sum FROM rollup_1h WHERE pack = 1 AND bucket = 1767229200",
                "2|104100\n");
    assert_int_equal(q_int(db, "SELECT count(*) FROM rollup_1h"), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_modes),
        cmocka_unit_test(test_schema_fresh_and_reopen),
        cmocka_unit_test(test_schema_newer_refused),
        cmocka_unit_test(test_schema_older_migrated),
        cmocka_unit_test(test_schema_v1_with_data_migrated),
        cmocka_unit_test(test_schema_v2_minutes_migrated),
        cmocka_unit_test(test_schema_v3_sample_energy_migrated),
        cmocka_unit_test(test_schema_v4_staleness_migrated),
        cmocka_unit_test(test_schema_v6_write_locality_migrated),
    };
    return store_tests_run("test_store_schema", tests, sizeof tests / sizeof tests[0]);
}
