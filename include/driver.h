/* driver: one poll of one pack over an open serial port: request, frame, validation, decode.
 *
 * Every failure is classified (timeout, checksum, malformed, refused, foreign answer, port
 * error) so pollers can count them, and described in a sentence a person can act on. */
#ifndef BMSFLEET_DRIVER_H
#define BMSFLEET_DRIVER_H

#include "s42.h"
#include "sample.h"
#include "serial.h"

enum driver_status {
    DRIVER_OK = 0,
    DRIVER_TIMEOUT,   /* no complete frame before the deadline */
    DRIVER_CHECKSUM,  /* CHKSUM or LCHKSUM wrong: noise or collision on the bus */
    DRIVER_MALFORMED, /* anything else wrong with the frame (truncated, bad hex, short INFO) */
    DRIVER_REFUSED,   /* the BMS answered with an RTN error code */
    DRIVER_FOREIGN,   /* another address or protocol family answered */
    DRIVER_PORT,      /* the port failed (unplugged adapter, I/O error) */
};

struct driver_error {
    enum driver_status status;
    int err;        /* -errno (DRIVER_PORT, DRIVER_TIMEOUT) or -S42_E_* */
    char msg[256];
    uint8_t rtn;    /* DRIVER_REFUSED: the RTN code the pack answered */
};

const char *driver_status_name(enum driver_status st);

/* How long a pack that refused or ignored the alarm command is left alone before it is asked
 * again. */
#define DRIVER_ALARMS_RETRY_MS (60LL * 60 * 1000)
/* Timeouts of 0x44 in a row before a polled pack is taken to ignore it (one can be noise). */
#define DRIVER_ALARMS_TIMEOUTS 2

/* What a poller remembers about one pack's alarm command (0x44) between polls. Many firmwares
 * answer 0x42 only: their readings are kept, the flags are unknown, and 0x44 is asked again
 * only every retry_ms, so a silent 0x44 does not cost a timeout every poll. */
struct driver_alarms {
    /* the cadence (ports[].alarms_every): 0x44 at every Nth poll, and at once on a change */
    int every;            /* 1: every poll (driver_alarms_init's) */
    int since;            /* polls since the last read */
    int stagger;          /* added to since at the first read, then 0 */
    int have_last;        /* last holds an answer; 0 after a failed read: read next poll */
    /* the sample of the last 0x44 answer (merged into its 0x42 values): its flags are carried
     * into the polls between reads, its values are what a change is measured against */
    struct sample last;
    int64_t analog_ms;    /* the bus time of the last 0x42 exchange */
    int64_t alarm_ms;     /* the bus time of the last 0x44 exchange; 0 before the first */
    uint64_t carried;     /* polls whose flags were carried, not read */
    int64_t retry_ms;     /* DRIVER_ALARMS_RETRY_MS; tests shorten it */
    int timeouts_to_mark; /* DRIVER_ALARMS_TIMEOUTS; 1 for a one-shot read */
    int unsupported;      /* the pack refused (RTN error) or ignored (timeouts) 0x44 */
    int changed;          /* set by each poll: 1 when unsupported flipped in this poll */
    int timeouts_in_row;  /* 0x44 timeouts since its last answer */
    int64_t next_ask_ms;  /* while unsupported: when to ask again (the caller's clock) */
    uint64_t asked;       /* 0x44 requests sent */
    uint64_t failures;    /* 0x44 requests refused, ignored or unreadable */
    char why[160];        /* why it is unsupported: "BMS answered RTN 04: ...", "no answer ..." */
};

void driver_alarms_init(struct driver_alarms *a, int64_t retry_ms);
/* The cadence: 0x44 at every `every`th poll, the first regular read after `stagger` polls (so
 * that the packs of a port do not all read it in the same round). */
void driver_alarms_cadence(struct driver_alarms *a, int every, int stagger);
/* Whether this poll, with the analog values s just read, asks 0x44 (1) or carries the last
 * answer's flags (0). Pure; the rules are in driver.c. */
int driver_alarms_due(const struct driver_alarms *a, const struct sample *s);

/* Why a 0x44 failed, short (for logs, `read` and `scan`): the RTN sentence, or the silence. */
void driver_alarms_why(const struct driver_error *e, int timeout_ms, char *buf, size_t cap);

/* Reads the analog values (0x42) and, when the variant has it, the alarm/status (0x44) of the
 * pack at adr. out is written only on success; on failure *e says what happened. A 0x44 that
 * fails does not fail the poll: the sample has the analog values without SAMPLE_HAS_ALARMS
 * (with SAMPLE_ALARMS_UNSUPPORTED when the pack refused or ignored it), and *al (one per pack;
 * NULL: ask every poll) records it. now_ms: the caller's monotonic clock, for the re-ask. */
int driver_poll(struct serial_port *port, const struct s42_variant *v, uint8_t adr,
                struct driver_alarms *al, int64_t now_ms, struct sample *out,
                struct driver_error *e);

/* The same through the master pack at via (header ADR via, INFO adr: PACE, Pylontech); via ==
 * adr is driver_poll. The sample's address is adr. */
int driver_poll_via(struct serial_port *port, const struct s42_variant *v, uint8_t via,
                    uint8_t adr, struct driver_alarms *al, int64_t now_ms, struct sample *out,
                    struct driver_error *e);
/* The alarm part of a poll for analog values already read (an all-packs answer): 0x44 to adr
 * through via when the variant has it, merged into *out. */
int driver_poll_alarms(struct serial_port *port, const struct s42_variant *v, uint8_t via,
                       uint8_t adr, struct driver_alarms *al, int64_t now_ms,
                       const struct sample *analog, struct sample *out, struct driver_error *e);
/* Every pack of the chain at once: 0x42 with INFO FF to the master at via; block i of the
 * answer is the pack at via + i, into out[i] (*n of them, at most cap). The analog values only. */
int driver_poll_all(struct serial_port *port, const struct s42_variant *v, uint8_t via,
                    struct sample *out, size_t cap, size_t *n, struct driver_error *e);

/* The alarm command alone: 0x44 to adr, decoded into *io (which holds the 0x42 values). On a
 * timeout it also waits one more timeout for a late answer and drops it, so that the next
 * request to this pack does not take it for its own answer. */
int driver_read_alarms(struct serial_port *port, const struct s42_variant *v, uint8_t adr,
                       struct sample *io, struct driver_error *e);

/* Asks every identity command of the variant; fields that a command did not give stay empty.
 * Returns 0 when at least one command answered, else the first failure. */
int driver_identify(struct serial_port *port, const struct s42_variant *v, uint8_t adr,
                    struct s42_identity *out, struct driver_error *e);

/* One command exchange: request, read, parse, check against (v, adr). */
int driver_exchange(struct serial_port *port, const struct s42_variant *v, uint8_t adr,
                    uint8_t cid2, struct s42_frame *out, struct driver_error *e);
/* The same to adr through the master at via (the answer's header is via's). */
int driver_exchange_via(struct serial_port *port, const struct s42_variant *v, uint8_t via,
                        uint8_t adr, uint8_t cid2, struct s42_frame *out, struct driver_error *e);

#endif
