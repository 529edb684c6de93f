/* fuzz_sniff: listen-only decoding (codec/sniff.c) on any bytes of a line. The first byte picks
 * the protocol (a Service 42 variant, or Modbus RTU) and how the rest is cut into reads; the
 * clock advances a little per read, with a silence now and then. Whatever comes out is one of
 * the event kinds, the counters add up, and a sample keeps the invariants of every sample. */
#include "fuzz.h"
#include "sniff.h"

static struct sniff sn; /* large: not on the stack */

static void drain(void)
{
    struct sniff_event ev;
    while (sniff_next(&sn, &ev)) {
        FUZZ_CHECK(ev.kind >= SNIFF_REQUEST && ev.kind <= SNIFF_UNMATCHED);
        if (ev.kind == SNIFF_SAMPLE)
            FUZZ_CHECK(ev.sample.ncells <= SAMPLE_MAX_CELLS &&
                       ev.sample.ntemps <= SAMPLE_MAX_TEMPS && ev.sample.address == ev.adr);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t which = data[0] % 5;
    sniff_init(&sn, which < 4 ? s42_variant_at(which) : NULL, 100);
    size_t chunk = 1 + (data[0] >> 3), at = 1;
    int64_t t = 0;
    while (at < size) {
        size_t n = size - at < chunk ? size - at : chunk;
        size_t used = sniff_feed(&sn, data + at, n, t);
        FUZZ_CHECK(used <= n);
        at += used;
        drain();
        t += 1 + data[at - (used ? 1 : 0)] % 7;
        if (data[at - (used ? 1 : 0)] == 0x55) {
            t += 500;
            sniff_idle(&sn, t);
            drain();
        }
    }
    sniff_idle(&sn, t + 10000);
    drain();
    FUZZ_CHECK(sn.n.bytes == size - 1);
    FUZZ_CHECK(sn.n.answers >= sn.n.refused);
    return 0;
}
