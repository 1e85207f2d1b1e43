/* test_metrics: Prometheus text exposition (common/metrics.c): HELP/TYPE
 * once per family, values, cumulative histogram buckets, _sum and _count. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "suites.h"

/* The registry is process-wide and a series can be registered only once,
 * so these are registered by an unchecked fixture (once, in the parent
 * when forking) and zeroed before every test. */
static struct metrics_series jobs_ok = METRICS_COUNTER_INIT("ut_jobs_total", "Jobs done.", "result=\"ok\"");
static struct metrics_series jobs_failed = METRICS_COUNTER_INIT("ut_jobs_total", "Jobs done.", "result=\"failed\"");
static struct metrics_series queue_depth = METRICS_GAUGE_INIT("ut_queue_depth", "Messages waiting.", "");
static struct metrics_series batch_seconds = METRICS_HISTOGRAM_INIT("ut_batch_seconds", "Time per batch.", "");
static struct metrics_series route_seconds = METRICS_HISTOGRAM_INIT("ut_route_seconds", "Time per route.", "route=\"/x\"");

static struct metrics_series *const all_series[] = {
    &jobs_ok, &jobs_failed, &queue_depth, &batch_seconds, &route_seconds,
};

static void register_once(void)
{
	static bool registered;

	if (registered)
		return;
	for (size_t i = 0; i < sizeof(all_series) / sizeof(all_series[0]); i++)
		metrics_register(all_series[i]);
	registered = true;
}

static void zero_series(void)
{
	for (size_t i = 0; i < sizeof(all_series) / sizeof(all_series[0]); i++) {
		struct metrics_series *s = all_series[i];
		atomic_store(&s->value, 0);
		atomic_store(&s->sum_us, 0);
		for (int b = 0; b < METRICS_BUCKETS; b++)
			atomic_store(&s->buckets[b], 0);
	}
}

/* Renders; checks the length and the final newline. The caller frees. */
static char *render(void)
{
	size_t len = 0;
	char *text = metrics_render(&len);

	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(len, strlen(text));
	ck_assert_msg(len > 0 && text[len - 1] == '\n', "output does not end with a newline");
	ck_assert_msg(strstr(text, "\n\n") == NULL, "empty line in the output");
	return text;
}

static int count_of(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

/* Every line is "# HELP", "# TYPE" or "name[{labels}] number". */
static void assert_well_formed(const char *rendered)
{
	char *text = strdup(rendered), *line, *save = NULL;

	ck_assert_ptr_nonnull(text);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *sp;
		char *end;

		if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0)
			continue;
		sp = strrchr(line, ' ');
		ck_assert_msg(sp != NULL && sp[1] != '\0', "no value: '%s'", line);
		(void)strtod(sp + 1, &end);
		ck_assert_msg(*end == '\0', "value not a number: '%s'", line);
		ck_assert_msg((line[0] >= 'a' && line[0] <= 'z') || line[0] == '_', "bad name: '%s'", line);
	}
	free(text);
}

#define ck_assert_contains(text, needle) \
	ck_assert_msg(strstr((text), (needle)) != NULL, "missing:\n%s\nin:\n%s", (needle), (text))

START_TEST(counter_family_has_one_help_and_type_then_each_series)
{
	char *text;

	metrics_add(&jobs_ok, 3);
	metrics_add(&jobs_ok, 2);
	metrics_add(&jobs_failed, 1);
	text = render();
	ck_assert_contains(text, "# HELP ut_jobs_total Jobs done.\n"
	                         "# TYPE ut_jobs_total counter\n"
	                         "ut_jobs_total{result=\"ok\"} 5\n"
	                         "ut_jobs_total{result=\"failed\"} 1\n");
	ck_assert_int_eq(count_of(text, "# HELP ut_jobs_total "), 1);
	ck_assert_int_eq(count_of(text, "# TYPE ut_jobs_total "), 1);
	free(text);
}
END_TEST

START_TEST(counter_at_zero_is_rendered)
{
	char *text = render();

	ck_assert_contains(text, "ut_jobs_total{result=\"ok\"} 0\n");
	ck_assert_contains(text, "\nut_queue_depth 0\n");
	free(text);
}
END_TEST

START_TEST(gauge_renders_current_value)
{
	char *text;

	metrics_set(&queue_depth, 7);
	metrics_add(&queue_depth, -2);
	text = render();
	ck_assert_contains(text, "# HELP ut_queue_depth Messages waiting.\n"
	                         "# TYPE ut_queue_depth gauge\n"
	                         "ut_queue_depth 5\n");
	free(text);

	metrics_set(&queue_depth, -3);
	text = render();
	ck_assert_contains(text, "\nut_queue_depth -3\n");
	free(text);
}
END_TEST

START_TEST(histogram_buckets_are_cumulative_with_sum_and_count)
{
	char *text;

	metrics_observe(&batch_seconds, 0.0004);
	metrics_observe(&batch_seconds, 0.003);
	metrics_observe(&batch_seconds, 0.003);
	metrics_observe(&batch_seconds, 0.2);
	metrics_observe(&batch_seconds, 7); /* above every bound: +Inf only */
	text = render();
	ck_assert_contains(text, "# HELP ut_batch_seconds Time per batch.\n"
	                         "# TYPE ut_batch_seconds histogram\n"
	                         "ut_batch_seconds_bucket{le=\"0.0005\"} 1\n"
	                         "ut_batch_seconds_bucket{le=\"0.001\"} 1\n"
	                         "ut_batch_seconds_bucket{le=\"0.0025\"} 1\n"
	                         "ut_batch_seconds_bucket{le=\"0.005\"} 3\n"
	                         "ut_batch_seconds_bucket{le=\"0.01\"} 3\n"
	                         "ut_batch_seconds_bucket{le=\"0.025\"} 3\n"
	                         "ut_batch_seconds_bucket{le=\"0.05\"} 3\n"
	                         "ut_batch_seconds_bucket{le=\"0.1\"} 3\n"
	                         "ut_batch_seconds_bucket{le=\"0.25\"} 4\n"
	                         "ut_batch_seconds_bucket{le=\"0.5\"} 4\n"
	                         "ut_batch_seconds_bucket{le=\"1\"} 4\n"
	                         "ut_batch_seconds_bucket{le=\"5\"} 4\n"
	                         "ut_batch_seconds_bucket{le=\"+Inf\"} 5\n"
	                         "ut_batch_seconds_sum 7.206400\n"
	                         "ut_batch_seconds_count 5\n");
	free(text);
}
END_TEST

START_TEST(histogram_bound_is_inclusive)
{
	char *text;

	metrics_observe(&batch_seconds, 0.0005);
	metrics_observe(&batch_seconds, 1);
	metrics_observe(&batch_seconds, 5);
	text = render();
	ck_assert_contains(text, "ut_batch_seconds_bucket{le=\"0.0005\"} 1\n");
	ck_assert_contains(text, "ut_batch_seconds_bucket{le=\"0.5\"} 1\n");
	ck_assert_contains(text, "ut_batch_seconds_bucket{le=\"1\"} 2\n");
	ck_assert_contains(text, "ut_batch_seconds_bucket{le=\"5\"} 3\n");
	ck_assert_contains(text, "ut_batch_seconds_bucket{le=\"+Inf\"} 3\n");
	ck_assert_contains(text, "ut_batch_seconds_sum 6.000500\n");
	ck_assert_contains(text, "ut_batch_seconds_count 3\n");
	free(text);
}
END_TEST

START_TEST(histogram_empty_is_all_zero)
{
	char *text = render();

	ck_assert_contains(text, "ut_batch_seconds_bucket{le=\"0.0005\"} 0\n");
	ck_assert_contains(text, "ut_batch_seconds_bucket{le=\"+Inf\"} 0\n");
	ck_assert_contains(text, "ut_batch_seconds_sum 0.000000\n");
	ck_assert_contains(text, "ut_batch_seconds_count 0\n");
	free(text);
}
END_TEST

START_TEST(histogram_with_labels_puts_le_last)
{
	char *text;

	metrics_observe(&route_seconds, 0.002);
	metrics_observe(&route_seconds, 0.75);
	text = render();
	ck_assert_contains(text, "# HELP ut_route_seconds Time per route.\n"
	                         "# TYPE ut_route_seconds histogram\n"
	                         "ut_route_seconds_bucket{route=\"/x\",le=\"0.0005\"} 0\n"
	                         "ut_route_seconds_bucket{route=\"/x\",le=\"0.001\"} 0\n"
	                         "ut_route_seconds_bucket{route=\"/x\",le=\"0.0025\"} 1\n");
	ck_assert_contains(text, "ut_route_seconds_bucket{route=\"/x\",le=\"0.5\"} 1\n"
	                         "ut_route_seconds_bucket{route=\"/x\",le=\"1\"} 2\n"
	                         "ut_route_seconds_bucket{route=\"/x\",le=\"5\"} 2\n"
	                         "ut_route_seconds_bucket{route=\"/x\",le=\"+Inf\"} 2\n"
	                         "ut_route_seconds_sum{route=\"/x\"} 0.752000\n"
	                         "ut_route_seconds_count{route=\"/x\"} 2\n");
	free(text);
}
END_TEST

START_TEST(families_appear_in_registration_order)
{
	char *text = render();
	const char *jobs = strstr(text, "# HELP ut_jobs_total "),
	           *depth = strstr(text, "# HELP ut_queue_depth "),
	           *batch = strstr(text, "# HELP ut_batch_seconds "),
	           *route = strstr(text, "# HELP ut_route_seconds ");

	ck_assert(jobs && depth && batch && route);
	ck_assert(jobs < depth && depth < batch && batch < route);
	free(text);
}
END_TEST

/* Process-wide registrations that cannot be undone: only meaningful in a
 * fresh (forked) process, like the HTTP series. */
static struct metrics_series lag_p0 = METRICS_REAL_GAUGE_INIT("ut_lag_seconds", "Age.", "partition=\"0\"");
static struct metrics_series lag_p1 = METRICS_REAL_GAUGE_INIT("ut_lag_seconds", "Age.", "partition=\"1\"");
static struct metrics_series other = METRICS_GAUGE_INIT("ut_other", "Something else.", "");

/* A partition learnt of later joins its family instead of splitting it in
 * two (two HELP lines: a scrape Prometheus refuses). */
START_TEST(a_series_registered_late_joins_its_family)
{
	char *text;

	metrics_register(&lag_p0);
	metrics_register(&other);
	metrics_register(&lag_p1);
	metrics_register(&lag_p0); /* again: nothing changes */
	metrics_set_real(&lag_p0, 2.5);
	metrics_set_real(&lag_p1, 0);
	metrics_set(&other, 7);
	text = render();
	ck_assert_contains(text, "# HELP ut_lag_seconds Age.\n# TYPE ut_lag_seconds gauge\n"
	                         "ut_lag_seconds{partition=\"0\"} 2.5\n"
	                         "ut_lag_seconds{partition=\"1\"} 0\n"
	                         "# HELP ut_other Something else.\n# TYPE ut_other gauge\nut_other 7\n");
	ck_assert_int_eq(count_of(text, "# HELP ut_lag_seconds "), 1);
	ck_assert_double_eq(metrics_get_real(&lag_p0), 2.5);
	assert_well_formed(text);
	free(text);
}
END_TEST

static int collected;
static struct metrics_series scraped = METRICS_REAL_GAUGE_INIT("ut_scraped", "Set at scrape time.", "");

static void collect(void)
{
	collected++;
	metrics_set_real(&scraped, 0.125 * collected);
}

START_TEST(collectors_run_before_every_render)
{
	char *text;

	metrics_register(&scraped);
	metrics_add_collector(collect);
	metrics_add_collector(collect); /* once only */
	free(render());
	text = render();
	ck_assert_int_eq(collected, 2);
	ck_assert_contains(text, "ut_scraped 0.25\n");
	free(text);
}
END_TEST

START_TEST(http_requests_counted_by_route_and_status)
{
	char *text;

	metrics_http_request("/health", 200, 0.0004);
	metrics_http_request("/health", 200, 0.0004);
	metrics_http_request("/api/v1/timestamp", 503, 0.2);
	text = render();
	ck_assert_contains(text, "# HELP http_requests_total ");
	ck_assert_contains(text, "# TYPE http_requests_total counter\n");
	ck_assert_contains(text, "http_requests_total{route=\"/health\",status=\"200\"} 2\n");
	ck_assert_contains(text, "http_requests_total{route=\"/api/v1/timestamp\",status=\"503\"} 1\n");
	/* Durations are kept per route and status too. */
	ck_assert_contains(text, "# TYPE http_request_duration_seconds histogram\n");
	ck_assert_contains(text, "http_request_duration_seconds_bucket{route=\"/health\",status=\"200\",le=\"0.0005\"} 2\n");
	ck_assert_contains(text, "http_request_duration_seconds_count{route=\"/health\",status=\"200\"} 2\n");
	ck_assert_contains(text, "http_request_duration_seconds_sum{route=\"/health\",status=\"200\"} 0.000800\n");
	ck_assert_contains(text, "http_request_duration_seconds_bucket{route=\"/api/v1/timestamp\",status=\"503\",le=\"0.1\"} 0\n");
	ck_assert_contains(text, "http_request_duration_seconds_bucket{route=\"/api/v1/timestamp\",status=\"503\",le=\"0.25\"} 1\n");
	ck_assert_contains(text, "http_request_duration_seconds_count{route=\"/api/v1/timestamp\",status=\"503\"} 1\n");
	ck_assert_int_eq(count_of(text, "# HELP http_requests_total "), 1);
	ck_assert_int_eq(count_of(text, "# HELP http_request_duration_seconds "), 1);
	assert_well_formed(text);
	free(text);
}
END_TEST

START_TEST(every_line_is_a_comment_or_a_sample)
{
	char *text;

	metrics_add(&jobs_ok, 1);
	metrics_set(&queue_depth, -1);
	metrics_observe(&route_seconds, 0.01);
	text = render();
	assert_well_formed(text);
	free(text);
}
END_TEST

Suite *make_metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc;

	tc = tcase_create("render");
	tcase_add_unchecked_fixture(tc, register_once, NULL);
	tcase_add_checked_fixture(tc, zero_series, NULL);
	tcase_add_test(tc, counter_family_has_one_help_and_type_then_each_series);
	tcase_add_test(tc, counter_at_zero_is_rendered);
	tcase_add_test(tc, gauge_renders_current_value);
	tcase_add_test(tc, histogram_buckets_are_cumulative_with_sum_and_count);
	tcase_add_test(tc, histogram_bound_is_inclusive);
	tcase_add_test(tc, histogram_empty_is_all_zero);
	tcase_add_test(tc, histogram_with_labels_puts_le_last);
	tcase_add_test(tc, families_appear_in_registration_order);
	tcase_add_test(tc, every_line_is_a_comment_or_a_sample);
	suite_add_tcase(s, tc);

	/* Process-wide HTTP series that cannot be reset: one test, and only
	 * meaningful in a fresh (forked) process. */
	tc = tcase_create("http");
	tcase_add_test(tc, http_requests_counted_by_route_and_status);
	tcase_add_test(tc, a_series_registered_late_joins_its_family);
	tcase_add_test(tc, collectors_run_before_every_render);
	suite_add_tcase(s, tc);

	return s;
}
