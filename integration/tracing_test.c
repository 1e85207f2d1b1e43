/* tracing_test: one ticket's trace, read back from a real collector
 * (Jaeger, started by scripts/integration.sh; the services export to it
 * with OTLP/HTTP): the POST's server span continues the client's
 * traceparent, the publish is its child, the Kafka header carries that
 * context to the consumer's span, the GET and its SELECT continue the
 * client's trace too, and the batch INSERT (a trace of its own) links the
 * message. A request without a traceparent, or with an invalid one, starts
 * a trace (the request's log line names it); a collector that is down or
 * frozen fails and slows no request, and the spans it could not take are
 * counted in /metrics. The stack's services export binary protobuf (OTLP's
 * default); a command service of this suite's own exports JSON, into the
 * same trace; a message key that is not UTF-8 reaches Jaeger as UTF-8.
 *
 * Jaeger's query API (v1 JSON): a trace is {"traceID", "spans": [{"spanID",
 * "operationName", "references": [{"refType": "CHILD_OF"|"FOLLOWS_FROM",
 * "traceID", "spanID"}], "tags": [{"key", "type", "value"}], "processID"}],
 * "processes": {"p1": {"serviceName"}}}; OTLP's parent becomes the CHILD_OF
 * reference, a link a FOLLOWS_FROM one, the span kind the tag span.kind, the
 * trace state the tag w3c.tracestate.
 * Jaeger prints a trace id without its leading zeros. */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "checks.h"
#include "msg.h"
#include "suites.h"
#include "topic.h"
#include "uid.h"

#define TS_PATH "/api/v1/timestamp"
/* accept -> the whole trace in Jaeger: the record's READ_TIMEOUT_MS, then
 * the last spans' export (every 100 ms here) on a loaded machine. */
#define TRACE_TIMEOUT_MS 30000

/* n random bytes as lowercase hex into out[2n+1], never all zero. */
static void random_hex(char *out, size_t n)
{
	unsigned char b[16];

	ck_assert(n <= sizeof(b));
	ck_assert_msg(getrandom(b, n, 0) == (ssize_t)n, "getrandom: %s", strerror(errno));
	b[0] |= 0x10; /* not zero, and the text has no leading zero */
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

/* Trace ids equal, ignoring leading zeros (Jaeger drops them). */
static bool trace_id_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return false;
	a += strspn(a, "0");
	b += strspn(b, "0");
	return strcmp(a, b) == 0;
}

/* Both strings there and equal. */
static bool str_eq(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* GET <Jaeger><path> as JSON (the caller puts it), or NULL when it did not
 * answer 200 with JSON. */
static json_object *jaeger_get(const char *path)
{
	struct http_resp resp;
	json_object *jobj = NULL;
	char url[1024];

	ck_assert_msg(*stack.jaeger_url != '\0', "no TEST_JAEGER_URL: the tracing suite needs "
	              "the collector scripts/integration.sh starts");
	snprintf(url, sizeof(url), "%s%s", stack.jaeger_url, path);
	if (http_get(url, NULL, &resp) == 0 && resp.status == 200)
		jobj = http_resp_json(&resp);
	http_resp_clear(&resp);
	return jobj;
}

/* The array member key of obj, or NULL. */
static json_object *array_of(json_object *obj, const char *key)
{
	json_object *v;

	if (obj == NULL || !json_object_object_get_ex(obj, key, &v) ||
	    !json_object_is_type(v, json_type_array))
		return NULL;
	return v;
}

/* The service name of a span of trace. */
static const char *span_service(json_object *trace, json_object *span)
{
	json_object *procs, *proc;
	const char *pid = json_str(span, "processID");

	if (pid == NULL || !json_object_object_get_ex(trace, "processes", &procs) ||
	    !json_object_object_get_ex(procs, pid, &proc))
		return NULL;
	return json_str(proc, "serviceName");
}

/* The tag key of span (the value object), or NULL. */
static json_object *tag(json_object *span, const char *key)
{
	json_object *tags = array_of(span, "tags");

	for (size_t i = 0; tags != NULL && i < json_object_array_length(tags); i++) {
		json_object *t = json_object_array_get_idx(tags, i), *v;
		const char *k = json_str(t, "key");
		if (k != NULL && strcmp(k, key) == 0 && json_object_object_get_ex(t, "value", &v))
			return v;
	}
	return NULL;
}

/* Asserts that span has the string tag key equal to want. */
static void check_tag(json_object *span, const char *key, const char *want)
{
	json_object *v = tag(span, key);

	ck_assert_msg(v != NULL && json_object_is_type(v, json_type_string) &&
	                  strcmp(json_object_get_string(v), want) == 0,
	              "span '%s': tag %s is %s, want \"%s\"", json_str(span, "operationName"), key,
	              v ? json_object_to_json_string(v) : "absent", want);
}

/* Asserts that span has the integer tag key, and returns it. */
static int64_t check_int_tag(json_object *span, const char *key)
{
	json_object *v = tag(span, key);

	ck_assert_msg(v != NULL && json_object_is_type(v, json_type_int),
	              "span '%s': tag %s is %s, want an integer",
	              json_str(span, "operationName"), key,
	              v ? json_object_to_json_string(v) : "absent");
	return json_object_get_int64(v);
}

/* Asserts that span has messaging.destination.partition.id: a string (as
 * the semantic conventions have it) of a partition number. */
static void check_partition(json_object *span)
{
	json_object *v = tag(span, "messaging.destination.partition.id");
	const char *p = v != NULL && json_object_is_type(v, json_type_string)
	                    ? json_object_get_string(v) : "";

	ck_assert_msg(*p != '\0' && strspn(p, "0123456789") == strlen(p),
	              "span '%s': messaging.destination.partition.id is %s, want a partition "
	              "number as a string", json_str(span, "operationName"),
	              v ? json_object_to_json_string(v) : "absent");
}

/* The first reference of span of type ref_type ("CHILD_OF": the parent),
 * or NULL. */
static json_object *reference(json_object *span, const char *ref_type)
{
	json_object *refs = array_of(span, "references");

	for (size_t i = 0; refs != NULL && i < json_object_array_length(refs); i++) {
		json_object *r = json_object_array_get_idx(refs, i);
		if (str_eq(json_str(r, "refType"), ref_type))
			return r;
	}
	return NULL;
}

/* Asserts that span's parent is the span parent_id of trace trace_id. */
static void check_parent(json_object *span, const char *trace_id, const char *parent_id)
{
	json_object *r = reference(span, "CHILD_OF");

	ck_assert_msg(r != NULL, "span '%s' has no parent, want %s",
	              json_str(span, "operationName"), parent_id);
	ck_assert_msg(trace_id_eq(json_str(r, "traceID"), trace_id) &&
	                  str_eq(json_str(r, "spanID"), parent_id),
	              "span '%s': parent %s/%s, want %s/%s", json_str(span, "operationName"),
	              json_str(r, "traceID"), json_str(r, "spanID"), trace_id, parent_id);
}

/* The span of trace named name of service, or NULL; fails on two. */
static json_object *find_span(json_object *trace, const char *service, const char *name)
{
	json_object *spans = array_of(trace, "spans"), *found = NULL;

	for (size_t i = 0; spans != NULL && i < json_object_array_length(spans); i++) {
		json_object *s = json_object_array_get_idx(spans, i);
		const char *op = json_str(s, "operationName"), *svc = span_service(trace, s);
		if (!str_eq(op, name) || !str_eq(svc, service))
			continue;
		ck_assert_msg(found == NULL, "two spans '%s' of %s in trace %s", name, service,
		              json_str(trace, "traceID"));
		found = s;
	}
	return found;
}

/* The span among the traces of data (a search's answer) that links span
 * span_id of trace trace_id (a FOLLOWS_FROM reference), or NULL. */
static json_object *find_linking(json_object *data, const char *trace_id, const char *span_id)
{
	for (size_t t = 0; data != NULL && t < json_object_array_length(data); t++) {
		json_object *spans = array_of(json_object_array_get_idx(data, t), "spans");
		for (size_t i = 0; spans != NULL && i < json_object_array_length(spans); i++) {
			json_object *span = json_object_array_get_idx(spans, i);
			json_object *refs = array_of(span, "references");
			for (size_t r = 0; refs != NULL && r < json_object_array_length(refs); r++) {
				json_object *ref = json_object_array_get_idx(refs, r);
				if (trace_id_eq(json_str(ref, "traceID"), trace_id) &&
				    str_eq(json_str(ref, "spanID"), span_id) &&
				    str_eq(json_str(ref, "refType"), "FOLLOWS_FROM"))
					return span;
			}
		}
	}
	return NULL;
}

/* A span we wait for: service and operation name. */
struct want {
	const char *service, *name;
};

/* Polls Jaeger for trace trace_id until it has every span of want (n of
 * them), or TRACE_TIMEOUT_MS passes (then fails naming what is missing).
 * Returns the response (the caller puts it) and its trace in *trace. */
static json_object *await_trace(const char *trace_id, const struct want *want, size_t n,
                                json_object **trace)
{
	const long deadline = clock_mono_ms() + TRACE_TIMEOUT_MS;
	char path[128];
	const char *missing = NULL, *missing_service = "";

	snprintf(path, sizeof(path), "/api/traces/%s", trace_id);
	for (;;) {
		json_object *jobj = jaeger_get(path), *data = array_of(jobj, "data");

		missing = "the trace";
		if (data != NULL && json_object_array_length(data) == 1) {
			*trace = json_object_array_get_idx(data, 0);
			missing = NULL;
			for (size_t i = 0; i < n && missing == NULL; i++) {
				if (find_span(*trace, want[i].service, want[i].name) == NULL) {
					missing = want[i].name;
					missing_service = want[i].service;
				}
			}
			if (missing == NULL)
				return jobj;
		}
		json_object_put(jobj);
		ck_assert_msg(clock_mono_ms() < deadline, "trace %s in Jaeger: no %s span '%s' after %d ms",
		              trace_id, missing_service, missing, TRACE_TIMEOUT_MS);
		proc_sleep_ms(200);
	}
}

/* The span names of the POST, the GET, and the topic's publish and process. */
#define POST_SPAN "POST " TS_PATH "/{timestamp}"
#define GET_SPAN "GET " TS_PATH "/{id}"

static const char *publish_name(void)
{
	static char name[256];
	snprintf(name, sizeof(name), "%s publish", stack.topic);
	return name;
}

static const char *process_name(void)
{
	static char name[256];
	snprintf(name, sizeof(name), "%s process", stack.topic);
	return name;
}

/* The vendor data the client sends with its traceparent: it goes with the
 * context, through the Kafka header too. */
#define TRACESTATE "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"

/* One ticket, POSTed and read back by a client that continues its trace:
 * every span of the trace in Jaeger, their parents and attributes; the
 * batch INSERT (its own trace) links the message's span. */
START_TEST(one_ticket_is_one_trace)
{
	char trace_id[33], client_span[17], tp[128], cid_hdr[80], cid[37], id[UID_TEXT_SIZE];
	char url[256], path[512];
	const char *headers[] = {tp, "tracestate: " TRACESTATE, cid_hdr, NULL};
	const struct want want[] = {
	    {"command-service", POST_SPAN},       {"command-service", publish_name()},
	    {"consumer-service", process_name()}, {"query-service", GET_SPAN},
	    {"query-service", "SELECT timestamp_records"},
	};
	json_object *jobj, *trace, *post, *pub, *proc, *get, *select, *rec;
	struct http_resp resp;
	const long long started_us = (long long)ts_micros(ts_now()) - 1000000;

	random_hex(trace_id, 16);
	random_hex(client_span, 8);
	uid_v4(cid);
	snprintf(tp, sizeof(tp), "traceparent: 00-%s-%s-01", trace_id, client_span);
	snprintf(cid_hdr, sizeof(cid_hdr), "correlationId: %s", cid);

	post_ticket(TS_PATH "/2009-09-28T19:03:12Z", headers, id);
	rec = get_record(id); /* readable: an untraced poll, then the traced GET */
	json_object_put(rec);
	stack_url(url, sizeof(url), STACK_QUERY, TS_PATH "/%s", id);
	ck_assert_msg(http_get(url, headers, &resp) == 0, "GET %s: %s", url, resp.errstr);
	ck_assert_msg(resp.status == 200, "GET %s with a traceparent: %ld", url, resp.status);
	http_resp_clear(&resp);

	jobj = await_trace(trace_id, want, sizeof(want) / sizeof(want[0]), &trace);
	post = find_span(trace, "command-service", POST_SPAN);
	pub = find_span(trace, "command-service", publish_name());
	proc = find_span(trace, "consumer-service", process_name());
	get = find_span(trace, "query-service", GET_SPAN);
	select = find_span(trace, "query-service", "SELECT timestamp_records");

	/* The POST continues the client's span, with the request's attributes. */
	check_parent(post, trace_id, client_span);
	check_tag(post, "span.kind", "server");
	check_tag(post, "http.request.method", "POST");
	check_tag(post, "http.route", TS_PATH "/{timestamp}");
	check_tag(post, "url.path", TS_PATH "/2009-09-28T19:03:12Z");
	ck_assert_int_eq(check_int_tag(post, "http.response.status_code"), 200);
	check_tag(post, "correlation_id", cid);
	check_tag(post, "command_id", id);
	check_tag(post, "w3c.tracestate", TRACESTATE);

	/* The publish: the POST's child, ended at the delivery report. */
	check_parent(pub, trace_id, json_str(post, "spanID"));
	check_tag(pub, "span.kind", "producer");
	check_tag(pub, "messaging.system", "kafka");
	check_tag(pub, "messaging.destination.name", stack.topic);
	check_tag(pub, "messaging.kafka.message.key", id);
	check_tag(pub, "messaging.operation.type", "publish");
	check_int_tag(pub, "messaging.kafka.offset");
	check_partition(pub);
	check_tag(pub, "w3c.tracestate", TRACESTATE);

	/* The consumer continues the context the Kafka header carried: the
	 * publish span's, in another service. */
	check_parent(proc, trace_id, json_str(pub, "spanID"));
	check_tag(proc, "span.kind", "consumer");
	check_tag(proc, "messaging.system", "kafka");
	check_tag(proc, "messaging.destination.name", stack.topic);
	check_tag(proc, "messaging.kafka.message.key", id);
	check_tag(proc, "messaging.consumer.group.name", stack.group);
	check_tag(proc, "messaging.operation.type", "process");
	check_int_tag(proc, "messaging.kafka.offset");
	check_partition(proc);
	check_tag(proc, "w3c.tracestate", TRACESTATE);
	ck_assert_msg(!str_eq(json_object_get_string(tag(proc, "otel.status_code")), "ERROR"),
	              "the consumer span of a ticket that was written has status ERROR");

	/* The GET continues the client's span; the database read is its child. */
	check_parent(get, trace_id, client_span);
	check_tag(get, "span.kind", "server");
	check_tag(get, "http.request.method", "GET");
	check_tag(get, "http.route", TS_PATH "/{id}");
	ck_assert_int_eq(check_int_tag(get, "http.response.status_code"), 200);
	check_tag(get, "w3c.tracestate", TRACESTATE);
	check_parent(select, trace_id, json_str(get, "spanID"));
	check_tag(select, "span.kind", "client");
	check_tag(select, "db.system", "postgresql");
	check_tag(select, "db.operation.name", "SELECT");
	check_tag(select, "db.collection.name", "timestamp_records");
	ck_assert_msg(tag(select, "db.namespace") != NULL, "the SELECT span has no db.namespace");

	/* The batch INSERT that wrote the row: a root of its own trace, with a
	 * link to the message's span. Found among the consumer's INSERT spans
	 * since this test started. */
	snprintf(path, sizeof(path),
	         "/api/traces?service=consumer-service&operation=INSERT%%20timestamp_records"
	         "&start=%lld&end=%lld&limit=1000",
	         started_us, (long long)ts_micros(ts_now()) + 60000000);
	const long deadline = clock_mono_ms() + TRACE_TIMEOUT_MS;
	json_object *insert, *found;
	for (;;) {
		found = jaeger_get(path);
		insert = find_linking(array_of(found, "data"), trace_id, json_str(proc, "spanID"));
		if (insert != NULL)
			break;
		json_object_put(found);
		ck_assert_msg(clock_mono_ms() < deadline,
		              "no INSERT span of consumer-service links span %s of trace %s after %d ms",
		              json_str(proc, "spanID"), trace_id, TRACE_TIMEOUT_MS);
		proc_sleep_ms(200);
	}
	ck_assert_msg(reference(insert, "CHILD_OF") == NULL, "the INSERT span has a parent");
	ck_assert_msg(!trace_id_eq(json_str(insert, "traceID"), trace_id),
	              "the INSERT span is in the message's trace, not a trace of its own");
	check_tag(insert, "span.kind", "client");
	check_tag(insert, "db.system", "postgresql");
	check_tag(insert, "db.operation.name", "INSERT");
	check_tag(insert, "db.collection.name", "timestamp_records");
	ck_assert_int_ge(check_int_tag(insert, "messaging.batch.message_count"), 1);
	json_object_put(found);
	json_object_put(jobj);
}
END_TEST

/* OTEL_EXPORTER_OTLP_PROTOCOL=http/json: a command service of the test's
 * own exports JSON to Jaeger, the stack's consumer protobuf, and the
 * ticket's POST, publish and process spans are one trace, with their
 * attributes. */
START_TEST(json_export_joins_the_protobuf_one)
{
	char endpoint[256], base[64], url[256], errstr[512], id[UID_TEXT_SIZE], cid[37];
	char trace_id[33], client_span[17], tp[128], cid_hdr[80];
	const char *extra[] = {endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL=http/json", NULL};
	const char *headers[] = {tp, "tracestate: " TRACESTATE, cid_hdr, NULL};
	const struct want want[] = {{"command-service", POST_SPAN},
	                            {"command-service", publish_name()},
	                            {"consumer-service", process_name()}};
	/* 17092: collector_down_fails_no_request uses +10 and +11 */
	const int port = stack.port[STACK_COMMAND] + 12;
	json_object *jobj, *rec, *trace, *post, *pub, *proc;
	struct http_resp resp;
	struct svc s;
	int rc;

	ck_assert_msg(*stack.otlp_endpoint != '\0', "no TEST_OTLP_ENDPOINT: the tracing suite needs "
	              "the collector scripts/integration.sh starts");
	snprintf(endpoint, sizeof(endpoint), "OTEL_EXPORTER_OTLP_ENDPOINT=%s", stack.otlp_endpoint);
	ck_assert_msg(stack_spawn(&s, STACK_COMMAND, port, "command-service (http/json)",
	                          "tracing-json.log", extra, errstr, sizeof(errstr)) == 0,
	              "%s", errstr);
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
	snprintf(url, sizeof(url), "%s/ready", base);
	ck_assert_msg(wait_ready(url, 30000, &s, errstr, sizeof(errstr)) == 0,
	              "command service with http/json not ready: %s", errstr);

	random_hex(trace_id, 16);
	random_hex(client_span, 8);
	uid_v4(cid);
	snprintf(tp, sizeof(tp), "traceparent: 00-%s-%s-01", trace_id, client_span);
	snprintf(cid_hdr, sizeof(cid_hdr), "correlationId: %s", cid);
	snprintf(url, sizeof(url), "%s" TS_PATH "/2009-09-28T19:03:12Z", base);
	ck_assert_msg(http_post(url, headers, &resp) == 0, "POST %s: %s", url, resp.errstr);
	jobj = check_json_200(&resp);
	snprintf(id, sizeof(id), "%s", json_str(jobj, "id"));
	json_object_put(jobj);
	http_resp_clear(&resp);
	rec = get_record(id);
	json_object_put(rec);

	jobj = await_trace(trace_id, want, sizeof(want) / sizeof(want[0]), &trace);
	post = find_span(trace, "command-service", POST_SPAN);
	pub = find_span(trace, "command-service", publish_name());
	proc = find_span(trace, "consumer-service", process_name());
	check_parent(post, trace_id, client_span);
	check_tag(post, "span.kind", "server");
	check_tag(post, "correlation_id", cid);
	check_tag(post, "command_id", id);
	check_tag(post, "w3c.tracestate", TRACESTATE);
	ck_assert_int_eq(check_int_tag(post, "http.response.status_code"), 200);
	check_parent(pub, trace_id, json_str(post, "spanID"));
	check_tag(pub, "messaging.kafka.message.key", id);
	check_int_tag(pub, "messaging.kafka.offset");
	check_parent(proc, trace_id, json_str(pub, "spanID"));
	check_tag(proc, "messaging.kafka.message.key", id);
	json_object_put(jobj);

	rc = svc_stop(&s, SIGTERM, 10000, NULL);
	ck_assert_msg(rc == 0, "command service with http/json: exit status %d after SIGTERM", rc);
}
END_TEST

/* A message another producer wrote with a key that is not UTF-8: its
 * span reaches Jaeger, the key with U+FFFD for each such byte. A protobuf
 * string must be UTF-8, and a collector may refuse a whole export (every
 * span in it) for one that is not. */
START_TEST(message_key_that_is_not_utf8_still_reaches_the_collector)
{
	char trace_id[33], span_id[17], tp[64], value[MSG_ENCODED_MAX], errstr[512];
	const char *hdrs[] = {"traceparent", tp, NULL};
	const struct want want[] = {{"consumer-service", process_name()}};
	struct msg_command m = {.event_time = {.sec = 1254164592}};
	struct topic_out out;
	json_object *jobj, *trace, *proc;
	size_t len;

	random_hex(trace_id, 16);
	random_hex(span_id, 8);
	snprintf(tp, sizeof(tp), "00-%s-%s-01", trace_id, span_id);
	uid_v4(m.command_id);
	len = msg_encode(&m, value);
	out = (struct topic_out){.key = "caf\xc3\xa9\xff\xfe", .value = value, .value_len = len,
	                         .partition = TOPIC_ANY_PARTITION, .headers = hdrs};
	ck_assert_msg(topic_produce(stack.broker, stack.topic, &out, 1, errstr, sizeof(errstr)) == 0,
	              "%s", errstr);
	json_object_put(get_record(m.command_id)); /* written: rows are keyed by the value's id */

	jobj = await_trace(trace_id, want, 1, &trace);
	proc = find_span(trace, "consumer-service", process_name());
	check_parent(proc, trace_id, span_id);
	check_tag(proc, "messaging.kafka.message.key", "caf\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd");
	json_object_put(jobj);
}
END_TEST

/* The trace whose command-service POST span has the tag command_id=id,
 * polled for until it has the POST, publish and process spans; the trace id
 * goes to trace_id[33]. Returns the response (the caller puts it) and the
 * trace in *trace. */
static json_object *trace_of_ticket(const char *id, char *trace_id, json_object **trace)
{
	const long deadline = clock_mono_ms() + TRACE_TIMEOUT_MS;
	char path[512];
	json_object *jobj, *data;

	/* tags={"command_id":"<id>"}, URL-encoded */
	snprintf(path, sizeof(path),
	         "/api/traces?service=command-service&tags=%%7B%%22command_id%%22%%3A%%22%s%%22%%7D"
	         "&lookback=1h&limit=10",
	         id);
	for (;;) {
		jobj = jaeger_get(path);
		data = array_of(jobj, "data");
		if (data != NULL && json_object_array_length(data) > 0)
			break;
		json_object_put(jobj);
		ck_assert_msg(clock_mono_ms() < deadline, "no trace with command_id %s after %d ms",
		              id, TRACE_TIMEOUT_MS);
		proc_sleep_ms(200);
	}
	ck_assert_msg(json_object_array_length(data) == 1, "%zu traces with command_id %s",
	              json_object_array_length(data), id);
	snprintf(trace_id, 33, "%s", json_str(json_object_array_get_idx(data, 0), "traceID"));
	json_object_put(jobj);

	const struct want want[] = {{"command-service", POST_SPAN},
	                            {"command-service", publish_name()},
	                            {"consumer-service", process_name()}};
	return await_trace(trace_id, want, 3, trace);
}

/* The trace_id of the command service's log line about ticket id into
 * out[33] (polled: the line may trail the answer). Fails when there is none. */
static void logged_trace_id(const char *id, char *out)
{
	const long deadline = clock_mono_ms() + 10000;
	char path[1024], line[4096];

	snprintf(path, sizeof(path), "%s/command-service.log", stack.state_dir);
	for (;;) {
		FILE *f = fopen(path, "r");
		const char *t = NULL;

		ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
		while (t == NULL && fgets(line, sizeof(line), f) != NULL) {
			if (strstr(line, id) != NULL && (t = strstr(line, "\"trace_id\":\"")) != NULL)
				t += strlen("\"trace_id\":\"");
		}
		fclose(f);
		if (t != NULL) {
			ck_assert_msg(strspn(t, "0123456789abcdef") == 32 && t[32] == '"',
			              "log line about %s: trace_id is not 32 hex digits: %s", id, line);
			memcpy(out, t, 32);
			out[32] = '\0';
			return;
		}
		ck_assert_msg(clock_mono_ms() < deadline, "no line with %s and a trace_id in %s", id,
		              path);
		proc_sleep_ms(100);
	}
}

/* Headers that are no valid traceparent: each POST is a 200 and starts a
 * trace of its own (the first has none at all). */
static const char *const bad_parents[] = {
    NULL,
    "traceparent: garbage",
    "traceparent: 00-00000000000000000000000000000000-00f067aa0ba902b7-01", /* zero trace id */
    "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", /* zero span id */
    "traceparent: ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", /* version ff */
    "traceparent: 00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", /* upper case */
    "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  /* 31 digits */
    "traceparent;",                                                          /* empty */
};

START_TEST(no_valid_traceparent_starts_a_trace)
{
	const char *headers[] = {bad_parents[_i], "tracestate: congo=t61rcWkgMzE", NULL};
	char id[UID_TEXT_SIZE], trace_id[33], logged[33], url[256];
	json_object *jobj, *trace, *post;
	struct http_resp resp;

	post_ticket(TS_PATH "/2009-09-28T19:03:12Z", headers, id);
	/* The query service too answers, rather than refusing the header. */
	stack_url(url, sizeof(url), STACK_QUERY, TS_PATH "/%s", id);
	ck_assert_msg(http_get(url, headers, &resp) == 0, "GET %s: %s", url, resp.errstr);
	ck_assert_msg(resp.status == 200 || resp.status == 404, "GET with '%s': %ld",
	              bad_parents[_i] ? bad_parents[_i] : "(none)", resp.status);
	http_resp_clear(&resp);

	jobj = trace_of_ticket(id, trace_id, &trace);
	post = find_span(trace, "command-service", POST_SPAN);
	ck_assert_msg(reference(post, "CHILD_OF") == NULL,
	              "with '%s' the POST span has a parent", bad_parents[_i] ? bad_parents[_i] : "");
	ck_assert_msg(!trace_id_eq(trace_id, "4bf92f3577b34da6a3ce929d0e0e4736"),
	              "the invalid traceparent's trace id was used");
	/* The log line about the request names the same trace. */
	logged_trace_id(id, logged);
	ck_assert_msg(trace_id_eq(logged, trace_id), "ticket %s: trace %s in Jaeger, %s in the log",
	              id, trace_id, logged);
	/* The new trace goes across Kafka (trace_of_ticket waited for the
	 * consumer's span in it): the consumer continues the publish span. */
	check_parent(find_span(trace, "consumer-service", process_name()),
	             trace_id, json_str(find_span(trace, "command-service", publish_name()), "spanID"));
	json_object_put(jobj);
}
END_TEST

/* A client that does not sample its trace (flags 00): no service records a
 * span of it, the consumer neither (the Kafka header carries the flag).
 * Absence needs a barrier: a sampled ticket sent afterwards, whose whole
 * trace is awaited; each service exports its spans in the order they end,
 * and the unsampled ticket's spans end first in each of them. */
START_TEST(unsampled_parent_records_nothing)
{
	char trace_id[33], span_id[17], tp[128], id[UID_TEXT_SIZE], path[128];
	char later_id[UID_TEXT_SIZE], later_trace[33];
	const char *headers[] = {tp, NULL};
	json_object *jobj, *trace, *data;

	random_hex(trace_id, 16);
	random_hex(span_id, 8);
	snprintf(tp, sizeof(tp), "traceparent: 00-%s-%s-00", trace_id, span_id);
	post_ticket(TS_PATH "/2009-09-28T19:03:12Z", headers, id);
	json_object_put(get_record(id)); /* consumed, and its batch committed */

	post_ticket(TS_PATH "/2009-09-28T19:03:12Z", NULL, later_id);
	json_object_put(get_record(later_id));
	json_object_put(trace_of_ticket(later_id, later_trace, &trace));

	snprintf(path, sizeof(path), "/api/traces/%s", trace_id);
	jobj = jaeger_get(path);
	data = array_of(jobj, "data");
	ck_assert_msg(data == NULL || json_object_array_length(data) == 0,
	              "the unsampled trace %s of ticket %s is in Jaeger, with %zu spans", trace_id,
	              id, json_object_array_length(array_of(json_object_array_get_idx(data, 0), "spans")));
	json_object_put(jobj);
}
END_TEST

/* A collector that never answers: a listening socket that accepts nothing
 * (the connection completes in the kernel's backlog, the request is never
 * read). Or one that refuses: a bound socket that does not listen. Returns
 * the socket (to close) and its port in *port. */
static int dead_collector(bool frozen, int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
	ck_assert_msg(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind: %s", strerror(errno));
	ck_assert_msg(!frozen || listen(fd, 8) == 0, "listen: %s", strerror(errno));
	ck_assert_msg(getsockname(fd, (struct sockaddr *)&a, &len) == 0, "getsockname: %s",
	              strerror(errno));
	*port = ntohs(a.sin_port);
	return fd;
}

/* Requests per run of collector_down_fails_no_request. */
#define DEAD_REQUESTS 100
/* An export to the frozen collector waits this long: a request that waited
 * for it would take as long. */
#define DEAD_EXPORT_TIMEOUT_MS 20000
#define STR(x) #x
#define XSTR(x) STR(x)
/* What a request may take, far below the export timeout. */
#define DEAD_REQUEST_BOUND_MS 5000

/* A command service whose collector is refused (_i 0) or frozen (_i 1):
 * every POST is a 200 in far less than an export's timeout, the tickets are
 * written, the spans it could not export are counted as dropped, and it
 * still stops cleanly within the 10 s of SIGTERM. */
START_TEST(collector_down_fails_no_request)
{
	const bool frozen = _i == 1;
	char endpoint[128], log_name[64], base[64], url[256], errstr[512], id[UID_TEXT_SIZE];
	char tp[128], trace_id[33], span_id[17];
	const char *extra[] = {endpoint,
	                       "OTEL_EXPORTER_OTLP_TIMEOUT=" XSTR(DEAD_EXPORT_TIMEOUT_MS),
	                       "OTEL_BSP_MAX_QUEUE_SIZE=16",
	                       "OTEL_BSP_MAX_EXPORT_BATCH_SIZE=8",
	                       NULL};
	const char *headers[] = {tp, NULL};
	const char *series = frozen ? "trace_spans_total{result=\"dropped_queue_full\"}"
	                            : "trace_spans_total{result=\"dropped_export_failed\"}";
	/* 17090, 17091: the other suites use +6 to +9 (correlation, read_url) */
	const int port = stack.port[STACK_COMMAND] + 10 + _i;
	struct http_resp resp;
	struct svc s;
	int collector, collector_port, rc;
	long deadline, elapsed;
	double dropped = -1, errors = -1;

	collector = dead_collector(frozen, &collector_port);
	snprintf(endpoint, sizeof(endpoint), "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:%d",
	         collector_port);
	snprintf(log_name, sizeof(log_name), "tracing-collector-%s.log", frozen ? "frozen" : "refused");
	ck_assert_msg(stack_spawn(&s, STACK_COMMAND, port, "command-service (collector down)",
	                          log_name, extra, errstr, sizeof(errstr)) == 0,
	              "%s", errstr);
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
	snprintf(url, sizeof(url), "%s/ready", base);
	ck_assert_msg(wait_ready(url, 30000, &s, errstr, sizeof(errstr)) == 0,
	              "command service with its collector %s not ready: %s",
	              frozen ? "frozen" : "refusing", errstr);

	for (int i = 0; i < DEAD_REQUESTS; i++) {
		random_hex(trace_id, 16);
		random_hex(span_id, 8);
		snprintf(tp, sizeof(tp), "traceparent: 00-%s-%s-01", trace_id, span_id);
		snprintf(url, sizeof(url), "%s" TS_PATH "/2009-09-28T19:03:12Z", base);
		const long t0 = clock_mono_ms();
		ck_assert_msg(http_post(url, headers, &resp) == 0, "POST %d: %s", i, resp.errstr);
		elapsed = clock_mono_ms() - t0;
		ck_assert_msg(resp.status == 200, "POST %d with the collector %s: %ld %s", i,
		              frozen ? "frozen" : "refusing", resp.status, resp.body ? resp.body : "");
		ck_assert_msg(elapsed < DEAD_REQUEST_BOUND_MS,
		              "POST %d took %ld ms with the collector %s (export timeout %d ms)", i,
		              elapsed, frozen ? "frozen" : "refusing", DEAD_EXPORT_TIMEOUT_MS);
		if (i == DEAD_REQUESTS - 1) {
			json_object *jobj = check_json_200(&resp);
			snprintf(id, sizeof(id), "%s", json_str(jobj, "id"));
			json_object_put(jobj);
		}
		http_resp_clear(&resp);
	}
	/* Nothing lost: the last ticket is written. */
	json_object_put(get_record(id));

	/* The exporter counts what it could not deliver (it runs on its own
	 * schedule: polled). Refused: the exports fail; frozen: the first
	 * export hangs, so the bounded queue overflows. */
	snprintf(url, sizeof(url), "%s/metrics", base);
	deadline = clock_mono_ms() + 15000;
	for (;;) {
		dropped = metric_value(url, series);
		errors = metric_value(url, "trace_export_requests_total{result=\"error\"}");
		if (dropped > 0 && (frozen || errors > 0))
			break;
		ck_assert_msg(clock_mono_ms() < deadline,
		              "after 15 s with the collector %s: %s %g, "
		              "trace_export_requests_total{result=\"error\"} %g",
		              frozen ? "frozen" : "refusing", series, dropped, errors);
		proc_sleep_ms(100);
	}
	ck_assert_msg(metric_value(url, "trace_spans_total{result=\"exported\"}") <= 0,
	              "spans counted as exported to a collector that took none");

	/* SIGTERM: exit 0 within the 10 s every service keeps (DESIGN.md),
	 * though an export may hang for DEAD_EXPORT_TIMEOUT_MS. */
	rc = svc_stop(&s, SIGTERM, 10000, &elapsed);
	close(collector);
	ck_assert_msg(rc != SVC_TIMED_OUT, "command service with the collector %s still ran 10 s "
	              "after SIGTERM (killed; log %s)", frozen ? "frozen" : "refusing", log_name);
	ck_assert_msg(rc == 0, "command service with the collector %s: exit status %d after "
	              "SIGTERM (log %s)", frozen ? "frozen" : "refusing", rc, log_name);
}
END_TEST

Suite *make_tracing_suite(void)
{
	Suite *s = suite_create("tracing");
	TCase *tc;

	tc = tcase_create("trace");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, one_ticket_is_one_trace);
	tcase_add_loop_test(tc, no_valid_traceparent_starts_a_trace, 0,
	                    (int)(sizeof(bad_parents) / sizeof(bad_parents[0])));
	tcase_add_test(tc, unsampled_parent_records_nothing);
	tcase_add_test(tc, json_export_joins_the_protobuf_one);
	tcase_add_test(tc, message_key_that_is_not_utf8_still_reaches_the_collector);
	suite_add_tcase(s, tc);

	tc = tcase_create("collector_down");
	tcase_set_timeout(tc, 180);
	tcase_add_loop_test(tc, collector_down_fails_no_request, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}
