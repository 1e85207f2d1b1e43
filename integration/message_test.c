/* message_test: how the consumer reads the wire format: unknown fields are
 * ignored, the record timestamp (CreateTime) becomes created_at exactly,
 * finer event digits are truncated to microseconds, ids are case-blind. */
#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "checks.h"
#include "suites.h"
#include "topic.h"
#include "uid.h"

/* Message values ("%s" stands for the id), the record timestamp, and the
 * record the query service must answer. */
static const struct {
	const char *value;
	int upper_id; /* put the id in upper case into the message */
	int64_t ts_ms;
	const char *event, *created;
} messages[] = {
    {"{\"command_id\":\"%s\",\"event_timestamp\":\"2009-09-28T19:03:12.123456789Z\"}", 0,
     1254164592123, "2009-09-28T19:03:12.123456Z", "2009-09-28T19:03:12.123Z"},
    {"{\"event_timestamp\":\"2009-09-28T19:03:12Z\",\"command_id\":\"%s\",\"source\":\"legacy\","
     "\"n\":1,\"o\":{\"a\":[1,2.5,true]},\"x\":null}",
     0, 1254164592000, "2009-09-28T19:03:12Z", "2009-09-28T19:03:12Z"},
    {" \n{ \"command_id\" : \"%s\" ,\n \"event_timestamp\" : \"2009-09-28T19:03:12.5Z\" }\n ", 0,
     1254164592500, "2009-09-28T19:03:12.5Z", "2009-09-28T19:03:12.5Z"},
    {"{\"command_id\":\"%s\",\"event_timestamp\":\"2009-09-28T19:03:12.000001Z\"}", 1,
     946684800001, "2009-09-28T19:03:12.000001Z", "2000-01-01T00:00:00.001Z"},
};

#define N_MESSAGES ((int)(sizeof(messages) / sizeof(messages[0])))

START_TEST(message_read)
{
	char id[UID_TEXT_SIZE], wire_id[UID_TEXT_SIZE], value[512], errstr[512];
	const char *at = strstr(messages[_i].value, "%s");
	struct topic_out out = {.partition = TOPIC_ANY_PARTITION, .ts_ms = messages[_i].ts_ms};
	json_object *rec;

	uid_v4(id);
	for (int i = 0; i < UID_TEXT_SIZE; i++)
		wire_id[i] = messages[_i].upper_id ? (char)toupper((unsigned char)id[i]) : id[i];
	ck_assert(at != NULL);
	snprintf(value, sizeof(value), "%.*s%s%s", (int)(at - messages[_i].value),
	         messages[_i].value, wire_id, at + 2);
	out.key = wire_id;
	out.value = value;
	out.value_len = strlen(value);
	ck_assert_msg(topic_produce(stack.broker, stack.topic, &out, 1, errstr, sizeof(errstr)) == 0,
	              "%s", errstr);
	rec = get_record(id);
	ck_assert_msg(strcmp(json_str(rec, "event_timestamp"), messages[_i].event) == 0,
	              "%s: event_timestamp %s, want %s", value, json_str(rec, "event_timestamp"),
	              messages[_i].event);
	ck_assert_msg(strcmp(json_str(rec, "created_at"), messages[_i].created) == 0,
	              "record timestamp %lld: created_at %s, want %s", (long long)messages[_i].ts_ms,
	              json_str(rec, "created_at"), messages[_i].created);
	json_object_put(rec);
}
END_TEST

/* A record read with its id in upper case is the same record. */
START_TEST(id_case_blind)
{
	char id[UID_TEXT_SIZE], upper[UID_TEXT_SIZE];
	json_object *rec;

	post_ticket("/api/v1/timestamp/2009-09-28T19:03:12Z", NULL, id);
	json_object_put(get_record(id));
	for (int i = 0; i < UID_TEXT_SIZE; i++)
		upper[i] = (char)toupper((unsigned char)id[i]);
	{
		struct http_resp resp;
		char url[256];

		stack_url(url, sizeof(url), STACK_QUERY, "/api/v1/timestamp/%s", upper);
		ck_assert_msg(http_get(url, NULL, &resp) == 0, "GET %s: %s", url, resp.errstr);
		rec = check_json_200(&resp);
		ck_assert_str_eq(json_str(rec, "id"), id);
		json_object_put(rec);
		http_resp_clear(&resp);
	}
}
END_TEST

Suite *make_message_suite(void)
{
	Suite *s = suite_create("message");
	TCase *tc = tcase_create("wire");

	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, message_read, 0, N_MESSAGES);
	tcase_add_test(tc, id_case_blind);
	suite_add_tcase(s, tc);
	return s;
}
