/* net: test helpers for the network wiring (issue 17): a free loopback port, waiting until a
 * port listens (read from /proc/net/tcp, so that no test connection takes a one-client
 * server's slot), socat between a TCP port and a simulator's pty (the serial server in
 * transparent mode), and small fake gateways: one that accepts and never answers, one that
 * sends half an answer and closes. Header-only; needs cmocka included. */
#ifndef BMSFLEET_TEST_NET_H
#define BMSFLEET_TEST_NET_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline long long net_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A listening loopback socket on a port the kernel picks (backlog as given); *port gets it. */
static inline int net_listen(int backlog, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int one = 1;
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, backlog), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* A port nobody listens on right now (for a server started next, or a refused connect). */
static inline int net_free_port(void)
{
    int port;
    close(net_listen(1, &port));
    return port;
}

/* 1 when something listens on 127.0.0.1:port (/proc/net/tcp, state 0A). */
static inline int net_listening(int port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    char line[512];
    int found = 0;
    if (f == NULL)
        return 0;
    while (!found && fgets(line, sizeof line, f)) {
        unsigned addr, p, st;
        if (sscanf(line, " %*d: %8X:%4X %*8X:%*4X %2X", &addr, &p, &st) == 3)
            found = (int)p == port && st == 0x0A;
    }
    fclose(f);
    return found;
}

static inline int net_wait_listening(int port, int timeout_ms)
{
    long long end = net_now_ms() + timeout_ms;
    while (!net_listening(port)) {
        if (net_now_ms() > end)
            return -ETIMEDOUT;
        usleep(10000);
    }
    return 0;
}

/* socat between 127.0.0.1:port and the tty at path: a serial server in raw TCP mode. fork: one
 * child per connection (the server takes the next client after a drop); without it socat ends
 * with its first connection. Returns the pid once the port listens. */
static inline pid_t net_start_socat(int port, const char *path, int fork_each)
{
    char listen_spec[96], tty_spec[320];
    snprintf(listen_spec, sizeof listen_spec, "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr%s", port,
             fork_each ? ",fork" : "");
    int n = snprintf(tty_spec, sizeof tty_spec, "FILE:%s,rawer", path);
    assert_true(n > 0 && (size_t)n < sizeof tty_spec);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
        }
        execlp("socat", "socat", listen_spec, tty_spec, (char *)NULL);
        _exit(127);
    }
    if (net_wait_listening(port, 10000) != 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("socat did not listen on port %d (is socat installed?)", port);
    }
    return pid;
}

static inline void net_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

/* ---- fake gateways (a thread each) ---- */

struct net_fake {
    int lfd, port;
    pthread_t thread;
    volatile int stop;
    const char *half;  /* NULL: never answer; else send this and close after each request */
    size_t half_len;
    int accepted;
};

static inline void *net_fake_main(void *arg)
{
    struct net_fake *g = arg;
    while (!g->stop) {
        struct pollfd pl = {.fd = g->lfd, .events = POLLIN};
        if (poll(&pl, 1, 50) <= 0)
            continue;
        int c = accept(g->lfd, NULL, NULL);
        if (c < 0)
            continue;
        g->accepted++;
        char buf[512];
        while (!g->stop) {
            struct pollfd pc = {.fd = c, .events = POLLIN};
            if (poll(&pc, 1, 50) <= 0)
                continue;
            ssize_t k = read(c, buf, sizeof buf);
            if (k <= 0)
                break;
            if (g->half == NULL)
                continue; /* takes every request, answers none */
            usleep(5000);
            ssize_t w = write(c, g->half, g->half_len);
            (void)w;
            break;
        }
        close(c);
    }
    return NULL;
}

/* half NULL: accepts and never answers; else answers each connection's first request with
 * these bytes and closes it (a server that drops the connection mid-frame). */
static inline void net_fake_start(struct net_fake *g, const char *half, size_t half_len)
{
    memset(g, 0, sizeof *g);
    g->lfd = net_listen(8, &g->port);
    g->half = half;
    g->half_len = half_len;
    assert_int_equal(pthread_create(&g->thread, NULL, net_fake_main, g), 0);
}

static inline void net_fake_stop(struct net_fake *g)
{
    g->stop = 1;
    pthread_join(g->thread, NULL);
    close(g->lfd);
}

#endif
