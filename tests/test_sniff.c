/* test_sniff: listen-only decoding (codec/sniff.c) on byte streams built here and on the real
 * frames of tests/data/vectors.tsv: requests told from answers, answers matched to requests,
 * 0x42 and 0x44 merged, unanswered requests, refusals, damaged frames, answers from nowhere;
 * Modbus RTU framed by function code, length and CRC, with noise before frames and register
 * reads in pieces. Fed whole, and byte by byte: the same events. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"
#include "mbmap.h"
#include "s42.h"
#include "sim.h"
#include "sniff.h"

#define SEED    5
#define TIMEOUT 500

struct got {
    struct sniff_event ev[64];
    size_t n;
};

static void drain(struct sniff *s, struct got *g)
{
    struct sniff_event ev;
    while (sniff_next(s, &ev)) {
        assert_true(g->n < sizeof g->ev / sizeof g->ev[0]);
        g->ev[g->n++] = ev;
    }
}

/* Feeds the stream at time t (whole, or a byte at a time), then drains. */
static void feed(struct sniff *s, const void *data, size_t n, int64_t t, int bytewise,
                 struct got *g)
{
    const uint8_t *b = data;
    size_t step = bytewise ? 1 : n;
    for (size_t at = 0; at < n;) {
        size_t k = sniff_feed(s, b + at, n - at < step ? n - at : step, t);
        at += k;
        drain(s, g);
    }
}

static size_t count(const struct got *g, enum sniff_kind k)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n; i++)
        n += g->ev[i].kind == k;
    return n;
}

static const struct sniff_event *first(const struct got *g, enum sniff_kind k)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->ev[i].kind == k)
            return &g->ev[i];
    fail_msg("no %s event", sniff_kind_name(k));
    return NULL;
}

/* ---------------- Service 42 ---------------- */

static size_t answer(const struct s42_variant *v, uint8_t adr, uint8_t cid2, uint8_t rtn,
                     char *buf, size_t cap)
{
    struct sim_pack p;
    struct sample model;
    uint8_t info[S42_MAX_INFO];
    sim_pack_init(&p, SEED, adr, 16);
    sim_pack_sample(&p, &model);
    int n = 0;
    if (rtn == 0)
        n = cid2 == S42_CID2_ANALOG ? s42_encode_analog(v, &model, info, sizeof info)
                                    : s42_encode_alarm(v, &model, info, sizeof info);
    assert_true(n >= 0);
    int len = s42_build(buf, cap, s42_variant_ver(v), adr, s42_variant_cid1(v), rtn, info,
                        (size_t)n);
    assert_true(len > 0);
    return (size_t)len;
}

static size_t request(const struct s42_variant *v, uint8_t adr, uint8_t cid2, char *buf,
                      size_t cap)
{
    int n = s42_request(v, cid2, adr, buf, cap);
    assert_true(n > 0);
    return (size_t)n;
}

/* A master's round over packs 1..3 (0x42 then 0x44), with noise between frames. */
static void test_s42_round(void **state)
{
    (void)state;
    const struct s42_variant *v = s42_variant_find("pace");
    static char stream[16 * 1024];
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        size_t n = 0;
        for (uint8_t adr = 1; adr <= 3; adr++) {
            n += request(v, adr, S42_CID2_ANALOG, stream + n, sizeof stream - n);
            stream[n++] = 0x00; /* a transceiver's glitch between frames */
            n += answer(v, adr, S42_CID2_ANALOG, 0, stream + n, sizeof stream - n);
            n += request(v, adr, S42_CID2_ALARM, stream + n, sizeof stream - n);
            n += answer(v, adr, S42_CID2_ALARM, 0, stream + n, sizeof stream - n);
        }
        struct sniff *s = calloc(1, sizeof *s);
        struct got g = {.n = 0};
        sniff_init(s, v, TIMEOUT);
        feed(s, stream, n, 1000, bytewise, &g);
        sniff_idle(s, 1000 + 10 * TIMEOUT); /* the last pack's sample is not held forever */
        drain(s, &g);
        assert_int_equal(count(&g, SNIFF_REQUEST), 6);
        assert_int_equal(count(&g, SNIFF_SAMPLE), 3);
        assert_int_equal(g.n, 9);
        uint8_t next = 1;
        for (size_t i = 0; i < g.n; i++) {
            if (g.ev[i].kind != SNIFF_SAMPLE)
                continue;
            struct sample want;
            fixture_wire_sample("pace", SEED, next, &want);
            const struct sample *got = &g.ev[i].sample;
            assert_int_equal(g.ev[i].adr, next);
            assert_int_equal(got->address, next);
            assert_true(got->has & SAMPLE_HAS_ALARMS); /* the 0x44 merged in */
            assert_int_equal(got->voltage_mv, want.voltage_mv);
            assert_int_equal(got->current_ma, want.current_ma);
            assert_memory_equal(got->cell_mv, want.cell_mv, sizeof want.cell_mv[0] * 16);
            assert_int_equal(got->alarms, want.alarms);
            assert_int_equal(got->state, want.state);
            next++;
        }
        assert_int_equal(s->n.unanswered + s->n.bad + s->n.foreign + s->n.unmatched, 0);
        assert_int_equal(s->n.dropped_bytes, 3);
        free(s);
    }
}

/* Silence, refusals, damage, answers from another address and from nowhere. */
static void test_s42_troubles(void **state)
{
    (void)state;
    const struct s42_variant *v = s42_variant_find("daren"); /* 0x42 carries the flags */
    char a[S42_MAX_FRAME + 2], r[64];
    struct sniff *s = calloc(1, sizeof *s);
    struct got g = {.n = 0};
    sniff_init(s, v, TIMEOUT);

    /* an answer first: listening began mid-exchange */
    size_t n = answer(v, 1, S42_CID2_ANALOG, 0, a, sizeof a);
    feed(s, a, n, 0, 0, &g);
    assert_int_equal(first(&g, SNIFF_UNMATCHED)->adr, 1);
    /* pack 2 is asked twice and never answers: the second request makes the first unanswered,
     * the timeout the second */
    n = request(v, 2, S42_CID2_ANALOG, r, sizeof r);
    feed(s, r, n, 100, 0, &g);
    feed(s, r, n, 200, 0, &g);
    assert_int_equal(count(&g, SNIFF_UNANSWERED), 1);
    sniff_idle(s, 200 + TIMEOUT + 1);
    drain(s, &g);
    assert_int_equal(count(&g, SNIFF_UNANSWERED), 2);
    /* pack 3 refuses (RTN 04) */
    g.n = 0;
    feed(s, r, request(v, 3, S42_CID2_ANALOG, r, sizeof r), 1000, 0, &g);
    feed(s, a, answer(v, 3, S42_CID2_ANALOG, 0x04, a, sizeof a), 1010, 0, &g);
    assert_int_equal(first(&g, SNIFF_REFUSED)->code, 0x04);
    /* pack 1's answer with a wrong checksum; then pack 1 answers when pack 4 was asked */
    g.n = 0;
    feed(s, r, request(v, 1, S42_CID2_ANALOG, r, sizeof r), 2000, 0, &g);
    n = answer(v, 1, S42_CID2_ANALOG, 0, a, sizeof a);
    a[n - 2] = a[n - 2] == '0' ? '1' : '0';
    feed(s, a, n, 2010, 0, &g);
    assert_int_equal(first(&g, SNIFF_BAD)->err, -S42_E_CHKSUM);
    feed(s, r, request(v, 4, S42_CID2_ANALOG, r, sizeof r), 3000, 0, &g);
    feed(s, a, answer(v, 1, S42_CID2_ANALOG, 0, a, sizeof a), 3010, 0, &g);
    assert_int_equal(first(&g, SNIFF_FOREIGN)->adr, 1);
    /* and a good exchange still gives its sample at once (no 0x44 to wait for) */
    g.n = 0;
    feed(s, r, request(v, 1, S42_CID2_ANALOG, r, sizeof r), 4000, 0, &g);
    feed(s, a, answer(v, 1, S42_CID2_ANALOG, 0, a, sizeof a), 4010, 0, &g);
    assert_int_equal(count(&g, SNIFF_SAMPLE), 1);
    /* another protocol family on the line */
    g.n = 0;
    const struct s42_variant *pace = s42_variant_find("pace");
    feed(s, r, request(pace, 1, S42_CID2_ANALOG, r, sizeof r), 5000, 0, &g);
    assert_int_equal(count(&g, SNIFF_FOREIGN), 1);
    free(s);
}

/* A pace bus where pack 1 answered a 0x42 (at 0 and 10 ms): its sample is held for the 0x44. */
static const struct s42_variant *held_analog(struct sniff *s, struct got *g)
{
    const struct s42_variant *v = s42_variant_find("pace");
    char a[S42_MAX_FRAME + 2], r[64];
    sniff_init(s, v, TIMEOUT);
    feed(s, r, request(v, 1, S42_CID2_ANALOG, r, sizeof r), 0, 0, g);
    feed(s, a, answer(v, 1, S42_CID2_ANALOG, 0, a, sizeof a), 10, 0, g);
    return v;
}

/* A 0x42 whose 0x44 never comes is stored without flags, after the hold. */
static void test_s42_hold(void **state)
{
    (void)state;
    char a[S42_MAX_FRAME + 2], r[64];
    struct sniff *s = calloc(1, sizeof *s);
    struct got g = {.n = 0};
    const struct s42_variant *v = held_analog(s, &g);
    sniff_idle(s, 10 + TIMEOUT);
    drain(s, &g);
    assert_int_equal(count(&g, SNIFF_SAMPLE), 0); /* still waiting for the 0x44 */
    sniff_idle(s, 10 + 4 * TIMEOUT);
    drain(s, &g);
    assert_int_equal(count(&g, SNIFF_SAMPLE), 1);
    assert_false(first(&g, SNIFF_SAMPLE)->sample.has & SAMPLE_HAS_ALARMS);
    /* a request for another pack releases a held sample at once */
    g.n = 0;
    feed(s, r, request(v, 1, S42_CID2_ANALOG, r, sizeof r), 5000, 0, &g);
    feed(s, a, answer(v, 1, S42_CID2_ANALOG, 0, a, sizeof a), 5010, 0, &g);
    feed(s, r, request(v, 2, S42_CID2_ANALOG, r, sizeof r), 5100, 0, &g);
    assert_int_equal(count(&g, SNIFF_SAMPLE), 1);
    free(s);
}

/* The end of the listening: a request still within its timeout was cut by it (no unanswered),
 * one older is unanswered; a held sample goes out either way. */
static void test_s42_end(void **state)
{
    (void)state;
    char r[64];
    struct sniff *s = calloc(1, sizeof *s);
    struct got g = {.n = 0};
    const struct s42_variant *v = held_analog(s, &g);
    feed(s, r, request(v, 1, S42_CID2_ALARM, r, sizeof r), 20, 0, &g); /* its answer is late */
    sniff_end(s, 20 + TIMEOUT / 2);
    drain(s, &g);
    assert_int_equal(count(&g, SNIFF_UNANSWERED), 0);
    assert_int_equal(count(&g, SNIFF_SAMPLE), 1);
    assert_false(first(&g, SNIFF_SAMPLE)->sample.has & SAMPLE_HAS_ALARMS);

    g.n = 0;
    sniff_init(s, v, TIMEOUT);
    feed(s, r, request(v, 2, S42_CID2_ANALOG, r, sizeof r), 0, 0, &g);
    sniff_end(s, TIMEOUT + 1);
    drain(s, &g);
    assert_int_equal(count(&g, SNIFF_UNANSWERED), 1);
    assert_int_equal(first(&g, SNIFF_UNANSWERED)->adr, 2);
    free(s);
}

/* The real frames of vectors.tsv, in file order, as one stream per protocol. */
static void test_s42_vectors(void **state)
{
    (void)state;
    FILE *f = fopen(BMSFLEET_VECTORS, "r");
    assert_non_null(f);
    static char daren[8192], pace[8192];
    size_t nd = 0, np = 0;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        char proto[16], dir[16], cid2[8], frame[3000];
        if (line[0] == '#' || sscanf(line, "%15s %15s %7s %2999s", proto, dir, cid2, frame) != 4)
            continue;
        char *buf = strcmp(proto, "daren") == 0 ? daren : strcmp(proto, "pace") == 0 ? pace : NULL;
        size_t *n = buf == daren ? &nd : &np;
        if (buf == NULL)
            continue;
        *n += (size_t)snprintf(buf + *n, 8192 - *n, "%s\r", frame);
    }
    fclose(f);
    struct sniff *s = calloc(1, sizeof *s);
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        struct got g = {.n = 0};
        sniff_init(s, s42_variant_find("daren"), TIMEOUT);
        feed(s, daren, nd, 0, bytewise, &g);
        assert_int_equal(count(&g, SNIFF_REQUEST), 5);
        assert_int_equal(count(&g, SNIFF_SAMPLE), 1);
        const struct sample *smp = &first(&g, SNIFF_SAMPLE)->sample;
        assert_int_equal(smp->address, 1);
        assert_int_equal(smp->voltage_mv, 53120); /* vectors.tsv: voltage=53.12 */
        assert_int_equal(smp->soc_cpct, 6700);
        assert_int_equal(s->n.bad + s->n.foreign + s->n.unmatched + s->n.unanswered, 0);

        g.n = 0;
        sniff_init(s, s42_variant_find("pace"), TIMEOUT);
        feed(s, pace, np, 0, bytewise, &g);
        sniff_idle(s, 100 * TIMEOUT);
        drain(s, &g);
        assert_int_equal(count(&g, SNIFF_REQUEST), 2);
        assert_int_equal(count(&g, SNIFF_SAMPLE), 1);
        assert_true(first(&g, SNIFF_SAMPLE)->sample.has & SAMPLE_HAS_ALARMS);
        assert_int_equal(s->n.unmatched, 1); /* the C1 answer has no request in the file */
        assert_int_equal(s->n.bad + s->n.foreign + s->n.unanswered, 0);
    }
    free(s);
}

/* ---------------- Modbus RTU ---------------- */

static size_t mb_crc(uint8_t *f, size_t n)
{
    uint16_t crc = mbmap_crc16(f, n);
    f[n] = (uint8_t)(crc & 0xFF);
    f[n + 1] = (uint8_t)(crc >> 8);
    return n + 2;
}

static size_t mb_request(uint8_t slave, uint16_t start, uint16_t count_, uint8_t *f)
{
    uint8_t q[] = {slave, 0x03, (uint8_t)(start >> 8), (uint8_t)start, (uint8_t)(count_ >> 8),
                   (uint8_t)count_};
    memcpy(f, q, sizeof q);
    return mb_crc(f, sizeof q);
}

static size_t mb_answer(uint8_t slave, uint16_t start, uint16_t count_, uint8_t *f)
{
    struct sim_pack p;
    struct sample model;
    uint16_t regs[MBMAP_NREGS];
    sim_pack_init(&p, SEED, slave, 16);
    sim_pack_sample(&p, &model);
    assert_int_equal(mbmap_encode(&model, regs), 0);
    f[0] = slave;
    f[1] = 0x03;
    f[2] = (uint8_t)(2 * count_);
    for (unsigned i = 0; i < count_; i++) {
        f[3 + 2 * i] = (uint8_t)(regs[start + i] >> 8);
        f[4 + 2 * i] = (uint8_t)(regs[start + i] & 0xFF);
    }
    return mb_crc(f, 3 + 2u * count_);
}

static void assert_modbus_sample(const struct sniff_event *ev, uint8_t slave)
{
    struct sample want;
    fixture_modbus_sample(SEED, slave, &want);
    assert_int_equal(ev->adr, slave);
    assert_int_equal(ev->sample.address, slave);
    assert_int_equal(ev->sample.voltage_mv, want.voltage_mv);
    assert_int_equal(ev->sample.current_ma, want.current_ma);
    assert_int_equal(ev->sample.soc_cpct, want.soc_cpct);
    assert_memory_equal(ev->sample.cell_mv, want.cell_mv, sizeof want.cell_mv[0] * 16);
}

static void test_modbus_round(void **state)
{
    (void)state;
    static uint8_t stream[4096];
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        size_t n = 0;
        stream[n++] = 0xFF; /* noise before the first frame */
        stream[n++] = 0x42;
        for (uint8_t slave = 1; slave <= 3; slave++) {
            n += mb_request(slave, 0, MBMAP_NREGS, stream + n);
            n += mb_answer(slave, 0, MBMAP_NREGS, stream + n);
        }
        /* slave 4 read in two pieces, slave 5 refuses (exception 02), slave 6 is silent */
        n += mb_request(4, 0, 20, stream + n);
        n += mb_answer(4, 0, 20, stream + n);
        n += mb_request(4, 20, MBMAP_NREGS - 20, stream + n);
        n += mb_answer(4, 20, MBMAP_NREGS - 20, stream + n);
        n += mb_request(5, 0, MBMAP_NREGS, stream + n);
        uint8_t exc[] = {5, 0x83, 0x02, 0, 0};
        memcpy(stream + n, exc, 3);
        n += mb_crc(stream + n, 3);
        n += mb_request(6, 0, MBMAP_NREGS, stream + n);
        n += mb_request(1, 0, MBMAP_NREGS, stream + n);
        n += mb_answer(1, 0, MBMAP_NREGS, stream + n);

        struct sniff *s = calloc(1, sizeof *s);
        struct got g = {.n = 0};
        sniff_init(s, NULL, TIMEOUT);
        feed(s, stream, n, 0, bytewise, &g);
        sniff_idle(s, 10 * TIMEOUT);
        drain(s, &g);
        assert_int_equal(count(&g, SNIFF_REQUEST), 8);
        assert_int_equal(count(&g, SNIFF_SAMPLE), 5);
        assert_int_equal(count(&g, SNIFF_REFUSED), 1);
        assert_int_equal(first(&g, SNIFF_REFUSED)->code, 2);
        assert_int_equal(count(&g, SNIFF_UNANSWERED), 1);
        assert_int_equal(first(&g, SNIFF_UNANSWERED)->adr, 6);
        uint8_t order[] = {1, 2, 3, 4, 1};
        size_t k = 0;
        for (size_t i = 0; i < g.n; i++)
            if (g.ev[i].kind == SNIFF_SAMPLE)
                assert_modbus_sample(&g.ev[i], order[k++]);
        assert_int_equal(s->n.dropped_bytes, 2);
        assert_int_equal(s->n.bad + s->n.foreign + s->n.unmatched, 0);
        free(s);
    }
}

/* A damaged answer is bad, and what follows is framed again. */
static void test_modbus_damage(void **state)
{
    (void)state;
    uint8_t f[512];
    struct sniff *s = calloc(1, sizeof *s);
    struct got g = {.n = 0};
    sniff_init(s, NULL, TIMEOUT);
    size_t n = mb_request(2, 0, MBMAP_NREGS, f);
    size_t m = mb_answer(2, 0, MBMAP_NREGS, f + n);
    f[n + 10] ^= 0x40;
    n += m;
    n += mb_request(2, 0, MBMAP_NREGS, f + n);
    n += mb_answer(2, 0, MBMAP_NREGS, f + n);
    feed(s, f, n, 0, 1, &g);
    sniff_idle(s, 1);
    drain(s, &g);
    assert_int_equal(count(&g, SNIFF_BAD), 1);
    assert_int_equal(count(&g, SNIFF_SAMPLE), 1);
    assert_modbus_sample(first(&g, SNIFF_SAMPLE), 2);
    free(s);
}

static void test_modbus_lengths(void **state)
{
    (void)state;
    const uint8_t rd[] = {1, 3, 0x4A}, wr[] = {1, 0x10, 0, 0, 0, 2, 4}, ex[] = {1, 0x83, 2},
                  odd[] = {1, 3, 3}, unk[] = {1, 0x2B};
    assert_int_equal(sniff_mb_frame_len(rd, 1, 0), 0);
    assert_int_equal(sniff_mb_frame_len(rd, 2, 0), 0);
    assert_int_equal(sniff_mb_frame_len(rd, 3, 0), 5 + 0x4A);
    assert_int_equal(sniff_mb_frame_len(rd, 3, 1), 8);
    assert_int_equal(sniff_mb_frame_len(wr, 7, 1), 13);
    assert_int_equal(sniff_mb_frame_len(wr, 6, 1), 0);
    assert_int_equal(sniff_mb_frame_len(wr, 7, 0), 8);
    assert_int_equal(sniff_mb_frame_len(ex, 3, 0), 5);
    assert_int_equal(sniff_mb_frame_len(ex, 3, 1), -1);
    assert_int_equal(sniff_mb_frame_len(odd, 3, 0), -1);
    assert_int_equal(sniff_mb_frame_len(unk, 2, 0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_s42_round),     cmocka_unit_test(test_s42_troubles),
        cmocka_unit_test(test_s42_hold),      cmocka_unit_test(test_s42_end),
        cmocka_unit_test(test_s42_vectors),
        cmocka_unit_test(test_modbus_round),  cmocka_unit_test(test_modbus_damage),
        cmocka_unit_test(test_modbus_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
