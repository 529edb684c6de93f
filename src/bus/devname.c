/* devname: finds the /dev/serial/by-id/ link of a serial device. The directory is a parameter,
 * so a test can point it at links of its own; this file reads links and touches nothing else. */
#include "devname.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int devname_by_id(const char *dir, const char *dev, char *buf, size_t cap)
{
    char want[PATH_MAX], got[PATH_MAX], link[PATH_MAX], best[NAME_MAX + 1] = "";
    if (realpath(dev, want) == NULL)
        return -errno;
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOTDIR ? -ENOENT : -errno;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        int n = snprintf(link, sizeof link, "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof link || realpath(link, got) == NULL)
            continue; /* a dangling link: an adapter unplugged a moment ago */
        if (strcmp(got, want) == 0 && (best[0] == '\0' || strcmp(e->d_name, best) < 0))
            snprintf(best, sizeof best, "%s", e->d_name);
    }
    closedir(d);
    if (best[0] == '\0')
        return -ENOENT;
    int n = snprintf(link, sizeof link, "%s/%s", dir, best);
    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    memcpy(buf, link, (size_t)n + 1); /* written only on success */
    return 0;
}
