/* test_daemon: `bmsfleet run` (the real binary) against real simulators over ptys.
 *
 * Assertions are on counts and values, never on wall-clock durations: the daemon runs until
 * it has produced enough readings (with a generous upper bound), then gets SIGTERM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <sqlite3.h>

#include "fixture.h"
#include "pack_rows.h"
#include "proc.h"
#include "report.h"
#include "s42.h"
#include "sim.h"

#define SEED "7"
#define WAIT_MS 30000

static char dir[256];
static char path_a[PROC_PATH_MAX], path_b[PROC_PATH_MAX], cfg_path[PROC_PATH_MAX],
    out_path[PROC_PATH_MAX], err_path[PROC_PATH_MAX], db_path[PROC_PATH_MAX];
static pid_t sims[4];
static pid_t daemon_pid;

static int setup(void **state)
{
    (void)state;
    const struct proc_file files[] = {
        {path_a, "bus-a"}, {path_b, "bus-b"}, {cfg_path, "config.yaml"}, {out_path, "out.jsonl"},
        {err_path, "err.log"}, {db_path, "history.db"}, {NULL, NULL}};
    return proc_test_dir(dir, sizeof dir, "daemon", files);
}

/* Stops whatever a test started, even when it failed half way. */
static int stop_all(void **state)
{
    (void)state;
    proc_stop_pids(&daemon_pid, 1);
    proc_stop_pids(sims, 4);
    proc_clear_dir(dir, 1);
    return 0;
}

static int teardown(void **state)
{
    stop_all(state);
    proc_clear_dir(dir, 0);
    return 0;
}

#define expect_in_log(path, needle, times) proc_expect_in_log(path, needle, times, WAIT_MS)

/* faults: up to two --fault SPECs, NULL-terminated, or NULL */
static pid_t start_sim_faults(int slot, const char *link, const char *proto, const char *addrs,
                              const char *const *faults)
{
    const char *f0 = faults ? faults[0] : NULL, *f1 = f0 ? faults[1] : NULL;
    const char *more[] = {f0 ? "--fault" : NULL, f0, f1 ? "--fault" : NULL, f1, NULL};
    pid_t pid = proc_start_frozen_sim(BMSFLEET_BIN, link, proto, addrs, SEED, more);
    assert_true(pid > 0);
    sims[slot] = pid;
    return pid;
}

static pid_t start_sim(int slot, const char *link, const char *proto, const char *addrs)
{
    return start_sim_faults(slot, link, proto, addrs, NULL);
}

/* Every configuration gets a history database in the test's directory. */
static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    if (strstr(text, "ports:") && !strstr(text, "storage:"))
        fprintf(f, "storage:\n  path: %s\n  commit_interval_s: 1\n", db_path);
    fclose(f);
}

/* A port block with packs <prefix>1..<prefix>4 at addresses 1-4. */
static void port_yaml(char *buf, size_t cap, const char *name, const char *dev,
                      const char *proto)
{
    snprintf(buf, cap,
             "  - name: %s\n"
             "    device: %s\n"
             "    protocol: %s\n"
             "    baud: 115200\n"
             "    timeout_ms: 300\n"
             "    gap_ms: 5\n"
             "    interval_s: 1\n"
             "    packs:\n"
             "      - { address: 0x01, id: %s1, bank: house }\n"
             "      - { address: 2, id: %s2, bank: house }\n"
             "      - { address: 3, id: %s3, bank: house }\n"
             "      - { address: 4, id: %s4, bank: house }\n",
             name, dev, proto, name, name, name, name);
}

static void write_config(const char *proto_a, const char *proto_b)
{
    char a[1024], b[1024], all[4096];
    port_yaml(a, sizeof a, "a", path_a, proto_a);
    port_yaml(b, sizeof b, "b", path_b, proto_b);
    snprintf(all, sizeof all,
             "node:\n  id: testnode\nlog:\n  level: info\nports:\n%s%s"
             "banks:\n  - { id: house, name: House bank }\n",
             a, proto_b ? b : "");
    write_file(cfg_path, all);
}

static void start_daemon(int use_config)
{
    char *with_cfg[] = {(char *)BMSFLEET_BIN, "run", "-c", cfg_path, "--stdout", NULL};
    char *env_mode[] = {(char *)BMSFLEET_BIN, "run", "--stdout", NULL};
    daemon_pid = proc_spawn(use_config ? with_cfg : env_mode, out_path, err_path);
    assert_true(daemon_pid > 0);
}

static int stop_daemon(void)
{
    int st = proc_stop(daemon_pid);
    daemon_pid = 0;
    return st;
}

/* Samples per pack id in the daemon's output; also checks values against the frozen model. */
struct counts {
    char id[8][8];
    int n[8];
    size_t k;
    int health_offline[8];
};

static int *slot(struct counts *c, const char *id, int **offline)
{
    for (size_t i = 0; i < c->k; i++) {
        if (strcmp(c->id[i], id) == 0) {
            *offline = &c->health_offline[i];
            return &c->n[i];
        }
    }
    assert_true(c->k < 8);
    snprintf(c->id[c->k], sizeof c->id[0], "%s", id);
    *offline = &c->health_offline[c->k];
    return &c->n[c->k++];
}

static int count_of(const struct counts *c, const char *id)
{
    for (size_t i = 0; i < c->k; i++) {
        if (strcmp(c->id[i], id) == 0)
            return c->n[i];
    }
    return 0;
}

static int offline_of(const struct counts *c, const char *id)
{
    for (size_t i = 0; i < c->k; i++) {
        if (strcmp(c->id[i], id) == 0)
            return c->health_offline[i];
    }
    return 0;
}

static void expected_json(const char *proto, uint8_t adr, cJSON **out)
{
    struct sample s;
    if (strcmp(proto, "modbus") == 0)
        fixture_modbus_sample(strtoull(SEED, NULL, 10), adr, &s);
    else
        fixture_wire_sample(proto, strtoull(SEED, NULL, 10), adr, &s);
    *out = report_sample_json(&s, proto, 0);
}

static void tally(struct counts *c, const char *proto_a, const char *proto_b)
{
    memset(c, 0, sizeof *c);
    char *text = proc_slurp(out_path);
    assert_non_null(text);
    char *save = NULL;
    double last_seq = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *o = cJSON_Parse(line);
        assert_non_null(o);
        char pack[sizeof ((struct counts *)0)->id[0]]; /* the ids here are short: "a1" */
        snprintf(pack, sizeof pack, "%s", cJSON_GetObjectItem(o, "pack")->valuestring);
        int *offline;
        int *n = slot(c, pack, &offline);
        double seq = cJSON_GetObjectItem(o, "seq")->valuedouble;
        assert_true(seq != last_seq);
        last_seq = seq;
        if (cJSON_GetObjectItem(o, "event")) {
            const cJSON *h = cJSON_GetObjectItem(o, "health");
            if (h && strcmp(h->valuestring, "offline") == 0)
                (*offline)++;
            cJSON_Delete(o);
            continue;
        }
        (*n)++;
        const char *proto = pack[0] == 'a' ? proto_a : proto_b;
        uint8_t adr = (uint8_t)(pack[1] - '0');
        assert_int_equal(cJSON_GetObjectItem(o, "address")->valueint, adr);
        assert_string_equal(cJSON_GetObjectItem(o, "bank")->valuestring, "house");
        assert_string_equal(cJSON_GetObjectItem(o, "port")->valuestring, pack[0] == 'a' ? "a" : "b");
        assert_true(cJSON_GetObjectItem(o, "ts")->valuedouble > 1.6e9);
        /* flags carried from the pack's last 0x44 (alarms_every, default 4): at most 3 polls
         * old; the frozen model's flags do not change, so they still equal the model's */
        const cJSON *age = cJSON_GetObjectItem(o, "alarms_age_polls");
        if (age)
            assert_in_range(age->valueint, 1, 3);
        const char *extra[] = {"ts", "pack", "bank", "port", "seq", "alarms_age_polls"};
        for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
            cJSON_DeleteItemFromObject(o, extra[i]);
        cJSON *want;
        expected_json(proto, adr, &want);
        if (!cJSON_Compare(o, want, 1)) {
            char *g = cJSON_PrintUnformatted(o), *w = cJSON_PrintUnformatted(want);
            print_error("pack %s\ngot  %s\nwant %s\n", pack, g, w);
            fail();
        }
        cJSON_Delete(want);
        cJSON_Delete(o);
    }
    free(text);
}

/* Two ports × 4 packs, two simulators of different families, one daemon. */
/* `bmsfleet top --once` on the daemon's history, until its output holds every needle (the
 * history lags the readings by a commit) or WAIT_MS passes; the last output stays in *r. */
static int top_until(struct proc_result *r, const char *const *needles)
{
    char *argv[] = {(char *)BMSFLEET_BIN, "top", "--db", db_path, "--once", NULL};
    long long deadline = proc_now_ms() + WAIT_MS;
    for (;;) {
        if (proc_run(argv, NULL, 10000, r) != 0)
            return -1;
        int all = r->status == 0;
        for (size_t i = 0; all && needles[i]; i++)
            all = strstr(r->out, needles[i]) != NULL;
        if (all)
            return 0;
        if (proc_now_ms() > deadline)
            return -1;
        struct timespec nap = {0, 200000000};
        nanosleep(&nap, NULL);
    }
}

static void test_two_ports(void **state)
{
    (void)state;
    start_sim(0, path_a, "daren", "1-4");
    start_sim(1, path_b, "pace", "1-4");
    write_config("daren", "pace");
    start_daemon(1);
    /* each pack's lines: its "online" event, its identity, then samples */
    assert_int_equal(proc_wait_for(out_path, "\"pack\":\"b4\"", 4, WAIT_MS), 0);
    assert_int_equal(proc_wait_for(out_path, "\"pack\":\"a4\"", 4, WAIT_MS), 0);
    /* the history says a daemon is writing and every pack is online */
    struct proc_result *top = calloc(1, sizeof *top);
    assert_non_null(top);
    if (top_until(top, (const char *const[]){"\ndaemon writing: last write ", "\nhouse ",
                                              " 8/8 ", NULL}) != 0)
        fail_msg("top while the daemon runs:\n%s%s", top->out, top->err);
    assert_int_equal(stop_daemon(), 0);
    /* its stop is recorded: the header says so at once */
    if (top_until(top, (const char *const[]){"\ndaemon stopped at ",
                                              " ago): no daemon has written since\n", NULL}) != 0)
        fail_msg("top after the daemon stopped:\n%s%s", top->out, top->err);
    free(top);
    struct counts c;
    tally(&c, "daren", "pace");
    const char *ids[] = {"a1", "a2", "a3", "a4", "b1", "b2", "b3", "b4"};
    for (size_t i = 0; i < 8; i++) {
        assert_true(count_of(&c, ids[i]) >= 2);
        assert_int_equal(offline_of(&c, ids[i]), 0);
    }
    char *err = proc_slurp(err_path);
    assert_non_null(strstr(err, "stopped"));
    assert_null(strstr(err, "communication lost"));
    free(err);
}

/* a2 refuses 0x44 (RTN 04), a3 ignores it: both are online and stored every poll with their
 * analog values, the flags unknown; each is logged once as alarm-less; a1 and a4 keep theirs. */
static void test_packs_without_alarms(void **state)
{
    (void)state;
    const char *const faults[] = {"no-alarms:2", "ignore-alarms:3", NULL};
    start_sim_faults(0, path_a, "pace", "1-4", faults);
    write_config("pace", NULL);
    start_daemon(1);
    expect_in_log(err_path, "pack a3 (address 3 on a) answers 0x42 but not 0x44", 1);
    /* a4's lines (the last of a round): "online", identity, then at least 6 samples */
    assert_int_equal(proc_wait_for(out_path, "\"pack\":\"a4\"", 8, WAIT_MS), 0);
    assert_int_equal(stop_daemon(), 0);

    int samples[5] = {0}, unsupported[5] = {0}, health[5] = {0};
    char *text = proc_slurp(out_path);
    assert_non_null(text);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *o = cJSON_Parse(line);
        assert_non_null(o);
        int k = cJSON_GetObjectItem(o, "pack")->valuestring[1] - '0';
        assert_true(k >= 1 && k <= 4);
        const cJSON *ev = cJSON_GetObjectItem(o, "event");
        if (ev && strcmp(ev->valuestring, "health") == 0) {
            health[k]++;
            assert_string_equal(cJSON_GetObjectItem(o, "health")->valuestring, "online");
        } else if (ev == NULL) {
            samples[k]++;
            struct sample want;
            fixture_wire_sample("pace", strtoull(SEED, NULL, 10), (uint8_t)k, &want);
            assert_int_equal(lround(cJSON_GetObjectItem(o, "voltage")->valuedouble * 1000),
                             want.voltage_mv);
            const cJSON *alarms = cJSON_GetObjectItem(o, "alarms");
            if (k == 2 || k == 3) {
                assert_true(cJSON_IsNull(alarms));
                assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "protection")));
                unsupported[k] += cJSON_IsFalse(cJSON_GetObjectItem(o, "alarms_supported"));
            } else {
                assert_true(cJSON_IsArray(alarms));
                assert_null(cJSON_GetObjectItem(o, "alarms_supported"));
            }
        }
        cJSON_Delete(o);
    }
    free(text);
    print_message("samples: %d %d %d %d\n", samples[1], samples[2], samples[3], samples[4]);
    for (int k = 1; k <= 4; k++) {
        assert_true(samples[k] >= 6);
        assert_int_equal(health[k], 1); /* online once, never stale or offline */
    }
    assert_int_equal(unsupported[2], samples[2]);     /* refused: known from the first poll */
    assert_int_equal(unsupported[3], samples[3] - 1); /* ignored: one silence can be noise */

    /* every poll in the history, with its values */
    for (int k = 1; k <= 4; k++) {
        char id[8];
        struct sample want;
        snprintf(id, sizeof id, "a%d", k);
        fixture_wire_sample("pace", strtoull(SEED, NULL, 10), (uint8_t)k, &want);
        struct pack_rows rows = pack_rows(db_path, id, want.voltage_mv);
        assert_int_equal(rows.n, samples[k]);
        assert_int_equal(rows.with_voltage, samples[k]);
        /* a2 and a3 never gave their flags: unknown (NULL), not "no alarm" */
        assert_int_equal(rows.flags_unknown, k == 2 || k == 3 ? samples[k] : 0);
    }

    char *err = proc_slurp(err_path);
    assert_int_equal(proc_count(err, "answers 0x42 but not 0x44"), 2);
    assert_int_equal(proc_count(err, "pack a2 (address 2 on a) answers 0x42 but not 0x44 (BMS "
                                     "answered RTN 04: command not supported (CID2 invalid)): "
                                     "alarms unavailable, asking again hourly"),
                     1);
    assert_int_equal(proc_count(err, "pack a3 (address 3 on a) answers 0x42 but not 0x44 (no "
                                     "answer within 300 ms): alarms unavailable, asking again "
                                     "hourly"),
                     1);
    assert_null(strstr(err, "communication lost"));
    assert_non_null(strstr(err, " 0 timeouts, 0 checksum errors, 0 malformed, 0 refused, 0 "
                                "foreign, 1 alarm (0x44) failures (alarms unsupported)"));
    assert_non_null(strstr(err, " 0 timeouts, 0 checksum errors, 0 malformed, 0 refused, 0 "
                                "foreign, 2 alarm (0x44) failures (alarms unsupported)"));
    free(err);
}

/* Pack b3 does not exist: it costs its port one timeout per backoff period, and the other
 * packs of that port are polled as often as the packs of the healthy port. */
static void dead_pack(const char *proto)
{
    start_sim(0, path_a, proto, "1-4");
    start_sim(1, path_b, proto, "1,2,4");
    write_config(proto, proto);
    start_daemon(1);
    /* 9 lines of a4 (its "online" and identity events): 7 samples of a4, as many of a1-a3 */
    assert_int_equal(proc_wait_for(out_path, "\"pack\":\"a4\"", 9, WAIT_MS), 0);
    assert_int_equal(stop_daemon(), 0);
    struct counts c;
    tally(&c, proto, proto);
    int least_a = count_of(&c, "a1");
    for (const char *const *id = (const char *const[]){"a2", "a3", "a4", NULL}; *id; id++)
        least_a = count_of(&c, *id) < least_a ? count_of(&c, *id) : least_a;
    print_message("samples: a %d %d %d %d, b %d %d %d %d\n", count_of(&c, "a1"),
                  count_of(&c, "a2"), count_of(&c, "a3"), count_of(&c, "a4"), count_of(&c, "b1"),
                  count_of(&c, "b2"), count_of(&c, "b3"), count_of(&c, "b4"));
    assert_true(least_a >= 7);
    assert_true(count_of(&c, "b1") >= least_a - 1);
    assert_true(count_of(&c, "b2") >= least_a - 1);
    assert_true(count_of(&c, "b4") >= least_a - 1);
    assert_int_equal(count_of(&c, "b3"), 0);
    assert_int_equal(offline_of(&c, "b3"), 1); /* one transition, however many polls failed */
    char *err = proc_slurp(err_path);
    assert_int_equal(proc_count(err, "pack b3 (address 3 on b): communication lost"), 1);
    assert_int_equal(proc_count(err, "communication lost"), 1);
    assert_non_null(strstr(err, "pack b3: offline, "));
    free(err);
}

static void test_dead_pack(void **state)
{
    (void)state;
    dead_pack("daren");
}

/* The same on a Modbus bus: a dead slave does not cost the others their polls. */
static void test_dead_modbus_slave(void **state)
{
    (void)state;
    dead_pack("modbus");
}

/* The adapter disappears (the simulator and its pty go away) and comes back: the port is
 * reopened and polling resumes by itself. */
static void test_unplug_replug(void **state)
{
    (void)state;
    start_sim(0, path_a, "daren", "1-2");
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "ports:\n  - name: a\n    device: %s\n    protocol: daren\n    baud: 115200\n"
             "    timeout_ms: 300\n    interval_s: 1\n    packs:\n"
             "      - { address: 1, id: a1 }\n      - { address: 2, id: a2 }\n",
             path_a);
    write_file(cfg_path, cfg);
    start_daemon(1);
    assert_int_equal(proc_wait_for(out_path, "\"pack\":\"a2\"", 2, WAIT_MS), 0);
    proc_stop(sims[0]); /* unplug */
    sims[0] = 0;
    expect_in_log(err_path, "communication lost", 2);
    char *before = proc_slurp(out_path);
    int n_before = proc_count(before, "\"address\":1,");
    free(before);
    start_sim(0, path_a, "daren", "1-2"); /* plug back in */
    expect_in_log(err_path, "is open again; polling resumes", 1);
    assert_int_equal(proc_wait_for(out_path, "\"address\":1,", n_before + 2, WAIT_MS), 0);
    assert_int_equal(stop_daemon(), 0);
    char *err = proc_slurp(err_path);
    assert_int_equal(proc_count(err, "pack a1 (address 1 on a): communication lost"), 1);
    assert_int_equal(proc_count(err, "pack a1 (address 1 on a): communication restored"), 1);
    assert_int_equal(proc_count(err, "pack a2 (address 2 on a): communication restored"), 1);
    free(err);
}

/* No configuration file: the replaced program's environment variables. */
static void test_env_mode(void **state)
{
    (void)state;
    start_sim(0, path_a, "daren", "2");
    setenv("BMS_PORT", path_a, 1);
    setenv("BMS_SLAVE_ID", "0x02", 1);
    setenv("READ_INTERVAL", "1", 1);
    setenv("DEVICE_ID", "cabin_bms", 1);
    setenv("BMSFLEET_DB", db_path, 1);
    start_daemon(0);
    unsetenv("BMSFLEET_DB");
    unsetenv("BMS_PORT");
    unsetenv("BMS_SLAVE_ID");
    unsetenv("READ_INTERVAL");
    unsetenv("DEVICE_ID");
    /* 9600 baud in this mode, as the replaced program: the simulator paces at 115200 but the
     * pty does not care about the termios speed, so the answers still arrive */
    assert_int_equal(proc_wait_for(out_path, "\"address\":2,", 2, WAIT_MS), 0);
    assert_int_equal(stop_daemon(), 0);
    char *out = proc_slurp(out_path);
    assert_non_null(strstr(out, "\"protocol\":\"daren\""));
    assert_null(strstr(out, "\"address\":1,"));
    free(out);
}

static void test_sigint_and_bad_config(void **state)
{
    (void)state;
    start_sim(0, path_a, "daren", "1");
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             "ports:\n  - name: a\n    device: %s\n    protocol: daren\n    baud: 115200\n"
             "    interval_s: 1\n    packs:\n      - { address: 1, id: a1 }\n",
             path_a);
    write_file(cfg_path, cfg);
    start_daemon(1);
    assert_int_equal(proc_wait_for(out_path, "\"pack\":\"a1\"", 1, WAIT_MS), 0);
    kill(daemon_pid, SIGINT);
    int st = proc_stop(daemon_pid); /* already exiting; proc_stop only reaps */
    daemon_pid = 0;
    assert_int_equal(st, 0);

    write_file(cfg_path, "ports:\n  - name: a\n    devise: /dev/ttyUSB0\n");
    struct proc_result *r = malloc(sizeof *r);
    char *argv[] = {(char *)BMSFLEET_BIN, "run", "-c", cfg_path, NULL};
    assert_int_equal(proc_run(argv, NULL, 10000, r), 0);
    assert_int_equal(r->status, 2);
    char want[400];
    snprintf(want, sizeof want, "%s:3:5: unknown key 'devise' in port; did you mean 'device'?",
             cfg_path);
    assert_non_null(strstr(r->err, want));
    free(r);
}

/* Four Daren packs at 9600 baud need about 1.07 s per round: an interval of 1 s cannot be
 * met, and the daemon says so once, with what it can do. */
static void test_interval_too_short(void **state)
{
    (void)state;
    const char *extra[] = {"--protocol", "daren", "--addresses", "1-4", "--seed", SEED,
                           "--time-scale", "0", "--baud", "9600", "--turnaround", "20", NULL};
    unlink(path_a);
    sims[0] = proc_start_sim(BMSFLEET_BIN, path_a, extra);
    assert_true(sims[0] > 0);
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "ports:\n  - name: a\n    device: %s\n    baud: 9600\n    gap_ms: 0\n"
             "    interval_s: 1\n    packs:\n      - { address: 1, id: a1 }\n"
             "      - { address: 2, id: a2 }\n      - { address: 3, id: a3 }\n"
             "      - { address: 4, id: a4 }\n",
             path_a);
    write_file(cfg_path, cfg);
    start_daemon(1);
    expect_in_log(err_path, "interval_s 1 cannot be met, achievable about 2 s", 1);
    assert_int_equal(proc_wait_for(out_path, "\"pack\":\"a4\"", 4, WAIT_MS), 0);
    assert_int_equal(stop_daemon(), 0);
    char *err = proc_slurp(err_path);
    assert_int_equal(proc_count(err, "cannot be met"), 1); /* once, not every round */
    assert_non_null(strstr(err, "port a: 4 pack(s) take 1."));
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_two_ports, stop_all),
        cmocka_unit_test_teardown(test_packs_without_alarms, stop_all),
        cmocka_unit_test_teardown(test_dead_pack, stop_all),
        cmocka_unit_test_teardown(test_dead_modbus_slave, stop_all),
        cmocka_unit_test_teardown(test_unplug_replug, stop_all),
        cmocka_unit_test_teardown(test_env_mode, stop_all),
        cmocka_unit_test_teardown(test_sigint_and_bad_config, stop_all),
        cmocka_unit_test_teardown(test_interval_too_short, stop_all),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
