/* supervisor: READY=1, WATCHDOG=1 and STATUS= for the service manager, from the main thread.
 * The pollers and the writer only write their progress records; everything here reads. */
#include "supervisor.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mqtt.h"
#include "notify.h"
#include "poller.h"
#include "progress.h"
#include "store.h"

#define MAX_WATCHED (CONFIG_MAX_PORTS + 1)

struct supervisor {
    struct supervisor_threads t;
    struct notify *notify;
    const struct progress *watched[MAX_WATCHED];
    int stuck_logged[MAX_WATCHED];
    size_t nwatched;
    int ready, stopping;
    int64_t ping_every_ms; /* 0: no watchdog asked for */
    int64_t next_ping_ms;
    int64_t last_status_ms;
    char status[200];
};

int supervisor_new(const struct supervisor_threads *t, struct supervisor **out)
{
    struct supervisor *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->t = *t;
    if (notify_open(&s->notify)) {
        free(s);
        return -ENOMEM;
    }
    for (size_t i = 0; i < t->cfg->nports; i++) {
        if (t->pollers[i])
            s->watched[s->nwatched++] = poller_progress(t->pollers[i]);
    }
    if (t->store)
        s->watched[s->nwatched++] = store_progress(t->store);
    uint64_t usec;
    if (notify_watchdog_usec(s->notify, &usec) == 0) {
        /* half the period, as sd_watchdog_enabled(3) advises: one late turn is not fatal */
        s->ping_every_ms = (int64_t)(usec / 2000) > 0 ? (int64_t)(usec / 2000) : 1;
        log_debug("systemd watchdog: %llu ms; WATCHDOG=1 every %lld ms while every thread "
                  "makes progress",
                  (unsigned long long)(usec / 1000), (long long)s->ping_every_ms);
    }
    *out = s;
    return 0;
}

void supervisor_free(struct supervisor *s)
{
    if (s == NULL)
        return;
    notify_close(s->notify);
    free(s);
}

__attribute__((format(printf, 4, 5))) static void append(char *buf, size_t cap, size_t *len,
                                                          const char *fmt, ...)
{
    if (*len >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (k > 0)
        *len = *len + (size_t)k < cap ? *len + (size_t)k : cap;
}

void supervisor_format(const struct supervisor_summary *sum, char *buf, size_t cap)
{
    size_t len = 0;
    if (cap == 0)
        return;
    buf[0] = '\0';
    append(buf, cap, &len, "%zu/%zu packs online", sum->online, sum->packs);
    if (sum->ports_down)
        append(buf, cap, &len, ", %zu port(s) down", sum->ports_down);
    if (sum->history == SUPERVISOR_HISTORY_FAILING)
        append(buf, cap, &len, ", history failing");
    if (sum->backlog >= 0)
        append(buf, cap, &len, ", backlog %lld", (long long)sum->backlog);
    if (sum->mqtt != SUPERVISOR_MQTT_OFF)
        append(buf, cap, &len, ", mqtt %s",
               sum->mqtt == SUPERVISOR_MQTT_CONNECTED ? "connected" : "disconnected");
    if (sum->stuck)
        append(buf, cap, &len, ", %s stuck", sum->stuck);
}

static void summarize(const struct supervisor *s, struct supervisor_summary *sum)
{
    const struct config *cfg = s->t.cfg;
    memset(sum, 0, sizeof *sum);
    sum->backlog = -1;
    for (size_t i = 0; i < cfg->nports; i++) {
        sum->packs += cfg->ports[i].npacks;
        struct poller *p = s->t.pollers[i];
        if (p == NULL || !poller_port_up(p))
            sum->ports_down++;
        for (size_t k = 0; p && k < cfg->ports[i].npacks; k++) {
            struct pack_stats st;
            if (poller_pack_stats(p, k, &st) == 0 && st.health == PACK_ONLINE)
                sum->online++;
        }
    }
    struct store_stats ss = {0};
    if (s->t.store) {
        store_get_stats(s->t.store, &ss);
        sum->history = ss.failing ? SUPERVISOR_HISTORY_FAILING : SUPERVISOR_HISTORY_OK;
    }
    if (s->t.mqtt) {
        struct mqtt_status ms;
        mqtt_get_status(s->t.mqtt, &ms);
        sum->mqtt = ms.connected ? SUPERVISOR_MQTT_CONNECTED : SUPERVISOR_MQTT_DOWN;
        if (s->t.store && ms.history)
            sum->backlog = ss.last_sample_id > ms.acked_id ? ss.last_sample_id - ms.acked_id : 0;
    }
}

/* Logs each thread once when it goes stale and once when it turns again; returns the first
 * stale one, or NULL. */
static const char *check_threads(struct supervisor *s, int64_t now)
{
    const char *first = NULL;
    for (size_t i = 0; i < s->nwatched; i++) {
        const struct progress *p = s->watched[i];
        if (!progress_stale(p, now)) {
            if (s->stuck_logged[i])
                log_info("watchdog: %s makes progress again", p->name);
            s->stuck_logged[i] = 0;
            continue;
        }
        if (first == NULL)
            first = p->name;
        if (!s->stuck_logged[i])
            log_warn("watchdog: %s is stuck: no progress for %lld s (allowed %lld s)%s", p->name,
                     (long long)(progress_idle_ms(p, now) / 1000),
                     (long long)(p->period_ms / 1000),
                     s->ping_every_ms ? "; WATCHDOG=1 withheld: the service manager restarts "
                                        "the daemon"
                                      : "");
        s->stuck_logged[i] = 1;
    }
    return first;
}

static int all_attempted(const struct supervisor *s)
{
    for (size_t i = 0; i < s->t.cfg->nports; i++) {
        if (s->t.pollers[i] && !poller_attempted(s->t.pollers[i]))
            return 0;
    }
    return 1;
}

void supervisor_tick(struct supervisor *s, int64_t now)
{
    if (s->stopping)
        return;
    const char *stuck = check_threads(s, now);
    if (!s->ready && !all_attempted(s))
        return;
    struct supervisor_summary sum;
    summarize(s, &sum);
    sum.stuck = stuck;
    char line[sizeof s->status];
    supervisor_format(&sum, line, sizeof line);
    char msg[sizeof line + 32];
    if (!s->ready) {
        s->ready = 1;
        snprintf(s->status, sizeof s->status, "%s", line);
        s->last_status_ms = now;
        snprintf(msg, sizeof msg, "READY=1\nSTATUS=%s", line);
        notify_send(s->notify, msg);
        log_debug("ready: %s", line);
        s->next_ping_ms = now;
    } else if (strcmp(line, s->status) != 0 &&
               (now - s->last_status_ms >= SUPERVISOR_STATUS_MIN_MS || stuck)) {
        snprintf(s->status, sizeof s->status, "%s", line);
        s->last_status_ms = now;
        snprintf(msg, sizeof msg, "STATUS=%s", line);
        notify_send(s->notify, msg);
    }
    if (s->ping_every_ms && stuck == NULL && now >= s->next_ping_ms) {
        notify_send(s->notify, "WATCHDOG=1");
        s->next_ping_ms = now + s->ping_every_ms;
    }
}

void supervisor_reloading(struct supervisor *s, int begin)
{
    if (s->ready && !s->stopping)
        notify_send(s->notify, begin ? "RELOADING=1" : "READY=1");
}

void supervisor_stopping(struct supervisor *s)
{
    if (s == NULL || s->stopping)
        return;
    s->stopping = 1;
    notify_send(s->notify, "STOPPING=1\nSTATUS=stopping");
}
