/* test_cli: the real bmsfleet binary against the real simulator binary over a pty.
 *
 * The simulator runs frozen (--time-scale 0) from a known seed, so the values it answers are
 * exactly what the in-process pack model gives, passed through the wire encoding once. `read
 * --json` must print those values; faults must give the documented errors and exit codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fixture.h"
#include "proc.h"
#include "report.h"
#include "s42.h"
#include "sim.h"

#define SEED "7"

static char tmpdir[256];
static char link_path[300];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bmsfleet-test-cli-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(link_path, sizeof link_path, "%s/bms0", tmpdir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(link_path);
    rmdir(tmpdir);
    return 0;
}

static pid_t sim_pid; /* the running simulator, stopped by the per-test teardown */

static int stop_sim(void **state)
{
    (void)state;
    if (sim_pid > 0)
        proc_stop(sim_pid);
    sim_pid = 0;
    unlink(link_path);
    return 0;
}

static pid_t start_sim(const char *proto, const char *addrs, const char *fault)
{
    unlink(link_path);
    const char *extra[] = {"--protocol", proto, "--addresses", addrs, "--seed", SEED,
                           "--time-scale", "0", "--baud", "115200", "--turnaround", "2",
                           fault ? "--fault" : NULL, fault, NULL};
    pid_t pid = proc_start_sim(BMSFLEET_BIN, link_path, extra);
    assert_true(pid > 0);
    sim_pid = pid;
    return pid;
}

static void run_read(struct proc_result *r, const char *proto, const char *addrs,
                     const char *timeout, int json)
{
    char *argv[] = {(char *)BMSFLEET_BIN, "read", "--port", link_path, "--protocol",
                    (char *)proto, "--address", (char *)addrs, "--baud", "115200",
                    "--timeout", (char *)timeout, json ? "--json" : NULL, NULL};
    assert_int_equal(proc_run(argv, NULL, 30000, r), 0);
}

/* Compares one JSON line of `read --json` with the expected sample (ts left out). */
static void check_json_line(const char *line, const char *proto, uint8_t adr)
{
    cJSON *got = cJSON_Parse(line);
    assert_non_null(got);
    cJSON_DeleteItemFromObject(got, "ts");
    struct sample s;
    if (strcmp(proto, "modbus") == 0)
        fixture_modbus_sample(strtoull(SEED, NULL, 10), adr, &s);
    else
        fixture_wire_sample(proto, strtoull(SEED, NULL, 10), adr, &s);
    cJSON *want = report_sample_json(&s, proto, 0);
    if (!cJSON_Compare(got, want, 1)) {
        char *a = cJSON_PrintUnformatted(got), *b = cJSON_PrintUnformatted(want);
        print_error("got  %s\nwant %s\n", a, b);
        cJSON_free(a);
        cJSON_free(b);
        fail();
    }
    /* sanity: the values are real, not zeros */
    assert_int_equal(s.ncells, 16);
    assert_true(s.voltage_mv > 40000 && s.voltage_mv < 60000);
    cJSON_Delete(got);
    cJSON_Delete(want);
}

/* Splits r->out into lines and checks one JSON line per listed address, in order. */
static void check_json_output(const struct proc_result *r, const char *proto,
                              const uint8_t *adrs, size_t n)
{
    char buf[sizeof r->out];
    memcpy(buf, r->out, sizeof buf);
    size_t k = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        assert_true(k < n);
        cJSON *o = cJSON_Parse(line);
        assert_non_null(o);
        assert_int_equal(cJSON_GetObjectItem(o, "address")->valueint, adrs[k]);
        cJSON_Delete(o);
        check_json_line(line, proto, adrs[k]);
        k++;
    }
    assert_int_equal(k, n);
}

static void test_read_four_packs(const char *proto)
{
    pid_t sim = start_sim(proto, "1-4", NULL);
    struct proc_result *r = malloc(sizeof *r);
    run_read(r, proto, "1-4", "1000", 1);
    assert_int_equal(r->status, 0);
    const uint8_t adrs[] = {1, 2, 3, 4};
    check_json_output(r, proto, adrs, 4);
    free(r);
    assert_int_equal(proc_stop(sim), 0);
    sim_pid = 0;
    struct stat st;
    assert_int_equal(lstat(link_path, &st), -1); /* the simulator removed its link */
}

static void test_read_daren(void **state) { (void)state; test_read_four_packs("daren"); }
static void test_read_pace(void **state) { (void)state; test_read_four_packs("pace"); }
static void test_read_pylontech(void **state) { (void)state; test_read_four_packs("pylontech"); }
static void test_read_seplos(void **state) { (void)state; test_read_four_packs("seplos"); }
static void test_read_modbus(void **state) { (void)state; test_read_four_packs("modbus"); }

/* Modbus faults through the real binaries: a silent slave, a CRC error, an exception. */
static void test_modbus_faults(void **state)
{
    (void)state;
    struct proc_result *r = malloc(sizeof *r);
    start_sim("modbus", "1-3", "silent:2");
    run_read(r, "modbus", "1-3", "300", 1);
    assert_int_equal(r->status, 3);
    assert_non_null(strstr(r->err, "no answer from slave 2"));
    const uint8_t adrs[] = {1, 3};
    check_json_output(r, "modbus", adrs, 2);
    stop_sim(NULL);
    start_sim("modbus", "1", "checksum:1");
    run_read(r, "modbus", "1", "300", 0);
    assert_int_equal(r->status, 3);
    assert_non_null(strstr(r->err, "CRC error in the answer of slave 1"));
    stop_sim(NULL);
    start_sim("modbus", "1", "rtn=2:1");
    run_read(r, "modbus", "1", "300", 0);
    assert_int_equal(r->status, 3);
    assert_non_null(strstr(r->err, "exception 02: illegal data address"));
    free(r);
}

/* `decode --protocol modbus` takes a register dump. */
static void test_decode_modbus(void **state)
{
    (void)state;
    struct sample s;
    fixture_modbus_sample(3, 1, &s);
    struct sim_pack p;
    struct sample model;
    uint16_t regs[MBMAP_NREGS];
    sim_pack_init(&p, 3, 1, 16);
    sim_pack_sample(&p, &model);
    assert_int_equal(mbmap_encode(&model, regs), 0);
    char hex[MBMAP_NREGS * 4 + 1];
    for (size_t i = 0; i < MBMAP_NREGS; i++)
        snprintf(hex + 4 * i, 5, "%04X", regs[i]);
    struct proc_result *r = malloc(sizeof *r);
    char *argv[] = {(char *)BMSFLEET_BIN, "decode", "--protocol", "modbus", "--json", hex, NULL};
    assert_int_equal(proc_run(argv, NULL, 10000, r), 0);
    assert_int_equal(r->status, 0);
    cJSON *got = cJSON_Parse(r->out);
    assert_non_null(got);
    s.address = 0; /* bare registers carry no slave address */
    cJSON *want = report_sample_json(&s, "modbus", 0);
    assert_true(cJSON_Compare(got, want, 1));
    cJSON_Delete(got);
    cJSON_Delete(want);
    char *bad[] = {(char *)BMSFLEET_BIN, "decode", "--protocol", "modbus", "0102", NULL};
    assert_int_equal(proc_run(bad, NULL, 10000, r), 0);
    assert_int_equal(r->status, 1);
    assert_non_null(strstr(r->err, "rejected: "));
    free(r);
}

static void test_read_table(void **state)
{
    (void)state;
    pid_t sim = start_sim("daren", "1", NULL);
    struct proc_result *r = malloc(sizeof *r);
    run_read(r, "daren", "1", "1000", 0);
    assert_int_equal(r->status, 0);
    struct sample s;
    fixture_wire_sample("daren", strtoull(SEED, NULL, 10), 1, &s);
    char line[128];
    assert_non_null(strstr(r->out, "pack 1 (daren)"));
    snprintf(line, sizeof line, "voltage           %.2f V", s.voltage_mv / 1000.0);
    assert_non_null(strstr(r->out, line));
    snprintf(line, sizeof line, "SOC               %.1f %%", s.soc_cpct / 100.0);
    assert_non_null(strstr(r->out, line));
    assert_non_null(strstr(r->out, "cells (16)"));
    free(r);
    (void)sim;
}

/* A silent pack costs one timeout; the others are read normally and the exit code says 3. */
static void test_silent_pack(void **state)
{
    (void)state;
    pid_t sim = start_sim("daren", "1-4", "silent:2");
    struct proc_result *r = malloc(sizeof *r);
    run_read(r, "daren", "1-4", "300", 1);
    assert_int_equal(r->status, 3);
    char want[512];
    snprintf(want, sizeof want, "no answer from address 2 on %s within 300 ms", link_path);
    assert_non_null(strstr(r->err, want));
    const uint8_t adrs[] = {1, 3, 4};
    check_json_output(r, "daren", adrs, 3);
    free(r);
    (void)sim;
}

static void test_checksum_fault(void **state)
{
    (void)state;
    pid_t sim = start_sim("pace", "1-2", "checksum:1");
    struct proc_result *r = malloc(sizeof *r);
    run_read(r, "pace", "1-2", "500", 1);
    assert_int_equal(r->status, 3);
    const char *m = strstr(r->err, "checksum mismatch: frame says 0x");
    assert_non_null(m);
    unsigned said, computed;
    assert_int_equal(sscanf(m, "checksum mismatch: frame says 0x%X, computed 0x%X", &said,
                            &computed), 2);
    assert_int_equal(said, (computed + 1) & 0xFFFF); /* the simulator's fault: off by one */
    const uint8_t adrs[] = {2};
    check_json_output(r, "pace", adrs, 1);
    free(r);
    (void)sim;
}

/* Noise before the frame is skipped (resync on '~'): every pack reads fine. */
static void test_garbage_resync(void **state)
{
    (void)state;
    pid_t sim = start_sim("seplos", "1-3", "garbage:0");
    struct proc_result *r = malloc(sizeof *r);
    run_read(r, "seplos", "1-3", "1000", 1);
    assert_int_equal(r->status, 0);
    const uint8_t adrs[] = {1, 2, 3};
    check_json_output(r, "seplos", adrs, 3);
    free(r);
    (void)sim;
}

static void test_truncated_frame(void **state)
{
    (void)state;
    pid_t sim = start_sim("daren", "1-2", "truncated:1");
    struct proc_result *r = malloc(sizeof *r);
    run_read(r, "daren", "1-2", "300", 1);
    assert_int_equal(r->status, 3);
    assert_non_null(strstr(r->err, "no answer from address 1"));
    const uint8_t adrs[] = {2};
    check_json_output(r, "daren", adrs, 1);
    free(r);
    (void)sim;
}

/* A slow pack's late answer arrives while the next pack is asked: it is skipped, not taken. */
static void test_slow_pack_late_answer(void **state)
{
    (void)state;
    pid_t sim = start_sim("daren", "1-3", "slow=400:1");
    struct proc_result *r = malloc(sizeof *r);
    run_read(r, "daren", "1-3", "300", 1);
    assert_int_equal(r->status, 3);
    assert_non_null(strstr(r->err, "no answer from address 1"));
    const uint8_t adrs[] = {2, 3};
    check_json_output(r, "daren", adrs, 2);
    free(r);
    (void)sim;
}

static void test_rtn_error(void **state)
{
    (void)state;
    pid_t sim = start_sim("daren", "1", "rtn=91:1");
    struct proc_result *r = malloc(sizeof *r);
    run_read(r, "daren", "1", "500", 0);
    assert_int_equal(r->status, 3);
    assert_non_null(strstr(r->err, "RTN 91: communication error"));
    assert_null(strstr(r->out, "SOC"));
    free(r);
    (void)sim;
}

/* What `read --json` prints for a pack that answered 0x42 and refused or ignored 0x44: the
 * analog values as the model sends them, the flags null, "alarms_supported": false. */
static cJSON *expected_without_alarms(const char *proto, uint8_t adr)
{
    const struct s42_variant *v = s42_variant_find(proto);
    struct sim_pack p;
    struct sample model, s;
    struct s42_frame f;
    sim_pack_init(&p, strtoull(SEED, NULL, 10), adr, 16);
    sim_pack_sample(&p, &model);
    fixture_wire_frame(v, S42_CID2_ANALOG, adr, &model, &f);
    assert_int_equal(s42_decode_analog(v, &f, &s, NULL), 0);
    s.has |= SAMPLE_ALARMS_UNSUPPORTED;
    return report_sample_json_opts(&s, proto, 0, REPORT_JSON_UNKNOWN_NULL);
}

static void check_line_without_alarms(const char *line, const char *proto, uint8_t adr)
{
    cJSON *got = cJSON_Parse(line);
    assert_non_null(got);
    cJSON_DeleteItemFromObject(got, "ts");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(got, "alarms_supported")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(got, "alarms")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(got, "protection")));
    assert_true(cJSON_GetObjectItem(got, "voltage")->valuedouble > 40.0);
    cJSON *want = expected_without_alarms(proto, adr);
    if (!cJSON_Compare(got, want, 1)) {
        char *a = cJSON_PrintUnformatted(got), *b = cJSON_PrintUnformatted(want);
        print_error("got  %s\nwant %s\n", a, b);
        fail();
    }
    cJSON_Delete(got);
    cJSON_Delete(want);
}

/* A pack that answers 0x42 but refuses 0x44 (RTN 04) is read, exit 0; read and scan say that
 * its alarms are not supported. */
static void test_read_refused_alarms(void **state)
{
    (void)state;
    start_sim("pace", "1-2", "no-alarms:1");
    struct proc_result *r = malloc(sizeof *r);
    run_read(r, "pace", "1-2", "300", 1);
    assert_int_equal(r->status, 0);
    char *nl = strchr(r->out, '\n');
    assert_non_null(nl);
    *nl = '\0';
    check_line_without_alarms(r->out, "pace", 1);
    check_json_line(nl + 1, "pace", 2); /* the pack beside it: every flag */
    assert_null(strstr(nl + 1, "alarms_supported"));

    run_read(r, "pace", "1", "300", 0);
    assert_int_equal(r->status, 0);
    assert_non_null(strstr(r->out, "  alarms            not supported by this pack (0x44: BMS "
                                   "answered RTN 04: command not supported (CID2 invalid))\n"));
    assert_null(strstr(r->out, "protection"));
    struct sample s;
    fixture_wire_sample("pace", strtoull(SEED, NULL, 10), 1, &s);
    char line[128];
    snprintf(line, sizeof line, "voltage           %.2f V", s.voltage_mv / 1000.0);
    assert_non_null(strstr(r->out, line));

    run_read(r, "pace", "1-2", "300", 0); /* the bank table */
    assert_int_equal(r->status, 0);
    assert_non_null(strstr(r->out, "ok, alarms unsupported\n"));
    assert_int_equal(proc_count(r->out, "alarms unsupported"), 1);

    char *scan[] = {(char *)BMSFLEET_BIN, "scan", "--port", link_path, "--protocol", "pace",
                    "--from", "1", "--to", "2", "--baud", "115200", "--listen", "0", "--json",
                    NULL};
    assert_int_equal(proc_run(scan, NULL, 30000, r), 0);
    assert_int_equal(r->status, 0);
    cJSON *doc = cJSON_Parse(r->out);
    assert_non_null(doc);
    cJSON *rows = cJSON_GetObjectItem(doc, "addresses");
    assert_int_equal(cJSON_GetArraySize(rows), 2);
    cJSON *row1 = cJSON_GetArrayItem(rows, 0), *row2 = cJSON_GetArrayItem(rows, 1);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(row1, "alarms_supported")));
    assert_non_null(strstr(cJSON_GetObjectItem(row1, "notes")->valuestring,
                           "alarms unsupported (0x44: BMS answered RTN 04"));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(row2, "alarms_supported")));
    assert_string_equal(cJSON_GetObjectItem(row2, "notes")->valuestring, "");
    cJSON_Delete(doc);
    scan[14] = NULL; /* the table and the snippet */
    assert_int_equal(proc_run(scan, NULL, 30000, r), 0);
    assert_int_equal(r->status, 0);
    assert_non_null(strstr(r->out, "alarms unsupported (0x44: BMS answered RTN 04"));
    assert_non_null(strstr(r->out, "  - { address: 0x01, id: pack1 }  # answers 0x42 only"));
    assert_non_null(strstr(r->out, "  - { address: 0x02, id: pack2 }\n"));
    free(r);
}

/* Silence to 0x44 only: the values are read all the same, exit 0. */
static void test_read_ignored_alarms(void **state)
{
    (void)state;
    start_sim("seplos", "3", "ignore-alarms:3");
    struct proc_result *r = malloc(sizeof *r);
    run_read(r, "seplos", "3", "300", 1);
    assert_int_equal(r->status, 0);
    check_line_without_alarms(strtok(r->out, "\n"), "seplos", 3);
    run_read(r, "seplos", "3", "300", 0);
    assert_int_equal(r->status, 0);
    assert_non_null(strstr(r->out, "not supported by this pack (0x44: no answer within 300 ms)"));
    free(r);
}

static void test_usage_errors(void **state)
{
    (void)state;
    struct proc_result *r = malloc(sizeof *r);
    char *unknown[] = {(char *)BMSFLEET_BIN, "read", "--bogus", NULL};
    assert_int_equal(proc_run(unknown, NULL, 10000, r), 0);
    assert_int_equal(r->status, 2);
    assert_non_null(strstr(r->err, "usage: bmsfleet read"));
    char *nocmd[] = {(char *)BMSFLEET_BIN, "frobnicate", NULL};
    assert_int_equal(proc_run(nocmd, NULL, 10000, r), 0);
    assert_int_equal(r->status, 2);
    assert_non_null(strstr(r->err, "unknown command 'frobnicate'"));
    char *badaddr[] = {(char *)BMSFLEET_BIN, "read", "--port", "/dev/null", "--address",
                       "1-x", NULL};
    assert_int_equal(proc_run(badaddr, NULL, 10000, r), 0);
    assert_int_equal(r->status, 2);
    char *badbaud[] = {(char *)BMSFLEET_BIN, "read", "--port", "/dev/null", "--address", "1",
                       "--baud", "9601", NULL};
    assert_int_equal(proc_run(badbaud, NULL, 10000, r), 0);
    assert_int_equal(r->status, 2);
    assert_non_null(strstr(r->err, "unsupported baud rate '9601'"));
    char *missing[] = {(char *)BMSFLEET_BIN, "read", "--port", "/dev/ttyBMSFLEETNONE",
                       "--address", "1", NULL};
    assert_int_equal(proc_run(missing, NULL, 10000, r), 0);
    assert_int_equal(r->status, 1);
    assert_non_null(strstr(r->err, "cannot open /dev/ttyBMSFLEETNONE: "));
    free(r);
}

static void test_decode_command(void **state)
{
    (void)state;
    struct proc_result *r = malloc(sizeof *r);
    char *ok[] = {(char *)BMSFLEET_BIN, "decode", "--json",
                  "~25014600F07A0001100CC70CC80CC70CC70CC70CC50CC60CC70CC70CC60CC70CC60CC60CC70CC6"
                  "0CC7060B9B0B990B990B990BB30BBCFF1FCCCD12D303286A008C2710E1E4",
                  NULL};
    assert_int_equal(proc_run(ok, NULL, 10000, r), 0);
    assert_int_equal(r->status, 0);
    cJSON *o = cJSON_Parse(r->out);
    assert_non_null(o);
    assert_string_equal(cJSON_GetObjectItem(o, "protocol")->valuestring, "pace");
    assert_true(cJSON_GetObjectItem(o, "current")->valuedouble == -2.25);
    assert_true(cJSON_GetObjectItem(o, "voltage")->valuedouble == 52.429);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "cells")), 16);
    cJSON_Delete(o);
    /* stdin, with the newline a shell adds */
    char *in[] = {(char *)BMSFLEET_BIN, "decode", "--command", "4F", NULL};
    assert_int_equal(proc_run(in, "~22014A00E002C8FD14\n", 10000, r), 0);
    assert_int_equal(r->status, 0);
    assert_non_null(strstr(r->out, "protocol version  0xC8"));
    char *bad[] = {(char *)BMSFLEET_BIN, "decode", "~22014A00E002C8FD15", NULL};
    assert_int_equal(proc_run(bad, NULL, 10000, r), 0);
    assert_int_equal(r->status, 1);
    assert_string_equal(r->err, "rejected: checksum mismatch: frame says 0xFD15, computed 0xFD14\n");
    assert_string_equal(r->out, "");
    char *rtn[] = {(char *)BMSFLEET_BIN, "decode", "~22004A91B01400040000000F00000000F9AC", NULL};
    assert_int_equal(proc_run(rtn, NULL, 10000, r), 0);
    assert_int_equal(r->status, 1);
    assert_non_null(strstr(r->err, "RTN 91"));
    char *badcmd[] = {(char *)BMSFLEET_BIN, "decode", "--command", "zz", "~", NULL};
    assert_int_equal(proc_run(badcmd, NULL, 10000, r), 0);
    assert_int_equal(r->status, 2);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_read_daren, stop_sim),
        cmocka_unit_test_teardown(test_read_pace, stop_sim),
        cmocka_unit_test_teardown(test_read_pylontech, stop_sim),
        cmocka_unit_test_teardown(test_read_seplos, stop_sim),
        cmocka_unit_test_teardown(test_read_modbus, stop_sim),
        cmocka_unit_test_teardown(test_modbus_faults, stop_sim),
        cmocka_unit_test_teardown(test_decode_modbus, stop_sim),
        cmocka_unit_test_teardown(test_read_table, stop_sim),
        cmocka_unit_test_teardown(test_silent_pack, stop_sim),
        cmocka_unit_test_teardown(test_checksum_fault, stop_sim),
        cmocka_unit_test_teardown(test_garbage_resync, stop_sim),
        cmocka_unit_test_teardown(test_truncated_frame, stop_sim),
        cmocka_unit_test_teardown(test_slow_pack_late_answer, stop_sim),
        cmocka_unit_test_teardown(test_rtn_error, stop_sim),
        cmocka_unit_test_teardown(test_read_refused_alarms, stop_sim),
        cmocka_unit_test_teardown(test_read_ignored_alarms, stop_sim),
        cmocka_unit_test_teardown(test_usage_errors, stop_sim),
        cmocka_unit_test_teardown(test_decode_command, stop_sim),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
