/* test_db: DB_URL conversion (common/db.c): libpq URIs pass as they are,
 * JDBC URLs lose their "jdbc:" prefix, anything else is refused. */
#include <string.h>

#include "db.h"
#include "suites.h"

static const struct {
	const char *in, *out;
} converted[] = {
    {"postgresql://h:5432/db", "postgresql://h:5432/db"},
    {"postgres://h:5432/db", "postgres://h:5432/db"},
    {"postgresql://127.0.0.1:5432/postgres", "postgresql://127.0.0.1:5432/postgres"},
    {"postgresql://", "postgresql://"},
    {"postgresql://u:pw@h/db", "postgresql://u:pw@h/db"},
    {"postgresql://h:5432/db?user=x&sslmode=disable", "postgresql://h:5432/db?user=x&sslmode=disable"},
    {"postgresql:///db?host=/var/run/postgresql", "postgresql:///db?host=/var/run/postgresql"},
    {"postgresql://h1:5432,h2:5433/db", "postgresql://h1:5432,h2:5433/db"},
    {"jdbc:postgresql://h:5432/db", "postgresql://h:5432/db"},
    {"jdbc:postgresql://h:5432/db?user=x&sslmode=disable", "postgresql://h:5432/db?user=x&sslmode=disable"},
    {"jdbc:postgresql://localhost:5432/postgres", "postgresql://localhost:5432/postgres"},
};

START_TEST(convert_accepts)
{
	char out[1024], err[256] = "";

	memset(out, '#', sizeof(out));
	ck_assert_msg(db_url_convert(converted[_i].in, out, sizeof(out), err, sizeof(err)) == 0,
	              "'%s': %s", converted[_i].in, err);
	ck_assert_str_eq(out, converted[_i].out);
}
END_TEST

static const struct {
	const char *in, *why;
} refused[] = {
    {"mysql://h:3306/db", "another database"},
    {"jdbc:mysql://", "JDBC URL of another database"},
    {"jdbc:mysql://h:3306/db", "JDBC URL of another database"},
    {"", "empty"},
    {"garbage", "not a URL"},
    {"jdbc:", "a bare jdbc: prefix"},
    {"jdbc:jdbc:postgresql://h/db", "jdbc: twice"},
    {"http://h:5432/db", "http URL"},
    {"postgresql:/h/db", "one slash"},
    {" postgresql://h/db", "leading space"},
    {"host=h dbname=db", "key=value conninfo, not a URL"},
    {"postgresql://h:5432/db?foo=bar", "an option libpq does not know"},
    {"jdbc:postgresql://h:5432/db?foo=bar", "JDBC URL with an unknown option"},
    {"postgresql://h:5432/db?sslmode", "option without value"},
    {"postgresql://[::1/db", "unclosed IPv6 bracket"},
};

START_TEST(convert_refuses_with_reason)
{
	char out[1024], err[256] = "";

	ck_assert_msg(db_url_convert(refused[_i].in, out, sizeof(out), err, sizeof(err)) == -1,
	              "'%s' (%s) accepted as '%s'", refused[_i].in, refused[_i].why, out);
	ck_assert_msg(err[0] != '\0', "'%s': empty reason", refused[_i].in);
	ck_assert_msg(strchr(err, '\n') == NULL, "'%s': reason spans lines: %s", refused[_i].in, err);
}
END_TEST

START_TEST(convert_refuses_too_long_for_the_buffer)
{
	char url[2048], out[1024], err[256] = "";
	size_t n;

	/* 1023 characters fit out[1024] exactly, 1024 do not. */
	strcpy(url, "postgresql://h:5432/");
	n = strlen(url);
	memset(url + n, 'd', 1023 - n);
	url[1023] = '\0';
	ck_assert_msg(db_url_convert(url, out, sizeof(out), err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(out, url);

	memset(url + n, 'd', 1024 - n);
	url[1024] = '\0';
	ck_assert_int_eq(db_url_convert(url, out, sizeof(out), err, sizeof(err)), -1);
	ck_assert(err[0] != '\0');

	/* The jdbc: prefix does not count: it is removed. */
	char jdbc[2048] = "jdbc:";
	strcpy(jdbc + 5, url);
	jdbc[5 + 1023] = '\0';
	ck_assert_msg(db_url_convert(jdbc, out, sizeof(out), err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(strlen(out), 1023);

	/* A small buffer. */
	ck_assert_int_eq(db_url_convert("postgresql://h:5432/db", out, 8, err, sizeof(err)), -1);
	ck_assert(err[0] != '\0');
}
END_TEST

/* The reason goes to stderr/the log: it must not carry the password of a
 * URL ("Secrets never appear in logs", DESIGN.md). */
static const char *const secret_urls[] = {
    "mysql://app:s3cretpw@h:3306/db",
    "jdbc:mysql://app:s3cretpw@h:3306/db",
    "postgresql://app:s3cretpw@h:5432/db?foo=bar",
    "postgresql://app:s3cretpw@[::1/db",
    "postgresql://app:s3cretpw@h/db?sslmode",
};

START_TEST(convert_reason_never_shows_the_password)
{
	char out[1024], err[512] = "";

	ck_assert_int_eq(db_url_convert(secret_urls[_i], out, sizeof(out), err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "s3cretpw") == NULL, "'%s': reason shows the password: %s",
	              secret_urls[_i], err);
}
END_TEST

START_TEST(error_line_is_one_line)
{
	char err[128];

	db_error_line("connection refused\n\tIs the server running?\n", err, sizeof(err));
	ck_assert_str_eq(err, "connection refused Is the server running?");
	db_error_line("ERROR:  relation \"x\" does not exist\nLINE 1: select\n\n", err, sizeof(err));
	ck_assert_str_eq(err, "ERROR: relation \"x\" does not exist LINE 1: select");
	db_error_line(NULL, err, sizeof(err));
	ck_assert_str_eq(err, "unknown error");
	db_error_line("", err, sizeof(err));
	ck_assert_str_eq(err, "unknown error");
}
END_TEST

Suite *make_db_suite(void)
{
	Suite *s = suite_create("db");
	TCase *tc;

	tc = tcase_create("url_convert");
	tcase_add_loop_test(tc, convert_accepts, 0, TABLE_LEN(converted));
	tcase_add_loop_test(tc, convert_refuses_with_reason, 0, TABLE_LEN(refused));
	tcase_add_test(tc, convert_refuses_too_long_for_the_buffer);
	tcase_add_loop_test(tc, convert_reason_never_shows_the_password, 0, TABLE_LEN(secret_urls));
	suite_add_tcase(s, tc);

	tc = tcase_create("error_line");
	tcase_add_test(tc, error_line_is_one_line);
	suite_add_tcase(s, tc);

	return s;
}
