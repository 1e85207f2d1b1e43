/* kafka: librdkafka helpers shared by producer and consumer: configuration
 * with pass-through properties, logs routed to our log, Admin calls (topic
 * creation, group offsets), metadata and watermark lookups. */
#ifndef COMMON_KAFKA_H
#define COMMON_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The KAFKA_BROKER parameter of the services that use Kafka (see cfg.h). */
#define KAFKA_CFG_BROKER(brokers_var)                                                  \
	{"KAFKA_BROKER", CFG_STRING, &(brokers_var), "127.0.0.1:9092", 0, 0,                 \
	 "Kafka bootstrap servers, comma-separated"}

/* A new configuration with bootstrap.servers = brokers and librdkafka's log
 * routed into ours. Returns NULL with errstr on failure. The caller owns the
 * result until rd_kafka_new takes it. */
rd_kafka_conf_t *kafka_conf_new(const char *brokers, char *errstr, size_t errstr_size);

/* A client of type whose configuration is laid in three layers: ours
 * (defaults), then the user's (props, KAFKA_PROPERTIES: see
 * kafka_conf_apply), then what is not negotiable (fixed), which nothing
 * overrides. defaults and fixed are NULL or NULL-terminated name, value,
 * name, value, ... lists. prepare, if not NULL, sets callbacks on the
 * configuration before the client takes it. Returns the client, or NULL
 * with errstr ("property: reason"). */
rd_kafka_t *kafka_new(rd_kafka_type_t type, const char *brokers, const char *const *defaults,
                      const char *props, const char *const *fixed,
                      void (*prepare)(rd_kafka_conf_t *conf), char *errstr, size_t errstr_size);

/* Applies every "name=value" of props, separated by ',' or ';' (as in
 * KAFKA_PROPERTIES="linger.ms=5,compression.type=lz4"). Returns 0, or -1
 * with "property: reason" in errstr. */
int kafka_conf_apply(rd_kafka_conf_t *conf, const char *props, char *errstr,
                     size_t errstr_size) __attribute__((warn_unused_result));

/* Sets one property; returns 0, or -1 with errstr. */
int kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                   char *errstr, size_t errstr_size) __attribute__((warn_unused_result));

/* The configs every topic of ours is created with. retention.ms=-1: the
 * topic is the golden record. min.insync.replicas=min(2, replication): at
 * the broker's default of 1, acks=all is satisfied by the leader alone, and
 * a leader lost before a follower copied the message loses a message that
 * was acknowledged; 2 needs one copy more, when there can be one. */
#define KAFKA_TOPIC_CONFIGS 2
struct kafka_topic_config {
	const char *name;
	char value[16];
};
void kafka_topic_configs(int replication, struct kafka_topic_config out[KAFKA_TOPIC_CONFIGS]);

/* Starts creating topic with the Admin API (partitions, replication,
 * kafka_topic_configs and the name/value pairs of configs, a
 * NULL-terminated list or NULL) and returns at once: the answer comes to q
 * as an event, for kafka_create_topic_result. Returns 0, or -1 with errstr
 * (nothing was sent). */
int kafka_create_topic(rd_kafka_t *rk, rd_kafka_queue_t *q, const char *topic, int partitions,
                       int replication, const char *const *configs, int timeout_ms,
                       char *errstr, size_t errstr_size) __attribute__((warn_unused_result));

/* Reads the answer to kafka_create_topic from its event (which stays the
 * caller's). Returns 0 when the topic was created or exists already, else
 * -1 with errstr. */
int kafka_create_topic_result(rd_kafka_event_t *ev, const char *topic, char *errstr,
                              size_t errstr_size) __attribute__((warn_unused_result));

/* kafka_create_topic and its answer, waited for (up to timeout_ms and 2 s).
 * Returns 0 when the topic was created or exists, or -1 with errstr. */
int kafka_ensure_topic(rd_kafka_t *rk, const char *topic, int partitions,
                       int replication, const char *const *configs,
                       int timeout_ms, char *errstr,
                       size_t errstr_size) __attribute__((warn_unused_result));

/* The cluster's metadata for topic alone: 0 with *md (the caller's, for
 * rd_kafka_metadata_destroy) when the broker answered and the topic exists
 * with partitions (md->topics[0]); else -1 with errstr and *md NULL. */
int kafka_topic_metadata(rd_kafka_t *rk, const char *topic, int timeout_ms,
                         const struct rd_kafka_metadata **md, char *errstr,
                         size_t errstr_size) __attribute__((warn_unused_result));

/* The low and high watermarks of one partition, asked of its leader.
 * Returns 0, or -1 with errstr. */
int kafka_watermarks(rd_kafka_t *rk, const char *topic, int32_t partition, int64_t *low,
                     int64_t *high, int timeout_ms, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* One Admin call, waited for: the queue its answer comes to, its options
 * (request timeout; for CreateTopics the operation timeout too) and the
 * answer. kafka_admin_begin, send the request with opts and q, then
 * kafka_admin_wait; kafka_admin_end releases all, whatever happened. */
struct kafka_admin {
	rd_kafka_queue_t *q;
	rd_kafka_AdminOptions_t *opts;
	rd_kafka_event_t *ev; /* the answer, once kafka_admin_wait returned 0 */
	int timeout_ms;
};
void kafka_admin_begin(struct kafka_admin *a, rd_kafka_t *rk, rd_kafka_admin_op_t op,
                       int timeout_ms);

/* Waits (timeout_ms and 2 s) for the answer into a->ev. 0, or -1 with
 * "what: reason" in errstr when no answer came or the request as a whole
 * failed. */
int kafka_admin_wait(struct kafka_admin *a, const char *what, char *errstr,
                     size_t errstr_size) __attribute__((warn_unused_result));

void kafka_admin_end(struct kafka_admin *a);

/* True for the broker's answers to an offset commit for a group that has
 * members. */
bool kafka_group_busy(rd_kafka_resp_err_t err);

/* The partitions in the one group result of a list or alter group offsets
 * call (which take one group per call): *out, NULL if none. 0, or -1 with
 * errstr when there is not exactly one answer or the group itself failed. */
int kafka_group_result(const rd_kafka_group_result_t **gres, size_t n, const char *what,
                       const char *group, const rd_kafka_topic_partition_list_t **out,
                       char *errstr, size_t errstr_size) __attribute__((warn_unused_result));

/* Asks the cluster for the topic's metadata: 0 when the broker answers and
 * the topic exists with leaders for its partitions, else -1 with errstr. */
int kafka_check_topic(rd_kafka_t *rk, const char *topic, int timeout_ms,
                      char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* rd_kafka_seek_partitions, waiting up to timeout_ms for the seeks to be
 * done whatever the librdkafka: before 2.1.0 (Debian 12 has 2.0.2) it took
 * the wait in microseconds, so 5,000 "ms" were 5 ms, and a seek on a busy
 * host "timed out" although it was under way. Same result as the call. */
rd_kafka_error_t *kafka_seek_partitions(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts,
                                        int timeout_ms);

#endif
