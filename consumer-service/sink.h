/* sink: writes batches of records into PostgreSQL, one statement per batch,
 * idempotently (ON CONFLICT (id) DO NOTHING). */
#ifndef CONSUMER_SINK_H
#define CONSUMER_SINK_H

#include <stdbool.h>
#include <stddef.h>

#include "db.h"
#include "ts.h"
#include "uid.h"

struct sink_row {
	char id[UID_TEXT_SIZE];
	struct ts_instant event_time;
	struct ts_instant created_at;
};

/* Connects (if not connected), applies the schema and prepares the insert.
 * Returns 0, or -1 with errstr; safe to call again after a failure. */
int sink_connect(const struct db_params *p, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Inserts rows in one statement and transaction. *inserted gets the number
 * of new rows (the rest were already there). Returns 0, or -1 with errstr;
 * after -1 the connection is dropped and sink_connect is needed again. */
int sink_insert(const struct sink_row *rows, size_t n, long *inserted,
                char *errstr, size_t errstr_size) __attribute__((warn_unused_result));

/* A cheap round trip to check the server is there. Returns 0 or -1. */
int sink_ping(char *errstr, size_t errstr_size) __attribute__((warn_unused_result));

bool sink_connected(void);

void sink_shutdown(void);

#endif
