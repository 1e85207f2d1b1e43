/* params: query-string parameters and instants (see params.h). */
#include "params.h"

#include <stdio.h>
#include <string.h>

#include "http.h"

int params_next(const char **qs, char *name, char *value, char *errstr, size_t errstr_size)
{
	const char *p = *qs, *amp, *eq;
	size_t len, nlen;
	int rc;

	while (p != NULL && *p == '&') /* "a=1&&b=2": empty parts are nothing */
		p++;
	if (p == NULL || *p == '\0')
		return 0;
	amp = strchr(p, '&');
	len = amp != NULL ? (size_t)(amp - p) : strlen(p);
	*qs = p + len;
	eq = memchr(p, '=', len);
	nlen = eq != NULL ? (size_t)(eq - p) : len;
	if ((rc = http_percent_decode(p, nlen, name, PARAMS_NAME_MAX)) != 0) {
		snprintf(errstr, errstr_size, "parameter '%.*s': %s", (int)(nlen < 40 ? nlen : 40), p,
		         rc == -2 ? "name too long" : "bad percent escape in its name");
		return -1;
	}
	if (eq == NULL) {
		value[0] = '\0';
		return 1;
	}
	rc = http_percent_decode(eq + 1, len - nlen - 1, value, PARAMS_VALUE_MAX);
	if (rc != 0) {
		snprintf(errstr, errstr_size, "%s: %s", name,
		         rc == -2 ? "value longer than 255 bytes" : "bad percent escape");
		return -1;
	}
	return 1;
}

int64_t params_us(const struct ts_instant *t)
{
	return t->sec * 1000000 + (t->nsec + 999) / 1000;
}

struct ts_instant params_instant(int64_t us)
{
	int64_t sec = us / 1000000, rem = us % 1000000;

	if (rem < 0) {
		rem += 1000000;
		sec--;
	}
	return (struct ts_instant){.sec = sec, .nsec = (int32_t)rem * 1000};
}

int params_time(const char *name, const char *value, int64_t *us, char *errstr,
                size_t errstr_size)
{
	struct ts_instant t;
	char why[128];

	if (value[0] == '\0') {
		snprintf(errstr, errstr_size,
		         "%s: empty; expected an RFC 3339 date-time like 2009-09-28T19:03:12Z", name);
		return -1;
	}
	if (ts_parse_rfc3339(value, strlen(value), &t, why, sizeof(why)) != 0) {
		snprintf(errstr, errstr_size,
		         "%s: %s; expected an RFC 3339 date-time like 2009-09-28T19:03:12Z or "
		         "2009-09-28T21:03:12.5+02:00 (%%2B for the +)",
		         name, why);
		return -1;
	}
	*us = params_us(&t);
	return 0;
}

void params_sql_time(int64_t us, char *buf)
{
	struct ts_instant t;

	if (us < PARAMS_US_MIN) {
		snprintf(buf, TS_TEXT_MAX, "-infinity");
	} else if (us >= PARAMS_US_END) {
		snprintf(buf, TS_TEXT_MAX, "infinity");
	} else {
		t = params_instant(us);
		ts_format(&t, 6, buf);
	}
}
