/* shutdown_test: SIGTERM stops each service cleanly: exit status 0 within
 * 10 s, and the consumer commits what it has written. Run last, in the
 * runner's own process (the services are its children). */
#include <check.h>
#include <signal.h>
#include <stdio.h>

#include "checks.h"
#include "suites.h"
#include "topic.h"

#define STOP_TIMEOUT_MS 10000
#define MAX_PARTITIONS 64

static void check_sigterm(enum stack_service which)
{
	long elapsed = 0;
	int status = stack_stop_service(which, SIGTERM, STOP_TIMEOUT_MS, &elapsed);

	ck_assert_msg(status != SVC_NOT_RUNNING, "%s was not running any more (log: %s)",
	              stack_name(which), stack.svc[which].log_path);
	ck_assert_msg(status != SVC_TIMED_OUT, "%s still ran %d ms after SIGTERM (killed; log: %s)",
	              stack_name(which), STOP_TIMEOUT_MS, stack.svc[which].log_path);
	ck_assert_msg(status == 0, "%s exited with status %d after SIGTERM (log: %s)",
	              stack_name(which), status, stack.svc[which].log_path);
	printf("%s stopped in %ld ms\n", stack_name(which), elapsed);
}

/* The command service first: no new messages after it. */
START_TEST(command_sigterm)
{
	check_sigterm(STACK_COMMAND);
}
END_TEST

/* Everything in the topic is written (a sentinel readable behind it in
 * every partition); after SIGTERM the group's committed offsets reach the
 * end of every partition: the last batch was committed on the way out. */
START_TEST(consumer_sigterm)
{
	int64_t hi[MAX_PARTITIONS], committed[MAX_PARTITIONS];
	char errstr[512];
	int n = 0;

	ck_assert_msg(topic_high_watermarks(stack.broker, stack.topic, hi, MAX_PARTITIONS, &n,
	                                    errstr, sizeof(errstr)) == 0,
	              "%s", errstr);
	for (int p = 0; p < n; p++)
		ck_assert_msg(stack_sentinel(p, READ_TIMEOUT_MS, NULL, errstr, sizeof(errstr)) == 0,
		              "%s", errstr);
	check_sigterm(STACK_CONSUMER);
	ck_assert_msg(topic_high_watermarks(stack.broker, stack.topic, hi, MAX_PARTITIONS, &n,
	                                    errstr, sizeof(errstr)) == 0,
	              "%s", errstr);
	ck_assert_msg(topic_committed(stack.broker, stack.topic, stack.group, committed, n, errstr,
	                              sizeof(errstr)) == 0,
	              "%s", errstr);
	for (int p = 0; p < n; p++)
		ck_assert_msg(committed[p] == hi[p],
		              "partition %d: committed offset %lld, end of the partition %lld", p,
		              (long long)committed[p], (long long)hi[p]);
}
END_TEST

START_TEST(query_sigterm)
{
	check_sigterm(STACK_QUERY);
}
END_TEST

Suite *make_shutdown_suite(void)
{
	Suite *s = suite_create("shutdown");
	TCase *tc = tcase_create("sigterm");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, command_sigterm);
	tcase_add_test(tc, consumer_sigterm);
	tcase_add_test(tc, query_sigterm);
	suite_add_tcase(s, tc);
	return s;
}
