/* test_log: JSON-lines logging (common/log.c): one JSON object per line on
 * stdout with ts, level, service, msg and the ids when known. stdout is
 * redirected to a temporary file while a test logs. */
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "suites.h"
#include "ts.h"
#include "uid.h"

#define CID "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
#define CMD "886313e1-3b8a-5372-9b90-0c9aee199e5d"
#define TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define TRACE2 "0af7651916cd43dd8448eb211c80319c"

static int saved_stdout = -1;
static char capture_path[64];

static void capture_start(void)
{
	int fd;

	snprintf(capture_path, sizeof(capture_path), "/tmp/log-test-XXXXXX");
	fd = mkstemp(capture_path);
	ck_assert_int_ge(fd, 0);
	fflush(stdout);
	saved_stdout = dup(STDOUT_FILENO);
	ck_assert_int_ge(saved_stdout, 0);
	ck_assert_int_ge(dup2(fd, STDOUT_FILENO), 0);
	close(fd);
}

/* Restores stdout; returns what was logged (malloc'd, NUL-terminated). */
static char *capture_end(void)
{
	FILE *f;
	char *text;
	long n;

	dup2(saved_stdout, STDOUT_FILENO);
	close(saved_stdout);
	saved_stdout = -1;
	f = fopen(capture_path, "r");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	text = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(fread(text, 1, (size_t)n, f), (size_t)n);
	text[n] = '\0';
	fclose(f);
	unlink(capture_path);
	return text;
}

static void restore(void)
{
	if (saved_stdout >= 0) {
		dup2(saved_stdout, STDOUT_FILENO);
		close(saved_stdout);
		saved_stdout = -1;
		unlink(capture_path);
	}
	log_set_trace(NULL);
	log_setup("unit-tests", LOG_ERROR);
}

/* Parses a single line (with its newline) as a JSON object; the caller puts it. */
static struct json_object *parse_line(const char *text)
{
	struct json_object *jobj;
	size_t n = strlen(text);

	ck_assert_msg(n > 0 && text[n - 1] == '\n', "not one line: '%s'", text);
	ck_assert_msg(memchr(text, '\n', n - 1) == NULL, "more than one line: '%s'", text);
	jobj = json_tokener_parse(text);
	ck_assert_msg(jobj != NULL && json_object_is_type(jobj, json_type_object),
	              "not a JSON object: '%s'", text);
	return jobj;
}

static const char *field(struct json_object *jobj, const char *name)
{
	struct json_object *v;

	if (!json_object_object_get_ex(jobj, name, &v))
		return NULL;
	ck_assert_msg(json_object_is_type(v, json_type_string), "%s is not a string", name);
	return json_object_get_string(v);
}

START_TEST(line_is_one_json_object_with_every_field)
{
	struct json_object *jobj;
	struct ts_instant t;
	char *text, err[128] = "";
	const char *ts;

	log_setup("svc", LOG_DEBUG);
	capture_start();
	log_write(LOG_WARN, CID, CMD, "say \"%s\"\nthen %d\\", "hi", 42);
	text = capture_end();
	jobj = parse_line(text);
	ck_assert_str_eq(field(jobj, "level"), "WARN");
	ck_assert_str_eq(field(jobj, "service"), "svc");
	ck_assert_str_eq(field(jobj, "msg"), "say \"hi\"\nthen 42\\");
	ck_assert_str_eq(field(jobj, "correlationId"), CID);
	ck_assert_str_eq(field(jobj, "command_id"), CMD);
	ts = field(jobj, "ts");
	ck_assert_ptr_nonnull(ts);
	ck_assert_msg(ts_parse_rfc3339(ts, strlen(ts), &t, err, sizeof(err)) == 0, "ts '%s': %s", ts, err);
	ck_assert_msg(ts[strlen(ts) - 1] == 'Z', "ts '%s' not UTC", ts);
	ck_assert_msg(llabs((long long)(t.sec - ts_now().sec)) < 60, "ts '%s' is not now", ts);
	json_object_put(jobj);
	free(text);
}
END_TEST

START_TEST(ids_are_left_out_when_unknown)
{
	struct json_object *jobj;
	char *text;

	log_setup("svc", LOG_DEBUG);
	capture_start();
	log_write(LOG_INFO, NULL, NULL, "plain");
	text = capture_end();
	jobj = parse_line(text);
	ck_assert_str_eq(field(jobj, "level"), "INFO");
	ck_assert_str_eq(field(jobj, "msg"), "plain");
	ck_assert_ptr_null(field(jobj, "correlationId"));
	ck_assert_ptr_null(field(jobj, "command_id"));
	ck_assert_ptr_null(field(jobj, "trace_id"));
	json_object_put(jobj);
	free(text);
}
END_TEST

START_TEST(levels_below_the_minimum_write_nothing)
{
	char *text;

	log_setup("svc", LOG_WARN);
	capture_start();
	log_debug("debug %d", 1);
	log_info("info %d", 2);
	log_warn("warn %d", 3);
	log_error("error %d", 4);
	text = capture_end();
	ck_assert_ptr_null(strstr(text, "debug 1"));
	ck_assert_ptr_null(strstr(text, "info 2"));
	ck_assert_ptr_nonnull(strstr(text, "\"msg\":\"warn 3\""));
	ck_assert_ptr_nonnull(strstr(text, "\"msg\":\"error 4\""));
	ck_assert_ptr_nonnull(strstr(text, "\"level\":\"ERROR\""));
	free(text);
}
END_TEST

/* A message longer than the line buffer is cut, and the line stays one
 * valid JSON object with its ids. */
START_TEST(long_message_is_cut_into_valid_json)
{
	static const char fill[] = {'"', 'x', '\n', '\x01'};
	struct json_object *jobj;
	char *msg = malloc(10000), *text;

	ck_assert_ptr_nonnull(msg);
	for (int i = 0; i < 9999; i++)
		msg[i] = fill[_i];
	msg[9999] = '\0';
	log_setup("svc", LOG_DEBUG);
	log_set_trace(TRACE);
	capture_start();
	log_write(LOG_ERROR, CID, CMD, "%s", msg);
	text = capture_end();
	jobj = parse_line(text);
	ck_assert_int_gt(strlen(field(jobj, "msg")), 100);
	ck_assert_str_eq(field(jobj, "correlationId"), CID);
	ck_assert_str_eq(field(jobj, "command_id"), CMD);
	ck_assert_str_eq(field(jobj, "trace_id"), TRACE);
	json_object_put(jobj);
	free(text);
	free(msg);
}
END_TEST

/* Splits captured text into its lines' trace ids ("" when a line has
 * none), n at most. Returns how many lines. */
static int line_traces(char *text, char traces[][40], int n)
{
	int count = 0;

	for (char *line = strtok(text, "\n"); line != NULL && count < n;
	     line = strtok(NULL, "\n")) {
		struct json_object *jobj = json_tokener_parse(line);
		const char *t;

		ck_assert_ptr_nonnull(jobj);
		t = field(jobj, "trace_id");
		snprintf(traces[count++], 40, "%s", t ? t : "");
		json_object_put(jobj);
	}
	return count;
}

START_TEST(trace_id_is_on_every_line_until_cleared)
{
	char *text, traces[6][40];

	log_setup("svc", LOG_DEBUG);
	capture_start();
	log_info("before");
	log_set_trace(TRACE);
	log_info("one");
	log_write(LOG_WARN, CID, CMD, "two");
	log_set_trace(NULL);
	log_info("cleared by NULL");
	log_set_trace(TRACE2);
	log_info("another trace");
	log_set_trace("");
	log_info("cleared by an empty string");
	text = capture_end();
	ck_assert_int_eq(line_traces(text, traces, 6), 6);
	ck_assert_str_eq(traces[0], "");
	ck_assert_str_eq(traces[1], TRACE);
	ck_assert_str_eq(traces[2], TRACE);
	ck_assert_str_eq(traces[3], "");
	ck_assert_str_eq(traces[4], TRACE2);
	ck_assert_str_eq(traces[5], "");
	free(text);
}
END_TEST

static void *log_in_thread(void *arg)
{
	log_info("other thread, before");
	log_set_trace(arg);
	log_info("other thread, after");
	return NULL;
}

/* Each thread has its own: a request's trace id never shows on the lines
 * of another request's thread. */
START_TEST(trace_id_belongs_to_the_thread_that_set_it)
{
	char *text, traces[3][40];
	pthread_t t;

	log_setup("svc", LOG_DEBUG);
	log_set_trace(TRACE);
	capture_start();
	ck_assert_int_eq(pthread_create(&t, NULL, log_in_thread, TRACE2), 0);
	pthread_join(t, NULL);
	log_info("this thread");
	text = capture_end();
	ck_assert_int_eq(line_traces(text, traces, 3), 3);
	ck_assert_str_eq(traces[0], "");
	ck_assert_str_eq(traces[1], TRACE2);
	ck_assert_str_eq(traces[2], TRACE);
	free(text);
}
END_TEST

Suite *make_log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("write");

	tcase_add_checked_fixture(tc, NULL, restore);
	tcase_add_test(tc, line_is_one_json_object_with_every_field);
	tcase_add_test(tc, ids_are_left_out_when_unknown);
	tcase_add_test(tc, levels_below_the_minimum_write_nothing);
	tcase_add_loop_test(tc, long_message_is_cut_into_valid_json, 0, 4);
	tcase_add_test(tc, trace_id_is_on_every_line_until_cleared);
	tcase_add_test(tc, trace_id_belongs_to_the_thread_that_set_it);
	suite_add_tcase(s, tc);
	return s;
}
