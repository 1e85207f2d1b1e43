/* ts: RFC 3339 date-time parsing and UTC formatting. */
#include "ts.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* 0001-01-01T00:00:00Z and 10000-01-01T00:00:00Z in Unix seconds. */
#define TS_MIN_SEC (-62135596800LL)
#define TS_END_SEC (253402300800LL)

/* Howard Hinnant's civil-date algorithms (public domain). */
int64_t ts_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

void ts_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	const unsigned doe = (unsigned)(z - era * 146097);
	const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Reads exactly n digits at s[*i]; returns the value or -1. */
static int digits(const char *s, size_t len, size_t *i, int n)
{
	int v = 0;

	if (*i + (size_t)n > len)
		return -1;
	for (int k = 0; k < n; k++) {
		char c = s[*i + (size_t)k];
		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*i += (size_t)n;
	return v;
}

static int expect(const char *s, size_t len, size_t *i, char a, char b)
{
	if (*i >= len || (s[*i] != a && s[*i] != b))
		return -1;
	(*i)++;
	return 0;
}

int ts_parse_rfc3339(const char *s, size_t len, struct ts_instant *out,
                     char *errstr, size_t errstr_size)
{
	int year, mon, day, hour, min, sec, off = 0;
	int32_t nsec = 0;
	size_t i = 0;
	const char *why;

#define FAIL(reason)                                                         \
	do {                                                                 \
		why = (reason);                                              \
		goto failed;                                                 \
	} while (0)

	if ((year = digits(s, len, &i, 4)) < 0 || expect(s, len, &i, '-', '-') ||
	    (mon = digits(s, len, &i, 2)) < 0 || expect(s, len, &i, '-', '-') ||
	    (day = digits(s, len, &i, 2)) < 0)
		FAIL("date must be YYYY-MM-DD");
	if (expect(s, len, &i, 'T', 't'))
		FAIL("date and time must be separated by 'T'");
	if ((hour = digits(s, len, &i, 2)) < 0 || expect(s, len, &i, ':', ':') ||
	    (min = digits(s, len, &i, 2)) < 0 || expect(s, len, &i, ':', ':') ||
	    (sec = digits(s, len, &i, 2)) < 0)
		FAIL("time must be hh:mm:ss");
	if (i < len && s[i] == '.') {
		int n = 0;
		i++;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			if (++n > 9)
				FAIL("at most 9 fractional digits");
			nsec = nsec * 10 + (s[i++] - '0');
		}
		if (n == 0)
			FAIL("fraction needs at least one digit");
		for (; n < 9; n++)
			nsec *= 10;
	}
	if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i < len && (s[i] == '+' || s[i] == '-')) {
		int sign = s[i++] == '-' ? -1 : 1, oh, om;
		if ((oh = digits(s, len, &i, 2)) < 0 || expect(s, len, &i, ':', ':') ||
		    (om = digits(s, len, &i, 2)) < 0)
			FAIL("offset must be Z or +hh:mm/-hh:mm");
		if (oh > 23 || om > 59)
			FAIL("offset out of range");
		off = sign * (oh * 3600 + om * 60);
	} else {
		FAIL("missing offset (Z or +hh:mm/-hh:mm)");
	}
	if (i != len)
		FAIL("unexpected characters after the offset");
	if (year < 1)
		FAIL("year must be 0001-9999");
	if (mon < 1 || mon > 12)
		FAIL("month out of range");
	if (day < 1 || day > days_in_month(year, mon))
		FAIL("day out of range for the month");
	if (hour > 23)
		FAIL("hour out of range");
	if (min > 59)
		FAIL("minute out of range");
	if (sec > 60)
		FAIL("second out of range");

	const int64_t unix_sec = ts_days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400 +
	                         hour * 3600 + min * 60 + sec - off;
	if (unix_sec < TS_MIN_SEC || unix_sec >= TS_END_SEC)
		FAIL("instant outside years 0001-9999 in UTC");
	out->sec = unix_sec;
	out->nsec = nsec;
	return 0;
failed:
	snprintf(errstr, errstr_size, "%s", why);
	return -1;
#undef FAIL
}

size_t ts_format(const struct ts_instant *t, int ndigits, char *buf)
{
	int64_t days = t->sec / 86400, rem = t->sec % 86400, y;
	unsigned m, d;
	int n;

	if (rem < 0) {
		rem += 86400;
		days--;
	}
	ts_civil_from_days(days, &y, &m, &d);
	if (y >= 0 && y <= 9999) {
		/* By hand: snprintf was a tenth of the consumer's CPU time per
		 * row in perf (two timestamps a row). */
		static const int at[7] = {0, 2, 5, 8, 11, 14, 17}; /* each field's 2 digits */
		const unsigned f[7] = {(unsigned)y / 100,      (unsigned)y % 100,
		                       m,                      d,
		                       (unsigned)(rem / 3600), (unsigned)(rem / 60 % 60),
		                       (unsigned)(rem % 60)};

		memcpy(buf, "0000-00-00T00:00:00", 19);
		for (int i = 0; i < 7; i++) {
			buf[at[i]] = (char)('0' + f[i] / 10);
			buf[at[i] + 1] = (char)('0' + f[i] % 10);
		}
		n = 19;
	} else {
		/* PostgreSQL's years beyond 9999 or before year 1 (read back
		 * from a database): as many digits as they take. */
		n = snprintf(buf, TS_TEXT_MAX, "%04lld-%02u-%02uT%02d:%02d:%02d", (long long)y, m,
		             d, (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
	}
	if (ndigits > 9)
		ndigits = 9;
	if (ndigits > 0 && t->nsec > 0) {
		int32_t frac = t->nsec;
		int k;
		for (k = 9; k > ndigits; k--)
			frac /= 10;
		for (; k > 0 && frac % 10 == 0; k--)
			frac /= 10;
		if (k > 0) {
			buf[n++] = '.';
			for (int j = k - 1; j >= 0; j--, frac /= 10)
				buf[n + j] = (char)('0' + frac % 10);
			n += k;
		}
	}
	buf[n++] = 'Z';
	buf[n] = '\0';
	return (size_t)n;
}

struct ts_instant ts_now(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (struct ts_instant){.sec = now.tv_sec, .nsec = (int32_t)now.tv_nsec};
}
