/* queue: a bounded multi-producer, single-consumer queue of readings, from the pollers to one
 * consumer (the stdout sink today; storage and MQTT later, one queue each).
 *
 * A producer never blocks: when the queue is full the reading is dropped and counted, so a
 * slow consumer can never stall a bus. */
#ifndef BMSFLEET_QUEUE_H
#define BMSFLEET_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "s42.h"
#include "sample.h"

enum reading_kind {
    READING_SAMPLE = 0, /* a decoded sample */
    READING_HEALTH,     /* a pack's health changed (online / stale / offline) */
    READING_IDENTITY,   /* what the pack says it is (serial, firmware), once per connection */
};

enum pack_health { PACK_UNKNOWN = 0, PACK_ONLINE, PACK_STALE, PACK_OFFLINE };

const char *pack_health_name(enum pack_health h);

/* A value, not a pointer into shared state: everything a consumer needs. */
struct reading {
    enum reading_kind kind;
    uint64_t seq;        /* monotonic per daemon run, across all packs */
    int64_t ts_ms;       /* wall clock (UTC epoch ms) when the answer arrived */
    int64_t mono_ms;     /* the monotonic clock then (durations: energy); 0 = unknown */
    uint16_t port_idx, pack_idx;
    char pack_id[64];
    enum pack_health health; /* READING_HEALTH: the new health */
    char detail[256];        /* READING_HEALTH: why (the last error) */
    struct sample s;         /* READING_SAMPLE */
    struct s42_identity id;  /* READING_IDENTITY */
    /* the pack's poll counters at that moment (diagnostics in Home Assistant) */
    uint64_t polls, timeouts, checksum_errors, malformed;
};

struct queue;

int queue_new(size_t capacity, struct queue **out);
void queue_free(struct queue *q);
/* Copies r in; 0, or -ENOBUFS when full (dropped and counted), -ESHUTDOWN after close. */
int queue_push(struct queue *q, const struct reading *r);
/* Takes the oldest reading; waits up to timeout_ms (-1 = forever). 0, -ETIMEDOUT, or
 * -ESHUTDOWN when the queue is closed and empty. */
int queue_pop(struct queue *q, struct reading *out, int timeout_ms);
/* Waits up to timeout_ms (-1 = forever) until n readings (at most half the capacity: the
 * pushes that come while it wakes must fit) are waiting, the queue is closed or
 * woken: a consumer that takes readings in batches (the history writer, once per commit)
 * then sleeps through the pushes instead of waking for each. 0 when readings are waiting (take
 * them with queue_pop(q, r, 0)), -ETIMEDOUT when none, -ESHUTDOWN when closed and empty. */
int queue_wait(struct queue *q, size_t n, int timeout_ms);
/* Ends the consumer's current (or next) wait in queue_pop or queue_wait early with -ETIMEDOUT: something
 * other than a reading needs it (the MQTT thread: the broker acknowledged history). */
void queue_wake(struct queue *q);
/* No more pushes; the consumer drains what is left and then gets -ESHUTDOWN. */
void queue_close(struct queue *q);
uint64_t queue_dropped(struct queue *q);
size_t queue_length(struct queue *q);

#endif
