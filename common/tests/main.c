/* main: runs the unit tests of common/, all of them or one suite/case.
 *
 *   build/unit-tests                 every suite
 *   build/unit-tests ts              the suite "ts"
 *   build/unit-tests ts parse_reject one test case of it
 *
 * Exits 0 when every test ran passed, 1 otherwise (including a suite or
 * case name that matched nothing, so a typo cannot pass silently). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "suites.h"

int main(int argc, char **argv)
{
	const char *suite = argc > 1 ? argv[1] : NULL;
	const char *tcase = argc > 2 ? argv[2] : NULL;
	SRunner *sr;
	int run, failed;

	if (argc > 3 || (suite && (strcmp(suite, "-h") == 0 || strcmp(suite, "--help") == 0))) {
		fprintf(stderr, "usage: %s [suite [case]]\n"
		                "suites: ts uid msg db cfg log jsonw http metrics\n"
		                "        fuzz_regress\n", argv[0]);
		return argc > 3 ? 2 : 0;
	}
	/* Code under test logs through log.c; keep the output to Check's. */
	log_setup("unit-tests", LOG_ERROR);

	sr = srunner_create(make_ts_suite());
	srunner_add_suite(sr, make_uid_suite());
	srunner_add_suite(sr, make_msg_suite());
	srunner_add_suite(sr, make_db_suite());
	srunner_add_suite(sr, make_cfg_suite());
	srunner_add_suite(sr, make_log_suite());
	srunner_add_suite(sr, make_jsonw_suite());
	srunner_add_suite(sr, make_http_suite());
	srunner_add_suite(sr, make_metrics_suite());
	srunner_add_suite(sr, make_fuzz_regress_suite());

	srunner_run(sr, suite, tcase, CK_NORMAL);
	run = srunner_ntests_run(sr);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);

	if (run == 0) {
		fprintf(stderr, "no test matched suite '%s' case '%s'\n",
		        suite ? suite : "*", tcase ? tcase : "*");
		return EXIT_FAILURE;
	}
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
