/* mbpack: PACE-compatible BMS packs over Modbus RTU (docs/reference/MODBUS.md), on
 * libmodbus's RTU backend.
 *
 * A poll is one request (function 0x03, registers 0..36) decoded through one register map table;
 * the same table encodes, so the simulator serves exactly what the decoder reads. Failures are
 * classified into struct driver_error like the Service 42 driver's, so pack health and counters
 * work unchanged. One port is used by one thread at a time. */
#ifndef BMSFLEET_MBPACK_H
#define BMSFLEET_MBPACK_H

#include <stddef.h>
#include <stdint.h>

#include "driver.h"
#include "sample.h"
#include "serial.h"

#define MBPACK_NREGS     37   /* registers 0..36: a pack's whole live state, one request */
#define MBPACK_MAX_CELLS 16   /* registers 15..30 */
#define MBPACK_FC_READ   0x03 /* read holding registers: the only function we send */
#define MBPACK_MAX_SLAVE 247  /* 0 is broadcast, 248..255 are reserved */

struct mbpack;

/* Opens device with libmodbus (modbus_new_rtu 8N1 at o->baud, response timeout o->timeout_ms,
 * byte timeout max(100 ms, 10 characters) capped at the response timeout, kernel RS485 mode and
 * its delays when o->rs485) and takes an exclusive flock + TIOCEXCL on it, so two bmsfleet
 * processes never share a port. o NULL = serial_opts_default(). Returns 0 or -errno (-EBUSY:
 * another process holds the port, -ENOENT, -EACCES, -ENOTTY, -EINVAL: bad baud or timeout,
 * -EOPNOTSUPP: RS485 mode refused); e (may be NULL) gets "<device>: <serial_strerror sentence>".
 * out is written only on success. */
int mbpack_open(const char *device, const struct serial_opts *o, struct mbpack **out,
                struct driver_error *e);
/* Restores the tty settings and closes. NULL is fine. */
void mbpack_close(struct mbpack *p);

int mbpack_fd(const struct mbpack *p);
const char *mbpack_path(const struct mbpack *p);
int mbpack_timeout_ms(const struct mbpack *p);

/* A descriptor that, once readable, ends every wait of this port with -ECANCELED (the daemon's
 * shutdown eventfd), like serial_set_cancel_fd. The waits we do ourselves are cancellable: the
 * inter-frame gap and the response timeout until an answer starts. Once a frame has started,
 * libmodbus reads it to its end in select() without looking at this descriptor: a stop waits at
 * most one frame time plus the byte timeout (about 200 ms at 9600 baud). -1 = none. */
void mbpack_set_cancel_fd(struct mbpack *p, int fd);

/* Reads registers 0..36 of slave (1..247): waits out the port's gap, drops stale input, sends
 * one request, waits for the answer. Answers of other slaves (a late answer after a timeout) are
 * skipped until the deadline. Returns 0, or e->err (negative) with *e filled:
 *   DRIVER_TIMEOUT   nothing within timeout_ms                          err -ETIMEDOUT
 *   DRIVER_CHECKSUM  CRC error                                          err -EMBBADCRC
 *   DRIVER_REFUSED   a Modbus exception, named in words                 err -EMBX...
 *   DRIVER_MALFORMED an incomplete frame, noise, wrong function/count   err -EMBBADDATA...
 * After a damaged answer the rest of it is drained (until a byte timeout of silence), so the
 * next request starts on a clean line.
 *   DRIVER_FOREIGN   only another slave answered                        err -EMBBADSLAVE
 *   DRIVER_PORT      I/O error, adapter gone (EIO/ENODEV/EBADF), or -ECANCELED on stop
 * regs is written only on success. */
int mbpack_read_regs(struct mbpack *p, uint8_t slave, uint16_t regs[MBPACK_NREGS],
                     struct driver_error *e);
/* mbpack_read_regs + mbpack_decode; out->address = slave. Same returns. */
int mbpack_poll(struct mbpack *p, uint8_t slave, struct sample *out, struct driver_error *e);

/* ---- pure: no I/O ---- */

/* Decodes registers 0..36 through the register map: current (int16, 10 mA), voltage (10 mV),
 * SOC and SOH (% -> 0.01 %), capacities (10 mAh), cycles; the warning, protection and status
 * words kept raw in raw_status[0..2] (only status 0x0080 -> SAMPLE_STATE_CHG_FET and
 * 0x0100 -> SAMPLE_STATE_DSG_FET are named; alarms and protection stay 0: their bits vary
 * between firmwares); balancing (reg 12, bit i = cell i+1); cells until the first register of
 * 0 or 0xFFFF; temperatures (int16, 0.1 °C) outside -40.0..+120.0 °C left out. Returns 0; out is
 * finished (sample_finish) and its address is 0. */
int mbpack_decode(const uint16_t regs[MBPACK_NREGS], struct sample *out);
/* The inverse, rounding to the register resolution: what a pack with these values would
 * serve. Temperatures fill their registers by role (the first four cell sensors, the first MOS
 * and ambient ones); a missing one reads 0x8000. Returns 0, or -ERANGE when a value does not fit
 * its register (more than 16 cells, a cell of 0 or >= 65535 mV, ...). */
int mbpack_encode(const struct sample *s, uint16_t regs[MBPACK_NREGS]);

/* CRC-16/Modbus (init 0xFFFF, reflected 0xA001); sent low byte first. */
uint16_t mbpack_crc16(const uint8_t *buf, size_t n);

/* "illegal data address" for 2, ..., "unknown exception" for codes Modbus does not define. */
const char *mbpack_exception_name(unsigned code);

/* The class of an error code from mbpack_read_regs or libmodbus (negative or positive errno,
 * EMB* included). */
enum driver_status mbpack_classify(int err);

/* Registers from a hex dump, for `bmsfleet decode`: either a whole RTU answer
 * (slave 03 4A <74 bytes> CRC, CRC checked) or the 74 register bytes alone (37 big-endian words).
 * Blanks, ':' ',' '-' separators and 0x prefixes are ignored. Returns 0, or -EINVAL with the
 * reason in why. regs is written only on success; *slave (may be NULL) gets the frame's slave,
 * 0 for bare registers. */
int mbpack_parse_hex(const char *text, uint16_t regs[MBPACK_NREGS], uint8_t *slave, char *why,
                     size_t whylen);

#endif
