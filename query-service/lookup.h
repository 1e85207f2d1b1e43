/* lookup: reads records by id. Requests that arrive while every pooled
 * connection is busy are read together, in one statement, by whichever of
 * them gets the next free connection (what producer batches are to the
 * command service): under load PostgreSQL answers a few statements for
 * many ids instead of one statement per id; when idle, a request reads
 * alone and at once. */
#ifndef QUERY_LOOKUP_H
#define QUERY_LOOKUP_H

#include <stddef.h>

#include "pool.h"
#include "ts.h"

enum lookup_result { LOOKUP_FOUND, LOOKUP_MISSING, LOOKUP_UNAVAILABLE };

struct lookup_record {
	struct ts_instant event_time;
	struct ts_instant created_at;
};

/* The statements lookup runs, to be prepared on every pooled connection. */
#define LOOKUP_STATEMENTS                                                                   \
	{"get_record",                                                                      \
	 "SELECT id, event_timestamp, created_at FROM timestamp_records WHERE id = $1::uuid",  \
	 1},                                                                                \
	{                                                                                   \
		"get_records",                                                              \
		    "SELECT id, event_timestamp, created_at FROM timestamp_records "        \
		    "WHERE id = ANY($1::uuid[])",                                           \
		    1                                                                       \
	}

/* Concurrent readers share at most `max_readers` statements at a time (the
 * pool's size); a request waits for one at most `wait_ms`. */
void lookup_setup(int max_readers, int wait_ms);

/* Reads the record with id (a valid UUID). LOOKUP_UNAVAILABLE comes with
 * errstr (the database is down, or every connection stayed busy). */
enum lookup_result lookup_get(const char *id, struct lookup_record *out, char *errstr,
                              size_t errstr_size);

#endif
