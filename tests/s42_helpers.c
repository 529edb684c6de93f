/* s42_helpers: see s42_helpers.h. */
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

#include "s42_helpers.h"

#ifndef BMSFLEET_VECTORS
#error "BMSFLEET_VECTORS (path of vectors.tsv) must be defined"
#endif

/* ---- frames ---- */

const struct s42_variant *variant(const char *name)
{
    const struct s42_variant *v = s42_variant_find(name);
    if (v == NULL)
        fail_msg("no protocol variant '%s'", name);
    return v;
}

int untouched(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        if (b[i] != A5)
            return 0;
    }
    return 1;
}

/* A frame for messages: '\r' shown as "\r". */
const char *show(const char *frame, size_t len, char *buf, size_t cap)
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
uint16_t ref_length_field(unsigned lenid)
{
    lenid &= 0x0FFFu;
    unsigned s = (lenid & 0xFu) + ((lenid >> 4) & 0xFu) + ((lenid >> 8) & 0xFu);
    return (uint16_t)((((~s + 1u) & 0xFu) << 12) | lenid);
}

uint16_t ref_checksum(const char *p, size_t n)
{
    uint32_t s = 0;
    while (n--)
        s += (uint8_t)*p++;
    return (uint16_t)((~s + 1u) & 0xFFFFu);
}

int is_upper_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

unsigned hexv(char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'A' + 10);
}

unsigned hex_at(const char *p, size_t ndig)
{
    unsigned v = 0;
    for (size_t i = 0; i < ndig; i++)
        v = (v << 4) | hexv(p[i]);
    return v;
}

void put_hex16(char *p, unsigned v)
{
    static const char dig[] = "0123456789ABCDEF";
    for (int i = 3; i >= 0; i--, v >>= 4)
        p[i] = dig[v & 0xFu];
}

/* Wraps INFO into a complete frame of a variant (cid2 = the RTN for a response). */
size_t wrap(const char *vname, uint8_t adr, uint8_t cid2, const uint8_t *info, size_t n, char *buf)
{
    const struct s42_variant *v = variant(vname);
    int len =
        s42_build(buf, FRAME_CAP, s42_variant_ver(v), adr, s42_variant_cid1(v), cid2, info, n);
    EXPECT_TRUE(len > 0, "s42_build(%s, %zu INFO bytes) = %d", vname, n, len);
    return (size_t)len;
}

void parse_ok(const char *buf, size_t len, struct s42_frame *f, const char *what)
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

const struct s42_variant *frame_checked(const char *vname, uint8_t adr, const uint8_t *info,
                                        size_t n, struct s42_frame *f, const char *what)
{
    char buf[FRAME_CAP];
    struct s42_diag d = {-1, 0, 0};
    parse_ok(buf, wrap(vname, adr, 0x00, info, n, buf), f, what);
    const struct s42_variant *v = variant(vname);
    EXPECT_EQ(s42_check(f, v, adr, &d), 0, "%s: s42_check", what);
    return v;
}

void expect_decoded(int err, const struct s42_diag *d, const char *what)
{
    char msg[200];
    if (err)
        fail_msg("%s: %s", what, s42_describe(err, d, msg, sizeof msg));
}

int32_t ratio_cpct(int32_t num, int32_t den)
{
    if (num == SAMPLE_ABSENT || den == SAMPLE_ABSENT || den <= 0)
        return SAMPLE_ABSENT;
    return (int32_t)(((int64_t)num * 10000 + den / 2) / den);
}

void expect_reject(const char *ctx, const char *buf, size_t len, int err, const struct want_diag *w)
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

/* ---- tests/data/vectors.tsv ---- */

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

/* Calls fn for every data row (not '#', not blank); returns how many data rows the file has. */
size_t for_each_vector(row_fn fn, void *ctx)
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
size_t row_frame(const struct vrow *r, char *buf, size_t cap)
{
    size_t n = strlen(r->frame);
    if (n + 2 > cap)
        ROW_FAIL(r, "%s", "frame too long");
    memcpy(buf, r->frame, n);
    buf[n] = '\r';
    buf[n + 1] = '\0';
    return n + 1;
}

long row_int(const struct vrow *r, const struct kv *p, long lo, long hi)
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

uint8_t row_cid2(const struct vrow *r)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(r->cid2, &end, 16);
    if (errno || *end != '\0' || v > 0xFF)
        ROW_FAIL(r, "cid2 '%s' is not a hex byte", r->cid2);
    return (uint8_t)v;
}

/* ---- the wire-level pack builder ---- */

const char *const kind_name[K__N] = {"daren", "pace", "pylontech", "seplos"};

const struct wire_units units[K__N] = {
    [K_DAREN] = {10, 10, 10, 0},
    [K_PACE] = {10, 1, 10, 2730},
    [K_PYLON] = {100, 1, 1, 2731},
    [K_SEPLOS] = {10, 10, 10, 2731},
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

static void put_counted(struct bytes *o, uint8_t n, const uint16_t *v)
{
    put8(o, n);
    for (size_t i = 0; i < n; i++)
        put16(o, v[i]);
}

/* PACE, Pylontech and Seplos start alike: two bytes, M + cells, N + temperatures, current,
 * voltage. */
static void put_head(struct bytes *o, unsigned b0, unsigned b1, const struct wire_pack *w)
{
    put8(o, b0);
    put8(o, b1);
    put_counted(o, w->m, w->cell);
    put_counted(o, w->n, w->temp);
    put16(o, w->current);
    put16(o, w->voltage);
}

void build_info(enum kind k, const struct wire_pack *w, struct bytes *o)
{
    o->n = 0;
    switch (k) {
    case K_DAREN: /* §2a */
        put8(o, 0x00);
        put16(o, w->soc);
        put16(o, w->voltage);
        put_counted(o, w->m, w->cell);
        put16(o, w->env);
        put16(o, w->avg);
        put16(o, w->mos);
        put_counted(o, w->n, w->temp);
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
        put_head(o, 0x00, w->adr, w);
        put16(o, w->remaining);
        put8(o, w->n == 8 ? 4 : 3); /* P: 4 = the 8-temperature Eenovance variant */
        put16(o, w->full);
        put16(o, w->cycles);
        put16(o, w->design);
        break;
    case K_PYLON: /* §2c */
        put_head(o, 0x11, w->adr, w);
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
        put_head(o, 0x00, 0x01, w);
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

uint16_t wire_temp(enum kind k, int32_t dc)
{
    return (uint16_t)(uint32_t)(dc + units[k].temp_off);
}

int32_t decoded_temp(enum kind k, uint16_t raw)
{
    return units[k].temp_off ? (int32_t)raw - units[k].temp_off : (int32_t)(int16_t)raw;
}

void default_pack(enum kind k, uint8_t m, uint8_t n, struct wire_pack *w)
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
int expected_role(enum kind k, size_t i, size_t n)
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
void expect_pack(enum kind k, const struct wire_pack *w, const struct sample *s, const char *ctx)
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

void decode_pack(enum kind k, const struct wire_pack *w, struct sample *s, const char *ctx)
{
    static struct bytes info;
    char buf[FRAME_CAP];
    struct s42_frame f;
    struct s42_diag d = {-1, 0, 0};
    build_info(k, w, &info);
    parse_ok(buf, wrap(kind_name[k], w->adr, 0, info.b, info.n, buf), &f, ctx);
    int err = s42_decode_analog(variant(kind_name[k]), &f, s, &d);
    expect_decoded(err, &d, ctx);
}
