/* energy: trapezoidal integration of power, split into charge and discharge. */
#include "energy.h"

#define MW_MS_PER_MWH 3600000.0

void energy_step(struct energy_state *e, int64_t ts_ms, double power_mw, int64_t max_gap_ms,
                 double *d_charge, double *d_discharge)
{
    energy_step_mono(e, ts_ms, 0, power_mw, max_gap_ms, d_charge, d_discharge);
}

int energy_step_mono(struct energy_state *e, int64_t ts_ms, int64_t mono_ms, double power_mw,
                     int64_t max_gap_ms, double *d_charge, double *d_discharge)
{
    double charge = 0, discharge = 0;
    /* the monotonic clock when both points have it: the wall clock may have jumped between */
    int64_t step = mono_ms > 0 && e->last_mono > 0 ? mono_ms - e->last_mono : ts_ms - e->last_ts;
    int integrated = e->have && step > 0 && step <= max_gap_ms;
    if (integrated) {
        double dt = (double)step;
        double p1 = e->last_power_mw, p2 = power_mw;
        if (p1 * p2 >= 0) { /* same side of zero (0 W belongs to either) */
            double area = (p1 + p2) / 2 * dt;
            if (area >= 0)
                charge = area;
            else
                discharge = -area;
        } else {
            /* the current crossed zero at t0: a triangle on each side */
            double t0 = dt * p1 / (p1 - p2);
            double a1 = p1 * t0 / 2, a2 = p2 * (dt - t0) / 2;
            charge = a1 > 0 ? a1 : a2;
            discharge = a1 > 0 ? -a2 : -a1;
        }
        charge /= MW_MS_PER_MWH;
        discharge /= MW_MS_PER_MWH;
    }
    e->charged_mwh += charge;
    e->discharged_mwh += discharge;
    /* a clock that went backwards restarts the integration from this point */
    e->have = 1;
    e->last_ts = ts_ms;
    e->last_mono = mono_ms;
    e->last_power_mw = power_mw;
    if (d_charge)
        *d_charge = charge;
    if (d_discharge)
        *d_discharge = discharge;
    return integrated;
}
