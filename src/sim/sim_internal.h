/* sim_internal: what the simulator's files share beyond sim.h: the simulator as the bus master
 * (sim_master.c, issue 17), driven from the serving loops of sim.c and mbsim.c through one
 * call per turn, with the answering of a request left to them. */
#ifndef BMSFLEET_SIM_INTERNAL_H
#define BMSFLEET_SIM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "sim.h"
#include "sim_pty.h"

#define SIM_MASTER_GAP_MS 20 /* between one exchange of the master and its next request */

struct sim_master {
    int64_t round_ns; /* when the current round began */
    int64_t next_ns;  /* when the next request goes out; 0: not started */
    size_t idx;       /* the pack asked next */
    int step;         /* Service 42: 0 asks 0x42, 1 asks 0x44 */
    uint64_t rounds;  /* rounds completed */
};

/* How a serving loop answers a request the master put on the line, as its packs answer any. */
typedef int (*sim_answer_fn)(void *server, const void *req, size_t n, const volatile int *stop);

/* One turn of the master (o->master_ms > 0): when due, its next request onto the line (paced),
 * answered through answer(server, ...). v: the Service 42 variant, NULL for Modbus (a read of
 * the whole register map). Shortens *wait_ms to the next due time. Returns 0 or -errno. */
int sim_master_tick(struct sim_master *m, const struct sim_opts *o, const struct s42_variant *v,
                    struct sim_pty *pty, sim_answer_fn answer, void *server,
                    const volatile int *stop, int *wait_ms);

/* ---- the chain's master pack (o->relay) ---- */

struct sim;
struct s42_frame;

/* 1 when the request f is for the master to relay (or answer for all), 0 when it is an
 * ordinary one; -1 when a pack behind the master was asked directly (no answer). */
int sim_relay_route(const struct sim_opts *o, const struct s42_frame *f);
/* The master's answer to the relayed request f, received at received_ns. */
int sim_relay_answer(struct sim *s, const struct s42_frame *f, int64_t received_ns,
                     size_t rxlen, const volatile int *stop);

/* sim.c, for the relay: the pack at idx brought to the time of a request received at
 * received_ns, its values into *smp, noted as answered to cid2 (last sample, counters). */
void sim_pack_answering(struct sim *s, int idx, int64_t received_ns, uint8_t cid2,
                        struct sample *smp);
struct sim_pty *sim_pty_of(struct sim *s);
const struct sim_opts *sim_opts_of(const struct sim *s);

#endif
