/* test_rss: issue 16, item 8 (its second half; tests/valgrind.sh is the first). The daemon's
 * resident memory stays flat over a long accelerated run: PORTS x PACKS simulated packs with
 * the fault mix, unpaced, polled every second, into SQLite and MQTT (a private mosquitto),
 * VmRSS read from /proc at the end of a warm-up (SQLite's cache, the queues and MQTT's
 * buffers filled) and every few seconds after. The growth from the first figure to the last must
 * stay under a bound far below what a leak of a few bytes per poll would give; everything the
 * run stored is checked too (tests/fleet.h). CI runs 8 x 32 packs for 20 + 30 s; bench/rss.sh
 * runs 16 x 32 for 10 minutes. Settings: BMSFLEET_RSS_PORTS, _PACKS, _WARMUP_S, _RUN_S,
 * _MAX_GROWTH_KB. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "broker.h"
#include "fleet.h"

#define SAMPLE_EVERY_MS 5000

static struct fleet fl;
static struct broker br;

static int teardown(void **state)
{
    (void)state;
    fleet_free(&fl); /* the daemon first: it says goodbye to the broker */
    broker_stop(&br);
    return 0;
}

/* VmRSS of pid in kB, or -1. */
static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* Polls the packs report so far: the daemon logs its counters only at the stop, so count the
 * simulators' requests instead. */
static unsigned long long requests_so_far(void)
{
    unsigned long long n = 0;
    for (int k = 0; k < fl.ports; k++) {
        char *t = proc_slurp(fl.log[k]);
        n += t ? (unsigned long long)proc_count(t, "\n") : 0;
        free(t);
    }
    return n;
}

static void test_rss_flat(void **state)
{
    (void)state;
    fl.ports = (int)proc_env_count("BMSFLEET_RSS_PORTS", 8);
    fl.packs = (int)proc_env_count("BMSFLEET_RSS_PACKS", 32);
    fl.timeout_ms = 300;
    fl.seed = 11;
    fl.mix = "soak";
    long warmup_ms = proc_env_count("BMSFLEET_RSS_WARMUP_S", 20) * 1000;
    long run_ms = proc_env_count("BMSFLEET_RSS_RUN_S", 30) * 1000;
    /* SQLite's page cache (1 MiB, src/store/store.c) may still be filling after the warm-up;
     * under ASan its pages cost more. A leak of 256 bytes a poll would pass this in CI's run. */
    long max_growth_kb = proc_env_count("BMSFLEET_RSS_MAX_GROWTH_KB", 1536);
    fl.mqtt_port = broker_free_port();
    assert_true(fl.mqtt_port > 0);
    fleet_start(&fl);
    br.port = fl.mqtt_port;
    assert_int_equal(broker_start(&br, fl.dir, NULL), 0);
    /* under ASan, freed memory waits in a quarantine of up to 256 MB: keep it small, or the
     * quarantine is all this measures (a build without sanitizers ignores the variable) */
    char asan[512];
    const char *old = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof asan, "%s%squarantine_size_mb=1:thread_local_quarantine_size_kb=64",
             old ? old : "", old && *old ? ":" : "");
    assert_int_equal(setenv("ASAN_OPTIONS", asan, 1), 0);
    fleet_start_daemon(&fl);
    if (old)
        setenv("ASAN_OPTIONS", old, 1);
    else
        unsetenv("ASAN_OPTIONS");

    fleet_run(&fl, ~0ull, warmup_ms);
    long start_kb = rss_kb(fl.daemon), peak_kb = start_kb, end_kb = start_kb;
    unsigned long long start_req = requests_so_far();
    assert_true(start_kb > 0);
    char series[4096];
    size_t ns = (size_t)snprintf(series, sizeof series, "%ld", start_kb);
    for (long t = 0; t < run_ms; t += SAMPLE_EVERY_MS) {
        fleet_run(&fl, ~0ull, SAMPLE_EVERY_MS);
        end_kb = rss_kb(fl.daemon);
        assert_true(end_kb > 0);
        peak_kb = end_kb > peak_kb ? end_kb : peak_kb;
        if (ns < sizeof series)
            ns += (size_t)snprintf(series + ns, sizeof series - ns, " %ld", end_kb);
    }
    unsigned long long measured_req = requests_so_far() - start_req;
    fleet_stop(&fl);
    struct fleet_tally t;
    fleet_check(&fl, &t);
    print_message("rss: %d ports x %d packs with SQLite and MQTT, %ld s warm-up then %ld s: "
                  "VmRSS %ld kB after the warm-up, %ld kB at the end (%+ld kB, peak %ld kB) "
                  "over about %llu polls (%llu in all)\n",
                  fl.ports, fl.packs, warmup_ms / 1000, run_ms / 1000, start_kb, end_kb,
                  end_kb - start_kb, peak_kb, measured_req, t.polls);
    print_message("rss: every %d s (kB): %s\n", SAMPLE_EVERY_MS / 1000, series);
    fleet_report(&fl, &t, "rss");
    assert_int_equal(t.mismatches, 0);
    char *err = proc_slurp(fl.err);
    assert_non_null(err);
    assert_non_null(strstr(err, "mqtt: connected"));
    free(err);
    assert_true(end_kb - start_kb <= max_growth_kb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_rss_flat, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
