/* stream: GET /api/v1/timestamps/stream, every record as a Server-Sent
 * Event as soon as it is persisted (id: its seq, data: its JSON), resumable
 * with Last-Event-ID or ?after=<seq>, or replaying from=<rfc3339> first;
 * ?limit=<n> ends it after n events (scripts, Postman). */
#ifndef QUERY_STREAM_H
#define QUERY_STREAM_H

#include "feed.h"
#include "http.h"

/* The statements a stream runs through the pool, for api_statements. */
#define STREAM_STATEMENTS                                                                \
	{"stream_page",                                                                  \
	 "SELECT " FEED_COLUMNS " FROM timestamp_records WHERE seq > $1::bigint "        \
	 "ORDER BY seq LIMIT 500",                                                       \
	 1},                                                                             \
	    {"stream_probe",                                                             \
	     "SELECT seq, persisted_at >= $2::timestamptz FROM timestamp_records "       \
	     "WHERE seq >= $1::bigint ORDER BY seq LIMIT 1",                             \
	     2},                                                                         \
	{                                                                                \
		"stream_max", "SELECT coalesce(max(seq), 0) FROM timestamp_records", 0   \
	}

/* The largest ?limit: a stream that ends after that many events. */
#define STREAM_LIMIT_MAX 1000000

struct stream_opts {
	int heartbeat_ms; /* STREAM_HEARTBEAT_MS: a comment this often when idle */
	int db_wait_ms;   /* how long a page from the table may take (the pool's timeout) */
	int max_age_ms;   /* STREAM_MAX_AGE_MS: a stream ends after this long (0: never) */
};

void stream_setup(const struct stream_opts *o);

/* Serves one stream until the client goes, falls behind the ring, the
 * table is switched or the service stops. Returns the status sent. */
int stream_serve(const struct http_req *req);

/* Parses a stream position (a seq: a decimal integer, 0 to 2^63 - 1).
 * Returns 0, or -1. */
int stream_parse_seq(const char *s, long long *out) __attribute__((warn_unused_result));

#endif
