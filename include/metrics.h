/* metrics: the one descriptor table of the scalar values bmsfleet publishes. Each row says
 * how a value is read from a sample, its JSON key in the state message, and how Home Assistant
 * should present it; the HA discovery builder and the state JSON read the same rows, so a new
 * value is added in one place. (The SQL views name the same values with their unit suffix:
 * voltage -> voltage_v; see schema/.) */
#ifndef BMSFLEET_METRICS_H
#define BMSFLEET_METRICS_H

#include <stddef.h>

#include "sample.h"

struct metric {
    const char *key;          /* JSON key in <base>/<pack>/state, and the entity's suffix */
    const char *name;         /* entity name in Home Assistant */
    const char *unit;         /* NULL: none */
    const char *device_class; /* NULL: none */
    const char *state_class;  /* NULL: none */
    int precision;            /* decimals shown (suggested_display_precision) */
    int diagnostic;           /* entity_category: diagnostic */
    /* the value in `unit`; returns 0 when the pack did not send it */
    int (*get)(const struct sample *s, double *out);
};

/* Per-pack scalar metrics, in display order. */
extern const struct metric metrics_pack[];
extern const size_t metrics_pack_count;

const struct metric *metrics_find(const char *key);

#endif
