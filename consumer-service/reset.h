/* reset: `consumer-service --reset-offsets earliest`, the disaster-recovery
 * command that moves a consumer group's committed offsets back to the first
 * message of every partition (Admin API), so that the group's next consumer
 * replays the topic and rebuilds the table. */
#ifndef CONSUMER_RESET_H
#define CONSUMER_RESET_H

#include <stdint.h>
#include <stdio.h>

#include "consumer.h"

/* How long each broker round trip of the reset may take. */
#define RESET_TIMEOUT_MS 10000

/* What happened to one partition. Offsets are -1 when unknown or, for
 * `before`, when the group had no committed offset there. */
struct reset_partition {
	int32_t partition;
	int64_t low, high; /* the log's first offset and the next offset to be written */
	int64_t before;    /* the group's committed offset before the reset */
	int64_t after;     /* ... and after it, as the broker reports it */
	char error[200];   /* "" when the partition was reset */
};

struct reset_result {
	char group[256];      /* the effective group id (KAFKA_PROPERTIES may set group.id) */
	char state[32];       /* the group's state before the reset, e.g. "Empty" */
	int members;          /* members before the reset (0 for an idle group) */
	int partition_cnt;
	struct reset_partition *partitions; /* partition_cnt entries, owned by the result */
};

/* Resets the committed offsets of c->group on c->topic (the consumer's own
 * configuration: brokers, KAFKA_PROPERTIES too) to the low watermark of
 * every partition. Refuses (before changing anything) when the group has
 * members; the broker refuses as well if one joins in the meantime. Returns
 * 0 when every partition was reset, or -1 with the reason in errstr; res
 * holds what was learnt either way and must be released with
 * reset_result_free. Never logs and never exits. */
int reset_offsets_earliest(const struct consumer_config *c, struct reset_result *res,
                           char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Prints one line per partition (before -> after, the log's range, any
 * error) and a summary line. */
void reset_result_print(const struct reset_result *res, const char *topic, FILE *out);

/* Frees what res owns; a zeroed or freed result is a no-op. */
void reset_result_free(struct reset_result *res);

#endif
