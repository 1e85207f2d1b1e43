/* range: GET /api/v1/timestamps, the records whose event_timestamp lies in
 * [from, to), ordered by (event_timestamp, id), a page at a time. The next
 * page starts after the last record of this one (keyset pagination: every
 * page costs what the first does, and records arriving meanwhile neither
 * shift nor repeat what was already read), through an opaque cursor that
 * the Link: <…>; rel="next" header carries. */
#ifndef QUERY_RANGE_H
#define QUERY_RANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

#define RANGE_PATH "/api/v1/timestamps"

#define RANGE_LIMIT_DEFAULT 100
#define RANGE_LIMIT_MAX 1000

/* A cursor: base64url (no padding) of 25 bytes, a version byte (1), the
 * last record's event_timestamp in microseconds since 1970 (int64, big
 * endian) and its id (16 bytes). With the NUL: */
#define RANGE_CURSOR_SIZE 35

/* A request's parameters. An absent from is the beginning of time, an
 * absent to the end of it. */
struct range_query {
	int64_t from_us, to_us;
	bool has_from, has_to;
	int limit;
	bool has_cursor; /* then after_us, after_id: the page starts after them */
	int64_t after_us;
	unsigned char after_id[16];
};

/* The statements range runs, to be prepared on every pooled connection. */
#define RANGE_STATEMENTS                                                                   \
	{"range_page",                                                                     \
	 "SELECT id, event_timestamp, created_at FROM timestamp_records "                  \
	 "WHERE event_timestamp >= $1::timestamptz AND event_timestamp < $2::timestamptz " \
	 "AND (event_timestamp, id) > ($3::timestamptz, $4::uuid) "                        \
	 "ORDER BY event_timestamp, id LIMIT $5::int",                                     \
	 5}

/* A request waits for the database at most wait_ms in all. */
void range_setup(int wait_ms);

/* Parses a query string (NULL: none): from, to (RFC 3339; to at or before
 * from is an empty range, not an error), limit (1 to RANGE_LIMIT_MAX),
 * cursor. Returns 0, or -1 with errstr naming the parameter that is wrong
 * (an unknown or repeated one too). */
int range_parse(const char *qs, struct range_query *q, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Writes the cursor of a record into out[RANGE_CURSOR_SIZE]. */
void range_cursor_encode(int64_t us, const unsigned char id[16], char *out);

/* Reads a cursor back: 0, or -1 when s is not one that range_cursor_encode
 * wrote (length, alphabet, version, an instant outside years 0001-9999). */
int range_cursor_decode(const char *s, int64_t *us, unsigned char id[16])
    __attribute__((warn_unused_result));

/* Answers GET /api/v1/timestamps. Returns the status sent. */
int range_get(const struct http_req *req);

#endif
