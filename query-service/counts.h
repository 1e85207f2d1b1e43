/* counts: GET /api/v1/timestamps/counts, records per minute, hour or day
 * of event_timestamp (UTC), from the projection timestamp_counts that the
 * consumer keeps per minute in the same transaction as the records. */
#ifndef QUERY_COUNTS_H
#define QUERY_COUNTS_H

#include <stdint.h>

#include "http.h"

#define COUNTS_PATH "/api/v1/timestamps/counts"

/* The most buckets one answer covers (after rounding from and to). */
#define COUNTS_BUCKETS_MAX 10000

struct counts_query {
	const char *bucket; /* "minute", "hour" or "day" (static) */
	int64_t bucket_us;  /* its length */
	int64_t from_us, to_us; /* rounded out to whole buckets */
};

/* Hours and days are summed from the minutes, in UTC. */
#define COUNTS_STATEMENTS                                                                   \
	{"counts",                                                                          \
	 "SELECT date_trunc($1, minute, 'UTC'), sum(count)::bigint FROM timestamp_counts "  \
	 "WHERE minute >= $2::timestamptz AND minute < $3::timestamptz GROUP BY 1 ORDER BY 1", \
	 3}

/* A request waits for the database at most wait_ms in all. */
void counts_setup(int wait_ms);

/* Parses a query string (NULL: none): bucket (minute, hour or day; minute
 * when absent), from and to (RFC 3339, both required; to at or before from
 * is an empty range, no bucket), from rounded down
 * and to up to the bucket's boundaries, at most COUNTS_BUCKETS_MAX buckets
 * between them. Returns 0, or -1 with errstr naming what is wrong (an
 * unknown or repeated parameter too). */
int counts_parse(const char *qs, struct counts_query *q, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Answers GET /api/v1/timestamps/counts. Returns the status sent. */
int counts_get(const struct http_req *req);

#endif
