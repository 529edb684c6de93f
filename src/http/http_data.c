/* http_data: the bank's latest state for the page and the metrics, read from the history's
 * views in one read transaction (so every number on a page is of the same moment), and the
 * daemon's live counters. The values are those of the views, rounded as the views round them,
 * so the page, /metrics and /api/latest (which prints the same views) agree. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "log.h"
#include "now.h"
#include "store.h"

const char *const http_pack_cols[PC_N] = {
    "soc_pct",     "soh_pct",     "voltage_v",    "current_a",  "power_w",
    "remaining_ah", "full_ah",    "cycles",       "cell_min_v", "cell_max_v",
    "cell_diff_mv", "temp_min_c", "temp_max_c",   "age_s",      "offline_after_s",
};

const char *const http_bank_cols[BC_N] = {
    "soc_pct",    "current_a",  "power_w",        "remaining_ah", "full_ah",
    "cell_min_v", "cell_max_v", "cell_spread_mv", "temp_max_c",   "age_s",
};

sqlite3 *http_db(struct http *h)
{
    if (h->db)
        return h->db;
    char why[320];
    if (store_open_readonly(h->cfg->storage.path, 200, &h->db, why, sizeof why) != 0) {
        h->db = NULL;
        if (strcmp(why, h->db_why) != 0)
            http_warn(h, "cannot read the history: %s", why);
        snprintf(h->db_why, sizeof h->db_why, "%s", why);
        return NULL;
    }
    if (h->db_why[0])
        log_info("http: the history %s is readable", h->cfg->storage.path);
    h->db_why[0] = '\0';
    return h->db;
}

void http_db_failed(struct http *h)
{
    int rc = sqlite3_close(h->db);
    if (rc != SQLITE_OK)
        http_warn(h, "closing the history connection: %s", sqlite3_errstr(rc));
    h->db = NULL;
}

void http_refresh_live(struct http *h)
{
    memset(&h->live, 0, sizeof h->live);
    if (h->live_fn)
        h->live_fn(h->live_arg, &h->live);
}

const char *http_bank_name(const struct http *h, const char *id)
{
    for (size_t i = 0; i < h->cfg->nbanks; i++)
        if (strcmp(h->cfg->banks[i].id, id) == 0 && h->cfg->banks[i].name[0])
            return h->cfg->banks[i].name;
    return id;
}

const struct http_pack_live *http_live_pack(const struct http *h, const char *id)
{
    for (size_t i = 0; i < h->live.npacks; i++)
        if (h->live.packs[i].pack && strcmp(h->live.packs[i].pack, id) == 0)
            return &h->live.packs[i];
    return NULL;
}

static void col_text(sqlite3_stmt *st, int i, char *out, size_t cap)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    snprintf(out, cap, "%s", s ? (const char *)s : "");
}

static double col_num(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

/* Steps st to its end, calling row for each row. SQLite's code: SQLITE_DONE on success. */
static int each_row(sqlite3_stmt *st, void (*row)(struct http *h, sqlite3_stmt *st),
                    struct http *h)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        row(h, st);
    return rc;
}

static struct http_pack *pack_of(struct http *h, sqlite3_stmt *st, int col)
{
    const unsigned char *id = sqlite3_column_text(st, col);
    for (size_t i = 0; id && i < h->state.npacks; i++)
        if (strcmp(h->state.packs[i].id, (const char *)id) == 0)
            return &h->state.packs[i];
    return NULL;
}

/* Every pack of the history, its newest sample (v_latest) and, for a pack without a fresh
 * one, the newest health event. MATERIALIZED: see cmd_top.c (a LEFT JOIN would otherwise build
 * v_samples over the whole history). */
#define PACK_COLS                                                                                  \
    "l.soc_pct, l.soh_pct, l.voltage_v, l.current_a, l.power_w, l.remaining_ah, l.full_ah,"        \
    " l.cycles, l.cell_min_v, l.cell_max_v, l.cell_diff_mv, l.temp_min_c, l.temp_max_c, l.age_s,"  \
    " l.offline_after_s"
static const char pack_sql[] =
    "WITH l AS MATERIALIZED (SELECT * FROM v_latest)"
    " SELECT p.pack_id, p.bank, p.port, p.name, l.id IS NOT NULL,"
    " coalesce(l.health, (SELECT e.kind FROM events e WHERE e.pack = p.id"
    "   AND e.kind IN ('online', 'stale', 'offline') ORDER BY e.id DESC LIMIT 1), ''),"
    " coalesce(l.time, ''),"
    " l.cell_min_idx, l.cell_max_idx, l.alarms IS NOT NULL, " PACK_COLS
    " FROM packs p LEFT JOIN l ON l.pack = p.pack_id ORDER BY p.bank, p.id";
#undef PACK_COLS
enum { PACK_FIRST_VALUE = 10 };

static void pack_row(struct http *h, sqlite3_stmt *st)
{
    if (h->state.npacks == HTTP_MAX_PACKS)
        return;
    struct http_pack *p = &h->state.packs[h->state.npacks++];
    memset(p, 0, sizeof *p);
    col_text(st, 0, p->id, sizeof p->id);
    col_text(st, 1, p->bank, sizeof p->bank);
    col_text(st, 2, p->port, sizeof p->port);
    col_text(st, 3, p->name, sizeof p->name);
    p->has_sample = sqlite3_column_int(st, 4);
    col_text(st, 5, p->health, sizeof p->health);
    col_text(st, 6, p->time, sizeof p->time);
    p->cell_min_idx = sqlite3_column_int(st, 7);
    p->cell_max_idx = sqlite3_column_int(st, 8);
    p->flags_known = sqlite3_column_int(st, 9);
    for (int i = 0; i < PC_N; i++)
        p->v[i] = col_num(st, PACK_FIRST_VALUE + i);
    p->charged_kwh = p->discharged_kwh = NAN;
}

/* The flag names, cells and temperatures of each pack's newest sample. */
static const char alarm_sql[] = "SELECT pack, kind, name FROM v_alarms"
                                " WHERE sample IN (SELECT last_sample FROM packs) ORDER BY pack, kind";
static const char cell_sql[] = "SELECT pack, cell, voltage_v, balancing FROM v_cells"
                               " WHERE sample IN (SELECT last_sample FROM packs) ORDER BY pack, cell";
static const char temp_sql[] = "SELECT pack, sensor, temp_c, role FROM v_temps"
                               " WHERE sample IN (SELECT last_sample FROM packs) ORDER BY pack, sensor";
static const char energy_sql[] = "SELECT pack, charged_kwh, discharged_kwh FROM v_energy";

static void alarm_row(struct http *h, sqlite3_stmt *st)
{
    struct http_pack *p = pack_of(h, st, 0);
    const unsigned char *kind = sqlite3_column_text(st, 1), *name = sqlite3_column_text(st, 2);
    if (p == NULL || kind == NULL || name == NULL)
        return;
    int protection = strcmp((const char *)kind, "protection") == 0;
    size_t len = strlen(p->flags);
    snprintf(p->flags + len, sizeof p->flags - len, "%s%s%s", len ? ", " : "",
             protection ? "protection: " : "", (const char *)name);
    if (protection)
        p->nprotections++;
    else
        p->nalarms++;
}

static void cell_row(struct http *h, sqlite3_stmt *st)
{
    struct http_pack *p = pack_of(h, st, 0);
    int cell = sqlite3_column_int(st, 1);
    if (p == NULL || cell < 1 || cell > HTTP_MAX_CELLS || (size_t)cell != p->ncells + 1)
        return;
    p->cell_v[p->ncells] = col_num(st, 2);
    p->cell_balancing[p->ncells++] = (unsigned char)(sqlite3_column_int(st, 3) != 0);
}

static void temp_row(struct http *h, sqlite3_stmt *st)
{
    struct http_pack *p = pack_of(h, st, 0);
    int sensor = sqlite3_column_int(st, 1);
    if (p == NULL || sensor < 1 || sensor > HTTP_MAX_TEMPS || (size_t)sensor != p->ntemps + 1)
        return;
    p->temp_c[p->ntemps] = col_num(st, 2);
    col_text(st, 3, p->temp_role[p->ntemps++], sizeof p->temp_role[0]);
}

static void energy_row(struct http *h, sqlite3_stmt *st)
{
    struct http_pack *p = pack_of(h, st, 0);
    if (p == NULL)
        return;
    p->charged_kwh = col_num(st, 1);
    p->discharged_kwh = col_num(st, 2);
}

static const char bank_sql[] =
    "SELECT bank, packs, packs_online, soc_pct, current_a, power_w, remaining_ah, full_ah,"
    " cell_min_v, cell_max_v, cell_spread_mv, temp_max_c, age_s FROM v_bank_latest ORDER BY bank";
enum { BANK_FIRST_VALUE = 3 };

static void bank_row(struct http *h, sqlite3_stmt *st)
{
    if (h->state.nbanks == HTTP_MAX_BANKS)
        return;
    struct http_bank *b = &h->state.banks[h->state.nbanks++];
    memset(b, 0, sizeof *b);
    col_text(st, 0, b->id, sizeof b->id);
    snprintf(b->name, sizeof b->name, "%s", http_bank_name(h, b->id));
    b->packs = sqlite3_column_int(st, 1);
    b->online = sqlite3_column_int(st, 2);
    for (int i = 0; i < BC_N; i++)
        b->v[i] = col_num(st, BANK_FIRST_VALUE + i);
}

static const char daemon_sql[] = "SELECT state, age_s FROM v_daemon ORDER BY id DESC LIMIT 1";

static void daemon_row(struct http *h, sqlite3_stmt *st)
{
    h->state.have_daemon = 1;
    col_text(st, 0, h->state.daemon_state, sizeof h->state.daemon_state);
    h->state.daemon_age_s = sqlite3_column_double(st, 1);
}

/* The oldest sample the broker has not acknowledged. */
static const char lag_sql[] = "SELECT ts FROM samples WHERE id > ?1 ORDER BY id LIMIT 1";

static void lag_row(struct http *h, sqlite3_stmt *st)
{
    double lag = (double)(h->state.now_ms - sqlite3_column_int64(st, 0)) / 1000.0;
    h->state.replay_lag_s = lag > 0 ? lag : 0;
}

/* One statement through each_row; SQLITE_DONE or SQLite's code. */
static int run_sql(struct http *h, const char *sql, int64_t bind,
               void (*row)(struct http *h, sqlite3_stmt *st))
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(h->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    if (bind >= 0)
        rc = sqlite3_bind_int64(st, 1, bind);
    if (rc == SQLITE_OK)
        rc = each_row(st, row, h);
    sqlite3_finalize(st);
    return rc;
}

int http_read_backlog(struct http *h)
{
    struct http_state *s = &h->state;
    s->backlog = -1;
    s->replay_lag_s = NAN;
    if (!h->live.mqtt || !h->live.mqtt_history || !h->live.history)
        return SQLITE_OK;
    int64_t newest = h->live.store.last_sample_id, acked = h->live.mqtt_acked_id;
    s->backlog = newest > acked ? newest - acked : 0;
    s->replay_lag_s = 0;
    int rc = run_sql(h, lag_sql, acked, lag_row);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int http_read_state(struct http *h, char *why, size_t cap)
{
    struct http_state *s = &h->state;
    s->now_ms = now_wall_ms();
    s->npacks = s->nbanks = 0;
    s->have_daemon = 0;
    http_refresh_live(h);
    if (http_db(h) == NULL) {
        snprintf(why, cap, "the history cannot be read: %s", h->db_why);
        return -EIO;
    }
    struct {
        const char *sql;
        void (*row)(struct http *h, sqlite3_stmt *st);
        int64_t bind;
    } steps[] = {
        {daemon_sql, daemon_row, -1}, {pack_sql, pack_row, -1},   {bank_sql, bank_row, -1},
        {alarm_sql, alarm_row, -1},   {cell_sql, cell_row, -1},   {temp_sql, temp_row, -1},
        {energy_sql, energy_row, -1},
    };
    int rc = sqlite3_exec(h->db, "BEGIN", NULL, NULL, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < sizeof steps / sizeof steps[0]; i++) {
        rc = run_sql(h, steps[i].sql, steps[i].bind, steps[i].row);
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    if (rc == SQLITE_OK)
        rc = http_read_backlog(h);
    if (rc != SQLITE_OK)
        snprintf(why, cap, "the history cannot be read: %s", sqlite3_errmsg(h->db));
    int end = sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
    if (rc == SQLITE_OK && end != SQLITE_OK) {
        snprintf(why, cap, "the history cannot be read: %s", sqlite3_errmsg(h->db));
        rc = end;
    }
    if (rc != SQLITE_OK) {
        http_warn(h, "%s", why);
        http_db_failed(h);
        return -EIO;
    }
    return 0;
}
