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

/* A connection in UTC with ISO dates, so that dumps compare as text. */
static PGconn *connect_utc(const char *db_url, char *errstr, size_t errstr_size)
{
	const char *keys[] = {"dbname", "options", NULL};
	const char *vals[] = {db_url, "-c TimeZone=UTC -c DateStyle=ISO", NULL};
	PGconn *conn = PQconnectdbParams(keys, vals, 1);

	if (PQstatus(conn) != CONNECTION_OK) {
		db_error_line(PQerrorMessage(conn), errstr, errstr_size);
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

int store_exec(const char *db_url, const char *sql, char *errstr, size_t errstr_size)
{
	PGconn *conn = connect_utc(db_url, errstr, errstr_size);
	PGresult *res;
	int rc = -1;

	if (conn == NULL)
		return -1;
	res = PQexec(conn, sql);
	if (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK)
		rc = 0;
	else
		db_error_line(PQresultErrorMessage(res), errstr, errstr_size);
	PQclear(res);
	PQfinish(conn);
	return rc;
}

int store_query(const char *db_url, const char *sql, const char *const *vals, int n_vals,
                char **text, long *rows, char *errstr, size_t errstr_size)
{
	PGconn *conn = connect_utc(db_url, errstr, errstr_size);
	PGresult *res = NULL;
	size_t size = 1, pos = 0;
	int rc = -1;

	*text = NULL;
	if (conn == NULL)
		return -1;
	res = PQexecParams(conn, sql, n_vals, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		db_error_line(PQresultErrorMessage(res), errstr, errstr_size);
		goto done;
	}
	for (int r = 0; r < PQntuples(res); r++)
		for (int c = 0; c < PQnfields(res); c++)
			size += (size_t)PQgetlength(res, r, c) + 1;
	if ((*text = malloc(size)) == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		goto done;
	}
	for (int r = 0; r < PQntuples(res); r++)
		for (int c = 0; c < PQnfields(res); c++)
			pos += (size_t)sprintf(*text + pos, "%s%c", PQgetvalue(res, r, c),
			                       c + 1 < PQnfields(res) ? '|' : '\n');
	(*text)[pos] = '\0';
	*rows = PQntuples(res);
	rc = 0;
done:
	PQclear(res);
	PQfinish(conn);
	return rc;
}

int store_dump(const char *db_url, char **text, long *rows, char *errstr, size_t errstr_size)
{
	return store_query(db_url,
	                   "SELECT id, event_timestamp, created_at FROM timestamp_records ORDER BY id",
	                   NULL, 0, text, rows, errstr, errstr_size);
}

int store_counts(const char *db_url, struct store_counts *out, char *errstr, size_t errstr_size)
{
	/* What the consumer adds up, as a GROUP BY: one statement, one snapshot. */
	static const char sql[] =
	    "WITH d AS (SELECT minute, c.count AS counted, r.count AS rows FROM timestamp_counts c "
	    "FULL JOIN (SELECT date_trunc('minute', event_timestamp, 'UTC') AS minute, count(*) "
	    "FROM timestamp_records GROUP BY 1) r USING (minute) "
	    "WHERE c.count IS DISTINCT FROM r.count) "
	    "SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM timestamp_counts), "
	    "(SELECT coalesce(sum(count), 0) FROM timestamp_counts), "
	    "(SELECT count(*) FROM timestamp_records), "
	    "coalesce((SELECT minute || ': ' || coalesce(counted, 0) || ' counted, ' || "
	    "coalesce(rows, 0) || ' rows' FROM d ORDER BY minute LIMIT 1), '')";
	PGconn *conn = connect_utc(db_url, errstr, errstr_size);
	PGresult *res;
	int rc = -1;

	if (conn == NULL)
		return -1;
	res = PQexec(conn, sql);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		out->differ = strtol(PQgetvalue(res, 0, 0), NULL, 10);
		out->minutes = strtol(PQgetvalue(res, 0, 1), NULL, 10);
		out->counted = strtol(PQgetvalue(res, 0, 2), NULL, 10);
		out->rows = strtol(PQgetvalue(res, 0, 3), NULL, 10);
		snprintf(out->first, sizeof(out->first), "%s", PQgetvalue(res, 0, 4));
		rc = 0;
	} else {
		db_error_line(PQresultErrorMessage(res), errstr, errstr_size);
	}
	PQclear(res);
	PQfinish(conn);
	return rc;
}
