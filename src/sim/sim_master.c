/* sim_master: the simulator as the bus master (issue 17): it polls its own packs, every request
 * and every answer on the line, the way an inverter or the master pack of a Seplos v3 chain
 * does; a monitor in listen mode on the other end of the pty hears it all and must write
 * nothing (the serving loops count whatever comes from that end: sim_foreign_bytes). A round
 * asks each pack in turn, SIM_MASTER_GAP_MS apart (Service 42: 0x42, then 0x44 where the
 * variant has it; Modbus: the whole register map), and starts every master_ms.
 *
 * It is also the master pack of a daisy chain (o->relay, PACE and Pylontech): a request to the
 * first address with another pack's address in INFO is answered for that pack (the header
 * still the master's), INFO FF with every pack's 0x42 values in one answer (a count, then a
 * block per pack, in address order); the packs behind it answer nobody directly. Faults do
 * not apply to the relayed answers. */
#include "sim_internal.h"

#include <errno.h>
#include <string.h>

#include "mbmap.h"
#include "s42.h"

#define NS_PER_MS 1000000LL

/* The master's next request into buf; its length. */
static size_t next_request(struct sim_master *m, const struct sim_opts *o,
                           const struct s42_variant *v, char *buf, size_t cap)
{
    uint8_t adr = o->addresses[m->idx];
    if (v == NULL) {
        uint8_t *q = (uint8_t *)buf;
        q[0] = adr;
        q[1] = MBMAP_FC_READ;
        q[2] = q[3] = q[4] = 0;
        q[5] = MBMAP_NREGS;
        uint16_t crc = mbmap_crc16(q, 6);
        q[6] = (uint8_t)(crc & 0xFF);
        q[7] = (uint8_t)(crc >> 8);
        return 8;
    }
    int n = s42_request(v, m->step ? S42_CID2_ALARM : S42_CID2_ANALOG, adr, buf, cap);
    return n > 0 ? (size_t)n : 0;
}

/* Past the exchange just made: the next command, pack or round. */
static void advance(struct sim_master *m, const struct sim_opts *o, const struct s42_variant *v,
                    int64_t now)
{
    if (v != NULL && m->step == 0 && s42_has_command(v, S42_CID2_ALARM) == 2) {
        m->step = 1;
        m->next_ns = now + SIM_MASTER_GAP_MS * NS_PER_MS;
        return;
    }
    m->step = 0;
    if (++m->idx < o->naddresses) {
        m->next_ns = now + SIM_MASTER_GAP_MS * NS_PER_MS;
        return;
    }
    m->idx = 0;
    m->rounds++;
    m->round_ns += (int64_t)o->master_ms * NS_PER_MS;
    m->next_ns = m->round_ns > now ? m->round_ns : now; /* never catch up missed rounds */
    m->round_ns = m->next_ns;
}

int sim_master_tick(struct sim_master *m, const struct sim_opts *o, const struct s42_variant *v,
                    struct sim_pty *pty, sim_answer_fn answer, void *server,
                    const volatile int *stop, int *wait_ms)
{
    if (o->master_ms <= 0 || (o->master_rounds > 0 && m->rounds >= (uint64_t)o->master_rounds))
        return 0;
    int64_t now = sim_pty_now_ns();
    if (m->next_ns == 0)
        m->round_ns = m->next_ns = now;
    if (now >= m->next_ns) {
        char req[64];
        size_t n = next_request(m, o, v, req, sizeof req);
        int rc = n > 0 ? sim_pty_write_paced(pty, req, n, stop) : 0;
        if (rc == 0 && n > 0)
            rc = answer(server, req, n, stop);
        if (rc != 0)
            return rc;
        now = sim_pty_now_ns();
        advance(m, o, v, now);
    }
    int64_t left = (m->next_ns - now + NS_PER_MS - 1) / NS_PER_MS;
    if (left < *wait_ms)
        *wait_ms = left < 1 ? 1 : (int)left;
    return 0;
}

/* ---- the master pack of a chain ---- */

#define RTN_CID2 0x04 /* command not supported: 0x44 for every pack at once */

int sim_relay_route(const struct sim_opts *o, const struct s42_frame *f)
{
    if (!o->relay)
        return 0;
    if (f->adr != o->addresses[0])
        return sim_opts_index(o, f->adr) >= 0 ? -1 : 0;
    if (f->info_len < 1 || f->info[0] == f->adr ||
        (f->cid2 != S42_CID2_ANALOG && f->cid2 != S42_CID2_ALARM))
        return 0;
    return 1;
}

int sim_relay_answer(struct sim *s, const struct s42_frame *f, int64_t received_ns,
                     size_t rxlen, const volatile int *stop)
{
    const struct sim_opts *o = &s->o;
    const struct s42_variant *v = o->variant;
    struct sample smps[SIM_MAX_PACKS];
    uint8_t info[S42_MAX_INFO];
    char frame[S42_MAX_FRAME + 2];
    uint8_t rtn = 0;
    int len = 0;
    if (f->info[0] == 0xFF && f->cid2 == S42_CID2_ANALOG && o->relay != SIM_RELAY_NO_ALL) {
        for (size_t i = 0; i < o->naddresses; i++)
            sim_pack_answering(s, (int)i, received_ns, f->cid2, &smps[i]);
        len = s42_encode_analog_all(v, smps, o->naddresses, info, sizeof info);
    } else if (f->info[0] == 0xFF) {
        rtn = RTN_CID2;
    } else {
        int idx = sim_opts_index(o, f->info[0]);
        if (idx < 0)
            return 0; /* no such pack behind the master */
        sim_pack_answering(s, idx, received_ns, f->cid2, &smps[0]);
        len = f->cid2 == S42_CID2_ANALOG ? s42_encode_analog(v, &smps[0], info, sizeof info)
                                         : s42_encode_alarm(v, &smps[0], info, sizeof info);
    }
    if (len < 0)
        return 0; /* cannot happen with these buffers; a master that cannot answer is silent */
    int n = s42_build(frame, sizeof frame, s42_variant_ver(v), f->adr, s42_variant_cid1(v), rtn,
                      info, (size_t)len);
    if (n < 0)
        return 0;
    return sim_pty_answer(&s->pty, received_ns, rxlen, o->turnaround_ms, frame, (size_t)n,
                          stop);
}
