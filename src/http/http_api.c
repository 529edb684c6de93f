/* http_api: the JSON of /api/latest and /api/history, and /healthz. The rows are the views'
 * rows as `bmsfleet export --json` prints them (store_read.h: same columns, same numbers, utc
 * after the local time), so a script can move from the command line to the API unchanged. */
#define _GNU_SOURCE /* fopencookie */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "http_internal.h"
#include "log.h"
#include "now.h"
#include "parse.h"
#include "store_read.h"

/* /api/history's answer at most, and the longest its query may run (the one thread serves
 * every other request meanwhile). */
#define HISTORY_MAX_BYTES (32u << 20)
#define HISTORY_MAX_MS 10000
#define DAY_S 86400

/* The newest sample of each pack in each view (the same rows as export over that moment). */
#define LATEST_ROWS(view, order)                                                                   \
    "SELECT *, " STORE_READ_UTC_SQL("ts", 1000) " FROM " view                                      \
    " WHERE sample IN (SELECT last_sample FROM packs) ORDER BY " order

static const struct {
    const char *key;
    const char *sql;
    int one; /* a single object (null when no row), not an array */
} latest_parts[] = {
    {"daemon",
     "SELECT *, " STORE_READ_UTC_SQL("last_write_ts", 1000) " FROM v_daemon ORDER BY id DESC LIMIT 1",
     1},
    {"banks",
     "SELECT *, strftime('%Y-%m-%dT%H:%M:%SZ', time, 'utc') AS utc FROM v_bank_latest ORDER BY bank",
     0},
    {"packs", "SELECT *, " STORE_READ_UTC_SQL("ts", 1000) " FROM v_latest ORDER BY bank, pack", 0},
    {"cells", LATEST_ROWS("v_cells", "pack, cell"), 0},
    {"temps", LATEST_ROWS("v_temps", "pack, sensor"), 0},
    {"alarms", LATEST_ROWS("v_alarms", "pack, kind, name"), 0},
};

/* One part's rows into f: an array, or one object (null without a row). 0 or -EIO/-ENOMEM. */
static int latest_part(struct http *h, size_t i, FILE *f, char *why, size_t cap)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h->db, latest_parts[i].sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(why, cap, "%s", sqlite3_errmsg(h->db));
        return -EIO;
    }
    int rc;
    if (!latest_parts[i].one) {
        rc = store_read_rows(h->db, st, STORE_READ_JSON_ARRAY, f, why, cap);
    } else {
        char *row = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&row, &len);
        rc = m ? store_read_rows(h->db, st, STORE_READ_JSON_LINES, m, why, cap) : -ENOMEM;
        if (m && fclose(m) != 0 && rc == 0)
            rc = -ENOMEM;
        if (rc == 0) {
            while (len && row[len - 1] == '\n')
                len--;
            if (len)
                fwrite(row, 1, len, f);
            else
                fputs("null", f);
        }
        free(row);
    }
    sqlite3_finalize(st);
    if (rc == -ENOMEM)
        snprintf(why, cap, "out of memory");
    return rc;
}

static void json_number(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.15g", v);
    else
        fputs("null", f);
}

/* What the daemon says about MQTT: connected, the samples the broker has not acknowledged
 * and the age of the oldest of them. */
static void mqtt_part(struct http *h, FILE *f)
{
    if (!h->live.mqtt) {
        fputs("null", f);
        return;
    }
    fprintf(f, "{\"connected\":%s,\"backlog\":", h->live.mqtt_connected ? "true" : "false");
    if (h->state.backlog >= 0)
        fprintf(f, "%lld", (long long)h->state.backlog);
    else
        fputs("null", f);
    fputs(",\"replay_lag_s\":", f);
    json_number(f, h->state.replay_lag_s);
    fprintf(f, ",\"published\":%llu,\"dropped\":%llu}",
            (unsigned long long)h->live.mqtt_published, (unsigned long long)h->live.mqtt_dropped);
}

/* What the daemon says about writing its history, as MQTT's <base>/<node>/storage says it:
 * failing while the writer's commits fail or the replay cursor cannot be saved. */
static void storage_part(struct http *h, FILE *f)
{
    const struct http_live *l = &h->live;
    if (!l->history) {
        fputs("null", f);
        return;
    }
    int cursor = l->mqtt && l->mqtt_cursor_failing;
    cJSON *err = cJSON_CreateString(l->store.failing ? l->store.error
                                    : cursor         ? "the MQTT replay cursor cannot be saved"
                                                     : "");
    char *text = err ? cJSON_PrintUnformatted(err) : NULL;
    cJSON_Delete(err);
    fprintf(f, "{\"state\":\"%s\",\"error\":%s,\"waiting\":%llu,\"dropped\":%llu}",
            l->store.failing || cursor ? "failing" : "ok", text ? text : "null",
            (unsigned long long)l->store.waiting, (unsigned long long)l->store.dropped);
    cJSON_free(text);
}

unsigned http_api_latest(struct http *h, FILE *f)
{
    http_refresh_live(h);
    h->state.now_ms = now_wall_ms();
    if (http_db(h) == NULL) {
        fprintf(f, "the history cannot be read: %s\n", h->db_why);
        return 503;
    }
    char why[512] = "";
    int rc = sqlite3_exec(h->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
    if (rc == 0 && http_read_backlog(h) != SQLITE_OK)
        rc = -EIO;
    if (rc)
        snprintf(why, sizeof why, "%s", sqlite3_errmsg(h->db));
    char now[32];
    time_t t = (time_t)(h->state.now_ms / 1000);
    struct tm tm;
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    cJSON *node = cJSON_CreateString(h->cfg->node_id);
    char *node_text = node ? cJSON_PrintUnformatted(node) : NULL;
    cJSON_Delete(node);
    if (rc == 0 && node_text == NULL) {
        snprintf(why, sizeof why, "out of memory");
        rc = -ENOMEM;
    }
    if (rc == 0) {
        fprintf(f, "{\"node\":%s,\"time\":\"%s\",\"mqtt\":", node_text, now);
        mqtt_part(h, f);
        fputs(",\"storage\":", f);
        storage_part(h, f);
    }
    cJSON_free(node_text);
    for (size_t i = 0; rc == 0 && i < sizeof latest_parts / sizeof latest_parts[0]; i++) {
        fprintf(f, ",\n\"%s\":", latest_parts[i].key);
        rc = latest_part(h, i, f, why, sizeof why);
    }
    if (sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK && rc == 0) {
        snprintf(why, sizeof why, "%s", sqlite3_errmsg(h->db));
        rc = -EIO;
    }
    if (rc) {
        http_warn(h, "/api/latest: %s", why);
        if (rc == -EIO)
            http_db_failed(h);
        fprintf(f, "\nthe history cannot be read: %s\n", why);
        return 503;
    }
    fputs("}\n", f);
    return 200;
}

/* ---------------------------------------------------------------- /api/history */

/* The rows go to a buffer of at most HISTORY_MAX_BYTES; past it, or past HISTORY_MAX_MS, the
 * query is interrupted (sqlite3_progress_handler) rather than run to its end. */
struct capped {
    char *buf;
    size_t len, cap;
    int over;         /* 1 too large, 2 too slow */
    int64_t deadline; /* monotonic ms */
};

static ssize_t capped_write(void *cookie, const char *data, size_t n)
{
    struct capped *c = cookie;
    if (c->over || c->len + n > HISTORY_MAX_BYTES) {
        c->over = c->over ? c->over : 1;
        errno = EFBIG;
        return -1;
    }
    if (c->len + n > c->cap) {
        size_t cap = c->cap ? c->cap : 65536;
        while (cap < c->len + n)
            cap *= 2;
        char *b = realloc(c->buf, cap);
        if (b == NULL) {
            errno = ENOMEM;
            return -1;
        }
        c->buf = b;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, data, n);
    c->len += n;
    return (ssize_t)n;
}

static int capped_stop(void *cookie)
{
    struct capped *c = cookie;
    if (!c->over && now_mono_ms() > c->deadline)
        c->over = 2;
    return c->over != 0;
}

/* A time argument: ISO 8601 (parse.h) or UTC epoch seconds. */
static int parse_when(const char *s, int64_t *out)
{
    long v;
    if (s[0] >= '0' && s[0] <= '9' && strchr(s, '-') == NULL) {
        if (parse_long(s, 0, 253402300799L, &v) != 0)
            return -EINVAL;
        *out = v;
        return 0;
    }
    return parse_time(s, out);
}

unsigned http_api_history(struct http *h, FILE *f)
{
    struct store_read_range r = {.pack = http_arg(h, "pack"), .bank = http_arg(h, "bank")};
    const char *res = http_arg(h, "resolution");
    r.res = store_read_resolution(res ? res : "raw");
    if (r.res == NULL) {
        fprintf(f, "resolution: '%.64s' is none of " STORE_READ_RESOLUTIONS "\n", res);
        return 400;
    }
    const char *names[] = {"from", "to"};
    int64_t *dst[] = {&r.from, &r.to};
    r.to = now_wall_ms() / 1000 + 1;
    r.from = r.to - DAY_S;
    for (size_t i = 0; i < 2; i++) {
        const char *v = http_arg(h, names[i]);
        if (v && parse_when(v, dst[i]) != 0) {
            fprintf(f, "%s: '%.64s' is neither an ISO 8601 date or date-time nor epoch seconds\n",
                    names[i], v);
            return 400;
        }
    }
    if (r.from >= r.to) {
        fprintf(f, "from must be before to\n");
        return 400;
    }
    if (http_db(h) == NULL) {
        fprintf(f, "the history cannot be read: %s\n", h->db_why);
        return 503;
    }
    char why[512];
    int err = store_read_check_range(h->db, &r, why, sizeof why);
    if (err == -ENOENT) {
        fprintf(f, "%s\n", why);
        return 404;
    }
    struct capped c = {.deadline = now_mono_ms() + HISTORY_MAX_MS};
    FILE *out = err ? NULL : fopencookie(&c, "w", (cookie_io_functions_t){.write = capped_write});
    if (err == 0 && out == NULL) {
        snprintf(why, sizeof why, "out of memory");
        err = -ENOMEM;
    }
    if (out) {
        sqlite3_progress_handler(h->db, 10000, capped_stop, &c);
        err = store_read_range(h->db, &r, STORE_READ_JSON_ARRAY, out, why, sizeof why);
        sqlite3_progress_handler(h->db, 0, NULL, NULL);
        if (fclose(out) != 0 && err == 0) {
            snprintf(why, sizeof why, "%s", strerror(errno));
            err = -EIO;
        }
    }
    unsigned status = 200;
    if (c.over == 1) {
        fprintf(f, "the range gives more than %u MiB: narrow it, or ask for resolution=1m or 1h\n",
                HISTORY_MAX_BYTES >> 20);
        status = 413;
    } else if (c.over == 2) {
        fprintf(f, "the query took longer than %d s: narrow the range, or ask for resolution=1m "
                   "or 1h\n", HISTORY_MAX_MS / 1000);
        status = 503;
    } else if (err) {
        http_warn(h, "/api/history: %s", why);
        fprintf(f, "the history cannot be read: %s\n", why);
        status = 503;
    } else if (fwrite(c.buf, 1, c.len, f) != c.len) {
        status = 503;
    }
    if (c.over)
        http_warn(h, "/api/history refused (status %u): %s", status,
                  c.over == 1 ? "the answer is too large" : "the query is too slow");
    free(c.buf);
    return status;
}

/* ---------------------------------------------------------------- /healthz */

unsigned http_healthz(struct http *h, FILE *f)
{
    char msg[512];
    int verdict = -1;
    if (http_db(h) == NULL)
        snprintf(msg, sizeof msg, "unhealthy: the history cannot be read: %s", h->db_why);
    else if ((verdict = store_read_health(h->db, 1, msg, sizeof msg)) < 0)
        http_db_failed(h);
    fprintf(f, "%s\n", msg);
    return verdict == 0 ? 200 : 503;
}
