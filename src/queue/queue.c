/* Part queue (src/queue/): the hand-off of readings between threads. A bounded queue per
 * consumer; a producer never waits, a full queue drops and counts. It reaches only the codec
 * (a reading carries a sample).
 *
 * queue: a ring buffer of readings under one mutex, with a condition variable for the
 * consumer. Producers never wait. */
#include "queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct queue {
    pthread_mutex_t lock;
    pthread_cond_t nonempty;
    size_t cap, head, len;
    uint64_t dropped;
    int closed;
    int woken; /* queue_wake: the consumer's wait ends early, once */
    size_t want; /* readings that end the consumer's wait (queue_wait); 1 otherwise */
    struct reading items[];
};

const char *pack_health_name(enum pack_health h)
{
    static const char *const names[] = {"unknown", "online", "stale", "offline"};
    return (unsigned)h < sizeof names / sizeof names[0] ? names[h] : "unknown";
}

int queue_new(size_t capacity, struct queue **out)
{
    if (capacity == 0)
        return -EINVAL;
    struct queue *q = calloc(1, sizeof *q + capacity * sizeof q->items[0]);
    if (q == NULL)
        return -ENOMEM;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->nonempty, &ca);
    pthread_condattr_destroy(&ca);
    q->cap = capacity;
    q->want = 1;
    *out = q;
    return 0;
}

void queue_free(struct queue *q)
{
    if (q == NULL)
        return;
    pthread_cond_destroy(&q->nonempty);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

int queue_push(struct queue *q, const struct reading *r)
{
    int rc = 0;
    pthread_mutex_lock(&q->lock);
    if (q->closed) {
        rc = -ESHUTDOWN;
    } else if (q->len == q->cap) {
        q->dropped++;
        rc = -ENOBUFS;
    } else {
        q->items[(q->head + q->len) % q->cap] = *r;
        q->len++;
        if (q->len >= q->want) /* a consumer gathering a batch sleeps on */
            pthread_cond_signal(&q->nonempty);
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

static struct timespec deadline(int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    if (timeout_ms > 0) {
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
    }
    return until;
}

int queue_wait(struct queue *q, size_t n, int timeout_ms)
{
    struct timespec until = deadline(timeout_ms);
    int timed_out = 0;
    pthread_mutex_lock(&q->lock);
    /* never more than half the queue: the pushes that come while the consumer wakes must fit */
    size_t most = q->cap / 2 ? q->cap / 2 : 1;
    q->want = n == 0 ? 1 : n > most ? most : n;
    while (q->len < q->want && !q->closed && !q->woken && !timed_out) {
        if (timeout_ms < 0)
            pthread_cond_wait(&q->nonempty, &q->lock);
        else
            timed_out = timeout_ms == 0 ||
                        pthread_cond_timedwait(&q->nonempty, &q->lock, &until) == ETIMEDOUT;
    }
    q->want = 1;
    q->woken = 0;
    int rc = q->len > 0 ? 0 : q->closed ? -ESHUTDOWN : -ETIMEDOUT;
    pthread_mutex_unlock(&q->lock);
    return rc;
}

int queue_pop(struct queue *q, struct reading *out, int timeout_ms)
{
    struct timespec until = deadline(timeout_ms);
    int rc = 0;
    pthread_mutex_lock(&q->lock);
    while (q->len == 0 && !q->closed && rc == 0) {
        if (q->woken)
            rc = -ETIMEDOUT;
        else if (timeout_ms < 0)
            pthread_cond_wait(&q->nonempty, &q->lock);
        else if (timeout_ms == 0 ||
                 pthread_cond_timedwait(&q->nonempty, &q->lock, &until) == ETIMEDOUT)
            rc = -ETIMEDOUT;
    }
    if (q->len > 0) {
        *out = q->items[q->head];
        q->head = (q->head + 1) % q->cap;
        q->len--;
        /* empty: start again at the first slot, so that a consumer that keeps up reuses the
         * same few slots (pages) instead of walking the whole ring (capacity x about 1 KB of
         * memory, resident once touched) */
        if (q->len == 0)
            q->head = 0;
        rc = 0;
    } else if (q->closed) {
        rc = -ESHUTDOWN;
    }
    q->woken = 0;
    pthread_mutex_unlock(&q->lock);
    return rc;
}

void queue_wake(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->woken = 1;
    pthread_cond_signal(&q->nonempty);
    pthread_mutex_unlock(&q->lock);
}

void queue_close(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = 1;
    pthread_cond_broadcast(&q->nonempty);
    pthread_mutex_unlock(&q->lock);
}

uint64_t queue_dropped(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    uint64_t d = q->dropped;
    pthread_mutex_unlock(&q->lock);
    return d;
}

size_t queue_length(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    size_t n = q->len;
    pthread_mutex_unlock(&q->lock);
    return n;
}
