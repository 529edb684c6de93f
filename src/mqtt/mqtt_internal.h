/* mqtt_internal: what the MQTT thread's files share (mqtt.c: the session and the thread;
 * mqtt_publish.c: live states, availability and discovery bursts; mqtt_replay.c: the history
 * replay and its cursor). Everything here runs on the MQTT thread, except the paho callbacks,
 * which only record under m->lock. Not a public header. */
#ifndef BMSFLEET_MQTT_INTERNAL_H
#define BMSFLEET_MQTT_INTERNAL_H

#include <MQTTAsync.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "queue.h"
#include "s42.h"
#include "sample.h"

struct store;
struct store_backlog;

#define WINDOW 256           /* history messages in flight (unacknowledged) at most */
#define REPLAY_PER_TICK 500  /* history messages sent per loop turn at most: live goes first */
#define TICK_MS 50
#define BACKOFF_MAX_MS 60000
#define CURSOR_SAVE_MS 500
#define CURSOR_RETRY_MS 1000 /* after a failed save: a full disk is not written every turn */
#define FRESH_INTERVALS 3
#define BUFFERED 256         /* messages paho holds before writing them to the socket */
#define STORAGE_EVERY_MS 10000
#define STORAGE_CHECK_MS 500 /* how often the history's state is looked at */
#define PUBLISH_WAIT_MS 10000 /* a message waits this long at most for room in that buffer */
#define REPLAY_IDLE_MS 250   /* caught up with the history: look for new rows this often */
#define LIVE_BATCH_MS 1000   /* live states gathered this long at most, sent as one burst */
#define LIVE_BATCH_MAX 64    /* or until this many readings wait */

struct live_pack {
    struct sample s;
    int have;
    int64_t ts_ms;
    int available;        /* -1 unknown, 0 offline, 1 online */
    int bank_round;       /* a state published since its bank's last state */
    unsigned discovered_cells; /* cells in the discovery published so far */
    struct s42_identity id;    /* valid when have_id */
    int have_id;
    uint64_t polls, timeouts, checksum_errors, malformed;
    double charged_kwh, discharged_kwh; /* from the history, read at energy_ms (0: never) */
    int64_t energy_ms;
};

/* paho is loaded when MQTT is configured (dlopen), not linked: a daemon without MQTT does not
 * carry paho. The variant with TLS pulls in OpenSSL (about 2 MB of resident pages), so it is
 * loaded only for a broker with TLS; the plain one otherwise, the TLS one when the plain one is
 * missing (it speaks plain TCP as well). */
#define PAHO_LIBRARY_TLS "libpaho-mqtt3as.so.1"
#define PAHO_LIBRARY_PLAIN "libpaho-mqtt3a.so.1"

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

    struct store *writer;          /* the history writer whose state we show, or NULL */
    int storage_sent, storage_failing; /* what <base>/<node>/storage says */
    char storage_error[256];
    uint64_t storage_waiting, storage_dropped;
    int64_t storage_sent_ms, storage_checked_ms;
    struct store_backlog *history; /* NULL: not readable (yet) */
    char history_why[200];         /* why the last open failed */
    int replay_rc;                 /* paho's code for the row the last replay stopped at */
    int replay_read_failing;
    int64_t cursor, saved_cursor, sent_upto, last_save_ms, next_history_ms;
    struct flight ring[WINDOW];
    size_t ring_head, ring_len;
    int replay_wait_ms;
    int batch_ms; /* how long the first reading of a burst waits for the others */
    int64_t replay_next_ms; /* caught up: the next look at the history, not before */
    int cursor_save_failing;
    uint64_t cursor_save_failures; /* failed saves, each retried */
    char cursor_error[160];        /* why the last save failed; "" once it is saved */

    struct live_pack packs[CONFIG_MAX_PORTS][CONFIG_MAX_PACKS_PER_PORT];
    int64_t bank_sent_ms[CONFIG_MAX_BANKS]; /* monotonic: each bank's last state */

    /* mqtt_get_status(): copies the thread publishes once per turn for the daemon's status */
    _Atomic int st_connected, st_history;
    _Atomic int64_t st_acked;
    _Atomic uint64_t st_published, st_dropped, st_live, st_live_ns;
    _Atomic int st_cursor_failing;
    _Atomic uint64_t st_cursor_failures;
};

/* ---- mqtt.c ---- */
/* The daemon is stopping (cancel_fd readable). */
int mqtt_stopping(const struct mqtt *m);
/* paho's callback for an acknowledged history message. */
void mqtt_on_history_acked(void *ctx, MQTTAsync_successData *resp);

/* ---- mqtt_publish.c ---- */
/* One message; with tok, the acknowledgement is recorded (history, the goodbye). paho's code. */
int mqtt_publish(struct mqtt *m, const char *topic, const char *payload, int retain, int qos,
                 MQTTAsync_token *tok);
/* The client is momentarily full: waiting frees room. */
int mqtt_paho_busy(int rc);
/* A message given up: counted and logged (see mqtt_note_drops_logged). */
void mqtt_drop(struct mqtt *m, const char *topic, int rc);
void mqtt_note_drops_logged(struct mqtt *m);
/* Publishes, waiting for room in paho's buffer up to PUBLISH_WAIT_MS; counts what is given up. */
int mqtt_publish_wait(struct mqtt *m, const char *topic, const char *payload, int retain,
                      int qos);
void mqtt_set_availability(struct mqtt *m, size_t port, size_t pack, int online);
void mqtt_discover_pack(struct mqtt *m, size_t port, size_t pack);
void mqtt_publish_bank(struct mqtt *m, const char *bank_id);
void mqtt_publish_pack(struct mqtt *m, size_t port, size_t pack);
/* Discovery for everything, availability and the current states (every connection, and when
 * Home Assistant announces itself). */
void mqtt_publish_all(struct mqtt *m);
/* The history's state on <base>/<node>/storage: failing while the writer's commits fail or
 * the replay cursor cannot be saved. Looked at every STORAGE_CHECK_MS at most, published when
 * it changes (while failing, the count waiting in memory at most every STORAGE_EVERY_MS), and
 * with force on every connection. */
void mqtt_publish_storage(struct mqtt *m, int force);
/* Takes a reading of the queue into the live state, publishing it when connected. */
void mqtt_take_reading(struct mqtt *m, const struct reading *r);

/* ---- mqtt_replay.c ---- */
int mqtt_open_history(struct mqtt *m);
void mqtt_close_history(struct mqtt *m);
/* Saves the cursor if it moved (the stop, and mqtt_save_cursor_when_due); a failure is
 * counted, logged once and shown on <base>/<node>/storage until a save succeeds. */
void mqtt_save_cursor(struct mqtt *m);
/* Saves it when due: at once when everything sent is acknowledged, every CURSOR_SAVE_MS while
 * a long replay keeps the window full, every CURSOR_RETRY_MS while saves fail. */
void mqtt_save_cursor_when_due(struct mqtt *m);
/* Moves the cursor over the acknowledged prefix of the window. */
void mqtt_take_acks(struct mqtt *m);
/* Sends the next part of the backlog; sets m->replay_wait_ms. */
void mqtt_replay(struct mqtt *m);

#endif
