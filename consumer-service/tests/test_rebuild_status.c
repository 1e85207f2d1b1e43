/* test_rebuild_status: what /rebuild and rebuild_* make of a row of
 * timestamp_rebuilds: progress, ETA, stalled, and a JSON document that
 * json-c reads back with every column. */
#include <check.h>
#include <json-c/json.h>
#include <string.h>

#include "rebuild_status.h"
#include "suites.h"

static struct rebuild_status row(const char *state, int64_t total, int64_t done, double rate,
                                 double updated_ago_s)
{
	struct rebuild_status st = {.found = true, .generation = 3, .records_total = total,
	                            .records_done = done, .rate = rate,
	                            .updated_ago_s = updated_ago_s, .switch_ms = -1,
	                            .last_switch_ms = -1};

	snprintf(st.state, sizeof(st.state), "%s", state);
	snprintf(st.table_name, sizeof(st.table_name), "timestamp_records_g3");
	snprintf(st.group_id, sizeof(st.group_id), "g.rebuild-g3");
	snprintf(st.started_at, sizeof(st.started_at), "2026-12-01T21:00:00Z");
	snprintf(st.updated_at, sizeof(st.updated_at), "2026-12-01T21:00:05.25Z");
	rebuild_status_derive(&st);
	return st;
}

START_TEST(replaying_with_progress_has_percent_and_eta_from_the_rate)
{
	struct rebuild_status st = row("replaying", 1000, 250, 50, 1);

	ck_assert(st.running && !st.stalled);
	ck_assert_double_eq(st.percent_done, 25);
	ck_assert_double_eq(st.eta_s, 15); /* 750 left at 50/s */
}
END_TEST

START_TEST(no_rate_yet_is_an_unknown_eta)
{
	struct rebuild_status st = row("replaying", 1000, 0, 0, 1);

	ck_assert(st.running);
	ck_assert_double_lt(st.eta_s, 0);
	ck_assert_double_eq(st.percent_done, 0);
}
END_TEST

START_TEST(no_update_for_30_s_is_stalled_and_not_running)
{
	struct rebuild_status st = row("switching", 1000, 1000, 80, REBUILD_STALLED_S + 0.5);

	ck_assert(st.stalled && !st.running);
	st = row("replaying", 1000, 10, 80, REBUILD_STALLED_S - 0.5);
	ck_assert(!st.stalled && st.running);
	/* A finished generation is never stalled, however old its row. */
	st = row("live", 1000, 1000, 80, 3600);
	ck_assert(!st.stalled && !st.running);
	ck_assert_double_eq(st.eta_s, 0);
	st = row("failed", 1000, 10, 80, 3600);
	ck_assert(!st.stalled && !st.running);
}
END_TEST

/* An empty topic has nothing to replay; a row written by another process
 * may say more done than total: never over 100 %, never a negative ETA. */
static bool parse_ok(const struct rebuild_status *st)
{
	char buf[8192];
	json_object *jobj = rebuild_status_json(st, buf, sizeof(buf)) > 0 ? json_tokener_parse(buf) : NULL;
	bool ok = jobj != NULL;

	json_object_put(jobj);
	return ok;
}

START_TEST(percent_stays_within_0_and_100)
{
	struct rebuild_status st = row("replaying", 0, 0, 0, 1);

	ck_assert_double_eq(st.percent_done, 100);
	ck_assert_double_eq(st.eta_s, 0);
	st = row("replaying", 10, 12, 5, 1);
	ck_assert_double_eq(st.percent_done, 100);
	ck_assert_double_eq(st.eta_s, 0);
	st = row("replaying", INT64_MAX, 1, 1e-300, 1);
	ck_assert(st.percent_done >= 0 && st.percent_done < 1e-6);
	ck_assert_double_lt(st.eta_s, 0); /* would be infinite: unknown */
	ck_assert(parse_ok(&st));
}
END_TEST

static json_object *parse(const struct rebuild_status *st)
{
	char buf[8192];
	int len = rebuild_status_json(st, buf, sizeof(buf));
	json_object *jobj;

	ck_assert_int_gt(len, 0);
	ck_assert_uint_eq((size_t)len, strlen(buf));
	jobj = json_tokener_parse(buf);
	ck_assert_msg(jobj != NULL, "not JSON: %s", buf);
	return jobj;
}

static json_object *member(json_object *jobj, const char *key)
{
	json_object *v = NULL;

	ck_assert_msg(json_object_object_get_ex(jobj, key, &v), "no \"%s\"", key);
	return v;
}

START_TEST(json_has_every_column_and_nulls_for_the_missing)
{
	struct rebuild_status st = row("replaying", 1000, 250, 50, 1);
	json_object *jobj;

	snprintf(st.error, sizeof(st.error), "a \"quoted\"\nreason");
	jobj = parse(&st);
	ck_assert_str_eq(json_object_get_string(member(jobj, "state")), "replaying");
	ck_assert_int_eq(json_object_get_int(member(jobj, "generation")), 3);
	ck_assert_str_eq(json_object_get_string(member(jobj, "table_name")), "timestamp_records_g3");
	ck_assert_str_eq(json_object_get_string(member(jobj, "group_id")), "g.rebuild-g3");
	ck_assert_str_eq(json_object_get_string(member(jobj, "started_at")), "2026-12-01T21:00:00Z");
	ck_assert_str_eq(json_object_get_string(member(jobj, "updated_at")), "2026-12-01T21:00:05.25Z");
	ck_assert(json_object_is_type(member(jobj, "switched_at"), json_type_null));
	ck_assert_int_eq(json_object_get_int64(member(jobj, "records_total")), 1000);
	ck_assert_int_eq(json_object_get_int64(member(jobj, "records_done")), 250);
	ck_assert_double_eq(json_object_get_double(member(jobj, "percent_done")), 25);
	ck_assert_double_eq(json_object_get_double(member(jobj, "rate")), 50);
	ck_assert_double_eq(json_object_get_double(member(jobj, "eta_seconds")), 15);
	ck_assert(!json_object_get_boolean(member(jobj, "stalled")));
	ck_assert(json_object_is_type(member(jobj, "old_table"), json_type_null));
	ck_assert(json_object_is_type(member(jobj, "switch_ms"), json_type_null));
	ck_assert_str_eq(json_object_get_string(member(jobj, "error")), "a \"quoted\"\nreason");
	json_object_put(jobj);

	st = row("replaying", 1000, 0, 0, 1);
	jobj = parse(&st);
	ck_assert(json_object_is_type(member(jobj, "eta_seconds"), json_type_null));
	json_object_put(jobj);
}
END_TEST

START_TEST(no_rebuild_yet_is_state_none)
{
	struct rebuild_status st = {.found = false};
	char buf[64];

	ck_assert_int_eq(rebuild_status_json(&st, buf, sizeof(buf)), (int)strlen("{\"state\":\"none\"}"));
	ck_assert_str_eq(buf, "{\"state\":\"none\"}");
}
END_TEST

START_TEST(a_document_that_does_not_fit_is_refused)
{
	struct rebuild_status st = row("failed", 1000, 250, 50, 1);
	char buf[128];

	memset(st.error, 'x', sizeof(st.error) - 1);
	ck_assert_int_eq(rebuild_status_json(&st, buf, sizeof(buf)), -1);
}
END_TEST

Suite *make_rebuild_status_suite(void)
{
	Suite *s = suite_create("rebuild_status");
	TCase *tc = tcase_create("derive");

	tcase_add_test(tc, replaying_with_progress_has_percent_and_eta_from_the_rate);
	tcase_add_test(tc, no_rate_yet_is_an_unknown_eta);
	tcase_add_test(tc, no_update_for_30_s_is_stalled_and_not_running);
	tcase_add_test(tc, percent_stays_within_0_and_100);
	suite_add_tcase(s, tc);
	tc = tcase_create("json");
	tcase_add_test(tc, json_has_every_column_and_nulls_for_the_missing);
	tcase_add_test(tc, no_rebuild_yet_is_state_none);
	tcase_add_test(tc, a_document_that_does_not_fit_is_refused);
	suite_add_tcase(s, tc);
	return s;
}
