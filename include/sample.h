/* sample: one decoded reading of one pack, as plain values.
 *
 * Everything is an exact integer in a fixed unit (mV, mA, mAh, 0.1 °C, 0.01 %), so storage can
 * keep it losslessly and no float rounding creeps into the codec. A value the pack did not send
 * is SAMPLE_ABSENT, never 0. */
#ifndef BMSFLEET_SAMPLE_H
#define BMSFLEET_SAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SAMPLE_ABSENT INT32_MIN
#define SAMPLE_MAX_CELLS 32
#define SAMPLE_MAX_TEMPS 16

enum sample_temp_role {
    SAMPLE_TEMP_CELL = 0,
    SAMPLE_TEMP_MOS,
    SAMPLE_TEMP_AMBIENT,
    SAMPLE_TEMP_AVG, /* pack or BMS-board average, as the BMS reports it */
};

/* Alarm (warning) flags: the pack is near a limit. */
enum {
    SAMPLE_ALARM_CELL_OV = 1u << 0,
    SAMPLE_ALARM_CELL_UV = 1u << 1,
    SAMPLE_ALARM_PACK_OV = 1u << 2,
    SAMPLE_ALARM_PACK_UV = 1u << 3,
    SAMPLE_ALARM_CHG_OC = 1u << 4,
    SAMPLE_ALARM_DSG_OC = 1u << 5,
    SAMPLE_ALARM_CHG_HT = 1u << 6,
    SAMPLE_ALARM_CHG_LT = 1u << 7,
    SAMPLE_ALARM_DSG_HT = 1u << 8,
    SAMPLE_ALARM_DSG_LT = 1u << 9,
    SAMPLE_ALARM_ENV_HT = 1u << 10,
    SAMPLE_ALARM_ENV_LT = 1u << 11,
    SAMPLE_ALARM_MOS_HT = 1u << 12,
    SAMPLE_ALARM_SOC_LOW = 1u << 13,
    SAMPLE_ALARM_CELL_DIFF = 1u << 14,
    SAMPLE_ALARM_FAULT = 1u << 15, /* internal fault reported by the BMS */
    SAMPLE_ALARM_TEMP_HT = 1u << 16, /* a temperature sensor above its upper limit */
    SAMPLE_ALARM_TEMP_LT = 1u << 17, /* a temperature sensor below its lower limit */
};
#define SAMPLE_ALARM_COUNT 18

/* Protection flags: the BMS acted (opened a FET). */
enum {
    SAMPLE_PROT_CELL_OV = 1u << 0,
    SAMPLE_PROT_CELL_UV = 1u << 1,
    SAMPLE_PROT_PACK_OV = 1u << 2,
    SAMPLE_PROT_PACK_UV = 1u << 3,
    SAMPLE_PROT_CHG_OC = 1u << 4,
    SAMPLE_PROT_DSG_OC = 1u << 5,
    SAMPLE_PROT_SHORT = 1u << 6,
    SAMPLE_PROT_CHG_HT = 1u << 7,
    SAMPLE_PROT_CHG_LT = 1u << 8,
    SAMPLE_PROT_DSG_HT = 1u << 9,
    SAMPLE_PROT_DSG_LT = 1u << 10,
    SAMPLE_PROT_ENV_HT = 1u << 11,
    SAMPLE_PROT_ENV_LT = 1u << 12,
    SAMPLE_PROT_MOS_HT = 1u << 13,
    SAMPLE_PROT_CELL_DIFF = 1u << 14,
    SAMPLE_PROT_FUSE = 1u << 15,
};
#define SAMPLE_PROT_COUNT 16

/* State flags. */
enum {
    SAMPLE_STATE_CHG_FET = 1u << 0,
    SAMPLE_STATE_DSG_FET = 1u << 1,
    SAMPLE_STATE_CHARGING = 1u << 2,
    SAMPLE_STATE_DISCHARGING = 1u << 3,
};
#define SAMPLE_STATE_COUNT 4

/* What parts of the sample a frame filled in (a 0x42 and a 0x44 answer merge into one). */
enum {
    SAMPLE_HAS_ANALOG = 1u << 0,
    SAMPLE_HAS_ALARMS = 1u << 1, /* alarm/prot/state flags are meaningful */
    SAMPLE_HAS_BALANCE = 1u << 2,
    /* the pack refused or ignored the alarm command (0x44): alarm/prot/state flags are
     * unknown, not zero (SAMPLE_HAS_ALARMS is not set) */
    SAMPLE_ALARMS_UNSUPPORTED = 1u << 3,
    /* the alarm/prot/state/balancing flags (SAMPLE_HAS_ALARMS set) are not from this poll but
     * carried from the pack's last 0x44 answer, alarms_age polls before (ports[].alarms_every) */
    SAMPLE_ALARMS_CARRIED = 1u << 4,
};

struct sample {
    uint8_t address;
    uint32_t has; /* SAMPLE_HAS_* */

    int32_t voltage_mv;
    int32_t current_ma; /* positive = charging, negative = discharging */
    int32_t soc_cpct;   /* 0.01 % */
    int32_t soh_cpct;   /* 0.01 % */
    int32_t remaining_mah;
    int32_t full_mah;
    int32_t design_mah;
    int32_t cycles;

    uint8_t ncells;
    int32_t cell_mv[SAMPLE_MAX_CELLS];
    uint8_t ntemps;
    int32_t temp_dc[SAMPLE_MAX_TEMPS]; /* 0.1 °C */
    uint8_t temp_role[SAMPLE_MAX_TEMPS];

    /* derived by sample_finish() from the cells */
    int32_t cell_min_mv, cell_max_mv, cell_diff_mv;
    int8_t cell_min_idx, cell_max_idx; /* 1-based, 0 when no cells */

    uint32_t alarms;     /* SAMPLE_ALARM_* */
    uint32_t protection; /* SAMPLE_PROT_* */
    uint32_t state;      /* SAMPLE_STATE_* */
    uint32_t balancing;  /* bit i = cell i+1 balancing */

    /* raw status words as the BMS sent them, for the variants that have them (0 otherwise) */
    uint16_t raw_status[8];
    uint8_t nraw_status;

    uint16_t alarms_age; /* SAMPLE_ALARMS_CARRIED: polls since the flags were read; else 0 */
};

void sample_init(struct sample *s);
/* Computes the derived cell statistics. Call after every field is filled. */
void sample_finish(struct sample *s);
/* First temperature with the given role, or SAMPLE_ABSENT. */
int32_t sample_temp(const struct sample *s, enum sample_temp_role role);
const char *sample_temp_role_name(enum sample_temp_role role);
const char *sample_alarm_name(unsigned bit);
const char *sample_prot_name(unsigned bit);
const char *sample_state_name(unsigned bit);

#endif
