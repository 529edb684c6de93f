/* config_yaml_out: the model written back as YAML (re-loadable by config_load_*; what `bmsfleet
 * check` prints in the environment mode, so users can move to a file) and the short summary
 * `bmsfleet check` prints. Every value is written, defaults included; secrets never are. */
#include <ctype.h>
#include <string.h>

#include "config.h"
#include "config_internal.h"
#include "endpoint.h"

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static const char *level_name(enum log_level l)
{
    size_t i = (size_t)l;
    return i < sizeof level_names / sizeof level_names[0] ? level_names[i] : "info";
}

/* Plain when it cannot be read as anything else (a null, a flow indicator, a comment). */
static int plain_ok(const char *s)
{
    if (!*s || s[0] == '-' || strcmp(s, "~") == 0 || strcasecmp(s, "null") == 0)
        return 0;
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && !strchr("_./-", *s))
            return 0;
    }
    return 1;
}

int config_utf8_next(const unsigned char *s, uint32_t *cp)
{
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    int n = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3
                          : (s[0] & 0xF8) == 0xF0 ? 4 : -1;
    if (n < 0)
        return -1;
    uint32_t c = n == 1 ? s[0] : s[0] & (0x7Fu >> n);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) /* also stops at the terminating NUL */
            return -1;
        c = c << 6 | (s[i] & 0x3Fu);
    }
    if (c < min[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return -1;
    *cp = c;
    return n;
}

/* What stands in a double-quoted scalar as it is: YAML's "printable" set less the quote, the
 * backslash and the line breaks (NEL, LS, PS: a reader folds them into a space); everything
 * else is escaped. */
static int yaml_printable(uint32_t c)
{
    return (c >= 0x20 && c <= 0x7E && c != '"' && c != '\\') ||
           (c >= 0xA0 && c <= 0xD7FF && c != 0x2028 && c != 0x2029) ||
           (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
}

/* Plain when that reads back as the same string, else double-quoted with YAML's escapes, so
 * the output always loads again. Text is valid UTF-8 here (libyaml checks files, config_env
 * the environment); a byte that is not is written as U+FFFD rather than making the output
 * unreadable. */
static void put_str(FILE *f, const char *s)
{
    if (plain_ok(s)) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t c;
        int n = config_utf8_next(p, &c);
        if (n < 0) {
            c = 0xFFFD;
            n = 1;
        }
        if (yaml_printable(c))
            fwrite(p, 1, (size_t)n, f);
        else if (c == '"' || c == '\\')
            fprintf(f, "\\%c", (char)c);
        else if (c < 0x100)
            fprintf(f, "\\x%02X", (unsigned)c);
        else if (c < 0x10000)
            fprintf(f, "\\u%04X", (unsigned)c);
        else
            fprintf(f, "\\U%08X", (unsigned)c);
        p += n;
    }
    fputc('"', f);
}

static void kv_str(FILE *f, const char *indent, const char *key, const char *v)
{
    fprintf(f, "%s%s: ", indent, key);
    put_str(f, v);
    fputc('\n', f);
}

static void kv_int(FILE *f, const char *indent, const char *key, int v)
{
    fprintf(f, "%s%s: %d\n", indent, key, v);
}

static void kv_bool(FILE *f, const char *indent, const char *key, int v)
{
    fprintf(f, "%s%s: %s\n", indent, key, v ? "true" : "false");
}

static void write_header(FILE *f, const struct config *c)
{
    if (strcmp(c->source, "environment") != 0) {
        fprintf(f, "# bmsfleet configuration, written from %s\n", c->source);
        return;
    }
    fputs("# bmsfleet configuration generated from the environment of the replaced program.\n"
          "# Save it as /etc/bmsfleet/config.yaml (or pass -c FILE) and drop the variables:\n"
          "#   BMS_PORT          -> ports[0].device\n"
          "#   BMS_SLAVE_ID      -> ports[0].packs[0].address\n"
          "#   READ_INTERVAL     -> ports[0].interval_s\n"
          "#   DEVICE_ID         -> node.id, ports[0].packs[0].id, mqtt.device_id\n"
          "#   DEBUG_MODE        -> log.level (debug)\n"
          "#   MQTT_HOST         -> mqtt.host (the mqtt section exists only when it is set)\n"
          "#   MQTT_PORT         -> mqtt.port\n"
          "#   MQTT_USER         -> mqtt.username\n"
          "#   MQTT_PASSWORD     -> not written here: keep it in the environment, or put it\n"
          "#                        in a file named by mqtt.password_file\n"
          "#   MQTT_TOPIC_PREFIX -> mqtt.discovery_prefix, mqtt.topic_prefix\n"
          "# mqtt.compat keeps the replaced program's topics, so existing Home Assistant\n"
          "# entities keep working.\n",
          f);
}

static void write_ports(FILE *f, const struct config *c)
{
    fputs("ports:\n", f);
    for (size_t i = 0; i < c->nports; i++) {
        const struct config_port *p = &c->ports[i];
        kv_str(f, "  - ", "name", p->name);
        kv_str(f, "    ", "device", p->device);
        kv_str(f, "    ", "protocol", config_protocol_name(p->protocol));
        kv_int(f, "    ", "baud", p->baud);
        kv_int(f, "    ", "timeout_ms", p->timeout_ms);
        kv_int(f, "    ", "gap_ms", p->gap_ms);
        kv_int(f, "    ", "interval_s", p->interval_s);
        kv_int(f, "    ", "alarms_every", p->alarms_every);
        kv_bool(f, "    ", "rs485", p->rs485);
        kv_int(f, "    ", "rs485_delay_before_us", p->rs485_delay_before_us);
        kv_int(f, "    ", "rs485_delay_after_us", p->rs485_delay_after_us);
        if (endpoint_is_network(p->device)) /* a serial device would get a warning */
            kv_int(f, "    ", "connect_timeout_ms", p->connect_timeout_ms);
        kv_str(f, "    ", "mode", p->mode == CONFIG_MODE_LISTEN ? "listen" : "poll");
        kv_str(f, "    ", "poll", p->poll == CONFIG_POLL_VIA_MASTER ? "via_master" : "per_address");
        int via = 0;
        for (size_t j = 0; j < p->npacks; j++)
            via |= p->packs[j].poll == CONFIG_POLL_VIA_MASTER;
        if (via)
            fprintf(f, "    master: 0x%02X\n", p->master);
        fputs("    packs:\n", f);
        for (size_t j = 0; j < p->npacks; j++) {
            const struct config_pack *k = &p->packs[j];
            fprintf(f, "      - { address: 0x%02X, id: ", k->address);
            put_str(f, k->id);
            fputs(", name: ", f);
            put_str(f, k->name);
            fputs(", bank: ", f);
            put_str(f, k->bank);
            if (k->serial[0]) {
                fputs(", serial: ", f);
                put_str(f, k->serial);
            }
            if (k->poll != p->poll)
                fputs(k->poll == CONFIG_POLL_VIA_MASTER ? ", poll: via_master"
                                                        : ", poll: per_address",
                      f);
            fputs(" }\n", f);
        }
    }
}

static void write_mqtt(FILE *f, const struct config_mqtt *q)
{
    if (!q->enabled) {
        fputs("# mqtt is off: an mqtt section turns it on\n", f);
        return;
    }
    fputs("mqtt:\n", f);
    kv_str(f, "  ", "host", q->host);
    kv_int(f, "  ", "port", q->port);
    kv_str(f, "  ", "client_id", q->client_id);
    if (q->username[0])
        kv_str(f, "  ", "username", q->username);
    if (q->password_file[0])
        kv_str(f, "  ", "password_file", q->password_file);
    else if (q->password[0])
        fputs("  # password: not written here; keep MQTT_PASSWORD in the environment, or put\n"
              "  # it in a file and name the file with password_file\n",
              f);
    kv_str(f, "  ", "base_topic", q->base_topic);
    kv_str(f, "  ", "discovery_prefix", q->discovery_prefix);
    kv_int(f, "  ", "keepalive_s", q->keepalive_s);
    kv_int(f, "  ", "qos", q->qos);
    kv_bool(f, "  ", "compat", q->compat);
    if (q->compat_device_id[0])
        kv_str(f, "  ", "device_id", q->compat_device_id);
    if (q->compat_prefix[0])
        kv_str(f, "  ", "topic_prefix", q->compat_prefix);
    if (q->tls_ca_file[0] || q->tls_cert_file[0] || q->tls_key_file[0] || q->tls_insecure) {
        fputs("  tls:\n", f);
        if (q->tls_ca_file[0])
            kv_str(f, "    ", "ca_file", q->tls_ca_file);
        if (q->tls_cert_file[0])
            kv_str(f, "    ", "cert_file", q->tls_cert_file);
        if (q->tls_key_file[0])
            kv_str(f, "    ", "key_file", q->tls_key_file);
        kv_bool(f, "    ", "insecure", q->tls_insecure);
    }
}

static void write_http(FILE *f, const struct config_http *h)
{
    if (!h->enabled)
        return;
    fputs("http:\n", f);
    kv_str(f, "  ", "listen", h->listen);
    kv_int(f, "  ", "port", h->port);
    if (h->password_file[0]) {
        kv_str(f, "  ", "user", h->user);
        kv_str(f, "  ", "password_file", h->password_file);
    }
}

void config_write_yaml(FILE *f, const struct config *c)
{
    write_header(f, c);
    fputs("node:\n", f);
    kv_str(f, "  ", "id", c->node_id);
    kv_str(f, "  ", "name", c->node_name);
    fputs("log:\n", f);
    kv_str(f, "  ", "level", level_name(c->log_level));
    write_ports(f, c);
    fputs("banks:\n", f);
    for (size_t i = 0; i < c->nbanks; i++) {
        kv_str(f, "  - ", "id", c->banks[i].id);
        kv_str(f, "    ", "name", c->banks[i].name);
        kv_int(f, "    ", "soc_divergence_pct", c->banks[i].soc_divergence_pct);
    }
    fputs("storage:\n", f);
    kv_str(f, "  ", "path", c->storage.path);
    fputs("  retention:\n", f);
    kv_int(f, "    ", "raw_days", c->storage.raw_days);
    kv_int(f, "    ", "minute_days", c->storage.minute_days);
    kv_int(f, "  ", "commit_interval_s", c->storage.commit_interval_s);
    kv_bool(f, "  ", "enabled", c->storage.enabled);
    kv_int(f, "  ", "energy_max_gap_s", c->storage.energy_max_gap_s);
    write_mqtt(f, &c->mqtt);
    write_http(f, &c->http);
}

static const char *plural(size_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

void config_write_summary(FILE *f, const struct config *c)
{
    size_t npacks = 0;
    for (size_t i = 0; i < c->nports; i++)
        npacks += c->ports[i].npacks;
    fprintf(f, "%zu %s, %zu %s, %zu %s\n", c->nports, plural(c->nports, "port", "ports"), npacks,
            plural(npacks, "pack", "packs"), c->nbanks, plural(c->nbanks, "bank", "banks"));
    for (size_t i = 0; i < c->nports; i++) {
        const struct config_port *p = &c->ports[i];
        fprintf(f, "  %s  %s  %s %d baud%s, %s %d s:", p->name, p->device,
                config_protocol_name(p->protocol), p->baud, p->rs485 ? " RS485" : "",
                p->mode == CONFIG_MODE_LISTEN ? "listening, expected every" : "every",
                p->interval_s);
        for (size_t j = 0; j < p->npacks; j++)
            fprintf(f, "%s %s (0x%02X)%s", j ? "," : "", p->packs[j].id, p->packs[j].address,
                    p->packs[j].poll == CONFIG_POLL_VIA_MASTER && p->packs[j].address != p->master
                        ? " via master"
                        : "");
        fputc('\n', f);
    }
    for (size_t b = 0; b < c->nbanks; b++) {
        fprintf(f, "  bank %s", c->banks[b].id);
        if (strcmp(c->banks[b].name, c->banks[b].id) != 0)
            fprintf(f, " (%s)", c->banks[b].name);
        const char *sep = ":";
        for (size_t i = 0; i < c->nports; i++) {
            for (size_t j = 0; j < c->ports[i].npacks; j++) {
                if (strcmp(c->ports[i].packs[j].bank, c->banks[b].id) == 0) {
                    fprintf(f, "%s %s", sep, c->ports[i].packs[j].id);
                    sep = ",";
                }
            }
        }
        fputc('\n', f);
    }
    fprintf(f, "  node %s, log level %s, storage %s\n", c->node_id, level_name(c->log_level),
            c->storage.path);
    const struct config_mqtt *q = &c->mqtt;
    if (!q->enabled) {
        fputs("  mqtt off\n", f);
    } else {
        fprintf(f, "  mqtt %s:%d%s%s, base topic %s, discovery %s", q->host, q->port,
                q->username[0] ? " as " : "", q->username, q->base_topic, q->discovery_prefix);
        if (q->compat)
            fprintf(f, ", replaced program's topics for %s", q->compat_device_id);
        fputc('\n', f);
    }
    const struct config_http *h = &c->http;
    if (h->enabled) {
        int v6 = strchr(h->listen, ':') != NULL;
        fprintf(f, "  http %s%s%s:%d%s%s\n", v6 ? "[" : "", h->listen, v6 ? "]" : "", h->port,
                h->password[0] ? ", basic authentication as " : "",
                h->password[0] ? h->user : "");
    }
}
