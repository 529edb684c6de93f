/* report: how a sample or an identity is shown to a person (tables) or a program (JSON). */
#ifndef BMSFLEET_REPORT_H
#define BMSFLEET_REPORT_H

#include <stdio.h>

#include <cjson/cJSON.h>

#include "s42.h"
#include "sample.h"

/* Detailed multi-line view of one pack. alarms_why: why the pack gave no alarms, shown when the
 * sample says it refused the alarm command (NULL: no detail). */
void report_sample_table(FILE *f, const struct sample *s, const char *protocol,
                         const char *alarms_why);
/* One line per pack, for a bank overview: header, then rows. */
void report_bank_header(FILE *f);
void report_bank_row(FILE *f, const struct sample *s);
/* A row for a pack that did not answer. */
void report_bank_row_missing(FILE *f, unsigned address, const char *why);
void report_identity_table(FILE *f, const struct s42_identity *id);

struct jsonw;

/* The longest JSON text of a sample (32 cells, every flag named, 16 sensors) with room to spare. */
#define REPORT_JSON_MAX 8192

/* JSON object of a sample in human units (V, A, Ah, °C, %), absent values as null.
 * ts_ms <= 0 leaves the timestamp out. Caller frees with cJSON_Delete; NULL when out of memory. */
cJSON *report_sample_json(const struct sample *s, const char *protocol, long long ts_ms);
/* REPORT_JSON_UNKNOWN_NULL: flags the sample does not have (state, alarms, protection,
 * raw_status, balancing) are null instead of left out. Either way a pack that refused the alarm command
 * gets "alarms_supported": false. (The Home Assistant states keep them out: their templates
 * test `is defined`.) */
enum { REPORT_JSON_UNKNOWN_NULL = 1u << 0 };
cJSON *report_sample_json_opts(const struct sample *s, const char *protocol, long long ts_ms,
                               unsigned opts);
/* The same object as text in buf (no allocation, numbers in exact decimal: the per-sample
 * paths): its length, or -1 when it does not fit in cap. */
int report_sample_json_text(char *buf, size_t cap, const struct sample *s, const char *protocol,
                            long long ts_ms, unsigned opts);
/* Its members only, into an object w has open (callers that add keys of their own). */
void report_sample_json_members(struct jsonw *w, const struct sample *s, const char *protocol,
                                long long ts_ms, unsigned opts);
cJSON *report_identity_json(const struct s42_identity *id);
/* Prints a JSON object on one line followed by a newline, and frees it. */
int report_print_json(FILE *f, cJSON *obj);

#endif
