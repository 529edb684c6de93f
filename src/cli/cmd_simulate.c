/* cmd_simulate: `bmsfleet simulate` runs a simulated bank of packs on a pseudo-terminal until
 * SIGINT/SIGTERM. */
#include <errno.h>
#include <getopt.h>
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

int cmd_simulate(int argc, char **argv)
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
    struct sim_opts o;
    sim_opts_default(&o);
    o.variant = NULL;
    int modbus = 0;
    const char *addrs = NULL;
    long n;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:a:l:b:s:c:t:T:f:C:m:M:R:rX:L:uh", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            modbus = strcmp(optarg, "modbus") == 0;
            if (!modbus && (o.variant = s42_variant_find(optarg)) == NULL) {
                fprintf(stderr,
                        "simulate: unknown protocol '%s' (daren, pace, pylontech, seplos, "
                        "modbus)\n",
                        optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'a':
            addrs = optarg;
            break;
        case 'l':
            o.link = optarg;
            break;
        case 'b':
            if (parse_long(optarg, 1200, 115200, &n) || !serial_baud_supported((int)n)) {
                fprintf(stderr, "simulate: unsupported baud rate '%s'\n", optarg);
                return CLI_EXIT_USAGE;
            }
            o.baud = (int)n;
            break;
        case 's':
            if (parse_long(optarg, 0, __LONG_MAX__, &n)) {
                fprintf(stderr, "simulate: --seed takes a non-negative integer\n");
                return CLI_EXIT_USAGE;
            }
            o.seed = (uint64_t)n;
            break;
        case 'c':
            if (parse_long(optarg, 1, SAMPLE_MAX_CELLS, &n)) {
                fprintf(stderr, "simulate: --cells takes 1..%d\n", SAMPLE_MAX_CELLS);
                return CLI_EXIT_USAGE;
            }
            o.ncells = (int)n;
            break;
        case 't':
            if (parse_long(optarg, 0, 10000, &n)) {
                fprintf(stderr, "simulate: --turnaround takes 0..10000 ms\n");
                return CLI_EXIT_USAGE;
            }
            o.turnaround_ms = (int)n;
            break;
        case 'T':
            if (parse_double(optarg, 0, 1e6, &o.time_scale)) {
                fprintf(stderr, "simulate: --time-scale takes a number >= 0\n");
                return CLI_EXIT_USAGE;
            }
            break;
        case 'f':
            if (o.nfaults >= sizeof o.faults / sizeof o.faults[0] ||
                sim_fault_parse(optarg, &o.faults[o.nfaults])) {
                fprintf(stderr, "simulate: bad --fault '%s'\n", optarg);
                return CLI_EXIT_USAGE;
            }
            o.nfaults++;
            break;
        case 'C':
            if (o.ncollide >= sizeof o.collide / sizeof o.collide[0] ||
                parse_long(optarg, 0, 254, &n)) {
                fprintf(stderr, "simulate: bad --collide '%s' (an address 0..254)\n", optarg);
                return CLI_EXIT_USAGE;
            }
            o.collide[o.ncollide++] = (uint8_t)n;
            break;
        case 'm':
            if (parse_long(optarg, 0, 600000, &n)) {
                fprintf(stderr, "simulate: --chatter takes 0..600000 ms (0 = off)\n");
                return CLI_EXIT_USAGE;
            }
            o.chatter_ms = (int)n;
            break;
        case 'M':
            if (parse_long(optarg, 1, 3600000, &n)) {
                fprintf(stderr, "simulate: --master takes 1..3600000 ms\n");
                return CLI_EXIT_USAGE;
            }
            o.master_ms = (int)n;
            break;
        case 'R':
            if (parse_long(optarg, 0, 1000000000, &n)) {
                fprintf(stderr, "simulate: --rounds takes a count (0 = no end)\n");
                return CLI_EXIT_USAGE;
            }
            o.master_rounds = (int)n;
            break;
        case 'r':
            o.relay = 1;
            break;
        case 'X':
            if (sim_mix_parse(optarg, &o.mix)) {
                fprintf(stderr, "simulate: bad --mix '%s' (KIND=PCT,... at most 100 %% in all, "
                                "or soak)\n", optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'L':
            o.log_path = optarg;
            break;
        case 'u':
            o.unpaced = true;
            break;
        case 'h':
            usage(stdout);
            return CLI_EXIT_OK;
        default:
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc || (o.variant == NULL && !modbus) || addrs == NULL) {
        fprintf(stderr, "simulate: --protocol and --addresses are required\n");
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    int cnt = sim_parse_addresses(addrs, o.addresses, SIM_MAX_PACKS);
    if (cnt <= 0) {
        fprintf(stderr, "simulate: bad address list '%s' (e.g. 1-4, 1,3,7)\n", addrs);
        return CLI_EXIT_USAGE;
    }
    o.naddresses = (size_t)cnt;
    if (o.relay && (modbus || !s42_has_relay(o.variant))) {
        fprintf(stderr, "simulate: --relay is for pace and pylontech (their requests name the "
                        "target pack)\n");
        return CLI_EXIT_USAGE;
    }
    if (o.master_ms > 0 && o.chatter_ms > 0) {
        fprintf(stderr, "simulate: --master and --chatter exclude each other (one other master)\n");
        return CLI_EXIT_USAGE;
    }
    for (size_t i = 0; i < o.ncollide; i++) {
        if (memchr(o.addresses, o.collide[i], o.naddresses) == NULL) {
            fprintf(stderr, "simulate: --collide %u is not one of --addresses %s\n",
                    (unsigned)o.collide[i], addrs);
            return CLI_EXIT_USAGE;
        }
    }
    if ((o.mix.on || o.log_path || o.unpaced) && modbus) {
        fprintf(stderr, "simulate: --mix, --log and --unpaced are Service 42 options\n");
        return CLI_EXIT_USAGE;
    }
    if ((o.mix.on || o.log_path) &&
        (o.nfaults || o.ncollide || o.chatter_ms || o.master_ms || o.relay)) {
        fprintf(stderr, "simulate: --mix and --log go without --fault, --collide, --chatter, "
                        "--master and --relay (the log must tell everything that happened on "
                        "the bus)\n");
        return CLI_EXIT_USAGE;
    }
    for (size_t i = 0; i < o.nfaults && modbus; i++) {
        if (o.faults[i].cid2 != 0) {
            fprintf(stderr, "simulate: no-alarms, ignore-alarms and late-alarms are Service 42 "
                            "faults (modbus has no 0x44)\n");
            return CLI_EXIT_USAGE;
        }
    }
    cli_install_signals();
    if (modbus)
        return run_modbus(&o, cnt, addrs);
    struct sim *s;
    int err = sim_new(&o, &s);
    if (err) {
        fprintf(stderr, "simulate: cannot start: %s\n", strerror(-err));
        return CLI_EXIT_FAIL;
    }
    printf("%s\n", sim_slave_path(s));
    fflush(stdout);
    log_info("simulating %d %s pack(s) at %s on %s%s%s", cnt, s42_variant_name(o.variant), addrs,
             sim_slave_path(s), o.link ? " -> " : "", o.link ? o.link : "");
    err = sim_run(s, &cli_stop);
    sim_free(s);
    if (err) {
        fprintf(stderr, "simulate: %s\n", strerror(-err));
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}
