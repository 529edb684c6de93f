/* mqtt_publish: what the MQTT thread publishes live (see mqtt.h): pack, bank and compatibility
 * states as readings arrive, availability, and the Home Assistant discovery bursts built by
 * ha*.c, waiting for room in paho's buffer instead of dropping a message. */
#include "mqtt_internal.h"

#include <math.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bank.h"
#include "ha.h"
#include "log.h"
#include "now.h"
#include "report.h"
#include "store.h"
#include "store_backlog.h"

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
int mqtt_paho_busy(int rc)
{
    return rc == MQTTASYNC_MAX_BUFFERED_MESSAGES || rc == MQTTASYNC_MAX_MESSAGES_INFLIGHT ||
           rc == MQTTASYNC_NO_MORE_MSGIDS;
}

int mqtt_publish(struct mqtt *m, const char *topic, const char *payload, int retain, int qos,
                   MQTTAsync_token *tok)
{
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;
    msg.payload = (void *)(uintptr_t)payload;
    msg.payloadlen = (int)strlen(payload);
    msg.qos = qos;
    msg.retained = retain;
    if (tok) { /* history (and the goodbye): the acknowledgement is recorded */
        opts.onSuccess = mqtt_on_history_acked;
        opts.context = m;
    }
    int rc = m->api.sendMessage(m->client, topic, &msg, &opts);
    if (rc == MQTTASYNC_SUCCESS && tok)
        *tok = opts.token;
    return rc;
}

/* A message given up: counted, and logged at warning level (the first of a connection with
 * its topic; later ones are summed up when the connection is back, see note_drops_logged). */
void mqtt_drop(struct mqtt *m, const char *topic, int rc)
{
    m->dropped++;
    if (m->drops_unlogged++ == 0)
        log_warn("mqtt: %s not published: %s (code %d); %llu messages given up so far", topic,
                 paho_error(rc), rc, (unsigned long long)m->dropped);
}

void mqtt_note_drops_logged(struct mqtt *m)
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
int mqtt_publish_wait(struct mqtt *m, const char *topic, const char *payload, int retain,
                        int qos)
{
    int64_t deadline = now_mono_ms() + PUBLISH_WAIT_MS;
    int rc = mqtt_publish(m, topic, payload, retain, qos, NULL);
    while (mqtt_paho_busy(rc) && now_mono_ms() < deadline && !mqtt_stopping(m)) {
        struct pollfd pfd = {.fd = m->cancel_fd, .events = POLLIN};
        (void)poll(&pfd, 1, 2);
        rc = mqtt_publish(m, topic, payload, retain, qos, NULL);
    }
    if (rc != MQTTASYNC_SUCCESS)
        mqtt_drop(m, topic, rc);
    else
        m->published++;
    return rc;
}

/* For the ha builders. A message that could not be sent is counted and the burst goes on;
 * without a connection it stops (everything is sent again on the next connection). */
static int mqtt_emit(void *ctx, const char *topic, const char *payload, int retain)
{
    struct mqtt *m = ctx;
    int rc = mqtt_publish_wait(m, topic, payload, retain, retain ? 1 : m->cfg->mqtt.qos);
    return rc == MQTTASYNC_DISCONNECTED ? rc : 0;
}

void mqtt_set_availability(struct mqtt *m, size_t port, size_t pack, int online)
{
    struct live_pack *lp = &m->packs[port][pack];
    if (lp->available == online || !m->connected)
        return;
    char topic[256];
    ha_topic_pack(m->cfg, m->cfg->ports[port].packs[pack].id, "availability", topic,
                  sizeof topic);
    if (mqtt_publish_wait(m, topic, online ? "online" : "offline", 1, 1) == MQTTASYNC_SUCCESS)
        lp->available = online;
}

/* The energy counters of a pack as the history has them. The history changes only when the
 * writer commits, every commit_interval_s: a value read less than that ago is at most one
 * commit behind, as a fresh read could be, so it is kept instead of asking SQLite again for
 * every pack of the bank at every poll (a read, its locks and allocations: most of the MQTT
 * thread's cost per poll before). */
static void energy_of(struct mqtt *m, size_t port, size_t pack, double *charged,
                      double *discharged)
{
    struct live_pack *lp = &m->packs[port][pack];
    int64_t now = now_mono_ms();
    if (m->history == NULL) {
        *charged = *discharged = NAN;
        return;
    }
    int64_t keep_ms = (int64_t)m->cfg->storage.commit_interval_s * 1000;
    if (lp->energy_ms == 0 || now - lp->energy_ms >= keep_ms) {
        store_backlog_energy(m->history, m->cfg->ports[port].packs[pack].id, &lp->charged_kwh,
                             &lp->discharged_kwh);
        lp->energy_ms = now;
    }
    *charged = lp->charged_kwh;
    *discharged = lp->discharged_kwh;
}

void mqtt_discover_pack(struct mqtt *m, size_t port, size_t pack)
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
    ha_pack_discovery(m->cfg, &info, mqtt_emit, m);
    lp->discovered_cells = info.ncells;
}

static size_t bank_index(const struct config *cfg, const char *bank_id)
{
    for (size_t b = 0; b < cfg->nbanks; b++) {
        if (strcmp(cfg->banks[b].id, bank_id) == 0)
            return b;
    }
    return 0; /* cannot be: the configuration checks every pack's bank */
}

void mqtt_publish_bank(struct mqtt *m, const char *bank_id)
{
    struct bank_input in[CONFIG_MAX_PORTS * CONFIG_MAX_PACKS_PER_PORT];
    size_t n = 0;
    int64_t now = now_wall_ms();
    m->bank_sent_ms[bank_index(m->cfg, bank_id)] = now_mono_ms();
    for (size_t i = 0; i < m->cfg->nports; i++) {
        const struct config_port *port = &m->cfg->ports[i];
        for (size_t k = 0; k < port->npacks; k++) {
            if (strcmp(port->packs[k].bank, bank_id) != 0)
                continue;
            struct live_pack *lp = &m->packs[i][k];
            lp->bank_round = 0;
            in[n].pack_id = port->packs[k].id;
            in[n].s = lp->have ? &lp->s : NULL;
            in[n].fresh = lp->have && lp->available != 0 &&
                          now - lp->ts_ms < (int64_t)port->interval_s * 1000 * FRESH_INTERVALS;
            energy_of(m, i, k, &in[n].charged_kwh, &in[n].discharged_kwh);
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
    char json[REPORT_JSON_MAX];
    char topic[256];
    ha_topic_bank(m->cfg, bank_id, topic, sizeof topic);
    if (ha_bank_state(json, sizeof json, &bs) >= 0)
        mqtt_publish_wait(m, topic, json, 0, m->cfg->mqtt.qos);
    else
        mqtt_drop(m, topic, MQTTASYNC_FAILURE); /* cannot be: the buffer holds any state */
}

/* A bank's state once per round of its packs, not after each of them (one message instead of
 * one per pack): when every pack of the bank that answers has published its state since the
 * bank's last one, or when the shortest interval of its packs has passed since then (a pack
 * that stopped answering does not hold it back). */
static void bank_after_pack(struct mqtt *m, size_t port, size_t pack)
{
    const char *bank = m->cfg->ports[port].packs[pack].bank;
    m->packs[port][pack].bank_round = 1;
    int all = 1;
    int64_t every = INT64_MAX;
    for (size_t i = 0; i < m->cfg->nports; i++) {
        const struct config_port *cp = &m->cfg->ports[i];
        for (size_t k = 0; k < cp->npacks; k++) {
            if (strcmp(cp->packs[k].bank, bank) != 0)
                continue;
            const struct live_pack *lp = &m->packs[i][k];
            if (lp->have && lp->available != 0 && !lp->bank_round)
                all = 0;
            if ((int64_t)cp->interval_s * 1000 < every)
                every = (int64_t)cp->interval_s * 1000;
        }
    }
    if (all || now_mono_ms() - m->bank_sent_ms[bank_index(m->cfg, bank)] >= every)
        mqtt_publish_bank(m, bank);
}

void mqtt_publish_pack(struct mqtt *m, size_t port, size_t pack)
{
    struct live_pack *lp = &m->packs[port][pack];
    const struct config_port *cp = &m->cfg->ports[port];
    const struct config_pack *pk = &cp->packs[pack];
    if (!lp->have || !m->connected)
        return;
    if (lp->discovered_cells != lp->s.ncells)
        mqtt_discover_pack(m, port, pack); /* the first sample tells how many cells to announce */
    struct ha_pack_extra x = {.ts_ms = lp->ts_ms,
                              .polls = lp->polls,
                              .timeouts = lp->timeouts,
                              .checksum_errors = lp->checksum_errors,
                              .malformed = lp->malformed};
    energy_of(m, port, pack, &x.charged_kwh, &x.discharged_kwh);
    char json[REPORT_JSON_MAX];
    char topic[256];
    ha_topic_pack(m->cfg, pk->id, "state", topic, sizeof topic);
    if (ha_pack_state(json, sizeof json, &lp->s, config_protocol_name(cp->protocol), &x) >= 0)
        mqtt_publish_wait(m, topic, json, 0, m->cfg->mqtt.qos);
    else
        mqtt_drop(m, topic, MQTTASYNC_FAILURE); /* cannot be: the buffer holds any state */
    /* the replaced program had one pack: its topics follow the first pack of the first port */
    if (m->cfg->mqtt.compat && port == 0 && pack == 0)
        ha_compat_states(m->cfg, &lp->s, mqtt_emit, m);
    bank_after_pack(m, port, pack);
}

/* The history's state as <base>/<node>/storage shows it: the writer's, and failing as well
 * while the replay cursor cannot be saved. On a full disk either write can fail first; when it
 * was the cursor's, the state used to stay "ok". */
static void storage_now(struct mqtt *m, struct ha_storage *hs, char *error, size_t cap)
{
    struct store_stats st = {0};
    if (m->writer)
        store_get_stats(m->writer, &st);
    if (st.failing)
        snprintf(error, cap, "%s", st.error);
    else if (m->cursor_save_failing)
        snprintf(error, cap, "the MQTT replay cursor cannot be saved: %s", m->cursor_error);
    else
        error[0] = '\0';
    *hs = (struct ha_storage){.failing = st.failing || m->cursor_save_failing,
                              .error = error,
                              .waiting = st.waiting,
                              .dropped = st.dropped};
}

void mqtt_publish_storage(struct mqtt *m, int force)
{
    if (!m->cfg->storage.enabled || !m->connected)
        return;
    int64_t now = now_mono_ms();
    if (!force && now - m->storage_checked_ms < STORAGE_CHECK_MS)
        return;
    m->storage_checked_ms = now;
    struct ha_storage hs;
    char error[sizeof m->storage_error];
    storage_now(m, &hs, error, sizeof error);
    int changed = !m->storage_sent || hs.failing != m->storage_failing ||
                  strcmp(error, m->storage_error) != 0 || hs.dropped != m->storage_dropped;
    int counts = hs.waiting != m->storage_waiting && now - m->storage_sent_ms >= STORAGE_EVERY_MS;
    if (!force && !changed && !counts)
        return;
    char topic[256];
    ha_topic_storage(m->cfg, topic, sizeof topic);
    char *json = ha_storage_state(&hs);
    if (json == NULL) {
        mqtt_drop(m, topic, MQTTASYNC_FAILURE); /* out of memory: tried again next check */
        return;
    }
    if (mqtt_publish_wait(m, topic, json, 1, 1) == MQTTASYNC_SUCCESS) {
        m->storage_sent = 1;
        m->storage_failing = hs.failing;
        snprintf(m->storage_error, sizeof m->storage_error, "%s", error);
        m->storage_waiting = hs.waiting;
        m->storage_dropped = hs.dropped;
        m->storage_sent_ms = now;
    }
    free(json);
}

/* A pack the history knows but the configuration no longer has: its entities are cleared. */
static int clear_if_gone(void *u, const char *pack_id, const char *serial)
{
    struct mqtt *m = u;
    for (size_t i = 0; i < m->cfg->nports; i++) {
        for (size_t k = 0; k < m->cfg->ports[i].npacks; k++) {
            if (strcmp(m->cfg->ports[i].packs[k].id, pack_id) == 0)
                return 0;
        }
    }
    ha_pack_clear(m->cfg, pack_id, serial, mqtt_emit, m);
    return 0;
}

/* Discovery for everything, availability and the current state: on every (re)connection and
 * when Home Assistant announces itself. */
void mqtt_publish_all(struct mqtt *m)
{
    for (size_t i = 0; i < m->cfg->nports; i++) {
        for (size_t k = 0; k < m->cfg->ports[i].npacks; k++)
            mqtt_discover_pack(m, i, k);
    }
    ha_node_discovery(m->cfg, mqtt_emit, m);
    mqtt_publish_storage(m, 1);
    for (size_t b = 0; b < m->cfg->nbanks; b++)
        ha_bank_discovery(m->cfg, b, mqtt_emit, m);
    if (m->cfg->mqtt.compat)
        ha_compat_discovery(m->cfg, mqtt_emit, m);
    /* packs known to the history but gone from the configuration: clear their entities */
    if (m->history) {
        int rc = store_backlog_packs(m->history, clear_if_gone, m);
        if (rc != 0)
            log_warn("mqtt: cannot list the packs of the history (%s): the entities of packs "
                     "removed from the configuration stay in Home Assistant",
                     store_backlog_error(m->history));
    }
    for (size_t i = 0; i < m->cfg->nports; i++) {
        for (size_t k = 0; k < m->cfg->ports[i].npacks; k++) {
            struct live_pack *lp = &m->packs[i][k];
            int want = lp->available;
            lp->available = -1;
            if (want >= 0)
                mqtt_set_availability(m, i, k, want);
            mqtt_publish_pack(m, i, k);
        }
    }
}


void mqtt_take_reading(struct mqtt *m, const struct reading *r)
{
    if (r->port_idx >= m->cfg->nports || r->pack_idx >= m->cfg->ports[r->port_idx].npacks)
        return;
    struct live_pack *lp = &m->packs[r->port_idx][r->pack_idx];
    if (r->kind == READING_IDENTITY) {
        lp->id = r->id;
        lp->have_id = 1;
        if (m->connected)
            mqtt_discover_pack(m, r->port_idx, r->pack_idx); /* now with serial and firmware */
        return;
    }
    if (r->kind == READING_HEALTH) {
        if (r->health == PACK_OFFLINE || r->health == PACK_ONLINE) {
            int online = r->health == PACK_ONLINE;
            if (m->connected)
                mqtt_set_availability(m, r->port_idx, r->pack_idx, online);
            else
                lp->available = online; /* published on connection */
            if (!online && m->connected)
                mqtt_publish_bank(m, m->cfg->ports[r->port_idx].packs[r->pack_idx].bank);
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
        mqtt_set_availability(m, r->port_idx, r->pack_idx, 1);
        mqtt_publish_pack(m, r->port_idx, r->pack_idx);
    } else {
        lp->available = 1;
    }
}

