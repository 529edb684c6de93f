/* s42_multi: a chain of packs reached through its master pack (issue 17). PACE and Pylontech
 * requests carry the target pack in INFO: a request to the master's address with another pack's
 * address in INFO is relayed to that pack, and INFO FF asks every pack at once: the answer then
 * holds the pack count in INFO byte 1 and one block per pack (SERVICE42.md §2b, §2c, §6). Each
 * block is decoded with the variant's own layout, behind the two bytes a single answer has. */
#include "s42_internal.h"

#include <string.h>

/* The variants whose requests name their target in INFO, and how a block's length is read. */
enum relay_kind { RELAY_NONE, RELAY_PACE, RELAY_PYLON };

static enum relay_kind relay_kind(const struct s42_variant *v)
{
    const char *n = s42_variant_name(v);
    return strcmp(n, "pace") == 0 ? RELAY_PACE : strcmp(n, "pylontech") == 0 ? RELAY_PYLON : RELAY_NONE;
}

int s42_has_relay(const struct s42_variant *v)
{
    return relay_kind(v) != RELAY_NONE;
}

int s42_request_via(const struct s42_variant *v, uint8_t cid2, uint8_t via, uint8_t target,
                    char *buf, size_t cap)
{
    const struct s42_command *c = s42_find_command(v, cid2);
    if (c == NULL || (c->req != REQ_ADR && target != via) ||
        (target != via && !s42_has_relay(v)))
        return -S42_E_UNSUPPORTED;
    if (target == via)
        return s42_request(v, cid2, via, buf, cap);
    return s42_build(buf, cap, s42_variant_ver(v), via, s42_variant_cid1(v), cid2, &target, 1);
}

/* The length of the analog block at b (n bytes left), -1 when it does not fit or cannot be
 * delimited (a PACE block with vendor bytes after P > 3 is only readable as the last one). */
static long block_len(enum relay_kind k, const uint8_t *b, size_t n, int last)
{
    size_t at = 0;
    if (at >= n)
        return -1;
    at += 1 + 2u * b[at]; /* cells */
    if (at >= n)
        return -1;
    at += 1 + 2u * b[at]; /* temperatures */
    at += 6;              /* current, voltage, remaining */
    if (at >= n)
        return -1;
    uint8_t user = b[at++];
    at += k == RELAY_PACE ? 6 : 4; /* full, cycles (, design) */
    if (k == RELAY_PYLON && user > 2)
        at += 6; /* the 3-byte capacity extension */
    if (k == RELAY_PACE && user != 3 && !last)
        return -1;
    if (at > n)
        return -1;
    return last ? (long)n : (long)at;
}

int s42_decode_analog_all(const struct s42_variant *v, const struct s42_frame *f, uint8_t first,
                          struct sample *out, size_t cap, size_t *n, struct s42_diag *diag)
{
    enum relay_kind k = relay_kind(v);
    *n = 0;
    if (k == RELAY_NONE)
        return -S42_E_UNSUPPORTED;
    if (f->info_len < 3)
        return -S42_E_INFO_SHORT;
    size_t count = f->info[1], at = 2;
    if (count == 0 || count > cap)
        return -S42_E_COUNT;
    static const size_t block_max = S42_MAX_INFO;
    struct s42_frame one = *f;
    for (size_t i = 0; i < count; i++) {
        long len = block_len(k, f->info + at, f->info_len - at, i + 1 == count);
        if (len < 0 || (size_t)len + 2 > block_max) {
            if (diag)
                *diag = (struct s42_diag){(long)at, count, i};
            return -S42_E_INFO_SHORT;
        }
        one.info[0] = f->info[0];
        one.info[1] = (uint8_t)(first + i);
        memcpy(one.info + 2, f->info + at, (size_t)len);
        one.info_len = (size_t)len + 2;
        one.adr = (uint8_t)(first + i);
        int err = s42_decode_analog(v, &one, &out[i], diag);
        if (err)
            return err;
        at += (size_t)len;
    }
    *n = count;
    return 0;
}

int s42_encode_analog_all(const struct s42_variant *v, const struct sample *s, size_t count,
                          uint8_t *info, size_t cap)
{
    if (!s42_has_relay(v) || count == 0 || count > 255 || cap < 2)
        return -S42_E_UNSUPPORTED;
    uint8_t one[S42_MAX_INFO];
    size_t at = 2;
    for (size_t i = 0; i < count; i++) {
        int n = s42_encode_analog(v, &s[i], one, sizeof one);
        if (n < 0)
            return n;
        if (i == 0)
            info[0] = one[0];
        if (at + (size_t)n - 2 > cap)
            return -S42_E_BUFFER;
        memcpy(info + at, one + 2, (size_t)n - 2);
        at += (size_t)n - 2;
    }
    info[1] = (uint8_t)count;
    return (int)at;
}
