/* store_helpers: see store_helpers.h. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "energy.h"
#include "proc.h"
#include "store_helpers.h"
#include "store_schema.h"

/* ---- fixture ---- */

struct config *load_config(const char *dbpath)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "ports:\n"
             "  - name: rack\n"
             "    device: /dev/ttyBMSFLEETTEST0\n"
             "    packs:\n"
             "      - { address: 1, id: p1, bank: house }\n"
             "      - { address: 2, id: p2, bank: house }\n"
             "      - { address: 3, id: p3, bank: shed }\n"
             "banks:\n"
             "  - { id: house }\n"
             "  - { id: shed }\n"
             "storage: {path: %s, commit_interval_s: 1,"
             " retention: {raw_days: 30, minute_days: 365}, energy_max_gap_s: 300}\n",
             dbpath);
    return config_from_yaml("test.yaml", yaml);
}

struct config *second_config(const struct fx *f)
{
    char path[PROC_PATH_MAX];
    snprintf(path, sizeof path, "%s/b.db", f->dir);
    return load_config(path);
}

struct config *config_from_yaml(const char *name, const char *yaml)
{
    struct config_errors *e = calloc(1, sizeof *e);
    assert_non_null(e);
    struct config *c = NULL;
    int rc = config_load_string(name, yaml, &c, e);
    for (size_t i = 0; i < e->n; i++)
        print_error("config: %s\n", e->msg[i]);
    free(e);
    assert_int_equal(rc, 0);
    assert_non_null(c);
    return c;
}

void store_open_yaml(const char *name, const char *body, const char *path, struct config **cfg,
                     struct store **st)
{
    char yaml[4096];
    snprintf(yaml, sizeof yaml, "%sstorage: {path: %s, commit_interval_s: 1}\n", body, path);
    *cfg = config_from_yaml(name, yaml);
    *st = open_store(*cfg);
}

void store_create(const char *name, const char *body, const char *path)
{
    struct config *cfg;
    struct store *st;
    store_open_yaml(name, body, path, &cfg, &st);
    store_close(st);
    config_free(cfg);
}

int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    if (proc_test_dir(f->dir, sizeof f->dir, "store",
                      (const struct proc_file[]){{f->path, "h.db"}, {NULL, NULL}})) {
        free(f);
        return -1;
    }
    f->cfg = load_config(f->path);
    *state = f;
    return 0;
}

int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->st);
    config_free(f->cfg);
    proc_clear_dir(f->dir, 0);
    free(f);
    return 0;
}

struct store *open_store(const struct config *c)
{
    struct store *s = NULL;
    char err[512] = "";
    int rc = store_open(c, &s, err, sizeof err);
    if (rc != 0)
        fail_msg("store_open: %d: %s", rc, err);
    assert_non_null(s);
    return s;
}

void reopen(struct fx *f)
{
    store_close(f->st);
    f->st = open_store(f->cfg);
}

int store_tests_run(const char *group, const struct CMUnitTest *tests, size_t n)
{
    setenv("TZ", "UTC", 1);
    tzset();
    struct CMUnitTest *each = calloc(n, sizeof *each);
    assert_non_null(each);
    for (size_t i = 0; i < n; i++) {
        each[i] = tests[i];
        each[i].setup_func = setup;
        each[i].teardown_func = teardown;
    }
    int failed = _cmocka_run_group_tests(group, each, n, NULL, NULL);
    free(each);
    return failed;
}

sqlite3 *old_database(const char *path, int version, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    for (int v = 0; v < version; v++)
        assert_int_equal(sqlite3_exec(db, store_migrations[v].sql, NULL, NULL, NULL), SQLITE_OK);
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", version);
    assert_int_equal(sqlite3_exec(db, pragma, NULL, NULL, NULL), SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err ? err : sqlite3_errmsg(db));
    return db;
}

/* ---- queries ---- */

__attribute__((format(printf, 2, 0))) static sqlite3_stmt *prep_v(sqlite3 *db, const char *fmt,
                                                                  va_list ap)
{
    char sql[4096];
    vsnprintf(sql, sizeof sql, fmt, ap);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    return st;
}

__attribute__((format(printf, 2, 3))) sqlite3_stmt *prep(sqlite3 *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sqlite3_stmt *st = prep_v(db, fmt, ap);
    va_end(ap);
    return st;
}

/* q_int, q_dbl: the first column of the only row, which is not NULL. */
#define Q_SCALAR(name, type, column)                                                               \
    type name(sqlite3 *db, const char *fmt, ...)                                                   \
    {                                                                                              \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        sqlite3_stmt *st = prep_v(db, fmt, ap);                                                    \
        va_end(ap);                                                                                \
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);                                            \
        assert_int_not_equal(sqlite3_column_type(st, 0), SQLITE_NULL);                             \
        type v = column(st, 0);                                                                    \
        sqlite3_finalize(st);                                                                      \
        return v;                                                                                  \
    }

Q_SCALAR(q_int, int64_t, sqlite3_column_int64)
Q_SCALAR(q_dbl, double, sqlite3_column_double)

__attribute__((format(printf, 4, 5))) void q_text(sqlite3 *db, char *out, size_t cap,
                                                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sqlite3_stmt *st = prep_v(db, fmt, ap);
    va_end(ap);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const unsigned char *t = sqlite3_column_text(st, 0);
    snprintf(out, cap, "%s", t ? (const char *)t : "(null)");
    sqlite3_finalize(st);
}

static int text_row(void *arg, int ncols, char **vals, char **names)
{
    (void)names;
    char **buf = arg;
    for (int i = 0; i < ncols; i++) {
        const char *v = vals[i] ? vals[i] : "NULL";
        size_t have = *buf ? strlen(*buf) : 0;
        char *n = realloc(*buf, have + strlen(v) + 2);
        assert_non_null(n);
        snprintf(n + have, strlen(v) + 2, "%s%c", v, i + 1 < ncols ? '|' : '\n');
        *buf = n;
    }
    return 0;
}

char *rows_text(sqlite3 *db, const char *sql)
{
    char *buf = NULL;
    assert_int_equal(sqlite3_exec(db, sql, text_row, &buf, NULL), SQLITE_OK);
    return buf ? buf : calloc(1, 1);
}

void expect_rows(sqlite3 *db, const char *sql, const char *want)
{
    char *rows = rows_text(db, sql);
    if (strcmp(rows, want) != 0)
        fail_msg("%s:\n%s\nexpected:\n%s", sql, rows, want);
    free(rows);
}

void expect_done(sqlite3_stmt *st)
{
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
}

void col_int(sqlite3_stmt *st, int i, int64_t want)
{
    if (want == ABSENT) {
        if (sqlite3_column_type(st, i) != SQLITE_NULL)
            fail_msg("column %s = %lld, expected NULL", sqlite3_column_name(st, i),
                     (long long)sqlite3_column_int64(st, i));
        return;
    }
    if (sqlite3_column_type(st, i) != SQLITE_INTEGER)
        fail_msg("column %s: type %d, expected %lld", sqlite3_column_name(st, i),
                 sqlite3_column_type(st, i), (long long)want);
    if (sqlite3_column_int64(st, i) != want)
        fail_msg("column %s = %lld, expected %lld", sqlite3_column_name(st, i),
                 (long long)sqlite3_column_int64(st, i), (long long)want);
}

void col_num(sqlite3_stmt *st, int i, int64_t want, double scale, int digits)
{
    if (want == ABSENT) {
        if (sqlite3_column_type(st, i) != SQLITE_NULL)
            fail_msg("column %s = %f, expected NULL", sqlite3_column_name(st, i),
                     sqlite3_column_double(st, i));
        return;
    }
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        fail_msg("column %s is NULL, expected %f", sqlite3_column_name(st, i),
                 (double)want / scale);
    double got = sqlite3_column_double(st, i), exp = (double)want / scale;
    double tol = 0.5 * pow(10, -digits) + 1e-9;
    if (!(fabs(got - exp) <= tol))
        fail_msg("column %s = %.6f, expected %.6f", sqlite3_column_name(st, i), got, exp);
}

void col_text(sqlite3_stmt *st, int i, const char *want)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    if (want == NULL) {
        if (t != NULL)
            fail_msg("column %s = '%s', expected NULL", sqlite3_column_name(st, i), t);
        return;
    }
    if (t == NULL)
        fail_msg("column %s is NULL, expected '%s'", sqlite3_column_name(st, i), want);
    if (strcmp((const char *)t, want) != 0)
        fail_msg("column %s = '%s', expected '%s'", sqlite3_column_name(st, i), t, want);
}

int64_t pack_db_id(sqlite3 *db, const char *pack_id)
{
    return q_int(db, "SELECT id FROM packs WHERE pack_id = '%s'", pack_id);
}

void utc_text(int64_t sec, char *out, size_t cap)
{
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm);
}

int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* ---- readings ---- */

void reading_sample(struct reading *r, uint16_t pack, int64_t ts)
{
    memset(r, 0, sizeof *r);
    r->kind = READING_SAMPLE;
    r->ts_ms = ts;
    r->port_idx = 0;
    r->pack_idx = pack;
    snprintf(r->pack_id, sizeof r->pack_id, "p%u", pack + 1u);
    sample_init(&r->s);
    r->s.address = (uint8_t)(pack + 1);
    r->s.has = SAMPLE_HAS_ANALOG | SAMPLE_HAS_ALARMS;
}

void reading_health(struct reading *r, uint16_t pack, int64_t ts, enum pack_health h,
                    const char *detail)
{
    memset(r, 0, sizeof *r);
    r->kind = READING_HEALTH;
    r->ts_ms = ts;
    r->pack_idx = pack;
    snprintf(r->pack_id, sizeof r->pack_id, "p%u", pack + 1u);
    r->health = h;
    snprintf(r->detail, sizeof r->detail, "%s", detail);
}

void add_temp(struct sample *s, int32_t dc, enum sample_temp_role role)
{
    s->temp_dc[s->ntemps] = dc;
    s->temp_role[s->ntemps] = (uint8_t)role;
    s->ntemps++;
}

void add_pack_temps(struct sample *s)
{
    static const int32_t dc[] = {215, 220, 218, 219, 301, -125};
    for (size_t i = 0; i < sizeof dc / sizeof dc[0]; i++)
        add_temp(s, dc[i],
                 i < 4    ? SAMPLE_TEMP_CELL
                 : i == 4 ? SAMPLE_TEMP_MOS
                          : SAMPLE_TEMP_AMBIENT);
}

void fill_full(struct sample *s, int32_t mv, int32_t ma, int32_t soc, int32_t full_mah,
               int32_t base_cell)
{
    s->voltage_mv = mv;
    s->current_ma = ma;
    s->soc_cpct = soc;
    s->soh_cpct = 9850;
    s->full_mah = full_mah;
    s->remaining_mah = (int32_t)((int64_t)full_mah * soc / 10000);
    s->design_mah = 100000;
    s->cycles = 42;
    s->ncells = 16;
    for (int i = 0; i < 16; i++)
        s->cell_mv[i] = base_cell + (i * 7) % 23;
    add_pack_temps(s);
    sample_finish(s);
}

void write_ok(struct store *s, const struct reading *r, size_t n)
{
    assert_int_equal(store_write_now(s, r, n), 0);
}

void write_chunks(struct store *s, const struct reading *r, size_t n)
{
    int64_t seen[60];
    size_t start = 0, nseen = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t sec = r[i].ts_ms / 1000;
        const int64_t keys[2] = {(sec / 60) * 64 + r[i].pack_idx,
                                 -((sec / 3600) * 64 + r[i].pack_idx) - 1};
        size_t fresh = 0;
        for (size_t k = 0; k < 2 && r[i].kind == READING_SAMPLE; k++) {
            size_t j = 0;
            while (j < nseen && seen[j] != keys[k])
                j++;
            fresh += j == nseen;
        }
        if (nseen + fresh > 60) {
            write_ok(s, r + start, i - start);
            start = i;
            nseen = 0;
        }
        for (size_t k = 0; k < 2 && r[i].kind == READING_SAMPLE; k++) {
            size_t j = 0;
            while (j < nseen && seen[j] != keys[k])
                j++;
            if (j == nseen)
                seen[nseen++] = keys[k];
        }
    }
    if (n > start)
        write_ok(s, r + start, n - start);
}

/* ---- rollups computed here ---- */

void rollup_reading(struct reading *r, uint16_t pack, int i)
{
    reading_sample(r, pack, T0 + i * 30000LL);
    struct sample *s = &r->s;
    s->voltage_mv = i % 53 == 20 ? ABSENT : 52000 + (i * 37 + pack * 11) % 400 - 200;
    s->current_ma = (i * 7919 + pack * 13) % 20001 - 10000;
    s->soc_cpct = i % 17 == 5 ? ABSENT : 5000 + i * 10 + pack;
    s->full_mah = 100000;
    s->ncells = 16;
    for (int c = 0; c < 16; c++)
        s->cell_mv[c] = 3300 + (i * 3 + c * 5 + pack) % 50;
    add_temp(s, 200 + i % 30 - 10 * pack, SAMPLE_TEMP_CELL);
    add_temp(s, -50 + i % 7, SAMPLE_TEMP_CELL);
    add_temp(s, 300 + i % 11, SAMPLE_TEMP_MOS);
    sample_finish(s);
}

#define MINV(a, b) ((a) == ABSENT || (b) < (a) ? (b) : (a))
#define MAXV(a, b) ((a) == ABSENT || (b) > (a) ? (b) : (a))

size_t expect_buckets(const struct reading *r, size_t n, uint16_t pack, int64_t width,
                      struct bucket *out, size_t cap)
{
    size_t nb = 0;
    struct energy_state e;
    memset(&e, 0, sizeof e);
    for (size_t k = 0; k < n; k++) {
        if (r[k].pack_idx != pack || r[k].kind != READING_SAMPLE)
            continue;
        const struct sample *s = &r[k].s;
        int64_t b = r[k].ts_ms / 1000 / width * width;
        if (nb == 0 || out[nb - 1].bucket != b) {
            assert_true(nb < cap);
            struct bucket *x = &out[nb++];
            memset(x, 0, sizeof *x);
            x->bucket = b;
            x->v_min = x->v_max = x->i_min = x->i_max = ABSENT;
            x->soc_min = x->soc_max = x->cell_min = x->cell_max = ABSENT;
            x->temp_min = x->temp_max = ABSENT;
        }
        struct bucket *x = &out[nb - 1];
        if (s->voltage_mv != ABSENT && s->current_ma != ABSENT) {
            x->n++;
            x->v_sum += s->voltage_mv;
            x->i_sum += s->current_ma;
            x->v_min = MINV(x->v_min, s->voltage_mv);
            x->v_max = MAXV(x->v_max, s->voltage_mv);
            x->i_min = MINV(x->i_min, s->current_ma);
            x->i_max = MAXV(x->i_max, s->current_ma);
            double c, d;
            energy_step(&e, r[k].ts_ms, (double)s->voltage_mv * s->current_ma / 1000.0, 300000, &c,
                        &d);
            x->charge += c;
            x->discharge += d;
        }
        if (s->soc_cpct != ABSENT) {
            x->soc_n++;
            x->soc_sum += s->soc_cpct;
            x->soc_min = MINV(x->soc_min, s->soc_cpct);
            x->soc_max = MAXV(x->soc_max, s->soc_cpct);
        }
        for (size_t c = 0; c < s->ncells; c++) {
            x->cell_min = MINV(x->cell_min, s->cell_mv[c]);
            x->cell_max = MAXV(x->cell_max, s->cell_mv[c]);
        }
        for (size_t t = 0; t < s->ntemps; t++) {
            x->temp_min = MINV(x->temp_min, s->temp_dc[t]);
            x->temp_max = MAXV(x->temp_max, s->temp_dc[t]);
        }
    }
    return nb;
}

static const size_t bucket_cols[16] = {
    offsetof(struct bucket, bucket),   offsetof(struct bucket, n),
    offsetof(struct bucket, v_sum),    offsetof(struct bucket, v_min),
    offsetof(struct bucket, v_max),    offsetof(struct bucket, i_sum),
    offsetof(struct bucket, i_min),    offsetof(struct bucket, i_max),
    offsetof(struct bucket, soc_n),    offsetof(struct bucket, soc_sum),
    offsetof(struct bucket, soc_min),  offsetof(struct bucket, soc_max),
    offsetof(struct bucket, cell_min), offsetof(struct bucket, cell_max),
    offsetof(struct bucket, temp_min), offsetof(struct bucket, temp_max),
};

void check_rollup_table(sqlite3 *db, const char *table, const char *pack, const struct bucket *b,
                        size_t nb)
{
    sqlite3_stmt *st = prep(db,
                            "SELECT bucket, n, v_sum, v_min, v_max, i_sum, i_min, i_max, soc_n,"
                            " soc_sum, soc_min, soc_max, cell_min, cell_max, temp_min, temp_max,"
                            " charge_mwh, discharge_mwh FROM %s"
                            " WHERE pack = (SELECT id FROM packs WHERE pack_id = '%s')"
                            " ORDER BY bucket",
                            table, pack);
    for (size_t k = 0; k < nb; k++) {
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        const struct bucket *x = &b[k];
        /* the columns in the order of struct bucket; no SOC sum without a SOC */
        for (int c = 0; c < 16; c++) {
            int64_t want;
            memcpy(&want, (const char *)x + bucket_cols[c], sizeof want);
            col_int(st, c, c == 9 && x->soc_n == 0 ? ABSENT : want);
        }
        /* rollup_1m sums the samples' increments, each rounded to 1 µWh (0.001 mWh) */
        double tol = 1e-6 + (strcmp(table, "rollup_1m") == 0 ? 1e-3 * (double)x->n : 0);
        assert_near(sqlite3_column_double(st, 16), x->charge, tol);
        assert_near(sqlite3_column_double(st, 17), x->discharge, tol);
    }
    if (sqlite3_step(st) != SQLITE_DONE)
        fail_msg("%s of %s: more rows than the %zu expected", table, pack, nb);
    sqlite3_finalize(st);
}

void check_rollup_view(sqlite3 *db, int hourly, const char *pack, const struct bucket *b, size_t nb)
{
    sqlite3_stmt *st =
        prep(db,
             "SELECT bucket, time, samples, voltage_avg_v, voltage_min_v, voltage_max_v,"
             " current_avg_a, current_min_a, current_max_a, soc_avg_pct, cell_min_v, cell_max_v,"
             " temp_max_c, charged_wh, discharged_wh, soc_min_pct, soc_max_pct, temp_min_c"
             " FROM %s WHERE pack = '%s' ORDER BY bucket",
             hourly ? "v_hourly" : "v_minutely", pack);
    for (size_t k = 0; k < nb; k++) {
        const struct bucket *x = &b[k];
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        char when[32];
        utc_text(x->bucket, when, sizeof when);
        col_int(st, 0, x->bucket);
        col_text(st, 1, when);
        col_int(st, 2, x->n);
        if (x->n) {
            assert_near(sqlite3_column_double(st, 3), (double)x->v_sum / 1000.0 / (double)x->n,
                        0.0005 + 1e-9);
            assert_near(sqlite3_column_double(st, 6), (double)x->i_sum / 1000.0 / (double)x->n,
                        0.0005 + 1e-9);
        }
        col_num(st, 4, x->v_min, 1000, 3);
        col_num(st, 5, x->v_max, 1000, 3);
        col_num(st, 7, x->i_min, 1000, 3);
        col_num(st, 8, x->i_max, 1000, 3);
        if (x->soc_n)
            assert_near(sqlite3_column_double(st, 9), (double)x->soc_sum / 100.0 / (double)x->soc_n,
                        0.005 + 1e-9);
        else
            assert_int_equal(sqlite3_column_type(st, 9), SQLITE_NULL);
        col_num(st, 10, x->cell_min, 1000, 3);
        col_num(st, 11, x->cell_max, 1000, 3);
        col_num(st, 12, x->temp_max, 10, 1);
        /* v_minutely: 0.001 Wh, from increments rounded to 1 µWh (1e-6 Wh) per sample */
        double tol = 0.0005 + 1e-9 + (hourly ? 0 : 1e-6 * (double)x->n);
        assert_near(sqlite3_column_double(st, 13), x->charge / 1000.0, tol);
        assert_near(sqlite3_column_double(st, 14), x->discharge / 1000.0, tol);
        col_num(st, 15, x->soc_min, 100, 2);
        col_num(st, 16, x->soc_max, 100, 2);
        col_num(st, 17, x->temp_min, 10, 1);
    }
    expect_done(st);
}

void check_sample_energy(sqlite3 *db, const char *pid)
{
    long long pack = (long long)pack_db_id(db, pid);
    long long rows = q_int(db, "SELECT count(*) FROM samples WHERE pack = %lld", pack);
    assert_true(rows > 0);
    assert_near(q_dbl(db, "SELECT total(charge_uwh) FROM samples WHERE pack = %lld", pack),
                q_dbl(db, "SELECT charged_mwh * 1000 FROM energy WHERE pack = %lld", pack),
                0.5 * (double)rows + 1e-6);
    assert_near(q_dbl(db, "SELECT total(discharge_uwh) FROM samples WHERE pack = %lld", pack),
                q_dbl(db, "SELECT discharged_mwh * 1000 FROM energy WHERE pack = %lld", pack),
                0.5 * (double)rows + 1e-6);
    /* nothing integrated for the pack's first sample */
    assert_int_equal(q_int(db,
                           "SELECT count(*) FROM samples WHERE pack = %lld AND id ="
                           " (SELECT min(id) FROM samples WHERE pack = %lld)"
                           " AND charge_uwh IS NULL AND discharge_uwh IS NULL",
                           pack, pack),
                     1);
}
