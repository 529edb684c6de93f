/* test_queue: the bounded reading queue (drops and counts when full, drains after close) and
 * the poller's backoff schedule. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "poller.h"
#include "queue.h"

static void test_fifo_and_drop(void **state)
{
    (void)state;
    struct queue *q;
    assert_int_equal(queue_new(3, &q), 0);
    struct reading r;
    memset(&r, 0, sizeof r);
    for (uint64_t i = 1; i <= 5; i++) {
        r.seq = i;
        assert_int_equal(queue_push(q, &r), i <= 3 ? 0 : -ENOBUFS);
    }
    assert_int_equal(queue_dropped(q), 2);
    assert_int_equal(queue_length(q), 3);
    for (uint64_t i = 1; i <= 3; i++) {
        assert_int_equal(queue_pop(q, &r, 0), 0);
        assert_int_equal(r.seq, i);
    }
    assert_int_equal(queue_pop(q, &r, 0), -ETIMEDOUT);
    assert_int_equal(queue_pop(q, &r, 20), -ETIMEDOUT);
    r.seq = 9;
    assert_int_equal(queue_push(q, &r), 0);
    queue_close(q);
    assert_int_equal(queue_push(q, &r), -ESHUTDOWN);
    assert_int_equal(queue_pop(q, &r, -1), 0); /* what was queued before close is drained */
    assert_int_equal(r.seq, 9);
    assert_int_equal(queue_pop(q, &r, -1), -ESHUTDOWN);
    queue_free(q);
    assert_int_equal(queue_new(0, &q), -EINVAL);
}

struct producer {
    struct queue *q;
    uint16_t id;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    struct reading r;
    memset(&r, 0, sizeof r);
    r.port_idx = p->id;
    for (uint64_t i = 0; i < 10000; i++) {
        r.seq = i;
        while (queue_push(p->q, &r) == -ENOBUFS)
            sched_yield();
    }
    return NULL;
}

/* n producers of 10 000 readings each, one consumer taking them one by one (batch 0) or in
 * batches (queue_wait, then queue_pop without waiting): everything arrives, in order per
 * producer (a full queue makes a producer here retry). */
static void run_producers(uint16_t n, size_t batch)
{
    struct queue *q;
    assert_int_equal(queue_new(64, &q), 0);
    pthread_t th[4];
    struct producer pr[4];
    uint64_t next[4] = {0};
    assert_true(n <= 4);
    for (uint16_t i = 0; i < n; i++) {
        pr[i] = (struct producer){q, i};
        assert_int_equal(pthread_create(&th[i], NULL, produce, &pr[i]), 0);
    }
    struct reading r;
    for (int got = 0; got < n * 10000;) {
        if (batch) {
            int w = queue_wait(q, batch, 1000);
            assert_true(w == 0 || w == -ETIMEDOUT);
        }
        while (queue_pop(q, &r, batch ? 0 : -1) == 0) {
            assert_int_equal(r.seq, next[r.port_idx]);
            next[r.port_idx]++;
            if (++got == n * 10000 || !batch)
                break;
        }
    }
    for (uint16_t i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    queue_free(q);
}

static void test_many_producers(void **state)
{
    (void)state;
    run_producers(4, 0);
}

static void test_batches_from_producers(void **state)
{
    (void)state;
    run_producers(2, 16);
}

/* A consumer gathering a batch (queue_wait): its wait ends with n readings, at a close or a
 * wake; n is capped at half the queue, so pushes made while it wakes still fit. */
static void test_wait_for_batch(void **state)
{
    (void)state;
    struct queue *q;
    assert_int_equal(queue_new(8, &q), 0);
    struct reading r;
    memset(&r, 0, sizeof r);
    assert_int_equal(queue_wait(q, 3, 0), -ETIMEDOUT); /* nothing */
    assert_int_equal(queue_push(q, &r), 0);
    assert_int_equal(queue_wait(q, 3, 0), 0); /* one is waiting: the deadline passed */
    assert_int_equal(queue_wait(q, 3, 20), 0);
    assert_int_equal(queue_push(q, &r), 0);
    assert_int_equal(queue_push(q, &r), 0);
    assert_int_equal(queue_wait(q, 3, -1), 0); /* three: no wait */
    assert_int_equal(queue_push(q, &r), 0);
    assert_int_equal(queue_wait(q, 100, -1), 0); /* 100 is 4 here, half of 8: no wait */
    queue_wake(q);
    assert_int_equal(queue_pop(q, &r, 0), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(queue_pop(q, &r, 0), 0);
    queue_wake(q);
    assert_int_equal(queue_wait(q, 3, -1), -ETIMEDOUT); /* woken, none waiting */
    queue_close(q);
    assert_int_equal(queue_wait(q, 3, -1), -ESHUTDOWN);
    queue_free(q);
}

static void test_backoff(void **state)
{
    (void)state;
    const unsigned want[] = {1, 1, 1, 2, 4, 8, 8, 8};
    for (uint32_t f = 0; f < 8; f++)
        assert_int_equal(poller_backoff_factor(f), want[f]);
    assert_int_equal(poller_backoff_factor(1000000), 8);
    assert_string_equal(pack_health_name(PACK_OFFLINE), "offline");
    assert_string_equal(pack_health_name(PACK_ONLINE), "online");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_and_drop),
        cmocka_unit_test(test_many_producers),
        cmocka_unit_test(test_wait_for_batch),
        cmocka_unit_test(test_batches_from_producers),
        cmocka_unit_test(test_backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
