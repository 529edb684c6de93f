/* ha: Home Assistant discovery (see ha.h and docs/mqtt.md). Pure: payloads are built with cJSON
 * and handed to the caller's emit callback; the time comes in. This file holds the names and
 * topics, the owners (node, pack, bank devices) and the one function that turns an entity
 * description into a config payload; ha_entities.c lists a pack's entities, ha_state.c builds
 * the state payloads, ha_compat.c the replaced program's topics.
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
#include "ha_internal.h"

#include <errno.h>
#include <stdio.h>

#include <cjson/cJSON.h>


#ifndef BMSFLEET_VERSION
#error "BMSFLEET_VERSION must be defined"
#endif

/* ---- names ---- */

/* Lower-case [a-z0-9_]: every other byte becomes '_'. */
void ha_sanitize(const char *s, char *out, size_t cap)
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

const char *ha_manufacturer(const struct config_port *port)
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

const char *ha_topic_storage(const struct config *cfg, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s/storage", cfg->mqtt.base_topic, cfg->node_id);
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
void ha_put_str(cJSON *o, const char *k, const char *v, int *err)
{
    if (v && !cJSON_AddStringToObject(o, k, v))
        *err = 1;
}

void ha_put_num(cJSON *o, const char *k, double v, int *err)
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
    ha_put_str(d, "name", o->dev_name, err);
    ha_put_str(d, "manufacturer", o->manufacturer, err);
    if (o->model[0])
        ha_put_str(d, "model", o->model, err);
    if (o->serial && o->serial[0])
        ha_put_str(d, "serial_number", o->serial, err);
    if (o->sw_version && o->sw_version[0])
        ha_put_str(d, "sw_version", o->sw_version, err);
    if (o->via[0])
        ha_put_str(d, "via_device", o->via, err);
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
    ha_put_str(j, "name", e->name, err);
    snprintf(id, sizeof id, "%s_%s", o->uid_prefix, e->key);
    ha_put_str(j, "unique_id", id, err);
    snprintf(id, sizeof id, "%s.%s_%s", e->component, o->eid_prefix, e->key);
    ha_put_str(j, "default_entity_id", id, err);
    ha_put_str(j, "state_topic", o->state_topic, err);
    if (e->tmpl[0])
        ha_put_str(j, "value_template", e->tmpl, err);
    if (e->attributes)
        ha_put_str(j, "json_attributes_topic", o->state_topic, err);
    ha_put_str(j, "payload_on", e->payload_on, err);
    ha_put_str(j, "payload_off", e->payload_off, err);
    ha_put_str(j, "device_class", e->device_class, err);
    ha_put_str(j, "state_class", e->state_class, err);
    ha_put_str(j, "unit_of_measurement", e->unit, err);
    if (e->precision >= 0)
        ha_put_num(j, "suggested_display_precision", e->precision, err);
    if (e->diagnostic)
        ha_put_str(j, "entity_category", "diagnostic", err);
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
            ha_put_str(j, "availability_mode", "all", err);
    }
    put_item(j, "device", device_json(o, err), err);
    cJSON *origin = cJSON_CreateObject();
    ha_put_str(origin, "name", "bmsfleet", err);
    ha_put_str(origin, "sw_version", BMSFLEET_VERSION, err);
    put_item(j, "origin", origin, err);
    return j;
}

/* Emits the config of e (or an empty retained payload when clear). */
int ha_emit_entity(const struct config *cfg, const struct ha_owner *o, const struct ha_ent *e,
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


void ha_node_device_id(const struct config *cfg, char *out, size_t cap)
{
    char node[CONFIG_ID_LEN];
    ha_sanitize(cfg->node_id, node, sizeof node);
    snprintf(out, cap, "bmsfleet_%s", node);
}

/* unique_id prefix of a pack: bmsfleet_<serial> when the configuration gives one, else
 * bmsfleet_<node>_<pack>; the entity id prefix is always <node>_<pack>. */
static void pack_ids(const struct config *cfg, const char *pack_id, const char *serial,
                     struct ha_owner *o)
{
    char node[CONFIG_ID_LEN], pack[CONFIG_ID_LEN];
    ha_sanitize(cfg->node_id, node, sizeof node);
    ha_sanitize(pack_id, pack, sizeof pack);
    snprintf(o->eid_prefix, sizeof o->eid_prefix, "%s_%s", node, pack);
    if (serial && serial[0]) {
        char ser[CONFIG_ID_LEN];
        ha_sanitize(serial, ser, sizeof ser);
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
    return ha_emit_entity(x->cfg, x->o, e, x->clear, x->emit, x->ctx);
}

int ha_pack_discovery(const struct config *cfg, const struct ha_pack_info *info, ha_emit_fn emit,
                      void *ctx)
{
    if (info == NULL || info->pack == NULL)
        return -EINVAL;
    const struct config_pack *p = info->pack;
    const struct s42_identity *id = info->id;
    struct ha_owner o = {.dev_name = p->name, .manufacturer = ha_manufacturer(info->port)};
    pack_ids(cfg, p->id, p->serial, &o);
    ha_topic_pack(cfg, p->id, "state", o.state_topic, sizeof o.state_topic);
    ha_topic_status(cfg, o.avail[0], sizeof o.avail[0]);
    ha_topic_pack(cfg, p->id, "availability", o.avail[1], sizeof o.avail[1]);
    o.navail = 2;
    if (info->ncells > 0)
        snprintf(o.model, sizeof o.model, "%uS LiFePO4", info->ncells);
    o.serial = id && id->serial[0] ? id->serial : p->serial;
    o.sw_version = id ? id->software : NULL;
    ha_node_device_id(cfg, o.via, sizeof o.via);
    struct emit_ctx x = {cfg, &o, 0, emit, ctx};
    return ha_pack_entities(info, emit_cb, &x);
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
        int rc = ha_pack_entities(&all, emit_cb, &x);
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
    ha_node_device_id(cfg, o.dev_id, sizeof o.dev_id);
    snprintf(o.uid_prefix, sizeof o.uid_prefix, "%s", o.dev_id);
    ha_sanitize(cfg->node_id, o.eid_prefix, sizeof o.eid_prefix);
    snprintf(o.model, sizeof o.model, "bmsfleet daemon");
    ha_topic_status(cfg, o.state_topic, sizeof o.state_topic);
    /* no availability: this entity is the availability, it must be able to show "offline" */
    struct ha_ent e = ha_binary("status", "Status", "connectivity");
    e.payload_on = "online";
    e.payload_off = "offline";
    e.diagnostic = 1;
    int rc = ha_emit_entity(cfg, &o, &e, 0, emit, ctx);
    if (rc != 0 || !cfg->storage.enabled)
        return rc;
    /* the history writer: ON (a problem) while commits fail; the error in its attributes */
    ha_topic_storage(cfg, o.state_topic, sizeof o.state_topic);
    ha_topic_status(cfg, o.avail[0], sizeof o.avail[0]);
    o.navail = 1;
    e = ha_binary("history", "History writing", "problem");
    snprintf(e.tmpl, sizeof e.tmpl, "{{ 'ON' if value_json.state == 'failing' else 'OFF' }}");
    e.attributes = 1;
    e.diagnostic = 1;
    return ha_emit_entity(cfg, &o, &e, 0, emit, ctx);
}

/* ---- bank ---- */

int ha_bank_discovery(const struct config *cfg, size_t bank_idx, ha_emit_fn emit, void *ctx)
{
    if (bank_idx >= cfg->nbanks)
        return -EINVAL;
    const struct config_bank *bk = &cfg->banks[bank_idx];
    char node[CONFIG_ID_LEN], bank[CONFIG_ID_LEN];
    ha_sanitize(cfg->node_id, node, sizeof node);
    ha_sanitize(bk->id, bank, sizeof bank);
    struct ha_owner o = {.dev_name = bk->name[0] ? bk->name : bk->id, .manufacturer = "bmsfleet"};
    snprintf(o.eid_prefix, sizeof o.eid_prefix, "%s_bank_%s", node, bank);
    snprintf(o.uid_prefix, sizeof o.uid_prefix, "bmsfleet_%s", o.eid_prefix);
    snprintf(o.dev_id, sizeof o.dev_id, "%s", o.uid_prefix);
    snprintf(o.model, sizeof o.model, "Battery bank");
    ha_node_device_id(cfg, o.via, sizeof o.via);
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
        struct ha_ent e = ha_sensor(rows[i].key, rows[i].name, rows[i].unit, rows[i].device_class,
                                 rows[i].state_class, rows[i].precision);
        ha_tmpl_value(&e, rows[i].key, 1);
        int rc = ha_emit_entity(cfg, &o, &e, 0, emit, ctx);
        if (rc != 0)
            return rc;
    }
    struct ha_ent e = ha_binary("soc_diverged", "SOC diverged", "problem");
    snprintf(e.tmpl, sizeof e.tmpl,
             "{{ ('ON' if value_json.soc_diverged else 'OFF') if value_json.soc_diverged is "
             "defined else None }}");
    return ha_emit_entity(cfg, &o, &e, 0, emit, ctx);
}

