/* jsonw: JSON text written straight into a caller's buffer, for the per-sample paths (MQTT
 * states, the history replay, --stdout): no allocation, and numbers from integers in exact
 * decimal, never through printf's float formatting. The output is byte for byte what cJSON
 * printed for the same values (cJSON_PrintUnformatted: shortest decimal, no exponent in our
 * ranges), which the golden files hold.
 *
 * Errors are sticky: a value that does not fit marks the writer overflowed, later calls do
 * nothing, and jsonw_end() says so. */
#ifndef BMSFLEET_JSONW_H
#define BMSFLEET_JSONW_H

#include <stddef.h>
#include <stdint.h>

struct jsonw {
    char *buf;
    size_t cap, len;
    int overflow;
    int first; /* nothing yet in the innermost object or array: no comma before the next */
};

void jsonw_init(struct jsonw *w, char *buf, size_t cap);
/* The text's length (NUL-terminated in buf), or -1 when it did not fit. */
int jsonw_end(struct jsonw *w);

void jsonw_open(struct jsonw *w, char c);  /* '{' or '[' (after a key, or as a value) */
void jsonw_close(struct jsonw *w, char c); /* '}' or ']' */
void jsonw_key(struct jsonw *w, const char *key);

/* v / 10^dec in exact decimal, trailing zeros dropped ("53.02", "-0.5", "3", "0"). */
void jsonw_fixed(struct jsonw *w, int64_t v, unsigned dec);
/* x rounded to dec decimals (half away from zero, as round()); NaN and infinities are null. */
void jsonw_round(struct jsonw *w, double x, unsigned dec);
void jsonw_int(struct jsonw *w, int64_t v);
void jsonw_str(struct jsonw *w, const char *s); /* escaped as cJSON does */
void jsonw_bool(struct jsonw *w, int b);
void jsonw_null(struct jsonw *w);

#endif
