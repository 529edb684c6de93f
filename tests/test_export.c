/* test_export: `bmsfleet export` through the real binary, and the sqlite3 queries of the README
 * (section "Querying history with sqlite3") and of docs/queries.md run with the real sqlite3
 * shell against a generated history, their output compared with the documents.
 *
 * The history: 2 banks × 2 packs, two days (2026-01-01 and -02, UTC) at 5-minute steps, a
 * solar day (night and evening discharge, charge 08-16 h), a weak cell in pack3 that raises
 * cell_undervoltage on the second morning, low_soc on every pack, pack4 stale then offline for
 * 15 minutes; pack4 reports no SOH. See "The example database" in docs/queries.md.
 * BMSFLEET_EXAMPLE_DB=/path/example.db keeps a copy of it there (to write the documents). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "config.h"
#include "log.h"
#include "proc.h"
#include "store.h"

#define T0            1767225600LL /* 2026-01-01T00:00:00Z */
#define STEP_S        300
#define STEPS         (2 * 288)
#define NPACKS        4
#define ROWS_PER_HOUR (3600 / STEP_S)

static char dir[256], db_path[320], small_path[320];

/* ---------------------------------------------------------------- the example history */

struct gen_pack {
    const char *id;
    int64_t rem12; /* remaining capacity in mAh × 12: one 5-minute step of I mA adds I */
    int32_t full_mah;
    int scale_pct; /* share of the bank's current */
    uint32_t alarms;
    uint16_t port, idx;
};

/* The bank's current by hour of the day: night loads, solar charge, idle, evening loads. */
static int32_t bank_current_ma(int hour)
{
    if (hour < 8)
        return -5000;
    if (hour < 16)
        return 12000;
    if (hour < 18)
        return -500;
    return -8000;
}

static void gen_sample(struct reading *r, struct gen_pack *g, int p, int64_t sec, uint64_t seq)
{
    int hour = (int)((sec % 86400) / 3600);
    int32_t cur = bank_current_ma(hour) * g->scale_pct / 100;
    if (cur > 0 && g->rem12 >= (int64_t)g->full_mah * 12)
        cur = 0; /* full: the charger stops */
    int32_t rem = (int32_t)(g->rem12 / 12);
    int32_t soc = (int32_t)((int64_t)rem * 10000 / g->full_mah);

    memset(r, 0, sizeof *r);
    r->kind = READING_SAMPLE;
    r->seq = seq;
    r->ts_ms = sec * 1000 + (g->port ? 400 : 0); /* the second bus answers a little later */
    r->port_idx = g->port;
    r->pack_idx = g->idx;
    snprintf(r->pack_id, sizeof r->pack_id, "%s", g->id);
    struct sample *s = &r->s;
    sample_init(s);
    s->address = (uint8_t)(g->idx + 1);
    s->has = SAMPLE_HAS_ANALOG | SAMPLE_HAS_ALARMS | SAMPLE_HAS_BALANCE;
    s->current_ma = cur;
    s->soc_cpct = soc;
    s->remaining_mah = rem;
    s->full_mah = g->full_mah;
    static const int32_t soh[NPACKS] = {9850, 9720, 9610, SAMPLE_ABSENT};
    static const int32_t cycles[NPACKS] = {212, 215, 230, 198};
    s->soh_cpct = soh[p];
    s->design_mah = p == 3 ? SAMPLE_ABSENT : 100000;
    s->cycles = cycles[p];

    int32_t base = 3200 + soc / 100;
    if (soc < 1500)
        base -= (1500 - soc) * 12 / 100;
    if (soc > 9500)
        base += (soc - 9500) * 25 / 100;
    base += cur / 500;
    s->ncells = 16;
    s->voltage_mv = 0;
    for (int i = 0; i < 16; i++) {
        s->cell_mv[i] = base + (i * 7 + p * 3) % 11 - 5;
        if (p == 2 && i == 6) /* pack3's weak cell 7 sags when the pack is low */
            s->cell_mv[i] = base - 10 - (soc < 3000 ? (3000 - soc) * 8 / 100 : 0);
        s->voltage_mv += s->cell_mv[i];
    }
    int32_t ambient = 120 + (hour >= 10 && hour < 16 ? 40 : 0);
    int32_t cell_t = ambient + p * 5 + (cur < 0 ? -cur : cur) / 400;
    s->ntemps = 3;
    s->temp_dc[0] = cell_t;
    s->temp_dc[1] = cell_t - 3;
    s->temp_dc[2] = cell_t + (cur < 0 ? -cur : cur) / 200;
    s->temp_role[0] = s->temp_role[1] = SAMPLE_TEMP_CELL;
    s->temp_role[2] = SAMPLE_TEMP_MOS;
    sample_finish(s);

    if (s->cell_min_mv < 3000)
        g->alarms |= SAMPLE_ALARM_CELL_UV;
    else if (s->cell_min_mv >= 3100)
        g->alarms &= ~(uint32_t)SAMPLE_ALARM_CELL_UV;
    if (soc < 1500)
        g->alarms |= SAMPLE_ALARM_SOC_LOW;
    else if (soc >= 2000)
        g->alarms &= ~(uint32_t)SAMPLE_ALARM_SOC_LOW;
    s->alarms = g->alarms;
    s->state = SAMPLE_STATE_CHG_FET | SAMPLE_STATE_DSG_FET |
               (cur > 0   ? SAMPLE_STATE_CHARGING
                : cur < 0 ? SAMPLE_STATE_DISCHARGING
                          : 0u);
    if (soc >= 9800)
        for (int i = 0; i < 16; i++)
            if (s->cell_mv[i] > s->cell_min_mv + 3)
                s->balancing |= 1u << i;

    g->rem12 += cur;
    if (g->rem12 > (int64_t)g->full_mah * 12)
        g->rem12 = (int64_t)g->full_mah * 12;
}

static void gen_health(struct reading *r, const struct gen_pack *g, int64_t ms, enum pack_health h,
                       const char *detail, uint64_t seq)
{
    memset(r, 0, sizeof *r);
    r->kind = READING_HEALTH;
    r->seq = seq;
    r->ts_ms = ms;
    r->port_idx = g->port;
    r->pack_idx = g->idx;
    snprintf(r->pack_id, sizeof r->pack_id, "%s", g->id);
    r->health = h;
    snprintf(r->detail, sizeof r->detail, "%s", detail);
    sample_init(&r->s);
}

static const char example_yaml[] = "ports:\n"
                                   "  - name: rack-a\n"
                                   "    device: /dev/ttyUSB0\n"
                                   "    packs:\n"
                                   "      - { address: 1, id: pack1, bank: house }\n"
                                   "      - { address: 2, id: pack2, bank: house }\n"
                                   "  - name: rack-b\n"
                                   "    device: /dev/ttyUSB1\n"
                                   "    protocol: pace\n"
                                   "    packs:\n"
                                   "      - { address: 1, id: pack3, bank: shed }\n"
                                   "      - { address: 2, id: pack4, bank: shed }\n"
                                   "banks:\n"
                                   "  - { id: house, name: House bank }\n"
                                   "  - { id: shed, name: Workshop }\n";

/* yaml: the configuration without its storage section, which points at path. */
static void open_store(const char *body, const char *path, struct config **cfg, struct store **st)
{
    char yaml[2048], err[512];
    snprintf(yaml, sizeof yaml, "%sstorage: {path: %s, commit_interval_s: 1}\n", body, path);
    struct config_errors errs;
    int rc = config_load_string("example.yaml", yaml, cfg, &errs);
    if (rc)
        print_error("%s\n", errs.n ? errs.msg[0] : "config_load_string failed");
    assert_int_equal(rc, 0);
    rc = store_open(*cfg, st, err, sizeof err);
    if (rc)
        print_error("store_open: %s\n", err);
    assert_int_equal(rc, 0);
}

static void build_history(const char *path)
{
    struct config *cfg;
    struct store *st;
    open_store(example_yaml, path, &cfg, &st);
    struct gen_pack packs[NPACKS] = {
        {.id = "pack1",
         .port = 0,
         .idx = 0,
         .scale_pct = 100,
         .full_mah = 100000,
         .rem12 = 60000LL * 12},
        {.id = "pack2",
         .port = 0,
         .idx = 1,
         .scale_pct = 96,
         .full_mah = 98000,
         .rem12 = 57000LL * 12},
        {.id = "pack3",
         .port = 1,
         .idx = 0,
         .scale_pct = 104,
         .full_mah = 100000,
         .rem12 = 62000LL * 12},
        {.id = "pack4",
         .port = 1,
         .idx = 1,
         .scale_pct = 92,
         .full_mah = 95000,
         .rem12 = 52000LL * 12},
    };
    /* pack4 misses the polls of 10:05-10:15 on the second day */
    const int64_t off_from = T0 + 86400 + 10 * 3600 + 5 * 60, off_to = off_from + 15 * 60;
    struct reading batch[ROWS_PER_HOUR * NPACKS + 8];
    uint64_t seq = 0, total = 0;
    for (int k = 0; k < STEPS; k += ROWS_PER_HOUR) { /* one commit per hour of readings */
        size_t n = 0;
        for (int j = k; j < k + ROWS_PER_HOUR; j++) {
            int64_t sec = T0 + (int64_t)j * STEP_S;
            for (int p = 0; p < NPACKS; p++) {
                if (p == 3 && sec >= off_from && sec < off_to) {
                    if (sec == off_from)
                        gen_health(&batch[n++], &packs[p], sec * 1000 + 30400, PACK_STALE,
                                   "no answer (timeout 1000 ms)", ++seq);
                    if (sec == off_from + 5 * 60)
                        gen_health(&batch[n++], &packs[p], sec * 1000 + 30400, PACK_OFFLINE,
                                   "no answer (timeout 1000 ms)", ++seq);
                    continue;
                }
                if (p == 3 && sec == off_to)
                    gen_health(&batch[n++], &packs[p], sec * 1000 + 400, PACK_ONLINE, "", ++seq);
                gen_sample(&batch[n++], &packs[p], p, sec, ++seq);
            }
        }
        assert_int_equal(store_write_now(st, batch, n), 0);
        total += n;
    }
    struct store_stats stats;
    store_get_stats(st, &stats);
    assert_int_equal(stats.committed, total);
    store_close(st);
    config_free(cfg);
}

/* A one-pack history whose pack and bank ids need CSV quoting and JSON escapes. */
static void build_small(const char *path)
{
    static const char yaml[] = "ports:\n"
                               "  - name: p\n"
                               "    device: /dev/ttyUSB9\n"
                               "    packs:\n"
                               "      - { address: 1, id: odd }\n";
    struct config *cfg;
    struct store *st;
    open_store(yaml, path, &cfg, &st);
    struct gen_pack g = {.id = "odd", .scale_pct = 100, .full_mah = 100000, .rem12 = 50000LL * 12};
    struct reading r[3];
    for (int i = 0; i < 3; i++)
        gen_sample(&r[i], &g, 0, T0 + i * STEP_S, (uint64_t)i + 1);
    assert_int_equal(store_write_now(st, r, 3), 0);
    assert_int_equal(sqlite3_exec(store_db(st),
                                  "UPDATE packs SET pack_id = 'odd,\"one\"', bank = 'b\nx'", NULL,
                                  NULL, NULL),
                     SQLITE_OK);
    store_close(st);
    config_free(cfg);
}

static void unlink_db(const char *path)
{
    char p[416]; /* a path of up to 400 and its suffix (the Release build checks truncation) */
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char tmp[65536];
    size_t k;
    while ((k = fread(tmp, 1, sizeof tmp, in)) > 0)
        assert_int_equal(fwrite(tmp, 1, k, out), k);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

static int group_setup(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1); /* local time = UTC, here and in every child */
    tzset();
    log_set_level(LOG_WARN); /* no "schema migrated" lines */
    snprintf(dir, sizeof dir, "/tmp/bmsfleet-export-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(db_path, sizeof db_path, "%s/history.db", dir);
    snprintf(small_path, sizeof small_path, "%s/small.db", dir);
    build_history(db_path);
    build_small(small_path);
    const char *keep = getenv("BMSFLEET_EXAMPLE_DB");
    if (keep && *keep) {
        unlink_db(keep);
        copy_file(db_path, keep);
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char p[400];
    unlink_db(db_path);
    unlink_db(small_path);
    const char *extra[] = {"newer.db", "missing.db", "locked.db"};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, extra[i]);
        unlink_db(p);
    }
    rmdir(dir);
    return 0;
}

/* ---------------------------------------------------------------- helpers */

/* bmsfleet export ARGS... (a NULL-terminated list); --db is added when db is not NULL. */
static void export_argv(struct proc_result *r, const char *db, const char *const *args)
{
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)BMSFLEET_BIN;
    argv[n++] = (char *)"export";
    if (db) {
        argv[n++] = (char *)"--db";
        argv[n++] = (char *)db;
    }
    for (size_t i = 0; args[i] && n < 31; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    assert_int_equal(proc_run(argv, NULL, 30000, r), 0);
}
#define export_run(r, db, ...) export_argv(r, db, (const char *const[]){__VA_ARGS__})

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* The n-th line (0-based) of text, without its newline. */
static void nth_line(const char *text, int n, char *out, size_t cap)
{
    const char *p = text;
    for (int i = 0; i < n && p; i++) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    if (p == NULL) {
        print_error("no line %d in:\n%s\n", n, text);
        fail();
        return;
    }
    size_t len = strcspn(p, "\n");
    assert_true(len < cap);
    memcpy(out, p, len);
    out[len] = '\0';
}

/* The k-th comma-separated field (0-based) of a CSV line without quoted fields. */
static void csv_field(const char *line, int k, char *out, size_t cap)
{
    const char *p = line;
    for (int i = 0; i < k; i++) {
        p = strchr(p, ',');
        assert_non_null(p);
        p++;
    }
    size_t len = strcspn(p, ",");
    assert_true(len < cap);
    memcpy(out, p, len);
    out[len] = '\0';
}

static int csv_column(const char *header, const char *name)
{
    char f[64];
    for (int k = 0;; k++) {
        csv_field(header, k, f, sizeof f);
        if (strcmp(f, name) == 0)
            return k;
    }
}

static sqlite3 *open_ro(void)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    return db;
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        print_error("%s: %s\n", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Every row of sql rendered the way export writes CSV (no field here needs quoting). */
static char *query_csv(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        print_error("%s: %s\n", sql, sqlite3_errmsg(db));
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    int ncols = sqlite3_column_count(st);
    for (int i = 0; i < ncols; i++)
        fprintf(f, "%s%s", i ? "," : "", sqlite3_column_name(st, i));
    fputc('\n', f);
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int i = 0; i < ncols; i++) {
            const unsigned char *t = sqlite3_column_text(st, i);
            fprintf(f, "%s%s", i ? "," : "", t ? (const char *)t : "");
        }
        fputc('\n', f);
    }
    sqlite3_finalize(st);
    fclose(f);
    return buf;
}

/* ---------------------------------------------------------------- the documents' queries */

static void find_sqlite3(char *out, size_t cap)
{
    const char *path = getenv("PATH");
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path ? path : "/usr/bin:/bin");
    for (char *save, *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, cap, "%s/sqlite3", d);
        if (access(out, X_OK) == 0)
            return;
    }
    print_error("the sqlite3 shell is not installed (apt-get install sqlite3)\n");
    fail();
}

/* Trailing spaces of every line removed, and trailing blank lines. */
static void normalise(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '\n')
            while (w > s && w[-1] == ' ')
                w--;
        *w++ = *r;
    }
    while (w > s && (w[-1] == ' ' || w[-1] == '\n'))
        w--;
    *w = '\0';
}

/* Runs every ```sql block that is immediately followed by a plain ``` block, between the
 * line `start` (NULL: the whole text) and the next "## " heading; returns how many. */
static int check_queries(const char *doc_name, const char *text, const char *start)
{
    char shell[512];
    find_sqlite3(shell, sizeof shell);
    const char *p = text, *end = text + strlen(text);
    if (start) {
        p = strstr(text, start);
        if (p == NULL) {
            print_error("%s: no line '%s'\n", doc_name, start);
            fail();
            return 0;
        }
        p += strlen(start);
        const char *next = strstr(p, "\n## ");
        if (next)
            end = next;
    }
    int checked = 0, failed = 0;
    for (const char *q; (q = strstr(p, "\n```sql\n")) != NULL && q < end;) {
        const char *sql = q + strlen("\n```sql\n");
        const char *sql_end = strstr(sql, "\n```\n");
        assert_non_null(sql_end);
        p = sql_end + 1;
        const char *out = sql_end + strlen("\n```\n");
        if (strncmp(out, "```\n", 4) != 0)
            continue; /* no output block: not an example to check */
        out += 4;
        const char *out_end = strstr(out, "```\n");
        assert_non_null(out_end);
        p = out_end;

        /* leading comment lines are the question; the shell would take "--" for an option */
        while (sql < sql_end && strncmp(sql, "--", 2) == 0)
            sql = strchr(sql, '\n') + 1;
        assert_true(sql < sql_end);
        size_t qlen = (size_t)(sql_end - sql);
        char *query = strndup(sql, qlen);
        char *expected = strndup(out, (size_t)(out_end - out));
        assert_non_null(query);
        assert_non_null(expected);
        struct proc_result *r = malloc(sizeof *r);
        assert_non_null(r);
        char *argv[] = {
            shell, (char *)"-readonly", (char *)"-header", (char *)"-column", db_path, query, NULL};
        assert_int_equal(proc_run(argv, NULL, 30000, r), 0);
        normalise(r->out);
        normalise(expected);
        if (r->status != 0 || r->err[0] || strcmp(r->out, expected) != 0) {
            /* in pieces: cmocka cuts long messages */
            print_error("%s: query\n%s\nexit %d, stderr: %s\n", doc_name, query, r->status, r->err);
            print_error("got:\n");
            for (char *save, *l = strtok_r(r->out, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
                print_error("%s\n", l);
            print_error("expected:\n");
            for (char *save, *l = strtok_r(expected, "\n", &save); l;
                 l = strtok_r(NULL, "\n", &save))
                print_error("%s\n", l);
            failed++;
        }
        checked++;
        free(r);
        free(query);
        free(expected);
    }
    assert_int_equal(failed, 0);
    print_message("%s: %d queries checked against the sqlite3 shell\n", doc_name, checked);
    return checked;
}

static void test_readme_queries(void **state)
{
    (void)state;
    char *readme = proc_slurp(BMSFLEET_SOURCE_DIR "/README.md");
    assert_non_null(readme);
    int n = check_queries("README.md", readme, "\n## Querying history with sqlite3\n");
    free(readme);
    if (n < 6)
        print_error("README.md: only %d checked queries\n", n);
    assert_true(n >= 6);
}

static void test_docs_queries(void **state)
{
    (void)state;
    char *doc = proc_slurp(BMSFLEET_SOURCE_DIR "/docs/queries.md");
    assert_non_null(doc);
    int n = check_queries("docs/queries.md", doc, NULL);
    free(doc);
    assert_true(n >= 6);
}

/* ---------------------------------------------------------------- export */

static const char raw_header[] =
    "id,pack,bank,ts,time,utc,voltage_v,current_a,power_w,soc_pct,soh_pct,remaining_ah,"
    "full_ah,design_ah,cycles,cell_min_v,cell_min_idx,cell_max_v,cell_max_idx,cell_diff_mv,"
    "temp_min_c,temp_max_c,alarms,protection,state,balancing";

static void test_raw_csv(void **state)
{
    (void)state;
    struct proc_result *r = malloc(sizeof *r);
    assert_non_null(r);
    export_run(r, db_path, "--from", "2026-01-01T06:00", "--to", "2026-01-01T07:00", NULL);
    assert_int_equal(r->status, 0);
    assert_string_equal(r->err, "");
    char line[1024];
    nth_line(r->out, 0, line, sizeof line);
    assert_string_equal(line, raw_header);
    assert_int_equal(count_lines(r->out), 1 + ROWS_PER_HOUR * NPACKS);
    /* time, then pack: pack1 pack2 (bus a, on the second) then pack3 pack4 (bus b, +400 ms) */
    static const char *const order[] = {"pack1", "pack2", "pack3", "pack4"};
    int utc = csv_column(raw_header, "utc"), time = csv_column(raw_header, "time");
    for (int i = 0; i < ROWS_PER_HOUR * NPACKS; i++) {
        char f[64], want[64];
        nth_line(r->out, 1 + i, line, sizeof line);
        csv_field(line, 1, f, sizeof f);
        assert_string_equal(f, order[i % NPACKS]);
        csv_field(line, utc, f, sizeof f);
        snprintf(want, sizeof want, "2026-01-01T06:%02d:00Z", i / NPACKS * 5);
        assert_string_equal(f, want);
        csv_field(line, time, f, sizeof f);
        snprintf(want, sizeof want, "2026-01-01 06:%02d:00", i / NPACKS * 5);
        assert_string_equal(f, want);
    }
    /* the exact rows of v_samples */
    sqlite3 *db = open_ro();
    char *want = query_csv(db, "SELECT id,pack,bank,ts,time,"
                               "strftime('%Y-%m-%dT%H:%M:%SZ', ts / 1000, 'unixepoch') AS utc,"
                               "voltage_v,current_a,power_w,soc_pct,soh_pct,remaining_ah,full_ah,"
                               "design_ah,cycles,cell_min_v,cell_min_idx,cell_max_v,cell_max_idx,"
                               "cell_diff_mv,temp_min_c,temp_max_c,alarms,protection,state,"
                               "balancing FROM v_samples WHERE ts >= 1767247200000 AND "
                               "ts < 1767250800000 ORDER BY ts, pack");
    assert_string_equal(r->out, want);
    free(want);
    /* the whole history, by day: every sample once */
    int64_t total = query_int(db, "SELECT count(*) FROM samples");
    sqlite3_close(db);
    assert_int_equal(total, STEPS * NPACKS - 3);
    /* absent values are empty fields: pack4 has no SOH and no design capacity */
    nth_line(r->out, 4, line, sizeof line);
    char f[64];
    csv_field(line, 1, f, sizeof f);
    assert_string_equal(f, "pack4");
    csv_field(line, csv_column(raw_header, "soh_pct"), f, sizeof f);
    assert_string_equal(f, "");
    csv_field(line, csv_column(raw_header, "design_ah"), f, sizeof f);
    assert_string_equal(f, "");
    /* an empty range is a header and no rows, exit 0 */
    export_run(r, db_path, "--from", "2027-01-01", "--to", "2027-01-02", NULL);
    assert_int_equal(r->status, 0);
    assert_int_equal(count_lines(r->out), 1);
    free(r);
}

static void test_filters(void **state)
{
    (void)state;
    struct proc_result *r = malloc(sizeof *r);
    assert_non_null(r);
    const struct {
        const char *opt, *val;
        const char *packs[4];
    } cases[] = {
        {"--pack", "pack3", {"pack3"}},
        {"--pack", "pack2", {"pack2"}},
        {"--bank", "shed", {"pack3", "pack4"}},
        {"--bank", "house", {"pack1", "pack2"}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        export_run(r, db_path, cases[c].opt, cases[c].val, "--from", "2026-01-02 12:00", "--to",
                   "2026-01-02 13:00", NULL);
        assert_int_equal(r->status, 0);
        int per = cases[c].packs[1] ? 2 : 1;
        assert_int_equal(count_lines(r->out), 1 + ROWS_PER_HOUR * per);
        for (int i = 0; i < ROWS_PER_HOUR * per; i++) {
            char line[1024], f[64];
            nth_line(r->out, 1 + i, line, sizeof line);
            csv_field(line, 1, f, sizeof f);
            assert_string_equal(f, cases[c].packs[i % per]);
        }
    }
    /* both: the pack, when it is in the bank */
    export_run(r, db_path, "--pack", "pack4", "--bank", "shed", "--from", "2026-01-02", "--to",
               "2026-01-02T01:00", NULL);
    assert_int_equal(r->status, 0);
    assert_int_equal(count_lines(r->out), 1 + ROWS_PER_HOUR);
    free(r);
}

/* Exported rollups are exactly the rows of the view, utc added. */
static void check_rollup(const char *res, const char *view, const char *from, const char *to,
                         int64_t from_s, int64_t to_s, int rows)
{
    struct proc_result *r = malloc(sizeof *r);
    assert_non_null(r);
    export_run(r, db_path, "--resolution", res, "--from", from, "--to", to, NULL);
    assert_int_equal(r->status, 0);
    assert_string_equal(r->err, "");
    assert_int_equal(count_lines(r->out), 1 + rows);
    sqlite3 *db = open_ro();
    char sql[2048], cols[1024] = "";
    sqlite3_stmt *st;
    snprintf(sql, sizeof sql, "SELECT * FROM %s LIMIT 0", view);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    for (int i = 0; i < sqlite3_column_count(st); i++) {
        const char *name = sqlite3_column_name(st, i);
        size_t len = strlen(cols);
        snprintf(cols + len, sizeof cols - len, "%s%s", i ? "," : "", name);
        if (strcmp(name, "time") == 0) {
            len = strlen(cols);
            snprintf(cols + len, sizeof cols - len,
                     ",strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ', bucket, 'unixepoch') AS utc");
        }
    }
    sqlite3_finalize(st);
    snprintf(sql, sizeof sql,
             "SELECT %s FROM %s WHERE bucket >= %lld AND bucket < %lld ORDER BY bucket, pack", cols,
             view, (long long)from_s, (long long)to_s);
    char *want = query_csv(db, sql);
    assert_string_equal(r->out, want);
    free(want);
    sqlite3_close(db);
    free(r);
}

static void test_resolution_1m(void **state)
{
    (void)state;
    /* one sample per pack every 5 minutes: 12 one-minute buckets per pack and hour */
    check_rollup("1m", "v_minutely", "2026-01-01T20:00", "2026-01-01T21:00", T0 + 20 * 3600,
                 T0 + 21 * 3600, ROWS_PER_HOUR * NPACKS);
    struct proc_result *r = malloc(sizeof *r);
    assert_non_null(r);
    export_run(r, db_path, "--resolution", "1m", "--pack", "pack1", "--from", "2026-01-01T20:05",
               "--to", "2026-01-01T20:06", NULL);
    assert_int_equal(r->status, 0);
    assert_int_equal(count_lines(r->out), 2);
    char header[1024], line[1024], f[64];
    nth_line(r->out, 0, header, sizeof header);
    assert_string_equal(header, "pack,bank,bucket,time,utc,samples,voltage_avg_v,voltage_min_v,"
                                "voltage_max_v,current_avg_a,current_min_a,current_max_a,"
                                "soc_avg_pct,soc_min_pct,soc_max_pct,cell_min_v,cell_max_v,"
                                "temp_min_c,temp_max_c,charged_wh,discharged_wh");
    nth_line(r->out, 1, line, sizeof line);
    csv_field(line, 2, f, sizeof f);
    assert_string_equal(f, "1767297900");
    csv_field(line, csv_column(header, "samples"), f, sizeof f);
    assert_string_equal(f, "1");
    csv_field(line, csv_column(header, "current_avg_a"), f, sizeof f);
    assert_string_equal(f, "-8.0");
    free(r);
}

static void test_resolution_1h(void **state)
{
    (void)state;
    check_rollup("1h", "v_hourly", "2026-01-01", "2026-01-03", T0, T0 + 2 * 86400, 48 * NPACKS);
    struct proc_result *r = malloc(sizeof *r);
    assert_non_null(r);
    export_run(r, db_path, "--resolution", "1h", "--pack", "pack1", "--from", "2026-01-01T09:00",
               "--to", "2026-01-01T10:00", NULL);
    assert_int_equal(r->status, 0);
    assert_int_equal(count_lines(r->out), 2);
    char header[1024], line[1024], f[64];
    nth_line(r->out, 0, header, sizeof header);
    nth_line(r->out, 1, line, sizeof line);
    csv_field(line, csv_column(header, "utc"), f, sizeof f);
    assert_string_equal(f, "2026-01-01T09:00:00Z");
    csv_field(line, csv_column(header, "samples"), f, sizeof f);
    assert_string_equal(f, "12");
    csv_field(line, csv_column(header, "current_avg_a"), f, sizeof f);
    assert_string_equal(f, "12.0");
    /* pack4's hour with the 15-minute gap has 9 samples */
    export_run(r, db_path, "--resolution", "1h", "--pack", "pack4", "--from", "2026-01-02T10:00",
               "--to", "2026-01-02T11:00", NULL);
    assert_int_equal(r->status, 0);
    nth_line(r->out, 1, line, sizeof line);
    csv_field(line, csv_column(header, "samples"), f, sizeof f);
    assert_string_equal(f, "9");
    free(r);
}

static void test_json(void **state)
{
    (void)state;
    struct proc_result *r = malloc(sizeof *r);
    assert_non_null(r);
    export_run(r, db_path, "--json", "--bank", "shed", "--from", "2026-01-02T08:00", "--to",
               "2026-01-02T08:10", NULL);
    assert_int_equal(r->status, 0);
    assert_string_equal(r->err, "");
    assert_int_equal(count_lines(r->out), 4);
    static const char *const keys[] = {
        "id",           "pack",         "bank",       "ts",         "time",         "utc",
        "voltage_v",    "current_a",    "power_w",    "soc_pct",    "soh_pct",      "remaining_ah",
        "full_ah",      "design_ah",    "cycles",     "cell_min_v", "cell_min_idx", "cell_max_v",
        "cell_max_idx", "cell_diff_mv", "temp_min_c", "temp_max_c", "alarms",       "protection",
        "state",        "balancing"};
    sqlite3 *db = open_ro();
    for (int i = 0; i < 4; i++) {
        char line[2048];
        nth_line(r->out, i, line, sizeof line);
        cJSON *o = cJSON_Parse(line);
        assert_non_null(o);
        assert_int_equal(cJSON_GetArraySize(o), sizeof keys / sizeof keys[0]);
        int k = 0;
        for (cJSON *it = o->child; it; it = it->next, k++)
            assert_string_equal(it->string, keys[k]); /* in this order */
        const char *pack = i % 2 ? "pack4" : "pack3";
        assert_string_equal(cJSON_GetObjectItem(o, "pack")->valuestring, pack);
        assert_string_equal(cJSON_GetObjectItem(o, "bank")->valuestring, "shed");
        int64_t ts = (T0 + 86400 + 8 * 3600 + (i / 2) * 300) * 1000 + 400;
        cJSON *jts = cJSON_GetObjectItem(o, "ts");
        assert_true(cJSON_IsNumber(jts));
        assert_true(jts->valuedouble == (double)ts);
        /* integers are written exactly, never through a double */
        char exact[64];
        snprintf(exact, sizeof exact, "\"ts\":%lld,", (long long)ts);
        assert_non_null(strstr(line, exact));
        char want[64];
        snprintf(want, sizeof want, "2026-01-02T08:%02d:00Z", (i / 2) * 5);
        assert_string_equal(cJSON_GetObjectItem(o, "utc")->valuestring, want);
        snprintf(want, sizeof want, "2026-01-02 08:%02d:00", (i / 2) * 5);
        assert_string_equal(cJSON_GetObjectItem(o, "time")->valuestring, want);
        /* every number equals the view's */
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT voltage_v, current_a, soc_pct, cell_min_v, temp_max_c, cycles, id"
                 " FROM v_samples WHERE pack = '%s' AND ts = %lld",
                 pack, (long long)ts);
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        static const char *const num[] = {"voltage_v",  "current_a", "soc_pct", "cell_min_v",
                                          "temp_max_c", "cycles",    "id"};
        for (int c = 0; c < 7; c++) {
            cJSON *v = cJSON_GetObjectItem(o, num[c]);
            assert_true(cJSON_IsNumber(v));
            assert_true(v->valuedouble == sqlite3_column_double(st, c));
        }
        sqlite3_finalize(st);
        assert_true(cJSON_IsNumber(cJSON_GetObjectItem(o, "current_a")));
        assert_true(cJSON_GetObjectItem(o, "current_a")->valuedouble > 0); /* charging */
        /* absent values are null: pack4 has no SOH */
        cJSON *soh = cJSON_GetObjectItem(o, "soh_pct");
        if (i % 2)
            assert_true(cJSON_IsNull(soh));
        else
            assert_true(cJSON_IsNumber(soh) && soh->valuedouble == 96.1);
        cJSON_Delete(o);
    }
    sqlite3_close(db);
    /* rollups in JSON */
    export_run(r, db_path, "--json", "--resolution", "1h", "--pack", "pack2", "--from",
               "2026-01-01T20:00Z", "--to", "2026-01-01T21:00Z", NULL);
    assert_int_equal(r->status, 0);
    assert_int_equal(count_lines(r->out), 1);
    cJSON *o = cJSON_Parse(r->out);
    assert_non_null(o);
    assert_int_equal(cJSON_GetObjectItem(o, "bucket")->valuedouble, T0 + 20 * 3600);
    assert_int_equal(cJSON_GetObjectItem(o, "samples")->valuedouble, 12);
    assert_true(cJSON_GetObjectItem(o, "current_avg_a")->valuedouble == -7.68);
    assert_true(cJSON_GetObjectItem(o, "discharged_wh")->valuedouble > 0);
    assert_string_equal(cJSON_GetObjectItem(o, "utc")->valuestring, "2026-01-01T20:00:00Z");
    cJSON_Delete(o);
    free(r);
}

/* The first data row's utc field. */
static void first_utc(const struct proc_result *r, char *out, size_t cap)
{
    char header[1024], line[1024];
    nth_line(r->out, 0, header, sizeof header);
    nth_line(r->out, 1, line, sizeof line);
    csv_field(line, csv_column(header, "utc"), out, cap);
}


/* The example history is months old: its newest samples are exported as samples, and nothing in
 * the JSON claims a pack is online (no health, no age); the views judge every pack offline by
 * the age of its data, pack4 too, whose last event is "online". */
static void test_json_stale_history(void **state)
{
    (void)state;
    struct proc_result *r = malloc(sizeof *r);
    assert_non_null(r);
    export_run(r, db_path, "--json", "--from", "2026-01-02T23:50Z", "--to", "2026-01-03T00:00Z",
               NULL);
    assert_int_equal(r->status, 0);
    assert_string_equal(r->err, "");
    assert_int_equal(count_lines(r->out), 8); /* 4 packs × 2 samples */
    for (int i = 0; i < 8; i++) {
        char line[2048];
        nth_line(r->out, i, line, sizeof line);
        cJSON *o = cJSON_Parse(line);
        assert_non_null(o);
        for (cJSON *it = o->child; it; it = it->next) {
            assert_null(strstr(it->string, "health"));
            assert_null(strstr(it->string, "online"));
            assert_string_not_equal(it->string, "age_s");
            assert_string_not_equal(it->string, "event");
            if (cJSON_IsString(it))
                assert_null(strstr(it->valuestring, "online"));
        }
        cJSON_Delete(o);
    }
    free(r);
    sqlite3 *db = open_ro();
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT pack, event, health, age_s > 86400 FROM v_latest"
                                        " ORDER BY pack",
                                        -1, &st, NULL),
                     SQLITE_OK);
    static const char *const events[] = {NULL, NULL, NULL, "online"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        char pack[8];
        snprintf(pack, sizeof pack, "pack%d", i + 1);
        assert_string_equal((const char *)sqlite3_column_text(st, 0), pack);
        if (events[i])
            assert_string_equal((const char *)sqlite3_column_text(st, 1), events[i]);
        else
            assert_int_equal(sqlite3_column_type(st, 1), SQLITE_NULL);
        assert_string_equal((const char *)sqlite3_column_text(st, 2), "offline");
        assert_int_equal(sqlite3_column_int(st, 3), 1);
    }
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT sum(packs_online) FROM v_bank_latest", -1,
                                        &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_time_forms(void **state)
{
    (void)state;
    struct proc_result *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    /* the same instant, 14:30 UTC, written every way; TZ=UTC makes local time UTC */
    static const char *const same[] = {
        "2026-01-01T14:30",       "2026-01-01 14:30",         "2026-01-01T14:30:00",
        "2026-01-01 14:30:00",    "2026-01-01T14:30Z",        "2026-01-01T14:30:00Z",
        "2026-01-01T16:30+02:00", "2026-01-01T16:30:00+0200", "2026-01-01T16:30+02",
        "2026-01-01T09:30-05:00", "2026-01-01 09:30:00-0500", "2026-01-01T14:30+00:00",
    };
    export_run(a, db_path, "--pack", "pack1", "--from", same[0], "--to", "2026-01-01T15:00", NULL);
    assert_int_equal(a->status, 0);
    assert_int_equal(count_lines(a->out), 1 + 6);
    char f[64];
    first_utc(a, f, sizeof f);
    assert_string_equal(f, "2026-01-01T14:30:00Z");
    for (size_t i = 1; i < sizeof same / sizeof same[0]; i++) {
        export_run(b, db_path, "--pack", "pack1", "--from", same[i], "--to", "2026-01-01T15:00Z",
                   NULL);
        if (b->status != 0 || strcmp(a->out, b->out) != 0)
            print_error("--from %s: %s\n", same[i], b->err);
        assert_int_equal(b->status, 0);
        assert_string_equal(a->out, b->out);
    }
    /* +02:00 is two hours earlier in UTC than the same wall time in UTC */
    export_run(b, db_path, "--pack", "pack1", "--from", "2026-01-01T14:30+02:00", "--to",
               "2026-01-01T15:00+02:00", NULL);
    assert_int_equal(b->status, 0);
    first_utc(b, f, sizeof f);
    assert_string_equal(f, "2026-01-01T12:30:00Z");
    assert_int_equal(count_lines(b->out), 1 + 6);
    /* a date is local midnight, and --to is excluded: one whole day */
    export_run(b, db_path, "--pack", "pack2", "--resolution", "1h", "--from", "2026-01-02", "--to",
               "2026-01-03", NULL);
    assert_int_equal(b->status, 0);
    assert_int_equal(count_lines(b->out), 1 + 24);
    first_utc(b, f, sizeof f);
    assert_string_equal(f, "2026-01-02T00:00:00Z");
    /* seconds count: 14:30:01 leaves the 14:30 sample out */
    export_run(b, db_path, "--pack", "pack1", "--from", "2026-01-01T14:30:01", "--to",
               "2026-01-01T15:00", NULL);
    assert_int_equal(b->status, 0);
    first_utc(b, f, sizeof f);
    assert_string_equal(f, "2026-01-01T14:35:00Z");
    free(a);
    free(b);
}

/* Local time follows TZ: at UTC+1 (no tzdata needed for a POSIX zone), 14:30 local is 13:30Z,
 * and the time column shows local time too. */
static void test_local_zone(void **state)
{
    (void)state;
    struct proc_result *r = malloc(sizeof *r);
    assert_non_null(r);
    setenv("TZ", "XXX-1", 1);
    export_run(r, db_path, "--pack", "pack1", "--from", "2026-01-01T14:30", "--to",
               "2026-01-01T14:31", NULL);
    struct proc_result *z = malloc(sizeof *z);
    assert_non_null(z);
    export_run(z, db_path, "--pack", "pack1", "--from", "2026-01-02", "--to", "2026-01-02T00:01",
               NULL);
    setenv("TZ", "UTC", 1);
    assert_int_equal(r->status, 0);
    assert_int_equal(count_lines(r->out), 2);
    char line[1024], f[64];
    nth_line(r->out, 1, line, sizeof line);
    csv_field(line, csv_column(raw_header, "utc"), f, sizeof f);
    assert_string_equal(f, "2026-01-01T13:30:00Z");
    csv_field(line, csv_column(raw_header, "time"), f, sizeof f);
    assert_string_equal(f, "2026-01-01 14:30:00");
    /* local midnight of 2 January is 23:00Z on the 1st */
    assert_int_equal(z->status, 0);
    assert_int_equal(count_lines(z->out), 2);
    first_utc(z, f, sizeof f);
    assert_string_equal(f, "2026-01-01T23:00:00Z");
    free(z);
    free(r);
}

static void test_quoting(void **state)
{
    (void)state;
    struct proc_result *r = malloc(sizeof *r);
    assert_non_null(r);
    export_run(r, small_path, "--pack", "odd,\"one\"", "--from", "2026-01-01", "--to",
               "2026-01-01T00:10", NULL);
    assert_int_equal(r->status, 0);
    assert_string_equal(r->err, "");
    /* RFC 4180: the field quoted, its quotes doubled, the line break kept inside quotes */
    char *row = strchr(r->out, '\n');
    assert_non_null(row);
    static const char want[] = "1,\"odd,\"\"one\"\"\",\"b\nx\",1767225600000,2026-01-01 00:00:00,";
    assert_int_equal(strncmp(row + 1, want, strlen(want)), 0);
    assert_int_equal(proc_count(r->out, "\"odd,\"\"one\"\"\""), 2);
    export_run(r, small_path, "--json", "--bank", "b\nx", "--from", "2026-01-01", "--to",
               "2026-01-02", NULL);
    assert_int_equal(r->status, 0);
    assert_int_equal(count_lines(r->out), 3);
    cJSON *o = cJSON_Parse(r->out);
    assert_non_null(o);
    assert_string_equal(cJSON_GetObjectItem(o, "pack")->valuestring, "odd,\"one\"");
    assert_string_equal(cJSON_GetObjectItem(o, "bank")->valuestring, "b\nx");
    cJSON_Delete(o);
    free(r);
}

/* A writer in the middle of a transaction (the daemon committing) does not stop export, and
 * export does not stop the writer. */
static void test_concurrent_writer(void **state)
{
    (void)state;
    char path[400];
    snprintf(path, sizeof path, "%s/locked.db", dir);
    unlink_db(path);
    copy_file(small_path, path);
    sqlite3 *w;
    assert_int_equal(sqlite3_open_v2(path, &w, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(w, "PRAGMA journal_mode = WAL", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(w,
                                  "BEGIN IMMEDIATE; INSERT INTO samples (pack, ts) VALUES"
                                  " (1, 1767225900500)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    struct proc_result *r = malloc(sizeof *r);
    assert_non_null(r);
    long long t = proc_now_ms();
    export_run(r, path, "--json", "--from", "2026-01-01", "--to", "2026-01-02", NULL);
    assert_true(proc_now_ms() - t < 4000); /* not waiting for the busy timeout */
    assert_int_equal(r->status, 0);
    assert_int_equal(count_lines(r->out), 3); /* the uncommitted row is not seen */
    assert_int_equal(sqlite3_exec(w, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    export_run(r, path, "--json", "--from", "2026-01-01", "--to", "2026-01-02", NULL);
    assert_int_equal(r->status, 0);
    assert_int_equal(count_lines(r->out), 4);
    sqlite3_close(w);
    free(r);
}

static void test_errors(void **state)
{
    (void)state;
    char missing[400], newer[400], msg[1024];
    snprintf(missing, sizeof missing, "%s/missing.db", dir);
    snprintf(newer, sizeof newer, "%s/newer.db", dir);
    copy_file(small_path, newer);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(newer, &db), SQLITE_OK);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", store_schema_version() + 1);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    static const char *const bad_times[] = {
        "2026-13-01",
        "2026-00-10",
        "2026-02-29",
        "2026-04-31",
        "2026-1-01",
        "26-01-01",
        "2026/01/01",
        "2026-01-01T",
        "2026-01-01T24:00",
        "2026-01-01T14:60",
        "2026-01-01T14:30:60",
        "2026-01-01T14",
        "2026-01-01T1430",
        "2026-01-01T14:30+2",
        "2026-01-01T14:30+02:0",
        "2026-01-01T14:30 ",
        "2026-01-01T14:30z",
        "2026-01-01Z",
        "2026-01-01x",
        "",
        "today",
        "1969-12-31",
        "2026-01-01T14:30:00.5",
        "2026-01-01T14:30+25:00",
    };
    struct proc_result *r = malloc(sizeof *r);
    assert_non_null(r);
    for (size_t i = 0; i < sizeof bad_times / sizeof bad_times[0]; i++) {
        export_run(r, db_path, "--from", bad_times[i], "--to", "2026-01-02", NULL);
        snprintf(msg, sizeof msg, "export: --from: '%s' is not an ISO 8601 date or date-time\n",
                 bad_times[i]);
        if (r->status != 2 || strcmp(r->err, msg) != 0)
            print_error("--from '%s'\n", bad_times[i]);
        assert_int_equal(r->status, 2);
        assert_string_equal(r->err, msg);
        assert_string_equal(r->out, "");
    }
    /* 2028 is a leap year */
    export_run(r, db_path, "--from", "2028-02-29", "--to", "2028-03-01", NULL);
    assert_int_equal(r->status, 0);
    export_run(r, db_path, "--from", "2026-01-01", "--to", "2026-13-01", NULL);
    assert_int_equal(r->status, 2);
    assert_string_equal(r->err,
                        "export: --to: '2026-13-01' is not an ISO 8601 date or date-time\n");

    const struct {
        const char *args[8];
        const char *db;
        int status;
        const char *err; /* the first line of stderr */
    } cases[] = {
        {{"--from", "2026-01-02", "--to", "2026-01-01"},
         db_path,
         2,
         "export: --from must be before --to"},
        {{"--from", "2026-01-01T10:00Z", "--to", "2026-01-01T12:00+02:00"},
         db_path,
         2,
         "export: --from must be before --to"},
        {{"--pack", "x", "--from", "2026-01-01", "--to", "2026-01-02"},
         db_path,
         2,
         "export: no pack 'x' in the database (packs: pack1, pack2, pack3, pack4)"},
        {{"--bank", "garage", "--from", "2026-01-01", "--to", "2026-01-02"},
         db_path,
         2,
         "export: no bank 'garage' in the database (banks: house, shed)"},
        {{"--pack", "pack1", "--bank", "shed", "--from", "2026-01-01", "--to", "2026-01-02"},
         db_path,
         2,
         "export: pack 'pack1' is in bank 'house', not 'shed'"},
        {{"--from", "2026-01-01", "--to", "2026-01-02"}, newer, 1, NULL},
        {{"--from", "2026-01-01", "--to", "2026-01-02"}, missing, 1, NULL},
        {{"--from", "2026-01-01", "--to", "2026-01-02"}, dir, 1, NULL},
        {{"--resolution", "5m", "--from", "2026-01-01", "--to", "2026-01-02"},
         db_path,
         2,
         "export: unknown resolution '5m' (raw, 1m, 1h)"},
        {{"--csv", "--json", "--from", "2026-01-01", "--to", "2026-01-02"},
         db_path,
         2,
         "export: --csv and --json exclude each other"},
        {{"--from", "2026-01-01"}, db_path, 2, "export: --db, --from and --to are required"},
        {{"--from", "2026-01-01", "--to", "2026-01-02"},
         NULL,
         2,
         "export: --db, --from and --to are required"},
        {{"--from", "2026-01-01", "--to", "2026-01-02", "extra"},
         db_path,
         2,
         "export: unexpected argument 'extra'"},
        {{"--frm", "2026-01-01"}, db_path, 2, NULL},
    };
    char want_newer[512], want_missing[512], want_dir[512];
    snprintf(want_newer, sizeof want_newer,
             "export: %s has schema version %d, newer than this bmsfleet knows (%d): upgrade "
             "bmsfleet\n",
             newer, store_schema_version() + 1, store_schema_version());
    snprintf(want_missing, sizeof want_missing,
             "export: cannot open the database %s: No such file or directory\n", missing);
    snprintf(want_dir, sizeof want_dir, "export: %s is not a database file\n", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *const *a = cases[i].args;
        export_run(r, cases[i].db, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], NULL);
        if (r->status != cases[i].status)
            print_error("case %zu: exit %d: %s\n", i, r->status, r->err);
        assert_int_equal(r->status, cases[i].status);
        assert_string_equal(r->out, "");
        if (cases[i].err) {
            char first[512];
            nth_line(r->err, 0, first, sizeof first);
            assert_string_equal(first, cases[i].err);
        } else if (cases[i].db == newer) {
            assert_string_equal(r->err, want_newer);
        } else if (cases[i].db == missing) {
            assert_string_equal(r->err, want_missing);
        } else if (cases[i].db == dir) {
            assert_string_equal(r->err, want_dir);
        } else {
            assert_non_null(strstr(r->err, "usage: bmsfleet export"));
        }
    }
    /* the missing database was not created */
    assert_int_equal(access(missing, F_OK), -1);
    /* a file that is not a database */
    export_run(r, BMSFLEET_SOURCE_DIR "/README.md", "--from", "2026-01-01", "--to", "2026-01-02",
               NULL);
    assert_int_equal(r->status, 1);
    assert_non_null(strstr(r->err, "export: cannot read " BMSFLEET_SOURCE_DIR "/README.md: "));
    /* --help: the usage on stdout, exit 0 */
    export_run(r, NULL, "--help", NULL);
    assert_int_equal(r->status, 0);
    assert_int_equal(strncmp(r->out, "usage: bmsfleet export --db FILE", 32), 0);
    assert_non_null(strstr(r->out, "exit: 0"));
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readme_queries),
        cmocka_unit_test(test_docs_queries),
        cmocka_unit_test(test_raw_csv),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_resolution_1m),
        cmocka_unit_test(test_resolution_1h),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_json_stale_history),
        cmocka_unit_test(test_time_forms),
        cmocka_unit_test(test_local_zone),
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_concurrent_writer),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
