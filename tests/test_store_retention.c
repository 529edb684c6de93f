/* test_store_retention: the history's retention: old samples and 1-minute rollups go, hourly
 * rollups stay, the space comes back (for a database the store created and one made
 * incremental by hand); a prune folds the samples into rollup_1m without changing a row of
 * v_minutely, and prunes split at other cuts, across reopens, give the same rollups to the bit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "sample.h"
#include "store.h"
#include "store_helpers.h"

/* ======================= 1. old rows go, the space comes back ======================= */

/* Old rows go (samples past raw_days, 1-minute rollups past minute_days), hourly rollups stay,
 * and the space comes back. `incremental`: start from a database whose auto_vacuum is already
 * INCREMENTAL (an existing file the store migrates), which the fresh-file path does not give
 * today (see test_schema_fresh_and_reopen). */
static void retention_run(struct fx *f, int incremental)
{
    const int64_t now = T0; /* the prune's "now" */
    size_t cap = 3000, n = 0;
    struct reading *r = calloc(cap, sizeof *r);
    assert_non_null(r);
    /* p1: 2500 samples 400 days ago (more than one batch of the pruner), 100 at 40 days, 100
     * at 10 days */
    for (int i = 0; i < 2500; i++) {
        reading_sample(&r[n], 0, now - 400 * DAY_MS + i * 30000LL);
        fill_full(&r[n++].s, 52000, 1000, 5000, 100000, 3300 + i % 7);
    }
    for (int i = 0; i < 100; i++) {
        reading_sample(&r[n], 0, now - 40 * DAY_MS + i * 30000LL);
        fill_full(&r[n++].s, 52000, 1000, 5000, 100000, 3300);
    }
    for (int i = 0; i < 100; i++) {
        reading_sample(&r[n], 0, now - 10 * DAY_MS + i * 30000LL);
        fill_full(&r[n++].s, 52000, 1000, 5000, 100000, 3300);
    }
    /* p2: 100 at 400 days, 100 yesterday */
    for (int i = 0; i < 100; i++) {
        reading_sample(&r[n], 1, now - 400 * DAY_MS + i * 30000LL);
        fill_full(&r[n++].s, 52000, 1000, 5000, 100000, 3300);
    }
    for (int i = 0; i < 100; i++) {
        reading_sample(&r[n], 1, now - DAY_MS + i * 30000LL);
        fill_full(&r[n++].s, 52000, 1000, 5000, 100000, 3300);
    }
    /* p3: the edges. ts < now − 30 d goes; bucket < now − 365 d goes */
    const int64_t edges[4] = {now - 365 * DAY_MS - 30000, now - 365 * DAY_MS, now - 30 * DAY_MS - 1,
                              now - 30 * DAY_MS};
    for (int i = 0; i < 4; i++) {
        reading_sample(&r[n], 2, edges[i]);
        fill_full(&r[n++].s, 26000, 500, 5000, 100000, 3300);
    }
    const int64_t want_samples = 2500 + 100 + 100 + 3;
    /* the pruned samples' minutes that the 1-minute retention keeps: p1's 50 at 40 days, p3's
     * at now − 365 d and at now − 30 d − 1 ms; older minutes are never written */
    const int64_t want_minutes = 50 + 2;

    sqlite3 *db;
    if (incremental) {
        assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db,
                                      "PRAGMA auto_vacuum = INCREMENTAL; CREATE TABLE t (x);"
                                      " DROP TABLE t",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);
    }
    f->st = open_store(f->cfg);
    write_chunks(f->st, r, n);
    free(r);
    db = store_db(f->st);
    if (incremental)
        assert_int_equal(q_int(db, "PRAGMA auto_vacuum"), 2);
    assert_int_equal(q_int(db, "SELECT count(*) FROM samples"), n);
    assert_int_equal(q_int(db, "SELECT count(*) FROM rollup_1m"), 0);
    assert_int_equal(q_int(db, "SELECT sum(samples) FROM v_minutely"), n);
    int64_t hours = q_int(db, "SELECT count(*) FROM rollup_1h");
    assert_true(q_int(db, "SELECT count(*) FROM rollup_1h WHERE bucket < %lld",
                      (now - 365 * DAY_MS) / 1000) >= 21);
    store_close(f->st); /* checkpointed: the file holds everything */
    f->st = NULL;
    off_t size_before = file_size(f->path);

    f->st = open_store(f->cfg);
    db = store_db(f->st);
    int64_t pages_before = q_int(db, "PRAGMA page_count");
    /* MQTT delivered nothing yet: every pruned sample is counted as lost to it */
    assert_int_equal(sqlite3_exec(db, "INSERT INTO meta VALUES ('" STORE_MQTT_CURSOR_KEY "', 0)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    uint64_t deleted = 0;
    assert_int_equal(store_prune_now(f->st, now, &deleted), 0);
    assert_int_equal(deleted, want_samples);
    assert_int_equal(q_int(db, "SELECT count(*) FROM samples"), (int64_t)n - want_samples);
    assert_int_equal(q_int(db, "SELECT count(*) FROM samples WHERE ts < %lld", now - 30 * DAY_MS),
                     0);
    assert_int_equal(q_int(db, "SELECT count(*) FROM samples WHERE ts = %lld", now - 30 * DAY_MS),
                     1);
    assert_int_equal(q_int(db, "SELECT count(*) FROM rollup_1m"), want_minutes);
    assert_int_equal(q_int(db, "SELECT count(*) FROM rollup_1m WHERE bucket < %lld",
                           (now - 365 * DAY_MS) / 1000),
                     0);
    assert_int_equal(q_int(db, "SELECT sum(samples) FROM v_minutely"),
                     (int64_t)n - want_samples + 50 * 2 + 2);
    assert_int_equal(q_int(db, "SELECT count(*) FROM rollup_1m WHERE bucket = %lld",
                           (now - 365 * DAY_MS) / 1000),
                     1);
    assert_int_equal(q_int(db, "SELECT count(*) FROM rollup_1h"), hours); /* kept forever */
    struct store_stats stats;
    store_get_stats(f->st, &stats);
    assert_int_equal(stats.pruned, deleted);
    assert_int_equal(stats.pruned_undelivered, want_samples);
    char ok[16];
    q_text(db, ok, sizeof ok, "PRAGMA integrity_check");
    assert_string_equal(ok, "ok");
    /* space given back */
    int64_t freelist = q_int(db, "PRAGMA freelist_count");
    int64_t pages_after = q_int(db, "PRAGMA page_count");
    int64_t page_size = q_int(db, "PRAGMA page_size");
    /* both for a database made incremental by hand and for one the store created (a
     * regression test: auto_vacuum used to be set too late on new databases) */
    assert_int_equal(freelist, 0);
    assert_true(pages_after < pages_before * 2 / 3);
    /* a second prune finds nothing */
    assert_int_equal(store_prune_now(f->st, now, &deleted), 0);
    assert_int_equal(deleted, 0);
    store_close(f->st);
    f->st = NULL;
    off_t size_after = file_size(f->path);
    assert_int_equal(size_after, pages_after * page_size);
    assert_true(size_after < size_before);

    /* still a good database, and the store opens it again */
    f->st = open_store(f->cfg);
    q_text(store_db(f->st), ok, sizeof ok, "PRAGMA integrity_check");
    assert_string_equal(ok, "ok");
}

static void test_retention(void **state)
{
    retention_run(*state, 1);
}

static void test_retention_fresh(void **state)
{
    retention_run(*state, 0);
}

/* ======================= 2. retention folds the samples into rollup_1m ======================= */

#define FOLD_N 2600 /* p1: 21.7 h at 30 s, more than one batch of the pruner */

/* p1: FOLD_N samples with a 6-minute gap (not integrated) at 8 h; p2: 300 samples. */
static struct reading *fold_readings(size_t *n)
{
    struct reading *r = calloc(FOLD_N + 300, sizeof *r);
    assert_non_null(r);
    size_t k = 0;
    for (int i = 0; i < FOLD_N; i++)
        if (i < 960 || i >= 972)
            rollup_reading(&r[k++], 0, i);
    for (int i = 0; i < 300; i++)
        rollup_reading(&r[k++], 1, i);
    *n = k;
    return r;
}

#define ALL_ROLLUP_1M                                                                              \
    "SELECT pack, bucket, n, v_sum, v_min, v_max, i_sum, i_min, i_max, soc_sum, soc_min,"          \
    " soc_max, soc_n, cell_min, cell_max, temp_min, temp_max, printf('%.17g', charge_mwh),"        \
    " printf('%.17g', discharge_mwh) FROM rollup_1m ORDER BY pack, bucket"

static void prune_at(struct store *st, int64_t cut_ms)
{
    assert_int_equal(store_prune_now(st, cut_ms + 30 * DAY_MS, NULL), 0);
}

/* A prune moves minutes from the samples part of v_minutely to rollup_1m without changing a
 * row of the view (the energy of the first kept minute included), and rollup_1m then holds the
 * minutes exactly as computed from the readings. */
static void test_prune_folds_minutes(void **state)
{
    struct fx *f = *state;
    size_t n;
    struct reading *r = fold_readings(&n);
    f->st = open_store(f->cfg);
    write_chunks(f->st, r, n);
    sqlite3 *db = store_db(f->st);
    char *before = rows_text(db, ALL_MINUTES);
    assert_int_equal(q_int(db, "SELECT count(*) FROM rollup_1m"), 0);
    /* the cut is aligned down to a whole minute: 15 h 00 min */
    assert_int_equal(store_prune_now(f->st, T0 + 30 * DAY_MS + 15 * 3600000LL + 20000, NULL), 0);
    assert_int_equal(q_int(db, "SELECT count(*) FROM samples WHERE ts < %lld", T0 + 15 * 3600000LL),
                     0);
    assert_int_equal(
        q_int(db, "SELECT min(ts) FROM samples WHERE pack = %lld", (long long)pack_db_id(db, "p1")),
        T0 + 15 * 3600000LL);
    assert_int_equal(q_int(db, "SELECT max(bucket) FROM rollup_1m"), T0 / 1000 + 15 * 3600 - 60);
    assert_int_equal(q_int(db, "SELECT count(*) FROM rollup_1m WHERE pack = %lld",
                           (long long)pack_db_id(db, "p2")),
                     150);
    char *after = rows_text(db, ALL_MINUTES);
    assert_string_equal(after, before);
    free(after);
    /* the rest, after a restart */
    reopen(f);
    db = store_db(f->st);
    prune_at(f->st, T0 + 40 * DAY_MS);
    assert_int_equal(q_int(db, "SELECT count(*) FROM samples"), 0);
    after = rows_text(db, ALL_MINUTES);
    assert_string_equal(after, before);
    free(after);
    /* against the minutes computed here from the readings */
    struct bucket *b = calloc(FOLD_N, sizeof *b);
    assert_non_null(b);
    for (uint16_t p = 0; p < 2; p++) {
        size_t nb = expect_buckets(r, n, p, 60, b, FOLD_N);
        check_rollup_table(db, "rollup_1m", p == 0 ? "p1" : "p2", b, nb);
        check_rollup_view(db, 0, p == 0 ? "p1" : "p2", b, nb);
    }
    free(b);
    free(before);
    free(r);
}

/* One prune of everything (two batches for p1) and prunes split at other cuts, across store
 * reopens, with samples written in between, give the same rollup_1m to the last bit. */
static void test_prune_split_same(void **state)
{
    struct fx *f = *state;
    size_t n;
    struct reading *r = fold_readings(&n);
    size_t half = 0;
    while (half < n && r[half].ts_ms < T0 + 12 * 3600000LL)
        half++;
    char *want;
    {
        f->st = open_store(f->cfg);
        write_chunks(f->st, r, n);
        prune_at(f->st, T0 + 40 * DAY_MS);
        want = rows_text(store_db(f->st), ALL_ROLLUP_1M);
        store_close(f->st);
        f->st = NULL;
    }
    struct config *cb = second_config(f);
    struct store *sb = open_store(cb);
    write_chunks(sb, r, half);
    /* 7 h 13 min 10 s: cut at 7 h 13 min, in the middle of p1's samples */
    assert_int_equal(store_prune_now(sb, T0 + 30 * DAY_MS + 7 * 3600000LL + 790000, NULL), 0);
    store_close(sb);
    sb = open_store(cb);
    write_chunks(sb, r + half, n - half);
    prune_at(sb, T0 + 9 * 3600000LL);
    store_close(sb);
    sb = open_store(cb);
    prune_at(sb, T0 + 40 * DAY_MS);
    char *got = rows_text(store_db(sb), ALL_ROLLUP_1M);
    assert_string_equal(got, want);
    assert_true(strlen(want) > 1000);
    free(got);
    free(want);
    store_close(sb);
    config_free(cb);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retention),
        cmocka_unit_test(test_retention_fresh),
        cmocka_unit_test(test_prune_folds_minutes),
        cmocka_unit_test(test_prune_split_same),
    };
    return store_tests_run("test_store_retention", tests, sizeof tests / sizeof tests[0]);
}
