/* test_s42_framing: the Service 42 frame layer (docs/reference/SERVICE42.md §1, §4, §5): the §1
 * worked examples of LENGTH and CHKSUM, building and parsing, requests, the §7 pitfalls that are
 * about framing (7.4 address and family, 7.5 trailing bytes and two frames, 7.6 LENGTH), the RTN
 * codes of §4 and the diagnostic messages. The variants' layouts: test_s42_variants; every
 * corruption and truncation: test_s42_corruption. */
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
 * 1. §1 worked examples
 * ============================================================================================= */

static void test_length_field_examples(void **state)
{
    (void)state;
    static const struct {
        uint16_t lenid, field;
    } ex[] = {
        {0x000, 0x0000}, /* LENID 0 gives 0000 */
        {0x002, 0xE002}, /* the worked example */
        {0x04C, 0x004C}, /* nibble sum 16: LCHKSUM 0 */
        {0x0C6, 0xE0C6}, /* Daren 0x42, LENID 198 */
        {0x07A, 0xF07A}, /* PACE 0x42, LENID 122 */
        {0x04E, 0xE04E}, /* PACE 0x44 Easun */
        {0x028, 0x6028}, /* PACE 0xC1 */
        {0x046, 0x6046}, /* Daren 0x51 */
        {0x014, 0xB014}, /* RTN 91, Pylontech 0x92 */
        {0x082, 0x6082}, /* Daren 0x47 */
        {0x030, 0xD030}, /* Daren 0xB0 module 4 */
        {0x03C, 0x103C}, /* Daren 0x83 */
        {0x004, 0xC004}, /* Daren 0x83 request */
        {0x00A, 0x600A}, /* Daren 0xB0 request */
        {0xFFF, 0x3FFF}, /* nibble sum 45: (-45) & 0xF = 3 */
    };
    for (size_t i = 0; i < N_(ex); i++)
        EXPECT_EQ(s42_length_field(ex[i].lenid), ex[i].field, "LENID 0x%03X", ex[i].lenid);
    assert_int_equal(s42_length_field(0xF002), 0xE002); /* the LCHKSUM bits of the input go */
}

/* What a reader learns of a frame's length from its first chars (s42_frame_chars). */
static void test_frame_chars(void **state)
{
    (void)state;
    char f[S42_MAX_FRAME + 2];
    uint8_t info[61] = {0};
    int n = s42_build(f, sizeof f, 0x25, 1, 0x46, 0x00, info, sizeof info);
    assert_int_equal(n, 18 + 122);
    for (size_t len = 1; len < 13; len++)
        EXPECT_EQ(s42_frame_chars(f, len), 13, "after %zu chars: the header's 13", len);
    for (size_t len = 13; len <= (size_t)n; len++)
        EXPECT_EQ(s42_frame_chars(f, len), (size_t)n, "after %zu chars: LENGTH says", len);
    assert_int_equal(s42_frame_chars("", 0), 0);
    assert_int_equal(s42_frame_chars("x25014600F07A", 13), 0); /* not a start */
    assert_int_equal(s42_frame_chars("~25014600E07A", 13), 0); /* LCHKSUM does not match */
    assert_int_equal(s42_frame_chars("~25014600F07a", 13), 0); /* not uppercase hex */
    assert_int_equal(s42_frame_chars("~250146000000", 13), 18); /* no INFO */
    assert_int_equal(s42_frame_chars("~250146003FFF", 13), 18 + 0xFFF);
}

static void test_checksum_worked_example(void **state)
{
    (void)state;
    const char *p = "22014A42E00201";
    uint32_t sum = 0;
    for (const char *q = p; *q; q++)
        sum += (uint8_t)*q;
    assert_int_equal(sum, 728);
    assert_int_equal(s42_checksum(p, strlen(p)), 0xFD28);
    assert_int_equal(s42_checksum(p, 0), 0x0000);
    char buf[FRAME_CAP];
    const uint8_t info = 0x01;
    assert_int_equal(s42_build(buf, sizeof buf, 0x22, 0x01, 0x4A, 0x42, &info, 1), 20);
    assert_string_equal(buf, "~22014A42E00201FD28\r");
    assert_int_equal(s42_build(buf, 20, 0x22, 0x01, 0x4A, 0x42, &info, 1), -S42_E_BUFFER);
    /* the largest INFO LENGTH can announce, and one byte more */
    static uint8_t big[S42_MAX_INFO];
    memset(big, 0x5A, sizeof big);
    static char huge[FRAME_CAP];
    int n = s42_build(huge, sizeof huge, 0x25, 1, 0x46, 0, big, 2047);
    assert_int_equal(n, 18 + 4094);
    struct s42_frame f;
    parse_ok(huge, (size_t)n, &f, "2047-byte INFO");
    assert_int_equal(f.info_len, 2047);
    assert_memory_equal(f.info, big, 2047);
    assert_true(s42_build(huge, sizeof huge, 0x25, 1, 0x46, 0, big, 2048) < 0);
}

/* ================================================================================================
 * 2. SERVICE42.md §7 pitfalls about framing
 * ============================================================================================= */

/* 7.4: an answer from another address, another family, or the request echoed back. */
static void test_pitfall_7_4_wrong_or_echoed_address(void **state)
{
    (void)state;
    char buf[FRAME_CAP], msg[200];
    size_t len;
    struct s42_frame f;
    struct s42_diag d;
    struct sample s;
    const struct s42_variant *pace = variant("pace");

    /* the PACE vector answer (ADR 1) when ADR 2 was asked: the DIP mis-set of NK #30 */
    snprintf(buf, sizeof buf, "%s\r",
             "~25014600F07A0001100CC70CC80CC70CC70CC70CC50CC60CC70CC70CC60CC70CC60CC60CC70CC60CC7"
             "060B9B0B990B990B990BB30BBCFF1FCCCD12D303286A008C2710E1E4");
    parse_ok(buf, strlen(buf), &f, "pace vector");
    assert_int_equal(s42_check(&f, pace, 1, NULL), 0);
    assert_int_equal(s42_check(&f, pace, 2, &d), -S42_E_ADR);
    assert_int_equal(d.got, 1);
    assert_int_equal(d.want, 2);
    assert_string_equal(s42_describe(-S42_E_ADR, &d, msg, sizeof msg),
                        "answer from address 1, expected 2");

    /* a Daren answers a PACE query (Gobel #84): another VER */
    snprintf(buf, sizeof buf, "%s\r", "~22004A91B01400040000000F00000000F9AC");
    parse_ok(buf, strlen(buf), &f, "daren RTN 91");
    assert_int_equal(s42_check(&f, pace, 0, &d), -S42_E_VER);
    assert_int_equal(d.got, 0x22);
    assert_int_equal(d.want, 0x25);
    assert_int_equal(s42_check(&f, variant("pylontech"), 0, NULL), -S42_E_VER);
    assert_int_equal(s42_check(&f, variant("daren"), 0, NULL), -S42_E_RTN_COMM);

    /* right VER and ADR, another CID1 */
    const struct analog_case *pace_8s = analog_case("pace 0x42 8S");
    len = wrap("daren", 1, 0, pace_8s->info, pace_8s->len, buf);
    buf[1] = '2', buf[2] = '5'; /* VER 0x25 with CID1 0x4A */
    put_hex16(buf + len - 5, ref_checksum(buf + 1, len - 6));
    parse_ok(buf, len, &f, "VER 25 CID1 4A");
    assert_int_equal(s42_check(&f, pace, 1, &d), -S42_E_CID1);
    assert_int_equal(d.got, 0x4A);
    assert_int_equal(d.want, 0x46);

    /* the request echoed back by a bridge (Gobel #14): a well-formed frame whose RTN field holds
     * the command 0x42 */
    snprintf(buf, sizeof buf, "%s\r", "~25FF4642E002FFFCDA");
    parse_ok(buf, strlen(buf), &f, "echo");
    assert_int_equal(s42_check(&f, pace, 1, &d), -S42_E_ADR);
    assert_int_equal(s42_check(&f, pace, 0xFF, &d), -S42_E_RTN_UNKNOWN);
    assert_int_equal(d.got, 0x42);
    assert_string_equal(s42_describe(-S42_E_RTN_UNKNOWN, &d, msg, sizeof msg),
                        "BMS answered with unknown RTN 0x42");
    memset(&s, A5, sizeof s);
    assert_int_equal(s42_decode_analog(pace, &f, &s, NULL), -S42_E_RTN_UNKNOWN);
    assert_true(untouched(&s, sizeof s));
    /* every request the codec builds, echoed, is refused the same way */
    for (size_t i = 0; s42_variant_at(i); i++) {
        const struct s42_variant *v = s42_variant_at(i);
        int n = s42_request(v, S42_CID2_ANALOG, 1, buf, sizeof buf);
        assert_true(n > 0);
        parse_ok(buf, (size_t)n, &f, s42_variant_name(v));
        EXPECT_EQ(s42_check(&f, v, 1, NULL), -S42_E_RTN_UNKNOWN, "%s echo", s42_variant_name(v));
    }
}

/* 7.5: trailing bytes or several frames in one read. */
static void test_pitfall_7_5_trailing_and_two_frames(void **state)
{
    (void)state;
    static const char a[] = "~22014A00E002C8FD14\r";
    static const char b[] = "~25014600602850313653313030412D313831322D312E30302000F58E\r";
    char buf[2 * FRAME_CAP];
    struct s42_frame f;
    struct s42_diag d;

    /* CR LF */
    snprintf(buf, sizeof buf, "%s\n", a);
    struct want_diag crlf = {1, 1, 0, (long)strlen(a), 1, 0};
    expect_reject("CR LF", buf, strlen(buf), S42_E_TRAILING, &crlf);

    /* two frames: the first is refused as a whole, diag.pos says where the second starts */
    snprintf(buf, sizeof buf, "%s%s", a, b);
    size_t len = strlen(buf);
    memset(&f, A5, sizeof f);
    assert_int_equal(s42_parse(buf, len, &f, &d), -S42_E_TRAILING);
    assert_true(untouched(&f, sizeof f));
    assert_int_equal(d.pos, strlen(a));
    assert_int_equal(d.got, strlen(b));
    assert_int_equal(s42_parse(buf, (size_t)d.pos, &f, NULL), 0);
    assert_int_equal(f.cid2, 0x00);
    assert_int_equal(f.info[0], 0xC8);
    assert_int_equal(s42_parse(buf + d.pos, len - (size_t)d.pos, &f, NULL), 0);
    assert_int_equal(f.info_len, 20);

    /* garbage before the SOI */
    snprintf(buf, sizeof buf, "\n%s", a);
    struct want_diag soi = {1, 1, 0, 0, '\n', 0};
    expect_reject("leading LF", buf, strlen(buf), S42_E_SOI, &soi);

    /* a frame cut short and followed by a whole one (bus contention): the second SOI is not hex */
    snprintf(buf, sizeof buf, "%.10s%s", b, a);
    struct want_diag hex = {1, 1, 0, 10, '~', 0};
    expect_reject("cut frame + frame", buf, strlen(buf), S42_E_HEX, &hex);
}

/* 7.6: LENGTH: LCHKSUM 0 is valid, LENID must be even, requests are zero-padded. */
static void test_pitfall_7_6_length_handling(void **state)
{
    (void)state;
    char buf[FRAME_CAP];
    struct s42_frame f;
    struct s42_diag d;

    /* the real PACE 0x44 answer has LENGTH 004C */
    snprintf(buf, sizeof buf, "%s\r",
             "~25014600004C000110000000000000000000000000000000000600000000000000000000000E0000"
             "00000000EF3A");
    parse_ok(buf, strlen(buf), &f, "LENGTH 004C");
    assert_int_equal(f.lenid, 0x04C);
    assert_int_equal(f.info_len, 38);
    assert_int_equal(s42_length_field(0x04C), 0x004C);

    /* every LENID: the field keeps LENID and its four nibbles sum to 0 mod 16 (no 0x1xxxx) */
    for (unsigned lenid = 0; lenid <= 0xFFF; lenid++) {
        uint16_t lf = s42_length_field((uint16_t)lenid);
        EXPECT_EQ(lf, ref_length_field(lenid), "length field of LENID 0x%03X", lenid);
        EXPECT_EQ(lf & 0x0FFFu, lenid, "LENID 0x%03X kept", lenid);
        unsigned u = lf;
        EXPECT_EQ(((u >> 12) + (u >> 8) + (u >> 4) + u) & 0xFu, 0, "nibbles of 0x%04X", u);
    }

    /* odd LENID, correctly checksummed: INFO is not whole bytes */
    const char *body = "25014600";
    char odd[64];
    snprintf(odd, sizeof odd, "~%s%04XABC", body, ref_length_field(3));
    size_t n = strlen(odd);
    snprintf(odd + n, sizeof odd - n, "%04X\r", ref_checksum(odd + 1, n - 1));
    memset(&f, A5, sizeof f);
    assert_int_equal(s42_parse(odd, strlen(odd), &f, &d), -S42_E_LENID_ODD);
    assert_true(untouched(&f, sizeof f));
    assert_int_equal(d.got, 3);

    /* requests: every field two (LENGTH, CHKSUM four) uppercase hex digits, whatever the values */
    static const uint8_t cids[] = {0x42, 0x44, 0x47, 0x4F, 0x51, 0x83,
                                   0x92, 0x93, 0xB0, 0xC1, 0xC2};
    static const uint8_t adrs[] = {0x00, 0x01, 0x02, 0x0A, 0x10, 0xFF};
    size_t built = 0;
    for (size_t i = 0; s42_variant_at(i); i++) {
        const struct s42_variant *v = s42_variant_at(i);
        for (size_t c = 0; c < N_(cids); c++) {
            if (!s42_has_command(v, cids[c])) {
                assert_int_equal(s42_request(v, cids[c], 1, buf, sizeof buf), -S42_E_UNSUPPORTED);
                continue;
            }
            for (size_t a = 0; a < N_(adrs); a++) {
                int len = s42_request(v, cids[c], adrs[a], buf, sizeof buf);
                char ctx[64], adr_hex[3];
                snprintf(ctx, sizeof ctx, "%s 0x%02X adr %u", s42_variant_name(v), cids[c],
                         adrs[a]);
                /* no INFO, 1 byte, or Daren's 2-byte (0x83) and 5-byte (0xB0) requests */
                EXPECT_TRUE(len == 18 || len == 20 || len == 22 || len == 28, "%s: length %d", ctx,
                            len);
                EXPECT_EQ((unsigned char)buf[0], '~', "%s: SOI", ctx);
                EXPECT_EQ((unsigned char)buf[len - 1], '\r', "%s: EOI", ctx);
                EXPECT_EQ(buf[len], '\0', "%s: NUL", ctx);
                for (int p = 1; p < len - 1; p++)
                    EXPECT_TRUE(is_upper_hex(buf[p]), "%s: char %d", ctx, p);
                snprintf(adr_hex, sizeof adr_hex, "%02X", adrs[a]);
                EXPECT_TRUE(memcmp(buf + 3, adr_hex, 2) == 0, "%s: ADR field", ctx);
                parse_ok(buf, (size_t)len, &f, ctx);
                EXPECT_EQ(f.adr, adrs[a], "%s: ADR", ctx);
                EXPECT_EQ(f.cid2, cids[c], "%s: CID2", ctx);
                built++;
            }
        }
    }
    assert_true(built > 0);
    /* known requests from §5 */
    static const struct {
        const char *v;
        uint8_t cid2, adr;
        const char *frame;
    } known[] = {
        {"seplos", 0x42, 0x00, "~20004642E00200FD37\r"},
        {"pylontech", 0x42, 0x01, "~20014642E00201FD35\r"},
        {"daren", 0x47, 0x01, "~22014A47E00201FD23\r"},
        {"pace", 0x44, 0x01, "~25014644E00201FD2E\r"},
    };
    for (size_t i = 0; i < N_(known); i++) {
        assert_int_equal(
            s42_request(variant(known[i].v), known[i].cid2, known[i].adr, buf, sizeof buf),
            strlen(known[i].frame));
        assert_string_equal(buf, known[i].frame);
    }
    assert_int_equal(s42_request(variant("pace"), 0x42, 1, buf, 20),
                     -S42_E_BUFFER); /* no NUL room */
}

/* ================================================================================================
 * 3. RTN codes (§4) and messages
 * ============================================================================================= */

/* §4: every RTN maps to its named error; s42_check and the decoders refuse it. */
static void test_rtn_codes(void **state)
{
    (void)state;
    static const struct {
        uint8_t rtn;
        int err;
    } table[] = {
        {0x00, 0},
        {0x01, S42_E_RTN_VER},
        {0x02, S42_E_RTN_CHKSUM},
        {0x03, S42_E_RTN_LCHKSUM},
        {0x04, S42_E_RTN_CID2},
        {0x05, S42_E_RTN_FORMAT},
        {0x06, S42_E_RTN_DATA},
        {0x07, S42_E_RTN_NODATA},
        {0x09, S42_E_RTN_OPERATION},
        {0x90, S42_E_RTN_ADR},
        {0x91, S42_E_RTN_COMM},
        {0xE1, S42_E_RTN_CID1},
        {0xE2, S42_E_RTN_EXEC},
        {0xE3, S42_E_RTN_EQUIP},
        {0xE4, S42_E_RTN_PERM},
    };
    const struct s42_variant *pace = variant("pace");
    const struct analog_case *pace_8s = analog_case("pace 0x42 8S");
    for (unsigned rtn = 0; rtn < 256; rtn++) {
        int want = S42_E_RTN_UNKNOWN, listed = 0;
        for (size_t i = 0; i < N_(table); i++) {
            if (table[i].rtn == rtn) {
                want = table[i].err;
                listed = 1;
            }
        }
        EXPECT_EQ(s42_rtn_error((uint8_t)rtn), want, "s42_rtn_error(0x%02X)", rtn);
        if (listed && rtn) {
            char code[8];
            snprintf(code, sizeof code, "RTN %02X", rtn);
            EXPECT_TRUE(strstr(s42_strerror(want), code) != NULL, "strerror of RTN 0x%02X: %s", rtn,
                        s42_strerror(want));
        }
        /* an error answer with INFO (like the RTN 91 one) never yields values */
        char buf[FRAME_CAP];
        struct s42_frame f;
        struct s42_diag d = {-1, 0, 0};
        struct sample s;
        struct s42_identity id;
        parse_ok(buf, wrap("pace", 1, (uint8_t)rtn, pace_8s->info, pace_8s->len, buf), &f, "rtn");
        EXPECT_EQ(s42_check(&f, pace, 1, &d), -want, "s42_check with RTN 0x%02X", rtn);
        if (want == 0)
            continue;
        EXPECT_EQ(d.got, rtn, "diag.got of RTN 0x%02X", rtn);
        memset(&s, A5, sizeof s);
        EXPECT_EQ(s42_decode_analog(pace, &f, &s, NULL), -want, "decode_analog RTN 0x%02X", rtn);
        EXPECT_EQ(s42_decode_alarm(pace, &f, &s, NULL), -want, "decode_alarm RTN 0x%02X", rtn);
        EXPECT_TRUE(untouched(&s, sizeof s), "RTN 0x%02X: sample written", rtn);
        memset(&id, A5, sizeof id);
        EXPECT_EQ(s42_decode_identity(pace, S42_CID2_PACE_HWVER, &f, &id, NULL), -want,
                  "decode_identity RTN 0x%02X", rtn);
        EXPECT_TRUE(untouched(&id, sizeof id), "RTN 0x%02X: identity written", rtn);
    }
    for (int e = 0; e < S42_E__COUNT; e++)
        EXPECT_TRUE(strcmp(s42_strerror(-e), "unknown error") != 0, "s42_strerror(%d)", e);
}

static void test_describe_messages(void **state)
{
    (void)state;
    char msg[200];
    struct s42_frame f;
    struct s42_diag d;
    /* the §1 example with INFO 02 instead of 01: the sum is one higher */
    const char *bad = "~22014A42E00202FD28\r";
    assert_int_equal(s42_parse(bad, strlen(bad), &f, &d), -S42_E_CHKSUM);
    assert_int_equal(d.got, 0xFD28);
    assert_int_equal(d.want, 0xFD27);
    assert_int_equal(d.pos, 15);
    assert_string_equal(s42_describe(-S42_E_CHKSUM, &d, msg, sizeof msg),
                        "checksum mismatch: frame says 0xFD28, computed 0xFD27");
    assert_string_equal(s42_describe(S42_E_CHKSUM, &d, msg, sizeof msg),
                        "checksum mismatch: frame says 0xFD28, computed 0xFD27");
    assert_string_equal(s42_describe(-S42_E_CHKSUM, NULL, msg, sizeof msg), "checksum mismatch");

    static const struct {
        const char *frame;
        int err;
        const char *msg;
    } refused[] = {
        /* LENGTH F002, CHKSUM recomputed */
        {"~22014A42F00201FD27\r", S42_E_LCHKSUM,
         "length checksum mismatch: frame says 0xF, computed 0xE"},
        {"~22014A42E00401FD26\r", S42_E_LENID, "LENID says 4 INFO characters, frame has 2"},
        {"~22014a42E00201FD28\r", S42_E_HEX,
         "character that is not an uppercase hex digit at position 6 (0x61)"},
        {"x", S42_E_SOI, "frame does not start with '~' (SOI) (first byte 0x78)"},
        {"~22014A42E00201FD28\r\n", S42_E_TRAILING,
         "1 byte(s) after the end of the frame at position 20"},
    };
    for (size_t i = 0; i < N_(refused); i++) {
        const char *fr = refused[i].frame;
        assert_int_equal(s42_parse(fr, strlen(fr), &f, &d), -refused[i].err);
        assert_string_equal(s42_describe(-refused[i].err, &d, msg, sizeof msg), refused[i].msg);
    }

    /* longer than any frame LENGTH can announce, with and without an EOI */
    static char flood[S42_MAX_FRAME + 100];
    memset(flood, 'A', sizeof flood);
    flood[0] = '~';
    assert_int_equal(s42_parse(flood, sizeof flood, &f, &d), -S42_E_TOO_LONG);
    flood[sizeof flood - 1] = '\r';
    memset(&f, A5, sizeof f);
    assert_int_equal(s42_parse(flood, sizeof flood, &f, &d), -S42_E_TOO_LONG);
    assert_true(untouched(&f, sizeof f));

    /* a message never overruns its buffer */
    char tiny[8];
    memset(tiny, A5, sizeof tiny);
    s42_describe(-S42_E_CHKSUM, &d, tiny, 6);
    assert_int_equal(strlen(tiny), 5);
    assert_int_equal((unsigned char)tiny[6], A5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* 1. §1 examples */
        cmocka_unit_test(test_length_field_examples),
        cmocka_unit_test(test_frame_chars),
        cmocka_unit_test(test_checksum_worked_example),
        /* 2. §7 pitfalls of the framing */
        cmocka_unit_test(test_pitfall_7_4_wrong_or_echoed_address),
        cmocka_unit_test(test_pitfall_7_5_trailing_and_two_frames),
        cmocka_unit_test(test_pitfall_7_6_length_handling),
        /* 3. RTN codes and messages */
        cmocka_unit_test(test_rtn_codes),
        cmocka_unit_test(test_describe_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
