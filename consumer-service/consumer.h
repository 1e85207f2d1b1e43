/* consumer: the Kafka consumer group member that turns the topic into rows,
 * batch by batch, storing offsets only after the rows are committed. */
#ifndef CONSUMER_CONSUMER_H
#define CONSUMER_CONSUMER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

#include "db.h"
#include "sink.h"

struct consumer_config {
	const char *brokers;
	const char *topic;
	const char *group;
	const char *properties; /* extra librdkafka consumer properties */
	int replication;        /* for the dead-letter topic */
	int batch_size;
	int prefetch_kb;        /* librdkafka's queued.max.messages.kbytes; 0: its default */
	int retry_max_ms;       /* cap of the database retry backoff */
	int ready_max_lag_s;    /* /ready is 503 while consumer_lag_seconds_max exceeds it; 0: off */
	int durable_standbys;   /* offsets wait for this many standbys' WAL flush (sink) */
	struct db_params db;
	const char *table;      /* where the rows go; NULL: SINK_TABLE */
	/* Called after every turn of consumer_run's loop (NULL: never); true
	 * ends the loop as *stop does. A blue-green rebuild (rebuild.c) reports
	 * its progress and switches tables from here. */
	bool (*until)(void *arg);
	void *until_arg;
};

/* CONSUMER_PREFETCH_KB, the row of consumer-service's configuration table
 * (main.c; the unit tests load it too): how many kilobytes of messages
 * librdkafka may fetch ahead of the batch being written. Since the fetcher
 * is woken after each full batch (consumer.c, fetch_nudge), the size no
 * longer sets the catch-up rate, only the memory: a backlog of 200,000 on
 * my own stack drained at 126,000-138,000 rows/s from 256 to 8,192 KiB,
 * with a peak RSS of 20, 24-25, 31 and 76 MiB at 256, 1,024, 2,048 and
 * 8,192 (README, Performance). 1,024 keeps about five batches of our
 * messages ahead. */
#define CONSUMER_PREFETCH_KB_DEFAULT "1024"
#define CONSUMER_CFG_PREFETCH(target)                                                         \
	{"CONSUMER_PREFETCH_KB", CFG_INT, &(target), CONSUMER_PREFETCH_KB_DEFAULT, 256, 2097151, \
	 "kilobytes of messages fetched ahead of the batch being written "                        \
	 "(librdkafka's queued.max.messages.kbytes); under a backlog resident memory grows to "   \
	 "about 8 times this plus 16 MiB"}

/* READY_MAX_LAG_S, the row of consumer-service's configuration table (main.c;
 * the unit tests load it too): off unless set, then whole seconds. */
#define CONSUMER_CFG_READY_MAX_LAG(target)                                                   \
	{"READY_MAX_LAG_S", CFG_OPT_INT, &(target), NULL, 1, 31536000,                           \
	 "seconds of consumer_lag_seconds_max over which /ready answers 503 (a load balancer "     \
	 "then steers reads away from this replica); /health never depends on it"}

/* How long a revocation or the final commit waits for the WAL flush of the
 * batches written before it, and how often it looks; and how often an idle
 * consumer looks (its offsets are committed every 5 s: a store 50 ms late
 * costs nothing, a query every 5 ms would). */
#define CONSUMER_FLUSH_WAIT_MS 2000
#define CONSUMER_FLUSH_POLL_MS 5
#define CONSUMER_FLUSH_CHECK_MS 50

/* While batches come, how often the fetcher is woken (consumer.c,
 * fetch_nudge), and how many times it was. */
#define CONSUMER_FETCH_NUDGE_MS 100
long consumer_fetch_nudges(void);

/* Creates the consumer and the dead-letter producer. Returns 0, or -1 with
 * errstr (a configuration error). */
int consumer_setup(const struct consumer_config *c, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Connects to PostgreSQL (retrying), joins the group and consumes until
 * *stop is set; then finishes the batch in hand and commits. Returns 0, or
 * -1 when it had to stop on its own (it cannot subscribe, or a message it
 * had no memory for cannot be read again): the offsets committed are then
 * still before every message not handled. */
int consumer_run(const atomic_bool *stop) __attribute__((warn_unused_result));

/* NULL when ready, else what is down (text in buf): "postgresql: ...",
 * "dlq: ..." (a dead letter could not be delivered), "kafka: ...". Any
 * thread, between consumer_setup and consumer_shutdown. */
const char *consumer_down(char *buf, size_t size);

/* The age in seconds of the oldest message of partition not yet written
 * (0 when none, or not assigned here): what consumer_lag_seconds shows; and
 * the largest of them, consumer_lag_seconds_max (see consumer.c). Any
 * thread. */
double consumer_lag_seconds(int partition);
double consumer_lag_seconds_max(void);

/* The instant in milliseconds since the epoch that a message's age counts
 * from: its Kafka timestamp ts_ms, or fetched_ms when it has none (ts_ms
 * <= 0), and never later than now_ms (another producer may write any
 * timestamp), so that an age is never negative. */
int64_t consumer_message_time_ms(int64_t ts_ms, int64_t fetched_ms, int64_t now_ms);

/* Leaves the group (committing offsets) and frees everything. */
void consumer_shutdown(void);

/* ---- the parts of consumer_run, for the unit tests ---- */

/* Writes rows somewhere: returns 0 with *inserted set, or as sink_insert. */
typedef int (*consumer_write_fn)(const struct sink_row *rows, size_t n, long *inserted,
                                 char *errstr, size_t errstr_size);

/* Replaces the writer of rows (NULL: PostgreSQL, as consumer_run needs) and
 * the allocator of the batch's arrays (NULL: realloc). Before consumer_setup. */
void consumer_set_seams(consumer_write_fn write, void *(*alloc)(void *, size_t));

/* Tells where the database's WAL stands: *insert, past the commit of every
 * batch written so far, and *flushed, how far it is durable. Returns 0, or
 * -1 with errstr when the session is lost (its batches may be lost too). */
typedef int (*consumer_wal_fn)(uint64_t *insert, uint64_t *flushed, char *errstr,
                               size_t errstr_size);

/* Replaces the source of WAL positions (NULL: PostgreSQL through sink). */
void consumer_set_wal_seam(consumer_wal_fn wal);

/* The consumer's librdkafka handle (NULL before consumer_setup), for
 * positions and watermarks; the consumer keeps owning it. */
rd_kafka_t *consumer_handle(void);

/* The value of a librdkafka property of the consumer as configured (into
 * buf). Returns 0, or -1 when there is no consumer or no such property. */
int consumer_kafka_property(const char *name, char *buf, size_t size);

/* Subscribes to the topic. Returns 0, or -1 with errstr. */
int consumer_subscribe(char *errstr, size_t errstr_size) __attribute__((warn_unused_result));

/* One turn of consumer_run's loop: polls up to timeout_ms, takes what else
 * is ready, and writes that batch (retrying until it is written or *stop).
 * Returns whether there was a batch. The rebuild's switch calls it from
 * its until hook to replay up to the end offsets. */
bool consumer_step(const atomic_bool *stop, int timeout_ms);

#endif
