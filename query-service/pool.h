/* pool: a bounded pool of PostgreSQL connections, each with the service's
 * statements prepared, shared by all HTTP threads. */
#ifndef QUERY_POOL_H
#define QUERY_POOL_H

#include <libpq-fe.h>
#include <stddef.h>

#include "db.h"

struct pool_stmt {
	const char *name;
	const char *sql;
	int n_params;
};

/* Sets up `size` slots (connected lazily). stmts (NULL-name terminated)
 * are prepared on every new connection. */
int pool_setup(const struct db_params *p, int size, int acquire_timeout_ms,
               const struct pool_stmt *stmts, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Waits for a free connection (connecting it if needed). Returns NULL with
 * errstr when none is free in time or the database cannot be reached. */
PGconn *pool_acquire(char *errstr, size_t errstr_size);

/* Gives a connection back; broken = true drops it (reconnected on next use). */
void pool_release(PGconn *conn, int broken);

/* Connections lent out right now. */
int pool_in_use(void);

void pool_shutdown(void);

#endif
