/* cli_util: the process-wide stop flag set by signals. */
#include "cli.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

volatile sig_atomic_t cli_stop;
volatile sig_atomic_t cli_reload;
static volatile sig_atomic_t wakeup_fd = -1;

static void on_signal(int sig)
{
    (void)sig;
    cli_stop = 1;
    if (wakeup_fd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(wakeup_fd, &one, sizeof one); /* async-signal-safe */
        (void)w;
    }
}

/* Not the wakeup descriptor: that one means "stop" to every thread. The main thread sees the
 * flag within its turn. */
static void on_reload(int sig)
{
    (void)sig;
    cli_reload = 1;
}

void cli_install_reload_signal(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_reload;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);
}

void cli_set_wakeup_fd(int fd)
{
    wakeup_fd = fd;
}

void cli_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}
