/* bench_poll: polls N packs in a row through the simulator on a real pty at 9600 baud and
 * compares the measured time with the wire time of the frames plus the simulator's turnaround.
 * usage: bench_poll [rounds=10] [packs=4] [protocol=daren] [gap_ms=0] */
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

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 10;
    int packs = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 4;
    const char *proto = argc > 3 ? argv[3] : "daren";
    int gap = argc > 4 ? (int)strtol(argv[4], NULL, 10) : 0;
    if (rounds < 1 || packs < 1 || packs > SIM_MAX_PACKS || gap < 0) {
        fprintf(stderr, "usage: bench_poll [rounds] [packs 1..%d] [protocol] [gap_ms]\n",
                SIM_MAX_PACKS);
        return 2;
    }
    struct sim_opts o;
    sim_opts_default(&o);
    o.variant = s42_variant_find(proto);
    if (o.variant == NULL) {
        fprintf(stderr, "unknown protocol %s\n", proto);
        return 2;
    }
    o.naddresses = (size_t)packs;
    for (int i = 0; i < packs; i++)
        o.addresses[i] = (uint8_t)(i + 1);
    o.baud = 9600;
    struct sim *sim;
    if (sim_new(&o, &sim)) {
        fprintf(stderr, "cannot start the simulator\n");
        return 1;
    }
    pthread_t th;
    pthread_create(&th, NULL, serve, sim);

    struct serial_opts so;
    serial_opts_default(&so);
    so.baud = 9600;
    so.gap_ms = gap;
    struct serial_port *port;
    if (serial_open(sim_slave_path(sim), &so, &port)) {
        fprintf(stderr, "cannot open %s\n", sim_slave_path(sim));
        return 1;
    }
    /* Wire time: every request and answer frame, 10 bits per character, plus turnaround. */
    size_t chars = 0;
    long polls = 0, failures = 0;
    double t0 = now_s();
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < packs; i++) {
            struct s42_frame f;
            struct driver_error e;
            char req[64];
            int qlen = s42_request(o.variant, S42_CID2_ANALOG, (uint8_t)(i + 1), req, sizeof req);
            if (driver_exchange(port, o.variant, (uint8_t)(i + 1), S42_CID2_ANALOG, &f, &e)) {
                failures++;
                continue;
            }
            chars += (size_t)qlen + 18 + f.info_len * 2;
            polls++;
        }
    }
    double elapsed = now_s() - t0;
    double wire = serial_wire_ms(9600, chars) / 1000.0 +
                  (double)polls * (o.turnaround_ms + gap) / 1000.0;
    printf("protocol %s, %d packs x %d rounds at 9600 baud, turnaround %d ms, gap %d ms\n", proto,
           packs, rounds, o.turnaround_ms, gap);
    printf("polls %ld (failed %ld), %zu chars on the wire\n", polls, failures, chars);
    printf("measured %.3f s, wire+turnaround+gap %.3f s, ratio %.3f, %.1f ms per poll\n", elapsed,
           wire, elapsed / wire, elapsed / (double)(polls ? polls : 1) * 1000.0);
    serial_close(port);
    stop_flag = 1;
    pthread_join(th, NULL);
    sim_free(sim);
    return failures ? 1 : 0;
}
