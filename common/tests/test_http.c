/* test_http: the civetweb helpers (common/http.c) through a real server
 * started in-process on a free port, spoken to over a plain socket with
 * hand-written HTTP/1.1, so that every byte of a reply is checked: status
 * line, Content-Type, exact Content-Length, correlationId, JSON bodies. */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "clock.h"
#include "http.h"
#include "jsonw.h"
#include "log.h"
#include "suites.h"
#include "uid.h"

#define V1_ID "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
#define V4_UPPER "F47AC10B-58CC-4372-A567-0E02B2C3D479"

/* ---- the server under test ------------------------------------------------ */

static atomic_bool slow_started;

/* One route per behaviour; every reply goes through the helpers. /health,
 * /ready (no down callback: ready) and /metrics are http.c's own. */
static int test_route(struct http_req *req, const char **route_name)
{
	const char *p = req->path;

	*route_name = "test";
	if (strcmp(p, "/slow") == 0) { /* a request still in progress a while */
		atomic_store(&slow_started, true);
		usleep(300 * 1000);
		return http_send_json(req, 200, NULL, "{\"slow\":true}");
	}
	if (strcmp(p, "/json") == 0)
		return http_send_json(req, 200, NULL, "{\"ok\":true}");
	if (strcmp(p, "/error") == 0)
		return http_send_error(req, 404, NULL, "no \"such\" thing");
	if (strcmp(p, "/unavailable") == 0)
		return http_send_error(req, 503, "Retry-After: 1\r\n", "database down");
	if (strcmp(p, "/unavailable-id") == 0)
		return http_send_error_id(req, 503, "Retry-After: 1\r\n", V1_ID, "not acknowledged");
	if (strcmp(p, "/long-error") == 0) {
		char msg[600];
		memset(msg, '"', sizeof(msg) - 1);
		msg[sizeof(msg) - 1] = '\0';
		return http_send_error(req, 400, NULL, "%s", msg);
	}
	if (strcmp(p, "/drain") == 0) {
		int st = http_drain_body(req);
		if (st != 0)
			return http_send_error(req, st, "Connection: close\r\n", "body not drained");
		return http_send_json(req, 200, NULL, "{\"drained\":true}");
	}
	if (strcmp(p, "/ready-down") == 0)
		return http_ready(req, "kafka");
	if (strcmp(p, "/ready-down-odd") == 0)
		return http_ready(req, "postgresql: \"db\" said\nno\\");
	if (strcmp(p, "/post-only") == 0)
		return http_method_not_allowed(req, "POST");
	if (strcmp(p, "/trace") == 0) { /* the trace context as http.c read it */
		char body[1024], parent[TRACE_PARENT_SIZE] = "", span[TRACE_PARENT_SIZE] = "";
		size_t pos = 0;
		const struct trace_ctx *t = http_trace(req);

		if (trace_ctx_valid(&req->parent))
			trace_format(&req->parent, parent);
		if (trace_ctx_valid(t))
			trace_format(t, span);
		log_warn("tracing request"); /* seen in the log test (LOG_WARN) only */
		jsonw_append(body, sizeof(body), &pos, "{\"parent\":\"%s\",\"state\":\"", parent);
		jsonw_escape(body, sizeof(body) - 128, &pos, req->parent.state, (size_t)-1);
		jsonw_append(body, sizeof(body), &pos, "\",\"span\":\"%s\"}", span);
		return http_send_json(req, 200, NULL, body);
	}
	if (strncmp(p, "/echo/", 6) == 0) {
		char body[4096 * 6 + 64];
		size_t pos = 0;
		jsonw_append(body, sizeof(body), &pos, "{\"path\":\"");
		jsonw_escape(body, sizeof(body) - 4, &pos, p, (size_t)-1);
		jsonw_append(body, sizeof(body), &pos, "\"}");
		return http_send_json(req, 200, NULL, body);
	}
	return http_send_error(req, 404, NULL, "no route for %s", p);
}

static const struct http_routes test_routes = {.route = test_route};

static struct mg_context *ctx;
static int port;

/* Short, so that the tests of the request deadline take a second or two. */
#define TEST_REQUEST_TIMEOUT_MS 1000
#define TEST_THREADS 4

/* A port the kernel just handed out, free unless someone races us. */
static int free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), p;

	ck_assert_int_ge(fd, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	p = ntohs(sa.sin_port);
	close(fd);
	return p;
}

static void server_start(void)
{
	char err[256] = "";

	log_setup("test", LOG_ERROR);
	signal(SIGPIPE, SIG_IGN);
	for (int attempt = 0; attempt < 20 && ctx == NULL; attempt++) {
		struct http_server_opts opts = {
		    .address = "127.0.0.1",
		    .port = free_port(),
		    .threads = TEST_THREADS,
		    .request_timeout_ms = TEST_REQUEST_TIMEOUT_MS,
		    .routes = &test_routes,
		};
		ctx = http_start(&opts, err, sizeof(err));
		port = opts.port;
	}
	ck_assert_msg(ctx != NULL, "http_start: %s", err);
}

static _Atomic bool stopped;

static void *stop_thread(void *arg)
{
	mg_stop(arg);
	atomic_store(&stopped, true);
	return NULL;
}

/* mg_stop waits for civetweb's master thread, which notices the stop flag
 * only when its poll(2) of the listening socket returns: after up to 2 s,
 * or at once when a connection arrives. Knocking on the port while mg_stop
 * runs keeps each test's teardown from costing seconds. */
static void server_stop(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	pthread_t t;

	if (ctx == NULL)
		return;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	atomic_store(&stopped, false);
	ck_assert_int_eq(pthread_create(&t, NULL, stop_thread, ctx), 0);
	while (!atomic_load(&stopped)) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd >= 0) {
			(void)connect(fd, (struct sockaddr *)&sa, sizeof(sa));
			close(fd);
		}
		usleep(20 * 1000);
	}
	pthread_join(t, NULL);
	ctx = NULL;
}

/* ---- a minimal HTTP/1.1 client ------------------------------------------- */

struct client {
	int fd;
	char buf[256 * 1024];
	size_t len; /* bytes received and not yet consumed */
};

struct response {
	int status;
	char status_line[128];
	char head[8192]; /* header lines after the status line */
	long long content_length; /* -1: none */
	char *body;               /* NUL-terminated, malloc'd */
	size_t body_len;
};

static struct client *client_open(void)
{
	struct client *c = malloc(sizeof(*c));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {.tv_sec = 5};

	ck_assert_ptr_nonnull(c);
	c->len = 0;
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(c->fd, 0);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_msg(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect: %s",
	              strerror(errno));
	return c;
}

static void client_close(struct client *c)
{
	close(c->fd);
	free(c);
}

static void client_send(struct client *c, const void *data, size_t n)
{
	const char *p = data;

	while (n > 0) {
		ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);
		ck_assert_msg(k > 0, "send: %s", strerror(errno));
		p += k;
		n -= (size_t)k;
	}
}

static void client_send_str(struct client *c, const char *s)
{
	client_send(c, s, strlen(s));
}

/* Sends what it can of data to a server that may answer and close before
 * reading it all (a refused body): returns false once the connection is
 * closed (EPIPE, ECONNRESET), asserts on any other failure. */
static bool client_send_until_closed(struct client *c, const void *data, size_t n)
{
	const char *p = data;

	while (n > 0) {
		ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);
		if (k < 0 && (errno == EPIPE || errno == ECONNRESET))
			return false;
		ck_assert_msg(k > 0, "send: %s", strerror(errno));
		p += k;
		n -= (size_t)k;
	}
	return true;
}

/* Receives more bytes; returns how many (0 at EOF). */
static size_t client_fill(struct client *c)
{
	ssize_t k;

	ck_assert_msg(c->len < sizeof(c->buf), "response too large");
	do
		k = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	while (k < 0 && errno == EINTR);
	ck_assert_msg(k >= 0, "recv: %s", strerror(errno));
	c->len += (size_t)k;
	return (size_t)k;
}

static void client_consume(struct client *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

/* Finds a header's value in r->head (case-insensitive name); NULL if absent. */
static const char *header(const struct response *r, const char *name, char *out, size_t size)
{
	size_t nl = strlen(name);

	for (const char *line = r->head; *line;) {
		const char *eol = strstr(line, "\r\n");
		if (eol == NULL)
			break;
		if ((size_t)(eol - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
			const char *v = line + nl + 1;
			while (*v == ' ')
				v++;
			snprintf(out, size, "%.*s", (int)(eol - v), v);
			return out;
		}
		line = eol + 2;
	}
	return NULL;
}

static int header_count(const struct response *r, const char *name)
{
	size_t nl = strlen(name);
	int n = 0;

	for (const char *line = r->head; *line;) {
		const char *eol = strstr(line, "\r\n");
		if (eol == NULL)
			break;
		if (strncasecmp(line, name, nl) == 0 && line[nl] == ':')
			n++;
		line = eol + 2;
	}
	return n;
}

/* Reads one response; with_body false for a reply to HEAD (no body bytes
 * follow the headers whatever Content-Length says). */
static void read_response(struct client *c, struct response *r, bool with_body)
{
	char *end, *eol, val[64];
	size_t head_len;

	memset(r, 0, sizeof(*r));
	for (;;) {
		if ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) != NULL)
			break;
		ck_assert_msg(client_fill(c) > 0, "connection closed before the headers (got %zu bytes: %.*s)",
		              c->len, (int)c->len, c->buf);
	}
	head_len = (size_t)(end - c->buf) + 4;
	eol = memmem(c->buf, head_len, "\r\n", 2);
	ck_assert_uint_lt((size_t)(eol - c->buf), sizeof(r->status_line));
	memcpy(r->status_line, c->buf, (size_t)(eol - c->buf));
	ck_assert_msg(sscanf(r->status_line, "HTTP/1.1 %3d ", &r->status) == 1,
	              "bad status line '%s'", r->status_line);
	ck_assert_uint_lt(head_len - (size_t)(eol + 2 - c->buf), sizeof(r->head));
	memcpy(r->head, eol + 2, head_len - (size_t)(eol + 2 - c->buf) - 2);
	client_consume(c, head_len);

	ck_assert_msg(header_count(r, "Content-Length") == 1, "Content-Length missing or repeated:\n%s",
	              r->head);
	header(r, "Content-Length", val, sizeof(val));
	r->content_length = strtoll(val, NULL, 10);
	if (!with_body) {
		r->body = calloc(1, 1);
		return;
	}
	ck_assert_int_lt(r->content_length, (long long)sizeof(c->buf));
	while (c->len < (size_t)r->content_length)
		ck_assert_msg(client_fill(c) > 0, "connection closed inside the body");
	r->body_len = (size_t)r->content_length;
	r->body = malloc(r->body_len + 1);
	ck_assert_ptr_nonnull(r->body);
	memcpy(r->body, c->buf, r->body_len);
	r->body[r->body_len] = '\0';
	client_consume(c, r->body_len);
}

/* Reads until the server closes: nothing may follow the response. */
static void expect_eof(struct client *c)
{
	while (client_fill(c) > 0)
		;
	ck_assert_msg(c->len == 0, "%zu bytes after the response: %.*s", c->len, (int)c->len, c->buf);
}

static void response_free(struct response *r)
{
	free(r->body);
	r->body = NULL;
}

/* One request on a new connection that the server closes after the reply;
 * checks that the body is exactly Content-Length bytes. */
static void request(const char *method, const char *target, const char *headers,
                    struct response *r)
{
	struct client *c = client_open();
	char req[8192];

	snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sConnection: close\r\n\r\n",
	         method, target, headers ? headers : "");
	client_send_str(c, req);
	read_response(c, r, strcmp(method, "HEAD") != 0);
	expect_eof(c);
	client_close(c);
}

static void assert_json_type(const struct response *r)
{
	char ct[128];

	ck_assert_msg(header(r, "Content-Type", ct, sizeof(ct)) != NULL, "no Content-Type:\n%s", r->head);
	ck_assert_str_eq(ct, "application/json");
}

/* Checks an error reply: JSON {"error": <want_error or any>, "correlationId":
 * the header's}, and returns the error text in out. */
static void assert_error_body(const struct response *r, const char *want_error, char *out,
                              size_t out_size)
{
	struct json_object *jobj, *err, *cid;
	char hdr_cid[128];

	assert_json_type(r);
	ck_assert_msg(header(r, "correlationId", hdr_cid, sizeof(hdr_cid)) != NULL, "no correlationId:\n%s",
	              r->head);
	jobj = json_tokener_parse(r->body);
	ck_assert_msg(jobj != NULL && json_object_is_type(jobj, json_type_object),
	              "body is not a JSON object: %s", r->body);
	ck_assert_msg(json_object_object_get_ex(jobj, "error", &err) &&
	                  json_object_is_type(err, json_type_string),
	              "no error string: %s", r->body);
	ck_assert_msg(json_object_object_get_ex(jobj, "correlationId", &cid) &&
	                  json_object_is_type(cid, json_type_string),
	              "no correlationId string: %s", r->body);
	ck_assert_str_eq(json_object_get_string(cid), hdr_cid);
	ck_assert_int_gt(json_object_get_string_len(err), 0);
	if (want_error)
		ck_assert_str_eq(json_object_get_string(err), want_error);
	if (out)
		snprintf(out, out_size, "%s", json_object_get_string(err));
	json_object_put(jobj);
}

/* ---- trace context ---------------------------------------------------------
 *
 * With tracing off (no trace_setup here) the server span's context is the
 * one received, so the route's reply shows what http.c read. */

#define PARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define TRACE_ID "4bf92f3577b34da6a3ce929d0e0e4736"

/* GET /trace with headers; returns the reply's field name (malloc'd). */
static char *trace_field(const char *headers, const char *name)
{
	struct json_object *jobj, *v;
	struct response r;
	char *out;

	request("GET", "/trace", headers, &r);
	ck_assert_msg(r.status == 200, "status %d for headers %s", r.status, headers);
	jobj = json_tokener_parse(r.body);
	ck_assert_msg(jobj != NULL && json_object_object_get_ex(jobj, name, &v), "%s", r.body);
	out = strdup(json_object_get_string(v));
	json_object_put(jobj);
	response_free(&r);
	return out;
}

START_TEST(traceparent_and_tracestate_are_read)
{
	char *parent = trace_field("traceparent: " PARENT "\r\ntracestate: rojo=00f067aa0ba902b7\r\n",
	                           "parent");
	char *state = trace_field("traceparent: " PARENT "\r\ntracestate: rojo=00f067aa0ba902b7\r\n",
	                          "state");
	char *span = trace_field("TraceParent: " PARENT "\r\n", "span");

	ck_assert_str_eq(parent, PARENT);
	ck_assert_str_eq(state, "rojo=00f067aa0ba902b7");
	ck_assert_str_eq(span, PARENT); /* tracing off: the context goes on as it came */
	free(parent);
	free(state);
	free(span);
}
END_TEST

/* Absent or invalid: no context (a new trace when tracing is on), and
 * never an error: the request is answered as usual. */
static const char *const no_context[] = {
    NULL,
    "traceparent: garbage\r\n",
    "traceparent: \r\n",
    "traceparent: 00-00000000000000000000000000000000-00f067aa0ba902b7-01\r\n",
    "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01\r\n",
    "traceparent: 00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01\r\n",
    "traceparent: ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n",
    "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra\r\n",
    "tracestate: rojo=00f067aa0ba902b7\r\n", /* a tracestate alone */
};

START_TEST(absent_or_invalid_traceparent_is_no_context_and_no_error)
{
	char *parent = trace_field(no_context[_i], "parent");
	char *state = trace_field(no_context[_i], "state");

	ck_assert_str_eq(parent, "");
	ck_assert_str_eq(state, "");
	free(parent);
	free(state);
}
END_TEST

/* The lines a request's thread writes carry its trace id, and only its:
 * the next requests on the same threads (4 of them) carry none. */
START_TEST(request_log_lines_carry_the_trace_id_until_the_request_ends)
{
	char path[] = "/tmp/http-test-log-XXXXXX", text[16384];
	int fd = mkstemp(path), saved;
	struct response r;
	ssize_t n;
	const char *end;

	ck_assert_int_ge(fd, 0);
	log_setup("test", LOG_WARN);
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	ck_assert_int_ge(dup2(fd, STDOUT_FILENO), 0);
	request("GET", "/trace", "traceparent: " PARENT "\r\n", &r);
	response_free(&r);
	for (int i = 0; i < 2 * TEST_THREADS; i++) {
		request("GET", "/trace", NULL, &r);
		response_free(&r);
	}
	dup2(saved, STDOUT_FILENO);
	close(saved);
	n = pread(fd, text, sizeof(text) - 1, 0);
	close(fd);
	unlink(path);
	ck_assert_int_gt(n, 0);
	text[n] = '\0';
	end = strchr(text, '\n');
	ck_assert_msg(end != NULL && strstr(text, "\"msg\":\"tracing request\"") < end &&
	                  strstr(text, "\"trace_id\":\"" TRACE_ID "\"}") ==
	                      end - (sizeof("\"trace_id\":\"" TRACE_ID "\"}") - 1),
	              "the first line is not the request's with its trace id: %s", text);
	ck_assert_msg(strstr(end, "tracing request") != NULL && strstr(end, "trace_id") == NULL,
	              "a later request's line has a trace id: %s", text);
}
END_TEST

/* ---- response formatting ------------------------------------------------- */

START_TEST(json_reply_has_status_type_and_exact_length)
{
	struct response r;

	request("GET", "/json", NULL, &r);
	ck_assert_str_eq(r.status_line, "HTTP/1.1 200 OK");
	assert_json_type(&r);
	ck_assert_int_eq(r.content_length, 11);
	ck_assert_str_eq(r.body, "{\"ok\":true}");
	ck_assert_int_eq(header_count(&r, "Content-Type"), 1);
	ck_assert_int_eq(header_count(&r, "correlationId"), 1);
	response_free(&r);
}
END_TEST

START_TEST(error_reply_is_json_with_error_and_correlation_id)
{
	struct response r;

	request("GET", "/error", NULL, &r);
	ck_assert_str_eq(r.status_line, "HTTP/1.1 404 Not Found");
	ck_assert_uint_eq(r.body_len, strlen(r.body));
	assert_error_body(&r, "no \"such\" thing", NULL, 0);
	response_free(&r);
}
END_TEST

START_TEST(error_reply_carries_extra_headers)
{
	struct response r;
	char v[64];

	request("GET", "/unavailable", NULL, &r);
	ck_assert_str_eq(r.status_line, "HTTP/1.1 503 Service Unavailable");
	ck_assert_ptr_nonnull(header(&r, "Retry-After", v, sizeof(v)));
	ck_assert_str_eq(v, "1");
	assert_error_body(&r, "database down", NULL, 0);
	response_free(&r);
}
END_TEST

/* An error that names the id a request tried: the error body's members
 * and "id", nothing else. */
START_TEST(error_reply_can_name_the_id_tried)
{
	struct response r;
	struct json_object *jobj, *id;

	request("GET", "/unavailable-id", NULL, &r);
	ck_assert_int_eq(r.status, 503);
	assert_error_body(&r, "not acknowledged", NULL, 0);
	jobj = json_tokener_parse(r.body);
	ck_assert_msg(json_object_object_get_ex(jobj, "id", &id) &&
	                  json_object_is_type(id, json_type_string),
	              "no id string: %s", r.body);
	ck_assert_str_eq(json_object_get_string(id), V1_ID);
	ck_assert_int_eq(json_object_object_length(jobj), 3);
	json_object_put(jobj);
	response_free(&r);
}
END_TEST

START_TEST(long_error_message_still_gives_valid_json_of_exact_length)
{
	struct response r;
	char msg[1024];

	request("GET", "/long-error", NULL, &r);
	ck_assert_int_eq(r.status, 400);
	assert_error_body(&r, NULL, msg, sizeof(msg));
	for (const char *q = msg; *q; q++)
		ck_assert_int_eq(*q, '"');
	response_free(&r);
}
END_TEST

START_TEST(unknown_route_is_a_json_404)
{
	struct response r;
	char msg[256];

	request("GET", "/nowhere", NULL, &r);
	ck_assert_int_eq(r.status, 404);
	assert_error_body(&r, NULL, msg, sizeof(msg));
	ck_assert_ptr_nonnull(strstr(msg, "/nowhere"));
	response_free(&r);
}
END_TEST

/* ---- correlation ids ------------------------------------------------------- */

static const struct {
	const char *header, *value;
} cid_echoed[] = {
    {"correlationId", V1_ID},                                  /* v1 */
    {"correlationId", V4_UPPER},                               /* v4, upper case */
    {"correlationId", "886313e1-3b8a-5372-9b90-0c9aee199e5d"}, /* v5 */
    {"CORRELATIONID", V1_ID},                                  /* header names are case-insensitive */
    {"X-Correlation-ID", V4_UPPER},
    {"x-correlation-id", V1_ID},
};

START_TEST(correlation_id_is_echoed)
{
	struct response r;
	char hdr[256], got[128];

	snprintf(hdr, sizeof(hdr), "%s: %s\r\n", cid_echoed[_i].header, cid_echoed[_i].value);
	request("GET", "/error", hdr, &r);
	ck_assert_int_eq(r.status, 404);
	ck_assert_ptr_nonnull(header(&r, "correlationId", got, sizeof(got)));
	ck_assert_str_eq(got, cid_echoed[_i].value);
	assert_error_body(&r, "no \"such\" thing", NULL, 0); /* body id == header id */
	response_free(&r);

	request("GET", "/json", hdr, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(header(&r, "correlationId", got, sizeof(got)));
	ck_assert_str_eq(got, cid_echoed[_i].value);
	response_free(&r);
}
END_TEST

START_TEST(correlation_id_is_generated_when_absent)
{
	struct response r1, r2;
	char a[128], b[128];

	request("GET", "/error", NULL, &r1);
	request("GET", "/error", NULL, &r2);
	ck_assert_ptr_nonnull(header(&r1, "correlationId", a, sizeof(a)));
	ck_assert_ptr_nonnull(header(&r2, "correlationId", b, sizeof(b)));
	ck_assert_msg(uid_valid(a, strlen(a)), "'%s' is not a UUID", a);
	ck_assert_msg(uid_valid(b, strlen(b)), "'%s' is not a UUID", b);
	ck_assert_str_ne(a, b);
	assert_error_body(&r1, NULL, NULL, 0);
	response_free(&r1);
	response_free(&r2);
}
END_TEST

static const char *const bad_cids[] = {
    "not-a-uuid",
    V1_ID "0",
    "{" V1_ID "}",
    "6ba7b8109dad11d180b400c04fd430c8",
    "6ba7b810-9dad-11d1-80b4-00c04fd430cg",
};

START_TEST(invalid_correlation_id_is_a_400_with_a_fresh_id)
{
	struct response r;
	char hdr[256], got[128], msg[256];

	snprintf(hdr, sizeof(hdr), "correlationId: %s\r\n", bad_cids[_i]);
	request("GET", "/json", hdr, &r);
	ck_assert_str_eq(r.status_line, "HTTP/1.1 400 Bad Request");
	ck_assert_ptr_nonnull(header(&r, "correlationId", got, sizeof(got)));
	ck_assert_msg(uid_valid(got, strlen(got)), "reply id '%s' is not a UUID", got);
	ck_assert_str_ne(got, bad_cids[_i]);
	assert_error_body(&r, NULL, msg, sizeof(msg));
	ck_assert_msg(strstr(msg, "correlationId") != NULL, "error does not name the header: %s", msg);
	response_free(&r);
}
END_TEST

START_TEST(invalid_x_correlation_id_is_a_400)
{
	struct response r;

	request("GET", "/json", "X-Correlation-ID: nope\r\n", &r);
	ck_assert_int_eq(r.status, 400);
	assert_error_body(&r, NULL, NULL, 0);
	response_free(&r);
}
END_TEST

/* ---- path decoding --------------------------------------------------------- */

static const struct {
	const char *target, *path;
} decoded[] = {
    {"/echo/2009-09-28T19:03:12%2B02:00", "/echo/2009-09-28T19:03:12+02:00"},
    {"/echo/2009-09-28T19:03:12%2b02:00", "/echo/2009-09-28T19:03:12+02:00"},
    {"/echo/2009-09-28T19:03:12+02:00", "/echo/2009-09-28T19:03:12+02:00"}, /* + stays + */
    {"/echo/a%20b", "/echo/a b"},
    {"/echo/%41%62c", "/echo/Abc"},
    {"/echo/%25", "/echo/%"},
    {"/echo/a?x=%00&y=%zz", "/echo/a"}, /* the query is not part of the path */
    {"/echo/caf%C3%A9", "/echo/caf\xc3\xa9"},
};

START_TEST(path_is_percent_decoded)
{
	struct response r;
	struct json_object *jobj, *path;

	request("GET", decoded[_i].target, NULL, &r);
	ck_assert_msg(r.status == 200, "%s: status %d: %s", decoded[_i].target, r.status, r.body);
	assert_json_type(&r);
	jobj = json_tokener_parse(r.body);
	ck_assert_ptr_nonnull(jobj);
	ck_assert(json_object_object_get_ex(jobj, "path", &path));
	ck_assert_str_eq(json_object_get_string(path), decoded[_i].path);
	json_object_put(jobj);
	response_free(&r);
}
END_TEST

static const char *const bad_paths[] = {
    "/echo/a%00b", "/echo/%00", "/echo/%zz", "/echo/%4", "/echo/%",
    "/echo/%g1", "/echo/%1g", "/echo/%%41",
};

/* A reply larger than http_send's stack buffer is still sent whole. */
START_TEST(large_reply_is_sent_whole)
{
	char target[3100];
	struct response r;

	strcpy(target, "/echo/");
	memset(target + 6, 'p', 3000);
	target[3006] = '\0';
	request("GET", target, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.body_len, strlen("{\"path\":\"\"}") + 3006);
	ck_assert_ptr_nonnull(strstr(r.body, target));
	response_free(&r);
}
END_TEST

START_TEST(path_with_bad_or_nul_escape_is_a_400)
{
	struct response r;
	char msg[256];

	request("GET", bad_paths[_i], NULL, &r);
	ck_assert_msg(r.status == 400, "%s: status %d", bad_paths[_i], r.status);
	assert_error_body(&r, NULL, msg, sizeof(msg));
	ck_assert_msg(strstr(msg, "percent") != NULL, "%s: error '%s' is not http_req_init's",
	              bad_paths[_i], msg);
	response_free(&r);
}
END_TEST

/* ---- connections ----------------------------------------------------------- */

START_TEST(keep_alive_serves_two_requests_on_one_connection)
{
	struct client *c = client_open();
	struct response r;

	client_send_str(c, "GET /json HTTP/1.1\r\nHost: x\r\n\r\n");
	read_response(c, &r, true);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "{\"ok\":true}");
	response_free(&r);

	client_send_str(c, "GET /error HTTP/1.1\r\nHost: x\r\ncorrelationId: " V1_ID "\r\n\r\n");
	read_response(c, &r, true);
	ck_assert_int_eq(r.status, 404);
	assert_error_body(&r, "no \"such\" thing", NULL, 0);
	response_free(&r);

	/* Two pipelined requests in one write. */
	client_send_str(c, "GET /json HTTP/1.1\r\nHost: x\r\n\r\n"
	                   "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	read_response(c, &r, true);
	ck_assert_str_eq(r.body, "{\"ok\":true}");
	response_free(&r);
	read_response(c, &r, true);
	ck_assert_str_eq(r.body, "{\"status\":\"UP\"}");
	response_free(&r);
	expect_eof(c);
	client_close(c);
}
END_TEST

/* A reply to HEAD has headers only; a body would be read by the client as
 * the start of the next reply on a keep-alive connection. */
START_TEST(head_reply_has_no_body)
{
	struct client *c = client_open();
	struct response r;

	client_send_str(c, "HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n");
	read_response(c, &r, false);
	ck_assert_int_eq(r.status, 200);
	response_free(&r);
	client_send_str(c, "GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	read_response(c, &r, true);
	ck_assert_str_eq(r.body, "{\"ok\":true}");
	response_free(&r);
	expect_eof(c);
	client_close(c);
}
END_TEST

/* ---- request bodies ------------------------------------------------------------ */

static void post_body(struct client *c, size_t n, const char *extra)
{
	char head[256], *body = malloc(n ? n : 1);

	ck_assert_ptr_nonnull(body);
	memset(body, 'b', n);
	snprintf(head, sizeof(head), "POST /drain HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n%s\r\n",
	         n, extra);
	client_send_str(c, head);
	client_send(c, body, n);
	free(body);
}

START_TEST(body_up_to_64k_is_drained)
{
	const size_t sizes[] = {0, 1, 8192, HTTP_BODY_MAX};
	struct client *c = client_open();
	struct response r;

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		post_body(c, sizes[k], "");
		read_response(c, &r, true);
		ck_assert_msg(r.status == 200, "%zu bytes: status %d", sizes[k], r.status);
		ck_assert_str_eq(r.body, "{\"drained\":true}");
		response_free(&r);
	}
	client_close(c);
}
END_TEST

START_TEST(body_over_64k_is_refused)
{
	struct client *c = client_open();
	struct response r;
	char head[256], body[8192];
	size_t left = HTTP_BODY_MAX + 1;

	/* The server answers and closes without reading the rest (a rest that
	 * may never come): the last bytes may meet a closed connection. */
	snprintf(head, sizeof(head), "POST /drain HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n"
	                             "Connection: close\r\n\r\n", left);
	client_send_str(c, head);
	memset(body, 'b', sizeof(body));
	for (size_t n; left > 0; left -= n) {
		n = left < sizeof(body) ? left : sizeof(body);
		if (!client_send_until_closed(c, body, n))
			break;
	}
	read_response(c, &r, true);
	ck_assert_str_eq(r.status_line, "HTTP/1.1 413 Payload Too Large");
	assert_error_body(&r, NULL, NULL, 0);
	response_free(&r);
	client_close(c);
}
END_TEST

START_TEST(announced_body_over_64k_is_refused_before_reading)
{
	struct client *c = client_open();
	struct response r;

	/* Only the headers are sent: the length alone decides. */
	client_send_str(c, "POST /drain HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n"
	                   "Connection: close\r\n\r\n");
	read_response(c, &r, true);
	ck_assert_int_eq(r.status, 413);
	assert_error_body(&r, NULL, NULL, 0);
	response_free(&r);
	client_close(c);
}
END_TEST

START_TEST(chunked_body_over_64k_is_refused)
{
	struct client *c = client_open();
	struct response r;
	char chunk[16384];

	memset(chunk, 'c', sizeof(chunk));
	client_send_str(c, "POST /drain HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
	                   "Connection: close\r\n\r\n");
	/* 80 KiB in 16 KiB chunks; as above, the server may close before it
	 * has read them all. */
	for (int i = 0; i < 5; i++) {
		if (!client_send_until_closed(c, "4000\r\n", 6) ||
		    !client_send_until_closed(c, chunk, sizeof(chunk)) ||
		    !client_send_until_closed(c, "\r\n", 2))
			break;
		if (i == 4)
			(void)client_send_until_closed(c, "0\r\n\r\n", 5);
	}
	read_response(c, &r, true);
	ck_assert_int_eq(r.status, 413);
	assert_error_body(&r, NULL, NULL, 0);
	response_free(&r);
	client_close(c);
}
END_TEST

/* Sends the head of a POST /drain announcing body_len bytes (sized, or
 * chunked when chunked), then the body a byte at a time, 20 ms apart, until
 * the server answers or the whole body went. Returns the bytes of the body
 * sent before the answer came. */
static size_t trickle_body(struct client *c, size_t body_len, bool chunked)
{
	char head[256];
	size_t sent = 0;

	if (chunked)
		snprintf(head, sizeof(head), "POST /drain HTTP/1.1\r\nHost: x\r\n"
		                             "Transfer-Encoding: chunked\r\n\r\n%zx\r\n", body_len);
	else
		snprintf(head, sizeof(head), "POST /drain HTTP/1.1\r\nHost: x\r\n"
		                             "Content-Length: %zu\r\n\r\n", body_len);
	client_send_str(c, head);
	while (sent < body_len) {
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		if (poll(&pfd, 1, 20) > 0)
			break; /* an answer (or the close) is there */
		if (send(c->fd, "b", 1, MSG_NOSIGNAL) != 1)
			break;
		sent++;
	}
	if (sent == body_len && chunked)
		client_send_str(c, "\r\n0\r\n\r\n");
	return sent;
}

/* A client sending its body a byte at a time is cut off once the request's
 * deadline passes, instead of holding a worker thread for as long as it
 * keeps sending: 408, Connection: close, and the connection closed. The
 * body (400 bytes at 20 ms each: 8 s) takes far longer than the deadline. */
START_TEST(slow_body_is_cut_with_408_at_the_request_deadline)
{
	struct client *c = client_open();
	struct response r;
	char conn_hdr[64];
	const size_t body_len = 400;
	size_t sent = trickle_body(c, body_len, _i == 1);

	read_response(c, &r, true);
	ck_assert_msg(r.status == 408, "%s body sent a byte at a time (%zu of %zu bytes sent): "
	              "status %d, want 408", _i ? "chunked" : "sized", sent, body_len, r.status);
	ck_assert_str_eq(r.status_line, "HTTP/1.1 408 Request Timeout");
	assert_error_body(&r, NULL, NULL, 0);
	ck_assert_msg(header(&r, "Connection", conn_hdr, sizeof(conn_hdr)) != NULL &&
	                  strcasecmp(conn_hdr, "close") == 0,
	              "no Connection: close:\n%s", r.head);
	ck_assert_uint_lt(sent, body_len);
	response_free(&r);
	expect_eof(c);
	client_close(c);
}
END_TEST

/* Each kept-alive connection holds a worker thread while it waits for its
 * next request. Once 3/4 of the threads are held, replies close their
 * connection, so that threads stay free for new clients. */
START_TEST(keep_alive_is_refused_once_three_quarters_of_the_threads_are_held)
{
	const int keep = TEST_THREADS * 3 / 4 - 1; /* connections that stay open */
	struct client *held[TEST_THREADS];
	struct client *c;
	struct response r;
	char conn_hdr[64];

	for (int i = 0; i < keep; i++) {
		held[i] = client_open();
		client_send_str(held[i], "GET /json HTTP/1.1\r\nHost: x\r\n\r\n");
		read_response(held[i], &r, true);
		ck_assert_msg(header(&r, "Connection", conn_hdr, sizeof(conn_hdr)) == NULL,
		              "connection %d of %d closed with %d of %d threads held", i + 1, keep,
		              i + 1, TEST_THREADS);
		response_free(&r);
	}
	/* This one is the 3/4th connection held. */
	c = client_open();
	client_send_str(c, "GET /json HTTP/1.1\r\nHost: x\r\n\r\n");
	read_response(c, &r, true);
	ck_assert_int_eq(r.status, 200);
	ck_assert_msg(header(&r, "Connection", conn_hdr, sizeof(conn_hdr)) != NULL &&
	                  strcasecmp(conn_hdr, "close") == 0,
	              "kept alive with %d of %d threads held:\n%s", keep + 1, TEST_THREADS, r.head);
	response_free(&r);
	expect_eof(c);
	client_close(c);
	for (int i = 0; i < keep; i++)
		client_close(held[i]);
}
END_TEST

/* Stopping: the request in progress is answered (and its connection
 * closed), and new connections are refused from the moment the drain
 * begins. mg_stop alone would drop the answer. */
START_TEST(drain_answers_the_request_in_progress_and_refuses_new_connections)
{
	struct client *c = client_open();
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct response r;
	char conn_hdr[64];
	int fd, rc, err;

	atomic_store(&slow_started, false);
	client_send_str(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
	while (!atomic_load(&slow_started))
		usleep(1000);
	ck_assert_int_eq(http_drain(5000), 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	err = errno;
	close(fd);
	ck_assert_msg(rc != 0 && err == ECONNREFUSED, "a new connection after the drain: %s",
	              rc == 0 ? "accepted" : strerror(err));

	read_response(c, &r, true);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "{\"slow\":true}");
	ck_assert_msg(header(&r, "Connection", conn_hdr, sizeof(conn_hdr)) != NULL &&
	                  strcasecmp(conn_hdr, "close") == 0,
	              "kept alive while stopping:\n%s", r.head);
	response_free(&r);
	expect_eof(c);
	client_close(c);
}
END_TEST

/* ---- shared routes ------------------------------------------------------------- */

/* A request that comes between the listening socket's opening and the
 * routes' setting (held open here by http_before_routes) waits for them:
 * without that, civetweb answered it 404 itself. */
static atomic_bool listening;

static void before_routes_pause(void)
{
	atomic_store(&listening, true);
	usleep(300 * 1000);
}

struct start_arg {
	struct http_server_opts opts;
	struct mg_context *ctx;
	char err[256];
};

static void *start_thread(void *arg)
{
	struct start_arg *a = arg;

	a->ctx = http_start(&a->opts, a->err, sizeof(a->err));
	return NULL;
}

START_TEST(request_before_the_routes_are_set_waits_for_them)
{
	struct start_arg a = {.opts = {.address = "127.0.0.1", .port = free_port(),
	                               .threads = TEST_THREADS,
	                               .request_timeout_ms = TEST_REQUEST_TIMEOUT_MS,
	                               .routes = &test_routes}};
	const long until = clock_mono_ms() + 10000;
	struct response r;
	pthread_t t;

	log_setup("test", LOG_ERROR);
	atomic_store(&listening, false);
	http_before_routes = before_routes_pause;
	ck_assert_int_eq(pthread_create(&t, NULL, start_thread, &a), 0);
	while (!atomic_load(&listening) && clock_mono_ms() < until)
		usleep(1000);
	ck_assert_msg(atomic_load(&listening), "http_start did not get to its routes in 10 s");
	port = a.opts.port;
	request("GET", "/health", NULL, &r); /* sent while the routes are held back */
	pthread_join(t, NULL);
	http_before_routes = NULL;
	ctx = a.ctx; /* server_stop stops it */
	ck_assert_msg(ctx != NULL, "http_start: %s", a.err);
	ck_assert_str_eq(r.status_line, "HTTP/1.1 200 OK");
	ck_assert_str_eq(r.body, "{\"status\":\"UP\"}");
	response_free(&r);
}
END_TEST

START_TEST(health_is_up)
{
	struct response r;

	request("GET", "/health", NULL, &r);
	ck_assert_str_eq(r.status_line, "HTTP/1.1 200 OK");
	assert_json_type(&r);
	ck_assert_str_eq(r.body, "{\"status\":\"UP\"}");
	response_free(&r);
}
END_TEST

/* civetweb, left to itself, would read a password file at /.htpasswd (no
 * document root) and answer 401 to everything while one exists. Needs root
 * to put one there (CI runs as root); elsewhere, or when the file exists
 * already, the test says so and leaves the root directory alone. */
START_TEST(a_password_file_at_the_root_does_not_lock_requests_out)
{
	struct response r;
	FILE *f;

	if (access("/.htpasswd", F_OK) == 0 || (f = fopen("/.htpasswd", "wx")) == NULL) {
		fprintf(stderr, "test_http: cannot create /.htpasswd (not root, or it exists): "
		                "not checked here\n");
		return;
	}
	fputs("user:realm:0123456789abcdef0123456789abcdef\n", f);
	fclose(f);
	request("GET", "/health", NULL, &r);
	unlink("/.htpasswd");
	ck_assert_str_eq(r.status_line, "HTTP/1.1 200 OK");
	response_free(&r);
}
END_TEST

START_TEST(wrong_method_is_405_with_allow)
{
	struct response r;
	char allow[64];

	request("POST", "/health", NULL, &r);
	ck_assert_str_eq(r.status_line, "HTTP/1.1 405 Method Not Allowed");
	ck_assert_ptr_nonnull(header(&r, "Allow", allow, sizeof(allow)));
	ck_assert_str_eq(allow, "GET");
	assert_error_body(&r, NULL, NULL, 0);
	response_free(&r);

	request("GET", "/post-only", NULL, &r);
	ck_assert_int_eq(r.status, 405);
	ck_assert_ptr_nonnull(header(&r, "Allow", allow, sizeof(allow)));
	ck_assert_str_eq(allow, "POST");
	assert_error_body(&r, NULL, NULL, 0);
	response_free(&r);
}
END_TEST

START_TEST(ready_and_not_ready)
{
	struct response r;
	struct json_object *jobj, *v;
	char cid[64], retry[16];

	request("GET", "/ready", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	assert_json_type(&r);
	ck_assert_str_eq(r.body, "{\"status\":\"READY\"}");
	response_free(&r);

	request("GET", "/ready-down", "correlationId: " V1_ID "\r\n", &r);
	ck_assert_str_eq(r.status_line, "HTTP/1.1 503 Service Unavailable");
	assert_json_type(&r);
	ck_assert_ptr_nonnull(header(&r, "Retry-After", retry, sizeof(retry)));
	ck_assert_ptr_nonnull(header(&r, "correlationId", cid, sizeof(cid)));
	ck_assert_str_eq(cid, V1_ID);
	jobj = json_tokener_parse(r.body);
	ck_assert_msg(jobj != NULL, "not JSON: %s", r.body);
	ck_assert(json_object_object_get_ex(jobj, "down", &v));
	ck_assert_str_eq(json_object_get_string(v), "kafka");
	ck_assert(json_object_object_get_ex(jobj, "correlationId", &v));
	ck_assert_str_eq(json_object_get_string(v), V1_ID);
	json_object_put(jobj);
	response_free(&r);

	/* What is down may come from a library message: escaped as JSON. */
	request("GET", "/ready-down-odd", NULL, &r);
	ck_assert_int_eq(r.status, 503);
	jobj = json_tokener_parse(r.body);
	ck_assert_msg(jobj != NULL, "not JSON: %s", r.body);
	ck_assert(json_object_object_get_ex(jobj, "down", &v));
	ck_assert_str_eq(json_object_get_string(v), "postgresql: \"db\" said\nno\\");
	json_object_put(jobj);
	response_free(&r);
}
END_TEST

START_TEST(metrics_is_prometheus_text)
{
	struct response r;
	char ct[128];

	request("GET", "/json", NULL, &r); /* something to count */
	response_free(&r);
	request("GET", "/metrics", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(header(&r, "Content-Type", ct, sizeof(ct)));
	ck_assert_str_eq(ct, "text/plain; version=0.0.4; charset=utf-8");
	ck_assert_ptr_nonnull(strstr(r.body, "http_requests_total{route=\"test\",status=\"200\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(r.body, "# TYPE http_request_duration_seconds histogram\n"));
	ck_assert_uint_eq(strlen(r.body), r.body_len);
	response_free(&r);

	request("DELETE", "/metrics", NULL, &r);
	ck_assert_int_eq(r.status, 405);
	response_free(&r);
}
END_TEST

/* civetweb's own error replies (here: a request it cannot parse) are JSON
 * like ours. */
START_TEST(malformed_request_gets_a_json_error)
{
	struct client *c = client_open();
	struct response r;

	client_send_str(c, "NONSENSE\r\n\r\n");
	read_response(c, &r, true);
	ck_assert_int_ge(r.status, 400);
	ck_assert_int_lt(r.status, 500);
	assert_error_body(&r, NULL, NULL, 0);
	response_free(&r);
	client_close(c);
}
END_TEST

START_TEST(start_fails_on_a_port_in_use)
{
	struct http_server_opts opts = {
	    .address = "127.0.0.1", .port = port, .threads = 1, .routes = &test_routes};
	char err[256] = "";
	struct mg_context *other = http_start(&opts, err, sizeof(err));

	if (other != NULL)
		mg_stop(other);
	ck_assert_ptr_null(other);
	ck_assert_msg(strstr(err, "127.0.0.1") != NULL, "error does not name the address: %s", err);
}
END_TEST

Suite *make_http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *tc;

	tc = tcase_create("reply");
	tcase_add_checked_fixture(tc, server_start, server_stop);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, json_reply_has_status_type_and_exact_length);
	tcase_add_test(tc, error_reply_is_json_with_error_and_correlation_id);
	tcase_add_test(tc, error_reply_carries_extra_headers);
	tcase_add_test(tc, error_reply_can_name_the_id_tried);
	tcase_add_test(tc, long_error_message_still_gives_valid_json_of_exact_length);
	tcase_add_test(tc, unknown_route_is_a_json_404);
	tcase_add_test(tc, malformed_request_gets_a_json_error);
	suite_add_tcase(s, tc);

	tc = tcase_create("correlation_id");
	tcase_add_checked_fixture(tc, server_start, server_stop);
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, correlation_id_is_echoed, 0, TABLE_LEN(cid_echoed));
	tcase_add_test(tc, correlation_id_is_generated_when_absent);
	tcase_add_loop_test(tc, invalid_correlation_id_is_a_400_with_a_fresh_id, 0, TABLE_LEN(bad_cids));
	tcase_add_test(tc, invalid_x_correlation_id_is_a_400);
	suite_add_tcase(s, tc);

	tc = tcase_create("path");
	tcase_add_checked_fixture(tc, server_start, server_stop);
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, path_is_percent_decoded, 0, TABLE_LEN(decoded));
	tcase_add_loop_test(tc, path_with_bad_or_nul_escape_is_a_400, 0, TABLE_LEN(bad_paths));
	tcase_add_test(tc, large_reply_is_sent_whole);
	suite_add_tcase(s, tc);

	tc = tcase_create("trace_context");
	tcase_add_checked_fixture(tc, server_start, server_stop);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, traceparent_and_tracestate_are_read);
	tcase_add_loop_test(tc, absent_or_invalid_traceparent_is_no_context_and_no_error, 0,
	                    TABLE_LEN(no_context));
	tcase_add_test(tc, request_log_lines_carry_the_trace_id_until_the_request_ends);
	suite_add_tcase(s, tc);

	tc = tcase_create("connection");
	tcase_add_checked_fixture(tc, server_start, server_stop);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, keep_alive_serves_two_requests_on_one_connection);
	tcase_add_test(tc, head_reply_has_no_body);
	tcase_add_test(tc, start_fails_on_a_port_in_use);
	tcase_add_test(tc, keep_alive_is_refused_once_three_quarters_of_the_threads_are_held);
	tcase_add_test(tc, drain_answers_the_request_in_progress_and_refuses_new_connections);
	suite_add_tcase(s, tc);

	tc = tcase_create("body");
	tcase_add_checked_fixture(tc, server_start, server_stop);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, body_up_to_64k_is_drained);
	tcase_add_test(tc, body_over_64k_is_refused);
	tcase_add_test(tc, announced_body_over_64k_is_refused_before_reading);
	tcase_add_test(tc, chunked_body_over_64k_is_refused);
	tcase_add_loop_test(tc, slow_body_is_cut_with_408_at_the_request_deadline, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("startup"); /* each test starts its own server */
	tcase_add_checked_fixture(tc, NULL, server_stop);
	tcase_add_test(tc, request_before_the_routes_are_set_waits_for_them);
	suite_add_tcase(s, tc);

	tc = tcase_create("routes");
	tcase_add_checked_fixture(tc, server_start, server_stop);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, health_is_up);
	tcase_add_test(tc, a_password_file_at_the_root_does_not_lock_requests_out);
	tcase_add_test(tc, wrong_method_is_405_with_allow);
	tcase_add_test(tc, ready_and_not_ready);
	tcase_add_test(tc, metrics_is_prometheus_text);
	suite_add_tcase(s, tc);

	return s;
}
