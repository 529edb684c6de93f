/* fuzz_modbus: the PACE Modbus register map decoder on any register values (the registers a
 * pack answered, big-endian byte pairs of the input), and the CRC over any bytes. A decoded
 * sample keeps the invariants of every sample; encoding it gives registers that decode again. */
#include "fuzz.h"
#include "mbmap.h"
#include "sample.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)mbmap_crc16(data, size);
    uint16_t regs[MBMAP_NREGS] = {0};
    for (size_t i = 0; i < MBMAP_NREGS && 2 * i + 1 < size; i++)
        regs[i] = (uint16_t)(data[2 * i] << 8 | data[2 * i + 1]);
    struct sample s;
    if (mbmap_decode(regs, &s) != 0)
        return 0;
    FUZZ_CHECK(s.ncells <= SAMPLE_MAX_CELLS && s.ntemps <= SAMPLE_MAX_TEMPS);
    uint16_t again[MBMAP_NREGS];
    if (mbmap_encode(&s, again) == 0) {
        struct sample t;
        FUZZ_CHECK(mbmap_decode(again, &t) == 0);
    }
    return 0;
}
