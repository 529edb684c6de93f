/* sniff: listen-only decoding of a bus another master polls (issue 17). The bytes of the line,
 * as they come, are framed (Service 42 by '~' .. '\r'; Modbus RTU by function code, length and
 * CRC, silence only a hint), each frame told apart as a request or an answer, each answer
 * matched to the request it follows, and the answers decoded into samples: Service 42 0x42
 * (with the 0x44 that follows it for the same pack merged in), Modbus register reads put
 * together in a register image per slave until the whole PACE map is known.
 *
 * Pure code: no I/O, no clock (the caller passes its monotonic time), no allocation (the caller
 * allocates the struct, which is large: the Modbus register images). What comes out is a queue
 * of events; the bus part (listener.c) reads the line and feeds it. */
#ifndef BMSFLEET_SNIFF_H
#define BMSFLEET_SNIFF_H

#include <stddef.h>
#include <stdint.h>

#include "mbmap.h"
#include "s42.h"
#include "sample.h"

#define SNIFF_QUEUE     8
#define SNIFF_MB_BUF    512 /* two RTU frames of the longest kind */
#define SNIFF_MB_SLAVES 248

enum sniff_kind {
    SNIFF_REQUEST = 1, /* the master asked adr command cmd (Modbus: the function code) */
    SNIFF_SAMPLE,      /* a pack's values, decoded from its answers; sample is set */
    SNIFF_UNANSWERED,  /* the request to adr got no answer within the timeout */
    SNIFF_REFUSED,     /* adr answered with an error (an RTN code, a Modbus exception): code */
    SNIFF_BAD,         /* a frame that failed its checks (checksum, CRC, format); err says */
    SNIFF_FOREIGN,     /* a frame of another protocol family (VER/CID1), or an answer from
                        * another address than the one asked */
    SNIFF_UNMATCHED,   /* an answer with no request before it (listening began mid-exchange) */
};

struct sniff_event {
    enum sniff_kind kind;
    uint8_t adr;  /* the pack (slave) concerned */
    uint8_t cmd;  /* Service 42 CID2 of the request, Modbus function code */
    uint8_t code; /* SNIFF_REFUSED: the RTN or exception code */
    int err;      /* SNIFF_BAD: -S42_E_* or -EBADMSG (Modbus CRC) */
    int64_t at_ms; /* the caller's time of the frame that made the event */
    struct sample sample; /* SNIFF_SAMPLE */
};

struct sniff_counts {
    uint64_t bytes, frames, requests, answers, samples, unanswered, refused, bad, foreign,
        unmatched, dropped_bytes;
};

struct sniff {
    const struct s42_variant *v; /* NULL: Modbus RTU */
    int timeout_ms;              /* an answer later than this after its request is none */
    struct sniff_counts n;
    struct sniff_event q[SNIFF_QUEUE];
    size_t qhead, qlen;
    /* the request waiting for its answer */
    int pending;
    uint8_t req_adr, req_cmd;
    uint16_t req_start, req_count; /* Modbus register reads */
    int64_t req_ms;
    int64_t last_ms; /* the last byte fed */
    /* Service 42: the frame being read, and a 0x42 sample held for the 0x44 that may follow */
    char s42_buf[S42_MAX_FRAME + 2];
    size_t s42_len;
    struct s42_frame frame;
    int held;
    struct sample held_sample;
    /* Modbus RTU: the bytes not yet framed, and per slave the registers heard since its last
     * sample (known: a bit per register) */
    uint8_t mb_buf[SNIFF_MB_BUF];
    size_t mb_len;
    uint16_t regs[SNIFF_MB_SLAVES][MBMAP_NREGS];
    uint64_t known[SNIFF_MB_SLAVES];
};

/* v: the Service 42 variant of the bus, or NULL for Modbus RTU. timeout_ms: how long an answer
 * may take after its request (the port's timeout). */
void sniff_init(struct sniff *s, const struct s42_variant *v, int timeout_ms);
/* Takes bytes of the line received at now_ms. Stops early when the event queue is nearly full:
 * returns how many bytes it took (the caller drains sniff_next and feeds the rest). */
size_t sniff_feed(struct sniff *s, const uint8_t *data, size_t n, int64_t now_ms);
/* The line has been silent until now_ms: a request older than the timeout is unanswered, a
 * held 0x42 sample goes out, a Modbus frame that can no longer complete is dropped. */
void sniff_idle(struct sniff *s, int64_t now_ms);
/* The listening ends at now_ms: a request still within its timeout is forgotten (the end cut
 * it: not unanswered), one older is unanswered, and whatever is held goes out. */
void sniff_end(struct sniff *s, int64_t now_ms);
/* The oldest event into *ev: 1, or 0 when there is none. */
int sniff_next(struct sniff *s, struct sniff_event *ev);

const char *sniff_kind_name(enum sniff_kind k);

/* Modbus RTU framing, exposed for tests and fuzzing: the length of the frame at buf (n bytes)
 * read as a request (as_request) or as an answer, 0 when more bytes are needed to know, -1 when
 * the function code is not one a frame can have. */
int sniff_mb_frame_len(const uint8_t *buf, size_t n, int as_request);

#endif
