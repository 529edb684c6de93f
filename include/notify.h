/* notify: the service manager's notification protocol (sd_notify). With BMSFLEET_SYSTEMD the
 * build has libsystemd's header, and libsystemd itself is loaded (dlopen) only when the daemon
 * was started by a service manager (NOTIFY_SOCKET set): by hand, in a container, or built
 * without it, the daemon runs the same, sends nothing, and maps none of libsystemd's libraries
 * (about 0.9 MB of RSS). */
#ifndef BMSFLEET_NOTIFY_H
#define BMSFLEET_NOTIFY_H

#include <stdint.h>

struct notify;

/* 1 when this binary was built able to notify (BMSFLEET_SYSTEMD). */
int notify_built_in(void);
/* A notifier: loads libsystemd when NOTIFY_SOCKET is set; without it (or when the library
 * cannot be loaded, logged once) the notifier does nothing. 0 or -ENOMEM. */
int notify_open(struct notify **out);
void notify_close(struct notify *n);
/* Sends one or more newline-separated assignments ("READY=1\nSTATUS=..."). 0, or a negative
 * errno; 0 without a service manager. NULL is fine. */
int notify_send(struct notify *n, const char *state);
/* The watchdog period the service manager asked for (WATCHDOG_USEC), in µs: 0 and *usec
 * written when it asked for one, -ENOENT when it did not (or cannot be told). */
int notify_watchdog_usec(struct notify *n, uint64_t *usec);

#endif
