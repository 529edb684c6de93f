/* listener: a bus heard, not polled (`mode: listen`, issue 17). Another master owns the line;
 * the listener opens the device (a tty, or a tcp:// serial server in transparent mode), never
 * writes a byte to it, reads what goes by and hands it to the codec's sniffer (sniff.h), which
 * frames, matches and decodes it. Silence on the line is passed on too: it ends waits for
 * answers and resynchronises the Modbus framing. */
#ifndef BMSFLEET_LISTENER_H
#define BMSFLEET_LISTENER_H

#include <stdint.h>

#include "driver.h"
#include "serial.h"
#include "sniff.h"

struct listener;

/* protocol: a Service 42 variant name or "modbus" (RTU: modbus-tcp:// cannot be listened to,
 * -EPROTONOSUPPORT). o->timeout_ms is how long an answer may follow its request; rs485 is not
 * used (the transceiver stays receiving). On failure e says why, as bus_open. */
int listener_open(const char *device, const char *protocol, const struct serial_opts *o,
                  struct listener **out, struct driver_error *e);
void listener_close(struct listener *l);
/* Readable fd = stop waiting (the daemon's shutdown). */
void listener_set_cancel_fd(struct listener *l, int fd);
/* The next event heard within wait_ms: 1 and *ev; 0 when none came; -1 when the port failed
 * (e: DRIVER_PORT with the sentence, or err -ECANCELED on a stop). */
int listener_next(struct listener *l, int wait_ms, struct sniff_event *ev,
                  struct driver_error *e);
/* What the sniffer counted (frames, requests, answers, dropped bytes, ...). */
const struct sniff_counts *listener_counts(const struct listener *l);
/* Bytes this port ever wrote to the line: 0, and a test checks it. */
uint64_t listener_bytes_written(const struct listener *l);
int listener_is_network(const struct listener *l);

#endif
