/* kafka: librdkafka helpers shared by producer and consumer. */
#include "kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	enum log_level l = level <= 3 ? LOG_ERROR : level <= 4 ? LOG_WARN
	                   : level <= 6 ? LOG_INFO : LOG_DEBUG;
	log_at(l, NULL, NULL, "librdkafka %s: %s: %s", rd_kafka_name(rk), fac, buf);
}

int kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                   char *errstr, size_t errstr_size)
{
	char why[256];

	if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
		snprintf(errstr, errstr_size, "%s: %s", name, why);
		return -1;
	}
	return 0;
}

rd_kafka_conf_t *kafka_conf_new(const char *brokers, char *errstr, size_t errstr_size)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();

	rd_kafka_conf_set_log_cb(conf, on_log);
	/* A broker that comes back is found within a second: librdkafka's
	 * default reconnect backoff grows to 10 s, all of it answered 503. */
	if (kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, errstr_size) ||
	    kafka_conf_set(conf, "log.connection.close", "false", errstr, errstr_size) ||
	    kafka_conf_set(conf, "reconnect.backoff.max.ms", "1000", errstr, errstr_size)) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	return conf;
}

int kafka_conf_apply(rd_kafka_conf_t *conf, const char *props, char *errstr,
                     size_t errstr_size)
{
	char *copy, *item, *save = NULL;
	int rc = 0;

	if (props == NULL || *props == '\0')
		return 0;
	copy = strdup(props);
	if (copy == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	for (item = strtok_r(copy, ",;", &save); item && rc == 0;
	     item = strtok_r(NULL, ",;", &save)) {
		char *eq;
		while (*item == ' ')
			item++;
		if (*item == '\0')
			continue;
		eq = strchr(item, '=');
		if (eq == NULL) {
			snprintf(errstr, errstr_size, "'%s' is not name=value", item);
			rc = -1;
			break;
		}
		*eq = '\0';
		rc = kafka_conf_set(conf, item, eq + 1, errstr, errstr_size);
	}
	free(copy);
	return rc;
}

void kafka_topic_configs(int replication, struct kafka_topic_config out[KAFKA_TOPIC_CONFIGS])
{
	out[0].name = "retention.ms";
	snprintf(out[0].value, sizeof(out[0].value), "-1");
	out[1].name = "min.insync.replicas";
	snprintf(out[1].value, sizeof(out[1].value), "%d", replication < 2 ? 1 : 2);
}

int kafka_create_topic(rd_kafka_t *rk, rd_kafka_queue_t *q, const char *topic, int partitions,
                       int replication, const char *const *configs, int timeout_ms,
                       char *errstr, size_t errstr_size)
{
	struct kafka_topic_config ours[KAFKA_TOPIC_CONFIGS];
	rd_kafka_NewTopic_t *nt;
	rd_kafka_AdminOptions_t *opts = NULL;
	char why[256];
	int rc = -1;

	nt = rd_kafka_NewTopic_new(topic, partitions, replication, why, sizeof(why));
	if (nt == NULL) {
		snprintf(errstr, errstr_size, "topic %s: %s", topic, why);
		return -1;
	}
	kafka_topic_configs(replication, ours);
	for (int i = 0; i < KAFKA_TOPIC_CONFIGS; i++) {
		if (rd_kafka_NewTopic_set_config(nt, ours[i].name, ours[i].value)) {
			snprintf(errstr, errstr_size, "topic %s: cannot set %s", topic, ours[i].name);
			goto done;
		}
	}
	for (; configs && configs[0]; configs += 2) {
		if (rd_kafka_NewTopic_set_config(nt, configs[0], configs[1])) {
			snprintf(errstr, errstr_size, "topic %s: cannot set %s", topic, configs[0]);
			goto done;
		}
	}
	opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, why, sizeof(why));
	rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, why, sizeof(why));
	rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
	rc = 0;
done:
	if (opts)
		rd_kafka_AdminOptions_destroy(opts);
	rd_kafka_NewTopic_destroy(nt);
	return rc;
}

int kafka_create_topic_result(rd_kafka_event_t *ev, const char *topic, char *errstr,
                              size_t errstr_size)
{
	const rd_kafka_CreateTopics_result_t *result = rd_kafka_event_CreateTopics_result(ev);
	const rd_kafka_topic_result_t **res;
	size_t n;

	if (rd_kafka_event_error(ev)) {
		snprintf(errstr, errstr_size, "topic %s: %s", topic, rd_kafka_event_error_string(ev));
		return -1;
	}
	if (result == NULL ||
	    (res = rd_kafka_CreateTopics_result_topics(result, &n), n != 1)) {
		snprintf(errstr, errstr_size, "topic %s: unexpected answer", topic);
		return -1;
	}
	switch (rd_kafka_topic_result_error(res[0])) {
	case RD_KAFKA_RESP_ERR_NO_ERROR:
		log_info("created topic %s", topic);
		return 0;
	case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
		log_debug("topic %s exists", topic);
		return 0;
	default:
		snprintf(errstr, errstr_size, "topic %s: %s", topic,
		         rd_kafka_topic_result_error_string(res[0]));
		return -1;
	}
}

int kafka_ensure_topic(rd_kafka_t *rk, const char *topic, int partitions,
                       int replication, const char *const *configs,
                       int timeout_ms, char *errstr,
                       size_t errstr_size)
{
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_event_t *ev = NULL;
	int rc = -1;

	if (kafka_create_topic(rk, q, topic, partitions, replication, configs, timeout_ms, errstr,
	                       errstr_size) != 0)
		goto done;
	ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
	if (ev == NULL) {
		snprintf(errstr, errstr_size, "topic %s: no answer from the broker within %d ms",
		         topic, timeout_ms);
		goto done;
	}
	rc = kafka_create_topic_result(ev, topic, errstr, errstr_size);
done:
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	return rc;
}

int kafka_check_topic(rd_kafka_t *rk, const char *topic, int timeout_ms,
                      char *errstr, size_t errstr_size)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	rd_kafka_resp_err_t err;
	int rc = -1;

	if (rkt == NULL) {
		snprintf(errstr, errstr_size, "topic %s: %s", topic,
		         rd_kafka_err2str(rd_kafka_last_error()));
		return -1;
	}
	err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
	if (err) {
		snprintf(errstr, errstr_size, "broker: %s", rd_kafka_err2str(err));
	} else if (md->topic_cnt != 1 || md->topics[0].err) {
		snprintf(errstr, errstr_size, "topic %s: %s", topic,
		         md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : "missing");
	} else {
		rc = 0;
		for (int i = 0; i < md->topics[0].partition_cnt; i++) {
			if (md->topics[0].partitions[i].leader < 0) {
				snprintf(errstr, errstr_size, "topic %s: partition %d has no leader",
				         topic, i);
				rc = -1;
				break;
			}
		}
	}
	if (md)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	return rc;
}
