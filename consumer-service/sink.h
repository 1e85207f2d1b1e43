/* sink: writes batches of records into PostgreSQL, one statement per batch,
 * idempotently (ON CONFLICT (id) DO NOTHING). */
#ifndef CONSUMER_SINK_H
#define CONSUMER_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "ts.h"
#include "uid.h"

struct sink_row {
	char id[UID_TEXT_SIZE];
	struct ts_instant event_time;
	struct ts_instant created_at;
};

/* Why a write failed: the database is not there (retry the same rows
 * later), or it refused the rows as data (retrying them cannot help). */
enum sink_failure { SINK_OUTAGE = -1, SINK_REFUSED = -2 };

/* What a failed statement's SQLSTATE (NULL when there is none: no result,
 * connection lost) means: SINK_OUTAGE or SINK_REFUSED. */
enum sink_failure sink_classify(const char *sqlstate);

/* The live table, which the consumer writes unless told otherwise. */
#define SINK_TABLE "timestamp_records"

/* The live table's counts per minute (see schema.sql). */
#define SINK_COUNTS_TABLE "timestamp_counts"

/* The longest table name PostgreSQL keeps (NAMEDATALEN - 1), and a byte. */
#define NAMEDATALEN_MAX 64

/* The counts table that goes with a records table: "timestamp_counts"
 * followed by what follows "timestamp_records" in its name (a blue-green
 * rebuild's timestamp_records_g3 has timestamp_counts_g3). Returns 0, or
 * -1 for a name that does not start so or does not fit in size. */
int sink_counts_table(const char *table, char *buf, size_t size)
    __attribute__((warn_unused_result));

/* Applies the schema (schema.sql, under an advisory lock) on c. Returns 0,
 * or -1 with errstr (c may then be broken: check PQstatus). */
int sink_schema(PGconn *c, const struct db_params *p, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Connects (if not connected), applies the schema and prepares the insert
 * into table (NULL: SINK_TABLE; a blue-green rebuild writes its own) and
 * its counts table (sink_counts_table), which must exist. Each batch
 * commits with a NOTIFY on the channel named as the table, carrying the
 * batch's largest seq.
 * The session commits with synchronous_commit = off: a batch is visible at
 * COMMIT, durable once the WAL is flushed past it (sink_wal_position).
 * Returns 0, or -1 with errstr; safe to call again after a failure. */
int sink_connect(const struct db_params *p, const char *table, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Inserts rows in one statement and transaction. *inserted gets the number
 * of new rows (the rest were already there). Returns 0, or with errstr
 * ("SQLSTATE xxxxx: message") SINK_REFUSED (nothing written, the connection
 * kept) or SINK_OUTAGE (the connection is dropped: sink_connect again). */
int sink_insert(const struct sink_row *rows, size_t n, long *inserted,
                char *errstr, size_t errstr_size) __attribute__((warn_unused_result));

/* Where the server's WAL stands: *insert, the end of what has been written
 * (past the commit of every batch this session committed), and *flushed,
 * how far it is on disk (and on the standbys' disks: see
 * sink_set_durable_standbys). Returns 0, or -1 with errstr (the connection is
 * dropped: batches committed on it may be lost if the server crashed). */
int sink_wal_position(uint64_t *insert, uint64_t *flushed, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* How many streaming standbys must have flushed a batch's WAL before it
 * counts as durable (CONSUMER_DURABLE_STANDBYS; 0: the primary's own flush
 * is enough). From then on sink_wal_position's *flushed is the least of the
 * primary's flush and the n-th furthest standby flush (pg_stat_replication),
 * and sink_connect checks that the user may read those (pg_read_all_stats).
 * Call before sink_connect. */
void sink_set_durable_standbys(int n);

/* Parses pg_lsn text ("16/B374D848") into *lsn. Returns 0, or -1. */
int sink_parse_lsn(const char *text, uint64_t *lsn) __attribute__((warn_unused_result));

/* A cheap round trip to check the server is there. Returns 0 or -1. */
int sink_ping(char *errstr, size_t errstr_size) __attribute__((warn_unused_result));

bool sink_connected(void);

void sink_shutdown(void);

#endif
