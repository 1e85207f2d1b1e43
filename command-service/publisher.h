/* publisher: the Kafka producer of the command service. Each request waits
 * for the delivery report of its own message, while librdkafka batches all
 * messages in flight into shared produce requests. */
#ifndef COMMAND_PUBLISHER_H
#define COMMAND_PUBLISHER_H

#include <stddef.h>
#include <stdint.h>

#include "trace.h"

struct pub_config {
	const char *brokers;
	const char *topic;
	const char *properties; /* extra librdkafka properties, may be "" */
	int partitions;
	int replication;
	int timeout_ms; /* PUBLISH_TIMEOUT_MS */
	/* How long pub_send waits for a delivery report. 0: timeout_ms + 1000:
	 * librdkafka fails a message itself after timeout_ms, and the extra
	 * second only guards against a report that never comes. */
	int report_wait_ms;
};

enum pub_result {
	PUB_OK,          /* acknowledged by all in-sync replicas */
	PUB_UNAVAILABLE, /* not acknowledged in time, or the broker refused: retry */
	PUB_FAILED,      /* a bug or a permanent error */
};

/* Creates the producer and its polling thread, which creates the topic
 * (retrying every 2 s until the broker answers; pub_down says so until
 * then) while it serves delivery reports. Returns 0, or -1 with errstr (a
 * configuration error). */
int pub_setup(const struct pub_config *c, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Publishes one message (key = id, value, header correlationId, timestamp
 * ts_ms) and blocks until its delivery report or the timeout. With tracing
 * on, the message has a PRODUCER span, a child of parent (NULL: a root),
 * whose context its traceparent header carries; the span ends at the
 * delivery report, whenever that comes (a request that gave up does not
 * wait for it), or at once when the message could not be queued. */
enum pub_result pub_send(const char *id, const char *value, size_t len,
                         const char *cid, const struct trace_ctx *parent, int64_t ts_ms,
                         char *errstr, size_t errstr_size);

/* How long a failed publish (503) keeps /ready at 503 when no publish has
 * succeeded since: with no traffic it cannot tell any more. */
#define PUB_DOWN_FOR_MS 10000

/* NULL when Kafka answers, the topic exists and the latest publish did not
 * fail (within PUB_DOWN_FOR_MS, with no success since), else what is
 * wrong. The text is the caller's (buf). */
const char *pub_down(char *buf, size_t size);

/* Waiters alive: requests waiting for their delivery report, and reports
 * still owed to requests that gave up waiting (each frees its waiter when
 * it comes). 0 once every report came. */
int pub_waiters(void);

/* Flushes what is still queued (up to timeout_ms), reports what was not
 * delivered, and destroys the producer. */
void pub_shutdown(int timeout_ms);

#endif
