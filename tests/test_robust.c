/* test_robust: the history survives what happens to a box in a shed. The real `bmsfleet run`
 * against real simulators over ptys, with its SQLite database checked from the test's own
 * connection: kill -9 during ingestion (many times), a full disk (a small tmpfs, and
 * RLIMIT_FSIZE), readers that hold a snapshot or run the sqlite3 shell, and clean restarts.
 *
 * The daemon runs with --stdout, so every reading it produced is also a JSON line: what was
 * produced is compared with what was stored, by (pack, ts). Assertions are on counts, never on
 * wall-clock durations; waits have generous upper bounds. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* prlimit */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <ftw.h>
#include <math.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include "broker.h"
#include "proc.h"

#define WAIT_MS     30000
#define PACKS       4
#define KILL_ROUNDS 22
/* One commit interval (1 s) of a 1 s polling interval, with one round of slack. */
#define MAX_LOST_PER_KILL (PACKS * 2)

static char dir[256];
static char mnt[300], path_a[300], path_b[300], cfg_path[300], out_path[300], err_path[300];
static char db_path[400];
static pid_t sims[2];
static pid_t daemon_pid, relay_pid;
static int mounted;
/* the disk-full test with MQTT: a private broker and a subscriber to bmsfleet/# */
static struct broker br;
static pid_t sub_pid;
static char sub_path[300];

/* ---- fixture: a fresh directory per test; teardown kills every child and removes it all ---- */

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/bmsfleet-test-robust-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(mnt, sizeof mnt, "%s/mnt", dir);
    snprintf(path_a, sizeof path_a, "%s/bus-a", dir);
    snprintf(path_b, sizeof path_b, "%s/bus-b", dir);
    snprintf(cfg_path, sizeof cfg_path, "%s/config.yaml", dir);
    snprintf(out_path, sizeof out_path, "%s/out.jsonl", dir);
    snprintf(err_path, sizeof err_path, "%s/err.log", dir);
    snprintf(db_path, sizeof db_path, "%s/h.db", dir);
    snprintf(sub_path, sizeof sub_path, "%s/sub.txt", dir);
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (daemon_pid > 0) {
        kill(daemon_pid, SIGKILL);
        waitpid(daemon_pid, NULL, 0);
    }
    daemon_pid = 0;
    if (relay_pid > 0) {
        kill(relay_pid, SIGKILL);
        waitpid(relay_pid, NULL, 0);
    }
    relay_pid = 0;
    if (sub_pid > 0)
        proc_stop(sub_pid);
    sub_pid = 0;
    broker_stop(&br);
    br.port = 0;
    for (size_t i = 0; i < 2; i++) {
        if (sims[i] > 0)
            proc_stop(sims[i]);
        sims[i] = 0;
    }
    if (mounted && umount2(mnt, 0) != 0)
        umount2(mnt, MNT_DETACH);
    mounted = 0;
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ---- children ---- */

static void start_sim(int slot, const char *link, const char *proto, const char *time_scale)
{
    const char *extra[] = {
        "--protocol", proto,    "--addresses", "1-4",          "--seed", "11", "--time-scale",
        time_scale,   "--baud", "115200",      "--turnaround", "2",      NULL};
    unlink(link);
    sims[slot] = proc_start_sim(BMSFLEET_BIN, link, extra);
    assert_true(sims[slot] > 0);
}

static void port_yaml(FILE *f, const char *name, const char *dev, const char *proto)
{
    fprintf(f,
            "  - name: %s\n    device: %s\n    protocol: %s\n    baud: 115200\n"
            "    timeout_ms: 300\n    interval_s: 1\n    packs:\n",
            name, dev, proto);
    for (int i = 1; i <= PACKS; i++)
        fprintf(f, "      - { address: %d, id: %s%d, bank: house }\n", i, name, i);
}

/* One port (a) or two (a and b), the history at db. */
static void write_config(int two_ports, const char *db)
{
    FILE *f = fopen(cfg_path, "w");
    assert_non_null(f);
    fputs("node:\n  id: robust\nlog:\n  level: info\nports:\n", f);
    port_yaml(f, "a", path_a, "daren");
    if (two_ports)
        port_yaml(f, "b", path_b, "pace");
    fprintf(f,
            "banks:\n  - { id: house, name: House bank }\n"
            "storage:\n  path: %s\n  commit_interval_s: 1\n",
            db);
    if (br.port > 0)
        fprintf(f, "mqtt:\n  host: 127.0.0.1\n  port: %d\n", br.port);
    fclose(f);
}

/* Copies the daemon's stdout and stderr pipes into out_path and err_path until both close. */
static void relay_main(int o, int e)
{
    int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fo < 0 || fe < 0)
        _exit(126);
    struct pollfd fds[2] = {{o, POLLIN, 0}, {e, POLLIN, 0}};
    while (fds[0].fd >= 0 || fds[1].fd >= 0) {
        if (poll(fds, 2, -1) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[4096];
            ssize_t k = read(fds[i].fd, buf, sizeof buf);
            if (k <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
            } else if (write(i == 0 ? fo : fe, buf, (size_t)k) != k) {
                _exit(1);
            }
        }
    }
    _exit(0);
}

/* Like proc_spawn, with SIGXFSZ ignored (inherited through execv) so that a file-size limit
 * makes write(2) fail with EFBIG instead of killing the daemon. piped: stdout and stderr go
 * through pipes to a relay process, so that such a limit applies to the database only. */
static void start_daemon_via(int piped)
{
    unlink(out_path); /* never count the previous run's output */
    unlink(err_path);
    int po[2] = {-1, -1}, pe[2] = {-1, -1};
    if (piped) {
        assert_int_equal(pipe(po), 0);
        assert_int_equal(pipe(pe), 0);
        relay_pid = fork();
        assert_true(relay_pid >= 0);
        if (relay_pid == 0) {
            close(po[1]);
            close(pe[1]);
            relay_main(po[0], pe[0]);
        }
    }
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = piped ? po[1] : open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = piped ? pe[1] : open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0)
            _exit(126);
        dup2(o, 1);
        dup2(e, 2);
        if (piped) {
            close(po[0]);
            close(pe[0]);
            close(po[1]);
            close(pe[1]);
        }
        signal(SIGXFSZ, SIG_IGN);
        char *argv[] = {(char *)BMSFLEET_BIN, "run", "-c", cfg_path, "--stdout", NULL};
        execv(argv[0], argv);
        _exit(127);
    }
    daemon_pid = pid;
    if (piped) {
        close(po[0]);
        close(pe[0]);
        close(po[1]);
        close(pe[1]);
    }
}

static void start_daemon(void)
{
    start_daemon_via(0);
}

/* Waits for the relay to have copied everything (the daemon has exited). */
static void reap_relay(void)
{
    if (relay_pid > 0)
        waitpid(relay_pid, NULL, 0);
    relay_pid = 0;
}

static int stop_daemon(void)
{
    int st = proc_stop(daemon_pid);
    daemon_pid = 0;
    reap_relay();
    return st;
}

static void kill_daemon(void)
{
    int st;
    kill(daemon_pid, SIGKILL);
    assert_int_equal(waitpid(daemon_pid, &st, 0), daemon_pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL); /* it was still running */
    daemon_pid = 0;
}

static void show_file(const char *path)
{
    /* stderr, not print_error: cmocka cuts its messages at 1024 bytes */
    char *t = proc_slurp(path);
    fprintf(stderr, "--- %s ---\n%s\n", path, t ? t : "(missing)");
    free(t);
}

static void expect_in_log(const char *needle, int times)
{
    if (proc_wait_for(err_path, needle, times, WAIT_MS) == 0)
        return;
    print_error("expected %d × '%s' in the daemon's log\n", times, needle);
    show_file(err_path);
    fail();
}

static int log_count(const char *needle)
{
    char *t = proc_slurp(err_path);
    assert_non_null(t);
    int n = proc_count(t, needle);
    free(t);
    return n;
}

/* The daemon's log says a before b (and a at all). */
static int log_before(const char *a, const char *b)
{
    char *t = proc_slurp(err_path);
    assert_non_null(t);
    const char *pa = strstr(t, a), *pb = strstr(t, b);
    int before = pa && (pb == NULL || pa < pb);
    free(t);
    return before;
}

/* Nothing the sanitizers or the history writer complain about. */
static void expect_clean_log(void)
{
    char *t = proc_slurp(err_path);
    assert_non_null(t);
    if (strstr(t, "Sanitizer") || strstr(t, "runtime error") || strstr(t, "history: cannot") ||
        strstr(t, "could not be written") || strstr(t, "history database")) {
        print_error("unexpected complaint in the daemon's log:\n%s\n", t);
        fail();
    }
    free(t);
}

/* ---- what the daemon printed ---- */

struct printed {
    char pack[8];
    long long ts; /* ms */
};

struct outlist {
    struct printed *v;
    size_t n;
};

/* The samples (lines with "voltage") of the daemon's stdout, in order. */
static void read_out(struct outlist *o)
{
    o->v = NULL;
    o->n = 0;
    char *text = proc_slurp(out_path);
    assert_non_null(text);
    size_t cap = 0;
    char *p = text;
    for (char *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        *nl = '\0';
        if (strstr(p, "\"voltage\"") == NULL)
            continue;
        cJSON *j = cJSON_Parse(p);
        assert_non_null(j);
        const cJSON *pack = cJSON_GetObjectItem(j, "pack"), *ts = cJSON_GetObjectItem(j, "ts");
        assert_true(cJSON_IsString(pack) && cJSON_IsNumber(ts));
        if (o->n == cap) {
            cap = cap ? cap * 2 : 256;
            o->v = realloc(o->v, cap * sizeof *o->v);
            assert_non_null(o->v);
        }
        snprintf(o->v[o->n].pack, sizeof o->v[0].pack, "%s", pack->valuestring);
        o->v[o->n].ts = llround(ts->valuedouble * 1000.0);
        o->n++;
        cJSON_Delete(j);
    }
    free(text);
}

static size_t out_samples(void)
{
    char *t = proc_slurp(out_path);
    size_t n = t ? (size_t)proc_count(t, "\"voltage\"") : 0;
    free(t);
    return n;
}

/* Waits until the daemon printed n samples; 0, or -1 if it exited first (*status set). */
static int wait_out_or_exit(size_t n, int *status)
{
    long long deadline = proc_now_ms() + WAIT_MS;
    while (out_samples() < n && proc_now_ms() < deadline) {
        int st;
        if (waitpid(daemon_pid, &st, WNOHANG) == daemon_pid) {
            daemon_pid = 0;
            *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            return -1;
        }
        usleep(50000);
    }
    return 0;
}

static void wait_out_samples(size_t n)
{
    long long deadline = proc_now_ms() + WAIT_MS;
    while (out_samples() < n) {
        if (proc_now_ms() > deadline) {
            print_error("the daemon printed %zu samples, expected %zu\n", out_samples(), n);
            show_file(err_path);
            fail();
        }
        usleep(50000);
    }
}

/* ---- the database, from the test's own connection ---- */

static sqlite3 *db_open(const char *path, int flags)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        print_error("cannot open %s: %s\n", path, db ? sqlite3_errmsg(db) : "?");
        sqlite3_close(db);
        fail();
    }
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static long long q_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        print_error("%s: %s\n", sql, sqlite3_errmsg(db));
        fail();
    }
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        print_error("%s: %s\n", sql, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        fail();
    }
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        print_error("%s: %s\n", sql, msg ? msg : "?");
        sqlite3_free(msg);
        fail();
    }
}

/* Samples stored; 0 while the database or its schema does not exist yet. */
static long long samples_now(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    sqlite3 *db = db_open(path, SQLITE_OPEN_READONLY);
    sqlite3_stmt *q;
    long long n = 0;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM samples", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
}

/* Waits until the database holds more than `than` samples: a commit happened. */
static void wait_committed(const char *path, long long than)
{
    long long deadline = proc_now_ms() + WAIT_MS;
    while (samples_now(path) <= than) {
        if (proc_now_ms() > deadline) {
            print_error("no commit beyond %lld samples in %s\n", than, path);
            show_file(err_path);
            fail();
        }
        usleep(50000);
    }
}

/* integrity_check ok; every sample counted once in the rollups: in v_minutely, and in rollup_1h
 * every sample up to meta.rollup_1h_upto (the hourly deltas wait in the writer's memory for up
 * to a minute: after a kill -9 the next start folds the samples after the mark, and each run
 * checks the database the previous one left, so that is checked too); no (pack, ts) stored
 * twice. */
static void check_consistent(sqlite3 *db)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const char *res = (const char *)sqlite3_column_text(st, 0);
    if (res == NULL || strcmp(res, "ok") != 0) {
        print_error("integrity_check: %s\n", res ? res : "(null)");
        sqlite3_finalize(st);
        fail();
    }
    sqlite3_finalize(st);
    long long with_power = q_int(db, "SELECT count(*) FROM samples WHERE voltage_mv IS NOT NULL"
                                     " AND current_ma IS NOT NULL");
    assert_int_equal(q_int(db, "SELECT coalesce(sum(samples), 0) FROM v_minutely"), with_power);
    long long upto = q_int(db, "SELECT value FROM meta WHERE key = 'rollup_1h_upto'");
    assert_int_equal(q_int(db, "SELECT coalesce(sum(n), 0) FROM rollup_1h"),
                     q_int(db, "SELECT count(*) FROM samples WHERE voltage_mv IS NOT NULL"
                               " AND current_ma IS NOT NULL AND id <= (SELECT value FROM meta"
                               " WHERE key = 'rollup_1h_upto')"));
    assert_true(upto <= q_int(db, "SELECT coalesce(max(id), 0) FROM samples"));
    assert_int_equal(q_int(db, "SELECT count(*) FROM (SELECT 1 FROM samples GROUP BY pack, ts"
                               " HAVING count(*) > 1)"),
                     0);
    /* per pack, insert order is time order */
    assert_int_equal(q_int(db, "SELECT count(*) FROM samples a JOIN samples b ON b.pack = a.pack"
                               " AND b.id = (SELECT min(id) FROM samples c WHERE c.pack = a.pack"
                               " AND c.id > a.id) WHERE b.ts <= a.ts"),
                     0);
}

/* For each printed sample, whether it is stored (present[i] = 0/1); returns how many are. */
static size_t match_printed(sqlite3 *db, const struct outlist *o, unsigned char *present)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*) FROM samples s JOIN packs p ON"
                                        " p.id = s.pack WHERE p.pack_id = ?1 AND s.ts = ?2",
                                        -1, &st, NULL),
                     SQLITE_OK);
    size_t n = 0;
    for (size_t i = 0; i < o->n; i++) {
        sqlite3_bind_text(st, 1, o->v[i].pack, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, o->v[i].ts);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        long long k = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        assert_true(k <= 1);
        present[i] = (unsigned char)k;
        n += (size_t)k;
    }
    sqlite3_finalize(st);
    return n;
}

/* Every printed sample is stored (after a clean stop). */
static void expect_all_stored(sqlite3 *db, const struct outlist *o)
{
    unsigned char *present = calloc(o->n + 1, 1);
    assert_non_null(present);
    size_t n = match_printed(db, o, present);
    for (size_t i = 0; i < o->n && n != o->n; i++) {
        if (!present[i]) {
            print_error("printed but not stored: pack %s ts %lld (%zu of %zu stored)\n",
                        o->v[i].pack, o->v[i].ts, n, o->n);
            break;
        }
    }
    free(present);
    assert_int_equal(n, o->n);
}

struct energy {
    double charged[2 * PACKS], discharged[2 * PACKS];
    int n;
};

static void read_energy(sqlite3 *db, struct energy *e)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT charged_mwh, discharged_mwh FROM energy"
                                        " ORDER BY pack",
                                        -1, &st, NULL),
                     SQLITE_OK);
    e->n = 0;
    while (sqlite3_step(st) == SQLITE_ROW && e->n < 2 * PACKS) {
        e->charged[e->n] = sqlite3_column_double(st, 0);
        e->discharged[e->n] = sqlite3_column_double(st, 1);
        e->n++;
    }
    sqlite3_finalize(st);
}

/* Counters never decrease; returns whether any grew. */
static int expect_energy_monotonic(const struct energy *before, const struct energy *after)
{
    int grew = 0;
    assert_true(after->n >= before->n);
    for (int i = 0; i < before->n; i++) {
        if (after->charged[i] < before->charged[i] ||
            after->discharged[i] < before->discharged[i]) {
            print_error("energy of pack row %d went back: charged %.6f -> %.6f, discharged "
                        "%.6f -> %.6f mWh\n",
                        i, before->charged[i], after->charged[i], before->discharged[i],
                        after->discharged[i]);
            fail();
        }
        grew |=
            after->charged[i] > before->charged[i] || after->discharged[i] > before->discharged[i];
    }
    return grew;
}

/* ---- 1. kill -9 during ingestion ---- */

static void test_kill9_during_ingestion(void **state)
{
    (void)state;
    start_sim(0, path_a, "daren", "60");
    write_config(0, db_path);
    long long prev_max_id = 0, before = 0;
    struct energy e_prev = {.n = 0};
    size_t max_lost = 0, total_lost = 0, total_out = 0;
    int hist[MAX_LOST_PER_KILL + 2] = {0};
    long long t_start = proc_now_ms();
    for (int round = 0; round < KILL_ROUNDS; round++) {
        int delay_ms = 100 + (round * 617) % 1401; /* 100 … 1500 ms after a commit */
        start_daemon();
        wait_committed(db_path, before);
        usleep((useconds_t)delay_ms * 1000);
        kill_daemon();

        struct outlist o;
        read_out(&o);
        sqlite3 *db = db_open(db_path, SQLITE_OPEN_READONLY);
        check_consistent(db);
        long long after = q_int(db, "SELECT count(*) FROM samples");
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM samples WHERE id <= %lld", prev_max_id);
        assert_int_equal(q_int(db, sql), before); /* earlier runs' rows are all still there */
        snprintf(sql, sizeof sql, "SELECT count(*) FROM samples WHERE id > %lld", prev_max_id);
        long long n_db = q_int(db, sql);
        assert_int_equal(n_db, after - before);

        /* what was stored is a prefix of what was printed: only the tail after the last
         * commit is missing */
        unsigned char *present = calloc(o.n + 1, 1);
        assert_non_null(present);
        size_t stored = match_printed(db, &o, present);
        assert_int_equal((long long)stored, n_db); /* nothing stored that was not printed */
        for (size_t i = 0; i < stored; i++) {
            if (!present[i]) {
                print_error("round %d: printed sample %zu (pack %s ts %lld) is missing, but "
                            "later ones were stored\n",
                            round, i, o.v[i].pack, o.v[i].ts);
                fail();
            }
        }
        free(present);
        size_t lost = o.n - stored;
        if (lost > MAX_LOST_PER_KILL) {
            print_error("round %d (kill %d ms after a commit): %zu printed, %zu stored\n", round,
                        delay_ms, o.n, stored);
            show_file(err_path);
        }
        assert_true(lost <= MAX_LOST_PER_KILL);
        hist[lost]++;
        max_lost = lost > max_lost ? lost : max_lost;
        total_lost += lost;
        total_out += o.n;

        struct energy e;
        read_energy(db, &e);
        assert_true(e.n >= 1 && e.n <= PACKS);
        expect_energy_monotonic(&e_prev, &e);
        e_prev = e;
        prev_max_id = q_int(db, "SELECT coalesce(max(id), 0) FROM samples");
        before = after;
        sqlite3_close(db);
        free(o.v);
        expect_clean_log();
    }
    print_message("kill -9 × %d (%.0f s): %zu samples printed, %zu lost in all, at most %zu per "
                  "kill; lost per kill:",
                  KILL_ROUNDS, (double)(proc_now_ms() - t_start) / 1000.0, total_out, total_lost,
                  max_lost);
    for (size_t i = 0; i <= MAX_LOST_PER_KILL; i++) {
        if (hist[i])
            print_message(" %zu×%d", i, hist[i]);
    }
    print_message("\n");

    /* a last clean run on the database that was killed so often */
    start_daemon();
    wait_committed(db_path, before);
    assert_int_equal(stop_daemon(), 0);
    expect_clean_log();
    struct outlist o;
    read_out(&o);
    sqlite3 *db = db_open(db_path, SQLITE_OPEN_READONLY);
    check_consistent(db);
    /* the clean stop wrote the hours: rollup_1h holds every sample */
    assert_int_equal(q_int(db, "SELECT value FROM meta WHERE key = 'rollup_1h_upto'"),
                     q_int(db, "SELECT max(id) FROM samples"));
    expect_all_stored(db, &o);
    assert_int_equal(q_int(db, "SELECT count(*) FROM samples"), before + (long long)o.n);
    sqlite3_close(db);
    free(o.v);
}

/* ---- 2. disk full ---- */

/* Fills the filesystem of path until ENOSPC (a short write takes what is left; the next one
 * fails). */
static void fill_disk(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    static char chunk[65536];
    memset(chunk, 0x5a, sizeof chunk);
    while (write(fd, chunk, sizeof chunk) >= 0)
        ;
    assert_int_equal(errno, ENOSPC);
    close(fd);
}

/* "writing to … resumed; N reading(s) written": N */
static long resumed_count(void)
{
    char *t = proc_slurp(err_path);
    assert_non_null(t);
    const char *p = strstr(t, " resumed; ");
    long n = -1;
    if (p) {
        char *end;
        n = strtol(p + strlen(" resumed; "), &end, 10);
    }
    free(t);
    return n;
}

/* How many messages the subscriber got that start with needle ("topic payload-prefix"). */
static int sub_count(const char *needle)
{
    char *t = proc_slurp(sub_path);
    int n = t ? proc_count(t, needle) : 0;
    free(t);
    return n;
}

static void wait_sub(const char *needle, int times)
{
    if (proc_wait_for(sub_path, needle, times, WAIT_MS) == 0)
        return;
    char *t = proc_slurp(sub_path);
    size_t n = t ? strlen(t) : 0;
    fprintf(stderr, "expected %d x '%s' from the broker; the subscriber's last lines:\n%s\n", times,
            needle, t ? t + (n > 3000 ? n - 3000 : 0) : "(nothing)");
    free(t);
    show_file(err_path);
    fail();
}

#define STORAGE_TOPIC "bmsfleet/robust/storage "
#define FAILING       STORAGE_TOPIC "{\"state\":\"failing\""
#define STORAGE_OK    STORAGE_TOPIC "{\"state\":\"ok\""
#define PACK_STATE    "bmsfleet/a1/state {"
#define CURSOR_FAILED "warn  mqtt: cannot save the replay cursor"
#define CURSOR_SAVED  "info  mqtt: the replay cursor is saved again"

/* The seq of every history message the subscriber got, in arrival order. Caller frees. */
static long long *history_seqs(size_t *n)
{
    *n = 0;
    char *t = proc_slurp(sub_path);
    long long *v = NULL;
    size_t cap = 0;
    for (char *p = t; p && (p = strstr(p, "/history {")) != NULL; p++) {
        const char *s = strstr(p, "\"seq\":"), *eol = strchr(p, '\n');
        if (s == NULL || (eol && s > eol))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            v = realloc(v, cap * sizeof *v);
            assert_non_null(v);
        }
        v[(*n)++] = strtoll(s + strlen("\"seq\":"), NULL, 10);
    }
    free(t);
    return v;
}

/* Waits until the subscriber got the history message of sample `id` (or a later one). */
static void wait_history(long long id)
{
    long long deadline = proc_now_ms() + WAIT_MS;
    for (;;) {
        size_t n;
        long long *v = history_seqs(&n), top = 0;
        for (size_t i = 0; i < n; i++)
            top = v[i] > top ? v[i] : top;
        free(v);
        if (top >= id)
            return;
        if (proc_now_ms() > deadline) {
            print_error("no history message for sample %lld (the newest: %lld)\n", id, top);
            show_file(err_path);
            fail();
        }
        usleep(50000);
    }
}

/* The replay's promise, at least once and in order: every history message is the next sample,
 * or one sent before (a restart replays from the cursor saved last), never one past a gap; and
 * they reach `newest` at least (what the writer committed at the stop may be sent at the next
 * start). Returns how many arrived again. */
static long expect_history_in_order(long long newest)
{
    size_t n;
    long long *v = history_seqs(&n), top = 0;
    assert_true(n > 0);
    long again = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && v[i] != v[i - 1] + 1 && v[i] > top) {
            print_error("history message %zu is sample %lld after %lld: a gap\n", i, v[i],
                        v[i - 1]);
            fail();
        }
        again += i > 0 && v[i] <= top;
        top = v[i] > top ? v[i] : top;
    }
    free(v);
    assert_true(top >= newest);
    return again;
}

/* The cursor saved in the history's meta table. */
static long long saved_cursor(const char *db)
{
    sqlite3 *c = db_open(db, SQLITE_OPEN_READONLY);
    long long v = q_int(c, "SELECT CAST(value AS INTEGER) FROM meta WHERE key = "
                           "'mqtt_history_cursor'");
    sqlite3_close(c);
    return v;
}

/* A private broker, and a subscriber to everything bmsfleet publishes. */
static void start_broker_and_subscriber(void)
{
    assert_int_equal(broker_start(&br, dir, NULL), 0);
    char sub_err[320];
    snprintf(sub_err, sizeof sub_err, "%s/sub.err", dir);
    sub_pid = broker_subscribe(&br, "bmsfleet/#", sub_path, sub_err);
    assert_true(sub_pid > 0);
}

/* The outage: the daemon complains once and polls on; the database does not change. Then
 * give_back() returns the space and every reading taken meanwhile is written. */
static void disk_full_episode(const char *db, void (*take)(void), void (*give_back)(void),
                              const char *how)
{
    wait_committed(db, PACKS); /* a couple of commits */
    if (br.port > 0)
        wait_sub(STORAGE_OK, 1); /* Home Assistant's "History writing" sensor: OFF */
    take();
    long long full_ms = proc_now_ms(), failing_ms = 0, ok_ms = 0;
    /* a warning (nothing is lost yet), once */
    expect_in_log("warn  history: cannot write to", 1);
    int states_at_error = br.port > 0 ? sub_count(PACK_STATE) : 0;
    if (br.port > 0) {
        wait_sub(FAILING, 1); /* ... ON, with the error in its attributes */
        failing_ms = proc_now_ms();
    }
    int cursor_first = log_before(CURSOR_FAILED, "history: cannot write to");
    size_t at_error = out_samples();
    long long stored_at_error = samples_now(db);
    /* polling goes on: five more rounds while every commit fails */
    wait_out_samples(at_error + 5 * PACKS);
    assert_int_equal(log_count("history: cannot write to"), 1); /* once, not every retry */
    assert_int_equal(log_count("resumed"), 0);
    assert_int_equal(samples_now(db), stored_at_error);
    size_t during = out_samples() - at_error;
    int live = br.port > 0 ? sub_count(PACK_STATE) - states_at_error : -1;
    if (br.port > 0) {
        /* live publishing goes on while the history cannot be written */
        assert_true(live >= 4);
        char *s = proc_slurp(sub_path);
        assert_non_null(s);
        const char *f = strstr(s, FAILING), *eol = f ? strchr(f, '\n') : NULL;
        assert_non_null(eol);
        char line[400];
        snprintf(line, sizeof line, "%.*s", (int)(eol - f), f);
        free(s);
        print_message("disk full: %s\n", line);
        assert_non_null(strstr(line, "full")); /* SQLite's words: database or disk is full */
    }

    give_back();
    long long back_ms = proc_now_ms();
    expect_in_log("info  history: writing to", 1); /* ... resumed */
    if (br.port > 0) {
        wait_sub(STORAGE_OK, 2); /* OFF again */
        ok_ms = proc_now_ms();
        /* the MQTT thread's cursor saves hit the same disk: if one failed, it said so once,
         * retried, and said when it worked again */
        int failed = log_count(CURSOR_FAILED);
        assert_true(failed <= 1);
        if (failed)
            expect_in_log(CURSOR_SAVED, 1);
    }
    long retried = resumed_count();
    size_t n_resumed = out_samples();
    wait_out_samples(n_resumed + 2 * PACKS);
    wait_committed(db, samples_now(db)); /* normal commits after the retry */
    long long newest = 0;
    if (br.port > 0) {
        sqlite3 *c = db_open(db, SQLITE_OPEN_READONLY);
        newest = q_int(c, "SELECT max(id) FROM samples");
        sqlite3_close(c);
        wait_history(newest); /* the outage's samples replayed, and the ones after */
    }
    assert_int_equal(stop_daemon(), 0);

    assert_int_equal(log_count("history: cannot write to"), 1);
    assert_int_equal(log_count("resumed"), 1);
    expect_in_log("stopped", 1);
    char *err = proc_slurp(err_path);
    assert_non_null(err);
    assert_null(strstr(err, "could not be written"));
    assert_null(strstr(err, "Sanitizer"));
    assert_null(strstr(err, "runtime error"));
    free(err);

    struct outlist o;
    read_out(&o);
    sqlite3 *conn = db_open(db, SQLITE_OPEN_READONLY);
    check_consistent(conn);
    expect_all_stored(conn, &o); /* the outage's samples too */
    assert_int_equal(q_int(conn, "SELECT count(*) FROM samples"), (long long)o.n);
    sqlite3_close(conn);
    print_message("disk full (%s): %zu samples printed during the outage (%lld stored when it "
                  "began); %ld reading(s) written by the retry; %zu printed, all %zu stored\n",
                  how, during, stored_at_error, retried, o.n, o.n);
    if (br.port > 0) {
        /* every sample's history message once, in order, through the failed cursor saves */
        size_t n;
        free(history_seqs(&n));
        assert_int_equal(expect_history_in_order(newest), 0);
        print_message("disk full (%s), MQTT: %d live states of pack a1 during the outage; "
                      "History writing ON %.1f s after the disk filled (%d message(s)), OFF "
                      "%.1f s after space returned; the cursor's save failed first: %s; %zu "
                      "history messages, in order, none twice\n",
                      how, live, (double)(failing_ms - full_ms) / 1000.0, sub_count(FAILING),
                      (double)(ok_ms - back_ms) / 1000.0, cursor_first ? "yes" : "no", n);
    }
    assert_true(retried >= (long)during);
    free(o.v);
}

static char filler[320];

static void tmpfs_take(void)
{
    fill_disk(filler);
}

static void tmpfs_give_back(void)
{
    assert_int_equal(unlink(filler), 0);
}

/* A small tmpfs holds the database; a filler file takes the rest of it, then goes. */
static void test_disk_full_tmpfs(void **state)
{
    (void)state;
    assert_int_equal(mkdir(mnt, 0755), 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=8m,mode=0755") != 0) {
        print_message("cannot mount a tmpfs (%s): covered by the RLIMIT_FSIZE test only\n",
                      strerror(errno));
        skip();
    }
    mounted = 1;
    char db[400];
    snprintf(db, sizeof db, "%s/h.db", mnt);
    snprintf(filler, sizeof filler, "%s/filler", mnt);
    start_sim(0, path_a, "daren", "0");
    /* with MQTT: the condition is shown in Home Assistant, live states go on */
    start_broker_and_subscriber();
    write_config(0, db);
    start_daemon();
    disk_full_episode(db, tmpfs_take, tmpfs_give_back, "tmpfs");
}

#define REFUSED "the test refuses the cursor"

/* The MQTT replay cursor cannot be saved while the history writer is fine (on a full disk
 * either write can fail first; here a trigger refuses the cursor alone, every time): Home
 * Assistant is told, the failure is logged once and retried, replay goes on in order, a kill -9
 * meanwhile repeats history from the cursor saved last but loses none, and once a save works
 * the state is ok again. */
static void test_cursor_save_refused(void **state)
{
    (void)state;
    start_sim(0, path_a, "daren", "0");
    start_broker_and_subscriber();
    write_config(0, db_path);
    start_daemon();
    wait_committed(db_path, PACKS);
    wait_sub(STORAGE_OK, 1);
    sqlite3 *c = db_open(db_path, SQLITE_OPEN_READWRITE);
    exec_ok(c, "CREATE TRIGGER refuse_cursor BEFORE UPDATE ON meta"
               " WHEN NEW.key = 'mqtt_history_cursor'"
               " BEGIN SELECT RAISE(ABORT, '" REFUSED "'); END");
    long long refused_ms = proc_now_ms();
    expect_in_log(CURSOR_FAILED " (" REFUSED ")", 1);
    wait_sub(FAILING ",\"error\":\"the MQTT replay cursor cannot be saved: " REFUSED "\"", 1);
    double failing_s = (double)(proc_now_ms() - refused_ms) / 1000.0;
    long long stuck = saved_cursor(db_path);
    /* the writer goes on, and so does the replay, past the cursor saved */
    long long stored = samples_now(db_path);
    wait_committed(db_path, stored + 2 * PACKS);
    wait_history(stuck + 2 * PACKS);
    assert_int_equal(saved_cursor(db_path), stuck);
    assert_int_equal(log_count(CURSOR_FAILED), 1); /* once, not every retry */

    /* a crash now: the next run replays from `stuck`, again and in order */
    kill_daemon();
    start_daemon();
    expect_in_log(CURSOR_FAILED, 1); /* the new run's first save is refused too */
    exec_ok(c, "DROP TRIGGER refuse_cursor");
    long long allowed_ms = proc_now_ms();
    expect_in_log(CURSOR_SAVED, 1);
    wait_sub(STORAGE_OK, 2);
    double ok_s = (double)(proc_now_ms() - allowed_ms) / 1000.0;
    long long newest = q_int(c, "SELECT max(id) FROM samples");
    wait_history(newest);
    assert_int_equal(stop_daemon(), 0);
    sqlite3_close(c);
    assert_true(saved_cursor(db_path) >= newest); /* saved again, past what was delivered */
    expect_in_log("stopped", 1);
    assert_int_equal(log_count("history: cannot"), 0); /* the writer never failed */
    assert_int_equal(log_count("cursor is still not saved"), 0);
    long again = expect_history_in_order(newest);
    assert_true(again > 0); /* what the crash repeated */
    print_message("cursor refused: History writing ON %.1f s after the trigger went in (the next "
                  "save), OFF %.1f s after it went; a kill -9 meanwhile repeated %ld history "
                  "message(s), none lost, in order\n",
                  failing_s, ok_s, again);
}

/* A box that reboots with its disk full: the daemon starts, polls and publishes, and writes
 * the history once there is space again. */
static void test_start_on_full_disk(void **state)
{
    (void)state;
    assert_int_equal(mkdir(mnt, 0755), 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=8m,mode=0755") != 0) {
        print_message("cannot mount a tmpfs (%s): skipped\n", strerror(errno));
        skip();
    }
    mounted = 1;
    char db[400];
    snprintf(db, sizeof db, "%s/h.db", mnt);
    snprintf(filler, sizeof filler, "%s/filler", mnt);
    start_sim(0, path_a, "daren", "0");
    write_config(0, db);
    start_daemon();
    wait_committed(db, 0);
    assert_int_equal(stop_daemon(), 0);
    long long first_run = samples_now(db);

    fill_disk(filler);
    start_daemon();
    int status = 0;
    int exited = wait_out_or_exit(3 * PACKS, &status);
    if (exited) {
        print_error("the daemon exited with status %d on a full disk; its log:\n", status);
        show_file(err_path);
    }
    /* a regression test: the daemon used to exit 1 at once ("history database: … database or
     * disk is full") instead of polling on and writing the history when space returns */
    assert_false(exited);
    expect_in_log("history: cannot write to", 1);
    tmpfs_give_back();
    expect_in_log("resumed", 1);
    wait_committed(db, samples_now(db));
    assert_int_equal(stop_daemon(), 0);
    struct outlist o;
    read_out(&o);
    sqlite3 *conn = db_open(db, SQLITE_OPEN_READONLY);
    check_consistent(conn);
    expect_all_stored(conn, &o);
    assert_int_equal(q_int(conn, "SELECT count(*) FROM samples"), first_run + (long long)o.n);
    sqlite3_close(conn);
    free(o.v);
}

/* What cannot be a history stops the start with a clear message (exit 1): a file that is not a
 * database, and a database on a read-only file system (SQLite's own words were "unable to open
 * database file"). */
static void test_bad_database_at_start(void **state)
{
    (void)state;
    start_sim(0, path_a, "daren", "0");
    FILE *f = fopen(db_path, "w");
    assert_non_null(f);
    for (int i = 0; i < 8192; i++)
        fputc((i * 37 + 11) & 0xFF, f);
    fclose(f);
    write_config(0, db_path);
    start_daemon();
    int status = 0;
    assert_int_equal(wait_out_or_exit(1, &status), -1);
    assert_int_equal(status, 1);
    char want[600];
    snprintf(want, sizeof want, "history database: %s: cannot read the schema version: file is "
                                "not a database", db_path);
    expect_in_log(want, 1);

    /* a good history, then its file system read-only */
    assert_int_equal(mkdir(mnt, 0755), 0);
    char db[400];
    snprintf(db, sizeof db, "%s/h.db", mnt);
    write_config(0, db);
    start_daemon();
    wait_committed(db, 0);
    assert_int_equal(stop_daemon(), 0);
    if (mount(mnt, mnt, NULL, MS_BIND, NULL) != 0 ||
        mount(NULL, mnt, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) != 0) {
        print_message("cannot make a read-only bind mount (%s): skipped\n", strerror(errno));
        skip();
    }
    mounted = 1;
    start_daemon();
    assert_int_equal(wait_out_or_exit(1, &status), -1);
    assert_int_equal(status, 1);
    snprintf(want, sizeof want, "history database: cannot write in %s (Read-only file system): "
                                "the history needs its directory writable", mnt);
    expect_in_log(want, 1);
}

static void rlimit_take(void)
{
    /* the write-ahead log only grows here (no checkpoint before 1000 pages): a limit at its
     * present size fails the next commit; stdout and stderr are pipes, not limited */
    char wal[420];
    snprintf(wal, sizeof wal, "%s-wal", db_path);
    struct stat sw;
    assert_int_equal(stat(wal, &sw), 0);
    struct rlimit lim = {(rlim_t)sw.st_size, RLIM_INFINITY};
    assert_int_equal(prlimit(daemon_pid, RLIMIT_FSIZE, &lim, NULL), 0);
}

static void rlimit_give_back(void)
{
    struct rlimit lim = {RLIM_INFINITY, RLIM_INFINITY};
    assert_int_equal(prlimit(daemon_pid, RLIMIT_FSIZE, &lim, NULL), 0);
}

/* The same with RLIMIT_FSIZE, lowered and raised from outside with prlimit(2). */
static void test_disk_full_rlimit(void **state)
{
    (void)state;
    start_sim(0, path_a, "daren", "0");
    write_config(0, db_path);
    start_daemon_via(1);
    disk_full_episode(db_path, rlimit_take, rlimit_give_back, "RLIMIT_FSIZE");
}

/* ---- 3. readers ---- */

static const char *find_sqlite3(void)
{
    static char found[512];
    const char *path = getenv("PATH");
    char copy[2048];
    snprintf(copy, sizeof copy, "%s", path ? path : "/usr/bin:/bin");
    char *save = NULL;
    for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(found, sizeof found, "%s/sqlite3", d);
        if (access(found, X_OK) == 0)
            return found;
    }
    return NULL;
}

static void test_long_reader(void **state)
{
    (void)state;
    start_sim(0, path_a, "daren", "60");
    start_sim(1, path_b, "pace", "60");
    write_config(1, db_path);
    start_daemon();
    wait_committed(db_path, 0);

    /* a person's shell session: one read transaction held open */
    sqlite3 *reader = db_open(db_path, SQLITE_OPEN_READWRITE);
    exec_ok(reader, "BEGIN");
    long long seen = q_int(reader, "SELECT count(*) FROM samples");
    struct timespec t0;
    clock_gettime(CLOCK_REALTIME, &t0);
    long long win_from = (long long)t0.tv_sec * 1000 + t0.tv_nsec / 1000000;
    size_t printed0 = out_samples();
    /* five rounds of both ports, while the reader's snapshot stays put and other connections
     * see the daemon's commits */
    long long committed0 = samples_now(db_path);
    wait_out_samples(printed0 + 10 * PACKS);
    wait_committed(db_path, committed0 + 2 * PACKS);
    assert_int_equal(q_int(reader, "SELECT count(*) FROM samples"), seen);
    struct timespec t1;
    clock_gettime(CLOCK_REALTIME, &t1);
    long long win_to = (long long)t1.tv_sec * 1000 + t1.tv_nsec / 1000000;
    exec_ok(reader, "COMMIT");
    assert_true(q_int(reader, "SELECT count(*) FROM samples") > seen);
    sqlite3_close(reader);

    /* the real shell, read-only, in a loop while the daemon writes */
    const char *shell = find_sqlite3();
    int runs = 0;
    long long last = 0;
    if (shell == NULL) {
        print_message("no sqlite3 shell on PATH: its part is skipped\n");
    } else {
        struct proc_result *r = malloc(sizeof *r);
        assert_non_null(r);
        size_t printed1 = out_samples();
        while (runs < 30 || out_samples() < printed1 + 6 * 2 * PACKS) {
            char *argv[] = {(char *)shell, "-readonly", db_path,
                            "SELECT count(*) FROM samples; SELECT count(*) FROM v_latest;", NULL};
            assert_int_equal(proc_run(argv, NULL, 10000, r), 0);
            if (r->status != 0 || r->err[0] != '\0') {
                print_error("sqlite3 -readonly (run %d): status %d\n%s%s\n", runs, r->status,
                            r->out, r->err);
                fail();
            }
            char *end;
            long long n = strtoll(r->out, &end, 10);
            assert_true(end != r->out && *end == '\n');
            assert_true(n >= last); /* each run sees at least what the previous one saw */
            last = n;
            runs++;
            assert_true(runs < 5000);
        }
        free(r);
    }
    assert_int_equal(stop_daemon(), 0);
    expect_clean_log();
    assert_int_equal(log_count("locked"), 0);
    assert_int_equal(log_count("busy"), 0);

    /* everything printed during the reader's window is stored, and the rest too */
    struct outlist o;
    read_out(&o);
    size_t in_window = 0;
    for (size_t i = 0; i < o.n; i++)
        in_window += o.v[i].ts >= win_from && o.v[i].ts <= win_to;
    sqlite3 *db = db_open(db_path, SQLITE_OPEN_READONLY);
    check_consistent(db);
    expect_all_stored(db, &o);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM samples WHERE ts BETWEEN %lld AND %lld",
             win_from, win_to);
    long long stored_in_window = q_int(db, sql);
    sqlite3_close(db);
    assert_int_equal(stored_in_window, (long long)in_window);
    assert_true(in_window >= 10 * PACKS);
    print_message("long reader: %zu samples taken while one snapshot was held, all stored; "
                  "sqlite3 -readonly ran %d times (last count %lld), never locked\n",
                  in_window, runs, last);
    free(o.v);
}

/* ---- 4. restart continuity ---- */

static void test_restart_continuity(void **state)
{
    (void)state;
    start_sim(0, path_a, "daren", "60");
    write_config(0, db_path);
    struct energy e_prev = {.n = 0};
    long long total = 0;
    struct outlist runs[3];
    for (int run = 0; run < 3; run++) {
        start_daemon();
        wait_out_samples(3 * PACKS);
        wait_committed(db_path, total);
        assert_int_equal(stop_daemon(), 0);
        expect_in_log("stopped", 1);
        char *err = proc_slurp(err_path);
        assert_non_null(err);
        if (strstr(err, " error ") || strstr(err, "Sanitizer") || strstr(err, "runtime error")) {
            print_error("run %d logged an error:\n%s\n", run + 1, err);
            fail();
        }
        free(err);
        read_out(&runs[run]);
        sqlite3 *db = db_open(db_path, SQLITE_OPEN_READONLY);
        check_consistent(db);
        total += (long long)runs[run].n;
        assert_int_equal(q_int(db, "SELECT count(*) FROM samples"), total);
        for (int k = 0; k <= run; k++)
            expect_all_stored(db, &runs[k]); /* every run's samples are still there */
        assert_int_equal(q_int(db, "SELECT count(*) FROM packs"), PACKS);
        struct energy e;
        read_energy(db, &e);
        assert_int_equal(e.n, PACKS);
        int grew = expect_energy_monotonic(&e_prev, &e);
        if (run > 0)
            assert_true(grew); /* integration went on from the stored counters */
        e_prev = e;
        sqlite3_close(db);
    }
    print_message("restarts: %zu + %zu + %zu samples in three runs, all stored; energy never "
                  "went back\n",
                  runs[0].n, runs[1].n, runs[2].n);
    for (int k = 0; k < 3; k++)
        free(runs[k].v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kill9_during_ingestion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full_tmpfs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor_save_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full_rlimit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_on_full_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_database_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_reader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_continuity, setup, teardown),
    };
    if (getenv("BMSFLEET_TEST_FILTER")) /* run one test: BMSFLEET_TEST_FILTER=test_long_reader */
        cmocka_set_test_filter(getenv("BMSFLEET_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
