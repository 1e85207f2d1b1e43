/* health_test: /health, /ready and /metrics of the three services. */
#include <check.h>
#include <string.h>

#include "checks.h"
#include "suites.h"

/* GET path on a service and assert 200 {"status":want}. */
static void check_status(enum stack_service which, const char *path, const char *want)
{
	struct http_resp resp;
	json_object *jobj;
	char url[256];

	stack_url(url, sizeof(url), which, "%s", path);
	ck_assert_msg(http_get(url, NULL, &resp) == 0, "GET %s: %s", url, resp.errstr);
	jobj = check_json_200(&resp);
	ck_assert_msg(json_str(jobj, "status") && strcmp(json_str(jobj, "status"), want) == 0,
	              "%s %s: %s", stack_name(which), path, resp.body);
	ck_assert_msg(is_uuid(resp.cid), "%s %s: correlationId header '%s'", stack_name(which),
	              path, resp.cid);
	json_object_put(jobj);
	http_resp_clear(&resp);
}

START_TEST(health_up)
{
	check_status((enum stack_service)_i, "/health", "UP");
}
END_TEST

START_TEST(ready_ready)
{
	check_status((enum stack_service)_i, "/ready", "READY");
}
END_TEST

START_TEST(metrics_prometheus)
{
	struct http_resp resp;
	char url[256];

	stack_url(url, sizeof(url), (enum stack_service)_i, "/metrics");
	ck_assert_msg(http_get(url, NULL, &resp) == 0, "GET %s: %s", url, resp.errstr);
	ck_assert_msg(resp.status == 200, "%s: %ld", url, resp.status);
	ck_assert_msg(strncmp(resp.content_type, "text/plain", 10) == 0, "%s: Content-Type '%s'",
	              url, resp.content_type);
	ck_assert_msg(resp.body != NULL && strstr(resp.body, "# TYPE ") != NULL,
	              "%s: no '# TYPE' line in the exposition", url);
	http_resp_clear(&resp);
}
END_TEST

Suite *make_health_suite(void)
{
	Suite *s = suite_create("health");
	TCase *tc = tcase_create("probes");

	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, health_up, 0, STACK_N);
	tcase_add_loop_test(tc, ready_ready, 0, STACK_N);
	tcase_add_loop_test(tc, metrics_prometheus, 0, STACK_N);
	suite_add_tcase(s, tc);
	return s;
}
