/* cli_util: the process-wide stop flag set by signals, and the ISO 8601 times of export/top. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
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

/* ---- ISO 8601 times (export --from/--to) ---- */

/* Reads exactly n digits; never looks past the first non-digit (or the terminator). */
static int read_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -EINVAL;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int expect(const char **p, char c)
{
    if (**p != c)
        return -EINVAL;
    (*p)++;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return days[m - 1];
}

/* The zone suffix of a date-time: Z, ±hh, ±hhmm or ±hh:mm. Seconds east of UTC. */
static int parse_zone(const char **p, int *east)
{
    if (**p == 'Z') {
        (*p)++;
        *east = 0;
        return 0;
    }
    int sign = **p == '-' ? -1 : 1, oh, om = 0;
    (*p)++;
    if (read_digits(p, 2, &oh))
        return -EINVAL;
    if (**p == ':') {
        (*p)++;
        if (read_digits(p, 2, &om))
            return -EINVAL;
    } else if (**p >= '0' && **p <= '9' && read_digits(p, 2, &om)) {
        return -EINVAL;
    }
    if (oh > 23 || om > 59)
        return -EINVAL;
    *east = sign * (oh * 3600 + om * 60);
    return 0;
}

/* See cli.h. */
int cli_parse_time(const char *s, int64_t *out)
{
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, east = 0, zoned = 0;
    if (read_digits(&p, 4, &y) || expect(&p, '-') || read_digits(&p, 2, &mo) || expect(&p, '-') ||
        read_digits(&p, 2, &d))
        return -EINVAL;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return -EINVAL;
    if (*p == 'T' || *p == ' ') {
        p++;
        if (read_digits(&p, 2, &h) || expect(&p, ':') || read_digits(&p, 2, &mi))
            return -EINVAL;
        if (*p == ':') {
            p++;
            if (read_digits(&p, 2, &sec))
                return -EINVAL;
        }
        if (h > 23 || mi > 59 || sec > 59)
            return -EINVAL;
        if (*p == 'Z' || *p == '+' || *p == '-') {
            if (parse_zone(&p, &east))
                return -EINVAL;
            zoned = 1;
        }
    }
    if (*p != '\0')
        return -EINVAL;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    tm.tm_isdst = -1; /* let the zone rules decide: a local date-time in summer is summer time */
    time_t t = zoned ? timegm(&tm) : mktime(&tm);
    if (t == (time_t)-1)
        return -EINVAL;
    *out = (int64_t)t - east;
    return 0;
}
