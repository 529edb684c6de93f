/* test_health: `bmsfleet health` through the real binary. Histories written with the store API
 * and a daemon_runs row in each state (writing, stopped, gone without a stop, none), packs
 * fresh and stale; then a real daemon polling the simulator: healthy while it runs, unhealthy
 * once it stopped. Also -c (storage.path from the configuration), --min-online, a missing
 * database and usage errors. */
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

static char dir[256], fresh_path[320], stale_path[320], empty_path[320], cfg_path[320];
static int64_t now_ms;

/* Two packs on one port: p1 answers, p2 answered long ago (its sample is stale). */
static const char yaml_body[] = "ports:\n"
                                "  - name: rack\n"
                                "    device: /dev/ttyBMSFLEETHEALTH0\n"
                                "    interval_s: 10\n"
                                "    packs:\n"
                                "      - { address: 1, id: p1 }\n"
                                "      - { address: 2, id: p2 }\n";

static void reading(struct reading *r, uint16_t idx, const char *id, int64_t ts, int sample)
{
    memset(r, 0, sizeof *r);
    r->ts_ms = ts;
    r->port_idx = 0;
    r->pack_idx = idx;
    snprintf(r->pack_id, sizeof r->pack_id, "%s", id);
    sample_init(&r->s);
    if (!sample) {
        r->kind = READING_HEALTH;
        r->health = PACK_ONLINE;
        return;
    }
    r->kind = READING_SAMPLE;
    struct sample *s = &r->s;
    s->address = (uint8_t)(idx + 1);
    s->has = SAMPLE_HAS_ANALOG;
    s->soc_cpct = 5000;
    s->full_mah = 100000;
    s->remaining_mah = 50000;
    s->ncells = 16;
    for (int i = 0; i < 16; i++) {
        s->cell_mv[i] = 3300;
        s->voltage_mv += 3300;
    }
    sample_finish(s);
}

/* p1_age_ms: how old p1's sample is (p2's is always an hour old). */
static void build_history(const char *path, int64_t p1_age_ms)
{
    struct config *cfg;
    struct store *st;
    store_open_yaml("health.yaml", yaml_body, path, &cfg, &st);
    struct reading r[4];
    const int64_t hour = 3600000, t = now_ms;
    reading(&r[0], 0, "p1", t - hour - 2000, 0);
    reading(&r[1], 1, "p2", t - hour - 2000, 0);
    reading(&r[2], 1, "p2", t - hour, 1);
    reading(&r[3], 0, "p1", t - p1_age_ms, 1);
    assert_int_equal(store_write_now(st, r, 4), 0);
    store_close(st);
    config_free(cfg);
}

static int group_setup(void **state)
{
    (void)state;
    log_set_level(LOG_WARN);
    const struct proc_file files[] = {{fresh_path, "fresh.db"},
                                      {stale_path, "stale.db"},
                                      {empty_path, "empty.db"},
                                      {cfg_path, "config.yaml"},
                                      {NULL, NULL}};
    if (proc_test_dir(dir, sizeof dir, "health", files))
        return -1;
    now_ms = wall_ms();
    build_history(fresh_path, 5000);
    build_history(stale_path, 3600000);
    store_create("health.yaml", yaml_body, empty_path);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    proc_clear_dir(dir, 0);
    return 0;
}

/* ---------------------------------------------------------------- helpers */

static struct proc_result *health_argv(const char *const *args)
{
    struct proc_result *r = calloc(1, sizeof *r);
    assert_non_null(r);
    char *argv[16];
    int n = 0;
    argv[n++] = (char *)BMSFLEET_BIN;
    argv[n++] = (char *)"health";
    for (size_t i = 0; args[i] && n < 15; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    assert_int_equal(proc_run(argv, NULL, 30000, r), 0);
    return r;
}
#define health_run(...) health_argv((const char *const[]){__VA_ARGS__, NULL})

/* True when text starts with want, where '#' in want stands for a number of seconds at least
 * as large as min_s: the ages grow while a slow (or emulated) machine starts the binary. */
static int starts_like(const char *text, const char *want, long min_s)
{
    for (; *want; want++) {
        if (*want == '#') {
            char *end;
            long v = strtol(text, &end, 10);
            if (end == text || v < min_s)
                return 0;
            text = end;
        } else if (*text++ != *want) {
            return 0;
        }
    }
    return 1;
}

/* Runs health on db and checks its exit code and that its one line starts like want, whose
 * '#' is an age of at least min_s. */
static void expect_health_age(const char *db, const char *min_online, int status, const char *want,
                              long min_s)
{
    struct proc_result *r =
        min_online ? health_run("--db", db, "--min-online", min_online) : health_run("--db", db);
    if (r->status != status || !starts_like(r->out, want, min_s))
        fail_msg("health --db %s: exit %d, out '%s', err '%s'; expected exit %d and '%s…'", db,
                 r->status, r->out, r->err, status, want);
    assert_int_equal(proc_count(r->out, "\n"), 1); /* one line */
    assert_string_equal(r->err, "");
    free(r);
}

static void expect_health(const char *db, const char *min_online, int status, const char *want)
{
    expect_health_age(db, min_online, status, want, 0);
}

/* Sets the newest run of db: last write age_ms ago, stopped or not. */
static void set_run(const char *db, int64_t age_ms, int stopped)
{
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    char sql[512];
    long long t;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    t = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    snprintf(sql, sizeof sql,
             "DELETE FROM daemon_runs;"
             "INSERT INTO daemon_runs (started, last_write, stopped, heartbeat_s, version)"
             " VALUES (%lld, %lld, %s%lld, 60, 'test')",
             t - 7200000, t - (long long)age_ms, stopped ? "" : "NULL * ", t - (long long)age_ms);
    assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
}

/* ---------------------------------------------------------------- tests */

static void test_no_daemon(void **state)
{
    (void)state;
    /* written with the store API: no run recorded, however fresh the samples */
    expect_health(fresh_path, NULL, 1, "unhealthy: no daemon has written to this history\n");
    expect_health(empty_path, NULL, 1, "unhealthy: no daemon has written to this history\n");
}

static void test_writing_fresh(void **state)
{
    (void)state;
    set_run(fresh_path, 3000, 0);
    expect_health_age(fresh_path, NULL, 0,
                      "healthy: daemon writing (last write # s ago), 1/2 packs online\n", 3);
    /* p2's sample is an hour old: two online packs are asked for, one is */
    expect_health_age(fresh_path, "2", 1,
                      "unhealthy: daemon writing (last write # s ago), 1/2 packs online\n", 3);
}

static void test_writing_but_stale(void **state)
{
    (void)state;
    /* the daemon writes heartbeats but no pack answered for an hour */
    set_run(stale_path, 1000, 0);
    expect_health_age(stale_path, NULL, 1, "unhealthy: daemon writing (last write # s ago), 0/2",
                      1);
    expect_health_age(stale_path, "0", 0, "healthy: daemon writing (last write # s ago), 0/2", 1);
    /* writing, no sample at all yet */
    set_run(empty_path, 1000, 0);
    expect_health_age(
        empty_path, NULL, 1,
        "unhealthy: daemon writing (last write # s ago), 0/2 packs online, no sample yet\n", 1);
}

static void test_stopped_or_gone(void **state)
{
    (void)state;
    set_run(fresh_path, 4000, 1);
    expect_health_age(fresh_path, NULL, 1, "unhealthy: daemon stopped, last write # s ago\n", 4);
    /* no stop recorded and no write for longer than two heartbeats (120 s): killed, crashed */
    set_run(fresh_path, 600000, 0);
    expect_health_age(fresh_path, NULL, 1, "unhealthy: daemon not writing, last write # s ago\n",
                      600);
}

static void test_config_and_errors(void **state)
{
    (void)state;
    set_run(fresh_path, 2000, 0);
    FILE *f = fopen(cfg_path, "w");
    assert_non_null(f);
    fprintf(f, "%sstorage: {path: %s}\n", yaml_body, fresh_path);
    fclose(f);
    struct proc_result *r = health_run("-c", cfg_path);
    assert_int_equal(r->status, 0);
    assert_non_null(strstr(r->out, "healthy: daemon writing"));
    free(r);

    char missing[400];
    snprintf(missing, sizeof missing, "%s/missing.db", dir);
    r = health_run("--db", missing);
    assert_int_equal(r->status, 1);
    assert_true(strncmp(r->out, "unhealthy: ", 11) == 0);
    assert_int_equal(access(missing, F_OK), -1); /* never created */
    free(r);

    char bad_cfg[400];
    snprintf(bad_cfg, sizeof bad_cfg, "%s/bad.yaml", dir);
    f = fopen(bad_cfg, "w");
    assert_non_null(f);
    fputs("ports: [ { nmae: x } ]\n", f);
    fclose(f);
    r = health_run("-c", bad_cfg);
    assert_int_equal(r->status, 2);
    free(r);

    r = health_run("--db", fresh_path, "-c", cfg_path);
    assert_int_equal(r->status, 2);
    free(r);
    r = health_run("--db", fresh_path, "--min-online", "-1");
    assert_int_equal(r->status, 2);
    free(r);
    r = health_run("--db", fresh_path, "extra");
    assert_int_equal(r->status, 2);
    free(r);
    r = health_run("--help");
    assert_int_equal(r->status, 0);
    assert_non_null(strstr(r->out, "usage: bmsfleet health"));
    free(r);
}

/* The real thing: a daemon polling the simulator is healthy within a few seconds, and
 * unhealthy once stopped (it records its stop). */
static void test_real_daemon(void **state)
{
    (void)state;
    char link[400], db[400], cfg[400], out[400], err[400];
    snprintf(link, sizeof link, "%s/tty-sim", dir);
    snprintf(db, sizeof db, "%s/daemon.db", dir);
    snprintf(cfg, sizeof cfg, "%s/daemon.yaml", dir);
    snprintf(out, sizeof out, "%s/daemon.out", dir);
    snprintf(err, sizeof err, "%s/daemon.err", dir);
    const char *extra[] = {"--protocol",   "daren", "--addresses", "1",
                           "--time-scale", "0",     "--baud",      "115200",
                           "--turnaround", "2",     NULL};
    pid_t sim = proc_start_sim(BMSFLEET_BIN, link, extra);
    assert_true(sim > 0);
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fprintf(f,
            "ports:\n  - name: a\n    device: %s\n    protocol: daren\n    baud: 115200\n"
            "    timeout_ms: 300\n    interval_s: 1\n    packs:\n      - { address: 1, id: a1 }\n"
            "storage: {path: %s, commit_interval_s: 1}\n",
            link, db);
    fclose(f);
    char *argv[] = {(char *)BMSFLEET_BIN, "run", "-c", cfg, NULL};
    pid_t daemon = proc_spawn(argv, out, err);
    assert_true(daemon > 0);
    int healthy = 0;
    struct proc_result *r = NULL;
    for (long long deadline = proc_now_ms() + 20000; proc_now_ms() < deadline; usleep(200000)) {
        free(r);
        r = health_run("-c", cfg);
        if (r->status == 0) {
            healthy = 1;
            break;
        }
    }
    if (!healthy)
        print_error("last: exit %d %s%s\n", r ? r->status : -1, r ? r->out : "", r ? r->err : "");
    free(r);
    assert_int_equal(proc_stop(daemon), 0);
    proc_stop(sim);
    assert_true(healthy);
    r = health_run("--db", db);
    assert_int_equal(r->status, 1);
    assert_non_null(strstr(r->out, "unhealthy: daemon stopped"));
    free(r);
    const char *names[] = {"tty-sim", "daemon.db-wal", "daemon.db-shm", NULL};
    for (int i = 0; names[i]; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_daemon),         cmocka_unit_test(test_writing_fresh),
        cmocka_unit_test(test_writing_but_stale), cmocka_unit_test(test_stopped_or_gone),
        cmocka_unit_test(test_config_and_errors), cmocka_unit_test(test_real_daemon),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
