/* test_s42_variants: the Service 42 codec decoding each variant (Daren, PACE, Pylontech, Seplos)
 * against the protocol truth: every frame of tests/data/vectors.tsv (read at run time), the
 * hand-built frames of s42_frames.c (one section per variant there) for the layouts of
 * docs/reference/SERVICE42.md that have no public frame, the frames quoted in SERVICE42.md, the
 * §7 pitfalls that are about a variant's layout or units, and encode/decode round trips.
 * Framing, checksums and RTN codes: test_s42_framing; corruption and truncation:
 * test_s42_corruption. Frames under test are built byte by byte from SERVICE42.md, never with
 * s42_encode_*, so an error shared by the encoder and the decoder cannot hide. */
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
 * 1. vectors.tsv
 * ============================================================================================= */

/* "53.12" -> 5312 with 2 decimals. */
static int parse_dec(const char *s, long long *scaled, int *decimals)
{
    int neg = 0, dec = -1, digits = 0;
    long long v = 0;
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    for (; *s; s++) {
        if (*s == '.') {
            if (dec >= 0)
                return -1;
            dec = 0;
            continue;
        }
        if (*s < '0' || *s > '9' || v > LLONG_MAX / 10 - 10)
            return -1;
        v = v * 10 + (*s - '0');
        digits++;
        if (dec >= 0)
            dec++;
    }
    if (digits == 0 || dec == 0)
        return -1;
    *scaled = neg ? -v : v;
    *decimals = dec < 0 ? 0 : dec;
    return 0;
}

static long long pow10ll(int n)
{
    long long p = 1;
    while (n-- > 0)
        p *= 10;
    return p;
}

static long long div_half_away(long long v, long long d)
{
    return v >= 0 ? (v + d / 2) / d : -((-v + d / 2) / d);
}

/* Our value (in units of 10^-base_dec of the TSV unit) equals the TSV text at its own decimals. */
static void expect_dec(const struct vrow *r, const char *what, int32_t got, int base_dec,
                       const char *text)
{
    long long want = 0; /* set on success; ROW_FAIL does not return, which gcc -O2 cannot see */
    int dec = 0;
    if (parse_dec(text, &want, &dec))
        ROW_FAIL(r, "%s: '%s' is not a decimal number", what, text);
    if (got == SAMPLE_ABSENT)
        ROW_FAIL(r, "%s: absent, want %s", what, text);
    long long ours = dec <= base_dec ? div_half_away(got, pow10ll(base_dec - dec))
                                     : (long long)got * pow10ll(dec - base_dec);
    if (ours != want)
        ROW_FAIL(r, "%s: decoded %d (x10^-%d), which is %lld at %d decimals, want %s", what, got,
                 base_dec, ours, dec, text);
}

/* role < 0: every temperature; else only those of that role, in order. */
static void expect_temp_list(const struct vrow *r, const char *what, const struct sample *s,
                             int role, const char *text)
{
    char list[512];
    snprintf(list, sizeof list, "%s", text);
    char *save = NULL, *item = strtok_r(list, ",", &save);
    size_t k = 0;
    for (size_t i = 0; i < s->ntemps; i++) {
        if (role >= 0 && s->temp_role[i] != role)
            continue;
        if (item == NULL)
            ROW_FAIL(r, "%s: decoded more than the %zu listed", what, k);
        char name[64];
        snprintf(name, sizeof name, "%s[%zu]", what, k);
        expect_dec(r, name, s->temp_dc[i], 1, item);
        item = strtok_r(NULL, ",", &save);
        k++;
    }
    if (item != NULL)
        ROW_FAIL(r, "%s: decoded only %zu, TSV lists more", what, k);
}

static const struct {
    const char *key;
    size_t off; /* an int32_t field of struct sample */
    int base_dec;
} analog_numbers[] = {
    {"soc", offsetof(struct sample, soc_cpct), 2},
    {"soh", offsetof(struct sample, soh_cpct), 2},
    {"voltage", offsetof(struct sample, voltage_mv), 3},
    {"current", offsetof(struct sample, current_ma), 3},
    {"full_ah", offsetof(struct sample, full_mah), 3},
    {"remaining_ah", offsetof(struct sample, remaining_mah), 3},
    {"design_ah", offsetof(struct sample, design_mah), 3},
    {"cycles", offsetof(struct sample, cycles), 0},
    {"cell_min", offsetof(struct sample, cell_min_mv), 3},
    {"cell_max", offsetof(struct sample, cell_max_mv), 3},
};

static const struct {
    const char *key;
    enum sample_temp_role role;
} temp_keys[] = {
    {"temp_ambient", SAMPLE_TEMP_AMBIENT},
    {"temp_avg", SAMPLE_TEMP_AVG},
    {"temp_mos", SAMPLE_TEMP_MOS},
    {"temp_cell", SAMPLE_TEMP_CELL},
};

static int32_t field_at(const struct sample *s, size_t off)
{
    int32_t v;
    memcpy(&v, (const unsigned char *)s + off, sizeof v);
    return v;
}

/* Returns 1 when the key is an analog (0x42) key and was checked. */
static int check_analog_key(const struct vrow *r, const struct kv *p, const struct s42_variant *v,
                            const struct sample *s)
{
    for (size_t i = 0; i < N_(analog_numbers); i++) {
        if (strcmp(p->key, analog_numbers[i].key) == 0) {
            expect_dec(r, p->key, field_at(s, analog_numbers[i].off), analog_numbers[i].base_dec,
                       p->val);
            return 1;
        }
    }
    for (size_t i = 0; i < N_(temp_keys); i++) {
        if (strcmp(p->key, temp_keys[i].key) == 0) {
            expect_dec(r, p->key, sample_temp(s, temp_keys[i].role), 1, p->val);
            return 1;
        }
    }
    if (strcmp(p->key, "cells") == 0) {
        EXPECT_EQ(s->ncells, row_int(r, p, 0, SAMPLE_MAX_CELLS), "vectors.tsv:%u: cells", r->line);
        return 1;
    }
    if (strncmp(p->key, "cell_", 5) == 0 && p->key[5] >= '1' && p->key[5] <= '9' &&
        strspn(p->key + 5, "0123456789") == strlen(p->key + 5)) {
        long k = strtol(p->key + 5, NULL, 10);
        if (k > s->ncells)
            ROW_FAIL(r, "%s: the frame has only %u cells", p->key, s->ncells);
        expect_dec(r, p->key, s->cell_mv[k - 1], 3, p->val);
        return 1;
    }
    if (strcmp(p->key, "temps_cell") == 0) {
        expect_temp_list(r, p->key, s, SAMPLE_TEMP_CELL, p->val);
        return 1;
    }
    if (strcmp(p->key, "temps") == 0) {
        expect_temp_list(r, p->key, s, -1, p->val);
        return 1;
    }
    if (strcmp(p->key, "fet_status") == 0) {
        /* Daren: the fifth status word of the 0x42 answer (§2a), b0 CHG FET, b1 DSG FET */
        if (strcmp(s42_variant_name(v), "daren") != 0)
            ROW_FAIL(r, "fet_status is defined for daren only, not %s", s42_variant_name(v));
        long want = row_int(r, p, 0, 0xFFFF);
        EXPECT_TRUE(s->nraw_status >= 5, "vectors.tsv:%u: raw status words", r->line);
        EXPECT_EQ(s->raw_status[4], want, "vectors.tsv:%u: fet_status (raw_status[4])", r->line);
        uint32_t fets =
            ((want & 1) ? SAMPLE_STATE_CHG_FET : 0u) | ((want & 2) ? SAMPLE_STATE_DSG_FET : 0u);
        EXPECT_EQ(s->state & (SAMPLE_STATE_CHG_FET | SAMPLE_STATE_DSG_FET), fets,
                  "vectors.tsv:%u: FET state flags", r->line);
        return 1;
    }
    return 0;
}

static const struct {
    const char *name;
    int err;
} error_names[] = {
    {"version", S42_E_RTN_VER},
    {"checksum", S42_E_RTN_CHKSUM},
    {"length_checksum", S42_E_RTN_LCHKSUM},
    {"command", S42_E_RTN_CID2},
    {"format", S42_E_RTN_FORMAT},
    {"data", S42_E_RTN_DATA},
    {"no_data", S42_E_RTN_NODATA},
    {"operation", S42_E_RTN_OPERATION},
    {"address", S42_E_RTN_ADR},
    {"communication", S42_E_RTN_COMM},
    {"cid1", S42_E_RTN_CID1},
    {"execution", S42_E_RTN_EXEC},
    {"equipment", S42_E_RTN_EQUIP},
    {"permission", S42_E_RTN_PERM},
    {"unknown", S42_E_RTN_UNKNOWN},
};

static int row_error(const struct vrow *r, const struct kv *p)
{
    for (size_t i = 0; i < N_(error_names); i++) {
        if (strcmp(error_names[i].name, p->val) == 0)
            return error_names[i].err;
    }
    ROW_FAIL(r, "error=%s: unknown error name", p->val);
    return 0;
}

static void check_request_row(const struct vrow *r)
{
    const struct s42_variant *v = variant(r->protocol);
    uint8_t cid2 = row_cid2(r);
    long adr = -1, module = -1;
    for (size_t i = 0; i < r->nkv; i++) {
        const struct kv *p = &r->kv[i];
        if (strcmp(p->key, "adr") == 0)
            adr = row_int(r, p, 0, 255);
        else if (strcmp(p->key, "module") == 0)
            module = row_int(r, p, 0, 255);
        else
            ROW_FAIL(r, "unknown key '%s' for a request row", p->key);
    }
    if (adr < 0)
        ROW_FAIL(r, "%s", "request row without adr");

    char want[FRAME_CAP];
    size_t wlen = row_frame(r, want, sizeof want);
    struct s42_frame f;
    parse_ok(want, wlen, &f, "request vector");
    EXPECT_EQ(f.ver, s42_variant_ver(v), "vectors.tsv:%u: VER", r->line);
    EXPECT_EQ(f.adr, adr, "vectors.tsv:%u: ADR", r->line);
    EXPECT_EQ(f.cid1, s42_variant_cid1(v), "vectors.tsv:%u: CID1", r->line);
    EXPECT_EQ(f.cid2, cid2, "vectors.tsv:%u: CID2", r->line);
    if (module >= 0) {
        /* §3 0xB0: group 01, op 01, module, fid FF, flen 00 */
        const uint8_t b0[] = {0x01, 0x01, (uint8_t)module, 0xFF, 0x00};
        EXPECT_EQ(f.info_len, sizeof b0, "vectors.tsv:%u: module request INFO length", r->line);
        assert_memory_equal(f.info, b0, sizeof b0);
    }

    char got[FRAME_CAP];
    int n = s42_request(v, cid2, (uint8_t)adr, got, sizeof got);
    if (n > 0 && (size_t)n == wlen && memcmp(got, want, wlen) == 0)
        return;
    char s1[FRAME_CAP], s2[FRAME_CAP];
    ROW_FAIL(r, "s42_request(%s, 0x%02X, %ld) = %d \"%s\", want \"%s\"", r->protocol, cid2, adr, n,
             n > 0 ? show(got, (size_t)n, s1, sizeof s1) : "", show(want, wlen, s2, sizeof s2));
}

static const struct s42_variant *row_variant(const struct vrow *r, const struct s42_frame *f)
{
    const struct s42_variant *guess = s42_variant_guess(f);
    if (strcmp(r->protocol, "any") == 0) {
        if (guess == NULL)
            ROW_FAIL(r, "%s", "s42_variant_guess found no variant");
        return guess;
    }
    const struct s42_variant *v = variant(r->protocol);
    if (guess != v)
        ROW_FAIL(r, "s42_variant_guess says %s, the row says %s",
                 guess ? s42_variant_name(guess) : "nothing", r->protocol);
    return v;
}

static const struct kv *row_key(const struct vrow *r, const char *key)
{
    for (size_t i = 0; i < r->nkv; i++) {
        if (strcmp(r->kv[i].key, key) == 0)
            return &r->kv[i];
    }
    return NULL;
}

enum { DEC_NONE, DEC_ANALOG, DEC_ALARM, DEC_IDENTITY };

static void check_response_row(const struct vrow *r)
{
    char buf[FRAME_CAP];
    size_t len = row_frame(r, buf, sizeof buf);
    uint8_t col = row_cid2(r);

    const struct kv *valid = row_key(r, "valid");
    if (valid && row_int(r, valid, 0, 1) == 0) {
        /* a frame that must be refused, by the frame layer or by s42_check */
        if (r->nkv != 1)
            ROW_FAIL(r, "%s", "a valid=0 row takes no other key");
        struct s42_frame f;
        memset(&f, A5, sizeof f);
        int err = s42_parse(buf, len, &f, NULL);
        if (err == 0 && strcmp(r->protocol, "any") != 0)
            err = s42_check(&f, variant(r->protocol), f.adr, NULL);
        EXPECT_TRUE(err < 0, "vectors.tsv:%u: valid=0 frame accepted", r->line);
        return;
    }

    struct s42_frame f;
    parse_ok(buf, len, &f, "response vector");
    const struct s42_variant *v = row_variant(r, &f);
    int rtn_row = row_key(r, "rtn") != NULL || row_key(r, "error") != NULL;

    struct sample s;
    struct s42_identity id;
    struct s42_diag d = {-1, 0, 0};
    char msg[200];
    int what = DEC_NONE, err = 0;
    if (!rtn_row) {
        switch (col) {
        case S42_CID2_ANALOG:
            what = DEC_ANALOG;
            err = s42_decode_analog(v, &f, &s, &d);
            break;
        case S42_CID2_ALARM:
            what = DEC_ALARM;
            sample_init(&s);
            err = s42_decode_alarm(v, &f, &s, &d);
            break;
        case S42_CID2_PROTOCOL:
        case S42_CID2_MANUFACTURER:
        case S42_CID2_PYLON_SERIAL:
        case S42_CID2_PACE_HWVER:
        case S42_CID2_PACE_SERIAL:
            what = DEC_IDENTITY;
            s42_identity_init(&id);
            err = s42_decode_identity(v, col, &f, &id, &d);
            break;
        default:
            break;
        }
        if (err)
            ROW_FAIL(r, "decoding 0x%02X as %s: %s", col, s42_variant_name(v),
                     s42_describe(err, &d, msg, sizeof msg));
    }

    for (size_t i = 0; i < r->nkv; i++) {
        const struct kv *p = &r->kv[i];
        if (strcmp(p->key, "valid") == 0) {
            err = s42_check(&f, v, f.adr, &d);
            if (err)
                ROW_FAIL(r, "s42_check: %s", s42_describe(err, &d, msg, sizeof msg));
        } else if (strcmp(p->key, "adr") == 0) {
            long adr = row_int(r, p, 0, 255);
            EXPECT_EQ(f.adr, adr, "vectors.tsv:%u: ADR", r->line);
            if (what == DEC_ANALOG)
                EXPECT_EQ(s.address, adr, "vectors.tsv:%u: sample address", r->line);
        } else if (strcmp(p->key, "lchksum_zero") == 0) {
            long want = row_int(r, p, 0, 1);
            EXPECT_EQ(buf[9] == '0', want, "vectors.tsv:%u: LCHKSUM nibble is 0", r->line);
            EXPECT_EQ(s42_length_field(f.lenid) >> 12 == 0, want,
                      "vectors.tsv:%u: s42_length_field(LENID) top nibble 0", r->line);
        } else if (strcmp(p->key, "rtn") == 0) {
            long rtn = row_int(r, p, 0, 255);
            EXPECT_EQ(f.cid2, rtn, "vectors.tsv:%u: RTN field", r->line);
            EXPECT_EQ(col, rtn, "vectors.tsv:%u: cid2 column of an RTN row", r->line);
            EXPECT_TRUE(s42_rtn_error((uint8_t)rtn) != 0, "vectors.tsv:%u: RTN maps", r->line);
        } else if (strcmp(p->key, "error") == 0) {
            int e = row_error(r, p);
            EXPECT_EQ(s42_rtn_error(f.cid2), e, "vectors.tsv:%u: s42_rtn_error", r->line);
            EXPECT_EQ(s42_check(&f, v, f.adr, &d), -e, "vectors.tsv:%u: s42_check", r->line);
            memset(&s, A5, sizeof s);
            EXPECT_EQ(s42_decode_analog(v, &f, &s, &d), -e, "vectors.tsv:%u: decode", r->line);
            EXPECT_TRUE(untouched(&s, sizeof s), "vectors.tsv:%u: sample written", r->line);
        } else if (what == DEC_ANALOG && check_analog_key(r, p, v, &s)) {
            continue;
        } else if (what == DEC_ALARM && strcmp(p->key, "system") == 0) {
            /* PACE 0x44 system byte (§3): b1 CHG FET, b2 DSG FET, b3 discharging, b5 charging */
            if (strcmp(s42_variant_name(v), "pace") != 0)
                ROW_FAIL(r, "system is defined for pace only, not %s", s42_variant_name(v));
            long sys = row_int(r, p, 0, 0xFF);
            EXPECT_TRUE(s.nraw_status >= 3, "vectors.tsv:%u: raw status words", r->line);
            EXPECT_EQ(s.raw_status[2], sys, "vectors.tsv:%u: system (raw_status[2])", r->line);
            uint32_t st = ((sys & 0x02) ? SAMPLE_STATE_CHG_FET : 0u) |
                          ((sys & 0x04) ? SAMPLE_STATE_DSG_FET : 0u) |
                          ((sys & 0x08) ? SAMPLE_STATE_DISCHARGING : 0u) |
                          ((sys & 0x20) ? SAMPLE_STATE_CHARGING : 0u);
            EXPECT_EQ(s.state, st, "vectors.tsv:%u: state flags from system", r->line);
        } else if (what == DEC_IDENTITY && strcmp(p->key, "protocol_version") == 0) {
            EXPECT_EQ(id.protocol_version, row_int(r, p, 0, 255),
                      "vectors.tsv:%u: protocol_version", r->line);
        } else if (what == DEC_IDENTITY && strcmp(p->key, "hardware") == 0) {
            EXPECT_STR(id.hardware, p->val, "vectors.tsv:%u: hardware", r->line);
        } else if (what == DEC_IDENTITY && strcmp(p->key, "product") == 0) {
            EXPECT_STR(id.product, p->val, "vectors.tsv:%u: product", r->line);
        } else if (what == DEC_IDENTITY && strcmp(p->key, "project") == 0) {
            EXPECT_STR(id.project, p->val, "vectors.tsv:%u: project", r->line);
        } else if (what == DEC_IDENTITY && strcmp(p->key, "manufacturer") == 0) {
            EXPECT_STR(id.manufacturer, p->val, "vectors.tsv:%u: manufacturer", r->line);
        } else if (what == DEC_IDENTITY && strcmp(p->key, "software") == 0) {
            EXPECT_STR(id.software, p->val, "vectors.tsv:%u: software", r->line);
        } else if (what == DEC_IDENTITY && strcmp(p->key, "serial") == 0) {
            EXPECT_STR(id.serial, p->val, "vectors.tsv:%u: serial", r->line);
        } else {
            ROW_FAIL(r, "unknown key '%s' for a %s response with cid2 %s", p->key, r->protocol,
                     r->cid2);
        }
    }
}

static void check_vector_row(const struct vrow *r, void *ctx)
{
    if (strcmp(r->direction, "request") == 0)
        check_request_row(r);
    else if (strcmp(r->direction, "response") == 0)
        check_response_row(r);
    else
        ROW_FAIL(r, "unknown direction '%s'", r->direction);
    ++*(size_t *)ctx;
}

static void test_vectors(void **state)
{
    (void)state;
    size_t checked = 0;
    size_t rows = for_each_vector(check_vector_row, &checked);
    assert_true(rows > 0);
    assert_int_equal(checked, rows);
    print_message("[ VECTORS   ] %zu rows of %s checked\n", checked, BMSFLEET_VECTORS);
}

/* ================================================================================================
 * 2. Hand-built frames for the variants with no public frame (s42_frames.c: SERVICE42.md §2, §3)
 * ============================================================================================= */

static void expect_analog(const char *ctx, const struct sample *s, const struct exp_analog *e)
{
    EXPECT_EQ(s->address, e->adr, "%s: address", ctx);
    EXPECT_EQ(s->ncells, e->ncells, "%s: ncells", ctx);
    int32_t lo = INT32_MAX, hi = INT32_MIN;
    int lo_i = 0, hi_i = 0;
    for (size_t i = 0; i < e->ncells; i++) {
        EXPECT_EQ(s->cell_mv[i], e->cells[i], "%s: cell %zu", ctx, i + 1);
        if (e->cells[i] < lo) {
            lo = e->cells[i];
            lo_i = (int)i + 1;
        }
        if (e->cells[i] > hi) {
            hi = e->cells[i];
            hi_i = (int)i + 1;
        }
    }
    EXPECT_EQ(s->cell_min_mv, lo, "%s: cell_min", ctx);
    EXPECT_EQ(s->cell_max_mv, hi, "%s: cell_max", ctx);
    EXPECT_EQ(s->cell_min_idx, lo_i, "%s: cell_min_idx", ctx);
    EXPECT_EQ(s->cell_max_idx, hi_i, "%s: cell_max_idx", ctx);
    EXPECT_EQ(s->ntemps, e->ntemps, "%s: ntemps", ctx);
    for (size_t i = 0; i < e->ntemps; i++) {
        EXPECT_EQ(s->temp_dc[i], e->temps[i], "%s: temperature %zu", ctx, i);
        if (e->roles)
            EXPECT_EQ(s->temp_role[i], e->roles[i], "%s: role of temperature %zu", ctx, i);
    }
    EXPECT_EQ(s->voltage_mv, e->voltage, "%s: voltage_mv", ctx);
    EXPECT_EQ(s->current_ma, e->current, "%s: current_ma", ctx);
    EXPECT_EQ(s->soc_cpct, e->soc, "%s: soc_cpct", ctx);
    EXPECT_EQ(s->soh_cpct, e->soh, "%s: soh_cpct", ctx);
    EXPECT_EQ(s->remaining_mah, e->remaining, "%s: remaining_mah", ctx);
    EXPECT_EQ(s->full_mah, e->full, "%s: full_mah", ctx);
    EXPECT_EQ(s->design_mah, e->design, "%s: design_mah", ctx);
    EXPECT_EQ(s->cycles, e->cycles, "%s: cycles", ctx);
    EXPECT_EQ(s->has, e->has, "%s: has", ctx);
    EXPECT_EQ(s->alarms, e->alarms, "%s: alarms", ctx);
    EXPECT_EQ(s->protection, e->protection, "%s: protection", ctx);
    EXPECT_EQ(s->state, e->state, "%s: state", ctx);
    EXPECT_EQ(s->balancing, e->balancing, "%s: balancing", ctx);
    EXPECT_EQ(s->nraw_status, e->nraw, "%s: nraw_status", ctx);
    for (size_t i = 0; i < e->nraw; i++)
        EXPECT_EQ(s->raw_status[i], e->raw[i], "%s: raw_status[%zu]", ctx, i);
}

static void decode_analog_case(const struct analog_case *c, struct s42_frame *f, struct sample *s)
{
    const struct s42_variant *v = frame_checked(c->variant, c->e.adr, c->info, c->len, f, c->name);
    struct s42_diag d = {-1, 0, 0};
    int err = s42_decode_analog(v, f, s, &d);
    expect_decoded(err, &d, c->name);
}

static void test_hand_built_analog(void **state)
{
    (void)state;
    for (size_t i = 0; i < n_analog_cases; i++) {
        const struct analog_case *c = analog_cases[i];
        struct s42_frame f;
        struct sample s;
        decode_analog_case(c, &f, &s);
        expect_analog(c->name, &s, &c->e);
        /* VER 0x20/CID1 0x46 is Pylontech and Seplos: the guess must tell them apart */
        const struct s42_variant *g = s42_variant_guess(&f);
        EXPECT_TRUE(g == variant(c->variant), "%s: s42_variant_guess gave %s", c->name,
                    g ? s42_variant_name(g) : "nothing");
    }
}

/* ---- 0x44 alarm/status (§3) ---- */

static void test_hand_built_alarm(void **state)
{
    (void)state;
    /* the array comments in s42_frames.c agree with the §3 byte indices */
    const struct alarm_case *seplos = alarm_case("seplos 0x44 16S");
    assert_int_equal(seplos->info[30], 0x01);
    assert_int_equal(seplos->info[35], 0x03);
    for (size_t i = 0; i < n_alarm_cases; i++) {
        const struct alarm_case *c = alarm_cases[i];
        struct s42_frame f;
        struct s42_diag d = {-1, 0, 0};
        const struct s42_variant *v =
            frame_checked(c->variant, c->adr, c->info, c->len, &f, c->name);

        /* merged into an analog sample: the analog part stays as it was */
        struct sample s, before;
        sample_init(&s);
        s.has = SAMPLE_HAS_ANALOG;
        s.voltage_mv = 51234;
        s.ncells = 2;
        s.cell_mv[0] = 3300;
        s.cell_mv[1] = 3301;
        s.alarms = 0xFFFFFFFFu; /* stale flags from an older answer must go */
        s.state = 0xFFFFFFFFu;
        before = s;
        int err = s42_decode_alarm(v, &f, &s, &d);
        expect_decoded(err, &d, c->name);
        if (c->exact) {
            EXPECT_EQ(s.alarms, c->alarms, "%s: alarms", c->name);
            EXPECT_EQ(s.protection, c->protection, "%s: protection", c->name);
        } else {
            EXPECT_EQ(s.alarms & c->alarms, c->alarms, "%s: alarms include", c->name);
            EXPECT_EQ(s.protection & c->protection, c->protection, "%s: protection", c->name);
        }
        EXPECT_EQ(s.state, c->state, "%s: state", c->name);
        EXPECT_EQ(s.balancing, c->balancing, "%s: balancing", c->name);
        EXPECT_TRUE((s.has & SAMPLE_HAS_ALARMS) && (s.has & SAMPLE_HAS_ANALOG), "%s: has", c->name);
        for (size_t k = 0; k < c->nraw; k++) {
            size_t idx = c->raw_idx ? (size_t)c->raw_idx[k] : k;
            EXPECT_TRUE(idx < s.nraw_status, "%s: raw word %zu present", c->name, idx);
            EXPECT_EQ(s.raw_status[idx], c->raw[k], "%s: raw_status[%zu]", c->name, idx);
        }
        if (c->exact)
            EXPECT_EQ(s.nraw_status, c->nraw, "%s: nraw_status", c->name);
        EXPECT_EQ(s.voltage_mv, before.voltage_mv, "%s: analog voltage kept", c->name);
        EXPECT_EQ(s.ncells, before.ncells, "%s: analog cells kept", c->name);
        EXPECT_EQ(s.cell_mv[1], before.cell_mv[1], "%s: analog cell kept", c->name);
    }
    /* Daren has no 0x44 (§3: alarms come from the 0x42 status words) */
    char buf[FRAME_CAP];
    struct s42_frame f;
    struct sample s;
    const struct alarm_case *pace = alarm_case("pace 0x44 15S");
    size_t len = wrap("daren", 1, 0, pace->info, pace->len, buf);
    parse_ok(buf, len, &f, "daren 0x44");
    memset(&s, A5, sizeof s);
    assert_int_equal(s42_decode_alarm(variant("daren"), &f, &s, NULL), -S42_E_UNSUPPORTED);
    assert_true(untouched(&s, sizeof s));
}

/* ---- identity (§3) ---- */

/* Found by fuzz_s42_info: s42_decode_identity with a command that is not an identity command
 * (0x42) walked the analog layout with no sample to write to: a NULL dereference. Now every
 * non-identity command is refused, for every variant, and the identity is left alone. */
static void test_identity_of_other_command(void **state)
{
    (void)state;
    static const uint8_t info[] = {0x00, 0x04, 0x00, 0x00, 0x00, 0x0F, 0x00, 0x00, 0x00, 0x00};
    for (size_t i = 0; s42_variant_at(i); i++) {
        const struct s42_variant *v = s42_variant_at(i);
        char frame[S42_MAX_FRAME + 2];
        int n = s42_build(frame, sizeof frame, s42_variant_ver(v), 1, s42_variant_cid1(v), 0, info,
                          sizeof info);
        assert_true(n > 0);
        struct s42_frame f;
        assert_int_equal(s42_parse(frame, (size_t)n, &f, NULL), 0);
        const uint8_t others[] = {S42_CID2_ANALOG, S42_CID2_ALARM, 0x00, 0xFF};
        for (size_t k = 0; k < sizeof others; k++) {
            struct s42_identity id, before;
            s42_identity_init(&id);
            before = id;
            assert_int_equal(s42_decode_identity(v, others[k], &f, &id, NULL), -S42_E_UNSUPPORTED);
            assert_memory_equal(&id, &before, sizeof id);
        }
    }
}

static void test_hand_built_identity(void **state)
{
    (void)state;
    for (size_t i = 0; i < n_identity_cases; i++) {
        const struct identity_case *c = identity_cases[i];
        struct s42_frame f;
        struct s42_diag d = {-1, 0, 0};
        const struct s42_variant *v =
            frame_checked(c->variant, c->adr, c->info, c->len, &f, c->name);
        struct s42_identity id;
        s42_identity_init(&id);
        int err = s42_decode_identity(v, c->cid2, &f, &id, &d);
        expect_decoded(err, &d, c->name);
        EXPECT_STR(id.hardware, c->hardware, "%s: hardware", c->name);
        EXPECT_STR(id.product, c->product, "%s: product", c->name);
        EXPECT_STR(id.project, c->project, "%s: project", c->name);
        EXPECT_STR(id.manufacturer, c->manufacturer, "%s: manufacturer", c->name);
        EXPECT_STR(id.software, c->software, "%s: software", c->name);
        EXPECT_STR(id.serial, c->serial, "%s: serial", c->name);
        EXPECT_EQ(id.protocol_version, c->protocol_version, "%s: protocol_version", c->name);
    }
}

static void doc_frame(size_t i, char *buf, size_t *len, struct s42_frame *f)
{
    snprintf(buf, FRAME_CAP, "%s\r", doc_frames[i]);
    *len = strlen(buf);
    parse_ok(buf, *len, f, doc_frames[i]);
}

static void test_documented_frames(void **state)
{
    (void)state;
    char buf[FRAME_CAP];
    size_t len;
    struct s42_frame f;
    struct s42_identity id;

    /* Seplos/Pylontech 0x4F: the empty answer means "the version is the answer's VER" */
    doc_frame(0, buf, &len, &f);
    assert_int_equal(s42_check(&f, variant("seplos"), 0, NULL), 0);
    s42_identity_init(&id);
    assert_int_equal(s42_decode_identity(variant("seplos"), S42_CID2_PROTOCOL, &f, &id, NULL), 0);
    assert_int_equal(id.protocol_version, 0x20);

    /* Seplos answers 0x92/0x93 with RTN 04; PACE MOSFET write failed with RTN 09 */
    doc_frame(1, buf, &len, &f);
    assert_int_equal(s42_check(&f, variant("seplos"), 0, NULL), -S42_E_RTN_CID2);
    doc_frame(2, buf, &len, &f);
    assert_int_equal(s42_check(&f, variant("pace"), 0, NULL), -S42_E_RTN_OPERATION);

    /* Pylontech 0x92: validated only; INFO[1:] = 28.4 V / 23.2 V / 55.5 A / -55.5 A, 0xC0 */
    doc_frame(3, buf, &len, &f);
    assert_int_equal(s42_check(&f, variant("pylontech"), 2, NULL), 0);
    const uint8_t mgmt[] = {0x02, BE16(28400), BE16(23200), BE16(555), 0xFD, 0xD5, 0xC0};
    assert_int_equal(f.info_len, sizeof mgmt);
    assert_memory_equal(f.info, mgmt, sizeof mgmt);

    /* PACE 0xC1 hardware version, §3: e.g. `P16S100A-1812-1.00` (20 ASCII bytes, NUL-padded) */
    doc_frame(5, buf, &len, &f);
    assert_int_equal(s42_check(&f, variant("pace"), 1, NULL), 0);
    s42_identity_init(&id);
    assert_int_equal(s42_decode_identity(variant("pace"), S42_CID2_PACE_HWVER, &f, &id, NULL), 0);
    assert_string_equal(id.hardware, "P16S100A-1812-1.00");
}

/* Daren design capacity, Pylontech SOH/design, PACE SOC/SOH when they cannot be derived. */
static void test_absent_fields_are_absent_never_zero(void **state)
{
    (void)state;
    struct s42_frame f;
    struct sample s;
    decode_analog_case(analog_case("daren 0x42 15S"), &f, &s);
    assert_int_equal(s.design_mah, SAMPLE_ABSENT);
    decode_analog_case(analog_case("pylontech 0x42 16S"), &f, &s);
    assert_int_equal(s.soh_cpct, SAMPLE_ABSENT);
    assert_int_equal(s.design_mah, SAMPLE_ABSENT);

    /* PACE sends no SOC/SOH: with full = 0 and design = 0 there is nothing to derive them from */
    const struct analog_case *pace = analog_case("pace 0x42 8S");
    uint8_t info[S42_MAX_INFO];
    assert_true(pace->len <= sizeof info);
    memcpy(info, pace->info, pace->len);
    size_t full_at = pace->len - 6, design_at = pace->len - 2;
    info[full_at] = info[full_at + 1] = 0;
    info[design_at] = info[design_at + 1] = 0;
    char buf[FRAME_CAP];
    size_t len = wrap("pace", 1, 0, info, pace->len, buf);
    parse_ok(buf, len, &f, "pace full=0");
    assert_int_equal(s42_decode_analog(variant("pace"), &f, &s, NULL), 0);
    assert_int_equal(s.full_mah, 0);
    assert_int_equal(s.design_mah, 0);
    assert_int_equal(s.soc_cpct, SAMPLE_ABSENT);
    assert_int_equal(s.soh_cpct, SAMPLE_ABSENT);
    assert_int_equal(s.remaining_mah, 0); /* a real zero stays a zero */
}

/* ================================================================================================
 * 3. SERVICE42.md §7 pitfalls about a variant's layout and units, one test each (the framing
 *    ones, 7.4-7.6, are in test_s42_framing)
 * ============================================================================================= */

/* 7.1: PACE subtracts 2730, Pylontech/Seplos 2731, Daren sends plain signed 0.1 °C. */
static void test_pitfall_7_1_temperature_offsets(void **state)
{
    (void)state;
    static const struct {
        enum kind k;
        uint16_t raw;
        int32_t dc;
    } cases[] = {
        {K_PACE, 2981, 251},    {K_PACE, 2730, 0},       {K_PACE, 2630, -100},
        {K_PACE, 2971, 241},    {K_PYLON, 2981, 250},    {K_PYLON, 2731, 0},
        {K_PYLON, 2631, -100},  {K_PYLON, 2730, -1},     {K_SEPLOS, 2981, 250},
        {K_SEPLOS, 2731, 0},    {K_SEPLOS, 2631, -100},  {K_DAREN, 250, 250},
        {K_DAREN, 0xFFC9, -55}, {K_DAREN, 0xFF9C, -100}, {K_DAREN, 0x8000, -32768},
        {K_DAREN, 2981, 2981}, /* no Kelvin offset */
    };
    for (size_t i = 0; i < N_(cases); i++) {
        struct wire_pack w;
        struct sample s;
        char ctx[96];
        default_pack(cases[i].k, 16, 6, &w);
        for (size_t t = 0; t < w.n; t++)
            w.temp[t] = cases[i].raw;
        w.env = w.avg = w.mos = cases[i].raw;
        snprintf(ctx, sizeof ctx, "%s raw %u", kind_name[cases[i].k], cases[i].raw);
        decode_pack(cases[i].k, &w, &s, ctx);
        for (size_t t = 0; t < s.ntemps; t++)
            EXPECT_EQ(s.temp_dc[t], cases[i].dc, "%s: temperature %zu", ctx, t);
    }
    /* the same wire value is 0.1 °C apart between PACE and Pylontech/Seplos */
    struct wire_pack w;
    struct sample pace, pylon;
    default_pack(K_PACE, 16, 6, &w);
    decode_pack(K_PACE, &w, &pace, "pace");
    default_pack(K_PYLON, 16, 6, &w);
    for (size_t t = 0; t < w.n; t++)
        w.temp[t] = wire_temp(K_PACE, (int32_t)(200 + 10 * t));
    decode_pack(K_PYLON, &w, &pylon, "pylontech");
    for (size_t t = 0; t < 6; t++)
        assert_int_equal(pace.temp_dc[t] - pylon.temp_dc[t], 1);
}

/* 7.2: two's-complement s16, including 0x8000..0x9FFF (missed by a bit-6 test of the ASCII char)
 * and 0xFFFF (-1 LSB, where -(65535 - x) gives 0). */
static void test_pitfall_7_2_current_sign(void **state)
{
    (void)state;
    static const uint16_t raws[] = {0x0000, 0x0001, 0x7FFF, 0x8000, 0x8001, 0x9000,
                                    0x9FFF, 0xA000, 0xBFFF, 0xFF1F, 0xFFFE, 0xFFFF};
    for (enum kind k = 0; k < K__N; k++) {
        for (size_t i = 0; i < N_(raws); i++) {
            struct wire_pack w;
            struct sample s;
            char ctx[96];
            default_pack(k, 16, 6, &w);
            w.current = raws[i];
            snprintf(ctx, sizeof ctx, "%s current 0x%04X", kind_name[k], raws[i]);
            decode_pack(k, &w, &s, ctx);
            EXPECT_EQ(s.current_ma, (int32_t)(int16_t)raws[i] * units[k].cur_ma, "%s", ctx);
            if (raws[i] >= 0x8000)
                EXPECT_TRUE(s.current_ma < 0, "%s: discharging", ctx);
        }
    }
    /* the worked numbers */
    struct wire_pack w;
    struct sample s;
    default_pack(K_PACE, 16, 6, &w);
    w.current = 0x9000;
    decode_pack(K_PACE, &w, &s, "pace 0x9000");
    assert_int_equal(s.current_ma, -286720); /* -28672 x 10 mA */
    w.current = 0xFFFF;
    decode_pack(K_PACE, &w, &s, "pace 0xFFFF");
    assert_int_equal(s.current_ma, -10);
    w.current = 0x8000;
    decode_pack(K_PACE, &w, &s, "pace 0x8000");
    assert_int_equal(s.current_ma, -327680);
    default_pack(K_PYLON, 16, 6, &w);
    w.current = 0x8000;
    decode_pack(K_PYLON, &w, &s, "pylontech 0x8000");
    assert_int_equal(s.current_ma, -3276800); /* 100 mA units */
}

/* 7.3: walk by M, N (and P/UDI), never by fixed offsets. */
static void test_pitfall_7_3_counts_not_offsets(void **state)
{
    (void)state;
    static const uint8_t ms[] = {16, 15, 8};
    static const uint8_t ns[] = {6, 4, 8};
    size_t combos = 0;
    for (enum kind k = 0; k < K__N; k++) {
        for (size_t a = 0; a < N_(ms); a++) {
            for (size_t b = 0; b < N_(ns); b++) {
                for (uint8_t udi = 2; udi <= (k == K_PYLON ? 4 : 2); udi = (uint8_t)(udi + 2)) {
                    struct wire_pack w;
                    struct sample s;
                    char ctx[96];
                    default_pack(k, ms[a], ns[b], &w);
                    w.udi = udi;
                    w.remaining24 = 123456;
                    w.full24 = 234567;
                    snprintf(ctx, sizeof ctx, "%s M=%u N=%u UDI=%u", kind_name[k], ms[a], ns[b],
                             udi);
                    decode_pack(k, &w, &s, ctx);
                    expect_pack(k, &w, &s, ctx);
                    combos++;
                }
            }
        }
    }
    assert_int_equal(combos, K__N * 9 + 9); /* Pylontech twice: UDI 2 and 4 */
}

/* 7.7: the Daren command group is fixed 01, whatever the address. */
static void test_pitfall_7_7_daren_command_group(void **state)
{
    (void)state;
    char buf[FRAME_CAP];
    struct s42_frame f;
    for (unsigned adr = 1; adr <= 15; adr++) {
        int n = s42_request(variant("daren"), S42_CID2_ANALOG, (uint8_t)adr, buf, sizeof buf);
        assert_int_equal(n, 20);
        parse_ok(buf, (size_t)n, &f, "daren request");
        assert_int_equal(f.adr, adr);
        assert_int_equal(f.info_len, 1);
        assert_int_equal(f.info[0], 0x01);
    }
}

/* 7.8: the same wire numbers mean different things per family. */
static void test_pitfall_7_8_units_differ(void **state)
{
    (void)state;
    static const struct {
        enum kind k;
        int32_t mv, ma, rem, full, soc;
        enum sample_temp_role fifth, sixth;
    } want[] = {
        /* voltage 0x14C0, current 0x0064, remaining 0x1388, full 0x2710, SOC word 0x0335 */
        {K_DAREN, 53120, 1000, 50000, 100000, 821, RC, RC},
        {K_PACE, 5312, 1000, 50000, 100000, 5000, RM, RA},
        {K_PYLON, 5312, 10000, 5000, 10000, 5000, RC, RC},
        {K_SEPLOS, 53120, 1000, 50000, 100000, 8210, RA, RM},
    };
    for (size_t i = 0; i < N_(want); i++) {
        enum kind k = want[i].k;
        struct wire_pack w;
        struct sample s;
        default_pack(k, 16, 6, &w);
        w.voltage = 0x14C0;
        w.current = 0x0064;
        w.remaining = 0x1388;
        w.full = 0x2710;
        w.soc = 0x0335;
        decode_pack(k, &w, &s, kind_name[k]);
        EXPECT_EQ(s.voltage_mv, want[i].mv, "%s: voltage", kind_name[k]);
        EXPECT_EQ(s.current_ma, want[i].ma, "%s: current", kind_name[k]);
        EXPECT_EQ(s.remaining_mah, want[i].rem, "%s: remaining", kind_name[k]);
        EXPECT_EQ(s.full_mah, want[i].full, "%s: full", kind_name[k]);
        EXPECT_EQ(s.soc_cpct, want[i].soc, "%s: soc", kind_name[k]);
        /* the fifth and sixth counted sensors: PACE MOS then ENV, Seplos ENV then MOS */
        size_t off = k == K_DAREN ? 3 : 0;
        EXPECT_EQ(s.temp_role[off + 4], want[i].fifth, "%s: fifth sensor role", kind_name[k]);
        EXPECT_EQ(s.temp_role[off + 5], want[i].sixth, "%s: sixth sensor role", kind_name[k]);
    }
}

/* ================================================================================================
 * 4. Encode -> build -> parse -> decode round trips
 * ============================================================================================= */

enum derive { SENT, DERIVED, NONE };

static const struct rt_case {
    const char *variant;
    int32_t volt_tol, cur_tol, cap_tol, soc_tol, soh_tol; /* half a wire unit */
    enum derive soc, soh, design;
    uint8_t ntemps;
    int32_t temp[8];
    uint8_t role[8];
} rt_cases[] = {
    {"daren",
     5,
     5,
     5,
     0,
     50,
     SENT,
     SENT,
     NONE,
     7,
     {-55, 260, 305, 251, 252, 253, 254},
     {RA, RV, RM, RC, RC, RC, RC}},
    {"pace",
     0,
     5,
     5,
     0,
     0,
     DERIVED,
     DERIVED,
     SENT,
     6,
     {251, 252, 253, 254, 305, -55},
     {RC, RC, RC, RC, RM, RA}},
    {"pylontech",
     0,
     50,
     0,
     0,
     0,
     DERIVED,
     NONE,
     NONE,
     6,
     {260, 251, 252, 253, 254, -55},
     {RV, RC, RC, RC, RC, RC}},
    {"seplos",
     5,
     5,
     5,
     5,
     5,
     SENT,
     SENT,
     SENT,
     6,
     {251, 252, 253, 254, -55, 305},
     {RC, RC, RC, RC, RA, RM}},
};

static void fill_sample(const struct rt_case *c, struct sample *s)
{
    sample_init(s);
    s->address = 1;
    s->ncells = 16;
    for (size_t i = 0; i < 16; i++)
        s->cell_mv[i] = 3301 + (int32_t)((i * 7) % 16);
    s->ntemps = c->ntemps;
    for (size_t i = 0; i < c->ntemps; i++) {
        s->temp_dc[i] = c->temp[i];
        s->temp_role[i] = c->role[i];
    }
    s->voltage_mv = 53127;
    s->current_ma = -2254;
    s->remaining_mah = 48123;
    s->full_mah = 96543;
    s->design_mah = 100000;
    s->cycles = 321;
    s->soc_cpct = 4985;
    s->soh_cpct = 9654;
    sample_finish(s);
}

static void near(const char *ctx, const char *what, int32_t got, int32_t want, int32_t tol)
{
    EXPECT_TRUE(got != SAMPLE_ABSENT, "%s: %s absent", ctx, what);
    long long diff = (long long)got - want;
    EXPECT_TRUE(diff >= -tol && diff <= tol, "%s: %s = %d, want %d +- %d", ctx, what, got, want,
                tol);
}

static void round_trip(const struct s42_variant *v, const struct sample *in, struct sample *out,
                       struct bytes *info)
{
    char buf[FRAME_CAP];
    struct s42_frame f;
    struct s42_diag d = {-1, 0, 0};
    int n = s42_encode_analog(v, in, info->b, sizeof info->b);
    EXPECT_TRUE(n > 0, "%s: s42_encode_analog = %d", s42_variant_name(v), n);
    info->n = (size_t)n;
    int len = s42_build(buf, sizeof buf, s42_variant_ver(v), in->address, s42_variant_cid1(v), 0,
                        info->b, info->n);
    assert_true(len > 0);
    parse_ok(buf, (size_t)len, &f, s42_variant_name(v));
    assert_int_equal(s42_check(&f, v, in->address, NULL), 0);
    assert_true(s42_variant_guess(&f) == v);
    int err = s42_decode_analog(v, &f, out, &d);
    expect_decoded(err, &d, s42_variant_name(v));
}

static void test_round_trip(void **state)
{
    (void)state;
    static struct bytes info;
    for (size_t i = 0; i < N_(rt_cases); i++) {
        const struct rt_case *c = &rt_cases[i];
        const struct s42_variant *v = variant(c->variant);
        struct sample in, out;
        fill_sample(c, &in);
        if (strcmp(c->variant, "daren") == 0) { /* Daren carries its status words in 0x42 */
            in.state = SAMPLE_STATE_CHG_FET | SAMPLE_STATE_DSG_FET | SAMPLE_STATE_DISCHARGING;
            in.alarms = SAMPLE_ALARM_SOC_LOW | SAMPLE_ALARM_CELL_UV;
            in.protection = SAMPLE_PROT_CELL_OV | SAMPLE_PROT_SHORT;
            in.balancing = 0x00018003u; /* cells 1, 2, 16, 17 */
        }
        round_trip(v, &in, &out, &info);
        const char *ctx = c->variant;
        assert_int_equal(out.address, 1);
        assert_int_equal(out.ncells, 16);
        for (size_t k = 0; k < 16; k++)
            EXPECT_EQ(out.cell_mv[k], in.cell_mv[k], "%s: cell %zu", ctx, k + 1);
        EXPECT_EQ(out.cell_min_mv, in.cell_min_mv, "%s: cell_min", ctx);
        EXPECT_EQ(out.cell_max_mv, in.cell_max_mv, "%s: cell_max", ctx);
        EXPECT_EQ(out.ntemps, in.ntemps, "%s: ntemps", ctx);
        for (size_t k = 0; k < in.ntemps; k++) {
            EXPECT_EQ(out.temp_dc[k], in.temp_dc[k], "%s: temperature %zu", ctx, k);
            EXPECT_EQ(out.temp_role[k], in.temp_role[k], "%s: role %zu", ctx, k);
        }
        near(ctx, "voltage", out.voltage_mv, in.voltage_mv, c->volt_tol);
        near(ctx, "current", out.current_ma, in.current_ma, c->cur_tol);
        near(ctx, "remaining", out.remaining_mah, in.remaining_mah, c->cap_tol);
        near(ctx, "full", out.full_mah, in.full_mah, c->cap_tol);
        EXPECT_EQ(out.cycles, in.cycles, "%s: cycles", ctx);
        if (c->design == SENT)
            near(ctx, "design", out.design_mah, in.design_mah, c->cap_tol);
        else
            EXPECT_EQ(out.design_mah, SAMPLE_ABSENT, "%s: design", ctx);
        if (c->soc == SENT)
            near(ctx, "soc", out.soc_cpct, in.soc_cpct, c->soc_tol);
        else
            EXPECT_EQ(out.soc_cpct, ratio_cpct(out.remaining_mah, out.full_mah), "%s: soc", ctx);
        if (c->soh == SENT)
            near(ctx, "soh", out.soh_cpct, in.soh_cpct, c->soh_tol);
        else if (c->soh == DERIVED)
            EXPECT_EQ(out.soh_cpct, ratio_cpct(out.full_mah, out.design_mah), "%s: soh", ctx);
        else
            EXPECT_EQ(out.soh_cpct, SAMPLE_ABSENT, "%s: soh", ctx);
        if (strcmp(c->variant, "daren") == 0) {
            EXPECT_EQ(out.state, in.state, "%s: state", ctx);
            EXPECT_EQ(out.alarms, in.alarms, "%s: alarms", ctx);
            EXPECT_EQ(out.protection, in.protection, "%s: protection", ctx);
            EXPECT_EQ(out.balancing, in.balancing, "%s: balancing", ctx);
        }
    }
}

/* Pylontech: a pack above 65.535 Ah needs the UDI 4 extension, a small one does not. */
static void test_round_trip_pylontech_capacity_extension(void **state)
{
    (void)state;
    static struct bytes info;
    const struct s42_variant *v = variant("pylontech");
    struct sample in, out;
    fill_sample(&rt_cases[2], &in);
    in.remaining_mah = 72345;
    in.full_mah = 100000;
    round_trip(v, &in, &out, &info);
    size_t udi_at = 2 + 1 + 2u * in.ncells + 1 + 2u * in.ntemps + 6;
    assert_int_equal(info.n, udi_at + 1 + 4 + 6);
    assert_int_equal(info.b[udi_at], 4);
    assert_int_equal(info.b[udi_at - 2], 0xFF); /* remaining u16 */
    assert_int_equal(info.b[udi_at - 1], 0xFF);
    assert_int_equal(info.b[udi_at + 1], 0xFF); /* total u16 */
    assert_int_equal(info.b[udi_at + 2], 0xFF);
    const uint8_t u24[] = {BE24(72345), BE24(100000)};
    assert_memory_equal(info.b + udi_at + 5, u24, sizeof u24);
    assert_int_equal(out.remaining_mah, 72345);
    assert_int_equal(out.full_mah, 100000);
    assert_int_equal(out.soc_cpct, 7235);

    in.remaining_mah = 40000;
    in.full_mah = 50000;
    round_trip(v, &in, &out, &info);
    assert_int_equal(info.n, udi_at + 1 + 4);
    assert_int_equal(info.b[udi_at], 2);
    assert_int_equal(out.remaining_mah, 40000);
    assert_int_equal(out.full_mah, 50000);
    assert_int_equal(out.soc_cpct, 8000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* 1. vectors */
        cmocka_unit_test(test_vectors),
        /* 2. hand-built frames */
        cmocka_unit_test(test_hand_built_analog),
        cmocka_unit_test(test_hand_built_alarm),
        cmocka_unit_test(test_identity_of_other_command),
        cmocka_unit_test(test_hand_built_identity),
        cmocka_unit_test(test_documented_frames),
        cmocka_unit_test(test_absent_fields_are_absent_never_zero),
        /* 3. §7 pitfalls of the layouts */
        cmocka_unit_test(test_pitfall_7_1_temperature_offsets),
        cmocka_unit_test(test_pitfall_7_2_current_sign),
        cmocka_unit_test(test_pitfall_7_3_counts_not_offsets),
        cmocka_unit_test(test_pitfall_7_7_daren_command_group),
        cmocka_unit_test(test_pitfall_7_8_units_differ),
        /* 4. round trips */
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_round_trip_pylontech_capacity_extension),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
