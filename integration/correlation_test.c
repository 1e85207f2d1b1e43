/* correlation_test: the correlationId header (or X-Correlation-ID): any
 * UUID accepted and echoed, generated when absent, 400 when not a UUID, and
 * carried into the Kafka message's headers. */
#include <check.h>
#include <librdkafka/rdkafka.h>
#include <strings.h>
#include <string.h>

#include "checks.h"
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
	return s;
}
