/* fuzz_ts: ts_parse_rfc3339 and ts_format (common/ts.c) on any bytes.
 *
 * Properties: no crash, leak or undefined behaviour; the parser agrees with an
 * independent reference (built on glibc's timegm) on what is accepted and on
 * the instant; what is accepted survives format(9) -> parse unchanged; fewer
 * digits truncate and never round up; a reason is given for every refusal. */
#include <string.h>
#include <time.h>

#include "fuzz.h"
#include "ts.h"

#define MIN_SEC (-62135596800LL) /* 0001-01-01T00:00:00Z */
#define END_SEC (253402300800LL) /* 10000-01-01T00:00:00Z */

static int num(const char *s, int n)
{
	int v = 0;
	for (int k = 0; k < n; k++)
		v = v * 10 + (s[k] - '0');
	return v;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* The grammar of ts.h, written as differently from ts.c as is reasonable:
 * a shape mask for the fixed part, and timegm for the calendar. */
static int ref_parse(const char *s, size_t len, struct ts_instant *out)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	struct tm tm;
	int y, mo, d, h, mi, se, off = 0;
	int32_t ns = 0;
	int64_t sec;
	size_t i;

	if (len < sizeof(shape) - 1)
		return -1;
	for (i = 0; i < sizeof(shape) - 1; i++) {
		char c = s[i], p = shape[i];
		if (p == 'd' ? !is_digit(c) : p == 'T' ? c != 'T' && c != 't' : c != p)
			return -1;
	}
	y = num(s, 4), mo = num(s + 5, 2), d = num(s + 8, 2);
	h = num(s + 11, 2), mi = num(s + 14, 2), se = num(s + 17, 2);
	if (i < len && s[i] == '.') {
		size_t start = ++i, n;
		while (i < len && is_digit(s[i]))
			i++;
		n = i - start;
		if (n < 1 || n > 9)
			return -1;
		ns = num(s + start, (int)n);
		for (; n < 9; n++)
			ns *= 10;
	}
	if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i < len && (s[i] == '+' || s[i] == '-')) {
		if (len - i < 6 || !is_digit(s[i + 1]) || !is_digit(s[i + 2]) || s[i + 3] != ':' ||
		    !is_digit(s[i + 4]) || !is_digit(s[i + 5]))
			return -1;
		if (num(s + i + 1, 2) > 23 || num(s + i + 4, 2) > 59)
			return -1;
		off = (num(s + i + 1, 2) * 60 + num(s + i + 4, 2)) * 60 * (s[i] == '-' ? -1 : 1);
		i += 6;
	} else {
		return -1;
	}
	if (i != len || y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 60)
		return -1;
	/* timegm normalises 02-30 into March: a changed date means no such day. */
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d;
	tm.tm_hour = h, tm.tm_min = mi;
	sec = (int64_t)timegm(&tm);
	if (tm.tm_year != y - 1900 || tm.tm_mon != mo - 1 || tm.tm_mday != d)
		return -1;
	sec += se - off; /* :60 is the next second */
	if (sec < MIN_SEC || sec >= END_SEC)
		return -1;
	out->sec = sec;
	out->nsec = ns;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct ts_instant t, ref, back;
	char err[128], text[TS_TEXT_MAX];
	int rc, ref_rc;
	size_t n;

	err[0] = '\0';
	rc = ts_parse_rfc3339(s, size, &t, err, sizeof(err));
	ref_rc = ref_parse(s, size, &ref);
	FUZZ_CHECK(rc == ref_rc, "ts.c says %d (%s), the reference %d, for '%.*s'", rc,
	           rc ? err : "ok", ref_rc, (int)size, s);
	if (rc != 0) {
		FUZZ_CHECK(err[0] != '\0', "no reason for refusing '%.*s'", (int)size, s);
		return 0;
	}
	FUZZ_CHECK(t.sec == ref.sec && t.nsec == ref.nsec, "'%.*s': ts.c %lld.%09d, ref %lld.%09d",
	           (int)size, s, (long long)t.sec, (int)t.nsec, (long long)ref.sec,
	           (int)ref.nsec);
	FUZZ_CHECK(t.nsec >= 0 && t.nsec <= 999999999, "nsec %d", (int)t.nsec);
	FUZZ_CHECK(t.sec >= MIN_SEC && t.sec < END_SEC, "sec %lld", (long long)t.sec);

	/* format(9) -> parse is the same instant */
	n = ts_format(&t, 9, text);
	FUZZ_CHECK(n == strlen(text) && n < TS_TEXT_MAX, "length %zu of '%s'", n, text);
	FUZZ_CHECK(ts_parse_rfc3339(text, n, &back, err, sizeof(err)) == 0, "'%s' from '%.*s': %s",
	           text, (int)size, s, err);
	FUZZ_CHECK(back.sec == t.sec && back.nsec == t.nsec, "'%.*s' -> '%s' -> %lld.%09d",
	           (int)size, s, text, (long long)back.sec, (int)back.nsec);

	/* fewer digits truncate: never later, and less than one unit earlier */
	for (int digits = 0, unit = 1000000000; digits <= 9; digits++, unit /= 10) {
		n = ts_format(&t, digits, text);
		FUZZ_CHECK(n < TS_TEXT_MAX && text[n - 1] == 'Z', "'%s'", text);
		rc = ts_parse_rfc3339(text, n, &back, err, sizeof(err));
		FUZZ_CHECK(rc == 0, "'%s': %s", text, err);
		FUZZ_CHECK(back.sec == t.sec && back.nsec <= t.nsec && t.nsec - back.nsec < unit,
		           "%d digits: '%s' for %lld.%09d", digits, text, (long long)t.sec,
		           (int)t.nsec);
	}
	return 0;
}
