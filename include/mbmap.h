/* mbmap: the PACE Modbus register map, pure (no I/O): registers 0..36 to a sample and back,
 * the RTU CRC, exception names, hex dumps. The driver that reads the registers is mbpack.h. */
#ifndef BMSFLEET_MBMAP_H
#define BMSFLEET_MBMAP_H

#include <stddef.h>
#include <stdint.h>

#include "sample.h"

#define MBMAP_NREGS     37   /* registers 0..36: a pack's whole live state, one request */
#define MBMAP_MAX_CELLS 16   /* registers 15..30 */
#define MBMAP_FC_READ   0x03 /* read holding registers: the only function we send */
#define MBMAP_MAX_SLAVE 247  /* 0 is broadcast, 248..255 are reserved */
#define MBMAP_ANSWER_LEN (3 + 2 * MBMAP_NREGS + 2) /* slave, function, count, data, CRC */

/* Decodes registers 0..36 through the register map: current (int16, 10 mA), voltage (10 mV),
 * SOC and SOH (% -> 0.01 %), capacities (10 mAh), cycles; the warning, protection and status
 * words kept raw in raw_status[0..2] (only status 0x0080 -> SAMPLE_STATE_CHG_FET and
 * 0x0100 -> SAMPLE_STATE_DSG_FET are named; alarms and protection stay 0: their bits vary
 * between firmwares); balancing (reg 12, bit i = cell i+1); cells until the first register of
 * 0 or 0xFFFF; temperatures (int16, 0.1 °C) outside -40.0..+120.0 °C left out. Returns 0; out is
 * finished (sample_finish) and its address is 0. */
int mbmap_decode(const uint16_t regs[MBMAP_NREGS], struct sample *out);
/* The inverse, rounding to the register resolution: what a pack with these values would
 * serve. Temperatures fill their registers by role (the first four cell sensors, the first MOS
 * and ambient ones); a missing one reads 0x8000. Returns 0, or -ERANGE when a value does not fit
 * its register (more than 16 cells, a cell of 0 or >= 65535 mV, ...). */
int mbmap_encode(const struct sample *s, uint16_t regs[MBMAP_NREGS]);

/* CRC-16/Modbus (init 0xFFFF, reflected 0xA001); sent low byte first. */
uint16_t mbmap_crc16(const uint8_t *buf, size_t n);

/* "illegal data address" for 2, ..., "unknown exception" for codes Modbus does not define. */
const char *mbmap_exception_name(unsigned code);
/* What to do about an exception code, a sentence for the pack's error message. */
const char *mbmap_exception_advice(unsigned code);


/* Registers from a hex dump, for `bmsfleet decode`: either a whole RTU answer
 * (slave 03 4A <74 bytes> CRC, CRC checked) or the 74 register bytes alone (37 big-endian words).
 * Blanks, ':' ',' '-' separators and 0x prefixes are ignored. Returns 0, or -EINVAL with the
 * reason in why. regs is written only on success; *slave (may be NULL) gets the frame's slave,
 * 0 for bare registers. */
int mbmap_parse_hex(const char *text, uint16_t regs[MBMAP_NREGS], uint8_t *slave, char *why,
                     size_t whylen);

#endif
