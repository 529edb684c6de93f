/* poller_internal: what the two ways of running a port share (poller.c polls the packs,
 * poller_listen.c hears another master poll them): the thread's state and the steps that
 * count, judge health and pass readings on the same way for both. */
#ifndef BMSFLEET_POLLER_INTERNAL_H
#define BMSFLEET_POLLER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "bus.h"
#include "driver.h"
#include "listener.h"
#include "poller.h"
#include "progress.h"

#define OFFLINE_INTERVALS 3

struct pack_state {
    const struct config_pack *cfg;
    int64_t due_ms;       /* monotonic */
    int64_t last_ok_mono; /* monotonic time of the last good sample, 0 = never */
    int64_t last_poll_ms; /* duration of the last poll */
    int identified, identify_tries;
    struct driver_alarms alarms; /* whether the pack answers 0x44, kept across port reopens */
    struct pack_stats st;
};

struct poller {
    const struct config *cfg;
    const struct config_port *port;
    size_t port_idx;
    struct poller_sinks sinks;
    _Atomic uint64_t *seq;
    int cancel_fd;
    pthread_t thread;
    int joined;
    pthread_mutex_t lock; /* guards packs[].st for readers in other threads */
    struct bus *bus;
    struct listener *lis; /* mode listen: the line heard instead of the bus polled */
    uint8_t unknown_logged[32]; /* listen: addresses heard, not configured, told once (bits) */
    int master_logged;          /* listen: the other master's first request was told */
    int64_t started_mono;    /* when the thread started */
    int64_t reopen_ms;       /* monotonic time of the next open attempt */
    int reopen_backoff_ms;
    int port_down_logged;
    int slow_warned;
    int64_t last_answer_mono; /* since the open: the last poll any pack answered (even badly) */
    uint64_t silent_polls;    /* polls in a row that timed out, since then */
    uint64_t silent_reconnects;
    int all_gapped;        /* via_master packs not at master, master + 1, ...: no all-packs */
    int all_unsupported;   /* via_master: the master did not answer the all-packs request */
    int64_t all_retry_ms;  /* then when to try it again */
    int all_timeouts;      /* all-packs requests in a row without an answer */
    uint64_t all_failures; /* all-packs requests it did not answer */
    struct progress progress;
    _Atomic int attempted; /* the port was opened once, or its first open failed (retrying) */
    _Atomic int port_up;
    _Atomic int test_hang; /* poller_test_hang() */
    struct pack_state packs[CONFIG_MAX_PACKS_PER_PORT];
};

/* Waits until the monotonic time `until` or a stop (1); each second of it is progress. */
int poller_wait_until(struct poller *p, int64_t until);
int poller_stopping(const struct poller *p);
/* Offline when no good sample came for OFFLINE_INTERVALS intervals, else stale if online. */
void poller_age_health(struct poller *p, size_t i, const char *why);
/* The counters of one exchange of pack i (err 0: good, else e); returns the failures in a row. */
uint32_t poller_count(struct poller *p, size_t i, int err, const struct driver_error *e);
/* A good sample of pack i at now (in r->s): online, and the reading to the sinks. */
void poller_deliver(struct poller *p, size_t i, struct reading *r, int64_t now);
/* The port failed: closed, reopened after the backoff, said once. */
void poller_close_port(struct poller *p, const char *why);
/* The serial options of the port. */
void poller_serial_opts(const struct poller *p, struct serial_opts *so);
/* After an open: err 0 logs the open (again) with what (e.g. "listening"), else the failure
 * once, backs off and ages the packs' health. */
void poller_opened(struct poller *p, int err, const char *msg, const char *what);

/* poller_listen.c: the thread's loop for a port in mode listen. */
void poller_listen_main(struct poller *p);

#endif
