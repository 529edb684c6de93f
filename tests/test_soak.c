/* test_soak: issue 16's proof of reliability, rerunnable with longer settings (bench/soak.sh).
 * The real `bmsfleet run` against the real simulator over a pty, SQLite history, and MQTT to a
 * private mosquitto through a recording TCP proxy (the daemon's side: every history PUBLISH
 * with its seq and every PUBACK, per connection), with a persistent QoS 1 subscriber (what a
 * consumer sees):
 *   1. crash loop: kill -9 at random moments during ingestion and publishing;
 *   2. broker flapping: mosquitto stopped (SIGTERM and SIGKILL alternately) every 2-5 s;
 *   3. hot-plug loop: the serial device removed and recreated, fds and threads counted.
 * Repetitions from BMSFLEET_SOAK_KILLS, BMSFLEET_SOAK_FLAP_S, BMSFLEET_SOAK_PLUGS; the random
 * moments from BMSFLEET_SOAK_SEED (printed, so a failure can be rerun). Assertions are on
 * counts; the waits have generous bounds. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <sqlite3.h>

#include "broker.h"
#include "proc.h"

#define WAIT_MS 60000
#define PACKS   4
/* One commit interval (1 s) of a 1 s polling interval, with one round of slack (as in
 * test_robust). */
#define MAX_LOST_PER_KILL (PACKS * 2)
/* docs/mqtt.md: the cursor is saved every 0.5 s, so a crash repeats what was acknowledged in
 * the last 0.5 s; 1 s allows for the MQTT thread's turn and the save itself on a busy box. */
#define CURSOR_WINDOW_MS 1000
/* the samples of that 1 s: one commit of every pack, with one round of slack */
#define MAX_DUP_PER_KILL (PACKS * 2)
#define INTERVAL_MS      1000

static char dir[256], link_path[300], cfg_path[300], out_path[300], err_path[300];
static char db_path[300], sub_path[300], sub_err[300], proxy_log[300];
static pid_t sim_pid, daemon_pid, sub_pid, proxy_pid;
static struct broker br;
static uint64_t rng;

/* ---- parameters and the seeded PRNG ---- */

static void seed_rng(const char *what)
{
    long s = proc_env_count("BMSFLEET_SOAK_SEED", 0);
    rng = s ? (uint64_t)s : ((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16)) % 1000000007u;
    print_message("%s: seed %llu (BMSFLEET_SOAK_SEED=%llu reruns it)\n", what,
                  (unsigned long long)rng, (unsigned long long)rng);
}

static uint64_t rnd_next(void) /* splitmix64 */
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static int rnd_range(int lo, int hi) /* lo … hi inclusive */
{
    return lo + (int)(rnd_next() % (uint64_t)(hi - lo + 1));
}

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    usleep((useconds_t)ms * 1000);
}

/* realloc that fails the test instead of returning NULL (and leaking p) */
static void *grow(void *p, size_t bytes)
{
    void *q = realloc(p, bytes);
    if (q == NULL) {
        free(p);
        fail();
    }
    return q;
}

/* ---- fixture ---- */

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/bmsfleet-test-soak-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(link_path, sizeof link_path, "%s/bus", dir);
    snprintf(cfg_path, sizeof cfg_path, "%s/config.yaml", dir);
    snprintf(out_path, sizeof out_path, "%s/out.jsonl", dir);
    snprintf(err_path, sizeof err_path, "%s/err.log", dir);
    snprintf(db_path, sizeof db_path, "%s/h.db", dir);
    snprintf(sub_path, sizeof sub_path, "%s/sub.txt", dir);
    snprintf(sub_err, sizeof sub_err, "%s/sub.err", dir);
    snprintf(proxy_log, sizeof proxy_log, "%s/proxy.log", dir);
    memset(&br, 0, sizeof br);
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

static void kill_wait(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
    }
    *pid = 0;
}

static int teardown(void **state)
{
    (void)state;
    kill_wait(&daemon_pid);
    kill_wait(&sub_pid);
    kill_wait(&proxy_pid);
    if (sim_pid > 0)
        proc_stop(sim_pid);
    sim_pid = 0;
    broker_stop(&br);
    if (getenv("BMSFLEET_SOAK_KEEP"))
        print_message("kept %s\n", dir);
    else
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ---- children ---- */

static void start_sim(void)
{
    const char *extra[] = {
        "--protocol", "daren",  "--addresses", "1-4",          "--seed", "16", "--time-scale",
        "60",         "--baud", "115200",      "--turnaround", "2",      NULL};
    unlink(link_path);
    sim_pid = proc_start_sim(BMSFLEET_BIN, link_path, extra);
    assert_true(sim_pid > 0);
}

/* The simulator goes away; its link too (as udev removes /dev/serial/by-id/...). */
static void stop_sim(int sig)
{
    if (sim_pid > 0) {
        kill(sim_pid, sig);
        waitpid(sim_pid, NULL, 0);
    }
    sim_pid = 0;
    unlink(link_path);
}

static void write_config(int mqtt_port)
{
    FILE *f = fopen(cfg_path, "w");
    assert_non_null(f);
    fprintf(f,
            "node: { id: soak }\nlog: { level: info }\n"
            "ports:\n  - name: a\n    device: %s\n    protocol: daren\n    baud: 115200\n"
            "    timeout_ms: 300\n    interval_s: 1\n    packs:\n",
            link_path);
    for (int i = 1; i <= PACKS; i++)
        fprintf(f, "      - { address: %d, id: a%d, bank: house }\n", i, i);
    fprintf(f,
            "banks:\n  - { id: house, name: House }\n"
            "storage:\n  path: %s\n  commit_interval_s: 1\n",
            db_path);
    if (mqtt_port > 0)
        fprintf(f, "mqtt:\n  host: 127.0.0.1\n  port: %d\n", mqtt_port);
    fclose(f);
}

static void start_daemon(void)
{
    unlink(out_path); /* never count (or wait for) the previous run's output */
    unlink(err_path);
    char *argv[] = {(char *)BMSFLEET_BIN, "run", "-c", cfg_path, "--stdout", NULL};
    daemon_pid = proc_spawn(argv, out_path, err_path);
    assert_true(daemon_pid > 0);
}

static void kill_daemon(void)
{
    int st;
    kill(daemon_pid, SIGKILL);
    assert_int_equal(waitpid(daemon_pid, &st, 0), daemon_pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL); /* it was still running */
    daemon_pid = 0;
}

static int stop_daemon(void)
{
    int st = proc_stop(daemon_pid);
    daemon_pid = 0;
    return st;
}

static void show_file(const char *path)
{
    /* the end of it: what happened last is what explains a failure */
    char *t = proc_slurp(path);
    size_t n = t ? strlen(t) : 0;
    /* stderr, not print_error: cmocka cuts its messages at 1024 bytes */
    fprintf(stderr, "--- %s (%s) ---\n%s\n", path, n > 8000 ? "its last 8000 bytes" : "all of it",
                t ? t + (n > 8000 ? n - 8000 : 0) : "(missing)");
    free(t);
}

static void expect_in_log(const char *needle, int times)
{
    if (proc_wait_for(err_path, needle, times, WAIT_MS) == 0)
        return;
    print_error("expected %d x '%s' in the daemon's log\n", times, needle);
    show_file(err_path);
    fail();
}

static void expect_clean_log(void)
{
    char *t = proc_slurp(err_path);
    assert_non_null(t);
    if (strstr(t, "Sanitizer") || strstr(t, "runtime error") || strstr(t, "history: cannot") ||
        strstr(t, "could not be written") || strstr(t, "cannot save the replay cursor")) {
        print_error("unexpected complaint in the daemon's log:\n%s\n", t);
        fail();
    }
    free(t);
}

/* A persistent QoS 1 session (-c -i): what the broker queues while it is away arrives later.
 * Lines: "<unix time with ns> <topic> <payload>". */
static void start_subscriber(const char *topic2)
{
    char port[16];
    snprintf(port, sizeof port, "%d", br.port);
    char *argv[] = {(char *)"/usr/bin/mosquitto_sub",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    port,
                    "-c",
                    "-i",
                    "soak-sub",
                    "-q",
                    "1",
                    "-F",
                    "%U %t %p",
                    "-t",
                    "bmsfleet/+/history",
                    topic2 ? "-t" : NULL,
                    (char *)topic2,
                    NULL};
    sub_pid = proc_spawn(argv, sub_path, sub_err);
    assert_true(sub_pid > 0);
    assert_int_equal(proc_wait_for(br.log, "as soak-sub", 1, WAIT_MS), 0);
}

/* mosquitto with persistence on a fixed port (b->port set); the same directory every time,
 * so that its database (the subscriber's session and queued messages) survives restarts. */
static int broker_start_persistent(struct broker *b, const char *where)
{
    snprintf(b->dir, sizeof b->dir, "%s", where);
    snprintf(b->conf, sizeof b->conf, "%s/mosquitto.conf", where);
    snprintf(b->log, sizeof b->log, "%s/mosquitto.log", where);
    FILE *f = fopen(b->conf, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "listener %d 127.0.0.1\nallow_anonymous true\n"
            "persistence true\npersistence_location %s/\nautosave_interval 1\n"
            "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n%s",
            b->port, where, geteuid() == 0 ? "user root\n" : "");
    fclose(f);
    char *argv[] = {(char *)"/usr/sbin/mosquitto", (char *)"-c", b->conf, NULL};
    char out[300];
    snprintf(out, sizeof out, "%s/mosquitto.out", where);
    b->pid = proc_spawn(argv, out, b->log);
    if (b->pid <= 0)
        return -1;
    long long deadline = proc_now_ms() + 10000;
    while (proc_now_ms() < deadline) {
        if (broker_accepts(b->port))
            return 0;
        int st;
        if (waitpid(b->pid, &st, WNOHANG) == b->pid) {
            b->pid = 0;
            return -1;
        }
        usleep(20000);
    }
    return -1;
}

/* ---- the recording proxy: daemon <-> proxy <-> broker ----
 * Log lines (wall-clock ms): "C conn ms" connected, "X conn ms" closed, "P conn pktid seq ms"
 * a history PUBLISH from the daemon, "A conn pktid ms" a PUBACK from the broker. */

struct pstream {
    unsigned char *b;
    size_t n, cap;
};

static void plog(int fd, const char *fmt, ...)
{
    char line[200];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0 && write(fd, line, (size_t)n) != n)
        _exit(3);
}

static void proxy_packets(struct pstream *s, int from_daemon, int conn, int logfd)
{
    size_t off = 0;
    while (s->n - off >= 2) {
        const unsigned char *p = s->b + off;
        size_t len = 0, mult = 1, hdr = 0;
        for (size_t i = 1; i < 5 && off + i < s->n; i++) {
            len += (size_t)(p[i] & 127) * mult;
            mult *= 128;
            if (!(p[i] & 128)) {
                hdr = i + 1;
                break;
            }
        }
        if (hdr == 0 || s->n - off < hdr + len)
            break; /* incomplete */
        const unsigned char *v = p + hdr;
        int type = p[0] >> 4;
        if (from_daemon && type == 3 && len >= 2) {
            int qos = (p[0] >> 1) & 3;
            size_t tl = (size_t)v[0] << 8 | v[1];
            size_t h = 2 + tl + (qos ? 2 : 0);
            if (h <= len && tl >= 8 && memcmp(v + 2 + tl - 8, "/history", 8) == 0) {
                unsigned pid = qos ? (unsigned)v[2 + tl] << 8 | v[3 + tl] : 0;
                const char *q = memmem(v + h, len - h, "\"seq\":", 6);
                if (q)
                    plog(logfd, "P %d %u %lld %lld\n", conn, pid, strtoll(q + 6, NULL, 10),
                         wall_ms());
            }
        } else if (!from_daemon && type == 4 && len >= 2) {
            plog(logfd, "A %d %u %lld\n", conn, (unsigned)v[0] << 8 | v[1], wall_ms());
        }
        off += hdr + len;
    }
    memmove(s->b, s->b + off, s->n - off);
    s->n -= off;
}

static int write_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, buf, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        buf += k;
        n -= (size_t)k;
    }
    return 0;
}

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

static void proxy_main(int lfd, int up_port)
{
    signal(SIGPIPE, SIG_IGN);
    int logfd = open(proxy_log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (logfd < 0)
        _exit(2);
    int cli = -1, up = -1, conn = 0;
    struct pstream s[2] = {{NULL, 0, 0}, {NULL, 0, 0}};
    static char buf[65536];
    for (;;) {
        struct pollfd f[3] = {{lfd, POLLIN, 0}, {cli, POLLIN, 0}, {up, POLLIN, 0}};
        if (poll(f, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            _exit(1);
        }
        if (f[0].revents & POLLIN) {
            int c = accept(lfd, NULL, NULL);
            if (c < 0)
                continue;
            if (cli >= 0) {
                close(cli);
                close(up);
                plog(logfd, "X %d %lld\n", conn, wall_ms());
            }
            cli = up = -1;
            int u = connect_port(up_port);
            if (u < 0) { /* the broker is down: as if it refused */
                close(c);
                continue;
            }
            cli = c;
            up = u;
            s[0].n = s[1].n = 0;
            plog(logfd, "C %d %lld\n", ++conn, wall_ms());
            continue;
        }
        for (int d = 0; d < 2; d++) {
            int from = d == 0 ? cli : up, to = d == 0 ? up : cli;
            if (from < 0 || !(f[1 + d].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t k = read(from, buf, sizeof buf);
            if (k <= 0 || write_all(to, buf, (size_t)k) != 0) {
                close(cli);
                close(up);
                cli = up = -1;
                plog(logfd, "X %d %lld\n", conn, wall_ms());
                break;
            }
            struct pstream *ps = &s[d];
            if (ps->n + (size_t)k > ps->cap) {
                ps->cap = (ps->n + (size_t)k) * 2;
                unsigned char *nb = realloc(ps->b, ps->cap);
                if (nb == NULL)
                    _exit(4);
                ps->b = nb;
            }
            memcpy(ps->b + ps->n, buf, (size_t)k);
            ps->n += (size_t)k;
            proxy_packets(ps, d == 0, conn, logfd);
        }
    }
}

/* Returns the proxy's port. */
static int start_proxy(int up_port)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_true(lfd >= 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 8), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
    proxy_pid = fork();
    assert_true(proxy_pid >= 0);
    if (proxy_pid == 0)
        proxy_main(lfd, up_port);
    close(lfd);
    return ntohs(a.sin_port);
}

/* ---- the database ---- */

static sqlite3 *db_open(void)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        print_error("cannot open %s: %s\n", db_path, db ? sqlite3_errmsg(db) : "?");
        sqlite3_close(db);
        fail();
    }
    sqlite3_busy_timeout(db, 5000);
    return db;
}

/* The first column of the first row; def when there is none (or no such table yet). */
static long long q_int(sqlite3 *db, const char *sql, long long def)
{
    sqlite3_stmt *st;
    long long v = def;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return def;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static long long db_value(const char *sql, long long def)
{
    struct stat st;
    if (stat(db_path, &st) != 0)
        return def;
    sqlite3 *db = db_open();
    long long v = q_int(db, sql, def);
    sqlite3_close(db);
    return v;
}

#define SQL_CURSOR "SELECT value FROM meta WHERE key = 'mqtt_history_cursor'"
#define SQL_MAXID  "SELECT coalesce(max(id), 0) FROM samples"

static long long wait_db_value(const char *sql, long long at_least)
{
    long long deadline = proc_now_ms() + WAIT_MS, v;
    while ((v = db_value(sql, -1)) < at_least) {
        if (proc_now_ms() > deadline) {
            print_error("%s stays at %lld, expected >= %lld\n", sql, v, at_least);
            show_file(err_path);
            fail();
        }
        usleep(50000);
    }
    return v;
}

static void check_integrity(sqlite3 *db)
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
    assert_int_equal(q_int(db,
                           "SELECT count(*) FROM (SELECT 1 FROM samples GROUP BY pack, ts"
                           " HAVING count(*) > 1)",
                           -1),
                     0);
    /* ids have no holes: a killed transaction leaves none, so seq is a dense sequence */
    assert_int_equal(q_int(db, "SELECT count(*) FROM samples", -1),
                     q_int(db, SQL_MAXID, -1) -
                         q_int(db,
                               "SELECT coalesce(min(id), 1) FROM "
                               "samples",
                               -1) +
                         1);
}

/* ---- what the daemon printed (--stdout), compared with what it stored ---- */

struct printed {
    char pack[8];
    long long ts; /* ms */
};

static size_t read_out(struct printed **out)
{
    char *text = proc_slurp(out_path);
    assert_non_null(text);
    size_t n = 0, cap = 0;
    struct printed *v = NULL;
    char *p = text;
    for (char *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        *nl = '\0';
        if (strstr(p, "\"voltage\"") == NULL)
            continue;
        cJSON *j = cJSON_Parse(p);
        assert_non_null(j);
        const cJSON *pack = cJSON_GetObjectItem(j, "pack"), *ts = cJSON_GetObjectItem(j, "ts");
        assert_true(cJSON_IsString(pack) && cJSON_IsNumber(ts));
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            v = grow(v, cap * sizeof *v);
            assert_non_null(v);
        }
        snprintf(v[n].pack, sizeof v[n].pack, "%s", pack->valuestring);
        v[n].ts = llround(ts->valuedouble * 1000.0);
        n++;
        cJSON_Delete(j);
    }
    free(text);
    *out = v;
    return n;
}

/* How many of the printed samples are stored; they must be a prefix of what was printed. */
static size_t stored_prefix(sqlite3 *db, const struct printed *v, size_t n)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*) FROM samples s JOIN packs p ON"
                                        " p.id = s.pack WHERE p.pack_id = ?1 AND s.ts = ?2",
                                        -1, &st, NULL),
                     SQLITE_OK);
    size_t stored = 0, last_stored = 0;
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_text(st, 1, v[i].pack, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, v[i].ts);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        long long k = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        assert_true(k <= 1);
        if (k) {
            stored++;
            last_stored = i + 1;
        }
    }
    sqlite3_finalize(st);
    if (last_stored != stored) {
        print_error("printed samples are missing before a stored one (%zu stored, the last "
                    "stored is printed #%zu)\n",
                    stored, last_stored);
        fail();
    }
    return stored;
}

/* ---- the proxy's record: the daemon's side of MQTT ---- */

struct rec {
    char kind; /* C X P A */
    int conn;
    unsigned pid;
    long long seq, ms;
};

static size_t read_proxy(struct rec **out)
{
    char *text = proc_slurp(proxy_log);
    assert_non_null(text);
    size_t n = 0, cap = 0;
    struct rec *v = NULL;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        struct rec r = {0};
        r.kind = l[0];
        int ok = 0;
        if (r.kind == 'C' || r.kind == 'X')
            ok = sscanf(l + 1, "%d %lld", &r.conn, &r.ms) == 2;
        else if (r.kind == 'P')
            ok = sscanf(l + 1, "%d %u %lld %lld", &r.conn, &r.pid, &r.seq, &r.ms) == 4;
        else if (r.kind == 'A')
            ok = sscanf(l + 1, "%d %u %lld", &r.conn, &r.pid, &r.ms) == 3;
        assert_true(ok);
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            v = grow(v, cap * sizeof *v);
            assert_non_null(v);
        }
        v[n++] = r;
    }
    free(text);
    *out = v;
    return n;
}

/* What the daemon did on the wire, seq by seq (ids base+1 … maxid). */
struct wire {
    long long base, maxid;
    long long *first_ack_ms, *last_ack_ms; /* by seq - base; 0 = never acknowledged */
    int *sent;                             /* times published */
    long long conns, publishes, out_of_order, unacked_resent, acked_resent;
    long long resume_wrong;   /* a connection that did not start right after the acked prefix */
    long long *resent_ack_ms; /* for each re-send after an ack: when that ack was */
    long long *resent_seq;
    size_t nresent;
};

static void wire_free(struct wire *w)
{
    free(w->first_ack_ms);
    free(w->last_ack_ms);
    free(w->sent);
    free(w->resent_ack_ms);
    free(w->resent_seq);
}

/* cursor_at_conn(ms): the cursor the daemon had when a connection started at ms (its saved
 * cursor after a kill); NULL: the daemon kept running, so the acked prefix itself. */
static void wire_analyse(struct wire *w, long long base, long long maxid,
                         long long (*cursor_at_conn)(long long ms))
{
    memset(w, 0, sizeof *w);
    w->base = base;
    w->maxid = maxid;
    size_t span = (size_t)(maxid - base + 1);
    w->first_ack_ms = calloc(span, sizeof(long long));
    w->last_ack_ms = calloc(span, sizeof(long long));
    w->sent = calloc(span, sizeof(int));
    assert_true(w->first_ack_ms && w->last_ack_ms && w->sent);
    struct rec *r;
    size_t n = read_proxy(&r);
    static long long pid_seq[65536];
    long long last_seq = 0, prefix = base; /* all of base+1 … prefix acknowledged */
    int first_of_conn = 0;
    size_t cap = 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i].kind == 'C') {
            w->conns++;
            memset(pid_seq, 0, sizeof pid_seq);
            last_seq = 0;
            first_of_conn = 1;
            continue;
        }
        if (r[i].kind == 'P') {
            long long s = r[i].seq;
            w->publishes++;
            if (s <= last_seq)
                w->out_of_order++;
            if (first_of_conn) {
                long long expect = (cursor_at_conn ? cursor_at_conn(r[i].ms) : prefix) + 1;
                if (s != expect) {
                    print_error("connection %d resumed at seq %lld, expected %lld\n", r[i].conn, s,
                                expect);
                    w->resume_wrong++;
                }
                first_of_conn = 0;
            }
            last_seq = s;
            pid_seq[r[i].pid] = s;
            if (s <= base || s > maxid)
                continue; /* before the history started, or after the end of the check */
            size_t k = (size_t)(s - base);
            if (w->sent[k]) {
                if (w->last_ack_ms[k]) {
                    w->acked_resent++;
                    if (w->nresent == cap) {
                        cap = cap ? cap * 2 : 256;
                        w->resent_ack_ms = grow(w->resent_ack_ms, cap * sizeof(long long));
                        w->resent_seq = grow(w->resent_seq, cap * sizeof(long long));
                        assert_true(w->resent_ack_ms && w->resent_seq);
                    }
                    w->resent_ack_ms[w->nresent] = w->last_ack_ms[k];
                    w->resent_seq[w->nresent++] = s;
                } else {
                    w->unacked_resent++;
                }
            }
            w->sent[k]++;
        } else if (r[i].kind == 'A') {
            long long s = pid_seq[r[i].pid];
            if (s == 0)
                continue; /* not a history message (the goodbye, a config) */
            pid_seq[r[i].pid] = 0;
            if (s > base && s <= maxid) {
                size_t k = (size_t)(s - base);
                if (!w->first_ack_ms[k])
                    w->first_ack_ms[k] = r[i].ms;
                w->last_ack_ms[k] = r[i].ms;
                while (prefix < maxid && w->last_ack_ms[prefix + 1 - base])
                    prefix++;
            }
        }
    }
    free(r);
}

/* ---- what the subscriber received ---- */

struct heard {
    long long ms, seq; /* seq 0: a state */
    double ts;         /* a state's sample time, s */
    char pack[16];
};

static size_t read_sub(struct heard **out)
{
    char *text = proc_slurp(sub_path);
    assert_non_null(text);
    size_t n = 0, cap = 0;
    struct heard *v = NULL;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char *end;
        double t = strtod(l, &end);
        if (end == l || *end != ' ' || strncmp(end + 1, "bmsfleet/", 9) != 0)
            continue;
        const char *topic = end + 1 + 9, *slash = strchr(topic, '/');
        const char *payload = strchr(topic, ' ');
        if (slash == NULL || payload == NULL)
            continue;
        struct heard h = {llround(t * 1000.0), 0, 0.0, ""};
        snprintf(h.pack, sizeof h.pack, "%.*s", (int)(slash - topic), topic);
        if (strncmp(slash, "/history ", 9) == 0) {
            const char *q = strstr(payload, "\"seq\":");
            assert_non_null(q);
            h.seq = strtoll(q + 6, NULL, 10);
        } else if (strncmp(slash, "/state ", 7) == 0) {
            const char *q = strstr(payload, "\"ts\":");
            if (q == NULL)
                continue;
            h.ts = strtod(q + 5, NULL);
        } else {
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            v = grow(v, cap * sizeof *v);
            assert_non_null(v);
        }
        v[n++] = h;
    }
    free(text);
    *out = v;
    return n;
}

struct seen {
    long long received, distinct, missing, duplicates, gaps, rewinds;
    long long first_missing;
};

/* The history the subscriber received, against ids base+1 … maxid. A gap: a seq more than one
 * past the previous one (something skipped or reordered); a rewind: back to an earlier seq (a
 * new daemon connection replaying from its cursor). */
static void seen_analyse(const struct heard *h, size_t n, long long base, long long maxid,
                         struct seen *s)
{
    memset(s, 0, sizeof *s);
    size_t span = (size_t)(maxid - base + 1);
    int *got = calloc(span, sizeof(int));
    assert_non_null(got);
    long long prev = 0;
    for (size_t i = 0; i < n; i++) {
        if (h[i].seq == 0)
            continue;
        long long q = h[i].seq;
        if (prev && q > prev + 1)
            s->gaps++;
        if (prev && q <= prev)
            s->rewinds++;
        prev = q;
        if (q <= base || q > maxid)
            continue;
        s->received++;
        if (got[q - base]++)
            s->duplicates++;
    }
    for (long long q = base + 1; q <= maxid; q++) {
        if (got[q - base])
            s->distinct++;
        else if (s->missing++ == 0)
            s->first_missing = q;
    }
    free(got);
}

static void wait_sub_seq(long long seq)
{
    char needle[64];
    snprintf(needle, sizeof needle, "\"seq\":%lld,", seq);
    char alt[64];
    snprintf(alt, sizeof alt, "\"seq\":%lld}", seq);
    long long deadline = proc_now_ms() + WAIT_MS;
    for (;;) {
        char *t = proc_slurp(sub_path);
        int done = t && (strstr(t, needle) || strstr(t, alt));
        free(t);
        if (done)
            return;
        if (proc_now_ms() > deadline) {
            print_error("the subscriber never received seq %lld\n", seq);
            show_file(err_path);
            fail();
        }
        usleep(100000);
    }
}

/* The end of a test: no new samples (the simulator is gone), a daemon that catches up with
 * the whole history, then stops cleanly. Returns the last stored id. */
static long long catch_up(void)
{
    stop_sim(SIGTERM);
    start_daemon();
    expect_in_log("mqtt: connected to", 1); /* running, its signal handlers in place */
    long long maxid = db_value(SQL_MAXID, 0);
    wait_db_value(SQL_CURSOR, maxid); /* the daemon's acked prefix covers every row */
    wait_sub_seq(maxid);
    assert_int_equal(db_value(SQL_MAXID, 0), maxid);
    assert_int_equal(stop_daemon(), 0);
    expect_clean_log();
    sleep_ms(500); /* the subscriber writes what it has */
    return maxid;
}

/* ---- 1. crash loop ---- */

static long long run_start_ms[100000], run_kill_ms[100000], run_cursor[100000];
static int runs;

/* The cursor a connection at ms started from: the one saved when its run started. */
static long long cursor_of_run_at(long long ms)
{
    int r = 0;
    while (r + 1 < runs && run_start_ms[r + 1] <= ms)
        r++;
    return run_cursor[r];
}

static int run_of(long long ms)
{
    int r = 0;
    while (r + 1 < runs && run_start_ms[r + 1] <= ms)
        r++;
    return r;
}

static void test_crash_loop(void **state)
{
    (void)state;
    int kills = (int)proc_env_count("BMSFLEET_SOAK_KILLS", 100);
    if (kills == 0)
        skip(); /* 0: this part is not wanted (bench/soak.sh) */
    assert_true(kills + 2 < (int)(sizeof run_start_ms / sizeof run_start_ms[0]));
    seed_rng("crash loop");
    long long t0 = proc_now_ms();
    assert_int_equal(broker_start(&br, dir, NULL), 0);
    int pport = start_proxy(br.port);
    start_subscriber(NULL);
    start_sim();
    write_config(pport);

    runs = 0;
    long long before = 0; /* samples stored */
    size_t max_lost = 0, total_lost = 0, total_printed = 0;
    int lost_hist[MAX_LOST_PER_KILL + 1] = {0}, early = 0;
    long long base = -1;
    for (int k = 0; k < kills; k++) {
        run_start_ms[runs] = wall_ms();
        run_cursor[runs] = k == 0 ? 0 : db_value(SQL_CURSOR, -1);
        start_daemon();
        if (k == 0) { /* the history starts when MQTT first opens it: that is the base */
            base = wait_db_value(SQL_CURSOR, 0);
            run_cursor[0] = base;
        }
        /* a random moment: a quarter during the start (connection, replay of the backlog),
         * the rest up to 1.5 s after a commit (ingestion, publishing, cursor saves) */
        if (k > 0 && rnd_range(0, 3) == 0) {
            sleep_ms(rnd_range(0, 1200));
            early++;
        } else {
            long long deadline = proc_now_ms() + WAIT_MS;
            while (db_value("SELECT count(*) FROM samples", 0) <= before) {
                assert_true(proc_now_ms() < deadline);
                usleep(20000);
            }
            sleep_ms(rnd_range(0, 1500));
        }
        kill_daemon();
        run_kill_ms[runs++] = wall_ms();

        struct printed *v;
        size_t n = read_out(&v);
        sqlite3 *db = db_open();
        check_integrity(db);
        long long after = q_int(db, "SELECT count(*) FROM samples", -1);
        size_t stored = stored_prefix(db, v, n);
        assert_int_equal((long long)stored, after - before); /* nothing else stored */
        size_t lost = n - stored;
        if (lost > MAX_LOST_PER_KILL) {
            print_error("kill %d: %zu printed, %zu stored\n", k, n, stored);
            show_file(err_path);
        }
        assert_true(lost <= MAX_LOST_PER_KILL);
        lost_hist[lost < MAX_LOST_PER_KILL ? lost : MAX_LOST_PER_KILL]++;
        max_lost = lost > max_lost ? lost : max_lost;
        total_lost += lost;
        total_printed += n;
        before = after;
        sqlite3_close(db);
        free(v);
        expect_clean_log();
    }
    long long t_kills = proc_now_ms() - t0;

    /* a clean run: everything it printed is stored */
    run_start_ms[runs] = wall_ms();
    run_cursor[runs] = db_value(SQL_CURSOR, -1);
    start_daemon();
    wait_db_value("SELECT count(*) FROM samples", before + 3 * PACKS);
    sleep_ms(1500);
    assert_int_equal(stop_daemon(), 0);
    run_kill_ms[runs++] = wall_ms();
    expect_clean_log();
    struct printed *v;
    size_t n = read_out(&v);
    sqlite3 *db = db_open();
    check_integrity(db);
    assert_int_equal((long long)stored_prefix(db, v, n), (long long)n);
    sqlite3_close(db);
    free(v);
    /* and one that catches up with the rest */
    run_start_ms[runs] = wall_ms();
    run_cursor[runs] = db_value(SQL_CURSOR, -1);
    runs++;
    long long maxid = catch_up();
    run_kill_ms[runs - 1] = wall_ms();
    kill_wait(&sub_pid);

    /* the daemon's side, from the proxy */
    struct wire w;
    wire_analyse(&w, base, maxid, cursor_of_run_at);
    long long never_acked = 0, max_age = 0;
    int dup_per_run[100000 / 8] = {0}, max_dup = 0;
    for (long long s = base + 1; s <= maxid; s++)
        never_acked += w.first_ack_ms[s - base] == 0;
    for (size_t i = 0; i < w.nresent; i++) {
        int r = run_of(w.resent_ack_ms[i]); /* acknowledged in run r, which was killed */
        long long age = run_kill_ms[r] - w.resent_ack_ms[i];
        max_age = age > max_age ? age : max_age;
        if (age > CURSOR_WINDOW_MS)
            print_error("seq %lld sent again: acknowledged %lld ms before kill %d\n",
                        w.resent_seq[i], age, r);
        if (r < (int)(sizeof dup_per_run / sizeof dup_per_run[0]) && ++dup_per_run[r] > max_dup)
            max_dup = dup_per_run[r];
    }
    for (int r = 0; r < runs && r < (int)(sizeof dup_per_run / sizeof dup_per_run[0]); r++) {
        if (dup_per_run[r] > PACKS) /* more than one round of the bank: when was that? */
            print_message("crash loop: kill %d, %lld ms after its start, repeated %d acknowledged "
                          "samples\n",
                          r, run_kill_ms[r] - run_start_ms[r], dup_per_run[r]);
    }
    /* what the subscriber saw */
    struct heard *h;
    size_t nh = read_sub(&h);
    struct seen s;
    seen_analyse(h, nh, base, maxid, &s);
    free(h);

    print_message("crash loop: %d x kill -9 (%d during the start), %.0f s; %zu samples printed, "
                  "%zu lost in all, at most %zu per kill (avg %.2f); lost per kill:",
                  kills, early, (double)t_kills / 1000.0, total_printed, total_lost, max_lost,
                  (double)total_lost / kills);
    for (size_t i = 0; i <= MAX_LOST_PER_KILL; i++)
        if (lost_hist[i])
            print_message(" %zux%d", i, lost_hist[i]);
    print_message("\n");
    print_message("crash loop, daemon side: seq %lld..%lld (%lld samples), %lld connections, "
                  "%lld history publishes; never acknowledged %lld; out of order %lld; wrong "
                  "resume %lld; re-sent after an ack %lld (at most %d per kill, acked at most "
                  "%lld ms before the kill), re-sent unacknowledged %lld\n",
                  base + 1, maxid, maxid - base, w.conns, w.publishes, never_acked, w.out_of_order,
                  w.resume_wrong, w.acked_resent, max_dup, max_age, w.unacked_resent);
    print_message("crash loop, subscriber: %lld received, %lld distinct, %lld missing, %lld "
                  "duplicates, %lld gaps, %lld rewinds (new connections replaying)\n",
                  s.received, s.distinct, s.missing, s.duplicates, s.gaps, s.rewinds);
    assert_int_equal(never_acked, 0);
    assert_int_equal(w.out_of_order, 0);
    assert_int_equal(w.resume_wrong, 0);
    assert_true(max_age <= CURSOR_WINDOW_MS);
    assert_true(max_dup <= MAX_DUP_PER_KILL);
    if (s.missing)
        print_error("first missing seq %lld\n", s.first_missing);
    assert_int_equal(s.missing, 0);
    assert_int_equal(s.gaps, 0);
    assert_true(s.rewinds <= runs);
    /* every duplicate the subscriber saw was sent twice by the daemon, and nothing else was */
    assert_true(s.duplicates <= w.acked_resent + w.unacked_resent);
    wire_free(&w);
}

/* ---- 2. broker flapping ---- */

static void test_broker_flapping(void **state)
{
    (void)state;
    int flap_s = (int)proc_env_count("BMSFLEET_SOAK_FLAP_S", 60);
    if (flap_s == 0)
        skip(); /* 0: this part is not wanted (bench/soak.sh) */
    seed_rng("broker flapping");
    br.port = broker_free_port();
    assert_int_equal(broker_start_persistent(&br, dir), 0);
    int pport = start_proxy(br.port);
    start_subscriber("bmsfleet/+/state");
    start_sim();
    write_config(pport);
    start_daemon();
    long long base = wait_db_value(SQL_CURSOR, 0);
    expect_in_log("mqtt: connected to", 1);

    long long t0 = proc_now_ms(), cursor = base;
    int flaps = 0, sigkills = 0, cursor_back = 0;
    while (proc_now_ms() - t0 < (long long)flap_s * 1000) {
        sleep_ms(rnd_range(2000, 5000));
        int sig = flaps % 2 ? SIGKILL : SIGTERM;
        kill(br.pid, sig);
        waitpid(br.pid, NULL, 0);
        br.pid = 0;
        sigkills += sig == SIGKILL;
        flaps++;
        long long c = db_value(SQL_CURSOR, -1);
        if (c < cursor) {
            print_error("the saved cursor went back from %lld to %lld\n", cursor, c);
            cursor_back++;
        }
        cursor = c > cursor ? c : cursor;
        sleep_ms(rnd_range(0, 1500)); /* down for a moment */
        int tries = 0;
        while (broker_start_persistent(&br, dir) != 0) {
            assert_true(++tries < 20);
            sleep_ms(200);
        }
    }
    long long t_flap = proc_now_ms() - t0;
    /* the broker stays: the daemon reconnects, states flow, the backlog is delivered */
    long long at_end = db_value(SQL_MAXID, 0);
    wait_db_value(SQL_CURSOR, at_end);
    sleep_ms(3000);
    assert_int_equal(stop_daemon(), 0);
    expect_clean_log();
    /* the newest stored sample of each pack (ms) */
    long long newest[PACKS];
    for (int i = 0; i < PACKS; i++) {
        char sql[200];
        snprintf(sql, sizeof sql,
                 "SELECT max(s.ts) FROM samples s JOIN packs p ON p.id = s.pack WHERE "
                 "p.pack_id = 'a%d'",
                 i + 1);
        newest[i] = db_value(sql, 0);
    }
    long long maxid = catch_up();
    kill_wait(&sub_pid);

    struct wire w;
    wire_analyse(&w, base, maxid, NULL);
    long long never_acked = 0;
    for (long long q = base + 1; q <= maxid; q++)
        never_acked += w.first_ack_ms[q - base] == 0;
    struct heard *h;
    size_t nh = read_sub(&h);
    struct seen s;
    seen_analyse(h, nh, base, maxid, &s);
    /* the last state of each pack the subscriber got, against the newest stored sample */
    long long last_state[PACKS] = {0};
    for (size_t i = 0; i < nh; i++) {
        char *end;
        long idx = h[i].pack[0] == 'a' ? strtol(h[i].pack + 1, &end, 10) : 0;
        if (h[i].seq == 0 && idx >= 1 && idx <= PACKS && *end == '\0')
            last_state[idx - 1] = llround(h[i].ts * 1000.0);
    }
    free(h);
    long long state_off = 0;
    for (int i = 0; i < PACKS; i++) {
        long long d = llabs(newest[i] - last_state[i]);
        state_off = d > state_off ? d : state_off;
        if (d > INTERVAL_MS)
            print_error("pack a%d: last state at %lld, newest stored sample at %lld\n", i + 1,
                        last_state[i], newest[i]);
    }

    print_message("broker flapping: %d restarts in %.0f s (%d by SIGKILL), cursor went back "
                  "%d times\n",
                  flaps, (double)t_flap / 1000.0, sigkills, cursor_back);
    print_message("broker flapping, daemon side: seq %lld..%lld (%lld samples), %lld "
                  "connections, %lld history publishes; never acknowledged %lld; out of order "
                  "%lld; wrong resume %lld; re-sent after an ack %lld; re-sent unacknowledged "
                  "%lld\n",
                  base + 1, maxid, maxid - base, w.conns, w.publishes, never_acked, w.out_of_order,
                  w.resume_wrong, w.acked_resent, w.unacked_resent);
    print_message("broker flapping, subscriber: %lld received, %lld distinct, %lld missing, "
                  "%lld duplicates, %lld gaps, %lld rewinds\n",
                  s.received, s.distinct, s.missing, s.duplicates, s.gaps, s.rewinds);
    print_message("broker flapping, states: the last state of each pack at most %lld ms from "
                  "its newest stored sample\n",
                  state_off);
    assert_int_equal(cursor_back, 0);
    assert_int_equal(never_acked, 0);
    assert_int_equal(w.out_of_order, 0);
    /* An acknowledgement that reaches paho as the connection drops can be missed (seen once in
     * 300 s of flapping: issue noted in the closing note of issue 16): that sample is sent once
     * more on the next connection, which at-least-once with a seq allows (docs/mqtt.md). Bounded:
     * at most two such per connection; never a gap, never out of order. */
    assert_true(w.resume_wrong <= 2 * w.conns);
    assert_true(w.acked_resent <= 2 * w.conns);
    assert_true(state_off <= INTERVAL_MS);
    wire_free(&w);
}

/* ---- 3. hot-plug loop ---- */

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void proc_counts(pid_t pid, int *fds, int *threads)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/fd", (int)pid);
    *fds = count_dir(p);
    snprintf(p, sizeof p, "/proc/%d/task", (int)pid);
    *threads = count_dir(p);
}

static void pack_counts(int *c)
{
    char *t = proc_slurp(out_path);
    for (int i = 0; i < PACKS; i++) {
        char needle[32];
        snprintf(needle, sizeof needle, "\"pack\":\"a%d\"", i + 1);
        c[i] = t ? proc_count(t, needle) : 0;
    }
    free(t);
}

/* Waits until every pack printed a sample beyond prev[]; returns how long it took. */
static long long wait_every_pack(const int *prev)
{
    long long t0 = proc_now_ms();
    for (;;) {
        int c[PACKS], all = 1;
        pack_counts(c);
        for (int i = 0; i < PACKS; i++)
            all &= c[i] > prev[i];
        if (all)
            return proc_now_ms() - t0;
        if (proc_now_ms() - t0 > WAIT_MS) {
            print_error("not every pack was polled again\n");
            show_file(err_path);
            fail();
        }
        usleep(20000);
    }
}

static void test_hotplug_loop(void **state)
{
    (void)state;
    int plugs = (int)proc_env_count("BMSFLEET_SOAK_PLUGS", 50);
    if (plugs == 0)
        skip(); /* 0: this part is not wanted (bench/soak.sh) */
    seed_rng("hot-plug loop");
    start_sim();
    write_config(0);
    start_daemon();
    int zero[PACKS] = {0};
    wait_every_pack(zero);
    int c[PACKS];
    pack_counts(c);
    wait_every_pack(c); /* settled: a second round */
    int fd0, th0;
    proc_counts(daemon_pid, &fd0, &th0);
    int fd_last = fd0, th_last = th0, fd_max = fd0, th_max = th0;
    long long worst = 0, sum = 0, worst_over = -1000000;
    long long head_sum = 0, tail_sum = 0; /* short absences of the first and last ten */
    int head_n = 0, tail_n = 0;
    long long t0 = proc_now_ms();
    for (int k = 0; k < plugs; k++) {
        stop_sim(k % 2 ? SIGKILL : SIGTERM); /* unplugged */
        expect_in_log("; reopening", k + 1); /* the daemon noticed */
        long long t_detect = proc_now_ms();
        /* away for a moment; every tenth time long enough for the reopen backoff to grow */
        sleep_ms(k % 10 == 9 ? rnd_range(2000, 5000) : rnd_range(0, 1000));
        pack_counts(c);
        start_sim(); /* plugged back in */
        long long t_back = proc_now_ms();
        long long took = wait_every_pack(c);
        expect_in_log("is open again; polling resumes", k + 1);
        /* reopen attempts 1, 2, 4, 8 … s after the failure: the one after the return, then
         * one poll of every pack, at most two intervals */
        long long attempt = 1000;
        while (t_detect + attempt < t_back)
            attempt *= 2;
        long long bound = (t_detect + attempt - t_back) + 2 * INTERVAL_MS;
        if (took - bound > worst_over)
            worst_over = took - bound;
        worst = took > worst ? took : worst;
        sum += took;
        if (k % 10 != 9 && k < 10) {
            head_sum += took;
            head_n++;
        }
        if (k % 10 != 9 && k >= plugs - 10) {
            tail_sum += took;
            tail_n++;
        }
        if (took > bound + 2000) { /* a busy machine: scheduling slack */
            print_error("plug %d: every pack polled again %lld ms after the return (bound %lld "
                        "ms)\n",
                        k, took, bound);
            show_file(err_path);
            fail();
        }
        proc_counts(daemon_pid, &fd_last, &th_last);
        fd_max = fd_last > fd_max ? fd_last : fd_max;
        th_max = th_last > th_max ? th_last : th_max;
    }
    long long t_all = proc_now_ms() - t0;
    assert_int_equal(stop_daemon(), 0);
    expect_clean_log();
    /* the backoff starts again at 1 s after every reopen: the last unplugs are no slower */
    print_message("hot-plug: after a short absence, every pack polled again %.2f s after the "
                  "return on average in the first ten unplugs, %.2f s in the last ten\n",
                  head_n ? (double)head_sum / head_n / 1000.0 : 0.0,
                  tail_n ? (double)tail_sum / tail_n / 1000.0 : 0.0);
    print_message("hot-plug: %d unplugs in %.0f s; every pack polled again %.2f s after the "
                  "return on average, at most %.2f s (at most %lld ms over the bound of the "
                  "reopen backoff + 2 intervals); fds %d first, %d last, %d at most; threads "
                  "%d first, %d last, %d at most\n",
                  plugs, (double)t_all / 1000.0, plugs ? (double)sum / plugs / 1000.0 : 0.0,
                  (double)worst / 1000.0, worst_over, fd0, fd_last, fd_max, th0, th_last, th_max);
    assert_int_equal(fd_last, fd0);
    assert_int_equal(th_last, th0);
    assert_int_equal(fd_max, fd0);
    assert_int_equal(th_max, th0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crash_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broker_flapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hotplug_loop, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
