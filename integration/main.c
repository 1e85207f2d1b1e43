/* integration-tests: drives the three real service binaries against a real
 * Kafka broker and PostgreSQL.
 *
 * usage: integration-tests [SUITE [CASE]]   (or CK_RUN_SUITE / CK_RUN_CASE)
 * env:   TEST_BIN_DIR, TEST_KAFKA_BROKER, TEST_DB_URL, TEST_STATE_DIR (see
 *        stack.h), CK_FORK, CK_VERBOSITY.
 *
 * The services are started once, here, before any test, and stopped by the
 * shutdown suite at the end (which asserts that SIGTERM stops them cleanly).
 * Each test runs in a forked process (Check's default), so the time limits
 * of the test cases apply and a crashing test does not end the run. */
#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>

#include "proc.h"
#include "run.h"
#include "stack.h"
#include "suites.h"

#define READY_TIMEOUT_MS 30000

int main(int argc, char **argv)
{
	static const run_suite_fn makers[] = {
	    make_health_suite,      make_timestamp_suite, make_errors_suite,
	    make_correlation_suite, make_message_suite,   make_idempotency_suite,
	    make_dlq_suite,         make_load_suite,      make_metrics_suite,
	    make_read_suite,        make_read_url_suite,  make_tracing_suite,
	    NULL,
	};
	const char *suite, *tcase;
	char errstr[1024];
	SRunner *sr;
	int failed;
	long started;

	if ((failed = run_setup("integration-tests", argc, argv, &suite, &tcase)) != 0)
		return failed;
	started = clock_mono_ms();
	if (stack_start_all(READY_TIMEOUT_MS, errstr, sizeof(errstr)) != 0) {
		fprintf(stderr, "integration-tests: %s\n", errstr);
		curl_global_cleanup();
		return 2;
	}
	printf("services ready in %ld ms (broker %s, database %s, logs in %s)\n",
	       clock_mono_ms() - started, stack.broker, stack.db_url, stack.state_dir);

	failed = run_suites("integration-tests", makers, suite, tcase, CK_FORK_GETENV);

	/* Always last, whatever was selected: it stops the services, which
	 * are children of this process, so it cannot run in a fork. */
	sr = srunner_create(make_shutdown_suite());
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run(sr, "shutdown", "sigterm", CK_ENV); /* whatever CK_RUN_* say */
	failed += srunner_ntests_failed(sr);
	srunner_free(sr);

	stack_kill_all(); /* whatever a failed shutdown test left running */
	curl_global_cleanup();
	printf("integration tests: %s in %ld ms\n", failed ? "FAILED" : "passed",
	       clock_mono_ms() - started);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
