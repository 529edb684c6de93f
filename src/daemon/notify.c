/* notify: sd_notify and sd_watchdog_enabled from libsystemd, loaded when there is a service
 * manager to tell; nothing at all in a build without BMSFLEET_SYSTEMD. */
#include "notify.h"

#include <errno.h>
#include <stdlib.h>

#if BMSFLEET_SYSTEMD
#include <dlfcn.h>
#include <systemd/sd-daemon.h>

#include "log.h"

#define SYSTEMD_LIBRARY "libsystemd.so.0"

struct notify {
    void *lib;
    __typeof__(sd_notify) *sd_notify;
    __typeof__(sd_watchdog_enabled) *sd_watchdog_enabled;
};

int notify_built_in(void)
{
    return 1;
}

int notify_open(struct notify **out)
{
    struct notify *n = calloc(1, sizeof *n);
    if (n == NULL)
        return -ENOMEM;
    const char *sock = getenv("NOTIFY_SOCKET");
    if (sock && *sock) {
        n->lib = dlopen(SYSTEMD_LIBRARY, RTLD_NOW | RTLD_LOCAL);
        if (n->lib) {
            *(void **)&n->sd_notify = dlsym(n->lib, "sd_notify");
            *(void **)&n->sd_watchdog_enabled = dlsym(n->lib, "sd_watchdog_enabled");
        }
        if (n->sd_notify == NULL || n->sd_watchdog_enabled == NULL) {
            log_warn("cannot load %s (%s): the service manager is not told READY=1 (install "
                     "libsystemd0)",
                     SYSTEMD_LIBRARY, n->lib ? "symbols missing" : dlerror());
            n->sd_notify = NULL;
            n->sd_watchdog_enabled = NULL;
        }
    }
    *out = n;
    return 0;
}

void notify_close(struct notify *n)
{
    if (n == NULL)
        return;
    if (n->lib)
        dlclose(n->lib);
    free(n);
}

int notify_send(struct notify *n, const char *state)
{
    if (n == NULL || n->sd_notify == NULL)
        return 0;
    int rc = n->sd_notify(0, state);
    return rc < 0 ? rc : 0;
}

int notify_watchdog_usec(struct notify *n, uint64_t *usec)
{
    uint64_t v = 0;
    if (n == NULL || n->sd_watchdog_enabled == NULL)
        return -ENOENT;
    int rc = n->sd_watchdog_enabled(0, &v);
    if (rc < 0)
        return rc;
    if (rc == 0 || v == 0)
        return -ENOENT;
    *usec = v;
    return 0;
}

#else

struct notify {
    int unused;
};

int notify_built_in(void)
{
    return 0;
}

int notify_open(struct notify **out)
{
    struct notify *n = calloc(1, sizeof *n);
    if (n == NULL)
        return -ENOMEM;
    *out = n;
    return 0;
}

void notify_close(struct notify *n)
{
    free(n);
}

int notify_send(struct notify *n, const char *state)
{
    (void)n;
    (void)state;
    return 0;
}

int notify_watchdog_usec(struct notify *n, uint64_t *usec)
{
    (void)n;
    (void)usec;
    return -ENOENT;
}

#endif
