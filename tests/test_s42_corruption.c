/* test_s42_corruption: what the Service 42 codec does with damaged answers: every
 * single-character substitution and every truncation of every frame (tests/data/vectors.tsv and
 * the hand-built and quoted frames of s42_frames.c) is refused with its named error and leaves
 * the output untouched; INFO cut short is INFO_SHORT, counts out of range are COUNT, never a
 * sample. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "s42.h"
#include "s42_frames.h"
#include "s42_helpers.h"
#include "sample.h"

/* ================================================================================================
 * 1. Every frame, every single-character substitution, every truncation
 * ============================================================================================= */

static const char subst_chars[] = {
    '0', '1', '2', '3',  '4',  '5', '6', '7', '8', '9', 'A',  'B',    'C',        'D',
    'E', 'F',                       /* hex */
    'a', 'b', 'c', 'd',  'e',  'f', /* lowercase */
    'G', 'g', '~', '\r', '\n', ' ', '/', ':', '@', '`', '\0', '\x7f', (char)0x80, (char)0xFF,
};

/* frame: a valid frame ending in '\r'. */
static void corrupt_frame(const char *name, const char *frame, size_t len)
{
    static char buf[2 * FRAME_CAP + 8];
    char ctx[300];
    struct s42_frame ok;
    parse_ok(frame, len, &ok, name);
    assert_true(len >= 18 && len + 1 < FRAME_CAP);
    const size_t info_chars = len - 18, chk_at = len - 5;
    const uint16_t chk = (uint16_t)hex_at(frame + chk_at, 4);

    /* every single-character substitution */
    for (size_t pos = 0; pos < len; pos++) {
        for (size_t k = 0; k < N_(subst_chars); k++) {
            char c = subst_chars[k];
            if (c == frame[pos])
                continue;
            memcpy(buf, frame, len);
            buf[pos] = c;
            snprintf(ctx, sizeof ctx, "%s: char %zu '%c' -> 0x%02X", name, pos, frame[pos],
                     (unsigned char)c);
            struct want_diag w = {0, 0, 0, 0, 0, 0};
            int err;
            if (pos == 0) {
                err = S42_E_SOI;
                w = (struct want_diag){1, 1, 0, 0, (unsigned char)c, 0};
            } else if (pos == len - 1) {
                err = S42_E_EOI;
            } else if (c == '\r') {
                err = S42_E_TRAILING; /* the frame ends at the first CR; the rest trails */
                w = (struct want_diag){1, 1, 0, (long)pos + 1, len - pos - 1, 0};
            } else if (!is_upper_hex(c)) {
                err = S42_E_HEX;
                w = (struct want_diag){1, 1, 0, (long)pos, (unsigned char)c, 0};
            } else if (pos == 9) {
                err = S42_E_LCHKSUM; /* LENID intact, its check nibble wrong */
                w = (struct want_diag){0, 1, 1, 0, hexv(c), hexv(frame[9])};
            } else if (pos >= 10 && pos <= 12) {
                err = S42_E_LENID;
                w = (struct want_diag){0, 1, 1, 0, hex_at(buf + 10, 3), info_chars};
            } else {
                err = S42_E_CHKSUM;
                w = (struct want_diag){
                    1, 1, 1, (long)chk_at, hex_at(buf + chk_at, 4), ref_checksum(buf + 1, len - 6)};
            }
            expect_reject(ctx, buf, len, err, &w);
        }
    }

    /* every truncation, and every truncation that still ends in CR */
    for (size_t p = 0; p < len; p++) {
        snprintf(ctx, sizeof ctx, "%s: first %zu chars", name, p);
        expect_reject(ctx, frame, p, p == 0 ? S42_E_EMPTY : p < 18 ? S42_E_SHORT : S42_E_EOI, NULL);
        if (p == 0 || p == len - 1)
            continue;
        memcpy(buf, frame, p);
        buf[p] = '\r';
        snprintf(ctx, sizeof ctx, "%s: first %zu chars + CR", name, p);
        if (p + 1 < 18) {
            expect_reject(ctx, buf, p + 1, S42_E_SHORT, NULL);
        } else {
            struct want_diag w = {0, 1, 1, 0, info_chars, p + 1 - 18};
            expect_reject(ctx, buf, p + 1, S42_E_LENID, &w);
        }
    }

    /* only LCHKSUM wrong: CHKSUM recomputed over the changed LENGTH */
    for (unsigned nib = 0; nib < 16; nib++) {
        if (nib == hexv(frame[9]))
            continue;
        memcpy(buf, frame, len);
        buf[9] = "0123456789ABCDEF"[nib];
        put_hex16(buf + chk_at, ref_checksum(buf + 1, len - 6));
        snprintf(ctx, sizeof ctx, "%s: LCHKSUM %X, CHKSUM recomputed", name, nib);
        struct want_diag w = {0, 1, 1, 0, nib, hexv(frame[9])};
        expect_reject(ctx, buf, len, S42_E_LCHKSUM, &w);
    }

    /* only CHKSUM wrong */
    static const unsigned deltas[] = {1, 0x10, 0x100, 0x1000, 0x8000, 0xFFFF};
    for (size_t k = 0; k < N_(deltas); k++) {
        memcpy(buf, frame, len);
        unsigned bad = (chk + deltas[k]) & 0xFFFFu;
        put_hex16(buf + chk_at, bad);
        snprintf(ctx, sizeof ctx, "%s: CHKSUM %04X instead of %04X", name, bad, chk);
        struct want_diag w = {1, 1, 1, (long)chk_at, bad, chk};
        expect_reject(ctx, buf, len, S42_E_CHKSUM, &w);
    }

    /* anything after the EOI */
    static const char *const tails[] = {"X", "\r", "\n", "~", "00", " "};
    for (size_t k = 0; k <= N_(tails); k++) {
        const char *tail = k < N_(tails) ? tails[k] : frame; /* last: the frame once more */
        size_t tlen = k < N_(tails) ? strlen(tail) : len;
        memcpy(buf, frame, len);
        memcpy(buf + len, tail, tlen);
        snprintf(ctx, sizeof ctx, "%s: %zu trailing byte(s)", name, tlen);
        struct want_diag w = {1, 1, 0, (long)len, tlen, 0};
        expect_reject(ctx, buf, len + tlen, S42_E_TRAILING, &w);
    }
}

static void corrupt_vector_row(const struct vrow *r, void *ctx)
{
    char buf[FRAME_CAP], name[64];
    size_t len = row_frame(r, buf, sizeof buf);
    snprintf(name, sizeof name, "vectors.tsv:%u", r->line);
    corrupt_frame(name, buf, len);
    ++*(size_t *)ctx;
}

static void test_corruption_vectors(void **state)
{
    (void)state;
    size_t done = 0;
    size_t rows = for_each_vector(corrupt_vector_row, &done);
    assert_int_equal(done, rows);
}

static void test_corruption_hand_built(void **state)
{
    (void)state;
    char buf[FRAME_CAP];
    size_t n = 0;
    for (size_t i = 0; i < n_built_frames(); i++, n++) {
        const struct built_frame b = built_frame(i);
        corrupt_frame(b.name, buf, wrap(b.variant, b.adr, 0, b.info, b.len, buf));
    }
    for (size_t i = 0; i < n_doc_frames; i++, n++) {
        snprintf(buf, sizeof buf, "%s\r", doc_frames[i]);
        corrupt_frame(doc_frames[i], buf, strlen(buf));
    }
    assert_int_equal(n, n_analog_cases + n_alarm_cases + n_identity_cases + n_doc_frames);
}

/* ================================================================================================
 * 2. INFO that does not hold what it announces
 * ============================================================================================= */

/* Every INFO shorter than a hand-built one, framed correctly, is INFO_SHORT and never a sample. */
static void test_info_truncated_is_info_short(void **state)
{
    (void)state;
    char buf[FRAME_CAP], ctx[160];
    struct s42_frame f;
    struct s42_diag d;
    struct sample s;
    struct s42_identity id;
    assert_int_equal(n_built_frames(), n_analog_cases + n_alarm_cases + n_identity_cases);
    for (size_t i = 0; i < n_built_frames(); i++) {
        const struct built_frame b = built_frame(i);
        const uint8_t cid2 = b.cid2;
        const struct s42_variant *v = variant(b.variant);
        for (size_t k = 0; k < b.len; k++) {
            snprintf(ctx, sizeof ctx, "%s: INFO cut to %zu of %zu bytes", b.name, k, b.len);
            parse_ok(buf, wrap(b.variant, b.adr, 0, b.info, k, buf), &f, ctx);
            d = (struct s42_diag){-99, 0, 0};
            int err;
            if (cid2 == S42_CID2_ANALOG) {
                memset(&s, A5, sizeof s);
                err = s42_decode_analog(v, &f, &s, &d);
                EXPECT_TRUE(untouched(&s, sizeof s), "%s: sample written", ctx);
            } else if (cid2 == S42_CID2_ALARM) {
                memset(&s, A5, sizeof s);
                err = s42_decode_alarm(v, &f, &s, &d);
                EXPECT_TRUE(untouched(&s, sizeof s), "%s: sample written", ctx);
            } else {
                memset(&id, A5, sizeof id);
                err = s42_decode_identity(v, cid2, &f, &id, &d);
                EXPECT_TRUE(untouched(&id, sizeof id), "%s: identity written", ctx);
            }
            EXPECT_EQ(err, -S42_E_INFO_SHORT, "%s", ctx);
            EXPECT_EQ(d.got, k, "%s: diag.got (INFO length)", ctx);
            EXPECT_TRUE(d.pos >= 0 && (unsigned long)d.pos + d.want > k && d.want > 0,
                        "%s: diag names a field that does not fit (pos %ld, need %lu)", ctx, d.pos,
                        d.want);
        }
    }
}

/* M beyond what a pack can have, N beyond what a sample holds: S42_E_COUNT, never a sample. */
static void test_counts_out_of_range(void **state)
{
    (void)state;
    char ctx[96], msg[200];
    for (enum kind k = 0; k < K__N; k++) {
        for (int which = 0; which < 2; which++) {
            struct wire_pack w;
            static struct bytes info;
            char buf[FRAME_CAP];
            struct s42_frame f;
            struct s42_diag d = {-1, 0, 0};
            struct sample s;
            default_pack(k, which == 0 ? 33 : 16, 6, &w);
            size_t n_max = k == K_DAREN ? SAMPLE_MAX_TEMPS - 3 : SAMPLE_MAX_TEMPS;
            if (which == 1)
                w.n = (uint8_t)(n_max + 1);
            for (size_t t = 0; t < w.n; t++)
                w.temp[t] = w.temp[0];
            build_info(k, &w, &info); /* complete: every announced field is present */
            snprintf(ctx, sizeof ctx, "%s %s", kind_name[k], which == 0 ? "M=33" : "N too large");
            parse_ok(buf, wrap(kind_name[k], 1, 0, info.b, info.n, buf), &f, ctx);
            memset(&s, A5, sizeof s);
            EXPECT_EQ(s42_decode_analog(variant(kind_name[k]), &f, &s, &d), -S42_E_COUNT, "%s",
                      ctx);
            EXPECT_TRUE(untouched(&s, sizeof s), "%s: sample written", ctx);
            size_t m_at = k == K_DAREN ? 5 : 2;
            size_t at = which == 0 ? m_at : m_at + 1 + 2u * w.m + (k == K_DAREN ? 6 : 0);
            EXPECT_EQ(d.pos, at, "%s: diag.pos", ctx);
            EXPECT_EQ(d.got, which == 0 ? 33 : n_max + 1, "%s: diag.got", ctx);
            EXPECT_EQ(d.want, which == 0 ? SAMPLE_MAX_CELLS : n_max, "%s: diag.want", ctx);
        }
    }
    /* the message */
    struct s42_diag d = {5, 33, 32};
    assert_string_equal(s42_describe(-S42_E_COUNT, &d, msg, sizeof msg),
                        "cell or temperature count out of range: 33 at INFO byte 5 (at most 32)");
}

/* INFO of vname that announces 16 cells and holds 10: INFO_SHORT for the cells at `pos` (they
 * need 32 bytes), and no sample. */
static void expect_cells_short(const char *vname, const uint8_t *info, size_t n, long pos,
                               struct s42_diag *d)
{
    char buf[FRAME_CAP], what[64];
    struct s42_frame f;
    struct sample s;
    snprintf(what, sizeof what, "%s M=16, 10 cells", vname);
    parse_ok(buf, wrap(vname, 1, 0, info, n, buf), &f, what);
    memset(&s, A5, sizeof s);
    assert_int_equal(s42_decode_analog(variant(vname), &f, &s, d), -S42_E_INFO_SHORT);
    assert_true(untouched(&s, sizeof s));
    assert_int_equal(d->pos, pos);
    assert_int_equal(d->want, 32);
    assert_int_equal(d->got, n);
}

/* M=16 but only 10 cells present, LENGTH and CHKSUM correct. */
static void test_info_short_for_announced_counts(void **state)
{
    (void)state;
    /* clang-format off */
    static const uint8_t daren[] = {
        0x00, BE16(5000), BE16(5312), 16, /* DATAFLAG, SOC, voltage, M = 16 */
        BE16(3300), BE16(3301), BE16(3302), BE16(3303), BE16(3304),
        BE16(3305), BE16(3306), BE16(3307), BE16(3308), BE16(3309), /* only 10 cells */
    };
    static const uint8_t pace[] = {0x00, 0x01, 16, BE16(3300), BE16(3301), BE16(3302), BE16(3303),
                                   BE16(3304), BE16(3305), BE16(3306), BE16(3307), BE16(3308),
                                   BE16(3309)};
    /* clang-format on */
    char msg[200];
    struct s42_diag d;
    expect_cells_short("daren", daren, sizeof daren, 6, &d);
    assert_string_equal(s42_describe(-S42_E_INFO_SHORT, &d, msg, sizeof msg),
                        "INFO too short: field at byte 6 needs 32 byte(s), INFO has 26");
    expect_cells_short("pace", pace, sizeof pace, 3, &d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* 1. the frame layer */
        cmocka_unit_test(test_corruption_vectors),
        cmocka_unit_test(test_corruption_hand_built),
        /* 2. the INFO */
        cmocka_unit_test(test_info_truncated_is_info_short),
        cmocka_unit_test(test_counts_out_of_range),
        cmocka_unit_test(test_info_short_for_announced_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
