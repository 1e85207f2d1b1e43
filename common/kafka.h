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

/* Creates topic (partitions, replication, retention.ms=-1 and the name/value
 * pairs of configs, a NULL-terminated list or NULL) with the Admin API
 * unless it exists. Returns 0, or -1 with errstr. */
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
