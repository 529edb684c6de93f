/* config: the fleet model read from a YAML file (libyaml document API).
 *
 * One declarative key table per section gives each key's name, type, range, default and place
 * in the model; one walker applies the tables to the document, then a pass over the whole fleet
 * checks what a single key cannot (duplicates, banks, limits) and fills derived defaults. Every
 * error is "file:line:col: message", all of them in one run, sorted by position. */
#include "config.h"
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#define MAX_KEYS 16            /* per section */
#define MAX_FILE (1024 * 1024) /* a configuration is a few kB */
#define SHOW     "%.80s"       /* how much of a bad value a message repeats */

enum key_type {
    K_ID,     /* [A-Za-z0-9_-], 1..63 chars: becomes an MQTT topic level and HA unique id */
    K_STR,    /* any text that fits */
    K_TOPIC,  /* MQTT topic prefix: no wildcards, no leading or trailing '/' */
    K_INT,    /* whole integer, decimal or 0x hex, in [min, max] */
    K_BOOL,   /* true/false, yes/no, on/off */
    K_BAUD,   /* one of the standard rates */
    K_ADDR,   /* a pack address 0..254 */
    K_PROTO,  /* enum config_protocol */
    K_LEVEL,  /* enum log_level */
    K_SECRET, /* rejected: secrets never come from the YAML file */
    K_MAP,    /* nested section `sub`, stored at off of the same parent */
    K_LIST,   /* list of `sub` items; the array is at off, the count at sub->count_off */
};

enum { F_NONEMPTY = 1 };

/* Sections, also the index of their marks in struct ctx. */
enum sec_id {
    S_ROOT,
    S_NODE,
    S_LOG,
    S_PORT,
    S_PACK,
    S_BANK,
    S_STORAGE,
    S_RETENTION,
    S_MQTT,
    S_TLS,
    S__COUNT
};

struct section;

struct key {
    const char *name;
    enum key_type type;
    unsigned flags;
    size_t off, size; /* the field in the section's struct */
    long min, max;    /* K_INT */
    const char *def;  /* default as YAML text; NULL: none, or derived in finish() */
    const struct section *sub;
};

struct section {
    enum sec_id id;
    const char *what; /* in messages: "port", "mqtt.tls"; NULL for the top level */
    const struct key *keys;
    size_t nkeys;
    /* list items only */
    size_t item_size, count_off, cap;
    const char *where;     /* completes "too many packs": "" or " on one port" */
    const char *empty_msg; /* for an empty list */
};

#define FIELD(T, f) .off = offsetof(T, f), .size = sizeof(((T *)0)->f)
#define KEYS(k)     .keys = (k), .nkeys = sizeof(k) / sizeof((k)[0])

/* ---- the key tables ---- */

static const struct key pack_keys[] = {
    {"address", K_ADDR, FIELD(struct config_pack, address)},
    {"id", K_ID, FIELD(struct config_pack, id)},      /* "<port name>-<address>" */
    {"name", K_STR, FIELD(struct config_pack, name)}, /* the id */
    {"bank", K_ID, FIELD(struct config_pack, bank)},  /* the first bank, or "bank" */
    {"serial", K_STR, FIELD(struct config_pack, serial), .def = ""},
};
static const struct section pack_section = {.id = S_PACK,
                                            .what = "pack",
                                            KEYS(pack_keys),
                                            .item_size = sizeof(struct config_pack),
                                            .count_off = offsetof(struct config_port, npacks),
                                            .cap = CONFIG_MAX_PACKS_PER_PORT,
                                            .where = " on one port",
                                            .empty_msg =
                                                "'packs' is empty: a port needs at least one pack"};

static const struct key port_keys[] = {
    {"name", K_ID, FIELD(struct config_port, name)}, /* "port<N>" */
    {"device", K_STR, FIELD(struct config_port, device), .flags = F_NONEMPTY},
    {"protocol", K_PROTO, FIELD(struct config_port, protocol), .def = "daren"},
    {"baud", K_BAUD, FIELD(struct config_port, baud), .def = "9600"},
    {"timeout_ms", K_INT, FIELD(struct config_port, timeout_ms), 10, 60000, "1000"},
    {"gap_ms", K_INT, FIELD(struct config_port, gap_ms), 0, 10000, "50"},
    {"interval_s", K_INT, FIELD(struct config_port, interval_s), 1, 86400, "30"},
    {"rs485", K_BOOL, FIELD(struct config_port, rs485), .def = "false"},
    {"rs485_delay_before_us", K_INT, FIELD(struct config_port, rs485_delay_before_us), 0, 100000,
     "0"},
    {"rs485_delay_after_us", K_INT, FIELD(struct config_port, rs485_delay_after_us), 0, 100000,
     "0"},
    {"packs", K_LIST, FIELD(struct config_port, packs), .sub = &pack_section},
};
static const struct section port_section = {.id = S_PORT,
                                            .what = "port",
                                            KEYS(port_keys),
                                            .item_size = sizeof(struct config_port),
                                            .count_off = offsetof(struct config, nports),
                                            .cap = CONFIG_MAX_PORTS,
                                            .where = "",
                                            .empty_msg =
                                                "'ports' is empty: at least one port is needed"};

static const struct key bank_keys[] = {
    {"id", K_ID, FIELD(struct config_bank, id)},
    {"name", K_STR, FIELD(struct config_bank, name)}, /* the id */
};
static const struct section bank_section = {
    .id = S_BANK,
    .what = "bank",
    KEYS(bank_keys),
    .item_size = sizeof(struct config_bank),
    .count_off = offsetof(struct config, nbanks),
    .cap = CONFIG_MAX_BANKS,
    .where = "",
    .empty_msg = "'banks' is empty: declare at least one bank, or leave 'banks' out"};

static const struct key retention_keys[] = {
    {"raw_days", K_INT, FIELD(struct config_storage, raw_days), 1, 36500, "30"},
    {"minute_days", K_INT, FIELD(struct config_storage, minute_days), 1, 36500, "365"},
};
static const struct section retention_section = {S_RETENTION, "storage.retention",
                                                 KEYS(retention_keys)};

static const struct key storage_keys[] = {
    {"path", K_STR, FIELD(struct config_storage, path), .def = "/var/lib/bmsfleet/history.db",
     .flags = F_NONEMPTY},
    {"retention", K_MAP, .sub = &retention_section},
    {"commit_interval_s", K_INT, FIELD(struct config_storage, commit_interval_s), 1, 3600, "5"},
};
static const struct section storage_section = {S_STORAGE, "storage", KEYS(storage_keys)};

static const struct key tls_keys[] = {
    {"ca_file", K_STR, FIELD(struct config_mqtt, tls_ca_file), .def = ""},
    {"cert_file", K_STR, FIELD(struct config_mqtt, tls_cert_file), .def = ""},
    {"key_file", K_STR, FIELD(struct config_mqtt, tls_key_file), .def = ""},
    {"insecure", K_BOOL, FIELD(struct config_mqtt, tls_insecure), .def = "false"},
};
static const struct section tls_section = {S_TLS, "mqtt.tls", KEYS(tls_keys)};

static const struct key mqtt_keys[] = {
    {"host", K_STR, FIELD(struct config_mqtt, host), .def = "127.0.0.1", .flags = F_NONEMPTY},
    {"port", K_INT, FIELD(struct config_mqtt, port), 1, 65535, "1883"}, /* 8883 with tls */
    {"client_id", K_STR, FIELD(struct config_mqtt, client_id)},         /* "bmsfleet-<node id>" */
    {"username", K_STR, FIELD(struct config_mqtt, username), .def = ""},
    {"password", K_SECRET, .off = 0},
    {"password_file", K_STR, FIELD(struct config_mqtt, password_file), .def = ""},
    {"base_topic", K_TOPIC, FIELD(struct config_mqtt, base_topic), .def = "bmsfleet"},
    {"discovery_prefix", K_TOPIC, FIELD(struct config_mqtt, discovery_prefix),
     .def = "homeassistant"},
    {"keepalive_s", K_INT, FIELD(struct config_mqtt, keepalive_s), 0, 65535, "60"},
    {"qos", K_INT, FIELD(struct config_mqtt, qos), 0, 2, "1"},
    {"compat", K_BOOL, FIELD(struct config_mqtt, compat), .def = "false"},
    {"device_id", K_STR, FIELD(struct config_mqtt, compat_device_id)},   /* the node id */
    {"topic_prefix", K_TOPIC, FIELD(struct config_mqtt, compat_prefix)}, /* discovery_prefix */
    {"tls", K_MAP, .sub = &tls_section},
};
static const struct section mqtt_section = {S_MQTT, "mqtt", KEYS(mqtt_keys)};

static const struct key node_keys[] = {
    {"id", K_ID, FIELD(struct config, node_id)},      /* the host name */
    {"name", K_STR, FIELD(struct config, node_name)}, /* the id */
};
static const struct section node_section = {S_NODE, "node", KEYS(node_keys)};

static const struct key log_keys[] = {
    {"level", K_LEVEL, FIELD(struct config, log_level), .def = "info"},
};
static const struct section log_section = {S_LOG, "log", KEYS(log_keys)};

static const struct key root_keys[] = {
    {"node", K_MAP, .sub = &node_section},
    {"log", K_MAP, .sub = &log_section},
    {"ports", K_LIST, FIELD(struct config, ports), .sub = &port_section},
    {"banks", K_LIST, FIELD(struct config, banks), .sub = &bank_section},
    {"storage", K_MAP, .off = offsetof(struct config, storage), .sub = &storage_section},
    {"mqtt", K_MAP, .off = offsetof(struct config, mqtt), .sub = &mqtt_section},
};
static const struct section root_section = {S_ROOT, NULL, KEYS(root_keys)};

_Static_assert(sizeof port_keys / sizeof port_keys[0] <= MAX_KEYS, "MAX_KEYS");
_Static_assert(sizeof mqtt_keys / sizeof mqtt_keys[0] <= MAX_KEYS, "MAX_KEYS");

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

/* ---- load state ---- */

struct mark {
    int line, col; /* 1-based; line 0: absent */
};

/* Where a section or list item and each of its keys were written. */
struct marks {
    struct mark at;
    struct mark key[MAX_KEYS], val[MAX_KEYS];
    unsigned char ok[MAX_KEYS]; /* the value was valid and stored */
};

struct ctx {
    const char *name; /* the file, in messages */
    struct config_errors *errs;
    struct mark epos[CONFIG_MAX_ERRORS];
    yaml_document_t *doc;
    size_t cur_port; /* the port whose packs are being walked */
    struct marks sec[S__COUNT];
    struct marks port[CONFIG_MAX_PORTS];
    struct marks pack[CONFIG_MAX_PORTS][CONFIG_MAX_PACKS_PER_PORT];
    struct marks bank[CONFIG_MAX_BANKS];
};

static void add_err(struct ctx *x, struct mark at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_err(struct ctx *x, struct mark at, const char *fmt, ...)
{
    struct config_errors *e = x->errs;
    if (e->n >= CONFIG_MAX_ERRORS)
        return;
    char *m = e->msg[e->n];
    size_t cap = sizeof e->msg[0];
    if (e->n == CONFIG_MAX_ERRORS - 1) {
        snprintf(m, cap, "%s: too many errors, stopping here", x->name);
        x->epos[e->n++] = (struct mark){INT_MAX, INT_MAX};
        return;
    }
    int k = at.line > 0 ? snprintf(m, cap, "%s:%d:%d: ", x->name, at.line, at.col)
                        : snprintf(m, cap, "%s: ", x->name);
    if (k > 0 && (size_t)k < cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m + k, cap - (size_t)k, fmt, ap);
        va_end(ap);
    }
    x->epos[e->n++] = at;
}

/* Stable, so errors at one position keep the order they were found in. */
static void sort_errors(struct ctx *x)
{
    struct config_errors *e = x->errs;
    for (size_t i = 1; i < e->n; i++) {
        for (size_t j = i; j > 0; j--) {
            struct mark a = x->epos[j - 1], b = x->epos[j];
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

static struct mark mark_of(const yaml_node_t *n)
{
    return (struct mark){(int)n->start_mark.line + 1, (int)n->start_mark.column + 1};
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
static void consider(const char *word, const char *cand, const char **best, size_t *best_d)
{
    size_t d = edit_distance(word, cand);
    if (d <= 2 && d < strlen(word) && d < *best_d) {
        *best = cand;
        *best_d = d;
    }
}

static int key_index(const struct section *s, const char *name)
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
    return cli_parse_long(s, LONG_MIN, LONG_MAX, out);
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
static int parse_scalar(const struct key *k, const char *s, void *base, char *why, size_t cap)
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

/* The table defaults of a section (and its nested sections) into base. */
static void apply_defaults(const struct section *s, void *base)
{
    for (size_t i = 0; i < s->nkeys; i++) {
        const struct key *k = &s->keys[i];
        char why[8];
        if (k->type == K_MAP)
            apply_defaults(k->sub, (char *)base + k->off);
        else if (k->def && parse_scalar(k, k->def, base, why, sizeof why))
            abort(); /* a bad default in the table: a bug caught by any test */
    }
}

void config_sanitize_id(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    if (cap)
        memset(out, 0, cap);
    for (; s && *s && n + 1 < cap; s++)
        out[n++] = isalnum((unsigned char)*s) || *s == '-' ? *s : '_';
}

void config_init(struct config *c)
{
    memset(c, 0, sizeof *c);
    apply_defaults(&root_section, c);
    char host[256];
    if (gethostname(host, sizeof host) != 0)
        host[0] = '\0';
    host[sizeof host - 1] = '\0';
    host[strcspn(host, ".")] = '\0'; /* the short name: topics need no domain */
    config_sanitize_id(host[0] ? host : "bmsfleet", c->node_id, sizeof c->node_id);
}

void config_port_init(struct config_port *p, size_t index)
{
    memset(p, 0, sizeof *p);
    apply_defaults(&port_section, p);
    snprintf(p->name, sizeof p->name, "port%zu", index + 1);
    for (size_t i = 0; i < CONFIG_MAX_PACKS_PER_PORT; i++)
        apply_defaults(&pack_section, &p->packs[i]);
}

/* ---- the walker ---- */

static struct marks *marks_for(struct ctx *x, const struct section *s, size_t idx)
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

static yaml_node_t *node(struct ctx *x, int i)
{
    return yaml_document_get_node(x->doc, i);
}

/* Where to point for a value: an empty one has no place of its own, its key has. */
static struct mark value_mark(const yaml_node_t *kn, const yaml_node_t *vn)
{
    return is_null(vn) && vn->data.scalar.length == 0 ? mark_of(kn) : mark_of(vn);
}

static const char *kind_name(const yaml_node_t *n)
{
    return n->type == YAML_SEQUENCE_NODE ? "a list" : "a map";
}

static void walk_map(struct ctx *x, yaml_node_t *n, const struct section *s, void *base,
                     struct marks *m);

static void walk_list(struct ctx *x, yaml_node_t *n, struct mark at, const struct key *k,
                      void *base)
{
    const struct section *s = k->sub;
    if (n->type != YAML_SEQUENCE_NODE && !is_null(n)) {
        add_err(x, at, "'%s' must be a list of %s", k->name, k->name);
        return;
    }
    if (is_null(n) || n->data.sequence.items.start == n->data.sequence.items.top) {
        add_err(x, at, "%s", s->empty_msg);
        return;
    }
    size_t *count = (size_t *)((char *)base + s->count_off);
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *item = node(x, *it);
        if (item->type != YAML_MAPPING_NODE) {
            add_err(x, mark_of(item), "each %s must be a map of settings, e.g. { %s: ... }",
                    s->what, s->keys[0].name);
            continue;
        }
        if (*count == s->cap) {
            add_err(x, mark_of(item), "too many %s%s: at most %zu", k->name, s->where, s->cap);
            return;
        }
        size_t idx = (*count)++;
        void *elem = (char *)base + k->off + idx * s->item_size;
        if (s->id == S_PORT) {
            config_port_init(elem, idx);
            x->cur_port = idx;
        } else {
            memset(elem, 0, s->item_size);
            apply_defaults(s, elem);
        }
        walk_map(x, item, s, elem, marks_for(x, s, idx));
    }
}

static void walk_value(struct ctx *x, yaml_node_t *kn, yaml_node_t *vn, const struct key *k,
                       void *base, struct marks *m, size_t i)
{
    if (k->type == K_SECRET) {
        add_err(x, mark_of(kn),
                "mqtt.%s is not read from the YAML file: put it in password_file or the "
                "MQTT_PASSWORD environment variable",
                k->name);
        return;
    }
    if (k->type == K_MAP) {
        struct marks *sm = marks_for(x, k->sub, 0);
        if (vn->type != YAML_MAPPING_NODE && !is_null(vn)) {
            add_err(x, m->val[i], "'%s' must be a map of settings", k->name);
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
        add_err(x, m->val[i], "'%s' must be a single value, not %s", k->name, kind_name(vn));
        return;
    }
    const char *s = is_null(vn) ? "" : (const char *)vn->data.scalar.value;
    if (strlen(s) != vn->data.scalar.length) {
        add_err(x, m->val[i], "%s contains a NUL character", k->name);
        return;
    }
    char why[256];
    if (parse_scalar(k, s, base, why, sizeof why))
        add_err(x, m->val[i], "%s", why);
    else
        m->ok[i] = 1;
}

static void walk_map(struct ctx *x, yaml_node_t *n, const struct section *s, void *base,
                     struct marks *m)
{
    m->at = mark_of(n);
    if (is_null(n))
        return; /* "storage:" with nothing under it: the defaults */
    if (n->type != YAML_MAPPING_NODE) {
        add_err(x, mark_of(n),
                "the configuration must be a map of sections (node, log, ports, banks, storage, "
                "mqtt)");
        return;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = node(x, p->key), *vn = node(x, p->value);
        if (kn->type != YAML_SCALAR_NODE) {
            add_err(x, mark_of(kn), "a key must be a name, not %s", kind_name(kn));
            continue;
        }
        const char *name = (const char *)kn->data.scalar.value;
        int i = key_index(s, name);
        if (i < 0) {
            const char *best = NULL;
            size_t best_d = SIZE_MAX;
            for (size_t j = 0; j < s->nkeys; j++) {
                if (s->keys[j].type != K_SECRET)
                    consider(name, s->keys[j].name, &best, &best_d);
            }
            char hint[96] = "";
            if (best)
                snprintf(hint, sizeof hint, "; did you mean '%s'?", best);
            if (s->what)
                add_err(x, mark_of(kn), "unknown key '" SHOW "' in %s%s", name, s->what, hint);
            else
                add_err(x, mark_of(kn), "unknown section '" SHOW "'%s", name, hint);
            continue;
        }
        size_t u = (size_t)i;
        if (m->key[u].line) {
            add_err(x, mark_of(kn), "'%s' is already set at line %d", name, m->key[u].line);
            continue;
        }
        m->key[u] = mark_of(kn);
        /* an empty value has no place of its own: point at its key */
        m->val[u] = value_mark(kn, vn);
        walk_value(x, kn, vn, &s->keys[u], base, m, u);
    }
}

/* ---- the whole fleet ---- */

static const struct key *row(const struct section *s, const char *name)
{
    int i = key_index(s, name);
    if (i < 0)
        abort(); /* a typo in this file */
    return &s->keys[i];
}

static int seen(const struct marks *m, const struct section *s, const char *key)
{
    return m->key[row(s, key) - s->keys].line != 0;
}

static int valid(const struct marks *m, const struct section *s, const char *key)
{
    return m->ok[row(s, key) - s->keys];
}

/* The value of a key when it was written, else the item holding it. */
static struct mark where(const struct marks *m, const struct section *s, const char *key)
{
    ptrdiff_t i = row(s, key) - s->keys;
    return m->key[i].line ? m->val[i] : m->at;
}

static void copy_id(char *dst, const char *src)
{
    memset(dst, 0, CONFIG_ID_LEN);
    snprintf(dst, CONFIG_ID_LEN, "%s", src);
}

static void finish_banks(struct ctx *x, struct config *c)
{
    if (!seen(&x->sec[S_ROOT], &root_section, "banks")) {
        c->nbanks = 1; /* the implicit bank every pack goes to */
        copy_id(c->banks[0].id, "bank");
        copy_id(c->banks[0].name, "bank");
        return;
    }
    for (size_t i = 0; i < c->nbanks; i++) {
        struct config_bank *b = &c->banks[i];
        const struct marks *m = &x->bank[i];
        if (!seen(m, &bank_section, "id"))
            add_err(x, m->at, "bank has no id");
        if (!valid(m, &bank_section, "id"))
            continue;
        if (!seen(m, &bank_section, "name"))
            copy_id(b->name, b->id);
        for (size_t j = 0; j < i; j++) {
            if (valid(&x->bank[j], &bank_section, "id") && strcmp(c->banks[j].id, b->id) == 0) {
                add_err(x, where(m, &bank_section, "id"), "bank id '%s' is already used at line %d",
                        b->id, where(&x->bank[j], &bank_section, "id").line);
                break;
            }
        }
    }
}

static const struct config_bank *find_bank(const struct config *c, const char *id)
{
    for (size_t i = 0; i < c->nbanks; i++) {
        if (c->banks[i].id[0] && strcmp(c->banks[i].id, id) == 0)
            return &c->banks[i];
    }
    return NULL;
}

/* Defaults that depend on other values (pack id, name, bank), and what one pack can be wrong
 * about on its own. */
static void finish_pack(struct ctx *x, struct config *c, size_t pi, size_t ki)
{
    const struct section *s = &pack_section;
    struct config_port *p = &c->ports[pi];
    struct config_pack *k = &p->packs[ki];
    const struct marks *m = &x->pack[pi][ki];
    k->line = m->at.line;
    int has_addr = valid(m, s, "address");
    if (!seen(m, s, "address")) {
        if (valid(m, s, "id"))
            add_err(x, m->at, "pack '%s' has no address", k->id);
        else
            add_err(x, m->at, "pack has no address");
    } else if (has_addr && p->protocol == CONFIG_PROTO_MODBUS &&
               (k->address < 1 || k->address > 247)) {
        add_err(x, where(m, s, "address"), "address %u is not a Modbus slave address (1 to 247)",
                k->address);
    }
    if (!seen(m, s, "id") && has_addr) {
        char id[CONFIG_ID_LEN + 8];
        snprintf(id, sizeof id, "%s-%u", p->name, k->address);
        if (strlen(id) >= CONFIG_ID_LEN)
            add_err(x, m->at,
                    "pack id '%s' (port name and address) is longer than %d characters: "
                    "give the pack an id",
                    id, CONFIG_ID_LEN - 1);
        else
            copy_id(k->id, id);
    }
    if (!seen(m, s, "name"))
        copy_id(k->name, k->id);
    if (!seen(m, s, "bank")) {
        copy_id(k->bank, c->banks[0].id);
    } else if (valid(m, s, "bank") && !find_bank(c, k->bank)) {
        if (!seen(&x->sec[S_ROOT], &root_section, "banks")) {
            add_err(x, where(m, s, "bank"), "bank '%s' is not declared: add a 'banks' section",
                    k->bank);
            return;
        }
        const char *best = NULL;
        size_t best_d = SIZE_MAX;
        for (size_t b = 0; b < c->nbanks; b++)
            consider(k->bank, c->banks[b].id, &best, &best_d);
        add_err(x, where(m, s, "bank"), "bank '%s' is not declared in 'banks'%s%s%s", k->bank,
                best ? "; did you mean '" : "", best ? best : "", best ? "'?" : "");
    }
}

/* Pack k of port p against every pack before it: addresses on one bus, ids in the fleet. */
static void check_pack_dups(struct ctx *x, const struct config *c, size_t pi, size_t ki)
{
    const struct section *s = &pack_section;
    const struct config_pack *k = &c->ports[pi].packs[ki];
    const struct marks *m = &x->pack[pi][ki];
    for (size_t j = 0; j < ki; j++) {
        const struct config_pack *o = &c->ports[pi].packs[j];
        if (valid(m, s, "address") && valid(&x->pack[pi][j], s, "address") &&
            o->address == k->address) {
            add_err(x, where(m, s, "address"),
                    "address 0x%02X is already used on port '%s' by pack '%s' at line %d",
                    k->address, c->ports[pi].name, o->id, o->line);
            break;
        }
    }
    if (!k->id[0])
        return;
    for (size_t q = 0; q <= pi; q++) {
        for (size_t j = 0; j < (q == pi ? ki : c->ports[q].npacks); j++) {
            if (strcmp(c->ports[q].packs[j].id, k->id) == 0) {
                add_err(x, where(m, s, "id"), "pack id '%s' is already used at line %d", k->id,
                        where(&x->pack[q][j], s, "id").line);
                return;
            }
        }
    }
}

/* Valid, or the default "port<N>"; not a rejected value. */
static int name_usable(const struct marks *m)
{
    return !seen(m, &port_section, "name") || valid(m, &port_section, "name");
}

static void finish_ports(struct ctx *x, struct config *c)
{
    const struct section *s = &port_section;
    if (!seen(&x->sec[S_ROOT], &root_section, "ports"))
        add_err(x, (struct mark){0, 0}, "no 'ports' section: at least one port is needed");
    for (size_t i = 0; i < c->nports; i++) {
        struct config_port *p = &c->ports[i];
        const struct marks *m = &x->port[i];
        p->line = m->at.line;
        p->variant = p->protocol == CONFIG_PROTO_MODBUS
                         ? NULL
                         : s42_variant_find(config_protocol_name(p->protocol));
        if (!seen(m, s, "device"))
            add_err(x, m->at, "port '%s' has no device", p->name);
        if (!seen(m, s, "packs"))
            add_err(x, m->at, "port '%s' has no packs", p->name);
        for (size_t j = 0; j < i; j++) {
            const struct marks *o = &x->port[j];
            if (name_usable(o) && name_usable(m) && strcmp(c->ports[j].name, p->name) == 0) {
                add_err(x, where(m, s, "name"), "port name '%s' is already used at line %d",
                        p->name, where(o, s, "name").line);
            }
            if (valid(m, s, "device") && valid(o, s, "device") &&
                strcmp(c->ports[j].device, p->device) == 0) {
                add_err(x, where(m, s, "device"),
                        "device %s is already used by port '%s' at line %d", p->device,
                        c->ports[j].name, where(o, s, "device").line);
            }
        }
        for (size_t k = 0; k < p->npacks; k++)
            finish_pack(x, c, i, k);
    }
    for (size_t i = 0; i < c->nports; i++) {
        for (size_t k = 0; k < c->ports[i].npacks; k++)
            check_pack_dups(x, c, i, k);
    }
}

/* First line of the file, without its line ending. */
static void read_password(struct ctx *x, struct config_mqtt *q, struct mark at)
{
    FILE *f = fopen(q->password_file, "r");
    if (f == NULL) {
        add_err(x, at, "cannot read password_file %s: %s", q->password_file, strerror(errno));
        return;
    }
    char line[sizeof q->password + 2];
    errno = 0;
    if (fgets(line, sizeof line, f) == NULL) {
        int e = ferror(f) ? errno : 0;
        line[0] = '\0';
        if (e) {
            fclose(f);
            add_err(x, at, "cannot read password_file %s: %s", q->password_file, strerror(e));
            return;
        }
    }
    fclose(f);
    size_t n = strcspn(line, "\r\n");
    if (n == 0)
        add_err(x, at, "password_file %s is empty", q->password_file);
    else if (n >= sizeof q->password)
        add_err(x, at, "the password in %s is too long: at most %zu characters", q->password_file,
                sizeof q->password - 1);
    else
        memcpy(q->password, line, n);
}

static void finish_mqtt(struct ctx *x, struct config *c)
{
    const struct section *s = &mqtt_section;
    const struct marks *m = &x->sec[S_MQTT];
    struct config_mqtt *q = &c->mqtt;
    if (!seen(m, s, "client_id"))
        snprintf(q->client_id, sizeof q->client_id, "bmsfleet-%.54s", c->node_id);
    if (!seen(m, s, "device_id"))
        copy_id(q->compat_device_id, q->compat ? c->node_id : "");
    if (!seen(m, s, "topic_prefix"))
        copy_id(q->compat_prefix, q->compat ? q->discovery_prefix : "");
    if (!seen(&x->sec[S_ROOT], &root_section, "mqtt"))
        return;
    q->enabled = 1;
    if (seen(m, s, "tls") && !seen(m, s, "port"))
        q->port = 8883;
    const struct marks *t = &x->sec[S_TLS];
    if (q->tls_cert_file[0] && !q->tls_key_file[0])
        add_err(x, where(t, &tls_section, "cert_file"), "tls.cert_file needs tls.key_file too");
    if (q->tls_key_file[0] && !q->tls_cert_file[0])
        add_err(x, where(t, &tls_section, "key_file"), "tls.key_file needs tls.cert_file too");
    const char *env = getenv("BMSFLEET_MQTT_PASSWORD");
    const char *var = "BMSFLEET_MQTT_PASSWORD";
    if (env == NULL || *env == '\0') {
        env = getenv("MQTT_PASSWORD");
        var = "MQTT_PASSWORD";
    }
    if (env && *env) {
        if (strlen(env) >= sizeof q->password)
            add_err(x, (struct mark){0, 0}, "%s is too long: at most %zu characters", var,
                    sizeof q->password - 1);
        else
            snprintf(q->password, sizeof q->password, "%s", env);
    } else if (q->password_file[0] && valid(m, s, "password_file")) {
        read_password(x, q, where(m, s, "password_file"));
    }
}

static void finish(struct ctx *x, struct config *c)
{
    if (!seen(&x->sec[S_NODE], &node_section, "name"))
        copy_id(c->node_name, c->node_id);
    finish_banks(x, c);
    finish_ports(x, c);
    finish_mqtt(x, c);
}

/* ---- entry points ---- */

static void syntax_error(struct ctx *x, const yaml_parser_t *p, const char *buf, size_t len)
{
    struct mark at = {(int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1};
    if (p->error == YAML_MEMORY_ERROR) {
        add_err(x, (struct mark){0, 0}, "out of memory while reading the YAML");
        return;
    }
    if (p->error == YAML_READER_ERROR) { /* no mark: count lines up to the offset */
        at = (struct mark){1, 1};
        for (size_t i = 0; i < p->problem_offset && i < len; i++) {
            if (buf[i] == '\n')
                at = (struct mark){at.line + 1, 1};
            else
                at.col++;
        }
    }
    add_err(x, at, "YAML syntax error: %s", p->problem ? p->problem : "cannot parse");
}

static struct ctx *ctx_new(const char *name, struct config_errors *errs)
{
    struct ctx *x = calloc(1, sizeof *x);
    if (x) {
        x->name = name;
        x->errs = errs;
        errs->n = 0;
    }
    return x;
}

/* Walks the document into c. Returns -EINVAL when it could not be read at all. */
static int parse_yaml(struct ctx *x, struct config *c, const char *buf, size_t len)
{
    yaml_parser_t p;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&p)) {
        add_err(x, (struct mark){0, 0}, "out of memory while reading the YAML");
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
        walk_map(x, root, &root_section, c, &x->sec[S_ROOT]);
        if (root->type != YAML_MAPPING_NODE && !is_null(root))
            rc = -EINVAL; /* nothing was read: checking the fleet would only add noise */
    }
    yaml_document_delete(&doc);
    if (!yaml_parser_load(&p, &doc)) {
        syntax_error(x, &p, buf, len);
    } else {
        root = yaml_document_get_root_node(&doc);
        if (root)
            add_err(x, mark_of(root), "a second YAML document is not read: remove it");
        yaml_document_delete(&doc);
    }
    x->doc = NULL;
    yaml_parser_delete(&p);
    return rc;
}

/* One load from a buffer: the common end of config_load_file and config_load_string. */
static int load(const char *name, const char *buf, size_t len, struct config **out,
                struct config_errors *errs)
{
    struct config *c = calloc(1, sizeof *c);
    struct ctx *x = ctx_new(name, errs);
    if (c == NULL || x == NULL) {
        free(c);
        free(x);
        return -ENOMEM;
    }
    config_init(c);
    snprintf(c->source, sizeof c->source, "%s", name);
    if (parse_yaml(x, c, buf, len) == 0)
        finish(x, c); /* also after errors: the fleet checks find more */
    sort_errors(x);
    free(x);
    if (errs->n) {
        free(c);
        return -EINVAL;
    }
    *out = c;
    return 0;
}

int config_load_string(const char *name, const char *yaml, struct config **out,
                       struct config_errors *errs)
{
    struct config_errors *mine = errs ? NULL : malloc(sizeof *mine);
    if (errs == NULL && mine == NULL)
        return -ENOMEM;
    int rc = load(name, yaml, strlen(yaml), out, errs ? errs : mine);
    free(mine);
    return rc;
}

int config_load_file(const char *path, struct config **out, struct config_errors *errs)
{
    struct config_errors *mine = errs ? NULL : malloc(sizeof *mine);
    if (errs == NULL && mine == NULL)
        return -ENOMEM;
    errs = errs ? errs : mine;
    errs->n = 0;
    int rc = 0;
    size_t len = 0;
    char *buf = malloc(MAX_FILE + 1);
    FILE *f = fopen(path, "rb");
    if (buf == NULL) {
        rc = -ENOMEM;
    } else if (f == NULL) {
        rc = -errno;
    } else {
        len = fread(buf, 1, MAX_FILE + 1, f);
        if (ferror(f))
            rc = errno ? -errno : -EIO;
        else if (len > MAX_FILE)
            rc = -EFBIG;
    }
    if (f)
        fclose(f);
    if (rc == 0) {
        rc = load(path, buf, len, out, errs);
    } else {
        snprintf(errs->msg[0], sizeof errs->msg[0], "%s: cannot open: %s", path,
                 rc == -EFBIG ? "larger than 1 MiB: not a configuration" : strerror(-rc));
        errs->n = 1;
    }
    free(buf);
    free(mine);
    return rc;
}

void config_free(struct config *c)
{
    free(c);
}
