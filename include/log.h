/* log: levelled, thread-safe logging to stderr, readable under journald.
 *
 * The only mutable global besides the signal flag: the level and the output style. Under
 * journald (JOURNAL_STREAM set) lines carry a syslog "<N>" priority prefix and no timestamp;
 * on a terminal they carry a local timestamp and the level name. */
#ifndef BMSFLEET_LOG_H
#define BMSFLEET_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
/* Parses "error|warn|info|debug"; returns 0 or -EINVAL. */
int log_parse_level(const char *s, enum log_level *out);
/* "error", "warn", "info", "debug". */
const char *log_level_name(enum log_level lvl);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
