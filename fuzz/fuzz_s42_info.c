/* fuzz_s42_info: structure-aware. The first byte picks a variant and a command, the rest is an
 * INFO; a valid frame (LENGTH, LCHKSUM, CHKSUM right) is built around it, so the fuzzer spends
 * its time in the decoders instead of on checksums. The frame must then parse back to exactly
 * that INFO, and every decoder of the variant runs on it. */
#include "fuzz_s42.h"

static const uint8_t commands[] = {S42_CID2_ANALOG,      S42_CID2_ALARM,
                                   S42_CID2_SYSPARAM,    S42_CID2_PROTOCOL,
                                   S42_CID2_MANUFACTURER, S42_CID2_PYLON_SERIAL,
                                   S42_CID2_PACE_HWVER,  S42_CID2_PACE_SERIAL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t nvariants = 0;
    while (s42_variant_at(nvariants))
        nvariants++;
    const struct s42_variant *v = s42_variant_at(data[0] % nvariants);
    uint8_t cid2 = commands[(data[0] / nvariants) % sizeof commands];
    const uint8_t *info = data + 1;
    size_t len = size - 1;
    if (len > S42_MAX_INFO)
        len = S42_MAX_INFO;
    static char frame[S42_MAX_FRAME + 2];
    int n = s42_build(frame, sizeof frame, s42_variant_ver(v), 1, s42_variant_cid1(v), 0, info,
                      len);
    if (n < 0)
        return 0; /* longer than a LENID can say */
    struct s42_frame f;
    struct s42_diag d = {0};
    FUZZ_CHECK(s42_parse(frame, (size_t)n, &f, &d) == 0);
    FUZZ_CHECK(f.info_len == len && memcmp(f.info, info, len) == 0);
    FUZZ_CHECK(f.ver == s42_variant_ver(v) && f.cid1 == s42_variant_cid1(v) && f.adr == 1);
    fuzz_decode_all(v, &f);
    struct s42_identity id;
    s42_identity_init(&id);
    (void)s42_decode_identity(v, cid2, &f, &id, &d);
    fuzz_check_identity(&id);
    return 0;
}
