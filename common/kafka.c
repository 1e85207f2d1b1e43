/* kafka: librdkafka helpers shared by producer and consumer. */
#include "kafka.h"

#include <limits.h>
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

/* Sets every name, value pair of a NULL-terminated list. */
static int conf_set_list(rd_kafka_conf_t *conf, const char *const *kv, char *errstr,
                         size_t errstr_size)
{
	for (; kv != NULL && kv[0] != NULL; kv += 2) {
		if (kafka_conf_set(conf, kv[0], kv[1], errstr, errstr_size) != 0)
			return -1;
	}
	return 0;
}

rd_kafka_t *kafka_new(rd_kafka_type_t type, const char *brokers, const char *const *defaults,
                      const char *props, const char *const *fixed,
                      void (*prepare)(rd_kafka_conf_t *conf), char *errstr, size_t errstr_size)
{
	rd_kafka_conf_t *conf = kafka_conf_new(brokers, errstr, errstr_size);
	rd_kafka_t *rk;

	if (conf == NULL)
		return NULL;
	if (conf_set_list(conf, defaults, errstr, errstr_size) != 0 ||
	    kafka_conf_apply(conf, props, errstr, errstr_size) != 0 ||
	    conf_set_list(conf, fixed, errstr, errstr_size) != 0) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	if (prepare != NULL)
		prepare(conf);
	rk = rd_kafka_new(type, conf, errstr, errstr_size);
	if (rk == NULL)
		rd_kafka_conf_destroy(conf); /* else rk owns it */
	return rk;
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

/* Options for an Admin call of op: the request timeout, and for topic
 * creation the time the broker may take to create it. */
static rd_kafka_AdminOptions_t *admin_options(rd_kafka_t *rk, rd_kafka_admin_op_t op,
                                              int timeout_ms)
{
	rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, op);
	char why[128];

	rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, why, sizeof(why));
	if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS)
		rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, why, sizeof(why));
	return opts;
}

void kafka_admin_begin(struct kafka_admin *a, rd_kafka_t *rk, rd_kafka_admin_op_t op,
                       int timeout_ms)
{
	a->q = rd_kafka_queue_new(rk);
	a->opts = admin_options(rk, op, timeout_ms);
	a->ev = NULL;
	a->timeout_ms = timeout_ms;
}

int kafka_admin_wait(struct kafka_admin *a, const char *what, char *errstr, size_t errstr_size)
{
	a->ev = rd_kafka_queue_poll(a->q, a->timeout_ms + 2000);
	if (a->ev == NULL) {
		snprintf(errstr, errstr_size, "%s: no answer from the broker within %d ms", what,
		         a->timeout_ms);
		return -1;
	}
	if (rd_kafka_event_error(a->ev)) {
		snprintf(errstr, errstr_size, "%s: %s", what, rd_kafka_event_error_string(a->ev));
		return -1;
	}
	return 0;
}

void kafka_admin_end(struct kafka_admin *a)
{
	if (a->ev)
		rd_kafka_event_destroy(a->ev);
	rd_kafka_AdminOptions_destroy(a->opts);
	rd_kafka_queue_destroy(a->q);
}

bool kafka_group_busy(rd_kafka_resp_err_t err)
{
	return err == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID ||
	       err == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION ||
	       err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS ||
	       err == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID;
}

int kafka_group_result(const rd_kafka_group_result_t **gres, size_t n, const char *what,
                       const char *group, const rd_kafka_topic_partition_list_t **out,
                       char *errstr, size_t errstr_size)
{
	const rd_kafka_error_t *gerr;

	if (n != 1) {
		snprintf(errstr, errstr_size, "%s: %zu answers", what, n);
		return -1;
	}
	if ((gerr = rd_kafka_group_result_error(gres[0])) != NULL) {
		snprintf(errstr, errstr_size, "%s of group %s: %s%s", what, group,
		         rd_kafka_error_string(gerr),
		         kafka_group_busy(rd_kafka_error_code(gerr))
		             ? " (the group has active members: stop them first)"
		             : "");
		return -1;
	}
	*out = rd_kafka_group_result_partitions(gres[0]);
	return 0;
}

/* The Admin request body for topic: partitions, replication, our configs
 * and the caller's. NULL with errstr when one is refused. */
static rd_kafka_NewTopic_t *new_topic(const char *topic, int partitions, int replication,
                                      const char *const *configs, char *errstr,
                                      size_t errstr_size)
{
	struct kafka_topic_config ours[KAFKA_TOPIC_CONFIGS];
	rd_kafka_NewTopic_t *nt;
	char why[256];

	nt = rd_kafka_NewTopic_new(topic, partitions, replication, why, sizeof(why));
	if (nt == NULL) {
		snprintf(errstr, errstr_size, "topic %s: %s", topic, why);
		return NULL;
	}
	kafka_topic_configs(replication, ours);
	for (int i = 0; i < KAFKA_TOPIC_CONFIGS; i++) {
		if (rd_kafka_NewTopic_set_config(nt, ours[i].name, ours[i].value)) {
			snprintf(errstr, errstr_size, "topic %s: cannot set %s", topic, ours[i].name);
			goto failed;
		}
	}
	for (; configs && configs[0]; configs += 2) {
		if (rd_kafka_NewTopic_set_config(nt, configs[0], configs[1])) {
			snprintf(errstr, errstr_size, "topic %s: cannot set %s", topic, configs[0]);
			goto failed;
		}
	}
	return nt;
failed:
	rd_kafka_NewTopic_destroy(nt);
	return NULL;
}

int kafka_create_topic(rd_kafka_t *rk, rd_kafka_queue_t *q, const char *topic, int partitions,
                       int replication, const char *const *configs, int timeout_ms,
                       char *errstr, size_t errstr_size)
{
	rd_kafka_NewTopic_t *nt =
	    new_topic(topic, partitions, replication, configs, errstr, errstr_size);
	rd_kafka_AdminOptions_t *opts;

	if (nt == NULL)
		return -1;
	opts = admin_options(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout_ms);
	rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
	rd_kafka_AdminOptions_destroy(opts);
	rd_kafka_NewTopic_destroy(nt);
	return 0;
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
	struct kafka_admin a;
	char what[300];
	int rc = -1;

	snprintf(what, sizeof(what), "topic %s", topic);
	kafka_admin_begin(&a, rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout_ms);
	if (kafka_create_topic(rk, a.q, topic, partitions, replication, configs, timeout_ms,
	                       errstr, errstr_size) == 0 &&
	    kafka_admin_wait(&a, what, errstr, errstr_size) == 0)
		rc = kafka_create_topic_result(a.ev, topic, errstr, errstr_size);
	kafka_admin_end(&a);
	return rc;
}

int kafka_topic_metadata(rd_kafka_t *rk, const char *topic, int timeout_ms,
                         const struct rd_kafka_metadata **md, char *errstr,
                         size_t errstr_size)
{
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	const struct rd_kafka_metadata_topic *mt;
	rd_kafka_resp_err_t err;

	*md = NULL;
	if (rkt == NULL) {
		snprintf(errstr, errstr_size, "topic %s: %s", topic,
		         rd_kafka_err2str(rd_kafka_last_error()));
		return -1;
	}
	err = rd_kafka_metadata(rk, 0, rkt, md, timeout_ms);
	rd_kafka_topic_destroy(rkt);
	if (err) {
		*md = NULL;
		snprintf(errstr, errstr_size, "metadata of topic %s: %s", topic,
		         rd_kafka_err2str(err));
		return -1;
	}
	mt = (*md)->topic_cnt == 1 ? &(*md)->topics[0] : NULL;
	if (mt == NULL)
		snprintf(errstr, errstr_size, "metadata of topic %s: no answer for it", topic);
	else if (mt->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
		snprintf(errstr, errstr_size, "topic %s does not exist", topic);
	else if (mt->err || mt->partition_cnt <= 0)
		snprintf(errstr, errstr_size, "topic %s: %s", topic,
		         mt->err ? rd_kafka_err2str(mt->err) : "no partitions");
	else
		return 0;
	rd_kafka_metadata_destroy(*md);
	*md = NULL;
	return -1;
}

int kafka_watermarks(rd_kafka_t *rk, const char *topic, int32_t partition, int64_t *low,
                     int64_t *high, int timeout_ms, char *errstr, size_t errstr_size)
{
	rd_kafka_resp_err_t err =
	    rd_kafka_query_watermark_offsets(rk, topic, partition, low, high, timeout_ms);

	if (err) {
		snprintf(errstr, errstr_size, "watermarks of %s[%d]: %s", topic, (int)partition,
		         rd_kafka_err2str(err));
		return -1;
	}
	return 0;
}

int kafka_check_topic(rd_kafka_t *rk, const char *topic, int timeout_ms,
                      char *errstr, size_t errstr_size)
{
	const struct rd_kafka_metadata *md;
	int rc = 0;

	if (kafka_topic_metadata(rk, topic, timeout_ms, &md, errstr, errstr_size) != 0)
		return -1;
	for (int i = 0; i < md->topics[0].partition_cnt && rc == 0; i++) {
		if (md->topics[0].partitions[i].leader < 0) {
			snprintf(errstr, errstr_size, "topic %s: partition %d has no leader", topic, i);
			rc = -1;
		}
	}
	rd_kafka_metadata_destroy(md);
	return rc;
}

rd_kafka_error_t *kafka_seek_partitions(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts,
                                        int timeout_ms)
{
	/* librdkafka 2.1.0 changelog: "Fix seek partition timeout, was one
	 * thousand times lower than the passed value". */
	if (rd_kafka_version() < 0x02010000 && timeout_ms > 0)
		timeout_ms = timeout_ms > INT_MAX / 1000 ? INT_MAX : timeout_ms * 1000;
	return rd_kafka_seek_partitions(rk, parts, timeout_ms);
}
