/* test_systemd: the daemon under a service manager, without one. The test plays systemd's
 * part: it owns the unix datagram socket named by NOTIFY_SOCKET (and sets WATCHDOG_USEC),
 * runs the real binary against a real simulator over a pty, and reads what the daemon sends:
 * READY=1, STATUS=, WATCHDOG=1, RELOADING=1, STOPPING=1. SIGHUP re-reads the configuration
 * and never stops the daemon. Counts are asserted, not exact times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "notify.h"
#include "proc.h"
#include "supervisor.h"

#define WAIT_MS 30000
/* WATCHDOG_USEC given to the daemon: it pings at half of it */
#define WATCHDOG_MS 1000

static char dir[256];
static char sim_path[PROC_PATH_MAX], cfg_path[PROC_PATH_MAX], out_path[PROC_PATH_MAX],
    err_path[PROC_PATH_MAX], db_path[PROC_PATH_MAX], sock_path[PROC_PATH_MAX];
static pid_t sim_pid, daemon_pid;
static int sock_fd = -1;
/* every notification received so far, one per line ('\n' inside one becomes '|') */
static char notes[1 << 16];
static size_t notes_len;

static int setup(void **state)
{
    (void)state;
    const struct proc_file files[] = {
        {sim_path, "bus-a"},   {cfg_path, "config.yaml"}, {out_path, "out.jsonl"},
        {err_path, "err.log"}, {db_path, "history.db"},   {sock_path, "notify.sock"},
        {NULL, NULL}};
    return proc_test_dir(dir, sizeof dir, "systemd", files);
}

static int stop_all(void **state)
{
    (void)state;
    proc_stop_each((pid_t *[]){&daemon_pid, &sim_pid, NULL});
    if (sock_fd >= 0)
        close(sock_fd);
    sock_fd = -1;
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("BMSFLEET_TEST_HANG");
    proc_clear_dir(dir, 1);
    return 0;
}

static int teardown(void **state)
{
    stop_all(state);
    proc_clear_dir(dir, 0);
    return 0;
}

/* The notify tests need a binary that can notify; say so rather than pass. */
static void need_libsystemd(void)
{
    if (!notify_built_in()) {
        print_message("skipped: bmsfleet was built without libsystemd (BMSFLEET_SYSTEMD=OFF or "
                      "libsystemd-dev missing): no sd_notify to test\n");
        skip();
    }
}

/* Plays systemd: binds the socket and tells the daemon (through the environment) where it is. */
static void open_notify_socket(int watchdog)
{
    sock_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(sock_fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(sock_path) < sizeof sa.sun_path);
    memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
    unlink(sock_path);
    assert_int_equal(bind(sock_fd, (struct sockaddr *)&sa, sizeof sa), 0);
    setenv("NOTIFY_SOCKET", sock_path, 1);
    if (watchdog) {
        char usec[32];
        snprintf(usec, sizeof usec, "%d", WATCHDOG_MS * 1000);
        setenv("WATCHDOG_USEC", usec, 1);
    }
    notes_len = 0;
    notes[0] = '\0';
}

/* Takes every datagram waiting on the socket into notes. */
static void drain(void)
{
    char buf[4096];
    ssize_t n;
    while ((n = recv(sock_fd, buf, sizeof buf - 1, 0)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n')
                buf[i] = '|';
        }
        if (notes_len + (size_t)n + 2 < sizeof notes) {
            memcpy(notes + notes_len, buf, (size_t)n);
            notes_len += (size_t)n;
            notes[notes_len++] = '\n';
            notes[notes_len] = '\0';
        }
    }
}

static int count_note(const char *needle)
{
    return proc_count(notes, needle);
}

/* Waits until notes hold needle `times` times; fails with what came otherwise. */
static void wait_note(const char *needle, int times)
{
    long long deadline = proc_now_ms() + WAIT_MS;
    while (proc_now_ms() < deadline) {
        drain();
        if (count_note(needle) >= times)
            return;
        usleep(20000);
    }
    char *log = proc_slurp(err_path);
    size_t n = log ? strlen(log) : 0;
    print_error("expected %d × '%s' among the notifications:\n%.1000s\nthe log ends:\n%s\n",
                times, needle, notes, log ? log + (n > 1000 ? n - 1000 : 0) : "(none)");
    free(log);
    fail();
}

/* Reads the notifications for ms milliseconds. */
static void collect(int ms)
{
    long long end = proc_now_ms() + ms;
    while (proc_now_ms() < end) {
        drain();
        usleep(20000);
    }
    drain();
}

/* Keeps reading the socket meanwhile, as systemd would: a datagram socket nobody reads holds
 * a dozen messages, then the daemon's sd_notify() blocks. */
static int file_count(const char *path, const char *needle)
{
    char *t = proc_slurp(path);
    int n = t ? proc_count(t, needle) : 0;
    free(t);
    return n;
}

/* Waits for needle `times` times in the file at path, reading the socket meanwhile as systemd
 * would: a datagram socket nobody reads holds about ten messages, then the daemon's
 * sd_notify() blocks. */
static void expect_in(const char *path, const char *needle, int times)
{
    long long deadline = proc_now_ms() + WAIT_MS;
    while (proc_now_ms() < deadline) {
        if (sock_fd >= 0)
            drain();
        if (file_count(path, needle) >= times)
            return;
        usleep(50000);
    }
    char *t = proc_slurp(path);
    size_t n = t ? strlen(t) : 0;
    /* the end of it, on stderr: cmocka cuts long messages */
    fprintf(stderr, "expected %d × '%s' in %s, which ends:\n%s\n", times, needle, path,
            t ? t + (n > 1500 ? n - 1500 : 0) : "(missing)");
    free(t);
    fail();
}

static void expect_in_log(const char *needle, int times)
{
    expect_in(err_path, needle, times);
}

static void write_config(const char *level, int interval_s, const char *extra)
{
    FILE *f = fopen(cfg_path, "w");
    assert_non_null(f);
    fprintf(f,
            "node:\n  id: testnode\nlog:\n  level: %s\n"
            "ports:\n  - name: a\n    device: %s\n    protocol: daren\n    baud: 115200\n"
            "    timeout_ms: 300\n    gap_ms: 5\n    interval_s: %d\n    packs:\n"
            "      - { address: 1, id: a1 }\n      - { address: 2, id: a2 }\n"
            "      - { address: 3, id: a3 }\n      - { address: 4, id: a4 }\n"
            "storage:\n  path: %s\n  commit_interval_s: 1\n%s",
            level, sim_path, interval_s, db_path, extra ? extra : "");
    fclose(f);
}

static void start(void)
{
    const char *extra[] = {"--protocol", "daren", "--addresses", "1-4", "--seed", "7",
                           "--time-scale", "0", "--baud", "115200", "--turnaround", "2", NULL};
    unlink(sim_path);
    sim_pid = proc_start_sim(BMSFLEET_BIN, sim_path, extra);
    assert_true(sim_pid > 0);
    char *argv[] = {(char *)BMSFLEET_BIN, "run", "-c", cfg_path, "--stdout", NULL};
    daemon_pid = proc_spawn(argv, out_path, err_path);
    assert_true(daemon_pid > 0);
}

static int stop_daemon(void)
{
    int st = proc_stop(daemon_pid);
    daemon_pid = 0;
    return st;
}

/* READY=1 comes once, after the port is open and the history open, with a STATUS= summary;
 * STATUS= follows the packs coming online; WATCHDOG=1 keeps coming at about half of
 * WATCHDOG_USEC; STOPPING=1 at SIGTERM. */
static void test_ready_status_watchdog(void **state)
{
    (void)state;
    need_libsystemd();
    write_config("info", 1, NULL);
    open_notify_socket(1);
    start();
    wait_note("READY=1", 1);
    /* what READY=1 promises was done before it was sent */
    char *log = proc_slurp(err_path);
    assert_non_null(log);
    assert_non_null(strstr(log, "port a: "));
    assert_non_null(strstr(log, " open, daren at 115200 baud, 4 pack(s) every 1 s"));
    assert_non_null(strstr(log, "history: "));
    free(log);
    struct stat st;
    assert_int_equal(stat(db_path, &st), 0);
    /* READY=1 carries the first summary in the same message */
    assert_non_null(strstr(notes, "READY=1|STATUS="));
    assert_non_null(strstr(notes, "/4 packs online"));
    wait_note("STATUS=4/4 packs online", 1);

    /* pings: about one every WATCHDOG_MS / 2; never more often */
    drain();
    int before = count_note("WATCHDOG=1");
    long long t0 = proc_now_ms();
    collect(4000);
    long long took = proc_now_ms() - t0;
    int pings = count_note("WATCHDOG=1") - before;
    print_message("%d WATCHDOG=1 in %lld ms\n", pings, took);
    assert_true(pings >= 4);
    assert_true(pings <= took / (WATCHDOG_MS / 2) + 2);
    assert_int_equal(count_note("READY=1"), 1);

    assert_int_equal(stop_daemon(), 0);
    collect(100);
    assert_int_equal(count_note("STOPPING=1"), 1);
    log = proc_slurp(err_path);
    assert_null(strstr(log, "stuck"));
    free(log);
}

/* A poller stuck on purpose (BMSFLEET_TEST_HANG, a testing aid): READY=1 and STATUS= came, the
 * log names the stuck thread once, STATUS= says it, and WATCHDOG=1 stops, so systemd would
 * restart the service. The daemon still stops cleanly. */
static void test_hung_poller_stops_watchdog(void **state)
{
    (void)state;
    need_libsystemd();
    write_config("info", 1, NULL);
    open_notify_socket(1);
    setenv("BMSFLEET_TEST_HANG", "poller:a", 1);
    start();
    wait_note("READY=1", 1);
    assert_non_null(strstr(notes, "STATUS="));
    expect_in_log("watchdog: poller a is stuck: no progress for ", 1);
    wait_note(", poller a stuck", 1);
    drain();
    int before = count_note("WATCHDOG=1");
    collect(3 * WATCHDOG_MS);
    assert_int_equal(count_note("WATCHDOG=1"), before); /* not one more */

    char *log = proc_slurp(err_path);
    assert_int_equal(proc_count(log, "is stuck"), 1); /* once, not every turn */
    assert_non_null(strstr(log, "WATCHDOG=1 withheld"));
    assert_null(strstr(log, "history writer is stuck"));
    free(log);
    assert_int_equal(stop_daemon(), 0);
}

/* SIGHUP re-reads the configuration and keeps running: unchanged, a new log.level (applied),
 * another change (restart needed, said so), an invalid file (the running one stays). Samples
 * keep coming through all of it, and it stops with 0. RELOADING=1 then READY=1 each time. */
static void test_sighup_reloads(void **state)
{
    (void)state;
    write_config("info", 1, NULL);
    int notify = notify_built_in();
    if (notify)
        open_notify_socket(0); /* no WATCHDOG_USEC: no WATCHDOG=1 at all */
    start();
    expect_in(out_path, "\"pack\":\"a4\"", 1);
    if (notify)
        wait_note("READY=1", 1);

    kill(daemon_pid, SIGHUP);
    expect_in_log("reload: the rest of the configuration is unchanged", 1);

    write_config("debug", 1, NULL);
    kill(daemon_pid, SIGHUP);
    expect_in_log("reload: log level set to debug", 1);
    expect_in_log("reload: the rest of the configuration is unchanged", 2);
    assert_int_equal(file_count(err_path, "read, valid"), 0); /* a debug line: not at info */

    write_config("debug", 5, NULL);
    kill(daemon_pid, SIGHUP);
    expect_in_log("changed: restart to apply it (systemctl restart bmsfleet)", 1);
    expect_in_log("read, valid", 1); /* debug lines now: the new level was applied */

    write_config("debug", 5, "bogus_key: 1\n");
    kill(daemon_pid, SIGHUP);
    expect_in_log("reload: the configuration has errors; the daemon goes on", 1);
    expect_in_log("unknown section 'bogus_key'", 1);

    /* still polling, through four reloads */
    expect_in(out_path, "\"pack\":\"a1\"", file_count(out_path, "\"pack\":\"a1\"") + 2);
    assert_int_equal(kill(daemon_pid, 0), 0);
    if (notify) {
        collect(200);
        assert_int_equal(count_note("RELOADING=1"), 4);
        assert_int_equal(count_note("READY=1"), 5);
        assert_int_equal(count_note("WATCHDOG=1"), 0);
    } else {
        print_message("built without libsystemd: notifications not checked\n");
    }
    assert_int_equal(stop_daemon(), 0);
}

/* The summary line, field by field. */
static void test_status_line(void **state)
{
    (void)state;
    char buf[200];
    struct supervisor_summary s = {16, 16, 0, SUPERVISOR_HISTORY_OK, SUPERVISOR_MQTT_CONNECTED,
                                   0, NULL};
    supervisor_format(&s, buf, sizeof buf);
    assert_string_equal(buf, "16/16 packs online, backlog 0, mqtt connected");
    s = (struct supervisor_summary){3, 8, 1, SUPERVISOR_HISTORY_FAILING, SUPERVISOR_MQTT_DOWN,
                                    1234, "poller b"};
    supervisor_format(&s, buf, sizeof buf);
    assert_string_equal(buf, "3/8 packs online, 1 port(s) down, history failing, backlog 1234, "
                             "mqtt disconnected, poller b stuck");
    s = (struct supervisor_summary){0, 4, 0, SUPERVISOR_HISTORY_OFF, SUPERVISOR_MQTT_OFF, -1,
                                    NULL};
    supervisor_format(&s, buf, sizeof buf);
    assert_string_equal(buf, "0/4 packs online");
    char small[12];
    supervisor_format(&s, small, sizeof small); /* cut, still a string */
    assert_string_equal(small, "0/4 packs o");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_line),
        cmocka_unit_test_teardown(test_ready_status_watchdog, stop_all),
        cmocka_unit_test_teardown(test_hung_poller_stops_watchdog, stop_all),
        cmocka_unit_test_teardown(test_sighup_reloads, stop_all),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
