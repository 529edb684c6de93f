/* s42: the "Service 42" ASCII frame codec (YD/T 1363-style) and its variant decoders.
 *
 * Pure code: no I/O, no clock, no logging, no allocation. Frames are parsed into a struct
 * s42_frame (header + binary INFO), checked against what was asked, then an INFO layout of the
 * protocol variant is walked by the counts the frame carries (cells M, temperatures N, P/UDI).
 * The same layouts also encode, which is how the simulator answers. */
#ifndef BMSFLEET_S42_H
#define BMSFLEET_S42_H

#include <stddef.h>
#include <stdint.h>

#include "sample.h"

#define S42_MAX_INFO 2048        /* bytes: LENID is 12 bits of ASCII chars */
#define S42_MAX_FRAME (18 + 4096) /* chars incl. SOI and EOI */

/* Named errors. Functions return 0 or -S42_E_*. */
enum s42_error {
    S42_OK = 0,
    S42_E_EMPTY = 1,     /* nothing to parse */
    S42_E_SOI,           /* does not start with '~' */
    S42_E_EOI,           /* no '\r' where the frame must end */
    S42_E_SHORT,         /* shorter than the 18-char minimum */
    S42_E_TOO_LONG,      /* longer than any valid frame */
    S42_E_HEX,           /* a character between SOI and EOI is not uppercase hex */
    S42_E_LENID,         /* LENID does not match the INFO actually present */
    S42_E_LENID_ODD,     /* LENID is odd: INFO must be whole bytes */
    S42_E_LCHKSUM,       /* LENGTH checksum nibble wrong */
    S42_E_CHKSUM,        /* frame checksum wrong */
    S42_E_TRAILING,      /* bytes after EOI */
    S42_E_VER,           /* VER differs from the variant's */
    S42_E_ADR,           /* answer from another address */
    S42_E_CID1,          /* CID1 differs from the variant's */
    S42_E_INFO_SHORT,    /* INFO too short for the fields its counts announce */
    S42_E_COUNT,         /* a count (cells, temperatures) beyond what a pack can have */
    S42_E_VALUE,         /* a field holds an impossible value */
    S42_E_UNSUPPORTED,   /* the variant has no such command */
    S42_E_BUFFER,        /* output buffer too small (encoding) */
    /* RTN codes a BMS answered with */
    S42_E_RTN_VER,       /* 01 */
    S42_E_RTN_CHKSUM,    /* 02 */
    S42_E_RTN_LCHKSUM,   /* 03 */
    S42_E_RTN_CID2,      /* 04 */
    S42_E_RTN_FORMAT,    /* 05 */
    S42_E_RTN_DATA,      /* 06 */
    S42_E_RTN_NODATA,    /* 07 */
    S42_E_RTN_OPERATION, /* 09 */
    S42_E_RTN_ADR,       /* 90 */
    S42_E_RTN_COMM,      /* 91 */
    S42_E_RTN_CID1,      /* E1 */
    S42_E_RTN_EXEC,      /* E2 */
    S42_E_RTN_EQUIP,     /* E3 */
    S42_E_RTN_PERM,      /* E4 */
    S42_E_RTN_UNKNOWN,   /* any other non-zero RTN */
    S42_E__COUNT
};

/* Details that make an error message actionable ("frame says 0xFD28, computed 0xFD27"). */
struct s42_diag {
    long pos;           /* character index in the frame, or byte index in INFO, -1 if none */
    unsigned long got;  /* what the frame says */
    unsigned long want; /* what it should be */
};

struct s42_frame {
    uint8_t ver, adr, cid1, cid2; /* cid2 is the RTN code in a response */
    uint16_t lenid;               /* INFO length in ASCII chars */
    size_t info_len;              /* INFO length in bytes */
    uint8_t info[S42_MAX_INFO];
};

struct s42_variant;

/* Identity of a pack, from whichever identity commands its variant has. Empty string = absent. */
struct s42_identity {
    int protocol_version; /* -1 when absent */
    char hardware[41];
    char product[41];
    char project[41];
    char manufacturer[41];
    char software[24];
    char serial[64];
};

/* ---- frames ---- */

/* LENGTH field for an INFO of lenid ASCII chars (LCHKSUM in the top nibble). */
uint16_t s42_length_field(uint16_t lenid);
/* CHKSUM over the chars after SOI up to the end of INFO. */
uint16_t s42_checksum(const char *p, size_t n);
/* How many chars the frame that starts at buf[0] ('~') will have, from its first len chars:
 * the header's 13 while they are not all there yet, then 18 + LENID once LENGTH (with its
 * LCHKSUM) is read; 0 when the header is not one (the reader then takes bytes as they come).
 * Lets a reader sleep through a frame's wire time instead of waking for every few bytes. */
size_t s42_frame_chars(const char *buf, size_t len);

/* Writes a complete frame (SOI .. EOI '\r', then a NUL) into buf. cid2 is the command, or the
 * RTN code when encoding a response. Returns the length without the NUL, -S42_E_BUFFER, or
 * -S42_E_TOO_LONG when the INFO cannot be described by a 12-bit LENID. */
int s42_build(char *buf, size_t cap, uint8_t ver, uint8_t adr, uint8_t cid1, uint8_t cid2,
              const uint8_t *info, size_t info_len);

/* Validates framing and checksums of exactly one frame (buf[len-1] must be the EOI '\r').
 * Does not look at RTN: see s42_check. On error *diag (if given) says where and what. */
int s42_parse(const char *buf, size_t len, struct s42_frame *out, struct s42_diag *diag);

/* Checks a parsed response against the request: VER, ADR echo, CID1, then RTN. */
int s42_check(const struct s42_frame *f, const struct s42_variant *v, uint8_t adr,
              struct s42_diag *diag);

/* Maps an RTN code to its named error (0 for RTN 00). */
int s42_rtn_error(uint8_t rtn);
/* A short fixed description of an error code (positive or negative). */
const char *s42_strerror(int err);
/* A full sentence with the diagnostic details. Returns buf. */
const char *s42_describe(int err, const struct s42_diag *diag, char *buf, size_t cap);

/* ---- variants ---- */

const struct s42_variant *s42_variant_find(const char *name);
/* The variant at index i (0..), NULL past the end. */
const struct s42_variant *s42_variant_at(size_t i);
const char *s42_variant_name(const struct s42_variant *v);
uint8_t s42_variant_ver(const struct s42_variant *v);
uint8_t s42_variant_cid1(const struct s42_variant *v);
/* Guesses the variant of a response from VER/CID1 (and, for VER 0x20, the INFO layout). */
const struct s42_variant *s42_variant_guess(const struct s42_frame *f);

/* Commands. */
enum {
    S42_CID2_ANALOG = 0x42,
    S42_CID2_ALARM = 0x44,
    S42_CID2_SYSPARAM = 0x47,
    S42_CID2_PROTOCOL = 0x4F,
    S42_CID2_MANUFACTURER = 0x51,
    S42_CID2_PYLON_SERIAL = 0x93,
    S42_CID2_PACE_HWVER = 0xC1,
    S42_CID2_PACE_SERIAL = 0xC2,
};

/* Builds the request for a command of the variant to the pack at adr. */
int s42_request(const struct s42_variant *v, uint8_t cid2, uint8_t adr, char *buf, size_t cap);
/* True when the variant knows the command. */
int s42_has_command(const struct s42_variant *v, uint8_t cid2);
/* The identity commands the variant has, in the order to ask them; returns how many. */
size_t s42_identity_commands(const struct s42_variant *v, uint8_t *cid2s, size_t cap);

/* ---- a chain reached through its master pack (s42_multi.c) ---- */

/* 1 when the variant's requests name their target pack in INFO (PACE, Pylontech): a master
 * pack relays them, and INFO FF asks every pack at once. */
int s42_has_relay(const struct s42_variant *v);
/* A request to the pack at target through the master at via (header ADR via, INFO target);
 * target FF: every pack; target == via: the ordinary request. -S42_E_UNSUPPORTED when the
 * variant or the command cannot be relayed. */
int s42_request_via(const struct s42_variant *v, uint8_t cid2, uint8_t via, uint8_t target,
                    char *buf, size_t cap);
/* The answer to a 0x42 with INFO FF: *n blocks (the count INFO carries, at most cap), block i
 * decoded as the pack at address first + i. */
int s42_decode_analog_all(const struct s42_variant *v, const struct s42_frame *f, uint8_t first,
                          struct sample *out, size_t cap, size_t *n, struct s42_diag *diag);
/* Its encoder (the simulator's master pack): the INFO of count packs' values. */
int s42_encode_analog_all(const struct s42_variant *v, const struct sample *s, size_t count,
                          uint8_t *info, size_t cap);

/* 0x42 analog values into *out (which is initialised first). */
int s42_decode_analog(const struct s42_variant *v, const struct s42_frame *f, struct sample *out,
                      struct s42_diag *diag);
/* 0x44 alarm/status: merged into an existing sample (alarms, protection, state, balancing). */
int s42_decode_alarm(const struct s42_variant *v, const struct s42_frame *f, struct sample *io,
                     struct s42_diag *diag);
/* An identity command's answer merged into *io (initialise it with s42_identity_init). */
int s42_decode_identity(const struct s42_variant *v, uint8_t cid2, const struct s42_frame *f,
                        struct s42_identity *io, struct s42_diag *diag);
void s42_identity_init(struct s42_identity *id);

/* Encoders (for the simulator and for tests): the INFO of a response. Return bytes or -err. */
int s42_encode_analog(const struct s42_variant *v, const struct sample *s, uint8_t *info,
                      size_t cap);
int s42_encode_alarm(const struct s42_variant *v, const struct sample *s, uint8_t *info,
                     size_t cap);
int s42_encode_identity(const struct s42_variant *v, uint8_t cid2, uint8_t adr,
                        const struct s42_identity *id, uint8_t *info, size_t cap);

#endif
