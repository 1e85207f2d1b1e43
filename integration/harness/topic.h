/* topic: look into and write straight into the Kafka topics under test:
 * high watermarks, raw produce (bypassing the command service), and reading
 * back every message with a given key. Each call makes its own short-lived
 * librdkafka handle, so it is safe in Check's forked test processes. */
#ifndef INTEGRATION_TOPIC_H
#define INTEGRATION_TOPIC_H

#include <stddef.h>
#include <stdint.h>

/* A message to produce. */
struct topic_out {
	const char *key;           /* NULL for none */
	const void *value;         /* NULL for a null value */
	size_t value_len;
	int64_t ts_ms;             /* CreateTime; 0 lets librdkafka pick now */
	int32_t partition;         /* TOPIC_ANY_PARTITION: by key, as the services do */
	const char *const *headers; /* NULL or NULL-terminated name, value, ... pairs */
	/* Filled in from the delivery report: */
	int32_t out_partition;
	int64_t out_offset;
	int out_err; /* rd_kafka_resp_err_t of the delivery report */
};

#define TOPIC_ANY_PARTITION (-1)

/* A message read back. */
struct topic_in {
	char *key;     /* NUL-terminated copy, NULL if none */
	char *value;   /* NUL-terminated copy, NULL if a null value */
	size_t value_len;
	int32_t partition;
	int64_t offset;
	int64_t ts_ms;
	int ts_type;   /* rd_kafka_timestamp_type_t */
	size_t n_headers;
	char *header_names[16];
	char *header_values[16]; /* NUL-terminated copies, NULL for a null value */
};

/* Sums the high watermarks of every partition of topic into *sum. Returns 0,
 * or -1 with errstr (also when the topic does not exist). */
int topic_watermark_sum(const char *brokers, const char *topic, int64_t *sum,
                        char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* The high watermark of each partition of topic into hi[0..*n), at most
 * max of them. Returns 0, or -1 with errstr. */
int topic_high_watermarks(const char *brokers, const char *topic, int64_t *hi, int max,
                          int *n, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* The offsets that group has committed for partitions 0..n of topic into
 * offsets[] (-1001, RD_KAFKA_OFFSET_INVALID, where none). Does not join the
 * group. Returns 0, or -1 with errstr. */
int topic_committed(const char *brokers, const char *topic, const char *group,
                    int64_t *offsets, int n, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Produces msgs[0..n) in order with acks=all from an idempotent producer
 * and waits for every delivery report, filling out_partition/out_offset.
 * Returns 0 when all were acknowledged, or -1 with errstr. */
int topic_produce(const char *brokers, const char *topic, struct topic_out *msgs,
                  size_t n, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* topic_produce allowing messages up to max_bytes (0: librdkafka's limit). */
int topic_produce_max(const char *brokers, const char *topic, struct topic_out *msgs,
                      size_t n, int max_bytes, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Reads every partition of topic from the start up to the high watermarks
 * of the moment of the call, and returns the messages whose key is key (in
 * each partition's order) in out[0..max), their number in *found. Returns
 * 0, or -1 with errstr. Free each result with topic_in_clear. */
int topic_find(const char *brokers, const char *topic, const char *key,
               struct topic_in *out, size_t max, size_t *found, int timeout_ms,
               char *errstr, size_t errstr_size) __attribute__((warn_unused_result));

/* Describes topic's config name (Admin DescribeConfigs): its value into
 * value[value_size] and its source (rd_kafka_ConfigSource_t: set on the
 * topic, or a default) into *source. Returns 0, or -1 with errstr (also
 * when the topic has no such config). */
int topic_config(const char *brokers, const char *topic, const char *name, char *value,
                 size_t value_size, int *source, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* The value of the last header called name, or NULL. */
const char *topic_in_header(const struct topic_in *m, const char *name);

void topic_in_clear(struct topic_in *m);

#endif
