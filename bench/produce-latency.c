/* produce-latency: the ceiling of the produce path. A bare librdkafka
 * producer with command-service's durability (acks=all, idempotent) and
 * message (codec, key, headers) whose CALLERS threads each produce one
 * message and wait for its delivery report, in a loop, for SECONDS seconds
 * (after one second of warm-up that is not counted).
 *
 * What makes it the fastest a client can do:
 *   linger.ms=0             a message is sent as soon as it is produced;
 *                           while requests are in flight the next ones
 *                           still share a batch (they wait in the queue)
 *   socket.nagle.disable    a produce request is never held back by the
 *                           kernel behind one not yet acknowledged
 *   the callers poll        the waiting callers take turns in
 *                           rd_kafka_poll (leader/follower): at 1 caller the
 *                           delivery report is served by the thread that
 *                           waits for it, no thread hand-off; at more, the
 *                           caller polling hands a report to its owner
 * -t serves the reports from a poll thread instead, as command-service did,
 * and -p name=value,... sets further producer properties (applied last), so
 * that what each choice costs can be measured with the same program.
 *
 * usage: produce-latency [-t] [-p PROPS] BROKERS TOPIC CALLERS SECONDS
 * prints: callers=C seconds=S msgs=N msgs_s=R p50_ms= p99_ms= p999_ms= max_ms= failed=F */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "kafka.h"
#include "log.h"
#include "message.h"

#define CALLERS_MAX 256
#define WARMUP_S 1.0

struct caller {
	pthread_cond_t cv;
	bool done, waiting;
	rd_kafka_resp_err_t err;
	double *lat; /* seconds, of the counted messages */
	size_t n, cap;
	long failed;
};

static rd_kafka_t *rk;
static const char *topic;
static struct caller callers[CALLERS_MAX];
static int ncallers;
static double t_start, t_count, t_end;
static bool poll_thread_mode;
static atomic_bool running = true;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static bool polling; /* a caller is in rd_kafka_poll */

static void on_delivery(rd_kafka_t *rk_, const rd_kafka_message_t *rkm, void *opaque)
{
	struct caller *c = rkm->_private;

	(void)rk_;
	(void)opaque;
	pthread_mutex_lock(&mu);
	c->err = rkm->err;
	c->done = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&mu);
}

/* Leader/follower: one waiting caller polls; when its own report came, it
 * hands the polling to another caller still waiting. Called with mu held. */
static void wait_report(struct caller *c)
{
	c->waiting = true;
	while (!c->done) {
		if (poll_thread_mode || polling) {
			pthread_cond_wait(&c->cv, &mu);
			continue;
		}
		polling = true;
		pthread_mutex_unlock(&mu);
		rd_kafka_poll(rk, 100);
		pthread_mutex_lock(&mu);
		polling = false;
	}
	c->waiting = false;
	if (!poll_thread_mode) {
		for (int i = 0; i < ncallers; i++) {
			if (callers[i].waiting && !callers[i].done) {
				pthread_cond_signal(&callers[i].cv);
				break;
			}
		}
	}
}

static void *poll_main(void *arg)
{
	(void)arg;
	while (atomic_load(&running))
		rd_kafka_poll(rk, 100);
	return NULL;
}

static void *caller_main(void *arg)
{
	struct caller *c = arg;
	struct bench_message bm = {0};

	for (;;) {
		const double t0 = clock_mono_s();
		if (t0 >= t_end)
			break;
		const struct msg_record rec = bench_message_new(&bm, topic, c);
		rd_kafka_resp_err_t err;

		pthread_mutex_lock(&mu);
		c->done = false;
		pthread_mutex_unlock(&mu);
		err = msg_produce(rk, &rec);
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			c->failed++;
			usleep(1000);
			continue;
		}
		pthread_mutex_lock(&mu);
		wait_report(c);
		err = c->err;
		pthread_mutex_unlock(&mu);
		const double t1 = clock_mono_s();
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			if (c->failed++ == 0)
				fprintf(stderr, "produce-latency: delivery failed: %s\n",
				        rd_kafka_err2str(err));
			continue;
		}
		if (t0 < t_count || t1 > t_end)
			continue;
		if (c->n == c->cap) {
			c->cap = c->cap ? 2 * c->cap : 65536;
			c->lat = realloc(c->lat, c->cap * sizeof(*c->lat));
			if (c->lat == NULL) {
				fprintf(stderr, "produce-latency: out of memory\n");
				exit(1);
			}
		}
		c->lat[c->n++] = t1 - t0;
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	const double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
	size_t i = (size_t)(p / 100.0 * (double)n);
	return n == 0 ? 0 : v[i < n ? i : n - 1];
}

int main(int argc, char **argv)
{
	char errstr[512];
	const char *props = NULL;
	rd_kafka_conf_t *conf;
	pthread_t threads[CALLERS_MAX], poller;
	double secs;
	char *end;
	int opt;

	while ((opt = getopt(argc, argv, "tp:")) != -1) {
		if (opt == 't')
			poll_thread_mode = true;
		else if (opt == 'p')
			props = optarg;
		else
			goto usage;
	}
	if (argc - optind != 4)
		goto usage;
	topic = argv[optind + 1];
	errno = 0;
	ncallers = (int)strtol(argv[optind + 2], &end, 10);
	if (errno || *end != '\0' || ncallers < 1 || ncallers > CALLERS_MAX)
		goto usage;
	secs = strtod(argv[optind + 3], &end);
	if (*end != '\0' || !(secs > 0))
		goto usage;

	log_setup("produce-latency", LOG_WARN);
	if ((conf = kafka_conf_new(argv[optind], errstr, sizeof(errstr))) == NULL ||
	    kafka_conf_set(conf, "acks", "all", errstr, sizeof(errstr)) ||
	    kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)) ||
	    kafka_conf_set(conf, "linger.ms", "0", errstr, sizeof(errstr)) ||
	    kafka_conf_set(conf, "socket.nagle.disable", "true", errstr, sizeof(errstr)) ||
	    kafka_conf_apply(conf, props, errstr, sizeof(errstr))) {
		fprintf(stderr, "produce-latency: %s\n", errstr);
		return 1;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	if ((rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr))) == NULL) {
		fprintf(stderr, "produce-latency: %s\n", errstr);
		return 1;
	}
	if (poll_thread_mode && pthread_create(&poller, NULL, poll_main, NULL) != 0) {
		fprintf(stderr, "produce-latency: cannot start the poll thread\n");
		return 1;
	}
	t_start = clock_mono_s();
	t_count = t_start + WARMUP_S;
	t_end = t_count + secs;
	for (int i = 0; i < ncallers; i++) {
		clock_cond_init(&callers[i].cv);
		if (pthread_create(&threads[i], NULL, caller_main, &callers[i]) != 0) {
			fprintf(stderr, "produce-latency: cannot start caller %d\n", i);
			return 1;
		}
	}
	size_t total = 0;
	long failed = 0;
	for (int i = 0; i < ncallers; i++) {
		pthread_join(threads[i], NULL);
		total += callers[i].n;
		failed += callers[i].failed;
	}
	atomic_store(&running, false);
	if (poll_thread_mode)
		pthread_join(poller, NULL);

	double *all = malloc((total ? total : 1) * sizeof(*all));
	size_t k = 0;
	if (all == NULL) {
		fprintf(stderr, "produce-latency: out of memory\n");
		return 1;
	}
	for (int i = 0; i < ncallers; i++) {
		memcpy(all + k, callers[i].lat, callers[i].n * sizeof(*all));
		k += callers[i].n;
		free(callers[i].lat);
		pthread_cond_destroy(&callers[i].cv);
	}
	qsort(all, total, sizeof(*all), cmp_double);
	printf("callers=%d seconds=%.3f msgs=%zu msgs_s=%.1f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f "
	       "max_ms=%.3f failed=%ld\n",
	       ncallers, secs, total, (double)total / secs, pct(all, total, 50) * 1e3,
	       pct(all, total, 99) * 1e3, pct(all, total, 99.9) * 1e3,
	       total ? all[total - 1] * 1e3 : 0, failed);
	free(all);
	(void)rd_kafka_flush(rk, 5000);
	rd_kafka_destroy(rk);
	return failed > 0 ? 1 : 0;
usage:
	fprintf(stderr, "usage: produce-latency [-t] [-p name=value,...] BROKERS TOPIC CALLERS "
	                "SECONDS\n");
	return 2;
}
