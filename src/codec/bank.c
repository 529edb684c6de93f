/* bank: the packs of one bank folded into bank-level values (pure: no allocation, no clock).
 *
 * Only packs marked fresh with a sample count, and a value a pack did not send (SAMPLE_ABSENT,
 * NAN) is skipped, never read as 0:
 *   packs_online   = #fresh packs with a sample
 *   soc            = Σ(soc_i × full_i) / Σ full_i over fresh packs reporting SOC and a full
 *                    capacity > 0; when none reports a full capacity, the plain mean of the
 *                    SOCs; rounded to the nearest 0.01 %; absent when no fresh pack has a SOC
 *   soc_min/max    = extremes of the fresh SOCs; soc_diverged = soc_max − soc_min > margin
 *   current        = Σ current_i, power = Σ V_i × I_i (per pack, so packs at different
 *                    voltages add correctly); remaining, full = Σ over the packs reporting them
 *   cell_min/max   = the lowest / highest cell of any fresh pack, with its pack and 1-based
 *                    index (the first pack wins a tie); spread = max − min
 *   temp_max       = the hottest sensor of any fresh pack
 *   charged/discharged kWh = Σ over every pack with a known counter, stale or not: these are
 *                    lifetime totals, and dropping a stale pack would make the bank total fall,
 *                    which Home Assistant reads as a meter reset. */
#include "bank.h"

#include <math.h>

static int present(int32_t v)
{
    return v != SAMPLE_ABSENT;
}

/* a / b rounded half away from zero (b > 0) */
static int32_t div_round(int64_t a, int64_t b)
{
    int64_t q = a >= 0 ? (a + b / 2) / b : -((-a + b / 2) / b);
    return (int32_t)q;
}

static void add_energy(double *sum, double v)
{
    if (isnan(v))
        return;
    *sum = isnan(*sum) ? v : *sum + v;
}

/* The sums behind the bank's SOC: weighted by full capacity, and the plain ones for when no
 * pack reports a full capacity. */
struct soc_sums {
    int64_t x_full, full, sum;
    unsigned n;
};

/* One fresh pack's SOC into the sums and the bank's extremes. */
static void add_soc(struct bank_state *b, struct soc_sums *w, const struct sample *s)
{
    if (!present(s->soc_cpct))
        return;
    w->sum += s->soc_cpct;
    w->n++;
    if (present(s->full_mah) && s->full_mah > 0) {
        w->x_full += (int64_t)s->soc_cpct * s->full_mah;
        w->full += s->full_mah;
    }
    if (!present(b->soc_min_cpct) || s->soc_cpct < b->soc_min_cpct)
        b->soc_min_cpct = s->soc_cpct;
    if (!present(b->soc_max_cpct) || s->soc_cpct > b->soc_max_cpct)
        b->soc_max_cpct = s->soc_cpct;
}

/* One fresh pack's current, power and capacities into the bank's totals. */
static void add_flows(struct bank_state *b, const struct sample *s)
{
    if (present(s->current_ma)) {
        b->current_ma = (b->current_ma == INT64_MIN ? 0 : b->current_ma) + s->current_ma;
        if (present(s->voltage_mv)) {
            double p = (double)s->voltage_mv * (double)s->current_ma / 1e6;
            b->power_w = isnan(b->power_w) ? p : b->power_w + p;
        }
    }
    if (present(s->remaining_mah))
        b->remaining_mah = (b->remaining_mah < 0 ? 0 : b->remaining_mah) + s->remaining_mah;
    if (present(s->full_mah))
        b->full_mah = (b->full_mah < 0 ? 0 : b->full_mah) + s->full_mah;
}

/* One fresh pack's lowest and highest cell and hottest sensor against the bank's (the first
 * pack wins a tie). */
static void add_extremes(struct bank_state *b, const struct sample *s, const char *pack_id)
{
    if (s->ncells > 0 && present(s->cell_min_mv) && present(s->cell_max_mv)) {
        if (!present(b->cell_min_mv) || s->cell_min_mv < b->cell_min_mv) {
            b->cell_min_mv = s->cell_min_mv;
            b->cell_min_pack = pack_id;
            b->cell_min_idx = s->cell_min_idx;
        }
        if (!present(b->cell_max_mv) || s->cell_max_mv > b->cell_max_mv) {
            b->cell_max_mv = s->cell_max_mv;
            b->cell_max_pack = pack_id;
            b->cell_max_idx = s->cell_max_idx;
        }
    }
    for (size_t t = 0; t < s->ntemps && t < SAMPLE_MAX_TEMPS; t++) {
        if (present(s->temp_dc[t]) && (!present(b->temp_max_dc) || s->temp_dc[t] > b->temp_max_dc))
            b->temp_max_dc = s->temp_dc[t];
    }
}

void bank_aggregate(const struct bank_input *in, size_t n, int32_t soc_margin_cpct,
                    struct bank_state *out)
{
    struct bank_state b = {
        .packs_total = (unsigned)n,
        .soc_cpct = SAMPLE_ABSENT,
        .soc_min_cpct = SAMPLE_ABSENT,
        .soc_max_cpct = SAMPLE_ABSENT,
        .current_ma = INT64_MIN,
        .power_w = NAN,
        .remaining_mah = -1,
        .full_mah = -1,
        .cell_min_mv = SAMPLE_ABSENT,
        .cell_max_mv = SAMPLE_ABSENT,
        .cell_spread_mv = SAMPLE_ABSENT,
        .temp_max_dc = SAMPLE_ABSENT,
        .charged_kwh = NAN,
        .discharged_kwh = NAN,
    };
    struct soc_sums w = {0, 0, 0, 0};

    for (size_t i = 0; i < n; i++) {
        add_energy(&b.charged_kwh, in[i].charged_kwh);
        add_energy(&b.discharged_kwh, in[i].discharged_kwh);
        const struct sample *s = in[i].s;
        if (s == NULL || in[i].fresh != 1)
            continue;
        b.packs_online++;
        add_soc(&b, &w, s);
        add_flows(&b, s);
        add_extremes(&b, s, in[i].pack_id);
    }

    if (w.full > 0)
        b.soc_cpct = div_round(w.x_full, w.full);
    else if (w.n > 0)
        b.soc_cpct = div_round(w.sum, w.n);
    if (present(b.soc_min_cpct))
        b.soc_diverged = b.soc_max_cpct - b.soc_min_cpct > soc_margin_cpct;
    if (present(b.cell_min_mv))
        b.cell_spread_mv = b.cell_max_mv - b.cell_min_mv;
    *out = b;
}
