/* cmd_scan: `bmsfleet scan` finds the packs on a bus (address, protocol variant, serial), warns
 * about an address two packs share and about another master on the bus, and prints a `packs:`
 * snippet for the configuration (or one JSON document).
 *
 * Each address gets the 0x42 request of each candidate protocol until something answers; an
 * address that answers is asked SCAN_TRIES times in all, and garbled or disagreeing answers are
 * the mark of two packs set to one DIP address. Silence is the common case, so a silent address
 * costs one timeout per distinct request and nothing more. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "driver.h"
#include "report.h"
#include "s42.h"
#include "serial.h"

#define SCAN_TRIES        3    /* 0x42 requests per answering address */
#define SCAN_TIMEOUT_MS   300  /* default per request: packs answer within ~250 ms at 9600 */
#define SCAN_LISTEN_MS    1000 /* default silent listen before the first request */
#define SCAN_MAX_VARIANTS 8
#define SCAN_MAX_SKIPPED  8   /* frames read past while waiting for ours (late answers, requests) */
#define SCAN_SOC_SPREAD   200 /* 0.01 %: one pack's SOC does not move 2 % between two polls */
#define SCAN_TEXT         192

static void usage(FILE *f)
{
    fputs("usage: bmsfleet scan --port DEV [--protocol auto|daren|pace|pylontech|seplos]\n"
          "                     [--from A] [--to A] [--baud B] [--timeout MS] [--gap MS]\n"
          "                     [--listen MS] [--rs485] [--json]\n"
          "Finds the packs on a bus: asks each address in each protocol until one answers,\n"
          "reads its identity, checks for two packs on one address and for another master,\n"
          "and prints a `packs:` snippet for the configuration.\n"
          "  --port DEV        serial device, e.g. /dev/serial/by-id/usb-FTDI_...\n"
          "  --protocol P      auto (default): daren, pace, pylontech, seplos in turn; or one\n"
          "  --from A, --to A  addresses to ask, 0..254 (default 1..16)\n"
          "  --baud B          1200..115200 (default 9600)\n"
          "  --timeout MS      answer deadline per request (default 300); a silent address\n"
          "                    costs it once per protocol tried\n"
          "  --gap MS          silence between frames on the bus (default 50)\n"
          "  --listen MS       first listen this long for another master (default 1000, 0 = no)\n"
          "  --rs485           enable the kernel RS485 mode (RTS drives the transceiver)\n"
          "  --json            one JSON document instead of the table and the snippet\n"
          "exit: 0 a pack answered, 1 port error, 2 usage, 3 no pack answered\n",
          f);
}

struct scan_args {
    const char *port;
    const struct s42_variant *cands[SCAN_MAX_VARIANTS]; /* in the order to try */
    size_t ncands;
    struct serial_opts so;
    int from, to, listen_ms, json;
};

/* Frames on the bus that were not answers to us. */
struct traffic {
    unsigned long long bytes; /* during the listen window, frames and noise */
    unsigned frames;          /* complete frames during the listen window */
    unsigned requests;        /* request-shaped frames during the listen window */
    unsigned scan_requests;   /* request-shaped frames while we scanned */
    unsigned echoes;          /* our own request read back (an adapter with local echo) */
    char example[96];         /* the first request seen, described */
};

enum probe_kind {
    PROBE_SILENT,   /* nothing before the deadline */
    PROBE_FOREIGN,  /* another family or another address answered */
    PROBE_GARBLED,  /* checksum error, malformed or incomplete frame */
    PROBE_NOVALUES, /* our pack answered without values: an RTN error, or an INFO we cannot read */
    PROBE_VALID,    /* our pack answered and its values decoded */
};

static const char *probe_name(enum probe_kind k)
{
    static const char *const names[] = {"silent", "foreign", "garbled", "no_values", "ok"};
    return names[k];
}

struct probe {
    enum probe_kind kind;
    const struct s42_variant *v; /* NOVALUES, VALID: the variant the answer is read as */
    struct sample s;             /* VALID */
    char note[SCAN_TEXT];
};

struct scan_row {
    uint8_t address;
    enum probe_kind kind; /* the best outcome of the tries */
    const struct s42_variant *v;
    int tries, corrupted;
    int have_sample, have_id;
    struct sample s; /* the first valid answer */
    struct s42_identity id;
    char serials[2][64]; /* distinct serials seen (the first two) */
    int nserials;
    char disagree[64]; /* how valid answers disagree, "" when they agree */
    char note[SCAN_TEXT];
};

struct scan {
    const struct scan_args *a;
    struct serial_port *port;
    const struct s42_variant *order[SCAN_MAX_VARIANTS]; /* a protocol that answered goes first */
    struct traffic t;
    struct scan_row *rows; /* the addresses where something answered */
    size_t nrows, nsilent;
    int interrupted;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int present(int32_t v)
{
    return v != SAMPLE_ABSENT;
}

/* Adds text to a "; "-separated list, once. */
static void append(char *buf, size_t cap, const char *text)
{
    size_t n = strlen(buf);
    if (text[0] == '\0' || strstr(buf, text) != NULL || n + 1 >= cap)
        return;
    int w = snprintf(buf + n, cap - n, "%s%s", n ? "; " : "", text);
    if ((w < 0 || (size_t)w >= cap - n) && cap >= 4) /* a long list is cut: mark it */
        memcpy(buf + cap - 4, "...", 4);
}

/* A frame whose CID2 is a command (0x42 …), not an RTN: a master's request, not an answer. */
static int request_shaped(const struct s42_frame *f)
{
    return s42_rtn_error(f->cid2) == S42_E_RTN_UNKNOWN;
}

static void note_request(struct traffic *t, const struct s42_frame *f, unsigned *count)
{
    const struct s42_variant *g = s42_variant_guess(f);
    if ((*count)++ == 0 && t->example[0] == '\0') {
        if (g != NULL)
            snprintf(t->example, sizeof t->example, "0x%02X to address %u in %s", f->cid2, f->adr,
                     s42_variant_name(g));
        else
            snprintf(t->example, sizeof t->example, "0x%02X to address %u, VER 0x%02X CID1 0x%02X",
                     f->cid2, f->adr, f->ver, f->cid1);
    }
}

/* Another master has been heard: frames that do not fit our request, and fragments of frames
 * our flush cut, are its traffic rather than an answer to us. */
static int master_heard(const struct traffic *t)
{
    return t->requests > 0 || t->scan_requests > 0;
}

/* VER, CID1 or ADR differ: not the answer to our request (though maybe to someone's). */
static int not_ours(int err)
{
    return err == -S42_E_VER || err == -S42_E_CID1 || err == -S42_E_ADR;
}

static int hex_byte(const char *p)
{
    int v = 0;
    for (int i = 0; i < 2; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* A frame that fails its checksum mostly keeps a readable header (VER ADR CID1 at chars 1..6):
 * true when that header says it is not the answer to our request. */
static int header_not_ours(const char *buf, int len, const struct s42_variant *v, uint8_t adr)
{
    if (len < 7)
        return 0;
    int ver = hex_byte(buf + 1), a = hex_byte(buf + 3), cid1 = hex_byte(buf + 5);
    if (ver < 0 || a < 0 || cid1 < 0)
        return 0;
    return ver != s42_variant_ver(v) || a != adr || cid1 != s42_variant_cid1(v);
}

/* Listens without sending: anything heard comes from another master or the packs it polls. */
static int listen_bus(struct serial_port *port, int ms, struct traffic *t)
{
    char buf[S42_MAX_FRAME + 2];
    struct s42_frame f;
    unsigned long long discarded = serial_get_stats(port)->discarded;
    long long deadline = now_ms() + ms;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0 || cli_stop)
            break;
        int r = serial_read_frame(port, '~', '\r', buf, sizeof buf, (int)left);
        if (r == -ETIMEDOUT)
            break;
        if (r == -EMSGSIZE)
            continue; /* counted in discarded */
        if (r < 0)
            return r;
        t->bytes += (unsigned)r;
        t->frames++;
        if (s42_parse(buf, (size_t)r, &f, NULL) == 0 && request_shaped(&f))
            note_request(t, &f, &t->requests);
    }
    t->bytes += serial_get_stats(port)->discarded - discarded;
    return 0;
}

/* What a frame that ended our wait means: our pack's values, its refusal, another family, or a
 * garbled frame. */
static void classify(const struct s42_variant *v, int err, const struct s42_frame *f,
                     const struct s42_diag *d, struct probe *out)
{
    char why[160];
    if (err == -S42_E_VER || err == -S42_E_CID1) {
        const struct s42_variant *g = s42_variant_guess(f);
        out->kind = PROBE_FOREIGN;
        snprintf(out->note, sizeof out->note, "a %s pack answered the %s request (VER 0x%02X)",
                 g ? s42_variant_name(g) : "foreign", s42_variant_name(v), f->ver);
        return;
    }
    if (err != 0) {
        out->kind = -err >= S42_E_RTN_VER ? PROBE_NOVALUES : PROBE_GARBLED;
        out->v = v;
        snprintf(out->note, sizeof out->note, "%s", s42_describe(err, d, why, sizeof why));
        return;
    }
    /* VER 0x20 / CID1 0x46 is Pylontech or Seplos, asked alike: the INFO layout tells them apart */
    const struct s42_variant *g = s42_variant_guess(f), *use = v;
    if (g != NULL && s42_variant_ver(g) == s42_variant_ver(v) &&
        s42_variant_cid1(g) == s42_variant_cid1(v))
        use = g;
    struct s42_diag d2 = {0};
    err = s42_decode_analog(use, f, &out->s, &d2);
    if (err != 0 && use != v) {
        use = v;
        err = s42_decode_analog(use, f, &out->s, &d2);
    }
    out->v = v;
    if (err != 0) {
        out->kind = PROBE_NOVALUES;
        snprintf(out->note, sizeof out->note, "answers, but not in the %s layout: %s",
                 s42_variant_name(v), s42_describe(err, &d2, why, sizeof why));
        return;
    }
    out->kind = PROBE_VALID;
    out->v = use;
    if (use != v)
        snprintf(out->note, sizeof out->note, "asked as %s, answers in the %s layout",
                 s42_variant_name(v), s42_variant_name(use));
}

/* One 0x42 request to adr in variant v, and what came back before the deadline. Frames from
 * another address (late answers) and other masters' requests are read past. 0 or -errno when
 * the port failed. */
static int probe(struct scan *sc, const struct s42_variant *v, uint8_t adr, struct probe *out)
{
    char buf[S42_MAX_FRAME + 2];
    char req[64];
    struct s42_frame f;
    struct s42_diag d = {0};
    memset(out, 0, sizeof *out);
    out->kind = PROBE_SILENT;
    int n = s42_request(v, S42_CID2_ANALOG, adr, req, sizeof req);
    if (n < 0)
        return -EINVAL;
    /* Whatever waits now was sent before our request: look at it before the flush drops it, as
     * another master's request there means the answers that follow may not be ours. */
    for (int r; (r = serial_read_frame(sc->port, '~', '\r', buf, sizeof buf, 0)) != -ETIMEDOUT;) {
        if (r == -EMSGSIZE)
            continue;
        if (r < 0)
            return r;
        if (s42_parse(buf, (size_t)r, &f, NULL) == 0 && request_shaped(&f))
            note_request(&sc->t, &f, &sc->t.scan_requests);
    }
    unsigned long long discarded = serial_get_stats(sc->port)->discarded;
    long long deadline = now_ms() + serial_timeout_ms(sc->port);
    int r = serial_transact(sc->port, req, (size_t)n, buf, sizeof buf);
    int other_adr = -1;
    for (int skipped = 0;; skipped++) {
        if (r == -ETIMEDOUT)
            break;
        if (r == -EMSGSIZE) {
            out->kind = PROBE_GARBLED;
            snprintf(out->note, sizeof out->note, "an answer longer than any frame");
            return 0;
        }
        if (r < 0)
            return r;
        int err = s42_parse(buf, (size_t)r, &f, &d);
        if (err == 0 && request_shaped(&f)) {
            if (r == n && memcmp(buf, req, (size_t)n) == 0) {
                sc->t.echoes++;
            } else {
                note_request(&sc->t, &f, &sc->t.scan_requests);
            }
        } else if (err == 0 && (err = s42_check(&f, v, adr, &d)) != 0 && not_ours(err) &&
                   master_heard(&sc->t)) {
            /* a pack answering the other master */
        } else if (err != 0 && !not_ours(err) && -err < S42_E_RTN_VER && master_heard(&sc->t) &&
                   header_not_ours(buf, r, v, adr)) {
            /* a garbled answer to the other master */
        } else if (err == -S42_E_ADR) {
            other_adr = f.adr; /* a late answer of a slow pack: ours may still come */
        } else {
            classify(v, err, &f, &d, out);
            return 0;
        }
        long long left = deadline - now_ms();
        if (left <= 0 || skipped >= SCAN_MAX_SKIPPED)
            break;
        r = serial_read_frame(sc->port, '~', '\r', buf, sizeof buf, (int)left);
    }
    unsigned long long lost = serial_get_stats(sc->port)->discarded - discarded;
    out->v = v;
    if (other_adr >= 0) {
        out->kind = PROBE_FOREIGN;
        snprintf(out->note, sizeof out->note,
                 "address %d answered instead (a late answer, or a relaying pack)", other_adr);
    } else if (lost > 0 && !master_heard(&sc->t)) {
        out->kind = PROBE_GARBLED;
        snprintf(out->note, sizeof out->note, "%llu bytes without a complete frame", lost);
    }
    return 0;
}

static void add_serial(struct scan_row *row, const char *serial)
{
    if (serial[0] == '\0')
        return;
    for (int i = 0; i < row->nserials && i < 2; i++)
        if (strcmp(row->serials[i], serial) == 0)
            return;
    if (row->nserials < 2)
        snprintf(row->serials[row->nserials], sizeof row->serials[0], "%s", serial);
    row->nserials++;
}

/* Values that cannot differ between two answers of one pack a second apart. */
static const char *disagreement(const struct sample *a, const struct sample *b)
{
    if (a->ncells != b->ncells)
        return "different cell counts";
    if (a->ntemps != b->ntemps)
        return "different temperature counts";
    if (a->full_mah != b->full_mah || a->design_mah != b->design_mah)
        return "different capacities";
    if (a->cycles != b->cycles)
        return "different cycle counts";
    if (present(a->soc_cpct) && present(b->soc_cpct) &&
        abs(a->soc_cpct - b->soc_cpct) > SCAN_SOC_SPREAD)
        return "different SOC";
    return NULL;
}

/* Folds one try into the row; a valid answer is followed by the identity commands. */
static int account(struct scan *sc, struct scan_row *row, const struct probe *p)
{
    row->tries++;
    if (p->kind > row->kind)
        row->kind = p->kind;
    if (p->v != NULL && row->v == NULL)
        row->v = p->v;
    if (p->kind == PROBE_GARBLED)
        row->corrupted++;
    if (p->kind != PROBE_SILENT && (p->kind != PROBE_GARBLED || row->corrupted == 1))
        append(row->note, sizeof row->note, p->note); /* how the first garbled one looked */
    if (p->kind != PROBE_VALID)
        return 0;
    if (!row->have_sample) {
        row->s = p->s;
        row->v = p->v;
        row->have_sample = 1;
    } else if (row->disagree[0] == '\0') {
        const char *why = disagreement(&row->s, &p->s);
        if (why != NULL)
            snprintf(row->disagree, sizeof row->disagree, "%s", why);
    }
    struct s42_identity id;
    struct driver_error e;
    if (driver_identify(sc->port, p->v, row->address, &id, &e) == 0) {
        add_serial(row, id.serial);
        if (!row->have_id) {
            row->id = id;
            row->have_id = 1;
        }
    } else if (e.status == DRIVER_PORT) {
        return e.err < 0 ? e.err : -EIO;
    }
    return 0;
}

/* Tries the candidate protocols at one address, then asks the one that answered again. */
static int scan_address(struct scan *sc, uint8_t adr, struct scan_row *row)
{
    char asked[SCAN_MAX_VARIANTS][64];
    size_t nasked = 0;
    struct probe p;
    const struct s42_variant *v = NULL;
    memset(row, 0, sizeof *row);
    row->address = adr;
    row->kind = PROBE_SILENT;
    for (size_t i = 0; i < sc->a->ncands && v == NULL && !cli_stop; i++) {
        char req[64];
        int known = 0;
        if (s42_request(sc->order[i], S42_CID2_ANALOG, adr, req, sizeof req) < 0)
            continue;
        for (size_t k = 0; k < nasked; k++)
            known = known || strcmp(asked[k], req) == 0;
        if (known)
            continue; /* Pylontech and Seplos ask alike: one timeout covers both */
        snprintf(asked[nasked++], sizeof asked[0], "%s", req);
        int rc = probe(sc, sc->order[i], adr, &p);
        if (rc != 0)
            return rc;
        if (p.kind == PROBE_FOREIGN) {
            if (row->kind == PROBE_SILENT)
                row->kind = PROBE_FOREIGN;
            append(row->note, sizeof row->note, p.note);
        } else if (p.kind != PROBE_SILENT) {
            v = sc->order[i];
        }
    }
    if (v == NULL)
        return 0;
    int rc = account(sc, row, &p);
    for (int k = 1; k < SCAN_TRIES && rc == 0 && !cli_stop; k++) {
        rc = probe(sc, v, adr, &p);
        if (rc == 0)
            rc = account(sc, row, &p);
    }
    if (row->kind >= PROBE_NOVALUES) { /* packs on one bus mostly share a protocol: ask it first */
        size_t i = 0;
        while (sc->order[i] != v)
            i++;
        for (; i > 0; i--)
            sc->order[i] = sc->order[i - 1];
        sc->order[0] = v;
    }
    return rc;
}

static int row_found(const struct scan_row *row)
{
    return row->kind >= PROBE_NOVALUES;
}

/* Two packs on one address: repeated garbling, or answers that cannot come from one pack. */
static int row_shared(const struct scan_row *row)
{
    return row->corrupted >= 2 || row->nserials > 1 || row->disagree[0] != '\0';
}

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

static void row_notes(const struct scan_row *row, char *buf, size_t cap)
{
    char part[160];
    buf[0] = '\0';
    if (row->corrupted) {
        snprintf(part, sizeof part, "%d of %d garbled", row->corrupted, row->tries);
        append(buf, cap, part);
    }
    if (row->nserials > 1) {
        snprintf(part, sizeof part, "serials %s, %s", row->serials[0], row->serials[1]);
        append(buf, cap, part);
    }
    append(buf, cap, row->disagree);
    append(buf, cap, row->note);
}

/* Collects the warnings in the order they are printed; calls add(text, ctx) for each. */
static void warnings(const struct scan *sc, void (*add)(const char *, void *), void *ctx)
{
    char w[512];
    const struct traffic *t = &sc->t;
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
        if (row_shared(row)) {
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
    const struct s42_variant *first = NULL;
    int mixed = 0;
    for (size_t i = 0; i < sc->nrows; i++) {
        if (!row_found(&sc->rows[i]))
            continue;
        if (first == NULL)
            first = sc->rows[i].v;
        mixed = mixed || sc->rows[i].v != first;
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
        printf("%s%s", i ? ", " : "", s42_variant_name(sc->a->cands[i]));
    printf(", %d baud, timeout %d ms\n", sc->a->so.baud, sc->a->so.timeout_ms);
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
    row_notes(row, notes, sizeof notes);
    printf("%-7u %-9s %5s %6s %8s  %-20s %-8s %s\n", row->address,
           row->v ? s42_variant_name(row->v) : "-", cells, soc, volt,
           row->have_id && row->id.serial[0] ? row->id.serial : "-",
           row->have_id && row->id.software[0] ? row->id.software : "-", notes);
    fflush(stdout);
}

static void print_snippet(const struct scan *sc)
{
    const struct s42_variant *first = NULL;
    size_t found = 0;
    for (size_t i = 0; i < sc->nrows; i++) {
        if (row_found(&sc->rows[i]) && first == NULL)
            first = sc->rows[i].v;
        found += (size_t)row_found(&sc->rows[i]);
    }
    if (found == 0) {
        printf("\nno pack answered at addresses %d..%d: check the wiring (A and B swapped?), the "
               "baud rate and the protocol\n",
               sc->a->from, sc->a->to);
        return;
    }
    printf("\n# port: %s, protocol %s, %d baud\n", sc->a->port, s42_variant_name(first),
           sc->a->so.baud);
    int mixed = 0;
    for (size_t i = 0; i < sc->nrows; i++)
        mixed = mixed || (row_found(&sc->rows[i]) && sc->rows[i].v != first);
    if (mixed)
        printf("# several protocols answered on this bus: the packs marked with another one need "
               "a port of their own\n");
    printf("packs:\n");
    for (size_t i = 0; i < sc->nrows; i++) {
        const struct scan_row *row = &sc->rows[i];
        if (!row_found(row))
            continue;
        printf("  - { address: 0x%02X, id: pack%u }", row->address, row->address);
        if (row->v != first)
            printf("  # %s", s42_variant_name(row->v));
        if (row_shared(row))
            printf("  # two packs may share this address");
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
    if (row->v)
        cJSON_AddStringToObject(o, "protocol", s42_variant_name(row->v));
    else
        cJSON_AddNullToObject(o, "protocol");
    cJSON_AddNumberToObject(o, "tries", row->tries);
    cJSON_AddNumberToObject(o, "corrupted", row->corrupted);
    cJSON_AddBoolToObject(o, "shared", row_shared(row));
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
    row_notes(row, notes, sizeof notes);
    cJSON_AddStringToObject(o, "notes", notes);
    return o;
}

static void print_json(const struct scan *sc)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "port", sc->a->port);
    cJSON_AddNumberToObject(doc, "baud", sc->a->so.baud);
    cJSON_AddNumberToObject(doc, "timeout_ms", sc->a->so.timeout_ms);
    cJSON_AddNumberToObject(doc, "from", sc->a->from);
    cJSON_AddNumberToObject(doc, "to", sc->a->to);
    cJSON *protos = cJSON_AddArrayToObject(doc, "protocols");
    for (size_t i = 0; i < sc->a->ncands; i++)
        cJSON_AddItemToArray(protos, cJSON_CreateString(s42_variant_name(sc->a->cands[i])));
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
        if (!row_found(row))
            continue;
        char id[16];
        snprintf(id, sizeof id, "pack%u", row->address);
        cJSON *p = cJSON_CreateObject();
        cJSON_AddNumberToObject(p, "address", row->address);
        cJSON_AddStringToObject(p, "id", id);
        cJSON_AddStringToObject(p, "protocol", s42_variant_name(row->v));
        cJSON_AddItemToArray(packs, p);
    }
    cJSON_AddNumberToObject(doc, "silent", (double)sc->nsilent);
    warnings(sc, json_warning, cJSON_AddArrayToObject(doc, "warnings"));
    report_print_json(stdout, doc);
}

/* ---- the command ---- */

static int run_scan(struct scan *sc)
{
    int tty = isatty(STDERR_FILENO);
    if (sc->a->listen_ms > 0) {
        if (tty)
            fprintf(stderr, "listening %d ms for other traffic...", sc->a->listen_ms);
        int rc = listen_bus(sc->port, sc->a->listen_ms, &sc->t);
        if (tty)
            fputs("\r\033[K", stderr);
        if (rc != 0) {
            fprintf(stderr, "bmsfleet scan: %s: %s\n", sc->a->port, serial_strerror(rc));
            return CLI_EXIT_FAIL;
        }
    }
    if (!sc->a->json)
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
        if (row->kind == PROBE_SILENT) {
            sc->nsilent++;
            continue;
        }
        sc->nrows++;
        if (!sc->a->json)
            print_row(row);
    }
    size_t found = 0;
    for (size_t i = 0; i < sc->nrows; i++)
        found += (size_t)row_found(&sc->rows[i]);
    if (sc->a->json) {
        print_json(sc);
    } else {
        int n = 0;
        printf("%zu pack(s) found, %zu address(es) silent\n", found, sc->nsilent);
        warnings(sc, print_warning, &n);
        print_snippet(sc);
    }
    fflush(stdout);
    return found > 0 ? CLI_EXIT_OK : CLI_EXIT_NODATA;
}

static int parse_args(int argc, char **argv, struct scan_args *a)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'P'}, {"protocol", required_argument, NULL, 'p'},
        {"from", required_argument, NULL, 'f'}, {"to", required_argument, NULL, 'T'},
        {"baud", required_argument, NULL, 'b'}, {"timeout", required_argument, NULL, 't'},
        {"gap", required_argument, NULL, 'g'},  {"listen", required_argument, NULL, 'l'},
        {"rs485", no_argument, NULL, 'r'},      {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0}};
    const char *proto = "auto";
    long n;
    int c;
    memset(a, 0, sizeof *a);
    serial_opts_default(&a->so);
    a->so.timeout_ms = SCAN_TIMEOUT_MS;
    a->from = 1;
    a->to = 16;
    a->listen_ms = SCAN_LISTEN_MS;
    optind = 1;
    while ((c = getopt_long(argc, argv, "P:p:f:T:b:t:g:l:rjh", opts, NULL)) != -1) {
        switch (c) {
        case 'P':
            a->port = optarg;
            break;
        case 'p':
            proto = optarg;
            break;
        case 'f':
        case 'T':
            if (cli_parse_long(optarg, 0, 254, &n)) {
                fprintf(stderr, "scan: --%s takes an address 0..254\n", c == 'f' ? "from" : "to");
                return CLI_EXIT_USAGE;
            }
            *(c == 'f' ? &a->from : &a->to) = (int)n;
            break;
        case 'b':
            if (cli_parse_long(optarg, 1200, 115200, &n) || !serial_baud_supported((int)n)) {
                fprintf(stderr, "scan: unsupported baud rate '%s' (1200..115200)\n", optarg);
                return CLI_EXIT_USAGE;
            }
            a->so.baud = (int)n;
            break;
        case 't':
            if (cli_parse_long(optarg, 10, 60000, &n)) {
                fprintf(stderr, "scan: --timeout takes 10..60000 ms\n");
                return CLI_EXIT_USAGE;
            }
            a->so.timeout_ms = (int)n;
            break;
        case 'g':
            if (cli_parse_long(optarg, 0, 10000, &n)) {
                fprintf(stderr, "scan: --gap takes 0..10000 ms\n");
                return CLI_EXIT_USAGE;
            }
            a->so.gap_ms = (int)n;
            break;
        case 'l':
            if (cli_parse_long(optarg, 0, 600000, &n)) {
                fprintf(stderr, "scan: --listen takes 0..600000 ms (0 = do not listen)\n");
                return CLI_EXIT_USAGE;
            }
            a->listen_ms = (int)n;
            break;
        case 'r':
            a->so.rs485 = 1;
            break;
        case 'j':
            a->json = 1;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc || a->port == NULL) {
        if (optind < argc)
            fprintf(stderr, "scan: unexpected argument '%s'\n", argv[optind]);
        else
            fprintf(stderr, "scan: --port is required\n");
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (a->from > a->to) {
        fprintf(stderr, "scan: --from %d is above --to %d\n", a->from, a->to);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(proto, "auto") == 0) {
        const struct s42_variant *v;
        for (size_t i = 0; (v = s42_variant_at(i)) != NULL && a->ncands < SCAN_MAX_VARIANTS; i++)
            a->cands[a->ncands++] = v;
    } else if ((a->cands[0] = s42_variant_find(proto)) != NULL) {
        a->ncands = 1;
    } else {
        fprintf(stderr, "scan: unknown protocol '%s' (auto, daren, pace, pylontech, seplos)\n",
                proto);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

int cmd_scan(int argc, char **argv)
{
    struct scan_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    struct scan sc;
    memset(&sc, 0, sizeof sc);
    sc.a = &a;
    memcpy(sc.order, a.cands, sizeof sc.order);
    sc.rows = calloc((size_t)a.to - (size_t)a.from + 1, sizeof *sc.rows);
    if (sc.rows == NULL) {
        fprintf(stderr, "bmsfleet scan: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    cli_install_signals();
    int err = serial_open(a.port, &a.so, &sc.port);
    if (err) {
        fprintf(stderr, "bmsfleet scan: cannot open %s: %s\n", a.port, serial_strerror(err));
        free(sc.rows);
        return CLI_EXIT_FAIL;
    }
    rc = run_scan(&sc);
    serial_close(sc.port);
    free(sc.rows);
    return rc;
}
