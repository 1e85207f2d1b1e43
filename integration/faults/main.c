/* fault-tests: injects real faults — a frozen or restarted broker, a stopped
 * database, killed and stopped services, poison messages, abusive HTTP
 * clients — into the real binaries, Kafka and PostgreSQL, and checks the
 * delivery guarantees of the design with counts.
 *
 * usage: fault-tests [SUITE [CASE]]   (or CK_RUN_SUITE / CK_RUN_CASE)
 * env:   as integration-tests (TEST_BIN_DIR, TEST_KAFKA_BROKER, TEST_DB_URL,
 *        TEST_STATE_DIR, TEST_{COMMAND,CONSUMER,QUERY}_PORT), plus
 *        TEST_CONSUMER2_PORT (a second consumer; the query port + 1),
 *        TEST_SCRIPTS_DIR (scripts), and STATE_DIR, KAFKA_PORT, PG_PORT for
 *        scripts/kafka.sh and scripts/pg.sh (derived when unset).
 *        FAULTS_DEADLINE_S (900) ends a run that hangs.
 *
 * The tests stop, kill and restart the services, which only their parent
 * can do: so they run in this process (CK_NOFORK), each starting what it
 * needs and stopping it again in its teardown. Without a fork Check cannot
 * enforce time limits: every wait in the tests has its own deadline, and an
 * alarm ends the whole run (the services die with it: PR_SET_PDEATHSIG). */
#include <check.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "fault.h"
#include "faults.h"

#define TOPIC_READY_MS 30000

static void on_deadline(int sig)
{
	static const char msg[] = "fault-tests: deadline reached, giving up\n";

	(void)sig;
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(3);
}

int main(int argc, char **argv)
{
	const char *suite = argc > 1 ? argv[1] : NULL, *tcase = argc > 2 ? argv[2] : NULL;
	const char *deadline = getenv("FAULTS_DEADLINE_S");
	char errstr[1024];
	struct rlimit rl;
	SRunner *sr;
	int failed;
	long started = clock_mono_ms();

	if (argc > 3 || (suite && suite[0] == '-')) {
		fprintf(stderr, "usage: %s [SUITE [CASE]]\n", argv[0]);
		return 2;
	}
	if (stack_load(errstr, sizeof(errstr)) != 0 || fault_env_load(errstr, sizeof(errstr)) != 0) {
		fprintf(stderr, "fault-tests: %s\n", errstr);
		return 2;
	}
	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
		fprintf(stderr, "fault-tests: curl_global_init failed\n");
		return 2;
	}
	/* The edge suite opens a thousand connections at once. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGALRM, on_deadline);
	alarm(deadline && atoi(deadline) > 0 ? (unsigned)atoi(deadline) : 900);

	/* The command service creates the topic at start; the suites that
	 * produce straight into it need it to exist. */
	if (stack_start_service(STACK_COMMAND, NULL, TOPIC_READY_MS, errstr, sizeof(errstr)) != 0) {
		fprintf(stderr, "fault-tests: %s\n", errstr);
		return 2;
	}
	stack_stop_service(STACK_COMMAND, SIGTERM, 10000, NULL);
	printf("topic %s ready (broker %s, database %s, logs in %s)\n", stack.topic, stack.broker,
	       stack.db_url, stack.state_dir);

	sr = srunner_create(make_poison_suite());
	srunner_add_suite(sr, make_edge_suite());
	srunner_add_suite(sr, make_broker_suite());
	srunner_add_suite(sr, make_database_suite());
	srunner_add_suite(sr, make_freeze_suite());
	srunner_add_suite(sr, make_kill_suite());
	srunner_add_suite(sr, make_scaleout_suite());
	srunner_add_suite(sr, make_stop_suite());
	srunner_add_suite(sr, make_readystop_suite());
	srunner_add_suite(sr, make_topic_suite());
	srunner_add_suite(sr, make_dr_suite());
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run(sr, suite, tcase, CK_ENV);
	failed = srunner_ntests_failed(sr);
	if (srunner_ntests_run(sr) == 0) {
		fprintf(stderr, "fault-tests: no test matches '%s' '%s'\n", suite ? suite : "",
		        tcase ? tcase : "");
		failed++;
	}
	srunner_free(sr);

	stack_kill_all(); /* whatever a failed teardown left running */
	curl_global_cleanup();
	printf("fault tests: %s in %.1f s\n", failed ? "FAILED" : "passed",
	       fault_secs(clock_mono_ms() - started));
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
