/* poller_listen: a port in mode listen. Another master polls the bus; this thread never writes
 * to it. It reads the line through the listener (the codec frames, matches and decodes), and
 * what a pack answered that master is this port's sample of it: counted, stored and published
 * as a polled one. A request the pack left unanswered counts as its timeout, a refusal or a
 * damaged answer as such. Health comes from silence: a pack not heard for an interval and a
 * half is stale, for OFFLINE_INTERVALS intervals offline. The other master is described once
 * when first heard; addresses it asks that are not configured are told once each (heard, not
 * stored). At the end the port says what it heard and that it wrote nothing. */
#include "now.h"
#include "poller_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

#define WAIT_SLICE_MS 1000 /* the longest wait for the line: a turn of the thread */

static int pack_index(const struct poller *p, uint8_t adr)
{
    for (size_t i = 0; i < p->port->npacks; i++) {
        if (p->packs[i].cfg->address == adr)
            return (int)i;
    }
    return -1;
}

static void try_listen(struct poller *p)
{
    struct serial_opts so;
    poller_serial_opts(p, &so);
    struct listener *l;
    struct driver_error e;
    int err = listener_open(p->port->device, config_protocol_name(p->port->protocol), &so, &l, &e);
    if (err == -ECANCELED)
        return;
    poller_opened(p, err, e.msg, "listening");
    if (err)
        return;
    listener_set_cancel_fd(l, p->cancel_fd);
    p->lis = l;
}

/* The first request heard, and every address asked that the configuration does not have. */
static void tell_master(struct poller *p, const struct sniff_event *ev)
{
    if (!p->master_logged) {
        p->master_logged = 1;
        log_info("port %s: another master is polling (first heard: address %u, command 0x%02X); "
                 "listening, writing nothing",
                 p->port->name, ev->adr, ev->cmd);
    }
    uint8_t bit = (uint8_t)(1u << (ev->adr % 8));
    if (pack_index(p, ev->adr) >= 0 || (p->unknown_logged[ev->adr / 8] & bit))
        return;
    p->unknown_logged[ev->adr / 8] |= bit;
    log_info("port %s: the master asks address %u, which is not in the configuration: heard, "
             "not stored (add a pack with address %u to keep it)",
             p->port->name, ev->adr, ev->adr);
}

/* A failure of pack i as the driver would have classed it. */
static void heard_failure(struct poller *p, size_t i, const struct sniff_event *ev)
{
    struct driver_error e = {DRIVER_TIMEOUT, -ETIMEDOUT, "", 0};
    const char *what = ev->kind == SNIFF_UNANSWERED ? "left the master's request unanswered"
                       : ev->kind == SNIFF_REFUSED  ? "refused the master's request"
                                                    : "answered the master with a damaged frame";
    if (ev->kind == SNIFF_REFUSED) {
        e.status = DRIVER_REFUSED;
        e.rtn = ev->code;
    } else if (ev->kind == SNIFF_BAD) {
        e.status = ev->err == -S42_E_CHKSUM || ev->err == -S42_E_LCHKSUM || ev->err == -EBADMSG
                       ? DRIVER_CHECKSUM
                       : DRIVER_MALFORMED;
    }
    char code[16] = "";
    if (ev->kind == SNIFF_REFUSED)
        snprintf(code, sizeof code, ", code %02X", ev->code);
    snprintf(e.msg, sizeof e.msg, "address %u on %s %s (command 0x%02X%s)", ev->adr,
             p->port->name, what, ev->cmd, code);
    poller_count(p, i, -1, &e);
    log_debug("pack %s: %s", p->packs[i].cfg->id, e.msg);
    poller_age_health(p, i, e.msg);
}

static void heard(struct poller *p, const struct sniff_event *ev, int64_t now)
{
    if (ev->kind == SNIFF_REQUEST) {
        tell_master(p, ev);
        return;
    }
    int i = pack_index(p, ev->adr);
    if (i < 0)
        return; /* another pack's, or the sniffer's own counts (foreign, unmatched) */
    switch (ev->kind) {
    case SNIFF_SAMPLE: {
        struct reading r;
        memset(&r, 0, sizeof r);
        r.s = ev->sample;
        poller_count(p, (size_t)i, 0, NULL);
        poller_deliver(p, (size_t)i, &r, now);
        break;
    }
    case SNIFF_UNANSWERED:
    case SNIFF_REFUSED:
    case SNIFF_BAD:
        heard_failure(p, (size_t)i, ev);
        break;
    default:
        break;
    }
}

/* Health from silence: a pack not heard for an interval and a half. */
static void check_silence(struct poller *p, int64_t now)
{
    int64_t interval = (int64_t)p->port->interval_s * 1000;
    for (size_t i = 0; i < p->port->npacks; i++) {
        int64_t since = p->packs[i].last_ok_mono ? p->packs[i].last_ok_mono : p->started_mono;
        if (now - since <= interval + interval / 2)
            continue;
        char why[200];
        snprintf(why, sizeof why, "not heard on %s for %lld s (the master polls it no more, or "
                                  "it does not answer)",
                 p->port->name, (long long)((now - since) / 1000));
        poller_age_health(p, i, why);
    }
}

static void log_heard(const struct poller *p, const struct listener *l)
{
    const struct sniff_counts *n = listener_counts(l);
    log_info("port %s: heard %llu bytes, %llu frames: %llu requests, %llu answers, %llu samples, "
             "%llu unanswered, %llu refused, %llu damaged, %llu foreign, %llu unmatched, %llu "
             "bytes dropped; wrote %llu bytes",
             p->port->name, (unsigned long long)n->bytes, (unsigned long long)n->frames,
             (unsigned long long)n->requests, (unsigned long long)n->answers,
             (unsigned long long)n->samples, (unsigned long long)n->unanswered,
             (unsigned long long)n->refused, (unsigned long long)n->bad,
             (unsigned long long)n->foreign, (unsigned long long)n->unmatched,
             (unsigned long long)n->dropped_bytes,
             (unsigned long long)listener_bytes_written(l));
}

void poller_listen_main(struct poller *p)
{
    while (!poller_stopping(p)) {
        int64_t now = now_mono_ms();
        progress_beat(&p->progress, now);
        if (p->lis == NULL) {
            if (poller_wait_until(p, p->reopen_ms))
                break;
            try_listen(p);
            continue;
        }
        struct sniff_event ev;
        struct driver_error e;
        int r = listener_next(p->lis, WAIT_SLICE_MS, &ev, &e);
        now = now_mono_ms();
        if (r < 0 && e.err == -ECANCELED)
            break;
        if (r < 0) {
            log_heard(p, p->lis);
            poller_close_port(p, e.msg);
            continue;
        }
        if (r > 0)
            heard(p, &ev, now);
        if (r > 0 && ev.kind == SNIFF_SAMPLE)
            p->reopen_backoff_ms = 1000;
        check_silence(p, now);
    }
    if (p->lis)
        log_heard(p, p->lis);
    listener_close(p->lis);
    p->lis = NULL;
}
