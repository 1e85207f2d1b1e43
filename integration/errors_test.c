/* errors_test: the error answers: 404, 400 and 405 (with Allow) by route,
 * 413 for oversized bodies; all of them JSON with a correlation id. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "suites.h"
#include "uid.h"

#define TS_PATH "/api/v1/timestamp"

START_TEST(unknown_id_404)
{
	/* A fresh v4 id, and ids of other versions (any version is valid). */
	const char *ids[] = {NULL, "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
	                     "00000000-0000-0000-0000-000000000000",
	                     "FFFFFFFF-FFFF-5FFF-BFFF-FFFFFFFFFFFF"};
	char fresh[UID_TEXT_SIZE], url[256];
	struct http_resp resp;

	uid_v4(fresh);
	ids[0] = fresh;
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		stack_url(url, sizeof(url), STACK_QUERY, TS_PATH "/%s", ids[i]);
		ck_assert_msg(http_get(url, NULL, &resp) == 0, "GET %s: %s", url, resp.errstr);
		check_error(&resp, 404);
		http_resp_clear(&resp);
	}
}
END_TEST

static const char *const malformed_ids[] = {
    "not-a-uuid",
    "123",
    "6ba7b810-9dad-11d1-80b4-00c04fd430c",   /* 35 characters */
    "6ba7b810-9dad-11d1-80b4-00c04fd430c8a", /* 37 */
    "6ba7b810-9dad-11d1-80b4-00c04fd430cg",  /* not hex */
    "6ba7b8109dad11d180b400c04fd430c8",      /* no dashes */
    "6ba7b810-9dad-11d1-80b4-00c04fd430c8%00",
    "%20",
    "",
};

START_TEST(malformed_id_400)
{
	struct http_resp resp;
	char url[256];

	stack_url(url, sizeof(url), STACK_QUERY, TS_PATH "/%s", malformed_ids[_i]);
	ck_assert_msg(http_get(url, NULL, &resp) == 0, "GET %s: %s", url, resp.errstr);
	check_error(&resp, 400);
	http_resp_clear(&resp);
}
END_TEST

/* Wrong methods: service, method, path, what Allow must list. */
static const struct {
	enum stack_service which;
	const char *method, *path, *allow;
} wrong_methods[] = {
    {STACK_COMMAND, "GET", TS_PATH "/2009-09-28T19:03:12Z", "POST"},
    {STACK_COMMAND, "DELETE", TS_PATH "/2009-09-28T19:03:12Z", "POST"},
    {STACK_COMMAND, "PUT", TS_PATH "/2009-09-28T19:03:12Z", "POST"},
    {STACK_COMMAND, "GET", TS_PATH, "POST"},
    {STACK_COMMAND, "GET", "/app", "POST"},
    {STACK_COMMAND, "DELETE", "/app", "POST"},
    {STACK_QUERY, "POST", TS_PATH "/6ba7b810-9dad-11d1-80b4-00c04fd430c8", "GET"},
    {STACK_QUERY, "DELETE", TS_PATH "/6ba7b810-9dad-11d1-80b4-00c04fd430c8", "GET"},
    {STACK_QUERY, "PUT", TS_PATH "/6ba7b810-9dad-11d1-80b4-00c04fd430c8", "GET"},
    {STACK_COMMAND, "POST", "/health", "GET"},
    {STACK_CONSUMER, "POST", "/health", "GET"},
    {STACK_QUERY, "DELETE", "/ready", "GET"},
};

START_TEST(wrong_method_405)
{
	struct http_resp resp;
	char url[256];
	int64_t before = topic_total();

	stack_url(url, sizeof(url), wrong_methods[_i].which, "%s", wrong_methods[_i].path);
	ck_assert_msg(http_request(NULL, wrong_methods[_i].method, url, NULL, NULL, 0, &resp) == 0,
	              "%s %s: %s", wrong_methods[_i].method, url, resp.errstr);
	check_error(&resp, 405);
	ck_assert_msg(strstr(resp.allow, wrong_methods[_i].allow) != NULL,
	              "%s %s: Allow '%s' does not list %s", wrong_methods[_i].method, url,
	              resp.allow, wrong_methods[_i].allow);
	http_resp_clear(&resp);
	ck_assert_msg(topic_total() == before, "%s %s published a message",
	              wrong_methods[_i].method, url);
}
END_TEST

static const struct {
	enum stack_service which;
	const char *method, *path;
} unknown_paths[] = {
    {STACK_COMMAND, "GET", "/nope"},
    {STACK_COMMAND, "POST", "/nope"},
    {STACK_COMMAND, "POST", "/api/v1/timestamps"},
    {STACK_COMMAND, "POST", "/api/v2/timestamp/2009-09-28T19:03:12Z"},
    {STACK_COMMAND, "GET", "/"},
    {STACK_CONSUMER, "GET", "/nope"},
    {STACK_CONSUMER, "GET", TS_PATH "/6ba7b810-9dad-11d1-80b4-00c04fd430c8"},
    {STACK_QUERY, "GET", "/nope"},
    {STACK_QUERY, "POST", "/app"},
};

START_TEST(unknown_path_404)
{
	struct http_resp resp;
	char url[256];

	stack_url(url, sizeof(url), unknown_paths[_i].which, "%s", unknown_paths[_i].path);
	ck_assert_msg(http_request(NULL, unknown_paths[_i].method, url, NULL, NULL, 0, &resp) == 0,
	              "%s %s: %s", unknown_paths[_i].method, url, resp.errstr);
	check_error(&resp, 404);
	http_resp_clear(&resp);
}
END_TEST

START_TEST(bad_escape_400)
{
	const char *paths[] = {TS_PATH "/2009-09-28T19:03:12%ZZ", TS_PATH "/%", TS_PATH "/%2"};
	struct http_resp resp;
	char url[256];
	int64_t before = topic_total();

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		stack_url(url, sizeof(url), STACK_COMMAND, "%s", paths[i]);
		ck_assert_msg(http_post(url, NULL, &resp) == 0, "POST %s: %s", url, resp.errstr);
		check_error(&resp, 400);
		http_resp_clear(&resp);
	}
	ck_assert_msg(topic_total() == before, "a malformed path published a message");
}
END_TEST

/* Bodies: size, whether chunked, the status wanted. The limit is 64 KiB. */
static const struct {
	size_t size;
	int chunked;
	long want;
} bodies[] = {
    {100, 0, 200},
    {64 * 1024, 0, 200},
    {64 * 1024 + 1, 0, 413},
    {1024 * 1024, 0, 413},
    {100, 1, 200},
    {64 * 1024 + 1, 1, 413},
    {1024 * 1024, 1, 413},
};

START_TEST(body_limit)
{
	const char *plain[] = {"Content-Type: application/octet-stream",
	                       "Expect: 100-continue", NULL};
	const char *chunked[] = {"Content-Type: application/octet-stream",
	                         "Transfer-Encoding: chunked", "Expect: 100-continue", NULL};
	struct http_resp resp;
	char url[256];
	char *body = malloc(bodies[_i].size);
	int64_t before = topic_total(), after;

	ck_assert_ptr_nonnull(body);
	memset(body, 'x', bodies[_i].size);
	stack_url(url, sizeof(url), STACK_COMMAND, TS_PATH);
	ck_assert_msg(http_request(NULL, "POST", url, bodies[_i].chunked ? chunked : plain, body,
	                           bodies[_i].size, &resp) == 0,
	              "POST %zu-byte body%s: %s", bodies[_i].size,
	              bodies[_i].chunked ? " (chunked)" : "", resp.errstr);
	if (bodies[_i].want == 200) {
		json_object *jobj = check_json_200(&resp);
		ck_assert_msg(is_uuid(json_str(jobj, "id")), "no id: %s", resp.body);
		json_object_put(jobj);
	} else {
		check_error(&resp, bodies[_i].want);
	}
	http_resp_clear(&resp);
	free(body);
	after = topic_total();
	ck_assert_msg(after - before == (bodies[_i].want == 200 ? 1 : 0),
	              "%zu-byte body%s: %lld message(s) published", bodies[_i].size,
	              bodies[_i].chunked ? " (chunked)" : "", (long long)(after - before));
}
END_TEST

/* A request head larger than the server takes (a 20,000-character path,
 * or header) is an oversized request: refused as too large (413, or the
 * more precise 414 URI Too Long / 431 Request Header Fields Too Large),
 * with a JSON error, not taken for a malformed one. */
START_TEST(oversized_head)
{
	static char path[20100], header[20100];
	const char *headers[] = {header, NULL};
	struct http_resp resp;
	char url[20200];
	int64_t before = topic_total();

	memcpy(path, TS_PATH "/", sizeof(TS_PATH));
	memset(path + sizeof(TS_PATH), '9', 20000);
	path[sizeof(TS_PATH) + 20000] = '\0';
	memcpy(header, "Idempotency-Key: ", 17);
	memset(header + 17, 'k', 20000);
	header[17 + 20000] = '\0';

	if (_i == 0)
		stack_url(url, sizeof(url), STACK_COMMAND, "%s", path);
	else
		stack_url(url, sizeof(url), STACK_COMMAND, "/app");
	ck_assert_msg(http_request(NULL, "POST", url, _i == 0 ? NULL : headers, NULL, 0, &resp) == 0,
	              "POST: %s", resp.errstr);
	ck_assert_msg(resp.status == 413 || resp.status == (_i == 0 ? 414 : 431),
	              "a 20,000-character %s: %ld %s, want 413 (or %d)", _i == 0 ? "path" : "header",
	              resp.status, resp.body ? resp.body : "", _i == 0 ? 414 : 431);
	check_error(&resp, resp.status);
	http_resp_clear(&resp);
	ck_assert_msg(topic_total() == before, "an oversized request published a message");
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

Suite *make_errors_suite(void)
{
	Suite *s = suite_create("errors");
	TCase *tc;

	tc = tcase_create("query");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, unknown_id_404);
	tcase_add_loop_test(tc, malformed_id_400, 0, N(malformed_ids));
	suite_add_tcase(s, tc);

	tc = tcase_create("routes");
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, wrong_method_405, 0, N(wrong_methods));
	tcase_add_loop_test(tc, unknown_path_404, 0, N(unknown_paths));
	tcase_add_test(tc, bad_escape_400);
	suite_add_tcase(s, tc);

	tc = tcase_create("size");
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, body_limit, 0, N(bodies));
	tcase_add_loop_test(tc, oversized_head, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}
