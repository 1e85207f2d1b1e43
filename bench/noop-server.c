/* noop-server: the HTTP ceiling of `make bench`. civetweb started by
 * http_start with exactly the services' options (threads, keep-alive,
 * tcp_nodelay, timeouts), whose one handler does nothing but write a small
 * JSON reply in one mg_write. What a service reaches as a fraction of this
 * is what its own work costs. The tracing step (bench/steps/tracing.sh)
 * runs a second one as the collector the services export to.
 *
 * usage: noop-server   (env SERVER_PORT, SERVER_ADDRESS, HTTP_THREADS) */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "http.h"
#include "log.h"

/* The size of the command service's 200. */
#define BODY "{\"id\":\"00000000-0000-0000-0000-000000000000\"}\n"
static char reply[256];
static int reply_len;

static int noop(struct mg_connection *conn, void *data)
{
	char body[16384];

	(void)data;
	/* A body is read to its end (the benchmark's POSTs have none; the
	 * tracing step's OTLP exports do), so that the connection stays in
	 * step for its next request. */
	while (mg_read(conn, body, sizeof(body)) > 0)
		;
	mg_write(conn, reply, (size_t)reply_len);
	return 200;
}

/* http_start wants routes; every request goes to noop once main has
 * replaced them. One that arrives before gets an answer all the same (a
 * route must send one: without it the client waited for the keep-alive
 * timeout, which once failed make bench's readiness wait). */
static int starting_route(struct http_req *req, const char **route_name)
{
	*route_name = "starting";
	return http_send_error(req, 503, "Retry-After: 1\r\n", "starting");
}
/* /ready is http.c's: it says "starting" (503) too until noop takes over. */
static const char *starting_down(char *buf, size_t size)
{
	snprintf(buf, size, "starting");
	return buf;
}
static const struct http_routes routes = {.route = starting_route, .down = starting_down};

int main(int argc, char **argv)
{
	struct http_server_opts ho = {.routes = &routes};
	struct mg_context *ctx;
	char errstr[256];
	sigset_t sigs;
	int rc, sig;
	const struct cfg_param params[] = {
	    /* the command service's defaults: it is the one compared with this */
	    HTTP_CFG_PARAMS(ho, "7090", "128"),
	};

	if ((rc = cfg_args(argc, argv, "noop-server", "The do-nothing HTTP ceiling of make bench.",
	                   params, CFG_COUNT(params))) >= 0)
		return rc;
	if (cfg_load(params, CFG_COUNT(params), errstr, sizeof(errstr)) != 0) {
		fprintf(stderr, "noop-server: %s\n", errstr);
		return 2;
	}
	log_setup("noop-server", LOG_INFO);
	reply_len = snprintf(reply, sizeof(reply),
	                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	                     "Content-Length: %zu\r\n\r\n%s",
	                     strlen(BODY), BODY);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((ctx = http_start(&ho, errstr, sizeof(errstr))) == NULL) {
		log_error("http: %s", errstr);
		return 1;
	}
	/* Same URI: replaces the services' dispatcher with the do-nothing one. */
	mg_set_request_handler(ctx, "/", noop, NULL);
	log_info("listening on %s:%d with %d threads", ho.address, ho.port, ho.threads);
	sigwait(&sigs, &sig);
	mg_stop(ctx);
	mg_exit_library();
	return 0;
}
