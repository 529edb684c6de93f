/* store_backlog: the MQTT side's read API into the history (its own connection, on its own
 * thread): the samples after a cursor in id order, the energy counters of a pack, the packs
 * the history knows, and the delivery cursor kept in the meta table. The MQTT part reaches
 * SQLite only through this. */
#ifndef BMSFLEET_STORE_BACKLOG_H
#define BMSFLEET_STORE_BACKLOG_H

#include <stdint.h>

#include "sample.h"

struct store_backlog;

/* Opens the history at path (it must exist: the writer creates it) and reads the delivery
 * cursor. The first time MQTT runs on a database, history starts now: the cursor is set to
 * the newest sample and saved (see store_backlog_cursor_saved). 0, or -1 with a sentence in why. */
int store_backlog_open(const char *path, struct store_backlog **out, char *why, size_t cap);
void store_backlog_close(struct store_backlog *b);
/* The cursor as read at open: the id of the last sample the broker acknowledged. */
int64_t store_backlog_cursor(const struct store_backlog *b);
/* 0 when that cursor is not saved yet (set on the first run, the save failed): save it. */
int store_backlog_cursor_saved(const struct store_backlog *b);
/* Saves the cursor; 0, or the SQLite result code of the failed write. */
int store_backlog_save_cursor(struct store_backlog *b, int64_t id);

/* One history sample. s is NULL when the row cannot be decoded (it cannot be sent: the caller
 * skips it and says so). Returns 0 to go on, non-zero to stop the read there: that row counts
 * as not read. */
typedef int (*store_backlog_fn)(void *u, int64_t id, const char *pack_id, const char *protocol,
                                int64_t ts_ms, const struct sample *s);
/* Calls fn for the samples with id > after, in id order, at most max of them. Returns how many
 * rows fn accepted (fewer than max: the backlog is read to its end, unless fn stopped the read,
 * which sets *stopped), or -1 when SQLite failed (store_backlog_error says why). */
int store_backlog_read(struct store_backlog *b, int64_t after, int max, store_backlog_fn fn,
                       void *u, int *stopped);

/* The last SQLite error message of b's connection. */
const char *store_backlog_error(struct store_backlog *b);

/* The charged and discharged energy of a pack in kWh; NAN both when the history has none. */
void store_backlog_energy(struct store_backlog *b, const char *pack_id, double *charged_kwh,
                          double *discharged_kwh);

/* Calls fn for every pack the history knows (its id and serial, "" when none); stops at the
 * first non-zero return. 0, or the SQLite result code when the packs cannot be read. */
int store_backlog_packs(struct store_backlog *b, int (*fn)(void *u, const char *pack_id,
                                                            const char *serial),
                        void *u);

#endif
