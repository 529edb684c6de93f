/* mbsim: the Modbus RTU server side of the simulator, on a pty master.
 *
 * libmodbus's server opens a device path itself and cannot serve a pty master descriptor, and
 * it writes its answers at once (no pacing, no faults), so the small server part is ours: frames
 * delimited by 3.5 characters of silence, CRC-16 from mbpack, function 0x03 answered from
 * registers built by mbpack_encode. The thread in mbsim_run owns the pty, the packs and the
 * buffers; other threads only read the counters (atomic) and the last samples (mutex). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "mbsim.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "mbpack.h"

#define RX_MAX         256 /* an RTU frame is at most 256 bytes */
#define TX_CHUNK       8   /* bytes per paced write */
#define POLL_MS        100 /* the longest we go without looking at *stop */
#define WRITE_STALL_MS 1000
#define NOISE_MAX      12
#define READ_MAX_REGS  125 /* the Modbus limit for function 0x03 */
#define EXC_FUNCTION   0x01
#define EXC_ADDRESS    0x02
#define EXC_VALUE      0x03
#define EXC_FAILURE    0x04
#define EXC_LAST       0x0B
#define NS_PER_MS      1000000LL
#define NS_PER_S       1000000000LL

struct mbsim {
    struct sim_opts o; /* o.link is not kept: see link */
    char *link;
    int master, slave;
    char slave_path[128];
    int64_t start_ns, t35_ns;
    uint64_t noise_rng;
    struct sim_pack packs[SIM_MAX_PACKS];
    uint64_t answers[SIM_MAX_PACKS]; /* per pack, for sim_fault.every */
    uint8_t rx[RX_MAX];
    size_t rxlen;
    int64_t rx_last_ns; /* when the last byte of the frame being received came */
    uint8_t tx[NOISE_MAX + RX_MAX];
    _Atomic uint64_t requests, invalid;
    pthread_mutex_t lock; /* guards last and have_last */
    struct sample last[SIM_MAX_PACKS];
    bool have_last[SIM_MAX_PACKS];
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static int check_opts(const struct sim_opts *o)
{
    if (o->naddresses < 1 || o->naddresses > SIM_MAX_PACKS || o->ncells < 1 ||
        o->ncells > MBPACK_MAX_CELLS || o->baud < 50 || o->turnaround_ms < 0 ||
        !isfinite(o->time_scale) || o->time_scale < 0 ||
        o->nfaults > sizeof o->faults / sizeof o->faults[0])
        return -EINVAL;
    if (o->ncollide > 0 || o->chatter_ms > 0)
        return -EOPNOTSUPP;
    for (size_t i = 0; i < o->naddresses; i++) {
        if (o->addresses[i] < 1 || o->addresses[i] > MBPACK_MAX_SLAVE)
            return -EINVAL;
        for (size_t j = 0; j < i; j++)
            if (o->addresses[j] == o->addresses[i])
                return -EINVAL;
    }
    for (size_t i = 0; i < o->nfaults; i++) {
        const struct sim_fault *f = &o->faults[i];
        if (f->kind <= SIM_FAULT_NONE || f->kind > SIM_FAULT_RTN || f->every < 1 || f->slow_ms < 0)
            return -EINVAL;
    }
    return 0;
}

static int open_pty(struct mbsim *s)
{
    struct termios tio;
    memset(&tio, 0, sizeof tio);
    cfmakeraw(&tio);
    tio.c_cflag |= CLOCAL | CREAD;
    if (openpty(&s->master, &s->slave, NULL, &tio, NULL) != 0)
        return -errno;
    int rc = ttyname_r(s->slave, s->slave_path, sizeof s->slave_path);
    if (rc != 0)
        return -rc;
    if (fcntl(s->master, F_SETFD, FD_CLOEXEC) != 0 || fcntl(s->slave, F_SETFD, FD_CLOEXEC) != 0)
        return -errno;
    int fl = fcntl(s->master, F_GETFL);
    if (fl < 0 || fcntl(s->master, F_SETFL, fl | O_NONBLOCK) != 0)
        return -errno;
    return 0;
}

/* Points link at target, replacing a symlink but never a file or a directory. */
static int make_link(const char *link, const char *target)
{
    struct stat st;
    if (lstat(link, &st) == 0 && !S_ISLNK(st.st_mode))
        return -EEXIST;
    if (unlink(link) != 0 && errno != ENOENT)
        return -errno;
    return symlink(target, link) != 0 ? -errno : 0;
}

int mbsim_new(const struct sim_opts *o, struct mbsim **out)
{
    if (o == NULL || out == NULL)
        return -EINVAL;
    int rc = check_opts(o);
    if (rc != 0)
        return rc;
    struct mbsim *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    s->master = s->slave = -1;
    s->o = *o;
    s->o.link = NULL;
    atomic_init(&s->requests, 0);
    atomic_init(&s->invalid, 0);
    if ((rc = open_pty(s)) != 0)
        goto fail;
    if (o->link != NULL) {
        if ((s->link = strdup(o->link)) == NULL) {
            rc = -ENOMEM;
            goto fail;
        }
        if ((rc = make_link(s->link, s->slave_path)) != 0) {
            free(s->link);
            s->link = NULL;
            goto fail;
        }
    }
    for (size_t i = 0; i < o->naddresses; i++)
        sim_pack_init(&s->packs[i], o->seed, o->addresses[i], o->ncells);
    /* the silence that ends a frame: 3.5 characters, fixed 1.75 ms above 19200 baud */
    s->t35_ns = o->baud > 19200 ? 1750000 : 35 * NS_PER_S / o->baud;
    s->noise_rng = (o->seed ^ 0x9E3779B97F4A7C15ull) | 1u;
    s->start_ns = now_ns();
    *out = s;
    return 0;
fail:
    mbsim_free(s);
    return rc;
}

void mbsim_free(struct mbsim *s)
{
    if (s == NULL)
        return;
    if (s->link != NULL) {
        char target[sizeof s->slave_path];
        ssize_t n = readlink(s->link, target, sizeof target - 1);
        if (n >= 0) {
            target[n] = '\0';
            if (strcmp(target, s->slave_path) == 0)
                unlink(s->link);
        }
        free(s->link);
    }
    if (s->slave >= 0)
        close(s->slave);
    if (s->master >= 0)
        close(s->master);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

const char *mbsim_slave_path(const struct mbsim *s)
{
    return s->slave_path;
}

uint64_t mbsim_requests(const struct mbsim *s)
{
    return atomic_load(&s->requests);
}

uint64_t mbsim_invalid(const struct mbsim *s)
{
    return atomic_load(&s->invalid);
}

static int pack_index(const struct mbsim *s, uint8_t slave)
{
    for (size_t i = 0; i < s->o.naddresses; i++)
        if (s->o.addresses[i] == slave)
            return (int)i;
    return -1;
}

int mbsim_last_sample(const struct mbsim *s, uint8_t slave, struct sample *out)
{
    int i = pack_index(s, slave);
    if (i < 0)
        return -ENOENT;
    int rc = -ENODATA;
    pthread_mutex_lock((pthread_mutex_t *)&s->lock); /* the lock is not part of the value */
    if (s->have_last[i]) {
        *out = s->last[i];
        rc = 0;
    }
    pthread_mutex_unlock((pthread_mutex_t *)&s->lock);
    return rc;
}

/* ---- serving ---- */

/* Sleeps until the monotonic deadline; true when *stop was raised meanwhile. */
static bool sleep_until(int64_t deadline, const volatile int *stop)
{
    for (int64_t now; !*stop;) {
        if ((now = now_ns()) >= deadline)
            return false;
        int64_t wake = deadline - now > POLL_MS * NS_PER_MS ? now + POLL_MS * NS_PER_MS : deadline;
        struct timespec ts = {.tv_sec = (time_t)(wake / NS_PER_S),
                              .tv_nsec = (long)(wake % NS_PER_S)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
    return true;
}

/* Writes n bytes in chunks, each when its last byte would have left an 8N1 UART, against
 * deadlines from the start so that sleep overshoot does not add up. */
static int write_paced(struct mbsim *s, const uint8_t *buf, size_t n, const volatile int *stop)
{
    int64_t t0 = now_ns();
    int stalled_ms = 0;
    for (size_t sent = 0; sent < n;) {
        size_t chunk = n - sent < TX_CHUNK ? n - sent : TX_CHUNK;
        if (sleep_until(t0 + (int64_t)(sent + chunk) * 10 * NS_PER_S / s->o.baud, stop))
            return 0;
        ssize_t w = write(s->master, buf + sent, chunk);
        if (w >= 0) {
            sent += (size_t)w;
            stalled_ms = 0;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        struct pollfd pfd = {.fd = s->master, .events = POLLOUT};
        if (poll(&pfd, 1, POLL_MS) == 0 && (stalled_ms += POLL_MS) >= WRITE_STALL_MS)
            return 0; /* nobody reads the slave: the rest of the answer is lost */
    }
    return 0;
}

/* The first matching non-SLOW fault for this answer, and the sum of matching SLOW delays. */
static const struct sim_fault *pick_fault(const struct mbsim *s, uint8_t slave, uint64_t nth,
                                          int *slow_ms)
{
    const struct sim_fault *chosen = NULL;
    *slow_ms = 0;
    for (size_t i = 0; i < s->o.nfaults; i++) {
        const struct sim_fault *f = &s->o.faults[i];
        if ((f->address != 0 && f->address != slave) || nth % (uint64_t)f->every != 0)
            continue;
        if (f->kind == SIM_FAULT_SLOW)
            *slow_ms += f->slow_ms;
        else if (chosen == NULL)
            chosen = f;
    }
    return chosen;
}

static size_t put_crc(uint8_t *frame, size_t n)
{
    uint16_t crc = mbpack_crc16(frame, n);
    frame[n] = (uint8_t)(crc & 0xFF);
    frame[n + 1] = (uint8_t)(crc >> 8);
    return n + 2;
}

static size_t exception(uint8_t *out, uint8_t slave, uint8_t function, uint8_t code)
{
    out[0] = slave;
    out[1] = (uint8_t)(function | 0x80);
    out[2] = code;
    return put_crc(out, 3);
}

/* The answer of pack idx to the request req (CRC checked) into out; 0 = no answer. */
static size_t answer(struct mbsim *s, int idx, const uint8_t *req, size_t len,
                     const struct sim_fault *fault, uint8_t *out)
{
    uint8_t slave = req[0], fn = req[1];
    if (fault != NULL && fault->kind == SIM_FAULT_RTN)
        return exception(out, slave, fn,
                         fault->rtn >= 1 && fault->rtn <= EXC_LAST ? fault->rtn : EXC_FAILURE);
    if (fn != MBPACK_FC_READ)
        return exception(out, slave, fn, EXC_FUNCTION);
    unsigned start = (unsigned)req[2] << 8 | req[3], count = (unsigned)req[4] << 8 | req[5];
    if (len != 8 || count < 1 || count > READ_MAX_REGS)
        return exception(out, slave, fn, EXC_VALUE);
    if (start + count > MBPACK_NREGS)
        return exception(out, slave, fn, EXC_ADDRESS);
    struct sample smp;
    uint16_t regs[MBPACK_NREGS];
    sim_pack_sample(&s->packs[idx], &smp);
    if (mbpack_encode(&smp, regs) != 0)
        return exception(out, slave, fn, EXC_FAILURE);
    pthread_mutex_lock(&s->lock);
    s->last[idx] = smp;
    s->have_last[idx] = true;
    pthread_mutex_unlock(&s->lock);
    out[0] = slave;
    out[1] = fn;
    out[2] = (uint8_t)(2 * count);
    for (unsigned i = 0; i < count; i++) {
        out[3 + 2 * i] = (uint8_t)(regs[start + i] >> 8);
        out[4 + 2 * i] = (uint8_t)(regs[start + i] & 0xFF);
    }
    return put_crc(out, 3 + 2 * count);
}

static size_t add_noise(struct mbsim *s, uint8_t *buf)
{
    size_t n = 4 + (size_t)(s->noise_rng % (NOISE_MAX - 3));
    for (size_t i = 0; i < n; i++) {
        s->noise_rng ^= s->noise_rng << 13;
        s->noise_rng ^= s->noise_rng >> 7;
        s->noise_rng ^= s->noise_rng << 17;
        buf[i] = (uint8_t)(s->noise_rng & 0xFF);
    }
    return n;
}

/* One frame (ended by silence at s->rx_last_ns): answer it if it is for one of our packs. */
static int handle_frame(struct mbsim *s, const uint8_t *rx, size_t len, const volatile int *stop)
{
    if (len < 4 || mbpack_crc16(rx, len - 2) != (rx[len - 2] | rx[len - 1] << 8)) {
        atomic_fetch_add(&s->invalid, 1);
        return 0; /* noise, or a request damaged on the wire: a real slave stays silent */
    }
    atomic_fetch_add(&s->requests, 1);
    int idx = pack_index(s, rx[0]); /* broadcast (0) and other slaves: not ours to answer */
    if (idx < 0)
        return 0;
    if (s->o.time_scale > 0)
        sim_pack_step(&s->packs[idx],
                      (double)(s->rx_last_ns - s->start_ns) / (double)NS_PER_S * s->o.time_scale);
    int slow_ms;
    const struct sim_fault *fault = pick_fault(s, rx[0], ++s->answers[idx], &slow_ms);
    enum sim_fault_kind kind = fault != NULL ? fault->kind : SIM_FAULT_NONE;
    if (kind == SIM_FAULT_SILENT)
        return 0;
    size_t noise = kind == SIM_FAULT_GARBAGE ? add_noise(s, s->tx) : 0;
    size_t n = answer(s, idx, rx, len, fault, s->tx + noise);
    if (kind == SIM_FAULT_CHECKSUM) {
        uint16_t crc = (uint16_t)((s->tx[noise + n - 2] | s->tx[noise + n - 1] << 8) + 1);
        s->tx[noise + n - 2] = (uint8_t)(crc & 0xFF);
        s->tx[noise + n - 1] = (uint8_t)(crc >> 8);
    } else if (kind == SIM_FAULT_TRUNCATED) {
        n /= 2;
    }
    /* a pty delivers the request at once; on a wire its last byte comes one frame time after
     * the first, so the answer starts that much later (keeps poll timing realistic) */
    int64_t wire = (int64_t)len * 10 * NS_PER_S / s->o.baud;
    if (sleep_until(s->rx_last_ns + wire + (int64_t)(s->o.turnaround_ms + slow_ms) * NS_PER_MS,
                    stop))
        return 0;
    return write_paced(s, s->tx, noise + n, stop);
}

int mbsim_run(struct mbsim *s, const volatile int *stop)
{
    while (!*stop) {
        int64_t now = now_ns();
        int wait_ms = POLL_MS;
        if (s->rxlen > 0) {
            int64_t left = s->rx_last_ns + s->t35_ns - now;
            if (left <= 0) { /* silence: the frame is complete */
                int rc = handle_frame(s, s->rx, s->rxlen, stop);
                s->rxlen = 0;
                if (rc != 0)
                    return rc;
                continue;
            }
            wait_ms = (int)((left + NS_PER_MS - 1) / NS_PER_MS);
        }
        struct pollfd pfd = {.fd = s->master, .events = POLLIN};
        int r = poll(&pfd, 1, wait_ms);
        if (r < 0 && errno != EINTR)
            return -errno;
        if (r <= 0)
            continue;
        uint8_t buf[RX_MAX];
        ssize_t got = read(s->master, buf, sizeof buf);
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            if (errno != EIO)
                return -errno;
            sleep_until(now_ns() + POLL_MS * NS_PER_MS, stop); /* no HUP while we hold the slave */
            continue;
        }
        if (s->rxlen + (size_t)got > sizeof s->rx) { /* longer than any frame: noise */
            atomic_fetch_add(&s->invalid, 1);
            s->rxlen = 0;
        }
        memcpy(s->rx + s->rxlen, buf, (size_t)got);
        s->rxlen += (size_t)got;
        s->rx_last_ns = now_ns();
    }
    return 0;
}
