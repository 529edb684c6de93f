/* ha_compat: the topics of the program bmsfleet replaces (bms/<device_id>/<key>, plain numbers
 * in its fixed decimals) and their discovery, so its users keep their dashboards. Pure. */
#include "ha.h"
#include "ha_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>

#include "metrics.h"

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
                         .manufacturer = ha_manufacturer(port)};
    snprintf(o.uid_prefix, sizeof o.uid_prefix, "%s", dev); /* unique_id <device_id>_<key> */
    ha_sanitize(dev, o.eid_prefix, sizeof o.eid_prefix);
    snprintf(o.dev_id, sizeof o.dev_id, "%s", dev);
    ha_node_device_id(cfg, o.via, sizeof o.via);
    ha_topic_status(cfg, o.avail[0], sizeof o.avail[0]);
    o.navail = 1;
    for (size_t i = 0; i < sizeof compat_keys / sizeof compat_keys[0]; i++) {
        const struct metric *m = metrics_find(compat_keys[i].metric);
        if (m == NULL)
            return -EINVAL;
        struct ha_ent e = ha_sensor(compat_keys[i].key, m->name, m->unit, m->device_class,
                                 m->state_class, compat_keys[i].dec);
        snprintf(o.state_topic, sizeof o.state_topic, "bms/%s/%s", dev, compat_keys[i].key);
        int rc = ha_emit_entity(cfg, &o, &e, 0, emit, ctx);
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
