/* scaleout_test: two consumer instances (two HTTP ports) in one group share
 * the topic's partitions — both are assigned some and both write rows —
 * and when one is stopped (SIGTERM) mid-stream, it exits cleanly, the other
 * takes all partitions over, and every message is a row exactly once. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "fault.h"
#include "faults.h"

#define MESSAGES 10000
#define CHUNK 250
#define CHUNK_INTERVAL_MS 400 /* 40 chunks over 16 s */
#define SECOND_LOG "consumer-service-2.log"
#define SHARE_MS 30000
#define ROWS_MS 60000
#define INSERTED "consumer_records_total{outcome=\"inserted\"}"

static struct fault_stream stream;
static struct svc second;

static void setup(void)
{
	memset(&stream, 0, sizeof(stream));
	memset(&second, 0, sizeof(second));
	second.status = SVC_NOT_RUNNING;
}

static void teardown(void)
{
	fault_stream_join(&stream, true);
	fault_teardown(&second, 1);
	free(stream.ids);
	stream.ids = NULL;
}

/* Keeps N of the last "assigned N partition(s)" line. */
static void on_assigned(const char *line, void *arg)
{
	int *n = arg;
	const char *p = strstr(line, "\"msg\":\"assigned ");

	if (p != NULL)
		sscanf(p, "\"msg\":\"assigned %d", n);
}

/* The partition count of the last assignment logged in path since offset,
 * or -1 if none. */
static int last_assigned(const char *path, long offset)
{
	int n = -1;

	fault_grep(path, offset, "\"msg\":\"assigned ", on_assigned, &n);
	return n;
}

START_TEST(two_consumers)
{
	const char *log1 = stack.svc[STACK_CONSUMER].log_path;
	char log2[1024], metrics1[128], metrics2[128];
	const int port2 = fault_second_port();
	long off1, off2, deadline, stopping, stopped_in, took_over_at, rows;
	int share1 = -1, share2 = -1, all1 = -1;
	double ins1 = 0, ins2 = 0;
	int produced_at_stop;

	snprintf(log2, sizeof(log2), "%s/%s", stack.state_dir, SECOND_LOG);
	stack_url(metrics1, sizeof(metrics1), STACK_CONSUMER, "/metrics");
	snprintf(metrics2, sizeof(metrics2), "http://127.0.0.1:%d/metrics", port2);

	fault_start(STACK_CONSUMER, NULL);
	off1 = fault_file_size(log1);
	off2 = fault_file_size(log2);
	fault_start_extra(&second, STACK_CONSUMER, port2, SECOND_LOG, NULL, 30000);

	/* The group rebalances: each instance gets a share. */
	deadline = clock_mono_ms() + SHARE_MS;
	while (clock_mono_ms() < deadline) {
		share1 = last_assigned(log1, off1);
		share2 = last_assigned(log2, off2);
		if (share1 > 0 && share2 > 0)
			break;
		proc_sleep_ms(100);
	}
	printf("  two consumers: assigned %d and %d partition(s)\n", share1, share2);
	ck_assert_msg(share1 > 0 && share2 > 0,
	              "the partitions are not shared: %d and %d assigned (logs %s, %s)", share1,
	              share2, log1, log2);
	ck_assert_msg(share1 + share2 == 6, "%d + %d partitions assigned, the topic has 6", share1,
	              share2);

	/* Both write while the messages stream in. */
	fault_stream_start(&stream, MESSAGES, CHUNK, CHUNK_INTERVAL_MS);
	deadline = clock_mono_ms() + SHARE_MS;
	while (clock_mono_ms() < deadline) {
		ins1 = fault_metric(metrics1, INSERTED);
		ins2 = fault_metric(metrics2, INSERTED);
		if (ins1 > 0 && ins2 > 0 && atomic_load(&stream.produced) >= MESSAGES * 2 / 5)
			break;
		proc_sleep_ms(100);
	}
	ck_assert_msg(ins1 > 0 && ins2 > 0, "rows inserted: %.0f and %.0f; both should write", ins1,
	              ins2);

	/* One of them stops mid-stream; the other takes everything over. */
	produced_at_stop = atomic_load(&stream.produced);
	off1 = fault_file_size(log1);
	stopping = clock_mono_ms();
	stopped_in = fault_sigterm(&second);
	deadline = clock_mono_ms() + SHARE_MS;
	while ((all1 = last_assigned(log1, off1)) != 6 && clock_mono_ms() < deadline)
		proc_sleep_ms(100);
	took_over_at = clock_mono_ms();
	fault_stream_join(&stream, false);
	rows = fault_wait_rows(stream.ids, MESSAGES, ROWS_MS);
	printf("  SIGTERM to the second consumer after %d of %d messages (it had inserted %.0f rows, "
	       "the first %.0f): exited 0 in %.2f s; the first held all 6 partitions %.2f s after "
	       "the SIGTERM; %ld rows\n",
	       produced_at_stop, MESSAGES, ins2, ins1, fault_secs(stopped_in),
	       fault_secs(took_over_at - stopping), rows);
	ck_assert_msg(produced_at_stop < MESSAGES, "the second consumer stopped after the stream");
	ck_assert_msg(all1 == 6, "the remaining consumer was assigned %d partitions, not 6", all1);
	ck_assert_msg(rows == MESSAGES, "%ld rows for the %d messages, want exactly %d", rows,
	              MESSAGES, MESSAGES);
}
END_TEST

Suite *make_scaleout_suite(void)
{
	Suite *s = suite_create("scaleout");
	TCase *tc = tcase_create("group");

	tcase_set_timeout(tc, 180);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, two_consumers);
	suite_add_tcase(s, tc);
	return s;
}
