/* cmd_scan: `bmsfleet scan` finds the packs on a bus (address, protocol variant or Modbus,
 * serial), warns about an address two packs share and about another master on the bus, and
 * prints a `packs:` snippet for the configuration (or one JSON document). The probing is scan.c;
 * this file owns the options and the wording of the table, warnings, snippet and JSON. */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "devname.h"
#include "mbmap.h"
#include "report.h"
#include "s42.h"
#include "scan.h"
#include "serial.h"

#define SCAN_TIMEOUT_MS 300  /* default per request: packs answer within ~250 ms at 9600 */
#define SCAN_LISTEN_MS  1000 /* default silent listen before the first request */
#define SCAN_HEAR_MS    10000 /* default of --listen-only: a few rounds of a slow master */

static void usage(FILE *f)
{
    fputs("usage: bmsfleet scan --port DEV [--protocol P] [--from A] [--to A] [--baud B]\n"
          "                     [--timeout MS] [--gap MS] [--listen MS] [--listen-only]\n"
          "                     [--rs485] [--json]\n"
          "Finds the packs on a bus: asks each address in each protocol until one answers,\n"
          "reads its identity (Service 42; Modbus packs have none), checks for two packs on\n"
          "one address and for another master, and prints a `packs:` snippet for the\n"
          "configuration.\n"
          "  --port DEV        serial device, e.g. /dev/serial/by-id/usb-FTDI_...\n"
          "  --protocol P      daren, pace, pylontech, seplos, modbus (RTU), or auto (default):\n"
          "                    the four Service 42 ones in turn, then modbus only at the\n"
          "                    addresses where none of them answered\n"
          "  --from A, --to A  addresses to ask, 0..254 (default 1..16; Modbus: 1..247)\n"
          "  --baud B          1200..115200 (default 9600)\n"
          "  --timeout MS      answer deadline per request (default 300); a silent address\n"
          "                    costs it once per protocol tried\n"
          "  --gap MS          silence between frames on the bus (default 50)\n"
          "  --listen MS       first listen this long for another master (default 1000, 0 = no)\n"
          "  --listen-only     only listen (--listen MS, default 10000), never send: which\n"
          "                    master polls, in which protocol, which addresses it asks and\n"
          "                    which answer; prints a `mode: listen` snippet\n"
          "  --rs485           enable the kernel RS485 mode (RTS drives the transceiver)\n"
          "  --json            one JSON document instead of the table and the snippet\n"
          "exit: 0 a pack answered (--listen-only: a master was heard), 1 port error, 2 usage,\n"
          "      3 no pack answered (no master heard)\n",
          f);
}

static const char *probe_name(enum scan_probe_kind k)
{
    static const char *const names[] = {"silent", "foreign", "garbled", "no_values", "ok"};
    return names[k];
}

static int present(int32_t v)
{
    return v != SAMPLE_ABSENT;
}

/* ---- warnings ---- */

static void row_warning(const struct scan_row *row, int other_master, char *buf, size_t cap)
{
    char extra[128] = "";
    if (row->nserials > 1)
        snprintf(extra, sizeof extra, ", %d different serials", row->nserials);
    else if (row->disagree[0])
        snprintf(extra, sizeof extra, ", %s", row->disagree);
    snprintf(buf, cap,
             "address %u: answers are garbled or inconsistent (%d of %d corrupted%s): two packs "
             "may share this address; check their DIP switches%s",
             row->address, row->corrupted, row->tries, extra,
             other_master ? " (or it is the other master's traffic: scan again with it off)" : "");
}

/* Collects the warnings in the order they are printed; calls add(text, ctx) for each. */
static void collect_warnings(const struct scan *sc, void (*add)(const char *, void *), void *ctx)
{
    char w[512];
    const struct scan_traffic *t = &sc->t;
    int other_master = t->requests > 0 || t->scan_requests > 0;
    if (t->bytes > 0) {
        snprintf(w, sizeof w,
                 "traffic on the bus while bmsfleet was silent: another master (inverter, "
                 "monitoring dongle) may be polling; two masters collide (%llu bytes in %d ms, "
                 "%u frames, %u of them requests%s%s)",
                 t->bytes, sc->a->listen_ms, t->frames, t->requests, t->requests ? ", e.g. " : "",
                 t->requests ? t->example : "");
        add(w, ctx);
    }
    if (t->scan_requests > 0) {
        snprintf(w, sizeof w,
                 "requests from another master during the scan (%u, e.g. %s): two masters "
                 "collide; stop the other one or give bmsfleet a bus of its own",
                 t->scan_requests, t->example);
        add(w, ctx);
    }
    if (t->echoes > 0) {
        snprintf(w, sizeof w,
                 "our own requests came back %u times: the adapter echoes what it sends "
                 "(an RS232 bridge, or RS485 with local echo)",
                 t->echoes);
        add(w, ctx);
    }
    for (size_t i = 0; i < sc->nrows; i++) {
        const struct scan_row *row = &sc->rows[i];
        if (scan_row_shared(row)) {
            row_warning(row, other_master, w, sizeof w);
            add(w, ctx);
        } else if (row->corrupted == 1) {
            snprintf(w, sizeof w,
                     "address %u: 1 of %d answers garbled: noise on the bus (termination, "
                     "wiring), or an occasional collision",
                     row->address, row->tries);
            add(w, ctx);
        }
    }
    const char *first = NULL;
    int mixed = 0;
    for (size_t i = 0; i < sc->nrows; i++) {
        if (!scan_row_found(&sc->rows[i]))
            continue;
        if (first == NULL)
            first = scan_row_protocol(&sc->rows[i]);
        mixed = mixed || strcmp(scan_row_protocol(&sc->rows[i]), first) != 0;
    }
    if (mixed) {
        add("several protocols answered on this bus: a port polls in one protocol, so move the "
            "packs of the others to a port of their own",
            ctx);
    }
    if (sc->interrupted)
        add("interrupted: the scan did not reach every address", ctx);
}

/* ---- table and snippet ---- */

static void print_warning(const char *text, void *ctx)
{
    int *n = ctx;
    if ((*n)++ == 0)
        printf("\nwarnings:\n");
    printf("  %s\n", text);
}

static void print_header(const struct scan *sc)
{
    printf("scan of %s: addresses %d..%d, %s", sc->a->port, sc->a->from, sc->a->to,
           sc->a->ncands > 1 ? "protocols " : "protocol ");
    for (size_t i = 0; i < sc->a->ncands; i++)
        printf("%s%s", i ? ", " : "", scan_proto_name(sc->a->cands[i]));
    printf(", %d baud, timeout %d ms\n", sc->a->so.baud, sc->a->so.timeout_ms);
    if (sc->by_id[0] && strcmp(sc->by_id, sc->a->port) != 0)
        printf("stable name: %s (use this in device:)\n", sc->by_id);
    else if (sc->by_id[0] == '\0')
        printf("stable name: none in " DEVNAME_BY_ID_DIR
               " (a pseudo-terminal or a built-in UART? see bmsfleet.yaml(5), device)\n");
    if (sc->a->listen_ms > 0)
        printf("listened %d ms before sending: %s\n", sc->a->listen_ms,
               sc->t.bytes ? "traffic (see the warnings)" : "quiet");
    printf("\n%-7s %-9s %5s %6s %8s  %-20s %-8s %s\n", "address", "protocol", "cells", "SOC %",
           "voltage", "serial", "version", "notes");
    fflush(stdout);
}

static void print_row(const struct scan_row *row)
{
    char soc[16] = "-", volt[16] = "-", cells[8] = "-", notes[512];
    const struct sample *s = &row->s;
    if (row->have_sample) {
        snprintf(cells, sizeof cells, "%u", s->ncells);
        if (present(s->soc_cpct))
            snprintf(soc, sizeof soc, "%.1f", s->soc_cpct / 100.0);
        if (present(s->voltage_mv))
            snprintf(volt, sizeof volt, "%.2f", s->voltage_mv / 1000.0);
    }
    scan_row_notes(row, notes, sizeof notes);
    const char *proto = scan_row_protocol(row);
    printf("%-7u %-9s %5s %6s %8s  %-20s %-8s %s\n", row->address, proto ? proto : "-", cells, soc,
           volt, row->have_id && row->id.serial[0] ? row->id.serial : "-",
           row->have_id && row->id.software[0] ? row->id.software : "-", notes);
    fflush(stdout);
}

/* The protocol of the first pack found: the one the port's entry names. NULL: none found. */
static const char *port_protocol(const struct scan *sc)
{
    for (size_t i = 0; i < sc->nrows; i++)
        if (scan_row_found(&sc->rows[i]))
            return scan_row_protocol(&sc->rows[i]);
    return NULL;
}

static void print_snippet(const struct scan *sc)
{
    const char *first = port_protocol(sc);
    if (first == NULL) {
        printf("\nno pack answered at addresses %d..%d: check the wiring (A and B swapped?), the "
               "baud rate and the protocol\n",
               sc->a->from, sc->a->to);
        return;
    }
    printf("\n# port: %s, protocol %s, %d baud\n", sc->a->port, first, sc->a->so.baud);
    if (sc->by_id[0])
        printf("device: %s\n", sc->by_id); /* the stable name survives an unplug */
    int mixed = 0;
    for (size_t i = 0; i < sc->nrows; i++)
        mixed = mixed || (scan_row_found(&sc->rows[i]) &&
                          strcmp(scan_row_protocol(&sc->rows[i]), first) != 0);
    if (mixed)
        printf("# several protocols answered on this bus: the packs marked with another one need "
               "a port of their own\n");
    if (strcmp(first, "daren") != 0)
        printf("protocol: %s\n", first); /* the port's key: the default is daren */
    printf("packs:\n");
    for (size_t i = 0; i < sc->nrows; i++) {
        const struct scan_row *row = &sc->rows[i];
        if (!scan_row_found(row))
            continue;
        printf("  - { address: 0x%02X, id: pack%u }", row->address, row->address);
        if (strcmp(scan_row_protocol(row), first) != 0)
            printf("  # %s", scan_row_protocol(row));
        if (scan_row_shared(row))
            printf("  # two packs may share this address");
        if (row->alarms == SCAN_ALARMS_UNSUPPORTED)
            printf("  # answers 0x42 only: no alarms");
        putchar('\n');
    }
}

/* ---- JSON ---- */

static void json_warning(const char *text, void *ctx)
{
    cJSON_AddItemToArray(ctx, cJSON_CreateString(text));
}

static cJSON *json_row(const struct scan_row *row)
{
    char notes[512];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "address", row->address);
    cJSON_AddStringToObject(o, "status", probe_name(row->kind));
    if (scan_row_protocol(row) != NULL)
        cJSON_AddStringToObject(o, "protocol", scan_row_protocol(row));
    else
        cJSON_AddNullToObject(o, "protocol");
    cJSON_AddNumberToObject(o, "tries", row->tries);
    cJSON_AddNumberToObject(o, "corrupted", row->corrupted);
    cJSON_AddBoolToObject(o, "shared", scan_row_shared(row));
    if (row->have_sample) {
        cJSON_AddNumberToObject(o, "cells", row->s.ncells);
        if (present(row->s.soc_cpct))
            cJSON_AddNumberToObject(o, "soc", row->s.soc_cpct / 100.0);
        else
            cJSON_AddNullToObject(o, "soc");
        if (present(row->s.voltage_mv))
            cJSON_AddNumberToObject(o, "voltage", row->s.voltage_mv / 1000.0);
        else
            cJSON_AddNullToObject(o, "voltage");
    }
    if (row->have_id) {
        cJSON_AddItemToObject(o, "identity", report_identity_json(&row->id));
        cJSON *serials = cJSON_AddArrayToObject(o, "serials");
        for (int i = 0; i < row->nserials && i < 2; i++)
            cJSON_AddItemToArray(serials, cJSON_CreateString(row->serials[i]));
    }
    if (row->alarms == SCAN_ALARMS_UNKNOWN)
        cJSON_AddNullToObject(o, "alarms_supported");
    else
        cJSON_AddBoolToObject(o, "alarms_supported", row->alarms == SCAN_ALARMS_OK);
    scan_row_notes(row, notes, sizeof notes);
    cJSON_AddStringToObject(o, "notes", notes);
    return o;
}

static void print_json(const struct scan *sc)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "port", sc->a->port);
    if (sc->by_id[0])
        cJSON_AddStringToObject(doc, "by_id", sc->by_id);
    else
        cJSON_AddNullToObject(doc, "by_id");
    cJSON_AddNumberToObject(doc, "baud", sc->a->so.baud);
    cJSON_AddNumberToObject(doc, "timeout_ms", sc->a->so.timeout_ms);
    cJSON_AddNumberToObject(doc, "from", sc->a->from);
    cJSON_AddNumberToObject(doc, "to", sc->a->to);
    cJSON *protos = cJSON_AddArrayToObject(doc, "protocols");
    for (size_t i = 0; i < sc->a->ncands; i++)
        cJSON_AddItemToArray(protos, cJSON_CreateString(scan_proto_name(sc->a->cands[i])));
    if (port_protocol(sc) != NULL) /* what the port's `protocol:` key should say */
        cJSON_AddStringToObject(doc, "protocol", port_protocol(sc));
    else
        cJSON_AddNullToObject(doc, "protocol");
    cJSON *lis = cJSON_AddObjectToObject(doc, "listen");
    cJSON_AddNumberToObject(lis, "ms", sc->a->listen_ms);
    cJSON_AddNumberToObject(lis, "bytes", (double)sc->t.bytes);
    cJSON_AddNumberToObject(lis, "frames", sc->t.frames);
    cJSON_AddNumberToObject(lis, "requests", sc->t.requests);
    cJSON *rows = cJSON_AddArrayToObject(doc, "addresses");
    cJSON *packs = cJSON_AddArrayToObject(doc, "packs");
    for (size_t i = 0; i < sc->nrows; i++) {
        const struct scan_row *row = &sc->rows[i];
        cJSON_AddItemToArray(rows, json_row(row));
        if (!scan_row_found(row))
            continue;
        char id[16];
        snprintf(id, sizeof id, "pack%u", row->address);
        cJSON *p = cJSON_CreateObject();
        cJSON_AddNumberToObject(p, "address", row->address);
        cJSON_AddStringToObject(p, "id", id);
        cJSON_AddStringToObject(p, "protocol", scan_row_protocol(row));
        cJSON_AddItemToArray(packs, p);
    }
    cJSON_AddNumberToObject(doc, "silent", (double)sc->nsilent);
    collect_warnings(sc, json_warning, cJSON_AddArrayToObject(doc, "warnings"));
    report_print_json(stdout, doc);
}

/* ---- the command ---- */

static int run_scan(struct scan *sc, int json)
{
    int tty = isatty(STDERR_FILENO);
    if (sc->a->listen_ms > 0) {
        if (tty)
            fprintf(stderr, "listening %d ms for other traffic...", sc->a->listen_ms);
        int rc = scan_listen(sc);
        if (tty)
            fputs("\r\033[K", stderr);
        if (rc != 0) {
            fprintf(stderr, "bmsfleet scan: %s: %s\n", sc->a->port, serial_strerror(rc));
            return CLI_EXIT_FAIL;
        }
    }
    if (!json)
        print_header(sc);
    for (int adr = sc->a->from; adr <= sc->a->to; adr++) {
        if (cli_stop) {
            sc->interrupted = 1;
            break;
        }
        if (tty)
            fprintf(stderr, "\rasking address %d (%d..%d)...\033[K", adr, sc->a->from, sc->a->to);
        struct scan_row *row = &sc->rows[sc->nrows];
        int rc = scan_address(sc, (uint8_t)adr, row);
        if (tty)
            fputs("\r\033[K", stderr);
        if (rc != 0) {
            fprintf(stderr, "bmsfleet scan: %s: %s\n", sc->a->port, serial_strerror(rc));
            return CLI_EXIT_FAIL;
        }
        if (row->kind == SCAN_PROBE_SILENT) {
            sc->nsilent++;
            continue;
        }
        sc->nrows++;
        if (!json)
            print_row(row);
    }
    size_t found = 0;
    for (size_t i = 0; i < sc->nrows; i++)
        found += (size_t)scan_row_found(&sc->rows[i]);
    if (json) {
        print_json(sc);
    } else {
        int n = 0;
        printf("%zu pack(s) found, %zu address(es) silent\n", found, sc->nsilent);
        collect_warnings(sc, print_warning, &n);
        print_snippet(sc);
    }
    fflush(stdout);
    return found > 0 ? CLI_EXIT_OK : CLI_EXIT_NODATA;
}

/* The options of scan that take one whole number into an int of struct scan_opts. */
static const struct cli_int_option int_options[] = {
    {'f', 0, 254, offsetof(struct scan_opts, from), "--from takes an address 0..254"},
    {'T', 0, 254, offsetof(struct scan_opts, to), "--to takes an address 0..254"},
    {'l', 0, 600000, offsetof(struct scan_opts, listen_ms),
     "--listen takes 0..600000 ms (0 = do not listen)"},
};

/* The defaults before the options; listen_ms -1 until --listen or the mode decides it. */
static void scan_defaults(struct scan_opts *a, int *json)
{
    memset(a, 0, sizeof *a);
    a->stop = &cli_stop;
    *json = 0;
    serial_opts_default(&a->so);
    a->so.timeout_ms = SCAN_TIMEOUT_MS;
    a->from = 1;
    a->to = 16;
    a->listen_ms = -1;
}

/* The checks once every option is read: nothing left over, a port, something to listen for,
 * a range of addresses. 0 when they pass, else the exit code. */
static int check_args(int argc, char **argv, struct scan_opts *a)
{
    if (optind < argc || a->port == NULL) {
        if (optind < argc)
            fprintf(stderr, "scan: unexpected argument '%s'\n", argv[optind]);
        else
            fprintf(stderr, "scan: --port is required\n");
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (a->listen_ms < 0)
        a->listen_ms = a->listen_only ? SCAN_HEAR_MS : SCAN_LISTEN_MS;
    if (a->listen_only && a->listen_ms == 0) {
        fprintf(stderr, "scan: --listen-only needs --listen MS above 0\n");
        return CLI_EXIT_USAGE;
    }
    if (a->from > a->to) {
        fprintf(stderr, "scan: --from %d is above --to %d\n", a->from, a->to);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* The protocols to try, from --protocol: auto (every Service 42 variant, then Modbus), modbus
 * (within its address range) or one variant. 0, else the exit code. */
static int choose_protocols(struct scan_opts *a, const char *proto)
{
    if (strcmp(proto, "auto") == 0) {
        const struct s42_variant *v;
        for (size_t i = 0; (v = s42_variant_at(i)) != NULL && a->ncands + 1 < SCAN_MAX_VARIANTS;
             i++)
            a->cands[a->ncands++] = v;
        a->cands[a->ncands++] = SCAN_MODBUS; /* last: only where no Service 42 pack answered */
    } else if (strcmp(proto, "modbus") == 0) {
        a->cands[a->ncands++] = SCAN_MODBUS;
        if (a->from < 1 || a->to > MBMAP_MAX_SLAVE) {
            fprintf(stderr, "scan: Modbus slave addresses are 1..%d (asked %d..%d)\n",
                    MBMAP_MAX_SLAVE, a->from, a->to);
            return CLI_EXIT_USAGE;
        }
    } else if ((a->cands[0] = s42_variant_find(proto)) != NULL) {
        a->ncands = 1;
    } else {
        fprintf(stderr,
                "scan: unknown protocol '%s' (auto, daren, pace, pylontech, seplos, modbus)\n",
                proto);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* The command line into *a and *json. 0 when it holds a scan, -1 after --help, else the exit
 * code. */
static int parse_args(int argc, char **argv, struct scan_opts *a, int *json)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'P'}, {"protocol", required_argument, NULL, 'p'},
        {"from", required_argument, NULL, 'f'}, {"to", required_argument, NULL, 'T'},
        {"baud", required_argument, NULL, 'b'}, {"timeout", required_argument, NULL, 't'},
        {"gap", required_argument, NULL, 'g'},  {"listen", required_argument, NULL, 'l'},
        {"rs485", no_argument, NULL, 'r'},      {"json", no_argument, NULL, 'j'},
        {"listen-only", no_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0}};
    const char *proto = "auto";
    int c, rc;
    scan_defaults(a, json);
    optind = 1;
    while ((c = getopt_long(argc, argv, "P:p:f:T:b:t:g:l:Lrjh", opts, NULL)) != -1) {
        switch (c) {
        case 'P':
            a->port = optarg;
            break;
        case 'p':
            proto = optarg;
            break;
        case 'L':
            a->listen_only = 1;
            break;
        case 'j':
            *json = 1;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            rc = cli_take_serial_option("scan", &a->so, c, optarg);
            if (rc == 0)
                rc = cli_take_int_option("scan", int_options,
                                         sizeof int_options / sizeof int_options[0], a, c, optarg);
            if (rc == 0) {
                usage(stderr);
                return CLI_EXIT_USAGE;
            }
            if (rc != -1)
                return rc;
        }
    }
    if ((rc = check_args(argc, argv, a)) != 0)
        return rc;
    return choose_protocols(a, proto);
}

int cmd_scan(int argc, char **argv)
{
    struct scan_opts a;
    int json;
    int rc = parse_args(argc, argv, &a, &json);
    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    if (a.listen_only) {
        cli_install_signals();
        return cmd_scan_hear(&a, json);
    }
    struct scan sc;
    if (scan_init(&sc, &a) != 0) {
        fprintf(stderr, "bmsfleet scan: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    cli_install_signals();
    int err = scan_open(&sc);
    if (err) {
        fprintf(stderr, "bmsfleet scan: cannot open %s: %s\n", a.port, serial_strerror(err));
        scan_release(&sc);
        return CLI_EXIT_FAIL;
    }
    if (devname_by_id(DEVNAME_BY_ID_DIR, a.port, sc.by_id, sizeof sc.by_id) != 0)
        sc.by_id[0] = '\0'; /* none: a pty, a built-in UART, or no udev */
    rc = run_scan(&sc, json);
    scan_release(&sc);
    return rc;
}
