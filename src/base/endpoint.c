/* endpoint: a port's device text to what it names (see endpoint.h). Text only: no resolver, no
 * socket; the bus connects (src/bus/tcp.c), the configuration checks with the same reading. */
#include "endpoint.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *scheme; /* with "://" */
    enum endpoint_kind kind;
    const char *default_port; /* NULL: the port is required */
} schemes[] = {
    {"tcp://", ENDPOINT_TCP, NULL},
    {"modbus-tcp://", ENDPOINT_MODBUS_TCP, "502"},
};

const char *endpoint_kind_name(enum endpoint_kind k)
{
    static const char *const names[] = {"serial", "tcp", "modbus-tcp"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

/* Length of a "scheme://" prefix at s (letters, digits, '+', '-', '.'), 0 when there is none. */
static size_t scheme_len(const char *s)
{
    size_t n = 0;
    if (!isalpha((unsigned char)s[0]))
        return 0;
    while (isalnum((unsigned char)s[n]) || s[n] == '+' || s[n] == '-' || s[n] == '.')
        n++;
    return strncmp(s + n, "://", 3) == 0 ? n + 3 : 0;
}

int endpoint_is_network(const char *device)
{
    return device != NULL && scheme_len(device) > 0;
}

/* A host name or address: letters, digits, '-', '.', '_' (names), ':' (IPv6 in brackets). */
static int host_ok(const char *h, int bracketed)
{
    if (*h == '\0')
        return 0;
    for (; *h; h++) {
        if (!isalnum((unsigned char)*h) && !strchr(bracketed ? ":." : "-._", *h) &&
            !(bracketed && *h == '%'))
            return 0;
    }
    return 1;
}

__attribute__((format(printf, 3, 4))) static int bad(char *why, size_t cap, const char *fmt,
                                                      ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (why != NULL && cap > 0)
        vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

int endpoint_parse(const char *device, struct endpoint *out, char *why, size_t cap)
{
    struct endpoint e;
    memset(&e, 0, sizeof e);
    if (device == NULL || *device == '\0')
        return bad(why, cap, "the device is empty");
    size_t sl = scheme_len(device);
    if (sl == 0) {
        *out = e; /* a serial path */
        return 0;
    }
    size_t i = 0;
    while (i < sizeof schemes / sizeof schemes[0] && strncmp(device, schemes[i].scheme, sl) != 0)
        i++;
    if (i == sizeof schemes / sizeof schemes[0] || strlen(schemes[i].scheme) != sl)
        return bad(why, cap,
                   "'%.*s' is not a device scheme bmsfleet knows: tcp://HOST:PORT (a serial "
                   "server in raw TCP mode) or modbus-tcp://HOST[:PORT] (a Modbus TCP gateway)",
                   (int)(sl - 3), device);
    e.kind = schemes[i].kind;
    const char *rest = device + sl, *port = NULL;
    size_t hlen;
    int bracketed = rest[0] == '[';
    if (bracketed) {
        const char *close = strchr(rest, ']');
        if (close == NULL)
            return bad(why, cap, "%s: an IPv6 address in brackets needs its ']'", device);
        hlen = (size_t)(close - rest - 1);
        rest++;
        if (close[1] == ':')
            port = close + 2;
        else if (close[1] != '\0')
            return bad(why, cap, "%s: only ':PORT' may follow the host", device);
    } else {
        const char *colon = strchr(rest, ':');
        hlen = colon ? (size_t)(colon - rest) : strlen(rest);
        if (colon)
            port = colon + 1;
    }
    if (hlen == 0 || hlen >= sizeof e.host)
        return bad(why, cap, "%s: the host is %s", device, hlen ? "too long" : "missing");
    memcpy(e.host, rest, hlen);
    if (!host_ok(e.host, bracketed))
        return bad(why, cap,
                   "%s: '%s' is not a host name or address (IPv6 goes in brackets: "
                   "tcp://[fd00::7]:4196)",
                   device, e.host);
    if (port == NULL && schemes[i].default_port == NULL)
        return bad(why, cap, "%s has no port: write %sHOST:PORT (the serial server's TCP port)",
                   device, schemes[i].scheme);
    if (port == NULL) {
        snprintf(e.port, sizeof e.port, "%s", schemes[i].default_port);
    } else {
        char *end;
        errno = 0;
        long v = isdigit((unsigned char)port[0]) ? strtol(port, &end, 10) : -1;
        if (v < 1 || v > 65535 || errno != 0 || *end != '\0')
            return bad(why, cap, "%s: the port must be a number from 1 to 65535", device);
        snprintf(e.port, sizeof e.port, "%ld", v);
    }
    *out = e;
    return 0;
}

