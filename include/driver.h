/* driver: one poll of one pack over an open serial port: request, frame, validation, decode.
 *
 * Every failure is classified (timeout, checksum, malformed, refused, foreign answer, port
 * error) so pollers can count them, and described in a sentence a person can act on. */
#ifndef BMSFLEET_DRIVER_H
#define BMSFLEET_DRIVER_H

#include "s42.h"
#include "sample.h"
#include "serial.h"

enum driver_status {
    DRIVER_OK = 0,
    DRIVER_TIMEOUT,   /* no complete frame before the deadline */
    DRIVER_CHECKSUM,  /* CHKSUM or LCHKSUM wrong: noise or collision on the bus */
    DRIVER_MALFORMED, /* anything else wrong with the frame (truncated, bad hex, short INFO) */
    DRIVER_REFUSED,   /* the BMS answered with an RTN error code */
    DRIVER_FOREIGN,   /* another address or protocol family answered */
    DRIVER_PORT,      /* the port failed (unplugged adapter, I/O error) */
};

struct driver_error {
    enum driver_status status;
    int err;        /* -errno (DRIVER_PORT, DRIVER_TIMEOUT) or -S42_E_* */
    char msg[256];
};

const char *driver_status_name(enum driver_status st);

/* Reads the analog values (0x42) and, when the variant has it, the alarm/status (0x44) of the
 * pack at adr. out is written only on success; on failure *e says what happened. */
int driver_poll(struct serial_port *port, const struct s42_variant *v, uint8_t adr,
                struct sample *out, struct driver_error *e);

/* Asks every identity command of the variant; fields that a command did not give stay empty.
 * Returns 0 when at least one command answered, else the first failure. */
int driver_identify(struct serial_port *port, const struct s42_variant *v, uint8_t adr,
                    struct s42_identity *out, struct driver_error *e);

/* One command exchange: request, read, parse, check against (v, adr). */
int driver_exchange(struct serial_port *port, const struct s42_variant *v, uint8_t adr,
                    uint8_t cid2, struct s42_frame *out, struct driver_error *e);

#endif
