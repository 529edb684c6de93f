/* broker: a private mosquitto for a test, on a free loopback port, never the system broker.
 * Header-only; needs proc.h. The broker's config and log live in the test's directory. */
#ifndef BMSFLEET_TEST_BROKER_H
#define BMSFLEET_TEST_BROKER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "proc.h"

struct broker {
    pid_t pid;
    int port;
    char dir[300];
    char conf[340], log[340];
};

/* A port the kernel says is free right now on 127.0.0.1. */
static inline int broker_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) ||
        getsockname(fd, (struct sockaddr *)&a, &len)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static inline int broker_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Starts mosquitto with `extra` config lines (listener options, password_file, TLS...) on
 * b->port (a free one is picked when b->port is 0). Returns 0 when it accepts connections. */
static inline int broker_start(struct broker *b, const char *dir, const char *extra)
{
    snprintf(b->dir, sizeof b->dir, "%s", dir);
    snprintf(b->conf, sizeof b->conf, "%s/mosquitto.conf", dir);
    snprintf(b->log, sizeof b->log, "%s/mosquitto.log", dir);
    if (b->port == 0)
        b->port = broker_free_port();
    FILE *f = fopen(b->conf, "w");
    if (f == NULL || b->port <= 0)
        return -1;
    fprintf(f,
            "listener %d 127.0.0.1\n"
            "persistence false\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            /* as root, mosquitto would switch to its own user, which cannot read the
             * test's private directory (password files, certificates) */
            "%s"
            "%s\n",
            b->port, geteuid() == 0 ? "user root\n" : "",
            extra && *extra ? extra : "allow_anonymous true");
    fclose(f);
    char *argv[] = {(char *)"/usr/sbin/mosquitto", (char *)"-c", b->conf, NULL};
    char out[340];
    snprintf(out, sizeof out, "%s/mosquitto.out", dir);
    b->pid = proc_spawn(argv, out, b->log);
    if (b->pid <= 0)
        return -1;
    long long deadline = proc_now_ms() + 10000;
    while (proc_now_ms() < deadline) {
        if (broker_accepts(b->port))
            return 0;
        int st;
        if (waitpid(b->pid, &st, WNOHANG) == b->pid) {
            b->pid = 0;
            return -1;
        }
        usleep(20000);
    }
    return -1;
}

static inline void broker_stop(struct broker *b)
{
    if (b->pid > 0)
        proc_stop(b->pid);
    b->pid = 0;
}

/* Starts `mosquitto_sub -v -t TOPIC -q 1` writing "topic payload" lines to out_path. With a
 * client_id, a persistent session (-c -i CLIENT_ID): the broker queues for it while it is away
 * and delivers the queue when a subscriber with that id connects again. */
static inline pid_t broker_subscribe_as(const struct broker *b, const char *topic,
                                        const char *client_id, const char *out_path,
                                        const char *err_path)
{
    char port[16];
    snprintf(port, sizeof port, "%d", b->port);
    char *argv[] = {(char *)"/usr/bin/mosquitto_sub", (char *)"-h", (char *)"127.0.0.1",
                    (char *)"-p", port, (char *)"-v", (char *)"-t", (char *)topic,
                    (char *)"-q", (char *)"1", (char *)"-c", (char *)"-i", (char *)client_id,
                    NULL};
    if (client_id == NULL)
        argv[10] = NULL; /* a clean session, as before */
    return proc_spawn(argv, out_path, err_path);
}

static inline pid_t broker_subscribe(const struct broker *b, const char *topic,
                                     const char *out_path, const char *err_path)
{
    return broker_subscribe_as(b, topic, NULL, out_path, err_path);
}

#endif
