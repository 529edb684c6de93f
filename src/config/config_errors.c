/* config_errors: the errors and warnings of one load, each with its "file:line:col" position
 * (all of them in one run, capped, sorted for printing), and the did-you-mean for a misspelt
 * key. */
#include "config_internal.h"

#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* "file:line:col: " (or "file: ") and tag, then the message, into m. */
__attribute__((format(printf, 6, 0))) static void format_at(char *m, size_t cap, const char *name, struct config_mark at,
                      const char *tag, const char *fmt, va_list ap)
{
    int k = at.line > 0 ? snprintf(m, cap, "%s:%d:%d: %s", name, at.line, at.col, tag)
                        : snprintf(m, cap, "%s: %s", name, tag);
    if (k > 0 && (size_t)k < cap)
        vsnprintf(m + k, cap - (size_t)k, fmt, ap);
}

void config_add_err(struct config_ctx *x, struct config_mark at, const char *fmt, ...)
{
    struct config_errors *e = x->errs;
    if (e->n >= CONFIG_MAX_ERRORS)
        return;
    char *m = e->msg[e->n];
    size_t cap = sizeof e->msg[0];
    if (e->n == CONFIG_MAX_ERRORS - 1) {
        snprintf(m, cap, "%s: too many errors, stopping here", x->name);
        x->epos[e->n++] = (struct config_mark){INT_MAX, INT_MAX};
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    format_at(m, cap, x->name, at, "", fmt, ap);
    va_end(ap);
    x->epos[e->n++] = at;
}

void config_add_warn(struct config_ctx *x, struct config *c, struct config_mark at,
                     const char *fmt, ...)
{
    if (c->nwarnings++ >= CONFIG_MAX_WARNINGS)
        return;
    va_list ap;
    va_start(ap, fmt);
    format_at(c->warnings[c->nwarnings - 1], sizeof c->warnings[0], x->name, at, "warning: ",
              fmt, ap);
    va_end(ap);
}

/* Stable, so errors at one position keep the order they were found in. */
void config_sort_errors(struct config_ctx *x)
{
    struct config_errors *e = x->errs;
    for (size_t i = 1; i < e->n; i++) {
        for (size_t j = i; j > 0; j--) {
            struct config_mark a = x->epos[j - 1], b = x->epos[j];
            if (a.line < b.line || (a.line == b.line && a.col <= b.col))
                break;
            char tmp[sizeof e->msg[0]];
            memcpy(tmp, e->msg[j], sizeof tmp);
            memcpy(e->msg[j], e->msg[j - 1], sizeof tmp);
            memcpy(e->msg[j - 1], tmp, sizeof tmp);
            x->epos[j - 1] = b;
            x->epos[j] = a;
        }
    }
}

/* Optimal string alignment distance (Damerau-Levenshtein without repeated edits). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la >= 64 || lb >= 64)
        return SIZE_MAX;
    size_t d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

/* Keeps the closest candidate within distance 2 (and shorter than the word itself). */
void config_consider(const char *word, const char *cand, const char **best, size_t *best_d)
{
    size_t d = edit_distance(word, cand);
    if (d <= 2 && d < strlen(word) && d < *best_d) {
        *best = cand;
        *best_d = d;
    }
}

int config_key_index(const struct config_section *s, const char *name)
{
    for (size_t i = 0; i < s->nkeys; i++) {
        if (strcmp(s->keys[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}
