/* test_bridge: deploy/mosquitto-bridge.conf between two real mosquitto brokers. The daemon
 * (real binary, simulated packs over a pty) publishes to the site broker, which bridges
 * bmsfleet/# to a central one; a subscriber with a persistent session on the central broker
 * must see the live states and every history message, by seq, from the first to the last —
 * also those taken while the central broker was stopped (the bridge link down), which only the
 * site broker's bridge queue holds: the daemon replays only what the site did not acknowledge.
 *
 * The bridge lines are the example's, read from the file: the test substitutes only the address
 * (the central broker's free port), drops TLS and credentials (the test brokers are plaintext
 * and anonymous) and shortens restart_timeout so the reconnection is quick. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "broker.h"
#include "proc.h"

#define WAIT_MS 45000
#define DOWN_S  6 /* the central broker is stopped this long */
#define MAX_SEQ 100000

static char dir[256], central_dir[PROC_PATH_MAX], site_dir[PROC_PATH_MAX], bus[PROC_PATH_MAX],
    cfg_path[PROC_PATH_MAX], out_path[PROC_PATH_MAX], err_path[PROC_PATH_MAX],
    db_path[PROC_PATH_MAX];
static char sub1_path[PROC_PATH_MAX], sub2_path[PROC_PATH_MAX], sub_err[PROC_PATH_MAX],
    site_sub_path[PROC_PATH_MAX], site_sub_err[PROC_PATH_MAX];
static pid_t sim_pid, daemon_pid, sub_pid, site_sub_pid;
static struct broker central, site;

static int setup(void **state)
{
    (void)state;
    const struct proc_file files[] = {
        {central_dir, "central"},
        {site_dir, "site"},
        {bus, "bus"},
        {cfg_path, "config.yaml"},
        {out_path, "out.jsonl"},
        {err_path, "err.log"},
        {db_path, "h.db"},
        {sub1_path, "central-sub1.txt"},
        {sub2_path, "central-sub2.txt"},
        {sub_err, "central-sub.err"},
        {site_sub_path, "site-sub.txt"},
        {site_sub_err, "site-sub.err"},
        {NULL, NULL},
    };
    if (proc_test_dir(dir, sizeof dir, "bridge", files))
        return -1;
    return mkdir(central_dir, 0700) || mkdir(site_dir, 0700) ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    proc_stop_each((pid_t *[]){&daemon_pid, &sub_pid, &site_sub_pid, &sim_pid, NULL});
    broker_stop(&site);
    broker_stop(&central);
    proc_clear_dir(dir, 0);
    return 0;
}

static void dump_and_fail(const char *what)
{
    const char *files[] = {sub1_path, sub2_path, sub_err,    site_sub_path,
                           err_path,  site.log,  central.log};
    print_error("%s\n", what);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *t = proc_slurp(files[i]);
        size_t n = t ? strlen(t) : 0;
        print_error("--- %s (last 3000 bytes):\n%s\n", files[i],
                    t ? t + (n > 3000 ? n - 3000 : 0) : "(missing)");
        free(t);
    }
    fail();
}

static void expect_in(const char *path, const char *needle, int times)
{
    if (proc_wait_for(path, needle, times, WAIT_MS) == 0)
        return;
    char what[512];
    snprintf(what, sizeof what, "expected %d x '%s' in %s", times, needle, path);
    dump_and_fail(what);
}

/* The site broker's configuration: the example's lines, with the central broker's address. */
static void bridge_lines(char *buf, size_t cap)
{
    char path[512];
    snprintf(path, sizeof path, "%s/deploy/mosquitto-bridge.conf", BMSFLEET_SOURCE_DIR);
    char *text = proc_slurp(path);
    assert_non_null(text);
    static const char *const dropped[] = {"bridge_cafile",   "bridge_certfile", "bridge_keyfile",
                                          "bridge_insecure", "remote_username", "remote_password"};
    size_t n = (size_t)snprintf(buf, cap, "persistence true\npersistence_location %s/\n", site_dir);
    int address = 0, connection = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char key[64] = "";
        sscanf(line, "%63s", key);
        int drop = 0;
        for (size_t i = 0; i < sizeof dropped / sizeof dropped[0]; i++)
            drop = drop || strcmp(key, dropped[i]) == 0;
        if (drop)
            continue;
        if (strcmp(key, "address") == 0) {
            n += (size_t)snprintf(buf + n, cap - n, "address 127.0.0.1:%d\n", central.port);
            address = 1;
        } else if (strcmp(key, "restart_timeout") == 0) {
            n += (size_t)snprintf(buf + n, cap - n, "restart_timeout 1\n");
        } else {
            connection = connection || strcmp(key, "connection") == 0;
            n += (size_t)snprintf(buf + n, cap - n, "%s\n", line);
        }
        assert_true(n < cap);
    }
    free(text);
    assert_true(connection && address);
    /* what the queueing across an outage rests on, present in the example itself */
    assert_non_null(strstr(buf, "\ncleansession false\n"));
    assert_non_null(strstr(buf, "\ntopic bmsfleet/# out 1\n"));
    assert_non_null(strstr(buf, "\nmax_queued_messages "));
}

static void write_config(void)
{
    FILE *f = fopen(cfg_path, "w");
    assert_non_null(f);
    fprintf(f,
            "node: { id: cabin }\n"
            "ports:\n  - name: a\n    device: %s\n    baud: 115200\n    timeout_ms: 300\n"
            "    interval_s: 1\n    packs:\n"
            "      - { address: 1, id: p1, bank: house }\n"
            "      - { address: 2, id: p2, bank: house }\n"
            "banks:\n  - { id: house, name: House }\n"
            "storage:\n  path: %s\n  commit_interval_s: 1\n"
            "mqtt:\n  host: 127.0.0.1\n  port: %d\n  qos: 1\n",
            bus, db_path, site.port);
    fclose(f);
}

/* Marks in seen[] the seq of every history message in the file; returns how many there were and
 * the highest seq in *max (0 when none). */
static int history_seqs(const char *path, unsigned char *seen, long *min, long *max)
{
    char *text = proc_slurp(path);
    int n = 0;
    for (const char *p = text ? strstr(text, "/history ") : NULL; p;
         p = strstr(p + 1, "/history ")) {
        const char *eol = strchr(p, '\n');
        const char *s = strstr(p, "\"seq\":");
        if (s == NULL || (eol && s > eol))
            continue;
        long seq = strtol(s + 6, NULL, 10);
        if (seq <= 0 || seq >= MAX_SEQ)
            continue;
        seen[seq] = 1;
        if (*min == 0 || seq < *min)
            *min = seq;
        if (seq > *max)
            *max = seq;
        n++;
    }
    free(text);
    return n;
}

static void test_bridge_outage(void **state)
{
    (void)state;
    static char conf[16384];
    char central_extra[512];
    snprintf(central_extra, sizeof central_extra,
             "allow_anonymous true\npersistence true\npersistence_location %s/\n", central_dir);
    assert_int_equal(broker_start(&central, central_dir, central_extra), 0);
    bridge_lines(conf, sizeof conf);
    char site_extra[16500];
    snprintf(site_extra, sizeof site_extra, "allow_anonymous true\n%s", conf);
    assert_int_equal(broker_start(&site, site_dir, site_extra), 0);

    sub_pid = broker_subscribe_as(&central, "bmsfleet/#", "central-sub", sub1_path, sub_err);
    assert_true(sub_pid > 0);
    site_sub_pid = broker_subscribe(&site, "bmsfleet/+/history", site_sub_path, site_sub_err);
    assert_true(site_sub_pid > 0);

    const char *extra[] = {
        "--protocol", "daren",  "--addresses", "1-2",          "--seed", "7", "--time-scale",
        "0",          "--baud", "115200",      "--turnaround", "2",      NULL};
    sim_pid = proc_start_sim(BMSFLEET_BIN, bus, extra);
    assert_true(sim_pid > 0);
    write_config();
    char *argv[] = {(char *)BMSFLEET_BIN, "run", "-c", cfg_path, NULL};
    daemon_pid = proc_spawn(argv, out_path, err_path);
    assert_true(daemon_pid > 0);

    /* live: states, availability and history arrive centrally through the bridge */
    expect_in(sub1_path, "bmsfleet/p1/state ", 2);
    expect_in(sub1_path, "bmsfleet/p2/state ", 2);
    expect_in(sub1_path, "bmsfleet/bank/house/state ", 1);
    expect_in(sub1_path, "bmsfleet/p1/availability online", 1);
    expect_in(sub1_path, "bmsfleet/cabin/status online", 1);
    expect_in(sub1_path, "bmsfleet/p1/history ", 3);

    /* the link goes down: the central broker stops, the daemon goes on publishing */
    static unsigned char seen[MAX_SEQ];
    long min = 0, before_max = 0;
    broker_stop(&central);
    proc_stop(sub_pid); /* it cannot receive anything now; its session stays on the broker */
    sub_pid = 0;
    history_seqs(sub1_path, seen, &min, &before_max);
    char *site_text = proc_slurp(site_sub_path);
    int site_before = proc_count(site_text ? site_text : "", "/history ");
    free(site_text);
    sleep(DOWN_S);
    site_text = proc_slurp(site_sub_path);
    int site_during = proc_count(site_text ? site_text : "", "/history ") - site_before;
    free(site_text);
    if (site_during < 2 * (DOWN_S - 2))
        dump_and_fail("the daemon did not keep publishing to the site broker");
    long site_min = 0, down_max = 0;
    static unsigned char at_site[MAX_SEQ];
    history_seqs(site_sub_path, at_site, &site_min, &down_max);
    assert_true(down_max > before_max); /* samples taken while the link was down */

    /* the central broker comes back on the same port; the bridge reconnects by itself */
    assert_int_equal(broker_start(&central, central_dir, central_extra), 0);
    sub_pid = broker_subscribe_as(&central, "bmsfleet/#", "central-sub", sub2_path, sub_err);
    assert_true(sub_pid > 0);
    /* after the backlog, new live values */
    expect_in(sub2_path, "bmsfleet/p2/state ", 2);

    /* every seq from the first seen centrally to the last taken during the outage, and beyond */
    long deadline = proc_now_ms() + WAIT_MS, max = 0, first = 0;
    long missing = 0;
    for (;;) {
        memset(seen, 0, sizeof seen);
        first = 0;
        max = 0;
        history_seqs(sub1_path, seen, &first, &max);
        history_seqs(sub2_path, seen, &first, &max);
        missing = 0;
        for (long s = first; s <= max; s++)
            missing += !seen[s];
        if ((missing == 0 && max > down_max) || proc_now_ms() > deadline)
            break;
        usleep(200000);
    }
    if (missing != 0 || max <= down_max) {
        char what[256];
        snprintf(what, sizeof what,
                 "history at the centre: seq %ld..%ld, %ld missing; before the outage up to %ld, "
                 "during it up to %ld",
                 first, max, missing, before_max, down_max);
        dump_and_fail(what);
    }
    print_message("history at the centre: seq %ld..%ld, none missing; the outage took %ld..%ld\n",
                  first, max, before_max + 1, down_max);
    /* the outage's samples, which only the site broker's bridge queue held, are all there */
    for (long s = before_max + 1; s <= down_max; s++)
        assert_true(seen[s]);
    assert_true(down_max - before_max >= 2 * (DOWN_S - 2));
    assert_int_equal(proc_stop(daemon_pid), 0);
    daemon_pid = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bridge_outage),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
