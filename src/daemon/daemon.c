/* Part daemon (src/daemon/): the running program. One poller thread per port (poller.c: the
 * round, health, backoff, reopening), the supervisor's side (notify.c, supervisor.c: readiness,
 * status, a watchdog fed from every thread's progress), and the threads and queues wired
 * together with their start and stop order (daemon.c, this file). `bmsfleet run` is a thin
 * layer over daemon.h.
 *
 * daemon: the daemon's threads wired together (daemon.h). Threads: one poller per port, the
 * history writer, the MQTT thread, and the caller's main thread (signals, the supervisor's
 * notifications, the optional queue of readings). Every reading goes to each consumer's own
 * queue, so a slow consumer never holds up another or a bus. */
#include "daemon.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "mqtt.h"
#include "now.h"
#include "poller.h"
#include "store.h"
#include "supervisor.h"

/* Per consumer. Consumers take readings within a commit (the writer) or a tick (MQTT), so a
 * few hundred cover any bank; each slot is about 1 KiB and the ring touches them all in turn. */
#define QUEUE_CAPACITY 512

struct daemon {
    const struct config *cfg;
    int efd;
    struct queue *out, *hist, *pub;
    struct store *store;
    struct mqtt *mqtt;
    struct http *http;
    struct poller_sinks sinks;
    struct poller *pollers[CONFIG_MAX_PORTS];
    struct supervisor *sv;
    _Atomic uint64_t seq;
    int running; /* at least one poller started */
};

/* Testing aid, not a setting for users: BMSFLEET_TEST_HANG=poller:NAME makes the poller of
 * port NAME block after its first poll without progress (poller_test_hang), so that a test
 * sees WATCHDOG=1 withheld and the stuck thread named (tests/test_systemd.c). */
static void test_hang(struct daemon *d)
{
    const char *v = getenv("BMSFLEET_TEST_HANG");
    if (v == NULL || strncmp(v, "poller:", 7) != 0)
        return;
    for (size_t i = 0; i < d->cfg->nports; i++) {
        if (d->pollers[i] && strcmp(d->cfg->ports[i].name, v + 7) == 0) {
            log_warn("BMSFLEET_TEST_HANG: the poller of port %s will hang (testing aid)",
                     d->cfg->ports[i].name);
            poller_test_hang(d->pollers[i]);
        }
    }
}

static void log_stats(const struct daemon *d)
{
    const struct config *cfg = d->cfg;
    for (size_t i = 0; i < cfg->nports; i++) {
        if (d->pollers[i] == NULL)
            continue;
        for (size_t k = 0; k < cfg->ports[i].npacks; k++) {
            struct pack_stats st;
            if (poller_pack_stats(d->pollers[i], k, &st))
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

/* The HTTP server's view of the threads (http.h), asked on its thread: copies only. */
static void http_live(void *arg, struct http_live *out)
{
    const struct daemon *d = arg;
    const struct config *cfg = d->cfg;
    for (size_t i = 0; i < cfg->nports; i++) {
        out->ports[out->nports].name = cfg->ports[i].name;
        out->ports[out->nports++].up = d->pollers[i] && poller_port_up(d->pollers[i]);
        for (size_t k = 0; d->pollers[i] && k < cfg->ports[i].npacks; k++) {
            struct pack_stats st;
            if (poller_pack_stats(d->pollers[i], k, &st))
                continue;
            struct http_pack_live *p = &out->packs[out->npacks++];
            *p = (struct http_pack_live){cfg->ports[i].packs[k].id, cfg->ports[i].name,
                                         cfg->ports[i].packs[k].bank, st.health, st.polls, st.ok,
                                         st.timeouts, st.checksum_errors, st.malformed,
                                         st.refused, st.foreign, st.port_errors,
                                         st.alarm_failures};
        }
    }
    if ((out->history = d->store != NULL))
        store_get_stats(d->store, &out->store);
    if ((out->mqtt = d->mqtt != NULL)) {
        struct mqtt_status ms;
        mqtt_get_status(d->mqtt, &ms);
        out->mqtt_connected = ms.connected;
        out->mqtt_history = ms.history;
        out->mqtt_acked_id = ms.acked_id;
        out->mqtt_published = ms.published;
        out->mqtt_dropped = ms.dropped;
        out->mqtt_live_readings = ms.live_readings;
        out->mqtt_live_ns_total = ms.live_ns_total;
        out->mqtt_cursor_failing = ms.cursor_failing;
        out->mqtt_cursor_failures = ms.cursor_failures;
    }
}

/* The consumers, before any poller: no reading is produced before someone takes it. */
static int start_consumers(struct daemon *d, const struct daemon_opts *o, char *why, size_t cap)
{
    const struct config *cfg = d->cfg;
    if ((o->readings && queue_new(QUEUE_CAPACITY, &d->out)) ||
        (cfg->storage.enabled && queue_new(QUEUE_CAPACITY, &d->hist)) ||
        (cfg->mqtt.enabled && queue_new(QUEUE_CAPACITY, &d->pub))) {
        snprintf(why, cap, "cannot start: %s", strerror(ENOMEM));
        return -ENOMEM;
    }
    if (cfg->storage.enabled) {
        char e[512];
        int err = store_new(cfg, &d->store);
        if (err == 0)
            err = store_connect(d->store, e, sizeof e);
        if (err == -EAGAIN) { /* a full disk must not stop the monitoring: the writer retries */
            log_debug("history: %s; the writer will retry", e);
        } else if (err) {
            snprintf(why, cap, "history database: %s", e);
            return err;
        }
        if ((err = store_start(d->store, d->hist)) != 0) {
            snprintf(why, cap, "cannot start the history writer");
            return err < 0 ? err : -EIO;
        }
        d->sinks.q[d->sinks.n++] = d->hist;
        log_info("history: %s", cfg->storage.path);
    }
    if (cfg->mqtt.enabled) {
        int err = mqtt_start(cfg, d->pub, d->efd, d->store, &d->mqtt);
        if (err) {
            snprintf(why, cap, "mqtt: cannot start: %s", strerror(-err));
            return err;
        }
        d->sinks.q[d->sinks.n++] = d->pub;
    }
    if (d->out)
        d->sinks.q[d->sinks.n++] = d->out;
    return 0;
}

int daemon_start(const struct config *cfg, const struct daemon_opts *o, struct daemon **out,
                 char *why, size_t cap)
{
    struct daemon *d = calloc(1, sizeof *d);
    if (d == NULL) {
        snprintf(why, cap, "cannot start: %s", strerror(ENOMEM));
        return -ENOMEM;
    }
    d->cfg = cfg;
    d->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (d->efd < 0) {
        int err = -errno;
        snprintf(why, cap, "cannot start: %s", strerror(-err));
        daemon_stop(d, NULL, NULL);
        return err;
    }
    int err = start_consumers(d, o, why, cap);
    if (err) {
        daemon_stop(d, NULL, NULL);
        return err;
    }
    size_t started = 0;
    log_info("bmsfleet %s: node %s, %zu port(s), configuration from %s", BMSFLEET_VERSION,
             cfg->node_id, cfg->nports, cfg->source);
    for (size_t i = 0; i < cfg->nports; i++) {
        err = poller_start(cfg, i, &d->sinks, &d->seq, d->efd, &d->pollers[i]);
        if (err)
            log_error("port %s: cannot start its thread: %s", cfg->ports[i].name, strerror(-err));
        else
            started++;
    }
    d->running = started > 0;
    if (started == 0) {
        snprintf(why, cap, "no port can be polled");
        daemon_stop(d, NULL, NULL);
        return -ENODEV;
    }
    test_hang(d);
    if (cfg->http.enabled && (err = http_start(cfg, http_live, d, &d->http, why, cap)) != 0) {
        char e[512];
        snprintf(e, sizeof e, "http: %s", why);
        snprintf(why, cap, "%s", e);
        daemon_stop(d, NULL, NULL);
        return err;
    }
    struct supervisor_threads th = {cfg, d->pollers, d->store, d->mqtt};
    if (supervisor_new(&th, &d->sv))
        log_warn("cannot notify the service manager: out of memory");
    *out = d;
    return 0;
}

int daemon_wakeup_fd(const struct daemon *d)
{
    return d->efd;
}

int daemon_step(struct daemon *d, struct reading *r)
{
    int got = 0;
    if (d->out == NULL) {
        struct pollfd pfd = {.fd = d->efd, .events = POLLIN};
        if (poll(&pfd, 1, SUPERVISOR_TICK_MS) < 0 && errno != EINTR)
            log_debug("poll: %s", strerror(errno));
    } else {
        got = queue_pop(d->out, r, SUPERVISOR_TICK_MS) == 0;
    }
    if (d->sv)
        supervisor_tick(d->sv, now_mono_ms());
    return got;
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
void daemon_reload(struct daemon *d, const char *path, int level_fixed)
{
    const struct config *running = d->cfg;
    if (d->sv)
        supervisor_reloading(d->sv, 1);
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
        goto done;
    }
    free(errs);
    log_debug("reload: %s read, valid", fresh->source);
    if (!level_fixed && fresh->log_level != log_get_level()) {
        log_set_level(fresh->log_level);
        log_info("reload: log level set to %s", log_level_name(fresh->log_level));
    }
    enum log_level lvl = fresh->log_level; /* compared with the level of the running one */
    fresh->log_level = running->log_level;
    char *a = as_yaml(running), *b = as_yaml(fresh);
    fresh->log_level = lvl;
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
done:
    if (d->sv)
        supervisor_reloading(d->sv, 0);
}

void daemon_stop(struct daemon *d, void (*drain)(const struct reading *r, void *arg), void *arg)
{
    if (d == NULL)
        return;
    supervisor_stopping(d->sv);
    if (d->running)
        log_info("stopping");
    http_stop(d->http); /* first: it reads the other threads' counters */
    if (d->efd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(d->efd, &one, sizeof one); /* wakes pollers even if no signal did */
        (void)w; /* an eventfd at its maximum is awake already */
    }
    for (size_t i = 0; i < d->cfg->nports; i++)
        poller_join(d->pollers[i]);
    if (d->out) {
        struct reading r;
        queue_close(d->out);
        while (queue_pop(d->out, &r, 0) == 0)
            if (drain)
                drain(&r, arg);
    }
    if (d->hist)
        queue_close(d->hist);
    if (d->pub)
        queue_close(d->pub);
    store_stop(d->store); /* drains its queue and commits */
    mqtt_stop(d->mqtt);   /* publishes offline, saves its cursor */
    if (d->running)
        log_stats(d);
    for (size_t i = 0; i < d->cfg->nports; i++)
        poller_free(d->pollers[i]);
    supervisor_free(d->sv);
    if (d->efd >= 0)
        close(d->efd);
    store_close(d->store);
    queue_free(d->out);
    queue_free(d->hist);
    queue_free(d->pub);
    free(d);
}
