/* test_api: the 200's Location (command-service/api.c): QUERY_PUBLIC_URL's
 * checks and what the header says with and without it. */
#include <string.h>

#include "api.h"
#include "suites.h"

#define ID "0b7a6f3e-6c1d-4d8e-9a2b-1c3d5e7f9a0b"

static const struct {
	const char *url, *location;
} good[] = {
    {"", "Location: /api/v1/timestamp/" ID "\r\n"},
    {"http://127.0.0.1:7082", "Location: http://127.0.0.1:7082/api/v1/timestamp/" ID "\r\n"},
    {"https://q.example/base//", "Location: https://q.example/base/api/v1/timestamp/" ID "\r\n"},
    {"/", "Location: /api/v1/timestamp/" ID "\r\n"}, /* only slashes: none */
};

START_TEST(location_is_the_query_path_after_the_url)
{
	char buf[512], err[256];

	ck_assert_int_eq(api_setup(good[_i].url, err, sizeof(err)), 0);
	ck_assert_int_eq(api_location(ID, buf, sizeof(buf)), (int)strlen(good[_i].location));
	ck_assert_str_eq(buf, good[_i].location);
	ck_assert_int_eq(api_location(ID, buf, strlen(good[_i].location)), -1); /* no room for the NUL */
}
END_TEST

static const char *const bad[] = {
    "ftp://q.example", "127.0.0.1:7082", "http://a b", "http://a\r\nX-Injected: 1", "http://é",
};

START_TEST(bad_url_is_refused_and_changes_nothing)
{
	char buf[512], err[256] = "", longest[300];

	ck_assert_int_eq(api_setup("http://kept", err, sizeof(err)), 0);
	ck_assert_int_eq(api_setup(bad[_i], err, sizeof(err)), -1);
	ck_assert_msg(err[0] != '\0', "no reason for '%s'", bad[_i]);
	ck_assert_int_ge(api_location(ID, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "Location: http://kept/api/v1/timestamp/" ID "\r\n");

	memset(longest, 'a', sizeof(longest) - 1);
	memcpy(longest, "http://", 7);
	longest[sizeof(longest) - 1] = '\0';
	ck_assert_int_eq(api_setup(longest, err, sizeof(err)), -1);
}
END_TEST

Suite *make_api_suite(void)
{
	Suite *s = suite_create("api");
	TCase *tc = tcase_create("location");

	tcase_add_loop_test(tc, location_is_the_query_path_after_the_url, 0,
	                    (int)(sizeof(good) / sizeof(good[0])));
	tcase_add_loop_test(tc, bad_url_is_refused_and_changes_nothing, 0,
	                    (int)(sizeof(bad) / sizeof(bad[0])));
	suite_add_tcase(s, tc);
	return s;
}
