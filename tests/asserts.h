/* asserts: what cmocka's assertions lack, shared by the tests: doubles within a tolerance, and
 * two samples that must hold the same values. Header-only; needs cmocka included first. */
#ifndef BMSFLEET_TEST_ASSERTS_H
#define BMSFLEET_TEST_ASSERTS_H

#include <math.h>
#include <stddef.h>

#include "sample.h"

#define assert_near(a, b, tol)                                                                     \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= (tol)))                                                             \
            fail_msg("%s = %.9f, expected %.9f (±%g)", #a, a_, b_, (double)(tol));                 \
    } while (0)

/* The values every reader of a pack must agree on: address, what the sample has, the analog
 * values, cells, temperatures and their roles, the state and the balancing. */
static inline void assert_same_values(const struct sample *a, const struct sample *b)
{
    assert_int_equal(a->address, b->address);
    assert_int_equal(a->has, b->has);
    assert_int_equal(a->voltage_mv, b->voltage_mv);
    assert_int_equal(a->current_ma, b->current_ma);
    assert_int_equal(a->soc_cpct, b->soc_cpct);
    assert_int_equal(a->soh_cpct, b->soh_cpct);
    assert_int_equal(a->remaining_mah, b->remaining_mah);
    assert_int_equal(a->full_mah, b->full_mah);
    assert_int_equal(a->design_mah, b->design_mah);
    assert_int_equal(a->cycles, b->cycles);
    assert_int_equal(a->ncells, b->ncells);
    for (size_t i = 0; i < a->ncells; i++)
        assert_int_equal(a->cell_mv[i], b->cell_mv[i]);
    assert_int_equal(a->ntemps, b->ntemps);
    for (size_t i = 0; i < a->ntemps; i++) {
        assert_int_equal(a->temp_dc[i], b->temp_dc[i]);
        assert_int_equal(a->temp_role[i], b->temp_role[i]);
    }
    assert_int_equal(a->cell_min_mv, b->cell_min_mv);
    assert_int_equal(a->cell_max_mv, b->cell_max_mv);
    assert_int_equal(a->state, b->state);
    assert_int_equal(a->balancing, b->balancing);
}

#endif
