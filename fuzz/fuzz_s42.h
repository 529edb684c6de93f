/* fuzz_s42: what the two Service 42 targets do with a frame that passed s42_parse: every
 * variant's decoder of every command, with the invariants every decoded value must keep. */
#ifndef BMSFLEET_FUZZ_S42_H
#define BMSFLEET_FUZZ_S42_H

#include "fuzz.h"
#include "s42.h"
#include "sample.h"

static inline void fuzz_check_sample(const struct sample *s)
{
    FUZZ_CHECK(s->ncells <= SAMPLE_MAX_CELLS);
    FUZZ_CHECK(s->ntemps <= SAMPLE_MAX_TEMPS);
    for (unsigned i = 0; i < s->ntemps; i++)
        FUZZ_CHECK(s->temp_role[i] <= SAMPLE_TEMP_AVG);
}

static inline void fuzz_check_identity(const struct s42_identity *id)
{
    /* every text field stays a terminated string inside its array */
    FUZZ_CHECK(memchr(id->hardware, 0, sizeof id->hardware));
    FUZZ_CHECK(memchr(id->product, 0, sizeof id->product));
    FUZZ_CHECK(memchr(id->project, 0, sizeof id->project));
    FUZZ_CHECK(memchr(id->manufacturer, 0, sizeof id->manufacturer));
    FUZZ_CHECK(memchr(id->software, 0, sizeof id->software));
    FUZZ_CHECK(memchr(id->serial, 0, sizeof id->serial));
}

/* Every decoder of variant v on frame f (errors are fine: only crashes and broken invariants
 * are findings). */
static inline void fuzz_decode_all(const struct s42_variant *v, const struct s42_frame *f)
{
    struct s42_diag d = {0};
    char why[300];
    struct sample s;
    int err = s42_decode_analog(v, f, &s, &d);
    FUZZ_CHECK(strlen(s42_describe(err, &d, why, sizeof why)) < sizeof why);
    if (err == 0) {
        fuzz_check_sample(&s);
        err = s42_decode_alarm(v, f, &s, &d); /* the same INFO as an alarm answer, merged */
        fuzz_check_sample(&s);
    }
    sample_init(&s);
    err = s42_decode_alarm(v, f, &s, &d);
    FUZZ_CHECK(strlen(s42_describe(err, &d, why, sizeof why)) < sizeof why);
    uint8_t cmds[8];
    size_t n = s42_identity_commands(v, cmds, sizeof cmds);
    FUZZ_CHECK(n <= sizeof cmds);
    for (size_t k = 0; k < n; k++) {
        struct s42_identity id;
        s42_identity_init(&id);
        (void)s42_decode_identity(v, cmds[k], f, &id, &d);
        fuzz_check_identity(&id);
    }
    (void)s42_check(f, v, f->adr, &d);
}

#endif
