/* mqtt_replay: the history replay (see mqtt.h). Every stored sample after the cursor goes to
 * <base>/<pack>/history, QoS 1, in id order, at most WINDOW unacknowledged; the cursor moves
 * over the acknowledged prefix only and is saved in the history's meta table, so a sample
 * arrives once across outages and restarts (at least once when an acknowledgement races a
 * lost connection, see docs/mqtt.md). The history is read through store_backlog.h. */
#include "mqtt_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"

#include "ha.h"
#include "log.h"
#include "now.h"
#include "report.h"
#include "store.h"
#include "store_backlog.h"

void mqtt_save_cursor(struct mqtt *m)
{
    if (m->history == NULL || m->cursor == m->saved_cursor)
        return;
    int rc = store_backlog_save_cursor(m->history, m->cursor);
    m->last_save_ms = now_mono_ms();
    if (rc == 0) {
        if (m->cursor_save_failing)
            log_info("mqtt: the replay cursor is saved again (%llu failed save(s))",
                     (unsigned long long)m->cursor_save_failures);
        m->saved_cursor = m->cursor;
        m->cursor_save_failing = 0;
        m->cursor_error[0] = '\0';
        return;
    }
    /* the cursor goes on in memory, so replay goes on in order; what a restart meanwhile
     * finds saved is older, so it sends some history again: at least once, never a gap */
    m->cursor_save_failures++;
    snprintf(m->cursor_error, sizeof m->cursor_error, "%s", store_backlog_error(m->history));
    if (!m->cursor_save_failing)
        log_warn("mqtt: cannot save the replay cursor (%s); retrying every %d s (a restart "
                 "meanwhile sends some history again)",
                 m->cursor_error, CURSOR_RETRY_MS / 1000);
    m->cursor_save_failing = 1;
}

void mqtt_save_cursor_when_due(struct mqtt *m)
{
    if (m->history == NULL || m->cursor == m->saved_cursor)
        return;
    int64_t since = now_mono_ms() - m->last_save_ms;
    int due = m->cursor_save_failing
                  ? since >= CURSOR_RETRY_MS
                  : (m->connected && m->ring_len == 0) || since >= CURSOR_SAVE_MS;
    if (due)
        mqtt_save_cursor(m);
}

void mqtt_take_acks(struct mqtt *m)
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

/* One backlog row: onto the wire and into the window. Non-zero stops the read (paho is full
 * or disconnected: this row goes again next turn, nothing is lost). */
static int send_history(void *u, int64_t id, const char *pack, const char *protocol,
                        int64_t ts_ms, const struct sample *s)
{
    struct mqtt *m = u;
    if (s == NULL) {
        m->sent_upto = id; /* an undecodable row cannot be sent: skip it, say so */
        log_warn("mqtt: history sample %lld cannot be decoded; skipped", (long long)id);
        return 0;
    }
    char json[REPORT_JSON_MAX];
    struct jsonw w;
    jsonw_init(&w, json, sizeof json);
    jsonw_open(&w, '{');
    report_sample_json_members(&w, s, protocol, ts_ms, 0);
    jsonw_key(&w, "seq");
    jsonw_int(&w, id);
    jsonw_key(&w, "pack");
    jsonw_str(&w, pack);
    jsonw_close(&w, '}');
    char topic[256];
    MQTTAsync_token tok = 0;
    int rc = jsonw_end(&w) >= 0
                 ? mqtt_publish(m, ha_topic_pack(m->cfg, pack, "history", topic, sizeof topic),
                                json, 0, 1, &tok)
                 : MQTTASYNC_FAILURE;
    if (rc != MQTTASYNC_SUCCESS) {
        m->replay_rc = rc;
        return 1;
    }
    struct flight *f = &m->ring[(m->ring_head + m->ring_len) % WINDOW];
    f->id = id;
    f->token = tok;
    f->acked = 0;
    m->ring_len++;
    m->sent_upto = id;
    m->published++;
    return 0;
}

/* Sends the backlog after sent_upto while the window has room, at most REPLAY_PER_TICK rows a
 * turn so that live readings go first. Sets replay_wait_ms, how long the loop may then wait
 * for a reading: until the next look at the history when caught up (REPLAY_IDLE_MS), TICK_MS
 * when the window is full (an acknowledgement ends that wait, see mqtt_on_history_acked), 0
 * when the turn's budget ran out, 1 when paho's buffer was full (it empties by itself within a
 * millisecond or so), CURSOR_SAVE_MS without a history (the loop's own timers). */
/* Caught up with the history: the next look in REPLAY_IDLE_MS, and the loop sleeps until then. */
static void replay_idle(struct mqtt *m, int64_t now)
{
    m->replay_next_ms = now + REPLAY_IDLE_MS;
    m->replay_wait_ms = REPLAY_IDLE_MS;
}

void mqtt_replay(struct mqtt *m)
{
    m->replay_wait_ms = TICK_MS;
    if (m->history == NULL) {
        m->replay_wait_ms = CURSOR_SAVE_MS;
        return;
    }
    /* Caught up: new rows come only with the writer's commits, so the history is looked at
     * every REPLAY_IDLE_MS, not at every reading (a read of SQLite, with its file locks). */
    int64_t now = now_mono_ms();
    if (now < m->replay_next_ms) {
        m->replay_wait_ms = (int)(m->replay_next_ms - now);
        return;
    }
    m->replay_next_ms = 0;
    /* Nothing committed after what was sent: no read of SQLite (and its file locks). The
     * writer knows the newest row: the database's at its start, then each commit's. */
    if (m->writer) {
        struct store_stats st;
        store_get_stats(m->writer, &st);
        if (st.last_sample_id > 0 && st.last_sample_id <= m->sent_upto) {
            replay_idle(m, now);
            return;
        }
    }
    int budget = REPLAY_PER_TICK;
    while (budget > 0 && m->ring_len < WINDOW) {
        int want = (int)(WINDOW - m->ring_len) < budget ? (int)(WINDOW - m->ring_len) : budget;
        int stopped = 0;
        m->replay_rc = MQTTASYNC_SUCCESS;
        int got = store_backlog_read(m->history, m->sent_upto, want, send_history, m, &stopped);
        if (got < 0) {
            /* tried again next turn; said once until a read succeeds */
            if (!m->replay_read_failing)
                log_warn("mqtt: cannot read the history backlog (%s); retrying",
                         store_backlog_error(m->history));
            m->replay_read_failing = 1;
            return;
        }
        if (m->replay_read_failing)
            log_info("mqtt: the history backlog is readable again");
        m->replay_read_failing = 0;
        budget -= got;
        if (stopped) {
            if (mqtt_paho_busy(m->replay_rc))
                m->replay_wait_ms = 1;
            return;
        }
        if (got < want) {
            replay_idle(m, now);
            return;
        }
    }
    if (budget == 0)
        m->replay_wait_ms = 0; /* the window has room: go on after the live readings */
}

int mqtt_open_history(struct mqtt *m)
{
    if (!m->cfg->storage.enabled || m->history)
        return 0;
    if (store_backlog_open(m->cfg->storage.path, &m->history, m->history_why,
                           sizeof m->history_why) != 0)
        return -1;
    m->cursor = store_backlog_cursor(m->history);
    m->saved_cursor = store_backlog_cursor_saved(m->history) ? m->cursor : -1;
    m->sent_upto = m->cursor;
    return 0;
}

void mqtt_close_history(struct mqtt *m)
{
    store_backlog_close(m->history);
    m->history = NULL;
}
