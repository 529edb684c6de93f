/* bench_replay: how fast the MQTT side replays a backlog. Makes a history of N samples
 * (default 100 000, 8 packs, from the pack model) whose MQTT cursor is 0, starts a private
 * mosquitto on a free loopback port, starts the MQTT thread, and measures the time and the CPU
 * of this process until the broker has acknowledged every sample (the cursor reached the
 * last id). usage: bench_replay [samples] */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../tests/broker.h"
#include "config.h"
#include "mqtt.h"
#include "queue.h"
#include "sim.h"
#include "store.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static long long cursor(const char *db_path)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    long long v = -1;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = '" STORE_MQTT_CURSOR_KEY "'",
                           -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 100000;
    if (n <= 0)
        return 2;
    char dir[] = "/tmp/bmsfleet-bench-replay-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 1;
    struct broker br = {0};
    if (broker_start(&br, dir, NULL) != 0) {
        fprintf(stderr, "cannot start mosquitto\n");
        return 1;
    }
    char yaml[2048], db_path[300];
    snprintf(db_path, sizeof db_path, "%s/h.db", dir);
    int k = snprintf(yaml, sizeof yaml,
                     "node: { id: bench }\nports:\n  - name: a\n    device: /dev/null\n"
                     "    packs:\n");
    for (int i = 1; i <= 8; i++)
        k += snprintf(yaml + k, sizeof yaml - (size_t)k, "      - { address: %d, id: p%d }\n", i,
                      i);
    snprintf(yaml + k, sizeof yaml - (size_t)k,
             "storage:\n  path: %s\n  retention: { raw_days: 36500 }\n"
             "mqtt:\n  host: 127.0.0.1\n  port: %d\n",
             db_path, br.port);
    struct config *cfg;
    struct config_errors errs;
    if (config_load_string("bench.yaml", yaml, &cfg, &errs) != 0) {
        fprintf(stderr, "%s\n", errs.msg[0]);
        return 1;
    }
    /* the backlog */
    struct store *st;
    char why[256];
    if (store_open(cfg, &st, why, sizeof why) != 0) {
        fprintf(stderr, "%s\n", why);
        return 1;
    }
    struct sim_pack packs[8];
    for (int i = 0; i < 8; i++)
        sim_pack_init(&packs[i], 1, (uint8_t)(i + 1), 16);
    size_t batch = 4000;
    struct reading *r = calloc(batch, sizeof *r);
    long long t0 = 1735689600000LL; /* 2025-01-01 */
    for (long done = 0; done < n;) {
        size_t m = 0;
        for (; m < batch && done < n; m++, done++) {
            int p = (int)(done % 8);
            long step = done / 8;
            sim_pack_step(&packs[p], (double)step * 30);
            r[m].kind = READING_SAMPLE;
            r[m].pack_idx = (uint16_t)p;
            r[m].ts_ms = t0 + step * 30000;
            sim_pack_sample(&packs[p], &r[m].s);
        }
        if (store_write_now(st, r, m) != 0)
            return 1;
    }
    free(r);
    sqlite3_exec(store_db(st), "INSERT OR REPLACE INTO meta VALUES ('" STORE_MQTT_CURSOR_KEY
                               "', 0)",
                 NULL, NULL, NULL);
    store_close(st);

    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct queue *q;
    struct mqtt *m;
    queue_new(64, &q);
    double c0 = cpu_s(), w0 = now_s();
    if (mqtt_start(cfg, q, efd, NULL, &m) != 0)
        return 1;
    while (cursor(db_path) < n && now_s() - w0 < 600)
        usleep(20000);
    double wall = now_s() - w0, cpu = cpu_s() - c0;
    long long done = cursor(db_path);
    uint64_t one = 1;
    ssize_t w = write(efd, &one, sizeof one);
    (void)w;
    queue_close(q);
    mqtt_stop(m);
    queue_free(q);
    close(efd);
    broker_stop(&br);
    config_free(cfg);
    printf("replayed %lld of %ld samples to a local mosquitto (QoS 1, acknowledged)\n", done, n);
    printf("wall %.2f s: %.0f messages/s; CPU of bmsfleet %.2f s: %.1f us per message\n", wall,
           (double)done / wall, cpu, cpu / (double)done * 1e6);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    int rc = system(cmd);
    (void)rc;
    return done == n ? 0 : 1;
}
