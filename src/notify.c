/* notify: sd_notify and sd_watchdog_enabled, or nothing when built without libsystemd. */
#include "notify.h"

#include <errno.h>

#if BMSFLEET_SYSTEMD
#include <systemd/sd-daemon.h>

int notify_built_in(void)
{
    return 1;
}

int notify_send(const char *state)
{
    int rc = sd_notify(0, state);
    return rc < 0 ? rc : 0;
}

int notify_watchdog_usec(uint64_t *usec)
{
    uint64_t v = 0;
    int rc = sd_watchdog_enabled(0, &v);
    if (rc < 0)
        return rc;
    if (rc == 0 || v == 0)
        return -ENOENT;
    *usec = v;
    return 0;
}

#else

int notify_built_in(void)
{
    return 0;
}

int notify_send(const char *state)
{
    (void)state;
    return -ENOTSUP;
}

int notify_watchdog_usec(uint64_t *usec)
{
    (void)usec;
    return -ENOENT;
}

#endif
