/* s42_helpers: what the Service 42 tests (test_s42_framing, test_s42_variants,
 * test_s42_corruption) share: EXPECT macros that say where in a loop they failed, frame wrapping
 * and parsing, §1 written once more independently of the codec, the vectors.tsv reader, the
 * rejection check, and a wire-level pack builder written from SERVICE42.md §2. Needs cmocka
 * included first.
 *
 * Frames under test are built byte by byte from SERVICE42.md, never with s42_encode_*, so an
 * error shared by the encoder and the decoder cannot hide. */
#ifndef BMSFLEET_TEST_S42_HELPERS_H
#define BMSFLEET_TEST_S42_HELPERS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "s42.h"
#include "sample.h"

#define N_(a)     (sizeof(a) / sizeof((a)[0]))
#define FRAME_CAP (S42_MAX_FRAME + 64)
#define A5        0xA5 /* fill pattern: a rejected call must leave its output exactly like this */

/* Big-endian bytes for hand-written INFO arrays. */
#define BE16(x) (uint8_t)(((unsigned)(x) >> 8) & 0xFFu), (uint8_t)((unsigned)(x)&0xFFu)
#define BE24(x) (uint8_t)(((unsigned)(x) >> 16) & 0xFFu), BE16(x)
#define ZERO4   0, 0, 0, 0
#define ZERO8   ZERO4, ZERO4

/* Temperature roles and "absent", short, for tables. */
#define RC  SAMPLE_TEMP_CELL
#define RM  SAMPLE_TEMP_MOS
#define RA  SAMPLE_TEMP_AMBIENT
#define RV  SAMPLE_TEMP_AVG
#define ABS SAMPLE_ABSENT

/* cmocka's asserts cannot say where in a loop they failed: these print a context first. */
#define EXPECT_EQ(got, want, ...)                                                                  \
    do {                                                                                           \
        long long got_ = (long long)(got), want_ = (long long)(want);                              \
        if (got_ != want_) {                                                                       \
            print_error(__VA_ARGS__);                                                              \
            print_error(": got %lld (0x%llX), want %lld (0x%llX)\n", got_,                         \
                        (unsigned long long)got_, want_, (unsigned long long)want_);               \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

#define EXPECT_TRUE(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            print_error(__VA_ARGS__);                                                              \
            print_error(": expected %s\n", #cond);                                                 \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

#define EXPECT_STR(got, want, ...)                                                                 \
    do {                                                                                           \
        if (strcmp((got), (want)) != 0) {                                                          \
            print_error(__VA_ARGS__);                                                              \
            print_error(": got \"%s\", want \"%s\"\n", (got), (want));                             \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

/* ---- frames ---- */

const struct s42_variant *variant(const char *name); /* fails the test when unknown */
int untouched(const void *p, size_t n);              /* every byte still A5 */
const char *show(const char *frame, size_t len, char *buf, size_t cap); /* '\r' shown as "\r" */

/* §1 once more, written independently of src/codec/s42.c (the "reference C" of SERVICE42.md). */
uint16_t ref_length_field(unsigned lenid);
uint16_t ref_checksum(const char *p, size_t n);
int is_upper_hex(char c);
unsigned hexv(char c);
unsigned hex_at(const char *p, size_t ndig);
void put_hex16(char *p, unsigned v);

/* Wraps INFO into a complete frame of a variant (cid2 = the RTN for a response). */
size_t wrap(const char *vname, uint8_t adr, uint8_t cid2, const uint8_t *info, size_t n, char *buf);
void parse_ok(const char *buf, size_t len, struct s42_frame *f, const char *what);
/* wrap + parse_ok + s42_check(adr) == 0: a valid answer of the variant, ready to decode. */
const struct s42_variant *frame_checked(const char *vname, uint8_t adr, const uint8_t *info,
                                        size_t n, struct s42_frame *f, const char *what);
/* A decoder's err is 0; else the test fails with what and the description of the error. */
void expect_decoded(int err, const struct s42_diag *d, const char *what);
int32_t ratio_cpct(int32_t num, int32_t den); /* derived SOC/SOH, rounded half up */

/* s42_parse must refuse buf with err and leave its output untouched; diag fields that are
 * used (use_*) must hold these values. */
struct want_diag {
    int use_pos, use_got, use_want;
    long pos;
    unsigned long got, want;
};
void expect_reject(const char *ctx, const char *buf, size_t len, int err,
                   const struct want_diag *w);

/* ---- tests/data/vectors.tsv ---- */

#define VEC_MAX_KV 64
#define VEC_LINE   16384

struct kv {
    char key[48];
    char val[512];
};

struct vrow {
    unsigned line;
    char protocol[32];
    char direction[16];
    char cid2[16];
    char frame[FRAME_CAP];
    struct kv kv[VEC_MAX_KV];
    size_t nkv;
};

#define ROW_FAIL(r, ...)                                                                           \
    do {                                                                                           \
        print_error("vectors.tsv:%u: ", (r)->line);                                                \
        print_error(__VA_ARGS__);                                                                  \
        print_error("\n");                                                                         \
        fail();                                                                                    \
    } while (0)

typedef void (*row_fn)(const struct vrow *r, void *ctx);

/* Calls fn for every data row (not '#', not blank); returns how many data rows the file has. */
size_t for_each_vector(row_fn fn, void *ctx);
/* The row's frame with the EOI the TSV leaves out; returns its length. */
size_t row_frame(const struct vrow *r, char *buf, size_t cap);
long row_int(const struct vrow *r, const struct kv *p, long lo, long hi);
uint8_t row_cid2(const struct vrow *r);

/* ---- a wire-level pack builder, written from SERVICE42.md §2 (used to vary counts,
 * currents and temperatures; independent of s42_encode_*) ---- */

enum kind { K_DAREN, K_PACE, K_PYLON, K_SEPLOS, K__N };
extern const char *const kind_name[K__N];

/* wire units per variant (§2 "Units at a glance") */
struct wire_units {
    int32_t cur_ma, volt_mv, cap_mah;
    int32_t temp_off; /* 0: signed 0.1 °C */
};
extern const struct wire_units units[K__N];

struct wire_pack {
    uint8_t adr, m, n;
    uint16_t cell[40];
    uint16_t temp[20];      /* the N counted sensors */
    uint16_t env, avg, mos; /* Daren's three fixed sensors */
    uint16_t current, voltage, remaining, full, design, cycles, soc, soh;
    uint8_t udi; /* Pylontech: 2, or 4 with the 24-bit capacities */
    uint32_t remaining24, full24;
};

struct bytes {
    uint8_t b[S42_MAX_INFO];
    size_t n;
};

void build_info(enum kind k, const struct wire_pack *w, struct bytes *o);
uint16_t wire_temp(enum kind k, int32_t dc);
int32_t decoded_temp(enum kind k, uint16_t raw);
void default_pack(enum kind k, uint8_t m, uint8_t n, struct wire_pack *w);
int expected_role(enum kind k, size_t i, size_t n); /* -1: the sources do not say */
/* What SERVICE42.md §2 says the frame means. */
void expect_pack(enum kind k, const struct wire_pack *w, const struct sample *s, const char *ctx);
void decode_pack(enum kind k, const struct wire_pack *w, struct sample *s, const char *ctx);

#endif
