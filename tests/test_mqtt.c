/* test_mqtt: `bmsfleet run` publishing to a real mosquitto on a free loopback port, with the
 * real simulator over a pty: discovery, states, availability, the replaced program's topics,
 * Home Assistant's birth message, the offline backlog replayed exactly once across a daemon
 * restart, wrong credentials recovered from, and TLS with a password against a CA made here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "broker.h"
#include "fixture.h"
#include "proc.h"
#include "report.h"

#define SEED "7"
#define WAIT_MS 45000

static char dir[256], bus[PROC_PATH_MAX], cfg_path[PROC_PATH_MAX], out_path[PROC_PATH_MAX],
    err_path[PROC_PATH_MAX], db_path[PROC_PATH_MAX];
static char sub_path[PROC_PATH_MAX], sub_err[PROC_PATH_MAX];
static pid_t sim_pid, daemon_pid, sub_pid;
static struct broker br;

static int setup(void **state)
{
    (void)state;
    const struct proc_file files[] = {
        {bus, "bus"}, {cfg_path, "config.yaml"}, {out_path, "out.jsonl"}, {err_path, "err.log"},
        {db_path, "h.db"}, {sub_path, "sub.txt"}, {sub_err, "sub.err"}, {NULL, NULL}};
    return proc_test_dir(dir, sizeof dir, "mqtt", files);
}

static int stop_all(void **state)
{
    (void)state;
    proc_stop_each((pid_t *[]){&daemon_pid, &sub_pid, &sim_pid, NULL});
    broker_stop(&br);
    br.port = 0;
    proc_clear_dir(dir, 1);
    return 0;
}

static int teardown(void **state)
{
    stop_all(state);
    rmdir(dir);
    return 0;
}

static void start_sim(const char *addrs)
{
    const char *extra[] = {"--protocol", "daren", "--addresses", addrs, "--seed", SEED,
                           "--time-scale", "0", "--baud", "115200", "--turnaround", "2", NULL};
    unlink(bus);
    sim_pid = proc_start_sim(BMSFLEET_BIN, bus, extra);
    assert_true(sim_pid > 0);
}

static void subscribe(const char *topic)
{
    sub_pid = broker_subscribe(&br, topic, sub_path, sub_err);
    assert_true(sub_pid > 0);
    /* subscribed once the broker has seen the client */
    assert_int_equal(proc_wait_for(br.log, "New client connected", 1, WAIT_MS), 0);
}

/* A configuration with two Daren packs, history, and MQTT at the test broker. */
static void write_config(const char *mqtt_extra)
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
            "mqtt:\n  host: 127.0.0.1\n  port: %d\n%s",
            bus, db_path, br.port, mqtt_extra ? mqtt_extra : "");
    fclose(f);
}

static void start_daemon(void)
{
    char *argv[] = {(char *)BMSFLEET_BIN, "run", "-c", cfg_path, NULL};
    daemon_pid = proc_spawn(argv, out_path, err_path);
    assert_true(daemon_pid > 0);
}

static void expect_in(const char *path, const char *needle, int times)
{
    if (proc_wait_for(path, needle, times, WAIT_MS) == 0)
        return;
    char *t = proc_slurp(path);
    char *e = proc_slurp(err_path);
    print_error("expected %d x '%s' in %s:\n%.4000s\n--- daemon log:\n%.4000s\n", times, needle,
                path, t ? t : "(missing)", e ? e : "");
    free(t);
    free(e);
    fail();
}

/* The payload of the last message on exactly this topic (mosquitto_sub -v: "topic payload"). */
static char *last_payload(const char *topic)
{
    char *text = proc_slurp(sub_path);
    assert_non_null(text);
    char *found = NULL, *save = NULL;
    size_t tl = strlen(topic);
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, topic, tl) == 0 && (line[tl] == ' ' || line[tl] == '\0')) {
            free(found);
            found = strdup(line[tl] ? line + tl + 1 : "");
        }
    }
    free(text);
    return found;
}

static void test_discovery_state_availability(void **state)
{
    (void)state;
    assert_int_equal(broker_start(&br, dir, NULL), 0);
    start_sim("1-2");
    subscribe("#");
    write_config(NULL);
    start_daemon();
    expect_in(sub_path, "bmsfleet/p2/state ", 2);
    expect_in(sub_path, "bmsfleet/bank/house/state ", 2);
    assert_int_equal(proc_stop(daemon_pid), 0);
    daemon_pid = 0;
    expect_in(sub_path, "bmsfleet/cabin/status offline", 1);

    char *text = proc_slurp(sub_path);
    assert_non_null(strstr(text, "bmsfleet/cabin/status online"));
    assert_non_null(strstr(text, "bmsfleet/p1/availability online"));
    assert_non_null(strstr(text, "bmsfleet/p2/availability online"));
    free(text);

    /* discovery: a sensor per metric, cells disabled by default, the bank device */
    char *cfgv = last_payload("homeassistant/sensor/bmsfleet_cabin_p1_voltage/config");
    assert_non_null(cfgv);
    cJSON *o = cJSON_Parse(cfgv);
    assert_non_null(o);
    assert_string_equal(cJSON_GetObjectItem(o, "state_topic")->valuestring, "bmsfleet/p1/state");
    assert_string_equal(cJSON_GetObjectItem(o, "device_class")->valuestring, "voltage");
    assert_string_equal(cJSON_GetObjectItem(o, "unit_of_measurement")->valuestring, "V");
    cJSON_Delete(o);
    free(cfgv);
    char *cell = last_payload("homeassistant/sensor/bmsfleet_cabin_p1_cell_16/config");
    assert_non_null(cell);
    assert_non_null(strstr(cell, "\"enabled_by_default\":false"));
    free(cell);
    char *bank = last_payload("homeassistant/sensor/bmsfleet_cabin_bank_house_soc/config");
    if (bank == NULL) {
        char *t = proc_slurp(sub_path);
        print_error("no bank discovery in:\n%s\n", t);
        free(t);
    }
    assert_non_null(bank);
    free(bank);

    /* the state is the frozen simulator's values, as `read --json` shows them */
    char *st = last_payload("bmsfleet/p1/state");
    cJSON *got = cJSON_Parse(st);
    assert_non_null(got);
    struct sample s;
    fixture_wire_sample("daren", strtoull(SEED, NULL, 10), 1, &s);
    cJSON *want = report_sample_json(&s, "daren", 0);
    for (cJSON *it = want->child; it; it = it->next) {
        cJSON *g = cJSON_GetObjectItem(got, it->string);
        if (g == NULL || !cJSON_Compare(g, it, 1))
            fail_msg("state key '%s' differs", it->string);
    }
    assert_non_null(cJSON_GetObjectItem(got, "last_seen"));
    cJSON_Delete(want);
    cJSON_Delete(got);
    free(st);
    char *bs = last_payload("bmsfleet/bank/house/state");
    assert_non_null(strstr(bs, "\"packs_online\":\"2/2\""));
    free(bs);
}

/* The replaced program's environment: its 11 topics, plain numbers, byte for byte. */
static void test_compat_topics(void **state)
{
    (void)state;
    assert_int_equal(broker_start(&br, dir, NULL), 0);
    start_sim("1");
    subscribe("#");
    char port[16];
    snprintf(port, sizeof port, "%d", br.port);
    setenv("BMS_PORT", bus, 1);
    setenv("BMS_SLAVE_ID", "1", 1);
    setenv("READ_INTERVAL", "1", 1);
    setenv("MQTT_HOST", "127.0.0.1", 1);
    setenv("MQTT_PORT", port, 1);
    setenv("DEVICE_ID", "daren_bms", 1);
    setenv("BMSFLEET_DB", db_path, 1);
    char *argv[] = {(char *)BMSFLEET_BIN, "run", NULL};
    daemon_pid = proc_spawn(argv, out_path, err_path);
    const char *vars[] = {"BMS_PORT", "BMS_SLAVE_ID", "READ_INTERVAL", "MQTT_HOST",
                          "MQTT_PORT", "DEVICE_ID", "BMSFLEET_DB"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    expect_in(sub_path, "bms/daren_bms/cell_voltage_diff ", 2);
    struct sample s;
    fixture_wire_sample("daren", strtoull(SEED, NULL, 10), 1, &s);
    char want[11][32];
    snprintf(want[0], 32, "%.1f", s.soc_cpct / 100.0);
    snprintf(want[1], 32, "%.2f", s.voltage_mv / 1000.0);
    snprintf(want[2], 32, "%.2f", s.current_ma / 1000.0);
    snprintf(want[3], 32, "%.2f", s.remaining_mah / 1000.0);
    snprintf(want[4], 32, "%.2f", s.full_mah / 1000.0);
    snprintf(want[5], 32, "%d", s.cycles);
    snprintf(want[6], 32, "%.1f", sample_temp(&s, SAMPLE_TEMP_AMBIENT) / 10.0);
    snprintf(want[7], 32, "%.1f", sample_temp(&s, SAMPLE_TEMP_MOS) / 10.0);
    snprintf(want[8], 32, "%.3f", s.cell_min_mv / 1000.0);
    snprintf(want[9], 32, "%.3f", s.cell_max_mv / 1000.0);
    snprintf(want[10], 32, "%.3f", s.cell_diff_mv / 1000.0);
    const char *keys[] = {"soc", "pack_voltage", "pack_current", "remaining_capacity",
                          "full_capacity", "cycle_count", "ambient_temp", "mos_temp",
                          "min_cell_voltage", "max_cell_voltage", "cell_voltage_diff"};
    for (size_t i = 0; i < 11; i++) {
        char topic[128];
        snprintf(topic, sizeof topic, "bms/daren_bms/%s", keys[i]);
        char *p = last_payload(topic);
        assert_non_null(p);
        assert_string_equal(p, want[i]);
        free(p);
        snprintf(topic, sizeof topic, "homeassistant/sensor/daren_bms/%s/config", keys[i]);
        char *c = last_payload(topic);
        assert_non_null(c);
        char st[128];
        snprintf(st, sizeof st, "\"state_topic\":\"bms/daren_bms/%s\"", keys[i]);
        assert_non_null(strstr(c, st));
        free(c);
    }
}

/* Home Assistant restarts and says so: every discovery config is sent again. */
static void test_ha_birth(void **state)
{
    (void)state;
    assert_int_equal(broker_start(&br, dir, NULL), 0);
    start_sim("1-2");
    subscribe("homeassistant/sensor/+/config");
    write_config(NULL);
    start_daemon();
    expect_in(sub_path, "bmsfleet_cabin_p1_voltage/config", 1);
    usleep(1500000); /* let the first-sample rediscovery (cell entities) settle */
    char *before = proc_slurp(sub_path);
    int n = proc_count(before, "bmsfleet_cabin_p2_soc/config");
    free(before);
    char port[16];
    snprintf(port, sizeof port, "%d", br.port);
    char *pub[] = {(char *)"/usr/bin/mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-t",
                   "homeassistant/status", "-m", "online", NULL};
    struct proc_result *r = malloc(sizeof *r);
    assert_int_equal(proc_run(pub, NULL, 10000, r), 0);
    assert_int_equal(r->status, 0);
    free(r);
    expect_in(sub_path, "bmsfleet_cabin_p2_soc/config", n + 1);
    expect_in(err_path, "Home Assistant is online: sending discovery again", 1);
}

/* A pack removed from the configuration: its retained discovery configs are emptied. */
static void test_removed_pack_cleared(void **state)
{
    (void)state;
    assert_int_equal(broker_start(&br, dir, NULL), 0);
    start_sim("1-2");
    write_config(NULL);
    start_daemon();
    expect_in(err_path, "pack p2 (address 2 on a): online", 1);
    usleep(2500000); /* p2's first samples are committed: the history knows it */
    assert_int_equal(proc_stop(daemon_pid), 0);
    /* the same site without p2 */
    FILE *f = fopen(cfg_path, "w");
    assert_non_null(f);
    fprintf(f,
            "node: { id: cabin }\n"
            "ports:\n  - name: a\n    device: %s\n    baud: 115200\n    interval_s: 1\n"
            "    packs:\n      - { address: 1, id: p1, bank: house }\n"
            "banks:\n  - { id: house, name: House }\n"
            "storage:\n  path: %s\n  commit_interval_s: 1\n"
            "mqtt:\n  host: 127.0.0.1\n  port: %d\n",
            bus, db_path, br.port);
    fclose(f);
    subscribe("homeassistant/+/+/config");
    start_daemon();
    expect_in(sub_path, "bmsfleet_cabin_p1_voltage/config {", 1);
    /* retained configs are delivered first; the clearing comes with the new connection */
    long long deadline = proc_now_ms() + WAIT_MS;
    char *p = NULL;
    while (proc_now_ms() < deadline) {
        free(p);
        p = last_payload("homeassistant/sensor/bmsfleet_cabin_p2_voltage/config");
        if (p && (*p == '\0' || strcmp(p, "(null)") == 0))
            break;
        usleep(100000);
    }
    assert_non_null(p);
    /* the last retained message for it is empty (mosquitto_sub shows it as "(null)") */
    assert_true(*p == '\0' || strcmp(p, "(null)") == 0);
    free(p);
    char *q = last_payload("homeassistant/sensor/bmsfleet_cabin_p1_voltage/config");
    assert_non_null(q);
    assert_true(*q == '{'); /* p1 stays */
    free(q);
}

static int64_t db_int(const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int64_t v = -1;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void wait_rows(int64_t min_rows)
{
    long long deadline = proc_now_ms() + WAIT_MS;
    while (db_int("SELECT count(*) FROM samples") < min_rows && proc_now_ms() < deadline)
        usleep(100000);
    assert_true(db_int("SELECT count(*) FROM samples") >= min_rows);
}

/* The broker goes away; samples keep being stored; the daemon restarts during the outage;
 * the broker returns: every sample of the outage arrives on the history topics, in order,
 * exactly once. */
static void test_outage_replay(void **state)
{
    (void)state;
    assert_int_equal(broker_start(&br, dir, NULL), 0);
    start_sim("1-2");
    write_config(NULL);
    start_daemon();
    expect_in(err_path, "mqtt: connected to", 1);
    wait_rows(4);
    usleep(1500000); /* what was stored so far is delivered */
    broker_stop(&br);
    int64_t before = db_int("SELECT max(id) FROM samples");
    wait_rows(before + 8);
    assert_int_equal(proc_stop(daemon_pid), 0); /* restart in the middle of the outage */
    start_daemon();
    wait_rows(db_int("SELECT count(*) FROM samples") + 8);
    int64_t during = db_int("SELECT max(id) FROM samples");
    assert_int_equal(broker_start(&br, dir, NULL), 0); /* same port */
    subscribe("bmsfleet/+/history");
    /* every id up to `during` must come back */
    long long deadline = proc_now_ms() + WAIT_MS;
    for (;;) {
        char *t = proc_slurp(sub_path);
        char needle[64];
        snprintf(needle, sizeof needle, "\"seq\":%lld,", (long long)during);
        int done = t && strstr(t, needle);
        free(t);
        if (done || proc_now_ms() > deadline)
            break;
        usleep(100000);
    }
    assert_int_equal(proc_stop(daemon_pid), 0);
    daemon_pid = 0;
    char *text = proc_slurp(sub_path);
    assert_non_null(text);
    int64_t last = 0, count = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        const char *js = strchr(line, ' ');
        assert_non_null(js);
        cJSON *o = cJSON_Parse(js + 1);
        assert_non_null(o);
        int64_t seq = (int64_t)cJSON_GetObjectItem(o, "seq")->valuedouble;
        const char *pack = cJSON_GetObjectItem(o, "pack")->valuestring;
        char topic[64];
        snprintf(topic, sizeof topic, "bmsfleet/%s/history", pack);
        assert_true(strncmp(line, topic, strlen(topic)) == 0);
        assert_true(cJSON_GetObjectItem(o, "ts")->valuedouble > 1.6e9);
        if (last)
            assert_int_equal(seq, last + 1); /* in order, none missing, none twice */
        last = seq;
        if (seq > before && seq <= during)
            count++;
        cJSON_Delete(o);
    }
    free(text);
    assert_int_equal(count, during - before);
}

/* Wrong password: a clear log line, retries, and it connects once the broker accepts it. */
static void test_bad_credentials_recover(void **state)
{
    (void)state;
    char pw[300], extra[600];
    snprintf(pw, sizeof pw, "%s/passwd", dir);
    char *mk[] = {(char *)"/usr/bin/mosquitto_passwd", "-b", "-c", pw, "bms", "right", NULL};
    struct proc_result *r = malloc(sizeof *r);
    assert_int_equal(proc_run(mk, NULL, 10000, r), 0);
    assert_int_equal(r->status, 0);
    snprintf(extra, sizeof extra, "allow_anonymous false\npassword_file %s", pw);
    assert_int_equal(broker_start(&br, dir, extra), 0);
    start_sim("1-2");
    write_config("  username: bms\n");
    setenv("MQTT_PASSWORD", "wrong", 1);
    start_daemon();
    unsetenv("MQTT_PASSWORD");
    expect_in(err_path, "not authorized", 1);
    wait_rows(4); /* polling and storage go on */
    /* the broker now accepts the daemon's password */
    char *mk2[] = {(char *)"/usr/bin/mosquitto_passwd", "-b", "-c", pw, "bms", "wrong", NULL};
    assert_int_equal(proc_run(mk2, NULL, 10000, r), 0);
    free(r);
    broker_stop(&br);
    assert_int_equal(broker_start(&br, dir, extra), 0);
    expect_in(err_path, "mqtt: connected to", 1);
}

/* TLS with a password, against a CA made in the test; a wrong CA is refused clearly. */
static void test_tls(void **state)
{
    (void)state;
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd %s && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=testca "
             "-keyout ca.key -out ca.crt 2>/dev/null && "
             "openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout srv.key -out "
             "srv.csr 2>/dev/null && printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf && "
             "openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
             "-extfile ext.cnf -out srv.crt 2>/dev/null && "
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=otherca "
             "-keyout other.key -out other.crt 2>/dev/null && "
             "mosquitto_passwd -b -c passwd bms secret",
             dir);
    assert_int_equal(system(cmd), 0);
    char extra[1200], yaml[600];
    snprintf(extra, sizeof extra,
             "allow_anonymous false\npassword_file %s/passwd\ncafile %s/ca.crt\n"
             "certfile %s/srv.crt\nkeyfile %s/srv.key",
             dir, dir, dir, dir);
    assert_int_equal(broker_start(&br, dir, extra), 0);
    start_sim("1-2");
    /* a CA that did not sign the broker's certificate: refused, said so, retried */
    snprintf(yaml, sizeof yaml, "  username: bms\n  tls:\n    ca_file: %s/other.crt\n", dir);
    write_config(yaml);
    setenv("MQTT_PASSWORD", "secret", 1);
    start_daemon();
    expect_in(err_path, "mqtt: cannot connect to ssl://127.0.0.1", 1);
    assert_int_equal(proc_stop(daemon_pid), 0);
    char *e = proc_slurp(err_path);
    assert_null(strstr(e, "mqtt: connected"));
    free(e);
    /* the right CA */
    snprintf(yaml, sizeof yaml, "  username: bms\n  tls:\n    ca_file: %s/ca.crt\n", dir);
    write_config(yaml);
    start_daemon();
    unsetenv("MQTT_PASSWORD");
    expect_in(err_path, "mqtt: connected to ssl://127.0.0.1", 1);
    expect_in(br.log, "New client connected", 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_discovery_state_availability, stop_all),
        cmocka_unit_test_teardown(test_compat_topics, stop_all),
        cmocka_unit_test_teardown(test_ha_birth, stop_all),
        cmocka_unit_test_teardown(test_removed_pack_cleared, stop_all),
        cmocka_unit_test_teardown(test_outage_replay, stop_all),
        cmocka_unit_test_teardown(test_bad_credentials_recover, stop_all),
        cmocka_unit_test_teardown(test_tls, stop_all),
    };
    if (getenv("BMSFLEET_TEST_FILTER")) /* run one test: BMSFLEET_TEST_FILTER=test_tls */
        cmocka_set_test_filter(getenv("BMSFLEET_TEST_FILTER"));
    return cmocka_run_group_tests(tests, setup, teardown);
}
