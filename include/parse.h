/* parse: strict whole-string numbers. */
#ifndef BMSFLEET_PARSE_H
#define BMSFLEET_PARSE_H

#include <stdint.h>

/* Parses a whole string as an integer (decimal or 0x hex) within [min, max]. 0 or -EINVAL /
 * -ERANGE; *out written only on success. */
int parse_long(const char *s, long min, long max, long *out);
/* Parses a whole string as a finite double within [min, max]. */
int parse_double(const char *s, double min, double max, double *out);

/* An ISO 8601 date YYYY-MM-DD, optionally followed by T or a space and hh:mm[:ss] and a zone
 * (Z, ±hh, ±hhmm, ±hh:mm). Without a zone the time is local (mktime: the rules of TZ apply).
 * UTC epoch seconds into *out; 0 or -EINVAL. */
int parse_time(const char *s, int64_t *out);

#endif
