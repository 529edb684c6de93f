/* ha_state: the JSON state payloads Home Assistant's templates read: a pack's (the sample as
 * report.c renders it, plus energy, last seen and counters) and a bank's aggregates. Pure.
 * Written for every sample, so straight into the caller's buffer (jsonw.h): no allocation, no
 * float formatting. */
#include "ha.h"
#include "ha_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "jsonw.h"
#include "report.h"

/* energy in kWh to the Wh (3 decimals), left out when unknown */
static void put_kwh(struct jsonw *w, const char *key, double kwh)
{
    if (isnan(kwh))
        return;
    jsonw_key(w, key);
    jsonw_round(w, kwh, 3);
}

static void put_count(struct jsonw *w, const char *key, unsigned long long v)
{
    jsonw_key(w, key);
    jsonw_int(w, v > INT64_MAX ? INT64_MAX : (int64_t)v);
}

static void put_last_seen(struct jsonw *w, long long ts_ms)
{
    time_t t = (time_t)(ts_ms / 1000);
    struct tm tm;
    char iso[40];
    if (gmtime_r(&t, &tm) && strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%S+00:00", &tm)) {
        jsonw_key(w, "last_seen");
        jsonw_str(w, iso);
    }
}

int ha_pack_state(char *buf, size_t cap, const struct sample *s, const char *protocol,
                  const struct ha_pack_extra *x)
{
    struct jsonw w;
    jsonw_init(&w, buf, cap);
    jsonw_open(&w, '{');
    report_sample_json_members(&w, s, protocol, x ? x->ts_ms : 0, 0);
    if (x) {
        put_kwh(&w, "charged_kwh", x->charged_kwh);
        put_kwh(&w, "discharged_kwh", x->discharged_kwh);
        if (x->ts_ms > 0)
            put_last_seen(&w, x->ts_ms);
        put_count(&w, "polls", x->polls);
        put_count(&w, "timeouts", x->timeouts);
        put_count(&w, "checksum_errors", x->checksum_errors);
        put_count(&w, "malformed", x->malformed);
    }
    jsonw_close(&w, '}');
    return jsonw_end(&w);
}

static void put_milli(struct jsonw *w, const char *key, int64_t v)
{
    jsonw_key(w, key);
    jsonw_fixed(w, v, 3);
}

/* v in units of 10^-dec, left out when absent */
static void put_fixed(struct jsonw *w, const char *key, int32_t v, unsigned dec)
{
    if (v == SAMPLE_ABSENT)
        return;
    jsonw_key(w, key);
    jsonw_fixed(w, v, dec);
}

static void put_cell_pack(struct jsonw *w, const char *key, const char *pack, int idx, int32_t mv)
{
    char text[CONFIG_ID_LEN + 16];
    if (pack == NULL || mv == SAMPLE_ABSENT)
        return;
    snprintf(text, sizeof text, "%s #%d", pack, idx);
    jsonw_key(w, key);
    jsonw_str(w, text);
}

/* Not per sample (at most every few seconds), so it is allocated: the caller frees. */
char *ha_storage_state(const struct ha_storage *st)
{
    enum { CAP = 2048 }; /* the error (< 256 bytes) escaped at worst 6 bytes a byte, cut */
    char *buf = malloc(CAP);
    if (buf == NULL)
        return NULL;
    struct jsonw w;
    jsonw_init(&w, buf, CAP);
    jsonw_open(&w, '{');
    jsonw_key(&w, "state");
    jsonw_str(&w, st->failing ? "failing" : "ok");
    jsonw_key(&w, "error");
    jsonw_str(&w, st->error ? st->error : "");
    put_count(&w, "waiting", st->waiting);
    put_count(&w, "dropped", st->dropped);
    jsonw_close(&w, '}');
    if (jsonw_end(&w) < 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

int ha_bank_state(char *buf, size_t cap, const struct bank_state *b)
{
    struct jsonw w;
    char online[32];
    jsonw_init(&w, buf, cap);
    jsonw_open(&w, '{');
    snprintf(online, sizeof online, "%u/%u", b->packs_online, b->packs_total);
    jsonw_key(&w, "packs_online");
    jsonw_str(&w, online);
    put_fixed(&w, "soc", b->soc_cpct, 2);
    put_fixed(&w, "soc_min", b->soc_min_cpct, 2);
    put_fixed(&w, "soc_max", b->soc_max_cpct, 2);
    if (b->soc_min_cpct != SAMPLE_ABSENT) {
        jsonw_key(&w, "soc_diverged");
        jsonw_bool(&w, b->soc_diverged);
    }
    if (b->current_ma != INT64_MIN)
        put_milli(&w, "current", b->current_ma);
    if (!isnan(b->power_w)) {
        jsonw_key(&w, "power");
        jsonw_round(&w, b->power_w, 1);
    }
    if (b->remaining_mah >= 0)
        put_milli(&w, "remaining_ah", b->remaining_mah);
    if (b->full_mah >= 0)
        put_milli(&w, "full_ah", b->full_mah);
    put_fixed(&w, "cell_min", b->cell_min_mv, 3);
    put_cell_pack(&w, "cell_min_pack", b->cell_min_pack, b->cell_min_idx, b->cell_min_mv);
    put_fixed(&w, "cell_max", b->cell_max_mv, 3);
    put_cell_pack(&w, "cell_max_pack", b->cell_max_pack, b->cell_max_idx, b->cell_max_mv);
    put_fixed(&w, "cell_spread", b->cell_spread_mv, 0);
    put_fixed(&w, "temp_max", b->temp_max_dc, 1);
    put_kwh(&w, "charged_kwh", b->charged_kwh);
    put_kwh(&w, "discharged_kwh", b->discharged_kwh);
    jsonw_close(&w, '}');
    return jsonw_end(&w);
}
