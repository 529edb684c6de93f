/* config_env: the model from the environment of the program bmsfleet replaces: one Daren pack
 * on one port at 9600 baud, polled every READ_INTERVAL seconds, with MQTT when MQTT_HOST is set
 * and the replaced program's topics (mqtt.compat). Errors name the variable:
 * "environment: BMS_SLAVE_ID: must be an address from 1 to 254, not 'x'". */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parse.h"
#include "config.h"
#include "config_internal.h"
#include "endpoint.h"

/* MQTT_PASSWORD is left out of the detection: a YAML configuration reads it too. */
static const char *const detect_vars[] = {"BMS_PORT",  "BMS_SLAVE_ID",      "READ_INTERVAL",
                                          "MQTT_HOST", "MQTT_PORT",         "MQTT_USER",
                                          "DEVICE_ID", "MQTT_TOPIC_PREFIX", "DEBUG_MODE"};

struct env {
    const char *(*get)(const char *);
    struct config_errors *errs;
};

static const char *sys_getenv(const char *name)
{
    return getenv(name);
}

static void env_err(struct env *e, const char *var, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void env_err(struct env *e, const char *var, const char *fmt, ...)
{
    if (e->errs->n >= CONFIG_MAX_ERRORS)
        return;
    char *m = e->errs->msg[e->errs->n++];
    size_t cap = sizeof e->errs->msg[0];
    int k = snprintf(m, cap, "environment: %s: ", var);
    va_list ap;
    va_start(ap, fmt);
    if (k > 0 && (size_t)k < cap)
        vsnprintf(m + k, cap - (size_t)k, fmt, ap);
    va_end(ap);
}

/* The variable, or def when unset or empty (compose files often set variables to ""). */
static const char *value(const struct env *e, const char *var, const char *def)
{
    const char *v = e->get(var);
    return v && *v ? v : def;
}

static void text(struct env *e, const char *var, const char *def, char *dst, size_t cap)
{
    const char *v = value(e, var, def);
    if (v == dst)
        return; /* unset, and the default is what dst already holds */
    size_t len = strlen(v);
    if (len >= cap) {
        env_err(e, var, "too long: at most %zu characters", cap - 1);
        return;
    }
    for (const unsigned char *p = (const unsigned char *)v; *p;) {
        uint32_t c;
        int n = config_utf8_next(p, &c);
        if (n < 0) {
            env_err(e, var, "not valid UTF-8 text (byte %zu)",
                    (size_t)(p - (const unsigned char *)v) + 1);
            return;
        }
        p += n;
    }
    memset(dst, 0, cap);
    memcpy(dst, v, len);
}

/* A whole decimal or 0x hex integer in [min, max]; `what` names it in the message. */
static void number(struct env *e, const char *var, const char *def, long min, long max,
                   const char *what, int *dst)
{
    const char *v = value(e, var, def);
    long n;
    if (!isdigit((unsigned char)v[0]) || parse_long(v, min, max, &n)) {
        env_err(e, var, "must be %s from %ld to %ld, not '%.80s'", what, min, max, v);
        return;
    }
    *dst = (int)n;
}

static void debug_mode(struct env *e, enum log_level *dst)
{
    static const char *const words[] = {"false", "true", "0", "1", "no", "yes", "off", "on"};
    const char *v = value(e, "DEBUG_MODE", "false");
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (strcasecmp(v, words[i]) == 0) {
            *dst = i % 2 ? LOG_DEBUG : LOG_INFO;
            return;
        }
    }
    env_err(e, "DEBUG_MODE", "must be true or false (or 1/0, yes/no), not '%.80s'", v);
}

static void topic_prefix(struct env *e, struct config_mqtt *q)
{
    text(e, "MQTT_TOPIC_PREFIX", "homeassistant", q->discovery_prefix, sizeof q->discovery_prefix);
    const char *v = q->discovery_prefix;
    size_t len = strlen(v);
    if (len && (strpbrk(v, "+#") || v[0] == '/' || v[len - 1] == '/'))
        env_err(e, "MQTT_TOPIC_PREFIX",
                "must be an MQTT topic without '+', '#' or a leading or trailing '/', not "
                "'%.80s'",
                v);
    memcpy(q->compat_prefix, q->discovery_prefix, sizeof q->compat_prefix);
}

int config_env_present(const char *(*getenv_fn)(const char *))
{
    struct env e = {getenv_fn ? getenv_fn : sys_getenv, NULL};
    for (size_t i = 0; i < sizeof detect_vars / sizeof detect_vars[0]; i++) {
        if (value(&e, detect_vars[i], NULL))
            return 1;
    }
    return 0;
}

int config_from_env(const char *(*getenv_fn)(const char *), struct config **out,
                    struct config_errors *errs)
{
    struct config_errors *mine = errs ? NULL : malloc(sizeof *mine);
    struct config *c = calloc(1, sizeof *c);
    if (c == NULL || (errs == NULL && mine == NULL)) {
        free(mine);
        free(c);
        return -ENOMEM;
    }
    struct env e = {getenv_fn ? getenv_fn : sys_getenv, errs ? errs : mine};
    e.errs->n = 0;
    config_init(c);
    snprintf(c->source, sizeof c->source, "environment");

    struct config_port *p = &c->ports[0];
    struct config_pack *k = &p->packs[0];
    struct config_mqtt *q = &c->mqtt;
    c->nports = 1;
    config_port_init(p, 0);
    p->npacks = 1;
    p->protocol = CONFIG_PROTO_DAREN;
    p->baud = 9600;
    text(&e, "BMS_PORT", "/dev/ttyUSB0", p->device, sizeof p->device);
    /* the device text as a configuration file's device: is read (the printed equivalent must
     * load again; found by fuzz_config_env) */
    struct endpoint ep;
    char why[200];
    if (p->device[0] != '\0' && endpoint_parse(p->device, &ep, why, sizeof why) != 0)
        env_err(&e, "BMS_PORT", "%s", why);
    else if (p->device[0] != '\0' && ep.kind == ENDPOINT_MODBUS_TCP)
        env_err(&e, "BMS_PORT", CONFIG_MSG_MODBUS_TCP_PROTOCOL " (this mode reads a Daren pack)");
    int addr = 1;
    number(&e, "BMS_SLAVE_ID", "1", 1, 254, "an address", &addr);
    k->address = (uint8_t)addr;
    number(&e, "READ_INTERVAL", "30", 1, 86400, "a number of seconds", &p->interval_s);
    debug_mode(&e, &c->log_level);
    /* not a variable of the replaced program: where the history goes in this mode */
    text(&e, "BMSFLEET_DB", c->storage.path, c->storage.path, sizeof c->storage.path);

    /* DEVICE_ID as is in the replaced program's topics; as an id everywhere else */
    text(&e, "DEVICE_ID", "daren_bms", q->compat_device_id, sizeof q->compat_device_id);
    config_sanitize_id(value(&e, "DEVICE_ID", "daren_bms"), c->node_id, sizeof c->node_id);
    memcpy(c->node_name, c->node_id, sizeof c->node_name);
    memcpy(k->id, c->node_id, sizeof k->id);
    memcpy(k->name, c->node_id, sizeof k->name);
    c->nbanks = 1;
    snprintf(c->banks[0].id, sizeof c->banks[0].id, "bank");
    c->banks[0].soc_divergence_pct = 10;
    memcpy(c->banks[0].name, c->banks[0].id, sizeof c->banks[0].name);
    memcpy(k->bank, c->banks[0].id, sizeof k->bank);

    if (value(&e, "MQTT_HOST", NULL)) {
        q->enabled = 1;
        text(&e, "MQTT_HOST", NULL, q->host, sizeof q->host);
    }
    number(&e, "MQTT_PORT", "1883", 1, 65535, "a port number", &q->port);
    text(&e, "MQTT_USER", "", q->username, sizeof q->username);
    text(&e, "MQTT_PASSWORD", "", q->password, sizeof q->password);
    topic_prefix(&e, q);
    q->compat = 1;
    snprintf(q->client_id, sizeof q->client_id, "bmsfleet-%.54s", c->node_id);

    int rc = 0;
    if (e.errs->n) {
        free(c);
        rc = -EINVAL;
    } else {
        *out = c;
    }
    free(mine);
    return rc;
}

int config_load_auto(const char *path, struct config **out, struct config_errors *errs,
                     int *from_env)
{
    *from_env = path == NULL && config_env_present(NULL);
    if (*from_env)
        return config_from_env(NULL, out, errs);
    return config_load_file(path ? path : CONFIG_DEFAULT_PATH, out, errs);
}

void config_print_errors(FILE *f, int rc, const struct config_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        fprintf(f, "%s\n", errs->msg[i]);
    if (rc == -EINVAL) {
        /* at the cap, the last line is "too many errors, stopping here", not an error */
        int capped = errs->n == CONFIG_MAX_ERRORS;
        size_t n = capped ? errs->n - 1 : errs->n;
        fprintf(f, "%zu error%s%s\n", n, n == 1 ? "" : "s",
                capped ? ", and the rest of the file was not checked" : "");
    }
}
