/* otlp_sink: a tiny OTLP/HTTP (JSON) receiver for the unit tests. */
#define _GNU_SOURCE /* strcasestr */
#include "otlp_sink.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "trace.h"

#define SPANS_MAX 4096
#define BODY_MAX (8 * 1024 * 1024)

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static json_object *spans[SPANS_MAX]; /* under mu */
static int n_spans;
static int listen_fd = -1, stop_pipe[2] = {-1, -1};
static pthread_t thread;

/* Waits (1 s at most) until fd is readable or the sink stops. */
static bool readable(int fd)
{
	struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = stop_pipe[0], .events = POLLIN}};

	return poll(p, 2, 1000) > 0 && !(p[1].revents & POLLIN) && (p[0].revents & (POLLIN | POLLHUP));
}

static void keep_spans(const char *body, size_t len)
{
	json_object *root = json_tokener_parse(body), *rs, *ss, *sp;

	(void)len;
	if (root == NULL || !json_object_object_get_ex(root, "resourceSpans", &rs)) {
		json_object_put(root);
		return;
	}
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < json_object_array_length(rs); i++) {
		if (!json_object_object_get_ex(json_object_array_get_idx(rs, i), "scopeSpans", &ss))
			continue;
		for (size_t j = 0; j < json_object_array_length(ss); j++) {
			if (!json_object_object_get_ex(json_object_array_get_idx(ss, j), "spans", &sp))
				continue;
			for (size_t k = 0; k < json_object_array_length(sp) && n_spans < SPANS_MAX; k++)
				spans[n_spans++] = json_object_get(json_object_array_get_idx(sp, k));
		}
	}
	pthread_mutex_unlock(&mu);
	json_object_put(root);
}

/* Serves the requests of one connection until it closes (or goes quiet
 * for a second). */
static void serve(int fd)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	                         "Content-Length: 2\r\n\r\n{}";
	char *buf = malloc(BODY_MAX + 8192);
	size_t have = 0;

	while (buf != NULL) {
		char *end = NULL, *cl;
		size_t head, body = 0;
		ssize_t n;

		buf[have] = '\0';
		for (;;) { /* the head */
			end = strstr(buf, "\r\n\r\n");
			if (end != NULL)
				break;
			if (have >= 8192 || !readable(fd) || (n = read(fd, buf + have, 8192 - have)) <= 0)
				goto done;
			have += (size_t)n;
			buf[have] = '\0';
		}
		head = (size_t)(end + 4 - buf);
		cl = strcasestr(buf, "\ncontent-length:");
		if (cl != NULL && cl < end)
			body = strtoul(cl + 16, NULL, 10);
		if (body > BODY_MAX)
			goto done;
		/* libcurl asks before sending a larger body, and waits a second
		 * for the answer otherwise. */
		cl = strcasestr(buf, "\nexpect: 100-continue");
		if (cl != NULL && cl < end && have == head &&
		    write(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25) != 25)
			goto done;
		while (have < head + body) {
			if (!readable(fd) || (n = read(fd, buf + have, head + body - have)) <= 0)
				goto done;
			have += (size_t)n;
		}
		char saved = buf[head + body];
		buf[head + body] = '\0';
		keep_spans(buf + head, body);
		buf[head + body] = saved;
		if (write(fd, ok, sizeof(ok) - 1) < 0)
			goto done;
		memmove(buf, buf + head + body, have - head - body);
		have -= head + body;
	}
done:
	free(buf);
	close(fd);
}

static void *sink_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd p[2] = {{.fd = listen_fd, .events = POLLIN},
		                      {.fd = stop_pipe[0], .events = POLLIN}};
		if (poll(p, 2, 1000) < 0 || (p[1].revents & POLLIN))
			return NULL;
		if (p[0].revents & POLLIN) {
			int fd = accept(listen_fd, NULL, NULL);
			if (fd >= 0)
				serve(fd);
		}
	}
}

int otlp_sink_start(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);

	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(listen_fd, 0);
	ck_assert_int_eq(bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(listen_fd, 16), 0);
	ck_assert_int_eq(getsockname(listen_fd, (struct sockaddr *)&sa, &len), 0);
	ck_assert_int_eq(pipe(stop_pipe), 0);
	ck_assert_int_eq(pthread_create(&thread, NULL, sink_main, NULL), 0);
	return ntohs(sa.sin_port);
}

void otlp_sink_trace(void)
{
	static char endpoint[64];
	struct trace_config tc = {
	    .endpoint = endpoint, .traces_endpoint = "", .protocol = "http/json", .headers = "",
	    .timeout_ms = 5000, .service_name = "", .resource_attributes = "",
	    .sampler = "parentbased_always_on", .sampler_arg = "", .disabled = "false",
	    .queue_max = 2048, .batch_max = 512, .delay_ms = 50,
	};
	char errstr[256];

	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", otlp_sink_start());
	ck_assert_msg(trace_setup(&tc, "unit-tests", errstr, sizeof(errstr)) == 0, "%s", errstr);
}

void otlp_sink_stop(void)
{
	if (listen_fd < 0)
		return;
	if (write(stop_pipe[1], "x", 1) == 1)
		pthread_join(thread, NULL);
	close(listen_fd);
	close(stop_pipe[0]);
	close(stop_pipe[1]);
	listen_fd = -1;
	pthread_mutex_lock(&mu);
	while (n_spans > 0)
		json_object_put(spans[--n_spans]);
	pthread_mutex_unlock(&mu);
}

/* The spans named name so far, up to max into out (references), if out. */
static int named(const char *name, json_object **out, int max)
{
	int found = 0;

	pthread_mutex_lock(&mu);
	for (int i = 0; i < n_spans; i++) {
		const char *n = otlp_field(spans[i], "name");
		if (n == NULL || strcmp(n, name) != 0)
			continue;
		if (out != NULL && found < max)
			out[found] = json_object_get(spans[i]);
		found++;
	}
	pthread_mutex_unlock(&mu);
	return found;
}

int otlp_sink_spans(const char *name, int want, int timeout_ms, json_object **out, int max)
{
	const long until = clock_mono_ms() + timeout_ms;

	while (named(name, NULL, 0) < want && clock_mono_ms() < until)
		nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000}, NULL);
	return named(name, out, max);
}

const char *otlp_field(json_object *span, const char *field)
{
	json_object *v;

	return json_object_object_get_ex(span, field, &v) && json_object_is_type(v, json_type_string)
	           ? json_object_get_string(v)
	           : NULL;
}

const char *otlp_attr(json_object *span, const char *key)
{
	json_object *attrs, *v, *k;

	if (!json_object_object_get_ex(span, "attributes", &attrs))
		return NULL;
	for (size_t i = 0; i < json_object_array_length(attrs); i++) {
		json_object *a = json_object_array_get_idx(attrs, i), *val;
		if (!json_object_object_get_ex(a, "key", &k) || strcmp(json_object_get_string(k), key) != 0 ||
		    !json_object_object_get_ex(a, "value", &val))
			continue;
		if (json_object_object_get_ex(val, "stringValue", &v) ||
		    json_object_object_get_ex(val, "intValue", &v) ||
		    json_object_object_get_ex(val, "boolValue", &v))
			return json_object_get_string(v);
	}
	return NULL;
}

int otlp_status(json_object *span)
{
	json_object *st, *code;

	return json_object_object_get_ex(span, "status", &st) &&
	               json_object_object_get_ex(st, "code", &code)
	           ? json_object_get_int(code)
	           : 0;
}

int otlp_kind(json_object *span)
{
	json_object *k;

	return json_object_object_get_ex(span, "kind", &k) ? json_object_get_int(k) : 0;
}

int otlp_links(json_object *span, const char **ids, int max)
{
	json_object *links;
	int n = 0;

	if (!json_object_object_get_ex(span, "links", &links))
		return 0;
	for (size_t i = 0; i < json_object_array_length(links); i++) {
		const char *id = otlp_field(json_object_array_get_idx(links, i), "spanId");
		if (id != NULL && n < max)
			ids[n++] = id;
	}
	return n;
}
