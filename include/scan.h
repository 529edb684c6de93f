/* scan: the engine behind `bmsfleet scan`. It asks the addresses of one bus in each candidate
 * protocol (the Service 42 variants, Modbus RTU), classifies what comes back, and detects two
 * packs on one address and another master on the bus; the results are plain data in struct scan,
 * printed by cmd_scan. */
#ifndef BMSFLEET_SCAN_H
#define BMSFLEET_SCAN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "s42.h"
#include "sample.h"
#include "serial.h"

#define SCAN_MAX_VARIANTS 8
#define SCAN_TEXT         192
#define SCAN_MODBUS       ((const struct s42_variant *)NULL) /* the candidate for Modbus RTU */

/* What to scan. */
struct scan_opts {
    const char *port;
    /* in the order to try: Service 42 variants, and SCAN_MODBUS for Modbus RTU (asked only at
     * slave addresses 1..247) */
    const struct s42_variant *cands[SCAN_MAX_VARIANTS];
    size_t ncands;
    struct serial_opts so;
    int from, to, listen_ms;
    int listen_only; /* scan --listen-only: hear the bus another master polls, never send */
    /* set (by a signal handler) to end the scan early; NULL: never */
    const volatile sig_atomic_t *stop;
};

/* Frames on the bus that were not answers to us. */
struct scan_traffic {
    unsigned long long bytes; /* during the listen window, frames and noise */
    unsigned frames;          /* complete frames during the listen window */
    unsigned requests;        /* request-shaped frames during the listen window */
    unsigned scan_requests;   /* request-shaped frames while we scanned */
    unsigned echoes;          /* our own request read back (an adapter with local echo) */
    char example[96];         /* the first request seen, described */
};

/* Ordered from worst to best: a row keeps the best outcome of its tries. */
enum scan_probe_kind {
    SCAN_PROBE_SILENT,   /* nothing before the deadline */
    SCAN_PROBE_FOREIGN,  /* another family or another address answered */
    SCAN_PROBE_GARBLED,  /* checksum error, malformed or incomplete frame */
    SCAN_PROBE_NOVALUES, /* our pack answered without values: an RTN error, or an INFO we cannot
                            read */
    SCAN_PROBE_VALID,    /* our pack answered and its values decoded */
};

/* Whether a pack answers the alarm command (0x44), asked once after its first valid answer. */
enum scan_alarms {
    SCAN_ALARMS_UNKNOWN = 0, /* not asked (no valid answer), or the answer was garbled */
    SCAN_ALARMS_OK,          /* in the analog answer (Daren, Modbus), or 0x44 answered */
    SCAN_ALARMS_UNSUPPORTED, /* 0x44 refused (RTN error) or ignored */
};

struct scan_row {
    uint8_t address;
    enum scan_probe_kind kind;   /* the best outcome of the tries */
    const struct s42_variant *v; /* the Service 42 variant that answered */
    int modbus;                  /* or: a Modbus RTU slave answered (v is NULL) */
    int tries, corrupted;
    int have_sample, have_id;
    struct sample s;        /* the first valid answer */
    struct s42_identity id; /* Service 42 only: Modbus packs have none */
    char serials[2][64];    /* distinct serials seen (the first two) */
    int nserials;
    char disagree[64]; /* how valid answers disagree, "" when they agree */
    enum scan_alarms alarms;
    char alarms_why[128]; /* SCAN_ALARMS_UNSUPPORTED: the RTN sentence, or the silence */
    char note[SCAN_TEXT];
};

/* One scan and its results. The caller counts the rows it keeps.
 *
 * A port cannot be open twice (exclusive lock), and Service 42 needs the raw frames while Modbus
 * goes through libmodbus: the engine holds at most one of port and mb open, and switches when
 * the next candidate needs the other (closing one before opening the other). */
struct scan {
    const struct scan_opts *a;
    struct serial_port *port; /* open while Service 42 is asked (and to listen) */
    struct bus *mb;           /* open while Modbus RTU is asked */
    const struct s42_variant *order[SCAN_MAX_VARIANTS]; /* a protocol that answered goes first */
    long long heard_ms; /* when the last probe that heard something ended: the gap counts from it */
    struct scan_traffic t;
    struct scan_row *rows; /* the addresses where something answered */
    size_t nrows, nsilent;
    int interrupted;
    char by_id[512]; /* the port's /dev/serial/by-id/ name (devname), "" when none */
};

/* Ready to scan the addresses of a (which must outlive sc): room for a row per address. 0 or
 * -ENOMEM. */
int scan_init(struct scan *sc, const struct scan_opts *a);
/* Opens the port the way the scan starts (raw serial to listen or ask Service 42, libmodbus for
 * Modbus alone). 0 or -errno (-ENOENT, -EBUSY, ...). */
int scan_open(struct scan *sc);
/* Closes whatever port is open and frees what scan_init allocated. */
void scan_release(struct scan *sc);

/* Listens a->listen_ms without sending: anything heard comes from another master or the packs it
 * polls (Modbus traffic counts as bytes). 0 or -errno when the port failed. */
int scan_listen(struct scan *sc);
/* Tries the candidate protocols at one address, then asks the one that answered again. row is
 * written in full; 0 or -errno when the port failed. */
int scan_address(struct scan *sc, uint8_t adr, struct scan_row *row);

/* "modbus" for SCAN_MODBUS, else the variant's name. */
const char *scan_proto_name(const struct s42_variant *cand);
/* The protocol a row answered in, NULL when none did. */
const char *scan_row_protocol(const struct scan_row *row);

/* A pack answered at this address (with values or without). */
int scan_row_found(const struct scan_row *row);
/* Two packs on one address: repeated garbling, or answers that cannot come from one pack. */
int scan_row_shared(const struct scan_row *row);
/* The notes of a row, "; "-separated. */
void scan_row_notes(const struct scan_row *row, char *buf, size_t cap);

#endif
