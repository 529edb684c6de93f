/* test_wiring: `bmsfleet run` (the real binary) on buses as they are wired in the field (issue
 * 17): through a serial server (socat between a TCP port and the simulator's pty) with the
 * server going away and coming back (the reconnect, measured), and beside gateways that fail (one
 * that accepts and never answers, one that drops each connection in the middle of a frame) while
 * a good port keeps its cadence; and in listen mode beside the simulator as the bus master
 * (Service 42 and Modbus RTU): every answer it exchanged is stored, nothing is written to the
 * line, and the packs go offline once the master stops; and through the master pack of a
 * chain (poll: via_master): every pack from one all-packs answer, or relayed one by one when
 * the master refuses the all-packs request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <sqlite3.h>

#include <pthread.h>

#include "fixture.h"
#include "mbsim.h"
#include "net.h"
#include "pack_rows.h"
#include "proc.h"
#include "s42.h"
#include "sim.h"

#define SEED    "7"
#define WAIT_MS 30000

static char dir[256];
static char path_a[300], cfg_path[300], out_path[300], err_path[300], db_path[300];
static pid_t sim_pid, socat_pid, daemon_pid;

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/bmsfleet-test-wiring-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path_a, sizeof path_a, "%s/bus-a", dir);
    snprintf(cfg_path, sizeof cfg_path, "%s/config.yaml", dir);
    snprintf(out_path, sizeof out_path, "%s/out.jsonl", dir);
    snprintf(err_path, sizeof err_path, "%s/err.log", dir);
    snprintf(db_path, sizeof db_path, "%s/history.db", dir);
    return 0;
}

static int stop_all(void **state)
{
    (void)state;
    if (daemon_pid > 0)
        proc_stop(daemon_pid);
    net_stop(socat_pid);
    if (sim_pid > 0)
        proc_stop(sim_pid);
    daemon_pid = socat_pid = sim_pid = 0;
    const char *files[] = {path_a, cfg_path, out_path, err_path};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        unlink(files[i]);
    proc_unlink_db(db_path);
    return 0;
}

static int teardown(void **state)
{
    stop_all(state);
    rmdir(dir);
    return 0;
}

#define expect_in_log(path, needle, times) proc_expect_in_log(path, needle, times, WAIT_MS)

static void start_sim(const char *proto, const char *addrs)
{
    const char *extra[] = {"--protocol", proto, "--addresses", addrs, "--seed", SEED,
                           "--time-scale", "0", "--baud", "115200", "--turnaround", "2", NULL};
    unlink(path_a);
    sim_pid = proc_start_sim(BMSFLEET_BIN, path_a, extra);
    assert_true(sim_pid > 0);
}

static void write_config(const char *ports)
{
    FILE *f = fopen(cfg_path, "w");
    assert_non_null(f);
    fprintf(f,
            "node:\n  id: wiring\nlog:\n  level: info\nports:\n%s"
            "storage:\n  path: %s\n  commit_interval_s: 1\n",
            ports, db_path);
    fclose(f);
}

static void start_daemon(void)
{
    char *argv[] = {(char *)BMSFLEET_BIN, "run", "-c", cfg_path, "--stdout", NULL};
    daemon_pid = proc_spawn(argv, out_path, err_path);
    assert_true(daemon_pid > 0);
}

/* The samples of the pack in the daemon's output (its lines without an "event"). */
static int samples_of(const char *pack)
{
    char needle[64];
    snprintf(needle, sizeof needle, "\"pack\":\"%s\"", pack);
    char *t = proc_slurp(out_path);
    int n = 0;
    for (char *line = t ? strtok(t, "\n") : NULL; line; line = strtok(NULL, "\n"))
        n += strstr(line, needle) != NULL && strstr(line, "\"event\"") == NULL;
    free(t);
    return n;
}

static int wait_samples(const char *pack, int n, int timeout_ms)
{
    long long end = net_now_ms() + timeout_ms;
    while (samples_of(pack) < n) {
        if (net_now_ms() > end)
            return -ETIMEDOUT;
        usleep(20000);
    }
    return 0;
}

/* ---------------- a serial server that goes away and comes back ---------------- */

static void test_tcp_reconnect(void **state)
{
    (void)state;
    start_sim("pace", "1-2");
    int port = net_free_port();
    socat_pid = net_start_socat(port, path_a, 0); /* one connection, as many servers take */
    char ports[1024];
    snprintf(ports, sizeof ports,
             "  - name: net\n"
             "    device: tcp://127.0.0.1:%d\n"
             "    protocol: pace\n"
             "    baud: 115200\n"
             "    timeout_ms: 300\n"
             "    gap_ms: 5\n"
             "    interval_s: 1\n"
             "    connect_timeout_ms: 500\n"
             "    packs:\n"
             "      - { address: 1, id: n1 }\n"
             "      - { address: 2, id: n2 }\n",
             port);
    write_config(ports);
    start_daemon();
    expect_in_log(err_path, "tcp://127.0.0.1", 1);
    assert_int_equal(wait_samples("n2", 3, WAIT_MS), 0);

    /* the server ends (its connection with it) */
    long long t_kill = net_now_ms();
    net_stop(socat_pid);
    socat_pid = 0;
    expect_in_log(err_path, "the serial server closed the connection; reopening", 1);
    long long t_seen = net_now_ms();
    usleep(1500000); /* down for 1.5 s: at least one refused reconnect */
    int before = samples_of("n1");
    long long t_back = net_now_ms();
    socat_pid = net_start_socat(port, path_a, 0);
    expect_in_log(err_path, "is open again; polling resumes", 1);
    long long t_open = net_now_ms();
    assert_int_equal(wait_samples("n1", before + 1, WAIT_MS), 0);
    long long t_sample = net_now_ms();
    print_message("serial server: drop seen after %lld ms; back up -> reconnected in %lld ms, "
                  "first sample after %lld ms\n",
                  t_seen - t_kill, t_open - t_back, t_sample - t_back);
    /* the backoff after one failed reconnect is 2 s: never longer than that, plus slack */
    assert_true(t_open - t_back < 4000);
    assert_int_equal(wait_samples("n2", samples_of("n2") + 2, WAIT_MS), 0);
    assert_int_equal(proc_stop(daemon_pid), 0);
    daemon_pid = 0;

    /* one drop, told once: the refused reconnects in between are not logged one by one */
    char *err = proc_slurp(err_path);
    int drops = proc_count(err, "; reopening");
    free(err);
    assert_int_equal(drops, 1);
    for (int k = 1; k <= 2; k++) {
        char id[4];
        snprintf(id, sizeof id, "n%d", k);
        struct sample want;
        fixture_wire_sample("pace", 7, (uint8_t)k, &want);
        struct pack_rows rows = pack_rows(db_path, id, want.voltage_mv);
        int n = rows.n, with_voltage = rows.with_voltage;
        assert_true(n >= 5);
        assert_int_equal(n, samples_of(id)); /* every sample printed is in the history */
        assert_int_equal(with_voltage, n);
    }
}

/* ---------------- gateways that fail, beside a good port ---------------- */

static void test_dead_gateways(void **state)
{
    (void)state;
    start_sim("daren", "1");
    struct net_fake silent, dropper;
    net_fake_start(&silent, NULL, 0);
    static const char half[] = "~22014A00A0C6000110";
    net_fake_start(&dropper, half, sizeof half - 1);
    char ports[2048];
    snprintf(ports, sizeof ports,
             "  - name: good\n"
             "    device: %s\n"
             "    baud: 115200\n"
             "    timeout_ms: 300\n"
             "    gap_ms: 5\n"
             "    interval_s: 1\n"
             "    packs: [{ address: 1, id: g1 }]\n"
             "  - name: silent\n"
             "    device: tcp://127.0.0.1:%d\n"
             "    baud: 115200\n"
             "    timeout_ms: 300\n"
             "    interval_s: 1\n"
             "    packs: [{ address: 1, id: s1 }, { address: 2, id: s2 }]\n"
             "  - name: dropper\n"
             "    device: tcp://127.0.0.1:%d\n"
             "    baud: 115200\n"
             "    timeout_ms: 300\n"
             "    interval_s: 1\n"
             "    packs: [{ address: 1, id: d1 }]\n",
             path_a, silent.port, dropper.port);
    write_config(ports);
    long long t0 = net_now_ms();
    start_daemon();
    expect_in_log(err_path, "pack s1 (address 1 on silent): communication lost", 1);
    expect_in_log(err_path, "no pack answered through it", 1);
    expect_in_log(err_path, "port dropper (tcp://127.0.0.1", 2);
    long long took = net_now_ms() - t0;
    assert_int_equal(proc_stop(daemon_pid), 0);
    daemon_pid = 0;
    net_fake_stop(&silent);
    net_fake_stop(&dropper);
    assert_true(silent.accepted >= 2); /* connected again after the silence */
    /* the good port polled at its cadence all along: about one sample a second */
    int good = samples_of("g1");
    print_message("good port: %d samples in %lld ms beside the dead gateways; dropper "
                  "accepted %d connections, silent %d\n",
                  good, took, dropper.accepted, silent.accepted);
    assert_true(good >= (int)(took / 1000) - 2);
    char *err = proc_slurp(err_path);
    assert_non_null(strstr(err, "the serial server closed the connection"));
    assert_null(strstr(err, "pack g1 (address 1 on good): communication lost"));
    /* the dropper backs off: its reconnects grow apart (1, 2, 4 s ...), not one a second */
    assert_true(dropper.accepted <= 2 + (int)(took / 2000));
    free(err);
}

/* ---------------- listen mode: the simulator is the master ---------------- */

struct master {
    struct sim *sim;
    struct mbsim *mb;
    pthread_t thread;
    volatile int stop;
    int rc;
};

static void *run_master(void *arg)
{
    struct master *m = arg;
    m->rc = m->sim ? sim_run(m->sim, &m->stop) : mbsim_run(m->mb, &m->stop);
    return NULL;
}

static uint64_t answers_of(const struct master *m, uint8_t adr)
{
    return m->sim ? sim_valued_answers(m->sim, adr, S42_CID2_ANALOG)
                  : mbsim_valued_answers(m->mb, adr);
}

#define ROUNDS 6

/* The simulator polls packs 1..3 for ROUNDS rounds; the daemon listens for packs 1 and 2 (3 is
 * heard, not configured). */
static void listen_to_master(const char *proto, int over_tcp)
{
    int modbus = strcmp(proto, "modbus") == 0;
    struct master m;
    memset(&m, 0, sizeof m);
    struct sim_opts o;
    sim_opts_default(&o);
    o.variant = modbus ? NULL : s42_variant_find(proto);
    o.naddresses = (size_t)sim_parse_addresses("1-3", o.addresses, SIM_MAX_PACKS);
    o.seed = 7;
    o.baud = 115200;
    o.turnaround_ms = 5;
    o.time_scale = 0;
    o.master_ms = 400;
    o.master_rounds = ROUNDS;
    if (modbus)
        assert_int_equal(mbsim_new(&o, &m.mb), 0);
    else
        assert_int_equal(sim_new(&o, &m.sim), 0);
    const char *pty = m.sim ? sim_slave_path(m.sim) : mbsim_slave_path(m.mb);
    char dev[300];
    snprintf(dev, sizeof dev, "%s", pty);
    if (over_tcp) { /* the line through a serial server in transparent mode */
        int port = net_free_port();
        socat_pid = net_start_socat(port, pty, 0);
        snprintf(dev, sizeof dev, "tcp://127.0.0.1:%d", port);
    }
    char ports[1024];
    snprintf(ports, sizeof ports,
             "  - name: heard\n"
             "    device: %s\n"
             "    protocol: %s\n"
             "    mode: listen\n"
             "    baud: 115200\n"
             "    timeout_ms: 300\n"
             "    interval_s: 1\n"
             "    packs:\n"
             "      - { address: 1, id: h1 }\n"
             "      - { address: 2, id: h2 }\n",
             dev, proto);
    write_config(ports);
    start_daemon();
    expect_in_log(err_path, "pack(s) heard, expected every 1 s", 1);
    assert_int_equal(pthread_create(&m.thread, NULL, run_master, &m), 0);
    long long end = net_now_ms() + WAIT_MS;
    while (answers_of(&m, 3) < ROUNDS && net_now_ms() < end)
        usleep(20000);
    assert_int_equal(answers_of(&m, 3), ROUNDS);
    expect_in_log(err_path, "another master is polling (first heard: address 1", 1);
    expect_in_log(err_path, "the master asks address 3, which is not in the configuration", 1);
    /* the master stopped: silence makes the packs stale, then offline */
    expect_in_log(err_path, "pack h2 (address 2 on heard): communication lost: not heard on heard", 1);
    assert_int_equal(proc_stop(daemon_pid), 0);
    daemon_pid = 0;
    m.stop = 1;
    assert_int_equal(pthread_join(m.thread, NULL), 0);
    assert_int_equal(m.rc, 0);

    /* nothing came from the daemon's end of the line: its log says so too */
    uint64_t foreign = m.sim ? sim_foreign_bytes(m.sim) : mbsim_foreign_bytes(m.mb);
    assert_int_equal(foreign, 0);
    char *err = proc_slurp(err_path);
    assert_non_null(strstr(err, "; wrote 0 bytes"));
    /* every request had its answer, every frame was read */
    assert_non_null(strstr(err, " 0 unanswered, 0 refused, 0 damaged, 0 foreign, 0 unmatched, "
                                "0 bytes dropped; wrote 0 bytes"));
    free(err);
    for (uint8_t k = 1; k <= 2; k++) {
        char id[4];
        snprintf(id, sizeof id, "h%u", k);
        struct sample want;
        if (modbus)
            fixture_modbus_sample(7, k, &want);
        else
            fixture_wire_sample(proto, 7, k, &want);
        struct pack_rows rows = pack_rows(db_path, id, want.voltage_mv);
        int n = rows.n, with_voltage = rows.with_voltage;
        print_message("%s listen%s: %s: %llu answers exchanged, %d stored, %d printed\n", proto,
                      over_tcp ? " over tcp" : "", id,
                      (unsigned long long)answers_of(&m, k), n, samples_of(id));
        assert_int_equal((uint64_t)n, answers_of(&m, k)); /* every answer it exchanged */
        assert_int_equal(with_voltage, n);
        assert_int_equal(samples_of(id), n);
        if (!modbus && s42_has_command(o.variant, S42_CID2_ALARM) == 2)
            assert_int_equal(rows.alarms_unknown, 0); /* each 0x42 got its 0x44 merged */
    }
    char *out = proc_slurp(out_path);
    assert_null(strstr(out, "\"address\":3")); /* heard, not stored */
    free(out);
    if (m.sim)
        sim_free(m.sim);
    else
        mbsim_free(m.mb);
}

static void test_listen_s42(void **state)
{
    (void)state;
    listen_to_master("pace", 0);
}

static void test_listen_over_tcp(void **state)
{
    (void)state;
    listen_to_master("seplos", 1);
}

static void test_listen_modbus(void **state)
{
    (void)state;
    listen_to_master("modbus", 0);
}

/* ---------------- through the master pack ---------------- */

/* A chain of the packs at list behind the master at its first address (relay: SIM_RELAY_* or 1),
 * all polled via_master. A list with a gap (1,2,4) cannot be read from the all-packs answer,
 * whose blocks are numbered from the master: each pack is then relayed in turn. */
static void via_master(int relay, const char *list)
{
    struct master m;
    memset(&m, 0, sizeof m);
    struct sim_opts o;
    sim_opts_default(&o);
    o.variant = s42_variant_find("pace");
    int np = sim_parse_addresses(list, o.addresses, SIM_MAX_PACKS);
    assert_true(np > 0);
    o.naddresses = (size_t)np;
    o.seed = 7;
    o.baud = 115200;
    o.turnaround_ms = 2;
    o.time_scale = 0;
    o.relay = relay;
    assert_int_equal(sim_new(&o, &m.sim), 0);
    assert_int_equal(pthread_create(&m.thread, NULL, run_master, &m), 0);
    char ports[1024];
    int len = snprintf(ports, sizeof ports,
                       "  - name: chain\n"
                       "    device: %s\n"
                       "    protocol: pace\n"
                       "    poll: via_master\n"
                       "    baud: 115200\n"
                       "    timeout_ms: 300\n"
                       "    gap_ms: 5\n"
                       "    interval_s: 1\n"
                       "    packs:\n",
                       sim_slave_path(m.sim));
    for (int i = 0; i < np; i++)
        len += snprintf(ports + len, sizeof ports - (size_t)len,
                        "      - { address: %u, id: m%u }\n", o.addresses[i], o.addresses[i]);
    assert_true((size_t)len < sizeof ports);
    write_config(ports);
    start_daemon();
    char last[8];
    snprintf(last, sizeof last, "m%u", o.addresses[np - 1]);
    assert_int_equal(wait_samples(last, 4, WAIT_MS), 0);
    assert_int_equal(proc_stop(daemon_pid), 0);
    daemon_pid = 0;
    m.stop = 1;
    assert_int_equal(pthread_join(m.thread, NULL), 0);
    int gapped = o.addresses[np - 1] - o.addresses[0] + 1 != np;
    char *err = proc_slurp(err_path);
    assert_int_equal(proc_count(err, "does not answer the all-packs request"),
                     relay == SIM_RELAY_NO_ALL);
    assert_int_equal(proc_count(err, "not at consecutive addresses from the master"), gapped);
    assert_int_equal(proc_count(err, "none for address"), 0);
    assert_int_equal(proc_count(err, "communication lost"), 0);
    assert_non_null(strstr(err, "pack m1 (address 1 on chain): serial SIM7-1"));
    assert_null(strstr(err, "pack m2 (address 2 on chain): serial")); /* not relayed */
    free(err);
    for (int i = 0; i < np; i++) {
        uint8_t k = o.addresses[i];
        char id[8];
        snprintf(id, sizeof id, "m%u", k);
        struct sample want;
        fixture_wire_sample("pace", 7, k, &want);
        struct pack_rows rows = pack_rows(db_path, id, want.voltage_mv);
        int n = rows.n, with_voltage = rows.with_voltage;
        assert_true(n >= 4);
        assert_int_equal(with_voltage, n); /* each pack's own values, never another's */
        assert_int_equal(rows.alarms_unknown, 0); /* each pack's 0x44 through the master */
        /* the 0x42 values came from the all-packs answer, or relayed: never asked directly */
        assert_int_equal(sim_valued_answers(m.sim, k, S42_CID2_ANALOG), (uint64_t)n);
    }
    sim_free(m.sim);
}

static void test_via_master(void **state)
{
    (void)state;
    via_master(1, "1-4");
}

static void test_via_master_fallback(void **state)
{
    (void)state;
    via_master(SIM_RELAY_NO_ALL, "1-4");
}

static void test_via_master_gap(void **state)
{
    (void)state;
    via_master(1, "1,2,4");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_tcp_reconnect, stop_all),
        cmocka_unit_test_teardown(test_dead_gateways, stop_all),
        cmocka_unit_test_teardown(test_listen_s42, stop_all),
        cmocka_unit_test_teardown(test_listen_modbus, stop_all),
        cmocka_unit_test_teardown(test_listen_over_tcp, stop_all),
        cmocka_unit_test_teardown(test_via_master, stop_all),
        cmocka_unit_test_teardown(test_via_master_fallback, stop_all),
        cmocka_unit_test_teardown(test_via_master_gap, stop_all),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, setup, teardown);
}
