/* serial: a raw 8N1 serial port for a half-duplex request/response bus (RS485 or RS232).
 *
 * Exclusive open (TIOCEXCL + flock), stale input flushed before each request, one frame read
 * against a deadline with resync on the start byte, a minimum gap between frames, and the
 * optional kernel RS485 mode. Errors are negative errno values; serial_strerror() gives a
 * sentence a person can act on. */
#ifndef BMSFLEET_SERIAL_H
#define BMSFLEET_SERIAL_H

#include <stddef.h>
#include <stdint.h>

struct serial_opts {
    int baud;        /* 1200 .. 115200 */
    int timeout_ms;  /* whole-response deadline per request */
    int gap_ms;      /* minimum silence between the end of one frame and the next request */
    int rs485;       /* 1: enable TIOCSRS485 (RTS drives the transceiver) */
    int rs485_delay_before_us; /* rounded up to whole ms: the kernel's unit */
    int rs485_delay_after_us;
    /* A network device (tcp://HOST:PORT, see endpoint.h): the connected socket takes the tty's
     * place; baud then only paces (the request's wire time at the server's serial side is added
     * to the answer's deadline and to the gap), rs485 must be off. */
    int connect_timeout_ms; /* 0: TCP_CONNECT_TIMEOUT_MS */
    int cancel_fd;          /* readable = stop connecting (-ECANCELED); 0 or -1: none */
};

/* Defaults: 9600 baud, 1000 ms timeout, 50 ms gap, no RS485 ioctl, 3 s to connect. */
void serial_opts_default(struct serial_opts *o);

/* Counters a poller can report as link quality. */
struct serial_stats {
    uint64_t frames;        /* complete frames read */
    uint64_t timeouts;      /* requests with no complete frame before the deadline */
    uint64_t discarded;     /* bytes dropped while resynchronising (noise, partial frames) */
    uint64_t overflows;     /* frames longer than the caller's buffer */
    uint64_t flushed;       /* stale bytes found and dropped before a request */
    uint64_t rx_bytes;      /* bytes read for frames and by listening (flushed: above) */
    uint64_t tx_bytes;      /* every byte written to it (0 on a port that only listens) */
    uint64_t guessed;       /* answers slept through to the length the same request's had */
};

struct serial_port;

/* Opens and configures the port; out is written only on success. Fails with -EBUSY when
 * another process holds it, -ENOENT when the path does not exist, -EINVAL for a bad baud.
 * path tcp://HOST:PORT connects instead (tcp_connect's errors); modbus-tcp:// is Modbus TCP,
 * not a byte stream: -EPROTONOSUPPORT. */
int serial_open(const char *path, const struct serial_opts *o, struct serial_port **out);
void serial_close(struct serial_port *p);
/* "<path>: <why>" for a failed serial_open (a network device's with its connect timeout). */
void serial_describe_open(const char *path, const struct serial_opts *o, int err, char *buf,
                          size_t cap);

int serial_fd(const struct serial_port *p);
/* 1 when the port is a TCP connection to a serial server. */
int serial_is_network(const struct serial_port *p);
int serial_timeout_ms(const struct serial_port *p);
const char *serial_path(const struct serial_port *p);
const struct serial_stats *serial_get_stats(const struct serial_port *p);

/* True when baud is one this module can set. */
int serial_baud_supported(int baud);

/* A descriptor that, once readable, makes every wait of this port return -ECANCELED (the
 * daemon's shutdown eventfd), so a long timeout never delays a stop. -1 = none. */
void serial_set_cancel_fd(struct serial_port *p, int fd);

/* How many chars the frame begun in buf (len chars, buf[0] the start byte) will have, as far as
 * its first chars tell (see s42_frame_chars); 0 when they do not. */
typedef size_t serial_frame_chars_fn(const char *buf, size_t len);
/* With fn, serial_read_frame() sleeps through the wire time of what a frame still lacks
 * instead of waking for every few bytes; NULL (the default) takes bytes as they come. */
void serial_set_frame_chars(struct serial_port *p, serial_frame_chars_fn *fn);

/* Drops whatever is waiting in the input buffer; returns the number of bytes dropped. */
int serial_flush_input(struct serial_port *p);

/* Writes all of buf and waits until it has left the UART (tcdrain). */
int serial_write(struct serial_port *p, const void *buf, size_t n);

/* Reads one frame that starts with `start` and ends with `end` (both included in buf, then a
 * NUL) before timeout_ms elapses. Bytes before `start` are discarded; a new `start` inside a
 * frame restarts it (resync). Returns the frame length, -ETIMEDOUT, -EMSGSIZE when a frame does
 * not fit in cap-1 bytes, or another -errno (-ENODEV / -EIO when the adapter went away).
 * On error the contents of buf are unspecified. */
int serial_read_frame(struct serial_port *p, char start, char end, char *buf, size_t cap,
                      int timeout_ms);

/* Whatever the line delivers, as it comes (listening, see listener.h): the bytes already read
 * past a frame first, else one read once something arrives before timeout_ms. Returns the
 * bytes put in buf, 0 when the line stayed silent, or -errno as serial_read_frame. */
int serial_read_some(struct serial_port *p, void *buf, size_t cap, int timeout_ms);

/* One request/response exchange: waits out the inter-frame gap, flushes stale input, writes
 * req, reads a frame ('~' .. '\r') within the port's timeout. */
int serial_transact(struct serial_port *p, const char *req, size_t req_len, char *resp,
                    size_t cap);

/* The deadline for the answer to a request of req_len bytes just written: the timeout, plus
 * on a network port the request's wire time at the server's serial side (a tty's write waited
 * for that already). */
int serial_answer_ms(const struct serial_port *p, size_t req_len);

/* Time in ms to send n characters at the port's baud (10 bits per 8N1 character). */
double serial_wire_ms(int baud, size_t nchars);

/* A sentence for a -errno from this module; callers add serial_path(). */
const char *serial_strerror(int err);

#endif
