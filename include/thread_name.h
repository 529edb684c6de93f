/* thread_name: names the calling thread (at most 15 characters: the kernel's limit) so that
 * ps -L, top -H, perf and /proc/PID/task/TID/comm tell the daemon's threads apart; the
 * efficiency benchmark (bench/efficiency.sh) finds the pollers by it. */
#ifndef BMSFLEET_THREAD_NAME_H
#define BMSFLEET_THREAD_NAME_H

/* "poll:" + the port name, "store", "mqtt"; longer names are cut. Returns 0 or an errno code:
 * the name is cosmetic, a caller goes on without it. */
int thread_name_set(const char *prefix, const char *name);

#endif
