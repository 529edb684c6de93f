/* s42_variants: the protocol variants as data (one row each: VER, CID1, units, INFO layouts,
 * status-bit maps) and the public decode/encode entry points that walk those layouts.
 * Sources for every layout and bit: docs/reference/SERVICE42.md §2–§3 (see docs/protocol.md
 * for the choices made where the sources disagree or are silent). */
#include <string.h>

#include "s42_internal.h"

#define N_(a) (sizeof(a) / sizeof((a)[0]))

/* Layout steps, written as a readable list per variant. */
#define SKIP(n) {OP_SKIP, n, T_NONE, 0, 0, 0}
#define U8(t, m) {OP_NUM, 1, t, 0, m, 0}
#define U16(t, m) {OP_NUM, 2, t, 0, m, 0}
#define S16(t, m) {OP_NUM, 2, t, 1, m, 0}
#define U24(t, m) {OP_NUM, 3, t, 0, m, 0}
#define CELLS {OP_CELLS, 0, T_NONE, 0, 0, 0}
#define TEMPS(scheme) {OP_TEMPS, 0, T_NONE, 0, 0, scheme}
#define TEMP(role) {OP_TEMP, 2, T_NONE, 0, 0, role}
#define USERDEF(std, ext) {OP_USERDEF, 1, T_NONE, 0, ext, std}
#define IF_USERDEF_GT(v, nops) {OP_IF_USERDEF_GT, nops, T_NONE, 0, 0, v}
#define FLAGS(w, map) {OP_FLAGS, w, T_NONE, 0, 0, map}
#define BALANCE(w, first, lsb_first) {OP_BALANCE, w, T_NONE, lsb_first, 0, first}
#define CELL_STATES {OP_CELL_STATES, 0, T_NONE, 0, 0, 0}
#define TEMP_STATES {OP_TEMP_STATES, 0, T_NONE, 0, 0, 0}
#define STATE(limit) {OP_STATE, 1, T_NONE, 0, 0, limit}
#define ASCII(n, t) {OP_ASCII, n, t, 0, 0, 0}
#define VERSION(n, t) {OP_VERSION, n, t, 0, 0, 0}
#define END {OP_END, 0, T_NONE, 0, 0, 0}

#define A(bit, flag) {bit, SET_ALARM, SAMPLE_ALARM_##flag}
#define P(bit, flag) {bit, SET_PROT, SAMPLE_PROT_##flag}
#define S(bit, flag) {bit, SET_STATE, SAMPLE_STATE_##flag}
#define MAP(bits) {bits, (uint8_t)N_(bits)}

/* ---------------- Daren (VER 0x22, CID1 0x4A): SERVICE42.md §2a, §3 ---------------- */

static const struct s42_op daren_analog[] = {
    SKIP(1), /* DATAFLAG */
    U16(T_SOC, 1), U16(T_VOLTAGE, 10), CELLS,
    TEMP(SAMPLE_TEMP_AMBIENT), TEMP(SAMPLE_TEMP_AVG), TEMP(SAMPLE_TEMP_MOS), TEMPS(ROLES_ALL_CELL),
    S16(T_CURRENT, 10), SKIP(2), /* internal resistance */
    U16(T_SOH, 100), SKIP(1),    /* user-defined byte */
    U16(T_FULL, 10), U16(T_REMAIN, 10), U16(T_CYCLES, 1),
    FLAGS(2, 0), FLAGS(2, 1), FLAGS(2, 2), FLAGS(2, 3), FLAGS(2, 4),
    SKIP(8),                                  /* per-cell OV/UV protection and alarm bitmaps */
    BALANCE(2, 0, 0), BALANCE(2, 16, 0),      /* balancing cells 1-16, 17-32 */
    SKIP(8),                                  /* the same four bitmaps for cells 17+ */
    FLAGS(1, 5), SKIP(2),                     /* machine status, IO status */
    END};

static const struct s42_flag_bit daren_volt[] = {
    P(0, CELL_OV), P(1, CELL_UV), P(2, PACK_OV), P(3, PACK_UV), A(4, CELL_OV), A(5, CELL_UV),
    A(6, PACK_OV), A(7, PACK_UV), A(8, CELL_DIFF), P(13, FUSE), P(14, CELL_DIFF)};
static const struct s42_flag_bit daren_curr[] = {P(2, CHG_OC), P(3, SHORT), P(4, DSG_OC),
                                                 P(5, DSG_OC), A(6, CHG_OC), A(7, DSG_OC)};
static const struct s42_flag_bit daren_temp[] = {
    P(0, CHG_HT), P(1, CHG_LT), P(2, DSG_HT), P(3, DSG_LT), P(4, ENV_HT), P(6, MOS_HT),
    A(8, CHG_HT), A(9, CHG_LT), A(10, DSG_HT), A(11, DSG_LT), A(12, ENV_HT), A(14, MOS_HT)};
static const struct s42_flag_bit daren_alarm[] = {A(1, FAULT), A(2, FAULT), A(3, FAULT),
                                                  A(4, FAULT), A(5, FAULT), A(6, FAULT),
                                                  A(7, SOC_LOW)};
static const struct s42_flag_bit daren_fet[] = {S(0, CHG_FET), S(1, DSG_FET)};
static const struct s42_flag_bit daren_machine[] = {S(3, DISCHARGING), S(4, CHARGING)};
static const struct s42_flag_map daren_maps[] = {MAP(daren_volt),  MAP(daren_curr),
                                                 MAP(daren_temp),  MAP(daren_alarm),
                                                 MAP(daren_fet),   MAP(daren_machine)};

static const struct s42_op daren_protocol[] = {U8(T_PROTOCOL, 1), END};
static const struct s42_op daren_manufacturer[] = {
    ASCII(10, T_HARDWARE), ASCII(10, T_PRODUCT), ASCII(10, T_PROJECT), VERSION(3, T_SOFTWARE),
    SKIP(2), /* boot version */
    END};
static const struct s42_op daren_sysparam[] = {
    SKIP(25), /* limits, cell count, current limit, design capacity, intervals, balance mode */
    SKIP(20), /* product barcode (0xFF when unset) */
    ASCII(20, T_SERIAL), END};

static const struct s42_command daren_commands[] = {
    {S42_CID2_ANALOG, REQ_FIXED_01, 0, daren_analog},
    {S42_CID2_PROTOCOL, REQ_NONE, 1, daren_protocol},
    {S42_CID2_MANUFACTURER, REQ_NONE, 1, daren_manufacturer},
    {S42_CID2_SYSPARAM, REQ_FIXED_01, 1, daren_sysparam},
    {0x83, REQ_GROUP_OP, 0, NULL},   /* warning counters: validated, not decoded */
    {0xB0, REQ_MODULE_CAP, 0, NULL}, /* multi-module parameters: validated, not decoded */
};

/* ---------------- PACE v25 (VER 0x25, CID1 0x46): §2b, §3 ---------------- */

static const struct s42_op pace_analog[] = {
    SKIP(1), SKIP(1), /* 00, responding pack address */
    CELLS, TEMPS(ROLES_MOS_ENV_TAIL), S16(T_CURRENT, 10), U16(T_VOLTAGE, 1), U16(T_REMAIN, 10),
    USERDEF(3, 3), U16(T_FULL, 10), U16(T_CYCLES, 1), U16(T_DESIGN, 10),
    END}; /* vendor extra bytes after P > 3 are ignored */

static const struct s42_op pace_alarm[] = {
    SKIP(1), SKIP(1), CELL_STATES, TEMP_STATES,
    STATE(LIMIT_CHG_CURRENT), STATE(LIMIT_PACK_VOLTAGE), STATE(LIMIT_DSG_CURRENT),
    FLAGS(1, 0), FLAGS(1, 1), FLAGS(1, 2), /* protect 1, protect 2, system */
    SKIP(1),                               /* configuration */
    FLAGS(1, 3), BALANCE(2, 0, 0),         /* fault, balancing cells 1-16 */
    FLAGS(1, 4), FLAGS(1, 5),              /* warning 1, warning 2 */
    END};

static const struct s42_flag_bit pace_prot1[] = {P(0, CELL_OV), P(1, CELL_UV), P(2, PACK_OV),
                                                 P(3, PACK_UV), P(4, CHG_OC),  P(5, DSG_OC),
                                                 P(6, SHORT)};
static const struct s42_flag_bit pace_prot2[] = {P(0, CHG_HT), P(1, DSG_HT), P(2, CHG_LT),
                                                 P(3, DSG_LT), P(4, MOS_HT), P(5, ENV_HT),
                                                 P(6, ENV_LT)};
static const struct s42_flag_bit pace_system[] = {S(1, CHG_FET), S(2, DSG_FET),
                                                  S(3, DISCHARGING), S(5, CHARGING)};
static const struct s42_flag_bit pace_fault[] = {A(0, FAULT), A(1, FAULT), A(2, FAULT),
                                                 A(4, FAULT), A(5, FAULT)};
static const struct s42_flag_bit pace_warn1[] = {A(0, CELL_OV), A(1, CELL_UV), A(2, PACK_OV),
                                                 A(3, PACK_UV), A(4, CHG_OC),  A(5, DSG_OC)};
static const struct s42_flag_bit pace_warn2[] = {A(0, CHG_HT), A(1, DSG_HT), A(2, CHG_LT),
                                                 A(3, DSG_LT), A(4, ENV_HT), A(5, ENV_LT),
                                                 A(6, MOS_HT), A(7, SOC_LOW)};
static const struct s42_flag_map pace_maps[] = {MAP(pace_prot1), MAP(pace_prot2),
                                                MAP(pace_system), MAP(pace_fault),
                                                MAP(pace_warn1), MAP(pace_warn2)};

static const struct s42_op pace_hwver[] = {ASCII(20, T_HARDWARE), END};
static const struct s42_op pace_serial[] = {ASCII(20, T_SERIAL), SKIP(20), END};

static const struct s42_command pace_commands[] = {
    {S42_CID2_ANALOG, REQ_ADR, 0, pace_analog},
    {S42_CID2_ALARM, REQ_ADR, 0, pace_alarm},
    {S42_CID2_PACE_HWVER, REQ_NONE, 1, pace_hwver},
    {S42_CID2_PACE_SERIAL, REQ_NONE, 1, pace_serial},
};

/* ---------------- Pylontech (VER 0x20, CID1 0x46): §2c, §3 ---------------- */

static const struct s42_op pylon_analog[] = {
    SKIP(1), SKIP(1), /* INFOFLAG, ADR */
    CELLS, TEMPS(ROLES_BOARD_HEAD), S16(T_CURRENT, 100), U16(T_VOLTAGE, 1), U16(T_REMAIN, 1),
    USERDEF(2, 4), U16(T_FULL, 1), U16(T_CYCLES, 1),
    IF_USERDEF_GT(2, 2), U24(T_REMAIN, 1), U24(T_FULL, 1), /* 3-byte capacity extension */
    END};

static const struct s42_op pylon_alarm[] = {
    SKIP(1), SKIP(1), CELL_STATES, TEMP_STATES,
    STATE(LIMIT_CHG_CURRENT), STATE(LIMIT_PACK_VOLTAGE), STATE(LIMIT_DSG_CURRENT),
    FLAGS(1, 0), FLAGS(1, 1), SKIP(3), /* status 1, status 2, status 3-5 */
    END};

static const struct s42_flag_bit pylon_status1[] = {P(0, PACK_OV), P(1, CELL_UV), P(2, CHG_OC),
                                                    P(4, DSG_OC),  P(5, DSG_HT),  P(6, CHG_HT),
                                                    P(7, PACK_UV)};
static const struct s42_flag_bit pylon_status2[] = {S(1, DSG_FET), S(2, CHG_FET)};
static const struct s42_flag_map pylon_maps[] = {MAP(pylon_status1), MAP(pylon_status2)};

static const struct s42_op pylon_protocol[] = {END}; /* the version is the answer's VER */
static const struct s42_op pylon_manufacturer[] = {ASCII(10, T_HARDWARE), VERSION(2, T_SOFTWARE),
                                                   ASCII(20, T_MANUFACTURER), END};
static const struct s42_op pylon_serial[] = {SKIP(1), ASCII(16, T_SERIAL), END};

static const struct s42_command pylon_commands[] = {
    {S42_CID2_ANALOG, REQ_ADR, 0, pylon_analog},
    {S42_CID2_ALARM, REQ_ADR, 0, pylon_alarm},
    {S42_CID2_PROTOCOL, REQ_NONE, 1, pylon_protocol},
    {S42_CID2_MANUFACTURER, REQ_NONE, 1, pylon_manufacturer},
    {S42_CID2_PYLON_SERIAL, REQ_ADR, 1, pylon_serial},
    {0x92, REQ_ADR, 0, NULL}, /* charge/discharge management: validated, not decoded */
};

/* ---------------- Seplos v2 (VER 0x20, CID1 0x46): §2d, §3 ---------------- */

static const struct s42_op seplos_analog[] = {
    SKIP(1), SKIP(1), /* DATAFLAG, command group */
    CELLS, TEMPS(ROLES_ENV_MOS_TAIL), S16(T_CURRENT, 10), U16(T_VOLTAGE, 10),
    U16(T_REMAIN, 10), USERDEF(10, 10), U16(T_FULL, 10), U16(T_SOC, 10), U16(T_DESIGN, 10),
    U16(T_CYCLES, 1), U16(T_SOH, 10), SKIP(2), /* port voltage */
    SKIP(8),                                    /* reserved */
    END};

static const struct s42_op seplos_alarm[] = {
    SKIP(1), SKIP(1), CELL_STATES, TEMP_STATES,
    SKIP(1),                  /* charge/discharge current: the events below say which */
    STATE(LIMIT_PACK_VOLTAGE), SKIP(1), /* custom count (20) */
    FLAGS(1, 0), FLAGS(1, 1), FLAGS(1, 2), FLAGS(1, 3), FLAGS(1, 4), FLAGS(1, 5), /* events */
    FLAGS(1, 6), BALANCE(2, 0, 1), FLAGS(1, 7), /* switches, balancing 1-8 / 9-16, system */
    SKIP(10),                                   /* disconnection, events 7-8, reserved */
    END};

static const struct s42_flag_bit seplos_event1[] = {A(0, FAULT), A(1, FAULT), A(2, FAULT),
                                                    A(3, FAULT), A(4, FAULT), A(5, FAULT),
                                                    A(6, FAULT), A(7, FAULT)};
static const struct s42_flag_bit seplos_event2[] = {A(0, CELL_OV), P(1, CELL_OV), A(2, CELL_UV),
                                                    P(3, CELL_UV), A(4, PACK_OV), P(5, PACK_OV),
                                                    A(6, PACK_UV), P(7, PACK_UV)};
static const struct s42_flag_bit seplos_event3[] = {A(0, CHG_HT), P(1, CHG_HT), A(2, CHG_LT),
                                                    P(3, CHG_LT), A(4, DSG_HT), P(5, DSG_HT),
                                                    A(6, DSG_LT), P(7, DSG_LT)};
static const struct s42_flag_bit seplos_event4[] = {A(0, ENV_HT), P(1, ENV_HT), A(2, ENV_LT),
                                                    P(3, ENV_LT), P(4, MOS_HT), A(5, MOS_HT)};
static const struct s42_flag_bit seplos_event5[] = {A(0, CHG_OC), P(1, CHG_OC), A(2, DSG_OC),
                                                    P(3, DSG_OC), P(4, DSG_OC), P(5, SHORT)};
static const struct s42_flag_bit seplos_event6[] = {A(2, SOC_LOW)};
static const struct s42_flag_bit seplos_switch[] = {S(0, DSG_FET), S(1, CHG_FET)};
static const struct s42_flag_bit seplos_system[] = {S(0, DISCHARGING), S(1, CHARGING)};
static const struct s42_flag_map seplos_maps[] = {
    MAP(seplos_event1), MAP(seplos_event2), MAP(seplos_event3), MAP(seplos_event4),
    MAP(seplos_event5), MAP(seplos_event6), MAP(seplos_switch), MAP(seplos_system)};

static const struct s42_command seplos_commands[] = {
    {S42_CID2_ANALOG, REQ_ADR, 0, seplos_analog},
    {S42_CID2_ALARM, REQ_ADR, 0, seplos_alarm},
    {S42_CID2_PROTOCOL, REQ_NONE, 1, pylon_protocol},
    {S42_CID2_MANUFACTURER, REQ_NONE, 1, pylon_manufacturer},
};

/* ---------------- the table ---------------- */

#define VARIANT(nm, v, c1, enc, soc, soh, alarms, cmds, maps)                                      \
    {nm, v, c1, enc, soc, soh, alarms, cmds, N_(cmds), maps}

static const struct s42_variant variants[] = {
    VARIANT("daren", 0x22, 0x4A, TEMP_DECI_C, 0, 0, 1, daren_commands, daren_maps),
    VARIANT("pace", 0x25, 0x46, TEMP_DECI_K_2730, 1, 1, 0, pace_commands, pace_maps),
    VARIANT("pylontech", 0x20, 0x46, TEMP_DECI_K_2731, 1, 0, 0, pylon_commands, pylon_maps),
    VARIANT("seplos", 0x20, 0x46, TEMP_DECI_K_2731, 0, 0, 0, seplos_commands, seplos_maps),
};

const struct s42_variant *s42_variant_at(size_t i)
{
    return i < N_(variants) ? &variants[i] : NULL;
}

const struct s42_variant *s42_variant_find(const char *name)
{
    for (size_t i = 0; i < N_(variants); i++) {
        if (strcmp(variants[i].name, name) == 0)
            return &variants[i];
    }
    return NULL;
}

const char *s42_variant_name(const struct s42_variant *v) { return v->name; }
uint8_t s42_variant_ver(const struct s42_variant *v) { return v->ver; }
uint8_t s42_variant_cid1(const struct s42_variant *v) { return v->cid1; }

/* VER 0x20 / CID1 0x46 is both Pylontech and Seplos: Seplos has the custom count 0x0A where
 * Pylontech has UDI (2 or 4). */
static int looks_like_seplos(const struct s42_frame *f)
{
    size_t pos = 2;
    if (f->info_len <= pos)
        return 0;
    pos += 1 + 2u * f->info[pos];
    if (f->info_len <= pos)
        return 0;
    pos += 1 + 2u * f->info[pos] + 6;
    return pos < f->info_len && f->info[pos] == 0x0A;
}

const struct s42_variant *s42_variant_guess(const struct s42_frame *f)
{
    if (f->ver == 0x20 && f->cid1 == 0x46)
        return s42_variant_find(looks_like_seplos(f) ? "seplos" : "pylontech");
    for (size_t i = 0; i < N_(variants); i++) {
        if (variants[i].ver == f->ver && variants[i].cid1 == f->cid1)
            return &variants[i];
    }
    return NULL;
}

const struct s42_command *s42_find_command(const struct s42_variant *v, uint8_t cid2)
{
    for (size_t i = 0; i < v->ncommands; i++) {
        if (v->commands[i].cid2 == cid2)
            return &v->commands[i];
    }
    return NULL;
}

int s42_has_command(const struct s42_variant *v, uint8_t cid2)
{
    const struct s42_command *c = s42_find_command(v, cid2);
    return c == NULL ? 0 : c->layout ? 2 : 1;
}

size_t s42_identity_commands(const struct s42_variant *v, uint8_t *cid2s, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < v->ncommands && n < cap; i++) {
        if (v->commands[i].identity)
            cid2s[n++] = v->commands[i].cid2;
    }
    return n;
}

int s42_request(const struct s42_variant *v, uint8_t cid2, uint8_t adr, char *buf, size_t cap)
{
    const struct s42_command *c = s42_find_command(v, cid2);
    if (c == NULL)
        return -S42_E_UNSUPPORTED;
    uint8_t info[5] = {0x01, 0x01, 0x04, 0xFF, 0x00};
    size_t len = 0;
    switch (c->req) {
    case REQ_FIXED_01: len = 1; break;
    case REQ_ADR: info[0] = adr; len = 1; break;
    case REQ_GROUP_OP: len = 2; break;
    case REQ_MODULE_CAP: len = 5; break;
    default: break;
    }
    return s42_build(buf, cap, v->ver, adr, v->cid1, cid2, info, len);
}

void s42_identity_init(struct s42_identity *id)
{
    memset(id, 0, sizeof *id);
    id->protocol_version = -1;
}

static int layout_for(const struct s42_variant *v, uint8_t cid2, const struct s42_frame *f,
                      const struct s42_op **ops)
{
    const struct s42_command *c = s42_find_command(v, cid2);
    if (c == NULL || c->layout == NULL)
        return -S42_E_UNSUPPORTED;
    int err = s42_rtn_error(f->cid2); /* an error answer never yields values */
    if (err)
        return -err;
    *ops = c->layout;
    return 0;
}

static int32_t ratio_cpct(int32_t num, int32_t den)
{
    if (num == SAMPLE_ABSENT || den == SAMPLE_ABSENT || den <= 0 || num < 0)
        return SAMPLE_ABSENT;
    int64_t r = ((int64_t)num * 10000 + den / 2) / den;
    return (int32_t)(r > 10000 ? 10000 : r);
}

int s42_decode_analog(const struct s42_variant *v, const struct s42_frame *f, struct sample *out,
                      struct s42_diag *diag)
{
    const struct s42_op *ops;
    int err = layout_for(v, S42_CID2_ANALOG, f, &ops);
    if (err)
        return err;
    struct sample s;
    sample_init(&s);
    s.address = f->adr;
    err = s42_layout_decode(v, ops, f->info, f->info_len, &s, NULL, diag);
    if (err)
        return err;
    if (v->derive_soc)
        s.soc_cpct = ratio_cpct(s.remaining_mah, s.full_mah);
    if (v->derive_soh)
        s.soh_cpct = ratio_cpct(s.full_mah, s.design_mah);
    s.has |= SAMPLE_HAS_ANALOG;
    if (!v->analog_has_alarms)
        s.has &= ~(uint32_t)(SAMPLE_HAS_ALARMS | SAMPLE_HAS_BALANCE);
    sample_finish(&s);
    *out = s;
    return 0;
}

int s42_decode_alarm(const struct s42_variant *v, const struct s42_frame *f, struct sample *io,
                     struct s42_diag *diag)
{
    const struct s42_op *ops;
    int err = layout_for(v, S42_CID2_ALARM, f, &ops);
    if (err)
        return err;
    struct sample s = *io;
    s.alarms = s.protection = s.state = s.balancing = 0;
    s.nraw_status = 0;
    /* The walker writes counts and cells only through OP_CELLS/OP_TEMPS, which alarm layouts
     * do not have, so the analog values of *io stay as they are. */
    err = s42_layout_decode(v, ops, f->info, f->info_len, &s, NULL, diag);
    if (err)
        return err;
    *io = s;
    return 0;
}

int s42_decode_identity(const struct s42_variant *v, uint8_t cid2, const struct s42_frame *f,
                        struct s42_identity *io, struct s42_diag *diag)
{
    /* only an identity layout writes identity fields alone (found by fuzz_s42_info: the 0x42
     * layout here wrote a sample through a NULL pointer) */
    const struct s42_command *c = s42_find_command(v, cid2);
    if (c == NULL || !c->identity)
        return -S42_E_UNSUPPORTED;
    const struct s42_op *ops;
    int err = layout_for(v, cid2, f, &ops);
    if (err)
        return err;
    struct s42_identity id = *io;
    err = s42_layout_decode(v, ops, f->info, f->info_len, NULL, &id, diag);
    if (err)
        return err;
    if (cid2 == S42_CID2_PROTOCOL && f->info_len == 0)
        id.protocol_version = f->ver;
    *io = id;
    return 0;
}

int s42_encode_analog(const struct s42_variant *v, const struct sample *s, uint8_t *info,
                      size_t cap)
{
    const struct s42_command *c = s42_find_command(v, S42_CID2_ANALOG);
    return s42_layout_encode(v, c->layout, s, NULL, info, cap);
}

int s42_encode_alarm(const struct s42_variant *v, const struct sample *s, uint8_t *info,
                     size_t cap)
{
    const struct s42_command *c = s42_find_command(v, S42_CID2_ALARM);
    if (c == NULL || c->layout == NULL)
        return -S42_E_UNSUPPORTED;
    return s42_layout_encode(v, c->layout, s, NULL, info, cap);
}

int s42_encode_identity(const struct s42_variant *v, uint8_t cid2, uint8_t adr,
                        const struct s42_identity *id, uint8_t *info, size_t cap)
{
    (void)adr;
    const struct s42_command *c = s42_find_command(v, cid2);
    if (c == NULL || c->layout == NULL || !c->identity)
        return -S42_E_UNSUPPORTED;
    return s42_layout_encode(v, c->layout, NULL, id, info, cap);
}
