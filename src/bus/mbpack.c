/* mbpack: the Modbus RTU driver. It owns one libmodbus RTU context (plus our flock on its
 * descriptor) and the translation of libmodbus errors into the driver's classes and sentences;
 * the register map that decodes what it reads is the codec's (src/codec/mbmap.c). It never
 * logs.
 *
 * We send the request with modbus_send_raw_request and wait for the first byte ourselves (poll
 * on the port and the cancel descriptor) before modbus_receive_confirmation reads the frame:
 * that makes a stop prompt and tells "no answer" from "an answer that stopped halfway". The
 * checks libmodbus would do in modbus_read_registers (slave, function, count, exception) are
 * done here on the raw answer, with libmodbus's own error codes. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "now.h"
#include "mbpack.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <linux/serial.h>
#include <modbus.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define BYTE_TIMEOUT_MIN_MS 100 /* USB adapters deliver in bursts 16-32 ms apart */
#define BYTE_TIMEOUT_CHARS  10
#define LATE_MAX            3 /* answers of other slaves skipped per request */
#define ANSWER_LEN          MBMAP_ANSWER_LEN
#define NS_PER_MS           1000000LL

struct mbpack {
    modbus_t *ctx;
    char *path;
    struct serial_opts opts;
    int cancel_fd;
    int byte_ms;     /* a silence this long ends a frame */
    int64_t last_ns; /* CLOCK_MONOTONIC end of the last exchange, 0 = none yet */
};

/* ---- errors ---- */

enum driver_status mbpack_classify(int err)
{
    static const struct {
        int err;
        enum driver_status st;
    } classes[] = {
        {ETIMEDOUT, DRIVER_TIMEOUT},    {EMBBADCRC, DRIVER_CHECKSUM},
        {EMBBADDATA, DRIVER_MALFORMED}, {EMBMDATA, DRIVER_MALFORMED},
        {EMBBADEXC, DRIVER_MALFORMED},  {EMBUNKEXC, DRIVER_REFUSED},
        {EMBBADSLAVE, DRIVER_FOREIGN},  {0, DRIVER_OK},
    };
    if (err < 0)
        err = -err;
    if (err > MODBUS_ENOBASE && err < MODBUS_ENOBASE + MODBUS_EXCEPTION_MAX)
        return DRIVER_REFUSED;
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
        if (classes[i].err == err)
            return classes[i].st;
    return DRIVER_PORT; /* EIO, ENODEV, EBADF, ECONNRESET (end of file), ... */
}

__attribute__((format(printf, 3, 4))) static int fail(struct driver_error *e, int err,
                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->err = err < 0 ? err : -err;
    e->status = mbpack_classify(err);
    return e->err;
}

/* libmodbus's text for its own codes, the serial module's sentence for errno values. */
static const char *describe(int err)
{
    if (err < 0)
        err = -err;
    return err >= MODBUS_ENOBASE ? modbus_strerror(err) : serial_strerror(err);
}

/* ---- the port ---- */

/* A driver without RS485 mode says ENOTTY or EINVAL; qemu-user (an arm64 build on another
 * machine) says ENOSYS, as it does not pass these ioctls on. */
static int rs485_errno(int e)
{
    return e == ENOTTY || e == EINVAL || e == ENOSYS ? -EOPNOTSUPP : -e;
}

/* Same flags and delays as serial.c: RTS high while sending, delays rounded up to whole ms. */
static int enable_rs485(modbus_t *ctx, const struct serial_opts *o)
{
    struct serial_rs485 rs;
    int fd = modbus_get_socket(ctx);
    if (o->rs485_delay_before_us < 0 || o->rs485_delay_after_us < 0)
        return -EINVAL;
    if (modbus_rtu_set_serial_mode(ctx, MODBUS_RTU_RS485) < 0 || ioctl(fd, TIOCGRS485, &rs) < 0)
        return rs485_errno(errno);
    rs.flags |= SER_RS485_ENABLED | SER_RS485_RTS_ON_SEND;
    rs.flags &= ~(__u32)SER_RS485_RTS_AFTER_SEND;
    rs.delay_rts_before_send = (__u32)((o->rs485_delay_before_us + 999) / 1000);
    rs.delay_rts_after_send = (__u32)((o->rs485_delay_after_us + 999) / 1000);
    if (ioctl(fd, TIOCSRS485, &rs) < 0)
        return rs485_errno(errno);
    return 0;
}

int mbpack_open(const char *device, const struct serial_opts *o, struct mbpack **out,
                struct driver_error *e)
{
    struct serial_opts def;
    struct driver_error scratch;
    int r = 0, locked = 0;
    if (e == NULL)
        e = &scratch;
    if (o == NULL) {
        serial_opts_default(&def);
        o = &def;
    }
    if (device == NULL || out == NULL || !serial_baud_supported(o->baud) || o->timeout_ms < 1 ||
        o->gap_ms < 0)
        return fail(e, -EINVAL, "%s: %s", device ? device : "(null)", serial_strerror(EINVAL));
    struct mbpack *p = calloc(1, sizeof *p);
    if (p == NULL || (p->path = strdup(device)) == NULL) {
        r = -ENOMEM;
        goto fail;
    }
    p->opts = *o;
    p->cancel_fd = -1;
    p->ctx = modbus_new_rtu(device, o->baud, 'N', 8, 1);
    if (p->ctx == NULL || modbus_connect(p->ctx) < 0) {
        r = -errno;
        goto fail;
    }
    int fd = modbus_get_socket(p->ctx);
    /* libmodbus takes no lock: without ours, two daemons would interleave on one bus. The flock
     * comes first so that TIOCNXCL on the way out never clears another owner's flag. */
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        r = errno == EWOULDBLOCK ? -EBUSY : -errno;
        goto fail;
    }
    if (ioctl(fd, TIOCEXCL) < 0) {
        r = -errno;
        goto fail;
    }
    locked = 1;
    int byte_ms = (int)serial_wire_ms(o->baud, BYTE_TIMEOUT_CHARS) + 1;
    byte_ms = byte_ms < BYTE_TIMEOUT_MIN_MS ? BYTE_TIMEOUT_MIN_MS : byte_ms;
    p->byte_ms = byte_ms < o->timeout_ms ? byte_ms : o->timeout_ms;
    modbus_set_response_timeout(p->ctx, (uint32_t)o->timeout_ms / 1000,
                                (uint32_t)o->timeout_ms % 1000 * 1000);
    modbus_set_byte_timeout(p->ctx, 0, (uint32_t)p->byte_ms * 1000); /* < 1 s */
    if (o->rs485 && (r = enable_rs485(p->ctx, o)) < 0)
        goto fail;
    *out = p;
    return 0;
fail:
    if (locked)
        (void)ioctl(modbus_get_socket(p->ctx), TIOCNXCL);
    fail(e, r, "%s: %s", device, serial_strerror(r));
    mbpack_close(p);
    return r;
}

void mbpack_close(struct mbpack *p)
{
    if (p == NULL)
        return;
    if (p->ctx != NULL) {
        int fd = modbus_get_socket(p->ctx);
        if (fd >= 0)
            (void)ioctl(fd, TIOCNXCL); /* the tty may outlive us (a pty, another fd) */
        modbus_close(p->ctx);
        modbus_free(p->ctx);
    }
    free(p->path);
    free(p);
}

int mbpack_fd(const struct mbpack *p)
{
    return modbus_get_socket(p->ctx);
}

const char *mbpack_path(const struct mbpack *p)
{
    return p->path;
}

int mbpack_timeout_ms(const struct mbpack *p)
{
    return p->opts.timeout_ms;
}

void mbpack_set_cancel_fd(struct mbpack *p, int fd)
{
    p->cancel_fd = fd;
}

/* Waits until the port has input (1), the deadline passes (0), or the cancel descriptor fires
 * (-ECANCELED). With watch_port false, only the deadline and the cancel descriptor count. */
static int wait_port(struct mbpack *p, int64_t deadline, bool watch_port)
{
    for (;;) {
        int64_t left = deadline - now_mono_ns();
        if (left <= 0)
            return 0;
        struct pollfd pfd[2] = {{.fd = watch_port ? mbpack_fd(p) : -1, .events = POLLIN},
                                {.fd = p->cancel_fd, .events = POLLIN}};
        int64_t ms = (left + NS_PER_MS - 1) / NS_PER_MS;
        int n = poll(pfd, 2, ms > INT_MAX ? INT_MAX : (int)ms);
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n > 0 && pfd[1].revents)
            return -ECANCELED;
        if (n > 0 && pfd[0].revents)
            return 1;
    }
}

/* tcflush alone misses bytes a pty is still handing to the line discipline: read them too. */
static void drop_stale_input(struct mbpack *p)
{
    uint8_t junk[256];
    for (int i = 0; i < 64 && read(mbpack_fd(p), junk, sizeof junk) > 0; i++)
        ;
    modbus_flush(p->ctx);
}

/* After a damaged answer the rest of it may still be on its way: drop bytes until the line has
 * been quiet for a byte timeout (within one response timeout), so the next request starts on a
 * clean line even without a gap. */
static void drain(struct mbpack *p)
{
    int64_t end = now_mono_ns() + (int64_t)p->opts.timeout_ms * NS_PER_MS;
    uint8_t junk[256];
    for (;;) {
        int64_t quiet = now_mono_ns() + (int64_t)p->byte_ms * NS_PER_MS;
        if (wait_port(p, quiet < end ? quiet : end, true) <= 0 ||
            read(mbpack_fd(p), junk, sizeof junk) <= 0)
            return;
    }
}

/* For a frame libmodbus read as an answer: 1 = an answer to a register read (or its exception)
 * with a good CRC, -1 = such an answer with a bad CRC, 0 = not one (noise). */
static int wellformed(const uint8_t *f)
{
    size_t len;
    if (f[1] == MBMAP_FC_READ)
        len = 3u + f[2] + 2u;
    else if (f[1] == (MBMAP_FC_READ | 0x80))
        len = 5;
    else
        return 0;
    if (len > MODBUS_RTU_MAX_ADU_LENGTH) /* libmodbus would not have read it */
        return 0;
    return mbmap_crc16(f, len - 2) == (f[len - 2] | f[len - 1] << 8) ? 1 : -1;
}

static int crc_error(struct driver_error *e, uint8_t slave, const char *path)
{
    return fail(e, -EMBBADCRC,
                "CRC error in the answer of slave %u on %s: noise or a collision on the bus; "
                "check termination and that no two packs share address %u",
                slave, path, slave);
}

/* Reads one answer for slave before deadline into rsp, skipping other slaves' answers. Returns
 * the frame length or fills e. */
static int receive(struct mbpack *p, uint8_t slave, int64_t deadline, uint8_t *rsp,
                   struct driver_error *e)
{
    const char *path = p->path;
    int foreign = -1;
    for (int late = 0;; late++) {
        int w = wait_port(p, deadline, true);
        if (w == -ECANCELED)
            return fail(e, -ECANCELED, "%s: cancelled, the daemon is stopping", path);
        if (w < 0)
            return fail(e, w, "%s: %s", path, describe(w));
        if (w == 0 && foreign >= 0)
            return fail(e, -EMBBADSLAVE,
                        "slave %d answered on %s when slave %u was asked: two packs with one "
                        "address, or another master on the bus",
                        foreign, path, slave);
        if (w == 0)
            return fail(e, -ETIMEDOUT,
                        "no answer from slave %u on %s within %d ms: check the pack's address, "
                        "the baud rate and the A/B wiring",
                        slave, path, p->opts.timeout_ms);
        int n = modbus_receive_confirmation(p->ctx, rsp);
        if (n < 0 && errno == ETIMEDOUT)
            return fail(e, -EMBBADDATA,
                        "incomplete answer from slave %u on %s: the frame stopped halfway "
                        "(noise or a loose connection)",
                        slave, path);
        if (n < 0 && errno == EMBBADCRC)
            return crc_error(e, slave, path);
        if (n < 0) {
            int err = errno;
            return fail(e, -err, "slave %u on %s: %s", slave, path, describe(-err));
        }
        if (n > 0 && rsp[0] == slave)
            return n;
        /* libmodbus 3.1.6 returns 0 for a frame of another slave before looking at its CRC:
         * only a well-formed answer is another slave's; anything else is noise. */
        int wf = wellformed(rsp);
        if (n == 0 && wf < 0)
            return crc_error(e, slave, path);
        if (n == 0 && wf == 0)
            return fail(e, -EMBBADDATA,
                        "garbled answer to slave %u on %s: noise on the bus; check the wiring "
                        "and termination",
                        slave, path);
        foreign = rsp[0];
        if (late >= LATE_MAX)
            deadline = 0;
    }
}

int mbpack_read_regs(struct mbpack *p, uint8_t slave, uint16_t regs[MBMAP_NREGS],
                     struct driver_error *e)
{
    uint8_t rsp[MODBUS_RTU_MAX_ADU_LENGTH] = {0};
    const char *path = p->path;
    if (slave < 1 || slave > MBMAP_MAX_SLAVE)
        return fail(e, -EINVAL, "slave %u on %s: a Modbus slave address is 1..247", slave, path);
    int w = wait_port(p, p->last_ns + (int64_t)p->opts.gap_ms * NS_PER_MS, false);
    if (w == -ECANCELED)
        return fail(e, w, "%s: cancelled, the daemon is stopping", path);
    if (w < 0)
        return fail(e, w, "%s: %s", path, describe(w));
    modbus_set_slave(p->ctx, slave);
    drop_stale_input(p);
    const uint8_t req[] = {slave, MBMAP_FC_READ, 0, 0, 0, MBMAP_NREGS};
    int n = -1;
    if (modbus_send_raw_request(p->ctx, req, sizeof req) < 0) {
        int err = errno;
        n = fail(e, -err, "%s: %s", path, describe(err));
    } else {
        n = receive(p, slave, now_mono_ns() + (int64_t)p->opts.timeout_ms * NS_PER_MS, rsp, e);
    }
    if (n < 0 && (e->status == DRIVER_CHECKSUM || e->status == DRIVER_MALFORMED ||
                  e->status == DRIVER_FOREIGN))
        drain(p);
    p->last_ns = now_mono_ns();
    if (n < 0)
        return n;
    if (rsp[1] == (MBMAP_FC_READ | 0x80)) {
        unsigned code = rsp[2];
        int err = code > 0 && code < MODBUS_EXCEPTION_MAX ? MODBUS_ENOBASE + (int)code : EMBUNKEXC;
        return fail(e, -err, "slave %u on %s answered with exception %02X: %s; %s", slave, path,
                    code, mbmap_exception_name(code), mbmap_exception_advice(code));
    }
    if (rsp[1] != MBMAP_FC_READ)
        return fail(e, -EMBBADDATA,
                    "slave %u on %s answered function 0x%02X to a register read: is it a "
                    "PACE-compatible BMS?",
                    slave, path, rsp[1]);
    if (n != ANSWER_LEN || rsp[2] != 2 * MBMAP_NREGS)
        return fail(e, -EMBBADDATA,
                    "slave %u on %s sent %u bytes of registers instead of %d: not the PACE "
                    "register map?",
                    slave, path, rsp[2], 2 * MBMAP_NREGS);
    for (size_t i = 0; i < MBMAP_NREGS; i++)
        regs[i] = (uint16_t)(rsp[3 + 2 * i] << 8 | rsp[4 + 2 * i]);
    e->status = DRIVER_OK;
    e->err = 0;
    e->msg[0] = '\0';
    return 0;
}

int mbpack_poll(struct mbpack *p, uint8_t slave, struct sample *out, struct driver_error *e)
{
    uint16_t regs[MBMAP_NREGS];
    struct sample s;
    int r = mbpack_read_regs(p, slave, regs, e);
    if (r != 0)
        return r;
    mbmap_decode(regs, &s);
    s.address = slave;
    *out = s;
    return 0;
}
