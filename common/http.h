/* http: civetweb helpers: one writer for every reply (status line, headers
 * and body in a single mg_write), JSON errors, correlation ids, server
 * start-up with the options every service shares. */
#ifndef COMMON_HTTP_H
#define COMMON_HTTP_H

#include <civetweb.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "trace.h"
#include "uid.h"

/* Requests with a body larger than this are refused with 413. */
#define HTTP_BODY_MAX (64 * 1024)

/* Requests whose path or headers are larger than this are refused. */
#define HTTP_PATH_MAX 8192
#define HTTP_HEADERS_MAX 8192

/* Per-request state every handler needs. */
struct http_req {
	struct mg_connection *conn;
	const struct mg_request_info *ri;
	const char *path;     /* percent-decoded path, without the query string */
	const char *raw_path; /* the path as civetweb gives it (not decoded) */
	bool path_bad;        /* the path could not be decoded */
	double started;       /* clock_mono_s() when the handler got the request */
	char cid[UID_TEXT_SIZE]; /* correlation id: echoed as received */
	char path_buf[HTTP_PATH_MAX + 1];
	/* Tracing. route is what routes->route names it (its route_name);
	 * parent the traceparent and tracestate received (zeroed when absent
	 * or invalid: a new trace, never an error); trace the server span's
	 * context once http_trace started it (traced), span that span (NULL
	 * when not recorded). */
	const char *route;
	struct trace_ctx parent;
	struct trace_ctx trace;
	struct trace_span *span;
	bool traced;
};

/* Sends status line, headers and body in one write. extra_headers is NULL or
 * complete "Name: value\r\n" lines. A 304 (and any reply to HEAD) is sent
 * with the headers of the 200, Content-Length included, and no body: pass
 * the 200's body. Returns status. */
int http_send(struct mg_connection *conn, int status, const char *cid,
              const char *content_type, const char *extra_headers,
              const char *body, size_t body_len);

/* Sends a JSON body (a NUL-terminated string). Returns status. */
int http_send_json(const struct http_req *req, int status,
                   const char *extra_headers, const char *json);

/* Sends {"error":"<formatted>","correlationId":"…"[,"id":"<id>"]}, the id
 * (when not NULL) being the ticket that a failed request tried (see the
 * command service's 503). Returns status. */
int http_send_error_id(const struct http_req *req, int status, const char *extra_headers,
                       const char *id, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* http_send_error_id without an id: http_send_error(req, status,
 * extra_headers, fmt, ...). */
#define http_send_error(req, status, extra_headers, ...) \
	http_send_error_id((req), (status), (extra_headers), NULL, __VA_ARGS__)

/* Fills req from conn. Returns 0, or the status to answer with *why: 400
 * for a correlation id header (correlationId or X-Correlation-ID) that is
 * not a UUID (req->cid then holds a
 * fresh id for the reply) or a bad or NUL percent escape in the path, 414
 * for a path over HTTP_PATH_MAX, 431 for headers over HTTP_HEADERS_MAX or
 * more than civetweb keeps (MG_MAX_HEADERS - 1, the rest unseen). The
 * path is decoded here, not by civetweb, which would cut it at "%00"; on a
 * path error req->path is "" and req->raw_path still tells the route. */
int http_req_init(struct http_req *req, struct mg_connection *conn, const char **why)
    __attribute__((warn_unused_result));

/* Starts the request's SERVER span, "<METHOD> <route>" (req->route, named
 * by routes->route) as a child of the traceparent received, once, and
 * returns its context: the parent of the spans the handler starts. A
 * handler calls it at its start, once its route is named, so that the span
 * covers its work; http.c calls it after routing for the requests whose
 * handler did not (a 404, a 405), for those http_req_init refused, and
 * ends the span with the status after the reply. The thread's log lines
 * carry its trace id until the request ends. /health, /ready and /metrics
 * are not traced. With tracing off it costs a copy of the context. */
const struct trace_ctx *http_trace(struct http_req *req);

/* Percent-decodes src[0..len) into dst[size]; '+' stays '+' (a path, and
 * a query string in which '+' means itself). Returns 0, -1 for a bad
 * escape or %00, -2 when dst is too small. */
int http_percent_decode(const char *src, size_t len, char *dst, size_t size)
    __attribute__((warn_unused_result));

/* Copies header name's value, without surrounding blanks, into buf.
 * Returns its length, -1 if absent, -2 if longer than size - 1. */
int http_header(struct mg_connection *conn, const char *name, char *buf, size_t size);

/* Reads and discards the request body within the request deadline
 * (request_timeout_ms of http_server_opts, counted from req->started).
 * Returns 0, or the status the caller answers with (and closes): 413 for a
 * body larger than HTTP_BODY_MAX, 408 for one not received in time. */
int http_drain_body(struct http_req *req) __attribute__((warn_unused_result));

/* A request that holds its thread for long (a wait, a stream) runs on a
 * reserved thread (reserve_threads): between http_long_begin and
 * http_long_end its connection does not count against `threads` when
 * replies decide whether to keep connections alive. */
void http_long_begin(void);
void http_long_end(void);

/* The socket of the request's connection (found by its addresses; civetweb
 * does not hand it out), or -1: for socket options only, never to read or
 * write. It costs a scan of the process's descriptors. */
int http_conn_fd(const struct http_req *req);

/* Answers 405 with Allow. */
int http_method_not_allowed(const struct http_req *req, const char *allow);

/* Answers /ready from down == NULL (ready: 200) or the name of what is
 * down (503 with Retry-After). */
int http_ready(const struct http_req *req, const char *down);

/* A service's routing. GET /health, /ready and /metrics are answered by
 * http.c for every service (routes "/health", "/ready", "/metrics"); route
 * answers every other well-formed request and names the route (a
 * template: /api/v1/timestamp/{id}) for the metrics and the trace, before
 * it calls a handler (which may then call http_trace); bad, if not NULL, answers what http_req_init refused (status
 * and why) instead of the plain JSON error. Both return the status they
 * sent. down, if not NULL, says for /ready what is down: it writes that
 * into buf[size] and returns buf, or returns NULL when all is ready; it
 * must answer in bounded time (a probe waits for it). NULL: always ready. */
struct http_routes {
	int (*route)(struct http_req *req, const char **route_name);
	int (*bad)(struct http_req *req, int status, const char *why);
	const char *(*down)(char *buf, size_t size);
	/* stopping, if not NULL, is called by http_drain once new connections
	 * are refused: it ends the requests that would otherwise hold their
	 * connection past the drain (long waits, streams). */
	void (*stopping)(void);
};

struct http_server_opts {
	const char *address; /* e.g. "0.0.0.0" */
	int port;
	int threads;
	/* A request head must arrive within request_timeout_ms (civetweb), and
	 * a body within request_timeout_ms of the handler's start (http_drain_body);
	 * 0: 10000. A kept-alive connection waits keep_alive_timeout_ms for its
	 * next request head, whole; 0: 5000. */
	int request_timeout_ms;
	int keep_alive_timeout_ms;
	/* Worker threads beyond `threads` for requests that hold theirs for
	 * long (see http_long_begin): the service caps how many there are at
	 * once, so that the others always keep `threads`. */
	int reserve_threads;
	const struct http_routes *routes; /* gets every request */
};

/* Configuration parameters every service has (see cfg.h). */
#define HTTP_CFG_PARAMS(opts, default_port, default_threads)                          \
	{"SERVER_PORT", CFG_INT, &(opts).port, default_port, 1, 65535, "HTTP port"},     \
	{"SERVER_ADDRESS", CFG_STRING, &(opts).address, "0.0.0.0", 0, 0,                \
	 "HTTP listen address"},                                                         \
	{"HTTP_THREADS", CFG_INT, &(opts).threads, default_threads, 1, 1024,             \
	 "HTTP worker threads"},                                                         \
	{"HTTP_REQUEST_TIMEOUT_MS", CFG_INT, &(opts).request_timeout_ms, "10000", 500,  \
	 300000, "time a client has to send a request head, and again its body (408)"}, \
	{"HTTP_KEEP_ALIVE_TIMEOUT_MS", CFG_INT, &(opts).keep_alive_timeout_ms, "5000",  \
	 100, 300000, "time an idle kept-alive connection may take for its next request"}

/* The first step of stopping the server: new connections are refused,
 * each reply from now on closes its connection, and the requests in
 * progress are answered. Waits up to timeout_ms until every connection
 * closed, and returns how many are still open. mg_stop comes next: alone,
 * it drops the answers of the requests in progress (civetweb writes nothing
 * once it is stopping). */
int http_drain(int timeout_ms);

/* Blocks SIGINT and SIGTERM in the calling thread, and so in the threads
 * it starts afterwards, filling *sigs for http_serve_until_signal; ignores
 * SIGPIPE (a client that went away is a failed write, not a dead process).
 * Call it before starting any thread. */
void http_signals_block(sigset_t *sigs);

/* Waits for a signal of sigs, logs it, refuses new connections and lets the
 * requests in progress be answered for up to drain_ms (http_drain), then
 * stops civetweb (mg_stop). The caller then stops its own modules. */
void http_serve_until_signal(struct mg_context *ctx, const sigset_t *sigs, int drain_ms);

/* Starts civetweb with keep-alive, tcp_nodelay, request timeouts and JSON
 * error pages; civetweb's own messages go to the log. Returns NULL and
 * fills errstr on failure. Stop with mg_stop. */
struct mg_context *http_start(const struct http_server_opts *opts, char *errstr,
                              size_t errstr_size);

/* Tests only: called by http_start once the server listens, before its
 * routes are set (NULL: nothing). A request that arrives meanwhile waits
 * for them. */
extern void (*http_before_routes)(void);

#endif
