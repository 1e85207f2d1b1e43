/* counts: records per bucket of event_timestamp (see counts.h). */
#include "counts.h"

#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "lookup.h"
#include "params.h"
#include "pool.h"

static const struct {
	const char *name;
	int64_t us;
} buckets[] = {
    {"minute", 60 * 1000000LL},
    {"hour", 3600 * 1000000LL},
    {"day", 86400 * 1000000LL}, /* UTC days have no leap seconds, in PostgreSQL too */
};

static int wait_ms = 2000;

void counts_setup(int wait)
{
	wait_ms = wait;
}

static int64_t floor_to(int64_t us, int64_t step)
{
	int64_t r = us % step;

	return r < 0 ? us - r - step : us - r;
}

int counts_parse(const char *qs, struct counts_query *q, char *errstr, size_t errstr_size)
{
	char name[PARAMS_NAME_MAX], value[PARAMS_VALUE_MAX];
	bool has_bucket = false, has_from = false, has_to = false, empty;
	int64_t n;
	int rc;

	*q = (struct counts_query){.bucket = buckets[0].name, .bucket_us = buckets[0].us};
	while ((rc = params_next(&qs, name, value, errstr, errstr_size)) == 1) {
		bool *seen = strcmp(name, "bucket") == 0 ? &has_bucket
		             : strcmp(name, "from") == 0 ? &has_from
		             : strcmp(name, "to") == 0   ? &has_to
		                                         : NULL;
		if (seen == NULL) {
			snprintf(errstr, errstr_size,
			         "unknown parameter '%s': expected bucket, from, to", name);
			return -1;
		}
		if (*seen) {
			snprintf(errstr, errstr_size, "%s: given twice", name);
			return -1;
		}
		*seen = true;
		rc = 0;
		if (seen == &has_from) {
			rc = params_time("from", value, &q->from_us, errstr, errstr_size);
		} else if (seen == &has_to) {
			rc = params_time("to", value, &q->to_us, errstr, errstr_size);
		} else {
			size_t i = 0;

			while (i < sizeof(buckets) / sizeof(buckets[0]) &&
			       strcmp(value, buckets[i].name) != 0)
				i++;
			if (i == sizeof(buckets) / sizeof(buckets[0])) {
				snprintf(errstr, errstr_size,
				         "bucket: '%.32s' is not one of minute, hour, day", value);
				return -1;
			}
			q->bucket = buckets[i].name;
			q->bucket_us = buckets[i].us;
		}
		if (rc != 0)
			return -1;
	}
	if (rc < 0)
		return -1;
	if (!has_from || !has_to) {
		snprintf(errstr, errstr_size, "%s: required (an RFC 3339 date-time)",
		         has_from ? "to" : "from");
		return -1;
	}
	/* Whole buckets: every bucket that [from, to) touches (none when it
	 * is empty: to at or before from). */
	empty = q->to_us <= q->from_us;
	q->from_us = floor_to(q->from_us, q->bucket_us);
	q->to_us = empty ? q->from_us : -floor_to(-q->to_us, q->bucket_us);
	n = (q->to_us - q->from_us) / q->bucket_us;
	if (n > COUNTS_BUCKETS_MAX) {
		snprintf(errstr, errstr_size,
		         "from, to: the range covers %lld %ss, at most %d in one answer: narrow it "
		         "or take a larger bucket",
		         (long long)n, q->bucket, COUNTS_BUCKETS_MAX);
		return -1;
	}
	return 0;
}

int counts_get(const struct http_req *req)
{
	char errstr[512], from[TS_TEXT_MAX], to[TS_TEXT_MAX], start[TS_TEXT_MAX];
	const char *vals[3];
	struct timespec deadline = clock_deadline(wait_ms);
	struct counts_query q;
	struct ts_instant t;
	PGresult *res;
	char *body;
	size_t size, pos = 0;
	int64_t count;
	int n, status;

	if (counts_parse(req->ri->query_string, &q, errstr, sizeof(errstr)) != 0)
		return http_send_error(req, 400, NULL, "%s", errstr);
	params_sql_time(q.from_us, from);
	params_sql_time(q.to_us, to);
	vals[0] = q.bucket;
	vals[1] = from;
	vals[2] = to;
	struct trace_span *span = pool_span(pool_reads, &req->trace, "SELECT", "timestamp_counts");
	res = pool_exec(pool_reads, "counts", 3, vals, 1, &deadline, errstr, sizeof(errstr));
	if (res == NULL)
		trace_error(span, "%s", errstr);
	else
		trace_attr_int(span, "db.response.returned_rows", PQntuples(res));
	trace_end(span);
	if (res == NULL)
		return http_send_error(req, 503, "Retry-After: 1\r\nCache-Control: no-store\r\n",
		                       "database unavailable: %s", errstr);
	n = PQntuples(res);
	for (int row = 0; row < n; row++) {
		if (PQnfields(res) != 2 || PQgetlength(res, row, 0) != 8 ||
		    PQgetlength(res, row, 1) != 8) {
			PQclear(res);
			return http_send_error(req, 500, NULL, "unexpected column format");
		}
	}
	size = (size_t)n * (TS_TEXT_MAX + 48) + 64;
	if ((body = malloc(size)) == NULL) {
		PQclear(res);
		return http_send_error(req, 500, NULL, "out of memory for %d buckets", n);
	}
	pos += (size_t)snprintf(body, size, "{\"bucket\":\"%s\",\"counts\":[", q.bucket);
	for (int row = 0; row < n; row++) {
		uint64_t be;

		t = lookup_pg_time(PQgetvalue(res, row, 0));
		ts_format(&t, 6, start);
		memcpy(&be, PQgetvalue(res, row, 1), 8);
		count = (int64_t)be64toh(be);
		pos += (size_t)snprintf(body + pos, size - pos, "%s{\"start\":\"%s\",\"count\":%lld}",
		                        row > 0 ? "," : "", start, (long long)count);
	}
	snprintf(body + pos, size - pos, "]}");
	PQclear(res);
	/* New records change the counts: not cached anywhere. */
	status = http_send_json(req, 200, "Cache-Control: no-store\r\n", body);
	free(body);
	return status;
}
