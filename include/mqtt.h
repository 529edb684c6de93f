/* mqtt: the MQTT side of the daemon, one thread that owns the paho client.
 *
 * It takes live readings from its queue and publishes pack, bank and compatibility states at
 * once; it keeps Home Assistant discovery and availability (node LWT, per-pack topic) right;
 * and it replays the history: every stored sample after the persisted cursor goes to
 * <base>/<pack>/history with its original timestamp, QoS 1, in id order, and the cursor moves
 * only over samples the broker acknowledged. So after an outage of any length (within
 * retention), and across daemon restarts, every sample arrives once. Connection attempts back
 * off from 1 s to 60 s; the broker's host name is resolved again at every attempt. */
#ifndef BMSFLEET_MQTT_H
#define BMSFLEET_MQTT_H

#include "config.h"
#include "queue.h"
#include "store.h"

struct mqtt;

/* cancel_fd becomes readable when the daemon stops. writer (NULL: none) is the history writer
 * whose state is published on <base>/<node>/storage for Home Assistant. out is written only
 * on success. */
int mqtt_start(const struct config *cfg, struct queue *q, int cancel_fd, struct store *writer,
               struct mqtt **out);
/* After queue_close(q) and cancel_fd: publishes "offline", saves the cursor, disconnects,
 * joins the thread and frees everything. NULL is fine. */
void mqtt_stop(struct mqtt *m);

/* What the daemon's status line says about MQTT, as of the thread's last turn. */
struct mqtt_status {
    int connected;
    int history;      /* the history is open for replay: acked_id means something */
    int64_t acked_id; /* the newest history sample the broker acknowledged (the cursor) */
    uint64_t published, dropped; /* messages handed to paho, messages given up */
    uint64_t live_readings;      /* live readings published (pack, bank, compatibility states) */
    uint64_t live_ns_total;      /* the time their publishing took on the MQTT thread */
    int cursor_failing;          /* the last save of the replay cursor failed */
    uint64_t cursor_failures;    /* failed saves of it (each retried) */
};
void mqtt_get_status(struct mqtt *m, struct mqtt_status *out);

/* The meta key holding the last acknowledged history sample id. */
#define MQTT_CURSOR_KEY STORE_MQTT_CURSOR_KEY

#endif
