/* store: row counts with libpq, every value out of line. */
#include "store.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

int store_count_ids(const char *db_url, const char *const *ids, size_t n,
                    long *count, char *errstr, size_t errstr_size)
{
	PGconn *conn = NULL;
	PGresult *res = NULL;
	char *array = NULL, *p;
	const char *vals[1];
	int rc = -1;

	/* One array parameter: "{id,id,...}" (UUID texts need no quoting). */
	array = malloc(n * 37 + 3);
	if (array == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	p = array;
	*p++ = '{';
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(ids[i]);
		if (len != 36) {
			snprintf(errstr, errstr_size, "not a UUID: '%s'", ids[i]);
			goto done;
		}
		if (i > 0)
			*p++ = ',';
		memcpy(p, ids[i], len);
		p += len;
	}
	*p++ = '}';
	*p = '\0';
	vals[0] = array;

	conn = PQconnectdb(db_url);
	if (PQstatus(conn) != CONNECTION_OK) {
		db_error_line(PQerrorMessage(conn), errstr, errstr_size);
		goto done;
	}
	res = PQexecParams(conn,
	                   "SELECT count(*) FROM timestamp_records WHERE id = ANY($1::uuid[])",
	                   1, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		db_error_line(PQresultErrorMessage(res), errstr, errstr_size);
		goto done;
	}
	*count = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	rc = 0;
done:
	PQclear(res);
	PQfinish(conn);
	free(array);
	return rc;
}

int store_count(const char *db_url, const char *id, long *count, char *errstr,
                size_t errstr_size)
{
	return store_count_ids(db_url, &id, 1, count, errstr, errstr_size);
}
