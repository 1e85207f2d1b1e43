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
#include "stack.h"
#include "suites.h"

#define READY_TIMEOUT_MS 30000

int main(int argc, char **argv)
{
	const char *suite = argc > 1 ? argv[1] : NULL, *tcase = argc > 2 ? argv[2] : NULL;
	char errstr[1024];
	SRunner *sr;
	int failed;
	long started;

	if (argc > 3 || (suite && suite[0] == '-')) {
		fprintf(stderr, "usage: %s [SUITE [CASE]]\n", argv[0]);
		return 2;
	}
	if (stack_load(errstr, sizeof(errstr)) != 0) {
		fprintf(stderr, "integration-tests: %s\n", errstr);
		return 2;
	}
	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
		fprintf(stderr, "integration-tests: curl_global_init failed\n");
		return 2;
	}
	started = clock_mono_ms();
	if (stack_start_all(READY_TIMEOUT_MS, errstr, sizeof(errstr)) != 0) {
		fprintf(stderr, "integration-tests: %s\n", errstr);
		curl_global_cleanup();
		return 2;
	}
	printf("services ready in %ld ms (broker %s, database %s, logs in %s)\n",
	       clock_mono_ms() - started, stack.broker, stack.db_url, stack.state_dir);

	sr = srunner_create(make_health_suite());
	srunner_add_suite(sr, make_timestamp_suite());
	srunner_add_suite(sr, make_errors_suite());
	srunner_add_suite(sr, make_correlation_suite());
	srunner_add_suite(sr, make_message_suite());
	srunner_add_suite(sr, make_idempotency_suite());
	srunner_add_suite(sr, make_dlq_suite());
	srunner_add_suite(sr, make_load_suite());
	srunner_add_suite(sr, make_metrics_suite());
	srunner_run(sr, suite, tcase, CK_ENV);
	failed = srunner_ntests_failed(sr);
	if (srunner_ntests_run(sr) == 0) {
		fprintf(stderr, "integration-tests: no test matches '%s' '%s'\n",
		        suite ? suite : "", tcase ? tcase : "");
		failed++;
	}
	srunner_free(sr);

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
