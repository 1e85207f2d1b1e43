/* lookup: reads records by id. Requests that arrive while every statement
 * allowed (DB_LOOKUP_STATEMENTS) is running are read together, in one
 * statement, by whichever of them may run the next (what producer batches
 * are to the command service): under load PostgreSQL answers a few
 * statements for many ids instead of one statement per id; when idle, a
 * request reads alone and at once. */
#ifndef QUERY_LOOKUP_H
#define QUERY_LOOKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "pool.h"
#include "ts.h"
#include "uid.h"

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
	    {"get_records",                                                                 \
	     "SELECT id, event_timestamp, created_at FROM timestamp_records "               \
	     "WHERE id = ANY($1::uuid[])",                                                  \
	     1},                                                                            \
	{                                                                                   \
		"ping", "SELECT 1", 0                                                       \
	}

/* Concurrent readers share at most `max_readers` statements at a time
 * (DB_LOOKUP_STATEMENTS, at most the pool's size). One runs while the
 * database answers in time; another starts beside those running only when
 * the newest of them has run `spread_ms` (DB_LOOKUP_SPREAD_MS) without an
 * answer, or a full batch (LOOKUP_BATCH_MAX) waits: a slow disk or a
 * stall gets more statements, a database answering fast gets fewer and
 * larger ones (and fewer wake-ups). A request waits for its answer at most
 * `wait_ms` in all (queued, for a connection, for the statement), give or
 * take LOOKUP_STATEMENT_MIN_MS. Safe to call again (tests). */
void lookup_setup(int max_readers, int wait_ms, int spread_ms);

/* The ids one statement reads at most. */
#define LOOKUP_BATCH_MAX 64

/* A statement gets at least this long even when the request that leads
 * its batch has less time left: under mere overload, giving up on a
 * healthy connection (cancel, reconnect) at the last millisecond would
 * only add work. */
#define LOOKUP_STATEMENT_MIN_MS 250

/* Reads the record with id (a valid UUID). LOOKUP_UNAVAILABLE comes with
 * errstr (the database is down or did not answer in time, or every
 * connection stayed busy). */
enum lookup_result lookup_get(const char *id, struct lookup_record *out, char *errstr,
                              size_t errstr_size);

/* How recent a statement's answer makes /ready say "ready" without
 * asking the database again. */
#define LOOKUP_ANSWERED_FRESH_MS 1000

/* /ready's check of the database. 0 when a statement was answered within
 * LOOKUP_ANSWERED_FRESH_MS: nothing to ask then (under load every
 * connection is busy with requests, and a check would take one from them).
 * Otherwise a round trip through the pool, within wait_ms like a request.
 * Returns 0, or -1 with errstr. */
int lookup_ping(char *errstr, size_t errstr_size) __attribute__((warn_unused_result));

/* Reads the records of ids[0..n) with one statement, by deadline
 * (a clock_deadline): results[i] (and recs[i] when LOOKUP_FOUND) for each
 * id; errstr says why when one is LOOKUP_UNAVAILABLE. Returns 0, or -1 with
 * errstr, which then answers every one of them. */
typedef int (*lookup_reader_fn)(const char (*ids)[UID_TEXT_SIZE], int n,
                                const struct timespec *deadline, enum lookup_result *results,
                                struct lookup_record *recs, char *errstr, size_t errstr_size);

/* Replaces how a batch is read (unit tests: a reader without PostgreSQL);
 * NULL puts back the default, which reads through the pool. */
void lookup_set_reader(lookup_reader_fn fn);

/* The instant of a timestamptz in PostgreSQL's binary form (8 bytes). */
struct ts_instant lookup_pg_time(const char *bin);

/* Requests queued for a statement right now (not yet taken by a leader). */
int lookup_queued(void);

#endif
