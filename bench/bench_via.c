/* bench_via: bus time per pack and round, polled at each address or through the chain's master
 * pack (issue 17), against the simulator on a real pty. Per address: 0x42 and 0x44 to each pack
 * (driver_poll). Via master: one 0x42 with INFO FF to the master for the whole chain, then each
 * pack's 0x44 relayed (driver_poll_all, driver_poll_alarms): what `poll: via_master` does. And
 * relayed one by one (driver_poll_via): its fallback when the master refuses the all-packs
 * request. The wire time of the frames is printed beside each.
 * usage: bench_via [rounds=5] [packs=8] [protocol=pace] [baud=9600] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driver.h"
#include "serial.h"
#include "sim.h"

static volatile int stop_flag;

static void *serve(void *arg)
{
    sim_run(arg, &stop_flag);
    return NULL;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

enum way { PER_ADDRESS, VIA_ALL, VIA_RELAYED };

/* ms per pack and round, and the characters on the wire per pack and round. */
static int run(const struct s42_variant *v, int packs, int rounds, int baud, enum way way,
               double *ms, double *chars)
{
    struct sim_opts o;
    sim_opts_default(&o);
    o.variant = v;
    o.naddresses = (size_t)packs;
    for (int i = 0; i < packs; i++)
        o.addresses[i] = (uint8_t)(i + 1);
    o.baud = baud;
    o.relay = way != PER_ADDRESS;
    struct sim *sim;
    if (sim_new(&o, &sim))
        return -1;
    stop_flag = 0;
    pthread_t th;
    pthread_create(&th, NULL, serve, sim);
    struct serial_opts so;
    serial_opts_default(&so);
    so.baud = baud;
    so.gap_ms = 0;
    so.timeout_ms = 2000;
    struct serial_port *port;
    int failures = 0;
    if (serial_open(sim_slave_path(sim), &so, &port) == 0) {
        struct driver_error e;
        struct sample s, all[SIM_MAX_PACKS];
        size_t n;
        double t0 = now_ms();
        for (int r = 0; r < rounds; r++) {
            if (way == VIA_ALL && driver_poll_all(port, v, 1, all, SIM_MAX_PACKS, &n, &e))
                failures++;
            for (int a = 1; a <= packs; a++) {
                int err = way == PER_ADDRESS ? driver_poll(port, v, (uint8_t)a, NULL, 0, &s, &e)
                          : way == VIA_RELAYED
                              ? driver_poll_via(port, v, 1, (uint8_t)a, NULL, 0, &s, &e)
                              : driver_poll_alarms(port, v, 1, (uint8_t)a, NULL, 0, &all[a - 1],
                                                   &s, &e);
                failures += err != 0;
            }
        }
        *ms = (now_ms() - t0) / (rounds * packs);
        const struct serial_stats *st = serial_get_stats(port);
        *chars = (double)(st->rx_bytes + st->tx_bytes) / (rounds * packs);
        serial_close(port);
    } else {
        failures = 1;
    }
    stop_flag = 1;
    pthread_join(th, NULL);
    sim_free(sim);
    return failures;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 5;
    int packs = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 8;
    const char *proto = argc > 3 ? argv[3] : "pace";
    int baud = argc > 4 ? (int)strtol(argv[4], NULL, 10) : 9600;
    const struct s42_variant *v = s42_variant_find(proto);
    if (rounds < 1 || packs < 1 || packs > SIM_MAX_PACKS || v == NULL || !s42_has_relay(v) ||
        !serial_baud_supported(baud)) {
        fprintf(stderr, "usage: bench_via [rounds] [packs 1..%d] [pace|pylontech] [baud]\n",
                SIM_MAX_PACKS);
        return 2;
    }
    static const char *const names[] = {"per address (0x42 + 0x44 each)",
                                        "via master (one all-packs 0x42, 0x44 relayed)",
                                        "via master relayed one by one (0x42 + 0x44)"};
    printf("%s, %d packs x %d rounds at %d baud, turnaround 20 ms\n", proto, packs, rounds, baud);
    int failed = 0;
    for (int w = PER_ADDRESS; w <= VIA_RELAYED; w++) {
        double ms = 0, chars = 0;
        int f = run(v, packs, rounds, baud, (enum way)w, &ms, &chars);
        failed |= f != 0;
        printf("%-48s %6.1f ms per pack, %5.0f chars per pack (wire %.1f ms)%s\n", names[w], ms,
               chars, serial_wire_ms(baud, (size_t)chars), f ? " FAILURES" : "");
    }
    return failed;
}
