/* poller: the per-port polling thread.
 *
 * Scheduling: every pack has a due time (monotonic). The thread polls the earliest due pack,
 * then waits on the shutdown descriptor until the next one is due. A pack that fails is
 * retried after interval × poller_backoff_factor(failures); a port error closes the port and
 * reopens it with its own backoff (1 s doubling to 60 s). Health is online after a good
 * sample, stale after a failure, offline when no good sample came for 3 intervals; the
 * transitions to and from offline are logged once each, not per poll.
 *
 * A port on a serial server (tcp://, modbus-tcp://) is reconnected like an unplugged adapter
 * is reopened when the connection fails, and also when the server accepted the connection but
 * no pack answered through it for OFFLINE_INTERVALS intervals and SILENT_POLLS_PER_PACK polls
 * of each pack: some servers keep a stale session (their serial side hung, or the one client
 * slot is held by a connection that died) that only a new connection clears. */
#include "now.h"
#include "poller.h"
#include "poller_internal.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus.h"
#include "driver.h"
#include "log.h"
#include "progress.h"
#include "thread_name.h"
#include "serial.h"

#define SILENT_POLLS_PER_PACK 3
#define REOPEN_MAX_MS 60000
/* The most exchanges one loop turn makes: 0x42, 0x44 and the identity commands of a pack. */
#define TURN_EXCHANGES 12
/* The longest frame on the wire, in bytes, for the time it takes at the port's baud rate. */
#define TURN_FRAME_BYTES 600
/* Slack on top: the one-second wait slices, scheduling, a slow USB adapter. */
#define TURN_MARGIN_MS 5000

unsigned poller_backoff_factor(uint32_t failures)
{
    /* Two failures in a row can be noise: keep the interval. Then double up to 8×. */
    if (failures <= 2)
        return 1;
    uint32_t k = failures - 2;
    return k >= 3 ? 8u : 1u << k;
}

/* Waits until the monotonic time `until` or until shutdown; returns 1 on shutdown. Waiting
 * is progress: each slice of at most a second counts as a turn. */
int poller_wait_until(struct poller *p, int64_t until)
{
    for (;;) {
        int64_t now = now_mono_ms();
        progress_beat(&p->progress, now);
        int64_t left = until - now;
        if (left <= 0)
            return 0;
        struct pollfd pfd = {.fd = p->cancel_fd, .events = POLLIN};
        int k = poll(&pfd, 1, left > 1000 ? 1000 : (int)left);
        if (k > 0)
            return 1;
    }
}

int poller_stopping(const struct poller *p)
{
    struct pollfd pfd = {.fd = p->cancel_fd, .events = POLLIN};
    return poll(&pfd, 1, 0) > 0;
}

static void push(struct poller *p, struct reading *r)
{
    const struct pack_stats *st = &p->packs[r->pack_idx].st;
    r->polls = st->polls;
    r->timeouts = st->timeouts;
    r->checksum_errors = st->checksum_errors;
    r->malformed = st->malformed;
    r->seq = atomic_fetch_add(p->seq, 1) + 1;
    for (size_t i = 0; i < p->sinks.n; i++) {
        if (queue_push(p->sinks.q[i], r) == -ENOBUFS && (queue_dropped(p->sinks.q[i]) & 1023) == 1)
            log_warn("port %s: a consumer is not keeping up; readings dropped (%llu so far)",
                     p->port->name, (unsigned long long)queue_dropped(p->sinks.q[i]));
    }
}

static void set_health(struct poller *p, size_t i, enum pack_health h, const char *why)
{
    struct pack_state *ps = &p->packs[i];
    enum pack_health old = ps->st.health;
    if (old == h)
        return;
    pthread_mutex_lock(&p->lock);
    ps->st.health = h;
    pthread_mutex_unlock(&p->lock);
    if (h == PACK_OFFLINE)
        log_warn("pack %s (address %u on %s): communication lost: %s", ps->cfg->id,
                 ps->cfg->address, p->port->name, why);
    else if (h == PACK_ONLINE && old == PACK_OFFLINE)
        log_info("pack %s (address %u on %s): communication restored", ps->cfg->id,
                 ps->cfg->address, p->port->name);
    else if (h == PACK_ONLINE && old == PACK_UNKNOWN)
        log_info("pack %s (address %u on %s): online", ps->cfg->id, ps->cfg->address,
                 p->port->name);
    struct reading r;
    memset(&r, 0, sizeof r);
    r.kind = READING_HEALTH;
    r.ts_ms = now_wall_ms();
    r.port_idx = (uint16_t)p->port_idx;
    r.pack_idx = (uint16_t)i;
    snprintf(r.pack_id, sizeof r.pack_id, "%s", ps->cfg->id);
    r.health = h;
    snprintf(r.detail, sizeof r.detail, "%s", why ? why : "");
    push(p, &r);
}

/* Offline when no good sample for OFFLINE_INTERVALS intervals (or never, after as many tries). */
void poller_age_health(struct poller *p, size_t i, const char *why)
{
    struct pack_state *ps = &p->packs[i];
    int64_t limit = (int64_t)p->port->interval_s * 1000 * OFFLINE_INTERVALS;
    /* a pack never heard from counts from the start of polling */
    int64_t since = ps->last_ok_mono ? ps->last_ok_mono : p->started_mono;
    int old_enough = now_mono_ms() - since >= limit;
    if (old_enough)
        set_health(p, i, PACK_OFFLINE, why);
    else if (ps->st.health == PACK_ONLINE)
        set_health(p, i, PACK_STALE, why);
}

/* Once per pack and port session: ask who the pack is, pass it on, and compare the serial
 * with the one the configuration expects. A pack that does not answer identity commands is
 * asked again after its next good poll, at most a few times. */
static void identify(struct poller *p, size_t i)
{
    struct pack_state *ps = &p->packs[i];
    if (ps->identified || ps->identify_tries >= 3 || !bus_can_identify(p->bus) ||
        (ps->cfg->poll == CONFIG_POLL_VIA_MASTER && ps->cfg->address != p->port->master))
        return; /* identity commands name no target: they cannot be relayed */
    ps->identify_tries++;
    struct reading r;
    struct driver_error e;
    memset(&r, 0, sizeof r);
    if (bus_identify(p->bus, ps->cfg->address, &r.id, &e))
        return;
    ps->identified = 1;
    r.kind = READING_IDENTITY;
    r.ts_ms = now_wall_ms();
    r.port_idx = (uint16_t)p->port_idx;
    r.pack_idx = (uint16_t)i;
    snprintf(r.pack_id, sizeof r.pack_id, "%s", ps->cfg->id);
    push(p, &r);
    if (r.id.serial[0])
        log_info("pack %s (address %u on %s): serial %s%s%s", ps->cfg->id, ps->cfg->address,
                 p->port->name, r.id.serial, r.id.software[0] ? ", firmware " : "",
                 r.id.software);
    if (ps->cfg->serial[0] && strcmp(r.id.serial, ps->cfg->serial) != 0)
        log_warn("pack %s (address %u on %s): serial number is %s, the configuration expects %s: "
                 "is the right pack at this address?",
                 ps->cfg->id, ps->cfg->address, p->port->name,
                 r.id.serial[0] ? r.id.serial : "(not reported)", ps->cfg->serial);
}

static void count_error(struct pack_stats *st, const struct driver_error *e)
{
    switch (e->status) {
    case DRIVER_TIMEOUT: st->timeouts++; break;
    case DRIVER_CHECKSUM: st->checksum_errors++; break;
    case DRIVER_MALFORMED: st->malformed++; break;
    case DRIVER_REFUSED: st->refused++; break;
    case DRIVER_FOREIGN: st->foreign++; break;
    case DRIVER_PORT: st->port_errors++; break;
    default: break;
    }
}

/* The next open in reopen_backoff_ms, which doubles up to REOPEN_MAX_MS. It is back to 1 s
 * only after a good poll: a port that opens and fails at once (a serial server that takes the
 * connection and drops it) backs off as one that does not open. */
static void backoff(struct poller *p)
{
    p->reopen_ms = now_mono_ms() + p->reopen_backoff_ms;
    p->reopen_backoff_ms =
        p->reopen_backoff_ms * 2 > REOPEN_MAX_MS ? REOPEN_MAX_MS : p->reopen_backoff_ms * 2;
}

void poller_close_port(struct poller *p, const char *why)
{
    bus_close(p->bus);
    p->bus = NULL;
    listener_close(p->lis);
    p->lis = NULL;
    atomic_store(&p->port_up, 0);
    backoff(p);
    log_warn("port %s (%s): %s; reopening", p->port->name, p->port->device, why);
    p->port_down_logged = 1;
}

void poller_serial_opts(const struct poller *p, struct serial_opts *so)
{
    serial_opts_default(so);
    so->baud = p->port->baud;
    so->timeout_ms = p->port->timeout_ms;
    so->gap_ms = p->port->gap_ms;
    so->rs485 = p->port->rs485;
    so->rs485_delay_before_us = p->port->rs485_delay_before_us;
    so->rs485_delay_after_us = p->port->rs485_delay_after_us;
    so->connect_timeout_ms = p->port->connect_timeout_ms;
    so->cancel_fd = p->cancel_fd; /* a connect to a serial server ends at once on a stop */
}

void poller_opened(struct poller *p, int err, const char *msg, const char *what)
{
    if (err) {
        if (!p->port_down_logged)
            log_warn("port %s: cannot open %s: %s; retrying in the background", p->port->name,
                     p->port->device, msg);
        p->port_down_logged = 1;
        backoff(p);
        for (size_t i = 0; i < p->port->npacks; i++)
            poller_age_health(p, i, "port unavailable");
        atomic_store(&p->attempted, 1);
        return;
    }
    if (p->port_down_logged)
        log_info("port %s: %s is open again; %s resumes", p->port->name, p->port->device, what);
    else
        log_info("port %s: %s open, %s at %d baud, %zu pack(s) %s %d s", p->port->name,
                 p->port->device, config_protocol_name(p->port->protocol), p->port->baud,
                 p->port->npacks, strcmp(what, "polling") == 0 ? "every" : "heard, expected every",
                 p->port->interval_s);
    p->port_down_logged = 0;
    p->last_answer_mono = now_mono_ms();
    p->silent_polls = 0;
    atomic_store(&p->port_up, 1);
    atomic_store(&p->attempted, 1);
}

static void try_open(struct poller *p)
{
    struct serial_opts so;
    poller_serial_opts(p, &so);
    struct bus *bus;
    struct driver_error e;
    int err = bus_open(p->port->device, config_protocol_name(p->port->protocol), &so, &bus, &e);
    if (err == -ECANCELED)
        return; /* stopping */
    poller_opened(p, err, e.msg, "polling");
    if (err)
        return;
    bus_set_cancel_fd(bus, p->cancel_fd);
    p->bus = bus;
    int64_t now = now_mono_ms();
    for (size_t i = 0; i < p->port->npacks; i++) {
        p->packs[i].due_ms = now;
        p->packs[i].identified = p->packs[i].identify_tries = 0; /* maybe another pack now */
    }
}

/* A serial server that accepted the connection, but through which no pack answered for long
 * (see the top of this file): a new connection. Only after a timeout on a network port. */
static void check_silent_server(struct poller *p, const struct driver_error *e, int64_t now)
{
    if (e->status != DRIVER_TIMEOUT) {
        p->silent_polls = 0;
        p->last_answer_mono = now;
        return;
    }
    p->silent_polls++;
    int64_t limit = (int64_t)p->port->interval_s * 1000 * OFFLINE_INTERVALS;
    if (!bus_is_network(p->bus) || now - p->last_answer_mono < limit ||
        p->silent_polls < SILENT_POLLS_PER_PACK * (uint64_t)p->port->npacks)
        return;
    p->silent_reconnects++;
    char why[160];
    snprintf(why, sizeof why,
             "the server took the connection but no pack answered through it for %lld s "
             "(%llu polls; reconnect %llu)",
             (long long)((now - p->last_answer_mono) / 1000), (unsigned long long)p->silent_polls,
             (unsigned long long)p->silent_reconnects);
    poller_close_port(p, why);
}

/* The bus time a poll of pack i takes on average as planned: its 0x42 exchange and 1/every of
 * its 0x44 exchange, as measured (the first poll reads both, later ones mostly the 0x42 alone),
 * or the last poll's whole time where the exchanges are not timed apart (Modbus, all-packs). */
static int64_t planned_poll_ms(const struct pack_state *ps)
{
    const struct driver_alarms *al = &ps->alarms;
    if (al->analog_ms <= 0)
        return ps->last_poll_ms;
    int64_t alarm = al->unsupported ? 0 : al->alarm_ms;
    return al->analog_ms + (alarm + al->every - 1) / al->every;
}

/* Warns once when the packs of this port take longer per round than the interval. */
static void check_round_time(struct poller *p)
{
    if (p->slow_warned)
        return;
    int64_t round = 0;
    for (size_t i = 0; i < p->port->npacks; i++) {
        if (p->packs[i].st.polls == 0)
            return;
        round += planned_poll_ms(&p->packs[i]);
    }
    if (round <= (int64_t)p->port->interval_s * 1000)
        return;
    p->slow_warned = 1;
    log_warn("port %s: %zu pack(s) take %.1f s per round at %d baud (0x44 every %d poll(s)); "
             "interval_s %d cannot be met, achievable about %lld s",
             p->port->name, p->port->npacks, (double)round / 1000.0, p->port->baud,
             p->port->alarms_every, p->port->interval_s, (long long)((round + 999) / 1000));
}

/* Once when a pack is found not to answer the alarm command, once when it answers again. */
static void log_alarm_support(const struct poller *p, size_t i)
{
    const struct pack_state *ps = &p->packs[i];
    const struct driver_alarms *al = &ps->alarms;
    if (!al->changed)
        return;
    if (!al->unsupported) {
        log_info("pack %s (address %u on %s) answers 0x44 again: alarms available", ps->cfg->id,
                 ps->cfg->address, p->port->name);
        return;
    }
    char every[32];
    if (al->retry_ms == DRIVER_ALARMS_RETRY_MS)
        snprintf(every, sizeof every, "hourly");
    else
        snprintf(every, sizeof every, "every %lld s", (long long)(al->retry_ms / 1000));
    log_warn("pack %s (address %u on %s) answers 0x42 but not 0x44 (%s): alarms unavailable, "
             "asking again %s",
             ps->cfg->id, ps->cfg->address, p->port->name, al->why, every);
}

uint32_t poller_count(struct poller *p, size_t i, int err, const struct driver_error *e)
{
    struct pack_state *ps = &p->packs[i];
    pthread_mutex_lock(&p->lock);
    ps->st.polls++;
    ps->st.alarm_failures = ps->alarms.failures;
    ps->st.alarms_unsupported = ps->alarms.unsupported;
    if (err == 0) {
        ps->st.ok++;
        ps->st.consecutive_failures = 0;
        ps->st.last_ok_ms = now_wall_ms();
    } else {
        count_error(&ps->st, e);
        ps->st.consecutive_failures++;
        snprintf(ps->st.last_error, sizeof ps->st.last_error, "%s", e->msg);
    }
    uint32_t failures = ps->st.consecutive_failures;
    pthread_mutex_unlock(&p->lock);
    return failures;
}

void poller_deliver(struct poller *p, size_t i, struct reading *r, int64_t now)
{
    struct pack_state *ps = &p->packs[i];
    ps->last_ok_mono = now;
    r->kind = READING_SAMPLE;
    r->ts_ms = ps->st.last_ok_ms;
    r->mono_ms = now;
    r->port_idx = (uint16_t)p->port_idx;
    r->pack_idx = (uint16_t)i;
    snprintf(r->pack_id, sizeof r->pack_id, "%s", ps->cfg->id);
    r->health = PACK_ONLINE;
    r->detail[0] = '\0';
    set_health(p, i, PACK_ONLINE, NULL);
    push(p, r);
}

/* What one poll of pack i came to (err 0: the sample in r), took_ms on the bus. */
static void after_poll(struct poller *p, size_t i, int err, struct reading *r,
                       const struct driver_error *e, int64_t took_ms, int64_t now)
{
    struct pack_state *ps = &p->packs[i];
    ps->last_poll_ms = took_ms;
    uint32_t failures = poller_count(p, i, err, e);

    int64_t interval = (int64_t)p->port->interval_s * 1000;
    if (err == 0) {
        p->silent_polls = 0;
        p->last_answer_mono = now;
        p->reopen_backoff_ms = 1000;
        /* keep the cadence, but never try to catch up missed rounds */
        ps->due_ms = ps->due_ms + interval > now ? ps->due_ms + interval : now + interval;
        poller_deliver(p, i, r, now);
        log_alarm_support(p, i);
        identify(p, i);
    } else {
        log_debug("pack %s: %s", ps->cfg->id, e->msg);
        ps->due_ms = now + interval * poller_backoff_factor(failures);
        poller_age_health(p, i, e->msg);
        if (e->status == DRIVER_PORT)
            poller_close_port(p, e->msg);
        else
            check_silent_server(p, e, now);
    }
}

/* The packs asked through the master, all at once: one 0x42 with INFO FF to the master, each
 * block the sample of the pack at master + its index, then each pack's 0x44 through the master.
 * Returns 1 when the round was made (or the port failed), 0 when the master does not answer it:
 * then this pack, and the others until the next hourly try, are asked one by one through it. */
static int poll_all(struct poller *p, size_t i)
{
    struct sample all[CONFIG_MAX_PACKS_PER_PORT];
    size_t n = 0;
    struct driver_error e;
    uint8_t master = p->port->master;
    int64_t start = now_mono_ms();
    int err = bus_poll_all(p->bus, master, all, CONFIG_MAX_PACKS_PER_PORT, &n, &e);
    int64_t now = now_mono_ms();
    if (err && e.err == -ECANCELED)
        return 1;
    /* a port error is the port's; one silence can be noise (or a master that is off) */
    if (err && (e.status == DRIVER_PORT ||
                (e.status == DRIVER_TIMEOUT && ++p->all_timeouts < DRIVER_ALARMS_TIMEOUTS))) {
        after_poll(p, i, err, NULL, &e, now - start, now);
        return 1;
    }
    if (err) {
        p->all_failures++;
        if (!p->all_unsupported)
            log_warn("port %s: the master pack at address %u does not answer the all-packs "
                     "request (%s): asking each pack through it instead, the all-packs request "
                     "again hourly (%llu failed so far)",
                     p->port->name, master, e.msg, (unsigned long long)p->all_failures);
        p->all_unsupported = 1;
        p->all_timeouts = 0;
        p->all_retry_ms = now + DRIVER_ALARMS_RETRY_MS;
        return 0;
    }
    if (p->all_unsupported)
        log_info("port %s: the master pack at address %u answers for every pack again",
                 p->port->name, master);
    p->all_unsupported = 0;
    p->all_timeouts = 0;
    int64_t share = (now - start) / (int64_t)(n ? n : 1); /* the bus time of one pack */
    int64_t due = p->packs[i].due_ms;
    for (size_t j = 0; j < p->port->npacks && p->bus != NULL; j++) {
        struct pack_state *ps = &p->packs[j];
        if (ps->cfg->poll != CONFIG_POLL_VIA_MASTER)
            continue;
        ps->due_ms = due; /* one round for all of them */
        size_t k = ps->cfg->address >= master ? (size_t)(ps->cfg->address - master) : n;
        struct reading r;
        int64_t t0 = now_mono_ms();
        if (k >= n) {
            snprintf(e.msg, sizeof e.msg,
                     "the all-packs answer of the master at %u on %s has %zu pack(s), none for "
                     "address %u",
                     master, p->port->name, n, ps->cfg->address);
            e.status = DRIVER_MALFORMED;
            e.err = -ENOENT;
            after_poll(p, j, -1, &r, &e, share, now_mono_ms());
            continue;
        }
        err = bus_poll_alarms(p->bus, master, ps->cfg->address, &ps->alarms, &all[k], &r.s, &e);
        if (err && e.err == -ECANCELED)
            return 1;
        int64_t t1 = now_mono_ms();
        after_poll(p, j, err, &r, &e, share + (t1 - t0), t1);
    }
    return 1;
}

static void poll_pack(struct poller *p, size_t i)
{
    struct pack_state *ps = &p->packs[i];
    int via = ps->cfg->poll == CONFIG_POLL_VIA_MASTER;
    if (via && !p->all_gapped && (!p->all_unsupported || now_mono_ms() >= p->all_retry_ms) &&
        poll_all(p, i)) {
        check_round_time(p);
        return;
    }
    struct reading r;
    struct driver_error e;
    int64_t start = now_mono_ms();
    int err = via ? bus_poll_via(p->bus, p->port->master, ps->cfg->address, &ps->alarms, &r.s, &e)
                  : bus_poll(p->bus, ps->cfg->address, &ps->alarms, &r.s, &e);
    int64_t now = now_mono_ms();
    if (err && e.err == -ECANCELED)
        return; /* shutting down: not a failure of the pack */
    after_poll(p, i, err, &r, &e, now - start, now);
    check_round_time(p);
}

/* The testing aid of poller_test_hang(): blocks as a thread stuck in a serial wait would,
 * making no progress, but still leaves at shutdown so the test's daemon stops cleanly. */
static void hang_for_test(struct poller *p)
{
    log_debug("port %s: hanging on purpose (test)", p->port->name);
    struct pollfd pfd = {.fd = p->cancel_fd, .events = POLLIN};
    while (poll(&pfd, 1, -1) <= 0)
        ;
}

static int polled_once(const struct poller *p)
{
    for (size_t i = 0; i < p->port->npacks; i++) {
        if (p->packs[i].st.polls)
            return 1;
    }
    return 0;
}

static void *poller_main(void *arg)
{
    struct poller *p = arg;
    int rc = thread_name_set(p->port->mode == CONFIG_MODE_LISTEN ? "hear:" : "poll:",
                             p->port->name);
    if (rc)
        log_debug("port %s: cannot name the thread (%d)", p->port->name, rc);
    if (p->port->mode == CONFIG_MODE_LISTEN) {
        poller_listen_main(p);
        return NULL;
    }
    while (!poller_stopping(p)) {
        progress_beat(&p->progress, now_mono_ms());
        if (atomic_load(&p->test_hang) && polled_once(p)) {
            hang_for_test(p);
            break;
        }
        if (p->bus == NULL) {
            if (poller_wait_until(p, p->reopen_ms))
                break;
            try_open(p);
            continue;
        }
        size_t next = 0;
        for (size_t i = 1; i < p->port->npacks; i++) {
            if (p->packs[i].due_ms < p->packs[next].due_ms)
                next = i;
        }
        if (poller_wait_until(p, p->packs[next].due_ms))
            break;
        poll_pack(p, next);
    }
    bus_close(p->bus);
    p->bus = NULL;
    return NULL;
}

/* The all-packs answer numbers its blocks from the master (block i: the pack at master + i): 1
 * when the via_master packs of the port are not exactly master, master + 1, ..., so that a
 * block could be given to the wrong pack; then each is asked through the master in turn. */
static int via_addresses_gapped(const struct config_port *port)
{
    unsigned char want[256] = {0};
    want[port->master] = 1; /* block 0, whether the master itself is polled so or not */
    unsigned top = port->master;
    for (size_t i = 0; i < port->npacks; i++) {
        unsigned a = port->packs[i].address;
        if (port->packs[i].poll == CONFIG_POLL_VIA_MASTER) {
            if (a < port->master)
                return 1; /* before block 0 */
            want[a] = 1;
            top = a > top ? a : top;
        }
    }
    for (unsigned a = port->master; a <= top; a++)
        if (!want[a])
            return 1;
    return 0;
}

int poller_start(const struct config *cfg, size_t port_idx, const struct poller_sinks *sinks,
                 _Atomic uint64_t *seq, int cancel_fd, struct poller **out)
{
    const struct config_port *port = &cfg->ports[port_idx];
    if (port->npacks == 0)
        return -EINVAL;
    struct poller *p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    p->cfg = cfg;
    p->port = port;
    p->port_idx = port_idx;
    p->sinks = *sinks;
    p->seq = seq;
    p->cancel_fd = cancel_fd;
    p->reopen_backoff_ms = 1000;
    p->reopen_ms = p->started_mono = now_mono_ms();
    pthread_mutex_init(&p->lock, NULL);
    char name[sizeof p->progress.name];
    snprintf(name, sizeof name, "poller %s", port->name);
    progress_init(&p->progress, name, poller_turn_limit_ms(port), p->started_mono);
    atomic_init(&p->attempted, 0);
    atomic_init(&p->port_up, 0);
    atomic_init(&p->test_hang, 0);
    for (size_t i = 0; i < port->npacks; i++) {
        p->packs[i].cfg = &port->packs[i];
        driver_alarms_init(&p->packs[i].alarms, DRIVER_ALARMS_RETRY_MS);
        /* staggered: the packs of a round do not all read 0x44 in the same round */
        driver_alarms_cadence(&p->packs[i].alarms, port->alarms_every, (int)i);
    }
    p->all_gapped = via_addresses_gapped(port);
    if (p->all_gapped)
        log_warn("port %s: the via_master packs are not at consecutive addresses from the master "
                 "(%u): the all-packs answer numbers its packs from the master, so each pack is "
                 "asked through the master in turn (more bus time per pack)",
                 port->name, port->master);
    int err = pthread_create(&p->thread, NULL, poller_main, p);
    if (err) {
        pthread_mutex_destroy(&p->lock);
        free(p);
        return -err;
    }
    *out = p;
    return 0;
}

void poller_join(struct poller *p)
{
    if (p != NULL && !p->joined) {
        pthread_join(p->thread, NULL);
        p->joined = 1;
    }
}

void poller_free(struct poller *p)
{
    if (p == NULL)
        return;
    poller_join(p);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

int64_t poller_turn_limit_ms(const struct config_port *port)
{
    int64_t wire_ms = (int64_t)TURN_FRAME_BYTES * 10 * 1000 / (port->baud > 0 ? port->baud : 1);
    return TURN_EXCHANGES * ((int64_t)port->timeout_ms + port->gap_ms + wire_ms) + TURN_MARGIN_MS;
}

const struct progress *poller_progress(const struct poller *p)
{
    return &p->progress;
}

int poller_attempted(const struct poller *p)
{
    return atomic_load(&p->attempted);
}

int poller_port_up(const struct poller *p)
{
    return atomic_load(&p->port_up);
}

void poller_test_hang(struct poller *p)
{
    atomic_store(&p->test_hang, 1);
}

int poller_pack_stats(struct poller *p, size_t i, struct pack_stats *out)
{
    if (i >= p->port->npacks)
        return -EINVAL;
    pthread_mutex_lock(&p->lock);
    *out = p->packs[i].st;
    pthread_mutex_unlock(&p->lock);
    return 0;
}
