/* publisher: the Kafka producer of the command service. */
#define _GNU_SOURCE /* sem_clockwait */
#include "publisher.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"

/* One request waiting for its delivery report. Shared by the request thread
 * and the delivery callback; whoever drops the last reference frees it, so a
 * request that gave up never leaves the callback a dangling pointer. err is
 * written before done is set (release) and read after done is seen; each
 * setting of done or kicked posts sem, on which a follower sleeps. No
 * mutex: with one, the follower that the callback woke blocked again on
 * the mutex the callback still held, and each report cost two wake-ups
 * (wrk at 64 connections: 2.5 context switches a POST against 2.3).
 * turn_mu guards next and prev, which link a waiting follower. */
struct waiter {
	sem_t sem;
	atomic_bool done;
	atomic_bool kicked; /* handed the turn to poll */
	rd_kafka_resp_err_t err;
	atomic_int refs;
	struct waiter *next, *prev;
	/* The message's PRODUCER span (NULL: not recorded), ended by the
	 * delivery report, or by pub_send when no report will come. */
	struct trace_span *span;
};

static struct pub_config cfg;
static char span_name[300]; /* "<topic> publish" */
static rd_kafka_t *rk;
static pthread_rwlock_t rk_lock = PTHREAD_RWLOCK_INITIALIZER; /* guards rk */
static pthread_t poll_thread;
static atomic_bool running, topic_ready, fatal;
static atomic_int waiters_alive;

/* The outcome of the latest publishes, for pub_down: the metadata can name a
 * leader for every partition while no write can succeed (two of three
 * brokers down: min.insync.replicas is not met, and without a controller
 * quorum the ISR never even shrinks), so /ready also says when the latest
 * publish failed and none has succeeded since: the outcomes are numbered
 * in the order they come (two can share a millisecond), and the latest
 * failure's time is kept (clock_mono_ms()). */
static atomic_llong outcomes, last_ok, last_failed, last_failed_ms;
static char last_failure[128];
static pthread_mutex_t last_failure_mu = PTHREAD_MUTEX_INITIALIZER;

static void succeeded(void)
{
	atomic_store(&last_ok, atomic_fetch_add(&outcomes, 1) + 1);
}

static void failed(const char *why)
{
	pthread_mutex_lock(&last_failure_mu);
	snprintf(last_failure, sizeof(last_failure), "%s", why);
	atomic_store(&last_failed_ms, clock_mono_ms());
	atomic_store(&last_failed, atomic_fetch_add(&outcomes, 1) + 1);
	pthread_mutex_unlock(&last_failure_mu);
}

/* Who serves the delivery reports: the requests waiting for them take turns
 * in rd_kafka_poll (leader/follower), so that the report of a lone request
 * is served by the thread that waits for it: no hand-off from another
 * thread (wrk, 1 connection, linger.ms 0, back-to-back 5 s runs on a shared
 * machine: p50 0.14-0.29 ms in 4 of 5 rounds, against 0.24-0.34 ms with the
 * poll thread handing each report over). The others wait
 * on their own condition variable (followers) until the one polling serves
 * their report or hands the turn on as it leaves. The poll thread polls
 * only while no request waits (reports of requests that gave up, errors);
 * a request that finds it polling makes it yield the turn. */
static pthread_mutex_t turn_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t turn_cv; /* the poll thread waits here for the turn */
static bool polling;           /* a thread is in rd_kafka_poll */
static bool thread_polling;    /* it is the poll thread */
static bool yield_asked;       /* the poll thread was asked to yield */
static int waiting;            /* requests in report_wait */
static bool turn_idle;         /* no request waited since the poll thread last looked */
static struct waiter followers = {.next = &followers, .prev = &followers};

static struct metrics_series m_published = METRICS_COUNTER_INIT(
    "publish_total", "Messages published, by outcome.", "outcome=\"acked\"");
static struct metrics_series m_unavailable = METRICS_COUNTER_INIT(
    "publish_total", "Messages published, by outcome.", "outcome=\"unavailable\"");
static struct metrics_series m_failed = METRICS_COUNTER_INIT(
    "publish_total", "Messages published, by outcome.", "outcome=\"failed\"");
static struct metrics_series m_duration = METRICS_HISTOGRAM_INIT(
    "publish_duration_seconds", "Time from produce to delivery report.", "");

static void waiter_unref(struct waiter *w)
{
	if (atomic_fetch_sub(&w->refs, 1) == 1) {
		sem_destroy(&w->sem);
		free(w);
		atomic_fetch_sub(&waiters_alive, 1);
	}
}

static void on_delivery(rd_kafka_t *rk_, const rd_kafka_message_t *rkm, void *opaque)
{
	struct waiter *w = rkm->_private;

	(void)rk_;
	(void)opaque;
	if (w == NULL)
		return;
	/* Only this report ends a queued message's span: whether its request
	 * still waits or gave up. */
	if (w->span != NULL) {
		if (rkm->err) {
			trace_error(w->span, "%s", rd_kafka_err2str(rkm->err));
		} else {
			char part[16];
			snprintf(part, sizeof(part), "%" PRId32, rkm->partition);
			trace_attr_str(w->span, "messaging.destination.partition.id", part);
			trace_attr_int(w->span, "messaging.kafka.offset", rkm->offset);
		}
		trace_end(w->span);
		w->span = NULL;
	}
	w->err = rkm->err;
	atomic_store_explicit(&w->done, true, memory_order_release);
	sem_post(&w->sem);
	waiter_unref(w);
}

static void on_error(rd_kafka_t *rk_, int err, const char *reason, void *opaque)
{
	(void)opaque;
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		char why[512];
		rd_kafka_fatal_error(rk_, why, sizeof(why));
		log_error("kafka producer fatal error: %s; the producer is recreated", why);
		atomic_store(&fatal, true);
		return;
	}
	/* Broker down and the like: librdkafka retries by itself. */
	log_warn("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void producer_prepare(rd_kafka_conf_t *conf)
{
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_error_cb(conf, on_error);
}

static rd_kafka_t *producer_new(char *errstr, size_t errstr_size)
{
	char timeout[32];
	/* Our defaults, then KAFKA_PROPERTIES, then what is not negotiable:
	 * acks=all from an idempotent producer, and librdkafka giving up on a
	 * message when the request waiting for it does. linger.ms 0: a lone
	 * request is sent at once (linger.ms=1 made p50 at 1 connection
	 * ~1.7 ms instead of ~0.3), and requests arriving while produce
	 * requests are in flight (up to 5) still share the next batch. Nagle
	 * stays on (librdkafka's default): socket.nagle.disable=true cost
	 * ~20 % of req/s at 64 and 256 connections in back-to-back wrk runs
	 * and gained nothing measurable at 1 and 8. */
	static const char *const defaults[] = {"linger.ms", "0", "client.id", "command-service",
	                                       NULL};
	const char *const fixed[] = {"message.timeout.ms", timeout, "enable.idempotence", "true",
	                             "acks", "all", NULL};

	snprintf(timeout, sizeof(timeout), "%d", cfg.timeout_ms);
	return kafka_new(RD_KAFKA_PRODUCER, cfg.brokers, defaults, cfg.properties, fixed,
	                 producer_prepare, errstr, errstr_size);
}

/* Topic creation, owned by the poll thread. The Admin request is sent
 * without waiting, and its answer is picked up from topic_q on each turn of
 * the poll loop: waiting for it (up to PUBLISH_TIMEOUT_MS while the broker
 * does not answer) would hold back the delivery reports the loop serves,
 * and requests whose messages were acknowledged meanwhile would be
 * answered late, or 503. */
static rd_kafka_queue_t *topic_q; /* an attempt is under way */
static double next_topic_try;     /* clock_mono_s() seconds */

static void topic_attempt_end(bool ok, const char *why)
{
	rd_kafka_queue_destroy(topic_q);
	topic_q = NULL;
	next_topic_try = clock_mono_s() + 2;
	if (ok)
		atomic_store(&topic_ready, true);
	else
		log_warn("cannot make sure the topic exists yet (will retry): %s", why);
}

/* Starts an attempt when none is under way and it is time; picks up the
 * answer of the one under way. Called with rk_lock held for reading. */
static void topic_step(void)
{
	char errstr[512];

	if (atomic_load(&topic_ready))
		return;
	if (topic_q == NULL) {
		if (clock_mono_s() < next_topic_try)
			return;
		topic_q = rd_kafka_queue_new(rk);
		if (kafka_create_topic(rk, topic_q, cfg.topic, cfg.partitions, cfg.replication, NULL,
		                       cfg.timeout_ms, errstr, sizeof(errstr)) != 0)
			topic_attempt_end(false, errstr);
		return;
	}
	rd_kafka_event_t *ev = rd_kafka_queue_poll(topic_q, 0);
	if (ev == NULL)
		return;
	const int rc = kafka_create_topic_result(ev, cfg.topic, errstr, sizeof(errstr));
	rd_kafka_event_destroy(ev);
	topic_attempt_end(rc == 0, errstr);
}

/* Replaces a producer that hit a fatal error. Messages still queued in the
 * old one are purged: their requests get 503 and may be retried. */
static void producer_recreate(void)
{
	char errstr[512];
	rd_kafka_t *fresh = producer_new(errstr, sizeof(errstr));

	if (fresh == NULL) {
		log_error("cannot recreate the kafka producer: %s", errstr);
		return;
	}
	pthread_rwlock_wrlock(&rk_lock);
	rd_kafka_t *old = rk;
	rk = fresh;
	atomic_store(&fatal, false);
	pthread_rwlock_unlock(&rk_lock);
	if (topic_q != NULL) /* its answer would come from the old producer */
		topic_attempt_end(false, "producer recreated");
	rd_kafka_purge(old, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	/* Serves the purged messages' reports: each frees its waiter. */
	(void)rd_kafka_flush(old, 1000);
	rd_kafka_destroy(old);
}

/* Hands the turn to poll on as its holder leaves it, to the first
 * follower (one whose report came meanwhile passes it on as it leaves).
 * With none, the turn stays free: the next request takes it at once, and
 * the poll thread within its wait (it is not woken: that would cost a
 * wake-up, and a yield, for every request at 1 connection). Called with
 * turn_mu held; takes the follower's mu (the one order of the two). */
static void turn_pass(void)
{
	struct waiter *f = followers.next;

	if (f == &followers)
		return;
	atomic_store(&f->kicked, true);
	sem_post(&f->sem);
}

static bool waiter_done(struct waiter *w)
{
	return atomic_load_explicit(&w->done, memory_order_acquire);
}

/* A follower's wait, for its report, the turn or until. A kick that comes
 * after the follower stopped waiting is dropped with the flag: it then
 * looks at the turn itself (report_wait's loop), and a done one passes the
 * turn on as it leaves. A post left over (not waited for) only makes a
 * later wait look at the flags once more. */
static void follow(struct waiter *w, const struct timespec *until)
{
	while (!waiter_done(w) && !atomic_load(&w->kicked)) {
		if (sem_clockwait(&w->sem, CLOCK_MONOTONIC, until) != 0 && errno != EINTR)
			break; /* until passed */
	}
	atomic_store(&w->kicked, false);
}

/* Serves delivery reports while no request waits for one, creates the
 * topic without waiting for the answer (see topic_step), and replaces a
 * fatally failed producer. */
static void *poll_main(void *arg)
{
	(void)arg;
	while (atomic_load(&running)) {
		const int wait_ms = atomic_load(&topic_ready) ? 100 : 20;
		if (atomic_load(&fatal))
			producer_recreate();
		pthread_rwlock_rdlock(&rk_lock);
		topic_step();
		pthread_rwlock_unlock(&rk_lock);
		pthread_mutex_lock(&turn_mu);
		if (polling || waiting > 0 || !turn_idle) {
			struct timespec until = clock_deadline(wait_ms);
			turn_idle = true; /* unless a request takes the turn meanwhile */
			pthread_cond_timedwait(&turn_cv, &turn_mu, &until);
			pthread_mutex_unlock(&turn_mu);
			continue;
		}
		polling = thread_polling = true;
		pthread_mutex_unlock(&turn_mu);
		pthread_rwlock_rdlock(&rk_lock);
		rd_kafka_poll(rk, wait_ms);
		pthread_rwlock_unlock(&rk_lock);
		pthread_mutex_lock(&turn_mu);
		polling = thread_polling = yield_asked = false;
		if (waiting > 0)
			turn_pass();
		pthread_mutex_unlock(&turn_mu);
	}
	return NULL;
}

/* Waits until w's report came or until: polls for it when no one else
 * does, else follows. Returns whether it came; its err in *err. */
static bool report_wait(struct waiter *w, const struct timespec *until,
                        rd_kafka_resp_err_t *err)
{
	bool done;

	pthread_mutex_lock(&turn_mu);
	waiting++;
	turn_idle = false;
	while (!waiter_done(w) && !clock_passed(until)) {
		if (!polling) {
			polling = true;
			pthread_mutex_unlock(&turn_mu);
			const int left = clock_ms_left(until);
			pthread_rwlock_rdlock(&rk_lock);
			rd_kafka_poll(rk, left < 100 ? left : 100);
			pthread_rwlock_unlock(&rk_lock);
			pthread_mutex_lock(&turn_mu);
			polling = false;
			continue;
		}
		if (thread_polling && !yield_asked) {
			/* The poll thread's turn would cost this request a
			 * hand-off: it leaves rd_kafka_poll and passes the turn. */
			yield_asked = true;
			pthread_mutex_unlock(&turn_mu);
			pthread_rwlock_rdlock(&rk_lock);
			rd_kafka_yield(rk);
			pthread_rwlock_unlock(&rk_lock);
			pthread_mutex_lock(&turn_mu);
			continue;
		}
		/* Follow: wait, without turn_mu (which the one polling would
		 * otherwise take turns on with every follower it wakes), for the
		 * report or the turn. */
		w->next = &followers;
		w->prev = followers.prev;
		followers.prev->next = w;
		followers.prev = w;
		pthread_mutex_unlock(&turn_mu);
		follow(w, until);
		pthread_mutex_lock(&turn_mu);
		w->prev->next = w->next;
		w->next->prev = w->prev;
	}
	waiting--;
	if (!polling)
		turn_pass();
	pthread_mutex_unlock(&turn_mu);
	done = waiter_done(w);
	if (done)
		*err = w->err;
	return done;
}

int pub_setup(const struct pub_config *c, char *errstr, size_t errstr_size)
{
	cfg = *c;
	snprintf(span_name, sizeof(span_name), "%s publish", cfg.topic);
	if (cfg.report_wait_ms <= 0)
		cfg.report_wait_ms = cfg.timeout_ms + 1000;
	rk = producer_new(errstr, errstr_size);
	if (rk == NULL)
		return -1;
	metrics_register(&m_published);
	metrics_register(&m_unavailable);
	metrics_register(&m_failed);
	metrics_register(&m_duration);
	if (clock_cond_init(&turn_cv) != 0) {
		snprintf(errstr, errstr_size, "cannot create a condition variable");
		rd_kafka_destroy(rk);
		rk = NULL;
		return -1;
	}
	atomic_store(&running, true);
	if (pthread_create(&poll_thread, NULL, poll_main, NULL) != 0) {
		snprintf(errstr, errstr_size, "cannot start the poll thread");
		pthread_cond_destroy(&turn_cv);
		rd_kafka_destroy(rk);
		rk = NULL;
		return -1;
	}
	return 0;
}

/* Starts w's PRODUCER span (tracing on) and writes the context its
 * message carries into traceparent (else ""). */
static void span_start(struct waiter *w, const char *id, const char *cid,
                       const struct trace_ctx *parent, struct trace_ctx *ctx,
                       char traceparent[TRACE_PARENT_SIZE])
{
	traceparent[0] = '\0';
	ctx->state[0] = '\0';
	if (!trace_on())
		return;
	w->span = trace_start(span_name, TRACE_PRODUCER, parent, ctx);
	/* Not sampled, the context still travels (its flag says so). */
	if (trace_ctx_valid(ctx))
		trace_format(ctx, traceparent);
	trace_attr_str(w->span, "messaging.system", "kafka");
	trace_attr_str(w->span, "messaging.destination.name", cfg.topic);
	trace_attr_str(w->span, "messaging.operation.type", "publish");
	trace_attr_str(w->span, "messaging.kafka.message.key", id);
	trace_attr_str(w->span, "correlation_id", cid);
}

static enum pub_result produce(struct waiter *w, const char *id, const char *value,
                               size_t len, const char *cid, const struct trace_ctx *parent,
                               int64_t ts_ms, char *errstr, size_t errstr_size)
{
	const double deadline = clock_mono_s() + cfg.timeout_ms / 1000.0;
	struct trace_ctx ctx;
	char traceparent[TRACE_PARENT_SIZE];
	rd_kafka_resp_err_t err;

	span_start(w, id, cid, parent, &ctx, traceparent);
	const struct msg_record rec = {.topic = cfg.topic, .key = id, .value = value,
	                               .value_len = len, .cid = cid, .ts_ms = ts_ms,
	                               .traceparent = traceparent, .tracestate = ctx.state,
	                               .opaque = w};

	for (;;) {
		pthread_rwlock_rdlock(&rk_lock);
		err = msg_produce(rk, &rec);
		pthread_rwlock_unlock(&rk_lock);
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || clock_mono_s() >= deadline)
			break;
		/* The local queue is full: wait for deliveries to make room. */
		nanosleep(&(struct timespec){.tv_nsec = 5000000}, NULL);
	}
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
		return PUB_OK;
	snprintf(errstr, errstr_size, "%s", rd_kafka_err2str(err));
	return err == RD_KAFKA_RESP_ERR__QUEUE_FULL || err == RD_KAFKA_RESP_ERR__FATAL
	           ? PUB_UNAVAILABLE
	           : PUB_FAILED;
}

enum pub_result pub_send(const char *id, const char *value, size_t len,
                         const char *cid, const struct trace_ctx *parent, int64_t ts_ms,
                         char *errstr, size_t errstr_size)
{
	struct waiter *w = calloc(1, sizeof(*w));
	const double started = clock_mono_s();
	enum pub_result res;
	struct timespec until;

	if (w == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		return PUB_FAILED;
	}
	sem_init(&w->sem, 0, 0);
	atomic_store(&w->refs, 2); /* this thread and the delivery report */
	atomic_fetch_add(&waiters_alive, 1);

	res = produce(w, id, value, len, cid, parent, ts_ms, errstr, errstr_size);
	if (res != PUB_OK) {
		trace_error(w->span, "not queued: %s", errstr);
		trace_end(w->span); /* no report will come */
		atomic_store(&w->refs, 1);
		waiter_unref(w);
		metrics_add(res == PUB_UNAVAILABLE ? &m_unavailable : &m_failed, 1);
		if (res == PUB_UNAVAILABLE)
			failed(errstr);
		return res;
	}

	until = clock_deadline(cfg.report_wait_ms);
	rd_kafka_resp_err_t err;
	bool done = report_wait(w, &until, &err);
	waiter_unref(w);

	if (!done) {
		snprintf(errstr, errstr_size, "no delivery report within %d ms", cfg.report_wait_ms);
		metrics_add(&m_unavailable, 1);
		failed(errstr);
		return PUB_UNAVAILABLE;
	}
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(errstr, errstr_size, "%s", rd_kafka_err2str(err));
		metrics_add(&m_unavailable, 1);
		failed(errstr);
		return PUB_UNAVAILABLE;
	}
	metrics_observe(&m_duration, clock_mono_s() - started);
	metrics_add(&m_published, 1);
	succeeded();
	return PUB_OK;
}

const char *pub_down(char *buf, size_t size)
{
	char errstr[256];

	/* A failure newer than the latest success, and recent: without
	 * traffic (a load balancer that took this instance out) it expires
	 * after PUB_DOWN_FOR_MS, and the next request tries again. */
	if (atomic_load(&last_failed) > atomic_load(&last_ok) &&
	    clock_mono_ms() - atomic_load(&last_failed_ms) < PUB_DOWN_FOR_MS) {
		pthread_mutex_lock(&last_failure_mu);
		snprintf(buf, size, "kafka: the latest publish failed (%s), none succeeded since",
		         last_failure);
		pthread_mutex_unlock(&last_failure_mu);
		return buf;
	}
	if (!atomic_load(&topic_ready)) {
		snprintf(buf, size, "kafka: topic %s not created yet", cfg.topic);
		return buf;
	}
	if (atomic_load(&fatal)) {
		snprintf(buf, size, "kafka: producer failed, being recreated");
		return buf;
	}
	pthread_rwlock_rdlock(&rk_lock);
	int rc = kafka_check_topic(rk, cfg.topic, 1000, errstr, sizeof(errstr));
	pthread_rwlock_unlock(&rk_lock);
	if (rc == 0)
		return NULL;
	snprintf(buf, size, "kafka: %s", errstr);
	return buf;
}

int pub_waiters(void)
{
	return atomic_load(&waiters_alive);
}

void pub_shutdown(int timeout_ms)
{
	if (rk == NULL)
		return;
	atomic_store(&running, false);
	pthread_mutex_lock(&turn_mu);
	pthread_cond_signal(&turn_cv);
	pthread_mutex_unlock(&turn_mu);
	pthread_join(poll_thread, NULL);
	pthread_cond_destroy(&turn_cv);
	if (topic_q != NULL) {
		rd_kafka_queue_destroy(topic_q);
		topic_q = NULL;
	}
	if (rd_kafka_flush(rk, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		log_error("%d message(s) not delivered at shutdown", rd_kafka_outq_len(rk));
		/* Their reports, served now, free their waiters and end their
		 * spans (as failed) before tracing stops. */
		rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		(void)rd_kafka_flush(rk, 500);
	}
	rd_kafka_destroy(rk);
	rk = NULL;
}
