/* test_clock: issue 16, item 7. The wall clock jumps while the daemon runs, as on a box without
 * RTC that NTP sets: back 1 h, forward 1 day, back to the true time (the daemon's testing aid
 * BMSFLEET_TEST_CLOCK_FILE, include/now.h; the simulators keep the true time). Two ports of
 * eight packs with the fault mix (tests/fleet.h), then:
 *   - every stored sample equals a valid answer sent, in the order sent (ids), none missing,
 *     the counters equal the faults: the jumps change nothing of that;
 *   - the jumps reached the history (samples of a pack step back 1 h and forward 1 day);
 *   - energy: no step negative, every step after a pack's first integrated (durations from the
 *     monotonic clock), and each pack's energy equals the integration of the answers sent over
 *     the simulator's true time; the energy counters equal the sum of the steps;
 *   - rollup_1h equals the samples grouped by the hour of their own timestamps, in the three
 *     stretches of hours the clock showed. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>

#include "energy.h"
#include "fleet.h"

#define PHASE_MS 6000
#define HOUR_MS  3600000LL
#define DAY_MS   (24 * HOUR_MS)
/* the daemon's monotonic clock and the simulator's wall clock differ by scheduling only */
#define ENERGY_TOLERANCE 0.01

static struct fleet fl;
static char clock_path[160];

static int teardown(void **state)
{
    (void)state;
    unsetenv("BMSFLEET_TEST_CLOCK_FILE");
    fleet_free(&fl);
    return 0;
}

/* The offset the daemon adds to its wall clock, replaced at once (rename). */
static void set_offset(long long ms)
{
    char tmp[200];
    snprintf(tmp, sizeof tmp, "%s.tmp", clock_path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    assert_true(fprintf(f, "%lld\n", ms) > 0);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, clock_path), 0);
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        print_error("%s: %s\n", sql, sqlite3_errmsg(db));
        fail();
    }
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The energy of the valid answers sent to a pack, over the simulator's true time. */
static void sent_energy(const struct fleet_pack *p, int64_t max_gap_ms, double *c, double *d)
{
    struct energy_state e;
    memset(&e, 0, sizeof e);
    for (size_t i = 0; i < p->nlog; i++) {
        long long mv, ma;
        if (p->log[i].row == 0 || sscanf(p->log[i].values, "%lld\t%lld", &mv, &ma) != 2)
            continue;
        energy_step_mono(&e, p->log[i].ms, p->log[i].ms, (double)mv * (double)ma / 1000.0,
                         max_gap_ms, NULL, NULL);
    }
    *c = e.charged_mwh;
    *d = e.discharged_mwh;
}

static void check_energy(sqlite3 *db)
{
    sqlite3_stmt *st;
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT p.pack_id, sum(s.charge_uwh) / 1000.0,"
                           " sum(s.discharge_uwh) / 1000.0, count(*) - count(s.charge_uwh),"
                           " e.charged_mwh, e.discharged_mwh, count(*)"
                           " FROM samples s JOIN packs p ON p.id = s.pack"
                           " JOIN energy e ON e.pack = s.pack GROUP BY s.pack",
                           -1, &st, NULL),
        SQLITE_OK);
    int packs = 0;
    double total = 0, worst = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        packs++;
        const struct fleet_pack *p = fleet_find(&fl, (const char *)sqlite3_column_text(st, 0));
        assert_non_null(p);
        double c = sqlite3_column_double(st, 1), d = sqlite3_column_double(st, 2);
        double n = (double)sqlite3_column_int64(st, 6);
        assert_int_equal(sqlite3_column_int64(st, 3), 1); /* only the first is not integrated */
        /* the counters are the steps' sum (the rows round each step to 1 µWh) */
        assert_true(fabs(sqlite3_column_double(st, 4) - c) <= 1e-3 * n);
        assert_true(fabs(sqlite3_column_double(st, 5) - d) <= 1e-3 * n);
        double sc, sd;
        sent_energy(p, 300000, &sc, &sd);
        if (fabs(c - sc) > ENERGY_TOLERANCE * sc + 1 || fabs(d - sd) > ENERGY_TOLERANCE * sd + 1) {
            print_error("pack %s: stored %.1f mWh charged, %.1f discharged; sent %.1f, %.1f\n",
                        p->id, c, d, sc, sd);
            fail();
        }
        total += c + d;
        double dev = fabs(c + d - sc - sd) / (sc + sd > 0 ? sc + sd : 1);
        worst = dev > worst ? dev : worst;
    }
    sqlite3_finalize(st);
    assert_int_equal(packs, fl.ports * fl.packs);
    assert_true(total > 0);
    print_message("clock jumps: energy of %d packs %.1f Wh, every step after each pack's first "
                  "integrated, none negative; at most %.2f %% from the integration over the "
                  "simulator's true time\n",
                  packs, total / 1000.0, worst * 100.0);
    assert_int_equal(query_int(db, "SELECT count(*) FROM samples WHERE charge_uwh < 0"
                                   " OR discharge_uwh < 0"),
                     0);
}

/* rollup_1h against the samples grouped by the hour of their timestamps. */
static void check_rollups(sqlite3 *db)
{
    static const char groups[] =
        "WITH s AS (SELECT pack, ts / 1000 - ts / 1000 % 3600 AS bucket, count(*) AS n,"
        " sum(voltage_mv) AS v_sum, min(voltage_mv) AS v_min, max(voltage_mv) AS v_max,"
        " sum(current_ma) AS i_sum, min(current_ma) AS i_min, max(current_ma) AS i_max,"
        " sum(soc_cpct) AS soc_sum, min(soc_cpct) AS soc_min, max(soc_cpct) AS soc_max,"
        " count(soc_cpct) AS soc_n, min(cell_min_mv) AS cell_min, max(cell_max_mv) AS cell_max,"
        " min(temp_min_dc) AS temp_min, max(temp_max_dc) AS temp_max,"
        " sum(charge_uwh) / 1000.0 AS c, sum(discharge_uwh) / 1000.0 AS d"
        " FROM samples GROUP BY 1, 2),"
        " r AS (SELECT pack, bucket, n, v_sum, v_min, v_max, i_sum, i_min, i_max, soc_sum,"
        " soc_min, soc_max, soc_n, cell_min, cell_max, temp_min, temp_max FROM rollup_1h) ";
    char sql[2048];
    snprintf(sql, sizeof sql,
             "%s SELECT (SELECT count(*) FROM (SELECT pack, bucket, n, v_sum, v_min, v_max,"
             " i_sum, i_min, i_max, soc_sum, soc_min, soc_max, soc_n, cell_min, cell_max,"
             " temp_min, temp_max FROM s EXCEPT SELECT * FROM r))"
             " + (SELECT count(*) FROM (SELECT * FROM r EXCEPT SELECT pack, bucket, n, v_sum,"
             " v_min, v_max, i_sum, i_min, i_max, soc_sum, soc_min, soc_max, soc_n, cell_min,"
             " cell_max, temp_min, temp_max FROM s))",
             groups);
    assert_int_equal(query_int(db, sql), 0);
    snprintf(sql, sizeof sql,
             "%s SELECT count(*) FROM s JOIN rollup_1h x USING (pack, bucket)"
             " WHERE abs(x.charge_mwh - coalesce(s.c, 0)) > 1e-3 * s.n"
             " OR abs(x.discharge_mwh - coalesce(s.d, 0)) > 1e-3 * s.n"
             " OR x.charge_mwh < 0 OR x.discharge_mwh < 0",
             groups);
    assert_int_equal(query_int(db, sql), 0);
    /* the true hour (or two), the hour before, the day after */
    int64_t hours = query_int(db, "SELECT count(DISTINCT bucket) FROM rollup_1h");
    print_message("clock jumps: rollup_1h (%lld rows in %lld hours) equals the samples grouped "
                  "by hour\n",
                  (long long)query_int(db, "SELECT count(*) FROM rollup_1h"), (long long)hours);
    assert_true(hours >= 3);
    assert_int_equal(query_int(db, "SELECT count(*) FROM v_hourly"),
                     query_int(db, "SELECT count(*) FROM rollup_1h"));
}

static void check_jumps(sqlite3 *db)
{
    static const char steps[] =
        "SELECT count(*) FROM (SELECT ts - lag(ts) OVER (PARTITION BY pack ORDER BY id) AS step"
        " FROM samples) WHERE step %s";
    char sql[256];
    snprintf(sql, sizeof sql, steps, "BETWEEN -3660000 AND -3540000"); /* back 1 h */
    assert_true(query_int(db, sql) > 0);
    snprintf(sql, sizeof sql, steps, "BETWEEN 89940000 AND 90060000"); /* forward 1 day + 1 h */
    assert_true(query_int(db, sql) > 0);
    snprintf(sql, sizeof sql, steps, "BETWEEN -86460000 AND -86340000"); /* back 1 day */
    assert_true(query_int(db, sql) > 0);
}

static void test_clock_jumps(void **state)
{
    (void)state;
    fl.ports = 2;
    fl.packs = 8;
    fl.timeout_ms = 300;
    fl.seed = (uint64_t)proc_env_count("BMSFLEET_FAULT_SEED", 7);
    fl.mix = "soak";
    fleet_start(&fl);
    snprintf(clock_path, sizeof clock_path, "%s/clock", fl.dir);
    set_offset(0);
    assert_int_equal(setenv("BMSFLEET_TEST_CLOCK_FILE", clock_path, 1), 0);
    fleet_start_daemon(&fl);
    unsetenv("BMSFLEET_TEST_CLOCK_FILE");
    const long long offsets[] = {-HOUR_MS, DAY_MS, 0};
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
        fleet_run(&fl, ~0ull, PHASE_MS);
        set_offset(offsets[i]);
    }
    fleet_run(&fl, ~0ull, PHASE_MS);
    fleet_stop(&fl);
    struct fleet_tally t;
    fleet_check(&fl, &t);
    fleet_report(&fl, &t, "clock jumps");
    assert_int_equal(t.mismatches, 0);

    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(fl.db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    check_jumps(db);
    check_energy(db);
    check_rollups(db);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_clock_jumps, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
