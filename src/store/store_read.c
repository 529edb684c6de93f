/* store_read: ranges and rows of the history as CSV or JSON, and the daemon's health verdict
 * (see store_read.h). Only reads; the caller owns the read-only connection, so it is safe while
 * the daemon writes (WAL: readers and the writer never block each other). */
#include "store_read.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static const struct store_read_resolution resolutions[] = {
    {"raw", "v_samples", "ts", 1000},
    {"1m", "v_minutely", "bucket", 1},
    {"1h", "v_hourly", "bucket", 1},
};

const struct store_read_resolution *store_read_resolution(const char *name)
{
    for (size_t i = 0; name && i < sizeof resolutions / sizeof resolutions[0]; i++) {
        if (strcmp(name, resolutions[i].name) == 0)
            return &resolutions[i];
    }
    return NULL;
}

int store_read_check_range(sqlite3 *db, const struct store_read_range *r, char *why, size_t cap)
{
    static const char *const sql[] = {"SELECT pack_id, bank FROM packs ORDER BY pack_id",
                                      "SELECT DISTINCT bank, bank FROM packs ORDER BY bank"};
    const char *want[] = {r->pack, r->bank};
    const char *what[] = {"pack", "bank"};
    char pack_bank[256] = "";
    for (size_t k = 0; k < 2; k++) {
        if (want[k] == NULL)
            continue;
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, sql[k], -1, &st, NULL) != SQLITE_OK) {
            snprintf(why, cap, "%s", sqlite3_errmsg(db));
            return -EIO;
        }
        char *list = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&list, &len);
        int found = 0, n = 0, src;
        while ((src = sqlite3_step(st)) == SQLITE_ROW) {
            const char *id = (const char *)sqlite3_column_text(st, 0);
            const char *bank = (const char *)sqlite3_column_text(st, 1);
            if (id == NULL)
                continue;
            if (strcmp(id, want[k]) == 0) {
                found = 1;
                snprintf(pack_bank, sizeof pack_bank, "%s", bank ? bank : "");
            }
            if (f)
                fprintf(f, "%s%s", n++ ? ", " : "", id);
        }
        sqlite3_finalize(st);
        if (f)
            fclose(f);
        int rc = 0;
        if (src != SQLITE_DONE) {
            snprintf(why, cap, "%s", sqlite3_errmsg(db));
            rc = -EIO;
        } else if (!found) {
            snprintf(why, cap, "no %s '%s' in the database (%ss: %s)", what[k], want[k], what[k],
                     list && n ? list : "none");
            rc = -ENOENT;
        } else if (k == 0 && r->bank && strcmp(pack_bank, r->bank) != 0) {
            snprintf(why, cap, "pack '%s' is in bank '%s', not '%s'", r->pack, pack_bank, r->bank);
            rc = -ENOENT;
        }
        free(list);
        if (rc)
            return rc;
    }
    return 0;
}

/* One CSV field, RFC 4180: quoted when it holds a comma, a quote or a line break. An empty
 * string is "" so that it differs from an absent value (an empty field). */
static void csv_text(FILE *f, const char *s)
{
    if (*s != '\0' && strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void csv_value(FILE *f, sqlite3_stmt *st, int i)
{
    const char *text;
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_NULL:
        break;
    case SQLITE_INTEGER:
        fprintf(f, "%lld", (long long)sqlite3_column_int64(st, i));
        break;
    case SQLITE_FLOAT: /* SQLite's own rendering, the one the sqlite3 shell shows */
    default:
        text = (const char *)sqlite3_column_text(st, i);
        csv_text(f, text ? text : "");
        break;
    }
}

static cJSON *json_value(sqlite3_stmt *st, int i)
{
    char num[32];
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_NULL:
        return cJSON_CreateNull();
    case SQLITE_INTEGER: /* exact: ms timestamps do not go through a double */
        snprintf(num, sizeof num, "%lld", (long long)sqlite3_column_int64(st, i));
        return cJSON_CreateRaw(num);
    case SQLITE_FLOAT:
        if (!isfinite(sqlite3_column_double(st, i)))
            return cJSON_CreateNull();
        return cJSON_CreateRaw((const char *)sqlite3_column_text(st, i));
    default:
        return cJSON_CreateString((const char *)sqlite3_column_text(st, i));
    }
}

/* The row as one JSON object on one line; -ENOMEM. */
static int json_row(FILE *f, sqlite3_stmt *st, const int *order, int ncols)
{
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; o && i < ncols; i++) {
        cJSON *v = json_value(st, order[i]);
        if (v == NULL || !cJSON_AddItemToObject(o, sqlite3_column_name(st, order[i]), v)) {
            cJSON_Delete(v);
            cJSON_Delete(o);
            o = NULL;
        }
    }
    char *line = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (line == NULL)
        return -ENOMEM;
    fputs(line, f);
    cJSON_free(line);
    return 0;
}

int store_read_rows(sqlite3 *db, sqlite3_stmt *st, enum store_read_format fmt, FILE *f,
                    char *why, size_t cap)
{
    int ncols = sqlite3_column_count(st), utc = ncols - 1, n = 0, time_col = -1;
    int *order = ncols > 0 ? calloc((size_t)ncols, sizeof *order) : NULL;
    if (order == NULL) {
        snprintf(why, cap, "out of memory");
        return -ENOMEM;
    }
    for (int i = 0; i < utc && time_col < 0; i++)
        if (strcmp(sqlite3_column_name(st, i), "time") == 0)
            time_col = i;
    if (time_col < 0) /* a view without a local time: utc goes first */
        order[n++] = utc;
    for (int i = 0; i < utc; i++) {
        order[n++] = i;
        if (i == time_col)
            order[n++] = utc;
    }
    if (fmt == STORE_READ_CSV) {
        for (int i = 0; i < ncols; i++) {
            if (i)
                fputc(',', f);
            csv_text(f, sqlite3_column_name(st, order[i]));
        }
        fputc('\n', f);
    } else if (fmt == STORE_READ_JSON_ARRAY) {
        fputc('[', f);
    }
    int src, rc = 0;
    long rows = 0;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (fmt == STORE_READ_CSV) {
            for (int i = 0; i < ncols; i++) {
                if (i)
                    fputc(',', f);
                csv_value(f, st, order[i]);
            }
            fputc('\n', f);
            continue;
        }
        if (fmt == STORE_READ_JSON_ARRAY && rows++)
            fputs(",\n", f);
        if ((rc = json_row(f, st, order, ncols)) != 0) {
            snprintf(why, cap, "out of memory");
            break;
        }
        if (fmt == STORE_READ_JSON_LINES)
            fputc('\n', f);
    }
    if (rc == 0 && src != SQLITE_DONE) {
        snprintf(why, cap, "%s", sqlite3_errmsg(db));
        rc = -EIO;
    }
    if (fmt == STORE_READ_JSON_ARRAY)
        fputs("]\n", f);
    free(order);
    return rc;
}

int store_read_range(sqlite3 *db, const struct store_read_range *r, enum store_read_format fmt,
                     FILE *f, char *why, size_t cap)
{
    const struct store_read_resolution *res = r->res ? r->res : &resolutions[0];
    char sql[512];
    /* utc is the last column of the statement; it is printed after the local time. Without a
     * pack, "pack IN (every pack)" changes no result; the time range is searched in the
     * (time, pack) index, samples_ts_pack (schema 007; it was (pack, time) before). */
    snprintf(sql, sizeof sql,
             "SELECT *, strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ', %s / %d, 'unixepoch') AS utc"
             " FROM %s WHERE %s >= ?1 AND %s < ?2%s%s ORDER BY %s, pack",
             res->time_col, res->per_second, res->view, res->time_col, res->time_col,
             r->pack ? " AND pack = ?3" : " AND pack IN (SELECT pack_id FROM packs)",
             r->bank ? " AND bank = ?4" : "", res->time_col);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(why, cap, "%s", sqlite3_errmsg(db));
        return -EIO;
    }
    sqlite3_bind_int64(st, 1, r->from * res->per_second);
    sqlite3_bind_int64(st, 2, r->to * res->per_second);
    if (r->pack)
        sqlite3_bind_text(st, 3, r->pack, -1, SQLITE_STATIC);
    if (r->bank)
        sqlite3_bind_text(st, 4, r->bank, -1, SQLITE_STATIC);
    int rc = store_read_rows(db, st, fmt, f, why, cap);
    sqlite3_finalize(st);
    return rc;
}

/* ---- health ---- */

static const char daemon_sql[] = "SELECT state, age_s FROM v_daemon ORDER BY id DESC LIMIT 1";
static const char packs_sql[] = "SELECT count(*), count(CASE WHEN health = 'online' THEN 1 END),"
                                " (SELECT count(*) FROM packs) FROM v_latest";

int store_read_health(sqlite3 *db, long min_online, char *msg, size_t cap)
{
    sqlite3_stmt *st = NULL;
    int verdict = -1;
    char state[32] = "";
    double age_s = 0;
    long with_sample = 0, online = 0, known = 0;
    int rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, daemon_sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const unsigned char *s = sqlite3_column_text(st, 0);
            snprintf(state, sizeof state, "%s", s ? (const char *)s : "?");
            age_s = sqlite3_column_double(st, 1);
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            rc = SQLITE_OK;
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, packs_sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            with_sample = sqlite3_column_int(st, 0);
            online = sqlite3_column_int(st, 1);
            known = sqlite3_column_int(st, 2);
            rc = SQLITE_OK;
        }
        sqlite3_finalize(st);
    }
    if (rc != SQLITE_OK) {
        snprintf(msg, cap, "unhealthy: cannot read the history: %s", sqlite3_errmsg(db));
    } else if (state[0] == '\0') {
        snprintf(msg, cap, "unhealthy: no daemon has written to this history");
        verdict = 1;
    } else if (strcmp(state, "writing") != 0) {
        snprintf(msg, cap, "unhealthy: daemon %s, last write %.0f s ago",
                 strcmp(state, "stopped") == 0 ? "stopped" : "not writing", age_s);
        verdict = 1;
    } else {
        verdict = online >= min_online ? 0 : 1;
        snprintf(msg, cap, "%s: daemon writing (last write %.0f s ago), %ld/%ld packs online%s",
                 verdict ? "unhealthy" : "healthy", age_s, online, known,
                 verdict && with_sample == 0 ? ", no sample yet" : "");
    }
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return verdict;
}
