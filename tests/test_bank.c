/* test_bank: bank aggregation (pure) with hand-computed numbers: capacity-weighted SOC, stale
 * and absent values left out (never read as 0), the lowest / highest cell with its pack, the
 * divergence flag at its margin, energy sums. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bank.h"

/* A pack at soc (0.01 %) with full capacity full_mah, v mV, i mA and its cells (mV). */
static void pack(struct sample *s, int32_t soc, int32_t full, int32_t v, int32_t i,
                 const int32_t *cells, unsigned ncells)
{
    sample_init(s);
    s->has = SAMPLE_HAS_ANALOG;
    s->soc_cpct = soc;
    s->full_mah = full;
    s->remaining_mah = full == SAMPLE_ABSENT || soc == SAMPLE_ABSENT
                           ? SAMPLE_ABSENT
                           : (int32_t)((int64_t)full * soc / 10000);
    s->voltage_mv = v;
    s->current_ma = i;
    s->ncells = (uint8_t)ncells;
    for (unsigned k = 0; k < ncells; k++)
        s->cell_mv[k] = cells[k];
    sample_finish(s);
}

static struct bank_input input(const char *id, const struct sample *s, int fresh)
{
    struct bank_input in = {id, s, fresh, NAN, NAN};
    return in;
}

/* 100 Ah at 80 % and 50 Ah at 20 %: (80×100 + 20×50) / 150 = 60 %. */
static void test_weighted_soc(void **state)
{
    (void)state;
    struct sample a, b;
    pack(&a, 8000, 100000, 53000, 10000, NULL, 0);
    pack(&b, 2000, 50000, 52000, -4000, NULL, 0);
    struct bank_input in[] = {input("pack1", &a, 1), input("pack2", &b, 1)};
    struct bank_state out;
    bank_aggregate(in, 2, 1000, &out);
    assert_int_equal(out.packs_total, 2);
    assert_int_equal(out.packs_online, 2);
    assert_int_equal(out.soc_cpct, 6000);
    assert_int_equal(out.soc_min_cpct, 2000);
    assert_int_equal(out.soc_max_cpct, 8000);
    assert_int_equal(out.soc_diverged, 1); /* 60 % apart, margin 10 % */
    assert_int_equal(out.current_ma, 6000);
    /* 53 V × 10 A + 52 V × −4 A = 530 − 208 = 322 W */
    assert_true(fabs(out.power_w - 322.0) < 1e-9);
    assert_int_equal(out.full_mah, 150000);
    assert_int_equal(out.remaining_mah, 80000 + 10000);
}

/* 3 × 100 Ah at 50, 51, 52 % and 1 × 200 Ah at 90 %: (50+51+52)×100 + 90×200 = 33300 / 500
 * = 66.6 %; rounding: 3 × 280 Ah at 33.33, 33.33, 33.34 → 33.3333… → 33.33 %. */
static void test_weighted_soc_rounding(void **state)
{
    (void)state;
    struct sample s[4];
    pack(&s[0], 5000, 100000, 53000, 0, NULL, 0);
    pack(&s[1], 5100, 100000, 53000, 0, NULL, 0);
    pack(&s[2], 5200, 100000, 53000, 0, NULL, 0);
    pack(&s[3], 9000, 200000, 53000, 0, NULL, 0);
    struct bank_input in[] = {input("a", &s[0], 1), input("b", &s[1], 1), input("c", &s[2], 1),
                              input("d", &s[3], 1)};
    struct bank_state out;
    bank_aggregate(in, 4, 5000, &out);
    assert_int_equal(out.soc_cpct, 6660);
    assert_int_equal(out.soc_diverged, 0);

    pack(&s[0], 3333, 280000, 53000, 0, NULL, 0);
    pack(&s[1], 3333, 280000, 53000, 0, NULL, 0);
    pack(&s[2], 3334, 280000, 53000, 0, NULL, 0);
    bank_aggregate(in, 3, 5000, &out);
    assert_int_equal(out.soc_cpct, 3333);
    /* halves round up: 10.005 % → (1000×1 + 1001×1) / 2 = 1000.5 → 1001 */
    pack(&s[0], 1000, 1000, 53000, 0, NULL, 0);
    pack(&s[1], 1001, 1000, 53000, 0, NULL, 0);
    bank_aggregate(in, 2, 5000, &out);
    assert_int_equal(out.soc_cpct, 1001);
}

/* A stale pack counts nowhere: not online, not in SOC, current, cells; a pack that never
 * answered (s == NULL) neither, even when marked fresh. */
static void test_stale_excluded(void **state)
{
    (void)state;
    const int32_t ca[] = {3300, 3310, 3290}, cb[] = {2900, 3500, 3300};
    struct sample a, b;
    pack(&a, 8000, 100000, 53000, 10000, ca, 3);
    pack(&b, 1000, 100000, 50000, -50000, cb, 3);
    struct bank_input in[] = {input("pack1", &a, 1), input("pack2", &b, 0),
                              input("pack3", NULL, 1)};
    struct bank_state out;
    bank_aggregate(in, 3, 1000, &out);
    assert_int_equal(out.packs_total, 3);
    assert_int_equal(out.packs_online, 1);
    assert_int_equal(out.soc_cpct, 8000);
    assert_int_equal(out.soc_diverged, 0);
    assert_int_equal(out.current_ma, 10000);
    assert_true(fabs(out.power_w - 530.0) < 1e-9);
    assert_int_equal(out.full_mah, 100000);
    assert_int_equal(out.cell_min_mv, 3290);
    assert_string_equal(out.cell_min_pack, "pack1");
    assert_int_equal(out.cell_max_mv, 3310);
    assert_string_equal(out.cell_max_pack, "pack1");
    assert_int_equal(out.cell_spread_mv, 20);

    /* fresh must be exactly 1 */
    in[1].fresh = 2;
    bank_aggregate(in, 3, 1000, &out);
    assert_int_equal(out.packs_online, 1);
}

/* Absent SOC or full capacity: a pack without SOC is left out of the SOC; one without full
 * capacity is left out of the weights; with no full capacity anywhere, the plain mean. */
static void test_absent_soc_full(void **state)
{
    (void)state;
    struct sample a, b, c;
    pack(&a, 8000, 100000, 53000, 0, NULL, 0);
    pack(&b, SAMPLE_ABSENT, 50000, 53000, 0, NULL, 0);
    pack(&c, 2000, SAMPLE_ABSENT, 53000, 0, NULL, 0);
    struct bank_input in[] = {input("a", &a, 1), input("b", &b, 1), input("c", &c, 1)};
    struct bank_state out;
    bank_aggregate(in, 3, 10000, &out);
    assert_int_equal(out.packs_online, 3);
    /* only a reports both: its SOC alone, not (80 + 0 + 20) / … */
    assert_int_equal(out.soc_cpct, 8000);
    assert_int_equal(out.soc_min_cpct, 2000); /* c has a SOC: it counts for divergence */
    assert_int_equal(out.soc_max_cpct, 8000);
    assert_int_equal(out.full_mah, 150000);     /* a and b report it */
    assert_int_equal(out.remaining_mah, 80000); /* only a (b has no SOC, c no full) */

    /* nobody reports full capacity: mean of 80 and 20 */
    pack(&a, 8000, SAMPLE_ABSENT, 53000, 0, NULL, 0);
    bank_aggregate(in, 3, 10000, &out);
    assert_int_equal(out.soc_cpct, 5000);
    assert_int_equal(out.full_mah, 50000);

    /* a full capacity of 0 is no weight (and no division by zero) */
    pack(&a, 8000, 0, 53000, 0, NULL, 0);
    pack(&b, 3000, 0, 53000, 0, NULL, 0);
    bank_aggregate(in, 2, 10000, &out);
    assert_int_equal(out.soc_cpct, 5500);

    /* no SOC and no capacities at all */
    pack(&a, SAMPLE_ABSENT, SAMPLE_ABSENT, SAMPLE_ABSENT, SAMPLE_ABSENT, NULL, 0);
    bank_aggregate(in, 1, 10000, &out);
    assert_int_equal(out.packs_online, 1);
    assert_int_equal(out.soc_cpct, SAMPLE_ABSENT);
    assert_int_equal(out.soc_min_cpct, SAMPLE_ABSENT);
    assert_int_equal(out.soc_max_cpct, SAMPLE_ABSENT);
    assert_int_equal(out.soc_diverged, 0);
    assert_int_equal(out.full_mah, -1);
    assert_int_equal(out.remaining_mah, -1);
    assert_true(out.current_ma == INT64_MIN);
    assert_true(isnan(out.power_w));
    assert_int_equal(out.cell_min_mv, SAMPLE_ABSENT);
    assert_null(out.cell_min_pack);
}

/* Lowest and highest cell over the bank, with pack and 1-based index; a tie goes to the first
 * pack; a pack without cells does not contribute. */
static void test_cells(void **state)
{
    (void)state;
    const int32_t c1[] = {3300, 3305, 3310, 3302},
                  c2[] = {3301, 3299, 3300, 3330, 3303, 3298, 3297}, c3[] = {3330, 3297};
    struct sample a, b, c, d;
    pack(&a, 5000, 100000, 53000, 0, c1, 4);
    pack(&b, 5000, 100000, 53000, 0, c2, 7);
    pack(&c, 5000, 100000, 53000, 0, c3, 2);
    pack(&d, 5000, 100000, 53000, 0, NULL, 0);
    struct bank_input in[] = {input("pack1", &a, 1), input("pack2", &b, 1), input("pack3", &c, 1),
                              input("pack4", &d, 1)};
    struct bank_state out;
    bank_aggregate(in, 4, 1000, &out);
    assert_int_equal(out.cell_min_mv, 3297);
    assert_string_equal(out.cell_min_pack, "pack2");
    assert_int_equal(out.cell_min_idx, 7);
    assert_int_equal(out.cell_max_mv, 3330);
    assert_string_equal(out.cell_max_pack, "pack2");
    assert_int_equal(out.cell_max_idx, 4);
    assert_int_equal(out.cell_spread_mv, 33);
    assert_ptr_equal(out.cell_min_pack, in[1].pack_id); /* borrowed, not copied */
}

/* soc_diverged is set only when max − min exceeds the margin. */
static void test_divergence_margin(void **state)
{
    (void)state;
    struct sample a, b;
    pack(&a, 6000, 100000, 53000, 0, NULL, 0);
    pack(&b, 5000, 100000, 53000, 0, NULL, 0);
    struct bank_input in[] = {input("a", &a, 1), input("b", &b, 1)};
    struct bank_state out;
    bank_aggregate(in, 2, 1000, &out); /* exactly 10.00 %: not above */
    assert_int_equal(out.soc_diverged, 0);
    pack(&b, 4999, 100000, 53000, 0, NULL, 0);
    bank_aggregate(in, 2, 1000, &out); /* 10.01 % */
    assert_int_equal(out.soc_diverged, 1);
    bank_aggregate(in, 2, 1001, &out);
    assert_int_equal(out.soc_diverged, 0);
    /* one pack cannot diverge from itself */
    bank_aggregate(in, 1, 0, &out);
    assert_int_equal(out.soc_diverged, 0);
}

/* All packs stale: SOC absent, online 0, every sum absent; energy still summed. */
static void test_all_stale(void **state)
{
    (void)state;
    const int32_t cells[] = {3300, 3310};
    struct sample a, b;
    pack(&a, 8000, 100000, 53000, 10000, cells, 2);
    pack(&b, 2000, 50000, 52000, -4000, cells, 2);
    struct bank_input in[] = {input("a", &a, 0), input("b", &b, 0)};
    in[0].charged_kwh = 1.5;
    struct bank_state out;
    bank_aggregate(in, 2, 1000, &out);
    assert_int_equal(out.packs_total, 2);
    assert_int_equal(out.packs_online, 0);
    assert_int_equal(out.soc_cpct, SAMPLE_ABSENT);
    assert_int_equal(out.soc_diverged, 0);
    assert_true(out.current_ma == INT64_MIN);
    assert_true(isnan(out.power_w));
    assert_int_equal(out.remaining_mah, -1);
    assert_int_equal(out.full_mah, -1);
    assert_int_equal(out.cell_min_mv, SAMPLE_ABSENT);
    assert_int_equal(out.cell_max_mv, SAMPLE_ABSENT);
    assert_int_equal(out.cell_spread_mv, SAMPLE_ABSENT);
    assert_null(out.cell_min_pack);
    assert_null(out.cell_max_pack);
    assert_int_equal(out.temp_max_dc, SAMPLE_ABSENT);
    assert_true(fabs(out.charged_kwh - 1.5) < 1e-12);
    assert_true(isnan(out.discharged_kwh));

    /* an empty bank */
    bank_aggregate(NULL, 0, 1000, &out);
    assert_int_equal(out.packs_total, 0);
    assert_int_equal(out.packs_online, 0);
    assert_int_equal(out.soc_cpct, SAMPLE_ABSENT);
}

/* Energy: sums over every pack with a known counter (stale ones too: lifetime totals must not
 * drop), NAN skipped, NAN when none. */
static void test_energy(void **state)
{
    (void)state;
    struct sample a, b, c;
    pack(&a, 5000, 100000, 53000, 0, NULL, 0);
    pack(&b, 5000, 100000, 53000, 0, NULL, 0);
    pack(&c, 5000, 100000, 53000, 0, NULL, 0);
    struct bank_input in[] = {input("a", &a, 1), input("b", &b, 0), input("c", &c, 1)};
    in[0].charged_kwh = 10.25;
    in[0].discharged_kwh = 3.5;
    in[1].charged_kwh = 4.75; /* stale but counted */
    in[2].discharged_kwh = 1.25;
    struct bank_state out;
    bank_aggregate(in, 3, 1000, &out);
    assert_true(fabs(out.charged_kwh - 15.0) < 1e-12);
    assert_true(fabs(out.discharged_kwh - 4.75) < 1e-12);

    for (size_t i = 0; i < 3; i++)
        in[i].charged_kwh = in[i].discharged_kwh = NAN;
    bank_aggregate(in, 3, 1000, &out);
    assert_true(isnan(out.charged_kwh));
    assert_true(isnan(out.discharged_kwh));
    in[2].discharged_kwh = 0.0; /* a known 0 is 0 */
    bank_aggregate(in, 3, 1000, &out);
    assert_true(isnan(out.charged_kwh));
    assert_true(out.discharged_kwh == 0.0);
}

/* The hottest sensor of the fresh packs; absent current of a fresh pack is not a 0 A. */
static void test_temp_and_absent_current(void **state)
{
    (void)state;
    struct sample a, b;
    pack(&a, 5000, 100000, 53000, SAMPLE_ABSENT, NULL, 0);
    pack(&b, 5000, 100000, SAMPLE_ABSENT, -2500, NULL, 0);
    a.ntemps = 2;
    a.temp_dc[0] = 251;
    a.temp_dc[1] = -50;
    b.ntemps = 1;
    b.temp_dc[0] = 312;
    struct bank_input in[] = {input("a", &a, 1), input("b", &b, 0)};
    struct bank_state out;
    bank_aggregate(in, 2, 1000, &out);
    assert_int_equal(out.temp_max_dc, 251); /* b is stale */
    assert_true(out.current_ma == INT64_MIN);
    assert_true(isnan(out.power_w));
    in[1].fresh = 1;
    bank_aggregate(in, 2, 1000, &out);
    assert_int_equal(out.temp_max_dc, 312);
    assert_true(out.current_ma == -2500);
    assert_true(isnan(out.power_w)); /* b has no voltage: no power from it */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weighted_soc),
        cmocka_unit_test(test_weighted_soc_rounding),
        cmocka_unit_test(test_stale_excluded),
        cmocka_unit_test(test_absent_soc_full),
        cmocka_unit_test(test_cells),
        cmocka_unit_test(test_divergence_margin),
        cmocka_unit_test(test_all_stale),
        cmocka_unit_test(test_energy),
        cmocka_unit_test(test_temp_and_absent_current),
    };
    return cmocka_run_group_tests(tests, 0, 0);
}
