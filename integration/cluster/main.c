/* cluster-tests: the failover tests of the cluster form (issue 13) — three
 * Kafka brokers in KRaft with RF 3 and min.insync.replicas=2, PostgreSQL as
 * a primary and a streaming standby — with real kills, against the real
 * binaries. scripts/cluster-test.sh (make test-cluster) starts the cluster.
 *
 * usage: cluster-tests [SUITE [CASE]]   (or CK_RUN_SUITE / CK_RUN_CASE)
 * env:   as fault-tests (TEST_BIN_DIR, TEST_KAFKA_BROKER: every broker,
 *        TEST_DB_URL: the multi-host URL, TEST_STATE_DIR, TEST_*_PORT,
 *        TEST_SCRIPTS_DIR; STATE_DIR, KAFKA_PORT, KAFKA_NODES, PG_PORT for the
 *        scripts), TEST_DB_READ_URL (query-service's DB_READ_URL),
 *        CLUSTER_DEADLINE_S (900) ends a run that hangs.
 *
 * As the fault tests, they run in this process (CK_NOFORK), since they stop
 * and restart the services; the suites run in the order below, the database
 * failover last: it leaves the old primary down and the standby promoted. */
#include <check.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cluster.h"
#include "run.h"

#define TOPIC_READY_MS 60000

Suite *make_brokers_suite(void);  /* a leader killed, two of three down, a broker wiped */
Suite *make_drill_suite(void);    /* make dr-drill against the cluster */
Suite *make_database_suite(void); /* the primary killed, the standby promoted */

static void on_deadline(int sig)
{
	static const char msg[] = "cluster-tests: deadline reached, giving up\n";

	(void)sig;
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(3);
}

int main(int argc, char **argv)
{
	static const run_suite_fn makers[] = {make_brokers_suite, make_drill_suite,
	                                      make_database_suite, NULL};
	const char *const env[] = {"KAFKA_TOPIC_REPLICATION=3", NULL};
	const char *deadline = getenv("CLUSTER_DEADLINE_S"), *suite, *tcase;
	char errstr[1024];
	int failed;
	long started = clock_mono_ms();

	if ((failed = run_setup("cluster-tests", argc, argv, &suite, &tcase)) != 0)
		return failed;
	if (fault_env_load(errstr, sizeof(errstr)) != 0) {
		fprintf(stderr, "cluster-tests: %s\n", errstr);
		return 2;
	}
	signal(SIGALRM, on_deadline);
	alarm(deadline && atoi(deadline) > 0 ? (unsigned)atoi(deadline) : 900);

	/* The command service creates the topic (RF 3, min ISR 2) at start:
	 * the tests ask for its partitions' leaders from the first. */
	if (stack_start_service(STACK_COMMAND, env, TOPIC_READY_MS, errstr, sizeof(errstr)) != 0) {
		fprintf(stderr, "cluster-tests: %s\n", errstr);
		return 2;
	}
	stack_stop_service(STACK_COMMAND, SIGTERM, 10000, NULL);
	printf("topic %s ready (brokers %s, database %s, logs in %s)\n", stack.topic, stack.broker,
	       stack.db_url, stack.state_dir);

	failed = run_suites("cluster-tests", makers, suite, tcase, CK_NOFORK);

	stack_kill_all(); /* whatever a failed teardown left running */
	curl_global_cleanup();
	printf("cluster tests: %s in %.1f s\n", failed ? "FAILED" : "passed",
	       fault_secs(clock_mono_ms() - started));
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
