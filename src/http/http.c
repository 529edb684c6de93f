/* Part http (src/http/): the daemon's own web server, for the person at the box and for
 * Prometheus: the status page (http_page.c: HTML and inline SVG, no external asset), the
 * metrics (http_metrics.c: Prometheus text exposition), the JSON API (http_api.c: the rows
 * `export --json` prints) and the health check, over the bank's state read from the history
 * (http_data.c) on the thread's own read-only connection. The server itself (http.c, this
 * file): libmicrohttpd loaded at start, one internal polling thread, GET and HEAD only, bounded
 * requests and connections, optional basic authentication.
 *
 * http: the server. Every request is answered on libmicrohttpd's one thread, so the history
 * connection, the counters and the buffers need no lock; the daemon's live counters come
 * through http_live_fn. */
#include "http.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "http_internal.h"
#include "log.h"
#include "now.h"

/* libmicrohttpd is loaded when `http:` is configured (dlopen), not linked: a daemon without it
 * carries neither the library nor GnuTLS, which it pulls in (about 7 MB of files, and the
 * container image has no room for them). */
#define MHD_LIBRARY "libmicrohttpd.so.12"

struct mhd_api {
    __typeof__(MHD_start_daemon) *start_daemon;
    __typeof__(MHD_stop_daemon) *stop_daemon;
    __typeof__(MHD_create_response_from_buffer) *create_response_from_buffer;
    __typeof__(MHD_add_response_header) *add_response_header;
    __typeof__(MHD_queue_response) *queue_response;
    __typeof__(MHD_destroy_response) *destroy_response;
    __typeof__(MHD_lookup_connection_value) *lookup_connection_value;
    __typeof__(MHD_basic_auth_get_username_password) *basic_auth_get_username_password;
    __typeof__(MHD_queue_basic_auth_fail_response) *queue_basic_auth_fail_response;
    __typeof__(MHD_free) *free;
};

const unsigned http_code_classes[HTTP_CODE_CLASSES] = {200, 400, 401, 404, 405, 413, 500};

size_t http_code_class(unsigned code)
{
    for (size_t i = 0; i + 1 < sizeof http_code_classes / sizeof http_code_classes[0]; i++)
        if (http_code_classes[i] == code)
            return i;
    return HTTP_CODE_CLASSES - 1; /* 5xx, and anything else the server answers */
}

static int mhd_load(struct http *h, char *why, size_t cap)
{
    /* never unloaded: GnuTLS's global state would go with it */
    h->lib = dlopen(MHD_LIBRARY, RTLD_NOW | RTLD_NODELETE);
    if (h->lib == NULL) {
        snprintf(why, cap, "cannot load %s (%s): install the Debian package libmicrohttpd12",
                 MHD_LIBRARY, dlerror());
        return -ENOENT;
    }
    struct mhd_api *a = h->api;
    struct {
        const char *name;
        void **slot;
    } syms[] = {
#define SYM(f) {"MHD_" #f, (void **)&a->f}
        SYM(start_daemon),
        SYM(stop_daemon),
        SYM(create_response_from_buffer),
        SYM(add_response_header),
        SYM(queue_response),
        SYM(destroy_response),
        SYM(lookup_connection_value),
        SYM(basic_auth_get_username_password),
        SYM(queue_basic_auth_fail_response),
        SYM(free),
#undef SYM
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        if ((*syms[i].slot = dlsym(h->lib, syms[i].name)) == NULL) {
            snprintf(why, cap, "%s has no %s: a libmicrohttpd older than 0.9.71?", MHD_LIBRARY,
                     syms[i].name);
            return -ENOENT;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- logging */

#define LOG_WINDOW_MS 60000
#define LOG_PER_WINDOW 10

void http_warn(struct http *h, const char *fmt, ...)
{
    int64_t now = now_mono_ms();
    if (now - h->log_window_ms >= LOG_WINDOW_MS) {
        if (h->messages_unlogged)
            log_warn("http: %llu more warnings in the last minute were not logged",
                     (unsigned long long)h->messages_unlogged);
        h->messages_unlogged = 0;
        h->log_window_ms = now;
        h->log_in_window = 0;
    }
    if (h->log_in_window >= LOG_PER_WINDOW) {
        h->messages_unlogged++;
        return;
    }
    h->log_in_window++;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_warn("http: %s", msg);
}

/* libmicrohttpd's own messages: a refused connection, a request too large, a socket error.
 * The format is the library's own, checked as one (printf-like, its arguments in ap). */
__attribute__((format(printf, 2, 0))) static void on_library_message(void *cls, const char *fmt, va_list ap)
{
    struct http *h = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '.'))
        msg[--n] = '\0';
    h->library_messages++;
    if (h->daemon == NULL) /* while starting: the caller says it */
        snprintf(h->start_msg, sizeof h->start_msg, "%s", msg);
    else
        http_warn(h, "libmicrohttpd: %s", msg);
}

/* ---------------------------------------------------------------- connections */

static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
    struct http *h = cls;
    if (h->open_connections < HTTP_MAX_CONNECTIONS)
        return MHD_YES;
    char ip[INET6_ADDRSTRLEN] = "?";
    if (addr && addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in))
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)addr)->sin_addr, ip,
                  sizeof ip);
    else if (addr && addr->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6))
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)addr)->sin6_addr, ip,
                  sizeof ip);
    h->rejected_connections++;
    http_warn(h, "connection from %s refused: %d connections open already (the most)", ip,
                 HTTP_MAX_CONNECTIONS);
    return MHD_NO;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode what)
{
    (void)c;
    (void)socket_ctx;
    struct http *h = cls;
    if (what == MHD_CONNECTION_NOTIFY_STARTED)
        h->open_connections++;
    else if (what == MHD_CONNECTION_NOTIFY_CLOSED && h->open_connections > 0)
        h->open_connections--;
}

/* ---------------------------------------------------------------- requests */

const char *http_arg(struct http *h, const char *name)
{
    return h->conn ? h->api->lookup_connection_value(h->conn, MHD_GET_ARGUMENT_KIND, name) : NULL;
}

/* Queues status with body (malloc'd, taken over; NULL: an empty body). */
static enum MHD_Result answer(struct http *h, struct MHD_Connection *c, unsigned status,
                              const char *type, char *body, size_t len, int auth)
{
    struct mhd_api *a = h->api;
    h->requests[http_code_class(status)]++;
    struct MHD_Response *r =
        a->create_response_from_buffer(body ? len : 0, body ? body : (void *)"",
                                       body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        free(body);
        http_warn(h, "cannot build a response: out of memory");
        return MHD_NO; /* the connection is closed */
    }
    static const char *const common[][2] = {
        {MHD_HTTP_HEADER_CACHE_CONTROL, "no-store"},
        {"X-Content-Type-Options", "nosniff"},
        {"X-Frame-Options", "DENY"},
        /* the page uses nothing from outside: its style and pictures are inline */
        {"Content-Security-Policy",
         "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none';"
         " form-action 'none'; frame-ancestors 'none'"},
    };
    int ok = a->add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) == MHD_YES;
    for (size_t i = 0; ok && i < sizeof common / sizeof common[0]; i++)
        ok = a->add_response_header(r, common[i][0], common[i][1]) == MHD_YES;
    if (ok && status == MHD_HTTP_METHOD_NOT_ALLOWED)
        ok = a->add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") == MHD_YES;
    enum MHD_Result rc = MHD_NO;
    if (!ok)
        http_warn(h, "cannot add a response header: out of memory");
    else if (auth)
        rc = a->queue_basic_auth_fail_response(c, "bmsfleet", r);
    else
        rc = a->queue_response(c, status, r);
    a->destroy_response(r);
    return rc;
}

static enum MHD_Result answer_text(struct http *h, struct MHD_Connection *c, unsigned status,
                                   const char *text, int auth)
{
    char *body = strdup(text);
    return answer(h, c, status, "text/plain; charset=utf-8", body, body ? strlen(body) : 0,
                  auth);
}

/* Constant time over the longer of the two: the length of a guess tells nothing either. */
static int same_secret(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), n = la > lb ? la : lb;
    unsigned diff = la != lb;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned)(unsigned char)(i < la ? a[i] : 0) ^
                (unsigned)(unsigned char)(i < lb ? b[i] : 0);
    return diff == 0;
}

/* 1 when the request may go on: no password configured, or the right user and password. */
static int authorized(struct http *h, struct MHD_Connection *c)
{
    const struct config_http *cfg = &h->cfg->http;
    if (cfg->password[0] == '\0')
        return 1;
    char *pass = NULL;
    char *user = h->api->basic_auth_get_username_password(c, &pass);
    int ok = user && pass && same_secret(user, cfg->user) & same_secret(pass, cfg->password);
    if (user && !ok)
        http_warn(h, "wrong user or password for user '%.64s'", user);
    h->api->free(user);
    h->api->free(pass);
    return ok;
}

struct route {
    const char *path;
    const char *type;
    unsigned (*fn)(struct http *h, FILE *f);
    int open; /* answered without authentication */
};

static const struct route routes[] = {
    {"/", "text/html; charset=utf-8", http_page, 0},
    {"/metrics", "text/plain; version=0.0.4; charset=utf-8", http_metrics, 0},
    {"/api/latest", "application/json", http_api_latest, 0},
    {"/api/history", "application/json", http_api_history, 0},
    /* for health checkers (systemd, a container runtime, a load balancer): one word of state */
    {"/healthz", "text/plain; charset=utf-8", http_healthz, 1},
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **req_ctx)
{
    (void)version;
    (void)upload_data;
    struct http *h = cls;
    int64_t t0 = now_mono_ns();
    if (*req_ctx != NULL) { /* a body came after all: it was refused on the first call */
        *upload_size = 0;
        return MHD_YES;
    }
    *req_ctx = h;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return answer_text(h, c, MHD_HTTP_METHOD_NOT_ALLOWED,
                           "read-only: GET and HEAD only\n", 0);
    const char *length = h->api->lookup_connection_value(c, MHD_HEADER_KIND,
                                                         MHD_HTTP_HEADER_CONTENT_LENGTH);
    if ((length && strcmp(length, "0") != 0) ||
        h->api->lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
        return answer_text(h, c, MHD_HTTP_CONTENT_TOO_LARGE, "a request has no body here\n", 0);
    const struct route *r = NULL;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0] && r == NULL; i++)
        if (strcmp(url, routes[i].path) == 0)
            r = &routes[i];
    if (r && !r->open && !authorized(h, c))
        return answer_text(h, c, MHD_HTTP_UNAUTHORIZED, "authentication required\n", 1);
    if (r == NULL)
        return answer_text(h, c, MHD_HTTP_NOT_FOUND,
                           "not found: /, /metrics, /api/latest, /api/history, /healthz\n", 0);
    char *body = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&body, &len);
    if (f == NULL)
        return answer_text(h, c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory\n", 0);
    h->conn = c;
    unsigned status = r->fn(h, f);
    h->conn = NULL;
    if (fclose(f) != 0 || body == NULL) {
        free(body);
        return answer_text(h, c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory\n", 0);
    }
    const char *type = status >= 400 && r->fn != http_healthz ? "text/plain; charset=utf-8"
                                                               : r->type;
    enum MHD_Result rc = answer(h, c, status, type, body, len, 0);
    h->request_ns_total += (uint64_t)(now_mono_ns() - t0);
    h->requests_timed++;
    return rc;
}

/* ---------------------------------------------------------------- start, stop */

static int listen_addr(const struct config_http *cfg, struct sockaddr_storage *ss, int *v6)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, cfg->listen, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)cfg->port);
        *v6 = 0;
        return 0;
    }
    if (inet_pton(AF_INET6, cfg->listen, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)cfg->port);
        *v6 = 1;
        return 0;
    }
    return -EINVAL; /* config.c checked it already */
}

int http_start(const struct config *cfg, http_live_fn live, void *arg, struct http **out,
               char *why, size_t cap)
{
    struct http *h = calloc(1, sizeof *h);
    struct mhd_api *api = calloc(1, sizeof *api);
    if (h == NULL || api == NULL) {
        free(h);
        free(api);
        snprintf(why, cap, "%s", strerror(ENOMEM));
        return -ENOMEM;
    }
    h->cfg = cfg;
    h->live_fn = live;
    h->live_arg = arg;
    h->api = api;
    h->started_ms = now_wall_ms();
    h->log_window_ms = now_mono_ms();
    int err = mhd_load(h, why, cap);
    struct sockaddr_storage ss;
    int v6 = 0;
    if (err == 0 && listen_addr(&cfg->http, &ss, &v6) != 0) {
        snprintf(why, cap, "http.listen: '%s' is not an address", cfg->http.listen);
        err = -EINVAL;
    }
    if (err) {
        http_stop(h);
        return err;
    }
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
    h->daemon = api->start_daemon(
        flags, (uint16_t)cfg->http.port, on_accept, h, on_request, h,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_EXTERNAL_LOGGER, on_library_message, h,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
        /* one more than ours: the refusal is on_accept's, counted and logged */
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)(HTTP_MAX_CONNECTIONS + 1),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_REQUEST_MEMORY,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)HTTP_MAX_CONNECTIONS,
        MHD_OPTION_END);
    if (h->daemon == NULL) {
        snprintf(why, cap, "cannot listen on %s%s%s:%d: %s", v6 ? "[" : "", cfg->http.listen,
                 v6 ? "]" : "", cfg->http.port, h->start_msg[0] ? h->start_msg : "libmicrohttpd failed");
        http_stop(h);
        return -EADDRNOTAVAIL;
    }
    log_info("http: listening on http://%s%s%s:%d/ (%s)", v6 ? "[" : "", cfg->http.listen,
             v6 ? "]" : "", cfg->http.port,
             cfg->http.password[0] ? "basic authentication" : "no authentication");
    *out = h;
    return 0;
}

void http_stop(struct http *h)
{
    if (h == NULL)
        return;
    if (h->daemon)
        h->api->stop_daemon(h->daemon);
    if (h->db)
        http_db_failed(h);
    if (h->messages_unlogged)
        log_warn("http: %llu more warnings were not logged",
                 (unsigned long long)h->messages_unlogged);
    free(h->api);
    free(h);
}
