/* bus: one open RS485 bus and the protocol its packs speak, behind one interface: Service 42
 * over the serial module (driver.c), or Modbus RTU over libmodbus (mbpack.c). The poller and
 * the commands poll "a pack on a bus" without caring which. */
#ifndef BMSFLEET_BUS_H
#define BMSFLEET_BUS_H

#include <stdint.h>

#include "driver.h"
#include "s42.h"
#include "sample.h"
#include "serial.h"

struct bus;

/* protocol: a Service 42 variant name (daren, pace, pylontech, seplos) or "modbus". On failure
 * e->msg says why (e->err is -errno; -EINVAL for an unknown protocol). */
int bus_open(const char *device, const char *protocol, const struct serial_opts *o,
             struct bus **out, struct driver_error *e);
void bus_close(struct bus *b);
void bus_set_cancel_fd(struct bus *b, int fd);
const char *bus_protocol(const struct bus *b);
/* 1 when the bus is reached over the network (tcp://, modbus-tcp://), not a local tty. */
int bus_is_network(const struct bus *b);
/* 1 when the protocol has identity commands (Modbus packs have none). */
int bus_can_identify(const struct bus *b);

/* al: what the pack's alarm command did in earlier polls (see driver_poll); Modbus ignores it. */
int bus_poll(struct bus *b, uint8_t adr, struct driver_alarms *al, struct sample *out,
             struct driver_error *e);
/* A chain behind its master pack at via (Service 42 PACE and Pylontech, see driver.h): the pack
 * at adr through it; every pack at once (block i = the pack at via + i, analog values); and the
 * alarm part for a pack whose analog values came in an all-packs answer. Modbus and variants
 * without relay: -1 with DRIVER_REFUSED, -EOPNOTSUPP. */
int bus_poll_via(struct bus *b, uint8_t via, uint8_t adr, struct driver_alarms *al,
                 struct sample *out, struct driver_error *e);
int bus_poll_all(struct bus *b, uint8_t via, struct sample *out, size_t cap, size_t *n,
                 struct driver_error *e);
int bus_poll_alarms(struct bus *b, uint8_t via, uint8_t adr, struct driver_alarms *al,
                    const struct sample *analog, struct sample *out, struct driver_error *e);
/* 1 when bus_poll_via and bus_poll_all can work: a Service 42 variant with relay. */
int bus_can_relay(const struct bus *b);
int bus_identify(struct bus *b, uint8_t adr, struct s42_identity *out, struct driver_error *e);

/* True for the protocol names bus_open accepts. */
int bus_protocol_known(const char *protocol);

#endif
