/* mbsim: the Modbus RTU server side of the simulator, on a pty master.
 *
 * libmodbus's server opens a device path itself and cannot serve a pty master descriptor, and
 * it writes its answers at once (no pacing, no faults), so the small server part is ours: frames
 * delimited by 3.5 characters of silence, CRC-16 from mbpack, function 0x03 answered from
 * registers built by mbmap_encode. The pty, its link, the pacing and the noise are sim_pty's.
 * The thread in mbsim_run owns the pty, the packs and the buffers; other threads only read the
 * counters (atomic) and the last samples (mutex). */
#include "mbsim.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mbmap.h"
#include "sim_pty.h"

#define RX_MAX        256 /* an RTU frame is at most 256 bytes */
#define READ_MAX_REGS 125 /* the Modbus limit for function 0x03 */
#define EXC_FUNCTION  0x01
#define EXC_ADDRESS   0x02
#define EXC_VALUE     0x03
#define EXC_FAILURE   0x04
#define EXC_LAST      0x0B
#define NS_PER_MS     1000000LL
#define NS_PER_S      1000000000LL

struct mbsim {
    struct sim_opts o; /* o.link is not kept: pty.link is ours */
    struct sim_pty pty;
    int64_t start_ns, t35_ns;
    uint64_t noise_rng;
    struct sim_pack packs[SIM_MAX_PACKS];
    uint64_t answers[SIM_MAX_PACKS]; /* per pack, for sim_fault.every */
    uint8_t rx[RX_MAX];
    size_t rxlen;
    int64_t rx_last_ns; /* when the last byte of the frame being received came */
    uint8_t tx[SIM_PTY_NOISE_MAX + RX_MAX]; /* garbage noise, then the frame */
    _Atomic uint64_t requests, invalid;
    pthread_mutex_t lock; /* guards last and have_last */
    struct sample last[SIM_MAX_PACKS];
    bool have_last[SIM_MAX_PACKS];
};

static int check_opts(const struct sim_opts *o)
{
    if (o->naddresses < 1 || o->naddresses > SIM_MAX_PACKS || o->ncells < 1 ||
        o->ncells > MBMAP_MAX_CELLS || o->baud < 50 || o->turnaround_ms < 0 ||
        !isfinite(o->time_scale) || o->time_scale < 0 ||
        o->nfaults > sizeof o->faults / sizeof o->faults[0])
        return -EINVAL;
    if (o->ncollide > 0 || o->chatter_ms > 0)
        return -EOPNOTSUPP;
    for (size_t i = 0; i < o->naddresses; i++) {
        if (o->addresses[i] < 1 || o->addresses[i] > MBMAP_MAX_SLAVE)
            return -EINVAL;
        for (size_t j = 0; j < i; j++)
            if (o->addresses[j] == o->addresses[i])
                return -EINVAL;
    }
    for (size_t i = 0; i < o->nfaults; i++) {
        const struct sim_fault *f = &o->faults[i];
        if (f->kind <= SIM_FAULT_NONE || f->kind > SIM_FAULT_RTN || f->every < 1 ||
            f->slow_ms < 0 || f->cid2 != 0) /* no Service 42 commands here */
            return -EINVAL;
    }
    return 0;
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
    s->o = *o;
    s->o.link = NULL;
    atomic_init(&s->requests, 0);
    atomic_init(&s->invalid, 0);
    if ((rc = sim_pty_open(&s->pty, o->baud, o->link)) != 0)
        goto fail;
    for (size_t i = 0; i < o->naddresses; i++)
        sim_pack_init(&s->packs[i], o->seed, o->addresses[i], o->ncells);
    /* the silence that ends a frame: 3.5 characters, fixed 1.75 ms above 19200 baud */
    s->t35_ns = o->baud > 19200 ? 1750000 : 35 * NS_PER_S / o->baud;
    s->noise_rng = (o->seed ^ 0x9E3779B97F4A7C15ull) | 1u;
    s->start_ns = sim_pty_now_ns();
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
    sim_pty_close(&s->pty);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

const char *mbsim_slave_path(const struct mbsim *s)
{
    return s->pty.slave_path;
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
    return sim_opts_index(&s->o, slave);
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

/* The first matching non-SLOW fault for this answer, and the sum of matching SLOW delays. */
static size_t put_crc(uint8_t *frame, size_t n)
{
    uint16_t crc = mbmap_crc16(frame, n);
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
    if (fn != MBMAP_FC_READ)
        return exception(out, slave, fn, EXC_FUNCTION);
    unsigned start = (unsigned)req[2] << 8 | req[3], count = (unsigned)req[4] << 8 | req[5];
    if (len != 8 || count < 1 || count > READ_MAX_REGS)
        return exception(out, slave, fn, EXC_VALUE);
    if (start + count > MBMAP_NREGS)
        return exception(out, slave, fn, EXC_ADDRESS);
    struct sample smp;
    uint16_t regs[MBMAP_NREGS];
    sim_pack_sample(&s->packs[idx], &smp);
    if (mbmap_encode(&smp, regs) != 0)
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

/* One frame (ended by silence at s->rx_last_ns): answer it if it is for one of our packs. */
static int handle_frame(struct mbsim *s, const uint8_t *rx, size_t len, const volatile int *stop)
{
    if (len < 4 || mbmap_crc16(rx, len - 2) != (rx[len - 2] | rx[len - 1] << 8)) {
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
    uint64_t nth = ++s->answers[idx];
    const struct sim_fault *fault = sim_fault_pick(&s->o, rx[0], 0, nth, nth, &slow_ms);
    enum sim_fault_kind kind = fault != NULL ? fault->kind : SIM_FAULT_NONE;
    if (kind == SIM_FAULT_SILENT)
        return 0;
    size_t noise = kind == SIM_FAULT_GARBAGE ? sim_pty_noise(&s->noise_rng, s->tx, NULL) : 0;
    size_t n = answer(s, idx, rx, len, fault, s->tx + noise);
    if (kind == SIM_FAULT_CHECKSUM) {
        uint16_t crc = (uint16_t)((s->tx[noise + n - 2] | s->tx[noise + n - 1] << 8) + 1);
        s->tx[noise + n - 2] = (uint8_t)(crc & 0xFF);
        s->tx[noise + n - 1] = (uint8_t)(crc >> 8);
    } else if (kind == SIM_FAULT_TRUNCATED) {
        n /= 2;
    }
    return sim_pty_answer(&s->pty, s->rx_last_ns, len, s->o.turnaround_ms + slow_ms, s->tx,
                          noise + n, stop);
}

int mbsim_run(struct mbsim *s, const volatile int *stop)
{
    while (!*stop) {
        int64_t now = sim_pty_now_ns();
        int wait_ms = SIM_PTY_POLL_MS;
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
        uint8_t buf[RX_MAX];
        ssize_t got = sim_pty_read(&s->pty, buf, sizeof buf, wait_ms, stop);
        if (got < 0)
            return (int)got;
        if (got == 0)
            continue;
        if (s->rxlen + (size_t)got > sizeof s->rx) { /* longer than any frame: noise */
            atomic_fetch_add(&s->invalid, 1);
            s->rxlen = 0;
        }
        memcpy(s->rx + s->rxlen, buf, (size_t)got);
        s->rxlen += (size_t)got;
        s->rx_last_ns = sim_pty_now_ns();
    }
    return 0;
}
