/* jsonw: see jsonw.h. */
#include "jsonw.h"

#include <math.h>
#include <string.h>

void jsonw_init(struct jsonw *w, char *buf, size_t cap)
{
    *w = (struct jsonw){.buf = buf, .cap = cap, .first = 1};
    w->overflow = cap == 0;
    if (cap)
        buf[0] = '\0';
}

int jsonw_end(struct jsonw *w)
{
    if (w->overflow)
        return -1;
    w->buf[w->len] = '\0';
    return (int)w->len;
}

/* n bytes, keeping room for the terminating NUL */
static void put(struct jsonw *w, const char *s, size_t n)
{
    if (w->overflow || w->cap - w->len <= n) {
        w->overflow = 1;
        return;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void putc_(struct jsonw *w, char c)
{
    put(w, &c, 1);
}

/* a comma before every value of an array and every key of an object but the first */
static void sep(struct jsonw *w)
{
    if (!w->first)
        putc_(w, ',');
    w->first = 0;
}

void jsonw_open(struct jsonw *w, char c)
{
    sep(w);
    putc_(w, c);
    w->first = 1;
}

void jsonw_close(struct jsonw *w, char c)
{
    putc_(w, c);
    w->first = 0;
}

/* The length of the run at s that needs no escaping. */
static size_t plain_run(const unsigned char *s)
{
    size_t n = 0;
    while (s[n] >= 0x20 && s[n] != '"' && s[n] != '\\')
        n++;
    return n;
}

static void raw_str(struct jsonw *w, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    putc_(w, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        size_t run = plain_run(p); /* keys, names, ids: copied whole */
        if (run) {
            put(w, (const char *)p, run);
            p += run - 1;
            continue;
        }
        const char *esc = NULL;
        switch (*p) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default: break;
        }
        if (esc) {
            put(w, esc, 2);
        } else if (*p < 0x20) {
            char u[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
            put(w, u, sizeof u);
        } else {
            putc_(w, (char)*p);
        }
    }
    putc_(w, '"');
}

void jsonw_key(struct jsonw *w, const char *key)
{
    sep(w);
    raw_str(w, key);
    putc_(w, ':');
    w->first = 1; /* the value that follows takes no comma */
}

void jsonw_fixed(struct jsonw *w, int64_t v, unsigned dec)
{
    char digits[24], out[32];
    /* the magnitude as an unsigned number: INT64_MIN too */
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t nd = 0, n = 0;
    do {
        digits[nd++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (nd <= dec)
        digits[nd++] = '0'; /* at least one digit before the point */
    size_t drop = 0; /* trailing zeros of the fraction */
    while (drop < dec && digits[drop] == '0')
        drop++;
    sep(w);
    if (v < 0) /* never "-0": v is not 0 */
        out[n++] = '-';
    for (size_t i = nd; i-- > dec;)
        out[n++] = digits[i];
    if (drop < dec) {
        out[n++] = '.';
        for (size_t i = dec; i-- > drop;)
            out[n++] = digits[i];
    }
    put(w, out, n);
}

void jsonw_round(struct jsonw *w, double x, unsigned dec)
{
    if (!isfinite(x) || dec > 9) {
        jsonw_null(w);
        return;
    }
    static const double p10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
    double r = round(x * p10[dec]);
    if (fabs(r) >= 9.0e18) { /* out of what an int64 holds: not a value of ours */
        jsonw_null(w);
        return;
    }
    jsonw_fixed(w, (int64_t)r, dec);
}

void jsonw_int(struct jsonw *w, int64_t v)
{
    jsonw_fixed(w, v, 0);
}

void jsonw_str(struct jsonw *w, const char *s)
{
    sep(w);
    raw_str(w, s ? s : "");
}

void jsonw_bool(struct jsonw *w, int b)
{
    sep(w);
    if (b)
        put(w, "true", 4);
    else
        put(w, "false", 5);
}

void jsonw_null(struct jsonw *w)
{
    sep(w);
    put(w, "null", 4);
}
