/* cmd_scan_hear: `bmsfleet scan --listen-only`: what the bus says while bmsfleet stays silent
 * (scan_hear.c hears it): the other master's protocol, the addresses it asks with their
 * commands and round period, which of them answer, and a `mode: listen` snippet for the
 * configuration; or one JSON document. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "report.h"
#include "scan_hear.h"
#include "serial.h"

static void cmds_text(const struct scan_heard_addr *a, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < a->ncmds && n + 6 < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s0x%02X", i ? " " : "", a->cmds[i]);
}

static void print_text(const struct scan_opts *a, const struct scan_heard *h)
{
    printf("heard %s for %d ms, writing nothing: %llu bytes\n", a->port, h->ms, h->bytes);
    if (h->best < 0) {
        printf("no master heard%s: nobody polls this bus (bmsfleet can be its master: "
               "`bmsfleet scan` without --listen-only), or the baud rate differs\n",
               h->bytes ? " (only noise or frames of no protocol tried)" : "");
        return;
    }
    const struct scan_heard_proto *p = &h->p[h->best];
    const struct sniff_counts *n = &p->sn.n;
    unsigned asked = 0;
    int64_t period = 0;
    for (int adr = 0; adr < 256; adr++) {
        if (p->adr[adr].requests == 0)
            continue;
        asked++;
        if (period == 0)
            period = scan_heard_period_ms(&p->adr[adr]);
    }
    printf("a master polls in %s: %u address(es)", scan_proto_name(p->v), asked);
    if (period > 0)
        printf(", a round about every %.1f s", (double)period / 1000.0);
    printf("; %llu requests, %llu answers, %llu unanswered, %llu damaged\n",
           (unsigned long long)n->requests, (unsigned long long)n->answers,
           (unsigned long long)n->unanswered, (unsigned long long)n->bad);
    printf("\n%-7s %8s %7s %10s %-14s %6s %8s\n", "address", "requests", "samples", "unanswered",
           "commands", "SOC %", "voltage");
    for (int adr = 0; adr < 256; adr++) {
        const struct scan_heard_addr *x = &p->adr[adr];
        if (x->requests == 0 && x->samples == 0)
            continue;
        char cmds[64], soc[16] = "-", volt[16] = "-";
        cmds_text(x, cmds, sizeof cmds);
        if (x->samples && x->last.soc_cpct != SAMPLE_ABSENT)
            snprintf(soc, sizeof soc, "%.1f", x->last.soc_cpct / 100.0);
        if (x->samples && x->last.voltage_mv != SAMPLE_ABSENT)
            snprintf(volt, sizeof volt, "%.2f", x->last.voltage_mv / 1000.0);
        printf("%-7d %8u %7u %10u %-14s %6s %8s\n", adr, x->requests, x->samples, x->unanswered,
               cmds, soc, volt);
    }
    printf("\n# heard on %s: another master polls; bmsfleet listens beside it\n", a->port);
    printf("protocol: %s\nmode: listen\ninterval_s: %lld\npacks:\n", scan_proto_name(p->v),
           period > 0 ? (long long)(period + 999) / 1000 : 30LL);
    for (int adr = 0; adr < 256; adr++) {
        if (p->adr[adr].samples)
            printf("  - { address: 0x%02X, id: pack%d }\n", adr, adr);
    }
}

static void print_json(const struct scan_opts *a, const struct scan_heard *h)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "port", a->port);
    cJSON_AddNumberToObject(doc, "listen_ms", h->ms);
    cJSON_AddNumberToObject(doc, "bytes", (double)h->bytes);
    if (h->best < 0) {
        cJSON_AddNullToObject(doc, "master");
        report_print_json(stdout, doc);
        return;
    }
    const struct scan_heard_proto *p = &h->p[h->best];
    cJSON *m = cJSON_AddObjectToObject(doc, "master");
    cJSON_AddStringToObject(m, "protocol", scan_proto_name(p->v));
    cJSON_AddNumberToObject(m, "requests", (double)p->sn.n.requests);
    cJSON_AddNumberToObject(m, "answers", (double)p->sn.n.answers);
    cJSON_AddNumberToObject(m, "unanswered", (double)p->sn.n.unanswered);
    cJSON *addrs = cJSON_AddArrayToObject(m, "addresses");
    for (int adr = 0; adr < 256; adr++) {
        const struct scan_heard_addr *x = &p->adr[adr];
        if (x->requests == 0 && x->samples == 0)
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "address", adr);
        cJSON_AddNumberToObject(o, "requests", x->requests);
        cJSON_AddNumberToObject(o, "samples", x->samples);
        cJSON_AddNumberToObject(o, "unanswered", x->unanswered);
        cJSON_AddNumberToObject(o, "period_ms", (double)scan_heard_period_ms(x));
        cJSON *cmds = cJSON_AddArrayToObject(o, "commands");
        for (unsigned i = 0; i < x->ncmds; i++)
            cJSON_AddItemToArray(cmds, cJSON_CreateNumber(x->cmds[i]));
        if (x->samples)
            cJSON_AddItemToObject(o, "sample", report_sample_json(&x->last, NULL, 0));
        cJSON_AddItemToArray(addrs, o);
    }
    report_print_json(stdout, doc);
}

int cmd_scan_hear(const struct scan_opts *a, int json)
{
    struct scan_heard *h = calloc(1, sizeof *h);
    if (h == NULL) {
        fprintf(stderr, "bmsfleet scan: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    int err = scan_hear(a->port, &a->so, a->cands, a->ncands, a->listen_ms, a->stop, h);
    if (err) {
        fprintf(stderr, "bmsfleet scan: %s: %s\n", a->port, serial_strerror(err));
        free(h);
        return CLI_EXIT_FAIL;
    }
    if (json)
        print_json(a, h);
    else
        print_text(a, h);
    fflush(stdout);
    int rc = h->best >= 0 ? CLI_EXIT_OK : CLI_EXIT_NODATA;
    free(h);
    return rc;
}
