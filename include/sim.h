/* sim: a simulated bank of BMS packs answering Service 42 on a pseudo-terminal.
 *
 * The pack model (sim_model) produces realistic, slowly drifting values reproducible from a
 * seed; the server side (sim) opens a pty, links it where asked, reads requests, and answers as
 * the packs at the configured addresses in one protocol variant, paced at the baud rate, with
 * faults on demand. */
#ifndef BMSFLEET_SIM_H
#define BMSFLEET_SIM_H

#include <stdbool.h>
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

/* ---- the fault soak: a seeded mix of faults, each unambiguous for the client ----
 * Every analog (0x42) request gets one kind, drawn with its probability; the other commands
 * (0x44, identity) are answered cleanly. After the first four kinds a valid answer reaches the
 * client within its timeout, so it must keep exactly that answer; each of the others leaves no
 * valid answer, and a client that checks frames as SERVICE42.md says can tell which fault it
 * met (the comment of each kind: the failure it sees). */
enum sim_mix_kind {
    SIM_MIX_CLEAN = 0, /* the answer */
    SIM_MIX_NOISE,     /* 4..12 noise bytes (never '~' or CR), then the answer */
    SIM_MIX_LATE,      /* a valid answer of another address (a late one), then the answer */
    SIM_MIX_MASTER,    /* another master asks another address, that pack answers, then ours */
    SIM_MIX_GARBAGE,   /* '~', 4..12 noise bytes, CR: shorter than any frame (malformed) */
    SIM_MIX_CHECKSUM,  /* the answer with CHKSUM off by one (checksum) */
    SIM_MIX_TRUNCATED, /* the first half of the answer, then nothing (timeout) */
    SIM_MIX_SILENT,    /* nothing (timeout) */
    SIM_MIX_RTN,       /* an RTN error code: each one the protocol names, or 0x80 (refused) */
    SIM_MIX_FOREIGN,   /* the answer with another protocol family's VER (foreign) */
    /* not drawn: the client asked something else before the answer went out, so it had timed
     * out (the simulator was descheduled that long); nothing is sent, the log says so */
    SIM_MIX_STALLED,
    SIM_MIX__COUNT
};

struct sim_mix {
    bool on;
    unsigned pct[SIM_MIX__COUNT]; /* percent of the analog answers; CLEAN gets the rest */
};

/* Parses "KIND=PCT,KIND=PCT,..." (kinds by sim_mix_name but clean, whole percents, at most 100
 * in all) or "soak" (every kind: 76 % of the answers, see sim_mix.c). 0 or -EINVAL. */
int sim_mix_parse(const char *s, struct sim_mix *out);
/* "clean", "noise", "late", "master", "garbage", "checksum", "truncated", "silent", "rtn",
 * "foreign", "stalled"; NULL past the end. */
const char *sim_mix_name(enum sim_mix_kind k);
/* The kind of that name, or -1. */
int sim_mix_kind_of(const char *name, size_t len);
/* Draws a kind from *rng (xorshift64 state, never 0). */
enum sim_mix_kind sim_mix_pick(const struct sim_mix *m, uint64_t *rng);
/* The analog values of a sample as the log writes them: voltage mV, current mA, SOC and SOH
 * 0.01 %, remaining, full and design mAh, cycles, then the cells (mV) and the temperatures
 * (0.1 degC) as comma lists; tab-separated, '-' for an absent value. The fault soak formats
 * the stored rows with it to compare. Returns the length (or the length it would have had,
 * snprintf-style). */
int sim_log_values(const struct sample *s, char *buf, size_t cap);

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
    /* No wire pacing: requests and answers take no wire time (the fault soak). */
    bool unpaced;
    /* The seeded fault mix for analog answers (the RNG from seed); needs no faults, collide
     * or chatter: the mix alone disturbs the bus, so the log tells all. */
    struct sim_mix mix;
    /* Where to log every analog request, one TSV line each: wall ms of the answer, address,
     * the pack's analog request count, kind (sim_mix_name), and the values (sim_log_values) of
     * the valid answer the client must keep, decoded from the frame sent ('-' when no valid
     * answer reached it). Same restriction. NULL: none. */
    const char *log_path;
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
/* Serves requests until *stop becomes non-zero (checked at least every 100 ms), then writes
 * out the log. Returns 0, or -errno on a fatal error (a log that cannot be written is one). */
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
