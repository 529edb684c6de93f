/* sim_internal: the Service 42 simulator's state, shared by its files: sim.c (framing, answers,
 * the on-demand faults), sim_mix.c (the fault soak's seeded mix and its log) and sim_master.c
 * (the simulator as the bus master, issue 17, driven from the serving loops of sim.c and mbsim.c
 * through one call per turn, with the answering of a request left to them; and the chain's
 * master pack). One thread, the one in sim_run, owns all of it but the counters and the last
 * samples (see sim.c). */
#ifndef BMSFLEET_SIM_INTERNAL_H
#define BMSFLEET_SIM_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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

#define RX_FRAME_MAX      512 /* a request longer than this is garbage */
#define DEFAULT_SLOW_MS   2000
#define DEFAULT_FAULT_RTN 0x91 /* battery/communication error, as a real Daren sends */
#define RTN_CID2          0x04
#define RTN_DATA          0x06
#define COLLIDE_EVERY     3 /* of every 3 answers of a shared address, 2 collide */
#define COLLIDE_RUN_MAX   6 /* characters one of two colliding drivers wins in a row, at most */
#define TWIN_SEED_SALT    0xC0111DE5ull /* the second pack at a shared address: another seed */
#define NS_PER_MS         1000000LL
#define NS_PER_S          1000000000LL
/* what the fault soak's other master sends: its request, then the other pack's answer */
#define MIX_TX_MAX (64 + 2 * (S42_MAX_FRAME + 1) + SIM_PTY_NOISE_MAX)

struct sim {
    struct sim_opts o; /* o.link and o.log_path are not kept: pty.link and log are ours */
    struct sim_pty pty;
    int64_t start_ns;
    uint64_t noise_rng;
    struct sim_pack packs[SIM_MAX_PACKS];
    uint64_t answers[SIM_MAX_PACKS];      /* per pack, for sim_fault.every */
    uint64_t alarm_asks[SIM_MAX_PACKS];   /* per pack, 0x44 requests: for the *-alarms faults */
    struct sim_pack twins[SIM_MAX_PACKS]; /* the second pack at a shared address */
    bool has_twin[SIM_MAX_PACKS];
    uint64_t shared_answers[SIM_MAX_PACKS]; /* per shared address, for the collision pattern */
    int64_t next_chatter_ns;
    size_t chatter_next; /* index of the pack the other master polls next */
    char chatter_req[64];
    char rx[RX_FRAME_MAX];
    size_t rxlen;    /* 0 while waiting for '~' */
    bool more_input; /* feed: bytes came after the request being answered */
    struct s42_frame req;
    uint8_t info[S42_MAX_INFO];
    char tx[SIM_PTY_NOISE_MAX + S42_MAX_FRAME + 1]; /* garbage noise, then the frame */
    char tx2[S42_MAX_FRAME + 1]; /* the second pack's frame, before the collision */
    _Atomic uint64_t requests;
    _Atomic uint64_t invalid;
    struct sim_master master;                  /* o.master_ms: the simulator polls its packs */
    _Atomic uint64_t foreign;                  /* bytes read from the pty */
    _Atomic uint64_t valued[SIM_MAX_PACKS][2]; /* answers with values: 0x42, 0x44 */
    pthread_mutex_t lock; /* guards last and have_last */
    struct sample last[SIM_MAX_PACKS];
    bool have_last[SIM_MAX_PACKS];
    /* the fault soak (sim_mix.c) */
    uint64_t mix_rng;
    uint64_t analog_asks[SIM_MAX_PACKS]; /* per pack, 0x42 requests: the log's count */
    struct sim_pack ghost;               /* "another address" when we simulate only one */
    FILE *log;
    int log_err; /* the first write that failed (-errno), or 0 */
    char mixtx[MIX_TX_MAX];
};

/* Pack p's complete answer frame to cid2 (with the fault applied, NULL: none) into buf; returns
 * its length, or 0 when it cannot be built. *smp gets the pack's values, *carries_sample says
 * if they are in the frame. (sim.c) */
size_t sim_pack_frame(struct sim *s, const struct sim_pack *p, bool twin, uint8_t cid2,
                      const struct sim_fault *fault, char *buf, size_t cap, struct sample *smp,
                      bool *carries_sample);
/* Adds one to the CHKSUM of the frame of n characters in place. (sim.c) */
void sim_corrupt_checksum(char *frame, size_t n);
/* Records smp as the last sample answered by pack idx to cid2 (sim_last_sample, the counters).
 * (sim.c) */
void sim_remember(struct sim *s, int idx, uint8_t cid2, const struct sample *smp);

/* Prepares the fault soak: the other address, and the log (path NULL: none) with its header.
 * 0 or -errno. (sim_mix.c) */
int sim_log_open(struct sim *s, const char *path);
/* Writes out and closes the log. 0 or -errno (a write failed: the log is not the truth). */
int sim_log_close(struct sim *s);
/* Answers the client's analog request to pack idx, received at received_ns (rxlen bytes), under
 * the mix, and logs it. 0 or -errno. (sim_mix.c) */
int sim_mix_answer(struct sim *s, int idx, int64_t received_ns, size_t rxlen,
                   const volatile int *stop);

/* ---- the chain's master pack (o->relay) ---- */


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

#endif
