/* cmd_read: `bmsfleet read` polls one or more packs once (or every N seconds with --watch) and
 * prints a table or JSON. The same driver the daemon uses, without the daemon. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "parse.h"
#include "bus.h"
#include "driver.h"
#include "report.h"
#include "serial.h"
#include "sim.h"

static void usage(FILE *f)
{
    fputs("usage: bmsfleet read --port DEV --address A\n"
          "                     [--protocol daren|pace|pylontech|seplos|modbus]\n"
          "                     [--baud B] [--timeout MS] [--gap MS] [--rs485] [--identity]\n"
          "                     [--json] [--watch SECONDS]\n"
          "Polls the pack(s) at A (1, 0x01, 1-4 or 1,3,7) once and prints their values.\n"
          "  --port DEV        serial device, e.g. /dev/serial/by-id/usb-FTDI_...\n"
          "  --protocol P      Service 42 variant (default daren)\n"
          "  --baud B          1200..115200 (default 9600)\n"
          "  --timeout MS      answer deadline per request (default 1000)\n"
          "  --gap MS          silence between frames on the bus (default 50)\n"
          "  --rs485           enable the kernel RS485 mode (RTS drives the transceiver)\n"
          "  --identity        also ask protocol version, manufacturer and serial\n"
          "  --json            one JSON object per pack and line\n"
          "  --watch SECONDS   poll again every SECONDS and redraw, until Ctrl-C\n"
          "exit: 0 every pack read, 1 port error (missing, busy, unplugged), 2 usage,\n"
          "      3 a pack did not answer or sent an invalid frame\n",
          f);
}

struct read_args {
    const char *port;
    const char *protocol;
    const char *addr; /* --address as given, until it is parsed into addrs */
    struct serial_opts so;
    uint8_t addrs[SIM_MAX_PACKS];
    size_t naddrs;
    int json, identity;
    double watch_s;
};

/* One round over every address; al[i]: what address i's alarm command did in earlier rounds.
 * Returns an exit code. */
static int read_round(struct bus *port, const struct read_args *a, struct driver_alarms *al,
                      int table)
{
    int rc = CLI_EXIT_OK;
    if (table && !a->json)
        report_bank_header(stdout);
    for (size_t i = 0; i < a->naddrs && !cli_stop; i++) {
        struct sample s;
        struct driver_error e;
        if (bus_poll(port, a->addrs[i], &al[i], &s, &e)) {
            if (table && !a->json)
                report_bank_row_missing(stdout, a->addrs[i], driver_status_name(e.status));
            fprintf(stderr, "bmsfleet read: %s\n", e.msg);
            if (e.status == DRIVER_PORT)
                return CLI_EXIT_FAIL;
            rc = CLI_EXIT_NODATA;
            continue;
        }
        struct s42_identity id;
        int have_id = a->identity && bus_identify(port, a->addrs[i], &id, &e) == 0;
        if (a->identity && !have_id)
            fprintf(stderr, "bmsfleet read: identity: %s\n", e.msg);
        if (a->json) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            cJSON *o = report_sample_json_opts(&s, a->protocol,
                                               (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
                                               REPORT_JSON_UNKNOWN_NULL);
            if (have_id)
                cJSON_AddItemToObject(o, "identity", report_identity_json(&id));
            report_print_json(stdout, o);
        } else if (table) {
            report_bank_row(stdout, &s);
        } else {
            report_sample_table(stdout, &s, a->protocol, al[i].why);
            if (have_id)
                report_identity_table(stdout, &id);
        }
    }
    fflush(stdout);
    return rc;
}

static int open_port(const struct read_args *a, struct bus **port)
{
    struct driver_error e;
    int err = bus_open(a->port, a->protocol, &a->so, port, &e);
    if (err)
        fprintf(stderr, "bmsfleet read: cannot open %s\n", e.msg);
    return err;
}

/* A read has one chance: one silent 0x44 is enough to say the pack ignores it. */
static void alarms_init(struct driver_alarms *al, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        driver_alarms_init(&al[i], DRIVER_ALARMS_RETRY_MS);
        al[i].timeouts_to_mark = 1;
    }
}

static int watch(const struct read_args *a)
{
    struct driver_alarms al[SIM_MAX_PACKS];
    alarms_init(al, a->naddrs);
    struct bus *port = NULL;
    int tty = isatty(STDOUT_FILENO);
    int rc = CLI_EXIT_OK;
    while (!cli_stop) {
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        if (port == NULL && open_port(a, &port))
            port = NULL; /* unplugged: try again next round */
        if (!a->json && tty)
            fputs("\033[H\033[2J", stdout);
        if (!a->json) {
            time_t now = time(NULL);
            char when[32];
            strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&now));
            printf("bmsfleet read  %s  %s (%s)  every %.0f s, Ctrl-C to stop\n\n", when, a->port,
                   a->protocol, a->watch_s);
        }
        if (port) {
            rc = read_round(port, a, al, 1);
            if (rc == CLI_EXIT_FAIL) {
                bus_close(port);
                port = NULL;
            }
        } else {
            printf("(port not available)\n");
            fflush(stdout);
        }
        for (;;) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            double el = (double)(now.tv_sec - start.tv_sec) +
                        (double)(now.tv_nsec - start.tv_nsec) / 1e9;
            if (cli_stop || el >= a->watch_s)
                break;
            struct timespec nap = {0, 50 * 1000000};
            nanosleep(&nap, NULL);
        }
    }
    bus_close(port);
    return rc == CLI_EXIT_FAIL ? CLI_EXIT_OK : rc;
}

/* The options that are read's own: the packs and what to print. -1 when taken, 0 when c is
 * not one of them, else the exit code. */
static int take_read_option(struct read_args *a, int c, const char *arg)
{
    switch (c) {
    case 'P':
        a->port = arg;
        return -1;
    case 'a':
        a->addr = arg;
        return -1;
    case 'p':
        if (!bus_protocol_known(arg)) {
            fprintf(stderr,
                    "read: unknown protocol '%s' (daren, pace, pylontech, seplos, modbus)\n", arg);
            return CLI_EXIT_USAGE;
        }
        a->protocol = arg;
        return -1;
    case 'i':
        a->identity = 1;
        return -1;
    case 'j':
        a->json = 1;
        return -1;
    case 'w':
        if (parse_double(arg, 0.1, 86400, &a->watch_s)) {
            fprintf(stderr, "read: --watch takes seconds (0.1..86400)\n");
            return CLI_EXIT_USAGE;
        }
        return -1;
    default:
        return 0;
    }
}

/* The command line into *a. -1 when it holds a read, else the exit code (--help: 0). */
static int parse_args(int argc, char **argv, struct read_args *a)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'P'},     {"address", required_argument, NULL, 'a'},
        {"protocol", required_argument, NULL, 'p'}, {"baud", required_argument, NULL, 'b'},
        {"timeout", required_argument, NULL, 't'},  {"gap", required_argument, NULL, 'g'},
        {"rs485", no_argument, NULL, 'r'},          {"identity", no_argument, NULL, 'i'},
        {"json", no_argument, NULL, 'j'},           {"watch", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof *a);
    serial_opts_default(&a->so);
    a->protocol = "daren";
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "P:a:p:b:t:g:rijw:h", opts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return CLI_EXIT_OK;
        }
        int rc = take_read_option(a, c, optarg);
        if (rc == 0)
            rc = cli_take_serial_option("read", &a->so, c, optarg);
        if (rc == 0) {
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
        if (rc != -1)
            return rc;
    }
    if (optind < argc || a->port == NULL || a->addr == NULL) {
        if (optind < argc)
            fprintf(stderr, "read: unexpected argument '%s'\n", argv[optind]);
        else
            fprintf(stderr, "read: --port and --address are required\n");
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    int cnt = sim_parse_addresses(a->addr, a->addrs, SIM_MAX_PACKS);
    if (cnt <= 0) {
        fprintf(stderr, "read: bad address list '%s' (e.g. 1, 0x01, 1-4, 1,3,7)\n", a->addr);
        return CLI_EXIT_USAGE;
    }
    a->naddrs = (size_t)cnt;
    return -1;
}

int cmd_read(int argc, char **argv)
{
    struct read_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != -1)
        return rc;
    cli_install_signals();
    if (a.watch_s > 0)
        return watch(&a);
    struct bus *port;
    if (open_port(&a, &port))
        return CLI_EXIT_FAIL;
    struct driver_alarms al[SIM_MAX_PACKS];
    alarms_init(al, a.naddrs);
    rc = read_round(port, &a, al, a.naddrs > 1);
    bus_close(port);
    return rc;
}
