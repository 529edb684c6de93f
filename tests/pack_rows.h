/* pack_rows: what the history a real daemon wrote holds for one pack, read from its database
 * file (the daemon, wiring and listen tests). Include <sqlite3.h> and cmocka before it. */
#ifndef BMSFLEET_TEST_PACK_ROWS_H
#define BMSFLEET_TEST_PACK_ROWS_H

#include <stdint.h>

struct pack_rows {
    int n;              /* samples stored */
    int with_voltage;   /* of them with the voltage asked about */
    int alarms_unknown; /* whose alarm flags are NULL in v_samples */
    int flags_unknown;  /* whose alarm and protection flags are both NULL */
};

static inline struct pack_rows pack_rows(const char *db_path, const char *pack,
                                         int32_t voltage_mv)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*), sum(s.voltage_mv = ?2),"
                                        " sum(v.alarms IS NULL),"
                                        " sum(v.alarms IS NULL AND v.protection IS NULL)"
                                        " FROM samples s JOIN packs p ON p.id = s.pack"
                                        " JOIN v_samples v ON v.id = s.id WHERE p.pack_id = ?1",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_bind_text(st, 1, pack, -1, SQLITE_STATIC), SQLITE_OK);
    assert_int_equal(sqlite3_bind_int(st, 2, voltage_mv), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    struct pack_rows r = {sqlite3_column_int(st, 0), sqlite3_column_int(st, 1),
                          sqlite3_column_int(st, 2), sqlite3_column_int(st, 3)};
    sqlite3_finalize(st);
    sqlite3_close(db);
    return r;
}

#endif
