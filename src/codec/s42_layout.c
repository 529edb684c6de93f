/* s42_layout: one walker that reads (and one that writes) an INFO block by a variant's layout.
 *
 * The layout is data (struct s42_op[]); counts the frame carries (M cells, N temperatures,
 * P/UDI) drive the walk, never fixed offsets. Every read is bounds-checked against the INFO
 * length, so a short INFO is an error and never a partial sample. */
#include <string.h>

#include "s42_internal.h"

struct walk {
    const uint8_t *p;
    size_t len, pos;
    struct s42_diag *diag;
};

static int need(struct walk *w, size_t n)
{
    if (w->pos + n <= w->len)
        return 0;
    if (w->diag) {
        w->diag->pos = (long)w->pos;
        w->diag->got = w->len;
        w->diag->want = n;
    }
    return -S42_E_INFO_SHORT;
}

static uint32_t get_be(struct walk *w, size_t n)
{
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | w->p[w->pos + i];
    w->pos += n;
    return v;
}

static int32_t as_signed(uint32_t v, size_t width)
{
    if (width == 1)
        return (int8_t)(uint8_t)v;
    if (width == 2)
        return (int16_t)(uint16_t)v;
    if (width == 3)
        return (v & 0x800000u) ? (int32_t)v - 0x1000000 : (int32_t)v;
    return (int32_t)v;
}

static int32_t temp_decode(uint8_t enc, uint32_t raw)
{
    switch (enc) {
    case TEMP_DECI_K_2730:
        return (int32_t)raw - 2730;
    case TEMP_DECI_K_2731:
        return (int32_t)raw - 2731;
    default:
        return (int16_t)(uint16_t)raw;
    }
}

static uint32_t temp_encode(uint8_t enc, int32_t dc)
{
    switch (enc) {
    case TEMP_DECI_K_2730:
        return (uint32_t)(dc + 2730) & 0xFFFFu;
    case TEMP_DECI_K_2731:
        return (uint32_t)(dc + 2731) & 0xFFFFu;
    default:
        return (uint32_t)dc & 0xFFFFu;
    }
}

/* Role of sensor i of n under a scheme. */
static uint8_t temp_role(int32_t scheme, size_t i, size_t n)
{
    switch (scheme) {
    case ROLES_MOS_ENV_TAIL:
        if (n >= 6 && i == 4)
            return SAMPLE_TEMP_MOS;
        if (n >= 6 && i == 5)
            return SAMPLE_TEMP_AMBIENT;
        return SAMPLE_TEMP_CELL;
    case ROLES_ENV_MOS_TAIL:
        if (n >= 6 && i == 4)
            return SAMPLE_TEMP_AMBIENT;
        if (n >= 6 && i == 5)
            return SAMPLE_TEMP_MOS;
        return SAMPLE_TEMP_CELL;
    case ROLES_BOARD_HEAD:
        return i == 0 ? SAMPLE_TEMP_AVG : SAMPLE_TEMP_CELL;
    default:
        return SAMPLE_TEMP_CELL;
    }
}

static int32_t *num_field(struct sample *s, uint8_t target)
{
    switch (target) {
    case T_SOC: return &s->soc_cpct;
    case T_SOH: return &s->soh_cpct;
    case T_VOLTAGE: return &s->voltage_mv;
    case T_CURRENT: return &s->current_ma;
    case T_REMAIN: return &s->remaining_mah;
    case T_FULL: return &s->full_mah;
    case T_DESIGN: return &s->design_mah;
    case T_CYCLES: return &s->cycles;
    default: return NULL;
    }
}

static char *id_field(struct s42_identity *id, uint8_t target, size_t *cap)
{
#define ID_FIELD(t, f) case t: *cap = sizeof id->f; return id->f
    switch (target) {
    ID_FIELD(T_HARDWARE, hardware);
    ID_FIELD(T_PRODUCT, product);
    ID_FIELD(T_PROJECT, project);
    ID_FIELD(T_MANUFACTURER, manufacturer);
    ID_FIELD(T_SOFTWARE, software);
    ID_FIELD(T_SERIAL, serial);
    default: return NULL;
    }
#undef ID_FIELD
}

static uint32_t *flag_word(struct sample *s, uint8_t set)
{
    switch (set) {
    case SET_ALARM: return &s->alarms;
    case SET_PROT: return &s->protection;
    default: return &s->state;
    }
}

static void apply_flags(const struct s42_flag_map *m, uint32_t raw, struct sample *s)
{
    for (size_t i = 0; i < m->nbits; i++) {
        if (raw & (1u << m->bits[i].bit))
            *flag_word(s, m->bits[i].set) |= m->bits[i].flag;
    }
}

/* The limit a state byte is about, as alarm flags for "below" (1) and "above" (2). */
static const uint32_t limit_flags[][2] = {
    [LIMIT_CHG_CURRENT] = {0, SAMPLE_ALARM_CHG_OC},
    [LIMIT_PACK_VOLTAGE] = {SAMPLE_ALARM_PACK_UV, SAMPLE_ALARM_PACK_OV},
    [LIMIT_DSG_CURRENT] = {0, SAMPLE_ALARM_DSG_OC},
};

/* Copies printable ASCII, stops at NUL / 0xFF padding, trims trailing blanks. */
static void copy_ascii(char *dst, size_t cap, const uint8_t *src, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++) {
        if (src[i] == 0 || src[i] == 0xFF)
            break;
        dst[k++] = (src[i] >= 0x20 && src[i] < 0x7F) ? (char)src[i] : '?';
    }
    while (k > 0 && dst[k - 1] == ' ')
        k--;
    dst[k] = '\0';
}

static int count_error(struct walk *w, uint32_t got, uint32_t max)
{
    if (w->diag) {
        w->diag->pos = (long)w->pos - 1;
        w->diag->got = got;
        w->diag->want = max;
    }
    return -S42_E_COUNT;
}

/* ---- decoding: one function per kind of op, over the walk of INFO ---- */

struct decode {
    struct walk w;
    const struct s42_variant *v;
    struct sample *s;
    struct s42_identity *id;
    uint32_t userdef; /* the last OP_USERDEF byte: which optional part follows */
};

static int decode_num(struct decode *d, const struct s42_op *op)
{
    int err = need(&d->w, op->width);
    if (err)
        return err;
    uint32_t raw = get_be(&d->w, op->width);
    int32_t val = op->sign ? as_signed(raw, op->width) : (int32_t)raw;
    if (op->target == T_PROTOCOL && d->id) {
        d->id->protocol_version = val;
    } else if (d->s) {
        int32_t *f = num_field(d->s, op->target);
        if (f)
            *f = val * op->mul;
    }
    return 0;
}

/* A count byte, then that many 16-bit cell voltages. */
static int decode_cells(struct decode *d)
{
    int err = need(&d->w, 1);
    if (err)
        return err;
    uint32_t m = get_be(&d->w, 1);
    if (m > SAMPLE_MAX_CELLS)
        return count_error(&d->w, m, SAMPLE_MAX_CELLS);
    if ((err = need(&d->w, 2 * m)))
        return err;
    d->s->ncells = (uint8_t)m;
    for (uint32_t i = 0; i < m; i++)
        d->s->cell_mv[i] = (int32_t)get_be(&d->w, 2);
    return 0;
}

/* A count byte, then that many temperatures (OP_TEMPS), or one temperature (OP_TEMP). */
static int decode_temps(struct decode *d, const struct s42_op *op)
{
    struct sample *s = d->s;
    int err = need(&d->w, op->kind == OP_TEMPS ? 1 : 2);
    if (err)
        return err;
    if (op->kind == OP_TEMP) {
        if (s->ntemps >= SAMPLE_MAX_TEMPS)
            return count_error(&d->w, s->ntemps + 1u, SAMPLE_MAX_TEMPS);
        s->temp_role[s->ntemps] = (uint8_t)op->arg;
        s->temp_dc[s->ntemps++] = temp_decode(d->v->temp_enc, get_be(&d->w, 2));
        return 0;
    }
    uint32_t n = get_be(&d->w, 1);
    if (s->ntemps + n > SAMPLE_MAX_TEMPS)
        return count_error(&d->w, n, SAMPLE_MAX_TEMPS - s->ntemps);
    if ((err = need(&d->w, 2 * n)))
        return err;
    for (uint32_t i = 0; i < n; i++) {
        s->temp_role[s->ntemps] = temp_role(op->arg, i, n);
        s->temp_dc[s->ntemps++] = temp_decode(d->v->temp_enc, get_be(&d->w, 2));
    }
    return 0;
}

/* A status word read through the variant's flag map; the raw word is kept for diagnosis. */
static int decode_flags(struct decode *d, const struct s42_op *op)
{
    struct sample *s = d->s;
    int err = need(&d->w, op->width);
    if (err)
        return err;
    uint32_t raw = get_be(&d->w, op->width);
    apply_flags(&d->v->flag_maps[op->arg], raw, s);
    if (s->nraw_status < sizeof s->raw_status / sizeof s->raw_status[0])
        s->raw_status[s->nraw_status++] = (uint16_t)raw;
    s->has |= SAMPLE_HAS_ALARMS;
    return 0;
}

static int decode_balance(struct decode *d, const struct s42_op *op)
{
    int err = need(&d->w, op->width);
    if (err)
        return err;
    for (size_t i = 0; i < op->width; i++) {
        /* big-endian words put the high cells first; LSB-first lists cells 1-8 first */
        size_t byte_idx = op->sign ? i : op->width - 1 - i;
        uint32_t bits = d->w.p[d->w.pos + byte_idx];
        d->s->balancing |= bits << (op->arg + 8 * (int32_t)i);
    }
    d->w.pos += op->width;
    d->s->has |= SAMPLE_HAS_BALANCE;
    return 0;
}

/* A count byte, then one state byte per cell or per probe: 1 low, 2 high, >= 0x80 fault. */
static int decode_states(struct decode *d, const struct s42_op *op)
{
    int cells = op->kind == OP_CELL_STATES;
    int err = need(&d->w, 1);
    if (err)
        return err;
    uint32_t n = get_be(&d->w, 1);
    uint32_t max = cells ? SAMPLE_MAX_CELLS : SAMPLE_MAX_TEMPS;
    if (n > max)
        return count_error(&d->w, n, max);
    if ((err = need(&d->w, n)))
        return err;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t st = get_be(&d->w, 1);
        if (st == 1)
            d->s->alarms |= cells ? SAMPLE_ALARM_CELL_UV : SAMPLE_ALARM_TEMP_LT;
        else if (st == 2)
            d->s->alarms |= cells ? SAMPLE_ALARM_CELL_OV : SAMPLE_ALARM_TEMP_HT;
        else if (st >= 0x80)
            d->s->alarms |= SAMPLE_ALARM_FAULT;
    }
    d->s->has |= SAMPLE_HAS_ALARMS;
    return 0;
}

/* One limit state byte (current, voltage, ...): 1 low, 2 high, >= 0x80 fault. */
static int decode_state(struct decode *d, const struct s42_op *op)
{
    int err = need(&d->w, 1);
    if (err)
        return err;
    uint32_t st = get_be(&d->w, 1);
    if (st == 1 || st == 2)
        d->s->alarms |= limit_flags[op->arg][st - 1];
    else if (st >= 0x80)
        d->s->alarms |= SAMPLE_ALARM_FAULT;
    return 0;
}

/* Identity text: ASCII as sent (OP_ASCII), or version bytes as "vv.vv.vv" (OP_VERSION). */
static int decode_text(struct decode *d, const struct s42_op *op)
{
    int err = need(&d->w, op->width);
    if (err)
        return err;
    size_t cap = 0, k = 0;
    const uint8_t *src = d->w.p + d->w.pos;
    char *dst = d->id ? id_field(d->id, op->target, &cap) : NULL;
    d->w.pos += op->width;
    if (dst == NULL)
        return 0;
    if (op->kind == OP_ASCII) {
        copy_ascii(dst, cap, src, op->width);
        return 0;
    }
    for (size_t i = 0; i < op->width && k + 4 < cap; i++) {
        unsigned b = src[i] % 100u;
        if (i)
            dst[k++] = '.';
        dst[k++] = (char)('0' + b / 10);
        dst[k++] = (char)('0' + b % 10);
    }
    dst[k] = '\0';
    return 0;
}

int s42_layout_decode(const struct s42_variant *v, const struct s42_op *ops,
                      const uint8_t *info, size_t len, struct sample *s,
                      struct s42_identity *id, struct s42_diag *diag)
{
    struct decode d = {.w = {info, len, 0, diag}, .v = v, .s = s, .id = id};
    for (const struct s42_op *op = ops; op->kind != OP_END; op++) {
        int err = 0;
        switch (op->kind) {
        case OP_SKIP:
            if ((err = need(&d.w, op->width)) == 0)
                d.w.pos += op->width;
            break;
        case OP_NUM: err = decode_num(&d, op); break;
        case OP_CELLS: err = decode_cells(&d); break;
        case OP_TEMPS:
        case OP_TEMP: err = decode_temps(&d, op); break;
        case OP_USERDEF:
            if ((err = need(&d.w, 1)) == 0)
                d.userdef = get_be(&d.w, 1);
            break;
        case OP_IF_USERDEF_GT:
            if (d.userdef <= (uint32_t)op->arg)
                op += op->width; /* the optional part is absent: skip its ops */
            break;
        case OP_FLAGS: err = decode_flags(&d, op); break;
        case OP_BALANCE: err = decode_balance(&d, op); break;
        case OP_CELL_STATES:
        case OP_TEMP_STATES: err = decode_states(&d, op); break;
        case OP_STATE: err = decode_state(&d, op); break;
        case OP_ASCII:
        case OP_VERSION: err = decode_text(&d, op); break;
        default: return -S42_E_UNSUPPORTED;
        }
        if (err)
            return err;
    }
    return 0;
}

/* ---- encoding (the simulator's side) ---- */

struct out {
    uint8_t *p;
    size_t cap, pos;
};

static int put_be(struct out *o, uint32_t v, size_t n)
{
    if (o->pos + n > o->cap)
        return -S42_E_BUFFER;
    for (size_t i = 0; i < n; i++) {
        size_t shift = 8 * (n - 1 - i); /* padding wider than 4 bytes is zeros */
        o->p[o->pos + i] = (uint8_t)(shift < 32 ? v >> shift : 0);
    }
    o->pos += n;
    return 0;
}

/* Rounded division for turning our fixed units back into wire units. */
static int32_t div_round(int32_t v, int32_t d)
{
    if (d <= 1)
        return v;
    return v >= 0 ? (v + d / 2) / d : -((-v + d / 2) / d);
}

/* The k-th temperature of a role in the sample, or the first cell sensor, or 25.0 °C. */
static int32_t temp_of_role(const struct sample *s, uint8_t role, size_t k)
{
    for (size_t i = 0; i < s->ntemps; i++) {
        if (s->temp_role[i] == role && k-- == 0)
            return s->temp_dc[i];
    }
    int32_t cell = sample_temp(s, SAMPLE_TEMP_CELL);
    return cell != SAMPLE_ABSENT ? cell : 250;
}

static size_t count_role(const struct sample *s, uint8_t role)
{
    size_t n = 0;
    for (size_t i = 0; i < s->ntemps; i++)
        n += s->temp_role[i] == role;
    return n;
}

static uint32_t unflags(const struct s42_flag_map *m, const struct sample *s)
{
    uint32_t raw = 0;
    for (size_t i = 0; i < m->nbits; i++) {
        const uint32_t *word = flag_word((struct sample *)(uintptr_t)s, m->bits[i].set);
        if (*word & m->bits[i].flag)
            raw |= 1u << m->bits[i].bit;
    }
    return raw;
}

/* True when the layout has a P/UDI-conditional block and a 16-bit field before it cannot hold
 * the sample's value (Pylontech packs above 65.535 Ah). */
static int needs_extension(const struct s42_op *ops, const struct sample *s)
{
    int has_ext = 0, overflow = 0;
    for (const struct s42_op *op = ops; op->kind != OP_END; op++) {
        if (op->kind == OP_IF_USERDEF_GT)
            has_ext = 1;
        if (op->kind == OP_NUM && !has_ext && op->width == 2 && !op->sign && op->mul > 0) {
            const int32_t *f = num_field((struct sample *)(uintptr_t)s, op->target);
            if (f && *f != SAMPLE_ABSENT && div_round(*f, op->mul) > 0xFFFF)
                overflow = 1;
        }
    }
    return has_ext && overflow;
}

/* What the encoding ops share: the INFO written so far and what it is written from. */
struct encode {
    struct out o;
    const struct s42_variant *v;
    const struct sample *s;
    const struct s42_identity *id;
    uint32_t userdef; /* the last OP_USERDEF byte written: which optional part follows */
    int extended;     /* a value needs the P/UDI-announced extension (needs_extension) */
};

/* A number in wire units; one that does not fit its unsigned field is sent as all ones. */
static int encode_num(struct encode *e, const struct s42_op *op)
{
    int32_t val = 0;
    if (op->target == T_PROTOCOL) {
        val = e->id ? e->id->protocol_version : 0;
    } else {
        const int32_t *f = num_field((struct sample *)(uintptr_t)e->s, op->target);
        if (f && *f != SAMPLE_ABSENT)
            val = div_round(*f, op->mul);
    }
    if (!op->sign && op->width < 4 && (uint32_t)val >> (8 * op->width))
        val = -1; /* does not fit: all ones, as packs with the extension send */
    return put_be(&e->o, (uint32_t)val, op->width);
}

/* The count byte, then each cell voltage in 16 bits. */
static int encode_cells(struct encode *e)
{
    int err = put_be(&e->o, e->s->ncells, 1);
    for (size_t i = 0; i < e->s->ncells && err == 0; i++)
        err = put_be(&e->o, (uint32_t)e->s->cell_mv[i], 2);
    return err;
}

/* A count byte and the sensors the role scheme wants (OP_TEMPS), or one temperature (OP_TEMP). */
static int encode_temps(struct encode *e, const struct s42_op *op)
{
    const struct sample *s = e->s;
    if (op->kind == OP_TEMP)
        return put_be(&e->o, temp_encode(e->v->temp_enc, temp_of_role(s, (uint8_t)op->arg, 0)),
                      2);
    size_t ncell = count_role(s, SAMPLE_TEMP_CELL);
    size_t n = ncell;
    if (op->arg == ROLES_MOS_ENV_TAIL || op->arg == ROLES_ENV_MOS_TAIL)
        n = ncell < 4 ? 6 : ncell + 2;
    else if (op->arg == ROLES_BOARD_HEAD)
        n = ncell + 1;
    int err = put_be(&e->o, (uint32_t)n, 1);
    size_t kcell = 0;
    for (size_t i = 0; i < n && err == 0; i++) {
        uint8_t role = temp_role(op->arg, i, n);
        size_t k = role == SAMPLE_TEMP_CELL ? kcell++ : 0;
        err = put_be(&e->o, temp_encode(e->v->temp_enc, temp_of_role(s, role, k)), 2);
    }
    return err;
}

/* The balancing bits, in the byte order decode_balance reads them. */
static int encode_balance(struct encode *e, const struct s42_op *op)
{
    struct out *o = &e->o;
    if (o->pos + op->width > o->cap)
        return -S42_E_BUFFER;
    for (size_t i = 0; i < op->width; i++) {
        size_t byte_idx = op->sign ? i : op->width - 1 - i;
        o->p[o->pos + byte_idx] = (uint8_t)(e->s->balancing >> (op->arg + 8 * (int32_t)i));
    }
    o->pos += op->width;
    return 0;
}

/* A count byte, then one state byte per cell or per probe: all normal. */
static int encode_states(struct encode *e, const struct s42_op *op)
{
    size_t n = op->kind == OP_CELL_STATES ? e->s->ncells : e->s->ntemps;
    int err = put_be(&e->o, (uint32_t)n, 1);
    for (size_t i = 0; i < n && err == 0; i++)
        err = put_be(&e->o, 0, 1);
    return err;
}

/* Identity text: ASCII padded with blanks (OP_ASCII), or "vv.vv.vv" as bytes (OP_VERSION). */
static int encode_text(struct encode *e, const struct s42_op *op)
{
    struct out *o = &e->o;
    size_t fcap = 0;
    char *src = e->id ? id_field((struct s42_identity *)(uintptr_t)e->id, op->target, &fcap)
                      : NULL;
    if (o->pos + op->width > o->cap)
        return -S42_E_BUFFER;
    if (op->kind == OP_ASCII) {
        size_t n = src ? strnlen(src, fcap) : 0;
        for (size_t i = 0; i < op->width; i++)
            o->p[o->pos + i] = i < n ? (uint8_t)src[i] : ' ';
    } else {
        /* "01.00.02" -> 01 00 02 */
        const char *q = src ? src : "";
        for (size_t i = 0; i < op->width; i++) {
            unsigned val = 0;
            while (*q >= '0' && *q <= '9')
                val = val * 10 + (unsigned)(*q++ - '0');
            if (*q == '.')
                q++;
            o->p[o->pos + i] = (uint8_t)val;
        }
    }
    o->pos += op->width;
    return 0;
}

int s42_layout_encode(const struct s42_variant *v, const struct s42_op *ops,
                      const struct sample *s, const struct s42_identity *id, uint8_t *info,
                      size_t cap)
{
    struct encode e = {
        .o = {info, cap, 0}, .v = v, .s = s, .id = id, .extended = needs_extension(ops, s)};
    for (const struct s42_op *op = ops; op->kind != OP_END; op++) {
        int err = 0;
        switch (op->kind) {
        case OP_SKIP: err = put_be(&e.o, 0, op->width); break;
        case OP_NUM: err = encode_num(&e, op); break;
        case OP_CELLS: err = encode_cells(&e); break;
        case OP_TEMPS:
        case OP_TEMP: err = encode_temps(&e, op); break;
        case OP_USERDEF:
            /* .arg is the standard P/UDI; .mul the one announcing the 24-bit extension */
            e.userdef = (uint32_t)(e.extended ? op->mul : op->arg);
            err = put_be(&e.o, e.userdef, 1);
            break;
        case OP_IF_USERDEF_GT:
            if (e.userdef <= (uint32_t)op->arg)
                op += op->width; /* the optional part is absent: skip its ops */
            break;
        case OP_FLAGS: err = put_be(&e.o, unflags(&v->flag_maps[op->arg], s), op->width); break;
        case OP_BALANCE: err = encode_balance(&e, op); break;
        case OP_CELL_STATES:
        case OP_TEMP_STATES: err = encode_states(&e, op); break;
        case OP_STATE:
            err = put_be(&e.o, (s->alarms & limit_flags[op->arg][1]) ? 2u : 0u, 1);
            break;
        case OP_ASCII:
        case OP_VERSION: err = encode_text(&e, op); break;
        default: return -S42_E_UNSUPPORTED;
        }
        if (err)
            return err;
    }
    return (int)e.o.pos;
}
