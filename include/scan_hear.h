/* scan_hear: `bmsfleet scan --listen-only`: the bus heard without a byte sent, for a site where
 * another master (an inverter, a Seplos v3 master pack) already polls and a second would
 * collide. The line is fed to a sniffer per candidate protocol at once (the four Service 42
 * variants and Modbus RTU); the one that frames the master's requests is the bus's protocol,
 * and its events tell which addresses the master asks, which answer, and how often. */
#ifndef BMSFLEET_SCAN_HEAR_H
#define BMSFLEET_SCAN_HEAR_H

#include <signal.h>
#include <stdint.h>

#include "scan.h"
#include "serial.h"
#include "sniff.h"

#define SCAN_HEAR_PROTOS 5 /* daren, pace, pylontech, seplos, modbus */

struct scan_heard_addr {
    unsigned requests, samples, unanswered, refused, bad;
    uint8_t cmds[8]; /* the commands (function codes) asked, in order of first use */
    unsigned ncmds;
    unsigned rounds;           /* requests of its first command: one a round */
    int64_t first_ms, last_ms; /* the first and the last of those */
    struct sample last;        /* its last sample heard */
};

struct scan_heard_proto {
    const struct s42_variant *v; /* SCAN_MODBUS for Modbus RTU */
    struct sniff sn;
    struct scan_heard_addr adr[256];
};

struct scan_heard {
    unsigned long long bytes;
    int ms; /* how long it listened */
    struct scan_heard_proto p[SCAN_HEAR_PROTOS];
    size_t np;
    int best; /* index in p of the protocol that framed the master's traffic, -1: none */
};

/* Listens ms on the port (a tty or tcp://), writing nothing, into *h (allocate it: it is large).
 * cands/ncands: the protocols to try (SCAN_MODBUS for Modbus RTU). 0 or -errno when the port
 * failed to open or went away. */
int scan_hear(const char *port, const struct serial_opts *so, const struct s42_variant *const *cands,
              size_t ncands, int ms, const volatile sig_atomic_t *stop, struct scan_heard *h);

/* The round period of address a as heard (ms between requests to it), 0 when asked once. */
int64_t scan_heard_period_ms(const struct scan_heard_addr *a);

#endif
