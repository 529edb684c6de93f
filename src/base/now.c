/* now: the wall clock, and its test hook (now.h). */
#include "now.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static pthread_once_t hook_once = PTHREAD_ONCE_INIT;
static const char *hook_path; /* BMSFLEET_TEST_CLOCK_FILE, or NULL */
static pthread_mutex_t hook_lock = PTHREAD_MUTEX_INITIALIZER; /* one reader of the file */
static _Atomic int64_t hook_offset_ms;
static _Atomic int64_t hook_next_read; /* monotonic ms */
static _Atomic int hook_failing;       /* the file could not be read last time (logged once) */

static void hook_init(void)
{
    const char *v = getenv("BMSFLEET_TEST_CLOCK_FILE");
    if (v == NULL || *v == '\0')
        return;
    hook_path = v;
    log_warn("BMSFLEET_TEST_CLOCK_FILE: the wall clock is offset by the milliseconds in %s "
             "(testing aid)",
             v);
}

/* Reads the offset; keeps the last one when the file cannot be read (warned once a streak). */
static void hook_read(void)
{
    FILE *f = fopen(hook_path, "r");
    long long v;
    int ok = f != NULL && fscanf(f, "%lld", &v) == 1;
    int err = errno;
    if (f != NULL)
        fclose(f);
    if (ok) {
        atomic_store(&hook_offset_ms, (int64_t)v);
        atomic_store(&hook_failing, 0);
    } else if (!atomic_exchange(&hook_failing, 1)) {
        log_warn("BMSFLEET_TEST_CLOCK_FILE: cannot read an offset from %s (%s); keeping %lld ms",
                 hook_path, f == NULL ? strerror(err) : "not a number",
                 (long long)atomic_load(&hook_offset_ms));
    }
}

int64_t now_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    pthread_once(&hook_once, hook_init);
    if (hook_path == NULL)
        return ms;
    int64_t mono = now_mono_ms();
    if (mono >= atomic_load(&hook_next_read) && pthread_mutex_trylock(&hook_lock) == 0) {
        hook_read();
        atomic_store(&hook_next_read, mono + NOW_TEST_CLOCK_POLL_MS);
        pthread_mutex_unlock(&hook_lock);
    }
    return ms + atomic_load(&hook_offset_ms);
}
