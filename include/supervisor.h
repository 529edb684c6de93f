/* supervisor: what the daemon tells its service manager (notify.h). The main thread calls it
 * every turn: READY=1 once every port was opened or is being retried (the history is opened
 * before the pollers start); WATCHDOG=1 at half the manager's period, only while every poller
 * and the history writer made progress within its own period (progress.h), so that a stuck
 * thread gets the service restarted; STATUS= a one-line summary when it changes. A stuck
 * thread is logged once, by name, whether or not a watchdog is configured. */
#ifndef BMSFLEET_SUPERVISOR_H
#define BMSFLEET_SUPERVISOR_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct poller;
struct store;
struct mqtt;

/* The threads to watch; each may be NULL (a port whose thread did not start, no history, no
 * MQTT). pollers has cfg->nports entries. Everything must outlive the supervisor. */
struct supervisor_threads {
    const struct config *cfg;
    struct poller *const *pollers;
    struct store *store;
    struct mqtt *mqtt;
};

/* The main thread's turn must not be longer than this for the pings to be on time. */
#define SUPERVISOR_TICK_MS 250
/* STATUS= is sent again at most this often (the summary changes with every poll). */
#define SUPERVISOR_STATUS_MIN_MS 2000

struct supervisor;

int supervisor_new(const struct supervisor_threads *t, struct supervisor **out);
void supervisor_free(struct supervisor *s);
/* One turn of the main thread, at the monotonic time now_ms. */
void supervisor_tick(struct supervisor *s, int64_t now_ms);
/* Reloading the configuration: RELOADING=1 (begin) and READY=1 again (end). */
void supervisor_reloading(struct supervisor *s, int begin);
/* The daemon stops: STOPPING=1, no more pings. */
void supervisor_stopping(struct supervisor *s);

/* What the summary is made of. */
enum supervisor_history { SUPERVISOR_HISTORY_OFF, SUPERVISOR_HISTORY_OK, SUPERVISOR_HISTORY_FAILING };
enum supervisor_mqtt { SUPERVISOR_MQTT_OFF, SUPERVISOR_MQTT_CONNECTED, SUPERVISOR_MQTT_DOWN };
struct supervisor_summary {
    size_t online, packs, ports_down;
    enum supervisor_history history;
    enum supervisor_mqtt mqtt;
    int64_t backlog;   /* history samples the broker has not acknowledged; -1 = not known */
    const char *stuck; /* the first thread without progress, or NULL */
};
/* The one-line summary, e.g. "16/16 packs online, backlog 0, mqtt connected". Pure. */
void supervisor_format(const struct supervisor_summary *sum, char *buf, size_t cap);

#endif
