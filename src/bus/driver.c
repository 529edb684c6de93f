/* driver: Service 42 exchanges over a serial port, with every failure classified. */
#include "now.h"
#include "driver.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

const char *driver_status_name(enum driver_status st)
{
    static const char *const names[] = {"ok",      "timeout", "checksum", "malformed",
                                        "refused", "foreign", "port"};
    return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "unknown";
}

static int fail(struct driver_error *e, enum driver_status st, int err)
{
    e->status = st;
    e->err = err;
    return -1;
}

static enum driver_status classify(int s42err)
{
    switch (-s42err) {
    case S42_E_CHKSUM:
    case S42_E_LCHKSUM:
        return DRIVER_CHECKSUM;
    case S42_E_VER:
    case S42_E_ADR:
    case S42_E_CID1:
        return DRIVER_FOREIGN;
    default:
        return -s42err >= S42_E_RTN_VER ? DRIVER_REFUSED : DRIVER_MALFORMED;
    }
}

int driver_exchange_via(struct serial_port *port, const struct s42_variant *v, uint8_t via,
                        uint8_t adr, uint8_t cid2, struct s42_frame *out, struct driver_error *e)
{
    char req[64], resp[S42_MAX_FRAME + 2];
    int n = s42_request_via(v, cid2, via, adr, req, sizeof req);
    if (n < 0) {
        snprintf(e->msg, sizeof e->msg, "cannot build request 0x%02X: %s", cid2,
                 s42_strerror(n));
        return fail(e, DRIVER_MALFORMED, n);
    }
    long long deadline = now_mono_ms() + serial_answer_ms(port, (size_t)n);
    int r = serial_transact(port, req, (size_t)n, resp, sizeof resp);
    struct s42_diag d = {0};
    char why[160];
    int err = 0;
    /* A late answer of a pack that timed out before may arrive first: a valid frame from another
     * address is skipped, and we keep listening for ours until the same deadline. */
    for (int late = 0;; late++) {
        if (r == -ETIMEDOUT) {
            snprintf(e->msg, sizeof e->msg, "no answer from address %u on %s within %d ms", adr,
                     serial_path(port), serial_timeout_ms(port));
            return fail(e, DRIVER_TIMEOUT, r);
        }
        if (r == -EMSGSIZE) {
            snprintf(e->msg, sizeof e->msg,
                     "answer from address %u on %s longer than any frame", adr,
                     serial_path(port));
            return fail(e, DRIVER_MALFORMED, r);
        }
        if (r < 0) {
            snprintf(e->msg, sizeof e->msg, "%s: %s", serial_path(port), serial_strerror(r));
            return fail(e, DRIVER_PORT, r);
        }
        err = s42_parse(resp, (size_t)r, out, &d);
        if (err == 0)
            err = s42_check(out, v, via, &d); /* the master answers for the pack it relays to */
        long long left = deadline - now_mono_ms();
        if (err != -S42_E_ADR || late >= 3 || left <= 0)
            break;
        r = serial_read_frame(port, '~', '\r', resp, sizeof resp, (int)left);
    }
    if (err) {
        snprintf(e->msg, sizeof e->msg, "address %u on %s: %s", adr, serial_path(port),
                 s42_describe(err, &d, why, sizeof why));
        e->rtn = out->cid2; /* the RTN code, when the pack refused */
        return fail(e, classify(err), err);
    }
    return 0;
}

int driver_exchange(struct serial_port *port, const struct s42_variant *v, uint8_t adr,
                    uint8_t cid2, struct s42_frame *out, struct driver_error *e)
{
    return driver_exchange_via(port, v, adr, adr, cid2, out, e);
}

static int decode_fail(struct driver_error *e, struct serial_port *port, uint8_t adr,
                       uint8_t cid2, int err, const struct s42_diag *d)
{
    char why[160];
    snprintf(e->msg, sizeof e->msg, "address %u on %s, command 0x%02X: %s", adr,
             serial_path(port), cid2, s42_describe(err, d, why, sizeof why));
    return fail(e, classify(err), err);
}

void driver_alarms_init(struct driver_alarms *a, int64_t retry_ms)
{
    memset(a, 0, sizeof *a);
    a->every = 1;
    a->retry_ms = retry_ms;
    a->timeouts_to_mark = DRIVER_ALARMS_TIMEOUTS;
}

void driver_alarms_cadence(struct driver_alarms *a, int every, int stagger)
{
    a->every = every < 1 ? 1 : every;
    a->stagger = stagger > 0 ? stagger % a->every : 0;
}

/* What counts as a change of the analog values since the last 0x44 read: below these, a
 * pack's flags do not change without the analog frame showing it first, except through the
 * BMS's own timers, which the every-Nth read bounds. */
enum {
    IDLE_MA = 300,       /* |current| below: neither charging nor discharging */
    STEP_MA = 5000,      /* a current step (a load, a charger, a FET opening) */
    CELL_STEP_MV = 30,   /* the lowest or highest cell */
    SPREAD_STEP_MV = 20, /* the cell spread (balancing, a weak cell) */
    TEMP_STEP_DC = 20,   /* 2 °C, the coldest or hottest probe */
    SOC_STEP_CPCT = 500, /* 5 % */
    PACK_STEP_MV = 500,
};

static void temp_range(const struct sample *s, int32_t *min, int32_t *max)
{
    *min = *max = SAMPLE_ABSENT;
    for (unsigned i = 0; i < s->ntemps && i < SAMPLE_MAX_TEMPS; i++) {
        int32_t t = s->temp_dc[i];
        if (t == SAMPLE_ABSENT)
            continue;
        if (*min == SAMPLE_ABSENT || t < *min)
            *min = t;
        if (*max == SAMPLE_ABSENT || t > *max)
            *max = t;
    }
}

static int moved(int32_t was, int32_t now, int32_t by)
{
    if (was == SAMPLE_ABSENT || now == SAMPLE_ABSENT)
        return was != now;
    int64_t d = (int64_t)now - was;
    return d >= by || d <= -by;
}

static int direction(int32_t ma)
{
    return ma == SAMPLE_ABSENT ? 2 : ma > IDLE_MA ? 1 : ma < -IDLE_MA ? -1 : 0;
}

/* The flags a 0x42 answer carries itself (variants with status in the analog frame). */
static int analog_flags_differ(const struct sample *l, const struct sample *s)
{
    return (s->has & SAMPLE_HAS_ALARMS) &&
           (s->alarms != l->alarms || s->protection != l->protection || s->state != l->state);
}

int driver_alarms_due(const struct driver_alarms *a, const struct sample *s)
{
    const struct sample *l = &a->last;
    if (a->every <= 1 || !a->have_last || a->since + 1 >= a->every)
        return 1;
    if (l->alarms || l->protection) /* raised: watched at every poll until it clears */
        return 1;
    int32_t tmin, tmax, was_min, was_max;
    temp_range(s, &tmin, &tmax);
    temp_range(l, &was_min, &was_max);
    return analog_flags_differ(l, s) || s->ncells != l->ncells || s->ntemps != l->ntemps ||
           direction(s->current_ma) != direction(l->current_ma) ||
           moved(l->current_ma, s->current_ma, STEP_MA) ||
           moved(l->cell_min_mv, s->cell_min_mv, CELL_STEP_MV) ||
           moved(l->cell_max_mv, s->cell_max_mv, CELL_STEP_MV) ||
           moved(l->cell_diff_mv, s->cell_diff_mv, SPREAD_STEP_MV) ||
           moved(was_min, tmin, TEMP_STEP_DC) || moved(was_max, tmax, TEMP_STEP_DC) ||
           moved(l->soc_cpct, s->soc_cpct, SOC_STEP_CPCT) ||
           moved(l->voltage_mv, s->voltage_mv, PACK_STEP_MV);
}

/* A 0x44 answer merged into *s: kept as what later polls carry and measure against. */
static void remember(struct driver_alarms *a, const struct sample *s)
{
    a->last = *s;
    a->have_last = 1;
    a->since = a->stagger;
    a->stagger = 0;
}

/* A poll without 0x44: the last answer's flags, marked as carried and how old. */
static void carry(struct driver_alarms *a, struct sample *s)
{
    const struct sample *l = &a->last;
    const uint32_t flags = SAMPLE_HAS_ALARMS | SAMPLE_HAS_BALANCE;
    a->since++;
    a->carried++;
    s->has = (s->has & ~flags) | (l->has & flags) | SAMPLE_ALARMS_CARRIED;
    s->alarms = l->alarms;
    s->protection = l->protection;
    s->state = l->state;
    s->balancing = l->balancing;
    memcpy(s->raw_status, l->raw_status, sizeof s->raw_status);
    s->nraw_status = l->nraw_status;
    s->alarms_age = (uint16_t)(a->since > UINT16_MAX ? UINT16_MAX : a->since);
}

static int read_alarms_via(struct serial_port *port, const struct s42_variant *v, uint8_t via,
                           uint8_t adr, struct sample *io, struct driver_error *e)
{
    struct s42_frame f;
    struct s42_diag d = {0};
    if (driver_exchange_via(port, v, via, adr, S42_CID2_ALARM, &f, e)) {
        if (e->status == DRIVER_TIMEOUT) {
            /* A pack that answers late would put its 0x44 answer on the wire while we ask it
             * the next thing (identity, the next poll), and response frames do not say which
             * command they answer. Wait for it here; what came before a request is flushed. */
            char late[S42_MAX_FRAME + 2];
            int r = serial_read_frame(port, '~', '\r', late, sizeof late, serial_timeout_ms(port));
            if (r == -ECANCELED || (r < 0 && r != -ETIMEDOUT && r != -EMSGSIZE)) {
                snprintf(e->msg, sizeof e->msg, "%s: %s", serial_path(port), serial_strerror(r));
                return fail(e, r == -ECANCELED ? DRIVER_TIMEOUT : DRIVER_PORT, r);
            }
        }
        return -1;
    }
    struct sample s = *io;
    int err = s42_decode_alarm(v, &f, &s, &d);
    if (err)
        return decode_fail(e, port, adr, S42_CID2_ALARM, err, &d);
    s.address = adr;
    *io = s;
    return 0;
}

int driver_read_alarms(struct serial_port *port, const struct s42_variant *v, uint8_t adr,
                       struct sample *io, struct driver_error *e)
{
    return read_alarms_via(port, v, adr, adr, io, e);
}

void driver_alarms_why(const struct driver_error *e, int timeout_ms, char *buf, size_t cap)
{
    if (e->status == DRIVER_TIMEOUT)
        snprintf(buf, cap, "no answer within %d ms", timeout_ms);
    else if (e->err == -S42_E_RTN_UNKNOWN)
        snprintf(buf, cap, "BMS answered RTN %02X", e->rtn);
    else if (e->status == DRIVER_REFUSED)
        snprintf(buf, cap, "%s", s42_strerror(e->err));
    else
        snprintf(buf, cap, "%s", e->msg);
}

/* One 0x44 for the poll of *s: merges the flags, or records why they are unknown. Returns -1
 * only when the port failed or a stop was asked (*e says which). */
static int poll_alarms(struct serial_port *port, const struct s42_variant *v, uint8_t via,
                       uint8_t adr, struct driver_alarms *al, int64_t now_ms, struct sample *s,
                       struct driver_error *e)
{
    struct driver_error ae = {DRIVER_OK, 0, "", 0};
    if (al->unsupported && now_ms < al->next_ask_ms) {
        s->has |= SAMPLE_ALARMS_UNSUPPORTED;
        return 0;
    }
    if (!al->unsupported && !driver_alarms_due(al, s)) {
        carry(al, s);
        return 0;
    }
    al->asked++;
    al->have_last = 0; /* until this read succeeds: a failed one is tried again next poll */
    int64_t t0 = now_mono_ms();
    int rc = read_alarms_via(port, v, via, adr, s, &ae);
    al->alarm_ms = now_mono_ms() - t0;
    if (rc == 0) {
        al->changed = al->unsupported;
        al->unsupported = 0;
        al->timeouts_in_row = 0;
        remember(al, s);
        return 0;
    }
    if (ae.status == DRIVER_PORT || ae.err == -ECANCELED) {
        *e = ae;
        return -1;
    }
    al->failures++;
    al->timeouts_in_row = ae.status == DRIVER_TIMEOUT ? al->timeouts_in_row + 1 : 0;
    /* An RTN error is the pack's answer; silence twice in a row too. A checksum error or a
     * frame we cannot read is the bus's doing: the flags of this poll are unknown, that is all. */
    if (ae.status == DRIVER_REFUSED ||
        (ae.status == DRIVER_TIMEOUT && al->timeouts_in_row >= al->timeouts_to_mark) ||
        al->unsupported) {
        driver_alarms_why(&ae, serial_timeout_ms(port), al->why, sizeof al->why);
        al->changed = !al->unsupported;
        al->unsupported = 1;
        al->next_ask_ms = now_ms + al->retry_ms;
        s->has |= SAMPLE_ALARMS_UNSUPPORTED;
    }
    return 0;
}

int driver_poll_via(struct serial_port *port, const struct s42_variant *v, uint8_t via,
                    uint8_t adr, struct driver_alarms *al, int64_t now_ms, struct sample *out,
                    struct driver_error *e)
{
    struct s42_frame f;
    struct s42_diag d = {0};
    struct sample s;
    struct driver_alarms every_poll;
    if (al == NULL) {
        driver_alarms_init(&every_poll, 0);
        al = &every_poll;
    }
    al->changed = 0;
    int64_t t0 = now_mono_ms();
    int rc = driver_exchange_via(port, v, via, adr, S42_CID2_ANALOG, &f, e);
    al->analog_ms = now_mono_ms() - t0;
    if (rc)
        return -1;
    int err = s42_decode_analog(v, &f, &s, &d);
    if (err)
        return decode_fail(e, port, adr, S42_CID2_ANALOG, err, &d);
    s.address = adr;
    return driver_poll_alarms(port, v, via, adr, al, now_ms, &s, out, e);
}

int driver_poll_alarms(struct serial_port *port, const struct s42_variant *v, uint8_t via,
                       uint8_t adr, struct driver_alarms *al, int64_t now_ms,
                       const struct sample *analog, struct sample *out, struct driver_error *e)
{
    struct sample s = *analog;
    struct driver_alarms every_poll;
    if (al == NULL) {
        driver_alarms_init(&every_poll, 0);
        al = &every_poll;
    }
    if (s42_has_command(v, S42_CID2_ALARM) == 2 &&
        poll_alarms(port, v, via, adr, al, now_ms, &s, e))
        return -1;
    *out = s;
    e->status = DRIVER_OK;
    e->err = 0;
    e->msg[0] = '\0';
    return 0;
}

int driver_poll(struct serial_port *port, const struct s42_variant *v, uint8_t adr,
                struct driver_alarms *al, int64_t now_ms, struct sample *out,
                struct driver_error *e)
{
    return driver_poll_via(port, v, adr, adr, al, now_ms, out, e);
}

int driver_poll_all(struct serial_port *port, const struct s42_variant *v, uint8_t via,
                    struct sample *out, size_t cap, size_t *n, struct driver_error *e)
{
    struct s42_frame f;
    struct s42_diag d = {0};
    *n = 0;
    if (!s42_has_relay(v)) {
        snprintf(e->msg, sizeof e->msg, "%s has no all-packs request", s42_variant_name(v));
        return fail(e, DRIVER_REFUSED, -S42_E_UNSUPPORTED);
    }
    if (driver_exchange_via(port, v, via, 0xFF, S42_CID2_ANALOG, &f, e))
        return -1;
    int err = s42_decode_analog_all(v, &f, via, out, cap, n, &d);
    if (err) {
        char why[160];
        snprintf(e->msg, sizeof e->msg, "the all-packs answer of the master at %u on %s: %s", via,
                 serial_path(port), s42_describe(err, &d, why, sizeof why));
        return fail(e, classify(err), err);
    }
    e->status = DRIVER_OK;
    e->err = 0;
    e->msg[0] = '\0';
    return 0;
}

int driver_identify(struct serial_port *port, const struct s42_variant *v, uint8_t adr,
                    struct s42_identity *out, struct driver_error *e)
{
    uint8_t cmds[8];
    size_t n = s42_identity_commands(v, cmds, sizeof cmds);
    struct s42_identity id;
    struct driver_error first = {DRIVER_OK, 0, "", 0};
    int answered = 0;
    s42_identity_init(&id);
    for (size_t i = 0; i < n; i++) {
        struct s42_frame f;
        struct s42_diag d = {0};
        int err = driver_exchange(port, v, adr, cmds[i], &f, e);
        if (err == 0) {
            err = s42_decode_identity(v, cmds[i], &f, &id, &d);
            if (err)
                decode_fail(e, port, adr, cmds[i], err, &d);
        }
        if (err == 0)
            answered = 1;
        else if (first.status == DRIVER_OK)
            first = *e;
        if (err && e->status == DRIVER_PORT)
            break;
    }
    if (!answered) {
        *e = first;
        return -1;
    }
    *out = id;
    return 0;
}
