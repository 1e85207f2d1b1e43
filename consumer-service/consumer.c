/* consumer: the Kafka consumer group member that turns the topic into rows.
 *
 * Messages are polled into a batch (as many as are ready, up to the batch
 * size), decoded with the shared codec, inserted with one statement, and
 * only then are their offsets stored for the auto-committer. Messages that
 * cannot be decoded, and rows PostgreSQL refuses as data (found by splitting
 * the statement), go unchanged to <topic>.dlq. PostgreSQL commits without
 * waiting for its WAL flush (sink), so a written batch's offsets wait in a
 * short queue until the flush has passed its commit; a lost session sends
 * the partitions back to the first message not known to be durable. While
 * PostgreSQL (or the
 * dead-letter topic) is down the assignment is paused and the batch retried
 * with capped backoff; the poll loop keeps running, so the group membership
 * is kept. */
#include "consumer.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "sink.h"
#include "trace.h"
#include "ts.h"

/* Where a poison message's dead letter is. A failed one is sent again. */
enum dlq_state { DLQ_FAILED = -1, DLQ_NOT_SENT, DLQ_IN_FLIGHT, DLQ_DELIVERED };

struct item {
	rd_kafka_message_t *rkm;
	char cid[UID_TEXT_SIZE]; /* correlationId header, "" if none */
	char reason[256];        /* why it is poison, "" if it is not */
	long row;                /* its index in rows[], -1 when it did not decode */
	enum dlq_state dlq_state;
	/* Tracing on: whether its CONSUMER span is recorded (made when the
	 * batch ends: batch_trace_end), that span's context (traced: valid),
	 * which the batch's INSERT span links to and its log lines carry, its
	 * parent's span id, and when it joined the batch. */
	bool recorded, traced, has_parent, has_state;
	uint8_t trace_id[16], span_id[8], parent_id[8], trace_flags;
	int64_t joined_ns; /* clock_mono_ns */
};

/* Delivery report token for a dead-letter message: the batch may be gone
 * when the report arrives, so it carries the batch generation. */
struct dlq_token {
	unsigned gen;
	size_t index;
};

static struct consumer_config cfg;
static rd_kafka_t *rk, *dlq;
static char dlq_topic[512];
/* The spans' names ("<topic> process", "INSERT <table>") and the
 * database they write to. */
static char process_span[520], insert_span[160];
static struct db_target db_target;

static struct item *items;
static struct sink_row *rows;
static size_t n_items, n_rows, n_poison, cap_items; /* rows: decoded items only */
static size_t rows_written; /* rows[0, rows_written) are written or refused */
static unsigned batch_gen;
static bool dlq_ready; /* the dead-letter topic is known to exist */
static const char *const dlq_configs[] = {"max.message.bytes", "10485760", NULL};

/* Seams for the unit tests: the writer of rows (PostgreSQL through sink)
 * and the allocator of the batch's arrays. */
static int db_write(const struct sink_row *rows, size_t n, long *inserted, char *errstr,
                    size_t errstr_size);
static consumer_write_fn write_rows = db_write;
static int db_wal(uint64_t *insert, uint64_t *flushed, char *errstr, size_t errstr_size);
static consumer_wal_fn wal_position = db_wal;
static void *(*batch_realloc)(void *, size_t) = realloc;

static atomic_bool joined, db_up, dlq_up = true;
static atomic_bool failed; /* a message could be neither kept nor read again */
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static char db_error[256] = "not connected yet", dlq_error[256];

#define RECORDS_HELP "Records taken from the topic, by outcome."
static struct metrics_series m_inserted = METRICS_COUNTER_INIT("consumer_records_total", RECORDS_HELP, "outcome=\"inserted\"");
static struct metrics_series m_duplicate = METRICS_COUNTER_INIT("consumer_records_total", RECORDS_HELP, "outcome=\"duplicate\"");
static struct metrics_series m_dead = METRICS_COUNTER_INIT("consumer_records_total", RECORDS_HELP, "outcome=\"dead_lettered\"");
static struct metrics_series m_batches = METRICS_COUNTER_INIT("consumer_batches_total", "Batches written to PostgreSQL.", "");
static struct metrics_series m_batch_duration = METRICS_HISTOGRAM_INIT("consumer_batch_duration_seconds", "Time to write one batch and its dead letters.", "");
static struct metrics_series m_batch_size = METRICS_SIZE_HISTOGRAM_INIT("consumer_batch_size", "Messages per batch written.", "");
static struct metrics_series m_db_errors = METRICS_COUNTER_INIT("consumer_db_errors_total", "Failed database writes or checks.", "");
static struct metrics_series m_db_up = METRICS_GAUGE_INIT("consumer_db_up", "1 when the last database operation succeeded.", "");
static struct metrics_series m_unflushed = METRICS_GAUGE_INIT("consumer_batches_unflushed", "Batches written whose offsets wait for PostgreSQL to flush their WAL.", "");
static struct metrics_series m_rebalances = METRICS_COUNTER_INIT("consumer_rebalances_total", "Partition assignments and revocations of this member (a rebalance is one of each).", "");

/* Lag per partition, from librdkafka's statistics; the gauges are
 * registered the first time the partition count is known. */
#define LAG_PARTITIONS_MAX 256
static struct metrics_series m_lag[LAG_PARTITIONS_MAX];
static char lag_labels[LAG_PARTITIONS_MAX][32];
static int lag_registered;

/* Called with librdkafka's statistics JSON every statistics.interval.ms. */
static int on_stats(rd_kafka_t *rk_, char *json, size_t json_len, void *opaque)
{
	struct json_object *stats, *topics, *topic, *parts;

	(void)rk_;
	(void)opaque;
	(void)json_len;
	stats = json_tokener_parse(json);
	if (stats && json_object_object_get_ex(stats, "topics", &topics) &&
	    json_object_object_get_ex(topics, cfg.topic, &topic) &&
	    json_object_object_get_ex(topic, "partitions", &parts)) {
		json_object_object_foreach(parts, key, part) {
			struct json_object *lag;
			int p = atoi(key);
			if (p < 0 || p >= LAG_PARTITIONS_MAX ||
			    !json_object_object_get_ex(part, "consumer_lag", &lag))
				continue;
			while (lag_registered <= p) {
				int i = lag_registered++;
				snprintf(lag_labels[i], sizeof(lag_labels[i]), "partition=\"%d\"", i);
				m_lag[i] = (struct metrics_series)METRICS_GAUGE_INIT(
				    "consumer_lag_messages",
				    "Messages between the committed offset and the end of each partition (-1: unknown).",
				    lag_labels[i]);
				metrics_register(&m_lag[i]);
			}
			metrics_set(&m_lag[p], json_object_get_int64(lag));
		}
	}
	json_object_put(stats);
	return 0; /* librdkafka frees json */
}

/* ---- lag as time ----
 *
 * consumer_lag_seconds{partition} is the age of the oldest message of the
 * partition that this member has not written yet: now minus its Kafka
 * timestamp (consumer_message_time_ms). The consumer knows the timestamps
 * of the messages it has polled: the batch in hand, which keeps aging while
 * it waits for an unreachable database. Of the messages after them it
 * knows only that they exist — librdkafka's end offset of the partition,
 * from its last fetch, is past the next offset to poll — not their
 * timestamps, which it cannot read ahead for: their age counts from the
 * moment the loop first saw them there (a lower bound), and starts again
 * whenever the position moves on. Written means committed, visible to
 * reads; the wait for the WAL flush that follows does not count. A
 * partition not assigned to this member shows 0: its owner reports it. */
#define LAG_WATCH_S 0.1 /* how often the loop compares positions and end offsets */
static _Atomic int64_t lag_pending_ms[LAG_PARTITIONS_MAX]; /* oldest polled, unwritten; 0: none */
static _Atomic int64_t lag_behind_ms[LAG_PARTITIONS_MAX];  /* unpolled ones seen since; 0: none */
static atomic_bool lag_assigned[LAG_PARTITIONS_MAX];
static int64_t lag_behind_at[LAG_PARTITIONS_MAX]; /* the position they were seen at (loop) */
static double lag_watched_at;
static struct metrics_series m_lag_s[LAG_PARTITIONS_MAX];
static char lag_s_labels[LAG_PARTITIONS_MAX][32];
static _Atomic int lag_s_registered;
static struct metrics_series m_lag_s_max = METRICS_REAL_GAUGE_INIT(
    "consumer_lag_seconds_max", "The largest consumer_lag_seconds of this member.", "");

static int64_t wall_ms(void)
{
	const struct ts_instant t = ts_now();
	return t.sec * 1000 + t.nsec / 1000000;
}

int64_t consumer_message_time_ms(int64_t ts_ms, int64_t fetched_ms, int64_t now_ms)
{
	const int64_t t = ts_ms > 0 ? ts_ms : fetched_ms;
	return t < now_ms ? t : now_ms;
}

/* A gauge for each partition up to p (the loop thread registers them; the
 * scraping thread reads as many as lag_s_registered says). */
static void lag_register(int p)
{
	int i;

	while ((i = atomic_load(&lag_s_registered)) <= p && i < LAG_PARTITIONS_MAX) {
		snprintf(lag_s_labels[i], sizeof(lag_s_labels[i]), "partition=\"%d\"", i);
		m_lag_s[i] = (struct metrics_series)METRICS_REAL_GAUGE_INIT(
		    "consumer_lag_seconds",
		    "Age of the oldest message of each partition not yet written to PostgreSQL "
		    "(0: none, or not assigned to this member).",
		    lag_s_labels[i]);
		metrics_register(&m_lag_s[i]);
		atomic_store(&lag_s_registered, i + 1);
	}
}

/* rkm joins the batch in hand. */
static void lag_polled(const rd_kafka_message_t *rkm)
{
	const int64_t now = wall_ms(), t = consumer_message_time_ms(
	    rd_kafka_message_timestamp(rkm, NULL), now, now);
	const int p = rkm->partition;

	if (p >= 0 && p < LAG_PARTITIONS_MAX &&
	    (atomic_load(&lag_pending_ms[p]) == 0 || t < atomic_load(&lag_pending_ms[p])))
		atomic_store(&lag_pending_ms[p], t);
}

/* Looks (every LAG_WATCH_S) for partitions whose end is past the position:
 * messages this member has not polled yet. */
static void lag_watch(void)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	const int64_t now = wall_ms();

	if (clock_mono_s() - lag_watched_at < LAG_WATCH_S)
		return;
	lag_watched_at = clock_mono_s();
	if (rd_kafka_assignment(rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || parts == NULL)
		return;
	if (rd_kafka_position(rk, parts) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		for (int i = 0; i < parts->cnt; i++) {
			const rd_kafka_topic_partition_t *tp = &parts->elems[i];
			const int p = tp->partition;
			int64_t lo, hi;

			if (p < 0 || p >= LAG_PARTITIONS_MAX)
				continue;
			if (tp->offset < 0 ||
			    rd_kafka_get_watermark_offsets(rk, tp->topic, p, &lo, &hi) != 0 ||
			    hi <= tp->offset) {
				atomic_store(&lag_behind_ms[p], 0);
			} else if (atomic_load(&lag_behind_ms[p]) == 0 || lag_behind_at[p] != tp->offset) {
				lag_behind_at[p] = tp->offset;
				atomic_store(&lag_behind_ms[p], now);
			}
		}
	}
	rd_kafka_topic_partition_list_destroy(parts);
}

/* The partitions of parts are now this member's (assigned) or no longer
 * (all of them: the eager protocol revokes everything). */
static void lag_assign(const rd_kafka_topic_partition_list_t *parts, bool assigned)
{
	if (!assigned) {
		for (int p = 0; p < LAG_PARTITIONS_MAX; p++) {
			atomic_store(&lag_assigned[p], false);
			atomic_store(&lag_behind_ms[p], 0);
		}
		return;
	}
	for (int i = 0; i < parts->cnt; i++) {
		const int p = parts->elems[i].partition;
		if (p < 0 || p >= LAG_PARTITIONS_MAX)
			continue;
		lag_register(p);
		atomic_store(&lag_behind_ms[p], 0);
		atomic_store(&lag_assigned[p], true);
	}
}

double consumer_lag_seconds(int p)
{
	int64_t oldest, behind, now;

	if (p < 0 || p >= LAG_PARTITIONS_MAX || !atomic_load(&lag_assigned[p]))
		return 0;
	oldest = atomic_load(&lag_pending_ms[p]);
	behind = atomic_load(&lag_behind_ms[p]);
	if (oldest == 0 || (behind != 0 && behind < oldest))
		oldest = behind;
	now = wall_ms();
	return oldest == 0 || oldest >= now ? 0 : (double)(now - oldest) / 1000.0;
}

double consumer_lag_seconds_max(void)
{
	double max = 0;

	for (int p = 0; p < atomic_load(&lag_s_registered); p++) {
		const double age = consumer_lag_seconds(p);
		max = age > max ? age : max;
	}
	return max;
}

/* At each scrape: the ages as of now, so that a batch held up keeps aging
 * on /metrics while the loop waits for the database. */
static void lag_collect(void)
{
	double max = 0;

	for (int p = 0; p < atomic_load(&lag_s_registered); p++) {
		const double age = consumer_lag_seconds(p);
		metrics_set_real(&m_lag_s[p], age);
		max = age > max ? age : max;
	}
	metrics_set_real(&m_lag_s_max, max);
}

static void set_db_state(bool up, const char *why)
{
	atomic_store(&db_up, up);
	metrics_set(&m_db_up, up);
	if (!up) {
		metrics_add(&m_db_errors, 1);
		pthread_mutex_lock(&state_lock);
		snprintf(db_error, sizeof(db_error), "%s", why);
		pthread_mutex_unlock(&state_lock);
	}
}

/* The dead-letter topic could not take (or acknowledge) a dead letter:
 * consumption stops there, so /ready must say so. */
static void set_dlq_state(bool up, const char *why)
{
	atomic_store(&dlq_up, up);
	if (!up) {
		pthread_mutex_lock(&state_lock);
		snprintf(dlq_error, sizeof(dlq_error), "%s", why);
		pthread_mutex_unlock(&state_lock);
	}
}

/* ---- batch ---- */

/* ---- tracing ----
 *
 * Each message has a CONSUMER span, a child of the context its headers
 * carry (the producer's span), from when it joins the batch until the
 * batch is written (status ERROR when it was dead-lettered); each attempt
 * at writing the batch's rows is a CLIENT span "INSERT <table>", the root
 * of a trace of its own, with a link to every message's span: a batch
 * belongs to many traces. With tracing off the loop pays one branch per
 * message. */

static void item_ctx(const struct item *it, struct trace_ctx *ctx)
{
	memcpy(ctx->trace_id, it->trace_id, sizeof(ctx->trace_id));
	memcpy(ctx->span_id, it->span_id, sizeof(ctx->span_id));
	ctx->flags = it->trace_flags;
	ctx->state[0] = '\0';
}

static void item_trace_start(struct item *it)
{
	struct trace_ctx parent, ctx;

	(void)msg_trace_context(it->rkm, &parent); /* none or malformed: a new trace */
	it->recorded = trace_begin(&parent, &ctx);
	it->traced = trace_ctx_valid(&ctx);
	memcpy(it->trace_id, ctx.trace_id, sizeof(it->trace_id));
	memcpy(it->span_id, ctx.span_id, sizeof(it->span_id));
	it->trace_flags = ctx.flags;
	it->has_parent = trace_ctx_valid(&parent);
	memcpy(it->parent_id, parent.span_id, sizeof(it->parent_id));
	it->has_state = ctx.state[0] != '\0';
	it->joined_ns = clock_mono_ns();
}

/* The CONSUMER spans of a batch, recorded when it ends and made on the
 * exporter's thread (trace_defer): making 2,000 spans of 8 attributes
 * each on the loop's thread cost it a fifth of its speed. Strings are
 * offsets into text (0: none; text[0] is unused). */
struct span_rec {
	uint8_t trace_id[16], span_id[8], parent_id[8];
	bool has_parent;
	int32_t partition;
	int64_t offset, start_ns;
	uint32_t topic, key, cid, status, state;
};

struct span_job {
	int64_t end_ns;
	size_t n, text_len;
	uint32_t name, group;
	char *text; /* after recs[n] */
	struct span_rec recs[];
};

static uint32_t job_put(struct span_job *j, const char *s, size_t n)
{
	const uint32_t at = (uint32_t)j->text_len;

	memcpy(j->text + at, s, n);
	j->text[at + n] = '\0';
	j->text_len += n + 1;
	return at;
}

/* Runs on the exporter's thread. */
static void make_spans(void *arg)
{
	struct span_job *j = arg;
	const char *t = j->text;
	char part[16] = "";
	int64_t part_of = -1; /* the partition part names: one snprintf a run of it */

	for (size_t i = 0; i < j->n; i++) {
		const struct span_rec *r = &j->recs[i];
		struct trace_ctx ctx;
		struct trace_span *span;

		memcpy(ctx.trace_id, r->trace_id, sizeof(ctx.trace_id));
		memcpy(ctx.span_id, r->span_id, sizeof(ctx.span_id));
		ctx.flags = 1;
		ctx.state[0] = '\0';
		if (r->state)
			snprintf(ctx.state, sizeof(ctx.state), "%s", t + r->state);
		span = trace_start_at(t + j->name, TRACE_CONSUMER, &ctx,
		                      r->has_parent ? r->parent_id : NULL, r->start_ns);
		if (span == NULL)
			continue;
		if (r->partition != part_of) {
			snprintf(part, sizeof(part), "%" PRId32, r->partition);
			part_of = r->partition;
		}
		trace_attr_str(span, "messaging.system", "kafka");
		trace_attr_str(span, "messaging.destination.name", t + r->topic);
		trace_attr_str(span, "messaging.destination.partition.id", part);
		trace_attr_int(span, "messaging.kafka.offset", r->offset);
		trace_attr_str(span, "messaging.consumer.group.name", t + j->group);
		trace_attr_str(span, "messaging.operation.type", "process");
		if (r->key)
			trace_attr_str(span, "messaging.kafka.message.key", t + r->key);
		if (r->cid)
			trace_attr_str(span, "correlation_id", t + r->cid);
		if (r->status)
			trace_error(span, "%s", t + r->status);
		trace_end_at(span, j->end_ns);
	}
	free(j);
}

/* A message key as a span attribute: up to 255 bytes, cut at a NUL. */
static size_t key_len(const rd_kafka_message_t *rkm)
{
	size_t n = rkm->key_len < 255 ? rkm->key_len : 255;
	const char *nul = memchr(rkm->key, '\0', n);

	return nul ? (size_t)(nul - (const char *)rkm->key) : n;
}

/* Ends the recorded spans of the batch's messages: written, or why not
 * (not_written; a dead letter's is its reason). */
static void batch_trace_end(const char *not_written)
{
	static const char dead[] = "dead-lettered: ";
	const size_t not_len = not_written ? strlen(not_written) : 0;
	size_t n = 0, text = 1 + strlen(process_span) + 1 + strlen(cfg.group) + 1;
	const char *topic = NULL;
	uint32_t topic_at = 0;
	struct span_job *j;
	struct ts_instant wall;
	int64_t mono;

	for (size_t i = 0; i < n_items; i++) {
		const struct item *it = &items[i];
		if (!it->recorded)
			continue;
		n++;
		text += strlen(rd_kafka_topic_name(it->rkm->rkt)) + 1;
		if (it->rkm->key != NULL)
			text += key_len(it->rkm) + 1;
		if (it->cid[0])
			text += UID_TEXT_SIZE;
		if (not_written)
			text += not_len + 1;
		else if (it->reason[0])
			text += sizeof(dead) + strlen(it->reason);
		if (it->has_state)
			text += TRACE_STATE_MAX + 1;
	}
	if (n == 0)
		return;
	wall = ts_now();
	mono = clock_mono_ns();
	j = malloc(sizeof(*j) + n * sizeof(j->recs[0]) + text);
	if (j == NULL) {
		trace_lost((int)n);
		for (size_t i = 0; i < n_items; i++)
			items[i].recorded = false;
		return;
	}
	j->end_ns = wall.sec * 1000000000 + wall.nsec;
	j->n = 0;
	j->text = (char *)&j->recs[n];
	j->text[0] = '\0';
	j->text_len = 1;
	j->name = job_put(j, process_span, strlen(process_span));
	j->group = job_put(j, cfg.group, strlen(cfg.group));
	for (size_t i = 0; i < n_items; i++) {
		struct item *it = &items[i];
		struct span_rec *r;

		if (!it->recorded)
			continue;
		it->recorded = false;
		r = &j->recs[j->n++];
		memcpy(r->trace_id, it->trace_id, sizeof(r->trace_id));
		memcpy(r->span_id, it->span_id, sizeof(r->span_id));
		memcpy(r->parent_id, it->parent_id, sizeof(r->parent_id));
		r->has_parent = it->has_parent;
		r->partition = it->rkm->partition;
		r->offset = it->rkm->offset;
		/* Its topic's name, put once for the messages that follow from it. */
		if (topic == NULL || strcmp(topic, rd_kafka_topic_name(it->rkm->rkt)) != 0) {
			topic = rd_kafka_topic_name(it->rkm->rkt);
			topic_at = job_put(j, topic, strlen(topic));
		}
		r->topic = topic_at;
		/* Its start on the wall clock, from its age on the monotonic
		 * one: a step of the wall clock does not bend it. */
		r->start_ns = j->end_ns - (mono - it->joined_ns);
		r->key = it->rkm->key ? job_put(j, it->rkm->key, key_len(it->rkm)) : 0;
		r->cid = it->cid[0] ? job_put(j, it->cid, strlen(it->cid)) : 0;
		r->status = 0;
		if (not_written) {
			r->status = job_put(j, not_written, not_len);
		} else if (it->reason[0]) {
			r->status = job_put(j, dead, sizeof(dead) - 1);
			j->text_len--; /* the reason follows "dead-lettered: " */
			job_put(j, it->reason, strlen(it->reason));
		}
		r->state = 0;
		if (it->has_state) {
			struct trace_ctx parent;

			(void)msg_trace_context(it->rkm, &parent);
			r->state = job_put(j, parent.state, strlen(parent.state));
		}
	}
	if (trace_defer(make_spans, j, (int)n) != 0)
		free(j);
}

/* The log lines written until the next call carry the item's trace id:
 * its span's, or with tracing off, the one its headers carry. NULL
 * clears it. */
static void item_log_trace(const struct item *it)
{
	struct trace_ctx ctx;
	char trace_id[TRACE_ID_TEXT_SIZE];

	if (it == NULL) {
		log_set_trace(NULL);
		return;
	}
	if (it->traced)
		item_ctx(it, &ctx);
	else
		(void)msg_trace_context(it->rkm, &ctx); /* zeroed when none: no id */
	trace_id_text(&ctx, trace_id);
	log_set_trace(trace_id);
}

/* Starts the span of an attempt at writing rows[rows_written, n_rows). */
static struct trace_span *insert_trace_start(void)
{
	struct trace_ctx ctx;
	struct trace_span *span;

	if (!trace_on())
		return NULL;
	span = trace_start(insert_span, TRACE_CLIENT, NULL, &ctx);
	if (span == NULL)
		return NULL;
	trace_attr_str(span, "db.system", "postgresql");
	trace_attr_str(span, "db.operation.name", "INSERT");
	trace_attr_str(span, "db.collection.name", cfg.table ? cfg.table : SINK_TABLE);
	trace_attr_str(span, "db.namespace", db_target.name);
	trace_attr_str(span, "server.address", db_target.host);
	trace_attr_int(span, "server.port", db_target.port);
	trace_attr_int(span, "messaging.batch.message_count", (int64_t)(n_rows - rows_written));
	for (size_t i = 0; i < n_items; i++) {
		if (items[i].traced && items[i].row >= (long)rows_written) {
			item_ctx(&items[i], &ctx);
			trace_link(span, &ctx);
		}
	}
	return span;
}

static void batch_discard(void)
{
	/* Not written (batch_done ended the others' spans): their
	 * partitions read them again. */
	batch_trace_end("not written: read again");
	for (size_t i = 0; i < n_items; i++) {
		const int p = items[i].rkm->partition;
		if (p >= 0 && p < LAG_PARTITIONS_MAX)
			atomic_store(&lag_pending_ms[p], 0);
		rd_kafka_message_destroy(items[i].rkm);
	}
	n_items = n_rows = n_poison = rows_written = 0;
	batch_gen++;
}

/* A message that cannot be kept (no memory for it) is read again: its
 * partition is sought back to it, which also drops the later messages
 * already fetched, so no offset of the partition is stored past it. If
 * even that fails, the consumer takes no more messages and stops. */
static void batch_refuse(rd_kafka_message_t *rkm)
{
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
	rd_kafka_error_t *error;
	rd_kafka_resp_err_t err;

	rd_kafka_topic_partition_list_add(parts, rd_kafka_topic_name(rkm->rkt), rkm->partition)
	    ->offset = rkm->offset;
	error = kafka_seek_partitions(rk, parts, 5000);
	err = error ? rd_kafka_error_code(error) : parts->elems[0].err;
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		log_error("out of memory: %s[%" PRId32 "]@%" PRId64 " is read again",
		          rd_kafka_topic_name(rkm->rkt), rkm->partition, rkm->offset);
	} else {
		log_error("out of memory, and %s[%" PRId32 "]@%" PRId64 " cannot be read again (%s): "
		          "stopping", rd_kafka_topic_name(rkm->rkt), rkm->partition, rkm->offset,
		          rd_kafka_err2str(err));
		atomic_store(&failed, true);
	}
	rd_kafka_error_destroy(error);
	rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_message_destroy(rkm);
}

/* Makes room for one more item (and row): false when there is no memory. */
static bool batch_grow(void)
{
	size_t cap = cap_items ? cap_items * 2 : (size_t)cfg.batch_size;
	struct item *ni;
	struct sink_row *nr;

	if (n_items < cap_items)
		return true;
	ni = batch_realloc(items, cap * sizeof(*ni));
	nr = ni ? batch_realloc(rows, cap * sizeof(*nr)) : NULL;
	if (ni)
		items = ni;
	if (nr == NULL)
		return false;
	rows = nr;
	cap_items = cap;
	return true;
}

/* Takes ownership of rkm. Returns false when it could not be kept: its
 * partition is then read again from it (see batch_refuse). */
static bool batch_add(rd_kafka_message_t *rkm)
{
	struct item *it;
	struct msg_command m;
	struct ts_instant created;

	if (rkm->err || atomic_load(&failed)) {
		if (rkm->err && rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
			log_warn("kafka: %s", rd_kafka_message_errstr(rkm));
		rd_kafka_message_destroy(rkm);
		return true;
	}
	if (!batch_grow()) {
		batch_refuse(rkm);
		return false;
	}
	it = &items[n_items++];
	it->rkm = rkm;
	lag_polled(rkm);
	it->reason[0] = '\0';
	it->row = -1;
	it->dlq_state = DLQ_NOT_SENT;
	it->recorded = false;
	it->traced = false;
	const int rc = msg_decode_kafka(rkm, &m, &created, it->cid, it->reason, sizeof(it->reason));
	if (trace_on())
		item_trace_start(it);
	if (rc != 0) {
		n_poison++;
		return true;
	}
	/* In topic order, so the first message for an id is the one that
	 * lands; later ones conflict like any other duplicate. */
	struct sink_row *r = &rows[n_rows];
	it->row = (long)n_rows++;
	memcpy(r->id, m.command_id, UID_TEXT_SIZE);
	r->event_time = m.event_time;
	r->created_at = created;
	return true;
}

/* ---- dead letters ---- */

static void on_dlq_delivery(rd_kafka_t *rk_, const rd_kafka_message_t *rkm, void *opaque)
{
	struct dlq_token *tok = rkm->_private;

	(void)rk_;
	(void)opaque;
	if (tok->gen == batch_gen && tok->index < n_items) {
		items[tok->index].dlq_state = rkm->err ? DLQ_FAILED : DLQ_DELIVERED;
		if (rkm->err) {
			item_log_trace(&items[tok->index]);
			log_at(LOG_ERROR, items[tok->index].cid[0] ? items[tok->index].cid : NULL, NULL,
			       "dead-letter delivery failed: %s", rd_kafka_err2str(rkm->err));
			item_log_trace(NULL);
		}
	}
	free(tok);
}

static int dlq_send(size_t index)
{
	struct item *it = &items[index];
	rd_kafka_message_t *rkm = it->rkm;
	rd_kafka_headers_t *src = NULL, *hdrs;
	struct dlq_token *tok;
	rd_kafka_timestamp_type_t tstype;
	int64_t ts = rd_kafka_message_timestamp(rkm, &tstype);
	char part[16], off[24];
	rd_kafka_resp_err_t err;

	if (rd_kafka_message_headers(rkm, &src) == RD_KAFKA_RESP_ERR_NO_ERROR)
		hdrs = rd_kafka_headers_copy(src);
	else
		hdrs = rd_kafka_headers_new(6);
	snprintf(part, sizeof(part), "%" PRId32, rkm->partition);
	snprintf(off, sizeof(off), "%" PRId64, rkm->offset);
	rd_kafka_header_add(hdrs, "dlq.reason", -1, it->reason, -1);
	rd_kafka_header_add(hdrs, "dlq.topic", -1, rd_kafka_topic_name(rkm->rkt), -1);
	rd_kafka_header_add(hdrs, "dlq.partition", -1, part, -1);
	rd_kafka_header_add(hdrs, "dlq.offset", -1, off, -1);
	rd_kafka_header_add(hdrs, "dlq.group", -1, cfg.group, -1);

	tok = malloc(sizeof(*tok));
	if (tok == NULL) {
		rd_kafka_headers_destroy(hdrs);
		return -1;
	}
	tok->gen = batch_gen;
	tok->index = index;
	err = rd_kafka_producev(dlq, RD_KAFKA_V_TOPIC(dlq_topic),
	                        RD_KAFKA_V_KEY(rkm->key, rkm->key_len),
	                        RD_KAFKA_V_VALUE(rkm->payload, rkm->len),
	                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	                        RD_KAFKA_V_TIMESTAMP(ts > 0 ? ts : 0),
	                        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(tok),
	                        RD_KAFKA_V_END);
	if (err) {
		log_error("dead-letter produce failed: %s", rd_kafka_err2str(err));
		rd_kafka_headers_destroy(hdrs);
		free(tok);
		return -1;
	}
	it->dlq_state = DLQ_IN_FLIGHT;
	return 0;
}

/* ---- one attempt at a batch ---- */

/* The writer of consumer_run: PostgreSQL, connecting first if need be. */
static int db_write(const struct sink_row *rows_, size_t n, long *inserted, char *errstr,
                    size_t errstr_size)
{
	if (!sink_connected() && sink_connect(&cfg.db, cfg.table, errstr, errstr_size) != 0)
		return -1;
	return sink_insert(rows_, n, inserted, errstr, errstr_size);
}

/* The WAL position of consumer_run: PostgreSQL. A new session is opened
 * only when no batch waits for the flush: a session lost with some waiting
 * is a failure, so that they are read again (unflushed_read_again). */
static size_t n_unflushed;
static int db_wal(uint64_t *insert, uint64_t *flushed, char *errstr, size_t errstr_size)
{
	if (!sink_connected() && n_unflushed > 0) {
		snprintf(errstr, errstr_size, "not connected");
		return -1;
	}
	if (!sink_connected() && sink_connect(&cfg.db, cfg.table, errstr, errstr_size) != 0)
		return -1;
	return sink_wal_position(insert, flushed, errstr, errstr_size);
}

/* Puts off into offsets for topic[partition]: the lowest so far with
 * lowest, else the highest. */
static void offset_merge(rd_kafka_topic_partition_list_t *offsets, const char *topic,
                         int32_t partition, int64_t off, bool lowest)
{
	rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(offsets, topic, partition);

	if (tp == NULL)
		rd_kafka_topic_partition_list_add(offsets, topic, partition)->offset = off;
	else if (lowest ? off < tp->offset : off > tp->offset)
		tp->offset = off;
}

/* Adds the batch's messages to offsets, per partition: the offset to store
 * (one past its last message), or with first, the offset of its first. */
static void batch_offsets(rd_kafka_topic_partition_list_t *offsets, bool first)
{
	for (size_t i = 0; i < n_items; i++) {
		const rd_kafka_message_t *rkm = items[i].rkm;
		offset_merge(offsets, rd_kafka_topic_name(rkm->rkt), rkm->partition,
		             first ? rkm->offset : rkm->offset + 1, first);
	}
}

static void store_offsets(rd_kafka_topic_partition_list_t *offsets)
{
	rd_kafka_resp_err_t err = rd_kafka_offsets_store(rk, offsets);

	if (err)
		/* The partition was revoked meanwhile: its new owner re-reads
		 * these messages, and the insert ignores them. */
		log_warn("offsets not stored: %s", rd_kafka_err2str(err));
}

/* ---- batches waiting for the WAL flush ----
 *
 * A batch is visible once committed, but durable only once PostgreSQL has
 * flushed its WAL past the commit (the walwriter does so within
 * wal_writer_delay, 3 times that at worst). Until then its offsets wait
 * here, oldest first; they are stored in that order as the flush passes
 * them, so a committed offset never passes a row a crash could lose. */

#define UNFLUSHED_MAX 256
#define XLOG_PAGE 8192          /* PostgreSQL's WAL page (XLOG_BLCKSZ) */
#define XLOG_SHORT_PAGE_HEADER 24

struct unflushed {
	uint64_t lsn; /* the WAL must be flushed up to here */
	rd_kafka_topic_partition_list_t *next;  /* the offsets to store */
	rd_kafka_topic_partition_list_t *first; /* where to read it again from */
};

static struct unflushed unflushed[UNFLUSHED_MAX];
static size_t unflushed_head; /* n_unflushed: above */
static double wal_checked_at; /* clock_mono_s() of the last look at the flush */

static struct unflushed *unflushed_at(size_t i)
{
	return &unflushed[(unflushed_head + i) % UNFLUSHED_MAX];
}

static void unflushed_pop(bool store)
{
	struct unflushed *u = unflushed_at(0);

	if (store)
		store_offsets(u->next);
	rd_kafka_topic_partition_list_destroy(u->next);
	rd_kafka_topic_partition_list_destroy(u->first);
	unflushed_head = (unflushed_head + 1) % UNFLUSHED_MAX;
	n_unflushed--;
	metrics_set(&m_unflushed, (int64_t)n_unflushed);
}

/* Forgets every waiting batch without storing its offsets. */
static void unflushed_drop(void)
{
	while (n_unflushed > 0)
		unflushed_pop(false);
}

/* Stores the offsets of the batches the flush has passed. */
static void unflushed_release(uint64_t flushed)
{
	while (n_unflushed > 0 && unflushed_at(0)->lsn <= flushed)
		unflushed_pop(true);
}

/* Looks at the flush (at most every CONSUMER_FLUSH_CHECK_MS unless now) and
 * stores what it passed. Returns 0, or -1 with errstr: the session is lost,
 * the waiting batches are not known to be durable. */
static int unflushed_check(bool now, char *errstr, size_t errstr_size)
{
	uint64_t insert, flushed;

	if (n_unflushed == 0 ||
	    (!now && clock_mono_s() - wal_checked_at < CONSUMER_FLUSH_CHECK_MS / 1000.0))
		return 0;
	wal_checked_at = clock_mono_s();
	if (wal_position(&insert, &flushed, errstr, errstr_size) != 0)
		return -1;
	unflushed_release(flushed);
	return 0;
}

/* Waits until every waiting batch is durable (and its offsets stored), for
 * CONSUMER_FLUSH_WAIT_MS at most. Returns 0, or -1 with errstr. */
static int unflushed_wait(char *errstr, size_t errstr_size)
{
	const double until = clock_mono_s() + CONSUMER_FLUSH_WAIT_MS / 1000.0;

	for (;;) {
		if (unflushed_check(true, errstr, errstr_size) != 0)
			return -1;
		if (n_unflushed == 0)
			return 0;
		if (clock_mono_s() >= until) {
			snprintf(errstr, errstr_size, "the WAL flush did not pass %zu batch(es) in %d ms",
			         n_unflushed, CONSUMER_FLUSH_WAIT_MS);
			return -1;
		}
		nanosleep(&(struct timespec){.tv_nsec = CONSUMER_FLUSH_POLL_MS * 1000000L}, NULL);
	}
}

/* The batch in hand is written, up to the WAL position insert: it waits
 * for the flush (flushed now) with its offsets. */
static void unflushed_push(uint64_t insert, uint64_t flushed)
{
	struct unflushed *u;

	/* Right after a page header the position is past the header, though
	 * nothing was written there yet: what was written ends at the page's
	 * start, and the flush may stop there. */
	if (insert % XLOG_PAGE == XLOG_SHORT_PAGE_HEADER)
		insert -= XLOG_SHORT_PAGE_HEADER;
	unflushed_release(flushed);
	if (n_unflushed == UNFLUSHED_MAX) {
		/* Full (small batches, a slow flush): the batch joins the newest
		 * one, whose offsets are then stored once the flush has passed
		 * both. Waiting here for the whole queue to drain stopped the
		 * loop for up to a WAL writer's round, or more on a busy host. */
		u = unflushed_at(n_unflushed - 1);
	} else {
		u = unflushed_at(n_unflushed++);
		u->next = rd_kafka_topic_partition_list_new(4);
		u->first = rd_kafka_topic_partition_list_new(4);
	}
	u->lsn = insert;
	batch_offsets(u->next, false);
	batch_offsets(u->first, true);
	unflushed_release(flushed);
	metrics_set(&m_unflushed, (int64_t)n_unflushed);
}

/* The database session is lost, and with it perhaps the waiting batches
 * and the rows of the batch in hand (committed but not flushed, if the
 * server crashed). Their partitions are sought back to the first of those
 * messages, which also drops the later ones already fetched; they are read
 * and written again (the insert ignores what is already there). */
static void unflushed_read_again(const char *why)
{
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(8);
	rd_kafka_error_t *error = NULL;
	const size_t batches = n_unflushed;

	for (size_t i = 0; i < n_unflushed; i++) {
		const rd_kafka_topic_partition_list_t *f = unflushed_at(i)->first;
		for (int k = 0; k < f->cnt; k++)
			offset_merge(parts, f->elems[k].topic, f->elems[k].partition, f->elems[k].offset,
			             true);
	}
	batch_offsets(parts, true); /* the batch in hand comes after them */
	unflushed_drop();
	batch_discard();
	if (parts->cnt > 0)
		error = kafka_seek_partitions(rk, parts, 5000);
	for (int k = 0; k < parts->cnt; k++) {
		const rd_kafka_topic_partition_t *tp = &parts->elems[k];
		const rd_kafka_resp_err_t err = error ? rd_kafka_error_code(error) : tp->err;

		if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
			log_warn("database session lost (%s) with %zu batch(es) not yet flushed: "
			         "%s[%" PRId32 "] is read again from %" PRId64,
			         why, batches, tp->topic, tp->partition, tp->offset);
		} else if (err != RD_KAFKA_RESP_ERR__STATE && err != RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION) {
			/* Later offsets of the partition could be stored past rows
			 * that may be lost: take nothing more. */
			log_error("database session lost (%s), and %s[%" PRId32 "]@%" PRId64
			          " cannot be read again (%s): stopping",
			          why, tp->topic, tp->partition, tp->offset, rd_kafka_err2str(err));
			atomic_store(&failed, true);
		}
	}
	rd_kafka_error_destroy(error);
	rd_kafka_topic_partition_list_destroy(parts);
}

/* The item whose row is rows[row]. */
static struct item *row_item(size_t row)
{
	for (size_t i = 0; i < n_items; i++)
		if (items[i].row == (long)row)
			return &items[i];
	return NULL; /* not reached: every row comes from an item */
}

/* Writes rows[lo, hi). A statement PostgreSQL refuses as data is split in
 * halves until each refused row stands alone; that row becomes poison, the
 * SQLSTATE and message its reason. Left to right, so rows_written follows
 * and a retry after an outage starts where this one stopped. Returns 0, or
 * -1 (an outage) with errstr. */
static int write_range(size_t lo, size_t hi, char *errstr, size_t errstr_size)
{
	long inserted = 0;
	size_t mid;
	int rc = write_rows(rows + lo, hi - lo, &inserted, errstr, errstr_size);

	if (rc == 0) {
		metrics_add(&m_inserted, inserted);
		metrics_add(&m_duplicate, (int64_t)(hi - lo) - inserted);
		rows_written = hi;
		return 0;
	}
	if (rc != SINK_REFUSED)
		return -1;
	if (hi - lo == 1) {
		struct item *it = row_item(lo);
		snprintf(it->reason, sizeof(it->reason), "refused by PostgreSQL: %s", errstr);
		n_poison++;
		rows_written = hi;
		return 0;
	}
	mid = lo + (hi - lo) / 2;
	if (write_range(lo, mid, errstr, errstr_size) != 0)
		return -1;
	return write_range(mid, hi, errstr, errstr_size);
}

/* The dead-letter topic exists: seen in the metadata (a cluster that does
 * not let this client create topics may have it made for it), or created. */
static int dlq_ensure(char *errstr, size_t errstr_size)
{
	if (!dlq_ready && kafka_check_topic(dlq, dlq_topic, 1000, errstr, errstr_size) != 0 &&
	    kafka_ensure_topic(dlq, dlq_topic, 1, cfg.replication, dlq_configs, 5000, errstr,
	                       errstr_size) != 0)
		return -1;
	dlq_ready = true;
	return 0;
}

enum flush_result { FLUSH_DONE = 0, FLUSH_DB_DOWN = -1, FLUSH_DLQ_DOWN = -2 };

/* Sends the batch's poison to the dead-letter topic (again, for those not
 * delivered before) and waits until every one is acknowledged. Returns
 * FLUSH_DONE, or FLUSH_DLQ_DOWN with errstr. */
static enum flush_result dead_letter_batch(char *errstr, size_t errstr_size)
{
	char why[256];

	if (n_poison == 0)
		return FLUSH_DONE;
	if (dlq_ensure(why, sizeof(why)) != 0) {
		snprintf(errstr, errstr_size, "%.200s", why);
		return FLUSH_DLQ_DOWN;
	}
	for (size_t i = 0; i < n_items; i++) {
		if (items[i].reason[0] &&
		    (items[i].dlq_state == DLQ_NOT_SENT || items[i].dlq_state == DLQ_FAILED) &&
		    dlq_send(i) != 0) {
			snprintf(errstr, errstr_size, "cannot queue a dead letter for %.100s", dlq_topic);
			return FLUSH_DLQ_DOWN;
		}
	}
	rd_kafka_flush(dlq, 10000);
	for (size_t i = 0; i < n_items; i++) {
		if (items[i].reason[0] && items[i].dlq_state != DLQ_DELIVERED) {
			snprintf(errstr, errstr_size, "dead letters not acknowledged by %.100s",
			         dlq_topic);
			return FLUSH_DLQ_DOWN;
		}
	}
	set_dlq_state(true, NULL);
	for (size_t i = 0; i < n_items; i++) {
		const struct item *it = &items[i];
		if (!it->reason[0])
			continue;
		item_log_trace(it);
		log_at(LOG_WARN, it->cid[0] ? it->cid : NULL, NULL,
		       "dead-lettered %s[%" PRId32 "]@%" PRId64 " to %s: %s",
		       rd_kafka_topic_name(it->rkm->rkt), it->rkm->partition, it->rkm->offset,
		       dlq_topic, it->reason);
		item_log_trace(NULL);
	}
	metrics_add(&m_dead, (int64_t)n_poison);
	return FLUSH_DONE;
}

/* The batch is written and dead-lettered: its offsets wait for the WAL
 * flush (then go to the auto-committer) and it is let go. */
static void batch_done(double started)
{
	metrics_add(&m_batches, 1);
	metrics_observe(&m_batch_size, (double)n_items);
	metrics_observe(&m_batch_duration, clock_mono_s() - started);
	log_debug("batch of %zu: %zu rows, %zu dead-lettered", n_items, n_rows, n_poison);
	for (size_t i = 0; log_min_level <= LOG_DEBUG && i < n_items; i++) {
		const struct item *it = &items[i];
		if (it->reason[0])
			continue;
		item_log_trace(it);
		log_at(LOG_DEBUG, it->cid[0] ? it->cid : NULL, rows[it->row].id,
		       "written from %s[%" PRId32 "]@%" PRId64, rd_kafka_topic_name(it->rkm->rkt),
		       it->rkm->partition, it->rkm->offset);
		item_log_trace(NULL);
	}
	batch_trace_end(NULL);
	batch_discard();
}

/* Writes the batch's rows, dead-letters its poison, stores its offsets.
 * Returns FLUSH_DONE, or what failed (with errstr), the batch kept. */
static enum flush_result batch_flush_once(char *errstr, size_t errstr_size)
{
	const double started = clock_mono_s();
	uint64_t insert, flushed;

	if (rows_written < n_rows) {
		struct trace_span *span = insert_trace_start();
		const int rc = write_range(rows_written, n_rows, errstr, errstr_size);

		if (rc != 0)
			trace_error(span, "%s", errstr);
		trace_end(span);
		if (rc != 0)
			return FLUSH_DB_DOWN;
	}
	set_db_state(true, NULL);
	if (dead_letter_batch(errstr, errstr_size) != FLUSH_DONE)
		return FLUSH_DLQ_DOWN;
	if (wal_position(&insert, &flushed, errstr, errstr_size) != 0)
		return FLUSH_DB_DOWN;
	unflushed_push(insert, flushed);
	wal_checked_at = clock_mono_s();
	batch_done(started);
	return FLUSH_DONE;
}

/* ---- partitions ---- */

static void pause_assignment(bool pause)
{
	rd_kafka_topic_partition_list_t *parts = NULL;

	if (rd_kafka_assignment(rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || parts == NULL)
		return;
	if (pause)
		rd_kafka_pause_partitions(rk, parts);
	else
		rd_kafka_resume_partitions(rk, parts);
	rd_kafka_topic_partition_list_destroy(parts);
}

static void on_rebalance(rd_kafka_t *rk_, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	char errstr[256];

	(void)opaque;
	metrics_add(&m_rebalances, 1);
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		log_info("assigned %d partition(s) of %s", parts->cnt, cfg.topic);
		rd_kafka_assign(rk_, parts);
		lag_assign(parts, true);
		atomic_store(&joined, true);
		return;
	}
	if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
		log_error("rebalance error: %s", rd_kafka_err2str(err));
	/* Finish the batch in hand if the database lets us; otherwise the next
	 * owner of these partitions reads the messages again. */
	if (n_items > 0 && batch_flush_once(errstr, sizeof(errstr)) != 0) {
		log_warn("partitions revoked with %zu unwritten message(s) (%s): "
		         "their next owner reads them again", n_items, errstr);
		batch_discard();
	}
	/* The commit below must not pass a row a crash of PostgreSQL could
	 * still lose. */
	if (n_unflushed > 0 && unflushed_wait(errstr, sizeof(errstr)) != 0) {
		log_warn("partitions revoked with %zu batch(es) not known to be flushed (%s): "
		         "their next owner reads them again", n_unflushed, errstr);
		unflushed_drop();
	}
	err = rd_kafka_commit(rk_, NULL, 0);
	if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
		log_warn("commit on revoke failed: %s", rd_kafka_err2str(err));
	log_info("revoked %d partition(s)", parts->cnt);
	rd_kafka_assign(rk_, NULL);
	lag_assign(parts, false);
}

/* ---- the loop ---- */

/* Polls for up to timeout_ms; a message goes into the batch. Returns false
 * when one could not be kept. */
static bool poll_into_batch(int timeout_ms)
{
	rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, timeout_ms);

	lag_watch();
	return rkm == NULL || batch_add(rkm);
}

/* Writes the batch, retrying with capped exponential backoff while the
 * database (or the dead-letter topic) is down. Polling goes on meanwhile,
 * with the assignment paused, so the group keeps this member. */
static void batch_flush(const atomic_bool *stop)
{
	char errstr[256];
	int backoff = 100;
	bool paused = false;

	enum flush_result res;

	while (n_items > 0 && (res = batch_flush_once(errstr, sizeof(errstr))) != FLUSH_DONE) {
		if (res == FLUSH_DB_DOWN) {
			set_db_state(false, errstr);
			/* The session went with the failure: what it committed
			 * and had not flushed is read again, then retried. */
			if (n_unflushed > 0 || rows_written > 0) {
				unflushed_read_again(errstr);
				break;
			}
		} else
			set_dlq_state(false, errstr);
		if (!paused) {
			pause_assignment(true);
			paused = true;
		}
		log_warn("writing a batch of %zu failed: %s%s; retrying in %d ms", n_items,
		         res == FLUSH_DLQ_DOWN ? "dead-letter topic: " : "", errstr, backoff);
		const double until = clock_mono_s() + backoff / 1000.0;
		while (!atomic_load(stop) && n_items > 0 && clock_mono_s() < until)
			poll_into_batch(50);
		if (atomic_load(stop)) {
			log_warn("stopping with %zu unwritten message(s): they are read again "
			         "at the next start", n_items);
			batch_discard();
			break;
		}
		backoff = backoff * 2 > cfg.retry_max_ms ? cfg.retry_max_ms : backoff * 2;
	}
	if (paused) {
		pause_assignment(false);
		if (n_items == 0)
			log_info("database writes succeed again");
	}
}

/* Connects to the database, retrying with backoff until it works or stop. */
static void connect_db(const atomic_bool *stop)
{
	char errstr[256];
	int backoff = 100;

	while (!atomic_load(stop) && sink_connect(&cfg.db, cfg.table, errstr, sizeof(errstr)) != 0) {
		set_db_state(false, errstr);
		log_warn("database: %s; retrying in %d ms", errstr, backoff);
		for (int waited = 0; waited < backoff && !atomic_load(stop); waited += 50)
			nanosleep(&(struct timespec){.tv_nsec = 50000000}, NULL);
		backoff = backoff * 2 > cfg.retry_max_ms ? cfg.retry_max_ms : backoff * 2;
	}
	if (sink_connected())
		set_db_state(true, NULL);
}

int consumer_subscribe(char *errstr, size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
	rd_kafka_resp_err_t err;

	rd_kafka_topic_partition_list_add(topics, cfg.topic, RD_KAFKA_PARTITION_UA);
	err = rd_kafka_subscribe(rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (err) {
		snprintf(errstr, errstr_size, "cannot subscribe to %s: %s", cfg.topic,
		         rd_kafka_err2str(err));
		return -1;
	}
	return 0;
}

/* librdkafka 2.0.2 stops fetching while the prefetch queue is over
 * queued.max.messages.kbytes (the bound is on the consumer's queue as a
 * whole: every partition's is forwarded to it), and looks again only when
 * the broker's thread wakes: with nothing in flight, up to a second later
 * (2.2 made this fetch.queue.backoff.ms). On a backlog the consumer empties
 * a full queue (8 MiB: about 100,000 of our messages) in under a second,
 * then waited out the rest of it: catch-up ran at about one queue a
 * second, whatever the database could take. Any request wakes the thread
 * of the broker it goes to, which then looks at its partitions again: so
 * the partitions' leaders are asked for their latest offsets (ListOffsets,
 * one small request per leader, the answer not waited for) after every full
 * batch (a backlog: the queue may be over its bound), and after any other
 * at most every CONSUMER_FETCH_NUDGE_MS (a queue smaller than a batch). */
static double nudged_at; /* clock_mono_s() */
static long fetch_nudges;

static void fetch_nudge(bool full)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	const double now = clock_mono_s();

	if (!full && now - nudged_at < CONSUMER_FETCH_NUDGE_MS / 1000.0)
		return;
	nudged_at = now;
	if (rd_kafka_assignment(rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || parts == NULL)
		return;
	if (parts->cnt > 0) {
		for (int i = 0; i < parts->cnt; i++)
			parts->elems[i].offset = RD_KAFKA_OFFSET_END; /* ListOffsets: the latest */
		/* Sent at once; not waiting, it returns _TIMED_OUT. */
		(void)rd_kafka_offsets_for_times(rk, parts, 0);
		fetch_nudges++;
	}
	rd_kafka_topic_partition_list_destroy(parts);
}

long consumer_fetch_nudges(void)
{
	return fetch_nudges;
}

bool consumer_step(const atomic_bool *stop, int timeout_ms)
{
	char errstr[256];

	/* Batches waiting for the flush are looked after while idle too. */
	if (n_unflushed > 0 && timeout_ms > CONSUMER_FLUSH_CHECK_MS)
		timeout_ms = CONSUMER_FLUSH_CHECK_MS;
	/* Take what is ready now, without waiting: large batches under
	 * load, no added latency when idle. Out of memory: write what is in
	 * hand first. */
	if (poll_into_batch(timeout_ms)) {
		while (n_items > 0 && n_items < (size_t)cfg.batch_size) {
			rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 0);
			if (rkm == NULL || !batch_add(rkm))
				break;
		}
	}
	if (n_items == 0) {
		if (unflushed_check(false, errstr, sizeof(errstr)) != 0) {
			set_db_state(false, errstr);
			unflushed_read_again(errstr);
		}
		return false;
	}
	/* The next batch is fetched while this one is written. */
	fetch_nudge(n_items >= (size_t)cfg.batch_size);
	batch_flush(stop);
	return true;
}

int consumer_run(const atomic_bool *stop)
{
	char errstr[256];
	rd_kafka_resp_err_t err;
	double last_db_check = clock_mono_s();

	connect_db(stop);
	if (atomic_load(stop))
		return 0;
	log_info("database ready, schema applied");

	if (consumer_subscribe(errstr, sizeof(errstr)) != 0) {
		log_error("%s", errstr);
		return -1;
	}
	log_info("subscribed to %s as group %s", cfg.topic, cfg.group);

	while (!atomic_load(stop) && !atomic_load(&failed)) {
		if (consumer_step(stop, 100)) {
			last_db_check = clock_mono_s();
		} else if (clock_mono_s() - last_db_check > 2) {
			/* Idle: make sure /ready tells the truth about the database. */
			bool lost = sink_ping(errstr, sizeof(errstr)) != 0;
			if (lost && n_unflushed > 0)
				unflushed_read_again(errstr);
			if (lost && sink_connect(&cfg.db, cfg.table, errstr, sizeof(errstr)) != 0)
				set_db_state(false, errstr);
			else
				set_db_state(true, NULL);
			last_db_check = clock_mono_s();
		}
		if (cfg.until != NULL && cfg.until(cfg.until_arg))
			break;
	}
	/* The last batch is written (above), and flushed, before offsets are
	 * committed; what is not known to be flushed is read again. */
	if (n_unflushed > 0 && unflushed_wait(errstr, sizeof(errstr)) != 0) {
		log_warn("stopping with %zu batch(es) not known to be flushed (%s): "
		         "they are read again at the next start", n_unflushed, errstr);
		unflushed_drop();
	}
	err = rd_kafka_commit(rk, NULL, 0);
	if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
		log_warn("final commit failed: %s", rd_kafka_err2str(err));
	return atomic_load(&failed) ? -1 : 0;
}

void consumer_set_seams(consumer_write_fn write, void *(*alloc)(void *, size_t))
{
	write_rows = write ? write : db_write;
	batch_realloc = alloc ? alloc : realloc;
}

void consumer_set_wal_seam(consumer_wal_fn wal)
{
	wal_position = wal ? wal : db_wal;
}

rd_kafka_t *consumer_handle(void)
{
	return rk;
}

int consumer_kafka_property(const char *name, char *buf, size_t size)
{
	size_t n = size;

	return rk != NULL && rd_kafka_conf_get(rd_kafka_conf(rk), name, buf, &n) == RD_KAFKA_CONF_OK
	           ? 0
	           : -1;
}

static void consumer_prepare(rd_kafka_conf_t *conf)
{
	rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
	rd_kafka_conf_set_stats_cb(conf, on_stats);
}

/* The group member, configured with ours, then KAFKA_PROPERTIES, then what
 * at-least-once needs. NULL with errstr. */
static rd_kafka_t *consumer_new(char *errstr, size_t errstr_size)
{
	char prefetch_kb[16];
	const char *const defaults[] = {
	    "group.id", cfg.group,
	    "client.id", "consumer-service",
	    "auto.offset.reset", "earliest",
	    "session.timeout.ms", "10000",
	    "heartbeat.interval.ms", "1000",
	    "enable.partition.eof", "false",
	    "statistics.interval.ms", "5000",
	    /* Ask for what arrived in the last 5 ms rather than for every new
	     * message: a few hundred fetches a second at most instead of one
	     * per produce request, which on a busy broker is what made the
	     * accept-to-readable tail (make bench, 5,000/s: p99 40-200 ms -> 13-24
	     * ms, p50 2 -> 6 ms). Idle, it costs the broker 200 empty fetches
	     * a second; KAFKA_PROPERTIES=fetch.wait.max.ms=500 undoes it. */
	    "fetch.wait.max.ms", "5",
	    "fetch.min.bytes", "100000",
	    /* The prefetch is bounded by CONSUMER_PREFETCH_KB alone, not also
	     * by a count of messages (queued.min.messages, 100,000 by default:
	     * about 75 MiB resident with our messages). librdkafka 2.0.2 stops
	     * fetching while its queue is over the bound and looks again only
	     * when woken: fetch_nudge wakes it. */
	    "queued.min.messages", "10000000",
	    "queued.max.messages.kbytes", prefetch_kb,
	    NULL,
	};
	/* Not negotiable: an offset is stored only after its row is written. */
	static const char *const fixed[] = {"enable.auto.offset.store", "false",
	                                    "enable.auto.commit", "true", NULL};
	rd_kafka_t *c;

	/* 0 (a config that does not say): librdkafka's own default. */
	snprintf(prefetch_kb, sizeof(prefetch_kb), "%d", cfg.prefetch_kb > 0 ? cfg.prefetch_kb : 65536);
	c = kafka_new(RD_KAFKA_CONSUMER, cfg.brokers, defaults, cfg.properties, fixed,
	              consumer_prepare, errstr, errstr_size);

	if (c != NULL)
		rd_kafka_poll_set_consumer(c);
	return c;
}

static void dlq_prepare(rd_kafka_conf_t *conf)
{
	rd_kafka_conf_set_dr_msg_cb(conf, on_dlq_delivery);
}

/* The producer of dead letters. NULL with errstr. KAFKA_PROPERTIES too: a
 * cluster that wants TLS or SASL wants them from every client. Consumer-only
 * properties among them cost one librdkafka warning each ("... will be
 * ignored by this producer instance"), nothing more (librdkafka 2.0.2). A
 * dead letter is stored on every replica before its message's offset is. */
static rd_kafka_t *dlq_producer_new(char *errstr, size_t errstr_size)
{
	static const char *const defaults[] = {"client.id", "consumer-service-dlq", NULL};
	static const char *const fixed[] = {"acks", "all", "message.max.bytes", "10485760",
	                                    "message.timeout.ms", "10000", NULL};

	return kafka_new(RD_KAFKA_PRODUCER, cfg.brokers, defaults, cfg.properties, fixed,
	                 dlq_prepare, errstr, errstr_size);
}

static void metrics_setup(void)
{
	metrics_register(&m_inserted);
	metrics_register(&m_duplicate);
	metrics_register(&m_dead);
	metrics_register(&m_batches);
	metrics_register(&m_batch_duration);
	metrics_register(&m_batch_size);
	metrics_register(&m_db_errors);
	metrics_register(&m_db_up);
	metrics_register(&m_unflushed);
	metrics_register(&m_rebalances);
	metrics_register(&m_lag_s_max);
	metrics_add_collector(lag_collect);
}

int consumer_setup(const struct consumer_config *c, char *errstr, size_t errstr_size)
{
	char why[512];

	cfg = *c;
	sink_set_durable_standbys(cfg.durable_standbys);
	snprintf(dlq_topic, sizeof(dlq_topic), "%s.dlq", cfg.topic);
	snprintf(process_span, sizeof(process_span), "%s process", cfg.topic);
	snprintf(insert_span, sizeof(insert_span), "INSERT %s", cfg.table ? cfg.table : SINK_TABLE);
	db_target_of(&cfg.db, &db_target);
	rk = consumer_new(errstr, errstr_size);
	if (rk == NULL)
		return -1;
	dlq = dlq_producer_new(errstr, errstr_size);
	if (dlq == NULL) {
		rd_kafka_destroy(rk);
		rk = NULL;
		return -1;
	}
	metrics_setup();

	/* The dead-letter topic must exist before the first poison message:
	 * the broker does not create topics on its own. Retried later if the
	 * broker is not there yet. */
	if (dlq_ensure(why, sizeof(why)) != 0)
		log_warn("cannot make sure %s exists yet (retried at the first dead letter): %s",
		         dlq_topic, why);
	return 0;
}

static _Atomic double topic_seen_at; /* clock_mono_s() of the last successful check */

/* consumer_down without the lag: what is down, or NULL. */
static const char *dependency_down(char *buf, size_t size)
{
	char errstr[256];

	if (!atomic_load(&db_up)) {
		pthread_mutex_lock(&state_lock);
		snprintf(buf, size, "postgresql: %s", db_error);
		pthread_mutex_unlock(&state_lock);
		return buf;
	}
	if (!atomic_load(&dlq_up)) {
		pthread_mutex_lock(&state_lock);
		snprintf(buf, size, "dlq: %s", dlq_error);
		pthread_mutex_unlock(&state_lock);
		return buf;
	}
	if (!atomic_load(&joined)) {
		snprintf(buf, size, "kafka: not yet a member of group %s", cfg.group);
		return buf;
	}
	/* A metadata request waits behind the fetches on the broker connection
	 * (up to fetch.wait.max.ms, more when busy): a topic seen within the
	 * last second is taken as still there, so that probes answer at once. */
	if (clock_mono_s() - atomic_load(&topic_seen_at) < 1.0)
		return NULL;
	if (kafka_check_topic(rk, cfg.topic, 1000, errstr, sizeof(errstr)) != 0) {
		snprintf(buf, size, "kafka: %s", errstr);
		return buf;
	}
	atomic_store(&topic_seen_at, clock_mono_s());
	return NULL;
}

/* The lag over READY_MAX_LAG_S is said after what is down, if anything
 * is: a database outage is why the lag grows, and the one to fix. */
const char *consumer_down(char *buf, size_t size)
{
	const char *down = dependency_down(buf, size);
	const size_t len = down != NULL ? strlen(buf) : 0;
	double lag;

	if (cfg.ready_max_lag_s <= 0 || (lag = consumer_lag_seconds_max()) <= cfg.ready_max_lag_s)
		return down;
	snprintf(buf + len, size - len, "%slag: consumer_lag_seconds_max %.1f exceeds "
	         "READY_MAX_LAG_S %d", len > 0 ? "; " : "", lag, cfg.ready_max_lag_s);
	return buf;
}

void consumer_shutdown(void)
{
	batch_discard(); /* messages go before their consumer */
	if (rk != NULL) {
		rd_kafka_consumer_close(rk); /* the revocation waits for the flush */
		unflushed_drop();
		rd_kafka_destroy(rk);
		rk = NULL;
	}
	if (dlq != NULL) {
		if (rd_kafka_flush(dlq, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR)
			log_error("%d dead letter(s) not delivered at shutdown", rd_kafka_outq_len(dlq));
		rd_kafka_destroy(dlq);
		dlq = NULL;
	}
	free(items);
	free(rows);
	sink_shutdown();
}
