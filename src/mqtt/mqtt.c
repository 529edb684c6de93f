/* mqtt: the MQTT thread (see mqtt.h). Paho's asynchronous client runs its own network thread;
 * its callbacks only record events under a mutex, and everything else — connecting, publishing,
 * replay, the cursor — happens on our thread, which owns the client. */
#include "now.h"
#include "mqtt.h"

#include <MQTTAsync.h>
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bank.h"
#include "ha.h"
#include "log.h"
#include "report.h"
#include "store.h"

#define WINDOW 256           /* history messages in flight (unacknowledged) at most */
#define REPLAY_PER_TICK 500  /* history messages sent per loop turn at most: live goes first */
#define TICK_MS 50
#define BACKOFF_MAX_MS 60000
#define CURSOR_SAVE_MS 500
#define FRESH_INTERVALS 3
#define BUFFERED 256         /* messages paho holds before writing them to the socket */
#define PUBLISH_WAIT_MS 10000 /* a message waits this long at most for room in that buffer */

struct live_pack {
    struct sample s;
    int have;
    int64_t ts_ms;
    int available;        /* -1 unknown, 0 offline, 1 online */
    unsigned discovered_cells; /* cells in the discovery published so far */
    struct s42_identity id;    /* valid when have_id */
    int have_id;
    uint64_t polls, timeouts, checksum_errors, malformed;
};

/* paho is loaded when MQTT is configured (dlopen), not linked: a daemon without MQTT does not
 * carry paho and the OpenSSL libraries it pulls in (about 2 MB of resident pages). */
#define PAHO_LIBRARY "libpaho-mqtt3as.so.1"

struct paho {
    void *lib;
    __typeof__(MQTTAsync_createWithOptions) *createWithOptions;
    __typeof__(MQTTAsync_setCallbacks) *setCallbacks;
    __typeof__(MQTTAsync_connect) *connect;
    __typeof__(MQTTAsync_sendMessage) *sendMessage;
    __typeof__(MQTTAsync_subscribe) *subscribe;
    __typeof__(MQTTAsync_waitForCompletion) *waitForCompletion;
    __typeof__(MQTTAsync_disconnect) *disconnect;
    __typeof__(MQTTAsync_destroy) *destroy;
    __typeof__(MQTTAsync_freeMessage) *freeMessage;
    __typeof__(MQTTAsync_free) *free;
};

struct flight {
    int64_t id;
    MQTTAsync_token token;
    int acked;
};

struct mqtt {
    struct paho api;
    const struct config *cfg;
    struct queue *q;
    int cancel_fd;
    pthread_t thread;
    MQTTAsync client;
    char uri[CONFIG_PATH_LEN + 16];

    pthread_mutex_t lock; /* guards the ev_* fields and acks, written by paho's thread */
    int ev_connected, ev_failed, ev_lost, ev_birth;
    int fail_code;
    char fail_msg[200];
    MQTTAsync_token acks[WINDOW * 2];
    size_t nacks;

    uint64_t published, dropped, drops_unlogged;

    int connected, connecting;
    int64_t next_attempt_ms;
    int backoff_ms;
    char last_error[200];

    sqlite3 *db;
    sqlite3_stmt *q_backlog, *q_energy, *q_save;
    int64_t cursor, saved_cursor, sent_upto, last_save_ms, next_history_ms;
    struct flight ring[WINDOW];
    size_t ring_head, ring_len;
    int replay_wait_ms;
    int cursor_save_failing;

    struct live_pack packs[CONFIG_MAX_PORTS][CONFIG_MAX_PACKS_PER_PORT];

    /* mqtt_get_status(): copies the thread publishes once per turn for the daemon's status */
    _Atomic int st_connected, st_history;
    _Atomic int64_t st_acked;
};

static int open_history(struct mqtt *m);
static void close_history_if_broken(struct mqtt *m);

/* ---- paho callbacks: record, never act ---- */

static void on_connect(void *ctx, MQTTAsync_successData *resp)
{
    (void)resp;
    struct mqtt *m = ctx;
    pthread_mutex_lock(&m->lock);
    m->ev_connected = 1;
    pthread_mutex_unlock(&m->lock);
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
}

static void on_lost(void *ctx, char *cause)
{
    struct mqtt *m = ctx;
    pthread_mutex_lock(&m->lock);
    m->ev_lost = 1;
    snprintf(m->fail_msg, sizeof m->fail_msg, "%s", cause ? cause : "connection lost");
    pthread_mutex_unlock(&m->lock);
}

static int on_message(void *ctx, char *topic, int len, MQTTAsync_message *msg)
{
    struct mqtt *m = ctx;
    (void)len;
    if (msg->payloadlen == 6 && memcmp(msg->payload, "online", 6) == 0) {
        pthread_mutex_lock(&m->lock);
        m->ev_birth = 1; /* Home Assistant restarted: send discovery again */
        pthread_mutex_unlock(&m->lock);
    }
    m->api.freeMessage(&msg);
    m->api.free(topic);
    return 1;
}

/* Called by paho when the broker acknowledged a history message (PUBACK). Only history
 * messages carry this callback, so at most WINDOW tokens wait here: none is ever dropped. */
static void on_history_acked(void *ctx, MQTTAsync_successData *resp)
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

/* ---- publishing ---- */

static int stopping(const struct mqtt *m);

static const char *paho_error(int rc)
{
    switch (rc) {
    case MQTTASYNC_DISCONNECTED: return "not connected";
    case MQTTASYNC_MAX_MESSAGES_INFLIGHT: return "too many messages in flight";
    case MQTTASYNC_MAX_BUFFERED_MESSAGES: return "paho's send buffer is full";
    case MQTTASYNC_NO_MORE_MSGIDS: return "no message id free";
    case MQTTASYNC_BAD_UTF8_STRING: return "topic is not valid UTF-8";
    case MQTTASYNC_NULL_PARAMETER: return "null parameter";
    case MQTTASYNC_BAD_QOS: return "bad QoS";
    default: return "publish failed";
    }
}

/* The client is momentarily full: waiting frees room (paho writes its buffer to the socket,
 * the broker acknowledges messages in flight). */
static int paho_busy(int rc)
{
    return rc == MQTTASYNC_MAX_BUFFERED_MESSAGES || rc == MQTTASYNC_MAX_MESSAGES_INFLIGHT ||
           rc == MQTTASYNC_NO_MORE_MSGIDS;
}

static int publish(struct mqtt *m, const char *topic, const char *payload, int retain, int qos,
                   MQTTAsync_token *tok)
{
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;
    msg.payload = (void *)(uintptr_t)payload;
    msg.payloadlen = (int)strlen(payload);
    msg.qos = qos;
    msg.retained = retain;
    if (tok) { /* history (and the goodbye): the acknowledgement is recorded */
        opts.onSuccess = on_history_acked;
        opts.context = m;
    }
    int rc = m->api.sendMessage(m->client, topic, &msg, &opts);
    if (rc == MQTTASYNC_SUCCESS && tok)
        *tok = opts.token;
    return rc;
}

/* A message given up: counted, and logged at warning level (the first of a connection with
 * its topic; later ones are summed up when the connection is back, see note_drops_logged). */
static void drop(struct mqtt *m, const char *topic, int rc)
{
    m->dropped++;
    if (m->drops_unlogged++ == 0)
        log_warn("mqtt: %s not published: %s (code %d); %llu messages given up so far", topic,
                 paho_error(rc), rc, (unsigned long long)m->dropped);
}

static void note_drops_logged(struct mqtt *m)
{
    if (m->drops_unlogged > 1)
        log_warn("mqtt: %llu messages given up since the last report (%llu in all)",
                 (unsigned long long)(m->drops_unlogged - 1), (unsigned long long)m->dropped);
    m->drops_unlogged = 0;
}

/* Discovery, availability and states. A burst (the discovery of a whole bank is hundreds of
 * configs) fills paho's buffer of unsent messages faster than its thread writes them: wait for
 * room, a few milliseconds at a time, instead of dropping the message. Gives up (counted,
 * logged) only when the client is disconnected, the daemon stops, or no room came for
 * PUBLISH_WAIT_MS. */
static int publish_wait(struct mqtt *m, const char *topic, const char *payload, int retain,
                        int qos)
{
    int64_t deadline = now_mono_ms() + PUBLISH_WAIT_MS;
    int rc = publish(m, topic, payload, retain, qos, NULL);
    while (paho_busy(rc) && now_mono_ms() < deadline && !stopping(m)) {
        struct pollfd pfd = {.fd = m->cancel_fd, .events = POLLIN};
        (void)poll(&pfd, 1, 2);
        rc = publish(m, topic, payload, retain, qos, NULL);
    }
    if (rc != MQTTASYNC_SUCCESS)
        drop(m, topic, rc);
    else
        m->published++;
    return rc;
}

/* For the ha builders. A message that could not be sent is counted and the burst goes on;
 * without a connection it stops (everything is sent again on the next connection). */
static int emit(void *ctx, const char *topic, const char *payload, int retain)
{
    struct mqtt *m = ctx;
    int rc = publish_wait(m, topic, payload, retain, retain ? 1 : m->cfg->mqtt.qos);
    return rc == MQTTASYNC_DISCONNECTED ? rc : 0;
}

static void set_availability(struct mqtt *m, size_t port, size_t pack, int online)
{
    struct live_pack *lp = &m->packs[port][pack];
    if (lp->available == online || !m->connected)
        return;
    char topic[256];
    ha_topic_pack(m->cfg, m->cfg->ports[port].packs[pack].id, "availability", topic,
                  sizeof topic);
    if (publish_wait(m, topic, online ? "online" : "offline", 1, 1) == MQTTASYNC_SUCCESS)
        lp->available = online;
}

static void energy_of(struct mqtt *m, const char *pack_id, double *charged, double *discharged)
{
    *charged = *discharged = NAN;
    if (m->q_energy == NULL)
        return;
    sqlite3_reset(m->q_energy);
    sqlite3_bind_text(m->q_energy, 1, pack_id, -1, SQLITE_STATIC);
    if (sqlite3_step(m->q_energy) == SQLITE_ROW) {
        *charged = sqlite3_column_double(m->q_energy, 0) / 1e6;
        *discharged = sqlite3_column_double(m->q_energy, 1) / 1e6;
    }
    sqlite3_reset(m->q_energy);
}

static void discover_pack(struct mqtt *m, size_t port, size_t pack)
{
    struct live_pack *lp = &m->packs[port][pack];
    uint8_t roles[SAMPLE_MAX_TEMPS];
    memcpy(roles, lp->s.temp_role, sizeof roles);
    struct ha_pack_info info = {
        .port = &m->cfg->ports[port],
        .pack = &m->cfg->ports[port].packs[pack],
        .id = lp->have_id ? &lp->id : NULL,
        .ncells = lp->have ? lp->s.ncells : 0,
        .ntemps = lp->have ? lp->s.ntemps : 0,
        .temp_roles = roles,
    };
    ha_pack_discovery(m->cfg, &info, emit, m);
    lp->discovered_cells = info.ncells;
}

static void publish_bank(struct mqtt *m, const char *bank_id)
{
    struct bank_input in[CONFIG_MAX_PORTS * CONFIG_MAX_PACKS_PER_PORT];
    size_t n = 0;
    int64_t now = now_wall_ms();
    for (size_t i = 0; i < m->cfg->nports; i++) {
        const struct config_port *port = &m->cfg->ports[i];
        for (size_t k = 0; k < port->npacks; k++) {
            if (strcmp(port->packs[k].bank, bank_id) != 0)
                continue;
            struct live_pack *lp = &m->packs[i][k];
            in[n].pack_id = port->packs[k].id;
            in[n].s = lp->have ? &lp->s : NULL;
            in[n].fresh = lp->have && lp->available != 0 &&
                          now - lp->ts_ms < (int64_t)port->interval_s * 1000 * FRESH_INTERVALS;
            energy_of(m, port->packs[k].id, &in[n].charged_kwh, &in[n].discharged_kwh);
            n++;
        }
    }
    int32_t margin = 1000; /* 10 % */
    for (size_t b = 0; b < m->cfg->nbanks; b++) {
        if (strcmp(m->cfg->banks[b].id, bank_id) == 0)
            margin = m->cfg->banks[b].soc_divergence_pct * 100;
    }
    struct bank_state bs;
    bank_aggregate(in, n, margin, &bs);
    char *json = ha_bank_state(&bs);
    char topic[256];
    if (json)
        publish_wait(m, ha_topic_bank(m->cfg, bank_id, topic, sizeof topic), json, 0,
                     m->cfg->mqtt.qos);
    free(json);
}

static void publish_pack(struct mqtt *m, size_t port, size_t pack)
{
    struct live_pack *lp = &m->packs[port][pack];
    const struct config_port *cp = &m->cfg->ports[port];
    const struct config_pack *pk = &cp->packs[pack];
    if (!lp->have || !m->connected)
        return;
    if (lp->discovered_cells != lp->s.ncells)
        discover_pack(m, port, pack); /* the first sample tells how many cells to announce */
    struct ha_pack_extra x = {.ts_ms = lp->ts_ms,
                              .polls = lp->polls,
                              .timeouts = lp->timeouts,
                              .checksum_errors = lp->checksum_errors,
                              .malformed = lp->malformed};
    energy_of(m, pk->id, &x.charged_kwh, &x.discharged_kwh);
    char *json = ha_pack_state(&lp->s, config_protocol_name(cp->protocol), &x);
    char topic[256];
    if (json)
        publish_wait(m, ha_topic_pack(m->cfg, pk->id, "state", topic, sizeof topic), json, 0,
                     m->cfg->mqtt.qos);
    free(json);
    /* the replaced program had one pack: its topics follow the first pack of the first port */
    if (m->cfg->mqtt.compat && port == 0 && pack == 0)
        ha_compat_states(m->cfg, &lp->s, emit, m);
    publish_bank(m, pk->bank);
}

/* Discovery for everything, availability and the current state: on every (re)connection and
 * when Home Assistant announces itself. */
static void publish_all(struct mqtt *m)
{
    for (size_t i = 0; i < m->cfg->nports; i++) {
        for (size_t k = 0; k < m->cfg->ports[i].npacks; k++)
            discover_pack(m, i, k);
    }
    ha_node_discovery(m->cfg, emit, m);
    for (size_t b = 0; b < m->cfg->nbanks; b++)
        ha_bank_discovery(m->cfg, b, emit, m);
    if (m->cfg->mqtt.compat)
        ha_compat_discovery(m->cfg, emit, m);
    /* packs known to the history but gone from the configuration: clear their entities */
    sqlite3_stmt *st;
    if (m->db && sqlite3_prepare_v2(m->db, "SELECT pack_id, serial FROM packs", -1, &st, NULL) ==
                     SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *id = (const char *)sqlite3_column_text(st, 0);
            const char *serial = (const char *)sqlite3_column_text(st, 1);
            int known = 0;
            for (size_t i = 0; i < m->cfg->nports && !known; i++) {
                for (size_t k = 0; k < m->cfg->ports[i].npacks && !known; k++)
                    known = strcmp(m->cfg->ports[i].packs[k].id, id) == 0;
            }
            if (!known)
                ha_pack_clear(m->cfg, id, serial ? serial : "", emit, m);
        }
        sqlite3_finalize(st);
    }
    for (size_t i = 0; i < m->cfg->nports; i++) {
        for (size_t k = 0; k < m->cfg->ports[i].npacks; k++) {
            struct live_pack *lp = &m->packs[i][k];
            int want = lp->available;
            lp->available = -1;
            if (want >= 0)
                set_availability(m, i, k, want);
            publish_pack(m, i, k);
        }
    }
}

/* ---- history replay ---- */

static void save_cursor(struct mqtt *m)
{
    if (m->q_save == NULL || m->cursor == m->saved_cursor)
        return;
    sqlite3_reset(m->q_save);
    sqlite3_bind_int64(m->q_save, 1, m->cursor);
    int rc = sqlite3_step(m->q_save);
    if (rc == SQLITE_DONE) {
        if (m->cursor_save_failing)
            log_info("mqtt: the replay cursor is saved again");
        m->saved_cursor = m->cursor;
        m->cursor_save_failing = 0;
    } else if (!m->cursor_save_failing) {
        /* kept in memory meanwhile; a restart before it is saved repeats some history */
        log_warn("mqtt: cannot save the replay cursor (%s); retrying", sqlite3_errstr(rc));
        m->cursor_save_failing = 1;
    }
    sqlite3_reset(m->q_save);
    m->last_save_ms = now_mono_ms();
}

static void take_acks(struct mqtt *m)
{
    MQTTAsync_token acks[WINDOW * 2];
    pthread_mutex_lock(&m->lock);
    size_t n = m->nacks;
    memcpy(acks, m->acks, n * sizeof acks[0]);
    m->nacks = 0;
    pthread_mutex_unlock(&m->lock);
    for (size_t a = 0; a < n; a++) {
        for (size_t i = 0; i < m->ring_len; i++) {
            struct flight *f = &m->ring[(m->ring_head + i) % WINDOW];
            if (f->token == acks[a] && !f->acked) {
                f->acked = 1;
                break;
            }
        }
    }
    /* the cursor moves over the acknowledged prefix only */
    while (m->ring_len && m->ring[m->ring_head].acked) {
        m->cursor = m->ring[m->ring_head].id;
        m->ring_head = (m->ring_head + 1) % WINDOW;
        m->ring_len--;
    }
}

/* Sends the backlog after sent_upto while the window has room, at most REPLAY_PER_TICK rows a
 * turn so that live readings go first. Sets replay_wait_ms, how long the loop may then wait
 * for a reading: TICK_MS when caught up or when the window is full (an acknowledgement ends
 * that wait, see on_history_acked), 0 when the turn's budget ran out, 1 when paho's buffer
 * was full (it empties by itself within a millisecond or so). */
static void replay(struct mqtt *m)
{
    m->replay_wait_ms = TICK_MS;
    if (m->q_backlog == NULL)
        return;
    int budget = REPLAY_PER_TICK;
    while (budget > 0 && m->ring_len < WINDOW) {
        int want = (int)(WINDOW - m->ring_len) < budget ? (int)(WINDOW - m->ring_len) : budget;
        sqlite3_reset(m->q_backlog);
        sqlite3_bind_int64(m->q_backlog, 1, m->sent_upto);
        sqlite3_bind_int(m->q_backlog, 2, want);
        int got = 0;
        while (sqlite3_step(m->q_backlog) == SQLITE_ROW) {
            int64_t id = sqlite3_column_int64(m->q_backlog, 0);
            const char *pack = (const char *)sqlite3_column_text(m->q_backlog, 1);
            const char *proto = (const char *)sqlite3_column_text(m->q_backlog, 2);
            const char *roles = (const char *)sqlite3_column_text(m->q_backlog, 3);
            int64_t ts = sqlite3_column_int64(m->q_backlog, 4);
            struct sample s;
            got++;
            if (store_sample_from_row(m->q_backlog, 6, roles, &s) != 0) {
                m->sent_upto = id; /* an undecodable row cannot be sent: skip it, say so */
                log_warn("mqtt: history sample %lld cannot be decoded; skipped", (long long)id);
                continue;
            }
            s.address = (uint8_t)sqlite3_column_int(m->q_backlog, 5);
            cJSON *o = report_sample_json(&s, proto, ts);
            cJSON_AddNumberToObject(o, "seq", (double)id);
            cJSON_AddStringToObject(o, "pack", pack);
            char *json = cJSON_PrintUnformatted(o);
            cJSON_Delete(o);
            char topic[256];
            MQTTAsync_token tok = 0;
            int rc = json ? publish(m, ha_topic_pack(m->cfg, pack, "history", topic,
                                                     sizeof topic),
                                    json, 0, 1, &tok)
                          : MQTTASYNC_FAILURE;
            free(json);
            if (rc != MQTTASYNC_SUCCESS) {
                /* full or disconnected: this row goes again next turn, nothing is lost */
                sqlite3_reset(m->q_backlog);
                if (paho_busy(rc))
                    m->replay_wait_ms = 1;
                return;
            }
            struct flight *f = &m->ring[(m->ring_head + m->ring_len) % WINDOW];
            f->id = id;
            f->token = tok;
            f->acked = 0;
            m->ring_len++;
            m->sent_upto = id;
            m->published++;
            budget--;
        }
        sqlite3_reset(m->q_backlog);
        if (got < want)
            return; /* caught up */
    }
    if (budget == 0)
        m->replay_wait_ms = 0; /* the window has room: go on after the live readings */
}

/* ---- connection ---- */

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
    if (c->tls_ca_file[0] || c->tls_cert_file[0]) {
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
        note_drops_logged(m);
        char topic[256];
        publish_wait(m, ha_topic_status(m->cfg, topic, sizeof topic), "online", 1, 1);
        snprintf(topic, sizeof topic, "%s/status", m->cfg->mqtt.discovery_prefix);
        MQTTAsync_responseOptions so = MQTTAsync_responseOptions_initializer;
        int rc = m->api.subscribe(m->client, topic, 1, &so);
        if (rc != MQTTASYNC_SUCCESS)
            log_warn("mqtt: cannot subscribe to %s (code %d): discovery is not sent again when "
                     "Home Assistant restarts until the next connection", topic, rc);
        m->ring_len = 0;
        m->sent_upto = m->cursor;
        publish_all(m);
    } else if (birth && m->connected) {
        log_info("mqtt: Home Assistant is online: sending discovery again");
        publish_all(m);
    }
}

static void take_reading(struct mqtt *m, const struct reading *r)
{
    if (r->port_idx >= m->cfg->nports || r->pack_idx >= m->cfg->ports[r->port_idx].npacks)
        return;
    struct live_pack *lp = &m->packs[r->port_idx][r->pack_idx];
    if (r->kind == READING_IDENTITY) {
        lp->id = r->id;
        lp->have_id = 1;
        if (m->connected)
            discover_pack(m, r->port_idx, r->pack_idx); /* now with serial and firmware */
        return;
    }
    if (r->kind == READING_HEALTH) {
        if (r->health == PACK_OFFLINE || r->health == PACK_ONLINE) {
            int online = r->health == PACK_ONLINE;
            if (m->connected)
                set_availability(m, r->port_idx, r->pack_idx, online);
            else
                lp->available = online; /* published on connection */
            if (!online && m->connected)
                publish_bank(m, m->cfg->ports[r->port_idx].packs[r->pack_idx].bank);
        }
        return;
    }
    lp->s = r->s;
    lp->have = 1;
    lp->ts_ms = r->ts_ms;
    lp->polls = r->polls;
    lp->timeouts = r->timeouts;
    lp->checksum_errors = r->checksum_errors;
    lp->malformed = r->malformed;
    if (m->connected) {
        set_availability(m, r->port_idx, r->pack_idx, 1);
        publish_pack(m, r->port_idx, r->pack_idx);
    } else {
        lp->available = 1;
    }
}

static int stopping(const struct mqtt *m)
{
    struct pollfd pfd = {.fd = m->cancel_fd, .events = POLLIN};
    return poll(&pfd, 1, 0) > 0;
}

static void *mqtt_main(void *arg)
{
    struct mqtt *m = arg;
    while (!stopping(m)) {
        handle_events(m);
        if (!m->connected && !m->connecting && now_mono_ms() >= m->next_attempt_ms)
            start_connect(m);
        struct reading r;
        /* how long depends on the replay (see replay()); an acknowledgement ends the wait */
        int got = queue_pop(m->q, &r, m->connected ? m->replay_wait_ms : TICK_MS);
        while (got == 0) {
            take_reading(m, &r);
            got = queue_pop(m->q, &r, 0);
        }
        if (m->connected) {
            take_acks(m);
            /* all that was sent is acknowledged: save now, so that a crash repeats nothing (a
             * batch, or the backlog replayed at connection); while a long replay keeps the
             * window full, every CURSOR_SAVE_MS */
            if (m->ring_len == 0 && m->cursor != m->saved_cursor)
                save_cursor(m);
            replay(m);
        }
        atomic_store(&m->st_connected, m->connected);
        atomic_store(&m->st_history, m->q_save != NULL);
        atomic_store(&m->st_acked, m->cursor);
        if (now_mono_ms() - m->last_save_ms >= CURSOR_SAVE_MS) {
            save_cursor(m);
            if (m->cfg->storage.enabled && m->db == NULL && now_mono_ms() >= m->next_history_ms) {
                if (open_history(m) == 0 && m->q_save)
                    log_info("mqtt: history at %s readable; replay starts", m->cfg->storage.path);
                close_history_if_broken(m);
                m->next_history_ms = now_mono_ms() + 5000;
            }
        }
    }
    /* drain what the pollers left, say goodbye */
    struct reading r;
    while (queue_pop(m->q, &r, 0) == 0)
        take_reading(m, &r);
    if (m->connected) {
        char topic[256];
        MQTTAsync_token tok = 0;
        int rc = publish(m, ha_topic_status(m->cfg, topic, sizeof topic), "offline", 1, 1, &tok);
        /* the whole stop stays under 2 s; the broker's last will says "offline" otherwise */
        if (rc != MQTTASYNC_SUCCESS || m->api.waitForCompletion(m->client, tok, 500) !=
                                           MQTTASYNC_SUCCESS)
            log_warn("mqtt: \"offline\" not confirmed by the broker (code %d); its last will "
                     "says it instead", rc);
        take_acks(m);
        MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
        d.timeout = 500;
        m->api.disconnect(m->client, &d);
    }
    save_cursor(m);
    note_drops_logged(m);
    log_info("mqtt: %llu messages published, %llu given up", (unsigned long long)m->published,
             (unsigned long long)m->dropped);
    return NULL;
}

static int open_history(struct mqtt *m)
{
    if (!m->cfg->storage.enabled)
        return 0;
    if (sqlite3_open_v2(m->cfg->storage.path, &m->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        return -1;
    sqlite3_busy_timeout(m->db, 5000);
    sqlite3_exec(m->db, "PRAGMA cache_size = -512", NULL, NULL, NULL); /* reads in id order */
    if (sqlite3_prepare_v2(m->db,
                           "SELECT s.id, p.pack_id, p.protocol, p.temp_roles, s.ts, p.address, "
                           STORE_SAMPLE_COLUMNS
                           " FROM samples s JOIN packs p ON p.id = s.pack WHERE s.id > ?"
                           " ORDER BY s.id LIMIT ?",
                           -1, &m->q_backlog, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(m->db,
                           "SELECT e.charged_mwh, e.discharged_mwh FROM energy e JOIN packs p"
                           " ON p.id = e.pack WHERE p.pack_id = ?",
                           -1, &m->q_energy, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(m->db,
                           "INSERT INTO meta (key, value) VALUES ('" MQTT_CURSOR_KEY "', ?)"
                           " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                           -1, &m->q_save, NULL) != SQLITE_OK)
        return -1;
    /* The first time MQTT runs on a database, history starts now, not at the first sample. */
    sqlite3_stmt *st;
    int have = 0;
    if (sqlite3_prepare_v2(m->db, "SELECT value FROM meta WHERE key = '" MQTT_CURSOR_KEY "'", -1,
                           &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) {
            m->cursor = sqlite3_column_int64(st, 0);
            have = 1;
        }
        sqlite3_finalize(st);
    }
    if (!have && sqlite3_prepare_v2(m->db, "SELECT coalesce(max(id), 0) FROM samples", -1, &st,
                                    NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            m->cursor = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        m->saved_cursor = -1;
        save_cursor(m);
    }
    m->saved_cursor = m->cursor;
    m->sent_upto = m->cursor;
    return 0;
}

static void close_history(struct mqtt *m)
{
    sqlite3_finalize(m->q_backlog);
    sqlite3_finalize(m->q_energy);
    sqlite3_finalize(m->q_save);
    m->q_backlog = m->q_energy = m->q_save = NULL;
    if (m->db)
        sqlite3_close(m->db);
    m->db = NULL;
}

/* A half-opened history (a statement failed) is closed so that it is retried whole. */
static void close_history_if_broken(struct mqtt *m)
{
    if (m->db && (m->q_backlog == NULL || m->q_energy == NULL || m->q_save == NULL))
        close_history(m);
}

static void mqtt_free(struct mqtt *m)
{
    close_history(m);
    if (m->client)
        m->api.destroy(&m->client);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* Resolves every paho function we call; 0, or -ENOENT with a log line saying what to install. */
static int paho_load(struct paho *p)
{
    /* never unloaded: paho's own threads may outlive MQTTAsync_destroy */
    p->lib = dlopen(PAHO_LIBRARY, RTLD_NOW | RTLD_NODELETE);
    if (p->lib == NULL) {
        log_error("mqtt: cannot load %s (%s): install the Debian package libpaho-mqtt1.3",
                  PAHO_LIBRARY, dlerror());
        return -ENOENT;
    }
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
            log_error("mqtt: %s has no %s: a paho.mqtt.c older than 1.3?", PAHO_LIBRARY,
                      syms[i].name);
            return -ENOENT;
        }
    }
    return 0;
}

int mqtt_start(const struct config *cfg, struct queue *q, int cancel_fd, struct mqtt **out)
{
    struct mqtt *m = calloc(1, sizeof *m);
    if (m == NULL)
        return -ENOMEM;
    if (paho_load(&m->api) != 0) {
        free(m);
        return -ENOENT;
    }
    m->cfg = cfg;
    m->q = q;
    m->cancel_fd = cancel_fd;
    m->backoff_ms = 1000;
    pthread_mutex_init(&m->lock, NULL);
    for (size_t i = 0; i < CONFIG_MAX_PORTS; i++) {
        for (size_t k = 0; k < CONFIG_MAX_PACKS_PER_PORT; k++)
            m->packs[i][k].available = -1;
    }
    const struct config_mqtt *c = &cfg->mqtt;
    int tls = c->tls_ca_file[0] || c->tls_cert_file[0];
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
    if (open_history(m) != 0)
        log_warn("mqtt: cannot read the history at %s yet (%s); the replay starts when it can",
                 cfg->storage.path, m->db ? sqlite3_errmsg(m->db) : "cannot open");
    close_history_if_broken(m);
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
}
