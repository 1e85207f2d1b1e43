/* test_read: the pure parts of the read endpoints: query-string parameters
 * (params.c), range parameters and cursors (range.c), counts parameters
 * (counts.c), entity tags and If-None-Match (etag.c). The cursors are
 * compared with base64url texts written by another implementation
 * (Python's base64.urlsafe_b64encode), not with this one's output. */
#include <stdio.h>
#include <string.h>

#include "counts.h"
#include "etag.h"
#include "params.h"
#include "range.h"
#include "suites.h"

static const unsigned char id_seq[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
static const unsigned char id_ff[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const unsigned char id_nil[16];

static const struct {
	int64_t us;
	const unsigned char *id;
	const char *text; /* base64url of 0x01, us (int64 big endian), id */
} cursors[] = {
    {0, id_seq, "AQAAAAAAAAAAAAECAwQFBgcICQoLDA0ODw"},
    {PARAMS_US_MIN, id_nil, "Af8jQAEA1EAAAAAAAAAAAAAAAAAAAAAAAA"},
    {PARAMS_US_END - 1, id_ff, "AQOERAzMc1_______________________w"},
};

START_TEST(cursor_is_base64url_of_version_instant_id)
{
	char text[RANGE_CURSOR_SIZE];
	unsigned char id[16];
	int64_t us;

	range_cursor_encode(cursors[_i].us, cursors[_i].id, text);
	ck_assert_str_eq(text, cursors[_i].text);
	ck_assert_int_eq(range_cursor_decode(cursors[_i].text, &us, id), 0);
	ck_assert_int_eq(us, cursors[_i].us);
	ck_assert_mem_eq(id, cursors[_i].id, 16);
}
END_TEST

static const struct {
	const char *text, *what;
} bad_cursors[] = {
    {"", "empty"},
    {"AQAAAAAAAAAAAAECAwQFBgcICQoLDA0OD", "33 characters"},
    {"AQAAAAAAAAAAAAECAwQFBgcICQoLDA0ODww", "35 characters"},
    {"AQAAAAAAAAAAAAECAwQFBgcICQoLDA0ODx", "non-zero bits after the last byte"},
    {"AQAAAAAAAAAAAAECAwQFBgcICQoLDA0OD+", "standard base64's '+'"},
    {"AQAAAAAAAAAAAAECAwQFBgcICQoLDA0OD=", "padding"},
    {"AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "version 2"},
    {"AQOERAzMc2AAAAAAAAAAAAAAAAAAAAAAAA", "10000-01-01T00:00:00Z"},
    {"Af8jQAEA1D__AAAAAAAAAAAAAAAAAAAAAA", "one microsecond before year 1"},
};

START_TEST(cursor_refuses_what_encode_cannot_write)
{
	unsigned char id[16];
	int64_t us;

	ck_assert_msg(range_cursor_decode(bad_cursors[_i].text, &us, id) != 0,
	              "cursor '%s' (%s) was accepted", bad_cursors[_i].text,
	              bad_cursors[_i].what);
}
END_TEST

START_TEST(params_decode_percent_and_keep_plus)
{
	const char *qs = "from=2009-09-28T19:03:12%2B02:00&&to=a+b&flag&%6Cimit=5";
	char name[PARAMS_NAME_MAX], value[PARAMS_VALUE_MAX], err[256];

	ck_assert_int_eq(params_next(&qs, name, value, err, sizeof(err)), 1);
	ck_assert_str_eq(name, "from");
	ck_assert_str_eq(value, "2009-09-28T19:03:12+02:00");
	ck_assert_int_eq(params_next(&qs, name, value, err, sizeof(err)), 1);
	ck_assert_str_eq(name, "to");
	ck_assert_str_eq(value, "a+b");
	ck_assert_int_eq(params_next(&qs, name, value, err, sizeof(err)), 1);
	ck_assert_str_eq(name, "flag");
	ck_assert_str_eq(value, "");
	ck_assert_int_eq(params_next(&qs, name, value, err, sizeof(err)), 1);
	ck_assert_str_eq(name, "limit");
	ck_assert_str_eq(value, "5");
	ck_assert_int_eq(params_next(&qs, name, value, err, sizeof(err)), 0);
	qs = NULL;
	ck_assert_int_eq(params_next(&qs, name, value, err, sizeof(err)), 0);
}
END_TEST

START_TEST(params_time_rounds_up_to_the_microsecond)
{
	int64_t us;
	char err[256], sql[TS_TEXT_MAX];

	ck_assert_int_eq(params_time("from", "1970-01-01T00:00:00.0000001Z", &us, err,
	                             sizeof(err)), 0);
	ck_assert_int_eq(us, 1);
	ck_assert_int_eq(params_time("from", "1969-12-31T23:59:59.9999991Z", &us, err,
	                             sizeof(err)), 0);
	ck_assert_int_eq(us, 0);
	ck_assert_int_eq(params_time("to", "2009-09-28T21:03:12.5+02:00", &us, err,
	                             sizeof(err)), 0);
	ck_assert_int_eq(us, 1254164592500000LL);
	params_sql_time(us, sql);
	ck_assert_str_eq(sql, "2009-09-28T19:03:12.5Z");
	ck_assert_int_eq(params_time("to", "9999-12-31T23:59:59.9999999Z", &us, err,
	                             sizeof(err)), 0);
	ck_assert_int_eq(us, PARAMS_US_END);
	params_sql_time(us, sql);
	ck_assert_str_eq(sql, "infinity");
	params_sql_time(PARAMS_US_MIN - 1, sql);
	ck_assert_str_eq(sql, "-infinity");
	params_sql_time(PARAMS_US_MIN, sql);
	ck_assert_str_eq(sql, "0001-01-01T00:00:00Z");
}
END_TEST

START_TEST(range_defaults_and_values)
{
	struct range_query q;
	char err[256];

	ck_assert_int_eq(range_parse(NULL, &q, err, sizeof(err)), 0);
	ck_assert(!q.has_from && !q.has_to && !q.has_cursor);
	ck_assert_int_eq(q.limit, RANGE_LIMIT_DEFAULT);
	ck_assert_int_eq(q.from_us, PARAMS_US_MIN);
	ck_assert_int_eq(q.to_us, PARAMS_US_END);
	ck_assert_int_eq(range_parse("limit=1000&from=1970-01-01T00:00:01Z&to=1970-01-01T00:00:02Z"
	                             "&cursor=AQAAAAAAAAAAAAECAwQFBgcICQoLDA0ODw",
	                             &q, err, sizeof(err)),
	                 0);
	ck_assert_int_eq(q.limit, 1000);
	ck_assert_int_eq(q.from_us, 1000000);
	ck_assert_int_eq(q.to_us, 2000000);
	ck_assert(q.has_cursor);
	ck_assert_int_eq(q.after_us, 0);
	ck_assert_mem_eq(q.after_id, id_seq, 16);
	ck_assert_int_eq(range_parse("from=2009-09-28T19:03:12Z&to=2009-09-28T19:03:12Z", &q, err,
	                             sizeof(err)), 0); /* empty, not wrong */
	ck_assert_int_eq(range_parse("from=2009-09-28T19:03:13Z&to=2009-09-28T19:03:12Z", &q, err,
	                             sizeof(err)), 0); /* so is to before from */
}
END_TEST

/* Each bad query string, and the text its error must begin with: the
 * parameter's name. */
static const struct {
	const char *qs, *names;
} bad_ranges[] = {
    {"limit=0", "limit:"},
    {"limit=1001", "limit:"},
    {"limit=-1", "limit:"},
    {"limit=+5", "limit:"},
    {"limit=99999999999999999999", "limit:"},
    {"limit=", "limit:"},
    {"limit", "limit:"},
    {"from=", "from:"},
    {"from=2009-09-28", "from:"},
    {"from=2009-09-28T19:03:12%00Z", "from:"},
    {"to=yesterday", "to:"},
    {"to=2009-09-28T19:03:12 02:00", "to:"},
    {"cursor=", "cursor:"},
    {"cursor=abc", "cursor:"},
    {"limit=5&limit=5", "limit:"},
    {"form=2009-09-28T19:03:12Z", "unknown parameter 'form'"},
    {"from=%zz", "from:"},
    {"%zz=1", "parameter '%zz'"},
};

START_TEST(range_bad_parameter_is_named)
{
	struct range_query q;
	char err[256] = "";

	ck_assert_msg(range_parse(bad_ranges[_i].qs, &q, err, sizeof(err)) != 0,
	              "'%s' was accepted", bad_ranges[_i].qs);
	ck_assert_msg(strncmp(err, bad_ranges[_i].names, strlen(bad_ranges[_i].names)) == 0,
	              "'%s': error '%s' does not begin with '%s'", bad_ranges[_i].qs, err,
	              bad_ranges[_i].names);
}
END_TEST

#define H (3600 * 1000000LL)
#define D (24 * H)

START_TEST(counts_round_out_to_whole_buckets)
{
	struct counts_query q;
	char err[256];

	ck_assert_int_eq(counts_parse("from=1970-01-01T10:30:00Z&to=1970-01-02T10:30:00.000001Z"
	                              "&bucket=day",
	                              &q, err, sizeof(err)),
	                 0);
	ck_assert_str_eq(q.bucket, "day");
	ck_assert_int_eq(q.from_us, 0);
	ck_assert_int_eq(q.to_us, 2 * D);
	/* Before 1970: down is further back. */
	ck_assert_int_eq(counts_parse("from=1969-12-31T23:00:01Z&to=1969-12-31T23:59:59Z&bucket=hour",
	                              &q, err, sizeof(err)),
	                 0);
	ck_assert_int_eq(q.from_us, -H);
	ck_assert_int_eq(q.to_us, 0);
	/* Already on boundaries: kept; minute is the default bucket. */
	ck_assert_int_eq(counts_parse("from=1970-01-01T00:01:00Z&to=1970-01-01T00:03:00Z", &q, err,
	                              sizeof(err)),
	                 0);
	ck_assert_str_eq(q.bucket, "minute");
	ck_assert_int_eq(q.from_us, 60000000);
	ck_assert_int_eq(q.to_us, 180000000);
	/* Empty: no bucket. */
	ck_assert_int_eq(counts_parse("from=1970-01-01T00:01:30Z&to=1970-01-01T00:01:30Z", &q, err,
	                              sizeof(err)),
	                 0);
	ck_assert_int_eq(q.to_us, q.from_us);
	/* to before from: as empty. */
	ck_assert_int_eq(counts_parse("from=1970-01-01T00:01:30Z&to=1970-01-01T00:00:30Z", &q, err,
	                              sizeof(err)),
	                 0);
	ck_assert_int_eq(q.to_us, q.from_us);
	/* The edges of the years the parser takes. */
	ck_assert_int_eq(counts_parse("bucket=day&from=9990-01-01T00:00:00Z"
	                              "&to=9999-12-31T23:59:59.999999999Z",
	                              &q, err, sizeof(err)),
	                 0);
	ck_assert_int_eq(q.to_us, PARAMS_US_END);
}
END_TEST

START_TEST(counts_bucket_limit)
{
	struct counts_query q;
	char err[256];

	/* 10,000 minutes exactly, then one more. */
	ck_assert_int_eq(counts_parse("from=1970-01-01T00:00:00Z&to=1970-01-07T22:40:00Z", &q, err,
	                              sizeof(err)),
	                 0);
	ck_assert_int_eq(counts_parse("from=1970-01-01T00:00:00Z&to=1970-01-07T22:40:00.5Z", &q,
	                              err, sizeof(err)),
	                 -1);
	ck_assert_msg(strncmp(err, "from, to:", 9) == 0, "error: %s", err);
}
END_TEST

static const struct {
	const char *qs, *names;
} bad_counts[] = {
    {"bucket=week&from=1970-01-01T00:00:00Z&to=1970-01-02T00:00:00Z", "bucket:"},
    {"bucket=&from=1970-01-01T00:00:00Z&to=1970-01-02T00:00:00Z", "bucket:"},
    {"bucket=Day&from=1970-01-01T00:00:00Z&to=1970-01-02T00:00:00Z", "bucket:"},
    {"to=1970-01-02T00:00:00Z", "from:"},
    {"from=1970-01-02T00:00:00Z", "to:"},
    {"", "from:"},
    {"from=x&to=1970-01-02T00:00:00Z", "from:"},
    {"from=1970-01-01T00:00:00Z&to=1970-01-02T00:00:00Z&limit=5", "unknown parameter 'limit'"},
    {"from=1970-01-01T00:00:00Z&from=1970-01-01T00:00:00Z&to=1970-01-02T00:00:00Z", "from:"},
};

START_TEST(counts_bad_parameter_is_named)
{
	struct counts_query q;
	char err[256] = "";

	ck_assert_msg(counts_parse(bad_counts[_i].qs, &q, err, sizeof(err)) != 0,
	              "'%s' was accepted", bad_counts[_i].qs);
	ck_assert_msg(strncmp(err, bad_counts[_i].names, strlen(bad_counts[_i].names)) == 0,
	              "'%s': error '%s' does not begin with '%s'", bad_counts[_i].qs, err,
	              bad_counts[_i].names);
}
END_TEST

START_TEST(etag_is_the_bodys_fnv1a)
{
	char a[ETAG_SIZE], b[ETAG_SIZE];

	/* FNV-1a 64 of "" and "a": the published test values. */
	etag_of("", 0, a);
	ck_assert_str_eq(a, "\"cbf29ce484222325\"");
	etag_of("a", 1, a);
	ck_assert_str_eq(a, "\"af63dc4c8601ec8c\"");
	etag_of("{\"id\":\"1\"}", 10, a);
	etag_of("{\"id\":\"2\"}", 10, b);
	ck_assert_str_ne(a, b);
}
END_TEST

static const struct {
	const char *header;
	bool match;
} inm[] = {
    {"\"0123456789abcdef\"", true},
    {"W/\"0123456789abcdef\"", true},
    {"*", true},
    {" * ", true},
    {"\"x\", W/\"0123456789abcdef\"", true},
    {"\"x\",,\t\"0123456789abcdef\" ", true},
    {"\"0123456789ABCDEF\"", false},
    {"0123456789abcdef", false},
    {"\"0123456789abcdef", false},
    {"\"x\"", false},
    {"", false},
    {"*, \"0123456789abcdef\"", false},
    {"w/\"0123456789abcdef\"", false},
    {"\"x\" junk, \"0123456789abcdef\"", false},
};

START_TEST(if_none_match_uses_weak_comparison)
{
	ck_assert_msg(etag_none_match(inm[_i].header, "\"0123456789abcdef\"") == inm[_i].match,
	              "If-None-Match: %s: want %s", inm[_i].header,
	              inm[_i].match ? "a match" : "no match");
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

Suite *make_read_suite(void)
{
	Suite *s = suite_create("read");
	TCase *tc = tcase_create("cursor");

	tcase_add_loop_test(tc, cursor_is_base64url_of_version_instant_id, 0, N(cursors));
	tcase_add_loop_test(tc, cursor_refuses_what_encode_cannot_write, 0, N(bad_cursors));
	suite_add_tcase(s, tc);

	tc = tcase_create("params");
	tcase_add_test(tc, params_decode_percent_and_keep_plus);
	tcase_add_test(tc, params_time_rounds_up_to_the_microsecond);
	tcase_add_test(tc, range_defaults_and_values);
	tcase_add_loop_test(tc, range_bad_parameter_is_named, 0, N(bad_ranges));
	tcase_add_test(tc, counts_round_out_to_whole_buckets);
	tcase_add_test(tc, counts_bucket_limit);
	tcase_add_loop_test(tc, counts_bad_parameter_is_named, 0, N(bad_counts));
	suite_add_tcase(s, tc);

	tc = tcase_create("etag");
	tcase_add_test(tc, etag_is_the_bodys_fnv1a);
	tcase_add_loop_test(tc, if_none_match_uses_weak_comparison, 0, N(inm));
	suite_add_tcase(s, tc);
	return s;
}
