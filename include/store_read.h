/* store_read: what people's tools read from a history, on a read-only connection of their own
 * (store_open_readonly): a time range of the history (`bmsfleet export`, the HTTP server's
 * /api/history), the rows of any view in the same shape (/api/latest), and whether a daemon is
 * alive (`bmsfleet health`, /healthz). One implementation for the command line and the server,
 * so both print the same columns, numbers and verdicts. */
#ifndef BMSFLEET_STORE_READ_H
#define BMSFLEET_STORE_READ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <sqlite3.h>

/* One row per resolution: the view it reads and its time column. */
struct store_read_resolution {
    const char *name;     /* "raw", "1m", "1h" */
    const char *view;     /* v_samples, v_minutely, v_hourly */
    const char *time_col; /* indexed, compared with the range */
    int per_second;       /* time_col units per second: ms or s */
};
/* The resolution called name, or NULL. */
const struct store_read_resolution *store_read_resolution(const char *name);
#define STORE_READ_RESOLUTIONS "raw, 1m, 1h"

/* A time range of the history: [from, to) in UTC epoch seconds, optionally one pack or bank. */
struct store_read_range {
    const char *pack, *bank; /* NULL: every one */
    int64_t from, to;
    const struct store_read_resolution *res;
};

enum store_read_format {
    STORE_READ_CSV,        /* a header line, then one line per row; absent values empty */
    STORE_READ_JSON_LINES, /* one object per line; absent values null */
    STORE_READ_JSON_ARRAY, /* the same objects in one array, one per line */
};

/* The range's pack and bank must be in the database: 0; -ENOENT with a sentence naming what
 * the database holds (or that the pack is in another bank); -EIO with SQLite's message. */
int store_read_check_range(sqlite3 *db, const struct store_read_range *r, char *why, size_t cap);
/* Writes the rows of the range to f, ordered by time, then pack. Columns: those of the view,
 * with utc (ISO 8601 in UTC) after the local time. 0, -EIO (why: SQLite's message), -ENOMEM. */
int store_read_range(sqlite3 *db, const struct store_read_range *r, enum store_read_format fmt,
                     FILE *f, char *why, size_t cap);
/* Writes every row of a prepared statement in the same shape; its last column must be the utc
 * text, which goes after its 'time' column (first when it has none). The statement is stepped
 * to its end, not finalized. Same returns. */
int store_read_rows(sqlite3 *db, sqlite3_stmt *st, enum store_read_format fmt, FILE *f,
                    char *why, size_t cap);
/* The SQL expression of that utc column for a time column in units per second. */
#define STORE_READ_UTC_SQL(col, per_second)                                                        \
    "strftime('%Y-%m-%dT%H:%M:%SZ', " col " / " #per_second ", 'unixepoch') AS utc"

/* Judges whether the newest daemon run is writing (v_daemon) and at least min_online packs are
 * online with fresh data (v_latest.health), in one read transaction; the verdict as one line
 * ("healthy: daemon writing (last write 2 s ago), 8/8 packs online") in msg. 0 healthy,
 * 1 unhealthy, -1 when the history cannot be read (msg says why). */
int store_read_health(sqlite3 *db, long min_online, char *msg, size_t cap);

#endif
