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

/* ports[].alarms_every: 0x44 at every 4th poll of an unchanging pack, staggered, and the polls
 * between carry the flags of the last read, marked with their age. Counted on the wire. */
static void test_alarms_cadence(void **state)
{
    (void)state;
    const char *const faults[] = {NULL};
    struct bench b;
    start(&b, faults, 300);
    struct driver_alarms a1, a2;
    driver_alarms_init(&a1, RETRY_MS);
    driver_alarms_init(&a2, RETRY_MS);
    driver_alarms_cadence(&a1, 4, 0);
    driver_alarms_cadence(&a2, 4, 1); /* the second pack of the port: one poll earlier */
    struct sample s, read1 = {0}, read2 = {0};
    /* requests per poll: 0x42 + 0x44 (2) or 0x42 alone (1) */
    static const uint64_t want1[] = {2, 1, 1, 1, 2, 1, 1, 1, 2, 1, 1, 1};
    static const uint64_t want2[] = {2, 1, 1, 2, 1, 1, 1, 2, 1, 1, 1, 2};
    for (int i = 0; i < 12; i++) {
        int64_t now = i * 1000;
        assert_int_equal(poll_at(&b, 1, &a1, now, &s), want1[i]);
        assert_true(s.has & SAMPLE_HAS_ALARMS);
        if (want1[i] == 2) {
            assert_false(s.has & SAMPLE_ALARMS_CARRIED);
            assert_int_equal(s.alarms_age, 0);
            read1 = s;
        } else {
            assert_true(s.has & SAMPLE_ALARMS_CARRIED);
            assert_int_equal(s.alarms_age, i % 4); /* polls since the read */
            assert_int_equal(s.alarms, read1.alarms);
            assert_int_equal(s.protection, read1.protection);
            assert_int_equal(s.state, read1.state);
            assert_int_equal(s.balancing, read1.balancing);
            assert_int_equal(s.nraw_status, read1.nraw_status);
            assert_int_equal(s.voltage_mv, read1.voltage_mv); /* the analog values are fresh */
        }
        assert_int_equal(poll_at(&b, 2, &a2, now, &s), want2[i]);
        if (want2[i] == 2)
            read2 = s;
        else
            assert_int_equal(s.state, read2.state);
        assert_int_equal(!!(s.has & SAMPLE_ALARMS_CARRIED), want2[i] == 1);
    }
    assert_int_equal(a1.asked, 3);
    assert_int_equal(a1.carried, 9);
    assert_int_equal(a2.asked, 4);
    assert_true(a1.analog_ms >= 0 && a1.alarm_ms >= 0);
    /* every 1 (driver_alarms_init's, and `read`'s): both commands at every poll */
    struct driver_alarms every;
    driver_alarms_init(&every, RETRY_MS);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(poll_at(&b, 1, &every, i * 1000, &s), 2);
        assert_false(s.has & SAMPLE_ALARMS_CARRIED);
    }
    stop(&b);
}

/* What makes a poll read 0x44 before its turn: each rule alone, from an unchanged sample. */
static void test_alarms_due_rules(void **state)
{
    (void)state;
    struct sample base;
    fixture_wire_sample("pace", SEED, 1, &base);
    base.current_ma = -12000;
    /* as a PACE 0x42 answer decodes: no flags of its own */
    base.has &= ~(uint32_t)(SAMPLE_HAS_ALARMS | SAMPLE_HAS_BALANCE);
    base.alarms = base.protection = base.state = base.balancing = 0;
    struct driver_alarms a;
    driver_alarms_init(&a, RETRY_MS);
    driver_alarms_cadence(&a, 4, 0);
    assert_true(driver_alarms_due(&a, &base)); /* nothing read yet */
    a.have_last = 1;
    a.last = base;
    int32_t tmin = base.temp_dc[0], tmax = base.temp_dc[0];
    for (unsigned i = 0; i < base.ntemps; i++) {
        if (base.temp_dc[i] < tmin)
            tmin = base.temp_dc[i];
        if (base.temp_dc[i] > tmax)
            tmax = base.temp_dc[i];
    }
    a.since = 0;
    assert_false(driver_alarms_due(&a, &base)); /* unchanged: carried */
    a.since = 2;
    assert_false(driver_alarms_due(&a, &base));
    a.since = 3; /* the 4th poll after the read */
    assert_true(driver_alarms_due(&a, &base));
    a.since = 0;

    struct sample s = base;
    s.current_ma = -11000; /* 1 A less, same direction: small */
    s.cell_min_mv = base.cell_min_mv + 29;
    s.soc_cpct = base.soc_cpct - 499;
    assert_false(driver_alarms_due(&a, &s));
#define DUE_WHEN(field, value)                                                                    \
    do {                                                                                          \
        s = base;                                                                                 \
        s.field = (value);                                                                        \
        if (!driver_alarms_due(&a, &s))                                                           \
            fail_msg("%s = %d should ask 0x44", #field, (int)(value));                            \
    } while (0)
    DUE_WHEN(current_ma, 0);           /* a FET opened: no current */
    DUE_WHEN(current_ma, 2000);        /* charging now */
    DUE_WHEN(current_ma, -17000);      /* a 5 A step */
    DUE_WHEN(cell_min_mv, base.cell_min_mv - 30);
    DUE_WHEN(cell_max_mv, base.cell_max_mv + 30);
    DUE_WHEN(cell_diff_mv, base.cell_diff_mv + 20);
    DUE_WHEN(soc_cpct, base.soc_cpct - 500);
    DUE_WHEN(voltage_mv, base.voltage_mv + 500);
    DUE_WHEN(voltage_mv, SAMPLE_ABSENT);
    DUE_WHEN(ncells, (uint8_t)(base.ncells - 1));
    DUE_WHEN(temp_dc[0], tmax + 20);
    DUE_WHEN(temp_dc[0], tmin - 20);
    /* status words in the analog answer itself (Daren) that differ from the last read's */
    s = base;
    s.has |= SAMPLE_HAS_ALARMS;
    assert_false(driver_alarms_due(&a, &s));
    s.protection = SAMPLE_PROT_DSG_OC;
    assert_true(driver_alarms_due(&a, &s));
#undef DUE_WHEN
    /* anything raised at the last read: asked at every poll until it clears */
    a.last.alarms = SAMPLE_ALARM_CELL_UV;
    assert_true(driver_alarms_due(&a, &base));
    a.last.alarms = 0;
    a.last.protection = SAMPLE_PROT_CHG_HT;
    assert_true(driver_alarms_due(&a, &base));
    a.last.protection = 0;
    assert_false(driver_alarms_due(&a, &base));
    /* a failed read leaves nothing to carry */
    a.have_last = 0;
    assert_true(driver_alarms_due(&a, &base));
    /* every poll */
    driver_alarms_cadence(&a, 1, 0);
    a.have_last = 1;
    assert_true(driver_alarms_due(&a, &base));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused),    cmocka_unit_test(test_refused_then_answers),
        cmocka_unit_test(test_ignored),    cmocka_unit_test(test_late_answer),
        cmocka_unit_test(test_no_memory),  cmocka_unit_test(test_alarms_cadence),
        cmocka_unit_test(test_alarms_due_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
