/* pg_startup: reading a PostgreSQL start-up packet, for the tests that play
 * the server's side of a connection (common/tests/test_db.c,
 * query-service/tests/test_pool.c). */
#ifndef COMMON_TESTS_PG_STARTUP_H
#define COMMON_TESTS_PG_STARTUP_H

#include <stddef.h>

/* The value of key in a start-up packet's body of len bytes (after its
 * length: the protocol version, then key, NUL, value, NUL, ..., NUL), or
 * NULL when it has none. */
const char *pg_startup_value(const char *body, size_t len, const char *key);

#endif
