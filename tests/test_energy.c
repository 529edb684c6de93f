/* test_energy: trapezoidal integration of power into charged and discharged energy (pure code):
 * constant charge and discharge, a ramp through zero, gaps, a clock that goes backwards, and
 * durations from the monotonic clock while the wall clock jumps. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "asserts.h"
#include "energy.h"

/* Units: power in mW, time in ms, energy in mWh. 1 W for 1 h = 1000 mWh; 1 W·s = 1/3.6 mWh. */
#define HOUR_MS       3600000LL
#define WS_TO_MWH(ws) ((ws) / 3.6)

static const int64_t max_gap = 300000; /* 300 s */

/* Feeds (t, p) points; returns nothing, the totals are in e. */
static void feed(struct energy_state *e, const int64_t *ts, const double *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        energy_step(e, ts[i], p[i], max_gap, NULL, NULL);
}

static void test_first_point(void **state)
{
    (void)state;
    struct energy_state e;
    memset(&e, 0, sizeof e);
    double c = -1, d = -1;
    energy_step(&e, 1000, 5e5, max_gap, &c, &d);
    assert_near(c, 0, 0);
    assert_near(d, 0, 0);
    assert_near(e.charged_mwh, 0, 0);
    assert_near(e.discharged_mwh, 0, 0);
    assert_int_equal(e.have, 1);
    assert_int_equal(e.last_ts, 1000);
    assert_near(e.last_power_mw, 5e5, 0);

    /* the increments are optional */
    energy_step(&e, 31000, 5e5, max_gap, NULL, NULL);
    assert_near(e.charged_mwh, WS_TO_MWH(500.0 * 30), 1e-9);
}

/* 1000 W for 1 h in 30 s steps: 1000 Wh charged, nothing discharged. */
static void test_constant_charge(void **state)
{
    (void)state;
    struct energy_state e;
    memset(&e, 0, sizeof e);
    double sum_c = 0, sum_d = 0;
    for (int64_t t = 0; t <= HOUR_MS; t += 30000) {
        double c, d;
        energy_step(&e, 1767225600000LL + t, 1e6, max_gap, &c, &d);
        if (t > 0)
            assert_near(c, 1e6 * 30 / 3600, 1e-9); /* 8333.33 mWh per step */
        assert_near(d, 0, 0);
        sum_c += c;
        sum_d += d;
    }
    assert_near(e.charged_mwh, 1e6, 1e-6);
    assert_near(e.discharged_mwh, 0, 0);
    assert_near(sum_c, e.charged_mwh, 1e-6);
    assert_near(sum_d, 0, 0);
    assert_int_equal(e.last_ts, 1767225600000LL + HOUR_MS);
}

/* −500 W for 1 h: 500 Wh discharged, nothing charged. */
static void test_constant_discharge(void **state)
{
    (void)state;
    struct energy_state e;
    memset(&e, 0, sizeof e);
    for (int64_t t = 0; t <= HOUR_MS; t += 30000) {
        double c, d;
        energy_step(&e, t, -5e5, max_gap, &c, &d);
        assert_near(c, 0, 0);
        assert_true(d >= 0);
    }
    assert_near(e.charged_mwh, 0, 0);
    assert_near(e.discharged_mwh, 5e5, 1e-6);
}

/* A linear ramp from +100 W to −100 W over 200 s (40 s steps, zero crossed mid-step at 100 s):
 * two equal triangles of 100 W × 100 s / 2 = 5000 W·s each. Then back up: the same again. */
static void test_ramp_zero_crossing(void **state)
{
    (void)state;
    const double tri = WS_TO_MWH(100.0 * 100 / 2); /* 1388.888… mWh */
    struct energy_state e;
    memset(&e, 0, sizeof e);
    int64_t ts[6];
    double p[6];
    for (int i = 0; i < 6; i++) {
        ts[i] = 40000LL * i;
        p[i] = 1e5 - 4e4 * i; /* 100, 60, 20, −20, −60, −100 W */
    }
    feed(&e, ts, p, 6);
    assert_near(e.charged_mwh, tri, 1e-9);
    assert_near(e.discharged_mwh, tri, 1e-9);

    /* −100 W → +100 W */
    memset(&e, 0, sizeof e);
    for (int i = 0; i < 6; i++)
        p[i] = -p[i];
    feed(&e, ts, p, 6);
    assert_near(e.charged_mwh, tri, 1e-9);
    assert_near(e.discharged_mwh, tri, 1e-9);

    /* one asymmetric step: +300 W → −100 W over 40 s crosses zero at 30 s:
     * 300 × 30 / 2 = 4500 W·s charged, 100 × 10 / 2 = 500 W·s discharged */
    memset(&e, 0, sizeof e);
    double c, d;
    energy_step(&e, 0, 3e5, max_gap, NULL, NULL);
    energy_step(&e, 40000, -1e5, max_gap, &c, &d);
    assert_near(c, WS_TO_MWH(4500.0), 1e-9);
    assert_near(d, WS_TO_MWH(500.0), 1e-9);
    /* and back: −100 W → +300 W crosses at 10 s */
    energy_step(&e, 80000, 3e5, max_gap, &c, &d);
    assert_near(c, WS_TO_MWH(4500.0), 1e-9);
    assert_near(d, WS_TO_MWH(500.0), 1e-9);
    assert_near(e.charged_mwh, WS_TO_MWH(9000.0), 1e-9);
    assert_near(e.discharged_mwh, WS_TO_MWH(1000.0), 1e-9);
}

/* Steps that start or end at exactly 0 W (an idle pack: 0 mA) are one triangle. */
static void test_from_and_to_zero(void **state)
{
    (void)state;
    const double tri = WS_TO_MWH(100.0 * 30 / 2); /* 416.67 mWh */
    struct energy_state e;
    double c, d;

    memset(&e, 0, sizeof e); /* +100 W → 0 */
    energy_step(&e, 0, 1e5, max_gap, NULL, NULL);
    energy_step(&e, 30000, 0, max_gap, &c, &d);
    assert_near(c, tri, 1e-9);
    assert_near(d, 0, 0);

    memset(&e, 0, sizeof e); /* 0 → +100 W */
    energy_step(&e, 0, 0, max_gap, NULL, NULL);
    energy_step(&e, 30000, 1e5, max_gap, &c, &d);
    assert_near(c, tri, 1e-9);
    assert_near(d, 0, 0);

    memset(&e, 0, sizeof e); /* −100 W → 0 */
    energy_step(&e, 0, -1e5, max_gap, NULL, NULL);
    energy_step(&e, 30000, 0, max_gap, &c, &d);
    assert_near(c, 0, 0);
    assert_near(d, tri, 1e-9);

    memset(&e, 0, sizeof e); /* 0 → 0 */
    energy_step(&e, 0, 0, max_gap, NULL, NULL);
    energy_step(&e, 30000, 0, max_gap, &c, &d);
    assert_near(c, 0, 0);
    assert_near(d, 0, 0);
}

/* 0 W → −100 W over 30 s should be 1500 W·s discharged and nothing charged. */
static void test_zero_to_discharge(void **state)
{
    (void)state;
    const double tri = WS_TO_MWH(100.0 * 30 / 2);
    struct energy_state e;
    double c, d;
    memset(&e, 0, sizeof e);
    energy_step(&e, 0, 0, max_gap, NULL, NULL);
    energy_step(&e, 30000, -1e5, max_gap, &c, &d);
    /* Regression test, fixed: src/energy.c takes the zero-crossing branch for p1 = 0 (0 >= 0) and p2 < 0, where
     * t0 = 0, a1 = 0, a2 = p2·dt/2 < 0, then `charge = a1 > 0 ? a1 : a2` gives charge = −416.67
     * mWh (negative, against the header's "both >= 0") and discharge = −a1 = 0. An idle pack
     * that starts discharging loses that step's discharge and subtracts it from "charged".
     * Fixed: the crossing branch needs p1 · p2 < 0. */
    assert_near(c, 0, 0);
    assert_near(d, tri, 1e-9);
    assert_near(e.charged_mwh, 0, 0);
    assert_near(e.discharged_mwh, tri, 1e-9);
}

/* A gap longer than the limit is not integrated; the steps after it are. A gap of exactly
 * the limit still is. */
static void test_gap(void **state)
{
    (void)state;
    const double step30 = WS_TO_MWH(1000.0 * 30); /* 1 kW for 30 s */
    struct energy_state e;
    memset(&e, 0, sizeof e);
    double c, d;
    energy_step(&e, 0, 1e6, max_gap, &c, &d);
    energy_step(&e, 30000, 1e6, max_gap, &c, &d);
    assert_near(c, step30, 1e-9);
    energy_step(&e, 30000 + max_gap + 1, 1e6, max_gap, &c, &d); /* 300.001 s: skipped */
    assert_near(c, 0, 0);
    assert_near(d, 0, 0);
    assert_near(e.charged_mwh, step30, 1e-9);
    assert_int_equal(e.last_ts, 30000 + max_gap + 1);
    energy_step(&e, 60000 + max_gap + 1, 1e6, max_gap, &c, &d); /* integration goes on */
    assert_near(c, step30, 1e-9);
    assert_near(e.charged_mwh, 2 * step30, 1e-9);

    /* exactly the limit: integrated */
    energy_step(&e, 60000 + 2 * max_gap + 1, -1e6, max_gap, &c, &d);
    /* +1 kW → −1 kW over 300 s: two triangles of 150 s */
    assert_near(c, WS_TO_MWH(1000.0 * 150 / 2), 1e-9);
    assert_near(d, WS_TO_MWH(1000.0 * 150 / 2), 1e-9);
}

/* A clock that goes backwards: that step is not integrated, integration restarts from the
 * new point. The same timestamp twice integrates nothing. */
static void test_clock_backwards(void **state)
{
    (void)state;
    const double step30 = WS_TO_MWH(1000.0 * 30);
    struct energy_state e;
    memset(&e, 0, sizeof e);
    double c, d;
    energy_step(&e, 1000000, 1e6, max_gap, &c, &d);
    energy_step(&e, 1030000, 1e6, max_gap, &c, &d);
    assert_near(c, step30, 1e-9);
    energy_step(&e, 500000, 1e6, max_gap, &c, &d); /* 530 s back */
    assert_near(c, 0, 0);
    assert_near(d, 0, 0);
    assert_int_equal(e.last_ts, 500000);
    energy_step(&e, 530000, 1e6, max_gap, &c, &d); /* from the new point */
    assert_near(c, step30, 1e-9);
    energy_step(&e, 530000, 1e6, max_gap, &c, &d); /* same time again */
    assert_near(c, 0, 0);
    assert_near(d, 0, 0);
    assert_near(e.charged_mwh, 2 * step30, 1e-9);
    assert_near(e.discharged_mwh, 0, 0);
}

/* With the monotonic clock, the wall clock may jump either way between two points: the step
 * is the monotonic one, integrated. A point without it (after a restart) falls back to the
 * wall clock, and a monotonic step longer than the limit is a gap. */
static void test_monotonic_durations(void **state)
{
    (void)state;
    const double step30 = WS_TO_MWH(1000.0 * 30);
    struct energy_state e;
    memset(&e, 0, sizeof e);
    double c, d;
    assert_int_equal(energy_step_mono(&e, 1000000, 5000, 1e6, max_gap, &c, &d), 0);
    /* the wall clock back 1 h, 30 s passed */
    assert_int_equal(energy_step_mono(&e, 1030000 - HOUR_MS, 35000, 1e6, max_gap, &c, &d), 1);
    assert_near(c, step30, 1e-9);
    /* forward 1 day */
    assert_int_equal(energy_step_mono(&e, 1060000 + 24 * HOUR_MS, 65000, 1e6, max_gap, &c, &d),
                     1);
    assert_near(c, step30, 1e-9);
    assert_int_equal(e.last_mono, 65000);
    /* a restart: no monotonic time, the wall clock's step (30 s) counts */
    assert_int_equal(energy_step_mono(&e, 1090000 + 24 * HOUR_MS, 0, 1e6, max_gap, &c, &d), 1);
    assert_near(c, step30, 1e-9);
    /* the next point has one again, the previous did not: the wall clock again */
    assert_int_equal(energy_step_mono(&e, 1120000 + 24 * HOUR_MS, 900, -1e6, max_gap, &c, &d),
                     1);
    assert_near(c + d, step30 / 2, 1e-9); /* +1 kW to -1 kW: two triangles of 15 s */
    /* a monotonic gap over the limit, whatever the wall clock says */
    assert_int_equal(
        energy_step_mono(&e, 1150000 + 24 * HOUR_MS, 900 + max_gap + 1, 1e6, max_gap, &c, &d),
        0);
    assert_near(c, 0, 0);
    assert_near(d, 0, 0);
    assert_near(e.charged_mwh, 3 * step30 + step30 / 4, 1e-9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_point),
        cmocka_unit_test(test_constant_charge),
        cmocka_unit_test(test_constant_discharge),
        cmocka_unit_test(test_ramp_zero_crossing),
        cmocka_unit_test(test_from_and_to_zero),
        cmocka_unit_test(test_zero_to_discharge),
        cmocka_unit_test(test_gap),
        cmocka_unit_test(test_clock_backwards),
        cmocka_unit_test(test_monotonic_durations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
