/* test_config: the YAML configuration and the environment mode of the replaced program.
 *
 * Good files load with every value and default in place; bad files are a table of YAML text and
 * the exact error lines each must give (whole strings, positions included); the environment
 * mode runs on a fake getenv; `bmsfleet check` runs as the real binary. */
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "config.h"
#include "proc.h"
#include "s42.h"

#ifndef BMSFLEET_SOURCE_DIR
#error "BMSFLEET_SOURCE_DIR must be defined"
#endif
#ifndef BMSFLEET_BIN
#error "BMSFLEET_BIN must be defined"
#endif

/* The variables a load may read from the real environment: cleared before every test. */
static const char *const real_env[] = {
    "BMSFLEET_MQTT_PASSWORD", "MQTT_PASSWORD", "BMS_PORT",  "BMS_SLAVE_ID",
    "READ_INTERVAL",          "MQTT_HOST",     "MQTT_PORT", "MQTT_USER",
    "MQTT_TOPIC_PREFIX",      "DEVICE_ID",     "DEBUG_MODE", "CREDENTIALS_DIRECTORY"};

static char tmpdir[256];

static int clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof real_env / sizeof real_env[0]; i++)
        unsetenv(real_env[i]);
    return 0;
}

static int setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bmsfleet-test-config-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    return clear_env(state);
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static const char issue4_example[] =
    "node:\n"
    "  id: offgrid-cabin\n"
    "log:\n"
    "  level: info\n"
    "ports:\n"
    "  - name: rack-a\n"
    "    device: /dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0\n"
    "    protocol: daren          # daren | pace | pylontech | seplos | modbus\n"
    "    baud: 9600\n"
    "    timeout_ms: 1000\n"
    "    interval_s: 30\n"
    "    packs:\n"
    "      - { address: 0x01, id: pack1, bank: house }\n"
    "      - { address: 0x02, id: pack2, bank: house }\n"
    "  - name: rack-b\n"
    "    device: /dev/ttyUSB1\n"
    "    protocol: pace\n"
    "    packs:\n"
    "      - { address: 1, id: pack3, bank: house }\n"
    "banks:\n"
    "  - id: house\n"
    "    name: House bank\n"
    "storage:\n"
    "  path: /var/lib/bmsfleet/history.db\n"
    "  retention:\n"
    "    raw_days: 30\n"
    "    minute_days: 365\n"
    "mqtt:\n"
    "  host: 127.0.0.1\n"
    "  port: 1883\n"
    "  username: bms\n"
    "  password_file: /etc/bmsfleet/mqtt.pass\n"
    "  base_topic: bmsfleet\n"
    "  discovery_prefix: homeassistant\n";

static struct config *load_ok(const char *yaml)
{
    struct config_errors *e = malloc(sizeof *e);
    struct config *c = NULL;
    int rc = config_load_string("test.yaml", yaml, &c, e);
    for (size_t i = 0; i < e->n; i++)
        print_error("unexpected: %s\n", e->msg[i]);
    assert_int_equal(rc, 0);
    assert_int_equal(e->n, 0);
    assert_non_null(c);
    free(e);
    return c;
}

/* The issue-4 example and config.example.yaml describe the same fleet. */
static void check_example_fleet(const struct config *c)
{
    assert_string_equal(c->node_id, "offgrid-cabin");
    assert_int_equal(c->log_level, LOG_INFO);
    assert_true(c->nports >= 2); /* config.example.yaml adds the wirings (see below) */
    const struct config_port *a = &c->ports[0], *b = &c->ports[1];
    assert_string_equal(a->name, "rack-a");
    assert_string_equal(a->device,
                        "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0");
    assert_int_equal(a->protocol, CONFIG_PROTO_DAREN);
    assert_int_equal(a->protocol, CONFIG_PROTO_DAREN);
    assert_int_equal(a->baud, 9600);
    assert_int_equal(a->timeout_ms, 1000);
    assert_int_equal(a->gap_ms, 50);
    assert_int_equal(a->interval_s, 30);
    assert_int_equal(a->rs485, 0);
    assert_int_equal(a->npacks, 2);
    assert_int_equal(a->packs[0].address, 1);
    assert_string_equal(a->packs[0].id, "pack1");
    assert_string_equal(a->packs[0].name, "pack1");
    assert_string_equal(a->packs[0].bank, "house");
    assert_string_equal(a->packs[0].serial, "");
    assert_int_equal(a->packs[1].address, 2);
    assert_string_equal(a->packs[1].id, "pack2");
    assert_string_equal(b->name, "rack-b");
    assert_string_equal(b->device, "/dev/ttyUSB1");
    assert_int_equal(b->protocol, CONFIG_PROTO_PACE);
    assert_int_equal(b->protocol, CONFIG_PROTO_PACE);
    assert_int_equal(b->baud, 9600); /* defaults */
    assert_int_equal(b->timeout_ms, 1000);
    assert_int_equal(b->interval_s, 30);
    assert_int_equal(b->npacks, 1);
    assert_int_equal(b->packs[0].address, 1);
    assert_string_equal(b->packs[0].id, "pack3");
    assert_int_equal(c->nbanks, 1);
    assert_string_equal(c->banks[0].id, "house");
    assert_string_equal(c->banks[0].name, "House bank");
    assert_string_equal(c->storage.path, "/var/lib/bmsfleet/history.db");
    assert_int_equal(c->storage.raw_days, 30);
    assert_int_equal(c->storage.minute_days, 365);
    assert_int_equal(c->storage.commit_interval_s, 5);
    const struct config_mqtt *q = &c->mqtt;
    assert_int_equal(q->enabled, 1);
    assert_string_equal(q->host, "127.0.0.1");
    assert_int_equal(q->port, 1883);
    assert_string_equal(q->username, "bms");
    assert_string_equal(q->password, "from-env"); /* the environment wins over the file */
    assert_string_equal(q->base_topic, "bmsfleet");
    assert_string_equal(q->discovery_prefix, "homeassistant");
    assert_string_equal(q->client_id, "bmsfleet-offgrid-cabin");
    assert_int_equal(q->keepalive_s, 60);
    assert_int_equal(q->qos, 1);
    assert_int_equal(q->compat, 0);
    assert_int_equal(q->tls_insecure, 0);
}

/* Both files name /etc/bmsfleet/mqtt.pass, which a test machine does not have: the password
 * comes from the environment, which is read first, so the file is not opened. */
static void test_issue4_example(void **state)
{
    (void)state;
    setenv("MQTT_PASSWORD", "from-env", 1);
    struct config *c = load_ok(issue4_example);
    unsetenv("MQTT_PASSWORD");
    check_example_fleet(c);
    assert_string_equal(c->mqtt.password_file, "/etc/bmsfleet/mqtt.pass");
    assert_string_equal(c->source, "test.yaml");
    assert_string_equal(c->node_name, "offgrid-cabin");
    assert_int_equal(c->ports[0].line, 6);
    assert_int_equal(c->ports[0].packs[1].line, 14);
    config_free(c);
}

static void test_config_example_file(void **state)
{
    (void)state;
    struct config_errors *e = malloc(sizeof *e);
    struct config *c = NULL;
    setenv("BMSFLEET_MQTT_PASSWORD", "from-env", 1);
    setenv("MQTT_PASSWORD", "not-this-one", 1);
    int rc = config_load_file(BMSFLEET_SOURCE_DIR "/config.example.yaml", &c, e);
    unsetenv("BMSFLEET_MQTT_PASSWORD");
    unsetenv("MQTT_PASSWORD");
    for (size_t i = 0; i < e->n; i++)
        print_error("unexpected: %s\n", e->msg[i]);
    assert_int_equal(rc, 0);
    check_example_fleet(c);
    assert_string_equal(c->node_name, "Off-grid cabin");
    assert_string_equal(c->source, BMSFLEET_SOURCE_DIR "/config.example.yaml");
    /* shipped with the password file commented out, so that it checks before it is filled in */
    assert_string_equal(c->mqtt.password_file, "");
    /* the three wirings of the README, each a port that loads */
    assert_int_equal(c->nports, 5);
    assert_string_equal(c->ports[2].device, "tcp://192.168.1.60:4196");
    assert_int_equal(c->ports[2].connect_timeout_ms, 3000);
    assert_int_equal(c->ports[3].packs[2].poll, CONFIG_POLL_VIA_MASTER);
    assert_int_equal(c->ports[3].master, 1);
    assert_int_equal(c->ports[4].mode, CONFIG_MODE_LISTEN);
    assert_int_equal(c->ports[4].interval_s, 10);
    assert_int_equal(c->nwarnings, 0);
    config_free(c);
    free(e);
}

static int id_ok(const char *s)
{
    if (!*s || strlen(s) > 63)
        return 0;
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
            return 0;
    }
    return 1;
}

static void test_defaults(void **state)
{
    (void)state;
    struct config *c = load_ok("ports:\n  - device: /dev/ttyUSB0\n    packs: [{ address: 5 }]\n");
    assert_true(id_ok(c->node_id)); /* the host name */
    assert_string_equal(c->node_name, c->node_id);
    assert_int_equal(c->log_level, LOG_INFO);
    const struct config_port *p = &c->ports[0];
    assert_string_equal(p->name, "port1");
    assert_int_equal(p->protocol, CONFIG_PROTO_DAREN);
    assert_int_equal(p->protocol, CONFIG_PROTO_DAREN);
    assert_int_equal(p->baud, 9600);
    assert_int_equal(p->timeout_ms, 1000);
    assert_int_equal(p->gap_ms, 50);
    assert_int_equal(p->interval_s, 30);
    assert_int_equal(p->rs485, 0);
    assert_int_equal(p->rs485_delay_before_us, 0);
    assert_int_equal(p->rs485_delay_after_us, 0);
    assert_string_equal(p->packs[0].id, "port1-5");
    assert_string_equal(p->packs[0].name, "port1-5");
    assert_string_equal(p->packs[0].bank, "bank");
    assert_int_equal(c->nbanks, 1);
    assert_string_equal(c->banks[0].id, "bank");
    assert_string_equal(c->storage.path, "/var/lib/bmsfleet/history.db");
    assert_int_equal(c->storage.raw_days, 30);
    assert_int_equal(c->storage.minute_days, 365);
    assert_int_equal(c->storage.commit_interval_s, 5);
    assert_int_equal(c->mqtt.enabled, 0);
    assert_string_equal(c->mqtt.host, "127.0.0.1");
    assert_int_equal(c->mqtt.port, 1883);
    assert_int_equal(c->mqtt.keepalive_s, 60);
    assert_int_equal(c->mqtt.qos, 1);
    assert_string_equal(c->mqtt.base_topic, "bmsfleet");
    assert_string_equal(c->mqtt.discovery_prefix, "homeassistant");
    config_free(c);
}

/* Hex everywhere an integer goes, every bool spelling, quotes, flow maps, the first bank as the
 * default bank, modbus without a variant, an empty mqtt section, TLS moving the port to 8883. */
static void test_value_forms(void **state)
{
    (void)state;
    struct config *c = load_ok("node: { id: n1, name: \"Node one\" }\n"
                               "log: { level: debug }\n"
                               "ports:\n"
                               "  - name: bus\n"
                               "    device: '/dev/ttyS0'\n"
                               "    protocol: modbus\n"
                               "    baud: 0x4B00\n"
                               "    timeout_ms: 0x3E8\n"
                               "    gap_ms: 0\n"
                               "    rs485: yes\n"
                               "    rs485_delay_before_us: 100\n"
                               "    packs:\n"
                               "      - address: 0x0a\n"
                               "        serial: \"SN 123\"\n"
                               "      - { address: 247, id: last, bank: garage }\n"
                               "  - device: /dev/ttyS1\n"
                               "    protocol: seplos\n"
                               "    rs485: On\n"
                               "    packs: [{ address: 0 }]\n"
                               "banks:\n"
                               "  - id: house\n"
                               "  - { id: garage, name: Garage }\n"
                               "storage:\n"
                               "mqtt:\n"
                               "  tls:\n"
                               "    ca_file: /etc/ssl/ca.pem\n"
                               "    insecure: FALSE\n");
    assert_string_equal(c->node_name, "Node one");
    assert_int_equal(c->log_level, LOG_DEBUG);
    const struct config_port *p = &c->ports[0];
    assert_string_equal(p->device, "/dev/ttyS0");
    assert_int_equal(p->protocol, CONFIG_PROTO_MODBUS);
    assert_int_equal(p->baud, 19200);
    assert_int_equal(p->timeout_ms, 1000);
    assert_int_equal(p->gap_ms, 0);
    assert_int_equal(p->rs485, 1);
    assert_int_equal(p->rs485_delay_before_us, 100);
    assert_int_equal(p->packs[0].address, 10);
    assert_string_equal(p->packs[0].id, "bus-10");
    assert_string_equal(p->packs[0].serial, "SN 123");
    assert_string_equal(p->packs[0].bank, "house");
    assert_string_equal(p->packs[1].bank, "garage");
    assert_string_equal(c->ports[1].name, "port2");
    assert_int_equal(c->ports[1].protocol, CONFIG_PROTO_SEPLOS);
    assert_int_equal(c->ports[1].rs485, 1);
    assert_string_equal(c->ports[1].packs[0].id, "port2-0");
    assert_string_equal(c->banks[0].name, "house");
    assert_string_equal(c->banks[1].name, "Garage");
    assert_string_equal(c->storage.path, "/var/lib/bmsfleet/history.db");
    assert_int_equal(c->mqtt.enabled, 1);
    assert_int_equal(c->mqtt.port, 8883);
    assert_string_equal(c->mqtt.tls_ca_file, "/etc/ssl/ca.pem");
    assert_string_equal(c->mqtt.client_id, "bmsfleet-n1");
    config_free(c);
}

static void test_compat_defaults(void **state)
{
    (void)state;
    struct config *c = load_ok("node: { id: cabin }\n"
                               "ports: [{ device: /dev/ttyUSB0, packs: [{ address: 1 }] }]\n"
                               "mqtt: { compat: true, discovery_prefix: ha }\n");
    assert_int_equal(c->mqtt.compat, 1);
    assert_string_equal(c->mqtt.compat_device_id, "cabin");
    assert_string_equal(c->mqtt.compat_prefix, "ha");
    config_free(c);
}

static void test_password_file(void **state)
{
    (void)state;
    char pass[300], yaml[600];
    snprintf(pass, sizeof pass, "%s/mqtt.pass", tmpdir);
    write_file(pass, "s3cret pass\nsecond line\n");
    snprintf(yaml, sizeof yaml,
             "ports: [{ device: /dev/ttyUSB0, packs: [{ address: 1 }] }]\n"
             "mqtt:\n  password_file: %s\n",
             pass);
    struct config *c = load_ok(yaml);
    assert_string_equal(c->mqtt.password, "s3cret pass");
    config_free(c);

    write_file(pass, "no-newline");
    c = load_ok(yaml);
    assert_string_equal(c->mqtt.password, "no-newline");
    config_free(c);

    setenv("MQTT_PASSWORD", "env-pass", 1);
    c = load_ok(yaml);
    unsetenv("MQTT_PASSWORD");
    assert_string_equal(c->mqtt.password, "env-pass");
    config_free(c);

    write_file(pass, "\n");
    struct config_errors *e = malloc(sizeof *e);
    c = NULL;
    assert_int_equal(config_load_string("test.yaml", yaml, &c, e), -EINVAL);
    assert_null(c);
    assert_int_equal(e->n, 1);
    char want[400];
    snprintf(want, sizeof want, "test.yaml:3:18: password_file %s is empty", pass);
    assert_string_equal(e->msg[0], want);
    free(e);
}

/* systemd's LoadCredential=mqtt.pass:FILE: the password comes from $CREDENTIALS_DIRECTORY
 * when neither the environment nor password_file gives one; those two still win. */
static void test_password_credential(void **state)
{
    (void)state;
    char cred_dir[300], cred[320], pass[300], yaml[600];
    snprintf(cred_dir, sizeof cred_dir, "%s/credentials", tmpdir);
    assert_int_equal(mkdir(cred_dir, 0700), 0);
    snprintf(cred, sizeof cred, "%s/mqtt.pass", cred_dir);
    write_file(cred, "from-credential\n");
    assert_int_equal(chmod(cred, 0400), 0); /* as systemd leaves it */
    const char *plain = "ports: [{ device: /dev/ttyUSB0, packs: [{ address: 1 }] }]\n"
                        "mqtt:\n  host: broker\n";
    setenv("CREDENTIALS_DIRECTORY", cred_dir, 1);
    struct config *c = load_ok(plain);
    assert_string_equal(c->mqtt.password, "from-credential");
    assert_string_equal(c->mqtt.password_file, ""); /* nothing for `check` to print */
    assert_int_equal(c->nwarnings, 0);
    config_free(c);

    setenv("MQTT_PASSWORD", "env-pass", 1);
    c = load_ok(plain);
    unsetenv("MQTT_PASSWORD");
    assert_string_equal(c->mqtt.password, "env-pass");
    config_free(c);

    snprintf(pass, sizeof pass, "%s/mqtt-file.pass", tmpdir);
    write_file(pass, "from-file\n");
    snprintf(yaml, sizeof yaml,
             "ports: [{ device: /dev/ttyUSB0, packs: [{ address: 1 }] }]\n"
             "mqtt:\n  password_file: %s\n",
             pass);
    c = load_ok(yaml);
    assert_string_equal(c->mqtt.password, "from-file");
    config_free(c);

    /* the unit's fallback when the file is missing (SetCredential=mqtt.pass:\n), or an empty
     * file: no password, no error */
    assert_int_equal(chmod(cred, 0600), 0);
    write_file(cred, "\n");
    c = load_ok(plain);
    assert_string_equal(c->mqtt.password, "");
    config_free(c);
    write_file(cred, "");
    c = load_ok(plain);
    assert_string_equal(c->mqtt.password, "");
    config_free(c);
    /* a credential that is no password is an error that names it */
    char longpw[200];
    memset(longpw, 'x', sizeof longpw - 1);
    longpw[sizeof longpw - 1] = '\0';
    write_file(cred, longpw);
    struct config_errors *e = malloc(sizeof *e);
    c = NULL;
    assert_int_equal(config_load_string("test.yaml", plain, &c, e), -EINVAL);
    char want[400];
    snprintf(want, sizeof want, "test.yaml: the password in %s is too long: at most 127 characters",
             cred);
    assert_int_equal(e->n, 1);
    assert_string_equal(e->msg[0], want);
    free(e);

    /* no such credential, or no credentials at all: no password, no error */
    unlink(cred);
    c = load_ok(plain);
    assert_string_equal(c->mqtt.password, "");
    config_free(c);
    unsetenv("CREDENTIALS_DIRECTORY");
    c = load_ok(plain);
    assert_string_equal(c->mqtt.password, "");
    config_free(c);
    rmdir(cred_dir);
}

/* A password file others can read loads with a warning; a private one without. */
static void test_password_file_mode(void **state)
{
    (void)state;
    char pass[300], yaml[600], want[1200];
    snprintf(pass, sizeof pass, "%s/mqtt.pass", tmpdir);
    write_file(pass, "s3cret\n");
    snprintf(yaml, sizeof yaml,
             "ports: [{ device: /dev/ttyUSB0, packs: [{ address: 1 }] }]\n"
             "mqtt:\n  password_file: %s\n",
             pass);
    const mode_t modes[] = {0644, 0640, 0604, 0600, 0400};
    const int warned[] = {1, 1, 1, 0, 0};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        assert_int_equal(chmod(pass, modes[i]), 0);
        struct config *c = load_ok(yaml);
        assert_string_equal(c->mqtt.password, "s3cret");
        assert_int_equal(c->nwarnings, (size_t)warned[i]);
        if (warned[i]) {
            snprintf(want, sizeof want,
                     "test.yaml:3:18: warning: password_file %s can be read by group or others "
                     "(mode %04o): chmod 600 it (or 640 with a group only the daemon is in)",
                     pass, (unsigned)modes[i]);
            assert_string_equal(c->warnings[0], want);
        }
        config_free(c);
    }
}

/* Not a regular file (a FIFO would block the start forever), or a NUL in the password: errors,
 * at once. */
static void test_password_file_not_regular(void **state)
{
    (void)state;
    char fifo[300], pass[300], yaml[1400], want[700];
    snprintf(fifo, sizeof fifo, "%s/pass.fifo", tmpdir);
    snprintf(pass, sizeof pass, "%s/nul.pass", tmpdir);
    unlink(fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    FILE *f = fopen(pass, "w");
    assert_non_null(f);
    assert_int_equal(fwrite("abc\0def\n", 1, 8, f), 8);
    fclose(f);
    const char *paths[] = {fifo, "/dev/null", pass};
    for (size_t i = 0; i < 3; i++) {
        snprintf(yaml, sizeof yaml,
                 "ports: [{ device: /dev/ttyUSB0, packs: [{ address: 1 }] }]\n"
                 "mqtt:\n  password_file: %s\n",
                 paths[i]);
        struct config_errors *e = malloc(sizeof *e);
        struct config *c = NULL;
        assert_int_equal(config_load_string("test.yaml", yaml, &c, e), -EINVAL);
        assert_null(c);
        assert_int_equal(e->n, 1);
        if (i < 2)
            snprintf(want, sizeof want, "test.yaml:3:18: password_file %s is not a regular file",
                     paths[i]);
        else
            snprintf(want, sizeof want,
                     "test.yaml:3:18: password_file %s holds a NUL byte in its first line", pass);
        assert_string_equal(e->msg[0], want);
        free(e);
    }
    unlink(fifo);
}

/* ---- bad configurations ---- */

#define PORT  "ports:\n  - name: a\n    device: /dev/ttyUSB0\n" /* lines 1-3 */
#define PACK1 "    packs: [{ address: 1 }]\n"
#define X16   "xxxxxxxxxxxxxxxx"

struct bad {
    const char *yaml;
    const char *errors; /* every line, in order, joined with '\n' */
};

static const struct bad bad_configs[] = {
    /* keys and sections */
    {PORT "    timout_ms: 5\n" PACK1,
     "test.yaml:4:5: unknown key 'timout_ms' in port; did you mean 'timeout_ms'?"},
    {PORT "    colour: red\n" PACK1, "test.yaml:4:5: unknown key 'colour' in port"},
    {PORT PACK1 "mqqt:\n  host: x\n",
     "test.yaml:5:1: unknown section 'mqqt'; did you mean 'mqtt'?"},
    {PORT PACK1 "weather: sunny\n", "test.yaml:5:1: unknown section 'weather'"},
    {PORT PACK1 "storage:\n  retention:\n    raw_day: 3\n",
     "test.yaml:7:5: unknown key 'raw_day' in storage.retention; did you mean 'raw_days'?"},
    {PORT PACK1 "mqtt:\n  hots: x\n",
     "test.yaml:6:3: unknown key 'hots' in mqtt; did you mean 'host'?"},
    {PORT "    baud: 9600\n    baud: 19200\n" PACK1,
     "test.yaml:5:5: 'baud' is already set at line 4"},
    /* enums and numbers */
    {PORT "    protocol: jbd\n" PACK1,
     "test.yaml:4:15: protocol must be one of daren, pace, pylontech, seplos, modbus, not 'jbd'"},
    {PORT "    baud: 9601\n" PACK1,
     "test.yaml:4:11: baud must be one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, "
     "not '9601'"},
    {PORT "    timeout_ms: abc\n" PACK1,
     "test.yaml:4:17: timeout_ms must be an integer from 10 to 60000, not 'abc'"},
    {PORT "    gap_ms: -5\n" PACK1,
     "test.yaml:4:13: gap_ms must be an integer from 0 to 10000, not '-5'"},
    {PORT "    interval_s: 86401\n" PACK1,
     "test.yaml:4:17: interval_s must be an integer from 1 to 86400, not '86401'"},
    {PORT "    interval_s: 30s\n" PACK1,
     "test.yaml:4:17: interval_s must be an integer from 1 to 86400, not '30s'"},
    {PORT "    timeout_ms: 12.5\n" PACK1,
     "test.yaml:4:17: timeout_ms must be an integer from 10 to 60000, not '12.5'"},
    {PORT "    timeout_ms: 1e3\n" PACK1,
     "test.yaml:4:17: timeout_ms must be an integer from 10 to 60000, not '1e3'"},
    {PORT "    timeout_ms: \" 100\"\n" PACK1,
     "test.yaml:4:17: timeout_ms must be an integer from 10 to 60000, not ' 100'"},
    {PORT "    timeout_ms:\n" PACK1,
     "test.yaml:4:5: timeout_ms must be an integer from 10 to 60000, not empty"},
    {PORT "    rs485: maybe\n" PACK1,
     "test.yaml:4:12: rs485 must be true or false (or yes/no, on/off), not 'maybe'"},
    {PORT PACK1 "log:\n  level: verbose\n",
     "test.yaml:6:10: level must be one of error, warn, info, debug, not 'verbose'"},
    {PORT PACK1 "mqtt:\n  port: 70000\n",
     "test.yaml:6:9: port must be an integer from 1 to 65535, not '70000'"},
    {PORT PACK1 "mqtt:\n  base_topic: bms/#\n",
     "test.yaml:6:15: base_topic 'bms/#' must be an MQTT topic without '+', '#' or a leading or "
     "trailing '/'"},
    /* addresses */
    {PORT "    packs: [{ address: 0x1G }]\n",
     "test.yaml:4:24: address must be from 0 to 254 (0x00 to 0xFE), not '0x1G'"},
    {PORT "    packs: [{ address: 300 }]\n",
     "test.yaml:4:24: address must be from 0 to 254 (0x00 to 0xFE), not '300'"},
    {PORT "    packs: [{ address: 0xFF }]\n",
     "test.yaml:4:24: address 0xFF is the broadcast address, which every pack answers: use the "
     "pack's own address (0 to 254)"},
    {PORT "    protocol: modbus\n    packs: [{ address: 0 }]\n",
     "test.yaml:5:24: address 0 is not a Modbus slave address (1 to 247)"},
    {PORT "    packs: [{ id: p1 }]\n", "test.yaml:4:13: pack 'p1' has no address"},
    /* duplicates */
    {PORT "    packs:\n      - { address: 1, id: p1 }\n      - { address: 0x01, id: p2 }\n",
     "test.yaml:6:20: address 0x01 is already used on port 'a' by pack 'p1' at line 5"},
    {"ports:\n  - device: /dev/ttyUSB0\n    packs: [{ address: 1, id: p1 }]\n"
     "  - device: /dev/ttyUSB1\n    packs: [{ address: 1, id: p1 }]\n",
     "test.yaml:5:31: pack id 'p1' is already used at line 3"},
    {"ports:\n  - device: /dev/ttyUSB0\n    packs: [{ address: 1, id: pack-1 }]\n"
     "  - device: /dev/ttyUSB1\n    packs: [{ address: 1, id: Pack_1 }]\n",
     "test.yaml:5:31: pack id 'Pack_1' differs from 'pack-1' at line 3 only in case or '-'/'_': "
     "Home Assistant would see one pack"},
    {"ports:\n  - name: a\n    device: /dev/ttyUSB0\n    packs: [{ address: 1 }]\n"
     "  - name: a\n    device: /dev/ttyUSB1\n    packs: [{ address: 2 }]\n",
     "test.yaml:5:11: port name 'a' is already used at line 2"},
    {"ports:\n  - device: /dev/ttyUSB0\n    packs: [{ address: 1 }]\n"
     "  - device: /dev/ttyUSB0\n    packs: [{ address: 2 }]\n",
     "test.yaml:4:13: device /dev/ttyUSB0 is already used by port 'port1' at line 2"},
    {PORT PACK1 "banks:\n  - id: house\n  - id: house\n",
     "test.yaml:7:9: bank id 'house' is already used at line 6"},
    /* banks */
    {PORT "    packs: [{ address: 1, bank: hous }]\nbanks:\n  - id: house\n",
     "test.yaml:4:33: bank 'hous' is not declared in 'banks'; did you mean 'house'?"},
    {PORT "    packs: [{ address: 1, bank: house }]\n",
     "test.yaml:4:33: bank 'house' is not declared: add a 'banks' section"},
    {PORT PACK1 "banks: []\n",
     "test.yaml:5:8: 'banks' is empty: declare at least one bank, or leave 'banks' out"},
    /* what a port needs */
    {"ports:\n  - name: a\n    packs: [{ address: 1 }]\n", "test.yaml:2:5: port 'a' has no device"},
    {PORT "    packs: []\n", "test.yaml:4:12: 'packs' is empty: a port needs at least one pack"},
    {PORT "    packs:\n", "test.yaml:4:5: 'packs' is empty: a port needs at least one pack"},
    {PORT, "test.yaml:2:5: port 'a' has no packs"},
    {"ports: []\n", "test.yaml:1:8: 'ports' is empty: at least one port is needed"},
    {"node:\n  id: x\n", "test.yaml: no 'ports' section: at least one port is needed"},
    {"", "test.yaml: no 'ports' section: at least one port is needed"},
    {"ports:\n  - name: a\n    device: \"\"\n" PACK1, "test.yaml:3:13: device must not be empty"},
    /* YAML types */
    {"ports:\n  name: a\n", "test.yaml:2:3: 'ports' must be a list of ports"},
    {PORT PACK1 "node: [a, b]\n", "test.yaml:5:7: 'node' must be a map of settings"},
    {PORT "    baud: [9600]\n" PACK1, "test.yaml:4:11: 'baud' must be a single value, not a list"},
    {PORT "    packs: [1]\n",
     "test.yaml:4:13: each pack must be a map of settings, e.g. { address: ... }"},
    {"- a\n", "test.yaml:1:1: the configuration must be a map of sections (node, log, ports, "
              "banks, storage, mqtt, http)"},
    {"ports:\n  - name: a\n   device: x\n",
     "test.yaml:3:4: YAML syntax error: did not find expected '-' indicator"},
    {"ports:\n\t- device: x\n",
     "test.yaml:2:1: YAML syntax error: found character that cannot start any token"},
    {PORT PACK1 "---\nports: []\n", "test.yaml:6:1: a second YAML document is not read: remove it"},
    /* secrets */
    {PORT PACK1 "mqtt:\n  password: hunter2\n",
     "test.yaml:6:3: mqtt.password is not read from the YAML file: put it in password_file or "
     "the MQTT_PASSWORD environment variable"},
    {PORT PACK1 "mqtt:\n  password_file: /nonexistent/mqtt.pass\n",
     "test.yaml:6:18: cannot read password_file /nonexistent/mqtt.pass: No such file or directory"},
    {PORT PACK1 "mqtt:\n  tls:\n    cert_file: /etc/c.pem\n",
     "test.yaml:7:16: tls.cert_file needs tls.key_file too"},
    /* http */
    {PORT PACK1 "http:\n  listen: localhost\n",
     "test.yaml:6:11: http.listen must be an IPv4 or IPv6 address (127.0.0.1, 0.0.0.0, ::1), not "
     "'localhost'"},
    {PORT PACK1 "http:\n  port: 0\n", "test.yaml:6:9: port must be an integer from 1 to 65535, not '0'"},
    {PORT PACK1 "http:\n  user: admin\n", "test.yaml:6:9: http.user needs http.password_file too"},
    {PORT PACK1 "http:\n  password_file: /nonexistent/http.pass\n",
     "test.yaml:6:18: cannot read http.password_file /nonexistent/http.pass: No such file or "
     "directory"},
    {PORT PACK1 "http:\n  passwrd_file: x\n",
     "test.yaml:6:3: unknown key 'passwrd_file' in http; did you mean 'password_file'?"},
    {PORT PACK1 "storage: { enabled: false }\nhttp:\n",
     "test.yaml:6:1: http shows the history: it needs storage.enabled: true"},
    /* ids */
    {PORT "    packs: [{ address: 1, id: \"pack 1\" }]\n",
     "test.yaml:4:31: id 'pack 1' may only contain letters, digits, '_' and '-'"},
    {PORT PACK1 "node:\n  id: " X16 X16 X16 X16 "\n",
     "test.yaml:6:7: id must be 1 to 63 characters long, not 64"},
    {"ports:\n  - name: " X16 X16 X16 "xxxxxxxxxxxxxx\n    device: /dev/ttyUSB0\n" PACK1,
     "test.yaml:4:13: pack id '" X16 X16 X16 "xxxxxxxxxxxxxx-1' (port name and address) is longer "
     "than 63 characters: give the pack an id"},
    /* wiring (issue 17): what the device names against the keys that fit it */
    {"ports:\n  - device: tcp://gw\n" PACK1,
     "test.yaml:2:13: tcp://gw has no port: write tcp://HOST:PORT (the serial server's TCP port)"},
    {"ports:\n  - device: tcp://gw:0\n" PACK1,
     "test.yaml:2:13: tcp://gw:0: the port must be a number from 1 to 65535"},
    {"ports:\n  - device: telnet://gw:23\n" PACK1,
     "test.yaml:2:13: 'telnet' is not a device scheme bmsfleet knows: tcp://HOST:PORT (a serial "
     "server in raw TCP mode) or modbus-tcp://HOST[:PORT] (a Modbus TCP gateway)"},
    {"ports:\n  - device: tcp://gw:4196\n    rs485: true\n" PACK1,
     "test.yaml:3:12: rs485 is the kernel mode of a local adapter: the serial server behind "
     "tcp://gw:4196 drives its own transceiver (leave rs485 out)"},
    {"ports:\n  - device: modbus-tcp://gw\n    protocol: pace\n" PACK1,
     "test.yaml:3:15: modbus-tcp:// is a Modbus TCP gateway: it needs protocol modbus (a serial "
     "server that passes the bus bytes through is tcp://HOST:PORT)"},
    {"ports:\n  - device: modbus-tcp://gw\n    protocol: modbus\n    mode: listen\n" PACK1,
     "test.yaml:4:11: mode listen reads the bus bytes: a Modbus TCP gateway only answers its own "
     "client (use tcp://HOST:PORT in the server's transparent mode)"},
    {PORT "    mode: sniff\n" PACK1, "test.yaml:4:11: mode must be poll or listen, not 'sniff'"},
    {"ports:\n  - device: tcp://gw:4196\n    connect_timeout_ms: 50\n" PACK1,
     "test.yaml:3:25: connect_timeout_ms must be an integer from 100 to 60000, not '50'"},
    {"ports:\n  - device: /dev/ttyUSB0\n    poll: via_master\n" PACK1,
     "test.yaml:3:11: poll: via_master needs a protocol whose requests name the target pack "
     "(pace or pylontech); daren packs are asked at their own address"},
    {"ports:\n  - device: /dev/ttyUSB0\n    protocol: pace\n    mode: listen\n"
     "    packs: [{ address: 1, poll: via_master }]\n",
     "test.yaml:5:33: poll: via_master is for a port that polls; in mode listen the other "
     "master's requests decide what is heard"},
    {"ports:\n  - device: /dev/ttyUSB0\n    protocol: pace\n    poll: via_master\n"
     "    master: 5\n" PACK1,
     "test.yaml:5:13: master 0x05 is not one of port 'port1''s packs: the master pack is "
     "listed with the others"},
    {PORT "    poll: relay\n" PACK1,
     "test.yaml:4:11: poll must be per_address or via_master, not 'relay'"},
    /* several at once, in file order */
    {PORT "    baud: 9601\n    timout_ms: 5\n    packs:\n      - { address: 1, id: p1 }\n"
          "      - { address: 1, id: p2 }\n",
     "test.yaml:4:11: baud must be one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, "
     "not '9601'\n"
     "test.yaml:5:5: unknown key 'timout_ms' in port; did you mean 'timeout_ms'?\n"
     "test.yaml:8:20: address 0x01 is already used on port 'a' by pack 'p1' at line 7"},
};

static void expect_errors(const char *yaml, const char *want)
{
    struct config_errors *e = malloc(sizeof *e);
    struct config *c = (struct config *)&c; /* must stay untouched */
    int rc = config_load_string("test.yaml", yaml, &c, e);
    char got[CONFIG_MAX_ERRORS * 330] = "";
    for (size_t i = 0; i < e->n; i++) {
        strcat(got, e->msg[i]);
        if (i + 1 < e->n)
            strcat(got, "\n");
    }
    if (strcmp(got, want) != 0)
        print_error("yaml:\n%s\n", yaml);
    assert_string_equal(got, want);
    assert_int_equal(rc, -EINVAL);
    assert_ptr_equal(c, (struct config *)&c);
    free(e);
}

/* The network devices load, with their defaults; connect_timeout_ms on a tty is a warning. */
static void test_wiring_keys(void **state)
{
    (void)state;
    struct config *c = NULL;
    assert_int_equal(config_load_string("w.yaml",
                                        "ports:\n"
                                        "  - device: tcp://10.0.0.7:4196\n" PACK1
                                        "  - device: modbus-tcp://[fd00::2]\n"
                                        "    protocol: modbus\n"
                                        "    connect_timeout_ms: 800\n" PACK1
                                        "  - device: /dev/ttyUSB0\n"
                                        "    mode: listen\n"
                                        "    connect_timeout_ms: 800\n" PACK1,
                                        &c, NULL),
                     0);
    assert_int_equal(c->ports[0].connect_timeout_ms, 3000);
    assert_int_equal(c->ports[0].mode, CONFIG_MODE_POLL);
    assert_int_equal(c->ports[1].connect_timeout_ms, 800);
    assert_int_equal(c->ports[2].mode, CONFIG_MODE_LISTEN);
    assert_int_equal(c->nwarnings, 1);
    assert_string_equal(c->warnings[0],
                        "w.yaml:10:25: warning: connect_timeout_ms applies to tcp:// and "
                        "modbus-tcp:// devices only; /dev/ttyUSB0 is a serial device");
    config_free(c);
    /* via_master on the port, per_address for one pack; the master by default the lowest */
    assert_int_equal(config_load_string("w.yaml",
                                        "ports:\n"
                                        "  - device: /dev/ttyUSB0\n"
                                        "    protocol: pace\n"
                                        "    poll: via_master\n"
                                        "    packs: [{ address: 3 }, { address: 2 },\n"
                                        "            { address: 9, poll: per_address }]\n",
                                        &c, NULL),
                     0);
    assert_int_equal(c->ports[0].master, 2);
    assert_int_equal(c->ports[0].packs[0].poll, CONFIG_POLL_VIA_MASTER);
    assert_int_equal(c->ports[0].packs[2].poll, CONFIG_POLL_PER_ADDRESS);
    config_free(c);
}

static void test_bad_configs(void **state)
{
    (void)state;
    size_t n = sizeof bad_configs / sizeof bad_configs[0];
    assert_true(n >= 30);
    for (size_t i = 0; i < n; i++)
        expect_errors(bad_configs[i].yaml, bad_configs[i].errors);
}

static void test_three_errors_counted(void **state)
{
    (void)state;
    struct config_errors *e = malloc(sizeof *e);
    struct config *c = NULL;
    const char *yaml = bad_configs[sizeof bad_configs / sizeof bad_configs[0] - 1].yaml;
    assert_int_equal(config_load_string("test.yaml", yaml, &c, e), -EINVAL);
    assert_int_equal(e->n, 3);
    assert_int_equal(config_load_string("test.yaml", yaml, &c, NULL), -EINVAL); /* errs optional */
    assert_null(c);
    free(e);
}

/* The limits, with lists built here: one item past each. */
static void test_limits(void **state)
{
    (void)state;
    char *y = malloc(16384), want[200];
    size_t n = (size_t)snprintf(y, 16384, "ports:\n  - device: /dev/ttyUSB0\n    packs:\n");
    for (int i = 1; i <= CONFIG_MAX_PACKS_PER_PORT + 1; i++)
        n += (size_t)snprintf(y + n, 16384 - n, "      - { address: %d }\n", i);
    snprintf(want, sizeof want, "test.yaml:%d:9: too many packs on one port: at most %d",
             3 + CONFIG_MAX_PACKS_PER_PORT + 1, CONFIG_MAX_PACKS_PER_PORT);
    expect_errors(y, want);

    n = (size_t)snprintf(y, 16384, "ports:\n");
    for (int i = 1; i <= CONFIG_MAX_PORTS + 1; i++)
        n += (size_t)snprintf(y + n, 16384 - n,
                              "  - device: /dev/ttyUSB%d\n    packs: [{ address: 1 }]\n", i);
    snprintf(want, sizeof want, "test.yaml:%d:5: too many ports: at most %d",
             1 + 2 * CONFIG_MAX_PORTS + 1, CONFIG_MAX_PORTS);
    expect_errors(y, want);

    n = (size_t)snprintf(y, 16384, PORT PACK1 "banks:\n");
    for (int i = 1; i <= CONFIG_MAX_BANKS + 1; i++)
        n += (size_t)snprintf(y + n, 16384 - n, "  - id: b%d\n", i);
    snprintf(want, sizeof want, "test.yaml:%d:5: too many banks: at most %d",
             5 + CONFIG_MAX_BANKS + 1, CONFIG_MAX_BANKS);
    expect_errors(y, want);

    /* more errors than the list holds: the last line says so */
    n = (size_t)snprintf(y, 16384, PORT PACK1 "mqtt:\n");
    for (int i = 0; i < CONFIG_MAX_ERRORS + 10; i++)
        n += (size_t)snprintf(y + n, 16384 - n, "  k%d: x\n", i);
    struct config_errors *e = malloc(sizeof *e);
    struct config *c = NULL;
    assert_int_equal(config_load_string("test.yaml", y, &c, e), -EINVAL);
    assert_int_equal(e->n, CONFIG_MAX_ERRORS);
    assert_string_equal(e->msg[CONFIG_MAX_ERRORS - 1], "test.yaml: too many errors, stopping here");
    /* the count printed is of the errors, not of the lines */
    char *out;
    size_t len;
    FILE *f = open_memstream(&out, &len);
    assert_non_null(f);
    config_print_errors(f, -EINVAL, e);
    fclose(f);
    assert_non_null(strstr(out, "test.yaml: too many errors, stopping here\n99 errors, and the rest "
                                "of the file was not checked\n"));
    free(out);
    free(e);
    free(y);
}

/* Found by fuzzing: 100 000 '[' took half a minute in libyaml (quadratic in the depth); now a
 * clear error at the 33rd level, at once. A key with a NUL ("ports\0junk") was read as
 * "ports". */
static void test_deep_nesting_and_nul_key(void **state)
{
    (void)state;
    size_t n = 100000;
    char *y = malloc(n + 1);
    assert_non_null(y);
    memset(y, '[', n);
    y[n] = '\0';
    struct config_errors *e = malloc(sizeof *e);
    struct config *c = NULL;
    long long t0 = proc_now_ms();
    assert_int_equal(config_load_string("deep.yaml", y, &c, e), -EINVAL);
    long long took = proc_now_ms() - t0;
    assert_null(c);
    assert_int_equal(e->n, 1);
    assert_string_equal(e->msg[0], "deep.yaml:1:33: nested deeper than 32 levels: not a "
                                   "configuration");
    /* not a timing test: a bound 100 times what it takes, against the 20-32 s it took */
    assert_true(took < 5000);
    /* 32 levels are still read (and then refused for what they are) */
    memset(y, 0, n + 1);
    for (int i = 0; i < 32; i++)
        y[i] = '[';
    for (int i = 32; i < 64; i++)
        y[i] = ']';
    assert_int_equal(config_load_string("deep.yaml", y, &c, e), -EINVAL);
    assert_null(strstr(e->msg[0], "nested deeper"));
    free(y);

    assert_int_equal(config_load_string("nul.yaml",
                                        "\"ports\\0junk\": [{ device: /dev/ttyUSB0, packs: "
                                        "[{ address: 1 }] }]\n",
                                        &c, e),
                     -EINVAL);
    assert_null(c);
    /* the key is refused, so the file has no ports either */
    assert_int_equal(e->n, 2);
    assert_string_equal(e->msg[0], "nul.yaml: no 'ports' section: at least one port is needed");
    assert_string_equal(e->msg[1], "nul.yaml:1:1: a key contains a NUL character");
    free(e);
}

static void test_file_errors(void **state)
{
    (void)state;
    struct config_errors *e = malloc(sizeof *e);
    struct config *c = NULL;
    assert_int_equal(config_load_file("/nonexistent/bmsfleet.yaml", &c, e), -ENOENT);
    assert_int_equal(e->n, 1);
    assert_string_equal(e->msg[0],
                        "/nonexistent/bmsfleet.yaml: cannot open: No such file or directory");
    assert_int_equal(config_load_file(tmpdir, &c, e), -EISDIR);
    assert_null(c);
    free(e);
}

/* Written YAML loads back into the same model. */
static void assert_same(struct config *a, struct config *b)
{
    struct config *m[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        memset(m[i]->source, 0, sizeof m[i]->source);
        memset(m[i]->mqtt.password, 0, sizeof m[i]->mqtt.password);
        for (size_t p = 0; p < m[i]->nports; p++) {
            m[i]->ports[p].line = 0;
            for (size_t k = 0; k < m[i]->ports[p].npacks; k++)
                m[i]->ports[p].packs[k].line = 0;
        }
    }
    assert_string_equal(a->node_id, b->node_id);
    assert_int_equal(a->nports, b->nports);
    assert_memory_equal(a, b, sizeof *a);
}

static struct config *reload(const struct config *c, char **text)
{
    size_t len;
    FILE *f = open_memstream(text, &len);
    assert_non_null(f);
    config_write_yaml(f, c);
    fclose(f);
    return load_ok(*text);
}

static void test_yaml_round_trip(void **state)
{
    (void)state;
    setenv("MQTT_PASSWORD", "from-env", 1); /* password_file names a file we do not have */
    struct config *a = load_ok(issue4_example);
    a->ports[0].packs[0].serial[0] = 'S';         /* and a few values that need quotes */
    memset(a->node_name, 0, sizeof a->node_name); /* the comparison is of whole buffers */
    snprintf(a->node_name, sizeof a->node_name, "Cabin: \"north\" #1\t\\");
    memset(a->banks[0].name, 0, sizeof a->banks[0].name);
    snprintf(a->banks[0].name, sizeof a->banks[0].name, "null");
    char *text;
    struct config *b = reload(a, &text);
    unsetenv("MQTT_PASSWORD");
    assert_null(strstr(text, "from-env"));
    assert_same(a, b);
    free(text);
    config_free(a);
    config_free(b);
}

/* http: the defaults, every key, the password file read by the rules of mqtt's, and the
 * section written back as YAML. */
static void test_http_section(void **state)
{
    (void)state;
    struct config *c = load_ok(PORT PACK1);
    assert_int_equal(c->http.enabled, 0);
    config_free(c);
    c = load_ok(PORT PACK1 "http:\n");
    assert_int_equal(c->http.enabled, 1);
    assert_string_equal(c->http.listen, "127.0.0.1");
    assert_int_equal(c->http.port, 8480);
    assert_string_equal(c->http.user, "bmsfleet");
    assert_string_equal(c->http.password, "");
    config_free(c);

    char pass[300], yaml[700];
    snprintf(pass, sizeof pass, "%s/http.pass", tmpdir);
    write_file(pass, "page pass\n");
    chmod(pass, 0600);
    snprintf(yaml, sizeof yaml,
             PORT PACK1 "http:\n  listen: \"::\"\n  port: 9100\n  user: site\n"
                        "  password_file: %s\n",
             pass);
    c = load_ok(yaml);
    assert_string_equal(c->http.listen, "::");
    assert_int_equal(c->http.port, 9100);
    assert_string_equal(c->http.user, "site");
    assert_string_equal(c->http.password, "page pass");
    assert_int_equal(c->nwarnings, 0);
    char *text;
    struct config *b = reload(c, &text);
    assert_null(strstr(text, "page pass"));
    assert_same(c, b);
    free(text);
    config_free(b);
    config_free(c);
    chmod(pass, 0644); /* readable by others: a warning, as for mqtt */
    c = load_ok(yaml);
    assert_int_equal(c->nwarnings, 1);
    assert_non_null(strstr(c->warnings[0], "warning: http.password_file"));
    config_free(c);
}

/* ---- environment mode ---- */

static const char *const *fake_env;

static const char *fake_getenv(const char *name)
{
    for (size_t i = 0; fake_env && fake_env[i]; i += 2) {
        if (strcmp(fake_env[i], name) == 0)
            return fake_env[i + 1];
    }
    return NULL;
}

static struct config *env_ok(const char *const *vars)
{
    fake_env = vars;
    struct config_errors *e = malloc(sizeof *e);
    struct config *c = NULL;
    int rc = config_from_env(fake_getenv, &c, e);
    for (size_t i = 0; i < e->n; i++)
        print_error("unexpected: %s\n", e->msg[i]);
    assert_int_equal(rc, 0);
    free(e);
    return c;
}

static void test_env_defaults(void **state)
{
    (void)state;
    static const char *const none[] = {NULL};
    fake_env = none;
    assert_false(config_env_present(fake_getenv));
    struct config *c = env_ok(none);
    assert_string_equal(c->source, "environment");
    assert_string_equal(c->node_id, "daren_bms");
    assert_int_equal(c->log_level, LOG_INFO);
    assert_int_equal(c->nports, 1);
    const struct config_port *p = &c->ports[0];
    assert_string_equal(p->device, "/dev/ttyUSB0");
    assert_int_equal(p->protocol, CONFIG_PROTO_DAREN);
    assert_int_equal(p->protocol, CONFIG_PROTO_DAREN);
    assert_int_equal(p->baud, 9600);
    assert_int_equal(p->interval_s, 30);
    assert_int_equal(p->timeout_ms, 1000);
    assert_int_equal(p->npacks, 1);
    assert_int_equal(p->packs[0].address, 1);
    assert_string_equal(p->packs[0].id, "daren_bms");
    assert_string_equal(p->packs[0].bank, "bank");
    assert_int_equal(c->nbanks, 1);
    assert_int_equal(c->mqtt.enabled, 0);
    assert_int_equal(c->mqtt.port, 1883);
    assert_int_equal(c->mqtt.compat, 1);
    assert_string_equal(c->mqtt.compat_device_id, "daren_bms");
    assert_string_equal(c->mqtt.compat_prefix, "homeassistant");
    assert_string_equal(c->mqtt.discovery_prefix, "homeassistant");
    config_free(c);
}

static const char *const full_env[] = {"BMS_PORT",
                                       "/dev/serial/by-id/usb-bms",
                                       "BMS_SLAVE_ID",
                                       "0x0A",
                                       "READ_INTERVAL",
                                       "10",
                                       "MQTT_HOST",
                                       "broker.lan",
                                       "MQTT_PORT",
                                       "1884",
                                       "MQTT_USER",
                                       "bms",
                                       "MQTT_PASSWORD",
                                       "hunter2",
                                       "DEVICE_ID",
                                       "cabin bms.1",
                                       "DEBUG_MODE",
                                       "True",
                                       "MQTT_TOPIC_PREFIX",
                                       "ha",
                                       NULL};

static void test_env_all_variables(void **state)
{
    (void)state;
    fake_env = full_env;
    assert_true(config_env_present(fake_getenv));
    struct config *c = env_ok(full_env);
    assert_string_equal(c->ports[0].device, "/dev/serial/by-id/usb-bms");
    assert_int_equal(c->ports[0].packs[0].address, 10);
    assert_int_equal(c->ports[0].interval_s, 10);
    assert_int_equal(c->mqtt.enabled, 1);
    assert_string_equal(c->mqtt.host, "broker.lan");
    assert_int_equal(c->mqtt.port, 1884);
    assert_string_equal(c->mqtt.username, "bms");
    assert_string_equal(c->mqtt.password, "hunter2");
    assert_string_equal(c->mqtt.discovery_prefix, "ha");
    assert_string_equal(c->mqtt.compat_prefix, "ha");
    assert_string_equal(c->mqtt.compat_device_id, "cabin bms.1"); /* as the old topics had it */
    assert_string_equal(c->node_id, "cabin_bms_1");
    assert_string_equal(c->ports[0].packs[0].id, "cabin_bms_1");
    assert_string_equal(c->mqtt.client_id, "bmsfleet-cabin_bms_1");
    assert_int_equal(c->log_level, LOG_DEBUG);
    config_free(c);
}

static void test_env_present(void **state)
{
    (void)state;
    static const char *const pass_only[] = {"MQTT_PASSWORD", "x", NULL};
    static const char *const empty[] = {"BMS_PORT", "", NULL};
    static const char *const debug[] = {"DEBUG_MODE", "0", NULL};
    fake_env = pass_only; /* a YAML configuration reads it too */
    assert_false(config_env_present(fake_getenv));
    fake_env = empty;
    assert_false(config_env_present(fake_getenv));
    fake_env = debug;
    assert_true(config_env_present(fake_getenv));
}

static void test_env_bad_values(void **state)
{
    (void)state;
    static const char *const bad[] = {"BMS_SLAVE_ID",
                                      "x",
                                      "READ_INTERVAL",
                                      "30s",
                                      "DEBUG_MODE",
                                      "maybe",
                                      "MQTT_HOST",
                                      "broker",
                                      "MQTT_PORT",
                                      "0",
                                      "MQTT_TOPIC_PREFIX",
                                      "ha/#",
                                      NULL};
    static const char *const want[] = {
        "environment: BMS_SLAVE_ID: must be an address from 1 to 254, not 'x'",
        "environment: READ_INTERVAL: must be a number of seconds from 1 to 86400, not '30s'",
        "environment: DEBUG_MODE: must be true or false (or 1/0, yes/no), not 'maybe'",
        "environment: MQTT_PORT: must be a port number from 1 to 65535, not '0'",
        ("environment: MQTT_TOPIC_PREFIX: must be an MQTT topic without '+', '#' or a leading "
         "or trailing '/', not 'ha/#'"),
    };
    fake_env = bad;
    struct config_errors *e = malloc(sizeof *e);
    struct config *c = NULL;
    assert_int_equal(config_from_env(fake_getenv, &c, e), -EINVAL);
    assert_null(c);
    assert_int_equal(e->n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < e->n; i++)
        assert_string_equal(e->msg[i], want[i]);

    static const char *const range[] = {"BMS_SLAVE_ID", "255", NULL};
    fake_env = range;
    assert_int_equal(config_from_env(fake_getenv, &c, e), -EINVAL);
    assert_string_equal(e->msg[0],
                        "environment: BMS_SLAVE_ID: must be an address from 1 to 254, not '255'");
    static const char *const zero[] = {"BMS_SLAVE_ID", "0", "READ_INTERVAL", "-1", NULL};
    fake_env = zero;
    assert_int_equal(config_from_env(fake_getenv, &c, e), -EINVAL);
    assert_int_equal(e->n, 2);
    assert_string_equal(e->msg[0],
                        "environment: BMS_SLAVE_ID: must be an address from 1 to 254, not '0'");
    assert_string_equal(e->msg[1], "environment: READ_INTERVAL: must be a number of seconds from "
                                   "1 to 86400, not '-1'");
    free(e);
}

/* env -> YAML -> load gives the same model; the password never reaches the text. */
static void test_env_yaml_round_trip(void **state)
{
    (void)state;
    static const char *const minimal[] = {"BMS_PORT", "/dev/ttyUSB3", NULL};
    const char *const *envs[] = {full_env, minimal};
    for (size_t i = 0; i < 2; i++) {
        struct config *a = env_ok(envs[i]);
        char *text;
        struct config *b = reload(a, &text);
        assert_non_null(strstr(text, "generated from the environment"));
        assert_non_null(strstr(text, "MQTT_PASSWORD"));
        assert_null(strstr(text, "hunter2"));
        if (!a->mqtt.enabled) { /* without MQTT_HOST there is no mqtt section to carry them */
            assert_null(strstr(text, "\nmqtt:"));
            memset(&a->mqtt, 0, sizeof a->mqtt);
            memset(&b->mqtt, 0, sizeof b->mqtt);
        }
        assert_same(a, b);
        free(text);
        config_free(a);
        config_free(b);
    }
}

/* Found by fuzzing: the equivalent YAML of some environments did not load again. Text that is
 * not UTF-8 is refused with the variable's name; any valid UTF-8, C0 and C1 controls, U+FEFF
 * and characters outside the BMP included, round-trips. */
static void test_env_yaml_round_trip_any_text(void **state)
{
    (void)state;
    static const char *const bad[] = {"BMS_PORT", "/dev/tty\xe9", NULL};
    fake_env = bad;
    struct config_errors *e = malloc(sizeof *e);
    struct config *c = NULL;
    assert_int_equal(config_from_env(fake_getenv, &c, e), -EINVAL);
    assert_int_equal(e->n, 1);
    assert_string_equal(e->msg[0], "environment: BMS_PORT: not valid UTF-8 text (byte 9)");
    static const char *const overlong[] = {"BMS_PORT", "/dev/\xc0\xaf", NULL};
    fake_env = overlong;
    assert_int_equal(config_from_env(fake_getenv, &c, e), -EINVAL);
    free(e);

    static const char *const ports[] = {
        "\xc2\x80x",                   /* U+0080, a C1 control */
        "/dev/tty\xc3\xa9",             /* é */
        "a\tb\x01" "c\x7f \"q\" \\ # - : [x]", /* C0 controls, DEL, quotes, indicators */
        "\xef\xbb\xbf" "bom",              /* U+FEFF */
        "\xf0\x9f\x94\x8b battery",     /* U+1F50B, outside the BMP */
        "\xc2\x85\xc2\xa0nel nbsp",     /* U+0085 (a line break to YAML) and U+00A0 */
        "\xe2\x80\xa8ls \xe2\x80\xa9ps", /* U+2028, U+2029: line breaks too */
    };
    for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++) {
        const char *vars[] = {"BMS_PORT", ports[i], "DEVICE_ID", "cabin", "MQTT_HOST",
                              "broker.lan", NULL};
        struct config *a = env_ok(vars);
        assert_string_equal(a->ports[0].device, ports[i]);
        char *text;
        struct config *b = reload(a, &text);
        assert_string_equal(b->ports[0].device, ports[i]);
        assert_same(a, b);
        free(text);
        config_free(a);
        config_free(b);
    }
}

static void test_summary(void **state)
{
    (void)state;
    setenv("MQTT_PASSWORD", "x", 1);
    struct config *c = load_ok(issue4_example);
    unsetenv("MQTT_PASSWORD");
    char *text;
    size_t len;
    FILE *f = open_memstream(&text, &len);
    config_write_summary(f, c);
    fclose(f);
    assert_string_equal(
        text, "2 ports, 3 packs, 1 bank\n"
              "  rack-a  /dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0  daren "
              "9600 baud, every 30 s: pack1 (0x01), pack2 (0x02)\n"
              "  rack-b  /dev/ttyUSB1  pace 9600 baud, every 30 s: pack3 (0x01)\n"
              "  bank house (House bank): pack1, pack2, pack3\n"
              "  node offgrid-cabin, log level info, storage /var/lib/bmsfleet/history.db\n"
              "  mqtt 127.0.0.1:1883 as bms, base topic bmsfleet, discovery homeassistant\n");
    free(text);
    config_free(c);
}

/* ---- bmsfleet check, the real binary ---- */

static struct proc_result *check(const char *arg1, const char *arg2)
{
    static struct proc_result r;
    char *argv[] = {(char *)BMSFLEET_BIN, (char *)"check", (char *)arg1, (char *)arg2, NULL};
    assert_int_equal(proc_run(argv, NULL, 20000, &r), 0);
    return &r;
}

static void test_check_ok(void **state)
{
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/ok.yaml", tmpdir);
    write_file(path, "ports:\n  - name: a\n    device: /dev/ttyUSB0\n"
                     "    packs: [{ address: 1, id: p1 }, { address: 2, id: p2 }]\n");
    struct proc_result *r = check("-c", path);
    assert_int_equal(r->status, 0);
    assert_string_equal(r->err, "");
    assert_non_null(strstr(r->out, "configuration OK\n1 port, 2 packs, 1 bank\n"));
    assert_non_null(strstr(r->out, "  a  /dev/ttyUSB0  daren 9600 baud, every 30 s: p1 (0x01), "
                                   "p2 (0x02)\n"));
    r = check("--config", path);
    assert_int_equal(r->status, 0);
}

/* A FIFO, a device or a directory as the configuration is refused at once: a FIFO used to hang
 * `check`. */
static void test_check_not_regular(void **state)
{
    (void)state;
    char fifo[300], want[700];
    snprintf(fifo, sizeof fifo, "%s/config.fifo", tmpdir);
    unlink(fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    const char *paths[] = {fifo, "/dev/null", tmpdir};
    for (size_t i = 0; i < 3; i++) {
        struct proc_result *r = check("-c", paths[i]);
        assert_int_equal(r->status, 2);
        snprintf(want, sizeof want, "%s: cannot open: %s\n", paths[i],
                 i == 2 ? "Is a directory" : "not a regular file");
        assert_string_equal(r->err, want);
    }
    unlink(fifo);
}

/* What people copy first checks as shipped, with nothing from the environment. */
static void test_check_example_as_shipped(void **state)
{
    (void)state;
    struct proc_result *r = check("-c", BMSFLEET_SOURCE_DIR "/config.example.yaml");
    if (r->status != 0)
        print_error("%s", r->err);
    assert_int_equal(r->status, 0);
    assert_string_equal(r->err, "");
    assert_non_null(strstr(r->out, "configuration OK\n5 ports, 9 packs, 1 bank\n"));
}

/* `check` prints the warning and still says OK. */
static void test_check_warns_readable_password(void **state)
{
    (void)state;
    char path[300], pass[300], yaml[700];
    snprintf(path, sizeof path, "%s/warn.yaml", tmpdir);
    snprintf(pass, sizeof pass, "%s/open.pass", tmpdir);
    write_file(pass, "s3cret\n");
    assert_int_equal(chmod(pass, 0644), 0);
    snprintf(yaml, sizeof yaml,
             "ports: [{ device: /dev/ttyUSB0, packs: [{ address: 1 }] }]\n"
             "mqtt:\n  password_file: %s\n",
             pass);
    write_file(path, yaml);
    struct proc_result *r = check("-c", path);
    assert_int_equal(r->status, 0);
    assert_non_null(strstr(r->out, "configuration OK, with warnings\n"));
    char want[700];
    snprintf(want, sizeof want, "%s:3:18: warning: password_file %s can be read by group or "
                                "others (mode 0644)", path, pass);
    assert_non_null(strstr(r->err, want));
}

static void test_check_errors(void **state)
{
    (void)state;
    char path[300], want[1200];
    snprintf(path, sizeof path, "%s/bad.yaml", tmpdir);
    write_file(path, bad_configs[sizeof bad_configs / sizeof bad_configs[0] - 1].yaml);
    struct proc_result *r = check("-c", path);
    assert_int_equal(r->status, 2);
    snprintf(want, sizeof want,
             "%s:4:11: baud must be one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, "
             "not '9601'\n"
             "%s:5:5: unknown key 'timout_ms' in port; did you mean 'timeout_ms'?\n"
             "%s:8:20: address 0x01 is already used on port 'a' by pack 'p1' at line 7\n"
             "3 errors\n",
             path, path, path);
    assert_string_equal(r->err, want);
    assert_string_equal(r->out, "");

    r = check("-c", "/nonexistent/config.yaml");
    assert_int_equal(r->status, 2);
    assert_string_equal(r->err,
                        "/nonexistent/config.yaml: cannot open: No such file or directory\n");
}

static void test_check_env_mode(void **state)
{
    (void)state;
    setenv("BMS_PORT", "/dev/ttyUSB7", 1);
    setenv("BMS_SLAVE_ID", "0x02", 1);
    setenv("MQTT_HOST", "broker", 1);
    setenv("MQTT_PASSWORD", "hunter2", 1);
    struct proc_result *r = check(NULL, NULL);
    clear_env(NULL);
    assert_int_equal(r->status, 0);
    const char *head = "configuration OK (from the environment of the replaced program)\n"
                       "1 port, 1 pack, 1 bank\n"
                       "  port1  /dev/ttyUSB7  daren 9600 baud, every 30 s: daren_bms (0x02)\n";
    assert_memory_equal(r->out, head, strlen(head));
    assert_null(strstr(r->out, "hunter2"));
    const char *yaml = strstr(r->out, "\nEquivalent configuration file:\n");
    assert_non_null(yaml);
    yaml += strlen("\nEquivalent configuration file:\n");
    assert_non_null(strstr(yaml, "      - { address: 0x02, id: daren_bms, name: daren_bms, bank: "
                                 "bank }\n"));
    /* what it printed is a file check accepts */
    char path[300];
    snprintf(path, sizeof path, "%s/from-env.yaml", tmpdir);
    write_file(path, yaml);
    r = check("-c", path);
    assert_int_equal(r->status, 0);

    setenv("BMS_SLAVE_ID", "x", 1);
    r = check(NULL, NULL);
    clear_env(NULL);
    assert_int_equal(r->status, 2);
    assert_string_equal(r->err, "environment: BMS_SLAVE_ID: must be an address from 1 to 254, "
                                "not 'x'\n1 error\n");
}

static void test_check_usage(void **state)
{
    (void)state;
    struct proc_result *r = check("--help", NULL);
    assert_int_equal(r->status, 0);
    assert_non_null(strstr(r->out, "usage: bmsfleet check"));
    r = check("--bogus", NULL);
    assert_int_equal(r->status, 2);
    r = check("-c", NULL);
    assert_int_equal(r->status, 2);
    if (access("/etc/bmsfleet/config.yaml", F_OK) != 0) {
        r = check(NULL, NULL);
        assert_int_equal(r->status, 2);
        assert_non_null(strstr(r->err, "no configuration: use -c FILE or set BMS_PORT"));
    }
}

/* The configuration names protocols without reaching the codec (docs/architecture.md): every
 * Service 42 name it accepts must be a variant the codec knows, and modbus none. */
static void test_protocol_names_are_codec_variants(void **state)
{
    (void)state;
    for (int p = CONFIG_PROTO_DAREN; p <= CONFIG_PROTO_MODBUS; p++) {
        const char *name = config_protocol_name((enum config_protocol)p);
        assert_non_null(name);
        if (p == CONFIG_PROTO_MODBUS)
            assert_null(s42_variant_find(name));
        else
            assert_non_null(s42_variant_find(name));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protocol_names_are_codec_variants),
        cmocka_unit_test_setup(test_issue4_example, clear_env),
        cmocka_unit_test_setup(test_config_example_file, clear_env),
        cmocka_unit_test_setup(test_defaults, clear_env),
        cmocka_unit_test_setup(test_value_forms, clear_env),
        cmocka_unit_test_setup(test_compat_defaults, clear_env),
        cmocka_unit_test_setup(test_password_file, clear_env),
        cmocka_unit_test_setup(test_password_credential, clear_env),
        cmocka_unit_test_setup(test_password_file_mode, clear_env),
        cmocka_unit_test_setup(test_password_file_not_regular, clear_env),
        cmocka_unit_test_setup(test_http_section, clear_env),
        cmocka_unit_test_setup(test_bad_configs, clear_env),
        cmocka_unit_test_setup(test_wiring_keys, clear_env),
        cmocka_unit_test_setup(test_three_errors_counted, clear_env),
        cmocka_unit_test_setup(test_limits, clear_env),
        cmocka_unit_test_setup(test_file_errors, clear_env),
        cmocka_unit_test_setup(test_yaml_round_trip, clear_env),
        cmocka_unit_test_setup(test_env_defaults, clear_env),
        cmocka_unit_test_setup(test_env_all_variables, clear_env),
        cmocka_unit_test_setup(test_env_present, clear_env),
        cmocka_unit_test_setup(test_env_bad_values, clear_env),
        cmocka_unit_test_setup(test_env_yaml_round_trip, clear_env),
        cmocka_unit_test_setup(test_env_yaml_round_trip_any_text, clear_env),
        cmocka_unit_test_setup(test_summary, clear_env),
        cmocka_unit_test_setup(test_check_ok, clear_env),
        cmocka_unit_test_setup(test_check_example_as_shipped, clear_env),
        cmocka_unit_test_setup(test_check_not_regular, clear_env),
        cmocka_unit_test_setup(test_deep_nesting_and_nul_key, clear_env),
        cmocka_unit_test_setup(test_check_warns_readable_password, clear_env),
        cmocka_unit_test_setup(test_check_errors, clear_env),
        cmocka_unit_test_setup(test_check_env_mode, clear_env),
        cmocka_unit_test_setup(test_check_usage, clear_env),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
