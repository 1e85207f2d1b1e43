/* wait: read-your-writes for GET /api/v1/timestamp/{id}. A request with
 * Prefer: wait=<seconds> (RFC 7240) or ?wait=<ms> is held until its record
 * is there, at most the wait asked for (capped at WAIT_MAX_MS), on a
 * reserved HTTP thread and without a database connection: the feed hands
 * it the record as the consumer commits it. */
#ifndef QUERY_WAIT_H
#define QUERY_WAIT_H

#include "http.h"
#include "lookup.h"

/* The longest wait granted (ms): WAIT_MAX_MS. */
void wait_setup(long max_ms);

/* Looks the record with id (a valid UUID) up as lookup_get does, waiting
 * for it when the request asks to. Each read is a CLIENT span "SELECT
 * timestamp_records", a child of the request's server span (http_trace);
 * the wait for the feed is not a read. Returns 0 with *result (and *rec or
 * errstr as lookup_get fills them) for the caller to answer, or the status
 * it answered itself: 400 for a bad ?wait, 503 with Retry-After when
 * WAIT_MAX_WAITERS requests wait already. */
int wait_lookup(const struct http_req *req, const char *id, struct lookup_record *rec,
                enum lookup_result *result, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

#endif
