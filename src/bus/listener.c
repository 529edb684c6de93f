/* listener: reading a line another master polls (see listener.h). The port is the serial
 * module's (tty or socket, with its reconnect-worthy errors), used with serial_read_some only:
 * no flush, no write, no gap. */
#include "now.h"
#include "listener.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"

#define IDLE_TTY_MS 50  /* no byte this long on a tty: silence (USB adapters deliver every 16 ms) */
#define IDLE_NET_MS 200 /* a serial server forwards in packets, the network adds jitter */

struct listener {
    struct serial_port *sp;
    int idle_ms;
    uint8_t buf[512];
    size_t off, len; /* read from the line, not yet taken by the sniffer */
    struct sniff sn;
};

int listener_open(const char *device, const char *protocol, const struct serial_opts *o,
                  struct listener **out, struct driver_error *e)
{
    memset(e, 0, sizeof *e);
    e->status = DRIVER_PORT;
    const struct s42_variant *v = NULL;
    if (strcmp(protocol, "modbus") != 0 && (v = s42_variant_find(protocol)) == NULL) {
        e->err = -EINVAL;
        snprintf(e->msg, sizeof e->msg, "unknown protocol '%s'", protocol);
        return e->err;
    }
    struct endpoint ep;
    if (endpoint_parse(device, &ep, e->msg, sizeof e->msg) != 0)
        return e->err = -EINVAL;
    if (ep.kind == ENDPOINT_MODBUS_TCP) {
        snprintf(e->msg, sizeof e->msg,
                 "%s: a Modbus TCP gateway cannot be listened to (it answers its own client "
                 "only); use tcp://HOST:PORT in the server's transparent mode",
                 device);
        return e->err = -EPROTONOSUPPORT;
    }
    struct listener *l = calloc(1, sizeof *l);
    if (l == NULL) {
        snprintf(e->msg, sizeof e->msg, "%s: out of memory", device);
        return e->err = -ENOMEM;
    }
    struct serial_opts so = *o;
    so.rs485 = 0; /* RTS never raised: the transceiver stays receiving */
    int err = serial_open(device, &so, &l->sp);
    if (err) {
        serial_describe_open(device, &so, err, e->msg, sizeof e->msg);
        free(l);
        return e->err = err;
    }
    l->idle_ms = serial_is_network(l->sp) ? IDLE_NET_MS : IDLE_TTY_MS;
    sniff_init(&l->sn, v, o->timeout_ms);
    memset(e, 0, sizeof *e);
    *out = l;
    return 0;
}

void listener_close(struct listener *l)
{
    if (l == NULL)
        return;
    serial_close(l->sp);
    free(l);
}

void listener_set_cancel_fd(struct listener *l, int fd)
{
    serial_set_cancel_fd(l->sp, fd);
}

int listener_next(struct listener *l, int wait_ms, struct sniff_event *ev,
                  struct driver_error *e)
{
    int64_t deadline = now_mono_ms() + (wait_ms > 0 ? wait_ms : 0);
    for (;;) {
        if (sniff_next(&l->sn, ev))
            return 1;
        if (l->off < l->len) {
            l->off += sniff_feed(&l->sn, l->buf + l->off, l->len - l->off, now_mono_ms());
            continue;
        }
        int64_t left = deadline - now_mono_ms();
        if (left <= 0)
            return 0;
        int r = serial_read_some(l->sp, l->buf, sizeof l->buf,
                                 left < l->idle_ms ? (int)left : l->idle_ms);
        if (r < 0) {
            e->status = r == -ECANCELED ? DRIVER_TIMEOUT : DRIVER_PORT;
            e->err = r;
            snprintf(e->msg, sizeof e->msg, "%s: %s", serial_path(l->sp), serial_strerror(r));
            return -1;
        }
        if (r == 0) {
            sniff_idle(&l->sn, now_mono_ms());
            continue;
        }
        l->off = 0;
        l->len = (size_t)r;
    }
}

const struct sniff_counts *listener_counts(const struct listener *l)
{
    return &l->sn.n;
}

uint64_t listener_bytes_written(const struct listener *l)
{
    return serial_get_stats(l->sp)->tx_bytes;
}

int listener_is_network(const struct listener *l)
{
    return serial_is_network(l->sp);
}
