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

/* The wall clock in ms. Testing aid, not a setting for users: with BMSFLEET_TEST_CLOCK_FILE=PATH
 * in the environment, the signed number of milliseconds in PATH (read again at most every
 * NOW_TEST_CLOCK_POLL_MS) is added, so a test makes the clock jump back and forth as on a box
 * without RTC that NTP sets (tests/test_clock.c). The monotonic clock is never offset. */
int64_t now_wall_ms(void);

#define NOW_TEST_CLOCK_POLL_MS 20

#endif
