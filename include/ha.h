/* ha: Home Assistant MQTT discovery and the state payloads (pure: builds topics and JSON, no
 * I/O). Every message goes out through an emit callback, so the MQTT thread publishes them
 * and the tests compare them with golden files.
 *
 * Topics (base = mqtt.base_topic, node = node.id, prefix = mqtt.discovery_prefix):
 *   <base>/<node>/status              online / offline (LWT), retained
 *   <base>/<pack>/state               JSON state of a pack, per sample
 *   <base>/<pack>/availability        online / offline per pack, retained
 *   <base>/bank/<bank>/state          JSON state of a bank
 *   <base>/<pack>/history             replayed samples with their original timestamps
 *   <prefix>/<component>/<unique_id>/config   discovery, retained
 * Compatibility with the replaced program (mqtt.compat):
 *   <prefix>/sensor/<device_id>/<key>/config and bms/<device_id>/<key> (plain numbers). */
#ifndef BMSFLEET_HA_H
#define BMSFLEET_HA_H

#include <stddef.h>

#include "bank.h"
#include "config.h"
#include "s42.h"
#include "sample.h"

/* retain: 1 for discovery and availability. payload "" clears a retained topic. */
typedef int (*ha_emit_fn)(void *ctx, const char *topic, const char *payload, int retain);

/* What is known about a pack when its discovery is built (all optional except cfg). */
struct ha_pack_info {
    const struct config_port *port;
    const struct config_pack *pack;
    const struct s42_identity *id; /* NULL until identified: serial, firmware, model */
    unsigned ncells;               /* per-cell entities 1..ncells (0: none yet) */
    unsigned ntemps;               /* per-sensor entities */
    const uint8_t *temp_roles;     /* ntemps roles (enum sample_temp_role) */
};

/* Every discovery config of one pack (sensors, per-cell and per-sensor sensors disabled by
 * default, alarm / protection / balancing binary sensors, diagnostics). Returns 0 or the first
 * non-zero emit result. */
int ha_pack_discovery(const struct config *cfg, const struct ha_pack_info *info,
                      ha_emit_fn emit, void *ctx);
/* Empty retained configs for every entity a pack with that id could have had (a pack removed
 * from the configuration). */
int ha_pack_clear(const struct config *cfg, const char *pack_id, const char *serial,
                  ha_emit_fn emit, void *ctx);
/* The bank device: SOC, current, power, lowest/highest cell (+ which pack), spread, packs
 * online "N/M", remaining, energy totals, SOC divergence warning. */
int ha_bank_discovery(const struct config *cfg, size_t bank_idx, ha_emit_fn emit, void *ctx);
/* The node itself: device bmsfleet_<node> (the via_device of every pack and bank) with a
 * connectivity binary sensor on <base>/<node>/status and, when the history is on, a problem
 * binary sensor "History writing" on <base>/<node>/storage (attributes: the error, readings
 * waiting in memory, readings given up). */
int ha_node_discovery(const struct config *cfg, ha_emit_fn emit, void *ctx);
/* The replaced program's 11 discovery configs (when mqtt.compat). */
int ha_compat_discovery(const struct config *cfg, ha_emit_fn emit, void *ctx);

/* State JSON of a pack into buf: the values of `bmsfleet read --json` plus energy counters
 * (NAN = unknown, left out), "last_seen" (ISO 8601 UTC) and the error counters. No allocation:
 * it is written for every sample. Its length, or -1 when it does not fit (REPORT_JSON_MAX
 * always does). */
struct ha_pack_extra {
    double charged_kwh, discharged_kwh;
    long long ts_ms;
    unsigned long long polls, timeouts, checksum_errors, malformed;
};
int ha_pack_state(char *buf, size_t cap, const struct sample *s, const char *protocol,
                  const struct ha_pack_extra *x);
/* State JSON of a bank into buf, the same way. */
int ha_bank_state(char *buf, size_t cap, const struct bank_state *b);
/* State JSON of the history writer: {"state": "ok" | "failing", "error", "waiting",
 * "dropped"}. Caller frees. */
struct ha_storage {
    int failing;
    const char *error; /* "" when none */
    unsigned long long waiting, dropped;
};
char *ha_storage_state(const struct ha_storage *st);
/* The compatibility states: one plain number per key at bms/<device_id>/<key>. */
int ha_compat_states(const struct config *cfg, const struct sample *s, ha_emit_fn emit,
                     void *ctx);

/* Topic helpers (into buf; return buf). */
const char *ha_topic_status(const struct config *cfg, char *buf, size_t cap);
const char *ha_topic_pack(const struct config *cfg, const char *pack_id, const char *leaf,
                          char *buf, size_t cap);
const char *ha_topic_bank(const struct config *cfg, const char *bank_id, char *buf, size_t cap);
/* <base>/<node>/storage: the history writer's state (retained). */
const char *ha_topic_storage(const struct config *cfg, char *buf, size_t cap);

#endif
