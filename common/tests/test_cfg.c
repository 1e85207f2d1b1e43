/* test_cfg: configuration from the environment (common/cfg.c) and log level
 * names (common/log.c). Every test starts from an environment without the
 * UT_* variables; values are set with setenv. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "suites.h"

static int port;
static const char *name;
static const char *secret;
static enum log_level level;

static const struct cfg_param params[] = {
    {"UT_PORT", CFG_INT, &port, "7080", 1, 65535, "HTTP port"},
    {"UT_NAME", CFG_STRING, &name, "timestamp.command.v1", 0, 0, "topic"},
    {"UT_SECRET", CFG_SECRET, &secret, NULL, 0, 0, "password"},
    {"UT_LEVEL", CFG_LOG_LEVEL, &level, "INFO", 0, 0, "log level"},
};

static const char *const all_vars[] = {
    "UT_PORT", "UT_NAME", "UT_SECRET", "UT_SECRET_FILE", "UT_LEVEL", "UT_REQUIRED",
};

static char secret_path[64];
/* A secret read from a file is malloc'd "for the rest of the process"
 * (cfg.h); the tests that load one free it in the teardown. */
static char *file_secret;

static void clean_env(void)
{
	for (size_t i = 0; i < sizeof(all_vars) / sizeof(all_vars[0]); i++)
		unsetenv(all_vars[i]);
	port = -1;
	name = NULL;
	secret = NULL;
	level = (enum log_level)-1;
	secret_path[0] = '\0';
}

static void remove_secret_file(void)
{
	if (secret_path[0] != '\0')
		unlink(secret_path);
	free(file_secret);
	file_secret = NULL;
	clean_env();
}

/* Writes content into a new temporary file named in secret_path. */
static void write_secret_file(const char *content)
{
	int fd;

	snprintf(secret_path, sizeof(secret_path), "/tmp/cfg-test-XXXXXX");
	fd = mkstemp(secret_path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
}

static int load(char *err, size_t err_size)
{
	return cfg_load(params, CFG_COUNT(params), err, err_size);
}

/* ---- defaults and values --------------------------------------------- */

START_TEST(defaults_when_unset)
{
	char err[256] = "";

	ck_assert_msg(load(err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(port, 7080);
	ck_assert_str_eq(name, "timestamp.command.v1");
	ck_assert_str_eq(secret, "");
	ck_assert_int_eq(level, LOG_INFO);
}
END_TEST

START_TEST(defaults_when_set_to_empty)
{
	char err[256] = "";

	for (size_t i = 0; i < sizeof(all_vars) / sizeof(all_vars[0]); i++)
		setenv(all_vars[i], "", 1);
	ck_assert_msg(load(err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(port, 7080);
	ck_assert_str_eq(name, "timestamp.command.v1");
	ck_assert_str_eq(secret, "");
	ck_assert_int_eq(level, LOG_INFO);
}
END_TEST

START_TEST(values_from_the_environment)
{
	char err[256] = "";

	setenv("UT_PORT", "8080", 1);
	setenv("UT_NAME", "other.topic", 1);
	setenv("UT_SECRET", "hunter2", 1);
	setenv("UT_LEVEL", "debug", 1);
	ck_assert_msg(load(err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(port, 8080);
	ck_assert_str_eq(name, "other.topic");
	ck_assert_str_eq(secret, "hunter2");
	ck_assert_int_eq(level, LOG_DEBUG);
}
END_TEST

static const struct {
	const char *text;
	int want;
} int_bounds[] = {
    {"1", 1},
    {"65535", 65535},
    {"00080", 80},
};

START_TEST(int_accepts_bounds)
{
	char err[256] = "";

	setenv("UT_PORT", int_bounds[_i].text, 1);
	ck_assert_msg(load(err, sizeof(err)) == 0, "'%s': %s", int_bounds[_i].text, err);
	ck_assert_int_eq(port, int_bounds[_i].want);
}
END_TEST

/* ---- errors: "NAME: reason" ----------------------------------------------- */

static const struct {
	const char *var, *value, *why;
} bad_values[] = {
    {"UT_PORT", "abc", "not an integer"},
    {"UT_PORT", "12x", "trailing junk"},
    {"UT_PORT", "12 ", "trailing space"},
    {"UT_PORT", "1.5", "a fraction"},
    {"UT_PORT", "0x50", "hexadecimal"},
    {"UT_PORT", "1e3", "exponent"},
    {"UT_PORT", "-", "a lone sign"},
    {"UT_PORT", "0", "below the minimum"},
    {"UT_PORT", "65536", "above the maximum"},
    {"UT_PORT", "-1", "negative with minimum 1"},
    {"UT_PORT", "-65535", "negative with minimum 1"},
    {"UT_PORT", "4294967376", "2^32 + 80 (would wrap to 80 as an int)"},
    {"UT_PORT", "99999999999999999999", "beyond long long"},
    {"UT_PORT", "-99999999999999999999", "beyond long long, negative"},
    {"UT_LEVEL", "verbose", "unknown log level"},
    {"UT_LEVEL", "TRACE", "unknown log level"},
    {"UT_LEVEL", "INFO ", "log level with a space"},
};

START_TEST(bad_value_is_name_colon_reason)
{
	char err[256] = "", prefix[64];

	setenv(bad_values[_i].var, bad_values[_i].value, 1);
	ck_assert_msg(load(err, sizeof(err)) == -1, "%s='%s' (%s) accepted", bad_values[_i].var,
	              bad_values[_i].value, bad_values[_i].why);
	snprintf(prefix, sizeof(prefix), "%s: ", bad_values[_i].var);
	ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0 && strlen(err) > strlen(prefix),
	              "%s='%s': error '%s' is not '%sreason'", bad_values[_i].var,
	              bad_values[_i].value, err, prefix);
	ck_assert_msg(strchr(err, '\n') == NULL, "error spans lines: %s", err);
}
END_TEST

START_TEST(first_bad_value_is_named)
{
	char err[256] = "";

	setenv("UT_PORT", "8080", 1);
	setenv("UT_LEVEL", "loud", 1);
	ck_assert_int_eq(load(err, sizeof(err)), -1);
	ck_assert_msg(strncmp(err, "UT_LEVEL: ", 10) == 0, "%s", err);
	ck_assert_msg(strstr(err, "loud") != NULL, "the bad value is not shown: %s", err);
}
END_TEST

/* An int or level without default (def NULL) that is not set has no value
 * to store: a clear "NAME: reason" error, never a crash. */
static int required;
static enum log_level required_level;
static const struct cfg_param no_default[] = {
    {"UT_REQUIRED", CFG_INT, &required, NULL, 1, 10, "a required number"},
    {"UT_REQUIRED", CFG_LOG_LEVEL, &required_level, NULL, 0, 0, "a required level"},
};

START_TEST(no_default_and_unset_is_an_error_not_a_crash)
{
	char err[256] = "";

	ck_assert_int_eq(cfg_load(&no_default[_i], 1, err, sizeof(err)), -1);
	ck_assert_msg(strncmp(err, "UT_REQUIRED: ", 13) == 0, "%s", err);
}
END_TEST

/* ---- secrets from NAME_FILE ---------------------------------------------- */

static const struct {
	const char *content, *want;
} secret_files[] = {
    {"hunter2\n", "hunter2"},
    {"hunter2", "hunter2"},
    {"hunter2\r\n", "hunter2"},
    {"pass word with spaces\n", "pass word with spaces"},
    {"\n", ""},
};

START_TEST(secret_from_file_without_trailing_newline)
{
	char err[256] = "";

	write_secret_file(secret_files[_i].content);
	setenv("UT_SECRET_FILE", secret_path, 1);
	ck_assert_msg(load(err, sizeof(err)) == 0, "%s", err);
	file_secret = (char *)secret;
	ck_assert_str_eq(secret, secret_files[_i].want);
}
END_TEST

START_TEST(secret_and_secret_file_both_set_is_an_error)
{
	char err[256] = "";

	write_secret_file("from-file\n");
	setenv("UT_SECRET_FILE", secret_path, 1);
	setenv("UT_SECRET", "from-env", 1);
	ck_assert_int_eq(load(err, sizeof(err)), -1);
	ck_assert_msg(strncmp(err, "UT_SECRET: ", 11) == 0, "%s", err);
	ck_assert_msg(strstr(err, "UT_SECRET_FILE") != NULL, "%s", err);
	ck_assert_msg(strstr(err, "from-env") == NULL && strstr(err, "from-file") == NULL,
	              "error shows the secret: %s", err);
}
END_TEST

START_TEST(secret_file_missing_is_an_error)
{
	char err[256] = "";

	setenv("UT_SECRET_FILE", "/nonexistent/cfg-test/secret", 1);
	ck_assert_int_eq(load(err, sizeof(err)), -1);
	ck_assert_msg(strncmp(err, "UT_SECRET: ", 11) == 0, "%s", err);
	ck_assert_msg(strstr(err, "/nonexistent/cfg-test/secret") != NULL, "%s", err);
}
END_TEST

START_TEST(secret_file_empty_name_means_unset)
{
	char err[256] = "";

	setenv("UT_SECRET_FILE", "", 1);
	setenv("UT_SECRET", "hunter2", 1);
	ck_assert_msg(load(err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(secret, "hunter2");
}
END_TEST

/* ---- log_level_parse ------------------------------------------------------- */

static const struct {
	const char *text;
	enum log_level want;
} level_names[] = {
    {"DEBUG", LOG_DEBUG}, {"debug", LOG_DEBUG}, {"Debug", LOG_DEBUG},
    {"INFO", LOG_INFO},   {"info", LOG_INFO},   {"iNfO", LOG_INFO},
    {"WARN", LOG_WARN},   {"warn", LOG_WARN},   {"wArN", LOG_WARN},
    {"ERROR", LOG_ERROR}, {"error", LOG_ERROR}, {"Error", LOG_ERROR},
};

START_TEST(level_parse_any_case)
{
	enum log_level l = (enum log_level)-1;

	ck_assert_int_eq(log_level_parse(level_names[_i].text, &l), 0);
	ck_assert_int_eq(l, level_names[_i].want);
}
END_TEST

static const char *const bad_levels[] = {"", "TRACE", "FATAL", "INF", "INFO ", " INFO", "DEBUG1", "0"};

START_TEST(level_parse_rejects_unknown)
{
	enum log_level l = LOG_INFO;

	ck_assert_int_eq(log_level_parse(bad_levels[_i], &l), -1);
	ck_assert_int_eq(l, LOG_INFO);
}
END_TEST

/* ---- usage and arguments ---------------------------------------------------- */

START_TEST(usage_lists_every_variable_with_its_default)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	ck_assert_ptr_nonnull(f);
	cfg_usage(f, "prog", "Does things.", params, CFG_COUNT(params));
	fclose(f);
	ck_assert_ptr_nonnull(strstr(text, "prog"));
	ck_assert_ptr_nonnull(strstr(text, "Does things."));
	for (size_t i = 0; i < CFG_COUNT(params); i++)
		ck_assert_msg(strstr(text, params[i].name) != NULL, "%s missing:\n%s", params[i].name, text);
	ck_assert_ptr_nonnull(strstr(text, "(default: 7080)"));
	ck_assert_ptr_nonnull(strstr(text, "(default: INFO)"));
	ck_assert_ptr_nonnull(strstr(text, "UT_SECRET_FILE"));
	free(text);
}
END_TEST

/* Runs cfg_args with stdout and stderr sent to /dev/null. */
static int args(int argc, char **argv)
{
	int out = dup(STDOUT_FILENO), err = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY), rc;

	ck_assert(out >= 0 && err >= 0 && null >= 0);
	fflush(stdout);
	fflush(stderr);
	dup2(null, STDOUT_FILENO);
	dup2(null, STDERR_FILENO);
	rc = cfg_args(argc, argv, "prog", "Does things.", params, CFG_COUNT(params));
	fflush(stdout);
	fflush(stderr);
	dup2(out, STDOUT_FILENO);
	dup2(err, STDERR_FILENO);
	close(out);
	close(err);
	close(null);
	return rc;
}

START_TEST(args_help_version_and_unknown)
{
	char prog[] = "prog", help[] = "--help", h[] = "-h", version[] = "--version", bogus[] = "--bogus";
	char *none_argv[] = {prog, NULL}, *help_argv[] = {prog, help, NULL}, *h_argv[] = {prog, h, NULL},
	     *version_argv[] = {prog, version, NULL}, *bogus_argv[] = {prog, bogus, NULL};

	ck_assert_int_eq(args(1, none_argv), -1);
	ck_assert_int_eq(args(2, help_argv), 0);
	ck_assert_int_eq(args(2, h_argv), 0);
	ck_assert_int_eq(args(2, version_argv), 0);
	ck_assert_int_gt(args(2, bogus_argv), 0);
}
END_TEST

Suite *make_cfg_suite(void)
{
	Suite *s = suite_create("cfg");
	TCase *tc;

	tc = tcase_create("load");
	tcase_add_checked_fixture(tc, clean_env, remove_secret_file);
	tcase_add_test(tc, defaults_when_unset);
	tcase_add_test(tc, defaults_when_set_to_empty);
	tcase_add_test(tc, values_from_the_environment);
	tcase_add_loop_test(tc, int_accepts_bounds, 0, TABLE_LEN(int_bounds));
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_checked_fixture(tc, clean_env, remove_secret_file);
	tcase_add_loop_test(tc, bad_value_is_name_colon_reason, 0, TABLE_LEN(bad_values));
	tcase_add_test(tc, first_bad_value_is_named);
	tcase_add_loop_test(tc, no_default_and_unset_is_an_error_not_a_crash, 0, TABLE_LEN(no_default));
	suite_add_tcase(s, tc);

	tc = tcase_create("secret");
	tcase_add_checked_fixture(tc, clean_env, remove_secret_file);
	tcase_add_loop_test(tc, secret_from_file_without_trailing_newline, 0, TABLE_LEN(secret_files));
	tcase_add_test(tc, secret_and_secret_file_both_set_is_an_error);
	tcase_add_test(tc, secret_file_missing_is_an_error);
	tcase_add_test(tc, secret_file_empty_name_means_unset);
	suite_add_tcase(s, tc);

	tc = tcase_create("usage");
	tcase_add_test(tc, usage_lists_every_variable_with_its_default);
	tcase_add_test(tc, args_help_version_and_unknown);
	suite_add_tcase(s, tc);

	tc = tcase_create("log_level");
	tcase_add_loop_test(tc, level_parse_any_case, 0, TABLE_LEN(level_names));
	tcase_add_loop_test(tc, level_parse_rejects_unknown, 0, TABLE_LEN(bad_levels));
	suite_add_tcase(s, tc);

	return s;
}
