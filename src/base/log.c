/* Part base (src/base/): what every other part may use and that uses nothing: levelled
 * logging (log.c), strict number parsing (parse.c), the two clocks (now.h) and a thread's
 * liveness record (progress.h).
 *
 * log: levelled logging to stderr, one line per call, safe from any thread (one write(2) per
 * line, so lines from different threads never interleave). */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level = LOG_INFO;

void log_set_level(enum log_level lvl) { atomic_store(&log_level, (int)lvl); }

enum log_level log_get_level(void) { return (enum log_level)atomic_load(&log_level); }

static const char *const level_names[] = {"error", "warn", "info", "debug"};

const char *log_level_name(enum log_level lvl)
{
    return (unsigned)lvl < sizeof level_names / sizeof level_names[0] ? level_names[lvl] : "?";
}

int log_parse_level(const char *s, enum log_level *out)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = LOG_WARN;
        return 0;
    }
    return -EINVAL;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    if ((int)lvl > atomic_load(&log_level))
        return;
    static const int syslog_prio[] = {3, 4, 6, 7};
    char line[1024];
    size_t n = 0;
    int w;
    if (getenv("JOURNAL_STREAM") != NULL) {
        w = snprintf(line, sizeof line, "<%d>", syslog_prio[lvl]);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        w = snprintf(line, sizeof line, "%04d-%02d-%02d %02d:%02d:%02d.%03ld %-5s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_names[lvl]);
    }
    if (w > 0)
        n = (size_t)w < sizeof line ? (size_t)w : sizeof line - 1;
    va_list ap;
    va_start(ap, fmt);
    w = vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    if (w > 0)
        n += (size_t)w < sizeof line - n ? (size_t)w : sizeof line - n - 1;
    if (n >= sizeof line - 1)
        n = sizeof line - 2;
    line[n++] = '\n';
    ssize_t r = write(STDERR_FILENO, line, n);
    (void)r;
}
