/* scan_hear: hearing a bus another master polls (see scan_hear.h). One read of the line feeds
 * every candidate's sniffer the same bytes; each keeps its own tally per address. The protocol
 * whose sniffer framed most of the master's requests with answers wins. */
#include "now.h"
#include "scan_hear.h"

#include <errno.h>
#include <string.h>

#define SLICE_MS 50 /* a read waits at most this long: silence is fed to the sniffers */

static void note(struct scan_heard_proto *p, const struct sniff_event *ev)
{
    struct scan_heard_addr *a = &p->adr[ev->adr];
    switch (ev->kind) {
    case SNIFF_REQUEST:
        a->requests++;
        if (a->ncmds == 0 || ev->cmd == a->cmds[0]) {
            if (a->rounds++ == 0)
                a->first_ms = ev->at_ms;
            a->last_ms = ev->at_ms;
        }
        for (unsigned i = 0; i <= a->ncmds && i < sizeof a->cmds; i++) {
            if (i == a->ncmds) {
                a->cmds[a->ncmds++] = ev->cmd;
                break;
            }
            if (a->cmds[i] == ev->cmd)
                break;
        }
        break;
    case SNIFF_SAMPLE:
        a->samples++;
        a->last = ev->sample;
        break;
    case SNIFF_UNANSWERED: a->unanswered++; break;
    case SNIFF_REFUSED: a->refused++; break;
    case SNIFF_BAD: a->bad++; break;
    default: break;
    }
}

static void drain(struct scan_heard_proto *p)
{
    struct sniff_event ev;
    while (sniff_next(&p->sn, &ev))
        note(p, &ev);
}

/* What a protocol's sniffer made of the traffic: requests that got answers weigh most. */
static unsigned long long score(const struct scan_heard_proto *p)
{
    const struct sniff_counts *n = &p->sn.n;
    return n->requests + 4 * (n->samples + n->refused) + n->answers;
}

int scan_hear(const char *port, const struct serial_opts *so, const struct s42_variant *const *cands,
              size_t ncands, int ms, const volatile sig_atomic_t *stop, struct scan_heard *h)
{
    memset(h, 0, sizeof *h);
    h->best = -1;
    h->ms = ms;
    for (size_t i = 0; i < ncands && h->np < SCAN_HEAR_PROTOS; i++) {
        struct scan_heard_proto *p = &h->p[h->np++];
        p->v = cands[i];
        sniff_init(&p->sn, cands[i] == SCAN_MODBUS ? NULL : cands[i], so->timeout_ms);
    }
    struct serial_opts o = *so;
    o.rs485 = 0; /* the transceiver stays receiving */
    struct serial_port *sp;
    int err = serial_open(port, &o, &sp);
    if (err)
        return err;
    int64_t end = now_mono_ms() + ms;
    uint8_t buf[512];
    for (;;) {
        int64_t left = end - now_mono_ms();
        if (left <= 0 || (stop && *stop))
            break;
        int r = serial_read_some(sp, buf, sizeof buf, left < SLICE_MS ? (int)left : SLICE_MS);
        if (r < 0) {
            err = r;
            break;
        }
        int64_t now = now_mono_ms();
        h->bytes += (unsigned)r;
        for (size_t i = 0; i < h->np; i++) {
            struct scan_heard_proto *p = &h->p[i];
            if (r == 0)
                sniff_idle(&p->sn, now);
            for (size_t at = 0; at < (size_t)r;) {
                at += sniff_feed(&p->sn, buf + at, (size_t)r - at, now);
                drain(p);
            }
            drain(p);
        }
    }
    serial_close(sp);
    unsigned long long best = 0;
    int64_t stopped = now_mono_ms();
    for (size_t i = 0; i < h->np; i++) {
        sniff_end(&h->p[i].sn, stopped);
        drain(&h->p[i]);
        unsigned long long sc = h->p[i].sn.n.requests ? score(&h->p[i]) : 0;
        if (sc > best) {
            best = sc;
            h->best = (int)i;
        }
    }
    return err == -ECANCELED ? 0 : err;
}

int64_t scan_heard_period_ms(const struct scan_heard_addr *a)
{
    return a->rounds > 1 ? (a->last_ms - a->first_ms) / (a->rounds - 1) : 0;
}
