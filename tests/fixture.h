/* fixture: what a perfect reader gets from a frozen simulator (--time-scale 0): the pack
 * model's sample passed through the wire encoding once (0x42, and 0x44 where the variant has
 * it). Header-only, shared by the tests that run the real binaries. Needs cmocka included. */
#ifndef BMSFLEET_TEST_FIXTURE_H
#define BMSFLEET_TEST_FIXTURE_H

#include <stdlib.h>

#include "mbpack.h"
#include "s42.h"
#include "sim.h"

/* Encodes the INFO of cid2 for the model, frames it, parses it back. */
static inline void fixture_wire_frame(const struct s42_variant *v, uint8_t cid2, uint8_t adr,
                                      const struct sample *model, struct s42_frame *f)
{
    uint8_t info[S42_MAX_INFO];
    char frame[S42_MAX_FRAME + 2];
    int n = cid2 == S42_CID2_ANALOG ? s42_encode_analog(v, model, info, sizeof info)
                                    : s42_encode_alarm(v, model, info, sizeof info);
    assert_true(n > 0);
    int len = s42_build(frame, sizeof frame, s42_variant_ver(v), adr, s42_variant_cid1(v), 0,
                        info, (size_t)n);
    assert_true(len > 0);
    assert_int_equal(s42_parse(frame, (size_t)len, f, NULL), 0);
}

static inline void fixture_wire_sample(const char *proto, uint64_t seed, uint8_t adr,
                                       struct sample *out)
{
    const struct s42_variant *v = s42_variant_find(proto);
    assert_non_null(v);
    struct sim_pack p;
    struct sample model;
    struct s42_frame f;
    sim_pack_init(&p, seed, adr, 16);
    sim_pack_sample(&p, &model);
    fixture_wire_frame(v, S42_CID2_ANALOG, adr, &model, &f);
    assert_int_equal(s42_decode_analog(v, &f, out, NULL), 0);
    if (s42_has_command(v, S42_CID2_ALARM) == 2) {
        fixture_wire_frame(v, S42_CID2_ALARM, adr, &model, &f);
        assert_int_equal(s42_decode_alarm(v, &f, out, NULL), 0);
    }
}

/* The same for a Modbus pack: the model through the register map once. */
static inline void fixture_modbus_sample(uint64_t seed, uint8_t adr, struct sample *out)
{
    struct sim_pack p;
    struct sample model;
    uint16_t regs[MBMAP_NREGS];
    sim_pack_init(&p, seed, adr, 16);
    sim_pack_sample(&p, &model);
    assert_int_equal(mbmap_encode(&model, regs), 0);
    assert_int_equal(mbmap_decode(regs, out), 0);
    out->address = adr;
}

#endif
