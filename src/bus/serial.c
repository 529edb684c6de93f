/* serial: owns one raw 8N1 tty (exclusive via flock + TIOCEXCL), the deadline-based frame reader
 * with resync on the start byte, the bytes read past a frame's end (kept for the next call), the
 * inter-frame gap and the link-quality counters. It never logs: it returns -errno, and
 * serial_strerror() turns that into a sentence. One port is used by one thread at a time.
 *
 * A tcp:// device is a TCP connection to a serial server in transparent mode (tcp.c connects):
 * the same reader on a socket, without termios, locks or tcdrain. The server's UART still
 * takes the request's wire time at the port's baud rate, so that time is added where the tty
 * would have waited for it (tcdrain): to the answer's deadline and to the gap. A connection the
 * server closes (even mid-frame) is -ECONNRESET: a port error, like an unplugged adapter. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strerrordesc_np */
#endif
#include "now.h"
#include "serial.h"
#include "endpoint.h"
#include "tcp.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/serial.h>
#include <poll.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define SERIAL_RX_CAP    256        /* one read(2) chunk; what is left after a frame stays here */
#define SERIAL_FLUSH_MAX (1L << 20) /* a flush on a bus that never stops talking still ends */
/* The most chars slept through at once: the tty's line discipline holds 4096 bytes, and a
 * longer frame is taken in parts rather than risk it filling up while we sleep. */
#define SERIAL_PACE_MAX_CHARS 1024
#define SERIAL_EXPECT_SLOTS 128 /* requests whose answer length is remembered (32 packs x 3 commands fit) */

struct serial_port {
    int fd;
    int sock; /* fd is a TCP connection (tcp://), not a tty */
    char *path;
    struct serial_opts opts;
    struct serial_stats stats;
    int64_t last_frame_ns; /* CLOCK_MONOTONIC end of the last frame read or written */
    int have_last;
    int cancel_fd; /* readable = give up waiting (-ECANCELED); -1 = none */
    serial_frame_chars_fn *frame_chars; /* NULL: frames are taken as the bytes come */
    /* How long the answer to each request was the last time (a pack answers the same request
     * with a frame of the same length): keyed by a hash of the request, direct mapped. */
    struct {
        uint32_t key;
        uint16_t chars;
    } expect[SERIAL_EXPECT_SLOTS];
    size_t expect_now; /* the answer being read: its length last time, 0 when not known */
    int rx_full;           /* the last read filled rx: more bytes may be waiting already */
    size_t rx_off, rx_len; /* unread bytes are rx[rx_off .. rx_len) */
    unsigned char rx[SERIAL_RX_CAP];
};

/* FNV-1a of the request, never 0 (0 marks an empty slot) */
static uint32_t request_key(const char *req, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)req[i]) * 16777619u;
    return h ? h : 1;
}

static const struct {
    int baud;
    speed_t speed;
} bauds[] = {
    {1200, B1200},   {2400, B2400},   {4800, B4800},   {9600, B9600},
    {19200, B19200}, {38400, B38400}, {57600, B57600}, {115200, B115200},
};

void serial_opts_default(struct serial_opts *o)
{
    *o = (struct serial_opts){.baud = 9600,
                              .timeout_ms = 1000,
                              .gap_ms = 50,
                              .connect_timeout_ms = TCP_CONNECT_TIMEOUT_MS,
                              .cancel_fd = -1};
}

int serial_fd(const struct serial_port *p)
{
    return p->fd;
}

int serial_is_network(const struct serial_port *p)
{
    return p->sock;
}

int serial_timeout_ms(const struct serial_port *p)
{
    return p->opts.timeout_ms;
}

const char *serial_path(const struct serial_port *p)
{
    return p->path;
}

const struct serial_stats *serial_get_stats(const struct serial_port *p)
{
    return &p->stats;
}

static int baud_speed(int baud, speed_t *ret_speed)
{
    for (size_t i = 0; i < sizeof bauds / sizeof bauds[0]; i++) {
        if (bauds[i].baud == baud) {
            *ret_speed = bauds[i].speed;
            return 0;
        }
    }
    return -EINVAL;
}

int serial_baud_supported(int baud)
{
    speed_t s;
    return baud_speed(baud, &s) == 0;
}

/* Milliseconds left until deadline, rounded up so poll() never wakes just before it. */
static int ms_left(int64_t deadline_ns)
{
    int64_t left = deadline_ns - now_mono_ns();
    if (left <= 0)
        return 0;
    left = (left + 999999) / 1000000;
    return left > INT_MAX ? INT_MAX : (int)left;
}

/* A read or write error that means the adapter (or the pty peer, or the connection) is gone.
 * On a socket ETIMEDOUT is keepalive giving up, not a silent pack: the connection is lost. */
static int gone_errno(const struct serial_port *p, int e)
{
    if (p->sock && e == ETIMEDOUT)
        return -ENOTCONN;
    if (e == ENODEV || e == ENXIO)
        return -ENODEV;
    if (e == EIO)
        return -EIO;
    return -e;
}

static int configure_tty(int fd, speed_t speed)
{
    struct termios t;

    if (tcgetattr(fd, &t) < 0)
        return -errno;
    cfmakeraw(&t);
    t.c_cflag &= (tcflag_t) ~(CSIZE | PARENB | CSTOPB | CRTSCTS);
    t.c_cflag |= CS8 | CLOCAL | CREAD;
    t.c_iflag &= (tcflag_t) ~(IXON | IXOFF | IXANY);
    t.c_cc[VMIN] = 0; /* never block in read(); deadlines come from poll() */
    t.c_cc[VTIME] = 0;
    if (cfsetispeed(&t, speed) < 0 || cfsetospeed(&t, speed) < 0)
        return -EINVAL;
    if (tcsetattr(fd, TCSANOW, &t) < 0)
        return -errno;
    if (tcflush(fd, TCIOFLUSH) < 0)
        return -errno;
    return 0;
}

static int enable_rs485(int fd, const struct serial_opts *o)
{
    struct serial_rs485 rs = {.flags = SER_RS485_ENABLED | SER_RS485_RTS_ON_SEND};

    if (o->rs485_delay_before_us < 0 || o->rs485_delay_after_us < 0)
        return -EINVAL;
    /* The kernel takes these delays in milliseconds: round up so a delay is never shortened. */
    rs.delay_rts_before_send = (__u32)((o->rs485_delay_before_us + 999) / 1000);
    rs.delay_rts_after_send = (__u32)((o->rs485_delay_after_us + 999) / 1000);
    if (ioctl(fd, TIOCSRS485, &rs) < 0) {
        int e = errno;
        /* ENOSYS: qemu-user (an arm64 image on another machine) does not pass this ioctl on */
        return (e == ENOTTY || e == EINVAL || e == ENOSYS) ? -EOPNOTSUPP : -e;
    }
    return 0;
}

/* A network device: the connected socket takes the tty's place in p->fd. 0 or -errno. */
static int open_tcp(struct serial_port *p, const struct endpoint *ep, const struct serial_opts *o)
{
    int ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : TCP_CONNECT_TIMEOUT_MS;
    int r = tcp_connect(ep->host, ep->port, ms, o->cancel_fd > 0 ? o->cancel_fd : -1, &p->fd);
    if (r < 0)
        return r;
    p->sock = 1;
    return 0;
}

/* The local tty at path into p->fd: opened, ours alone (flock, then TIOCEXCL), at speed, in
 * RS485 mode if asked. 0 or -errno; on failure TIOCEXCL is undone and p->fd is the caller's to
 * close. */
static int open_tty(struct serial_port *p, const char *path, const struct serial_opts *o,
                    speed_t speed)
{
    /* A /dev/serial/by-id/... symlink is simply followed by open(). */
    p->fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (p->fd < 0)
        return -errno;
    if (!isatty(p->fd))
        return -ENOTTY;
    /* The flock comes first: TIOCNXCL on the way out must never clear another owner's flag. */
    if (flock(p->fd, LOCK_EX | LOCK_NB) < 0)
        return errno == EWOULDBLOCK ? -EBUSY : -errno;
    if (ioctl(p->fd, TIOCEXCL) < 0)
        return -errno;
    int r = configure_tty(p->fd, speed);
    if (r >= 0 && o->rs485)
        r = enable_rs485(p->fd, o);
    if (r < 0) {
        (void)ioctl(p->fd, TIOCNXCL);
        return r;
    }
    return 0;
}

int serial_open(const char *path, const struct serial_opts *o, struct serial_port **out)
{
    struct serial_opts def;
    struct serial_port *p = NULL;
    speed_t speed;
    int r;

    if (!path || !out)
        return -EINVAL;
    if (!o) {
        serial_opts_default(&def);
        o = &def;
    }
    r = baud_speed(o->baud, &speed);
    if (r < 0)
        return r;
    if (o->timeout_ms < 0 || o->gap_ms < 0)
        return -EINVAL;

    struct endpoint ep;
    if (endpoint_parse(path, &ep, NULL, 0) != 0)
        return -EINVAL;
    if (ep.kind == ENDPOINT_MODBUS_TCP)
        return -EPROTONOSUPPORT;
    if (ep.kind == ENDPOINT_TCP && o->rs485)
        return -EINVAL; /* the serial server drives its transceiver itself */

    p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->fd = -1;
    p->cancel_fd = -1;
    p->opts = *o;
    p->path = strdup(path);
    if (!p->path)
        r = -ENOMEM;
    else if (ep.kind == ENDPOINT_TCP)
        r = open_tcp(p, &ep, o);
    else
        r = open_tty(p, path, o, speed);
    if (r < 0) {
        if (p->fd >= 0)
            close(p->fd);
        free(p->path);
        free(p);
        return r;
    }
    *out = p;
    return 0;
}

void serial_describe_open(const char *path, const struct serial_opts *o, int err, char *buf,
                          size_t cap)
{
    if (endpoint_is_network(path) && err != -EPROTONOSUPPORT)
        tcp_describe_open(path, err,
                          o && o->connect_timeout_ms > 0 ? o->connect_timeout_ms
                                                         : TCP_CONNECT_TIMEOUT_MS,
                          buf, cap);
    else
        snprintf(buf, cap, "%s: %s", path, serial_strerror(err));
}

void serial_close(struct serial_port *p)
{
    if (!p)
        return;
    if (p->fd >= 0) {
        if (!p->sock)
            (void)ioctl(p->fd, TIOCNXCL); /* the tty may outlive us (a pty, another fd) */
        close(p->fd);
    }
    free(p->path);
    free(p);
}

int serial_flush_input(struct serial_port *p)
{
    long n = (long)(p->rx_len - p->rx_off);
    unsigned char scratch[SERIAL_RX_CAP];

    p->rx_off = p->rx_len = 0;
    /* tcflush() alone misses bytes a pty is still handing to the line discipline; read them. */
    while (n < SERIAL_FLUSH_MAX) {
        ssize_t k = read(p->fd, scratch, sizeof scratch);
        if (k > 0) {
            n += k;
            continue;
        }
        if (k == 0 && p->sock) { /* end of file: the server closed the connection */
            p->stats.flushed += (uint64_t)n;
            return -ECONNRESET;
        }
        if (k == 0 || errno == EAGAIN || errno == EWOULDBLOCK)
            break;
        if (errno != EINTR) {
            int r = gone_errno(p, errno);
            p->stats.flushed += (uint64_t)n;
            return r;
        }
    }
    if (!p->sock)
        (void)tcflush(p->fd, TCIFLUSH); /* whatever is still below the line discipline */
    p->stats.flushed += (uint64_t)n;
    return n > INT_MAX ? INT_MAX : (int)n;
}

/* Waits for events on the port until deadline_ns; returns revents, 0 on timeout, -ECANCELED
 * when the cancel descriptor became readable, or -errno. fd < 0 just waits (for the gap, or
 * through a frame's wire time). ppoll: to the nanosecond, where poll() would add up to 1 ms. */
static int wait_fd(int fd, short events, int64_t deadline_ns, int cancel_fd)
{
    for (;;) {
        struct pollfd pfd[2] = {{.fd = fd, .events = events}, {.fd = cancel_fd, .events = POLLIN}};
        int64_t left = deadline_ns - now_mono_ns();
        if (left < 0)
            left = 0;
        struct timespec ts = {.tv_sec = (time_t)(left / 1000000000),
                              .tv_nsec = (long)(left % 1000000000)};
        int k = ppoll(pfd, 2, &ts, NULL);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (k > 0 && pfd[1].revents)
            return -ECANCELED;
        if (k > 0 && pfd[0].revents) {
            if (pfd[0].revents & POLLNVAL)
                return -EBADF;
            return pfd[0].revents;
        }
        if (left == 0 || deadline_ns <= now_mono_ns())
            return 0;
    }
}

void serial_set_cancel_fd(struct serial_port *p, int fd)
{
    p->cancel_fd = fd;
}

void serial_set_frame_chars(struct serial_port *p, serial_frame_chars_fn *fn)
{
    p->frame_chars = fn;
}

int serial_write(struct serial_port *p, const void *buf, size_t n)
{
    const unsigned char *b = buf;
    int64_t deadline = now_mono_ns() + (int64_t)p->opts.timeout_ms * 1000000;
    size_t done = 0;

    while (done < n) {
        ssize_t k = p->sock ? send(p->fd, b + done, n - done, MSG_NOSIGNAL)
                            : write(p->fd, b + done, n - done);
        if (k >= 0) {
            done += (size_t)k;
            p->stats.tx_bytes += (uint64_t)k;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return gone_errno(p, errno);
        int ev = wait_fd(p->fd, POLLOUT, deadline, p->cancel_fd);
        if (ev < 0)
            return ev;
        if (ev == 0)
            return -ETIMEDOUT;
        if ((ev & (POLLHUP | POLLERR)) && !(ev & POLLOUT))
            return -EIO;
    }
    if (p->sock) {
        /* the request leaves the server's UART one wire time from now */
        p->last_frame_ns = now_mono_ns() + (int64_t)(serial_wire_ms(p->opts.baud, n) * 1e6);
        p->have_last = 1;
        return 0;
    }
    while (tcdrain(p->fd) < 0) {
        if (errno != EINTR)
            return gone_errno(p, errno);
    }
    p->last_frame_ns = now_mono_ns();
    p->have_last = 1;
    return 0;
}

/* Refills rx from the port, waiting until deadline_ns. Returns bytes read, 0 on timeout, or
 * -EIO / -ENODEV when the adapter or the pty peer went away. read_first: the bytes are most
 * likely there already (after sleeping through their wire time): read before waiting, one
 * system call instead of two. */
static int fill_rx(struct serial_port *p, int64_t deadline_ns, int read_first)
{
    for (;;) {
        int ev = POLLIN;
        if (!read_first) {
            ev = wait_fd(p->fd, POLLIN, deadline_ns, p->cancel_fd);
            if (ev <= 0)
                return ev;
        }
        ssize_t k = read(p->fd, p->rx, sizeof p->rx);
        if (k > 0) {
            p->stats.rx_bytes += (uint64_t)k;
            p->rx_off = 0;
            p->rx_len = (size_t)k;
            p->rx_full = (size_t)k == sizeof p->rx;
            return (int)k;
        }
        if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return gone_errno(p, errno);
        if (k == 0 && p->sock)
            return -ECONNRESET; /* end of file: the server closed the connection */
        if (read_first) { /* not there yet: wait for it as usual */
            read_first = 0;
            continue;
        }
        /* No data although poll() woke us: a hangup (read() gives 0 then), else spurious. */
        if (ev & (POLLHUP | POLLERR))
            return -EIO;
        if (ms_left(deadline_ns) == 0)
            return 0;
    }
}

/* Sleeps through the wire time of `missing` chars (with one char's time of slack, at most
 * SERIAL_PACE_MAX_CHARS), so that one read takes them all: without it the reader wakes for
 * every few bytes the adapter hands over (a pty or a USB chip: ~20 times per answer). The
 * deadline is kept. Returns 1 (the bytes should be there now) or -ECANCELED. */
static int sleep_chars(struct serial_port *p, size_t missing, int64_t deadline_ns)
{
    if (missing > SERIAL_PACE_MAX_CHARS)
        missing = SERIAL_PACE_MAX_CHARS;
    int64_t until = now_mono_ns() + (int64_t)(serial_wire_ms(p->opts.baud, missing + 1) * 1e6);
    int r = wait_fd(-1, 0, until < deadline_ns ? until : deadline_ns, p->cancel_fd);
    return r < 0 ? r : 1;
}

/* Sleeps through what the frame in buf still lacks as far as its first chars announce it
 * (frame_chars: the header, then the length it gives). Bytes that come late are waited for as
 * before. 1 when it slept, 0 when it did not, or -ECANCELED. */
static int pace_frame(struct serial_port *p, const char *buf, size_t len, int64_t deadline_ns)
{
    if (p->frame_chars == NULL || len == 0 || p->rx_full)
        return 0;
    size_t want = p->frame_chars(buf, len);
    if (want <= len)
        return 0;
    return sleep_chars(p, want - len, deadline_ns);
}

int serial_read_frame(struct serial_port *p, char start, char end, char *buf, size_t cap,
                      int timeout_ms)
{
    int64_t deadline;
    size_t len = 0; /* bytes of the frame being assembled in buf; 0 = hunting for start */
    int overflowed = 0, paced = 0, guessed = 0;

    if (!buf || cap < 3 || cap - 1 > INT_MAX || start == end || timeout_ms < 0)
        return -EINVAL;
    deadline = now_mono_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        while (p->rx_off < p->rx_len) {
            char c = (char)p->rx[p->rx_off++];
            if (c == start) {
                p->stats.discarded += len; /* a partial frame, restarted here */
                buf[0] = c;
                len = 1;
            } else if (len == 0) {
                p->stats.discarded++;
            } else if (len + 1 > cap - 1) {
                /* Too long for buf: drop it and hunt for the next start byte. */
                p->stats.discarded += len + 1;
                p->stats.overflows++;
                overflowed = 1;
                len = 0;
            } else {
                buf[len++] = c;
                if (c == end) {
                    buf[len] = '\0';
                    p->stats.frames++;
                    p->last_frame_ns = now_mono_ns();
                    p->have_last = 1;
                    return (int)len;
                }
            }
        }
        int r, read_first;
        if (len > 0 && p->expect_now > len && !guessed && p->frame_chars && !p->rx_full) {
            /* the answer's first chars are in: sleep through the rest of the length this
             * request's answer had last time, then read it whole (one wake-up, not one for the
             * header and one for the rest) */
            guessed = 1;
            p->stats.guessed++;
            r = sleep_chars(p, p->expect_now - len, deadline);
            read_first = r > 0;
        } else {
            /* the first sleep is for the header, whose bytes an adapter hands over in chunks
             * of its own; after the second, for the frame's announced rest, they are there */
            r = pace_frame(p, buf, len, deadline);
            paced += r > 0;
            read_first = r > 0 && (paced >= 2 || guessed);
        }
        if (r >= 0)
            r = fill_rx(p, deadline, read_first);
        if (r < 0) {
            p->stats.discarded += len;
            return r;
        }
        if (r == 0)
            break;
    }
    p->stats.discarded += len; /* the partial frame the deadline cut off */
    if (overflowed)
        return -EMSGSIZE;
    p->stats.timeouts++;
    return -ETIMEDOUT;
}

int serial_read_some(struct serial_port *p, void *buf, size_t cap, int timeout_ms)
{
    if (!buf || cap == 0 || timeout_ms < 0)
        return -EINVAL;
    if (p->rx_off == p->rx_len) {
        int r = fill_rx(p, now_mono_ns() + (int64_t)timeout_ms * 1000000, 0);
        if (r <= 0)
            return r;
    }
    size_t n = p->rx_len - p->rx_off < cap ? p->rx_len - p->rx_off : cap;
    memcpy(buf, p->rx + p->rx_off, n);
    p->rx_off += n;
    return (int)n;
}

int serial_transact(struct serial_port *p, const char *req, size_t req_len, char *resp, size_t cap)
{
    if (!req || !resp)
        return -EINVAL;
    int64_t gap_end = p->last_frame_ns + (int64_t)p->opts.gap_ms * 1000000;
    if (p->have_last && gap_end > now_mono_ns()) { /* a gap already over costs no system call */
        int w = wait_fd(-1, 0, gap_end, p->cancel_fd);
        if (w < 0)
            return w;
    }
    int r = serial_flush_input(p);
    if (r < 0)
        return r;
    r = serial_write(p, req, req_len);
    if (r < 0)
        return r;
    uint32_t key = request_key(req, req_len);
    size_t slot = key % SERIAL_EXPECT_SLOTS;
    p->expect_now = p->expect[slot].key == key ? p->expect[slot].chars : 0;
    r = serial_read_frame(p, '~', '\r', resp, cap, serial_answer_ms(p, req_len));
    p->expect_now = 0;
    if (r > 0 && r <= UINT16_MAX) {
        p->expect[slot].key = key;
        p->expect[slot].chars = (uint16_t)r;
    }
    return r;
}

int serial_answer_ms(const struct serial_port *p, size_t req_len)
{
    if (!p->sock)
        return p->opts.timeout_ms; /* tcdrain waited for the request to leave */
    double wire = serial_wire_ms(p->opts.baud, req_len);
    return p->opts.timeout_ms + (int)(wire + 0.999);
}

double serial_wire_ms(int baud, size_t nchars)
{
    if (baud <= 0)
        return 0.0;
    return (double)nchars * 10.0 * 1000.0 / (double)baud;
}

const char *serial_strerror(int err)
{
    const char *s;

    if (err < 0)
        err = -err;
    switch (err) {
    case 0:
        return "success";
    case ETIMEDOUT:
        return "no answer within the timeout";
    case EBUSY:
        return "another process has the port open (exclusive lock held)";
    case ENOENT:
        return "no such device: check the path (/dev/serial/by-id/... names are stable)";
    case ENODEV:
    case ENXIO:
    case EIO:
        return "the adapter went away (unplugged?)";
    case EMSGSIZE:
        return "frame longer than the buffer";
    case EACCES:
    case EPERM:
        return "permission denied: add the user to the dialout group";
    case EINVAL:
        return "unsupported baud rate or invalid serial setting";
    case EPROTONOSUPPORT:
        return "modbus-tcp:// is Modbus TCP: use it with protocol modbus (tcp:// carries the bus "
               "bytes of any protocol)";
    case ENOTTY:
        return "not a serial port (the path is not a tty)";
    case EOPNOTSUPP:
        return "the driver refuses kernel RS485 mode: use an adapter with automatic direction "
               "control and turn rs485 off";
    default:
        break;
    }
    s = tcp_strerror(err);
    if (s)
        return s;
    s = strerrordesc_np(err); /* static and thread safe, unlike strerror() for unknown codes */
    return s ? s : "unknown error";
}
