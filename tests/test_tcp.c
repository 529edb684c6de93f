/* test_tcp: the bus over the network (issue 17, item 1). The device texts (endpoint.c); Service
 * 42 and Modbus RTU through socat between a TCP port and the simulator's pty (a serial server
 * in transparent mode); Modbus TCP against libmodbus's own TCP server; and the ways a gateway
 * fails: refused, no answer to the connect (a full backlog), a stop during the connect, a server
 * that accepts and never answers (a timeout per request, bounded: the bus does not stall), and
 * one that drops the connection in the middle of a frame (a port error, as an unplug). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <modbus.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "bus.h"
#include "endpoint.h"
#include "fixture.h"
#include "mbmap.h"
#include "mbsim.h"
#include "net.h"
#include "sim.h"

#define SEED    11
#define TIMEOUT 300
#define SLACK   3000 /* ASan, a loaded machine: generous, but a stall would be far longer */

#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        if (strstr((hay), (needle)) == NULL)                                                       \
            fail_msg("\"%s\" does not contain \"%s\"", (hay), (needle));                           \
    } while (0)

static void opts(struct serial_opts *so)
{
    serial_opts_default(so);
    so->baud = 115200;
    so->timeout_ms = TIMEOUT;
    so->gap_ms = 2;
}

static void device(char *buf, size_t cap, const char *scheme, int port)
{
    snprintf(buf, cap, "%s://127.0.0.1:%d", scheme, port);
}

/* ---------------- endpoint texts ---------------- */

static void test_endpoint_parse(void **state)
{
    (void)state;
    struct endpoint ep;
    char why[200];
    assert_int_equal(endpoint_parse("/dev/ttyUSB0", &ep, why, sizeof why), 0);
    assert_int_equal(ep.kind, ENDPOINT_SERIAL);
    assert_int_equal(endpoint_parse("tcp://10.0.0.7:4196", &ep, why, sizeof why), 0);
    assert_int_equal(ep.kind, ENDPOINT_TCP);
    assert_string_equal(ep.host, "10.0.0.7");
    assert_string_equal(ep.port, "4196");
    assert_int_equal(endpoint_parse("tcp://[fd00::7]:8899", &ep, why, sizeof why), 0);
    assert_string_equal(ep.host, "fd00::7");
    assert_string_equal(ep.port, "8899");
    assert_int_equal(endpoint_parse("modbus-tcp://gw.local", &ep, why, sizeof why), 0);
    assert_int_equal(ep.kind, ENDPOINT_MODBUS_TCP);
    assert_string_equal(ep.host, "gw.local");
    assert_string_equal(ep.port, "502");
    assert_int_equal(endpoint_parse("tcp://10.0.0.7", &ep, why, sizeof why), -EINVAL);
    assert_contains(why, "has no port");
    assert_int_equal(endpoint_parse("tcp://10.0.0.7:70000", &ep, why, sizeof why), -EINVAL);
    assert_contains(why, "1 to 65535");
    assert_int_equal(endpoint_parse("udp://10.0.0.7:1", &ep, why, sizeof why), -EINVAL);
    assert_contains(why, "not a device scheme");
    assert_int_equal(endpoint_parse("tcp://:4196", &ep, why, sizeof why), -EINVAL);
    assert_contains(why, "host is missing");
    assert_int_equal(endpoint_parse("tcp://a b:1", &ep, why, sizeof why), -EINVAL);
    assert_true(endpoint_is_network("tcp://x"));
    assert_false(endpoint_is_network("/dev/ttyS0"));
}

/* ---------------- through socat to the simulator ---------------- */

/* A simulator (Service 42, or Modbus when proto is "modbus") behind socat on a TCP port. */
struct bench {
    struct sim *sim;
    struct mbsim *mb;
    pthread_t thread;
    volatile int stop;
    int rc;
    pid_t socat;
    int port;
    const char *proto;
    char dev[64];          /* tcp://127.0.0.1:port */
    struct serial_opts so; /* the tests' serial settings */
};

static void *serve(void *arg)
{
    struct bench *b = arg;
    b->rc = b->sim ? sim_run(b->sim, &b->stop) : mbsim_run(b->mb, &b->stop);
    return NULL;
}

static void bench_start(struct bench *b, const char *proto, const char *addrs)
{
    struct sim_opts o;
    memset(b, 0, sizeof *b);
    sim_opts_default(&o);
    o.variant = s42_variant_find(proto);
    o.naddresses = (size_t)sim_parse_addresses(addrs, o.addresses, SIM_MAX_PACKS);
    o.seed = SEED;
    o.baud = 115200;
    o.turnaround_ms = 2;
    o.time_scale = 0;
    if (o.variant == NULL)
        assert_int_equal(mbsim_new(&o, &b->mb), 0);
    else
        assert_int_equal(sim_new(&o, &b->sim), 0);
    assert_int_equal(pthread_create(&b->thread, NULL, serve, b), 0);
    b->port = net_free_port();
    b->socat = net_start_socat(b->port, b->sim ? sim_slave_path(b->sim) : mbsim_slave_path(b->mb),
                               0);
    b->proto = proto;
    device(b->dev, sizeof b->dev, "tcp", b->port);
    opts(&b->so);
}

/* A bus of the bench's protocol through its serial server, opened. */
static struct bus *bench_open(struct bench *b)
{
    struct bus *bus;
    struct driver_error e;
    if (bus_open(b->dev, b->proto, &b->so, &bus, &e) != 0)
        fail_msg("cannot open %s: %s", b->dev, e.msg);
    return bus;
}

static void bench_stop(struct bench *b)
{
    net_stop(b->socat);
    b->stop = 1;
    assert_int_equal(pthread_join(b->thread, NULL), 0);
    assert_int_equal(b->rc, 0);
    sim_free(b->sim);
    mbsim_free(b->mb);
}

static void test_s42_over_tcp(void **state)
{
    (void)state;
    struct bench b;
    bench_start(&b, "pace", "1-3");
    struct bus *bus = bench_open(&b);
    struct driver_error e;
    assert_true(bus_is_network(bus));
    for (int round = 0; round < 3; round++) {
        for (uint8_t adr = 1; adr <= 3; adr++) {
            struct sample got, want;
            if (bus_poll(bus, adr, NULL, &got, &e) != 0)
                fail_msg("poll of %u over tcp: %s", adr, e.msg);
            fixture_wire_sample("pace", SEED, adr, &want);
            assert_int_equal(got.address, adr);
            assert_int_equal(got.voltage_mv, want.voltage_mv);
            assert_int_equal(got.current_ma, want.current_ma);
            assert_memory_equal(got.cell_mv, want.cell_mv, sizeof want.cell_mv[0] * 16);
            assert_int_equal(got.alarms, want.alarms);
        }
    }
    struct s42_identity id;
    assert_int_equal(bus_identify(bus, 2, &id, &e), 0);
    assert_string_equal(id.serial, "SIM11-2");
    /* a pack that is not there: a timeout, bounded, and the next pack still answers */
    long long t0 = net_now_ms();
    struct sample s;
    assert_int_not_equal(bus_poll(bus, 9, NULL, &s, &e), 0);
    assert_int_equal(e.status, DRIVER_TIMEOUT);
    assert_true(net_now_ms() - t0 < TIMEOUT + SLACK);
    assert_int_equal(bus_poll(bus, 1, NULL, &s, &e), 0);
    bus_close(bus);
    bench_stop(&b);
}

/* socat ends with its connection (no fork): the next exchange finds the connection closed. */
static void test_s42_server_gone(void **state)
{
    (void)state;
    struct bench b;
    bench_start(&b, "daren", "1");
    struct bus *bus = bench_open(&b);
    struct driver_error e;
    struct sample s;
    assert_int_equal(bus_poll(bus, 1, NULL, &s, &e), 0);
    net_stop(b.socat);
    b.socat = 0;
    assert_int_not_equal(bus_poll(bus, 1, NULL, &s, &e), 0);
    assert_int_equal(e.status, DRIVER_PORT);
    assert_contains(e.msg, "closed the connection");
    bus_close(bus);
    /* and reconnecting finds nobody: refused, said so */
    assert_int_equal(bus_open(b.dev, "daren", &b.so, &bus, &e), -ECONNREFUSED);
    assert_int_equal(e.status, DRIVER_PORT);
    assert_contains(e.msg, "connection refused");
    bench_stop(&b);
}

static void test_modbus_rtu_over_tcp(void **state)
{
    (void)state;
    struct bench b;
    bench_start(&b, "modbus", "1-2");
    struct bus *bus = bench_open(&b);
    struct driver_error e;
    for (int round = 0; round < 3; round++) {
        for (uint8_t adr = 1; adr <= 2; adr++) {
            struct sample got, want;
            if (bus_poll(bus, adr, NULL, &got, &e) != 0)
                fail_msg("poll of slave %u over tcp: %s", adr, e.msg);
            fixture_modbus_sample(SEED, adr, &want);
            assert_int_equal(got.voltage_mv, want.voltage_mv);
            assert_int_equal(got.current_ma, want.current_ma);
            assert_int_equal(got.soc_cpct, want.soc_cpct);
            assert_memory_equal(got.cell_mv, want.cell_mv, sizeof want.cell_mv[0] * 16);
        }
    }
    struct sample s;
    assert_int_not_equal(bus_poll(bus, 7, NULL, &s, &e), 0);
    assert_int_equal(e.status, DRIVER_TIMEOUT);
    net_stop(b.socat);
    b.socat = 0;
    assert_int_not_equal(bus_poll(bus, 1, NULL, &s, &e), 0);
    assert_int_equal(e.status, DRIVER_PORT);
    bus_close(bus);
    bench_stop(&b);
}

/* ---------------- Modbus TCP: libmodbus's server ---------------- */

struct mbtcp_server {
    modbus_t *ctx;
    modbus_mapping_t *map;
    int lfd, port;
    pthread_t thread;
    volatile int stop;
    int requests;
};

static void *serve_mbtcp(void *arg)
{
    struct mbtcp_server *g = arg;
    uint8_t q[MODBUS_TCP_MAX_ADU_LENGTH];
    while (!g->stop) {
        struct pollfd pl = {.fd = g->lfd, .events = POLLIN};
        if (poll(&pl, 1, 50) <= 0)
            continue;
        int lfd = g->lfd;
        if (modbus_tcp_accept(g->ctx, &lfd) < 0)
            continue;
        while (!g->stop) {
            int n = modbus_receive(g->ctx, q);
            if (n < 0 && errno == ETIMEDOUT)
                continue;
            if (n < 0)
                break;
            if (n > 0) {
                g->requests++;
                modbus_reply(g->ctx, q, n, g->map);
            }
        }
        close(modbus_get_socket(g->ctx));
    }
    return NULL;
}

static void test_modbus_tcp(void **state)
{
    (void)state;
    struct mbtcp_server g;
    memset(&g, 0, sizeof g);
    g.port = net_free_port();
    char port[8];
    snprintf(port, sizeof port, "%d", g.port);
    g.ctx = modbus_new_tcp_pi("127.0.0.1", port);
    assert_non_null(g.ctx);
    modbus_set_indication_timeout(g.ctx, 0, 100000);
    g.lfd = modbus_tcp_pi_listen(g.ctx, 1);
    assert_true(g.lfd >= 0);
    g.map = modbus_mapping_new(0, 0, MBMAP_NREGS, 0);
    assert_non_null(g.map);
    struct sim_pack p;
    struct sample model, want, got;
    sim_pack_init(&p, SEED, 1, 16);
    sim_pack_sample(&p, &model);
    assert_int_equal(mbmap_encode(&model, g.map->tab_registers), 0);
    fixture_modbus_sample(SEED, 1, &want);
    assert_int_equal(pthread_create(&g.thread, NULL, serve_mbtcp, &g), 0);

    char dev[64];
    device(dev, sizeof dev, "modbus-tcp", g.port);
    struct serial_opts so;
    opts(&so);
    struct bus *bus;
    struct driver_error e;
    /* Modbus TCP is not a byte stream for Service 42 */
    assert_int_equal(bus_open(dev, "pace", &so, &bus, &e), -EPROTONOSUPPORT);
    assert_contains(e.msg, "protocol modbus");
    assert_int_equal(bus_open(dev, "modbus", &so, &bus, &e), 0);
    for (int i = 0; i < 5; i++) {
        if (bus_poll(bus, 1, NULL, &got, &e) != 0)
            fail_msg("Modbus TCP poll: %s", e.msg);
        assert_int_equal(got.voltage_mv, want.voltage_mv);
        assert_int_equal(got.current_ma, want.current_ma);
        assert_memory_equal(got.cell_mv, want.cell_mv, sizeof want.cell_mv[0] * 16);
    }
    assert_int_equal(g.requests, 5);
    bus_close(bus);
    g.stop = 1;
    pthread_join(g.thread, NULL);
    modbus_mapping_free(g.map);
    close(g.lfd);
    modbus_free(g.ctx);
}

/* ---------------- gateways that fail ---------------- */

/* Accepts, takes every request, answers none: each poll is one timeout, and no longer. */
static void test_gateway_never_answers(void **state)
{
    (void)state;
    struct net_fake g;
    net_fake_start(&g, NULL, 0);
    static const char *const setups[][2] = {
        {"tcp", "pace"}, {"tcp", "modbus"}, {"modbus-tcp", "modbus"}};
    for (size_t k = 0; k < sizeof setups / sizeof setups[0]; k++) {
        char dev[64];
        device(dev, sizeof dev, setups[k][0], g.port);
        struct serial_opts so;
        opts(&so);
        struct bus *bus;
        struct driver_error e;
        assert_int_equal(bus_open(dev, setups[k][1], &so, &bus, &e), 0);
        for (int i = 0; i < 3; i++) {
            struct sample s;
            long long t0 = net_now_ms();
            assert_int_not_equal(bus_poll(bus, 1, NULL, &s, &e), 0);
            long long took = net_now_ms() - t0;
            if (e.status != DRIVER_TIMEOUT)
                fail_msg("%s %s: %s", setups[k][0], setups[k][1], e.msg);
            assert_true(took >= TIMEOUT - 5);
            assert_true(took < TIMEOUT + SLACK);
        }
        bus_close(bus);
    }
    net_fake_stop(&g);
}

/* Sends half of a real answer, then closes: a port error with the sentence, not a timeout. */
static void test_gateway_drops_mid_frame(void **state)
{
    (void)state;
    const struct s42_variant *v = s42_variant_find("pace");
    struct sim_pack p;
    struct sample model;
    uint8_t info[S42_MAX_INFO];
    char frame[S42_MAX_FRAME + 2];
    sim_pack_init(&p, SEED, 1, 16);
    sim_pack_sample(&p, &model);
    int n = s42_encode_analog(v, &model, info, sizeof info);
    assert_true(n > 0);
    int len = s42_build(frame, sizeof frame, s42_variant_ver(v), 1, s42_variant_cid1(v), 0, info,
                        (size_t)n);
    assert_true(len > 40);
    struct net_fake g;
    net_fake_start(&g, frame, (size_t)len / 2);
    char dev[64];
    device(dev, sizeof dev, "tcp", g.port);
    struct serial_opts so;
    opts(&so);
    struct bus *bus;
    struct driver_error e;
    struct sample s;
    assert_int_equal(bus_open(dev, "pace", &so, &bus, &e), 0);
    assert_int_not_equal(bus_poll(bus, 1, NULL, &s, &e), 0);
    assert_int_equal(e.status, DRIVER_PORT);
    assert_contains(e.msg, "closed the connection");
    bus_close(bus);
    net_fake_stop(&g);

    /* Modbus RTU over TCP: the first 20 bytes of a 79-byte register answer */
    static const char mb_half[20] = {0x01, 0x03, 0x4A, 0x00, 0x10};
    net_fake_start(&g, mb_half, sizeof mb_half);
    device(dev, sizeof dev, "tcp", g.port);
    assert_int_equal(bus_open(dev, "modbus", &so, &bus, &e), 0);
    assert_int_not_equal(bus_poll(bus, 1, NULL, &s, &e), 0);
    if (e.status != DRIVER_PORT)
        fail_msg("modbus, half a frame then closed: %s", e.msg);
    bus_close(bus);
    net_fake_stop(&g);
}

/* A listener whose backlog is full drops further SYNs: the connect waits its timeout. */
static void test_connect_timeout(void **state)
{
    (void)state;
    int port;
    int lfd = net_listen(0, &port);
    int fillers[4], nf = 0;
    for (; nf < 4; nf++) { /* fill the accept queue (its size is backlog + 1) */
        fillers[nf] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        (void)connect(fillers[nf], (struct sockaddr *)&a, sizeof a);
    }
    usleep(100000);
    char dev[64];
    device(dev, sizeof dev, "tcp", port);
    struct serial_opts so;
    opts(&so);
    so.connect_timeout_ms = 400;
    struct bus *bus;
    struct driver_error e;
    long long t0 = net_now_ms();
    int rc = bus_open(dev, "daren", &so, &bus, &e);
    long long took = net_now_ms() - t0;
    if (rc == 0)
        bus_close(bus);
    assert_int_equal(rc, -ETIMEDOUT);
    assert_contains(e.msg, "no answer to the connection within 400 ms");
    assert_true(took >= 390 && took < 400 + SLACK);

    /* and a stop during the wait ends it at once */
    int efd = eventfd(0, EFD_CLOEXEC);
    assert_true(efd >= 0);
    assert_int_equal(eventfd_write(efd, 1), 0);
    so.connect_timeout_ms = 10000;
    so.cancel_fd = efd;
    t0 = net_now_ms();
    assert_int_equal(bus_open(dev, "modbus", &so, &bus, &e), -ECANCELED);
    assert_true(net_now_ms() - t0 < SLACK);
    close(efd);
    for (int i = 0; i < nf; i++)
        close(fillers[i]);
    close(lfd);
}

static void test_refused_and_rs485(void **state)
{
    (void)state;
    char dev[64];
    device(dev, sizeof dev, "tcp", net_free_port());
    struct serial_opts so;
    opts(&so);
    struct bus *bus;
    struct driver_error e;
    assert_int_equal(bus_open(dev, "modbus", &so, &bus, &e), -ECONNREFUSED);
    assert_contains(e.msg, "connection refused");
    so.rs485 = 1; /* the serial server drives its transceiver */
    assert_int_equal(bus_open(dev, "daren", &so, &bus, &e), -EINVAL);
    assert_int_equal(bus_open("tcp://nohost", "daren", &so, &bus, &e), -EINVAL);
    assert_contains(e.msg, "has no port");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoint_parse),
        cmocka_unit_test(test_s42_over_tcp),
        cmocka_unit_test(test_s42_server_gone),
        cmocka_unit_test(test_modbus_rtu_over_tcp),
        cmocka_unit_test(test_modbus_tcp),
        cmocka_unit_test(test_gateway_never_answers),
        cmocka_unit_test(test_gateway_drops_mid_frame),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_refused_and_rs485),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
