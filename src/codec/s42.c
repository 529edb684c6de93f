/* Part codec (src/codec/): the protocols and their arithmetic, pure. Service 42 frames and the
 * four variants' layouts (s42.c, s42_layout.c, s42_variants.c), the Modbus register map
 * (mbmap.c), the sample and its flags (sample.c), the bank aggregates (bank.c) and the energy
 * integration (energy.c). No I/O, no logging, no threads, no library but the C library: bytes
 * or samples in, values out, so every line of it is unit-tested and fuzzed.
 *
 * s42: Service 42 frame layer: LENGTH/LCHKSUM, CHKSUM, building frames, validating a response
 * completely before anyone reads a field, and naming every error (SERVICE42.md §1, §4). */
#include "s42.h"

#include <stdio.h>
#include <string.h>

#include "s42_internal.h"

#define S42_HEADER_CHARS 13 /* '~' VER ADR CID1 CID2 LENGTH */
#define S42_MIN_FRAME 18    /* header + CHKSUM + EOI */

static const char hexdig[] = "0123456789ABCDEF";

uint16_t s42_length_field(uint16_t lenid)
{
    lenid &= 0x0FFF;
    unsigned sum = (lenid & 0xFu) + ((lenid >> 4) & 0xFu) + ((lenid >> 8) & 0xFu);
    unsigned lchk = (~sum + 1u) & 0xFu;
    return (uint16_t)((lchk << 12) | lenid);
}

uint16_t s42_checksum(const char *p, size_t n)
{
    uint32_t sum = 0;
    while (n--)
        sum += (uint8_t)*p++;
    return (uint16_t)((~sum + 1u) & 0xFFFFu);
}

static void put_hex8(char *out, unsigned v)
{
    out[0] = hexdig[(v >> 4) & 0xF];
    out[1] = hexdig[v & 0xF];
}

static void put_hex16(char *out, unsigned v)
{
    put_hex8(out, v >> 8);
    put_hex8(out + 2, v & 0xFF);
}

int s42_build(char *buf, size_t cap, uint8_t ver, uint8_t adr, uint8_t cid1, uint8_t cid2,
              const uint8_t *info, size_t info_len)
{
    if (info_len > S42_MAX_INFO - 1 || info_len * 2 > 0x0FFF)
        return -S42_E_TOO_LONG;
    size_t total = S42_MIN_FRAME + info_len * 2;
    if (cap < total + 1)
        return -S42_E_BUFFER;
    char *p = buf;
    *p++ = '~';
    put_hex8(p, ver);
    put_hex8(p + 2, adr);
    put_hex8(p + 4, cid1);
    put_hex8(p + 6, cid2);
    put_hex16(p + 8, s42_length_field((uint16_t)(info_len * 2)));
    p += 12;
    for (size_t i = 0; i < info_len; i++, p += 2)
        put_hex8(p, info[i]);
    put_hex16(p, s42_checksum(buf + 1, (size_t)(p - buf - 1)));
    p += 4;
    *p++ = '\r';
    *p = '\0';
    return (int)total;
}

/* Uppercase hex only: the protocol sends uppercase, and a lowercase digit on the wire means a
 * corrupted or foreign frame. */
static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t s42_frame_chars(const char *buf, size_t len)
{
    if (len == 0 || buf[0] != '~')
        return 0;
    if (len < S42_HEADER_CHARS)
        return S42_HEADER_CHARS;
    unsigned length = 0;
    for (size_t i = 9; i < S42_HEADER_CHARS; i++) {
        int v = hexval(buf[i]);
        if (v < 0)
            return 0;
        length = length << 4 | (unsigned)v;
    }
    if (s42_length_field((uint16_t)(length & 0x0FFFu)) != length)
        return 0; /* a damaged LENGTH announces nothing we could trust */
    return S42_MIN_FRAME + (length & 0x0FFFu);
}

static unsigned get_hex(const char *p, size_t ndig)
{
    unsigned v = 0;
    for (size_t i = 0; i < ndig; i++)
        v = (v << 4) | (unsigned)hexval(p[i]);
    return v;
}

static int fail(int err, struct s42_diag *diag, long pos, unsigned long got, unsigned long want)
{
    if (diag) {
        diag->pos = pos;
        diag->got = got;
        diag->want = want;
    }
    return -err;
}

int s42_parse(const char *buf, size_t len, struct s42_frame *out, struct s42_diag *diag)
{
    if (len == 0)
        return fail(S42_E_EMPTY, diag, -1, 0, 0);
    if (buf[0] != '~')
        return fail(S42_E_SOI, diag, 0, (uint8_t)buf[0], '~');
    /* The frame ends at the first EOI; anything after it is not part of this frame. */
    const char *eoi = memchr(buf, '\r', len);
    if (eoi == NULL) {
        if (len > S42_MAX_FRAME)
            return fail(S42_E_TOO_LONG, diag, -1, len, S42_MAX_FRAME);
        return fail(len < S42_MIN_FRAME ? S42_E_SHORT : S42_E_EOI, diag, (long)len, len,
                    S42_MIN_FRAME);
    }
    size_t flen = (size_t)(eoi - buf) + 1;
    if (flen < len)
        return fail(S42_E_TRAILING, diag, (long)flen, len - flen, 0);
    if (flen < S42_MIN_FRAME)
        return fail(S42_E_SHORT, diag, (long)flen, flen, S42_MIN_FRAME);
    if (flen > S42_MAX_FRAME)
        return fail(S42_E_TOO_LONG, diag, -1, flen, S42_MAX_FRAME);
    for (size_t i = 1; i < flen - 1; i++) {
        if (hexval(buf[i]) < 0)
            return fail(S42_E_HEX, diag, (long)i, (uint8_t)buf[i], 0);
    }
    unsigned length = get_hex(buf + 9, 4);
    unsigned lenid = length & 0x0FFFu;
    size_t info_chars = flen - S42_MIN_FRAME;
    if (lenid != info_chars)
        return fail(S42_E_LENID, diag, 9, lenid, info_chars);
    if (s42_length_field((uint16_t)lenid) != length)
        return fail(S42_E_LCHKSUM, diag, 9, length >> 12, (unsigned)s42_length_field((uint16_t)lenid) >> 12);
    if (lenid & 1u)
        return fail(S42_E_LENID_ODD, diag, 9, lenid, lenid + 1);
    unsigned chk = get_hex(buf + S42_HEADER_CHARS + lenid, 4);
    uint16_t want = s42_checksum(buf + 1, S42_HEADER_CHARS - 1 + lenid);
    if (chk != want)
        return fail(S42_E_CHKSUM, diag, (long)(S42_HEADER_CHARS + lenid), chk, want);

    out->ver = (uint8_t)get_hex(buf + 1, 2);
    out->adr = (uint8_t)get_hex(buf + 3, 2);
    out->cid1 = (uint8_t)get_hex(buf + 5, 2);
    out->cid2 = (uint8_t)get_hex(buf + 7, 2);
    out->lenid = (uint16_t)lenid;
    out->info_len = lenid / 2;
    for (size_t i = 0; i < out->info_len; i++)
        out->info[i] = (uint8_t)get_hex(buf + S42_HEADER_CHARS + 2 * i, 2);
    return 0;
}

static const struct {
    uint8_t rtn;
    int err;
} rtn_map[] = {
    {0x01, S42_E_RTN_VER},    {0x02, S42_E_RTN_CHKSUM},    {0x03, S42_E_RTN_LCHKSUM},
    {0x04, S42_E_RTN_CID2},   {0x05, S42_E_RTN_FORMAT},    {0x06, S42_E_RTN_DATA},
    {0x07, S42_E_RTN_NODATA}, {0x09, S42_E_RTN_OPERATION}, {0x90, S42_E_RTN_ADR},
    {0x91, S42_E_RTN_COMM},   {0xE1, S42_E_RTN_CID1},      {0xE2, S42_E_RTN_EXEC},
    {0xE3, S42_E_RTN_EQUIP},  {0xE4, S42_E_RTN_PERM},
};

int s42_rtn_error(uint8_t rtn)
{
    if (rtn == 0)
        return 0;
    for (size_t i = 0; i < sizeof rtn_map / sizeof rtn_map[0]; i++) {
        if (rtn_map[i].rtn == rtn)
            return rtn_map[i].err;
    }
    return S42_E_RTN_UNKNOWN;
}

int s42_check(const struct s42_frame *f, const struct s42_variant *v, uint8_t adr,
              struct s42_diag *diag)
{
    /* A pack of another family on the bus (SERVICE42.md §7.4) answers with its own VER/CID1;
     * an RTN from it is still about it, so identity is checked before RTN. */
    if (f->ver != v->ver)
        return fail(S42_E_VER, diag, 1, f->ver, v->ver);
    if (f->adr != adr)
        return fail(S42_E_ADR, diag, 3, f->adr, adr);
    if (f->cid1 != v->cid1)
        return fail(S42_E_CID1, diag, 5, f->cid1, v->cid1);
    int err = s42_rtn_error(f->cid2);
    if (err)
        return fail(err, diag, 7, f->cid2, 0);
    return 0;
}

static const char *const error_text[S42_E__COUNT] = {
    [S42_OK] = "ok",
    [S42_E_EMPTY] = "empty frame",
    [S42_E_SOI] = "frame does not start with '~' (SOI)",
    [S42_E_EOI] = "frame does not end with CR (EOI): truncated",
    [S42_E_SHORT] = "frame shorter than the 18-character minimum: truncated",
    [S42_E_TOO_LONG] = "frame longer than any valid frame",
    [S42_E_HEX] = "character that is not an uppercase hex digit",
    [S42_E_LENID] = "LENID does not match the INFO length",
    [S42_E_LENID_ODD] = "LENID is odd: INFO is not whole bytes",
    [S42_E_LCHKSUM] = "length checksum (LCHKSUM) mismatch",
    [S42_E_CHKSUM] = "checksum mismatch",
    [S42_E_TRAILING] = "bytes after the end of the frame",
    [S42_E_VER] = "protocol version (VER) differs: another BMS family answered",
    [S42_E_ADR] = "answer from another address",
    [S42_E_CID1] = "CID1 differs: another BMS family answered",
    [S42_E_INFO_SHORT] = "INFO too short for the fields it announces",
    [S42_E_COUNT] = "cell or temperature count out of range",
    [S42_E_VALUE] = "impossible field value",
    [S42_E_UNSUPPORTED] = "command not supported by this protocol variant",
    [S42_E_BUFFER] = "output buffer too small",
    [S42_E_RTN_VER] = "BMS answered RTN 01: version error",
    [S42_E_RTN_CHKSUM] = "BMS answered RTN 02: it saw a checksum error in our request",
    [S42_E_RTN_LCHKSUM] = "BMS answered RTN 03: it saw a length checksum error in our request",
    [S42_E_RTN_CID2] = "BMS answered RTN 04: command not supported (CID2 invalid)",
    [S42_E_RTN_FORMAT] = "BMS answered RTN 05: command format error",
    [S42_E_RTN_DATA] = "BMS answered RTN 06: invalid data",
    [S42_E_RTN_NODATA] = "BMS answered RTN 07: no data",
    [S42_E_RTN_OPERATION] = "BMS answered RTN 09: operation failed",
    [S42_E_RTN_ADR] = "BMS answered RTN 90: address error",
    [S42_E_RTN_COMM] = "BMS answered RTN 91: communication error (battery or internal bus)",
    [S42_E_RTN_CID1] = "BMS answered RTN E1: CID1 error",
    [S42_E_RTN_EXEC] = "BMS answered RTN E2: command execution failed",
    [S42_E_RTN_EQUIP] = "BMS answered RTN E3: equipment failure",
    [S42_E_RTN_PERM] = "BMS answered RTN E4: permission denied",
    [S42_E_RTN_UNKNOWN] = "BMS answered with an unknown RTN error code",
};

const char *s42_strerror(int err)
{
    if (err < 0)
        err = -err;
    if (err >= S42_E__COUNT || error_text[err] == NULL)
        return "unknown error";
    return error_text[err];
}

const char *s42_describe(int err, const struct s42_diag *d, char *buf, size_t cap)
{
    if (err < 0)
        err = -err;
    const char *what = s42_strerror(err);
    if (d == NULL) {
        snprintf(buf, cap, "%s", what);
        return buf;
    }
    switch (err) {
    case S42_E_CHKSUM:
        snprintf(buf, cap, "checksum mismatch: frame says 0x%04lX, computed 0x%04lX", d->got,
                 d->want);
        break;
    case S42_E_LCHKSUM:
        snprintf(buf, cap, "length checksum mismatch: frame says 0x%lX, computed 0x%lX", d->got,
                 d->want);
        break;
    case S42_E_LENID:
        snprintf(buf, cap, "LENID says %lu INFO characters, frame has %lu", d->got, d->want);
        break;
    case S42_E_HEX:
        snprintf(buf, cap, "%s at position %ld (0x%02lX)", what, d->pos, d->got);
        break;
    case S42_E_SOI:
        snprintf(buf, cap, "%s (first byte 0x%02lX)", what, d->got);
        break;
    case S42_E_TRAILING:
        snprintf(buf, cap, "%lu byte(s) after the end of the frame at position %ld", d->got,
                 d->pos);
        break;
    case S42_E_SHORT:
    case S42_E_EOI:
        snprintf(buf, cap, "%s (%lu characters)", what, d->got);
        break;
    case S42_E_VER:
        snprintf(buf, cap, "%s (VER 0x%02lX, expected 0x%02lX)", what, d->got, d->want);
        break;
    case S42_E_ADR:
        snprintf(buf, cap, "answer from address %lu, expected %lu", d->got, d->want);
        break;
    case S42_E_CID1:
        snprintf(buf, cap, "%s (CID1 0x%02lX, expected 0x%02lX)", what, d->got, d->want);
        break;
    case S42_E_INFO_SHORT:
        snprintf(buf, cap, "INFO too short: field at byte %ld needs %lu byte(s), INFO has %lu",
                 d->pos, d->want, d->got);
        break;
    case S42_E_COUNT:
        snprintf(buf, cap, "%s: %lu at INFO byte %ld (at most %lu)", what, d->got, d->pos,
                 d->want);
        break;
    case S42_E_RTN_UNKNOWN:
        snprintf(buf, cap, "BMS answered with unknown RTN 0x%02lX", d->got);
        break;
    default:
        snprintf(buf, cap, "%s", what);
        break;
    }
    return buf;
}
