/* Part mqtt (src/mqtt/): the MQTT side. The session (mqtt.c, this file), live states and
 * discovery bursts (mqtt_publish.c), the history replay (mqtt_replay.c), and the Home
 * Assistant payload builders, pure (ha.c, ha_entities.c, ha_state.c, ha_compat.c). It reads
 * the history only through store_backlog.h, never SQL of its own.
 *
 * mqtt: the session (see mqtt.h): paho loaded on demand, the connection with its backoff, the
 * thread's loop and its start and stop. Paho's asynchronous client runs its own network thread;
 * its callbacks only record events under a mutex and wake our thread, and everything else
 * (connecting, publishing, replay, the cursor) happens on our thread, which owns the client.
 * Connected and caught up, our thread sleeps until a reading, an event or the replay's next
 * look at the history (REPLAY_IDLE_MS), not at a fixed tick. */
#include "mqtt.h"
#include "mqtt_internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ha.h"
#include "log.h"
#include "now.h"
#include "thread_name.h"

/* ---- paho callbacks: record, never act ---- */

static void on_connect(void *ctx, MQTTAsync_successData *resp)
{
    (void)resp;
    struct mqtt *m = ctx;
    pthread_mutex_lock(&m->lock);
    m->ev_connected = 1;
    pthread_mutex_unlock(&m->lock);
    queue_wake(m->q); /* our thread sleeps until a reading or the replay's next look */
}

static const char *connack_text(int code)
{
    switch (code) {
    case 1: return "the broker refused the protocol version";
    case 2: return "the broker rejected the client id";
    case 3: return "the broker is unavailable";
    case 4: return "bad user name or password";
    case 5: return "not authorized: check mqtt.username and the password";
    default: return NULL;
    }
}

static void on_connect_failure(void *ctx, MQTTAsync_failureData *resp)
{
    struct mqtt *m = ctx;
    pthread_mutex_lock(&m->lock);
    m->ev_failed = 1;
    m->fail_code = resp ? resp->code : 0;
    const char *text = resp ? connack_text(resp->code) : NULL;
    if (text == NULL && resp && resp->message)
        text = resp->message;
    snprintf(m->fail_msg, sizeof m->fail_msg, "%s (code %d)",
             text ? text : "connection failed: broker unreachable, name not resolved or TLS "
                           "handshake refused",
             m->fail_code);
    pthread_mutex_unlock(&m->lock);
    queue_wake(m->q);
}

static void on_lost(void *ctx, char *cause)
{
    struct mqtt *m = ctx;
    pthread_mutex_lock(&m->lock);
    m->ev_lost = 1;
    snprintf(m->fail_msg, sizeof m->fail_msg, "%s", cause ? cause : "connection lost");
    pthread_mutex_unlock(&m->lock);
    queue_wake(m->q);
}

static int on_message(void *ctx, char *topic, int len, MQTTAsync_message *msg)
{
    struct mqtt *m = ctx;
    (void)len;
    if (msg->payloadlen == 6 && memcmp(msg->payload, "online", 6) == 0) {
        pthread_mutex_lock(&m->lock);
        m->ev_birth = 1; /* Home Assistant restarted: send discovery again */
        pthread_mutex_unlock(&m->lock);
        queue_wake(m->q);
    }
    m->api.freeMessage(&msg);
    m->api.free(topic);
    return 1;
}

/* Called by paho when the broker acknowledged a history message (PUBACK). Only history
 * messages carry this callback, so at most WINDOW tokens wait here: none is ever dropped. */
void mqtt_on_history_acked(void *ctx, MQTTAsync_successData *resp)
{
    struct mqtt *m = ctx;
    pthread_mutex_lock(&m->lock);
    int first = m->nacks == 0;
    if (resp && m->nacks < sizeof m->acks / sizeof m->acks[0])
        m->acks[m->nacks++] = resp->token;
    pthread_mutex_unlock(&m->lock);
    if (first)
        queue_wake(m->q); /* the window has room again: replay goes on without a poll delay */
}
/* ---- connection ---- */

/* A CA or a client certificate configured: the broker is spoken to over TLS. */
static int wants_tls(const struct config_mqtt *c)
{
    return c->tls_ca_file[0] || c->tls_cert_file[0];
}

static void start_connect(struct mqtt *m)
{
    const struct config_mqtt *c = &m->cfg->mqtt;
    char will_topic[256];
    ha_topic_status(m->cfg, will_topic, sizeof will_topic);
    MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
    will.topicName = will_topic;
    will.message = "offline";
    will.retained = 1;
    will.qos = 1;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    co.keepAliveInterval = c->keepalive_s;
    co.cleansession = 1;
    co.maxInflight = WINDOW * 4; /* history window + a discovery burst */
    co.connectTimeout = 10;
    co.will = &will;
    co.onSuccess = on_connect;
    co.onFailure = on_connect_failure;
    co.context = m;
    if (c->username[0])
        co.username = c->username;
    if (c->password[0])
        co.password = c->password;
    if (wants_tls(c)) {
        ssl.trustStore = c->tls_ca_file[0] ? c->tls_ca_file : NULL;
        ssl.keyStore = c->tls_cert_file[0] ? c->tls_cert_file : NULL;
        ssl.privateKey = c->tls_key_file[0] ? c->tls_key_file : NULL;
        ssl.enableServerCertAuth = !c->tls_insecure;
        ssl.verify = !c->tls_insecure;
        co.ssl = &ssl;
    }
    int rc = m->api.connect(m->client, &co);
    if (rc == MQTTASYNC_SUCCESS) {
        m->connecting = 1;
    } else {
        pthread_mutex_lock(&m->lock);
        m->ev_failed = 1;
        snprintf(m->fail_msg, sizeof m->fail_msg, "cannot start connecting (code %d)", rc);
        pthread_mutex_unlock(&m->lock);
    }
}

static void handle_events(struct mqtt *m)
{
    pthread_mutex_lock(&m->lock);
    int connected = m->ev_connected, failed = m->ev_failed, lost = m->ev_lost,
        birth = m->ev_birth;
    char why[200];
    snprintf(why, sizeof why, "%s", m->fail_msg);
    m->ev_connected = m->ev_failed = m->ev_lost = m->ev_birth = 0;
    pthread_mutex_unlock(&m->lock);

    if (failed || lost) {
        m->connected = m->connecting = 0;
        /* unacknowledged history is sent again after the next connection */
        m->ring_len = 0;
        m->sent_upto = m->cursor;
        m->replay_next_ms = 0; /* the backlog from the cursor on, at once */
        if (lost || strcmp(why, m->last_error) != 0)
            log_warn("mqtt: %s %s: %s; retrying in %d s", lost ? "lost" : "cannot connect to",
                     m->uri, why, m->backoff_ms / 1000);
        else
            log_debug("mqtt: %s: %s", m->uri, why);
        snprintf(m->last_error, sizeof m->last_error, "%s", why);
        m->next_attempt_ms = now_mono_ms() + m->backoff_ms;
        m->backoff_ms = m->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : m->backoff_ms * 2;
        if (lost)
            m->backoff_ms = 1000; /* a lost connection is retried at once, then backs off */
    }
    if (connected) {
        m->connected = 1;
        m->connecting = 0;
        m->backoff_ms = 1000;
        m->last_error[0] = '\0';
        log_info("mqtt: connected to %s", m->uri);
        mqtt_note_drops_logged(m);
        char topic[256];
        mqtt_publish_wait(m, ha_topic_status(m->cfg, topic, sizeof topic), "online", 1, 1);
        snprintf(topic, sizeof topic, "%s/status", m->cfg->mqtt.discovery_prefix);
        MQTTAsync_responseOptions so = MQTTAsync_responseOptions_initializer;
        int rc = m->api.subscribe(m->client, topic, 1, &so);
        if (rc != MQTTASYNC_SUCCESS)
            log_warn("mqtt: cannot subscribe to %s (code %d): discovery is not sent again when "
                     "Home Assistant restarts until the next connection", topic, rc);
        m->ring_len = 0;
        m->sent_upto = m->cursor;
        m->replay_next_ms = 0; /* the backlog from the cursor on, at once */
        mqtt_publish_all(m);
    } else if (birth && m->connected) {
        log_info("mqtt: Home Assistant is online: sending discovery again");
        mqtt_publish_all(m);
    }
}

int mqtt_stopping(const struct mqtt *m)
{
    struct pollfd pfd = {.fd = m->cancel_fd, .events = POLLIN};
    return poll(&pfd, 1, 0) > 0;
}

/* The copies mqtt_get_status() reads, once per turn. */
static void publish_status(struct mqtt *m)
{
    atomic_store(&m->st_connected, m->connected);
    atomic_store(&m->st_history, m->history != NULL);
    atomic_store(&m->st_acked, m->cursor);
    atomic_store(&m->st_published, m->published);
    atomic_store(&m->st_dropped, m->dropped);
    atomic_store(&m->st_cursor_failing, m->cursor_save_failing);
    atomic_store(&m->st_cursor_failures, m->cursor_save_failures);
}

static void *mqtt_main(void *arg)
{
    struct mqtt *m = arg;
    int named = thread_name_set("mqtt", NULL);
    if (named)
        log_debug("mqtt: cannot name the thread (%d)", named);
    while (!mqtt_stopping(m)) {
        handle_events(m);
        if (!m->connected && !m->connecting && now_mono_ms() >= m->next_attempt_ms)
            start_connect(m);
        struct reading r;
        /* how long depends on the replay (see mqtt_replay()); an acknowledgement ends the wait */
        int got = queue_pop(m->q, &r, m->connected ? m->replay_wait_ms : TICK_MS);
        /* the readings of the next moment go out with this one: paho's send thread then wakes
         * once for the burst, not once per message (a pack's state waits m->batch_ms at most) */
        if (got == 0 && m->connected && m->batch_ms > 0)
            (void)queue_wait(m->q, LIVE_BATCH_MAX, m->batch_ms);
        while (got == 0) {
            int64_t t0 = now_mono_ns();
            mqtt_take_reading(m, &r);
            atomic_fetch_add(&m->st_live_ns, (uint64_t)(now_mono_ns() - t0));
            atomic_fetch_add(&m->st_live, 1);
            got = queue_pop(m->q, &r, 0);
        }
        if (m->connected)
            mqtt_take_acks(m);
        /* before the replay: with everything sent acknowledged, saved at once, so that a
         * crash repeats nothing. On its own timer: a failing save is retried every
         * CURSOR_RETRY_MS, not every turn, and nothing below waits on that timer (each failed
         * save restarts it) */
        mqtt_save_cursor_when_due(m);
        if (m->connected)
            mqtt_replay(m);
        publish_status(m);
        mqtt_publish_storage(m, 0);
        if (m->cfg->storage.enabled && m->history == NULL && now_mono_ms() >= m->next_history_ms) {
            if (mqtt_open_history(m) == 0)
                log_info("mqtt: history at %s readable; replay starts", m->cfg->storage.path);
            m->next_history_ms = now_mono_ms() + 5000;
        }
    }
    /* drain what the pollers left, say goodbye */
    struct reading r;
    while (queue_pop(m->q, &r, 0) == 0)
        mqtt_take_reading(m, &r);
    if (m->connected) {
        char topic[256];
        MQTTAsync_token tok = 0;
        int rc = mqtt_publish(m, ha_topic_status(m->cfg, topic, sizeof topic), "offline", 1, 1, &tok);
        /* the whole stop stays under 2 s; the broker's last will says "offline" otherwise */
        if (rc != MQTTASYNC_SUCCESS || m->api.waitForCompletion(m->client, tok, 500) !=
                                           MQTTASYNC_SUCCESS)
            log_warn("mqtt: \"offline\" not confirmed by the broker (code %d); its last will "
                     "says it instead", rc);
        mqtt_take_acks(m);
        MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
        d.timeout = 500;
        m->api.disconnect(m->client, &d);
    }
    mqtt_save_cursor(m);
    mqtt_note_drops_logged(m);
    log_info("mqtt: %llu messages published, %llu given up", (unsigned long long)m->published,
             (unsigned long long)m->dropped);
    if (m->cursor_save_failing)
        log_warn("mqtt: at exit the replay cursor is still not saved (%s; %llu failed "
                 "save(s)): the next start replays from the last one saved",
                 m->cursor_error, (unsigned long long)m->cursor_save_failures);
    return NULL;
}


static void mqtt_free(struct mqtt *m)
{
    mqtt_close_history(m);
    if (m->client)
        m->api.destroy(&m->client);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* The paho library for this broker: the plain variant unless TLS is configured or the plain
 * one cannot be loaded. NULL, with a log line saying what to install. */
static void *paho_open(int tls, const char **name)
{
    /* never unloaded: paho's own threads may outlive MQTTAsync_destroy */
    void *lib = NULL;
    if (!tls) {
        *name = PAHO_LIBRARY_PLAIN;
        lib = dlopen(*name, RTLD_NOW | RTLD_NODELETE);
        if (lib == NULL)
            log_info("mqtt: cannot load %s (%s); using %s, which carries OpenSSL", *name,
                     dlerror(), PAHO_LIBRARY_TLS);
    }
    if (lib == NULL) {
        *name = PAHO_LIBRARY_TLS;
        lib = dlopen(*name, RTLD_NOW | RTLD_NODELETE);
    }
    if (lib == NULL)
        log_error("mqtt: cannot load %s (%s): install the Debian package libpaho-mqtt1.3", *name,
                  dlerror());
    return lib;
}

/* Resolves every paho function we call; 0, or -ENOENT with a log line saying what to install. */
static int paho_load(struct paho *p, int tls)
{
    const char *name = NULL;
    p->lib = paho_open(tls, &name);
    if (p->lib == NULL)
        return -ENOENT;
    struct {
        const char *name;
        void **slot;
    } syms[] = {
#define SYM(f) {"MQTTAsync_" #f, (void **)&p->f}
        SYM(createWithOptions), SYM(setCallbacks), SYM(connect),    SYM(sendMessage),
        SYM(subscribe),         SYM(waitForCompletion), SYM(disconnect), SYM(destroy),
        SYM(freeMessage),       SYM(free),
#undef SYM
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        if ((*syms[i].slot = dlsym(p->lib, syms[i].name)) == NULL) {
            log_error("mqtt: %s has no %s: a paho.mqtt.c older than 1.3?", name, syms[i].name);
            return -ENOENT;
        }
    }
    return 0;
}

int mqtt_start(const struct config *cfg, struct queue *q, int cancel_fd, struct store *writer,
               struct mqtt **out)
{
    struct mqtt *m = calloc(1, sizeof *m);
    if (m == NULL)
        return -ENOMEM;
    const struct config_mqtt *c = &cfg->mqtt;
    int tls = wants_tls(c);
    if (paho_load(&m->api, tls) != 0) {
        free(m);
        return -ENOENT;
    }
    m->cfg = cfg;
    m->q = q;
    m->cancel_fd = cancel_fd;
    m->writer = writer;
    m->backoff_ms = 1000;
    /* a quarter of the shortest interval, at most LIVE_BATCH_MS: a state is never late by much
     * against how often it comes */
    m->batch_ms = LIVE_BATCH_MS;
    for (size_t i = 0; i < cfg->nports; i++) {
        if (cfg->ports[i].interval_s * 1000 / 4 < m->batch_ms)
            m->batch_ms = cfg->ports[i].interval_s * 1000 / 4;
    }
    pthread_mutex_init(&m->lock, NULL);
    /* the configured packs only: the table has room for the largest fleet (about 340 kB),
     * and what is never written stays zero pages, not resident memory */
    for (size_t i = 0; i < cfg->nports; i++) {
        for (size_t k = 0; k < cfg->ports[i].npacks; k++)
            m->packs[i][k].available = -1;
    }
    int v6 = strchr(c->host, ':') != NULL;
    snprintf(m->uri, sizeof m->uri, "%s://%s%s%s:%d", tls ? "ssl" : "tcp", v6 ? "[" : "", c->host,
             v6 ? "]" : "", c->port);
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
    co.sendWhileDisconnected = 0;
    co.maxBufferedMessages = BUFFERED;
    if (m->api.createWithOptions(&m->client, m->uri, c->client_id, MQTTCLIENT_PERSISTENCE_NONE,
                                    NULL, &co) != MQTTASYNC_SUCCESS ||
        m->api.setCallbacks(m->client, m, on_lost, on_message, NULL) !=
            MQTTASYNC_SUCCESS) {
        mqtt_free(m);
        return -EINVAL;
    }
    if (mqtt_open_history(m) != 0)
        log_warn("mqtt: cannot read the history at %s yet (%s); the replay starts when it can",
                 cfg->storage.path, m->history_why);
    int err = pthread_create(&m->thread, NULL, mqtt_main, m);
    if (err) {
        mqtt_free(m);
        return -err;
    }
    *out = m;
    return 0;
}

void mqtt_stop(struct mqtt *m)
{
    if (m == NULL)
        return;
    pthread_join(m->thread, NULL);
    mqtt_free(m);
}

void mqtt_get_status(struct mqtt *m, struct mqtt_status *out)
{
    out->connected = atomic_load(&m->st_connected);
    out->history = atomic_load(&m->st_history);
    out->acked_id = atomic_load(&m->st_acked);
    out->published = atomic_load(&m->st_published);
    out->dropped = atomic_load(&m->st_dropped);
    out->live_readings = atomic_load(&m->st_live);
    out->live_ns_total = atomic_load(&m->st_live_ns);
    out->cursor_failing = atomic_load(&m->st_cursor_failing);
    out->cursor_failures = atomic_load(&m->st_cursor_failures);
}
