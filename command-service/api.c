/* api: the command service's HTTP routes.
 *
 *   POST /api/v1/timestamp/{rfc3339}   the given instant
 *   POST /api/v1/timestamp, POST /app  the current time
 *   GET  /health, /ready (Kafka), /metrics: answered by http.c */
#include "api.h"

#include <stdio.h>
#include <string.h>

#include "http.h"
#include "log.h"
#include "msg.h"
#include "publisher.h"
#include "ts.h"
#include "uid.h"

#define TS_PREFIX "/api/v1/timestamp"
/* The longest QUERY_PUBLIC_URL kept. */
#define QUERY_URL_MAX 256

/* What Location starts with: see api_setup. */
static char query_url[QUERY_URL_MAX] = "";

int api_setup(const char *url, char *errstr, size_t errstr_size)
{
	size_t len = strlen(url);

	while (len > 0 && url[len - 1] == '/')
		len--;
	if (len >= sizeof(query_url)) {
		snprintf(errstr, errstr_size, "longer than %zu characters", sizeof(query_url) - 1);
		return -1;
	}
	if (len > 0 && strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
		snprintf(errstr, errstr_size, "'%.64s' does not start with http:// or https://", url);
		return -1;
	}
	/* It goes into a header line as it is: visible ASCII only. */
	for (size_t i = 0; i < len; i++) {
		if (url[i] <= ' ' || url[i] >= 0x7f) {
			snprintf(errstr, errstr_size, "character %zu is not visible ASCII", i + 1);
			return -1;
		}
	}
	snprintf(query_url, sizeof(query_url), "%.*s", (int)len, url);
	return 0;
}

int api_location(const char *id, char *buf, size_t size)
{
	int n = snprintf(buf, size, "Location: %s" TS_PREFIX "/%s\r\n", query_url, id);

	return n >= 0 && (size_t)n < size ? n : -1;
}

#define TS_EXPECTED \
	"expected RFC 3339 like 2009-09-28T19:03:12Z or 2009-09-28T21:03:12.5+02:00"

/* Accepts one command: the event time is given (segment != NULL) or now. */
static int post_timestamp(struct http_req *req, const char *segment)
{
	struct msg_command m;
	char why[128], value[MSG_ENCODED_MAX], body[64], key[256];
	char location[QUERY_URL_MAX + 128];
	int n, status;
	struct ts_instant accepted;
	enum pub_result res;
	size_t len;
	const struct trace_ctx *trace = http_trace(req);

	if ((status = http_drain_body(req)) == 413)
		return http_send_error(req, 413, "Connection: close\r\n",
		                       "request body larger than %d bytes", HTTP_BODY_MAX);
	if (status != 0)
		return http_send_error(req, status, "Connection: close\r\n",
		                       "request not received within the request timeout");
	accepted = ts_now();
	if (segment == NULL) {
		m.event_time = accepted;
	} else if (*segment == '\0') {
		return http_send_error(req, 400, NULL,
		                       "missing timestamp: use POST " TS_PREFIX
		                       "/{RFC 3339 date-time}, or POST " TS_PREFIX
		                       " for the current time");
	} else if (ts_parse_rfc3339(segment, strlen(segment), &m.event_time, why,
	                            sizeof(why)) != 0) {
		return http_send_error(req, 400, NULL, "invalid timestamp: %s; " TS_EXPECTED, why);
	}

	n = http_header(req->conn, "Idempotency-Key", key, sizeof(key));
	if (n != -1) {
		if (n < 0 || !uid_idempotency_key_valid(key, (size_t)n))
			return http_send_error(req, 400, NULL,
			                       "Idempotency-Key must be 1-255 visible ASCII characters");
		if (uid_v5(UID_IDEMPOTENCY_NAMESPACE, key, (size_t)n, m.command_id) != 0)
			return http_send_error(req, 500, NULL, "bad idempotency namespace");
	} else {
		uid_v4(m.command_id);
	}

	trace_attr_str(req->span, "command_id", m.command_id);
	len = msg_encode(&m, value);
	res = pub_send(m.command_id, value, len, req->cid, trace, msg_ts_ms(accepted), why,
	               sizeof(why));
	switch (res) {
	case PUB_OK:
		log_at(LOG_DEBUG, req->cid, m.command_id, "accepted %s", value);
		snprintf(body, sizeof(body), "{\"id\":\"%s\"}", m.command_id);
		/* Where the record will be read (the query service's path): the
		 * id is also the record's id. */
		if (api_location(m.command_id, location, sizeof(location)) < 0)
			return http_send_error(req, 500, NULL, "Location too long");
		return http_send_json(req, 200, location, body);
	case PUB_UNAVAILABLE:
		/* A message that timed out here may still be stored by the broker
		 * later (a 503 can become a row): the answer names the id tried, so
		 * that the client can look for it; a retry with an Idempotency-Key
		 * yields one record whatever happened. */
		log_at(LOG_WARN, req->cid, m.command_id, "not published: %s", why);
		return http_send_error_id(req, 503, "Retry-After: 1\r\n", m.command_id,
		                          "Kafka did not acknowledge the message: %s; retry "
		                          "(with an Idempotency-Key for exactly one record)",
		                          why);
	case PUB_FAILED:
		break;
	}
	log_at(LOG_ERROR, req->cid, m.command_id, "publish failed: %s", why);
	return http_send_error(req, 500, NULL, "publish failed: %s", why);
}

static int route(struct http_req *req, const char **route_name)
{
	const char *path = req->path, *method = req->ri->request_method;

	if (strcmp(path, "/app") == 0 || strcmp(path, TS_PREFIX) == 0) {
		*route_name = strcmp(path, "/app") == 0 ? "/app" : TS_PREFIX;
		if (strcmp(method, "POST") != 0)
			return http_method_not_allowed(req, "POST");
		return post_timestamp(req, NULL);
	}
	if (strncmp(path, TS_PREFIX "/", sizeof(TS_PREFIX)) == 0) {
		*route_name = TS_PREFIX "/{timestamp}";
		if (strcmp(method, "POST") != 0)
			return http_method_not_allowed(req, "POST");
		return post_timestamp(req, path + sizeof(TS_PREFIX));
	}
	return http_send_error(req, 404, NULL, "no such resource: %s", path);
}

/* A path that cannot be decoded under the timestamp route is a bad
 * timestamp: say which form is expected. */
static int bad_request(struct http_req *req, int status, const char *why)
{
	if (req->path_bad && strncmp(req->raw_path, TS_PREFIX "/", sizeof(TS_PREFIX)) == 0)
		return http_send_error(req, status, NULL, "invalid timestamp: %s; " TS_EXPECTED, why);
	return http_send_error(req, status, NULL, "%s", why);
}

const struct http_routes api_routes = {.route = route, .bad = bad_request, .down = pub_down};
