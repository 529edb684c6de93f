/* test_store_writer: what the store's writer computes and records: rollups (merged across calls
 * and restarts, equal to what the test computes), energy counters (gaps, restarts, per day and
 * bank), events (flag changes, health, packs whose flags are unknown), and the writer thread
 * (batches seen by other connections, its run recorded, any number of readings in one call). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "queue.h"
#include "sample.h"
#include "store.h"
#include "store_helpers.h"

/* ======================= 1. rollups ======================= */

/* `pruned`: retention has folded every sample into rollup_1m; otherwise rollup_1m is empty and
 * v_minutely computes the minutes from the samples. The view must show the same either way. */
static void check_rollups(sqlite3 *db, const struct reading *r, size_t n, int pruned)
{
    struct bucket *b = calloc(RS_N, sizeof *b);
    assert_non_null(b);
    for (uint16_t p = 0; p < 2; p++) {
        const char *pid = p == 0 ? "p1" : "p2";
        size_t nm = expect_buckets(r, n, p, 60, b, RS_N);
        assert_int_equal(nm, RS_N / 2);
        if (pruned)
            check_rollup_table(db, "rollup_1m", pid, b, nm);
        else
            assert_int_equal(q_int(db, "SELECT count(*) FROM rollup_1m"), 0);
        check_rollup_view(db, 0, pid, b, nm);
        double charge = 0, discharge = 0;
        for (size_t k = 0; k < nm; k++) {
            charge += b[k].charge;
            discharge += b[k].discharge;
        }
        size_t nh = expect_buckets(r, n, p, 3600, b, RS_N);
        assert_int_equal(nh, 2);
        check_rollup_table(db, "rollup_1h", pid, b, nh);
        check_rollup_view(db, 1, pid, b, nh);
        /* the energy counter is the sum of what the rollups got */
        assert_near(q_dbl(db, "SELECT charged_mwh FROM energy WHERE pack = %lld",
                          (long long)pack_db_id(db, pid)),
                    charge, 1e-6);
        assert_near(q_dbl(db, "SELECT discharged_mwh FROM energy WHERE pack = %lld",
                          (long long)pack_db_id(db, pid)),
                    discharge, 1e-6);
        assert_true(charge > 0 && discharge > 0);
        /* and so is the energy of v_minutely's minutes (each rounded to 0.001 Wh, from
         * increments rounded to 1 µWh) */
        assert_near(q_dbl(db, "SELECT sum(charged_wh) FROM v_minutely WHERE pack = '%s'", pid),
                    charge / 1000.0, 0.0005 * (double)nm + 1e-6 * (double)n + 1e-9);
        assert_near(q_dbl(db, "SELECT sum(discharged_wh) FROM v_minutely WHERE pack = '%s'", pid),
                    discharge / 1000.0, 0.0005 * (double)nm + 1e-6 * (double)n + 1e-9);
        if (!pruned)
            check_sample_energy(db, pid);
    }
    assert_int_equal(q_int(db, "SELECT count(*) FROM v_minutely WHERE pack = 'p3'"), 0);
    assert_int_equal(q_int(db, "SELECT count(*) FROM rollup_1m WHERE pack ="
                               " (SELECT id FROM packs WHERE pack_id = 'p3')"),
                     0);
    free(b);
}

/* The rollup tests' samples: RS_N steps of two packs, n = 2 * RS_N readings. Caller frees. */
static struct reading *rollup_readings(size_t n)
{
    struct reading *r = calloc(n, sizeof *r);
    assert_non_null(r);
    for (size_t i = 0; i < n / 2; i++)
        for (uint16_t p = 0; p < 2; p++)
            rollup_reading(&r[2 * i + p], p, (int)i);
    return r;
}

static void test_rollups(void **state)
{
    struct fx *f = *state;
    size_t n = 2 * RS_N;
    struct reading *r = rollup_readings(n);

    /* all in one call (244 buckets; the writer's bucket array grows at minute buckets here,
     * never at a new hour, so test_bucket_realloc's bug does not strike; nor in the split
     * calls below) */
    f->st = open_store(f->cfg);
    write_ok(f->st, r, n);
    check_rollups(store_db(f->st), r, n, 0);
    /* retention folds them all into rollup_1m: the same minutes, now stored */
    uint64_t deleted = 0;
    assert_int_equal(store_prune_now(f->st, T0 + 31 * DAY_MS, &deleted), 0);
    assert_int_equal(deleted, n);
    assert_int_equal(q_int(store_db(f->st), "SELECT count(*) FROM samples"), 0);
    check_rollups(store_db(f->st), r, n, 1);
    store_close(f->st);
    f->st = NULL;

    /* the same readings split in the middle of minutes and of the first hour: two calls, then
     * a close and reopen, then the rest */
    struct config *cb = second_config(f);
    struct store *sb = open_store(cb);
    /* cut1: p1 | p2 of minute 30; cut2: p1 | p2 of minute 50 */
    const size_t cut1 = 2 * 61 + 1, cut2 = 2 * 101 + 1;
    write_ok(sb, r, cut1);
    write_ok(sb, r + cut1, cut2 - cut1);
    store_close(sb);
    sb = open_store(cb);
    write_ok(sb, r + cut2, n - cut2);
    check_rollups(store_db(sb), r, n, 0);

    /* p2's minute 30 really was written in two pieces: a shell sees both samples */
    assert_int_equal(q_int(store_db(sb),
                           "SELECT samples FROM v_minutely WHERE pack = 'p2' AND"
                           " bucket = %lld",
                           T0 / 1000 + 30 * 60),
                     2);
    store_close(sb);
    config_free(cb);
    free(r);
}

/* One pack, 30 s samples from minute 59 of an hour to past the second hour after it. */
static void test_bucket_realloc(void **state)
{
    struct fx *f = *state;
    f->st = open_store(f->cfg);
    struct reading r[125];
    for (int i = 0; i < 125; i++) {
        reading_sample(&r[i], 0, T0 + 3540000 + i * 30000LL);
        r[i].s.voltage_mv = 52000;
        r[i].s.current_ma = 1000;
        sample_finish(&r[i].s);
    }
    /* Regression test, fixed: src/store_writer.c write_sample() takes a1 = acc_get(minute) and then
     * ah = acc_get(hour); when the hour bucket is new and s->accs is full (naccs == cap_accs:
     * 64, 128, ...), that second acc_get realloc()s s->accs and a1 points into freed memory.
     * acc_add(a1, ...) then writes to the freed block (ASan: heap-use-after-free in acc_add).
     * Without ASan it depends on the allocator: when realloc moves the block, the sample is
     * lost from that minute's rollup (the new array holds the empty copy) and freed memory is
     * written; when it grows in place, nothing shows. Here the first sample of 02:00 makes
     * naccs 64 (hour 00 and its minute 59, hour 01 and its 60 minutes, then minute 02:00) and
     * its hour is new. Any batch with more than 63 buckets can hit it: 32+ packs per commit,
     * a backlog after failed commits, a bulk store_write_now. Expected: rollup_1m for 02:00
     * has n = 2 and the sums count all 125 samples; actual (ASan build): heap-use-after-free.
     * Fixed: acc_get is called once per bucket before acc_add. */
    write_ok(f->st, r, 125);
    sqlite3 *db = store_db(f->st);
    assert_int_equal(
        q_int(db, "SELECT samples FROM v_minutely WHERE bucket = %lld", T0 / 1000 + 7200), 2);
    assert_int_equal(q_int(db, "SELECT sum(samples) FROM v_minutely"), 125);
    /* and the same once retention has folded them into rollup_1m */
    assert_int_equal(store_prune_now(f->st, T0 + 31 * DAY_MS, NULL), 0);
    assert_int_equal(q_int(db, "SELECT n FROM rollup_1m WHERE bucket = %lld", T0 / 1000 + 7200), 2);
    assert_int_equal(q_int(db, "SELECT sum(n) FROM rollup_1m"), 125);
    assert_int_equal(q_int(db, "SELECT sum(n) FROM rollup_1h"), 125);
}

/* ======================= 2. energy ======================= */

static void constant_power(struct reading *r, size_t n, uint16_t pack, int64_t t_start_ms,
                           int64_t step_ms, int32_t mv, int32_t ma)
{
    for (size_t i = 0; i < n; i++) {
        reading_sample(&r[i], pack, t_start_ms + (int64_t)i * step_ms);
        r[i].s.voltage_mv = mv;
        r[i].s.current_ma = ma;
        r[i].s.soc_cpct = 5000;
        sample_finish(&r[i].s);
    }
}

static double energy_col(sqlite3 *db, const char *pack, const char *col)
{
    return q_dbl(db,
                 "SELECT %s FROM energy WHERE pack = (SELECT id FROM packs WHERE"
                 " pack_id = '%s')",
                 col, pack);
}

static void test_energy_counters(void **state)
{
    struct fx *f = *state;
    f->st = open_store(f->cfg);
    struct reading r[121];

    /* p1: +20 A at 52 V for 1 h in 30 s steps = 1040 Wh, in two runs of the daemon */
    constant_power(r, 121, 0, T0, 30000, 52000, 20000);
    write_ok(f->st, r, 61); /* 0 .. 1800 s */
    sqlite3 *db = store_db(f->st);
    assert_near(energy_col(db, "p1", "charged_mwh"), 1.04e6 / 2, 1e-3);
    assert_int_equal(
        q_int(db, "SELECT last_ts FROM energy WHERE pack = %lld", (long long)pack_db_id(db, "p1")),
        T0 + 1800000);
    reopen(f); /* the step 1800 → 1830 s is integrated from the persisted last_ts and power */
    write_ok(f->st, r + 61, 60);
    db = store_db(f->st);
    assert_near(energy_col(db, "p1", "charged_mwh"), 1.04e6, 1e-3);
    assert_near(energy_col(db, "p1", "discharged_mwh"), 0, 0);
    assert_near(energy_col(db, "p1", "last_power_mw"), 52000.0 * 20000 / 1000, 1e-6);
    assert_int_equal(
        q_int(db, "SELECT last_ts FROM energy WHERE pack = %lld", (long long)pack_db_id(db, "p1")),
        T0 + 3600000);
    assert_near(q_dbl(db, "SELECT sum(charge_mwh) FROM rollup_1h WHERE pack = %lld",
                      (long long)pack_db_id(db, "p1")),
                1.04e6, 1e-3);
    /* the minutes: computed from the samples (each rounded to 0.001 Wh), then folded by
     * retention into rollup_1m */
    assert_near(q_dbl(db, "SELECT sum(charged_wh) FROM v_minutely WHERE pack = 'p1'"), 1.04e3,
                61 * 0.0005 + 120 * 1e-6);
    check_sample_energy(db, "p1");
    assert_int_equal(store_prune_now(f->st, T0 + 31 * DAY_MS, NULL), 0);
    /* rollup_1m sums the rows' increments: 120 steps, each rounded to 1 µWh */
    assert_near(q_dbl(db, "SELECT sum(charge_mwh) FROM rollup_1m WHERE pack = %lld",
                      (long long)pack_db_id(db, "p1")),
                1.04e6, 1e-3 * 120);
    assert_near(q_dbl(db, "SELECT sum(discharge_mwh) FROM rollup_1h WHERE pack = %lld",
                      (long long)pack_db_id(db, "p1")),
                0, 0);
    /* hour 0 got 120 steps, the last one (3570 → 3600 s) belongs to hour 1 */
    assert_near(q_dbl(db, "SELECT charge_mwh FROM rollup_1h WHERE pack = %lld AND bucket = %lld",
                      (long long)pack_db_id(db, "p1"), T0 / 1000),
                1.04e6 * 119 / 120, 1e-3);

    /* p2: −15 A at 50 V for 1 h = 750 Wh discharged */
    constant_power(r, 121, 1, T0, 30000, 50000, -15000);
    write_ok(f->st, r, 121);
    assert_near(energy_col(db, "p2", "discharged_mwh"), 7.5e5, 1e-3);
    assert_near(energy_col(db, "p2", "charged_mwh"), 0, 0);
    assert_near(q_dbl(db, "SELECT sum(discharge_mwh) FROM rollup_1h WHERE pack = %lld",
                      (long long)pack_db_id(db, "p2")),
                7.5e5, 1e-3);

    /* p3 (bank shed): 10 min, a gap of 301 s (> energy_max_gap_s), 10 min more: 2 × 173.3 Wh */
    constant_power(r, 21, 2, T0, 30000, 52000, 20000);
    write_ok(f->st, r, 21);
    constant_power(r, 21, 2, T0 + 600000 + 301000, 30000, 52000, 20000);
    write_ok(f->st, r, 21);
    const double ten_min = 1.04e6 / 6;
    assert_near(energy_col(db, "p3", "charged_mwh"), 2 * ten_min, 1e-3);
    assert_near(q_dbl(db, "SELECT sum(charged_wh) FROM v_minutely WHERE pack = 'p3'"),
                2 * ten_min / 1000, 22 * 0.0005 + 40 * 1e-6);
    check_sample_energy(db, "p3");
    /* the first sample after the gap integrated nothing */
    assert_int_equal(q_int(db,
                           "SELECT count(*) FROM samples WHERE pack = %lld AND ts = %lld"
                           " AND charge_uwh IS NULL",
                           (long long)pack_db_id(db, "p3"), T0 + 901000),
                     1);
    assert_near(q_dbl(db, "SELECT charged_wh FROM v_minutely WHERE pack = 'p3' AND bucket = %lld",
                      (T0 + 901000) / 1000 / 60 * 60),
                1.04e3 / 120, 0.0005);
    assert_int_equal(store_prune_now(f->st, T0 + 31 * DAY_MS, NULL), 0);
    assert_near(q_dbl(db, "SELECT sum(charge_mwh) FROM rollup_1m WHERE pack = %lld",
                      (long long)pack_db_id(db, "p3")),
                2 * ten_min, 1e-3 * 40);
    /* the minute after the gap (901 s, 931 s) holds one step, not the gap before it */
    assert_near(q_dbl(db, "SELECT charge_mwh FROM rollup_1m WHERE pack = %lld AND bucket = %lld",
                      (long long)pack_db_id(db, "p3"), (T0 + 901000) / 1000 / 60 * 60),
                1.04e6 / 120, 1e-3);

    /* per day and per bank: 2026-01-01 holds everything */
    sqlite3_stmt *st = prep(db, "SELECT pack, bank, day, charged_kwh, discharged_kwh FROM"
                                " v_daily_energy ORDER BY pack");
    const char *packs[3] = {"p1", "p2", "p3"}, *banks[3] = {"house", "house", "shed"};
    const double ch[3] = {1.04, 0, 2 * ten_min / 1e6}, dis[3] = {0, 0.75, 0};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        col_text(st, 0, packs[i]);
        col_text(st, 1, banks[i]);
        col_text(st, 2, "2026-01-01");
        assert_near(sqlite3_column_double(st, 3), ch[i], 0.0005 + 1e-9);
        assert_near(sqlite3_column_double(st, 4), dis[i], 0.0005 + 1e-9);
    }
    expect_done(st);
    /* the banks' days are the sums of their packs' days */
    assert_int_equal(q_int(db, "SELECT count(*) FROM v_bank_daily_energy"), 2);
    assert_int_equal(
        q_int(db, "SELECT count(*) FROM v_bank_daily_energy b WHERE abs(b.charged_kwh -"
                  " (SELECT sum(charged_kwh) FROM v_daily_energy d WHERE d.bank = b.bank AND"
                  " d.day = b.day)) < 0.0015 AND abs(b.discharged_kwh - (SELECT"
                  " sum(discharged_kwh) FROM v_daily_energy d WHERE d.bank = b.bank AND"
                  " d.day = b.day)) < 0.0015"),
        2);
    assert_near(q_dbl(db, "SELECT charged_kwh FROM v_bank_daily_energy WHERE bank = 'house'"), 1.04,
                1e-9);
    assert_near(q_dbl(db, "SELECT discharged_kwh FROM v_bank_daily_energy WHERE bank = 'house'"),
                0.75, 1e-9);
    assert_near(q_dbl(db, "SELECT charged_kwh FROM v_energy WHERE pack = 'p1'"), 1.04, 1e-9);
    char upd[32];
    q_text(db, upd, sizeof upd, "SELECT updated FROM v_energy WHERE pack = 'p1'");
    assert_string_equal(upd, "2026-01-01 01:00:00");

    /* a restart after a long pause: the pause is not integrated, what follows is */
    reopen(f);
    db = store_db(f->st);
    constant_power(r, 2, 2, T0 + 901000 + 600000 + 400000, 30000, 52000, 20000);
    write_ok(f->st, r, 1);
    assert_near(energy_col(db, "p3", "charged_mwh"), 2 * ten_min, 1e-3);
    write_ok(f->st, r + 1, 1);
    assert_near(energy_col(db, "p3", "charged_mwh"), 2 * ten_min + 1.04e6 / 120, 1e-3);
}

/* ======================= 3. events ======================= */

struct ev {
    const char *pack;
    int64_t ts;
    const char *kind, *detail;
};

static void check_events(sqlite3 *db, const char *from, const struct ev *want, size_t n)
{
    int view = strcmp(from, "v_events") == 0;
    sqlite3_stmt *st =
        prep(db, "SELECT pack, ts, kind, detail%s FROM %s ORDER BY id", view ? ", time" : "", from);
    for (size_t i = 0; i < n; i++) {
        if (sqlite3_step(st) != SQLITE_ROW)
            fail_msg("%s: %zu row(s), expected %zu", from, i, n);
        if (!view)
            col_int(st, 0, pack_db_id(db, want[i].pack));
        else
            col_text(st, 0, want[i].pack);
        col_int(st, 1, want[i].ts);
        col_text(st, 2, want[i].kind);
        col_text(st, 3, want[i].detail);
        if (view) {
            char when[32];
            utc_text(want[i].ts / 1000, when, sizeof when);
            col_text(st, 4, when);
        }
    }
    if (sqlite3_step(st) != SQLITE_DONE)
        fail_msg("%s: more events than the %zu expected (next: %s %s)", from, n,
                 sqlite3_column_text(st, 2), sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
}

static void flags_reading(struct reading *r, uint16_t pack, int64_t ts, uint32_t alarms,
                          uint32_t prot)
{
    reading_sample(r, pack, ts);
    fill_full(&r->s, 52000, 1000, 5000, 100000, 3300);
    r->s.alarms = alarms;
    r->s.protection = prot;
}

static void test_events(void **state)
{
    struct fx *f = *state;
    f->st = open_store(f->cfg);
    const char *no_answer = "no answer from address 1 after 3 tries";
    struct reading r[12];
    size_t n = 0;
    reading_health(&r[n++], 0, T0, PACK_ONLINE, "");
    flags_reading(&r[n++], 0, T0 + 30000, 0, 0);
    flags_reading(&r[n++], 0, T0 + 60000, SAMPLE_ALARM_CELL_OV, 0);
    flags_reading(&r[n++], 0, T0 + 90000, SAMPLE_ALARM_CELL_OV, 0); /* unchanged */
    flags_reading(&r[n++], 0, T0 + 120000, 0, SAMPLE_PROT_SHORT);
    flags_reading(&r[n++], 0, T0 + 150000, SAMPLE_ALARM_CELL_UV, SAMPLE_PROT_SHORT);
    reading_health(&r[n++], 0, T0 + 180000, PACK_OFFLINE, no_answer);
    /* p2 first seen with an alarm: raised; p3 never any */
    flags_reading(&r[n++], 1, T0 + 30000, SAMPLE_ALARM_MOS_HT, 0);
    flags_reading(&r[n++], 2, T0 + 30000, 0, 0);
    flags_reading(&r[n++], 2, T0 + 60000, 0, 0);
    reading_health(&r[n++], 2, T0 + 90000, PACK_STALE, "last answer 95 s ago");
    write_ok(f->st, r, n);
    assert_string_equal(pack_health_name(PACK_OFFLINE), "offline");

    struct ev want[16] = {
        {"p1", T0, "online", ""},
        {"p1", T0 + 60000, "alarm_raised", sample_alarm_name(0)},
        {"p1", T0 + 120000, "alarm_cleared", sample_alarm_name(0)},
        {"p1", T0 + 120000, "protection_raised", sample_prot_name(6)},
        {"p1", T0 + 150000, "alarm_raised", sample_alarm_name(1)},
        {"p1", T0 + 180000, "offline", no_answer},
        {"p2", T0 + 30000, "alarm_raised", sample_alarm_name(12)},
        {"p3", T0 + 90000, "stale", "last answer 95 s ago"},
    };
    size_t nw = 8;
    assert_string_equal(want[1].detail, "cell_overvoltage");
    assert_string_equal(want[3].detail, "short_circuit");
    check_events(store_db(f->st), "events", want, nw);
    check_events(store_db(f->st), "v_events", want, nw);

    /* nothing changed: no event */
    flags_reading(&r[0], 2, T0 + 120000, 0, 0);
    write_ok(f->st, r, 1);
    check_events(store_db(f->st), "events", want, nw);

    /* after a restart the flags come back from the last sample: unchanged raises nothing */
    reopen(f);
    flags_reading(&r[0], 0, T0 + 210000, SAMPLE_ALARM_CELL_UV, SAMPLE_PROT_SHORT);
    flags_reading(&r[1], 1, T0 + 210000, SAMPLE_ALARM_MOS_HT, 0);
    write_ok(f->st, r, 2);
    check_events(store_db(f->st), "events", want, nw);
    flags_reading(&r[0], 0, T0 + 240000, 0, 0);
    write_ok(f->st, r, 1);
    want[nw++] = (struct ev){"p1", T0 + 240000, "alarm_cleared", sample_alarm_name(1)};
    want[nw++] = (struct ev){"p1", T0 + 240000, "protection_cleared", sample_prot_name(6)};
    check_events(store_db(f->st), "v_events", want, nw);
    /* health readings are events, not samples */
    assert_int_equal(q_int(store_db(f->st), "SELECT count(*) FROM samples WHERE pack = %lld",
                           (long long)pack_db_id(store_db(f->st), "p1")),
                     7);
}

/* The first n samples in id order as the MQTT replay reads them back (store_sample_from_row). */
static void read_back(sqlite3 *db, struct sample *out, size_t n)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT " STORE_SAMPLE_COLUMNS " FROM samples"
                                        " ORDER BY id",
                                        -1, &st, NULL),
                     SQLITE_OK);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(store_sample_from_row(st, 0, NULL, &out[i]), 0);
    }
    sqlite3_finalize(st);
}

/* A pack that did not answer the alarm command: its samples are stored with the flags unknown
 * (NULL in v_samples, no v_alarms row, read back without SAMPLE_HAS_ALARMS), and they raise or
 * clear nothing: an alarm active before and after such samples is raised once, never cleared. */
static void test_flags_unknown(void **state)
{
    struct fx *f = *state;
    f->st = open_store(f->cfg);
    struct reading r[4];
    flags_reading(&r[0], 0, T0, SAMPLE_ALARM_CELL_OV, SAMPLE_PROT_SHORT);
    flags_reading(&r[1], 0, T0 + 30000, 0, 0);
    r[1].s.has &= ~(uint32_t)(SAMPLE_HAS_ALARMS | SAMPLE_HAS_BALANCE);
    r[1].s.has |= SAMPLE_ALARMS_UNSUPPORTED;
    r[2] = r[1];
    r[2].ts_ms = T0 + 60000;
    flags_reading(&r[3], 0, T0 + 90000, SAMPLE_ALARM_CELL_OV, SAMPLE_PROT_SHORT);
    write_ok(f->st, r, 4);
    sqlite3 *db = store_db(f->st);
    assert_int_equal(q_int(db, "SELECT count(*) FROM samples WHERE flags_known = 0"), 2);
    assert_int_equal(q_int(db, "SELECT count(*) FROM v_samples WHERE alarms IS NULL AND"
                               " protection IS NULL AND state IS NULL AND balancing IS NULL"),
                     2);
    assert_int_equal(q_int(db,
                           "SELECT count(*) FROM v_samples WHERE alarms = %u AND"
                           " protection = %u",
                           (unsigned)SAMPLE_ALARM_CELL_OV, (unsigned)SAMPLE_PROT_SHORT),
                     2);
    /* v_alarms: both flags of the first and the last sample only */
    assert_int_equal(q_int(db, "SELECT count(*) FROM v_alarms"), 4);
    assert_int_equal(q_int(db, "SELECT count(*) FROM v_alarms WHERE ts IN (%lld, %lld)",
                           (long long)(T0 + 30000), (long long)(T0 + 60000)),
                     0);
    struct ev want[] = {
        {"p1", T0, "alarm_raised", sample_alarm_name(0)},
        {"p1", T0, "protection_raised", sample_prot_name(6)},
    };
    check_events(db, "events", want, 2);

    /* read back (the MQTT replay's path): flags unknown, the analog values kept */
    struct sample back[4];
    read_back(db, back, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(back[i].voltage_mv, r[i].s.voltage_mv);
        int known = i == 0 || i == 3;
        assert_int_equal((back[i].has & SAMPLE_HAS_ALARMS) != 0, known);
        if (known)
            assert_int_equal(back[i].alarms, SAMPLE_ALARM_CELL_OV);
    }

    /* a restart after an unknown last sample: the next known flags are raised again, since
     * nothing says what they were meanwhile */
    flags_reading(&r[0], 0, T0 + 120000, 0, 0);
    r[0].s.has &= ~(uint32_t)SAMPLE_HAS_ALARMS;
    write_ok(f->st, r, 1);
    reopen(f);
    flags_reading(&r[0], 0, T0 + 150000, SAMPLE_ALARM_CELL_OV, 0);
    write_ok(f->st, r, 1);
    assert_int_equal(q_int(store_db(f->st), "SELECT count(*) FROM events WHERE"
                                            " kind = 'alarm_raised'"),
                     2);
    assert_int_equal(q_int(store_db(f->st), "SELECT count(*) FROM events WHERE"
                                            " kind LIKE '%%_cleared'"),
                     0);
}

/* Flags carried from an earlier 0x44 read (ports[].alarms_every): stored as flags_known 1 +
 * their age, shown in v_samples like read ones, raising nothing new, and read back (the
 * replay's path) as carried with their age. */
static void test_flags_carried(void **state)
{
    struct fx *f = *state;
    f->st = open_store(f->cfg);
    struct reading r[4];
    flags_reading(&r[0], 0, T0, SAMPLE_ALARM_CELL_OV, 0);
    for (int i = 1; i < 4; i++) {
        r[i] = r[0];
        r[i].ts_ms = T0 + 30000 * i;
        r[i].s.has |= SAMPLE_ALARMS_CARRIED;
        r[i].s.alarms_age = (uint16_t)i;
    }
    write_ok(f->st, r, 4);
    sqlite3 *db = store_db(f->st);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT flags_known FROM samples ORDER BY id", -1,
                                        &st, NULL),
                     SQLITE_OK);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(st, 0), 1 + i);
    }
    sqlite3_finalize(st);
    assert_int_equal(q_int(db, "SELECT count(*) FROM v_samples WHERE alarms = %u",
                           (unsigned)SAMPLE_ALARM_CELL_OV),
                     4);
    assert_int_equal(q_int(db, "SELECT count(*) FROM events WHERE kind = 'alarm_raised'"), 1);
    struct sample back[4];
    read_back(db, back, 4);
    for (int i = 0; i < 4; i++) {
        assert_true(back[i].has & SAMPLE_HAS_ALARMS);
        assert_int_equal((back[i].has & SAMPLE_ALARMS_CARRIED) != 0, i > 0);
        assert_int_equal(back[i].alarms_age, i);
        assert_int_equal(back[i].alarms, SAMPLE_ALARM_CELL_OV);
    }
}

/* ======================= 4. the writer thread ======================= */

/* A read-only connection, as another program opens the history (waits up to 5 s for a lock). */
static sqlite3 *open_reader(const char *path)
{
    sqlite3 *reader;
    assert_int_equal(sqlite3_open_v2(path, &reader, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(reader, 5000);
    return reader;
}

/* How many samples the reader sees once it sees `want`, or after 5 s. */
static int64_t wait_samples(sqlite3 *reader, int64_t want)
{
    int64_t seen = 0;
    for (int tries = 0; tries < 100 && seen < want; tries++) {
        struct timespec ms50 = {0, 50000000};
        nanosleep(&ms50, NULL);
        seen = q_int(reader, "SELECT count(*) FROM samples");
    }
    return seen;
}

static void test_writer_thread(void **state)
{
    struct fx *f = *state;
    f->st = open_store(f->cfg);
    struct queue *q;
    assert_int_equal(queue_new(4096, &q), 0);
    assert_int_equal(store_start(f->st, q), 0);
    struct reading r;
    reading_sample(&r, 0, T0);
    assert_int_equal(store_write_now(f->st, &r, 1), -EBUSY); /* the thread owns the writing */

    /* recent timestamps, so the writer's own retention leaves them alone; all in one hour, 15 s
     * apart, so no batch meets the bucket-array bug (test_bucket_realloc) */
    const int64_t start = (wall_ms() / 3600000 - 2) * 3600000;
    sqlite3 *reader = open_reader(f->path);
    /* a first batch shows up for another connection within a few commit intervals */
    for (int i = 0; i < 10; i++) {
        reading_sample(&r, 0, start + i * 15000LL);
        fill_full(&r.s, 52000, 1000, 5000, 100000, 3300);
        assert_int_equal(queue_push(q, &r), 0);
    }
    assert_int_equal(wait_samples(reader, 10), 10);
    /* the hourly rollups wait in the writer's memory (ROLLUP_FLUSH_MS, a minute): the commits
     * of the samples leave rollup_1h alone; the stop writes them (below) */
    assert_int_equal(q_int(reader, "SELECT count(*) FROM rollup_1h"), 0);
    assert_int_equal(q_int(reader, "SELECT value FROM meta WHERE key = 'rollup_1h_upto'"), 0);

    size_t pushed = 10;
    for (int i = 10; i < 200; i++) {
        for (uint16_t p = 0; p < 3; p++) {
            if (p == 0 || i >= 100) {
                reading_sample(&r, p, start + i * 15000LL + p);
                fill_full(&r.s, 52000 + p, 1000, 5000, 100000, 3300);
                assert_int_equal(queue_push(q, &r), 0);
                pushed++;
            }
        }
    }
    struct reading h;
    reading_health(&h, 1, start + 200 * 15000LL, PACK_OFFLINE, "gone");
    assert_int_equal(queue_push(q, &h), 0);
    pushed++;
    queue_close(q);
    store_stop(f->st);
    assert_int_equal(queue_dropped(q), 0);
    queue_free(q);

    sqlite3 *db = store_db(f->st);
    assert_int_equal(q_int(db, "SELECT count(*) FROM samples"), pushed - 1);
    assert_int_equal(q_int(db, "SELECT count(*) FROM samples s JOIN packs p ON p.id = s.pack"
                               " WHERE p.pack_id = 'p1'"),
                     200);
    assert_int_equal(q_int(db, "SELECT count(*) FROM v_events WHERE kind = 'offline' AND"
                               " pack = 'p2' AND detail = 'gone'"),
                     1);
    assert_int_equal(q_int(reader, "SELECT count(*) FROM samples"), pushed - 1);
    assert_int_equal(q_int(db, "SELECT sum(n) FROM rollup_1h"), pushed - 1);
    assert_int_equal(q_int(db, "SELECT value FROM meta WHERE key = 'rollup_1h_upto'"),
                     q_int(db, "SELECT max(id) FROM samples"));
    struct store_stats stats;
    store_get_stats(f->st, &stats);
    assert_int_equal(stats.committed, pushed);
    assert_true(stats.commits >= 2);
    assert_int_equal(stats.failed_commits, 0);
    assert_int_equal(stats.dropped, 0);
    sqlite3_close(reader);

    /* after the thread is gone, writing on the caller's thread works again */
    reading_sample(&r, 2, start + 250 * 15000LL);
    fill_full(&r.s, 52000, 1000, 5000, 100000, 3300);
    write_ok(f->st, &r, 1);
    assert_int_equal(q_int(db, "SELECT count(*) FROM samples"), pushed);
}

/* store_write_now takes any number of readings "in one transaction". */
static void test_write_many(void **state)
{
    struct fx *f = *state;
    f->st = open_store(f->cfg);
    size_t n = 9000;
    struct reading *r = calloc(n, sizeof *r);
    assert_non_null(r);
    for (size_t i = 0; i < n; i++) {
        /* 20 ms apart: one minute bucket per pack, whatever the batch (test_bucket_realloc) */
        reading_sample(&r[i], (uint16_t)(i % 3), T0 + (int64_t)(i / 3) * 20);
        fill_full(&r[i].s, 52000, 1000, 5000, 100000, 3300);
    }
    int rc = store_write_now(f->st, r, n);
    struct store_stats stats;
    store_get_stats(f->st, &stats);
    int64_t rows = q_int(store_db(f->st), "SELECT count(*) FROM samples");
    free(r);
    /* what was not written is at least counted */
    assert_int_equal(rows + (int64_t)stats.dropped, n);
    /* Regression test, fixed: src/store_writer.c store_write_now() puts all n readings in `pending`
     * before committing, and add_pending() never grows it past PENDING_MAX (8192): from the 8193rd
     * reading on it drops the oldest ("memory is full while writing fails") although nothing
     * failed, then commits the rest and returns 0. Input: 9000 readings in one call. Expected:
     * 9000 rows (or a negative return); actual: 8192 rows, stats.dropped = 808, return 0. */
    assert_int_equal(stats.dropped, 0);
    assert_false(rc == 0 && rows != (int64_t)n);
}

/* The writer thread records its run: the row exists as soon as it starts (writing), its last
 * write follows the commits, and the stop is recorded when it is joined; tool writes after
 * that leave the row alone. store_write_now alone records no run. */
static void test_writer_records_run(void **state)
{
    struct fx *f = *state;
    f->st = open_store(f->cfg);
    sqlite3 *db = store_db(f->st);
    struct reading r;
    reading_sample(&r, 0, wall_ms());
    fill_full(&r.s, 52000, 1000, 5000, 100000, 3300);
    write_ok(f->st, &r, 1);
    assert_int_equal(q_int(db, "SELECT count(*) FROM daemon_runs"), 0);

    struct queue *q;
    assert_int_equal(queue_new(64, &q), 0);
    const int64_t before = wall_ms();
    assert_int_equal(store_start(f->st, q), 0);
    sqlite3 *reader = open_reader(f->path);
    expect_rows(reader, "SELECT state, stopped_ts, heartbeat_s FROM v_daemon", "writing|NULL|60\n");
    int64_t started = q_int(reader, "SELECT started_ts FROM v_daemon");
    assert_true(started >= before && started <= wall_ms());
    int64_t first_write = q_int(reader, "SELECT last_write_ts FROM v_daemon");

    /* a commit within the heartbeat leaves the row alone (one page less per commit for the
     * WAL and the checkpoint); the run is still writing */
    struct timespec ms20 = {0, 20000000};
    nanosleep(&ms20, NULL);
    reading_sample(&r, 1, wall_ms());
    fill_full(&r.s, 52000, 1000, 5000, 100000, 3300);
    assert_int_equal(queue_push(q, &r), 0);
    assert_int_equal(wait_samples(reader, 2), 2);
    assert_int_equal(q_int(reader, "SELECT last_write_ts FROM v_daemon"), first_write);
    expect_rows(reader, "SELECT state FROM v_daemon", "writing\n");
    assert_int_equal(q_int(reader, "SELECT count(*) FROM v_daemon WHERE stopped_ts IS NULL"), 1);

    queue_close(q);
    const int64_t stop_before = wall_ms();
    store_stop(f->st);
    const int64_t stop_after = wall_ms();
    queue_free(q);
    char want[128];
    snprintf(want, sizeof want, "1|stopped|1|%s\n", BMSFLEET_VERSION);
    expect_rows(reader, "SELECT count(*), state, stopped_ts = last_write_ts, version FROM v_daemon",
                want);
    int64_t stopped = q_int(reader, "SELECT stopped_ts FROM v_daemon");
    assert_true(stopped >= stop_before && stopped <= stop_after);

    /* writing on the caller's thread afterwards does not revive the run */
    reading_sample(&r, 2, wall_ms());
    fill_full(&r.s, 52000, 1000, 5000, 100000, 3300);
    write_ok(f->st, &r, 1);
    assert_int_equal(q_int(reader, "SELECT stopped_ts FROM v_daemon"), stopped);
    assert_int_equal(q_int(reader, "SELECT count(*) FROM daemon_runs"), 1);

    /* no stop recorded and no write for over two heartbeats: a daemon that vanished */
    assert_int_equal(sqlite3_exec(db,
                                  "UPDATE daemon_runs SET stopped = NULL,"
                                  " last_write = last_write - 3600000",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    expect_rows(reader, "SELECT state FROM v_daemon", "not_writing\n");
    assert_near(q_dbl(reader, "SELECT age_s FROM v_daemon"), 3600.0, 2.0);
    sqlite3_close(reader);
}

/* A run that ended (kill -9, a power cut) while its hourly deltas waited in memory: the samples
 * after meta.rollup_1h_upto are committed, their rollup_1h rows are not. The next open folds
 * them, and rollup_1h is again exactly the samples grouped by hour; a second open folds nothing
 * twice. */
static void test_rollups_recovered(void **state)
{
    struct fx *f = *state;
    size_t n = 2 * RS_N;
    struct reading *r = rollup_readings(n);
    f->st = open_store(f->cfg);
    write_ok(f->st, r, n);
    sqlite3 *db = store_db(f->st);
    int64_t newest = q_int(db, "SELECT max(id) FROM samples");
    assert_int_equal(q_int(db, "SELECT value FROM meta WHERE key = 'rollup_1h_upto'"), newest);
    /* every column but the energy exactly; the energy a start folds is the rows' steps,
     * rounded to µWh (the writer's own deltas are not): within 0.5 µWh per sample */
#define HOURS_EXACT                                                                                \
    "SELECT pack, bucket, n, v_sum, v_min, v_max, i_sum, i_min, i_max, soc_sum, soc_min,"         \
    " soc_max, soc_n, cell_min, cell_max, temp_min, temp_max FROM rollup_1h ORDER BY pack, bucket"
#define HOURS_ENERGY_OFF                                                                           \
    "SELECT count(*) FROM rollup_1h r WHERE abs(r.charge_mwh - (SELECT total(charge_uwh) / 1000.0"  \
    " FROM samples s WHERE s.pack = r.pack AND s.ts / 3600000 * 3600 = r.bucket)) > 0.0005 * r.n" \
    " OR abs(r.discharge_mwh - (SELECT total(discharge_uwh) / 1000.0 FROM samples s"               \
    " WHERE s.pack = r.pack AND s.ts / 3600000 * 3600 = r.bucket)) > 0.0005 * r.n"
    char *want = rows_text(db, HOURS_EXACT);
    assert_int_equal(q_int(db, HOURS_ENERGY_OFF), 0);
    assert_true(q_dbl(db, "SELECT sum(charge_mwh) + sum(discharge_mwh) FROM rollup_1h") > 1000);

    /* the second hour's deltas never written, and then nothing at all */
    const char *crashes[] = {
        "DELETE FROM rollup_1h WHERE bucket >= 1767229200;"
        "UPDATE meta SET value = (SELECT max(id) FROM samples WHERE ts < 1767229200000)"
        " WHERE key = 'rollup_1h_upto'",
        "DELETE FROM rollup_1h; UPDATE meta SET value = 0 WHERE key = 'rollup_1h_upto'",
    };
    for (size_t c = 0; c < 2; c++) {
        assert_int_equal(sqlite3_exec(store_db(f->st), crashes[c], NULL, NULL, NULL), SQLITE_OK);
        assert_true(q_int(store_db(f->st), "SELECT count(*) FROM rollup_1h") < 4);
        reopen(f);
        db = store_db(f->st);
        char *got = rows_text(db, HOURS_EXACT);
        assert_string_equal(got, want);
        free(got);
        assert_int_equal(q_int(db, HOURS_ENERGY_OFF), 0);
        assert_int_equal(q_int(db, "SELECT value FROM meta WHERE key = 'rollup_1h_upto'"),
                         newest);
        char *energy = rows_text(db, "SELECT charge_mwh, discharge_mwh FROM rollup_1h"
                                     " ORDER BY pack, bucket");
        reopen(f); /* nothing folded twice */
        got = rows_text(store_db(f->st), HOURS_EXACT);
        assert_string_equal(got, want);
        free(got);
        got = rows_text(store_db(f->st), "SELECT charge_mwh, discharge_mwh FROM rollup_1h"
                                         " ORDER BY pack, bucket");
        assert_string_equal(got, energy);
        free(got);
        free(energy);
    }
    free(want);
    free(r);
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rollups),
        cmocka_unit_test(test_rollups_recovered),
        cmocka_unit_test(test_bucket_realloc),
        cmocka_unit_test(test_energy_counters),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_flags_unknown),
        cmocka_unit_test(test_flags_carried),
        cmocka_unit_test(test_writer_thread),
        cmocka_unit_test(test_write_many),
        cmocka_unit_test(test_writer_records_run),
    };
    /* clang-format on */
    return store_tests_run("test_store_writer", tests, sizeof tests / sizeof tests[0]);
}
