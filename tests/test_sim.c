/* test_sim: the pack model (pure), the option parsers, and the pty server end to end: every
 * variant round-trips a frozen pack, unknown addresses stay silent, each fault shows its
 * symptom, and the link comes and goes with the simulator. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "asserts.h"
#include "s42.h"
#include "sim.h"

#define SEED      42
#define NCELLS    16
#define QUIET_MS  500 /* "no answer" means nothing within this long */
#define ANSWER_MS 3000

/* cmocka's range check is unsigned: this one takes negative bounds. */
#define assert_between(v, lo, hi)                                                                  \
    do {                                                                                           \
        long long v_ = (v), lo_ = (lo), hi_ = (hi);                                                \
        if (v_ < lo_ || v_ > hi_)                                                                  \
            fail_msg("%s = %lld is not within %lld..%lld", #v, v_, lo_, hi_);                      \
    } while (0)

/* ---------------- the model ---------------- */

static void assert_same_sample(const struct sample *a, const struct sample *b)
{
    assert_same_values(a, b);
    assert_int_equal(a->alarms, b->alarms);
    assert_int_equal(a->protection, b->protection);
}

static void test_model_reproducible(void **state)
{
    (void)state;
    struct sim_pack a, b;
    struct sample sa, sb;
    sim_pack_init(&a, SEED, 2, NCELLS);
    sim_pack_init(&b, SEED, 2, NCELLS);
    sim_pack_sample(&a, &sa);
    sim_pack_sample(&b, &sb);
    assert_same_sample(&sa, &sb);

    /* stepping in one go or in many small calls reaches the same state */
    sim_pack_step(&a, 3600.5);
    for (int t = 1; t <= 3600; t += 7)
        sim_pack_step(&b, t);
    sim_pack_step(&b, 3600.5);
    sim_pack_sample(&a, &sa);
    sim_pack_sample(&b, &sb);
    assert_same_sample(&sa, &sb);

    /* time never goes backwards */
    sim_pack_step(&a, 10);
    sim_pack_sample(&a, &sb);
    assert_same_sample(&sa, &sb);
}

static void test_model_address_and_seed_differ(void **state)
{
    (void)state;
    struct sim_pack a, b, c;
    struct sample sa, sb, sc;
    sim_pack_init(&a, SEED, 1, NCELLS);
    sim_pack_init(&b, SEED, 2, NCELLS);
    sim_pack_init(&c, SEED + 1, 1, NCELLS);
    sim_pack_sample(&a, &sa);
    sim_pack_sample(&b, &sb);
    sim_pack_sample(&c, &sc);
    assert_int_equal(sa.address, 1);
    assert_int_equal(sb.address, 2);
    assert_true(sa.soc_cpct != sb.soc_cpct || sa.full_mah != sb.full_mah ||
                memcmp(sa.cell_mv, sb.cell_mv, sizeof sa.cell_mv) != 0);
    assert_true(sa.soc_cpct != sc.soc_cpct || sa.full_mah != sc.full_mah ||
                memcmp(sa.cell_mv, sc.cell_mv, sizeof sa.cell_mv) != 0);
    /* a zero seed still gives a working generator */
    sim_pack_init(&a, 0, 0, NCELLS);
    assert_true(a.rng != 0);
}

static void check_plausible(const struct sample *s)
{
    assert_int_equal(s->ncells, NCELLS);
    int32_t sum = 0;
    for (size_t i = 0; i < s->ncells; i++) {
        assert_between(s->cell_mv[i], 2500, 3650);
        sum += s->cell_mv[i];
    }
    assert_int_equal(s->voltage_mv, sum);
    assert_between(s->soc_cpct, 0, 10000);
    assert_between(s->soh_cpct, 9000, 10000);
    assert_between(s->current_ma, -35000, 35000);
    assert_between(s->full_mah, 96000, 104000);
    assert_int_equal(s->design_mah, 100000);
    assert_between(s->remaining_mah, 0, s->full_mah);
    assert_int_equal(s->ntemps, 6);
    for (size_t i = 0; i < s->ntemps; i++)
        assert_between(s->temp_dc[i], -100, 600); /* -10 .. 60 °C */
    assert_int_equal(s->temp_role[0], SAMPLE_TEMP_CELL);
    assert_int_equal(s->temp_role[3], SAMPLE_TEMP_CELL);
    assert_int_equal(s->temp_role[4], SAMPLE_TEMP_MOS);
    assert_int_equal(s->temp_role[5], SAMPLE_TEMP_AMBIENT);
    assert_int_equal(s->has, SAMPLE_HAS_ANALOG | SAMPLE_HAS_ALARMS | SAMPLE_HAS_BALANCE);
    assert_true(s->state & SAMPLE_STATE_CHG_FET);
    assert_true(s->state & SAMPLE_STATE_DSG_FET);
    assert_int_equal(!!(s->state & SAMPLE_STATE_CHARGING), s->current_ma > 0);
    assert_int_equal(!!(s->state & SAMPLE_STATE_DISCHARGING), s->current_ma < 0);
    assert_true(s->cell_min_idx >= 1 && s->cell_max_idx >= 1);
    assert_int_equal(s->balancing >> s->ncells, 0);
}

static void test_model_day(void **state)
{
    (void)state;
    int balanced = 0;
    for (uint8_t adr = 1; adr <= 4; adr++) {
        struct sim_pack p;
        struct sample s;
        sim_pack_init(&p, SEED, adr, NCELLS);
        sim_pack_sample(&p, &s);
        check_plausible(&s);
        assert_between(s.soc_cpct, 4000, 9000);
        assert_between(s.cycles, 20, 300);
        int32_t prev_soc = s.soc_cpct, prev_cycles = s.cycles;
        int ups = 0, downs = 0, charging = 0, discharging = 0;
        for (int t = 60; t <= 86400; t += 60) {
            sim_pack_step(&p, t);
            sim_pack_sample(&p, &s);
            check_plausible(&s);
            ups += s.soc_cpct > prev_soc;
            downs += s.soc_cpct < prev_soc;
            charging += s.current_ma > 0;
            discharging += s.current_ma < 0;
            assert_true(s.cycles >= prev_cycles);
            if (s.balancing != 0) { /* only near full, on the highest cells */
                assert_between(s.soc_cpct, 9800, 10000);
                assert_true(s.balancing & (1u << (s.cell_max_idx - 1)));
                balanced++;
            }
            prev_soc = s.soc_cpct;
            prev_cycles = s.cycles;
        }
        assert_true(ups > 10 && downs > 10);
        assert_true(charging > 10 && discharging > 10);
        assert_true(s.cycles > 0);
    }
    assert_true(balanced > 0); /* with this seed pack 2 reaches full */
}

/* ---------------- parsers ---------------- */

static void test_parse_addresses(void **state)
{
    (void)state;
    uint8_t a[8];
    memset(a, 0xAA, sizeof a);
    assert_int_equal(sim_parse_addresses("1-4", a, sizeof a), 4);
    assert_memory_equal(a, ((uint8_t[]){1, 2, 3, 4}), 4);
    assert_int_equal(sim_parse_addresses("7,3,1", a, sizeof a), 3);
    assert_memory_equal(a, ((uint8_t[]){1, 3, 7}), 3);
    assert_int_equal(sim_parse_addresses("2,5-6,5,2", a, sizeof a), 3);
    assert_memory_equal(a, ((uint8_t[]){2, 5, 6}), 3);
    assert_int_equal(sim_parse_addresses("0,254", a, sizeof a), 2);
    assert_memory_equal(a, ((uint8_t[]){0, 254}), 2);
    assert_int_equal(sim_parse_addresses("0x10-0x12", a, sizeof a), 3);
    assert_memory_equal(a, ((uint8_t[]){16, 17, 18}), 3);

    static const char *const bad[] = {"",    ",",  "1,", ",1",  "1,,2", "a",     "1-", "-1",
                                      "4-1", " 1", "1 ", "1;2", "+1",   "1-2-3", "0x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(a, 0xAA, sizeof a);
        assert_int_equal(sim_parse_addresses(bad[i], a, sizeof a), -EINVAL);
        assert_int_equal(a[0], 0xAA); /* nothing written on failure */
    }
    assert_int_equal(sim_parse_addresses("255", a, sizeof a), -ERANGE);
    assert_int_equal(sim_parse_addresses("1-300", a, sizeof a), -ERANGE);
    assert_int_equal(sim_parse_addresses("99999999999999999999999", a, sizeof a), -ERANGE);
    assert_int_equal(sim_parse_addresses("1-9", a, sizeof a), -ERANGE); /* 9 > cap 8 */
}

static void test_fault_parse(void **state)
{
    (void)state;
    struct sim_fault f;
    assert_int_equal(sim_fault_parse("silent", &f), 0);
    assert_int_equal(f.kind, SIM_FAULT_SILENT);
    assert_int_equal(f.address, 0);
    assert_int_equal(f.every, 1);
    assert_int_equal(sim_fault_parse("checksum:3", &f), 0);
    assert_int_equal(f.kind, SIM_FAULT_CHECKSUM);
    assert_int_equal(f.address, 3);
    assert_int_equal(sim_fault_parse("garbage:0:5", &f), 0);
    assert_int_equal(f.kind, SIM_FAULT_GARBAGE);
    assert_int_equal(f.address, 0);
    assert_int_equal(f.every, 5);
    assert_int_equal(sim_fault_parse("truncated", &f), 0);
    assert_int_equal(f.kind, SIM_FAULT_TRUNCATED);
    assert_int_equal(sim_fault_parse("slow=750:2", &f), 0);
    assert_int_equal(f.kind, SIM_FAULT_SLOW);
    assert_int_equal(f.slow_ms, 750);
    assert_int_equal(f.address, 2);
    assert_int_equal(sim_fault_parse("slow", &f), 0);
    assert_true(f.slow_ms > 0);
    assert_int_equal(sim_fault_parse("rtn=E2:1:3", &f), 0);
    assert_int_equal(f.kind, SIM_FAULT_RTN);
    assert_int_equal(f.rtn, 0xE2);
    assert_int_equal(f.address, 1);
    assert_int_equal(f.every, 3);
    assert_int_equal(sim_fault_parse("rtn=0x04", &f), 0);
    assert_int_equal(f.rtn, 0x04);
    assert_int_equal(sim_fault_parse("rtn", &f), 0);
    assert_true(f.rtn != 0);

    /* the alarm-command faults: the plain kinds limited to 0x44 */
    assert_int_equal(sim_fault_parse("no-alarms:2", &f), 0);
    assert_int_equal(f.kind, SIM_FAULT_RTN);
    assert_int_equal(f.rtn, 0x04);
    assert_int_equal(f.cid2, S42_CID2_ALARM);
    assert_int_equal(f.address, 2);
    assert_int_equal(sim_fault_parse("no-alarms=E2:0:3", &f), 0);
    assert_int_equal(f.rtn, 0xE2);
    assert_int_equal(f.every, 3);
    assert_int_equal(sim_fault_parse("ignore-alarms:4", &f), 0);
    assert_int_equal(f.kind, SIM_FAULT_SILENT);
    assert_int_equal(f.cid2, S42_CID2_ALARM);
    assert_int_equal(f.address, 4);
    assert_int_equal(sim_fault_parse("late-alarms=900:1", &f), 0);
    assert_int_equal(f.kind, SIM_FAULT_SLOW);
    assert_int_equal(f.slow_ms, 900);
    assert_int_equal(f.cid2, S42_CID2_ALARM);
    assert_int_equal(sim_fault_parse("rtn:1", &f), 0);
    assert_int_equal(f.cid2, 0); /* every command */

    static const char *const bad[] = {"ignore-alarms=1", "no-alarms=00", "no-alarm:1",
                                      "alarms:1",        "no-alarms:1:0",
                                      "",           "bogus",     "Silent",       "silent=1",
                                      "checksum:",  "slow=",     "slow=abc",     "slow=-5",
                                      "rtn=00",     "rtn=100",   "rtn=G1",       "silent:255",
                                      "silent:1:0", "silent:1:", "silent:1:2:3", "silent:x",
                                      "garbage:1x", "silentx"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&f, 0x5A, sizeof f);
        assert_int_equal(sim_fault_parse(bad[i], &f), -EINVAL);
        assert_int_equal(f.every, 0x5A5A5A5A); /* nothing written on failure */
    }
}

/* ---------------- the server ---------------- */

struct server {
    struct sim *sim;
    pthread_t thread;
    volatile int stop;
    int rc;
    int fd; /* our client end */
    const struct s42_variant *v;
};

static void *serve(void *arg)
{
    struct server *sv = arg;
    sv->rc = sim_run(sv->sim, &sv->stop);
    return NULL;
}

static int open_client(const char *path)
{
    int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(fd >= 0);
    struct termios tio;
    assert_int_equal(tcgetattr(fd, &tio), 0);
    cfmakeraw(&tio);
    tio.c_cc[VMIN] = 0;
    tio.c_cc[VTIME] = 0;
    assert_int_equal(tcsetattr(fd, TCSANOW, &tio), 0);
    tcflush(fd, TCIOFLUSH);
    return fd;
}

static void start(struct server *sv, struct sim_opts *o)
{
    memset(sv, 0, sizeof *sv);
    sv->v = o->variant;
    assert_int_equal(sim_new(o, &sv->sim), 0);
    sv->fd = open_client(sim_slave_path(sv->sim));
    assert_int_equal(pthread_create(&sv->thread, NULL, serve, sv), 0);
}

static void stop(struct server *sv)
{
    sv->stop = 1;
    assert_int_equal(pthread_join(sv->thread, NULL), 0);
    assert_int_equal(sv->rc, 0);
    close(sv->fd);
    sim_free(sv->sim);
}

static void opts_for(struct sim_opts *o, const char *variant)
{
    sim_opts_default(o);
    o->variant = s42_variant_find(variant);
    assert_non_null(o->variant);
    o->naddresses = (size_t)sim_parse_addresses("1-3", o->addresses, SIM_MAX_PACKS);
    assert_int_equal(o->naddresses, 3);
    o->seed = SEED;
    o->ncells = NCELLS;
    o->baud = 38400;
    o->turnaround_ms = 5;
    o->time_scale = 0; /* frozen: the answers must equal the model exactly */
}

static int64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads for up to timeout_ms, stopping early after a '\r' when until_eoi. */
static size_t read_for(int fd, char *buf, size_t cap, int timeout_ms, int until_eoi)
{
    size_t n = 0;
    int64_t deadline = ms_now() + timeout_ms;
    while (n + 1 < cap) {
        int64_t left = deadline - ms_now();
        if (left <= 0)
            break;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)left);
        if (r <= 0)
            continue;
        ssize_t got = read(fd, buf + n, cap - 1 - n);
        if (got > 0)
            n += (size_t)got;
        if (until_eoi && memchr(buf, '\r', n) != NULL)
            break;
    }
    buf[n] = '\0';
    return n;
}

static void send_frame(int fd, const char *frame)
{
    size_t len = strlen(frame);
    assert_int_equal(write(fd, frame, len), (ssize_t)len);
}

static void send_request(struct server *sv, uint8_t cid2, uint8_t adr)
{
    char req[64];
    assert_true(s42_request(sv->v, cid2, adr, req, sizeof req) > 0);
    send_frame(sv->fd, req);
}

/* Asks and parses the answer (which must come); returns s42_parse's result. */
static int ask(struct server *sv, uint8_t cid2, uint8_t adr, struct s42_frame *f, size_t *noise)
{
    static char buf[S42_MAX_FRAME + 64];
    send_request(sv, cid2, adr);
    size_t n = read_for(sv->fd, buf, sizeof buf, ANSWER_MS, 1);
    char *soi = memchr(buf, '~', n);
    assert_non_null(soi);
    assert_true(n > 0 && buf[n - 1] == '\r');
    if (noise)
        *noise = (size_t)(soi - buf);
    return s42_parse(soi, n - (size_t)(soi - buf), f, NULL);
}

static void assert_quiet(struct server *sv)
{
    char buf[256];
    assert_int_equal(read_for(sv->fd, buf, sizeof buf, QUIET_MS, 0), 0);
}

static void assert_close(int32_t got, int32_t want, int32_t tol)
{
    if (got == SAMPLE_ABSENT)
        return; /* the variant does not send it */
    assert_true(want != SAMPLE_ABSENT);
    assert_between(got, want - tol, want + tol);
}

/* Temperatures by role: cells in order, MOS and ambient where the variant has them. */
static void compare_temps(const struct sample *got, const struct sample *want)
{
    size_t k = 0;
    for (size_t i = 0; i < got->ntemps; i++) {
        if (got->temp_role[i] != SAMPLE_TEMP_CELL)
            continue;
        while (k < want->ntemps && want->temp_role[k] != SAMPLE_TEMP_CELL)
            k++;
        assert_true(k < want->ntemps);
        assert_int_equal(got->temp_dc[i], want->temp_dc[k++]);
    }
    assert_true(k >= 4);
    assert_close(sample_temp(got, SAMPLE_TEMP_MOS), sample_temp(want, SAMPLE_TEMP_MOS), 0);
    assert_close(sample_temp(got, SAMPLE_TEMP_AMBIENT), sample_temp(want, SAMPLE_TEMP_AMBIENT), 0);
}

/* How far a decoded value may be from the model's: half the unit the variant sends
 * (SERVICE42.md "Units at a glance"; the encoder rounds). The model already reports current and
 * capacities in 10 mA / 10 mAh and SOC/SOH as remaining/full and full/design. */
struct units {
    const char *name;
    int32_t voltage, current, capacity, soc, soh;
};
static const struct units unit_table[] = {
    {"daren", 5, 0, 0, 0, 50},
    {"pace", 0, 0, 0, 0, 0},
    {"pylontech", 0, 50, 0, 0, 0},
    {"seplos", 5, 0, 0, 5, 5},
};

static void compare_analog(const char *variant, const struct sample *got, const struct sample *want)
{
    const struct units *u = NULL;
    for (size_t i = 0; i < sizeof unit_table / sizeof unit_table[0]; i++)
        if (strcmp(unit_table[i].name, variant) == 0)
            u = &unit_table[i];
    assert_non_null(u);
    assert_int_equal(got->address, want->address);
    assert_int_equal(got->ncells, want->ncells);
    for (size_t i = 0; i < want->ncells; i++)
        assert_int_equal(got->cell_mv[i], want->cell_mv[i]);
    assert_int_equal(got->cell_min_mv, want->cell_min_mv);
    assert_int_equal(got->cell_max_mv, want->cell_max_mv);
    /* the fields every variant sends */
    assert_true(got->voltage_mv != SAMPLE_ABSENT && got->current_ma != SAMPLE_ABSENT);
    assert_true(got->remaining_mah != SAMPLE_ABSENT && got->full_mah != SAMPLE_ABSENT);
    assert_true(got->soc_cpct != SAMPLE_ABSENT && got->cycles != SAMPLE_ABSENT);
    assert_close(got->voltage_mv, want->voltage_mv, u->voltage);
    assert_close(got->current_ma, want->current_ma, u->current);
    assert_close(got->remaining_mah, want->remaining_mah, u->capacity);
    assert_close(got->full_mah, want->full_mah, u->capacity);
    assert_close(got->design_mah, want->design_mah, u->capacity);
    assert_close(got->soc_cpct, want->soc_cpct, u->soc);
    assert_close(got->soh_cpct, want->soh_cpct, u->soh);
    assert_int_equal(got->cycles, want->cycles);
    compare_temps(got, want);
}

/* Flags: the model raises no alarm; whatever state bits the variant carries must agree. */
static void compare_flags(const struct sample *got, const struct sample *want)
{
    const uint32_t fets = SAMPLE_STATE_CHG_FET | SAMPLE_STATE_DSG_FET;
    assert_int_equal(got->alarms, 0);
    assert_int_equal(got->protection, 0);
    assert_int_equal(got->state & ~want->state, 0);
    assert_int_equal(got->state & fets, want->state & fets);
    if (got->has & SAMPLE_HAS_BALANCE)
        assert_int_equal(got->balancing, want->balancing & 0xFFFF);
}

static void check_identity(struct server *sv, uint8_t adr)
{
    uint8_t cmds[8];
    size_t n = s42_identity_commands(sv->v, cmds, sizeof cmds);
    struct s42_identity id;
    struct s42_frame f;
    s42_identity_init(&id);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ask(sv, cmds[i], adr, &f, NULL), 0);
        assert_int_equal(s42_check(&f, sv->v, adr, NULL), 0);
        assert_int_equal(s42_decode_identity(sv->v, cmds[i], &f, &id, NULL), 0);
    }
    char serial[32];
    snprintf(serial, sizeof serial, "SIM%d-%u", SEED, (unsigned)adr);
    /* every field the variant carries is ours (possibly cut to the field's width) */
    const struct {
        const char *got, *want;
    } fields[] = {{id.serial, serial},
                  {id.hardware, "BMSFLEET-SIM"},
                  {id.product, "SIM16S100A"},
                  {id.manufacturer, "bmsfleet"}};
    int seen = 0;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (fields[i].got[0] == '\0')
            continue;
        seen++;
        assert_true(strncmp(fields[i].want, fields[i].got, strlen(fields[i].got)) == 0);
    }
    assert_true(seen > 0);
}

static void round_trip(const char *variant)
{
    struct sim_opts o;
    struct server sv;
    struct s42_frame f;
    struct sample got, last, model;
    opts_for(&o, variant);
    start(&sv, &o);
    assert_int_equal(sim_last_sample(sv.sim, 2, &last), -ENODATA);

    assert_int_equal(ask(&sv, S42_CID2_ANALOG, 2, &f, NULL), 0);
    assert_int_equal(s42_check(&f, sv.v, 2, NULL), 0);
    assert_int_equal(s42_decode_analog(sv.v, &f, &got, NULL), 0);
    assert_int_equal(sim_last_sample(sv.sim, 2, &last), 0);
    struct sim_pack p;
    sim_pack_init(&p, SEED, 2, NCELLS);
    sim_pack_sample(&p, &model);
    assert_same_sample(&last, &model); /* frozen time: what was answered is the model at t=0 */
    compare_analog(variant, &got, &last);
    if (got.has & SAMPLE_HAS_ALARMS)
        compare_flags(&got, &last);

    if (s42_has_command(sv.v, S42_CID2_ALARM)) {
        assert_int_equal(ask(&sv, S42_CID2_ALARM, 2, &f, NULL), 0);
        assert_int_equal(s42_check(&f, sv.v, 2, NULL), 0);
        assert_int_equal(s42_decode_alarm(sv.v, &f, &got, NULL), 0);
        compare_flags(&got, &last);
    }
    check_identity(&sv, 2);

    /* another pack on the same bus answers as itself */
    assert_int_equal(ask(&sv, S42_CID2_ANALOG, 3, &f, NULL), 0);
    assert_int_equal(s42_check(&f, sv.v, 3, NULL), 0);
    assert_int_equal(s42_decode_analog(sv.v, &f, &got, NULL), 0);
    assert_int_equal(sim_last_sample(sv.sim, 3, &last), 0);
    compare_analog(variant, &got, &last);

    /* a command the pack does not know: RTN 04 */
    char req[64];
    assert_true(s42_build(req, sizeof req, s42_variant_ver(sv.v), 1, s42_variant_cid1(sv.v), 0x99,
                          NULL, 0) > 0);
    send_frame(sv.fd, req);
    char buf[256];
    size_t n = read_for(sv.fd, buf, sizeof buf, ANSWER_MS, 1);
    assert_int_equal(s42_parse(buf, n, &f, NULL), 0);
    assert_int_equal(s42_check(&f, sv.v, 1, NULL), -S42_E_RTN_CID2);

    /* unknown address, and a request in another family's VER/CID1: silence */
    send_request(&sv, S42_CID2_ANALOG, 9);
    assert_quiet(&sv);
    assert_true(s42_build(req, sizeof req, 0x21, 2, 0x4B, S42_CID2_ANALOG, NULL, 0) > 0);
    send_frame(sv.fd, req);
    assert_quiet(&sv);
    assert_int_equal(sim_last_sample(sv.sim, 9, &last), -ENOENT);
    assert_true(sim_requests(sv.sim) >= 6);
    stop(&sv);
}

static void test_round_trip(void **state)
{
    round_trip(*state);
}

static void test_faults(void **state)
{
    (void)state;
    static const char *const faults[] = {"silent:1", "checksum:2", "garbage:3", "truncated:4",
                                         "rtn=91:5", "slow=300:6", "silent:7:2"};
    struct sim_opts o;
    struct server sv;
    struct s42_frame f;
    char buf[1024];
    opts_for(&o, "daren");
    o.naddresses = (size_t)sim_parse_addresses("1-7", o.addresses, SIM_MAX_PACKS);
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
        assert_int_equal(sim_fault_parse(faults[i], &o.faults[o.nfaults++]), 0);
    start(&sv, &o);

    uint64_t before = sim_requests(sv.sim);
    send_request(&sv, S42_CID2_ANALOG, 1); /* silent */
    assert_quiet(&sv);
    assert_int_equal(sim_requests(sv.sim), before + 1);

    assert_int_equal(ask(&sv, S42_CID2_ANALOG, 2, &f, NULL), -S42_E_CHKSUM);

    size_t noise = 0;
    assert_int_equal(ask(&sv, S42_CID2_ANALOG, 3, &f, &noise), 0);
    assert_true(noise > 0);
    assert_int_equal(s42_check(&f, sv.v, 3, NULL), 0);

    send_request(&sv, S42_CID2_ANALOG, 4); /* truncated */
    size_t n = read_for(sv.fd, buf, sizeof buf, QUIET_MS, 0);
    assert_true(n > 1 && buf[0] == '~');
    assert_null(memchr(buf, '\r', n));

    assert_int_equal(ask(&sv, S42_CID2_ANALOG, 5, &f, NULL), 0);
    assert_int_equal(f.info_len, 0);
    assert_int_equal(s42_check(&f, sv.v, 5, NULL), -S42_E_RTN_COMM);

    send_request(&sv, S42_CID2_ANALOG, 6); /* slow: late, then complete */
    assert_int_equal(read_for(sv.fd, buf, sizeof buf, 150, 0), 0);
    n = read_for(sv.fd, buf, sizeof buf, ANSWER_MS, 1);
    assert_int_equal(s42_parse(buf, n, &f, NULL), 0);

    /* every 2nd answer of pack 7 is lost */
    assert_int_equal(ask(&sv, S42_CID2_ANALOG, 7, &f, NULL), 0);
    send_request(&sv, S42_CID2_ANALOG, 7);
    assert_quiet(&sv);
    assert_int_equal(ask(&sv, S42_CID2_ANALOG, 7, &f, NULL), 0);

    /* line noise and a broken request are dropped; the next good one is answered */
    send_frame(sv.fd, "\x01\x02zz~22014A42E002\r~2201");
    assert_quiet(&sv);
    assert_int_equal(ask(&sv, S42_CID2_ANALOG, 2, &f, NULL), -S42_E_CHKSUM);
    stop(&sv);
}

/* The alarm-command faults touch 0x44 only, and their EVERY counts 0x44 requests. */
static void test_alarm_faults(void **state)
{
    (void)state;
    static const char *const faults[] = {"no-alarms:1", "ignore-alarms:2", "no-alarms=E2:3:2"};
    struct sim_opts o;
    struct server sv;
    struct s42_frame f;
    opts_for(&o, "pace");
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
        assert_int_equal(sim_fault_parse(faults[i], &o.faults[o.nfaults++]), 0);
    start(&sv, &o);
    for (uint8_t adr = 1; adr <= 3; adr++) { /* 0x42 and identity answered as always */
        assert_int_equal(ask(&sv, S42_CID2_ANALOG, adr, &f, NULL), 0);
        assert_int_equal(s42_check(&f, sv.v, adr, NULL), 0);
        assert_true(f.info_len > 40);
        assert_int_equal(ask(&sv, S42_CID2_PACE_SERIAL, adr, &f, NULL), 0);
        assert_int_equal(s42_check(&f, sv.v, adr, NULL), 0);
    }
    assert_int_equal(ask(&sv, S42_CID2_ALARM, 1, &f, NULL), 0); /* no-alarms: RTN 04 */
    assert_int_equal(f.info_len, 0);
    assert_int_equal(s42_check(&f, sv.v, 1, NULL), -S42_E_RTN_CID2);

    uint64_t before = sim_requests(sv.sim);
    send_request(&sv, S42_CID2_ALARM, 2); /* ignore-alarms: heard, not answered */
    assert_quiet(&sv);
    assert_int_equal(sim_requests(sv.sim), before + 1);

    /* pack 3: 0x44 #1 answered, #2 refused, #3 answered; the 0x42 between do not count */
    assert_int_equal(ask(&sv, S42_CID2_ALARM, 3, &f, NULL), 0);
    assert_int_equal(s42_check(&f, sv.v, 3, NULL), 0);
    struct sample s, model;
    assert_int_equal(sim_last_sample(sv.sim, 3, &model), 0);
    assert_int_equal(ask(&sv, S42_CID2_ANALOG, 3, &f, NULL), 0);
    assert_int_equal(s42_decode_analog(sv.v, &f, &s, NULL), 0);
    assert_int_equal(s.voltage_mv, model.voltage_mv);
    assert_int_equal(ask(&sv, S42_CID2_ALARM, 3, &f, NULL), 0);
    assert_int_equal(s42_check(&f, sv.v, 3, NULL), -S42_E_RTN_EXEC);
    assert_int_equal(ask(&sv, S42_CID2_ALARM, 3, &f, NULL), 0);
    assert_int_equal(s42_check(&f, sv.v, 3, NULL), 0);
    assert_int_equal(s42_decode_alarm(sv.v, &f, &s, NULL), 0);
    assert_true(s.has & SAMPLE_HAS_ALARMS);
    stop(&sv);

    /* the picker: a fault limited to 0x44 never applies to another command */
    int slow;
    assert_null(sim_fault_pick(&o, 1, S42_CID2_ANALOG, 1, 1, &slow));
    assert_non_null(sim_fault_pick(&o, 1, S42_CID2_ALARM, 5, 1, &slow));
    assert_null(sim_fault_pick(&o, 3, S42_CID2_ALARM, 2, 1, &slow)); /* nth_cmd 1 of every 2 */
    assert_non_null(sim_fault_pick(&o, 3, S42_CID2_ALARM, 1, 2, &slow));
}

/* With time running, the model moves between two answers (no claim about how fast). */
static void test_time_advances(void **state)
{
    (void)state;
    struct sim_opts o;
    struct server sv;
    struct s42_frame f;
    struct sample first, second;
    opts_for(&o, "seplos");
    o.time_scale = 600;
    start(&sv, &o);
    assert_int_equal(ask(&sv, S42_CID2_ANALOG, 1, &f, NULL), 0);
    assert_int_equal(sim_last_sample(sv.sim, 1, &first), 0);
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 200 * 1000000L};
    nanosleep(&pause, NULL);
    assert_int_equal(ask(&sv, S42_CID2_ANALOG, 1, &f, NULL), 0);
    assert_int_equal(sim_last_sample(sv.sim, 1, &second), 0);
    assert_true(first.current_ma != second.current_ma || first.soc_cpct != second.soc_cpct ||
                memcmp(first.cell_mv, second.cell_mv, sizeof first.cell_mv) != 0);
    stop(&sv);
}

static void test_link(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_sim.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char link[64], target[128];
    snprintf(link, sizeof link, "%s/ttyBMS", dir);
    assert_int_equal(symlink("/nonexistent/old", link), 0); /* a stale link is replaced */

    struct sim_opts o;
    struct sim *s = NULL;
    opts_for(&o, "pace");
    o.link = link;
    assert_int_equal(sim_new(&o, &s), 0);
    ssize_t n = readlink(link, target, sizeof target - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_string_equal(target, sim_slave_path(s));
    sim_free(s);
    struct stat st;
    assert_int_equal(lstat(link, &st), -1);
    assert_int_equal(errno, ENOENT);

    /* a real file at the link path is never replaced */
    FILE *fp = fopen(link, "w");
    assert_non_null(fp);
    fclose(fp);
    s = NULL;
    assert_int_equal(sim_new(&o, &s), -EEXIST);
    assert_null(s);
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    unlink(link);
    rmdir(dir);
    sim_free(NULL);
}

static void test_bad_opts(void **state)
{
    (void)state;
    struct sim_opts o;
    struct sim *s = NULL;
    opts_for(&o, "daren");
    o.variant = NULL;
    assert_int_equal(sim_new(&o, &s), -EINVAL);
    opts_for(&o, "daren");
    o.naddresses = 0;
    assert_int_equal(sim_new(&o, &s), -EINVAL);
    opts_for(&o, "daren");
    o.addresses[1] = o.addresses[0]; /* duplicate */
    assert_int_equal(sim_new(&o, &s), -EINVAL);
    opts_for(&o, "daren");
    o.ncells = SAMPLE_MAX_CELLS + 1;
    assert_int_equal(sim_new(&o, &s), -EINVAL);
    assert_null(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_reproducible),
        cmocka_unit_test(test_model_address_and_seed_differ),
        cmocka_unit_test(test_model_day),
        cmocka_unit_test(test_parse_addresses),
        cmocka_unit_test(test_fault_parse),
        cmocka_unit_test_prestate(test_round_trip, "daren"),
        cmocka_unit_test_prestate(test_round_trip, "pace"),
        cmocka_unit_test_prestate(test_round_trip, "pylontech"),
        cmocka_unit_test_prestate(test_round_trip, "seplos"),
        cmocka_unit_test(test_faults),
        cmocka_unit_test(test_alarm_faults),
        cmocka_unit_test(test_time_advances),
        cmocka_unit_test(test_link),
        cmocka_unit_test(test_bad_opts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
