/* poller: one thread per serial port. It polls the port's packs in turn at their interval,
 * backs off a pack that does not answer (a dead pack costs at most one timeout per backoff
 * period and never stalls the others), closes and reopens a port that fails (unplugged
 * adapter), keeps per-pack health and error counters, and pushes every reading to its sinks. */
#ifndef BMSFLEET_POLLER_H
#define BMSFLEET_POLLER_H

#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "queue.h"

struct pack_stats {
    enum pack_health health;
    int64_t last_ok_ms; /* wall clock of the last good sample, 0 = never */
    uint32_t consecutive_failures;
    uint64_t polls, ok, timeouts, checksum_errors, malformed, refused, foreign, port_errors;
    /* the alarm command (0x44) failed in a good poll: not a failed poll, the reading is kept */
    uint64_t alarm_failures;
    int alarms_unsupported; /* the pack refused or ignored 0x44 (asked again hourly) */
    char last_error[256];
};

#define POLLER_MAX_SINKS 4

/* Where readings go: every queue gets a copy. */
struct poller_sinks {
    struct queue *q[POLLER_MAX_SINKS];
    size_t n;
};

struct poller;
struct progress;

/* Starts the thread for port `port_idx` of the configuration (which must outlive the poller).
 * cancel_fd: a descriptor that becomes readable when the daemon stops. seq: the shared
 * reading counter. out is written only on success. */
int poller_start(const struct config *cfg, size_t port_idx, const struct poller_sinks *sinks,
                 _Atomic uint64_t *seq, int cancel_fd, struct poller **out);
/* Joins the thread (call after cancel_fd became readable). NULL is fine. */
void poller_join(struct poller *p);
/* Frees a joined poller. NULL is fine. */
void poller_free(struct poller *p);
/* The thread's liveness record (progress.h): a turn polls one pack or waits at most a second. */
const struct progress *poller_progress(const struct poller *p);
/* The longest one turn of a poller of this port may take when nothing hangs: every exchange of
 * a pack (0x42, 0x44, identity) timing out, at the port's baud rate, plus a margin. */
int64_t poller_turn_limit_ms(const struct config_port *port);
/* 1 once the port was opened, or its first open failed and the thread retries. */
int poller_attempted(const struct poller *p);
/* 1 while the port is open. */
int poller_port_up(const struct poller *p);
/* Testing aid (BMSFLEET_TEST_HANG, see cmd_run.c): after its first poll the thread blocks
 * without progress until the daemon stops, as a thread stuck in a serial wait would. */
void poller_test_hang(struct poller *p);
/* A copy of pack i's counters. */
int poller_pack_stats(struct poller *p, size_t i, struct pack_stats *out);

/* Backoff multiplier of the poll interval after n consecutive failures: 1, 1, 2, 4, 8, 8 … */
unsigned poller_backoff_factor(uint32_t failures);

#endif
