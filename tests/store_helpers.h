/* store_helpers: what the store tests (test_store_schema, test_store_writer, test_store_retention,
 * test_store_views) share: the fixture (a temporary directory, a configuration with three packs
 * in two banks), queries that fail the test with the SQL, readings and complete samples, and the
 * rollups of a run of readings computed here, independently of src/store/. Needs cmocka and
 * sqlite3.h included first. TZ must be UTC (store_tests_run sets it) so the views' local times
 * are deterministic. */
#ifndef BMSFLEET_TEST_STORE_HELPERS_H
#define BMSFLEET_TEST_STORE_HELPERS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "asserts.h"
#include "config.h"
#include "queue.h"
#include "sample.h"
#include "store.h"

#define T0     1767225600000LL /* 2026-01-01T00:00:00Z */
#define DAY_MS 86400000LL
#define ABSENT SAMPLE_ABSENT

/* ---- fixture: a temporary directory, a configuration with three packs in two banks ---- */

struct fx {
    char dir[64];
    char path[300]; /* <dir>/h.db (PROC_PATH_MAX) */
    struct config *cfg;
    struct store *st;
};

/* p1, p2 in bank house, p3 in bank shed, all on port rack; the database at dbpath. */
struct config *load_config(const char *dbpath);
/* The configuration of yaml (`name` in its messages); every error printed, and the test failed. */
struct config *config_from_yaml(const char *name, const char *yaml);
/* The configuration body + "storage: {path: <path>, commit_interval_s: 1}" and a store on it. */
void store_open_yaml(const char *name, const char *body, const char *path, struct config **cfg,
                     struct store **st);
void store_create(const char *name, const char *body, const char *path); /* an empty history */
/* The same packs with a second history, <dir>/b.db, for a run to compare with the first. */
struct config *second_config(const struct fx *f);
int setup(void **state);    /* a struct fx, its directory and configuration; no store yet */
int teardown(void **state); /* closes the store, removes the directory */
struct store *open_store(const struct config *c);
void reopen(struct fx *f);
/* Sets TZ=UTC (the views' local times, deterministic; the sqlite3 shell inherits it) and runs
 * the tests, each with setup and teardown. */
int store_tests_run(const char *group, const struct CMUnitTest *tests, size_t n);

/* A database at schema `version`, made with the store's own migrations 001..version (and its
 * user_version), then `sql`, the data. The connection stays open. */
sqlite3 *old_database(const char *path, int version, const char *sql);

/* ---- queries: each fails the test with the SQL and SQLite's message ---- */

__attribute__((format(printf, 2, 3))) sqlite3_stmt *prep(sqlite3 *db, const char *fmt, ...);
/* The first column of the only row (not NULL). */
__attribute__((format(printf, 2, 3))) int64_t q_int(sqlite3 *db, const char *fmt, ...);
__attribute__((format(printf, 2, 3))) double q_dbl(sqlite3 *db, const char *fmt, ...);
__attribute__((format(printf, 4, 5))) void q_text(sqlite3 *db, char *out, size_t cap,
                                                  const char *fmt, ...);
/* A query's rows as text, as the sqlite3 shell prints them ('|' between columns, NULL as
 * "NULL"); the caller frees it. */
char *rows_text(sqlite3 *db, const char *sql);

/* The query's rows_text is want. */
void expect_rows(sqlite3 *db, const char *sql, const char *want);

/* The statement has no more rows; it is finalized. */
void expect_done(sqlite3_stmt *st);
/* Column i is `want` exactly, or NULL when want is SAMPLE_ABSENT. */
void col_int(sqlite3_stmt *st, int i, int64_t want);
/* Column i is want / scale within half a unit of `digits` decimals, or NULL when absent. */
void col_num(sqlite3_stmt *st, int i, int64_t want, double scale, int digits);
void col_text(sqlite3_stmt *st, int i, const char *want); /* want NULL: the column is NULL */

int64_t pack_db_id(sqlite3 *db, const char *pack_id);
/* "YYYY-MM-DD HH:MM:SS" of an epoch in UTC, computed here, not by SQLite. */
void utc_text(int64_t sec, char *out, size_t cap);
int64_t wall_ms(void);
off_t file_size(const char *path);

#define ALL_MINUTES "SELECT * FROM v_minutely ORDER BY pack, bucket"

/* ---- readings ---- */

void reading_sample(struct reading *r, uint16_t pack, int64_t ts); /* pack 0 is p1 */
void reading_health(struct reading *r, uint16_t pack, int64_t ts, enum pack_health h,
                    const char *detail);
void add_temp(struct sample *s, int32_t dc, enum sample_temp_role role);
/* 4 cell temperatures (21.5, 22.0, 21.8, 21.9 °C), MOS 30.1 °C, ambient -12.5 °C. */
void add_pack_temps(struct sample *s);
/* A complete sample: 16 cells from base_cell (spread 22 mV), 4 cell + MOS + ambient temps. */
void fill_full(struct sample *s, int32_t mv, int32_t ma, int32_t soc, int32_t full_mah,
               int32_t base_cell);
void write_ok(struct store *s, const struct reading *r, size_t n);
/* Writes in calls of at most 60 distinct rollup buckets (1 minute and 1 hour, per pack), so
 * the writer's bucket array never grows past its first allocation: see test_bucket_realloc
 * for the bug this steps around. For tests of other things (retention) with many readings. */
void write_chunks(struct store *s, const struct reading *r, size_t n);

/* ---- rollups computed here from the readings ---- */

#define RS_N 240 /* 2 h of 30 s samples */

/* Sample i of a pack, 30 s apart from T0: deterministic, varied values; some samples without
 * SOC, some without voltage. */
void rollup_reading(struct reading *r, uint16_t pack, int i);

struct bucket {
    int64_t bucket, n, v_sum, v_min, v_max, i_sum, i_min, i_max;
    int64_t soc_n, soc_sum, soc_min, soc_max, cell_min, cell_max, temp_min, temp_max;
    double charge, discharge;
};

/* The expected buckets (width in s) of one pack; energy with energy_step (tested in
 * test_energy), each step counted in the bucket of its later sample. */
size_t expect_buckets(const struct reading *r, size_t n, uint16_t pack, int64_t width,
                      struct bucket *out, size_t cap);
/* table: rollup_1m or rollup_1h, row for row. */
void check_rollup_table(sqlite3 *db, const char *table, const char *pack, const struct bucket *b,
                        size_t nb);
/* v_minutely or v_hourly in human units, row for row. */
void check_rollup_view(sqlite3 *db, int hourly, const char *pack, const struct bucket *b,
                       size_t nb);
/* Each sample row keeps the energy step the writer integrated (µWh, rounded): per pack they
 * add up to the energy counter, within 0.5 µWh per row. */
void check_sample_energy(sqlite3 *db, const char *pid);

#endif
