/* tcp: connecting to a serial server or a Modbus TCP gateway (see tcp.h). It owns nothing
 * after it returns: the socket is the caller's. It never logs. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "now.h"
#include "tcp.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "serial.h"

static int set_int(int fd, int level, int name, int value)
{
    return setsockopt(fd, level, name, &value, sizeof value) == 0 ? 0 : -errno;
}

/* Small requests go out at once; a silent peer is found by keepalive; data nobody acknowledges
 * ends the connection instead of waiting for the kernel's 15 minutes of retransmissions. */
static int tune(int fd)
{
    int r = set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    if (r == 0)
        r = set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
    if (r == 0)
        r = set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, TCP_KEEPALIVE_IDLE_S);
    if (r == 0)
        r = set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, TCP_KEEPALIVE_INTVL_S);
    if (r == 0)
        r = set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, TCP_KEEPALIVE_COUNT);
    if (r == 0)
        r = set_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, TCP_USER_TIMEOUT_MS);
    return r;
}

/* One address: a non-blocking connect, waited for until deadline_ns. 0 and *ret_fd, or -errno. */
static int connect_one(const struct addrinfo *ai, int64_t deadline_ns, int cancel_fd, int *ret_fd)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int r = tune(fd);
    if (r == 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
        r = errno == EINPROGRESS ? 1 : -errno;
    while (r == 1) {
        int64_t left = deadline_ns - now_mono_ns();
        if (left <= 0) {
            r = -ETIMEDOUT;
            break;
        }
        int64_t ms = (left + 999999) / 1000000;
        struct pollfd pfd[2] = {{.fd = fd, .events = POLLOUT}, {.fd = cancel_fd, .events = POLLIN}};
        int k = poll(pfd, 2, ms > INT_MAX ? INT_MAX : (int)ms);
        if (k < 0 && errno != EINTR) {
            r = -errno;
        } else if (k > 0 && pfd[1].revents) {
            r = -ECANCELED;
        } else if (k > 0 && pfd[0].revents) {
            int soerr = 0;
            socklen_t len = sizeof soerr;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
                r = -errno;
            else
                r = -soerr; /* 0: connected */
        }
    }
    if (r != 0) {
        close(fd);
        return r;
    }
    *ret_fd = fd;
    return 0;
}

int tcp_connect(const char *host, const char *port, int timeout_ms, int cancel_fd, int *ret_fd)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG};
    struct addrinfo *res = NULL;
    if (host == NULL || port == NULL || ret_fd == NULL || timeout_ms < 1)
        return -EINVAL;
    /* A name is resolved at each connect (the gateway may move); the resolver has its own
     * timeout (resolv.conf), a literal address costs nothing. */
    int g = getaddrinfo(host, port, &hints, &res);
    if (g == EAI_SYSTEM)
        return errno ? -errno : -EADDRNOTAVAIL;
    if (g != 0)
        return g == EAI_MEMORY ? -ENOMEM : -EADDRNOTAVAIL;
    int64_t deadline = now_mono_ns() + (int64_t)timeout_ms * 1000000;
    int r = -EADDRNOTAVAIL;
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        r = connect_one(ai, deadline, cancel_fd, ret_fd);
        if (r == 0 || r == -ECANCELED || r == -ETIMEDOUT)
            break;
    }
    freeaddrinfo(res);
    return r;
}

const char *tcp_strerror(int err)
{
    switch (err < 0 ? -err : err) {
    case ECONNREFUSED:
        return "connection refused: check the TCP port, and whether the serial server takes "
               "another client (many accept only one connection)";
    case ECONNRESET:
    case EPIPE:
        return "the serial server closed the connection";
    case ENOTCONN:
        return "the connection to the serial server was lost (keepalive or unacknowledged data)";
    case EHOSTUNREACH:
    case ENETUNREACH:
        return "host unreachable: check the serial server's address and the network";
    case EADDRNOTAVAIL:
        return "cannot resolve the host name";
    case ECANCELED:
        return "cancelled, the daemon is stopping";
    default:
        return NULL;
    }
}

void tcp_describe_open(const char *device, int err, int timeout_ms, char *buf, size_t cap)
{
    const char *s = tcp_strerror(err);
    if (err == -ETIMEDOUT)
        snprintf(buf, cap, "%s: no answer to the connection within %d ms (is the serial server "
                           "on and at this address?)",
                 device, timeout_ms);
    else
        snprintf(buf, cap, "%s: %s", device, s ? s : serial_strerror(err));
}
