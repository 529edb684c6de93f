/* devname: the stable name of a serial device. /dev/ttyUSB0 can become /dev/ttyUSB1 after an
 * unplug; udev's /dev/serial/by-id/ links name the adapter itself (vendor, model, serial). */
#ifndef BMSFLEET_DEVNAME_H
#define BMSFLEET_DEVNAME_H

#include <stddef.h>

#define DEVNAME_BY_ID_DIR "/dev/serial/by-id"

/* Looks in dir (DEVNAME_BY_ID_DIR outside tests) for a symlink that resolves to the same device
 * as dev (itself a path or a symlink). When several do, the first in name order. Writes
 * "dir/name" to buf on success; 0, -ENOENT when no link matches (or dir does not exist),
 * -ENAMETOOLONG when buf is too small, or another -errno when dev cannot be resolved. */
int devname_by_id(const char *dir, const char *dev, char *buf, size_t cap);

#endif
