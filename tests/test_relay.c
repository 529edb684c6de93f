/* test_relay: a daisy chain reached through its master pack (issue 17, item 2). The relayed
 * request and the all-packs answer in the codec (PACE and Pylontech, a round trip and the frame
 * on the wire); the driver against the simulator's master pack on a pty: every pack in one
 * all-packs answer with the values of each, each pack relayed by address, the packs behind the
 * master silent when asked directly, a master that refuses the all-packs request; and the bus
 * time per pack both ways, measured at 9600 baud (the numbers of the README). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "bus.h"
#include "driver.h"
#include "fixture.h"
#include "s42.h"
#include "serial.h"
#include "sim.h"

#define SEED 3

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------- codec ---------------- */

static void test_request_via(void **state)
{
    (void)state;
    const struct s42_variant *pace = s42_variant_find("pace");
    char buf[64];
    struct s42_frame f;
    int n = s42_request_via(pace, S42_CID2_ANALOG, 1, 3, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(s42_parse(buf, (size_t)n, &f, NULL), 0);
    assert_int_equal(f.adr, 1); /* the master's header */
    assert_int_equal(f.info_len, 1);
    assert_int_equal(f.info[0], 3); /* the target */
    n = s42_request_via(pace, S42_CID2_ANALOG, 1, 0xFF, buf, sizeof buf);
    assert_int_equal(s42_parse(buf, (size_t)n, &f, NULL), 0);
    assert_int_equal(f.info[0], 0xFF);
    /* the ordinary request when target is the master */
    char plain[64];
    int m = s42_request(pace, S42_CID2_ANALOG, 2, plain, sizeof plain);
    assert_int_equal(s42_request_via(pace, S42_CID2_ANALOG, 2, 2, buf, sizeof buf), m);
    assert_memory_equal(buf, plain, (size_t)m);
    /* Daren and Seplos name no target; identity commands take none */
    assert_int_equal(s42_request_via(s42_variant_find("daren"), S42_CID2_ANALOG, 1, 2, buf,
                                     sizeof buf),
                     -S42_E_UNSUPPORTED);
    assert_int_equal(s42_request_via(pace, S42_CID2_PACE_SERIAL, 1, 2, buf, sizeof buf),
                     -S42_E_UNSUPPORTED);
    assert_true(s42_has_relay(pace));
    assert_true(s42_has_relay(s42_variant_find("pylontech")));
    assert_false(s42_has_relay(s42_variant_find("seplos")));
}

static void round_trip(const char *proto, size_t count)
{
    const struct s42_variant *v = s42_variant_find(proto);
    struct sample in[8], out[8];
    for (size_t i = 0; i < count; i++) {
        struct sim_pack p;
        sim_pack_init(&p, SEED, (uint8_t)(1 + i), 16);
        sim_pack_sample(&p, &in[i]);
    }
    uint8_t info[S42_MAX_INFO];
    int n = s42_encode_analog_all(v, in, count, info, sizeof info);
    assert_true(n > 0);
    assert_int_equal(info[1], count);
    char frame[S42_MAX_FRAME + 2];
    int len = s42_build(frame, sizeof frame, s42_variant_ver(v), 1, s42_variant_cid1(v), 0, info,
                        (size_t)n);
    assert_true(len > 0);
    struct s42_frame f;
    assert_int_equal(s42_parse(frame, (size_t)len, &f, NULL), 0);
    size_t got = 0;
    assert_int_equal(s42_decode_analog_all(v, &f, 1, out, 8, &got, NULL), 0);
    assert_int_equal(got, count);
    for (size_t i = 0; i < count; i++) {
        struct sample want;
        fixture_wire_sample(proto, SEED, (uint8_t)(1 + i), &want);
        assert_int_equal(out[i].address, 1 + i);
        assert_int_equal(out[i].voltage_mv, want.voltage_mv);
        assert_int_equal(out[i].current_ma, want.current_ma);
        assert_int_equal(out[i].remaining_mah, want.remaining_mah);
        assert_int_equal(out[i].cycles, want.cycles);
        assert_memory_equal(out[i].cell_mv, want.cell_mv, sizeof want.cell_mv[0] * 16);
        assert_memory_equal(out[i].temp_dc, want.temp_dc, sizeof want.temp_dc[0] * want.ntemps);
    }
    /* more blocks than room, a cut answer: errors, not a wrong sample */
    assert_int_equal(s42_decode_analog_all(v, &f, 1, out, count - 1 ? count - 1 : 0, &got, NULL),
                     -S42_E_COUNT);
    f.info_len -= 40;
    assert_int_not_equal(s42_decode_analog_all(v, &f, 1, out, 8, &got, NULL), 0);
}

static void test_all_packs_round_trip(void **state)
{
    (void)state;
    round_trip("pace", 1);
    round_trip("pace", 4);
    round_trip("pylontech", 3);
}

/* ---------------- the driver against the simulator's master pack ---------------- */

struct chain {
    struct sim *sim;
    pthread_t thread;
    volatile int stop;
    int rc;
    struct bus *bus;
};

static void *serve(void *arg)
{
    struct chain *c = arg;
    c->rc = sim_run(c->sim, &c->stop);
    return NULL;
}

static void chain_start(struct chain *c, const char *proto, int npacks, int relay, int baud)
{
    memset(c, 0, sizeof *c);
    struct sim_opts o;
    sim_opts_default(&o);
    o.variant = s42_variant_find(proto);
    o.naddresses = (size_t)npacks;
    for (int i = 0; i < npacks; i++)
        o.addresses[i] = (uint8_t)(1 + i);
    o.seed = SEED;
    o.baud = baud;
    o.turnaround_ms = 2;
    o.time_scale = 0;
    o.relay = relay;
    assert_int_equal(sim_new(&o, &c->sim), 0);
    assert_int_equal(pthread_create(&c->thread, NULL, serve, c), 0);
    struct serial_opts so;
    serial_opts_default(&so);
    so.baud = baud;
    so.timeout_ms = baud < 19200 ? 1500 : 300;
    so.gap_ms = 2;
    struct driver_error e;
    assert_int_equal(bus_open(sim_slave_path(c->sim), proto, &so, &c->bus, &e), 0);
}

static void chain_stop(struct chain *c)
{
    bus_close(c->bus);
    c->stop = 1;
    assert_int_equal(pthread_join(c->thread, NULL), 0);
    assert_int_equal(c->rc, 0);
    sim_free(c->sim);
}

static void test_driver_through_master(void **state)
{
    (void)state;
    struct chain c;
    chain_start(&c, "pace", 4, 1, 115200);
    struct sample all[8];
    size_t n;
    struct driver_error e;
    assert_int_equal(bus_poll_all(c.bus, 1, all, 8, &n, &e), 0);
    assert_int_equal(n, 4);
    for (uint8_t adr = 1; adr <= 4; adr++) {
        struct sample want, one, merged;
        fixture_wire_sample("pace", SEED, adr, &want);
        assert_int_equal(all[adr - 1].voltage_mv, want.voltage_mv);
        assert_int_equal(all[adr - 1].address, adr);
        /* and the 0x44 through the master completes it */
        assert_int_equal(bus_poll_alarms(c.bus, 1, adr, NULL, &all[adr - 1], &merged, &e), 0);
        assert_true(merged.has & SAMPLE_HAS_ALARMS);
        assert_int_equal(merged.alarms, want.alarms);
        /* each pack relayed by address: the same values */
        assert_int_equal(bus_poll_via(c.bus, 1, adr, NULL, &one, &e), 0);
        assert_int_equal(one.address, adr);
        assert_int_equal(one.voltage_mv, want.voltage_mv);
        assert_memory_equal(one.cell_mv, want.cell_mv, sizeof want.cell_mv[0] * 16);
    }
    /* behind the master, a pack asked at its own address stays silent */
    struct sample s;
    assert_int_not_equal(bus_poll(c.bus, 3, NULL, &s, &e), 0);
    assert_int_equal(e.status, DRIVER_TIMEOUT);
    /* the master itself answers as any pack */
    assert_int_equal(bus_poll(c.bus, 1, NULL, &s, &e), 0);
    chain_stop(&c);

    /* a master that relays but refuses the all-packs request */
    chain_start(&c, "pace", 2, SIM_RELAY_NO_ALL, 115200);
    assert_int_not_equal(bus_poll_all(c.bus, 1, all, 8, &n, &e), 0);
    assert_int_equal(e.status, DRIVER_REFUSED);
    assert_int_equal(bus_poll_via(c.bus, 1, 2, NULL, &s, &e), 0);
    chain_stop(&c);

    /* Modbus and Daren cannot be relayed */
    chain_start(&c, "daren", 2, 0, 115200);
    assert_false(bus_can_relay(c.bus));
    assert_int_not_equal(bus_poll_via(c.bus, 1, 2, NULL, &s, &e), 0);
    assert_int_equal(e.err, -EOPNOTSUPP);
    chain_stop(&c);
}

/* Bus time per pack and round, at 9600 baud, as the poller spends it: per address, 0x42 and
 * 0x44 to each pack; through the master, one all-packs 0x42 for the chain and each pack's 0x44
 * relayed; and relayed one by one (0x42 and 0x44 through the master: the fallback). */
static void test_bus_time_per_pack(void **state)
{
    (void)state;
    const int rounds = 3;
    for (int npacks = 4; npacks <= 8; npacks += 4) {
        struct chain c;
        struct driver_error e;
        struct sample s, all[8];
        size_t n;
        chain_start(&c, "pace", npacks, 0, 9600);
        long long t0 = now_ms();
        for (int r = 0; r < rounds; r++)
            for (int adr = 1; adr <= npacks; adr++)
                if (bus_poll(c.bus, (uint8_t)adr, NULL, &s, &e) != 0)
                    fail_msg("pack %d: %s", adr, e.msg);
        double per_address = (double)(now_ms() - t0) / (rounds * npacks);
        chain_stop(&c);
        chain_start(&c, "pace", npacks, 1, 9600);
        t0 = now_ms();
        for (int r = 0; r < rounds; r++) {
            assert_int_equal(bus_poll_all(c.bus, 1, all, 8, &n, &e), 0);
            assert_int_equal(n, (size_t)npacks);
            for (int adr = 1; adr <= npacks; adr++)
                assert_int_equal(
                    bus_poll_alarms(c.bus, 1, (uint8_t)adr, NULL, &all[adr - 1], &s, &e), 0);
        }
        double via_all = (double)(now_ms() - t0) / (rounds * npacks);
        t0 = now_ms();
        for (int r = 0; r < rounds; r++)
            for (int adr = 1; adr <= npacks; adr++)
                assert_int_equal(bus_poll_via(c.bus, 1, (uint8_t)adr, NULL, &s, &e), 0);
        double via_relay = (double)(now_ms() - t0) / (rounds * npacks);
        chain_stop(&c);
        print_message("bus time per pack and round, pace, %d packs at 9600 baud (0x42 + 0x44): "
                      "per address %.0f ms, via master (all-packs 0x42) %.0f ms, via master "
                      "relayed one by one %.0f ms\n",
                      npacks, per_address, via_all, via_relay);
        assert_true(via_all < per_address); /* one request and one header for the chain */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_via),
        cmocka_unit_test(test_all_packs_round_trip),
        cmocka_unit_test(test_driver_through_master),
        cmocka_unit_test(test_bus_time_per_pack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
