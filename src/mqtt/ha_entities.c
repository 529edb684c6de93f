/* ha_entities: what Home Assistant entities a pack has, described as struct ha_ent (key, name,
 * classes, value template) in publishing order; ha.c turns each description into a config
 * payload. Discovery and ha_pack_clear walk the same list, so a cleared pack leaves nothing
 * behind. Pure: no I/O. */
#include "ha_internal.h"

#include <stdio.h>
#include <string.h>

#include "metrics.h"

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

/* ---- entity descriptions ---- */

struct ha_ent ha_sensor(const char *key, const char *name, const char *unit,
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

struct ha_ent ha_binary(const char *key, const char *name, const char *device_class)
{
    struct ha_ent e = {.component = "binary_sensor", .device_class = device_class, .precision = -1};
    snprintf(e.key, sizeof e.key, "%s", key);
    snprintf(e.name, sizeof e.name, "%s", name);
    return e;
}

/* {{ value_json.<key> }}, or with `| default(None)` when the key may be left out */
void ha_tmpl_value(struct ha_ent *e, const char *key, int may_be_missing)
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

/* Hands e to fn; returns from the calling generator on a non-zero answer. */
#define EMIT(e)                                                                                    \
    do {                                                                                           \
        int rc_ = fn(u, &(e));                                                                     \
        if (rc_ != 0)                                                                              \
            return rc_;                                                                            \
    } while (0)

/* The sample's own metrics (metrics.c), then the energy counters the daemon integrates. */
static int measurement_entities(ha_ent_fn fn, void *u)
{
    for (size_t i = 0; i < metrics_pack_count; i++) {
        const struct metric *m = &metrics_pack[i];
        struct ha_ent e =
            ha_sensor(m->key, m->name, m->unit, m->device_class, m->state_class, m->precision);
        e.diagnostic = m->diagnostic;
        ha_tmpl_value(&e, m->key, 0);
        EMIT(e);
    }
    static const struct {
        const char *key, *name;
    } energy[] = {{"charged_kwh", "Energy charged"}, {"discharged_kwh", "Energy discharged"}};
    for (size_t i = 0; i < sizeof energy / sizeof energy[0]; i++) {
        struct ha_ent e =
            ha_sensor(energy[i].key, energy[i].name, "kWh", "energy", "total_increasing", 2);
        ha_tmpl_value(&e, energy[i].key, 1);
        EMIT(e);
    }
    return 0;
}

/* One sensor per cell and per temperature probe the pack has; disabled by default (a 16-pack
 * bank has 256 cells). */
static int cell_and_probe_entities(const struct ha_pack_info *info, ha_ent_fn fn, void *u)
{
    for (unsigned i = 0; i < info->ncells && i < SAMPLE_MAX_CELLS; i++) {
        char key[16], name[32];
        snprintf(key, sizeof key, "cell_%u", i + 1);
        snprintf(name, sizeof name, "Cell %u", i + 1);
        struct ha_ent e = ha_sensor(key, name, "V", "voltage", "measurement", 3);
        e.disabled = 1;
        snprintf(e.tmpl, sizeof e.tmpl, "{{ value_json.cells[%u] }}", i);
        EMIT(e);
    }
    for (unsigned i = 0; i < info->ntemps && i < SAMPLE_MAX_TEMPS; i++) {
        char key[16], name[48];
        const char *role = info->temp_roles ? role_label(info->temp_roles[i]) : NULL;
        snprintf(key, sizeof key, "temp_%u", i + 1);
        if (role)
            snprintf(name, sizeof name, "Temperature %u (%s)", i + 1, role);
        else
            snprintf(name, sizeof name, "Temperature %u", i + 1);
        struct ha_ent e = ha_sensor(key, name, "°C", "temperature", "measurement", 1);
        e.disabled = 1;
        snprintf(e.tmpl, sizeof e.tmpl, "{{ value_json.temperatures[%u].value }}", i);
        EMIT(e);
    }
    return 0;
}

/* A binary sensor per alarm and protection flag, balancing and the two FETs. */
static int flag_entities(ha_ent_fn fn, void *u)
{
    struct ha_ent e;
    for (unsigned b = 0; b < SAMPLE_ALARM_COUNT; b++) {
        char key[48], name[80];
        snprintf(key, sizeof key, "alarm_%s", sample_alarm_name(b));
        flag_label(sample_alarm_name(b), "alarm", name, sizeof name);
        e = ha_binary(key, name, "problem");
        tmpl_flag(&e, "alarms", sample_alarm_name(b));
        EMIT(e);
    }
    for (unsigned b = 0; b < SAMPLE_PROT_COUNT; b++) {
        char key[48], name[80];
        snprintf(key, sizeof key, "protection_%s", sample_prot_name(b));
        flag_label(sample_prot_name(b), "protection", name, sizeof name);
        e = ha_binary(key, name, "safety");
        tmpl_flag(&e, "protection", sample_prot_name(b));
        EMIT(e);
    }
    e = ha_binary("balancing", "Balancing", "running");
    snprintf(e.tmpl, sizeof e.tmpl,
             "{{ ('ON' if value_json.balancing | length > 0 else 'OFF') if value_json.balancing "
             "is defined else None }}");
    EMIT(e);
    e = ha_binary("charge_fet", "Charge FET", "power");
    tmpl_flag(&e, "state", sample_state_name(0)); /* charge_fet_on */
    EMIT(e);
    e = ha_binary("discharge_fet", "Discharge FET", "power");
    tmpl_flag(&e, "state", sample_state_name(1)); /* discharge_fet_on */
    EMIT(e);
    return 0;
}

/* A diagnostic whose value is a constant of the discovery (the identity the pack reported),
 * rendered on every state message; none when the pack did not report it. */
static int identity_entity(const char *key, const char *name, const char *value, ha_ent_fn fn,
                           void *u)
{
    if (value == NULL || value[0] == '\0')
        return 0;
    char lit[80];
    jinja_literal(value, lit, sizeof lit);
    struct ha_ent e = ha_sensor(key, name, NULL, NULL, NULL, -1);
    e.diagnostic = 1;
    snprintf(e.tmpl, sizeof e.tmpl, "{{ '%s' }}", lit);
    EMIT(e);
    return 0;
}

/* Diagnostics: last seen (available while the pack is silent: that is its point), the poll
 * counters, serial number and firmware. */
static int diagnostic_entities(const struct ha_pack_info *info, ha_ent_fn fn, void *u)
{
    struct ha_ent e = ha_sensor("last_seen", "Last seen", NULL, "timestamp", NULL, -1);
    e.diagnostic = e.node_only = 1;
    ha_tmpl_value(&e, "last_seen", 1);
    EMIT(e);
    static const struct {
        const char *key, *name;
    } counters[] = {{"polls", "Polls"},
                    {"timeouts", "Timeouts"},
                    {"checksum_errors", "Checksum errors"},
                    {"malformed", "Malformed answers"}};
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        e = ha_sensor(counters[i].key, counters[i].name, NULL, NULL, "total_increasing", -1);
        e.diagnostic = 1;
        ha_tmpl_value(&e, counters[i].key, 0);
        EMIT(e);
    }
    const struct s42_identity *id = info->id;
    int rc = identity_entity("serial", "Serial number", id ? id->serial : NULL, fn, u);
    if (rc == 0)
        rc = identity_entity("firmware", "Firmware", id ? id->software : NULL, fn, u);
    return rc;
}
#undef EMIT

int ha_pack_entities(const struct ha_pack_info *info, ha_ent_fn fn, void *u)
{
    int rc = measurement_entities(fn, u);
    if (rc == 0)
        rc = cell_and_probe_entities(info, fn, u);
    if (rc == 0)
        rc = flag_entities(fn, u);
    if (rc == 0)
        rc = diagnostic_entities(info, fn, u);
    return rc;
}
