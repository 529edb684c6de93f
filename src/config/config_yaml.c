/* config_yaml: the YAML side of the config loader (libyaml document API). Walks the document
 * against the key tables of config_keys.c and parses each typed scalar into the model; errors
 * go to config_errors.c with their "file:line:col" positions. */
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

static int is_null_text(const char *s)
{
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static int is_null(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           is_null_text((const char *)n->data.scalar.value);
}

static struct config_mark mark_of(const yaml_node_t *n)
{
    return (struct config_mark){(int)n->start_mark.line + 1, (int)n->start_mark.column + 1};
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
