/* run: the test runners' command line and suites (see run.h). */
#include "run.h"

#include <curl/curl.h>
#include <stdio.h>

#include "stack.h"

int run_setup(const char *prog, int argc, char **argv, const char **suite, const char **tcase)
{
	char errstr[1024];

	*suite = argc > 1 ? argv[1] : NULL;
	*tcase = argc > 2 ? argv[2] : NULL;
	if (argc > 3 || (*suite && (*suite)[0] == '-')) {
		fprintf(stderr, "usage: %s [SUITE [CASE]]\n", argv[0]);
		return 2;
	}
	if (stack_load(errstr, sizeof(errstr)) != 0) {
		fprintf(stderr, "%s: %s\n", prog, errstr);
		return 2;
	}
	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
		fprintf(stderr, "%s: curl_global_init failed\n", prog);
		return 2;
	}
	return 0;
}

int run_suites(const char *prog, const run_suite_fn *makers, const char *suite,
               const char *tcase, enum fork_status fork_status)
{
	SRunner *sr = srunner_create(makers[0]());
	int failed;

	for (const run_suite_fn *m = makers + 1; *m != NULL; m++)
		srunner_add_suite(sr, (*m)());
	srunner_set_fork_status(sr, fork_status);
	srunner_run(sr, suite, tcase, CK_ENV);
	failed = srunner_ntests_failed(sr);
	if (srunner_ntests_run(sr) == 0) {
		fprintf(stderr, "%s: no test matches '%s' '%s'\n", prog, suite ? suite : "",
		        tcase ? tcase : "");
		failed++;
	}
	srunner_free(sr);
	return failed;
}
