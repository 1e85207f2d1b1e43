/* test_publisher: the publisher (command-service/publisher.c) against
 * librdkafka's in-process mock cluster: a message acknowledged, refused by
 * the broker, refused locally, and acknowledged only after its request gave
 * up waiting; and delivery reports served while the topic's creation is
 * still waiting for an answer. Each waiter is freed exactly once: the
 * count of waiters alive goes back to 0, and under AddressSanitizer
 * (make test-unit-san) a second free or a leak fails the run.
 *
 * The publisher is one per process: each test runs in its own process
 * (Check's default fork mode, as make test-unit runs it). */
#include <check.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "msg.h"
#include "otlp_sink.h"
#include "publisher.h"
#include "suites.h"
#include "trace.h"
#include "uid.h"

#define TOPIC "test.publisher"
#define PRODUCE_API_KEY 0 /* Kafka's ApiKey of Produce requests */
#define CID "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
/* The longest any wait below may take: it bounds a wait, it asserts nothing. */
#define WAIT_LIMIT_MS 15000

static rd_kafka_t *mock_rk; /* only owns the mock cluster */
static rd_kafka_mock_cluster_t *mcluster;

static void cluster_start(void)
{
	char errstr[512];

	log_setup("test", LOG_WARN);
	mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), errstr, sizeof(errstr));
	ck_assert_msg(mock_rk != NULL, "%s", errstr);
	mcluster = rd_kafka_mock_cluster_new(mock_rk, 1);
	ck_assert_ptr_nonnull(mcluster);
}

static void cluster_stop(void)
{
	rd_kafka_mock_cluster_destroy(mcluster);
	rd_kafka_destroy(mock_rk);
}

static void sleep_ms(long ms)
{
	nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000}, NULL);
}

/* pub_setup against the mock cluster; report_wait_ms 0 is the default. */
static void setup_publisher(int timeout_ms, int report_wait_ms)
{
	struct pub_config pc = {
	    .brokers = rd_kafka_mock_cluster_bootstraps(mcluster),
	    .topic = TOPIC,
	    .properties = "",
	    .partitions = 1,
	    .replication = 1,
	    .timeout_ms = timeout_ms,
	    .report_wait_ms = report_wait_ms,
	};
	char errstr[512];

	ck_assert_msg(pub_setup(&pc, errstr, sizeof(errstr)) == 0, "pub_setup: %s", errstr);
}

/* One command, as the API publishes it. */
static enum pub_result send_one(char *errstr, size_t errstr_size)
{
	struct msg_command m = {.event_time = {.sec = 1254164592}};
	char value[MSG_ENCODED_MAX];
	size_t len;

	uid_v4(m.command_id);
	len = msg_encode(&m, value);
	return pub_send(m.command_id, value, len, CID, NULL, 1254164592000, errstr, errstr_size);
}

/* Waits (up to WAIT_LIMIT_MS) for every owed report; returns the waiters
 * still alive. */
static int waiters_after_reports(void)
{
	for (long waited = 0; pub_waiters() > 0 && waited < WAIT_LIMIT_MS; waited += 10)
		sleep_ms(10);
	return pub_waiters();
}

START_TEST(acknowledged_message_is_ok_and_frees_its_waiter)
{
	char errstr[256] = "";

	setup_publisher(5000, 0);
	ck_assert_msg(send_one(errstr, sizeof(errstr)) == PUB_OK, "not acknowledged: %s", errstr);
	ck_assert_int_eq(waiters_after_reports(), 0);
	pub_shutdown(1000);
}
END_TEST

/* The broker answers after the request stopped waiting (503): the report,
 * which still comes, frees the waiter; the request had already let go of
 * it. The message is stored: a 503 may become a row, which is why the
 * answer carries the id that was tried. */
START_TEST(report_after_the_request_gave_up_frees_the_waiter_once)
{
	char errstr[256] = "";
	enum pub_result res;

	setup_publisher(5000, 300);
	/* The first report also waits for the connection and the producer id,
	 * which may take longer than 300 ms on a busy machine: warm up until a
	 * report comes in time (an owed report is freed like the one below). */
	for (int i = 0; i < 20 && send_one(errstr, sizeof(errstr)) != PUB_OK; i++)
		errstr[0] = '\0';
	ck_assert_msg(send_one(errstr, sizeof(errstr)) == PUB_OK, "warm-up: %s", errstr);
	ck_assert_int_eq(rd_kafka_mock_broker_set_rtt(mcluster, 1, 1500), RD_KAFKA_RESP_ERR_NO_ERROR);
	res = send_one(errstr, sizeof(errstr));
	ck_assert_msg(res == PUB_UNAVAILABLE, "answered %d (%s) before the broker did", res, errstr);
	ck_assert_msg(strstr(errstr, "no delivery report") != NULL, "why: %s", errstr);
	ck_assert_msg(pub_waiters() == 1, "%d waiters alive while a report is owed, want 1",
	              pub_waiters());
	ck_assert_int_eq(waiters_after_reports(), 0);
	pub_shutdown(1000);
}
END_TEST

/* The broker refuses the message: the request gets its report (503), and
 * the waiter is freed by whichever of the two lets go last. */
START_TEST(message_refused_by_the_broker_frees_its_waiter)
{
	char errstr[256] = "";
	enum pub_result res;

	setup_publisher(5000, 0);
	ck_assert_msg(send_one(errstr, sizeof(errstr)) == PUB_OK, "warm-up: %s", errstr);
	rd_kafka_mock_push_request_errors(mcluster, PRODUCE_API_KEY, 1,
	                                  RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
	res = send_one(errstr, sizeof(errstr));
	ck_assert_msg(res == PUB_UNAVAILABLE, "a refused message answered %d (%s)", res, errstr);
	ck_assert_int_eq(waiters_after_reports(), 0);
	pub_shutdown(1000);
}
END_TEST

/* /ready (pub_down) says when the latest publish failed and none has
 * succeeded since: the metadata can look healthy while no write succeeds
 * (min.insync.replicas not met, two of three brokers gone). */
START_TEST(failed_publish_is_down_until_one_succeeds)
{
	char errstr[256] = "", buf[256];
	const char *down = "";
	enum pub_result res;

	/* (The mock cluster never creates the topic, so pub_down says that
	 * too, but only after a failed publish does it name one.) */
	setup_publisher(5000, 0);
	ck_assert_msg(send_one(errstr, sizeof(errstr)) == PUB_OK, "warm-up: %s", errstr);
	down = pub_down(buf, sizeof(buf));
	ck_assert_msg(down == NULL || strstr(down, "latest publish failed") == NULL,
	              "down for a publish after one succeeded: %s", down);
	rd_kafka_mock_push_request_errors(mcluster, PRODUCE_API_KEY, 1,
	                                  RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
	res = send_one(errstr, sizeof(errstr));
	ck_assert_msg(res == PUB_UNAVAILABLE, "a refused message answered %d (%s)", res, errstr);
	down = pub_down(buf, sizeof(buf));
	ck_assert_msg(down != NULL && strstr(down, "latest publish failed") != NULL &&
	                  strstr(down, errstr) != NULL,
	              "pub_down after a failed publish (%s): %s", errstr, down ? down : "NULL");
	ck_assert_msg(send_one(errstr, sizeof(errstr)) == PUB_OK, "after the refusal: %s", errstr);
	down = pub_down(buf, sizeof(buf));
	ck_assert_msg(down == NULL || strstr(down, "latest publish failed") == NULL,
	              "still down for a publish after one succeeded: %s", down);
	pub_shutdown(1000);
}
END_TEST

/* librdkafka refuses the message before it is queued: no report will
 * come, and the request frees the waiter alone. */
START_TEST(message_refused_locally_frees_its_waiter)
{
	const size_t big = 2 * 1000 * 1000; /* over message.max.bytes */
	char *value = malloc(big), errstr[256] = "";
	char id[UID_TEXT_SIZE];
	enum pub_result res;

	ck_assert_ptr_nonnull(value);
	memset(value, 'x', big);
	uid_v4(id);
	setup_publisher(5000, 0);
	res = pub_send(id, value, big, CID, NULL, 1254164592000, errstr, sizeof(errstr));
	ck_assert_msg(res == PUB_FAILED, "a message over message.max.bytes answered %d (%s)", res,
	              errstr);
	ck_assert_int_eq(pub_waiters(), 0);
	pub_shutdown(1000);
	free(value);
}
END_TEST

/* ---- topic creation ---- */

static int saved_stdout = -1;
static char log_path[] = "/tmp/test-publisher-log-XXXXXX";

/* Sends the log (stdout) to a file, to be read back. */
static void capture_log(void)
{
	int fd = mkstemp(log_path);

	ck_assert_int_ge(fd, 0);
	fflush(stdout);
	saved_stdout = dup(STDOUT_FILENO);
	ck_assert_int_ge(dup2(fd, STDOUT_FILENO), 0);
	close(fd);
}

static void release_log(void)
{
	if (saved_stdout < 0)
		return;
	dup2(saved_stdout, STDOUT_FILENO);
	close(saved_stdout);
	saved_stdout = -1;
	unlink(log_path);
}

/* The lines logged so far that contain needle. */
static int log_count(const char *needle)
{
	FILE *f = fopen(log_path, "r");
	char line[4096];
	int n = 0;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

#define TOPIC_NOT_YET "cannot make sure the topic exists"

/* The mock cluster leaves a CreateTopics request waiting for a controller
 * until it times out (PUBLISH_TIMEOUT_MS): as a broker that does not answer
 * would. Meanwhile a message is acknowledged, and its request must hear so
 * then, not once the creation attempt has given up: no attempt may end
 * between pub_setup and the request's answer. */
START_TEST(delivery_reports_are_served_while_topic_creation_is_pending)
{
	char errstr[256] = "";
	int before, after;

	capture_log();
	setup_publisher(3000, 0);
	before = log_count(TOPIC_NOT_YET);
	ck_assert_msg(send_one(errstr, sizeof(errstr)) == PUB_OK, "not acknowledged: %s", errstr);
	after = log_count(TOPIC_NOT_YET);
	ck_assert_msg(after == before, "%d topic-creation attempt(s) ended between pub_setup and the "
	              "delivery report: the report waited for them", after - before);
	/* And creation was indeed under way: its attempt ends in time. */
	for (long waited = 0; log_count(TOPIC_NOT_YET) == 0 && waited < WAIT_LIMIT_MS; waited += 50)
		sleep_ms(50);
	ck_assert_msg(log_count(TOPIC_NOT_YET) > 0, "no topic-creation attempt ended");
	pub_shutdown(1000);
	release_log();
}
END_TEST

/* ---- spans ----
 *
 * With tracing on (to a receiver in this process), every message has one
 * PRODUCER span, a child of the request's, ended exactly once whatever
 * became of the message: acknowledged, refused by the broker, acknowledged
 * after its request gave up, refused locally, or failed at shutdown. */

#define PARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define SENDS_MAX 32

static void spans_start(void)
{
	cluster_start();
	otlp_sink_trace();
}

static void spans_stop(void)
{
	trace_shutdown(0);
	otlp_sink_stop();
	cluster_stop();
}

/* What each message sent should have become. */
enum fate { ACKED, REFUSED };
static char sent_ids[SENDS_MAX][UID_TEXT_SIZE];
static enum fate sent_fates[SENDS_MAX];
static int n_sent;

static enum pub_result traced_send(size_t len, enum fate fate, char *errstr, size_t errstr_size)
{
	struct msg_command m = {.event_time = {.sec = 1254164592}};
	char small[MSG_ENCODED_MAX], *value = small;
	struct trace_ctx parent;
	enum pub_result res;

	ck_assert_int_lt(n_sent, SENDS_MAX);
	ck_assert_int_eq(trace_parse(PARENT, NULL, &parent), 0);
	uid_v4(m.command_id);
	if (len == 0) {
		len = msg_encode(&m, small);
	} else {
		value = malloc(len);
		ck_assert_ptr_nonnull(value);
		memset(value, 'x', len);
	}
	res = pub_send(m.command_id, value, len, CID, &parent, 1254164592000, errstr, errstr_size);
	memcpy(sent_ids[n_sent], m.command_id, UID_TEXT_SIZE);
	sent_fates[n_sent++] = fate;
	if (value != small)
		free(value);
	return res;
}

START_TEST(every_message_ends_its_publish_span_once)
{
	json_object *spans[SENDS_MAX + 1];
	char errstr[256] = "";
	enum pub_result res;
	int n;

	setup_publisher(5000, 300);
	for (int i = 0; i < 20 && traced_send(0, ACKED, errstr, sizeof(errstr)) != PUB_OK; i++)
		errstr[0] = '\0'; /* warm-up: see report_after_the_request_gave_up_frees_the_waiter_once */
	ck_assert_msg(traced_send(0, ACKED, errstr, sizeof(errstr)) == PUB_OK, "%s", errstr);
	rd_kafka_mock_push_request_errors(mcluster, PRODUCE_API_KEY, 1,
	                                  RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
	res = traced_send(0, REFUSED, errstr, sizeof(errstr));
	ck_assert_msg(res == PUB_UNAVAILABLE, "refused by the broker: %d (%s)", res, errstr);
	ck_assert_int_eq(rd_kafka_mock_broker_set_rtt(mcluster, 1, 1500), RD_KAFKA_RESP_ERR_NO_ERROR);
	res = traced_send(0, ACKED, errstr, sizeof(errstr)); /* acknowledged after it gave up */
	ck_assert_msg(res == PUB_UNAVAILABLE, "answered %d (%s) before the broker did", res, errstr);
	ck_assert_int_eq(waiters_after_reports(), 0);
	ck_assert_int_eq(rd_kafka_mock_broker_set_rtt(mcluster, 1, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
	res = traced_send(2 * 1000 * 1000, REFUSED, errstr, sizeof(errstr)); /* locally */
	ck_assert_msg(res == PUB_FAILED, "over message.max.bytes: %d (%s)", res, errstr);
	ck_assert_int_eq(rd_kafka_mock_broker_set_down(mcluster, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
	res = traced_send(0, REFUSED, errstr, sizeof(errstr)); /* still queued at shutdown */
	ck_assert_msg(res == PUB_UNAVAILABLE, "with the broker down: %d (%s)", res, errstr);
	pub_shutdown(500);
	trace_shutdown(10000);

	n = otlp_sink_spans(TOPIC " publish", n_sent, WAIT_LIMIT_MS, spans, SENDS_MAX + 1);
	ck_assert_msg(n == n_sent, "%d publish spans for %d messages", n, n_sent);
	for (int i = 0; i < n_sent; i++) {
		json_object *span = NULL;
		int found = 0;

		for (int k = 0; k < n; k++) {
			const char *key = otlp_attr(spans[k], "messaging.kafka.message.key");
			if (key != NULL && strcmp(key, sent_ids[i]) == 0)
				span = spans[k], found++;
		}
		ck_assert_msg(found == 1, "message %d (%s): %d spans", i, sent_ids[i], found);
		ck_assert_int_eq(otlp_kind(span), TRACE_PRODUCER);
		ck_assert_str_eq(otlp_field(span, "traceId"), "4bf92f3577b34da6a3ce929d0e0e4736");
		ck_assert_str_eq(otlp_field(span, "parentSpanId"), "00f067aa0ba902b7");
		ck_assert_str_eq(otlp_attr(span, "messaging.system"), "kafka");
		ck_assert_str_eq(otlp_attr(span, "messaging.destination.name"), TOPIC);
		ck_assert_str_eq(otlp_attr(span, "messaging.operation.type"), "publish");
		if (sent_fates[i] == ACKED) {
			ck_assert_msg(otlp_status(span) != 2, "message %d acknowledged, span ERROR", i);
			const char *part = otlp_attr(span, "messaging.destination.partition.id");
			ck_assert_msg(part != NULL && *part && strspn(part, "0123456789") == strlen(part),
			              "message %d: partition.id '%s'", i, part ? part : "(none)");
			ck_assert_ptr_nonnull(otlp_attr(span, "messaging.kafka.offset"));
		} else {
			ck_assert_msg(otlp_status(span) == 2, "message %d failed, span status %d", i,
			              otlp_status(span));
			ck_assert_ptr_null(otlp_attr(span, "messaging.kafka.offset"));
		}
	}
	for (int k = 0; k < n; k++)
		json_object_put(spans[k]);
}
END_TEST

Suite *make_publisher_suite(void)
{
	Suite *s = suite_create("publisher");
	TCase *tc;

	tc = tcase_create("waiters");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, cluster_start, cluster_stop);
	tcase_add_test(tc, acknowledged_message_is_ok_and_frees_its_waiter);
	tcase_add_test(tc, report_after_the_request_gave_up_frees_the_waiter_once);
	tcase_add_test(tc, message_refused_by_the_broker_frees_its_waiter);
	tcase_add_test(tc, failed_publish_is_down_until_one_succeeds);
	tcase_add_test(tc, message_refused_locally_frees_its_waiter);
	suite_add_tcase(s, tc);

	tc = tcase_create("spans");
	tcase_set_timeout(tc, 90);
	tcase_add_checked_fixture(tc, spans_start, spans_stop);
	tcase_add_test(tc, every_message_ends_its_publish_span_once);
	suite_add_tcase(s, tc);

	tc = tcase_create("topic");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, cluster_start, cluster_stop);
	tcase_add_checked_fixture(tc, NULL, release_log);
	tcase_add_test(tc, delivery_reports_are_served_while_topic_creation_is_pending);
	suite_add_tcase(s, tc);
	return s;
}
