/* pool: a bounded pool of PostgreSQL connections, each with the service's
 * statements prepared, shared by all HTTP threads. Every wait in it (for a
 * free connection, connecting, preparing) ends at the caller's deadline. */
#ifndef QUERY_POOL_H
#define QUERY_POOL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "db.h"

struct pool_stmt {
	const char *name;
	const char *sql;
	int n_params;
};

/* Sets up `size` slots (connected lazily). stmts (NULL-name terminated)
 * are prepared on every new connection. Registers the gauge
 * db_pool_connections_in_use, which the pool keeps equal to pool_in_use. */
int pool_setup(const struct db_params *p, int size, const struct pool_stmt *stmts,
               char *errstr, size_t errstr_size) __attribute__((warn_unused_result));

/* Waits until deadline (a clock_deadline) for a free
 * connection, connecting it if needed. Returns NULL with errstr when none is
 * free in time or the database cannot be reached in time. The connection is
 * the caller's until pool_release. */
PGconn *pool_acquire(const struct timespec *deadline, char *errstr, size_t errstr_size);

/* Gives a connection back; broken = true drops it (a new one is opened on
 * the slot's next use): after any failed or timed-out call on it. */
void pool_release(PGconn *conn, bool broken);

/* Runs prepared statement name (one of the pool's stmts) with text
 * parameters vals[0..n_params) on a pooled connection, all of it (a free
 * connection, the statement) by deadline; results in result_format (0
 * text, 1 binary). Returns the PGRES_TUPLES_OK result (the caller clears
 * it), or NULL with errstr: the connection is then dropped, as after any
 * failed call. */
PGresult *pool_exec(const char *name, int n_params, const char *const *vals,
                    int result_format, const struct timespec *deadline, char *errstr,
                    size_t errstr_size);

/* Connections lent out right now. */
int pool_in_use(void);

/* True if the last connection given back was not broken and came back
 * less than ms ago: the database answered just now. */
bool pool_answered_within(int ms);

void pool_shutdown(void);

#endif
