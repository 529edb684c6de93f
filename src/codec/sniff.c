/* sniff: requests and answers of another master, framed from the bytes of the line and decoded
 * (see sniff.h). One request is outstanding at a time, as on any half-duplex bus: the next
 * answer is its answer when it comes from the address asked, within the timeout. */
#include "sniff.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#define HOLD_TIMEOUTS 3 /* a 0x42 sample waits this many timeouts for its 0x44 */
#define QUEUE_ROOM    4 /* free slots feed keeps: one frame makes at most three events */

const char *sniff_kind_name(enum sniff_kind k)
{
    static const char *const names[] = {"?",       "request", "sample",  "unanswered",
                                        "refused", "bad",     "foreign", "unmatched"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

void sniff_init(struct sniff *s, const struct s42_variant *v, int timeout_ms)
{
    memset(s, 0, sizeof *s);
    s->v = v;
    s->timeout_ms = timeout_ms > 0 ? timeout_ms : 1000;
}

static struct sniff_event *push(struct sniff *s, enum sniff_kind k, uint8_t adr, uint8_t cmd,
                                int64_t at_ms)
{
    if (s->qlen == SNIFF_QUEUE) /* feed keeps room: only a caller that never drains gets here */
        return NULL;
    struct sniff_event *ev = &s->q[(s->qhead + s->qlen++) % SNIFF_QUEUE];
    memset(ev, 0, offsetof(struct sniff_event, sample)); /* the sample: only when one is set */
    ev->kind = k;
    ev->adr = adr;
    ev->cmd = cmd;
    ev->at_ms = at_ms;
    switch (k) {
    case SNIFF_REQUEST: s->n.requests++; break;
    case SNIFF_SAMPLE: s->n.samples++; break;
    case SNIFF_UNANSWERED: s->n.unanswered++; break;
    case SNIFF_REFUSED: s->n.refused++; break;
    case SNIFF_BAD: s->n.bad++; break;
    case SNIFF_FOREIGN: s->n.foreign++; break;
    case SNIFF_UNMATCHED: s->n.unmatched++; break;
    }
    return ev;
}

int sniff_next(struct sniff *s, struct sniff_event *ev)
{
    if (s->qlen == 0)
        return 0;
    *ev = s->q[s->qhead];
    s->qhead = (s->qhead + 1) % SNIFF_QUEUE;
    s->qlen--;
    return 1;
}

static void emit_sample(struct sniff *s, const struct sample *smp, int64_t at_ms)
{
    struct sniff_event *ev = push(s, SNIFF_SAMPLE, smp->address, 0, at_ms);
    if (ev != NULL)
        ev->sample = *smp;
}

static void release_held(struct sniff *s, int64_t at_ms)
{
    if (s->held)
        emit_sample(s, &s->held_sample, at_ms);
    s->held = 0;
}

/* A request older than the timeout got no answer. */
static void expire(struct sniff *s, int64_t now_ms)
{
    if (s->pending && now_ms - s->req_ms > s->timeout_ms) {
        push(s, SNIFF_UNANSWERED, s->req_adr, s->req_cmd, now_ms);
        s->pending = 0;
    }
}

static void on_request(struct sniff *s, uint8_t adr, uint8_t cmd, int64_t now_ms)
{
    if (s->pending)
        push(s, SNIFF_UNANSWERED, s->req_adr, s->req_cmd, now_ms);
    /* the 0x44 of the pack whose 0x42 is held completes it; anything else releases it */
    if (s->held && !(cmd == S42_CID2_ALARM && adr == s->held_sample.address))
        release_held(s, now_ms);
    push(s, SNIFF_REQUEST, adr, cmd, now_ms);
    s->pending = adr != 0 || s->v != NULL; /* a Modbus broadcast (slave 0) is not answered */
    s->req_adr = adr;
    s->req_cmd = cmd;
    s->req_ms = now_ms;
}

/* The answer part common to both protocols: 1 when it answers the pending request. */
static int match_answer(struct sniff *s, uint8_t adr, uint8_t cmd, int64_t now_ms)
{
    s->n.answers++;
    if (!s->pending) {
        push(s, SNIFF_UNMATCHED, adr, cmd, now_ms);
        return 0;
    }
    if (adr != s->req_adr) {
        push(s, SNIFF_FOREIGN, adr, s->req_cmd, now_ms); /* the asked pack may still answer */
        return 0;
    }
    s->pending = 0;
    return 1;
}

/* ---- Service 42 ---- */

/* Requests carry a command in CID2, answers an RTN code: 00, or one of the named errors (the
 * two sets do not overlap). */
static int s42_is_request(const struct s42_frame *f)
{
    return f->cid2 != 0 && s42_rtn_error(f->cid2) == S42_E_RTN_UNKNOWN;
}

static void s42_answer(struct sniff *s, const struct s42_frame *f, int64_t now_ms)
{
    const struct s42_variant *v = s->v;
    if (!match_answer(s, f->adr, f->cid2, now_ms))
        return;
    if (f->cid2 != 0) {
        struct sniff_event *ev = push(s, SNIFF_REFUSED, f->adr, s->req_cmd, now_ms);
        if (ev != NULL)
            ev->code = f->cid2;
        return;
    }
    struct sample smp;
    int err;
    if (s->req_cmd == S42_CID2_ANALOG) {
        release_held(s, now_ms);
        err = s42_decode_analog(v, f, &smp, NULL);
        if (err == 0 && s42_has_command(v, S42_CID2_ALARM) == 2) {
            s->held = 1; /* the 0x44 usually follows */
            s->held_sample = smp;
            s->req_ms = now_ms; /* the hold counts from here */
        } else if (err == 0) {
            emit_sample(s, &smp, now_ms);
        }
    } else if (s->req_cmd == S42_CID2_ALARM && s->held && s->held_sample.address == f->adr) {
        smp = s->held_sample;
        err = s42_decode_alarm(v, f, &smp, NULL);
        if (err == 0)
            s->held_sample = smp;
        release_held(s, now_ms); /* with its flags, or without them when they did not decode */
    } else {
        return; /* identity and other commands: nothing to store */
    }
    if (err) {
        struct sniff_event *ev = push(s, SNIFF_BAD, f->adr, s->req_cmd, now_ms);
        if (ev != NULL)
            ev->err = err;
    }
}

static void s42_frame_done(struct sniff *s, int64_t now_ms)
{
    struct s42_frame *f = &s->frame;
    s->n.frames++;
    int err = s42_parse(s->s42_buf, s->s42_len, f, NULL);
    s->s42_len = 0;
    if (err) {
        struct sniff_event *ev =
            push(s, SNIFF_BAD, s->pending ? s->req_adr : 0, s->pending ? s->req_cmd : 0, now_ms);
        if (ev != NULL)
            ev->err = err;
        return;
    }
    if (f->ver != s42_variant_ver(s->v) || f->cid1 != s42_variant_cid1(s->v)) {
        push(s, SNIFF_FOREIGN, f->adr, f->cid2, now_ms);
        return;
    }
    if (s42_is_request(f))
        on_request(s, f->adr, f->cid2, now_ms);
    else
        s42_answer(s, f, now_ms);
}

/* '~' starts a frame (and restarts one: resync), '\r' ends it, bytes outside are noise. */
static void s42_byte(struct sniff *s, uint8_t c, int64_t now_ms)
{
    if (c == '~') {
        s->n.dropped_bytes += s->s42_len;
        s->s42_buf[0] = (char)c;
        s->s42_len = 1;
        return;
    }
    if (s->s42_len == 0) {
        s->n.dropped_bytes++;
        return;
    }
    if (s->s42_len == sizeof s->s42_buf - 1) { /* longer than any frame */
        s->n.dropped_bytes += s->s42_len + 1;
        s->s42_len = 0;
        return;
    }
    s->s42_buf[s->s42_len++] = (char)c;
    if (c == '\r') {
        s->s42_buf[s->s42_len] = '\0';
        s42_frame_done(s, now_ms);
    }
}

/* ---- Modbus RTU ---- */

int sniff_mb_frame_len(const uint8_t *buf, size_t n, int as_request)
{
    if (n < 2)
        return 0;
    uint8_t fc = buf[1];
    if (fc & 0x80) /* an exception: slave, function | 0x80, code, CRC */
        return as_request || (fc & 0x7F) == 0 ? -1 : 5;
    switch (fc) {
    case 0x01:
    case 0x02:
    case 0x03:
    case 0x04:
        if (as_request)
            return 8;
        if (n < 3)
            return 0;
        if (buf[2] == 0 || ((fc == 0x03 || fc == 0x04) && (buf[2] & 1)) || buf[2] > 250)
            return -1;
        return 5 + buf[2];
    case 0x05:
    case 0x06:
        return 8; /* the answer echoes the request */
    case 0x0F:
    case 0x10:
        if (!as_request)
            return 8;
        if (n < 7)
            return 0;
        return buf[6] == 0 || buf[6] > 246 ? -1 : 9 + buf[6];
    default:
        return -1;
    }
}

static int crc_ok(const uint8_t *f, size_t len)
{
    return mbmap_crc16(f, len - 2) == (f[len - 2] | f[len - 1] << 8);
}

static void mb_drop(struct sniff *s, size_t k)
{
    memmove(s->mb_buf, s->mb_buf + k, s->mb_len - k);
    s->mb_len -= k;
}

/* A register read answered: its registers into the slave's image; a sample once every
 * register of the map was heard since the last one. */
static void mb_registers(struct sniff *s, const uint8_t *f, int64_t now_ms)
{
    uint8_t slave = f[0];
    unsigned count = f[2] / 2u;
    if (f[1] != MBMAP_FC_READ || count != s->req_count)
        return; /* another function, or an answer that does not fit its request */
    for (unsigned i = 0; i < count; i++) {
        unsigned r = s->req_start + i;
        if (r >= MBMAP_NREGS)
            break;
        s->regs[slave][r] = (uint16_t)(f[3 + 2 * i] << 8 | f[4 + 2 * i]);
        s->known[slave] |= 1ull << r;
    }
    if (s->known[slave] != (1ull << MBMAP_NREGS) - 1)
        return;
    s->known[slave] = 0;
    struct sample smp;
    if (mbmap_decode(s->regs[slave], &smp) != 0) {
        struct sniff_event *ev = push(s, SNIFF_BAD, slave, f[1], now_ms);
        if (ev != NULL)
            ev->err = -EBADMSG;
        return;
    }
    smp.address = slave;
    emit_sample(s, &smp, now_ms);
}

static void mb_frame(struct sniff *s, const uint8_t *f, size_t len, int as_request,
                     int64_t now_ms)
{
    s->n.frames++;
    if (as_request) {
        on_request(s, f[0], f[1], now_ms);
        s->req_start = (uint16_t)(f[2] << 8 | f[3]);
        s->req_count = (uint16_t)(len == 8 ? f[4] << 8 | f[5] : 0);
        return;
    }
    if (!match_answer(s, f[0], f[1] & 0x7F, now_ms))
        return;
    if (f[1] & 0x80) {
        struct sniff_event *ev = push(s, SNIFF_REFUSED, f[0], f[1] & 0x7F, now_ms);
        if (ev != NULL)
            ev->code = f[2];
        return;
    }
    if (f[1] == 0x03 || f[1] == 0x04)
        mb_registers(s, f, now_ms);
}

/* Frames what the buffer holds. At its start a frame is tried as an answer and as a request
 * (the answer first when it would answer the pending request); the first reading whose length
 * is there and whose CRC holds wins. A start no reading fits is dropped a byte at a time
 * (resync); one that needs more bytes waits for them, unless the line went silent (idle). */
static void mb_scan(struct sniff *s, int idle, int64_t now_ms)
{
    while (s->mb_len >= 2 && SNIFF_QUEUE - s->qlen >= QUEUE_ROOM) {
        const uint8_t *b = s->mb_buf;
        int answer_first = s->pending && b[0] == s->req_adr && (b[1] & 0x7F) == s->req_cmd;
        int need_more = 0, damaged = 0, done = 0;
        for (int k = 0; k < 2 && !done; k++) {
            int as_request = answer_first ? k : !k;
            int len = b[0] > 247 ? -1 : sniff_mb_frame_len(b, s->mb_len, as_request);
            if (len < 0)
                continue;
            if (len == 0 || (size_t)len > s->mb_len) {
                need_more = 1;
            } else if (crc_ok(b, (size_t)len)) {
                mb_frame(s, b, (size_t)len, as_request, now_ms);
                mb_drop(s, (size_t)len);
                done = 1;
            } else if (!as_request && s->pending && b[0] == s->req_adr) {
                damaged = 1;
            }
        }
        if (done)
            continue;
        if (need_more && !idle)
            return;
        if (damaged && !need_more) { /* the answer we waited for, hit by noise */
            struct sniff_event *ev = push(s, SNIFF_BAD, s->req_adr, s->req_cmd, now_ms);
            if (ev != NULL)
                ev->err = -EBADMSG;
            s->pending = 0;
        }
        s->n.dropped_bytes++;
        mb_drop(s, 1);
    }
    if (idle && s->mb_len == 1) {
        s->n.dropped_bytes++;
        s->mb_len = 0;
    }
}

/* ---- both ---- */

size_t sniff_feed(struct sniff *s, const uint8_t *data, size_t n, int64_t now_ms)
{
    expire(s, now_ms);
    size_t i = 0;
    for (; i < n && SNIFF_QUEUE - s->qlen >= QUEUE_ROOM; i++) {
        s->n.bytes++;
        if (s->v != NULL) {
            s42_byte(s, data[i], now_ms);
            continue;
        }
        if (s->mb_len == sizeof s->mb_buf) { /* nothing framed in two frames' length */
            s->n.dropped_bytes++;
            mb_drop(s, 1);
        }
        s->mb_buf[s->mb_len++] = data[i];
        mb_scan(s, 0, now_ms);
    }
    s->last_ms = now_ms;
    return i;
}

void sniff_idle(struct sniff *s, int64_t now_ms)
{
    if (s->v == NULL)
        mb_scan(s, 1, now_ms);
    else if (s->held && !s->pending &&
             now_ms - s->req_ms > (int64_t)s->timeout_ms * HOLD_TIMEOUTS)
        release_held(s, now_ms);
    expire(s, now_ms);
}

void sniff_end(struct sniff *s, int64_t now_ms)
{
    /* a request whose answer could still come when the listening stopped was cut by the
     * window: neither answered nor unanswered */
    if (s->pending && now_ms - s->req_ms <= s->timeout_ms)
        s->pending = 0;
    sniff_idle(s, now_ms + (int64_t)s->timeout_ms * (HOLD_TIMEOUTS + 1));
}
