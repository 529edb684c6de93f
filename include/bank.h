/* bank: aggregation of the packs of one bank into bank-level values (pure).
 *
 * Only fresh packs count (the caller says which are fresh: a valid sample within 3 intervals).
 * SOC is weighted by full capacity: Σ(soc_i × full_i) / Σ full_i over the fresh packs that
 * report both; when no fresh pack reports its full capacity, the plain mean of their SOCs.
 * Current, power, remaining and full capacity are sums over fresh packs; the lowest and
 * highest cell are taken over fresh packs, with the pack and cell they belong to. */
#ifndef BMSFLEET_BANK_H
#define BMSFLEET_BANK_H

#include <stddef.h>
#include <stdint.h>

#include "sample.h"

struct bank_input {
    const char *pack_id;
    const struct sample *s; /* the pack's latest sample, or NULL if it never answered */
    int fresh;              /* counts only when 1 */
    double charged_kwh;     /* lifetime energy counters of the pack (NAN when unknown) */
    double discharged_kwh;
};

struct bank_state {
    unsigned packs_total, packs_online;
    int32_t soc_cpct;       /* SAMPLE_ABSENT when no fresh pack reports SOC */
    int32_t soc_min_cpct, soc_max_cpct;
    int soc_diverged;       /* soc_max - soc_min > margin */
    int64_t current_ma;     /* sum over fresh packs that report it; INT64_MIN when none */
    double power_w;         /* sum of V×I of the fresh packs reporting both; NAN when none */
    int64_t remaining_mah, full_mah; /* sums over packs that report them; -1 when none */
    int32_t cell_min_mv, cell_max_mv, cell_spread_mv; /* SAMPLE_ABSENT when no cells */
    const char *cell_min_pack, *cell_max_pack;        /* pack ids (borrowed from the input) */
    int cell_min_idx, cell_max_idx;                   /* 1-based cell in that pack */
    int32_t temp_max_dc;    /* hottest sensor of the bank, SAMPLE_ABSENT when none */
    double charged_kwh, discharged_kwh; /* sums over packs with known counters; NAN if none */
};

/* soc_margin_cpct: the SOC spread (0.01 %) above which soc_diverged is set. */
void bank_aggregate(const struct bank_input *in, size_t n, int32_t soc_margin_cpct,
                    struct bank_state *out);

#endif
