/* store_backlog: the MQTT side's read API into the history (see store_backlog.h). Its own
 * read-write connection (the cursor is written), small page cache: it reads in id order. */
#include "store_backlog.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

#include "store.h"

struct store_backlog {
    sqlite3 *db;
    sqlite3_stmt *q_backlog, *q_energy, *q_save;
    int64_t cursor;
    int cursor_saved; /* the cursor read at open is in the meta table */
};

static int prepare(struct store_backlog *b, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v2(b->db, sql, -1, st, NULL);
}

/* The first column of sql's first row into *out: SQLITE_ROW, SQLITE_DONE (no row), or the
 * error. */
static int query_int64(struct store_backlog *b, const char *sql, int64_t *out)
{
    sqlite3_stmt *st;
    int rc = prepare(b, sql, &st);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc;
}

/* The saved cursor, or (first run) the newest sample id, saved at once. */
static int read_cursor(struct store_backlog *b)
{
    int rc = query_int64(b, "SELECT value FROM meta WHERE key = '" STORE_MQTT_CURSOR_KEY "'",
                         &b->cursor);
    if (rc == SQLITE_ROW) {
        b->cursor_saved = 1;
        return SQLITE_OK;
    }
    if (rc != SQLITE_DONE)
        return rc;
    rc = query_int64(b, "SELECT coalesce(max(id), 0) FROM samples", &b->cursor);
    if (rc != SQLITE_ROW)
        return rc;
    /* a failed save (disk full) is not fatal: the caller saves it again later */
    b->cursor_saved = store_backlog_save_cursor(b, b->cursor) == SQLITE_OK;
    return SQLITE_OK;
}

int store_backlog_open(const char *path, struct store_backlog **out, char *why, size_t cap)
{
    struct store_backlog *b = calloc(1, sizeof *b);
    if (b == NULL) {
        snprintf(why, cap, "out of memory");
        return -1;
    }
    int rc = sqlite3_open_v2(path, &b->db, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(b->db, 5000);
    if (rc == SQLITE_OK) /* reads in id order: a small cache does */
        rc = sqlite3_exec(b->db, "PRAGMA cache_size = -64", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = prepare(b,
                     "SELECT s.id, p.pack_id, p.protocol, p.temp_roles, s.ts, p.address, "
                     STORE_SAMPLE_COLUMNS " FROM samples s JOIN packs p ON p.id = s.pack"
                     " WHERE s.id > ? ORDER BY s.id LIMIT ?",
                     &b->q_backlog);
    if (rc == SQLITE_OK)
        rc = prepare(b,
                     "SELECT e.charged_mwh, e.discharged_mwh FROM energy e JOIN packs p"
                     " ON p.id = e.pack WHERE p.pack_id = ?",
                     &b->q_energy);
    if (rc == SQLITE_OK)
        rc = prepare(b,
                     "INSERT INTO meta (key, value) VALUES ('" STORE_MQTT_CURSOR_KEY "', ?)"
                     " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                     &b->q_save);
    if (rc == SQLITE_OK)
        rc = read_cursor(b);
    if (rc != SQLITE_OK) {
        snprintf(why, cap, "%s", b->db ? sqlite3_errmsg(b->db) : sqlite3_errstr(rc));
        store_backlog_close(b);
        return -1;
    }
    *out = b;
    return 0;
}

void store_backlog_close(struct store_backlog *b)
{
    if (b == NULL)
        return;
    sqlite3_finalize(b->q_backlog);
    sqlite3_finalize(b->q_energy);
    sqlite3_finalize(b->q_save);
    sqlite3_close(b->db);
    free(b);
}

int64_t store_backlog_cursor(const struct store_backlog *b)
{
    return b->cursor;
}

int store_backlog_cursor_saved(const struct store_backlog *b)
{
    return b->cursor_saved;
}

const char *store_backlog_error(struct store_backlog *b)
{
    return sqlite3_errmsg(b->db);
}

int store_backlog_save_cursor(struct store_backlog *b, int64_t id)
{
    sqlite3_reset(b->q_save);
    int rc = sqlite3_bind_int64(b->q_save, 1, id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(b->q_save);
    sqlite3_reset(b->q_save);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int store_backlog_read(struct store_backlog *b, int64_t after, int max, store_backlog_fn fn,
                       void *u, int *stopped)
{
    sqlite3_stmt *q = b->q_backlog;
    int n = 0, rc;
    *stopped = 0;
    sqlite3_reset(q);
    if (sqlite3_bind_int64(q, 1, after) != SQLITE_OK || sqlite3_bind_int(q, 2, max) != SQLITE_OK)
        return -1;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(q, 0);
        const char *pack = (const char *)sqlite3_column_text(q, 1);
        const char *proto = (const char *)sqlite3_column_text(q, 2);
        const char *roles = (const char *)sqlite3_column_text(q, 3);
        int64_t ts = sqlite3_column_int64(q, 4);
        struct sample s;
        int ok = store_sample_from_row(q, 6, roles, &s) == 0;
        if (ok)
            s.address = (uint8_t)sqlite3_column_int(q, 5);
        if (fn(u, id, pack ? pack : "", proto ? proto : "", ts, ok ? &s : NULL) != 0) {
            *stopped = 1;
            break;
        }
        n++;
    }
    sqlite3_reset(q);
    return *stopped || rc == SQLITE_DONE ? n : -1;
}

void store_backlog_energy(struct store_backlog *b, const char *pack_id, double *charged_kwh,
                          double *discharged_kwh)
{
    sqlite3_stmt *q = b->q_energy;
    *charged_kwh = *discharged_kwh = NAN;
    sqlite3_reset(q);
    if (sqlite3_bind_text(q, 1, pack_id, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW) {
        *charged_kwh = sqlite3_column_double(q, 0) / 1e6;
        *discharged_kwh = sqlite3_column_double(q, 1) / 1e6;
    }
    sqlite3_reset(q);
}

int store_backlog_packs(struct store_backlog *b, int (*fn)(void *u, const char *pack_id,
                                                            const char *serial),
                        void *u)
{
    sqlite3_stmt *st;
    int rc = prepare(b, "SELECT pack_id, serial FROM packs", &st);
    if (rc != SQLITE_OK)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        const char *serial = (const char *)sqlite3_column_text(st, 1);
        if (id && fn(u, id, serial ? serial : "") != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}
