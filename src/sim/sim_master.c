/* sim_master: the simulator as the bus master (issue 17): it polls its own packs, every request
 * and every answer on the line, the way an inverter or the master pack of a Seplos v3 chain
 * does; a monitor in listen mode on the other end of the pty hears it all and must write
 * nothing (the serving loops count whatever comes from that end: sim_foreign_bytes). A round
 * asks each pack in turn, SIM_MASTER_GAP_MS apart (Service 42: 0x42, then 0x44 where the
 * variant has it; Modbus: the whole register map), and starts every master_ms. */
#include "sim_internal.h"

#include <errno.h>
#include <string.h>

#include "mbmap.h"

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
