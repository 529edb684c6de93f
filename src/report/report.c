/* Part report (src/report/): how a sample is shown. Tables for people and JSON for programs
 * (report.c; the JSON text written by jsonw.c, into a buffer, for every sample) and the table
 * of named metrics every consumer reads values through (metrics.c:
 * key, name, unit, classes, how to get it from a sample). It reaches only the codec, and sits
 * below the MQTT side, the HTTP server and the commands, which all use it.
 *
 * report: tables for people and JSON for programs, both from the same sample. Units shown:
 * V, A, W, Ah, °C, %; absent values print as "-" in tables and null in JSON. */
#include "report.h"
#include "jsonw.h"

#include <math.h>
#include <stdint.h>

static int present(int32_t v) { return v != SAMPLE_ABSENT; }

/* value / div with `dec` decimals, or "-" */
static const char *fmt(char *buf, size_t cap, int32_t v, double div, int dec)
{
    if (!present(v))
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%.*f", dec, v / div);
    return buf;
}

static double power_w(const struct sample *s)
{
    return (double)s->voltage_mv * (double)s->current_ma / 1e6;
}

static void flag_list(FILE *f, uint32_t bits, const char *(*name)(unsigned), unsigned count)
{
    int any = 0;
    for (unsigned b = 0; b < count; b++) {
        if (bits & (1u << b)) {
            fprintf(f, "%s%s", any ? ", " : "", name(b));
            any = 1;
        }
    }
    if (!any)
        fputs("none", f);
    fputc('\n', f);
}

void report_sample_table(FILE *f, const struct sample *s, const char *protocol,
                         const char *alarms_why)
{
    char a[32], b[32], c[32];
    fprintf(f, "pack %u (%s)\n", s->address, protocol);
    fprintf(f, "  SOC               %s %%\n", fmt(a, sizeof a, s->soc_cpct, 100.0, 1));
    fprintf(f, "  SOH               %s %%\n", fmt(a, sizeof a, s->soh_cpct, 100.0, 1));
    fprintf(f, "  voltage           %s V\n", fmt(a, sizeof a, s->voltage_mv, 1000.0, 2));
    fprintf(f, "  current           %s A\n", fmt(a, sizeof a, s->current_ma, 1000.0, 2));
    if (present(s->voltage_mv) && present(s->current_ma))
        fprintf(f, "  power             %.0f W\n", power_w(s));
    fprintf(f, "  capacity          %s / %s Ah (design %s)\n",
            fmt(a, sizeof a, s->remaining_mah, 1000.0, 2), fmt(b, sizeof b, s->full_mah, 1000.0, 2),
            fmt(c, sizeof c, s->design_mah, 1000.0, 2));
    fprintf(f, "  cycles            %s\n", fmt(a, sizeof a, s->cycles, 1.0, 0));
    if (s->ncells) {
        fprintf(f, "  cells (%u)         %.3f – %.3f V, diff %d mV (min #%d, max #%d)\n", s->ncells,
                s->cell_min_mv / 1000.0, s->cell_max_mv / 1000.0, s->cell_diff_mv,
                s->cell_min_idx, s->cell_max_idx);
        for (unsigned i = 0; i < s->ncells; i++) {
            int bal = (s->balancing >> i) & 1u;
            fprintf(f, "%s%2u: %.3f%s", i % 8 == 0 ? "    " : "  ", i + 1, s->cell_mv[i] / 1000.0,
                    bal ? "*" : " ");
            if (i % 8 == 7 || i + 1 == s->ncells)
                fputc('\n', f);
        }
    }
    fputs("  temperatures     ", f);
    for (unsigned i = 0; i < s->ntemps; i++)
        fprintf(f, " %s %.1f °C%s", sample_temp_role_name(s->temp_role[i]), s->temp_dc[i] / 10.0,
                i + 1 < s->ntemps ? "," : "");
    fputc('\n', f);
    if (s->has & SAMPLE_HAS_ALARMS) {
        fputs("  state             ", f);
        flag_list(f, s->state, sample_state_name, SAMPLE_STATE_COUNT);
        fputs("  alarms            ", f);
        flag_list(f, s->alarms, sample_alarm_name, SAMPLE_ALARM_COUNT);
        fputs("  protection        ", f);
        flag_list(f, s->protection, sample_prot_name, SAMPLE_PROT_COUNT);
    } else if (s->has & SAMPLE_ALARMS_UNSUPPORTED) {
        /* unknown, not "none": the pack would not say */
        fprintf(f, "  alarms            not supported by this pack (0x44: %s)\n",
                alarms_why && alarms_why[0] ? alarms_why : "refused");
    }
}

void report_bank_header(FILE *f)
{
    fprintf(f, "%-5s %7s %8s %8s %8s %13s %6s %7s %6s  %s\n", "pack", "SOC %", "V", "A", "W",
            "cell min-max", "diff", "T max", "cycles", "status");
}

static int32_t temp_max(const struct sample *s)
{
    int32_t m = SAMPLE_ABSENT;
    for (unsigned i = 0; i < s->ntemps; i++) {
        if (m == SAMPLE_ABSENT || s->temp_dc[i] > m)
            m = s->temp_dc[i];
    }
    return m;
}

void report_bank_row(FILE *f, const struct sample *s)
{
    char soc[16], v[16], a[16], w[16], cells[32], diff[16], t[16], cyc[16];
    if (present(s->voltage_mv) && present(s->current_ma))
        snprintf(w, sizeof w, "%.0f", power_w(s));
    else
        snprintf(w, sizeof w, "-");
    if (s->ncells)
        snprintf(cells, sizeof cells, "%.3f-%.3f", s->cell_min_mv / 1000.0,
                 s->cell_max_mv / 1000.0);
    else
        snprintf(cells, sizeof cells, "-");
    const char *status = "ok";
    if (!(s->has & SAMPLE_HAS_ALARMS))
        status = s->has & SAMPLE_ALARMS_UNSUPPORTED ? "ok, alarms unsupported"
                                                    : "ok, alarms unknown";
    else if (s->protection)
        status = "PROTECTION";
    else if (s->alarms)
        status = "alarm";
    else if (s->state & SAMPLE_STATE_CHARGING)
        status = "charging";
    else if (s->state & SAMPLE_STATE_DISCHARGING)
        status = "discharging";
    fprintf(f, "%-5u %7s %8s %8s %8s %13s %6s %7s %6s  %s\n", s->address,
            fmt(soc, sizeof soc, s->soc_cpct, 100.0, 1), fmt(v, sizeof v, s->voltage_mv, 1000.0, 2),
            fmt(a, sizeof a, s->current_ma, 1000.0, 2), w, cells,
            fmt(diff, sizeof diff, s->cell_diff_mv, 1.0, 0), fmt(t, sizeof t, temp_max(s), 10.0, 1),
            fmt(cyc, sizeof cyc, s->cycles, 1.0, 0), status);
}

void report_bank_row_missing(FILE *f, unsigned address, const char *why)
{
    fprintf(f, "%-5u %7s %8s %8s %8s %13s %6s %7s %6s  %s\n", address, "-", "-", "-", "-", "-",
            "-", "-", "-", why);
}

void report_identity_table(FILE *f, const struct s42_identity *id)
{
    if (id->protocol_version >= 0)
        fprintf(f, "  protocol version  0x%02X\n", (unsigned)id->protocol_version);
    const struct {
        const char *label, *value;
    } rows[] = {{"hardware", id->hardware},         {"product", id->product},
                {"project", id->project},           {"manufacturer", id->manufacturer},
                {"software", id->software},         {"serial", id->serial}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (rows[i].value[0])
            fprintf(f, "  %-17s %s\n", rows[i].label, rows[i].value);
    }
}

/* A value in exact units of 10^-dec (mV as V: dec 3), or null when absent. */
static void put_num(struct jsonw *w, const char *key, int32_t v, unsigned dec)
{
    jsonw_key(w, key);
    if (present(v))
        jsonw_fixed(w, v, dec);
    else
        jsonw_null(w);
}

static void put_flags(struct jsonw *w, const char *key, uint32_t bits,
                      const char *(*name)(unsigned), unsigned count)
{
    jsonw_key(w, key);
    jsonw_open(w, '[');
    for (unsigned b = 0; b < count; b++) {
        if (bits & (1u << b))
            jsonw_str(w, name(b));
    }
    jsonw_close(w, ']');
}

static void put_cells(struct jsonw *w, const struct sample *s)
{
    jsonw_key(w, "cells");
    jsonw_open(w, '[');
    for (unsigned i = 0; i < s->ncells; i++)
        jsonw_fixed(w, s->cell_mv[i], 3);
    jsonw_close(w, ']');
    put_num(w, "cell_min", s->cell_min_mv, 3);
    put_num(w, "cell_max", s->cell_max_mv, 3);
    put_num(w, "cell_diff", s->cell_diff_mv, 3);
    put_num(w, "cell_min_index", s->ncells ? s->cell_min_idx : SAMPLE_ABSENT, 0);
    put_num(w, "cell_max_index", s->ncells ? s->cell_max_idx : SAMPLE_ABSENT, 0);
}

static void put_temps(struct jsonw *w, const struct sample *s)
{
    jsonw_key(w, "temperatures");
    jsonw_open(w, '[');
    for (unsigned i = 0; i < s->ntemps; i++) {
        jsonw_open(w, '{');
        jsonw_key(w, "role");
        jsonw_str(w, sample_temp_role_name(s->temp_role[i]));
        jsonw_key(w, "value");
        jsonw_fixed(w, s->temp_dc[i], 1);
        jsonw_close(w, '}');
    }
    jsonw_close(w, ']');
    put_num(w, "temp_ambient", sample_temp(s, SAMPLE_TEMP_AMBIENT), 1);
    put_num(w, "temp_mos", sample_temp(s, SAMPLE_TEMP_MOS), 1);
}

/* state, alarms, protection, raw status and balancing: present, unknown (null) or left out */
static void put_status(struct jsonw *w, const struct sample *s, unsigned opts)
{
    if (s->has & SAMPLE_HAS_ALARMS) {
        put_flags(w, "state", s->state, sample_state_name, SAMPLE_STATE_COUNT);
        put_flags(w, "alarms", s->alarms, sample_alarm_name, SAMPLE_ALARM_COUNT);
        put_flags(w, "protection", s->protection, sample_prot_name, SAMPLE_PROT_COUNT);
        jsonw_key(w, "raw_status");
        jsonw_open(w, '[');
        for (unsigned i = 0; i < s->nraw_status; i++)
            jsonw_int(w, s->raw_status[i]);
        jsonw_close(w, ']');
    } else if (opts & REPORT_JSON_UNKNOWN_NULL) {
        static const char *const unknown[] = {"state", "alarms", "protection", "raw_status"};
        for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
            jsonw_key(w, unknown[i]);
            jsonw_null(w);
        }
    }
    if (s->has & SAMPLE_ALARMS_UNSUPPORTED) {
        jsonw_key(w, "alarms_supported");
        jsonw_bool(w, 0);
    }
    if ((s->has & SAMPLE_HAS_ALARMS) && (s->has & SAMPLE_ALARMS_CARRIED)) {
        /* the flags of the pack's last 0x44 read, not of this poll (ports[].alarms_every) */
        jsonw_key(w, "alarms_age_polls");
        jsonw_int(w, s->alarms_age);
    }
    if (s->has & SAMPLE_HAS_BALANCE) {
        jsonw_key(w, "balancing");
        jsonw_open(w, '[');
        for (unsigned i = 0; i < SAMPLE_MAX_CELLS; i++) {
            if (s->balancing & (1u << i))
                jsonw_int(w, i + 1);
        }
        jsonw_close(w, ']');
    } else if ((opts & REPORT_JSON_UNKNOWN_NULL) && !(s->has & SAMPLE_HAS_ALARMS)) {
        jsonw_key(w, "balancing"); /* it would have come with the flags */
        jsonw_null(w);
    }
}

void report_sample_json_members(struct jsonw *w, const struct sample *s, const char *protocol,
                                long long ts_ms, unsigned opts)
{
    if (ts_ms > 0) {
        jsonw_key(w, "ts");
        jsonw_fixed(w, ts_ms, 3);
    }
    jsonw_key(w, "address");
    jsonw_int(w, s->address);
    if (protocol) {
        jsonw_key(w, "protocol");
        jsonw_str(w, protocol);
    }
    put_num(w, "voltage", s->voltage_mv, 3);
    put_num(w, "current", s->current_ma, 3);
    jsonw_key(w, "power");
    if (present(s->voltage_mv) && present(s->current_ma))
        jsonw_round(w, power_w(s), 1);
    else
        jsonw_null(w);
    put_num(w, "soc", s->soc_cpct, 2);
    put_num(w, "soh", s->soh_cpct, 2);
    put_num(w, "remaining_ah", s->remaining_mah, 3);
    put_num(w, "full_ah", s->full_mah, 3);
    put_num(w, "design_ah", s->design_mah, 3);
    put_num(w, "cycles", s->cycles, 0);
    put_cells(w, s);
    put_temps(w, s);
    put_status(w, s, opts);
}

int report_sample_json_text(char *buf, size_t cap, const struct sample *s, const char *protocol,
                            long long ts_ms, unsigned opts)
{
    struct jsonw w;
    jsonw_init(&w, buf, cap);
    jsonw_open(&w, '{');
    report_sample_json_members(&w, s, protocol, ts_ms, opts);
    jsonw_close(&w, '}');
    return jsonw_end(&w);
}

cJSON *report_sample_json(const struct sample *s, const char *protocol, long long ts_ms)
{
    return report_sample_json_opts(s, protocol, ts_ms, 0);
}

cJSON *report_sample_json_opts(const struct sample *s, const char *protocol, long long ts_ms,
                               unsigned opts)
{
    /* one writer for both forms: the tree is the text parsed (the commands add their keys) */
    char text[REPORT_JSON_MAX];
    if (report_sample_json_text(text, sizeof text, s, protocol, ts_ms, opts) < 0)
        return NULL;
    return cJSON_Parse(text);
}

cJSON *report_identity_json(const struct s42_identity *id)
{
    cJSON *o = cJSON_CreateObject();
    if (id->protocol_version >= 0)
        cJSON_AddNumberToObject(o, "protocol_version", id->protocol_version);
    else
        cJSON_AddNullToObject(o, "protocol_version");
    const struct {
        const char *key, *value;
    } rows[] = {{"hardware", id->hardware},         {"product", id->product},
                {"project", id->project},           {"manufacturer", id->manufacturer},
                {"software", id->software},         {"serial", id->serial}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (rows[i].value[0])
            cJSON_AddStringToObject(o, rows[i].key, rows[i].value);
        else
            cJSON_AddNullToObject(o, rows[i].key);
    }
    return o;
}

int report_print_json(FILE *f, cJSON *obj)
{
    char *text = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (text == NULL)
        return -1;
    fprintf(f, "%s\n", text);
    cJSON_free(text);
    return 0;
}
