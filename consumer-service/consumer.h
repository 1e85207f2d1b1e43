/* consumer: the Kafka consumer group member that turns the topic into rows,
 * batch by batch, storing offsets only after the rows are committed. */
#ifndef CONSUMER_CONSUMER_H
#define CONSUMER_CONSUMER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "db.h"

struct consumer_config {
	const char *brokers;
	const char *topic;
	const char *group;
	const char *properties; /* extra librdkafka consumer properties */
	int replication;        /* for the dead-letter topic */
	int batch_size;
	int retry_max_ms;       /* cap of the database retry backoff */
	struct db_params db;
};

/* Creates the consumer and the dead-letter producer. Returns 0, or -1 with
 * errstr (a configuration error). */
int consumer_setup(const struct consumer_config *c, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Connects to PostgreSQL (retrying), joins the group and consumes until
 * *stop is set; then finishes the batch in hand and commits. */
void consumer_run(const atomic_bool *stop);

/* NULL when ready, else what is down (text in buf). Any thread. */
const char *consumer_down(char *buf, size_t size);

/* Leaves the group (committing offsets) and frees everything. */
void consumer_shutdown(void);

#endif
