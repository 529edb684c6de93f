/* sim_pty: the pseudo-terminal, clock and pacing that the Service 42 (sim) and Modbus (mbsim)
 * simulators share. It knows bytes and time on a wire, nothing of either protocol; it keeps no
 * state beyond the struct sim_pty and the caller's RNG, so each simulator's thread owns its own. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* posix_openpt, ptsname_r, cfmakeraw */
#endif
#include "sim_pty.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define TX_CHUNK       8    /* bytes written per paced write */
#define WRITE_STALL_MS 1000 /* nobody reads the slave: drop the rest of the answer */
#define NS_PER_MS      1000000LL
#define NS_PER_S       1000000000LL

/* The termios speed for a baud rate, B0 when there is none (pacing still uses the number). */
static speed_t baud_speed(int baud)
{
    static const struct {
        int baud;
        speed_t speed;
    } speeds[] = {{1200, B1200},   {2400, B2400},     {4800, B4800},
                  {9600, B9600},   {19200, B19200},   {38400, B38400},
                  {57600, B57600}, {115200, B115200}, {230400, B230400}};
    for (size_t i = 0; i < sizeof speeds / sizeof speeds[0]; i++)
        if (speeds[i].baud == baud)
            return speeds[i].speed;
    return B0;
}

static int open_raw(struct sim_pty *p)
{
    struct termios tio;
    p->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (p->master < 0)
        return -errno;
    if (grantpt(p->master) != 0 || unlockpt(p->master) != 0)
        return -errno;
    int rc = ptsname_r(p->master, p->slave_path, sizeof p->slave_path);
    if (rc != 0)
        return -rc;
    p->slave = open(p->slave_path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (p->slave < 0 || tcgetattr(p->slave, &tio) != 0)
        return -errno;
    cfmakeraw(&tio);
    tio.c_cflag |= CLOCAL | CREAD;
    speed_t sp = baud_speed(p->baud);
    if (sp != B0 && (cfsetispeed(&tio, sp) != 0 || cfsetospeed(&tio, sp) != 0))
        return -errno;
    if (tcsetattr(p->slave, TCSANOW, &tio) != 0)
        return -errno;
    int fl = fcntl(p->master, F_GETFL);
    if (fl < 0 || fcntl(p->master, F_SETFL, fl | O_NONBLOCK) != 0)
        return -errno;
    return 0;
}

/* Points link at target, replacing an existing symlink but never a file or directory. */
static int make_link(const char *link, const char *target)
{
    struct stat st;
    if (lstat(link, &st) == 0) {
        if (!S_ISLNK(st.st_mode))
            return -EEXIST;
        if (unlink(link) != 0)
            return -errno;
    } else if (errno != ENOENT) {
        return -errno;
    }
    if (symlink(target, link) != 0)
        return -errno;
    return 0;
}

int sim_pty_open(struct sim_pty *p, int baud, const char *link)
{
    *p = (struct sim_pty){.master = -1, .slave = -1, .baud = baud};
    int rc = open_raw(p);
    if (rc == 0 && link != NULL) {
        char *copy = strdup(link);
        if (copy == NULL)
            rc = -ENOMEM;
        else if ((rc = make_link(copy, p->slave_path)) != 0)
            free(copy);
        else
            p->link = copy;
    }
    if (rc != 0)
        sim_pty_close(p);
    return rc;
}

void sim_pty_close(struct sim_pty *p)
{
    if (p == NULL)
        return;
    if (p->link != NULL) {
        char target[sizeof p->slave_path];
        ssize_t n = readlink(p->link, target, sizeof target - 1);
        if (n >= 0) {
            target[n] = '\0';
            if (strcmp(target, p->slave_path) == 0)
                unlink(p->link);
        }
        free(p->link);
        p->link = NULL;
    }
    if (p->slave >= 0)
        close(p->slave);
    if (p->master >= 0)
        close(p->master);
    p->master = p->slave = -1;
}

int64_t sim_pty_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

bool sim_pty_sleep_until(int64_t deadline_ns, const volatile int *stop)
{
    const int64_t step = SIM_PTY_POLL_MS * NS_PER_MS;
    for (;;) {
        if (*stop)
            return true;
        int64_t now = sim_pty_now_ns();
        if (now >= deadline_ns)
            return false;
        int64_t wake = now + step < deadline_ns ? now + step : deadline_ns;
        struct timespec ts = {.tv_sec = (time_t)(wake / NS_PER_S),
                              .tv_nsec = (long)(wake % NS_PER_S)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
}

int64_t sim_pty_wire_ns(const struct sim_pty *p, size_t n)
{
    if (p->unpaced)
        return 0;
    return (int64_t)n * 10 * NS_PER_S / p->baud;
}

ssize_t sim_pty_read(struct sim_pty *p, void *buf, size_t cap, int wait_ms,
                     const volatile int *stop)
{
    struct pollfd pfd = {.fd = p->master, .events = POLLIN};
    int r = poll(&pfd, 1, wait_ms);
    if (r < 0)
        return errno == EINTR ? 0 : -errno;
    if (r == 0)
        return 0;
    ssize_t got = read(p->master, buf, cap);
    if (got >= 0)
        return got;
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
        return 0;
    if (errno != EIO)
        return -errno;
    /* HUP/EIO: should not happen while we hold the slave; do not spin */
    sim_pty_sleep_until(sim_pty_now_ns() + SIM_PTY_POLL_MS * NS_PER_MS, stop);
    return 0;
}

/* Chunks go out against absolute deadlines from the start, each when its last byte would have
 * left the UART, so that sleep overshoot does not add up. */
int sim_pty_write_paced(struct sim_pty *p, const void *buf, size_t n, const volatile int *stop)
{
    const char *bytes = buf;
    int64_t t0 = sim_pty_now_ns();
    size_t sent = 0;
    int stalled_ms = 0;
    while (sent < n) {
        size_t chunk = n - sent < TX_CHUNK || p->unpaced ? n - sent : TX_CHUNK;
        if (sim_pty_sleep_until(t0 + sim_pty_wire_ns(p, sent + chunk), stop))
            return 0;
        ssize_t w = write(p->master, bytes + sent, chunk);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return -errno;
            struct pollfd pfd = {.fd = p->master, .events = POLLOUT};
            int r = poll(&pfd, 1, SIM_PTY_POLL_MS);
            if (r < 0 && errno != EINTR)
                return -errno;
            if (r == 0 && (stalled_ms += SIM_PTY_POLL_MS) >= WRITE_STALL_MS)
                return 0; /* the client does not read: the rest of the answer is lost */
            continue;
        }
        stalled_ms = 0;
        sent += (size_t)w;
    }
    return 0;
}

int sim_pty_answer(struct sim_pty *p, int64_t received_ns, size_t request_len, int delay_ms,
                   const void *buf, size_t n, const volatile int *stop)
{
    /* A pty delivers the request at once; on a real bus its last byte arrives one wire time
     * after the first, so the answer starts that much later (keeps poll timing realistic). */
    int64_t start = received_ns + sim_pty_wire_ns(p, request_len) + (int64_t)delay_ms * NS_PER_MS;
    if (sim_pty_sleep_until(start, stop))
        return 0;
    return sim_pty_write_paced(p, buf, n, stop);
}

uint64_t sim_pty_rand(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

size_t sim_pty_noise(uint64_t *rng, void *buf, const char *avoid)
{
    unsigned char *out = buf;
    size_t n = 4 + (size_t)(*rng % (SIM_PTY_NOISE_MAX - 3));
    for (size_t i = 0; i < n; i++) {
        unsigned char c;
        do {
            c = (unsigned char)(sim_pty_rand(rng) & 0xFF);
        } while (avoid != NULL && c != '\0' && strchr(avoid, c) != NULL);
        out[i] = c;
    }
    return n;
}
