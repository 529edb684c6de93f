/* Part bus (src/bus/): the wire. Serial devices opened, configured and reopened after an unplug
 * (serial.c, devname.c), or a TCP serial server in their place (tcp.c); the Service 42 driver
 * that turns one request into a validated sample or one failure class, also through a chain's
 * master pack (driver.c); the Modbus RTU and TCP driver over libmodbus (mbpack.c); the one
 * interface the poller drives either through (bus.c, this file); the listener of a bus another
 * master polls (listener.c); the address scan (scan.c) and the listen-only scan (scan_hear.c).
 * It reaches the codec and base only: no configuration, no store, no MQTT.
 *
 * bus: the two kinds of bus behind one interface (see bus.h). */
#include "now.h"
#include "bus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "mbpack.h"

struct bus {
    const struct s42_variant *variant; /* NULL: Modbus */
    struct serial_port *sp;
    struct mbpack *mb;
    int network; /* tcp:// or modbus-tcp:// */
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
    struct endpoint ep;
    if (endpoint_parse(device, &ep, e->msg, sizeof e->msg) != 0) {
        e->status = DRIVER_PORT;
        e->err = -EINVAL;
        return e->err;
    }
    struct bus *b = calloc(1, sizeof *b);
    if (b == NULL)
        return -ENOMEM;
    snprintf(b->protocol, sizeof b->protocol, "%s", protocol);
    b->network = ep.kind != ENDPOINT_SERIAL;
    int err;
    if (strcmp(protocol, "modbus") == 0) {
        err = mbpack_open(device, o, &b->mb, e);
    } else {
        b->variant = s42_variant_find(protocol);
        err = serial_open(device, o, &b->sp);
        if (err) {
            e->status = DRIVER_PORT;
            e->err = err;
            serial_describe_open(device, o, err, e->msg, sizeof e->msg);
        } else {
            serial_set_frame_chars(b->sp, s42_frame_chars); /* one wake-up per header and body */
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

int bus_is_network(const struct bus *b)
{
    return b->network;
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

int bus_can_relay(const struct bus *b)
{
    return b->variant != NULL && s42_has_relay(b->variant);
}

static int no_relay(const struct bus *b, struct driver_error *e)
{
    e->status = DRIVER_REFUSED;
    e->err = -EOPNOTSUPP;
    snprintf(e->msg, sizeof e->msg, "%s packs cannot be polled through a master pack",
             b->protocol);
    return -1;
}

int bus_poll_via(struct bus *b, uint8_t via, uint8_t adr, struct driver_alarms *al,
                 struct sample *out, struct driver_error *e)
{
    if (via != adr && !bus_can_relay(b))
        return no_relay(b, e);
    if (via == adr)
        return bus_poll(b, adr, al, out, e);
    return driver_poll_via(b->sp, b->variant, via, adr, al, now_mono_ms(), out, e);
}

int bus_poll_all(struct bus *b, uint8_t via, struct sample *out, size_t cap, size_t *n,
                 struct driver_error *e)
{
    *n = 0;
    if (!bus_can_relay(b))
        return no_relay(b, e);
    return driver_poll_all(b->sp, b->variant, via, out, cap, n, e);
}

int bus_poll_alarms(struct bus *b, uint8_t via, uint8_t adr, struct driver_alarms *al,
                    const struct sample *analog, struct sample *out, struct driver_error *e)
{
    if (!bus_can_relay(b))
        return no_relay(b, e);
    return driver_poll_alarms(b->sp, b->variant, via, adr, al, now_mono_ms(), analog, out, e);
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
