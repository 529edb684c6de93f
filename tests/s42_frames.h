/* s42_frames: hand-built INFO for the Service 42 answers with no public frame (SERVICE42.md §2,
 * §3), one section per variant in s42_frames.c, each with what it decodes to; and the real
 * frames quoted in SERVICE42.md that vectors.tsv does not hold. test_s42_variants decodes them,
 * test_s42_corruption corrupts and truncates every one, test_s42_framing uses some as carriers. */
#ifndef BMSFLEET_TEST_S42_FRAMES_H
#define BMSFLEET_TEST_S42_FRAMES_H

#include <stddef.h>
#include <stdint.h>

/* a 0x42 answer and the sample it decodes to */
struct exp_analog {
    uint8_t adr;
    uint8_t ncells;
    const int32_t *cells;
    uint8_t ntemps;
    const int32_t *temps;
    const uint8_t *roles; /* NULL: the sources do not say */
    int32_t voltage, current, soc, soh, remaining, full, design, cycles;
    uint32_t has, alarms, protection, state, balancing;
    uint8_t nraw;
    const uint16_t *raw;
};

struct analog_case {
    const char *name;
    const char *variant;
    const uint8_t *info;
    size_t len;
    struct exp_analog e;
};

/* a 0x44 answer and the flags it decodes to */
struct alarm_case {
    const char *name;
    const char *variant;
    uint8_t adr;
    const uint8_t *info;
    size_t len;
    int exact; /* 0: alarms/protection must include the listed flags (the rest of the bits
                * are not in SERVICE42.md) */
    uint32_t alarms, protection, state, balancing;
    uint8_t nraw;
    const uint16_t *raw;
    const int *raw_idx; /* which raw words to compare (NULL: all nraw, in order) */
};

/* an identity answer (0x51, 0x93, ...) and the strings it decodes to */
struct identity_case {
    const char *name;
    const char *variant;
    uint8_t adr, cid2;
    const uint8_t *info;
    size_t len;
    const char *hardware, *product, *project, *manufacturer, *software, *serial;
    int protocol_version;
};

extern const struct analog_case *const analog_cases[];
extern const size_t n_analog_cases;
extern const struct alarm_case *const alarm_cases[];
extern const size_t n_alarm_cases;
extern const struct identity_case *const identity_cases[];
extern const size_t n_identity_cases;

/* Real frames quoted in SERVICE42.md §3-§6 that are not in vectors.tsv (without the EOI). */
extern const char *const doc_frames[];
extern const size_t n_doc_frames;

/* Every hand-built answer, the analog, alarm and identity cases in that order, as one list:
 * cid2 is the command it answers (0x42, 0x44, or the identity command). */
struct built_frame {
    const char *name, *variant;
    uint8_t adr, cid2;
    const uint8_t *info;
    size_t len;
};
size_t n_built_frames(void);
struct built_frame built_frame(size_t i);

/* By name ("pace 0x42 8S"); fails the test when there is none. */
const struct analog_case *analog_case(const char *name);
const struct alarm_case *alarm_case(const char *name);

#endif
