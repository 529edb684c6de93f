/* config_internal: what the files of the config part share: the shape of a key table
 * (config_keys.c), the marks of where each key was written and the load state (config_yaml.c,
 * config.c), and the error list with positions (config_errors.c). */
#ifndef BMSFLEET_CONFIG_INTERNAL_H
#define BMSFLEET_CONFIG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <yaml.h>

#include "config.h"

#define CONFIG_MAX_KEYS 16 /* per section */

enum config_key_type {
    K_ID,     /* [A-Za-z0-9_-], 1..63 chars: becomes an MQTT topic level and HA unique id */
    K_STR,    /* any text that fits */
    K_TOPIC,  /* MQTT topic prefix: no wildcards, no leading or trailing '/' */
    K_INT,    /* whole integer, decimal or 0x hex, in [min, max] */
    K_BOOL,   /* true/false, yes/no, on/off */
    K_BAUD,   /* one of the standard rates */
    K_ADDR,   /* a pack address 0..254 */
    K_PROTO,  /* enum config_protocol */
    K_LEVEL,  /* enum log_level */
    K_CHOICE, /* one of the words in `names` (NULL-terminated), stored as its index (an int) */
    K_SECRET, /* rejected: secrets never come from the YAML file */
    K_MAP,    /* nested section `sub`, stored at off of the same parent */
    K_LIST,   /* list of `sub` items; the array is at off, the count at sub->count_off */
};

enum { F_NONEMPTY = 1 };

/* Sections, also the index of their marks in struct config_ctx. */
enum config_sec_id {
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
    S_HTTP,
    S__COUNT
};

struct config_section;

struct config_key {
    const char *name;
    enum config_key_type type;
    unsigned flags;
    size_t off, size; /* the field in the section's struct */
    long min, max;    /* K_INT */
    const char *def;  /* default as YAML text; NULL: none, or derived in finish() */
    const struct config_section *sub;
    const char *const *names; /* K_CHOICE */
};

struct config_section {
    enum config_sec_id id;
    const char *what; /* in messages: "port", "mqtt.tls"; NULL for the top level */
    const struct config_key *keys;
    size_t nkeys;
    /* list items only */
    size_t item_size, count_off, cap;
    const char *where;     /* completes "too many packs": "" or " on one port" */
    const char *empty_msg; /* for an empty list */
};

/* ---- load state ---- */

struct config_mark {
    int line, col; /* 1-based; line 0: absent */
};

/* Where a section or list item and each of its keys were written. */
struct config_marks {
    struct config_mark at;
    struct config_mark key[CONFIG_MAX_KEYS], val[CONFIG_MAX_KEYS];
    unsigned char ok[CONFIG_MAX_KEYS]; /* the value was valid and stored */
};

struct config_ctx {
    const char *name; /* the file, in messages */
    struct config_errors *errs;
    struct config_mark epos[CONFIG_MAX_ERRORS];
    yaml_document_t *doc;
    size_t cur_port; /* the port whose packs are being walked */
    struct config_marks sec[S__COUNT];
    struct config_marks port[CONFIG_MAX_PORTS];
    struct config_marks pack[CONFIG_MAX_PORTS][CONFIG_MAX_PACKS_PER_PORT];
    struct config_marks bank[CONFIG_MAX_BANKS];
};

/* ---- config_errors.c ---- */

/* Adds "file:line:col: message" (or "file: message" for line 0) to the errors of the load. */
void config_add_err(struct config_ctx *x, struct config_mark at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Adds "file:line:col: warning: message" to c->warnings; c->nwarnings counts every warning,
 * the first CONFIG_MAX_WARNINGS are kept. */
void config_add_warn(struct config_ctx *x, struct config *c, struct config_mark at,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Sorts the errors by position. */
void config_sort_errors(struct config_ctx *x);
/* Did-you-mean: keeps cand in *best when it is the closest to word so far. */
void config_consider(const char *word, const char *cand, const char **best, size_t *best_d);
/* The index of key name in s, or -1. */
int config_key_index(const struct config_section *s, const char *name);

/* ---- config_scalar.c ---- */

/* Parses one value of key k into its field at base. On error writes the message (without the
 * position) into why and returns -EINVAL; the field is left alone. */
int config_parse_scalar(const struct config_key *k, const char *s, void *base, char *why,
                        size_t cap);

/* ---- config_yaml.c ---- */
/* Walks the document in buf against the key table top into c. Returns -EINVAL when it could
 * not be read at all. */
int config_parse_yaml(struct config_ctx *x, const struct config_section *top, struct config *c,
                      const char *buf, size_t len);

/* ---- config_yaml_out.c ---- */

/* The code point of the UTF-8 sequence at s into *cp; its length (1..4), or -1 when it is not
 * valid UTF-8 (overlong, a surrogate, past U+10FFFF, cut short). */
int config_utf8_next(const unsigned char *s, uint32_t *cp);

/* ---- config_keys.c ---- */

extern const struct config_section config_http_section;
extern const struct config_section config_root_section, config_node_section, config_log_section,
    config_port_section, config_pack_section, config_bank_section, config_storage_section,
    config_retention_section, config_mqtt_section, config_tls_section;

/* The table defaults of a section (and its nested sections) into base. */
void config_apply_defaults(const struct config_section *s, void *base);

/* A modbus-tcp:// device with another protocol: the file's check and the environment's. */
#define CONFIG_MSG_MODBUS_TCP_PROTOCOL                                                           \
    "modbus-tcp:// is a Modbus TCP gateway: it needs protocol modbus (a serial server that "      \
    "passes the bus bytes through is tcp://HOST:PORT)"

/* ---- config_files.c ---- */

/* Up to cap bytes of the regular file at path into buf (*len, and its *mode); a FIFO, a terminal
 * or /dev/stdin is refused (-ENOTSUP), a directory -EISDIR. 0 or -errno. */
int config_read_regular(const char *path, char *buf, size_t cap, size_t *len, mode_t *mode);
/* The words for a config_read_regular error. */
const char *config_read_error(int rc);
/* The first line of the password file at path (what names it in messages) into dst (cap);
 * errors and warnings at at. empty_ok: an empty first line is no password. */
void config_read_password(struct config_ctx *x, struct config *c, const char *what,
                          const char *path, struct config_mark at, int empty_ok, char *dst,
                          size_t cap);
/* The MQTT password from systemd's credentials directory, when there is one. */
void config_read_credential(struct config_ctx *x, struct config *c);

#endif
