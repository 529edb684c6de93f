/* sample: initialisation, derived cell statistics and the names of flags and roles. */
#include "sample.h"

#include <string.h>

void sample_init(struct sample *s)
{
    memset(s, 0, sizeof *s);
    s->voltage_mv = s->current_ma = s->soc_cpct = s->soh_cpct = SAMPLE_ABSENT;
    s->remaining_mah = s->full_mah = s->design_mah = s->cycles = SAMPLE_ABSENT;
    s->cell_min_mv = s->cell_max_mv = s->cell_diff_mv = SAMPLE_ABSENT;
}

void sample_finish(struct sample *s)
{
    if (s->ncells == 0) {
        s->cell_min_mv = s->cell_max_mv = s->cell_diff_mv = SAMPLE_ABSENT;
        s->cell_min_idx = s->cell_max_idx = 0;
        return;
    }
    size_t lo = 0, hi = 0;
    for (size_t i = 1; i < s->ncells; i++) {
        if (s->cell_mv[i] < s->cell_mv[lo])
            lo = i;
        if (s->cell_mv[i] > s->cell_mv[hi])
            hi = i;
    }
    s->cell_min_mv = s->cell_mv[lo];
    s->cell_max_mv = s->cell_mv[hi];
    s->cell_diff_mv = s->cell_max_mv - s->cell_min_mv;
    s->cell_min_idx = (int8_t)(lo + 1);
    s->cell_max_idx = (int8_t)(hi + 1);
}

int32_t sample_temp(const struct sample *s, enum sample_temp_role role)
{
    for (size_t i = 0; i < s->ntemps; i++) {
        if (s->temp_role[i] == role)
            return s->temp_dc[i];
    }
    return SAMPLE_ABSENT;
}

const char *sample_temp_role_name(enum sample_temp_role role)
{
    static const char *const names[] = {"cell", "mos", "ambient", "average"};
    return (unsigned)role < sizeof names / sizeof names[0] ? names[role] : "unknown";
}

static const char *const alarm_names[SAMPLE_ALARM_COUNT] = {
    "cell_overvoltage",     "cell_undervoltage",       "pack_overvoltage",
    "pack_undervoltage",    "charge_overcurrent",      "discharge_overcurrent",
    "charge_high_temp",     "charge_low_temp",         "discharge_high_temp",
    "discharge_low_temp",   "ambient_high_temp",       "ambient_low_temp",
    "mos_high_temp",        "low_soc",                 "cell_difference",
    "internal_fault",       "temperature_high",        "temperature_low",
};

static const char *const prot_names[SAMPLE_PROT_COUNT] = {
    "cell_overvoltage",   "cell_undervoltage",     "pack_overvoltage",  "pack_undervoltage",
    "charge_overcurrent", "discharge_overcurrent", "short_circuit",     "charge_high_temp",
    "charge_low_temp",    "discharge_high_temp",   "discharge_low_temp", "ambient_high_temp",
    "ambient_low_temp",   "mos_high_temp",         "cell_difference",   "fuse_blown",
};

static const char *const state_names[SAMPLE_STATE_COUNT] = {
    "charge_fet_on", "discharge_fet_on", "charging", "discharging"};

const char *sample_alarm_name(unsigned bit)
{
    return bit < SAMPLE_ALARM_COUNT ? alarm_names[bit] : NULL;
}

const char *sample_prot_name(unsigned bit)
{
    return bit < SAMPLE_PROT_COUNT ? prot_names[bit] : NULL;
}

const char *sample_state_name(unsigned bit)
{
    return bit < SAMPLE_STATE_COUNT ? state_names[bit] : NULL;
}
