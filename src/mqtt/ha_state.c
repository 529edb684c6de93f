/* ha_state: the JSON state payloads Home Assistant's templates read: a pack's (the sample as
 * report.c renders it, plus energy, last seen and counters) and a bank's aggregates. Pure. */
#include "ha.h"
#include "ha_internal.h"

#include <math.h>
#include <stdio.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "report.h"

/* v rounded to dec decimals (JSON numbers keep what the unit needs, no float noise) */
static double rnd(double v, int dec)
{
    double p = pow(10.0, dec);
    return round(v * p) / p;
}

static char *print_free(cJSON *o, int err)
{
    char *text = err ? NULL : cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

char *ha_pack_state(const struct sample *s, const char *protocol, const struct ha_pack_extra *x)
{
    cJSON *o = report_sample_json(s, protocol, x ? x->ts_ms : 0);
    int err = o == NULL;
    if (o && x) {
        if (!isnan(x->charged_kwh))
            ha_put_num(o, "charged_kwh", rnd(x->charged_kwh, 3), &err);
        if (!isnan(x->discharged_kwh))
            ha_put_num(o, "discharged_kwh", rnd(x->discharged_kwh, 3), &err);
        if (x->ts_ms > 0) {
            time_t t = (time_t)(x->ts_ms / 1000);
            struct tm tm;
            char iso[40];
            if (gmtime_r(&t, &tm) && strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%S+00:00", &tm))
                ha_put_str(o, "last_seen", iso, &err);
        }
        ha_put_num(o, "polls", (double)x->polls, &err);
        ha_put_num(o, "timeouts", (double)x->timeouts, &err);
        ha_put_num(o, "checksum_errors", (double)x->checksum_errors, &err);
        ha_put_num(o, "malformed", (double)x->malformed, &err);
    }
    return print_free(o, err);
}

static void put_fixed(cJSON *o, const char *key, int32_t v, double div, int dec, int *err)
{
    if (v != SAMPLE_ABSENT)
        ha_put_num(o, key, rnd(v / div, dec), err);
}

static void put_cell_pack(cJSON *o, const char *key, const char *pack, int idx, int32_t mv,
                          int *err)
{
    char buf[CONFIG_ID_LEN + 16];
    if (pack == NULL || mv == SAMPLE_ABSENT)
        return;
    snprintf(buf, sizeof buf, "%s #%d", pack, idx);
    ha_put_str(o, key, buf, err);
}

char *ha_storage_state(const struct ha_storage *st)
{
    cJSON *o = cJSON_CreateObject();
    int err = o == NULL;
    ha_put_str(o, "state", st->failing ? "failing" : "ok", &err);
    ha_put_str(o, "error", st->error ? st->error : "", &err);
    ha_put_num(o, "waiting", (double)st->waiting, &err);
    ha_put_num(o, "dropped", (double)st->dropped, &err);
    return print_free(o, err);
}

char *ha_bank_state(const struct bank_state *b)
{
    cJSON *o = cJSON_CreateObject();
    int err = o == NULL;
    char online[32];
    snprintf(online, sizeof online, "%u/%u", b->packs_online, b->packs_total);
    ha_put_str(o, "packs_online", online, &err);
    put_fixed(o, "soc", b->soc_cpct, 100.0, 2, &err);
    put_fixed(o, "soc_min", b->soc_min_cpct, 100.0, 2, &err);
    put_fixed(o, "soc_max", b->soc_max_cpct, 100.0, 2, &err);
    if (b->soc_min_cpct != SAMPLE_ABSENT &&
        !cJSON_AddBoolToObject(o, "soc_diverged", b->soc_diverged))
        err = 1;
    if (b->current_ma != INT64_MIN)
        ha_put_num(o, "current", rnd((double)b->current_ma / 1000.0, 3), &err);
    if (!isnan(b->power_w))
        ha_put_num(o, "power", rnd(b->power_w, 1), &err);
    if (b->remaining_mah >= 0)
        ha_put_num(o, "remaining_ah", rnd((double)b->remaining_mah / 1000.0, 3), &err);
    if (b->full_mah >= 0)
        ha_put_num(o, "full_ah", rnd((double)b->full_mah / 1000.0, 3), &err);
    put_fixed(o, "cell_min", b->cell_min_mv, 1000.0, 3, &err);
    put_cell_pack(o, "cell_min_pack", b->cell_min_pack, b->cell_min_idx, b->cell_min_mv, &err);
    put_fixed(o, "cell_max", b->cell_max_mv, 1000.0, 3, &err);
    put_cell_pack(o, "cell_max_pack", b->cell_max_pack, b->cell_max_idx, b->cell_max_mv, &err);
    put_fixed(o, "cell_spread", b->cell_spread_mv, 1.0, 0, &err);
    put_fixed(o, "temp_max", b->temp_max_dc, 10.0, 1, &err);
    if (!isnan(b->charged_kwh))
        ha_put_num(o, "charged_kwh", rnd(b->charged_kwh, 3), &err);
    if (!isnan(b->discharged_kwh))
        ha_put_num(o, "discharged_kwh", rnd(b->discharged_kwh, 3), &err);
    return print_free(o, err);
}

