/* daemon: `bmsfleet run` without its command line. It starts the consumers first (the history
 * writer, the MQTT thread, an optional queue of every reading for the caller), then one poller
 * per port, and the supervisor (systemd notifications, watchdog); it stops them in the order
 * that loses nothing (pollers joined, queues closed and drained, history committed, MQTT's
 * goodbye and cursor). Signals stay with the caller: it wakes the threads through the
 * descriptor daemon_wakeup_fd() gives, and calls daemon_step() until it wants to stop. */
#ifndef BMSFLEET_DAEMON_H
#define BMSFLEET_DAEMON_H

#include <stddef.h>

#include "config.h"
#include "queue.h"

struct daemon;

struct daemon_opts {
    int readings; /* 1: every reading also goes to a queue the caller reads (daemon_step) */
};

/* Starts everything cfg declares; cfg must outlive the daemon. Returns 0, or -errno with the
 * reason in why ("history database: ...", "mqtt: cannot start: ...", "no port can be
 * polled"); *out is written only on success. A port whose thread cannot start is logged and
 * skipped; when none starts, -ENODEV. */
int daemon_start(const struct config *cfg, const struct daemon_opts *o, struct daemon **out,
                 char *why, size_t cap);
/* An eventfd: written once (by a signal handler, say), it wakes every thread's wait. */
int daemon_wakeup_fd(const struct daemon *d);
/* One turn of the main thread: waits up to a supervisor tick for a reading (opts.readings) or
 * the wake-up descriptor, and lets the supervisor look at the threads. Returns 1 with *r filled
 * when a reading came, else 0. */
int daemon_step(struct daemon *d, struct reading *r);
/* SIGHUP: reads the configuration at path again and applies log.level (unless level_fixed);
 * any other change is logged with the command that applies it (a restart). */
void daemon_reload(struct daemon *d, const char *path, int level_fixed);
/* Stops in order and frees; every reading still queued for the caller goes to drain (may be
 * NULL). NULL is fine. */
void daemon_stop(struct daemon *d, void (*drain)(const struct reading *r, void *arg), void *arg);

#endif
