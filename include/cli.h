/* cli: the subcommands behind main() and the small helpers they share (strict number parsing,
 * the signal flag). Each command returns the process exit code; only main() exits. */
#ifndef BMSFLEET_CLI_H
#define BMSFLEET_CLI_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/* Exit codes shared by every command. */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAIL = 1,    /* runtime error: port missing, I/O error */
    CLI_EXIT_USAGE = 2,   /* bad command line or configuration */
    CLI_EXIT_NODATA = 3,  /* a pack did not answer, or answered with an invalid frame */
};

/* Set by SIGINT/SIGTERM once cli_install_signals() ran. */
extern volatile sig_atomic_t cli_stop;
void cli_install_signals(void);
/* Set by SIGHUP once cli_install_reload_signal() ran (the daemon only: for the other commands
 * a hangup still ends them). */
extern volatile sig_atomic_t cli_reload;
void cli_install_reload_signal(void);
/* An eventfd the signal handler also writes to, so threads waiting in poll() wake up. */
void cli_set_wakeup_fd(int fd);

/* The options several commands share (cli_options.c). Each returns -1 when it took option c
 * (with its argument arg), 0 when c is not one of its options, else the exit code after a
 * message that starts with "cmd: ". */
struct serial_opts;
/* --baud (b), --timeout (t), --gap (g) and --rs485 (r) into so. */
int cli_take_serial_option(const char *cmd, struct serial_opts *so, int c, const char *arg);
/* An option that takes one whole number from lo to hi into the int at offset off of a
 * command's arguments; msg says what it takes. */
struct cli_int_option {
    int c;
    long lo, hi;
    size_t off;
    const char *msg;
};
int cli_take_int_option(const char *cmd, const struct cli_int_option *tab, size_t n, void *base,
                        int c, const char *arg);

int cmd_decode(int argc, char **argv);
int cmd_read(int argc, char **argv);
int cmd_simulate(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_scan(int argc, char **argv);
/* `scan --listen-only` (cmd_scan_hear.c): hears the bus a->listen_ms, never sends. */
struct scan_opts;
int cmd_scan_hear(const struct scan_opts *a, int json);
int cmd_export(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_health(int argc, char **argv);

#endif
