/* sim: a simulated bank of BMS packs answering Service 42 on a pseudo-terminal.
 *
 * The pack model (sim_model) produces realistic, slowly drifting values reproducible from a
 * seed; the server side (sim) opens a pty, links it where asked, reads requests, and answers as
 * the packs at the configured addresses in one protocol variant, paced at the baud rate, with
 * faults on demand. */
#ifndef BMSFLEET_SIM_H
#define BMSFLEET_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "s42.h"
#include "sample.h"

#define SIM_MAX_PACKS 32
#define SIM_RELAY_NO_ALL 2 /* sim_opts.relay */

/* ---- the pack model (pure: time is passed in) ---- */

struct sim_pack {
    uint8_t address;
    uint64_t rng;        /* xorshift state */
    int ncells;
    double capacity_ah;  /* full */
    double design_ah;
    double soc;          /* 0..1 */
    double current_a;    /* + charge */
    double cell_offset_mv[SAMPLE_MAX_CELLS];
    double temp_c[6];    /* 4 cells, MOS, ambient */
    int cycles;
    double cycle_ah;     /* discharged Ah counted toward the next cycle */
    double t;            /* seconds of model time */
    int balancing;
};

/* Initialises one pack; the same (seed, address) always gives the same pack. */
void sim_pack_init(struct sim_pack *p, uint64_t seed, uint8_t address, int ncells);
/* Advances the model to time t (seconds, monotonic, >= previous t). */
void sim_pack_step(struct sim_pack *p, double t);
/* The pack's current values as a sample (what a perfect decoder would get back). */
void sim_pack_sample(const struct sim_pack *p, struct sample *out);

/* ---- faults ---- */

enum sim_fault_kind {
    SIM_FAULT_NONE = 0,
    SIM_FAULT_SILENT,    /* the pack never answers */
    SIM_FAULT_CHECKSUM,  /* CHKSUM off by one */
    SIM_FAULT_GARBAGE,   /* noise bytes before the frame */
    SIM_FAULT_TRUNCATED, /* the frame stops halfway, no EOI */
    SIM_FAULT_SLOW,      /* answers after slow_ms */
    SIM_FAULT_RTN,       /* answers with an RTN error code */
};

struct sim_fault {
    enum sim_fault_kind kind;
    uint8_t address; /* 0 = every pack */
    int every;       /* apply to every Nth answer of that pack (1 = always) */
    int slow_ms;     /* for SIM_FAULT_SLOW */
    uint8_t rtn;     /* for SIM_FAULT_RTN */
    uint8_t cid2;    /* 0: every command; else only this one (every counts its requests) */
};

/* Parses "KIND[:ADDR[:N]]" with KIND one of silent, checksum, garbage, truncated,
 * slow[=MS], rtn[=HEX], or for the alarm command (0x44) only: no-alarms[=HEX] (RTN, default
 * 04: command not supported), ignore-alarms (no answer), late-alarms[=MS] (answers late).
 * Returns 0 or -EINVAL. */
int sim_fault_parse(const char *s, struct sim_fault *out);
/* Parses an address list "1-4", "1,3,7", "2,5-6" into out (sorted, unique). Returns count or
 * -EINVAL / -ERANGE (addresses 0..254). */
int sim_parse_addresses(const char *s, uint8_t *out, size_t cap);

/* ---- the server ---- */

struct sim_opts {
    const struct s42_variant *variant;
    uint8_t addresses[SIM_MAX_PACKS];
    size_t naddresses;
    int ncells;          /* per pack, default 16 */
    int baud;            /* pacing; default 9600 */
    int turnaround_ms;   /* delay between request end and answer start; default 20 */
    uint64_t seed;
    double time_scale;   /* model seconds per wall second; default 1 */
    const char *link;    /* symlink to the pty slave, optional */
    struct sim_fault faults[8];
    size_t nfaults;
    /* Addresses answered by two packs at once (a DIP switch set twice): of every three answers
     * two are the packs' frames merged on the wire (they fail the checksum), the third is a
     * clean frame from one of them, alternately, so both serials show. Each must be listed in
     * addresses. The second pack has its own model and serial ("SIM<seed>-<addr>b"). */
    uint8_t collide[SIM_MAX_PACKS];
    size_t ncollide;
    /* > 0: another master shares the bus: every chatter_ms it sends a 0x42 request to the next
     * of our packs, which answers it as it would any master. */
    int chatter_ms;
    /* > 0: the simulator is the bus master (sim_master.c): every master_ms it polls each of its
     * packs (0x42, then 0x44 where the variant has it; Modbus: the register map) and they
     * answer, requests and answers both on the line, for a monitor in listen mode on the other
     * end. master_rounds > 0: that many rounds, then silence. Not with chatter_ms. */
    int master_ms;
    int master_rounds;
    /* A daisy chain behind its master pack (sim_master.c; PACE and Pylontech): the pack at the
     * first address answers for the others, a request to it with another pack's address in
     * INFO is that pack's, INFO FF asks 0x42 of every pack in one answer; the other packs do
     * not answer requests of their own (reachable only through the master). SIM_RELAY_NO_ALL:
     * a master that relays but refuses the all-packs request (RTN 04). */
    int relay;
};

void sim_opts_default(struct sim_opts *o);
/* Index of address in o->addresses, or -1. */
int sim_opts_index(const struct sim_opts *o, uint8_t address);
/* The fault that applies to the nth answer (1-based) of the pack at adr, a request with cid2
 * (0: none) that is the pack's nth_cmd one of that command: the first matching non-slow fault,
 * or NULL; *slow_ms gets the sum of the matching slow faults. */
const struct sim_fault *sim_fault_pick(const struct sim_opts *o, uint8_t adr, uint8_t cid2,
                                       uint64_t nth, uint64_t nth_cmd, int *slow_ms);

struct sim;

/* Opens the pty and makes the link. out is written only on success. */
int sim_new(const struct sim_opts *o, struct sim **out);
/* Removes the link and closes the pty. */
void sim_free(struct sim *s);
/* Path of the pty slave (what a client opens). */
const char *sim_slave_path(const struct sim *s);
/* Serves requests until *stop becomes non-zero (checked at least every 100 ms).
 * Returns 0, or -errno on a fatal error. */
int sim_run(struct sim *s, const volatile int *stop);
/* Counters for tests. */
uint64_t sim_requests(const struct sim *s);
/* Bytes the other end of the pty wrote to the line (for a monitor in listen mode: none). */
uint64_t sim_foreign_bytes(const struct sim *s);
/* Answers of the pack at address to cid2 that carried its values (0x42 or 0x44). */
uint64_t sim_valued_answers(const struct sim *s, uint8_t address, uint8_t cid2);
/* The sample the simulator last answered for an address (what the client should decode). */
int sim_last_sample(const struct sim *s, uint8_t address, struct sample *out);

#endif
