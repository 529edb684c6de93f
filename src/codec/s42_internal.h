/* s42_internal: the data that describes a protocol variant, shared by the variant table
 * (s42_variants.c), the layout walker (s42_layout.c) and the frame layer (s42.c). */
#ifndef BMSFLEET_S42_INTERNAL_H
#define BMSFLEET_S42_INTERNAL_H

#include <stdint.h>

#include "s42.h"

/* One step of an INFO layout. Layouts are walked in order; counts come from the frame. */
enum s42_op_kind {
    OP_END = 0,
    OP_SKIP,        /* width bytes nobody reads */
    OP_NUM,         /* width-byte big-endian number (signed if .sign) × mul into .target */
    OP_CELLS,       /* u8 M, then M × u16 mV */
    OP_TEMPS,       /* u8 N, then N × 2-byte temperatures; roles by .arg (enum s42_temp_scheme) */
    OP_TEMP,        /* one 2-byte temperature with role .arg */
    OP_USERDEF,     /* u8 P / UDI, remembered for OP_IF_USERDEF_GT */
    OP_IF_USERDEF_GT, /* when P <= .arg, skip the next .width ops */
    OP_FLAGS,       /* width-byte bit field mapped through flag map .arg, also kept raw */
    OP_BALANCE,     /* width-byte per-cell bits; .arg = first cell (0-based); .sign = LSB first */
    OP_CELL_STATES, /* u8 M, then M state bytes (0 ok, 1 below, 2 above) */
    OP_TEMP_STATES, /* u8 N, then N state bytes */
    OP_STATE,       /* one state byte about a limit; .arg = enum s42_limit */
    OP_ASCII,       /* width ASCII bytes into identity field .target */
    OP_VERSION,     /* width bytes as dotted two-digit decimal into identity field .target */
};

enum s42_target {
    T_NONE = 0,
    T_SOC, T_SOH, T_VOLTAGE, T_CURRENT, T_REMAIN, T_FULL, T_DESIGN, T_CYCLES,
    T_PROTOCOL,
    T_HARDWARE, T_PRODUCT, T_PROJECT, T_MANUFACTURER, T_SOFTWARE, T_SERIAL,
};

enum s42_temp_enc {
    TEMP_DECI_C = 0, /* signed 0.1 °C */
    TEMP_DECI_K_2730, /* 0.1 K, minus 2730 */
    TEMP_DECI_K_2731, /* 0.1 K, minus 2731 */
};

enum s42_temp_scheme {
    ROLES_ALL_CELL = 0,   /* every sensor is a cell sensor */
    ROLES_MOS_ENV_TAIL,   /* PACE: 4 cell sensors, then MOSFET, then environment */
    ROLES_ENV_MOS_TAIL,   /* Seplos: 4 cell sensors, then environment, then MOSFET */
    ROLES_BOARD_HEAD,     /* Pylontech: BMS board first, then cell groups */
};

enum s42_limit { LIMIT_CHG_CURRENT = 0, LIMIT_PACK_VOLTAGE, LIMIT_DSG_CURRENT };

enum s42_flag_set { SET_ALARM = 0, SET_PROT, SET_STATE };

struct s42_flag_bit {
    uint8_t bit;
    uint8_t set; /* enum s42_flag_set */
    uint32_t flag;
};

struct s42_flag_map {
    const struct s42_flag_bit *bits;
    uint8_t nbits;
};

struct s42_op {
    uint8_t kind;   /* enum s42_op_kind */
    uint8_t width;  /* bytes (or op count for OP_IF_USERDEF_GT) */
    uint8_t target; /* enum s42_target */
    uint8_t sign;
    int32_t mul;    /* wire unit × mul = our unit */
    int32_t arg;
};

enum s42_req_info {
    REQ_NONE = 0,
    REQ_FIXED_01,   /* INFO 01: Daren command group */
    REQ_ADR,        /* INFO = the pack address */
    REQ_GROUP_OP,   /* INFO 01 01: Daren group + read operation (0x83) */
    REQ_MODULE_CAP, /* INFO 01 01 04 FF 00: Daren 0xB0 module 4, capacities */
};

struct s42_command {
    uint8_t cid2;
    uint8_t req;        /* enum s42_req_info */
    uint8_t identity;   /* 1 when part of the identity */
    const struct s42_op *layout; /* NULL: no decoder (the frame is only validated) */
};

struct s42_variant {
    const char *name;
    uint8_t ver, cid1;
    uint8_t temp_enc;          /* enum s42_temp_enc */
    uint8_t derive_soc;        /* SOC not sent: remaining / full */
    uint8_t derive_soh;        /* SOH not sent: full / design */
    uint8_t analog_has_alarms; /* the 0x42 answer carries the status words (Daren) */
    const struct s42_command *commands;
    size_t ncommands;
    const struct s42_flag_map *flag_maps; /* indexed by OP_FLAGS .arg */
};

const struct s42_command *s42_find_command(const struct s42_variant *v, uint8_t cid2);

/* The walker. out_sample or out_id receive what the layout targets. */
int s42_layout_decode(const struct s42_variant *v, const struct s42_op *ops,
                      const uint8_t *info, size_t len, struct sample *out_sample,
                      struct s42_identity *out_id, struct s42_diag *diag);
int s42_layout_encode(const struct s42_variant *v, const struct s42_op *ops,
                      const struct sample *s, const struct s42_identity *id, uint8_t *info,
                      size_t cap);

#endif
