/* test_ts: RFC 3339 parsing and UTC formatting (common/ts.c).
 *
 * Expected instants are written out as Unix times computed independently
 * (Python's datetime/calendar.timegm), never with ts_days_from_civil, and the
 * sweep tests use glibc's gmtime_r/timegm as a second implementation. */
#define _GNU_SOURCE /* timegm */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "suites.h"
#include "ts.h"

/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z. */
#define MIN_SEC (-62135596800LL)
#define MAX_SEC (253402300799LL)
/* 2009-09-28T19:03:12Z, the example of the API. */
#define EX_SEC 1254164592LL

/* Parses exactly strlen(s) bytes from a heap copy without a NUL, so that
 * ASan reports any read past len. */
static int parse(const char *s, struct ts_instant *out, char *errstr, size_t errstr_size)
{
	size_t len = strlen(s);
	char *copy = malloc(len ? len : 1);
	int rc;

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, s, len);
	rc = ts_parse_rfc3339(copy, len, out, errstr, errstr_size);
	free(copy);
	return rc;
}

/* ---- accepted forms ---------------------------------------------------- */

static const struct {
	const char *text;
	int64_t sec;
	int32_t nsec;
} accepted[] = {
    {"2009-09-28T19:03:12Z", EX_SEC, 0},
    {"2009-09-28t19:03:12z", EX_SEC, 0},
    {"2009-09-28T19:03:12z", EX_SEC, 0},
    {"2009-09-28t19:03:12Z", EX_SEC, 0},
    {"2009-09-28T19:03:12+00:00", EX_SEC, 0},
    {"2009-09-28T19:03:12-00:00", EX_SEC, 0},
    {"2009-09-28T21:03:12+02:00", EX_SEC, 0},
    {"2009-09-28T14:03:12-05:00", EX_SEC, 0},
    {"2009-09-28T19:33:12+00:30", EX_SEC, 0},
    {"2009-09-28T13:48:12-05:15", EX_SEC, 0},
    {"2009-09-29T19:02:12+23:59", EX_SEC, 0},  /* largest offset */
    {"2009-09-27T19:04:12-23:59", EX_SEC, 0},  /* smallest offset */
    {"2009-09-28T19:03:12.5+02:00", 1254157392LL, 500000000},
    /* Offsets that move the instant across midnight and the year. */
    {"2000-01-01T00:30:00+01:00", 946683000LL, 0},
    {"1999-12-31T23:30:00-01:00", 946686600LL, 0},
    {"2009-09-29T01:03:12+06:00", EX_SEC, 0},
    {"2009-09-27T23:03:12-20:00", EX_SEC, 0},
    /* 0 to 9 fractional digits, nanoseconds exactly. */
    {"2009-09-28T19:03:12.0Z", EX_SEC, 0},
    {"2009-09-28T19:03:12.5Z", EX_SEC, 500000000},
    {"2009-09-28T19:03:12.12Z", EX_SEC, 120000000},
    {"2009-09-28T19:03:12.123Z", EX_SEC, 123000000},
    {"2009-09-28T19:03:12.1234Z", EX_SEC, 123400000},
    {"2009-09-28T19:03:12.12345Z", EX_SEC, 123450000},
    {"2009-09-28T19:03:12.123456Z", EX_SEC, 123456000},
    {"2009-09-28T19:03:12.1234567Z", EX_SEC, 123456700},
    {"2009-09-28T19:03:12.12345678Z", EX_SEC, 123456780},
    {"2009-09-28T19:03:12.123456789Z", EX_SEC, 123456789},
    {"2009-09-28T19:03:12.000000001Z", EX_SEC, 1},
    {"2009-09-28T19:03:12.999999999Z", EX_SEC, 999999999},
    {"2009-09-28T19:03:12.000000000Z", EX_SEC, 0},
    {"2009-09-28T21:03:12.250+02:00", EX_SEC, 250000000},
    /* The epoch and just before it. */
    {"1970-01-01T00:00:00Z", 0, 0},
    {"1969-12-31T23:59:59.999999999Z", -1, 999999999},
    {"1969-07-20T20:17:40Z", -14182940LL, 0},
    {"1900-01-01T00:00:00Z", -2208988800LL, 0},
    /* A leap second is the next second, as in PostgreSQL. */
    {"2016-12-31T23:59:60Z", 1483228800LL, 0},
    {"2016-12-31T23:59:60.5Z", 1483228800LL, 500000000},
    {"2017-01-01T00:59:60+01:00", 1483228800LL, 0},
    /* February 29 of leap years (2000 is divisible by 400). */
    {"2000-02-29T12:00:00Z", 951825600LL, 0},
    {"2024-02-29T00:00:00Z", 1709164800LL, 0},
    /* Month ends. */
    {"2009-01-31T00:00:00Z", 1233360000LL, 0},
    {"2009-04-30T00:00:00Z", 1241049600LL, 0},
    {"2009-12-31T23:59:59Z", 1262303999LL, 0},
    /* Years 0001 and 9999, and the instant range's edges. */
    {"0001-01-01T00:00:00Z", MIN_SEC, 0},
    {"0001-01-01T00:00:00-01:00", -62135593200LL, 0},
    {"0001-01-01T01:00:00+01:00", MIN_SEC, 0},
    {"9999-12-31T23:59:59Z", MAX_SEC, 0},
    {"9999-12-31T23:59:59.999999999Z", MAX_SEC, 999999999},
    {"9999-12-31T23:30:00+01:00", 253402295400LL, 0},
    {"9999-12-31T22:59:59-01:00", MAX_SEC, 0},
};

START_TEST(parse_accepts_with_exact_instant)
{
	struct ts_instant t = {.sec = 42, .nsec = 42};
	char err[128] = "";

	ck_assert_msg(parse(accepted[_i].text, &t, err, sizeof(err)) == 0,
	              "'%s' rejected: %s", accepted[_i].text, err);
	ck_assert_msg(t.sec == accepted[_i].sec && t.nsec == accepted[_i].nsec,
	              "'%s': got %lld.%09d, want %lld.%09d", accepted[_i].text,
	              (long long)t.sec, (int)t.nsec, (long long)accepted[_i].sec,
	              (int)accepted[_i].nsec);
}
END_TEST

START_TEST(parse_leap_second_equals_next_second)
{
	struct ts_instant leap, next;
	char err[128];

	ck_assert_int_eq(parse("2016-12-31T23:59:60Z", &leap, err, sizeof(err)), 0);
	ck_assert_int_eq(parse("2017-01-01T00:00:00Z", &next, err, sizeof(err)), 0);
	ck_assert(leap.sec == next.sec && leap.nsec == next.nsec);
}
END_TEST

/* ---- rejected forms ---------------------------------------------------- */

static const struct {
	const char *text;
	const char *why; /* what the row is about, for the failure message */
} rejected[] = {
    {"0000-01-01T00:00:00Z", "year 0000"},
    {"2009-00-28T19:03:12Z", "month 00"},
    {"2009-13-28T19:03:12Z", "month 13"},
    {"2009-02-30T19:03:12Z", "February 30"},
    {"2000-02-30T19:03:12Z", "February 30 in a leap year"},
    {"1900-02-29T19:03:12Z", "February 29 in 1900 (not a leap year)"},
    {"2023-02-29T19:03:12Z", "February 29 in 2023"},
    {"2100-02-29T00:00:00Z", "February 29 in 2100"},
    {"2009-01-32T19:03:12Z", "day 32"},
    {"2009-04-31T19:03:12Z", "April 31"},
    {"2009-01-00T19:03:12Z", "day 00"},
    {"2009-09-28T24:00:00Z", "hour 24"},
    {"2009-09-28T25:00:00Z", "hour 25"},
    {"2009-09-28T19:60:00Z", "minute 60"},
    {"2009-09-28T19:61:00Z", "minute 61"},
    {"2009-09-28T19:03:61Z", "second 61"},
    {"2009-09-28T19:03:99Z", "second 99"},
    {"2009-09-28T19:03:12Zjunk", "trailing junk"},
    {"2009-09-28T19:03:12Z ", "trailing space"},
    {"2009-09-28T19:03:12+02:00x", "junk after the offset"},
    {"2009-09-28T19:03:12+02:00:00", "offset with seconds"},
    {"2009-09-28T19:03:12ZZ", "two Z"},
    {"2009-09-28T19:03:12", "missing offset"},
    {"2009-09-28T19:03:12.5", "missing offset after a fraction"},
    {"2009-09-28T19:03:12.Z", "empty fraction"},
    {"2009-09-28T12:00:00.Z", "empty fraction"},
    {"2009-09-28T19:03:12.+02:00", "empty fraction before an offset"},
    {"2009-09-28T19:03:12.1234567890Z", "10 fractional digits"},
    {"2009-09-28T19:03:12,5Z", "comma as decimal separator"},
    {"2009-09-28T19:03:12+24:00", "offset +24:00"},
    {"2009-09-28T19:03:12-24:00", "offset -24:00"},
    {"2009-09-28T19:03:12+23:60", "offset +23:60"},
    {"2009-09-28T19:03:12+0200", "offset without colon"},
    {"2009-09-28T19:03:12+02", "offset without minutes"},
    {"2009-09-28T19:03:12+2:00", "one-digit offset hour"},
    {"2009-09-28T19:03:12+", "sign without offset"},
    {"2009-09-28T19:03:12 +02:00", "space before the offset"},
    {"2009-09-28 19:03:12Z", "space instead of T"},
    {"2009-09-28_19:03:12Z", "underscore instead of T"},
    {"2009-09-28T19:03Z", "missing seconds"},
    {"2009-09-28T19:3:12Z", "one-digit minute"},
    {"2009-9-28T19:03:12Z", "one-digit month"},
    {"2009/09/28T19:03:12Z", "slashes"},
    {"20090928T190312Z", "basic (compact) ISO 8601 form"},
    {"2009-09-28", "date only"},
    {"19:03:12Z", "time only"},
    {"", "empty string"},
    {"09-09-28T19:03:12Z", "two-digit year"},
    {"12009-09-28T19:03:12Z", "five-digit year"},
    {"+2009-09-28T19:03:12Z", "signed year"},
    {"-2009-09-28T19:03:12Z", "negative year"},
    {" 2009-09-28T19:03:12Z", "leading space"},
    {"2009-09-28T19:03:1aZ", "letter in the seconds"},
    {"now", "not a date"},
    /* In range as written, outside 0001-9999 once the offset is applied. */
    {"0001-01-01T00:00:00+01:00", "before 0001-01-01T00:00:00Z in UTC"},
    {"0001-01-01T00:59:59.999999999+01:00", "just before year 0001 in UTC"},
    {"9999-12-31T23:30:00-01:00", "after 9999-12-31T23:59:59Z in UTC"},
    {"9999-12-31T23:59:60Z", "leap second into year 10000"},
};

START_TEST(parse_rejects_with_reason)
{
	struct ts_instant t;
	char err[128] = "";

	ck_assert_msg(parse(rejected[_i].text, &t, err, sizeof(err)) == -1,
	              "'%s' (%s) accepted", rejected[_i].text, rejected[_i].why);
	ck_assert_msg(err[0] != '\0', "'%s' (%s): empty reason", rejected[_i].text,
	              rejected[_i].why);
}
END_TEST

START_TEST(parse_reason_is_truncated_to_errstr_size)
{
	struct ts_instant t;
	char err[8];

	memset(err, 'x', sizeof(err));
	ck_assert_int_eq(parse("garbage", &t, err, sizeof(err)), -1);
	ck_assert_uint_eq(strlen(err), sizeof(err) - 1);
}
END_TEST

/* ---- the parser reads len bytes, no more ----------------------------- */

START_TEST(parse_stops_at_len_ignoring_bytes_beyond)
{
	static const char s[] = "2009-09-28T19:03:12Zgarbage";
	struct ts_instant t;
	char err[128] = "";

	ck_assert_msg(ts_parse_rfc3339(s, 20, &t, err, sizeof(err)) == 0, "%s", err);
	ck_assert(t.sec == EX_SEC && t.nsec == 0);
	/* Digits right after len are not taken as more fraction digits. */
	ck_assert_int_eq(ts_parse_rfc3339("2009-09-28T19:03:12.5Z999", 22, &t, err, sizeof(err)), 0);
	ck_assert(t.sec == EX_SEC && t.nsec == 500000000);
}
END_TEST

START_TEST(parse_len_cutting_a_valid_string_rejects)
{
	static const char s[] = "2009-09-28T19:03:12.5Z";
	struct ts_instant t;
	char err[128];

	/* Cut before the fraction, inside the fraction, before the Z. */
	ck_assert_int_eq(ts_parse_rfc3339(s, 19, &t, err, sizeof(err)), -1);
	ck_assert_int_eq(ts_parse_rfc3339(s, 20, &t, err, sizeof(err)), -1);
	ck_assert_int_eq(ts_parse_rfc3339(s, 21, &t, err, sizeof(err)), -1);
	ck_assert_int_eq(ts_parse_rfc3339(s, 0, &t, err, sizeof(err)), -1);
}
END_TEST

static const char *const prefix_sources[] = {
    "2009-09-28T19:03:12.123456789+02:00",
    "2009-09-28T19:03:12.5Z",
    "2016-12-31T23:59:60-05:30",
};

/* Every proper prefix of a valid string, in an exact-size heap buffer (no
 * NUL after it), is rejected without reading past its end. */
START_TEST(parse_rejects_every_proper_prefix)
{
	const char *s = prefix_sources[_i];
	size_t n = strlen(s);
	struct ts_instant t;
	char err[128];

	for (size_t len = 0; len < n; len++) {
		char *copy = malloc(len ? len : 1);
		ck_assert_ptr_nonnull(copy);
		memcpy(copy, s, len);
		int rc = ts_parse_rfc3339(copy, len, &t, err, sizeof(err));
		free(copy);
		ck_assert_msg(rc == -1, "prefix '%.*s' accepted", (int)len, s);
	}
	ck_assert_int_eq(parse(s, &t, err, sizeof(err)), 0);
}
END_TEST

/* ---- formatting -------------------------------------------------------- */

static const struct {
	int64_t sec;
	int32_t nsec;
	int digits;
	const char *text;
} formatted[] = {
    {EX_SEC, 0, 9, "2009-09-28T19:03:12Z"},
    {EX_SEC, 0, 0, "2009-09-28T19:03:12Z"},
    {EX_SEC, 500000000, 9, "2009-09-28T19:03:12.5Z"},
    {EX_SEC, 120000000, 9, "2009-09-28T19:03:12.12Z"},
    {EX_SEC, 123456789, 9, "2009-09-28T19:03:12.123456789Z"},
    {EX_SEC, 123456789, 6, "2009-09-28T19:03:12.123456Z"},
    {EX_SEC, 123456789, 3, "2009-09-28T19:03:12.123Z"},
    {EX_SEC, 123456789, 1, "2009-09-28T19:03:12.1Z"},
    {EX_SEC, 123456789, 0, "2009-09-28T19:03:12Z"},
    /* Truncated, never rounded (would otherwise become 19:03:13). */
    {EX_SEC, 999999999, 6, "2009-09-28T19:03:12.999999Z"},
    {EX_SEC, 999999999, 1, "2009-09-28T19:03:12.9Z"},
    {EX_SEC, 999999999, 0, "2009-09-28T19:03:12Z"},
    {EX_SEC, 123999999, 3, "2009-09-28T19:03:12.123Z"},
    /* Trailing zeros dropped after truncation. */
    {EX_SEC, 100000999, 6, "2009-09-28T19:03:12.1Z"},
    {EX_SEC, 999, 6, "2009-09-28T19:03:12Z"},
    {EX_SEC, 1000, 6, "2009-09-28T19:03:12.000001Z"},
    {EX_SEC, 1, 9, "2009-09-28T19:03:12.000000001Z"},
    {EX_SEC, 10, 9, "2009-09-28T19:03:12.00000001Z"},
    {EX_SEC, 50000, 9, "2009-09-28T19:03:12.00005Z"},
    /* More than 9 digits asked: 9. */
    {EX_SEC, 123456789, 12, "2009-09-28T19:03:12.123456789Z"},
    /* Epoch, negative Unix times, day boundaries. */
    {0, 0, 9, "1970-01-01T00:00:00Z"},
    {-1, 0, 9, "1969-12-31T23:59:59Z"},
    {-1, 999999999, 9, "1969-12-31T23:59:59.999999999Z"},
    {-86400, 0, 9, "1969-12-31T00:00:00Z"},
    {-86401, 0, 9, "1969-12-30T23:59:59Z"},
    {-14182940, 0, 9, "1969-07-20T20:17:40Z"},
    {-2208988800LL, 0, 9, "1900-01-01T00:00:00Z"},
    {951825600LL, 0, 9, "2000-02-29T12:00:00Z"},
    {1709164800LL, 0, 9, "2024-02-29T00:00:00Z"},
    {1483228800LL, 0, 9, "2017-01-01T00:00:00Z"},
    /* Years 0001 and 9999, zero-padded. */
    {MIN_SEC, 0, 9, "0001-01-01T00:00:00Z"},
    {MIN_SEC + 86399, 5, 9, "0001-01-01T23:59:59.000000005Z"},
    {-62104060800LL, 0, 9, "0002-01-01T00:00:00Z"},
    {-59042995200LL, 0, 9, "0099-01-01T00:00:00Z"},
    {MAX_SEC, 0, 9, "9999-12-31T23:59:59Z"},
    {MAX_SEC, 999999999, 9, "9999-12-31T23:59:59.999999999Z"},
    {MAX_SEC, 999999999, 6, "9999-12-31T23:59:59.999999Z"},
};

START_TEST(format_gives_exact_text)
{
	struct ts_instant t = {.sec = formatted[_i].sec, .nsec = formatted[_i].nsec};
	char buf[TS_TEXT_MAX];
	size_t n;

	memset(buf, '#', sizeof(buf));
	n = ts_format(&t, formatted[_i].digits, buf);
	ck_assert_str_eq(buf, formatted[_i].text);
	ck_assert_uint_eq(n, strlen(formatted[_i].text));
}
END_TEST

START_TEST(format_longest_fits_text_max)
{
	struct ts_instant t = {.sec = MAX_SEC, .nsec = 999999999};
	char buf[TS_TEXT_MAX];

	ck_assert_uint_lt(ts_format(&t, 9, buf), TS_TEXT_MAX);
}
END_TEST

/* ---- round trips ------------------------------------------------------- */

static const struct ts_instant round_trip[] = {
    {0, 0},
    {0, 1},
    {-1, 999999999},
    {EX_SEC, 0},
    {EX_SEC, 500000000},
    {EX_SEC, 123456789},
    {EX_SEC, 100},
    {951825600LL, 999999000},
    {1709164800LL, 1},
    {1483228799LL, 999999999},
    {-2208988800LL, 42},
    {MIN_SEC, 0},
    {MIN_SEC, 999999999},
    {MAX_SEC, 0},
    {MAX_SEC, 999999999},
    {4102444800LL, 0},    /* 2100-01-01 */
    {32503680000LL, 7},   /* 3000-01-01 */
    {-30610224000LL, 12}, /* 1000-01-01 */
};

START_TEST(parse_of_format_gives_the_same_instant)
{
	const struct ts_instant *want = &round_trip[_i];
	struct ts_instant got;
	char buf[TS_TEXT_MAX], err[128] = "";

	ts_format(want, 9, buf);
	ck_assert_msg(parse(buf, &got, err, sizeof(err)) == 0, "'%s': %s", buf, err);
	ck_assert_msg(got.sec == want->sec && got.nsec == want->nsec,
	              "'%s' gave %lld.%09d, want %lld.%09d", buf, (long long)got.sec,
	              (int)got.nsec, (long long)want->sec, (int)want->nsec);
}
END_TEST

/* Every 86399.xxx s + a few hours from year 1 to 9999, against glibc's
 * gmtime_r (formatting) and timegm (parsing). */
START_TEST(format_and_parse_agree_with_libc_over_all_years)
{
	const int64_t step = 86400LL * 37 + 3599;
	long count = 0;

	for (int64_t s = MIN_SEC; s <= MAX_SEC; s += step, count++) {
		struct ts_instant t = {.sec = s, .nsec = (int32_t)((s & 0x7fff) * 30517)};
		struct ts_instant back;
		char buf[TS_TEXT_MAX], want[64], err[128] = "";
		time_t tt = (time_t)s;
		struct tm tm;

		ck_assert_ptr_nonnull(gmtime_r(&tt, &tm));
		snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
		         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		ts_format(&t, 0, buf);
		ck_assert_msg(strncmp(buf, want, strlen(want)) == 0 && strcmp(buf + strlen(want), "Z") == 0,
		              "%lld: got %s, libc says %sZ", (long long)s, buf, want);

		ts_format(&t, 9, buf);
		ck_assert_msg(parse(buf, &back, err, sizeof(err)) == 0, "'%s': %s", buf, err);
		ck_assert_msg(back.sec == (int64_t)timegm(&tm) && back.sec == s && back.nsec == t.nsec,
		              "'%s' parsed as %lld.%09d", buf, (long long)back.sec, (int)back.nsec);
	}
	ck_assert_int_gt(count, 30000);
}
END_TEST

/* PostgreSQL keeps years from 4713 BC to 294276 AD, and a record read back
 * may carry one outside 0001-9999: the text is libc's, however many digits
 * the year takes (and a sign before year 0), on both sides of each bound. */
START_TEST(format_agrees_with_libc_beyond_four_digit_years)
{
	static const int64_t bounds[] = {MIN_SEC - 366LL * 86400, MIN_SEC, MAX_SEC + 1,
	                                 9223372036LL * 900};
	long count = 0;

	for (size_t b = 0; b < sizeof(bounds) / sizeof(bounds[0]); b++) {
		for (int64_t s = bounds[b] - 3 * 86400LL * 366; s <= bounds[b] + 3 * 86400LL * 366;
		     s += 86400LL * 7 + 3599, count++) {
			struct ts_instant t = {.sec = s, .nsec = 0};
			char buf[TS_TEXT_MAX], want[64];
			time_t tt = (time_t)s;
			struct tm tm;

			ck_assert_ptr_nonnull(gmtime_r(&tt, &tm));
			snprintf(want, sizeof(want), "%04lld-%02d-%02dT%02d:%02d:%02dZ",
			         (long long)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
			         tm.tm_min, tm.tm_sec);
			ts_format(&t, 9, buf);
			ck_assert_msg(strcmp(buf, want) == 0, "%lld: got %s, libc says %s", (long long)s,
			              buf, want);
		}
	}
	ck_assert_int_gt(count, 1000);
}
END_TEST

/* ---- civil-date helpers (public API) ---------------------------------- */

START_TEST(days_from_civil_and_back)
{
	int64_t y;
	unsigned m, d;

	ck_assert(ts_days_from_civil(1970, 1, 1) == 0);
	ck_assert(ts_days_from_civil(2000, 3, 1) == 11017);
	ck_assert(ts_days_from_civil(1, 1, 1) == MIN_SEC / 86400);
	ck_assert(ts_days_from_civil(10000, 1, 1) == (MAX_SEC + 1) / 86400);
	ts_civil_from_days(-1, &y, &m, &d);
	ck_assert(y == 1969 && m == 12 && d == 31);
	ts_civil_from_days(11016, &y, &m, &d);
	ck_assert(y == 2000 && m == 2 && d == 29);
}
END_TEST

START_TEST(now_is_a_valid_recent_instant)
{
	struct ts_instant t = ts_now();

	ck_assert(t.sec > 1700000000LL && t.sec < MAX_SEC);
	ck_assert(t.nsec >= 0 && t.nsec <= 999999999);
}
END_TEST

Suite *make_ts_suite(void)
{
	Suite *s = suite_create("ts");
	TCase *tc;

	tc = tcase_create("parse_accept");
	tcase_add_loop_test(tc, parse_accepts_with_exact_instant, 0, TABLE_LEN(accepted));
	tcase_add_test(tc, parse_leap_second_equals_next_second);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse_reject");
	tcase_add_loop_test(tc, parse_rejects_with_reason, 0, TABLE_LEN(rejected));
	tcase_add_test(tc, parse_reason_is_truncated_to_errstr_size);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse_len");
	tcase_add_test(tc, parse_stops_at_len_ignoring_bytes_beyond);
	tcase_add_test(tc, parse_len_cutting_a_valid_string_rejects);
	tcase_add_loop_test(tc, parse_rejects_every_proper_prefix, 0, TABLE_LEN(prefix_sources));
	suite_add_tcase(s, tc);

	tc = tcase_create("format");
	tcase_add_loop_test(tc, format_gives_exact_text, 0, TABLE_LEN(formatted));
	tcase_add_test(tc, format_longest_fits_text_max);
	suite_add_tcase(s, tc);

	tc = tcase_create("round_trip");
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, parse_of_format_gives_the_same_instant, 0, TABLE_LEN(round_trip));
	tcase_add_test(tc, format_and_parse_agree_with_libc_over_all_years);
	tcase_add_test(tc, format_agrees_with_libc_beyond_four_digit_years);
	suite_add_tcase(s, tc);

	tc = tcase_create("civil");
	tcase_add_test(tc, days_from_civil_and_back);
	tcase_add_test(tc, now_is_a_valid_recent_instant);
	suite_add_tcase(s, tc);

	return s;
}
