/* fuzz_s42_frame: raw bytes as they come off the bus, through the frame parser and, when it
 * accepts them, through every variant's decoders. Seeds: the real frames of
 * tests/data/vectors.tsv. */
#include "fuzz_s42.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct s42_frame f;
    struct s42_diag d = {0};
    char why[300];
    int err = s42_parse((const char *)data, size, &f, &d);
    FUZZ_CHECK(strlen(s42_describe(err, &d, why, sizeof why)) < sizeof why);
    if (err)
        return 0;
    FUZZ_CHECK(f.info_len <= S42_MAX_INFO);
    FUZZ_CHECK(f.info_len * 2 == f.lenid);
    (void)s42_variant_guess(&f);
    for (size_t i = 0; s42_variant_at(i); i++)
        fuzz_decode_all(s42_variant_at(i), &f);
    return 0;
}
