/* cmd_run: `bmsfleet run`, the daemon. Threads: one poller per port, the history writer, the
 * MQTT thread, and the main thread (signals, the service manager's notifications through
 * supervisor.h, and the --stdout JSON-lines sink). Every reading goes to each consumer's own
 * queue. SIGINT/SIGTERM wake every thread through one eventfd; pollers are joined, then the
 * queues are closed and drained, the history committed; exit 0. SIGHUP re-reads the
 * configuration (reload()). */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "log.h"
#include "mqtt.h"
#include "poller.h"
#include "queue.h"
#include "now.h"
#include "report.h"
#include "store.h"
#include "supervisor.h"

/* Per consumer. Consumers take readings within a commit (the writer) or a tick (MQTT), so a
 * few hundred cover any bank; each slot is about 1 KiB and the ring touches them all in turn. */
#define QUEUE_CAPACITY 512

static void usage(FILE *f)
{
    fputs("usage: bmsfleet run [-c FILE] [--stdout] [--log-level error|warn|info|debug]\n"
          "Polls every pack of the configuration until SIGINT/SIGTERM.\n"
          "  -c, --config FILE   the YAML configuration (default " CONFIG_DEFAULT_PATH ";\n"
          "                      without it and with BMS_PORT etc. set, the environment of\n"
          "                      the replaced program: one Daren pack)\n"
          "  --stdout            print every reading as one JSON object per line\n"
          "  --log-level L       overrides log.level of the configuration\n"
          "exit: 0 stopped by a signal, 1 cannot start, 2 usage or configuration error\n",
          f);
}

static int load(const char *path, struct config **cfg)
{
    struct config_errors *errs = calloc(1, sizeof *errs);
    if (errs == NULL)
        return CLI_EXIT_FAIL;
    int from_env;
    int rc = config_load_auto(path, cfg, errs, &from_env);
    config_print_errors(stderr, rc, errs);
    free(errs);
    return rc ? CLI_EXIT_USAGE : CLI_EXIT_OK;
}

static void print_reading(const struct config *cfg, const struct reading *r)
{
    const struct config_port *port = &cfg->ports[r->port_idx];
    const struct config_pack *pack = &port->packs[r->pack_idx];
    cJSON *o;
    if (r->kind == READING_SAMPLE) {
        o = report_sample_json_opts(&r->s, config_protocol_name(port->protocol), r->ts_ms,
                                    REPORT_JSON_UNKNOWN_NULL);
    } else if (r->kind == READING_IDENTITY) {
        o = report_identity_json(&r->id);
        cJSON_AddNumberToObject(o, "ts", (double)r->ts_ms / 1000.0);
        cJSON_AddStringToObject(o, "event", "identity");
    } else {
        o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "ts", (double)r->ts_ms / 1000.0);
        cJSON_AddStringToObject(o, "event", "health");
        cJSON_AddStringToObject(o, "health", pack_health_name(r->health));
        cJSON_AddStringToObject(o, "detail", r->detail);
    }
    cJSON_AddStringToObject(o, "pack", pack->id);
    cJSON_AddStringToObject(o, "bank", pack->bank);
    cJSON_AddStringToObject(o, "port", port->name);
    cJSON_AddNumberToObject(o, "seq", (double)r->seq);
    report_print_json(stdout, o);
    fflush(stdout);
}

static void log_stats(const struct config *cfg, struct poller *const *pollers)
{
    for (size_t i = 0; i < cfg->nports; i++) {
        if (pollers[i] == NULL)
            continue;
        for (size_t k = 0; k < cfg->ports[i].npacks; k++) {
            struct pack_stats st;
            if (poller_pack_stats(pollers[i], k, &st))
                continue;
            log_info("pack %s: %s, %llu polls, %llu ok, %llu timeouts, %llu checksum errors, "
                     "%llu malformed, %llu refused, %llu foreign, %llu alarm (0x44) failures%s",
                     cfg->ports[i].packs[k].id, pack_health_name(st.health),
                     (unsigned long long)st.polls, (unsigned long long)st.ok,
                     (unsigned long long)st.timeouts, (unsigned long long)st.checksum_errors,
                     (unsigned long long)st.malformed, (unsigned long long)st.refused,
                     (unsigned long long)st.foreign, (unsigned long long)st.alarm_failures,
                     st.alarms_unsupported ? " (alarms unsupported)" : "");
        }
    }
}

/* The configuration as YAML (secrets left out), to compare two loads. malloc'd, or NULL. */
static char *as_yaml(const struct config *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return NULL;
    config_write_yaml(f, c);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* SIGHUP: the configuration is read and validated again, and only log.level is applied in
 * place. The pollers, the writer and the MQTT thread run on the configuration they started
 * with (pointers into it, the packs registered in the history, the discovery sent); swapping
 * ports or packs under them is what a restart does safely, in about a second and without
 * losing a sample (queues drained, history committed, MQTT replays). So any other change is
 * logged with the command that applies it, and an invalid file changes nothing. */
static void reload(const char *path, const struct config *running, int level_fixed)
{
    log_info("reload: reading the configuration again (SIGHUP)");
    struct config_errors *errs = calloc(1, sizeof *errs);
    struct config *fresh = NULL;
    int from_env;
    int rc = errs ? config_load_auto(path, &fresh, errs, &from_env) : -ENOMEM;
    if (rc) {
        for (size_t i = 0; errs && i < errs->n && i < CONFIG_MAX_ERRORS; i++)
            log_error("reload: %s", errs->msg[i]);
        log_error("reload: the configuration has errors; the daemon goes on with the one it "
                  "started with");
        free(errs);
        return;
    }
    free(errs);
    log_debug("reload: %s read, valid", fresh->source);
    if (!level_fixed && fresh->log_level != log_get_level()) {
        log_set_level(fresh->log_level);
        log_info("reload: log level set to %s", log_level_name(fresh->log_level));
    }
    struct config *now_cfg = fresh; /* compared with the level of the running one */
    enum log_level lvl = now_cfg->log_level;
    now_cfg->log_level = running->log_level;
    char *a = as_yaml(running), *b = as_yaml(now_cfg);
    now_cfg->log_level = lvl;
    int same = a && b && strcmp(a, b) == 0 &&
               strcmp(running->mqtt.password, fresh->mqtt.password) == 0;
    free(a);
    free(b);
    if (same)
        log_info("reload: the rest of the configuration is unchanged");
    else
        log_warn("reload: the configuration %s changed: restart to apply it (systemctl "
                 "restart bmsfleet); a reload applies log.level only",
                 fresh->source);
    config_free(fresh);
}

/* Testing aid, not a setting for users: BMSFLEET_TEST_HANG=poller:NAME makes the poller of
 * port NAME block after its first poll without progress (poller_test_hang), so that a test
 * sees WATCHDOG=1 withheld and the stuck thread named (tests/test_systemd.c). */
static void test_hang(const struct config *cfg, struct poller *const *pollers)
{
    const char *v = getenv("BMSFLEET_TEST_HANG");
    if (v == NULL || strncmp(v, "poller:", 7) != 0)
        return;
    for (size_t i = 0; i < cfg->nports; i++) {
        if (pollers[i] && strcmp(cfg->ports[i].name, v + 7) == 0) {
            log_warn("BMSFLEET_TEST_HANG: the poller of port %s will hang (testing aid)",
                     cfg->ports[i].name);
            poller_test_hang(pollers[i]);
        }
    }
}

int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"stdout", no_argument, NULL, 's'},
                                         {"log-level", required_argument, NULL, 'l'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = NULL, *level = NULL;
    int to_stdout = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:sl:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 's': to_stdout = 1; break;
        case 'l': level = optarg; break;
        case 'h': usage(stdout); return CLI_EXIT_OK;
        default: usage(stderr); return CLI_EXIT_USAGE;
        }
    }
    enum log_level lvl;
    if (optind < argc || (level && log_parse_level(level, &lvl))) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    struct config *cfg = NULL;
    int rc = load(path, &cfg);
    if (rc)
        return rc;
    int level_fixed = level != NULL || log_get_level() == LOG_DEBUG;
    if (log_get_level() != LOG_DEBUG) /* -v on the command line wins */
        log_set_level(level ? lvl : cfg->log_level);
    for (size_t i = 0; i < cfg->nwarnings && i < CONFIG_MAX_WARNINGS; i++)
        log_warn("%s", cfg->warnings[i]);

    /* Consumers first, so no reading is produced before someone takes it. */
    struct sinks_state {
        struct queue *out, *hist, *pub;
        struct store *store;
        struct mqtt *mqtt;
    } k = {NULL, NULL, NULL, NULL, NULL};
    struct poller_sinks sinks = {.n = 0};
    char why[512];
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0 || (to_stdout && queue_new(QUEUE_CAPACITY, &k.out)) ||
        (cfg->storage.enabled && queue_new(QUEUE_CAPACITY, &k.hist)) ||
        (cfg->mqtt.enabled && queue_new(QUEUE_CAPACITY, &k.pub))) {
        fprintf(stderr, "bmsfleet run: cannot start: %s\n", strerror(errno));
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (cfg->storage.enabled) {
        int err = store_new(cfg, &k.store);
        if (err == 0)
            err = store_connect(k.store, why, sizeof why);
        if (err == -EAGAIN) /* a full disk must not stop the monitoring: the writer retries */
            log_debug("history: %s; the writer will retry", why);
        else if (err) {
            fprintf(stderr, "bmsfleet run: history database: %s\n", why);
            rc = CLI_EXIT_FAIL;
            goto out;
        }
        if (store_start(k.store, k.hist)) {
            fprintf(stderr, "bmsfleet run: cannot start the history writer\n");
            rc = CLI_EXIT_FAIL;
            goto out;
        }
        sinks.q[sinks.n++] = k.hist;
        log_info("history: %s", cfg->storage.path);
    }
    if (cfg->mqtt.enabled) {
        int err = mqtt_start(cfg, k.pub, efd, &k.mqtt);
        if (err) {
            fprintf(stderr, "bmsfleet run: mqtt: cannot start: %s\n", strerror(-err));
            rc = CLI_EXIT_FAIL;
            goto out;
        }
        sinks.q[sinks.n++] = k.pub;
    }
    if (k.out)
        sinks.q[sinks.n++] = k.out;
    cli_set_wakeup_fd(efd);
    cli_install_signals();
    cli_install_reload_signal();

    struct poller *pollers[CONFIG_MAX_PORTS] = {0};
    struct supervisor *sv = NULL;
    _Atomic uint64_t seq = 0;
    size_t started = 0;
    log_info("bmsfleet %s: node %s, %zu port(s), configuration from %s", BMSFLEET_VERSION,
             cfg->node_id, cfg->nports, cfg->source);
    for (size_t i = 0; i < cfg->nports; i++) {
        int err = poller_start(cfg, i, &sinks, &seq, efd, &pollers[i]);
        if (err)
            log_error("port %s: cannot start its thread: %s", cfg->ports[i].name, strerror(-err));
        else
            started++;
    }
    test_hang(cfg, pollers);
    if (started == 0) {
        log_error("no port can be polled");
        rc = CLI_EXIT_FAIL;
        cli_stop = 1;
    } else {
        struct supervisor_threads th = {cfg, pollers, k.store, k.mqtt};
        if (supervisor_new(&th, &sv))
            log_warn("cannot notify the service manager: out of memory");
    }

    struct reading r;
    while (!cli_stop) {
        if (k.out == NULL) {
            struct pollfd pfd = {.fd = efd, .events = POLLIN};
            poll(&pfd, 1, SUPERVISOR_TICK_MS);
        } else if (queue_pop(k.out, &r, SUPERVISOR_TICK_MS) == 0) {
            print_reading(cfg, &r);
        }
        if (cli_reload && !cli_stop) {
            cli_reload = 0;
            if (sv)
                supervisor_reloading(sv, 1);
            reload(path, cfg, level_fixed);
            if (sv)
                supervisor_reloading(sv, 0);
        }
        if (sv)
            supervisor_tick(sv, now_mono_ms());
    }
    supervisor_stopping(sv);
    log_info("stopping");
    uint64_t one = 1;
    ssize_t w = write(efd, &one, sizeof one); /* wakes pollers even if no signal did */
    (void)w;
    for (size_t i = 0; i < cfg->nports; i++)
        poller_join(pollers[i]);
    if (k.out) {
        queue_close(k.out);
        while (queue_pop(k.out, &r, 0) == 0)
            print_reading(cfg, &r);
    }
    if (k.hist)
        queue_close(k.hist);
    if (k.pub)
        queue_close(k.pub);
    store_stop(k.store); /* drains its queue and commits */
    mqtt_stop(k.mqtt);   /* publishes offline, saves its cursor */
    k.mqtt = NULL;
    log_stats(cfg, pollers);
    for (size_t i = 0; i < cfg->nports; i++)
        poller_free(pollers[i]);
    supervisor_free(sv);
out:
    cli_set_wakeup_fd(-1);
    if (efd >= 0)
        close(efd);
    mqtt_stop(k.mqtt);
    store_close(k.store);
    queue_free(k.out);
    queue_free(k.hist);
    queue_free(k.pub);
    config_free(cfg);
    if (rc == CLI_EXIT_OK)
        log_info("stopped");
    return rc;
}
