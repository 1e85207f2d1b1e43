/* test_jsonw: JSON string escaping into fixed buffers (common/jsonw.c).
 * json-c serves as the independent reader of what jsonw writes. */
#include <json-c/json.h>
#include <string.h>

#include "jsonw.h"
#include "suites.h"

static const struct {
	const char *in;
	size_t len; /* (size_t)-1: strlen */
	const char *out;
} escapes[] = {
    {"plain text", (size_t)-1, "plain text"},
    {"", (size_t)-1, ""},
    {"say \"hi\"", (size_t)-1, "say \\\"hi\\\""},
    {"C:\\dir\\file", (size_t)-1, "C:\\\\dir\\\\file"},
    {"line1\nline2", (size_t)-1, "line1\\nline2"},
    {"\x01", (size_t)-1, "\\u0001"},
    {"a\x1f" "b", (size_t)-1, "a\\u001fb"},
    {"tab\there", (size_t)-1, "tab\\u0009here"},
    {"cr\rhere", (size_t)-1, "cr\\u000dhere"},
    {"del\x7f", (size_t)-1, "del\\u007f"},
    {"/slash/", (size_t)-1, "/slash/"},
    {"caf\xc3\xa9 \xe2\x82\xac", (size_t)-1, "caf\xc3\xa9 \xe2\x82\xac"}, /* UTF-8 kept */
    {"nul\0inside", 10, "nul\\u0000inside"},                             /* with len */
    {"abcdef", 3, "abc"},
    {"\"\\\n", (size_t)-1, "\\\"\\\\\\n"},
    /* Bytes that are not UTF-8 become U+FFFD, so the output is valid JSON. */
    {"bad\xff", (size_t)-1, "bad\\ufffd"},
    {"\xc3", (size_t)-1, "\\ufffd"},                 /* truncated sequence */
    {"\xc0\xaf", (size_t)-1, "\\ufffd\\ufffd"},     /* overlong '/' */
    {"\xed\xa0\x80", (size_t)-1, "\\ufffd\\ufffd\\ufffd"}, /* surrogate */
    {"\xf0\x9f\x98\x80", (size_t)-1, "\xf0\x9f\x98\x80"}, /* 4-byte kept */
};

START_TEST(escape_gives_exact_text)
{
	char buf[128];
	size_t pos = 0;

	memset(buf, '#', sizeof(buf));
	ck_assert_int_eq(jsonw_escape(buf, sizeof(buf), &pos, escapes[_i].in, escapes[_i].len), 0);
	ck_assert_str_eq(buf, escapes[_i].out);
	ck_assert_uint_eq(pos, strlen(escapes[_i].out));
}
END_TEST

START_TEST(escape_appends_at_pos)
{
	char buf[64];
	size_t pos = 0;

	ck_assert_int_eq(jsonw_append(buf, sizeof(buf), &pos, "{\"k\":\""), 0);
	ck_assert_int_eq(jsonw_escape(buf, sizeof(buf), &pos, "a\"b", (size_t)-1), 0);
	ck_assert_int_eq(jsonw_append(buf, sizeof(buf), &pos, "\",\"n\":%d}", 42), 0);
	ck_assert_str_eq(buf, "{\"k\":\"a\\\"b\",\"n\":42}");
	ck_assert_uint_eq(pos, strlen(buf));
}
END_TEST

/* Every byte 0x01-0x7f and some UTF-8, escaped by jsonw, read back by
 * json-c: the same string. */
START_TEST(escaped_text_reads_back_identically_with_json_c)
{
	char in[256], buf[2048];
	size_t pos = 0, n = 0;
	struct json_object *jobj, *field;

	for (int c = 1; c < 0x80; c++)
		in[n++] = (char)c;
	memcpy(in + n, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9);
	n += 9;
	in[n] = '\0';

	ck_assert_int_eq(jsonw_append(buf, sizeof(buf), &pos, "{\"s\":\""), 0);
	ck_assert_int_eq(jsonw_escape(buf, sizeof(buf), &pos, in, n), 0);
	ck_assert_int_eq(jsonw_append(buf, sizeof(buf), &pos, "\"}"), 0);

	jobj = json_tokener_parse(buf);
	ck_assert_msg(jobj != NULL, "json-c cannot parse: %s", buf);
	ck_assert(json_object_object_get_ex(jobj, "s", &field));
	ck_assert_int_eq(json_object_get_string_len(field), (int)n);
	ck_assert(memcmp(json_object_get_string(field), in, n) == 0);
	json_object_put(jobj);
}
END_TEST

/* ---- truncation ------------------------------------------------------------- */

START_TEST(escape_truncates_and_stays_terminated)
{
	char buf[16];
	size_t pos = 0;

	memset(buf, '#', sizeof(buf));
	ck_assert_int_eq(jsonw_escape(buf, 8, &pos, "abcdefghij", (size_t)-1), -1);
	ck_assert_str_eq(buf, "abcdefg");
	ck_assert_uint_eq(pos, 7);
	ck_assert_int_eq(buf[8], '#'); /* nothing written past size */
}
END_TEST

START_TEST(escape_exact_fit_is_not_truncation)
{
	char buf[4];
	size_t pos = 0;

	ck_assert_int_eq(jsonw_escape(buf, sizeof(buf), &pos, "abc", (size_t)-1), 0);
	ck_assert_str_eq(buf, "abc");
	ck_assert_uint_eq(pos, 3);
}
END_TEST

/* An escape sequence that does not fit is left out whole, never cut. */
START_TEST(escape_never_cuts_an_escape_sequence)
{
	static const char *const ins[] = {"ab\x01", "abcd\"", "abcd\\", "abcd\n", "abcd\x7f"};
	static const char *const outs[] = {"ab", "abcd", "abcd", "abcd", "abcd"};

	for (size_t k = 0; k < sizeof(ins) / sizeof(ins[0]); k++) {
		char buf[16];
		size_t pos = 0;

		memset(buf, '#', sizeof(buf));
		ck_assert_int_eq(jsonw_escape(buf, 6, &pos, ins[k], (size_t)-1), -1);
		ck_assert_str_eq(buf, outs[k]);
		ck_assert_uint_eq(pos, strlen(outs[k]));
		ck_assert_int_eq(buf[6], '#');
	}
}
END_TEST

START_TEST(escape_into_a_full_buffer)
{
	char buf[4] = "abc";
	size_t pos = 3;

	ck_assert_int_eq(jsonw_escape(buf, sizeof(buf), &pos, "x", (size_t)-1), -1);
	ck_assert_str_eq(buf, "abc");
	ck_assert_uint_le(pos, sizeof(buf) - 1);
}
END_TEST

START_TEST(append_truncates_and_stays_terminated)
{
	char buf[16];
	size_t pos = 0;

	memset(buf, '#', sizeof(buf));
	ck_assert_int_eq(jsonw_append(buf, 8, &pos, "%s-%d", "abcdef", 12345), -1);
	ck_assert_str_eq(buf, "abcdef-");
	ck_assert_uint_eq(pos, 7);
	ck_assert_int_eq(buf[8], '#');
	/* A further append to the full buffer fails and changes nothing. */
	ck_assert_int_eq(jsonw_append(buf, 8, &pos, "x"), -1);
	ck_assert_str_eq(buf, "abcdef-");
	ck_assert_uint_eq(pos, 7);
}
END_TEST

START_TEST(append_formats)
{
	char buf[64];
	size_t pos = 0;

	ck_assert_int_eq(jsonw_append(buf, sizeof(buf), &pos, "%s=%d", "n", -7), 0);
	ck_assert_int_eq(jsonw_append(buf, sizeof(buf), &pos, ",%05.2f|%x", 2.5, 255u), 0);
	ck_assert_str_eq(buf, "n=-7,02.50|ff");
	ck_assert_uint_eq(pos, strlen(buf));
}
END_TEST

Suite *make_jsonw_suite(void)
{
	Suite *s = suite_create("jsonw");
	TCase *tc;

	tc = tcase_create("escape");
	tcase_add_loop_test(tc, escape_gives_exact_text, 0, TABLE_LEN(escapes));
	tcase_add_test(tc, escape_appends_at_pos);
	tcase_add_test(tc, escaped_text_reads_back_identically_with_json_c);
	suite_add_tcase(s, tc);

	tc = tcase_create("truncation");
	tcase_add_test(tc, escape_truncates_and_stays_terminated);
	tcase_add_test(tc, escape_exact_fit_is_not_truncation);
	tcase_add_test(tc, escape_never_cuts_an_escape_sequence);
	tcase_add_test(tc, escape_into_a_full_buffer);
	tcase_add_test(tc, append_truncates_and_stays_terminated);
	tcase_add_test(tc, append_formats);
	suite_add_tcase(s, tc);

	return s;
}
