/* endpoint: what a port's `device:` names, read from its text: a local serial device (a path),
 * a serial server in raw TCP transparent mode (tcp://HOST:PORT), or a Modbus TCP gateway
 * (modbus-tcp://HOST[:PORT], port 502 by default). Pure text work (base: libc only), shared by
 * the configuration checks and the bus that connects. */
#ifndef BMSFLEET_ENDPOINT_H
#define BMSFLEET_ENDPOINT_H

#include <stddef.h>

#define ENDPOINT_HOST_LEN 256
#define ENDPOINT_MODBUS_TCP_PORT 502

enum endpoint_kind {
    ENDPOINT_SERIAL = 0, /* a tty path (or a /dev/serial/by-id/ link) */
    ENDPOINT_TCP,        /* tcp://: the bytes of the bus over a TCP connection */
    ENDPOINT_MODBUS_TCP, /* modbus-tcp://: Modbus TCP (MBAP), the gateway reaches the slaves */
};

struct endpoint {
    enum endpoint_kind kind;
    char host[ENDPOINT_HOST_LEN]; /* a name or an address; IPv6 without its brackets */
    char port[8];                 /* "1".."65535", as getaddrinfo takes it */
};

/* Reads device into *out (written only on success). A text that starts with neither scheme is
 * a serial path (kind ENDPOINT_SERIAL, host and port empty). Returns 0, or -EINVAL with a
 * sentence in why ("tcp://10.0.0.7 has no port: write tcp://HOST:PORT", an unknown scheme, a
 * bad port). */
int endpoint_parse(const char *device, struct endpoint *out, char *why, size_t cap);

/* True when device names a network endpoint (tcp:// or modbus-tcp://), even a malformed one. */
int endpoint_is_network(const char *device);

/* The scheme's name for messages: "serial", "tcp", "modbus-tcp". */
const char *endpoint_kind_name(enum endpoint_kind k);

#endif
