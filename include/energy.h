/* energy: integration of power over time into charged and discharged energy (pure).
 *
 * Trapezoidal rule between consecutive samples, split at the zero crossing when the current
 * changes direction, so charge and discharge are counted separately. A gap longer than the
 * limit (or a clock that went backwards) is not integrated: the next sample starts anew.
 * Durations come from the monotonic clock when both points have it (energy_step_mono), so a
 * wall clock that jumps (a box without RTC that NTP sets) neither loses a step nor makes one
 * negative; from the wall clock otherwise (the first point after a restart). */
#ifndef BMSFLEET_ENERGY_H
#define BMSFLEET_ENERGY_H

#include <stdint.h>

struct energy_state {
    int have;             /* a previous point exists */
    int64_t last_ts;      /* ms, wall clock */
    int64_t last_mono;    /* ms, monotonic clock of the same point; 0 = unknown (a restart) */
    double last_power_mw; /* + charging */
    double charged_mwh, discharged_mwh;
};

/* Adds the point (ts_ms, power_mw); the increments are also returned through d_charge and
 * d_discharge (both >= 0, may be NULL). */
void energy_step(struct energy_state *e, int64_t ts_ms, double power_mw, int64_t max_gap_ms,
                 double *d_charge, double *d_discharge);
/* The same with the point's monotonic time too (mono_ms > 0; 0: unknown). Returns 1 when the
 * step ending at this point was integrated, 0 when the point starts anew. */
int energy_step_mono(struct energy_state *e, int64_t ts_ms, int64_t mono_ms, double power_mw,
                     int64_t max_gap_ms, double *d_charge, double *d_discharge);

#endif
