/* test_serial: the serial port against real pseudo-terminals. The test holds the pty master and
 * plays the BMS (inline, or from a thread for request/response); the port opens the slave path.
 * Assertions are on values and counters, never on elapsed time. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "s42.h"
#include "serial.h"

#define PEER_WAIT_MS 5000 /* a generous bound so a broken test fails instead of hanging */

struct pty {
    int master;
    int slave; /* the test's own slave fd, kept so the tty outlives serial_close() */
    char name[128];
};

static int pty_setup(void **state)
{
    struct pty *t = calloc(1, sizeof *t);
    struct termios tio;

    assert_non_null(t);
    assert_int_equal(openpty(&t->master, &t->slave, t->name, NULL, NULL), 0);
    assert_int_equal(tcgetattr(t->master, &tio), 0);
    cfmakeraw(&tio);
    assert_int_equal(tcsetattr(t->master, TCSANOW, &tio), 0);
    *state = t;
    return 0;
}

static int pty_teardown(void **state)
{
    struct pty *t = *state;
    if (t->master >= 0)
        close(t->master);
    if (t->slave >= 0)
        close(t->slave);
    free(t);
    return 0;
}

static struct serial_port *open_port(const struct pty *t, int timeout_ms)
{
    struct serial_opts o;
    struct serial_port *p = NULL;

    serial_opts_default(&o);
    o.timeout_ms = timeout_ms;
    o.gap_ms = 5;
    assert_int_equal(serial_open(t->name, &o, &p), 0);
    assert_non_null(p);
    return p;
}

static void peer_send(const struct pty *t, const char *s)
{
    size_t n = strlen(s);
    assert_int_equal(write(t->master, s, n), (ssize_t)n);
}

/* Waits until the port's input queue holds at least n bytes (the pty hands bytes over
 * asynchronously), so a following flush has something definite to drop. */
static void wait_inq(struct serial_port *p, int n)
{
    for (int i = 0; i < PEER_WAIT_MS; i++) {
        int q = 0;
        assert_int_equal(ioctl(serial_fd(p), FIONREAD, &q), 0);
        if (q >= n)
            return;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    fail_msg("peer bytes never arrived");
}

/* Reads from the master until `end` is seen; returns the length or -1. */
static int peer_read_until(int fd, char end, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, PEER_WAIT_MS) <= 0)
            return -1;
        ssize_t k = read(fd, buf + n, 1);
        if (k <= 0)
            return -1;
        n++;
        if (buf[n - 1] == end)
            break;
    }
    buf[n] = '\0';
    return (int)n;
}

static void test_opts_default(void **state)
{
    (void)state;
    struct serial_opts o = {-1, -1, -1, -1, -1, -1, -1, -1};
    serial_opts_default(&o);
    assert_int_equal(o.baud, 9600);
    assert_int_equal(o.timeout_ms, 1000);
    assert_int_equal(o.gap_ms, 50);
    assert_int_equal(o.rs485, 0);
    assert_int_equal(o.rs485_delay_before_us, 0);
    assert_int_equal(o.rs485_delay_after_us, 0);
}

static void test_open_close(void **state)
{
    struct pty *t = *state;
    struct serial_port *p = open_port(t, 1000);

    assert_true(serial_fd(p) >= 0);
    assert_string_equal(serial_path(p), t->name);
    const struct serial_stats *st = serial_get_stats(p);
    assert_int_equal(st->frames + st->timeouts + st->discarded + st->overflows + st->flushed, 0);
    assert_int_equal(fcntl(serial_fd(p), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    serial_close(p);
    serial_close(NULL);
}

static void test_open_all_bauds(void **state)
{
    struct pty *t = *state;
    static const int ok[] = {1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct serial_opts o;
        struct serial_port *p = NULL;
        serial_opts_default(&o);
        o.baud = ok[i];
        assert_true(serial_baud_supported(ok[i]));
        assert_int_equal(serial_open(t->name, &o, &p), 0);
        serial_close(p);
    }
}

static void test_bad_baud(void **state)
{
    struct pty *t = *state;
    struct serial_opts o;
    struct serial_port *sentinel = (struct serial_port *)&o;
    struct serial_port *p = sentinel;

    serial_opts_default(&o);
    o.baud = 1234;
    assert_false(serial_baud_supported(1234));
    assert_false(serial_baud_supported(0));
    assert_int_equal(serial_open(t->name, &o, &p), -EINVAL);
    assert_ptr_equal(p, sentinel); /* out written only on success */
    o.baud = 230400;
    assert_int_equal(serial_open(t->name, &o, &p), -EINVAL);
    assert_ptr_equal(p, sentinel);
}

static void test_nonexistent(void **state)
{
    (void)state;
    struct serial_port *p = NULL;
    assert_int_equal(serial_open("/dev/serial/by-id/no-such-adapter-xyz", NULL, &p), -ENOENT);
    assert_null(p);
}

static void test_not_a_tty(void **state)
{
    (void)state;
    struct serial_port *p = NULL;
    assert_int_equal(serial_open("/dev/null", NULL, &p), -ENOTTY);
    assert_null(p);
}

static void test_exclusive(void **state)
{
    struct pty *t = *state;
    struct serial_port *p = open_port(t, 1000);
    struct serial_port *q = NULL;

    assert_int_equal(serial_open(t->name, NULL, &q), -EBUSY);
    assert_null(q);
    serial_close(p);
    /* Released on close: the lock and the exclusive flag. */
    assert_int_equal(serial_open(t->name, NULL, &q), 0);
    serial_close(q);
}

static void test_rs485_refused_by_pty(void **state)
{
    struct pty *t = *state;
    struct serial_opts o;
    struct serial_port *p = NULL;

    serial_opts_default(&o);
    o.rs485 = 1;
    o.rs485_delay_before_us = 500;
    assert_int_equal(serial_open(t->name, &o, &p), -EOPNOTSUPP);
    assert_null(p);
    /* The failed open released everything. */
    o.rs485 = 0;
    assert_int_equal(serial_open(t->name, &o, &p), 0);
    serial_close(p);
}

static void test_symlink(void **state)
{
    struct pty *t = *state;
    char dir[] = "/tmp/test_serial.XXXXXX";
    char link[sizeof dir + 32];
    struct serial_port *p = NULL;

    assert_non_null(mkdtemp(dir));
    snprintf(link, sizeof link, "%s/usb-FTDI_RS485-if00", dir);
    assert_int_equal(symlink(t->name, link), 0);
    int r = serial_open(link, NULL, &p);
    unlink(link);
    rmdir(dir);
    assert_int_equal(r, 0);
    assert_string_equal(serial_path(p), link);
    serial_close(p);
}

static void test_read_exact(void **state)
{
    struct pty *t = *state;
    struct serial_port *p = open_port(t, 2000);
    char buf[64];

    peer_send(t, "~ABC\r");
    assert_int_equal(serial_read_frame(p, '~', '\r', buf, sizeof buf, 2000), 5);
    assert_string_equal(buf, "~ABC\r");
    assert_int_equal(serial_get_stats(p)->frames, 1);
    assert_int_equal(serial_get_stats(p)->discarded, 0);
    serial_close(p);
}

static void test_garbage_before_start(void **state)
{
    struct pty *t = *state;
    struct serial_port *p = open_port(t, 2000);
    char buf[64];

    assert_int_equal(write(t->master, "xy\0\xff\r~ABC\r", 10), 10);
    assert_int_equal(serial_read_frame(p, '~', '\r', buf, sizeof buf, 2000), 5);
    assert_string_equal(buf, "~ABC\r");
    assert_int_equal(serial_get_stats(p)->discarded, 5);
    assert_int_equal(serial_get_stats(p)->frames, 1);
    serial_close(p);
}

static void test_resync_on_second_start(void **state)
{
    struct pty *t = *state;
    struct serial_port *p = open_port(t, 2000);
    char buf[64];

    peer_send(t, "~AB~CDE\r");
    assert_int_equal(serial_read_frame(p, '~', '\r', buf, sizeof buf, 2000), 5);
    assert_string_equal(buf, "~CDE\r");
    assert_int_equal(serial_get_stats(p)->discarded, 3);
    serial_close(p);
}

static void test_two_frames_one_write(void **state)
{
    struct pty *t = *state;
    struct serial_port *p = open_port(t, 2000);
    char buf[64];

    peer_send(t, "~A1\r~B22\rzz");
    assert_int_equal(serial_read_frame(p, '~', '\r', buf, sizeof buf, 2000), 4);
    assert_string_equal(buf, "~A1\r");
    assert_int_equal(serial_read_frame(p, '~', '\r', buf, sizeof buf, 2000), 5);
    assert_string_equal(buf, "~B22\r");
    assert_int_equal(serial_get_stats(p)->frames, 2);
    assert_int_equal(serial_get_stats(p)->discarded, 0);
    /* The two bytes after the second frame were kept, whether buffered or still in the tty. */
    assert_int_equal(serial_flush_input(p), 2);
    assert_int_equal(serial_get_stats(p)->flushed, 2);
    serial_close(p);
}

static void test_frame_split_across_writes(void **state)
{
    struct pty *t = *state;
    struct serial_port *p = open_port(t, 2000);
    char buf[64];

    peer_send(t, "~12");
    peer_send(t, "34");
    peer_send(t, "5\r");
    assert_int_equal(serial_read_frame(p, '~', '\r', buf, sizeof buf, 2000), 7);
    assert_string_equal(buf, "~12345\r");
    serial_close(p);
}

static void test_timeout(void **state)
{
    struct pty *t = *state;
    struct serial_port *p = open_port(t, 50);
    char buf[64];

    assert_int_equal(serial_read_frame(p, '~', '\r', buf, sizeof buf, 50), -ETIMEDOUT);
    assert_int_equal(serial_get_stats(p)->timeouts, 1);
    assert_int_equal(serial_get_stats(p)->frames, 0);
    /* A frame that never ends is a timeout too, and its bytes count as discarded. */
    peer_send(t, "~ABC");
    assert_int_equal(serial_read_frame(p, '~', '\r', buf, sizeof buf, 50), -ETIMEDOUT);
    assert_int_equal(serial_get_stats(p)->timeouts, 2);
    assert_int_equal(serial_get_stats(p)->discarded, 4);
    assert_int_equal(serial_read_frame(p, '~', '\r', buf, sizeof buf, 0), -ETIMEDOUT);
    assert_int_equal(serial_get_stats(p)->timeouts, 3);
    serial_close(p);
}

static void test_overflow(void **state)
{
    struct pty *t = *state;
    struct serial_port *p = open_port(t, 100);
    char buf[6]; /* frames of up to 5 bytes fit */

    peer_send(t, "~ABC\r");
    assert_int_equal(serial_read_frame(p, '~', '\r', buf, sizeof buf, 2000), 5);
    assert_string_equal(buf, "~ABC\r");
    peer_send(t, "~ABCD\r");
    assert_int_equal(serial_read_frame(p, '~', '\r', buf, sizeof buf, 100), -EMSGSIZE);
    assert_int_equal(serial_get_stats(p)->overflows, 1);
    assert_int_equal(serial_get_stats(p)->discarded, 6);
    assert_int_equal(serial_get_stats(p)->timeouts, 0);
    serial_close(p);
}

static void test_overflow_then_good_frame(void **state)
{
    struct pty *t = *state;
    struct serial_port *p = open_port(t, 2000);
    char buf[8];

    peer_send(t, "~ABCDEFGHIJ\r~OK\r");
    assert_int_equal(serial_read_frame(p, '~', '\r', buf, sizeof buf, 2000), 4);
    assert_string_equal(buf, "~OK\r");
    assert_int_equal(serial_get_stats(p)->overflows, 1);
    assert_int_equal(serial_get_stats(p)->frames, 1);
    assert_int_equal(serial_get_stats(p)->discarded, 12);
    serial_close(p);
}

static void test_bad_args(void **state)
{
    struct pty *t = *state;
    struct serial_port *p = open_port(t, 100);
    char buf[8];

    assert_int_equal(serial_read_frame(p, '~', '\r', buf, 2, 10), -EINVAL);
    assert_int_equal(serial_read_frame(p, '~', '~', buf, sizeof buf, 10), -EINVAL);
    assert_int_equal(serial_read_frame(p, '~', '\r', NULL, sizeof buf, 10), -EINVAL);
    assert_int_equal(serial_read_frame(p, '~', '\r', buf, sizeof buf, -1), -EINVAL);
    serial_close(p);
}

static void test_flush_input(void **state)
{
    struct pty *t = *state;
    struct serial_port *p = open_port(t, 2000);
    char buf[64];

    assert_int_equal(serial_flush_input(p), 0);
    peer_send(t, "junk");
    wait_inq(p, 4);
    assert_int_equal(serial_flush_input(p), 4);
    assert_int_equal(serial_get_stats(p)->flushed, 4);
    assert_int_equal(serial_flush_input(p), 0);
    /* Leftover bytes held by the port after a frame are flushed and counted too. */
    peer_send(t, "~A\rxyz");
    wait_inq(p, 6);
    assert_int_equal(serial_read_frame(p, '~', '\r', buf, sizeof buf, 2000), 3);
    assert_int_equal(serial_flush_input(p), 3);
    assert_int_equal(serial_get_stats(p)->flushed, 7);
    serial_close(p);
}

static void test_write(void **state)
{
    struct pty *t = *state;
    struct serial_port *p = open_port(t, 2000);
    char buf[64];

    assert_int_equal(serial_write(p, "~REQ\r", 5), 0);
    assert_int_equal(peer_read_until(t->master, '\r', buf, sizeof buf), 5);
    assert_string_equal(buf, "~REQ\r");
    serial_close(p);
}

static void test_write_timeout_when_peer_never_reads(void **state)
{
    struct pty *t = *state;
    struct serial_port *p = open_port(t, 50);
    size_t n = 1u << 20; /* far more than a pty buffers */
    char *big = malloc(n);

    assert_non_null(big);
    memset(big, 'x', n);
    assert_int_equal(serial_write(p, big, n), -ETIMEDOUT);
    free(big);
    serial_close(p);
}

/* ---- a peer thread that plays the BMS ---- */

struct peer {
    int fd;
    int n;              /* exchanges to serve */
    const char *answer; /* sent in two halves */
    int split_ms;       /* between the halves; 0: 2 ms */
    char got[4][64];    /* requests as received */
    int ok;
};

static void *peer_main(void *arg)
{
    struct peer *pe = arg;
    for (int i = 0; i < pe->n; i++) {
        if (peer_read_until(pe->fd, '\r', pe->got[i], sizeof pe->got[i]) < 0)
            return NULL;
        size_t len = strlen(pe->answer), half = len / 2;
        if (write(pe->fd, pe->answer, half) != (ssize_t)half)
            return NULL;
        long ns = (pe->split_ms ? pe->split_ms : 2) * 1000000L;
        struct timespec ms = {ns / 1000000000L, ns % 1000000000L};
        nanosleep(&ms, NULL);
        if (write(pe->fd, pe->answer + half, len - half) != (ssize_t)(len - half))
            return NULL;
    }
    pe->ok = 1;
    return NULL;
}

static void test_transact_end_to_end(void **state)
{
    struct pty *t = *state;
    struct serial_port *p = open_port(t, 2000);
    struct peer pe = {.fd = t->master, .n = 3, .answer = "~2001460010A0FD\r"};
    pthread_t th;
    char resp[128];

    assert_int_equal(pthread_create(&th, NULL, peer_main, &pe), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(serial_transact(p, "~20014A420000FDA2\r", 18, resp, sizeof resp), 16);
        assert_string_equal(resp, "~2001460010A0FD\r");
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(pe.ok);
    for (int i = 0; i < 3; i++)
        assert_string_equal(pe.got[i], "~20014A420000FDA2\r");
    assert_int_equal(serial_get_stats(p)->frames, 3);
    assert_int_equal(serial_get_stats(p)->timeouts, 0);
    serial_close(p);
}

/* The same request's answer, read again: after its first chars, one sleep through the length
 * it had last time (stats.guessed), and the frame is exact whether it is as long as then,
 * shorter or longer. */
static void test_transact_expected_length(void **state)
{
    struct pty *t = *state;
    struct serial_port *p = open_port(t, 2000);
    serial_set_frame_chars(p, s42_frame_chars);
    char answer[S42_MAX_FRAME + 2], shorter[S42_MAX_FRAME + 2], resp[S42_MAX_FRAME + 2];
    uint8_t info[40];
    for (size_t i = 0; i < sizeof info; i++)
        info[i] = (uint8_t)(i * 5);
    int n = s42_build(answer, sizeof answer, 0x20, 1, 0x46, 0x00, info, sizeof info);
    int k = s42_build(shorter, sizeof shorter, 0x20, 1, 0x46, 0x00, info, 30); /* > n / 2 */
    static const char req[] = "~20014A420000FDA2\r";
    const char *answers[] = {answer, answer, answer, shorter, answer};
    for (int i = 0; i < 5; i++) {
        /* the halves far apart: the reader has the first chars alone when it guesses */
        struct peer pe = {.fd = t->master, .n = 1, .answer = answers[i], .split_ms = 50};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, peer_main, &pe), 0);
        int r = serial_transact(p, req, strlen(req), resp, sizeof resp);
        assert_int_equal(pthread_join(th, NULL), 0);
        assert_true(pe.ok);
        assert_int_equal(r, answers[i] == answer ? n : k);
        assert_string_equal(resp, answers[i]);
        /* the first answer was not known yet; every later one was expected */
        assert_int_equal(serial_get_stats(p)->guessed, (uint64_t)i);
    }
    /* another request: its answer is not known, nothing is guessed */
    struct peer pe = {.fd = t->master, .n = 1, .answer = answer};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, peer_main, &pe), 0);
    assert_int_equal(serial_transact(p, "~20024A420000FDA1\r", 18, resp, sizeof resp), n);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(serial_get_stats(p)->guessed, 4);
    assert_int_equal(serial_get_stats(p)->frames, 6);
    serial_close(p);
}

static void test_transact_flushes_stale(void **state)
{
    struct pty *t = *state;
    struct serial_port *p = open_port(t, 2000);
    struct peer pe = {.fd = t->master, .n = 1, .answer = "~GOOD\r"};
    pthread_t th;
    char resp[64];

    /* A late answer to an earlier request is already waiting when the next request goes out. */
    peer_send(t, "~STALE\r");
    wait_inq(p, 7);
    assert_int_equal(pthread_create(&th, NULL, peer_main, &pe), 0);
    assert_int_equal(serial_transact(p, "~REQ\r", 5, resp, sizeof resp), 6);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(pe.ok);
    assert_string_equal(resp, "~GOOD\r");
    assert_string_equal(pe.got[0], "~REQ\r");
    assert_int_equal(serial_get_stats(p)->flushed, 7);
    assert_int_equal(serial_get_stats(p)->frames, 1);
    serial_close(p);
}

static void test_transact_timeout(void **state)
{
    struct pty *t = *state;
    struct serial_port *p = open_port(t, 50);
    char resp[64], req[64];

    assert_int_equal(serial_transact(p, "~REQ\r", 5, resp, sizeof resp), -ETIMEDOUT);
    assert_int_equal(peer_read_until(t->master, '\r', req, sizeof req), 5);
    assert_int_equal(serial_get_stats(p)->timeouts, 1);
    serial_close(p);
}

/* ---- the peer goes away ---- */

static void test_peer_closed(void **state)
{
    struct pty *t = *state;
    struct serial_port *p = open_port(t, 5000);
    char buf[64];

    close(t->master);
    t->master = -1;
    int r = serial_read_frame(p, '~', '\r', buf, sizeof buf, 5000);
    assert_true(r == -EIO || r == -ENODEV);
    r = serial_write(p, "~REQ\r", 5);
    assert_true(r == -EIO || r == -ENODEV);
    r = serial_transact(p, "~REQ\r", 5, buf, sizeof buf);
    assert_true(r == -EIO || r == -ENODEV);
    assert_int_equal(serial_get_stats(p)->timeouts, 0);
    serial_close(p);
}

static void test_peer_closed_mid_frame(void **state)
{
    struct pty *t = *state;
    struct serial_port *p = open_port(t, 5000);
    char buf[64];

    peer_send(t, "~A1\r~PART");
    wait_inq(p, 9);
    /* One chunk takes all nine bytes; the port keeps "~PART" after the frame. */
    assert_int_equal(serial_read_frame(p, '~', '\r', buf, sizeof buf, 5000), 4);
    close(t->master);
    t->master = -1;
    /* The partial frame can never complete: the hangup is reported, and the bytes dropped. */
    int r = serial_read_frame(p, '~', '\r', buf, sizeof buf, 5000);
    assert_true(r == -EIO || r == -ENODEV);
    assert_int_equal(serial_get_stats(p)->discarded, 5);
    assert_int_equal(serial_get_stats(p)->timeouts, 0);
    serial_close(p);
}

static void *close_later(void *arg)
{
    struct pty *t = arg;
    struct timespec ms = {0, 30000000};
    nanosleep(&ms, NULL);
    close(t->master);
    return NULL;
}

static void test_peer_closes_while_waiting(void **state)
{
    struct pty *t = *state;
    struct serial_port *p = open_port(t, 5000);
    pthread_t th;
    char buf[64];

    assert_int_equal(pthread_create(&th, NULL, close_later, t), 0);
    int r = serial_read_frame(p, '~', '\r', buf, sizeof buf, 5000);
    assert_int_equal(pthread_join(th, NULL), 0);
    t->master = -1;
    assert_true(r == -EIO || r == -ENODEV);
    serial_close(p);
}

/* ---- pure helpers ---- */

/* ---- reading paced by the frame's announced length (serial_set_frame_chars) ---- */

struct dribble {
    int fd;
    const char *bytes;
    size_t n;
    int ok;
};

/* Writes 8 bytes at a time, one millisecond apart: what a pty paced at the baud rate, or a USB
 * adapter, hands over. */
static void *dribble_main(void *arg)
{
    struct dribble *d = arg;
    for (size_t sent = 0; sent < d->n;) {
        size_t k = d->n - sent < 8 ? d->n - sent : 8;
        if (write(d->fd, d->bytes + sent, k) != (ssize_t)k)
            return NULL;
        sent += k;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    d->ok = 1;
    return NULL;
}

static int read_dribbled(struct serial_port *p, int fd, const char *bytes, size_t n, char *buf,
                         size_t cap, int timeout_ms)
{
    struct dribble d = {.fd = fd, .bytes = bytes, .n = n};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, dribble_main, &d), 0);
    int r = serial_read_frame(p, '~', '\r', buf, cap, timeout_ms);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(d.ok);
    return r;
}

static void test_paced_frame(void **state)
{
    struct pty *t = *state;
    struct serial_port *p = open_port(t, 2000);
    serial_set_frame_chars(p, s42_frame_chars);
    char f[S42_MAX_FRAME + 2], buf[S42_MAX_FRAME + 2];
    uint8_t info[61];
    for (size_t i = 0; i < sizeof info; i++)
        info[i] = (uint8_t)(i * 7);
    int n = s42_build(f, sizeof f, 0x25, 1, 0x46, 0x00, info, sizeof info);
    /* noise first, then the frame: the hunt for '~' is unchanged */
    char line[sizeof f + 8];
    int m = snprintf(line, sizeof line, "zz%s", f);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(read_dribbled(p, t->master, line, (size_t)m, buf, sizeof buf, 2000), n);
        assert_string_equal(buf, f);
    }
    assert_int_equal(serial_get_stats(p)->frames, 3);
    assert_int_equal(serial_get_stats(p)->discarded, 6);
    serial_close(p);
}

/* A frame that is not what its header announces is read as the bytes come, as without pacing:
 * shorter (ends early at CR), longer (read to its CR), a LENGTH that fails its LCHKSUM. */
static void test_paced_frame_not_as_announced(void **state)
{
    struct pty *t = *state;
    struct serial_port *p = open_port(t, 2000);
    serial_set_frame_chars(p, s42_frame_chars);
    char buf[256];
    static const char *const frames[] = {
        "~25014600F07A0102FD00\r",                          /* says 122 INFO chars, has 4 */
        "~25014600E00201020304050607080910111213141516FD00\r", /* says 2, has 36 */
        "~25014600E07A0102FD00\r",                          /* LCHKSUM wrong: no pacing */
    };
    for (size_t i = 0; i < sizeof frames / sizeof frames[0]; i++) {
        size_t n = strlen(frames[i]);
        assert_int_equal(read_dribbled(p, t->master, frames[i], n, buf, sizeof buf, 2000),
                         (int)n);
        assert_string_equal(buf, frames[i]);
    }
    serial_close(p);
}

/* A frame cut off before its announced end still ends at the deadline, its bytes discarded. */
static void test_paced_frame_truncated(void **state)
{
    struct pty *t = *state;
    struct serial_port *p = open_port(t, 100);
    serial_set_frame_chars(p, s42_frame_chars);
    char buf[256];
    static const char cut[] = "~25014600F07A01020304";
    assert_int_equal(read_dribbled(p, t->master, cut, strlen(cut), buf, sizeof buf, 100),
                     -ETIMEDOUT);
    assert_int_equal(serial_get_stats(p)->timeouts, 1);
    assert_int_equal(serial_get_stats(p)->discarded, strlen(cut));
    serial_close(p);
}

static void test_wire_ms(void **state)
{
    (void)state;
    assert_float_equal(serial_wire_ms(9600, 216), 225.0, 1e-9);
    assert_float_equal(serial_wire_ms(115200, 0), 0.0, 1e-12);
    assert_float_equal(serial_wire_ms(1200, 12), 100.0, 1e-9);
    assert_float_equal(serial_wire_ms(0, 10), 0.0, 1e-12);
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(serial_strerror(-ETIMEDOUT), "no answer within the timeout");
    assert_string_equal(serial_strerror(-EBUSY),
                        "another process has the port open (exclusive lock held)");
    assert_non_null(strstr(serial_strerror(-ENOENT), "/dev/serial/by-id/"));
    assert_non_null(strstr(serial_strerror(-EIO), "unplugged"));
    assert_non_null(strstr(serial_strerror(-ENODEV), "unplugged"));
    assert_string_equal(serial_strerror(-EMSGSIZE), "frame longer than the buffer");
    assert_non_null(strstr(serial_strerror(-EACCES), "dialout"));
    assert_non_null(strstr(serial_strerror(-EINVAL), "baud"));
    assert_non_null(strstr(serial_strerror(-EOPNOTSUPP), "RS485"));
    assert_string_equal(serial_strerror(-ENOSPC), strerror(ENOSPC));
    assert_non_null(serial_strerror(-99999));
    assert_true(strlen(serial_strerror(-99999)) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opts_default),
        cmocka_unit_test_setup_teardown(test_open_close, pty_setup, pty_teardown),
        cmocka_unit_test_setup_teardown(test_open_all_bauds, pty_setup, pty_teardown),
        cmocka_unit_test_setup_teardown(test_bad_baud, pty_setup, pty_teardown),
        cmocka_unit_test(test_nonexistent),
        cmocka_unit_test(test_not_a_tty),
        cmocka_unit_test_setup_teardown(test_exclusive, pty_setup, pty_teardown),
        cmocka_unit_test_setup_teardown(test_rs485_refused_by_pty, pty_setup, pty_teardown),
        cmocka_unit_test_setup_teardown(test_symlink, pty_setup, pty_teardown),
        cmocka_unit_test_setup_teardown(test_read_exact, pty_setup, pty_teardown),
        cmocka_unit_test_setup_teardown(test_garbage_before_start, pty_setup, pty_teardown),
        cmocka_unit_test_setup_teardown(test_resync_on_second_start, pty_setup, pty_teardown),
        cmocka_unit_test_setup_teardown(test_two_frames_one_write, pty_setup, pty_teardown),
        cmocka_unit_test_setup_teardown(test_frame_split_across_writes, pty_setup, pty_teardown),
        cmocka_unit_test_setup_teardown(test_timeout, pty_setup, pty_teardown),
        cmocka_unit_test_setup_teardown(test_overflow, pty_setup, pty_teardown),
        cmocka_unit_test_setup_teardown(test_overflow_then_good_frame, pty_setup, pty_teardown),
        cmocka_unit_test_setup_teardown(test_bad_args, pty_setup, pty_teardown),
        cmocka_unit_test_setup_teardown(test_flush_input, pty_setup, pty_teardown),
        cmocka_unit_test_setup_teardown(test_write, pty_setup, pty_teardown),
        cmocka_unit_test_setup_teardown(test_write_timeout_when_peer_never_reads, pty_setup,
                                        pty_teardown),
        cmocka_unit_test_setup_teardown(test_transact_end_to_end, pty_setup, pty_teardown),
        cmocka_unit_test_setup_teardown(test_transact_expected_length, pty_setup, pty_teardown),
        cmocka_unit_test_setup_teardown(test_transact_flushes_stale, pty_setup, pty_teardown),
        cmocka_unit_test_setup_teardown(test_transact_timeout, pty_setup, pty_teardown),
        cmocka_unit_test_setup_teardown(test_peer_closed, pty_setup, pty_teardown),
        cmocka_unit_test_setup_teardown(test_peer_closed_mid_frame, pty_setup, pty_teardown),
        cmocka_unit_test_setup_teardown(test_peer_closes_while_waiting, pty_setup, pty_teardown),
        cmocka_unit_test_setup_teardown(test_paced_frame, pty_setup, pty_teardown),
        cmocka_unit_test_setup_teardown(test_paced_frame_not_as_announced, pty_setup,
                                        pty_teardown),
        cmocka_unit_test_setup_teardown(test_paced_frame_truncated, pty_setup, pty_teardown),
        cmocka_unit_test(test_wire_ms),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
