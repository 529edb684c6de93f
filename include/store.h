/* store: the SQLite history. One writer thread owns the writing connection; it takes readings
 * from its queue, keeps them in memory until the commit interval, then writes them in one
 * transaction together with the rollups, energy counters and events they imply. A failed
 * commit (disk full, I/O error) is rolled back and retried with the same readings, so nothing
 * is lost beyond what memory can hold, and nothing half-written is ever committed. Retention
 * prunes in small batches between commits, folding the samples it deletes into the 1-minute
 * rollups, and gives space back with incremental vacuum. */
#ifndef BMSFLEET_STORE_H
#define BMSFLEET_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "config.h"
#include "queue.h"
#include "sample.h"

struct store;

/* The meta key where the MQTT side keeps the id of the last history sample the broker
 * acknowledged (retention reports samples deleted before they were delivered). */
#define STORE_MQTT_CURSOR_KEY "mqtt_history_cursor"

/* Opens (creating the directory and the file when missing) and migrates the database, and
 * registers the configuration's packs. On failure *err holds a sentence. */
int store_open(const struct config *cfg, struct store **out, char *err, size_t errcap);
/* The same in two steps, for the daemon: store_new does no I/O; store_connect opens the
 * database and returns 0, -EAGAIN when the failure may pass by itself (disk full, I/O error,
 * lock) — the writer thread then keeps trying, keeping the readings in memory — or -EINVAL
 * when it will not (a database from a newer bmsfleet, not a database, no permission). */
int store_new(const struct config *cfg, struct store **out);
int store_connect(struct store *s, char *err, size_t errcap);
/* Starts the writer thread on q, as the daemon: the run gets a row in daemon_runs (its start,
 * its last write, updated at every commit and at least every HEARTBEAT_S, and its stop), so
 * readers see whether a daemon is writing. store_write_now records no run. */
int store_start(struct store *s, struct queue *q);
/* Call after queue_close(q): the writer drains the queue, commits, records the stop, and is
 * joined. */
void store_stop(struct store *s);
void store_close(struct store *s);

/* Writes readings at once, in one transaction, on the caller's thread (the writer thread must
 * not be running): for tools, tests and benchmarks. 0, or -EIO when the commit failed. */
int store_write_now(struct store *s, const struct reading *r, size_t n);
/* Runs retention to completion as if the time were now_ms (UTC epoch ms), then gives the free
 * pages back. The writer does the same in small steps every 10 minutes. */
int store_prune_now(struct store *s, int64_t now_ms, uint64_t *deleted);
/* The open connection (read and write), for tools and tests on the caller's thread. */
sqlite3 *store_db(struct store *s);

/* Opens an existing history read-only for people's tools (export, top): never creates it,
 * refuses what is not a bmsfleet history or comes from a newer bmsfleet. 0 or -1 with *err. */
int store_open_readonly(const char *path, int busy_ms, sqlite3 **out, char *err, size_t cap);

/* Applies the embedded migrations to db (inside one transaction each). A database newer than
 * this binary is refused. 0 or -1 with *err set. */
int store_migrate(sqlite3 *db, char *err, size_t errcap);
/* The schema version this binary writes. */
int store_schema_version(void);

/* The cells blob of a sample (format 1: byte offsets from the minimum; format 2: u16 each).
 * Returns its length (0 when the sample has no cells). */
size_t store_cells_blob(const struct sample *s, uint8_t *out, size_t cap);
/* One letter per temperature sensor: c cell, m MOS, a ambient, v average. */
void store_temp_roles(const struct sample *s, char *out, size_t cap);

/* The sample columns of a samples row in table order, voltage_mv .. temps (20 columns), as
 * SQL text for a SELECT list; and the reverse of the writer's encoding: rebuilds a sample
 * from those columns starting at column `col`, with the temperature roles of the pack. */
#define STORE_SAMPLE_COLUMNS                                                                       \
    "voltage_mv, current_ma, soc_cpct, soh_cpct, remaining_mah, full_mah, design_mah, cycles,"   \
    " cell_min_mv, cell_max_mv, cell_min_idx, cell_max_idx, temp_min_dc, temp_max_dc, alarms,"   \
    " protection, state, balancing, cells, temps, flags_known"
int store_sample_from_row(sqlite3_stmt *st, int col, const char *temp_roles, struct sample *out);

/* Counters (for logs and tests). */
struct store_stats {
    uint64_t committed;   /* readings written */
    uint64_t commits, failed_commits;
    uint64_t dropped;     /* readings lost because memory was full while writing failed */
    uint64_t pruned;      /* rows deleted by retention */
    uint64_t pruned_undelivered; /* samples deleted before MQTT delivered them */
    int64_t last_sample_id;      /* the newest committed sample (0 = none) */
    int failing;                 /* the last commit failed: readings wait in memory */
    uint64_t commit_ns_total;    /* time spent writing the commits counted in commits */
    uint64_t commit_ns_max;      /* the longest of them */
    uint64_t waiting;            /* readings in memory, not yet committed */
    char error[160];             /* why the last commit failed; "" when it did not */
};
void store_get_stats(struct store *s, struct store_stats *out);

struct progress;
/* The writer thread's liveness record (progress.h): it turns at least every 200 ms when idle;
 * one turn takes at most a commit and a retention step. */
const struct progress *store_progress(const struct store *s);

#endif
