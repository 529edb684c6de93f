/* test_store_views: what the history's tables and views show of what was written: every column
 * of a sample (NULL for absent values, both cell encodings, roles, local time) in samples,
 * v_samples, v_cells, v_temps and v_alarms; v_latest and v_bank_latest (capacity-weighted SOC,
 * health by the age of the newest sample); and the sqlite3 shell, as a person uses it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "sample.h"
#include "store.h"
#include "store_helpers.h"

/* ======================= 1. samples and their views ======================= */

/* The three samples of test_sample_columns: a full one (cell spread 22 mV: format 1), a
 * Daren-like one (no SOH, no design capacity; spread 450 mV: format 2) and a bare one (voltage
 * and current only, current exactly 0). */
static void three_samples(struct reading r[3])
{
    reading_sample(&r[0], 0, T0 + 30000);
    struct sample *s = &r[0].s;
    s->voltage_mv = 53120;
    s->current_ma = -12340;
    s->soc_cpct = 8765;
    s->soh_cpct = 9850;
    s->remaining_mah = 87650;
    s->full_mah = 100000;
    s->design_mah = 105000;
    s->cycles = 42;
    s->ncells = 16;
    for (int i = 0; i < 16; i++)
        s->cell_mv[i] = 3300 + (i * 7) % 23; /* 3300..3322 */
    s->cell_mv[4] = 3280;                    /* min, cell 5 */
    s->cell_mv[11] = 3330;                   /* max, cell 12 */
    add_pack_temps(s);
    s->alarms = SAMPLE_ALARM_CELL_OV | SAMPLE_ALARM_SOC_LOW;
    s->protection = 0;
    s->state = SAMPLE_STATE_CHG_FET | SAMPLE_STATE_DSG_FET | SAMPLE_STATE_DISCHARGING;
    s->balancing = (1u << 0) | (1u << 2) | (1u << 15);
    sample_finish(s);

    reading_sample(&r[1], 1, T0 + 31000);
    s = &r[1].s;
    s->voltage_mv = 52800;
    s->current_ma = 5000;
    s->soc_cpct = 5000;
    s->remaining_mah = 50000;
    s->full_mah = 100000;
    s->cycles = 7; /* soh, design: absent */
    s->ncells = 16;
    for (int i = 0; i < 16; i++)
        s->cell_mv[i] = 3300 + i;
    s->cell_mv[2] = 2950;  /* min, cell 3 */
    s->cell_mv[15] = 3400; /* max, cell 16: spread 450 */
    add_temp(s, -5, SAMPLE_TEMP_CELL);
    add_temp(s, 10, SAMPLE_TEMP_CELL);
    add_temp(s, 250, SAMPLE_TEMP_MOS);
    add_temp(s, 180, SAMPLE_TEMP_AVG);
    s->protection = SAMPLE_PROT_CELL_DIFF;
    s->balancing = 1u << 15;
    sample_finish(s);

    reading_sample(&r[2], 2, T0 + 32500);
    s = &r[2].s;
    s->voltage_mv = 26000;
    s->current_ma = 0;
    sample_finish(s);
}

static void temp_minmax(const struct sample *s, int32_t *lo, int32_t *hi)
{
    *lo = *hi = ABSENT;
    for (size_t i = 0; i < s->ntemps; i++) {
        if (i == 0 || s->temp_dc[i] < *lo)
            *lo = s->temp_dc[i];
        if (i == 0 || s->temp_dc[i] > *hi)
            *hi = s->temp_dc[i];
    }
}

/* voltage_mv .. cell_max_mv of the samples table, in its column order */
static const size_t sample_cols[10] = {
    offsetof(struct sample, voltage_mv),    offsetof(struct sample, current_ma),
    offsetof(struct sample, soc_cpct),      offsetof(struct sample, soh_cpct),
    offsetof(struct sample, remaining_mah), offsetof(struct sample, full_mah),
    offsetof(struct sample, design_mah),    offsetof(struct sample, cycles),
    offsetof(struct sample, cell_min_mv),   offsetof(struct sample, cell_max_mv),
};

static void check_sample_row(sqlite3 *db, const struct reading *r)
{
    const struct sample *m = &r->s;
    sqlite3_stmt *st =
        prep(db,
             "SELECT s.pack, s.ts, s.voltage_mv, s.current_ma, s.soc_cpct, s.soh_cpct,"
             " s.remaining_mah, s.full_mah, s.design_mah, s.cycles, s.cell_min_mv, s.cell_max_mv,"
             " s.cell_min_idx, s.cell_max_idx, s.temp_min_dc, s.temp_max_dc, s.alarms,"
             " s.protection, s.state, s.balancing, s.cells, s.temps"
             " FROM samples s JOIN packs p ON p.id = s.pack WHERE p.pack_id = '%s' AND s.ts = %lld",
             r->pack_id, (long long)r->ts_ms);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int32_t tlo, thi;
    temp_minmax(m, &tlo, &thi);
    col_int(st, 0, pack_db_id(db, r->pack_id));
    col_int(st, 1, r->ts_ms);
    for (int c = 0; c < 10; c++) { /* the sample's numbers, in the column order */
        int32_t want;
        memcpy(&want, (const char *)m + sample_cols[c], sizeof want);
        col_int(st, 2 + c, want);
    }
    col_int(st, 12, m->ncells ? m->cell_min_idx : ABSENT);
    col_int(st, 13, m->ncells ? m->cell_max_idx : ABSENT);
    col_int(st, 14, tlo);
    col_int(st, 15, thi);
    col_int(st, 16, m->alarms);
    col_int(st, 17, m->protection);
    col_int(st, 18, m->state);
    col_int(st, 19, m->balancing);

    /* cells blob, built here from the layout the schema documents */
    uint8_t want[1 + 2 * SAMPLE_MAX_CELLS];
    if (m->ncells) {
        size_t n = 0;
        int narrow = m->cell_max_mv - m->cell_min_mv <= 255;
        want[n++] = narrow ? 1 : 2;
        for (size_t i = 0; i < m->ncells; i++) {
            if (narrow) {
                want[n++] = (uint8_t)(m->cell_mv[i] - m->cell_min_mv);
            } else {
                want[n++] = (uint8_t)(m->cell_mv[i] >> 8);
                want[n++] = (uint8_t)(m->cell_mv[i] & 0xff);
            }
        }
        assert_int_equal(sqlite3_column_type(st, 20), SQLITE_BLOB);
        assert_int_equal(sqlite3_column_bytes(st, 20), n);
        assert_memory_equal(sqlite3_column_blob(st, 20), want, n);
        uint8_t api[1 + 2 * SAMPLE_MAX_CELLS];
        assert_int_equal(store_cells_blob(m, api, sizeof api), n);
        assert_memory_equal(api, want, n);
    } else {
        assert_int_equal(sqlite3_column_type(st, 20), SQLITE_NULL);
        assert_int_equal(store_cells_blob(m, want, sizeof want), 0);
    }
    /* temps blob: big-endian s16 per sensor */
    if (m->ntemps) {
        uint8_t t[2 * SAMPLE_MAX_TEMPS];
        for (size_t i = 0; i < m->ntemps; i++) {
            uint16_t u = (uint16_t)(int16_t)m->temp_dc[i];
            t[2 * i] = (uint8_t)(u >> 8);
            t[2 * i + 1] = (uint8_t)(u & 0xff);
        }
        assert_int_equal(sqlite3_column_type(st, 21), SQLITE_BLOB);
        assert_int_equal(sqlite3_column_bytes(st, 21), 2 * m->ntemps);
        assert_memory_equal(sqlite3_column_blob(st, 21), t, 2 * m->ntemps);
    } else {
        assert_int_equal(sqlite3_column_type(st, 21), SQLITE_NULL);
    }
    expect_done(st);
}

static void check_v_samples(sqlite3 *db, const struct reading *r, const char *bank)
{
    const struct sample *m = &r->s;
    sqlite3_stmt *st =
        prep(db,
             "SELECT pack, bank, ts, time, voltage_v, current_a, power_w, soc_pct, soh_pct,"
             " remaining_ah, full_ah, design_ah, cycles, cell_min_v, cell_min_idx, cell_max_v,"
             " cell_max_idx, cell_diff_mv, temp_min_c, temp_max_c, alarms, protection, state,"
             " balancing FROM v_samples WHERE pack = '%s' AND ts = %lld",
             r->pack_id, (long long)r->ts_ms);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    char when[32];
    utc_text(r->ts_ms / 1000, when, sizeof when);
    int32_t tlo, thi;
    temp_minmax(m, &tlo, &thi);
    col_text(st, 0, r->pack_id);
    col_text(st, 1, bank);
    col_int(st, 2, r->ts_ms);
    col_text(st, 3, when);
    col_num(st, 4, m->voltage_mv, 1000, 3);
    col_num(st, 5, m->current_ma, 1000, 3);
    /* power in W = mV × mA / 1e6, to 0.1 W */
    double w = (double)m->voltage_mv * m->current_ma / 1e6;
    assert_near(sqlite3_column_double(st, 6), w, 0.05 + 1e-9);
    col_num(st, 7, m->soc_cpct, 100, 2);
    col_num(st, 8, m->soh_cpct, 100, 2);
    col_num(st, 9, m->remaining_mah, 1000, 3);
    col_num(st, 10, m->full_mah, 1000, 3);
    col_num(st, 11, m->design_mah, 1000, 3);
    col_int(st, 12, m->cycles);
    col_num(st, 13, m->cell_min_mv, 1000, 3);
    col_int(st, 14, m->ncells ? m->cell_min_idx : ABSENT);
    col_num(st, 15, m->cell_max_mv, 1000, 3);
    col_int(st, 16, m->ncells ? m->cell_max_idx : ABSENT);
    col_int(st, 17, m->ncells ? m->cell_max_mv - m->cell_min_mv : ABSENT);
    col_num(st, 18, tlo, 10, 1);
    col_num(st, 19, thi, 10, 1);
    col_int(st, 20, m->alarms);
    col_int(st, 21, m->protection);
    col_int(st, 22, m->state);
    col_int(st, 23, m->balancing);
    expect_done(st);
}

/* Row i of a view with a row per cell or sensor: its first column is i + 1. */
static void next_item(sqlite3_stmt *st, size_t i)
{
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), i + 1);
}

static void check_v_cells(sqlite3 *db, const struct reading *r)
{
    const struct sample *m = &r->s;
    sqlite3_stmt *st = prep(db,
                            "SELECT cell, voltage_v, balancing, time FROM v_cells WHERE pack = '%s'"
                            " AND ts = %lld ORDER BY cell",
                            r->pack_id, (long long)r->ts_ms);
    char when[32];
    utc_text(r->ts_ms / 1000, when, sizeof when);
    for (size_t i = 0; i < m->ncells; i++) {
        next_item(st, i);
        /* exact to the mV */
        assert_int_equal(llround(sqlite3_column_double(st, 1) * 1000), m->cell_mv[i]);
        assert_int_equal(sqlite3_column_int(st, 2), (m->balancing >> i) & 1);
        col_text(st, 3, when);
    }
    expect_done(st);
}

static void check_v_temps(sqlite3 *db, const struct reading *r)
{
    const struct sample *m = &r->s;
    sqlite3_stmt *st = prep(db,
                            "SELECT sensor, role, temp_c FROM v_temps WHERE pack = '%s'"
                            " AND ts = %lld ORDER BY sensor",
                            r->pack_id, (long long)r->ts_ms);
    for (size_t i = 0; i < m->ntemps; i++) {
        next_item(st, i);
        col_text(st, 1, sample_temp_role_name((enum sample_temp_role)m->temp_role[i]));
        assert_int_equal(llround(sqlite3_column_double(st, 2) * 10), m->temp_dc[i]);
    }
    expect_done(st);
}

static void test_sample_columns(void **state)
{
    struct fx *f = *state;
    f->st = open_store(f->cfg);
    sqlite3 *db = store_db(f->st);
    struct reading r[3];
    three_samples(r);
    write_ok(f->st, r, 3);
    assert_int_equal(q_int(db, "SELECT count(*) FROM samples"), 3);
    for (size_t i = 0; i < 3; i++)
        check_sample_row(db, &r[i]);
    /* the blob formats chosen by the spread */
    assert_int_equal(q_int(db, "SELECT hex(substr(cells, 1, 1)) = '01' FROM samples s JOIN"
                               " packs p ON p.id = s.pack WHERE p.pack_id = 'p1'"),
                     1);
    assert_int_equal(q_int(db, "SELECT hex(substr(cells, 1, 1)) = '02' FROM samples s JOIN"
                               " packs p ON p.id = s.pack WHERE p.pack_id = 'p2'"),
                     1);
    check_v_samples(db, &r[0], "house");
    check_v_samples(db, &r[1], "house");
    check_v_samples(db, &r[2], "shed");
    /* the bare sample: absent values are NULL in the view too, a current of 0 is 0 */
    assert_int_equal(q_int(db, "SELECT soc_pct IS NULL AND full_ah IS NULL AND cycles IS NULL"
                               " AND current_a = 0 AND power_w = 0 FROM v_samples"
                               " WHERE pack = 'p3'"),
                     1);
    for (size_t i = 0; i < 3; i++) {
        check_v_cells(db, &r[i]);
        check_v_temps(db, &r[i]);
    }
    assert_int_equal(q_int(db, "SELECT count(*) FROM v_cells"), 32);
    assert_int_equal(q_int(db, "SELECT count(*) FROM v_temps"), 10);
    assert_int_equal(q_int(db, "SELECT count(*) FROM v_temps WHERE temp_c < 0"), 2);
    /* roles kept per pack, one letter per sensor; first and last seen */
    char roles[32];
    q_text(db, roles, sizeof roles, "SELECT temp_roles FROM packs WHERE pack_id = 'p1'");
    assert_string_equal(roles, "ccccma");
    q_text(db, roles, sizeof roles, "SELECT temp_roles FROM packs WHERE pack_id = 'p2'");
    assert_string_equal(roles, "ccmv");
    char api[32];
    store_temp_roles(&r[1].s, api, sizeof api);
    assert_string_equal(api, "ccmv");
    assert_int_equal(q_int(db, "SELECT temp_roles IS NULL FROM packs WHERE pack_id = 'p3'"), 1);
    assert_int_equal(q_int(db, "SELECT first_seen FROM packs WHERE pack_id = 'p2'"), T0 + 31000);
    assert_int_equal(q_int(db, "SELECT last_seen FROM packs WHERE pack_id = 'p2'"), T0 + 31000);
    /* the active alarm names of a sample */
    char names[128];
    q_text(db, names, sizeof names,
           "SELECT group_concat(kind || ':' || name, ',') FROM (SELECT kind, name FROM v_alarms"
           " ORDER BY pack, kind, name)");
    char want[160];
    snprintf(want, sizeof want, "alarm:%s,alarm:%s,protection:%s", sample_alarm_name(0),
             sample_alarm_name(13), sample_prot_name(14));
    assert_string_equal(names, want);
}

/* Format 1 at its limit (spread exactly 255 mV) and format 2 just past it. */
static void test_cells_blob_limits(void **state)
{
    struct fx *f = *state;
    f->st = open_store(f->cfg);
    sqlite3 *db = store_db(f->st);
    struct reading r[2];
    for (int k = 0; k < 2; k++) {
        reading_sample(&r[k], 0, T0 + k * 30000LL);
        struct sample *s = &r[k].s;
        s->voltage_mv = 52000;
        s->current_ma = 100;
        s->ncells = 16;
        for (int i = 0; i < 16; i++)
            s->cell_mv[i] = 3100 + i * 5;
        s->cell_mv[0] = 3000 + 255 + k; /* cell 1 is the maximum */
        s->cell_mv[1] = 3000;           /* cell 2 the minimum: spread 255, then 256 */
        sample_finish(s);
    }
    write_ok(f->st, r, 2);
    assert_int_equal(q_int(db,
                           "SELECT hex(substr(cells, 1, 1)) = '01' AND length(cells) = 17"
                           " FROM samples WHERE ts = %lld",
                           T0),
                     1);
    assert_int_equal(q_int(db,
                           "SELECT hex(substr(cells, 1, 1)) = '02' AND length(cells) = 33"
                           " FROM samples WHERE ts = %lld",
                           T0 + 30000),
                     1);
    check_v_cells(db, &r[0]);
    check_v_cells(db, &r[1]);
}

/* ======================= 2. the newest sample of each pack and bank ======================= */

/* v_latest: one row per pack, its newest; v_bank_latest: capacity-weighted SOC and sums. */
static void test_latest_and_bank(void **state)
{
    struct fx *f = *state;
    f->st = open_store(f->cfg);
    sqlite3 *db = store_db(f->st);
    struct reading r[9];
    /* round 2 (the newest) values; rounds 0 and 1 differ so a wrong row shows */
    const int32_t soc[3] = {8000, 5000, 2000}, full[3] = {100000, 50000, 200000};
    const int32_t ma[3] = {10000, -4000, 1500}, mv[3] = {53000, 52000, 26500};
    const int32_t base[3] = {3300, 3250, 3280};
    for (int k = 0; k < 3; k++) {
        for (uint16_t p = 0; p < 3; p++) {
            struct reading *x = &r[k * 3 + p];
            reading_sample(x, p, T0 + k * 30000LL + p * 100);
            if (k == 2)
                fill_full(&x->s, mv[p], ma[p], soc[p], full[p], base[p]);
            else
                fill_full(&x->s, 50000 + k, -20000 - k, 100 + k, 300000, 3000 + k);
        }
    }
    write_ok(f->st, r, 9);
    assert_int_equal(q_int(db, "SELECT count(*) FROM v_latest"), 3);
    assert_int_equal(q_int(db, "SELECT count(DISTINCT pack) FROM v_latest"), 3);
    for (uint16_t p = 0; p < 3; p++) {
        char pid[8];
        snprintf(pid, sizeof pid, "p%u", p + 1u);
        assert_int_equal(q_int(db, "SELECT ts FROM v_latest WHERE pack = '%s'", pid),
                         T0 + 60000 + p * 100);
        assert_near(q_dbl(db, "SELECT soc_pct FROM v_latest WHERE pack = '%s'", pid),
                    soc[p] / 100.0, 1e-9);
        assert_near(q_dbl(db, "SELECT current_a FROM v_latest WHERE pack = '%s'", pid),
                    ma[p] / 1000.0, 1e-9);
    }
    assert_int_equal(q_int(db, "SELECT count(*) FROM v_bank_latest"), 2);

    /* house = p1 + p2, by hand */
    double soc_w = (80.0 * 100 + 50.0 * 50) / (100 + 50); /* 70.00, the plain mean is 65 */
    sqlite3_stmt *st = prep(db, "SELECT packs, soc_pct, current_a, power_w, remaining_ah,"
                                " full_ah, cell_min_v, cell_max_v, cell_spread_mv, temp_max_c"
                                " FROM v_bank_latest WHERE bank = 'house'");
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 2);
    assert_near(sqlite3_column_double(st, 1), soc_w, 1e-9);
    assert_near(sqlite3_column_double(st, 2), (10000 - 4000) / 1000.0, 1e-9);
    assert_near(sqlite3_column_double(st, 3), 53.0 * 10 + 52.0 * -4, 0.05 + 1e-9);
    assert_near(sqlite3_column_double(st, 4), 80.0 + 25.0, 1e-9);
    assert_near(sqlite3_column_double(st, 5), 150.0, 1e-9);
    assert_near(sqlite3_column_double(st, 6), 3.250, 1e-9); /* p2's lowest cell */
    assert_near(sqlite3_column_double(st, 7), 3.322, 1e-9); /* p1's highest cell */
    assert_near(sqlite3_column_double(st, 8), 72, 1e-9);
    assert_near(sqlite3_column_double(st, 9), 30.1, 1e-9);
    expect_done(st);
    assert_near(q_dbl(db, "SELECT soc_pct FROM v_bank_latest WHERE bank = 'shed'"), 20.0, 1e-9);
    assert_int_equal(q_int(db, "SELECT packs FROM v_bank_latest WHERE bank = 'shed'"), 1);
    char t[32];
    q_text(db, t, sizeof t, "SELECT time FROM v_bank_latest WHERE bank = 'house'");
    assert_string_equal(t, "2026-01-01 00:01:00");
}

/* Health by the age of the newest sample: an hour-old sample is offline although its last
 * event says online (a stopped daemon writes no offline event); a sample 500 ms in the future
 * of the whole-second clock has age 0, never negative; an offline event stays offline on fresh
 * data; a stale event on fresh data stays stale; the bank counts only the fresh online pack. */
static void test_latest_health_by_age(void **state)
{
    struct fx *f = *state;
    f->st = open_store(f->cfg);
    const int64_t now = wall_ms();
    struct reading r[6];
    reading_health(&r[0], 0, now - 3601000, PACK_ONLINE, "");
    reading_sample(&r[1], 0, now - 3600000); /* p1: an hour old */
    fill_full(&r[1].s, 52000, 1000, 5000, 100000, 3300);
    reading_health(&r[2], 1, now - 2000, PACK_ONLINE, "");
    reading_sample(&r[3], 1, now + 500); /* p2: a clock a little ahead, or 'now' in seconds */
    fill_full(&r[3].s, 52000, 1000, 5000, 100000, 3300);
    reading_health(&r[4], 2, now - 1000, PACK_OFFLINE, "no answer");
    reading_sample(&r[5], 2, now - 1000); /* p3: fresh, but its last event is offline */
    fill_full(&r[5].s, 52000, 1000, 5000, 100000, 3300);
    write_ok(f->st, r, 6);
    sqlite3 *db = store_db(f->st);
    /* 3 × interval_s (30, the default) + commit_interval_s (1) */
    expect_rows(db,
                "SELECT pack, event, health, offline_after_s FROM v_latest"
                " ORDER BY pack",
                "p1|online|offline|91\np2|online|online|91\n"
                "p3|offline|offline|91\n");
    assert_near(q_dbl(db, "SELECT age_s FROM v_latest WHERE pack = 'p1'"), 3600.0, 2.0);
    assert_near(q_dbl(db, "SELECT age_s FROM v_latest WHERE pack = 'p2'"), 0.0, 0.0);
    assert_int_equal(q_int(db, "SELECT count(*) FROM v_latest WHERE age_s < 0"), 0);
    assert_near(q_dbl(db, "SELECT age_s FROM v_latest WHERE pack = 'p3'"), 1.0, 1.0);
    expect_rows(db, "SELECT bank, packs, packs_online FROM v_bank_latest ORDER BY bank",
                "house|2|1\nshed|1|0\n");
    assert_near(q_dbl(db, "SELECT age_s FROM v_bank_latest WHERE bank = 'house'"), 0.0, 0.0);

    /* a stale event on fresh data stays stale; the bank then has no pack online */
    reading_health(&r[0], 1, now, PACK_STALE, "timeout");
    write_ok(f->st, r, 1);
    assert_int_equal(q_int(db, "SELECT count(*) FROM v_latest WHERE pack = 'p2'"
                               " AND health = 'stale'"),
                     1);
    assert_int_equal(q_int(db, "SELECT packs_online FROM v_bank_latest WHERE bank = 'house'"), 0);

    /* the pack's interval, as the daemon registers it, moves the threshold: 2 h × 3 + 1 s */
    assert_int_equal(q_int(db, "SELECT count(*) FROM packs WHERE interval_s = 30"), 3);
    assert_int_equal(sqlite3_exec(db, "UPDATE packs SET interval_s = 7200 WHERE pack_id = 'p1'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    expect_rows(db, "SELECT health, offline_after_s FROM v_latest WHERE pack = 'p1'",
                "online|21601\n");
}

/* ======================= 3. the sqlite3 shell, as a person uses it ======================= */

static void test_sqlite3_shell(void **state)
{
    struct fx *f = *state;
    f->st = open_store(f->cfg);
    struct reading r[3];
    three_samples(r);
    write_ok(f->st, r, 3);
    /* the daemon still has the database open (WAL) while the shell reads it */
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "sqlite3 -batch -separator '|' '%s' \"SELECT pack, time, voltage_v, current_a,"
             " soc_pct, design_ah FROM v_latest ORDER BY pack;"
             " SELECT cell, voltage_v FROM v_cells WHERE pack = 'p2' AND cell IN (3, 16);"
             " PRAGMA journal_mode;\" 2>&1",
             f->path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[1024];
    size_t len = fread(out, 1, sizeof out - 1, p);
    out[len] = '\0';
    int status = pclose(p);
    if (status != 0)
        fail_msg("sqlite3 exited with %d: %s", status, out);
    assert_string_equal(out, "p1|2026-01-01 00:00:30|53.12|-12.34|87.65|105.0\n"
                             "p2|2026-01-01 00:00:31|52.8|5.0|50.0|\n"
                             "p3|2026-01-01 00:00:32|26.0|0.0||\n"
                             "3|2.95\n"
                             "16|3.4\n"
                             "wal\n");
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_columns),
        cmocka_unit_test(test_cells_blob_limits),
        cmocka_unit_test(test_latest_and_bank),
        cmocka_unit_test(test_latest_health_by_age),
        cmocka_unit_test(test_sqlite3_shell),
    };
    /* clang-format on */
    return store_tests_run("test_store_views", tests, sizeof tests / sizeof tests[0]);
}
