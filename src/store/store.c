/* Part store (src/store/): the SQLite history. The schema and its migrations (the SQL files of schema/,
 * compiled in), the writer thread with its batches, rollups, energy, events and retention
 * (store.c, this file, and store_writer.c), and the read APIs the others use: store_backlog.c
 * for the MQTT replay, store_open_readonly for people's tools. The part that holds the SQL
 * (tools/check-layers.sh lets only store, cli and http touch SQLite); it never reaches MQTT.
 *
 * store: the SQLite history and its writer thread.
 *
 * The writer owns the only writing connection. Readings wait in memory (`pending`) until the
 * commit interval; then one transaction writes the samples, the events (health changes,
 * alarms raised and cleared), the hourly rollup deltas (sums that merge by UPSERT, so buckets
 * split across commits or restarts add up exactly) and the energy counters. The 1-minute
 * rollups are written by retention, from the samples it deletes (v_minutely computes the
 * minutes still in samples).
 * If the transaction fails (disk full, I/O error), it is rolled back, the per-pack state the
 * batch computed is thrown away, and the same readings are retried at the next interval. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "energy.h"
#include "log.h"
#include "store_internal.h"
#include "store_schema.h"

int store_schema_version(void)
{
    return store_migration_count;
}

static int exec(sqlite3 *db, const char *sql, char *err, size_t cap)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    snprintf(err, cap, "%s", msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return -1;
}

static int user_version(sqlite3 *db)
{
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

int store_migrate(sqlite3 *db, char *err, size_t cap)
{
    int have = user_version(db);
    if (have < 0) {
        snprintf(err, cap, "cannot read the schema version: %s", sqlite3_errmsg(db));
        return -1;
    }
    if (have > store_migration_count) {
        snprintf(err, cap,
                 "the database has schema version %d, newer than this bmsfleet knows (%d): "
                 "upgrade bmsfleet, or point storage.path at another file",
                 have, store_migration_count);
        return -1;
    }
    /* only effective before the first table: new databases. 1 KiB pages: a commit writes
     * whole pages (to the WAL, then again at the checkpoint), and most of the pages a commit
     * touches get a few small rows each (the newest samples and index entries, each pack's
     * rollup hour, packs, energy): with 4 KiB pages most of each page written is old data */
    if (have == 0 &&
        exec(db, "PRAGMA page_size = " STORE_PAGE_SIZE_STR "; PRAGMA auto_vacuum = INCREMENTAL",
             err, cap))
        return -1;
    for (int v = have + 1; v <= store_migration_count; v++) {
        const struct store_migration *m = &store_migrations[v - 1];
        char setv[64], why[256];
        snprintf(setv, sizeof setv, "PRAGMA user_version = %d", v);
        if (exec(db, "BEGIN IMMEDIATE", why, sizeof why) ||
            exec(db, m->sql, why, sizeof why) || exec(db, setv, why, sizeof why) ||
            exec(db, "COMMIT", why, sizeof why)) {
            char ignore[64];
            exec(db, "ROLLBACK", ignore, sizeof ignore);
            snprintf(err, cap, "migration %03d_%s failed: %s", v, m->name, why);
            return -1;
        }
        log_info("history: schema migrated to version %d (%s)", v, m->name);
    }
    return 0;
}

size_t store_cells_blob(const struct sample *s, uint8_t *out, size_t cap)
{
    if (s->ncells == 0 || cap < 1 + 2u * s->ncells)
        return 0;
    int narrow = s->cell_max_mv - s->cell_min_mv <= 255 && s->cell_min_mv >= 0;
    out[0] = narrow ? 1 : 2;
    size_t n = 1;
    for (size_t i = 0; i < s->ncells; i++) {
        if (narrow) {
            out[n++] = (uint8_t)(s->cell_mv[i] - s->cell_min_mv);
        } else {
            out[n++] = (uint8_t)((uint32_t)s->cell_mv[i] >> 8);
            out[n++] = (uint8_t)s->cell_mv[i];
        }
    }
    return n;
}

void store_temp_roles(const struct sample *s, char *out, size_t cap)
{
    static const char letters[] = {'c', 'm', 'a', 'v'};
    size_t n = 0;
    for (size_t i = 0; i < s->ntemps && n + 1 < cap; i++)
        out[n++] = s->temp_role[i] < sizeof letters ? letters[s->temp_role[i]] : 'c';
    out[n] = '\0';
}

static int prepare(struct store *s, char *err, size_t cap)
{
#define ROLLUP_UPSERT(table)                                                                      \
    "INSERT INTO " table " (pack, bucket, n, v_sum, v_min, v_max, i_sum, i_min, i_max, soc_sum," \
    " soc_min, soc_max, soc_n, cell_min, cell_max, temp_min, temp_max, charge_mwh,"              \
    " discharge_mwh) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"                             \
    " ON CONFLICT(pack, bucket) DO UPDATE SET n = n + excluded.n,"                               \
    " v_sum = v_sum + excluded.v_sum, i_sum = i_sum + excluded.i_sum,"                           \
    " soc_sum = coalesce(soc_sum + excluded.soc_sum, soc_sum, excluded.soc_sum),"                \
    " soc_n = soc_n + excluded.soc_n,"                                                           \
    " v_min = coalesce(min(v_min, excluded.v_min), v_min, excluded.v_min),"                      \
    " v_max = coalesce(max(v_max, excluded.v_max), v_max, excluded.v_max),"                      \
    " i_min = coalesce(min(i_min, excluded.i_min), i_min, excluded.i_min),"                      \
    " i_max = coalesce(max(i_max, excluded.i_max), i_max, excluded.i_max),"                      \
    " soc_min = coalesce(min(soc_min, excluded.soc_min), soc_min, excluded.soc_min),"            \
    " soc_max = coalesce(max(soc_max, excluded.soc_max), soc_max, excluded.soc_max),"            \
    " cell_min = coalesce(min(cell_min, excluded.cell_min), cell_min, excluded.cell_min),"       \
    " cell_max = coalesce(max(cell_max, excluded.cell_max), cell_max, excluded.cell_max),"       \
    " temp_min = coalesce(min(temp_min, excluded.temp_min), temp_min, excluded.temp_min),"       \
    " temp_max = coalesce(max(temp_max, excluded.temp_max), temp_max, excluded.temp_max),"       \
    " charge_mwh = charge_mwh + excluded.charge_mwh,"                                            \
    " discharge_mwh = discharge_mwh + excluded.discharge_mwh"
    const struct {
        sqlite3_stmt **st;
        const char *sql;
    } stmts[] = {
        {&s->ins_sample,
         "INSERT INTO samples (pack, ts, voltage_mv, current_ma, soc_cpct, soh_cpct,"
         " remaining_mah, full_mah, design_mah, cycles, cell_min_mv, cell_max_mv, cell_min_idx,"
         " cell_max_idx, temp_min_dc, temp_max_dc, alarms, protection, state, balancing, cells,"
         " temps, charge_uwh, discharge_uwh, flags_known)"
         " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"},
        {&s->ins_event, "INSERT INTO events (pack, ts, kind, detail) VALUES (?,?,?,?)"},
        {&s->up_1m, ROLLUP_UPSERT("rollup_1m")},
        {&s->up_1h, ROLLUP_UPSERT("rollup_1h")},
        {&s->up_energy,
         "INSERT INTO energy (pack, charged_mwh, discharged_mwh, last_ts, last_power_mw)"
         " VALUES (?,?,?,?,?) ON CONFLICT(pack) DO UPDATE SET"
         " charged_mwh = excluded.charged_mwh, discharged_mwh = excluded.discharged_mwh,"
         " last_ts = excluded.last_ts, last_power_mw = excluded.last_power_mw"},
        {&s->up_seen,
         "UPDATE packs SET last_seen = max(coalesce(last_seen, 0), ?2),"
         " first_seen = coalesce(first_seen, ?3), last_sample = ?4 WHERE id = ?1"},
        {&s->up_roles, "UPDATE packs SET temp_roles = ?2 WHERE id = ?1"},
        {&s->up_serial, "UPDATE packs SET serial = coalesce(?2, serial) WHERE id = ?1"},
        {&s->ins_run, "INSERT INTO daemon_runs (started, last_write, heartbeat_s, version)"
                      " VALUES (?1, ?2, ?3, ?4)"},
        {&s->up_run, "UPDATE daemon_runs SET last_write = ?2, stopped = ?3 WHERE id = ?1"},
        {&s->up_upto, "INSERT OR REPLACE INTO meta (key, value) VALUES ('rollup_1h_upto', ?1)"},
    };
#undef ROLLUP_UPSERT
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
        if (sqlite3_prepare_v3(s->db, stmts[i].sql, -1, SQLITE_PREPARE_PERSISTENT, stmts[i].st,
                               NULL) != SQLITE_OK) {
            snprintf(err, cap, "cannot prepare a statement: %s", sqlite3_errmsg(s->db));
            return -1;
        }
    }
    return 0;
}

/* The statements register_packs runs for each pack and each flag name. */
struct register_stmts {
    sqlite3_stmt *up;   /* the pack's row, inserted or updated; returns its id */
    sqlite3_stmt *last; /* the flags of the pack's last sample */
    sqlite3_stmt *en;   /* the pack's energy counters */
    sqlite3_stmt *fl;   /* one flag name */
};

/* Prepares the statements; -1 at the first that fails (the message is the connection's). */
static int register_prepare(sqlite3 *db, struct register_stmts *st)
{
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO packs (pack_id, port, address, name, bank, protocol,"
                           " interval_s) VALUES (?,?,?,?,?,?,?) ON CONFLICT(pack_id) DO UPDATE"
                           " SET port = excluded.port, address = excluded.address,"
                           " name = excluded.name, bank = excluded.bank,"
                           " protocol = excluded.protocol, interval_s = excluded.interval_s"
                           " RETURNING id",
                           -1, &st->up, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "SELECT alarms, protection FROM samples WHERE id ="
                           " (SELECT last_sample FROM packs WHERE id = ?) AND flags_known",
                           -1, &st->last, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "SELECT charged_mwh, discharged_mwh, last_ts, last_power_mw"
                           " FROM energy WHERE pack = ?",
                           -1, &st->en, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO flag_names VALUES (?,?,?)", -1, &st->fl,
                           NULL) != SQLITE_OK)
        return -1;
    return 0;
}

/* What the history knows of pack ps->db_id: its last flags and its energy counters. */
static void register_load_state(struct register_stmts *st, struct pack_state *ps)
{
    sqlite3_reset(st->last);
    sqlite3_bind_int64(st->last, 1, ps->db_id);
    if (sqlite3_step(st->last) == SQLITE_ROW) {
        ps->alarms = (uint32_t)sqlite3_column_int64(st->last, 0);
        ps->protection = (uint32_t)sqlite3_column_int64(st->last, 1);
        ps->have_flags = 1;
    }
    sqlite3_reset(st->en);
    sqlite3_bind_int64(st->en, 1, ps->db_id);
    if (sqlite3_step(st->en) == SQLITE_ROW) {
        ps->energy.charged_mwh = sqlite3_column_double(st->en, 0);
        ps->energy.discharged_mwh = sqlite3_column_double(st->en, 1);
        ps->energy.have = sqlite3_column_type(st->en, 2) != SQLITE_NULL;
        ps->energy.last_ts = sqlite3_column_int64(st->en, 2);
        ps->energy.last_power_mw = sqlite3_column_double(st->en, 3);
    }
}

/* The pack's row as the configuration has it, its id into ps, then its last state. -1 when
 * the row cannot be written. */
static int register_pack(struct register_stmts *st, const struct config_port *port,
                         const struct config_pack *pk, struct pack_state *ps)
{
    sqlite3_stmt *up = st->up;
    sqlite3_reset(up);
    sqlite3_bind_text(up, 1, pk->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(up, 2, port->name, -1, SQLITE_STATIC);
    sqlite3_bind_int(up, 3, pk->address);
    sqlite3_bind_text(up, 4, pk->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(up, 5, pk->bank, -1, SQLITE_STATIC);
    sqlite3_bind_text(up, 6, config_protocol_name(port->protocol), -1, SQLITE_STATIC);
    sqlite3_bind_int(up, 7, port->interval_s); /* the views judge staleness by it */
    if (sqlite3_step(up) != SQLITE_ROW)
        return -1;
    ps->db_id = sqlite3_column_int64(up, 0);
    sqlite3_step(up);
    register_load_state(st, ps);
    return 0;
}

/* The names of the alarm, protection and state bits, for the views. -1 when one fails. */
static int register_flag_names(sqlite3_stmt *fl)
{
    const struct {
        const char *kind;
        const char *(*name)(unsigned);
        unsigned count;
    } kinds[] = {{"alarm", sample_alarm_name, SAMPLE_ALARM_COUNT},
                 {"protection", sample_prot_name, SAMPLE_PROT_COUNT},
                 {"state", sample_state_name, SAMPLE_STATE_COUNT}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (unsigned b = 0; b < kinds[k].count; b++) {
            sqlite3_reset(fl);
            sqlite3_bind_text(fl, 1, kinds[k].kind, -1, SQLITE_STATIC);
            sqlite3_bind_int(fl, 2, (int)b);
            sqlite3_bind_text(fl, 3, kinds[k].name(b), -1, SQLITE_STATIC);
            if (sqlite3_step(fl) != SQLITE_DONE)
                return -1;
        }
    }
    return 0;
}

/* Packs rows for the configuration, flag names, and each pack's last state. */
static int register_packs(struct store *s, char *err, size_t cap)
{
    struct register_stmts st = {NULL, NULL, NULL, NULL};
    int rc = -1;
    if (exec(s->db, "BEGIN IMMEDIATE", err, cap))
        return -1;
    if (register_prepare(s->db, &st))
        goto out;
    for (size_t i = 0; i < s->cfg->nports; i++) {
        const struct config_port *port = &s->cfg->ports[i];
        for (size_t k = 0; k < port->npacks; k++) {
            if (register_pack(&st, port, &port->packs[k], &s->packs[i][k]))
                goto out;
        }
    }
    if (register_flag_names(st.fl))
        goto out;
    /* v_minutely integrates the kept samples with the same limit as the writer; v_latest
     * allows one commit interval for a sample to reach the database */
    char gap[192];
    snprintf(gap, sizeof gap, "INSERT OR REPLACE INTO meta (key, value) VALUES"
             " ('energy_max_gap_s', %d), ('commit_interval_s', %d)",
             s->cfg->storage.energy_max_gap_s, s->cfg->storage.commit_interval_s);
    if (exec(s->db, gap, err, cap))
        goto out;
    rc = exec(s->db, "COMMIT", err, cap);
out:
    if (rc) {
        if (!err[0])
            snprintf(err, cap, "cannot register the packs: %s", sqlite3_errmsg(s->db));
        char ignore[64];
        exec(s->db, "ROLLBACK", ignore, sizeof ignore);
    }
    sqlite3_finalize(st.up);
    sqlite3_finalize(st.last);
    sqlite3_finalize(st.en);
    sqlite3_finalize(st.fl);
    return rc;
}

static int make_parent_dir(const char *path)
{
    char copy[CONFIG_PATH_LEN];
    snprintf(copy, sizeof copy, "%s", path);
    char *dir = dirname(copy);
    if (strcmp(dir, ".") == 0 || strcmp(dir, "/") == 0)
        return 0;
    struct stat st;
    if (stat(dir, &st) == 0)
        return 0;
    if (make_parent_dir(dir) != 0)
        return -1;
    return mkdir(dir, 0750) == 0 || errno == EEXIST ? 0 : -1;
}

/* The history is the site's data: a new database file is created 0640 (less what the umask
 * takes away) before SQLite opens it, and SQLite gives its -wal and -shm files the mode of the
 * database. An existing file keeps the mode its owner gave it. */
static int create_private(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd >= 0)
        return close(fd) == 0 ? 0 : -errno;
    return errno == EEXIST ? 0 : -errno;
}

int store_new(const struct config *cfg, struct store **out)
{
    struct store *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->cfg = cfg;
    snprintf(s->path, sizeof s->path, "%s", cfg->storage.path);
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return 0;
}

static void disconnect(struct store *s)
{
    sqlite3_stmt **all[] = {&s->ins_sample, &s->ins_event, &s->up_1m,     &s->up_1h,
                            &s->up_energy,  &s->up_seen,   &s->up_roles,  &s->up_serial,
                            &s->ins_run,    &s->up_run,    &s->up_upto};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        sqlite3_finalize(*all[i]);
        *all[i] = NULL;
    }
    if (s->db)
        sqlite3_close(s->db);
    s->db = NULL;
}

/* A failure that may go away by itself: a full disk, an I/O error, a lock held too long. */
static int transient(int rc)
{
    int base = rc & 0xFF;
    return base == SQLITE_FULL || base == SQLITE_IOERR || base == SQLITE_BUSY ||
           base == SQLITE_LOCKED || base == SQLITE_NOMEM;
}

/* The same from a message: the failing step was rolled back since, which reset the error
 * code, so its text (SQLite's own wording) is what is left. */
static int transient_text(const char *why)
{
    static const int codes[] = {SQLITE_FULL, SQLITE_IOERR, SQLITE_BUSY, SQLITE_LOCKED,
                                SQLITE_NOMEM};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        if (strstr(why, sqlite3_errstr(codes[i])))
            return 1;
    }
    return 0;
}

int store_connect(struct store *s, char *err, size_t cap)
{
    err[0] = '\0';
    if (s->db)
        return 0;
    if (make_parent_dir(s->path) != 0) {
        snprintf(err, cap, "cannot create the directory of %s: %s", s->path, strerror(errno));
        return -EINVAL;
    }
    /* SQLite says only "unable to open database file" for these; the writer needs the file and
     * its directory (for the -wal and -shm files) writable */
    char dir[CONFIG_PATH_LEN];
    snprintf(dir, sizeof dir, "%s", s->path);
    const char *d = dirname(dir);
    if (access(d, W_OK) != 0 && (errno == EROFS || errno == EACCES)) {
        snprintf(err, cap, "cannot write in %s (%s): the history needs its directory writable",
                 d, strerror(errno));
        return -EINVAL;
    }
    if (access(s->path, F_OK) == 0 && access(s->path, W_OK) != 0) {
        snprintf(err, cap, "cannot write to %s: %s", s->path, strerror(errno));
        return -EINVAL;
    }
    int e = create_private(s->path);
    if (e < 0) {
        snprintf(err, cap, "cannot create %s: %s", s->path, strerror(-e));
        return e == -ENOSPC || e == -EDQUOT || e == -EIO ? -EAGAIN : -EINVAL;
    }
    char why[256] = "";
    int rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, cap, "cannot open %s: %s", s->path, sqlite3_errmsg(s->db));
        disconnect(s);
        return transient(rc) ? -EAGAIN : -EINVAL;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 5000);
    /* migrate first: a new database must get auto_vacuum before WAL writes the header */
    if (store_migrate(s->db, why, sizeof why) ||
        exec(s->db,
             "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
             " PRAGMA cache_size = -256", /* 256 KiB: the writer appends, it rarely rereads */
             why, sizeof why) ||
        prepare(s, why, sizeof why) || register_packs(s, why, sizeof why) ||
        store_rollup_recover(s, why, sizeof why)) {
        snprintf(err, cap, "%s: %s", s->path, why);
        disconnect(s);
        return transient_text(why) ? -EAGAIN : -EINVAL;
    }
    s->next_retention_ms = now_mono_ms() + 10000;
    /* where the newest sample stands, for the MQTT backlog in the daemon's status */
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT coalesce(max(id), 0) FROM samples", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        pthread_mutex_lock(&s->lock);
        s->stats.last_sample_id = sqlite3_column_int64(st, 0);
        pthread_mutex_unlock(&s->lock);
    }
    sqlite3_finalize(st);
    return 0;
}

int store_open(const struct config *cfg, struct store **out, char *err, size_t cap)
{
    struct store *s;
    if (store_new(cfg, &s) != 0) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    if (store_connect(s, err, cap) != 0) {
        store_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

void store_close(struct store *s)
{
    if (s == NULL)
        return;
    disconnect(s);
    free(s->pending);
    free(s->accs);
    free(s->hacc);
    free(s->scratch);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void store_get_stats(struct store *s, struct store_stats *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->stats;
    pthread_mutex_unlock(&s->lock);
}

sqlite3 *store_db(struct store *s)
{
    return s->db;
}

static int32_t col_val(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? SAMPLE_ABSENT
                                                       : (int32_t)sqlite3_column_int64(st, col);
}

int store_sample_from_row(sqlite3_stmt *st, int col, const char *temp_roles, struct sample *out)
{
    struct sample s;
    sample_init(&s);
    int32_t *nums[] = {&s.voltage_mv,    &s.current_ma, &s.soc_cpct,   &s.soh_cpct,
                       &s.remaining_mah, &s.full_mah,   &s.design_mah, &s.cycles};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        *nums[i] = col_val(st, col + (int)i);
    s.alarms = (uint32_t)sqlite3_column_int64(st, col + 14);
    s.protection = (uint32_t)sqlite3_column_int64(st, col + 15);
    s.state = (uint32_t)sqlite3_column_int64(st, col + 16);
    s.balancing = (uint32_t)sqlite3_column_int64(st, col + 17);
    /* flags_known 0: the pack did not answer the alarm command for this sample; 1 + n: the
     * flags were carried from its read n polls before (ports[].alarms_every) */
    int known = sqlite3_column_int(st, col + 20);
    s.has = known ? SAMPLE_HAS_ANALOG | SAMPLE_HAS_ALARMS | SAMPLE_HAS_BALANCE : SAMPLE_HAS_ANALOG;
    if (known > 1) {
        s.has |= SAMPLE_ALARMS_CARRIED;
        s.alarms_age = (uint16_t)(known - 1 > UINT16_MAX ? UINT16_MAX : known - 1);
    }
    const uint8_t *cells = sqlite3_column_blob(st, col + 18);
    int clen = sqlite3_column_bytes(st, col + 18);
    int32_t base = col_val(st, col + 8);
    if (cells && clen > 1) {
        size_t n = cells[0] == 1 ? (size_t)clen - 1 : ((size_t)clen - 1) / 2;
        if (n > SAMPLE_MAX_CELLS || (cells[0] == 1 && base == SAMPLE_ABSENT))
            return -1;
        for (size_t i = 0; i < n; i++)
            s.cell_mv[i] = cells[0] == 1 ? base + cells[1 + i]
                                         : (int32_t)((cells[1 + 2 * i] << 8) | cells[2 + 2 * i]);
        s.ncells = (uint8_t)n;
    }
    const uint8_t *temps = sqlite3_column_blob(st, col + 19);
    int tlen = sqlite3_column_bytes(st, col + 19);
    for (int i = 0; temps && i + 1 < tlen && s.ntemps < SAMPLE_MAX_TEMPS; i += 2) {
        char r = temp_roles && (size_t)(i / 2) < strlen(temp_roles) ? temp_roles[i / 2] : 'c';
        s.temp_role[s.ntemps] = r == 'm'   ? SAMPLE_TEMP_MOS
                                : r == 'a' ? SAMPLE_TEMP_AMBIENT
                                : r == 'v' ? SAMPLE_TEMP_AVG
                                           : SAMPLE_TEMP_CELL;
        s.temp_dc[s.ntemps++] = (int16_t)((temps[i] << 8) | temps[i + 1]);
    }
    sample_finish(&s);
    *out = s;
    return 0;
}

int store_open_readonly(const char *path, int busy_ms, sqlite3 **out, char *err, size_t cap)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, cap, "cannot open the database %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, cap, "%s is not a database file", path);
        return -1;
    }
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(err, cap, "cannot open the database %s: %s", path,
                 db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, busy_ms); /* the writer holds its lock for one commit at most */
    int version = user_version(db);
    if (version < 0)
        snprintf(err, cap, "cannot read %s: %s", path, sqlite3_errmsg(db));
    else if (version == 0)
        snprintf(err, cap, "%s is not a bmsfleet history (no schema version)", path);
    else if (version > store_schema_version())
        snprintf(err, cap,
                 "%s has schema version %d, newer than this bmsfleet knows (%d): upgrade bmsfleet",
                 path, version, store_schema_version());
    if (version <= 0 || version > store_schema_version()) {
        sqlite3_close(db);
        return -1;
    }
    *out = db;
    return 0;
}
