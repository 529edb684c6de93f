/* config: the fleet model (ports → packs, banks, storage, mqtt) read from YAML with libyaml,
 * or built from the environment variables of the program bmsfleet replaces.
 *
 * Every error is reported as "file:line:col: message", all of them in one run. The model is
 * plain fixed-size data: no pointers into the parser, freed with one config_free(). */
#ifndef BMSFLEET_CONFIG_H
#define BMSFLEET_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "log.h"

#define CONFIG_MAX_PORTS 16
#define CONFIG_MAX_PACKS_PER_PORT 32
#define CONFIG_MAX_BANKS 16
#define CONFIG_ID_LEN 64
#define CONFIG_PATH_LEN 256
#define CONFIG_MAX_ERRORS 100
#define CONFIG_MAX_WARNINGS 8

enum config_protocol {
    CONFIG_PROTO_DAREN = 0,
    CONFIG_PROTO_PACE,
    CONFIG_PROTO_PYLONTECH,
    CONFIG_PROTO_SEPLOS,
    CONFIG_PROTO_MODBUS,
};

/* How a port reaches its packs. */
enum config_mode {
    CONFIG_MODE_POLL = 0, /* the daemon is the bus master: it asks, the packs answer */
    CONFIG_MODE_LISTEN,   /* another master polls: the daemon only reads, never writes */
};

/* How a pack is asked (mode poll). */
enum config_poll {
    CONFIG_POLL_PER_ADDRESS = 0, /* a request to the pack's own address */
    CONFIG_POLL_VIA_MASTER,      /* through the master pack: all packs in one answer where the
                                  * protocol has it, else relayed to the pack's address */
};

struct config_pack {
    uint8_t address;
    char id[CONFIG_ID_LEN];     /* unique across the fleet; default "<port>-<address>" */
    char name[CONFIG_ID_LEN];   /* for people; default the id */
    char bank[CONFIG_ID_LEN];   /* bank id; default the first bank, or "bank" */
    char serial[CONFIG_ID_LEN]; /* expected serial number, "" = not checked */
    enum config_poll poll;      /* default the port's */
    int line;                   /* where it was declared (0 from the environment) */
};

struct config_port {
    char name[CONFIG_ID_LEN];
    char device[CONFIG_PATH_LEN];
    enum config_protocol protocol;
    int baud;          /* default 9600 */
    int timeout_ms;    /* default 1000 */
    int gap_ms;        /* default 50 */
    int interval_s;    /* default 30 */
    int alarms_every;  /* Service 42: the 0x44 alarm read every Nth poll (and on a change); default 4 */
    int rs485;         /* default 0 */
    int rs485_delay_before_us, rs485_delay_after_us;
    int connect_timeout_ms; /* tcp:// and modbus-tcp:// devices; default 3000 */
    enum config_mode mode;  /* default poll */
    enum config_poll poll;  /* default per_address */
    uint8_t master;         /* the master pack's address (via_master); default the lowest */
    struct config_pack packs[CONFIG_MAX_PACKS_PER_PORT];
    size_t npacks;
    int line;
};

struct config_bank {
    char id[CONFIG_ID_LEN];
    char name[CONFIG_ID_LEN];
    int soc_divergence_pct; /* warn when pack SOCs spread more than this; default 10 */
};

struct config_storage {
    char path[CONFIG_PATH_LEN]; /* default /var/lib/bmsfleet/history.db */
    int raw_days;               /* default 30 */
    int minute_days;            /* default 365 */
    int commit_interval_s;      /* default 5 */
    int enabled;                /* default 1 */
    int energy_max_gap_s;       /* gaps longer than this are not integrated; default 300 */
};

struct config_mqtt {
    int enabled;                          /* 1 when the section or MQTT_HOST is present */
    char host[CONFIG_PATH_LEN];           /* default 127.0.0.1 */
    int port;                             /* default 1883 (8883 with TLS) */
    char client_id[CONFIG_ID_LEN];        /* default "bmsfleet-<node id>" */
    char username[CONFIG_ID_LEN];
    char password[128];                   /* from MQTT_PASSWORD or password_file, never YAML */
    char password_file[CONFIG_PATH_LEN];
    char base_topic[CONFIG_ID_LEN];       /* default "bmsfleet" */
    char discovery_prefix[CONFIG_ID_LEN]; /* default "homeassistant" */
    int keepalive_s;                      /* default 60 */
    int qos;                              /* default 1 */
    int compat;                           /* replaced program's topics; default 0 (1 in env mode) */
    char compat_device_id[CONFIG_ID_LEN]; /* DEVICE_ID */
    char compat_prefix[CONFIG_ID_LEN];    /* MQTT_TOPIC_PREFIX */
    char tls_ca_file[CONFIG_PATH_LEN];
    char tls_cert_file[CONFIG_PATH_LEN];
    char tls_key_file[CONFIG_PATH_LEN];
    int tls_insecure;                     /* skip verification: only when asked explicitly */
};

/* The HTTP server (src/http/): off unless the section is there. Read-only pages of the history;
 * basic authentication when password_file names a file (same rules as mqtt.password_file). */
struct config_http {
    int enabled;                     /* 1 when the section is present */
    char listen[CONFIG_ID_LEN];      /* an IPv4 or IPv6 address; default 127.0.0.1 */
    int port;                        /* default 8480 */
    char user[CONFIG_ID_LEN];        /* the basic-auth user; default "bmsfleet" */
    char password_file[CONFIG_PATH_LEN];
    char password[128];              /* from password_file, never YAML; "" = no authentication */
};

struct config {
    char source[CONFIG_PATH_LEN]; /* the file, or "environment" */
    char node_id[CONFIG_ID_LEN];  /* default the host name */
    char node_name[CONFIG_ID_LEN];
    enum log_level log_level;     /* default info */
    struct config_port ports[CONFIG_MAX_PORTS];
    size_t nports;
    struct config_bank banks[CONFIG_MAX_BANKS];
    size_t nbanks;
    struct config_storage storage;
    struct config_mqtt mqtt;
    struct config_http http;
    /* What is valid but unwise (a password file others can read), "file:line:col: warning:
     * message": `check` prints them, `run` logs them at warning level. nwarnings counts them
     * all; the first CONFIG_MAX_WARNINGS are kept. */
    char warnings[CONFIG_MAX_WARNINGS][320];
    size_t nwarnings;
};

/* Errors of one load, each "file:line:col: message". */
struct config_errors {
    size_t n;
    char msg[CONFIG_MAX_ERRORS][320];
};

/* Reads and validates a YAML file. On success *out is a new config (config_free) and 0 is
 * returned; otherwise errs holds every error found and -EINVAL (or -errno when the file
 * cannot be read, also reported in errs) is returned. */
int config_load_file(const char *path, struct config **out, struct config_errors *errs);
/* Same from a string (tests); `name` is used in messages. */
int config_load_string(const char *name, const char *yaml, struct config **out,
                       struct config_errors *errs);
/* The replaced program's environment (BMS_PORT, BMS_SLAVE_ID, READ_INTERVAL, MQTT_HOST,
 * MQTT_PORT, MQTT_USER, MQTT_PASSWORD, MQTT_TOPIC_PREFIX, DEVICE_ID, DEBUG_MODE) as one port
 * with one Daren pack. getenv_fn lets tests pass their own environment (NULL = getenv).
 * Errors name the variable: "environment: BMS_SLAVE_ID: ...". */
int config_from_env(const char *(*getenv_fn)(const char *), struct config **out,
                    struct config_errors *errs);
/* True when any of the replaced program's variables is set and not empty; MQTT_PASSWORD alone
 * does not count (a YAML configuration reads it too). */
int config_env_present(const char *(*getenv_fn)(const char *));
void config_free(struct config *c);

#define CONFIG_DEFAULT_PATH "/etc/bmsfleet/config.yaml"
/* The MQTT password's name in $CREDENTIALS_DIRECTORY (systemd LoadCredential=), read when
 * neither the environment nor mqtt.password_file gives one. */
#define CONFIG_MQTT_CREDENTIAL "mqtt.pass"
/* What `run` and `check` load: the file at path when given; else the replaced program's
 * environment when any of its variables is set (*from_env = 1); else CONFIG_DEFAULT_PATH.
 * Same returns as config_load_file. */
int config_load_auto(const char *path, struct config **out, struct config_errors *errs,
                     int *from_env);
/* Prints every error of a load that returned rc, one per line, then "N error(s)" when the
 * file was read but is invalid (rc == -EINVAL). */
void config_print_errors(FILE *f, int rc, const struct config_errors *errs);

/* Every default of the key tables (node id: the short host name, sanitised; no ports, no
 * banks): where both loaders start. */
void config_init(struct config *c);
/* A port with its defaults (name "port<index + 1>"), every pack slot too. */
void config_port_init(struct config_port *p, size_t index);
/* Copies s keeping [A-Za-z0-9_-] (any other byte becomes '_'), cut to cap - 1 characters. */
void config_sanitize_id(const char *s, char *out, size_t cap);

/* Writes the equivalent YAML (secrets left out: a password becomes a comment pointing to
 * password_file / MQTT_PASSWORD). */
void config_write_yaml(FILE *f, const struct config *c);
/* A short summary: ports, packs, banks. */
void config_write_summary(FILE *f, const struct config *c);

const char *config_protocol_name(enum config_protocol p);

#endif
