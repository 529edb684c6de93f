/* test_mqtt_scale: the whole bank at the size users run it. The real daemon polls 16 packs on 4
 * ports (real simulators on ptys) in 2 banks and publishes to a real mosquitto; a subscriber
 * counts what arrives against what the configuration implies: every discovery config of every
 * pack, bank and the node (as the pure builders in ha.c produce them for that configuration),
 * states and availability of every pack and bank, on the first connection and again after Home
 * Assistant's birth message. Any shortfall fails. The same for the demo's 8 packs on 2 ports in
 * one bank, and for 64 packs on 8 ports in 4 banks.
 *
 * Found when this test was written: paho refuses a message once 100 are waiting to be written
 * (MQTTASYNC_MAX_BUFFERED_MESSAGES) and the daemon dropped it with a debug line, so the node and
 * bank devices never reached Home Assistant with 8 packs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "broker.h"
#include "config.h"
#include "fixture.h"
#include "ha.h"
#include "proc.h"

#define SEED 11
#define WAIT_MS 90000
#define MAX_PORTS 8

static char dir[256], cfg_path[PROC_PATH_MAX], out_path[PROC_PATH_MAX], err_path[PROC_PATH_MAX],
    db_path[PROC_PATH_MAX], sub_path[PROC_PATH_MAX], sub_err[PROC_PATH_MAX];
static pid_t sim_pids[MAX_PORTS], daemon_pid, sub_pid;
static struct broker br;

struct scale {
    size_t ports, packs_per_port, banks;
};

static const char *port_protocol(size_t i)
{
    return i % 2 == 0 ? "daren" : "pace";
}

static int setup(void **state)
{
    (void)state;
    const struct proc_file files[] = {
        {cfg_path, "config.yaml"}, {out_path, "out.txt"}, {err_path, "err.log"}, {db_path, "h.db"},
        {sub_path, "sub.txt"},     {sub_err, "sub.err"},  {NULL, NULL}};
    return proc_test_dir(dir, sizeof dir, "scale", files);
}

static int stop_all(void **state)
{
    (void)state;
    proc_stop_each((pid_t *[]){&daemon_pid, &sub_pid, NULL});
    proc_stop_pids(sim_pids, MAX_PORTS);
    broker_stop(&br);
    br.port = 0;
    proc_clear_dir(dir, 1);
    return 0;
}

static int teardown(void **state)
{
    stop_all(state);
    rmdir(dir);
    return 0;
}

/* ---- what the configuration implies ---- */

struct msgs {
    char **topic, **payload;
    size_t n, cap;
};

static void msgs_add(struct msgs *m, const char *topic, const char *payload)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 1024;
        m->topic = realloc(m->topic, m->cap * sizeof *m->topic);
        m->payload = realloc(m->payload, m->cap * sizeof *m->payload);
        assert_non_null(m->topic);
        assert_non_null(m->payload);
    }
    m->topic[m->n] = strdup(topic);
    m->payload[m->n] = strdup(payload);
    assert_non_null(m->topic[m->n]);
    m->n++;
}

static void msgs_free(struct msgs *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->topic[i]);
        free(m->payload[i]);
    }
    free(m->topic);
    free(m->payload);
    memset(m, 0, sizeof *m);
}

static int collect(void *ctx, const char *topic, const char *payload, int retain)
{
    assert_true(retain);
    msgs_add(ctx, topic, payload);
    return 0;
}

static void write_config(const struct scale *sc)
{
    FILE *f = fopen(cfg_path, "w");
    assert_non_null(f);
    fprintf(f, "node: { id: site }\nports:\n");
    unsigned pack_no = 0;
    for (size_t i = 0; i < sc->ports; i++) {
        fprintf(f,
                "  - name: port%zu\n    device: %s/bus%zu\n    protocol: %s\n    baud: 115200\n"
                "    timeout_ms: 300\n    interval_s: 2\n    packs:\n",
                i, dir, i, port_protocol(i));
        for (size_t k = 0; k < sc->packs_per_port; k++) {
            /* banks span ports: bank b holds the packs of ports b, b + banks, ... */
            fprintf(f, "      - { address: %zu, id: p%02u, bank: bank%zu }\n", k + 1, ++pack_no,
                    i % sc->banks);
        }
    }
    fprintf(f, "banks:\n");
    for (size_t b = 0; b < sc->banks; b++)
        fprintf(f, "  - { id: bank%zu, name: Bank %zu }\n", b, b);
    fprintf(f,
            "storage:\n  path: %s\n  commit_interval_s: 1\n"
            "mqtt:\n  host: 127.0.0.1\n  port: %d\n",
            db_path, br.port);
    fclose(f);
}

/* Every discovery config the daemon must publish for this configuration once each pack's first
 * sample (16 cells, the simulator's sensors) is known: what ha.c builds, pack by pack. */
static void expected_discovery(const struct config *cfg, struct msgs *want)
{
    for (size_t i = 0; i < cfg->nports; i++) {
        const struct config_port *p = &cfg->ports[i];
        for (size_t k = 0; k < p->npacks; k++) {
            struct sample s;
            fixture_wire_sample(port_protocol(i), SEED, p->packs[k].address, &s);
            struct ha_pack_info info = {.port = p,
                                        .pack = &p->packs[k],
                                        .ncells = s.ncells,
                                        .ntemps = s.ntemps,
                                        .temp_roles = s.temp_role};
            assert_int_equal(ha_pack_discovery(cfg, &info, collect, want), 0);
        }
    }
    assert_int_equal(ha_node_discovery(cfg, collect, want), 0);
    for (size_t b = 0; b < cfg->nbanks; b++)
        assert_int_equal(ha_bank_discovery(cfg, b, collect, want), 0);
}

/* ---- what arrived ---- */

struct seen_msg {
    const char *topic, *payload;
    size_t line; /* arrival order among equal topics */
};

struct seen {
    char *text;
    struct seen_msg *m; /* sorted by topic, pointing into text */
    size_t n;
};

static int cmp_topic(const void *a, const void *b)
{
    const struct seen_msg *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

/* The subscriber's lines ("topic payload", mosquitto_sub -v) from byte `from` on. */
static void seen_load(struct seen *s, long from)
{
    memset(s, 0, sizeof *s);
    char *all = proc_slurp(sub_path);
    assert_non_null(all);
    size_t len = strlen(all);
    s->text = strdup(all + ((size_t)from < len ? (size_t)from : len));
    free(all);
    assert_non_null(s->text);
    size_t cap = 1;
    for (const char *c = s->text; *c; c++)
        cap += *c == '\n';
    s->m = calloc(cap, sizeof *s->m);
    assert_non_null(s->m);
    char *save = NULL;
    for (char *line = strtok_r(s->text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *sp = strchr(line, ' ');
        if (sp)
            *sp = '\0';
        s->m[s->n] = (struct seen_msg){line, sp ? sp + 1 : "", s->n};
        s->n++;
    }
    qsort(s->m, s->n, sizeof *s->m, cmp_topic);
}

static void seen_free(struct seen *s)
{
    free(s->text);
    free(s->m);
}

/* How often topic arrived; *payload gets the payload of its last arrival. */
static size_t seen_count(const struct seen *s, const char *topic, const char **payload)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(s->m[mid].topic, topic) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t n = 0;
    while (lo + n < s->n && strcmp(s->m[lo + n].topic, topic) == 0)
        n++;
    if (payload && n)
        *payload = s->m[lo + n - 1].payload;
    return n;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* Counts, from byte `from` of the subscriber's file, what is missing: discovery configs (empty
 * payloads count as missing), states of every pack and bank (`states` each at least), and
 * availability "online" of every pack. Prints the first few missing topics when `report`. */
static size_t shortfall(const struct config *cfg, const struct msgs *want, long from,
                        size_t states, int report)
{
    struct seen s;
    seen_load(&s, from);
    size_t missing = 0;
    char topic[256];
    for (size_t i = 0; i < want->n; i++) {
        const char *payload = NULL;
        if (seen_count(&s, want->topic[i], &payload) == 0 || payload[0] == '\0') {
            if (report && missing < 10)
                print_error("discovery missing: %s\n", want->topic[i]);
            missing++;
        }
    }
    for (size_t i = 0; i < cfg->nports; i++) {
        for (size_t k = 0; k < cfg->ports[i].npacks; k++) {
            const char *id = cfg->ports[i].packs[k].id;
            if (seen_count(&s, ha_topic_pack(cfg, id, "state", topic, sizeof topic), NULL) <
                states) {
                if (report)
                    print_error("fewer than %zu states: %s\n", states, topic);
                missing++;
            }
            const char *payload = NULL;
            ha_topic_pack(cfg, id, "availability", topic, sizeof topic);
            if (seen_count(&s, topic, &payload) == 0 || strcmp(payload, "online") != 0) {
                if (report)
                    print_error("no availability online: %s\n", topic);
                missing++;
            }
        }
    }
    for (size_t b = 0; b < cfg->nbanks; b++) {
        if (seen_count(&s, ha_topic_bank(cfg, cfg->banks[b].id, topic, sizeof topic), NULL) <
            states) {
            if (report)
                print_error("fewer than %zu states: %s\n", states, topic);
            missing++;
        }
    }
    seen_free(&s);
    return missing;
}

static void wait_complete(const struct config *cfg, const struct msgs *want, long from,
                          size_t states)
{
    long long deadline = proc_now_ms() + WAIT_MS;
    while (shortfall(cfg, want, from, states, 0) != 0 && proc_now_ms() < deadline)
        usleep(200000);
    size_t missing = shortfall(cfg, want, from, states, 1);
    if (missing) {
        /* the end of the log, then its warnings (a message given up says why): the start is
         * only the migrations and the ports opening */
        char *e = proc_slurp(err_path);
        char *log = e ? e : (char[]){""};
        size_t len = strlen(log);
        fprintf(stderr, "%zu missing; the end of the daemon's log:\n%s\nits warnings:\n", missing,
                log + (len > 6000 ? len - 6000 : 0));
        for (char *save = NULL, *l = strtok_r(log, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
            if (strstr(l, " warn ") || strstr(l, " error "))
                fprintf(stderr, "%s\n", l);
        free(e);
    }
    assert_int_equal(missing, 0);
}

static void run_bank(const struct scale *sc)
{
    assert_int_equal(broker_start(&br, dir, NULL), 0);
    char addrs[16], link[300];
    snprintf(addrs, sizeof addrs, "1-%zu", sc->packs_per_port);
    char seed[16];
    snprintf(seed, sizeof seed, "%d", SEED);
    for (size_t i = 0; i < sc->ports; i++) {
        const char *extra[] = {"--protocol", port_protocol(i), "--addresses", addrs, "--seed",
                               seed, "--time-scale", "0", "--baud", "115200", "--turnaround",
                               "2", NULL};
        snprintf(link, sizeof link, "%s/bus%zu", dir, i);
        sim_pids[i] = proc_start_sim(BMSFLEET_BIN, link, extra);
        assert_true(sim_pids[i] > 0);
    }
    sub_pid = broker_subscribe(&br, "#", sub_path, sub_err);
    assert_true(sub_pid > 0);
    assert_int_equal(proc_wait_for(br.log, "New client connected", 1, WAIT_MS), 0);

    write_config(sc);
    struct config *cfg = NULL;
    struct config_errors errs;
    assert_int_equal(config_load_file(cfg_path, &cfg, &errs), 0);
    assert_int_equal(cfg->nports, sc->ports);
    struct msgs want = {0};
    expected_discovery(cfg, &want);
    /* the node, every bank and every pack device are in the expected set */
    size_t packs = sc->ports * sc->packs_per_port;
    assert_true(want.n > packs * 30);

    char *argv[] = {(char *)BMSFLEET_BIN, "run", "-c", cfg_path, NULL};
    daemon_pid = proc_spawn(argv, out_path, err_path);
    assert_true(daemon_pid > 0);

    /* first connection: everything, and every pack and bank polled and published twice */
    wait_complete(cfg, &want, 0, 2);

    /* Home Assistant restarts: the whole discovery again, with states and availability */
    long mark = file_size(sub_path);
    char port[16];
    snprintf(port, sizeof port, "%d", br.port);
    char *pub[] = {(char *)"/usr/bin/mosquitto_pub", (char *)"-h", (char *)"127.0.0.1",
                   (char *)"-p", port, (char *)"-t", (char *)"homeassistant/status",
                   (char *)"-m", (char *)"online", NULL};
    static struct proc_result r;
    assert_int_equal(proc_run(pub, NULL, 10000, &r), 0);
    assert_int_equal(r.status, 0);
    wait_complete(cfg, &want, mark, 1);

    assert_int_equal(proc_stop(daemon_pid), 0);
    daemon_pid = 0;
    char *log = proc_slurp(err_path);
    assert_non_null(log);
    if (strstr(log, "not published") || !strstr(log, ", 0 given up")) {
        print_error("daemon log:\n%.6000s\n", log);
        fail_msg("the daemon gave up messages");
    }
    free(log);
    msgs_free(&want);
    config_free(cfg);
}

/* The demo's bank (deploy/demo.sh): 4 Daren and 4 PACE packs on 2 buses, one bank; the size at
 * which the bank device first went missing. */
static void test_demo_8_packs_2_ports_1_bank(void **state)
{
    (void)state;
    const struct scale sc = {.ports = 2, .packs_per_port = 4, .banks = 1};
    run_bank(&sc);
}

static void test_16_packs_4_ports_2_banks(void **state)
{
    (void)state;
    const struct scale sc = {.ports = 4, .packs_per_port = 4, .banks = 2};
    run_bank(&sc);
}

static void test_64_packs_8_ports_4_banks(void **state)
{
    (void)state;
    const struct scale sc = {.ports = 8, .packs_per_port = 8, .banks = 4};
    run_bank(&sc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_demo_8_packs_2_ports_1_bank, stop_all),
        cmocka_unit_test_teardown(test_16_packs_4_ports_2_banks, stop_all),
        cmocka_unit_test_teardown(test_64_packs_8_ports_4_banks, stop_all),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
