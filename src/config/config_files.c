/* config_files: the files the configuration reads besides its YAML text: the configuration file
 * itself (a regular file only), the password files and systemd's credential. */
#include "config.h"
#include "config_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads up to cap bytes of the file at path into buf (*len: how many). Only a regular file is
 * read: a FIFO, /dev/stdin or a terminal would block the start forever, so the file is opened
 * non-blocking and anything else is refused: -EISDIR for a directory, else -ENOTSUP
 * (read_error says "not a regular file"). *mode gets the file's mode. 0 or -errno. */
int config_read_regular(const char *path, char *buf, size_t cap, size_t *len, mode_t *mode)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = -errno;
    else if (S_ISDIR(st.st_mode))
        rc = -EISDIR;
    else if (!S_ISREG(st.st_mode))
        rc = -ENOTSUP;
    size_t n = 0;
    while (rc == 0 && n < cap) {
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            rc = -errno;
        else if (got == 0)
            break;
        else
            n += (size_t)got;
    }
    close(fd);
    if (rc == 0) {
        *len = n;
        *mode = st.st_mode;
    }
    return rc;
}

const char *config_read_error(int rc)
{
    return rc == -ENOTSUP ? "not a regular file" : strerror(-rc);
}

/* First line of the file, without its line ending. One that group or others can read is
 * accepted with a warning, since the password then is not secret on this box. */
void config_read_password(struct config_ctx *x, struct config *c, const char *what,
                          const char *path, struct config_mark at, int empty_ok, char *dst,
                          size_t cap)
{
    char buf[sizeof c->mqtt.password + 2];
    _Static_assert(sizeof c->mqtt.password == sizeof c->http.password, "one password size");
    size_t len = 0;
    mode_t mode = 0;
    int rc = config_read_regular(path, buf, sizeof buf, &len, &mode);
    if (rc == -ENOTSUP || rc == -EISDIR) {
        config_add_err(x, at, "%s %s is not a regular file", what, path);
        return;
    }
    if (rc < 0) {
        config_add_err(x, at, "cannot read %s %s: %s", what, path, config_read_error(rc));
        return;
    }
    if (mode & (S_IRWXG | S_IRWXO))
        config_add_warn(x, c, at,
                        "%s %s can be read by group or others (mode %04o): "
                        "chmod 600 it (or 640 with a group only the daemon is in)",
                        what, path, (unsigned)(mode & 07777));
    size_t n = 0;
    while (n < len && buf[n] != '\n' && buf[n] != '\r' && buf[n] != '\0')
        n++;
    if (n < len && buf[n] == '\0')
        config_add_err(x, at, "%s %s holds a NUL byte in its first line", what, path);
    else if (n == 0 && !empty_ok)
        config_add_err(x, at, "%s %s is empty", what, path);
    else if (n == 0)
        return;
    else if (n >= cap)
        config_add_err(x, at, "the password in %s is too long: at most %zu characters", path,
                       cap - 1);
    else
        memcpy(dst, buf, n);
}

/* Under systemd, LoadCredential=mqtt.pass:FILE puts the password in the service's own
 * credentials directory (readable by the service only, even with DynamicUser=): used when
 * neither the environment nor password_file gives one. An empty first line means no password:
 * the unit's SetCredential=mqtt.pass:\n fallback (systemd 252 takes no empty value), so that
 * a broker without a password needs no file. */
void config_read_credential(struct config_ctx *x, struct config *c)
{
    const char *dir = getenv("CREDENTIALS_DIRECTORY");
    if (dir == NULL || *dir == '\0')
        return;
    char path[CONFIG_PATH_LEN];
    int n = snprintf(path, sizeof path, "%s/" CONFIG_MQTT_CREDENTIAL, dir);
    if (n < 0 || (size_t)n >= sizeof path) {
        config_add_err(x, (struct config_mark){0, 0}, "CREDENTIALS_DIRECTORY is too long");
        return;
    }
    if (access(path, F_OK) == 0)
        config_read_password(x, c, "credential", path, (struct config_mark){0, 0}, 1, c->mqtt.password,
                      sizeof c->mqtt.password);
}
