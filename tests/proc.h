/* proc: test helpers to run the real bmsfleet binary as a child process, capture its output,
 * and start/stop a background simulator. Header-only so each test executable can include it. */
#ifndef BMSFLEET_TEST_PROC_H
#define BMSFLEET_TEST_PROC_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct proc_result {
    int status; /* exit code, or 128+signal */
    char out[65536];
    char err[16384];
};

static inline long long proc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A non-negative count from the environment variable name, or def (also when it is not one,
 * which is said on stderr). */
static inline long proc_env_count(const char *name, long def)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return def;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || n < 0) {
        fprintf(stderr, "%s=%s is not a count; using %ld\n", name, v, def);
        return def;
    }
    return n;
}

/* Runs argv (argv[0] a path) with optional stdin text; kills it after timeout_ms. */
static inline int proc_run(char *const argv[], const char *input, int timeout_ms,
                           struct proc_result *r)
{
    int po[2], pe[2], pi[2];
    if (pipe(po) || pipe(pe) || pipe(pi))
        return -errno;
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        dup2(pi[0], 0);
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(pi[1]);
        close(po[0]);
        close(pe[0]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pi[0]);
    close(po[1]);
    close(pe[1]);
    if (input) {
        ssize_t w = write(pi[1], input, strlen(input));
        (void)w;
    }
    close(pi[1]);
    size_t no = 0, ne = 0;
    long long deadline = proc_now_ms() + timeout_ms;
    int fds_open[2] = {po[0], pe[0]}, killed = 0;
    while (fds_open[0] >= 0 || fds_open[1] >= 0) {
        struct pollfd fds[2] = {{fds_open[0], POLLIN, 0}, {fds_open[1], POLLIN, 0}};
        long long left = deadline - proc_now_ms();
        if (left <= 0 && !killed) {
            kill(pid, SIGKILL); /* a hung child fails the test through its status */
            killed = 1;
        }
        poll(fds, 2, left > 0 ? (int)left : 100);
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char tmp[4096];
            ssize_t k = read(fds[i].fd, tmp, sizeof tmp);
            if (k <= 0) {
                close(fds[i].fd);
                fds_open[i] = -1;
                continue;
            }
            char *buf = i == 0 ? r->out : r->err;
            size_t cap = i == 0 ? sizeof r->out : sizeof r->err;
            size_t *n = i == 0 ? &no : &ne;
            size_t take = (size_t)k < cap - 1 - *n ? (size_t)k : cap - 1 - *n;
            memcpy(buf + *n, tmp, take);
            *n += take;
        }
    }
    r->out[no] = '\0';
    r->err[ne] = '\0';
    int st;
    waitpid(pid, &st, 0);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return 0;
}

/* Starts `bmsfleet simulate ARGS... --link link` in the background and waits for the link. */
static inline pid_t proc_start_sim(const char *bin, const char *link, const char *const extra[])
{
    char *argv[48];
    int n = 0;
    argv[n++] = (char *)bin;
    argv[n++] = (char *)"simulate";
    argv[n++] = (char *)"--link";
    argv[n++] = (char *)link;
    for (int i = 0; extra[i] && n < 46; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execv(bin, argv);
        _exit(127);
    }
    long long deadline = proc_now_ms() + 10000;
    struct stat st;
    while (proc_now_ms() < deadline) {
        if (lstat(link, &st) == 0)
            return pid;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return -1;
        usleep(20000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

/* Starts argv in the background with stdout and stderr sent to files. */
static inline pid_t proc_spawn(char *const argv[], const char *out_path, const char *err_path)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0)
            _exit(126);
        dup2(o, 1);
        dup2(e, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Reads a whole file into a malloc'd string (NULL if missing). */
static inline char *proc_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t k;
    while (buf && (k = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += k;
        if (cap - n - 1 == 0) {
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

/* Counts non-overlapping occurrences of needle in hay. */
static inline int proc_count(const char *hay, const char *needle)
{
    int n = 0;
    size_t len = strlen(needle);
    for (const char *p = strstr(hay, needle); p; p = strstr(p + len, needle))
        n++;
    return n;
}

/* Waits until the file contains needle at least `times` times, up to timeout_ms. */
static inline int proc_wait_for(const char *path, const char *needle, int times, int timeout_ms)
{
    long long deadline = proc_now_ms() + timeout_ms;
    while (proc_now_ms() < deadline) {
        char *t = proc_slurp(path);
        int n = t ? proc_count(t, needle) : 0;
        free(t);
        if (n >= times)
            return 0;
        usleep(50000);
    }
    return -1;
}

/* Removes a SQLite database and its -wal and -shm files. */
static inline void proc_unlink_db(const char *db)
{
    char side[512];
    unlink(db);
    snprintf(side, sizeof side, "%s-wal", db);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", db);
    unlink(side);
}

#ifdef fail /* cmocka is included: a failed expectation shows the whole log */
/* Waits until the log at path has needle `times` times, else fails showing the log. */
static inline void proc_expect_in_log(const char *path, const char *needle, int times,
                                      int timeout_ms)
{
    if (proc_wait_for(path, needle, times, timeout_ms) == 0)
        return;
    char *t = proc_slurp(path);
    print_error("expected %d × '%s' in %s:\n%s\n", times, needle, path, t ? t : "(missing)");
    free(t);
    fail();
}
#endif

/* SIGTERM, then wait; returns the exit status (or 128+signal). */
static inline int proc_stop(pid_t pid)
{
    int st;
    kill(pid, SIGTERM);
    long long deadline = proc_now_ms() + 5000;
    while (proc_now_ms() < deadline) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return 128 + SIGKILL;
}

/* ---- a test's temporary directory, its files, and the processes it started ---- */

#define PROC_PATH_MAX 300 /* every path a test keeps in its directory: char[PROC_PATH_MAX] */

struct proc_file {
    char *path; /* char[PROC_PATH_MAX] */
    const char *name;
};

/* Makes /tmp/bmsfleet-test-<test>-XXXXXX in dir and names the files in it, a list ending with
 * {NULL, NULL}: path = <dir>/<name>. Returns 0, or -1 when the directory cannot be made. */
static inline int proc_test_dir(char *dir, size_t cap, const char *test,
                                const struct proc_file *files)
{
    snprintf(dir, cap, "/tmp/bmsfleet-test-%s-XXXXXX", test);
    if (mkdtemp(dir) == NULL)
        return -1;
    for (; files && files->path; files++)
        snprintf(files->path, PROC_PATH_MAX, "%s/%s", dir, files->name);
    return 0;
}

/* Removes everything in the directory; the directory itself too unless `keep`. */
static inline void proc_clear_dir(const char *dir, int keep)
{
    char cmd[400];
    if (keep)
        snprintf(cmd, sizeof cmd, "rm -rf '%s'/* 2>/dev/null", dir);
    else
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    int rc = system(cmd);
    (void)rc;
}

/* Stops each of n processes that still runs (pid > 0) and marks it stopped (0). */
static inline void proc_stop_pids(pid_t *pids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (pids[i] > 0)
            proc_stop(pids[i]);
        pids[i] = 0;
    }
}

/* The same for separate variables, a list ending with NULL: proc_stop_each((pid_t *[]){&a, &b,
 * NULL}). */
static inline void proc_stop_each(pid_t *const *pids)
{
    for (; *pids; pids++)
        proc_stop_pids(*pids, 1);
}

/* Starts a frozen (--time-scale 0), fast (115200 baud, 2 ms turnaround) simulator of proto
 * answering at addrs, with more options when more is not NULL (NULL-terminated). */
static inline pid_t proc_start_frozen_sim(const char *bin, const char *link, const char *proto,
                                          const char *addrs, const char *seed,
                                          const char *const more[])
{
    const char *extra[32] = {"--protocol",   proto, "--addresses", addrs,    "--seed",       seed,
                             "--time-scale", "0",   "--baud",      "115200", "--turnaround", "2"};
    size_t n = 12;
    for (size_t i = 0; more != NULL && more[i] != NULL && n + 1 < 32; i++)
        extra[n++] = more[i];
    extra[n] = NULL;
    unlink(link);
    return proc_start_sim(bin, link, extra);
}

#endif
