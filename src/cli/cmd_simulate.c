/* cmd_simulate: `bmsfleet simulate` runs a simulated bank of packs on a pseudo-terminal until
 * SIGINT/SIGTERM. */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "parse.h"
#include "log.h"
#include "mbsim.h"
#include "serial.h"
#include "sim.h"

static void usage(FILE *f)
{
    fputs("usage: bmsfleet simulate --protocol daren|pace|pylontech|seplos|modbus --addresses LIST\n"
          "                         [--link PATH] [--baud B] [--seed N] [--cells N]\n"
          "                         [--turnaround MS] [--time-scale X] [--fault SPEC]...\n"
          "                         [--collide ADDR]... [--chatter MS]\n"
          "                         [--master MS [--rounds N]] [--relay]\n"
          "                         [--mix SPEC [--log FILE]] [--unpaced]\n"
          "Answers as the packs at LIST (1-4, 1,3,7) on a new pseudo-terminal, prints its path,\n"
          "and runs until Ctrl-C. Values drift realistically and are reproducible from --seed.\n"
          "  --link PATH       make PATH a symlink to the pty (removed on exit)\n"
          "  --baud B          pace answers at this baud rate (default 9600)\n"
          "  --turnaround MS   delay before each answer (default 20)\n"
          "  --time-scale X    model seconds per second (default 1; 0 freezes the values)\n"
          "  --fault SPEC      KIND[:ADDR[:EVERY]], KIND = silent, checksum, garbage, truncated,\n"
          "                    slow[=MS], rtn[=HEX]; ADDR 0 = every pack; repeatable (max 8).\n"
          "                    For the alarm command 0x44 only (a firmware that answers 0x42\n"
          "                    only; EVERY counts 0x44 requests): no-alarms[=HEX] answers RTN\n"
          "                    HEX (default 04, command not supported), ignore-alarms never\n"
          "                    answers, late-alarms[=MS] answers after MS (default 2000)\n"
          "  --collide ADDR    two packs share ADDR (one of LIST): 2 of 3 answers collide and\n"
          "                    fail the checksum, the others come from either pack; repeatable\n"
          "  --chatter MS      another master polls our packs every MS ms (they answer it)\n"
          "  --master MS       be the bus master: poll every pack every MS ms (0x42, then 0x44\n"
          "                    where the protocol has it; modbus: the register map), requests\n"
          "                    and answers on the line, for a monitor in listen mode\n"
          "  --rounds N        with --master: stop polling after N rounds (0: never)\n"
          "  --relay           a daisy chain behind its master pack (pace, pylontech): the\n"
          "                    first address answers for the others (INFO = their address,\n"
          "                    FF: every pack's 0x42 in one answer); they answer nobody else\n"
          "  --mix SPEC        the fault soak: each 0x42 answer draws a fault, KIND=PCT,...\n"
          "                    (noise, late, master, garbage, checksum, truncated, silent, rtn,\n"
          "                    foreign; the rest clean) or 'soak' (every kind, 76 %%); seeded\n"
          "  --log FILE        write one line per 0x42 request on exit: its fault and the values\n"
          "                    of the valid answer the client must keep ('-': none reached it);\n"
          "                    'stalled': the client asked again first, nothing was sent\n"
          "  --unpaced         no wire time: answers are written at once (with --turnaround 0,\n"
          "                    as fast as the client asks)\n"
          "exit: 0 stopped by a signal, 1 cannot create the pty or link, 2 usage\n",
          f);
}

/* The Modbus RTU packs: the same model and options, another server. */
static int run_modbus(const struct sim_opts *o, int cnt, const char *addrs)
{
    struct mbsim *s;
    int err = mbsim_new(o, &s);
    if (err == -EOPNOTSUPP || err == -EINVAL) {
        fprintf(stderr, "simulate: %s\n",
                err == -EOPNOTSUPP ? "--collide and --chatter are not available for modbus"
                                   : "modbus slaves are 1..247 with at most 16 cells");
        return CLI_EXIT_USAGE;
    }
    if (err) {
        fprintf(stderr, "simulate: cannot start: %s\n", strerror(-err));
        return CLI_EXIT_FAIL;
    }
    printf("%s\n", mbsim_slave_path(s));
    fflush(stdout);
    log_info("simulating %d modbus pack(s) at %s on %s%s%s", cnt, addrs, mbsim_slave_path(s),
             o->link ? " -> " : "", o->link ? o->link : "");
    err = mbsim_run(s, &cli_stop);
    mbsim_free(s);
    if (err) {
        fprintf(stderr, "simulate: %s\n", strerror(-err));
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

#define STRINGIFY_(x) #x
#define STRINGIFY(x)  STRINGIFY_(x)

/* What the command line asks for: the simulator's options and how to run them. */
struct sim_args {
    struct sim_opts o;
    int modbus;
    const char *addrs;
};

/* The options that take one whole number into an int of struct sim_opts. */
static const struct cli_int_option int_options[] = {
    {'c', 1, SAMPLE_MAX_CELLS, offsetof(struct sim_opts, ncells), "--cells takes 1.." STRINGIFY(SAMPLE_MAX_CELLS)},
    {'t', 0, 10000, offsetof(struct sim_opts, turnaround_ms), "--turnaround takes 0..10000 ms"},
    {'m', 0, 600000, offsetof(struct sim_opts, chatter_ms),
     "--chatter takes 0..600000 ms (0 = off)"},
    {'M', 1, 3600000, offsetof(struct sim_opts, master_ms), "--master takes 1..3600000 ms"},
    {'R', 0, 1000000000, offsetof(struct sim_opts, master_rounds),
     "--rounds takes a count (0 = no end)"},
};

/* Option c with its argument into a; -1 when taken, else the exit code. */
static int take_int_option(struct sim_args *a, int c, const char *arg)
{
    int rc = cli_take_int_option("simulate", int_options,
                                 sizeof int_options / sizeof int_options[0], &a->o, c, arg);
    if (rc == 0) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    return rc;
}

/* The options of the bus itself: protocol, packs, link and pacing. -1 when taken, 0 when c is
 * not one of them, else the exit code. */
static int take_bus_option(struct sim_args *a, int c, const char *arg)
{
    long n;
    switch (c) {
    case 'p':
        a->modbus = strcmp(arg, "modbus") == 0;
        if (!a->modbus && (a->o.variant = s42_variant_find(arg)) == NULL) {
            fprintf(stderr,
                    "simulate: unknown protocol '%s' (daren, pace, pylontech, seplos, modbus)\n",
                    arg);
            return CLI_EXIT_USAGE;
        }
        return -1;
    case 'a':
        a->addrs = arg;
        return -1;
    case 'l':
        a->o.link = arg;
        return -1;
    case 'b':
        if (parse_long(arg, 1200, 115200, &n) || !serial_baud_supported((int)n)) {
            fprintf(stderr, "simulate: unsupported baud rate '%s'\n", arg);
            return CLI_EXIT_USAGE;
        }
        a->o.baud = (int)n;
        return -1;
    case 's':
        if (parse_long(arg, 0, __LONG_MAX__, &n)) {
            fprintf(stderr, "simulate: --seed takes a non-negative integer\n");
            return CLI_EXIT_USAGE;
        }
        a->o.seed = (uint64_t)n;
        return -1;
    case 'T':
        if (parse_double(arg, 0, 1e6, &a->o.time_scale)) {
            fprintf(stderr, "simulate: --time-scale takes a number >= 0\n");
            return CLI_EXIT_USAGE;
        }
        return -1;
    case 'r':
        a->o.relay = 1;
        return -1;
    case 'u':
        a->o.unpaced = true;
        return -1;
    default:
        return 0;
    }
}

/* The disturbances: faults on demand, collisions, the fault soak's mix and its log. -1 when
 * taken, 0 when c is not one of them, else the exit code. */
static int take_fault_option(struct sim_args *a, int c, const char *arg)
{
    struct sim_opts *o = &a->o;
    long n;
    switch (c) {
    case 'f':
        if (o->nfaults >= sizeof o->faults / sizeof o->faults[0] ||
            sim_fault_parse(arg, &o->faults[o->nfaults])) {
            fprintf(stderr, "simulate: bad --fault '%s'\n", arg);
            return CLI_EXIT_USAGE;
        }
        o->nfaults++;
        return -1;
    case 'C':
        if (o->ncollide >= sizeof o->collide / sizeof o->collide[0] ||
            parse_long(arg, 0, 254, &n)) {
            fprintf(stderr, "simulate: bad --collide '%s' (an address 0..254)\n", arg);
            return CLI_EXIT_USAGE;
        }
        o->collide[o->ncollide++] = (uint8_t)n;
        return -1;
    case 'X':
        if (sim_mix_parse(arg, &o->mix)) {
            fprintf(stderr, "simulate: bad --mix '%s' (KIND=PCT,... at most 100 %% in all, "
                            "or soak)\n", arg);
            return CLI_EXIT_USAGE;
        }
        return -1;
    case 'L':
        o->log_path = arg;
        return -1;
    default:
        return 0;
    }
}

/* The command line into *a. -1 when it holds a run, else the exit code (--help: 0). */
static int parse_args(int argc, char **argv, struct sim_args *a)
{
    static const struct option opts[] = {
        {"protocol", required_argument, NULL, 'p'},  {"addresses", required_argument, NULL, 'a'},
        {"link", required_argument, NULL, 'l'},      {"baud", required_argument, NULL, 'b'},
        {"seed", required_argument, NULL, 's'},      {"cells", required_argument, NULL, 'c'},
        {"turnaround", required_argument, NULL, 't'}, {"time-scale", required_argument, NULL, 'T'},
        {"fault", required_argument, NULL, 'f'},     {"collide", required_argument, NULL, 'C'},
        {"chatter", required_argument, NULL, 'm'},   {"help", no_argument, NULL, 'h'},
        {"master", required_argument, NULL, 'M'},    {"rounds", required_argument, NULL, 'R'},
        {"relay", no_argument, NULL, 'r'},           {"mix", required_argument, NULL, 'X'},
        {"log", required_argument, NULL, 'L'},       {"unpaced", no_argument, NULL, 'u'},
        {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof *a);
    sim_opts_default(&a->o);
    a->o.variant = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:a:l:b:s:c:t:T:f:C:m:M:R:rX:L:uh", opts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return CLI_EXIT_OK;
        }
        int rc = take_bus_option(a, c, optarg);
        if (rc == 0)
            rc = take_fault_option(a, c, optarg);
        if (rc == 0)
            rc = c == '?' ? (usage(stderr), CLI_EXIT_USAGE) : take_int_option(a, c, optarg);
        if (rc != -1)
            return rc;
    }
    if (optind < argc || (a->o.variant == NULL && !a->modbus) || a->addrs == NULL) {
        fprintf(stderr, "simulate: --protocol and --addresses are required\n");
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    int cnt = sim_parse_addresses(a->addrs, a->o.addresses, SIM_MAX_PACKS);
    if (cnt <= 0) {
        fprintf(stderr, "simulate: bad address list '%s' (e.g. 1-4, 1,3,7)\n", a->addrs);
        return CLI_EXIT_USAGE;
    }
    a->o.naddresses = (size_t)cnt;
    return -1;
}

/* The options that exclude each other, or another protocol. 0 when they go together. */
static int check_args(const struct sim_args *a)
{
    const struct sim_opts *o = &a->o;
    if (o->relay && (a->modbus || !s42_has_relay(o->variant))) {
        fprintf(stderr, "simulate: --relay is for pace and pylontech (their requests name the "
                        "target pack)\n");
        return CLI_EXIT_USAGE;
    }
    if (o->master_ms > 0 && o->chatter_ms > 0) {
        fprintf(stderr, "simulate: --master and --chatter exclude each other (one other master)\n");
        return CLI_EXIT_USAGE;
    }
    for (size_t i = 0; i < o->ncollide; i++) {
        if (memchr(o->addresses, o->collide[i], o->naddresses) == NULL) {
            fprintf(stderr, "simulate: --collide %u is not one of --addresses %s\n",
                    (unsigned)o->collide[i], a->addrs);
            return CLI_EXIT_USAGE;
        }
    }
    if ((o->mix.on || o->log_path || o->unpaced) && a->modbus) {
        fprintf(stderr, "simulate: --mix, --log and --unpaced are Service 42 options\n");
        return CLI_EXIT_USAGE;
    }
    if ((o->mix.on || o->log_path) &&
        (o->nfaults || o->ncollide || o->chatter_ms || o->master_ms || o->relay)) {
        fprintf(stderr, "simulate: --mix and --log go without --fault, --collide, --chatter, "
                        "--master and --relay (the log must tell everything that happened on "
                        "the bus)\n");
        return CLI_EXIT_USAGE;
    }
    for (size_t i = 0; i < o->nfaults && a->modbus; i++) {
        if (o->faults[i].cid2 != 0) {
            fprintf(stderr, "simulate: no-alarms, ignore-alarms and late-alarms are Service 42 "
                            "faults (modbus has no 0x44)\n");
            return CLI_EXIT_USAGE;
        }
    }
    return 0;
}

/* The Service 42 packs, until a signal. */
static int run_s42(const struct sim_opts *o, const char *addrs)
{
    struct sim *s;
    int err = sim_new(o, &s);
    if (err) {
        fprintf(stderr, "simulate: cannot start: %s\n", strerror(-err));
        return CLI_EXIT_FAIL;
    }
    printf("%s\n", sim_slave_path(s));
    fflush(stdout);
    log_info("simulating %zu %s pack(s) at %s on %s%s%s", o->naddresses,
             s42_variant_name(o->variant), addrs, sim_slave_path(s), o->link ? " -> " : "",
             o->link ? o->link : "");
    err = sim_run(s, &cli_stop);
    sim_free(s);
    if (err) {
        fprintf(stderr, "simulate: %s\n", strerror(-err));
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

int cmd_simulate(int argc, char **argv)
{
    struct sim_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != -1)
        return rc;
    if ((rc = check_args(&a)) != 0)
        return rc;
    cli_install_signals();
    if (a.modbus)
        return run_modbus(&a.o, (int)a.o.naddresses, a.addrs);
    return run_s42(&a.o, a.addrs);
}
