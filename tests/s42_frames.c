/* s42_frames: see s42_frames.h. The INFO arrays are written byte by byte from SERVICE42.md, never
 * with s42_encode_*; each is followed by what it must decode to. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "s42_frames.h"
#include "s42_helpers.h"

#define INFO(a) a, sizeof a
/* clang-format off */
#define I32(...) (const int32_t[]){__VA_ARGS__}
#define U8S(...) (const uint8_t[]){__VA_ARGS__}
#define U16S(...) (const uint16_t[]){__VA_ARGS__}
/* clang-format on */
#define HAS_A   SAMPLE_HAS_ANALOG
#define HAS_ALL (SAMPLE_HAS_ANALOG | SAMPLE_HAS_ALARMS | SAMPLE_HAS_BALANCE)

/* clang-format off */

/* ================================================================================================
 * Daren (§2a): the 0x42 answer carries the status words; there is no 0x44 (§3)
 * ============================================================================================= */

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

static const struct analog_case daren_42_15s_case = {
    "daren 0x42 15S", "daren", INFO(daren_42_15s),
    {.adr = 1, .ncells = 15,
     .cells = I32(3330, 3331, 3332, 3333, 3334, 3335, 3336, 3337, 3338, 3339, 3340, 3341, 3342,
                  3343, 3344),
     .ntemps = 7, .temps = I32(-55, 12, 310, -20, 5, 0, 100),
     .roles = U8S(RA, RV, RM, RC, RC, RC, RC), .voltage = 49500, .current = -2000, .soc = 5432,
     .soh = 9800, .remaining = 54320, .full = 100000, .design = ABS, .cycles = 256, .has = HAS_ALL,
     .alarms = SAMPLE_ALARM_SOC_LOW, .protection = 0,
     .state = SAMPLE_STATE_CHG_FET | SAMPLE_STATE_DSG_FET | SAMPLE_STATE_DISCHARGING,
     .balancing = 0x0005, .nraw = 6, .raw = U16S(0, 0, 0, 0x0080, 0x0003, 0x08)}};

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

static const struct analog_case daren_42_8s_case = {
    "daren 0x42 8S", "daren", INFO(daren_42_8s),
    {.adr = 1, .ncells = 8, .cells = I32(3350, 3352, 3349, 3351, 3360, 3348, 3355, 3353),
     .ntemps = 5, .temps = I32(250, 255, 400, 245, -100), .roles = U8S(RA, RV, RM, RC, RC),
     .voltage = 26800, .current = 50000, .soc = 9000, .soh = 10000, .remaining = 45000,
     .full = 50000, .design = ABS, .cycles = 3, .has = HAS_ALL,
     .alarms = SAMPLE_ALARM_CELL_OV | SAMPLE_ALARM_CHG_OC | SAMPLE_ALARM_CHG_HT |
               SAMPLE_ALARM_ENV_HT | SAMPLE_ALARM_FAULT,
     .protection = SAMPLE_PROT_CELL_OV | SAMPLE_PROT_CELL_DIFF | SAMPLE_PROT_CHG_OC |
                   SAMPLE_PROT_CHG_HT,
     .state = SAMPLE_STATE_CHG_FET | SAMPLE_STATE_CHARGING, .balancing = 0x0080, .nraw = 6,
     .raw = U16S(0x4011, 0x0044, 0x1101, 0x0002, 0x0001, 0x10)}};

/* ================================================================================================
 * PACE (§2b, §3)
 * ============================================================================================= */

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

static const struct analog_case pace_42_15s_case = {
    "pace 0x42 15S", "pace", INFO(pace_42_15s),
    {.adr = 1, .ncells = 15,
     .cells = I32(3250, 3252, 3254, 3256, 3258, 3260, 3262, 3264, 3266, 3268, 3270, 3272, 3274,
                  3276, 3278),
     .ntemps = 6, .temps = I32(251, 241, 231, 221, 300, -100), .roles = U8S(RC, RC, RC, RC, RM, RA),
     .voltage = 48000, .current = -286720, .soc = 5000 /* 50000 / 100000 */,
     .soh = 9524 /* 100000 / 105000 */, .remaining = 50000, .full = 100000, .design = 105000,
     .cycles = 7, .has = HAS_A}};

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

static const struct analog_case pace_42_8s_case = {
    "pace 0x42 8S", "pace", INFO(pace_42_8s),
    {.adr = 1, .ncells = 8, .cells = I32(3300, 3310, 3320, 3290, 3305, 3315, 3295, 3301),
     .ntemps = 4, .temps = I32(250, 260, 270, 280), .roles = NULL /* N=4: §2b names no roles */,
     .voltage = 26420, .current = 1000, .soc = 0, .soh = 10000, .remaining = 0, .full = 50000,
     .design = 50000, .cycles = 1, .has = HAS_A}};

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

static const struct alarm_case pace_44_15s_case = {
    "pace 0x44 15S", "pace", 1, INFO(pace_44_15s), 1,
    SAMPLE_ALARM_CELL_OV | SAMPLE_ALARM_CELL_UV | SAMPLE_ALARM_TEMP_HT | SAMPLE_ALARM_CHG_OC |
        SAMPLE_ALARM_PACK_UV | SAMPLE_ALARM_FAULT | SAMPLE_ALARM_SOC_LOW,
    SAMPLE_PROT_SHORT | SAMPLE_PROT_MOS_HT,
    SAMPLE_STATE_CHG_FET | SAMPLE_STATE_DSG_FET | SAMPLE_STATE_CHARGING, 0x4001, 6,
    U16S(0x40, 0x10, 0x26, 0x04, 0x01, 0x80), NULL};

/* ================================================================================================
 * Pylontech (§2c, §3)
 * ============================================================================================= */

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

static const struct analog_case pylon_42_16s_case = {
    "pylontech 0x42 16S", "pylontech", INFO(pylon_42_16s),
    {.adr = 2, .ncells = 16,
     .cells = I32(3301, 3302, 3303, 3304, 3305, 3306, 3290, 3308, 3309, 3310, 3311, 3399, 3313,
                  3314, 3315, 3316),
     .ntemps = 6, .temps = I32(250, 240, 230, 260, 270, -100), .roles = U8S(RV, RC, RC, RC, RC, RC),
     .voltage = 52000, .current = -3000, .soc = 7400 /* 37000 / 50000, derived */, .soh = ABS,
     .remaining = 37000, .full = 50000, .design = ABS, .cycles = 123, .has = HAS_A}};

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

static const struct analog_case pylon_42_udi4_15s_case = {
    "pylontech 0x42 15S UDI 4", "pylontech", INFO(pylon_42_udi4_15s),
    {.adr = 3, .ncells = 15,
     .cells = I32(3280, 3281, 3282, 3283, 3284, 3285, 3286, 3287, 3288, 3289, 3290, 3291, 3292,
                  3293, 3294),
     .ntemps = 5, .temps = I32(300, 280, 270, 260, 250), .roles = U8S(RV, RC, RC, RC, RC),
     .voltage = 48500, .current = 40000, .soc = 7500, .soh = ABS, .remaining = 150000,
     .full = 200000, .design = ABS, .cycles = 512, .has = HAS_A}};

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

static const struct alarm_case pylon_44_16s_case = {
    "pylontech 0x44 16S", "pylontech", 2, INFO(pylon_44_16s), 1,
    SAMPLE_ALARM_CELL_UV | SAMPLE_ALARM_TEMP_LT | SAMPLE_ALARM_PACK_OV | SAMPLE_ALARM_DSG_OC,
    SAMPLE_PROT_CHG_OC, SAMPLE_STATE_CHG_FET | SAMPLE_STATE_DSG_FET, 0, 2, U16S(0x04, 0x06), NULL};

/* Pylontech/Seplos 0x51: device name (10 ASCII), SW version (2 bytes), manufacturer (20 ASCII) */
static const uint8_t pylon_51[] = {
    'U', 'S', '3', '0', '0', '0', 'C', ' ', ' ', ' ',
    0x01, 0x05,
    'P', 'Y', 'L', 'O', 'N', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
};

static const struct identity_case pylon_51_case = {
    "pylontech 0x51", "pylontech", 2, 0x51, INFO(pylon_51), "US3000C", "", "", "PYLON", "01.05",
    "", -1};

/* Pylontech 0x93: command value (1 byte) + 16 ASCII bytes */
static const uint8_t pylon_93[] = {
    0x02, 'P', 'P', 'T', 'A', 'H', '0', '2', '4', '0', '0', '1', '1', '2', '3', '4', '5',
};

static const struct identity_case pylon_93_case = {
    "pylontech 0x93", "pylontech", 2, 0x93, INFO(pylon_93), "", "", "", "", "", "PPTAH02400112345",
    -1};

/* ================================================================================================
 * Seplos v2 (§2d, §3)
 * ============================================================================================= */

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

static const struct analog_case seplos_42_16s_case = {
    "seplos 0x42 16S", "seplos", INFO(seplos_42_16s),
    {.adr = 0, .ncells = 16,
     .cells = I32(3340, 3341, 3342, 3343, 3344, 3345, 3346, 3347, 3348, 3349, 3350, 3351, 3352,
                  3353, 3354, 3355),
     .ntemps = 6, .temps = I32(250, 260, 270, 280, 220, 350), .roles = U8S(RC, RC, RC, RC, RA, RM),
     .voltage = 53220, .current = -6620, .soc = 8210, .soh = 9500, .remaining = 156000,
     .full = 190000, .design = 200000, .cycles = 42, .has = HAS_A}};

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

static const struct analog_case seplos_42_15s_case = {
    "seplos 0x42 15S", "seplos", INFO(seplos_42_15s),
    {.adr = 0, .ncells = 15,
     .cells = I32(3310, 3311, 3312, 3313, 3314, 3315, 3316, 3317, 3318, 3319, 3320, 3321, 3322,
                  3323, 3324),
     .ntemps = 6, .temps = I32(190, 180, 170, -100, 0, 100), .roles = U8S(RC, RC, RC, RC, RA, RM),
     .voltage = 49800, .current = -245770, .soc = 9000, .soh = 10000, .remaining = 90000,
     .full = 100000, .design = 100000, .cycles = 7, .has = HAS_A}};

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

static const struct alarm_case seplos_44_16s_case = {
    "seplos 0x44 16S", "seplos", 0, INFO(seplos_44_16s), 0, SAMPLE_ALARM_CELL_OV, 0,
    SAMPLE_STATE_CHG_FET | SAMPLE_STATE_DSG_FET, 0, 5, U16S(0x01, 0x02, 0x04, 0x04, 0x03),
    (const int[]){1, 2, 4, 5, 6}};

static const uint8_t seplos_51[] = { /* [V] in §3: `1101-SP15`, SW 2.7, `CANProtocol:Sofar` */
    '1', '1', '0', '1', '-', 'S', 'P', '1', '5', ' ',
    0x02, 0x07,
    'C', 'A', 'N', 'P', 'r', 'o', 't', 'o', 'c', 'o', 'l', ':', 'S', 'o', 'f', 'a', 'r', ' ', ' ', ' ',
};

/* the software string follows the codec's dotted two-digit form (as Daren's "01.00.02") */
static const struct identity_case seplos_51_case = {
    "seplos 0x51", "seplos", 0, 0x51, INFO(seplos_51), "1101-SP15", "", "", "CANProtocol:Sofar",
    "02.07", "", -1};

/* clang-format on */

/* ================================================================================================
 * The tables the tests walk
 * ============================================================================================= */

const struct analog_case *const analog_cases[] = {
    &pylon_42_16s_case, &pylon_42_udi4_15s_case, &seplos_42_16s_case, &seplos_42_15s_case,
    &pace_42_15s_case,  &pace_42_8s_case,        &daren_42_15s_case,  &daren_42_8s_case,
};
const size_t n_analog_cases = N_(analog_cases);

const struct alarm_case *const alarm_cases[] = {&pace_44_15s_case, &pylon_44_16s_case,
                                                &seplos_44_16s_case};
const size_t n_alarm_cases = N_(alarm_cases);

const struct identity_case *const identity_cases[] = {&pylon_51_case, &pylon_93_case,
                                                      &seplos_51_case};
const size_t n_identity_cases = N_(identity_cases);

const char *const doc_frames[] = {
    "~200046000000FDB4",                                         /* Seplos 0x4F, empty INFO */
    "~200046040000FDB0",                                         /* Seplos RTN 04 */
    "~25004609E00204FD2B",                                       /* PACE RTN 09 */
    "~20024600B014026EF05AA0022BFDD5C0F915",                     /* Pylontech 0x92 */
    "~25FF4642E002FFFCDA",                                       /* an echoed request */
    "~25014600602850313653313030412D313831322D312E30302000F58E", /* PACE 0xC1 */
};
const size_t n_doc_frames = N_(doc_frames);

const struct analog_case *analog_case(const char *name)
{
    for (size_t i = 0; i < n_analog_cases; i++) {
        if (strcmp(analog_cases[i]->name, name) == 0)
            return analog_cases[i];
    }
    fail_msg("no analog case '%s'", name);
    return NULL;
}

const struct alarm_case *alarm_case(const char *name)
{
    for (size_t i = 0; i < n_alarm_cases; i++) {
        if (strcmp(alarm_cases[i]->name, name) == 0)
            return alarm_cases[i];
    }
    fail_msg("no alarm case '%s'", name);
    return NULL;
}

size_t n_built_frames(void)
{
    return n_analog_cases + n_alarm_cases + n_identity_cases;
}

struct built_frame built_frame(size_t i)
{
    if (i < n_analog_cases) {
        const struct analog_case *c = analog_cases[i];
        return (struct built_frame){c->name,         c->variant, c->e.adr,
                                    S42_CID2_ANALOG, c->info,    c->len};
    }
    i -= n_analog_cases;
    if (i < n_alarm_cases) {
        const struct alarm_case *c = alarm_cases[i];
        return (struct built_frame){c->name, c->variant, c->adr, S42_CID2_ALARM, c->info, c->len};
    }
    i -= n_alarm_cases;
    assert_true(i < n_identity_cases);
    const struct identity_case *c = identity_cases[i];
    return (struct built_frame){c->name, c->variant, c->adr, c->cid2, c->info, c->len};
}
