/* mbsim: the simulated bank answering Modbus RTU on a pseudo-terminal.
 *
 * Same pack model and options as the Service 42 simulator (sim.h); registers 0..36 come from
 * sim_pack_sample through mbmap_encode, so a client decodes exactly what the model holds, at
 * register resolution. Frames are delimited by 3.5 characters of silence, answers are paced at
 * the baud rate, and the sim_fault kinds apply (see mbsim_new). */
#ifndef BMSFLEET_MBSIM_H
#define BMSFLEET_MBSIM_H

#include <stdint.h>

#include "sample.h"
#include "sim.h"

struct mbsim;

/* Opens the pty (slave kept open by us, so the master never sees a hangup) and makes o->link.
 * From o: addresses (1..247), ncells (1..16), baud, turnaround_ms, seed, time_scale, link,
 * faults; o->variant is ignored. Faults: silent (no answer), checksum (CRC off by one),
 * rtn (a Modbus exception: the code in .rtn when it is one Modbus defines (1..11), else 04
 * "slave device failure", e.g. for sim_fault_parse's Service 42 default 0x91), slow, truncated
 * (half a frame), garbage (noise bytes right before the frame). Collisions and chatter are not
 * simulated for Modbus: -EOPNOTSUPP. Returns 0 or -errno; out is written only on success. */
int mbsim_new(const struct sim_opts *o, struct mbsim **out);
/* Removes the link (if it still points at our pty) and closes the pty. NULL is fine. */
void mbsim_free(struct mbsim *s);
/* Path of the pty slave (what a client opens). */
const char *mbsim_slave_path(const struct mbsim *s);
/* Serves requests until *stop becomes non-zero (checked at least every 100 ms).
 * Returns 0, or -errno on a fatal error. Function 0x03 is answered from registers 0..36;
 * a range outside them gets exception 02, a bad count 03, any other function 01; requests for
 * other slaves (and broadcasts) and frames with a bad CRC get no answer, like real packs. */
int mbsim_run(struct mbsim *s, const volatile int *stop);
/* Requests with a good CRC received (for any slave), and frames dropped as invalid. */
uint64_t mbsim_requests(const struct mbsim *s);
uint64_t mbsim_invalid(const struct mbsim *s);
/* The model's sample behind the last register answer of a slave, at full model resolution
 * (mbmap_encode + mbmap_decode of it is exactly what a client decodes). -ENOENT: not one of
 * our slaves; -ENODATA: not answered yet. Safe from any thread. */
int mbsim_last_sample(const struct mbsim *s, uint8_t slave, struct sample *out);

#endif
