/* http: the daemon's own web server (src/http/), for a site without Home Assistant or without a
 * link to it: a status page for a phone at the box (/), Prometheus metrics (/metrics), the
 * latest values and the history as JSON (/api/latest, /api/history) and a health check
 * (/healthz). One thread (libmicrohttpd's internal polling thread; the library, with GnuTLS
 * behind it, is loaded only when `http:` is configured), read-only (GET and HEAD), bounded
 * request sizes and connections, optional basic authentication.
 *
 * What it shows is read from the history on the thread's own read-only SQLite connection, so a
 * request never waits for, or holds up, a poller or the writer. Only the counters that exist in
 * the running daemon alone (polls, timeouts, commit and publish times, MQTT's state) come from
 * the daemon, through http_live_fn. */
#ifndef BMSFLEET_HTTP_H
#define BMSFLEET_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "queue.h"
#include "store.h"

/* One pack's poll counters, as the poller keeps them. The strings are the configuration's. */
struct http_pack_live {
    const char *pack, *port, *bank;
    enum pack_health health;
    uint64_t polls, ok, timeouts, checksum_errors, malformed, refused, foreign, port_errors;
    uint64_t alarm_failures;
};

/* What only the running daemon knows, filled by http_live_fn on the HTTP thread. */
struct http_live {
    size_t npacks;
    struct http_pack_live packs[CONFIG_MAX_PORTS * CONFIG_MAX_PACKS_PER_PORT];
    size_t nports;
    struct {
        const char *name;
        int up; /* the port is open */
    } ports[CONFIG_MAX_PORTS];
    int history; /* the history writer runs: store holds its counters */
    struct store_stats store;
    int mqtt; /* MQTT is configured: the mqtt_ fields mean something */
    int mqtt_connected, mqtt_history;
    int64_t mqtt_acked_id; /* the newest history sample the broker acknowledged */
    uint64_t mqtt_published, mqtt_dropped, mqtt_live_readings, mqtt_live_ns_total;
    int mqtt_cursor_failing;       /* the replay cursor's last save failed */
    uint64_t mqtt_cursor_failures; /* failed saves of it, each retried */
};

/* Called on the HTTP thread for each request that shows live counters; must be thread-safe.
 * out is zeroed before the call. */
typedef void (*http_live_fn)(void *arg, struct http_live *out);

struct http;

/* Loads libmicrohttpd and starts listening on cfg->http.listen:port. cfg must outlive the
 * server. 0, or -errno with a sentence in why ("cannot listen on 127.0.0.1:8480: ...",
 * "cannot load libmicrohttpd.so.12 ..."). out is written only on success. */
int http_start(const struct config *cfg, http_live_fn live, void *arg, struct http **out,
               char *why, size_t cap);
/* Stops listening, ends the connections, joins the thread and frees. NULL is fine. */
void http_stop(struct http *h);

/* Connections served at once at most, and the memory of one request (its line and headers). */
#define HTTP_MAX_CONNECTIONS 16
#define HTTP_REQUEST_MEMORY (16 * 1024)

#endif
