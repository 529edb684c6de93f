/* test_fault_soak: issue 16, item 2. The real daemon polls PORTS simulated buses whose
 * simulators answer every 0x42 with a fault drawn from a seeded mix (garbage, bad checksums,
 * truncation, silence, RTN error codes, answers of another address, a second master talking,
 * noise; `simulate --mix soak`), unpaced, and log the values of every valid answer they sent.
 * Afterwards (tests/fleet.h): every stored sample equals, in order, a valid answer sent to its
 * pack, none missing; the daemon's counters equal the faults of each class for every pack; every
 * pack was still polled at the end, also after one simulator was frozen for a second. CI injects
 * a few thousand faults; bench/fault_soak.sh 100 000. Settings: BMSFLEET_FAULT_PORTS, _PACKS,
 * _TARGET (faults), _MAX_S, _TIMEOUT_MS, _SEED. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fleet.h"

static struct fleet fl;

static int teardown(void **state)
{
    (void)state;
    fleet_free(&fl);
    return 0;
}

static void test_fault_soak(void **state)
{
    (void)state;
    fl.ports = (int)proc_env_count("BMSFLEET_FAULT_PORTS", 8);
    fl.packs = (int)proc_env_count("BMSFLEET_FAULT_PACKS", 32);
    fl.timeout_ms = (int)proc_env_count("BMSFLEET_FAULT_TIMEOUT_MS", 300);
    fl.seed = (uint64_t)proc_env_count("BMSFLEET_FAULT_SEED", 1);
    fl.mix = "soak";
    unsigned long long target = (unsigned long long)proc_env_count("BMSFLEET_FAULT_TARGET", 3000);
    long long max_ms = proc_env_count("BMSFLEET_FAULT_MAX_S", 120) * 1000LL;
    fleet_start(&fl);
    fleet_start_daemon(&fl);
    long long t0 = proc_now_ms();
    fleet_run(&fl, target / 2, max_ms);
    /* the simulator of port 0 frozen for a second, as a loaded box does it: the daemon times
     * out, and the answers it gave up on are never sent (logged "stalled") */
    assert_int_equal(kill(fl.sim[0], SIGSTOP), 0);
    usleep(1000000);
    assert_int_equal(kill(fl.sim[0], SIGCONT), 0);
    unsigned long long faults = fleet_run(&fl, target, max_ms - (proc_now_ms() - t0));
    fleet_stop(&fl);
    struct fleet_tally t;
    fleet_check(&fl, &t);
    fleet_report(&fl, &t, "fault soak");
    assert_true(faults >= target);
    assert_true(t.faults >= target);
    for (int kd = SIM_MIX_CLEAN + 1; kd < SIM_MIX_STALLED; kd++)
        assert_true(t.kinds[kd] > 0); /* every kind was met */
    assert_true(t.inflight <= (unsigned long long)fl.ports);
    assert_true(t.kinds[SIM_MIX_STALLED] > 0);
    assert_int_equal(t.mismatches, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_fault_soak, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
