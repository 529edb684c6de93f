/* store_writer: the writer thread. Batches readings per commit interval, writes them with their
 * hourly rollup deltas, energy counters and events in one transaction, retries a failed batch,
 * and prunes old rows in small steps between commits, folding the pruned samples into the
 * 1-minute rollups. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_internal.h"
#include "thread_name.h"

static int bind_opt(sqlite3_stmt *st, int i, int64_t v, int present)
{
    return present ? sqlite3_bind_int64(st, i, v) : sqlite3_bind_null(st, i);
}

static int bind_val(sqlite3_stmt *st, int i, int32_t v)
{
    return bind_opt(st, i, v, v != SAMPLE_ABSENT);
}

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* The accumulator of (hourly, pack, bucket) in the array *arr (*n used, *cap allocated), added
 * when it is not there; NULL when memory is out. */
static struct acc *acc_find(struct acc **arr, size_t *n, size_t *cap, int hourly, int64_t pack,
                            int64_t bucket)
{
    for (size_t i = *n; i-- > 0;) {
        struct acc *a = &(*arr)[i];
        if (a->hourly == hourly && a->pack == pack && a->bucket == bucket)
            return a;
    }
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 64;
        struct acc *grown = realloc(*arr, c * sizeof *grown);
        if (grown == NULL)
            return NULL;
        *arr = grown;
        *cap = c;
    }
    struct acc *a = &(*arr)[(*n)++];
    memset(a, 0, sizeof *a);
    a->hourly = hourly;
    a->pack = pack;
    a->bucket = bucket;
    a->v_min = a->i_min = a->soc_min = a->cell_min = a->temp_min = INT64_MAX;
    a->v_max = a->i_max = a->soc_max = a->cell_max = a->temp_max = INT64_MIN;
    return a;
}

static struct acc *acc_get(struct store *s, int hourly, int64_t pack, int64_t bucket)
{
    return acc_find(&s->accs, &s->naccs, &s->cap_accs, hourly, pack, bucket);
}

#define MIN_INTO(dst, v) ((dst) = (v) < (dst) ? (v) : (dst))
#define MAX_INTO(dst, v) ((dst) = (v) > (dst) ? (v) : (dst))

static void temp_range(const struct sample *smp, int32_t *lo, int32_t *hi)
{
    *lo = *hi = SAMPLE_ABSENT;
    for (size_t i = 0; i < smp->ntemps; i++) {
        if (*lo == SAMPLE_ABSENT || smp->temp_dc[i] < *lo)
            *lo = smp->temp_dc[i];
        if (*hi == SAMPLE_ABSENT || smp->temp_dc[i] > *hi)
            *hi = smp->temp_dc[i];
    }
}

static void acc_add(struct acc *a, const struct sample *smp, double charge, double discharge)
{
    if (smp->voltage_mv != SAMPLE_ABSENT && smp->current_ma != SAMPLE_ABSENT) {
        a->n++;
        a->v_sum += smp->voltage_mv;
        a->i_sum += smp->current_ma;
        MIN_INTO(a->v_min, smp->voltage_mv);
        MAX_INTO(a->v_max, smp->voltage_mv);
        MIN_INTO(a->i_min, smp->current_ma);
        MAX_INTO(a->i_max, smp->current_ma);
    }
    if (smp->soc_cpct != SAMPLE_ABSENT) {
        a->soc_n++;
        a->soc_sum += smp->soc_cpct;
        MIN_INTO(a->soc_min, smp->soc_cpct);
        MAX_INTO(a->soc_max, smp->soc_cpct);
    }
    if (smp->ncells) {
        MIN_INTO(a->cell_min, smp->cell_min_mv);
        MAX_INTO(a->cell_max, smp->cell_max_mv);
    }
    int32_t lo, hi;
    temp_range(smp, &lo, &hi);
    if (lo != SAMPLE_ABSENT) {
        MIN_INTO(a->temp_min, lo);
        MAX_INTO(a->temp_max, hi);
    }
    a->charge += charge;
    a->discharge += discharge;
}

/* src's deltas added to dst's (the same bucket) */
static void acc_merge(struct acc *dst, const struct acc *src)
{
    dst->n += src->n;
    dst->v_sum += src->v_sum;
    dst->i_sum += src->i_sum;
    dst->soc_n += src->soc_n;
    dst->soc_sum += src->soc_sum;
    MIN_INTO(dst->v_min, src->v_min);
    MAX_INTO(dst->v_max, src->v_max);
    MIN_INTO(dst->i_min, src->i_min);
    MAX_INTO(dst->i_max, src->i_max);
    MIN_INTO(dst->soc_min, src->soc_min);
    MAX_INTO(dst->soc_max, src->soc_max);
    MIN_INTO(dst->cell_min, src->cell_min);
    MAX_INTO(dst->cell_max, src->cell_max);
    MIN_INTO(dst->temp_min, src->temp_min);
    MAX_INTO(dst->temp_max, src->temp_max);
    dst->charge += src->charge;
    dst->discharge += src->discharge;
}

static int write_acc(struct store *s, const struct acc *a)
{
    sqlite3_stmt *st = a->hourly ? s->up_1h : s->up_1m;
    int has_v = a->n > 0, has_soc = a->soc_n > 0;
    sqlite3_bind_int64(st, 1, a->pack);
    sqlite3_bind_int64(st, 2, a->bucket);
    sqlite3_bind_int64(st, 3, a->n);
    bind_opt(st, 4, a->v_sum, 1);
    bind_opt(st, 5, a->v_min, has_v);
    bind_opt(st, 6, a->v_max, has_v);
    bind_opt(st, 7, a->i_sum, 1);
    bind_opt(st, 8, a->i_min, has_v);
    bind_opt(st, 9, a->i_max, has_v);
    bind_opt(st, 10, a->soc_sum, has_soc);
    bind_opt(st, 11, a->soc_min, has_soc);
    bind_opt(st, 12, a->soc_max, has_soc);
    sqlite3_bind_int64(st, 13, a->soc_n);
    bind_opt(st, 14, a->cell_min, a->cell_min != INT64_MAX);
    bind_opt(st, 15, a->cell_max, a->cell_max != INT64_MIN);
    bind_opt(st, 16, a->temp_min, a->temp_min != INT64_MAX);
    bind_opt(st, 17, a->temp_max, a->temp_max != INT64_MIN);
    sqlite3_bind_double(st, 18, a->charge);
    sqlite3_bind_double(st, 19, a->discharge);
    return step_done(st);
}

/* The waiting hourly deltas (s->hacc) and this batch's (s->accs) into rollup_1h, and the mark
 * of the samples they hold: upto, the newest (0: no sample, the mark stays). In the caller's
 * transaction. */
static int write_rollups(struct store *s, int64_t upto)
{
    int rc = SQLITE_OK;
    for (size_t i = 0; i < s->nhacc && rc == SQLITE_OK; i++)
        rc = write_acc(s, &s->hacc[i]);
    for (size_t i = 0; i < s->naccs && rc == SQLITE_OK; i++)
        rc = write_acc(s, &s->accs[i]);
    if (rc == SQLITE_OK && upto > 0) {
        sqlite3_bind_int64(s->up_upto, 1, upto);
        rc = step_done(s->up_upto);
    }
    return rc;
}

/* The waiting hourly deltas alone, in a transaction of their own (before retention, at the
 * end); they stay waiting if it fails (a start would fold their samples anyway). */
static int flush_rollups(struct store *s)
{
    if (s->nhacc == 0 || s->db == NULL)
        return SQLITE_OK;
    s->naccs = 0;
    int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = write_rollups(s, s->hacc_upto);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    s->nhacc = 0;
    s->rollup_written_mono = now_mono_ms();
    return SQLITE_OK;
}

/* This batch's hourly deltas (s->accs, its samples committed up to newest) added to the waiting
 * ones. Room is made first, so that either all of them wait or none does: without memory they
 * go at once, with the waiting ones, in a transaction of their own; should that fail as well,
 * rollup_1h and its mark are left alone from then on (the mark must never pass a sample whose
 * deltas are not in rollup_1h), and the next start folds every sample after the mark. */
static void defer_rollups(struct store *s, int64_t newest)
{
    size_t need = s->nhacc + s->naccs + 1; /* acc_find grows the array when it is full */
    if (need > s->cap_hacc) {
        struct acc *grown = realloc(s->hacc, need * 2 * sizeof *grown);
        if (grown == NULL) {
            int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
            if (rc == SQLITE_OK)
                rc = write_rollups(s, newest > s->hacc_upto ? newest : s->hacc_upto);
            if (rc == SQLITE_OK)
                rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
            if (rc != SQLITE_OK) {
                sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
                s->rollups_stopped = 1;
                log_warn("history: out of memory for the hourly rollups and they cannot be "
                         "written (%s): rollup_1h of %s stops here until the next start, which "
                         "completes it from the samples",
                         sqlite3_errstr(rc), s->path);
            }
            s->nhacc = 0;
            s->rollup_written_mono = now_mono_ms();
            return;
        }
        s->hacc = grown;
        s->cap_hacc = need * 2;
    }
    for (size_t i = 0; i < s->naccs; i++) {
        const struct acc *b = &s->accs[i];
        acc_merge(acc_find(&s->hacc, &s->nhacc, &s->cap_hacc, 1, b->pack, b->bucket), b);
    }
    if (newest > s->hacc_upto)
        s->hacc_upto = newest;
}

static int write_event(struct store *s, int64_t pack, int64_t ts, const char *kind,
                       const char *detail)
{
    sqlite3_bind_int64(s->ins_event, 1, pack);
    sqlite3_bind_int64(s->ins_event, 2, ts);
    sqlite3_bind_text(s->ins_event, 3, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s->ins_event, 4, detail, -1, SQLITE_STATIC);
    return step_done(s->ins_event);
}

/* Events for the alarm and protection bits that changed since the pack's previous sample whose
 * flags were read. A sample without them (the pack did not answer 0x44) says nothing: no
 * "cleared" then, no "raised" again when the flags come back unchanged. */
static int flag_events(struct store *s, struct pack_state *ps, const struct reading *r)
{
    if (!(r->s.has & SAMPLE_HAS_ALARMS))
        return SQLITE_OK;
    const struct {
        uint32_t before, now;
        const char *raised, *cleared;
        const char *(*name)(unsigned);
        unsigned count;
    } sets[] = {{ps->alarms, r->s.alarms, "alarm_raised", "alarm_cleared", sample_alarm_name,
                 SAMPLE_ALARM_COUNT},
                {ps->protection, r->s.protection, "protection_raised", "protection_cleared",
                 sample_prot_name, SAMPLE_PROT_COUNT}};
    int rc = SQLITE_OK;
    for (size_t k = 0; k < 2 && rc == SQLITE_OK; k++) {
        uint32_t changed = ps->have_flags ? sets[k].before ^ sets[k].now : sets[k].now;
        for (unsigned b = 0; b < sets[k].count && rc == SQLITE_OK; b++) {
            if (changed & (1u << b))
                rc = write_event(s, ps->db_id, r->ts_ms,
                                 (sets[k].now >> b) & 1 ? sets[k].raised : sets[k].cleared,
                                 sets[k].name(b));
        }
    }
    ps->alarms = r->s.alarms;
    ps->protection = r->s.protection;
    ps->have_flags = 1;
    return rc;
}

/* mWh (never negative) to whole µWh */
static int64_t uwh(double mwh)
{
    return (int64_t)(mwh * 1000.0 + 0.5);
}

static int write_sample(struct store *s, struct pack_state *ps, const struct reading *r)
{
    const struct sample *m = &r->s;
    sqlite3_stmt *st = s->ins_sample;
    uint8_t cells[1 + 2 * SAMPLE_MAX_CELLS], temps[2 * SAMPLE_MAX_TEMPS];
    size_t ncells = store_cells_blob(m, cells, sizeof cells);
    for (size_t i = 0; i < m->ntemps; i++) {
        temps[2 * i] = (uint8_t)((uint32_t)m->temp_dc[i] >> 8);
        temps[2 * i + 1] = (uint8_t)m->temp_dc[i];
    }
    int32_t tlo, thi;
    temp_range(m, &tlo, &thi);
    /* the step ending at this sample, stored in its row (µWh) for v_minutely and the pruner */
    double charge = 0, discharge = 0;
    int integrated = 0;
    if (m->voltage_mv != SAMPLE_ABSENT && m->current_ma != SAMPLE_ABSENT) {
        int64_t gap = (int64_t)s->cfg->storage.energy_max_gap_s * 1000;
        integrated = energy_step_mono(&ps->energy, r->ts_ms, r->mono_ms,
                                      (double)m->voltage_mv * m->current_ma / 1000.0, gap, &charge,
                                      &discharge);
    }
    sqlite3_bind_int64(st, 1, ps->db_id);
    sqlite3_bind_int64(st, 2, r->ts_ms);
    bind_val(st, 3, m->voltage_mv);
    bind_val(st, 4, m->current_ma);
    bind_val(st, 5, m->soc_cpct);
    bind_val(st, 6, m->soh_cpct);
    bind_val(st, 7, m->remaining_mah);
    bind_val(st, 8, m->full_mah);
    bind_val(st, 9, m->design_mah);
    bind_val(st, 10, m->cycles);
    bind_val(st, 11, m->cell_min_mv);
    bind_val(st, 12, m->cell_max_mv);
    bind_opt(st, 13, m->cell_min_idx, m->ncells > 0);
    bind_opt(st, 14, m->cell_max_idx, m->ncells > 0);
    bind_val(st, 15, tlo);
    bind_val(st, 16, thi);
    sqlite3_bind_int64(st, 17, m->alarms);
    sqlite3_bind_int64(st, 18, m->protection);
    sqlite3_bind_int64(st, 19, m->state);
    sqlite3_bind_int64(st, 20, m->balancing);
    if (ncells)
        sqlite3_bind_blob(st, 21, cells, (int)ncells, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 21);
    if (m->ntemps)
        sqlite3_bind_blob(st, 22, temps, (int)(2 * m->ntemps), SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 22);
    bind_opt(st, 23, uwh(charge), integrated);
    bind_opt(st, 24, uwh(discharge), integrated);
    /* 0 unknown, 1 read with this sample, 1 + n carried from the read n polls before */
    sqlite3_bind_int(st, 25, !(m->has & SAMPLE_HAS_ALARMS)        ? 0
                             : (m->has & SAMPLE_ALARMS_CARRIED) ? 1 + m->alarms_age
                                                                 : 1);
    int rc = step_done(st);
    if (rc != SQLITE_OK)
        return rc;
    ps->batch_last_id = sqlite3_last_insert_rowid(s->db);
    if (ps->batch_min_ts == 0 || r->ts_ms < ps->batch_min_ts)
        ps->batch_min_ts = r->ts_ms;
    if (r->ts_ms > ps->batch_max_ts)
        ps->batch_max_ts = r->ts_ms;

    /* the 1-minute rollup is written when the sample is pruned (retention_fold) */
    int64_t sec = r->ts_ms / 1000;
    struct acc *a = acc_get(s, 1, ps->db_id, sec - sec % 3600);
    if (a == NULL)
        return SQLITE_NOMEM;
    acc_add(a, m, charge, discharge);
    if (!ps->roles_written && m->ntemps) {
        char roles[SAMPLE_MAX_TEMPS + 1];
        store_temp_roles(m, roles, sizeof roles);
        sqlite3_bind_int64(s->up_roles, 1, ps->db_id);
        sqlite3_bind_text(s->up_roles, 2, roles, -1, SQLITE_TRANSIENT);
        if ((rc = step_done(s->up_roles)) != SQLITE_OK)
            return rc;
        ps->roles_written = 1;
    }
    return flag_events(s, ps, r);
}

/* The daemon's row in daemon_runs: inserted at its first write, then its last write once per
 * heartbeat (with a commit, or alone when idle), and at the end its stop, so readers can tell
 * a running daemon from a stopped or vanished one. *id is 0 until the row exists. */
static int run_mark(struct store *s, int64_t *id, int64_t now_ms, int stopping)
{
    sqlite3_stmt *st = *id ? s->up_run : s->ins_run;
    if (*id) {
        sqlite3_bind_int64(st, 1, *id);
        sqlite3_bind_int64(st, 2, now_ms);
        bind_opt(st, 3, now_ms, stopping);
    } else {
        sqlite3_bind_int64(st, 1, s->run_started_ms);
        sqlite3_bind_int64(st, 2, now_ms);
        sqlite3_bind_int(st, 3, HEARTBEAT_S);
        sqlite3_bind_text(st, 4, BMSFLEET_VERSION, -1, SQLITE_STATIC);
    }
    int rc = step_done(st);
    if (rc != SQLITE_OK || *id)
        return rc;
    *id = sqlite3_last_insert_rowid(s->db);
    return stopping ? run_mark(s, id, now_ms, 1) : SQLITE_OK;
}

/* scratch: the configured packs' state as the batch leaves it, from what was committed (the
 * tables are sized for the largest fleet; the rest is never touched, nor resident) */
static void batch_begin(struct store *s)
{
    for (size_t i = 0; i < s->cfg->nports; i++) {
        size_t n = s->cfg->ports[i].npacks;
        memcpy(s->scratch[i], s->packs[i], n * sizeof s->packs[i][0]);
        for (size_t k = 0; k < n; k++)
            s->scratch[i][k].batch_last_id = s->scratch[i][k].batch_min_ts =
                s->scratch[i][k].batch_max_ts = 0;
    }
    s->naccs = 0;
}

/* The batch committed: its packs' state is theirs now. */
static void batch_end(struct store *s)
{
    for (size_t i = 0; i < s->cfg->nports; i++)
        memcpy(s->packs[i], s->scratch[i], s->cfg->ports[i].npacks * sizeof s->packs[i][0]);
}

/* The waiting readings: samples, health events, serial numbers. */
static int write_readings(struct store *s)
{
    int rc = SQLITE_OK;
    for (size_t i = 0; i < s->npending && rc == SQLITE_OK; i++) {
        const struct reading *r = &s->pending[i];
        struct pack_state *ps = &s->scratch[r->port_idx][r->pack_idx];
        if (r->kind == READING_HEALTH) {
            rc = write_event(s, ps->db_id, r->ts_ms, pack_health_name(r->health), r->detail);
        } else if (r->kind == READING_IDENTITY) {
            sqlite3_bind_int64(s->up_serial, 1, ps->db_id);
            if (r->id.serial[0])
                sqlite3_bind_text(s->up_serial, 2, r->id.serial, -1, SQLITE_STATIC);
            else
                sqlite3_bind_null(s->up_serial, 2);
            rc = step_done(s->up_serial);
        } else {
            rc = write_sample(s, ps, r);
        }
    }
    return rc;
}

/* Once per pack and batch: first/last seen and the newest sample (for v_latest), and the
 * energy counters when they moved. */
static int write_pack_rows(struct store *s)
{
    int rc = SQLITE_OK;
    for (size_t i = 0; i < s->cfg->nports && rc == SQLITE_OK; i++) {
        for (size_t k = 0; k < s->cfg->ports[i].npacks && rc == SQLITE_OK; k++) {
            const struct pack_state *ps = &s->scratch[i][k];
            if (ps->batch_last_id == 0)
                continue;
            sqlite3_bind_int64(s->up_seen, 1, ps->db_id);
            sqlite3_bind_int64(s->up_seen, 2, ps->batch_max_ts);
            sqlite3_bind_int64(s->up_seen, 3, ps->batch_min_ts);
            sqlite3_bind_int64(s->up_seen, 4, ps->batch_last_id);
            rc = step_done(s->up_seen);
        }
    }
    for (size_t i = 0; i < s->cfg->nports && rc == SQLITE_OK; i++) {
        for (size_t k = 0; k < s->cfg->ports[i].npacks && rc == SQLITE_OK; k++) {
            const struct pack_state *ps = &s->scratch[i][k];
            const struct pack_state *old = &s->packs[i][k];
            if (!ps->energy.have || (old->energy.have && ps->energy.last_ts == old->energy.last_ts))
                continue;
            sqlite3_bind_int64(s->up_energy, 1, ps->db_id);
            sqlite3_bind_double(s->up_energy, 2, ps->energy.charged_mwh);
            sqlite3_bind_double(s->up_energy, 3, ps->energy.discharged_mwh);
            sqlite3_bind_int64(s->up_energy, 4, ps->energy.last_ts);
            sqlite3_bind_double(s->up_energy, 5, ps->energy.last_power_mw);
            rc = step_done(s->up_energy);
        }
    }
    return rc;
}

/* The newest sample id of the batch: as written (scratch), or as committed (packs). */
static int64_t newest_of(const struct store *s, int committed)
{
    int64_t newest = 0;
    for (size_t i = 0; i < s->cfg->nports; i++) {
        for (size_t k = 0; k < s->cfg->ports[i].npacks; k++) {
            int64_t id = committed ? s->packs[i][k].batch_last_id : s->scratch[i][k].batch_last_id;
            newest = id > newest ? id : newest;
        }
    }
    return newest;
}

/* The whole batch in one transaction; on any error the caller rolls back. */
static int write_batch(struct store *s)
{
    batch_begin(s);
    int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = write_readings(s);
    /* the hourly deltas wait in memory for ROLLUP_FLUSH_MS (in the writer's thread), then go
     * with a commit: each pack's current hour is a row of rollup_1h, every commit rewrote its
     * pages */
    int64_t newest = newest_of(s, 0);
    int64_t mono = now_mono_ms();
    int flush = !s->defer_rollups || mono - s->rollup_written_mono >= ROLLUP_FLUSH_MS;
    if (s->rollups_stopped) { /* until the next start: see defer_rollups() */
        s->nhacc = 0;
        flush = 0;
    }
    if (rc == SQLITE_OK && flush)
        rc = write_rollups(s, newest > s->hacc_upto ? newest : s->hacc_upto);
    if (rc == SQLITE_OK)
        rc = write_pack_rows(s);
    /* the run's row once per heartbeat, not at every commit: its page would be one more
     * written to the WAL and checkpointed at every commit (v_daemon allows two heartbeats) */
    int64_t run_id = s->run_id; /* kept only if the batch commits */
    int mark = s->daemon && (run_id == 0 || mono - s->run_written_mono >= HEARTBEAT_S * 1000);
    if (rc == SQLITE_OK && mark)
        rc = run_mark(s, &run_id, now_wall_ms(), 0);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    batch_end(s);
    if (flush) {
        s->nhacc = 0;
        s->rollup_written_mono = mono;
    } else if (!s->rollups_stopped) {
        defer_rollups(s, newest);
    }
    s->run_id = run_id;
    if (mark)
        s->run_written_mono = mono;
    return SQLITE_OK;
}

/* The outcome of a commit attempt into the stats (what the HTTP server and MQTT's storage
 * state show), and the warning once per outage, the info line when writing works again. rc is
 * SQLite's code; why, SQLite's words or the open's. */
static void note_commit(struct store *s, int rc, const char *why, uint64_t took, int64_t newest)
{
    pthread_mutex_lock(&s->lock);
    if (rc == SQLITE_OK) {
        s->stats.commits++;
        s->stats.committed += s->npending;
        s->stats.commit_ns_total += took;
        if (took > s->stats.commit_ns_max)
            s->stats.commit_ns_max = took;
        if (newest > s->stats.last_sample_id)
            s->stats.last_sample_id = newest;
    } else {
        s->stats.failed_commits++;
    }
    s->stats.failing = rc != SQLITE_OK;
    s->stats.waiting = rc == SQLITE_OK ? 0 : s->npending;
    snprintf(s->stats.error, sizeof s->stats.error, "%.*s", (int)sizeof s->stats.error - 1,
             rc == SQLITE_OK ? "" : why);
    pthread_mutex_unlock(&s->lock);
    if (rc == SQLITE_OK) {
        if (s->failing)
            log_info("history: writing to %s resumed; %zu reading(s) written", s->path,
                     s->npending);
        if (s->outage_dropped)
            log_warn("history: %llu reading(s) were dropped while %s could not be written",
                     (unsigned long long)s->outage_dropped, s->path);
        s->outage_dropped = 0;
        s->failing = 0;
        s->npending = 0;
    } else if (!s->failing) {
        /* a warning: nothing is lost yet (the readings wait in memory, see add_pending) */
        s->failing = 1;
        log_warn("history: cannot write to %s: %s; %zu reading(s) kept in memory, retrying "
                 "every %d s (polling goes on)",
                 s->path, why, s->npending, s->cfg->storage.commit_interval_s);
    }
}

/* The newest sample id of the batch write_batch just committed. */
static int64_t batch_newest(const struct store *s)
{
    return newest_of(s, 1);
}

static void commit_pending(struct store *s)
{
    if (s->npending == 0)
        return;
    if (s->db == NULL) { /* it could not be opened at start: try again */
        char why[320], what[360];
        if (store_connect(s, why, sizeof why) != 0) {
            snprintf(what, sizeof what, "opening it failed: %s", why);
            note_commit(s, SQLITE_CANTOPEN, what, 0, 0);
            return;
        }
    }
    int64_t t0 = now_mono_ns();
    int rc = write_batch(s);
    uint64_t took = (uint64_t)(now_mono_ns() - t0);
    note_commit(s, rc, sqlite3_errstr(rc), took, rc == SQLITE_OK ? batch_newest(s) : 0);
}

static void add_pending(struct store *s, const struct reading *r)
{
    if (s->npending == s->cap_pending) {
        size_t cap = s->cap_pending ? s->cap_pending * 2 : 64;
        struct reading *n = cap <= PENDING_MAX ? realloc(s->pending, cap * sizeof *n) : NULL;
        if (n == NULL) {
            /* memory is full while writing fails: the oldest reading goes (said once per
             * outage; the total when writing resumes) */
            memmove(s->pending, s->pending + 1, (s->npending - 1) * sizeof *s->pending);
            s->npending--;
            if (s->outage_dropped++ == 0)
                log_warn("history: %d readings wait in memory, the most it keeps: the oldest "
                         "are dropped until %s can be written again",
                         PENDING_MAX, s->path);
            pthread_mutex_lock(&s->lock);
            s->stats.dropped++;
            pthread_mutex_unlock(&s->lock);
        } else {
            s->pending = n;
            s->cap_pending = cap;
        }
    }
    s->pending[s->npending++] = *r;
}

static int64_t q_int64(sqlite3 *db, const char *sql, int64_t pack, int64_t cut, int64_t dflt)
{
    sqlite3_stmt *st;
    int64_t v = dflt;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return dflt;
    sqlite3_bind_int64(st, 1, pack);
    sqlite3_bind_int64(st, 2, cut);
    sqlite3_bind_int(st, 3, RETENTION_BATCH);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The batch of one pack's samples older than cut (whole minutes, in (ts, id) order), as the
 * statements below select it. */
#define PRUNE_BATCH "SELECT id FROM samples WHERE pack = ?1 AND ts < ?2 ORDER BY ts, id LIMIT ?3"

/* Where the batch of one pack's samples older than cut ends: before the minute of its first
 * row left out, unless one minute holds a whole batch (then that minute is split). */
static int64_t batch_cut(struct store *s, int64_t pack, int64_t cut)
{
    int64_t next = q_int64(s->db,
                           "SELECT ts FROM samples WHERE pack = ?1 AND ts < ?2 ORDER BY ts, id"
                           " LIMIT 1 OFFSET ?3",
                           pack, cut, -1);
    if (next >= 0) {
        int64_t first = q_int64(s->db,
                                "SELECT min(ts) FROM samples WHERE pack = ?1 AND ts < ?2",
                                pack, cut, 0);
        if (first < next / 60000 * 60000) /* else one minute holds a whole batch: split it */
            cut = next / 60000 * 60000;
    }
    return cut;
}

/* The batch's rows into the 1-minute accumulators (s->accs), the minutes older than min_cut
 * (s) left out; *n counts every row read. SQLITE_OK or the error. */
static int fold_rows(struct store *s, int64_t pack, int64_t cut, int64_t min_cut, int64_t *n)
{
    sqlite3_stmt *sel = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT ts, charge_uwh, discharge_uwh, " STORE_SAMPLE_COLUMNS
                                " FROM samples WHERE pack = ?1"
                                " AND ts < ?2 ORDER BY ts, id LIMIT ?3",
                                -1, &sel, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(sel, 1, pack);
    sqlite3_bind_int64(sel, 2, cut);
    sqlite3_bind_int(sel, 3, RETENTION_BATCH);
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
        int64_t ts = sqlite3_column_int64(sel, 0);
        struct sample m;
        (*n)++;
        if (store_sample_from_row(sel, 3, NULL, &m) != 0)
            continue; /* not a row this writer wrote: nothing to fold */
        /* the energy the writer integrated (µWh while summing: exact, as v_minutely sums) */
        double charge = (double)sqlite3_column_int64(sel, 1);
        double discharge = (double)sqlite3_column_int64(sel, 2);
        int64_t sec = ts / 1000;
        if (sec - sec % 60 < min_cut)
            continue;
        struct acc *a = acc_get(s, 0, pack, sec - sec % 60);
        if (a == NULL) {
            rc = SQLITE_NOMEM;
            break;
        }
        acc_add(a, &m, charge, discharge);
    }
    sqlite3_finalize(sel);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* The folded minutes into rollup_1m (mWh), then the batch deleted: exactly the n rows folded,
 * else an error. SQLITE_OK or the error. */
static int write_fold(struct store *s, int64_t pack, int64_t cut, int64_t n)
{
    sqlite3_stmt *del = NULL;
    int rc = SQLITE_OK;
    for (size_t i = 0; i < s->naccs && rc == SQLITE_OK; i++) {
        s->accs[i].charge /= 1000.0; /* µWh to mWh */
        s->accs[i].discharge /= 1000.0;
        rc = write_acc(s, &s->accs[i]);
    }
    if (rc == SQLITE_OK &&
        (rc = sqlite3_prepare_v2(s->db, "DELETE FROM samples WHERE id IN (" PRUNE_BATCH ")", -1,
                                 &del, NULL)) == SQLITE_OK) {
        sqlite3_bind_int64(del, 1, pack);
        sqlite3_bind_int64(del, 2, cut);
        sqlite3_bind_int(del, 3, RETENTION_BATCH);
        rc = step_done(del);
        if (rc == SQLITE_OK && sqlite3_changes(s->db) != n)
            rc = SQLITE_ERROR; /* not the rows folded: a bug, never commit it */
    }
    sqlite3_finalize(del);
    return rc;
}

/* One savepoint of the step's transaction: folds a batch of one pack's samples older than cut
 * (ms, a whole minute) into rollup_1m and deletes exactly them. The batch ends on a minute
 * boundary when it can, so a reader between two steps never sees a minute half in rollup_1m
 * and half in samples. A minute's energy is the sum of its rows' increments (charge_uwh,
 * discharge_uwh, written by the writer's energy_step), as v_minutely sums them, so the minutes
 * keep the energy the view showed. (energy.prune_ts / prune_power_mw only served migration
 * 004's backfill.) Minutes older than min_cut (s) are not written: the 1-minute retention
 * would delete them at once. Returns the samples deleted (*lost: of them, not yet delivered to
 * MQTT), or -1. */
static int64_t retention_fold(struct store *s, int64_t pack, int64_t cut, int64_t min_cut,
                              int64_t *lost)
{
    int64_t n = 0;
    int rc = sqlite3_exec(s->db, "SAVEPOINT fold", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return -1;
    cut = batch_cut(s, pack, cut);
    *lost = q_int64(s->db,
                    "SELECT count(*) FROM (" PRUNE_BATCH ") WHERE id > (SELECT value FROM meta"
                    " WHERE key = '" STORE_MQTT_CURSOR_KEY "')",
                    pack, cut, 0);
    s->naccs = 0;
    rc = fold_rows(s, pack, cut, min_cut, &n);
    if (rc == SQLITE_OK)
        rc = write_fold(s, pack, cut, n);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "RELEASE fold", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_exec(s->db, "ROLLBACK TO fold", NULL, NULL, NULL);
        sqlite3_exec(s->db, "RELEASE fold", NULL, NULL, NULL);
        log_warn("history: retention could not fold old samples into rollup_1m: %s",
                 sqlite3_errstr(rc));
        return -1;
    }
    return n;
}

/* One small step of retention: at most RETENTION_BATCH rows per pack and table. Returns the
 * rows deleted; *more says whether another step has work. */
static int64_t retention_step(struct store *s, int64_t now, int *more)
{
    const struct config_storage *c = &s->cfg->storage;
    /* whole minutes only: a minute is either folded or kept, never split */
    int64_t raw_cut = now - (int64_t)c->raw_days * 86400000;
    raw_cut -= (raw_cut % 60000 + 60000) % 60000;
    int64_t min_cut = now / 1000 - (int64_t)c->minute_days * 86400;
    int64_t deleted = 0, lost = 0;
    *more = 0;
    /* every pack's batch in one transaction: a leaf of samples holds rows of every pack (they
     * are in time order), so a transaction per pack wrote each leaf once per pack, to the WAL
     * and again at the checkpoint */
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return 0;
    for (size_t i = 0; i < s->cfg->nports; i++) {
        for (size_t k = 0; k < s->cfg->ports[i].npacks; k++) {
            int64_t l = 0, n = retention_fold(s, s->packs[i][k].db_id, raw_cut, min_cut, &l);
            if (n > 0) {
                deleted += n;
                lost += l;
                *more = 1; /* the next step finds out whether there is more */
            }
        }
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "DELETE FROM rollup_1m WHERE pack = ?1 AND bucket IN (SELECT bucket"
                           " FROM rollup_1m WHERE pack = ?1 AND bucket < ?2 LIMIT ?3)",
                           -1, &st, NULL) == SQLITE_OK) {
        for (size_t i = 0; i < s->cfg->nports; i++) {
            for (size_t k = 0; k < s->cfg->ports[i].npacks; k++) {
                sqlite3_bind_int64(st, 1, s->packs[i][k].db_id);
                sqlite3_bind_int64(st, 2, min_cut);
                sqlite3_bind_int(st, 3, RETENTION_BATCH);
                if (step_done(st) == SQLITE_OK) {
                    int n = sqlite3_changes(s->db);
                    deleted += n;
                    *more |= n == RETENTION_BATCH;
                }
            }
        }
        sqlite3_finalize(st);
    }
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        log_warn("history: retention could not commit: %s", sqlite3_errmsg(s->db));
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        *more = 0;
        return 0;
    }
    /* samples MQTT has not delivered yet (an outage longer than raw_days) are lost: say so */
    if (lost) {
        pthread_mutex_lock(&s->lock);
        s->stats.pruned_undelivered += (uint64_t)lost;
        pthread_mutex_unlock(&s->lock);
        log_warn("history: retention deletes %lld sample(s) older than %d days that were "
                 "never delivered to MQTT (the broker has been unreachable that long)",
                 (long long)lost, c->raw_days);
    }
    if (deleted) {
        sqlite3_exec(s->db, "PRAGMA incremental_vacuum(" VACUUM_PAGES_STR ")", NULL, NULL, NULL);
        pthread_mutex_lock(&s->lock);
        s->stats.pruned += (uint64_t)deleted;
        pthread_mutex_unlock(&s->lock);
        log_debug("history: retention removed %lld row(s)", (long long)deleted);
    }
    return deleted;
}

int store_prune_now(struct store *s, int64_t now_ms, uint64_t *deleted)
{
    int more = 1;
    uint64_t total = 0;
    while (more)
        total += (uint64_t)retention_step(s, now_ms, &more);
    /* give the rest of the free pages back too */
    int rc = sqlite3_exec(s->db, "PRAGMA incremental_vacuum", NULL, NULL, NULL);
    if (deleted)
        *deleted = total;
    return rc == SQLITE_OK ? 0 : -1;
}

int store_write_now(struct store *s, const struct reading *r, size_t n)
{
    if (s->running)
        return -EBUSY;
    if (s->scratch == NULL && (s->scratch = malloc(sizeof s->packs)) == NULL)
        return -ENOMEM;
    /* in chunks that fit the pending buffer: one transaction per chunk */
    for (size_t i = 0; i < n;) {
        size_t chunk = n - i < PENDING_MAX / 2 ? n - i : PENDING_MAX / 2;
        for (size_t k = 0; k < chunk; k++)
            add_pending(s, &r[i + k]);
        commit_pending(s);
        if (s->npending)
            return -EIO;
        i += chunk;
    }
    return 0;
}

static void *writer_main(void *arg)
{
    struct store *s = arg;
    int rc = thread_name_set("store", NULL);
    if (rc)
        log_debug("history: cannot name the writer thread (%d)", rc);
    int64_t interval = (int64_t)s->cfg->storage.commit_interval_s * 1000;
    int64_t last_commit = now_mono_ms();
    for (;;) {
        int64_t now = now_mono_ms();
        progress_beat(&s->progress, now);
        /* The readings wait in the queue until the commit (or until a quarter of it is full):
         * one wake-up per commit, not one per reading. At most a second asleep: the
         * supervisor sees the thread turn, and a stop is noticed (the queue is closed). */
        int64_t left = last_commit + interval - now;
        int got = queue_wait(s->q, WRITER_BATCH, left <= 0 ? 0 : left > 1000 ? 1000 : (int)left);
        struct reading r;
        while (got == 0 && (got = queue_pop(s->q, &r, 0)) == 0)
            add_pending(s, &r);
        now = now_mono_ms();
        if (got == -ESHUTDOWN)
            break;
        if (now - last_commit >= interval) {
            commit_pending(s);
            last_commit = now;
        }
        /* idle (every pack offline) or a long commit interval: readers still see it is alive;
         * while commits fail, the next one that works writes the row (a failed heartbeat is
         * tried again a heartbeat later, not at every turn) */
        if (!s->failing && s->db && now - s->run_written_mono >= HEARTBEAT_S * 1000) {
            run_mark(s, &s->run_id, now_wall_ms(), 0);
            s->run_written_mono = now;
        }
        if (!s->failing && s->db && (s->retention_busy || now >= s->next_retention_ms) &&
            flush_rollups(s) == SQLITE_OK) { /* a sample is in rollup_1h before it can go */
            int more;
            retention_step(s, now_wall_ms(), &more);
            s->retention_busy = more;
            if (!more)
                s->next_retention_ms = now + RETENTION_EVERY_MS;
        }
    }
    commit_pending(s);
    if (s->npending)
        log_error("history: %zu reading(s) could not be written to %s before exit",
                  s->npending, s->path);
    if (flush_rollups(s) != SQLITE_OK && !s->failing)
        log_warn("history: cannot write the hourly rollups to %s (the next start folds their "
                 "samples): %s", s->path, sqlite3_errmsg(s->db));
    if (s->db && run_mark(s, &s->run_id, now_wall_ms(), 1) != SQLITE_OK && !s->failing)
        log_warn("history: cannot record the daemon's stop in %s: %s", s->path,
                 sqlite3_errmsg(s->db));
    return NULL;
}

int store_start(struct store *s, struct queue *q)
{
    if (s->scratch == NULL && (s->scratch = malloc(sizeof s->packs)) == NULL)
        return -ENOMEM;
    s->q = q;
    progress_init(&s->progress, "history writer", WRITER_TURN_LIMIT_MS, now_mono_ms());
    /* the run is recorded at once when the database is open, else at its first commit */
    s->daemon = 1;
    s->defer_rollups = 1;
    s->rollup_written_mono = now_mono_ms();
    s->run_started_ms = now_wall_ms();
    if (s->db && run_mark(s, &s->run_id, s->run_started_ms, 0) == SQLITE_OK)
        s->run_written_mono = now_mono_ms();
    int err = pthread_create(&s->thread, NULL, writer_main, s);
    if (err)
        return -err;
    s->running = 1;
    return 0;
}

const struct progress *store_progress(const struct store *s)
{
    return &s->progress;
}

void store_stop(struct store *s)
{
    if (s && s->running) {
        pthread_join(s->thread, NULL);
        s->running = 0;
        s->daemon = 0; /* its stop is recorded: later tool writes leave the row alone */
        s->defer_rollups = 0;
    }
}

int store_rollup_recover(struct store *s, char *err, size_t cap)
{
    sqlite3_stmt *sel = NULL;
    int64_t last = 0;
    int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db,
                                "SELECT id, ts, pack, charge_uwh, discharge_uwh, "
                                STORE_SAMPLE_COLUMNS " FROM samples WHERE id > coalesce((SELECT"
                                " value FROM meta WHERE key = 'rollup_1h_upto'), 0) ORDER BY id",
                                -1, &sel, NULL);
    s->naccs = 0;
    while (rc == SQLITE_OK && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
        struct sample m;
        last = sqlite3_column_int64(sel, 0);
        if (store_sample_from_row(sel, 5, NULL, &m) != 0) {
            rc = SQLITE_OK;
            continue; /* not a row this writer wrote: nothing to fold */
        }
        int64_t sec = sqlite3_column_int64(sel, 1) / 1000;
        struct acc *a = acc_get(s, 1, sqlite3_column_int64(sel, 2), sec - sec % 3600);
        if (a == NULL) {
            rc = SQLITE_NOMEM;
            break;
        }
        /* the steps as the rows keep them, rounded to µWh: the hours of a run that ended
         * without writing them differ from the energy counters by that rounding (at most
         * 0.5 µWh per sample; the writer's own deltas are not rounded) */
        acc_add(a, &m, (double)sqlite3_column_int64(sel, 3) / 1000.0,
                (double)sqlite3_column_int64(sel, 4) / 1000.0);
        rc = SQLITE_OK;
    }
    if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
    sqlite3_finalize(sel);
    size_t folded = s->naccs;
    for (size_t i = 0; i < s->naccs && rc == SQLITE_OK; i++)
        rc = write_acc(s, &s->accs[i]);
    if (rc == SQLITE_OK && last > 0) {
        sqlite3_bind_int64(s->up_upto, 1, last);
        rc = step_done(s->up_upto);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    s->naccs = 0;
    if (rc != SQLITE_OK) {
        snprintf(err, cap, "cannot fold the samples after the hourly rollups: %s",
                 sqlite3_errmsg(s->db));
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    if (folded)
        log_info("history: %zu hourly rollup(s) completed from the samples written after them "
                 "(the last run ended without writing them)", folded);
    s->nhacc = 0;
    s->hacc_upto = 0;
    s->rollups_stopped = 0; /* every sample after the mark is in rollup_1h again */
    return 0;
}
