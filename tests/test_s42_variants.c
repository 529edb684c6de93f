/* test_s42: the Service 42 codec against the protocol truth: tests/data/vectors.tsv (read
 * at run time) and the layouts of docs/reference/SERVICE42.md, with hand-built frames for the variants that have
 * no public frame, every single-character corruption and truncation of every frame, one test per §7
 * pitfall, the §1 worked examples, and encode/decode round trips.
 *
 * Frames under test are built here byte by byte from SERVICE42.md, never with s42_encode_*, so
 * an error shared by the encoder and the decoder cannot hide. */
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
#include "sample.h"

#ifndef BMSFLEET_VECTORS
#error "BMSFLEET_VECTORS (path of vectors.tsv) must be defined"
#endif

/* ================================================================================================
 * 0. Helpers
 * ============================================================================================= */

#define N_(a)     (sizeof(a) / sizeof((a)[0]))
#define FRAME_CAP (S42_MAX_FRAME + 64)
#define A5        0xA5 /* fill pattern: a rejected call must leave its output exactly like this */

/* Big-endian bytes for hand-written INFO arrays. */
#define BE16(x) (uint8_t)(((unsigned)(x) >> 8) & 0xFFu), (uint8_t)((unsigned)(x)&0xFFu)
#define BE24(x) (uint8_t)(((unsigned)(x) >> 16) & 0xFFu), BE16(x)
#define ZERO4   0, 0, 0, 0
#define ZERO8   ZERO4, ZERO4

/* cmocka's asserts cannot say where in a loop they failed: these print a context first. */
#define EXPECT_EQ(got, want, ...)                                                                  \
    do {                                                                                           \
        long long got_ = (long long)(got), want_ = (long long)(want);                              \
        if (got_ != want_) {                                                                       \
            print_error(__VA_ARGS__);                                                              \
            print_error(": got %lld (0x%llX), want %lld (0x%llX)\n", got_,                         \
                        (unsigned long long)got_, want_, (unsigned long long)want_);               \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

#define EXPECT_TRUE(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            print_error(__VA_ARGS__);                                                              \
            print_error(": expected %s\n", #cond);                                                 \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

#define EXPECT_STR(got, want, ...)                                                                 \
    do {                                                                                           \
        if (strcmp((got), (want)) != 0) {                                                          \
            print_error(__VA_ARGS__);                                                              \
            print_error(": got \"%s\", want \"%s\"\n", (got), (want));                             \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

static const struct s42_variant *variant(const char *name)
{
    const struct s42_variant *v = s42_variant_find(name);
    if (v == NULL)
        fail_msg("no protocol variant '%s'", name);
    return v;
}

static int untouched(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        if (b[i] != A5)
            return 0;
    }
    return 1;
}

/* A frame for messages: '\r' shown as "\r". */
static const char *show(const char *frame, size_t len, char *buf, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < len && k + 5 < cap; i++) {
        unsigned char c = (unsigned char)frame[i];
        if (c == '\r') {
            buf[k++] = '\\';
            buf[k++] = 'r';
        } else if (c < 0x20 || c >= 0x7F) {
            k += (size_t)snprintf(buf + k, cap - k, "\\x%02X", c);
        } else {
            buf[k++] = (char)c;
        }
    }
    buf[k] = '\0';
    return buf;
}

/* §1 once more, written independently of src/s42.c (the "reference C" of SERVICE42.md §1). */
static uint16_t ref_length_field(unsigned lenid)
{
    lenid &= 0x0FFFu;
    unsigned s = (lenid & 0xFu) + ((lenid >> 4) & 0xFu) + ((lenid >> 8) & 0xFu);
    return (uint16_t)((((~s + 1u) & 0xFu) << 12) | lenid);
}

static uint16_t ref_checksum(const char *p, size_t n)
{
    uint32_t s = 0;
    while (n--)
        s += (uint8_t)*p++;
    return (uint16_t)((~s + 1u) & 0xFFFFu);
}

static int is_upper_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static unsigned hexv(char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'A' + 10);
}

static unsigned hex_at(const char *p, size_t ndig)
{
    unsigned v = 0;
    for (size_t i = 0; i < ndig; i++)
        v = (v << 4) | hexv(p[i]);
    return v;
}

static void put_hex16(char *p, unsigned v)
{
    static const char dig[] = "0123456789ABCDEF";
    for (int i = 3; i >= 0; i--, v >>= 4)
        p[i] = dig[v & 0xFu];
}

/* Wraps INFO into a complete frame of a variant (cid2 = the RTN for a response). */
static size_t wrap(const char *vname, uint8_t adr, uint8_t cid2, const uint8_t *info, size_t n,
                   char *buf)
{
    const struct s42_variant *v = variant(vname);
    int len =
        s42_build(buf, FRAME_CAP, s42_variant_ver(v), adr, s42_variant_cid1(v), cid2, info, n);
    EXPECT_TRUE(len > 0, "s42_build(%s, %zu INFO bytes) = %d", vname, n, len);
    return (size_t)len;
}

static void parse_ok(const char *buf, size_t len, struct s42_frame *f, const char *what)
{
    struct s42_diag d = {-1, 0, 0};
    int err = s42_parse(buf, len, f, &d);
    if (err) {
        char msg[200], shown[FRAME_CAP * 2];
        print_error("%s: s42_parse(\"%s\") failed: %s\n", what, show(buf, len, shown, sizeof shown),
                    s42_describe(err, &d, msg, sizeof msg));
        fail();
    }
}

static int32_t ratio_cpct(int32_t num, int32_t den) /* derived SOC/SOH, rounded half up */
{
    if (num == SAMPLE_ABSENT || den == SAMPLE_ABSENT || den <= 0)
        return SAMPLE_ABSENT;
    return (int32_t)(((int64_t)num * 10000 + den / 2) / den);
}

/* ================================================================================================
 * 1. vectors.tsv
 * ============================================================================================= */

#define VEC_MAX_KV 64
#define VEC_LINE   16384

struct kv {
    char key[48];
    char val[512];
};

struct vrow {
    unsigned line;
    char protocol[32];
    char direction[16];
    char cid2[16];
    char frame[FRAME_CAP];
    struct kv kv[VEC_MAX_KV];
    size_t nkv;
};

#define ROW_FAIL(r, ...)                                                                           \
    do {                                                                                           \
        print_error("vectors.tsv:%u: ", (r)->line);                                                \
        print_error(__VA_ARGS__);                                                                  \
        print_error("\n");                                                                         \
        fail();                                                                                    \
    } while (0)

static void copy_col(char *dst, size_t cap, const char *src, const struct vrow *r, const char *what)
{
    size_t n = strlen(src);
    if (n >= cap || (n == 0 && strcmp(what, "expected") != 0))
        ROW_FAIL(r, "bad %s column '%s'", what, src);
    memcpy(dst, src, n + 1);
}

/* protocol TAB direction TAB cid2 TAB frame TAB key=value;key=value */
static void split_row(char *line, unsigned lineno, struct vrow *r)
{
    char *col[5];
    size_t ncol = 0;
    r->line = lineno;
    r->nkv = 0;
    for (char *p = line;;) {
        if (ncol == N_(col))
            ROW_FAIL(r, "%s", "more than 5 columns");
        col[ncol++] = p;
        char *tab = strchr(p, '\t');
        if (tab == NULL)
            break;
        *tab = '\0';
        p = tab + 1;
    }
    if (ncol != N_(col))
        ROW_FAIL(r, "%zu columns, want 5", ncol);
    copy_col(r->protocol, sizeof r->protocol, col[0], r, "protocol");
    copy_col(r->direction, sizeof r->direction, col[1], r, "direction");
    copy_col(r->cid2, sizeof r->cid2, col[2], r, "cid2");
    copy_col(r->frame, sizeof r->frame, col[3], r, "frame");
    for (char *e = col[4];;) {
        char *semi = strchr(e, ';');
        if (semi)
            *semi = '\0';
        if (*e) {
            char *eq = strchr(e, '=');
            if (eq == NULL || eq == e || eq[1] == '\0')
                ROW_FAIL(r, "expected item '%s' is not key=value", e);
            *eq = '\0';
            if (r->nkv == VEC_MAX_KV)
                ROW_FAIL(r, "%s", "too many keys");
            for (size_t i = 0; i < r->nkv; i++) {
                if (strcmp(r->kv[i].key, e) == 0)
                    ROW_FAIL(r, "key '%s' given twice", e);
            }
            struct kv *p = &r->kv[r->nkv++];
            copy_col(p->key, sizeof p->key, e, r, "key");
            copy_col(p->val, sizeof p->val, eq + 1, r, "value");
        }
        if (semi == NULL)
            break;
        e = semi + 1;
    }
}

typedef void (*row_fn)(const struct vrow *r, void *ctx);

/* Calls fn for every data row (not '#', not blank); returns how many data rows the file has. */
static size_t for_each_vector(row_fn fn, void *ctx)
{
    static char line[VEC_LINE]; /* file-scope storage: a row is large; tests are single-threaded */
    static struct vrow row;
    FILE *fp = fopen(BMSFLEET_VECTORS, "r");
    if (fp == NULL)
        fail_msg("cannot open %s: %s", BMSFLEET_VECTORS, strerror(errno));
    size_t rows = 0;
    unsigned lineno = 0;
    while (fgets(line, sizeof line, fp)) {
        lineno++;
        size_t n = strlen(line);
        if (n == sizeof line - 1 && line[n - 1] != '\n') {
            fclose(fp);
            fail_msg("vectors.tsv:%u: line longer than %zu", lineno, sizeof line);
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        size_t lead = strspn(line, " \t");
        if (line[lead] == '\0' || line[0] == '#')
            continue;
        rows++;
        split_row(line, lineno, &row);
        fn(&row, ctx);
    }
    fclose(fp);
    return rows;
}

/* The row's frame with the EOI the TSV leaves out; returns its length. */
static size_t row_frame(const struct vrow *r, char *buf, size_t cap)
{
    size_t n = strlen(r->frame);
    if (n + 2 > cap)
        ROW_FAIL(r, "%s", "frame too long");
    memcpy(buf, r->frame, n);
    buf[n] = '\r';
    buf[n + 1] = '\0';
    return n + 1;
}

static long row_int(const struct vrow *r, const struct kv *p, long lo, long hi)
{
    const char *s = p->val;
    int base = (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) ? 16 : 10;
    char *end;
    errno = 0;
    long v = strtol(s, &end, base);
    if (errno || end == s || *end != '\0' || v < lo || v > hi)
        ROW_FAIL(r, "%s=%s: not an integer in [%ld, %ld]", p->key, s, lo, hi);
    return v;
}

static uint8_t row_cid2(const struct vrow *r)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(r->cid2, &end, 16);
    if (errno || *end != '\0' || v > 0xFF)
        ROW_FAIL(r, "cid2 '%s' is not a hex byte", r->cid2);
    return (uint8_t)v;
}

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
 * 2. Hand-built frames for the variants with no public frame (SERVICE42.md §2, §3)
 * ============================================================================================= */

/* clang-format off */
/* ---- Pylontech 0x42 (§2c): INFOFLAG, ADR, M + cells mV, N + temps 0.1 K − 2731 (board first),
 * current s16 100 mA, voltage mV, remaining mAh, UDI, total mAh, cycles [, u24 rem, u24 total] */
static const uint8_t pylon_42_16s[] = {
    0x11,                                                     /* INFOFLAG */
    0x02,                                                     /* ADR */
    16,                                                       /* M */
    BE16(3301), BE16(3302), BE16(3303), BE16(3304), BE16(3305), BE16(3306),
    BE16(3290), /* cell 7: min */
    BE16(3308), BE16(3309), BE16(3310), BE16(3311),
    BE16(3399), /* cell 12: max */
    BE16(3313), BE16(3314), BE16(3315), BE16(3316),
    6,          /* N */
    BE16(2981), /* BMS board: 298.1 K - 2731 = 25.0 °C */
    BE16(2971), /* 24.0 */
    BE16(2961), /* 23.0 */
    BE16(2991), /* 26.0 */
    BE16(3001), /* 27.0 */
    BE16(2631), /* -10.0 */
    0xFF, 0xE2, /* current -30 x 100 mA = -3.0 A */
    BE16(52000), /* 52.000 V */
    BE16(37000), /* remaining 37.000 Ah */
    2,           /* UDI: no extension */
    BE16(50000), /* total 50.000 Ah */
    BE16(123),   /* cycles */
};

static const uint8_t pylon_42_udi4_15s[] = {
    0x11, 0x03, /* INFOFLAG, ADR */
    15,         /* M */
    BE16(3280), BE16(3281), BE16(3282), BE16(3283), BE16(3284), BE16(3285), BE16(3286), BE16(3287),
    BE16(3288), BE16(3289), BE16(3290), BE16(3291), BE16(3292), BE16(3293), BE16(3294),
    5,           /* N */
    BE16(3031),  /* board 30.0 °C */
    BE16(3011),  /* 28.0 */
    BE16(3001),  /* 27.0 */
    BE16(2991),  /* 26.0 */
    BE16(2981),  /* 25.0 */
    BE16(0x0190), /* current +400 x 100 mA = +40.0 A */
    BE16(48500),  /* 48.500 V */
    0xFF, 0xFF,   /* remaining: does not fit 16 bits */
    4,            /* UDI 4: 24-bit capacities follow */
    0xFF, 0xFF,   /* total: does not fit 16 bits */
    BE16(512),    /* cycles */
    BE24(150000), /* remaining 150.000 Ah */
    BE24(200000), /* total 200.000 Ah */
};

/* ---- Seplos v2 0x42 (§2d): DATAFLAG, group, M + cells, N=6 (T1-4 cells, T5 ENV, T6 MOS) 0.1 K
 * − 2731, current s16 10 mA, voltage 10 mV, remaining 10 mAh, P=0x0A, capacity 10 mAh, SOC 0.1 %,
 * rated 10 mAh, cycles, SOH 0.1 %, port voltage 10 mV, 4 x u16 reserved: 75 bytes (16S) */
static const uint8_t seplos_42_16s[] = {
    0x00, 0x01, /* DATAFLAG, command group */
    16,
    BE16(3340), BE16(3341), BE16(3342), BE16(3343), BE16(3344), BE16(3345), BE16(3346), BE16(3347),
    BE16(3348), BE16(3349), BE16(3350), BE16(3351), BE16(3352), BE16(3353), BE16(3354), BE16(3355),
    6,
    BE16(2981), BE16(2991), BE16(3001), BE16(3011), /* T1-T4 cells 25.0 26.0 27.0 28.0 */
    BE16(2951),                                     /* T5 environment 22.0 */
    BE16(3081),                                     /* T6 MOSFET 35.0 */
    0xFD, 0x6A,   /* current -662 x 10 mA = -6.62 A */
    BE16(5322),   /* 53.22 V */
    BE16(15600),  /* remaining 156.00 Ah */
    0x0A,         /* custom P */
    BE16(19000),  /* capacity 190.00 Ah */
    BE16(821),    /* SOC 82.1 % */
    BE16(20000),  /* rated 200.00 Ah */
    BE16(42),     /* cycles */
    BE16(950),    /* SOH 95.0 % */
    BE16(5320),   /* port voltage */
    ZERO8,        /* reserved */
};
_Static_assert(sizeof seplos_42_16s == 75, "§2d: 75 bytes for 16S");

static const uint8_t seplos_42_15s[] = {
    0x00, 0x01, 15,
    BE16(3310), BE16(3311), BE16(3312), BE16(3313), BE16(3314), BE16(3315), BE16(3316), BE16(3317),
    BE16(3318), BE16(3319), BE16(3320), BE16(3321), BE16(3322), BE16(3323), BE16(3324),
    6,
    BE16(2921), BE16(2911), BE16(2901), BE16(2631), /* cells 19.0 18.0 17.0 -10.0 */
    BE16(2731),                                     /* environment 0.0 */
    BE16(2831),                                     /* MOSFET 10.0 */
    0x9F, 0xFF,  /* current (s16)0x9FFF = -24577 x 10 mA: the §7.2 range */
    BE16(4980),  /* 49.80 V */
    BE16(9000),  /* remaining 90.00 Ah */
    0x0A,
    BE16(10000), /* capacity 100.00 Ah */
    BE16(900),   /* SOC 90.0 % */
    BE16(10000), /* rated 100.00 Ah */
    BE16(7),
    BE16(1000),  /* SOH 100.0 % */
    BE16(4975),
    ZERO8,
};
_Static_assert(sizeof seplos_42_15s == 73, "§2d: 73 bytes for 15S");

/* ---- PACE v25 0x42 (§2b): 00, address, M + cells, N + temps 0.1 K − 2730 (4 cells, MOS, ENV),
 * current s16 10 mA, voltage mV, remaining 10 mAh, P, full 10 mAh, cycles, design 10 mAh */
static const uint8_t pace_42_15s[] = {
    0x00, 0x01, /* 00, responding address */
    15,
    BE16(3250), BE16(3252), BE16(3254), BE16(3256), BE16(3258), BE16(3260), BE16(3262), BE16(3264),
    BE16(3266), BE16(3268), BE16(3270), BE16(3272), BE16(3274), BE16(3276), BE16(3278),
    6,
    BE16(2981), BE16(2971), BE16(2961), BE16(2951), /* cells 25.1 24.1 23.1 22.1 (-2730) */
    BE16(3030),                                     /* MOSFET 30.0 */
    BE16(2630),                                     /* environment -10.0 */
    0x90, 0x00,  /* current (s16)0x9000 = -28672 x 10 mA = -286.72 A (§7.2) */
    BE16(48000), /* 48.000 V */
    BE16(5000),  /* remaining 50.00 Ah */
    3,           /* P */
    BE16(10000), /* full 100.00 Ah */
    BE16(7),     /* cycles */
    BE16(10500), /* design 105.00 Ah */
};

static const uint8_t pace_42_8s[] = {
    0x00, 0x01, 8,
    BE16(3300), BE16(3310), BE16(3320), BE16(3290), BE16(3305), BE16(3315), BE16(3295), BE16(3301),
    4,
    BE16(2980), BE16(2990), BE16(3000), BE16(3010), /* 25.0 26.0 27.0 28.0 */
    BE16(0x0064), /* +1.00 A */
    BE16(26420),  /* 26.420 V */
    BE16(0),      /* remaining 0: SOC 0.00 %, a real zero */
    3,
    BE16(5000),   /* full 50.00 Ah */
    BE16(1),
    BE16(5000),   /* design 50.00 Ah: SOH 100.00 % */
};

/* ---- Daren 0x42 (§2a): DATAFLAG, SOC 0.01 %, voltage 10 mV, M + cells, ENV, avg, MOS (s16
 * 0.1 °C), N + cell temps, current s16 10 mA, resistance, SOH %, user byte, full, remaining
 * (10 mAh), cycles, 5 status words, 10 bitmap words, machine status, IO status */
static const uint8_t daren_42_15s[] = {
    0x00,        /* DATAFLAG */
    BE16(5432),  /* SOC 54.32 % */
    BE16(4950),  /* 49.50 V */
    15,
    BE16(3330), BE16(3331), BE16(3332), BE16(3333), BE16(3334), BE16(3335), BE16(3336), BE16(3337),
    BE16(3338), BE16(3339), BE16(3340), BE16(3341), BE16(3342), BE16(3343), BE16(3344),
    0xFF, 0xC9,  /* ENV -5.5 °C (plain signed) */
    BE16(12),    /* avg 1.2 °C */
    BE16(310),   /* MOS 31.0 °C */
    4,           /* N */
    0xFF, 0xEC,  /* -2.0 */
    BE16(5),     /* 0.5 */
    BE16(0),     /* 0.0 */
    BE16(100),   /* 10.0 */
    0xFF, 0x38,  /* current -200 x 10 mA = -2.00 A */
    BE16(0),     /* resistance */
    BE16(98),    /* SOH 98 % */
    0x01,        /* user-defined */
    BE16(10000), /* full 100.00 Ah */
    BE16(5432),  /* remaining 54.32 Ah */
    BE16(256),   /* cycles */
    BE16(0x0000), /* voltage status */
    BE16(0x0000), /* current status */
    BE16(0x0000), /* temperature status */
    BE16(0x0080), /* alarm status: b7 low SOC */
    BE16(0x0003), /* FET status: CHG + DSG on */
    BE16(0), BE16(0), BE16(0), BE16(0), /* cell OV/UV prot, OV/UV alarm */
    BE16(0x0005),                       /* balance low: cells 1 and 3 */
    BE16(0),                            /* balance high */
    BE16(0), BE16(0), BE16(0), BE16(0), /* the four HIGH-bits words */
    0x08,         /* machine status: b3 DSG */
    BE16(0),      /* IO status */
};
_Static_assert(sizeof daren_42_15s == 99 - 2, "§2a: 99 bytes for 16S, 2 fewer per missing cell");

static const uint8_t daren_42_8s[] = {
    0x00,
    BE16(9000),  /* SOC 90.00 % */
    BE16(2680),  /* 26.80 V */
    8,
    BE16(3350), BE16(3352), BE16(3349), BE16(3351), BE16(3360), BE16(3348), BE16(3355), BE16(3353),
    BE16(250),   /* ENV 25.0 */
    BE16(255),   /* avg 25.5 */
    BE16(400),   /* MOS 40.0 */
    2,
    BE16(245),   /* 24.5 */
    0xFF, 0x9C,  /* -10.0 */
    BE16(5000),  /* current +50.00 A */
    BE16(15),    /* resistance */
    BE16(100),   /* SOH 100 % */
    0x01,
    BE16(5000),  /* full 50.00 Ah */
    BE16(4500),  /* remaining 45.00 Ah */
    BE16(3),
    BE16(0x4011), /* voltage: b0 cell OV prot, b4 cell OV alarm, b14 dV prot */
    BE16(0x0044), /* current: b2 CHG OC prot, b6 CHG current alarm */
    BE16(0x1101), /* temperature: b0 CHG high prot, b8 CHG high alarm, b12 ENV high alarm */
    BE16(0x0002), /* alarm: b1 internal fault */
    BE16(0x0001), /* FET: CHG on only */
    BE16(0), BE16(0), BE16(0), BE16(0),
    BE16(0x0080), /* balance low: cell 8 */
    BE16(0),
    BE16(0), BE16(0), BE16(0), BE16(0),
    0x10,         /* machine status: b4 CHG */
    BE16(0),
};
/* clang-format on */

struct exp_analog {
    uint8_t adr;
    uint8_t ncells;
    const int32_t *cells;
    uint8_t ntemps;
    const int32_t *temps;
    const uint8_t *roles; /* NULL: the sources do not say */
    int32_t voltage, current, soc, soh, remaining, full, design, cycles;
    uint32_t has, alarms, protection, state, balancing;
    uint8_t nraw;
    const uint16_t *raw;
};

struct analog_case {
    const char *name;
    const char *variant;
    const uint8_t *info;
    size_t len;
    struct exp_analog e;
};

#define INFO(a) a, sizeof a
/* clang-format off */
#define I32(...) (const int32_t[]){__VA_ARGS__}
#define U8S(...) (const uint8_t[]){__VA_ARGS__}
#define U16S(...) (const uint16_t[]){__VA_ARGS__}
/* clang-format on */
#define RC      SAMPLE_TEMP_CELL
#define RM      SAMPLE_TEMP_MOS
#define RA      SAMPLE_TEMP_AMBIENT
#define RV      SAMPLE_TEMP_AVG
#define ABS     SAMPLE_ABSENT
#define HAS_A   SAMPLE_HAS_ANALOG
#define HAS_ALL (SAMPLE_HAS_ANALOG | SAMPLE_HAS_ALARMS | SAMPLE_HAS_BALANCE)

static const struct analog_case analog_cases[] = {
    {"pylontech 0x42 16S",
     "pylontech",
     INFO(pylon_42_16s),
     {.adr = 2,
      .ncells = 16,
      .cells = I32(3301, 3302, 3303, 3304, 3305, 3306, 3290, 3308, 3309, 3310, 3311, 3399, 3313,
                   3314, 3315, 3316),
      .ntemps = 6,
      .temps = I32(250, 240, 230, 260, 270, -100),
      .roles = U8S(RV, RC, RC, RC, RC, RC),
      .voltage = 52000,
      .current = -3000,
      .soc = 7400 /* 37000 / 50000, derived */,
      .soh = ABS,
      .remaining = 37000,
      .full = 50000,
      .design = ABS,
      .cycles = 123,
      .has = HAS_A}},
    {"pylontech 0x42 15S UDI 4",
     "pylontech",
     INFO(pylon_42_udi4_15s),
     {.adr = 3,
      .ncells = 15,
      .cells = I32(3280, 3281, 3282, 3283, 3284, 3285, 3286, 3287, 3288, 3289, 3290, 3291, 3292,
                   3293, 3294),
      .ntemps = 5,
      .temps = I32(300, 280, 270, 260, 250),
      .roles = U8S(RV, RC, RC, RC, RC),
      .voltage = 48500,
      .current = 40000,
      .soc = 7500,
      .soh = ABS,
      .remaining = 150000,
      .full = 200000,
      .design = ABS,
      .cycles = 512,
      .has = HAS_A}},
    {"seplos 0x42 16S",
     "seplos",
     INFO(seplos_42_16s),
     {.adr = 0,
      .ncells = 16,
      .cells = I32(3340, 3341, 3342, 3343, 3344, 3345, 3346, 3347, 3348, 3349, 3350, 3351, 3352,
                   3353, 3354, 3355),
      .ntemps = 6,
      .temps = I32(250, 260, 270, 280, 220, 350),
      .roles = U8S(RC, RC, RC, RC, RA, RM),
      .voltage = 53220,
      .current = -6620,
      .soc = 8210,
      .soh = 9500,
      .remaining = 156000,
      .full = 190000,
      .design = 200000,
      .cycles = 42,
      .has = HAS_A}},
    {"seplos 0x42 15S",
     "seplos",
     INFO(seplos_42_15s),
     {.adr = 0,
      .ncells = 15,
      .cells = I32(3310, 3311, 3312, 3313, 3314, 3315, 3316, 3317, 3318, 3319, 3320, 3321, 3322,
                   3323, 3324),
      .ntemps = 6,
      .temps = I32(190, 180, 170, -100, 0, 100),
      .roles = U8S(RC, RC, RC, RC, RA, RM),
      .voltage = 49800,
      .current = -245770,
      .soc = 9000,
      .soh = 10000,
      .remaining = 90000,
      .full = 100000,
      .design = 100000,
      .cycles = 7,
      .has = HAS_A}},
    {"pace 0x42 15S",
     "pace",
     INFO(pace_42_15s),
     {.adr = 1,
      .ncells = 15,
      .cells = I32(3250, 3252, 3254, 3256, 3258, 3260, 3262, 3264, 3266, 3268, 3270, 3272, 3274,
                   3276, 3278),
      .ntemps = 6,
      .temps = I32(251, 241, 231, 221, 300, -100),
      .roles = U8S(RC, RC, RC, RC, RM, RA),
      .voltage = 48000,
      .current = -286720,
      .soc = 5000 /* 50000 / 100000 */,
      .soh = 9524 /* 100000 / 105000 */,
      .remaining = 50000,
      .full = 100000,
      .design = 105000,
      .cycles = 7,
      .has = HAS_A}},
    {"pace 0x42 8S",
     "pace",
     INFO(pace_42_8s),
     {.adr = 1,
      .ncells = 8,
      .cells = I32(3300, 3310, 3320, 3290, 3305, 3315, 3295, 3301),
      .ntemps = 4,
      .temps = I32(250, 260, 270, 280),
      .roles = NULL /* N=4: §2b names no roles */,
      .voltage = 26420,
      .current = 1000,
      .soc = 0,
      .soh = 10000,
      .remaining = 0,
      .full = 50000,
      .design = 50000,
      .cycles = 1,
      .has = HAS_A}},
    {"daren 0x42 15S",
     "daren",
     INFO(daren_42_15s),
     {.adr = 1,
      .ncells = 15,
      .cells = I32(3330, 3331, 3332, 3333, 3334, 3335, 3336, 3337, 3338, 3339, 3340, 3341, 3342,
                   3343, 3344),
      .ntemps = 7,
      .temps = I32(-55, 12, 310, -20, 5, 0, 100),
      .roles = U8S(RA, RV, RM, RC, RC, RC, RC),
      .voltage = 49500,
      .current = -2000,
      .soc = 5432,
      .soh = 9800,
      .remaining = 54320,
      .full = 100000,
      .design = ABS,
      .cycles = 256,
      .has = HAS_ALL,
      .alarms = SAMPLE_ALARM_SOC_LOW,
      .protection = 0,
      .state = SAMPLE_STATE_CHG_FET | SAMPLE_STATE_DSG_FET | SAMPLE_STATE_DISCHARGING,
      .balancing = 0x0005,
      .nraw = 6,
      .raw = U16S(0, 0, 0, 0x0080, 0x0003, 0x08)}},
    {"daren 0x42 8S",
     "daren",
     INFO(daren_42_8s),
     {.adr = 1,
      .ncells = 8,
      .cells = I32(3350, 3352, 3349, 3351, 3360, 3348, 3355, 3353),
      .ntemps = 5,
      .temps = I32(250, 255, 400, 245, -100),
      .roles = U8S(RA, RV, RM, RC, RC),
      .voltage = 26800,
      .current = 50000,
      .soc = 9000,
      .soh = 10000,
      .remaining = 45000,
      .full = 50000,
      .design = ABS,
      .cycles = 3,
      .has = HAS_ALL,
      .alarms = SAMPLE_ALARM_CELL_OV | SAMPLE_ALARM_CHG_OC | SAMPLE_ALARM_CHG_HT |
                SAMPLE_ALARM_ENV_HT | SAMPLE_ALARM_FAULT,
      .protection =
          SAMPLE_PROT_CELL_OV | SAMPLE_PROT_CELL_DIFF | SAMPLE_PROT_CHG_OC | SAMPLE_PROT_CHG_HT,
      .state = SAMPLE_STATE_CHG_FET | SAMPLE_STATE_CHARGING,
      .balancing = 0x0080,
      .nraw = 6,
      .raw = U16S(0x4011, 0x0044, 0x1101, 0x0002, 0x0001, 0x10)}},
};

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
    char buf[FRAME_CAP];
    size_t len = wrap(c->variant, c->e.adr, 0x00, c->info, c->len, buf);
    parse_ok(buf, len, f, c->name);
    const struct s42_variant *v = variant(c->variant);
    struct s42_diag d = {-1, 0, 0};
    char msg[200];
    EXPECT_EQ(s42_check(f, v, c->e.adr, &d), 0, "%s: s42_check", c->name);
    int err = s42_decode_analog(v, f, s, &d);
    if (err)
        fail_msg("%s: %s", c->name, s42_describe(err, &d, msg, sizeof msg));
}

static void test_hand_built_analog(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_(analog_cases); i++) {
        const struct analog_case *c = &analog_cases[i];
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

/* clang-format off */
/* PACE: 00, address, M + states, N + states, CHG current, total voltage, DSG current, protect1,
 * protect2, system, config, fault, balance u16, warn1, warn2 */
static const uint8_t pace_44_15s[] = {
    0x00, 0x01,
    15, 0x02 /* cell 1 above */, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01 /* cell 15 below */,
    6, 0, 0, 0, 0, 0x02 /* sensor 5 above */, 0,
    0x02, /* charge current above */
    0x01, /* total voltage below */
    0x00, /* discharge current */
    0x40, /* protect1: b6 short circuit */
    0x10, /* protect2: b4 MOS high temperature */
    0x26, /* system: b1 CHG FET, b2 DSG FET, b5 charging */
    0x00, /* config */
    0x04, /* fault: b2 NTC */
    BE16(0x4001), /* balancing cells 1 and 15 */
    0x01, /* warn1: b0 cell OV */
    0x80, /* warn2: b7 low power */
};

/* Pylontech: INFOFLAG, ADR, M + states, N + states, CHG current, voltage, DSG current, status 1-5.
 * Status bits: SERVICE42.md cites PYLON-FHEM but lists none; FHEM reads status1 b2 as charge
 * overcurrent and status2 b1/b2 as DFET/CFET. */
static const uint8_t pylon_44_16s[] = {
    0x11, 0x02,
    16, 0, 0x01 /* cell 2 below */, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    6, 0x01 /* sensor 1 below */, 0, 0, 0, 0, 0,
    0x00, /* charge current */
    0x02, /* voltage above */
    0x02, /* discharge current above */
    0x04, /* status1 */
    0x06, /* status2 */
    0x00, 0x00, 0x00, /* status 3-5 */
};

/* Seplos: DATAFLAG, group, M + states, N + states, current alarm, voltage alarm, custom count 0x14,
 * 20 custom bytes. §3: in the 16S answer INFO byte 30 = voltage events, 31 = temperature events,
 * 33 = current events, 34 = SOC events, 35 = switch byte (b0 DSG, b1 CHG). */
static const uint8_t seplos_44_16s[] = {
    0x00, 0x01,
    16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02 /* cell 16 above */,
    6, 0, 0, 0, 0, 0, 0,
    0x00, /* current alarm */
    0x00, /* total voltage alarm */
    0x14, /* 20 custom bytes follow */
    0x00, /* byte 29 */
    0x01, /* byte 30: voltage events */
    0x02, /* byte 31: temperature events */
    0x00, /* byte 32 */
    0x04, /* byte 33: current events */
    0x04, /* byte 34: SOC events */
    0x03, /* byte 35: switches, DSG + CHG on */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* bytes 36-48 */
};
_Static_assert(sizeof seplos_44_16s == 29 + 20, "§3: 20 custom bytes after byte 28");
/* clang-format on */

struct alarm_case {
    const char *name;
    const char *variant;
    uint8_t adr;
    const uint8_t *info;
    size_t len;
    int exact; /* 0: alarms/protection must include the listed flags (the rest of the bits
                * are not in SERVICE42.md) */
    uint32_t alarms, protection, state, balancing;
    uint8_t nraw;
    const uint16_t *raw;
    const int *raw_idx; /* which raw words to compare (NULL: all nraw, in order) */
};

static const struct alarm_case alarm_cases[] = {
    {"pace 0x44 15S", "pace", 1, INFO(pace_44_15s), 1,
     SAMPLE_ALARM_CELL_OV | SAMPLE_ALARM_CELL_UV | SAMPLE_ALARM_TEMP_HT | SAMPLE_ALARM_CHG_OC |
         SAMPLE_ALARM_PACK_UV | SAMPLE_ALARM_FAULT | SAMPLE_ALARM_SOC_LOW,
     SAMPLE_PROT_SHORT | SAMPLE_PROT_MOS_HT,
     SAMPLE_STATE_CHG_FET | SAMPLE_STATE_DSG_FET | SAMPLE_STATE_CHARGING, 0x4001, 6,
     U16S(0x40, 0x10, 0x26, 0x04, 0x01, 0x80), NULL},
    {"pylontech 0x44 16S", "pylontech", 2, INFO(pylon_44_16s), 1,
     SAMPLE_ALARM_CELL_UV | SAMPLE_ALARM_TEMP_LT | SAMPLE_ALARM_PACK_OV | SAMPLE_ALARM_DSG_OC,
     SAMPLE_PROT_CHG_OC, SAMPLE_STATE_CHG_FET | SAMPLE_STATE_DSG_FET, 0, 2, U16S(0x04, 0x06), NULL},
    {"seplos 0x44 16S", "seplos", 0, INFO(seplos_44_16s), 0, SAMPLE_ALARM_CELL_OV, 0,
     SAMPLE_STATE_CHG_FET | SAMPLE_STATE_DSG_FET, 0, 5, U16S(0x01, 0x02, 0x04, 0x04, 0x03),
     (const int[]){1, 2, 4, 5, 6}},
};

static void test_hand_built_alarm(void **state)
{
    (void)state;
    /* the array comments above agree with the §3 byte indices */
    assert_int_equal(seplos_44_16s[30], 0x01);
    assert_int_equal(seplos_44_16s[35], 0x03);
    for (size_t i = 0; i < N_(alarm_cases); i++) {
        const struct alarm_case *c = &alarm_cases[i];
        char buf[FRAME_CAP], msg[200];
        struct s42_frame f;
        struct s42_diag d = {-1, 0, 0};
        size_t len = wrap(c->variant, c->adr, 0x00, c->info, c->len, buf);
        parse_ok(buf, len, &f, c->name);
        const struct s42_variant *v = variant(c->variant);
        EXPECT_EQ(s42_check(&f, v, c->adr, &d), 0, "%s: s42_check", c->name);

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
        if (err)
            fail_msg("%s: %s", c->name, s42_describe(err, &d, msg, sizeof msg));
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
    size_t len = wrap("daren", 1, 0, pace_44_15s, sizeof pace_44_15s, buf);
    parse_ok(buf, len, &f, "daren 0x44");
    memset(&s, A5, sizeof s);
    assert_int_equal(s42_decode_alarm(variant("daren"), &f, &s, NULL), -S42_E_UNSUPPORTED);
    assert_true(untouched(&s, sizeof s));
}

/* ---- identity (§3) ---- */

/* clang-format off */
/* Pylontech/Seplos 0x51: device name (10 ASCII), SW version (2 bytes), manufacturer (20 ASCII) */
static const uint8_t pylon_51[] = {
    'U', 'S', '3', '0', '0', '0', 'C', ' ', ' ', ' ',
    0x01, 0x05,
    'P', 'Y', 'L', 'O', 'N', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
};
static const uint8_t seplos_51[] = { /* [V] in §3: `1101-SP15`, SW 2.7, `CANProtocol:Sofar` */
    '1', '1', '0', '1', '-', 'S', 'P', '1', '5', ' ',
    0x02, 0x07,
    'C', 'A', 'N', 'P', 'r', 'o', 't', 'o', 'c', 'o', 'l', ':', 'S', 'o', 'f', 'a', 'r', ' ', ' ', ' ',
};
/* Pylontech 0x93: command value (1 byte) + 16 ASCII bytes */
static const uint8_t pylon_93[] = {
    0x02, 'P', 'P', 'T', 'A', 'H', '0', '2', '4', '0', '0', '1', '1', '2', '3', '4', '5',
};
/* clang-format on */

struct identity_case {
    const char *name;
    const char *variant;
    uint8_t adr, cid2;
    const uint8_t *info;
    size_t len;
    const char *hardware, *product, *project, *manufacturer, *software, *serial;
    int protocol_version;
};

static const struct identity_case identity_cases[] = {
    {"pylontech 0x51", "pylontech", 2, 0x51, INFO(pylon_51), "US3000C", "", "", "PYLON", "01.05",
     "", -1},
    {"pylontech 0x93", "pylontech", 2, 0x93, INFO(pylon_93), "", "", "", "", "", "PPTAH02400112345",
     -1},
    /* the software string follows the codec's dotted two-digit form (as Daren's "01.00.02") */
    {"seplos 0x51", "seplos", 0, 0x51, INFO(seplos_51), "1101-SP15", "", "", "CANProtocol:Sofar",
     "02.07", "", -1},
};

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
        int n = s42_build(frame, sizeof frame, s42_variant_ver(v), 1, s42_variant_cid1(v), 0,
                          info, sizeof info);
        assert_true(n > 0);
        struct s42_frame f;
        assert_int_equal(s42_parse(frame, (size_t)n, &f, NULL), 0);
        const uint8_t others[] = {S42_CID2_ANALOG, S42_CID2_ALARM, 0x00, 0xFF};
        for (size_t k = 0; k < sizeof others; k++) {
            struct s42_identity id, before;
            s42_identity_init(&id);
            before = id;
            assert_int_equal(s42_decode_identity(v, others[k], &f, &id, NULL),
                             -S42_E_UNSUPPORTED);
            assert_memory_equal(&id, &before, sizeof id);
        }
    }
}

static void test_hand_built_identity(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_(identity_cases); i++) {
        const struct identity_case *c = &identity_cases[i];
        char buf[FRAME_CAP], msg[200];
        struct s42_frame f;
        struct s42_diag d = {-1, 0, 0};
        size_t len = wrap(c->variant, c->adr, 0x00, c->info, c->len, buf);
        parse_ok(buf, len, &f, c->name);
        const struct s42_variant *v = variant(c->variant);
        EXPECT_EQ(s42_check(&f, v, c->adr, &d), 0, "%s: s42_check", c->name);
        struct s42_identity id;
        s42_identity_init(&id);
        int err = s42_decode_identity(v, c->cid2, &f, &id, &d);
        if (err)
            fail_msg("%s: %s", c->name, s42_describe(err, &d, msg, sizeof msg));
        EXPECT_STR(id.hardware, c->hardware, "%s: hardware", c->name);
        EXPECT_STR(id.product, c->product, "%s: product", c->name);
        EXPECT_STR(id.project, c->project, "%s: project", c->name);
        EXPECT_STR(id.manufacturer, c->manufacturer, "%s: manufacturer", c->name);
        EXPECT_STR(id.software, c->software, "%s: software", c->name);
        EXPECT_STR(id.serial, c->serial, "%s: serial", c->name);
        EXPECT_EQ(id.protocol_version, c->protocol_version, "%s: protocol_version", c->name);
    }
}

/* Real frames quoted in SERVICE42.md §3-§6 that are not in vectors.tsv. */
static const char *const doc_frames[] = {
    "~200046000000FDB4",                                         /* Seplos 0x4F, empty INFO */
    "~200046040000FDB0",                                         /* Seplos RTN 04 */
    "~25004609E00204FD2B",                                       /* PACE RTN 09 */
    "~20024600B014026EF05AA0022BFDD5C0F915",                     /* Pylontech 0x92 */
    "~25FF4642E002FFFCDA",                                       /* an echoed request */
    "~25014600602850313653313030412D313831322D312E30302000F58E", /* PACE 0xC1 */
};

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
    decode_analog_case(&analog_cases[6], &f, &s); /* daren 15S */
    assert_int_equal(s.design_mah, SAMPLE_ABSENT);
    decode_analog_case(&analog_cases[0], &f, &s); /* pylontech */
    assert_int_equal(s.soh_cpct, SAMPLE_ABSENT);
    assert_int_equal(s.design_mah, SAMPLE_ABSENT);

    /* PACE sends no SOC/SOH: with full = 0 and design = 0 there is nothing to derive them from */
    uint8_t info[sizeof pace_42_8s];
    memcpy(info, pace_42_8s, sizeof info);
    size_t full_at = sizeof info - 6, design_at = sizeof info - 2;
    info[full_at] = info[full_at + 1] = 0;
    info[design_at] = info[design_at + 1] = 0;
    char buf[FRAME_CAP];
    size_t len = wrap("pace", 1, 0, info, sizeof info, buf);
    parse_ok(buf, len, &f, "pace full=0");
    assert_int_equal(s42_decode_analog(variant("pace"), &f, &s, NULL), 0);
    assert_int_equal(s.full_mah, 0);
    assert_int_equal(s.design_mah, 0);
    assert_int_equal(s.soc_cpct, SAMPLE_ABSENT);
    assert_int_equal(s.soh_cpct, SAMPLE_ABSENT);
    assert_int_equal(s.remaining_mah, 0); /* a real zero stays a zero */
}

/* ================================================================================================
 * 3. Corruption: every frame above, every single-character substitution, every truncation
 * ============================================================================================= */

static const char subst_chars[] = {
    '0', '1', '2', '3',  '4',  '5', '6', '7', '8', '9', 'A',  'B',    'C',        'D',
    'E', 'F',                       /* hex */
    'a', 'b', 'c', 'd',  'e',  'f', /* lowercase */
    'G', 'g', '~', '\r', '\n', ' ', '/', ':', '@', '`', '\0', '\x7f', (char)0x80, (char)0xFF,
};

struct want_diag {
    int use_pos, use_got, use_want;
    long pos;
    unsigned long got, want;
};

static void expect_reject(const char *ctx, const char *buf, size_t len, int err,
                          const struct want_diag *w)
{
    struct s42_frame out;
    struct s42_diag d = {-99, 0xDEADu, 0xBEEFu};
    memset(&out, A5, sizeof out);
    int got = s42_parse(buf, len, &out, &d);
    if (got != -err) {
        char shown[FRAME_CAP * 2];
        print_error("%s: s42_parse(\"%s\") = %d (%s), want %d (%s)\n", ctx,
                    show(buf, len, shown, sizeof shown), got, got ? s42_strerror(got) : "ok", -err,
                    s42_strerror(err));
        fail();
    }
    EXPECT_TRUE(untouched(&out, sizeof out), "%s: output frame written on rejection", ctx);
    if (w && w->use_pos)
        EXPECT_EQ(d.pos, w->pos, "%s: diag.pos", ctx);
    if (w && w->use_got)
        EXPECT_EQ(d.got, w->got, "%s: diag.got", ctx);
    if (w && w->use_want)
        EXPECT_EQ(d.want, w->want, "%s: diag.want", ctx);
}

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
    for (size_t i = 0; i < N_(analog_cases); i++, n++) {
        const struct analog_case *c = &analog_cases[i];
        corrupt_frame(c->name, buf, wrap(c->variant, c->e.adr, 0, c->info, c->len, buf));
    }
    for (size_t i = 0; i < N_(alarm_cases); i++, n++) {
        const struct alarm_case *c = &alarm_cases[i];
        corrupt_frame(c->name, buf, wrap(c->variant, c->adr, 0, c->info, c->len, buf));
    }
    for (size_t i = 0; i < N_(identity_cases); i++, n++) {
        const struct identity_case *c = &identity_cases[i];
        corrupt_frame(c->name, buf, wrap(c->variant, c->adr, 0, c->info, c->len, buf));
    }
    for (size_t i = 0; i < N_(doc_frames); i++, n++) {
        snprintf(buf, sizeof buf, "%s\r", doc_frames[i]);
        corrupt_frame(doc_frames[i], buf, strlen(buf));
    }
    assert_int_equal(n, N_(analog_cases) + N_(alarm_cases) + N_(identity_cases) + N_(doc_frames));
}

/* Every INFO shorter than a hand-built one, framed correctly, is INFO_SHORT and never a sample. */
static void test_info_truncated_is_info_short(void **state)
{
    (void)state;
    char buf[FRAME_CAP], ctx[160];
    struct s42_frame f;
    struct s42_diag d;
    struct sample s;
    struct s42_identity id;
    for (size_t i = 0; i < N_(analog_cases) + N_(alarm_cases) + N_(identity_cases); i++) {
        const char *name, *vname;
        const uint8_t *info;
        size_t len;
        uint8_t adr, cid2;
        if (i < N_(analog_cases)) {
            const struct analog_case *c = &analog_cases[i];
            name = c->name, vname = c->variant, info = c->info, len = c->len, adr = c->e.adr;
            cid2 = S42_CID2_ANALOG;
        } else if (i < N_(analog_cases) + N_(alarm_cases)) {
            const struct alarm_case *c = &alarm_cases[i - N_(analog_cases)];
            name = c->name, vname = c->variant, info = c->info, len = c->len, adr = c->adr;
            cid2 = S42_CID2_ALARM;
        } else {
            const struct identity_case *c = &identity_cases[i - N_(analog_cases) - N_(alarm_cases)];
            name = c->name, vname = c->variant, info = c->info, len = c->len, adr = c->adr;
            cid2 = c->cid2;
        }
        const struct s42_variant *v = variant(vname);
        for (size_t k = 0; k < len; k++) {
            snprintf(ctx, sizeof ctx, "%s: INFO cut to %zu of %zu bytes", name, k, len);
            parse_ok(buf, wrap(vname, adr, 0, info, k, buf), &f, ctx);
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

/* ================================================================================================
 * A wire-level pack builder, written from SERVICE42.md §2 (used by the §7 tests to vary counts,
 * currents and temperatures; independent of s42_encode_*)
 * ============================================================================================= */

enum kind { K_DAREN, K_PACE, K_PYLON, K_SEPLOS, K__N };
static const char *const kind_name[K__N] = {"daren", "pace", "pylontech", "seplos"};

/* wire units per variant (§2 "Units at a glance") */
static const struct {
    int32_t cur_ma, volt_mv, cap_mah;
    int32_t temp_off; /* 0: signed 0.1 °C */
} units[K__N] = {
    [K_DAREN] = {10, 10, 10, 0},
    [K_PACE] = {10, 1, 10, 2730},
    [K_PYLON] = {100, 1, 1, 2731},
    [K_SEPLOS] = {10, 10, 10, 2731},
};

struct wire_pack {
    uint8_t adr, m, n;
    uint16_t cell[40];
    uint16_t temp[20];      /* the N counted sensors */
    uint16_t env, avg, mos; /* Daren's three fixed sensors */
    uint16_t current, voltage, remaining, full, design, cycles, soc, soh;
    uint8_t udi; /* Pylontech: 2, or 4 with the 24-bit capacities */
    uint32_t remaining24, full24;
};

struct bytes {
    uint8_t b[S42_MAX_INFO];
    size_t n;
};

static void put8(struct bytes *o, unsigned v)
{
    assert_true(o->n < sizeof o->b);
    o->b[o->n++] = (uint8_t)v;
}

static void put16(struct bytes *o, unsigned v)
{
    put8(o, v >> 8 & 0xFFu);
    put8(o, v & 0xFFu);
}

static void put24(struct bytes *o, unsigned v)
{
    put8(o, v >> 16 & 0xFFu);
    put16(o, v & 0xFFFFu);
}

static void build_info(enum kind k, const struct wire_pack *w, struct bytes *o)
{
    o->n = 0;
    switch (k) {
    case K_DAREN: /* §2a */
        put8(o, 0x00);
        put16(o, w->soc);
        put16(o, w->voltage);
        put8(o, w->m);
        for (size_t i = 0; i < w->m; i++)
            put16(o, w->cell[i]);
        put16(o, w->env);
        put16(o, w->avg);
        put16(o, w->mos);
        put8(o, w->n);
        for (size_t i = 0; i < w->n; i++)
            put16(o, w->temp[i]);
        put16(o, w->current);
        put16(o, 0); /* resistance */
        put16(o, w->soh);
        put8(o, 0x01);
        put16(o, w->full);
        put16(o, w->remaining);
        put16(o, w->cycles);
        for (size_t i = 0; i < 5 + 10; i++)
            put16(o, 0); /* status words, bitmaps */
        put8(o, 0);      /* machine status */
        put16(o, 0);     /* IO status */
        break;
    case K_PACE: /* §2b */
        put8(o, 0x00);
        put8(o, w->adr);
        put8(o, w->m);
        for (size_t i = 0; i < w->m; i++)
            put16(o, w->cell[i]);
        put8(o, w->n);
        for (size_t i = 0; i < w->n; i++)
            put16(o, w->temp[i]);
        put16(o, w->current);
        put16(o, w->voltage);
        put16(o, w->remaining);
        put8(o, w->n == 8 ? 4 : 3); /* P: 4 = the 8-temperature Eenovance variant */
        put16(o, w->full);
        put16(o, w->cycles);
        put16(o, w->design);
        break;
    case K_PYLON: /* §2c */
        put8(o, 0x11);
        put8(o, w->adr);
        put8(o, w->m);
        for (size_t i = 0; i < w->m; i++)
            put16(o, w->cell[i]);
        put8(o, w->n);
        for (size_t i = 0; i < w->n; i++)
            put16(o, w->temp[i]);
        put16(o, w->current);
        put16(o, w->voltage);
        put16(o, w->udi > 2 ? 0xFFFF : w->remaining);
        put8(o, w->udi);
        put16(o, w->udi > 2 ? 0xFFFF : w->full);
        put16(o, w->cycles);
        if (w->udi > 2) {
            put24(o, w->remaining24);
            put24(o, w->full24);
        }
        break;
    case K_SEPLOS: /* §2d */
        put8(o, 0x00);
        put8(o, 0x01);
        put8(o, w->m);
        for (size_t i = 0; i < w->m; i++)
            put16(o, w->cell[i]);
        put8(o, w->n);
        for (size_t i = 0; i < w->n; i++)
            put16(o, w->temp[i]);
        put16(o, w->current);
        put16(o, w->voltage);
        put16(o, w->remaining);
        put8(o, 0x0A);
        put16(o, w->full);
        put16(o, w->soc);
        put16(o, w->design);
        put16(o, w->cycles);
        put16(o, w->soh);
        put16(o, w->voltage); /* port voltage */
        for (size_t i = 0; i < 4; i++)
            put16(o, 0);
        break;
    default:
        fail();
    }
}

static uint16_t wire_temp(enum kind k, int32_t dc)
{
    return (uint16_t)(uint32_t)(dc + units[k].temp_off);
}

static int32_t decoded_temp(enum kind k, uint16_t raw)
{
    return units[k].temp_off ? (int32_t)raw - units[k].temp_off : (int32_t)(int16_t)raw;
}

static void default_pack(enum kind k, uint8_t m, uint8_t n, struct wire_pack *w)
{
    memset(w, 0, sizeof *w);
    w->adr = 1;
    w->m = m;
    w->n = n;
    for (size_t i = 0; i < m; i++)
        w->cell[i] = (uint16_t)(3200 + (i * 37) % 100 + m); /* distinct, count-dependent */
    for (size_t i = 0; i < n; i++)
        w->temp[i] = wire_temp(k, (int32_t)(200 + 10 * i)); /* 20.0, 21.0, ... */
    w->env = wire_temp(k, 215);
    w->avg = wire_temp(k, 225);
    w->mos = wire_temp(k, 305);
    w->current = 0xFF38; /* -200 */
    w->voltage = units[k].volt_mv == 1 ? 52000 : 5200;
    w->remaining = units[k].cap_mah == 1 ? 40000 : 4000;
    w->full = units[k].cap_mah == 1 ? 50000 : 5000;
    w->design = 5500;
    w->cycles = 77;
    w->soc = k == K_DAREN ? 8000 : 800;
    w->soh = k == K_DAREN ? 95 : 950;
    w->udi = 2;
}

/* -1: the sources do not say. */
static int expected_role(enum kind k, size_t i, size_t n)
{
    switch (k) {
    case K_DAREN:
        return i == 0 ? RA : i == 1 ? RV : i == 2 ? RM : RC;
    case K_PYLON:
        return i == 0 ? RV : RC;
    case K_PACE:
    case K_SEPLOS:
        if (n != 6)
            return i < 4 ? RC : -1;
        if (i < 4)
            return RC;
        return (i == 4) == (k == K_PACE) ? RM : RA; /* PACE: MOS, ENV; Seplos: ENV, MOS */
    default:
        return -1;
    }
}

/* What SERVICE42.md §2 says the frame means. */
static void expect_pack(enum kind k, const struct wire_pack *w, const struct sample *s,
                        const char *ctx)
{
    EXPECT_EQ(s->ncells, w->m, "%s: ncells", ctx);
    for (size_t i = 0; i < w->m; i++)
        EXPECT_EQ(s->cell_mv[i], w->cell[i], "%s: cell %zu", ctx, i + 1);
    uint16_t temps[24];
    size_t nt = 0;
    if (k == K_DAREN) {
        temps[nt++] = w->env;
        temps[nt++] = w->avg;
        temps[nt++] = w->mos;
    }
    for (size_t i = 0; i < w->n; i++)
        temps[nt++] = w->temp[i];
    EXPECT_EQ(s->ntemps, nt, "%s: ntemps", ctx);
    for (size_t i = 0; i < nt; i++) {
        EXPECT_EQ(s->temp_dc[i], decoded_temp(k, temps[i]), "%s: temperature %zu", ctx, i);
        int role = expected_role(k, i, k == K_DAREN ? nt : w->n);
        if (role >= 0)
            EXPECT_EQ(s->temp_role[i], role, "%s: role of temperature %zu", ctx, i);
    }
    EXPECT_EQ(s->current_ma, (int32_t)(int16_t)w->current * units[k].cur_ma, "%s: current", ctx);
    EXPECT_EQ(s->voltage_mv, (int32_t)w->voltage * units[k].volt_mv, "%s: voltage", ctx);
    int32_t rem = (int32_t)w->remaining * units[k].cap_mah,
            full = (int32_t)w->full * units[k].cap_mah;
    if (k == K_PYLON && w->udi > 2) {
        rem = (int32_t)w->remaining24;
        full = (int32_t)w->full24;
    }
    EXPECT_EQ(s->remaining_mah, rem, "%s: remaining", ctx);
    EXPECT_EQ(s->full_mah, full, "%s: full", ctx);
    int32_t design = (k == K_PACE || k == K_SEPLOS) ? (int32_t)w->design * 10 : SAMPLE_ABSENT;
    EXPECT_EQ(s->design_mah, design, "%s: design", ctx);
    EXPECT_EQ(s->cycles, w->cycles, "%s: cycles", ctx);
    int32_t soc = k == K_DAREN ? w->soc : k == K_SEPLOS ? w->soc * 10 : ratio_cpct(rem, full);
    int32_t soh = k == K_DAREN    ? w->soh * 100
                  : k == K_SEPLOS ? w->soh * 10
                  : k == K_PACE   ? ratio_cpct(full, design)
                                  : SAMPLE_ABSENT;
    EXPECT_EQ(s->soc_cpct, soc, "%s: soc", ctx);
    EXPECT_EQ(s->soh_cpct, soh, "%s: soh", ctx);
}

static void decode_pack(enum kind k, const struct wire_pack *w, struct sample *s, const char *ctx)
{
    static struct bytes info;
    char buf[FRAME_CAP], msg[200];
    struct s42_frame f;
    struct s42_diag d = {-1, 0, 0};
    build_info(k, w, &info);
    parse_ok(buf, wrap(kind_name[k], w->adr, 0, info.b, info.n, buf), &f, ctx);
    int err = s42_decode_analog(variant(kind_name[k]), &f, s, &d);
    if (err)
        fail_msg("%s: %s", ctx, s42_describe(err, &d, msg, sizeof msg));
}

/* ================================================================================================
 * 4. SERVICE42.md §7 pitfalls, one test each
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
    len = wrap("daren", 1, 0, pace_42_8s, sizeof pace_42_8s, buf);
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
                EXPECT_TRUE(len == 18 || len == 20 || len == 22 || len == 28, "%s: length %d",
                            ctx, len);
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
    char buf[FRAME_CAP], msg[200];
    struct s42_frame f;
    struct s42_diag d;
    struct sample s;

    parse_ok(buf, wrap("daren", 1, 0, daren, sizeof daren, buf), &f, "daren M=16, 10 cells");
    memset(&s, A5, sizeof s);
    assert_int_equal(s42_decode_analog(variant("daren"), &f, &s, &d), -S42_E_INFO_SHORT);
    assert_true(untouched(&s, sizeof s));
    assert_int_equal(d.pos, 6);
    assert_int_equal(d.want, 32);
    assert_int_equal(d.got, sizeof daren);
    assert_string_equal(s42_describe(-S42_E_INFO_SHORT, &d, msg, sizeof msg),
                        "INFO too short: field at byte 6 needs 32 byte(s), INFO has 26");

    parse_ok(buf, wrap("pace", 1, 0, pace, sizeof pace, buf), &f, "pace M=16, 10 cells");
    memset(&s, A5, sizeof s);
    assert_int_equal(s42_decode_analog(variant("pace"), &f, &s, &d), -S42_E_INFO_SHORT);
    assert_true(untouched(&s, sizeof s));
    assert_int_equal(d.pos, 3);
    assert_int_equal(d.want, 32);
    assert_int_equal(d.got, sizeof pace);
}

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
        parse_ok(buf, wrap("pace", 1, (uint8_t)rtn, pace_42_8s, sizeof pace_42_8s, buf), &f, "rtn");
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

    const char *lchk = "~22014A42F00201FD27\r"; /* LENGTH F002, CHKSUM recomputed */
    assert_int_equal(s42_parse(lchk, strlen(lchk), &f, &d), -S42_E_LCHKSUM);
    assert_string_equal(s42_describe(-S42_E_LCHKSUM, &d, msg, sizeof msg),
                        "length checksum mismatch: frame says 0xF, computed 0xE");
    const char *lenid = "~22014A42E00401FD26\r";
    assert_int_equal(s42_parse(lenid, strlen(lenid), &f, &d), -S42_E_LENID);
    assert_string_equal(s42_describe(-S42_E_LENID, &d, msg, sizeof msg),
                        "LENID says 4 INFO characters, frame has 2");
    const char *lower = "~22014a42E00201FD28\r";
    assert_int_equal(s42_parse(lower, strlen(lower), &f, &d), -S42_E_HEX);
    assert_string_equal(s42_describe(-S42_E_HEX, &d, msg, sizeof msg),
                        "character that is not an uppercase hex digit at position 6 (0x61)");
    assert_int_equal(s42_parse("x", 1, &f, &d), -S42_E_SOI);
    assert_string_equal(s42_describe(-S42_E_SOI, &d, msg, sizeof msg),
                        "frame does not start with '~' (SOI) (first byte 0x78)");
    const char *crlf = "~22014A42E00201FD28\r\n";
    assert_int_equal(s42_parse(crlf, strlen(crlf), &f, &d), -S42_E_TRAILING);
    assert_string_equal(s42_describe(-S42_E_TRAILING, &d, msg, sizeof msg),
                        "1 byte(s) after the end of the frame at position 20");

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

/* ================================================================================================
 * 5. §1 worked examples
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
 * 6. Encode -> build -> parse -> decode round trips
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
    char buf[FRAME_CAP], msg[200];
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
    if (err)
        fail_msg("%s: %s", s42_variant_name(v), s42_describe(err, &d, msg, sizeof msg));
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
        /* 3. corruption */
        cmocka_unit_test(test_corruption_vectors),
        cmocka_unit_test(test_corruption_hand_built),
        cmocka_unit_test(test_info_truncated_is_info_short),
        /* 4. pitfalls and errors */
        cmocka_unit_test(test_pitfall_7_1_temperature_offsets),
        cmocka_unit_test(test_pitfall_7_2_current_sign),
        cmocka_unit_test(test_pitfall_7_3_counts_not_offsets),
        cmocka_unit_test(test_pitfall_7_4_wrong_or_echoed_address),
        cmocka_unit_test(test_pitfall_7_5_trailing_and_two_frames),
        cmocka_unit_test(test_pitfall_7_6_length_handling),
        cmocka_unit_test(test_pitfall_7_7_daren_command_group),
        cmocka_unit_test(test_pitfall_7_8_units_differ),
        cmocka_unit_test(test_counts_out_of_range),
        cmocka_unit_test(test_info_short_for_announced_counts),
        cmocka_unit_test(test_rtn_codes),
        cmocka_unit_test(test_describe_messages),
        /* 5. §1 examples */
        cmocka_unit_test(test_length_field_examples),
        cmocka_unit_test(test_checksum_worked_example),
        /* 6. round trips */
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_round_trip_pylontech_capacity_extension),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
