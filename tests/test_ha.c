/* test_ha: Home Assistant discovery and state payloads (pure code).
 *
 * Golden files: every (topic, retain, payload) the builders emit for a fixed configuration is
 * compared byte for byte with tests/golden/<name>.txt, one message per line:
 *     topic<TAB>retain<TAB>payload
 * The program version in "sw_version" is written as @BMSFLEET_VERSION@ so a release does not
 * change the files. After a deliberate change, regenerate them and review the diff line by
 * line against docs/reference/HOME-ASSISTANT.md before committing:
 *     BMSFLEET_UPDATE_GOLDEN=1 ./test_ha
 * (jq -R 'split("\t")[2] | fromjson' tests/golden/pack_discovery.txt shows them readable.)
 *
 * Structural checks that do not depend on the golden text: ids present and unique, every
 * value template reads a key that the state JSON has, per-cell entities disabled by default,
 * energy sensors usable by the energy dashboard, absent values never published as 0, the
 * compatibility topics and numbers exact, and ha_pack_clear covering every discovery topic. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "bank.h"
#include "config.h"
#include "ha.h"
#include "metrics.h"
#include "jsonw.h"
#include "report.h"
#include "s42.h"

#ifndef BMSFLEET_SOURCE_DIR
#error "BMSFLEET_SOURCE_DIR must be defined"
#endif

#define GOLDEN_DIR BMSFLEET_SOURCE_DIR "/tests/golden/"

/* ---- captured messages ---- */

struct msg {
    char *topic, *payload;
    int retain;
};

struct cap {
    struct msg *m;
    size_t n, size;
    size_t fail_at; /* 1-based call that fails with -EIO (0: never) */
};

static char *dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    assert_non_null(p);
    memcpy(p, s, n);
    return p;
}

static int cap_emit(void *ctx, const char *topic, const char *payload, int retain)
{
    struct cap *c = ctx;
    if (c->fail_at && c->n + 1 == c->fail_at)
        return -5;
    if (c->n == c->size) {
        c->size = c->size ? c->size * 2 : 64;
        c->m = realloc(c->m, c->size * sizeof *c->m);
        assert_non_null(c->m);
    }
    c->m[c->n].topic = dup(topic);
    c->m[c->n].payload = dup(payload);
    c->m[c->n].retain = retain;
    c->n++;
    return 0;
}

static void cap_free(struct cap *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->m[i].topic);
        free(c->m[i].payload);
    }
    free(c->m);
    memset(c, 0, sizeof *c);
}

static const struct msg *cap_find(const struct cap *c, const char *topic)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->m[i].topic, topic) == 0)
            return &c->m[i];
    }
    return NULL;
}

/* ---- fixtures ---- */

static const char fleet_yaml[] =
    "node:\n"
    "  id: cabin\n"
    "  name: Off-grid cabin\n"
    "ports:\n"
    "  - name: rack-a\n"
    "    device: /dev/ttyUSB0\n"
    "    protocol: daren\n"
    "    packs:\n"
    "      - { address: 1, id: pack1, name: Pack 1, bank: house }\n"
    "      - { address: 2, id: pack2, name: Pack 2, bank: house, serial: DJM2205180062 }\n"
    "  - name: rack-b\n"
    "    device: /dev/ttyUSB1\n"
    "    protocol: pace\n"
    "    packs:\n"
    "      - { address: 1, id: pack3, bank: shed }\n"
    "banks:\n"
    "  - id: house\n"
    "    name: House bank\n"
    "  - id: shed\n"
    "    name: Shed\n"
    "mqtt:\n"
    "  host: 127.0.0.1\n"
    "  base_topic: bmsfleet\n"
    "  discovery_prefix: homeassistant\n"
    "  compat: true\n"
    "  device_id: daren_bms\n"
    "  topic_prefix: homeassistant\n";

static struct config *load(const char *yaml)
{
    struct config_errors *e = malloc(sizeof *e);
    assert_non_null(e);
    struct config *c = NULL;
    unsetenv("MQTT_PASSWORD");
    unsetenv("BMSFLEET_MQTT_PASSWORD");
    int rc = config_load_string("test.yaml", yaml, &c, e);
    for (size_t i = 0; i < e->n; i++)
        print_error("unexpected: %s\n", e->msg[i]);
    assert_int_equal(rc, 0);
    free(e);
    return c;
}

static const uint8_t roles6[] = {SAMPLE_TEMP_CELL, SAMPLE_TEMP_CELL, SAMPLE_TEMP_CELL,
                                 SAMPLE_TEMP_CELL, SAMPLE_TEMP_MOS,  SAMPLE_TEMP_AMBIENT};

static void identity(struct s42_identity *id)
{
    s42_identity_init(id);
    snprintf(id->serial, sizeof id->serial, "DJM2205180061");
    snprintf(id->software, sizeof id->software, "01.00.02");
    snprintf(id->hardware, sizeof id->hardware, "T1_G");
}

/* pack1 of the fleet: identified, 16 cells, 6 temperature sensors */
static struct ha_pack_info pack1_info(const struct config *c, const struct s42_identity *id)
{
    struct ha_pack_info info = {.port = &c->ports[0],
                                .pack = &c->ports[0].packs[0],
                                .id = id,
                                .ncells = 16,
                                .ntemps = 6,
                                .temp_roles = roles6};
    return info;
}

/* A sample with every value present, 16 cells, 6 sensors, every flag and balancing. */
static void full_sample(struct sample *s, uint32_t alarms, uint32_t prot, uint32_t st)
{
    sample_init(s);
    s->address = 1;
    s->has = SAMPLE_HAS_ANALOG | SAMPLE_HAS_ALARMS | SAMPLE_HAS_BALANCE;
    s->voltage_mv = 53120;
    s->current_ma = -12340;
    s->soc_cpct = 6700;
    s->soh_cpct = 9800;
    s->remaining_mah = 53600;
    s->full_mah = 80000;
    s->design_mah = 100000;
    s->cycles = 204;
    s->ncells = 16;
    for (unsigned i = 0; i < 16; i++)
        s->cell_mv[i] = 3300 + (int32_t)i;
    s->ntemps = 6;
    for (unsigned i = 0; i < 6; i++) {
        s->temp_dc[i] = 250 + (int32_t)i;
        s->temp_role[i] = roles6[i];
    }
    s->alarms = alarms;
    s->protection = prot;
    s->state = st;
    s->balancing = 1u << 3;
    sample_finish(s);
}

/* The Daren 0x42 answer of tests/data/vectors.tsv: SOC 67.00 %, 53.12 V, 0.00 A, 16
 * cells 3.291–3.330 V, ENV 27.0 °C, MOS 27.0 °C, full 80.00 Ah, remaining 53.60 Ah, 204 cycles. */
static void daren_sample(struct sample *s)
{
    static const char frame[] =
        "~22014A00E0C6001A2C14C0100D010D010CDB0D010D010D000D020CE60CF80D020D010CDF0D020D020D000CE0"
        "010E0104010E040104010401040104000000000050011F4014F000CC0000000000000000002300000000000000"
        "00000000000000000000000000000000D582\r";
    const struct s42_variant *v = s42_variant_find("daren");
    assert_non_null(v);
    struct s42_frame *f = malloc(sizeof *f);
    assert_non_null(f);
    assert_int_equal(s42_parse(frame, strlen(frame), f, NULL), 0);
    assert_int_equal(s42_decode_analog(v, f, s, NULL), 0);
    free(f);
    assert_int_equal(s->soc_cpct, 6700);
    assert_int_equal(s->voltage_mv, 53120);
    assert_int_equal(s->ncells, 16);
}

static const struct ha_pack_extra extra_known = {
    .charged_kwh = 123.45678,
    .discharged_kwh = NAN,
    .ts_ms = 1767225630250LL, /* 2026-01-01 00:00:30.250 UTC */
    .polls = 1200,
    .timeouts = 3,
    .checksum_errors = 1,
    .malformed = 0,
};

/* ---- golden files ---- */

static void append(char **buf, size_t *len, size_t *size, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > *size) {
        *size = (*len + n + 1) * 2;
        *buf = realloc(*buf, *size);
        assert_non_null(*buf);
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

/* The golden text of the messages, with the program version replaced by a placeholder. */
static char *golden_text(const struct cap *c)
{
    static const char ver[] = "\"sw_version\":\"" BMSFLEET_VERSION "\"";
    static const char placeholder[] = "\"sw_version\":\"@BMSFLEET_VERSION@\"";
    char *out = NULL;
    size_t len = 0, size = 0;
    append(&out, &len, &size, "");
    for (size_t i = 0; i < c->n; i++) {
        append(&out, &len, &size, c->m[i].topic);
        append(&out, &len, &size, c->m[i].retain ? "\t1\t" : "\t0\t");
        const char *p = c->m[i].payload;
        for (const char *q; (q = strstr(p, ver)) != NULL; p = q + strlen(ver)) {
            char chunk[4096];
            size_t n = (size_t)(q - p);
            assert_true(n < sizeof chunk);
            memcpy(chunk, p, n);
            chunk[n] = '\0';
            append(&out, &len, &size, chunk);
            append(&out, &len, &size, placeholder);
        }
        append(&out, &len, &size, p);
        append(&out, &len, &size, "\n");
    }
    return out;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = NULL;
    size_t len = 0, size = 0;
    char chunk[4096];
    append(&buf, &len, &size, "");
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk - 1, f)) > 0) {
        chunk[n] = '\0';
        append(&buf, &len, &size, chunk);
    }
    fclose(f);
    return buf;
}

/* Compares the messages with GOLDEN_DIR name, or rewrites it when BMSFLEET_UPDATE_GOLDEN=1. */
static void golden(const struct cap *c, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s%s", GOLDEN_DIR, name);
    char *got = golden_text(c);
    const char *update = getenv("BMSFLEET_UPDATE_GOLDEN");
    if (update && strcmp(update, "1") == 0) {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        fputs(got, f);
        assert_int_equal(fclose(f), 0);
        print_message("rewrote %s (%zu messages)\n", path, c->n);
        free(got);
        return;
    }
    char *want = read_all(path);
    if (want == NULL) {
        free(got);
        fail_msg("%s is missing: run with BMSFLEET_UPDATE_GOLDEN=1 and review it", path);
    }
    if (strcmp(got, want) != 0) {
        /* show the first line that differs */
        const char *g = got, *w = want;
        unsigned line = 1;
        while (*g && *g == *w) {
            if (*g == '\n')
                line++;
            g++;
            w++;
        }
        const char *gl = g, *wl = w;
        while (gl > got && gl[-1] != '\n')
            gl--;
        while (wl > want && wl[-1] != '\n')
            wl--;
        print_error("%s:%u differs\n  got:  %.*s\n  want: %.*s\n", path, line,
                    (int)strcspn(gl, "\n"), gl, (int)strcspn(wl, "\n"), wl);
        free(got);
        free(want);
        fail_msg("golden mismatch in %s (BMSFLEET_UPDATE_GOLDEN=1 rewrites it)", name);
    }
    free(got);
    free(want);
}

/* ---- helpers on payloads ---- */

static cJSON *parse(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (j == NULL)
        fail_msg("not JSON: %s", text);
    return j;
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The component of a discovery topic <prefix>/<component>/<id>/config. */
static void topic_component(const char *topic, char *out, size_t cap)
{
    const char *a = strchr(topic, '/');
    assert_non_null(a);
    a++;
    size_t n = strcspn(a, "/");
    assert_true(n < cap);
    memcpy(out, a, n);
    out[n] = '\0';
}

/* Follows every value_json.<key>[<n>].<key> path of a template in state: each must exist. */
static void check_template_paths(const char *tmpl, const cJSON *state, const char *uid)
{
    static const char marker[] = "value_json.";
    for (const char *p = strstr(tmpl, marker); p; p = strstr(p, marker)) {
        p += strlen(marker);
        const cJSON *node = state;
        char path[128] = "", key[64];
        for (int first = 1;; first = 0) {
            if (first || *p == '.') {
                if (!first)
                    p++;
                size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
                if (n == 0 || n >= sizeof key)
                    fail_msg("%s: cannot read the key in '%s'", uid, tmpl);
                memcpy(key, p, n);
                key[n] = '\0';
                p += n;
                strncat(path, ".", sizeof path - strlen(path) - 1);
                strncat(path, key, sizeof path - strlen(path) - 1);
                node = cJSON_GetObjectItemCaseSensitive(node, key);
            } else if (*p == '[') {
                char *end;
                long idx = strtol(p + 1, &end, 10);
                assert_true(*end == ']' && idx >= 0);
                p = end + 1;
                strncat(path, "[]", sizeof path - strlen(path) - 1);
                node = cJSON_GetArrayItem(node, (int)idx);
            } else {
                break;
            }
            if (node == NULL)
                fail_msg("%s: template '%s' reads value_json%s, not in the state", uid, tmpl, path);
        }
    }
    /* 'name' in value_json.<list>: the name must be one the list can hold */
    for (const char *p = strstr(tmpl, "' in value_json."); p;
         p = strstr(p + 1, "' in value_json.")) {
        const char *q = p;
        while (q > tmpl && q[-1] != '\'')
            q--;
        char name[64], list[64];
        size_t n = (size_t)(p - q);
        assert_true(n < sizeof name);
        memcpy(name, q, n);
        name[n] = '\0';
        const char *l = p + strlen("' in value_json.");
        n = strspn(l, "abcdefghijklmnopqrstuvwxyz_");
        assert_true(n < sizeof list);
        memcpy(list, l, n);
        list[n] = '\0';
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(state, list), *it;
        int found = 0;
        cJSON_ArrayForEach(it, arr)
        {
            if (cJSON_IsString(it) && strcmp(it->valuestring, name) == 0)
                found = 1;
        }
        if (!found)
            fail_msg("%s: '%s' never appears in value_json.%s", uid, name, list);
    }
}

/* Checks every config of c against state (a parsed state JSON; NULL: skip templates). */
static void check_configs(const struct cap *c, const cJSON *state)
{
    for (size_t i = 0; i < c->n; i++) {
        const struct msg *m = &c->m[i];
        assert_int_equal(m->retain, 1);
        cJSON *j = parse(m->payload);
        const char *uid = str_of(j, "unique_id");
        assert_non_null(uid);
        assert_true(str_of(j, "state_topic") ||
                    cJSON_GetObjectItemCaseSensitive(j, "availability"));
        assert_non_null(str_of(j, "name"));
        assert_null(cJSON_GetObjectItemCaseSensitive(j, "object_id")); /* gone in HA 2026.4 */
        const cJSON *dev = cJSON_GetObjectItemCaseSensitive(j, "device");
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(dev, "identifiers");
        assert_true(cJSON_IsArray(ids) && cJSON_GetArraySize(ids) >= 1);
        assert_true(cJSON_IsString(cJSON_GetArrayItem(ids, 0)));
        assert_non_null(str_of(dev, "name"));
        const cJSON *origin = cJSON_GetObjectItemCaseSensitive(j, "origin");
        assert_string_equal(str_of(origin, "name"), "bmsfleet");
        assert_string_equal(str_of(origin, "sw_version"), BMSFLEET_VERSION);
        char comp[32];
        topic_component(m->topic, comp, sizeof comp);
        assert_true(strcmp(comp, "sensor") == 0 || strcmp(comp, "binary_sensor") == 0);
        const char *eid = str_of(j, "default_entity_id");
        assert_non_null(eid);
        assert_true(strncmp(eid, comp, strlen(comp)) == 0 && eid[strlen(comp)] == '.');
        for (const char *p = eid + strlen(comp) + 1; *p; p++)
            assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz0123456789_", *p));
        const char *tmpl = str_of(j, "value_template");
        if (tmpl && state)
            check_template_paths(tmpl, state, uid);
        /* energy sensors are what the energy dashboard accepts */
        const char *dc = str_of(j, "device_class");
        if (dc && strcmp(dc, "energy") == 0) {
            assert_string_equal(str_of(j, "state_class"), "total_increasing");
            assert_string_equal(str_of(j, "unit_of_measurement"), "kWh");
        }
        cJSON_Delete(j);
    }
}

static void assert_unique_ids(const struct cap *const *caps, size_t ncaps)
{
    size_t total = 0;
    for (size_t k = 0; k < ncaps; k++)
        total += caps[k]->n;
    char **ids = calloc(total, sizeof *ids);
    char **topics = calloc(total, sizeof *topics);
    assert_non_null(ids);
    assert_non_null(topics);
    size_t n = 0;
    for (size_t k = 0; k < ncaps; k++) {
        for (size_t i = 0; i < caps[k]->n; i++, n++) {
            cJSON *j = parse(caps[k]->m[i].payload);
            ids[n] = dup(str_of(j, "unique_id"));
            topics[n] = caps[k]->m[i].topic;
            cJSON_Delete(j);
            for (size_t q = 0; q < n; q++) {
                if (strcmp(ids[q], ids[n]) == 0)
                    fail_msg("unique_id %s used twice", ids[n]);
                if (strcmp(topics[q], topics[n]) == 0)
                    fail_msg("config topic %s used twice", topics[n]);
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    free(topics);
}

static cJSON *config_of(const struct cap *c, const char *topic)
{
    const struct msg *m = cap_find(c, topic);
    if (m == NULL)
        fail_msg("no message on %s", topic);
    return parse(m->payload);
}

/* ---- tests: golden ---- */

static void test_golden_pack(void **state)
{
    (void)state;
    struct config *cfg = load(fleet_yaml);
    struct s42_identity id;
    identity(&id);
    struct ha_pack_info info = pack1_info(cfg, &id);
    struct cap c = {0};
    assert_int_equal(ha_pack_discovery(cfg, &info, cap_emit, &c), 0);
    /* 14 metrics, 2 energy, 16 cells, 6 temps, 18 alarms, 16 protections, balancing, 2 FETs,
     * last seen, 4 counters, serial, firmware */
    assert_int_equal(c.n, 14 + 2 + 16 + 6 + 18 + 16 + 1 + 2 + 1 + 4 + 2);
    golden(&c, "pack_discovery.txt");
    cap_free(&c);
    config_free(cfg);
}

static void test_golden_bank_node(void **state)
{
    (void)state;
    struct config *cfg = load(fleet_yaml);
    struct cap c = {0};
    assert_int_equal(ha_bank_discovery(cfg, 0, cap_emit, &c), 0);
    assert_int_equal(c.n, 15);
    golden(&c, "bank_discovery.txt");
    cap_free(&c);
    assert_int_equal(ha_node_discovery(cfg, cap_emit, &c), 0);
    assert_true(cfg->storage.enabled);
    assert_int_equal(c.n, 2); /* status, and the history writer's problem sensor */
    golden(&c, "node_discovery.txt");
    assert_non_null(strstr(c.m[1].payload, "\"json_attributes_topic\":\"bmsfleet/cabin/storage\""));
    cap_free(&c);
    cfg->storage.enabled = 0; /* no history: no history sensor */
    assert_int_equal(ha_node_discovery(cfg, cap_emit, &c), 0);
    assert_int_equal(c.n, 1);
    cap_free(&c);
    assert_int_equal(ha_bank_discovery(cfg, 2, cap_emit, &c), -EINVAL);
    assert_int_equal(c.n, 0);
    config_free(cfg);
}

static void test_golden_compat(void **state)
{
    (void)state;
    struct config *cfg = load(fleet_yaml);
    struct cap c = {0};
    assert_int_equal(ha_compat_discovery(cfg, cap_emit, &c), 0);
    golden(&c, "compat_discovery.txt");
    cap_free(&c);
    struct sample s;
    daren_sample(&s);
    assert_int_equal(ha_compat_states(cfg, &s, cap_emit, &c), 0);
    golden(&c, "compat_states.txt");
    cap_free(&c);
    config_free(cfg);
}

static void test_golden_states(void **state)
{
    (void)state;
    struct config *cfg = load(fleet_yaml);
    struct sample s, s2;
    daren_sample(&s);
    struct cap c = {0};
    char topic[256];
    char text[REPORT_JSON_MAX];
    assert_true(ha_pack_state(text, sizeof text, &s, "daren", &extra_known) > 0);
    cap_emit(&c, ha_topic_pack(cfg, "pack1", "state", topic, sizeof topic), text, 0);

    full_sample(&s2, SAMPLE_ALARM_CELL_OV, SAMPLE_PROT_CHG_OC,
                SAMPLE_STATE_CHG_FET | SAMPLE_STATE_DSG_FET | SAMPLE_STATE_DISCHARGING);
    s2.soc_cpct = 4500; /* (67 × 80 + 45 × 100) / 180 = 54.78 %, 22 % apart: diverged */
    s2.full_mah = 100000;
    struct bank_input in[] = {{"pack1", &s, 1, 123.45678, NAN}, {"pack2", &s2, 1, 10.5, 2.25}};
    struct bank_state b;
    bank_aggregate(in, 2, 1000, &b);
    assert_true(ha_bank_state(text, sizeof text, &b) > 0);
    cap_emit(&c, ha_topic_bank(cfg, "house", topic, sizeof topic), text, 0);
    golden(&c, "states.txt");
    cap_free(&c);
    config_free(cfg);
}

/* The voltage config is the one HOME-ASSISTANT.md shows, field for field. */
static void test_voltage_matches_design(void **state)
{
    (void)state;
    static const char doc[] =
        "{\"name\":\"Voltage\",\"unique_id\":\"bmsfleet_cabin_pack1_voltage\","
        "\"default_entity_id\":\"sensor.cabin_pack1_voltage\","
        "\"state_topic\":\"bmsfleet/pack1/state\",\"value_template\":\"{{ value_json.voltage }}\","
        "\"device_class\":\"voltage\",\"state_class\":\"measurement\","
        "\"unit_of_measurement\":\"V\",\"suggested_display_precision\":2,"
        "\"availability\":[{\"topic\":\"bmsfleet/cabin/status\"},"
        "{\"topic\":\"bmsfleet/pack1/availability\"}],\"availability_mode\":\"all\","
        "\"device\":{\"identifiers\":[\"bmsfleet_cabin_pack1\"],\"name\":\"Pack 1\","
        "\"manufacturer\":\"Daren\",\"model\":\"16S LiFePO4\",\"serial_number\":\"DJM2205180061\","
        "\"sw_version\":\"01.00.02\",\"via_device\":\"bmsfleet_cabin\"},"
        "\"origin\":{\"name\":\"bmsfleet\",\"sw_version\":\"" BMSFLEET_VERSION "\"}}";
    struct config *cfg = load(fleet_yaml);
    struct s42_identity id;
    identity(&id);
    struct ha_pack_info info = pack1_info(cfg, &id);
    struct cap c = {0};
    assert_int_equal(ha_pack_discovery(cfg, &info, cap_emit, &c), 0);
    cJSON *got = config_of(&c, "homeassistant/sensor/bmsfleet_cabin_pack1_voltage/config");
    cJSON *want = parse(doc);
    if (!cJSON_Compare(got, want, 1))
        fail_msg("voltage config differs from the design:\n%s", cap_find(&c, "homeassistant/sensor/"
                                                                             "bmsfleet_cabin_pack1_"
                                                                             "voltage/config")
                                                                    ->payload);
    cJSON_Delete(got);
    cJSON_Delete(want);
    cap_free(&c);
    config_free(cfg);
}

/* ---- tests: structure ---- */

static void test_structure(void **state)
{
    (void)state;
    struct config *cfg = load(fleet_yaml);
    struct s42_identity id;
    identity(&id);
    struct ha_pack_info info = pack1_info(cfg, &id);
    struct cap pack1 = {0}, pack2 = {0}, pack3 = {0}, bank0 = {0}, bank1 = {0}, node = {0},
               compat = {0};
    assert_int_equal(ha_pack_discovery(cfg, &info, cap_emit, &pack1), 0);
    struct ha_pack_info info2 = {.port = &cfg->ports[0], .pack = &cfg->ports[0].packs[1]};
    assert_int_equal(ha_pack_discovery(cfg, &info2, cap_emit, &pack2), 0);
    struct ha_pack_info info3 = {
        .port = &cfg->ports[1], .pack = &cfg->ports[1].packs[0], .ncells = 15, .ntemps = 4};
    assert_int_equal(ha_pack_discovery(cfg, &info3, cap_emit, &pack3), 0);
    assert_int_equal(ha_bank_discovery(cfg, 0, cap_emit, &bank0), 0);
    assert_int_equal(ha_bank_discovery(cfg, 1, cap_emit, &bank1), 0);
    assert_int_equal(ha_node_discovery(cfg, cap_emit, &node), 0);
    assert_int_equal(ha_compat_discovery(cfg, cap_emit, &compat), 0);

    /* templates against a state with every value, every flag set */
    struct sample s;
    full_sample(&s, (1u << SAMPLE_ALARM_COUNT) - 1, (1u << SAMPLE_PROT_COUNT) - 1,
                (1u << SAMPLE_STATE_COUNT) - 1);
    struct ha_pack_extra x = extra_known;
    x.discharged_kwh = 4.5;
    char text[REPORT_JSON_MAX];
    assert_true(ha_pack_state(text, sizeof text, &s, "daren", &x) > 0);
    cJSON *pstate = parse(text);
    check_configs(&pack1, pstate);
    check_configs(&pack2, pstate);
    check_configs(&pack3, pstate);

    struct sample s2;
    full_sample(&s2, 0, 0, 0);
    struct bank_input in[] = {{"pack1", &s, 1, 1.0, 2.0}, {"pack2", &s2, 1, 3.0, 4.0}};
    struct bank_state b;
    bank_aggregate(in, 2, 1000, &b);
    assert_true(ha_bank_state(text, sizeof text, &b) > 0);
    cJSON *bstate = parse(text);
    check_configs(&bank0, bstate);
    check_configs(&bank1, bstate);
    check_configs(&node, NULL);
    check_configs(&compat, NULL);
    cJSON_Delete(pstate);
    cJSON_Delete(bstate);

    const struct cap *all[] = {&pack1, &pack2, &pack3, &bank0, &bank1, &node, &compat};
    assert_unique_ids(all, sizeof all / sizeof all[0]);

    /* config topics are <prefix>/<component>/<unique_id>/config (compat aside) */
    const struct cap *own[] = {&pack1, &pack2, &pack3, &bank0, &bank1, &node};
    for (size_t k = 0; k < sizeof own / sizeof own[0]; k++) {
        for (size_t i = 0; i < own[k]->n; i++) {
            cJSON *j = parse(own[k]->m[i].payload);
            char comp[32], want[300];
            const char *uid = str_of(j, "unique_id");
            assert_non_null(uid);
            topic_component(own[k]->m[i].topic, comp, sizeof comp);
            snprintf(want, sizeof want, "homeassistant/%s/%s/config", comp, uid ? uid : "");
            assert_string_equal(own[k]->m[i].topic, want);
            cJSON_Delete(j);
        }
    }

    /* pack entities: availability node + pack (mode all), except last seen (node only);
     * per-cell and per-sensor entities disabled by default, nothing else */
    for (size_t i = 0; i < pack1.n; i++) {
        cJSON *j = parse(pack1.m[i].payload);
        const char *uid = str_of(j, "unique_id");
        const char *key = uid + strlen("bmsfleet_cabin_pack1_");
        const cJSON *av = cJSON_GetObjectItemCaseSensitive(j, "availability");
        assert_string_equal(str_of(cJSON_GetArrayItem(av, 0), "topic"), "bmsfleet/cabin/status");
        if (strcmp(key, "last_seen") == 0) {
            assert_int_equal(cJSON_GetArraySize(av), 1);
        } else {
            assert_int_equal(cJSON_GetArraySize(av), 2);
            assert_string_equal(str_of(cJSON_GetArrayItem(av, 1), "topic"),
                                "bmsfleet/pack1/availability");
            assert_string_equal(str_of(j, "availability_mode"), "all");
        }
        assert_string_equal(str_of(j, "state_topic"), "bmsfleet/pack1/state");
        const cJSON *en = cJSON_GetObjectItemCaseSensitive(j, "enabled_by_default");
        int per_item = (strncmp(key, "cell_", 5) == 0 && key[5] >= '0' && key[5] <= '9') ||
                       (strncmp(key, "temp_", 5) == 0 && key[5] >= '0' && key[5] <= '9');
        if (per_item)
            assert_true(cJSON_IsFalse(en));
        else
            assert_null(en);
        const cJSON *dev = cJSON_GetObjectItemCaseSensitive(j, "device");
        assert_string_equal(str_of(dev, "via_device"), "bmsfleet_cabin");
        cJSON_Delete(j);
    }

    /* named by role; diagnostics; energy in the pack and the bank */
    cJSON *j = config_of(&pack1, "homeassistant/sensor/bmsfleet_cabin_pack1_temp_5/config");
    assert_string_equal(str_of(j, "name"), "Temperature 5 (MOS)");
    assert_string_equal(str_of(j, "value_template"), "{{ value_json.temperatures[4].value }}");
    cJSON_Delete(j);
    j = config_of(&pack1, "homeassistant/sensor/bmsfleet_cabin_pack1_cell_16/config");
    assert_string_equal(str_of(j, "value_template"), "{{ value_json.cells[15] }}");
    cJSON_Delete(j);
    assert_null(cap_find(&pack1, "homeassistant/sensor/bmsfleet_cabin_pack1_cell_17/config"));
    static const char *const diag[] = {"last_seen", "polls",  "timeouts", "checksum_errors",
                                       "malformed", "serial", "firmware", "design_ah"};
    for (size_t i = 0; i < sizeof diag / sizeof diag[0]; i++) {
        char t[200];
        snprintf(t, sizeof t, "homeassistant/sensor/bmsfleet_cabin_pack1_%s/config", diag[i]);
        j = config_of(&pack1, t);
        assert_string_equal(str_of(j, "entity_category"), "diagnostic");
        cJSON_Delete(j);
    }
    j = config_of(&pack1, "homeassistant/sensor/bmsfleet_cabin_pack1_last_seen/config");
    assert_string_equal(str_of(j, "device_class"), "timestamp");
    cJSON_Delete(j);
    j = config_of(&pack1, "homeassistant/sensor/bmsfleet_cabin_pack1_serial/config");
    assert_string_equal(str_of(j, "value_template"), "{{ 'DJM2205180061' }}");
    cJSON_Delete(j);
    static const char *const energy[] = {
        "homeassistant/sensor/bmsfleet_cabin_pack1_charged_kwh/config",
        "homeassistant/sensor/bmsfleet_cabin_pack1_discharged_kwh/config",
        "homeassistant/sensor/bmsfleet_cabin_bank_house_charged_kwh/config",
        "homeassistant/sensor/bmsfleet_cabin_bank_house_discharged_kwh/config"};
    for (size_t i = 0; i < sizeof energy / sizeof energy[0]; i++) {
        j = config_of(i < 2 ? &pack1 : &bank0, energy[i]);
        assert_string_equal(str_of(j, "device_class"), "energy");
        assert_string_equal(str_of(j, "state_class"), "total_increasing");
        assert_string_equal(str_of(j, "unit_of_measurement"), "kWh");
        cJSON_Delete(j);
    }
    j = config_of(&pack1,
                  "homeassistant/binary_sensor/bmsfleet_cabin_pack1_alarm_mos_high_temp/config");
    assert_string_equal(str_of(j, "name"), "MOS high temperature alarm");
    cJSON_Delete(j);
    j = config_of(&pack1, "homeassistant/binary_sensor/bmsfleet_cabin_pack1_alarm_low_soc/config");
    assert_string_equal(str_of(j, "name"), "Low SOC alarm");
    cJSON_Delete(j);
    /* binary sensors and their classes */
    static const struct {
        const char *key, *dc;
    } bins[] = {{"alarm_cell_overvoltage", "problem"},
                {"alarm_temperature_low", "problem"},
                {"protection_short_circuit", "safety"},
                {"protection_fuse_blown", "safety"},
                {"balancing", "running"},
                {"charge_fet", "power"},
                {"discharge_fet", "power"}};
    for (size_t i = 0; i < sizeof bins / sizeof bins[0]; i++) {
        char t[200];
        snprintf(t, sizeof t, "homeassistant/binary_sensor/bmsfleet_cabin_pack1_%s/config",
                 bins[i].key);
        j = config_of(&pack1, t);
        assert_string_equal(str_of(j, "device_class"), bins[i].dc);
        cJSON_Delete(j);
    }

    /* pack2: unique ids and device from the configured serial, entity ids from node + pack;
     * not identified yet: no serial / firmware sensors, no model, the configured serial */
    j = config_of(&pack2, "homeassistant/sensor/bmsfleet_djm2205180062_voltage/config");
    assert_string_equal(str_of(j, "unique_id"), "bmsfleet_djm2205180062_voltage");
    assert_string_equal(str_of(j, "default_entity_id"), "sensor.cabin_pack2_voltage");
    const cJSON *dev = cJSON_GetObjectItemCaseSensitive(j, "device");
    assert_string_equal(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(dev, "identifiers"), 0)->valuestring,
        "bmsfleet_djm2205180062");
    assert_string_equal(str_of(dev, "serial_number"), "DJM2205180062");
    assert_null(str_of(dev, "model"));
    assert_null(str_of(dev, "sw_version"));
    cJSON_Delete(j);
    assert_null(cap_find(&pack2, "homeassistant/sensor/bmsfleet_djm2205180062_serial/config"));
    assert_null(cap_find(&pack2, "homeassistant/sensor/bmsfleet_djm2205180062_cell_1/config"));
    /* pack3: PACE, named by its id */
    j = config_of(&pack3, "homeassistant/sensor/bmsfleet_cabin_pack3_soc/config");
    dev = cJSON_GetObjectItemCaseSensitive(j, "device");
    assert_string_equal(str_of(dev, "manufacturer"), "PACE");
    assert_string_equal(str_of(dev, "model"), "15S LiFePO4");
    assert_string_equal(str_of(dev, "name"), "pack3");
    cJSON_Delete(j);

    /* bank: availability is the node only; its own device via the node */
    for (size_t i = 0; i < bank0.n; i++) {
        j = parse(bank0.m[i].payload);
        const cJSON *av = cJSON_GetObjectItemCaseSensitive(j, "availability");
        assert_int_equal(cJSON_GetArraySize(av), 1);
        assert_string_equal(str_of(cJSON_GetArrayItem(av, 0), "topic"), "bmsfleet/cabin/status");
        assert_string_equal(str_of(j, "state_topic"), "bmsfleet/bank/house/state");
        dev = cJSON_GetObjectItemCaseSensitive(j, "device");
        assert_string_equal(
            cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(dev, "identifiers"), 0)
                ->valuestring,
            "bmsfleet_cabin_bank_house");
        assert_string_equal(str_of(dev, "via_device"), "bmsfleet_cabin");
        cJSON_Delete(j);
    }
    j = config_of(&bank0, "homeassistant/sensor/bmsfleet_cabin_bank_house_packs_online/config");
    assert_null(str_of(j, "unit_of_measurement"));
    assert_null(str_of(j, "state_class"));
    assert_null(str_of(j, "device_class"));
    cJSON_Delete(j);
    j = config_of(&bank0,
                  "homeassistant/binary_sensor/bmsfleet_cabin_bank_house_soc_diverged/config");
    assert_string_equal(str_of(j, "device_class"), "problem");
    cJSON_Delete(j);
    j = config_of(&bank0, "homeassistant/sensor/bmsfleet_cabin_bank_house_soc/config");
    assert_string_equal(str_of(j, "device_class"), "battery");
    assert_string_equal(str_of(j, "unit_of_measurement"), "%");
    cJSON_Delete(j);
    /* the node device: what via_device points at */
    j = parse(node.m[0].payload);
    dev = cJSON_GetObjectItemCaseSensitive(j, "device");
    assert_string_equal(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(dev, "identifiers"), 0)->valuestring,
        "bmsfleet_cabin");
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "availability"));
    assert_string_equal(node.m[0].topic,
                        "homeassistant/binary_sensor/bmsfleet_cabin_status/config");
    cJSON_Delete(j);

    struct cap *caps[] = {&pack1, &pack2, &pack3, &bank0, &bank1, &node, &compat};
    for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++)
        cap_free(caps[k]);
    config_free(cfg);
}

/* Values a pack did not send are null or left out, never 0; same for the bank. */
static void test_absent_not_zero(void **state)
{
    (void)state;
    struct sample s;
    sample_init(&s);
    s.has = SAMPLE_HAS_ANALOG;
    struct ha_pack_extra x = {.charged_kwh = NAN, .discharged_kwh = NAN, .ts_ms = 0};
    char text[REPORT_JSON_MAX];
    assert_true(ha_pack_state(text, sizeof text, &s, "daren", &x) > 0);
    cJSON *j = parse(text);
    for (size_t i = 0; i < metrics_pack_count; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, metrics_pack[i].key);
        if (!cJSON_IsNull(v))
            fail_msg("absent %s is not null", metrics_pack[i].key);
    }
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "charged_kwh"));
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "discharged_kwh"));
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "last_seen"));
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "alarms")); /* no alarm frame: no list */
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "cells")), 0);
    cJSON_Delete(j);

    /* a known 0 stays 0 */
    x.charged_kwh = 0.0;
    assert_true(ha_pack_state(text, sizeof text, &s, NULL, &x) > 0);
    j = parse(text);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "charged_kwh");
    assert_true(cJSON_IsNumber(v) && v->valuedouble == 0.0);
    cJSON_Delete(j);

    /* a bank of stale packs: only the count */
    struct bank_input in[] = {{"a", &s, 0, NAN, NAN}, {"b", NULL, 0, NAN, NAN}};
    struct bank_state b;
    bank_aggregate(in, 2, 1000, &b);
    assert_true(ha_bank_state(text, sizeof text, &b) > 0);
    assert_string_equal(text, "{\"packs_online\":\"0/2\"}");
    /* online but without values */
    in[0].fresh = 1;
    bank_aggregate(in, 2, 1000, &b);
    assert_true(ha_bank_state(text, sizeof text, &b) > 0);
    assert_string_equal(text, "{\"packs_online\":\"1/2\"}");
}

/* ha_pack_state is report_sample_json plus the extra fields. */
static void test_pack_state_fields(void **state)
{
    (void)state;
    struct sample s;
    daren_sample(&s);
    char text[REPORT_JSON_MAX];
    assert_true(ha_pack_state(text, sizeof text, &s, "daren", &extra_known) > 0);
    cJSON *j = parse(text);
    assert_string_equal(str_of(j, "last_seen"), "2026-01-01T00:00:30+00:00");
    assert_true(cJSON_GetObjectItemCaseSensitive(j, "charged_kwh")->valuedouble == 123.457);
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "discharged_kwh"));
    assert_true(cJSON_GetObjectItemCaseSensitive(j, "polls")->valuedouble == 1200);
    assert_true(cJSON_GetObjectItemCaseSensitive(j, "timeouts")->valuedouble == 3);
    assert_true(cJSON_GetObjectItemCaseSensitive(j, "checksum_errors")->valuedouble == 1);
    assert_true(cJSON_GetObjectItemCaseSensitive(j, "malformed")->valuedouble == 0);
    assert_true(cJSON_GetObjectItemCaseSensitive(j, "voltage")->valuedouble == 53.12);
    assert_true(cJSON_GetObjectItemCaseSensitive(j, "soc")->valuedouble == 67.0);
    assert_string_equal(str_of(j, "protocol"), "daren");
    /* everything report_sample_json has is there, unchanged */
    cJSON *r = report_sample_json(&s, "daren", extra_known.ts_ms);
    const cJSON *it;
    cJSON_ArrayForEach(it, r)
    {
        const cJSON *mine = cJSON_GetObjectItemCaseSensitive(j, it->string);
        if (!cJSON_Compare(it, mine, 1))
            fail_msg("%s differs from report_sample_json", it->string);
    }
    cJSON_Delete(r);
    cJSON_Delete(j);
    /* no extra: just the report */
    assert_true(ha_pack_state(text, sizeof text, &s, "daren", NULL) > 0);
    j = parse(text);
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "polls"));
    cJSON_Delete(j);
}

/* The history writer's state, as the "History writing" sensor's template and attributes read
 * it. */
static void test_storage_state(void **state)
{
    (void)state;
    struct ha_storage ok = {0}, bad = {.failing = 1, .error = "database or disk is full",
                                       .waiting = 42, .dropped = 3};
    char *a = ha_storage_state(&ok), *b = ha_storage_state(&bad);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a, "{\"state\":\"ok\",\"error\":\"\",\"waiting\":0,\"dropped\":0}");
    assert_string_equal(b, "{\"state\":\"failing\",\"error\":\"database or disk is full\","
                           "\"waiting\":42,\"dropped\":3}");
    free(a);
    free(b);
    struct config *cfg = load(fleet_yaml);
    char topic[256];
    assert_string_equal(ha_topic_storage(cfg, topic, sizeof topic), "bmsfleet/cabin/storage");
    config_free(cfg);
}

static void test_bank_state_fields(void **state)
{
    (void)state;
    struct bank_state b = {
        .packs_total = 4,
        .packs_online = 3,
        .soc_cpct = 6000,
        .soc_min_cpct = 2000,
        .soc_max_cpct = 8000,
        .soc_diverged = 1,
        .current_ma = -12345,
        .power_w = -654.321,
        .remaining_mah = 90000,
        .full_mah = 150000,
        .cell_min_mv = 3297,
        .cell_max_mv = 3330,
        .cell_spread_mv = 33,
        .cell_min_pack = "pack2",
        .cell_max_pack = "pack1",
        .cell_min_idx = 7,
        .cell_max_idx = 12,
        .temp_max_dc = 312,
        .charged_kwh = 1234.5678,
        .discharged_kwh = NAN,
    };
    char text[REPORT_JSON_MAX];
    assert_true(ha_bank_state(text, sizeof text, &b) > 0);
    assert_string_equal(text,
                        "{\"packs_online\":\"3/4\",\"soc\":60,\"soc_min\":20,\"soc_max\":80,"
                        "\"soc_diverged\":true,\"current\":-12.345,\"power\":-654.3,"
                        "\"remaining_ah\":90,\"full_ah\":150,\"cell_min\":3.297,"
                        "\"cell_min_pack\":\"pack2 #7\",\"cell_max\":3.33,"
                        "\"cell_max_pack\":\"pack1 #12\",\"cell_spread\":33,\"temp_max\":31.2,"
                        "\"charged_kwh\":1234.568}");
    /* a buffer too small is refused whole, never a cut text */
    char small[40];
    assert_int_equal(ha_bank_state(small, sizeof small, &b), -1);
}

/* ---- the JSON writer of the per-sample paths (jsonw.h) ---- */

static void test_jsonw_numbers(void **state)
{
    (void)state;
    static const struct {
        int64_t v;
        unsigned dec;
        const char *want;
    } ex[] = {
        {0, 0, "0"},          {0, 3, "0"},          {53020, 3, "53.02"},   {-5, 3, "-0.005"},
        {-12345, 3, "-12.345"}, {3000, 3, "3"},     {100, 2, "1"},         {7, 1, "0.7"},
        {-70, 1, "-7"},       {1767225630250, 3, "1767225630.25"},
        {INT64_MAX, 0, "9223372036854775807"},      {INT64_MIN, 0, "-9223372036854775808"},
        {INT32_MIN, 3, "-2147483.648"},
    };
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
        char buf[64];
        struct jsonw w;
        jsonw_init(&w, buf, sizeof buf);
        jsonw_fixed(&w, ex[i].v, ex[i].dec);
        assert_true(jsonw_end(&w) > 0);
        assert_string_equal(buf, ex[i].want);
    }
    char buf[64];
    struct jsonw w;
    jsonw_init(&w, buf, sizeof buf);
    jsonw_open(&w, '[');
    jsonw_round(&w, -654.321, 1);
    jsonw_round(&w, -0.04, 1); /* rounds to zero: "0", never "-0" */
    jsonw_round(&w, NAN, 3);
    jsonw_round(&w, 2.5, 0); /* half away from zero, as round() */
    jsonw_bool(&w, 1);
    jsonw_str(&w, "a\"b\\\n\x01");
    jsonw_close(&w, ']');
    assert_true(jsonw_end(&w) > 0);
    assert_string_equal(buf, "[-654.3,0,null,3,true,\"a\\\"b\\\\\\n\\u0001\"]");
    /* too small: refused whole */
    char small[4];
    jsonw_init(&w, small, sizeof small);
    jsonw_str(&w, "four");
    assert_int_equal(jsonw_end(&w), -1);
}

/* The text is what cJSON prints for the same values: parsed and printed again by cJSON, every
 * sample of a seeded series comes back to the letter (the numbers' shortest decimal forms). */
static void test_jsonw_as_cjson(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ull;
    for (int n = 0; n < 2000; n++) {
        struct sample s;
        full_sample(&s, (uint32_t)n, (uint32_t)n >> 3, (uint32_t)n >> 5);
        /* xorshift: values over the ranges a pack reports, and beyond */
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        s.voltage_mv = (int32_t)(x % 70000);
        s.current_ma = (int32_t)(x % 400001) - 200000;
        s.soc_cpct = (int32_t)(x % 10001);
        s.remaining_mah = (int32_t)((x >> 8) % 400000);
        for (unsigned i = 0; i < s.ncells; i++)
            s.cell_mv[i] = (int32_t)((x >> i) % 5000);
        for (unsigned i = 0; i < s.ntemps; i++)
            s.temp_dc[i] = (int32_t)((x >> (2 * i)) % 1200) - 400;
        struct ha_pack_extra e = {.charged_kwh = (double)(x % 10000000) / 997.0,
                                  .discharged_kwh = NAN,
                                  .ts_ms = 1767225600000 + (long long)(x % 100000000),
                                  .polls = x % 100000};
        char text[REPORT_JSON_MAX];
        assert_true(ha_pack_state(text, sizeof text, &s, "pace", &e) > 0);
        cJSON *j = cJSON_Parse(text);
        assert_non_null(j);
        char *again = cJSON_PrintUnformatted(j);
        if (strcmp(again, text) != 0)
            fail_msg("sample %d:\n  ours  %s\n  cJSON %s", n, text, again);
        cJSON_free(again);
        cJSON_Delete(j);
    }
}

/* ---- compatibility ---- */

static const char *const compat_keys[] = {"soc",
                                          "pack_voltage",
                                          "pack_current",
                                          "remaining_capacity",
                                          "full_capacity",
                                          "cycle_count",
                                          "ambient_temp",
                                          "mos_temp",
                                          "min_cell_voltage",
                                          "max_cell_voltage",
                                          "cell_voltage_diff"};

static void test_compat(void **state)
{
    (void)state;
    struct config *cfg = load(fleet_yaml);
    struct cap c = {0};
    assert_int_equal(ha_compat_discovery(cfg, cap_emit, &c), 0);
    assert_int_equal(c.n, 11);
    for (size_t i = 0; i < 11; i++) {
        char t[200], st[200], uid[100];
        snprintf(t, sizeof t, "homeassistant/sensor/daren_bms/%s/config", compat_keys[i]);
        snprintf(st, sizeof st, "bms/daren_bms/%s", compat_keys[i]);
        snprintf(uid, sizeof uid, "daren_bms_%s", compat_keys[i]);
        assert_string_equal(c.m[i].topic, t);
        assert_int_equal(c.m[i].retain, 1);
        cJSON *j = parse(c.m[i].payload);
        assert_string_equal(str_of(j, "state_topic"), st);
        assert_string_equal(str_of(j, "unique_id"), uid);
        assert_null(str_of(j, "value_template"));
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(j, "device"), "identifiers");
        assert_int_equal(cJSON_GetArraySize(ids), 1);
        assert_string_equal(cJSON_GetArrayItem(ids, 0)->valuestring, "daren_bms");
        cJSON_Delete(j);
    }
    cap_free(&c);

    /* the Daren vector, number by number */
    static const char *const want[][2] = {
        {"bms/daren_bms/soc", "67.0"},
        {"bms/daren_bms/pack_voltage", "53.12"},
        {"bms/daren_bms/pack_current", "0.00"},
        {"bms/daren_bms/remaining_capacity", "53.60"},
        {"bms/daren_bms/full_capacity", "80.00"},
        {"bms/daren_bms/cycle_count", "204"},
        {"bms/daren_bms/ambient_temp", "27.0"},
        {"bms/daren_bms/mos_temp", "27.0"},
        {"bms/daren_bms/min_cell_voltage", "3.291"},
        {"bms/daren_bms/max_cell_voltage", "3.330"},
        {"bms/daren_bms/cell_voltage_diff", "0.039"},
    };
    struct sample s;
    daren_sample(&s);
    assert_int_equal(ha_compat_states(cfg, &s, cap_emit, &c), 0);
    assert_int_equal(c.n, 11);
    for (size_t i = 0; i < 11; i++) {
        assert_string_equal(c.m[i].topic, want[i][0]);
        assert_string_equal(c.m[i].payload, want[i][1]);
        assert_int_equal(c.m[i].retain, 0);
    }
    cap_free(&c);

    /* absent values publish nothing; halves round away from zero; no "-0.00" */
    sample_init(&s);
    s.soc_cpct = 6705;
    s.current_ma = -4;
    s.voltage_mv = 53125;
    assert_int_equal(ha_compat_states(cfg, &s, cap_emit, &c), 0);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.m[0].payload, "67.1");
    assert_string_equal(c.m[1].payload, "53.13");
    assert_string_equal(c.m[2].payload, "0.00");
    cap_free(&c);
    s.current_ma = -1005;
    assert_int_equal(ha_compat_states(cfg, &s, cap_emit, &c), 0);
    assert_string_equal(c.m[2].payload, "-1.01");
    cap_free(&c);

    /* compat off: nothing */
    cfg->mqtt.compat = 0;
    assert_int_equal(ha_compat_discovery(cfg, cap_emit, &c), 0);
    daren_sample(&s);
    assert_int_equal(ha_compat_states(cfg, &s, cap_emit, &c), 0);
    assert_int_equal(c.n, 0);
    config_free(cfg);
}

/* ---- clearing ---- */

static int in_cap(const struct cap *c, const char *topic)
{
    return cap_find(c, topic) != NULL;
}

static void test_clear(void **state)
{
    (void)state;
    struct config *cfg = load(fleet_yaml);
    struct s42_identity id;
    identity(&id);
    struct cap disc = {0}, clr = {0};

    /* pack1 (no serial): everything discovered is cleared, and the largest pack too */
    struct ha_pack_info info = pack1_info(cfg, &id);
    assert_int_equal(ha_pack_discovery(cfg, &info, cap_emit, &disc), 0);
    info.ncells = SAMPLE_MAX_CELLS;
    info.ntemps = SAMPLE_MAX_TEMPS;
    info.temp_roles = NULL;
    assert_int_equal(ha_pack_discovery(cfg, &info, cap_emit, &disc), 0);
    assert_int_equal(ha_pack_clear(cfg, "pack1", NULL, cap_emit, &clr), 0);
    assert_int_equal(clr.n, 14 + 2 + 32 + 16 + 18 + 16 + 3 + 5 + 2);
    for (size_t i = 0; i < clr.n; i++) {
        assert_string_equal(clr.m[i].payload, "");
        assert_int_equal(clr.m[i].retain, 1);
    }
    for (size_t i = 0; i < disc.n; i++) {
        if (!in_cap(&clr, disc.m[i].topic))
            fail_msg("%s is not cleared", disc.m[i].topic);
    }
    for (size_t i = 0; i < clr.n; i++) /* and nothing that was never discovered */
        assert_true(in_cap(&disc, clr.m[i].topic));
    cap_free(&disc);
    cap_free(&clr);

    /* pack2 with a serial: both unique_id forms */
    struct ha_pack_info info2 = {.port = &cfg->ports[0],
                                 .pack = &cfg->ports[0].packs[1],
                                 .id = &id,
                                 .ncells = 16,
                                 .ntemps = 6};
    assert_int_equal(ha_pack_discovery(cfg, &info2, cap_emit, &disc), 0);
    struct config_pack bare = cfg->ports[0].packs[1];
    bare.serial[0] = '\0'; /* as it was before the serial was configured */
    info2.pack = &bare;
    assert_int_equal(ha_pack_discovery(cfg, &info2, cap_emit, &disc), 0);
    assert_int_equal(ha_pack_clear(cfg, "pack2", "DJM2205180062", cap_emit, &clr), 0);
    assert_int_equal(clr.n, 2 * (14 + 2 + 32 + 16 + 18 + 16 + 3 + 5 + 2));
    for (size_t i = 0; i < disc.n; i++) {
        if (!in_cap(&clr, disc.m[i].topic))
            fail_msg("%s is not cleared", disc.m[i].topic);
    }
    assert_true(in_cap(&clr, "homeassistant/sensor/bmsfleet_djm2205180062_cell_32/config"));
    assert_true(in_cap(&clr, "homeassistant/sensor/bmsfleet_cabin_pack2_temp_16/config"));
    cap_free(&disc);
    cap_free(&clr);

    /* an empty serial is no serial */
    assert_int_equal(ha_pack_clear(cfg, "pack2", "", cap_emit, &clr), 0);
    assert_int_equal(clr.n, 14 + 2 + 32 + 16 + 18 + 16 + 3 + 5 + 2);
    cap_free(&clr);
    config_free(cfg);
}

/* ---- names, topics, errors ---- */

static void test_topics_and_names(void **state)
{
    (void)state;
    struct config *cfg = load("node: { id: Cabin-North, name: North }\n"
                              "ports:\n"
                              "  - device: /dev/ttyUSB0\n"
                              "    protocol: seplos\n"
                              "    packs: [{ address: 1, id: Rack-A_1, serial: \"SN 12/34\" }]\n"
                              "mqtt: { base_topic: solar/bms, discovery_prefix: ha }\n");
    char buf[200];
    assert_string_equal(ha_topic_status(cfg, buf, sizeof buf), "solar/bms/Cabin-North/status");
    assert_string_equal(ha_topic_pack(cfg, "Rack-A_1", "availability", buf, sizeof buf),
                        "solar/bms/Rack-A_1/availability");
    assert_string_equal(ha_topic_pack(cfg, "Rack-A_1", "history", buf, sizeof buf),
                        "solar/bms/Rack-A_1/history");
    assert_string_equal(ha_topic_bank(cfg, "bank", buf, sizeof buf), "solar/bms/bank/bank/state");
    /* truncated, still terminated */
    char small[8];
    assert_string_equal(ha_topic_status(cfg, small, sizeof small), "solar/b");

    struct s42_identity id;
    s42_identity_init(&id);
    snprintf(id.serial, sizeof id.serial, "AB'C}}{%%x");
    snprintf(id.software, sizeof id.software, "V1.2 \"beta\"");
    struct ha_pack_info info = {.port = &cfg->ports[0], .pack = &cfg->ports[0].packs[0], .id = &id};
    struct cap c = {0};
    assert_int_equal(ha_pack_discovery(cfg, &info, cap_emit, &c), 0);
    cJSON *j = config_of(&c, "ha/sensor/bmsfleet_sn_12_34_voltage/config");
    assert_string_equal(str_of(j, "default_entity_id"), "sensor.cabin_north_rack_a_1_voltage");
    assert_string_equal(str_of(j, "state_topic"), "solar/bms/Rack-A_1/state");
    const cJSON *dev = cJSON_GetObjectItemCaseSensitive(j, "device");
    assert_string_equal(str_of(dev, "manufacturer"), "Seplos");
    assert_string_equal(str_of(dev, "serial_number"), "AB'C}}{%x"); /* JSON escapes it */
    assert_string_equal(str_of(dev, "via_device"), "bmsfleet_cabin_north");
    cJSON_Delete(j);
    /* a template constant cannot break out of its quotes */
    j = config_of(&c, "ha/sensor/bmsfleet_sn_12_34_serial/config");
    assert_string_equal(str_of(j, "value_template"), "{{ 'AB_C____x' }}");
    cJSON_Delete(j);
    j = config_of(&c, "ha/sensor/bmsfleet_sn_12_34_firmware/config");
    assert_string_equal(str_of(j, "value_template"), "{{ 'V1.2 _beta_' }}");
    cJSON_Delete(j);
    /* no cells or sensors known: none announced, no model */
    assert_null(cap_find(&c, "ha/sensor/bmsfleet_sn_12_34_cell_1/config"));
    assert_null(cap_find(&c, "ha/sensor/bmsfleet_sn_12_34_temp_1/config"));
    cap_free(&c);

    /* the implicit bank */
    assert_int_equal(ha_bank_discovery(cfg, 0, cap_emit, &c), 0);
    assert_true(in_cap(&c, "ha/sensor/bmsfleet_cabin_north_bank_bank_soc/config"));
    cap_free(&c);
    config_free(cfg);
}

/* The first non-zero emit result stops the walk and is returned. */
static void test_emit_error(void **state)
{
    (void)state;
    struct config *cfg = load(fleet_yaml);
    struct s42_identity id;
    identity(&id);
    struct ha_pack_info info = pack1_info(cfg, &id);
    struct cap c = {.fail_at = 3};
    assert_int_equal(ha_pack_discovery(cfg, &info, cap_emit, &c), -5);
    assert_int_equal(c.n, 2);
    cap_free(&c);
    c.fail_at = 40;
    assert_int_equal(ha_pack_clear(cfg, "pack1", NULL, cap_emit, &c), -5);
    assert_int_equal(c.n, 39);
    cap_free(&c);
    c.fail_at = 1;
    assert_int_equal(ha_bank_discovery(cfg, 0, cap_emit, &c), -5);
    assert_int_equal(ha_node_discovery(cfg, cap_emit, &c), -5);
    assert_int_equal(ha_compat_discovery(cfg, cap_emit, &c), -5);
    struct sample s;
    daren_sample(&s);
    assert_int_equal(ha_compat_states(cfg, &s, cap_emit, &c), -5);
    assert_int_equal(c.n, 0);
    config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_pack),
        cmocka_unit_test(test_golden_bank_node),
        cmocka_unit_test(test_golden_compat),
        cmocka_unit_test(test_golden_states),
        cmocka_unit_test(test_voltage_matches_design),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_absent_not_zero),
        cmocka_unit_test(test_pack_state_fields),
        cmocka_unit_test(test_bank_state_fields),
        cmocka_unit_test(test_storage_state),
        cmocka_unit_test(test_jsonw_numbers),
        cmocka_unit_test(test_jsonw_as_cjson),
        cmocka_unit_test(test_compat),
        cmocka_unit_test(test_clear),
        cmocka_unit_test(test_topics_and_names),
        cmocka_unit_test(test_emit_error),
    };
    return cmocka_run_group_tests(tests, 0, 0);
}
