/* http: civetweb helpers shared by the three services. */
#include "http.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "jsonw.h"
#include "log.h"
#include "metrics.h"

/* civetweb gives each connection a worker thread until the connection
 * closes: a kept-alive connection holds its thread while it waits for the
 * next request. These count the connections held (see on_init_connection)
 * against the threads there are. */
static atomic_int conns_held;
static int worker_threads;
/* Of those, the ones held by long requests on reserved threads
 * (http_long_begin): they do not take from worker_threads. */
static atomic_int conns_long;

/* The request deadline of http_drain_body (ms); see http_server_opts. */
static int request_timeout_ms = 10000;

/* The routes' stopping hook (http_routes), called by http_drain. */
static void (*stop_hook)(void);

/* The port of the server (one per process), and whether it is stopping:
 * then every reply closes its connection (see http_drain). */
static int server_port;
static atomic_bool draining;
/* The request handler is set (see on_begin_request). */
static atomic_bool routed;

void (*http_before_routes)(void);

/* Seconds a new connection may stay silent before it is handed to a worker
 * (TCP_DEFER_ACCEPT): until its first bytes arrive it waits in the kernel. */
#define DEFER_ACCEPT_S 30

static const char *reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return status < 500 ? "Client Error" : "Server Error";
	}
}

int http_send(struct mg_connection *conn, int status, const char *cid,
              const char *content_type, const char *extra_headers,
              const char *body, size_t body_len)
{
	char stack[2048], head[1024], *buf = stack;
	const char *closing = "";
	int n;

	/* Once 3/4 of the workers hold a connection, keeping this one alive
	 * would soon leave the next client waiting for a thread (or for the
	 * keep-alive timeout): answer, and close. Waiting for every thread to be
	 * held is too late: the last ones go to whoever comes first, slow
	 * clients included, and new clients then wait behind them. */
	if ((atomic_load(&conns_held) - atomic_load(&conns_long)) * 4 >= worker_threads * 3 ||
	    atomic_load(&draining)) {
		if (extra_headers == NULL || strstr(extra_headers, "Connection:") == NULL)
			closing = "Connection: close\r\n";
		mg_disable_connection_keep_alive(conn);
	} else if (extra_headers != NULL && strstr(extra_headers, "Connection: close") != NULL) {
		/* A reply that says close must close: otherwise civetweb reads
		 * (and waits for) the rest of an unread body to keep it alive. */
		mg_disable_connection_keep_alive(conn);
	}
	n = snprintf(head, sizeof(head),
	             "HTTP/1.1 %d %s\r\n"
	             "Content-Type: %s\r\n"
	             "Content-Length: %zu\r\n"
	             "%s%s%s"
	             "%s%s\r\n",
	             status, reason_phrase(status), content_type, body_len,
	             cid ? "correlationId: " : "", cid ? cid : "", cid ? "\r\n" : "",
	             extra_headers ? extra_headers : "", closing);
	if (n < 0 || (size_t)n >= sizeof(head)) {
		log_error("response headers too long for status %d", status);
		return status;
	}
	if ((size_t)n + body_len > sizeof(stack)) {
		buf = malloc((size_t)n + body_len);
		if (buf == NULL) {
			log_error("out of memory sending a %zu-byte response", body_len);
			return status;
		}
	}
	memcpy(buf, head, (size_t)n);
	memcpy(buf + n, body, body_len);
	/* A failed write means the client went away: nothing left to do. */
	/* A reply to HEAD has the headers of the GET reply, and no body; so
	 * has a 304 (its Content-Length is the 200's: RFC 9110 8.6). */
	const char *method = mg_get_request_info(conn)->request_method;
	if ((method != NULL && strcmp(method, "HEAD") == 0) || status == 304)
		body_len = 0;
	(void)mg_write(conn, buf, (size_t)n + body_len);
	if (buf != stack)
		free(buf);
	return status;
}

int http_send_json(const struct http_req *req, int status,
                   const char *extra_headers, const char *json)
{
	return http_send(req->conn, status, req->cid, "application/json",
	                 extra_headers, json, strlen(json));
}

/* The one error writer: {"error":…,"correlationId":…[,"id":…]}. */
static int send_error(const struct http_req *req, int status, const char *extra_headers,
                      const char *id, const char *fmt, va_list ap)
{
	char msg[512], body[1024];
	size_t pos = 0;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	jsonw_append(body, sizeof(body), &pos, "{\"error\":\"");
	jsonw_escape(body, sizeof(body) - 192, &pos, msg, (size_t)-1);
	jsonw_append(body, sizeof(body), &pos, "\",\"correlationId\":\"");
	jsonw_escape(body, sizeof(body) - 68, &pos, req->cid, (size_t)-1);
	if (id != NULL) {
		jsonw_append(body, sizeof(body), &pos, "\",\"id\":\"");
		jsonw_escape(body, sizeof(body) - 4, &pos, id, (size_t)-1);
	}
	jsonw_append(body, sizeof(body), &pos, "\"}");
	/* A request answered before its handler started the server span (a
	 * 404, a 405: the router's) starts it now, so that the line below
	 * carries the trace id of a trace begun here. Every http_req is the
	 * serve()'s own, not a const object. */
	if (!req->traced && trace_on())
		http_trace((struct http_req *)req);
	if (status >= 500)
		log_at(LOG_WARN, req->cid, id, "%s %s -> %d: %s",
		       req->ri->request_method, req->path, status, msg);
	else
		log_at(LOG_DEBUG, req->cid, id, "%s %s -> %d: %s",
		       req->ri->request_method, req->path, status, msg);
	return http_send(req->conn, status, req->cid, "application/json",
	                 extra_headers, body, pos);
}

int http_send_error_id(const struct http_req *req, int status, const char *extra_headers,
                       const char *id, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	status = send_error(req, status, extra_headers, id, fmt, ap);
	va_end(ap);
	return status;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int http_percent_decode(const char *src, size_t len, char *dst, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = src[i];
		if (c == '%') {
			int hi = i + 2 < len ? hexval(src[i + 1]) : -1;
			int lo = hi < 0 ? -1 : hexval(src[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (o + 1 >= size)
			return -2;
		dst[o++] = c;
	}
	dst[o] = '\0';
	return 0;
}

int http_header(struct mg_connection *conn, const char *name, char *buf, size_t size)
{
	const char *v = mg_get_header(conn, name);
	size_t len;

	if (v == NULL)
		return -1;
	while (*v == ' ' || *v == '\t')
		v++;
	len = strlen(v);
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (len >= size)
		return -2;
	memcpy(buf, v, len);
	buf[len] = '\0';
	return (int)len;
}

/* The trace context the request carries into req->parent (zeroed when it
 * carries none, or an invalid one: the request starts a new trace), and
 * the thread's log lines carry its trace id. */
static void trace_context_in(struct http_req *req)
{
	char trace_id[TRACE_ID_TEXT_SIZE];
	const char *parent = mg_get_header(req->conn, TRACE_HDR_PARENT);

	req->route = NULL;
	req->span = NULL;
	req->traced = false;
	if (parent == NULL || trace_parse(parent, mg_get_header(req->conn, TRACE_HDR_STATE),
	                                  &req->parent) != 0)
		memset(&req->parent, 0, sizeof(req->parent));
	trace_id_text(&req->parent, trace_id); /* "" when none */
	log_set_trace(trace_id);
}

const struct trace_ctx *http_trace(struct http_req *req)
{
	const char *method = req->ri->request_method ? req->ri->request_method : "";
	char name[128], trace_id[TRACE_ID_TEXT_SIZE];

	if (req->traced)
		return &req->trace;
	req->traced = true;
	if (req->route != NULL)
		snprintf(name, sizeof(name), "%s %s", method, req->route);
	else
		snprintf(name, sizeof(name), "%s", method); /* no route: semconv's name */
	req->span = trace_start(name, TRACE_SERVER, &req->parent, &req->trace);
	if (req->span != NULL) {
		trace_attr_str(req->span, "http.request.method", method);
		if (req->route != NULL)
			trace_attr_str(req->span, "http.route", req->route);
		trace_attr_str(req->span, "url.path", req->raw_path);
		trace_attr_int(req->span, "server.port", req->ri->server_port);
		trace_attr_str(req->span, "client.address", req->ri->remote_addr);
		trace_attr_str(req->span, "correlation_id", req->cid);
	}
	trace_id_text(&req->trace, trace_id);
	log_set_trace(trace_id);
	return &req->trace;
}

/* Ends the request's server span with its status. */
static void trace_request_end(struct http_req *req, int status)
{
	trace_attr_int(req->span, "http.response.status_code", status);
	if (status >= 500)
		trace_error(req->span, "HTTP %d", status);
	trace_end(req->span);
	req->span = NULL;
}

int http_req_init(struct http_req *req, struct mg_connection *conn, const char **why)
{
	size_t header_bytes = 0;
	char cid[64];
	int n;

	req->conn = conn;
	req->ri = mg_get_request_info(conn);
	req->path = "";
	req->path_bad = false;
	req->raw_path = req->ri->local_uri ? req->ri->local_uri : "";
	req->started = clock_mono_s();
	uid_v4(req->cid);
	trace_context_in(req); /* first: a refused request is traced too */

	/* Either name may be sent; each one sent must be a UUID, and
	 * correlationId is echoed when both are. */
	static const char *const cid_headers[] = {"X-Correlation-ID", "correlationId"};
	for (int i = 0; i < 2; i++) {
		n = http_header(conn, cid_headers[i], cid, sizeof(cid));
		if (n >= 0 && uid_valid(cid, (size_t)n))
			memcpy(req->cid, cid, UID_TEXT_SIZE);
		else if (n != -1) {
			uid_v4(req->cid); /* not the other header's id either */
			return *why = "correlationId header must be a UUID", 400;
		}
	}

	for (int i = 0; i < req->ri->num_headers; i++)
		header_bytes += strlen(req->ri->http_headers[i].name) +
		                strlen(req->ri->http_headers[i].value) + 4;
	if (header_bytes > HTTP_HEADERS_MAX)
		return *why = "request headers larger than 8 KiB", 431;
	/* civetweb keeps the first MG_MAX_HEADERS and drops the rest unseen,
	 * correlationId included: a full table means there may have been more. */
	if (req->ri->num_headers >= MG_MAX_HEADERS)
		return *why = "more than 63 request headers", 431;
	switch (http_percent_decode(req->raw_path, strlen(req->raw_path), req->path_buf,
	                            sizeof(req->path_buf))) {
	case -1:
		req->path_bad = true;
		return *why = "malformed percent-encoding in the path", 400;
	case -2:
		req->path_bad = true;
		return *why = "path longer than 8 KiB", 414;
	}
	req->path = req->path_buf;
	return 0;
}

/* ---- the body deadline ----
 *
 * civetweb's request_timeout_ms bounds each wait for data, not a body: its
 * mg_read waits until all the bytes asked for have come, so a client that
 * sends a byte every second keeps mg_read, and a worker thread, for as long
 * as it likes (200 such clients took every thread of the command service).
 * A single cutter thread shuts down the read side of a connection whose
 * body is still being read when its deadline passes: civetweb's blocked
 * recv then sees end-of-file, mg_read returns, and the handler answers 408
 * and closes. Bodies are rare here (none of the routes needs one), so the
 * cost, a scan of /proc/self/fd for the connection's socket, is paid only
 * by requests that have one. */
struct body_watch {
	int fd;
	double deadline; /* clock_mono_s() seconds */
	bool cut;        /* the cutter shut the read side down */
	struct body_watch *next;
};

static pthread_mutex_t watch_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watch_cv;
static struct body_watch *watches; /* bodies being read, under watch_mu */
static pthread_once_t cutter_once = PTHREAD_ONCE_INIT;
static bool cutter_running;

static void *cutter_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&watch_mu);
	for (;;) {
		const double now = clock_mono_s();
		double next = now + 60;
		struct timespec until;

		for (struct body_watch *w = watches; w != NULL; w = w->next) {
			if (w->cut)
				continue;
			if (w->deadline <= now) {
				/* Under watch_mu: the handler that owns fd is still
				 * inside http_drain_body, so fd is still its socket. */
				(void)shutdown(w->fd, SHUT_RD);
				w->cut = true;
			} else if (w->deadline < next) {
				next = w->deadline;
			}
		}
		until = clock_deadline_s(next - now);
		pthread_cond_timedwait(&watch_cv, &watch_mu, &until);
	}
	return NULL;
}

static void cutter_start(void)
{
	pthread_t t;

	if (clock_cond_init(&watch_cv) == 0 && pthread_create(&t, NULL, cutter_main, NULL) == 0) {
		pthread_detach(t); /* lives as long as the process */
		cutter_running = true;
	}
}

/* Calls fn(fd, arg) for each socket of this process until it returns true.
 * Returns the fd it returned true for, or -1. */
static int find_socket(bool (*fn)(int fd, void *arg), void *arg)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;
	int found = -1;

	if (dir == NULL)
		return -1;
	while (found < 0 && (e = readdir(dir)) != NULL) {
		int fd = atoi(e->d_name);
		if (fd > 2 && fd != dirfd(dir) && fn(fd, arg))
			found = fd;
	}
	closedir(dir);
	return found;
}

static int sockaddr_port(const struct sockaddr_storage *sa)
{
	if (sa->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return -1;
}

/* True if fd is the connection ri arrived on: same local port, same peer
 * address and port (civetweb writes the address with inet_ntop too). */
static bool is_conn_socket(int fd, void *arg)
{
	const struct mg_request_info *ri = arg;
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	char addr[INET6_ADDRSTRLEN];
	const void *in;

	if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0 ||
	    sockaddr_port(&sa) != ri->server_port)
		return false;
	len = sizeof(sa);
	if (getpeername(fd, (struct sockaddr *)&sa, &len) != 0 ||
	    sockaddr_port(&sa) != ri->remote_port)
		return false;
	in = sa.ss_family == AF_INET ? (const void *)&((struct sockaddr_in *)&sa)->sin_addr
	                             : (const void *)&((struct sockaddr_in6 *)&sa)->sin6_addr;
	return inet_ntop(sa.ss_family, in, addr, sizeof(addr)) != NULL &&
	       strcmp(addr, ri->remote_addr) == 0;
}

static void watch_add(struct body_watch *w)
{
	pthread_mutex_lock(&watch_mu);
	w->next = watches;
	watches = w;
	pthread_cond_signal(&watch_cv);
	pthread_mutex_unlock(&watch_mu);
}

/* Removes w; returns whether its read side was cut. */
static bool watch_remove(struct body_watch *w)
{
	pthread_mutex_lock(&watch_mu);
	for (struct body_watch **p = &watches; *p != NULL; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			break;
		}
	}
	const bool cut = w->cut;
	pthread_mutex_unlock(&watch_mu);
	return cut;
}

int http_drain_body(struct http_req *req)
{
	const char *te = mg_get_header(req->conn, "Transfer-Encoding");
	struct body_watch w = {.fd = -1};
	char buf[8192];
	size_t total = 0;
	int n, status = 0;

	if (req->ri->content_length > HTTP_BODY_MAX)
		return 413;
	if (req->ri->content_length <= 0 && (te == NULL || strcasecmp(te, "chunked") != 0))
		return 0; /* no body */
	w.deadline = req->started + request_timeout_ms / 1000.0;
	pthread_once(&cutter_once, cutter_start);
	if (cutter_running && (w.fd = find_socket(is_conn_socket, (void *)req->ri)) >= 0)
		watch_add(&w);
	else
		log_warn("no deadline for this request body: %s", cutter_running
		         ? "its socket was not found" : "cannot start the cutter thread");
	while ((n = mg_read(req->conn, buf, sizeof(buf))) > 0) {
		total += (size_t)n;
		if (total > HTTP_BODY_MAX) {
			status = 413;
			break;
		}
		/* A body that is all there but came late is late too. */
		if (clock_mono_s() >= w.deadline) {
			status = 408;
			break;
		}
	}
	if (w.fd >= 0 && watch_remove(&w) && status == 0)
		status = 408;
	return status;
}

void http_long_begin(void)
{
	atomic_fetch_add(&conns_long, 1);
}

void http_long_end(void)
{
	atomic_fetch_sub(&conns_long, 1);
}

int http_conn_fd(const struct http_req *req)
{
	return find_socket(is_conn_socket, (void *)req->ri);
}

int http_method_not_allowed(const struct http_req *req, const char *allow)
{
	char hdr[128];
	snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", allow);
	return http_send_error(req, 405, hdr, "method %s not allowed; use %s",
	                       req->ri->request_method, allow);
}

/* GET /health: liveness, touching no dependency. */
static int health(const struct http_req *req)
{
	if (strcmp(req->ri->request_method, "GET") != 0 &&
	    strcmp(req->ri->request_method, "HEAD") != 0)
		return http_method_not_allowed(req, "GET");
	return http_send_json(req, 200, NULL, "{\"status\":\"UP\"}");
}

int http_ready(const struct http_req *req, const char *down)
{
	char body[768];
	size_t pos = 0;

	if (strcmp(req->ri->request_method, "GET") != 0 &&
	    strcmp(req->ri->request_method, "HEAD") != 0)
		return http_method_not_allowed(req, "GET");
	if (down == NULL)
		return http_send_json(req, 200, NULL, "{\"status\":\"READY\"}");
	jsonw_append(body, sizeof(body), &pos, "{\"status\":\"NOT_READY\",\"down\":\"");
	jsonw_escape(body, sizeof(body) - 80, &pos, down, (size_t)-1);
	jsonw_append(body, sizeof(body), &pos, "\",\"correlationId\":\"%s\"}", req->cid);
	return http_send(req->conn, 503, req->cid, "application/json", "Retry-After: 1\r\n",
	                 body, pos);
}

/* GET /metrics: every series in the text exposition format. */
static int metrics(const struct http_req *req)
{
	size_t len;
	char *text;

	if (strcmp(req->ri->request_method, "GET") != 0)
		return http_method_not_allowed(req, "GET");
	text = metrics_render(&len);
	if (text == NULL)
		return http_send_error(req, 500, NULL, "out of memory");
	http_send(req->conn, 200, req->cid, "text/plain; version=0.0.4; charset=utf-8",
	          NULL, text, len);
	free(text);
	return 200;
}

/* The routes every service has, answered here before the service's own:
 * /health, /ready (from routes->down) and /metrics. Returns the status
 * sent, or 0 when path is none of them. */
static int common_route(const struct http_routes *routes, const struct http_req *req,
                        const char **route_name)
{
	char buf[512];

	if (strcmp(req->path, "/health") == 0)
		return *route_name = "/health", health(req);
	if (strcmp(req->path, "/ready") == 0)
		return *route_name = "/ready",
		       http_ready(req, routes->down ? routes->down(buf, sizeof(buf)) : NULL);
	if (strcmp(req->path, "/metrics") == 0)
		return *route_name = "/metrics", metrics(req);
	return 0;
}

static int on_log_message(const struct mg_connection *conn, const char *message)
{
	(void)conn;
	log_warn("civetweb: %s", message);
	return 1;
}

/* mg_start listens and starts its workers before the handlers can be set
 * (they need its context): a request taken in between would get civetweb's
 * own 404, not its route (a reader polling a stored record got one when its
 * query-service restarted). Such a request waits for the handlers, which
 * are set as soon as mg_start returns; civetweb calls this first for every
 * request. */
static int on_begin_request(struct mg_connection *conn)
{
	(void)conn;
	for (int ms = 0; ms < 5000 && !atomic_load_explicit(&routed, memory_order_acquire); ms++)
		nanosleep(&(struct timespec){.tv_nsec = 1000 * 1000}, NULL);
	return 0; /* civetweb goes on: to the handler */
}

/* civetweb's own error replies (malformed request, header too large, ...)
 * become JSON like ours. */
static int on_http_error(struct mg_connection *conn, int status, const char *errmsg)
{
	struct http_req req = {.conn = conn, .path = ""};
	char body[512];
	size_t pos = 0;

	req.ri = mg_get_request_info(conn);
	uid_v4(req.cid);
	jsonw_append(body, sizeof(body), &pos, "{\"error\":\"");
	jsonw_escape(body, sizeof(body) - 64, &pos, errmsg ? errmsg : reason_phrase(status),
	             (size_t)-1);
	jsonw_append(body, sizeof(body), &pos, "\",\"correlationId\":\"%s\"}", req.cid);
	http_send(conn, status, req.cid, "application/json", "Connection: close\r\n",
	          body, pos);
	return 0;
}

/* Every request: parse, route, answer, count, trace (all but the common
 * routes: probes every second would flood the collector). */
static int serve(struct mg_connection *conn, void *cbdata)
{
	const struct http_routes *routes = cbdata;
	const double started = clock_mono_s();
	const char *route_name = "other", *why;
	struct http_req req;
	int status = http_req_init(&req, conn, &why);

	if (status != 0) {
		http_trace(&req);
		status = routes->bad != NULL ? routes->bad(&req, status, why)
		                             : http_send_error(&req, status, NULL, "%s", why);
	} else if ((status = common_route(routes, &req, &route_name)) == 0) {
		status = routes->route(&req, &req.route);
		if (req.route != NULL)
			route_name = req.route;
		/* A request whose handler started none (a 404, a 405): its span
		 * starts late, and is traced all the same. */
		if (!req.traced && trace_on())
			http_trace(&req);
	}
	trace_request_end(&req, status);
	log_set_trace(NULL);
	metrics_http_request(route_name, status, clock_mono_s() - started);
	return status;
}

/* Authentication is a proxy's job here. Without a handler of its own,
 * civetweb looks for a password file on every request -- with no document
 * root, at /.htpasswd -- and, if one exists, answers every request (even
 * /health) 401: a stat() a request, and a surprise waiting on any host. */
static int authorize_all(struct mg_connection *conn, void *cbdata)
{
	(void)conn;
	(void)cbdata;
	return 1;
}

static int on_init_connection(const struct mg_connection *conn, void **conn_data)
{
	(void)conn;
	(void)conn_data;
	atomic_fetch_add(&conns_held, 1);
	return 0;
}

static void on_connection_close(const struct mg_connection *conn)
{
	(void)conn;
	atomic_fetch_sub(&conns_held, 1);
}

/* Sets TCP_DEFER_ACCEPT on a listening socket on port *arg. Returns false
 * always, so that find_socket goes through every socket. */
static bool set_defer_accept(int fd, void *arg)
{
	struct { int port, n; } *want = arg;
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa), ilen = sizeof(int);
	const int secs = DEFER_ACCEPT_S;
	int listening = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ilen) == 0 && listening &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0 && sockaddr_port(&sa) == want->port &&
	    setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof(secs)) == 0)
		want->n++;
	return false;
}

/* Sets TCP_DEFER_ACCEPT on our listening sockets, so that a connection
 * that sends nothing never takes a worker thread (which would wait
 * request_timeout_ms for its request head): a client opening hundreds of
 * idle connections would otherwise leave none for anyone else. civetweb
 * does not hand out its listening sockets: they are found by port. Returns
 * how many were set. */
static int defer_accept(int port)
{
	struct { int port, n; } want = {port, 0};

	(void)find_socket(set_defer_accept, &want);
	return want.n;
}

/* Closes a listening socket on port *arg: new connections are refused at
 * once. civetweb's accept loop keeps polling the descriptor, so it is
 * replaced by an idle UDP socket rather than closed (a closed descriptor
 * could be reused; a shut-down listener polls readable and would make the
 * loop spin); mg_stop closes it. */
static bool close_listener(int fd, void *arg)
{
	const int *port = arg;
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa), ilen = sizeof(int);
	int listening = 0, udp;

	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ilen) != 0 || !listening ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) != 0 || sockaddr_port(&sa) != *port)
		return false;
	udp = socket(sa.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	(void)shutdown(fd, SHUT_RDWR);
	if (udp >= 0) {
		(void)dup2(udp, fd);
		close(udp);
	}
	return false;
}

int http_drain(int timeout_ms)
{
	const long until = clock_mono_ms() + timeout_ms;
	int port = server_port;

	atomic_store(&draining, true);
	(void)find_socket(close_listener, &port);
	if (stop_hook != NULL)
		stop_hook(); /* its requests' answers close their connections too */
	while (atomic_load(&conns_held) > 0 && clock_mono_ms() < until)
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
	return atomic_load(&conns_held);
}

struct mg_context *http_start(const struct http_server_opts *opts, char *errstr,
                              size_t errstr_size)
{
	struct mg_callbacks callbacks;
	struct mg_context *ctx;
	char port[80], threads[16], request_ms[16], keep_alive_ms[16];
	/* civetweb's request_timeout_ms bounds a whole request head (it counts
	 * from the head's first read), and keep_alive_timeout_ms the idle wait
	 * plus the head of each later request on a connection: kept short,
	 * since an idle connection holds a worker thread. */
	const char *options[] = {
	    "listening_ports", port,
	    "num_threads", threads,
	    "enable_keep_alive", "yes",
	    "keep_alive_timeout_ms", keep_alive_ms,
	    "tcp_nodelay", "1",
	    "request_timeout_ms", request_ms,
	    "linger_timeout_ms", "0",
	    "max_request_size", "65536", /* larger heads get civetweb's 400 */
	    "listen_backlog", "1024", /* a burst of connections is queued, not dropped */
	    "decode_url", "no", /* see http_req_init */
	    NULL,
	};

	if (strchr(opts->address, ':') != NULL)
		snprintf(port, sizeof(port), "[%s]:%d", opts->address, opts->port);
	else
		snprintf(port, sizeof(port), "%s:%d", opts->address, opts->port);
	snprintf(threads, sizeof(threads), "%d", opts->threads + opts->reserve_threads);
	request_timeout_ms = opts->request_timeout_ms > 0 ? opts->request_timeout_ms : 10000;
	snprintf(request_ms, sizeof(request_ms), "%d", request_timeout_ms);
	snprintf(keep_alive_ms, sizeof(keep_alive_ms), "%d",
	         opts->keep_alive_timeout_ms > 0 ? opts->keep_alive_timeout_ms : 5000);
	memset(&callbacks, 0, sizeof(callbacks));
	callbacks.log_message = on_log_message;
	callbacks.http_error = on_http_error;
	callbacks.begin_request = on_begin_request;
	callbacks.init_connection = on_init_connection;
	callbacks.connection_close = on_connection_close;
	worker_threads = opts->threads;
	stop_hook = opts->routes->stopping;
	server_port = opts->port;
	atomic_store(&draining, false);
	atomic_store(&routed, false);
	mg_init_library(0);
	ctx = mg_start(&callbacks, NULL, options);
	if (ctx == NULL) {
		snprintf(errstr, errstr_size, "cannot listen on %s (in use, or not an address)",
		         port);
		mg_exit_library();
		return NULL;
	}
	if (http_before_routes != NULL)
		http_before_routes();
	mg_set_auth_handler(ctx, "/", authorize_all, NULL);
	mg_set_request_handler(ctx, "/", serve, (void *)opts->routes);
	atomic_store_explicit(&routed, true, memory_order_release);
	if (defer_accept(opts->port) == 0)
		log_warn("cannot set TCP_DEFER_ACCEPT on port %d: idle connections take worker "
		         "threads", opts->port);
	return ctx;
}

void http_signals_block(sigset_t *sigs)
{
	sigemptyset(sigs);
	sigaddset(sigs, SIGINT);
	sigaddset(sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
}

void http_serve_until_signal(struct mg_context *ctx, const sigset_t *sigs, int drain_ms)
{
	int sig = 0, open_conns;
	const char *name;

	sigwait(sigs, &sig);
	name = sig == SIGINT ? "SIGINT" : "SIGTERM";
	log_info("received %s, stopping", name);
	if ((open_conns = http_drain(drain_ms)) > 0)
		log_warn("%d connection(s) still open %d ms after %s: closing them", open_conns,
		         drain_ms, name);
	mg_stop(ctx);
}
