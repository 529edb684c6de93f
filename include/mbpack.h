/* mbpack: PACE-compatible BMS packs over Modbus RTU (docs/reference/MODBUS.md), on
 * libmodbus's RTU backend.
 *
 * A poll is one request (function 0x03, registers 0..36) decoded through the register map of
 * mbmap.h. Failures are
 * classified into struct driver_error like the Service 42 driver's, so pack health and counters
 * work unchanged. One port is used by one thread at a time. */
#ifndef BMSFLEET_MBPACK_H
#define BMSFLEET_MBPACK_H

#include <stddef.h>
#include <stdint.h>

#include "driver.h"
#include "mbmap.h"
#include "sample.h"
#include "serial.h"


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
int mbpack_read_regs(struct mbpack *p, uint8_t slave, uint16_t regs[MBMAP_NREGS],
                     struct driver_error *e);
/* mbpack_read_regs + mbmap_decode; out->address = slave. Same returns. */
int mbpack_poll(struct mbpack *p, uint8_t slave, struct sample *out, struct driver_error *e);

/* The class of an error code from mbpack_read_regs or libmodbus (negative or positive errno,
 * EMB* included). */
enum driver_status mbpack_classify(int err);

#endif
