/* record: a timestamp record as the API shows it, the one JSON form that
 * GET /api/v1/timestamp/{id}, ranges and the stream all answer with. */
#ifndef QUERY_RECORD_H
#define QUERY_RECORD_H

#include <stddef.h>

#include "ts.h"
#include "uid.h"

/* The longest record_json, with its NUL. */
#define RECORD_JSON_MAX 320

/* Writes {"id":…,"command_id":…,"event_timestamp":…,"created_at":…} for
 * the record id (a valid UUID, written in lower case) into buf[size]:
 * every value a JSON string, times UTC with microseconds, trailing
 * fractional zeros dropped. Returns its length, or -1 if it does not fit. */
int record_json(const char *id, const struct ts_instant *event_time,
                const struct ts_instant *created_at, char *buf, size_t size);

#endif
