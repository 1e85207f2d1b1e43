/* metrics_test: /metrics of the three services is valid Prometheus text
 * (checked by promtool) and its counters move as requests and messages
 * flow. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checks.h"
#include "suites.h"

/* The body of GET /metrics of a service (the caller frees it). */
static char *scrape(enum stack_service which)
{
	struct http_resp resp;
	char url[256], *text;

	stack_url(url, sizeof(url), which, "/metrics");
	ck_assert_msg(http_get(url, NULL, &resp) == 0, "GET %s: %s", url, resp.errstr);
	ck_assert_msg(resp.status == 200 && resp.body, "%s: %ld", url, resp.status);
	text = strdup(resp.body);
	http_resp_clear(&resp);
	return text;
}

/* The value of the sample whose name and labels are exactly `series`, or 0
 * when it is not there yet (counters appear on first use). */
static double sample(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		if (strncmp(line, series, n) == 0 && line[n] == ' ')
			return strtod(line + n + 1, NULL);
	}
	return 0;
}

START_TEST(promtool_accepts_the_exposition)
{
	char *text = scrape((enum stack_service)_i), path[] = "/tmp/metrics-XXXXXX", cmd[1024];
	const char *promtool = getenv("TEST_PROMTOOL");
	int fd = mkstemp(path), rc;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	/* promtool prints what it dislikes and exits non-zero. */
	snprintf(cmd, sizeof(cmd), "'%s' check metrics < %s",
	         promtool ? promtool : "scripts/promtool.sh", path);
	rc = system(cmd);
	unlink(path);
	ck_assert_msg(rc == 0, "%s: promtool check metrics failed (%d) on:\n%s",
	              stack_name((enum stack_service)_i), rc, text);
	free(text);
}
END_TEST

#define POSTED "http_requests_total{route=\"/api/v1/timestamp\",status=\"200\"}"
#define ACKED "publish_total{outcome=\"acked\"}"
#define INSERTED "consumer_records_total{outcome=\"inserted\"}"
#define READ "http_requests_total{route=\"/api/v1/timestamp/{id}\",status=\"200\"}"
#define NOT_FOUND "http_requests_total{route=\"/api/v1/timestamp/{id}\",status=\"404\"}"

START_TEST(counters_move_with_the_traffic)
{
	char *cmd0 = scrape(STACK_COMMAND), *con0 = scrape(STACK_CONSUMER), *q0 = scrape(STACK_QUERY);
	char *cmd1, *con1, *q1, *q2, id[40], url[256];
	struct http_resp resp;
	json_object *rec;

	post_ticket("/api/v1/timestamp", NULL, id);
	rec = get_record(id); /* polls (404s) until it is readable */
	json_object_put(rec);
	cmd1 = scrape(STACK_COMMAND), con1 = scrape(STACK_CONSUMER), q1 = scrape(STACK_QUERY);

	stack_url(url, sizeof(url), STACK_QUERY, "/api/v1/timestamp/%s",
	          "00000000-0000-4000-8000-000000000000");
	ck_assert_int_eq(http_get(url, NULL, &resp), 0);
	ck_assert_int_eq(resp.status, 404);
	http_resp_clear(&resp);
	q2 = scrape(STACK_QUERY);
	ck_assert_double_eq(sample(q2, NOT_FOUND), sample(q1, NOT_FOUND) + 1);

	ck_assert_double_eq(sample(cmd1, POSTED), sample(cmd0, POSTED) + 1);
	ck_assert_double_eq(sample(cmd1, ACKED), sample(cmd0, ACKED) + 1);
	ck_assert_double_ge(sample(con1, INSERTED), sample(con0, INSERTED) + 1);
	ck_assert_double_ge(sample(q1, READ), sample(q0, READ) + 1);
	free(cmd0), free(con0), free(q0), free(cmd1), free(con1), free(q1), free(q2);
}
END_TEST

Suite *make_metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("exposition");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, promtool_accepts_the_exposition, 0, STACK_N);
	suite_add_tcase(s, tc);
	tc = tcase_create("counters");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, counters_move_with_the_traffic);
	suite_add_tcase(s, tc);
	return s;
}
