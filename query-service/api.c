/* api: the query service's HTTP routes.
 *
 *   GET /api/v1/timestamp/{id}   one record, every value a JSON string
 *   GET /health, /ready, /metrics */
#include "api.h"

#include <endian.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "log.h"
#include "metrics.h"
#include "ts.h"
#include "uid.h"

#define TS_PREFIX "/api/v1/timestamp"

/* PostgreSQL's binary timestamptz counts microseconds from 2000-01-01. */
#define PG_EPOCH_UNIX 946684800LL

const struct pool_stmt api_statements[] = {
    {"get_record",
     "SELECT id, event_timestamp, created_at FROM timestamp_records WHERE id = $1::uuid", 1},
    {"ping", "SELECT 1", 0},
    {NULL, NULL, 0},
};

static struct metrics_series m_pool_in_use = METRICS_GAUGE_INIT(
    "db_pool_connections_in_use", "Pooled database connections lent out.", "");
static struct metrics_series m_db_errors = METRICS_COUNTER_INIT(
    "db_errors_total", "Database calls that failed.", "");

void api_setup(void)
{
	metrics_register(&m_pool_in_use);
	metrics_register(&m_db_errors);
}

static struct ts_instant pg_time(const char *bin)
{
	int64_t us;
	memcpy(&us, bin, 8);
	us = (int64_t)be64toh((uint64_t)us);
	int64_t sec = us / 1000000, rem = us % 1000000;
	if (rem < 0) {
		rem += 1000000;
		sec--;
	}
	return (struct ts_instant){.sec = sec + PG_EPOCH_UNIX, .nsec = (int32_t)rem * 1000};
}

static void uuid_text(const unsigned char *b, char *out)
{
	static const char hex[] = "0123456789abcdef";
	int o = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = '\0';
}

/* Runs a prepared statement with a pooled connection. Returns the result
 * (the caller clears it), or NULL after answering 503. */
static PGresult *query(const struct http_req *req, const char *stmt, int n,
                       const char *const *vals, ExecStatusType want)
{
	char errstr[256];
	PGconn *conn = pool_acquire(errstr, sizeof(errstr));
	PGresult *res;

	metrics_set(&m_pool_in_use, pool_in_use());
	if (conn == NULL) {
		metrics_add(&m_db_errors, 1);
		http_send_error(req, 503, "Retry-After: 1\r\n", "database unavailable: %s", errstr);
		return NULL;
	}
	res = PQexecPrepared(conn, stmt, n, vals, NULL, NULL, 1);
	if (PQresultStatus(res) != want) {
		db_error_line(PQresultErrorMessage(res), errstr, sizeof(errstr));
		PQclear(res);
		pool_release(conn, 1);
		metrics_add(&m_db_errors, 1);
		http_send_error(req, 503, "Retry-After: 1\r\n", "database unavailable: %s", errstr);
		return NULL;
	}
	pool_release(conn, 0);
	return res;
}

static int get_record(const struct http_req *req, const char *id)
{
	char body[320], ev[TS_TEXT_MAX], cr[TS_TEXT_MAX], idt[UID_TEXT_SIZE];
	const char *vals[1] = {id};
	PGresult *res;
	int status;

	if (!uid_valid(id, strlen(id)))
		return http_send_error(req, 400, NULL, "id must be a UUID, got '%.64s'", id);
	res = query(req, "get_record", 1, vals, PGRES_TUPLES_OK);
	if (res == NULL)
		return 503;
	if (PQntuples(res) == 0) {
		status = http_send_error(req, 404, NULL, "no record with id %s (yet)", id);
	} else if (PQgetlength(res, 0, 0) != 16 || PQgetlength(res, 0, 1) != 8 ||
	           PQgetlength(res, 0, 2) != 8) {
		status = http_send_error(req, 500, NULL, "unexpected column format");
	} else {
		struct ts_instant e = pg_time(PQgetvalue(res, 0, 1));
		struct ts_instant c = pg_time(PQgetvalue(res, 0, 2));
		uuid_text((const unsigned char *)PQgetvalue(res, 0, 0), idt);
		ts_format(&e, 6, ev);
		ts_format(&c, 6, cr);
		snprintf(body, sizeof(body),
		         "{\"id\":\"%s\",\"command_id\":\"%s\",\"event_timestamp\":\"%s\","
		         "\"created_at\":\"%s\"}",
		         idt, idt, ev, cr);
		status = http_send_json(req, 200, NULL, body);
	}
	PQclear(res);
	return status;
}

static const char *db_down(const struct http_req *req, char *buf, size_t size)
{
	char errstr[256];
	PGconn *conn = pool_acquire(errstr, sizeof(errstr));
	PGresult *res;

	(void)req;
	if (conn == NULL) {
		snprintf(buf, size, "postgresql: %s", errstr);
		return buf;
	}
	res = PQexecPrepared(conn, "ping", 0, NULL, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		db_error_line(PQresultErrorMessage(res), errstr, sizeof(errstr));
		snprintf(buf, size, "postgresql: %s", errstr);
		PQclear(res);
		pool_release(conn, 1);
		return buf;
	}
	PQclear(res);
	pool_release(conn, 0);
	return NULL;
}

static int route(struct http_req *req, const char **route_name)
{
	const char *path = req->path;
	char buf[320];

	if (strcmp(path, "/health") == 0)
		return *route_name = "/health", http_health(req);
	if (strcmp(path, "/ready") == 0)
		return *route_name = "/ready", http_ready(req, db_down(req, buf, sizeof(buf)));
	if (strcmp(path, "/metrics") == 0)
		return *route_name = "/metrics", metrics_serve(req);
	if (strncmp(path, TS_PREFIX "/", sizeof(TS_PREFIX)) == 0) {
		*route_name = TS_PREFIX "/{id}";
		if (strcmp(req->ri->request_method, "GET") != 0)
			return http_method_not_allowed(req, "GET");
		if (path[sizeof(TS_PREFIX)] == '\0')
			return http_send_error(req, 400, NULL, "missing id: use GET " TS_PREFIX "/{id}");
		return get_record(req, path + sizeof(TS_PREFIX));
	}
	return http_send_error(req, 404, NULL, "no such resource: %s", path);
}

const struct http_routes api_routes = {.route = route};
