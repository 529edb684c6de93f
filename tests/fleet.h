/* fleet: the rig of the fault soak, header-only (needs cmocka, and _GNU_SOURCE for nftw).
 * PORTS simulators, each with PACKS packs, a seeded fault mix and a log of every analog request
 * (`bmsfleet simulate --mix --log --unpaced`); the real daemon over them with its SQLite history
 * (and MQTT when a broker port is given); and the checker, which holds what the history kept and
 * what the daemon counted against what the simulators logged:
 *   - every stored sample equals, in order, the valid answers logged for its pack: nothing
 *     stored that was not sent in a valid frame, no valid answer missing;
 *   - the rows of each port are in the order the simulator answered (ids: the insert order,
 *     the MQTT replay's order), whatever the wall clock did;
 *   - the daemon's counters (its shutdown log line per pack) equal the faults of each class;
 *   - every pack was still polled at the end.
 * A simulator descheduled past the daemon's timeout sees the next request before it answers:
 * it sends nothing then and logs "stalled", which the daemon counts as the timeout it was.
 * The daemon is stopped before the simulators, so a simulator may have logged one request of
 * each port that the daemon abandoned at the stop (not counted, nothing stored): that one is
 * left out of the comparison and reported. Used by test_fault_soak (issue 16, item 2),
 * test_clock (item 7) and test_rss (item 8). */
#ifndef BMSFLEET_TEST_FLEET_H
#define BMSFLEET_TEST_FLEET_H

#include <ftw.h>
#include <inttypes.h>
#include <sqlite3.h>

#include "proc.h"
#include "sample.h"
#include "sim.h"

#define FLEET_MAX_PORTS 16
#define FLEET_MAX_PACKS 32
/* the longest a failing pack waits between polls: 8 intervals of 1 s, plus timeouts */
#define FLEET_POLL_GAP_MS 10000

struct fleet_entry {
    int64_t ms;   /* the simulator's wall clock when it answered */
    uint8_t kind; /* enum sim_mix_kind */
    char *values; /* sim_log_values of the valid answer, NULL when none reached the client */
    size_t line;  /* its place in the port's log */
    int64_t row;  /* the id of the row that stored it (fleet_check), 0: none */
};

struct fleet_row {
    int64_t id, ts;
    char *values;
};

struct fleet_pack {
    char id[32];
    struct fleet_entry *log;
    size_t nlog, caplog;
    struct fleet_row *rows;
    size_t nrows, caprows;
    int have_stats;
    unsigned long long polls, ok, timeouts, checksum, malformed, refused, foreign;
};

struct fleet {
    /* set by the caller before fleet_start */
    int ports, packs, timeout_ms, mqtt_port;
    const char *mix;
    uint64_t seed;
    /* the rig */
    char dir[64], cfg[128], db[128], out[128], err[128];
    char link[FLEET_MAX_PORTS][128], log[FLEET_MAX_PORTS][128];
    pid_t sim[FLEET_MAX_PORTS], daemon;
    long watched[FLEET_MAX_PORTS]; /* fleet_faults: bytes of each log counted so far */
    unsigned long long faults;
    int64_t start_ms, stop_ms;
    int daemon_status;
    struct fleet_pack pack[FLEET_MAX_PORTS][FLEET_MAX_PACKS];
    unsigned last_address[FLEET_MAX_PORTS]; /* of each port's last logged request */
};

/* What fleet_check compared. */
struct fleet_tally {
    unsigned long long kinds[SIM_MIX__COUNT];
    unsigned long long requests, faults, inflight, samples, mismatches;
    unsigned long long polls, ok, timeouts, checksum, malformed, refused, foreign;
};

static inline int64_t fleet_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the rig ---- */

static inline void fleet_write_config(const struct fleet *f)
{
    FILE *c = fopen(f->cfg, "w");
    assert_non_null(c);
    fprintf(c, "node: { id: fleet }\nlog: { level: info }\nports:\n");
    for (int k = 0; k < f->ports; k++) {
        fprintf(c,
                "  - name: p%d\n    device: %s\n    protocol: daren\n    baud: 115200\n"
                "    timeout_ms: %d\n    gap_ms: 0\n    interval_s: 1\n    packs:\n",
                k, f->link[k], f->timeout_ms);
        for (int a = 1; a <= f->packs; a++)
            fprintf(c, "      - { address: %d, id: %s }\n", a, f->pack[k][a - 1].id);
    }
    fprintf(c, "storage:\n  path: %s\n  commit_interval_s: 1\n", f->db);
    if (f->mqtt_port > 0)
        fprintf(c, "mqtt:\n  host: 127.0.0.1\n  port: %d\n  client_id: fleet\n  keepalive_s: 5\n",
                f->mqtt_port);
    assert_int_equal(fclose(c), 0);
}

/* The directory, the simulators (their links exist when it returns) and the configuration. */
static inline void fleet_start(struct fleet *f)
{
    assert_true(f->ports >= 1 && f->ports <= FLEET_MAX_PORTS);
    assert_true(f->packs >= 1 && f->packs <= FLEET_MAX_PACKS);
    snprintf(f->dir, sizeof f->dir, "/tmp/bmsfleet-test-fleet-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->cfg, sizeof f->cfg, "%s/config.yaml", f->dir);
    snprintf(f->db, sizeof f->db, "%s/history.db", f->dir);
    snprintf(f->out, sizeof f->out, "%s/daemon.out", f->dir);
    snprintf(f->err, sizeof f->err, "%s/daemon.err", f->dir);
    char addrs[16], seed[32];
    snprintf(addrs, sizeof addrs, "1-%d", f->packs);
    for (int k = 0; k < f->ports; k++) {
        snprintf(f->link[k], sizeof f->link[k], "%s/bus%d", f->dir, k);
        snprintf(f->log[k], sizeof f->log[k], "%s/sim%d.log", f->dir, k);
        snprintf(seed, sizeof seed, "%" PRIu64, f->seed + (uint64_t)k);
        for (int a = 1; a <= f->packs; a++)
            snprintf(f->pack[k][a - 1].id, sizeof f->pack[k][a - 1].id, "f%da%d", k & 0xFF,
                     a & 0xFF);
        const char *extra[] = {"--protocol",   "daren",   "--addresses", addrs,          "--seed",
                               seed,           "--baud",  "115200",      "--time-scale", "60",
                               "--turnaround", "0",       "--unpaced",   "--mix",        f->mix,
                               "--log",        f->log[k], NULL};
        f->sim[k] = proc_start_sim(BMSFLEET_BIN, f->link[k], extra);
        assert_true(f->sim[k] > 0);
    }
    fleet_write_config(f);
}

/* The daemon, with whatever environment the caller set. */
static inline void fleet_start_daemon(struct fleet *f)
{
    char *argv[] = {(char *)BMSFLEET_BIN, (char *)"run", (char *)"-c", f->cfg, NULL};
    f->start_ms = fleet_wall_ms();
    f->daemon = proc_spawn(argv, f->out, f->err);
    assert_true(f->daemon > 0);
}

/* The kind of a log line (its 4th field), or -1 for the header or a line cut short. */
static inline int fleet_line_kind(const char *line, size_t len)
{
    const char *p = line;
    for (int tabs = 0; tabs < 3; tabs++) {
        const char *t = memchr(p, '\t', len - (size_t)(p - line));
        if (t == NULL || line[0] == '#')
            return -1;
        p = t + 1;
    }
    const char *end = memchr(p, '\t', len - (size_t)(p - line));
    return end ? sim_mix_kind_of(p, (size_t)(end - p)) : -1;
}

/* Faults the simulators logged so far (their logs are written as the stdio buffer fills). */
static inline unsigned long long fleet_faults(struct fleet *f)
{
    char buf[65536];
    for (int k = 0; k < f->ports; k++) {
        FILE *l = fopen(f->log[k], "r");
        if (l == NULL)
            continue;
        if (fseek(l, f->watched[k], SEEK_SET) == 0) {
            size_t n;
            while ((n = fread(buf, 1, sizeof buf, l)) > 0) {
                size_t used = 0;
                for (char *nl; (nl = memchr(buf + used, '\n', n - used)) != NULL;) {
                    int kind = fleet_line_kind(buf + used, (size_t)(nl - buf) - used);
                    f->faults += kind > SIM_MIX_CLEAN && kind < SIM_MIX_STALLED;
                    used = (size_t)(nl - buf) + 1;
                }
                f->watched[k] += (long)used;
                if (used < n) /* a line cut short: read it again next time */
                    break;
            }
        }
        fclose(l);
    }
    return f->faults;
}

/* Runs until the simulators logged `target` faults or max_ms went by; fails when the daemon
 * exits meanwhile. Returns the faults logged. */
static inline unsigned long long fleet_run(struct fleet *f, unsigned long long target,
                                           long long max_ms)
{
    long long deadline = proc_now_ms() + max_ms;
    while (fleet_faults(f) < target && proc_now_ms() < deadline) {
        int st;
        if (waitpid(f->daemon, &st, WNOHANG) == f->daemon) {
            f->daemon = 0;
            print_error("the daemon exited during the soak\n");
            fail();
        }
        usleep(200000);
    }
    return f->faults;
}

/* SIGTERM to the daemon (its counters are logged as it stops), then to the simulators (their
 * logs are written out). */
static inline void fleet_stop(struct fleet *f)
{
    f->stop_ms = fleet_wall_ms();
    if (f->daemon > 0)
        f->daemon_status = proc_stop(f->daemon);
    f->daemon = 0;
    for (int k = 0; k < f->ports; k++) {
        if (f->sim[k] > 0)
            assert_int_equal(proc_stop(f->sim[k]), 0); /* 1: its log could not be written */
        f->sim[k] = 0;
    }
}

static inline int fleet_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Stops what still runs, frees, and removes the directory (kept with BMSFLEET_SOAK_KEEP). */
static inline void fleet_free(struct fleet *f)
{
    if (f->daemon > 0)
        proc_stop(f->daemon);
    for (int k = 0; k < f->ports; k++)
        if (f->sim[k] > 0)
            proc_stop(f->sim[k]);
    for (int k = 0; k < FLEET_MAX_PORTS; k++) {
        for (int a = 0; a < FLEET_MAX_PACKS; a++) {
            struct fleet_pack *p = &f->pack[k][a];
            for (size_t i = 0; i < p->nlog; i++)
                free(p->log[i].values);
            for (size_t i = 0; i < p->nrows; i++)
                free(p->rows[i].values);
            free(p->log);
            free(p->rows);
        }
    }
    if (f->dir[0] && getenv("BMSFLEET_SOAK_KEEP"))
        print_message("kept %s\n", f->dir);
    else if (f->dir[0])
        nftw(f->dir, fleet_rm, 16, FTW_DEPTH | FTW_PHYS);
    memset(f, 0, sizeof *f);
}

/* ---- what happened ---- */

static inline void *fleet_grow(void *p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return p;
    size_t c = *cap ? *cap * 2 : 256;
    void *q = realloc(p, c * size);
    assert_non_null(q);
    *cap = c;
    return q;
}

static inline char *fleet_strdup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    assert_non_null(d);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* One simulator's log: "ms \t address \t n \t kind \t values-or-dash". */
static inline void fleet_load_log(struct fleet *f, int k)
{
    char *text = proc_slurp(f->log[k]);
    assert_non_null(text);
    size_t lines = 0;
    for (char *line = text, *nl; *line; line = nl + 1, lines++) {
        nl = strchr(line, '\n');
        assert_non_null(nl); /* the simulator wrote whole lines */
        *nl = '\0';
        if (line[0] == '#')
            continue;
        long long ms;
        unsigned addr;
        unsigned long long n;
        int used = 0;
        char kind[16];
        assert_int_equal(sscanf(line, "%lld\t%u\t%llu\t%15[a-z]\t%n", &ms, &addr, &n, kind, &used),
                         4);
        int kd = sim_mix_kind_of(kind, strlen(kind));
        assert_true(kd >= 0 && addr >= 1 && addr <= (unsigned)f->packs && used > 0);
        struct fleet_pack *p = &f->pack[k][addr - 1];
        assert_int_equal(n, p->nlog + 1); /* its own count of the pack's requests */
        p->log = fleet_grow(p->log, &p->caplog, p->nlog, sizeof *p->log);
        struct fleet_entry *e = &p->log[p->nlog++];
        e->ms = ms;
        e->line = lines;
        e->row = 0;
        e->kind = (uint8_t)kd;
        e->values = kd <= SIM_MIX_MASTER ? fleet_strdup(line + used, strlen(line + used)) : NULL;
        f->last_address[k] = addr;
    }
    free(text);
}

/* The daemon's shutdown line of each pack: "pack ID: HEALTH, N polls, N ok, ...". */
static inline void fleet_load_stats(struct fleet *f)
{
    char *text = proc_slurp(f->err);
    assert_non_null(text);
    for (int k = 0; k < f->ports; k++) {
        for (int a = 0; a < f->packs; a++) {
            struct fleet_pack *p = &f->pack[k][a];
            char key[48];
            snprintf(key, sizeof key, "pack %s: ", p->id);
            const char *at = strstr(text, key);
            p->have_stats =
                at != NULL &&
                sscanf(at + strlen(key),
                       "%*[a-z], %llu polls, %llu ok, %llu timeouts, %llu checksum errors, "
                       "%llu malformed, %llu refused, %llu foreign",
                       &p->polls, &p->ok, &p->timeouts, &p->checksum, &p->malformed, &p->refused,
                       &p->foreign) == 7;
        }
    }
    free(text);
}

static inline int32_t fleet_col(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? SAMPLE_ABSENT
                                                     : (int32_t)sqlite3_column_int64(st, i);
}

/* A stored row back into the values of a sample (the store's cells and temps blobs). */
static inline void fleet_row_sample(sqlite3_stmt *st, struct sample *s)
{
    sample_init(s);
    int32_t *v[] = {&s->voltage_mv,    &s->current_ma, &s->soc_cpct,   &s->soh_cpct,
                    &s->remaining_mah, &s->full_mah,   &s->design_mah, &s->cycles};
    for (int i = 0; i < 8; i++)
        *v[i] = fleet_col(st, 3 + i);
    int32_t cell_min = fleet_col(st, 11);
    const uint8_t *c = sqlite3_column_blob(st, 12);
    int nc = sqlite3_column_bytes(st, 12);
    if (c != NULL && nc > 1) {
        int wide = c[0] == 2;
        for (int i = 1; i + wide < nc && s->ncells < SAMPLE_MAX_CELLS; i += 1 + wide)
            s->cell_mv[s->ncells++] = wide ? (c[i] << 8 | c[i + 1]) : cell_min + c[i];
    }
    const uint8_t *t = sqlite3_column_blob(st, 13);
    int nt = sqlite3_column_bytes(st, 13);
    for (int i = 0; t != NULL && i + 1 < nt && s->ntemps < SAMPLE_MAX_TEMPS; i += 2)
        s->temp_dc[s->ntemps++] = (int16_t)(t[i] << 8 | t[i + 1]);
}

static inline struct fleet_pack *fleet_find(struct fleet *f, const char *id)
{
    int k, a;
    if (sscanf(id, "f%da%d", &k, &a) != 2 || k < 0 || k >= f->ports || a < 1 || a > f->packs)
        return NULL;
    return &f->pack[k][a - 1];
}

static inline void fleet_load_rows(struct fleet *f)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT p.pack_id, s.id, s.ts, s.voltage_mv, s.current_ma, s.soc_cpct,"
                           " s.soh_cpct, s.remaining_mah, s.full_mah, s.design_mah, s.cycles,"
                           " s.cell_min_mv, s.cells, s.temps"
                           " FROM samples s JOIN packs p ON p.id = s.pack ORDER BY s.id",
                           -1, &st, NULL),
        SQLITE_OK);
    int rc;
    char values[1024];
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct fleet_pack *p = fleet_find(f, (const char *)sqlite3_column_text(st, 0));
        assert_non_null(p);
        struct sample s;
        fleet_row_sample(st, &s);
        int n = sim_log_values(&s, values, sizeof values);
        assert_true(n > 0 && (size_t)n < sizeof values);
        p->rows = fleet_grow(p->rows, &p->caprows, p->nrows, sizeof *p->rows);
        p->rows[p->nrows++] =
            (struct fleet_row){sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
                               fleet_strdup(values, (size_t)n)};
    }
    assert_int_equal(rc, SQLITE_DONE);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* Everything the run left: the logs, the daemon's counters, the history. */
static inline void fleet_load(struct fleet *f)
{
    for (int k = 0; k < f->ports; k++)
        fleet_load_log(f, k);
    fleet_load_stats(f);
    fleet_load_rows(f);
}

/* ---- the checks ---- */

static inline void fleet_mismatch(struct fleet_tally *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void fleet_mismatch(struct fleet_tally *t, const char *fmt, ...)
{
    if (t->mismatches++ < 20) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        print_error("fleet: %s\n", msg);
    }
}

static inline void fleet_expect(struct fleet_tally *t, const struct fleet_pack *p, const char *what,
                                unsigned long long daemon, unsigned long long sent)
{
    if (daemon != sent)
        fleet_mismatch(t, "pack %s: the daemon counted %llu %s, the simulator caused %llu", p->id,
                       daemon, what, sent);
}

/* One pack: its counters and its stored samples against the first `polls` logged requests. */
static inline void fleet_check_pack(struct fleet *f, int k, int a, struct fleet_tally *t)
{
    struct fleet_pack *p = &f->pack[k][a];
    if (!p->have_stats) {
        fleet_mismatch(t, "pack %s: no counters in the daemon's log", p->id);
        return;
    }
    size_t polls = (size_t)p->polls;
    int last = f->last_address[k] == (unsigned)a + 1;
    if (polls > p->nlog || polls + (last ? 1 : 0) < p->nlog) {
        fleet_mismatch(t, "pack %s: the daemon counted %llu polls, the simulator logged %zu", p->id,
                       p->polls, p->nlog);
        return;
    }
    t->inflight += p->nlog - polls;
    unsigned long long n[SIM_MIX__COUNT] = {0};
    size_t row = 0;
    for (size_t i = 0; i < p->nlog; i++) {
        struct fleet_entry *e = &p->log[i];
        t->kinds[e->kind]++;
        if (i >= polls || e->values == NULL) {
            n[e->kind] += i < polls;
            continue;
        }
        n[e->kind]++;
        if (row >= p->nrows)
            fleet_mismatch(t, "pack %s: request %zu (%s) answered validly, not stored", p->id,
                           i + 1, sim_mix_name(e->kind));
        else if (strcmp(p->rows[row].values, e->values) != 0)
            fleet_mismatch(t,
                           "pack %s: row %" PRId64 " holds %s, the answer to request %zu (%s) "
                           "was %s",
                           p->id, p->rows[row].id, p->rows[row].values, i + 1,
                           sim_mix_name(e->kind), e->values);
        else
            e->row = p->rows[row].id;
        row++;
    }
    if (p->nrows > row)
        fleet_mismatch(t, "pack %s: %zu stored samples were never sent", p->id, p->nrows - row);
    t->samples += row < p->nrows ? row : p->nrows;
    fleet_expect(t, p, "good polls", p->ok,
                 n[SIM_MIX_CLEAN] + n[SIM_MIX_NOISE] + n[SIM_MIX_LATE] + n[SIM_MIX_MASTER]);
    fleet_expect(t, p, "timeouts", p->timeouts,
                 n[SIM_MIX_TRUNCATED] + n[SIM_MIX_SILENT] + n[SIM_MIX_STALLED]);
    fleet_expect(t, p, "checksum errors", p->checksum, n[SIM_MIX_CHECKSUM]);
    fleet_expect(t, p, "malformed answers", p->malformed, n[SIM_MIX_GARBAGE]);
    fleet_expect(t, p, "refusals", p->refused, n[SIM_MIX_RTN]);
    fleet_expect(t, p, "foreign answers", p->foreign, n[SIM_MIX_FOREIGN]);
    /* still polled at the end */
    if (p->nlog == 0 || p->log[p->nlog - 1].ms < f->stop_ms - FLEET_POLL_GAP_MS)
        fleet_mismatch(t, "pack %s: not polled in the last %d s", p->id, FLEET_POLL_GAP_MS / 1000);
    t->polls += p->polls;
    t->ok += p->ok;
    t->timeouts += p->timeouts;
    t->checksum += p->checksum;
    t->malformed += p->malformed;
    t->refused += p->refused;
    t->foreign += p->foreign;
}

static inline int fleet_by_line(const void *a, const void *b)
{
    const struct fleet_entry *x = *(const struct fleet_entry *const *)a;
    const struct fleet_entry *y = *(const struct fleet_entry *const *)b;
    return x->line < y->line ? -1 : x->line > y->line;
}

/* The stored answers of port k, in the order the simulator sent them: their ids increase. */
static inline void fleet_check_order(struct fleet *f, int k, struct fleet_tally *t)
{
    size_t n = 0, cap = 0;
    const struct fleet_entry **v = NULL;
    for (int a = 0; a < f->packs; a++) {
        const struct fleet_pack *p = &f->pack[k][a];
        for (size_t i = 0; i < p->nlog; i++) {
            if (p->log[i].row == 0)
                continue;
            v = fleet_grow(v, &cap, n, sizeof *v);
            v[n++] = &p->log[i];
        }
    }
    if (n > 1)
        qsort(v, n, sizeof *v, fleet_by_line);
    for (size_t i = 1; i < n; i++) {
        if (v[i]->row <= v[i - 1]->row) {
            fleet_mismatch(t,
                           "port p%d: row %" PRId64 " (line %zu of the log) stored before row "
                           "%" PRId64 " (line %zu)",
                           k, v[i]->row, v[i]->line, v[i - 1]->row, v[i - 1]->line);
            break;
        }
    }
    free(v);
}

/* Loads and checks everything; the tally says what was compared (mismatches: 0). */
static inline void fleet_check(struct fleet *f, struct fleet_tally *t)
{
    memset(t, 0, sizeof *t);
    fleet_load(f);
    if (f->daemon_status != 0)
        fleet_mismatch(t, "the daemon exited with %d on SIGTERM", f->daemon_status);
    for (int k = 0; k < f->ports; k++) {
        for (int a = 0; a < f->packs; a++)
            fleet_check_pack(f, k, a, t);
        fleet_check_order(f, k, t);
    }
    for (int kd = 0; kd < SIM_MIX__COUNT; kd++) {
        t->requests += t->kinds[kd];
        t->faults += kd > SIM_MIX_CLEAN && kd < SIM_MIX_STALLED ? t->kinds[kd] : 0;
    }
}

/* The tally in one paragraph. */
static inline void fleet_report(const struct fleet *f, const struct fleet_tally *t,
                                const char *what)
{
    char kinds[512];
    size_t n = 0;
    for (int kd = SIM_MIX_CLEAN + 1; kd < SIM_MIX_STALLED && n < sizeof kinds; kd++)
        n += (size_t)snprintf(kinds + n, sizeof kinds - n, "%s%s %llu", n ? ", " : "",
                              sim_mix_name(kd), t->kinds[kd]);
    print_message(
        "%s: %d ports x %d packs, seed %" PRIu64 ", %.1f s: %llu faults injected (%s) "
        "in %llu requests; the daemon's counters equal them for every pack (%llu polls: "
        "%llu ok, %llu timeouts, %llu checksum, %llu malformed, %llu refused, %llu "
        "foreign); %llu stored samples equal the valid answers sent, in order, none missing; "
        "%llu request(s) in flight at the stop; %llu answer(s) withheld because the "
        "daemon had timed out (the simulator descheduled: counted as timeouts); "
        "%llu mismatch(es)\n",
        what, f->ports, f->packs, f->seed, (double)(f->stop_ms - f->start_ms) / 1000.0, t->faults,
        kinds, t->requests, t->polls, t->ok, t->timeouts, t->checksum, t->malformed, t->refused,
        t->foreign, t->samples, t->inflight, t->kinds[SIM_MIX_STALLED], t->mismatches);
}

#endif
