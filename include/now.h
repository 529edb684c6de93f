/* now: the two clocks every thread asks. Monotonic for deadlines and intervals (never jumps);
 * wall clock (UTC epoch) only for timestamps that are stored or published. */
#ifndef BMSFLEET_NOW_H
#define BMSFLEET_NOW_H

#include <stdint.h>
#include <time.h>

static inline int64_t now_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t now_mono_ms(void)
{
    return now_mono_ns() / 1000000;
}

static inline int64_t now_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
