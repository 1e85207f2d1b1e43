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
#include "run.h"

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
	static const run_suite_fn makers[] = {
	    make_poison_suite, make_edge_suite,  make_broker_suite,    make_database_suite,
	    make_observe_suite, /* issue 11: the rebuild status and the lag in seconds */
	    make_freeze_suite, make_kill_suite,  make_scaleout_suite,  make_stop_suite,
	    make_readystop_suite, make_topic_suite, make_dr_suite,     make_rebuild_suite,
	    make_replay_suite,    make_verify_suite,
	    make_counts_suite, /* issue 12: the counts projection through duplicates and replays */
	    make_live_suite, /* issue 12: Prefer: wait and the event stream */
	    NULL,
	};
	const char *deadline = getenv("FAULTS_DEADLINE_S"), *suite, *tcase;
	char errstr[1024];
	struct rlimit rl;
	int failed;
	long started = clock_mono_ms();

	if ((failed = run_setup("fault-tests", argc, argv, &suite, &tcase)) != 0)
		return failed;
	if (fault_env_load(errstr, sizeof(errstr)) != 0) {
		fprintf(stderr, "fault-tests: %s\n", errstr);
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

	failed = run_suites("fault-tests", makers, suite, tcase, CK_NOFORK);

	stack_kill_all(); /* whatever a failed teardown left running */
	curl_global_cleanup();
	printf("fault tests: %s in %.1f s\n", failed ? "FAILED" : "passed",
	       fault_secs(clock_mono_ms() - started));
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
