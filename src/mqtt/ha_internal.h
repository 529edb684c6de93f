/* ha_internal: what the Home Assistant payload builders of src/mqtt/ share (ha.c: owners,
 * config payloads and discovery; ha_entities.c: a pack's entity list; ha_state.c: state
 * payloads; ha_compat.c: the replaced program's topics). Not a public header. */
#ifndef BMSFLEET_HA_INTERNAL_H
#define BMSFLEET_HA_INTERNAL_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "ha.h"

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
    int attributes; /* json_attributes_topic: the state topic (its JSON as attributes) */
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


/* Lower-case [a-z0-9_]: every other byte becomes '_'. */
void ha_sanitize(const char *s, char *out, size_t cap);
/* The BMS maker a port's protocol implies, NULL when none or no port. */
const char *ha_manufacturer(const struct config_port *port);
/* bmsfleet_<node>: the node's device id, the via_device of every other device. */
void ha_node_device_id(const struct config *cfg, char *out, size_t cap);

/* cJSON additions that remember a failed allocation in *err (a NULL string adds nothing). */
void ha_put_str(cJSON *o, const char *k, const char *v, int *err);
void ha_put_num(cJSON *o, const char *k, double v, int *err);

/* Emits the config of e owned by o (or an empty retained payload when clear). */
int ha_emit_entity(const struct config *cfg, const struct ha_owner *o, const struct ha_ent *e,
                   int clear, ha_emit_fn emit, void *ctx);

/* Entity descriptions: a sensor (precision -1: none) or a binary sensor, no template yet. */
struct ha_ent ha_sensor(const char *key, const char *name, const char *unit,
                        const char *device_class, const char *state_class, int precision);
struct ha_ent ha_binary(const char *key, const char *name, const char *device_class);
/* {{ value_json.<key> }}, or with `| default(None)` when the key may be left out */
void ha_tmpl_value(struct ha_ent *e, const char *key, int may_be_missing);

typedef int (*ha_ent_fn)(void *u, const struct ha_ent *e);
/* Calls fn for every entity of a pack described by info, in publishing order; stops at the
 * first non-zero return and returns it. */
int ha_pack_entities(const struct ha_pack_info *info, ha_ent_fn fn, void *u);

#endif
