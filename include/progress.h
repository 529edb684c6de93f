/* progress: how the supervisor sees that a thread is alive. Each watched thread records the
 * monotonic time of its last loop turn, and the longest a turn may take when nothing is wrong
 * (its period); the main thread compares the two. A thread waiting by design (for the next
 * poll, for readings) turns at least every second, so only a thread stuck inside one step (a
 * serial wait past its timeout, a commit that never returns) goes stale. */
#ifndef BMSFLEET_PROGRESS_H
#define BMSFLEET_PROGRESS_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

struct progress {
    char name[80];             /* "poller a", "history writer": for the log and STATUS= */
    int64_t period_ms;         /* written once, before the thread starts */
    _Atomic int64_t last_ms;   /* monotonic, written by the thread only */
};

static inline void progress_init(struct progress *p, const char *name, int64_t period_ms,
                                 int64_t now_ms)
{
    snprintf(p->name, sizeof p->name, "%s", name);
    p->period_ms = period_ms;
    atomic_init(&p->last_ms, now_ms);
}

/* One loop turn done. Relaxed: the reader only needs the value, not what happened before. */
static inline void progress_beat(struct progress *p, int64_t now_ms)
{
    atomic_store_explicit(&p->last_ms, now_ms, memory_order_relaxed);
}

/* How long the thread has gone without a turn (ms), as seen at now_ms. */
static inline int64_t progress_idle_ms(const struct progress *p, int64_t now_ms)
{
    return now_ms - atomic_load_explicit(&p->last_ms, memory_order_relaxed);
}

/* True when the thread has gone longer than its period without a turn. */
static inline int progress_stale(const struct progress *p, int64_t now_ms)
{
    return progress_idle_ms(p, now_ms) > p->period_ms;
}

#endif
