/* params: a request's query string, read one parameter at a time, and the
 * instants the read endpoints (ranges, counts) take as parameters. */
#ifndef QUERY_PARAMS_H
#define QUERY_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "ts.h"

/* The longest parameter name and value kept, with the NUL. */
#define PARAMS_NAME_MAX 32
#define PARAMS_VALUE_MAX 256

/* Instants as microseconds since 1970-01-01T00:00:00Z (PostgreSQL keeps
 * microseconds). PARAMS_US_END is 10000-01-01T00:00:00Z: just past the last
 * instant the RFC 3339 parser accepts. */
#define PARAMS_US_MIN (-62135596800LL * 1000000) /* 0001-01-01T00:00:00Z */
#define PARAMS_US_END (253402300800LL * 1000000)

/* Reads the next "name=value" of the query string at *qs (NULL or "" when
 * there is none) into name[PARAMS_NAME_MAX] and value[PARAMS_VALUE_MAX],
 * both percent-decoded ('+' stays '+': a timestamp's offset, not a space),
 * and moves *qs past it. Returns 1, 0 at the end, or -1 with errstr (a name
 * or value too long, a bad or %00 escape), naming the parameter. */
int params_next(const char **qs, char *name, char *value, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Parses parameter name's value as an RFC 3339 date-time (what the command
 * service accepts) into *us, rounded up to the microsecond: for a bound
 * (>= from, < to) on microsecond values that is exact. Returns 0, or -1
 * with errstr naming the parameter. */
int params_time(const char *name, const char *value, int64_t *us, char *errstr,
                size_t errstr_size) __attribute__((warn_unused_result));

/* Writes us as PostgreSQL timestamptz input into buf[TS_TEXT_MAX]: UTC RFC
 * 3339, "-infinity" before PARAMS_US_MIN, "infinity" from PARAMS_US_END on
 * (no record lies there: the bound means the same). */
void params_sql_time(int64_t us, char *buf);

/* The instant of us, and back (us rounded up to the microsecond). */
struct ts_instant params_instant(int64_t us);
int64_t params_us(const struct ts_instant *t);

#endif
