/* test_driver: driver_poll against the in-process simulator over a real pty, for packs whose
 * firmware answers 0x42 but not 0x44 (refused with an RTN error, ignored, answered late).
 *
 * Every poll must give the analog values exactly as the frozen model sends them, with the flags
 * unknown (no SAMPLE_HAS_ALARMS), and 0x44 must be asked again only when the re-ask interval
 * has passed. The interval runs on the clock the test passes in, and the 0x44 requests are
 * counted on the wire (the simulator's request counter), so nothing depends on timing. */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "driver.h"
#include "fixture.h"
#include "s42.h"
#include "serial.h"
#include "sim.h"

#define SEED     9
#define RETRY_MS 10000 /* the re-ask interval in these tests, on the test's clock */

struct bench {
    struct sim *sim;
    pthread_t thread;
    volatile int stop;
    int rc;
    struct serial_port *port;
    const struct s42_variant *v;
};

static void *serve(void *arg)
{
    struct bench *b = arg;
    b->rc = sim_run(b->sim, &b->stop);
    return NULL;
}

/* Pace packs 1 and 2 on one bus with the given faults; the driver's port on the other end. */
static void start(struct bench *b, const char *const faults[], int timeout_ms)
{
    struct sim_opts o;
    memset(b, 0, sizeof *b);
    sim_opts_default(&o);
    b->v = o.variant = s42_variant_find("pace");
    o.naddresses = (size_t)sim_parse_addresses("1-2", o.addresses, SIM_MAX_PACKS);
    o.seed = SEED;
    o.baud = 115200;
    o.turnaround_ms = 2;
    o.time_scale = 0;
    for (size_t i = 0; faults[i] != NULL; i++)
        assert_int_equal(sim_fault_parse(faults[i], &o.faults[o.nfaults++]), 0);
    assert_int_equal(sim_new(&o, &b->sim), 0);
    struct serial_opts so;
    serial_opts_default(&so);
    so.baud = 115200;
    so.timeout_ms = timeout_ms;
    so.gap_ms = 2;
    assert_int_equal(serial_open(sim_slave_path(b->sim), &so, &b->port), 0);
    assert_int_equal(pthread_create(&b->thread, NULL, serve, b), 0);
}

static void stop(struct bench *b)
{
    b->stop = 1;
    assert_int_equal(pthread_join(b->thread, NULL), 0);
    assert_int_equal(b->rc, 0);
    serial_close(b->port);
    sim_free(b->sim);
}

/* The analog part of the sample equals what the model sends; the flags are unknown. */
static void assert_analog_only(const struct sample *got, uint8_t adr)
{
    struct sample want;
    fixture_wire_sample("pace", SEED, adr, &want);
    assert_int_equal(got->address, adr);
    assert_true(got->has & SAMPLE_HAS_ANALOG);
    assert_false(got->has & SAMPLE_HAS_ALARMS);
    assert_int_equal(got->voltage_mv, want.voltage_mv);
    assert_int_equal(got->current_ma, want.current_ma);
    assert_int_equal(got->soc_cpct, want.soc_cpct);
    assert_int_equal(got->remaining_mah, want.remaining_mah);
    assert_int_equal(got->cycles, want.cycles);
    assert_int_equal(got->ncells, 16);
    assert_memory_equal(got->cell_mv, want.cell_mv, sizeof want.cell_mv[0] * 16);
    assert_int_equal(got->ntemps, want.ntemps);
    assert_true(got->voltage_mv > 40000 && got->voltage_mv < 60000); /* real values */
    assert_int_equal(got->alarms, 0);
    assert_int_equal(got->protection, 0);
    assert_int_equal(got->state, 0);
}

/* One poll at the test's time now; returns the requests it put on the wire. */
static uint64_t poll_at(struct bench *b, uint8_t adr, struct driver_alarms *al, int64_t now,
                        struct sample *s)
{
    struct driver_error e;
    uint64_t before = sim_requests(b->sim);
    int rc = driver_poll(b->port, b->v, adr, al, now, s, &e);
    if (rc != 0)
        print_error("poll of %u: %s\n", adr, e.msg);
    assert_int_equal(rc, 0);
    return sim_requests(b->sim) - before;
}

/* RTN 04 to 0x44: every poll keeps the reading; 0x44 is asked once per RETRY_MS. */
static void test_refused(void **state)
{
    (void)state;
    const char *const faults[] = {"no-alarms:1", NULL};
    struct bench b;
    start(&b, faults, 300);
    struct driver_alarms al, healthy;
    driver_alarms_init(&al, RETRY_MS);
    driver_alarms_init(&healthy, RETRY_MS);
    struct sample s;
    uint64_t requests = 0;
    int changes = 0;
    for (int64_t now = 0; now < RETRY_MS; now += 1000) { /* 10 polls inside one interval */
        requests += poll_at(&b, 1, &al, now, &s);
        assert_analog_only(&s, 1);
        assert_true(s.has & SAMPLE_ALARMS_UNSUPPORTED);
        changes += al.changed;
        /* the pack beside it answers both, every poll */
        assert_int_equal(poll_at(&b, 2, &healthy, now, &s), 2);
        assert_true(s.has & SAMPLE_HAS_ALARMS);
        assert_false(s.has & SAMPLE_ALARMS_UNSUPPORTED);
    }
    assert_int_equal(requests, 10 + 1); /* ten 0x42, one 0x44 */
    assert_int_equal(changes, 1);       /* marked once */
    assert_int_equal(al.asked, 1);
    assert_int_equal(al.failures, 1);
    assert_true(al.unsupported);
    assert_string_equal(al.why, "BMS answered RTN 04: command not supported (CID2 invalid)");
    assert_int_equal(healthy.asked, 10);
    assert_false(healthy.unsupported);

    /* the interval has passed: asked again, still refused, no new transition */
    assert_int_equal(poll_at(&b, 1, &al, RETRY_MS, &s), 2);
    assert_analog_only(&s, 1);
    assert_int_equal(al.changed, 0);
    assert_int_equal(al.asked, 2);
    assert_int_equal(poll_at(&b, 1, &al, RETRY_MS + 1000, &s), 1);
    stop(&b);
}

/* Any RTN error counts as a refusal, and a pack that answers again is taken back at once. */
static void test_refused_then_answers(void **state)
{
    (void)state;
    const char *const faults[] = {"no-alarms=E2:1:2", NULL}; /* every 2nd 0x44 refused */
    struct bench b;
    start(&b, faults, 300);
    struct driver_alarms al;
    driver_alarms_init(&al, 1000);
    struct sample s;
    assert_int_equal(poll_at(&b, 1, &al, 0, &s), 2); /* 0x44 #1 answered */
    assert_true(s.has & SAMPLE_HAS_ALARMS);
    assert_int_equal(al.changed, 0);
    assert_int_equal(poll_at(&b, 1, &al, 500, &s), 2); /* #2 refused */
    assert_analog_only(&s, 1);
    assert_true(al.unsupported && al.changed);
    assert_string_equal(al.why, "BMS answered RTN E2: command execution failed");
    assert_int_equal(poll_at(&b, 1, &al, 1000, &s), 1); /* not yet: 500 + 1000 */
    assert_int_equal(poll_at(&b, 1, &al, 1500, &s), 2); /* #3 answered */
    assert_true(s.has & SAMPLE_HAS_ALARMS);
    assert_false(s.has & SAMPLE_ALARMS_UNSUPPORTED);
    assert_true(!al.unsupported && al.changed);
    assert_int_equal(al.asked, 3);
    assert_int_equal(al.failures, 1);
    stop(&b);
}

/* Silence to 0x44: two timeouts in a row mark the pack, then it costs no timeout per poll. */
static void test_ignored(void **state)
{
    (void)state;
    const char *const faults[] = {"ignore-alarms:1", NULL};
    struct bench b;
    start(&b, faults, 200);
    struct driver_alarms al;
    driver_alarms_init(&al, RETRY_MS);
    struct sample s;
    assert_int_equal(poll_at(&b, 1, &al, 0, &s), 2);
    assert_analog_only(&s, 1);
    assert_false(s.has & SAMPLE_ALARMS_UNSUPPORTED); /* once can be noise */
    assert_false(al.unsupported);
    assert_int_equal(poll_at(&b, 1, &al, 1000, &s), 2);
    assert_analog_only(&s, 1);
    assert_true(s.has & SAMPLE_ALARMS_UNSUPPORTED);
    assert_true(al.unsupported && al.changed);
    assert_string_equal(al.why, "no answer within 200 ms");
    uint64_t requests = 0;
    for (int64_t now = 2000; now < 1000 + RETRY_MS; now += 1000) {
        requests += poll_at(&b, 1, &al, now, &s);
        assert_analog_only(&s, 1);
        assert_true(s.has & SAMPLE_ALARMS_UNSUPPORTED);
    }
    assert_int_equal(requests, 9); /* 0x42 only */
    assert_int_equal(poll_at(&b, 1, &al, 1000 + RETRY_MS, &s), 2);
    assert_int_equal(al.asked, 3);
    assert_int_equal(al.failures, 3);
    assert_int_equal(serial_get_stats(b.port)->timeouts, 3 * 2); /* each: the ask and the wait */
    stop(&b);
}

/* A 0x44 answer after the deadline must not be taken for the answer to what comes next: the
 * next 0x42 (polled at once) and the identity commands get their own answers. */
static void test_late_answer(void **state)
{
    (void)state;
    const char *const faults[] = {"late-alarms=350:1", NULL};
    struct bench b;
    start(&b, faults, 250);
    struct driver_alarms al;
    driver_alarms_init(&al, RETRY_MS);
    struct sample s;
    for (int k = 0; k < 3; k++) { /* back to back: the late answer is on the wire each time */
        assert_int_equal(poll_at(&b, 1, &al, k, &s), k < 2 ? 2 : 1);
        assert_analog_only(&s, 1);
    }
    assert_true(al.unsupported);
    assert_int_equal(al.asked, 2);
    struct s42_identity id;
    struct driver_error e;
    assert_int_equal(driver_identify(b.port, b.v, 1, &id, &e), 0);
    char want[32];
    snprintf(want, sizeof want, "SIM%d-1", SEED);
    assert_string_equal(id.serial, want);
    assert_true(serial_get_stats(b.port)->frames >= 3 + 2 + 2); /* the late ones were read */
    stop(&b);
}

/* Without memory (NULL) 0x44 is asked every poll, and the reading is still kept. */
static void test_no_memory(void **state)
{
    (void)state;
    const char *const faults[] = {"no-alarms:1", NULL};
    struct bench b;
    start(&b, faults, 300);
    struct sample s;
    for (int k = 0; k < 3; k++) {
        assert_int_equal(poll_at(&b, 1, NULL, 0, &s), 2);
        assert_analog_only(&s, 1);
        assert_true(s.has & SAMPLE_ALARMS_UNSUPPORTED);
    }
    stop(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused),    cmocka_unit_test(test_refused_then_answers),
        cmocka_unit_test(test_ignored),    cmocka_unit_test(test_late_answer),
        cmocka_unit_test(test_no_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
