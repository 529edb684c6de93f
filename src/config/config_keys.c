/* config_keys: the declarative key tables of the configuration (one per section: each key's
 * name, type, range, default and place in the model) and the model's defaults. The YAML walker
 * (config_yaml.c) applies the tables, the fleet checks (config.c) read them, the man page test
 * (tests/man_pages.sh) compares them with docs/man/bmsfleet.yaml.5. */
#include "config.h"
#include "config_internal.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIELD(T, f) .off = offsetof(T, f), .size = sizeof(((T *)0)->f)
#define KEYS(k)     .keys = (k), .nkeys = sizeof(k) / sizeof((k)[0])

/* ---- the key tables ---- */

static const char *const poll_names[] = {"per_address", "via_master", NULL};

static const struct config_key pack_keys[] = {
    {"address", K_ADDR, FIELD(struct config_pack, address)},
    {"id", K_ID, FIELD(struct config_pack, id)},      /* "<port name>-<address>" */
    {"name", K_STR, FIELD(struct config_pack, name)}, /* the id */
    {"bank", K_ID, FIELD(struct config_pack, bank)},  /* the first bank, or "bank" */
    {"serial", K_STR, FIELD(struct config_pack, serial), .def = ""},
    {"poll", K_CHOICE, FIELD(struct config_pack, poll), .names = poll_names}, /* the port's */
};
const struct config_section config_pack_section = {
    .id = S_PACK,
    .what = "pack",
    KEYS(pack_keys),
    .item_size = sizeof(struct config_pack),
    .count_off = offsetof(struct config_port, npacks),
    .cap = CONFIG_MAX_PACKS_PER_PORT,
    .where = " on one port",
    .empty_msg = "'packs' is empty: a port needs at least one pack"};

static const char *const mode_names[] = {"poll", "listen", NULL};

static const struct config_key port_keys[] = {
    {"name", K_ID, FIELD(struct config_port, name)}, /* "port<N>" */
    {"device", K_STR, FIELD(struct config_port, device), .flags = F_NONEMPTY},
    {"protocol", K_PROTO, FIELD(struct config_port, protocol), .def = "daren"},
    {"baud", K_BAUD, FIELD(struct config_port, baud), .def = "9600"},
    {"timeout_ms", K_INT, FIELD(struct config_port, timeout_ms), 10, 60000, "1000"},
    {"gap_ms", K_INT, FIELD(struct config_port, gap_ms), 0, 10000, "50"},
    {"interval_s", K_INT, FIELD(struct config_port, interval_s), 1, 86400, "30"},
    {"alarms_every", K_INT, FIELD(struct config_port, alarms_every), 1, 1000, "4"},
    {"rs485", K_BOOL, FIELD(struct config_port, rs485), .def = "false"},
    {"rs485_delay_before_us", K_INT, FIELD(struct config_port, rs485_delay_before_us), 0, 100000,
     "0"},
    {"rs485_delay_after_us", K_INT, FIELD(struct config_port, rs485_delay_after_us), 0, 100000,
     "0"},
    {"connect_timeout_ms", K_INT, FIELD(struct config_port, connect_timeout_ms), 100, 60000,
     "3000"},
    {"mode", K_CHOICE, FIELD(struct config_port, mode), .def = "poll", .names = mode_names},
    {"poll", K_CHOICE, FIELD(struct config_port, poll), .def = "per_address", .names = poll_names},
    {"master", K_ADDR, FIELD(struct config_port, master)}, /* the lowest pack address */
    {"packs", K_LIST, FIELD(struct config_port, packs), .sub = &config_pack_section},
};
const struct config_section config_port_section = {
    .id = S_PORT,
    .what = "port",
    KEYS(port_keys),
    .item_size = sizeof(struct config_port),
    .count_off = offsetof(struct config, nports),
    .cap = CONFIG_MAX_PORTS,
    .where = "",
    .empty_msg = "'ports' is empty: at least one port is needed"};

static const struct config_key bank_keys[] = {
    {"id", K_ID, FIELD(struct config_bank, id)},
    {"name", K_STR, FIELD(struct config_bank, name)}, /* the id */
    {"soc_divergence_pct", K_INT, FIELD(struct config_bank, soc_divergence_pct), 1, 100, "10"},
};
const struct config_section config_bank_section = {
    .id = S_BANK,
    .what = "bank",
    KEYS(bank_keys),
    .item_size = sizeof(struct config_bank),
    .count_off = offsetof(struct config, nbanks),
    .cap = CONFIG_MAX_BANKS,
    .where = "",
    .empty_msg = "'banks' is empty: declare at least one bank, or leave 'banks' out"};

static const struct config_key retention_keys[] = {
    {"raw_days", K_INT, FIELD(struct config_storage, raw_days), 1, 36500, "30"},
    {"minute_days", K_INT, FIELD(struct config_storage, minute_days), 1, 36500, "365"},
};
const struct config_section config_retention_section = {S_RETENTION, "storage.retention",
                                                        KEYS(retention_keys)};

static const struct config_key storage_keys[] = {
    {"path", K_STR, FIELD(struct config_storage, path), .def = "/var/lib/bmsfleet/history.db",
     .flags = F_NONEMPTY},
    {"retention", K_MAP, .sub = &config_retention_section},
    {"commit_interval_s", K_INT, FIELD(struct config_storage, commit_interval_s), 1, 3600, "5"},
    {"enabled", K_BOOL, FIELD(struct config_storage, enabled), .def = "true"},
    {"energy_max_gap_s", K_INT, FIELD(struct config_storage, energy_max_gap_s), 1, 86400, "300"},
};
const struct config_section config_storage_section = {S_STORAGE, "storage", KEYS(storage_keys)};

static const struct config_key tls_keys[] = {
    {"ca_file", K_STR, FIELD(struct config_mqtt, tls_ca_file), .def = ""},
    {"cert_file", K_STR, FIELD(struct config_mqtt, tls_cert_file), .def = ""},
    {"key_file", K_STR, FIELD(struct config_mqtt, tls_key_file), .def = ""},
    {"insecure", K_BOOL, FIELD(struct config_mqtt, tls_insecure), .def = "false"},
};
const struct config_section config_tls_section = {S_TLS, "mqtt.tls", KEYS(tls_keys)};

static const struct config_key mqtt_keys[] = {
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
    {"tls", K_MAP, .sub = &config_tls_section},
};
const struct config_section config_mqtt_section = {S_MQTT, "mqtt", KEYS(mqtt_keys)};

static const struct config_key http_keys[] = {
    {"listen", K_STR, FIELD(struct config_http, listen), .def = "127.0.0.1", .flags = F_NONEMPTY},
    {"port", K_INT, FIELD(struct config_http, port), 1, 65535, "8480"},
    {"user", K_ID, FIELD(struct config_http, user), .def = "bmsfleet"},
    {"password_file", K_STR, FIELD(struct config_http, password_file), .def = ""},
};
const struct config_section config_http_section = {S_HTTP, "http", KEYS(http_keys)};

static const struct config_key node_keys[] = {
    {"id", K_ID, FIELD(struct config, node_id)},      /* the host name */
    {"name", K_STR, FIELD(struct config, node_name)}, /* the id */
};
const struct config_section config_node_section = {S_NODE, "node", KEYS(node_keys)};

static const struct config_key log_keys[] = {
    {"level", K_LEVEL, FIELD(struct config, log_level), .def = "info"},
};
const struct config_section config_log_section = {S_LOG, "log", KEYS(log_keys)};

static const struct config_key root_keys[] = {
    {"node", K_MAP, .sub = &config_node_section},
    {"log", K_MAP, .sub = &config_log_section},
    {"ports", K_LIST, FIELD(struct config, ports), .sub = &config_port_section},
    {"banks", K_LIST, FIELD(struct config, banks), .sub = &config_bank_section},
    {"storage", K_MAP, .off = offsetof(struct config, storage), .sub = &config_storage_section},
    {"mqtt", K_MAP, .off = offsetof(struct config, mqtt), .sub = &config_mqtt_section},
    {"http", K_MAP, .off = offsetof(struct config, http), .sub = &config_http_section},
};
const struct config_section config_root_section = {S_ROOT, NULL, KEYS(root_keys)};

_Static_assert(sizeof port_keys / sizeof port_keys[0] <= CONFIG_MAX_KEYS, "CONFIG_MAX_KEYS");
_Static_assert(sizeof mqtt_keys / sizeof mqtt_keys[0] <= CONFIG_MAX_KEYS, "CONFIG_MAX_KEYS");

/* The table defaults of a section (and its nested sections) into base. */
void config_apply_defaults(const struct config_section *s, void *base)
{
    for (size_t i = 0; i < s->nkeys; i++) {
        const struct config_key *k = &s->keys[i];
        char why[8];
        if (k->type == K_MAP)
            config_apply_defaults(k->sub, (char *)base + k->off);
        else if (k->def && config_parse_scalar(k, k->def, base, why, sizeof why))
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
    config_apply_defaults(&config_root_section, c);
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
    config_apply_defaults(&config_port_section, p);
    snprintf(p->name, sizeof p->name, "port%zu", index + 1);
    for (size_t i = 0; i < CONFIG_MAX_PACKS_PER_PORT; i++)
        config_apply_defaults(&config_pack_section, &p->packs[i]);
}
