/* tcp: the connection to a network serial server (a Waveshare RS485-to-ETH, USR-TCP232,
 * ser2net) or a Modbus TCP gateway: a connect that never blocks longer than its timeout (and
 * ends at once when the daemon stops), TCP keepalive so that a gateway that vanished without a
 * FIN is noticed within about half a minute, and the sentences for what went wrong. The serial
 * layer (serial.c) and the Modbus driver (mbpack.c) use the connected socket in a tty's place. */
#ifndef BMSFLEET_TCP_H
#define BMSFLEET_TCP_H

#include <stddef.h>

#define TCP_CONNECT_TIMEOUT_MS 3000 /* default: a LAN answers a SYN in milliseconds */
#define TCP_KEEPALIVE_IDLE_S   10   /* first probe after this much silence on the connection */
#define TCP_KEEPALIVE_INTVL_S  5
#define TCP_KEEPALIVE_COUNT    3    /* unanswered probes: the connection is dead (~25 s) */
#define TCP_USER_TIMEOUT_MS    20000 /* sent data unacknowledged this long: dead too */

/* Resolves host (a name or an address) and connects to port, trying each address until one
 * accepts or timeout_ms has passed in all. The socket is non-blocking, close-on-exec, with
 * TCP_NODELAY (a request goes out at once), keepalive as above and TCP_USER_TIMEOUT. cancel_fd
 * (>= 0) readable ends the wait with -ECANCELED. Returns 0 and *ret_fd, or -ETIMEDOUT (no
 * answer within timeout_ms), -ECONNREFUSED, -EHOSTUNREACH, -ENETUNREACH, -EADDRNOTAVAIL (the
 * name does not resolve), -ECANCELED, or another -errno. */
int tcp_connect(const char *host, const char *port, int timeout_ms, int cancel_fd, int *ret_fd);

/* A sentence for a -errno of a network endpoint (connecting or using the connection); NULL
 * when err is not one of the network ones (the caller then uses serial_strerror). */
const char *tcp_strerror(int err);

/* "<device>: <sentence>" for a failed open of a network device into buf; timeout_ms is the
 * connect timeout it waited. */
void tcp_describe_open(const char *device, int err, int timeout_ms, char *buf, size_t cap);

#endif
