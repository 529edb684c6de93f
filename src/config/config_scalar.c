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
