/* http_internal: what the HTTP server's files share (http.c: the server, routing, limits and
 * authentication; http_data.c: the bank's latest state read from the history; http_page.c: the
 * status page; http_metrics.c: the Prometheus exposition; http_api.c: the JSON). Everything
 * here runs on the server's one thread. Not a public header. */
#ifndef BMSFLEET_HTTP_INTERNAL_H
#define BMSFLEET_HTTP_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include <sqlite3.h>

#include "config.h"
#include "http.h"

#define HTTP_MAX_PACKS (CONFIG_MAX_PORTS * CONFIG_MAX_PACKS_PER_PORT)
#define HTTP_MAX_BANKS (2 * CONFIG_MAX_BANKS) /* the history may hold banks no longer configured */
#define HTTP_MAX_CELLS 32
#define HTTP_MAX_TEMPS 16
#define HTTP_CODE_CLASSES 7

/* The values of a pack's newest sample (v_latest), by the view's column names. */
enum http_pack_col {
    PC_SOC, PC_SOH, PC_VOLTAGE, PC_CURRENT, PC_POWER, PC_REMAINING, PC_FULL, PC_CYCLES,
    PC_CELL_MIN, PC_CELL_MAX, PC_CELL_DIFF, PC_TEMP_MIN, PC_TEMP_MAX, PC_AGE, PC_OFFLINE_AFTER,
    PC_N
};
extern const char *const http_pack_cols[PC_N];

struct http_pack {
    char id[CONFIG_ID_LEN], bank[CONFIG_ID_LEN], port[CONFIG_ID_LEN], name[CONFIG_ID_LEN];
    char health[16]; /* online, stale, offline; "" when the history has no health event */
    char time[32];   /* the local time of the newest sample, "" when none */
    int has_sample;
    double v[PC_N]; /* NAN: absent */
    int cell_min_idx, cell_max_idx; /* 1-based, 0: absent */
    int flags_known;                /* the pack's alarm flags were read with that sample */
    size_t nalarms, nprotections;
    char flags[512]; /* the alarms and protections of that sample in words, comma separated */
    size_t ncells;
    double cell_v[HTTP_MAX_CELLS];
    unsigned char cell_balancing[HTTP_MAX_CELLS];
    size_t ntemps;
    double temp_c[HTTP_MAX_TEMPS];
    char temp_role[HTTP_MAX_TEMPS][8];
    double charged_kwh, discharged_kwh; /* NAN: none yet */
};

/* v_bank_latest */
enum http_bank_col {
    BC_SOC, BC_CURRENT, BC_POWER, BC_REMAINING, BC_FULL, BC_CELL_MIN, BC_CELL_MAX, BC_SPREAD,
    BC_TEMP_MAX, BC_AGE, BC_N
};
extern const char *const http_bank_cols[BC_N];

struct http_bank {
    char id[CONFIG_ID_LEN], name[CONFIG_ID_LEN];
    int packs, online;
    double v[BC_N];
};

/* The bank's state, read from the history in one read transaction (http_read_state). */
struct http_state {
    int64_t now_ms;
    int have_daemon;
    char daemon_state[16]; /* v_daemon.state of the newest run */
    double daemon_age_s;   /* since its last write */
    size_t npacks, nbanks;
    struct http_pack packs[HTTP_MAX_PACKS];
    struct http_bank banks[HTTP_MAX_BANKS];
    int64_t backlog;     /* samples the broker has not acknowledged; -1 unknown */
    double replay_lag_s; /* the age of the oldest of them; 0 none, NAN unknown */
};

/* The server; every field but the MHD handles is the thread's own. */
struct http {
    const struct config *cfg;
    http_live_fn live_fn;
    void *live_arg;
    struct http_live live;   /* the last one asked for */
    struct http_state state; /* the last one read */
    sqlite3 *db;             /* read-only; opened at the first request that reads */
    char db_why[320];        /* why it could not be opened */
    int64_t started_ms;      /* wall clock */

    /* libmicrohttpd, loaded at start */
    void *lib;
    struct mhd_api *api;
    struct MHD_Daemon *daemon;
    struct MHD_Connection *conn; /* the request being answered */
    int open_connections;
    char start_msg[512];         /* libmicrohttpd's last word while starting */

    /* counters for /metrics, the thread's own */
    uint64_t requests[HTTP_CODE_CLASSES]; /* by class of status, see http_code_class */
    uint64_t rejected_connections, library_messages, messages_unlogged;
    uint64_t request_ns_total, requests_timed;
    int64_t log_window_ms;
    unsigned log_in_window;
};

/* The slots of http->requests: 200, 400, 401, 404, 405, 413, 5xx. */
size_t http_code_class(unsigned code);
extern const unsigned http_code_classes[HTTP_CODE_CLASSES];

/* The history connection, opened when missing (why says why not). NULL when not readable. */
sqlite3 *http_db(struct http *h);
/* The connection failed in a way that another open may cure: close it. */
void http_db_failed(struct http *h);
/* Asks the daemon for its counters (h->live). */
void http_refresh_live(struct http *h);
/* The MQTT backlog and replay lag into h->state from h->live, inside the caller's read
 * transaction. SQLite's code. */
int http_read_backlog(struct http *h);
/* Asks the daemon for its counters and reads h->state in one read transaction; 0, or -EIO
 * with SQLite's message in why. */
int http_read_state(struct http *h, char *why, size_t cap);
/* The configured name of a bank, else its id. */
const char *http_bank_name(const struct http *h, const char *id);
/* The live counters of pack id, or NULL. */
const struct http_pack_live *http_live_pack(const struct http *h, const char *id);

/* The pages. Each writes its body to f and returns the HTTP status; on a status >= 400 the
 * body is a one-line explanation. */
unsigned http_page(struct http *h, FILE *f);
unsigned http_metrics(struct http *h, FILE *f);
unsigned http_api_latest(struct http *h, FILE *f);
unsigned http_api_history(struct http *h, FILE *f);
/* A query argument of the request being answered, by name; NULL when absent. */
const char *http_arg(struct http *h, const char *name);
unsigned http_healthz(struct http *h, FILE *f);

/* A warning about something given up (a request refused, a library complaint, a read that
 * failed), "http: " in front, at most 10 a minute: the rest are counted and summed up. */
void http_warn(struct http *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Text for HTML: & < > " ' escaped. */
void http_html(FILE *f, const char *s);

#endif
