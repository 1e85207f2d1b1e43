/* api: the query service's HTTP routes.
 *
 *   GET /api/v1/timestamp/{id}     one record, every value a JSON string
 *                                  (Prefer: wait / ?wait: wait.c)
 *   GET /api/v1/timestamps          records by event_timestamp, a page at a time
 *   GET /api/v1/timestamps/counts   records per minute, hour or day
 *   GET /api/v1/timestamps/stream   Server-Sent Events (stream.c)
 *   GET /health, /ready (PostgreSQL), /metrics: answered by http.c */
#include "api.h"

#include <stdio.h>
#include <string.h>

#include "counts.h"
#include "etag.h"
#include "http.h"
#include "log.h"
#include "lookup.h"
#include "range.h"
#include "record.h"
#include "stream.h"
#include "uid.h"
#include "wait.h"

#define TS_PREFIX "/api/v1/timestamp"
#define CACHE_FOREVER "Cache-Control: public, max-age=31536000, immutable\r\n"
#define STREAM_PATH "/api/v1/timestamps/stream"

const struct pool_stmt api_statements[] = {
    LOOKUP_STATEMENTS,
    RANGE_STATEMENTS,
    COUNTS_STATEMENTS,
    STREAM_STATEMENTS,
    {NULL, NULL, 0},
};

static int get_record(struct http_req *req, const char *id)
{
	char body[RECORD_JSON_MAX], errstr[256], etag[ETAG_SIZE], inm[1024], headers[128];
	struct lookup_record rec;
	enum lookup_result result;
	int n, status;

	http_trace(req); /* the parent of the reads' spans */
	if (!uid_valid(id, strlen(id)))
		return http_send_error(req, 400, NULL, "id must be a UUID, got '%.64s'", id);
	if ((status = wait_lookup(req, id, &rec, &result, errstr, sizeof(errstr))) != 0)
		return status; /* a bad wait, or too many waiting */
	switch (result) {
	case LOOKUP_MISSING: /* may be there in a moment */
		return http_send_error(req, 404, "Cache-Control: no-store\r\n",
		                       "no record with id %s (yet)", id);
	case LOOKUP_UNAVAILABLE:
		return http_send_error(req, 503, "Retry-After: 1\r\n", "database unavailable: %s",
		                       errstr);
	case LOOKUP_FOUND:
		break;
	}
	if ((n = record_json(id, &rec.event_time, &rec.created_at, body, sizeof(body))) < 0)
		return http_send_error(req, 500, NULL, "record too long to answer");
	/* A record never changes once written: cached for good, revalidated
	 * with its ETag. */
	etag_of(body, (size_t)n, etag);
	snprintf(headers, sizeof(headers), "ETag: %s\r\n" CACHE_FOREVER, etag);
	if (http_header(req->conn, "If-None-Match", inm, sizeof(inm)) >= 0 &&
	    etag_none_match(inm, etag))
		return http_send_json(req, 304, headers, body);
	return http_send_json(req, 200, headers, body);
}

/* /ready: bounded like a request (lookup_ping), so that /ready answers
 * 503 in time whatever the database does. */
static const char *db_down(char *buf, size_t size)
{
	char errstr[256];

	if (lookup_ping(errstr, sizeof(errstr)) != 0) {
		snprintf(buf, size, "postgresql: %s", errstr);
		return buf;
	}
	return NULL;
}

static int route(struct http_req *req, const char **route_name)
{
	const char *path = req->path;

	if (strcmp(path, STREAM_PATH) == 0) {
		*route_name = STREAM_PATH;
		if (strcmp(req->ri->request_method, "GET") != 0)
			return http_method_not_allowed(req, "GET");
		http_trace(req); /* the span lasts as long as the stream */
		return stream_serve(req);
	}
	if (strncmp(path, TS_PREFIX "/", sizeof(TS_PREFIX)) == 0) {
		*route_name = TS_PREFIX "/{id}";
		if (strcmp(req->ri->request_method, "GET") != 0)
			return http_method_not_allowed(req, "GET");
		if (path[sizeof(TS_PREFIX)] == '\0')
			return http_send_error(req, 400, NULL, "missing id: use GET " TS_PREFIX "/{id}");
		return get_record(req, path + sizeof(TS_PREFIX));
	}
	if (strcmp(path, RANGE_PATH) == 0) {
		*route_name = RANGE_PATH;
		if (strcmp(req->ri->request_method, "GET") != 0)
			return http_method_not_allowed(req, "GET");
		http_trace(req); /* the parent of the read's span */
		return range_get(req);
	}
	if (strcmp(path, COUNTS_PATH) == 0) {
		*route_name = COUNTS_PATH;
		if (strcmp(req->ri->request_method, "GET") != 0)
			return http_method_not_allowed(req, "GET");
		http_trace(req);
		return counts_get(req);
	}
	return http_send_error(req, 404, NULL, "no such resource: %s", path);
}

const struct http_routes api_routes = {
    .route = route, .down = db_down, .stopping = feed_stopping};
