/* notify: the service manager's notification protocol (sd_notify), through libsystemd when
 * the build has it (BMSFLEET_SYSTEMD). Without it, or when the daemon was not started by
 * systemd (no NOTIFY_SOCKET), every call does nothing and the daemon runs the same. */
#ifndef BMSFLEET_NOTIFY_H
#define BMSFLEET_NOTIFY_H

#include <stdint.h>

/* 1 when this binary was built with libsystemd. */
int notify_built_in(void);
/* Sends one or more newline-separated assignments ("READY=1\nSTATUS=..."). 0, or a negative
 * errno; -ENOTSUP without libsystemd. Nothing is sent (and 0 returned) without NOTIFY_SOCKET. */
int notify_send(const char *state);
/* The watchdog period the service manager asked for (WATCHDOG_USEC), in µs: 0 and *usec
 * written when it asked for one, -ENOENT when it did not (or without libsystemd). */
int notify_watchdog_usec(uint64_t *usec);

#endif
