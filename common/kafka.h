/* kafka: librdkafka helpers shared by producer and consumer: configuration
 * with pass-through properties, logs routed to our log, topic creation. */
#ifndef COMMON_KAFKA_H
#define COMMON_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

/* A new configuration with bootstrap.servers = brokers and librdkafka's log
 * routed into ours. Returns NULL with errstr on failure. The caller owns the
 * result until rd_kafka_new takes it. */
rd_kafka_conf_t *kafka_conf_new(const char *brokers, char *errstr, size_t errstr_size);

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

/* Asks the cluster for the topic's metadata: 0 when the broker answers and
 * the topic exists with leaders for its partitions, else -1 with errstr. */
int kafka_check_topic(rd_kafka_t *rk, const char *topic, int timeout_ms,
                      char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

#endif
