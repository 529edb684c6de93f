/* ha: Home Assistant discovery configs and the JSON / plain states they read (see ha.h). Pure:
 * payloads are built with cJSON and handed to the caller's emit callback; the time comes in.
 *
 * An entity is first described as a struct ha_ent (key, name, classes, value template); one
 * function turns any description into a config payload, so packs, banks, the node and the
 * compatibility sensors share the same device / availability / origin blocks. A pack's entity
 * list is produced by one generator: discovery and ha_pack_clear walk the same list (clear with
 * every cell, sensor and diagnostic a pack could have), so a cleared pack leaves nothing behind.
 *
 * Templates: a key the state always carries (null when the pack did not send it) is read as
 * {{ value_json.key }}; HA turns the rendered "None" into "unknown". A key that can be left
 * out (energy counters, every bank value) is read with `| default(None)` for the same result.
 * Flag binary sensors test membership in the flag list and give None when the list is absent,
 * so a pack that sent no alarm frame shows "unknown", not "OFF". */
#include "ha.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "metrics.h"
#include "report.h"

#ifndef BMSFLEET_VERSION
#error "BMSFLEET_VERSION must be defined"
#endif

#define HA_ID_LEN    160
#define HA_TOPIC_LEN 320

/* One entity, before it becomes a config payload. */
struct ha_ent {
    const char *component; /* "sensor" or "binary_sensor" */
    char key[48];          /* [a-z0-9_]: suffix of unique_id and default_entity_id */
    char name[80];
    const char *unit, *device_class, *state_class;
    int precision; /* suggested_display_precision, -1: none */
    int diagnostic;
    int disabled;  /* enabled_by_default: false */
    int node_only; /* availability: the node status topic only */
    const char *payload_on, *payload_off;
    char tmpl[320];
};

/* Whose entities they are: ids, topics and the device block. */
struct ha_owner {
    char uid_prefix[HA_ID_LEN]; /* unique_id = <uid_prefix>_<key> */
    char eid_prefix[144];       /* default_entity_id = <component>.<eid_prefix>_<key> */
    const char *compat_id;      /* compatibility topics <prefix>/sensor/<id>/<key>/config */
    char state_topic[HA_TOPIC_LEN];
    char avail[2][HA_TOPIC_LEN];
    int navail;
    /* device */
    char dev_id[HA_ID_LEN];
    const char *dev_name, *manufacturer, *serial, *sw_version;
    char model[48];
    char via[HA_ID_LEN]; /* "" = none */
};

/* ---- names ---- */

/* Lower-case [a-z0-9_]: every other byte becomes '_'. */
static void sanitize(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (; *s && n + 1 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        out[n++] = (char)(((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) ? c : '_');
    }
    out[n] = '\0';
}

static const char *manufacturer(const struct config_port *port)
{
    if (port == NULL)
        return NULL;
    switch (port->protocol) {
    case CONFIG_PROTO_DAREN:
        return "Daren";
    case CONFIG_PROTO_PACE:
    case CONFIG_PROTO_MODBUS: /* the Modbus map is PACE's */
        return "PACE";
    case CONFIG_PROTO_PYLONTECH:
        return "Pylontech";
    case CONFIG_PROTO_SEPLOS:
        return "Seplos";
    }
    return NULL;
}

static const char *role_label(unsigned role)
{
    static const char *const labels[] = {"cell", "MOS", "ambient", "average"};
    return role < sizeof labels / sizeof labels[0] ? labels[role] : NULL;
}

/* "mos_high_temp" + "alarm" -> "MOS high temperature alarm" */
static void flag_label(const char *flag, const char *suffix, char *out, size_t cap)
{
    static const struct {
        const char *word, *label;
    } words[] = {{"mos", "MOS"}, {"soc", "SOC"}, {"temp", "temperature"}};
    size_t n = 0;
    out[0] = '\0';
    for (const char *p = flag; *p;) {
        size_t len = strcspn(p, "_");
        const char *w = p;
        int wl = (int)len;
        for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
            if (strlen(words[i].word) == len && strncmp(p, words[i].word, len) == 0) {
                w = words[i].label;
                wl = (int)strlen(w);
            }
        }
        int k = snprintf(out + n, cap - n, "%.*s ", wl, w);
        if (k < 0 || (size_t)k >= cap - n)
            return;
        n += (size_t)k;
        p += len;
        if (*p == '_')
            p++;
    }
    snprintf(out + n, cap - n, "%s", suffix);
    if (out[0] >= 'a' && out[0] <= 'z')
        out[0] = (char)(out[0] - 'a' + 'A');
}

/* A constant for a Jinja string literal: keeps [A-Za-z0-9 ._:/+-], anything else becomes '_'
 * (a quote or a brace from a BMS must not break the template). */
static void jinja_literal(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (; *s && n + 1 < cap; s++) {
        char c = *s;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 strchr(" ._:/+-", c) != NULL;
        out[n++] = ok ? c : '_';
    }
    out[n] = '\0';
}

/* ---- topics ---- */

const char *ha_topic_status(const struct config *cfg, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s/status", cfg->mqtt.base_topic, cfg->node_id);
    return buf;
}

const char *ha_topic_pack(const struct config *cfg, const char *pack_id, const char *leaf,
                          char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s/%s", cfg->mqtt.base_topic, pack_id, leaf);
    return buf;
}

const char *ha_topic_bank(const struct config *cfg, const char *bank_id, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/bank/%s/state", cfg->mqtt.base_topic, bank_id);
    return buf;
}

static void config_topic(const struct config *cfg, const struct ha_owner *o, const struct ha_ent *e,
                         char *buf, size_t cap)
{
    if (o->compat_id)
        snprintf(buf, cap, "%s/sensor/%s/%s/config", cfg->mqtt.compat_prefix, o->compat_id, e->key);
    else
        snprintf(buf, cap, "%s/%s/%s_%s/config", cfg->mqtt.discovery_prefix, e->component,
                 o->uid_prefix, e->key);
}

/* ---- payloads ---- */

/* cJSON additions that remember a failed allocation. */
static void put_str(cJSON *o, const char *k, const char *v, int *err)
{
    if (v && !cJSON_AddStringToObject(o, k, v))
        *err = 1;
}

static void put_num(cJSON *o, const char *k, double v, int *err)
{
    if (!cJSON_AddNumberToObject(o, k, v))
        *err = 1;
}

static void put_item(cJSON *o, const char *k, cJSON *item, int *err)
{
    if (item == NULL || !cJSON_AddItemToObject(o, k, item)) {
        cJSON_Delete(item);
        *err = 1;
    }
}

static cJSON *device_json(const struct ha_owner *o, int *err)
{
    cJSON *d = cJSON_CreateObject();
    cJSON *ids = cJSON_CreateArray();
    if (d == NULL || ids == NULL || !cJSON_AddItemToArray(ids, cJSON_CreateString(o->dev_id)))
        *err = 1;
    put_item(d, "identifiers", ids, err);
    put_str(d, "name", o->dev_name, err);
    put_str(d, "manufacturer", o->manufacturer, err);
    if (o->model[0])
        put_str(d, "model", o->model, err);
    if (o->serial && o->serial[0])
        put_str(d, "serial_number", o->serial, err);
    if (o->sw_version && o->sw_version[0])
        put_str(d, "sw_version", o->sw_version, err);
    if (o->via[0])
        put_str(d, "via_device", o->via, err);
    return d;
}

static cJSON *entity_json(const struct ha_owner *o, const struct ha_ent *e, int *err)
{
    char id[HA_ID_LEN + 64];
    cJSON *j = cJSON_CreateObject();
    if (j == NULL) {
        *err = 1;
        return NULL;
    }
    put_str(j, "name", e->name, err);
    snprintf(id, sizeof id, "%s_%s", o->uid_prefix, e->key);
    put_str(j, "unique_id", id, err);
    snprintf(id, sizeof id, "%s.%s_%s", e->component, o->eid_prefix, e->key);
    put_str(j, "default_entity_id", id, err);
    put_str(j, "state_topic", o->state_topic, err);
    if (e->tmpl[0])
        put_str(j, "value_template", e->tmpl, err);
    put_str(j, "payload_on", e->payload_on, err);
    put_str(j, "payload_off", e->payload_off, err);
    put_str(j, "device_class", e->device_class, err);
    put_str(j, "state_class", e->state_class, err);
    put_str(j, "unit_of_measurement", e->unit, err);
    if (e->precision >= 0)
        put_num(j, "suggested_display_precision", e->precision, err);
    if (e->diagnostic)
        put_str(j, "entity_category", "diagnostic", err);
    if (e->disabled && !cJSON_AddFalseToObject(j, "enabled_by_default"))
        *err = 1;
    int navail = e->node_only && o->navail > 0 ? 1 : o->navail;
    if (navail > 0) {
        cJSON *av = cJSON_CreateArray();
        for (int i = 0; av && i < navail; i++) {
            cJSON *t = cJSON_CreateObject();
            if (t == NULL || !cJSON_AddItemToArray(av, t) ||
                !cJSON_AddStringToObject(t, "topic", o->avail[i]))
                *err = 1;
        }
        put_item(j, "availability", av, err);
        if (navail > 1)
            put_str(j, "availability_mode", "all", err);
    }
    put_item(j, "device", device_json(o, err), err);
    cJSON *origin = cJSON_CreateObject();
    put_str(origin, "name", "bmsfleet", err);
    put_str(origin, "sw_version", BMSFLEET_VERSION, err);
    put_item(j, "origin", origin, err);
    return j;
}

/* Emits the config of e (or an empty retained payload when clear). */
static int emit_entity(const struct config *cfg, const struct ha_owner *o, const struct ha_ent *e,
                       int clear, ha_emit_fn emit, void *ctx)
{
    char topic[HA_TOPIC_LEN];
    config_topic(cfg, o, e, topic, sizeof topic);
    if (clear)
        return emit(ctx, topic, "", 1);
    int err = 0;
    cJSON *j = entity_json(o, e, &err);
    char *text = err ? NULL : cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (text == NULL)
        return -ENOMEM;
    int rc = emit(ctx, topic, text, 1);
    cJSON_free(text);
    return rc;
}

/* ---- entity descriptions ---- */

static struct ha_ent sensor(const char *key, const char *name, const char *unit,
                            const char *device_class, const char *state_class, int precision)
{
    struct ha_ent e = {.component = "sensor",
                       .unit = unit,
                       .device_class = device_class,
                       .state_class = state_class,
                       .precision = precision};
    snprintf(e.key, sizeof e.key, "%s", key);
    snprintf(e.name, sizeof e.name, "%s", name);
    return e;
}

static struct ha_ent binary(const char *key, const char *name, const char *device_class)
{
    struct ha_ent e = {.component = "binary_sensor", .device_class = device_class, .precision = -1};
    snprintf(e.key, sizeof e.key, "%s", key);
    snprintf(e.name, sizeof e.name, "%s", name);
    return e;
}

/* {{ value_json.<key> }}, or with `| default(None)` when the key may be left out */
static void tmpl_value(struct ha_ent *e, const char *key, int may_be_missing)
{
    snprintf(e->tmpl, sizeof e->tmpl, "{{ value_json.%s%s }}", key,
             may_be_missing ? " | default(None)" : "");
}

/* ON when the name is in the list value_json.<list>; None when the list is absent */
static void tmpl_flag(struct ha_ent *e, const char *list, const char *name)
{
    snprintf(e->tmpl, sizeof e->tmpl,
             "{{ ('ON' if '%s' in value_json.%s else 'OFF') if value_json.%s is defined else None "
             "}}",
             name, list, list);
}

typedef int (*ha_ent_fn)(void *u, const struct ha_ent *e);

/* Every entity of a pack described by info, in publishing order. */
static int pack_entities(const struct ha_pack_info *info, ha_ent_fn fn, void *u)
{
    struct ha_ent e;
    int rc;
#define NEXT()                                                                                     \
    do {                                                                                           \
        if ((rc = fn(u, &e)) != 0)                                                                 \
            return rc;                                                                             \
    } while (0)

    for (size_t i = 0; i < metrics_pack_count; i++) {
        const struct metric *m = &metrics_pack[i];
        e = sensor(m->key, m->name, m->unit, m->device_class, m->state_class, m->precision);
        e.diagnostic = m->diagnostic;
        tmpl_value(&e, m->key, 0);
        NEXT();
    }
    static const struct {
        const char *key, *name;
    } energy[] = {{"charged_kwh", "Energy charged"}, {"discharged_kwh", "Energy discharged"}};
    for (size_t i = 0; i < sizeof energy / sizeof energy[0]; i++) {
        e = sensor(energy[i].key, energy[i].name, "kWh", "energy", "total_increasing", 2);
        tmpl_value(&e, energy[i].key, 1);
        NEXT();
    }
    for (unsigned i = 0; i < info->ncells && i < SAMPLE_MAX_CELLS; i++) {
        char key[16], name[32];
        snprintf(key, sizeof key, "cell_%u", i + 1);
        snprintf(name, sizeof name, "Cell %u", i + 1);
        e = sensor(key, name, "V", "voltage", "measurement", 3);
        e.disabled = 1;
        snprintf(e.tmpl, sizeof e.tmpl, "{{ value_json.cells[%u] }}", i);
        NEXT();
    }
    for (unsigned i = 0; i < info->ntemps && i < SAMPLE_MAX_TEMPS; i++) {
        char key[16], name[48];
        const char *role = info->temp_roles ? role_label(info->temp_roles[i]) : NULL;
        snprintf(key, sizeof key, "temp_%u", i + 1);
        if (role)
            snprintf(name, sizeof name, "Temperature %u (%s)", i + 1, role);
        else
            snprintf(name, sizeof name, "Temperature %u", i + 1);
        e = sensor(key, name, "°C", "temperature", "measurement", 1);
        e.disabled = 1;
        snprintf(e.tmpl, sizeof e.tmpl, "{{ value_json.temperatures[%u].value }}", i);
        NEXT();
    }
    for (unsigned b = 0; b < SAMPLE_ALARM_COUNT; b++) {
        char key[48], name[80];
        snprintf(key, sizeof key, "alarm_%s", sample_alarm_name(b));
        flag_label(sample_alarm_name(b), "alarm", name, sizeof name);
        e = binary(key, name, "problem");
        tmpl_flag(&e, "alarms", sample_alarm_name(b));
        NEXT();
    }
    for (unsigned b = 0; b < SAMPLE_PROT_COUNT; b++) {
        char key[48], name[80];
        snprintf(key, sizeof key, "protection_%s", sample_prot_name(b));
        flag_label(sample_prot_name(b), "protection", name, sizeof name);
        e = binary(key, name, "safety");
        tmpl_flag(&e, "protection", sample_prot_name(b));
        NEXT();
    }
    e = binary("balancing", "Balancing", "running");
    snprintf(e.tmpl, sizeof e.tmpl,
             "{{ ('ON' if value_json.balancing | length > 0 else 'OFF') if value_json.balancing "
             "is defined else None }}");
    NEXT();
    e = binary("charge_fet", "Charge FET", "power");
    tmpl_flag(&e, "state", sample_state_name(0)); /* charge_fet_on */
    NEXT();
    e = binary("discharge_fet", "Discharge FET", "power");
    tmpl_flag(&e, "state", sample_state_name(1)); /* discharge_fet_on */
    NEXT();

    /* diagnostics; last seen stays available while the pack is silent: that is its point */
    e = sensor("last_seen", "Last seen", NULL, "timestamp", NULL, -1);
    e.diagnostic = e.node_only = 1;
    tmpl_value(&e, "last_seen", 1);
    NEXT();
    static const struct {
        const char *key, *name;
    } counters[] = {{"polls", "Polls"},
                    {"timeouts", "Timeouts"},
                    {"checksum_errors", "Checksum errors"},
                    {"malformed", "Malformed answers"}};
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        e = sensor(counters[i].key, counters[i].name, NULL, NULL, "total_increasing", -1);
        e.diagnostic = 1;
        tmpl_value(&e, counters[i].key, 0);
        NEXT();
    }
    /* identity: constants of the discovery, rendered on every state message */
    const struct s42_identity *id = info->id;
    if (id && id->serial[0]) {
        char lit[sizeof id->serial];
        jinja_literal(id->serial, lit, sizeof lit);
        e = sensor("serial", "Serial number", NULL, NULL, NULL, -1);
        e.diagnostic = 1;
        snprintf(e.tmpl, sizeof e.tmpl, "{{ '%s' }}", lit);
        NEXT();
    }
    if (id && id->software[0]) {
        char lit[sizeof id->software];
        jinja_literal(id->software, lit, sizeof lit);
        e = sensor("firmware", "Firmware", NULL, NULL, NULL, -1);
        e.diagnostic = 1;
        snprintf(e.tmpl, sizeof e.tmpl, "{{ '%s' }}", lit);
        NEXT();
    }
#undef NEXT
    return 0;
}

/* ---- owners ---- */

static void node_device_id(const struct config *cfg, char *out, size_t cap)
{
    char node[CONFIG_ID_LEN];
    sanitize(cfg->node_id, node, sizeof node);
    snprintf(out, cap, "bmsfleet_%s", node);
}

/* unique_id prefix of a pack: bmsfleet_<serial> when the configuration gives one, else
 * bmsfleet_<node>_<pack>; the entity id prefix is always <node>_<pack>. */
static void pack_ids(const struct config *cfg, const char *pack_id, const char *serial,
                     struct ha_owner *o)
{
    char node[CONFIG_ID_LEN], pack[CONFIG_ID_LEN];
    sanitize(cfg->node_id, node, sizeof node);
    sanitize(pack_id, pack, sizeof pack);
    snprintf(o->eid_prefix, sizeof o->eid_prefix, "%s_%s", node, pack);
    if (serial && serial[0]) {
        char ser[CONFIG_ID_LEN];
        sanitize(serial, ser, sizeof ser);
        snprintf(o->uid_prefix, sizeof o->uid_prefix, "bmsfleet_%s", ser);
    } else {
        snprintf(o->uid_prefix, sizeof o->uid_prefix, "bmsfleet_%s", o->eid_prefix);
    }
    snprintf(o->dev_id, sizeof o->dev_id, "%s", o->uid_prefix);
}

struct emit_ctx {
    const struct config *cfg;
    const struct ha_owner *o;
    int clear;
    ha_emit_fn emit;
    void *ctx;
};

static int emit_cb(void *u, const struct ha_ent *e)
{
    const struct emit_ctx *x = u;
    return emit_entity(x->cfg, x->o, e, x->clear, x->emit, x->ctx);
}

int ha_pack_discovery(const struct config *cfg, const struct ha_pack_info *info, ha_emit_fn emit,
                      void *ctx)
{
    if (info == NULL || info->pack == NULL)
        return -EINVAL;
    const struct config_pack *p = info->pack;
    const struct s42_identity *id = info->id;
    struct ha_owner o = {.dev_name = p->name, .manufacturer = manufacturer(info->port)};
    pack_ids(cfg, p->id, p->serial, &o);
    ha_topic_pack(cfg, p->id, "state", o.state_topic, sizeof o.state_topic);
    ha_topic_status(cfg, o.avail[0], sizeof o.avail[0]);
    ha_topic_pack(cfg, p->id, "availability", o.avail[1], sizeof o.avail[1]);
    o.navail = 2;
    if (info->ncells > 0)
        snprintf(o.model, sizeof o.model, "%uS LiFePO4", info->ncells);
    o.serial = id && id->serial[0] ? id->serial : p->serial;
    o.sw_version = id ? id->software : NULL;
    node_device_id(cfg, o.via, sizeof o.via);
    struct emit_ctx x = {cfg, &o, 0, emit, ctx};
    return pack_entities(info, emit_cb, &x);
}

int ha_pack_clear(const struct config *cfg, const char *pack_id, const char *serial,
                  ha_emit_fn emit, void *ctx)
{
    /* the largest entity set: every cell, every sensor, both identity diagnostics */
    struct s42_identity id;
    s42_identity_init(&id);
    snprintf(id.serial, sizeof id.serial, "x");
    snprintf(id.software, sizeof id.software, "x");
    const struct ha_pack_info all = {
        .id = &id, .ncells = SAMPLE_MAX_CELLS, .ntemps = SAMPLE_MAX_TEMPS};
    for (int form = 0; form < 2; form++) {
        if (form == 1 && (serial == NULL || serial[0] == '\0'))
            break;
        struct ha_owner o = {0};
        pack_ids(cfg, pack_id, form == 1 ? serial : NULL, &o);
        struct emit_ctx x = {cfg, &o, 1, emit, ctx};
        int rc = pack_entities(&all, emit_cb, &x);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int ha_node_discovery(const struct config *cfg, ha_emit_fn emit, void *ctx)
{
    struct ha_owner o = {.dev_name = cfg->node_name[0] ? cfg->node_name : cfg->node_id,
                         .manufacturer = "bmsfleet",
                         .sw_version = BMSFLEET_VERSION};
    node_device_id(cfg, o.dev_id, sizeof o.dev_id);
    snprintf(o.uid_prefix, sizeof o.uid_prefix, "%s", o.dev_id);
    sanitize(cfg->node_id, o.eid_prefix, sizeof o.eid_prefix);
    snprintf(o.model, sizeof o.model, "bmsfleet daemon");
    ha_topic_status(cfg, o.state_topic, sizeof o.state_topic);
    /* no availability: this entity is the availability, it must be able to show "offline" */
    struct ha_ent e = binary("status", "Status", "connectivity");
    e.payload_on = "online";
    e.payload_off = "offline";
    e.diagnostic = 1;
    return emit_entity(cfg, &o, &e, 0, emit, ctx);
}

/* ---- bank ---- */

int ha_bank_discovery(const struct config *cfg, size_t bank_idx, ha_emit_fn emit, void *ctx)
{
    if (bank_idx >= cfg->nbanks)
        return -EINVAL;
    const struct config_bank *bk = &cfg->banks[bank_idx];
    char node[CONFIG_ID_LEN], bank[CONFIG_ID_LEN];
    sanitize(cfg->node_id, node, sizeof node);
    sanitize(bk->id, bank, sizeof bank);
    struct ha_owner o = {.dev_name = bk->name[0] ? bk->name : bk->id, .manufacturer = "bmsfleet"};
    snprintf(o.eid_prefix, sizeof o.eid_prefix, "%s_bank_%s", node, bank);
    snprintf(o.uid_prefix, sizeof o.uid_prefix, "bmsfleet_%s", o.eid_prefix);
    snprintf(o.dev_id, sizeof o.dev_id, "%s", o.uid_prefix);
    snprintf(o.model, sizeof o.model, "Battery bank");
    node_device_id(cfg, o.via, sizeof o.via);
    ha_topic_bank(cfg, bk->id, o.state_topic, sizeof o.state_topic);
    ha_topic_status(cfg, o.avail[0], sizeof o.avail[0]);
    o.navail = 1;

    static const struct {
        const char *key, *name, *unit, *device_class, *state_class;
        int precision;
    } rows[] = {
        {"soc", "State of charge", "%", "battery", "measurement", 1},
        {"current", "Current", "A", "current", "measurement", 2},
        {"power", "Power", "W", "power", "measurement", 0},
        {"remaining_ah", "Remaining capacity", "Ah", NULL, "measurement", 2},
        {"full_ah", "Full capacity", "Ah", NULL, "measurement", 2},
        {"cell_min", "Lowest cell", "V", "voltage", "measurement", 3},
        {"cell_min_pack", "Lowest cell pack", NULL, NULL, NULL, -1},
        {"cell_max", "Highest cell", "V", "voltage", "measurement", 3},
        {"cell_max_pack", "Highest cell pack", NULL, NULL, NULL, -1},
        {"cell_spread", "Cell spread", "mV", "voltage", "measurement", 0},
        {"temp_max", "Highest temperature", "°C", "temperature", "measurement", 1},
        {"packs_online", "Packs online", NULL, NULL, NULL, -1},
        {"charged_kwh", "Energy charged", "kWh", "energy", "total_increasing", 2},
        {"discharged_kwh", "Energy discharged", "kWh", "energy", "total_increasing", 2},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct ha_ent e = sensor(rows[i].key, rows[i].name, rows[i].unit, rows[i].device_class,
                                 rows[i].state_class, rows[i].precision);
        tmpl_value(&e, rows[i].key, 1);
        int rc = emit_entity(cfg, &o, &e, 0, emit, ctx);
        if (rc != 0)
            return rc;
    }
    struct ha_ent e = binary("soc_diverged", "SOC diverged", "problem");
    snprintf(e.tmpl, sizeof e.tmpl,
             "{{ ('ON' if value_json.soc_diverged else 'OFF') if value_json.soc_diverged is "
             "defined else None }}");
    return emit_entity(cfg, &o, &e, 0, emit, ctx);
}

/* ---- states ---- */

/* v rounded to dec decimals (JSON numbers keep what the unit needs, no float noise) */
static double rnd(double v, int dec)
{
    double p = pow(10.0, dec);
    return round(v * p) / p;
}

static char *print_free(cJSON *o, int err)
{
    char *text = err ? NULL : cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

char *ha_pack_state(const struct sample *s, const char *protocol, const struct ha_pack_extra *x)
{
    cJSON *o = report_sample_json(s, protocol, x ? x->ts_ms : 0);
    int err = o == NULL;
    if (o && x) {
        if (!isnan(x->charged_kwh))
            put_num(o, "charged_kwh", rnd(x->charged_kwh, 3), &err);
        if (!isnan(x->discharged_kwh))
            put_num(o, "discharged_kwh", rnd(x->discharged_kwh, 3), &err);
        if (x->ts_ms > 0) {
            time_t t = (time_t)(x->ts_ms / 1000);
            struct tm tm;
            char iso[40];
            if (gmtime_r(&t, &tm) && strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%S+00:00", &tm))
                put_str(o, "last_seen", iso, &err);
        }
        put_num(o, "polls", (double)x->polls, &err);
        put_num(o, "timeouts", (double)x->timeouts, &err);
        put_num(o, "checksum_errors", (double)x->checksum_errors, &err);
        put_num(o, "malformed", (double)x->malformed, &err);
    }
    return print_free(o, err);
}

static void put_fixed(cJSON *o, const char *key, int32_t v, double div, int dec, int *err)
{
    if (v != SAMPLE_ABSENT)
        put_num(o, key, rnd(v / div, dec), err);
}

static void put_cell_pack(cJSON *o, const char *key, const char *pack, int idx, int32_t mv,
                          int *err)
{
    char buf[CONFIG_ID_LEN + 16];
    if (pack == NULL || mv == SAMPLE_ABSENT)
        return;
    snprintf(buf, sizeof buf, "%s #%d", pack, idx);
    put_str(o, key, buf, err);
}

char *ha_bank_state(const struct bank_state *b)
{
    cJSON *o = cJSON_CreateObject();
    int err = o == NULL;
    char online[32];
    snprintf(online, sizeof online, "%u/%u", b->packs_online, b->packs_total);
    put_str(o, "packs_online", online, &err);
    put_fixed(o, "soc", b->soc_cpct, 100.0, 2, &err);
    put_fixed(o, "soc_min", b->soc_min_cpct, 100.0, 2, &err);
    put_fixed(o, "soc_max", b->soc_max_cpct, 100.0, 2, &err);
    if (b->soc_min_cpct != SAMPLE_ABSENT &&
        !cJSON_AddBoolToObject(o, "soc_diverged", b->soc_diverged))
        err = 1;
    if (b->current_ma != INT64_MIN)
        put_num(o, "current", rnd((double)b->current_ma / 1000.0, 3), &err);
    if (!isnan(b->power_w))
        put_num(o, "power", rnd(b->power_w, 1), &err);
    if (b->remaining_mah >= 0)
        put_num(o, "remaining_ah", rnd((double)b->remaining_mah / 1000.0, 3), &err);
    if (b->full_mah >= 0)
        put_num(o, "full_ah", rnd((double)b->full_mah / 1000.0, 3), &err);
    put_fixed(o, "cell_min", b->cell_min_mv, 1000.0, 3, &err);
    put_cell_pack(o, "cell_min_pack", b->cell_min_pack, b->cell_min_idx, b->cell_min_mv, &err);
    put_fixed(o, "cell_max", b->cell_max_mv, 1000.0, 3, &err);
    put_cell_pack(o, "cell_max_pack", b->cell_max_pack, b->cell_max_idx, b->cell_max_mv, &err);
    put_fixed(o, "cell_spread", b->cell_spread_mv, 1.0, 0, &err);
    put_fixed(o, "temp_max", b->temp_max_dc, 10.0, 1, &err);
    if (!isnan(b->charged_kwh))
        put_num(o, "charged_kwh", rnd(b->charged_kwh, 3), &err);
    if (!isnan(b->discharged_kwh))
        put_num(o, "discharged_kwh", rnd(b->discharged_kwh, 3), &err);
    return print_free(o, err);
}

/* ---- compatibility with the replaced program ---- */

/* Its 11 keys, each read through the metric with the same value, in fixed decimals. */
static const struct {
    const char *key, *metric;
    int dec;
} compat_keys[] = {
    {"soc", "soc", 1},
    {"pack_voltage", "voltage", 2},
    {"pack_current", "current", 2},
    {"remaining_capacity", "remaining_ah", 2},
    {"full_capacity", "full_ah", 2},
    {"cycle_count", "cycles", 0},
    {"ambient_temp", "temp_ambient", 1},
    {"mos_temp", "temp_mos", 1},
    {"min_cell_voltage", "cell_min", 3},
    {"max_cell_voltage", "cell_max", 3},
    {"cell_voltage_diff", "cell_diff", 3},
};

static const char *compat_device_id(const struct config *cfg)
{
    return cfg->mqtt.compat_device_id[0] ? cfg->mqtt.compat_device_id : cfg->node_id;
}

int ha_compat_discovery(const struct config *cfg, ha_emit_fn emit, void *ctx)
{
    if (!cfg->mqtt.compat)
        return 0;
    const char *dev = compat_device_id(cfg);
    const struct config_port *port = cfg->nports > 0 ? &cfg->ports[0] : NULL;
    struct ha_owner o = {.compat_id = dev,
                         .dev_name = dev, /* not the pack's name: that device exists too */
                         .manufacturer = manufacturer(port)};
    snprintf(o.uid_prefix, sizeof o.uid_prefix, "%s", dev); /* unique_id <device_id>_<key> */
    sanitize(dev, o.eid_prefix, sizeof o.eid_prefix);
    snprintf(o.dev_id, sizeof o.dev_id, "%s", dev);
    node_device_id(cfg, o.via, sizeof o.via);
    ha_topic_status(cfg, o.avail[0], sizeof o.avail[0]);
    o.navail = 1;
    for (size_t i = 0; i < sizeof compat_keys / sizeof compat_keys[0]; i++) {
        const struct metric *m = metrics_find(compat_keys[i].metric);
        if (m == NULL)
            return -EINVAL;
        struct ha_ent e = sensor(compat_keys[i].key, m->name, m->unit, m->device_class,
                                 m->state_class, compat_keys[i].dec);
        snprintf(o.state_topic, sizeof o.state_topic, "bms/%s/%s", dev, compat_keys[i].key);
        int rc = emit_entity(cfg, &o, &e, 0, emit, ctx);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int ha_compat_states(const struct config *cfg, const struct sample *s, ha_emit_fn emit, void *ctx)
{
    if (!cfg->mqtt.compat)
        return 0;
    const char *dev = compat_device_id(cfg);
    for (size_t i = 0; i < sizeof compat_keys / sizeof compat_keys[0]; i++) {
        const struct metric *m = metrics_find(compat_keys[i].metric);
        double v;
        if (m == NULL)
            return -EINVAL;
        if (!m->get(s, &v))
            continue; /* absent: publish nothing */
        int dec = compat_keys[i].dec;
        /* values are exact in 0.001 units at most: the nudge makes halves round away from
         * zero although 67.05 is 67.0499… in binary */
        double p = pow(10.0, dec);
        double q = round(v * p + (v >= 0 ? 1e-6 : -1e-6)) / p;
        q += 0.0; /* -0.0 + 0.0 is +0.0: no "-0.00" */
        char topic[HA_TOPIC_LEN], text[48];
        snprintf(topic, sizeof topic, "bms/%s/%s", dev, compat_keys[i].key);
        snprintf(text, sizeof text, "%.*f", dec, q);
        int rc = emit(ctx, topic, text, 0);
        if (rc != 0)
            return rc;
    }
    return 0;
}
