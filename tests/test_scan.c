/* test_scan: `bmsfleet scan` (the real binary) against the real simulator over a pty.
 *
 * The scan must find exactly the simulated packs and print them as a `packs:` snippet, tell the
 * protocol variants apart in auto mode (Modbus RTU included), flag an address two packs share
 * (simulate --collide, or Modbus CRC faults), notice another master on the bus (simulate
 * --chatter), and exit 3 on a bus where nothing answers. The simulator runs frozen (--time-scale 0)
 * from a known seed and fast (115200 baud, 2 ms turnaround) so the values are exact and the whole
 * file runs in seconds. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* cfmakeraw */
#endif
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h> /* cmocka */
#include <stddef.h>
#include <stdint.h>
#include <termios.h>

#include <cmocka.h>

#include "devname.h"
#include "fixture.h"
#include "proc.h"
#include "report.h"
#include "s42.h"
#include "sim.h"

#define SEED    "7"
#define TIMEOUT "250" /* per request: a frame at 115200 baud takes ~20 ms, ASan included */

static char tmpdir[256];
static char link_path[PROC_PATH_MAX];
static pid_t sim_pid; /* the running simulator, stopped by the per-test teardown */

static int setup(void **state)
{
    (void)state;
    return proc_test_dir(tmpdir, sizeof tmpdir, "scan",
                         (const struct proc_file[]){{link_path, "bms0"}, {NULL, NULL}});
}

static int teardown(void **state)
{
    (void)state;
    proc_clear_dir(tmpdir, 0);
    return 0;
}

static int stop_sim(void **state)
{
    (void)state;
    proc_stop_pids(&sim_pid, 1);
    unlink(link_path);
    return 0;
}

/* Starts a frozen, fast simulator, with more options when more is not NULL (NULL-terminated). */
static void start_sim(const char *proto, const char *addrs, const char *const more[])
{
    sim_pid = proc_start_frozen_sim(BMSFLEET_BIN, link_path, proto, addrs, SEED, more);
    assert_true(sim_pid > 0);
}

/* Runs `bmsfleet scan --port LINK --baud 115200 --timeout T --gap 5` plus opts
 * (NULL-terminated). */
static void run_scan(struct proc_result *r, const char *const opts[])
{
    char *argv[32] = {(char *)BMSFLEET_BIN, "scan",  "--port", link_path, "--baud", "115200",
                      "--timeout",          TIMEOUT, "--gap",  "5"};
    size_t n = 10;
    for (size_t i = 0; opts[i] != NULL && n + 1 < 32; i++)
        argv[n++] = (char *)opts[i];
    argv[n] = NULL;
    assert_int_equal(proc_run(argv, NULL, 60000, r), 0);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* The snippet lists exactly these addresses, in order, after a `packs:` line. */
static void check_snippet(const char *out, const uint8_t *adrs, size_t n)
{
    const char *packs = strstr(out, "\npacks:\n");
    assert_non_null(packs);
    assert_int_equal(count(packs, "  - { address: "), n);
    const char *p = packs;
    for (size_t i = 0; i < n; i++) {
        char line[64];
        snprintf(line, sizeof line, "  - { address: 0x%02X, id: pack%u }", adrs[i], adrs[i]);
        const char *at = strstr(p, line);
        if (at == NULL)
            fail_msg("no '%s' in:\n%s", line, out);
        p = at + 1;
    }
}

static void assert_contains(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL)
        fail_msg("'%s' not in:\n%s", needle, hay);
}

static void assert_lacks(const char *hay, const char *needle)
{
    if (strstr(hay, needle) != NULL)
        fail_msg("'%s' unexpectedly in:\n%s", needle, hay);
}

static void test_daren_bank(void **state)
{
    (void)state;
    start_sim("daren", "1-4", NULL);
    struct proc_result *r = malloc(sizeof *r);
    run_scan(r, (const char *const[]){"--protocol", "daren", "--from", "1", "--to", "6", "--listen",
                                      "300", NULL});
    assert_int_equal(r->status, 0);
    const uint8_t adrs[] = {1, 2, 3, 4};
    check_snippet(r->out, adrs, 4);
    char head[400];
    snprintf(head, sizeof head, "# port: %s, protocol daren, 115200 baud\npacks:\n", link_path);
    assert_contains(r->out, head);
    assert_contains(r->out, "listened 300 ms before sending: quiet");
    assert_contains(r->out, "4 pack(s) found, 2 address(es) silent");
    for (unsigned a = 1; a <= 4; a++) {
        char serial[32];
        snprintf(serial, sizeof serial, " SIM" SEED "-%u ", a);
        assert_contains(r->out, serial); /* identity read, serial in the table */
    }
    assert_lacks(r->out, "warnings:");
    assert_lacks(r->out, "several protocols");

    /* the same bus as JSON: values equal what the frozen model sends */
    run_scan(r, (const char *const[]){"--protocol", "daren", "--from", "1", "--to", "5", "--listen",
                                      "0", "--json", NULL});
    assert_int_equal(r->status, 0);
    cJSON *doc = cJSON_Parse(r->out);
    assert_non_null(doc);
    cJSON *packs = cJSON_GetObjectItem(doc, "packs");
    assert_int_equal(cJSON_GetArraySize(packs), 4);
    cJSON *rows = cJSON_GetObjectItem(doc, "addresses");
    assert_int_equal(cJSON_GetArraySize(rows), 4);
    assert_int_equal(cJSON_GetObjectItem(doc, "silent")->valueint, 1);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "warnings")), 0);
    for (int i = 0; i < 4; i++) {
        cJSON *p = cJSON_GetArrayItem(packs, i), *row = cJSON_GetArrayItem(rows, i);
        uint8_t adr = (uint8_t)(i + 1);
        char id[16], serial[32];
        snprintf(id, sizeof id, "pack%u", adr);
        snprintf(serial, sizeof serial, "SIM" SEED "-%u", adr);
        assert_int_equal(cJSON_GetObjectItem(p, "address")->valueint, adr);
        assert_string_equal(cJSON_GetObjectItem(p, "id")->valuestring, id);
        assert_string_equal(cJSON_GetObjectItem(p, "protocol")->valuestring, "daren");
        assert_string_equal(cJSON_GetObjectItem(row, "status")->valuestring, "ok");
        assert_int_equal(cJSON_GetObjectItem(row, "tries")->valueint, 3);
        assert_int_equal(cJSON_GetObjectItem(row, "corrupted")->valueint, 0);
        assert_false(cJSON_IsTrue(cJSON_GetObjectItem(row, "shared")));
        struct sample s;
        fixture_wire_sample("daren", strtoull(SEED, NULL, 10), adr, &s);
        assert_int_equal(cJSON_GetObjectItem(row, "cells")->valueint, 16);
        assert_true(cJSON_GetObjectItem(row, "soc")->valuedouble == s.soc_cpct / 100.0);
        assert_true(cJSON_GetObjectItem(row, "voltage")->valuedouble == s.voltage_mv / 1000.0);
        cJSON *ident = cJSON_GetObjectItem(row, "identity");
        assert_string_equal(cJSON_GetObjectItem(ident, "serial")->valuestring, serial);
        assert_string_equal(cJSON_GetObjectItem(ident, "software")->valuestring, "01.00.00");
    }
    cJSON_Delete(doc);
    free(r);
}

/* Auto mode: the first protocol that answers wins; Pylontech and Seplos, asked alike, are told
 * apart by the answer's layout. */
static void test_auto(void **state)
{
    const char *proto = *state;
    start_sim(proto, "1,2", NULL);
    struct proc_result *r = malloc(sizeof *r);
    run_scan(r, (const char *const[]){"--protocol", "auto", "--from", "1", "--to", "3", "--listen",
                                      "0", NULL});
    assert_int_equal(r->status, 0);
    char head[400];
    /* a port that is not Daren needs its protocol key: the snippet carries it */
    snprintf(head, sizeof head, "# port: %s, protocol %s, 115200 baud\nprotocol: %s\npacks:\n",
             link_path, proto, proto);
    assert_contains(r->out, head);
    const uint8_t adrs[] = {1, 2};
    check_snippet(r->out, adrs, 2);
    assert_contains(r->out, "protocols daren, pace, pylontech, seplos, modbus");
    assert_lacks(r->out, "protocol: modbus");
    char row[64];
    snprintf(row, sizeof row, "\n1       %-9s    16 ", proto);
    assert_contains(r->out, row);
    assert_lacks(r->out, "warnings:");
    free(r);
}

/* Two packs on address 3: 2 of 3 answers collide on the wire and fail the checksum. */
static void test_collision(void **state)
{
    (void)state;
    start_sim("daren", "1-4", (const char *const[]){"--collide", "3", NULL});
    struct proc_result *r = malloc(sizeof *r);
    run_scan(r, (const char *const[]){"--from", "1", "--to", "4", "--listen", "0", NULL});
    assert_int_equal(r->status, 0);
    assert_contains(r->out, "warnings:\n");
    assert_contains(r->out, "address 3: answers are garbled or inconsistent (2 of 3 corrupted): "
                            "two packs may share this address; check their DIP switches");
    assert_int_equal(count(r->out, "answers are garbled or inconsistent"), 1);
    assert_contains(r->out, "  - { address: 0x03, id: pack3 }  # two packs may share this address");
    const uint8_t adrs[] = {1, 2, 3, 4};
    check_snippet(r->out, adrs, 4);

    run_scan(r, (const char *const[]){"--protocol", "daren", "--from", "3", "--to", "3", "--listen",
                                      "0", "--json", NULL});
    assert_int_equal(r->status, 0);
    cJSON *doc = cJSON_Parse(r->out);
    assert_non_null(doc);
    cJSON *row = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "addresses"), 0);
    assert_non_null(row);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(row, "shared")));
    assert_true(cJSON_GetObjectItem(row, "corrupted")->valueint >= 1);
    cJSON *w = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "warnings"), 0);
    assert_non_null(w);
    assert_non_null(strstr(w->valuestring, "address 3: answers are garbled or inconsistent ("));
    cJSON_Delete(doc);
    free(r);
}

/* Packs at 20-21 only: asking 1-4 in every protocol finds nothing, exit 3. */
static void test_silent_bus(void **state)
{
    (void)state;
    start_sim("daren", "20-21", NULL);
    struct proc_result *r = malloc(sizeof *r);
    run_scan(r, (const char *const[]){"--from", "1", "--to", "4", "--timeout", "100", "--listen",
                                      "0", NULL});
    assert_int_equal(r->status, 3);
    assert_contains(r->out, "0 pack(s) found, 4 address(es) silent");
    assert_contains(r->out, "no pack answered at addresses 1..4");
    assert_lacks(r->out, "packs:");
    run_scan(r, (const char *const[]){"--from", "1", "--to", "2", "--timeout", "100", "--listen",
                                      "0", "--json", NULL});
    assert_int_equal(r->status, 3);
    cJSON *doc = cJSON_Parse(r->out);
    assert_non_null(doc);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "packs")), 0);
    assert_int_equal(cJSON_GetObjectItem(doc, "silent")->valueint, 2);
    cJSON_Delete(doc);
    free(r);
}

/* Another master polls the packs every 200 ms: the silent listen hears it. */
static void test_other_master(void **state)
{
    (void)state;
    start_sim("daren", "1,2", (const char *const[]){"--chatter", "200", NULL});
    struct proc_result *r = malloc(sizeof *r);
    run_scan(r, (const char *const[]){"--protocol", "daren", "--from", "1", "--to", "2", "--listen",
                                      "1000", NULL});
    assert_int_equal(r->status, 0);
    assert_contains(r->out, "listened 1000 ms before sending: traffic (see the warnings)");
    assert_contains(r->out, "traffic on the bus while bmsfleet was silent: another master "
                            "(inverter, monitoring dongle) may be polling; two masters collide");
    assert_contains(r->out, "e.g. 0x42 to address ");
    const char *req = strstr(r->out, " of them requests");
    assert_non_null(req);
    const char *num = req;
    while (num > r->out && num[-1] >= '0' && num[-1] <= '9')
        num--;
    assert_true(strtol(num, NULL, 10) >= 2); /* ~5 in 1 s */
    free(r);
}

/* Both troubles at once, in auto mode: the other master's traffic (requests, its packs' answers,
 * fragments our flush cut) must not pass for answers to our Daren probes, so the PACE packs are
 * still found, and the shared address is still told apart. */
static void test_other_master_and_shared_address(void **state)
{
    (void)state;
    start_sim("pace", "1-3", (const char *const[]){"--chatter", "150", "--collide", "2", NULL});
    struct proc_result *r = malloc(sizeof *r);
    run_scan(r, (const char *const[]){"--from", "1", "--to", "4", "--listen", "500", NULL});
    assert_int_equal(r->status, 0);
    char head[400];
    snprintf(head, sizeof head, "# port: %s, protocol pace, 115200 baud\nprotocol: pace\npacks:\n",
             link_path);
    assert_contains(r->out, head);
    const uint8_t adrs[] = {1, 2, 3};
    check_snippet(r->out, adrs, 3);
    assert_contains(r->out, "traffic on the bus while bmsfleet was silent: another master");
    assert_contains(r->out, "address 2: answers are garbled or inconsistent (");
    assert_contains(r->out, "(or it is the other master's traffic: scan again with it off)");
    assert_lacks(r->out, "\n4       "); /* nothing at address 4, not even garbling */
    free(r);
}

/* Without another master, the same listen stays quiet (the request-shaped test is not fooled by
 * the packs' own answers, since nobody asks them). */
static void test_quiet_listen_json(void **state)
{
    (void)state;
    start_sim("pace", "1", NULL);
    struct proc_result *r = malloc(sizeof *r);
    run_scan(r, (const char *const[]){"--protocol", "pace", "--from", "1", "--to", "1", "--listen",
                                      "400", "--json", NULL});
    assert_int_equal(r->status, 0);
    cJSON *doc = cJSON_Parse(r->out);
    assert_non_null(doc);
    cJSON *lis = cJSON_GetObjectItem(doc, "listen");
    assert_int_equal(cJSON_GetObjectItem(lis, "ms")->valueint, 400);
    assert_int_equal(cJSON_GetObjectItem(lis, "bytes")->valueint, 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "warnings")), 0);
    cJSON_Delete(doc);
    free(r);
}

/* ---- Modbus RTU ---- */

/* The values of a JSON row equal what the frozen Modbus model serves at adr. */
static void check_modbus_row(cJSON *row, uint8_t adr)
{
    struct sample s;
    fixture_modbus_sample(strtoull(SEED, NULL, 10), adr, &s);
    assert_int_equal(cJSON_GetObjectItem(row, "address")->valueint, adr);
    assert_string_equal(cJSON_GetObjectItem(row, "status")->valuestring, "ok");
    assert_string_equal(cJSON_GetObjectItem(row, "protocol")->valuestring, "modbus");
    assert_int_equal(cJSON_GetObjectItem(row, "tries")->valueint, 3);
    assert_int_equal(cJSON_GetObjectItem(row, "corrupted")->valueint, 0);
    assert_int_equal(cJSON_GetObjectItem(row, "cells")->valueint, 16);
    assert_true(cJSON_GetObjectItem(row, "soc")->valuedouble == s.soc_cpct / 100.0);
    assert_true(cJSON_GetObjectItem(row, "voltage")->valuedouble == s.voltage_mv / 1000.0);
    assert_null(cJSON_GetObjectItem(row, "identity")); /* Modbus packs have none */
    assert_string_equal(cJSON_GetObjectItem(row, "notes")->valuestring, "");
}

static void test_modbus_bank(void **state)
{
    (void)state;
    start_sim("modbus", "1-4", NULL);
    struct proc_result *r = malloc(sizeof *r);
    run_scan(r, (const char *const[]){"--protocol", "modbus", "--from", "1", "--to", "6",
                                      "--listen", "300", NULL});
    assert_int_equal(r->status, 0);
    const uint8_t adrs[] = {1, 2, 3, 4};
    check_snippet(r->out, adrs, 4);
    char head[400];
    snprintf(head, sizeof head,
             "# port: %s, protocol modbus, 115200 baud\nprotocol: modbus\npacks:\n", link_path);
    assert_contains(r->out, head);
    assert_contains(r->out, "addresses 1..6, protocol modbus, 115200 baud");
    assert_contains(r->out, "listened 300 ms before sending: quiet");
    assert_contains(r->out, "4 pack(s) found, 2 address(es) silent");
    assert_contains(r->out, "\n1       modbus       16 ");
    assert_lacks(r->out, "warnings:");

    run_scan(r, (const char *const[]){"--protocol", "modbus", "--from", "1", "--to", "5",
                                      "--listen", "0", "--json", NULL});
    assert_int_equal(r->status, 0);
    cJSON *doc = cJSON_Parse(r->out);
    assert_non_null(doc);
    assert_string_equal(cJSON_GetObjectItem(doc, "protocol")->valuestring, "modbus");
    cJSON *protos = cJSON_GetObjectItem(doc, "protocols");
    assert_int_equal(cJSON_GetArraySize(protos), 1);
    assert_string_equal(cJSON_GetArrayItem(protos, 0)->valuestring, "modbus");
    cJSON *packs = cJSON_GetObjectItem(doc, "packs"), *rows = cJSON_GetObjectItem(doc, "addresses");
    assert_int_equal(cJSON_GetArraySize(packs), 4);
    assert_int_equal(cJSON_GetArraySize(rows), 4);
    assert_int_equal(cJSON_GetObjectItem(doc, "silent")->valueint, 1);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "warnings")), 0);
    for (int i = 0; i < 4; i++) {
        cJSON *p = cJSON_GetArrayItem(packs, i);
        assert_int_equal(cJSON_GetObjectItem(p, "address")->valueint, i + 1);
        assert_string_equal(cJSON_GetObjectItem(p, "protocol")->valuestring, "modbus");
        check_modbus_row(cJSON_GetArrayItem(rows, i), (uint8_t)(i + 1));
    }
    cJSON_Delete(doc);
    free(r);
}

/* Auto mode asks Modbus after the Service 42 variants, and then first once it answered. */
static void test_auto_modbus(void **state)
{
    (void)state;
    start_sim("modbus", "1,2", NULL);
    struct proc_result *r = malloc(sizeof *r);
    run_scan(r, (const char *const[]){"--from", "1", "--to", "3", "--listen", "0", NULL});
    assert_int_equal(r->status, 0);
    assert_contains(r->out, "protocols daren, pace, pylontech, seplos, modbus");
    char head[400];
    snprintf(head, sizeof head,
             "# port: %s, protocol modbus, 115200 baud\nprotocol: modbus\npacks:\n", link_path);
    assert_contains(r->out, head);
    const uint8_t adrs[] = {1, 2};
    check_snippet(r->out, adrs, 2);
    assert_contains(r->out, "\n1       modbus       16 ");
    assert_contains(r->out, "\n2       modbus       16 ");
    assert_contains(r->out, "2 pack(s) found, 1 address(es) silent");
    assert_lacks(r->out, "warnings:");

    run_scan(r, (const char *const[]){"--from", "2", "--to", "2", "--listen", "0", "--json", NULL});
    assert_int_equal(r->status, 0);
    cJSON *doc = cJSON_Parse(r->out);
    assert_non_null(doc);
    assert_string_equal(cJSON_GetObjectItem(doc, "protocol")->valuestring, "modbus");
    check_modbus_row(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "addresses"), 0), 2);
    cJSON_Delete(doc);
    free(r);
}

/* Modbus slaves at 20-21 only: nothing at 1-4, exit 3; auto mode too. */
static void test_modbus_silent_bus(void **state)
{
    (void)state;
    start_sim("modbus", "20-21", NULL);
    struct proc_result *r = malloc(sizeof *r);
    run_scan(r, (const char *const[]){"--protocol", "modbus", "--from", "1", "--to", "4",
                                      "--timeout", "100", "--listen", "0", NULL});
    assert_int_equal(r->status, 3);
    assert_contains(r->out, "0 pack(s) found, 4 address(es) silent");
    assert_contains(r->out, "no pack answered at addresses 1..4");
    assert_lacks(r->out, "packs:");
    run_scan(r, (const char *const[]){"--from", "1", "--to", "2", "--timeout", "100", "--listen",
                                      "0", "--json", NULL});
    assert_int_equal(r->status, 3);
    cJSON *doc = cJSON_Parse(r->out);
    assert_non_null(doc);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "packs")), 0);
    assert_int_equal(cJSON_GetObjectItem(doc, "silent")->valueint, 2);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(doc, "protocol")));
    cJSON_Delete(doc);
    free(r);
}

/* A slave that answers with exception 02 is there, without values; the others are unharmed. */
static void test_modbus_exception(void **state)
{
    (void)state;
    start_sim("modbus", "1-4", (const char *const[]){"--fault", "rtn=2:3", NULL});
    struct proc_result *r = malloc(sizeof *r);
    run_scan(r, (const char *const[]){"--protocol", "modbus", "--from", "1", "--to", "4",
                                      "--listen", "0", NULL});
    assert_int_equal(r->status, 0);
    assert_contains(r->out, "\n3       modbus        -      -        -  ");
    assert_contains(r->out, "slave 3 answered with exception 02: illegal data address");
    assert_int_equal(count(r->out, "exception"), 1);
    assert_contains(r->out, "4 pack(s) found, 0 address(es) silent");
    const uint8_t adrs[] = {1, 2, 3, 4};
    check_snippet(r->out, adrs, 4);

    run_scan(r, (const char *const[]){"--protocol", "modbus", "--from", "2", "--to", "3",
                                      "--listen", "0", "--json", NULL});
    assert_int_equal(r->status, 0);
    cJSON *doc = cJSON_Parse(r->out);
    assert_non_null(doc);
    cJSON *rows = cJSON_GetObjectItem(doc, "addresses");
    check_modbus_row(cJSON_GetArrayItem(rows, 0), 2);
    cJSON *row = cJSON_GetArrayItem(rows, 1);
    assert_int_equal(cJSON_GetObjectItem(row, "address")->valueint, 3);
    assert_string_equal(cJSON_GetObjectItem(row, "status")->valuestring, "no_values");
    assert_string_equal(cJSON_GetObjectItem(row, "protocol")->valuestring, "modbus");
    assert_null(cJSON_GetObjectItem(row, "cells"));
    assert_non_null(strstr(cJSON_GetObjectItem(row, "notes")->valuestring,
                           "exception 02: illegal data address"));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "packs")), 2);
    cJSON_Delete(doc);
    free(r);
}

/* CRC errors: 2 of 3 answers at slave 3 (the mark of two packs on one address), 1 of 3 at slave
 * 2 (noise), every answer at slave 4 (garbled only: not counted as a pack). */
static void test_modbus_garbled(void **state)
{
    (void)state;
    start_sim("modbus", "1-4",
              (const char *const[]){"--fault", "checksum:3:2", "--fault", "checksum:3:3", "--fault",
                                    "checksum:2:2", "--fault", "checksum:4", NULL});
    struct proc_result *r = malloc(sizeof *r);
    run_scan(r, (const char *const[]){"--protocol", "modbus", "--from", "1", "--to", "4",
                                      "--listen", "0", NULL});
    assert_int_equal(r->status, 0);
    assert_contains(r->out, "warnings:\n");
    assert_contains(r->out, "address 3: answers are garbled or inconsistent (2 of 3 corrupted): "
                            "two packs may share this address; check their DIP switches");
    assert_contains(r->out, "address 2: 1 of 3 answers garbled: noise on the bus");
    assert_contains(r->out, "address 4: answers are garbled or inconsistent (3 of 3 corrupted)");
    assert_contains(r->out, "CRC error in the answer of slave 4");
    assert_contains(r->out, "  - { address: 0x03, id: pack3 }  # two packs may share this address");
    const uint8_t adrs[] = {1, 2, 3};
    check_snippet(r->out, adrs, 3);
    free(r);
}

/* ---- the simulator's shared address and other master, in process ---- */

struct server {
    struct sim *sim;
    pthread_t thread;
    volatile int stop;
    int rc, fd;
};

static void *serve(void *arg)
{
    struct server *sv = arg;
    sv->rc = sim_run(sv->sim, &sv->stop);
    return NULL;
}

static void server_start(struct server *sv, const struct sim_opts *o)
{
    memset(sv, 0, sizeof *sv);
    assert_int_equal(sim_new(o, &sv->sim), 0);
    sv->fd = open(sim_slave_path(sv->sim), O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(sv->fd >= 0);
    struct termios tio;
    assert_int_equal(tcgetattr(sv->fd, &tio), 0);
    cfmakeraw(&tio);
    assert_int_equal(tcsetattr(sv->fd, TCSANOW, &tio), 0);
    assert_int_equal(pthread_create(&sv->thread, NULL, serve, sv), 0);
}

static void server_stop(struct server *sv)
{
    sv->stop = 1;
    assert_int_equal(pthread_join(sv->thread, NULL), 0);
    assert_int_equal(sv->rc, 0);
    close(sv->fd);
    sim_free(sv->sim);
}

/* Reads for timeout_ms (or until a '\r' when until_eoi); returns the bytes read. */
static size_t read_for(int fd, char *buf, size_t cap, int timeout_ms, int until_eoi)
{
    size_t n = 0;
    long long deadline = proc_now_ms() + timeout_ms;
    while (n + 1 < cap) {
        long long left = deadline - proc_now_ms();
        if (left <= 0)
            break;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        ssize_t got = read(fd, buf + n, cap - 1 - n);
        if (got > 0)
            n += (size_t)got;
        if (until_eoi && n > 0 && buf[n - 1] == '\r')
            break;
    }
    buf[n] = '\0';
    return n;
}

/* Asks cid2 of the pack(s) at adr; returns s42_parse's verdict on the one frame that comes. */
static int ask(struct server *sv, const struct s42_variant *v, uint8_t cid2, uint8_t adr,
               struct s42_frame *f)
{
    char req[64], buf[S42_MAX_FRAME + 2];
    int n = s42_request(v, cid2, adr, req, sizeof req);
    assert_true(n > 0);
    assert_int_equal(write(sv->fd, req, (size_t)n), n);
    size_t got = read_for(sv->fd, buf, sizeof buf, 3000, 1);
    assert_true(got > 18 && buf[0] == '~' && buf[got - 1] == '\r');
    assert_null(memchr(buf + 1, '~', got - 1)); /* one frame: the two packs overlap exactly */
    return s42_parse(buf, got, f, NULL);
}

static void sim_opts_for(struct sim_opts *o, const char *addrs)
{
    sim_opts_default(o);
    o->variant = s42_variant_find("daren");
    o->naddresses = (size_t)sim_parse_addresses(addrs, o->addresses, SIM_MAX_PACKS);
    o->seed = 7;
    o->baud = 115200;
    o->turnaround_ms = 2;
    o->time_scale = 0;
}

/* Two of every three answers at a shared address collide and fail the checksum; the third is
 * clean and comes from each pack in turn, so both serials show. Other addresses are unharmed. */
static void test_sim_collide(void **state)
{
    (void)state;
    struct sim_opts o;
    struct server sv;
    struct s42_frame f;
    sim_opts_for(&o, "1-3");
    o.collide[o.ncollide++] = 3;
    server_start(&sv, &o);
    const struct s42_variant *v = o.variant;
    int garbled = 0, clean = 0;
    char serials[2][64] = {"", ""};
    for (int i = 1; i <= 6; i++) {
        int err = ask(&sv, v, S42_CID2_SYSPARAM, 3, &f); /* 0x47 carries the serial */
        if (i % 3 != 0) {
            assert_int_equal(err, -S42_E_CHKSUM);
            garbled++;
            continue;
        }
        assert_int_equal(err, 0);
        assert_int_equal(s42_check(&f, v, 3, NULL), 0);
        struct s42_identity id;
        s42_identity_init(&id);
        assert_int_equal(s42_decode_identity(v, S42_CID2_SYSPARAM, &f, &id, NULL), 0);
        snprintf(serials[clean++], sizeof serials[0], "%s", id.serial);
    }
    assert_int_equal(garbled, 4);
    assert_int_equal(clean, 2);
    assert_string_equal(serials[0], "SIM7-3b"); /* the second pack has its own serial */
    assert_string_equal(serials[1], "SIM7-3");
    /* the two packs are two models: their values differ too (answers 7..12: the 9th is the
     * second pack's, the 12th the first's) */
    struct sample second, first, model;
    for (int i = 7; i <= 12; i++) {
        int err = ask(&sv, v, S42_CID2_ANALOG, 3, &f);
        assert_int_equal(err, i % 3 ? -S42_E_CHKSUM : 0);
        if (i % 3 == 0)
            assert_int_equal(s42_decode_analog(v, &f, i == 9 ? &second : &first, NULL), 0);
    }
    fixture_wire_sample("daren", strtoull(SEED, NULL, 10), 3, &model);
    assert_int_equal(first.voltage_mv, model.voltage_mv);
    assert_int_equal(first.soc_cpct, model.soc_cpct);
    assert_true(second.voltage_mv != first.voltage_mv || second.soc_cpct != first.soc_cpct);
    for (int i = 0; i < 4; i++)
        assert_int_equal(ask(&sv, v, S42_CID2_ANALOG, 2, &f), 0);
    server_stop(&sv);

    sim_opts_for(&o, "1-3");
    o.collide[o.ncollide++] = 4; /* not one of the addresses */
    struct sim *bad = NULL;
    assert_int_equal(sim_new(&o, &bad), -EINVAL);
    assert_null(bad);
}

/* With chatter, requests to our packs appear on the bus unasked, each followed by the answer. */
static void test_sim_chatter(void **state)
{
    (void)state;
    struct sim_opts o;
    struct server sv;
    struct s42_frame f;
    char buf[8192];
    sim_opts_for(&o, "4,5");
    o.chatter_ms = 100;
    server_start(&sv, &o);
    size_t n = read_for(sv.fd, buf, sizeof buf, 450, 0);
    server_stop(&sv);
    int requests = 0, answers = 0;
    for (char *p = buf, *end; (p = memchr(p, '~', n - (size_t)(p - buf))) != NULL; p = end + 1) {
        end = memchr(p, '\r', n - (size_t)(p - buf));
        if (end == NULL)
            break;
        assert_int_equal(s42_parse(p, (size_t)(end - p + 1), &f, NULL), 0);
        assert_true(f.adr == 4 || f.adr == 5);
        if (f.cid2 == S42_CID2_ANALOG)
            requests++;
        else if (f.cid2 == 0)
            answers++;
    }
    assert_true(requests >= 3 && requests <= 5);
    assert_true(answers >= requests - 1 && answers <= requests);
}

static void expect_status(char **argv, int status, const char *err)
{
    struct proc_result *r = malloc(sizeof *r);
    assert_int_equal(proc_run(argv, NULL, 10000, r), 0);
    if (r->status != status)
        fail_msg("%s %s: exit %d, want %d\n%s", argv[1], argv[2], r->status, status, r->err);
    if (err != NULL)
        assert_contains(r->err, err);
    free(r);
}

static void test_usage_errors(void **state)
{
    (void)state;
    char *B = (char *)BMSFLEET_BIN;
    char *noport[] = {B, "scan", NULL};
    expect_status(noport, 2, "scan: --port is required");
    char *bogus[] = {B, "scan", "--port", "/dev/null", "--bogus", NULL};
    expect_status(bogus, 2, "usage: bmsfleet scan");
    char *proto[] = {B, "scan", "--port", "/dev/null", "--protocol", "modbus2", NULL};
    expect_status(proto, 2, "unknown protocol 'modbus2'");
    char *mb0[] = {B, "scan", "--port", "/dev/null", "--protocol", "modbus", "--from", "0", NULL};
    expect_status(mb0, 2, "Modbus slave addresses are 1..247 (asked 0..16)");
    char *mb248[] = {B, "scan", "--port", "/dev/null", "--protocol", "modbus", "--to", "248", NULL};
    expect_status(mb248, 2, "Modbus slave addresses are 1..247 (asked 1..248)");
    char *mbnone[] = {B,          "scan", "--port", "/dev/ttyBMSFLEETNONE", "--protocol", "modbus",
                      "--listen", "0",    NULL};
    expect_status(mbnone, 1, "cannot open /dev/ttyBMSFLEETNONE: ");
    char *range[] = {B, "scan", "--port", "/dev/null", "--from", "9", "--to", "3", NULL};
    expect_status(range, 2, "--from 9 is above --to 3");
    char *to[] = {B, "scan", "--port", "/dev/null", "--to", "255", NULL};
    expect_status(to, 2, "--to takes an address 0..254");
    char *from[] = {B, "scan", "--port", "/dev/null", "--from", "x", NULL};
    expect_status(from, 2, "--from takes an address 0..254");
    char *tmo[] = {B, "scan", "--port", "/dev/null", "--timeout", "5", NULL};
    expect_status(tmo, 2, "--timeout takes");
    char *lis[] = {B, "scan", "--port", "/dev/null", "--listen", "-1", NULL};
    expect_status(lis, 2, "--listen takes");
    char *baud[] = {B, "scan", "--port", "/dev/null", "--baud", "9601", NULL};
    expect_status(baud, 2, "unsupported baud rate '9601'");
    char *extra[] = {B, "scan", "--port", "/dev/null", "stray", NULL};
    expect_status(extra, 2, "unexpected argument 'stray'");
    char *missing[] = {B, "scan", "--port", "/dev/ttyBMSFLEETNONE", "--listen", "0", NULL};
    expect_status(missing, 1, "cannot open /dev/ttyBMSFLEETNONE: ");
    char *help[] = {B, "scan", "--help", NULL};
    expect_status(help, 0, NULL);
    /* the simulator's new options are checked too */
    char *collide[] = {B,     "simulate",  "--protocol", "daren", "--addresses",
                       "1-4", "--collide", "9",          NULL};
    expect_status(collide, 2, "--collide 9 is not one of --addresses 1-4");
    char *chatter[] = {B,   "simulate",  "--protocol", "daren", "--addresses",
                       "1", "--chatter", "-5",         NULL};
    expect_status(chatter, 2, "--chatter takes");
}

/* ---- stable names: /dev/serial/by-id ---- */

/* devname_by_id finds the link to the simulator's pty among decoys in a by-id directory of our
 * own; the real binary, on a pty no udev has named, says so (null in --json). */
static void test_by_id(void **state)
{
    (void)state;
    start_sim("daren", "1", NULL);
    char byid[320], pts[300], want[400], decoy[400], dangling[400], buf[512];
    snprintf(byid, sizeof byid, "%s/by-id", tmpdir);
    assert_int_equal(mkdir(byid, 0755), 0);
    assert_non_null(realpath(link_path, pts)); /* /dev/pts/N */
    snprintf(want, sizeof want, "%s/usb-FTDI_FT232R_USB_UART_A10TEST-if00-port0", byid);
    snprintf(decoy, sizeof decoy, "%s/usb-1a86_USB_Serial-if00-port0", byid);
    snprintf(dangling, sizeof dangling, "%s/usb-Prolific_gone-if00-port0", byid);
    assert_int_equal(symlink(pts, want), 0);
    assert_int_equal(symlink("/dev/null", decoy), 0);
    assert_int_equal(symlink("/dev/ttyBMSFLEETNONE", dangling), 0);

    /* by the pty, by the simulator's link to it, by the by-id link itself */
    assert_int_equal(devname_by_id(byid, pts, buf, sizeof buf), 0);
    assert_string_equal(buf, want);
    assert_int_equal(devname_by_id(byid, link_path, buf, sizeof buf), 0);
    assert_string_equal(buf, want);
    assert_int_equal(devname_by_id(byid, want, buf, sizeof buf), 0);
    assert_string_equal(buf, want);
    /* two links to one device: the first by name */
    char second[400];
    snprintf(second, sizeof second, "%s/usb-FTDI_A-if00-port0", byid);
    assert_int_equal(symlink(link_path, second), 0);
    assert_int_equal(devname_by_id(byid, pts, buf, sizeof buf), 0);
    assert_string_equal(buf, second);
    unlink(second);
    /* no link, no directory, no device; a buffer too small is left alone */
    assert_int_equal(devname_by_id(byid, "/dev/zero", buf, sizeof buf), -ENOENT);
    char none[340];
    snprintf(none, sizeof none, "%s/none", tmpdir);
    assert_int_equal(devname_by_id(none, pts, buf, sizeof buf), -ENOENT);
    assert_int_equal(devname_by_id(byid, "/dev/ttyBMSFLEETNONE", buf, sizeof buf), -ENOENT);
    char small[16] = "untouched";
    assert_int_equal(devname_by_id(byid, pts, small, sizeof small), -ENAMETOOLONG);
    assert_string_equal(small, "untouched");
    unlink(want);
    unlink(decoy);
    unlink(dangling);
    rmdir(byid);

    /* the binary: a pty has no /dev/serial/by-id name */
    struct proc_result *r = malloc(sizeof *r);
    run_scan(r, (const char *const[]){"--protocol", "daren", "--from", "1", "--to", "1", "--listen",
                                      "0", "--json", NULL});
    assert_int_equal(r->status, 0);
    cJSON *doc = cJSON_Parse(r->out);
    assert_non_null(doc);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(doc, "by_id")));
    cJSON_Delete(doc);
    run_scan(r, (const char *const[]){"--protocol", "daren", "--from", "1", "--to", "1", "--listen",
                                      "0", NULL});
    assert_int_equal(r->status, 0);
    assert_contains(r->out, "stable name: none in /dev/serial/by-id");
    assert_lacks(r->out, "\ndevice: "); /* the snippet names no device it cannot vouch for */
    free(r);
}

/* scan --listen-only beside the simulator as the bus master: the master's protocol, the
 * addresses it asks with their commands, their answers, and a `mode: listen` snippet. */
static void test_listen_only(void **state)
{
    (void)state;
    start_sim("pace", "1-3", (const char *const[]){"--master", "200", NULL});
    struct proc_result *r = malloc(sizeof *r);
    run_scan(r, (const char *const[]){"--listen-only", "--listen", "1500", NULL});
    assert_int_equal(r->status, 0);
    assert_contains(r->out, "writing nothing");
    assert_contains(r->out, "a master polls in pace: 3 address(es), a round about every 0.");
    assert_contains(r->out, " 0 unanswered, 0 damaged\n");
    for (int adr = 1; adr <= 3; adr++) {
        char row[64];
        snprintf(row, sizeof row, "\n%-7d ", adr);
        assert_contains(r->out, row);
    }
    assert_contains(r->out, "0x42 0x44");
    assert_contains(r->out, "protocol: pace\nmode: listen\n");
    const uint8_t adrs[] = {1, 2, 3};
    check_snippet(r->out, adrs, 3);
    stop_sim(NULL);

    start_sim("modbus", "2,5", (const char *const[]){"--master", "200", NULL});
    run_scan(r, (const char *const[]){"--listen-only", "--listen", "1500", "--json", NULL});
    assert_int_equal(r->status, 0);
    cJSON *doc = cJSON_Parse(r->out);
    assert_non_null(doc);
    cJSON *m = cJSON_GetObjectItem(doc, "master");
    assert_string_equal(cJSON_GetObjectItem(m, "protocol")->valuestring, "modbus");
    cJSON *addrs = cJSON_GetObjectItem(m, "addresses");
    assert_int_equal(cJSON_GetArraySize(addrs), 2);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(addrs, 1), "address")->valueint, 5);
    assert_true(cJSON_GetObjectItem(cJSON_GetArrayItem(addrs, 1), "samples")->valueint >= 3);
    cJSON_Delete(doc);
    stop_sim(NULL);

    /* a bus nobody polls: nothing heard, exit 3 */
    start_sim("pace", "1", NULL);
    run_scan(r, (const char *const[]){"--listen-only", "--listen", "500", NULL});
    assert_int_equal(r->status, 3);
    assert_contains(r->out, "no master heard: nobody polls this bus");
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_daren_bank, stop_sim),
        cmocka_unit_test_prestate_setup_teardown(test_auto, NULL, stop_sim, "pace"),
        cmocka_unit_test_prestate_setup_teardown(test_auto, NULL, stop_sim, "pylontech"),
        cmocka_unit_test_prestate_setup_teardown(test_auto, NULL, stop_sim, "seplos"),
        cmocka_unit_test_teardown(test_collision, stop_sim),
        cmocka_unit_test_teardown(test_silent_bus, stop_sim),
        cmocka_unit_test_teardown(test_other_master, stop_sim),
        cmocka_unit_test_teardown(test_other_master_and_shared_address, stop_sim),
        cmocka_unit_test_teardown(test_quiet_listen_json, stop_sim),
        cmocka_unit_test_teardown(test_modbus_bank, stop_sim),
        cmocka_unit_test_teardown(test_auto_modbus, stop_sim),
        cmocka_unit_test_teardown(test_modbus_silent_bus, stop_sim),
        cmocka_unit_test_teardown(test_modbus_exception, stop_sim),
        cmocka_unit_test_teardown(test_modbus_garbled, stop_sim),
        cmocka_unit_test_teardown(test_usage_errors, stop_sim),
        cmocka_unit_test_teardown(test_by_id, stop_sim),
        cmocka_unit_test(test_sim_collide),
        cmocka_unit_test(test_sim_chatter),
        cmocka_unit_test_teardown(test_listen_only, stop_sim),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
