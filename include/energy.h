/* energy: integration of power over time into charged and discharged energy (pure).
 *
 * Trapezoidal rule between consecutive samples, split at the zero crossing when the current
 * changes direction, so charge and discharge are counted separately. A gap longer than the
 * limit (or a clock that went backwards) is not integrated: the next sample starts anew. */
#ifndef BMSFLEET_ENERGY_H
#define BMSFLEET_ENERGY_H

#include <stdint.h>

struct energy_state {
    int have;             /* a previous point exists */
    int64_t last_ts;      /* ms */
    double last_power_mw; /* + charging */
    double charged_mwh, discharged_mwh;
};

/* Adds the point (ts_ms, power_mw); the increments are also returned through d_charge and
 * d_discharge (both >= 0, may be NULL). */
void energy_step(struct energy_state *e, int64_t ts_ms, double power_mw, int64_t max_gap_ms,
                 double *d_charge, double *d_discharge);

#endif
