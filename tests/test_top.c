/* test_top: `bmsfleet top` through the real binary, on a history written with the store API:
 * two banks, a pack offline, a pack that never answered, an alarm. The bank line carries the
 * capacity-weighted SOC, every pack has its row, the offline pack is marked, the last five
 * events come in order; an empty history says so; a writer holding its lock does not block
 * the view; on a terminal the screen is cleared and lines fit its width; the watch mode stops
 * cleanly on SIGTERM; missing database and usage errors give their exit codes. */
#include <pty.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>

#include "config.h"
#include "log.h"
#include "proc.h"
#include "queue.h"
#include "store.h"
#include "store_helpers.h"

static char dir[256], db_path[320], empty_path[320], stale_path[320];
static int64_t now_ms;

/* Two ports; bank house: a1 (100 Ah), a2 (50 Ah), b1 (50 Ah, goes offline); bank shed: s1 and
 * ghost, which never answers and so has neither sample nor health event. */
static const char yaml_body[] = "ports:\n"
                                "  - name: rack-a\n"
                                "    device: /dev/ttyBMSFLEETTOP0\n"
                                "    packs:\n"
                                "      - { address: 1, id: a1, bank: house }\n"
                                "      - { address: 2, id: a2, bank: house }\n"
                                "  - name: rack-b\n"
                                "    device: /dev/ttyBMSFLEETTOP1\n"
                                "    protocol: pace\n"
                                "    packs:\n"
                                "      - { address: 1, id: b1, bank: house }\n"
                                "      - { address: 2, id: s1, bank: shed }\n"
                                "      - { address: 3, id: ghost, bank: shed }\n"
                                "banks:\n"
                                "  - { id: house }\n"
                                "  - { id: shed }\n";

static void base_reading(struct reading *r, uint16_t port, uint16_t idx, const char *id, int64_t ts)
{
    memset(r, 0, sizeof *r);
    r->ts_ms = ts;
    r->port_idx = port;
    r->pack_idx = idx;
    snprintf(r->pack_id, sizeof r->pack_id, "%s", id);
    sample_init(&r->s);
}

/* 16 cells from base mV up to base + 15; SOC in %, capacity in Ah, current in mA. */
static void sample_reading(struct reading *r, uint16_t port, uint16_t idx, const char *id,
                           int64_t ts, int soc_pct, int full_ah, int32_t current_ma,
                           int32_t cell_base_mv, uint32_t alarms)
{
    base_reading(r, port, idx, id, ts);
    r->kind = READING_SAMPLE;
    struct sample *s = &r->s;
    s->address = (uint8_t)(idx + 1);
    s->has = SAMPLE_HAS_ANALOG | SAMPLE_HAS_ALARMS;
    s->current_ma = current_ma;
    s->soc_cpct = soc_pct * 100;
    s->soh_cpct = 9900;
    s->full_mah = full_ah * 1000;
    s->remaining_mah = full_ah * soc_pct * 10;
    s->design_mah = full_ah * 1000;
    s->cycles = 100 + idx;
    s->ncells = 16;
    s->voltage_mv = 0;
    for (int i = 0; i < 16; i++) {
        s->cell_mv[i] = cell_base_mv + i;
        s->voltage_mv += s->cell_mv[i];
    }
    s->ntemps = 2;
    s->temp_dc[0] = 250 + idx;
    s->temp_dc[1] = 301;
    s->temp_role[0] = SAMPLE_TEMP_CELL;
    s->temp_role[1] = SAMPLE_TEMP_MOS;
    s->alarms = alarms;
    sample_finish(s);
}

static void health_reading(struct reading *r, uint16_t port, uint16_t idx, const char *id,
                           int64_t ts, enum pack_health h, const char *detail)
{
    base_reading(r, port, idx, id, ts);
    r->kind = READING_HEALTH;
    r->health = h;
    snprintf(r->detail, sizeof r->detail, "%s", detail);
}

static void build_history(const char *path)
{
    struct config *cfg;
    struct store *st;
    store_open_yaml("top.yaml", yaml_body, path, &cfg, &st);
    struct reading r[16];
    size_t n = 0;
    int64_t t = now_ms;
    health_reading(&r[n++], 0, 0, "a1", t - 600000, PACK_ONLINE, "");
    health_reading(&r[n++], 0, 1, "a2", t - 599000, PACK_ONLINE, "");
    health_reading(&r[n++], 1, 0, "b1", t - 598000, PACK_ONLINE, "");
    health_reading(&r[n++], 1, 1, "s1", t - 597000, PACK_ONLINE, "");
    sample_reading(&r[n++], 1, 0, "b1", t - 400000, 50, 50, -2000, 3290, 0);
    health_reading(&r[n++], 1, 0, "b1", t - 300000, PACK_STALE, "no answer (timeout 1000 ms)");
    health_reading(&r[n++], 1, 0, "b1", t - 120000, PACK_OFFLINE, "no answer (timeout 1000 ms)");
    sample_reading(&r[n++], 0, 0, "a1", t - 10000, 80, 100, 10000, 3300, 0);
    sample_reading(&r[n++], 0, 1, "a2", t - 10000, 20, 50, -5000, 3250, SAMPLE_ALARM_SOC_LOW);
    sample_reading(&r[n++], 1, 1, "s1", t - 10000, 90, 100, 0, 3350, 0);
    assert_int_equal(store_write_now(st, r, n), 0);
    store_close(st);
    config_free(cfg);
}

/* An hour after the daemon stopped: a1, a2, b1 have hour-old samples and "online" as their
 * last event (a stopped daemon writes no offline event); s1's sample is 500 ms ahead of now
 * (a clock a little ahead, or 'now' in whole seconds); the run row says when the daemon
 * started and stopped (each test sets the state it shows). */
static void build_stale_history(const char *path)
{
    struct config *cfg;
    struct store *st;
    store_open_yaml("top.yaml", yaml_body, path, &cfg, &st);
    struct reading r[8];
    size_t n = 0;
    const int64_t hour = 3600000, t = now_ms;
    health_reading(&r[n++], 0, 0, "a1", t - hour - 1000, PACK_ONLINE, "");
    health_reading(&r[n++], 0, 1, "a2", t - hour - 1000, PACK_ONLINE, "");
    health_reading(&r[n++], 1, 0, "b1", t - hour - 1000, PACK_ONLINE, "");
    health_reading(&r[n++], 1, 1, "s1", t - 2000, PACK_ONLINE, "");
    sample_reading(&r[n++], 0, 0, "a1", t - hour, 80, 100, 10000, 3300, 0);
    sample_reading(&r[n++], 0, 1, "a2", t - hour, 20, 50, -5000, 3250, 0);
    sample_reading(&r[n++], 1, 0, "b1", t - hour, 50, 50, -2000, 3290, 0);
    sample_reading(&r[n++], 1, 1, "s1", t + 500, 90, 100, 0, 3350, 0);
    assert_int_equal(store_write_now(st, r, n), 0);
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO daemon_runs (started, last_write, stopped, heartbeat_s, version)"
             " VALUES (%lld, %lld, %lld, 60, 'test')",
             (long long)(t - 2 * hour), (long long)(t - hour), (long long)(t - hour));
    assert_int_equal(sqlite3_exec(store_db(st), sql, NULL, NULL, NULL), SQLITE_OK);
    store_close(st);
    config_free(cfg);
}

static int group_setup(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1); /* local time = UTC, here and in every child */
    tzset();
    log_set_level(LOG_WARN);
    const struct proc_file files[] = {
        {db_path, "history.db"}, {empty_path, "empty.db"}, {stale_path, "stale.db"}, {NULL, NULL}};
    if (proc_test_dir(dir, sizeof dir, "top", files))
        return -1;
    now_ms = wall_ms();
    build_history(db_path);
    build_stale_history(stale_path);
    store_create("top.yaml", yaml_body, empty_path);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (getenv("BMSFLEET_TOP_KEEP"))
        return 0; /* to look at the history and the outputs */
    proc_clear_dir(dir, 0);
    return 0;
}

/* ---------------------------------------------------------------- helpers */

static void top_argv(struct proc_result *r, const char *const *args)
{
    char *argv[16];
    int n = 0;
    argv[n++] = (char *)BMSFLEET_BIN;
    argv[n++] = (char *)"top";
    for (size_t i = 0; args[i] && n < 15; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    assert_int_equal(proc_run(argv, NULL, 30000, r), 0);
}
#define top_run(r, ...) top_argv(r, (const char *const[]){__VA_ARGS__, NULL})

/* The line of text that starts with prefix, without its newline (fails when there is none). */
static void line_starting(const char *text, const char *prefix, char *out, size_t cap)
{
    size_t len = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, prefix, len) == 0) {
            size_t l = strcspn(p, "\n");
            assert_true(l < cap);
            memcpy(out, p, l);
            out[l] = '\0';
            return;
        }
    }
    fail_msg("no line starting with '%s' in:\n%s", prefix, text);
}

/* The whitespace-separated field k (0-based) of a line. */
static void field(const char *line, int k, char *out, size_t cap)
{
    const char *p = line;
    for (int i = 0;; i++) {
        p += strspn(p, " ");
        size_t l = strcspn(p, " ");
        if (i == k) {
            assert_true(l > 0 && l < cap);
            memcpy(out, p, l);
            out[l] = '\0';
            return;
        }
        assert_true(l > 0);
        p += l;
    }
}

static void expect_field(const char *line, int k, const char *want)
{
    char got[128];
    field(line, k, got, sizeof got);
    if (strcmp(got, want) != 0)
        fail_msg("field %d of '%s' is '%s', expected '%s'", k, line, got, want);
}

static void local_time(int64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    strftime(out, cap, "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
}

/* ---------------------------------------------------------------- tests */

static void test_bank_packs_events(void **state)
{
    (void)state;
    struct proc_result *r = calloc(1, sizeof *r);
    assert_non_null(r);
    struct timespec t0, t1;
    clock_gettime(CLOCK_REALTIME, &t0);
    top_run(r, "--db", db_path, "--once");
    clock_gettime(CLOCK_REALTIME, &t1);
    if (r->status != 0)
        print_error("%s%s", r->out, r->err);
    assert_int_equal(r->status, 0);
    assert_string_equal(r->err, "");
    assert_null(strchr(r->out, '\033')); /* not a terminal: no screen control, no colour */
    assert_non_null(strstr(r->out, "bmsfleet top  "));
    assert_null(strstr(r->out, "Ctrl-C")); /* --once */
    /* written with the store API, not by a daemon: no run recorded */
    assert_non_null(strstr(r->out, "\n\nno daemon has written to this history\n\n"));
    char line[512];

    /* banks: header, then one line each; SOC weighted by full capacity:
     * (80 % × 100 Ah + 20 % × 50 Ah + 50 % × 50 Ah) / 200 Ah = 57.5 % (the plain mean: 50) */
    line_starting(r->out, "bank ", line, sizeof line);
    expect_field(line, 1, "online");
    expect_field(line, 2, "SOC");
    line_starting(r->out, "house ", line, sizeof line);
    const char *house[] = {"house",       "2/3",         "57.5", "3.00", "163",
                           "115.0/200.0", "3.250-3.315", "65",   "30.1"};
    for (int k = 0; k < 9; k++)
        expect_field(line, k, house[k]);
    line_starting(r->out, "shed ", line, sizeof line);
    const char *shed[] = {"shed",       "1/2",         "90.0", "0.00", "0",
                          "90.0/100.0", "3.350-3.365", "15",   "30.1"};
    for (int k = 0; k < 9; k++)
        expect_field(line, k, shed[k]);

    /* packs: every one, in bank order; the columns after pack and bank */
    line_starting(r->out, "pack ", line, sizeof line);
    const char *heads[] = {"pack", "bank", "health", "age", "SOC", "%", "V", "A", "W"};
    for (int k = 0; k < 9; k++)
        expect_field(line, k, heads[k]);
    line_starting(r->out, "a1 ", line, sizeof line);
    const char *a1[] = {"a1",    "house", "online",      "10s", "80.0", "52.92",
                        "10.00", "529",   "3.300-3.315", "15",  "30.1", "100"};
    for (int k = 0; k < 12; k++) {
        if (k == 3) { /* 10 s old when the history was written, plus the time since (seconds
                       * on a slow machine or under qemu), give or take one second */
            char age[16];
            field(line, 3, age, sizeof age);
            long low = (long)((int64_t)t0.tv_sec * 1000 + t0.tv_nsec / 1000000 - now_ms) / 1000 + 9;
            long high =
                (long)((int64_t)t1.tv_sec * 1000 + t1.tv_nsec / 1000000 - now_ms) / 1000 + 11;
            char *end;
            long got = strtol(age, &end, 10);
            if (strcmp(end, "s") != 0 || got < low || got > high)
                fail_msg("a1's age is '%s', expected %ld..%ld s", age, low, high);
            continue;
        }
        expect_field(line, k, a1[k]);
    }
    line_starting(r->out, "a2 ", line, sizeof line);
    expect_field(line, 2, "online");
    expect_field(line, 4, "20.0");
    expect_field(line, 6, "-5.00");
    line_starting(r->out, "b1 ", line, sizeof line);
    expect_field(line, 1, "house");
    expect_field(line, 2, "OFFLINE");
    expect_field(line, 3, "7m"); /* its last sample is 400 s old */
    expect_field(line, 4, "50.0");
    line_starting(r->out, "s1 ", line, sizeof line);
    expect_field(line, 1, "shed");
    expect_field(line, 2, "online");
    line_starting(r->out, "ghost ", line, sizeof line);
    const char *ghost[] = {"ghost", "shed", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-"};
    for (int k = 0; k < 12; k++)
        expect_field(line, k, ghost[k]);
    const char *a2 = strstr(r->out, "\na2 "), *b1 = strstr(r->out, "\nb1 ");
    const char *s1 = strstr(r->out, "\ns1 "), *gh = strstr(r->out, "\nghost ");
    assert_true(strstr(r->out, "\na1 ") < a2 && a2 < b1 && b1 < s1 && s1 < gh);

    /* the offline pack is called out, with since when and why */
    char when[32], want[128];
    local_time(now_ms - 120000, when, sizeof when);
    snprintf(want, sizeof want, "\nb1 is OFFLINE since %s: no answer (timeout 1000 ms)\n", when);
    assert_non_null(strstr(r->out, want));
    assert_int_equal(proc_count(r->out, " is "), 1);

    /* the last 5 events, oldest first */
    const char *ev = strstr(r->out, "\nlast events\n");
    assert_non_null(ev);
    ev += strlen("\nlast events\n");
    line_starting(ev, "time ", line, sizeof line);
    struct {
        int64_t ago_ms;
        const char *pack, *kind, *detail;
    } events[] = {{598000, "b1", "online", ""},
                  {597000, "s1", "online", ""},
                  {300000, "b1", "stale", "no answer (timeout 1000 ms)"},
                  {120000, "b1", "offline", "no answer (timeout 1000 ms)"},
                  {10000, "a2", "alarm_raised", "low_soc"}};
    const char *p = strchr(ev, '\n') + 1;
    for (size_t i = 0; i < 5; i++) {
        size_t l = strcspn(p, "\n");
        snprintf(line, sizeof line, "%.*s", (int)l, p);
        local_time(now_ms - events[i].ago_ms, when, sizeof when);
        assert_true(strncmp(line, when, strlen(when)) == 0);
        expect_field(line, 2, events[i].pack);
        expect_field(line, 3, events[i].kind);
        if (*events[i].detail)
            assert_non_null(strstr(line, events[i].detail));
        p += l + 1;
    }
    assert_string_equal(p, ""); /* nothing after the fifth */
    free(r);
}

static void test_empty_history(void **state)
{
    (void)state;
    struct proc_result *r = calloc(1, sizeof *r);
    assert_non_null(r);
    top_run(r, "--db", empty_path, "--once");
    assert_int_equal(r->status, 0);
    assert_non_null(strstr(r->out, "\nno samples yet\n"));
    assert_non_null(strstr(r->out, "\nlast events\nnone yet\n"));
    char line[512];
    line_starting(r->out, "a1 ", line, sizeof line); /* the packs are known, with no values */
    expect_field(line, 2, "-");
    expect_field(line, 4, "-");
    free(r);
}

/* WAL: the daemon's writer in the middle of a transaction does not hold the view up, and the
 * view shows what was committed before it. */
static void test_writer_does_not_block(void **state)
{
    (void)state;
    sqlite3 *w;
    assert_int_equal(sqlite3_open(db_path, &w), SQLITE_OK);
    assert_int_equal(sqlite3_exec(w,
                                  "BEGIN IMMEDIATE; UPDATE samples SET soc_cpct = 100"
                                  " WHERE pack = (SELECT id FROM packs WHERE pack_id = 'a1')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    struct proc_result *r = calloc(1, sizeof *r);
    assert_non_null(r);
    long long t0 = proc_now_ms();
    top_run(r, "--db", db_path, "--once");
    long long took = proc_now_ms() - t0;
    assert_int_equal(r->status, 0);
    assert_true(took < 1500); /* below the busy timeout: it never waited for the lock */
    char line[512];
    line_starting(r->out, "a1 ", line, sizeof line);
    expect_field(line, 4, "80.0");
    assert_int_equal(sqlite3_exec(w, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(w);
    free(r);
}

/* A long history costs nothing: the views are read as one row per pack (a LEFT JOIN straight
 * onto v_latest made SQLite build v_samples over every sample: seconds per screen). */
static void test_long_history(void **state)
{
    (void)state;
    char path[400];
    snprintf(path, sizeof path, "%s/long.db", dir);
    struct config *cfg;
    struct store *st;
    store_open_yaml("top.yaml", yaml_body, path, &cfg, &st);
    struct reading r;
    sample_reading(&r, 0, 0, "a1", now_ms - 5000, 50, 100, 0, 3300, 0);
    assert_int_equal(store_write_now(st, &r, 1), 0);
    /* 400 000 more samples, spread over the packs, and each pack's newest as the writer keeps
     * it (schema 002) */
    assert_int_equal(
        sqlite3_exec(store_db(st),
                     "BEGIN;"
                     "WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k"
                     " WHERE i < 399999)"
                     " INSERT INTO samples (pack, ts, voltage_mv, current_ma, soc_cpct,"
                     " full_mah, remaining_mah, cell_min_mv, cell_max_mv)"
                     " SELECT 1 + i % 4, (SELECT max(ts) FROM samples) + i, 52000,"
                     " -1000, 5000, 100000, 50000, 3250, 3260 FROM k;"
                     "UPDATE packs SET last_sample = (SELECT max(id) FROM samples"
                     " WHERE samples.pack = packs.id);"
                     "COMMIT",
                     NULL, NULL, NULL),
        SQLITE_OK);
    store_close(st);
    config_free(cfg);

    struct proc_result *res = calloc(1, sizeof *res);
    assert_non_null(res);
    long long t0 = proc_now_ms();
    top_run(res, "--db", path, "--once");
    long long took = proc_now_ms() - t0;
    assert_int_equal(res->status, 0);
    char line[512];
    line_starting(res->out, "house ", line, sizeof line);
    expect_field(line, 1, "0/3"); /* samples, but no health event in this history */
    expect_field(line, 2, "50.0");
    line_starting(res->out, "b1 ", line, sizeof line);
    expect_field(line, 4, "50.0");
    if (took >= 1500)
        fail_msg("top --once took %lld ms on 400 000 samples", took);
    free(res);
}

/* Watch mode into a pipe: frame after frame, no screen control; SIGTERM ends it with 0. */
static void test_watch_and_stop(void **state)
{
    (void)state;
    char out[400], err[400];
    snprintf(out, sizeof out, "%s/watch.out", dir);
    snprintf(err, sizeof err, "%s/watch.err", dir);
    char *argv[] = {
        (char *)BMSFLEET_BIN, (char *)"top", (char *)"--db", db_path, (char *)"--interval",
        (char *)"0.2",        NULL};
    pid_t pid = proc_spawn(argv, out, err);
    assert_true(pid > 0);
    assert_int_equal(proc_wait_for(out, "bmsfleet top  ", 3, 20000), 0);
    assert_int_equal(proc_stop(pid), 0);
    char *text = proc_slurp(out);
    assert_non_null(text);
    assert_non_null(strstr(text, "every 0.2 s, Ctrl-C to stop"));
    assert_null(strchr(text, '\033'));
    assert_true(proc_count(text, "\nb1 is OFFLINE since ") >= 3);
    free(text);
    text = proc_slurp(err);
    assert_non_null(text);
    assert_string_equal(text, "");
    free(text);
}

/* On a terminal 60 columns wide: the screen is cleared, no line is wider than 59 columns, the
 * offline pack is in red. */
static void test_terminal(void **state)
{
    (void)state;
    struct winsize ws = {.ws_row = 40, .ws_col = 60};
    int master;
    pid_t pid = forkpty(&master, NULL, NULL, &ws);
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(BMSFLEET_BIN, BMSFLEET_BIN, "top", "--db", db_path, "--once", (char *)NULL);
        _exit(127);
    }
    char buf[65536];
    size_t n = 0;
    for (;;) {
        ssize_t k = read(master, buf + n, sizeof buf - 1 - n);
        if (k <= 0)
            break; /* EIO once the child is gone */
        n += (size_t)k;
    }
    buf[n] = '\0';
    close(master);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* the screen before scrolls up into the scrollback (one line feed per row), then the frame
     * is drawn from the top left */
    size_t lf = strspn(buf, "\r\n");
    assert_true(strncmp(buf + lf, "\033[H", 3) == 0);
    assert_int_equal(lf, 2 * 40); /* "\r\n" each on the pty */
    assert_non_null(strstr(buf, "\033[J"));
    assert_non_null(strstr(buf, "\033[1;31mb1 "));
    /* visible width of each line: escape sequences take no room */
    for (const char *p = buf; *p;) {
        int w = 0;
        for (; *p && *p != '\n'; p++) {
            if (*p == '\033') {
                p++;
                if (*p == '[')
                    while (p[1] && (p[1] < 0x40 || p[1] > 0x7e))
                        p++;
                if (p[1])
                    p++;
                continue;
            }
            if (*p != '\r' && ((unsigned char)*p & 0xc0) != 0x80)
                w++;
        }
        assert_true(w <= 59);
        if (*p)
            p++;
    }
    assert_non_null(strstr(buf, "\033[33mhouse ")); /* a pack of the bank is not online */
}


/* Sets the stale history's run row (SQL run on it) and shows it once. */
static void stale_top(struct proc_result *r, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(stale_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    top_run(r, "--db", stale_path, "--once");
    if (r->status != 0)
        print_error("%s%s", r->out, r->err);
    assert_int_equal(r->status, 0);
}

/* An hour after the daemon stopped, nothing hour-old is shown as live: the packs whose last
 * event says online are OFFLINE by the age of their sample, the banks count only the fresh
 * pack, the stop is in the header; the sample 500 ms ahead is 0 s old, not "-1s". */
static void test_stale_history(void **state)
{
    (void)state;
    struct proc_result *r = calloc(1, sizeof *r);
    assert_non_null(r);
    /* s1's sample 500 ms ahead of the moment top runs, whatever time the tests took */
    char sql[512];
    snprintf(sql, sizeof sql,
             "UPDATE daemon_runs SET last_write = %lld, stopped = %lld;"
             "UPDATE samples SET ts = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
             " + 500 WHERE pack = (SELECT id FROM packs WHERE pack_id = 's1')",
             (long long)(now_ms - 3600000), (long long)(now_ms - 3600000));
    stale_top(r, sql);
    char when[32], want[256], line[512];
    local_time(now_ms - 3600000, when, sizeof when);
    snprintf(want, sizeof want,
             "\n\ndaemon stopped at %s (60m ago): no daemon has written since\n\n", when);
    if (strstr(r->out, want) == NULL)
        fail_msg("no '%s' in:\n%s", want, r->out);
    line_starting(r->out, "house ", line, sizeof line);
    expect_field(line, 1, "0/3");
    line_starting(r->out, "shed ", line, sizeof line);
    expect_field(line, 1, "1/2");
    const char *old[] = {"a1 ", "a2 ", "b1 "};
    for (size_t i = 0; i < 3; i++) {
        line_starting(r->out, old[i], line, sizeof line);
        expect_field(line, 2, "OFFLINE");
        expect_field(line, 3, "60m");
        snprintf(want, sizeof want,
                 "\n%.2s is OFFLINE since %s: no sample for more than 91 s\n", old[i], when);
        if (strstr(r->out, want) == NULL)
            fail_msg("no '%s' in:\n%s", want, r->out);
    }
    line_starting(r->out, "s1 ", line, sizeof line);
    expect_field(line, 2, "online");
    expect_field(line, 3, "0s");
    assert_null(strstr(r->out, "-1s"));
    assert_int_equal(proc_count(r->out, " is OFFLINE since "), 3);
    assert_int_equal(proc_count(r->out, " is "), 3);
    free(r);
}

/* kill -9, a crash, a power cut: no stop recorded, no write for an hour. */
static void test_vanished_daemon(void **state)
{
    (void)state;
    struct proc_result *r = calloc(1, sizeof *r);
    assert_non_null(r);
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE daemon_runs SET last_write = %lld, stopped = NULL",
             (long long)(now_ms - 3600000));
    stale_top(r, sql);
    char when[32], want[256], line[512];
    local_time(now_ms - 3600000, when, sizeof when);
    snprintf(want, sizeof want,
             "\n\nno daemon has written since %s (60m ago); it recorded no stop (killed,"
             " crashed, or its writes fail)\n\n",
             when);
    if (strstr(r->out, want) == NULL)
        fail_msg("no '%s' in:\n%s", want, r->out);
    line_starting(r->out, "a1 ", line, sizeof line);
    expect_field(line, 2, "OFFLINE");
    free(r);
}

/* A daemon that writes (its last write just now) while its packs' data is an hour old: the
 * header says it is writing, the packs stay OFFLINE. */
static void test_daemon_writing(void **state)
{
    (void)state;
    struct proc_result *r = calloc(1, sizeof *r);
    assert_non_null(r);
    stale_top(r, "UPDATE daemon_runs SET stopped = NULL,"
                 " last_write = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)");
    char when[32], want[256], line[512];
    local_time(now_ms - 7200000, when, sizeof when);
    line_starting(r->out, "daemon writing: last write ", line, sizeof line);
    char age[16];
    field(line, 4, age, sizeof age);
    assert_true(strcmp(age, "0s") == 0 || strcmp(age, "1s") == 0 || strcmp(age, "2s") == 0);
    snprintf(want, sizeof want, " ago (running since %s)", when);
    assert_non_null(strstr(line, want));
    line_starting(r->out, "b1 ", line, sizeof line);
    expect_field(line, 2, "OFFLINE");
    line_starting(r->out, "house ", line, sizeof line);
    expect_field(line, 1, "0/3");
    free(r);
}

static void test_errors(void **state)
{
    (void)state;
    struct proc_result *r = calloc(1, sizeof *r);
    assert_non_null(r);
    char missing[400], line[512];
    snprintf(missing, sizeof missing, "%s/missing.db", dir);

    top_run(r, "--db", missing, "--once");
    assert_int_equal(r->status, 1);
    assert_non_null(strstr(r->err, "top: cannot open the database"));
    assert_non_null(strstr(r->err, "No such file or directory"));
    assert_int_equal(access(missing, F_OK), -1); /* never created */

    top_run(r, "--db", dir, "--once");
    assert_int_equal(r->status, 1);
    assert_non_null(strstr(r->err, "is not a database file"));

    /* an SQLite file that is not a bmsfleet history */
    char other[400];
    snprintf(other, sizeof other, "%s/other.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(other, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    top_run(r, "--db", other, "--once");
    assert_int_equal(r->status, 1);
    assert_non_null(strstr(r->err, "is not a bmsfleet history"));

    /* a history of an older schema (here 4): only the daemon migrates, top says so */
    char older[400], want[600];
    snprintf(older, sizeof older, "%s/older.db", dir);
    assert_int_equal(sqlite3_open(older, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x); PRAGMA user_version = 4", NULL, NULL,
                                  NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    top_run(r, "--db", older, "--once");
    assert_int_equal(r->status, 1);
    snprintf(want, sizeof want,
             "top: %s has schema version 4, older than this bmsfleet reads (%d): start the "
             "daemon (bmsfleet run) once on it to migrate it\n",
             older, store_schema_version());
    assert_string_equal(r->err, want);

    const char *const usage_cases[][4] = {
        {"--once", NULL},
        {"--db", db_path, "--interval", "0"},
        {"--db", db_path, "--interval", "soon"},
        {"--db", db_path, "--bogus", NULL},
        {"--db", db_path, "extra", NULL},
    };
    for (size_t i = 0; i < sizeof usage_cases / sizeof usage_cases[0]; i++) {
        const char *args[5] = {0};
        memcpy(args, usage_cases[i], sizeof usage_cases[i]);
        top_argv(r, args);
        if (r->status != 2)
            print_error("case %zu: status %d: %s\n", i, r->status, r->err);
        assert_int_equal(r->status, 2);
        assert_string_equal(r->out, "");
        assert_non_null(strstr(r->err, "top"));
    }

    top_run(r, "--help");
    assert_int_equal(r->status, 0);
    line_starting(r->out, "usage: bmsfleet top --db FILE", line, sizeof line);
    assert_non_null(strstr(r->out, "exit: 0"));
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bank_packs_events),
        cmocka_unit_test(test_empty_history),
        cmocka_unit_test(test_writer_does_not_block),
        cmocka_unit_test(test_long_history),
        cmocka_unit_test(test_watch_and_stop),
        cmocka_unit_test(test_terminal),
        cmocka_unit_test(test_stale_history),
        cmocka_unit_test(test_vanished_daemon),
        cmocka_unit_test(test_daemon_writing),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
