/* metrics: the per-pack value table (see metrics.h). Getters turn the fixed integer units of a
 * sample into the published unit and say when a value is absent. */
#include "metrics.h"

#include <string.h>

#define GETTER(fn, field, div)                                                                     \
    static int fn(const struct sample *s, double *out)                                            \
    {                                                                                              \
        if (s->field == SAMPLE_ABSENT)                                                             \
            return 0;                                                                              \
        *out = s->field / (div);                                                                   \
        return 1;                                                                                  \
    }

GETTER(get_voltage, voltage_mv, 1000.0)
GETTER(get_current, current_ma, 1000.0)
GETTER(get_soc, soc_cpct, 100.0)
GETTER(get_soh, soh_cpct, 100.0)
GETTER(get_remaining, remaining_mah, 1000.0)
GETTER(get_full, full_mah, 1000.0)
GETTER(get_design, design_mah, 1000.0)
GETTER(get_cycles, cycles, 1.0)
GETTER(get_cell_min, cell_min_mv, 1000.0)
GETTER(get_cell_max, cell_max_mv, 1000.0)
GETTER(get_cell_diff, cell_diff_mv, 1000.0)

static int get_power(const struct sample *s, double *out)
{
    if (s->voltage_mv == SAMPLE_ABSENT || s->current_ma == SAMPLE_ABSENT)
        return 0;
    *out = (double)s->voltage_mv * (double)s->current_ma / 1e6;
    return 1;
}

static int get_temp(const struct sample *s, enum sample_temp_role role, double *out)
{
    int32_t t = sample_temp(s, role);
    if (t == SAMPLE_ABSENT)
        return 0;
    *out = t / 10.0;
    return 1;
}

static int get_temp_ambient(const struct sample *s, double *out)
{
    return get_temp(s, SAMPLE_TEMP_AMBIENT, out);
}

static int get_temp_mos(const struct sample *s, double *out)
{
    return get_temp(s, SAMPLE_TEMP_MOS, out);
}

const struct metric metrics_pack[] = {
    /* key           name                 unit  device_class state_class prec diag getter */
    {"voltage", "Voltage", "V", "voltage", "measurement", 2, 0, get_voltage},
    {"current", "Current", "A", "current", "measurement", 2, 0, get_current},
    {"power", "Power", "W", "power", "measurement", 0, 0, get_power},
    {"soc", "State of charge", "%", "battery", "measurement", 1, 0, get_soc},
    {"soh", "State of health", "%", NULL, "measurement", 0, 0, get_soh},
    {"remaining_ah", "Remaining capacity", "Ah", NULL, "measurement", 2, 0, get_remaining},
    {"full_ah", "Full capacity", "Ah", NULL, "measurement", 2, 0, get_full},
    {"design_ah", "Design capacity", "Ah", NULL, NULL, 0, 1, get_design},
    {"cycles", "Cycles", NULL, NULL, "total_increasing", 0, 0, get_cycles},
    {"cell_min", "Lowest cell", "V", "voltage", "measurement", 3, 0, get_cell_min},
    {"cell_max", "Highest cell", "V", "voltage", "measurement", 3, 0, get_cell_max},
    {"cell_diff", "Cell difference", "V", "voltage", "measurement", 3, 0, get_cell_diff},
    {"temp_ambient", "Ambient temperature", "°C", "temperature", "measurement", 1, 0,
     get_temp_ambient},
    {"temp_mos", "MOSFET temperature", "°C", "temperature", "measurement", 1, 0, get_temp_mos},
};
const size_t metrics_pack_count = sizeof metrics_pack / sizeof metrics_pack[0];

const struct metric *metrics_find(const char *key)
{
    for (size_t i = 0; i < metrics_pack_count; i++) {
        if (strcmp(metrics_pack[i].key, key) == 0)
            return &metrics_pack[i];
    }
    return NULL;
}
