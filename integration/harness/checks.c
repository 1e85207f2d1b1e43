/* checks: shared assertions of the integration suites. */
#include "checks.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "topic.h"
#include "uid.h"

bool is_uuid(const char *s)
{
	return s != NULL && uid_valid(s, strlen(s));
}

void check_error(const struct http_resp *resp, long status)
{
	json_object *jobj = http_resp_json(resp);
	const char *error = json_str(jobj, "error"), *cid = json_str(jobj, "correlationId");

	ck_assert_msg(resp->status == status, "expected %ld, got %ld: %s", status,
	              resp->status, resp->body ? resp->body : resp->errstr);
	ck_assert_msg(strncmp(resp->content_type, "application/json", 16) == 0,
	              "error Content-Type '%s'", resp->content_type);
	ck_assert_msg(jobj != NULL, "error body is not a JSON object: %s",
	              resp->body ? resp->body : "(none)");
	ck_assert_msg(error != NULL && error[0] != '\0', "no \"error\" string: %s", resp->body);
	ck_assert_msg(is_uuid(cid), "no UUID \"correlationId\": %s", resp->body);
	ck_assert_msg(strcmp(cid, resp->cid) == 0,
	              "body correlationId %s differs from the header's '%s'", cid, resp->cid);
	json_object_put(jobj);
}

json_object *check_json_200(const struct http_resp *resp)
{
	json_object *jobj;

	ck_assert_msg(resp->status == 200, "expected 200, got %ld: %s", resp->status,
	              resp->body ? resp->body : resp->errstr);
	ck_assert_msg(strncmp(resp->content_type, "application/json", 16) == 0,
	              "Content-Type '%s'", resp->content_type);
	jobj = http_resp_json(resp);
	ck_assert_msg(jobj != NULL, "body is not a JSON object: %s", resp->body);
	return jobj;
}

void post_ticket(const char *path, const char *const *headers, char *id)
{
	struct http_resp resp;
	json_object *jobj;
	const char *got;
	char url[1024];

	stack_url(url, sizeof(url), STACK_COMMAND, "%s", path);
	ck_assert_msg(http_post(url, headers, &resp) == 0, "POST %s: %s", path, resp.errstr);
	jobj = check_json_200(&resp);
	got = json_str(jobj, "id");
	ck_assert_msg(is_uuid(got), "POST %s: no UUID id in %s", path, resp.body);
	ck_assert_int_eq(json_object_object_length(jobj), 1);
	memcpy(id, got, UID_TEXT_SIZE);
	json_object_put(jobj);
	http_resp_clear(&resp);
}

json_object *get_record(const char *id)
{
	struct http_resp resp;
	json_object *jobj;
	int rc = wait_record(id, READ_TIMEOUT_MS, &resp);

	ck_assert_msg(rc == 0, "record %s not readable within %d ms: last %ld %s", id,
	              READ_TIMEOUT_MS, resp.status, resp.body ? resp.body : resp.errstr);
	jobj = check_json_200(&resp);
	json_object_object_foreach(jobj, key, val)
	{
		ck_assert_msg(json_object_is_type(val, json_type_string),
		              "record member %s is not a JSON string: %s", key, resp.body);
	}
	ck_assert_msg(json_str(jobj, "id") && strcmp(json_str(jobj, "id"), id) == 0,
	              "record id differs from ticket %s: %s", id, resp.body);
	ck_assert_msg(json_str(jobj, "command_id") && strcmp(json_str(jobj, "command_id"), id) == 0,
	              "record command_id differs from ticket %s: %s", id, resp.body);
	ck_assert_msg(json_str(jobj, "event_timestamp") != NULL, "no event_timestamp: %s",
	              resp.body);
	ck_assert_msg(json_str(jobj, "created_at") != NULL, "no created_at: %s", resp.body);
	http_resp_clear(&resp);
	return jobj;
}

int64_t topic_total(void)
{
	char errstr[512];
	int64_t sum = 0;

	ck_assert_msg(topic_watermark_sum(stack.broker, stack.topic, &sum, errstr,
	                                  sizeof(errstr)) == 0,
	              "watermarks of %s: %s", stack.topic, errstr);
	return sum;
}

struct ts_instant parse_ts(const char *text)
{
	struct ts_instant t = {0, 0};
	char why[128];

	ck_assert_msg(text != NULL, "no timestamp");
	ck_assert_msg(ts_parse_rfc3339(text, strlen(text), &t, why, sizeof(why)) == 0,
	              "'%s' is not RFC 3339: %s", text, why);
	return t;
}

int64_t ts_micros(struct ts_instant t)
{
	return t.sec * 1000000 + t.nsec / 1000;
}

double metric_value(const char *url, const char *series)
{
	struct http_resp resp;
	const size_t len = strlen(series);
	double value = -1;

	if (http_get(url, NULL, &resp) == 0 && resp.status == 200 && resp.body != NULL) {
		for (const char *p = resp.body; p != NULL && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
			if (strncmp(p, series, len) == 0 && p[len] == ' ') {
				value = strtod(p + len + 1, NULL);
				break;
			}
		}
	}
	http_resp_clear(&resp);
	return value;
}
