/* sim_pty: the wire side both simulators (sim, mbsim) share: a raw pseudo-terminal with an
 * optional symlink to its slave, the monotonic clock, stop-aware sleeping, answers paced at the
 * baud rate like an 8N1 UART, and the noise that garbles a line. The protocol is the caller's. */
#ifndef BMSFLEET_SIM_PTY_H
#define BMSFLEET_SIM_PTY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SIM_PTY_POLL_MS   100 /* the longest a wait goes without looking at *stop */
#define SIM_PTY_NOISE_MAX 12  /* the most bytes sim_pty_noise writes */

struct sim_pty {
    int master, slave; /* -1 when closed; the master is non-blocking */
    int baud;          /* for pacing; also the slave's termios speed when it is a standard one */
    bool unpaced;      /* no wire time: requests and answers take none (the fault soak) */
    char slave_path[128];
    char *link; /* the symlink we made to slave_path, or NULL */
};

/* Opens a pty with a raw slave that we keep open ourselves (so the master never sees EIO/HUP
 * while no client is connected) and, when link is not NULL, points the symlink link at the
 * slave, replacing a symlink there but never a file or a directory (-EEXIST). Returns 0 or
 * -errno; on failure *p is left closed (sim_pty_close on it does nothing). */
int sim_pty_open(struct sim_pty *p, int baud, const char *link);
/* Removes the link if it still points at our slave, and closes the pty. NULL is fine. */
void sim_pty_close(struct sim_pty *p);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t sim_pty_now_ns(void);
/* Sleeps until the monotonic deadline; returns true when *stop was raised meanwhile. */
bool sim_pty_sleep_until(int64_t deadline_ns, const volatile int *stop);
/* How long n bytes take on the wire at p's baud rate (8N1: 10 bits a byte); 0 when unpaced. */
int64_t sim_pty_wire_ns(const struct sim_pty *p, size_t n);

/* Waits up to wait_ms for input on the master and reads it into buf. Returns the byte count,
 * 0 when nothing came (timeout, interruption, or a hangup, after a pause of SIM_PTY_POLL_MS),
 * or -errno. */
ssize_t sim_pty_read(struct sim_pty *p, void *buf, size_t cap, int wait_ms,
                     const volatile int *stop);
/* Writes n bytes paced at the baud rate: the last byte arrives n*10/baud seconds after the first
 * one started (unpaced: at once, in one write when the pty has room). Stops quietly when *stop
 * is raised or when nobody reads the slave for a second (the rest is lost). Returns 0 or -errno. */
int sim_pty_write_paced(struct sim_pty *p, const void *buf, size_t n, const volatile int *stop);
/* Answers a request of request_len bytes that the pty delivered at received_ns: waits until
 * its last byte would have arrived on a real wire, plus delay_ms of turnaround, then writes the
 * answer paced. Returns 0 or -errno. */
int sim_pty_answer(struct sim_pty *p, int64_t received_ns, size_t request_len, int delay_ms,
                   const void *buf, size_t n, const volatile int *stop);

/* The next number of a xorshift64 generator (*state must not be 0). */
uint64_t sim_pty_rand(uint64_t *state);
/* Writes 4..SIM_PTY_NOISE_MAX random bytes into buf, none of them one of the (non-NUL) bytes in
 * avoid (NULL: any byte), and returns how many. */
size_t sim_pty_noise(uint64_t *rng, void *buf, const char *avoid);

#endif
