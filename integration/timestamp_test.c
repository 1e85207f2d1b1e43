/* timestamp_test: POST a timestamp (given or now), read it back normalised
 * to UTC; invalid timestamps are refused and publish nothing. */
#include <check.h>
#include <string.h>

#include "checks.h"
#include "suites.h"

#define TS_PATH "/api/v1/timestamp/"

/* Valid: the path segment exactly as sent, and the event_timestamp that the
 * query service must answer (UTC, 'Z', microseconds, no trailing zeros). */
static const struct {
	const char *segment, *want;
} valid[] = {
    {"2009-09-28T19:03:12.123456+02:00", "2009-09-28T17:03:12.123456Z"},
    {"2009-09-28T19:03:12.123456%2B02:00", "2009-09-28T17:03:12.123456Z"},
    {"2009-09-28T19:03:12.123456%2b02:00", "2009-09-28T17:03:12.123456Z"},
    {"2009-09-28T19:03:12Z", "2009-09-28T19:03:12Z"},
    {"2009-09-28T19:03:12.500Z", "2009-09-28T19:03:12.5Z"},
    {"2009-09-28T19:03:12.000Z", "2009-09-28T19:03:12Z"},
    {"2009-09-28T19:03:12.0Z", "2009-09-28T19:03:12Z"},
    {"2009-09-28T19:03:12.1Z", "2009-09-28T19:03:12.1Z"},
    {"2009-09-28T19:03:12.123456789Z", "2009-09-28T19:03:12.123456Z"},
    {"2009-09-28T19:03:12.999999999Z", "2009-09-28T19:03:12.999999Z"},
    {"2009-09-28T19:03:12.000000100Z", "2009-09-28T19:03:12Z"},
    {"2009-09-28t19:03:12z", "2009-09-28T19:03:12Z"},
    {"2009-09-28T19:03:12-05:30", "2009-09-29T00:33:12Z"},
    {"2009-09-28T00:30:00+01:00", "2009-09-27T23:30:00Z"},
    {"2009-09-28T19:03:12+00:00", "2009-09-28T19:03:12Z"},
    {"2009-09-28T19:03:12-00:00", "2009-09-28T19:03:12Z"},
    {"2016-12-31T23:59:60Z", "2017-01-01T00:00:00Z"},
    {"2016-12-31T23:59:60.25Z", "2017-01-01T00:00:00.25Z"},
    {"2009-09-28T19:03:60Z", "2009-09-28T19:04:00Z"},
    {"2016-12-31T23:59:60-01:00", "2017-01-01T01:00:00Z"},
    {"2000-02-29T12:00:00Z", "2000-02-29T12:00:00Z"},
    {"1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59.5Z"},
    {"0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"},
    {"9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"},
};

/* Invalid: the path segment exactly as sent, and what is wrong with it. */
static const struct {
	const char *segment, *what;
} invalid[] = {
    {"2009-13-28T19:03:12Z", "month 13"},
    {"2009-00-28T19:03:12Z", "month 0"},
    {"2009-02-30T19:03:12Z", "Feb 30"},
    {"2001-02-29T19:03:12Z", "Feb 29 of a common year"},
    {"2009-09-00T19:03:12Z", "day 0"},
    {"2009-09-28T25:03:12Z", "hour 25"},
    {"2009-09-28T24:00:00Z", "hour 24"},
    {"2009-09-28T19:61:12Z", "minute 61"},
    {"2009-09-28T19:03:61Z", "second 61"},
    {"2009-09-28T19:03:12Zjunk", "trailing junk"},
    {"2009-09-28T19:03:12Z%20", "trailing space"},
    {"2009-09-28T19:03:12.Z", "empty fraction"},
    {"2009-09-28T19:03:12.1234567890Z", "10 fractional digits"},
    {"2009-09-28T19:03:12+24:00", "offset +24:00"},
    {"2009-09-28T19:03:12+02:60", "offset minute 60"},
    {"2009-09-28T19:03:12+0200", "offset without colon"},
    {"2009-09-28T19:03:12+02", "offset without minutes"},
    {"0000-09-28T19:03:12Z", "year 0000"},
    {"2009-09-28T19:03:12", "missing offset"},
    {"2009-09-28", "date only"},
    {"2009-09-28%2019:03:12Z", "space instead of T"},
    {"2009-9-28T19:03:12Z", "one-digit month"},
    {"garbage", "garbage"},
    {"1254164592", "epoch seconds"},
    {"2009-09-28T19:03:12%00Z", "%00 inside"},
    {"", "empty segment (POST /api/v1/timestamp/)"},
    {NULL, "5,000 digits"}, /* see invalid_segment */
};

static char long_segment[5001];

static const char *invalid_segment(int i)
{
	if (invalid[i].segment != NULL)
		return invalid[i].segment;
	memset(long_segment, '9', sizeof(long_segment) - 1);
	long_segment[sizeof(long_segment) - 1] = '\0';
	return long_segment;
}

/* created_at is the accept time, in milliseconds: within [before, after]
 * with before truncated to its millisecond. */
static void check_created_at(const char *created, struct ts_instant before,
                             struct ts_instant after)
{
	const int64_t c = ts_micros(parse_ts(created));
	const int64_t lo = ts_micros(before) / 1000 * 1000, hi = ts_micros(after);
	const char *dot = strchr(created, '.');

	ck_assert_msg(c >= lo && c <= hi,
	              "created_at %s is %lld us outside the request's window [%lld, %lld]",
	              created, (long long)(c < lo ? c - lo : c - hi), (long long)lo,
	              (long long)hi);
	ck_assert_msg(dot == NULL || strlen(dot) <= 5, /* ".mmmZ" */
	              "created_at %s has more than millisecond precision", created);
}

static void check_utc_text(const char *what, const char *text)
{
	size_t len = strlen(text);
	/* The shortest is "YYYY-MM-DDTHH:MM:SSZ", 20 characters: an instant on
	 * a whole second drops its fraction (no trailing zeros). */
	ck_assert_msg(len >= 20 && text[10] == 'T' && text[len - 1] == 'Z',
	              "%s '%s' is not UTC RFC 3339 with 'T' and 'Z'", what, text);
	ck_assert_msg(strchr(text, '.') == NULL || text[len - 2] != '0',
	              "%s '%s' keeps trailing fractional zeros", what, text);
}

START_TEST(explicit_timestamp)
{
	struct ts_instant before, after;
	char path[256], id[37];
	json_object *rec;

	snprintf(path, sizeof(path), TS_PATH "%s", valid[_i].segment);
	before = ts_now();
	post_ticket(path, NULL, id);
	after = ts_now();
	rec = get_record(id);
	ck_assert_msg(strcmp(json_str(rec, "event_timestamp"), valid[_i].want) == 0,
	              "POST %s: event_timestamp %s, want %s", path,
	              json_str(rec, "event_timestamp"), valid[_i].want);
	check_utc_text("created_at", json_str(rec, "created_at"));
	check_created_at(json_str(rec, "created_at"), before, after);
	json_object_put(rec);
}
END_TEST

static const char *const now_paths[] = {"/app", "/api/v1/timestamp"};

START_TEST(current_time)
{
	struct ts_instant before, after, event;
	json_object *rec;
	char id[37];

	before = ts_now();
	post_ticket(now_paths[_i], NULL, id);
	after = ts_now();
	rec = get_record(id);
	check_utc_text("event_timestamp", json_str(rec, "event_timestamp"));
	check_utc_text("created_at", json_str(rec, "created_at"));
	event = parse_ts(json_str(rec, "event_timestamp"));
	/* The event time is "now" as the service saw it: inside the window of
	 * the request (same clock), microseconds kept. */
	ck_assert_msg(ts_micros(event) >= ts_micros(before) && ts_micros(event) <= ts_micros(after),
	              "POST %s: event_timestamp %s (%lld us) outside the request's window "
	              "[%lld, %lld] us",
	              now_paths[_i], json_str(rec, "event_timestamp"), (long long)ts_micros(event),
	              (long long)ts_micros(before), (long long)ts_micros(after));
	check_created_at(json_str(rec, "created_at"), before, after);
	json_object_put(rec);
}
END_TEST

START_TEST(invalid_timestamp)
{
	struct http_resp resp;
	json_object *jobj;
	int64_t before, after;

	const char *segment = invalid_segment(_i);
	char url[6000];

	stack_url(url, sizeof(url), STACK_COMMAND, TS_PATH "%s", segment);
	before = topic_total();
	ck_assert_msg(http_post(url, NULL, &resp) == 0, "POST %s: %s", url, resp.errstr);
	check_error(&resp, 400);
	jobj = http_resp_json(&resp);
	ck_assert_msg(strstr(json_str(jobj, "error"), "RFC 3339") != NULL,
	              "%.40s (%s): the error does not name the expected format (RFC 3339): %s",
	              segment, invalid[_i].what, resp.body);
	json_object_put(jobj);
	http_resp_clear(&resp);
	after = topic_total();
	ck_assert_msg(after == before, "%.40s (%s): %lld message(s) published for a 400",
	              segment, invalid[_i].what, (long long)(after - before));
}
END_TEST

Suite *make_timestamp_suite(void)
{
	Suite *s = suite_create("timestamp");
	TCase *tc;

	tc = tcase_create("explicit");
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, explicit_timestamp, 0, (int)(sizeof(valid) / sizeof(valid[0])));
	suite_add_tcase(s, tc);

	tc = tcase_create("now");
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, current_time, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("invalid");
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, invalid_timestamp, 0,
	                    (int)(sizeof(invalid) / sizeof(invalid[0])));
	suite_add_tcase(s, tc);
	return s;
}
