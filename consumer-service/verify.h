/* verify: `consumer-service --verify`, the consistency check of the
 * projection: the table timestamp_records against the topic it is built
 * from, message by message, and the counts per minute against the table. */
#ifndef CONSUMER_VERIFY_H
#define CONSUMER_VERIFY_H

#include <stdio.h>

#include "consumer.h"

/* How long the topic may give no message while messages before the end
 * (as of the start) are still to come, before the check gives up. */
#define VERIFY_STALL_MS 30000
/* How long each broker round trip (metadata, watermarks) may take. */
#define VERIFY_KAFKA_TIMEOUT_MS 10000
/* Rows fetched from the table's cursor at a time. */
#define VERIFY_FETCH_ROWS 10000
/* The counts' comparison is one statement over the whole table (a GROUP
 * BY), which may take longer than DB_STATEMENT_TIMEOUT_MS: its own bound. */
#define VERIFY_COUNTS_TIMEOUT_MS 600000
/* Ids printed for each kind of difference. */
#define VERIFY_SHOW 5

/* The answers of verify_run. */
enum verify_result { VERIFY_AGREE = 0, VERIFY_DIFFER = 1, VERIFY_FAILED = -1 };

/* Reads every partition of c->topic from its low to its high watermark (as
 * of the start; a plain assign(), nothing committed, no group joined) and
 * every row of timestamp_records (a cursor, VERIFY_FETCH_ROWS at a time),
 * and prints to out the counts per partition and every difference: ids
 * with a message and no row, rows with no message, rows whose
 * event_timestamp or created_at differ from what the consumer writes for
 * the first message of their id (microseconds, created_at from the record
 * timestamp). Undecodable messages are what the consumer dead-letters:
 * counted apart, never expected in the table. Then, in the same snapshot
 * of the database, compares timestamp_counts with the rows per UTC minute
 * (SELECT date_trunc('minute', event_timestamp, 'UTC'), count(*) ... GROUP
 * BY 1): minutes counted otherwise, minutes with rows and no count, minutes
 * counted with no rows; any of them is a difference too. Holds one entry per distinct
 * id of the topic in memory. Returns VERIFY_AGREE, VERIFY_DIFFER, or
 * VERIFY_FAILED with errstr when the check could not be made. Never logs
 * and never exits. */
enum verify_result verify_run(const struct consumer_config *c, FILE *out, char *errstr,
                              size_t errstr_size) __attribute__((warn_unused_result));

#endif
