/* correlation_test: the correlationId header (or X-Correlation-ID): any
 * UUID accepted and echoed, generated when absent, 400 when not a UUID, and
 * carried into the Kafka message's headers. The W3C trace context too:
 * traceparent continued into the message's headers (the producer's span)
 * and onto the services' log lines; the spans themselves are checked in
 * Jaeger by the tracing suite. */
#include <arpa/inet.h>
#include <check.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "checks.h"
#include "clock.h"
#include "msg.h"
#include "suites.h"
#include "topic.h"
#include "uid.h"

#define TS_PATH "/api/v1/timestamp"
#define V1_CID "6ba7b810-9dad-11d1-80b4-00c04fd430c8"

/* Requests tried on every service: method and path. */
static const struct {
	enum stack_service which;
	const char *method, *path;
} routes[] = {
    {STACK_COMMAND, "POST", TS_PATH "/2009-09-28T19:03:12Z"},
    {STACK_COMMAND, "POST", "/app"},
    {STACK_COMMAND, "GET", "/health"},
    {STACK_CONSUMER, "GET", "/health"},
    {STACK_CONSUMER, "GET", "/ready"},
    {STACK_QUERY, "GET", TS_PATH "/" V1_CID},
    {STACK_QUERY, "GET", "/health"},
};

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *const bad_cids[] = {
    "correlationId: not-a-uuid",
    "correlationId: 6ba7b810-9dad-11d1-80b4-00c04fd430c",   /* 35 characters */
    "correlationId: 6ba7b810-9dad-11d1-80b4-00c04fd430c8a", /* 37 */
    "correlationId: {6ba7b810-9dad-11d1-80b4-00c04fd430c8}",
    "correlationId: 6ba7b8109dad11d180b400c04fd430c8",
    "correlationId: 6ba7b810-9dad-11d1-80b4-00c04fd430cz",
    "correlationId;", /* present, empty */
    "X-Correlation-ID: not-a-uuid",
};

/* Every bad id on every route: 400, a fresh id in the reply, nothing published. */
START_TEST(bad_cid_400)
{
	struct http_resp resp;
	char url[256];
	int64_t before = topic_total();

	for (int r = 0; r < N(routes); r++) {
		const char *headers[] = {bad_cids[_i], NULL};
		stack_url(url, sizeof(url), routes[r].which, "%s", routes[r].path);
		ck_assert_msg(http_request(NULL, routes[r].method, url, headers, NULL, 0, &resp) == 0,
		              "%s %s: %s", routes[r].method, url, resp.errstr);
		ck_assert_msg(resp.status == 400, "%s %s with '%s': %ld %s", routes[r].method, url,
		              bad_cids[_i], resp.status, resp.body ? resp.body : "");
		check_error(&resp, 400);
		http_resp_clear(&resp);
	}
	ck_assert_msg(topic_total() == before, "'%s': a refused request published a message",
	              bad_cids[_i]);
}
END_TEST

/* Accepted ids: the header line, and what correlationId must echo. */
static const struct {
	const char *header, *echo;
} good_cids[] = {
    {"correlationId: " V1_CID, V1_CID},
    {"correlationId: 3f2b1c6e-8d4a-4e5f-9a1b-2c3d4e5f6a7b", "3f2b1c6e-8d4a-4e5f-9a1b-2c3d4e5f6a7b"},
    {"correlationId: 6BA7B810-9DAD-11D1-80B4-00C04FD430C8", "6BA7B810-9DAD-11D1-80B4-00C04FD430C8"},
    {"X-Correlation-ID: 0e2a6f4c-1b3d-4c5e-8f7a-9b0c1d2e3f40", "0e2a6f4c-1b3d-4c5e-8f7a-9b0c1d2e3f40"},
    {"x-correlation-id: 0e2a6f4c-1b3d-4c5e-8f7a-9b0c1d2e3f41", "0e2a6f4c-1b3d-4c5e-8f7a-9b0c1d2e3f41"},
    {"CORRELATIONID: 0e2a6f4c-1b3d-4c5e-8f7a-9b0c1d2e3f42", "0e2a6f4c-1b3d-4c5e-8f7a-9b0c1d2e3f42"},
    /* Whitespace around a field value is not part of it (RFC 9110 5.5). */
    {"correlationId:   0e2a6f4c-1b3d-4c5e-8f7a-9b0c1d2e3f43  ", "0e2a6f4c-1b3d-4c5e-8f7a-9b0c1d2e3f43"},
};

START_TEST(good_cid_echoed)
{
	const char *headers[] = {good_cids[_i].header, NULL};
	struct http_resp resp;
	char url[256];

	for (int r = 0; r < N(routes); r++) {
		stack_url(url, sizeof(url), routes[r].which, "%s", routes[r].path);
		ck_assert_msg(http_request(NULL, routes[r].method, url, headers, NULL, 0, &resp) == 0,
		              "%s %s: %s", routes[r].method, url, resp.errstr);
		ck_assert_msg(resp.status == 200 || resp.status == 404, "%s %s with '%s': %ld %s",
		              routes[r].method, url, good_cids[_i].header, resp.status,
		              resp.body ? resp.body : "");
		ck_assert_msg(strcasecmp(resp.cid, good_cids[_i].echo) == 0,
		              "%s %s with '%s': correlationId echoed as '%s'", routes[r].method, url,
		              good_cids[_i].header, resp.cid);
		if (resp.status == 404) /* the unknown record: the body carries it too */
			check_error(&resp, 404);
		http_resp_clear(&resp);
	}
}
END_TEST

START_TEST(missing_cid_generated)
{
	struct http_resp resp;
	char url[256], first[128] = "";

	for (int r = 0; r < N(routes); r++) {
		stack_url(url, sizeof(url), routes[r].which, "%s", routes[r].path);
		ck_assert_msg(http_request(NULL, routes[r].method, url, NULL, NULL, 0, &resp) == 0,
		              "%s %s: %s", routes[r].method, url, resp.errstr);
		ck_assert_msg(is_uuid(resp.cid), "%s %s: generated correlationId '%s'",
		              routes[r].method, url, resp.cid);
		ck_assert_msg(strcmp(resp.cid, first) != 0, "the same correlationId %s twice", first);
		snprintf(first, sizeof(first), "%s", resp.cid);
		http_resp_clear(&resp);
	}
}
END_TEST

/* The correlation id of a POST travels in its Kafka message, with the
 * content type; the value is the codec's; the key is the ticket id. Run
 * with a v1 id, with X-Correlation-ID and with none (the generated one). */
static const char *const kafka_cids[] = {
    "correlationId: " V1_CID,
    "X-Correlation-ID: 0e2a6f4c-1b3d-4c5e-8f7a-9b0c1d2e3f40",
    NULL,
};

START_TEST(cid_in_kafka_headers)
{
	const char *headers[] = {kafka_cids[_i], NULL};
	struct topic_in found[4];
	struct msg_command m;
	struct http_resp resp;
	struct ts_instant before, after;
	char url[256], id[UID_TEXT_SIZE], errstr[512], cid[128];
	size_t n = 0;
	json_object *jobj;
	int64_t before_ms;

	stack_url(url, sizeof(url), STACK_COMMAND, TS_PATH "/2009-09-28T19:03:12.123456789%%2B02:00");
	before = ts_now();
	ck_assert_msg(http_request(NULL, "POST", url, headers, NULL, 0, &resp) == 0, "POST %s: %s",
	              url, resp.errstr);
	after = ts_now();
	jobj = check_json_200(&resp);
	ck_assert(is_uuid(json_str(jobj, "id")));
	memcpy(id, json_str(jobj, "id"), UID_TEXT_SIZE);
	snprintf(cid, sizeof(cid), "%s", resp.cid);
	json_object_put(jobj);
	http_resp_clear(&resp);
	ck_assert_msg(is_uuid(cid), "reply correlationId '%s'", cid);

	ck_assert_msg(topic_find(stack.broker, stack.topic, id, found, 4, &n, 15000, errstr,
	                         sizeof(errstr)) == 0,
	              "reading %s: %s", stack.topic, errstr);
	ck_assert_msg(n == 1, "%zu messages with key %s in %s, want 1", n, id, stack.topic);
	ck_assert_msg(topic_in_header(&found[0], "correlationId") != NULL &&
	                  strcasecmp(topic_in_header(&found[0], "correlationId"), cid) == 0,
	              "message header correlationId '%s', the reply said %s",
	              topic_in_header(&found[0], "correlationId"), cid);
	ck_assert_msg(topic_in_header(&found[0], "content-type") != NULL &&
	                  strcmp(topic_in_header(&found[0], "content-type"), "application/json") == 0,
	              "message header content-type '%s'", topic_in_header(&found[0], "content-type"));
	ck_assert_msg(found[0].value != NULL &&
	                  msg_decode(found[0].value, found[0].value_len, &m, errstr,
	                             sizeof(errstr)) == 0,
	              "message value does not decode: %s", found[0].value);
	ck_assert_str_eq(m.command_id, id);
	/* Nine digits travel in the log, in UTC. */
	ck_assert_msg(m.event_time.sec == 1254157392 && m.event_time.nsec == 123456789,
	              "event time %lld.%09d in %s", (long long)m.event_time.sec,
	              (int)m.event_time.nsec, found[0].value);
	ck_assert_msg(found[0].ts_type == RD_KAFKA_TIMESTAMP_CREATE_TIME,
	              "record timestamp type %d, want CreateTime", found[0].ts_type);
	before_ms = msg_ts_ms(before);
	ck_assert_msg(found[0].ts_ms >= before_ms &&
	                  found[0].ts_ms <= msg_ts_ms(after),
	              "record timestamp %lld outside the request's window", (long long)found[0].ts_ms);
	topic_in_clear(&found[0]);
}
END_TEST

/* ---- trace context ----
 *
 * Two command services of their own beside the run's (whatever tracing the
 * run gives those): one tracing to a collector that is not there (spans
 * are dropped; the context travels all the same), one with tracing off. */

#define TRACESTATE "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"

static struct svc traced, untraced;

static int traced_port(void)
{
	return stack.port[STACK_COMMAND] + 6;
}

static int untraced_port(void)
{
	return stack.port[STACK_COMMAND] + 8;
}

/* A port nobody listens on: one the kernel just gave and took back. */
static int closed_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static void start_command(struct svc *s, int port, const char *name, const char *log,
                          const char *const *env)
{
	char url[128], errstr[512];

	ck_assert_msg(stack_spawn(s, STACK_COMMAND, port, name, log, env, errstr, sizeof(errstr)) == 0,
	              "%s", errstr);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ready", port);
	ck_assert_msg(wait_ready(url, 60000, s, errstr, sizeof(errstr)) == 0,
	              "%s not ready: %s (log: %s)", name, errstr, s->log_path);
}

/* Unchecked (in the runner's process): the services outlive a failed test
 * and are stopped whatever happened. */
static void trace_services_start(void)
{
	static char endpoint[96];
	const char *on[] = {endpoint, "OTEL_BSP_SCHEDULE_DELAY=100", "OTEL_SDK_DISABLED=false",
	                    NULL};
	const char *off[] = {"OTEL_EXPORTER_OTLP_ENDPOINT=", "OTEL_SDK_DISABLED=true", NULL};

	snprintf(endpoint, sizeof(endpoint), "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:%d",
	         closed_port());
	start_command(&traced, traced_port(), "command-service traced", "command-traced.log", on);
	start_command(&untraced, untraced_port(), "command-service untraced",
	              "command-untraced.log", off);
}

static void trace_services_stop(void)
{
	svc_stop(&traced, SIGTERM, 10000, NULL);
	svc_stop(&untraced, SIGTERM, 10000, NULL);
}

/* A fresh sampled context: its trace id, span id and traceparent. */
static void random_context(char trace_id[33], char span_id[17], char parent[56])
{
	char u[UID_TEXT_SIZE], v[UID_TEXT_SIZE];
	size_t n = 0;

	uid_v4(u);
	uid_v4(v);
	for (const char *c = u; *c; c++)
		if (*c != '-')
			trace_id[n++] = *c;
	trace_id[n] = '\0';
	snprintf(span_id, 17, "%.8s%.4s%.4s", v, v + 9, v + 14);
	snprintf(parent, 56, "00-%s-%s-01", trace_id, span_id);
}

/* Polls (up to timeout_ms) the log at path for a line holding every one of
 * needles (NULL-terminated). */
static bool log_has_line(const char *path, const char *const *needles, int timeout_ms)
{
	const long until = clock_mono_ms() + timeout_ms;
	char line[8192];

	do {
		FILE *f = fopen(path, "r");
		bool all = false;

		while (f != NULL && !all && fgets(line, sizeof(line), f) != NULL) {
			all = true;
			for (const char *const *n = needles; *n != NULL && all; n++)
				all = strstr(line, *n) != NULL;
		}
		if (f != NULL)
			fclose(f);
		if (all)
			return true;
		proc_sleep_ms(100);
	} while (clock_mono_ms() < until);
	return false;
}

/* POSTs to the command service on port with a traceparent and tracestate;
 * returns the message it published (the caller clears it) and the id. */
static void post_traced(int port, const char *parent, char id[UID_TEXT_SIZE],
                        struct topic_in *msg)
{
	char url[256], hp[128], errstr[512];
	const char *headers[] = {hp, "tracestate: " TRACESTATE, NULL};
	struct http_resp resp;
	json_object *jobj;
	size_t n = 0;

	snprintf(hp, sizeof(hp), "traceparent: %s", parent);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d" TS_PATH "/2009-09-28T19:03:12Z", port);
	ck_assert_msg(http_request(NULL, "POST", url, headers, NULL, 0, &resp) == 0, "POST %s: %s",
	              url, resp.errstr);
	jobj = check_json_200(&resp);
	memcpy(id, json_str(jobj, "id"), UID_TEXT_SIZE);
	json_object_put(jobj);
	http_resp_clear(&resp);
	ck_assert_msg(topic_find(stack.broker, stack.topic, id, msg, 1, &n, 15000, errstr,
	                         sizeof(errstr)) == 0,
	              "reading %s: %s", stack.topic, errstr);
	ck_assert_msg(n == 1, "%zu messages with key %s, want 1", n, id);
}

/* The message carries the producer span's context: the request's trace
 * id, a span id of its own, sampled, and the tracestate as received; the
 * consumer's line about the row and the query service's about a request
 * with the same trace id carry that trace id. */
START_TEST(traceparent_continues_into_kafka_and_log_lines)
{
	char trace_id[33], span_id[17], parent[56], id[UID_TEXT_SIZE], needle[64], cmd[80];
	char url[256], hp[128], missing[UID_TEXT_SIZE];
	const char *got, *headers[] = {hp, NULL};
	struct topic_in msg;
	struct http_resp resp;

	random_context(trace_id, span_id, parent);
	post_traced(traced_port(), parent, id, &msg);
	got = topic_in_header(&msg, "traceparent");
	ck_assert_msg(got != NULL && strlen(got) == 55, "traceparent header '%s'", got ? got : "(none)");
	ck_assert_msg(strncmp(got, "00-", 3) == 0 && strncmp(got + 3, trace_id, 32) == 0 &&
	                  strcmp(got + 52, "-01") == 0,
	              "traceparent header %s, want trace id %s, sampled", got, trace_id);
	ck_assert_msg(strncmp(got + 36, span_id, 16) != 0 &&
	                  strspn(got + 36, "0123456789abcdef") == 16 &&
	                  strncmp(got + 36, "0000000000000000", 16) != 0,
	              "traceparent header %s: the span id is not the producer's own", got);
	ck_assert_msg(topic_in_header(&msg, "tracestate") != NULL &&
	                  strcmp(topic_in_header(&msg, "tracestate"), TRACESTATE) == 0,
	              "tracestate header '%s'", topic_in_header(&msg, "tracestate"));
	topic_in_clear(&msg);

	snprintf(needle, sizeof(needle), "\"trace_id\":\"%s\"", trace_id);
	snprintf(cmd, sizeof(cmd), "\"command_id\":\"%s\"", id);
	const char *command_line[] = {needle, cmd, "accepted", NULL};
	ck_assert_msg(log_has_line(traced.log_path, command_line, 5000),
	              "no line of %s about %s carries trace id %s", traced.log_path, id, trace_id);
	const char *consumer_line[] = {needle, cmd, NULL};
	ck_assert_msg(log_has_line(stack.svc[STACK_CONSUMER].log_path, consumer_line, 30000),
	              "no line of %s about %s carries trace id %s",
	              stack.svc[STACK_CONSUMER].log_path, id, trace_id);

	/* A reader continuing the trace: its 404 line carries the trace id. */
	uid_v4(missing);
	snprintf(hp, sizeof(hp), "traceparent: 00-%s-00f067aa0ba902b7-01", trace_id);
	stack_url(url, sizeof(url), STACK_QUERY, TS_PATH "/%s", missing);
	ck_assert_msg(http_get(url, headers, &resp) == 0 && resp.status == 404, "GET %s: %ld %s", url,
	              resp.status, resp.errstr);
	http_resp_clear(&resp);
	const char *query_line[] = {needle, missing, NULL};
	ck_assert_msg(log_has_line(stack.svc[STACK_QUERY].log_path, query_line, 5000),
	              "no line of %s about GET %s carries trace id %s",
	              stack.svc[STACK_QUERY].log_path, missing, trace_id);
}
END_TEST

/* Each service surfaces the exporter's counters on /metrics once tracing
 * is on. */
START_TEST(traced_service_has_exporter_metrics)
{
	char url[128];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", traced_port());
	ck_assert_msg(metric_value(url, "trace_spans_total{result=\"exported\"}") >= 0,
	              "no trace_spans_total{result=\"exported\"} in %s", url);
	ck_assert_msg(metric_value(url, "trace_spans_total{result=\"dropped_queue_full\"}") >= 0,
	              "no trace_spans_total{result=\"dropped_queue_full\"} in %s", url);
	ck_assert_msg(metric_value(url, "trace_export_requests_total{result=\"error\"}") >= 0,
	              "no trace_export_requests_total{result=\"error\"} in %s", url);
}
END_TEST

/* With tracing off the messages are what they were before tracing: no
 * trace headers; the request's lines still carry the trace id received. */
START_TEST(untraced_service_sends_no_trace_headers)
{
	char trace_id[33], span_id[17], parent[56], id[UID_TEXT_SIZE], needle[64], cmd[80];
	struct topic_in msg;

	random_context(trace_id, span_id, parent);
	post_traced(untraced_port(), parent, id, &msg);
	ck_assert_msg(topic_in_header(&msg, "traceparent") == NULL, "traceparent header '%s'",
	              topic_in_header(&msg, "traceparent"));
	ck_assert_msg(topic_in_header(&msg, "tracestate") == NULL, "tracestate header '%s'",
	              topic_in_header(&msg, "tracestate"));
	ck_assert_msg(topic_in_header(&msg, "correlationId") != NULL, "no correlationId header");
	topic_in_clear(&msg);
	snprintf(needle, sizeof(needle), "\"trace_id\":\"%s\"", trace_id);
	snprintf(cmd, sizeof(cmd), "\"command_id\":\"%s\"", id);
	const char *command_line[] = {needle, cmd, "accepted", NULL};
	ck_assert_msg(log_has_line(untraced.log_path, command_line, 5000),
	              "no line of %s about %s carries trace id %s", untraced.log_path, id, trace_id);
}
END_TEST

/* A bad tracing setting stops each service at start-up: exit 2 and a line
 * naming the variable. */
START_TEST(bad_tracing_setting_stops_start_up)
{
	const enum stack_service which = (enum stack_service)_i;
	const char *extra[] = {"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9", "OTEL_TRACES_SAMPLER=sometimes",
	                       NULL};
	char log_name[64], line[512], errstr[512];
	struct svc s;
	long deadline;
	bool named = false;
	FILE *f;

	snprintf(log_name, sizeof(log_name), "bad-tracing-%d.log", _i);
	ck_assert_msg(stack_spawn(&s, which, stack.port[STACK_COMMAND] + 9, stack_name(which),
	                          log_name, extra, errstr, sizeof(errstr)) == 0,
	              "%s", errstr);
	deadline = clock_mono_ms() + 20000;
	while (svc_alive(&s) && clock_mono_ms() < deadline)
		proc_sleep_ms(20);
	if (svc_alive(&s))
		svc_stop(&s, SIGKILL, 5000, NULL);
	ck_assert_msg(s.status == 2, "%s: exit status %d, want 2 (log: %s)", stack_name(which),
	              s.status, s.log_path);
	f = fopen(s.log_path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL)
		named |= strstr(line, "OTEL_TRACES_SAMPLER") != NULL;
	fclose(f);
	ck_assert_msg(named, "%s: nothing in %s names OTEL_TRACES_SAMPLER", stack_name(which),
	              s.log_path);
}
END_TEST

Suite *make_correlation_suite(void)
{
	Suite *s = suite_create("correlation");
	TCase *tc;

	tc = tcase_create("http");
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, bad_cid_400, 0, N(bad_cids));
	tcase_add_loop_test(tc, good_cid_echoed, 0, N(good_cids));
	tcase_add_test(tc, missing_cid_generated);
	suite_add_tcase(s, tc);

	tc = tcase_create("kafka");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, cid_in_kafka_headers, 0, N(kafka_cids));
	suite_add_tcase(s, tc);

	tc = tcase_create("trace");
	tcase_set_timeout(tc, 120);
	tcase_add_unchecked_fixture(tc, trace_services_start, trace_services_stop);
	tcase_add_test(tc, traceparent_continues_into_kafka_and_log_lines);
	tcase_add_test(tc, traced_service_has_exporter_metrics);
	tcase_add_test(tc, untraced_service_sends_no_trace_headers);
	tcase_add_loop_test(tc, bad_tracing_setting_stops_start_up, 0, STACK_N);
	suite_add_tcase(s, tc);
	return s;
}
