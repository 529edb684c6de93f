/* parse: strict whole-string numbers and ISO 8601 times, shared by the configuration loader,
 * the command line and the HTTP server (base: libc only). */
#include "parse.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int parse_long(const char *s, long min, long max, long *out)
{
    if (s == NULL || *s == '\0')
        return -EINVAL;
    char *end;
    errno = 0;
    int base = (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) ? 16 : 10;
    long v = strtol(s, &end, base);
    if (*end != '\0' || end == s || (base == 16 && end == s + 2))
        return -EINVAL;
    if (errno == ERANGE || v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

int parse_double(const char *s, double min, double max, double *out)
{
    if (s == NULL || *s == '\0')
        return -EINVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end != '\0' || end == s)
        return -EINVAL;
    if (errno == ERANGE || !isfinite(v) || v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

/* ---- ISO 8601 times (export --from/--to, the HTTP server's /api/history) ---- */

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

int parse_time(const char *s, int64_t *out)
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
