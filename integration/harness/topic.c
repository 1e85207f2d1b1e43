/* topic: raw Kafka access for the tests (librdkafka). */
#include "topic.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "proc.h"

#define TIMEOUT_MS 10000

/* The services' client configuration (common/kafka.c), errors only logged. */
static rd_kafka_conf_t *conf_new(const char *brokers, char *errstr, size_t errstr_size)
{
	rd_kafka_conf_t *conf = kafka_conf_new(brokers, errstr, errstr_size);

	if (conf != NULL && kafka_conf_set(conf, "log_level", "3", errstr, errstr_size)) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	return conf;
}

/* A handle for metadata and watermarks (a producer that sends nothing), or
 * NULL with errstr. */
static rd_kafka_t *metadata_new(const char *brokers, char *errstr, size_t errstr_size)
{
	rd_kafka_conf_t *conf = conf_new(brokers, errstr, errstr_size);
	rd_kafka_t *rk;

	if (conf == NULL)
		return NULL;
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
	if (rk == NULL)
		rd_kafka_conf_destroy(conf);
	return rk;
}

/* A consumer handle of group that commits nothing by itself (and reports no
 * partition ends), or NULL with errstr. */
static rd_kafka_t *consumer_new(const char *brokers, const char *group, char *errstr,
                                size_t errstr_size)
{
	rd_kafka_conf_t *conf = conf_new(brokers, errstr, errstr_size);
	rd_kafka_t *rk;

	if (conf == NULL)
		return NULL;
	if (kafka_conf_set(conf, "group.id", group, errstr, errstr_size) ||
	    kafka_conf_set(conf, "enable.auto.commit", "false", errstr, errstr_size) ||
	    kafka_conf_set(conf, "enable.partition.eof", "false", errstr, errstr_size) ||
	    (rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size)) == NULL) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	return rk;
}

/* The partition count of topic, or -1 with errstr. */
static int partition_count(rd_kafka_t *rk, const char *topic, char *errstr,
                           size_t errstr_size)
{
	const struct rd_kafka_metadata *md;
	int n;

	if (kafka_topic_metadata(rk, topic, TIMEOUT_MS, &md, errstr, errstr_size) != 0)
		return -1;
	n = md->topics[0].partition_cnt;
	rd_kafka_metadata_destroy(md);
	return n;
}

/* Low and high watermarks of every partition: lo[i], hi[i] for i < *n.
 * lo and hi are allocated (the caller frees). */
static int watermarks(rd_kafka_t *rk, const char *topic, int *n, int64_t **lo,
                      int64_t **hi, char *errstr, size_t errstr_size)
{
	*lo = *hi = NULL;
	*n = partition_count(rk, topic, errstr, errstr_size);
	if (*n < 0)
		return -1;
	*lo = calloc((size_t)*n + 1, sizeof(**lo));
	*hi = calloc((size_t)*n + 1, sizeof(**hi));
	if (*lo == NULL || *hi == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	for (int p = 0; p < *n; p++) {
		if (kafka_watermarks(rk, topic, p, &(*lo)[p], &(*hi)[p], TIMEOUT_MS, errstr,
		                     errstr_size) != 0)
			return -1;
	}
	return 0;
}

int topic_watermark_sum(const char *brokers, const char *topic, int64_t *sum,
                        char *errstr, size_t errstr_size)
{
	rd_kafka_t *rk = metadata_new(brokers, errstr, errstr_size);
	int64_t *lo = NULL, *hi = NULL;
	int n, rc;

	if (rk == NULL)
		return -1;
	rc = watermarks(rk, topic, &n, &lo, &hi, errstr, errstr_size);
	*sum = 0;
	for (int p = 0; rc == 0 && p < n; p++)
		*sum += hi[p];
	free(lo);
	free(hi);
	rd_kafka_destroy(rk);
	return rc;
}

int topic_high_watermarks(const char *brokers, const char *topic, int64_t *out, int max,
                          int *n, char *errstr, size_t errstr_size)
{
	rd_kafka_t *rk = metadata_new(brokers, errstr, errstr_size);
	int64_t *lo = NULL, *hi = NULL;
	int rc;

	*n = 0;
	if (rk == NULL)
		return -1;
	rc = watermarks(rk, topic, n, &lo, &hi, errstr, errstr_size);
	if (rc == 0 && *n > max) {
		snprintf(errstr, errstr_size, "%s has %d partitions, more than %d", topic, *n, max);
		rc = -1;
	}
	for (int p = 0; rc == 0 && p < *n; p++)
		out[p] = hi[p];
	free(lo);
	free(hi);
	rd_kafka_destroy(rk);
	return rc;
}

int topic_committed(const char *brokers, const char *topic, const char *group,
                    int64_t *offsets, int n, char *errstr, size_t errstr_size)
{
	rd_kafka_t *rk = consumer_new(brokers, group, errstr, errstr_size);
	rd_kafka_topic_partition_list_t *parts;
	rd_kafka_resp_err_t err;
	int rc = -1;

	if (rk == NULL)
		return -1;
	parts = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
	for (int p = 0; p < n; p++)
		rd_kafka_topic_partition_list_add(parts, topic, p);
	err = rd_kafka_committed(rk, parts, TIMEOUT_MS);
	if (err) {
		snprintf(errstr, errstr_size, "committed offsets of %s: %s", group,
		         rd_kafka_err2str(err));
		goto done;
	}
	for (int i = 0; i < parts->cnt; i++) {
		const rd_kafka_topic_partition_t *tp = &parts->elems[i];
		if (tp->err) {
			snprintf(errstr, errstr_size, "committed offset of %s[%d]: %s", topic,
			         tp->partition, rd_kafka_err2str(tp->err));
			goto done;
		}
		offsets[tp->partition] = tp->offset;
	}
	rc = 0;
done:
	rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_destroy(rk);
	return rc;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
	struct topic_out *m = rkm->_private;

	(void)rk;
	(void)opaque;
	m->out_err = rkm->err;
	m->out_partition = rkm->partition;
	m->out_offset = rkm->offset;
}

int topic_produce(const char *brokers, const char *topic, struct topic_out *msgs,
                  size_t n, char *errstr, size_t errstr_size)
{
	return topic_produce_max(brokers, topic, msgs, n, 0, errstr, errstr_size);
}

int topic_produce_max(const char *brokers, const char *topic, struct topic_out *msgs,
                      size_t n, int max_bytes, char *errstr, size_t errstr_size)
{
	rd_kafka_conf_t *conf = conf_new(brokers, errstr, errstr_size);
	rd_kafka_t *rk = NULL;
	char max[32];
	int rc = -1;

	if (conf == NULL)
		return -1;
	snprintf(max, sizeof(max), "%d", max_bytes);
	if (kafka_conf_set(conf, "enable.idempotence", "true", errstr, errstr_size) ||
	    kafka_conf_set(conf, "acks", "all", errstr, errstr_size) ||
	    kafka_conf_set(conf, "linger.ms", "0", errstr, errstr_size) ||
	    (max_bytes > 0 &&
	     kafka_conf_set(conf, "message.max.bytes", max, errstr, errstr_size))) {
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
	if (rk == NULL) {
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct topic_out *m = &msgs[i];
		rd_kafka_headers_t *hdrs = rd_kafka_headers_new(8);
		rd_kafka_resp_err_t err;

		m->out_partition = -1;
		m->out_offset = -1;
		m->out_err = RD_KAFKA_RESP_ERR__IN_PROGRESS; /* until the report */
		for (const char *const *h = m->headers; h != NULL && h[0] != NULL; h += 2)
			rd_kafka_header_add(hdrs, h[0], -1, h[1], h[1] ? -1 : 0);
		err = rd_kafka_producev(
		    rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(m->partition),
		    RD_KAFKA_V_KEY(m->key, m->key ? strlen(m->key) : 0),
		    RD_KAFKA_V_VALUE((void *)m->value, m->value ? m->value_len : 0),
		    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_TIMESTAMP(m->ts_ms),
		    RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(m), RD_KAFKA_V_END);
		if (err) {
			rd_kafka_headers_destroy(hdrs);
			snprintf(errstr, errstr_size, "produce #%zu to %s: %s", i, topic,
			         rd_kafka_err2str(err));
			goto done;
		}
	}
	if (rd_kafka_flush(rk, 2 * TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(errstr, errstr_size, "%d message(s) to %s not delivered in %d ms",
		         rd_kafka_outq_len(rk), topic, 2 * TIMEOUT_MS);
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		if (msgs[i].out_err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			snprintf(errstr, errstr_size, "message #%zu to %s: %s", i, topic,
			         rd_kafka_err2str((rd_kafka_resp_err_t)msgs[i].out_err));
			goto done;
		}
	}
	rc = 0;
done:
	rd_kafka_destroy(rk);
	return rc;
}

static char *copy_bytes(const void *p, size_t len)
{
	char *s;

	if (p == NULL)
		return NULL;
	s = malloc(len + 1);
	if (s != NULL) {
		memcpy(s, p, len);
		s[len] = '\0';
	}
	return s;
}

static void fill_in(struct topic_in *m, const rd_kafka_message_t *rkm)
{
	rd_kafka_timestamp_type_t tstype;
	rd_kafka_headers_t *hdrs = NULL;
	const char *name;
	const void *val;
	size_t len;

	memset(m, 0, sizeof(*m));
	m->key = copy_bytes(rkm->key, rkm->key_len);
	m->value = copy_bytes(rkm->payload, rkm->len);
	m->value_len = rkm->payload ? rkm->len : 0;
	m->partition = rkm->partition;
	m->offset = rkm->offset;
	m->ts_ms = rd_kafka_message_timestamp(rkm, &tstype);
	m->ts_type = (int)tstype;
	if (rd_kafka_message_headers(rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return;
	for (size_t i = 0; m->n_headers < 16 &&
	                   rd_kafka_header_get_all(hdrs, i, &name, &val, &len) ==
	                       RD_KAFKA_RESP_ERR_NO_ERROR;
	     i++) {
		m->header_names[m->n_headers] = strdup(name);
		m->header_values[m->n_headers] = copy_bytes(val, len);
		m->n_headers++;
	}
}

int topic_find(const char *brokers, const char *topic, const char *key,
               struct topic_in *out, size_t max, size_t *found, int timeout_ms,
               char *errstr, size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	rd_kafka_t *rk = NULL;
	int64_t *lo = NULL, *hi = NULL;
	bool *done_part = NULL;
	const long deadline = clock_mono_ms() + timeout_ms;
	const size_t key_len = strlen(key);
	int n = 0, remaining = 0, rc = -1;
	rd_kafka_resp_err_t err;

	*found = 0;
	/* A group id is needed by the handle, but nothing is ever committed. */
	rk = consumer_new(brokers, "integration-tests-reader", errstr, errstr_size);
	if (rk == NULL)
		return -1;
	if (watermarks(rk, topic, &n, &lo, &hi, errstr, errstr_size) != 0)
		goto done;
	parts = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
	done_part = calloc((size_t)n + 1, sizeof(*done_part));
	if (done_part == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		goto done;
	}
	for (int p = 0; p < n; p++) {
		if (hi[p] > lo[p]) {
			rd_kafka_topic_partition_list_add(parts, topic, p)->offset = lo[p];
			remaining++;
		} else {
			done_part[p] = true;
		}
	}
	if ((err = rd_kafka_assign(rk, parts)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(errstr, errstr_size, "assign %s: %s", topic, rd_kafka_err2str(err));
		goto done;
	}
	while (remaining > 0) {
		rd_kafka_message_t *rkm;

		if (clock_mono_ms() >= deadline) {
			snprintf(errstr, errstr_size,
			         "%d partition(s) of %s not read to the end in %d ms", remaining,
			         topic, timeout_ms);
			goto done;
		}
		rkm = rd_kafka_consumer_poll(rk, 100);
		if (rkm == NULL)
			continue;
		if (rkm->err) {
			snprintf(errstr, errstr_size, "consume %s: %s", topic,
			         rd_kafka_message_errstr(rkm));
			rd_kafka_message_destroy(rkm);
			goto done;
		}
		if (rkm->key_len == key_len && rkm->key != NULL &&
		    memcmp(rkm->key, key, key_len) == 0 && *found < max)
			fill_in(&out[(*found)++], rkm);
		if (rkm->partition >= 0 && rkm->partition < n && !done_part[rkm->partition] &&
		    rkm->offset + 1 >= hi[rkm->partition]) {
			done_part[rkm->partition] = true;
			remaining--;
		}
		rd_kafka_message_destroy(rkm);
	}
	rc = 0;
done:
	if (parts != NULL)
		rd_kafka_topic_partition_list_destroy(parts);
	free(done_part);
	free(lo);
	free(hi);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return rc;
}

const char *topic_in_header(const struct topic_in *m, const char *name)
{
	for (size_t i = m->n_headers; i > 0; i--) {
		if (strcmp(m->header_names[i - 1], name) == 0)
			return m->header_values[i - 1];
	}
	return NULL;
}

void topic_in_clear(struct topic_in *m)
{
	free(m->key);
	free(m->value);
	for (size_t i = 0; i < m->n_headers; i++) {
		free(m->header_names[i]);
		free(m->header_values[i]);
	}
	memset(m, 0, sizeof(*m));
}

int topic_config(const char *brokers, const char *topic, const char *name, char *value,
                 size_t value_size, int *source, char *errstr, size_t errstr_size)
{
	rd_kafka_conf_t *conf = conf_new(brokers, errstr, errstr_size);
	rd_kafka_t *rk = NULL;
	rd_kafka_ConfigResource_t *res = NULL;
	struct kafka_admin a;
	char what[300];
	const rd_kafka_ConfigResource_t **described;
	const rd_kafka_ConfigEntry_t **entries;
	size_t n_described, n_entries;
	int rc = -1;

	if (conf == NULL)
		return -1;
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
	if (rk == NULL) {
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
	snprintf(what, sizeof(what), "describe %s", topic);
	kafka_admin_begin(&a, rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, 13000); /* 15 s wait */
	rd_kafka_DescribeConfigs(rk, &res, 1, a.opts, a.q);
	if (kafka_admin_wait(&a, what, errstr, errstr_size) != 0)
		goto done;
	described = rd_kafka_DescribeConfigs_result_resources(
	    rd_kafka_event_DescribeConfigs_result(a.ev), &n_described);
	if (n_described != 1 || rd_kafka_ConfigResource_error(described[0])) {
		snprintf(errstr, errstr_size, "describe %s: %s", topic,
		         n_described == 1 ? rd_kafka_ConfigResource_error_string(described[0])
		                          : "unexpected answer");
		goto done;
	}
	entries = rd_kafka_ConfigResource_configs(described[0], &n_entries);
	snprintf(errstr, errstr_size, "topic %s has no config %s", topic, name);
	for (size_t i = 0; i < n_entries && rc != 0; i++) {
		if (strcmp(rd_kafka_ConfigEntry_name(entries[i]), name) == 0) {
			const char *v = rd_kafka_ConfigEntry_value(entries[i]);
			snprintf(value, value_size, "%s", v ? v : "");
			*source = (int)rd_kafka_ConfigEntry_source(entries[i]);
			rc = 0;
		}
	}
done:
	kafka_admin_end(&a);
	rd_kafka_ConfigResource_destroy(res);
	rd_kafka_destroy(rk);
	return rc;
}
