/* test_http: the HTTP server of the real daemon (`bmsfleet run` with an `http:` section) over
 * simulated packs on ptys and a history with a day of samples in it, asked by a real HTTP
 * client (a socket client here: requests as bytes, answers parsed), by promtool (Debian's
 * prometheus package) and by a real headless Chromium (Debian's chromium), which opens the page
 * and whose numbers must be those of /api/latest.
 *
 * promtool and chromium are required: a test that needs one fails, saying which package to
 * install, rather than skipping (CI installs both). BMSFLEET_SCREENSHOT=FILE keeps the
 * browser's screenshot of the page there (docs/http-status.png is made so). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "broker.h"
#include "config.h"
#include "proc.h"
#include "sim.h"
#include "store.h"

#define WAIT_MS 30000
#define NPACKS 4

static char dir[256], bus[300], cfg_path[300], db_path[300], out_path[300], err_path[300];
static char pass_path[300];
static pid_t sim_pid, daemon_pid;
static int port;

/* ---------------------------------------------------------------- a small HTTP client */

struct answer {
    int status;
    char head[4096];
    char *body; /* malloc'd */
    size_t len;
};

static int connect_to(const char *ip, int p)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Sends raw (a whole request) and reads the answer to the end (Connection: close). 0 or -1. */
static int exchange(const char *raw, size_t rawlen, struct answer *a)
{
    memset(a, 0, sizeof *a);
    int fd = connect_to("127.0.0.1", port);
    if (fd < 0)
        return -1;
    for (size_t off = 0; off < rawlen;) {
        ssize_t w = send(fd, raw + off, rawlen - off, MSG_NOSIGNAL);
        if (w <= 0)
            break; /* the server may answer and close before reading it all */
        off += (size_t)w;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    ssize_t k;
    while (buf && (k = recv(fd, buf + n, cap - n - 1, 0)) > 0) {
        n += (size_t)k;
        if (cap - n - 1 == 0) {
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL)
                break;
            buf = nb;
            cap *= 2;
        }
    }
    close(fd);
    if (buf == NULL)
        return -1;
    buf[n] = '\0';
    char *sep = strstr(buf, "\r\n\r\n");
    if (sep == NULL || sscanf(buf, "HTTP/1.%*d %d", &a->status) != 1) {
        free(buf);
        return -1;
    }
    size_t hl = (size_t)(sep - buf);
    snprintf(a->head, sizeof a->head, "%.*s", (int)(hl < sizeof a->head ? hl : sizeof a->head - 1),
             buf);
    a->len = n - hl - 4;
    a->body = malloc(a->len + 1);
    assert_non_null(a->body);
    memcpy(a->body, sep + 4, a->len + 1);
    free(buf);
    return 0;
}

/* METHOD path with optional extra header lines ("Name: value\r\n..."). */
static void request(const char *method, const char *path, const char *extra, struct answer *a)
{
    char raw[8192];
    int n = snprintf(raw, sizeof raw,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: test_http\r\n"
                     "Connection: close\r\n%s\r\n",
                     method, path, extra ? extra : "");
    assert_true(n > 0 && (size_t)n < sizeof raw);
    assert_int_equal(exchange(raw, (size_t)n, a), 0);
}

static void get(const char *path, struct answer *a)
{
    request("GET", path, NULL, a);
}

static void done(struct answer *a)
{
    free(a->body);
    a->body = NULL;
}

/* GET path: the status, and the body holds needle (unless NULL). */
static void expect_get(const char *path, int status, const char *needle)
{
    struct answer a;
    get(path, &a);
    if (a.status != status || (needle && strstr(a.body, needle) == NULL))
        print_error("GET %s: %d, expected %d with '%s':\n%s\n", path, a.status, status,
                    needle ? needle : "", a.body);
    assert_int_equal(a.status, status);
    assert_true(needle == NULL || strstr(a.body, needle) != NULL);
    done(&a);
}

/* A header's value in the answer (case-insensitive name), or NULL. */
static const char *header(const struct answer *a, const char *name, char *out, size_t cap)
{
    size_t len = strlen(name);
    for (const char *l = strstr(a->head, "\r\n"); l; l = strstr(l + 2, "\r\n")) {
        if (strncasecmp(l + 2, name, len) == 0 && l[2 + len] == ':') {
            const char *v = l + 3 + len;
            while (*v == ' ')
                v++;
            size_t n = strcspn(v, "\r\n");
            snprintf(out, cap, "%.*s", (int)n, v);
            return out;
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- the daemon */

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/bmsfleet-test-http-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    struct {
        char *path;
        const char *name;
    } files[] = {{bus, "bus"},         {cfg_path, "config.yaml"}, {db_path, "history.db"},
                 {out_path, "out.log"}, {err_path, "err.log"},    {pass_path, "http.pass"}};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        snprintf(files[i].path, sizeof bus, "%s/%s", dir, files[i].name);
    return 0;
}

static int stop_all(void **state)
{
    (void)state;
    pid_t *pids[] = {&daemon_pid, &sim_pid};
    for (size_t i = 0; i < 2; i++) {
        if (*pids[i] > 0)
            proc_stop(*pids[i]);
        *pids[i] = 0;
    }
    const char *files[] = {bus, cfg_path, out_path, err_path, pass_path};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        unlink(files[i]);
    const char *db_files[] = {"", "-wal", "-shm"}; /* the history and SQLite's side files */
    for (size_t i = 0; i < 3; i++) {
        char p[320];
        snprintf(p, sizeof p, "%s%s", db_path, db_files[i]);
        unlink(p);
    }
    return 0;
}

static int teardown(void **state)
{
    stop_all(state);
    rmdir(dir);
    return 0;
}

static void write_config(const char *http_extra)
{
    port = broker_free_port();
    assert_true(port > 0);
    FILE *f = fopen(cfg_path, "w");
    assert_non_null(f);
    fprintf(f,
            "node: { id: cabin, name: Off-grid cabin }\n"
            "log: { level: info }\n"
            "ports:\n"
            "  - name: rack\n    device: %s\n    protocol: pace\n    baud: 115200\n"
            "    timeout_ms: 300\n    gap_ms: 5\n    interval_s: 1\n    packs:\n"
            "      - { address: 1, id: p1, bank: house }\n"
            "      - { address: 2, id: p2, bank: house }\n"
            "      - { address: 3, id: p3, bank: house }\n"
            "      - { address: 4, id: p4, bank: house }\n"
            "banks:\n  - { id: house, name: House bank }\n"
            "storage:\n  path: %s\n  commit_interval_s: 1\n"
            "http:\n  port: %d\n%s",
            bus, db_path, port, http_extra ? http_extra : "");
    fclose(f);
}

/* A day of history before the daemon starts, every 5 minutes per pack: the simulator's pack
 * with the bank's current of a solar day (loads at night, charging at noon), so that the
 * page's 24 h chart has something to draw. */
static void seed_history(void)
{
    struct config *cfg;
    struct config_errors errs;
    assert_int_equal(config_load_file(cfg_path, &cfg, &errs), 0);
    struct store *st;
    char err[512];
    if (store_open(cfg, &st, err, sizeof err) != 0) {
        print_error("store_open: %s\n", err);
        fail();
    }
    int64_t now_s = time(NULL), start = now_s - 86400 + 60;
    static struct reading batch[NPACKS * 289];
    size_t n = 0;
    double soc[NPACKS] = {0.55, 0.58, 0.52, 0.50};
    for (int64_t t = start; t < now_s - 60; t += 300) {
        double hour = fmod((double)(t % 86400) / 3600.0 + 24.0, 24.0);
        double amps = hour >= 8 && hour < 15 ? 20 : hour >= 15 && hour < 18 ? -2 : -7;
        for (int p = 0; p < NPACKS; p++) {
            struct sim_pack sp;
            sim_pack_init(&sp, 7, (uint8_t)(p + 1), 16);
            soc[p] += amps * (300.0 / 3600.0) / sp.capacity_ah;
            soc[p] = soc[p] > 1 ? 1 : soc[p] < 0.1 ? 0.1 : soc[p];
            sp.soc = soc[p];
            sp.current_a = soc[p] >= 1 && amps > 0 ? 0 : amps;
            struct reading *r = &batch[n++];
            memset(r, 0, sizeof *r);
            r->kind = READING_SAMPLE;
            r->ts_ms = t * 1000;
            r->pack_idx = (uint16_t)p;
            snprintf(r->pack_id, sizeof r->pack_id, "p%d", p + 1);
            sim_pack_sample(&sp, &r->s);
        }
    }
    assert_int_equal(store_write_now(st, batch, n), 0);
    store_close(st);
    config_free(cfg);
}

/* The simulator (frozen: every answer the same), a day of history, the daemon; returns when
 * /healthz says healthy. */
static void start(const char *http_extra)
{
    write_config(http_extra);
    seed_history();
    const char *extra[] = {"--protocol", "pace", "--addresses", "1-4", "--seed", "7",
                           "--time-scale", "0", "--baud", "115200", "--turnaround", "2", NULL};
    unlink(bus);
    sim_pid = proc_start_sim(BMSFLEET_BIN, bus, extra);
    assert_true(sim_pid > 0);
    char *argv[] = {(char *)BMSFLEET_BIN, "run", "-c", cfg_path, NULL};
    daemon_pid = proc_spawn(argv, out_path, err_path);
    assert_true(daemon_pid > 0);
    long long deadline = proc_now_ms() + WAIT_MS;
    while (proc_now_ms() < deadline) {
        struct answer a;
        int ok = 0;
        if (broker_accepts(port)) {
            get("/healthz", &a);
            ok = a.status == 200;
            done(&a);
        }
        if (ok)
            return;
        usleep(100000);
    }
    char *log = proc_slurp(err_path);
    print_error("the daemon never became healthy:\n%s\n", log ? log : "(no log)");
    free(log);
    fail();
}

/* A tool the tests need: its path, or the test fails naming the package. */
static const char *need(const char *path, const char *package)
{
    if (access(path, X_OK) != 0) {
        print_error("%s is missing: install the Debian package %s (deploy/test.sh does)\n", path,
                    package);
        fail();
    }
    return path;
}

/* ---------------------------------------------------------------- the tests */

static cJSON *latest(void)
{
    struct answer a;
    get("/api/latest", &a);
    assert_int_equal(a.status, 200);
    cJSON *j = cJSON_Parse(a.body);
    if (j == NULL)
        print_error("/api/latest is not JSON:\n%s\n", a.body);
    assert_non_null(j);
    done(&a);
    return j;
}

static void test_endpoints(void **state)
{
    (void)state;
    start(NULL);
    struct answer a;
    char v[256];

    /* the page: HTML, nothing from outside */
    get("/", &a);
    assert_int_equal(a.status, 200);
    assert_non_null(strstr(header(&a, "Content-Type", v, sizeof v), "text/html"));
    assert_non_null(strstr(header(&a, "Content-Security-Policy", v, sizeof v), "default-src 'none'"));
    assert_non_null(strstr(a.body, "House bank"));
    assert_non_null(strstr(a.body, "<svg"));
    assert_null(strstr(a.body, "http://"));
    assert_null(strstr(a.body, "https://"));
    assert_null(strstr(a.body, "<script"));
    done(&a);

    /* the API: the views' rows */
    cJSON *j = latest();
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "packs")), NPACKS);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "cells")), NPACKS * 16);
    cJSON *bank = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "banks"), 0);
    assert_string_equal(cJSON_GetObjectItem(bank, "bank")->valuestring, "house");
    assert_int_equal(cJSON_GetObjectItem(bank, "packs_online")->valueint, NPACKS);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "daemon"), "state")->valuestring,
                        "writing");
    /* the writer's own word, as MQTT's <base>/<node>/storage says it */
    cJSON *storage = cJSON_GetObjectItem(j, "storage");
    assert_string_equal(cJSON_GetObjectItem(storage, "state")->valuestring, "ok");
    assert_string_equal(cJSON_GetObjectItem(storage, "error")->valuestring, "");
    cJSON_Delete(j);

    get("/api/history?pack=p2&resolution=1h", &a);
    assert_int_equal(a.status, 200);
    j = cJSON_Parse(a.body);
    assert_non_null(j);
    assert_true(cJSON_GetArraySize(j) >= 23); /* a day of hourly rollups */
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "pack")->valuestring, "p2");
    cJSON_Delete(j);
    done(&a);
    get("/api/history?from=2026-01-01&to=2026-01-02", &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "[]\n");
    done(&a);
    expect_get("/api/history?resolution=5m", 400, "raw, 1m, 1h");
    expect_get("/api/history?pack=nope", 404, "no pack 'nope'");
    expect_get("/api/history?from=yesterday", 400, "from: ");
    expect_get("/api/history?from=2026-12-02&to=2026-12-01", 400, "from must be before to");
    expect_get("/healthz", 200, "healthy: daemon writing");
    expect_get("/nothing-here", 404, NULL);

    /* read-only: HEAD has the headers only, anything else is refused */
    request("HEAD", "/metrics", NULL, &a);
    assert_int_equal(a.status, 200);
    assert_int_equal(a.len, 0);
    assert_true(atol(header(&a, "Content-Length", v, sizeof v)) > 1000);
    done(&a);
    const char *methods[] = {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        request(methods[i], "/", "Content-Length: 0\r\n", &a);
        assert_int_equal(a.status, 405);
        assert_string_equal(header(&a, "Allow", v, sizeof v), "GET, HEAD");
        done(&a);
    }
    /* a body, an oversized request line, oversized headers */
    request("GET", "/", "Content-Length: 5\r\n", &a);
    assert_int_equal(a.status, 413);
    done(&a);
    size_t big = 40000;
    char *raw = malloc(big + 200);
    assert_non_null(raw);
    int n = snprintf(raw, 200, "GET /?x=");
    memset(raw + n, 'a', big);
    snprintf(raw + n + big, 200, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(exchange(raw, strlen(raw), &a), 0);
    assert_true(a.status == 414 || a.status == 431 || a.status == 413);
    done(&a);
    n = snprintf(raw, 200, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(raw + n, 'b', big);
    snprintf(raw + n + big, 200, "\r\nConnection: close\r\n\r\n");
    assert_int_equal(exchange(raw, strlen(raw), &a), 0);
    assert_true(a.status == 431 || a.status == 413);
    done(&a);
    free(raw);
    expect_get("/healthz", 200, NULL); /* still serving */
}

/* /metrics passes promtool's checks (format and naming conventions) and says what it should. */
static void test_metrics(void **state)
{
    (void)state;
    const char *promtool = need("/usr/bin/promtool", "prometheus");
    start(NULL);
    struct answer a;
    get("/metrics", &a);
    assert_int_equal(a.status, 200);
    char v[128];
    assert_non_null(strstr(header(&a, "Content-Type", v, sizeof v), "text/plain; version=0.0.4"));
    static struct proc_result r;
    char *argv[] = {(char *)promtool, "check", "metrics", NULL};
    assert_int_equal(proc_run(argv, a.body, 20000, &r), 0);
    if (r.status != 0)
        print_error("promtool check metrics:\n%s%s\n", r.out, r.err);
    assert_int_equal(r.status, 0);
    const char *expect[] = {
        "bmsfleet_pack_health{pack=\"p1\",bank=\"house\",port=\"rack\",state=\"online\"} 1\n",
        "# TYPE bmsfleet_pack_polls_total counter\n",
        "bmsfleet_pack_timeouts_total{pack=\"p4\",bank=\"house\",port=\"rack\"} ",
        "bmsfleet_cell_voltage_volts{pack=\"p3\",bank=\"house\",port=\"rack\",cell=\"16\"} 3.",
        "bmsfleet_temperature_celsius{pack=\"p1\",bank=\"house\",port=\"rack\",sensor=\"1\"",
        "bmsfleet_bank_packs_online{bank=\"house\"} 4\n",
        "# TYPE bmsfleet_history_commit_duration_seconds summary\n",
        "bmsfleet_port_up{port=\"rack\"} 1\n",
        "bmsfleet_history_writing 1\n",
        "bmsfleet_history_readings_waiting 0\n",
        "# TYPE bmsfleet_pack_charged_energy_joules_total counter\n",
    };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        if (strstr(a.body, expect[i]) == NULL)
            print_error("/metrics has no '%s'\n", expect[i]);
        assert_non_null(strstr(a.body, expect[i]));
    }
    done(&a);

    /* stale data says so: the packs go silent, their health turns offline */
    proc_stop(sim_pid);
    sim_pid = 0;
    long long deadline = proc_now_ms() + WAIT_MS;
    int offline = 0;
    while (!offline && proc_now_ms() < deadline) {
        usleep(500000);
        get("/metrics", &a);
        offline = strstr(a.body, "{pack=\"p2\",bank=\"house\",port=\"rack\",state=\"offline\"} 1") != NULL;
        done(&a);
    }
    assert_true(offline);
    expect_get("/", 200, "OFFLINE");
    expect_get("/healthz", 503, "unhealthy");
}

/* The numbers of the page, as a real browser shows them: every data-field of the DOM Chromium
 * built is the value /api/latest gives for it, to the decimals shown. */
static double api_value(cJSON *j, const char *kind, const char *id, const char *key)
{
    if (strcmp(kind, "mqtt") == 0)
        return NAN;
    cJSON *rows = cJSON_GetObjectItem(j, strcmp(kind, "bank") == 0 ? "banks" : "packs");
    cJSON *row;
    cJSON_ArrayForEach(row, rows)
    {
        cJSON *name = cJSON_GetObjectItem(row, strcmp(kind, "bank") == 0 ? "bank" : "pack");
        if (name && strcmp(name->valuestring, id) == 0) {
            cJSON *v = cJSON_GetObjectItem(row, key);
            return cJSON_IsNumber(v) ? v->valuedouble : NAN;
        }
    }
    return NAN;
}

static void test_browser(void **state)
{
    (void)state;
    const char *chromium = need("/usr/bin/chromium", "chromium");
    start(NULL);
    char url[64], shot[320], shot_arg[340];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    snprintf(shot, sizeof shot, "%s/page.png", dir);
    snprintf(shot_arg, sizeof shot_arg, "--screenshot=%s", shot);
    static struct proc_result r;
    char *dom[] = {(char *)chromium, "--headless", "--no-sandbox", "--disable-gpu",
                   "--no-first-run", "--user-data-dir=/tmp/bmsfleet-test-http-chromium",
                   "--dump-dom", url, NULL};
    assert_int_equal(proc_run(dom, NULL, 60000, &r), 0);
    if (r.status != 0 || strstr(r.out, "data-field") == NULL)
        print_error("chromium --dump-dom: status %d\n%s\n%s\n", r.status, r.out, r.err);
    assert_int_equal(r.status, 0);
    cJSON *j = latest(); /* the simulator is frozen: the same values as when the page was made */
    int checked = 0;
    for (const char *p = strstr(r.out, "data-field=\""); p; p = strstr(p + 1, "data-field=\"")) {
        char name[128], kind[16], id[64], key[64], text[64];
        if (sscanf(p, "data-field=\"%127[^\"]\">%63[^<]", name, text) != 2)
            continue;
        if (sscanf(name, "%15[^.].%63[^.].%63s", kind, id, key) != 3)
            continue;
        double want = api_value(j, kind, id, key), shown = atof(text);
        const char *dot = strchr(text, '.');
        double half_ulp = 0.5 * pow(10, -(dot ? (double)strlen(dot + 1) : 0)) + 1e-9;
        if (isnan(want) || fabs(shown - want) > half_ulp)
            print_error("the page shows %s = '%s', /api/latest says %g\n", name, text, want);
        assert_true(!isnan(want));
        assert_true(fabs(shown - want) <= half_ulp);
        checked++;
    }
    cJSON_Delete(j);
    /* bank: 9 numbers; each pack: 6 in its row, 3 under its cells */
    if (checked != 9 + NPACKS * 9)
        print_error("%d numbers of the page checked\n", checked);
    assert_int_equal(checked, 9 + NPACKS * 9);

    /* the picture a phone shows (412 px wide) */
    char *pic[] = {(char *)chromium, "--headless", "--no-sandbox", "--disable-gpu",
                   "--no-first-run", "--user-data-dir=/tmp/bmsfleet-test-http-chromium",
                   "--hide-scrollbars", "--window-size=412,1900", "--force-device-scale-factor=1",
                   shot_arg, url, NULL};
    assert_int_equal(proc_run(pic, NULL, 60000, &r), 0);
    assert_int_equal(r.status, 0);
    struct stat st;
    assert_int_equal(stat(shot, &st), 0);
    assert_true(st.st_size > 10000);
    const char *keep = getenv("BMSFLEET_SCREENSHOT");
    if (keep && *keep) {
        char *cp[] = {"/bin/cp", shot, (char *)keep, NULL};
        assert_int_equal(proc_run(cp, NULL, 10000, &r), 0);
        assert_int_equal(r.status, 0);
    }
    unlink(shot);
}

/* Basic authentication: 401 without or with the wrong password, 200 with it; /healthz open. */
static void test_auth(void **state)
{
    (void)state;
    FILE *f = fopen(pass_path, "w");
    assert_non_null(f);
    fputs("s3cret pass\n", f);
    fclose(f);
    chmod(pass_path, 0600);
    char extra[400];
    snprintf(extra, sizeof extra, "  user: admin\n  password_file: %s\n", pass_path);
    start(extra);
    struct answer a;
    char v[128];
    const char *paths[] = {"/", "/metrics", "/api/latest", "/api/history"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        get(paths[i], &a);
        assert_int_equal(a.status, 401);
        assert_non_null(strstr(header(&a, "WWW-Authenticate", v, sizeof v), "Basic realm="));
        done(&a);
    }
    /* admin:wrong, admin:s3cret pass, root:s3cret pass */
    request("GET", "/", "Authorization: Basic YWRtaW46d3Jvbmc=\r\n", &a);
    assert_int_equal(a.status, 401);
    done(&a);
    request("GET", "/", "Authorization: Basic cm9vdDpzM2NyZXQgcGFzcw==\r\n", &a);
    assert_int_equal(a.status, 401);
    done(&a);
    request("GET", "/api/latest", "Authorization: Basic YWRtaW46czNjcmV0IHBhc3M=\r\n", &a);
    assert_int_equal(a.status, 200);
    done(&a);
    expect_get("/healthz", 200, NULL);
    char *log = proc_slurp(err_path);
    assert_non_null(strstr(log, "http: listening on http://127.0.0.1:"));
    assert_non_null(strstr(log, "(basic authentication)"));
    assert_non_null(strstr(log, "warn  http: wrong user or password for user 'admin'"));
    free(log);
}

/* 127.0.0.1 by default (not 127.0.0.2, which any wildcard listener would answer); at most
 * HTTP_MAX_CONNECTIONS at once, the next one refused, counted and logged. */
static void test_bind_and_connections(void **state)
{
    (void)state;
    start(NULL);
    int other = connect_to("127.0.0.2", port);
    assert_true(other < 0);
    int fds[16];
    for (int i = 0; i < 16; i++) {
        fds[i] = connect_to("127.0.0.1", port);
        assert_true(fds[i] >= 0);
    }
    usleep(300000); /* the server accepts them all */
    int extra = connect_to("127.0.0.1", port);
    assert_true(extra >= 0); /* the kernel's backlog takes it; the server closes it */
    char c;
    ssize_t k = recv(extra, &c, 1, 0);
    assert_true(k <= 0);
    close(extra);
    for (int i = 0; i < 16; i++)
        close(fds[i]);
    usleep(300000);
    struct answer a;
    get("/metrics", &a);
    assert_int_equal(a.status, 200);
    assert_null(strstr(a.body, "bmsfleet_http_connections_rejected_total 0\n"));
    done(&a);
    assert_int_equal(proc_wait_for(err_path, "connections open already (the most)", 1, 5000), 0);
}

/* The port taken: the daemon does not start, and says why. */
static void test_port_taken(void **state)
{
    (void)state;
    write_config(NULL);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 1), 0);
    const char *extra[] = {"--protocol", "pace", "--addresses", "1-4", "--seed", "7",
                           "--time-scale", "0", "--baud", "115200", NULL};
    sim_pid = proc_start_sim(BMSFLEET_BIN, bus, extra);
    assert_true(sim_pid > 0);
    static struct proc_result r;
    char *argv[] = {(char *)BMSFLEET_BIN, "run", "-c", cfg_path, NULL};
    assert_int_equal(proc_run(argv, NULL, 20000, &r), 0);
    close(fd);
    assert_int_equal(r.status, 1);
    char want[96];
    snprintf(want, sizeof want, "http: cannot listen on 127.0.0.1:%d: ", port);
    if (strstr(r.err, want) == NULL)
        print_error("%s\n", r.err);
    assert_non_null(strstr(r.err, want));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_endpoints, stop_all),
        cmocka_unit_test_teardown(test_metrics, stop_all),
        cmocka_unit_test_teardown(test_browser, stop_all),
        cmocka_unit_test_teardown(test_auth, stop_all),
        cmocka_unit_test_teardown(test_bind_and_connections, stop_all),
        cmocka_unit_test_teardown(test_port_taken, stop_all),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
