/* Part sim (src/sim/): the simulated bank the tests, the demo and the benchmarks poll. Service 42
 * packs on a pseudo-terminal with wire pacing and faults (sim.c, sim_pty.c), the packs' model
 * (sim_model.c) and Modbus packs (mbsim.c). It speaks the codec's frames and knows nothing of
 * the daemon: it reaches only codec and base.
 *
 * sim: a bank of simulated packs answering Service 42 on a pseudo-terminal.
 *
 * The thread in sim_run owns the pty (sim_pty: link, pacing, noise), the packs and the frame
 * buffers; other threads may only read the request counter (atomic) and the last answered
 * samples (under a mutex). What is here is the protocol: framing, answers, faults.
 * Two bus troubles are modelled besides the faults: two packs sharing an address (their answers
 * collide on the wire) and another master polling the same packs (chatter). */
#include "sim.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"
#include "sim_pty.h"

/* ---- parsing ---- */

/* An unsigned number at *pp (decimal, or hex with 0x; hex only when base is 16); advances *pp.
 * -EINVAL when there is no number, -ERANGE outside [min, max]. */
static int parse_num(const char **pp, int base, unsigned long min, unsigned long max,
                     unsigned long *out)
{
    const char *p = *pp;
    if (base == 10 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        base = 16, p += 2;
    else if (base == 16 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        p += 2;
    if (!(base == 16 ? isxdigit((unsigned char)*p) : isdigit((unsigned char)*p)))
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long v = strtoul(p, &end, base);
    if (errno == ERANGE || v < min || v > max)
        return -ERANGE;
    *pp = end;
    *out = v;
    return 0;
}

int sim_parse_addresses(const char *s, uint8_t *out, size_t cap)
{
    bool seen[255] = {false};
    const char *p = s;
    if (s == NULL || *s == '\0')
        return -EINVAL;
    for (;;) {
        unsigned long a, b;
        int rc = parse_num(&p, 10, 0, 254, &a);
        if (rc != 0)
            return rc;
        b = a;
        if (*p == '-') {
            p++;
            rc = parse_num(&p, 10, 0, 254, &b);
            if (rc != 0)
                return rc;
            if (b < a)
                return -EINVAL;
        }
        for (unsigned long v = a; v <= b; v++)
            seen[v] = true;
        if (*p == '\0')
            break;
        if (*p++ != ',')
            return -EINVAL;
    }
    size_t n = 0;
    for (size_t v = 0; v < sizeof seen; v++)
        n += seen[v];
    if (n > cap)
        return -ERANGE;
    n = 0;
    for (size_t v = 0; v < sizeof seen; v++)
        if (seen[v])
            out[n++] = (uint8_t)v;
    return (int)n;
}

int sim_fault_parse(const char *s, struct sim_fault *out)
{
    /* the *-alarms kinds are the plain ones limited to the alarm command (0x44): packs whose
     * firmware answers 0x42 only */
    static const struct {
        const char *name;
        enum sim_fault_kind kind;
        uint8_t cid2, rtn;
    } kinds[] = {
        {"silent", SIM_FAULT_SILENT, 0, 0},
        {"checksum", SIM_FAULT_CHECKSUM, 0, 0},
        {"garbage", SIM_FAULT_GARBAGE, 0, 0},
        {"truncated", SIM_FAULT_TRUNCATED, 0, 0},
        {"slow", SIM_FAULT_SLOW, 0, 0},
        {"rtn", SIM_FAULT_RTN, 0, 0},
        {"no-alarms", SIM_FAULT_RTN, S42_CID2_ALARM, RTN_CID2},
        {"ignore-alarms", SIM_FAULT_SILENT, S42_CID2_ALARM, 0},
        {"late-alarms", SIM_FAULT_SLOW, S42_CID2_ALARM, 0},
    };
    struct sim_fault f = {
        .kind = SIM_FAULT_NONE, .every = 1, .slow_ms = DEFAULT_SLOW_MS, .rtn = DEFAULT_FAULT_RTN};
    if (s == NULL)
        return -EINVAL;
    size_t len = strcspn(s, "=:");
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strlen(kinds[i].name) == len && strncmp(s, kinds[i].name, len) == 0) {
            f.kind = kinds[i].kind;
            f.cid2 = kinds[i].cid2;
            if (kinds[i].rtn)
                f.rtn = kinds[i].rtn;
        }
    }
    if (f.kind == SIM_FAULT_NONE)
        return -EINVAL;
    const char *p = s + len;
    unsigned long v;
    if (*p == '=') {
        p++;
        if (f.kind == SIM_FAULT_SLOW && parse_num(&p, 10, 0, 600000, &v) == 0)
            f.slow_ms = (int)v;
        else if (f.kind == SIM_FAULT_RTN && parse_num(&p, 16, 1, 0xFF, &v) == 0)
            f.rtn = (uint8_t)v;
        else
            return -EINVAL;
    }
    if (*p == ':') {
        p++;
        if (parse_num(&p, 10, 0, 254, &v) != 0)
            return -EINVAL;
        f.address = (uint8_t)v;
        if (*p == ':') {
            p++;
            if (parse_num(&p, 10, 1, 1000000, &v) != 0)
                return -EINVAL;
            f.every = (int)v;
        }
    }
    if (*p != '\0')
        return -EINVAL;
    *out = f;
    return 0;
}

/* ---- lifecycle ---- */

void sim_opts_default(struct sim_opts *o)
{
    memset(o, 0, sizeof *o);
    o->variant = s42_variant_find("daren");
    o->addresses[0] = 1;
    o->naddresses = 1;
    o->ncells = 16;
    o->baud = 9600;
    o->turnaround_ms = 20;
    o->seed = 1;
    o->time_scale = 1.0;
}

static int check_opts(const struct sim_opts *o)
{
    if (o->variant == NULL || o->naddresses < 1 || o->naddresses > SIM_MAX_PACKS || o->ncells < 1 ||
        o->ncells > SAMPLE_MAX_CELLS || o->baud < 50 || o->turnaround_ms < 0 ||
        !isfinite(o->time_scale) || o->time_scale < 0 ||
        o->nfaults > sizeof o->faults / sizeof o->faults[0])
        return -EINVAL;
    for (size_t i = 0; i < o->naddresses; i++) {
        if (o->addresses[i] > 254)
            return -EINVAL;
        for (size_t j = 0; j < i; j++)
            if (o->addresses[j] == o->addresses[i])
                return -EINVAL;
    }
    for (size_t i = 0; i < o->nfaults; i++) {
        const struct sim_fault *f = &o->faults[i];
        if (f->kind <= SIM_FAULT_NONE || f->kind > SIM_FAULT_RTN || f->every < 1 ||
            f->slow_ms < 0 || (f->kind == SIM_FAULT_RTN && f->rtn == 0))
            return -EINVAL;
    }
    if (o->relay && !s42_has_relay(o->variant))
        return -EINVAL;
    if (o->ncollide > SIM_MAX_PACKS || o->chatter_ms < 0 || o->master_ms < 0 ||
        o->master_rounds < 0 || (o->master_ms > 0 && o->chatter_ms > 0))
        return -EINVAL;
    /* the fault soak's log tells everything that happened on the bus: nothing else disturbs it */
    unsigned pct = 0;
    for (size_t k = 0; k < SIM_MIX__COUNT; k++)
        pct += o->mix.pct[k];
    if (pct > 100 || ((o->mix.on || o->log_path) &&
                       (o->nfaults || o->ncollide || o->chatter_ms || o->master_ms || o->relay)))
        return -EINVAL;
    for (size_t i = 0; i < o->ncollide; i++) {
        bool listed = false;
        for (size_t j = 0; j < o->naddresses; j++)
            listed = listed || o->addresses[j] == o->collide[i];
        if (!listed)
            return -EINVAL;
    }
    return 0;
}

int sim_new(const struct sim_opts *o, struct sim **out)
{
    if (o == NULL || out == NULL)
        return -EINVAL;
    int rc = check_opts(o);
    if (rc != 0)
        return rc;
    struct sim *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    s->o = *o;
    s->o.link = NULL;
    atomic_init(&s->requests, 0);
    atomic_init(&s->invalid, 0);

    s->o.log_path = NULL;
    rc = sim_pty_open(&s->pty, o->baud, o->link);
    if (rc != 0)
        goto fail;
    s->pty.unpaced = o->unpaced;
    if ((rc = sim_log_open(s, o->log_path)) != 0)
        goto fail;
    for (size_t i = 0; i < o->naddresses; i++) {
        sim_pack_init(&s->packs[i], o->seed, o->addresses[i], o->ncells);
        for (size_t j = 0; j < o->ncollide; j++)
            s->has_twin[i] = s->has_twin[i] || o->collide[j] == o->addresses[i];
        if (s->has_twin[i])
            sim_pack_init(&s->twins[i], o->seed ^ TWIN_SEED_SALT, o->addresses[i], o->ncells);
    }
    s->noise_rng = (o->seed ^ 0x5DEECE66Dull) | 1u;
    s->start_ns = sim_pty_now_ns();
    s->next_chatter_ns = s->start_ns + (int64_t)o->chatter_ms * NS_PER_MS;
    *out = s;
    return 0;
fail:
    sim_free(s);
    return rc;
}

void sim_free(struct sim *s)
{
    if (s == NULL)
        return;
    sim_pty_close(&s->pty);
    if (s->log != NULL)
        fclose(s->log); /* only after a failure: sim_run wrote it out */
    pthread_mutex_destroy(&s->lock);
    free(s);
}

const char *sim_slave_path(const struct sim *s)
{
    return s->pty.slave_path;
}

uint64_t sim_requests(const struct sim *s)
{
    return atomic_load(&s->requests);
}

uint64_t sim_foreign_bytes(const struct sim *s)
{
    return atomic_load(&s->foreign);
}

uint64_t sim_valued_answers(const struct sim *s, uint8_t address, uint8_t cid2)
{
    int i = sim_opts_index(&s->o, address);
    return i < 0 ? 0 : atomic_load(&s->valued[i][cid2 == S42_CID2_ALARM]);
}

int sim_opts_index(const struct sim_opts *o, uint8_t address)
{
    for (size_t i = 0; i < o->naddresses; i++)
        if (o->addresses[i] == address)
            return (int)i;
    return -1;
}

static int pack_index(const struct sim *s, uint8_t address)
{
    return sim_opts_index(&s->o, address);
}

int sim_last_sample(const struct sim *s, uint8_t address, struct sample *out)
{
    int i = pack_index(s, address);
    if (i < 0)
        return -ENOENT;
    int rc = -ENODATA;
    pthread_mutex_lock((pthread_mutex_t *)&s->lock); /* the lock is not part of the value */
    if (s->have_last[i]) {
        *out = s->last[i];
        rc = 0;
    }
    pthread_mutex_unlock((pthread_mutex_t *)&s->lock);
    return rc;
}

/* ---- serving ---- */

void sim_remember(struct sim *s, int idx, uint8_t cid2, const struct sample *smp)
{
    pthread_mutex_lock(&s->lock);
    s->last[idx] = *smp;
    s->have_last[idx] = true;
    pthread_mutex_unlock(&s->lock);
    atomic_fetch_add(&s->valued[idx][cid2 == S42_CID2_ALARM], 1);
}

void sim_pack_answering(struct sim *s, int idx, int64_t received_ns, uint8_t cid2,
                        struct sample *smp)
{
    struct sim_pack *p = &s->packs[idx];
    if (s->o.time_scale > 0)
        sim_pack_step(p, (double)(received_ns - s->start_ns) / (double)NS_PER_S * s->o.time_scale);
    sim_pack_sample(p, smp);
    sim_remember(s, idx, cid2, smp);
}

static bool is_identity_command(const struct s42_variant *v, uint8_t cid2)
{
    uint8_t cmds[16];
    size_t n = s42_identity_commands(v, cmds, sizeof cmds);
    for (size_t i = 0; i < n && i < sizeof cmds; i++)
        if (cmds[i] == cid2)
            return true;
    return false;
}

/* PACE and Pylontech carry the target in INFO too; FF asks every pack (not simulated). */
static bool is_broadcast(const struct s42_variant *v, const struct s42_frame *f)
{
    const char *name = s42_variant_name(v);
    return (strcmp(name, "pace") == 0 || strcmp(name, "pylontech") == 0) && f->info_len >= 1 &&
           f->info[0] == 0xFF;
}

/* The INFO pack p (twin: the second pack at its address) answers cid2 with, into s->info;
 * returns its length and sets *rtn (0 on success). */
static size_t encode_answer(struct sim *s, const struct sim_pack *p, bool twin, uint8_t cid2,
                            const struct sample *smp, uint8_t *rtn, bool *carries_sample)
{
    const struct s42_variant *v = s->o.variant;
    int n;
    *rtn = 0;
    *carries_sample = false;
    if (cid2 == S42_CID2_ANALOG) {
        n = s42_encode_analog(v, smp, s->info, sizeof s->info);
        *carries_sample = true;
    } else if (cid2 == S42_CID2_ALARM && s42_has_command(v, cid2)) {
        n = s42_encode_alarm(v, smp, s->info, sizeof s->info);
        *carries_sample = true;
    } else if (is_identity_command(v, cid2)) {
        struct s42_identity id;
        s42_identity_init(&id);
        id.protocol_version = s42_variant_ver(v);
        snprintf(id.serial, sizeof id.serial, "SIM%" PRIu64 "-%u%s", s->o.seed,
                 (unsigned)p->address, twin ? "b" : "");
        snprintf(id.hardware, sizeof id.hardware, "BMSFLEET-SIM");
        snprintf(id.software, sizeof id.software, "1.0.0");
        snprintf(id.manufacturer, sizeof id.manufacturer, "bmsfleet");
        snprintf(id.product, sizeof id.product, "SIM%dS100A", p->ncells);
        n = s42_encode_identity(v, cid2, p->address, &id, s->info, sizeof s->info);
    } else {
        *rtn = RTN_CID2;
        return 0;
    }
    if (n < 0) { /* the variant cannot carry these values */
        *rtn = RTN_DATA;
        *carries_sample = false;
        return 0;
    }
    return (size_t)n;
}

/* The first matching non-SLOW fault for this answer, and the sum of matching SLOW delays. */
const struct sim_fault *sim_fault_pick(const struct sim_opts *o, uint8_t adr, uint8_t cid2,
                                       uint64_t nth, uint64_t nth_cmd, int *slow_ms)
{
    const struct sim_fault *chosen = NULL;
    *slow_ms = 0;
    for (size_t i = 0; i < o->nfaults; i++) {
        const struct sim_fault *f = &o->faults[i];
        uint64_t n = f->cid2 != 0 ? nth_cmd : nth;
        if ((f->address != 0 && f->address != adr) || (f->cid2 != 0 && f->cid2 != cid2) ||
            n % (uint64_t)f->every != 0)
            continue;
        if (f->kind == SIM_FAULT_SLOW)
            *slow_ms += f->slow_ms;
        else if (chosen == NULL)
            chosen = f;
    }
    return chosen;
}

void sim_corrupt_checksum(char *frame, size_t n)
{
    char hex[5];
    memcpy(hex, frame + n - 5, 4);
    hex[4] = '\0';
    unsigned long v = strtoul(hex, NULL, 16);
    snprintf(hex, sizeof hex, "%04lX", (v + 1) & 0xFFFFu);
    memcpy(frame + n - 5, hex, 4);
}

/* Two packs talking at once: during each character the stronger driver wins, and which one that
 * is changes every few characters. The receiver still sees one frame of the usual shape, but
 * made of both packs' hex, so its checksum fails: the symptom reported when a second pack shares
 * an address (SERVICE42.md §7.5). Identical frames smear too, since two packs never start within
 * the same bit time. Merges b into a (which has room for both) and returns the length. */
static size_t collide_frames(struct sim *s, char *a, size_t na, const char *b, size_t nb)
{
    size_t n = na > nb ? na : nb;
    size_t run = 0;
    bool from_b = false;
    for (size_t i = 0; i < n; i++) {
        if (run == 0) {
            from_b = !from_b;
            run = 1 + (size_t)(sim_pty_rand(&s->noise_rng) % COLLIDE_RUN_MAX);
        }
        run--;
        if (i >= na || (from_b && i < nb))
            a[i] = b[i];
    }
    a[n] = '\0';
    struct s42_frame f;
    if (s42_parse(a, n, &f, NULL) == 0)
        sim_corrupt_checksum(a, n);
    return n;
}

/* Which pack of a shared address is heard: two of every three answers collide; the third is
 * one pack's clean frame, alternately the first and the second. */
enum heard { HEARD_PACK, HEARD_TWIN, HEARD_BOTH };

static enum heard who_is_heard(struct sim *s, int idx)
{
    if (!s->has_twin[idx])
        return HEARD_PACK;
    uint64_t n = ++s->shared_answers[idx];
    if (n % COLLIDE_EVERY != 0)
        return HEARD_BOTH;
    return (n / COLLIDE_EVERY) % 2 ? HEARD_TWIN : HEARD_PACK;
}

size_t sim_pack_frame(struct sim *s, const struct sim_pack *p, bool twin, uint8_t cid2,
                      const struct sim_fault *fault, char *buf, size_t cap, struct sample *smp,
                      bool *carries_sample)
{
    const struct s42_variant *v = s->o.variant;
    enum sim_fault_kind kind = fault != NULL ? fault->kind : SIM_FAULT_NONE;
    uint8_t rtn = 0;
    size_t info_len = 0;
    *carries_sample = false;
    sim_pack_sample(p, smp);
    if (kind == SIM_FAULT_RTN)
        rtn = fault->rtn;
    else
        info_len = encode_answer(s, p, twin, cid2, smp, &rtn, carries_sample);
    int n = s42_build(buf, cap, s42_variant_ver(v), p->address, s42_variant_cid1(v), rtn, s->info,
                      info_len);
    if (n < 0)
        return 0; /* cannot happen with our buffer sizes; a pack that cannot answer is silent */
    size_t len = (size_t)n;
    if (kind == SIM_FAULT_CHECKSUM)
        sim_corrupt_checksum(buf, len);
    else if (kind == SIM_FAULT_TRUNCATED)
        len /= 2;
    return len;
}

/* One complete request frame (ours in s->rx, or the other master's): answer it if it is for
 * one of our packs. */
static int handle_request(struct sim *s, const char *rx, size_t rxlen, const volatile int *stop)
{
    const struct s42_variant *v = s->o.variant;
    struct s42_frame *f = &s->req;
    if (s42_parse(rx, rxlen, f, NULL) != 0) {
        atomic_fetch_add(&s->invalid, 1);
        return 0;
    }
    atomic_fetch_add(&s->requests, 1);
    int64_t received = sim_pty_now_ns();
    /* like real packs on a shared bus: other families and other addresses get no answer */
    if (f->ver != s42_variant_ver(v) || f->cid1 != s42_variant_cid1(v))
        return 0;
    int relay = sim_relay_route(&s->o, f); /* a chain behind its master (sim_master.c) */
    if (relay != 0)
        return relay > 0 ? sim_relay_answer(s, f, received, rxlen, stop) : 0;
    if (is_broadcast(v, f))
        return 0;
    int idx = pack_index(s, f->adr);
    if (idx < 0)
        return 0;

    struct sim_pack *p = &s->packs[idx];
    if (s->o.time_scale > 0) {
        double t = (double)(received - s->start_ns) / (double)NS_PER_S * s->o.time_scale;
        sim_pack_step(p, t);
        if (s->has_twin[idx])
            sim_pack_step(&s->twins[idx], t);
    }
    if ((s->o.mix.on || s->log != NULL) && f->cid2 == S42_CID2_ANALOG)
        return sim_mix_answer(s, idx, received, rxlen, stop); /* the fault soak */
    int slow_ms;
    uint64_t nth = ++s->answers[idx];
    uint64_t nth_cmd = f->cid2 == S42_CID2_ALARM ? ++s->alarm_asks[idx] : nth;
    const struct sim_fault *fault = sim_fault_pick(&s->o, f->adr, f->cid2, nth, nth_cmd, &slow_ms);
    enum sim_fault_kind kind = fault != NULL ? fault->kind : SIM_FAULT_NONE;
    if (kind == SIM_FAULT_SILENT)
        return 0;

    enum heard heard = who_is_heard(s, idx);
    const struct sim_pack *src = heard == HEARD_TWIN ? &s->twins[idx] : p;
    struct sample smp;
    bool carries_sample;
    /* noise never holds a '~' or '\r': the client would resync on it */
    size_t noise = kind == SIM_FAULT_GARBAGE ? sim_pty_noise(&s->noise_rng, s->tx, "~\r") : 0;
    size_t len = sim_pack_frame(s, src, heard == HEARD_TWIN, f->cid2, fault, s->tx + noise,
                                sizeof s->tx - noise, &smp, &carries_sample);
    if (len == 0)
        return 0;
    if (heard == HEARD_BOTH) {
        struct sample other;
        bool other_carries;
        size_t len2 = sim_pack_frame(s, &s->twins[idx], true, f->cid2, fault, s->tx2, sizeof s->tx2,
                                     &other, &other_carries);
        len = collide_frames(s, s->tx + noise, len, s->tx2, len2);
        carries_sample = false; /* nothing readable reached the client */
    }

    if (carries_sample)
        sim_remember(s, idx, f->cid2, &smp);
    return sim_pty_answer(&s->pty, received, rxlen, s->o.turnaround_ms + slow_ms, s->tx,
                          noise + len, stop);
}

/* Another master polls the next of our packs: its request goes on the wire and the pack answers
 * it, as packs answer whoever asks. Skipped while the client does not read (the pty is full). */
static int chatter(struct sim *s, const volatile int *stop)
{
    struct pollfd pfd = {.fd = s->pty.master, .events = POLLOUT};
    if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT))
        return 0;
    uint8_t adr = s->o.addresses[s->chatter_next++ % s->o.naddresses];
    int n = s42_request(s->o.variant, S42_CID2_ANALOG, adr, s->chatter_req, sizeof s->chatter_req);
    if (n < 0)
        return 0;
    int rc = sim_pty_write_paced(&s->pty, s->chatter_req, (size_t)n, stop);
    if (rc != 0)
        return rc;
    return handle_request(s, s->chatter_req, (size_t)n, stop);
}

/* Frames "~ ... \r": resync on every '~', drop bytes outside a frame and overlong frames. */
static int feed(struct sim *s, const char *buf, size_t n, const volatile int *stop)
{
    for (size_t i = 0; i < n; i++) {
        char c = buf[i];
        if (c == '~') {
            if (s->rxlen > 0)
                atomic_fetch_add(&s->invalid, 1);
            s->rx[0] = c;
            s->rxlen = 1;
            continue;
        }
        if (s->rxlen == 0)
            continue;
        if (s->rxlen == sizeof s->rx) {
            atomic_fetch_add(&s->invalid, 1);
            s->rxlen = 0;
            continue;
        }
        s->rx[s->rxlen++] = c;
        if (c == '\r') {
            s->more_input = i + 1 < n;
            int rc = handle_request(s, s->rx, s->rxlen, stop);
            s->rxlen = 0;
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

/* The master's requests are answered as any request is. */
static int answer_master(void *server, const void *req, size_t n, const volatile int *stop)
{
    return handle_request(server, req, n, stop);
}

static int serve(struct sim *s, const volatile int *stop)
{
    char buf[256];
    while (!*stop) {
        int wait_ms = SIM_PTY_POLL_MS;
        int mrc = sim_master_tick(&s->master, &s->o, s->o.variant, &s->pty, answer_master, s,
                                  stop, &wait_ms);
        if (mrc != 0)
            return mrc;
        if (s->o.chatter_ms > 0) {
            if (sim_pty_now_ns() >= s->next_chatter_ns) {
                int rc = chatter(s, stop);
                if (rc != 0)
                    return rc;
                s->next_chatter_ns = sim_pty_now_ns() + (int64_t)s->o.chatter_ms * NS_PER_MS;
            }
            int64_t left = (s->next_chatter_ns - sim_pty_now_ns() + NS_PER_MS - 1) / NS_PER_MS;
            if (left < wait_ms)
                wait_ms = left < 1 ? 1 : (int)left;
        }
        ssize_t got = sim_pty_read(&s->pty, buf, sizeof buf, wait_ms, stop);
        if (got < 0)
            return (int)got;
        atomic_fetch_add(&s->foreign, (uint64_t)got);
        int rc = feed(s, buf, (size_t)got, stop);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int sim_run(struct sim *s, const volatile int *stop)
{
    int rc = serve(s, stop);
    int lrc = sim_log_close(s);
    return rc != 0 ? rc : lrc;
}
