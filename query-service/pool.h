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
#include "trace.h"

struct pool_stmt {
	const char *name;
	const char *sql;
	int n_params;
};

/* A pool: one on DB_URL, and one on DB_READ_URL when that is set. */
struct pool;
enum pool_role { POOL_PRIMARY, POOL_READ };

/* The service's pools (main.c sets them up): pool_primary on DB_URL;
 * pool_reads on DB_READ_URL, or the same as pool_primary when that is not
 * set. */
extern struct pool *pool_primary, *pool_reads;

/* Sets up the pool of role with `size` slots (connected lazily). stmts
 * (NULL-name terminated) are prepared on every new connection. Registers
 * the gauges db_pool_connections_in_use{pool="primary"|"read"}, which the
 * pool keeps equal to pool_in_use, and db_pool_up{pool=...}: 1 while its
 * last connection or statement succeeded, 0 after one failed. Returns
 * NULL with errstr on failure. */
struct pool *pool_setup(enum pool_role role, const struct db_params *p, int size,
                        const struct pool_stmt *stmts, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Starts the CLIENT span "<operation> <table>" (a child of parent) of a
 * statement a request runs on pool, with the db.* and server.* attributes
 * of where pool's connections go; NULL when tracing is off or the span is
 * not recorded. The caller ends it (trace_error first when it failed). */
struct trace_span *pool_span(const struct pool *pool, const struct trace_ctx *parent,
                             const char *operation, const char *table);

/* "DB_URL" or "DB_READ_URL": where pool's connections go, for messages. */
const char *pool_url_name(const struct pool *pool);

/* Waits until deadline (a clock_deadline) for a free
 * connection, connecting it if needed. Returns NULL with errstr when none is
 * free in time or the database cannot be reached in time. The connection is
 * the caller's until pool_release. */
PGconn *pool_acquire(struct pool *pool, const struct timespec *deadline, char *errstr,
                     size_t errstr_size);

/* Gives a connection back; broken = true drops it (a new one is opened on
 * the slot's next use): after any failed or timed-out call on it. */
void pool_release(struct pool *pool, PGconn *conn, bool broken);

/* Runs prepared statement name (one of the pool's stmts) with text
 * parameters vals[0..n_params) on a pooled connection, all of it (a free
 * connection, the statement) by deadline; results in result_format (0
 * text, 1 binary). Returns the PGRES_TUPLES_OK result (the caller clears
 * it), or NULL with errstr: the connection is then dropped, as after any
 * failed call. */
PGresult *pool_exec(struct pool *pool, const char *name, int n_params, const char *const *vals,
                    int result_format, const struct timespec *deadline, char *errstr,
                    size_t errstr_size);

/* Connections lent out right now. */
int pool_in_use(struct pool *pool);

/* True if the last connection given back was not broken and came back
 * less than ms ago: the database answered just now. */
bool pool_answered_within(struct pool *pool, int ms);

/* Closes the pool's connections; NULL does nothing. */
void pool_shutdown(struct pool *pool);

#endif
