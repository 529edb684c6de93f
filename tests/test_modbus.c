/* test_modbus: the PACE register map (pure decode/encode, golden values from MODBUS.md), the
 * CRC and the hex-dump parser; the client against canned answers on a bare pty (the request on
 * the wire, foreign and short answers); and the client against the Modbus simulator: values
 * equal the model at register resolution, each fault gives its class and sentence, a dead slave
 * leaves the others' counts alone, libmodbus's own client agrees with the server. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <modbus.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mbpack.h"
#include "mbsim.h"

#define BAUD    115200 /* pacing still applies; keeps the suite quick */
#define TIMEOUT 300
#define SEED    7

#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        if (strstr((hay), (needle)) == NULL)                                                       \
            fail_msg("\"%s\" does not contain \"%s\"", (hay), (needle));                           \
    } while (0)

static void assert_same_sample(const struct sample *a, const struct sample *b)
{
    assert_int_equal(a->address, b->address);
    assert_int_equal(a->has, b->has);
    assert_int_equal(a->voltage_mv, b->voltage_mv);
    assert_int_equal(a->current_ma, b->current_ma);
    assert_int_equal(a->soc_cpct, b->soc_cpct);
    assert_int_equal(a->soh_cpct, b->soh_cpct);
    assert_int_equal(a->remaining_mah, b->remaining_mah);
    assert_int_equal(a->full_mah, b->full_mah);
    assert_int_equal(a->design_mah, b->design_mah);
    assert_int_equal(a->cycles, b->cycles);
    assert_int_equal(a->ncells, b->ncells);
    for (size_t i = 0; i < a->ncells; i++)
        assert_int_equal(a->cell_mv[i], b->cell_mv[i]);
    assert_int_equal(a->ntemps, b->ntemps);
    for (size_t i = 0; i < a->ntemps; i++) {
        assert_int_equal(a->temp_dc[i], b->temp_dc[i]);
        assert_int_equal(a->temp_role[i], b->temp_role[i]);
    }
    assert_int_equal(a->state, b->state);
    assert_int_equal(a->balancing, b->balancing);
    assert_int_equal(a->nraw_status, b->nraw_status);
    assert_memory_equal(a->raw_status, b->raw_status, sizeof a->raw_status);
    assert_int_equal(a->cell_min_mv, b->cell_min_mv);
    assert_int_equal(a->cell_max_mv, b->cell_max_mv);
}

/* ---------------- pure ---------------- */

static void test_crc_golden(void **state)
{
    (void)state;
    const uint8_t req[] = {0x01, 0x03, 0x00, 0x00, 0x00, 0x25}; /* MODBUS.md: ... 84 11 */
    uint16_t crc = mbmap_crc16(req, sizeof req);
    assert_int_equal(crc & 0xFF, 0x84);
    assert_int_equal(crc >> 8, 0x11);
}

/* A 16S pack discharging at 2.25 A, by hand from the MODBUS.md table. */
static void golden_regs(uint16_t r[MBMAP_NREGS])
{
    memset(r, 0, MBMAP_NREGS * sizeof r[0]);
    r[0] = 0xFF1F; /* -225 x 10 mA */
    r[1] = 5243;   /* x 10 mV */
    r[2] = 87;
    r[3] = 99;
    r[4] = 8700;
    r[5] = 10000;
    r[6] = 10500;
    r[7] = 123;
    r[9] = 0x0004; /* a warning bit: kept raw */
    r[10] = 0x0000;
    r[11] = 0x0180; /* charging and discharging enabled */
    r[12] = 0x8001; /* cells 1 and 16 balancing */
    for (int i = 0; i < 16; i++)
        r[15 + i] = (uint16_t)(3270 + i);
    r[31] = 250;    /* 25.0 °C */
    r[32] = 0x8000; /* not measured */
    r[33] = 0xFF9C; /* -10.0 °C */
    r[34] = 1201;   /* 120.1 °C: implausible */
    r[35] = 300;
    r[36] = 0xFE70; /* -40.0 °C: the lowest plausible */
}

static void test_decode_golden(void **state)
{
    (void)state;
    uint16_t r[MBMAP_NREGS];
    struct sample s;
    golden_regs(r);
    assert_int_equal(mbmap_decode(r, &s), 0);
    assert_int_equal(s.current_ma, -2250);
    assert_int_equal(s.voltage_mv, 52430);
    assert_int_equal(s.soc_cpct, 8700);
    assert_int_equal(s.soh_cpct, 9900);
    assert_int_equal(s.remaining_mah, 87000);
    assert_int_equal(s.full_mah, 100000);
    assert_int_equal(s.design_mah, 105000);
    assert_int_equal(s.cycles, 123);
    assert_int_equal(s.nraw_status, 3);
    assert_int_equal(s.raw_status[0], 0x0004);
    assert_int_equal(s.raw_status[1], 0);
    assert_int_equal(s.raw_status[2], 0x0180);
    assert_int_equal(s.state, SAMPLE_STATE_CHG_FET | SAMPLE_STATE_DSG_FET);
    assert_int_equal(s.alarms, 0); /* warning bits are not named: raw only */
    assert_int_equal(s.balancing, 0x8001);
    assert_int_equal(s.ncells, 16);
    assert_int_equal(s.cell_mv[15], 3285);
    assert_int_equal(s.cell_min_mv, 3270);
    assert_int_equal(s.cell_diff_mv, 15);
    assert_int_equal(s.ntemps, 4);
    const int32_t t[] = {250, -100, 300, -400};
    const uint8_t role[] = {SAMPLE_TEMP_CELL, SAMPLE_TEMP_CELL, SAMPLE_TEMP_MOS,
                            SAMPLE_TEMP_AMBIENT};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(s.temp_dc[i], t[i]);
        assert_int_equal(s.temp_role[i], role[i]);
    }
    assert_int_equal(s.has, SAMPLE_HAS_ANALOG | SAMPLE_HAS_ALARMS | SAMPLE_HAS_BALANCE);

    r[11] = 0x0080;
    mbmap_decode(r, &s);
    assert_int_equal(s.state, SAMPLE_STATE_CHG_FET);
}

static void test_decode_cell_count(void **state)
{
    (void)state;
    uint16_t r[MBMAP_NREGS];
    struct sample s;
    golden_regs(r);
    r[30] = 0; /* a 15S pack */
    mbmap_decode(r, &s);
    assert_int_equal(s.ncells, 15);
    assert_int_equal(s.cell_max_mv, 3284);
    r[25] = 0xFFFF; /* the count stops at the first empty register */
    mbmap_decode(r, &s);
    assert_int_equal(s.ncells, 10);
    r[15] = 0;
    mbmap_decode(r, &s);
    assert_int_equal(s.ncells, 0);
    assert_int_equal(s.cell_min_mv, SAMPLE_ABSENT);
}

static void test_encode_model(void **state)
{
    (void)state;
    for (uint8_t adr = 1; adr <= 8; adr++) {
        struct sim_pack p;
        struct sample m, s, again;
        uint16_t r[MBMAP_NREGS], r2[MBMAP_NREGS];
        sim_pack_init(&p, SEED, adr, adr % 2 ? 16 : 15);
        sim_pack_step(&p, 100.0 * adr);
        sim_pack_sample(&p, &m);
        assert_int_equal(mbmap_encode(&m, r), 0);
        mbmap_decode(r, &s);
        assert_true(abs(s.voltage_mv - m.voltage_mv) <= 5);
        assert_int_equal(s.current_ma, m.current_ma);
        assert_true(abs(s.soc_cpct - m.soc_cpct) <= 50);
        assert_true(abs(s.soh_cpct - m.soh_cpct) <= 50);
        assert_int_equal(s.remaining_mah, m.remaining_mah);
        assert_int_equal(s.full_mah, m.full_mah);
        assert_int_equal(s.cycles, m.cycles);
        assert_int_equal(s.ncells, m.ncells);
        assert_memory_equal(s.cell_mv, m.cell_mv, m.ncells * sizeof m.cell_mv[0]);
        assert_int_equal(s.ntemps, 6);
        assert_memory_equal(s.temp_dc, m.temp_dc, 6 * sizeof m.temp_dc[0]);
        assert_int_equal(s.balancing, m.balancing);
        /* at register resolution the round trip is exact */
        assert_int_equal(mbmap_encode(&s, r2), 0);
        assert_memory_equal(r, r2, sizeof r);
        mbmap_decode(r2, &again);
        assert_same_sample(&s, &again);
    }
    struct sample bad;
    uint16_t r[MBMAP_NREGS];
    sample_init(&bad);
    bad.ncells = 17;
    assert_int_equal(mbmap_encode(&bad, r), -ERANGE);
    sample_init(&bad);
    bad.voltage_mv = 700000;
    assert_int_equal(mbmap_encode(&bad, r), -ERANGE);
    sample_init(&bad);
    bad.current_ma = -2250;
    assert_int_equal(mbmap_encode(&bad, r), 0);
    assert_int_equal(r[0], 0xFF1F);
    assert_int_equal(r[31], 0x8000);
}

static size_t put_frame(uint8_t *out, const uint8_t *pdu, size_t n)
{
    memcpy(out, pdu, n);
    uint16_t crc = mbmap_crc16(out, n);
    out[n] = (uint8_t)(crc & 0xFF);
    out[n + 1] = (uint8_t)(crc >> 8);
    return n + 2;
}

/* The answer frame of slave with registers r (count registers). */
static size_t answer_frame(uint8_t *out, uint8_t slave, uint8_t fn, const uint16_t *r, size_t count)
{
    uint8_t pdu[3 + 2 * MBMAP_NREGS] = {slave, fn, (uint8_t)(2 * count)};
    for (size_t i = 0; i < count; i++) {
        pdu[3 + 2 * i] = (uint8_t)(r[i] >> 8);
        pdu[4 + 2 * i] = (uint8_t)(r[i] & 0xFF);
    }
    return put_frame(out, pdu, 3 + 2 * count);
}

static void test_parse_hex(void **state)
{
    (void)state;
    uint16_t r[MBMAP_NREGS], got[MBMAP_NREGS];
    uint8_t f[100], slave = 0;
    char text[512], why[128];
    golden_regs(r);
    size_t n = answer_frame(f, 3, 0x03, r, MBMAP_NREGS);
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, i % 2 ? "%02x:" : "0x%02X ", f[i]);
    assert_int_equal(mbmap_parse_hex(text, got, &slave, why, sizeof why), 0);
    assert_memory_equal(got, r, sizeof r);
    assert_int_equal(slave, 3);
    /* the registers alone */
    len = 0;
    for (size_t i = 0; i < MBMAP_NREGS; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%04X ", r[i]);
    memset(got, 0, sizeof got);
    assert_int_equal(mbmap_parse_hex(text, got, &slave, why, sizeof why), 0);
    assert_memory_equal(got, r, sizeof r);
    assert_int_equal(slave, 0);
    f[n - 1] ^= 1;
    len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%02X", f[i]);
    assert_int_equal(mbmap_parse_hex(text, got, NULL, why, sizeof why), -EINVAL);
    assert_contains(why, "CRC");
    assert_int_equal(mbmap_parse_hex("01 03 4", got, NULL, why, sizeof why), -EINVAL);
    assert_contains(why, "odd");
    assert_int_equal(mbmap_parse_hex("01 03 zz", got, NULL, why, sizeof why), -EINVAL);
}

static void test_classify(void **state)
{
    (void)state;
    assert_int_equal(mbpack_classify(-ETIMEDOUT), DRIVER_TIMEOUT);
    assert_int_equal(mbpack_classify(EMBBADCRC), DRIVER_CHECKSUM);
    assert_int_equal(mbpack_classify(-EMBXILADD), DRIVER_REFUSED);
    assert_int_equal(mbpack_classify(-EMBXILFUN), DRIVER_REFUSED);
    assert_int_equal(mbpack_classify(-EMBXSFAIL), DRIVER_REFUSED);
    assert_int_equal(mbpack_classify(-EMBBADSLAVE), DRIVER_FOREIGN);
    assert_int_equal(mbpack_classify(-EMBBADDATA), DRIVER_MALFORMED);
    assert_int_equal(mbpack_classify(-EMBMDATA), DRIVER_MALFORMED);
    assert_int_equal(mbpack_classify(-EIO), DRIVER_PORT);
    assert_int_equal(mbpack_classify(-ENODEV), DRIVER_PORT);
    assert_int_equal(mbpack_classify(-EBADF), DRIVER_PORT);
    assert_string_equal(mbmap_exception_name(2), "illegal data address");
    assert_string_equal(mbmap_exception_name(1), "illegal function");
    assert_string_equal(mbmap_exception_name(0x91), "unknown exception");
}

/* ---------------- the client against canned answers on a bare pty ---------------- */

struct canned {
    int master;
    uint8_t out[400];
    size_t nout;
    uint8_t req[64];
    ssize_t nreq;
};

/* Reads one request and writes the canned bytes (nothing when nout is 0). */
static void *respond(void *arg)
{
    struct canned *c = arg;
    struct pollfd pfd = {.fd = c->master, .events = POLLIN};
    if (poll(&pfd, 1, 2000) == 1) {
        usleep(5000); /* the whole request */
        c->nreq = read(c->master, c->req, sizeof c->req);
        if (c->nout > 0 && write(c->master, c->out, c->nout) != (ssize_t)c->nout)
            c->nreq = -1;
    }
    return NULL;
}

static int canned_exchange(struct canned *c, struct mbpack *mb, struct driver_error *e)
{
    pthread_t th;
    uint16_t regs[MBMAP_NREGS];
    assert_int_equal(pthread_create(&th, NULL, respond, c), 0);
    int rc = mbpack_read_regs(mb, 1, regs, e);
    pthread_join(th, NULL);
    return rc;
}

static void test_canned(void **state)
{
    (void)state;
    int master, slave;
    char path[64];
    assert_int_equal(openpty(&master, &slave, NULL, NULL, NULL), 0);
    assert_int_equal(ttyname_r(slave, path, sizeof path), 0);
    struct serial_opts o;
    serial_opts_default(&o);
    o.timeout_ms = TIMEOUT;
    o.gap_ms = 0;
    struct mbpack *mb;
    struct driver_error e;
    o.rs485 = 1; /* a pty has no RS485 mode: the serial module's sentence */
    assert_int_equal(mbpack_open(path, &o, &mb, &e), -EOPNOTSUPP);
    assert_contains(e.msg, "refuses kernel RS485 mode");
    o.rs485 = 0;
    assert_int_equal(mbpack_open(path, &o, &mb, &e), 0);
    uint16_t r[MBMAP_NREGS];
    golden_regs(r);

    /* nobody answers: the request on the wire is MODBUS.md's example */
    struct canned c = {.master = master};
    assert_int_equal(canned_exchange(&c, mb, &e), -ETIMEDOUT);
    assert_int_equal(c.nreq, 8);
    const uint8_t golden[] = {0x01, 0x03, 0x00, 0x00, 0x00, 0x25, 0x84, 0x11};
    assert_memory_equal(c.req, golden, sizeof golden);

    /* only another slave answers */
    c.nout = answer_frame(c.out, 2, 0x03, r, MBMAP_NREGS);
    assert_int_not_equal(canned_exchange(&c, mb, &e), 0);
    assert_int_equal(e.status, DRIVER_FOREIGN);
    assert_contains(e.msg, "slave 2 answered");
    /* a late answer of another slave, then ours: skipped */
    c.nout += answer_frame(c.out + c.nout, 1, 0x03, r, MBMAP_NREGS);
    assert_int_equal(canned_exchange(&c, mb, &e), 0);
    /* too few registers, another function, an exception Modbus does not define */
    c.nout = answer_frame(c.out, 1, 0x03, r, 2);
    assert_int_not_equal(canned_exchange(&c, mb, &e), 0);
    assert_int_equal(e.status, DRIVER_MALFORMED);
    assert_contains(e.msg, "sent 4 bytes of registers instead of 74");
    c.nout = answer_frame(c.out, 1, 0x04, r, MBMAP_NREGS);
    assert_int_not_equal(canned_exchange(&c, mb, &e), 0);
    assert_int_equal(e.status, DRIVER_MALFORMED);
    assert_contains(e.msg, "answered function 0x04");
    c.nout = put_frame(c.out, (const uint8_t[]){1, 0x83, 0x0C}, 3);
    assert_int_not_equal(canned_exchange(&c, mb, &e), 0);
    assert_int_equal(e.status, DRIVER_REFUSED);
    assert_contains(e.msg, "exception 0C: unknown exception");

    mbpack_close(mb);
    close(slave);
    close(master);
}

/* ---------------- the client against the simulator ---------------- */

struct bus {
    struct mbsim *sim;
    struct mbpack *mb;
    pthread_t thread;
    volatile int stop;
    int rc;
};

static void *serve(void *arg)
{
    struct bus *b = arg;
    b->rc = mbsim_run(b->sim, &b->stop);
    return NULL;
}

/* A simulator with slaves 1-4 and the given faults, and a client on it. */
static struct bus *bus_start(const char *const *faults, size_t nfaults, int gap_ms, int baud)
{
    struct bus *b = calloc(1, sizeof *b);
    assert_non_null(b);
    struct sim_opts so;
    sim_opts_default(&so);
    assert_int_equal(sim_parse_addresses("1-4", so.addresses, SIM_MAX_PACKS), 4);
    so.naddresses = 4;
    so.baud = baud;
    so.turnaround_ms = 2;
    so.seed = SEED;
    so.time_scale = 0; /* frozen: every answer of a pack is the same */
    for (size_t i = 0; i < nfaults; i++)
        assert_int_equal(sim_fault_parse(faults[i], &so.faults[i]), 0);
    so.nfaults = nfaults;
    assert_int_equal(mbsim_new(&so, &b->sim), 0);
    assert_int_equal(pthread_create(&b->thread, NULL, serve, b), 0);
    struct serial_opts o;
    serial_opts_default(&o);
    o.baud = baud;
    o.timeout_ms = TIMEOUT;
    o.gap_ms = gap_ms;
    struct driver_error e;
    assert_int_equal(mbpack_open(mbsim_slave_path(b->sim), &o, &b->mb, &e), 0);
    return b;
}

static void bus_stop(struct bus *b)
{
    mbpack_close(b->mb);
    b->stop = 1;
    pthread_join(b->thread, NULL);
    assert_int_equal(b->rc, 0);
    mbsim_free(b->sim);
    free(b);
}

/* What a client must decode after the simulator answered slave. */
static void expected(struct bus *b, uint8_t slave, struct sample *out)
{
    struct sample m;
    uint16_t r[MBMAP_NREGS];
    assert_int_equal(mbsim_last_sample(b->sim, slave, &m), 0);
    assert_int_equal(mbmap_encode(&m, r), 0);
    mbmap_decode(r, out);
    out->address = slave;
}

static void test_sim_values(void **state)
{
    (void)state;
    struct bus *b = bus_start(NULL, 0, 0, BAUD);
    for (int round = 0; round < 2; round++) {
        for (uint8_t slave = 1; slave <= 4; slave++) {
            struct sample s, want, m;
            struct driver_error e;
            int rc = mbpack_poll(b->mb, slave, &s, &e);
            if (rc != 0)
                fail_msg("slave %u: %s", slave, e.msg);
            expected(b, slave, &want);
            assert_same_sample(&s, &want);
            /* and against the model itself, at register resolution */
            assert_int_equal(mbsim_last_sample(b->sim, slave, &m), 0);
            assert_true(abs(s.voltage_mv - m.voltage_mv) <= 5);
            assert_int_equal(s.current_ma, m.current_ma);
            assert_true(abs(s.soc_cpct - m.soc_cpct) <= 50);
            assert_int_equal(s.remaining_mah, m.remaining_mah);
            assert_int_equal(s.ncells, 16);
            assert_memory_equal(s.cell_mv, m.cell_mv, 16 * sizeof s.cell_mv[0]);
            assert_memory_equal(s.temp_dc, m.temp_dc, 6 * sizeof s.temp_dc[0]);
            assert_int_equal(s.raw_status[2], 0x0180);
        }
    }
    assert_int_equal(mbsim_requests(b->sim), 8);
    assert_int_equal(mbsim_invalid(b->sim), 0);
    bus_stop(b);
}

/* libmodbus's own client (modbus_read_registers and its checks) against our server. */
static void test_sim_libmodbus_client(void **state)
{
    (void)state;
    struct bus *b = bus_start(NULL, 0, 0, BAUD);
    const char *path = mbsim_slave_path(b->sim);
    mbpack_close(b->mb); /* the port is ours alone: let libmodbus have it */
    b->mb = NULL;
    modbus_t *ctx = modbus_new_rtu(path, BAUD, 'N', 8, 1);
    assert_non_null(ctx);
    assert_int_equal(modbus_connect(ctx), 0);
    modbus_set_response_timeout(ctx, 0, TIMEOUT * 1000);
    modbus_set_slave(ctx, 3);
    uint16_t got[MBMAP_NREGS], want[MBMAP_NREGS];
    struct sample m;
    assert_int_equal(modbus_read_registers(ctx, 0, MBMAP_NREGS, got), MBMAP_NREGS);
    assert_int_equal(mbsim_last_sample(b->sim, 3, &m), 0);
    assert_int_equal(mbmap_encode(&m, want), 0);
    assert_memory_equal(got, want, sizeof got);
    assert_int_equal(modbus_read_registers(ctx, 15, 16, got), 16); /* the cells alone */
    assert_memory_equal(got, want + 15, 16 * sizeof got[0]);
    assert_int_equal(modbus_read_registers(ctx, 30, 10, got), -1);
    assert_int_equal(errno, EMBXILADD);
    assert_int_equal(modbus_read_input_registers(ctx, 0, 1, got), -1);
    assert_int_equal(errno, EMBXILFUN);
    modbus_set_slave(ctx, 9); /* not on the bus: silent */
    assert_int_equal(modbus_read_registers(ctx, 0, 1, got), -1);
    assert_int_equal(errno, ETIMEDOUT);
    modbus_close(ctx);
    modbus_free(ctx);
    assert_int_equal(mbsim_invalid(b->sim), 0);
    bus_stop(b);
}

/* e.msg must contain head, then (when tail is not NULL) the pty path and tail. */
static void expect_fault(const char *fault, uint8_t slave, enum driver_status st, int err,
                         const char *head, const char *tail)
{
    const char *faults[] = {fault};
    struct bus *b = bus_start(faults, 1, 20, BAUD);
    struct sample s;
    struct driver_error e;
    char msg[300];
    assert_int_not_equal(mbpack_poll(b->mb, slave, &s, &e), 0);
    assert_int_equal(e.status, st);
    if (err != 0)
        assert_int_equal(e.err, err);
    snprintf(msg, sizeof msg, "%s%s%s", head, tail ? mbsim_slave_path(b->sim) : "",
             tail ? tail : "");
    assert_contains(e.msg, msg);
    uint8_t other = slave == 1 ? 2 : 1; /* the fault is on one pack only */
    if (mbpack_poll(b->mb, other, &s, &e) != 0)
        fail_msg("slave %u after the fault: %s", other, e.msg);
    bus_stop(b);
}

static void test_sim_faults(void **state)
{
    (void)state;
    expect_fault("silent:2", 2, DRIVER_TIMEOUT, -ETIMEDOUT, "no answer from slave 2 on ",
                 " within 300 ms");
    expect_fault("checksum:1", 1, DRIVER_CHECKSUM, -EMBBADCRC,
                 "CRC error in the answer of slave 1 on ", ":");
    expect_fault("rtn=2:3", 3, DRIVER_REFUSED, -EMBXILADD, "slave 3 on ",
                 " answered with exception 02: illegal data address");
    expect_fault("rtn:1", 1, DRIVER_REFUSED, -EMBXSFAIL, /* the Service 42 default 0x91 */
                 "answered with exception 04: slave device failure", NULL);
    expect_fault("truncated:4", 4, DRIVER_MALFORMED, -EMBBADDATA,
                 "incomplete answer from slave 4 on ", ":");
    /* slave 1 answers 450 ms late: the next poll (of slave 2) skips that answer and gets its own */
    expect_fault("slow=450:1", 1, DRIVER_TIMEOUT, -ETIMEDOUT, "no answer from slave 1", NULL);
}

/* Noise before every second answer: those polls fail, the next ones are clean again, even with
 * no gap (the rest of a damaged answer is drained before the next request). */
static void test_sim_garbage(void **state)
{
    (void)state;
    const char *faults[] = {"garbage:1:2"};
    struct bus *b = bus_start(faults, 1, 0, 9600); /* no gap, a long tail */
    for (int i = 1; i <= 6; i++) {
        struct sample s;
        struct driver_error e;
        int rc = mbpack_poll(b->mb, 1, &s, &e);
        if (i % 2 == 1 && rc != 0)
            fail_msg("poll %d: %s", i, e.msg);
        if (i % 2 == 0)
            assert_int_not_equal(rc, 0);
    }
    bus_stop(b);
}

/* A dead slave costs its own timeouts only: the others answer every round. */
static void test_sim_dead_slave(void **state)
{
    (void)state;
    const char *faults[] = {"silent:3"};
    struct bus *b = bus_start(faults, 1, 0, BAUD);
    unsigned ok[5] = {0}, timeouts[5] = {0};
    const unsigned rounds = 4;
    for (unsigned round = 0; round < rounds; round++) {
        for (uint8_t slave = 1; slave <= 4; slave++) {
            struct sample s;
            struct driver_error e;
            if (mbpack_poll(b->mb, slave, &s, &e) == 0)
                ok[slave]++;
            else if (e.status == DRIVER_TIMEOUT)
                timeouts[slave]++;
        }
    }
    assert_int_equal(ok[1], rounds);
    assert_int_equal(ok[2], rounds);
    assert_int_equal(ok[4], rounds);
    assert_int_equal(ok[3], 0);
    assert_int_equal(timeouts[3], rounds);
    assert_int_equal(mbsim_requests(b->sim), 4 * rounds);
    bus_stop(b);
}

static void test_open_errors(void **state)
{
    (void)state;
    struct bus *b = bus_start(NULL, 0, 0, BAUD);
    struct mbpack *second = NULL;
    struct driver_error e;
    assert_int_equal(mbpack_open(mbsim_slave_path(b->sim), NULL, &second, &e), -EBUSY);
    assert_null(second);
    assert_contains(e.msg, "another process has the port open");
    assert_int_equal(mbpack_open("/nonexistent/ttyUSB9", NULL, &second, &e), -ENOENT);
    assert_contains(e.msg, "/nonexistent/ttyUSB9: no such device");
    struct serial_opts o;
    serial_opts_default(&o);
    o.baud = 1234;
    assert_int_equal(mbpack_open(mbsim_slave_path(b->sim), &o, &second, &e), -EINVAL);
    assert_int_equal(mbpack_fd(b->mb) >= 0, 1);
    assert_string_equal(mbpack_path(b->mb), mbsim_slave_path(b->sim));
    bus_stop(b);
}

/* The link follows the simulator; what Modbus cannot carry is refused. */
static void test_sim_link_and_opts(void **state)
{
    (void)state;
    char link[64], target[128];
    snprintf(link, sizeof link, "/tmp/test_modbus.%ld.link", (long)getpid());
    struct sim_opts so;
    sim_opts_default(&so);
    so.link = link;
    struct mbsim *sim;
    assert_int_equal(mbsim_new(&so, &sim), 0);
    ssize_t n = readlink(link, target, sizeof target - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_string_equal(target, mbsim_slave_path(sim));
    struct sample s;
    assert_int_equal(mbsim_last_sample(sim, 1, &s), -ENODATA);
    assert_int_equal(mbsim_last_sample(sim, 2, &s), -ENOENT);
    mbsim_free(sim);
    assert_int_equal(readlink(link, target, sizeof target), -1);
    so.link = NULL;
    so.ncells = 17; /* registers 15-30 hold 16 cells */
    assert_int_equal(mbsim_new(&so, &sim), -EINVAL);
    so.ncells = 16;
    so.addresses[0] = 0; /* broadcast is nobody's address */
    assert_int_equal(mbsim_new(&so, &sim), -EINVAL);
    so.addresses[0] = 1;
    so.chatter_ms = 100;
    assert_int_equal(mbsim_new(&so, &sim), -EOPNOTSUPP);
}

/* A stop ends the wait for a silent slave with -ECANCELED, not a timeout. */
static void test_cancel(void **state)
{
    (void)state;
    const char *faults[] = {"silent:1"};
    struct bus *b = bus_start(faults, 1, 0, BAUD);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    mbpack_set_cancel_fd(b->mb, fds[0]);
    assert_int_equal(write(fds[1], "x", 1), 1);
    struct sample s;
    struct driver_error e;
    assert_int_equal(mbpack_poll(b->mb, 1, &s, &e), -ECANCELED);
    assert_int_equal(e.err, -ECANCELED);
    assert_contains(e.msg, "cancelled");
    close(fds[0]);
    close(fds[1]);
    bus_stop(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc_golden),
        cmocka_unit_test(test_decode_golden),
        cmocka_unit_test(test_decode_cell_count),
        cmocka_unit_test(test_encode_model),
        cmocka_unit_test(test_parse_hex),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_canned),
        cmocka_unit_test(test_sim_values),
        cmocka_unit_test(test_sim_libmodbus_client),
        cmocka_unit_test(test_sim_faults),
        cmocka_unit_test(test_sim_garbage),
        cmocka_unit_test(test_sim_dead_slave),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_sim_link_and_opts),
        cmocka_unit_test(test_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
