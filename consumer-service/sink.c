/* sink: writes batches of records into PostgreSQL, one statement per batch.
 * Every statement has a deadline (db_statement_deadline): a hung server
 * fails the write in bounded time, long before max.poll.interval.ms, and
 * the consumer reports not-ready and retries. */
#include "sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

extern const char schema_sql[];

/* Serialises concurrent schema creation by several consumers. */
#define SCHEMA_LOCK "SELECT pg_advisory_xact_lock(7461736);"

/* Taken by every writer of a records table before its INSERT and held to
 * its COMMIT: the values of seq then rise in commit order, so a reader
 * that has seen every row up to seq N and reads "seq > N" after each
 * notification misses none (query-service's feed). One lock per table
 * (its name hashed into the second key), so a blue-green rebuild's
 * writes do not queue behind the live consumer's. */
#define SEQ_LOCK "7461738"

/* The statement of a batch: the rows, the counts of the rows it really
 * inserted (ON CONFLICT DO NOTHING returns no duplicate), and one
 * notification on the channel named after the table, with the batch's
 * largest seq -- delivered at COMMIT, to those that LISTEN. One statement,
 * so one transaction. The minutes are updated in ascending order, so
 * concurrent writers lock them in the same order. %1$s is the records
 * table, %2$s its counts table (quoted), %3$s the channel (a literal). */
static const char insert_sql[] =
    "WITH seq_lock AS (SELECT pg_advisory_xact_lock(" SEQ_LOCK ", hashtext(%3$s))), "
    "ins AS (INSERT INTO %1$s (id, event_timestamp, created_at) "
    "SELECT u.* FROM seq_lock, "
    "unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) AS u "
    "ON CONFLICT (id) DO NOTHING RETURNING seq, event_timestamp), "
    "counted AS (INSERT INTO %2$s AS c (minute, count) "
    "SELECT date_trunc('minute', event_timestamp, 'UTC'), count(*) FROM ins "
    "GROUP BY 1 ORDER BY 1 "
    "ON CONFLICT (minute) DO UPDATE SET count = c.count + excluded.count) "
    "SELECT count(*), max(seq), "
    "CASE WHEN count(*) > 0 THEN pg_notify(%3$s, max(seq)::text) END FROM ins";

static PGconn *conn;
static struct db_params params; /* the timeouts, from sink_connect */
static int durable_standbys;    /* sink_set_durable_standbys */
static char standbys_offset[16] = "0"; /* durable_standbys - 1, as text */

/* Only a row's own data is a reason to refuse it for good: a data
 * exception (class 22: a value out of range or malformed) or an integrity
 * constraint it violates (class 23: CHECK, NOT NULL, foreign key). Every
 * other failure refuses every row alike -- 42 (the table or a privilege is
 * missing), 25006 (a read-only standby after a failover), 08/53/57 (the
 * server is away, full or shutting down), 40 (a conflict worth retrying):
 * dead-lettering on those would empty the topic into <topic>.dlq, so they
 * are waited out as outages, as is anything unknown. */
enum sink_failure sink_classify(const char *sqlstate)
{
	if (sqlstate != NULL && strlen(sqlstate) == 5 &&
	    (strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0))
		return SINK_REFUSED;
	return SINK_OUTAGE;
}

int sink_counts_table(const char *table, char *buf, size_t size)
{
	const size_t head = sizeof(SINK_TABLE) - 1;
	int n;

	if (strncmp(table, SINK_TABLE, head) != 0)
		return -1;
	n = snprintf(buf, size, "%s%s", SINK_COUNTS_TABLE, table + head);
	return n > 0 && (size_t)n < size ? 0 : -1;
}

static void drop_connection(void)
{
	PQfinish(conn);
	conn = NULL;
}

int sink_schema(PGconn *c, const struct db_params *p, char *errstr, size_t errstr_size)
{
	PGresult *res;
	char *sql = malloc(sizeof(SCHEMA_LOCK) + strlen(schema_sql));
	struct timespec deadline = db_statement_deadline(p);
	int rc = -1;

	if (sql == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	strcpy(sql, SCHEMA_LOCK);
	strcat(sql, schema_sql);
	/* Several statements in one query string run in one transaction, so
	 * the advisory lock is held until the schema is in place. */
	res = db_exec(c, sql, &deadline, errstr, errstr_size);
	if (PQresultStatus(res) == PGRES_COMMAND_OK)
		rc = 0;
	else if (res != NULL)
		db_error_line(PQresultErrorMessage(res), errstr, errstr_size);
	PQclear(res);
	free(sql);
	return rc;
}

int sink_connect(const struct db_params *p, const char *table, char *errstr, size_t errstr_size)
{
	PGresult *res = NULL;
	char *sql = NULL, *quoted = NULL, *quoted_counts = NULL, *channel = NULL;
	char counts[NAMEDATALEN_MAX], why[256] = "out of memory";
	const char *step;
	struct timespec deadline;
	size_t len;

	if (conn != NULL)
		return 0;
	params = *p;
	conn = db_connect(p, errstr, errstr_size);
	if (conn == NULL)
		return -1;

	step = "apply schema";
	if (sink_schema(conn, &params, why, sizeof(why)) != 0)
		goto failed;

	/* Rows are visible at COMMIT without waiting for the WAL flush (a
	 * slow fdatasync stalled every batch behind it); the consumer stores
	 * a batch's offsets only once the flush has passed it. */
	step = "set synchronous_commit";
	deadline = db_statement_deadline(&params);
	res = db_exec(conn, "SET synchronous_commit = off", &deadline, why, sizeof(why));
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		goto failed;
	PQclear(res);

	/* Without the right to read the standbys' positions they are NULL in
	 * pg_stat_replication, and no batch would ever count as durable: say
	 * so now rather than hold every offset back in silence. */
	if (durable_standbys > 0) {
		step = "check CONSUMER_DURABLE_STANDBYS";
		deadline = db_statement_deadline(&params);
		res = db_exec(conn, "SELECT pg_has_role('pg_read_all_stats', 'USAGE')", &deadline, why,
		              sizeof(why));
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			goto failed;
		if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
			snprintf(why, sizeof(why),
			         "user %s may not read the standbys' WAL positions "
			         "(pg_stat_replication): GRANT pg_read_all_stats TO it, or set 0",
			         PQuser(conn));
			PQclear(res);
			res = NULL;
			goto failed;
		}
		PQclear(res);
	}

	step = "prepare insert";
	if (table == NULL)
		table = SINK_TABLE;
	if (sink_counts_table(table, counts, sizeof(counts)) != 0) {
		snprintf(why, sizeof(why), "no counts table for %s", table);
		goto failed;
	}
	quoted = PQescapeIdentifier(conn, table, strlen(table));
	quoted_counts = PQescapeIdentifier(conn, counts, strlen(counts));
	channel = PQescapeLiteral(conn, table, strlen(table));
	if (quoted == NULL || quoted_counts == NULL || channel == NULL)
		goto failed;
	len = sizeof(insert_sql) + strlen(quoted) + strlen(quoted_counts) + 2 * strlen(channel);
	if ((sql = malloc(len)) == NULL)
		goto failed;
	/* len counts each argument as often as insert_sql uses it */
	if ((size_t)snprintf(sql, len, insert_sql, quoted, quoted_counts, channel) >= len) {
		snprintf(why, sizeof(why), "statement longer than %zu bytes", len);
		goto failed;
	}
	deadline = db_statement_deadline(&params);
	res = db_prepare(conn, "insert_batch", sql, 3, &deadline, why, sizeof(why));
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		goto failed;
	PQclear(res);
	PQfreemem(quoted);
	PQfreemem(quoted_counts);
	PQfreemem(channel);
	free(sql);
	return 0;
failed:
	/* A result carries the server's error; NULL, why db_* gave. */
	if (res != NULL)
		db_error_line(PQresultErrorMessage(res), why, sizeof(why));
	snprintf(errstr, errstr_size, "%s: %s", step, why);
	PQclear(res);
	PQfreemem(quoted);
	PQfreemem(quoted_counts);
	PQfreemem(channel);
	free(sql);
	drop_connection();
	return -1;
}

/* The columns of insert_batch, in the order of its parameters $1..$3. */
enum sink_column { COL_ID, COL_EVENT_TIME, COL_CREATED_AT, COL_COUNT };

/* Appends "{a,b,c}" of the rows' column to a new string. */
static char *array_literal(const struct sink_row *rows, size_t n, enum sink_column col)
{
	char *buf = malloc(n * (TS_TEXT_MAX + 1) + 3), *p = buf;

	if (buf == NULL)
		return NULL;
	*p++ = '{';
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			*p++ = ',';
		if (col == COL_ID) {
			memcpy(p, rows[i].id, UID_TEXT_SIZE - 1);
			p += UID_TEXT_SIZE - 1;
		} else {
			/* PostgreSQL keeps microseconds: finer digits are truncated
			 * here rather than rounded there. */
			p += ts_format(col == COL_EVENT_TIME ? &rows[i].event_time
			                                     : &rows[i].created_at,
			               6, p);
		}
	}
	*p++ = '}';
	*p = '\0';
	return buf;
}

int sink_insert(const struct sink_row *rows, size_t n, long *inserted,
                char *errstr, size_t errstr_size)
{
	char *vals[COL_COUNT] = {NULL, NULL, NULL};
	PGresult *res = NULL;
	struct timespec deadline;
	int rc = -1;

	if (conn == NULL) {
		snprintf(errstr, errstr_size, "not connected");
		return -1;
	}
	for (enum sink_column col = COL_ID; col < COL_COUNT; col++) {
		if ((vals[col] = array_literal(rows, n, col)) == NULL) {
			snprintf(errstr, errstr_size, "out of memory");
			goto done;
		}
	}
	deadline = db_statement_deadline(&params);
	res = db_exec_prepared(conn, "insert_batch", COL_COUNT, (const char *const *)vals, 0,
	                       &deadline, errstr, errstr_size);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
		char why[256];

		if (res != NULL)
			db_error_line(PQresultErrorMessage(res), why, sizeof(why));
		else /* db_exec_prepared said why: no answer in time, or a broken connection */
			snprintf(why, sizeof(why), "%s", errstr);
		snprintf(errstr, errstr_size, "SQLSTATE %s: %s", sqlstate ? sqlstate : "none", why);
		rc = sink_classify(sqlstate);
		/* A refused statement leaves the connection as it was; after
		 * anything else it is not to be trusted. */
		if (rc != SINK_REFUSED || PQstatus(conn) != CONNECTION_OK) {
			rc = SINK_OUTAGE;
			drop_connection();
		}
		goto done;
	}
	*inserted = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	rc = 0;
done:
	PQclear(res);
	for (int col = 0; col < COL_COUNT; col++)
		free(vals[col]);
	return rc;
}

/* 1 to 8 hex digits at *p, up to stop: *out, and *p past them. */
static int parse_hex32(const char **p, char stop, uint64_t *out)
{
	uint64_t v = 0;
	int n = 0;

	for (; **p != stop; (*p)++, n++) {
		const char c = **p;
		int d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else
			return -1;
		if (n == 8)
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return n > 0 ? 0 : -1;
}

int sink_parse_lsn(const char *text, uint64_t *lsn)
{
	uint64_t hi, lo;

	if (text == NULL || parse_hex32(&text, '/', &hi) != 0)
		return -1;
	text++;
	if (parse_hex32(&text, '\0', &lo) != 0)
		return -1;
	*lsn = hi << 32 | lo;
	return 0;
}

int sink_wal_position(uint64_t *insert, uint64_t *flushed, char *errstr, size_t errstr_size)
{
	PGresult *res;
	struct timespec deadline;
	int rc = -1;

	if (conn == NULL) {
		snprintf(errstr, errstr_size, "not connected");
		return -1;
	}
	deadline = db_statement_deadline(&params);
	if (durable_standbys == 0) {
		res = db_exec(conn, "SELECT pg_current_wal_insert_lsn(), pg_current_wal_flush_lsn()",
		              &deadline, errstr, errstr_size);
	} else {
		/* A standby flushes only what the primary has flushed; the least
		 * is taken all the same. Fewer standbys streaming than asked:
		 * nothing is durable yet (0/0), and the offsets wait. The WAL
		 * sender of a logical slot (a subscriber, a CDC tool) is no
		 * standby: it could not be promoted. */
		const char *vals[] = {standbys_offset};

		res = db_exec_params(
		    conn,
		    "SELECT pg_current_wal_insert_lsn(), least(pg_current_wal_flush_lsn(), "
		    "coalesce((SELECT flush_lsn FROM pg_stat_replication r "
		    "WHERE state = 'streaming' AND flush_lsn IS NOT NULL AND NOT EXISTS "
		    "(SELECT FROM pg_replication_slots s WHERE s.active_pid = r.pid "
		    "AND s.slot_type = 'logical') "
		    "ORDER BY flush_lsn DESC OFFSET $1::int LIMIT 1), '0/0'))",
		    1, vals, &deadline, errstr, errstr_size);
	}
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQnfields(res) == 2 &&
	    sink_parse_lsn(PQgetvalue(res, 0, 0), insert) == 0 &&
	    sink_parse_lsn(PQgetvalue(res, 0, 1), flushed) == 0) {
		rc = 0;
	} else {
		if (PQresultStatus(res) == PGRES_FATAL_ERROR)
			db_error_line(PQresultErrorMessage(res), errstr, errstr_size);
		else if (res != NULL)
			snprintf(errstr, errstr_size, "unexpected answer to the WAL position query");
		/* Whatever went wrong, the batches of this session are not known
		 * to be durable: a new session starts them again. */
		drop_connection();
	}
	PQclear(res);
	return rc;
}

void sink_set_durable_standbys(int n)
{
	durable_standbys = n;
	snprintf(standbys_offset, sizeof(standbys_offset), "%d", n > 0 ? n - 1 : 0);
}

int sink_ping(char *errstr, size_t errstr_size)
{
	PGresult *res;
	struct timespec deadline;
	int rc = 0;

	if (conn == NULL) {
		snprintf(errstr, errstr_size, "not connected");
		return -1;
	}
	deadline = db_statement_deadline(&params);
	res = db_exec(conn, "SELECT 1", &deadline, errstr, errstr_size);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		if (res != NULL)
			db_error_line(PQresultErrorMessage(res), errstr, errstr_size);
		drop_connection();
		rc = -1;
	}
	PQclear(res);
	return rc;
}

bool sink_connected(void)
{
	return conn != NULL;
}

void sink_shutdown(void)
{
	drop_connection();
}
