/* parse: strict whole-string number parsing, shared by the configuration loader and the
 * command line (base: libc only). */
#include "parse.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

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
