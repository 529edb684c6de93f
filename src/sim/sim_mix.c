/* sim_mix: the fault soak's side of the simulator. Each analog request draws one kind of the
 * seeded mix (sim.h), gets the bytes of that kind, and one line in the log: what reached the
 * client, and the values of the valid answer it must keep, decoded back from the frame that
 * went on the wire. The thread in sim_run owns all of it. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "now.h"
#include "sim_internal.h"

#define GHOST_SEED_SALT 0x6405u /* the other address, when we simulate only one */
#define MIX_RNG_SALT    0xFA017500Aull

/* "soak": every kind; 36 % of the answers still reach the client after a disturbance, 40 %
 * fail, one in five of those by a timeout (which costs the client the most time) */
static const unsigned soak_pct[SIM_MIX__COUNT] = {
    [SIM_MIX_NOISE] = 12,  [SIM_MIX_LATE] = 12,    [SIM_MIX_MASTER] = 12,
    [SIM_MIX_GARBAGE] = 8, [SIM_MIX_CHECKSUM] = 8, [SIM_MIX_TRUNCATED] = 4,
    [SIM_MIX_SILENT] = 4,  [SIM_MIX_RTN] = 8,      [SIM_MIX_FOREIGN] = 8,
};

/* every RTN error code the protocol names (SERVICE42.md §4), and one it does not */
static const uint8_t rtn_codes[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x09,
                                    0x90, 0x91, 0xE1, 0xE2, 0xE3, 0xE4, 0x80};

static const char *const kind_names[SIM_MIX__COUNT] = {"clean",   "noise",    "late",      "master",
                                                       "garbage", "checksum", "truncated", "silent",
                                                       "rtn",     "foreign",  "stalled"};

const char *sim_mix_name(enum sim_mix_kind k)
{
    return (unsigned)k < SIM_MIX__COUNT ? kind_names[k] : NULL;
}

int sim_mix_kind_of(const char *name, size_t len)
{
    for (int k = 0; k < SIM_MIX__COUNT; k++)
        if (strlen(kind_names[k]) == len && strncmp(name, kind_names[k], len) == 0)
            return k;
    return -1;
}

int sim_mix_parse(const char *s, struct sim_mix *out)
{
    struct sim_mix m = {.on = true};
    if (s == NULL || *s == '\0')
        return -EINVAL;
    if (strcmp(s, "soak") == 0) {
        memcpy(m.pct, soak_pct, sizeof m.pct);
        *out = m;
        return 0;
    }
    unsigned total = 0;
    for (const char *p = s;;) {
        size_t len = strcspn(p, "=");
        int k = sim_mix_kind_of(p, len);
        if (k <= SIM_MIX_CLEAN || k >= SIM_MIX_STALLED || p[len] != '=' || p[len + 1] < '0' ||
            p[len + 1] > '9')
            return -EINVAL;
        char *end;
        errno = 0;
        unsigned long v = strtoul(p + len + 1, &end, 10);
        if (errno != 0 || v > 100 || (total += (unsigned)v) > 100)
            return -EINVAL;
        m.pct[k] = (unsigned)v;
        if (*end == '\0')
            break;
        if (*end != ',')
            return -EINVAL;
        p = end + 1;
    }
    *out = m;
    return 0;
}

enum sim_mix_kind sim_mix_pick(const struct sim_mix *m, uint64_t *rng)
{
    unsigned r = (unsigned)(sim_pty_rand(rng) % 100), cum = 0;
    for (int k = SIM_MIX_CLEAN + 1; k < SIM_MIX_STALLED; k++) {
        cum += m->pct[k];
        if (r < cum)
            return (enum sim_mix_kind)k;
    }
    return SIM_MIX_CLEAN;
}

/* A string being formatted: counts on past cap, as snprintf does. */
struct out {
    char *buf;
    size_t cap, n;
};

static void out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void out_printf(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k =
        vsnprintf(o->n < o->cap ? o->buf + o->n : NULL, o->n < o->cap ? o->cap - o->n : 0, fmt, ap);
    va_end(ap);
    o->n += k > 0 ? (size_t)k : 0;
}

static void out_value(struct out *o, const char *sep, int32_t v)
{
    if (v == SAMPLE_ABSENT)
        out_printf(o, "%s-", sep);
    else
        out_printf(o, "%s%" PRId32, sep, v);
}

static void out_list(struct out *o, const int32_t *v, size_t count)
{
    out_printf(o, "\t%s", count == 0 ? "-" : "");
    for (size_t i = 0; i < count; i++)
        out_value(o, i ? "," : "", v[i]);
}

int sim_log_values(const struct sample *s, char *buf, size_t cap)
{
    const int32_t scalars[] = {s->voltage_mv,    s->current_ma, s->soc_cpct,   s->soh_cpct,
                               s->remaining_mah, s->full_mah,   s->design_mah, s->cycles};
    struct out o = {buf, cap, 0};
    if (cap > 0)
        buf[0] = '\0';
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++)
        out_value(&o, i ? "\t" : "", scalars[i]);
    out_list(&o, s->cell_mv, s->ncells);
    out_list(&o, s->temp_dc, s->ntemps);
    return o.n > INT32_MAX ? INT32_MAX : (int)o.n;
}

/* ---- the log ---- */

static void log_line(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void log_line(struct sim *s, const char *fmt, ...)
{
    if (s->log == NULL || s->log_err != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (vfprintf(s->log, fmt, ap) < 0)
        s->log_err = errno ? -errno : -EIO;
    va_end(ap);
}

int sim_log_open(struct sim *s, const char *path)
{
    /* the other address: the next of ours, or one we do not simulate */
    uint8_t other = s->o.addresses[0] == 254 ? 253 : (uint8_t)(s->o.addresses[0] + 1);
    sim_pack_init(&s->ghost, s->o.seed ^ GHOST_SEED_SALT, other, s->o.ncells);
    s->mix_rng = (s->o.seed ^ MIX_RNG_SALT) | 1u;
    if (path == NULL)
        return 0;
    s->log = fopen(path, "w");
    if (s->log == NULL)
        return -errno;
    log_line(s, "# ms\taddress\tn\tkind\tvoltage_mv\tcurrent_ma\tsoc_cpct\tsoh_cpct\t"
                "remaining_mah\tfull_mah\tdesign_mah\tcycles\tcells_mv\ttemps_dc\n");
    return s->log_err;
}

int sim_log_close(struct sim *s)
{
    if (s->log == NULL)
        return 0;
    int rc = s->log_err;
    if (fclose(s->log) != 0 && rc == 0)
        rc = -errno;
    s->log = NULL;
    return rc;
}

/* ---- the answers ---- */

/* A VER of another protocol family than ours. */
static uint8_t foreign_ver(const struct s42_variant *v)
{
    for (size_t i = 0; s42_variant_at(i) != NULL; i++)
        if (s42_variant_ver(s42_variant_at(i)) != s42_variant_ver(v))
            return s42_variant_ver(s42_variant_at(i));
    return (uint8_t)(s42_variant_ver(v) ^ 0x01);
}

/* Appends to the answer being assembled in s->mixtx at *n; false when it would not fit. */
static bool append(struct sim *s, size_t *n, const void *bytes, size_t len)
{
    if (len > sizeof s->mixtx - *n)
        return false;
    memcpy(s->mixtx + *n, bytes, len);
    *n += len;
    return true;
}

/* The other pack's traffic that comes before our answer: a late answer of another address, or
 * another master's request and that pack's answer. */
static bool other_traffic(struct sim *s, int idx, enum sim_mix_kind k, size_t *n)
{
    const struct sim_pack *other =
        s->o.naddresses > 1 ? &s->packs[(size_t)(idx + 1) % s->o.naddresses] : &s->ghost;
    if (k == SIM_MIX_MASTER) {
        char req[64];
        int len = s42_request(s->o.variant, S42_CID2_ANALOG, other->address, req, sizeof req);
        if (len < 0 || !append(s, n, req, (size_t)len))
            return false;
    }
    struct sample smp;
    bool carries;
    size_t len = sim_pack_frame(s, other, false, S42_CID2_ANALOG, NULL, s->tx2, sizeof s->tx2, &smp,
                                &carries);
    return len > 0 && append(s, n, s->tx2, len);
}

/* What a kind puts on the wire around our answer frame (s->tx, len characters, parsed as *f);
 * returns false when the answer of that kind cannot be built (then nothing is sent). */
static bool assemble(struct sim *s, int idx, enum sim_mix_kind k, const struct s42_frame *f,
                     size_t len, size_t *n)
{
    char noise[SIM_PTY_NOISE_MAX];
    size_t nn;
    *n = 0;
    switch (k) {
    case SIM_MIX_CLEAN:
        return append(s, n, s->tx, len);
    case SIM_MIX_NOISE:
        nn = sim_pty_noise(&s->noise_rng, noise, "~\r");
        return append(s, n, noise, nn) && append(s, n, s->tx, len);
    case SIM_MIX_LATE:
    case SIM_MIX_MASTER:
        return other_traffic(s, idx, k, n) && append(s, n, s->tx, len);
    case SIM_MIX_GARBAGE:
        nn = sim_pty_noise(&s->noise_rng, noise, "~\r");
        return append(s, n, "~", 1) && append(s, n, noise, nn) && append(s, n, "\r", 1);
    case SIM_MIX_CHECKSUM:
        sim_corrupt_checksum(s->tx, len);
        return append(s, n, s->tx, len);
    case SIM_MIX_TRUNCATED:
        return append(s, n, s->tx, len / 2);
    case SIM_MIX_SILENT:
        return true;
    case SIM_MIX_RTN:
    case SIM_MIX_FOREIGN: {
        uint8_t ver = k == SIM_MIX_FOREIGN ? foreign_ver(s->o.variant) : f->ver;
        uint8_t rtn =
            k == SIM_MIX_RTN ? rtn_codes[sim_pty_rand(&s->mix_rng) % sizeof rtn_codes] : f->cid2;
        size_t info_len = k == SIM_MIX_RTN ? 0 : f->info_len;
        int m = s42_build(s->mixtx, sizeof s->mixtx, ver, f->adr, f->cid1, rtn, f->info, info_len);
        if (m < 0)
            return false;
        *n = (size_t)m;
        return true;
    }
    default:
        return false;
    }
}

/* The client sent its next request already: it gave up waiting for this answer. */
static bool client_moved_on(const struct sim *s)
{
    struct pollfd pfd = {.fd = s->pty.master, .events = POLLIN};
    return s->more_input || (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN));
}

int sim_mix_answer(struct sim *s, int idx, int64_t received_ns, size_t rxlen,
                   const volatile int *stop)
{
    const struct s42_variant *v = s->o.variant;
    uint64_t nth = ++s->analog_asks[idx];
    enum sim_mix_kind k = s->o.mix.on ? sim_mix_pick(&s->o.mix, &s->mix_rng) : SIM_MIX_CLEAN;
    struct sample smp, sent;
    bool carries = false;
    struct s42_frame f;
    size_t len = sim_pack_frame(s, &s->packs[idx], false, S42_CID2_ANALOG, NULL, s->tx,
                                sizeof s->tx, &smp, &carries);
    /* what the frame carries, as the client decodes it: the truth the log keeps */
    bool valid = len > 0 && carries && s42_parse(s->tx, len, &f, NULL) == 0 &&
                 s42_decode_analog(v, &f, &sent, NULL) == 0;
    size_t n = 0;
    if (!valid || !assemble(s, idx, k, &f, len, &n)) {
        k = SIM_MIX_SILENT; /* cannot happen with our buffer sizes: say what the bus saw */
        n = 0;
    }
    /* a late answer would be taken for the next one if the client asked this pack again:
     * nothing goes out, and the log says why the client timed out */
    if (client_moved_on(s)) {
        k = SIM_MIX_STALLED;
        n = 0;
    }
    char values[64 + 12 * (SAMPLE_MAX_CELLS + SAMPLE_MAX_TEMPS)];
    if (k <= SIM_MIX_MASTER) {
        sim_remember(s, idx, S42_CID2_ANALOG, &smp);
        sim_log_values(&sent, values, sizeof values);
    } else {
        snprintf(values, sizeof values, "-");
    }
    log_line(s, "%" PRId64 "\t%u\t%" PRIu64 "\t%s\t%s\n", now_wall_ms(),
             (unsigned)s->packs[idx].address, nth, sim_mix_name(k), values);
    if (n == 0)
        return 0;
    return sim_pty_answer(&s->pty, received_ns, rxlen, s->o.turnaround_ms, s->mixtx, n, stop);
}
