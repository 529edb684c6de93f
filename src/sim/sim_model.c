/* sim_model: a LiFePO4 pack that drifts plausibly over model time, reproducible from a seed.
 *
 * Pure: no I/O, no clock. The state advances in fixed 1 s steps, so the pack at time t depends
 * only on (seed, address, floor(t)) and not on how often it was stepped. Noise that must not
 * advance the RNG (cell readings in the const sampler) is a hash of the RNG state. */
#include "sim.h"

#include <math.h>
#include <string.h>

#define STEP_S            1.0     /* model step */
#define MAX_CATCHUP_S     604800  /* beyond a week of backlog, skip ahead instead of stepping */
#define CYCLE_PERIOD_S    1200.0  /* charge/discharge pattern, "a day" in 20 model minutes */
#define SWELL_PERIOD_S    43200.0 /* slow drift of the charge/discharge balance ("weather") */
#define SWELL             0.6     /* how far the swell moves the charge/discharge boundary */
#define SOC_MIN           0.05
#define SOC_MAX           1.0
#define IR_MOHM           1.0 /* cell internal resistance */
#define AMBIENT_MEAN_C    22.5
#define BALANCE_WINDOW_MV 3.0 /* cells this close to the highest offset bleed when balancing */

static const double two_pi = 6.283185307179586;

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* xorshift64*: the state must never be zero. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [0, 1). */
static double rng_u01(uint64_t *state)
{
    return (double)(rng_next(state) >> 11) * 0x1.0p-53;
}

static double rng_range(uint64_t *state, double lo, double hi)
{
    return lo + (hi - lo) * rng_u01(state);
}

static double clampd(double v, double lo, double hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* Open-circuit voltage of a LiFePO4 cell against state of charge (piecewise linear). */
static double ocv_v(double soc)
{
    static const struct {
        double soc, v;
    } curve[] = {
        {0.00, 2.80}, {0.05, 3.00}, {0.10, 3.10}, {0.20, 3.20}, {0.30, 3.29},
        {0.80, 3.31}, {0.90, 3.33}, {0.95, 3.35}, {0.99, 3.40}, {1.00, 3.45},
    };
    size_t n = sizeof curve / sizeof curve[0];
    if (soc <= curve[0].soc)
        return curve[0].v;
    for (size_t i = 1; i < n; i++) {
        if (soc <= curve[i].soc) {
            double f = (soc - curve[i - 1].soc) / (curve[i].soc - curve[i - 1].soc);
            return curve[i - 1].v + f * (curve[i].v - curve[i - 1].v);
        }
    }
    return curve[n - 1].v;
}

/* The bank's current demand in A for a 100 Ah pack: charging 10..30 A on the upper part of a
 * sine, discharging 8..31 A on the rest. A slower swell moves the boundary, so some hours charge
 * more than they discharge and SOC wanders over tens of percent, sometimes up to full. */
static double demand_a(double t)
{
    double s = sin(two_pi * t / CYCLE_PERIOD_S);
    double b = SWELL * sin(two_pi * t / SWELL_PERIOD_S); /* charging while s >= -b */
    if (s >= -b)
        return 10.0 + 20.0 * (s + b) / (1.0 + b);
    return -(8.0 + 23.0 * (-b - s) / (1.0 - b));
}

void sim_pack_init(struct sim_pack *p, uint64_t seed, uint8_t address, int ncells)
{
    memset(p, 0, sizeof *p);
    p->address = address;
    p->rng = splitmix64(seed ^ splitmix64(0xB5F1EE7ull + address));
    if (p->rng == 0)
        p->rng = 0x9E3779B97F4A7C15ull;
    if (ncells < 1)
        ncells = 1;
    if (ncells > SAMPLE_MAX_CELLS)
        ncells = SAMPLE_MAX_CELLS;
    p->ncells = ncells;

    p->design_ah = 100.0;
    p->capacity_ah = p->design_ah * rng_range(&p->rng, 0.97, 1.03);
    p->soc = rng_range(&p->rng, 0.40, 0.90);
    double spread_mv = rng_range(&p->rng, 5.0, 20.0);
    for (int i = 0; i < ncells; i++)
        p->cell_offset_mv[i] = rng_range(&p->rng, -0.5, 0.5) * spread_mv;
    double ambient = rng_range(&p->rng, 20.0, 25.0);
    for (int i = 0; i < 4; i++)
        p->temp_c[i] = ambient + 0.5 + rng_range(&p->rng, 0.0, 1.0);
    p->temp_c[4] = ambient + rng_range(&p->rng, 1.5, 3.0); /* MOS */
    p->temp_c[5] = ambient;
    p->cycles = (int)lround(rng_range(&p->rng, 20.0, 300.0));
    p->cycle_ah = rng_range(&p->rng, 0.0, p->capacity_ah);
    /* so that a frozen simulator (time never advances) still shows a working pack */
    p->current_a = demand_a(0.0) * p->capacity_ah / p->design_ah;
    p->t = 0;
    p->balancing = 0;
}

static void step_once(struct sim_pack *p)
{
    double demand = demand_a(p->t) * p->capacity_ah / p->design_ah;
    double i = demand + rng_range(&p->rng, -0.5, 0.5);
    if ((p->soc >= SOC_MAX && i > 0) || (p->soc <= SOC_MIN && i < 0))
        i = 0; /* full: the charger stops; empty: the BMS cuts the load */
    p->current_a = i;
    p->soc = clampd(p->soc + i * STEP_S / 3600.0 / p->capacity_ah, SOC_MIN, SOC_MAX);

    if (p->soc >= SOC_MAX && demand > 0)
        p->balancing = 1;
    else if (demand < 0 || p->soc < 0.98)
        p->balancing = 0;

    if (i < 0) {
        p->cycle_ah += -i * STEP_S / 3600.0;
        while (p->cycle_ah >= p->capacity_ah) {
            p->cycle_ah -= p->capacity_ah;
            p->cycles++;
        }
    }

    /* ambient: a slow random walk around the room temperature */
    double amb = p->temp_c[5];
    amb += (AMBIENT_MEAN_C - amb) * STEP_S / 7200.0 + rng_range(&p->rng, -0.02, 0.02);
    p->temp_c[5] = amb;
    double ai = fabs(i);
    for (int k = 0; k < 4; k++) {
        double target = amb + 0.5 + 0.08 * ai + 0.2 * k;
        p->temp_c[k] += (target - p->temp_c[k]) * STEP_S / 600.0 + rng_range(&p->rng, -0.02, 0.02);
    }
    double mos_target = amb + 1.5 + 0.15 * ai;
    p->temp_c[4] += (mos_target - p->temp_c[4]) * STEP_S / 300.0 + rng_range(&p->rng, -0.02, 0.02);
}

void sim_pack_step(struct sim_pack *p, double t)
{
    if (!(t > p->t)) /* also rejects NaN */
        return;
    if (t - p->t > MAX_CATCHUP_S)
        p->t = floor(t - MAX_CATCHUP_S);
    while (p->t + STEP_S <= t) {
        step_once(p);
        p->t += STEP_S;
    }
}

/* Reading noise of one cell: -1, 0 or +1 mV, a function of the RNG state (no RNG advance). */
static double cell_noise_mv(const struct sim_pack *p, int cell)
{
    uint64_t h = splitmix64(p->rng + (uint64_t)(unsigned)cell * 0x9E3779B97F4A7C15ull);
    return (double)(h % 3) - 1.0;
}

static int32_t round_i32(double v)
{
    return (int32_t)lround(v);
}

/* num/den in 0.01 %, rounded, at most 100 % (a BMS never reports more). */
static int32_t ratio_cpct(int32_t num, int32_t den)
{
    if (den <= 0 || num < 0)
        return SAMPLE_ABSENT;
    int64_t r = ((int64_t)num * 10000 + den / 2) / den;
    return (int32_t)(r > 10000 ? 10000 : r);
}

void sim_pack_sample(const struct sim_pack *p, struct sample *out)
{
    sample_init(out);
    out->address = p->address;

    int n = p->ncells < SAMPLE_MAX_CELLS ? p->ncells : SAMPLE_MAX_CELLS;
    double ocv_mv = ocv_v(p->soc) * 1000.0;
    double max_offset = -1e9;
    int32_t sum = 0;
    for (int i = 0; i < n; i++) {
        double mv = ocv_mv + p->current_a * IR_MOHM + p->cell_offset_mv[i] + cell_noise_mv(p, i);
        out->cell_mv[i] = round_i32(mv);
        sum += out->cell_mv[i];
        if (p->cell_offset_mv[i] > max_offset)
            max_offset = p->cell_offset_mv[i];
    }
    out->ncells = (uint8_t)n;
    out->voltage_mv = sum;

    /* a BMS reports current and capacities in 10 mA / 10 mAh */
    out->current_ma = round_i32(p->current_a * 100.0) * 10;
    out->full_mah = round_i32(p->capacity_ah * 100.0) * 10;
    out->design_mah = round_i32(p->design_ah * 100.0) * 10;
    out->remaining_mah = round_i32(p->soc * p->capacity_ah * 100.0) * 10;
    /* as a BMS computes them, so that variants which derive SOC/SOH agree exactly */
    out->soc_cpct = ratio_cpct(out->remaining_mah, out->full_mah);
    out->soh_cpct = ratio_cpct(out->full_mah, out->design_mah);
    out->cycles = p->cycles;

    static const uint8_t roles[6] = {SAMPLE_TEMP_CELL, SAMPLE_TEMP_CELL, SAMPLE_TEMP_CELL,
                                     SAMPLE_TEMP_CELL, SAMPLE_TEMP_MOS,  SAMPLE_TEMP_AMBIENT};
    for (int k = 0; k < 6; k++) {
        out->temp_dc[k] = round_i32(p->temp_c[k] * 10.0);
        out->temp_role[k] = roles[k];
    }
    out->ntemps = 6;

    out->state = SAMPLE_STATE_CHG_FET | SAMPLE_STATE_DSG_FET;
    if (out->current_ma > 0)
        out->state |= SAMPLE_STATE_CHARGING;
    else if (out->current_ma < 0)
        out->state |= SAMPLE_STATE_DISCHARGING;

    uint32_t bal = 0;
    if (p->balancing) {
        for (int i = 0; i < n; i++)
            if (p->cell_offset_mv[i] >= max_offset - BALANCE_WINDOW_MV)
                bal |= 1u << i;
    }
    out->balancing = bal;

    out->has = SAMPLE_HAS_ANALOG | SAMPLE_HAS_ALARMS | SAMPLE_HAS_BALANCE;
    sample_finish(out);
}
