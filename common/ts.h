/* ts: RFC 3339 date-time parsing and UTC formatting. */
#ifndef COMMON_TS_H
#define COMMON_TS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* An instant: seconds since 1970-01-01T00:00:00Z plus nanoseconds. */
struct ts_instant {
	int64_t sec;
	int32_t nsec; /* 0 .. 999999999 */
};

/* Longest text ts_format writes, with its NUL. */
#define TS_TEXT_MAX 40

/* Parses an RFC 3339 date-time ("2009-09-28T19:03:12.5+02:00"): 'T'/'t',
 * 'Z'/'z' or a ±hh:mm offset (hh 00-23, mm 00-59), 0-9 fractional digits,
 * years 0001-9999. A leap second (:60) becomes the next second, as
 * PostgreSQL does. The instant, in UTC, must lie in years 0001-9999 too.
 * Returns 0, or -1 with a reason in errstr. */
int ts_parse_rfc3339(const char *s, size_t len, struct ts_instant *out,
                     char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Formats as UTC RFC 3339 with 'Z', keeping at most `digits` fractional
 * digits (truncated, 0-9) and dropping trailing zeros. buf needs TS_TEXT_MAX.
 * Returns the length written. */
size_t ts_format(const struct ts_instant *t, int digits, char *buf);

/* Now, from the wall clock: the one place it is read, for instants
 * (created_at, log lines). Durations and deadlines are clock.h's. */
struct ts_instant ts_now(void);

/* Days since 1970-01-01 of a proleptic Gregorian date, and back. */
int64_t ts_days_from_civil(int64_t y, unsigned m, unsigned d);
void ts_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

#endif
