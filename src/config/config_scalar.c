/* config_scalar: one typed value of the configuration, from its text to its field: integers in
 * range, booleans, ids, topics, bauds, protocols, log levels; what the key tables' defaults and
 * the YAML walker both parse with. */
#include "config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "parse.h"

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

/* The message for a value that is not one the key takes: "KEY must be WHAT, not 'S'". */
static int must_be(const struct config_key *k, const char *s, const char *what, char *why,
                   size_t cap)
{
    snprintf(why, cap, "%s must be %s, %s" SHOW "%s", k->name, what, NOT(s));
    return -EINVAL;
}

/* An id: 1 to size-1 characters, letters, digits, '_' and '-' only. */
static int check_id(const struct config_key *k, const char *s, size_t len, char *why, size_t cap)
{
    if (len == 0 || len >= k->size) {
        snprintf(why, cap, "%s must be 1 to %zu characters long, not %zu", k->name, k->size - 1,
                 len);
        return -EINVAL;
    }
    if (!id_chars_ok(s)) {
        snprintf(why, cap, "%s '" SHOW "' may only contain letters, digits, '_' and '-'", k->name,
                 s);
        return -EINVAL;
    }
    return 0;
}

/* A string or a topic that fits its field; a topic is never empty, has no wildcard and no '/'
 * at either end. */
static int check_text(const struct config_key *k, const char *s, size_t len, char *why, size_t cap)
{
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
    return 0;
}

/* An integer in the key's range. */
static int parse_int_key(const struct config_key *k, const char *s, int *dst, char *why, size_t cap)
{
    long v = 0;
    if (parse_int(s, &v) || v < k->min || v > k->max) {
        snprintf(why, cap, "%s must be an integer from %ld to %ld, %s" SHOW "%s", k->name, k->min,
                 k->max, NOT(s));
        return -EINVAL;
    }
    *dst = (int)v;
    return 0;
}

/* true/false, yes/no, on/off. */
static int parse_bool_key(const struct config_key *k, const char *s, int *dst, char *why,
                          size_t cap)
{
    int b;
    if (parse_bool(s, &b))
        return must_be(k, s, "true or false (or yes/no, on/off)", why, cap);
    *dst = b;
    return 0;
}

/* One of the baud rates of the bauds table. */
static int parse_baud_key(const struct config_key *k, const char *s, int *dst, char *why,
                          size_t cap)
{
    long v = 0;
    if (parse_int(s, &v) == 0) {
        for (size_t i = 0; i < sizeof bauds / sizeof bauds[0]; i++) {
            if (v == bauds[i]) {
                *dst = bauds[i];
                return 0;
            }
        }
    }
    return must_be(k, s, "one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200", why, cap);
}

/* A pack address, 0 to 254: 0xFF (broadcast) has a message of its own. */
static int parse_addr_key(const struct config_key *k, const char *s, uint8_t *dst, char *why,
                          size_t cap)
{
    long v = 0;
    if (parse_int(s, &v) == 0 && v == 0xFF) {
        snprintf(why, cap,
                 "%s 0xFF is the broadcast address, which every pack answers: use the "
                 "pack's own address (0 to 254)",
                 k->name);
        return -EINVAL;
    }
    if (parse_int(s, &v) || v < 0 || v > 254)
        return must_be(k, s, "from 0 to 254 (0x00 to 0xFE)", why, cap);
    *dst = (uint8_t)v;
    return 0;
}

/* A protocol by its name in protocol_names. */
static int parse_proto_key(const struct config_key *k, const char *s, enum config_protocol *dst,
                           char *why, size_t cap)
{
    for (size_t i = 0; i < sizeof protocol_names / sizeof protocol_names[0]; i++) {
        if (strcmp(s, protocol_names[i]) == 0) {
            *dst = (enum config_protocol)i;
            return 0;
        }
    }
    return must_be(k, s, "one of daren, pace, pylontech, seplos, modbus", why, cap);
}

/* A log level by its name. */
static int parse_level_key(const struct config_key *k, const char *s, enum log_level *dst,
                           char *why, size_t cap)
{
    enum log_level l;
    if (log_parse_level(s, &l))
        return must_be(k, s, "one of error, warn, info, debug", why, cap);
    *dst = l;
    return 0;
}

/* One of the key's own names, as its index; the message lists them all. */
static int parse_choice_key(const struct config_key *k, const char *s, int *dst, char *why,
                            size_t cap)
{
    char list[160] = "";
    for (size_t i = 0; k->names[i] != NULL; i++) {
        if (strcmp(s, k->names[i]) == 0) {
            *dst = (int)i;
            return 0;
        }
        size_t at = strlen(list);
        snprintf(list + at, sizeof list - at, "%s%s", i ? (k->names[i + 1] ? ", " : " or ") : "",
                 k->names[i]);
    }
    return must_be(k, s, list, why, cap);
}

/* Parses one value of key k into its field at base. On error writes the message (without the
 * position) into why and returns -EINVAL; the field is left alone. */
int config_parse_scalar(const struct config_key *k, const char *s, void *base, char *why,
                        size_t cap)
{
    void *dst = (char *)base + k->off;
    size_t len = strlen(s);
    int err = 0;
    switch (k->type) {
    case K_ID: err = check_id(k, s, len, why, cap); break;
    case K_STR:
    case K_TOPIC: err = check_text(k, s, len, why, cap); break;
    case K_INT: return parse_int_key(k, s, dst, why, cap);
    case K_BOOL: return parse_bool_key(k, s, dst, why, cap);
    case K_BAUD: return parse_baud_key(k, s, dst, why, cap);
    case K_ADDR: return parse_addr_key(k, s, dst, why, cap);
    case K_PROTO: return parse_proto_key(k, s, dst, why, cap);
    case K_LEVEL: return parse_level_key(k, s, dst, why, cap);
    case K_CHOICE: return parse_choice_key(k, s, dst, why, cap);
    case K_SECRET:
    case K_MAP:
    case K_LIST:
        snprintf(why, cap, "%s is not a single value", k->name);
        return -EINVAL;
    }
    if (err)
        return err;
    /* the text kinds: the string itself, NUL-padded to its field */
    memset(dst, 0, k->size);
    memcpy(dst, s, len);
    return 0;
}
