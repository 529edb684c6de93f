/* Part bus (src/bus/): the wire. Serial devices opened, configured and reopened after an unplug
 * (serial.c, devname.c); the Service 42 driver that turns one request into a validated sample
 * or one failure class (driver.c); the Modbus RTU driver over libmodbus (mbpack.c); the one
 * interface the poller drives either through (bus.c, this file); the address scan (scan.c).
 * It reaches the codec and base only: no configuration, no store, no MQTT.
 *
 * bus: the two kinds of bus behind one interface (see bus.h). */
#include "now.h"
#include "bus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mbpack.h"

struct bus {
    const struct s42_variant *variant; /* NULL: Modbus */
    struct serial_port *sp;
    struct mbpack *mb;
    char protocol[16];
};

int bus_protocol_known(const char *protocol)
{
    return strcmp(protocol, "modbus") == 0 || s42_variant_find(protocol) != NULL;
}

int bus_open(const char *device, const char *protocol, const struct serial_opts *o,
             struct bus **out, struct driver_error *e)
{
    memset(e, 0, sizeof *e);
    if (!bus_protocol_known(protocol)) {
        e->status = DRIVER_PORT;
        e->err = -EINVAL;
        snprintf(e->msg, sizeof e->msg, "unknown protocol '%s'", protocol);
        return e->err;
    }
    struct bus *b = calloc(1, sizeof *b);
    if (b == NULL)
        return -ENOMEM;
    snprintf(b->protocol, sizeof b->protocol, "%s", protocol);
    int err;
    if (strcmp(protocol, "modbus") == 0) {
        err = mbpack_open(device, o, &b->mb, e);
    } else {
        b->variant = s42_variant_find(protocol);
        err = serial_open(device, o, &b->sp);
        if (err) {
            e->status = DRIVER_PORT;
            e->err = err;
            snprintf(e->msg, sizeof e->msg, "%s: %s", device, serial_strerror(err));
        }
    }
    if (err) {
        free(b);
        return err;
    }
    *out = b;
    return 0;
}

void bus_close(struct bus *b)
{
    if (b == NULL)
        return;
    serial_close(b->sp);
    mbpack_close(b->mb);
    free(b);
}

void bus_set_cancel_fd(struct bus *b, int fd)
{
    if (b->sp)
        serial_set_cancel_fd(b->sp, fd);
    else
        mbpack_set_cancel_fd(b->mb, fd);
}

const char *bus_protocol(const struct bus *b)
{
    return b->protocol;
}

int bus_can_identify(const struct bus *b)
{
    return b->variant != NULL;
}

int bus_poll(struct bus *b, uint8_t adr, struct driver_alarms *al, struct sample *out,
             struct driver_error *e)
{
    if (b->mb)
        return mbpack_poll(b->mb, adr, out, e) == 0 ? 0 : -1;
    return driver_poll(b->sp, b->variant, adr, al, now_mono_ms(), out, e);
}

int bus_identify(struct bus *b, uint8_t adr, struct s42_identity *out, struct driver_error *e)
{
    if (b->variant == NULL) {
        e->status = DRIVER_REFUSED;
        e->err = -EOPNOTSUPP;
        snprintf(e->msg, sizeof e->msg, "Modbus packs have no identity registers");
        return -1;
    }
    return driver_identify(b->sp, b->variant, adr, out, e);
}
