/* mbmap: the PACE Modbus register map (docs/reference/MODBUS.md) as one table that decodes
 * registers 0..36 into a sample and encodes a sample back (the simulator serves exactly what the
 * decoder reads), the RTU CRC, the exception names, and hex dumps of answers for `decode`.
 * Pure: no I/O, no clock, no logging. */
#include "mbmap.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define ANSWER_LEN  MBMAP_ANSWER_LEN
#define TEMP_MIN_DC (-400)  /* outside -40.0 .. +120.0 °C: "not measured" */
#define TEMP_MAX_DC 1200
#define TEMP_NONE   0x8000u /* what we serve for a sensor that is not there */

/* ---- the register map ---- */

enum mb_kind { MB_VALUE, MB_FLAGS, MB_BALANCE, MB_CELLS, MB_TEMPS };

struct mb_bit {
    uint16_t mask;
    uint32_t state; /* SAMPLE_STATE_* */
};

/* The only status bits MODBUS.md documents; the other bits stay in raw_status. */
static const struct mb_bit status_bits[2] = {
    {0x0080, SAMPLE_STATE_CHG_FET},
    {0x0100, SAMPLE_STATE_DSG_FET},
};

struct mb_reg {
    size_t field;              /* MB_VALUE: offsetof(struct sample, x); MB_FLAGS: raw_status[] */
    const struct mb_bit *bits; /* MB_FLAGS: named bits, or NULL */
    size_t nbits;
    enum mb_kind kind;
    int32_t scale; /* one register unit in the sample's unit */
    uint8_t reg, count;
    bool int16;   /* else uint16 */
    uint8_t role; /* MB_TEMPS: enum sample_temp_role */
};

/* clang-format off */
#define VALUE(r, i16, sc, f) \
    {.reg = (r), .count = 1, .kind = MB_VALUE, .int16 = (i16), .scale = (sc), \
     .field = offsetof(struct sample, f)}
#define FLAGS(r, idx, b, nb) \
    {.reg = (r), .count = 1, .kind = MB_FLAGS, .field = (idx), .bits = (b), .nbits = (nb)}
#define ROW(r, n, k, i16, rl) {.reg = (r), .count = (n), .kind = (k), .int16 = (i16), .role = (rl)}

static const struct mb_reg mb_map[] = {
    /*    reg int16  scale  field */
    VALUE(0,  true,  10,    current_ma),    /* 10 mA, + = charging */
    VALUE(1,  false, 10,    voltage_mv),    /* 10 mV */
    VALUE(2,  false, 100,   soc_cpct),      /* % */
    VALUE(3,  false, 100,   soh_cpct),      /* % */
    VALUE(4,  false, 10,    remaining_mah), /* 10 mAh */
    VALUE(5,  false, 10,    full_mah),
    VALUE(6,  false, 10,    design_mah),
    VALUE(7,  false, 1,     cycles),
    /* 8 reserved;     raw_status[] */
    FLAGS(9,           0, NULL, 0),         /* warning */
    FLAGS(10,          1, NULL, 0),         /* protection */
    FLAGS(11,          2, status_bits, 2),  /* status */
    /*  reg count             kind        int16  role */
    ROW(12, 1,                MB_BALANCE, false, 0),                   /* bit i = cell i+1 */
    /* 13-14 reserved */
    ROW(15, MBMAP_MAX_CELLS, MB_CELLS,   false, 0),                   /* mV; 0, 0xFFFF: none */
    ROW(31, 4,                MB_TEMPS,   true,  SAMPLE_TEMP_CELL),    /* 0.1 °C */
    ROW(35, 1,                MB_TEMPS,   true,  SAMPLE_TEMP_MOS),
    ROW(36, 1,                MB_TEMPS,   true,  SAMPLE_TEMP_AMBIENT),
};
/* clang-format on */
#define NRAW 3 /* raw_status words: warning, protection, status */

static int32_t *field_of(struct sample *s, size_t off)
{
    return (int32_t *)(void *)((char *)s + off);
}

static int32_t reg_value(const struct mb_reg *m, uint16_t r)
{
    return m->int16 ? (int32_t)(int16_t)r : (int32_t)r;
}

int mbmap_decode(const uint16_t regs[MBMAP_NREGS], struct sample *out)
{
    struct sample s;
    sample_init(&s);
    s.nraw_status = NRAW;
    for (size_t i = 0; i < sizeof mb_map / sizeof mb_map[0]; i++) {
        const struct mb_reg *m = &mb_map[i];
        const uint16_t *r = &regs[m->reg];
        switch (m->kind) {
        case MB_VALUE:
            *field_of(&s, m->field) = reg_value(m, r[0]) * m->scale;
            break;
        case MB_FLAGS:
            s.raw_status[m->field] = r[0];
            for (size_t b = 0; b < m->nbits; b++)
                if (r[0] & m->bits[b].mask)
                    s.state |= m->bits[b].state;
            break;
        case MB_BALANCE:
            s.balancing = r[0];
            break;
        case MB_CELLS:
            for (size_t c = 0; c < m->count && r[c] != 0 && r[c] != 0xFFFF; c++)
                s.cell_mv[s.ncells++] = r[c];
            break;
        case MB_TEMPS:
            for (size_t t = 0; t < m->count; t++) {
                int32_t v = reg_value(m, r[t]);
                if (v < TEMP_MIN_DC || v > TEMP_MAX_DC)
                    continue;
                s.temp_role[s.ntemps] = m->role;
                s.temp_dc[s.ntemps++] = v;
            }
            break;
        }
    }
    s.has = SAMPLE_HAS_ANALOG | SAMPLE_HAS_ALARMS | SAMPLE_HAS_BALANCE;
    sample_finish(&s);
    *out = s;
    return 0;
}

/* v / scale rounded half away from zero, checked against the register's range. */
static int to_reg(const struct mb_reg *m, int32_t v, uint16_t *r)
{
    int64_t q = v == SAMPLE_ABSENT ? 0 : v;
    q = q >= 0 ? (q + m->scale / 2) / m->scale : -((-q + m->scale / 2) / m->scale);
    if (m->int16 ? (q < INT16_MIN || q > INT16_MAX) : (q < 0 || q > UINT16_MAX))
        return -ERANGE;
    *r = (uint16_t)(q & 0xFFFF);
    return 0;
}

/* The k-th temperature with the given role, or TEMP_NONE. */
static int temp_reg(const struct sample *s, uint8_t role, size_t k, uint16_t *r)
{
    for (size_t i = 0; i < s->ntemps; i++) {
        if (s->temp_role[i] != role || k-- > 0)
            continue;
        if (s->temp_dc[i] < INT16_MIN || s->temp_dc[i] > INT16_MAX)
            return -ERANGE;
        *r = (uint16_t)(s->temp_dc[i] & 0xFFFF);
        return 0;
    }
    *r = TEMP_NONE;
    return 0;
}

int mbmap_encode(const struct sample *s, uint16_t regs[MBMAP_NREGS])
{
    uint16_t out[MBMAP_NREGS] = {0};
    struct sample tmp = *s; /* field_of wants a non-const sample */
    if (s->ncells > MBMAP_MAX_CELLS)
        return -ERANGE;
    for (size_t i = 0; i < sizeof mb_map / sizeof mb_map[0]; i++) {
        const struct mb_reg *m = &mb_map[i];
        uint16_t *r = &out[m->reg];
        int rc = 0;
        switch (m->kind) {
        case MB_VALUE:
            rc = to_reg(m, *field_of(&tmp, m->field), r);
            break;
        case MB_FLAGS: {
            uint16_t w = m->field < s->nraw_status ? s->raw_status[m->field] : 0;
            for (size_t b = 0; b < m->nbits; b++) /* the named bits follow the state flags */
                w = (uint16_t)((s->state & m->bits[b].state) ? (w | m->bits[b].mask)
                                                             : (w & ~m->bits[b].mask));
            r[0] = w;
            break;
        }
        case MB_BALANCE:
            r[0] = (uint16_t)(s->balancing & 0xFFFF);
            break;
        case MB_CELLS:
            for (size_t c = 0; c < s->ncells; c++) {
                if (s->cell_mv[c] <= 0 || s->cell_mv[c] >= 0xFFFF)
                    return -ERANGE;
                r[c] = (uint16_t)s->cell_mv[c];
            }
            break;
        case MB_TEMPS:
            for (size_t t = 0; t < m->count && rc == 0; t++)
                rc = temp_reg(s, m->role, t, &r[t]);
            break;
        }
        if (rc != 0)
            return rc;
    }
    memcpy(regs, out, sizeof out);
    return 0;
}

uint16_t mbmap_crc16(const uint8_t *buf, size_t n)
{
    /* CRC of each nibble value under the reflected polynomial 0xA001 */
    static const uint16_t nib[16] = {0x0000, 0xCC01, 0xD801, 0x1400, 0xF001, 0x3C00,
                                     0x2800, 0xE401, 0xA001, 0x6C00, 0x7800, 0xB401,
                                     0x5000, 0x9C01, 0x8801, 0x4400};
    uint16_t crc = 0xFFFF;
    for (size_t i = 0; i < n; i++) {
        crc = (uint16_t)((crc >> 4) ^ nib[(crc ^ buf[i]) & 0xF]);
        crc = (uint16_t)((crc >> 4) ^ nib[(crc ^ (buf[i] >> 4)) & 0xF]);
    }
    return crc;
}

/* ---- exceptions ---- */

static const struct {
    unsigned code;
    const char *name, *advice;
} exceptions[] = {
    {1, "illegal function", "it cannot read holding registers: is it a PACE-compatible BMS?"},
    {2, "illegal data address",
     "it has no registers 0-36: check that it is a PACE-compatible BMS (MODBUS.md)"},
    {3, "illegal data value", "it refuses a 37-register read: is it a PACE-compatible BMS?"},
    {4, "slave device failure", "the BMS reports an internal failure: check the pack"},
    {5, "acknowledge", "the BMS is busy with a long operation: poll less often"},
    {6, "slave device busy", "the BMS is busy: poll less often"},
    {8, "memory parity error", "the BMS reports a memory error: check the pack"},
    {10, "gateway path unavailable", "a gateway between us and the pack is misconfigured"},
    {11, "gateway target device failed to respond", "the gateway got no answer from the pack"},
};

/* The name (advice false) or what to do (advice true) for an exception code. */
static const char *exception_text(unsigned code, bool advice)
{
    for (size_t i = 0; i < sizeof exceptions / sizeof exceptions[0]; i++)
        if (exceptions[i].code == code)
            return advice ? exceptions[i].advice : exceptions[i].name;
    return advice ? "not a code Modbus defines: is it a PACE-compatible BMS?" : "unknown exception";
}

const char *mbmap_exception_name(unsigned code)
{
    return exception_text(code, false);
}

const char *mbmap_exception_advice(unsigned code)
{
    return exception_text(code, true);
}

/* ---- hex dumps ---- */

int mbmap_parse_hex(const char *text, uint16_t regs[MBMAP_NREGS], uint8_t *slave, char *why,
                     size_t whylen)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t b[ANSWER_LEN];
    size_t n = 0, digits = 0;
    for (const char *c = text; *c != '\0'; c++) {
        if (c[0] == '0' && (c[1] == 'x' || c[1] == 'X') && digits % 2 == 0) {
            c++;
        } else if (isxdigit((unsigned char)*c)) {
            if (n == sizeof b) {
                snprintf(why, whylen, "more than %d bytes", ANSWER_LEN);
                return -EINVAL;
            }
            size_t v = (size_t)(strchr(hex, tolower((unsigned char)*c)) - hex);
            b[n] = (uint8_t)(digits++ % 2 ? (size_t)b[n] << 4 | v : v);
            n += digits % 2 == 0;
        } else if (!isspace((unsigned char)*c) && strchr(":,-", *c) == NULL) {
            snprintf(why, whylen, "'%c' is not a hex digit", *c);
            return -EINVAL;
        }
    }
    uint16_t crc = n == ANSWER_LEN ? mbmap_crc16(b, n - 2) : 0;
    if (digits % 2)
        snprintf(why, whylen, "an odd number of hex digits");
    else if (n != ANSWER_LEN && n != 2 * MBMAP_NREGS)
        snprintf(why, whylen, "%zu bytes: expected %d (registers 0-36) or %d (an answer frame)", n,
                 2 * MBMAP_NREGS, ANSWER_LEN);
    else if (n == ANSWER_LEN && (b[1] != MBMAP_FC_READ || b[2] != 2 * MBMAP_NREGS))
        snprintf(why, whylen, "not an answer to a %d-register read (function %02X, %u bytes)",
                 MBMAP_NREGS, b[1], b[2]);
    else if (n == ANSWER_LEN && (b[n - 2] | b[n - 1] << 8) != crc)
        snprintf(why, whylen, "CRC %02X %02X, expected %02X %02X", b[n - 2], b[n - 1], crc & 0xFF,
                 crc >> 8);
    else {
        const uint8_t *data = n == ANSWER_LEN ? b + 3 : b;
        for (size_t i = 0; i < MBMAP_NREGS; i++)
            regs[i] = (uint16_t)(data[2 * i] << 8 | data[2 * i + 1]);
        if (slave != NULL)
            *slave = n == ANSWER_LEN ? b[0] : 0;
        return 0;
    }
    return -EINVAL;
}
