/* produce: writes N command messages straight into the topic, as
 * command-service would (same codec, key, headers, acks=all, idempotent),
 * so that consumer-service can be timed on a backlog without HTTP in front.
 *
 * usage: produce BROKERS TOPIC N          prints "produced N in S s" */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "kafka.h"
#include "log.h"
#include "message.h"

static long failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR && failed++ == 0)
		fprintf(stderr, "produce: delivery failed: %s\n", rd_kafka_err2str(m->err));
}

int main(int argc, char **argv)
{
	char errstr[512];
	struct bench_message bm = {0};
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	long n, i;
	double t0;
	char *end;

	if (argc != 4 || (errno = 0, n = strtol(argv[3], &end, 10)) <= 0 || *end != '\0' || errno) {
		fprintf(stderr, "usage: produce BROKERS TOPIC N\n");
		return 2;
	}
	log_setup("produce", LOG_WARN);
	if ((conf = kafka_conf_new(argv[1], errstr, sizeof(errstr))) == NULL ||
	    kafka_conf_set(conf, "acks", "all", errstr, sizeof(errstr)) ||
	    kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)) ||
	    kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr))) {
		fprintf(stderr, "produce: %s\n", errstr);
		return 1;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	if ((rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr))) == NULL) {
		fprintf(stderr, "produce: %s\n", errstr);
		return 1;
	}
	t0 = clock_mono_s();
	for (i = 0; i < n; i++) {
		const struct msg_record rec = bench_message_new(&bm, argv[2], NULL);
		rd_kafka_resp_err_t err;

		do {
			err = msg_produce(rk, &rec);
			if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
				rd_kafka_poll(rk, 10);
		} while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			fprintf(stderr, "produce: %s\n", rd_kafka_err2str(err));
			rd_kafka_destroy(rk);
			return 1;
		}
		rd_kafka_poll(rk, 0);
	}
	if (rd_kafka_flush(rk, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "produce: %d messages not delivered in 60 s\n", rd_kafka_outq_len(rk));
		rd_kafka_destroy(rk);
		return 1;
	}
	rd_kafka_destroy(rk);
	if (failed > 0) {
		fprintf(stderr, "produce: %ld of %ld messages failed\n", failed, n);
		return 1;
	}
	printf("produced %ld in %.2f s\n", n, clock_mono_s() - t0);
	return 0;
}
