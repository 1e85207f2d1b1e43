/* kill_test: the consumer is SIGKILLed three times while 20,000 messages
 * stream into the topic — each time after it has written some of them, so
 * that rows exist whose offsets were not committed yet — and restarted.
 * Afterwards there are exactly 20,000 rows for the 20,000 ids: none lost,
 * none twice (the redelivered ones hit ON CONFLICT DO NOTHING). */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "fault.h"
#include "faults.h"

#define MESSAGES 20000
#define CHUNK 500
#define CHUNK_INTERVAL_MS 700 /* 40 chunks over 28 s */
#define KILLS 3
#define WORK_BEFORE_KILL 500 /* rows the consumer writes before it is killed */
#define WORK_MS 15000
#define INSERTED "consumer_records_total{outcome=\"inserted\"}"
#define ROWS_MS 90000

/* The broker's minimum: a killed member leaves the group sooner. */
static const char *const consumer_env[] = {"KAFKA_PROPERTIES=session.timeout.ms=6000", NULL};

static struct fault_stream stream;

static void setup(void)
{
	memset(&stream, 0, sizeof(stream));
}

static void teardown(void)
{
	fault_stream_join(&stream, true);
	fault_teardown(NULL, 0);
	free(stream.ids);
	stream.ids = NULL;
}

/* Sums "N duplicate" of the consumer's "batch of ..." debug lines. */
static void on_batch(const char *line, void *arg)
{
	long *dups = arg;
	const char *p = strstr(line, " inserted, ");
	long n;

	if (p != NULL && sscanf(p, " inserted, %ld duplicate", &n) == 1)
		*dups += n;
}

START_TEST(consumer_killed)
{
	const char *log = stack.svc[STACK_CONSUMER].log_path;
	char metrics[128];
	long log_from, rows, dups = 0, started;
	int produced_at_kill[KILLS];
	double inserted_at_kill[KILLS];

	stack_url(metrics, sizeof(metrics), STACK_CONSUMER, "/metrics");
	log_from = fault_file_size(log);
	fault_start(STACK_CONSUMER, consumer_env);
	fault_stream_start(&stream, MESSAGES, CHUNK, CHUNK_INTERVAL_MS);

	for (int k = 0; k < KILLS; k++) {
		const long deadline = clock_mono_ms() + WORK_MS;
		double inserted;
		int status;

		/* Spread over the stream, each after this process wrote rows. */
		while (((inserted = fault_metric(metrics, INSERTED)) < WORK_BEFORE_KILL ||
		        atomic_load(&stream.produced) < (k + 1) * MESSAGES / (KILLS + 2)) &&
		       clock_mono_ms() < deadline)
			proc_sleep_ms(20);
		produced_at_kill[k] = atomic_load(&stream.produced);
		inserted_at_kill[k] = inserted;
		status = stack_stop_service(STACK_CONSUMER, SIGKILL, 5000, NULL);
		ck_assert_msg(status == 128 + SIGKILL, "kill #%d: consumer status %d", k + 1, status);
		started = clock_mono_ms();
		fault_start(STACK_CONSUMER, consumer_env);
		printf("  kill #%d: %d messages produced, the killed process had inserted %.0f rows; "
		       "restarted and assigned in %.1f s\n",
		       k + 1, produced_at_kill[k], inserted_at_kill[k],
		       fault_secs(clock_mono_ms() - started));
	}
	fault_stream_join(&stream, false);
	started = clock_mono_ms();
	rows = fault_wait_rows(stream.ids, MESSAGES, ROWS_MS);
	fault_grep(log, log_from, "\"msg\":\"batch of", on_batch, &dups);
	printf("  %ld rows for %d messages (%.1f s after the last was produced); %ld redelivered "
	       "messages were duplicates and ignored\n",
	       rows, MESSAGES, fault_secs(clock_mono_ms() - started), dups);

	for (int k = 0; k < KILLS; k++) {
		ck_assert_msg(produced_at_kill[k] < MESSAGES, "kill #%d came after the stream ended",
		              k + 1);
		ck_assert_msg(inserted_at_kill[k] > 0, "kill #%d: the consumer had written nothing",
		              k + 1);
	}
	ck_assert_msg(rows == MESSAGES, "%ld rows for the %d messages, want exactly %d", rows,
	              MESSAGES, MESSAGES);
}
END_TEST

Suite *make_kill_suite(void)
{
	Suite *s = suite_create("kill");
	TCase *tc = tcase_create("consumer");

	tcase_set_timeout(tc, 180);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, consumer_killed);
	suite_add_tcase(s, tc);
	return s;
}
