/* parse: strict whole-string numbers. */
#ifndef BMSFLEET_PARSE_H
#define BMSFLEET_PARSE_H

/* Parses a whole string as an integer (decimal or 0x hex) within [min, max]. 0 or -EINVAL /
 * -ERANGE; *out written only on success. */
int parse_long(const char *s, long min, long max, long *out);
/* Parses a whole string as a finite double within [min, max]. */
int parse_double(const char *s, double min, double max, double *out);

#endif
