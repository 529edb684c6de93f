/* http_metrics: /metrics in the Prometheus text exposition format (version 0.0.4). Names and
 * types by Prometheus's conventions: base units (volts, amperes, watts, coulombs, joules,
 * seconds, celsius, ratios 0..1), counters end in _total, each family has HELP and TYPE and
 * its samples together. Pack values carry the labels pack, bank and port; cells cell, sensors
 * sensor and role. A pack whose data is stale keeps its last values: its health and
 * bmsfleet_pack_sample_age_seconds say how old they are. docs/http.md lists every name. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "http_internal.h"

/* A label value: backslash, double quote and line feed escaped. */
static void label_value(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', f);
        if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void value(FILE *f, double v)
{
    if (isnan(v))
        fputs(" NaN\n", f);
    else if (isinf(v))
        fputs(v > 0 ? " +Inf\n" : " -Inf\n", f);
    else
        fprintf(f, " %.15g\n", v);
}

/* name{pack="…",bank="…",port="…" (the brace left open for more labels) */
static void labels3(FILE *f, const char *name, const char *pack, const char *bank,
                    const char *port)
{
    fprintf(f, "%s{pack=\"", name);
    label_value(f, pack);
    fputs("\",bank=\"", f);
    label_value(f, bank);
    fputs("\",port=\"", f);
    label_value(f, port);
    fputc('"', f);
}

static void pack_labels(FILE *f, const char *name, const struct http_pack *p)
{
    labels3(f, name, p->id, p->bank, p->port);
}

/* One sample with only the labels of pack (or of the bank when bank is set). */
static void sample1(FILE *f, const char *name, const char *key, const char *label, double v)
{
    fprintf(f, "%s{%s=\"", name, key);
    label_value(f, label);
    fputc('"', f);
    fputc('}', f);
    value(f, v);
}

/* Pack values of the newest sample: its column, its name, the factor to its base unit. */
static const struct {
    enum http_pack_col col;
    const char *name, *help;
    double scale;
} pack_values[] = {
    {PC_VOLTAGE, "bmsfleet_pack_voltage_volts", "Pack voltage.", 1},
    {PC_CURRENT, "bmsfleet_pack_current_amperes", "Pack current, positive while charging.", 1},
    {PC_POWER, "bmsfleet_pack_power_watts", "Pack power, positive while charging.", 1},
    {PC_SOC, "bmsfleet_pack_state_of_charge_ratio", "State of charge, 0 to 1.", 0.01},
    {PC_SOH, "bmsfleet_pack_state_of_health_ratio", "State of health, 0 to 1.", 0.01},
    {PC_REMAINING, "bmsfleet_pack_remaining_charge_coulombs",
     "Remaining charge (1 Ah = 3600 C).", 3600},
    {PC_FULL, "bmsfleet_pack_full_charge_coulombs", "Charge when full (1 Ah = 3600 C).", 3600},
    {PC_CYCLES, "bmsfleet_pack_charge_cycles", "Charge cycles the BMS counted.", 1},
    {PC_CELL_MIN, "bmsfleet_pack_cell_min_voltage_volts", "Lowest cell voltage.", 1},
    {PC_CELL_MAX, "bmsfleet_pack_cell_max_voltage_volts", "Highest cell voltage.", 1},
    {PC_CELL_DIFF, "bmsfleet_pack_cell_spread_volts", "Highest minus lowest cell voltage.",
     0.001},
    {PC_TEMP_MIN, "bmsfleet_pack_min_temperature_celsius", "Lowest temperature sensor.", 1},
    {PC_TEMP_MAX, "bmsfleet_pack_max_temperature_celsius", "Highest temperature sensor.", 1},
    {PC_AGE, "bmsfleet_pack_sample_age_seconds", "Age of the newest sample.", 1},
};

static const struct {
    enum http_bank_col col;
    const char *name, *help;
    double scale;
} bank_values[] = {
    {BC_SOC, "bmsfleet_bank_state_of_charge_ratio",
     "State of charge of the bank, weighted by capacity, 0 to 1.", 0.01},
    {BC_CURRENT, "bmsfleet_bank_current_amperes", "Bank current, positive while charging.", 1},
    {BC_POWER, "bmsfleet_bank_power_watts", "Bank power, positive while charging.", 1},
    {BC_REMAINING, "bmsfleet_bank_remaining_charge_coulombs", "Remaining charge of the bank.",
     3600},
    {BC_FULL, "bmsfleet_bank_full_charge_coulombs", "Charge of the bank when full.", 3600},
    {BC_CELL_MIN, "bmsfleet_bank_cell_min_voltage_volts", "Lowest cell voltage of the bank.", 1},
    {BC_CELL_MAX, "bmsfleet_bank_cell_max_voltage_volts", "Highest cell voltage of the bank.", 1},
    {BC_SPREAD, "bmsfleet_bank_cell_spread_volts", "Highest minus lowest cell of the bank.",
     0.001},
    {BC_TEMP_MAX, "bmsfleet_bank_max_temperature_celsius", "Hottest sensor of the bank.", 1},
    {BC_AGE, "bmsfleet_bank_sample_age_seconds", "Age of the bank's newest sample.", 1},
};

/* The daemon's poll counters of a pack. */
static const struct {
    const char *name, *help;
    size_t off;
} poll_counters[] = {
#define C(field, name, help) {name, help, offsetof(struct http_pack_live, field)}
    C(polls, "bmsfleet_pack_polls_total", "Polls of the pack since the daemon started."),
    C(ok, "bmsfleet_pack_polls_ok_total", "Polls that gave a sample."),
    C(timeouts, "bmsfleet_pack_timeouts_total", "Polls without an answer in time."),
    C(checksum_errors, "bmsfleet_pack_checksum_errors_total", "Answers with a bad checksum."),
    C(malformed, "bmsfleet_pack_malformed_replies_total", "Answers that could not be decoded."),
    C(refused, "bmsfleet_pack_refused_replies_total", "Answers with an error code."),
    C(foreign, "bmsfleet_pack_foreign_replies_total", "Answers from another address."),
    C(port_errors, "bmsfleet_pack_port_errors_total", "Polls lost to the serial port failing."),
    C(alarm_failures, "bmsfleet_pack_alarm_read_failures_total",
      "Good polls whose alarm command failed."),
#undef C
};

static const char *const healths[] = {"online", "stale", "offline", "unknown"};

/* The alarms (or protections) of each pack whose flags were read. */
static void flag_counts(FILE *f, const struct http_state *s, const char *name, const char *help,
                        int protections)
{
    family(f, name, "gauge", help);
    for (size_t i = 0; i < s->npacks; i++) {
        if (!s->packs[i].flags_known)
            continue;
        pack_labels(f, name, &s->packs[i]);
        fputc('}', f);
        value(f, (double)(protections ? s->packs[i].nprotections : s->packs[i].nalarms));
    }
}

/* Every cell's voltage, or whether it is balanced (only where the flags were read). */
static void cell_series(FILE *f, const struct http_state *s, const char *name, const char *help,
                        int balancing)
{
    family(f, name, "gauge", help);
    for (size_t i = 0; i < s->npacks; i++) {
        const struct http_pack *p = &s->packs[i];
        for (size_t c = 0; (!balancing || p->flags_known) && c < p->ncells; c++) {
            pack_labels(f, name, p);
            fprintf(f, ",cell=\"%zu\"}", c + 1);
            value(f, balancing ? p->cell_balancing[c] : p->cell_v[c]);
        }
    }
}

static void pack_metrics(struct http *h, FILE *f)
{
    const struct http_state *s = &h->state;
    family(f, "bmsfleet_pack_health", "gauge",
           "1 for the pack's health (online, stale, offline, unknown), 0 for the others.");
    for (size_t i = 0; i < s->npacks; i++) {
        const struct http_pack *p = &s->packs[i];
        const char *mine = p->health[0] ? p->health : "unknown";
        for (size_t k = 0; k < sizeof healths / sizeof healths[0]; k++) {
            pack_labels(f, "bmsfleet_pack_health", p);
            fprintf(f, ",state=\"%s\"}", healths[k]);
            value(f, strcmp(mine, healths[k]) == 0);
        }
    }
    for (size_t m = 0; m < sizeof pack_values / sizeof pack_values[0]; m++) {
        family(f, pack_values[m].name, "gauge", pack_values[m].help);
        for (size_t i = 0; i < s->npacks; i++) {
            double v = s->packs[i].v[pack_values[m].col];
            if (isnan(v))
                continue; /* absent: the pack does not send it, or has no sample */
            pack_labels(f, pack_values[m].name, &s->packs[i]);
            fputc('}', f);
            value(f, v * pack_values[m].scale);
        }
    }
    flag_counts(f, s, "bmsfleet_pack_alarms_active", "Alarms the newest sample carries.", 0);
    flag_counts(f, s, "bmsfleet_pack_protections_active",
                "Protections (charge or discharge cut off) the newest sample carries.", 1);
    cell_series(f, s, "bmsfleet_cell_voltage_volts", "Cell voltage of the newest sample.", 0);
    cell_series(f, s, "bmsfleet_cell_balancing", "1 while the BMS balances the cell.", 1);
    family(f, "bmsfleet_temperature_celsius", "gauge", "Temperature sensor of the newest sample.");
    for (size_t i = 0; i < s->npacks; i++) {
        for (size_t t = 0; t < s->packs[i].ntemps; t++) {
            pack_labels(f, "bmsfleet_temperature_celsius", &s->packs[i]);
            fprintf(f, ",sensor=\"%zu\",role=\"", t + 1);
            label_value(f, s->packs[i].temp_role[t]);
            fputs("\"}", f);
            value(f, s->packs[i].temp_c[t]);
        }
    }
    static const char *const energy[][2] = {
        {"bmsfleet_pack_charged_energy_joules_total", "Energy into the pack (1 kWh = 3.6 MJ)."},
        {"bmsfleet_pack_discharged_energy_joules_total", "Energy out of the pack."},
    };
    for (size_t e = 0; e < 2; e++) {
        family(f, energy[e][0], "counter", energy[e][1]);
        for (size_t i = 0; i < s->npacks; i++) {
            double kwh = e ? s->packs[i].discharged_kwh : s->packs[i].charged_kwh;
            if (isnan(kwh))
                continue;
            pack_labels(f, energy[e][0], &s->packs[i]);
            fputc('}', f);
            value(f, kwh * 3.6e6);
        }
    }
}

static void poll_metrics(struct http *h, FILE *f)
{
    for (size_t m = 0; m < sizeof poll_counters / sizeof poll_counters[0]; m++) {
        family(f, poll_counters[m].name, "counter", poll_counters[m].help);
        for (size_t i = 0; i < h->live.npacks; i++) {
            const struct http_pack_live *l = &h->live.packs[i];
            uint64_t v;
            memcpy(&v, (const char *)l + poll_counters[m].off, sizeof v);
            labels3(f, poll_counters[m].name, l->pack, l->bank, l->port);
            fprintf(f, "} %llu\n", (unsigned long long)v);
        }
    }
    family(f, "bmsfleet_port_up", "gauge", "1 while the serial port is open.");
    for (size_t i = 0; i < h->live.nports; i++)
        if (h->live.ports[i].name)
            sample1(f, "bmsfleet_port_up", "port", h->live.ports[i].name, h->live.ports[i].up);
}

static void bank_metrics(struct http *h, FILE *f)
{
    const struct http_state *s = &h->state;
    family(f, "bmsfleet_bank_packs", "gauge", "Packs of the bank in the history.");
    for (size_t i = 0; i < s->nbanks; i++)
        sample1(f, "bmsfleet_bank_packs", "bank", s->banks[i].id, s->banks[i].packs);
    family(f, "bmsfleet_bank_packs_online", "gauge", "Packs of the bank online with fresh data.");
    for (size_t i = 0; i < s->nbanks; i++)
        sample1(f, "bmsfleet_bank_packs_online", "bank", s->banks[i].id, s->banks[i].online);
    for (size_t m = 0; m < sizeof bank_values / sizeof bank_values[0]; m++) {
        family(f, bank_values[m].name, "gauge", bank_values[m].help);
        for (size_t i = 0; i < s->nbanks; i++) {
            double v = s->banks[i].v[bank_values[m].col];
            if (!isnan(v))
                sample1(f, bank_values[m].name, "bank", s->banks[i].id, v * bank_values[m].scale);
        }
    }
}

static void counter(FILE *f, const char *name, const char *help, uint64_t v)
{
    family(f, name, "counter", help);
    fprintf(f, "%s %llu\n", name, (unsigned long long)v);
}

static void gauge(FILE *f, const char *name, const char *help, double v)
{
    family(f, name, "gauge", help);
    fputs(name, f);
    value(f, v);
}

/* A summary without quantiles: the time spent (seconds) and how many. */
static void summary(FILE *f, const char *name, const char *help, uint64_t ns, uint64_t n)
{
    family(f, name, "summary", help);
    fprintf(f, "%s_sum %.9f\n%s_count %llu\n", name, (double)ns / 1e9, name,
            (unsigned long long)n);
}

static void daemon_metrics(struct http *h, FILE *f)
{
    const struct http_state *s = &h->state;
    const struct http_live *l = &h->live;
    family(f, "bmsfleet_build_info", "gauge", "The running bmsfleet, its version as a label.");
    fprintf(f, "bmsfleet_build_info{version=\"%s\"} 1\n", BMSFLEET_VERSION);
    gauge(f, "bmsfleet_start_time_seconds", "When the daemon started, UTC epoch seconds.",
          (double)h->started_ms / 1000.0);
    gauge(f, "bmsfleet_history_writing",
          "1 while the newest daemon run of the history writes to it.",
          s->have_daemon && strcmp(s->daemon_state, "writing") == 0);
    if (s->have_daemon)
        gauge(f, "bmsfleet_history_last_write_age_seconds",
              "Since the writer's last write to its run row (a heartbeat every 60 s).",
              s->daemon_age_s);
    if (l->history) {
        const struct store_stats *st = &l->store;
        counter(f, "bmsfleet_history_readings_written_total", "Readings committed to the history.",
                st->committed);
        counter(f, "bmsfleet_history_commit_failures_total",
                "Commits that failed (the readings wait in memory and are written again).",
                st->failed_commits);
        counter(f, "bmsfleet_history_readings_dropped_total",
                "Readings lost: memory was full while the writes failed.", st->dropped);
        counter(f, "bmsfleet_history_pruned_rows_total", "Rows deleted by retention.", st->pruned);
        counter(f, "bmsfleet_history_pruned_undelivered_total",
                "Samples retention deleted before MQTT delivered them.", st->pruned_undelivered);
        summary(f, "bmsfleet_history_commit_duration_seconds",
                "Time the writer spent in its commits.", st->commit_ns_total, st->commits);
        gauge(f, "bmsfleet_history_commit_longest_seconds", "The longest commit so far.",
              (double)st->commit_ns_max / 1e9);
        gauge(f, "bmsfleet_history_failing", "1 while the writes fail.", st->failing);
        gauge(f, "bmsfleet_history_readings_waiting",
              "Readings in memory that a failing commit could not write yet.",
              (double)st->waiting);
    }
    if (l->mqtt) {
        gauge(f, "bmsfleet_mqtt_connected", "1 while connected to the broker.", l->mqtt_connected);
        counter(f, "bmsfleet_mqtt_messages_published_total", "Messages handed to the broker.",
                l->mqtt_published);
        counter(f, "bmsfleet_mqtt_messages_dropped_total", "Messages given up.", l->mqtt_dropped);
        counter(f, "bmsfleet_mqtt_cursor_save_failures_total",
                "Failed saves of the replay cursor (each retried).", l->mqtt_cursor_failures);
        summary(f, "bmsfleet_mqtt_live_publish_duration_seconds",
                "Time the MQTT thread spent publishing each live reading.", l->mqtt_live_ns_total,
                l->mqtt_live_readings);
        if (s->backlog >= 0) {
            gauge(f, "bmsfleet_mqtt_backlog_samples",
                  "History samples the broker has not acknowledged yet.", (double)s->backlog);
            gauge(f, "bmsfleet_mqtt_replay_lag_seconds",
                  "Age of the oldest sample the broker has not acknowledged (0: none).",
                  s->replay_lag_s);
        }
    }
}

static void http_self_metrics(struct http *h, FILE *f)
{
    family(f, "bmsfleet_http_requests_total", "counter", "Requests answered, by status.");
    for (size_t i = 0; i < sizeof http_code_classes / sizeof http_code_classes[0]; i++)
        if (http_code_classes[i] == 500)
            fprintf(f, "bmsfleet_http_requests_total{code=\"5xx\"} %llu\n",
                    (unsigned long long)h->requests[i]);
        else
            fprintf(f, "bmsfleet_http_requests_total{code=\"%u\"} %llu\n", http_code_classes[i],
                    (unsigned long long)h->requests[i]);
    counter(f, "bmsfleet_http_connections_rejected_total",
            "Connections refused: the most were open already.", h->rejected_connections);
    counter(f, "bmsfleet_http_library_messages_total",
            "Problems libmicrohttpd reported (requests too large, socket errors).",
            h->library_messages);
    gauge(f, "bmsfleet_http_connections", "Connections open.", h->open_connections);
    summary(f, "bmsfleet_http_request_duration_seconds",
            "Time spent building the answers (this one not counted yet).", h->request_ns_total,
            h->requests_timed);
}

unsigned http_metrics(struct http *h, FILE *f)
{
    char why[512];
    int readable = http_read_state(h, why, sizeof why) == 0;
    gauge(f, "bmsfleet_history_readable", "1 when the server could read the history.", readable);
    if (readable) {
        pack_metrics(h, f);
        bank_metrics(h, f);
    }
    poll_metrics(h, f);
    daemon_metrics(h, f);
    http_self_metrics(h, f);
    return 200;
}
