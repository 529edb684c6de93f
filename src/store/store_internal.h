/* store_internal: the writer's state, shared by store.c (open, migrate, close) and
 * store_writer.c (the thread: batches, rollups, energy, events, retention). */
#ifndef BMSFLEET_STORE_INTERNAL_H
#define BMSFLEET_STORE_INTERNAL_H

#include <pthread.h>
#include <time.h>

#include "energy.h"
#include "now.h"
#include "progress.h"
#include "store.h"

#define PENDING_MAX 8192            /* readings kept in memory while writing fails */
#define RETENTION_EVERY_MS 600000   /* look for old rows every 10 minutes */
#define RETENTION_BATCH 2000        /* rows per delete: never holds the writer for long */
#define VACUUM_PAGES_STR "256" /* pages given back per retention step */
#define STORE_PAGE_SIZE_STR "1024" /* the page size of new databases (store_migrate) */
/* The hourly rollups wait in memory this long (the writer's thread; tools write them at every
 * commit): each pack's current hour was one more page per commit. meta.rollup_1h_upto says
 * which samples they hold; a start folds the samples after it (store_rollup_recover). */
#define ROLLUP_FLUSH_MS 60000
#define HEARTBEAT_S 60              /* an idle daemon still writes its run row this often */
/* The longest one writer turn may take when nothing hangs: each statement waits at most the
 * 5 s busy timeout, a commit of PENDING_MAX readings on a slow SD card a few seconds more, a
 * retention step is RETENTION_BATCH rows. A minute past that is stuck. */
#define WRITER_TURN_LIMIT_MS 60000
#define WRITER_BATCH 128            /* readings that wake the writer before its commit is due */

struct pack_state {
    int64_t db_id;
    struct energy_state energy;
    uint32_t alarms, protection;
    int have_flags;
    int roles_written;
    /* this batch: newest sample id, first and last timestamps (0 = no sample) */
    int64_t batch_last_id, batch_min_ts, batch_max_ts;
};

struct acc { /* one rollup bucket's delta */
    int hourly;
    int64_t pack, bucket;
    int64_t n, v_sum, v_min, v_max, i_sum, i_min, i_max;
    int64_t soc_n, soc_sum, soc_min, soc_max;
    int64_t cell_min, cell_max, temp_min, temp_max; /* INT64_MIN/MAX = none */
    double charge, discharge;
};

struct store {
    sqlite3 *db;
    const struct config *cfg;
    char path[CONFIG_PATH_LEN];
    struct queue *q;
    pthread_t thread;
    int running;
    pthread_mutex_t lock; /* stats */
    struct store_stats stats;
    struct pack_state packs[CONFIG_MAX_PORTS][CONFIG_MAX_PACKS_PER_PORT];
    struct reading *pending;
    size_t npending, cap_pending;
    struct pack_state (*scratch)[CONFIG_MAX_PACKS_PER_PORT]; /* a batch's copy of packs */
    struct acc *accs;
    size_t naccs, cap_accs;
    /* the hourly deltas of the committed samples after meta.rollup_1h_upto, not yet written;
     * hacc_upto: the newest of those samples */
    struct acc *hacc;
    size_t nhacc, cap_hacc;
    int64_t hacc_upto, rollup_written_mono;
    int defer_rollups; /* the writer's thread runs: rollups every ROLLUP_FLUSH_MS */
    int rollups_stopped; /* out of memory and unwritable: rollup_1h waits for the next start */
    int failing;
    uint64_t outage_dropped; /* readings dropped since writing began to fail */
    struct progress progress;
    int64_t next_retention_ms;
    int retention_busy;
    /* the daemon's row in daemon_runs (store_start): 0 until its first write */
    int daemon;
    int64_t run_id, run_started_ms, run_written_mono;
    sqlite3_stmt *ins_run, *up_run;
    sqlite3_stmt *ins_sample, *ins_event, *up_1m, *up_1h, *up_energy, *up_seen, *up_roles,
        *up_serial, *up_upto;
};

/* At open: the samples after meta.rollup_1h_upto (committed while their hourly deltas waited in
 * memory, then a crash or a power cut) folded into rollup_1h, and the mark moved to the newest
 * sample. 0, or -1 with SQLite's message in err. */
int store_rollup_recover(struct store *s, char *err, size_t cap);

#endif
