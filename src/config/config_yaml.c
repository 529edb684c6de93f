/* config_yaml: the YAML side of the config loader (libyaml document API). Walks the document
 * against the key tables of config.c, parses each typed scalar, suggests the key that was meant,
 * and keeps every error with its "file:line:col" position, sorted for printing. */
#include "config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <yaml.h>

#include "parse.h"

#define MAX_DEPTH 32 /* nesting of maps and lists; a configuration has 4 */

#define SHOW "%.80s" /* how much of a bad value a message repeats */

static const char *const protocol_names[] = {
    [CONFIG_PROTO_DAREN] = "daren",         [CONFIG_PROTO_PACE] = "pace",
    [CONFIG_PROTO_PYLONTECH] = "pylontech", [CONFIG_PROTO_SEPLOS] = "seplos",
    [CONFIG_PROTO_MODBUS] = "modbus",
};
static const int bauds[] = {1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200};

const char *config_protocol_name(enum config_protocol p)
{
    size_t i = (size_t)p;
    return i < sizeof protocol_names / sizeof protocol_names[0] ? protocol_names[i] : "?";
}

/* ---- errors with positions, did-you-mean ---- */

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

static struct config_mark mark_of(const yaml_node_t *n)
{
    return (struct config_mark){(int)n->start_mark.line + 1, (int)n->start_mark.column + 1};
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

/* ---- scalars ---- */

static int is_null_text(const char *s)
{
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static int is_null(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           is_null_text((const char *)n->data.scalar.value);
}

/* A whole decimal (optionally negative) or 0x hex integer; no blanks, no '+', nothing after. */
static int parse_int(const char *s, long *out)
{
    if (!isdigit((unsigned char)s[0]) && !(s[0] == '-' && isdigit((unsigned char)s[1])))
        return -EINVAL;
    return parse_long(s, LONG_MIN, LONG_MAX, out);
}

static int parse_bool(const char *s, int *out)
{
    static const char *const words[] = {"false", "true", "no", "yes", "off", "on"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (strcasecmp(s, words[i]) == 0) {
            *out = (int)(i % 2);
            return 0;
        }
    }
    return -EINVAL;
}

static int id_chars_ok(const char *s)
{
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
            return 0;
    }
    return 1;
}

/* "not 'abc'", or "not empty". */
#define NOT(s) *(s) ? "not '" : "not empty", *(s) ? (s) : "", *(s) ? "'" : ""

/* Parses one value of key k into its field at base. On error writes the message (without the
 * position) into why and returns -EINVAL; the field is left alone. */
int config_parse_scalar(const struct config_key *k, const char *s, void *base, char *why,
                        size_t cap)
{
    void *dst = (char *)base + k->off;
    size_t len = strlen(s);
    long v = 0;
    switch (k->type) {
    case K_ID:
        if (len == 0 || len >= k->size) {
            snprintf(why, cap, "%s must be 1 to %zu characters long, not %zu", k->name, k->size - 1,
                     len);
            return -EINVAL;
        }
        if (!id_chars_ok(s)) {
            snprintf(why, cap, "%s '" SHOW "' may only contain letters, digits, '_' and '-'",
                     k->name, s);
            return -EINVAL;
        }
        break;
    case K_STR:
    case K_TOPIC:
        if (len == 0 && (k->flags & F_NONEMPTY || k->type == K_TOPIC)) {
            snprintf(why, cap, "%s must not be empty", k->name);
            return -EINVAL;
        }
        if (len >= k->size) {
            snprintf(why, cap, "%s is too long: at most %zu characters", k->name, k->size - 1);
            return -EINVAL;
        }
        if (k->type == K_TOPIC && (strpbrk(s, "+#") || s[0] == '/' || s[len - 1] == '/')) {
            snprintf(why, cap,
                     "%s '" SHOW "' must be an MQTT topic without '+', '#' or a leading or "
                     "trailing '/'",
                     k->name, s);
            return -EINVAL;
        }
        break;
    case K_INT:
        if (parse_int(s, &v) || v < k->min || v > k->max) {
            snprintf(why, cap, "%s must be an integer from %ld to %ld, %s" SHOW "%s", k->name,
                     k->min, k->max, NOT(s));
            return -EINVAL;
        }
        *(int *)dst = (int)v;
        return 0;
    case K_BOOL: {
        int b;
        if (parse_bool(s, &b)) {
            snprintf(why, cap, "%s must be true or false (or yes/no, on/off), %s" SHOW "%s",
                     k->name, NOT(s));
            return -EINVAL;
        }
        *(int *)dst = b;
        return 0;
    }
    case K_BAUD:
        if (parse_int(s, &v) == 0) {
            for (size_t i = 0; i < sizeof bauds / sizeof bauds[0]; i++) {
                if (v == bauds[i]) {
                    *(int *)dst = bauds[i];
                    return 0;
                }
            }
        }
        snprintf(why, cap,
                 "%s must be one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, "
                 "%s" SHOW "%s",
                 k->name, NOT(s));
        return -EINVAL;
    case K_ADDR:
        if (parse_int(s, &v) == 0 && v == 0xFF) {
            snprintf(why, cap,
                     "%s 0xFF is the broadcast address, which every pack answers: use the "
                     "pack's own address (0 to 254)",
                     k->name);
            return -EINVAL;
        }
        if (parse_int(s, &v) || v < 0 || v > 254) {
            snprintf(why, cap, "%s must be from 0 to 254 (0x00 to 0xFE), %s" SHOW "%s", k->name,
                     NOT(s));
            return -EINVAL;
        }
        *(uint8_t *)dst = (uint8_t)v;
        return 0;
    case K_PROTO:
        for (size_t i = 0; i < sizeof protocol_names / sizeof protocol_names[0]; i++) {
            if (strcmp(s, protocol_names[i]) == 0) {
                *(enum config_protocol *)dst = (enum config_protocol)i;
                return 0;
            }
        }
        snprintf(why, cap, "%s must be one of daren, pace, pylontech, seplos, modbus, %s" SHOW "%s",
                 k->name, NOT(s));
        return -EINVAL;
    case K_LEVEL: {
        enum log_level l;
        if (log_parse_level(s, &l)) {
            snprintf(why, cap, "%s must be one of error, warn, info, debug, %s" SHOW "%s", k->name,
                     NOT(s));
            return -EINVAL;
        }
        *(enum log_level *)dst = l;
        return 0;
    }
    case K_SECRET:
    case K_MAP:
    case K_LIST:
        snprintf(why, cap, "%s is not a single value", k->name);
        return -EINVAL;
    }
    memset(dst, 0, k->size);
    memcpy(dst, s, len);
    return 0;
}

/* ---- the walker ---- */

static struct config_marks *marks_for(struct config_ctx *x, const struct config_section *s,
                                      size_t idx)
{
    switch (s->id) {
    case S_PORT:
        return &x->port[idx];
    case S_PACK:
        return &x->pack[x->cur_port][idx];
    case S_BANK:
        return &x->bank[idx];
    default:
        return &x->sec[s->id];
    }
}

static yaml_node_t *node(struct config_ctx *x, int i)
{
    return yaml_document_get_node(x->doc, i);
}

/* Where to point for a value: an empty one has no place of its own, its key has. */
static struct config_mark value_mark(const yaml_node_t *kn, const yaml_node_t *vn)
{
    return is_null(vn) && vn->data.scalar.length == 0 ? mark_of(kn) : mark_of(vn);
}

static const char *kind_name(const yaml_node_t *n)
{
    return n->type == YAML_SEQUENCE_NODE ? "a list" : "a map";
}

static void walk_map(struct config_ctx *x, yaml_node_t *n, const struct config_section *s,
                     void *base, struct config_marks *m);

static void walk_list(struct config_ctx *x, yaml_node_t *n, struct config_mark at,
                      const struct config_key *k, void *base)
{
    const struct config_section *s = k->sub;
    if (n->type != YAML_SEQUENCE_NODE && !is_null(n)) {
        config_add_err(x, at, "'%s' must be a list of %s", k->name, k->name);
        return;
    }
    if (is_null(n) || n->data.sequence.items.start == n->data.sequence.items.top) {
        config_add_err(x, at, "%s", s->empty_msg);
        return;
    }
    size_t *count = (size_t *)((char *)base + s->count_off);
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *item = node(x, *it);
        if (item->type != YAML_MAPPING_NODE) {
            config_add_err(x, mark_of(item), "each %s must be a map of settings, e.g. { %s: ... }",
                           s->what, s->keys[0].name);
            continue;
        }
        if (*count == s->cap) {
            config_add_err(x, mark_of(item), "too many %s%s: at most %zu", k->name, s->where,
                           s->cap);
            return;
        }
        size_t idx = (*count)++;
        void *elem = (char *)base + k->off + idx * s->item_size;
        if (s->id == S_PORT) {
            config_port_init(elem, idx);
            x->cur_port = idx;
        } else {
            memset(elem, 0, s->item_size);
            config_apply_defaults(s, elem);
        }
        walk_map(x, item, s, elem, marks_for(x, s, idx));
    }
}

static void walk_value(struct config_ctx *x, yaml_node_t *kn, yaml_node_t *vn,
                       const struct config_key *k, void *base, struct config_marks *m, size_t i)
{
    if (k->type == K_SECRET) {
        config_add_err(x, mark_of(kn),
                       "mqtt.%s is not read from the YAML file: put it in password_file or the "
                       "MQTT_PASSWORD environment variable",
                       k->name);
        return;
    }
    if (k->type == K_MAP) {
        struct config_marks *sm = marks_for(x, k->sub, 0);
        if (vn->type != YAML_MAPPING_NODE && !is_null(vn)) {
            config_add_err(x, m->val[i], "'%s' must be a map of settings", k->name);
            return;
        }
        walk_map(x, vn, k->sub, (char *)base + k->off, sm);
        m->ok[i] = 1;
        return;
    }
    if (k->type == K_LIST) {
        walk_list(x, vn, m->val[i], k, base);
        m->ok[i] = 1;
        return;
    }
    if (vn->type != YAML_SCALAR_NODE) {
        config_add_err(x, m->val[i], "'%s' must be a single value, not %s", k->name, kind_name(vn));
        return;
    }
    const char *s = is_null(vn) ? "" : (const char *)vn->data.scalar.value;
    if (strlen(s) != vn->data.scalar.length) {
        config_add_err(x, m->val[i], "%s contains a NUL character", k->name);
        return;
    }
    char why[256];
    if (config_parse_scalar(k, s, base, why, sizeof why))
        config_add_err(x, m->val[i], "%s", why);
    else
        m->ok[i] = 1;
}

static void walk_map(struct config_ctx *x, yaml_node_t *n, const struct config_section *s,
                     void *base, struct config_marks *m)
{
    m->at = mark_of(n);
    if (is_null(n))
        return; /* "storage:" with nothing under it: the defaults */
    if (n->type != YAML_MAPPING_NODE) {
        config_add_err(
            x, mark_of(n),
            "the configuration must be a map of sections (node, log, ports, banks, storage, "
            "mqtt)");
        return;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = node(x, p->key), *vn = node(x, p->value);
        if (kn->type != YAML_SCALAR_NODE) {
            config_add_err(x, mark_of(kn), "a key must be a name, not %s", kind_name(kn));
            continue;
        }
        const char *name = (const char *)kn->data.scalar.value;
        if (strlen(name) != kn->data.scalar.length) { /* "ports\0junk" is not "ports" */
            config_add_err(x, mark_of(kn), "a key contains a NUL character");
            continue;
        }
        int i = config_key_index(s, name);
        if (i < 0) {
            const char *best = NULL;
            size_t best_d = SIZE_MAX;
            for (size_t j = 0; j < s->nkeys; j++) {
                if (s->keys[j].type != K_SECRET)
                    config_consider(name, s->keys[j].name, &best, &best_d);
            }
            char hint[96] = "";
            if (best)
                snprintf(hint, sizeof hint, "; did you mean '%s'?", best);
            if (s->what)
                config_add_err(x, mark_of(kn), "unknown key '" SHOW "' in %s%s", name, s->what,
                               hint);
            else
                config_add_err(x, mark_of(kn), "unknown section '" SHOW "'%s", name, hint);
            continue;
        }
        size_t u = (size_t)i;
        if (m->key[u].line) {
            config_add_err(x, mark_of(kn), "'%s' is already set at line %d", name, m->key[u].line);
            continue;
        }
        m->key[u] = mark_of(kn);
        /* an empty value has no place of its own: point at its key */
        m->val[u] = value_mark(kn, vn);
        walk_value(x, kn, vn, &s->keys[u], base, m, u);
    }
}

/* ---- the document ---- */

static void syntax_error(struct config_ctx *x, const yaml_parser_t *p, const char *buf, size_t len)
{
    struct config_mark at = {(int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1};
    if (p->error == YAML_MEMORY_ERROR) {
        config_add_err(x, (struct config_mark){0, 0}, "out of memory while reading the YAML");
        return;
    }
    if (p->error == YAML_READER_ERROR) { /* no mark: count lines up to the offset */
        at = (struct config_mark){1, 1};
        for (size_t i = 0; i < p->problem_offset && i < len; i++) {
            if (buf[i] == '\n')
                at = (struct config_mark){at.line + 1, 1};
            else
                at.col++;
        }
    }
    config_add_err(x, at, "YAML syntax error: %s", p->problem ? p->problem : "cannot parse");
}

/* libyaml's scanner rescans its stack of open collections for every token, so a document of
 * 100 000 '[' takes half a minute to load; a configuration is four levels deep. The events are
 * read once (cheap while the depth is small) and the load refused past MAX_DEPTH. Returns 0,
 * or -EINVAL with the error added (a syntax error is left to the load, which reports it). */
static int check_depth(struct config_ctx *x, const char *buf, size_t len)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        config_add_err(x, (struct config_mark){0, 0}, "out of memory while reading the YAML");
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    int depth = 0, rc = 0, done = 0;
    while (!done && rc == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev))
            break;
        if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT) {
            if (++depth > MAX_DEPTH) {
                config_add_err(x, (struct config_mark){(int)ev.start_mark.line + 1,
                                                       (int)ev.start_mark.column + 1},
                               "nested deeper than %d levels: not a configuration", MAX_DEPTH);
                rc = -EINVAL;
            }
        } else if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) {
            depth--;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    return rc;
}

/* Walks the document into c. Returns -EINVAL when it could not be read at all. */
int config_parse_yaml(struct config_ctx *x, const struct config_section *top, struct config *c,
                      const char *buf, size_t len)
{
    yaml_parser_t p;
    yaml_document_t doc;
    int depth_rc = check_depth(x, buf, len);
    if (depth_rc)
        return depth_rc;
    if (!yaml_parser_initialize(&p)) {
        config_add_err(x, (struct config_mark){0, 0}, "out of memory while reading the YAML");
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&p, &doc)) {
        syntax_error(x, &p, buf, len);
        yaml_parser_delete(&p);
        return -EINVAL;
    }
    x->doc = &doc;
    int rc = 0;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root) {
        walk_map(x, root, top, c, &x->sec[S_ROOT]);
        if (root->type != YAML_MAPPING_NODE && !is_null(root))
            rc = -EINVAL; /* nothing was read: checking the fleet would only add noise */
    }
    yaml_document_delete(&doc);
    if (!yaml_parser_load(&p, &doc)) {
        syntax_error(x, &p, buf, len);
    } else {
        root = yaml_document_get_root_node(&doc);
        if (root)
            config_add_err(x, mark_of(root), "a second YAML document is not read: remove it");
        yaml_document_delete(&doc);
    }
    x->doc = NULL;
    yaml_parser_delete(&p);
    return rc;
}
