/* Part config (src/config/): the configuration, from the bytes of a YAML file (or the replaced
 * program's environment variables) to a checked struct config. It reaches only base (the log).
 *
 * config: the fleet model read from a YAML file.
 *
 * One declarative key table per section (config_keys.c) gives each key's name, type, range,
 * default and place in the model; one walker (config_yaml.c) applies the tables to the document
 * and parses the values; then this file's pass over the whole fleet checks what a single key
 * cannot (duplicates, banks, limits) and fills derived defaults. config_errors.c keeps the
 * errors: "file:line:col: message", all of them in one run, sorted by position. config_env.c
 * builds the same model from the replaced program's environment variables, config_yaml_out.c
 * prints a model back as YAML, config_files.c reads the files (the configuration, the secrets).
 * This file also has the entry points. */
#include "config.h"
#include "config_internal.h"
#include "endpoint.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILE (1024 * 1024) /* a configuration is a few kB */

/* ---- the whole fleet ---- */

static const struct config_key *row(const struct config_section *s, const char *name)
{
    int i = config_key_index(s, name);
    if (i < 0)
        abort(); /* a typo in this file */
    return &s->keys[i];
}

static int seen(const struct config_marks *m, const struct config_section *s, const char *key)
{
    return m->key[row(s, key) - s->keys].line != 0;
}

static int valid(const struct config_marks *m, const struct config_section *s, const char *key)
{
    return m->ok[row(s, key) - s->keys];
}

/* The value of a key when it was written, else the item holding it. */
static struct config_mark where(const struct config_marks *m, const struct config_section *s,
                                const char *key)
{
    ptrdiff_t i = row(s, key) - s->keys;
    return m->key[i].line ? m->val[i] : m->at;
}

static void copy_id(char *dst, const char *src)
{
    memset(dst, 0, CONFIG_ID_LEN);
    snprintf(dst, CONFIG_ID_LEN, "%s", src);
}

static void finish_banks(struct config_ctx *x, struct config *c)
{
    if (!seen(&x->sec[S_ROOT], &config_root_section, "banks")) {
        c->nbanks = 1; /* the implicit bank every pack goes to */
        copy_id(c->banks[0].id, "bank");
        copy_id(c->banks[0].name, "bank");
        c->banks[0].soc_divergence_pct = 10;
        return;
    }
    for (size_t i = 0; i < c->nbanks; i++) {
        struct config_bank *b = &c->banks[i];
        const struct config_marks *m = &x->bank[i];
        if (!seen(m, &config_bank_section, "id"))
            config_add_err(x, m->at, "bank has no id");
        if (!valid(m, &config_bank_section, "id"))
            continue;
        if (!seen(m, &config_bank_section, "name"))
            copy_id(b->name, b->id);
        for (size_t j = 0; j < i; j++) {
            if (valid(&x->bank[j], &config_bank_section, "id") && strcmp(c->banks[j].id, b->id) == 0) {
                config_add_err(x, where(m, &config_bank_section, "id"),
                               "bank id '%s' is already used at line %d", b->id,
                               where(&x->bank[j], &config_bank_section, "id").line);
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
static void finish_pack(struct config_ctx *x, struct config *c, size_t pi, size_t ki)
{
    const struct config_section *s = &config_pack_section;
    struct config_port *p = &c->ports[pi];
    struct config_pack *k = &p->packs[ki];
    const struct config_marks *m = &x->pack[pi][ki];
    k->line = m->at.line;
    int has_addr = valid(m, s, "address");
    if (!seen(m, s, "address")) {
        if (valid(m, s, "id"))
            config_add_err(x, m->at, "pack '%s' has no address", k->id);
        else
            config_add_err(x, m->at, "pack has no address");
    } else if (has_addr && p->protocol == CONFIG_PROTO_MODBUS &&
               (k->address < 1 || k->address > 247)) {
        config_add_err(x, where(m, s, "address"),
                       "address %u is not a Modbus slave address (1 to 247)", k->address);
    }
    if (!seen(m, s, "id") && has_addr) {
        char id[CONFIG_ID_LEN + 8];
        snprintf(id, sizeof id, "%s-%u", p->name, k->address);
        if (strlen(id) >= CONFIG_ID_LEN)
            config_add_err(x, m->at,
                           "pack id '%s' (port name and address) is longer than %d characters: "
                           "give the pack an id",
                           id, CONFIG_ID_LEN - 1);
        else
            copy_id(k->id, id);
    }
    if (!seen(m, s, "name"))
        copy_id(k->name, k->id);
    if (!seen(m, s, "poll"))
        k->poll = p->poll;
    if (!seen(m, s, "bank")) {
        copy_id(k->bank, c->banks[0].id);
    } else if (valid(m, s, "bank") && !find_bank(c, k->bank)) {
        if (!seen(&x->sec[S_ROOT], &config_root_section, "banks")) {
            config_add_err(x, where(m, s, "bank"),
                           "bank '%s' is not declared: add a 'banks' section", k->bank);
            return;
        }
        const char *best = NULL;
        size_t best_d = SIZE_MAX;
        for (size_t b = 0; b < c->nbanks; b++)
            config_consider(k->bank, c->banks[b].id, &best, &best_d);
        config_add_err(x, where(m, s, "bank"), "bank '%s' is not declared in 'banks'%s%s%s",
                       k->bank, best ? "; did you mean '" : "", best ? best : "", best ? "'?" : "");
    }
}

/* Pack k of port p against every pack before it: addresses on one bus, ids in the fleet. */
/* Home Assistant ids are lower case with '_': ids that differ only there would be one entity. */
static int same_entity_id(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a == '-' ? '_' : (char)tolower((unsigned char)*a);
        char y = *b == '-' ? '_' : (char)tolower((unsigned char)*b);
        if (x != y)
            return 0;
    }
    return *a == *b;
}

static void check_pack_dups(struct config_ctx *x, const struct config *c, size_t pi, size_t ki)
{
    const struct config_section *s = &config_pack_section;
    const struct config_pack *k = &c->ports[pi].packs[ki];
    const struct config_marks *m = &x->pack[pi][ki];
    for (size_t j = 0; j < ki; j++) {
        const struct config_pack *o = &c->ports[pi].packs[j];
        if (valid(m, s, "address") && valid(&x->pack[pi][j], s, "address") &&
            o->address == k->address) {
            config_add_err(x, where(m, s, "address"),
                           "address 0x%02X is already used on port '%s' by pack '%s' at line %d",
                           k->address, c->ports[pi].name, o->id, o->line);
            break;
        }
    }
    if (!k->id[0])
        return;
    for (size_t q = 0; q <= pi; q++) {
        for (size_t j = 0; j < (q == pi ? ki : c->ports[q].npacks); j++) {
            const char *other = c->ports[q].packs[j].id;
            if (strcmp(other, k->id) == 0) {
                config_add_err(x, where(m, s, "id"), "pack id '%s' is already used at line %d",
                               k->id, where(&x->pack[q][j], s, "id").line);
                return;
            }
            if (same_entity_id(other, k->id)) {
                config_add_err(x, where(m, s, "id"),
                               "pack id '%s' differs from '%s' at line %d only in case or '-'/'_'"
                               ": Home Assistant would see one pack",
                               k->id, other, where(&x->pack[q][j], s, "id").line);
                return;
            }
        }
    }
}

/* Valid, or the default "port<N>"; not a rejected value. */
static int name_usable(const struct config_marks *m)
{
    return !seen(m, &config_port_section, "name") || valid(m, &config_port_section, "name");
}

/* What a port's device names (a tty, a serial server, a Modbus TCP gateway) and how it is
 * wired (mode) against the keys that only fit some of them. */
static void check_wiring(struct config_ctx *x, struct config *c, size_t i)
{
    const struct config_section *s = &config_port_section;
    struct config_port *p = &c->ports[i];
    const struct config_marks *m = &x->port[i];
    struct endpoint ep;
    char why[200];
    if (!valid(m, s, "device"))
        return;
    if (endpoint_parse(p->device, &ep, why, sizeof why) != 0) {
        config_add_err(x, where(m, s, "device"), "%s", why);
        return;
    }
    if (ep.kind != ENDPOINT_SERIAL && p->rs485 && valid(m, s, "rs485"))
        config_add_err(x, where(m, s, "rs485"),
                       "rs485 is the kernel mode of a local adapter: the serial server behind "
                       "%s drives its own transceiver (leave rs485 out)",
                       p->device);
    if (ep.kind == ENDPOINT_MODBUS_TCP && p->protocol != CONFIG_PROTO_MODBUS &&
        valid(m, s, "protocol"))
        config_add_err(x, where(m, s, "protocol"), CONFIG_MSG_MODBUS_TCP_PROTOCOL);
    if (ep.kind == ENDPOINT_MODBUS_TCP && p->mode == CONFIG_MODE_LISTEN && valid(m, s, "mode"))
        config_add_err(x, where(m, s, "mode"),
                       "mode listen reads the bus bytes: a Modbus TCP gateway only answers its "
                       "own client (use tcp://HOST:PORT in the server's transparent mode)");
    if (ep.kind == ENDPOINT_SERIAL && seen(m, s, "connect_timeout_ms"))
        config_add_warn(x, c, where(m, s, "connect_timeout_ms"),
                        "connect_timeout_ms applies to tcp:// and modbus-tcp:// devices only; "
                        "%s is a serial device",
                        p->device);
}

/* Packs asked through the master pack: a protocol whose requests name the target (PACE,
 * Pylontech), a port that polls, a master among the port's packs (default the lowest address:
 * the chain's first pack, whose all-packs answer lists the packs from its own address up). */
static void check_relay(struct config_ctx *x, struct config *c, size_t i)
{
    const struct config_section *s = &config_port_section, *ks = &config_pack_section;
    struct config_port *p = &c->ports[i];
    const struct config_marks *m = &x->port[i];
    struct config_mark at = where(m, s, "poll");
    size_t via = 0;
    for (size_t k = 0; k < p->npacks; k++) {
        if (p->packs[k].poll != CONFIG_POLL_VIA_MASTER)
            continue;
        if (via++ == 0 && seen(&x->pack[i][k], ks, "poll"))
            at = where(&x->pack[i][k], ks, "poll");
    }
    int have_master = valid(m, s, "master");
    if (via == 0) {
        if (have_master)
            config_add_warn(x, c, where(m, s, "master"),
                            "master is only used with poll: via_master; port '%s' asks each pack "
                            "at its own address",
                            p->name);
        return;
    }
    if (p->protocol != CONFIG_PROTO_PACE && p->protocol != CONFIG_PROTO_PYLONTECH) {
        config_add_err(x, at,
                       "poll: via_master needs a protocol whose requests name the target pack "
                       "(pace or pylontech); %s packs are asked at their own address",
                       config_protocol_name(p->protocol));
        return;
    }
    if (p->mode == CONFIG_MODE_LISTEN) {
        config_add_err(x, at, "poll: via_master is for a port that polls; in mode listen the "
                              "other master's requests decide what is heard");
        return;
    }
    if (!have_master) {
        p->master = p->npacks ? p->packs[0].address : 0;
        for (size_t k = 1; k < p->npacks; k++)
            if (p->packs[k].address < p->master)
                p->master = p->packs[k].address;
        return;
    }
    for (size_t k = 0; k < p->npacks; k++)
        if (p->packs[k].address == p->master)
            return;
    config_add_err(x, where(m, s, "master"),
                   "master 0x%02X is not one of port '%s''s packs: the master pack is listed "
                   "with the others",
                   p->master, p->name);
}

static void finish_ports(struct config_ctx *x, struct config *c)
{
    const struct config_section *s = &config_port_section;
    if (!seen(&x->sec[S_ROOT], &config_root_section, "ports"))
        config_add_err(x, (struct config_mark){0, 0},
                       "no 'ports' section: at least one port is needed");
    for (size_t i = 0; i < c->nports; i++) {
        struct config_port *p = &c->ports[i];
        const struct config_marks *m = &x->port[i];
        p->line = m->at.line;
        if (!seen(m, s, "device"))
            config_add_err(x, m->at, "port '%s' has no device", p->name);
        if (!seen(m, s, "packs"))
            config_add_err(x, m->at, "port '%s' has no packs", p->name);
        for (size_t j = 0; j < i; j++) {
            const struct config_marks *o = &x->port[j];
            if (name_usable(o) && name_usable(m) && strcmp(c->ports[j].name, p->name) == 0) {
                config_add_err(x, where(m, s, "name"), "port name '%s' is already used at line %d",
                               p->name, where(o, s, "name").line);
            }
            if (valid(m, s, "device") && valid(o, s, "device") &&
                strcmp(c->ports[j].device, p->device) == 0) {
                config_add_err(x, where(m, s, "device"),
                               "device %s is already used by port '%s' at line %d", p->device,
                               c->ports[j].name, where(o, s, "device").line);
            }
        }
        check_wiring(x, c, i);
        for (size_t k = 0; k < p->npacks; k++)
            finish_pack(x, c, i, k);
        check_relay(x, c, i);
    }
    for (size_t i = 0; i < c->nports; i++) {
        for (size_t k = 0; k < c->ports[i].npacks; k++)
            check_pack_dups(x, c, i, k);
    }
}

static void finish_mqtt(struct config_ctx *x, struct config *c)
{
    const struct config_section *s = &config_mqtt_section;
    const struct config_marks *m = &x->sec[S_MQTT];
    struct config_mqtt *q = &c->mqtt;
    if (!seen(m, s, "client_id"))
        snprintf(q->client_id, sizeof q->client_id, "bmsfleet-%.54s", c->node_id);
    if (!seen(m, s, "device_id"))
        copy_id(q->compat_device_id, q->compat ? c->node_id : "");
    if (!seen(m, s, "topic_prefix"))
        copy_id(q->compat_prefix, q->compat ? q->discovery_prefix : "");
    if (!seen(&x->sec[S_ROOT], &config_root_section, "mqtt"))
        return;
    q->enabled = 1;
    if (seen(m, s, "tls") && !seen(m, s, "port"))
        q->port = 8883;
    const struct config_marks *t = &x->sec[S_TLS];
    if (q->tls_cert_file[0] && !q->tls_key_file[0])
        config_add_err(x, where(t, &config_tls_section, "cert_file"),
                       "tls.cert_file needs tls.key_file too");
    if (q->tls_key_file[0] && !q->tls_cert_file[0])
        config_add_err(x, where(t, &config_tls_section, "key_file"),
                       "tls.key_file needs tls.cert_file too");
    const char *env = getenv("BMSFLEET_MQTT_PASSWORD");
    const char *var = "BMSFLEET_MQTT_PASSWORD";
    if (env == NULL || *env == '\0') {
        env = getenv("MQTT_PASSWORD");
        var = "MQTT_PASSWORD";
    }
    if (env && *env) {
        if (strlen(env) >= sizeof q->password)
            config_add_err(x, (struct config_mark){0, 0}, "%s is too long: at most %zu characters",
                           var, sizeof q->password - 1);
        else
            snprintf(q->password, sizeof q->password, "%s", env);
    } else if (q->password_file[0]) {
        if (valid(m, s, "password_file"))
            config_read_password(x, c, "password_file", q->password_file, where(m, s, "password_file"),
                          0, q->password, sizeof q->password);
    } else {
        config_read_credential(x, c);
    }
}

/* http: an address to listen on, the history to read, and the password of its user. */
static void finish_http(struct config_ctx *x, struct config *c)
{
    const struct config_section *s = &config_http_section;
    const struct config_marks *m = &x->sec[S_HTTP];
    struct config_http *h = &c->http;
    if (!seen(&x->sec[S_ROOT], &config_root_section, "http"))
        return;
    h->enabled = 1;
    unsigned char addr[sizeof(struct in6_addr)];
    if (valid(m, s, "listen") && inet_pton(AF_INET, h->listen, addr) != 1 &&
        inet_pton(AF_INET6, h->listen, addr) != 1)
        config_add_err(x, where(m, s, "listen"),
                       "http.listen must be an IPv4 or IPv6 address (127.0.0.1, 0.0.0.0, ::1), "
                       "not '%s'",
                       h->listen);
    if (seen(m, s, "user") && !h->password_file[0])
        config_add_err(x, where(m, s, "user"), "http.user needs http.password_file too");
    if (h->password_file[0] && valid(m, s, "password_file"))
        config_read_password(x, c, "http.password_file", h->password_file,
                      where(m, s, "password_file"), 0, h->password, sizeof h->password);
    if (!c->storage.enabled)
        config_add_err(x, where(&x->sec[S_ROOT], &config_root_section, "http"),
                       "http shows the history: it needs storage.enabled: true");
}

static void finish(struct config_ctx *x, struct config *c)
{
    if (!seen(&x->sec[S_NODE], &config_node_section, "name"))
        copy_id(c->node_name, c->node_id);
    finish_banks(x, c);
    finish_ports(x, c);
    finish_mqtt(x, c);
    finish_http(x, c);
}

/* ---- entry points ---- */

static struct config_ctx *ctx_new(const char *name, struct config_errors *errs)
{
    struct config_ctx *x = calloc(1, sizeof *x);
    if (x) {
        x->name = name;
        x->errs = errs;
        errs->n = 0;
    }
    return x;
}

/* One load from a buffer: the common end of config_load_file and config_load_string. */
static int load(const char *name, const char *buf, size_t len, struct config **out,
                struct config_errors *errs)
{
    struct config *c = calloc(1, sizeof *c);
    struct config_ctx *x = ctx_new(name, errs);
    if (c == NULL || x == NULL) {
        free(c);
        free(x);
        return -ENOMEM;
    }
    config_init(c);
    snprintf(c->source, sizeof c->source, "%s", name);
    if (config_parse_yaml(x, &config_root_section, c, buf, len) == 0)
        finish(x, c); /* also after errors: the fleet checks find more */
    config_sort_errors(x);
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
    size_t len = 0;
    mode_t mode;
    char *buf = malloc(MAX_FILE + 1);
    int rc = buf ? config_read_regular(path, buf, MAX_FILE + 1, &len, &mode) : -ENOMEM;
    if (rc == 0 && len > MAX_FILE)
        rc = -EFBIG;
    if (rc == 0) {
        rc = load(path, buf, len, out, errs);
    } else {
        snprintf(errs->msg[0], sizeof errs->msg[0], "%s: cannot open: %s", path,
                 rc == -EFBIG ? "larger than 1 MiB: not a configuration" : config_read_error(rc));
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
