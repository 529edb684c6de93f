/* scan: the engine of `bmsfleet scan`: probes addresses, classifies the answers, and tells two
 * packs on one address and another master on the bus from a pack that simply answers.
 *
 * Each address gets the 0x42 request of each candidate protocol (or a Modbus register read) until
 * something answers; an address that answers is asked SCAN_TRIES times in all, and garbled or
 * disagreeing answers are the mark of two packs set to one DIP address. Silence is the common
 * case, so a silent address costs one timeout per distinct request and nothing more.
 *
 * Service 42 is read as raw frames from the serial module (to see other masters and collisions);
 * Modbus goes through the bus module (libmodbus), whose errors are already classified. One port
 * opens once, so the engine closes one before it opens the other. */
#include "now.h"
#include "scan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driver.h"
#include "mbmap.h"

#define SCAN_TRIES       3   /* 0x42 requests per answering address */
#define SCAN_MAX_SKIPPED 8   /* frames read past while waiting for ours (late answers, requests) */
#define SCAN_SOC_SPREAD  200 /* 0.01 %: one pack's SOC does not move 2 % between two polls */

struct probe {
    enum scan_probe_kind kind;
    const struct s42_variant *v; /* NOVALUES, VALID: the variant the answer is read as */
    int modbus;                  /* a Modbus RTU probe (v is NULL) */
    struct sample s;             /* VALID */
    char note[SCAN_TEXT];
};

int scan_init(struct scan *sc, const struct scan_opts *a)
{
    memset(sc, 0, sizeof *sc);
    sc->a = a;
    memcpy(sc->order, a->cands, sizeof sc->order);
    sc->rows = calloc((size_t)a->to - (size_t)a->from + 1, sizeof *sc->rows);
    return sc->rows == NULL ? -ENOMEM : 0;
}

void scan_release(struct scan *sc)
{
    serial_close(sc->port);
    bus_close(sc->mb);
    sc->port = NULL;
    sc->mb = NULL;
    free(sc->rows);
    sc->rows = NULL;
}

/* ---- the port: raw serial for Service 42, libmodbus for Modbus, one at a time ---- */

/* A port just opened does not know when the bus last carried a frame: keep the gap here. */
static int stopped(const struct scan *sc)
{
    return sc->a->stop != NULL && *sc->a->stop;
}

static void wait_gap(const struct scan *sc)
{
    long long left = sc->heard_ms + sc->a->so.gap_ms - now_mono_ms();
    if (sc->heard_ms > 0 && left > 0) {
        struct timespec ts = {.tv_sec = left / 1000, .tv_nsec = left % 1000 * 1000000};
        nanosleep(&ts, NULL); /* a signal ends it early: the stop flag is looked at next */
    }
}

static int use_serial(struct scan *sc)
{
    if (sc->port != NULL)
        return 0;
    bus_close(sc->mb);
    sc->mb = NULL;
    wait_gap(sc);
    int err = serial_open(sc->a->port, &sc->a->so, &sc->port);
    if (err == 0)
        serial_set_frame_chars(sc->port, s42_frame_chars); /* the Service 42 families' framing */
    return err;
}

static int use_modbus(struct scan *sc)
{
    struct driver_error e;
    if (sc->mb != NULL)
        return 0;
    serial_close(sc->port);
    sc->port = NULL;
    wait_gap(sc);
    return bus_open(sc->a->port, "modbus", &sc->a->so, &sc->mb, &e);
}

int scan_open(struct scan *sc)
{
    if (sc->a->listen_ms > 0 || sc->order[0] != SCAN_MODBUS)
        return use_serial(sc);
    return use_modbus(sc);
}

const char *scan_proto_name(const struct s42_variant *cand)
{
    return cand == SCAN_MODBUS ? "modbus" : s42_variant_name(cand);
}

const char *scan_row_protocol(const struct scan_row *row)
{
    return row->modbus ? "modbus" : row->v != NULL ? s42_variant_name(row->v) : NULL;
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

static void note_request(struct scan_traffic *t, const struct s42_frame *f, unsigned *count)
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
static int master_heard(const struct scan_traffic *t)
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
int scan_listen(struct scan *sc)
{
    char buf[S42_MAX_FRAME + 2];
    struct s42_frame f;
    struct scan_traffic *t = &sc->t;
    int rc = use_serial(sc);
    if (rc != 0)
        return rc;
    struct serial_port *port = sc->port;
    unsigned long long discarded = serial_get_stats(port)->discarded;
    long long deadline = now_mono_ms() + sc->a->listen_ms;
    for (;;) {
        long long left = deadline - now_mono_ms();
        if (left <= 0 || stopped(sc))
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
    if (t->bytes > 0)
        sc->heard_ms = now_mono_ms();
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
        out->kind = SCAN_PROBE_FOREIGN;
        snprintf(out->note, sizeof out->note, "a %s pack answered the %s request (VER 0x%02X)",
                 g ? s42_variant_name(g) : "foreign", s42_variant_name(v), f->ver);
        return;
    }
    if (err != 0) {
        out->kind = -err >= S42_E_RTN_VER ? SCAN_PROBE_NOVALUES : SCAN_PROBE_GARBLED;
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
        out->kind = SCAN_PROBE_NOVALUES;
        snprintf(out->note, sizeof out->note, "answers, but not in the %s layout: %s",
                 s42_variant_name(v), s42_describe(err, &d2, why, sizeof why));
        return;
    }
    out->kind = SCAN_PROBE_VALID;
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
    out->kind = SCAN_PROBE_SILENT;
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
    long long deadline = now_mono_ms() + serial_timeout_ms(sc->port);
    int r = serial_transact(sc->port, req, (size_t)n, buf, sizeof buf);
    int other_adr = -1;
    for (int skipped = 0;; skipped++) {
        if (r == -ETIMEDOUT)
            break;
        if (r == -EMSGSIZE) {
            out->kind = SCAN_PROBE_GARBLED;
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
        long long left = deadline - now_mono_ms();
        if (left <= 0 || skipped >= SCAN_MAX_SKIPPED)
            break;
        r = serial_read_frame(sc->port, '~', '\r', buf, sizeof buf, (int)left);
    }
    unsigned long long lost = serial_get_stats(sc->port)->discarded - discarded;
    out->v = v;
    if (other_adr >= 0) {
        out->kind = SCAN_PROBE_FOREIGN;
        snprintf(out->note, sizeof out->note,
                 "address %d answered instead (a late answer, or a relaying pack)", other_adr);
    } else if (lost > 0 && !master_heard(&sc->t)) {
        out->kind = SCAN_PROBE_GARBLED;
        snprintf(out->note, sizeof out->note, "%llu bytes without a complete frame", lost);
    }
    return 0;
}

/* What a Modbus poll's outcome means here, by driver_status; -1: the port failed. */
static const int modbus_kinds[] = {
    [DRIVER_OK] = SCAN_PROBE_VALID,
    [DRIVER_TIMEOUT] = SCAN_PROBE_SILENT,
    [DRIVER_CHECKSUM] = SCAN_PROBE_GARBLED,
    [DRIVER_MALFORMED] = SCAN_PROBE_GARBLED,
    [DRIVER_REFUSED] = SCAN_PROBE_NOVALUES,
    [DRIVER_FOREIGN] = SCAN_PROBE_FOREIGN,
    [DRIVER_PORT] = -1,
};

/* The driver's sentence for a row's notes: without the port (the table is about one port) and
 * without the advice after "; " (the warnings give it). */
static void modbus_note(const char *msg, const char *port, char *out, size_t cap)
{
    char buf[sizeof((struct driver_error *)NULL)->msg];
    size_t plen = strlen(port);
    const char *on = strstr(msg, " on ");
    while (on != NULL && strncmp(on + 4, port, plen) != 0)
        on = strstr(on + 1, " on ");
    if (on != NULL)
        snprintf(buf, sizeof buf, "%.*s%s", (int)(on - msg), msg, on + 4 + plen);
    else
        snprintf(buf, sizeof buf, "%s", msg);
    char *advice = strstr(buf, "; ");
    if (advice != NULL)
        *advice = '\0';
    size_t n = strnlen(buf, cap - 1); /* a note longer than the row's room is cut */
    memcpy(out, buf, n);
    out[n] = '\0';
}

/* One read of registers 0..36 of slave adr, classified like a 0x42 probe: values, an exception
 * (no values), CRC or framing errors (garbled), another slave (foreign), or silence. 0 or
 * -errno when the port failed. */
static int probe_modbus(struct scan *sc, uint8_t adr, struct probe *out)
{
    struct driver_error e;
    memset(out, 0, sizeof *out);
    out->modbus = 1;
    if (bus_poll(sc->mb, adr, NULL, &out->s, &e) == 0) {
        out->kind = SCAN_PROBE_VALID;
        return 0;
    }
    int kind = (size_t)e.status < sizeof modbus_kinds / sizeof modbus_kinds[0]
                   ? modbus_kinds[e.status]
                   : -1;
    if (kind < 0)
        return e.err < 0 ? e.err : -EIO;
    /* another master's Service 42 frames are noise or another slave to libmodbus: then only
     * Modbus-shaped answers (values, an exception, a CRC error) are taken as ours */
    if (master_heard(&sc->t) && (e.status == DRIVER_MALFORMED || e.status == DRIVER_FOREIGN))
        kind = SCAN_PROBE_SILENT;
    out->kind = (enum scan_probe_kind)kind;
    if (out->kind != SCAN_PROBE_SILENT)
        modbus_note(e.msg, sc->a->port, out->note, sizeof out->note);
    return 0;
}

/* One probe of candidate c at adr, on the port it needs. */
static int ask(struct scan *sc, const struct s42_variant *c, uint8_t adr, struct probe *out)
{
    int rc = c == SCAN_MODBUS ? use_modbus(sc) : use_serial(sc);
    if (rc == 0)
        rc = c == SCAN_MODBUS ? probe_modbus(sc, adr, out) : probe(sc, c, adr, out);
    if (rc == 0 && out->kind != SCAN_PROBE_SILENT)
        sc->heard_ms = now_mono_ms();
    return rc;
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
    if (a->soc_cpct != SAMPLE_ABSENT && b->soc_cpct != SAMPLE_ABSENT &&
        abs(a->soc_cpct - b->soc_cpct) > SCAN_SOC_SPREAD)
        return "different SOC";
    return NULL;
}

/* After the first valid answer: does the pack answer the alarm command too? Many firmwares
 * answer 0x42 only; the daemon then keeps their readings without alarms. */
static int ask_alarms(struct scan *sc, struct scan_row *row, const struct probe *p)
{
    if (row->alarms != SCAN_ALARMS_UNKNOWN)
        return 0; /* known: asked once (a garbled answer is asked again at the next try) */
    if (p->modbus || s42_has_command(p->v, S42_CID2_ALARM) != 2) {
        row->alarms = SCAN_ALARMS_OK; /* the flags come with the values */
        return 0;
    }
    struct driver_error e;
    struct sample s = row->s;
    if (driver_read_alarms(sc->port, p->v, row->address, &s, &e) == 0) {
        row->alarms = SCAN_ALARMS_OK;
    } else if (e.status == DRIVER_PORT) {
        return e.err < 0 ? e.err : -EIO;
    } else if (e.status == DRIVER_REFUSED || e.status == DRIVER_TIMEOUT) {
        row->alarms = SCAN_ALARMS_UNSUPPORTED;
        driver_alarms_why(&e, serial_timeout_ms(sc->port), row->alarms_why,
                          sizeof row->alarms_why);
    }
    return 0;
}

/* Folds one try into the row; a valid answer is followed by the identity commands. */
static int account(struct scan *sc, struct scan_row *row, const struct probe *p)
{
    row->tries++;
    if (p->kind > row->kind)
        row->kind = p->kind;
    if (p->modbus)
        row->modbus = 1;
    else if (p->v != NULL && row->v == NULL)
        row->v = p->v;
    if (p->kind == SCAN_PROBE_GARBLED)
        row->corrupted++;
    if (p->kind != SCAN_PROBE_SILENT && (p->kind != SCAN_PROBE_GARBLED || row->corrupted == 1))
        append(row->note, sizeof row->note, p->note); /* how the first garbled one looked */
    if (p->kind != SCAN_PROBE_VALID)
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
    int rc = ask_alarms(sc, row, p);
    if (rc != 0)
        return rc;
    struct s42_identity id;
    struct driver_error e;
    if (p->modbus && !bus_can_identify(sc->mb))
        return 0; /* Modbus packs have no identity registers */
    rc = p->modbus ? bus_identify(sc->mb, row->address, &id, &e)
                       : driver_identify(sc->port, p->v, row->address, &id, &e);
    if (rc == 0) {
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
int scan_address(struct scan *sc, uint8_t adr, struct scan_row *row)
{
    char asked[SCAN_MAX_VARIANTS][64];
    size_t nasked = 0;
    struct probe p;
    const struct s42_variant *v = NULL;
    int answered = 0; /* v answered (SCAN_MODBUS, NULL, is a candidate too) */
    memset(row, 0, sizeof *row);
    row->address = adr;
    row->kind = SCAN_PROBE_SILENT;
    for (size_t i = 0; i < sc->a->ncands && !answered && !stopped(sc); i++) {
        const struct s42_variant *c = sc->order[i];
        if (c == SCAN_MODBUS && (adr < 1 || adr > MBMAP_MAX_SLAVE))
            continue; /* not a slave address */
        if (c != SCAN_MODBUS) {
            char req[64];
            int known = 0;
            if (s42_request(c, S42_CID2_ANALOG, adr, req, sizeof req) < 0)
                continue;
            for (size_t k = 0; k < nasked; k++)
                known = known || strcmp(asked[k], req) == 0;
            if (known)
                continue; /* Pylontech and Seplos ask alike: one timeout covers both */
            snprintf(asked[nasked++], sizeof asked[0], "%s", req);
        }
        int rc = ask(sc, c, adr, &p);
        if (rc != 0)
            return rc;
        if (p.kind == SCAN_PROBE_FOREIGN) {
            if (row->kind == SCAN_PROBE_SILENT)
                row->kind = SCAN_PROBE_FOREIGN;
            append(row->note, sizeof row->note, p.note);
        } else if (p.kind != SCAN_PROBE_SILENT) {
            v = c;
            answered = 1;
        }
    }
    if (!answered)
        return 0;
    int rc = account(sc, row, &p);
    for (int k = 1; k < SCAN_TRIES && rc == 0 && !stopped(sc); k++) {
        rc = ask(sc, v, adr, &p);
        if (rc == 0)
            rc = account(sc, row, &p);
    }
    /* packs on one bus mostly share a protocol: ask it first */
    if (row->kind >= SCAN_PROBE_NOVALUES) {
        size_t i = 0;
        while (sc->order[i] != v)
            i++;
        for (; i > 0; i--)
            sc->order[i] = sc->order[i - 1];
        sc->order[0] = v;
    }
    return rc;
}

int scan_row_found(const struct scan_row *row)
{
    return row->kind >= SCAN_PROBE_NOVALUES;
}

/* Two packs on one address: repeated garbling, or answers that cannot come from one pack. */
int scan_row_shared(const struct scan_row *row)
{
    return row->corrupted >= 2 || row->nserials > 1 || row->disagree[0] != '\0';
}

void scan_row_notes(const struct scan_row *row, char *buf, size_t cap)
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
    if (row->alarms == SCAN_ALARMS_UNSUPPORTED) {
        snprintf(part, sizeof part, "alarms unsupported (0x44: %s)", row->alarms_why);
        append(buf, cap, part);
    }
}
