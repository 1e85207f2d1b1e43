/* dr_test: the disaster-recovery runbook of the README as a test. Records
 * created through the command service (offsets raw and percent-encoded, 0-9
 * fractional digits, lowercase t/z, a leap second, "now", Idempotency-Key
 * retries) are snapshotted; then the table is emptied and rebuilt from the
 * topic twice: (a) by a consumer in a new group, (b) by resetting the
 * service's group with `consumer-service --reset-offsets earliest` while its
 * consumer is stopped (the reset is refused while it runs) and starting it
 * again. Each time the rows are identical
 * to the snapshot (id, event_timestamp, created_at, as PostgreSQL prints
 * them). The test has a topic and a group of its own, so that what the other
 * suites left in the shared topic does not enter its table. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "fault.h"
#include "faults.h"
#include "store.h"

#define RECORDS 301
#define RETRY_EVERY 50 /* every 50th record is sent twice with one Idempotency-Key */
#define READABLE_MS 30000
#define REBUILD_MS 60000
#define RESET_MS 30000
#define DR_TOPIC "timestamp.dr-test.v1"
#define DR_GROUP "dr-test"

static const char *const dr_env[] = {"KAFKA_PUBLISH_TOPIC=" DR_TOPIC,
                                     "KAFKA_CONSUMER_TOPIC=" DR_TOPIC,
                                     "KAFKA_GROUP_ID=" DR_GROUP, NULL};
static struct svc extra[2]; /* the new group's consumer, the reset */
static char ids[RECORDS][UID_TEXT_SIZE];
static char *snapshot;

static void setup(void)
{
	memset(extra, 0, sizeof(extra));
	for (int i = 0; i < 2; i++)
		extra[i].status = SVC_NOT_RUNNING;
	snapshot = NULL;
}

static void teardown(void)
{
	fault_teardown(extra, 2);
	free(snapshot);
}

/* The path of record i: the forms of the README's API section in turn. */
static void record_path(int i, char *path, size_t size)
{
	const int y = 1970 + i % 55, mo = 1 + i % 12, d = 1 + i % 28, h = i % 24;
	const int mi = i * 7 % 60, s = i * 13 % 60;
	const long f = ((long)i * 7919 + 13) % 1000000000;
	const char *base = "/api/v1/timestamp";

	if (i == 1) {
		snprintf(path, size, "%s/1998-12-31T23:59:60Z", base); /* a leap second */
		return;
	}
	switch (i % 5) {
	case 0:
		snprintf(path, size, "%s/%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", base, y, mo, d, h, mi, s, f);
		break;
	case 1:
		snprintf(path, size, "%s/%04d-%02d-%02dT%02d:%02d:%02d.%06ld%%2B05:30", base, y, mo, d, h,
		         mi, s, f % 1000000);
		break;
	case 2:
		snprintf(path, size, "%s/%04d-%02d-%02dt%02d:%02d:%02d.%03ld-08:00", base, y, mo, d, h, mi,
		         s, f % 1000);
		break;
	case 3:
		snprintf(path, size, "%s/%04d-%02d-%02dT%02d:%02d:%02dz", base, y, mo, d, h, mi, s);
		break;
	default:
		snprintf(path, size, "%s", i % 2 ? base : "/app"); /* "now" */
	}
}

/* POSTs record i (twice, with one Idempotency-Key, for every RETRY_EVERY-th)
 * and keeps its id. */
static void create_record(int i, long run)
{
	char path[128], url[256], key[96];
	const char *headers[] = {key, NULL};
	struct http_resp resp = {0};
	json_object *jobj;

	record_path(i, path, sizeof(path));
	stack_url(url, sizeof(url), STACK_COMMAND, "%s", path);
	snprintf(key, sizeof(key), "Idempotency-Key: dr-test-%ld-%d", run, i);
	for (int attempt = 0; attempt < (i % RETRY_EVERY == 0 ? 2 : 1); attempt++) {
		ck_assert_msg(http_request(NULL, "POST", url, i % RETRY_EVERY == 0 ? headers : NULL,
		                           NULL, 0, &resp) == 0 && resp.status == 200,
		              "POST %s: %ld %s", path, resp.status, resp.body ? resp.body : resp.errstr);
		jobj = http_resp_json(&resp);
		ck_assert_msg(jobj != NULL && json_str(jobj, "id") != NULL, "POST %s: no id in %s", path,
		              resp.body);
		if (attempt == 0)
			snprintf(ids[i], sizeof(ids[i]), "%s", json_str(jobj, "id"));
		else
			ck_assert_msg(strcmp(ids[i], json_str(jobj, "id")) == 0,
			              "a retry with the same Idempotency-Key got another id: %s, then %s",
			              ids[i], json_str(jobj, "id"));
		json_object_put(jobj);
		http_resp_clear(&resp);
	}
}

static void truncate_table(void)
{
	char errstr[512];

	ck_assert_msg(store_exec(stack.db_url, "TRUNCATE timestamp_records, timestamp_counts", errstr,
	                         sizeof(errstr)) == 0,
	              "TRUNCATE: %s", errstr);
}

/* Waits until the table holds RECORDS rows (or REBUILD_MS pass), then
 * asserts that they are the snapshot's, to the letter. */
static void assert_rebuilt(const char *how)
{
	const long until = clock_mono_ms() + REBUILD_MS;
	char errstr[512], *rows = NULL;
	long n = 0;

	for (;;) {
		free(rows);
		ck_assert_msg(store_dump(stack.db_url, &rows, &n, errstr, sizeof(errstr)) == 0, "%s",
		              errstr);
		if (n >= RECORDS || clock_mono_ms() >= until)
			break;
		proc_sleep_ms(200);
	}
	printf("  rebuild %s: %ld of %d rows\n", how, n, RECORDS);
	fault_assert_counts(how);
	if (strcmp(rows, snapshot) != 0) {
		size_t at = 0;
		while (rows[at] == snapshot[at])
			at++;
		while (at > 0 && snapshot[at - 1] != '\n')
			at--;
		ck_abort_msg("rebuild %s: %ld rows, not the snapshot's %d; the first difference:\n"
		             "  before: %.80s\n  after:  %.80s",
		             how, n, RECORDS, snapshot + at, rows + at);
	}
	free(rows);
}

/* Runs `consumer-service --reset-offsets earliest` for the test's group
 * once, logging to consumer-reset.log; returns its exit status. It listens
 * nowhere: SERVER_PORT only has to be valid. */
static int run_reset(long until)
{
	static const char *const args[] = {"--reset-offsets", "earliest", NULL};
	char errstr[1024];

	ck_assert_msg(stack_spawn_args(&extra[1], STACK_CONSUMER, fault_second_port(), "reset",
	                               "consumer-reset.log", args, dr_env, errstr,
	                               sizeof(errstr)) == 0,
	              "%s", errstr);
	while (svc_alive(&extra[1]) && clock_mono_ms() < until)
		proc_sleep_ms(50);
	return svc_alive(&extra[1]) ? SVC_TIMED_OUT : extra[1].status;
}

/* The reset, until it succeeds: a member that just left may still be
 * counted for a moment (exit status 1). */
static void reset_offsets(void)
{
	const long until = clock_mono_ms() + RESET_MS;
	int status;

	while ((status = run_reset(until)) == 1 && clock_mono_ms() < until)
		proc_sleep_ms(500);
	ck_assert_msg(status == 0, "--reset-offsets earliest: status %d (see %s)", status,
	              extra[1].log_path);
}

START_TEST(rebuilds_identical_rows_twice)
{
	const long run = clock_mono_ms();
	char errstr[512], group[64];
	const char *group_env[] = {"KAFKA_PUBLISH_TOPIC=" DR_TOPIC, "KAFKA_CONSUMER_TOPIC=" DR_TOPIC,
	                           group, NULL};
	struct http_resp resp = {0};
	char reset_log[1024];
	long n, log_from;

	snprintf(reset_log, sizeof(reset_log), "%s/consumer-reset.log", stack.state_dir);
	/* The command service creates the topic, the consumer the table,
	 * which is shared with the other suites: it starts empty here. */
	fault_start(STACK_COMMAND, dr_env);
	fault_start(STACK_CONSUMER, dr_env);
	truncate_table();
	fault_start(STACK_QUERY, NULL);

	for (int i = 0; i < RECORDS; i++)
		create_record(i, run);
	for (int i = 0; i < RECORDS; i++) {
		ck_assert_msg(wait_record(ids[i], READABLE_MS, &resp) == 0,
		              "record %d (%s) not readable within %d ms: %ld", i, ids[i], READABLE_MS,
		              resp.status);
		http_resp_clear(&resp);
	}
	ck_assert_msg(store_dump(stack.db_url, &snapshot, &n, errstr, sizeof(errstr)) == 0, "%s",
	              errstr);
	ck_assert_msg(n == RECORDS, "%ld rows for %d records", n, RECORDS);

	/* (a) a consumer in a new group reads the topic from the start. */
	truncate_table();
	snprintf(group, sizeof(group), "KAFKA_GROUP_ID=" DR_GROUP "-a-%ld", run);
	fault_start_extra(&extra[0], STACK_CONSUMER, fault_second_port(),
	                  "consumer-service-dr-a.log", group_env, 30000);
	assert_rebuilt("(a), new group");
	fault_sigterm(&extra[0]);

	/* (b) the service's group reset to the earliest offsets: refused while
	 * its consumer runs, done once it is stopped. */
	log_from = fault_file_size(reset_log);
	ck_assert_int_eq(run_reset(clock_mono_ms() + RESET_MS), 1);
	ck_assert_msg(fault_grep(reset_log, log_from, "is not idle", NULL, NULL) > 0,
	              "the reset refused without saying the group is not idle (see %s)", reset_log);
	fault_sigterm(&stack.svc[STACK_CONSUMER]);
	truncate_table();
	reset_offsets();
	fault_start(STACK_CONSUMER, dr_env);
	assert_rebuilt("(b), offsets reset");
}
END_TEST

Suite *make_dr_suite(void)
{
	Suite *s = suite_create("dr");
	TCase *tc = tcase_create("rebuild");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, rebuilds_identical_rows_twice);
	suite_add_tcase(s, tc);
	return s;
}
