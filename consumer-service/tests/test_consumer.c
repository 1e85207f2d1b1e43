/* test_consumer: the consumer's batch and offset bookkeeping, against
 * librdkafka's in-process mock cluster, with a fake writer in PostgreSQL's
 * place. The offsets the group commits are read back from the cluster: one
 * past the last message of each partition that was written or
 * dead-lettered, never past one that was neither. */
#include <check.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfg.h"
#include "consumer.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "otlp_sink.h"
#include "suites.h"
#include "trace.h"
#include "ts.h"

#define TOPIC "t.cmd"
#define DLQ TOPIC ".dlq"
#define GROUP "consumer-tests"
#define TS_MS 1254164592000LL
#define MAX_ROWS 512 /* rows the fake writer remembers: more than the unflushed queue holds */
#define STEPS 300         /* turns of the loop (100 ms polls at most) before giving up */
#define WATCH_MS 30000    /* a watcher stops a consumer that retries for ever */
#define TEST_TIMEOUT_S 60 /* joining the mock group alone takes 3 s */

static rd_kafka_t *prk; /* the producer that owns the mock cluster */
static rd_kafka_mock_cluster_t *mcluster;
static atomic_bool stop;

/* What the fake writer was asked to do, and did. */
static struct {
	char ids[MAX_ROWS][UID_TEXT_SIZE]; /* every row written, in order */
	size_t n;
	int outages;             /* fail this many writes as an outage first */
	int stop_after_outages;  /* then set stop (0: never) */
	const char *refuse[4];   /* ids refused as data, as a CHECK constraint would */
	int refusals;
	double lag_seen;         /* the largest consumer_lag_seconds_max during an outage */
	int writes, full_writes; /* batches written, and those of batch_size rows */
} w;

/* PostgreSQL's WAL as the fake writer moves it: every write advances the
 * insert position; the flush follows it at once unless held. */
static struct {
	uint64_t insert, flushed;
	bool hold;       /* the flush stays where it is */
	int flush_after; /* with hold: it catches up at this look (0: never) */
	int fail;        /* this many looks fail first, as a lost session */
	int looks;
} wal;

static int fake_wal(uint64_t *insert, uint64_t *flushed, char *errstr, size_t errstr_size)
{
	wal.looks++;
	if (wal.fail > 0) {
		wal.fail--;
		snprintf(errstr, errstr_size, "server closed the connection unexpectedly");
		return -1;
	}
	if (wal.hold && wal.flush_after > 0 && --wal.flush_after == 0)
		wal.hold = false;
	if (!wal.hold)
		wal.flushed = wal.insert;
	*insert = wal.insert;
	*flushed = wal.flushed;
	return 0;
}

static int batch_size = 100; /* CONSUMER_BATCH_SIZE of the next start_consumer */

/* The allocator's call that fails (0: none). */
static int alloc_calls, alloc_fail_at;

static void *fake_realloc(void *p, size_t size)
{
	return ++alloc_calls == alloc_fail_at ? NULL : realloc(p, size);
}

static int fake_write(const struct sink_row *rows, size_t n, long *inserted, char *errstr,
                      size_t errstr_size)
{
	if (w.outages > 0) {
		const double lag = consumer_lag_seconds_max();
		w.lag_seen = lag > w.lag_seen ? lag : w.lag_seen;
		w.outages--;
		if (w.stop_after_outages > 0 && --w.stop_after_outages == 0)
			atomic_store(&stop, true);
		snprintf(errstr, errstr_size, "connection refused");
		return SINK_OUTAGE;
	}
	for (size_t i = 0; i < n; i++) {
		for (int k = 0; k < 4 && w.refuse[k]; k++) {
			if (strcmp(rows[i].id, w.refuse[k]) != 0)
				continue;
			if (++w.refusals > 200) /* a consumer that retries them for ever */
				atomic_store(&stop, true);
			snprintf(errstr, errstr_size, "SQLSTATE 23514: new row for relation "
			                              "\"timestamp_records\" violates check constraint");
			return SINK_REFUSED;
		}
	}
	w.writes++;
	w.full_writes += n == (size_t)batch_size;
	for (size_t i = 0; i < n && w.n < MAX_ROWS; i++)
		memcpy(w.ids[w.n++], rows[i].id, UID_TEXT_SIZE);
	wal.insert += 100 * n;
	*inserted = (long)n;
	return 0;
}

static size_t times_written(const char *id)
{
	size_t k = 0;

	for (size_t i = 0; i < w.n; i++)
		k += strcmp(w.ids[i], id) == 0;
	return k;
}

static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk, (void)level, (void)fac, (void)buf;
}

static void setup(void)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char errstr[256];

	log_setup("consumer-tests", LOG_ERROR);
	rd_kafka_conf_set_log_cb(conf, quiet_log);
	ck_assert(rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", errstr, sizeof(errstr)) ==
	          RD_KAFKA_CONF_OK);
	prk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	ck_assert_msg(prk != NULL, "%s", errstr);
	mcluster = rd_kafka_handle_mock_cluster(prk);
	ck_assert_int_eq(rd_kafka_mock_topic_create(mcluster, TOPIC, 2, 1), 0);
	ck_assert_int_eq(rd_kafka_mock_topic_create(mcluster, DLQ, 1, 1), 0);
	memset(&w, 0, sizeof(w));
	memset(&wal, 0, sizeof(wal));
	wal.insert = wal.flushed = 0x1000000;
	alloc_calls = alloc_fail_at = 0;
	atomic_store(&stop, false);
}

static void teardown(void)
{
	rd_kafka_destroy(prk);
}

static const char *mock_brokers(void)
{
	return rd_kafka_mock_cluster_bootstraps(mcluster);
}

/* Sets the consumer up on the mock cluster (or brokers) with props and
 * subscribes it. */

static void start_consumer(const char *brokers, const char *props)
{
	const struct consumer_config c = {
	    .brokers = brokers ? brokers : mock_brokers(), .topic = TOPIC, .group = GROUP,
	    .properties = props ? props : "", .replication = 1, .batch_size = batch_size,
	    .retry_max_ms = 200};
	char errstr[512];

	consumer_set_seams(fake_write, fake_realloc);
	consumer_set_wal_seam(fake_wal);
	ck_assert_msg(consumer_setup(&c, errstr, sizeof(errstr)) == 0, "%s", errstr);
	ck_assert_msg(consumer_subscribe(errstr, sizeof(errstr)) == 0, "%s", errstr);
}

static void produce(int32_t partition, const char *key, const char *value, int64_t ts_ms)
{
	ck_assert_int_eq(rd_kafka_producev(prk, RD_KAFKA_V_TOPIC(TOPIC),
	                                   RD_KAFKA_V_PARTITION(partition),
	                                   RD_KAFKA_V_KEY(key, strlen(key)),
	                                   RD_KAFKA_V_VALUE((void *)value, strlen(value)),
	                                   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	                                   RD_KAFKA_V_TIMESTAMP(ts_ms), RD_KAFKA_V_END),
	                 RD_KAFKA_RESP_ERR_NO_ERROR);
	ck_assert_int_eq(rd_kafka_flush(prk, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* A valid command for a fresh id: its id into id[UID_TEXT_SIZE], its
 * encoding into value. */
static void new_command(char *id, char value[MSG_ENCODED_MAX])
{
	struct msg_command m = {.event_time = {1254164592, 0}};

	uid_v4(m.command_id);
	msg_encode(&m, value);
	memcpy(id, m.command_id, UID_TEXT_SIZE);
}

/* Produces a valid command for a fresh id (into id[UID_TEXT_SIZE]). */
static void produce_valid(int32_t partition, char *id, int64_t ts_ms)
{
	char value[MSG_ENCODED_MAX];

	new_command(id, value);
	produce(partition, id, value, ts_ms);
}

/* Turns the consumer's loop until id is written (then every earlier
 * message of its partition was handled), stop, or STEPS turns. */
static void drive_until_written(const char *id)
{
	for (int i = 0; i < STEPS && times_written(id) == 0 && !atomic_load(&stop); i++)
		consumer_step(&stop, 100);
}

/* Turns the consumer's loop until id is written k times, stop, or STEPS
 * turns. */
static void drive_until_written_times(const char *id, size_t k)
{
	for (int i = 0; i < STEPS && times_written(id) < k && !atomic_load(&stop); i++)
		consumer_step(&stop, 100);
}

/* Turns the consumer's loop n times. */
static void turn(int n)
{
	for (int i = 0; i < n; i++)
		consumer_step(&stop, 100);
}

/* The offsets the group committed for partitions 0..n-1. */
static void committed(int64_t *offsets, int n)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n);
	rd_kafka_t *rk;
	char errstr[256];

	ck_assert(rd_kafka_conf_set(conf, "bootstrap.servers", mock_brokers(), errstr,
	                            sizeof(errstr)) == RD_KAFKA_CONF_OK);
	ck_assert(rd_kafka_conf_set(conf, "group.id", GROUP, errstr, sizeof(errstr)) ==
	          RD_KAFKA_CONF_OK);
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	ck_assert_msg(rk != NULL, "%s", errstr);
	for (int p = 0; p < n; p++)
		rd_kafka_topic_partition_list_add(parts, TOPIC, p);
	ck_assert_int_eq(rd_kafka_committed(rk, parts, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
	for (int p = 0; p < n; p++)
		offsets[p] = parts->elems[p].offset;
	rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_destroy(rk);
}

struct dead {
	char key[64];
	char reason[256];
};

/* Reads the whole dead-letter topic into out[0..max); returns the count. */
static size_t read_dlq(struct dead *out, size_t max)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
	rd_kafka_t *rk;
	char errstr[256];
	size_t n = 0;

	ck_assert(rd_kafka_conf_set(conf, "bootstrap.servers", mock_brokers(), errstr,
	                            sizeof(errstr)) == RD_KAFKA_CONF_OK);
	ck_assert(rd_kafka_conf_set(conf, "group.id", "dlq-reader", errstr, sizeof(errstr)) ==
	          RD_KAFKA_CONF_OK);
	ck_assert(rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr,
	                            sizeof(errstr)) == RD_KAFKA_CONF_OK);
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	ck_assert_msg(rk != NULL, "%s", errstr);
	rd_kafka_topic_partition_list_add(parts, DLQ, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
	ck_assert_int_eq(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_topic_partition_list_destroy(parts);
	for (int tries = 0; tries < 30; tries++) {
		rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 1000);
		rd_kafka_headers_t *hdrs;
		const void *val;
		size_t len;
		bool eof;

		if (rkm == NULL)
			continue;
		eof = rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
		if (rkm->err == 0 && n < max) {
			snprintf(out[n].key, sizeof(out[n].key), "%.*s", (int)rkm->key_len,
			         (const char *)rkm->key);
			out[n].reason[0] = '\0';
			if (rd_kafka_message_headers(rkm, &hdrs) == 0 &&
			    rd_kafka_header_get_last(hdrs, "dlq.reason", &val, &len) == 0)
				snprintf(out[n].reason, sizeof(out[n].reason), "%.*s", (int)len,
				         (const char *)val);
			n++;
		}
		rd_kafka_message_destroy(rkm);
		if (eof)
			break;
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return n;
}

static const struct dead *find_dead(const struct dead *d, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(d[i].key, key) == 0)
			return &d[i];
	return NULL;
}

/* A thread that watches consumer_down() until told to end, and sets stop
 * when it sees a dead-letter failure reported or WATCH_MS pass. */
static struct {
	pthread_t tid;
	atomic_bool end;
	char seen[512]; /* the first "dlq..." that consumer_down said */
} watch;

static void *watch_main(void *arg)
{
	(void)arg;
	for (int waited = 0; !atomic_load(&watch.end); waited += 10) {
		char buf[512];
		const char *down = consumer_down(buf, sizeof(buf));
		if (down != NULL && strncmp(down, "dlq", 3) == 0) {
			snprintf(watch.seen, sizeof(watch.seen), "%s", down);
			break;
		}
		if (waited >= WATCH_MS)
			break;
		nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
	}
	atomic_store(&stop, true);
	return NULL;
}

static void watch_start(void)
{
	watch.seen[0] = '\0';
	atomic_store(&watch.end, false);
	ck_assert_int_eq(pthread_create(&watch.tid, NULL, watch_main, NULL), 0);
}

static void watch_stop(void)
{
	atomic_store(&watch.end, true);
	pthread_join(watch.tid, NULL);
}

/* The value of an unlabelled series in /metrics, or -1. */
static long metric(const char *name)
{
	size_t len;
	char *text = metrics_render(&len), *p;
	long v = -1;

	for (p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, name, strlen(name)) == 0 && p[strlen(name)] == ' ') {
			v = strtol(p + strlen(name) + 1, NULL, 10);
			break;
		}
	}
	free(text);
	return v;
}

/* ---- bookkeeping ---- */

START_TEST(offsets_stored_are_one_past_the_last_written_message_of_each_partition)
{
	char ids[5][UID_TEXT_SIZE];
	int64_t offsets[2];

	for (int i = 0; i < 5; i++)
		produce_valid(i < 3 ? 0 : 1, ids[i], TS_MS);
	start_consumer(NULL, NULL);
	drive_until_written(ids[2]);
	drive_until_written(ids[4]);
	for (int i = 0; i < 5; i++)
		ck_assert_msg(times_written(ids[i]) == 1, "message %d written %zu times", i,
		              times_written(ids[i]));
	consumer_shutdown();
	committed(offsets, 2);
	ck_assert_int_eq(offsets[0], 3);
	ck_assert_int_eq(offsets[1], 2);
}
END_TEST

/* After each full batch the fetcher is woken (a ListOffsets request to the
 * partitions' leaders: consumer.c, fetch_nudge), and that disturbs nothing
 * consumed: every message is written once, the offsets follow. */
START_TEST(each_full_batch_wakes_the_fetcher)
{
	char ids[25][UID_TEXT_SIZE];
	int64_t offsets[1];
	long nudges;

	batch_size = 5;
	/* One producer batch: fetched, and queued, together. */
	for (int i = 0; i < 25; i++) {
		char value[MSG_ENCODED_MAX];

		new_command(ids[i], value);
		ck_assert_int_eq(rd_kafka_producev(prk, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(0),
		                                   RD_KAFKA_V_KEY(ids[i], strlen(ids[i])),
		                                   RD_KAFKA_V_VALUE(value, strlen(value)),
		                                   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		                                   RD_KAFKA_V_TIMESTAMP(TS_MS), RD_KAFKA_V_END),
		                 RD_KAFKA_RESP_ERR_NO_ERROR);
	}
	ck_assert_int_eq(rd_kafka_flush(prk, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
	nudges = consumer_fetch_nudges();
	start_consumer(NULL, NULL);
	drive_until_written(ids[24]);
	nudges = consumer_fetch_nudges() - nudges;
	for (int i = 0; i < 25; i++)
		ck_assert_msg(times_written(ids[i]) == 1, "message %d written %zu times", i,
		              times_written(ids[i]));
	ck_assert_int_ge(w.full_writes, 1);
	ck_assert_msg(nudges >= w.full_writes && nudges <= w.writes,
	              "%ld nudges for %d batches, %d of them full", nudges, w.writes, w.full_writes);
	consumer_shutdown();
	committed(offsets, 1);
	ck_assert_int_eq(offsets[0], 25);
	batch_size = 100;
}
END_TEST

START_TEST(nothing_is_stored_while_the_write_fails)
{
	char ids[2][UID_TEXT_SIZE];
	int64_t offsets[1];

	produce_valid(0, ids[0], TS_MS);
	produce_valid(0, ids[1], TS_MS);
	w.outages = 1000;
	w.stop_after_outages = 3;
	start_consumer(NULL, NULL);
	drive_until_written(ids[1]);
	ck_assert_uint_eq(w.n, 0);
	consumer_shutdown();
	committed(offsets, 1);
	ck_assert_int_eq(offsets[0], RD_KAFKA_OFFSET_INVALID);
}
END_TEST

START_TEST(an_outage_is_retried_and_nothing_is_dead_lettered)
{
	char ids[3][UID_TEXT_SIZE];
	struct dead dead[4];
	int64_t offsets[1];

	for (int i = 0; i < 3; i++)
		produce_valid(0, ids[i], TS_MS);
	w.outages = 2;
	start_consumer(NULL, NULL);
	drive_until_written(ids[2]);
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(times_written(ids[i]), 1);
	consumer_shutdown();
	committed(offsets, 1);
	ck_assert_int_eq(offsets[0], 3);
	ck_assert_uint_eq(read_dlq(dead, 4), 0);
}
END_TEST

START_TEST(poison_in_the_middle_is_dead_lettered_and_passed)
{
	char a[UID_TEXT_SIZE], b[UID_TEXT_SIZE];
	struct dead dead[4];
	int64_t offsets[1];
	size_t n;

	produce_valid(0, a, TS_MS);
	produce(0, "poison-1", "this is not JSON", TS_MS);
	produce_valid(0, b, TS_MS);
	start_consumer(NULL, NULL);
	drive_until_written(b);
	ck_assert_uint_eq(times_written(a), 1);
	ck_assert_uint_eq(times_written(b), 1);
	ck_assert_uint_eq(w.n, 2);
	consumer_shutdown();
	committed(offsets, 1);
	ck_assert_int_eq(offsets[0], 3);
	n = read_dlq(dead, 4);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(dead[0].key, "poison-1");
	ck_assert_msg(strstr(dead[0].reason, "JSON") != NULL, "reason '%s'", dead[0].reason);
}
END_TEST

/* ---- spans ---- */

#define PARENT_TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define PARENT_SPAN "00f067aa0ba902b7"

static void produce_traced(const char *key, const char *value, const char *traceparent)
{
	rd_kafka_headers_t *hdrs = rd_kafka_headers_new(1);

	rd_kafka_header_add(hdrs, "traceparent", -1, traceparent, -1);
	ck_assert_int_eq(rd_kafka_producev(prk, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(0),
	                                   RD_KAFKA_V_KEY(key, strlen(key)),
	                                   RD_KAFKA_V_VALUE((void *)value, strlen(value)),
	                                   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	                                   RD_KAFKA_V_TIMESTAMP(TS_MS), RD_KAFKA_V_HEADERS(hdrs),
	                                   RD_KAFKA_V_END),
	                 RD_KAFKA_RESP_ERR_NO_ERROR);
	ck_assert_int_eq(rd_kafka_flush(prk, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* The process span of the message with key, asserting there is one. */
static json_object *process_span(json_object **spans, int n, const char *key)
{
	json_object *found = NULL;

	for (int i = 0; i < n; i++) {
		const char *k = otlp_attr(spans[i], "messaging.kafka.message.key");
		if (k != NULL && strcmp(k, key) == 0) {
			ck_assert_msg(found == NULL, "two process spans for %s", key);
			found = spans[i];
		}
	}
	ck_assert_msg(found != NULL, "no process span for %s", key);
	return found;
}

/* A span's time field (ns since the epoch), 0 when absent. */
static int64_t span_ns(json_object *span, const char *field)
{
	const char *v = otlp_field(span, field);

	return v ? strtoll(v, NULL, 10) : 0;
}

/* The span lasts from within [from, to] to within it. */
static void assert_span_within(json_object *span, int64_t from, int64_t to)
{
	const int64_t start = span_ns(span, "startTimeUnixNano"), end = span_ns(span, "endTimeUnixNano");

	ck_assert_msg(from <= start && start <= end && end <= to,
	              "span from %" PRId64 " to %" PRId64 ", not within %" PRId64 " to %" PRId64, start,
	              end, from, to);
}

static int64_t wall_ns(void)
{
	const struct ts_instant t = ts_now();

	return t.sec * 1000000000 + t.nsec;
}

/* Each message's CONSUMER span continues the trace its traceparent header
 * carries (a malformed one starts a new trace), is ERROR when the message
 * is dead-lettered; the batch's INSERT spans are roots that link the spans
 * of the messages they wrote, and only those. */
START_TEST(each_message_continues_its_trace_and_the_insert_links_them)
{
	char a[UID_TEXT_SIZE], b[UID_TEXT_SIZE], value[MSG_ENCODED_MAX];
	json_object *spans[8], *inserts[8], *sa, *sp, *sb;
	const char *links[64];
	int n, n_inserts, n_links = 0;
	json_object *status, *message;
	const int64_t before = wall_ns();
	int64_t after;

	otlp_sink_trace();
	new_command(a, value);
	produce_traced(a, value, "00-" PARENT_TRACE "-" PARENT_SPAN "-01");
	produce_traced("poison-1", "this is not JSON", "00-" PARENT_TRACE "-" PARENT_SPAN "-01");
	new_command(b, value);
	produce_traced(b, value, "00-" PARENT_TRACE "-not-a-span-id-01");
	start_consumer(NULL, NULL);
	drive_until_written(b);
	ck_assert_uint_eq(times_written(b), 1);
	consumer_shutdown();
	trace_shutdown(10000);
	after = wall_ns();

	n = otlp_sink_spans(TOPIC " process", 3, 15000, spans, 8);
	ck_assert_int_eq(n, 3);
	sa = process_span(spans, n, a);
	sp = process_span(spans, n, "poison-1");
	sb = process_span(spans, n, b);
	ck_assert_int_eq(otlp_kind(sa), TRACE_CONSUMER);
	ck_assert_str_eq(otlp_field(sa, "traceId"), PARENT_TRACE);
	ck_assert_str_eq(otlp_field(sa, "parentSpanId"), PARENT_SPAN);
	ck_assert_msg(otlp_status(sa) != 2, "a written message's span is ERROR");
	ck_assert_str_eq(otlp_attr(sa, "messaging.system"), "kafka");
	ck_assert_str_eq(otlp_attr(sa, "messaging.destination.name"), TOPIC);
	ck_assert_str_eq(otlp_attr(sa, "messaging.destination.partition.id"), "0");
	ck_assert_str_eq(otlp_attr(sa, "messaging.kafka.offset"), "0");
	ck_assert_str_eq(otlp_attr(sa, "messaging.consumer.group.name"), GROUP);
	ck_assert_str_eq(otlp_attr(sa, "messaging.operation.type"), "process");
	ck_assert_str_eq(otlp_field(sp, "traceId"), PARENT_TRACE);
	ck_assert_int_eq(otlp_status(sp), 2); /* dead-lettered */
	ck_assert(json_object_object_get_ex(sp, "status", &status) &&
	          json_object_object_get_ex(status, "message", &message));
	ck_assert_msg(strncmp(json_object_get_string(message), "dead-lettered: ", 15) == 0 &&
	                  strlen(json_object_get_string(message)) > 15,
	              "status message: %s", json_object_get_string(message));
	assert_span_within(sa, before, after);
	assert_span_within(sp, before, after);
	assert_span_within(sb, before, after);
	ck_assert_str_ne(otlp_field(sb, "traceId"), PARENT_TRACE); /* a new trace */
	ck_assert_msg(otlp_field(sb, "parentSpanId") == NULL || otlp_field(sb, "parentSpanId")[0] == 0,
	              "the malformed context's span has a parent %s", otlp_field(sb, "parentSpanId"));
	ck_assert_msg(otlp_status(sb) != 2, "a written message's span is ERROR");

	n_inserts = otlp_sink_spans("INSERT timestamp_records", 1, 5000, inserts, 8);
	ck_assert_int_ge(n_inserts, 1);
	for (int i = 0; i < n_inserts; i++) {
		ck_assert_int_eq(otlp_kind(inserts[i]), TRACE_CLIENT);
		ck_assert_msg(otlp_field(inserts[i], "parentSpanId") == NULL ||
		                  otlp_field(inserts[i], "parentSpanId")[0] == 0,
		              "an INSERT span has a parent");
		ck_assert_str_eq(otlp_attr(inserts[i], "db.system"), "postgresql");
		ck_assert_str_eq(otlp_attr(inserts[i], "db.operation.name"), "INSERT");
		ck_assert_str_eq(otlp_attr(inserts[i], "db.collection.name"), "timestamp_records");
		ck_assert_ptr_nonnull(otlp_attr(inserts[i], "messaging.batch.message_count"));
		const int k = otlp_links(inserts[i], links + n_links, 64 - n_links);
		for (int l = n_links; l < n_links + k; l++) {
			/* A message's span lasts from its joining the batch until
			 * the batch is written: around the INSERT that wrote it. */
			json_object *msg = strcmp(links[l], otlp_field(sa, "spanId")) == 0   ? sa
			                   : strcmp(links[l], otlp_field(sb, "spanId")) == 0 ? sb
			                                                                     : NULL;
			if (msg == NULL)
				continue;
			ck_assert_int_le(span_ns(msg, "startTimeUnixNano"), span_ns(inserts[i], "startTimeUnixNano"));
			ck_assert_int_ge(span_ns(msg, "endTimeUnixNano"), span_ns(inserts[i], "endTimeUnixNano"));
		}
		n_links += k;
	}
	int seen_a = 0, seen_b = 0;
	for (int i = 0; i < n_links; i++) {
		seen_a += strcmp(links[i], otlp_field(sa, "spanId")) == 0;
		seen_b += strcmp(links[i], otlp_field(sb, "spanId")) == 0;
		ck_assert_str_ne(links[i], otlp_field(sp, "spanId")); /* not written */
	}
	ck_assert_int_eq(seen_a, 1);
	ck_assert_int_eq(seen_b, 1);
	for (int i = 0; i < n; i++)
		json_object_put(spans[i]);
	for (int i = 0; i < n_inserts; i++)
		json_object_put(inserts[i]);
	otlp_sink_stop();
}
END_TEST

/* A batch given up unwritten (here: the database stays down until the
 * consumer stops) ends its messages' spans as ERROR, saying the messages
 * are read again: no span claims a row that was not written. */
START_TEST(a_batch_given_up_unwritten_ends_its_spans_as_read_again)
{
	char a[UID_TEXT_SIZE], value[MSG_ENCODED_MAX];
	json_object *spans[4], *sa, *status, *message;
	const int64_t before = wall_ns();
	int n;

	otlp_sink_trace();
	new_command(a, value);
	produce_traced(a, value, "00-" PARENT_TRACE "-" PARENT_SPAN "-01");
	w.outages = 1000;
	w.stop_after_outages = 3;
	start_consumer(NULL, NULL);
	drive_until_written(a);
	ck_assert_msg(atomic_load(&stop), "the consumer did not meet the outage");
	ck_assert_uint_eq(times_written(a), 0);
	consumer_shutdown();
	trace_shutdown(10000);

	n = otlp_sink_spans(TOPIC " process", 1, 15000, spans, 4);
	ck_assert_int_eq(n, 1);
	sa = process_span(spans, n, a);
	ck_assert_str_eq(otlp_field(sa, "traceId"), PARENT_TRACE);
	ck_assert_str_eq(otlp_field(sa, "parentSpanId"), PARENT_SPAN);
	ck_assert_int_eq(otlp_status(sa), 2);
	ck_assert(json_object_object_get_ex(sa, "status", &status) &&
	          json_object_object_get_ex(status, "message", &message));
	ck_assert_str_eq(json_object_get_string(message), "not written: read again");
	assert_span_within(sa, before, wall_ns());
	json_object_put(spans[0]);
	otlp_sink_stop();
}
END_TEST

/* ---- the WAL flush ---- */

#define FAST_COMMITS "auto.commit.interval.ms=50"

/* Lets the held flush catch up: no batch is left waiting for it, and after
 * the shutdown partition 0's committed offset is want. */
static void flush_then_expect_committed(int64_t want)
{
	int64_t offsets[1];

	wal.hold = false;
	for (int i = 0; i < STEPS && metric("consumer_batches_unflushed") != 0; i++)
		turn(1);
	ck_assert_int_eq(metric("consumer_batches_unflushed"), 0);
	consumer_shutdown();
	committed(offsets, 1);
	ck_assert_int_eq(offsets[0], want);
}

/* Rows are committed without waiting for the flush: their offsets wait for
 * it, however often the auto-committer runs meanwhile. */
START_TEST(offsets_wait_until_the_wal_flush_passes_the_batch)
{
	char ids[2][UID_TEXT_SIZE];
	int64_t offsets[1];

	produce_valid(0, ids[0], TS_MS);
	produce_valid(0, ids[1], TS_MS);
	wal.hold = true;
	start_consumer(NULL, FAST_COMMITS);
	drive_until_written(ids[1]);
	turn(30); /* 30 looks at the flush and several auto-commits */
	ck_assert_int_ge(metric("consumer_batches_unflushed"), 1);
	committed(offsets, 1);
	ck_assert_msg(offsets[0] == RD_KAFKA_OFFSET_INVALID,
	              "offset %" PRId64 " committed before the WAL flush", offsets[0]);

	flush_then_expect_committed(2);
}
END_TEST

/* More batches waiting for the flush than the queue holds (one message a
 * batch, the flush held): the loop goes on writing, each once, and the
 * offsets of them all are stored once the flush passes the last. */
#define MORE_THAN_QUEUED 300
START_TEST(a_full_queue_of_unflushed_batches_does_not_stop_the_loop)
{
	static char ids[MORE_THAN_QUEUED][UID_TEXT_SIZE];
	int64_t offsets[1];
	size_t twice = 0;

	for (int i = 0; i < MORE_THAN_QUEUED; i++)
		produce_valid(0, ids[i], TS_MS);
	wal.hold = true;
	batch_size = 1; /* a batch a message */
	start_consumer(NULL, NULL);
	batch_size = 100;
	for (int k = 0; k < 4 && times_written(ids[MORE_THAN_QUEUED - 1]) == 0; k++)
		drive_until_written(ids[MORE_THAN_QUEUED - 1]); /* a turn a batch */
	for (int i = 0; i < MORE_THAN_QUEUED; i++)
		twice += times_written(ids[i]) != 1;
	ck_assert_msg(twice == 0, "%zu of %d messages not written exactly once while the flush is held",
	              twice, MORE_THAN_QUEUED);
	ck_assert_int_ge(metric("consumer_batches_unflushed"), 1);
	ck_assert_int_lt(metric("consumer_batches_unflushed"), MORE_THAN_QUEUED);
	committed(offsets, 1);
	ck_assert_int_eq(offsets[0], RD_KAFKA_OFFSET_INVALID);

	flush_then_expect_committed(MORE_THAN_QUEUED);
}
END_TEST

/* Leaving the group (a revocation) waits for the flush, then commits. */
START_TEST(a_revocation_waits_for_the_flush_then_commits)
{
	char ids[3][UID_TEXT_SIZE];
	int64_t offsets[2];

	produce_valid(0, ids[0], TS_MS);
	produce_valid(0, ids[1], TS_MS);
	produce_valid(1, ids[2], TS_MS);
	wal.hold = true;
	start_consumer(NULL, NULL);
	drive_until_written(ids[1]);
	drive_until_written(ids[2]);
	wal.flush_after = 5; /* the walwriter gets there at the fifth look from now */
	wal.looks = 0;
	consumer_shutdown();
	ck_assert_int_ge(wal.looks, 5);
	committed(offsets, 2);
	ck_assert_int_eq(offsets[0], 2);
	ck_assert_int_eq(offsets[1], 1);
}
END_TEST

/* A flush that cannot be confirmed (the server is gone) commits nothing. */
START_TEST(a_flush_never_confirmed_commits_nothing)
{
	char ids[2][UID_TEXT_SIZE];
	int64_t offsets[1];

	produce_valid(0, ids[0], TS_MS);
	produce_valid(0, ids[1], TS_MS);
	wal.hold = true;
	start_consumer(NULL, NULL);
	drive_until_written(ids[1]);
	if (_i == 1)
		wal.fail = 1000000;
	consumer_shutdown();
	committed(offsets, 1);
	ck_assert_msg(offsets[0] == RD_KAFKA_OFFSET_INVALID,
	              "offset %" PRId64 " committed past rows never flushed", offsets[0]);
}
END_TEST

/* The session is lost while batches wait for the flush (_i 0: when the
 * flush is looked at, 1: at the next write): their rows may be lost with
 * it, so they are read and written again, and then committed. */
START_TEST(a_lost_session_reads_the_unflushed_batches_again)
{
	char ids[3][UID_TEXT_SIZE];
	int64_t offsets[1];

	produce_valid(0, ids[0], TS_MS);
	produce_valid(0, ids[1], TS_MS);
	wal.hold = true;
	start_consumer(NULL, NULL);
	drive_until_written(ids[1]);
	if (_i == 0) {
		wal.fail = 1;
	} else {
		w.outages = 1;
		produce_valid(0, ids[2], TS_MS);
	}
	wal.hold = false;
	drive_until_written_times(ids[1], 2);
	ck_assert_uint_eq(times_written(ids[0]), 2);
	ck_assert_uint_eq(times_written(ids[1]), 2);
	if (_i == 1)
		drive_until_written(ids[2]);
	consumer_shutdown();
	committed(offsets, 1);
	ck_assert_int_eq(offsets[0], _i == 0 ? 2 : 3);
}
END_TEST

/* ---- what PostgreSQL cannot take ---- */

/* 10000-01-01T00:00:00Z in ms: the first instant RFC 3339 cannot write. */
#define YEAR_10000_MS 253402300800000LL

START_TEST(record_timestamp_past_year_9999_is_dead_lettered)
{
	char last[UID_TEXT_SIZE], x1[UID_TEXT_SIZE], x2[UID_TEXT_SIZE], b[UID_TEXT_SIZE];
	struct dead dead[4];
	const struct dead *d;
	int64_t offsets[1];
	size_t n;

	produce_valid(0, last, YEAR_10000_MS - 1); /* 9999-12-31T23:59:59.999Z: fine */
	produce_valid(0, x1, YEAR_10000_MS);
	produce_valid(0, x2, INT64_MAX);
	produce_valid(0, b, TS_MS);
	start_consumer(NULL, NULL);
	drive_until_written(b);
	ck_assert_uint_eq(times_written(last), 1);
	ck_assert_uint_eq(times_written(b), 1);
	ck_assert_msg(times_written(x1) == 0, "a record of year 10000 became a row");
	ck_assert_msg(times_written(x2) == 0, "a record of INT64_MAX ms became a row");
	consumer_shutdown();
	committed(offsets, 1);
	ck_assert_int_eq(offsets[0], 4);
	n = read_dlq(dead, 4);
	ck_assert_uint_eq(n, 2);
	ck_assert_ptr_nonnull(d = find_dead(dead, n, x1));
	ck_assert_msg(strstr(d->reason, "9999") != NULL, "reason '%s'", d->reason);
	ck_assert_ptr_nonnull(d = find_dead(dead, n, x2));
	ck_assert_msg(strstr(d->reason, "9999") != NULL, "reason '%s'", d->reason);
}
END_TEST

START_TEST(rows_refused_as_data_are_found_by_splitting_and_dead_lettered)
{
	char ids[8][UID_TEXT_SIZE];
	struct dead dead[4];
	const struct dead *d;
	int64_t offsets[1];
	size_t n;

	for (int i = 0; i < 8; i++)
		produce_valid(0, ids[i], TS_MS);
	w.refuse[0] = ids[2];
	w.refuse[1] = ids[5];
	start_consumer(NULL, NULL);
	drive_until_written(ids[7]);
	for (int i = 0; i < 8; i++)
		ck_assert_msg(times_written(ids[i]) == (i == 2 || i == 5 ? 0u : 1u),
		              "message %d written %zu times", i, times_written(ids[i]));
	consumer_shutdown();
	committed(offsets, 1);
	ck_assert_int_eq(offsets[0], 8);
	n = read_dlq(dead, 4);
	ck_assert_uint_eq(n, 2);
	ck_assert_ptr_nonnull(d = find_dead(dead, n, ids[2]));
	ck_assert_msg(strstr(d->reason, "23514") != NULL, "reason '%s'", d->reason);
	ck_assert_ptr_nonnull(d = find_dead(dead, n, ids[5]));
	ck_assert_msg(strstr(d->reason, "23514") != NULL, "reason '%s'", d->reason);
}
END_TEST

/* The first (items) and the second (rows) allocation of the batch fail. */
START_TEST(an_allocation_failure_loses_no_message)
{
	char ids[3][UID_TEXT_SIZE];
	int64_t offsets[1];

	for (int i = 0; i < 3; i++)
		produce_valid(0, ids[i], TS_MS);
	alloc_fail_at = 1 + _i;
	start_consumer(NULL, NULL);
	drive_until_written(ids[2]);
	drive_until_written(ids[0]);
	for (int i = 0; i < 3; i++)
		ck_assert_msg(times_written(ids[i]) == 1, "message %d written %zu times", i,
		              times_written(ids[i]));
	consumer_shutdown();
	committed(offsets, 1);
	ck_assert_int_eq(offsets[0], 3);
}
END_TEST

START_TEST(assignments_and_revocations_are_counted)
{
	char id[UID_TEXT_SIZE];

	produce_valid(0, id, TS_MS);
	start_consumer(NULL, NULL);
	drive_until_written(id);
	ck_assert_int_eq(metric("consumer_rebalances_total"), 1);
	consumer_shutdown(); /* leaving the group revokes the partitions */
	ck_assert_int_eq(metric("consumer_rebalances_total"), 2);
}
END_TEST

/* ---- the dead-letter producer ---- */

/* KAFKA_BROKER names nothing; KAFKA_PROPERTIES has the real servers and
 * consumer-only properties: like a cluster that needs security.protocol
 * and SASL settings, it is reached only with KAFKA_PROPERTIES. */
START_TEST(the_dead_letter_producer_takes_kafka_properties)
{
	char props[512], b[UID_TEXT_SIZE];
	struct dead dead[4];

	snprintf(props, sizeof(props),
	         "bootstrap.servers=%s,session.timeout.ms=30000,max.poll.interval.ms=600000",
	         mock_brokers());
	produce(0, "poison-1", "this is not JSON", TS_MS);
	produce_valid(0, b, TS_MS);
	start_consumer("127.0.0.1:9", props);
	watch_start();
	drive_until_written(b);
	watch_stop();
	ck_assert_msg(times_written(b) == 1, "consumption stalled at the dead letter");
	consumer_shutdown();
	ck_assert_uint_eq(read_dlq(dead, 4), 1);
	ck_assert_str_eq(dead[0].key, "poison-1");
}
END_TEST

START_TEST(a_dead_letter_producer_that_cannot_deliver_is_not_ready)
{
	static rd_kafka_resp_err_t errs[500];
	char b[UID_TEXT_SIZE];

	produce(0, "poison-1", "this is not JSON", TS_MS);
	produce_valid(0, b, TS_MS);
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
		errs[i] = RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
	rd_kafka_mock_push_request_errors_array(mcluster, 0 /* Produce */,
	                                        sizeof(errs) / sizeof(errs[0]), errs);
	start_consumer(NULL, NULL);
	watch_start();
	drive_until_written(b);
	watch_stop();
	ck_assert_msg(strncmp(watch.seen, "dlq: ", 5) == 0,
	              "/ready never said the dead-letter topic is down");
	consumer_shutdown();
	/* b's row may be written (when it came in the poison's batch: rows go
	 * first), but no offset may pass the undelivered dead letter at 0. */
	int64_t offsets[1];
	committed(offsets, 1);
	ck_assert_msg(offsets[0] <= 0, "offset %" PRId64 " committed past an undelivered dead letter",
	              offsets[0]);
}
END_TEST

/* ---- lag in seconds ---- */

static int64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* A message accepted a minute ago that cannot be written is at least a
 * minute old on consumer_lag_seconds (its Kafka timestamp, not the time it
 * was fetched); once written, nothing is left and the lag is 0. */
START_TEST(a_held_batch_is_as_old_as_its_oldest_timestamp_then_0_once_written)
{
	char id[UID_TEXT_SIZE];

	produce_valid(1, id, now_ms() - 60000);
	w.outages = 3;
	start_consumer(NULL, NULL);
	drive_until_written(id);
	ck_assert_uint_eq(times_written(id), 1);
	ck_assert_msg(w.lag_seen >= 60 && w.lag_seen < 3600,
	              "lag %.3f s while a message of a minute ago waited", w.lag_seen);
	turn(3); /* the loop looks at positions and end offsets every 100 ms */
	ck_assert_double_eq(consumer_lag_seconds(1), 0);
	ck_assert_double_eq(consumer_lag_seconds_max(), 0);
	ck_assert_double_eq(consumer_lag_seconds(0), 0); /* assigned, never a message */
	ck_assert_double_eq(consumer_lag_seconds(7), 0); /* not a partition of the topic */
	consumer_shutdown();
}
END_TEST

/* Another producer stamped the message an hour ahead: it counts from when
 * it was fetched, never as a negative age, and ages while it is held (the
 * retries wait 100 ms, then 200 ms). */
START_TEST(a_timestamp_in_the_future_counts_from_now)
{
	char id[UID_TEXT_SIZE];

	produce_valid(0, id, now_ms() + 3600000);
	w.outages = 3;
	w.lag_seen = -1;
	start_consumer(NULL, NULL);
	drive_until_written(id);
	ck_assert_uint_eq(times_written(id), 1);
	ck_assert_msg(w.lag_seen >= 0.1 && w.lag_seen < 60, "lag %.3f s for a message stamped an "
	              "hour ahead and held through two retries", w.lag_seen);
	consumer_shutdown();
}
END_TEST

/* ---- configuration ---- */

/* CONSUMER_PREFETCH_KB as main.c loads it: a default, a number in range,
 * and an error that names the variable otherwise. */
START_TEST(prefetch_kb_is_parsed_and_checked)
{
	int kb = -1;
	const struct cfg_param params[] = {CONSUMER_CFG_PREFETCH(kb)};
	char err[256];

	unsetenv("CONSUMER_PREFETCH_KB");
	ck_assert_int_eq(cfg_load(params, CFG_COUNT(params), err, sizeof(err)), 0);
	ck_assert_int_eq(kb, atoi(CONSUMER_PREFETCH_KB_DEFAULT));
	setenv("CONSUMER_PREFETCH_KB", "2048", 1);
	ck_assert_int_eq(cfg_load(params, CFG_COUNT(params), err, sizeof(err)), 0);
	ck_assert_int_eq(kb, 2048);
	static const char *const bad[] = {"lots", "4096k", "-1", "0", "255", "2097152", "1e4"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("CONSUMER_PREFETCH_KB", bad[i], 1);
		err[0] = '\0';
		ck_assert_msg(cfg_load(params, CFG_COUNT(params), err, sizeof(err)) != 0,
		              "%s accepted", bad[i]);
		ck_assert_msg(strncmp(err, "CONSUMER_PREFETCH_KB: ", 22) == 0, "%s: %s", bad[i], err);
	}
	unsetenv("CONSUMER_PREFETCH_KB");
}
END_TEST

/* READY_MAX_LAG_S: off unless set; then a whole number of seconds, at
 * least 1; anything else stops the program with an error that names it. */
START_TEST(ready_max_lag_is_off_by_default_and_checked)
{
	int lag = 0;
	const struct cfg_param params[] = {CONSUMER_CFG_READY_MAX_LAG(lag)};
	char err[256];

	unsetenv("READY_MAX_LAG_S");
	ck_assert_int_eq(cfg_load(params, CFG_COUNT(params), err, sizeof(err)), 0);
	ck_assert_int_eq(lag, 0);
	setenv("READY_MAX_LAG_S", "", 1); /* empty counts as unset */
	ck_assert_int_eq(cfg_load(params, CFG_COUNT(params), err, sizeof(err)), 0);
	ck_assert_int_eq(lag, 0);
	setenv("READY_MAX_LAG_S", "30", 1);
	ck_assert_int_eq(cfg_load(params, CFG_COUNT(params), err, sizeof(err)), 0);
	ck_assert_int_eq(lag, 30);
	setenv("READY_MAX_LAG_S", "31536000", 1); /* a year, the most */
	ck_assert_int_eq(cfg_load(params, CFG_COUNT(params), err, sizeof(err)), 0);
	ck_assert_int_eq(lag, 31536000);
	static const char *const bad[] = {"0", "-5", "ten", "5s", "1.5", "31536001",
	                                  "2147483648", "99999999999999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("READY_MAX_LAG_S", bad[i], 1);
		err[0] = '\0';
		lag = 7;
		ck_assert_msg(cfg_load(params, CFG_COUNT(params), err, sizeof(err)) != 0,
		              "%s accepted", bad[i]);
		ck_assert_msg(strncmp(err, "READY_MAX_LAG_S: ", 17) == 0, "%s: %s", bad[i], err);
		ck_assert_int_eq(lag, 7);
	}
	unsetenv("READY_MAX_LAG_S");
}
END_TEST

/* A message's age counts from its Kafka timestamp; one without (-1, or 0
 * from a producer that sets none) from when it was fetched; one from the
 * future (any producer can write one) is as old as now, never younger. */
START_TEST(message_time_is_its_timestamp_clamped_to_now)
{
	const int64_t now = TS_MS, fetched = TS_MS - 20;

	ck_assert_int_eq(consumer_message_time_ms(TS_MS - 5000, fetched, now), TS_MS - 5000);
	ck_assert_int_eq(consumer_message_time_ms(-1, fetched, now), fetched);
	ck_assert_int_eq(consumer_message_time_ms(0, fetched, now), fetched);
	ck_assert_int_eq(consumer_message_time_ms(TS_MS + 3600000, fetched, now), now);
	ck_assert_int_eq(consumer_message_time_ms(INT64_MAX, fetched, now), now);
	ck_assert_int_eq(consumer_message_time_ms(1, fetched, now), 1); /* 1970: old, but real */
}
END_TEST

/* The knob reaches librdkafka, no count of messages bounds the prefetch
 * before it, and KAFKA_PROPERTIES still has the last word. */
static void setup_with_prefetch(int kb, const char *props)
{
	const struct consumer_config c = {.brokers = mock_brokers(), .topic = TOPIC, .group = GROUP,
	                                  .properties = props, .replication = 1, .batch_size = 100,
	                                  .prefetch_kb = kb, .retry_max_ms = 200};
	char errstr[512];

	consumer_set_seams(fake_write, fake_realloc);
	consumer_set_wal_seam(fake_wal);
	ck_assert_msg(consumer_setup(&c, errstr, sizeof(errstr)) == 0, "%s", errstr);
}

START_TEST(prefetch_kb_sets_the_queue_and_kafka_properties_override_it)
{
	char v[64];

	setup_with_prefetch(1024, "");
	ck_assert_int_eq(consumer_kafka_property("queued.max.messages.kbytes", v, sizeof(v)), 0);
	ck_assert_str_eq(v, "1024");
	ck_assert_int_eq(consumer_kafka_property("queued.min.messages", v, sizeof(v)), 0);
	ck_assert_str_eq(v, "10000000");
	consumer_shutdown();

	setup_with_prefetch(1024, "queued.max.messages.kbytes=512,queued.min.messages=5000");
	ck_assert_int_eq(consumer_kafka_property("queued.max.messages.kbytes", v, sizeof(v)), 0);
	ck_assert_str_eq(v, "512");
	ck_assert_int_eq(consumer_kafka_property("queued.min.messages", v, sizeof(v)), 0);
	ck_assert_str_eq(v, "5000");
	consumer_shutdown();
}
END_TEST

Suite *make_consumer_suite(void)
{
	Suite *s = suite_create("consumer");
	TCase *tc = tcase_create("batch");

	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, offsets_stored_are_one_past_the_last_written_message_of_each_partition);
	tcase_add_test(tc, each_full_batch_wakes_the_fetcher);
	tcase_add_test(tc, nothing_is_stored_while_the_write_fails);
	tcase_add_test(tc, an_outage_is_retried_and_nothing_is_dead_lettered);
	tcase_add_test(tc, poison_in_the_middle_is_dead_lettered_and_passed);
	tcase_add_test(tc, record_timestamp_past_year_9999_is_dead_lettered);
	tcase_add_test(tc, rows_refused_as_data_are_found_by_splitting_and_dead_lettered);
	tcase_add_loop_test(tc, an_allocation_failure_loses_no_message, 0, 2);
	tcase_add_test(tc, assignments_and_revocations_are_counted);
	suite_add_tcase(s, tc);

	tc = tcase_create("spans");
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, each_message_continues_its_trace_and_the_insert_links_them);
	tcase_add_test(tc, a_batch_given_up_unwritten_ends_its_spans_as_read_again);
	suite_add_tcase(s, tc);

	tc = tcase_create("lag");
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, a_held_batch_is_as_old_as_its_oldest_timestamp_then_0_once_written);
	tcase_add_test(tc, a_timestamp_in_the_future_counts_from_now);
	suite_add_tcase(s, tc);

	tc = tcase_create("flush");
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, offsets_wait_until_the_wal_flush_passes_the_batch);
	tcase_add_test(tc, a_revocation_waits_for_the_flush_then_commits);
	tcase_add_loop_test(tc, a_flush_never_confirmed_commits_nothing, 0, 2);
	tcase_add_loop_test(tc, a_lost_session_reads_the_unflushed_batches_again, 0, 2);
	tcase_add_test(tc, a_full_queue_of_unflushed_batches_does_not_stop_the_loop);
	suite_add_tcase(s, tc);

	tc = tcase_create("dlq");
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, the_dead_letter_producer_takes_kafka_properties);
	tcase_add_test(tc, a_dead_letter_producer_that_cannot_deliver_is_not_ready);
	suite_add_tcase(s, tc);

	tc = tcase_create("config");
	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, prefetch_kb_is_parsed_and_checked);
	tcase_add_test(tc, ready_max_lag_is_off_by_default_and_checked);
	tcase_add_test(tc, message_time_is_its_timestamp_clamped_to_now);
	tcase_add_test(tc, prefetch_kb_sets_the_queue_and_kafka_properties_override_it);
	suite_add_tcase(s, tc);
	return s;
}
